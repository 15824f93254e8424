#ifndef LINKAGE_HASH_H
#define LINKAGE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define LK_HASH_LEN 32

/* The ledger's chain: hash = SHA-256(prev_hash || position as 8 bytes
 * big-endian || canonical event bytes). Binding the position makes a removed
 * or reordered row break the chain even if the payloads are intact. The first
 * row's prev_hash is 32 zero bytes. */
void lk_chain_hash(const uint8_t prev[LK_HASH_LEN], uint64_t position, const uint8_t *event,
                   size_t len, uint8_t out[LK_HASH_LEN]);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void lk_hex(const uint8_t *bytes, size_t n, char *out);

#endif
