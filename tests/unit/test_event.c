#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/hash.h"
#include "lk_test.h"

LK_TEST(incident_id_is_deterministic_and_distinct) {
  char a[LK_ID_MAX], b[LK_ID_MAX], c[LK_ID_MAX], d[LK_ID_MAX];
  lk_incident_id("dev-1", 1, a);
  lk_incident_id("dev-1", 1, b);
  lk_incident_id("dev-1", 2, c);
  lk_incident_id("dev-11", 1, d);
  LK_CHECK_STR(a, b);
  LK_CHECK(strcmp(a, c) != 0);
  LK_CHECK(strcmp(a, d) != 0);
  LK_CHECK_EQ_INT(strlen(a), 24);
  LK_CHECK(strncmp(a, "inc-", 4) == 0);
  /* SHA-256("dev-1\0" "1") computed independently with Python's hashlib. */
  LK_CHECK_STR(a, "inc-7c866055f51f67dfef9d");
}

LK_TEST(event_ids_compose) {
  char id[LK_ID_MAX];
  LK_CHECK_EQ_INT(lk_event_id(id, sizeof id, "inc-1", LINKAGE__V1__EVENT_TYPE__REPORTED, NULL, 0),
                  LK_OK);
  LK_CHECK_STR(id, "inc-1/reported");
  LK_CHECK_EQ_INT(
      lk_event_id(id, sizeof id, "inc-1", LINKAGE__V1__EVENT_TYPE__DISPATCHED, "fire-1", 2), LK_OK);
  LK_CHECK_STR(id, "inc-1/dispatched/fire-1/2");
  LK_CHECK_EQ_INT(lk_event_id(id, sizeof id, "inc-1", LINKAGE__V1__EVENT_TYPE__ESCALATED, NULL, 3),
                  LK_OK);
  LK_CHECK_STR(id, "inc-1/escalated/3");
  LK_CHECK_EQ_INT(lk_event_id(id, 8, "inc-1", LINKAGE__V1__EVENT_TYPE__REPORTED, NULL, 0),
                  LK_EINVAL);
  LK_CHECK_EQ_INT(lk_event_id(id, sizeof id, "inc-1", (Linkage__V1__EventType)99, NULL, 0),
                  LK_EINVAL);
}

LK_TEST(names_are_the_contract_words) {
  LK_CHECK_STR(lk_category_name(LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER), "accident_disaster");
  LK_CHECK_STR(lk_category_name(LINKAGE__V1__CATEGORY__LATENT_HAZARD), "latent_hazard");
  LK_CHECK(lk_category_name(LINKAGE__V1__CATEGORY__CATEGORY_UNSPECIFIED) == NULL);
  LK_CHECK(lk_category_name((Linkage__V1__Category)42) == NULL);
  LK_CHECK_STR(lk_severity_name(LINKAGE__V1__SEVERITY__SEVERITY_III), "III");
  LK_CHECK_STR(lk_tier_name(LINKAGE__V1__TIER__STREET), "street");
  LK_CHECK_STR(lk_event_type_name(LINKAGE__V1__EVENT_TYPE__UNIT_ON_SCENE), "unit_on_scene");
  LK_CHECK_EQ_INT(lk_category_parse("PUBLIC_HEALTH"), LINKAGE__V1__CATEGORY__PUBLIC_HEALTH);
  LK_CHECK_EQ_INT(lk_category_parse("nope"), 0);
  LK_CHECK_EQ_INT(lk_severity_parse("ii"), LINKAGE__V1__SEVERITY__SEVERITY_II);
  LK_CHECK_EQ_INT(lk_severity_parse("SEVERITY_IV"), LINKAGE__V1__SEVERITY__SEVERITY_IV);
  LK_CHECK_EQ_INT(lk_severity_parse("V"), 0);
}

LK_TEST(utf8_validation) {
  LK_CHECK(lk_utf8_valid("plain", 5));
  LK_CHECK(lk_utf8_valid("\xe6\xb6\x8c\xe6\xb3\x89", 6)); /* 涌泉 */
  LK_CHECK(lk_utf8_valid("\xf0\x9f\x94\xa5", 4));         /* U+1F525 */
  LK_CHECK(!lk_utf8_valid("\xc0\xaf", 2));                /* overlong '/' */
  LK_CHECK(!lk_utf8_valid("\xed\xa0\x80", 3));            /* surrogate U+D800 */
  LK_CHECK(!lk_utf8_valid("\xe6\xb6", 2));                /* truncated */
  LK_CHECK(!lk_utf8_valid("\xf4\x90\x80\x80", 4));        /* above U+10FFFF */
  LK_CHECK(!lk_utf8_valid("\xff", 1));
  LK_CHECK(!lk_utf8_valid("a\x80", 2));
}

