/* Scenarios: loading (file:line errors) and judging expectations. No sockets, no clock. */
#include "scenario.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/district.h"

const char *const scenario_expect_keys[] = {
    "tier",    "state",       "organisation", "severity",  "lead",        "missing",
    "calls",   "escalations", "held_back_by", "held_back", "merged_into", "deadline",
    "overdue", "cap",         "exercise",     NULL,
};

static const char *const actions[] = {"acknowledge", "escalate", "de-escalate", "merge", "close",
                                      "note",        "call",     "declare",     "lift",  NULL};
static const char *const answers[] = {"acknowledged", "on_scene", "resolved", "declined",
                                      "need_backup",  "verified", NULL};

struct loader {
  struct scenario *s;
  const char *path;
  char *err;
  size_t errlen;
};

static int fail(struct loader *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct loader *ld, int line, const char *fmt, ...) {
  int n = snprintf(ld->err, ld->errlen, "%s:%d: ", ld->path, line);
  va_list ap;
  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < ld->errlen) vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

static int one_of(const char *s, const char *const *words) {
  for (size_t i = 0; s && words[i]; i++)
    if (strcmp(s, words[i]) == 0) return 1;
  return 0;
}

static int scalar(struct loader *ld, const struct lk_ynode *v, const char *what, const char **out) {
  if (v->kind != LK_YSCALAR) return fail(ld, v->line, "%s must be a scalar", what);
  *out = v->text;
  return 0;
}

static int number(struct loader *ld, const struct lk_ynode *v, const char *what, double min,
                  double max, double *out) {
  char *end;
  if (v->kind != LK_YSCALAR || !v->text[0]) return fail(ld, v->line, "%s must be a number", what);
  double d = strtod(v->text, &end);
  if (*end || !isfinite(d) || d < min || d > max)
    return fail(ld, v->line, "%s must be a number from %g to %g", what, min, max);
  *out = d;
  return 0;
}

static int list(struct loader *ld, const struct lk_ynode *v, const char *what, const char **out,
                size_t max, size_t *n) {
  if (v->kind == LK_YSCALAR) {
    out[0] = v->text;
    *n = 1;
    return 0;
  }
  if (v->kind != LK_YSEQ) return fail(ld, v->line, "%s must be a list", what);
  if (v->count > max) return fail(ld, v->line, "%s: at most %zu entries", what, max);
  for (size_t i = 0; i < v->count; i++)
    if (scalar(ld, v->items[i], what, &out[i])) return -1;
  *n = v->count;
  return 0;
}

