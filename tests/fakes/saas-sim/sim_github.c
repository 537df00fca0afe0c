/* GitHub's REST API over the tenant documents: every request resolves its org, counts in
 * the org's stats, may draw a fault, is authenticated like GitHub does it, takes one from the
 * rate budget, and is answered in GitHub's shapes with GitHub's headers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "casb/json.h"
#include "casb/log.h"
#include "casb/timeutil.h"
#include "sim.h"

#define DOCS_REST "https://docs.github.com/rest"
#define DOCS_PRIMARY \
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit"
#define DOCS_SECONDARY \
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
#define DOCS_PROTECTION "https://docs.github.com/rest/branches/branch-protection#get-branch-protection"
#define MSG_SECONDARY \
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. " \
    "If you reach out to GitHub Support for help, please include the request ID %s."
#define DEFAULT_PER_PAGE 30
#define MAX_PER_PAGE 100
#define DEFAULT_TIME "2020-01-01T00:00:00Z"

typedef enum { SCOPE_ORG, SCOPE_OWNER, SCOPE_INSTALLATION, SCOPE_TOKEN } gh_scope;
typedef enum { AUTH_TOKEN, AUTH_JWT } gh_auth;
#define GH_NO_RATE 1 /* GET /rate_limit does not count against the primary limit */

typedef struct gh_call gh_call;
typedef void (*gh_build)(gh_call *c);

typedef struct {
    const char *method;
    const char *pattern;
    const char *endpoint; /* "GET /orgs/{org}/repos": the stats key */
    gh_scope scope;
    gh_auth auth;
    int flags;
    gh_build build;
} gh_route;

struct gh_call {
    sim *s;
    casb_http_req *req;
    const gh_route *route;
    sim_org *org; /* valid while s->lock is held */
    sim_credential cred;
    int is_installation;
    char base[256];      /* this server as the client reached it: "http://127.0.0.1:8090" */
    char request_id[40];
    int status;
    json_t *body;
    char *text;     /* body serialised, when the ETag needed it */
    char etag[24];  /* W/"<16 hex>" of a 200 GET, else "" */
    char *link;
};

/* ---------- small helpers ---------- */

static void set_str(json_t *o, const char *key, const char *value)
{
    json_object_set_new(o, key, value ? json_string(value) : json_null());
}

