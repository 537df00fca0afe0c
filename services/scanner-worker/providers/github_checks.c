/* The GitHub checks: predicates over one normalized asset (see github_internal.h for the
 * shapes) that report findings through the scan sink. They never call the network, so tests
 * run them on recorded responses. A check that meets an asset it cannot judge (a field GitHub
 * hides from this caller) marks its type skipped for the scan instead of guessing: a skipped
 * type resolves nothing. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "casb/json.h"
#include "casb/timeutil.h"
#include "github_internal.h"

const char *const casb_github_finding_types[GH_T_COUNT + 1] = {
    [GH_T_DEFAULT_BRANCH_UNPROTECTED] = "github.repo.default_branch_unprotected",
    [GH_T_BP_NO_PR_REVIEW] = "github.repo.branch_protection_no_pr_review",
    [GH_T_BP_FORCE_PUSH_ALLOWED] = "github.repo.branch_protection_force_push_allowed",
    [GH_T_BP_STALE_APPROVALS_KEPT] = "github.repo.branch_protection_stale_approvals_kept",
    [GH_T_BP_ADMINS_NOT_ENFORCED] = "github.repo.branch_protection_admins_not_enforced",
    [GH_T_BP_NO_STATUS_CHECKS] = "github.repo.branch_protection_no_status_checks",
    [GH_T_ORG_DEFAULT_WRITE_PERMISSION] = "github.org.default_write_permission",
    [GH_T_REPO_STALE] = "github.repo.stale",
    [GH_T_ORG_TWO_FACTOR_REQUIREMENT_DISABLED] = "github.org.two_factor_requirement_disabled",
    [GH_T_ORG_MEMBER_2FA_DISABLED] = "github.org.member_2fa_disabled",
    [GH_T_REPO_PUBLIC] = "github.repo.public",
    [GH_T_ORG_MEMBERS_CAN_CREATE_PUBLIC_REPOS] = "github.org.members_can_create_public_repos",
    [GH_T_REPO_OUTSIDE_COLLABORATOR_ADMIN] = "github.repo.outside_collaborator_admin",
    [GH_T_WEBHOOK_NO_SECRET] = "github.webhook.no_secret",
    [GH_T_WEBHOOK_INSECURE_SSL] = "github.webhook.insecure_ssl",
    [GH_T_REPO_DEPLOY_KEY_WRITE] = "github.repo.deploy_key_write",
    [GH_T_ORG_APP_BROAD_PERMISSIONS] = "github.org.app_broad_permissions",
    [GH_T_REPO_SECRET_SCANNING_DISABLED] = "github.repo.secret_scanning_disabled",
    [GH_T_REPO_PUSH_PROTECTION_DISABLED] = "github.repo.push_protection_disabled",
    [GH_T_COUNT] = NULL,
};
_Static_assert(GH_T_COUNT <= CASB_COVERAGE_MAX_TYPES, "more finding types than a coverage holds");

/* Branch protection sub-checks, evaluated together from one protection resource. */
static const int branch_types[] = {
    GH_T_DEFAULT_BRANCH_UNPROTECTED, GH_T_BP_NO_PR_REVIEW,        GH_T_BP_FORCE_PUSH_ALLOWED,
    GH_T_BP_STALE_APPROVALS_KEPT,    GH_T_BP_ADMINS_NOT_ENFORCED, GH_T_BP_NO_STATUS_CHECKS,
};

void casb_github_eval_init(casb_github_eval *ev, casb_scan_sink *sink, long long now_s)
{
    memset(ev, 0, sizeof(*ev));
    casb_coverage_init(&ev->cov, sink, casb_github_finding_types);
    ev->now_s = now_s;
}

void casb_github_eval_cleanup(casb_github_eval *ev)
{
    if (!ev)
        return;
    casb_coverage_cleanup(&ev->cov);
}

void casb_github_eval_skip(casb_github_eval *ev, int type, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    casb_coverage_vskip(&ev->cov, type, fmt, ap);
    va_end(ap);
}

