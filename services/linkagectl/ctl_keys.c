/* linkagectl keys gen, device add|revoke, unit add|revoke: the CURVE key
 * registry (table keys, read by intake and dispatch; linkage/zap.h).
 * A revocation is also appended to the ledger as a key_revoked event. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "ctl.h"
#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/zap.h"

#define KEY_ID_MAX 100 /* "key-<kind>-<id>" must stay an incident id */

static const char keys_help[] =
    "NAME\n"
    "    linkagectl keys gen - make a CURVE key pair\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl keys gen [--out FILE]\n"
    "\n"
    "DESCRIPTION\n"
    "    Prints a new CURVE key pair in Z85 as two lines\n"
    "      public = <40 characters>\n"
    "      secret = <40 characters>\n"
    "    With --out FILE both lines go to FILE (created with mode 0600; an\n"
    "    existing file is not overwritten) and only the public line is printed.\n"
    "    A daemon's curve_secret_file is such a file; a device or unit keeps its\n"
    "    secret and the operator registers its public key (device add, unit add).\n"
    "\n"
    "EXIT STATUS\n"
    "    0 written, 1 the file could not be written, 2 usage.\n";

static const char registry_help[] =
    "NAME\n"
    "    linkagectl device|unit|subscriber add|revoke - the CURVE key registry\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl device add DEVICE_ID PUBLIC_KEY [--pg CONNINFO]\n"
    "    linkagectl device revoke DEVICE_ID [--pg CONNINFO] [--timeout MS]\n"
    "    linkagectl unit add UNIT_ID PUBLIC_KEY [--pg CONNINFO]\n"
    "    linkagectl unit revoke UNIT_ID [--pg CONNINFO] [--timeout MS]\n"
    "    linkagectl subscriber add SYSTEM_ID PUBLIC_KEY [--pg CONNINFO]\n"
    "    linkagectl subscriber revoke SYSTEM_ID [--pg CONNINFO] [--timeout MS]\n"
    "\n"
    "DESCRIPTION\n"
    "    add ties a Z85 public key (from linkagectl keys gen) to a device or unit\n"
    "    id in the table keys. With curve=true intake admits a device, and\n"
    "    dispatch a unit, only with a registered key that is not revoked, and only\n"
    "    as the id the key is tied to; with curve=true the gateway admits a city\n"
    "    system to the public feed (7006, 7007) only with a subscriber key.\n"
    "    An id may have several keys (rotation); a\n"
    "    key belongs to one id for good and cannot be added again once revoked.\n"
    "\n"
    "    revoke sets revoked_at on every key of the id, then appends one\n"
    "    key_revoked event per revoked key to the ledger (incident\n"
    "    key-<kind>-<id>, actor operator:<$LINKAGE_ACTOR or $USER>). The daemons\n"
    "    re-read the registry every keys_refresh_ms: the key's connections are\n"
    "    refused from then on, without a restart. Running revoke again records\n"
    "    any event that did not reach the ledger; the ledger drops repeats.\n"
    "\n"
    "    --pg overrides $LINKAGE_PG; the ledger is $LINKAGE_LEDGER_ENDPOINT (with\n"
    "    link_curve, LINKAGE_LINK_CURVE and LINKAGE_LINK_KEY_FILE as for every\n"
    "    command; make run leaves them in its run directory's linkage.conf). A\n"
    "    ledger that does not answer, or refuses the handshake, leaves the keys\n"
    "    revoked and the command says why in one line (exit 75), within\n"
    "    --timeout MS (default 5000) per attempt, three attempts at most.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 done, 1 refused (malformed or duplicate key, no key for the id),\n"
    "    2 usage or the database could not be reached, 75 the keys are revoked\n"
    "    but the ledger did not record it (run revoke again).\n";

/* The table as the ledger creates it, so keys can be registered before the ledger first ran;
 * under the ledger's advisory lock. */
