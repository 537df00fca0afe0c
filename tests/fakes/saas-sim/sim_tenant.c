/* The org store: tenant documents by login, their validation, and RFC 7386 merge patch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "sim.h"

#define TENANT_MAX_BYTES (64u * 1024u * 1024u)

/* RFC 7386 section 2, applied in place to *target (which this function owns). */
static json_t *merge_into(json_t *target, const json_t *patch)
{
    const char *key;
    json_t *value;

    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (!target)
            return NULL;
    }
    /* json_object_foreach wants a non-const object; the patch is only read. */
    json_object_foreach((json_t *)patch, key, value) {
        if (json_is_null(value)) {
            json_object_del(target, key);
            continue;
        }
        json_t *cur = json_object_get(target, key);
        json_t *merged = merge_into(cur ? json_incref(cur) : NULL, value);
        if (!merged || json_object_set_new(target, key, merged) != 0) {
            json_decref(target);
            return NULL;
        }
    }
    return target;
}

json_t *sim_merge_patch(const json_t *target, const json_t *patch)
{
    json_t *copy = target ? json_deep_copy(target) : NULL;

    return merge_into(copy, patch);
}

/* FNV-1a, so that entities without an explicit id still get a stable one across runs. */
long long sim_fallback_id(const char *s, long long base)
{
    uint64_t h = 1469598103934665603ull;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return base + (long long)(h % 9000000ull);
}

static int check_people(const json_t *doc, const char *field, char *err, size_t errlen)
{
    json_t *arr = json_object_get(doc, field);
    size_t i;
    json_t *p;

    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return casb_fail(err, errlen, CASB_EINVALID, "%s must be an array", field);
    json_array_foreach(arr, i, p) {
        if (!json_is_object(p) || !json_is_string(json_object_get(p, "login")))
            return casb_fail(err, errlen, CASB_EINVALID, "%s[%zu] needs a string login", field, i);
        json_t *id = json_object_get(p, "id");
        if (id && !json_is_integer(id))
            return casb_fail(err, errlen, CASB_EINVALID, "%s[%zu].id must be an integer", field, i);
    }
    return 0;
}

static int check_object_array(const json_t *parent, const char *field, const char *where,
                              char *err, size_t errlen)
{
    json_t *arr = json_object_get(parent, field);
    size_t i;
    json_t *v;

    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return casb_fail(err, errlen, CASB_EINVALID, "%s%s must be an array", where, field);
    json_array_foreach(arr, i, v) {
        if (!json_is_object(v))
            return casb_fail(err, errlen, CASB_EINVALID, "%s%s[%zu] must be an object", where,
                             field, i);
        json_t *id = json_object_get(v, "id");
        if (id && !json_is_integer(id))
            return casb_fail(err, errlen, CASB_EINVALID, "%s%s[%zu].id must be an integer",
                             where, field, i);
    }
    return 0;
}

static int check_repo(const json_t *repo, size_t i, char *err, size_t errlen)
{
    char where[96];
    json_t *bp;

    if (!json_is_object(repo) || !json_is_string(json_object_get(repo, "name")))
        return casb_fail(err, errlen, CASB_EINVALID, "repos[%zu] needs a string name", i);
    const char *name = json_string_value(json_object_get(repo, "name"));
    if (name[0] == '\0' || strchr(name, '/'))
        return casb_fail(err, errlen, CASB_EINVALID, "repos[%zu].name is not a repository name", i);
    if (json_object_get(repo, "id") && !json_is_integer(json_object_get(repo, "id")))
        return casb_fail(err, errlen, CASB_EINVALID, "repos[%zu].id must be an integer", i);
    bp = json_object_get(repo, "branch_protection");
    if (bp && !json_is_null(bp) && !json_is_object(bp))
        return casb_fail(err, errlen, CASB_EINVALID,
                         "repos[%zu].branch_protection must be an object or null", i);
    snprintf(where, sizeof where, "repos[%zu].", i);
    if (check_object_array(repo, "deploy_keys", where, err, errlen) != 0 ||
        check_object_array(repo, "hooks", where, err, errlen) != 0 ||
        check_object_array(repo, "collaborators", where, err, errlen) != 0)
        return CASB_EINVALID;
    return 0;
}

