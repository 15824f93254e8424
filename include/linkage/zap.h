#ifndef LINKAGE_ZAP_H
#define LINKAGE_ZAP_H

/* CURVE authentication for the ports devices and units reach over open
 * networks: a ZAP handler of our own on RFC 27 (ZAP/1.0 over
 * inproc://zeromq.zap.01) that admits only registered, unrevoked public keys
 * and names the id each key is tied to as the connection's User-Id, and the
 * registry those keys come from (PostgreSQL table `keys`, re-read every
 * keys_refresh_ms off the loop).
 *
 * ZAP runs only at the handshake. A key revoked later keeps its connection,
 * so the daemon asks lk_auth_check() about every message: the handler also
 * hands the key itself to the connection as the metadata property X-Key, and
 * a message whose key has left the registry is refused. */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "linkage/config.h"
#include "linkage/pg_reload.h"
#include "linkage/event.h"
#include "linkage/zsock.h"

#define LK_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define LK_ZAP_DOMAIN "linkage"
#define LK_KEY_LEN 32 /* a CURVE public key, binary */
#define LK_KEY_Z85 40 /* the same in Z85, without the NUL */
#define LK_ZAP_KEY_PROPERTY "X-Key"

/* ---- the registry: public key -> id, for one kind (device or unit) ---- */

/* The registry's table, one definition for the ledger (which creates it with
 * its schema) and linkagectl (which may register keys before the ledger first
 * ran). The kinds are a named constraint a later kind can replace (subscribers came
 * after devices and units). Not append-only: a revocation sets revoked_at and is also recorded in
 * the ledger as a key_revoked event. A public key belongs to one id for good. */
#define LK_KEYS_TABLE_SQL                                                                          \
  "create table if not exists keys (\n"                                                            \
  "  kind text not null,\n"                                                                        \
  "  id text not null,\n"                                                                          \
  "  public_key text not null unique,\n"                                                           \
  "  added_at timestamptz not null default now(),\n"                                               \
  "  revoked_at timestamptz\n"                                                                     \
  ");\n"                                                                                           \
  "create index if not exists keys_kind_id on keys (kind, id);\n"                                  \
  "alter table keys drop constraint if exists keys_kind_check;\n"                                  \
  "alter table keys add constraint keys_kind_check\n"                                              \
  "  check (kind in ('device', 'unit', 'subscriber'));\n"

struct lk_key_entry {
  uint8_t key[LK_KEY_LEN];
  char id[LK_ID_MAX];
};

struct lk_keyring {
  struct lk_key_entry *v; /* sorted by key once lk_keyring_seal ran */
  size_t n, cap;
};

struct lk_keyring *lk_keyring_new(void);
void lk_keyring_destroy(struct lk_keyring **r);
/* Adds a key given in Z85. LK_EINVAL for a malformed key or id, LK_ENOMEM. */
int lk_keyring_add(struct lk_keyring *r, const char *z85, const char *id);
/* Sorts for lookups; call after the last add. */
void lk_keyring_seal(struct lk_keyring *r);
/* The id a binary key is tied to, or NULL. */
const char *lk_keyring_find(const struct lk_keyring *r, const uint8_t key[LK_KEY_LEN]);

/* ---- the ZAP decision, a plain function ---- */

struct lk_zap_reply {
  const void *request_id; /* borrowed from the request frames; NULL if none */
  size_t request_id_len;
  char status_code[4]; /* "200", "400" or "500" */
  char status_text[128];
  char user_id[LK_ID_MAX];
  uint8_t metadata[64]; /* ZMTP property list: X-Key = the key in Z85 */
  size_t metadata_len;
};

/* Decides a ZAP request given as frames[0..n): version "1.0", request id,
 * domain, address, routing id, mechanism "CURVE", one 32-byte key. 200 with
 * user_id = the key's id when the key is in ring (NULL ring: nobody); 400 for
 * an unknown key or another mechanism; 500 for a malformed request. */
void lk_zap_decide(const struct lk_keyring *ring, const void *const *frames, const size_t *lens,
                   int n, struct lk_zap_reply *out);

/* Whether a message that arrived with User-Id user_id and property X-Key
 * key_z85 (either may be NULL) is still allowed: its key is in ring and tied
 * to user_id. */
int lk_zap_still_admitted(const struct lk_keyring *ring, const char *user_id, const char *key_z85);

/* 1 if endpoint only reaches this host: ipc://, inproc://, or tcp on
 * 127.0.0.1, localhost or [::1]. */
int lk_endpoint_is_local(const char *endpoint);

/* Reads a Z85 secret key (the first 40 non-blank characters of the file,
 * or the line "secret = ..." that `linkagectl keys gen --out` writes). */
int lk_curve_read_secret(const char *path, char out[LK_KEY_Z85 + 1], char *err, size_t errlen);
/* The Z85 key on the line "<name> = KEY" ("public" or "secret") of a keys gen file; 0 or -1. */
int lk_curve_read_key(const char *path, const char *name, char out[LK_KEY_Z85 + 1]);

/* ---- the links between daemons ---- */