void casb_github_eval_report(casb_github_eval *ev)
{
    casb_coverage_report(&ev->cov);
}

/* Hands one finding to the sink; details is stolen whatever happens. */
static int emit(casb_github_eval *ev, int type, const char *kind, const char *id,
                const char *name, const char *url, json_t *details)
{
    return casb_coverage_emit(&ev->cov, type, kind, id, name, url, details);
}

/* Copies obj[key] into details when present (used to put the evidence next to a finding). */
static void copy_member(json_t *details, const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    if (v)
        json_object_set(details, key, v);
}

/* ---- organization ---------------------------------------------------------------------- */

/* Skip reasons for settings GitHub hides from callers without enough rights. */
#define HIDDEN_ORG_FIELD                                                                     \
    "GitHub did not return %s for organization %s: it is shown only to organization owners " \
    "(GitHub App: Organization Administration read; classic token: admin:org)"
#define HIDDEN_REPO_FIELD                                                                    \
    "GitHub did not return %s for %s: it is shown only to repository administrators, "      \
    "organization owners and security managers (GitHub App: Repository Administration read)"

int casb_github_check_org(casb_github_eval *ev, const json_t *org)
{
    const char *login = casb_json_str(org, "login");
    const char *url = casb_json_str(org, "html_url");
    json_t *v;
    const char *perm;
    int rc = 0;

    if (!login) {
        casb_github_eval_skip(ev, GH_T_ORG_TWO_FACTOR_REQUIREMENT_DISABLED,
                              "the organization response has no login");
        casb_github_eval_skip(ev, GH_T_ORG_DEFAULT_WRITE_PERMISSION,
                              "the organization response has no login");
        casb_github_eval_skip(ev, GH_T_ORG_MEMBERS_CAN_CREATE_PUBLIC_REPOS,
                              "the organization response has no login");
        return 0;
    }

    v = json_object_get(org, "two_factor_requirement_enabled");
    if (!json_is_boolean(v))
        casb_github_eval_skip(ev, GH_T_ORG_TWO_FACTOR_REQUIREMENT_DISABLED, HIDDEN_ORG_FIELD,
                              "two_factor_requirement_enabled", login);
    else if (json_is_false(v))
        rc |= emit(ev, GH_T_ORG_TWO_FACTOR_REQUIREMENT_DISABLED, "organization", login, login,
                   url, json_pack("{s:b}", "two_factor_requirement_enabled", 0));

    perm = casb_json_str(org, "default_repository_permission");
    if (!perm)
        casb_github_eval_skip(ev, GH_T_ORG_DEFAULT_WRITE_PERMISSION, HIDDEN_ORG_FIELD,
                              "default_repository_permission", login);
    else if (strcmp(perm, "write") == 0 || strcmp(perm, "admin") == 0)
        rc |= emit(ev, GH_T_ORG_DEFAULT_WRITE_PERMISSION, "organization", login, login, url,
                   json_pack("{s:s}", "default_repository_permission", perm));

    /* When members cannot create repositories at all, the public flag is moot. */
    v = json_object_get(org, "members_can_create_public_repositories");
    if (!json_is_boolean(v))
        casb_github_eval_skip(ev, GH_T_ORG_MEMBERS_CAN_CREATE_PUBLIC_REPOS, HIDDEN_ORG_FIELD,
                              "members_can_create_public_repositories", login);
    else if (json_is_true(v) &&
             !json_is_false(json_object_get(org, "members_can_create_repositories")))
        rc |= emit(ev, GH_T_ORG_MEMBERS_CAN_CREATE_PUBLIC_REPOS, "organization", login, login,
                   url, json_pack("{s:b}", "members_can_create_public_repositories", 1));
    return rc ? -1 : 0;
}

/* ---- member ---------------------------------------------------------------------------- */

