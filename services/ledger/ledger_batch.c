/* The ledger's decisions about one batch, without I/O: which appends are new,
 * which were stored before, which an earlier attempt of an in-doubt batch
 * committed, their positions and hashes, and the rows' COPY encoding. The
 * writer thread runs this between its dedupe query and its COPY. */
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "linkage/error.h"

int ledger_batch_init(struct ledger_batch *b, size_t cap) {
  memset(b, 0, sizeof *b);
  b->items = calloc(cap ? cap : 1, sizeof *b->items);
  if (!b->items) return LK_ENOMEM;
  b->cap = cap ? cap : 1;
  return LK_OK;
}

void ledger_batch_close(struct ledger_batch *b) {
  free(b->items);
  memset(b, 0, sizeof *b);
}

int ledger_batch_add(struct ledger_batch *b, struct ledger_item *it) {
  if (b->count >= b->cap) return LK_EFULL;
  b->items[b->count++] = it;
  return LK_OK;
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ULL;
  return h;
}

/* Open addressing over item indexes (slot value index+1, 0 = empty). */
struct index {
  size_t *slot;
  size_t mask;
};

static size_t *find_slot(const struct index *ix, struct ledger_item *const *items, const char *id) {
  for (size_t i = hash_str(id) & ix->mask;; i = (i + 1) & ix->mask) {
    if (ix->slot[i] == 0 || strcmp(items[ix->slot[i] - 1]->event_id, id) == 0) return &ix->slot[i];
  }
}

static void copy_id(char *dst, size_t n, const char *src) {
  size_t l = strlen(src);
  if (l >= n) l = n - 1;
  memcpy(dst, src, l);
  dst[l] = '\0';
}

int ledger_batch_resolve(struct ledger_batch *b, const struct ledger_existing *ex, size_t n_ex,
                         uint64_t head, const uint8_t head_hash[LK_HASH_LEN]) {
  size_t size = 16;
  while (size < 2 * b->count)
    size <<= 1;
  struct index ix = {calloc(size, sizeof(size_t)), size - 1};
  size_t *first = malloc((b->count ? b->count : 1) * sizeof *first);
  if (!ix.slot || !first) {
    free(ix.slot);
    free(first);
    return LK_ENOMEM;
  }

  for (size_t i = 0; i < b->count; i++) {
    struct ledger_item *it = b->items[i];
    it->outcome = LEDGER_PENDING;
    it->position = 0;
    it->stored_incident_id[0] = '\0';
    size_t *s = find_slot(&ix, b->items, it->event_id);
    if (*s == 0) *s = i + 1;
    first[i] = *s - 1;
  }

  for (size_t k = 0; k < n_ex; k++) {
    size_t *s = find_slot(&ix, b->items, ex[k].event_id);
    if (*s == 0) continue; /* the query only returns ids we asked for; be safe anyway */
    struct ledger_item *it = b->items[*s - 1];
    it->position = ex[k].position;
    if (b->in_doubt && ex[k].position >= b->doubt_from) {
      /* Stored at a position an unknown-outcome attempt of this very batch assigned: that
       * attempt committed, and this request is what committed it. */
      it->outcome = LEDGER_COMMITTED;
    } else {
      it->outcome = LEDGER_DUPLICATE;
      copy_id(it->stored_incident_id, sizeof it->stored_incident_id, ex[k].incident_id);
    }
  }

  uint8_t prev[LK_HASH_LEN];
  memcpy(prev, head_hash, LK_HASH_LEN);
  b->attempt_from = head + 1;
  b->new_count = 0;
  for (size_t i = 0; i < b->count; i++) {
    struct ledger_item *it = b->items[i];
    if (first[i] != i) {
      const struct ledger_item *f = b->items[first[i]];
      it->outcome = LEDGER_DUPLICATE;
      it->position = f->position;
      copy_id(it->stored_incident_id, sizeof it->stored_incident_id,
              f->outcome == LEDGER_DUPLICATE ? f->stored_incident_id : f->incident_id);
      continue;
    }
    if (it->outcome != LEDGER_PENDING) continue;
    it->outcome = LEDGER_NEW;
    it->position = ++head;
    memcpy(it->prev_hash, prev, LK_HASH_LEN);
    lk_chain_hash(prev, it->position, it->payload, it->len, it->hash);
    memcpy(prev, it->hash, LK_HASH_LEN);
    b->new_count++;
  }
  b->head = head;
  memcpy(b->head_hash, prev, LK_HASH_LEN);
  free(ix.slot);
  free(first);
  return (int)b->new_count;
}

