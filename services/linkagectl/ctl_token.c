/* linkagectl token add|revoke|list: the gateway's HTTP API tokens (table
 * tokens, read by the gateway; linkage/token.h). The token itself is shown
 * once, at add; the table keeps only its SHA-256. */
#include <getopt.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "linkage/token.h"

static const char token_help[] =
    "NAME\n"
    "    linkagectl token add|revoke|list - API tokens for the gateway's HTTP side\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl token add NAME --role coordinator|reporter|reader [--pg CONNINFO]\n"
    "    linkagectl token revoke NAME [--pg CONNINFO]\n"
    "    linkagectl token list [--pg CONNINFO]\n"
    "\n"
    "DESCRIPTION\n"
    "    add makes a new token for NAME (1-64 printable ASCII characters without\n"
    "    spaces or quotes, e.g. a person or a city system) and prints it once:\n"
    "    the last line of the output is the token alone, \"lkt_\" and 43 base64url\n"
    "    characters (256 random bits). Only its SHA-256 is stored, in the table\n"
    "    tokens; a lost token cannot be shown again: revoke it and add another.\n"
    "    A name has at most one token that is not revoked.\n"
    "\n"
    "    Roles, each allowing what the one before allows:\n"
    "      reader       GET the dashboard API, the event stream, CAP and Open311\n"
    "      reporter     reader, and POST Open311 service requests\n"
    "      coordinator  everything: incident actions and planned work\n"
    "\n"
    "    A client sends the token as \"Authorization: Bearer TOKEN\", or as\n"
    "    ?token=TOKEN (for EventSource), or as api_key=TOKEN (Open311).\n"
    "\n"
    "    revoke sets revoked_at on NAME's active token. The gateway re-reads the\n"
    "    table every 2 s and refuses the token from then on, without a restart.\n"
    "    The row stays, for the record; NAME can then be given a new token.\n"
    "\n"
    "    list prints one line per token ever added, oldest first:\n"
    "      name=NAME role=ROLE created_at=TIME revoked_at=TIME|-\n"
    "    (times in UTC, ISO 8601). It never prints a token or its hash.\n"
    "\n"
    "    --pg overrides $LINKAGE_PG.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 done, 1 refused (NAME already has an active token; no active token\n"
    "    named NAME), 2 usage (bad name or role) or the database could not be\n"
    "    reached.\n";

static int add_token(PGconn *pg, const char *name, enum lk_role role) {
  char token[LK_TOKEN_LEN + 1];
  uint8_t hash[LK_TOKEN_HASH_LEN];
  if (lk_token_generate(token) != 0) {
    fprintf(stderr, "linkagectl token add: cannot get randomness from libsodium\n");
    return CTL_EXIT_FAIL;
  }
  lk_token_hash(token, hash);
  /* The digest goes as a binary parameter: no hex in SQL, no text the server logs could show. */
  const char *params[3] = {name, lk_token_role_name(role), (const char *)hash};
  const int lengths[3] = {0, 0, LK_TOKEN_HASH_LEN};
  const int formats[3] = {0, 0, 1};
  PGresult *res =
      PQexecParams(pg, "insert into tokens (name, role, token_sha256) values ($1, $2, $3)", 3, NULL,
                   params, lengths, formats, 0);
  int rc = CTL_EXIT_OK;
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "23505") == 0) {
      fprintf(stderr,
              "linkagectl token add: \"%s\" already has an active token; revoke it first "
              "(linkagectl token revoke %s)\n",
              name, name);
      rc = CTL_EXIT_FAIL;
    } else {
      fprintf(stderr, "linkagectl token add: %s", PQerrorMessage(pg));
      rc = CTL_EXIT_USAGE;
    }
  } else {
    /* The caller (and tests/lib/stack.py) takes the last line: the token alone. */
    printf("added token name=%s role=%s; it is shown only now, keep it safe:\n%s\n", name,
           lk_token_role_name(role), token);
  }
  PQclear(res);
  sodium_memzero(token, sizeof token);
  return rc;
}

