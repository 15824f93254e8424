#ifndef LINKAGE_MAP_H
#define LINKAGE_MAP_H

#include <stddef.h>
#include <stdint.h>

/* A string-keyed hash map (open addressing, linear probing, tombstones) for
 * the projections services fold from the ledger: incident id -> slot. Keys
 * are copied into the map; values are opaque 64-bit numbers (an index into
 * the service's own array, typically). */

struct lk_map {
  struct lk_map_slot *slots;
  size_t cap;   /* power of two */
  size_t count; /* live entries */
  size_t used;  /* live + tombstones */
};

int lk_map_init(struct lk_map *m, size_t expected);
void lk_map_close(struct lk_map *m);

/* Inserts or replaces. Returns LK_OK or LK_ENOMEM. */
int lk_map_put(struct lk_map *m, const char *key, uint64_t value);
/* Returns 1 and sets *value when found, else 0. */
int lk_map_get(const struct lk_map *m, const char *key, uint64_t *value);
/* Returns 1 if the key was present. */
int lk_map_del(struct lk_map *m, const char *key);

#endif
