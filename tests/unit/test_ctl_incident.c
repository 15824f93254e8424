/* linkagectl's coordinator commands: time arguments, actor, command ids and
 * reply lines (services/linkagectl/ctl_incident.c). */
#include <stdlib.h>
#include <string.h>

#include "linkage/v1/command.pb-c.h"
#include "linkagectl/ctl.h"
#include "linkage/clock.h"
#include "lk_test.h"

#define MIN_US (60 * 1000000LL)

LK_TEST(iso8601_utc_forms) {
  int64_t t = -1;

  LK_CHECK_EQ_INT(lk_parse_iso8601("1970-01-01T00:00:00Z", &t), 0);
  LK_CHECK_EQ_INT(t, 0);
  /* 1795000000 s is 2026-11-18T11:06:40Z (test_ctl_common checks the formatter the same way). */
  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-11-18T11:06:40Z", &t), 0);
  LK_CHECK_EQ_INT(t, 1795000000LL * 1000000);
  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-11-18T11:06Z", &t), 0);
  LK_CHECK_EQ_INT(t, 1795000000LL * 1000000 - 40 * 1000000LL);
  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-11-18 11:06:40z", &t), 0);
  LK_CHECK_EQ_INT(t, 1795000000LL * 1000000);
  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-11-18T11:06:40.123456Z", &t), 0);
  LK_CHECK_EQ_INT(t, 1795000000123456LL);
  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-11-18T11:06:40.5Z", &t), 0);
  LK_CHECK_EQ_INT(t, 1795000000500000LL);
  /* Digits past the microsecond are dropped, not rounded. */
  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-11-18T11:06:40.1234569Z", &t), 0);
  LK_CHECK_EQ_INT(t, 1795000000123456LL);
  LK_CHECK_EQ_INT(lk_parse_iso8601("2024-02-29T00:00:00Z", &t), 0); /* leap day */
}

LK_TEST(iso8601_offsets_name_the_same_instant) {
  int64_t utc = 0, t = -1;

  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-11-18T11:06:40Z", &utc), 0);
  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-11-18T19:06:40+08:00", &t), 0);
  LK_CHECK_EQ_INT(t, utc);
  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-11-18T19:06:40+0800", &t), 0);
  LK_CHECK_EQ_INT(t, utc);
  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-11-18T06:36:40-04:30", &t), 0);
  LK_CHECK_EQ_INT(t, utc);
  /* Across midnight and the year. */
  LK_CHECK_EQ_INT(lk_parse_iso8601("2027-01-01T07:00:00+08:00", &t), 0);
  LK_CHECK_EQ_INT(lk_parse_iso8601("2026-12-31T23:00:00Z", &utc), 0);
  LK_CHECK_EQ_INT(t, utc);
}

LK_TEST(iso8601_refuses_what_it_cannot_place) {
  int64_t t = 42;
  const char *bad[] = {
      "",
      "2026-11-18T11:06:40", /* no zone: ambiguous */
      "2026-11-18",          /* no time */
      "2026-11-18T11Z",      /* no minutes */
      "2026-13-01T00:00Z",   /* month */
      "2026-04-31T00:00Z",   /* 31 April */
      "2026-02-29T00:00Z",   /* not a leap year */
      "2026-00-10T00:00Z",
      "2026-11-00T00:00Z",
      "2026-11-18T24:00Z",
      "2026-11-18T11:60Z",
      "2026-11-18T11:06:60Z",
      "2026-11-18T11:06:40.Z", /* a dot without digits */
      "2026-11-18T11:06:40Zjunk",
      "2026-11-18T11:06:40+8", /* offset needs two digits */
      "2026-11-18T11:06:40+24:00",
      "2026-11-18T11:06:40+08:60",
      "26-11-18T11:06:40Z",
      "2026/11/18T11:06:40Z",
      "2026-11-18X11:06:40Z",
      " 2026-11-18T11:06:40Z",
  };

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (!LK_CHECK(lk_parse_iso8601(bad[i], &t) == -1))
      fprintf(stderr, "     accepted \"%s\"\n", bad[i]);
  }
  LK_CHECK_EQ_INT(t, 42); /* untouched on failure */
  LK_CHECK_EQ_INT(lk_parse_iso8601(NULL, &t), -1);
}

