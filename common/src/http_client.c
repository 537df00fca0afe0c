#include "casb/http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "casb/timeutil.h"

#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define DEFAULT_MAX_WAIT_S 60L
#define DEFAULT_MAX_BODY_BYTES ((size_t)32 * 1024 * 1024)
#define MAX_HEADER_BYTES ((size_t)256 * 1024)
#define BACKOFF_BASE_MS 500LL
#define SLEEP_SLICE_MS 100
/* How often a long wait asks opts.wait_check whether to go on. */
#define WAIT_CHECK_MS 1000
#define DEFAULT_RATE_LIMIT_BUDGET_S 900
#define RESET_MARGIN_MS 1000LL /* x-ratelimit-reset has one-second resolution */

struct casb_http_client {
    CURL *curl;
    casb_http_client_opts opts;
    char *user_agent;
    casb_http_stats stats;
    unsigned int rand_state;
    char errbuf[CURL_ERROR_SIZE];
    char *pin;                  /* casb_http_client_pin's entry, or NULL */
    struct curl_slist *resolve; /* the pin as CURLOPT_RESOLVE takes it, or NULL */
};

typedef struct {
    casb_text text;
    size_t max;
    int too_large;
} growbuf;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

/* curl_global_init is not guaranteed thread-safe on every build, so it runs once here
 * rather than implicitly from the first curl_easy_init. */
static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int growbuf_append(growbuf *b, const char *p, size_t n)
{
    if (b->text.len + n > b->max) {
        b->too_large = 1;
        return -1;
    }
    return casb_text_append(&b->text, p, n);
}

static void growbuf_reset(growbuf *b)
{
    b->text.len = 0;
    b->text.failed = 0;
    if (b->text.data)
        b->text.data[0] = '\0';
}

/* Returning less than asked makes curl abort the transfer with CURLE_WRITE_ERROR: that is
 * how a body over the cap stops without being downloaded. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    size_t n = size * nmemb;

    if (growbuf_append(userdata, ptr, n) != 0)
        return 0;
    return n;
}

/* Keeps only the header block of the last response of this attempt: an interim 100 Continue
 * starts with a status line too, and restarts the block. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    size_t n = size * nmemb;
    growbuf *b = userdata;

    if (n >= 5 && strncasecmp(ptr, "HTTP/", 5) == 0)
        growbuf_reset(b);
    if (growbuf_append(b, ptr, n) != 0)
        return 0;
    return n;
}

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const casb_http_client *c = clientp;

    return c->opts.cancel && *c->opts.cancel ? 1 : 0;
}

int casb_http_client_new(casb_http_client **out, const casb_http_client_opts *opts,
                         char *err, size_t errlen)
{
    casb_http_client *c = NULL;
    char ua[64];

    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != 0)
        return casb_fail(err, errlen, CASB_ERROR, "http client: curl_global_init failed");
    c = calloc(1, sizeof(*c));
    if (!c)
        return casb_fail(err, errlen, CASB_ERROR, "http client: out of memory");
    if (opts)
        c->opts = *opts;
    if (c->opts.timeout_ms <= 0)
        c->opts.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (c->opts.max_retries < 0)
        c->opts.max_retries = 0;
    if (c->opts.max_wait_s <= 0)
        c->opts.max_wait_s = DEFAULT_MAX_WAIT_S;
    if (c->opts.rate_limit_budget_s == 0)
        c->opts.rate_limit_budget_s = DEFAULT_RATE_LIMIT_BUDGET_S;
    else if (c->opts.rate_limit_budget_s < 0)
        c->opts.rate_limit_budget_s = 0;
    if (c->opts.max_body_bytes == 0)
        c->opts.max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    if (c->opts.user_agent) {
        c->user_agent = strdup(c->opts.user_agent);
    } else {
        snprintf(ua, sizeof(ua), "casb/%s", CASB_VERSION);
        c->user_agent = strdup(ua);
    }
    c->opts.user_agent = c->user_agent;
    c->curl = curl_easy_init();
    if (!c->user_agent || !c->curl) {
        casb_http_client_free(c);
        return casb_fail(err, errlen, CASB_ERROR, "http client: cannot create a curl handle");
    }
    c->rand_state = (unsigned int)casb_now_ms() ^ (unsigned int)(uintptr_t)c;
    *out = c;
    return 0;
}

void casb_http_client_free(casb_http_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->resolve);
    free(c->pin);
    free(c->user_agent);
    free(c);
}

/* Checks "host:port:address" and tells whether host is a bracketed IPv6 literal. */
static int parse_pin(const char *entry, int *v6_literal)
{
    const char *p;
    size_t digits;

    *v6_literal = entry[0] == '[';
    if (*v6_literal) {
        p = strchr(entry, ']');
        if (!p)
            return -1;
        p++;
    } else {
        p = entry + strcspn(entry, ":");
        if (p == entry)
            return -1;
    }
    if (*p != ':')
        return -1;
    p++;
    digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 5 || p[digits] != ':' || p[digits + 1] == '\0')
        return -1;
    return 0;
}

