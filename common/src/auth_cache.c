#include "casb/auth_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/error.h"
#include "casb/log.h"
#include "casb/metrics.h"
#include "casb/timeutil.h"

/* 256 sets of 4: a digest's set is its first byte, and SHA-256 spreads tokens evenly. */
#define SETS 256
#define WAYS 4
#define CHANNEL "casb_api_tokens" /* migration 0015 */
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 5000

typedef struct {
    char digest[65]; /* "" when free */
    casb_principal who;
    long long expires_at; /* seconds since 1970; 0: never */
    int64_t stored_ms;    /* monotonic */
} entry;

struct casb_auth_cache {
    pthread_mutex_t mu;
    entry sets[SETS][WAYS];
    /* Moves on every notification and every connection or loss of it; a ticket is its value
     * (casb_auth_cache_ticket). Never 0 while listening. */
    unsigned long long generation;
    int listening;
    char *url;
    pthread_t thread;
    int thread_started;
    int wake[2]; /* a byte written to wake[1] ends the listener's wait */
    atomic_int stopping;
    casb_metric *hits, *misses, *connected;
};

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The set of a hex digest, or NULL for anything that is not one. */
static entry *set_of(casb_auth_cache *c, const char *digest)
{
    int hi = hex_digit(digest[0]), lo = hi < 0 ? -1 : hex_digit(digest[1]);

    if (lo < 0 || strlen(digest) != 64)
        return NULL;
    return c->sets[hi * 16 + lo];
}

static void forget_all_locked(casb_auth_cache *c)
{
    casb_secret_wipe(c->sets, sizeof(c->sets));
    c->generation++;
}

void casb_auth_cache_clear(casb_auth_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    forget_all_locked(c);
    pthread_mutex_unlock(&c->mu);
}

int casb_auth_cache_get(casb_auth_cache *c, const char *digest, casb_principal *who)
{
    entry *set = c ? set_of(c, digest) : NULL;
    int64_t now_ms = casb_monotonic_ms();
    time_t now = time(NULL);
    int found = 0;

    if (!set)
        return 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; c->listening && i < WAYS && !found; i++) {
        const entry *e = &set[i];

        if (!e->digest[0] || now_ms - e->stored_ms >= CASB_AUTH_CACHE_TTL_S * 1000LL ||
            (e->expires_at && (long long)now >= e->expires_at))
            continue;
        /* Constant time, as the database's answer is compared (auth.c). */
        if (casb_secure_equal(e->digest, digest)) {
            *who = e->who;
            found = 1;
        }
    }
    pthread_mutex_unlock(&c->mu);
    casb_metric_add(found ? c->hits : c->misses, 1);
    return found;
}

unsigned long long casb_auth_cache_ticket(casb_auth_cache *c)
{
    unsigned long long ticket = 0;

    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    if (c->listening)
        ticket = c->generation;
    pthread_mutex_unlock(&c->mu);
    return ticket;
}

void casb_auth_cache_put(casb_auth_cache *c, unsigned long long ticket, const char *digest,
                         const casb_principal *who, long long expires_at)
{
    entry *set = c ? set_of(c, digest) : NULL;
    entry *slot;

    if (!set || ticket == 0)
        return;
    pthread_mutex_lock(&c->mu);
    if (c->listening && ticket == c->generation) {
        /* The same token again (two requests raced to the database), a free way, or the
         * oldest. */
        slot = &set[0];
        for (int i = 0; i < WAYS; i++) {
            if (strcmp(set[i].digest, digest) == 0 || !set[i].digest[0]) {
                slot = &set[i];
                break;
            }
            if (set[i].stored_ms < slot->stored_ms)
                slot = &set[i];
        }
        memcpy(slot->digest, digest, sizeof(slot->digest));
        slot->who = *who;
        slot->expires_at = expires_at;
        slot->stored_ms = casb_monotonic_ms();
    }
    pthread_mutex_unlock(&c->mu);
}

int casb_auth_cache_listening(casb_auth_cache *c)
{
    int on;

    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    on = c->listening;
    pthread_mutex_unlock(&c->mu);
    return on;
}

/* ---- the listener ---- */

static void set_listening(casb_auth_cache *c, int on)
{
    pthread_mutex_lock(&c->mu);
    c->listening = on;
    forget_all_locked(c);
    pthread_mutex_unlock(&c->mu);
    casb_metric_set(c->connected, on);
}

/* Waits up to ms for input on fd (-1: none, just the wait). 1: readable, 0: time is up,
 * -1: stopping. */
static int wait_input(casb_auth_cache *c, int fd, int ms)
{
    struct pollfd p[2] = {{c->wake[0], POLLIN, 0}, {fd, POLLIN, 0}};
    int n = poll(p, fd >= 0 ? 2 : 1, ms);

    if (atomic_load(&c->stopping))
        return -1;
    if (n < 0 && errno != EINTR)
        return -1;
    return n > 0 && fd >= 0 && p[1].revents ? 1 : 0;
}

