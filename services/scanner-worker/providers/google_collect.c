/* The Google Workspace collectors. The main thread reads the domains (and their SPF and
 * DMARC records), pages through the users and checks each one, and hands each user to a
 * few worker threads through a bounded queue: a user's third-party tokens, Drive files,
 * calendar ACL and Gmail delegates are read there, each thread with its own HTTP client.
 * The shared drives follow, then the tenant-wide checks. Memory holds one page per thread
 * and the queue, never the tenant: users.list waits while the queue is full.
 *
 * The eval and the sink are not thread-safe: every check, skip and asset_seen runs under
 * the client's sink_mu, which also serializes the worker's wait_check (both renew the
 * scan's lease).
 *
 * Failures: a refused admin token (bad key, delegation revoked), users.list failing, the
 * sink refusing a finding, or a cancel stop the scan. Anything else that fails for one user
 * or one drive (after the HTTP client's retries and the quota waits) marks the checks it
 * feeds skipped, with the reason, and the scan goes on. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/dns.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "google_client.h"

#define DEFAULT_CONCURRENCY 8
#define MAX_CONCURRENCY 32
/* Users waiting for a thread, per thread. */
#define QUEUE_PER_THREAD 2
#define DNS_TIMEOUT_MS 3000
/* Calendar rules and shared-drive members kept for one asset. */
#define LIST_MAX 10000
#define QUEUE_POLL_MS 500

#define ADMIN_SCOPE \
    CASB_GOOGLE_SCOPE_USERS " " CASB_GOOGLE_SCOPE_TOKENS " " CASB_GOOGLE_SCOPE_DOMAINS
#define USER_SCOPE \
    CASB_GOOGLE_SCOPE_DRIVE " " CASB_GOOGLE_SCOPE_CALENDAR " " CASB_GOOGLE_SCOPE_GMAIL

#define USER_FIELDS                                                                        \
    "nextPageToken,users(id,primaryEmail,name/fullName,isAdmin,isDelegatedAdmin,"         \
    "isEnrolledIn2Sv,isEnforcedIn2Sv,suspended,suspensionReason,archived,lastLoginTime,"  \
    "creationTime,recoveryEmail,recoveryPhone,isMailboxSetup)"
#define PERMISSION_FIELDS "permissions(id,type,role,emailAddress,domain,allowFileDiscovery)"

static const int APP_TYPES[] = {GW_T_APP_DRIVE,    GW_T_APP_GMAIL,  GW_T_APP_DOCS,
                                GW_T_APP_CALENDAR, GW_T_APP_SLIDES, GW_T_APP_SHEETS,
                                GW_T_APP_SIGN_IN,  GW_T_APP_UNVERIFIED_HIGH_RISK};
static const int FILE_TYPES[] = {GW_T_FILE_PUBLIC_EDIT,   GW_T_FILE_PUBLIC_VIEW,
                                 GW_T_FILE_EXTERNAL_EDIT, GW_T_FILE_EXTERNAL_VIEW,
                                 GW_T_FILE_DOMAIN_EDIT,   GW_T_FILE_DOMAIN_VIEW};
/* The checks that tell internal from external: wrong without the customer's domains. */
static const int DOMAIN_DEPENDENT_TYPES[] = {
    GW_T_FILE_EXTERNAL_EDIT, GW_T_FILE_EXTERNAL_VIEW, GW_T_FILE_DOMAIN_EDIT,
    GW_T_FILE_DOMAIN_VIEW,   GW_T_SHARED_DRIVE_EXTERNAL_EDITOR};
static const int DNS_TYPES[] = {GW_T_SPF_ALLOWS_ANY,     GW_T_SPF_MISSING,
                                GW_T_DMARC_MISSING,      GW_T_DMARC_NOT_ENFORCED,
                                GW_T_DMARC_SUBDOMAINS_NOT_ENFORCED, GW_T_DMARC_PARTIAL};
static const int CALENDAR_TYPES[] = {GW_T_CALENDAR_PUBLIC};
static const int DELEGATE_TYPES[] = {GW_T_USER_DELEGATES_EMAIL};
static const int DRIVE_TYPES[] = {GW_T_SHARED_DRIVE_EXTERNAL_EDITOR};

#define NTYPES(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    casb_google_client *c;
    casb_scan_ctx *ctx;
    casb_google_eval *ev;
    casb_http_client *http;     /* the main thread's */
    casb_http_client *own_http; /* made here (freed here), or NULL */
    atomic_int sink_refused;

    /* The users waiting for a thread, and the first fatal failure. */
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    json_t **q;
    size_t q_cap, q_head, q_n;
    int q_closed;
    int failed_rc;
    char failed_err[1024];
} collector;

