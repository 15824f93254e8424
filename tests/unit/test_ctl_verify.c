/* The chain check behind `linkagectl verify` (services/linkagectl/ctl_chain.c):
 * synthetic ledger rows, each kind of tampering, no database. */
#include <stdlib.h>
#include <string.h>

#include "linkage/event.h"
#include "linkage/hash.h"
#include "linkagectl/ctl.h"
#include "lk_test.h"

#define ROWS 5

struct fixture {
  char event_id[ROWS][LK_ID_MAX], incident_id[ROWS][LK_ID_MAX];
  uint8_t *payload[ROWS];
  size_t len[ROWS];
  uint8_t prev[ROWS][LK_HASH_LEN], hash[ROWS][LK_HASH_LEN];
  struct ctl_row row[ROWS];
};

static const int64_t base_at = 1795000000000000LL;

/* A well-formed chain of reported events at positions 1..ROWS. */
static void build(struct fixture *f) {
  uint8_t prev[LK_HASH_LEN] = {0};
  int i;

  memset(f, 0, sizeof *f);
  for (i = 0; i < ROWS; i++) {
    Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
    Linkage__V1__Reported rep = LINKAGE__V1__REPORTED__INIT;
    Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
    Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;

    loc.compound_id = "lijinggang";
    r.device_id = "dev-1";
    r.sequence = (uint64_t)i + 1;
    r.category = LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER;
    r.severity = LINKAGE__V1__SEVERITY__SEVERITY_III;
    r.kind = "gas_leak";
    r.description = "smell of gas on the stairs";
    r.location = &loc;
    rep.report = &r;
    rep.received_at_us = base_at + i;
    lk_incident_id("dev-1", (uint64_t)i + 1, f->incident_id[i]);
    lk_event_id(f->event_id[i], LK_ID_MAX, f->incident_id[i], LINKAGE__V1__EVENT_TYPE__REPORTED,
                NULL, 0);
    ev.event_id = f->event_id[i];
    ev.incident_id = f->incident_id[i];
    ev.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
    ev.at_us = base_at + i;
    ev.actor = "device:dev-1";
    ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
    ev.reported = &rep;
    f->payload[i] = lk_event_pack(&ev, &f->len[i]);
    memcpy(f->prev[i], prev, LK_HASH_LEN);
    lk_chain_hash(prev, (uint64_t)i + 1, f->payload[i], f->len[i], f->hash[i]);
    memcpy(prev, f->hash[i], LK_HASH_LEN);
    f->row[i] = (struct ctl_row){(uint64_t)i + 1, f->event_id[i], f->incident_id[i], "reported",
                                 "device:dev-1",  base_at + i,    f->payload[i],     f->len[i],
                                 f->prev[i],      LK_HASH_LEN,    f->hash[i],        LK_HASH_LEN};
  }
}

static void release(struct fixture *f) {
  int i;

  for (i = 0; i < ROWS; i++)
    free(f->payload[i]);
}

/* Feeds rows in order (indexes into f->row); returns the index of the first
 * failing row or -1 when all pass. */
static int feed(struct ctl_chain *c, struct ctl_row *rows, int n, char *why, size_t len) {
  int i;

  ctl_chain_init(c);
  for (i = 0; i < n; i++)
    if (ctl_chain_check(c, &rows[i], why, len) != 0) return i;
  return -1;
}

LK_TEST(intact_chain_passes) {
  struct fixture f;
  struct ctl_chain c;
  char why[512] = "";

  build(&f);
  LK_CHECK_EQ_INT(feed(&c, f.row, ROWS, why, sizeof why), -1);
  LK_CHECK_EQ_INT(c.rows, ROWS);
  LK_CHECK_EQ_INT(c.position, ROWS);
  LK_CHECK(memcmp(c.hash, f.hash[ROWS - 1], LK_HASH_LEN) == 0);
  release(&f);
}

LK_TEST(empty_ledger_is_fine) {
  struct ctl_chain c;
  static const uint8_t zero[LK_HASH_LEN];

  ctl_chain_init(&c);
  LK_CHECK_EQ_INT(c.rows, 0);
  LK_CHECK_EQ_INT(c.position, 0);
  LK_CHECK(memcmp(c.hash, zero, LK_HASH_LEN) == 0);
}

LK_TEST(altered_payload_fails_at_its_row) {
  struct fixture f;
  struct ctl_chain c;
  char why[512] = "";
  uint8_t *p;

  build(&f);
  p = f.payload[2];
  p[f.len[2] - 1] ^= 0x01; /* one bit of the description */
  LK_CHECK_EQ_INT(feed(&c, f.row, ROWS, why, sizeof why), 2);
  LK_CHECK_EQ_INT(c.bad_position, 3);
  LK_CHECK_CONTAINS(why, "hash");
  LK_CHECK_EQ_INT(c.rows, 2); /* the chain is not advanced past a bad row */
  release(&f);
}

LK_TEST(altered_hash_fails_at_its_row) {
  struct fixture f;
  struct ctl_chain c;
  char why[512] = "";

  build(&f);
  f.hash[1][0] ^= 0xff;
  LK_CHECK_EQ_INT(feed(&c, f.row, ROWS, why, sizeof why), 1);
  LK_CHECK_EQ_INT(c.bad_position, 2);
  LK_CHECK_CONTAINS(why, "does not match the payload");
  release(&f);
}

