/* The HTTP API's token check and failed-attempt limit, as plain functions
 * over plain structs (time passed in). See gw_auth.h. */
#include "gw_auth.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"

int gw_role_allows(enum lk_role have, enum lk_role need) {
  return have != LK_ROLE_NONE && have >= need;
}

/* ---- the snapshot ---- */

struct gw_tokens *gw_tokens_new(void) {
  return calloc(1, sizeof(struct gw_tokens));
}

void gw_tokens_destroy(struct gw_tokens **t) {
  if (!*t) return;
  if ((*t)->v) sodium_memzero((*t)->v, (*t)->cap * sizeof *(*t)->v);
  free((*t)->v);
  free(*t);
  *t = NULL;
}

int gw_tokens_add(struct gw_tokens *t, const char *name, enum lk_role role,
                  const uint8_t hash[LK_TOKEN_HASH_LEN]) {
  if (!lk_token_name_valid(name) || !lk_token_role_name(role)) return LK_EINVAL;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    struct gw_token_entry *v = realloc(t->v, cap * sizeof *v);
    if (!v) return LK_ENOMEM;
    t->v = v;
    t->cap = cap;
  }
  struct gw_token_entry *e = &t->v[t->n++];
  snprintf(e->name, sizeof e->name, "%s", name);
  e->role = role;
  memcpy(e->hash, hash, LK_TOKEN_HASH_LEN);
  return LK_OK;
}

int gw_tokens_add_row(struct gw_tokens *t, const char *name, const char *role, const char *hash_hex,
                      int revoked) {
  if (revoked) return LK_OK;
  uint8_t hash[LK_TOKEN_HASH_LEN];
  size_t n = 0;
  const char *end = NULL;
  if (!hash_hex || strlen(hash_hex) != 2 * LK_TOKEN_HASH_LEN ||
      sodium_hex2bin(hash, sizeof hash, hash_hex, strlen(hash_hex), NULL, &n, &end) != 0 ||
      n != sizeof hash)
    return LK_EINVAL;
  return gw_tokens_add(t, name, lk_token_role_parse(role), hash);
}

enum lk_role gw_tokens_check(const struct gw_tokens *t, const char *token, const char **name) {
  if (name) *name = NULL;
  if (!t || !token || !*token) return LK_ROLE_NONE;
  uint8_t h[LK_TOKEN_HASH_LEN];
  lk_token_hash(token, h);
  /* Every entry is compared, and the match is picked with masks rather than a branch: the
   * loop takes the same path whichever entry matched. The table's unique digest means at
   * most one can. (Comparing digests already keeps the token's bytes out of the timing; this
   * keeps which entry matched out of it too.) */
  unsigned role = 0;
  size_t at = 0;
  for (size_t i = 0; i < t->n; i++) {
    unsigned eq = (unsigned)(sodium_memcmp(t->v[i].hash, h, sizeof h) + 1); /* 1 or 0 */
    unsigned mask = 0u - eq;
    role |= mask & (unsigned)t->v[i].role;
    at |= (size_t)mask & i;
  }
  sodium_memzero(h, sizeof h);
  if (role == 0) return LK_ROLE_NONE;
  if (name) *name = t->v[at].name;
  return (enum lk_role)role;
}

/* ---- the rate limiter ---- */

void gw_rate_init(struct gw_rate *r, uint32_t max_failures, uint32_t window_ms) {
  memset(r, 0, sizeof *r);
  r->max_failures = max_failures ? max_failures : GW_RATE_MAX_FAILURES;
  r->window_us = (int64_t)(window_ms ? window_ms : GW_RATE_WINDOW_MS) * 1000;
}

static int window_open(const struct gw_rate *r, const struct gw_rate_slot *s, int64_t now_us) {
  return s->addr[0] && s->failures > 0 && now_us - s->window_start_us < r->window_us;
}

/* The key of a client address: an unknown one ("" or NULL) is one shared key, never a free
 * slot's empty name. */
static const char *addr_key(const char *addr) {
  return addr && addr[0] ? addr : "?";
}

/* The slot holding addr (compared as cut to GW_RATE_ADDR_MAX - 1), or NULL. */
static const struct gw_rate_slot *find(const struct gw_rate *r, const char *addr) {
  for (size_t i = 0; i < r->used; i++)
    if (strncmp(r->slot[i].addr, addr, GW_RATE_ADDR_MAX - 1) == 0) return &r->slot[i];
  return NULL;
}

uint32_t gw_rate_blocked(const struct gw_rate *r, const char *addr, int64_t now_us) {
  const struct gw_rate_slot *s = find(r, addr_key(addr));
  if (!s || !window_open(r, s, now_us) || s->failures < r->max_failures) return 0;
  int64_t left_us = s->window_start_us + r->window_us - now_us;
  int64_t ms = (left_us + 999) / 1000;
  if (ms < 1) ms = 1;
  return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* A slot for a new address: one whose window has ended, else a never used one, else the one
 * whose latest failure is oldest. */
static struct gw_rate_slot *claim(struct gw_rate *r, int64_t now_us) {
  struct gw_rate_slot *oldest = NULL;
  for (size_t i = 0; i < r->used; i++) {
    struct gw_rate_slot *s = &r->slot[i];
    if (!window_open(r, s, now_us)) return s;
    if (!oldest || s->last_us < oldest->last_us) oldest = s;
  }
  if (r->used < GW_RATE_SLOTS) return &r->slot[r->used++];
  return oldest;
}

void gw_rate_failure(struct gw_rate *r, const char *addr, int64_t now_us) {
  addr = addr_key(addr);
  struct gw_rate_slot *s = (struct gw_rate_slot *)find(r, addr);
  if (!s) {
    s = claim(r, now_us);
    memset(s, 0, sizeof *s);
    snprintf(s->addr, sizeof s->addr, "%s", addr);
  }
  if (!window_open(r, s, now_us)) {
    s->window_start_us = now_us;
    s->failures = 0;
  }
  if (s->failures < UINT32_MAX) s->failures++;
  s->last_us = now_us;
}