int casb_github_check_member(casb_github_eval *ev, const json_t *member)
{
    const char *login = casb_json_str(member, "login");
    json_t *v = json_object_get(member, "two_factor_disabled");
    json_t *details;

    if (!login)
        return 0;
    if (!json_is_boolean(v)) {
        casb_github_eval_skip(ev, GH_T_ORG_MEMBER_2FA_DISABLED,
                              "the two-factor status of organization members is unknown");
        return 0;
    }
    if (json_is_false(v))
        return 0;
    details = json_object();
    copy_member(details, member, "role");
    copy_member(details, member, "id");
    return emit(ev, GH_T_ORG_MEMBER_2FA_DISABLED, "member", login, login,
                casb_json_str(member, "html_url"), details);
}

/* ---- repository ------------------------------------------------------------------------ */

static int check_branch_protection(casb_github_eval *ev, const json_t *repo, const char *full,
                                   const char *url)
{
    const char *branch = casb_json_str(repo, "default_branch");
    json_t *bp = json_object_get(repo, "branch_protection");
    json_t *reviews, *checks;
    size_t ncontexts, nchecks;
    int rc = 0;

    if (!bp) {
        const char *why = casb_json_str(repo, "branch_protection_error");

        for (size_t i = 0; i < sizeof(branch_types) / sizeof(branch_types[0]); i++)
            casb_github_eval_skip(ev, branch_types[i], "branch protection of %s unknown: %s",
                                  full, why ? why : "not collected");
        return 0;
    }
    if (json_is_null(bp))
        return emit(ev, GH_T_DEFAULT_BRANCH_UNPROTECTED, "repository", full, full, url,
                    json_pack("{s:s?}", "default_branch", branch));
    if (!json_is_object(bp))
        return 0;

    reviews = json_object_get(bp, "required_pull_request_reviews");
    if (!json_is_object(reviews) ||
        casb_json_int(reviews, "required_approving_review_count", 1) == 0)
        rc |= emit(ev, GH_T_BP_NO_PR_REVIEW, "repository", full, full, url,
                   json_pack("{s:s?,s:b}", "default_branch", branch,
                             "required_pull_request_reviews", json_is_object(reviews)));

    if (json_is_true(casb_json_path(bp, "allow_force_pushes.enabled")))
        rc |= emit(ev, GH_T_BP_FORCE_PUSH_ALLOWED, "repository", full, full, url,
                   json_pack("{s:s?,s:b}", "default_branch", branch, "allow_force_pushes", 1));

    /* Without required reviews there is no approval to go stale: the PR-review finding above
     * covers that repository. */
    if (json_is_object(reviews) && !json_is_true(json_object_get(reviews, "dismiss_stale_reviews")))
        rc |= emit(ev, GH_T_BP_STALE_APPROVALS_KEPT, "repository", full, full, url,
                   json_pack("{s:s?,s:b}", "default_branch", branch, "dismiss_stale_reviews", 0));

    if (!json_is_true(casb_json_path(bp, "enforce_admins.enabled")))
        rc |= emit(ev, GH_T_BP_ADMINS_NOT_ENFORCED, "repository", full, full, url,
                   json_pack("{s:s?,s:b}", "default_branch", branch, "enforce_admins", 0));

    checks = json_object_get(bp, "required_status_checks");
    ncontexts = json_array_size(json_object_get(checks, "contexts"));
    nchecks = json_array_size(json_object_get(checks, "checks"));
    if (!json_is_object(checks) || (ncontexts == 0 && nchecks == 0))
        rc |= emit(ev, GH_T_BP_NO_STATUS_CHECKS, "repository", full, full, url,
                   json_pack("{s:s?,s:b}", "default_branch", branch, "required_status_checks",
                             json_is_object(checks)));
    return rc ? -1 : 0;
}