/* "HH:MM" -> minutes after midnight. */
static int clock_of(const char *s) {
  int h, m;
  char tail;
  if (sscanf(s, "%d:%d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 || m < 0 || m > 59) return -1;
  return h * 60 + m;
}

/* Walks a mapping: for each key, fn(key, value). Unknown keys are fn's to refuse. */
typedef int (*entry_fn)(struct loader *ld, struct scenario_step *st, const char *key,
                        const struct lk_ynode *v);

static int walk(struct loader *ld, struct scenario_step *st, const struct lk_ynode *map,
                const char *what, entry_fn fn) {
  if (map->kind != LK_YMAP) return fail(ld, map->line, "%s must be a mapping", what);
  for (size_t i = 0; i + 1 < map->count; i += 2) {
    const struct lk_ynode *k = map->items[i], *v = map->items[i + 1];
    if (k->kind != LK_YSCALAR) return fail(ld, k->line, "%s: keys must be scalars", what);
    if (fn(ld, st, k->text, v)) return -1;
  }
  return 0;
}

static int report_entry(struct loader *ld, struct scenario_step *st, const char *key,
                        const struct lk_ynode *v) {
  const char *s = NULL;
  if (strcmp(key, "name") == 0) return scalar(ld, v, "report name", &st->name);
  if (strcmp(key, "device") == 0) return scalar(ld, v, "report device", &st->device);
  if (strcmp(key, "compound") == 0) return scalar(ld, v, "report compound", &st->compound);
  if (strcmp(key, "building") == 0) return scalar(ld, v, "report building", &st->building);
  if (strcmp(key, "kind") == 0) return scalar(ld, v, "report kind", &st->kind_word);
  if (strcmp(key, "description") == 0) return scalar(ld, v, "report description", &st->description);
  if (strcmp(key, "lat") == 0) return number(ld, v, "lat", -90, 90, &st->lat);
  if (strcmp(key, "lon") == 0) return number(ld, v, "lon", -180, 180, &st->lon);
  if (strcmp(key, "category") == 0) {
    if (scalar(ld, v, "report category", &s)) return -1;
    st->category = lk_category_parse(s);
    if (!st->category) return fail(ld, v->line, "unknown category \"%s\"", s);
    return 0;
  }
  if (strcmp(key, "severity") == 0) {
    if (scalar(ld, v, "report severity", &s)) return -1;
    st->severity = lk_severity_parse(s);
    if (!st->severity) return fail(ld, v->line, "severity must be I, II, III or IV");
    return 0;
  }
  return fail(ld, v->line, "report: unknown key \"%s\"", key);
}

static int answer_entry(struct loader *ld, struct scenario_step *st, const char *key,
                        const struct lk_ynode *v) {
  if (strcmp(key, "unit") == 0) return scalar(ld, v, "answer unit", &st->unit);
  if (strcmp(key, "incident") == 0) return scalar(ld, v, "answer incident", &st->incident);
  if (strcmp(key, "kind") == 0) {
    if (scalar(ld, v, "answer kind", &st->answer)) return -1;
    if (!one_of(st->answer, answers))
      return fail(ld, v->line,
                  "answer kind must be acknowledged, on_scene, resolved, declined, need_backup "
                  "or verified");
    return 0;
  }
  if (strcmp(key, "note") == 0) return scalar(ld, v, "answer note", &st->text);
  if (strcmp(key, "refused") == 0) return scalar(ld, v, "refused", &st->refused);
  return fail(ld, v->line, "answer: unknown key \"%s\"", key);
}

static int coordinator_entry(struct loader *ld, struct scenario_step *st, const char *key,
                             const struct lk_ynode *v) {
  if (strcmp(key, "action") == 0) {
    if (scalar(ld, v, "coordinator action", &st->action)) return -1;
    if (!one_of(st->action, actions))
      return fail(ld, v->line,
                  "action must be acknowledge, escalate, de-escalate, merge, close, note, call, "
                  "declare or lift");
    return 0;
  }
  if (strcmp(key, "incident") == 0) return scalar(ld, v, "incident", &st->incident);
  if (strcmp(key, "into") == 0) return scalar(ld, v, "into", &st->into);
  if (strcmp(key, "reason") == 0) return scalar(ld, v, "reason", &st->reason);
  if (strcmp(key, "role") == 0) return scalar(ld, v, "role", &st->role);
  if (strcmp(key, "unit") == 0) return scalar(ld, v, "unit", &st->unit);
  if (strcmp(key, "text") == 0) return scalar(ld, v, "text", &st->text);
  if (strcmp(key, "window") == 0) return scalar(ld, v, "window", &st->window);
  if (strcmp(key, "compound") == 0) return scalar(ld, v, "compound", &st->compound);
  if (strcmp(key, "building") == 0) return scalar(ld, v, "building", &st->building);
  if (strcmp(key, "kind") == 0) return scalar(ld, v, "kind", &st->kind_word);
  if (strcmp(key, "from") == 0) return number(ld, v, "from", -1e6, 1e6, &st->from_min);
  if (strcmp(key, "to") == 0) return number(ld, v, "to", -1e6, 1e6, &st->to_min);
  if (strcmp(key, "refused") == 0) return scalar(ld, v, "refused", &st->refused);
  return fail(ld, v->line, "coordinator: unknown key \"%s\"", key);
}

/* One incident's expectations: key -> scalar | list | map (as "k=v"). */
static int expect_incident(struct loader *ld, struct scenario_step *st, const char *name,
                           const struct lk_ynode *map) {
  if (map->kind != LK_YMAP)
    return fail(ld, map->line, "expect: \"%s\" must map keys to what is expected", name);
  for (size_t i = 0; i + 1 < map->count; i += 2) {
    const struct lk_ynode *k = map->items[i], *v = map->items[i + 1];
    if (k->kind != LK_YSCALAR || !one_of(k->text, scenario_expect_keys))
      return fail(ld, k->line,
                  "expect: unknown key \"%s\" (tier, state, organisation, severity, lead, "
                  "missing, calls, escalations, held_back_by, held_back, merged_into, deadline, "
                  "overdue, cap, exercise)",
                  k->kind == LK_YSCALAR ? k->text : "?");
    struct scenario_expect *e = &st->expects[st->expect_count++];
    memset(e, 0, sizeof *e);
    e->incident = name;
    e->key = k->text;
    e->line = k->line;
    if (v->kind == LK_YMAP) {
      e->owned = 1;
      /* calls: {role: [unit@tier ...]}, deadline: {acknowledge: minutes} */
      for (size_t j = 0; j + 1 < v->count; j += 2) {
        const struct lk_ynode *mk = v->items[j], *mv = v->items[j + 1];
        const char *vals[32];
        size_t n = 0;
        if (mk->kind != LK_YSCALAR) return fail(ld, mk->line, "expect: keys must be scalars");
        if (list(ld, mv, e->key, vals, 32, &n)) return -1;
        for (size_t q = 0; q < n; q++) {
          if (e->n == 32) return fail(ld, v->line, "expect %s: at most 32 values", e->key);
          /* "role=value": the strings live in the tree, so pair them in a scratch node. */
          size_t len = strlen(mk->text) + strlen(vals[q]) + 2;
          char *pair = malloc(len);
          if (!pair) return fail(ld, v->line, "out of memory");
          snprintf(pair, len, "%s=%s", mk->text, vals[q]);
          e->values[e->n++] = pair;
        }
        if (n == 0 && e->n < 32) {
          size_t len = strlen(mk->text) + 2;
          char *pair = malloc(len);
          if (!pair) return fail(ld, v->line, "out of memory");
          snprintf(pair, len, "%s=", mk->text);
          e->values[e->n++] = pair;
        }
      }
    } else if (list(ld, v, e->key, e->values, 32, &e->n)) {
      return -1;
    }
  }
  return 0;
}

static int load_expect(struct loader *ld, struct scenario_step *st, const struct lk_ynode *map) {
  if (map->kind != LK_YMAP) return fail(ld, map->line, "expect must be a mapping");
  size_t room = 0;
  for (size_t i = 1; i < map->count; i += 2)
    room += map->items[i]->kind == LK_YMAP ? map->items[i]->count / 2 : 1;
  st->expects = calloc(room ? room : 1, sizeof *st->expects);
  if (!st->expects) return fail(ld, map->line, "out of memory");
  for (size_t i = 0; i + 1 < map->count; i += 2) {
    const struct lk_ynode *k = map->items[i], *v = map->items[i + 1];
    if (k->kind != LK_YSCALAR) return fail(ld, k->line, "expect: keys must be scalars");
    if (strcmp(k->text, "first") == 0) {
      struct scenario_expect *e = &st->expects[st->expect_count++];
      memset(e, 0, sizeof *e);
      e->key = "first";
      e->line = k->line;
      if (scalar(ld, v, "first", &e->values[0])) return -1;
      e->n = 1;
      continue;
    }
    if (expect_incident(ld, st, k->text, v)) return -1;
  }
  return 0;
}

static int load_step(struct loader *ld, struct scenario_step *st, const struct lk_ynode *map) {
  if (map->kind != LK_YMAP) return fail(ld, map->line, "a step must be a mapping");
  st->line = map->line;
  int have_at = 0;
  for (size_t i = 0; i + 1 < map->count; i += 2) {
    const struct lk_ynode *k = map->items[i], *v = map->items[i + 1];
    if (k->kind != LK_YSCALAR) return fail(ld, k->line, "step keys must be scalars");
    const char *key = k->text;
    if (strcmp(key, "at") == 0) {
      if (number(ld, v, "at (plan minutes)", 0, 1e6, &st->at_min)) return -1;
      have_at = 1;
      continue;
    }
    if (st->kind)
      return fail(ld, k->line, "a step does one thing: \"%s\" after another action", key);
    if (strcmp(key, "report") == 0) {
      st->kind = SC_REPORT;
      if (walk(ld, st, v, "report", report_entry)) return -1;
      if (!st->name || !st->compound || !st->category || !st->severity)
        return fail(ld, v->line, "report needs name, compound, category and severity");
      if (strcmp(st->name, "first") == 0)
        return fail(ld, v->line, "\"first\" names the dashboard's first row; call it otherwise");
    } else if (strcmp(key, "answer") == 0) {
      st->kind = SC_ANSWER;
      if (walk(ld, st, v, "answer", answer_entry)) return -1;
      if (!st->unit || !st->incident || !st->answer)
        return fail(ld, v->line, "answer needs unit, incident and kind");
    } else if (strcmp(key, "coordinator") == 0) {
      st->kind = SC_COORDINATOR;
      if (walk(ld, st, v, "coordinator", coordinator_entry)) return -1;
      if (!st->action) return fail(ld, v->line, "coordinator needs an action");
      int planned = !strcmp(st->action, "declare") || !strcmp(st->action, "lift");
      if (planned ? !st->window : !st->incident)
        return fail(ld, v->line, "%s needs %s", st->action, planned ? "window" : "incident");
      if (!strcmp(st->action, "declare") && (!st->compound || st->to_min <= st->from_min))
        return fail(ld, v->line, "declare needs compound and from < to (plan minutes)");
      if (!strcmp(st->action, "merge") && !st->into)
        return fail(ld, v->line, "merge needs into (the incident to join)");
      if (!strcmp(st->action, "call") && !st->role && !st->unit)
        return fail(ld, v->line, "call needs role or unit");
    } else if (strcmp(key, "absent") == 0) {
      st->kind = SC_ABSENT;
      if (list(ld, v, "absent", st->units, 32, &st->unit_count)) return -1;
    } else if (strcmp(key, "expect") == 0) {
      st->kind = SC_EXPECT;
      if (load_expect(ld, st, v)) return -1;
    } else {
      return fail(ld, k->line,
                  "unknown step \"%s\" (report, answer, coordinator, absent or expect)", key);
    }
  }
  if (!have_at) return fail(ld, map->line, "a step needs at (plan minutes after the start)");
  if (!st->kind) return fail(ld, map->line, "a step needs something to do");
  return 0;
}

/* Names an incident step refers to must be reported earlier. */
static int check_names(struct loader *ld) {
  const struct scenario *s = ld->s;
  for (size_t i = 0; i < s->step_count; i++) {
    const struct scenario_step *st = &s->steps[i];
    const char *refs[3] = {
        st->kind == SC_ANSWER || st->kind == SC_COORDINATOR ? st->incident : NULL, st->into, NULL};
    for (size_t j = 0; j < st->expect_count; j++)
      if (!st->expects[j].incident && strcmp(st->expects[j].key, "first") == 0)
        refs[2] = st->expects[j].values[0];
    for (size_t r = 0; r < 3; r++) {
      if (!refs[r]) continue;
      const struct scenario_step *rep = NULL;
      for (size_t k = 0; k < i; k++)
        if (s->steps[k].kind == SC_REPORT && !strcmp(s->steps[k].name, refs[r])) rep = &s->steps[k];
      if (!rep)
        return fail(ld, st->line, "\"%s\" is not the name of a report before this step", refs[r]);
    }
    for (size_t j = 0; j < st->expect_count; j++) {
      const char *name = st->expects[j].incident;
      size_t k;
      for (k = 0; name && k < i; k++)
        if (s->steps[k].kind == SC_REPORT && !strcmp(s->steps[k].name, name)) break;
      if (name && k == i)
        return fail(ld, st->expects[j].line, "\"%s\" is not the name of a report before this step",
                    name);
    }
    if (i && st->at_min < s->steps[i - 1].at_min)
      return fail(ld, st->line, "steps must be in time order (at %g after at %g)", st->at_min,
                  s->steps[i - 1].at_min);
  }
  return 0;
}

struct scenario *scenario_load(const char *path, char *err, size_t errlen) {
  struct scenario *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "%s: out of memory", path);
    return NULL;
  }
  struct loader ld = {s, path, err, errlen};
  s->path = path;
  s->clock_min = -1;
  s->root = lk_yaml_read(path, err, errlen);
  if (!s->root) goto fail;
  const struct lk_ynode *r = s->root;
  if (r->kind != LK_YMAP) {
    fail(&ld, r->line, "a scenario is a mapping (scenario, about, clock, present, steps)");
    goto fail;
  }
  const struct lk_ynode *steps = NULL;
  for (size_t i = 0; i + 1 < r->count; i += 2) {
    const struct lk_ynode *k = r->items[i], *v = r->items[i + 1];
    const char *clock = NULL;
    if (k->kind != LK_YSCALAR) {
      fail(&ld, k->line, "keys must be scalars");
      goto fail;
    }
    if (strcmp(k->text, "scenario") == 0) {
      if (scalar(&ld, v, "scenario", &s->title)) goto fail;
    } else if (strcmp(k->text, "about") == 0) {
      if (scalar(&ld, v, "about", &s->about)) goto fail;
    } else if (strcmp(k->text, "clock") == 0) {
      if (scalar(&ld, v, "clock", &clock)) goto fail;
      if ((s->clock_min = clock_of(clock)) < 0) {
        fail(&ld, v->line, "clock must be HH:MM (local time at minute 0)");
        goto fail;
      }
    } else if (strcmp(k->text, "time_scale") == 0) {
      if (number(&ld, v, "time_scale", 1, 100000, &s->time_scale)) goto fail;
    } else if (strcmp(k->text, "present") == 0) {
      if (v->kind == LK_YSCALAR && strcmp(v->text, "all") == 0)
        s->present_all = 1;
      else if (list(&ld, v, "present", s->present, 64, &s->present_count))
        goto fail;
    } else if (strcmp(k->text, "steps") == 0) {
      steps = v;
    } else {
      fail(&ld, k->line, "unknown key \"%s\" (scenario, about, clock, time_scale, present, steps)",
           k->text);
      goto fail;
    }
  }
  if (!s->title || !steps || steps->kind != LK_YSEQ || steps->count == 0) {
    fail(&ld, r->line, "a scenario needs a title (scenario) and a list of steps");
    goto fail;
  }
  s->steps = calloc(steps->count, sizeof *s->steps);
  if (!s->steps) {
    fail(&ld, r->line, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < steps->count; i++) {
    s->step_count = i + 1;
    if (load_step(&ld, &s->steps[i], steps->items[i])) goto fail;
  }
  if (check_names(&ld)) goto fail;
  return s;

fail:
  scenario_destroy(&s);
  return NULL;
}

void scenario_destroy(struct scenario **ps) {
  struct scenario *s = ps ? *ps : NULL;
  if (!s) return;
  for (size_t i = 0; i < s->step_count; i++) {
    for (size_t j = 0; j < s->steps[i].expect_count; j++) {
      struct scenario_expect *e = &s->steps[i].expects[j];
      if (e->owned)
        for (size_t q = 0; q < e->n; q++)
          free((char *)e->values[q]);
    }
    free(s->steps[i].expects);
  }
  free(s->steps);
  lk_yaml_free(&s->root);
  free(s);
  *ps = NULL;
}

const struct scenario_step *scenario_report(const struct scenario *s, const char *name) {
  for (size_t i = 0; i < s->step_count; i++)
    if (s->steps[i].kind == SC_REPORT && strcmp(s->steps[i].name, name) == 0) return &s->steps[i];
  return NULL;
}

/* ---- judging ---- */

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), 0)