typedef struct {
    collector *s;
    casb_http_client *http;
    pthread_t tid;
    int started;
} worker;

/* ---- the sink, under sink_mu ----------------------------------------------------------- */

static void sink_lock(collector *s)
{
    pthread_mutex_lock(&s->c->sink_mu);
}

static void sink_unlock(collector *s)
{
    pthread_mutex_unlock(&s->c->sink_mu);
}

static void seen_locked(collector *s, const char *kind)
{
    if (s->ctx->sink && s->ctx->sink->asset_seen)
        s->ctx->sink->asset_seen(s->ctx->sink, kind);
}

typedef int (*check_fn)(casb_google_eval *ev, const json_t *asset);

/* One asset seen and checked. */
static int run_check(collector *s, check_fn check, const json_t *asset, const char *kind,
                     char *err, size_t errlen)
{
    int rc;

    sink_lock(s);
    seen_locked(s, kind);
    rc = check(s->ev, asset);
    sink_unlock(s);
    if (rc == 0)
        return 0;
    atomic_store(&s->sink_refused, 1);
    return casb_fail(err, errlen, CASB_ERROR, "the scan sink refused a finding");
}

static void skip_types(collector *s, const int *types, size_t n, const char *why)
{
    sink_lock(s);
    for (size_t i = 0; i < n; i++)
        casb_google_eval_skip(s->ev, types[i], "%s", why);
    sink_unlock(s);
}

/* A failure while reading one part (what) for one subject: 0 when it only removes the
 * checks it feeds from this scan (marked skipped with the reason), rc when the scan must
 * stop: cancelled, the sink refused, or the admin's own token refused. */
static int absorb(collector *s, int rc, int admin_call, const int *types, size_t n,
                  const char *what, const char *why)
{
    char reason[1024];

    if (rc == 0)
        return 0;
    if (casb_google_cancelled(s->c) || atomic_load(&s->sink_refused) ||
        (admin_call && rc == CASB_EAUTH))
        return rc;
    snprintf(reason, sizeof(reason), "%s: %s", what, why);
    casb_log_info("google part skipped", "reason", reason);
    skip_types(s, types, n, reason);
    return 0;
}

/* ---- domains and DNS ------------------------------------------------------------------- */

static void add_txt(json_t *domain, const char *resolver, const char *name, const char *key)
{
    json_t *txt = NULL;
    char err[256], why[400];

    if (json_object_get(domain, "dns_error"))
        return;
    err[0] = '\0';
    if (casb_dns_txt(resolver, name, DNS_TIMEOUT_MS, &txt, err, sizeof(err)) == 0) {
        json_object_set_new(domain, key, txt);
        return;
    }
    snprintf(why, sizeof(why), "TXT %s: %s", name, err[0] ? err : "lookup failed");
    json_object_set_new(domain, "dns_error", json_string(why));
}

static int check_dns(collector *s, const char *name, int primary, char *err, size_t errlen)
{
    const char *resolver = s->ctx->dns_resolver;
    json_t *d = json_pack("{s:s,s:b,s:b}", "domainName", name, "verified", 1, "isPrimary",
                          primary);
    char dmarc[300];
    int rc;

    if (!d)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    add_txt(d, resolver && resolver[0] ? resolver : NULL, name, "spf");
    snprintf(dmarc, sizeof(dmarc), "_dmarc.%s", name);
    add_txt(d, resolver && resolver[0] ? resolver : NULL, dmarc, "dmarc");
    rc = run_check(s, casb_google_check_domain, d, "domain", err, errlen);
    json_decref(d);
    return rc;
}

static int add_domain(collector *s, const char *name, char *err, size_t errlen)
{
    int rc;

    sink_lock(s);
    rc = casb_google_eval_add_domain(s->ev, name);
    sink_unlock(s);
    return rc == 0 ? 0 : casb_fail(err, errlen, CASB_ERROR, "out of memory");
}

/* Every domain and alias is internal; the verified ones get their DNS checked. */
static int domain_item(collector *s, const json_t *d, char *err, size_t errlen)
{
    const char *name = casb_json_str(d, "domainName");
    const json_t *aliases = json_object_get(d, "domainAliases");
    const json_t *a;
    size_t i;
    int rc;

    if (!name)
        return 0;
    rc = add_domain(s, name, err, errlen);
    if (rc == 0 && casb_json_bool(d, "verified", 0))
        rc = check_dns(s, name, casb_json_bool(d, "isPrimary", 0), err, errlen);
    json_array_foreach(aliases, i, a) {
        const char *alias = casb_json_str(a, "domainAliasName");

        if (rc != 0 || !alias)
            continue;
        rc = add_domain(s, alias, err, errlen);
        if (rc == 0 && casb_json_bool(a, "verified", 0))
            rc = check_dns(s, alias, 0, err, errlen);
    }
    return rc;
}