static int check_staleness(casb_github_eval *ev, const json_t *repo, const char *full,
                           const char *url)
{
    const char *field = "pushed_at";
    const char *ts = casb_json_str(repo, field);
    time_t t;
    long long age_s;

    if (!ts) {
        field = "updated_at";
        ts = casb_json_str(repo, field);
    }
    if (!ts || casb_time_parse(ts, &t) != 0) {
        casb_github_eval_skip(ev, GH_T_REPO_STALE,
                              "repository %s has no readable pushed_at or updated_at", full);
        return 0;
    }
    age_s = ev->now_s - (long long)t;
    if (age_s <= CASB_GITHUB_STALE_AFTER_S)
        return 0;
    return emit(ev, GH_T_REPO_STALE, "repository", full, full, url,
                json_pack("{s:s,s:I}", field, ts, "days_since_update",
                          (json_int_t)(age_s / 86400)));
}

static int check_secret_scanning(casb_github_eval *ev, const json_t *repo, const char *full,
                                 const char *url, int archived)
{
    json_t *sa = json_object_get(repo, "security_and_analysis");
    const char *st;
    int rc = 0;

    st = json_is_object(sa) ? casb_json_path_str(sa, "secret_scanning.status") : NULL;
    if (!st)
        casb_github_eval_skip(ev, GH_T_REPO_SECRET_SCANNING_DISABLED, HIDDEN_REPO_FIELD,
                              "security_and_analysis.secret_scanning", full);
    else if (strcmp(st, "disabled") == 0)
        rc |= emit(ev, GH_T_REPO_SECRET_SCANNING_DISABLED, "repository", full, full, url,
                   json_pack("{s:s}", "secret_scanning", st));

    /* An archived repository accepts no pushes, so push protection has nothing to block. */
    if (archived)
        return rc ? -1 : 0;
    st = json_is_object(sa) ? casb_json_path_str(sa, "secret_scanning_push_protection.status")
                            : NULL;
    if (!st)
        casb_github_eval_skip(ev, GH_T_REPO_PUSH_PROTECTION_DISABLED, HIDDEN_REPO_FIELD,
                              "security_and_analysis.secret_scanning_push_protection", full);
    else if (strcmp(st, "disabled") == 0)
        rc |= emit(ev, GH_T_REPO_PUSH_PROTECTION_DISABLED, "repository", full, full, url,
                   json_pack("{s:s}", "secret_scanning_push_protection", st));
    return rc ? -1 : 0;
}

int casb_github_check_repo(casb_github_eval *ev, const json_t *repo)
{
    const char *full = casb_json_str(repo, "full_name");
    const char *url = casb_json_str(repo, "html_url");
    const char *visibility = casb_json_str(repo, "visibility");
    int archived = casb_json_bool(repo, "archived", 0);
    int is_public;
    int rc = 0;

    if (!full)
        return 0;

    if (visibility)
        is_public = strcmp(visibility, "public") == 0;
    else
        is_public = json_is_false(json_object_get(repo, "private"));
    if (is_public)
        rc |= emit(ev, GH_T_REPO_PUBLIC, "repository", full, full, url,
                   json_pack("{s:s,s:b}", "visibility", visibility ? visibility : "public",
                             "fork", casb_json_bool(repo, "fork", 0)));

    /* Archived repositories are read-only: branch rules and staleness do not apply, and
     * archiving is the very fix for staleness. An empty repository has no branch yet. */
    if (!archived) {
        rc |= check_staleness(ev, repo, full, url);
        if (!json_is_true(json_object_get(repo, "default_branch_missing")))
            rc |= check_branch_protection(ev, repo, full, url);
    }
    rc |= check_secret_scanning(ev, repo, full, url, archived);
    return rc ? -1 : 0;
}

/* ---- webhook --------------------------------------------------------------------------- */

/* Writes the host[:port] of url into buf (without userinfo, path or query): webhook URLs often
 * embed tokens in their path or query, which must not leave in findings. */
