#ifndef LINKAGE_TOKEN_H
#define LINKAGE_TOKEN_H

/* API tokens for the gateway's HTTP side: made by `linkagectl token add`,
 * stored hashed in the PostgreSQL table `tokens`, checked by the gateway
 * (services/gateway/gw_auth.h).
 *
 * A token is "lkt_" followed by 43 base64url characters (32 random bytes
 * from the kernel's CSPRNG, no padding): 47 characters, 256 bits. The prefix
 * lets a secret scanner and a human recognise one.
 *
 * Only SHA-256 of the whole token string is stored. A password needs a slow
 * KDF (Argon2, scrypt) because people choose few bits and an attacker with
 * the table can try likely ones; a token has 256 random bits, so no guess
 * list exists and one fast hash already makes the table useless for signing
 * in. A fast hash also lets the gateway check every request without a salt
 * lookup or a costly derivation per attempt. */

#include <stddef.h>
#include <stdint.h>

#define LK_TOKEN_PREFIX "lkt_"
#define LK_TOKEN_RANDOM_BYTES 32
#define LK_TOKEN_LEN 47 /* "lkt_" + 43 base64url characters, without the NUL */
#define LK_TOKEN_HASH_LEN 32
#define LK_TOKEN_NAME_MAX 64

/* The roles, ordered: a higher role may do everything a lower one may.
 *   reader       read the dashboard API, the stream, CAP and Open311 (GET)
 *   reporter     reader + POST Open311 service requests
 *   coordinator  everything: incident actions, planned work */
enum lk_role {
  LK_ROLE_NONE = 0,
  LK_ROLE_READER = 1,
  LK_ROLE_REPORTER = 2,
  LK_ROLE_COORDINATOR = 3,
};

/* The table, one definition for the ledger (which creates it with its
 * schema) and linkagectl (which may add tokens before the ledger first ran).
 * A revocation sets revoked_at and keeps the row; a name is unique among the
 * tokens not revoked, so a revoked name can be given a new token. */
#define LK_TOKENS_TABLE_SQL                                                                        \
  "create table if not exists tokens (\n"                                                          \
  "  name text not null check (char_length(name) between 1 and 64),\n"                             \
  "  role text not null check (role in ('reader', 'reporter', 'coordinator')),\n"                  \
  "  token_sha256 bytea not null unique check (octet_length(token_sha256) = 32),\n"                \
  "  created_at timestamptz not null default now(),\n"                                             \
  "  revoked_at timestamptz\n"                                                                     \
  ");\n"                                                                                           \
  "create unique index if not exists tokens_active_name on tokens (name)\n"                        \
  "  where revoked_at is null;\n"

/* A fresh token into out (LK_TOKEN_LEN + 1 bytes). LK_OK, or LK_EIO when
 * libsodium cannot start (no randomness). */
int lk_token_generate(char out[LK_TOKEN_LEN + 1]);

/* SHA-256 of the token string as given (prefix included, no NUL). */
void lk_token_hash(const char *token, uint8_t out[LK_TOKEN_HASH_LEN]);

/* 1 if token has the form of one lk_token_generate makes, else 0. */
int lk_token_format_ok(const char *token);

/* 1 if name may name a token: 1..64 printable ASCII characters without
 * space, quote or backslash (it goes into logs unquoted), else 0. */
int lk_token_name_valid(const char *name);

/* "reader", "reporter", "coordinator"; NULL for LK_ROLE_NONE or anything else. */
const char *lk_token_role_name(enum lk_role r);
/* The role named s, or LK_ROLE_NONE (also for NULL). */
enum lk_role lk_token_role_parse(const char *s);

#endif
