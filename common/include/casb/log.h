#ifndef CASB_LOG_H
#define CASB_LOG_H

/* JSON-lines logging to stderr: one object per line with ts (RFC 3339 UTC, ms), level,
 * service, msg, then the key/value pairs of the call. Correlation ids (scan_id,
 * integration_id, account_id) are passed as pairs. Thread-safe; never pass secrets. */

enum { CASB_LOG_DEBUG = 0, CASB_LOG_INFO = 1, CASB_LOG_WARN = 2, CASB_LOG_ERROR = 3 };

void casb_log_init(const char *service, int min_level);
int casb_log_level_parse(const char *s); /* -1 when unknown */

/* Logs msg with NULL-terminated (const char *key, const char *value) pairs; a NULL value
 * is written as null. Example: casb_log(CASB_LOG_INFO, "scan started", "scan_id", id, NULL); */
void casb_log(int level, const char *msg, ...) __attribute__((sentinel));

#define casb_log_debug(...) casb_log(CASB_LOG_DEBUG, __VA_ARGS__, (const char *)NULL)
#define casb_log_info(...) casb_log(CASB_LOG_INFO, __VA_ARGS__, (const char *)NULL)
#define casb_log_warn(...) casb_log(CASB_LOG_WARN, __VA_ARGS__, (const char *)NULL)
#define casb_log_error(...) casb_log(CASB_LOG_ERROR, __VA_ARGS__, (const char *)NULL)

#endif