static int same_pin(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

int casb_http_client_pin(casb_http_client *c, const char *resolve_entry)
{
    struct curl_slist *resolve = NULL;
    char *pin = NULL;
    CURL *h = NULL;
    int v6_literal = 0;

    if (!c)
        return -1;
    if (same_pin(c->pin, resolve_entry))
        return 0;
    if (resolve_entry) {
        if (parse_pin(resolve_entry, &v6_literal) != 0)
            return -1;
        pin = strdup(resolve_entry);
        /* curl never resolves an IPv6 literal, and 7.x cannot parse one as a RESOLVE host. */
        if (pin && !v6_literal)
            resolve = curl_slist_append(NULL, resolve_entry);
        if (!pin || (!v6_literal && !resolve))
            goto fail;
    }
    /* A new handle rather than a "-host:port" removal entry: besides the DNS cache, the old
     * handle keeps idle connections, matched by host name and port, not by address, so one
     * to the previous address would be reused (FRESH_CONNECT only skips it once). */
    h = curl_easy_init();
    if (!h)
        goto fail;
    curl_easy_cleanup(c->curl);
    c->curl = h;
    curl_slist_free_all(c->resolve);
    free(c->pin);
    c->resolve = resolve;
    c->pin = pin;
    return 0;
fail:
    curl_slist_free_all(resolve);
    free(pin);
    return -1;
}

const casb_http_stats *casb_http_client_stats(const casb_http_client *c)
{
    return c ? &c->stats : NULL;
}

void casb_http_stats_add(casb_http_stats *dst, const casb_http_stats *src)
{
    if (!dst || !src)
        return;
    dst->requests += src->requests;
    dst->rate_limit_waits += src->rate_limit_waits;
    dst->retries += src->retries;
    dst->wait_ms += src->wait_ms;
    for (size_t i = 0; i < sizeof(dst->status_class) / sizeof(dst->status_class[0]); i++)
        dst->status_class[i] += src->status_class[i];
}

/* One attempt's status class, 0 when no answer came. */
static void count_status_class(casb_http_client *c, CURLcode cc)
{
    long code = 0;

    if (cc == CURLE_OK)
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
    c->stats.status_class[code >= 100 && code <= 599 ? code / 100 : 0]++;
}

void casb_http_response_free(casb_http_response *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->headers);
    free(r);
}

/* ---- header helpers ---- */

/* Finds header name in a raw block; sets val and vlen to the trimmed value. */
static int find_header(const char *block, const char *name, const char **val, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = block;

    if (!block)
        return 0;
    while (*p) {
        size_t linelen = strcspn(p, "\r\n");
        const char *colon = memchr(p, ':', linelen);

        if (colon && (size_t)(colon - p) == nlen && strncasecmp(p, name, nlen) == 0) {
            const char *v = colon + 1;
            const char *end = p + linelen;

            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            *val = v;
            *vlen = (size_t)(end - v);
            return 1;
        }
        p += linelen;
        while (*p == '\r' || *p == '\n')
            p++;
    }
    return 0;
}

int casb_http_response_header(const casb_http_response *r, const char *name, char *buf,
                              size_t buflen)
{
    const char *v;
    size_t vlen;

    if (!r || !name || !buf || buflen == 0)
        return 0;
    if (!find_header(r->headers, name, &v, &vlen))
        return 0;
    if (vlen + 1 > buflen)
        return -1;
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    return 1;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return 0;
    }
    return 1;
}

/* The wait a response asks for, and whether it came from x-ratelimit-reset (which only has
 * one-second resolution, so the caller adds a margin). */
