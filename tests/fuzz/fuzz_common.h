#ifndef LINKAGE_FUZZ_COMMON_H
#define LINKAGE_FUZZ_COMMON_H

/* Shared by the fuzz targets: the demo district, loaded once. Each target
 * defines LLVMFuzzerTestOneInput; libFuzzer drives it under `make fuzz`, and
 * tests/fuzz/replay.c drives it over the committed corpus under `make test`. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "linkage/district.h"
#include "linkage/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Targets run from the project root; LINKAGE_DISTRICT points elsewhere. A
 * district that does not load is a broken setup, not a finding: stop loudly. */
static inline const struct lk_district *fuzz_district(void) {
  static struct lk_district *d;
  if (d) return d;
  const char *path = getenv("LINKAGE_DISTRICT");
  if (!path || !path[0]) path = "deploy/district/wenjiang.yaml";
  char err[512];
  d = lk_district_load(path, err, sizeof err);
  if (!d) {
    fprintf(stderr, "fuzz: cannot load the district %s: %s\n", path, err);
    abort();
  }
  return d;
}

/* Quiet: the code under test logs every malformed input it meets. */
static inline void fuzz_quiet(void) {
  lk_log_init("fuzz", LK_LOG_ERROR + 1);
}

#endif