LK_TEST(when_now_and_relative_minutes) {
  int64_t now = 1795000000000000LL, base = now + 5 * MIN_US, t = 0;

  LK_CHECK_EQ_INT(ctl_parse_when("now", now, base, &t), 0);
  LK_CHECK_EQ_INT(t, now);
  /* +MINUTES counts from the base the caller passes: now for --from, --from for --to. */
  LK_CHECK_EQ_INT(ctl_parse_when("+0", now, base, &t), 0);
  LK_CHECK_EQ_INT(t, base);
  LK_CHECK_EQ_INT(ctl_parse_when("+90", now, now, &t), 0);
  LK_CHECK_EQ_INT(t, now + 90 * MIN_US);
  LK_CHECK_EQ_INT(ctl_parse_when("+120", now, base, &t), 0);
  LK_CHECK_EQ_INT(t, base + 120 * MIN_US);
  LK_CHECK_EQ_INT(ctl_parse_when("+527040", now, now, &t), 0); /* a leap year of minutes */
  LK_CHECK_EQ_INT(t, now + 527040 * MIN_US);
  LK_CHECK_EQ_INT(ctl_parse_when("2026-11-18T11:06:40Z", now, base, &t), 0);
  LK_CHECK_EQ_INT(t, 1795000000LL * 1000000);
}

LK_TEST(when_refuses_malformed) {
  int64_t t = 7;
  const char *bad[] = {"",        "NOW", "now ", "+", "+-5",     "++5",
                       "-5",      "+5m", "+1.5", "5", "+527041", "+99999999999999999999",
                       "tomorrow"};

  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (!LK_CHECK(ctl_parse_when(bad[i], 0, 0, &t) == -1))
      fprintf(stderr, "     accepted \"%s\"\n", bad[i]);
  }
  LK_CHECK_EQ_INT(t, 7);
  LK_CHECK_EQ_INT(ctl_parse_when(NULL, 0, 0, &t), -1);
}

LK_TEST(default_actor_prefers_linkage_actor_then_user) {
  char *saved_actor = getenv("LINKAGE_ACTOR") ? strdup(getenv("LINKAGE_ACTOR")) : NULL;
  char *saved_user = getenv("USER") ? strdup(getenv("USER")) : NULL;

  setenv("LINKAGE_ACTOR", "zhang-wei", 1);
  setenv("USER", "root", 1);
  LK_CHECK_STR(ctl_default_actor(), "zhang-wei");
  setenv("LINKAGE_ACTOR", "", 1); /* empty counts as unset */
  LK_CHECK_STR(ctl_default_actor(), "root");
  unsetenv("LINKAGE_ACTOR");
  LK_CHECK_STR(ctl_default_actor(), "root");
  unsetenv("USER");
  LK_CHECK_STR(ctl_default_actor(), "operator");
  setenv("USER", "", 1);
  LK_CHECK_STR(ctl_default_actor(), "operator");

  if (saved_actor)
    setenv("LINKAGE_ACTOR", saved_actor, 1);
  else
    unsetenv("LINKAGE_ACTOR");
  if (saved_user)
    setenv("USER", saved_user, 1);
  else
    unsetenv("USER");
  free(saved_actor);
  free(saved_user);
}

LK_TEST(command_ids_are_16_fresh_hex_digits) {
  char a[17], b[17], small[16];

  LK_CHECK_EQ_INT(ctl_command_id(a, sizeof a), 0);
  LK_CHECK_EQ_INT(ctl_command_id(b, sizeof b), 0);
  LK_CHECK_EQ_INT(strlen(a), 16);
  LK_CHECK_EQ_INT(strspn(a, "0123456789abcdef"), 16);
  LK_CHECK(strcmp(a, b) != 0);
  LK_CHECK_EQ_INT(ctl_command_id(small, sizeof small), -1);
}

LK_TEST(reply_lines_and_exit_codes) {
  Linkage__V1__CommandReply rep = LINKAGE__V1__COMMAND_REPLY__INIT;
  char line[512];

  rep.status = LINKAGE__V1__COMMAND_REPLY__STATUS__OK;
  rep.event_id = "inc-0123/acknowledged/cmd-ab";
  rep.position = 42;
  LK_CHECK_EQ_INT(ctl_command_outcome(&rep, line, sizeof line), 0);
  LK_CHECK_STR(line, "status=OK event_id=inc-0123/acknowledged/cmd-ab position=42");

  rep.status = LINKAGE__V1__COMMAND_REPLY__STATUS__REJECTED;
  rep.error = "incident inc-1 is \"closed\"";
  LK_CHECK_EQ_INT(ctl_command_outcome(&rep, line, sizeof line), 1);
  LK_CHECK_STR(line, "status=REJECTED error=\"incident inc-1 is \\\"closed\\\"\"");

  rep.status = LINKAGE__V1__COMMAND_REPLY__STATUS__BUSY;
  rep.error = "catching up";
  LK_CHECK_EQ_INT(ctl_command_outcome(&rep, line, sizeof line), 75);
  LK_CHECK_STR(line, "status=BUSY error=\"catching up\"");

  rep.status = LINKAGE__V1__COMMAND_REPLY__STATUS__STATUS_UNSPECIFIED;
  LK_CHECK_EQ_INT(ctl_command_outcome(&rep, line, sizeof line), 75);
  LK_CHECK_STR(line, "status=UNKNOWN error=\"reply status 0\"");
}

int main(void) {
  return lk_test_run_all();
}
