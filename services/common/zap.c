/* CURVE authentication: the ZAP handler (RFC 27), the key registry and its
 * refresh from PostgreSQL. See linkage/zap.h. */
#include "linkage/zap.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "linkage/error.h"
#include "linkage/log.h"

/* ---- the registry ---- */

struct lk_keyring *lk_keyring_new(void) {
  return calloc(1, sizeof(struct lk_keyring));
}

void lk_keyring_destroy(struct lk_keyring **r) {
  if (!*r) return;
  free((*r)->v);
  free(*r);
  *r = NULL;
}

int lk_keyring_add(struct lk_keyring *r, const char *z85, const char *id) {
  if (!z85 || strlen(z85) != LK_KEY_Z85 || !id || !lk_id_valid(id, LK_ID_MAX - 1)) return LK_EINVAL;
  uint8_t key[LK_KEY_LEN];
  if (!zmq_z85_decode(key, z85)) return LK_EINVAL;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    struct lk_key_entry *v = realloc(r->v, cap * sizeof *v);
    if (!v) return LK_ENOMEM;
    r->v = v;
    r->cap = cap;
  }
  memcpy(r->v[r->n].key, key, LK_KEY_LEN);
  snprintf(r->v[r->n].id, LK_ID_MAX, "%s", id);
  r->n++;
  return LK_OK;
}

static int entry_cmp(const void *a, const void *b) {
  return memcmp(((const struct lk_key_entry *)a)->key, ((const struct lk_key_entry *)b)->key,
                LK_KEY_LEN);
}

void lk_keyring_seal(struct lk_keyring *r) {
  if (r->n > 1) qsort(r->v, r->n, sizeof *r->v, entry_cmp);
}

const char *lk_keyring_find(const struct lk_keyring *r, const uint8_t key[LK_KEY_LEN]) {
  if (!r || r->n == 0) return NULL;
  struct lk_key_entry probe;
  memcpy(probe.key, key, LK_KEY_LEN);
  const struct lk_key_entry *e = bsearch(&probe, r->v, r->n, sizeof *r->v, entry_cmp);
  return e ? e->id : NULL;
}

/* ---- the decision ---- */

static int frame_is(const void *f, size_t len, const char *s) {
  return len == strlen(s) && memcmp(f, s, len) == 0;
}

static void reply_status(struct lk_zap_reply *out, const char *code, const char *text) {
  snprintf(out->status_code, sizeof out->status_code, "%s", code);
  snprintf(out->status_text, sizeof out->status_text, "%s", text);
}

void lk_zap_decide(const struct lk_keyring *ring, const void *const *frames, const size_t *lens,
                   int n, struct lk_zap_reply *out) {
  memset(out, 0, sizeof *out);
  if (n >= 2) {
    out->request_id = frames[1];
    out->request_id_len = lens[1];
  }
  if (n < 6) {
    reply_status(out, "500", "malformed ZAP request: fewer than six frames");
    return;
  }
  if (!frame_is(frames[0], lens[0], "1.0")) {
    reply_status(out, "500", "unsupported ZAP version: expected 1.0");
    return;
  }
  if (!frame_is(frames[5], lens[5], "CURVE")) {
    reply_status(out, "400", "mechanism not allowed: CURVE only");
    return;
  }
  if (n != 7 || lens[6] != LK_KEY_LEN) {
    reply_status(out, "500", "malformed ZAP request: CURVE needs one 32-byte key");
    return;
  }
  const char *id = lk_keyring_find(ring, frames[6]);
  if (!id) {
    reply_status(out, "400", "key not registered or revoked");
    return;
  }
  reply_status(out, "200", "OK");
  snprintf(out->user_id, sizeof out->user_id, "%s", id);
  /* ZMTP property list: name length (1 byte), name, value length (4 bytes, network order),
   * value. The daemon reads it back per message with zmq_msg_gets. */
  char z85[LK_KEY_Z85 + 1];
  zmq_z85_encode(z85, frames[6], LK_KEY_LEN);
  size_t nl = strlen(LK_ZAP_KEY_PROPERTY);
  uint8_t *p = out->metadata;
  *p++ = (uint8_t)nl;
  memcpy(p, LK_ZAP_KEY_PROPERTY, nl);
  p += nl;
  *p++ = 0;
  *p++ = 0;
  *p++ = 0;
  *p++ = LK_KEY_Z85;
  memcpy(p, z85, LK_KEY_Z85);
  p += LK_KEY_Z85;
  out->metadata_len = (size_t)(p - out->metadata);
}