/* When the daemons run on different hosts, their links (the ledger's requests and committed
 * stream, the router's commands, the gateway's relay to intake) can speak CURVE too. The stack
 * has one key pair of its own, link_key_file (`linkagectl keys gen --out`), copied to every host:
 * a link server socket uses its secret, a link client presents the pair and expects its public
 * key from the server, and the ZAP handler admits on the link domain only that key, naming the
 * peer LK_LINK_USER. The same key is admitted on the device port as a trusted relay (the
 * gateway's Open311 reports, which carry other device ids). */
#define LK_LINK_DOMAIN "linkage-link"
/* The two settings of a daemon's links, for its config table (T: its config struct, with
 * `int link_curve` and `char link_key_file[LK_CONFIG_STR]`). */
#define LK_LINK_CONFIG(T)                                                                          \
  {"link_curve",                                                                                   \
   LK_CFG_BOOL,                                                                                    \
   offsetof(T, link_curve),                                                                        \
   0,                                                                                              \
   0,                                                                                              \
   "false",                                                                                        \
   "CURVE on the links between daemons (ledger requests and stream, router commands)"},            \
  {                                                                                                \
    "link_key_file", LK_CFG_STRING, offsetof(T, link_key_file), 0, 0, "",                          \
        "the stack's link key pair (linkagectl keys gen --out), the same file on every host"       \
  }
#define LK_LINK_USER "@link"

struct lk_link {
  int curve;
  char public_key[LK_KEY_Z85 + 1];
  char secret_key[LK_KEY_Z85 + 1];
};

/* curve 0: plain links (nothing read). Otherwise reads the pair from key_file (its secret; the
 * public key is derived). Returns LK_OK, or an error after logging. */
int lk_link_load(struct lk_link *l, int curve, const char *key_file);
/* Sets a link server socket's CURVE fields (nothing when the links are plain). */
void lk_link_server_opts(const struct lk_link *l, struct lk_zsock_opts *o);
/* Sets a link client socket's CURVE fields; server_key NULL means the link key itself (every
 * link server but intake's device port, whose server key is curve_server_key_file's). */
void lk_link_client_opts(const struct lk_link *l, const char *server_key, struct lk_zsock_opts *o);

/* ---- the daemon side: handler, registry refresh, per-message check ---- */

struct lk_auth_opts {
  const char *kind;     /* "device" or "unit": the rows of `keys` this daemon admits */
  const char *pg;       /* libpq conninfo */
  unsigned refresh_ms;  /* re-read the registry this often */
  const char *endpoint; /* the port to protect, for the loopback rule */
  int curve;            /* CURVE on (0: plain; the endpoint must then be local) */
  const char *secret_file;
  const struct lk_link *link; /* borrowed, may be NULL: with link CURVE the handler admits it */
};

struct lk_auth {
  int curve;
  struct lk_link link; /* a copy: the link key the handler admits (link.curve 0: none) */
  char kind[16];
  char secret[LK_KEY_Z85 + 1];
  struct lk_keyring *ring; /* the registry in force; owned */
  struct lk_zsock zap;
  int zap_open, reload_started;
  struct lk_pg_reload reload; /* the registry re-read every refresh_ms */
  uint64_t zap_allowed, zap_denied, revoked_refused, refreshes, refresh_failures;
  uint64_t removals; /* refreshes that found a key gone (revoked) */
};

/* Checks the loopback rule, and with CURVE on: reads the secret key, starts
 * the ZAP handler, loads the registry once (an unreadable registry admits
 * nobody until a refresh succeeds) and arms the refresh timer. Call before
 * binding the protected socket. With link CURVE the handler runs too (a
 * daemon without a device or unit port passes kind and endpoint NULL and
 * curve 0). Returns LK_OK, or an error after logging. */
int lk_auth_start(struct lk_auth *a, uv_loop_t *loop, void *zctx, const struct lk_auth_opts *o);

/* Options for the protected socket: sets o's CURVE server fields when on. */
void lk_auth_socket_opts(const struct lk_auth *a, struct lk_zsock_opts *o);

/* LK_OK when CURVE is off or the message's key is still registered for its
 * User-Id (copied to user_id, LK_ID_MAX bytes; "" without CURVE); LK_ENOENT
 * when its key was revoked since the handshake. */
int lk_auth_check(struct lk_auth *a, const struct lk_frames *m, char *user_id);

/* The key a message came with (property X-Key), or NULL (CURVE off). Valid
 * while the message is. A daemon that pushes to a peer later (dispatch's
 * assignments) keeps it and asks lk_zap_still_admitted before each push. */
const char *lk_auth_msg_key(const struct lk_auth *a, const struct lk_frames *m);

void lk_auth_stop(struct lk_auth *a);

struct lk_metrics_writer;
/* The handler's figures as Prometheus families named <prefix>_curve_...: whether CURVE is on,
 * and when it is, the keys in force, handshakes allowed and denied, messages refused for a key
 * revoked since, registry reloads (zap_metrics.c). */
void lk_auth_metrics(struct lk_metrics_writer *w, const char *prefix, const struct lk_auth *a);

#endif
