/* The ledger's batch decisions without a database: dedupe within a batch and
 * against stored rows, in-doubt resolution, gap-free positions, the hash
 * chain across batches, and the binary COPY encoding of a row. */
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger.h"
#include "linkage/error.h"
#include "lk_test.h"

struct fixture {
  struct ledger_item items[16];
  char ids[16][32], incs[16][32];
  uint8_t payload[16][8];
  struct ledger_batch b;
};

/* Item i gets event id "e<id>" and payload bytes derived from id. */
static struct ledger_item *item(struct fixture *f, int i, int id) {
  struct ledger_item *it = &f->items[i];
  memset(it, 0, sizeof *it);
  snprintf(f->ids[i], sizeof f->ids[i], "e%d", id);
  snprintf(f->incs[i], sizeof f->incs[i], "inc-%d", id);
  for (int k = 0; k < 8; k++)
    f->payload[i][k] = (uint8_t)(id * 8 + k);
  it->event_id = f->ids[i];
  it->incident_id = f->incs[i];
  it->type = "reported";
  it->actor = "device:d1";
  it->payload = f->payload[i];
  it->len = 8;
  it->at_us = 1700000000000000LL;
  return it;
}

static void setup(struct fixture *f, const int *ids, int n) {
  LK_CHECK_EQ_INT(ledger_batch_init(&f->b, 16), LK_OK);
  for (int i = 0; i < n; i++)
    LK_CHECK_EQ_INT(ledger_batch_add(&f->b, item(f, i, ids[i])), LK_OK);
}

static const uint8_t zero_hash[LK_HASH_LEN];

LK_TEST(new_events_get_consecutive_positions_and_chained_hashes) {
  struct fixture f;
  const int ids[] = {1, 2, 3};
  setup(&f, ids, 3);
  LK_CHECK_EQ_INT(ledger_batch_resolve(&f.b, NULL, 0, 41, zero_hash), 3);
  for (int i = 0; i < 3; i++) {
    LK_CHECK_EQ_INT(f.items[i].outcome, LEDGER_NEW);
    LK_CHECK_EQ_INT(f.items[i].position, 42 + i);
  }
  uint8_t h[LK_HASH_LEN];
  lk_chain_hash(zero_hash, 42, f.payload[0], 8, h);
  LK_CHECK(memcmp(f.items[0].hash, h, LK_HASH_LEN) == 0);
  LK_CHECK(memcmp(f.items[0].prev_hash, zero_hash, LK_HASH_LEN) == 0);
  LK_CHECK(memcmp(f.items[1].prev_hash, f.items[0].hash, LK_HASH_LEN) == 0);
  LK_CHECK(memcmp(f.items[2].prev_hash, f.items[1].hash, LK_HASH_LEN) == 0);
  LK_CHECK_EQ_INT(f.b.head, 44);
  LK_CHECK(memcmp(f.b.head_hash, f.items[2].hash, LK_HASH_LEN) == 0);
  ledger_batch_close(&f.b);
}

LK_TEST(chain_continues_across_batches) {
  struct fixture a, b;
  const int ids_a[] = {1, 2}, ids_b[] = {3};
  setup(&a, ids_a, 2);
  setup(&b, ids_b, 1);
  ledger_batch_resolve(&a.b, NULL, 0, 0, zero_hash);
  ledger_batch_resolve(&b.b, NULL, 0, a.b.head, a.b.head_hash);
  LK_CHECK_EQ_INT(b.items[0].position, 3);
  LK_CHECK(memcmp(b.items[0].prev_hash, a.items[1].hash, LK_HASH_LEN) == 0);
  uint8_t h[LK_HASH_LEN];
  lk_chain_hash(a.items[1].hash, 3, b.payload[0], 8, h);
  LK_CHECK(memcmp(b.items[0].hash, h, LK_HASH_LEN) == 0);
  ledger_batch_close(&a.b);
  ledger_batch_close(&b.b);
}

