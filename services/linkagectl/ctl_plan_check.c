/* linkagectl plan check: the district's gaps, found before a gas leak at 3 a.m. finds them. For
 * every response plan, compound and tier an incident of the plan can reach, the roles no unit
 * could take at some time of day: none of the role's type covers the compound and is on duty
 * then (lk_plan_gaps, linkage/roster.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "linkage/district.h"
#include "linkage/roster.h"

static const char check_help[] =
    "NAME\n"
    "    linkagectl plan check - the roles nobody could answer for, by time of day\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl plan check [--district FILE]\n"
    "\n"
    "DESCRIPTION\n"
    "    Loads the district ($LINKAGE_DISTRICT or --district, default\n"
    "    deploy/district/wenjiang.yaml) and prints one line per plan, compound,\n"
    "    tier and role that has no unit of its type covering the compound and on\n"
    "    duty at some time of the (local) day:\n"
    "      gap plan=gas-leak compound=lijinggang tier=community role=grid_worker\n"
    "          hours=00:00-08:00,20:00-24:00\n"
    "    Duty hours are the same every day of the week, so a day is every day.\n"
    "    Dispatch calls such a role and, finding nobody, shows it as missing (and\n"
    "    escalates at once when it is the lead); the district closes a gap by\n"
    "    adding a unit or widening one's duty hours.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 no gap, 1 gaps listed, 2 usage or a bad district file.\n";

/* Minutes of the day with a gap -> "HH:MM-HH:MM,..." */
void ctl_minutes_ranges(const unsigned char *gap, char *out, size_t len) {
  size_t off = 0;
  out[0] = '\0';
  for (int m = 0; m < 1440 && off < len;) {
    if (!gap[m]) {
      m++;
      continue;
    }
    int start = m;
    while (m < 1440 && gap[m])
      m++;
    off += (size_t)snprintf(out + off, len - off, "%s%02d:%02d-%02d:%02d", off ? "," : "",
                            start / 60, start % 60, m / 60, m % 60);
  }
}

int ctl_plan_check_main(int argc, char **argv) {
  static const struct option opts[] = {
      {"district", required_argument, NULL, 'D'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
  const char *path = getenv("LINKAGE_DISTRICT");
  char err[1024];
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'D': path = optarg; break;
    case 'h': fputs(check_help, stdout); return CTL_EXIT_OK;
    default: fputs(check_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fputs(check_help, stderr);
    return CTL_EXIT_USAGE;
  }
  if (!path) path = "deploy/district/wenjiang.yaml";
  struct lk_district *d = lk_district_load(path, err, sizeof err);
  if (!d) {
    fprintf(stderr, "linkagectl plan check: %s\n", err);
    return CTL_EXIT_USAGE;
  }
  unsigned gaps = 0;
  for (size_t p = 0; p < d->plan_count; p++) {
    const struct lk_plan *plan = &d->plans[p];
    for (size_t k = 0; k < d->compound_count; k++) {
      const struct lk_compound *cmp = &d->compounds[k];
      for (int t = plan->min_tier; t <= LINKAGE__V1__TIER__DISTRICT; t++) {
        /* Per role, the minutes of the day when nobody could take it. */
        const char *roles[LK_MAX_NEEDS];
        unsigned char gap[LK_MAX_NEEDS][1440];
        size_t nroles = 0;
        memset(gap, 0, sizeof gap);
        for (int m = 0; m < 1440; m++) {
          const char *missing[LK_MAX_NEEDS];
          size_t n = lk_plan_gaps(d, plan, cmp, (Linkage__V1__Tier)t, m, missing, LK_MAX_NEEDS);
          for (size_t i = 0; i < n; i++) {
            size_t r;
            for (r = 0; r < nroles; r++)
              if (roles[r] == missing[i]) break;
            if (r == nroles && nroles < LK_MAX_NEEDS) roles[nroles++] = missing[i];
            if (r < LK_MAX_NEEDS) gap[r][m] = 1;
          }
        }
        for (size_t r = 0; r < nroles; r++) {
          char hours[512];
          ctl_minutes_ranges(gap[r], hours, sizeof hours);
          printf("gap plan=%s compound=%s tier=%s role=%s hours=%s\n", plan->id, cmp->id,
                 lk_tier_name((Linkage__V1__Tier)t), roles[r], hours);
          gaps++;
        }
      }
    }
  }
  printf("%u gap%s in %zu plans x %zu compounds\n", gaps, gaps == 1 ? "" : "s", d->plan_count,
         d->compound_count);
  lk_district_destroy(&d);
  return gaps ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}
