/* A coordinator's Command against the router: unpack, router_decide_command
 * over a state of the demo district with a few incidents in it, and for an
 * accepted command the event the router would append, which the ledger must
 * accept. Deciding reads the state only, so it is built once. */
#include "fuzz_router.h"
#include "linkage/v1/command.pb-c.h"

static struct fuzz_router fr;
static int verbose; /* FUZZ_VERBOSE=1: say what became of each command (to check seeds) */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fuzz_quiet();
  verbose = getenv("FUZZ_VERBOSE") != NULL;
  fuzz_router_init(&fr);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Linkage__V1__Command *cmd = linkage__v1__command__unpack(NULL, size, data);
  if (!cmd) return 0;
  struct router_decision d;
  char err[512];
  /* The same command now and after the deadlines have long passed. */
  const int64_t when[] = {fr.now, fr.now + 24 * 60 * FUZZ_MIN};
  for (int i = 0; i < 2; i++) {
    if (router_decide_command(&fr.s, cmd, when[i], &d, err, sizeof err) != LK_OK) {
      if (strnlen(err, sizeof err) == sizeof err) abort();
      if (verbose) fprintf(stderr, "fuzz_command: %s: rejected: %s\n", cmd->command_id, err);
      continue;
    }
    if (verbose) fprintf(stderr, "fuzz_command: %s: accepted\n", cmd->command_id);
    char actor[LK_ID_MAX];
    snprintf(actor, sizeof actor, "coordinator:%s", cmd->actor);
    struct router_event_storage st;
    Linkage__V1__Event ev;
    router_event_build(&d, actor, when[i], &ev, &st);
    if (lk_event_check(&ev, err, sizeof err) != LK_OK) {
      fprintf(stderr, "fuzz_command: accepted command makes an event the ledger refuses: %s\n",
              err);
      abort();
    }
    size_t len = 0;
    uint8_t *bytes = lk_event_pack(&ev, &len);
    if (!bytes) abort();
    free(bytes);
  }
  linkage__v1__command__free_unpacked(cmd, NULL);
  return 0;
}