static void set_fmt(json_t *o, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_fmt(json_t *o, const char *key, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_object_set_new(o, key, json_string(buf));
}

static int in_list(const char *key, const char *const *list)
{
    for (size_t i = 0; list && list[i]; i++) {
        if (strcmp(key, list[i]) == 0)
            return 1;
    }
    return 0;
}

/* Copies src's members over dst, except the simulator's own bookkeeping keys. */
static void overlay(json_t *dst, const json_t *src, const char *const *skip)
{
    const char *key;
    json_t *v;

    if (!json_is_object(src))
        return;
    json_object_foreach((json_t *)src, key, v) {
        if (!in_list(key, skip))
            json_object_set_new(dst, key, json_deep_copy(v));
    }
}

static const char *str_or(const json_t *o, const char *key, const char *def)
{
    const char *v = casb_json_str(o, key);
    return v ? v : def;
}

static void reply(gh_call *c, int status, json_t *body)
{
    json_decref(c->body);
    c->status = status;
    c->body = body;
}

static void reply_error(gh_call *c, int status, const char *message, const char *docs)
{
    char code[8];

    snprintf(code, sizeof code, "%d", status);
    reply(c, status, json_pack("{s:s, s:s, s:s}", "message", message, "documentation_url",
                               docs ? docs : DOCS_REST, "status", code));
}

static void reply_invalid(gh_call *c, const char *resource, const char *field)
{
    reply(c, 422,
          json_pack("{s:s, s:[{s:s, s:s, s:s}], s:s, s:s}", "message", "Validation Failed",
                    "errors", "resource", resource, "field", field, "code", "invalid",
                    "documentation_url", DOCS_REST, "status", "422"));
}

static int query(gh_call *c, const char *name, char *buf, size_t len)
{
    return casb_http_query(c->req, name, buf, len) == 1;
}

/* A query parameter that must be one of values (default def); 0 when it is not. */
static int query_enum(gh_call *c, const char *name, const char *const *values, const char *def,
                      char *buf, size_t len)
{
    if (!query(c, name, buf, len)) {
        snprintf(buf, len, "%s", def);
        return 1;
    }
    return in_list(buf, values);
}

/* ---------- GitHub object shapes ---------- */

static json_t *simple_user(const gh_call *c, const char *login, long long id, int org)
{
    json_t *u = json_object();
    const char *b = c->base;

    json_object_set_new(u, "login", json_string(login));
    json_object_set_new(u, "id", json_integer(id));
    set_fmt(u, "node_id", "%s_%lld", org ? "O" : "U", id);
    set_fmt(u, "avatar_url", "https://avatars.githubusercontent.com/u/%lld?v=4", id);
    set_str(u, "gravatar_id", "");
    set_fmt(u, "url", "%s/users/%s", b, login);
    set_fmt(u, "html_url", "https://github.com/%s", login);
    set_fmt(u, "followers_url", "%s/users/%s/followers", b, login);
    set_fmt(u, "following_url", "%s/users/%s/following{/other_user}", b, login);
    set_fmt(u, "gists_url", "%s/users/%s/gists{/gist_id}", b, login);
    set_fmt(u, "starred_url", "%s/users/%s/starred{/owner}{/repo}", b, login);
    set_fmt(u, "subscriptions_url", "%s/users/%s/subscriptions", b, login);
    set_fmt(u, "organizations_url", "%s/users/%s/orgs", b, login);
    set_fmt(u, "repos_url", "%s/users/%s/repos", b, login);
    set_fmt(u, "events_url", "%s/users/%s/events{/privacy}", b, login);
    set_fmt(u, "received_events_url", "%s/users/%s/received_events", b, login);
    set_str(u, "type", org ? "Organization" : "User");
    json_object_set_new(u, "user_view_type", json_string("public"));
    json_object_set_new(u, "site_admin", json_false());
    return u;
}

static const char *const PERSON_SKIP[] = {"role", "two_factor", "two_factor_insecure", "outside",
                                          "permissions", NULL};

static json_t *person_json(const gh_call *c, const json_t *p)
{
    const char *login = casb_json_str(p, "login");
    json_t *u = simple_user(c, login, casb_json_int(p, "id", sim_fallback_id(login, 10000000)), 0);

    overlay(u, p, PERSON_SKIP);
    return u;
}

static json_t *org_owner(const gh_call *c)
{
    return simple_user(c, c->org->login, sim_org_id(c->org), 1);
}

/* Fills in every permission implied by the highest one given ({"push":true} -> triage, pull). */
static json_t *full_permissions(const json_t *given, const char **role_name)
{
    int admin = casb_json_bool(given, "admin", 0);
    int maintain = admin || casb_json_bool(given, "maintain", 0);
    int push = maintain || casb_json_bool(given, "push", 0);
    int triage = push || casb_json_bool(given, "triage", 0);
    int pull = 1;

    if (role_name)
        *role_name = admin ? "admin" : maintain ? "maintain" : push ? "write" : triage ? "triage" : "read";
    return json_pack("{s:b, s:b, s:b, s:b, s:b}", "admin", admin, "maintain", maintain, "push",
                     push, "triage", triage, "pull", pull);
}

static const char *const REPO_SKIP[] = {"branch_protection", "deploy_keys", "hooks",
                                        "collaborators", "created_at", "updated_at",
                                        "pushed_at", NULL};

/* A tenant time as served: relative ones (sim_time_relative) resolved now. */
static const char *resolve_time(const char *in, char *buf, size_t len)
{
    time_t at;

    if (!sim_time_relative(in, &at))
        return in;
    casb_time_rfc3339(buf, len, at);
    return buf;
}

static json_t *repo_json(const gh_call *c, const json_t *r)
{
    const char *name = casb_json_str(r, "name");
    const char *org = c->org->login;
    const char *b = c->base;
    json_t *v = json_object_get(r, "private");
    const char *vis = casb_json_str(r, "visibility");
    int is_private = json_is_boolean(v) ? json_is_true(v) : (vis && strcmp(vis, "public") != 0);
    char created_buf[40], updated_buf[40], pushed_buf[40];
    const char *created = resolve_time(str_or(r, "created_at", DEFAULT_TIME), created_buf,
                                       sizeof created_buf);
    const char *updated = resolve_time(str_or(r, "updated_at", str_or(r, "pushed_at", created)),
                                       updated_buf, sizeof updated_buf);
    const char *pushed = resolve_time(str_or(r, "pushed_at", updated), pushed_buf,
                                      sizeof pushed_buf);
    long long id = casb_json_int(r, "id", sim_fallback_id(name, 100000000));
    char full[512];
    json_t *o = json_object();

    snprintf(full, sizeof full, "%s/%s", org, name);
    json_object_set_new(o, "id", json_integer(id));
    set_fmt(o, "node_id", "R_%lld", id);
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "full_name", json_string(full));
    json_object_set_new(o, "private", json_boolean(is_private));
    json_object_set_new(o, "owner", org_owner(c));
    set_fmt(o, "html_url", "https://github.com/%s", full);
    set_str(o, "description", casb_json_str(r, "description"));
    json_object_set_new(o, "fork", json_boolean(casb_json_bool(r, "fork", 0)));
    set_fmt(o, "url", "%s/repos/%s", b, full);
    set_fmt(o, "forks_url", "%s/repos/%s/forks", b, full);
    set_fmt(o, "keys_url", "%s/repos/%s/keys{/key_id}", b, full);
    set_fmt(o, "collaborators_url", "%s/repos/%s/collaborators{/collaborator}", b, full);
    set_fmt(o, "teams_url", "%s/repos/%s/teams", b, full);
    set_fmt(o, "hooks_url", "%s/repos/%s/hooks", b, full);
    set_fmt(o, "issue_events_url", "%s/repos/%s/issues/events{/number}", b, full);
    set_fmt(o, "events_url", "%s/repos/%s/events", b, full);
    set_fmt(o, "assignees_url", "%s/repos/%s/assignees{/user}", b, full);
    set_fmt(o, "branches_url", "%s/repos/%s/branches{/branch}", b, full);
    set_fmt(o, "tags_url", "%s/repos/%s/tags", b, full);
    set_fmt(o, "blobs_url", "%s/repos/%s/git/blobs{/sha}", b, full);
    set_fmt(o, "git_tags_url", "%s/repos/%s/git/tags{/sha}", b, full);
    set_fmt(o, "git_refs_url", "%s/repos/%s/git/refs{/sha}", b, full);
    set_fmt(o, "trees_url", "%s/repos/%s/git/trees{/sha}", b, full);
    set_fmt(o, "statuses_url", "%s/repos/%s/statuses/{sha}", b, full);
    set_fmt(o, "languages_url", "%s/repos/%s/languages", b, full);
    set_fmt(o, "stargazers_url", "%s/repos/%s/stargazers", b, full);
    set_fmt(o, "contributors_url", "%s/repos/%s/contributors", b, full);
    set_fmt(o, "subscribers_url", "%s/repos/%s/subscribers", b, full);
    set_fmt(o, "subscription_url", "%s/repos/%s/subscription", b, full);
    set_fmt(o, "commits_url", "%s/repos/%s/commits{/sha}", b, full);
    set_fmt(o, "git_commits_url", "%s/repos/%s/git/commits{/sha}", b, full);
    set_fmt(o, "comments_url", "%s/repos/%s/comments{/number}", b, full);
    set_fmt(o, "issue_comment_url", "%s/repos/%s/issues/comments{/number}", b, full);
    set_fmt(o, "contents_url", "%s/repos/%s/contents/{+path}", b, full);
    set_fmt(o, "compare_url", "%s/repos/%s/compare/{base}...{head}", b, full);
    set_fmt(o, "merges_url", "%s/repos/%s/merges", b, full);
    set_fmt(o, "archive_url", "%s/repos/%s/{archive_format}{/ref}", b, full);
    set_fmt(o, "downloads_url", "%s/repos/%s/downloads", b, full);
    set_fmt(o, "issues_url", "%s/repos/%s/issues{/number}", b, full);
    set_fmt(o, "pulls_url", "%s/repos/%s/pulls{/number}", b, full);
    set_fmt(o, "milestones_url", "%s/repos/%s/milestones{/number}", b, full);
    set_fmt(o, "notifications_url", "%s/repos/%s/notifications{?since,all,participating}", b, full);
    set_fmt(o, "labels_url", "%s/repos/%s/labels{/name}", b, full);
    set_fmt(o, "releases_url", "%s/repos/%s/releases{/id}", b, full);
    set_fmt(o, "deployments_url", "%s/repos/%s/deployments", b, full);
    set_fmt(o, "git_url", "git://github.com/%s.git", full);
    set_fmt(o, "ssh_url", "git@github.com:%s.git", full);
    set_fmt(o, "clone_url", "https://github.com/%s.git", full);
    set_fmt(o, "svn_url", "https://github.com/%s", full);
    json_object_set_new(o, "homepage", json_null());
    json_object_set_new(o, "language", json_null());
    json_object_set_new(o, "forks_count", json_integer(0));
    json_object_set_new(o, "stargazers_count", json_integer(0));
    json_object_set_new(o, "watchers_count", json_integer(0));
    json_object_set_new(o, "size", json_integer(0));
    set_str(o, "default_branch", str_or(r, "default_branch", "main"));
    json_object_set_new(o, "open_issues_count", json_integer(0));
    json_object_set_new(o, "is_template", json_false());
    json_object_set_new(o, "topics", json_array());
    json_object_set_new(o, "has_issues", json_true());
    json_object_set_new(o, "has_projects", json_true());
    json_object_set_new(o, "has_wiki", json_true());
    json_object_set_new(o, "has_pages", json_false());
    json_object_set_new(o, "has_downloads", json_true());
    json_object_set_new(o, "has_discussions", json_false());
    json_object_set_new(o, "archived", json_boolean(casb_json_bool(r, "archived", 0)));
    json_object_set_new(o, "disabled", json_false());
    set_str(o, "visibility", vis ? vis : is_private ? "private" : "public");
    set_str(o, "pushed_at", pushed);
    set_str(o, "created_at", created);
    set_str(o, "updated_at", updated);
    /* The scanner reads as an org owner: full rights, unless the tenant says otherwise. */
    json_t *owner_perms = json_pack("{s:b}", "admin", 1);
    json_t *given = json_object_get(r, "permissions");
    json_object_set_new(o, "permissions", full_permissions(given ? given : owner_perms, NULL));
    json_decref(owner_perms);
    json_object_set_new(o, "allow_forking", json_true());
    json_object_set_new(o, "web_commit_signoff_required", json_false());
    json_object_set_new(o, "forks", json_integer(0));
    json_object_set_new(o, "open_issues", json_integer(0));
    json_object_set_new(o, "watchers", json_integer(0));
    json_object_set_new(o, "license", json_null());
    /* Null, as GitHub sends to callers who may not see it, when the tenant does not say. */
    json_object_set_new(o, "security_and_analysis", json_null());
    overlay(o, r, REPO_SKIP);
    /* Overlaid last so that a tenant's "private" and "visibility" stay consistent. */
    json_object_set_new(o, "private", json_boolean(is_private));
    set_str(o, "visibility", vis ? vis : is_private ? "private" : "public");
    return o;
}