LK_TEST(rehashed_row_breaks_the_next_link) {
  struct fixture f;
  struct ctl_chain c;
  char why[512] = "";

  /* A forger who alters row 2 and recomputes its hash still leaves row 3's
   * prev_hash pointing at the original. */
  build(&f);
  f.payload[1][f.len[1] - 1] ^= 0x01;
  lk_chain_hash(f.prev[1], 2, f.payload[1], f.len[1], f.hash[1]);
  LK_CHECK_EQ_INT(feed(&c, f.row, ROWS, why, sizeof why), 2);
  LK_CHECK_EQ_INT(c.bad_position, 3);
  LK_CHECK_CONTAINS(why, "prev_hash");
  release(&f);
}

LK_TEST(first_row_must_start_from_zero_hash) {
  struct fixture f;
  struct ctl_chain c;
  char why[512] = "";

  build(&f);
  f.prev[0][31] = 1;
  LK_CHECK_EQ_INT(feed(&c, f.row, ROWS, why, sizeof why), 0);
  LK_CHECK_EQ_INT(c.bad_position, 1);
  LK_CHECK_CONTAINS(why, "prev_hash");
  release(&f);
}

LK_TEST(removed_row_is_named_by_its_position) {
  struct fixture f;
  struct ctl_chain c;
  struct ctl_row rows[ROWS];
  char why[512] = "";

  build(&f);
  rows[0] = f.row[0];
  rows[1] = f.row[1];
  rows[2] = f.row[3]; /* position 3 deleted */
  rows[3] = f.row[4];
  LK_CHECK_EQ_INT(feed(&c, rows, 4, why, sizeof why), 2);
  LK_CHECK_EQ_INT(c.bad_position, 3);
  LK_CHECK_CONTAINS(why, "missing");

  /* The first row removed. */
  LK_CHECK_EQ_INT(feed(&c, f.row + 1, ROWS - 1, why, sizeof why), 0);
  LK_CHECK_EQ_INT(c.bad_position, 1);
  LK_CHECK_CONTAINS(why, "missing");

  /* Several removed: still the first missing one. */
  rows[0] = f.row[0];
  rows[1] = f.row[4];
  LK_CHECK_EQ_INT(feed(&c, rows, 2, why, sizeof why), 1);
  LK_CHECK_EQ_INT(c.bad_position, 2);
  LK_CHECK_CONTAINS(why, "up to 4");
  release(&f);
}

LK_TEST(repeated_position_fails) {
  struct fixture f;
  struct ctl_chain c;
  struct ctl_row rows[3];
  char why[512] = "";

  build(&f);
  rows[0] = f.row[0];
  rows[1] = f.row[1];
  rows[2] = f.row[1];
  LK_CHECK_EQ_INT(feed(&c, rows, 3, why, sizeof why), 2);
  LK_CHECK_EQ_INT(c.bad_position, 2);
  LK_CHECK_CONTAINS(why, "again");
  release(&f);
}

LK_TEST(columns_must_match_the_payload) {
  struct fixture f;
  struct ctl_chain c;
  char why[512] = "";

  build(&f);
  f.row[1].type = "closed";
  LK_CHECK_EQ_INT(feed(&c, f.row, ROWS, why, sizeof why), 1);
  LK_CHECK_CONTAINS(why, "type \"closed\"");

  release(&f);
  build(&f);
  f.row[2].event_id = "inc-0/reported";
  LK_CHECK_EQ_INT(feed(&c, f.row, ROWS, why, sizeof why), 2);
  LK_CHECK_CONTAINS(why, "event_id");

  release(&f);
  build(&f);
  f.row[3].incident_id = "inc-forged";
  LK_CHECK_EQ_INT(feed(&c, f.row, ROWS, why, sizeof why), 3);
  LK_CHECK_CONTAINS(why, "incident_id");

  release(&f);
  build(&f);
  f.row[4].actor = "coordinator:mallory";
  LK_CHECK_EQ_INT(feed(&c, f.row, ROWS, why, sizeof why), 4);
  LK_CHECK_CONTAINS(why, "actor");

  release(&f);
  build(&f);
  f.row[4].at_us += 1;
  LK_CHECK_EQ_INT(feed(&c, f.row, ROWS, why, sizeof why), 4);
  LK_CHECK_EQ_INT(c.bad_position, 5);
  LK_CHECK_CONTAINS(why, "at ");
  release(&f);
}

LK_TEST(undecodable_payload_fails_even_with_a_good_hash) {
  struct fixture f;
  struct ctl_chain c;
  char why[512] = "";
  uint8_t junk[3] = {0xff, 0xff, 0xff};

  build(&f);
  f.row[0].payload = junk;
  f.row[0].payload_len = sizeof junk;
  lk_chain_hash(f.prev[0], 1, junk, sizeof junk, f.hash[0]);
  LK_CHECK_EQ_INT(feed(&c, f.row, 1, why, sizeof why), 0);
  LK_CHECK_CONTAINS(why, "does not decode");
  release(&f);
}

LK_TEST(short_hash_fails) {
  struct fixture f;
  struct ctl_chain c;
  char why[512] = "";

  build(&f);
  f.row[0].hash_len = 16;
  LK_CHECK_EQ_INT(feed(&c, f.row, 1, why, sizeof why), 0);
  LK_CHECK_CONTAINS(why, "not 32");
  release(&f);
}

int main(void) {
  return lk_test_run_all();
}
