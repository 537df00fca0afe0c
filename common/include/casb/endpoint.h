#ifndef CASB_ENDPOINT_H
#define CASB_ENDPOINT_H

#include <stddef.h>

/* SSRF guard for provider endpoints. A provider's own public endpoint is always allowed; any
 * other base URL (GitHub Enterprise Server, sovereign clouds, the test simulator) must be
 * listed by the operator in CASB_ALLOWED_ENDPOINTS, a comma-separated list of base URLs
 * compared by scheme, host and port ("http://127.0.0.1:8090"). Returns 1 allowed, 0 refused
 * (reason in err). URLs with userinfo, fragments or non-http(s) schemes are refused. */
int casb_endpoint_allowed(const char *url, const char *default_url, const char *allowlist_csv,
                          char *err, size_t errlen);

#endif
