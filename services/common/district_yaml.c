/* YAML file -> struct lk_ynode tree with line numbers (see district_yaml.h). */

#include "linkage/yaml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const char *lk_ynode_kind_name(enum lk_ynode_kind k) {
  switch (k) {
  case LK_YSCALAR: return "a scalar";
  case LK_YSEQ: return "a list";
  case LK_YMAP: return "a mapping";
  }
  return "?";
}

void lk_yaml_free(struct lk_ynode **pn) {
  if (pn == NULL || *pn == NULL) return;
  struct lk_ynode *n = *pn;
  for (size_t i = 0; i < n->count; i++)
    lk_yaml_free(&n->items[i]);
  free(n->items);
  free(n->text);
  free(n);
  *pn = NULL;
}

static struct lk_ynode *node_new(enum lk_ynode_kind kind, int line) {
  struct lk_ynode *n = calloc(1, sizeof(*n));
  if (n == NULL) return NULL;
  n->kind = kind;
  n->line = line;
  return n;
}

static int append_item(struct lk_ynode *parent, struct lk_ynode *child) {
  if (parent->count == parent->cap) {
    size_t cap = parent->cap ? parent->cap * 2 : 8;
    struct lk_ynode **items = realloc(parent->items, cap * sizeof(*items));
    if (items == NULL) return -1;
    parent->items = items;
    parent->cap = cap;
  }
  parent->items[parent->count++] = child;
  return 0;
}

struct reader {
  const char *path;
  char *err;
  size_t errlen;
  struct lk_ynode *root;
  struct lk_ynode *stack[LK_YAML_DEPTH_MAX];
  int depth;
  int documents;
};

/* Attaches a new node under the open container (or as the root) and, for
 * containers, opens it. */
static int attach(struct reader *r, struct lk_ynode *n) {
  if (r->depth == 0) {
    if (r->root != NULL) {
      snprintf(r->err, r->errlen, "%s:%d: more than one document", r->path, n->line);
      goto fail;
    }
    r->root = n;
  } else {
    struct lk_ynode *top = r->stack[r->depth - 1];
    if (top->kind == LK_YMAP && top->count % 2 == 0 && n->kind != LK_YSCALAR) {
      snprintf(r->err, r->errlen, "%s:%d: a mapping key must be a scalar", r->path, n->line);
      goto fail;
    }
    if (append_item(top, n) != 0) {
      snprintf(r->err, r->errlen, "%s: out of memory", r->path);
      goto fail;
    }
  }
  if (n->kind != LK_YSCALAR) {
    if (r->depth == LK_YAML_DEPTH_MAX) {
      snprintf(r->err, r->errlen, "%s:%d: nested deeper than %d levels", r->path, n->line,
               LK_YAML_DEPTH_MAX);
      return -1; /* already attached: freed with the tree */
    }
    r->stack[r->depth++] = n;
  }
  return 0;
fail:
  lk_yaml_free(&n);
  return -1;
}

static int on_event(struct reader *r, const yaml_event_t *ev) {
  int line = (int)ev->start_mark.line + 1;
  struct lk_ynode *n;

  switch (ev->type) {
  case YAML_STREAM_START_EVENT:
  case YAML_STREAM_END_EVENT:
  case YAML_DOCUMENT_END_EVENT:
  case YAML_NO_EVENT: return 0;
  case YAML_DOCUMENT_START_EVENT:
    if (++r->documents > 1) {
      snprintf(r->err, r->errlen, "%s:%d: more than one document", r->path, line);
      return -1;
    }
    return 0;
  case YAML_ALIAS_EVENT:
    snprintf(r->err, r->errlen, "%s:%d: aliases are not supported", r->path, line);
    return -1;
  case YAML_SCALAR_EVENT:
    if (ev->data.scalar.tag != NULL) {
      snprintf(r->err, r->errlen, "%s:%d: tags are not supported", r->path, line);
      return -1;
    }
    n = node_new(LK_YSCALAR, line);
    if (n == NULL) goto nomem;
    n->len = ev->data.scalar.length;
    n->text = malloc(n->len + 1);
    if (n->text == NULL) {
      lk_yaml_free(&n);
      goto nomem;
    }
    memcpy(n->text, ev->data.scalar.value, n->len);
    n->text[n->len] = '\0';
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return attach(r, n);
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT:
    if ((ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.tag != NULL) ||
        (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.tag != NULL)) {
      snprintf(r->err, r->errlen, "%s:%d: tags are not supported", r->path, line);
      return -1;
    }
    n = node_new(ev->type == YAML_SEQUENCE_START_EVENT ? LK_YSEQ : LK_YMAP, line);
    if (n == NULL) goto nomem;
    return attach(r, n);
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    if (r->depth > 0) r->depth--;
    return 0;
  }
  return 0;
nomem:
  snprintf(r->err, r->errlen, "%s: out of memory", r->path);
  return -1;
}

struct lk_ynode *lk_yaml_read(const char *path, char *err, size_t errlen) {
  struct reader r = {.path = path, .err = err, .errlen = errlen};
  yaml_parser_t parser;
  yaml_event_t ev;
  int done = 0;

  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  if (!yaml_parser_initialize(&parser)) {
    snprintf(err, errlen, "%s: out of memory", path);
    goto fail_parser;
  }
  yaml_parser_set_input_file(&parser, f);
  while (!done) {
    if (!yaml_parser_parse(&parser, &ev)) {
      snprintf(err, errlen, "%s:%d: %s%s%s", path, (int)parser.problem_mark.line + 1,
               parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
               parser.context ? parser.context : "");
      goto fail_parse;
    }
    int rc = on_event(&r, &ev);
    done = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (rc != 0) goto fail_parse;
  }
  yaml_parser_delete(&parser);
  fclose(f);
  if (r.root == NULL) snprintf(err, errlen, "%s:1: the file is empty", path);
  return r.root;

fail_parse:
  lk_yaml_free(&r.root);
  yaml_parser_delete(&parser);
fail_parser:
  fclose(f);
  return NULL;
}
