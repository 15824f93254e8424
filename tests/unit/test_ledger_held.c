/* The ledger's record of held appends (services/ledger/ledger_held.c): a
 * resend from the client whose copy is held is found by (event id, ROUTER
 * identity); another client's copy is found only as "someone holds it";
 * removing copies in any order leaves the rest findable and the map empty at
 * the end. */
#include <stdint.h>
#include <string.h>

#include "ledger/ledger.h"
#include "linkage/error.h"
#include "linkage/map.h"
#include "lk_test.h"

static void copy_of(struct ledger_item *it, const char *event_id, const char *ident) {
  memset(it, 0, sizeof *it);
  it->event_id = event_id;
  it->ident_len = strlen(ident);
  memcpy(it->ident, ident, it->ident_len);
}

static int found(struct lk_map *m, const char *event_id, const char *ident,
                 const struct ledger_item *want) {
  return ledger_held_find(m, event_id, (const uint8_t *)ident, strlen(ident)) == want;
}

LK_TEST(a_resend_from_the_same_client_finds_its_held_copy) {
  struct lk_map m;
  LK_CHECK_EQ_INT(lk_map_init(&m, 8), LK_OK);
  struct ledger_item a;
  copy_of(&a, "inc-1/reported", "@peerA");
  LK_CHECK_EQ_INT(ledger_held_add(&m, &a), LK_OK);
  LK_CHECK(found(&m, "inc-1/reported", "@peerA", &a));
  /* another client, another event, a prefix of the identity: not this copy */
  LK_CHECK(found(&m, "inc-1/reported", "@peerB", NULL));
  LK_CHECK(found(&m, "inc-2/reported", "@peerA", NULL));
  LK_CHECK(found(&m, "inc-1/reported", "@peer", NULL));
  LK_CHECK(ledger_held_find(&m, "inc-1/reported", NULL, 0) == &a);
  ledger_held_remove(&m, &a);
  LK_CHECK(ledger_held_find(&m, "inc-1/reported", NULL, 0) == NULL);
  LK_CHECK_EQ_INT(m.count, 0);
  lk_map_close(&m);
}

/* Three clients hold the same event; each copy is found by its own identity
 * whichever are removed first (a batch frees its items in queue order, but a
 * copy queued later may sit in an earlier batch's place after an in-doubt
 * retry, so no order is assumed). */
LK_TEST(copies_of_several_clients_are_removed_in_any_order) {
  static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                   {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  const char *idents[3] = {"@A", "@B", "@C"};
  for (int o = 0; o < 6; o++) {
    struct lk_map m;
    LK_CHECK_EQ_INT(lk_map_init(&m, 8), LK_OK);
    struct ledger_item it[3], other;
    for (int i = 0; i < 3; i++) {
      copy_of(&it[i], "inc-7/reported", idents[i]);
      LK_CHECK_EQ_INT(ledger_held_add(&m, &it[i]), LK_OK);
    }
    copy_of(&other, "inc-8/reported", "@A");
    LK_CHECK_EQ_INT(ledger_held_add(&m, &other), LK_OK);
    int gone[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
      int r = orders[o][k];
      ledger_held_remove(&m, &it[r]);
      gone[r] = 1;
      for (int i = 0; i < 3; i++)
        LK_CHECK(found(&m, "inc-7/reported", idents[i], gone[i] ? NULL : &it[i]));
      const struct ledger_item *any = ledger_held_find(&m, "inc-7/reported", NULL, 0);
      LK_CHECK((any == NULL) == (k == 2));
      LK_CHECK(any == NULL || !gone[any - it]);
      LK_CHECK(found(&m, "inc-8/reported", "@A", &other));
    }
    /* removing what is no longer held changes nothing */
    ledger_held_remove(&m, &it[0]);
    LK_CHECK(found(&m, "inc-8/reported", "@A", &other));
    ledger_held_remove(&m, &other);
    LK_CHECK_EQ_INT(m.count, 0);
    lk_map_close(&m);
  }
}

/* The same client holding two copies (it appended the event again after
 * giving up on the first request): both are found until both are gone. */
LK_TEST(two_copies_of_one_client) {
  struct lk_map m;
  LK_CHECK_EQ_INT(lk_map_init(&m, 8), LK_OK);
  struct ledger_item a, b;
  copy_of(&a, "e", "@P");
  copy_of(&b, "e", "@P");
  LK_CHECK_EQ_INT(ledger_held_add(&m, &a), LK_OK);
  LK_CHECK_EQ_INT(ledger_held_add(&m, &b), LK_OK);
  LK_CHECK(found(&m, "e", "@P", &b));
  ledger_held_remove(&m, &a);
  LK_CHECK(found(&m, "e", "@P", &b));
  ledger_held_remove(&m, &b);
  LK_CHECK(found(&m, "e", "@P", NULL));
  LK_CHECK_EQ_INT(m.count, 0);
  lk_map_close(&m);
}

int main(void) {
  return lk_test_run_all();
}
