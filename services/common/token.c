/* API tokens: making, hashing and naming them. See linkage/token.h. */
#include "linkage/token.h"

#include <sodium.h>
#include <string.h>

#include "linkage/error.h"
#include "linkage/event.h"

static const char *const role_names[] = {
    [LK_ROLE_READER] = "reader",
    [LK_ROLE_REPORTER] = "reporter",
    [LK_ROLE_COORDINATOR] = "coordinator",
};

int lk_token_generate(char out[LK_TOKEN_LEN + 1]) {
  /* sodium_init is idempotent and thread-safe; randombytes_buf wants it first. */
  if (sodium_init() < 0) return LK_EIO;
  uint8_t raw[LK_TOKEN_RANDOM_BYTES];
  randombytes_buf(raw, sizeof raw);
  size_t plen = strlen(LK_TOKEN_PREFIX);
  memcpy(out, LK_TOKEN_PREFIX, plen);
  sodium_bin2base64(out + plen, LK_TOKEN_LEN + 1 - plen, raw, sizeof raw,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  return LK_OK;
}

void lk_token_hash(const char *token, uint8_t out[LK_TOKEN_HASH_LEN]) {
  crypto_hash_sha256(out, (const unsigned char *)token, strlen(token));
}

static int base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

int lk_token_format_ok(const char *token) {
  size_t plen = strlen(LK_TOKEN_PREFIX);
  if (!token || strlen(token) != LK_TOKEN_LEN || strncmp(token, LK_TOKEN_PREFIX, plen) != 0)
    return 0;
  for (size_t i = plen; i < LK_TOKEN_LEN; i++)
    if (!base64url_char(token[i])) return 0;
  /* 43 characters carry 258 bits: the last one must leave the 2 spare bits zero, as a
   * canonical encoding of 32 bytes does. */
  uint8_t raw[LK_TOKEN_RANDOM_BYTES];
  size_t n = 0;
  return sodium_base642bin(raw, sizeof raw, token + plen, LK_TOKEN_LEN - plen, NULL, &n, NULL,
                           sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
         n == sizeof raw;
}

int lk_token_name_valid(const char *name) {
  return name && lk_id_valid(name, LK_TOKEN_NAME_MAX);
}

const char *lk_token_role_name(enum lk_role r) {
  if (r < LK_ROLE_READER || r > LK_ROLE_COORDINATOR) return NULL;
  return role_names[r];
}

enum lk_role lk_token_role_parse(const char *s) {
  if (!s) return LK_ROLE_NONE;
  for (int r = LK_ROLE_READER; r <= LK_ROLE_COORDINATOR; r++)
    if (strcmp(s, role_names[r]) == 0) return (enum lk_role)r;
  return LK_ROLE_NONE;
}
