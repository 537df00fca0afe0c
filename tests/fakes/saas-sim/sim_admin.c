/* The loopback admin API under /_sim: replace and patch tenants, switch faults, read stats,
 * revoke OAuth grants.
 * No auth: it is a test tool bound to 127.0.0.1. Errors are problem+json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "sim.h"

/* Parses the request body as JSON whatever its Content-Type (curl -d sends a form type).
 * On failure the 400 is already sent and NULL returned. */
json_t *sim_admin_body_json(casb_http_req *r)
{
    size_t len = 0;
    const char *raw = casb_http_body(r, &len);
    char err[256];
    json_t *v;

    if (!raw || len == 0) {
        casb_http_reply_problem(r, 400, "a JSON body is required", NULL);
        return NULL;
    }
    v = casb_json_parse(raw, len, 64, err, sizeof err);
    if (!v)
        casb_http_reply_problem(r, 400, err, NULL);
    return v;
}

/* Tenant documents carry credentials: answers leave "auth" out. */
static json_t *redacted(const json_t *doc)
{
    json_t *copy = json_deep_copy(doc);

    json_object_del(copy, "auth");
    return copy;
}

int sim_admin_reply_rc(casb_http_req *r, int rc, const char *err)
{
    if (rc == CASB_ENOTFOUND)
        return casb_http_reply_problem(r, 404, err, NULL);
    if (rc == CASB_EINVALID)
        return casb_http_reply_problem(r, 400, err, NULL);
    return casb_http_reply_problem(r, 500, err, NULL);
}

static int h_health(casb_http_req *r)
{
    return casb_http_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}

static int h_list(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    json_t *logins = json_array();

    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->norgs; i++)
        json_array_append_new(logins, json_string(s->orgs[i]->login));
    pthread_rwlock_unlock(&s->lock);
    return casb_http_reply_json(r, 200, json_pack("{s:o}", "orgs", logins));
}

static int h_get(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    sim_org *o;
    json_t *doc = NULL;

    pthread_rwlock_rdlock(&s->lock);
    o = sim_org_find(s, casb_http_param(r, "org"));
    if (o)
        doc = redacted(o->doc);
    pthread_rwlock_unlock(&s->lock);
    if (!doc)
        return casb_http_reply_problem(r, 404, "no such org", NULL);
    return casb_http_reply_json(r, 200, doc);
}

static int h_put(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    const char *login = casb_http_param(r, "org");
    json_t *doc = sim_admin_body_json(r);
    char err[256];
    int created = 0, rc;

    if (!doc)
        return 400;
    rc = sim_org_put(s, login, doc, &created, err, sizeof err);
    if (rc != 0)
        return sim_admin_reply_rc(r, rc, err);
    casb_log_info(created ? "org created" : "org replaced", "org", login);
    return casb_http_reply_json(r, created ? 201 : 200,
                                json_pack("{s:s, s:b}", "login", login, "created", created));
}

static int h_patch(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    const char *login = casb_http_param(r, "org");
    const char *repo = casb_http_param(r, "name");
    json_t *patch = sim_admin_body_json(r), *result = NULL, *out;
    char err[256];
    int rc;

    if (!patch)
        return 400;
    rc = sim_org_patch(s, login, repo, patch, &result, err, sizeof err);
    json_decref(patch);
    if (rc != 0)
        return sim_admin_reply_rc(r, rc, err);
    casb_log_info(repo ? "repo patched" : "org patched", "org", login, "repo", repo);
    out = repo ? json_incref(result) : redacted(result);
    json_decref(result);
    return casb_http_reply_json(r, 200, out);
}

static int h_delete(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    const char *login = casb_http_param(r, "org");

    if (sim_org_delete(s, login) != 0)
        return casb_http_reply_problem(r, 404, "no such org", NULL);
    casb_log_info("org deleted", "org", login);
    return casb_http_reply_json(r, 204, NULL);
}

static int h_fault_add(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    const char *login = casb_http_param(r, "org");
    json_t *body = sim_admin_body_json(r), *out = NULL;
    sim_fault *f = NULL;
    sim_org *o;
    char err[256];

    if (!body)
        return 400;
    if (sim_fault_parse(&f, body, err, sizeof err) != 0) {
        json_decref(body);
        return casb_http_reply_problem(r, 400, err, NULL);
    }
    json_decref(body);
    pthread_rwlock_rdlock(&s->lock);
    o = sim_org_find(s, login);
    if (o) {
        pthread_mutex_lock(&s->mu);
        sim_faults_add(o, f);
        out = sim_fault_json(f);
        pthread_mutex_unlock(&s->mu);
        f = NULL;
    }
    pthread_rwlock_unlock(&s->lock);
    sim_fault_free(f);
    if (!out)
        return casb_http_reply_problem(r, 404, "no such org", NULL);
    casb_log_info("fault added", "org", login, "mode", casb_json_str(out, "mode"));
    return casb_http_reply_json(r, 201, out);
}

static int h_fault_list(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    json_t *list = NULL;
    sim_org *o;

    pthread_rwlock_rdlock(&s->lock);
    o = sim_org_find(s, casb_http_param(r, "org"));
    if (o) {
        list = json_array();
        pthread_mutex_lock(&s->mu);
        for (const sim_fault *f = o->faults; f; f = f->next)
            json_array_append_new(list, sim_fault_json(f));
        pthread_mutex_unlock(&s->mu);
    }
    pthread_rwlock_unlock(&s->lock);
    if (!list)
        return casb_http_reply_problem(r, 404, "no such org", NULL);
    return casb_http_reply_json(r, 200, json_pack("{s:o}", "faults", list));
}