LK_TEST(repeat_within_batch_is_duplicate_of_first) {
  struct fixture f;
  const int ids[] = {1, 2, 1, 1};
  setup(&f, ids, 4);
  LK_CHECK_EQ_INT(ledger_batch_resolve(&f.b, NULL, 0, 10, zero_hash), 2);
  LK_CHECK_EQ_INT(f.items[0].outcome, LEDGER_NEW);
  LK_CHECK_EQ_INT(f.items[0].position, 11);
  LK_CHECK_EQ_INT(f.items[1].outcome, LEDGER_NEW);
  LK_CHECK_EQ_INT(f.items[1].position, 12); /* no gap where the repeat was */
  for (int i = 2; i < 4; i++) {
    LK_CHECK_EQ_INT(f.items[i].outcome, LEDGER_DUPLICATE);
    LK_CHECK_EQ_INT(f.items[i].position, 11);
    LK_CHECK_STR(f.items[i].stored_incident_id, "inc-1");
  }
  LK_CHECK_EQ_INT(f.b.head, 12);
  ledger_batch_close(&f.b);
}

LK_TEST(stored_rows_are_duplicates_with_their_position_and_incident) {
  struct fixture f;
  const int ids[] = {1, 2, 3, 2};
  setup(&f, ids, 4);
  const struct ledger_existing ex[] = {{"e2", 5, "inc-stored"}, {"e9", 6, "inc-9"}};
  LK_CHECK_EQ_INT(ledger_batch_resolve(&f.b, ex, 2, 20, zero_hash), 2);
  LK_CHECK_EQ_INT(f.items[0].outcome, LEDGER_NEW);
  LK_CHECK_EQ_INT(f.items[0].position, 21);
  LK_CHECK_EQ_INT(f.items[1].outcome, LEDGER_DUPLICATE);
  LK_CHECK_EQ_INT(f.items[1].position, 5);
  LK_CHECK_STR(f.items[1].stored_incident_id, "inc-stored");
  LK_CHECK_EQ_INT(f.items[2].outcome, LEDGER_NEW);
  LK_CHECK_EQ_INT(f.items[2].position, 22);
  LK_CHECK_EQ_INT(f.items[3].outcome, LEDGER_DUPLICATE);
  LK_CHECK_EQ_INT(f.items[3].position, 5);
  LK_CHECK_STR(f.items[3].stored_incident_id, "inc-stored");
  /* the first new row chains on the head, not on the skipped duplicate */
  LK_CHECK(memcmp(f.items[0].prev_hash, zero_hash, LK_HASH_LEN) == 0);
  LK_CHECK(memcmp(f.items[2].prev_hash, f.items[0].hash, LK_HASH_LEN) == 0);
  ledger_batch_close(&f.b);
}

LK_TEST(in_doubt_batch_that_committed_answers_committed) {
  struct fixture f;
  const int ids[] = {1, 2, 3};
  setup(&f, ids, 3);
  /* e3 was stored long before this batch */
  const struct ledger_existing before[] = {{"e3", 4, "inc-3"}};
  LK_CHECK_EQ_INT(ledger_batch_resolve(&f.b, before, 1, 10, zero_hash), 2);
  uint8_t h1[LK_HASH_LEN];
  memcpy(h1, f.items[0].hash, LK_HASH_LEN);
  ledger_batch_mark_in_doubt(&f.b); /* the link dropped during COMMIT */
  LK_CHECK(f.b.in_doubt);
  LK_CHECK_EQ_INT(f.b.doubt_from, 11);

  /* Reconnected: the COMMIT had happened. Head reloaded as 12. */
  const struct ledger_existing after[] = {
      {"e1", 11, "inc-1"}, {"e2", 12, "inc-2"}, {"e3", 4, "inc-3"}};
  LK_CHECK_EQ_INT(ledger_batch_resolve(&f.b, after, 3, 12, f.b.head_hash), 0);
  LK_CHECK_EQ_INT(f.items[0].outcome, LEDGER_COMMITTED);
  LK_CHECK_EQ_INT(f.items[0].position, 11);
  LK_CHECK_EQ_INT(f.items[1].outcome, LEDGER_COMMITTED);
  LK_CHECK_EQ_INT(f.items[1].position, 12);
  LK_CHECK(memcmp(f.items[0].hash, h1, LK_HASH_LEN) ==
           0); /* the stored row's hash, for publishing */
  LK_CHECK_EQ_INT(f.items[2].outcome,
                  LEDGER_DUPLICATE); /* stored before the batch: still a duplicate */
  LK_CHECK_EQ_INT(f.items[2].position, 4);
  LK_CHECK_EQ_INT(f.b.head, 12);
  ledger_batch_close(&f.b);
}

