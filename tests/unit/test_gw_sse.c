/* The live streams' decisions: who may open one, what a refusal says, and one client's bounded
 * buffer. No sockets. */
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_sse.h"
#include "linkage/error.h"
#include "lk_test.h"

static const struct gw_sse_limits defaults = {
    .max_clients = 256, .per_token = 32, .per_address = 64};

/* One row per case: the streams open now, and what one more gets. */
LK_TEST(admission_names_the_limit_reached) {
  static const struct {
    struct gw_sse_load now;
    enum gw_sse_admission want;
    const char *why;
  } cases[] = {
      {{0, 0, 0}, GW_SSE_ADMIT, "the first stream"},
      {{255, 31, 63}, GW_SSE_ADMIT, "one below every limit"},
      {{40, 32, 32}, GW_SSE_TOKEN_FULL, "a token at its limit"},
      {{40, 33, 33}, GW_SSE_TOKEN_FULL, "a token past its limit (the limit was lowered)"},
      {{100, 2, 64}, GW_SSE_ADDRESS_FULL, "an address at its limit, another token"},
      {{256, 0, 0}, GW_SSE_SERVER_FULL, "every slot taken, a new token and address"},
      {{256, 32, 64}, GW_SSE_TOKEN_FULL, "everything at once: the token's limit is named"},
      {{256, 1, 64}, GW_SSE_ADDRESS_FULL, "server and address full: the address is named"},
      /* A flood with token A holds 32; a dashboard with token B from the same address is
       * still served. */
      {{33, 0, 33}, GW_SSE_ADMIT, "another token beside a flood at its limit"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    enum gw_sse_admission got = gw_sse_admit(&defaults, &cases[i].now);
    if (!LK_CHECK(got == cases[i].want))
      fprintf(stderr, "     case: %s (got %d)\n", cases[i].why, got);
  }
  struct gw_sse_limits none = {0, 0, 0};
  LK_CHECK_EQ_INT(gw_sse_admit(&none, &(struct gw_sse_load){0, 0, 0}), GW_SSE_TOKEN_FULL);
}

LK_TEST(refusal_status_and_body_say_which_limit) {
  LK_CHECK_EQ_INT(gw_sse_refusal_status(GW_SSE_ADMIT), 0);
  LK_CHECK_EQ_INT(gw_sse_refusal_status(GW_SSE_TOKEN_FULL), 429);
  LK_CHECK_EQ_INT(gw_sse_refusal_status(GW_SSE_ADDRESS_FULL), 429);
  LK_CHECK_EQ_INT(gw_sse_refusal_status(GW_SSE_SERVER_FULL), 503);
  LK_CHECK(gw_sse_refusal_retry_s(GW_SSE_TOKEN_FULL) > 0);
  LK_CHECK(gw_sse_refusal_retry_s(GW_SSE_SERVER_FULL) > 0);

  static const struct {
    enum gw_sse_admission a;
    const char *setting, *max, *words;
  } cases[] = {
      {GW_SSE_TOKEN_FULL, "\"limit\":\"sse_max_per_token\"", "\"max\":32", "this token"},
      {GW_SSE_ADDRESS_FULL, "\"limit\":\"sse_max_per_address\"", "\"max\":64", "this address"},
      {GW_SSE_SERVER_FULL, "\"limit\":\"sse_max_clients\"", "\"max\":256", "every live stream"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct gw_buf b;
    gw_buf_init(&b);
    gw_sse_refusal_json(&b, cases[i].a, &defaults);
    LK_CHECK(!b.failed);
    LK_CHECK(strncmp(b.data, "{\"error\":\"", 10) == 0);
    LK_CHECK_CONTAINS(b.data, cases[i].setting);
    LK_CHECK_CONTAINS(b.data, cases[i].max);
    LK_CHECK_CONTAINS(b.data, cases[i].words);
    LK_CHECK(b.data[b.len - 1] == '}');
    gw_buf_free(&b);
  }
}

LK_TEST(buffer_holds_at_most_its_limit) {
  struct gw_sse_out o;
  gw_sse_out_init(&o, 16384);
  char chunk[1000];
  memset(chunk, 'x', sizeof chunk);
  int added = 0;
  while (gw_sse_out_add(&o, chunk, sizeof chunk) == LK_OK)
    added++;
  LK_CHECK_EQ_INT(added, 16);
  LK_CHECK_EQ_INT(gw_sse_out_pending(&o), 16000);
  LK_CHECK(o.cap <= 16384);
  /* Refused is all or nothing, and what fits still goes in. */
  LK_CHECK_EQ_INT(gw_sse_out_add(&o, chunk, 385), LK_EFULL);
  LK_CHECK_EQ_INT(gw_sse_out_pending(&o), 16000);
  LK_CHECK_EQ_INT(gw_sse_out_add(&o, chunk, 384), LK_OK);
  LK_CHECK_EQ_INT(gw_sse_out_pending(&o), 16384);
  LK_CHECK_EQ_INT(gw_sse_out_add(&o, chunk, 1), LK_EFULL);
  /* More than the limit at once never fits. */
  struct gw_sse_out big;
  gw_sse_out_init(&big, 16384);
  char *huge = calloc(1, 20000);
  LK_CHECK_EQ_INT(gw_sse_out_add(&big, huge, 20000), LK_EFULL);
  LK_CHECK(big.data == NULL);
  free(huge);
  gw_sse_out_free(&big);
  gw_sse_out_free(&o);
}

/* A client that reads about as fast as rows arrive, never quite draining: the buffer reuses
 * what was sent instead of growing. */
LK_TEST(buffer_compacts_instead_of_growing) {
  struct gw_sse_out o;
  gw_sse_out_init(&o, 65536);
  char row[1500], got[4096];
  for (size_t i = 0; i < sizeof row; i++)
    row[i] = (char)('a' + i % 26);
  LK_CHECK_EQ_INT(gw_sse_out_add(&o, row, sizeof row), LK_OK);
  size_t peak = 0, taken_total = 0, added_total = sizeof row;
  for (int i = 0; i < 10000; i++) {
    if (gw_sse_out_add(&o, row, sizeof row) != LK_OK) {
      LK_CHECK(!"a row goes in while the client keeps up");
      break;
    }
    added_total += sizeof row;
    size_t n = gw_sse_out_take(&o, got, sizeof row);
    taken_total += n;
    if (o.cap > peak) peak = o.cap;
    if (n != sizeof row || memcmp(got, row, n) != 0) {
      LK_CHECK(!"bytes come out as they went in");
      break;
    }
  }
  LK_CHECK_EQ_INT(gw_sse_out_pending(&o), added_total - taken_total);
  LK_CHECK(peak <= 8192);
  gw_sse_out_free(&o);
}

LK_TEST(buffer_is_given_back_when_drained_after_a_burst) {
  struct gw_sse_out o;
  gw_sse_out_init(&o, 262144);
  char chunk[8192] = {0}, sink[8192];
  for (int i = 0; i < 16; i++)
    LK_CHECK_EQ_INT(gw_sse_out_add(&o, chunk, sizeof chunk), LK_OK);
  LK_CHECK(o.cap >= 131072 && o.cap <= 262144);
  while (gw_sse_out_take(&o, sink, sizeof sink) > 0) {
  }
  LK_CHECK_EQ_INT(gw_sse_out_pending(&o), 0);
  LK_CHECK(o.data == NULL && o.cap == 0);
  /* A small buffer is kept for the next row. */
  LK_CHECK_EQ_INT(gw_sse_out_add(&o, chunk, 100), LK_OK);
  LK_CHECK_EQ_INT(gw_sse_out_take(&o, sink, sizeof sink), 100);
  LK_CHECK(o.data != NULL && o.cap == GW_SSE_OUT_FIRST);
  gw_sse_out_add(&o, chunk, 10);
  gw_sse_out_clear(&o);
  LK_CHECK_EQ_INT(gw_sse_out_pending(&o), 0);
  gw_sse_out_free(&o);
  LK_CHECK(o.data == NULL);
}

int main(void) {
  return lk_test_run_all();
}
