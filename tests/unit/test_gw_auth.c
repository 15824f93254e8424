/* The gateway's API tokens: format and hash, the check against a snapshot,
 * the failed-attempt limit, and the refresh shell against a database that is
 * not there. No database, no sockets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "gateway/gw_auth.h"
#include "linkage/error.h"
#include "linkage/hash.h"
#include "linkage/token.h"
#include "lk_test.h"

#define SEC 1000000LL

/* A snapshot holding tokens[i] under names[i] with roles[i]. */
static struct gw_tokens *snapshot(char tokens[][LK_TOKEN_LEN + 1], const char *const *names,
                                  const enum lk_role *roles, int n) {
  struct gw_tokens *t = gw_tokens_new();
  for (int i = 0; i < n; i++) {
    uint8_t h[LK_TOKEN_HASH_LEN];
    LK_CHECK_EQ_INT(lk_token_generate(tokens[i]), LK_OK);
    lk_token_hash(tokens[i], h);
    LK_CHECK_EQ_INT(gw_tokens_add(t, names[i], roles[i], h), LK_OK);
  }
  return t;
}

LK_TEST(token_has_its_documented_form) {
  char a[LK_TOKEN_LEN + 1], b[LK_TOKEN_LEN + 1];
  LK_CHECK_EQ_INT(lk_token_generate(a), LK_OK);
  LK_CHECK_EQ_INT(lk_token_generate(b), LK_OK);
  LK_CHECK_EQ_INT((int)strlen(a), 47);
  LK_CHECK(strncmp(a, "lkt_", 4) == 0);
  LK_CHECK(strcmp(a, b) != 0);
  LK_CHECK(lk_token_format_ok(a));
  LK_CHECK(lk_token_format_ok(b));
  for (int i = 4; i < LK_TOKEN_LEN; i++)
    LK_CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));

  char bad[64];
  LK_CHECK(!lk_token_format_ok(NULL));
  LK_CHECK(!lk_token_format_ok(""));
  LK_CHECK(!lk_token_format_ok("lkt_"));
  snprintf(bad, sizeof bad, "lkx_%s", a + 4);
  LK_CHECK(!lk_token_format_ok(bad));
  snprintf(bad, sizeof bad, "%sA", a);
  LK_CHECK(!lk_token_format_ok(bad));
  snprintf(bad, sizeof bad, "%.*s", LK_TOKEN_LEN - 1, a);
  LK_CHECK(!lk_token_format_ok(bad));
  snprintf(bad, sizeof bad, "%s", a);
  bad[10] = '+'; /* standard base64, not base64url */
  LK_CHECK(!lk_token_format_ok(bad));
  bad[10] = '=';
  LK_CHECK(!lk_token_format_ok(bad));
  /* The 43rd character's two spare bits must be zero: 'E' (4) is canonical, 'B' (1) not. */
  snprintf(bad, sizeof bad, "lkt_%042dE", 0);
  for (int i = 4; i < 46; i++)
    bad[i] = 'A';
  LK_CHECK(lk_token_format_ok(bad));
  bad[46] = 'B';
  LK_CHECK(!lk_token_format_ok(bad));
}

