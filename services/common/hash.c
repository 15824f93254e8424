#include "linkage/hash.h"

#include <sodium.h>

void lk_chain_hash(const uint8_t prev[LK_HASH_LEN], uint64_t position, const uint8_t *event,
                   size_t len, uint8_t out[LK_HASH_LEN]) {
  crypto_hash_sha256_state st;
  uint8_t pos[8];
  for (int i = 0; i < 8; i++)
    pos[i] = (uint8_t)(position >> (56 - 8 * i));
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, prev, LK_HASH_LEN);
  crypto_hash_sha256_update(&st, pos, sizeof pos);
  crypto_hash_sha256_update(&st, event, len);
  crypto_hash_sha256_final(&st, out);
}

void lk_hex(const uint8_t *bytes, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[2 * n] = '\0';
}