static long retry_after(const casb_http_response *r, long now, int *from_reset)
{
    char v[128];
    char remaining[32];

    *from_reset = 0;
    if (casb_http_response_header(r, "Retry-After", v, sizeof(v)) == 1) {
        if (all_digits(v)) {
            long long s = strtoll(v, NULL, 10);

            return s > 86400L * 365 ? 86400L * 365 : (long)s;
        }
        time_t t = curl_getdate(v, NULL); /* IMF-fixdate, RFC 850 and asctime forms */

        if (t != (time_t)-1)
            return t > now ? (long)(t - now) : 0;
    }
    if (casb_http_response_header(r, "x-ratelimit-remaining", remaining, sizeof(remaining)) == 1 &&
        strcmp(remaining, "0") == 0 &&
        casb_http_response_header(r, "x-ratelimit-reset", v, sizeof(v)) == 1 && all_digits(v)) {
        long long reset = strtoll(v, NULL, 10);

        *from_reset = 1;
        return reset > now ? (long)(reset - now) : 0;
    }
    return -1;
}

long casb_http_retry_after_s(const casb_http_response *r, long now)
{
    int from_reset;

    if (!r)
        return -1;
    return retry_after(r, now, &from_reset);
}

/* ---- Link header (RFC 8288) ---- */

static int is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Reads a param value (token or quoted-string) at p into out (truncated to outlen-1).
 * Returns the position after it. */
static const char *read_param_value(const char *p, char *out, size_t outlen)
{
    size_t n = 0;

    if (*p == '"') {
        p++;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1])
                p++;
            if (n + 1 < outlen)
                out[n++] = *p;
            p++;
        }
        if (*p == '"')
            p++;
    } else {
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t') {
            if (n + 1 < outlen)
                out[n++] = *p;
            p++;
        }
    }
    out[n] = '\0';
    return p;
}