LK_TEST(token_hash_is_plain_sha256_of_the_string) {
  uint8_t h[LK_TOKEN_HASH_LEN];
  char hex[2 * LK_TOKEN_HASH_LEN + 1];
  lk_token_hash("abc", h); /* FIPS 180-2 test vector */
  lk_hex(h, sizeof h, hex);
  LK_CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  lk_token_hash("", h);
  lk_hex(h, sizeof h, hex);
  LK_CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

LK_TEST(names_and_roles) {
  LK_CHECK(lk_token_name_valid("alice"));
  LK_CHECK(lk_token_name_valid("open311-city.systems_2"));
  char n64[65], n65[66];
  memset(n64, 'x', 64);
  n64[64] = '\0';
  memset(n65, 'x', 65);
  n65[65] = '\0';
  LK_CHECK(lk_token_name_valid(n64));
  LK_CHECK(!lk_token_name_valid(n65));
  LK_CHECK(!lk_token_name_valid(""));
  LK_CHECK(!lk_token_name_valid(NULL));
  LK_CHECK(!lk_token_name_valid("two words"));
  LK_CHECK(!lk_token_name_valid("quo\"te"));
  LK_CHECK(!lk_token_name_valid("tab\there"));
  LK_CHECK(!lk_token_name_valid("\xe7\x8e\x8b")); /* UTF-8: not printable ASCII */

  LK_CHECK_STR(lk_token_role_name(LK_ROLE_READER), "reader");
  LK_CHECK_STR(lk_token_role_name(LK_ROLE_REPORTER), "reporter");
  LK_CHECK_STR(lk_token_role_name(LK_ROLE_COORDINATOR), "coordinator");
  LK_CHECK(lk_token_role_name(LK_ROLE_NONE) == NULL);
  LK_CHECK(lk_token_role_name((enum lk_role)7) == NULL);
  LK_CHECK_EQ_INT(lk_token_role_parse("reader"), LK_ROLE_READER);
  LK_CHECK_EQ_INT(lk_token_role_parse("reporter"), LK_ROLE_REPORTER);
  LK_CHECK_EQ_INT(lk_token_role_parse("coordinator"), LK_ROLE_COORDINATOR);
  LK_CHECK_EQ_INT(lk_token_role_parse("Coordinator"), LK_ROLE_NONE);
  LK_CHECK_EQ_INT(lk_token_role_parse("admin"), LK_ROLE_NONE);
  LK_CHECK_EQ_INT(lk_token_role_parse(""), LK_ROLE_NONE);
  LK_CHECK_EQ_INT(lk_token_role_parse(NULL), LK_ROLE_NONE);
}

LK_TEST(roles_are_ordered) {
  const enum lk_role all[] = {LK_ROLE_READER, LK_ROLE_REPORTER, LK_ROLE_COORDINATOR};
  for (int h = 0; h < 3; h++)
    for (int n = 0; n < 3; n++)
      LK_CHECK_EQ_INT(gw_role_allows(all[h], all[n]), h >= n);
  LK_CHECK(gw_role_allows(LK_ROLE_COORDINATOR, LK_ROLE_NONE));
  for (int n = 0; n < 3; n++)
    LK_CHECK(!gw_role_allows(LK_ROLE_NONE, all[n]));
  LK_CHECK(!gw_role_allows(LK_ROLE_NONE, LK_ROLE_NONE));
}

LK_TEST(check_finds_the_right_token_and_nothing_else) {
  char tok[3][LK_TOKEN_LEN + 1];
  const char *const names[] = {"ops-desk", "open311-city", "wall-screen"};
  const enum lk_role roles[] = {LK_ROLE_COORDINATOR, LK_ROLE_REPORTER, LK_ROLE_READER};
  struct gw_tokens *t = snapshot(tok, names, roles, 3);
  const char *name = "unset";
  for (int i = 0; i < 3; i++) { /* first, middle and last entry */
    LK_CHECK_EQ_INT(gw_tokens_check(t, tok[i], &name), roles[i]);
    LK_CHECK_STR(name, names[i]);
  }
  LK_CHECK_EQ_INT(gw_tokens_check(t, tok[1], NULL), LK_ROLE_REPORTER);

  char other[LK_TOKEN_LEN + 1], cut[LK_TOKEN_LEN + 1], longer[LK_TOKEN_LEN + 2];
  LK_CHECK_EQ_INT(lk_token_generate(other), LK_OK);
  snprintf(cut, sizeof cut, "%.*s", LK_TOKEN_LEN - 1, tok[0]);
  snprintf(longer, sizeof longer, "%sA", tok[0]);
  const char *wrong[] = {other, cut, longer, "", "lkt_", "Bearer", NULL};
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
    name = "unset";
    LK_CHECK_EQ_INT(gw_tokens_check(t, wrong[i], &name), LK_ROLE_NONE);
    LK_CHECK(name == NULL);
  }
  /* One flipped character anywhere is a different token. */
  char flip[LK_TOKEN_LEN + 1];
  snprintf(flip, sizeof flip, "%s", tok[2]);
  flip[LK_TOKEN_LEN - 1] = flip[LK_TOKEN_LEN - 1] == 'A' ? 'E' : 'A';
  LK_CHECK_EQ_INT(gw_tokens_check(t, flip, NULL), LK_ROLE_NONE);

  struct gw_tokens *empty = gw_tokens_new();
  LK_CHECK_EQ_INT(gw_tokens_check(empty, tok[0], &name), LK_ROLE_NONE);
  LK_CHECK_EQ_INT(gw_tokens_check(NULL, tok[0], &name), LK_ROLE_NONE);
  LK_CHECK(name == NULL);
  gw_tokens_destroy(&empty);
  gw_tokens_destroy(&t);
  LK_CHECK(t == NULL);
  gw_tokens_destroy(&t); /* NULL-safe */
}