LK_TEST(in_doubt_batch_that_did_not_commit_is_written_again) {
  struct fixture f;
  const int ids[] = {1, 2};
  setup(&f, ids, 2);
  ledger_batch_resolve(&f.b, NULL, 0, 10, zero_hash);
  ledger_batch_mark_in_doubt(&f.b);
  /* Reconnected: nothing of the batch is stored, head still 10. */
  LK_CHECK_EQ_INT(ledger_batch_resolve(&f.b, NULL, 0, 10, zero_hash), 2);
  LK_CHECK_EQ_INT(f.items[0].outcome, LEDGER_NEW);
  LK_CHECK_EQ_INT(f.items[0].position, 11);
  LK_CHECK_EQ_INT(f.items[1].position, 12);
  /* A second failure keeps the earliest position an attempt used. */
  ledger_batch_mark_in_doubt(&f.b);
  LK_CHECK_EQ_INT(f.b.doubt_from, 11);
  ledger_batch_close(&f.b);
}

LK_TEST(nothing_new_is_never_in_doubt) {
  struct fixture f;
  const int ids[] = {1};
  setup(&f, ids, 1);
  const struct ledger_existing ex[] = {{"e1", 3, "inc-1"}};
  LK_CHECK_EQ_INT(ledger_batch_resolve(&f.b, ex, 1, 10, zero_hash), 0);
  ledger_batch_mark_in_doubt(&f.b);
  LK_CHECK(!f.b.in_doubt);
  LK_CHECK_EQ_INT(f.b.head, 10);
  ledger_batch_close(&f.b);
}

LK_TEST(batch_is_bounded) {
  struct ledger_batch b;
  struct ledger_item it[3];
  LK_CHECK_EQ_INT(ledger_batch_init(&b, 2), LK_OK);
  LK_CHECK_EQ_INT(ledger_batch_add(&b, &it[0]), LK_OK);
  LK_CHECK_EQ_INT(ledger_batch_add(&b, &it[1]), LK_OK);
  LK_CHECK_EQ_INT(ledger_batch_add(&b, &it[2]), LK_EFULL);
  ledger_batch_close(&b);
}

LK_TEST(many_events_with_repeats) {
  /* enough rows for the index to grow past its first size, half of them repeats */
  enum { N = 3000 };
  struct ledger_batch b;
  struct ledger_item *items = calloc(N, sizeof *items);
  char(*ids)[16] = calloc(N, 16);
  LK_CHECK_EQ_INT(ledger_batch_init(&b, N), LK_OK);
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], 16, "ev%d", i / 2);
    items[i].event_id = items[i].incident_id = ids[i];
    items[i].payload = (const uint8_t *)ids[i];
    items[i].len = strlen(ids[i]);
    ledger_batch_add(&b, &items[i]);
  }
  LK_CHECK_EQ_INT(ledger_batch_resolve(&b, NULL, 0, 0, zero_hash), N / 2);
  int ok = 1;
  for (int i = 0; i < N; i++) {
    uint64_t want = (uint64_t)(i / 2 + 1);
    ok &= items[i].position == want;
    ok &= items[i].outcome == (i % 2 ? LEDGER_DUPLICATE : LEDGER_NEW);
  }
  LK_CHECK(ok);
  ledger_batch_close(&b);
  free(items);
  free(ids);
}

static int from_hex(const char *hex, uint8_t *out) {
  int n = 0;
  for (; hex[0] && hex[1]; hex += 2) {
    unsigned v;
    sscanf(hex, "%2x", &v);
    out[n++] = (uint8_t)v;
  }
  return n;
}

LK_TEST(copy_binary_encoding_of_a_known_row) {
  /* Built independently with Python's struct module (PGCOPY header, 16 fields, NULL tier,
   * timestamptz as microseconds since 2000-01-01, NULL unit_id, lead and exercise, trailer -1). */
  static const char want_hex[] =
      "5047434f50590aff0d0a00000000000000000000100000000800000000000000070000000e696e632d312f72"
      "65706f7274656400000005696e632d31000000087265706f72746564000000080002ad22dce8424000000009"
      "6465766963653a643100000003676173000000024949ffffffff0000000a6c696a696e6767616e6700000002"
      "0102000000200000000000000000000000000000000000000000000000000000000000000000000000201111"
      "111111111111111111111111111111111111111111111111111111111111ffffffffffffffffffffffffffff";
  uint8_t want[256];
  int want_len = from_hex(want_hex, want);
  LK_CHECK_EQ_INT(want_len, 220);

  const uint8_t payload[2] = {1, 2};
  struct ledger_item it;
  memset(&it, 0, sizeof it);
  it.position = 7;
  it.event_id = "inc-1/reported";
  it.incident_id = "inc-1";
  it.type = "reported";
  it.at_us = 1700000000123456LL;
  it.actor = "device:d1";
  it.category = "gas";
  it.severity = "II";
  it.tier = NULL;
  it.compound_id = "lijinggang";
  it.payload = payload;
  it.len = 2;
  memset(it.hash, 0x11, LK_HASH_LEN);

  struct ledger_buf buf = {0};
  LK_CHECK_EQ_INT(ledger_copy_begin(&buf), LK_OK);
  LK_CHECK_EQ_INT(ledger_copy_row(&buf, &it), LK_OK);
  LK_CHECK_EQ_INT(ledger_copy_end(&buf), LK_OK);
  LK_CHECK_EQ_INT(buf.len, want_len);
  LK_CHECK(buf.len == (size_t)want_len && memcmp(buf.p, want, buf.len) == 0);
  ledger_buf_free(&buf);
}