static int check_auth(const json_t *doc, char *err, size_t errlen)
{
    json_t *auth = json_object_get(doc, "auth");
    json_t *tokens, *app, *v;
    size_t i;

    if (!auth)
        return 0;
    if (!json_is_object(auth))
        return casb_fail(err, errlen, CASB_EINVALID, "auth must be an object");
    tokens = json_object_get(auth, "tokens");
    if (tokens && !json_is_array(tokens))
        return casb_fail(err, errlen, CASB_EINVALID, "auth.tokens must be an array of strings");
    json_array_foreach(tokens, i, v) {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return casb_fail(err, errlen, CASB_EINVALID, "auth.tokens[%zu] must be a non-empty string", i);
    }
    v = json_object_get(auth, "oauth");
    if (v && !json_is_null(v) && sim_oauth_validate(v, err, errlen) != 0)
        return CASB_EINVALID;
    app = json_object_get(auth, "app");
    if (!app || json_is_null(app))
        return 0;
    if (!json_is_object(app) || !json_is_integer(json_object_get(app, "app_id")) ||
        !json_is_integer(json_object_get(app, "installation_id")))
        return casb_fail(err, errlen, CASB_EINVALID,
                         "auth.app needs integer app_id and installation_id");
    v = json_object_get(app, "public_key_pem");
    if (v && !json_is_string(v))
        return casb_fail(err, errlen, CASB_EINVALID, "auth.app.public_key_pem must be a string");
    return 0;
}

int sim_tenant_validate(const json_t *doc, const char *login, char *err, size_t errlen)
{
    json_t *v, *repos, *repo;
    size_t i;

    if (!json_is_object(doc))
        return casb_fail(err, errlen, CASB_EINVALID, "a tenant document is a JSON object");
    v = json_object_get(doc, "login");
    if (!json_is_string(v) || json_string_length(v) == 0)
        return casb_fail(err, errlen, CASB_EINVALID, "login must be a non-empty string");
    if (strchr(json_string_value(v), '/'))
        return casb_fail(err, errlen, CASB_EINVALID, "login must not contain '/'");
    if (login && strcmp(json_string_value(v), login) != 0)
        return casb_fail(err, errlen, CASB_EINVALID, "login \"%s\" does not match the URL's org",
                         json_string_value(v));
    if (check_auth(doc, err, errlen) != 0)
        return CASB_EINVALID;
    v = json_object_get(doc, "rate_limit");
    if (v && !json_is_object(v))
        return casb_fail(err, errlen, CASB_EINVALID, "rate_limit must be an object");
    if (v && json_object_get(v, "limit") && !json_is_integer(json_object_get(v, "limit")))
        return casb_fail(err, errlen, CASB_EINVALID, "rate_limit.limit must be an integer");
    if (v && json_object_get(v, "window_s") &&
        (!json_is_integer(json_object_get(v, "window_s")) ||
         json_integer_value(json_object_get(v, "window_s")) < 1))
        return casb_fail(err, errlen, CASB_EINVALID, "rate_limit.window_s must be a positive integer");
    v = json_object_get(doc, "org");
    if (v && !json_is_object(v))
        return casb_fail(err, errlen, CASB_EINVALID, "org must be an object");
    if (check_people(doc, "members", err, errlen) != 0 ||
        check_people(doc, "outside_collaborators", err, errlen) != 0 ||
        check_object_array(doc, "hooks", "", err, errlen) != 0 ||
        check_object_array(doc, "installations", "", err, errlen) != 0)
        return CASB_EINVALID;
    repos = json_object_get(doc, "repos");
    if (repos && !json_is_array(repos))
        return casb_fail(err, errlen, CASB_EINVALID, "repos must be an array");
    json_array_foreach(repos, i, repo) {
        if (check_repo(repo, i, err, errlen) != 0)
            return CASB_EINVALID;
        /* Names are the lookup key of every /repos/{owner}/{repo} route. */
        for (size_t j = 0; j < i; j++) {
            const char *a = json_string_value(json_object_get(json_array_get(repos, j), "name"));
            if (strcmp(a, json_string_value(json_object_get(repo, "name"))) == 0)
                return casb_fail(err, errlen, CASB_EINVALID, "repos[%zu].name \"%s\" is a duplicate",
                                 i, a);
        }
    }
    return 0;
}

sim_org *sim_org_find(sim *s, const char *login)
{
    for (size_t i = 0; i < s->norgs; i++) {
        /* GitHub logins are case-insensitive. */
        if (strcasecmp(s->orgs[i]->login, login) == 0)
            return s->orgs[i];
    }
    return NULL;
}