int lk_zap_still_admitted(const struct lk_keyring *ring, const char *user_id, const char *key_z85) {
  if (!user_id || !key_z85 || strlen(key_z85) != LK_KEY_Z85) return 0;
  uint8_t key[LK_KEY_LEN];
  if (!zmq_z85_decode(key, key_z85)) return 0;
  const char *id = lk_keyring_find(ring, key);
  return id && strcmp(id, user_id) == 0;
}

int lk_endpoint_is_local(const char *ep) {
  if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9)) return 1;
  if (strncmp(ep, "tcp://", 6) != 0) return 0;
  const char *host = ep + 6;
  static const char *const local[] = {"127.0.0.1:", "localhost:", "[::1]:"};
  for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
    if (!strncmp(host, local[i], strlen(local[i]))) return 1;
  return 0;
}

int lk_curve_read_secret(const char *path, char out[LK_KEY_Z85 + 1], char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return LK_ENOENT;
  }
  char line[256];
  int rc = LK_EINVAL;
  snprintf(err, errlen, "%s holds no Z85 secret key (a line \"secret = <40 characters>\")", path);
  while (fgets(line, sizeof line, f)) {
    char *p = line;
    while (isspace((unsigned char)*p))
      p++;
    if (*p == '#' || *p == '\0') continue;
    if (!strncmp(p, "public", 6)) continue;
    if (!strncmp(p, "secret", 6)) {
      p += 6;
      while (isspace((unsigned char)*p))
        p++;
      if (*p == '=') p++; /* one: a Z85 key may itself begin with '=' (1 in 85) */
      while (isspace((unsigned char)*p))
        p++;
    }
    size_t n = 0;
    while (p[n] && !isspace((unsigned char)p[n]))
      n++;
    uint8_t bin[LK_KEY_LEN];
    char z[LK_KEY_Z85 + 1];
    if (n != LK_KEY_Z85) break;
    memcpy(z, p, n);
    z[n] = '\0';
    if (!zmq_z85_decode(bin, z)) break;
    memcpy(out, z, sizeof z);
    rc = LK_OK;
    break;
  }
  fclose(f);
  return rc;
}

int lk_curve_read_key(const char *path, const char *name, char out[LK_KEY_Z85 + 1]) {
  FILE *f = fopen(path, "r");
  char line[256], fmt[32];
  uint8_t bin[LK_KEY_LEN];
  int rc = -1;
  if (!f) return -1;
  snprintf(fmt, sizeof fmt, "%s = %%40s", name);
  while (rc != 0 && fgets(line, sizeof line, f))
    if (sscanf(line, fmt, out) == 1 && strlen(out) == LK_KEY_Z85 && zmq_z85_decode(bin, out))
      rc = 0;
  fclose(f);
  return rc;
}

/* ---- the handler on the loop ---- */

static int link_key_is(const struct lk_auth *a, const void *key) {
  uint8_t bin[LK_KEY_LEN];
  return zmq_z85_decode(bin, a->link.public_key) && memcmp(bin, key, LK_KEY_LEN) == 0;
}

static void on_zap(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct lk_auth *a = data;
  const void *frames[LK_ZSOCK_MAX_FRAMES] = {0};
  size_t lens[LK_ZSOCK_MAX_FRAMES] = {0};
  for (int i = 0; i < m->count; i++) {
    frames[i] = zmq_msg_data(&m->frame[i]);
    lens[i] = zmq_msg_size(&m->frame[i]);
  }
  struct lk_zap_reply r;
  int link_domain = m->count > 2 && frame_is(frames[2], lens[2], LK_LINK_DOMAIN);
  /* The link key: the only one on the link domain, and a trusted relay on the device port. */
  if (a->link.curve && m->count == 7 && lens[6] == LK_KEY_LEN && link_key_is(a, frames[6])) {
    struct lk_keyring one = {0};
    struct lk_key_entry e;
    memcpy(e.key, frames[6], LK_KEY_LEN);
    snprintf(e.id, sizeof e.id, "%s", LK_LINK_USER);
    one.v = &e;
    one.n = 1;
    lk_zap_decide(&one, frames, lens, m->count, &r);
  } else {
    lk_zap_decide(link_domain ? NULL : a->ring, frames, lens, m->count, &r);
  }
  if (m->truncated) reply_status(&r, "500", "malformed ZAP request: too many frames");
  char addr[64] = "";
  if (m->count > 3) snprintf(addr, sizeof addr, "%.*s", (int)lens[3], (const char *)frames[3]);
  if (r.status_code[0] == '2') {
    a->zap_allowed++;
    lk_debug("zap: key admitted", "kind=%s id=%s address=%s", a->kind, r.user_id, addr);
  } else {
    a->zap_denied++;
    lk_info("zap: connection refused", "kind=%s address=%s status=%s err=\"%s\"", a->kind, addr,
            r.status_code, r.status_text);
  }
  /* REP must answer every request, even one it cannot read: libzmq then fails the handshake. */
  const void *bufs[6] = {
      "1.0", r.request_id ? r.request_id : "", r.status_code, r.status_text, r.user_id, r.metadata};
  size_t blen[6] = {3,
                    r.request_id_len,
                    strlen(r.status_code),
                    strlen(r.status_text),
                    strlen(r.user_id),
                    r.metadata_len};
  if (lk_zsock_sendv(s, bufs, blen, 6, ZMQ_DONTWAIT) != LK_OK)
    lk_error("zap: cannot reply", "err=\"%s\"", zmq_strerror(errno));
}

