/* The GitHub collectors: they walk the organization through the REST API, page by page, turn
 * each item into a normalized asset (github_internal.h) and hand it to the checks at once.
 * Nothing is kept per repository after its page is done, so memory does not grow with the
 * organization; the only sets kept are the (small) lists of owners and of members without
 * 2FA.
 *
 * Errors: a rejected credential, an unreachable or failing API (5xx after retries), an
 * exhausted rate limit, a malformed body or a cancellation fails the scan. A 403/404/422 on
 * one endpoint means a permission or feature is missing: the checks that needed it are
 * skipped for this scan, with GitHub's answer as the reason, and the scan goes on. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/error.h"
#include "casb/http_client.h"
#include "casb/json.h"
#include "casb/log.h"
#include "github_internal.h"

typedef struct {
    char **v;
    size_t n, cap;
} strset;

typedef struct {
    casb_github_client *c;
    casb_github_eval *ev;
    casb_scan_sink *sink;
    char *org_url;  /* the organization's html_url */
    char *web_root; /* "https://github.com": org_url without "/<login>" */
    strset no2fa;   /* members listed by filter=2fa_disabled */
    int no2fa_known;
    strset admins;  /* members listed by role=admin */
    int admins_known;
    int outside;    /* outside collaborators in the org: -1 unknown, 0 none, 1 some */
    /* The repository whose sub-resources are being listed. */
    const char *repo_full;
    const char *repo_url;
} scan_state;

/* ---- a small sorted set of logins ------------------------------------------------------ */

static int strset_add(strset *s, const char *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof(*v));

        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n] = strdup(x);
    if (!s->v[s->n])
        return -1;
    s->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strset_sort(strset *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), cmp_str);
}

