#ifndef LINKAGE_ERROR_H
#define LINKAGE_ERROR_H

/* The small set of failures the shared library reports. Functions return
 * LK_OK (0) or a negative code; constructors return a pointer or NULL. */
enum lk_err {
  LK_OK = 0,
  LK_ENOMEM = -1,
  LK_EINVAL = -2, /* bad argument or malformed input */
  LK_EIO = -3,    /* a socket, file or database call failed */
  LK_ENOENT = -4, /* no such file, key or record */
  LK_EFULL = -5,  /* a bounded queue is full */
  LK_EAGAIN = -6, /* try again later */
  LK_ETIMEDOUT = -7,
};

const char *lk_strerror(int err);

#endif