/* Both readers must say `want`. */
static int both(const char *what, const char *want, const char *view, const char *api, char *why,
                size_t whylen) {
  if (strcmp(view, want) == 0 && strcmp(api, want) == 0) return 1;
  return WHY("%s: expected %s; the incidents view says %s, /api/incidents says %s", what, want,
             view[0] ? view : "(nothing)", api[0] ? api : "(nothing)");
}

/* The expected list, sorted and comma-joined (for sets such as missing roles). */
static void joined_sorted(const struct scenario_expect *e, char *out, size_t len) {
  const char *v[32];
  size_t n = e->n;
  memcpy(v, e->values, n * sizeof v[0]);
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
      const char *t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  out[0] = '\0';
  for (size_t i = 0, off = 0; i < n && off < len; i++)
    off += (size_t)snprintf(out + off, len - off, "%s%s", i ? "," : "", v[i]);
  if (n == 1 && strcmp(out, "none") == 0) out[0] = '\0';
}

static int check_calls(const struct scenario_expect *e, const struct scenario_seen *seen, char *why,
                       size_t whylen) {
  /* Each expected role's calls, in order, must be exactly the ledger's calls of that role. */
  for (size_t i = 0; i < e->n; i++) {
    const char *pair = e->values[i], *eq = strchr(pair, '=');
    size_t rlen = (size_t)(eq - pair);
    char want[512] = "", got[512] = "";
    size_t wl = 0, gl = 0;
    for (size_t j = 0; j < e->n; j++)
      if (strncmp(e->values[j], pair, rlen + 1) == 0 && e->values[j][rlen + 1])
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s%s", wl ? " " : "",
                               e->values[j] + rlen + 1);
    for (const char *p = seen->calls; *p;) {
      const char *end = strchr(p, ';');
      if (!end) break;
      const char *sp = memchr(p, ' ', (size_t)(end - p));
      if (sp && (size_t)(sp - p) == rlen && strncmp(p, pair, rlen) == 0 && gl < sizeof got)
        gl += (size_t)snprintf(got + gl, sizeof got - gl, "%s%.*s", gl ? " " : "",
                               (int)(end - sp - 1), sp + 1);
      p = end + 1;
    }
    if (strcmp(want, got) != 0)
      return WHY("calls of %.*s: expected [%s], the ledger has [%s]", (int)rlen, pair, want, got);
  }
  return 1;
}