LK_TEST(snapshot_grows_and_refuses_bad_entries) {
  struct gw_tokens *t = gw_tokens_new();
  uint8_t h[LK_TOKEN_HASH_LEN];
  char tok[LK_TOKEN_LEN + 1], name[16];
  for (int i = 0; i < 100; i++) { /* past the first realloc */
    snprintf(tok, sizeof tok, "token-%d", i);
    snprintf(name, sizeof name, "n%d", i);
    lk_token_hash(tok, h);
    LK_CHECK_EQ_INT(gw_tokens_add(t, name, LK_ROLE_READER, h), LK_OK);
  }
  LK_CHECK_EQ_INT((int)t->n, 100);
  const char *got = NULL;
  LK_CHECK_EQ_INT(gw_tokens_check(t, "token-77", &got), LK_ROLE_READER);
  LK_CHECK_STR(got, "n77");
  LK_CHECK_EQ_INT(gw_tokens_add(t, "x", LK_ROLE_NONE, h), LK_EINVAL);
  LK_CHECK_EQ_INT(gw_tokens_add(t, "two words", LK_ROLE_READER, h), LK_EINVAL);
  LK_CHECK_EQ_INT((int)t->n, 100);
  gw_tokens_destroy(&t);
}

LK_TEST(revoked_and_malformed_rows_stay_out_of_the_snapshot) {
  char a[LK_TOKEN_LEN + 1], b[LK_TOKEN_LEN + 1];
  uint8_t h[LK_TOKEN_HASH_LEN];
  char hex_a[2 * LK_TOKEN_HASH_LEN + 1], hex_b[2 * LK_TOKEN_HASH_LEN + 1];
  lk_token_generate(a);
  lk_token_generate(b);
  lk_token_hash(a, h);
  lk_hex(h, sizeof h, hex_a);
  lk_token_hash(b, h);
  lk_hex(h, sizeof h, hex_b);
  struct gw_tokens *t = gw_tokens_new();
  LK_CHECK_EQ_INT(gw_tokens_add_row(t, "active", "coordinator", hex_a, 0), LK_OK);
  LK_CHECK_EQ_INT(gw_tokens_add_row(t, "gone", "coordinator", hex_b, 1), LK_OK);
  LK_CHECK_EQ_INT((int)t->n, 1);
  LK_CHECK_EQ_INT(gw_tokens_check(t, a, NULL), LK_ROLE_COORDINATOR);
  LK_CHECK_EQ_INT(gw_tokens_check(t, b, NULL), LK_ROLE_NONE);

  char upper[2 * LK_TOKEN_HASH_LEN + 1];
  for (int i = 0; hex_b[i]; i++)
    upper[i] = (char)(hex_b[i] >= 'a' ? hex_b[i] - 32 : hex_b[i]);
  upper[2 * LK_TOKEN_HASH_LEN] = '\0';
  LK_CHECK_EQ_INT(gw_tokens_add_row(t, "bad-role", "admin", hex_b, 0), LK_EINVAL);
  LK_CHECK_EQ_INT(gw_tokens_add_row(t, "bad-hex", "reader", "abcd", 0), LK_EINVAL);
  char nothex[2 * LK_TOKEN_HASH_LEN + 1];
  memcpy(nothex, hex_b, sizeof nothex);
  nothex[5] = 'g';
  LK_CHECK_EQ_INT(gw_tokens_add_row(t, "bad-hex", "reader", nothex, 0), LK_EINVAL);
  LK_CHECK_EQ_INT(gw_tokens_add_row(t, "bad name", "reader", hex_b, 0), LK_EINVAL);
  LK_CHECK_EQ_INT(gw_tokens_add_row(t, "r", "reader", NULL, 0), LK_EINVAL);
  LK_CHECK_EQ_INT((int)t->n, 1);
  LK_CHECK_EQ_INT(gw_tokens_add_row(t, "upper", "reader", upper, 0), LK_OK);
  LK_CHECK_EQ_INT(gw_tokens_check(t, b, NULL), LK_ROLE_READER);
  gw_tokens_destroy(&t);
}

