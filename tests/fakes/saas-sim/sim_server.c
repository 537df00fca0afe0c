/* The simulator's lifecycle: state, the HTTP server, and shutdown that releases holds; and
 * the small helpers the GitHub and Google parts share (relative times, route patterns). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/timeutil.h"
#include "sim.h"

#define SIM_MAX_BODY_BYTES (32u * 1024u * 1024u) /* a PUT of a large generated tenant */
/* Each request held by the simulated latency (or a slow fault) keeps a thread, and each
 * keep-alive connection keeps one between its requests: enough for concurrent scanners. */
#define SIM_DEFAULT_THREADS 128
#define HOLD_STEP_MS 50

int sim_new(sim **out, const sim_opts *opts, char *err, size_t errlen)
{
    sim *s = calloc(1, sizeof *s);
    size_t n;

    *out = NULL;
    if (!s)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    pthread_rwlock_init(&s->lock, NULL);
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->stopping, 0);
    atomic_init(&s->request_seq, 0);
    atomic_init(&s->latency_ms, 0);
    s->addr = strdup(opts->addr ? opts->addr : "127.0.0.1:8090");
    n = strlen(s->addr ? s->addr : "") + sizeof "http://";
    s->default_base_url = malloc(n);
    if (!s->addr || !s->default_base_url)
        goto oom;
    snprintf(s->default_base_url, n, "http://%s", s->addr);
    if (opts->app_public_key_pem) {
        s->app_public_key_pem = strdup(opts->app_public_key_pem);
        if (!s->app_public_key_pem)
            goto oom;
    }
    if (opts->google_sa_public_key_pem) {
        s->google_sa_public_key_pem = strdup(opts->google_sa_public_key_pem);
        if (!s->google_sa_public_key_pem)
            goto oom;
    }
    if (opts->dns_addr) {
        s->dns_addr = strdup(opts->dns_addr);
        if (!s->dns_addr)
            goto oom;
    }
    s->seed = opts->seed;
    s->token_prng = opts->seed ^ 0x5ca1ab1edeadbeefull;
    s->num_threads = opts->num_threads > 0 ? opts->num_threads : SIM_DEFAULT_THREADS;
    *out = s;
    return 0;
oom:
    sim_free(s);
    return casb_fail(err, errlen, CASB_ERROR, "out of memory");
}

int sim_start(sim *s, char *err, size_t errlen)
{
    casb_http_server_opts o = {
        .addr = s->addr,
        .max_body_bytes = SIM_MAX_BODY_BYTES,
        .num_threads = s->num_threads,
        .auth = NULL, /* every route is public: the simulator checks GitHub credentials itself */
        .app = s,
    };

    if (casb_http_server_new(&s->http, &o, err, errlen) != 0)
        return CASB_ERROR;
    if (sim_github_routes(s, s->http) != 0 || sim_oauth_routes(s, s->http) != 0 ||
        sim_admin_routes(s, s->http) != 0 || sim_google_routes(s, s->http) != 0 ||
        sim_google_admin_routes(s, s->http) != 0)
        return casb_fail(err, errlen, CASB_ERROR, "cannot register the simulator's routes");
    if (s->dns_addr && sim_dns_start(s, err, errlen) != 0)
        return CASB_ERROR;
    return casb_http_server_start(s->http, err, errlen);
}

void sim_hold_ms(sim *s, long ms)
{
    int64_t deadline = casb_monotonic_ms() + ms;

    while (!atomic_load(&s->stopping)) {
        int64_t left = deadline - casb_monotonic_ms();
        if (left <= 0)
            break;
        casb_sleep_ms(left < HOLD_STEP_MS ? left : HOLD_STEP_MS);
    }
}

void sim_latency_hold(sim *s, long extra_ms)
{
    long ms = atomic_load(&s->latency_ms) + extra_ms;

    if (ms > 0)
        sim_hold_ms(s, ms);
}

void sim_free(sim *s)
{
    if (!s)
        return;
    /* Holding handlers (slow/timeout faults) see this and return, so that the server's
     * wait for in-flight requests ends promptly. */
    atomic_store(&s->stopping, 1);
    casb_http_server_free(s->http);
    sim_dns_stop(s);
    sim_google_free_all(s);
    while (s->norgs > 0)
        sim_org_delete(s, s->orgs[s->norgs - 1]->login);
    free(s->orgs);
    for (size_t i = 0; i < s->ntokens; i++)
        free(s->tokens[i].login);
    free(s->tokens);
    sim_oauth_free_all(s);
    free(s->addr);
    free(s->default_base_url);
    free(s->app_public_key_pem);
    free(s->google_sa_public_key_pem);
    free(s->dns_addr);
    pthread_mutex_destroy(&s->mu);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

int sim_time_relative(const char *in, time_t *at)
{
    long long n = 0, unit_s;
    char unit = 's';

    if (!in || strncmp(in, "now", 3) != 0)
        return 0;
    if (in[3] != '\0') {
        char *end = NULL;

        if (in[3] != '-')
            return 0;
        n = strtoll(in + 4, &end, 10);
        if (!end || end == in + 4 || n < 0 || (end[0] && end[1]))
            return 0;
        unit = end[0] ? end[0] : 's';
    }
    unit_s = unit == 'd' ? 86400 : unit == 'h' ? 3600 : unit == 'm' ? 60 : unit == 's' ? 1 : -1;
    if (unit_s < 0)
        return 0;
    *at = time(NULL) - (time_t)(n * unit_s);
    return 1;
}

int sim_path_matches(const char *pattern, const char *path)
{
    const char *p = pattern, *q = path;

    while (*p && *q) {
        if (*p == '{') {
            const char *close = strchr(p, '}');

            if (!close)
                return 0;
            p = close + 1;
            if (*q == '/')
                return 0; /* an empty segment does not match a parameter */
            while (*q && *q != '/')
                q++;
            continue;
        }
        if (*p != *q)
            return 0;
        p++;
        q++;
    }
    return *p == '\0' && *q == '\0';
}

int sim_routes_register(casb_http_server *http, const sim_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (casb_http_route(http, routes[i].method, routes[i].pattern, routes[i].handler,
                            CASB_ROUTE_PUBLIC) != 0)
            return -1;
    }
    return 0;
}