sim_org *sim_org_by_installation(sim *s, long long installation_id)
{
    for (size_t i = 0; i < s->norgs; i++) {
        json_t *app = casb_json_path(s->orgs[i]->doc, "auth.app");
        if (app && casb_json_int(app, "installation_id", -1) == installation_id)
            return s->orgs[i];
    }
    return NULL;
}

json_t *sim_org_repo(const sim_org *o, const char *name)
{
    json_t *repos = json_object_get(o->doc, "repos");
    size_t i;
    json_t *r;

    json_array_foreach(repos, i, r) {
        const char *n = casb_json_str(r, "name");
        if (n && strcasecmp(n, name) == 0)
            return r;
    }
    return NULL;
}

long long sim_org_id(const sim_org *o)
{
    json_t *org = json_object_get(o->doc, "org");

    return casb_json_int(org, "id", sim_fallback_id(o->login, 1000000));
}

static void org_free(sim_org *o)
{
    if (!o)
        return;
    free(o->login);
    json_decref(o->doc);
    json_decref(o->by_endpoint);
    sim_faults_clear(o);
    free(o);
}

static sim_org *org_new(sim *s, const char *login, json_t *doc)
{
    sim_org *o = calloc(1, sizeof *o);

    if (!o)
        return NULL;
    o->login = strdup(login);
    o->by_endpoint = json_object();
    if (!o->login || !o->by_endpoint) {
        json_decref(doc);
        org_free(o);
        return NULL;
    }
    o->doc = doc;
    o->next_fault_id = 1;
    o->prng = sim_prng_seed_for(s->seed, login);
    return o;
}