/* ---- the registry from PostgreSQL, off the loop (linkage/pg_reload.h) ---- */

static const char keys_sql[] =
    "select id, public_key from keys where kind = $1 and revoked_at is null";

/* Worker thread: the rows of our kind into a new keyring. a->kind is not changed after start. */
static void *read_keys(void *pgconn, void *data, char *err, size_t errlen) {
  const struct lk_auth *a = data;
  const char *params[1] = {a->kind};
  PGresult *res = PQexecParams(pgconn, keys_sql, 1, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    snprintf(err, errlen, "%s", PQresultErrorMessage(res));
    PQclear(res);
    return NULL;
  }
  struct lk_keyring *r = lk_keyring_new();
  for (int i = 0; r && i < PQntuples(res); i++) {
    /* A malformed row cannot be admitted; the rest still can. */
    if (lk_keyring_add(r, PQgetvalue(res, i, 1), PQgetvalue(res, i, 0)) == LK_ENOMEM)
      lk_keyring_destroy(&r);
  }
  PQclear(res);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  lk_keyring_seal(r);
  return r;
}

static void free_keys(void *snapshot) {
  struct lk_keyring *r = snapshot;
  lk_keyring_destroy(&r);
}

/* Loop thread: takes over what read_keys read. A failed read keeps the registry in force:
 * revocations wait for the database, admissions do not stop. */
static void take_keys(void *data, void *snapshot, const char *err) {
  struct lk_auth *a = data;
  struct lk_keyring *loaded = snapshot;
  a->refreshes++;
  if (!loaded) {
    a->refresh_failures++;
    lk_warn("cannot read the key registry; keeping the last one", "kind=%s err=\"%s\"", a->kind,
            err);
    return;
  }
  size_t before = a->ring ? a->ring->n : 0;
  /* A key of the old registry missing from the new one was revoked: a daemon that cannot check
   * every message (the feed's PUB) drops its connections when this count moves. */
  if (a->ring) {
    size_t i = 0, j = 0;
    while (i < a->ring->n) {
      int c = j < loaded->n ? memcmp(a->ring->v[i].key, loaded->v[j].key, LK_KEY_LEN) : -1;
      if (c == 0) {
        i++;
        j++;
      } else if (c > 0) {
        j++;
      } else {
        a->removals++;
        break;
      }
    }
  }
  lk_keyring_destroy(&a->ring);
  a->ring = loaded;
  if (a->ring->n != before)
    lk_info("key registry changed", "kind=%s keys=%zu before=%zu", a->kind, a->ring->n, before);
}

/* Without a handler libzmq admits every client that knows the server key: the handler must be
 * up before a protected socket binds, and we do not start without it. */
static int start_handler(struct lk_auth *a, uv_loop_t *loop, void *zctx) {
  struct lk_zsock_opts zo = {.linger_ms = 0, .maxmsg = 4096};
  if (lk_zsock_open(&a->zap, loop, zctx, ZMQ_REP, "@" LK_ZAP_ENDPOINT, &zo, on_zap, a, "zap") !=
      LK_OK) {
    lk_error("cannot start the ZAP handler; refusing to run CURVE without it", NULL);
    return LK_EIO;
  }
  a->zap_open = 1;
  return LK_OK;
}

