/* The appends the ledger holds (queued or in the batch in flight), by event
 * id. The map names the newest held copy of an event; each copy links to the
 * one held before it (different clients may hold the same event: a device
 * that resent its report through another intake). Pure: no I/O.
 *
 * Why: a client resends an append the ledger has not answered within its
 * timeout. Under overload the queue is longer than that timeout, so every
 * waiting append would be resent and queued again, each copy a row of a
 * later batch that finds the event stored and sends the batch down the
 * careful path: the queue grew with copies, commits slowed, more appends
 * timed out (RSS 137 MiB and rising after a minute of overload). A resend
 * from the client whose copy is held is dropped instead: the held copy's
 * answer carries an earlier request id of the same request, which the
 * client accepts (services/common/ledger_client.c). */
#include <stdint.h>
#include <string.h>

#include "ledger.h"
#include "linkage/error.h"
#include "linkage/map.h"

static struct ledger_item *newest(const struct lk_map *held, const char *event_id) {
  uint64_t v = 0;
  if (!held->slots || !lk_map_get(held, event_id, &v)) return NULL;
  return (struct ledger_item *)(uintptr_t)v;
}

int ledger_held_add(struct lk_map *held, struct ledger_item *it) {
  it->older = newest(held, it->event_id);
  int rc = lk_map_put(held, it->event_id, (uint64_t)(uintptr_t)it);
  if (rc != LK_OK) it->older = NULL; /* not held: its resends are queued like new appends */
  return rc;
}

void ledger_held_remove(struct lk_map *held, struct ledger_item *it) {
  struct ledger_item *n = newest(held, it->event_id);
  if (n == it) {
    if (it->older)
      lk_map_put(held, it->event_id, (uint64_t)(uintptr_t)it->older); /* replaces: no memory */
    else
      lk_map_del(held, it->event_id);
  } else {
    for (; n; n = n->older)
      if (n->older == it) {
        n->older = it->older;
        break;
      }
  }
  it->older = NULL;
}

struct ledger_item *ledger_held_find(const struct lk_map *held, const char *event_id,
                                     const uint8_t *ident, size_t ident_len) {
  struct ledger_item *n = newest(held, event_id);
  if (!ident) return n;
  for (; n; n = n->older)
    if (n->ident_len == ident_len && memcmp(n->ident, ident, ident_len) == 0) return n;
  return NULL;
}
