/* The district data parser, whatever the bytes: lk_district_load reads a
 * path, so the input is written to one temporary file per process and
 * loaded from there. A load that fails must say why; one that succeeds is
 * looked up and destroyed, so leaks on either path show. */
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

static char path[64];

static void remove_file(void) {
  if (path[0]) unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fuzz_quiet();
  const char *dir = getenv("TMPDIR");
  snprintf(path, sizeof path, "%.40s/lk-fuzz-XXXXXX.yaml", dir && dir[0] ? dir : "/tmp");
  int fd = mkstemps(path, 5);
  if (fd < 0) {
    perror("fuzz_district: mkstemps");
    abort();
  }
  close(fd);
  atexit(remove_file);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!path[0]) LLVMFuzzerInitialize(NULL, NULL);
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    perror("fuzz_district: write");
    abort();
  }
  char err[512];
  err[0] = '\0';
  struct lk_district *d = lk_district_load(path, err, sizeof err);
  if (!d) {
    if (!err[0]) {
      fprintf(stderr, "fuzz_district: load failed without saying why\n");
      abort();
    }
    return 0;
  }
  for (size_t i = 0; i < d->compound_count; i++)
    if (lk_district_compound(d, d->compounds[i].id) != &d->compounds[i]) abort();
  for (size_t i = 0; i < d->unit_count; i++) {
    if (!lk_district_unit(d, d->units[i].id)) abort();
    for (int m = 0; m < 1440; m += 97)
      lk_unit_on_duty(&d->units[i], m);
  }
  lk_district_destroy(&d);
  if (d) abort();
  return 0;
}
