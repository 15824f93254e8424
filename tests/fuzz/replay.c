/* Replays a fuzz target's corpus without libFuzzer: every file under
 * tests/fuzz/corpus/<FUZZ_NAME>/ (or the directories and files given as
 * arguments) goes through LLVMFuzzerTestOneInput once. A crash, a sanitizer
 * report (under `make asan`) or a leak ends the program, which
 * tests/run-all.sh counts as a failure; a file that cannot be read counts as
 * failed. The last line is "N passed, N failed", N counting corpus files. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_NAME
#error "FUZZ_NAME must name the target"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int passed, failed;

static void run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  long n = -1;
  if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    /* A copy of exactly the input's size, so ASan sees any read past its end. */
    buf = malloc(n ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) n = -1;
  }
  if (f) fclose(f);
  if (!buf || n < 0) {
    printf("cannot read %s: %s\n", path, strerror(errno));
    failed++;
    free(buf);
    return;
  }
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  free(buf);
  passed++;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    printf("cannot open %s: %s\n", dir, strerror(errno));
    failed++;
    return;
  }
  char **names = NULL;
  size_t count = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (count == cap) {
      cap = cap ? 2 * cap : 64;
      char **more = realloc(names, cap * sizeof *names);
      if (!more) abort();
      names = more;
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    names[count] = malloc(len);
    if (!names[count]) abort();
    snprintf(names[count++], len, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  qsort(names, count, sizeof *names, by_name);
  for (size_t i = 0; i < count; i++) {
    struct stat st;
    if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) run_file(names[i]);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    run_dir("tests/fuzz/corpus/" FUZZ_NAME);
  } else {
    for (int i = 1; i < argc; i++) {
      struct stat st;
      if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
        run_dir(argv[i]);
      else
        run_file(argv[i]);
    }
  }
  /* An empty corpus is a broken checkout, not a pass. */
  if (passed + failed == 0) failed++;
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
