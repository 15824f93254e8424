#ifndef GATEWAY_GW_AUTH_H
#define GATEWAY_GW_AUTH_H

/* Who may use the gateway's HTTP API: bearer tokens (linkage/token.h) checked
 * against a snapshot of the table `tokens`, and a limit on failed attempts per
 * client address.
 *
 * The core (gw_auth.c) is plain: a snapshot of the active tokens, the check
 * of one presented token against it, and the rate limiter with time passed
 * in. The shell (gw_auth_pg.c) re-reads the table every refresh_ms on a libuv
 * worker thread and swaps the snapshot in on the loop, as the CURVE key
 * registry does (services/common/zap.c).
 *
 * The rules the HTTP side applies (gateway_http.c):
 *   no token                      401, not counted as a failed attempt
 *   address over the limit        429 with Retry-After, even for a good token
 *   unknown or revoked token      401, counted against the address
 *   role below what the route needs  403
 * A revoked token stops working within refresh_ms (2 s by default). */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "linkage/config.h"
#include "linkage/pg_reload.h"
#include "linkage/token.h"

/* 1 if a caller holding role `have` may do what needs `need`: reader < reporter
 * < coordinator, and LK_ROLE_NONE may do nothing (not even what needs NONE). */
int gw_role_allows(enum lk_role have, enum lk_role need);

/* ---- the snapshot of active tokens ---- */

struct gw_token_entry {
  char name[LK_TOKEN_NAME_MAX + 1];
  enum lk_role role;
  uint8_t hash[LK_TOKEN_HASH_LEN];
};

struct gw_tokens {
  struct gw_token_entry *v;
  size_t n, cap;
};

struct gw_tokens *gw_tokens_new(void);
void gw_tokens_destroy(struct gw_tokens **t);
/* Adds one token. LK_EINVAL for a bad name or role LK_ROLE_NONE, LK_ENOMEM. */
int gw_tokens_add(struct gw_tokens *t, const char *name, enum lk_role role,
                  const uint8_t hash[LK_TOKEN_HASH_LEN]);
/* Adds one row of the table as the loader reads it: role as text, the hash as
 * 64 hex digits, revoked 1 when revoked_at is set. A revoked row is left out
 * (LK_OK, nothing added); a malformed one is refused with LK_EINVAL. */
int gw_tokens_add_row(struct gw_tokens *t, const char *name, const char *role, const char *hash_hex,
                      int revoked);
/* The role of token (LK_ROLE_NONE if it is unknown, empty or NULL), and its
 * name in *name (borrowed from t; NULL when unknown; name may be NULL). The
 * presented token is hashed and the digest compared with every entry with
 * sodium_memcmp and no early exit, so the time taken depends on the number of
 * entries, not on which one (if any) matched or how many bytes did. */
enum lk_role gw_tokens_check(const struct gw_tokens *t, const char *token, const char **name);

/* ---- failed attempts per client address ---- */

#define GW_RATE_SLOTS 1024  /* addresses tracked at once; see gw_rate_failure */
#define GW_RATE_ADDR_MAX 64 /* an IPv6 address with zone fits; longer keys are cut */
#define GW_RATE_MAX_FAILURES 10
#define GW_RATE_WINDOW_MS 60000

struct gw_rate_slot {
  char addr[GW_RATE_ADDR_MAX];
  int64_t window_start_us; /* the first failure of the current window */
  int64_t last_us;         /* the latest failure: eviction picks the oldest */
  uint32_t failures;
};

/* Fixed windows per address: the first failure opens a window of window_ms;
 * once max_failures have failed in it, every attempt from the address is
 * refused until the window ends, good token or not. Successes change nothing
 * (neither the address's own count nor anyone else's). Time is any monotonic
 * clock in µs. */
struct gw_rate {
  struct gw_rate_slot slot[GW_RATE_SLOTS];
  size_t used; /* slots [0, used) have held an address */
  uint32_t max_failures;
  int64_t window_us;
};

/* max_failures 0 and window_ms 0 mean the defaults (10 per 60 s). */
void gw_rate_init(struct gw_rate *r, uint32_t max_failures, uint32_t window_ms);
/* 0 when addr may try now; else how many ms until it may (at least 1). */
uint32_t gw_rate_blocked(const struct gw_rate *r, const char *addr, int64_t now_us);
/* Counts one failed attempt from addr. With every slot holding an address
 * whose window is still open, the slot with the oldest latest failure is
 * reused: memory stays fixed, and an attacker spread over more than
 * GW_RATE_SLOTS addresses can push its own older entries out (one address's
 * limit then restarts). That bounds a flood from few addresses, not a botnet. */
void gw_rate_failure(struct gw_rate *r, const char *addr, int64_t now_us);

/* ---- the shell: the snapshot kept fresh from PostgreSQL (gw_auth_pg.c) ---- */

#define GW_AUTH_REFRESH_MS 2000

struct gw_auth {
  struct gw_tokens *tokens; /* the snapshot in force; owned; loop thread only */
  struct gw_rate rate;
  struct lk_pg_reload reload;
  int started, failing;
  uint64_t refreshes, refresh_failures, allowed, refused, limited;
};

/* Reads the table once (blocking, before the loop serves anyone; an
 * unreadable table admits nobody until a refresh succeeds) and arms the
 * refresh timer (refresh_ms 0: GW_AUTH_REFRESH_MS). The rate limiter starts
 * with its defaults; change a->rate's fields after start to tune it.
 * Returns LK_OK, or LK_ENOMEM after logging. */
int gw_auth_start(struct gw_auth *a, uv_loop_t *loop, const char *pg, unsigned refresh_ms);

enum gw_auth_outcome {
  GW_AUTH_OK = 0,      /* a good token: the role is returned */
  GW_AUTH_MISSING,     /* no token presented (NULL or ""): 401, not counted */
  GW_AUTH_BAD,         /* unknown or revoked token: 401, counted */
  GW_AUTH_RATE_LIMITED /* too many failures from client_addr: 429, *retry_after_ms set */
};

/* Checks a presented token for a request from client_addr at now_us
 * (monotonic). Returns its role, or LK_ROLE_NONE; *outcome says why (may be
 * NULL), *name the token's name when OK (borrowed until the next refresh
 * swaps the snapshot: copy it if it must live past the current callback),
 * *retry_after_ms is set when rate limited and 0 otherwise. */
enum lk_role gw_auth_check(struct gw_auth *a, const char *token, const char *client_addr,
                           int64_t now_us, const char **name, uint32_t *retry_after_ms,
                           enum gw_auth_outcome *outcome);

/* Closes the timer and frees the snapshot. Safe with a read in flight: it
 * finishes on its thread and its completion frees what it read and closes
 * the connection; `a` must stay allocated until the loop has run that
 * completion (uv_run to the end does). */
void gw_auth_stop(struct gw_auth *a);

#endif
