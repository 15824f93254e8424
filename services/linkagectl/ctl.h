#ifndef LINKAGECTL_CTL_H
#define LINKAGECTL_CTL_H

/* linkagectl: the operator's tool. One file per subcommand (ctl_<cmd>.c),
 * the decisions (supervision, chain checking) in plain functions below so
 * the unit tests reach them without sockets, processes or a database. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "linkage/config.h"
#include "linkage/hash.h"
#include "linkage/map.h"
#include "linkage/v1/command.pb-c.h"

/* Exit codes shared by the subcommands (sysexits.h values where they fit). */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_TEMPFAIL 75 /* EX_TEMPFAIL: busy or no answer; try again */
#define CTL_EXIT_CONFIG 78   /* EX_CONFIG */

/* The same keys and environment variables as the daemons; flags override. */
struct ctl_config {
  char pg[LK_CONFIG_STR];
  char intake_endpoint[LK_CONFIG_STR];
  char ledger_endpoint[LK_CONFIG_STR];
  char ledger_stream[LK_CONFIG_STR];
  char router_endpoint[LK_CONFIG_STR];
  char dispatch_endpoint[LK_CONFIG_STR];
  int link_curve;
  char link_key_file[LK_CONFIG_STR];
};

/* The file `make run` writes into the run directory: the stack's connection string and
 * endpoints as key = value lines (pg, intake_endpoint, ...), read by every command. */
#define CTL_STACK_CONF "linkage.conf"
/* The lock `linkagectl run` (and `make run` before it) holds on the run directory. */
#define CTL_RUN_LOCK "linkage.lock"

/* Defaults, then <run dir>/linkage.conf when it exists, then LINKAGE_<KEY>. Returns 0, or prints
 * why and returns -1. */
int ctl_config_load(struct ctl_config *cfg);

/* Sets up logging for the tool (LINKAGE_LOG_LEVEL, svc=linkagectl). */
void ctl_log_init(void);

/* The daemons of one stack, in start order. Later issues add router,
 * dispatch and gateway here and nowhere else. */
struct ctl_daemon {
  const char *name;   /* control socket <run_dir>/<name>.ctl, log svc=<name> */
  const char *binary; /* next to linkagectl */
};
extern const struct ctl_daemon ctl_daemons[];
extern const size_t ctl_daemon_count;

/* "ipc://<absolute run dir>/<name>.ctl" into out. */
void ctl_control_endpoint(const char *name, char *out, size_t len);

/* A one-shot "status" request to a daemon's control socket (REQ, linger 0).
 * Start it, then poll until it answers or the caller gives up. */
struct ctl_probe {
  void *sock;
  int64_t sent_mono_us;
  char reply[512];
};
int ctl_probe_start(struct ctl_probe *p, void *zctx, const char *name, int64_t now_mono_us);
/* Waits up to timeout_ms (0: just looks). Returns 1 with p->reply filled,
 * 0 when nothing came yet, -1 on a socket error. */
int ctl_probe_poll(struct ctl_probe *p, int timeout_ms);
void ctl_probe_stop(struct ctl_probe *p);

/* Parses a non-negative decimal integer; 0 on success, -1 if malformed. */
int ctl_parse_u64(const char *s, uint64_t *out);

/* "2026-11-27T14:38:51.123456Z" from microseconds since the epoch. */
void ctl_format_time(int64_t us, char *out, size_t len);

/* The subcommands: argv[0] is the subcommand name. Each returns the exit code. */
int ctl_run_main(int argc, char **argv);
int ctl_status_main(int argc, char **argv);
int ctl_report_main(int argc, char **argv);
int ctl_verify_main(int argc, char **argv);
int ctl_tail_main(int argc, char **argv);
/* ack, escalate, de-escalate, merge, close, note (ctl_incident.c). */
int ctl_incident_main(int argc, char **argv);
/* plan declare | plan lift (ctl_incident.c). */
int ctl_plan_main(int argc, char **argv);
/* unit UNIT_ID listen | list | ack | on-scene | ... (ctl_unit.c); unit add|revoke goes on to
 * ctl_registry_main. */
int ctl_unit_main(int argc, char **argv);
/* keys gen (ctl_keys.c). */
int ctl_keys_main(int argc, char **argv);
/* device|unit add|revoke: the CURVE key registry (ctl_keys.c); argv[0] is the kind. */
int ctl_registry_main(int argc, char **argv);
/* A device or unit id the registry takes (1-100 printable ASCII, no spaces or quotes); a Z85
 * public key (40 characters that decode). 1 or 0. */