LK_TEST(rate_limit_blocks_after_the_threshold_until_the_window_ends) {
  static struct gw_rate r;
  gw_rate_init(&r, 0, 0);
  LK_CHECK_EQ_INT(r.max_failures, 10);
  LK_CHECK_EQ_INT(r.window_us, 60 * SEC);
  int64_t t0 = 1000 * SEC;
  for (int i = 0; i < 9; i++)
    gw_rate_failure(&r, "10.0.0.1", t0 + i * SEC);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.0.0.1", t0 + 9 * SEC), 0);
  gw_rate_failure(&r, "10.0.0.1", t0 + 9 * SEC); /* the tenth */
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.0.0.1", t0 + 9 * SEC), 51000);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.0.0.1", t0 + 59 * SEC + 999500), 1);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.0.0.1", t0 + 59 * SEC + 500), 1000);
  /* Other addresses are untouched, including ones that share a prefix. */
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.0.0.10", t0 + 10 * SEC), 0);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.0.0.", t0 + 10 * SEC), 0);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "::1", t0 + 10 * SEC), 0);
  /* The window ends 60 s after its first failure; the next failure opens a fresh one. */
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.0.0.1", t0 + 60 * SEC), 0);
  gw_rate_failure(&r, "10.0.0.1", t0 + 61 * SEC);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.0.0.1", t0 + 61 * SEC), 0);
  for (int i = 0; i < 8; i++)
    gw_rate_failure(&r, "10.0.0.1", t0 + 62 * SEC);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.0.0.1", t0 + 62 * SEC), 0);
  gw_rate_failure(&r, "10.0.0.1", t0 + 62 * SEC);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.0.0.1", t0 + 62 * SEC), 59000);
}

LK_TEST(rate_limit_small_settings_and_odd_keys) {
  static struct gw_rate r;
  gw_rate_init(&r, 2, 500);
  gw_rate_failure(&r, NULL, 0);
  gw_rate_failure(&r, "", 1);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, NULL, 2), 500); /* unknown addresses share one key */
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "?", 2), 500);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "1.2.3.4", 2), 0);
  char longa[200], longb[200];
  memset(longa, 'a', sizeof longa - 1);
  longa[sizeof longa - 1] = '\0';
  memcpy(longb, longa, sizeof longb);
  longb[150] = 'b'; /* differs only after the kept part: the same key */
  gw_rate_failure(&r, longa, 10);
  gw_rate_failure(&r, longb, 11);
  LK_CHECK(gw_rate_blocked(&r, longa, 12) > 0);
  LK_CHECK_EQ_INT(r.used, 2);
}