static int h_fault_clear(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    const char *login = casb_http_param(r, "org");
    sim_org *o;
    int found = 0;

    pthread_rwlock_rdlock(&s->lock);
    o = sim_org_find(s, login);
    if (o) {
        pthread_mutex_lock(&s->mu);
        sim_faults_clear(o);
        /* A cleared org draws the same sequence again: reruns of a test see the same faults. */
        o->prng = sim_prng_seed_for(s->seed, o->login);
        pthread_mutex_unlock(&s->mu);
        found = 1;
    }
    pthread_rwlock_unlock(&s->lock);
    if (!found)
        return casb_http_reply_problem(r, 404, "no such org", NULL);
    casb_log_info("faults cleared", "org", login);
    return casb_http_reply_json(r, 204, NULL);
}

/* Answers one org's counters, read under mu by view. */
static int reply_org_counters(casb_http_req *r, json_t *(*view)(sim *, const sim_org *))
{
    sim *s = casb_http_app(r);
    json_t *counters = NULL;
    sim_org *o;

    pthread_rwlock_rdlock(&s->lock);
    o = sim_org_find(s, casb_http_param(r, "org"));
    if (o) {
        pthread_mutex_lock(&s->mu);
        counters = view(s, o);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_rwlock_unlock(&s->lock);
    if (!counters)
        return casb_http_reply_problem(r, 404, "no such org", NULL);
    return casb_http_reply_json(r, 200, counters);
}

static json_t *request_counters(sim *s, const sim_org *o)
{
    (void)s;
    return sim_stats_json(o);
}

static int h_stats(casb_http_req *r)
{
    return reply_org_counters(r, request_counters);
}

static int h_stats_reset(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    sim_org *o;
    int found = 0;

    pthread_rwlock_rdlock(&s->lock);
    o = sim_org_find(s, casb_http_param(r, "org"));
    if (o) {
        pthread_mutex_lock(&s->mu);
        sim_stats_reset(o);
        pthread_mutex_unlock(&s->mu);
        found = 1;
    }
    pthread_rwlock_unlock(&s->lock);
    if (!found)
        return casb_http_reply_problem(r, 404, "no such org", NULL);
    return casb_http_reply_json(r, 204, NULL);
}

/* The org's admin removed the app's authorization: every user access and refresh token of
 * the org stops working at once (the next API call answers 401, a refresh is refused). */
static int h_oauth_revoke(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    const char *login = casb_http_param(r, "org");
    long long access = 0, refresh = 0;
    sim_org *o;
    int found = 0;

    pthread_rwlock_rdlock(&s->lock);
    o = sim_org_find(s, login);
    if (o) {
        pthread_mutex_lock(&s->mu);
        sim_oauth_revoke(s, o->login, &access, &refresh);
        pthread_mutex_unlock(&s->mu);
        found = 1;
    }
    pthread_rwlock_unlock(&s->lock);
    if (!found)
        return casb_http_reply_problem(r, 404, "no such org", NULL);
    casb_log_info("oauth tokens revoked", "org", login);
    return casb_http_reply_json(r, 200, json_pack("{s:I, s:I}", "revoked_access_tokens",
                                                  (json_int_t)access, "revoked_refresh_tokens",
                                                  (json_int_t)refresh));
}

static int h_oauth_stats(casb_http_req *r)
{
    return reply_org_counters(r, sim_oauth_stats_json);
}

static int h_latency_get(casb_http_req *r)
{
    sim *s = casb_http_app(r);

    return casb_http_reply_json(r, 200,
                                json_pack("{s:I}", "ms", (json_int_t)atomic_load(&s->latency_ms)));
}

/* {"ms": n}: every later provider request is held n ms before its answer (0 turns it off). */
static int h_latency_put(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    json_t *body = sim_admin_body_json(r);
    json_t *ms;
    char text[24];

    if (!body)
        return 400;
    ms = json_object_get(body, "ms");
    if (!json_is_integer(ms) || json_integer_value(ms) < 0 ||
        json_integer_value(ms) > SIM_MAX_LATENCY_MS) {
        json_decref(body);
        return casb_http_reply_problem(r, 400, "ms must be an integer in [0, 10000]", NULL);
    }
    atomic_store(&s->latency_ms, (long)json_integer_value(ms));
    snprintf(text, sizeof text, "%lld", (long long)json_integer_value(ms));
    json_decref(body);
    casb_log_info("latency set", "ms", text);
    return h_latency_get(r);
}

int sim_admin_routes(sim *s, casb_http_server *http)
{
    static const sim_route routes[] = {
        {"GET", "/_sim/health", h_health},
        {"GET", "/_sim/orgs", h_list},
        {"GET", "/_sim/orgs/{org}", h_get},
        {"PUT", "/_sim/orgs/{org}", h_put},
        {"PATCH", "/_sim/orgs/{org}", h_patch},
        {"DELETE", "/_sim/orgs/{org}", h_delete},
        {"PATCH", "/_sim/orgs/{org}/repos/{name}", h_patch},
        {"POST", "/_sim/orgs/{org}/faults", h_fault_add},
        {"GET", "/_sim/orgs/{org}/faults", h_fault_list},
        {"DELETE", "/_sim/orgs/{org}/faults", h_fault_clear},
        {"GET", "/_sim/orgs/{org}/stats", h_stats},
        {"POST", "/_sim/orgs/{org}/stats/reset", h_stats_reset},
        {"POST", "/_sim/orgs/{org}/oauth/revoke", h_oauth_revoke},
        {"GET", "/_sim/orgs/{org}/oauth", h_oauth_stats},
        {"GET", "/_sim/latency", h_latency_get},
        {"PUT", "/_sim/latency", h_latency_put},
    };

    (void)s;
    return sim_routes_register(http, routes, sizeof routes / sizeof routes[0]);
}