static json_t *hook_json(const gh_call *c, const json_t *h, size_t index, const char *repo)
{
    long long id = casb_json_int(h, "id", (long long)index + 1);
    json_t *o = json_object();
    json_t *config;

    json_object_set_new(o, "id", json_integer(id));
    if (repo) {
        set_str(o, "type", "Repository");
        set_fmt(o, "url", "%s/repos/%s/%s/hooks/%lld", c->base, c->org->login, repo, id);
        set_fmt(o, "test_url", "%s/repos/%s/%s/hooks/%lld/test", c->base, c->org->login, repo, id);
        set_fmt(o, "ping_url", "%s/repos/%s/%s/hooks/%lld/pings", c->base, c->org->login, repo, id);
        set_fmt(o, "deliveries_url", "%s/repos/%s/%s/hooks/%lld/deliveries", c->base,
                c->org->login, repo, id);
        json_object_set_new(o, "last_response", json_pack("{s:n, s:s, s:n}", "code", "status",
                                                          "unused", "message"));
    } else {
        set_str(o, "type", "Organization");
        set_fmt(o, "url", "%s/orgs/%s/hooks/%lld", c->base, c->org->login, id);
        set_fmt(o, "ping_url", "%s/orgs/%s/hooks/%lld/pings", c->base, c->org->login, id);
        set_fmt(o, "deliveries_url", "%s/orgs/%s/hooks/%lld/deliveries", c->base, c->org->login, id);
    }
    set_str(o, "name", "web");
    json_object_set_new(o, "active", json_true());
    json_object_set_new(o, "events", json_pack("[s]", "push"));
    json_object_set_new(o, "config", json_pack("{s:s, s:s}", "content_type", "json",
                                               "insecure_ssl", "0"));
    set_str(o, "created_at", DEFAULT_TIME);
    set_str(o, "updated_at", DEFAULT_TIME);
    overlay(o, h, NULL);
    /* GitHub never returns a webhook secret, only that one is set. */
    config = json_object_get(o, "config");
    if (json_is_object(config) && json_object_get(config, "secret")) {
        const char *secret = casb_json_str(config, "secret");
        if (secret && secret[0])
            json_object_set_new(config, "secret", json_string("********"));
        else
            json_object_del(config, "secret");
    }
    return o;
}

static json_t *default_app_permissions(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "administration", "read", "members", "read",
                     "metadata", "read", "organization_administration", "read",
                     "organization_hooks", "read");
}

static json_t *installation_json(const gh_call *c, const json_t *inst)
{
    long long id = casb_json_int(inst, "id", 0);
    json_t *o = json_object();

    json_object_set_new(o, "id", json_integer(id));
    set_fmt(o, "client_id", "Iv1.%016llx", (unsigned long long)casb_json_int(inst, "app_id", 0));
    json_object_set_new(o, "account", org_owner(c));
    set_str(o, "repository_selection", "all");
    set_fmt(o, "access_tokens_url", "%s/app/installations/%lld/access_tokens", c->base, id);
    set_fmt(o, "repositories_url", "%s/installation/repositories", c->base);
    set_fmt(o, "html_url", "https://github.com/organizations/%s/settings/installations/%lld",
            c->org->login, id);
    json_object_set_new(o, "app_id", json_integer(casb_json_int(inst, "app_id", 0)));
    set_fmt(o, "app_slug", "app-%lld", casb_json_int(inst, "app_id", 0));
    json_object_set_new(o, "target_id", json_integer(sim_org_id(c->org)));
    set_str(o, "target_type", "Organization");
    json_object_set_new(o, "permissions", json_object());
    json_object_set_new(o, "events", json_array());
    set_str(o, "created_at", DEFAULT_TIME);
    set_str(o, "updated_at", DEFAULT_TIME);
    json_object_set_new(o, "single_file_name", json_null());
    json_object_set_new(o, "has_multiple_single_files", json_false());
    json_object_set_new(o, "single_file_paths", json_array());
    json_object_set_new(o, "suspended_by", json_null());
    json_object_set_new(o, "suspended_at", json_null());
    overlay(o, inst, NULL);
    return o;
}

/* The installation of the org's own app (the one that authenticates with a JWT): its entry
 * in "installations" when listed there, else one made from auth.app. */
static json_t *app_installation(const gh_call *c)
{
    json_t *app = casb_json_path(c->org->doc, "auth.app");
    long long id = casb_json_int(app, "installation_id", -1);
    json_t *list = json_object_get(c->org->doc, "installations");
    json_t *inst, *made, *out;
    size_t i;

    json_array_foreach(list, i, inst) {
        if (casb_json_int(inst, "id", -2) == id)
            return installation_json(c, inst);
    }
    made = json_pack("{s:I, s:I, s:s, s:s, s:[]}", "id", (json_int_t)id, "app_id",
                     (json_int_t)casb_json_int(app, "app_id", 0), "app_slug",
                     str_or(app, "app_slug", "casb-scanner"), "repository_selection", "all",
                     "events");
    json_object_set_new(made, "permissions", json_is_object(json_object_get(app, "permissions"))
                                                 ? json_deep_copy(json_object_get(app, "permissions"))
                                                 : default_app_permissions());
    out = installation_json(c, made);
    json_decref(made);
    return out;
}

/* ---------- pagination ---------- */