static int write_pair(const char *path, const char *pub, const char *sec) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    fprintf(stderr, "linkagectl keys gen: cannot create %s: %s\n", path, strerror(errno));
    return CTL_EXIT_FAIL;
  }
  char buf[160];
  int n = snprintf(buf, sizeof buf, "public = %s\nsecret = %s\n", pub, sec);
  if (write(fd, buf, (size_t)n) != n || close(fd) != 0) {
    fprintf(stderr, "linkagectl keys gen: cannot write %s: %s\n", path, strerror(errno));
    return CTL_EXIT_FAIL;
  }
  return CTL_EXIT_OK;
}

int ctl_keys_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"out", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
  const char *out = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'o': out = optarg; break;
    case 'h': fputs(keys_help, stdout); return CTL_EXIT_OK;
    default: fputs(keys_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  if (argc - optind != 1 || strcmp(argv[optind], "gen") != 0) {
    fprintf(stderr, "linkagectl keys: expected \"gen\"; see --help\n");
    return CTL_EXIT_USAGE;
  }
  char pub[LK_KEY_Z85 + 1], sec[LK_KEY_Z85 + 1];
  if (zmq_curve_keypair(pub, sec) != 0) {
    fprintf(stderr, "linkagectl keys gen: %s\n", zmq_strerror(errno));
    return CTL_EXIT_FAIL;
  }
  if (out) {
    int rc = write_pair(out, pub, sec);
    if (rc == CTL_EXIT_OK) printf("public = %s\n", pub);
    return rc;
  }
  printf("public = %s\nsecret = %s\n", pub, sec);
  return CTL_EXIT_OK;
}

int ctl_key_id_ok(const char *id) {
  return lk_id_valid(id, KEY_ID_MAX);
}

int ctl_key_z85_ok(const char *key) {
  uint8_t bin[LK_KEY_LEN];
  return strlen(key) == LK_KEY_Z85 && zmq_z85_decode(bin, key) != NULL;
}

static int add_key(PGconn *pg, const char *kind, const char *id, const char *key) {
  const char *params[3] = {kind, id, key};
  PGresult *res = PQexecParams(pg, "insert into keys (kind, id, public_key) values ($1, $2, $3)", 3,
                               NULL, params, NULL, NULL, 0);
  int rc = CTL_EXIT_OK;
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "23505") == 0) {
      fprintf(stderr,
              "linkagectl %s add: key already registered (a key belongs to one id for good, "
              "and a revoked key cannot come back)\n",
              kind);
      rc = CTL_EXIT_FAIL;
    } else {
      fprintf(stderr, "linkagectl %s add: %s", kind, PQerrorMessage(pg));
      rc = CTL_EXIT_USAGE;
    }
  } else {
    printf("added %s %s key=%s\n", kind, id, key);
  }
  PQclear(res);
  return rc;
}

/* Appends one key_revoked event; 0 when the ledger committed it (now or before), 1 when it
 * refused it, 75 without an answer. */
