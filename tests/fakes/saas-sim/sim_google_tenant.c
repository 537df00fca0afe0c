/* Google Workspace tenants: the store by customer_id, validation, and the model of users and
 * files that hides which ones are stored in the document and which are generated.
 *
 * A "generate" block adds users computed on the fly (never stored): generated user g and its
 * file j are pure functions of (seed, g, j), with the rules of tenants/README.md, so that a
 * tenant of 50,000 users and 1,000,000 files costs no memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/timeutil.h"
#include "sim_google.h"

#define GEN_MAX_USERS 10000000LL
#define GEN_MAX_FILES_PER_USER 100000LL
#define GEN_DEFAULT_SUPER_ADMINS 2
#define GEN_APP_CLIENT "sim-generated-app.apps.googleusercontent.com"

/* ---------- validation ---------- */

static int check_array(const json_t *parent, const char *key, const char *where, char *err,
                       size_t errlen)
{
    json_t *arr = json_object_get(parent, key);
    size_t i;
    json_t *v;

    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return casb_fail(err, errlen, CASB_EINVALID, "%s%s must be an array", where, key);
    json_array_foreach(arr, i, v) {
        if (!json_is_object(v))
            return casb_fail(err, errlen, CASB_EINVALID, "%s%s[%zu] must be an object", where,
                             key, i);
    }
    return 0;
}

static int check_user(const json_t *u, size_t i, char *err, size_t errlen)
{
    char where[48];
    json_t *files, *f;
    size_t j;

    if (!json_is_object(u) || !json_is_string(json_object_get(u, "primaryEmail")) ||
        !strchr(json_string_value(json_object_get(u, "primaryEmail")), '@'))
        return casb_fail(err, errlen, CASB_EINVALID, "users[%zu] needs a primaryEmail", i);
    snprintf(where, sizeof where, "users[%zu].", i);
    if (check_array(u, "tokens", where, err, errlen) != 0 ||
        check_array(u, "delegates", where, err, errlen) != 0 ||
        check_array(u, "calendar_acl", where, err, errlen) != 0 ||
        check_array(u, "files", where, err, errlen) != 0)
        return CASB_EINVALID;
    files = json_object_get(u, "files");
    json_array_foreach(files, j, f) {
        if (!json_is_string(json_object_get(f, "id")))
            return casb_fail(err, errlen, CASB_EINVALID, "%sfiles[%zu] needs a string id", where, j);
        if (check_array(f, "permissions", where, err, errlen) != 0)
            return CASB_EINVALID;
    }
    return 0;
}

static int check_drives(const json_t *doc, char *err, size_t errlen)
{
    json_t *drives = json_object_get(doc, "shared_drives"), *d;
    size_t i;

    if (check_array(doc, "shared_drives", "", err, errlen) != 0)
        return CASB_EINVALID;
    json_array_foreach(drives, i, d) {
        if (!json_is_string(json_object_get(d, "id")) || !json_is_string(json_object_get(d, "name")))
            return casb_fail(err, errlen, CASB_EINVALID, "shared_drives[%zu] needs string id and name", i);
        if (check_array(d, "permissions", "shared_drives[].", err, errlen) != 0 ||
            check_array(d, "files", "shared_drives[].", err, errlen) != 0)
            return CASB_EINVALID;
    }
    return 0;
}

static int check_dns(const json_t *doc, char *err, size_t errlen)
{
    json_t *dns = json_object_get(doc, "dns"), *v, *s;
    const char *name;
    size_t i;

    if (!dns)
        return 0;
    if (!json_is_object(dns))
        return casb_fail(err, errlen, CASB_EINVALID, "dns must be an object");
    json_object_foreach(dns, name, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), "SERVFAIL") == 0)
            continue;
        if (!json_is_array(v))
            return casb_fail(err, errlen, CASB_EINVALID,
                             "dns[\"%s\"] must be an array of strings or \"SERVFAIL\"", name);
        json_array_foreach(v, i, s) {
            if (!json_is_string(s))
                return casb_fail(err, errlen, CASB_EINVALID, "dns[\"%s\"][%zu] must be a string",
                                 name, i);
        }
    }
    return 0;
}