static void url_encode(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

static void link_rel(FILE *f, gh_call *c, const char *const *carry, long per_page, int per_page_given,
                     long page, const char *rel, int *first)
{
    char buf[256];
    char sep = '?';

    fprintf(f, "%s<%s%s", *first ? "" : ", ", c->base, casb_http_path(c->req));
    for (size_t i = 0; carry && carry[i]; i++) {
        if (!query(c, carry[i], buf, sizeof buf))
            continue;
        fprintf(f, "%c%s=", sep, carry[i]);
        url_encode(f, buf);
        sep = '&';
    }
    if (per_page_given) {
        fprintf(f, "%cper_page=%ld", sep, per_page);
        sep = '&';
    }
    fprintf(f, "%cpage=%ld>; rel=\"%s\"", sep, page, rel);
    *first = 0;
}

/* Answers one page of items (stolen) as GitHub does: per_page default 30, at most 100, page
 * from 1, and a Link header with prev/next/last/first carrying the request's parameters. */
static json_t *paginate(gh_call *c, json_t *items, const char *const *carry)
{
    char buf[32];
    long per_page = DEFAULT_PER_PAGE, page = 1;
    int per_page_given = 0;
    size_t total = json_array_size(items);
    json_t *out = json_array();
    long last;
    char *link = NULL;
    size_t linklen = 0;
    FILE *f;
    int first = 1;

    if (query(c, "per_page", buf, sizeof buf)) {
        char *end = NULL;
        long v = strtol(buf, &end, 10);
        if (end && *end == '\0' && v > 0) {
            per_page = v > MAX_PER_PAGE ? MAX_PER_PAGE : v;
            per_page_given = 1;
        }
    }
    if (query(c, "page", buf, sizeof buf)) {
        char *end = NULL;
        long v = strtol(buf, &end, 10);
        if (end && *end == '\0' && v > 0)
            page = v;
    }
    last = total == 0 ? 1 : (long)((total + (size_t)per_page - 1) / (size_t)per_page);
    for (size_t i = (size_t)(page - 1) * (size_t)per_page;
         page <= last && i < total && i < (size_t)page * (size_t)per_page; i++)
        json_array_append(out, json_array_get(items, i));
    json_decref(items);
    if (last <= 1 && page <= 1)
        return out; /* one page: GitHub omits the header */
    f = open_memstream(&link, &linklen);
    if (!f)
        return out;
    if (page > 1)
        link_rel(f, c, carry, per_page, per_page_given, page - 1 < last ? page - 1 : last, "prev",
                 &first);
    if (page < last) {
        link_rel(f, c, carry, per_page, per_page_given, page + 1, "next", &first);
        link_rel(f, c, carry, per_page, per_page_given, last, "last", &first);
    }
    if (page > 1)
        link_rel(f, c, carry, per_page, per_page_given, 1, "first", &first);
    fclose(f);
    free(c->link);
    c->link = link;
    return out;
}

/* paginate over tenant items (stolen array, items borrowed from the document), each item of
 * the page answered as map makes it: only the page's items are built, so that listing a
 * large org costs per page what the page holds. */
static json_t *paginate_map(gh_call *c, json_t *raw, json_t *(*map)(const gh_call *, const json_t *),
                            const char *const *carry)
{
    json_t *page = paginate(c, raw, carry);
    json_t *out = json_array();
    json_t *it;
    size_t i;

    json_array_foreach(page, i, it)
        json_array_append_new(out, map(c, it));
    json_decref(page);
    return out;
}

/* ---------- endpoints ---------- */

static void build_org(gh_call *c)
{
    const json_t *doc = c->org->doc;
    const char *login = c->org->login;
    long long id = sim_org_id(c->org);
    json_t *o = json_object();
    json_t *repos = json_object_get(doc, "repos"), *r;
    long long public_repos = 0, private_repos = 0;
    size_t i;

    json_array_foreach(repos, i, r) {
        if (casb_json_bool(r, "private", 0) ||
            (casb_json_str(r, "visibility") && strcmp(casb_json_str(r, "visibility"), "public") != 0))
            private_repos++;
        else
            public_repos++;
    }
    json_object_set_new(o, "login", json_string(login));
    json_object_set_new(o, "id", json_integer(id));
    set_fmt(o, "node_id", "O_%lld", id);
    set_fmt(o, "url", "%s/orgs/%s", c->base, login);
    set_fmt(o, "repos_url", "%s/orgs/%s/repos", c->base, login);
    set_fmt(o, "events_url", "%s/orgs/%s/events", c->base, login);
    set_fmt(o, "hooks_url", "%s/orgs/%s/hooks", c->base, login);
    set_fmt(o, "issues_url", "%s/orgs/%s/issues", c->base, login);
    set_fmt(o, "members_url", "%s/orgs/%s/members{/member}", c->base, login);
    set_fmt(o, "public_members_url", "%s/orgs/%s/public_members{/member}", c->base, login);
    set_fmt(o, "avatar_url", "https://avatars.githubusercontent.com/u/%lld?v=4", id);
    json_object_set_new(o, "description", json_null());
    set_str(o, "name", login);
    json_object_set_new(o, "is_verified", json_false());
    json_object_set_new(o, "has_organization_projects", json_true());
    json_object_set_new(o, "has_repository_projects", json_true());
    json_object_set_new(o, "public_repos", json_integer(public_repos));
    json_object_set_new(o, "public_gists", json_integer(0));
    json_object_set_new(o, "followers", json_integer(0));
    json_object_set_new(o, "following", json_integer(0));
    set_fmt(o, "html_url", "https://github.com/%s", login);
    set_str(o, "created_at", DEFAULT_TIME);
    set_str(o, "updated_at", DEFAULT_TIME);
    json_object_set_new(o, "archived_at", json_null());
    set_str(o, "type", "Organization");
    json_object_set_new(o, "total_private_repos", json_integer(private_repos));
    json_object_set_new(o, "owned_private_repos", json_integer(private_repos));
    json_object_set_new(o, "private_gists", json_integer(0));
    json_object_set_new(o, "disk_usage", json_integer(0));
    json_object_set_new(o, "collaborators",
                        json_integer((json_int_t)json_array_size(json_object_get(doc, "outside_collaborators"))));
    json_object_set_new(o, "default_repository_permission", json_string("read"));
    json_object_set_new(o, "members_can_create_repositories", json_true());
    json_object_set_new(o, "two_factor_requirement_enabled", json_false());
    json_object_set_new(o, "members_allowed_repository_creation_type", json_string("all"));
    json_object_set_new(o, "plan", json_pack("{s:s, s:i, s:i, s:I, s:i}", "name", "team", "space",
                                             976562499, "private_repos", 999999, "filled_seats",
                                             (json_int_t)json_array_size(json_object_get(doc, "members")),
                                             "seats", 50));
    overlay(o, json_object_get(doc, "org"), NULL);
    reply(c, 200, o);
}

static void build_org_installation(gh_call *c)
{
    reply(c, 200, app_installation(c));
}

static void build_installation(gh_call *c)
{
    reply(c, 200, app_installation(c));
}

static int level_of(const char *v)
{
    if (!v)
        return 0;
    if (strcmp(v, "read") == 0)
        return 1;
    if (strcmp(v, "write") == 0)
        return 2;
    if (strcmp(v, "admin") == 0)
        return 3;
    return 0;
}

static void build_access_token(gh_call *c)
{
    json_t *inst = app_installation(c);
    json_t *granted = json_object_get(inst, "permissions");
    json_t *perms = json_deep_copy(granted);
    const char *selection = str_or(inst, "repository_selection", "all");
    json_t *repositories = NULL, *req = NULL;
    size_t len = 0;
    const char *raw = casb_http_body(c->req, &len);
    char token[64], expires[40];
    time_t expires_at;

    if (raw && len > 0) {
        req = casb_json_parse(raw, len, 16, NULL, 0);
        if (!json_is_object(req)) {
            reply_error(c, 400, "Problems parsing JSON", DOCS_REST);
            goto out;
        }
    }
    /* A token can be narrowed, never widened, below what the installation holds. */
    if (json_is_object(json_object_get(req, "permissions"))) {
        const char *key;
        json_t *v;
        json_decref(perms);
        perms = json_object();
        json_object_foreach(json_object_get(req, "permissions"), key, v) {
            if (!json_is_string(v) || level_of(json_string_value(v)) == 0 ||
                level_of(json_string_value(v)) > level_of(casb_json_str(granted, key))) {
                reply(c, 422, json_pack("{s:s, s:s, s:s}", "message",
                                        "The permissions requested are not granted to this installation.",
                                        "documentation_url", DOCS_REST, "status", "422"));
                goto out;
            }
            json_object_set(perms, key, v);
        }
    }
    if (json_is_array(json_object_get(req, "repositories"))) {
        size_t i;
        json_t *name;
        repositories = json_array();
        json_array_foreach(json_object_get(req, "repositories"), i, name) {
            json_t *r = json_is_string(name) ? sim_org_repo(c->org, json_string_value(name)) : NULL;
            if (!r) {
                reply(c, 422, json_pack("{s:s, s:s, s:s}", "message",
                                        "There is at least one repository that does not exist or is not accessible to the parent installation.",
                                        "documentation_url", DOCS_REST, "status", "422"));
                goto out;
            }
            json_array_append_new(repositories, repo_json(c, r));
        }
        selection = "selected";
    }
    if (sim_token_issue(c->s, c->org, token, sizeof token, &expires_at) != 0) {
        reply_error(c, 500, "Server Error", DOCS_REST);
        goto out;
    }
    casb_time_rfc3339(expires, sizeof expires, expires_at);
    json_t *body = json_pack("{s:s, s:s, s:O, s:s}", "token", token, "expires_at", expires,
                             "permissions", perms, "repository_selection", selection);
    if (repositories)
        json_object_set(body, "repositories", repositories);
    casb_log_info("installation token issued", "org", c->org->login, "expires_at", expires);
    reply(c, 201, body);
out:
    json_decref(inst);
    json_decref(perms);
    json_decref(repositories);
    json_decref(req);
}

/* 2fa_disabled: two_factor false. 2fa_insecure: two_factor_insecure true (SMS as 2FA). */
static int matches_2fa(const json_t *p, const char *filter)
{
    if (strcmp(filter, "2fa_disabled") == 0)
        return !casb_json_bool(p, "two_factor", 1);
    if (strcmp(filter, "2fa_insecure") == 0)
        return casb_json_bool(p, "two_factor_insecure", 0);
    return 1;
}

static void build_people(gh_call *c, const char *field, int with_role)
{
    static const char *const FILTERS[] = {"all", "2fa_disabled", "2fa_insecure", NULL};
    static const char *const ROLES[] = {"all", "admin", "member", NULL};
    static const char *const CARRY[] = {"filter", "role", NULL};
    char filter[32], role[32];
    json_t *items, *p;
    size_t i;

    if (!query_enum(c, "filter", FILTERS, "all", filter, sizeof filter)) {
        reply_invalid(c, "Organization", "filter");
        return;
    }
    if (with_role && !query_enum(c, "role", ROLES, "all", role, sizeof role)) {
        reply_invalid(c, "Organization", "role");
        return;
    }
    items = json_array();
    json_array_foreach(json_object_get(c->org->doc, field), i, p) {
        if (!matches_2fa(p, filter))
            continue;
        if (with_role && strcmp(role, "all") != 0 && strcmp(str_or(p, "role", "member"), role) != 0)
            continue;
        json_array_append(items, p);
    }
    reply(c, 200, paginate_map(c, items, person_json, CARRY));
}

static void build_members(gh_call *c)
{
    build_people(c, "members", 1);
}

static void build_outside_collaborators(gh_call *c)
{
    build_people(c, "outside_collaborators", 0);
}

typedef struct {
    json_t *repo;
    const char *key;
} sort_item;

static int sort_cmp(const void *a, const void *b, void *desc)
{
    const sort_item *x = a, *y = b;
    int d = strcmp(x->key ? x->key : "", y->key ? y->key : "");
    return *(const int *)desc ? -d : d;
}

static void build_repos(gh_call *c)
{
    static const char *const TYPES[] = {"all", "public", "private", "forks", "sources", "member",
                                        "internal", NULL};
    static const char *const SORTS[] = {"created", "updated", "pushed", "full_name", NULL};
    static const char *const DIRS[] = {"asc", "desc", NULL};
    static const char *const CARRY[] = {"type", "sort", "direction", NULL};
    char type[16], sort[16], dir[8];
    json_t *repos = json_object_get(c->org->doc, "repos"), *r, *items;
    sort_item *sorted = NULL;
    size_t i, n = 0;
    int sort_given = query(c, "sort", sort, sizeof sort);

    if (!query_enum(c, "type", TYPES, "all", type, sizeof type)) {
        reply_invalid(c, "Repository", "type");
        return;
    }
    if (!query_enum(c, "sort", SORTS, "created", sort, sizeof sort)) {
        reply_invalid(c, "Repository", "sort");
        return;
    }
    if (!query_enum(c, "direction", DIRS, strcmp(sort, "full_name") == 0 ? "asc" : "desc", dir,
                    sizeof dir)) {
        reply_invalid(c, "Repository", "direction");
        return;
    }
    if (!sort_given && strcmp(type, "all") == 0) {
        /* Every repository in tenant order: build only the page's. */
        items = json_array();
        json_array_foreach(repos, i, r)
            json_array_append(items, r);
        reply(c, 200, paginate_map(c, items, repo_json, CARRY));
        return;
    }
    sorted = calloc(json_array_size(repos) + 1, sizeof *sorted);
    if (!sorted) {
        reply_error(c, 500, "Server Error", DOCS_REST);
        return;
    }
    json_array_foreach(repos, i, r) {
        json_t *full = repo_json(c, r);
        int priv = json_is_true(json_object_get(full, "private"));
        int fork = json_is_true(json_object_get(full, "fork"));
        const char *vis = casb_json_str(full, "visibility");
        if ((strcmp(type, "public") == 0 && priv) || (strcmp(type, "private") == 0 && !priv) ||
            (strcmp(type, "forks") == 0 && !fork) || (strcmp(type, "sources") == 0 && fork) ||
            (strcmp(type, "internal") == 0 && (!vis || strcmp(vis, "internal") != 0))) {
            json_decref(full);
            continue;
        }
        sorted[n].repo = full;
        sorted[n].key = casb_json_str(full, strcmp(sort, "full_name") == 0 ? "full_name"
                                            : strcmp(sort, "updated") == 0 ? "updated_at"
                                            : strcmp(sort, "pushed") == 0  ? "pushed_at"
                                                                           : "created_at");
        n++;
    }
    /* Without an explicit sort the tenant's order is kept: stable pages for tests. */
    if (sort_given) {
        int desc = strcmp(dir, "desc") == 0;
        qsort_r(sorted, n, sizeof *sorted, sort_cmp, &desc);
    }
    items = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(items, sorted[i].repo);
    free(sorted);
    reply(c, 200, paginate(c, items, CARRY));
}

static json_t *need_repo(gh_call *c)
{
    json_t *r = sim_org_repo(c->org, casb_http_param(c->req, "repo"));

    if (!r)
        reply_error(c, 404, "Not Found", DOCS_REST);
    return r;
}

static void build_repo(gh_call *c)
{
    json_t *r = need_repo(c);
    json_t *o;

    if (!r)
        return;
    o = repo_json(c, r);
    json_object_set_new(o, "organization", org_owner(c));
    json_object_set_new(o, "network_count", json_integer(0));
    json_object_set_new(o, "subscribers_count", json_integer(0));
    reply(c, 200, o);
}

static void set_url_in(json_t *parent, const char *key, const char *url)
{
    json_t *o = json_object_get(parent, key);

    if (json_is_object(o) && !json_object_get(o, "url"))
        json_object_set_new(o, "url", json_string(url));
}

static void build_protection(gh_call *c)
{
    json_t *r = need_repo(c), *bp, *o;
    const char *branch = casb_http_param(c->req, "branch");
    char u[1024];
    int n;

    if (!r)
        return;
    if (strcmp(branch, str_or(r, "default_branch", "main")) != 0) {
        reply_error(c, 404, "Branch not found", DOCS_PROTECTION);
        return;
    }
    bp = json_object_get(r, "branch_protection");
    if (!json_is_object(bp)) {
        reply_error(c, 404, "Branch not protected", DOCS_PROTECTION);
        return;
    }
    o = json_deep_copy(bp);
    n = snprintf(u, sizeof u, "%s/repos/%s/%s/branches/%s/protection", c->base, c->org->login,
                 casb_json_str(r, "name"), branch);
    if (n < 0 || (size_t)n >= sizeof u - 64) {
        json_decref(o);
        reply_error(c, 404, "Not Found", DOCS_REST);
        return;
    }
    if (!json_object_get(o, "url"))
        json_object_set_new(o, "url", json_string(u));
    char *end = u + n;
    const char *subs[] = {"required_status_checks", "enforce_admins", "required_pull_request_reviews",
                          "required_signatures", "restrictions"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        snprintf(end, sizeof u - (size_t)n, "/%s", subs[i]);
        set_url_in(o, subs[i], u);
    }
    json_t *checks = json_object_get(o, "required_status_checks");
    if (json_is_object(checks) && !json_object_get(checks, "contexts_url")) {
        snprintf(end, sizeof u - (size_t)n, "/required_status_checks/contexts");
        json_object_set_new(checks, "contexts_url", json_string(u));
    }
    reply(c, 200, o);
}

static void build_keys(gh_call *c)
{
    json_t *r = need_repo(c), *items, *k;
    size_t i;

    if (!r)
        return;
    items = json_array();
    json_array_foreach(json_object_get(r, "deploy_keys"), i, k) {
        long long id = casb_json_int(k, "id", (long long)i + 1);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(id));
        set_str(o, "key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyFakeKeyFakeKeyFakeKeyFakeKey00");
        set_fmt(o, "url", "%s/repos/%s/%s/keys/%lld", c->base, c->org->login,
                casb_json_str(r, "name"), id);
        set_str(o, "title", "deploy key");
        json_object_set_new(o, "verified", json_true());
        set_str(o, "created_at", DEFAULT_TIME);
        json_object_set_new(o, "read_only", json_true());
        json_object_set_new(o, "added_by", json_null());
        json_object_set_new(o, "last_used", json_null());
        json_object_set_new(o, "enabled", json_true());
        overlay(o, k, NULL);
        json_array_append_new(items, o);
    }
    reply(c, 200, paginate(c, items, NULL));
}

