#include "linkage/error.h"

const char *lk_strerror(int err) {
  switch (err) {
  case LK_OK: return "ok";
  case LK_ENOMEM: return "out of memory";
  case LK_EINVAL: return "invalid input";
  case LK_EIO: return "input/output error";
  case LK_ENOENT: return "not found";
  case LK_EFULL: return "queue full";
  case LK_EAGAIN: return "try again";
  case LK_ETIMEDOUT: return "timed out";
  default: return "unknown error";
  }
}