LK_TEST(rate_limit_memory_is_bounded_and_evicts_the_oldest) {
  static struct gw_rate r;
  gw_rate_init(&r, 10, 60000);
  char addr[32];
  int64_t t = 5 * SEC;
  /* Every slot holds an address one failure short of the limit. */
  for (int i = 0; i < GW_RATE_SLOTS; i++) {
    snprintf(addr, sizeof addr, "10.1.%d.%d", i / 256, i % 256);
    for (int k = 0; k < 9; k++)
      gw_rate_failure(&r, addr, t + i);
  }
  LK_CHECK_EQ_INT(r.used, GW_RATE_SLOTS);
  /* A blocked address active after all of them. */
  for (int k = 0; k < 10; k++)
    gw_rate_failure(&r, "192.0.2.1", t + 2 * SEC);
  LK_CHECK(gw_rate_blocked(&r, "192.0.2.1", t + 2 * SEC) > 0);
  for (int i = 0; i < 10; i++) {
    snprintf(addr, sizeof addr, "198.51.100.%d", i);
    gw_rate_failure(&r, addr, t + 3 * SEC);
  }
  LK_CHECK_EQ_INT(r.used, GW_RATE_SLOTS);
  LK_CHECK(gw_rate_blocked(&r, "192.0.2.1", t + 3 * SEC) > 0);
  /* The eleven oldest (10.1.0.0 .. 10.1.0.10) lost their counts: one more failure does not
   * block them. A later one still had its nine, so one more does. */
  gw_rate_failure(&r, "10.1.0.0", t + 4 * SEC);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "10.1.0.0", t + 4 * SEC), 0);
  gw_rate_failure(&r, "10.1.1.244", t + 4 * SEC);
  LK_CHECK(gw_rate_blocked(&r, "10.1.1.244", t + 4 * SEC) > 0);
  LK_CHECK_EQ_INT(r.used, GW_RATE_SLOTS);
  /* Once the windows end, slots are reused before anything is evicted. */
  gw_rate_failure(&r, "203.0.113.9", t + 120 * SEC);
  LK_CHECK_EQ_INT(r.used, GW_RATE_SLOTS);
  LK_CHECK_EQ_INT(gw_rate_blocked(&r, "203.0.113.9", t + 120 * SEC), 0);
}

/* gw_auth_check over a hand-made gw_auth: the shell's decision without the database. */
LK_TEST(auth_check_outcomes) {
  static struct gw_auth a;
  memset(&a, 0, sizeof a);
  char tok[2][LK_TOKEN_LEN + 1];
  const char *const names[] = {"desk", "city"};
  const enum lk_role roles[] = {LK_ROLE_COORDINATOR, LK_ROLE_REPORTER};
  a.tokens = snapshot(tok, names, roles, 2);
  gw_rate_init(&a.rate, 3, 1000);
  const char *name = NULL;
  uint32_t wait = 99;
  enum gw_auth_outcome out;
  int64_t t = 50 * SEC;

  LK_CHECK_EQ_INT(gw_auth_check(&a, tok[0], "127.0.0.1", t, &name, &wait, &out),
                  LK_ROLE_COORDINATOR);
  LK_CHECK_EQ_INT(out, GW_AUTH_OK);
  LK_CHECK_STR(name, "desk");
  LK_CHECK_EQ_INT(wait, 0);

  /* No token: 401 without counting, however often. */
  for (int i = 0; i < 10; i++) {
    LK_CHECK_EQ_INT(gw_auth_check(&a, i % 2 ? NULL : "", "10.9.9.9", t, &name, &wait, &out),
                    LK_ROLE_NONE);
    LK_CHECK_EQ_INT(out, GW_AUTH_MISSING);
  }
  LK_CHECK_EQ_INT(gw_rate_blocked(&a.rate, "10.9.9.9", t), 0);

  /* Two failures, a success (which resets nothing), a third failure: blocked. */
  gw_auth_check(&a, "lkt_wrong", "10.0.0.2", t, &name, &wait, &out);
  LK_CHECK_EQ_INT(out, GW_AUTH_BAD);
  LK_CHECK(name == NULL);
  gw_auth_check(&a, "lkt_wrong2", "10.0.0.2", t + 1, &name, &wait, &out);
  LK_CHECK_EQ_INT(gw_auth_check(&a, tok[1], "10.0.0.2", t + 2, &name, &wait, &out),
                  LK_ROLE_REPORTER);
  LK_CHECK_EQ_INT(out, GW_AUTH_OK);
  gw_auth_check(&a, "lkt_wrong3", "10.0.0.2", t + 3, &name, &wait, &out);
  LK_CHECK_EQ_INT(out, GW_AUTH_BAD);
  LK_CHECK_EQ_INT(wait, 0);
  /* Now even the good token is refused from that address, with a retry-after. */
  LK_CHECK_EQ_INT(gw_auth_check(&a, tok[0], "10.0.0.2", t + 500 * 1000, &name, &wait, &out),
                  LK_ROLE_NONE);
  LK_CHECK_EQ_INT(out, GW_AUTH_RATE_LIMITED);
  LK_CHECK_EQ_INT(wait, 500);
  LK_CHECK(name == NULL);
  /* ... but not from another address. */
  LK_CHECK_EQ_INT(gw_auth_check(&a, tok[0], "10.0.0.3", t + 500 * 1000, &name, &wait, &out),
                  LK_ROLE_COORDINATOR);
  LK_CHECK_EQ_INT(out, GW_AUTH_OK);
  /* After the window the address is served again. */
  LK_CHECK_EQ_INT(gw_auth_check(&a, tok[0], "10.0.0.2", t + SEC, &name, &wait, &out),
                  LK_ROLE_COORDINATOR);
  LK_CHECK_EQ_INT(out, GW_AUTH_OK);
  LK_CHECK_EQ_INT(wait, 0);
  LK_CHECK_EQ_INT(a.limited, 1);
  LK_CHECK_EQ_INT(a.refused, 3);
  LK_CHECK_EQ_INT(a.allowed, 4);
  /* The outcome pointers may be NULL. */
  LK_CHECK_EQ_INT(gw_auth_check(&a, tok[1], "10.0.0.4", t, NULL, NULL, NULL), LK_ROLE_REPORTER);
  gw_tokens_destroy(&a.tokens);
}