static void build_hooks(gh_call *c, const json_t *owner, const char *repo)
{
    json_t *items = json_array(), *h;
    size_t i;

    json_array_foreach(json_object_get(owner, "hooks"), i, h)
        json_array_append_new(items, hook_json(c, h, i, repo));
    reply(c, 200, paginate(c, items, NULL));
}

static void build_org_hooks(gh_call *c)
{
    build_hooks(c, c->org->doc, NULL);
}

static void build_repo_hooks(gh_call *c)
{
    json_t *r = need_repo(c);

    if (r)
        build_hooks(c, r, casb_json_str(r, "name"));
}

static json_t *collaborator_json(const gh_call *c, const json_t *p, const json_t *perms_in)
{
    const char *role_name;
    json_t *u = person_json(c, p);

    json_object_set_new(u, "permissions", full_permissions(perms_in, &role_name));
    set_str(u, "role_name", role_name);
    return u;
}

/* affiliation=outside: the repo's outside collaborators; direct: everyone listed on the repo;
 * all: those plus the org's members through their role and the base permission. */
static void build_collaborators(gh_call *c)
{
    static const char *const AFFILIATIONS[] = {"outside", "direct", "all", NULL};
    static const char *const CARRY[] = {"affiliation", "permission", NULL};
    char affiliation[16];
    json_t *r = need_repo(c), *items, *p;
    size_t i;

    if (!r)
        return;
    if (!query_enum(c, "affiliation", AFFILIATIONS, "all", affiliation, sizeof affiliation)) {
        reply_invalid(c, "Repository", "affiliation");
        return;
    }
    items = json_array();
    json_array_foreach(json_object_get(r, "collaborators"), i, p) {
        if (strcmp(affiliation, "outside") == 0 && !casb_json_bool(p, "outside", 0))
            continue;
        json_array_append_new(items, collaborator_json(c, p, json_object_get(p, "permissions")));
    }
    if (strcmp(affiliation, "all") == 0) {
        const char *base = casb_json_path_str(c->org->doc, "org.default_repository_permission");
        json_array_foreach(json_object_get(c->org->doc, "members"), i, p) {
            const char *login = casb_json_str(p, "login");
            int listed = 0;
            size_t j;
            json_t *q;
            json_array_foreach(json_object_get(r, "collaborators"), j, q) {
                if (strcasecmp(str_or(q, "login", ""), login) == 0)
                    listed = 1;
            }
            int admin = strcmp(str_or(p, "role", "member"), "admin") == 0;
            if (listed || (!admin && base && strcmp(base, "none") == 0))
                continue;
            json_t *perms = json_pack("{s:b, s:b}", "admin", admin || (base && strcmp(base, "admin") == 0),
                                      "push", base && strcmp(base, "write") == 0);
            json_array_append_new(items, collaborator_json(c, p, perms));
            json_decref(perms);
        }
    }
    reply(c, 200, paginate(c, items, CARRY));
}