static void url_host(const char *url, char *buf, size_t buflen)
{
    const char *p = url ? strstr(url, "://") : NULL;
    const char *end, *at;
    size_t n;

    buf[0] = '\0';
    if (!p)
        return;
    p += 3;
    end = p + strcspn(p, "/?#");
    at = memchr(p, '@', (size_t)(end - p));
    while (at) {
        p = at + 1;
        at = memchr(p, '@', (size_t)(end - p));
    }
    n = (size_t)(end - p);
    if (n >= buflen)
        n = buflen - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

static json_t *hook_details(const json_t *hook, const char *host)
{
    json_t *d = json_object();

    copy_member(d, hook, "scope");
    copy_member(d, hook, "repository");
    copy_member(d, hook, "active");
    copy_member(d, hook, "events");
    json_object_set_new(d, "url_host", json_string(host));
    return d;
}

int casb_github_check_hook(casb_github_eval *ev, const json_t *hook)
{
    json_int_t id = casb_json_int(hook, "id", -1);
    const char *scope = casb_json_str(hook, "scope");
    const char *repo = casb_json_str(hook, "repository");
    const char *target = casb_json_str(hook, "target");
    const char *asset_url = casb_json_str(hook, "asset_url");
    json_t *config = json_object_get(hook, "config");
    const char *hook_url = casb_json_str(config, "url");
    const char *secret = casb_json_str(config, "secret");
    json_t *insecure = json_object_get(config, "insecure_ssl");
    char asset_id[512], name[512], host[256];
    int is_org, no_verify, plain_http;
    json_t *d;
    int rc = 0;

    if (id < 0 || !scope)
        return 0;
    is_org = strcmp(scope, "organization") == 0;
    if (!is_org && !repo)
        return 0;
    if (is_org)
        snprintf(asset_id, sizeof(asset_id), "org-hook:%lld", (long long)id);
    else
        snprintf(asset_id, sizeof(asset_id), "%s#hook:%lld", repo, (long long)id);
    /* Without its config a hook cannot be judged: a missing secret would be a guess. */
    if (!json_is_object(config)) {
        casb_github_eval_skip(ev, GH_T_WEBHOOK_NO_SECRET, "webhook %s has no config", asset_id);
        casb_github_eval_skip(ev, GH_T_WEBHOOK_INSECURE_SSL, "webhook %s has no config",
                              asset_id);
        return 0;
    }
    url_host(hook_url, host, sizeof(host));
    snprintf(name, sizeof(name), "%s webhook %lld%s%s", target ? target : (repo ? repo : "org"),
             (long long)id, host[0] ? " to " : "", host);

    if (!secret || !secret[0])
        rc |= emit(ev, GH_T_WEBHOOK_NO_SECRET, "webhook", asset_id, name, asset_url,
                   hook_details(hook, host));

    /* insecure_ssl is a string ("0"/"1") in GitHub's API; accept a number as well. A plain
     * http:// URL has no TLS to verify, which is worse than skipping verification. */
    no_verify = (json_is_string(insecure) && strcmp(json_string_value(insecure), "1") == 0) ||
                (json_is_integer(insecure) && json_integer_value(insecure) == 1);
    plain_http = hook_url && strncasecmp(hook_url, "http://", 7) == 0;
    if (no_verify || plain_http) {
        d = hook_details(hook, host);
        json_object_set_new(d, "insecure_ssl", json_boolean(no_verify));
        json_object_set_new(d, "plain_http", json_boolean(plain_http));
        rc |= emit(ev, GH_T_WEBHOOK_INSECURE_SSL, "webhook", asset_id, name, asset_url, d);
    }
    return rc ? -1 : 0;
}

/* ---- deploy key ------------------------------------------------------------------------ */

int casb_github_check_deploy_key(casb_github_eval *ev, const json_t *key)
{
    json_int_t id = casb_json_int(key, "id", -1);
    const char *repo = casb_json_str(key, "repository");
    const char *title = casb_json_str(key, "title");
    char asset_id[512], name[512];
    json_t *d;

    if (id < 0 || !repo)
        return 0;
    if (!json_is_false(json_object_get(key, "read_only")))
        return 0;
    snprintf(asset_id, sizeof(asset_id), "%s#key:%lld", repo, (long long)id);
    if (title && title[0])
        snprintf(name, sizeof(name), "%s (deploy key of %s)", title, repo);
    else
        snprintf(name, sizeof(name), "deploy key %lld of %s", (long long)id, repo);
    d = json_object();
    copy_member(d, key, "repository");
    copy_member(d, key, "title");
    copy_member(d, key, "read_only");
    copy_member(d, key, "created_at");
    copy_member(d, key, "last_used");
    copy_member(d, key, "added_by");
    return emit(ev, GH_T_REPO_DEPLOY_KEY_WRITE, "deploy_key", asset_id, name,
                casb_json_str(key, "asset_url"), d);
}

/* ---- installation ---------------------------------------------------------------------- */

/* Write access to these is dangerous when it spans every repository... */
static const char *const repo_sensitive[] = {
    "administration", "contents", "workflows", "secrets", "actions", "environments",
    "repository_hooks", NULL,
};
/* ...and to these whatever the repository selection: they act on the organization. */
static const char *const org_sensitive[] = {
    "members", "organization_administration", "organization_secrets", "organization_hooks",
    "organization_self_hosted_runners", NULL,
};

static int in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

int casb_github_check_installation(casb_github_eval *ev, const json_t *inst)
{
    json_int_t id = casb_json_int(inst, "id", -1);
    const char *slug = casb_json_str(inst, "app_slug");
    const char *selection = casb_json_str(inst, "repository_selection");
    json_t *perms = json_object_get(inst, "permissions");
    int all_repos = selection && strcmp(selection, "all") == 0;
    json_t *broad, *d;
    const char *perm;
    json_t *level;
    char asset_id[64], name[256];

    if (id < 0)
        return 0;
    /* A suspended installation holds no usable access. */
    if (casb_json_str(inst, "suspended_at"))
        return 0;

    broad = json_object();
    json_object_foreach(perms, perm, level) {
        const char *lv = json_string_value(level);

        if (!lv || (strcmp(lv, "write") != 0 && strcmp(lv, "admin") != 0))
            continue;
        if (in_list(org_sensitive, perm) || (all_repos && in_list(repo_sensitive, perm)))
            json_object_set_new(broad, perm, json_string(lv));
    }
    if (json_object_size(broad) == 0) {
        json_decref(broad);
        return 0;
    }
    snprintf(asset_id, sizeof(asset_id), "installation:%lld", (long long)id);
    snprintf(name, sizeof(name), "%s", slug ? slug : asset_id);
    d = json_object();
    copy_member(d, inst, "app_slug");
    copy_member(d, inst, "app_id");
    copy_member(d, inst, "repository_selection");
    json_object_set_new(d, "broad_permissions", broad);
    return emit(ev, GH_T_ORG_APP_BROAD_PERMISSIONS, "installation", asset_id, name,
                casb_json_str(inst, "html_url"), d);
}

/* ---- collaborator ---------------------------------------------------------------------- */

int casb_github_check_collaborator(casb_github_eval *ev, const json_t *collab)
{
    const char *login = casb_json_str(collab, "login");
    const char *repo = casb_json_str(collab, "repository");
    const char *role = casb_json_str(collab, "role_name");
    char asset_id[512], name[512];
    json_t *d;

    if (!login || !repo || !json_is_true(json_object_get(collab, "outside")))
        return 0;
    if (!json_is_true(casb_json_path(collab, "permissions.admin")) &&
        !(role && strcmp(role, "admin") == 0))
        return 0;
    snprintf(asset_id, sizeof(asset_id), "%s#collaborator:%s", repo, login);
    snprintf(name, sizeof(name), "%s on %s", login, repo);
    d = json_object();
    copy_member(d, collab, "login");
    copy_member(d, collab, "repository");
    copy_member(d, collab, "role_name");
    copy_member(d, collab, "permissions");
    return emit(ev, GH_T_REPO_OUTSIDE_COLLABORATOR_ADMIN, "collaborator", asset_id, name,
                casb_json_str(collab, "asset_url"), d);
}
