#include "linkage/map.h"

#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"

struct lk_map_slot {
  char *key; /* NULL: empty; TOMBSTONE: deleted */
  uint64_t hash;
  uint64_t value;
};

static char tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

/* FNV-1a: ids are short and not attacker-chosen at a rate that matters here
 * (they come from the ledger, after intake derived them with SHA-256). */
static uint64_t hash_key(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

int lk_map_init(struct lk_map *m, size_t expected) {
  size_t cap = 16;
  while (cap < expected * 2)
    cap <<= 1;
  m->slots = calloc(cap, sizeof *m->slots);
  if (!m->slots) return LK_ENOMEM;
  m->cap = cap;
  m->count = m->used = 0;
  return LK_OK;
}

void lk_map_close(struct lk_map *m) {
  if (!m->slots) return;
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key && m->slots[i].key != TOMBSTONE) free(m->slots[i].key);
  free(m->slots);
  m->slots = NULL;
  m->cap = m->count = m->used = 0;
}

static struct lk_map_slot *find(const struct lk_map *m, const char *key, uint64_t h) {
  for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    struct lk_map_slot *s = &m->slots[i];
    if (!s->key) return NULL;
    if (s->key != TOMBSTONE && s->hash == h && strcmp(s->key, key) == 0) return s;
  }
}

static int grow(struct lk_map *m) {
  struct lk_map old = *m;
  size_t cap =
      m->count * 4 > m->cap ? m->cap * 2 : m->cap; /* rehash in place when mostly tombstones */
  m->slots = calloc(cap, sizeof *m->slots);
  if (!m->slots) {
    *m = old;
    return LK_ENOMEM;
  }
  m->cap = cap;
  m->used = m->count;
  for (size_t i = 0; i < old.cap; i++) {
    struct lk_map_slot *s = &old.slots[i];
    if (!s->key || s->key == TOMBSTONE) continue;
    size_t j = s->hash & (cap - 1);
    while (m->slots[j].key)
      j = (j + 1) & (cap - 1);
    m->slots[j] = *s;
  }
  free(old.slots);
  return LK_OK;
}

int lk_map_put(struct lk_map *m, const char *key, uint64_t value) {
  uint64_t h = hash_key(key);
  struct lk_map_slot *s = find(m, key, h);
  if (s) {
    s->value = value;
    return LK_OK;
  }
  if ((m->used + 1) * 4 > m->cap * 3 && grow(m) != LK_OK) return LK_ENOMEM;
  char *copy = strdup(key);
  if (!copy) return LK_ENOMEM;
  size_t i = h & (m->cap - 1);
  while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
    i = (i + 1) & (m->cap - 1);
  if (!m->slots[i].key) m->used++;
  m->slots[i] = (struct lk_map_slot){copy, h, value};
  m->count++;
  return LK_OK;
}

int lk_map_get(const struct lk_map *m, const char *key, uint64_t *value) {
  struct lk_map_slot *s = find(m, key, hash_key(key));
  if (!s) return 0;
  *value = s->value;
  return 1;
}

int lk_map_del(struct lk_map *m, const char *key) {
  struct lk_map_slot *s = find(m, key, hash_key(key));
  if (!s) return 0;
  free(s->key);
  s->key = TOMBSTONE;
  m->count--;
  return 1;
}