static int record_revocation(void *zctx, const char *endpoint, const char *kind, const char *id,
                             const char *key, unsigned timeout_ms) {
  char incident[LK_ID_MAX], event_id[256], actor[300];
  snprintf(incident, sizeof incident, "key-%s-%s", kind, id);
  if (lk_event_id(event_id, sizeof event_id, incident, LINKAGE__V1__EVENT_TYPE__KEY_REVOKED, key,
                  0) != LK_OK)
    return CTL_EXIT_FAIL;
  snprintf(actor, sizeof actor, "operator:%s", ctl_default_actor());

  Linkage__V1__KeyRevoked kr = LINKAGE__V1__KEY_REVOKED__INIT;
  kr.kind = (char *)kind;
  kr.id = (char *)id;
  kr.public_key = (char *)key;
  Linkage__V1__Event ev;
  lk_event_envelope(&ev, event_id, incident, LINKAGE__V1__EVENT_TYPE__KEY_REVOKED, lk_now_us(),
                    actor);
  ev.key_revoked = &kr;
  Linkage__V1__AppendRequest ar = LINKAGE__V1__APPEND_REQUEST__INIT;
  ar.event = &ev;
  Linkage__V1__LedgerRequest req = LINKAGE__V1__LEDGER_REQUEST__INIT;
  req.request_id = (uint64_t)lk_now_us();
  req.body_case = LINKAGE__V1__LEDGER_REQUEST__BODY_APPEND;
  req.append = &ar;
  size_t len = linkage__v1__ledger_request__get_packed_size(&req);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return CTL_EXIT_FAIL;
  linkage__v1__ledger_request__pack(&req, buf);

  /* Lazy Pirate (zguide ch. 4): a fresh socket per attempt, each send and wait bounded. Resending
   * is safe: the event id is fixed by the key, the ledger drops a repeat. */
  int rc = CTL_EXIT_TEMPFAIL;
  char who[32];
  snprintf(who, sizeof who, "%s revoke", kind);
  const void *frames[2] = {"", buf};
  size_t lens[2] = {0, len};
  for (int attempt = 0; attempt < 3 && rc == CTL_EXIT_TEMPFAIL; attempt++) {
    struct ctl_conn conn;
    if (ctl_conn_open(&conn, zctx, ZMQ_DEALER, endpoint, CTL_PEER_LINK, who,
                      "LINKAGE_LEDGER_ENDPOINT") != 0) {
      rc = CTL_EXIT_USAGE;
      break;
    }
    int64_t deadline = lk_mono_us() + (int64_t)timeout_ms * 1000;
    enum ctl_wait w = ctl_conn_send(&conn, frames, lens, 2, deadline);
    while (w == CTL_WAIT_READY && rc == CTL_EXIT_TEMPFAIL) {
      w = ctl_conn_wait(&conn, deadline);
      if (w == CTL_WAIT_INTR) w = CTL_WAIT_READY; /* the wait goes on to its deadline */
      if (w != CTL_WAIT_READY) break;
      /* The reply is [empty delimiter,] LedgerReply: the body is the last frame. */
      zmq_msg_t m;
      zmq_msg_init(&m);
      int got = zmq_msg_recv(&m, conn.sock, ZMQ_DONTWAIT) >= 0;
      while (got && zmq_msg_more(&m)) {
        zmq_msg_close(&m);
        zmq_msg_init(&m);
        got = zmq_msg_recv(&m, conn.sock, ZMQ_DONTWAIT) >= 0;
      }
      Linkage__V1__LedgerReply *rep =
          got ? linkage__v1__ledger_reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m)) : NULL;
      zmq_msg_close(&m);
      if (!rep) continue;
      if (rep->request_id == req.request_id &&
          rep->body_case == LINKAGE__V1__LEDGER_REPLY__BODY_APPEND) {
        Linkage__V1__AppendReply *a = rep->append;
        if (a->status == LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED ||
            a->status == LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE) {
          printf("revoked %s %s key=%s event_id=%s position=%llu\n", kind, id, key, event_id,
                 (unsigned long long)a->position);
          rc = CTL_EXIT_OK;
        } else if (a->status == LINKAGE__V1__APPEND_REPLY__STATUS__INVALID) {
          fprintf(stderr, "linkagectl %s revoke: the ledger refused the event: %s\n", kind,
                  a->error);
          rc = CTL_EXIT_FAIL;
        } else {
          linkage__v1__ledger_reply__free_unpacked(rep, NULL);
          break; /* BUSY: send again */
        }
      }
      linkage__v1__ledger_reply__free_unpacked(rep, NULL);
    }
    /* A refused handshake is final: the same key meets the same refusal. */
    if (rc == CTL_EXIT_TEMPFAIL && w == CTL_WAIT_ERROR)
      fprintf(stderr, "linkagectl %s revoke: socket error on %s: %s\n", kind, endpoint,
              zmq_strerror(errno));
    else if (rc == CTL_EXIT_TEMPFAIL && (w == CTL_WAIT_REFUSED || attempt == 2))
      ctl_conn_explain(&conn, timeout_ms);
    ctl_conn_close(&conn);
    if (w == CTL_WAIT_REFUSED || w == CTL_WAIT_ERROR) break;
  }
  if (rc == CTL_EXIT_TEMPFAIL)
    fprintf(stderr,
            "linkagectl %s revoke: key %s is revoked, but the ledger at %s did not record it; "
            "run revoke again\n",
            kind, key, endpoint);
  free(buf);
  return rc;
}

