/* The ledger chain check behind `linkagectl verify`: one row at a time, in
 * position order, no database in sight (tests/unit/test_ctl_verify.c). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "linkage/event.h"

void ctl_chain_init(struct ctl_chain *c) {
  c->rows = 0;
  c->position = 0;
  c->bad_position = 0;
  memset(c->hash, 0, sizeof c->hash);
}

static int str_eq(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "") == 0;
}

static int check_payload(const struct ctl_row *r, char *why, size_t len) {
  Linkage__V1__Event *ev = linkage__v1__event__unpack(NULL, r->payload_len, r->payload);
  const char *type;
  int rc = -1;

  if (!ev) {
    snprintf(why, len, "payload does not decode as an Event (%zu bytes)", r->payload_len);
    return -1;
  }
  type = lk_event_type_name(ev->type);
  if (!str_eq(ev->event_id, r->event_id))
    snprintf(why, len, "event_id \"%s\" differs from the payload's \"%s\"", r->event_id,
             ev->event_id);
  else if (!str_eq(ev->incident_id, r->incident_id))
    snprintf(why, len, "incident_id \"%s\" differs from the payload's \"%s\"", r->incident_id,
             ev->incident_id);
  else if (!type || !str_eq(type, r->type))
    snprintf(why, len, "type \"%s\" differs from the payload's \"%s\"", r->type,
             type ? type : "(unknown)");
  else if (!str_eq(ev->actor, r->actor))
    snprintf(why, len, "actor \"%s\" differs from the payload's \"%s\"", r->actor, ev->actor);
  else if (ev->at_us != r->at_us)
    snprintf(why, len, "at %lld differs from the payload's %lld (microseconds)",
             (long long)r->at_us, (long long)ev->at_us);
  else
    rc = 0;
  linkage__v1__event__free_unpacked(ev, NULL);
  return rc;
}

int ctl_chain_check(struct ctl_chain *c, const struct ctl_row *r, char *why, size_t len) {
  uint8_t want[LK_HASH_LEN];
  char a[2 * LK_HASH_LEN + 1], b[2 * LK_HASH_LEN + 1];

  c->bad_position = r->position;
  if (r->position <= c->position) {
    snprintf(why, len, "appears again after position %llu", (unsigned long long)c->position);
    return -1;
  }
  if (r->position != c->position + 1) {
    /* The first missing position is the bad one: a removed row. */
    c->bad_position = c->position + 1;
    if (r->position == c->position + 2)
      snprintf(why, len, "missing (the next row is position %llu)",
               (unsigned long long)r->position);
    else
      snprintf(why, len, "missing, and so are the positions up to %llu",
               (unsigned long long)r->position - 1);
    return -1;
  }
  if (r->prev_hash_len != LK_HASH_LEN || r->hash_len != LK_HASH_LEN) {
    snprintf(why, len, "prev_hash or hash is %zu/%zu bytes, not %d", r->prev_hash_len, r->hash_len,
             LK_HASH_LEN);
    return -1;
  }
  if (memcmp(r->prev_hash, c->hash, LK_HASH_LEN) != 0) {
    lk_hex(r->prev_hash, LK_HASH_LEN, a);
    lk_hex(c->hash, LK_HASH_LEN, b);
    snprintf(why, len, "prev_hash %s is not the previous row's hash %s", a, b);
    return -1;
  }
  lk_chain_hash(c->hash, r->position, r->payload, r->payload_len, want);
  if (memcmp(r->hash, want, LK_HASH_LEN) != 0) {
    lk_hex(r->hash, LK_HASH_LEN, a);
    lk_hex(want, LK_HASH_LEN, b);
    snprintf(why, len, "hash %s does not match the payload (expected %s)", a, b);
    return -1;
  }
  if (check_payload(r, why, len) != 0) return -1;
  c->rows++;
  c->position = r->position;
  memcpy(c->hash, r->hash, LK_HASH_LEN);
  return 0;
}
