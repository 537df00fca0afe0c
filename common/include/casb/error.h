#ifndef CASB_ERROR_H
#define CASB_ERROR_H

#include <stddef.h>

/* Return codes shared by every module. Functions return 0 on success and a negative
 * value on failure; a caller-provided `char *err, size_t errlen` pair receives a one-line
 * human message (never a secret). */
#define CASB_OK 0
#define CASB_ERROR -1        /* generic failure, message in err */
#define CASB_ENOTFOUND -2    /* the thing asked for does not exist */
#define CASB_EINVALID -3     /* input rejected by validation */
#define CASB_ECONFLICT -4    /* state does not allow the operation */
#define CASB_EUNAVAILABLE -5 /* a dependency (database, broker, provider) is unreachable */
#define CASB_EAUTH -6        /* credentials rejected */

/* Formats into err (if non-NULL) and returns rc, so that `return casb_fail(err, n, CASB_ERROR, "...")`
 * reads as one statement. */
int casb_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