static int revoke_token(PGconn *pg, const char *name) {
  const char *params[1] = {name};
  PGresult *res = PQexecParams(pg,
                               "update tokens set revoked_at = now() where name = $1 "
                               "and revoked_at is null",
                               1, NULL, params, NULL, NULL, 0);
  int rc = CTL_EXIT_OK;
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    fprintf(stderr, "linkagectl token revoke: %s", PQerrorMessage(pg));
    rc = CTL_EXIT_USAGE;
  } else if (strcmp(PQcmdTuples(res), "0") == 0) {
    fprintf(stderr, "linkagectl token revoke: no active token named \"%s\"\n", name);
    rc = CTL_EXIT_FAIL;
  } else {
    printf("revoked token name=%s\n", name);
  }
  PQclear(res);
  return rc;
}

static int list_tokens(PGconn *pg) {
  static const char sql[] =
      "select name, role,\n"
      "  to_char(created_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),\n"
      "  coalesce(to_char(revoked_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-')\n"
      "from tokens order by created_at, name";
  PGresult *res = PQexecParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    fprintf(stderr, "linkagectl token list: %s", PQerrorMessage(pg));
    PQclear(res);
    return CTL_EXIT_USAGE;
  }
  for (int i = 0; i < PQntuples(res); i++)
    printf("name=%s role=%s created_at=%s revoked_at=%s\n", PQgetvalue(res, i, 0),
           PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
  PQclear(res);
  return CTL_EXIT_OK;
}

int ctl_token_main(int argc, char **argv) {
  static const struct option longopts[] = {{"pg", required_argument, NULL, 'p'},
                                           {"role", required_argument, NULL, 'r'},
                                           {"help", no_argument, NULL, 'h'},
                                           {0, 0, 0, 0}};
  struct ctl_config cfg;
  const char *role_arg = NULL;
  int c;
  if (ctl_config_load(&cfg) != 0) return CTL_EXIT_CONFIG;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'p': snprintf(cfg.pg, sizeof cfg.pg, "%s", optarg); break;
    case 'r': role_arg = optarg; break;
    case 'h': fputs(token_help, stdout); return CTL_EXIT_OK;
    default: fputs(token_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  int npos = argc - optind;
  const char *verb = npos > 0 ? argv[optind] : "";
  int add = strcmp(verb, "add") == 0, revoke = strcmp(verb, "revoke") == 0,
      list = strcmp(verb, "list") == 0;
  if (!add && !revoke && !list) {
    fprintf(stderr, "linkagectl token: expected add, revoke or list; see --help\n");
    return CTL_EXIT_USAGE;
  }
  if (npos != (list ? 1 : 2)) {
    fprintf(stderr, "linkagectl token %s: expected %s\n", verb, list ? "no arguments" : "NAME");
    return CTL_EXIT_USAGE;
  }
  if (role_arg && !add) {
    fprintf(stderr, "linkagectl token %s: --role is for add only\n", verb);
    return CTL_EXIT_USAGE;
  }
  const char *name = list ? NULL : argv[optind + 1];
  if (name && !lk_token_name_valid(name)) {
    fprintf(stderr,
            "linkagectl token %s: NAME must be 1-%d printable ASCII characters without spaces, "
            "quotes or backslashes\n",
            verb, LK_TOKEN_NAME_MAX);
    return CTL_EXIT_USAGE;
  }
  enum lk_role role = lk_token_role_parse(role_arg);
  if (add && role == LK_ROLE_NONE) {
    fprintf(stderr, "linkagectl token add: --role must be coordinator, reporter or reader%s%s%s\n",
            role_arg ? " (not \"" : "", role_arg ? role_arg : "", role_arg ? "\")" : "");
    return CTL_EXIT_USAGE;
  }
  PGconn *pg = ctl_registry_connect(cfg.pg, "token", LK_TOKENS_TABLE_SQL, "tokens");
  if (!pg) return CTL_EXIT_USAGE;
  int rc = add ? add_token(pg, name, role) : revoke ? revoke_token(pg, name) : list_tokens(pg);
  PQfinish(pg);
  return rc;
}