static int revoke_keys(PGconn *pg, const struct ctl_config *cfg, const char *kind, const char *id,
                       unsigned timeout_ms) {
  const char *params[2] = {kind, id};
  PGresult *res = PQexecParams(pg,
                               "update keys set revoked_at = now() where kind = $1 and id = $2 "
                               "and revoked_at is null",
                               2, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    fprintf(stderr, "linkagectl %s revoke: %s", kind, PQerrorMessage(pg));
    PQclear(res);
    return CTL_EXIT_USAGE;
  }
  PQclear(res);
  /* Every revoked key of the id, not only those revoked now: a revoke that could not reach the
   * ledger is completed by running it again. */
  res = PQexecParams(pg,
                     "select public_key from keys where kind = $1 and id = $2 "
                     "and revoked_at is not null order by revoked_at, public_key",
                     2, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    fprintf(stderr, "linkagectl %s revoke: %s", kind, PQerrorMessage(pg));
    PQclear(res);
    return CTL_EXIT_USAGE;
  }
  int n = PQntuples(res), rc = CTL_EXIT_OK;
  if (n == 0) {
    fprintf(stderr, "linkagectl %s revoke: no key registered for %s %s\n", kind, kind, id);
    rc = CTL_EXIT_FAIL;
  }
  void *zctx = n ? zmq_ctx_new() : NULL;
  for (int i = 0; i < n && zctx; i++) {
    int r =
        record_revocation(zctx, cfg->ledger_endpoint, kind, id, PQgetvalue(res, i, 0), timeout_ms);
    if (r != CTL_EXIT_OK && rc == CTL_EXIT_OK) rc = r;
    /* A ledger that did not answer for one key will not for the next: say so, not wait again. */
    if (r == CTL_EXIT_TEMPFAIL || r == CTL_EXIT_USAGE) {
      if (i + 1 < n)
        fprintf(stderr, "linkagectl %s revoke: %d more revoked key(s) of %s not recorded either\n",
                kind, n - i - 1, id);
      break;
    }
  }
  if (zctx) zmq_ctx_term(zctx);
  PQclear(res);
  return rc;
}