/* A document without a login takes the URL's; one with another login is refused. */
int sim_org_put(sim *s, const char *login, json_t *doc, int *created, char *err, size_t errlen)
{
    sim_org *o;
    int rc = -1;

    *created = 0;
    if (json_is_object(doc) && !json_object_get(doc, "login"))
        json_object_set_new(doc, "login", json_string(login));
    if (sim_tenant_validate(doc, login, err, errlen) != 0) {
        json_decref(doc);
        return CASB_EINVALID;
    }
    pthread_rwlock_wrlock(&s->lock);
    if (sim_oauth_client_conflict(s, login, doc, err, errlen) != 0) {
        json_decref(doc);
        rc = CASB_EINVALID;
        goto out;
    }
    o = sim_org_find(s, login);
    if (o) {
        /* Replacing keeps counters and faults: a test swaps settings mid-run without
         * losing what it measures. The rate budget restarts with the new limit. */
        json_decref(o->doc);
        o->doc = doc;
        pthread_mutex_lock(&s->mu);
        sim_rate_reset(o);
        pthread_mutex_unlock(&s->mu);
        rc = 0;
        goto out;
    }
    if (s->norgs == s->orgs_cap) {
        size_t cap = s->orgs_cap ? s->orgs_cap * 2 : 8;
        sim_org **grown = realloc(s->orgs, cap * sizeof *grown);
        if (!grown) {
            json_decref(doc);
            rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
            goto out;
        }
        s->orgs = grown;
        s->orgs_cap = cap;
    }
    o = org_new(s, json_string_value(json_object_get(doc, "login")), doc);
    if (!o) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    s->orgs[s->norgs++] = o;
    *created = 1;
    rc = 0;
out:
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

int sim_org_patch(sim *s, const char *login, const char *repo, const json_t *patch,
                  json_t **result, char *err, size_t errlen)
{
    sim_org *o;
    json_t *patched = NULL;
    int rc = -1;

    *result = NULL;
    if (!json_is_object(patch))
        return casb_fail(err, errlen, CASB_EINVALID, "a merge patch here is a JSON object");
    pthread_rwlock_wrlock(&s->lock);
    o = sim_org_find(s, login);
    if (!o) {
        rc = casb_fail(err, errlen, CASB_ENOTFOUND, "no org \"%s\"", login);
        goto out;
    }
    if (repo) {
        json_t *target = sim_org_repo(o, repo);
        if (!target) {
            rc = casb_fail(err, errlen, CASB_ENOTFOUND, "no repo \"%s/%s\"", login, repo);
            goto out;
        }
        json_t *merged = sim_merge_patch(target, patch);
        if (!json_is_object(merged) ||
            strcmp(casb_json_str(merged, "name") ? casb_json_str(merged, "name") : "",
                   json_string_value(json_object_get(target, "name"))) != 0) {
            json_decref(merged);
            rc = casb_fail(err, errlen, CASB_EINVALID, "a repo patch cannot rename or remove the repo");
            goto out;
        }
        /* Validate the whole document with the new repo in place before committing. */
        patched = json_deep_copy(o->doc);
        json_t *repos = json_object_get(patched, "repos");
        size_t i;
        json_t *r;
        json_array_foreach(repos, i, r) {
            if (strcasecmp(casb_json_str(r, "name"), repo) == 0) {
                json_array_set(repos, i, merged);
                break;
            }
        }
        *result = merged;
    } else {
        patched = sim_merge_patch(o->doc, patch);
    }
    if (!patched) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    if (sim_tenant_validate(patched, o->login, err, errlen) != 0 ||
        sim_oauth_client_conflict(s, o->login, patched, err, errlen) != 0) {
        rc = CASB_EINVALID;
        goto out;
    }
    if (!repo)
        *result = json_incref(patched);
    json_decref(o->doc);
    o->doc = patched;
    patched = NULL;
    if (!repo && json_object_get(patch, "rate_limit")) {
        pthread_mutex_lock(&s->mu);
        sim_rate_reset(o);
        pthread_mutex_unlock(&s->mu);
    }
    rc = 0;
out:
    pthread_rwlock_unlock(&s->lock);
    json_decref(patched);
    if (rc != 0) {
        json_decref(*result);
        *result = NULL;
    }
    return rc;
}

int sim_org_delete(sim *s, const char *login)
{
    int rc = CASB_ENOTFOUND;

    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->norgs; i++) {
        if (strcasecmp(s->orgs[i]->login, login) != 0)
            continue;
        pthread_mutex_lock(&s->mu);
        /* Its OAuth codes and tokens go with it: an org created again later under the same
         * login does not inherit them. */
        sim_oauth_forget(s, s->orgs[i]->login);
        org_free(s->orgs[i]);
        pthread_mutex_unlock(&s->mu);
        memmove(&s->orgs[i], &s->orgs[i + 1], (s->norgs - i - 1) * sizeof *s->orgs);
        s->norgs--;
        rc = 0;
        break;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (!f) {
        casb_fail(err, errlen, CASB_ERROR, "cannot open %s", path);
        return NULL;
    }
    for (;;) {
        if (n + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *grown = realloc(buf, ncap);
            if (!grown || ncap > TENANT_MAX_BYTES) {
                free(grown ? grown : buf);
                fclose(f);
                casb_fail(err, errlen, CASB_ERROR, "%s is too large", path);
                return NULL;
            }
            buf = grown;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        casb_fail(err, errlen, CASB_ERROR, "cannot read %s", path);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int load_one(sim *s, const char *path, json_t *doc, char *err, size_t errlen)
{
    const char *login = casb_json_str(doc, "login");
    const char *kind = casb_json_str(doc, "kind");
    char why[256];
    int created;

    if (kind && strcmp(kind, "google_workspace") == 0) {
        if (sim_google_load(s, doc, why, sizeof why) != 0)
            return casb_fail(err, errlen, CASB_EINVALID, "%s: %s", path, why);
        casb_log_info("tenant loaded", "customer", casb_json_str(doc, "customer_id"), "file", path);
        return 0;
    }
    if (!login)
        return casb_fail(err, errlen, CASB_EINVALID, "%s: a tenant document needs a login", path);
    if (sim_org_put(s, login, json_incref(doc), &created, why, sizeof why) != 0)
        return casb_fail(err, errlen, CASB_EINVALID, "%s: %s", path, why);
    casb_log_info("tenant loaded", "org", login, "file", path);
    return 0;
}

int sim_tenant_load_file(sim *s, const char *path, char *err, size_t errlen)
{
    char why[256];
    size_t len = 0;
    char *buf = read_file(path, &len, err, errlen);
    json_t *root;
    int rc = 0;

    if (!buf)
        return CASB_ERROR;
    root = casb_json_parse(buf, len, 0, why, sizeof why);
    free(buf);
    if (!root)
        return casb_fail(err, errlen, CASB_EINVALID, "%s: %s", path, why);
    if (json_is_array(root)) {
        size_t i;
        json_t *doc;
        json_array_foreach(root, i, doc) {
            rc = load_one(s, path, doc, err, errlen);
            if (rc != 0)
                break;
        }
    } else {
        rc = load_one(s, path, root, err, errlen);
    }
    json_decref(root);
    return rc;
}