int ctl_key_id_ok(const char *id);
int ctl_key_z85_ok(const char *key);
/* token add|revoke|list: the gateway's HTTP API tokens (ctl_token.c). */
int ctl_token_main(int argc, char **argv);
/* Makes sock a CURVE client when $LINKAGE_CURVE_CLIENT_KEY_FILE names a keys gen file (the
 * device's or unit's pair) and $LINKAGE_CURVE_SERVER_KEY_FILE a file with the server's
 * "public = " line; plain otherwise. Call before connecting. 0, or -1 after saying why. */
int ctl_curve_client(void *sock, const char *who);
/* Connects to conninfo and creates a registry table (table_sql: LK_KEYS_TABLE_SQL,
 * LK_TOKENS_TABLE_SQL) as the ledger would, so linkagectl may register before the ledger first
 * ran. NULL after printing why. */
struct pg_conn;
struct pg_conn *ctl_registry_connect(const char *conninfo, const char *who, const char *table_sql,
                                     const char *table);
/* With link_curve (LINKAGE_LINK_CURVE, LINKAGE_LINK_KEY_FILE): CURVE with the stack's link key on
 * a socket to the ledger or the router. 0 (also when the links are plain), or -1 after printing
 * why. */
int ctl_link_client(void *sock, const char *who);

/* ---- request sockets that never hang (ctl_conn.c) ---- */

/* Every ZeroMQ socket linkagectl opens to a daemon goes through ctl_conn: linger 0, sends that
 * never block past a deadline, waits bounded by one, and a monitor on the connection so that a
 * command left without an answer says in one line why (nothing listens there, the handshake was
 * refused and for which key, or the daemon said nothing) and what to set. A refused handshake is
 * final in libzmq (the connection is dropped, never retried, and a blocking send on the socket
 * would wait for ever), so it ends the wait at once. */

/* What kind of port a socket talks to: which keys it presents under CURVE. */
enum ctl_peer {
  CTL_PEER_LINK,   /* the ledger or the router: the stack's link key (ctl_link_client) */
  CTL_PEER_DEVICE, /* intake's device port: the client key files (ctl_curve_client) */
  CTL_PEER_UNIT,   /* dispatch's unit port: likewise */
};

/* What was seen of one connection: the input of the line that explains a silence. */
struct ctl_silence {
  const char *who;         /* the command, as in "linkagectl <who>: ..." */
  const char *endpoint;    /* where it connected */
  const char *source;      /* the variable naming the endpoint, e.g. "LINKAGE_LEDGER_ENDPOINT" */
  const char *run_dir;     /* where make run leaves linkage.conf */
  enum ctl_peer peer;      /* the port's kind */
  int curve;               /* 1 when we presented CURVE keys */
  int watched;             /* 0: nothing is known of the connection (no monitor) */
  unsigned events;         /* ZMQ_EVENT_* bits seen */
  uint32_t protocol_error; /* the value of ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL */
  uint32_t auth_status;    /* the ZAP status code of ZMQ_EVENT_HANDSHAKE_FAILED_AUTH */
  unsigned failed;         /* handshakes that failed without a reason (ZMQ_EVENT_HANDSHAKE_
                              FAILED_NO_DETAIL): libzmq retries those, every 100 ms */
};

/* Handshakes failed without a reason this many times in a row, and none succeeded, is a wrong key
 * and no accident of a daemon restarting: as final as a refusal. */
#define CTL_HANDSHAKE_FAILURES 3

/* 1 when the peer refused the handshake for good (our mechanism or our key, or a handshake that
 * keeps failing): waiting longer or sending again on a fresh socket cannot help. */
int ctl_silence_refused(const struct ctl_silence *s);

/* One line (no newline) saying why no answer came within waited_ms and the likely fix:
 * "linkagectl <who>: no answer from <endpoint> in <N> s: <why>; <what to do>". */
void ctl_silence_line(const struct ctl_silence *s, uint64_t waited_ms, char *out, size_t len);

struct ctl_conn {
  void *sock;
  void *monitor; /* PAIR reading sock's monitor events; NULL when it could not be set up */
  struct ctl_silence seen;
};

enum ctl_wait {
  CTL_WAIT_READY = 1,    /* a message can be read (or sent, for ctl_conn_send: sent) */
  CTL_WAIT_TIMEOUT = 0,  /* the deadline passed */
  CTL_WAIT_REFUSED = -1, /* the handshake was refused for good (ctl_silence_refused) */
  CTL_WAIT_ERROR = -2,   /* a socket error (errno) */
  CTL_WAIT_INTR = -3,    /* a signal interrupted the wait; the caller looks at its flag */
};