/* rel is a space-separated list of relation types, compared case-insensitively. */
static int rel_list_has(const char *list, const char *rel)
{
    size_t rlen = strlen(rel);
    const char *p = list;

    while (*p) {
        size_t n;

        while (*p == ' ' || *p == '\t')
            p++;
        n = strcspn(p, " \t");
        if (n == rlen && n > 0 && strncasecmp(p, rel, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

int casb_http_link_rel(const char *link_header, const char *rel, char *buf, size_t buflen)
{
    const char *p = link_header;

    if (!p || !rel || !*rel || !buf || buflen == 0)
        return 0;
    while (*p) {
        const char *url;
        const char *url_end;
        int matched = 0;
        int seen_rel = 0;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p != '<') {
            /* Not a link-value: skip to the next comma outside quotes. */
            int inq = 0;

            while (*p && (inq || *p != ',')) {
                if (*p == '"')
                    inq = !inq;
                else if (*p == '\\' && inq && p[1])
                    p++;
                p++;
            }
            continue;
        }
        url = p + 1;
        url_end = strchr(url, '>');
        if (!url_end)
            return 0;
        p = url_end + 1;
        for (;;) {
            char name[32];
            char value[512];
            size_t nlen = 0;

            p = skip_ws(p);
            if (*p == '\0' || *p == ',')
                break;
            if (*p != ';') {
                p++; /* stray character: tolerate */
                continue;
            }
            p = skip_ws(p + 1);
            while (is_tchar(*p)) {
                if (nlen + 1 < sizeof(name))
                    name[nlen++] = *p;
                p++;
            }
            name[nlen] = '\0';
            p = skip_ws(p);
            value[0] = '\0';
            if (*p == '=')
                p = read_param_value(skip_ws(p + 1), value, sizeof(value));
            /* RFC 8288 3.3: only the first rel parameter counts. */
            if (strcasecmp(name, "rel") == 0 && !seen_rel) {
                seen_rel = 1;
                matched = rel_list_has(value, rel);
            }
        }
        if (matched) {
            size_t len;

            while (url < url_end && (*url == ' ' || *url == '\t'))
                url++;
            len = (size_t)(url_end - url);
            while (len > 0 && (url[len - 1] == ' ' || url[len - 1] == '\t'))
                len--;
            if (len + 1 > buflen)
                return -1;
            memcpy(buf, url, len);
            buf[len] = '\0';
            return 1;
        }
    }
    return 0;
}

char *casb_http_escape(const char *s)
{
    char *e;
    char *copy;

    if (!s)
        return NULL;
    pthread_once(&curl_once, curl_init_once);
    e = curl_easy_escape(NULL, s, (int)strlen(s));
    if (!e)
        return NULL;
    copy = strdup(e);
    curl_free(e);
    return copy;
}

/* ---- requests ---- */

static int cancelled(const casb_http_client *c)
{
    return c->opts.cancel && *c->opts.cancel;
}

/* Sleeps ms in short slices so that a cancel flag is seen promptly, asking wait_check about
 * once a second. Adds the time actually slept to the stats. Returns -1 when cancelled. */
static int sleep_cancellable(casb_http_client *c, long long ms)
{
    int64_t start = casb_monotonic_ms();
    int64_t end = start + ms;
    int64_t checked = start;
    int rc = 0;

    for (;;) {
        int64_t now = casb_monotonic_ms();

        if (c->opts.wait_check && now - checked >= WAIT_CHECK_MS) {
            checked = now;
            if (c->opts.wait_check(c->opts.wait_check_ud) != 0) {
                rc = -1;
                break;
            }
        }
        if (cancelled(c)) {
            rc = -1;
            break;
        }
        if (now >= end)
            break;
        casb_sleep_ms(end - now < SLEEP_SLICE_MS ? end - now : SLEEP_SLICE_MS);
    }
    c->stats.wait_ms += casb_monotonic_ms() - start;
    return rc;
}

static int retryable_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return 1;
    default:
        return 0;
    }
}

/* A 403 is a rate limit only with x-ratelimit-remaining: 0 or a retry-after header (GitHub's
 * primary and secondary limits); any other 403 is a permission problem and final. */
static int rate_limited(const casb_http_response *r)
{
    char v[64];

    if (r->status == 429)
        return 1;
    if (r->status != 403)
        return 0;
    if (casb_http_response_header(r, "retry-after", v, sizeof(v)) == 1)
        return 1;
    return casb_http_response_header(r, "x-ratelimit-remaining", v, sizeof(v)) == 1 &&
           strcmp(v, "0") == 0;
}

static int retryable_status(const casb_http_response *r)
{
    switch (r->status) {
    case 500:
    case 502:
    case 503:
    case 504:
        return 1;
    default:
        return rate_limited(r);
    }
}

/* Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)]. */
static long long backoff_ms(casb_http_client *c, int attempt)
{
    long long cap = (long long)c->opts.max_wait_s * 1000;
    long long upper = cap;

    if (attempt < 30 && (BACKOFF_BASE_MS << attempt) < cap)
        upper = BACKOFF_BASE_MS << attempt;
    return (long long)(((double)rand_r(&c->rand_state) / RAND_MAX) * (double)upper);
}

/* The URL without its query string, for logs: queries can carry things we do not log. */
static void loggable_url(const char *url, char *buf, size_t buflen)
{
    size_t n = strcspn(url, "?#");

    if (n >= buflen)
        n = buflen - 1;
    memcpy(buf, url, n);
    buf[n] = '\0';
}

static CURLcode perform_once(casb_http_client *c, const char *method, const char *url,
                             struct curl_slist *headers, const char *body, size_t body_len,
                             growbuf *rbody, growbuf *rhead)
{
    CURL *h = c->curl;

    /* reset keeps the connection cache, so keep-alive connections are reused. */
    curl_easy_reset(h);
    c->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding curl can decode */
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* endpoints are allow-listed */
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->opts.max_body_bytes);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rbody);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rhead);
    if (c->resolve)
        curl_easy_setopt(h, CURLOPT_RESOLVE, c->resolve);
    if (c->opts.cancel) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "POST") == 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        }
    }
    return curl_easy_perform(h);
}