/* linkagectl device|unit add|revoke; argv[0] is "device" or "unit". */
int ctl_registry_main(int argc, char **argv) {
  static const struct option longopts[] = {{"pg", required_argument, NULL, 'p'},
                                           {"timeout", required_argument, NULL, 't'},
                                           {"help", no_argument, NULL, 'h'},
                                           {0, 0, 0, 0}};
  const char *kind = argv[0];
  struct ctl_config cfg;
  uint64_t timeout = 5000;
  int c;
  if (ctl_config_load(&cfg) != 0) return CTL_EXIT_CONFIG;
  /* A Z85 key may begin with '-' (about one in 85), which getopt would take for options: a
   * public key is moved behind "--", where getopt leaves it alone (it is the last operand). */
  char *args[64];
  if (argc + 1 > (int)(sizeof args / sizeof args[0])) {
    fputs(registry_help, stderr);
    return CTL_EXIT_USAGE;
  }
  int n = 0, keys = 0, dashdash = 0;
  char *key_args[4];
  for (int i = 1; i < argc; i++)
    dashdash |= strcmp(argv[i], "--") == 0;
  for (int i = 0; i < argc; i++) {
    int key_like = !dashdash && i > 0 && argv[i][0] == '-' && ctl_key_z85_ok(argv[i]) &&
                   strncmp(argv[i], "--pg=", 5) != 0 && strncmp(argv[i], "--timeout=", 10) != 0;
    if (key_like && keys < 4)
      key_args[keys++] = argv[i];
    else
      args[n++] = argv[i];
  }
  if (keys) {
    args[n++] = "--";
    for (int i = 0; i < keys; i++)
      args[n++] = key_args[i];
  }
  argc = n;
  argv = args;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'p': snprintf(cfg.pg, sizeof cfg.pg, "%s", optarg); break;
    case 't':
      if (ctl_parse_u64(optarg, &timeout) != 0 || timeout == 0 || timeout > 600000) {
        fprintf(stderr, "linkagectl %s: --timeout wants 1..600000 ms\n", kind);
        return CTL_EXIT_USAGE;
      }
      break;
    case 'h': fputs(registry_help, stdout); return CTL_EXIT_OK;
    default: fputs(registry_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  int npos = argc - optind;
  const char *verb = npos > 0 ? argv[optind] : "";
  int add = strcmp(verb, "add") == 0;
  if (!add && strcmp(verb, "revoke") != 0) {
    fprintf(stderr, "linkagectl %s: expected add or revoke; see --help\n", kind);
    return CTL_EXIT_USAGE;
  }
  if (npos != (add ? 3 : 2)) {
    fprintf(stderr, "linkagectl %s %s: expected %s\n", kind, verb,
            add ? "ID and PUBLIC_KEY" : "ID only");
    return CTL_EXIT_USAGE;
  }
  const char *id = argv[optind + 1];
  if (!ctl_key_id_ok(id)) {
    fprintf(stderr,
            "linkagectl %s %s: the id must be 1-%d printable ASCII characters without spaces "
            "or quotes\n",
            kind, verb, KEY_ID_MAX);
    return CTL_EXIT_USAGE;
  }
  if (add && !ctl_key_z85_ok(argv[optind + 2])) {
    fprintf(stderr, "linkagectl %s add: PUBLIC_KEY must be 40 Z85 characters (keys gen)\n", kind);
    return CTL_EXIT_FAIL;
  }
  PGconn *pg = ctl_registry_connect(cfg.pg, kind, LK_KEYS_TABLE_SQL, "keys");
  if (!pg) return CTL_EXIT_USAGE;
  int rc = add ? add_key(pg, kind, id, argv[optind + 2])
               : revoke_keys(pg, &cfg, kind, id, (unsigned)timeout);
  PQfinish(pg);
  return rc;
}

int ctl_curve_client(void *sock, const char *who) {
  const char *mine = getenv("LINKAGE_CURVE_CLIENT_KEY_FILE");
  const char *server = getenv("LINKAGE_CURVE_SERVER_KEY_FILE");
  char pub[LK_KEY_Z85 + 1], sec[LK_KEY_Z85 + 1], srv[LK_KEY_Z85 + 1];
  if (!mine || !*mine) return 0;
  if (!server || !*server) {
    fprintf(stderr,
            "linkagectl %s: LINKAGE_CURVE_CLIENT_KEY_FILE needs "
            "LINKAGE_CURVE_SERVER_KEY_FILE (the server's public key)\n",
            who);
    return -1;
  }
  if (lk_curve_read_key(mine, "public", pub) != 0 || lk_curve_read_key(mine, "secret", sec) != 0 ||
      lk_curve_read_key(server, "public", srv) != 0) {
    fprintf(stderr, "linkagectl %s: cannot read the keys in %s and %s (keys gen --out files)\n",
            who, mine, server);
    return -1;
  }
  if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, srv, LK_KEY_Z85) != 0 ||
      zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, LK_KEY_Z85) != 0 ||
      zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, LK_KEY_Z85) != 0) {
    fprintf(stderr, "linkagectl %s: cannot set CURVE keys: %s\n", who, zmq_strerror(errno));
    return -1;
  }
  return 0;
}

int ctl_link_client(void *sock, const char *who) {
  struct ctl_config cfg;
  if (ctl_config_load(&cfg) != 0) return -1;
  if (!cfg.link_curve) return 0;
  struct lk_link link;
  if (lk_link_load(&link, 1, cfg.link_key_file) != LK_OK) {
    fprintf(stderr, "linkagectl %s: cannot read the link key (link_key_file \"%s\")\n", who,
            cfg.link_key_file);
    return -1;
  }
  if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, link.public_key, LK_KEY_Z85) != 0 ||
      zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, link.public_key, LK_KEY_Z85) != 0 ||
      zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, link.secret_key, LK_KEY_Z85) != 0) {
    fprintf(stderr, "linkagectl %s: cannot set CURVE keys: %s\n", who, zmq_strerror(errno));
    return -1;
  }
  return 0;
}