static int check_generate(const json_t *doc, char *err, size_t errlen)
{
    json_t *g = json_object_get(doc, "generate");

    if (!g)
        return 0;
    if (!json_is_object(g))
        return casb_fail(err, errlen, CASB_EINVALID, "generate must be an object");
    if (casb_json_int(g, "users", 0) < 0 || casb_json_int(g, "users", 0) > GEN_MAX_USERS ||
        casb_json_int(g, "files_per_user", 0) < 0 ||
        casb_json_int(g, "files_per_user", 0) > GEN_MAX_FILES_PER_USER ||
        casb_json_int(g, "super_admins", 0) < 0)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "generate.users must be in [0, %lld], files_per_user in [0, %lld]",
                         GEN_MAX_USERS, GEN_MAX_FILES_PER_USER);
    return 0;
}

static int check_service_account(const json_t *doc, char *err, size_t errlen)
{
    json_t *sa = json_object_get(doc, "service_account"), *scopes, *v;
    size_t i;

    if (!json_is_object(sa) || !json_is_string(json_object_get(sa, "client_email")))
        return casb_fail(err, errlen, CASB_EINVALID, "service_account.client_email is required");
    v = json_object_get(sa, "public_key_pem");
    if (v && !json_is_string(v))
        return casb_fail(err, errlen, CASB_EINVALID, "service_account.public_key_pem must be a string");
    v = json_object_get(sa, "revoked");
    if (v && !json_is_boolean(v))
        return casb_fail(err, errlen, CASB_EINVALID, "service_account.revoked must be a boolean");
    scopes = json_object_get(sa, "scopes");
    if (scopes && !json_is_array(scopes))
        return casb_fail(err, errlen, CASB_EINVALID, "service_account.scopes must be an array");
    json_array_foreach(scopes, i, v) {
        if (!json_is_string(v))
            return casb_fail(err, errlen, CASB_EINVALID, "service_account.scopes[%zu] must be a string", i);
    }
    return 0;
}

int sim_gtenant_validate(const json_t *doc, const char *customer_id, char *err, size_t errlen)
{
    json_t *v, *users, *u;
    size_t i;

    if (!json_is_object(doc))
        return casb_fail(err, errlen, CASB_EINVALID, "a tenant document is a JSON object");
    v = json_object_get(doc, "customer_id");
    if (!json_is_string(v) || json_string_length(v) == 0 || strchr(json_string_value(v), '/'))
        return casb_fail(err, errlen, CASB_EINVALID, "customer_id must be a non-empty string without '/'");
    if (customer_id && strcmp(json_string_value(v), customer_id) != 0)
        return casb_fail(err, errlen, CASB_EINVALID, "customer_id \"%s\" does not match the URL's",
                         json_string_value(v));
    if (check_service_account(doc, err, errlen) != 0 || check_dns(doc, err, errlen) != 0 ||
        check_generate(doc, err, errlen) != 0 || check_drives(doc, err, errlen) != 0 ||
        check_array(doc, "domains", "", err, errlen) != 0)
        return CASB_EINVALID;
    v = json_object_get(doc, "rate_limit");
    if (v && (!json_is_object(v) || casb_json_int(v, "limit", 0) < 0 ||
              casb_json_int(v, "window_s", 60) < 1))
        return casb_fail(err, errlen, CASB_EINVALID,
                         "rate_limit must be {\"limit\": n >= 0, \"window_s\": n >= 1}");
    users = json_object_get(doc, "users");
    if (users && !json_is_array(users))
        return casb_fail(err, errlen, CASB_EINVALID, "users must be an array");
    json_array_foreach(users, i, u) {
        if (check_user(u, i, err, errlen) != 0)
            return CASB_EINVALID;
    }
    return 0;
}

/* ---------- the store ---------- */

sim_gtenant *sim_gtenant_find(sim *s, const char *customer_id)
{
    for (size_t i = 0; customer_id && i < s->ngtenants; i++) {
        if (strcmp(s->gtenants[i]->o.login, customer_id) == 0)
            return s->gtenants[i];
    }
    return NULL;
}