/* Without the domain list, the admin's domain is the only one known internal, and the
 * checks that tell internal from external are not trusted this scan. */
static int domains_unknown(collector *s, const char *why, char *err, size_t errlen)
{
    const char *at = strrchr(s->c->admin, '@');
    char reason[1024];

    snprintf(reason, sizeof(reason), "the customer's domains could not be listed: %s", why);
    skip_types(s, DNS_TYPES, NTYPES(DNS_TYPES), reason);
    skip_types(s, DOMAIN_DEPENDENT_TYPES, NTYPES(DOMAIN_DEPENDENT_TYPES), reason);
    return at ? add_domain(s, at + 1, err, errlen) : 0;
}

static int collect_domains(collector *s, char *err, size_t errlen)
{
    casb_google_resp r;
    char *cust = casb_http_escape(s->c->customer);
    char path[512], why[512];
    const json_t *d;
    size_t i;
    int rc;

    if (!cust)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    snprintf(path, sizeof(path),
             "/admin/directory/v1/customer/%s/domains?fields=domains(domainName,verified,"
             "isPrimary,domainAliases(domainAliasName,verified))",
             cust);
    free(cust);
    rc = casb_google_get(s->c, s->http, s->c->admin, ADMIN_SCOPE, path, &r, err, errlen);
    if (rc != 0)
        return rc;
    if (r.status < 200 || r.status >= 300) {
        rc = casb_google_status_error(&r, "GET domains", why, sizeof(why));
        if (rc == CASB_EAUTH || rc == CASB_EUNAVAILABLE)
            rc = casb_fail(err, errlen, rc, "%s", why);
        else
            rc = domains_unknown(s, why, err, errlen);
        goto out;
    }
    json_array_foreach(json_object_get(r.body, "domains"), i, d) {
        rc = domain_item(s, d, err, errlen);
        if (rc != 0)
            goto out;
    }
out:
    casb_google_resp_clear(&r);
    return rc;
}

/* ---- the queue of users ---------------------------------------------------------------- */

static void set_failed(collector *s, int rc, const char *why)
{
    pthread_mutex_lock(&s->q_mu);
    if (s->failed_rc == 0) {
        s->failed_rc = rc ? rc : CASB_ERROR;
        snprintf(s->failed_err, sizeof(s->failed_err), "%s", why && why[0] ? why : "failed");
    }
    pthread_cond_broadcast(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
}

static void timed_wait(collector *s)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += QUEUE_POLL_MS * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&s->q_cv, &s->q_mu, &ts);
}

/* Under q_mu: a cancel becomes the scan's failure. */
static int stopping_locked(collector *s)
{
    if (s->failed_rc == 0 && casb_google_cancelled(s->c)) {
        s->failed_rc = CASB_ERROR;
        snprintf(s->failed_err, sizeof(s->failed_err), "scan cancelled");
        pthread_cond_broadcast(&s->q_cv);
    }
    return s->failed_rc != 0;
}

/* Queues user (stolen); waits while the queue is full. */
static int queue_push(collector *s, json_t *user, char *err, size_t errlen)
{
    int rc = 0;

    pthread_mutex_lock(&s->q_mu);
    while (s->q_n == s->q_cap && !stopping_locked(s))
        timed_wait(s);
    if (s->failed_rc) {
        rc = casb_fail(err, errlen, s->failed_rc, "%s", s->failed_err);
        json_decref(user);
    } else {
        s->q[(s->q_head + s->q_n) % s->q_cap] = user;
        s->q_n++;
        pthread_cond_broadcast(&s->q_cv);
    }
    pthread_mutex_unlock(&s->q_mu);
    return rc;
}

/* The next user (a reference for the caller), or NULL when the queue is closed and empty or
 * the scan is failing. */