/* A dispatched row carries the unit and whether it leads; an answer row the unit only. */
LK_TEST(copy_binary_encoding_of_the_unit_columns) {
  const uint8_t payload[1] = {0};
  struct ledger_item it;
  struct ledger_buf buf = {0};
  static const uint8_t tail_lead[] = {0, 0, 0, 3, 'f',  'b',  '1',  0,
                                      0, 0, 1, 1, 0xff, 0xff, 0xff, 0xff};
  static const uint8_t tail_answer[] = {0,    0,    0,    3,    'f',  'b',  '1', 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  static const uint8_t tail_exercise[] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1};

  memset(&it, 0, sizeof it);
  it.event_id = "inc-1/dispatched/fire_brigade/1";
  it.incident_id = "inc-1";
  it.type = "dispatched";
  it.at_us = 1700000000123456LL;
  it.actor = "svc:dispatch";
  it.payload = payload;
  it.len = 1;
  it.unit_id = "fb1";
  it.lead = LEDGER_FLAG_TRUE;
  LK_CHECK_EQ_INT(ledger_copy_row(&buf, &it), LK_OK);
  LK_CHECK(buf.len > sizeof tail_lead && buf.p[0] == 0 && buf.p[1] == 16);
  LK_CHECK(memcmp(buf.p + buf.len - sizeof tail_lead, tail_lead, sizeof tail_lead) == 0);
  buf.len = 0;
  it.lead = LEDGER_FLAG_FALSE;
  LK_CHECK_EQ_INT(ledger_copy_row(&buf, &it), LK_OK);
  LK_CHECK_EQ_INT(buf.p[buf.len - 5], 0);
  buf.len = 0;
  it.type = "unit_acknowledged";
  it.lead = LEDGER_FLAG_NULL;
  LK_CHECK_EQ_INT(ledger_copy_row(&buf, &it), LK_OK);
  LK_CHECK(memcmp(buf.p + buf.len - sizeof tail_answer, tail_answer, sizeof tail_answer) == 0);
  /* A drill's report: no unit, exercise true. */
  buf.len = 0;
  it.type = "reported";
  it.unit_id = NULL;
  it.exercise = LEDGER_FLAG_TRUE;
  LK_CHECK_EQ_INT(ledger_copy_row(&buf, &it), LK_OK);
  LK_CHECK(memcmp(buf.p + buf.len - sizeof tail_exercise, tail_exercise, sizeof tail_exercise) ==
           0);
  ledger_buf_free(&buf);
}

LK_TEST(pg_time_epoch) {
  LK_CHECK_EQ_INT(ledger_pg_time(946684800000000LL), 0);
  LK_CHECK_EQ_INT(ledger_pg_time(0), -946684800000000LL);
}

LK_TEST(text_array_binary_encoding) {
  const char *ids[] = {"a", "bc"};
  struct ledger_buf buf = {0};
  LK_CHECK_EQ_INT(ledger_text_array(&buf, ids, 2), LK_OK);
  static const uint8_t want[] = {0, 0, 0, 1, 0, 0, 0, 0, 0,   0, 0, 25, 0, 0,   0,  2,
                                 0, 0, 0, 1, 0, 0, 0, 1, 'a', 0, 0, 0,  2, 'b', 'c'};
  LK_CHECK_EQ_INT(buf.len, sizeof want);
  LK_CHECK(buf.len == sizeof want && memcmp(buf.p, want, sizeof want) == 0);
  ledger_buf_free(&buf);
}

int main(void) {
  return lk_test_run_all();
}
