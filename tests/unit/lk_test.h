#ifndef LK_TEST_H
#define LK_TEST_H

/* A very small test harness in the spirit of libuv's task.h and nng's nuts.h:
 * LK_TEST(name) registers a test; checks count and report failures with file
 * and line without stopping the test; main() runs them all and prints
 * "N passed, N failed" as its last line (tests/run-all.sh adds them up).
 * N counts checks, not tests, so a test that checks nothing shows up. */

#include <stdio.h>
#include <string.h>

typedef void (*lk_test_fn)(void);

struct lk_test_case {
  const char *name;
  lk_test_fn fn;
};

#define LK_TEST_MAX 512
static struct lk_test_case lk_test_cases[LK_TEST_MAX];
static int lk_test_case_count;
static int lk_test_passed, lk_test_failed;
static const char *lk_test_current;

#define LK_TEST(name)                                                                              \
  static void name(void);                                                                          \
  __attribute__((constructor)) static void lk_register_##name(void) {                              \
    if (lk_test_case_count < LK_TEST_MAX)                                                          \
      lk_test_cases[lk_test_case_count++] = (struct lk_test_case){#name, name};                    \
  }                                                                                                \
  static void name(void)

static inline int lk_test_check(int ok, const char *expr, const char *file, int line) {
  if (ok) {
    lk_test_passed++;
  } else {
    lk_test_failed++;
    fprintf(stderr, "FAIL %s: %s:%d: %s\n", lk_test_current, file, line, expr);
  }
  return ok;
}

#define LK_CHECK(cond) lk_test_check(!!(cond), #cond, __FILE__, __LINE__)
#define LK_CHECK_EQ_INT(a, b)                                                                      \
  do {                                                                                             \
    long long lk_a_ = (long long)(a), lk_b_ = (long long)(b);                                      \
    if (!lk_test_check(lk_a_ == lk_b_, #a " == " #b, __FILE__, __LINE__))                          \
      fprintf(stderr, "     got %lld, want %lld\n", lk_a_, lk_b_);                                 \
  } while (0)
#define LK_CHECK_STR(a, b)                                                                         \
  do {                                                                                             \
    const char *lk_a_ = (a), *lk_b_ = (b);                                                         \
    int lk_ok_ = lk_a_ && lk_b_ && strcmp(lk_a_, lk_b_) == 0;                                      \
    if (!lk_test_check(lk_ok_, #a " == " #b, __FILE__, __LINE__))                                  \
      fprintf(stderr, "     got \"%s\", want \"%s\"\n", lk_a_ ? lk_a_ : "(null)",                  \
              lk_b_ ? lk_b_ : "(null)");                                                           \
  } while (0)
#define LK_CHECK_CONTAINS(hay, needle)                                                             \
  do {                                                                                             \
    const char *lk_h_ = (hay), *lk_n_ = (needle);                                                  \
    if (!lk_test_check(lk_h_ && strstr(lk_h_, lk_n_) != NULL, #hay " contains " #needle, __FILE__, \
                       __LINE__))                                                                  \
      fprintf(stderr, "     \"%s\" does not contain \"%s\"\n", lk_h_ ? lk_h_ : "(null)", lk_n_);   \
  } while (0)

static inline int lk_test_run_all(void) {
  for (int i = 0; i < lk_test_case_count; i++) {
    lk_test_current = lk_test_cases[i].name;
    int before = lk_test_failed;
    lk_test_cases[i].fn();
    fprintf(stderr, "%s %s\n", lk_test_failed == before ? "ok  " : "FAIL", lk_test_current);
  }
  printf("%d passed, %d failed\n", lk_test_passed, lk_test_failed);
  return lk_test_failed ? 1 : 0;
}

#endif
