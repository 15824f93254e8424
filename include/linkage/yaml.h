#ifndef LINKAGE_YAML_H
#define LINKAGE_YAML_H

/* A YAML document as a small tree that remembers line numbers, read with
 * libyaml's event parser. The district loader and linkagectl's scenarios use it: both want
 * "file:line: why" for every complaint, and checks keys against its tables
 * instead of walking libyaml's document API. Aliases, tags other than the
 * defaults, several documents and nesting deeper than LK_YAML_DEPTH_MAX are
 * refused, so a hostile file cannot make the loader recurse or loop. */

#include <stddef.h>

#define LK_YAML_DEPTH_MAX 32

enum lk_ynode_kind { LK_YSCALAR, LK_YSEQ, LK_YMAP };

struct lk_ynode {
  enum lk_ynode_kind kind;
  int line;                /* 1-based */
  char *text;              /* scalar: NUL-terminated */
  size_t len;              /* scalar: bytes before the NUL */
  int plain;               /* scalar: written without quotes */
  struct lk_ynode **items; /* sequence: the items; mapping: key, value, key, value ... */
  size_t count;            /* entries in items */
  size_t cap;
};

/* Reads `path` into a tree. NULL with "path:line: why" (or "path: why") in err. */
struct lk_ynode *lk_yaml_read(const char *path, char *err, size_t errlen);
void lk_yaml_free(struct lk_ynode **n);

const char *lk_ynode_kind_name(enum lk_ynode_kind k);

#endif