static void build_installations(gh_call *c)
{
    json_t *items = json_array(), *inst, *page;
    size_t i, total;

    json_array_foreach(json_object_get(c->org->doc, "installations"), i, inst)
        json_array_append_new(items, installation_json(c, inst));
    total = json_array_size(items);
    page = paginate(c, items, NULL);
    reply(c, 200, json_pack("{s:I, s:o}", "total_count", (json_int_t)total, "installations", page));
}

static void build_rate_limit(gh_call *c)
{
    sim_rate rate;
    long long reset = (long long)time(NULL) + 3600;

    pthread_mutex_lock(&c->s->mu);
    sim_rate_take(c->org, 0, &rate);
    pthread_mutex_unlock(&c->s->mu);
    json_t *core = json_pack("{s:I, s:I, s:I, s:I, s:s}", "limit", (json_int_t)rate.limit, "used",
                             (json_int_t)rate.used, "remaining", (json_int_t)rate.remaining,
                             "reset", (json_int_t)rate.reset_s, "resource", "core");
    json_t *search = json_pack("{s:i, s:i, s:i, s:I, s:s}", "limit", 30, "used", 0, "remaining", 30,
                               "reset", (json_int_t)reset, "resource", "search");
    json_t *graphql = json_pack("{s:i, s:i, s:i, s:I, s:s}", "limit", 5000, "used", 0, "remaining",
                                5000, "reset", (json_int_t)reset, "resource", "graphql");
    reply(c, 200, json_pack("{s:{s:O, s:o, s:o}, s:o}", "resources", "core", core, "search",
                            search, "graphql", graphql, "rate", core));
}

