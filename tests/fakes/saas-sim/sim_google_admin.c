/* The loopback admin API of Google tenants, under /_sim/google/{customer_id}: create or
 * replace (PUT), RFC 7386 merge patch (PATCH), DELETE, faults and stats, like the GitHub
 * org's under /_sim/orgs. Errors are problem+json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "sim_google.h"

#define CID "customer_id"

static int h_list(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    json_t *ids = json_array();

    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->ngtenants; i++)
        json_array_append_new(ids, json_string(s->gtenants[i]->o.login));
    pthread_rwlock_unlock(&s->lock);
    return casb_http_reply_json(r, 200, json_pack("{s:o}", "customers", ids));
}

static int h_get(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    sim_gtenant *t;
    json_t *doc = NULL;

    pthread_rwlock_rdlock(&s->lock);
    t = sim_gtenant_find(s, casb_http_param(r, CID));
    if (t)
        doc = json_deep_copy(t->o.doc);
    pthread_rwlock_unlock(&s->lock);
    if (!doc)
        return casb_http_reply_problem(r, 404, "no such Google customer", NULL);
    return casb_http_reply_json(r, 200, doc);
}

static int h_put(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    const char *cid = casb_http_param(r, CID);
    json_t *doc = sim_admin_body_json(r);
    char err[256];
    int created = 0, rc;

    if (!doc)
        return 400;
    rc = sim_gtenant_put(s, cid, doc, &created, err, sizeof err);
    if (rc != 0)
        return sim_admin_reply_rc(r, rc, err);
    casb_log_info(created ? "google tenant created" : "google tenant replaced", "customer", cid);
    return casb_http_reply_json(r, created ? 201 : 200,
                                json_pack("{s:s, s:b}", CID, cid, "created", created));
}

static int h_patch(casb_http_req *r)
{
    sim *s = casb_http_app(r);
    const char *cid = casb_http_param(r, CID);
    json_t *patch = sim_admin_body_json(r), *result = NULL;
    char err[256];
    int rc;

    if (!patch)
        return 400;
    rc = sim_gtenant_patch(s, cid, patch, &result, err, sizeof err);
    json_decref(patch);
    if (rc != 0)
        return sim_admin_reply_rc(r, rc, err);
    casb_log_info("google tenant patched", "customer", cid);
    return casb_http_reply_json(r, 200, result);
}

static int h_delete(casb_http_req *r)
{
    const char *cid = casb_http_param(r, CID);

    if (sim_gtenant_delete(casb_http_app(r), cid) != 0)
        return casb_http_reply_problem(r, 404, "no such Google customer", NULL);
    casb_log_info("google tenant deleted", "customer", cid);
    return casb_http_reply_json(r, 204, NULL);
}

/* Runs fn on the tenant under the read lock and mu; 404 when absent. fn answers. */
typedef json_t *(*tenant_fn)(sim *s, sim_gtenant *t, void *arg);

static int with_tenant(casb_http_req *r, tenant_fn fn, void *arg, int status)
{
    sim *s = casb_http_app(r);
    sim_gtenant *t;
    json_t *out = NULL;
    int found = 0;

    pthread_rwlock_rdlock(&s->lock);
    t = sim_gtenant_find(s, casb_http_param(r, CID));
    if (t) {
        pthread_mutex_lock(&s->mu);
        out = fn(s, t, arg);
        pthread_mutex_unlock(&s->mu);
        found = 1;
    }
    pthread_rwlock_unlock(&s->lock);
    if (!found)
        return casb_http_reply_problem(r, 404, "no such Google customer", NULL);
    return casb_http_reply_json(r, out ? status : 204, out);
}

static json_t *fault_add(sim *s, sim_gtenant *t, void *arg)
{
    sim_fault **f = arg;

    (void)s;
    sim_faults_add(&t->o, *f);
    json_t *out = sim_fault_json(*f);
    *f = NULL;
    return out;
}

static int h_fault_add(casb_http_req *r)
{
    json_t *body = sim_admin_body_json(r);
    sim_fault *f = NULL;
    char err[256];
    int rc;

    if (!body)
        return 400;
    if (sim_fault_parse(&f, body, err, sizeof err) != 0) {
        json_decref(body);
        return casb_http_reply_problem(r, 400, err, NULL);
    }
    json_decref(body);
    rc = with_tenant(r, fault_add, &f, 201);
    sim_fault_free(f);
    return rc;
}

static json_t *fault_list(sim *s, sim_gtenant *t, void *arg)
{
    json_t *list = json_array();

    (void)s;
    (void)arg;
    for (const sim_fault *f = t->o.faults; f; f = f->next)
        json_array_append_new(list, sim_fault_json(f));
    return json_pack("{s:o}", "faults", list);
}

static int h_fault_list(casb_http_req *r)
{
    return with_tenant(r, fault_list, NULL, 200);
}

static json_t *fault_clear(sim *s, sim_gtenant *t, void *arg)
{
    (void)arg;
    sim_faults_clear(&t->o);
    /* A cleared tenant draws the same sequence again: reruns see the same faults. */
    t->o.prng = sim_prng_seed_for(s->seed, t->o.login);
    return NULL;
}

static int h_fault_clear(casb_http_req *r)
{
    return with_tenant(r, fault_clear, NULL, 204);
}

static json_t *stats(sim *s, sim_gtenant *t, void *arg)
{
    json_t *out = sim_stats_json(&t->o);

    (void)s;
    (void)arg;
    json_object_set_new(out, "token_issues", json_integer(t->token_issues));
    return out;
}

static int h_stats(casb_http_req *r)
{
    return with_tenant(r, stats, NULL, 200);
}

static json_t *stats_reset(sim *s, sim_gtenant *t, void *arg)
{
    (void)s;
    (void)arg;
    sim_stats_reset(&t->o);
    sim_rate_reset(&t->o);
    t->token_issues = 0;
    return NULL;
}

static int h_stats_reset(casb_http_req *r)
{
    return with_tenant(r, stats_reset, NULL, 204);
}

int sim_google_admin_routes(sim *s, casb_http_server *http)
{
    static const sim_route routes[] = {
        {"GET", "/_sim/google", h_list},
        {"GET", "/_sim/google/{customer_id}", h_get},
        {"PUT", "/_sim/google/{customer_id}", h_put},
        {"PATCH", "/_sim/google/{customer_id}", h_patch},
        {"DELETE", "/_sim/google/{customer_id}", h_delete},
        {"POST", "/_sim/google/{customer_id}/faults", h_fault_add},
        {"GET", "/_sim/google/{customer_id}/faults", h_fault_list},
        {"DELETE", "/_sim/google/{customer_id}/faults", h_fault_clear},
        {"GET", "/_sim/google/{customer_id}/stats", h_stats},
        {"POST", "/_sim/google/{customer_id}/stats/reset", h_stats_reset},
    };

    (void)s;
    return sim_routes_register(http, routes, sizeof routes / sizeof routes[0]);
}