static int check_escalations(const struct scenario_expect *e, const struct scenario_seen *seen,
                             char *why, size_t whylen) {
  size_t have = 0;
  const char *p = seen->escalations;
  for (const char *q = p; *q; q++)
    have += *q == '\n';
  if (have != e->n)
    return WHY("escalations: expected %zu, the ledger has %zu: %s", e->n, have,
               seen->escalations[0] ? seen->escalations : "(none)");
  for (size_t i = 0; i < e->n; i++) {
    const char *end = strchr(p, '\n');
    char reason[512];
    snprintf(reason, sizeof reason, "%.*s", (int)(end - p), p);
    if (!strstr(reason, e->values[i]))
      return WHY("escalation %zu: expected a reason saying \"%s\", got \"%s\"", i + 1, e->values[i],
                 reason);
    p = end + 1;
  }
  return 1;
}

static int check_deadline(const struct scenario_expect *e, const struct scenario_seen *seen,
                          char *why, size_t whylen) {
  if (e->n == 1 && strcmp(e->values[0], "none") == 0) {
    if (!seen->api_deadline_kind[0]) return 1;
    return WHY("deadline: expected none, /api/incidents shows %s at minute %.2f",
               seen->api_deadline_kind, seen->api_deadline_min);
  }
  const char *pair = e->values[0], *eq = strchr(pair, '=');
  if (!eq || e->n != 1) return WHY("deadline: write {acknowledge: M} or {resolve: M}");
  char kind[16];
  snprintf(kind, sizeof kind, "%.*s", (int)(eq - pair), pair);
  double want = strtod(eq + 1, NULL);
  /* Half a plan minute: the stack's clock runs on while a step is played. */
  if (strcmp(kind, seen->api_deadline_kind) == 0 && fabs(seen->api_deadline_min - want) <= 0.5)
    return 1;
  if (!seen->api_deadline_kind[0])
    return WHY("deadline: expected %s at minute %g, /api/incidents shows none", kind, want);
  return WHY("deadline: expected %s at minute %g, /api/incidents shows %s at minute %.2f", kind,
             want, seen->api_deadline_kind, seen->api_deadline_min);
}