/* A socket of type (ZMQ_DEALER, ZMQ_REQ) connected to endpoint with linger 0 and the keys the
 * peer kind wants. who and source go into the messages. 0, or -1 after printing why. */
int ctl_conn_open(struct ctl_conn *c, void *zctx, int type, const char *endpoint,
                  enum ctl_peer peer, const char *who, const char *source);
/* Sends one message of n frames, waiting no longer than deadline_mono_us for room (a DEALER or
 * REQ with no live connection has none). CTL_WAIT_READY when sent. */
enum ctl_wait ctl_conn_send(struct ctl_conn *c, const void *const *bufs, const size_t *lens,
                            size_t n, int64_t deadline_mono_us);
/* Waits until a message can be read, the handshake is refused, or deadline_mono_us. */
enum ctl_wait ctl_conn_wait(struct ctl_conn *c, int64_t deadline_mono_us);
/* Prints the line of ctl_silence_line to stderr. */
void ctl_conn_explain(const struct ctl_conn *c, uint64_t waited_ms);
void ctl_conn_close(struct ctl_conn *c);

/* PQconnectdb with a connect_timeout of 10 s unless conninfo or $PGCONNECT_TIMEOUT names one:
 * libpq's own default is to wait for ever on an address that drops packets. */
struct pg_conn *ctl_pg_connect(const char *conninfo);

/* ---- HTTP to the gateway (ctl_http.c) ---- */

struct ctl_http_reply {
  int status;
  char *body; /* malloc'd, NUL-terminated */
  size_t len;
};
/* One request to base ("http://host:port"): method, path (with its query), an optional bearer
 * token and form body (application/x-www-form-urlencoded). Waits at most timeout_ms for each
 * read and write. Returns the HTTP status with rep filled (ctl_http_reply_free), or -1 with
 * why in err. */
int ctl_http(const char *base, const char *method, const char *path, const char *token,
             const char *form, int timeout_ms, struct ctl_http_reply *rep, char *err,
             size_t errlen);
void ctl_http_reply_free(struct ctl_http_reply *rep);

/* plan check: the roles no unit could take, by plan, compound, tier and time of day
 * (ctl_plan_check.c). */
int ctl_plan_check_main(int argc, char **argv);
/* The minutes of the day marked in gap[1440] as "HH:MM-HH:MM,..." (24:00 ends the day). */
void ctl_minutes_ranges(const unsigned char *gap, char *out, size_t len);

/* drill FILE: plays a scenario against a running stack (ctl_drill.c). */
int ctl_drill_main(int argc, char **argv);

/* ---- coordinator commands (ctl_incident.c) ---- */

/* A point in time from the command line, in microseconds since the epoch:
 *   "now"                          now_us
 *   "+MINUTES"                     base_us + MINUTES minutes (a decimal count)
 *   "2026-11-27T15:00[:SS[.f]]Z"   ISO 8601 in UTC, or with an offset "+08:00"
 * An ISO time must name its zone: an operator's "15:00" is ambiguous.
 * Returns 0, or -1 if s is none of these. */
int ctl_parse_when(const char *s, int64_t now_us, int64_t base_us, int64_t *out);

/* The actor a command is recorded under: $LINKAGE_ACTOR, else $USER, else
 * "operator" (empty variables count as unset). */
const char *ctl_default_actor(void);

/* 16 lower-case hex digits of fresh randomness into out (17 bytes or more):
 * the command_id, chosen once and kept across retries. 0, or -1. */
int ctl_command_id(char *out, size_t len);

/* One line for a CommandReply (without the newline), and the exit code:
 * OK -> 0, REJECTED -> 1, BUSY or anything else -> 75. */
int ctl_command_outcome(const Linkage__V1__CommandReply *rep, char *line, size_t len);

/* The body of an incident's command, for linkagectl's commands and the drill alike: action is
 * ack (or acknowledge), escalate, de-escalate, merge, close, note or call; text is the
 * acknowledgement's note, the reason, the note's text; into the incident to merge into; role
 * and unit whom to call. The command points into storage. 0, or -1 for an unknown action. */