/* The shell against a database that is not there: start succeeds with an empty snapshot,
 * refreshes fail and keep it, and stop with a read in flight leaves nothing open. */
static uv_timer_t stop_timer;
static struct gw_auth *stop_auth;
static int saw_in_flight;

static void stop_cb(uv_timer_t *t) {
  /* A few failed refreshes first, then stop while a read is in flight (or give up waiting). */
  if (stop_auth->refreshes < 3 || (!stop_auth->reload.working && stop_auth->refreshes < 50)) return;
  saw_in_flight = stop_auth->reload.working;
  gw_auth_stop(stop_auth);
  uv_close((uv_handle_t *)t, NULL);
}

LK_TEST(shell_keeps_the_snapshot_and_stops_with_a_read_in_flight) {
  static struct gw_auth a;
  uv_loop_t loop;
  LK_CHECK_EQ_INT(uv_loop_init(&loop), 0);
  LK_CHECK_EQ_INT(gw_auth_start(&a, &loop, "host=/nonexistent-gw-auth-test dbname=x", 5), LK_OK);
  LK_CHECK(a.tokens != NULL);
  LK_CHECK_EQ_INT((int)a.tokens->n, 0);
  LK_CHECK(a.failing);
  LK_CHECK_EQ_INT(a.refresh_failures, 1);
  enum gw_auth_outcome out;
  LK_CHECK_EQ_INT(gw_auth_check(&a, "lkt_x", "1.1.1.1", 0, NULL, NULL, &out), LK_ROLE_NONE);
  LK_CHECK_EQ_INT(out, GW_AUTH_BAD);
  stop_auth = &a;
  uv_timer_init(&loop, &stop_timer);
  uv_timer_start(&stop_timer, stop_cb, 1, 1);
  LK_CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
  LK_CHECK(a.refreshes >= 3);
  LK_CHECK_EQ_INT(a.refreshes, a.refresh_failures);
  LK_CHECK(a.tokens == NULL);
  LK_CHECK(a.reload.pgconn == NULL);
  LK_CHECK(a.reload.loaded == NULL);
  LK_CHECK_EQ_INT(a.reload.working, 0);
  LK_CHECK_EQ_INT(uv_loop_close(&loop), 0);
  LK_CHECK(saw_in_flight);
}

int main(void) {
  return lk_test_run_all();
}