/* ---------- the request pipeline ---------- */

static const gh_route ROUTES[] = {
    {"GET", "/orgs/{org}", "GET /orgs/{org}", SCOPE_ORG, AUTH_TOKEN, 0, build_org},
    {"GET", "/orgs/{org}/installation", "GET /orgs/{org}/installation", SCOPE_ORG, AUTH_JWT, 0,
     build_org_installation},
    {"POST", "/app/installations/{installation_id}/access_tokens",
     "POST /app/installations/{installation_id}/access_tokens", SCOPE_INSTALLATION, AUTH_JWT, 0,
     build_access_token},
    {"GET", "/app/installations/{installation_id}", "GET /app/installations/{installation_id}",
     SCOPE_INSTALLATION, AUTH_JWT, 0, build_installation},
    {"GET", "/orgs/{org}/members", "GET /orgs/{org}/members", SCOPE_ORG, AUTH_TOKEN, 0,
     build_members},
    {"GET", "/orgs/{org}/outside_collaborators", "GET /orgs/{org}/outside_collaborators",
     SCOPE_ORG, AUTH_TOKEN, 0, build_outside_collaborators},
    {"GET", "/orgs/{org}/repos", "GET /orgs/{org}/repos", SCOPE_ORG, AUTH_TOKEN, 0, build_repos},
    {"GET", "/repos/{owner}/{repo}", "GET /repos/{owner}/{repo}", SCOPE_OWNER, AUTH_TOKEN, 0,
     build_repo},
    {"GET", "/repos/{owner}/{repo}/branches/{branch}/protection",
     "GET /repos/{owner}/{repo}/branches/{branch}/protection", SCOPE_OWNER, AUTH_TOKEN, 0,
     build_protection},
    {"GET", "/repos/{owner}/{repo}/keys", "GET /repos/{owner}/{repo}/keys", SCOPE_OWNER,
     AUTH_TOKEN, 0, build_keys},
    {"GET", "/repos/{owner}/{repo}/hooks", "GET /repos/{owner}/{repo}/hooks", SCOPE_OWNER,
     AUTH_TOKEN, 0, build_repo_hooks},
    {"GET", "/repos/{owner}/{repo}/collaborators", "GET /repos/{owner}/{repo}/collaborators",
     SCOPE_OWNER, AUTH_TOKEN, 0, build_collaborators},
    {"GET", "/orgs/{org}/hooks", "GET /orgs/{org}/hooks", SCOPE_ORG, AUTH_TOKEN, 0,
     build_org_hooks},
    {"GET", "/orgs/{org}/installations", "GET /orgs/{org}/installations", SCOPE_ORG, AUTH_TOKEN,
     0, build_installations},
    {"GET", "/rate_limit", "GET /rate_limit", SCOPE_TOKEN, AUTH_TOKEN, GH_NO_RATE,
     build_rate_limit},
};

/* Link URLs point back at this server as the client named it; the Host header is trusted
 * only when it looks like host[:port]. */