int scenario_check(const struct scenario_expect *e, const struct scenario_seen *seen,
                   const char *first_name, scenario_id_fn id_of, void *ctx, char *why,
                   size_t whylen) {
  const char *v0 = e->n ? e->values[0] : "";
  const char *key = e->key;
  if (strcmp(key, "first") == 0) {
    if (first_name && strcmp(first_name, v0) == 0) return 1;
    return WHY("the dashboard's first incident: expected %s, got %s", v0,
               first_name ? first_name : "(none of the scenario's)");
  }
  if (!seen->in_view || !seen->in_api)
    return WHY("%s: the incident is not %s yet", key,
               !seen->in_view ? "in the incidents view" : "in /api/incidents");
  if (strcmp(key, "tier") == 0)
    return both("tier", v0, seen->view_tier, seen->api_tier, why, whylen);
  if (strcmp(key, "state") == 0)
    return both("state", v0, seen->view_state, seen->api_state, why, whylen);
  if (strcmp(key, "lead") == 0)
    return both("lead", strcmp(v0, "none") == 0 ? "" : v0, seen->view_lead, seen->api_lead, why,
                whylen);
  if (strcmp(key, "missing") == 0) {
    char want[512];
    joined_sorted(e, want, sizeof want);
    if (!both("missing roles", want, seen->view_missing, seen->api_missing, why, whylen)) return 0;
    /* Open311 says it in words: "no fire_brigade engaged". */
    for (size_t i = 0; want[0] && i < e->n; i++) {
      char phrase[96];
      snprintf(phrase, sizeof phrase, "no %s engaged", e->values[i]);
      if (!strstr(seen->open311_notes, phrase))
        return WHY("missing roles: Open311 status_notes do not say \"%s\": \"%s\"", phrase,
                   seen->open311_notes);
    }
    return 1;
  }
  if (strcmp(key, "organisation") == 0) {
    if (strcmp(seen->api_org, v0) == 0) return 1;
    return WHY("organisation: expected %s, got %s", v0, seen->api_org);
  }
  if (strcmp(key, "severity") == 0) {
    if (strcmp(seen->api_severity, v0) == 0) return 1;
    return WHY("severity: expected %s, got %s", v0, seen->api_severity);
  }
  if (strcmp(key, "held_back_by") == 0 || strcmp(key, "merged_into") == 0) {
    int held = key[0] == 'h';
    const char *got = held ? seen->api_held_back_by : seen->api_merged_into;
    const char *want = strcmp(v0, "none") == 0 ? "" : id_of(ctx, v0);
    if (strcmp(got, want ? want : "?") == 0) return 1;
    return WHY("%s: expected %s (%s), got %s", key, v0, want ? want : "?", got[0] ? got : "none");
  }
  if (strcmp(key, "overdue") == 0 || strcmp(key, "exercise") == 0 ||
      strcmp(key, "held_back") == 0) {
    int want = strcmp(v0, "true") == 0;
    int got = key[0] == 'o'   ? seen->api_overdue
              : key[0] == 'h' ? seen->api_held_back
                              : seen->api_exercise && seen->view_exercise;
    if (want == got) return 1;
    return WHY("%s: expected %s, got %s", key, v0, got ? "true" : "false");
  }
  if (strcmp(key, "cap") == 0) {
    if (strcmp(seen->cap_msgtype, v0) == 0) return 1;
    return WHY("cap: expected msgType %s, got %s", v0,
               seen->cap_msgtype[0] ? seen->cap_msgtype : "(no CAP message)");
  }
  if (strcmp(key, "calls") == 0) return check_calls(e, seen, why, whylen);
  if (strcmp(key, "escalations") == 0) {
    if (e->n == 1 && strcmp(v0, "none") == 0) {
      if (!seen->escalations[0]) return 1;
      return WHY("escalations: expected none, the ledger has: %s", seen->escalations);
    }
    return check_escalations(e, seen, why, whylen);
  }
  if (strcmp(key, "deadline") == 0) return check_deadline(e, seen, why, whylen);
  return WHY("unknown key %s", key);
}
