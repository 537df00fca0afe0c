#include "fa_summary.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/metrics.h"
#include "fa_store.h"
#include "fa_views.h"

/* Long enough for an account id (a UUID) and for an xid8 as text (20 digits). */
#define FA_SUMMARY_KEY_MAX 40

struct fa_summary {
    atomic_int refs;
    char account_id[FA_SUMMARY_KEY_MAX];
    char version[FA_SUMMARY_KEY_MAX]; /* "": the account had no summary version yet */
    unsigned long long served_at;     /* the cache's clock when last served (LRU) */
    size_t len;
    char *json; /* malloc'ed */
};

/* A render in progress. Requests that find the account at the same version wait for it
 * rather than render too: after a change, every dashboard polling the account would
 * otherwise render it at once (64 clients: 64 scans of the same findings). */
typedef struct flight {
    struct flight *next;
    char account_id[FA_SUMMARY_KEY_MAX];
    char version[FA_SUMMARY_KEY_MAX];
    int done;
    int waiters;
    fa_summary *result; /* a reference of the flight's own; NULL: the render failed */
} flight;

struct fa_summary_cache {
    pthread_mutex_t lock;
    pthread_cond_t landed; /* a flight is done */
    size_t max_bytes, bytes;
    size_t n, cap;
    unsigned long long clock;
    fa_summary **entries;
    flight *flights;
};

static casb_metric *m_served[2];

static void metrics_init(void)
{
    static const char help[] = "Summaries served: rendered for the request, or from the cache "
                               "(kept, or rendered meanwhile for another request).";

    m_served[0] = casb_metrics_counter("casb_summary_requests_total", help, "source=\"cache\"");
    m_served[1] = casb_metrics_counter("casb_summary_requests_total", help,
                                       "source=\"rendered\"");
}

static void count_served(int rendered)
{
    if (m_served[rendered])
        casb_metric_add(m_served[rendered], 1);
}

fa_summary_cache *fa_summary_cache_new(size_t max_accounts, size_t max_bytes)
{
    fa_summary_cache *c = calloc(1, sizeof(*c));

    if (!c || max_accounts == 0)
        goto fail;
    c->entries = calloc(max_accounts, sizeof(*c->entries));
    if (!c->entries || pthread_mutex_init(&c->lock, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&c->landed, NULL) != 0) {
        pthread_mutex_destroy(&c->lock);
        goto fail;
    }
    c->cap = max_accounts;
    c->max_bytes = max_bytes;
    metrics_init();
    return c;
fail:
    if (c)
        free(c->entries);
    free(c);
    return NULL;
}

void fa_summary_release(fa_summary *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        free(s->json);
        free(s);
    }
}

static void drop_flight_locked(fa_summary_cache *c, flight *f)
{
    flight **p = &c->flights;

    while (*p != f)
        p = &(*p)->next;
    *p = f->next;
    fa_summary_release(f->result);
    free(f);
}

void fa_summary_cache_free(fa_summary_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        fa_summary_release(c->entries[i]);
    while (c->flights) /* none once the HTTP threads have stopped */
        drop_flight_locked(c, c->flights);
    pthread_cond_destroy(&c->landed);
    pthread_mutex_destroy(&c->lock);
    free(c->entries);
    free(c);
}

const char *fa_summary_json(const fa_summary *s, size_t *len)
{
    *len = s->len;
    return s->json;
}

/* Index of the account's entry, or -1. Under the lock. */
static long find_locked(const fa_summary_cache *c, const char *account_id)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i]->account_id, account_id) == 0)
            return (long)i;
    return -1;
}

static void remove_locked(fa_summary_cache *c, size_t i)
{
    c->bytes -= c->entries[i]->len;
    fa_summary_release(c->entries[i]);
    c->entries[i] = c->entries[--c->n];
}

static void evict_least_recent_locked(fa_summary_cache *c)
{
    size_t oldest = 0;

    for (size_t i = 1; i < c->n; i++)
        if (c->entries[i]->served_at < c->entries[oldest]->served_at)
            oldest = i;
    remove_locked(c, oldest);
}

/* Keeps s (a reference of its own) in place of the account's entry. Two renders of one
 * account at different versions may land in either order; the older one kept makes the
 * next request render again: wasted work, never a stale summary, since every entry is
 * checked against the version read from the database. */
static void keep_locked(fa_summary_cache *c, fa_summary *s)
{
    long i;

    if (s->len > c->max_bytes)
        return;
    i = find_locked(c, s->account_id);
    if (i >= 0)
        remove_locked(c, (size_t)i);
    while (c->n > 0 && (c->n == c->cap || c->bytes + s->len > c->max_bytes))
        evict_least_recent_locked(c);
    atomic_fetch_add(&s->refs, 1);
    s->served_at = ++c->clock;
    c->entries[c->n++] = s;
    c->bytes += s->len;
}

