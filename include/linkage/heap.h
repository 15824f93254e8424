#ifndef LINKAGE_HEAP_H
#define LINKAGE_HEAP_H

#include <stddef.h>
#include <stdint.h>

/* A binary min-heap of deadlines: one libuv timer armed for the earliest
 * entry serves a million pending deadlines (Redis's and libuv's own timers
 * work the same way). Each entry carries an owner id (an index into the
 * service's table) and a kind; entries can be removed or moved by handle, so
 * an incident acknowledged in time drops its deadline in O(log n). */

struct lk_deadline {
  int64_t at_us;
  uint64_t owner;
  uint32_t kind;
  uint32_t seq; /* insertion order, so equal deadlines fire first-in first-out */
};

struct lk_heap {
  struct lk_deadline *items;
  uint32_t *slot_of;   /* handle -> index in items, or UINT32_MAX when free */
  uint32_t *handle_of; /* index in items -> handle */
  uint32_t *free_handles;
  size_t count, cap, free_count, handle_cap;
  uint32_t next_seq;
};

#define LK_HEAP_NONE UINT32_MAX

int lk_heap_init(struct lk_heap *h, size_t expected);
void lk_heap_close(struct lk_heap *h);

/* Adds a deadline; returns its handle, or LK_HEAP_NONE on ENOMEM. */
uint32_t lk_heap_push(struct lk_heap *h, struct lk_deadline d);
/* Removes the entry with this handle; no-op for LK_HEAP_NONE or a handle not in
 * use. Handles are reused once their entry is popped or removed, so the caller
 * must forget a handle at that moment (set it to LK_HEAP_NONE): a remembered
 * old handle may name somebody else's deadline by then. */
void lk_heap_remove(struct lk_heap *h, uint32_t handle);
/* The earliest entry, or NULL when empty. Borrowed. */
const struct lk_deadline *lk_heap_peek(const struct lk_heap *h);
/* Removes the earliest entry into *out; returns 0 when empty. */
int lk_heap_pop(struct lk_heap *h, struct lk_deadline *out);

#endif
