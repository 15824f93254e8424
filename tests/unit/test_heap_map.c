#include <stdio.h>
#include <stdlib.h>

#include "linkage/error.h"
#include "linkage/heap.h"
#include "linkage/map.h"
#include "lk_test.h"

LK_TEST(heap_pops_in_deadline_order_with_fifo_ties) {
  struct lk_heap h;
  LK_CHECK_EQ_INT(lk_heap_init(&h, 4), LK_OK);
  int64_t at[] = {50, 10, 30, 10, 70, 20, 10};
  for (unsigned i = 0; i < sizeof at / sizeof at[0]; i++)
    LK_CHECK(lk_heap_push(&h, (struct lk_deadline){.at_us = at[i], .owner = i}) != LK_HEAP_NONE);
  struct lk_deadline d;
  int64_t prev = -1;
  uint64_t tie_owner[3] = {0};
  int ties = 0, ordered = 1;
  while (lk_heap_pop(&h, &d)) {
    if (d.at_us < prev) ordered = 0;
    if (d.at_us == 10) tie_owner[ties++] = d.owner;
    prev = d.at_us;
  }
  LK_CHECK(ordered);
  LK_CHECK_EQ_INT(ties, 3);
  LK_CHECK_EQ_INT(tie_owner[0], 1);
  LK_CHECK_EQ_INT(tie_owner[1], 3);
  LK_CHECK_EQ_INT(tie_owner[2], 6);
  lk_heap_close(&h);
}

LK_TEST(heap_remove_by_handle_under_churn) {
  struct lk_heap h;
  enum { N = 20000 };
  static uint32_t handle[N];
  static int removed[N];
  LK_CHECK_EQ_INT(lk_heap_init(&h, 16), LK_OK);
  srand(7);
  for (int i = 0; i < N; i++)
    handle[i] =
        lk_heap_push(&h, (struct lk_deadline){.at_us = rand() % 100000, .owner = (uint64_t)i});
  for (int i = 0; i < N; i += 3) {
    lk_heap_remove(&h, handle[i]);
    removed[i] = 1;
  }
  lk_heap_remove(&h, handle[0]); /* stale handle: no effect */
  /* Re-use freed handles and keep the order right. */
  for (int i = 0; i < N; i += 3) {
    handle[i] = lk_heap_push(&h, (struct lk_deadline){.at_us = 5, .owner = (uint64_t)i});
    removed[i] = 0;
  }
  struct lk_deadline d;
  int64_t prev = -1;
  int count = 0, ordered = 1, seen_bad = 0;
  while (lk_heap_pop(&h, &d)) {
    if (d.at_us < prev) ordered = 0;
    if (removed[d.owner]) seen_bad = 1;
    prev = d.at_us;
    count++;
  }
  LK_CHECK(ordered);
  LK_CHECK(!seen_bad);
  LK_CHECK_EQ_INT(count, N);
  LK_CHECK(lk_heap_peek(&h) == NULL);
  lk_heap_close(&h);
}

LK_TEST(map_put_get_delete_and_grow) {
  struct lk_map m;
  char key[32];
  uint64_t v = 0;
  LK_CHECK_EQ_INT(lk_map_init(&m, 2), LK_OK);
  for (int i = 0; i < 50000; i++) {
    snprintf(key, sizeof key, "inc-%d", i);
    if (lk_map_put(&m, key, (uint64_t)i * 3) != LK_OK) break;
  }
  LK_CHECK_EQ_INT(m.count, 50000);
  LK_CHECK(lk_map_get(&m, "inc-49999", &v));
  LK_CHECK_EQ_INT(v, 149997);
  LK_CHECK(!lk_map_get(&m, "inc-50000", &v));
  int deleted = 0;
  for (int i = 0; i < 50000; i += 2) {
    snprintf(key, sizeof key, "inc-%d", i);
    deleted += lk_map_del(&m, key);
  }
  LK_CHECK_EQ_INT(deleted, 25000);
  LK_CHECK(!lk_map_get(&m, "inc-0", &v));
  LK_CHECK(lk_map_get(&m, "inc-1", &v));
  LK_CHECK_EQ_INT(v, 3);
  LK_CHECK_EQ_INT(lk_map_put(&m, "inc-1", 9), LK_OK);
  LK_CHECK(lk_map_get(&m, "inc-1", &v));
  LK_CHECK_EQ_INT(v, 9);
  LK_CHECK_EQ_INT(m.count, 25000);
  /* Churn: deleting and re-adding must not fill the table with tombstones forever. */
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < 1000; i++) {
      snprintf(key, sizeof key, "churn-%d-%d", round, i);
      lk_map_put(&m, key, 1);
    }
    for (int i = 0; i < 1000; i++) {
      snprintf(key, sizeof key, "churn-%d-%d", round, i);
      lk_map_del(&m, key);
    }
  }
  LK_CHECK_EQ_INT(m.count, 25000);
  LK_CHECK(m.used < m.cap);
  lk_map_close(&m);
}

int main(void) {
  return lk_test_run_all();
}