static flight *find_flight_locked(const fa_summary_cache *c, const char *account_id,
                                  const char *version)
{
    for (flight *f = c->flights; f; f = f->next)
        if (!f->done && strcmp(f->account_id, account_id) == 0 &&
            strcmp(f->version, version) == 0)
            return f;
    return NULL;
}

/* Waits for f to land; a new reference to its result, or NULL if its render failed. */
static fa_summary *wait_for_locked(fa_summary_cache *c, flight *f)
{
    fa_summary *s;

    f->waiters++;
    while (!f->done)
        pthread_cond_wait(&c->landed, &c->lock);
    s = f->result;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    if (--f->waiters == 0)
        drop_flight_locked(c, f);
    return s;
}

/* The account's summary at version: the kept one, or the one a render in progress for
 * that version lands. NULL when the caller is to render it: then *leading is the flight
 * it leads (to land with land()), or NULL when out of memory (render without one). */
static fa_summary *lookup(fa_summary_cache *c, const char *account_id, const char *version,
                          flight **leading)
{
    fa_summary *s = NULL;
    flight *f;
    long i;

    *leading = NULL;
    pthread_mutex_lock(&c->lock);
    i = find_locked(c, account_id);
    if (i >= 0 && strcmp(c->entries[i]->version, version) == 0) {
        s = c->entries[i];
        s->served_at = ++c->clock;
        atomic_fetch_add(&s->refs, 1);
    } else if ((f = find_flight_locked(c, account_id, version)) != NULL) {
        s = wait_for_locked(c, f);
    } else if ((f = calloc(1, sizeof(*f))) != NULL) {
        snprintf(f->account_id, sizeof(f->account_id), "%s", account_id);
        snprintf(f->version, sizeof(f->version), "%s", version);
        f->next = c->flights;
        c->flights = f;
        *leading = f;
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* Keeps what the flight f rendered (s, NULL if it failed) and wakes its waiters. */
static void land(fa_summary_cache *c, flight *f, fa_summary *s)
{
    pthread_mutex_lock(&c->lock);
    if (s) {
        keep_locked(c, s);
        atomic_fetch_add(&s->refs, 1);
    }
    f->result = s;
    f->done = 1;
    if (f->waiters == 0)
        drop_flight_locked(c, f);
    else
        pthread_cond_broadcast(&c->landed);
    pthread_mutex_unlock(&c->lock);
}

/* The version as text into out ("" without a row); -1 with err. */
static int read_version(casb_db *db, const char *account_id, char out[FA_SUMMARY_KEY_MAX],
                        char *err, size_t errlen)
{
    PGresult *res = fa_store_summary_version(db, account_id, err, errlen);
    const char *v;

    if (!res)
        return -1;
    v = PQntuples(res) == 1 ? casb_db_get(res, 0, "version") : "";
    if (!v || strlen(v) >= FA_SUMMARY_KEY_MAX) {
        PQclear(res);
        casb_fail(err, errlen, CASB_ERROR, "unexpected summary version");
        return -1;
    }
    strcpy(out, v);
    PQclear(res);
    return 0;
}

/* Renders the account's summary as it is now: not older than version, which was read
 * before. */
static fa_summary *render(casb_db *db, const char *account_id, const char *version,
                          const fa_catalogue *cat, char *err, size_t errlen)
{
    PGresult *counts = NULL, *integrations = NULL;
    fa_summary *s = NULL;
    json_t *body = NULL;

    counts = fa_store_summary_counts(db, account_id, err, errlen);
    if (counts)
        integrations = fa_store_summary_integrations(db, account_id, err, errlen);
    if (!counts || !integrations)
        goto out;
    body = fa_view_summary(counts, integrations, cat);
    s = body ? calloc(1, sizeof(*s)) : NULL;
    if (s)
        s->json = casb_json_dump(body);
    if (!s || !s->json) {
        free(s);
        s = NULL;
        casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    atomic_init(&s->refs, 1);
    snprintf(s->account_id, sizeof(s->account_id), "%s", account_id);
    snprintf(s->version, sizeof(s->version), "%s", version);
    s->len = strlen(s->json);
out:
    json_decref(body);
    PQclear(counts);
    PQclear(integrations);
    return s;
}

fa_summary *fa_summary_get(fa_summary_cache *cache, casb_db *db, const char *account_id,
                           const fa_catalogue *cat, char *err, size_t errlen)
{
    char version[FA_SUMMARY_KEY_MAX] = "";
    int cacheable = cache && strlen(account_id) < FA_SUMMARY_KEY_MAX;
    flight *leading = NULL;
    fa_summary *s;

    if (cacheable) {
        if (read_version(db, account_id, version, err, errlen) != 0)
            return NULL;
        s = lookup(cache, account_id, version, &leading);
        if (s) {
            count_served(0);
            return s;
        }
    }
    /* Rendered by this request: it leads a flight, or the flight it waited for failed. */
    s = render(db, account_id, version, cat, err, errlen);
    if (leading)
        land(cache, leading, s);
    if (s)
        count_served(1);
    return s;
}