static Linkage__V1__Location fixture_location = LINKAGE__V1__LOCATION__INIT;

static void fill_reported(Linkage__V1__Event *ev, Linkage__V1__Reported *rep,
                          Linkage__V1__Report *r) {
  linkage__v1__event__init(ev);
  linkage__v1__reported__init(rep);
  linkage__v1__report__init(r);
  fixture_location.compound_id = "lijinggang";
  r->location = &fixture_location;
  r->category = LINKAGE__V1__CATEGORY__LATENT_HAZARD;
  r->severity = LINKAGE__V1__SEVERITY__SEVERITY_IV;
  rep->report = r;
  ev->event_id = "inc-1/reported";
  ev->incident_id = "inc-1";
  ev->type = LINKAGE__V1__EVENT_TYPE__REPORTED;
  ev->at_us = 1;
  ev->actor = "device:d1";
  ev->body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  ev->reported = rep;
}

LK_TEST(event_check_rules) {
  Linkage__V1__Event ev;
  Linkage__V1__Reported rep;
  Linkage__V1__Report r;
  char err[256];
  fill_reported(&ev, &rep, &r);
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_OK);
  ev.event_id = "";
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "event_id");
  fill_reported(&ev, &rep, &r);
  ev.incident_id = "has space";
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "incident_id");
  fill_reported(&ev, &rep, &r);
  ev.type = LINKAGE__V1__EVENT_TYPE__ROUTED;
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "body does not match");
  fill_reported(&ev, &rep, &r);
  ev.at_us = 0;
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  fill_reported(&ev, &rep, &r);
  ev.actor = "\xff";
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  /* Body values every consumer indexes tables with (found by fuzzing the router's fold). */
  fill_reported(&ev, &rep, &r);
  r.severity = (Linkage__V1__Severity)36;
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "severity");
  fill_reported(&ev, &rep, &r);
  r.category = (Linkage__V1__Category)0;
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  fill_reported(&ev, &rep, &r);
  r.location = NULL;
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  /* A compound id PostgreSQL would refuse in a text column (found in review: it stalled the
   * ledger's batch). */
  Linkage__V1__Location bad_loc = LINKAGE__V1__LOCATION__INIT;
  bad_loc.compound_id = "\xff\xfe";
  fill_reported(&ev, &rep, &r);
  r.location = &bad_loc;
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "compound_id");
  Linkage__V1__SeverityChanged sc = LINKAGE__V1__SEVERITY_CHANGED__INIT;
  fill_reported(&ev, &rep, &r);
  ev.type = LINKAGE__V1__EVENT_TYPE__SEVERITY_CHANGED;
  ev.body_case = LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED;
  ev.severity_changed = &sc;
  sc.from_severity = LINKAGE__V1__SEVERITY__SEVERITY_IV;
  sc.to_severity = (Linkage__V1__Severity)64;
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  sc.to_severity = LINKAGE__V1__SEVERITY__SEVERITY_III;
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_OK);
  Linkage__V1__Escalated es = LINKAGE__V1__ESCALATED__INIT;
  ev.type = LINKAGE__V1__EVENT_TYPE__ESCALATED;
  ev.body_case = LINKAGE__V1__EVENT__BODY_ESCALATED;
  ev.escalated = &es;
  es.from_tier = LINKAGE__V1__TIER__COMPOUND;
  es.to_tier = (Linkage__V1__Tier)9;
  LK_CHECK_EQ_INT(lk_event_check(&ev, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "tier");
}

LK_TEST(chain_hash_binds_prev_position_and_bytes) {
  uint8_t zero[LK_HASH_LEN] = {0}, h1[LK_HASH_LEN], h2[LK_HASH_LEN], h3[LK_HASH_LEN];
  char hex[2 * LK_HASH_LEN + 1];
  lk_chain_hash(zero, 1, (const uint8_t *)"abc", 3, h1);
  lk_hex(h1, LK_HASH_LEN, hex);
  /* hashlib.sha256(bytes(32) + (1).to_bytes(8, 'big') + b'abc').hexdigest() */
  LK_CHECK_STR(hex, "328976acf07e9b1c4a8967f2d63902c9a724235b6363ac83087246ad84cd222a");
  lk_chain_hash(zero, 2, (const uint8_t *)"abc", 3, h2);
  LK_CHECK(memcmp(h1, h2, LK_HASH_LEN) != 0);
  lk_chain_hash(h1, 2, (const uint8_t *)"abc", 3, h3);
  LK_CHECK(memcmp(h2, h3, LK_HASH_LEN) != 0);
}

int main(void) {
  return lk_test_run_all();
}