void ledger_batch_mark_in_doubt(struct ledger_batch *b) {
  if (b->new_count == 0) return; /* nothing was written, so nothing can be in doubt */
  if (!b->in_doubt || b->attempt_from < b->doubt_from) b->doubt_from = b->attempt_from;
  b->in_doubt = 1;
}

int ledger_buf_reserve(struct ledger_buf *b, size_t more) {
  if (b->len + more <= b->cap) return LK_OK;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more)
    cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) return LK_ENOMEM;
  b->p = p;
  b->cap = cap;
  return LK_OK;
}

void ledger_buf_free(struct ledger_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void put16(struct ledger_buf *b, uint16_t v) {
  b->p[b->len++] = (uint8_t)(v >> 8);
  b->p[b->len++] = (uint8_t)v;
}

static void put32(struct ledger_buf *b, uint32_t v) {
  for (int i = 3; i >= 0; i--)
    b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static void put64(struct ledger_buf *b, uint64_t v) {
  for (int i = 7; i >= 0; i--)
    b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static void put_bytes(struct ledger_buf *b, const void *p, size_t n) {
  put32(b, (uint32_t)n);
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void put_text(struct ledger_buf *b, const char *s) {
  if (!s) {
    put32(b, 0xffffffffu); /* -1: NULL */
    return;
  }
  put_bytes(b, s, strlen(s));
}

static size_t text_size(const char *s) {
  return 4 + (s ? strlen(s) : 0);
}

int64_t ledger_pg_time(int64_t unix_us) {
  return unix_us - 946684800000000LL;
}

int ledger_copy_begin(struct ledger_buf *b) {
  static const uint8_t sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
  if (ledger_buf_reserve(b, sizeof sig + 8)) return LK_ENOMEM;
  memcpy(b->p + b->len, sig, sizeof sig);
  b->len += sizeof sig;
  put32(b, 0); /* flags: no OIDs */
  put32(b, 0); /* header extension length */
  return LK_OK;
}

static void put_flag(struct ledger_buf *b, enum ledger_flag f) {
  if (f == LEDGER_FLAG_NULL) {
    put32(b, 0xffffffffu);
  } else {
    put32(b, 1); /* boolean: one byte */
    b->p[b->len++] = f == LEDGER_FLAG_TRUE;
  }
}

int ledger_copy_row(struct ledger_buf *b, const struct ledger_item *it) {
  size_t need = 2 + 12 + 12 + text_size(it->event_id) + text_size(it->incident_id) +
                text_size(it->type) + text_size(it->actor) + text_size(it->category) +
                text_size(it->severity) + text_size(it->tier) + text_size(it->compound_id) + 4 +
                it->len + 2 * (4 + LK_HASH_LEN) + text_size(it->unit_id) + 2 * 5;
  if (ledger_buf_reserve(b, need)) return LK_ENOMEM;
  put16(b, 16);
  put32(b, 8);
  put64(b, it->position);
  put_text(b, it->event_id);
  put_text(b, it->incident_id);
  put_text(b, it->type);
  put32(b, 8);
  put64(b, (uint64_t)ledger_pg_time(it->at_us));
  put_text(b, it->actor);
  put_text(b, it->category);
  put_text(b, it->severity);
  put_text(b, it->tier);
  put_text(b, it->compound_id);
  put_bytes(b, it->payload, it->len);
  put_bytes(b, it->prev_hash, LK_HASH_LEN);
  put_bytes(b, it->hash, LK_HASH_LEN);
  put_text(b, it->unit_id);
  put_flag(b, it->lead);
  put_flag(b, it->exercise);
  return LK_OK;
}

int ledger_copy_end(struct ledger_buf *b) {
  if (ledger_buf_reserve(b, 2)) return LK_ENOMEM;
  put16(b, 0xffff); /* -1: end of data */
  return LK_OK;
}

int ledger_text_array(struct ledger_buf *b, const char *const *strs, size_t n) {
  size_t need = 20;
  for (size_t i = 0; i < n; i++)
    need += 4 + strlen(strs[i]);
  if (ledger_buf_reserve(b, need)) return LK_ENOMEM;
  put32(b, n ? 1 : 0); /* dimensions */
  put32(b, 0);         /* no NULLs */
  put32(b, 25);        /* element type: text */
  if (n) {
    put32(b, (uint32_t)n);
    put32(b, 1); /* lower bound */
  }
  for (size_t i = 0; i < n; i++)
    put_bytes(b, strs[i], strlen(strs[i]));
  return LK_OK;
}
