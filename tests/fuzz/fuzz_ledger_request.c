/* linkage-ledger's handling of one LedgerRequest short of PostgreSQL: unpack,
 * and for an append lk_event_check, the queued item (make_item), the batch
 * (dedupe, positions, hash chain, twice as a resend would) and the binary
 * COPY rows and text[] of event ids the writer sends. Replay requests are
 * only decoded here: answering them needs the ring or the database.
 *
 * make_item is static in ledger_server.c, so that file is compiled into this
 * target: the fuzzer exercises the daemon's own code, not a copy of it. */
#include "../../services/ledger/ledger_server.c"

#include "fuzz_common.h"
#include "linkage/v1/ledger.pb-c.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fuzz_quiet();
  return 0;
}

static void encode(struct ledger_batch *b) {
  struct ledger_buf buf = {0};
  if (ledger_copy_begin(&buf) != LK_OK) abort();
  for (size_t i = 0; i < b->count; i++)
    if (b->items[i]->outcome == LEDGER_NEW && ledger_copy_row(&buf, b->items[i]) != LK_OK) abort();
  if (ledger_copy_end(&buf) != LK_OK) abort();
  ledger_buf_free(&buf);

  const char *ids[2];
  for (size_t i = 0; i < b->count; i++)
    ids[i] = b->items[i]->event_id;
  struct ledger_buf arr = {0};
  if (ledger_text_array(&arr, ids, b->count) != LK_OK) abort();
  ledger_buf_free(&arr);
}

static void append(const Linkage__V1__AppendRequest *a, uint64_t request_id) {
  char err[256];
  const Linkage__V1__Event *ev = a ? a->event : NULL;
  if (!ev || lk_event_check(ev, err, sizeof err) != LK_OK) return;

  struct ledger_peer p = {.ident = "peer", .ident_len = 4, .request_id = request_id};
  struct ledger_item *it[2] = {make_item(ev, &p), make_item(ev, &p)};
  struct ledger_batch b;
  if (!it[0] || !it[1] || ledger_batch_init(&b, 2) != LK_OK) abort();
  for (int i = 0; i < 2; i++)
    if (ledger_batch_add(&b, it[i]) != LK_OK) abort();

  uint8_t head_hash[LK_HASH_LEN] = {0};
  /* A fresh batch: the first is new, its resend within the batch a duplicate. */
  if (ledger_batch_resolve(&b, NULL, 0, 41, head_hash) != 1) abort();
  if (it[0]->outcome != LEDGER_NEW || it[0]->position != 42 || it[1]->outcome != LEDGER_DUPLICATE)
    abort();
  encode(&b);
  /* The commit's outcome was lost and the retry finds the row stored by that attempt. */
  ledger_batch_mark_in_doubt(&b);
  struct ledger_existing ex = {
      .event_id = it[0]->event_id, .position = 42, .incident_id = it[0]->incident_id};
  if (ledger_batch_resolve(&b, &ex, 1, 42, b.head_hash) != 0) abort();
  if (it[0]->outcome != LEDGER_COMMITTED) abort();
  encode(&b);
  ledger_batch_close(&b);
  free(it[0]);
  free(it[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > LEDGER_FRAME_MAX) return 0; /* the daemon's ROUTER refuses larger frames */
  Linkage__V1__LedgerRequest *req = linkage__v1__ledger_request__unpack(NULL, size, data);
  if (!req) return 0;
  if (req->body_case == LINKAGE__V1__LEDGER_REQUEST__BODY_APPEND)
    append(req->append, req->request_id);
  linkage__v1__ledger_request__free_unpacked(req, NULL);
  return 0;
}
