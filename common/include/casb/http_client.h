#ifndef CASB_HTTP_CLIENT_H
#define CASB_HTTP_CLIENT_H

#include <stddef.h>

/* The one outbound HTTP client, on libcurl. It retries network errors, 5xx and rate limits
 * with capped exponential backoff plus jitter, honouring Retry-After and the
 * x-ratelimit-remaining/x-ratelimit-reset pair (a 403 or 429 with remaining 0 waits until
 * reset), and never waits longer than max_wait_s for one retry. Bodies above max_body_bytes
 * are refused. One client is used by one thread at a time (it keeps a curl handle for
 * connection reuse); counters are kept for scan statistics. */

typedef struct casb_http_client casb_http_client;

typedef struct {
    long timeout_ms;        /* whole request; 0: 30000 */
    long connect_timeout_ms;/* 0: 5000 */
    int max_retries;        /* retries of network errors and 5xx; 0: none */
    long max_wait_s;        /* cap for one backoff or Retry-After wait; 0: 60 */
    long rate_limit_budget_s; /* total time one request may wait on rate limits (429, 403
                               * with x-ratelimit-remaining 0): these are the provider pacing
                               * us, not failures, so they do not use up max_retries; 0: 900;
                               * negative: never wait, answer the 429 (webhook deliveries,
                               * which have their own retry queue) */
    size_t max_body_bytes;  /* 0: 32 MiB */
    const char *user_agent; /* NULL: "casb/<version>" */
    volatile int *cancel;   /* optional: when it becomes non-zero, waits stop and calls fail */
    /* Optional: called about once a second while a retry or rate-limit wait lasts (a wait
     * may last minutes); a non-zero return ends the wait and fails the request as cancelled.
     * A scan renews its lease here, and stops waiting when its integration was deleted. */
    int (*wait_check)(void *ud);
    void *wait_check_ud;
} casb_http_client_opts;

typedef struct {
    long status;
    char *body; /* NUL-terminated, body_len bytes */
    size_t body_len;
    char *headers; /* raw response header block of the final attempt */
    long retry_waits;   /* how many waits the retries of this request needed */
} casb_http_response;

typedef struct {
    long requests;        /* attempts sent, including retries */
    long rate_limit_waits;/* waits caused by 429/403 rate limits */
    long retries;         /* all retries */
    long long wait_ms;    /* time spent waiting */
    /* Each attempt counted once, by its answer's status class (status_class[c] for cxx,
     * c = 1..5) or, when no answer came (network error, timeout, cancelled, body too
     * large), in status_class[0]. For casb_provider_api_calls_total{status}. */
    long status_class[6];
} casb_http_stats;

/* Adds src's counts to dst (a scan totals the clients its provider used). */
void casb_http_stats_add(casb_http_stats *dst, const casb_http_stats *src);

int casb_http_client_new(casb_http_client **out, const casb_http_client_opts *opts,
                         char *err, size_t errlen);
void casb_http_client_free(casb_http_client *c);
const casb_http_stats *casb_http_client_stats(const casb_http_client *c);

/* Pins the following requests to host:port to one address, so that they connect where an
 * egress check looked (casb_netguard_check_url writes the entry) and not where a second DNS
 * lookup points. resolve_entry is a CURLOPT_RESOLVE entry "host:port:address" (an IPv6
 * address in brackets; copied); NULL clears the pin. Other hosts resolve as usual. A changed
 * pin replaces the curl handle, so no cached lookup or kept-alive connection of the previous
 * pin is used (keep-alive connections to every host are dropped then); setting the same pin
 * again changes nothing. An entry whose host is an IPv6 literal ("[::1]:80:[::1]") is
 * accepted and has no effect on curl, which never resolves a literal. Returns 0, or -1 for
 * a malformed entry or out of memory (the previous pin then stays). */
int casb_http_client_pin(casb_http_client *c, const char *resolve_entry);

/* Performs a request. headers is NULL-terminated "Name: value" strings (may be NULL).
 * Returns 0 with *out (any final status, including 4xx; free with casb_http_response_free)
 * once retries are done, or -1 with err when no response could be had (network, timeout,
 * cancelled, body too large). A final 5xx or 429 after retries is returned as a response. */
int casb_http_request(casb_http_client *c, casb_http_response **out, const char *method,
                      const char *url, const char *const *headers, const char *body,
                      size_t body_len, char *err, size_t errlen);
void casb_http_response_free(casb_http_response *r);

/* Case-insensitive header lookup in r->headers (first occurrence, value trimmed), copied
 * into buf. 1 found, 0 absent, -1 if it does not fit. */
int casb_http_response_header(const casb_http_response *r, const char *name, char *buf,
                              size_t buflen);

/* Extracts the URL with the given rel (e.g. "next") from an RFC 8288 Link header value.
 * Returns 1 and the URL in buf, 0 when absent, -1 if it does not fit. */
int casb_http_link_rel(const char *link_header, const char *rel, char *buf, size_t buflen);

/* Percent-encodes s for a URL path segment or query value; malloc'ed. */
char *casb_http_escape(const char *s);

/* Seconds a client should wait before retrying the response, from Retry-After (seconds or
 * HTTP-date) or x-ratelimit-reset when x-ratelimit-remaining is 0; -1 when neither applies.
 * now is the current epoch time (parameter for testability). */
long casb_http_retry_after_s(const casb_http_response *r, long now);

#endif