sim_gtenant *sim_gtenant_by_client_email(sim *s, const char *client_email)
{
    for (size_t i = 0; client_email && i < s->ngtenants; i++) {
        const char *e = casb_json_str(json_object_get(s->gtenants[i]->o.doc, "service_account"),
                                      "client_email");
        if (e && strcasecmp(e, client_email) == 0)
            return s->gtenants[i];
    }
    return NULL;
}

static void gtenant_free(sim_gtenant *t)
{
    if (!t)
        return;
    free(t->o.login);
    json_decref(t->o.doc);
    json_decref(t->o.by_endpoint);
    sim_faults_clear(&t->o);
    free(t);
}

/* Recomputes what is derived from the document (caller holds the write lock). */
static void derive(sim_gtenant *t)
{
    json_t *doc = t->o.doc, *g = json_object_get(doc, "generate"), *domains, *d;
    size_t i;

    t->nexplicit = json_array_size(json_object_get(doc, "users"));
    t->ngenerated = casb_json_int(g, "users", 0);
    t->files_per_user = casb_json_int(g, "files_per_user", 0);
    t->gen_seed = (uint64_t)casb_json_int(g, "seed", 1);
    snprintf(t->primary, sizeof t->primary, "%s", "example.test");
    domains = json_object_get(doc, "domains");
    json_array_foreach(domains, i, d) {
        const char *name = casb_json_str(d, "domainName");
        if (name && (i == 0 || json_is_true(json_object_get(d, "isPrimary"))))
            snprintf(t->primary, sizeof t->primary, "%s", name);
    }
}

static int client_email_conflict(sim *s, const char *customer_id, const json_t *doc, char *err,
                                 size_t errlen)
{
    const char *email = casb_json_str(json_object_get(doc, "service_account"), "client_email");
    sim_gtenant *other = sim_gtenant_by_client_email(s, email);

    if (other && strcmp(other->o.login, customer_id) != 0)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "service_account.client_email \"%s\" is already customer %s's", email,
                         other->o.login);
    return 0;
}

int sim_gtenant_put(sim *s, const char *customer_id, json_t *doc, int *created, char *err,
                    size_t errlen)
{
    sim_gtenant *t;
    int rc = CASB_EINVALID;

    *created = 0;
    if (json_is_object(doc) && !json_object_get(doc, "customer_id"))
        json_object_set_new(doc, "customer_id", json_string(customer_id));
    if (json_is_object(doc) && !json_object_get(doc, "kind"))
        json_object_set_new(doc, "kind", json_string("google_workspace"));
    if (sim_gtenant_validate(doc, customer_id, err, errlen) != 0) {
        json_decref(doc);
        return CASB_EINVALID;
    }
    pthread_rwlock_wrlock(&s->lock);
    if (client_email_conflict(s, customer_id, doc, err, errlen) != 0)
        goto out;
    t = sim_gtenant_find(s, customer_id);
    if (t) {
        /* Replacing keeps counters, faults and the token secret: issued tokens stay valid. */
        json_decref(t->o.doc);
        t->o.doc = doc;
        doc = NULL;
        derive(t);
        pthread_mutex_lock(&s->mu);
        sim_rate_reset(&t->o);
        pthread_mutex_unlock(&s->mu);
        rc = 0;
        goto out;
    }
    if (s->ngtenants == s->gtenants_cap) {
        size_t cap = s->gtenants_cap ? s->gtenants_cap * 2 : 4;
        sim_gtenant **grown = realloc(s->gtenants, cap * sizeof *grown);
        if (!grown) {
            rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
            goto out;
        }
        s->gtenants = grown;
        s->gtenants_cap = cap;
    }
    t = calloc(1, sizeof *t);
    if (!t || !(t->o.login = strdup(customer_id)) || !(t->o.by_endpoint = json_object()) ||
        casb_random_bytes(t->secret, sizeof t->secret) != 0) {
        gtenant_free(t);
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory or no randomness");
        goto out;
    }
    t->o.doc = doc;
    doc = NULL;
    t->o.next_fault_id = 1;
    t->o.prng = sim_prng_seed_for(s->seed, customer_id);
    derive(t);
    s->gtenants[s->ngtenants++] = t;
    *created = 1;
    rc = 0;
out:
    pthread_rwlock_unlock(&s->lock);
    json_decref(doc);
    return rc;
}

