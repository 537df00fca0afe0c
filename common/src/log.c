#include "casb/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/timeutil.h"

/* Set once by casb_log_init, read by every thread; the mutex keeps lines whole and makes
 * the init visible to threads started later. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_service[64] = "casb";
static int log_min_level = CASB_LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void casb_log_init(const char *service, int min_level)
{
    if (min_level < CASB_LOG_DEBUG)
        min_level = CASB_LOG_DEBUG;
    if (min_level > CASB_LOG_ERROR)
        min_level = CASB_LOG_ERROR;
    pthread_mutex_lock(&log_mu);
    if (service && service[0])
        snprintf(log_service, sizeof(log_service), "%s", service);
    log_min_level = min_level;
    pthread_mutex_unlock(&log_mu);
}

int casb_log_level_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = CASB_LOG_DEBUG; i <= CASB_LOG_ERROR; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return CASB_LOG_WARN;
    return -1;
}

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} linebuf;

static void buf_put(linebuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;

        while (b->len + n + 1 > cap)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(linebuf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0 when the bytes there are not one. */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* Writes s as a JSON string literal. Invalid UTF-8 becomes U+FFFD so that one bad byte
 * from a provider cannot make the whole line unparseable. */
static void buf_put_json_string(linebuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    buf_put(b, "\"", 1);
    while (*p) {
        size_t n;
        char esc[8];

        switch (*p) {
        case '"':
            buf_put(b, "\\\"", 2);
            p++;
            continue;
        case '\\':
            buf_put(b, "\\\\", 2);
            p++;
            continue;
        case '\n':
            buf_put(b, "\\n", 2);
            p++;
            continue;
        case '\r':
            buf_put(b, "\\r", 2);
            p++;
            continue;
        case '\t':
            buf_put(b, "\\t", 2);
            p++;
            continue;
        default:
            break;
        }
        if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            buf_put(b, esc, 6);
            p++;
            continue;
        }
        n = utf8_seq_len(p);
        if (n == 0) {
            buf_put(b, "\\ufffd", 6);
            p++;
            continue;
        }
        buf_put(b, (const char *)p, n);
        p += n;
    }
    buf_put(b, "\"", 1);
}

static void buf_put_pair(linebuf *b, const char *key, const char *value)
{
    buf_put(b, ",", 1);
    buf_put_json_string(b, key);
    buf_put(b, ":", 1);
    if (value)
        buf_put_json_string(b, value);
    else
        buf_put(b, "null", 4);
}

void casb_log(int level, const char *msg, ...)
{
    linebuf b = {0};
    char ts[40];
    char service[sizeof(log_service)];
    int min_level;
    va_list ap;

    if (level < CASB_LOG_DEBUG)
        level = CASB_LOG_DEBUG;
    if (level > CASB_LOG_ERROR)
        level = CASB_LOG_ERROR;

    pthread_mutex_lock(&log_mu);
    min_level = log_min_level;
    memcpy(service, log_service, sizeof(service));
    pthread_mutex_unlock(&log_mu);
    if (level < min_level)
        return;

    casb_time_rfc3339_ms(ts, sizeof(ts), casb_now_ms());
    buf_puts(&b, "{\"ts\":");
    buf_put_json_string(&b, ts);
    buf_puts(&b, ",\"level\":");
    buf_put_json_string(&b, level_names[level]);
    buf_puts(&b, ",\"service\":");
    buf_put_json_string(&b, service);
    buf_puts(&b, ",\"msg\":");
    buf_put_json_string(&b, msg ? msg : "");

    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        const char *value;

        if (!key)
            break;
        value = va_arg(ap, const char *);
        buf_put_pair(&b, key, value);
    }
    va_end(ap);
    buf_puts(&b, "}\n");

    if (!b.oom) {
        /* One write per line under the lock: lines from different threads never interleave. */
        pthread_mutex_lock(&log_mu);
        fwrite(b.p, 1, b.len, stderr);
        fflush(stderr);
        pthread_mutex_unlock(&log_mu);
    }
    free(b.p);
}
