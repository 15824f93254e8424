#include "linkage/heap.h"

#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"

int lk_heap_init(struct lk_heap *h, size_t expected) {
  memset(h, 0, sizeof *h);
  size_t cap = expected < 16 ? 16 : expected;
  h->items = malloc(cap * sizeof *h->items);
  h->handle_of = malloc(cap * sizeof *h->handle_of);
  h->slot_of = malloc(cap * sizeof *h->slot_of);
  h->free_handles = malloc(cap * sizeof *h->free_handles);
  if (!h->items || !h->handle_of || !h->slot_of || !h->free_handles) {
    lk_heap_close(h);
    return LK_ENOMEM;
  }
  h->cap = h->handle_cap = cap;
  return LK_OK;
}

void lk_heap_close(struct lk_heap *h) {
  free(h->items);
  free(h->handle_of);
  free(h->slot_of);
  free(h->free_handles);
  memset(h, 0, sizeof *h);
}

static int before(const struct lk_deadline *a, const struct lk_deadline *b) {
  if (a->at_us != b->at_us) return a->at_us < b->at_us;
  return (int32_t)(a->seq - b->seq) < 0;
}

static void place(struct lk_heap *h, size_t i, struct lk_deadline d, uint32_t handle) {
  h->items[i] = d;
  h->handle_of[i] = handle;
  h->slot_of[handle] = (uint32_t)i;
}

static void sift_up(struct lk_heap *h, size_t i) {
  struct lk_deadline d = h->items[i];
  uint32_t handle = h->handle_of[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&d, &h->items[parent])) break;
    place(h, i, h->items[parent], h->handle_of[parent]);
    i = parent;
  }
  place(h, i, d, handle);
}

static void sift_down(struct lk_heap *h, size_t i) {
  struct lk_deadline d = h->items[i];
  uint32_t handle = h->handle_of[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const struct lk_deadline *best = &d;
    if (l < h->count && before(&h->items[l], best)) m = l, best = &h->items[l];
    if (r < h->count && before(&h->items[r], best)) m = r;
    if (m == i) break;
    place(h, i, h->items[m], h->handle_of[m]);
    i = m;
  }
  place(h, i, d, handle);
}

static int grow(struct lk_heap *h) {
  size_t cap = h->cap * 2;
  struct lk_deadline *items = realloc(h->items, cap * sizeof *items);
  if (!items) return LK_ENOMEM;
  h->items = items;
  uint32_t *handle_of = realloc(h->handle_of, cap * sizeof *handle_of);
  if (!handle_of) return LK_ENOMEM;
  h->handle_of = handle_of;
  uint32_t *slot_of = realloc(h->slot_of, cap * sizeof *slot_of);
  if (!slot_of) return LK_ENOMEM;
  h->slot_of = slot_of;
  uint32_t *free_handles = realloc(h->free_handles, cap * sizeof *free_handles);
  if (!free_handles) return LK_ENOMEM;
  h->free_handles = free_handles;
  h->cap = h->handle_cap = cap;
  return LK_OK;
}

uint32_t lk_heap_push(struct lk_heap *h, struct lk_deadline d) {
  if (h->count == h->cap && grow(h) != LK_OK) return LK_HEAP_NONE;
  /* Every handle is either live or free, so with no free one the next unused handle is count. */
  uint32_t handle = h->free_count ? h->free_handles[--h->free_count] : (uint32_t)h->count;
  d.seq = h->next_seq++;
  size_t i = h->count++;
  place(h, i, d, handle);
  sift_up(h, i);
  return handle;
}

static void remove_at(struct lk_heap *h, size_t i) {
  uint32_t handle = h->handle_of[i];
  h->slot_of[handle] = LK_HEAP_NONE;
  h->free_handles[h->free_count++] = handle;
  size_t last = --h->count;
  if (i == last) return;
  place(h, i, h->items[last], h->handle_of[last]);
  if (i > 0 && before(&h->items[i], &h->items[(i - 1) / 2]))
    sift_up(h, i);
  else
    sift_down(h, i);
}

void lk_heap_remove(struct lk_heap *h, uint32_t handle) {
  if (handle == LK_HEAP_NONE || handle >= h->handle_cap) return;
  uint32_t i = h->slot_of[handle];
  if (i == LK_HEAP_NONE || i >= h->count || h->handle_of[i] != handle) return;
  remove_at(h, i);
}

const struct lk_deadline *lk_heap_peek(const struct lk_heap *h) {
  return h->count ? &h->items[0] : NULL;
}

int lk_heap_pop(struct lk_heap *h, struct lk_deadline *out) {
  if (!h->count) return 0;
  *out = h->items[0];
  remove_at(h, 0);
  return 1;
}