int sim_google_load(sim *s, json_t *doc, char *err, size_t errlen)
{
    const char *cid = casb_json_str(doc, "customer_id");
    int created;

    if (!cid)
        return casb_fail(err, errlen, CASB_EINVALID, "a google_workspace tenant needs a customer_id");
    return sim_gtenant_put(s, cid, json_incref(doc), &created, err, errlen);
}

int sim_gtenant_patch(sim *s, const char *customer_id, const json_t *patch, json_t **result,
                      char *err, size_t errlen)
{
    sim_gtenant *t;
    json_t *patched = NULL;
    int rc;

    *result = NULL;
    if (!json_is_object(patch))
        return casb_fail(err, errlen, CASB_EINVALID, "a merge patch here is a JSON object");
    pthread_rwlock_wrlock(&s->lock);
    t = sim_gtenant_find(s, customer_id);
    if (!t) {
        rc = casb_fail(err, errlen, CASB_ENOTFOUND, "no Google customer \"%s\"", customer_id);
        goto out;
    }
    patched = sim_merge_patch(t->o.doc, patch);
    if (!patched) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    rc = sim_gtenant_validate(patched, customer_id, err, errlen);
    if (rc == 0)
        rc = client_email_conflict(s, customer_id, patched, err, errlen);
    if (rc != 0)
        goto out;
    json_decref(t->o.doc);
    t->o.doc = patched;
    *result = json_incref(patched);
    patched = NULL;
    derive(t);
    if (json_object_get(patch, "rate_limit")) {
        pthread_mutex_lock(&s->mu);
        sim_rate_reset(&t->o);
        pthread_mutex_unlock(&s->mu);
    }
out:
    pthread_rwlock_unlock(&s->lock);
    json_decref(patched);
    return rc;
}