static json_t *queue_pop(collector *s)
{
    json_t *user = NULL;

    pthread_mutex_lock(&s->q_mu);
    while (s->q_n == 0 && !s->q_closed && !stopping_locked(s))
        timed_wait(s);
    if (s->q_n > 0 && !s->failed_rc) {
        user = s->q[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_n--;
        pthread_cond_broadcast(&s->q_cv);
    }
    pthread_mutex_unlock(&s->q_mu);
    return user;
}

static void queue_drain(collector *s)
{
    pthread_mutex_lock(&s->q_mu);
    while (s->q_n > 0) {
        json_decref(s->q[s->q_head]);
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_n--;
    }
    pthread_mutex_unlock(&s->q_mu);
}

/* ---- one user -------------------------------------------------------------------------- */

typedef struct {
    worker *w;
    const char *email;
} user_ctx;

static int token_page(void *ud, json_t *items, char *err, size_t errlen)
{
    user_ctx *u = ud;
    collector *s = u->w->s;
    const json_t *t;
    size_t i;
    int rc = 0;

    sink_lock(s);
    json_array_foreach(items, i, t) {
        if (rc == 0 && casb_google_add_token(s->ev, t, u->email) != 0)
            rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    sink_unlock(s);
    return rc;
}

/* tokens.list has no paging: the one answer is the one page. */
static int collect_tokens(worker *w, const json_t *user, const char *email, char *err,
                          size_t errlen)
{
    collector *s = w->s;
    const char *id = casb_json_str(user, "id");
    char *key = casb_http_escape(id ? id : email);
    char path[512], why[1024];
    user_ctx u = {w, email};
    int rc;

    if (!key)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    snprintf(path, sizeof(path),
             "/admin/directory/v1/users/%s/tokens?fields=items(clientId,displayText,scopes,"
             "anonymous,nativeApp)",
             key);
    free(key);
    why[0] = '\0';
    rc = casb_google_paginate(s->c, w->http, s->c->admin, ADMIN_SCOPE, path, "items",
                              token_page, &u, why, sizeof(why));
    /* A user deleted since users.list has no tokens to read. */
    if (rc == CASB_ENOTFOUND)
        return 0;
    rc = absorb(s, rc, 1, APP_TYPES, NTYPES(APP_TYPES), "the OAuth tokens of a user", why);
    if (rc != 0)
        casb_fail(err, errlen, rc, "%s", why);
    return rc;
}

static int file_page(void *ud, json_t *items, char *err, size_t errlen)
{
    user_ctx *u = ud;
    const json_t *f;
    size_t i;

    json_array_foreach(items, i, f) {
        int rc = run_check(u->w->s, casb_google_check_file, f, "file", err, errlen);

        if (rc != 0)
            return rc;
    }
    return 0;
}

static int collect_files(worker *w, const char *email, char *err, size_t errlen)
{
    static const char path[] =
        "/drive/v3/files?corpora=user&q=%27me%27%20in%20owners%20and%20trashed%3Dfalse"
        "&pageSize=1000&fields=nextPageToken,incompleteSearch,files(id,name,mimeType,"
        "webViewLink,owners(emailAddress)," PERMISSION_FIELDS ")";
    user_ctx u = {w, email};
    char why[1024], what[512];
    int rc;

    why[0] = '\0';
    rc = casb_google_paginate(w->s->c, w->http, email, USER_SCOPE, path, "files", file_page,
                              &u, why, sizeof(why));
    snprintf(what, sizeof(what), "the Drive files of %s", email);
    rc = absorb(w->s, rc, 0, FILE_TYPES, NTYPES(FILE_TYPES), what, why);
    if (rc != 0)
        casb_fail(err, errlen, rc, "%s", why);
    return rc;
}

/* Appends each item to the array ud, up to LIST_MAX. */
static int append_page(void *ud, json_t *items, char *err, size_t errlen)
{
    json_t *all = ud;

    if (json_array_size(all) + json_array_size(items) > LIST_MAX)
        return casb_fail(err, errlen, CASB_GOOGLE_EREJECTED, "more than %d entries", LIST_MAX);
    if (json_array_extend(all, items) != 0)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    return 0;
}

static int collect_calendar(worker *w, const char *email, char *err, size_t errlen)
{
    collector *s = w->s;
    char *cal = casb_http_escape(email);
    json_t *acl = json_array();
    json_t *asset = NULL;
    char path[512], why[1024], what[512];
    int rc;

    if (!cal || !acl) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    snprintf(path, sizeof(path),
             "/calendar/v3/calendars/%s/acl?maxResults=250&fields=nextPageToken,items(id,role,"
             "scope(type,value))",
             cal);
    why[0] = '\0';
    rc = casb_google_paginate(s->c, w->http, email, USER_SCOPE, path, "items", append_page,
                              acl, why, sizeof(why));
    if (rc == CASB_ENOTFOUND) {
        /* No calendar (the service is off for the user): nothing public. */
        rc = 0;
        goto out;
    }
    if (rc != 0) {
        snprintf(what, sizeof(what), "the calendar sharing of %s", email);
        rc = absorb(s, rc, 0, CALENDAR_TYPES, NTYPES(CALENDAR_TYPES), what, why);
        if (rc != 0)
            casb_fail(err, errlen, rc, "%s", why);
        goto out;
    }
    asset = json_pack("{s:s,s:s,s:O}", "id", email, "owner", email, "acl", acl);
    rc = asset ? run_check(s, casb_google_check_calendar, asset, "calendar", err, errlen)
               : casb_fail(err, errlen, CASB_ERROR, "out of memory");
out:
    json_decref(asset);
    json_decref(acl);
    free(cal);
    return rc;
}

static int check_delegates(worker *w, const json_t *user, const char *email,
                           const json_t *delegates, char *err, size_t errlen)
{
    json_t *asset = json_pack("{s:s,s:s?,s:O}", "user", email, "user_id",
                              casb_json_str(user, "id"), "delegates", delegates);
    int rc;

    if (!asset)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    rc = run_check(w->s, casb_google_check_delegates, asset, "mailbox", err, errlen);
    json_decref(asset);
    return rc;
}

static int collect_delegates(worker *w, const json_t *user, const char *email, char *err,
                             size_t errlen)
{
    static const char path[] =
        "/gmail/v1/users/me/settings/delegates?fields=delegates(delegateEmail,"
        "verificationStatus)";
    collector *s = w->s;
    json_t *none = json_array();
    casb_google_resp r;
    char why[1024], what[512];
    const json_t *list;
    int rc;

    memset(&r, 0, sizeof(r));
    if (!none)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    /* Without a mailbox there is nobody to delegate it to. */
    if (json_is_false(json_object_get(user, "isMailboxSetup"))) {
        rc = check_delegates(w, user, email, none, err, errlen);
        goto out;
    }
    why[0] = '\0';
    rc = casb_google_get(s->c, w->http, email, USER_SCOPE, path, &r, why, sizeof(why));
    if (rc == 0 && r.status == 400 && strcmp(r.reason, "failedPrecondition") == 0) {
        /* "Mail service not enabled": no mailbox, so no delegates. */
        rc = check_delegates(w, user, email, none, err, errlen);
        goto out;
    }
    if (rc == 0 && (r.status < 200 || r.status >= 300))
        rc = casb_google_status_error(&r, "GET delegates", why, sizeof(why));
    if (rc != 0) {
        snprintf(what, sizeof(what), "the Gmail delegates of %s", email);
        rc = absorb(s, rc, 0, DELEGATE_TYPES, NTYPES(DELEGATE_TYPES), what, why);
        if (rc != 0)
            casb_fail(err, errlen, rc, "%s", why);
        goto out;
    }
    list = json_object_get(r.body, "delegates");
    rc = check_delegates(w, user, email, json_is_array(list) ? list : none, err, errlen);
out:
    casb_google_resp_clear(&r);
    json_decref(none);
    return rc;
}

static int process_user(worker *w, const json_t *user, char *err, size_t errlen)
{
    const char *email = casb_json_str(user, "primaryEmail");
    int rc;

    if (!email)
        return 0;
    rc = collect_tokens(w, user, email, err, errlen);
    /* A suspended or archived user cannot be impersonated: their files stay visible to
     * the shares they had, but Google refuses their token. */
    if (rc == 0 && !casb_json_bool(user, "suspended", 0) &&
        !casb_json_bool(user, "archived", 0)) {
        rc = collect_files(w, email, err, errlen);
        if (rc == 0)
            rc = collect_calendar(w, email, err, errlen);
        if (rc == 0)
            rc = collect_delegates(w, user, email, err, errlen);
    }
    casb_google_token_forget(w->s->c, email);
    return rc;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    char err[1024];
    json_t *user;

    while ((user = queue_pop(w->s)) != NULL) {
        int rc;

        err[0] = '\0';
        rc = process_user(w, user, err, sizeof(err));
        json_decref(user);
        if (rc != 0) {
            set_failed(w->s, rc, err);
            break;
        }
    }
    return NULL;
}

/* ---- users ----------------------------------------------------------------------------- */

static int user_page(void *ud, json_t *items, char *err, size_t errlen)
{
    collector *s = ud;
    json_t *u;
    size_t i;

    json_array_foreach(items, i, u) {
        int rc = run_check(s, casb_google_check_user, u, "user", err, errlen);

        if (rc == 0)
            rc = queue_push(s, json_incref(u), err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The options of the HTTP clients made here: the worker's, with its wait_check taken under
 * sink_mu. */
static casb_http_client_opts thread_opts(const collector *s)
{
    casb_http_client_opts o;

    memset(&o, 0, sizeof(o));
    if (s->ctx->http_opts)
        o = *s->ctx->http_opts;
    if (o.wait_check) {
        o.wait_check = casb_google_locked_wait_check;
        o.wait_check_ud = s->c;
    }
    o.cancel = s->ctx->cancel;
    return o;
}

static void add_stats(collector *s, casb_http_client *http)
{
    if (!http || !s->ctx->extra_stats)
        return;
    casb_http_stats_add(s->ctx->extra_stats, casb_http_client_stats(http));
}

static int concurrency(const collector *s)
{
    long long n = casb_json_int(s->ctx->config, "concurrency", DEFAULT_CONCURRENCY);

    if (n < 1)
        return 1;
    return n > MAX_CONCURRENCY ? MAX_CONCURRENCY : (int)n;
}

static int start_workers(collector *s, worker *ws, int n, char *err, size_t errlen)
{
    casb_http_client_opts o = thread_opts(s);
    int started = 0;

    for (int i = 0; i < n; i++) {
        ws[i].s = s;
        if (casb_http_client_new(&ws[i].http, &o, err, errlen) != 0)
            break;
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0)
            break;
        ws[i].started = 1;
        started++;
    }
    return started > 0 ? 0 : casb_fail(err, errlen, CASB_ERROR, "cannot start the user threads");
}

static void stop_workers(collector *s, worker *ws, int n)
{
    pthread_mutex_lock(&s->q_mu);
    s->q_closed = 1;
    pthread_cond_broadcast(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    for (int i = 0; i < n; i++) {
        if (ws[i].started)
            pthread_join(ws[i].tid, NULL);
        add_stats(s, ws[i].http);
        casb_http_client_free(ws[i].http);
    }
    queue_drain(s);
}

static int collect_users(collector *s, char *err, size_t errlen)
{
    int n = concurrency(s);
    worker *ws = calloc((size_t)n, sizeof(*ws));
    char *cust = casb_http_escape(s->c->customer);
    char *path = NULL;
    int rc;

    s->q_cap = (size_t)n * QUEUE_PER_THREAD;
    s->q = calloc(s->q_cap, sizeof(*s->q));
    if (!ws || !cust || !s->q ||
        asprintf(&path, "/admin/directory/v1/users?customer=%s&maxResults=500&projection=full"
                        "&fields=" USER_FIELDS,
                 cust) < 0) {
        path = NULL;
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    rc = start_workers(s, ws, n, err, errlen);
    if (rc != 0)
        goto out;
    rc = casb_google_paginate(s->c, s->http, s->c->admin, ADMIN_SCOPE, path, "users", user_page,
                              s, err, errlen);
    if (rc != 0)
        set_failed(s, rc, err);
    stop_workers(s, ws, n);
    /* The first failure is the cause (a thread's, when users.list stopped because of it). */
    if (s->failed_rc != 0)
        rc = casb_fail(err, errlen, s->failed_rc, "%s", s->failed_err);
out:
    free(path);
    free(cust);
    free(ws);
    return rc;
}

/* ---- shared drives --------------------------------------------------------------------- */

typedef struct {
    collector *s;
    const char *drive_id, *drive_name;
    const char *member;   /* the internal organizer the files are listed as */
    json_t *member_ids;   /* {permission id: true} of the drive's members */
} drive_ctx;

static int skip_drive_files(collector *s, const char *drive_name, const char *why)
{
    char reason[1024];

    snprintf(reason, sizeof(reason), "the files of shared drive %s: %s", drive_name, why);
    skip_types(s, FILE_TYPES, NTYPES(FILE_TYPES), reason);
    return 0;
}

/* The file-level permissions of a file: its permissions minus the drive's members. */
static int file_permissions(drive_ctx *d, const char *file_id, json_t **out, char *err,
                            size_t errlen)
{
    json_t *all = json_array();
    json_t *own = json_array();
    char *id = casb_http_escape(file_id);
    char path[512];
    const json_t *p;
    size_t i;
    int rc;

    *out = NULL;
    if (!all || !own || !id) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    snprintf(path, sizeof(path),
             "/drive/v3/files/%s/permissions?supportsAllDrives=true&pageSize=100"
             "&fields=nextPageToken," PERMISSION_FIELDS,
             id);
    rc = casb_google_paginate(d->s->c, d->s->http, d->member, CASB_GOOGLE_SCOPE_DRIVE, path,
                              "permissions", append_page, all, err, errlen);
    if (rc != 0)
        goto out;
    json_array_foreach(all, i, p) {
        const char *pid = casb_json_str(p, "id");

        if (!pid || !json_object_get(d->member_ids, pid))
            json_array_append(own, (json_t *)p);
    }
    *out = own;
    own = NULL;
out:
    json_decref(all);
    json_decref(own);
    free(id);
    return rc;
}

static int has_own_permissions(const drive_ctx *d, const json_t *file)
{
    const json_t *pid;
    size_t i;

    json_array_foreach(json_object_get(file, "permissionIds"), i, pid) {
        if (json_is_string(pid) && !json_object_get(d->member_ids, json_string_value(pid)))
            return 1;
    }
    return 0;
}

static int drive_file(drive_ctx *d, const json_t *f, char *err, size_t errlen)
{
    json_t *asset = json_deep_copy(f);
    json_t *perms = NULL;
    char why[1024];
    int rc = 0;

    if (!asset)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    json_object_del(asset, "permissionIds");
    if (has_own_permissions(d, f)) {
        why[0] = '\0';
        rc = file_permissions(d, casb_json_str(f, "id") ? casb_json_str(f, "id") : "", &perms,
                              why, sizeof(why));
        if (rc != 0) {
            rc = absorb(d->s, rc, 0, FILE_TYPES, NTYPES(FILE_TYPES),
                        "the sharing of a shared drive's file", why);
            if (rc != 0)
                casb_fail(err, errlen, rc, "%s", why);
            goto out;
        }
    }
    json_object_set_new(asset, "permissions", perms ? perms : json_array());
    json_object_set_new(asset, "shared_drive",
                        json_pack("{s:s,s:s}", "id", d->drive_id, "name", d->drive_name));
    rc = run_check(d->s, casb_google_check_file, asset, "file", err, errlen);
out:
    json_decref(asset);
    return rc;
}

static int drive_file_page(void *ud, json_t *items, char *err, size_t errlen)
{
    const json_t *f;
    size_t i;

    json_array_foreach(items, i, f) {
        int rc = drive_file(ud, f, err, errlen);

        if (rc != 0)
            return rc;
    }
    return 0;
}

/* An internal organizer of the drive, to list its files as; NULL when there is none. */
static const char *internal_organizer(collector *s, const json_t *perms)
{
    const json_t *p;
    size_t i;

    json_array_foreach(perms, i, p) {
        const char *email = casb_json_str(p, "emailAddress");
        const char *type = casb_json_str(p, "type");
        const char *role = casb_json_str(p, "role");

        if (email && type && role && strcmp(type, "user") == 0 &&
            strcmp(role, "organizer") == 0 && casb_google_is_internal(s->ev, email))
            return email;
    }
    return NULL;
}

static int drive_files(drive_ctx *d, char *err, size_t errlen)
{
    char *id = casb_http_escape(d->drive_id);
    char path[768], why[1024];
    int rc;

    if (!id)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    snprintf(path, sizeof(path),
             "/drive/v3/files?corpora=drive&driveId=%s&includeItemsFromAllDrives=true"
             "&supportsAllDrives=true&q=trashed%%3Dfalse&pageSize=1000"
             "&fields=nextPageToken,files(id,name,mimeType,webViewLink,permissionIds)",
             id);
    free(id);
    why[0] = '\0';
    rc = casb_google_paginate(d->s->c, d->s->http, d->member, CASB_GOOGLE_SCOPE_DRIVE, path,
                              "files", drive_file_page, d, why, sizeof(why));
    casb_google_token_forget(d->s->c, d->member);
    if (rc == 0)
        return 0;
    if (casb_google_cancelled(d->s->c) || atomic_load(&d->s->sink_refused))
        return casb_fail(err, errlen, rc, "%s", why);
    return skip_drive_files(d->s, d->drive_name, why);
}

static int drive_members(collector *s, const char *drive_id, json_t *perms, char *err,
                         size_t errlen)
{
    char *id = casb_http_escape(drive_id);
    char path[512];
    int rc;

    if (!id)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    snprintf(path, sizeof(path),
             "/drive/v3/files/%s/permissions?supportsAllDrives=true&useDomainAdminAccess=true"
             "&pageSize=100&fields=nextPageToken," PERMISSION_FIELDS,
             id);
    free(id);
    rc = casb_google_paginate(s->c, s->http, s->c->admin, CASB_GOOGLE_SCOPE_DRIVE, path,
                              "permissions", append_page, perms, err, errlen);
    return rc;
}

static int process_drive(collector *s, const json_t *drive, char *err, size_t errlen)
{
    const char *id = casb_json_str(drive, "id");
    const char *name = casb_json_str(drive, "name");
    drive_ctx d = {s, id, name ? name : id, NULL, json_object()};
    json_t *perms = json_array();
    json_t *asset = NULL;
    char why[1024], what[512];
    const json_t *p;
    size_t i;
    int rc;

    if (!id)
        goto done;
    if (!perms || !d.member_ids) {
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    why[0] = '\0';
    rc = drive_members(s, id, perms, why, sizeof(why));
    if (rc != 0) {
        snprintf(what, sizeof(what), "the members of shared drive %s", d.drive_name);
        rc = absorb(s, rc, 0, DRIVE_TYPES, NTYPES(DRIVE_TYPES), what, why);
        if (rc == 0)
            rc = skip_drive_files(s, d.drive_name, why);
        else
            casb_fail(err, errlen, rc, "%s", why);
        goto out;
    }
    asset = json_pack("{s:s,s:s,s:O}", "id", id, "name", d.drive_name, "permissions", perms);
    rc = asset ? run_check(s, casb_google_check_shared_drive, asset, "shared_drive", err, errlen)
               : casb_fail(err, errlen, CASB_ERROR, "out of memory");
    if (rc != 0)
        goto out;
    json_array_foreach(perms, i, p) {
        if (casb_json_str(p, "id"))
            json_object_set_new(d.member_ids, casb_json_str(p, "id"), json_true());
    }
    d.member = internal_organizer(s, perms);
    if (!d.member)
        rc = skip_drive_files(s, d.drive_name,
                              "it has no internal organizer (manager) to list its files as");
    else
        rc = drive_files(&d, err, errlen);
    goto out;
done:
    rc = 0;
out:
    json_decref(asset);
    json_decref(perms);
    json_decref(d.member_ids);
    return rc;
}

static int drive_page(void *ud, json_t *items, char *err, size_t errlen)
{
    const json_t *d;
    size_t i;

    json_array_foreach(items, i, d) {
        int rc = process_drive(ud, d, err, errlen);

        if (rc != 0)
            return rc;
    }
    return 0;
}

static int collect_shared_drives(collector *s, char *err, size_t errlen)
{
    static const char path[] =
        "/drive/v3/drives?useDomainAdminAccess=true&pageSize=100"
        "&fields=nextPageToken,drives(id,name)";
    char why[1024];
    int rc;

    why[0] = '\0';
    rc = casb_google_paginate(s->c, s->http, s->c->admin, CASB_GOOGLE_SCOPE_DRIVE, path,
                              "drives", drive_page, s, why, sizeof(why));
    if (rc == 0)
        return 0;
    if (casb_google_cancelled(s->c) || atomic_load(&s->sink_refused))
        return casb_fail(err, errlen, rc, "%s", why);
    /* The admin's Drive token refused means the Drive scope is not delegated: the users'
     * files fail the same way and say so; the shared drives are skipped here. */
    absorb(s, rc, 0, DRIVE_TYPES, NTYPES(DRIVE_TYPES), "the shared drives", why);
    return skip_drive_files(s, "(all)", why);
}

/* ---- the scan -------------------------------------------------------------------------- */

static int tenant_checks(collector *s, char *err, size_t errlen)
{
    int rc;

    sink_lock(s);
    rc = casb_google_check_tenant(s->ev);
    sink_unlock(s);
    return rc == 0 ? 0 : casb_fail(err, errlen, CASB_ERROR, "the scan sink refused a finding");
}

int casb_google_collect_all(casb_google_client *c, casb_scan_ctx *ctx, casb_google_eval *ev,
                            char *err, size_t errlen)
{
    collector s;
    int rc;

    memset(&s, 0, sizeof(s));
    s.c = c;
    s.ctx = ctx;
    s.ev = ev;
    s.http = ctx->http;
    atomic_init(&s.sink_refused, 0);
    pthread_mutex_init(&s.q_mu, NULL);
    pthread_cond_init(&s.q_cv, NULL);
    if (ctx->http_opts) {
        /* ctx->http calls the worker's wait_check without our lock: the main thread gets a
         * client of its own while the user threads run. */
        casb_http_client_opts o = thread_opts(&s);

        rc = casb_http_client_new(&s.own_http, &o, err, errlen);
        if (rc != 0)
            goto out;
        s.http = s.own_http;
    }
    rc = collect_domains(&s, err, errlen);
    if (rc == 0)
        rc = collect_users(&s, err, errlen);
    if (rc == 0)
        rc = collect_shared_drives(&s, err, errlen);
    if (rc == 0)
        rc = tenant_checks(&s, err, errlen);
    if (rc == 0 && casb_google_cancelled(c))
        rc = casb_fail(err, errlen, CASB_ERROR, "scan cancelled");
out:
    add_stats(&s, s.own_http);
    casb_http_client_free(s.own_http);
    free(s.q);
    pthread_mutex_destroy(&s.q_mu);
    pthread_cond_destroy(&s.q_cv);
    return rc;
}