struct ctl_command_body {
  Linkage__V1__AcknowledgeCommand ack;
  Linkage__V1__EscalateCommand esc;
  Linkage__V1__DeEscalateCommand de;
  Linkage__V1__MergeCommand merge;
  Linkage__V1__CloseCommand close;
  Linkage__V1__NoteCommand note;
  Linkage__V1__CallCommand call;
};
int ctl_command_body(Linkage__V1__Command *cmd, struct ctl_command_body *storage,
                     const char *action, const char *text, const char *into, const char *role,
                     const char *unit);

/* ---- the responder console (ctl_unit.c) ---- */

/* The Answer.Kind of a console action ("ack", "on-scene", "resolve",
 * "decline", "backup", "verify"), or 0 for anything else. */
int ctl_unit_answer_kind(const char *action);

/* One logfmt line (no newline) for an Assignment: assignment_id,
 * incident_id, role, lead, category, kind, severity, compound, building,
 * tier, the three deadlines as ISO 8601 UTC, state, exercise (true for a drill's call),
 * description. A value is
 * quoted only when it needs it; an empty one prints as "-". Truncated to len. */
struct Linkage__V1__Assignment;
void ctl_unit_format_assignment(const struct Linkage__V1__Assignment *a, char *out, size_t len);

/* One line for an AnswerReply and the exit code: OK -> 0, REJECTED -> 1,
 * BUSY or anything else -> 75. */
struct Linkage__V1__AnswerReply;
int ctl_unit_reply_outcome(const struct Linkage__V1__AnswerReply *rep, char *line, size_t len);

/* Assignment ids already printed: dispatch re-sends (after a restart, on
 * every Hello) and the console shows each once. */
struct ctl_seen {
  struct lk_map ids;
};
int ctl_seen_init(struct ctl_seen *s);
void ctl_seen_close(struct ctl_seen *s);
/* 1 if id is new (now remembered), 0 if seen before or empty, -1 out of memory. */
int ctl_seen_add(struct ctl_seen *s, const char *id);

/* How long `listen` may block (ms, rounded up) before its next heartbeat or
 * its deadline (0: none), all on one monotonic clock in µs; 0 when due. */
int64_t ctl_unit_poll_ms(int64_t now_us, int64_t next_beat_us, int64_t deadline_us);

/* ---- supervision decisions (ctl_supervise.c) ---- */

#define CTL_BACKOFF_MIN_US (200 * 1000LL)
#define CTL_BACKOFF_MAX_US (10 * 1000 * 1000LL)
#define CTL_HEALTHY_US (1000 * 1000LL)         /* this long up counts as healthy: restart at once */
#define CTL_STOP_GRACE_US (10 * 1000 * 1000LL) /* SIGTERM, then SIGKILL after */

/* What the supervisor remembers about one daemon. Times are monotonic µs. */
struct ctl_child {
  int running;
  int64_t started_us;
  int64_t next_backoff_us; /* delay before the next restart */
  unsigned restarts;
};

enum ctl_verdict {
  CTL_RESTART,   /* start it again after delay_us */
  CTL_STAY_DOWN, /* we are stopping: an exit is expected */
  CTL_GIVE_UP,   /* it refused its settings (exit 2 or 78): restarting cannot help */
};

struct ctl_decision {
  enum ctl_verdict verdict;
  int64_t delay_us;
};

void ctl_child_init(struct ctl_child *c);
void ctl_child_started(struct ctl_child *c, int64_t now_us);
/* A daemon exited with exit_status (or term_signal != 0). stopping: the
 * supervisor has been asked to stop. */
struct ctl_decision ctl_child_exited(struct ctl_child *c, int64_t exit_status, int term_signal,
                                     int stopping, int64_t now_us);

/* ---- chain checking (ctl_chain.c) ---- */

/* One ledger row as verify reads it; every pointer borrowed. */
struct ctl_row {
  uint64_t position;
  const char *event_id, *incident_id, *type, *actor;
  int64_t at_us;
  const uint8_t *payload;
  size_t payload_len;
  const uint8_t *prev_hash;
  size_t prev_hash_len;
  const uint8_t *hash;
  size_t hash_len;
};

struct ctl_chain {
  uint64_t rows;
  uint64_t position; /* the last position checked, 0 before the first */
  uint8_t hash[LK_HASH_LEN];
  uint64_t bad_position; /* after a failed check: the first position that is wrong */
};

void ctl_chain_init(struct ctl_chain *c);
/* Checks the next row against the chain so far and advances it. Returns 0,
 * or -1 with one line in why saying what is wrong and bad_position set (the
 * chain is then not advanced). A removed row is reported at its position. */
int ctl_chain_check(struct ctl_chain *c, const struct ctl_row *r, char *why, size_t len);

#endif