int sim_gtenant_delete(sim *s, const char *customer_id)
{
    int rc = CASB_ENOTFOUND;

    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->ngtenants; i++) {
        if (strcmp(s->gtenants[i]->o.login, customer_id) != 0)
            continue;
        pthread_mutex_lock(&s->mu);
        gtenant_free(s->gtenants[i]);
        pthread_mutex_unlock(&s->mu);
        memmove(&s->gtenants[i], &s->gtenants[i + 1], (s->ngtenants - i - 1) * sizeof *s->gtenants);
        s->ngtenants--;
        rc = 0;
        break;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

void sim_google_free_all(sim *s)
{
    for (size_t i = 0; i < s->ngtenants; i++)
        gtenant_free(s->gtenants[i]);
    free(s->gtenants);
    s->gtenants = NULL;
    s->ngtenants = s->gtenants_cap = 0;
}

/* ---------- users and files ---------- */

const char *sim_google_time(const char *in, char *buf, size_t len)
{
    time_t at;
    struct tm tm;

    if (!sim_time_relative(in, &at))
        return in;
    gmtime_r(&at, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return buf;
}

long long sim_gtenant_nusers(const sim_gtenant *t)
{
    return (long long)t->nexplicit + t->ngenerated;
}

static void gen_email(const sim_gtenant *t, long long g, char *buf, size_t len)
{
    snprintf(buf, len, "user%lld@%s", g, t->primary);
}

/* Generated user g: see tenants/README.md for the rules (every 10th without 2SV, ...). */
static json_t *gen_user(const sim_gtenant *t, long long g)
{
    long long admins = casb_json_int(json_object_get(t->o.doc, "generate"), "super_admins",
                                     GEN_DEFAULT_SUPER_ADMINS);
    char email[192], other[192], id[40], name[64];
    json_t *u;

    gen_email(t, g, email, sizeof email);
    gen_email(t, (g + 1) % (t->ngenerated ? t->ngenerated : 1), other, sizeof other);
    snprintf(id, sizeof id, "9%05llu%014lld", (unsigned long long)(t->gen_seed % 100000), g);
    snprintf(name, sizeof name, "User %lld", g);
    u = json_pack("{s:s, s:s, s:{s:s}, s:b, s:b, s:b, s:b, s:b, s:s, s:s, s:b, s:[], s:[], s:[]}",
                  "id", id, "primaryEmail", email, "name", "fullName", name, "isAdmin",
                  g < admins, "isDelegatedAdmin", 0, "isEnrolledIn2Sv", g % 10 != 9,
                  "isEnforcedIn2Sv", 0, "suspended", g % 50 == 49, "lastLoginTime",
                  g % 20 == 18 ? "now-60d" : "now-1d", "creationTime", "2020-01-01T00:00:00.000Z",
                  "isMailboxSetup", 1, "tokens", "delegates", "calendar_acl");
    if (!u)
        return NULL;
    if (g % 4 != 3)
        json_object_set_new(u, "recoveryEmail", json_sprintf("recovery%lld@mail.test", g));
    if (g % 5 != 4)
        json_object_set_new(u, "recoveryPhone", json_sprintf("+1555%07lld", g % 10000000));
    if (g % 25 == 24)
        json_array_append_new(json_object_get(u, "tokens"),
                              json_pack("{s:s, s:s, s:[s], s:b, s:b}", "clientId", GEN_APP_CLIENT,
                                        "displayText", "Generated Drive App", "scopes",
                                        "https://www.googleapis.com/auth/drive.readonly",
                                        "anonymous", 0, "nativeApp", 0));
    if (g % 100 == 97)
        json_array_append_new(json_object_get(u, "delegates"),
                              json_pack("{s:s, s:s}", "delegateEmail", other,
                                        "verificationStatus", "accepted"));
    if (g % 100 == 98)
        json_array_append_new(json_object_get(u, "calendar_acl"),
                              json_pack("{s:s, s:s, s:{s:s}}", "id", "default", "role", "reader",
                                        "scope", "type", "default"));
    return u;
}

json_t *sim_gtenant_user(const sim_gtenant *t, long long index)
{
    if (index < 0 || index >= sim_gtenant_nusers(t))
        return NULL;
    if ((size_t)index < t->nexplicit)
        return json_incref(json_array_get(json_object_get(t->o.doc, "users"), (size_t)index));
    return gen_user(t, index - (long long)t->nexplicit);
}

/* The generated index named by "user<g>@<primary>" or the generated id, or -1. */
static long long gen_index(const sim_gtenant *t, const char *key)
{
    long long g = -1;
    char email[192], id[40];
    int used = 0;

    if (sscanf(key, "user%lld%n", &g, &used) == 1 && key[used] == '@') {
        gen_email(t, g, email, sizeof email);
        return g >= 0 && g < t->ngenerated && strcasecmp(email, key) == 0 ? g : -1;
    }
    if (key[0] == '9' && strlen(key) == 20) {
        g = strtoll(key + 6, NULL, 10);
        snprintf(id, sizeof id, "9%05llu%014lld", (unsigned long long)(t->gen_seed % 100000), g);
        return g >= 0 && g < t->ngenerated && strcmp(id, key) == 0 ? g : -1;
    }
    return -1;
}

long long sim_gtenant_user_find(const sim_gtenant *t, const char *key)
{
    json_t *users = json_object_get(t->o.doc, "users"), *u;
    long long g;
    size_t i;

    if (!key || !*key)
        return -1;
    json_array_foreach(users, i, u) {
        const char *email = casb_json_str(u, "primaryEmail"), *id = casb_json_str(u, "id");
        if ((email && strcasecmp(email, key) == 0) || (id && strcmp(id, key) == 0))
            return (long long)i;
    }
    g = gen_index(t, key);
    return g < 0 ? -1 : (long long)t->nexplicit + g;
}

long long sim_gtenant_nfiles(const sim_gtenant *t, long long user)
{
    if ((size_t)user < t->nexplicit) {
        json_t *u = json_array_get(json_object_get(t->o.doc, "users"), (size_t)user);
        return (long long)json_array_size(json_object_get(u, "files"));
    }
    return t->files_per_user;
}

/* Generated file j of generated user g. Sharing goes by (g, j) so that no suspended user
 * (g % 50 == 49) or user without 2SV (g % 10 == 9) owns a shared file: a test counts the
 * findings of each kind without excluding users the scan skips. */
static const struct {
    long long j, mod, rem;
    const char *type, *role;
} GEN_SHARES[] = {
    {0, 10, 0, "anyone", "reader"}, {1, 10, 1, "user", "reader"},
    {2, 10, 2, "domain", "reader"}, {3, 100, 3, "anyone", "writer"},
    {4, 100, 4, "user", "writer"},  {5, 100, 5, "domain", "writer"},
};

static json_t *gen_file(const sim_gtenant *t, long long g, long long j)
{
    json_t *perms = json_array();
    char id[64], name[64], ext[64];

    snprintf(id, sizeof id, "gf-%lld-%lld", g, j);
    snprintf(name, sizeof name, "file-%lld-%lld.txt", g, j);
    snprintf(ext, sizeof ext, "ext%lld@partner.test", g % 7);
    for (size_t i = 0; i < sizeof GEN_SHARES / sizeof GEN_SHARES[0]; i++) {
        json_t *p;
        if (GEN_SHARES[i].j != j || g % GEN_SHARES[i].mod != GEN_SHARES[i].rem)
            continue;
        p = json_pack("{s:s, s:s}", "type", GEN_SHARES[i].type, "role", GEN_SHARES[i].role);
        if (strcmp(GEN_SHARES[i].type, "user") == 0)
            json_object_set_new(p, "emailAddress", json_string(ext));
        else if (strcmp(GEN_SHARES[i].type, "domain") == 0)
            json_object_set_new(p, "domain", json_string(t->primary));
        /* Readers of the domain may find it by search; the others only by the link. */
        if (strcmp(GEN_SHARES[i].type, "user") != 0)
            json_object_set_new(p, "allowFileDiscovery",
                                json_boolean(strcmp(GEN_SHARES[i].type, "domain") == 0 &&
                                             strcmp(GEN_SHARES[i].role, "reader") == 0));
        json_array_append_new(perms, p);
    }
    return json_pack("{s:s, s:s, s:s, s:o}", "id", id, "name", name, "mimeType", "text/plain",
                     "permissions", perms);
}

json_t *sim_gtenant_file(const sim_gtenant *t, long long user, long long j)
{
    if (user < 0 || j < 0 || j >= sim_gtenant_nfiles(t, user))
        return NULL;
    if ((size_t)user < t->nexplicit) {
        json_t *u = json_array_get(json_object_get(t->o.doc, "users"), (size_t)user);
        return json_incref(json_array_get(json_object_get(u, "files"), (size_t)j));
    }
    return gen_file(t, user - (long long)t->nexplicit, j);
}

int sim_gtenant_file_find(const sim_gtenant *t, const char *id, long long *user, long long *j)
{
    json_t *users = json_object_get(t->o.doc, "users"), *u, *f;
    long long g, jj;
    int used = 0;
    size_t i, k;

    if (sscanf(id, "gf-%lld-%lld%n", &g, &jj, &used) == 2 && id[used] == '\0' && g >= 0 &&
        g < t->ngenerated && jj >= 0 && jj < t->files_per_user) {
        *user = (long long)t->nexplicit + g;
        *j = jj;
        return 0;
    }
    json_array_foreach(users, i, u) {
        json_array_foreach(json_object_get(u, "files"), k, f) {
            const char *fid = casb_json_str(f, "id");
            if (fid && strcmp(fid, id) == 0) {
                *user = (long long)i;
                *j = (long long)k;
                return 0;
            }
        }
    }
    return -1;
}

/* ---------- DNS ---------- */

int sim_google_dns_lookup(sim *s, const char *name, json_t **records)
{
    int rc = -1;

    *records = NULL;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; rc < 0 && i < s->ngtenants; i++) {
        json_t *dns = json_object_get(s->gtenants[i]->o.doc, "dns"), *v;
        const char *key;
        json_object_foreach(dns, key, v) {
            if (strcasecmp(key, name) != 0)
                continue;
            if (json_is_string(v)) {
                rc = 1;
            } else {
                *records = json_deep_copy(v);
                rc = *records ? 0 : 1;
            }
            break;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}