int lk_auth_start(struct lk_auth *a, uv_loop_t *loop, void *zctx, const struct lk_auth_opts *o) {
  char err[512];
  memset(a, 0, sizeof *a);
  a->curve = o->curve;
  if (o->link) a->link = *o->link;
  snprintf(a->kind, sizeof a->kind, "%s", o->kind ? o->kind : "link");
  if (!o->curve && o->endpoint && !lk_endpoint_is_local(o->endpoint)) {
    lk_error("refusing to bind without CURVE",
             "endpoint=\"%s\" err=\"refusing to bind %s "
             "without CURVE: set curve=true\"",
             o->endpoint, o->endpoint);
    return LK_EINVAL;
  }
  if (!o->curve) return a->link.curve ? start_handler(a, loop, zctx) : LK_OK;
  if (!o->secret_file || !o->secret_file[0]) {
    lk_error("curve is on but curve_secret_file is not set", NULL);
    return LK_EINVAL;
  }
  if (lk_curve_read_secret(o->secret_file, a->secret, err, sizeof err) != LK_OK) {
    lk_error("cannot read the CURVE secret key", "err=\"%s\"", err);
    return LK_EINVAL;
  }
  if (start_handler(a, loop, zctx) != LK_OK) return LK_EIO;
  /* The first read blocks, before the loop runs: the port should not open on an empty
   * registry when the database is there. */
  unsigned ms = o->refresh_ms ? o->refresh_ms : 2000;
  if (lk_pg_reload_start(&a->reload, loop, o->pg, ms, read_keys, take_keys, free_keys, a) != 0) {
    lk_error("cannot start the key registry refresh", NULL);
    return LK_EIO;
  }
  a->reload_started = 1;
  if (!a->ring) {
    a->ring = lk_keyring_new();
    if (!a->ring) return LK_ENOMEM;
  }
  lk_info("curve on", "kind=%s keys=%zu refresh_ms=%u", a->kind, a->ring->n, ms);
  return LK_OK;
}

/* ---- links ---- */

int lk_link_load(struct lk_link *l, int curve, const char *key_file) {
  char err[512];
  memset(l, 0, sizeof *l);
  if (!curve) return LK_OK;
  if (!key_file || !key_file[0]) {
    lk_error("link_curve is on but link_key_file is not set", NULL);
    return LK_EINVAL;
  }
  if (lk_curve_read_secret(key_file, l->secret_key, err, sizeof err) != LK_OK) {
    lk_error("cannot read the link key", "err=\"%s\"", err);
    return LK_EINVAL;
  }
  if (zmq_curve_public(l->public_key, l->secret_key) != 0) {
    lk_error("cannot derive the link's public key", "err=\"%s\"", zmq_strerror(errno));
    return LK_EINVAL;
  }
  l->curve = 1;
  return LK_OK;
}

void lk_link_server_opts(const struct lk_link *l, struct lk_zsock_opts *o) {
  if (!l || !l->curve) return;
  o->curve_secret = l->secret_key;
  o->zap_domain = LK_LINK_DOMAIN;
}

void lk_link_client_opts(const struct lk_link *l, const char *server_key, struct lk_zsock_opts *o) {
  if (!l || !l->curve) return;
  o->curve_server_key = server_key ? server_key : l->public_key;
  o->curve_public = l->public_key;
  o->curve_client_secret = l->secret_key;
}

void lk_auth_socket_opts(const struct lk_auth *a, struct lk_zsock_opts *o) {
  if (!a->curve) return;
  o->curve_secret = a->secret;
  o->zap_domain = LK_ZAP_DOMAIN;
}

int lk_auth_check(struct lk_auth *a, const struct lk_frames *m, char *user_id) {
  user_id[0] = '\0';
  if (!a->curve) return LK_OK;
  if (m->count == 0) return LK_ENOENT;
  /* A ROUTER adds the routing id frame itself; the metadata rides on the frames the peer sent. */
  zmq_msg_t *f = (zmq_msg_t *)&m->frame[m->count - 1];
  const char *uid = zmq_msg_gets(f, "User-Id");
  const char *key = zmq_msg_gets(f, LK_ZAP_KEY_PROPERTY);
  if (uid) snprintf(user_id, LK_ID_MAX, "%s", uid);
  if (a->link.curve && uid && strcmp(uid, LK_LINK_USER) == 0 && key &&
      strcmp(key, a->link.public_key) == 0)
    return LK_OK;
  if (lk_zap_still_admitted(a->ring, uid, key)) return LK_OK;
  a->revoked_refused++;
  return LK_ENOENT;
}

const char *lk_auth_msg_key(const struct lk_auth *a, const struct lk_frames *m) {
  if (!a->curve || m->count == 0) return NULL;
  return zmq_msg_gets((zmq_msg_t *)&m->frame[m->count - 1], LK_ZAP_KEY_PROPERTY);
}

void lk_auth_stop(struct lk_auth *a) {
  if (a->zap_open) lk_zsock_close(&a->zap);
  a->zap_open = 0;
  if (a->reload_started) lk_pg_reload_stop(&a->reload);
  a->reload_started = 0;
  lk_keyring_destroy(&a->ring);
}