int casb_http_request(casb_http_client *c, casb_http_response **out, const char *method,
                      const char *url, const char *const *headers, const char *body,
                      size_t body_len, char *err, size_t errlen)
{
    struct curl_slist *hl = NULL;
    growbuf rbody = {0};
    growbuf rhead = {0};
    casb_http_response *resp = NULL;
    char logurl[256];
    long retry_waits = 0;
    int rc = -1;

    *out = NULL;
    if (!c || !method || !url)
        return casb_fail(err, errlen, CASB_EINVALID, "http request: missing argument");
    loggable_url(url, logurl, sizeof(logurl));
    for (const char *const *hp = headers; hp && *hp; hp++) {
        struct curl_slist *n = curl_slist_append(hl, *hp);

        if (!n) {
            casb_fail(err, errlen, CASB_ERROR, "http request: out of memory");
            goto out;
        }
        hl = n;
    }
    if (body) {
        /* No 100-continue round trip before sending a body. */
        struct curl_slist *n = curl_slist_append(hl, "Expect:");

        if (!n) {
            casb_fail(err, errlen, CASB_ERROR, "http request: out of memory");
            goto out;
        }
        hl = n;
    }
    rbody.max = c->opts.max_body_bytes;
    rhead.max = MAX_HEADER_BYTES;
    /* Two budgets: failures (network errors, 5xx) are retried max_retries times; rate
     * limits are waited out for up to rate_limit_budget_s in total. */
    int failures = 0;
    int limited_waits = 0;
    long long limited_wait_ms = 0;
    const long long limit_budget_ms = (long long)c->opts.rate_limit_budget_s * 1000;

    for (;;) {
        CURLcode cc;
        long long wait_ms;
        int limited = 0;
        char status[16];
        char waitbuf[32];

        if (cancelled(c)) {
            casb_fail(err, errlen, CASB_EUNAVAILABLE, "%s %s: cancelled", method, logurl);
            goto out;
        }
        growbuf_reset(&rbody);
        growbuf_reset(&rhead);
        rbody.too_large = 0;
        rhead.too_large = 0;
        cc = perform_once(c, method, url, hl, body, body_len, &rbody, &rhead);
        c->stats.requests++;
        count_status_class(c, cc);
        if (cc != CURLE_OK) {
            if (rbody.too_large || cc == CURLE_FILESIZE_EXCEEDED) {
                casb_fail(err, errlen, CASB_ERROR, "%s %s: response body larger than %zu bytes",
                          method, logurl, c->opts.max_body_bytes);
                goto out;
            }
            if (cc == CURLE_ABORTED_BY_CALLBACK || cancelled(c)) {
                casb_fail(err, errlen, CASB_EUNAVAILABLE, "%s %s: cancelled", method, logurl);
                goto out;
            }
            if (!retryable_curl_error(cc) || failures >= c->opts.max_retries) {
                casb_fail(err, errlen, CASB_EUNAVAILABLE, "%s %s: %s", method, logurl,
                          c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
                goto out;
            }
            wait_ms = backoff_ms(c, failures);
            failures++;
            snprintf(status, sizeof(status), "%s", "network");
        } else {
            long code = 0;
            long ra;
            int from_reset = 0;

            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
            resp = calloc(1, sizeof(*resp));
            if (!resp) {
                casb_fail(err, errlen, CASB_ERROR, "http request: out of memory");
                goto out;
            }
            resp->status = code;
            resp->headers = rhead.text.data ? rhead.text.data : strdup("");
            resp->body = rbody.text.data ? rbody.text.data : strdup("");
            resp->body_len = rbody.text.len;
            memset(&rhead.text, 0, sizeof(rhead.text)); /* handed over */
            memset(&rbody.text, 0, sizeof(rbody.text));
            if (!resp->headers || !resp->body) {
                casb_fail(err, errlen, CASB_ERROR, "http request: out of memory");
                goto out;
            }
            limited = rate_limited(resp);
            ra = retry_after(resp, (long)time(NULL), &from_reset);
            if (ra >= 0)
                wait_ms = (long long)ra * 1000 + (from_reset ? RESET_MARGIN_MS : 0);
            else
                wait_ms = backoff_ms(c, limited ? limited_waits : failures);
            if (wait_ms > (long long)c->opts.max_wait_s * 1000)
                wait_ms = (long long)c->opts.max_wait_s * 1000;
            if (!retryable_status(resp) ||
                (limited && limited_wait_ms + wait_ms > limit_budget_ms) ||
                (!limited && failures >= c->opts.max_retries)) {
                resp->retry_waits = retry_waits;
                *out = resp;
                resp = NULL;
                rc = 0;
                goto out;
            }
            if (limited) {
                limited_waits++;
                limited_wait_ms += wait_ms;
            } else {
                failures++;
            }
            snprintf(status, sizeof(status), "%ld", code);
            casb_http_response_free(resp);
            resp = NULL;
        }
        if (wait_ms > (long long)c->opts.max_wait_s * 1000)
            wait_ms = (long long)c->opts.max_wait_s * 1000;
        c->stats.retries++;
        if (limited)
            c->stats.rate_limit_waits++;
        retry_waits++;
        snprintf(waitbuf, sizeof(waitbuf), "%lld", wait_ms);
        casb_log_info("http retry", "method", method, "url", logurl, "status", status,
                      "wait_ms", waitbuf);
        if (sleep_cancellable(c, wait_ms) != 0) {
            casb_fail(err, errlen, CASB_EUNAVAILABLE, "%s %s: cancelled", method, logurl);
            goto out;
        }
    }
out:
    curl_slist_free_all(hl);
    casb_text_free(&rbody.text);
    casb_text_free(&rhead.text);
    casb_http_response_free(resp);
    return rc;
}