static casb_db *connect_and_listen(casb_auth_cache *c, char *err, size_t errlen)
{
    casb_db *db = NULL;

    if (casb_db_open(&db, c->url, 0, err, errlen) != 0)
        return NULL;
    /* Notifications of transactions that commit from here on are delivered; those committed
     * before are not, which is why everything stored before is forgotten now. */
    if (casb_db_exec(db, "LISTEN " CHANNEL, 0, NULL, NULL, err, errlen) != 0) {
        casb_db_close(db);
        return NULL;
    }
    set_listening(c, 1);
    return db;
}

/* Reads what arrived. 0, or -1 when the connection is gone (closed, or the backend ended). */
static int take_notifications(casb_auth_cache *c, PGconn *conn)
{
    PGnotify *n;
    int notified = 0;

    if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
        return -1;
    while ((n = PQnotifies(conn)) != NULL) {
        notified = 1;
        PQfreemem(n);
    }
    if (notified)
        casb_auth_cache_clear(c);
    return 0;
}

/* A network that dies without a word (no close, no reset) is not seen here until TCP gives
 * up; entries stored meanwhile still expire CASB_AUTH_CACHE_TTL_S after they were. */
static void *listen_loop(void *arg)
{
    casb_auth_cache *c = arg;
    casb_db *db = NULL;
    PGconn *conn = NULL; /* db's, taken once: casb_db_conn checks its plan mode */
    int retry_ms = RETRY_MIN_MS, warned = 0;
    char err[256];

    while (!atomic_load(&c->stopping)) {
        int r;

        if (!db) {
            db = connect_and_listen(c, err, sizeof(err));
            if (!db) {
                if (!warned++)
                    casb_log_warn("token cache: cannot listen for token changes; every "
                                  "token is checked in the database until it can",
                                  "error", err);
                if (wait_input(c, -1, retry_ms) < 0)
                    break;
                retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
                continue;
            }
            conn = casb_db_conn(db);
            casb_log_info("token cache: listening for token changes");
            retry_ms = RETRY_MIN_MS;
            warned = 0;
        }
        r = wait_input(c, PQsocket(conn), 60000);
        if (r < 0)
            break;
        if (r == 0 || take_notifications(c, conn) == 0)
            continue;
        set_listening(c, 0);
        casb_log_warn("token cache: lost its connection; every token is checked in the "
                      "database until it is back");
        casb_db_close(db);
        db = NULL;
    }
    casb_db_close(db);
    return NULL;
}

int casb_auth_cache_new(casb_auth_cache **out, const char *database_url, char *err,
                        size_t errlen)
{
    casb_auth_cache *c;

    *out = NULL;
    if (!database_url || !*database_url)
        return casb_fail(err, errlen, CASB_EINVALID, "token cache: no database URL");
    c = calloc(1, sizeof(*c));
    if (!c || !(c->url = strdup(database_url))) {
        free(c);
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    pthread_mutex_init(&c->mu, NULL);
    c->generation = 1;
    c->wake[0] = c->wake[1] = -1;
    c->hits = casb_metrics_counter("casb_auth_token_cache_total",
                                   "Token checks, by whether the token cache answered.",
                                   "result=\"hit\"");
    c->misses = casb_metrics_counter("casb_auth_token_cache_total",
                                     "Token checks, by whether the token cache answered.",
                                     "result=\"miss\"");
    c->connected = casb_metrics_gauge("casb_auth_token_cache_listening",
                                      "1 while the token cache hears of token changes.", NULL);
    if (pipe2(c->wake, O_CLOEXEC) != 0 ||
        pthread_create(&c->thread, NULL, listen_loop, c) != 0) {
        casb_auth_cache_free(c);
        return casb_fail(err, errlen, CASB_ERROR, "token cache: cannot start its listener");
    }
    c->thread_started = 1;
    *out = c;
    return 0;
}

void casb_auth_cache_free(casb_auth_cache *c)
{
    if (!c)
        return;
    atomic_store(&c->stopping, 1);
    if (c->thread_started) {
        if (write(c->wake[1], "x", 1) < 0) {
            /* An empty pipe has room: this does not fail. */
        }
        pthread_join(c->thread, NULL);
    }
    if (c->wake[0] >= 0)
        close(c->wake[0]);
    if (c->wake[1] >= 0)
        close(c->wake[1]);
    casb_metric_set(c->connected, 0);
    pthread_mutex_destroy(&c->mu);
    casb_secret_wipe(c->sets, sizeof(c->sets));
    free(c->url);
    free(c);
}