static int strset_has(const strset *s, const char *x)
{
    return s->n > 0 && bsearch(&x, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
}

static void strset_free(strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* ---- helpers --------------------------------------------------------------------------- */

/* A refusal that removes one check from this scan rather than failing it. */
static int is_soft(int rc)
{
    return rc == CASB_GITHUB_EFORBIDDEN || rc == CASB_GITHUB_EREJECTED || rc == CASB_ENOTFOUND;
}

static int sink_refused(char *err, size_t errlen)
{
    return casb_fail(err, errlen, CASB_ERROR, "the scan sink refused a finding");
}

static void seen(scan_state *s, const char *kind)
{
    if (s->sink->asset_seen)
        s->sink->asset_seen(s->sink, kind);
}

static void skip_types(scan_state *s, const int *types, size_t ntypes, const char *why)
{
    for (size_t i = 0; i < ntypes; i++)
        casb_github_eval_skip(s->ev, types[i], "%s", why);
}

static int set_str(json_t *obj, const char *key, const char *value)
{
    return json_object_set_new(obj, key, value ? json_string(value) : json_null());
}

/* ---- organization ---------------------------------------------------------------------- */

static int collect_org(scan_state *s, char *err, size_t errlen)
{
    casb_github_resp r;
    char path[128];
    const char *url;
    int rc;

    snprintf(path, sizeof(path), "/orgs/%s", s->c->org);
    rc = casb_github_get(s->c, path, &r, err, errlen);
    if (rc != 0)
        return rc;
    if ((r.status == 404 || r.status == 403) && !r.rate_limited) {
        /* The organization is what the integration is for: not seeing it is an
         * authorization problem (wrong org, token of another account, SSO not granted). */
        rc = casb_github_org_refused(&r, s->c->org, err, errlen);
        goto out;
    }
    if (r.status < 200 || r.status >= 300) {
        rc = casb_github_status_error(&r, "GET /orgs/{org}", err, errlen);
        goto out;
    }
    if (!json_is_object(r.body)) {
        rc = casb_fail(err, errlen, CASB_ERROR, "GET /orgs/{org}: not an object");
        goto out;
    }
    url = casb_json_str(r.body, "html_url");
    if (url) {
        const char *slash = strrchr(url, '/');

        s->org_url = strdup(url);
        if (slash && slash > url)
            s->web_root = strndup(url, (size_t)(slash - url));
    }
    seen(s, "organization");
    if (casb_github_check_org(s->ev, r.body) != 0)
        rc = sink_refused(err, errlen);
out:
    casb_github_resp_clear(&r);
    return rc;
}

/* ---- members --------------------------------------------------------------------------- */

static int add_logins(void *ud, json_t *items, char *err, size_t errlen)
{
    strset *set = ud;
    json_t *it;
    size_t i;

    json_array_foreach(items, i, it) {
        const char *login = casb_json_str(it, "login");

        if (login && strset_add(set, login) != 0)
            return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    return 0;
}

static int member_page(void *ud, json_t *items, char *err, size_t errlen)
{
    scan_state *s = ud;
    json_t *it;
    size_t i;

    json_array_foreach(items, i, it) {
        const char *login = casb_json_str(it, "login");
        json_t *m;
        int rc;

        if (!login)
            continue;
        m = json_object();
        set_str(m, "login", login);
        json_object_set_new(m, "id", json_integer(casb_json_int(it, "id", 0)));
        set_str(m, "html_url", casb_json_str(it, "html_url"));
        if (s->admins_known)
            set_str(m, "role", strset_has(&s->admins, login) ? "admin" : "member");
        else
            json_object_set_new(m, "role", json_null());
        if (s->no2fa_known)
            json_object_set_new(m, "two_factor_disabled",
                                json_boolean(strset_has(&s->no2fa, login)));
        seen(s, "member");
        rc = casb_github_check_member(s->ev, m);
        json_decref(m);
        if (rc != 0)
            return sink_refused(err, errlen);
    }
    return 0;
}

static int collect_members(scan_state *s, char *err, size_t errlen)
{
    char path[160], why[512];
    int rc;

    /* Only owners may use filter=2fa_disabled; GitHub answers others with 422 or 403. */
    snprintf(path, sizeof(path), "/orgs/%s/members?filter=2fa_disabled&per_page=100", s->c->org);
    rc = casb_github_paginate(s->c, path, NULL, add_logins, &s->no2fa, why, sizeof(why));
    if (rc == 0) {
        s->no2fa_known = 1;
        strset_sort(&s->no2fa);
    } else if (is_soft(rc)) {
        strset_free(&s->no2fa);
        casb_github_eval_skip(s->ev, GH_T_ORG_MEMBER_2FA_DISABLED,
                              "only organization owners can list members without two-factor "
                              "authentication (%s)", why);
    } else {
        snprintf(err, errlen, "%s", why);
        return rc;
    }

    /* Owners, to tell them apart in findings; not knowing them costs no check. */
    snprintf(path, sizeof(path), "/orgs/%s/members?role=admin&per_page=100", s->c->org);
    rc = casb_github_paginate(s->c, path, NULL, add_logins, &s->admins, why, sizeof(why));
    if (rc == 0) {
        s->admins_known = 1;
        strset_sort(&s->admins);
    } else if (is_soft(rc)) {
        strset_free(&s->admins);
    } else {
        snprintf(err, errlen, "%s", why);
        return rc;
    }

    snprintf(path, sizeof(path), "/orgs/%s/members?filter=all&per_page=100", s->c->org);
    rc = casb_github_paginate(s->c, path, NULL, member_page, s, why, sizeof(why));
    if (is_soft(rc)) {
        casb_github_eval_skip(s->ev, GH_T_ORG_MEMBER_2FA_DISABLED,
                              "cannot list organization members (%s); grant Organization "
                              "Members: read", why);
        return 0;
    }
    if (rc != 0)
        snprintf(err, errlen, "%s", why);
    return rc;
}

/* ---- outside collaborators ------------------------------------------------------------- */

static int count_outside(void *ud, json_t *items, char *err, size_t errlen)
{
    scan_state *s = ud;

    (void)err;
    (void)errlen;
    for (size_t i = 0; i < json_array_size(items); i++)
        seen(s, "outside_collaborator");
    if (json_array_size(items) > 0)
        s->outside = 1;
    return 0;
}

/* Knowing whether the organization has any outside collaborator at all spares one call per
 * repository when it has none (the common case). */
static int collect_outside_collaborators(scan_state *s, char *err, size_t errlen)
{
    char path[160], why[512];
    int rc;

    s->outside = 0;
    snprintf(path, sizeof(path), "/orgs/%s/outside_collaborators?per_page=100", s->c->org);
    rc = casb_github_paginate(s->c, path, NULL, count_outside, s, why, sizeof(why));
    if (is_soft(rc)) {
        s->outside = -1;
        return 0;
    }
    if (rc != 0)
        snprintf(err, errlen, "%s", why);
    return rc;
}

/* ---- webhooks -------------------------------------------------------------------------- */

static const int webhook_types[] = {GH_T_WEBHOOK_NO_SECRET, GH_T_WEBHOOK_INSECURE_SSL};

static int hook_page(void *ud, json_t *items, char *err, size_t errlen)
{
    scan_state *s = ud;
    json_t *it;
    size_t i;

    json_array_foreach(items, i, it) {
        json_int_t id = casb_json_int(it, "id", -1);
        char *url = NULL;
        int rc;

        if (!json_is_object(it) || id < 0)
            continue;
        if (s->repo_full) {
            set_str(it, "scope", "repository");
            set_str(it, "repository", s->repo_full);
            set_str(it, "target", s->repo_full);
            if (s->repo_url && asprintf(&url, "%s/settings/hooks/%lld", s->repo_url,
                                        (long long)id) < 0)
                url = NULL;
        } else {
            set_str(it, "scope", "organization");
            set_str(it, "target", s->c->org);
            if (s->web_root && asprintf(&url, "%s/organizations/%s/settings/hooks/%lld",
                                        s->web_root, s->c->org, (long long)id) < 0)
                url = NULL;
        }
        set_str(it, "asset_url", url);
        free(url);
        seen(s, "webhook");
        rc = casb_github_check_hook(s->ev, it);
        if (rc != 0)
            return sink_refused(err, errlen);
    }
    return 0;
}

static int collect_org_hooks(scan_state *s, char *err, size_t errlen)
{
    char path[160], why[512], reason[700];
    int rc;

    snprintf(path, sizeof(path), "/orgs/%s/hooks?per_page=100", s->c->org);
    s->repo_full = NULL;
    s->repo_url = NULL;
    rc = casb_github_paginate(s->c, path, NULL, hook_page, s, why, sizeof(why));
    if (is_soft(rc)) {
        snprintf(reason, sizeof(reason),
                 "permission missing to read organization webhooks (%s); grant Organization "
                 "Webhooks: read (classic token: admin:org_hook)", why);
        skip_types(s, webhook_types, 2, reason);
        return 0;
    }
    if (rc != 0)
        snprintf(err, errlen, "%s", why);
    return rc;
}

/* ---- installations --------------------------------------------------------------------- */

static int installation_page(void *ud, json_t *items, char *err, size_t errlen)
{
    scan_state *s = ud;
    json_t *it;
    size_t i;

    json_array_foreach(items, i, it) {
        seen(s, "installation");
        if (casb_github_check_installation(s->ev, it) != 0)
            return sink_refused(err, errlen);
    }
    return 0;
}

static int collect_installations(scan_state *s, char *err, size_t errlen)
{
    char path[160], why[512];
    int rc;

    snprintf(path, sizeof(path), "/orgs/%s/installations?per_page=100", s->c->org);
    rc = casb_github_paginate(s->c, path, "installations", installation_page, s, why,
                              sizeof(why));
    if (is_soft(rc)) {
        casb_github_eval_skip(s->ev, GH_T_ORG_APP_BROAD_PERMISSIONS,
                              "permission missing to list the organization's app installations "
                              "(%s); grant Organization Administration: read (classic token: "
                              "admin:org, as an organization owner)", why);
        return 0;
    }
    if (rc != 0)
        snprintf(err, errlen, "%s", why);
    return rc;
}

/* ---- repositories ---------------------------------------------------------------------- */

static const int branch_types[] = {
    GH_T_DEFAULT_BRANCH_UNPROTECTED, GH_T_BP_NO_PR_REVIEW,        GH_T_BP_FORCE_PUSH_ALLOWED,
    GH_T_BP_STALE_APPROVALS_KEPT,    GH_T_BP_ADMINS_NOT_ENFORCED, GH_T_BP_NO_STATUS_CHECKS,
};

/* Every type whose input comes from listing repositories (or from a repository). */
static const int repo_types[] = {
    GH_T_DEFAULT_BRANCH_UNPROTECTED,   GH_T_BP_NO_PR_REVIEW,
    GH_T_BP_FORCE_PUSH_ALLOWED,        GH_T_BP_STALE_APPROVALS_KEPT,
    GH_T_BP_ADMINS_NOT_ENFORCED,       GH_T_BP_NO_STATUS_CHECKS,
    GH_T_REPO_STALE,                   GH_T_REPO_PUBLIC,
    GH_T_REPO_OUTSIDE_COLLABORATOR_ADMIN, GH_T_WEBHOOK_NO_SECRET,
    GH_T_WEBHOOK_INSECURE_SSL,         GH_T_REPO_DEPLOY_KEY_WRITE,
    GH_T_REPO_SECRET_SCANNING_DISABLED, GH_T_REPO_PUSH_PROTECTION_DISABLED,
};

/* "/repos/<owner>/<name>" with both segments escaped. */
static char *repo_path(const char *owner, const char *name)
{
    char *o = casb_http_escape(owner);
    char *n = casb_http_escape(name);
    char *p = NULL;

    if (o && n && asprintf(&p, "/repos/%s/%s", o, n) < 0)
        p = NULL;
    free(o);
    free(n);
    return p;
}

/* Reads the default branch's protection into repo: "branch_protection" (object or null),
 * "default_branch_missing", or "branch_protection_error" with the checks skipped. */
static int collect_protection(scan_state *s, json_t *repo, const char *rpath, char *err,
                              size_t errlen)
{
    const char *branch = casb_json_str(repo, "default_branch");
    const char *full = casb_json_str(repo, "full_name");
    casb_github_resp r;
    char *b = NULL, *path = NULL;
    char what[600], why[800], reason[1000];
    int rc;

    if (!branch || !branch[0]) {
        json_object_set_new(repo, "default_branch_missing", json_true());
        return 0;
    }
    b = casb_http_escape(branch);
    if (!b || asprintf(&path, "%s/branches/%s/protection", rpath, b) < 0) {
        free(b);
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    }
    free(b);
    rc = casb_github_get(s->c, path, &r, err, errlen);
    free(path);
    if (rc != 0)
        return rc;
    if (r.status >= 200 && r.status < 300) {
        if (!json_is_object(r.body)) {
            rc = casb_fail(err, errlen, CASB_ERROR,
                           "GET /repos/%s/branches/{default_branch}/protection: not an object",
                           full);
            goto out;
        }
        json_object_set(repo, "branch_protection", r.body);
    } else if (r.status == 404 && strcasecmp(r.message, "Branch not protected") == 0) {
        json_object_set_new(repo, "branch_protection", json_null());
    } else if (r.status == 404 && strcasecmp(r.message, "Branch not found") == 0) {
        /* An empty repository: its default branch does not exist yet. */
        json_object_set_new(repo, "default_branch_missing", json_true());
    } else {
        snprintf(what, sizeof(what), "GET /repos/%s/branches/{default_branch}/protection", full);
        rc = casb_github_status_error(&r, what, why, sizeof(why));
        if (!is_soft(rc)) {
            snprintf(err, errlen, "%s", why);
            goto out;
        }
        snprintf(reason, sizeof(reason),
                 "cannot read branch protection (%s); grant Repository Administration: read "
                 "(classic token: repo, with admin rights on the repository)", why);
        set_str(repo, "branch_protection_error", reason);
        skip_types(s, branch_types, sizeof(branch_types) / sizeof(branch_types[0]), reason);
        rc = 0;
    }
out:
    casb_github_resp_clear(&r);
    return rc;
}

static int key_page(void *ud, json_t *items, char *err, size_t errlen)
{
    scan_state *s = ud;
    json_t *it;
    size_t i;

    json_array_foreach(items, i, it) {
        char *url = NULL;
        int rc;

        if (!json_is_object(it))
            continue;
        set_str(it, "repository", s->repo_full);
        if (s->repo_url && asprintf(&url, "%s/settings/keys", s->repo_url) < 0)
            url = NULL;
        set_str(it, "asset_url", url);
        free(url);
        seen(s, "deploy_key");
        rc = casb_github_check_deploy_key(s->ev, it);
        if (rc != 0)
            return sink_refused(err, errlen);
    }
    return 0;
}

static int collaborator_page(void *ud, json_t *items, char *err, size_t errlen)
{
    scan_state *s = ud;
    json_t *it;
    size_t i;

    json_array_foreach(items, i, it) {
        char *url = NULL;
        int rc;

        if (!json_is_object(it))
            continue;
        set_str(it, "repository", s->repo_full);
        json_object_set_new(it, "outside", json_true());
        if (s->repo_url && asprintf(&url, "%s/settings/access", s->repo_url) < 0)
            url = NULL;
        set_str(it, "asset_url", url);
        free(url);
        seen(s, "collaborator");
        rc = casb_github_check_collaborator(s->ev, it);
        if (rc != 0)
            return sink_refused(err, errlen);
    }
    return 0;
}

/* Lists one sub-resource of a repository; a soft refusal skips `types` with a reason naming
 * the permission to grant. */
static int collect_repo_list(scan_state *s, const char *path, casb_github_page_fn fn,
                             const int *types, size_t ntypes, const char *grant, char *err,
                             size_t errlen)
{
    char why[512], reason[900];
    int rc;

    rc = casb_github_paginate(s->c, path, NULL, fn, s, why, sizeof(why));
    if (is_soft(rc)) {
        snprintf(reason, sizeof(reason), "permission missing for %s (%s); grant %s",
                 s->repo_full, why, grant);
        skip_types(s, types, ntypes, reason);
        return 0;
    }
    if (rc != 0)
        snprintf(err, errlen, "%s", why);
    return rc;
}

static int collect_repo(scan_state *s, json_t *repo, char *err, size_t errlen)
{
    static const int key_types[] = {GH_T_REPO_DEPLOY_KEY_WRITE};
    static const int collab_types[] = {GH_T_REPO_OUTSIDE_COLLABORATOR_ADMIN};
    const char *name = casb_json_str(repo, "name");
    const char *full = casb_json_str(repo, "full_name");
    const char *owner = casb_json_path_str(repo, "owner.login");
    char *rpath = NULL, *path = NULL;
    int rc;

    if (!name || !full)
        return casb_fail(err, errlen, CASB_ERROR,
                         "GET /orgs/{org}/repos: a repository without name or full_name");
    rpath = repo_path(owner ? owner : s->c->org, name);
    if (!rpath)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    s->repo_full = full;
    s->repo_url = casb_json_str(repo, "html_url");
    seen(s, "repository");

    /* Archived repositories get no branch checks: skip the call as well. */
    if (!casb_json_bool(repo, "archived", 0)) {
        rc = collect_protection(s, repo, rpath, err, errlen);
        if (rc != 0)
            goto out;
    }
    if (casb_github_check_repo(s->ev, repo) != 0) {
        rc = sink_refused(err, errlen);
        goto out;
    }

    if (asprintf(&path, "%s/keys?per_page=100", rpath) < 0) {
        path = NULL;
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    rc = collect_repo_list(s, path, key_page, key_types, 1,
                           "Repository Administration: read (classic token: repo)", err, errlen);
    free(path);
    path = NULL;
    if (rc != 0)
        goto out;

    if (asprintf(&path, "%s/hooks?per_page=100", rpath) < 0) {
        path = NULL;
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    rc = collect_repo_list(s, path, hook_page, webhook_types, 2,
                           "Repository Webhooks: read (classic token: read:repo_hook)", err,
                           errlen);
    free(path);
    path = NULL;
    if (rc != 0)
        goto out;

    if (s->outside != 0) {
        if (asprintf(&path, "%s/collaborators?affiliation=outside&per_page=100", rpath) < 0) {
            path = NULL;
            rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
            goto out;
        }
        rc = collect_repo_list(s, path, collaborator_page, collab_types, 1,
                               "Repository Metadata: read (classic token: repo)", err, errlen);
    }
out:
    s->repo_full = NULL;
    s->repo_url = NULL;
    free(path);
    free(rpath);
    return rc;
}

static int repo_page(void *ud, json_t *items, char *err, size_t errlen)
{
    scan_state *s = ud;
    json_t *it;
    size_t i;
    int rc;

    json_array_foreach(items, i, it) {
        if (!json_is_object(it))
            return casb_fail(err, errlen, CASB_ERROR,
                             "GET /orgs/{org}/repos: an item is not an object");
        rc = collect_repo(s, it, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int collect_repos(scan_state *s, char *err, size_t errlen)
{
    char path[160], why[1024], reason[1200];
    int rc;

    snprintf(path, sizeof(path), "/orgs/%s/repos?type=all&per_page=100", s->c->org);
    rc = casb_github_paginate(s->c, path, NULL, repo_page, s, why, sizeof(why));
    if (is_soft(rc)) {
        snprintf(reason, sizeof(reason),
                 "cannot list the organization's repositories (%s); grant Repository "
                 "Metadata: read", why);
        skip_types(s, repo_types, sizeof(repo_types) / sizeof(repo_types[0]), reason);
        return 0;
    }
    if (rc != 0)
        snprintf(err, errlen, "%s", why);
    return rc;
}

int casb_github_collect_all(casb_github_client *c, casb_github_eval *ev, char *err,
                            size_t errlen)
{
    scan_state s;
    int rc;

    memset(&s, 0, sizeof(s));
    s.c = c;
    s.ev = ev;
    s.sink = ev->cov.sink;
    s.outside = -1;

    rc = collect_org(&s, err, errlen);
    if (rc == 0)
        rc = collect_members(&s, err, errlen);
    if (rc == 0)
        rc = collect_outside_collaborators(&s, err, errlen);
    if (rc == 0)
        rc = collect_org_hooks(&s, err, errlen);
    if (rc == 0)
        rc = collect_installations(&s, err, errlen);
    if (rc == 0)
        rc = collect_repos(&s, err, errlen);

    strset_free(&s.no2fa);
    strset_free(&s.admins);
    free(s.org_url);
    free(s.web_root);
    return rc;
}
