/* linkagectl: start, inspect and exercise a Linkage stack. Dispatches to
 * one subcommand per file (ctl_<cmd>.c). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

struct ctl_command {
  const char *name;
  int (*main)(int argc, char **argv);
  const char *summary;
};

static const struct ctl_command commands[] = {
    {"run", ctl_run_main, "start every daemon under one supervisor, in the foreground"},
    {"status", ctl_status_main, "ask each daemon's control socket whether it is up"},
    {"report", ctl_report_main, "send one Report to intake, as a device would"},
    {"verify", ctl_verify_main, "walk the ledger's hash chain and name the first bad row"},
    {"tail", ctl_tail_main, "print committed events as they arrive"},
    {"ack", ctl_incident_main, "acknowledge an incident (coordinator command to the router)"},
    {"escalate", ctl_incident_main, "move an incident one tier up now"},
    {"de-escalate", ctl_incident_main, "move an incident one tier down"},
    {"merge", ctl_incident_main, "join an incident into another"},
    {"close", ctl_incident_main, "close an incident, with a reason"},
    {"note", ctl_incident_main, "add a note to an incident's timeline"},
    {"call", ctl_incident_main, "call a role or a unit of an incident again"},
    {"plan", ctl_plan_main, "plan declare|lift: planned work; plan check: the district's gaps"},
    {"drill", ctl_drill_main, "play a scenario against the running stack and compare outcomes"},
    {"unit", ctl_unit_main, "act as a responder unit (listen, list, answer); unit add|revoke keys"},
    {"device", ctl_registry_main, "device add|revoke: register or revoke a device's CURVE key"},
    {"subscriber", ctl_registry_main,
     "subscriber add|revoke: register or revoke a city system's CURVE key for the feed"},
    {"keys", ctl_keys_main, "keys gen: make a CURVE key pair"},
    /* the gateway's HTTP API tokens (ctl_token.c) */
    {"token", ctl_token_main, "token add|revoke|list: API tokens for the gateway's HTTP side"},
};

static void print_help(FILE *out) {
  size_t i;

  fprintf(out, "NAME\n"
               "    linkagectl - start, inspect and exercise a Linkage stack\n"
               "\n"
               "SYNOPSIS\n"
               "    linkagectl COMMAND [OPTIONS]\n"
               "    linkagectl COMMAND --help\n"
               "\n"
               "COMMANDS\n");
  for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "    %-12s %s\n", commands[i].name, commands[i].summary);
  fprintf(
      out,
      "\n"
      "ENVIRONMENT\n"
      "    The same variables as the daemons; a command's flags override them.\n"
      "    LINKAGE_PG               libpq connection string (default \"dbname=linkage\")\n"
      "    LINKAGE_INTAKE_ENDPOINT  intake's device endpoint (default tcp://127.0.0.1:7001)\n"
      "    LINKAGE_LEDGER_ENDPOINT  the ledger's request endpoint (default tcp://127.0.0.1:7010)\n"
      "    LINKAGE_LEDGER_STREAM    the ledger's committed stream (default tcp://127.0.0.1:7011)\n"
      "    LINKAGE_ROUTER_ENDPOINT  the router's command endpoint (default tcp://127.0.0.1:7003)\n"
      "    LINKAGE_DISPATCH_ENDPOINT dispatch's unit endpoint (default tcp://127.0.0.1:7005)\n"
      "    LINKAGE_ACTOR            the coordinator commands act as (default $USER)\n"
      "    LINKAGE_RUN_DIR          where control sockets live (default var/run)\n"
      "    LINKAGE_CURVE_CLIENT_KEY_FILE  report and unit: speak CURVE with this key pair\n"
      "                             (keys gen --out FILE), to the server public key in\n"
      "    LINKAGE_CURVE_SERVER_KEY_FILE  (its \"public = \" line; default: plain)\n"
      "    LINKAGE_LOG_LEVEL        debug, info, warn or error\n"
      "\n"
      "EXIT STATUS\n"
      "    0 success, 1 failure, 2 usage or connection error, 75 busy or no answer\n"
      "    (try again); each command's --help says more.\n");
}

int main(int argc, char **argv) {
  size_t i;

  if (argc < 2) {
    print_help(stderr);
    return CTL_EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    print_help(stdout);
    return CTL_EXIT_OK;
  }
  for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].main(argc - 1, argv + 1);
  fprintf(stderr, "linkagectl: unknown command \"%s\"; see linkagectl --help\n", argv[1]);
  return CTL_EXIT_USAGE;
}
