/* The ledger's hash chain: known vectors computed independently with
 * Python's hashlib, and tamper detection. */
#include <string.h>

#include "linkage/hash.h"
#include "lk_test.h"

static void hex_of(const uint8_t h[LK_HASH_LEN], char out[2 * LK_HASH_LEN + 1]) {
  lk_hex(h, LK_HASH_LEN, out);
}

/* hashlib.sha256(bytes(32) + (1).to_bytes(8, 'big')) */
#define H1 "08e00266fff0aacc64974f22a53622a7dc458ac1b5fd446ae7c99a4a99a564e6"
/* hashlib.sha256(H1 + (2).to_bytes(8, 'big') + b'hello') */
#define H2 "250734b601879f21e3bbd02c1f944aba76abb834c766d1eca63c3ae426232003"
/* hashlib.sha256(b'\xab' * 32 + (0x0102030405060708).to_bytes(8, 'big') + b'\0\1\2') */
#define H3 "96c276b53a5e3f05d0c91656331e821aa7504875f78f4ac6667ff27295efd9a6"

LK_TEST(genesis_row_vector) {
  uint8_t zero[LK_HASH_LEN] = {0}, h[LK_HASH_LEN];
  char hex[2 * LK_HASH_LEN + 1];
  lk_chain_hash(zero, 1, (const uint8_t *)"", 0, h);
  hex_of(h, hex);
  LK_CHECK_STR(hex, H1);
}

LK_TEST(second_row_chains_on_first) {
  uint8_t zero[LK_HASH_LEN] = {0}, h1[LK_HASH_LEN], h2[LK_HASH_LEN];
  char hex[2 * LK_HASH_LEN + 1];
  lk_chain_hash(zero, 1, (const uint8_t *)"", 0, h1);
  lk_chain_hash(h1, 2, (const uint8_t *)"hello", 5, h2);
  hex_of(h2, hex);
  LK_CHECK_STR(hex, H2);
}

LK_TEST(position_is_big_endian_and_event_binary) {
  uint8_t prev[LK_HASH_LEN], h[LK_HASH_LEN];
  char hex[2 * LK_HASH_LEN + 1];
  const uint8_t ev[3] = {0, 1, 2};
  memset(prev, 0xab, sizeof prev);
  lk_chain_hash(prev, 0x0102030405060708ULL, ev, sizeof ev, h);
  hex_of(h, hex);
  LK_CHECK_STR(hex, H3);
}

LK_TEST(tampering_breaks_the_chain) {
  uint8_t zero[LK_HASH_LEN] = {0}, good[LK_HASH_LEN], bad[LK_HASH_LEN];
  uint8_t ev[5] = {'h', 'e', 'l', 'l', 'o'};
  lk_chain_hash(zero, 7, ev, sizeof ev, good);

  ev[4] ^= 1; /* one bit of the event */
  lk_chain_hash(zero, 7, ev, sizeof ev, bad);
  LK_CHECK(memcmp(good, bad, LK_HASH_LEN) != 0);
  ev[4] ^= 1;

  lk_chain_hash(zero, 8, ev, sizeof ev, bad); /* a row moved to another position */
  LK_CHECK(memcmp(good, bad, LK_HASH_LEN) != 0);

  uint8_t other[LK_HASH_LEN] = {0};
  other[31] = 1; /* a removed predecessor changes prev_hash */
  lk_chain_hash(other, 7, ev, sizeof ev, bad);
  LK_CHECK(memcmp(good, bad, LK_HASH_LEN) != 0);

  lk_chain_hash(zero, 7, ev, sizeof ev, bad); /* and the same input gives the same hash */
  LK_CHECK(memcmp(good, bad, LK_HASH_LEN) == 0);
}

LK_TEST(hex_is_lower_case_and_terminated) {
  const uint8_t b[3] = {0x00, 0xaf, 0x5c};
  char out[7];
  memset(out, 'x', sizeof out);
  lk_hex(b, 3, out);
  LK_CHECK_STR(out, "00af5c");
}

int main(void) {
  return lk_test_run_all();
}