static void base_url(gh_call *c)
{
    const char *host = casb_http_header(c->req, "Host");
    size_t n = host ? strlen(host) : 0;
    int ok = n > 0 && n < 200;

    for (size_t i = 0; ok && i < n; i++) {
        char ch = host[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']';
    }
    if (ok)
        snprintf(c->base, sizeof c->base, "http://%s", host);
    else
        snprintf(c->base, sizeof c->base, "%s", c->s->default_base_url);
}

static long long installation_param(gh_call *c)
{
    const char *v = casb_http_param(c->req, "installation_id");
    char *end = NULL;
    long long id = v ? strtoll(v, &end, 10) : -1;

    return (v && *v && end && *end == '\0') ? id : -1;
}

/* For a request whose org cannot be found: GitHub authenticates first (401), then hides what
 * the caller may not see behind 404. */
static void answer_orgless(gh_call *c)
{
    char msg[256];
    int is_inst;

    if (!c->cred.value) {
        if (casb_http_header(c->req, "Authorization"))
            reply_error(c, 401, "Bad credentials", DOCS_REST);
        else
            reply_error(c, 401, "Requires authentication", DOCS_REST);
        return;
    }
    if (c->route->auth == AUTH_JWT) {
        /* Unknown installation: a JWT that verifies for any known app gets 404. */
        for (size_t i = 0; i < c->s->norgs; i++) {
            if (sim_auth_jwt(c->s, c->s->orgs[i], &c->cred, msg, sizeof msg) == SIM_AUTH_OK) {
                reply_error(c, 404, "Not Found", DOCS_REST);
                return;
            }
        }
        reply_error(c, 401, "A JSON web token could not be decoded", DOCS_REST);
        return;
    }
    if (!c->cred.is_jwt && sim_auth_find_org(c->s, &c->cred, &is_inst))
        reply_error(c, 404, "Not Found", DOCS_REST);
    else
        reply_error(c, 401, "Bad credentials", DOCS_REST);
}

/* 1 when the request may go on; otherwise the reply is set. */
static int authenticate(gh_call *c)
{
    char msg[256];
    sim_auth_result rc;

    if (c->route->auth == AUTH_JWT) {
        if (!c->cred.value) {
            reply_error(c, 401, casb_http_header(c->req, "Authorization")
                                    ? "A JSON web token could not be decoded"
                                    : "Requires authentication",
                        DOCS_REST);
            return 0;
        }
        rc = sim_auth_jwt(c->s, c->org, &c->cred, msg, sizeof msg);
        if (rc == SIM_AUTH_OK)
            return 1;
        reply_error(c, rc == SIM_AUTH_OTHER_ORG ? 404 : 401, msg, DOCS_REST);
        return 0;
    }
    if (!c->cred.value) {
        reply_error(c, 401, casb_http_header(c->req, "Authorization") ? "Bad credentials"
                                                                      : "Requires authentication",
                    DOCS_REST);
        return 0;
    }
    rc = sim_auth_token(c->s, c->org, &c->cred, &c->is_installation);
    if (rc == SIM_AUTH_OK)
        return 1;
    if (rc == SIM_AUTH_OTHER_ORG)
        reply_error(c, 404, "Not Found", DOCS_REST);
    else
        reply_error(c, 401, "Bad credentials", DOCS_REST);
    return 0;
}

static void reply_fault(gh_call *c, const sim_fault_hit *hit)
{
    char msg[512];

    switch (hit->mode) {
    case SIM_FAULT_429:
        snprintf(msg, sizeof msg, MSG_SECONDARY, c->request_id);
        reply_error(c, 429, msg, DOCS_SECONDARY);
        break;
    case SIM_FAULT_500:
        reply_error(c, 500, "Server Error", DOCS_REST);
        break;
    case SIM_FAULT_503:
        reply_error(c, 503, "Service Unavailable", DOCS_REST);
        break;
    default:
        break;
    }
}

static void reply_primary_exhausted(gh_call *c)
{
    char msg[512];
    long long id = c->is_installation
                       ? casb_json_int(casb_json_path(c->org->doc, "auth.app"), "installation_id", 0)
                       : sim_fallback_id(c->org->login, 10000000);

    snprintf(msg, sizeof msg,
             "API rate limit exceeded for %s ID %lld. If you reach out to GitHub Support for "
             "help, please include the request ID %s and timestamp %lld.",
             c->is_installation ? "installation" : "user", id, c->request_id,
             (long long)time(NULL));
    reply_error(c, 403, msg, DOCS_PRIMARY);
}

static void add_header_num(casb_http_req *r, const char *name, long long v)
{
    char buf[32];

    snprintf(buf, sizeof buf, "%lld", v);
    casb_http_add_header(r, name, buf);
}

/* FNV-1a 64 of the body: the same document answers the same ETag, any change another. */
static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

/* GitHub answers GETs with an ETag and a conditional GET whose If-None-Match names it with
 * 304 and no body, which does not count against the primary rate limit. Sets c->etag (and
 * c->text) for a 200 GET; returns 1 when the request's If-None-Match matches it. Relative
 * tenant times ("now-400d") are resolved per request, so such documents change every second
 * and rarely match. */
static int conditional_match(gh_call *c)
{
    const char *inm = casb_http_header(c->req, "If-None-Match");

    if (c->status != 200 || strcmp(c->route->method, "GET") != 0 || !c->body)
        return 0;
    c->text = json_dumps(c->body, JSON_COMPACT);
    if (!c->text)
        return 0;
    snprintf(c->etag, sizeof c->etag, "W/\"%016llx\"", (unsigned long long)fnv1a64(c->text));
    return inm && (strcmp(inm, "*") == 0 || strstr(inm, c->etag + 2) != NULL);
}

/* Sends the reply with GitHub's headers and a Content-Length, as api.github.com does. */
static int send_reply(gh_call *c, const sim_rate *rate, const sim_fault_hit *hit)
{
    char *body = c->text ? c->text : c->body ? json_dumps(c->body, JSON_COMPACT) : strdup("{}");
    size_t body_len;
    int status = c->status ? c->status : 500;
    casb_http_req *r = c->req;

    c->text = NULL; /* body owns it now */
    if (!body)
        return casb_http_reply_problem(r, 500, "cannot serialise the response", NULL);
    body_len = status == 304 ? 0 : strlen(body);
    if (hit->mode == SIM_FAULT_MALFORMED) {
        /* Half of the document: never valid JSON, since its closing bracket is cut. */
        status = 200;
        body_len /= 2;
    }
    add_header_num(r, "x-ratelimit-limit", rate->limit);
    add_header_num(r, "x-ratelimit-remaining", rate->remaining);
    add_header_num(r, "x-ratelimit-used", rate->used);
    add_header_num(r, "x-ratelimit-reset", rate->reset_s);
    casb_http_add_header(r, "x-ratelimit-resource", "core");
    casb_http_add_header(r, "x-github-media-type", "github.v3; format=json");
    casb_http_add_header(r, "x-github-api-version-selected", "2022-11-28");
    casb_http_add_header(r, "x-github-request-id", c->request_id);
    if (c->etag[0])
        casb_http_add_header(r, "etag", c->etag);
    if (c->link)
        casb_http_add_header(r, "link", c->link);
    if (hit->mode == SIM_FAULT_429)
        add_header_num(r, "retry-after", hit->retry_after_s);
    casb_http_reply_text(r, status, "application/json; charset=utf-8", body, body_len);
    free(body);
    return status;
}

static int gh_serve(casb_http_req *r, const gh_route *rt)
{
    gh_call c = {.s = casb_http_app(r), .req = r, .route = rt};
    sim_fault_hit hit = {.mode = SIM_FAULT_NONE};
    sim_rate rate = {.limit = 60, .remaining = 60, .used = 0, .reset_s = time(NULL) + 3600};
    sim *s = c.s;
    int faulted = 0, status;

    snprintf(c.request_id, sizeof c.request_id, "5C1A:%04X:%08llX", (unsigned)(s->seed & 0xffff),
             (unsigned long long)atomic_fetch_add(&s->request_seq, 1));
    base_url(&c);
    (void)sim_credential_parse(casb_http_header(r, "Authorization"), &c.cred);

    pthread_rwlock_rdlock(&s->lock);
    switch (rt->scope) {
    case SCOPE_ORG:
        c.org = sim_org_find(s, casb_http_param(r, "org"));
        break;
    case SCOPE_OWNER:
        c.org = sim_org_find(s, casb_http_param(r, "owner"));
        break;
    case SCOPE_INSTALLATION:
        c.org = sim_org_by_installation(s, installation_param(&c));
        break;
    case SCOPE_TOKEN:
        if (c.cred.value && !c.cred.is_jwt)
            c.org = sim_auth_find_org(s, &c.cred, &c.is_installation);
        break;
    }
    if (!c.org) {
        answer_orgless(&c);
        goto unlock;
    }
    pthread_mutex_lock(&s->mu);
    sim_stats_count(c.org, rt->endpoint);
    faulted = sim_faults_pick(c.org, casb_http_path(r), &hit);
    if (faulted)
        c.org->faults_injected++;
    sim_rate_take(c.org, 0, &rate);
    pthread_mutex_unlock(&s->mu);
    if (faulted && (hit.mode == SIM_FAULT_429 || hit.mode == SIM_FAULT_500 ||
                    hit.mode == SIM_FAULT_503)) {
        reply_fault(&c, &hit);
        goto unlock;
    }
    if (!authenticate(&c))
        goto unlock;
    if (!(rt->flags & GH_NO_RATE)) {
        pthread_mutex_lock(&s->mu);
        int allowed = sim_rate_take(c.org, 1, &rate);
        pthread_mutex_unlock(&s->mu);
        if (!allowed) {
            reply_primary_exhausted(&c);
            goto unlock;
        }
    }
    rt->build(&c);
    if (hit.mode != SIM_FAULT_MALFORMED && conditional_match(&c)) {
        c.status = 304;
        if (!(rt->flags & GH_NO_RATE)) {
            pthread_mutex_lock(&s->mu);
            sim_rate_refund(c.org, &rate);
            c.org->not_modified++;
            pthread_mutex_unlock(&s->mu);
        }
    }
unlock:
    pthread_rwlock_unlock(&s->lock);
    if (faulted)
        casb_log_debug("fault injected", "mode", sim_fault_mode_name(hit.mode), "endpoint",
                       rt->endpoint, "request_id", c.request_id);
    sim_latency_hold(s, hit.mode == SIM_FAULT_SLOW || hit.mode == SIM_FAULT_TIMEOUT
                            ? hit.delay_ms
                            : 0);
    status = send_reply(&c, &rate, &hit);
    json_decref(c.body);
    free(c.text);
    free(c.link);
    return status;
}

/* One handler for every GitHub route: a handler is handed only the request, so the route is
 * found again from the method and path (the server has already matched one of them). */
static int gh_handler(casb_http_req *r)
{
    /* The server answers HEAD through the GET route, without a body. */
    const char *method = strcmp(casb_http_method(r), "HEAD") == 0 ? "GET" : casb_http_method(r);
    const char *path = casb_http_path(r);

    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        if (strcmp(ROUTES[i].method, method) == 0 && sim_path_matches(ROUTES[i].pattern, path))
            return gh_serve(r, &ROUTES[i]);
    }
    return casb_http_reply_problem(r, 404, "no such GitHub route", NULL);
}

int sim_github_routes(sim *s, casb_http_server *http)
{
    (void)s;
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        if (casb_http_route(http, ROUTES[i].method, ROUTES[i].pattern, gh_handler,
                            CASB_ROUTE_PUBLIC) != 0)
            return -1;
    }
    return 0;
}
