/* The GitHub provider end to end against a small in-process GitHub: a real HTTP server
 * (casb_http_server on 127.0.0.1) answering the REST endpoints the provider calls from a
 * tenant described in JSON, with GitHub's Link pagination (pages capped at 2 items to
 * exercise it), bearer-token checks, the App JWT -> installation token flow verified with the
 * App's public key, and per-test faults (403/422/500, a Link to another origin, malformed
 * bodies). Asserts the exact findings, the coverage, the requests made and their order.
 * The full simulator (tests/fakes/saas-sim) is exercised by the integration tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "casb/error.h"
#include "casb/http_client.h"
#include "casb/http_server.h"
#include "casb/json.h"
#include "casb/jwt.h"
#include "casb/log.h"
#include "casb/timeutil.h"
#include "github_internal.h"
#include "test_keys.h"
#include "test_sink_recorder.h"

#define ORG "acme"
#define TOKEN "ghp_testtoken0123456789"
#define APP_ID 1001
#define INSTALLATION_ID 2001
#define NOW_S 1795824000LL /* 2026-11-28T00:00:00Z */
#define PAGE_CAP 2

/* ---- the fake GitHub ------------------------------------------------------------------- */

typedef struct {
    char path[64];   /* substring of the request path */
    char query[64];  /* "name=value" that must be in the query string, or "" */
    int status;      /* answer with this status... */
    char message[128]; /* ...and {"message": message} */
    int remaining;   /* how many times (-1: always) */
    char header_name[64];   /* an extra response header, or "" */
    char header_value[128];
} fault;

static struct {
    pthread_mutex_t mu;
    casb_http_server *server;
    int port;
    char base[64];
    json_t *tenant;       /* the organization served */
    json_t *log;          /* ["GET /path?query", ...] in arrival order */
    json_t *auth_log;     /* the Authorization header of each request */
    int bad_headers;      /* requests without GitHub's Accept or API version */
    fault faults[8];
    int nfaults;
    char *public_key_pem; /* the App's key, to verify JWTs */
    json_t *jwt_claims;   /* claims of the last verified JWT */
    int token_ttl_s;      /* lifetime of issued installation tokens */
    int tokens_issued;
    char issued[512][40];
    int evil_link;        /* answer page 1 of repos with a Link to another origin */
    int malformed;        /* answer the next N GET /orgs/{org}/hooks with a broken body */
    int not_modified;     /* lists answered 304 to a matching If-None-Match */
    int conditional;      /* requests that carried If-None-Match */
} fake;

static void lock(void)
{
    pthread_mutex_lock(&fake.mu);
}

static void unlock(void)
{
    pthread_mutex_unlock(&fake.mu);
}

static int reply_message(casb_http_req *r, int status, const char *message)
{
    return casb_http_reply_json(r, status, json_pack("{s:s,s:s}", "message", message,
                                                     "documentation_url",
                                                     "https://docs.github.com/rest"));
}

/* Logs the request and applies the first matching fault. Returns 1 when it answered. */
static int prelude(casb_http_req *r)
{
    const char *path = casb_http_path(r);
    const char *accept = casb_http_header(r, "Accept");
    const char *version = casb_http_header(r, "X-GitHub-Api-Version");
    const char *auth = casb_http_header(r, "Authorization");
    char page[16], line[512], qbuf[64];
    int answered = 0;

    page[0] = '\0';
    if (casb_http_query(r, "page", page, sizeof(page)) != 1)
        snprintf(page, sizeof(page), "1");
    lock();
    snprintf(line, sizeof(line), "%s %s#%s", casb_http_method(r), path, page);
    json_array_append_new(fake.log, json_string(line));
    json_array_append_new(fake.auth_log, json_string(auth ? auth : ""));
    if (!accept || strcmp(accept, "application/vnd.github+json") != 0 || !version ||
        strcmp(version, "2022-11-28") != 0)
        fake.bad_headers++;
    for (int i = 0; i < fake.nfaults && !answered; i++) {
        fault *f = &fake.faults[i];
        int qok = 1;

        if (f->remaining == 0 || !strstr(path, f->path))
            continue;
        if (f->query[0]) {
            char name[64];
            const char *eq = strchr(f->query, '=');

            snprintf(name, sizeof(name), "%.*s", (int)(eq - f->query), f->query);
            qok = casb_http_query(r, name, qbuf, sizeof(qbuf)) == 1 && strcmp(qbuf, eq + 1) == 0;
        }
        if (!qok)
            continue;
        if (f->remaining > 0)
            f->remaining--;
        if (f->header_name[0])
            casb_http_add_header(r, f->header_name, f->header_value);
        unlock();
        reply_message(r, f->status, f->message);
        return 1;
    }
    unlock();
    return 0;
}

/* Installation tokens issued so far, and the static token, are accepted. */
static int authorized(casb_http_req *r)
{
    const char *auth = casb_http_header(r, "Authorization");
    int ok = 0;

    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return 0;
    auth += 7;
    lock();
    ok = strcmp(auth, TOKEN) == 0;
    for (int i = 0; i < fake.tokens_issued && i < 512 && !ok; i++)
        ok = strcmp(auth, fake.issued[i]) == 0;
    unlock();
    return ok;
}

/* Answers a list page as GitHub does for conditional requests: an ETag (a hash of the body),
 * and 304 with no body when If-None-Match names it. */
static int reply_conditional(casb_http_req *r, json_t *body)
{
    const char *inm = casb_http_header(r, "If-None-Match");
    char *text = casb_json_dump(body);
    char etag[32];
    uint32_t h = 2166136261u;
    int rc;

    json_decref(body);
    assert_non_null(text);
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(etag, sizeof(etag), "\"%08x\"", h);
    casb_http_add_header(r, "ETag", etag);
    lock();
    if (inm)
        fake.conditional++;
    if (inm && strcmp(inm, etag) == 0) {
        fake.not_modified++;
        unlock();
        free(text);
        return casb_http_reply_text(r, 304, NULL, NULL, 0);
    }
    unlock();
    rc = casb_http_reply_text(r, 200, "application/json", text, strlen(text));
    free(text);
    return rc;
}

/* Serves items[] (copied under the lock) page by page with GitHub's Link header. */
static int reply_list(casb_http_req *r, json_t *items, const char *wrap_key)
{
    char page_s[16], per_s[16], link[1400], path_q[512];
    long page = 1, per_page = 30, total = (long)json_array_size(items), last;
    json_t *out = json_array();
    json_t *body;

    if (casb_http_query(r, "page", page_s, sizeof(page_s)) == 1)
        page = atol(page_s);
    if (casb_http_query(r, "per_page", per_s, sizeof(per_s)) == 1)
        per_page = atol(per_s);
    if (per_page > PAGE_CAP)
        per_page = PAGE_CAP; /* GitHub caps at 100; small pages exercise pagination */
    if (page < 1)
        page = 1;
    for (long i = (page - 1) * per_page; i < total && i < page * per_page; i++)
        json_array_append(out, json_array_get(items, (size_t)i));
    last = total == 0 ? 1 : (total + per_page - 1) / per_page;
    snprintf(path_q, sizeof(path_q), "%s?per_page=%ld", casb_http_path(r), per_page);
    lock();
    if (fake.evil_link && strstr(casb_http_path(r), "/repos") && page == 1) {
        casb_http_add_header(r, "Link", "<https://evil.example.com/steal?page=2>; rel=\"next\"");
    } else if (page < last) {
        snprintf(link, sizeof(link), "<%s%s&page=%ld>; rel=\"next\", <%s%s&page=%ld>; rel=\"last\"",
                 fake.base, path_q, page + 1, fake.base, path_q, last);
        casb_http_add_header(r, "Link", link);
    }
    unlock();
    json_decref(items);
    body = wrap_key ? json_pack("{s:I,s:o}", "total_count", (json_int_t)total, wrap_key, out)
                    : out;
    return reply_conditional(r, body);
}

static json_t *tenant_get(const char *key)
{
    json_t *v;

    lock();
    v = json_deep_copy(json_object_get(fake.tenant, key));
    unlock();
    return v ? v : json_array();
}

/* The repository object of the tenant named {repo}, copied, or NULL. */
static json_t *tenant_repo(const char *name)
{
    json_t *repos, *it, *found = NULL;
    size_t i;

    lock();
    repos = json_object_get(fake.tenant, "repos");
    json_array_foreach(repos, i, it) {
        if (strcmp(casb_json_str(it, "name"), name) == 0)
            found = json_deep_copy(it);
    }
    unlock();
    return found;
}

static int h_org(casb_http_req *r)
{
    if (prelude(r))
        return 0;
    if (!authorized(r))
        return reply_message(r, 401, "Bad credentials");
    if (strcmp(casb_http_param(r, "org"), ORG) != 0)
        return reply_message(r, 404, "Not Found");
    return casb_http_reply_json(r, 200, tenant_get("org"));
}

static int h_members(casb_http_req *r)
{
    char filter[32], role[32];
    json_t *all, *out, *m;
    size_t i;

    if (prelude(r))
        return 0;
    if (!authorized(r))
        return reply_message(r, 401, "Bad credentials");
    if (casb_http_query(r, "filter", filter, sizeof(filter)) != 1)
        snprintf(filter, sizeof(filter), "all");
    if (casb_http_query(r, "role", role, sizeof(role)) != 1)
        snprintf(role, sizeof(role), "all");
    all = tenant_get("members");
    out = json_array();
    json_array_foreach(all, i, m) {
        if (strcmp(filter, "2fa_disabled") == 0 && !json_is_false(json_object_get(m, "two_factor")))
            continue;
        if (strcmp(role, "all") != 0 && strcmp(role, casb_json_str(m, "role")) != 0)
            continue;
        json_array_append_new(out, json_pack("{s:O,s:O,s:s}", "login", json_object_get(m, "login"),
                                             "id", json_object_get(m, "id"), "type", "User"));
    }
    json_decref(all);
    return reply_list(r, out, NULL);
}

static int h_simple_list(casb_http_req *r, const char *key, const char *wrap)
{
    if (prelude(r))
        return 0;
    if (!authorized(r))
        return reply_message(r, 401, "Bad credentials");
    return reply_list(r, tenant_get(key), wrap);
}

static int h_outside(casb_http_req *r)
{
    return h_simple_list(r, "outside_collaborators", NULL);
}

static int h_org_hooks(casb_http_req *r)
{
    int broken = 0;

    lock();
    if (fake.malformed > 0) {
        fake.malformed--;
        broken = 1;
    }
    unlock();
    if (broken) {
        prelude(r);
        return casb_http_reply_text(r, 200, "application/json", "[{\"id\":1,", 9);
    }
    return h_simple_list(r, "hooks", NULL);
}

static int h_installations(casb_http_req *r)
{
    return h_simple_list(r, "installations", "installations");
}

static int h_repos(casb_http_req *r)
{
    json_t *repos;
    json_t *it;
    size_t i;

    if (prelude(r))
        return 0;
    if (!authorized(r))
        return reply_message(r, 401, "Bad credentials");
    repos = tenant_get("repos");
    json_array_foreach(repos, i, it) {
        /* The fake's own members ("_protection", "_keys", ...) are not GitHub's. */
        json_object_del(it, "_protection");
        json_object_del(it, "_keys");
        json_object_del(it, "_hooks");
        json_object_del(it, "_collaborators");
    }
    return reply_list(r, repos, NULL);
}

static int h_repo_sub(casb_http_req *r, const char *key)
{
    json_t *repo, *v;

    if (prelude(r))
        return 0;
    if (!authorized(r))
        return reply_message(r, 401, "Bad credentials");
    repo = tenant_repo(casb_http_param(r, "repo"));
    if (!repo || strcmp(casb_http_param(r, "owner"), ORG) != 0) {
        json_decref(repo);
        return reply_message(r, 404, "Not Found");
    }
    v = json_incref(json_object_get(repo, key));
    json_decref(repo);
    if (!v)
        v = json_array();
    return reply_list(r, v, NULL);
}

static int h_keys(casb_http_req *r)
{
    return h_repo_sub(r, "_keys");
}

static int h_repo_hooks(casb_http_req *r)
{
    return h_repo_sub(r, "_hooks");
}

static int h_collaborators(casb_http_req *r)
{
    char aff[32];

    if (casb_http_query(r, "affiliation", aff, sizeof(aff)) != 1 || strcmp(aff, "outside") != 0)
        return reply_message(r, 400, "the provider must ask for outside collaborators only");
    return h_repo_sub(r, "_collaborators");
}

static int h_protection(casb_http_req *r)
{
    json_t *repo, *p;
    int rc;

    if (prelude(r))
        return 0;
    if (!authorized(r))
        return reply_message(r, 401, "Bad credentials");
    repo = tenant_repo(casb_http_param(r, "repo"));
    if (!repo)
        return reply_message(r, 404, "Not Found");
    if (strcmp(casb_http_param(r, "branch"), casb_json_str(repo, "default_branch")) != 0) {
        json_decref(repo);
        return reply_message(r, 404, "Branch not found");
    }
    /* No "_protection" at all: an empty repository, whose default branch does not exist. */
    p = json_object_get(repo, "_protection");
    if (!p)
        rc = reply_message(r, 404, "Branch not found");
    else if (json_is_null(p))
        rc = reply_message(r, 404, "Branch not protected");
    else
        rc = casb_http_reply_json(r, 200, json_incref(p));
    json_decref(repo);
    return rc;
}

/* App endpoints: the bearer must be an RS256 JWT of APP_ID signed with the App's key. */
static int app_jwt_ok(casb_http_req *r)
{
    const char *auth = casb_http_header(r, "Authorization");
    json_t *claims = NULL;
    char err[256];
    int ok;

    if (!auth || strncmp(auth, "Bearer ", 7) != 0 || !fake.public_key_pem)
        return 0;
    ok = casb_jwt_verify_rs256(&claims, auth + 7, fake.public_key_pem, 30, err, sizeof(err)) == 0 &&
         casb_json_int(claims, "iss", 0) == APP_ID;
    lock();
    json_decref(fake.jwt_claims);
    fake.jwt_claims = claims;
    unlock();
    return ok;
}

static int h_org_installation(casb_http_req *r)
{
    if (prelude(r))
        return 0;
    if (!app_jwt_ok(r))
        return reply_message(r, 401, "A JSON web token could not be decoded");
    return casb_http_reply_json(r, 200, json_pack("{s:i,s:s,s:i}", "id", INSTALLATION_ID,
                                                  "app_slug", "casb", "app_id", APP_ID));
}

static int h_access_tokens(casb_http_req *r)
{
    char tok[40], expires[40];
    time_t exp_t;

    if (prelude(r))
        return 0;
    if (!app_jwt_ok(r))
        return reply_message(r, 401, "A JSON web token could not be decoded");
    if (atoi(casb_http_param(r, "id")) != INSTALLATION_ID)
        return reply_message(r, 404, "Not Found");
    lock();
    snprintf(tok, sizeof(tok), "ghs_installation%02d", fake.tokens_issued + 1);
    if (fake.tokens_issued < 512)
        snprintf(fake.issued[fake.tokens_issued], sizeof(fake.issued[0]), "%s", tok);
    fake.tokens_issued++;
    exp_t = time(NULL) + fake.token_ttl_s;
    unlock();
    strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", gmtime(&exp_t));
    return casb_http_reply_json(r, 201, json_pack("{s:s,s:s,s:{s:s},s:s}", "token", tok,
                                                  "expires_at", expires, "permissions",
                                                  "metadata", "read", "repository_selection",
                                                  "all"));
}

static void fake_reset(void)
{
    lock();
    json_decref(fake.log);
    json_decref(fake.auth_log);
    json_decref(fake.jwt_claims);
    fake.log = json_array();
    fake.auth_log = json_array();
    fake.jwt_claims = NULL;
    fake.bad_headers = 0;
    fake.nfaults = 0;
    fake.tokens_issued = 0;
    fake.token_ttl_s = 3600;
    fake.evil_link = 0;
    fake.malformed = 0;
    fake.not_modified = 0;
    fake.conditional = 0;
    unlock();
}

static void add_fault(const char *path, const char *query, int status, const char *message,
                      int times)
{
    fault *f = &fake.faults[fake.nfaults++];

    snprintf(f->path, sizeof(f->path), "%s", path);
    snprintf(f->query, sizeof(f->query), "%s", query ? query : "");
    f->status = status;
    snprintf(f->message, sizeof(f->message), "%s", message);
    f->remaining = times;
    f->header_name[0] = '\0';
    f->header_value[0] = '\0';
}

/* The last fault added also sends this header. */
static void fault_header(const char *name, const char *value)
{
    fault *f = &fake.faults[fake.nfaults - 1];

    snprintf(f->header_name, sizeof(f->header_name), "%s", name);
    snprintf(f->header_value, sizeof(f->header_value), "%s", value);
}

/* The tenant: one of each good and bad setting, 5 repositories (3 pages of 2). */
static const char TENANT[] =
    "{\"org\":{\"login\":\"acme\",\"id\":1,\"html_url\":\"https://github.com/acme\","
    "  \"type\":\"Organization\",\"two_factor_requirement_enabled\":false,"
    "  \"default_repository_permission\":\"write\",\"members_can_create_repositories\":true,"
    "  \"members_can_create_public_repositories\":true},"
    " \"members\":["
    "  {\"login\":\"alice\",\"id\":101,\"role\":\"admin\",\"two_factor\":false},"
    "  {\"login\":\"bob\",\"id\":102,\"role\":\"member\",\"two_factor\":true},"
    "  {\"login\":\"carol\",\"id\":103,\"role\":\"member\",\"two_factor\":false}],"
    " \"outside_collaborators\":[{\"login\":\"ext1\",\"id\":901}],"
    " \"hooks\":["
    "  {\"id\":11,\"name\":\"web\",\"active\":true,\"events\":[\"push\"],\"config\":"
    "   {\"url\":\"https://ci.example.com/hook\",\"content_type\":\"json\",\"insecure_ssl\":\"0\","
    "    \"secret\":\"********\"}},"
    "  {\"id\":12,\"name\":\"web\",\"active\":true,\"events\":[\"*\"],\"config\":"
    "   {\"url\":\"https://chat.example.com/T1/B2/xyz\",\"content_type\":\"json\","
    "    \"insecure_ssl\":\"1\"}}],"
    " \"installations\":["
    "  {\"id\":3001,\"app_slug\":\"some-app\",\"app_id\":77,\"repository_selection\":\"all\","
    "   \"permissions\":{\"contents\":\"write\",\"metadata\":\"read\"}},"
    "  {\"id\":3002,\"app_slug\":\"reader\",\"app_id\":78,\"repository_selection\":\"all\","
    "   \"permissions\":{\"contents\":\"read\",\"metadata\":\"read\"}}],"
    " \"repos\":["
    "  {\"id\":5001,\"name\":\"api\",\"full_name\":\"acme/api\",\"owner\":{\"login\":\"acme\"},"
    "   \"html_url\":\"https://github.com/acme/api\",\"private\":false,\"visibility\":\"public\","
    "   \"archived\":false,\"fork\":false,\"default_branch\":\"main\","
    "   \"pushed_at\":\"2026-11-01T00:00:00Z\",\"security_and_analysis\":"
    "   {\"secret_scanning\":{\"status\":\"enabled\"},"
    "    \"secret_scanning_push_protection\":{\"status\":\"disabled\"}},"
    "   \"_protection\":null,"
    "   \"_keys\":[{\"id\":1,\"title\":\"ci\",\"key\":\"ssh-ed25519 AAAA\",\"read_only\":false,"
    "     \"created_at\":\"2025-01-01T00:00:00Z\"},"
    "    {\"id\":2,\"title\":\"docs\",\"key\":\"ssh-ed25519 BBBB\",\"read_only\":true}],"
    "   \"_hooks\":[{\"id\":21,\"name\":\"web\",\"active\":true,\"config\":"
    "     {\"url\":\"https://deploy.example.com/h\",\"insecure_ssl\":\"0\"}}],"
    "   \"_collaborators\":[{\"login\":\"ext1\",\"id\":901,\"role_name\":\"admin\","
    "     \"permissions\":{\"admin\":true,\"push\":true,\"pull\":true}}]},"
    "  {\"id\":5002,\"name\":\"web\",\"full_name\":\"acme/web\",\"owner\":{\"login\":\"acme\"},"
    "   \"html_url\":\"https://github.com/acme/web\",\"private\":true,\"visibility\":\"private\","
    "   \"archived\":false,\"default_branch\":\"main\",\"pushed_at\":\"2026-10-01T00:00:00Z\","
    "   \"security_and_analysis\":{\"secret_scanning\":{\"status\":\"enabled\"},"
    "    \"secret_scanning_push_protection\":{\"status\":\"enabled\"}},"
    "   \"_protection\":{\"required_status_checks\":{\"strict\":true,\"contexts\":[\"ci\"],"
    "     \"checks\":[{\"context\":\"ci\",\"app_id\":null}]},"
    "    \"enforce_admins\":{\"enabled\":true},\"required_pull_request_reviews\":"
    "     {\"dismiss_stale_reviews\":true,\"required_approving_review_count\":2},"
    "    \"allow_force_pushes\":{\"enabled\":false}}},"
    "  {\"id\":5003,\"name\":\"legacy\",\"full_name\":\"acme/legacy\","
    "   \"owner\":{\"login\":\"acme\"},\"html_url\":\"https://github.com/acme/legacy\","
    "   \"private\":true,\"visibility\":\"private\","
    "   \"archived\":false,\"default_branch\":\"master\",\"pushed_at\":\"2023-01-01T00:00:00Z\","
    "   \"security_and_analysis\":{\"secret_scanning\":{\"status\":\"disabled\"},"
    "    \"secret_scanning_push_protection\":{\"status\":\"disabled\"}},"
    "   \"_protection\":{\"enforce_admins\":{\"enabled\":false},"
    "    \"required_pull_request_reviews\":{\"dismiss_stale_reviews\":false,"
    "     \"required_approving_review_count\":1},\"allow_force_pushes\":{\"enabled\":true}}},"
    "  {\"id\":5004,\"name\":\"old\",\"full_name\":\"acme/old\",\"owner\":{\"login\":\"acme\"},"
    "   \"html_url\":\"https://github.com/acme/old\",\"private\":true,\"visibility\":\"private\","
    "   \"archived\":true,\"default_branch\":\"main\",\"pushed_at\":\"2020-01-01T00:00:00Z\","
    "   \"security_and_analysis\":{\"secret_scanning\":{\"status\":\"enabled\"},"
    "    \"secret_scanning_push_protection\":{\"status\":\"disabled\"}}},"
    "  {\"id\":5005,\"name\":\"empty\",\"full_name\":\"acme/empty\",\"owner\":{\"login\":\"acme\"},"
    "   \"html_url\":\"https://github.com/acme/empty\",\"private\":true,\"visibility\":\"private\","
    "   \"archived\":false,\"default_branch\":\"trunk-missing\",\"pushed_at\":null,"
    "   \"updated_at\":\"2026-11-20T00:00:00Z\",\"security_and_analysis\":"
    "   {\"secret_scanning\":{\"status\":\"enabled\"},"
    "    \"secret_scanning_push_protection\":{\"status\":\"enabled\"}}}]}";

/* Every finding the full tenant must produce, as "type asset_id". */
static const char *const TENANT_FINDINGS[] = {
    "github.org.two_factor_requirement_disabled acme",
    "github.org.default_write_permission acme",
    "github.org.members_can_create_public_repos acme",
    "github.org.member_2fa_disabled alice",
    "github.org.member_2fa_disabled carol",
    "github.webhook.insecure_ssl org-hook:12",
    "github.webhook.no_secret org-hook:12",
    "github.org.app_broad_permissions installation:3001",
    "github.repo.public acme/api",
    "github.repo.default_branch_unprotected acme/api",
    "github.repo.push_protection_disabled acme/api",
    "github.repo.deploy_key_write acme/api#key:1",
    "github.webhook.no_secret acme/api#hook:21",
    "github.repo.outside_collaborator_admin acme/api#collaborator:ext1",
    "github.repo.stale acme/legacy",
    "github.repo.branch_protection_force_push_allowed acme/legacy",
    "github.repo.branch_protection_stale_approvals_kept acme/legacy",
    "github.repo.branch_protection_admins_not_enforced acme/legacy",
    "github.repo.branch_protection_no_status_checks acme/legacy",
    "github.repo.secret_scanning_disabled acme/legacy",
    "github.repo.push_protection_disabled acme/legacy",
    NULL,
};

static void fake_load_tenant(void)
{
    json_error_t jerr;
    json_t *t = json_loads(TENANT, 0, &jerr);

    if (!t)
        fail_msg("tenant JSON: %s at %d", jerr.text, jerr.column);
    lock();
    json_decref(fake.tenant);
    fake.tenant = t;
    unlock();
}

/* ---- the App's key --------------------------------------------------------------------- */

static char *app_private_pkcs1; /* -----BEGIN RSA PRIVATE KEY----- as GitHub hands it out */
static char *app_private_pkcs8;
static char *other_private_pkcs1; /* a key the App does not have */
static char *ec_private;

static int setup_keys(void)
{
    EVP_PKEY *k1 = EVP_RSA_gen(2048);
    EVP_PKEY *k2 = EVP_RSA_gen(2048);
    EVP_PKEY *ec = EVP_EC_gen("P-256");

    if (!k1 || !k2 || !ec)
        return -1;
    app_private_pkcs1 = pem_of(k1, OSSL_KEYMGMT_SELECT_KEYPAIR, "type-specific");
    app_private_pkcs8 = private_pem_of(k1);
    fake.public_key_pem = public_pem_of(k1);
    other_private_pkcs1 = pem_of(k2, OSSL_KEYMGMT_SELECT_KEYPAIR, "type-specific");
    ec_private = pem_of(ec, OSSL_KEYMGMT_SELECT_KEYPAIR, "PrivateKeyInfo");
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(ec);
    if (!app_private_pkcs1 || !app_private_pkcs8 || !fake.public_key_pem ||
        !other_private_pkcs1 || !ec_private)
        return -1;
    return strstr(app_private_pkcs1, "BEGIN RSA PRIVATE KEY") ? 0 : -1;
}

/* ---- suite setup ----------------------------------------------------------------------- */

static int group_setup(void **state)
{
    casb_http_server_opts opts;
    char addr[32], err[256];
    static const struct {
        const char *method, *pattern;
        casb_http_handler h;
    } routes[] = {
        {"GET", "/orgs/{org}", h_org},
        {"GET", "/orgs/{org}/installation", h_org_installation},
        {"GET", "/orgs/{org}/members", h_members},
        {"GET", "/orgs/{org}/outside_collaborators", h_outside},
        {"GET", "/orgs/{org}/hooks", h_org_hooks},
        {"GET", "/orgs/{org}/installations", h_installations},
        {"GET", "/orgs/{org}/repos", h_repos},
        {"GET", "/repos/{owner}/{repo}/branches/{branch}/protection", h_protection},
        {"GET", "/repos/{owner}/{repo}/keys", h_keys},
        {"GET", "/repos/{owner}/{repo}/hooks", h_repo_hooks},
        {"GET", "/repos/{owner}/{repo}/collaborators", h_collaborators},
        {"POST", "/app/installations/{id}/access_tokens", h_access_tokens},
    };

    (void)state;
    casb_log_init("test_github_provider", CASB_LOG_WARN);
    pthread_mutex_init(&fake.mu, NULL);
    if (setup_keys() != 0)
        return -1;
    fake_reset();
    fake_load_tenant();
    /* A fixed port range owned by this test; move on when one is taken. */
    for (int port = 18291; port < 18300 && !fake.server; port++) {
        casb_http_server *s = NULL;

        memset(&opts, 0, sizeof(opts));
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        opts.addr = addr;
        opts.num_threads = 4;
        if (casb_http_server_new(&s, &opts, err, sizeof(err)) != 0)
            continue;
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
            casb_http_route(s, routes[i].method, routes[i].pattern, routes[i].h,
                            CASB_ROUTE_PUBLIC);
        if (casb_http_server_start(s, err, sizeof(err)) != 0) {
            casb_http_server_free(s);
            continue;
        }
        fake.server = s;
        fake.port = port;
        snprintf(fake.base, sizeof(fake.base), "http://127.0.0.1:%d", port);
    }
    return fake.server ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    casb_http_server_free(fake.server);
    json_decref(fake.tenant);
    json_decref(fake.log);
    json_decref(fake.auth_log);
    json_decref(fake.jwt_claims);
    free(fake.public_key_pem);
    free(app_private_pkcs1);
    free(app_private_pkcs8);
    free(other_private_pkcs1);
    free(ec_private);
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    fake_reset();
    fake_load_tenant();
    return 0;
}

/* ---- the scan harness ------------------------------------------------------------------ */

typedef struct {
    recorder rec;
    casb_http_client *http;
    json_t *config;
    json_t *credentials;
    volatile int cancel;
    casb_scan_ctx ctx;
    char err[512];
    int rc;
} run;

static void run_init(run *x, json_t *credentials)
{
    casb_http_client_opts o;
    char err[256];

    memset(x, 0, sizeof(*x));
    memset(&o, 0, sizeof(o));
    o.timeout_ms = 5000;
    o.max_retries = 1;
    o.max_wait_s = 1;
    o.cancel = &x->cancel;
    assert_int_equal(casb_http_client_new(&x->http, &o, err, sizeof(err)), 0);
    rec_init(&x->rec);
    x->config = json_pack("{s:s,s:s}", "organization", ORG, "api_base_url", fake.base);
    x->credentials = credentials ? credentials : json_pack("{s:s}", "token", TOKEN);
    x->ctx.config = x->config;
    x->ctx.credentials = x->credentials;
    x->ctx.http = x->http;
    x->ctx.allowed_endpoints = fake.base;
    x->ctx.sink = &x->rec.sink;
    x->ctx.cancel = &x->cancel;
    x->ctx.now_s = NOW_S;
}

static void run_scan(run *x)
{
    x->rc = casb_provider_find("github")->scan(&x->ctx, x->err, sizeof(x->err));
}

static void run_free(run *x)
{
    casb_http_client_free(x->http);
    json_decref(x->config);
    json_decref(x->credentials);
    rec_free(&x->rec);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void expect_findings(const recorder *r, const char *const *expected)
{
    size_t n = json_array_size(r->findings), m = 0;
    char **got = calloc(n + 1, sizeof(*got));
    const char **want;
    int equal;

    while (expected[m])
        m++;
    want = calloc(m + 1, sizeof(*want));
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(r->findings, i);

        assert_true(asprintf(&got[i], "%s %s", casb_json_str(f, "type"),
                             casb_json_str(f, "id")) > 0);
    }
    memcpy(want, expected, m * sizeof(*want));
    qsort(got, n, sizeof(*got), cmp_str);
    qsort(want, m, sizeof(*want), cmp_str);
    equal = n == m;
    for (size_t i = 0; equal && i < n; i++)
        equal = strcmp(got[i], want[i]) == 0;
    if (!equal) {
        fprintf(stderr, "findings differ\n  got:\n");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "    %s\n", got[i]);
        fprintf(stderr, "  want:\n");
        for (size_t i = 0; i < m; i++)
            fprintf(stderr, "    %s\n", want[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(got[i]);
    free(got);
    free(want);
    assert_true(equal);
}

/* Position of the first logged request equal to line, or -1. */
static int log_index(const char *line)
{
    json_t *v;
    size_t i;
    int at = -1;

    lock();
    json_array_foreach(fake.log, i, v) {
        if (at < 0 && strcmp(json_string_value(v), line) == 0)
            at = (int)i;
    }
    unlock();
    return at;
}

static int log_count(const char *prefix)
{
    json_t *v;
    size_t i;
    int n = 0;

    lock();
    json_array_foreach(fake.log, i, v) {
        n += strncmp(json_string_value(v), prefix, strlen(prefix)) == 0;
    }
    unlock();
    return n;
}

/* ---- tests ----------------------------------------------------------------------------- */

/* The whole tenant with a token: exact findings, every check ran, GitHub's headers on every
 * request, pagination followed, and repositories handled as their page arrives. */
static void test_scan_token(void **state)
{
    run x;

    (void)state;
    run_init(&x, NULL);
    run_scan(&x);
    if (x.rc != 0)
        fail_msg("scan failed: %s", x.err);
    expect_findings(&x.rec, TENANT_FINDINGS);
    assert_int_equal(json_array_size(x.rec.ran), GH_T_COUNT);
    assert_int_equal(json_object_size(x.rec.skipped), 0);
    assert_int_equal(fake.bad_headers, 0);
    {
        json_t *a;
        size_t i;

        json_array_foreach(fake.auth_log, i, a) {
            assert_string_equal(json_string_value(a), "Bearer " TOKEN);
        }
    }
    /* Assets: 1 org, 3 members (2 pages), 5 repositories (3 pages), 3 hooks, 2 keys... */
    assert_int_equal(casb_json_int(x.rec.seen, "organization", 0), 1);
    assert_int_equal(casb_json_int(x.rec.seen, "member", 0), 3);
    assert_int_equal(casb_json_int(x.rec.seen, "repository", 0), 5);
    assert_int_equal(casb_json_int(x.rec.seen, "webhook", 0), 3);
    assert_int_equal(casb_json_int(x.rec.seen, "deploy_key", 0), 2);
    assert_int_equal(casb_json_int(x.rec.seen, "installation", 0), 2);
    /* Pages followed through Link. */
    assert_true(log_index("GET /orgs/acme/repos#3") > 0);
    assert_true(log_index("GET /orgs/acme/members#2") > 0);
    /* Streaming: the first repository's protection is read before page 2 is requested. */
    assert_true(log_index("GET /repos/acme/api/branches/main/protection#1") <
                log_index("GET /orgs/acme/repos#2"));
    /* No protection call for the archived repository; the empty one answered Branch not
     * found and got no branch verdict. */
    assert_int_equal(log_index("GET /repos/acme/old/branches/main/protection#1"), -1);
    assert_true(log_index("GET /repos/acme/empty/branches/trunk-missing/protection#1") > 0);
    /* Evidence and asset shapes. */
    {
        json_t *f;
        size_t i;

        json_array_foreach(x.rec.findings, i, f) {
            const char *id = casb_json_str(f, "id");

            if (strcmp(id, "acme/api#collaborator:ext1") == 0) {
                assert_string_equal(casb_json_str(f, "kind"), "collaborator");
                assert_string_equal(casb_json_str(f, "url"),
                                    "https://github.com/acme/api/settings/access");
            } else if (strcmp(id, "org-hook:12") == 0) {
                assert_string_equal(casb_json_str(f, "url"),
                                    "https://github.com/organizations/acme/settings/hooks/12");
                char *dump = json_dumps(f, 0);

                /* The hook URL's path may carry a token: only its host is reported. */
                assert_null(strstr(dump, "xyz"));
                assert_string_equal(casb_json_path_str(f, "details.url_host"),
                                    "chat.example.com");
                free(dump);
            } else if (strcmp(id, "alice") == 0) {
                assert_string_equal(casb_json_path_str(f, "details.role"), "admin");
            } else if (strcmp(id, "carol") == 0) {
                assert_string_equal(casb_json_path_str(f, "details.role"), "member");
            }
        }
    }
    run_free(&x);
}

/* An organization without outside collaborators: no per-repository collaborator calls. */
static void test_scan_no_outside_collaborators(void **state)
{
    run x;
    const char *want_absent = "github.repo.outside_collaborator_admin acme/api#collaborator:ext1";
    size_t n = 0;

    (void)state;
    lock();
    json_object_set_new(fake.tenant, "outside_collaborators", json_array());
    unlock();
    run_init(&x, NULL);
    run_scan(&x);
    assert_int_equal(x.rc, 0);
    assert_int_equal(log_count("GET /repos/acme/api/collaborators"), 0);
    while (TENANT_FINDINGS[n])
        n++;
    assert_int_equal(json_array_size(x.rec.findings), n - 1);
    {
        json_t *f;
        size_t i;
        char line[256];

        json_array_foreach(x.rec.findings, i, f) {
            snprintf(line, sizeof(line), "%s %s", casb_json_str(f, "type"), casb_json_str(f, "id"));
            assert_string_not_equal(line, want_absent);
        }
    }
    assert_int_equal(json_array_size(x.rec.ran), GH_T_COUNT);
    run_free(&x);
}

/* Missing permissions skip exactly the checks that needed them; the scan still completes and
 * the other checks still report. */
static void test_scan_permissions_missing(void **state)
{
    run x;
    const char *want[] = {
        "github.org.two_factor_requirement_disabled acme",
        "github.org.default_write_permission acme",
        "github.org.members_can_create_public_repos acme",
        "github.repo.public acme/api",
        "github.repo.push_protection_disabled acme/api",
        "github.repo.deploy_key_write acme/api#key:1",
        "github.repo.outside_collaborator_admin acme/api#collaborator:ext1",
        "github.repo.stale acme/legacy",
        "github.repo.secret_scanning_disabled acme/legacy",
        "github.repo.push_protection_disabled acme/legacy",
        NULL,
    };
    static const int skipped_types[] = {
        GH_T_ORG_MEMBER_2FA_DISABLED,     GH_T_WEBHOOK_NO_SECRET,
        GH_T_WEBHOOK_INSECURE_SSL,        GH_T_ORG_APP_BROAD_PERMISSIONS,
        GH_T_DEFAULT_BRANCH_UNPROTECTED,  GH_T_BP_NO_PR_REVIEW,
        GH_T_BP_FORCE_PUSH_ALLOWED,       GH_T_BP_STALE_APPROVALS_KEPT,
        GH_T_BP_ADMINS_NOT_ENFORCED,      GH_T_BP_NO_STATUS_CHECKS,
    };
    const char *reason;

    (void)state;
    add_fault("/members", "filter=2fa_disabled", 422, "Only owners can use this filter.", -1);
    add_fault("/hooks", NULL, 403, "Resource not accessible by integration", -1);
    add_fault("/installations", NULL, 403, "Resource not accessible by integration", -1);
    add_fault("/protection", NULL, 403, "Resource not accessible by integration", -1);
    run_init(&x, NULL);
    run_scan(&x);
    if (x.rc != 0)
        fail_msg("scan failed: %s", x.err);
    expect_findings(&x.rec, want);
    assert_int_equal(json_object_size(x.rec.skipped), sizeof(skipped_types) / sizeof(int));
    for (size_t i = 0; i < sizeof(skipped_types) / sizeof(int); i++)
        assert_non_null(
            json_object_get(x.rec.skipped, casb_github_finding_types[skipped_types[i]]));
    assert_int_equal(json_array_size(x.rec.ran) + json_object_size(x.rec.skipped), GH_T_COUNT);
    reason = casb_json_str(x.rec.skipped, "github.webhook.no_secret");
    assert_non_null(strstr(reason, "Resource not accessible by integration"));
    assert_non_null(strstr(reason, "Webhooks: read"));
    reason = casb_json_str(x.rec.skipped, "github.org.member_2fa_disabled");
    assert_non_null(strstr(reason, "owners"));
    assert_non_null(strstr(reason, "422"));
    reason = casb_json_str(x.rec.skipped, "github.repo.branch_protection_no_status_checks");
    assert_non_null(strstr(reason, "Administration: read"));
    run_free(&x);
}

/* 401: the scan fails with GitHub's message and reports no coverage. */
static void test_scan_bad_credentials(void **state)
{
    run x;

    (void)state;
    run_init(&x, json_pack("{s:s}", "token", "ghp_wrong"));
    run_scan(&x);
    assert_int_equal(x.rc, CASB_EAUTH);
    assert_string_equal(x.err, "GitHub rejected the credentials: Bad credentials");
    assert_int_equal(json_array_size(x.rec.ran), 0);
    assert_int_equal(json_object_size(x.rec.skipped), 0);
    assert_int_equal(json_array_size(x.rec.findings), 0);
    run_free(&x);
}

/* A 5xx that outlasts the retries fails the scan (which then resolves nothing): no coverage. */
static void test_scan_server_error(void **state)
{
    run x;

    (void)state;
    add_fault("/orgs/acme/repos", NULL, 500, "Server Error", -1);
    run_init(&x, NULL);
    run_scan(&x);
    assert_int_equal(x.rc, CASB_EUNAVAILABLE);
    assert_non_null(strstr(x.err, "500"));
    assert_int_equal(json_array_size(x.rec.ran), 0);
    assert_int_equal(json_object_size(x.rec.skipped), 0);
    /* The client retried before giving up. */
    assert_int_equal(log_count("GET /orgs/acme/repos#1"), 2);
    run_free(&x);
}

/* How a failed scan reads to the user (the message becomes the integration's health
 * reason): a 5xx is "unavailable" and says what GitHub answered; the organization refused
 * is an authorization problem naming the permission when GitHub tells it. */
static void test_scan_failure_reasons(void **state)
{
    run x;

    (void)state;
    add_fault("/orgs/acme/repos", NULL, 502, "Bad Gateway", -1);
    run_init(&x, NULL);
    run_scan(&x);
    assert_int_equal(x.rc, CASB_EUNAVAILABLE);
    assert_string_equal(x.err,
                        "GitHub answered 502 repeatedly (GET /orgs/acme/repos?type=all&per_page=100: "
                        "Bad Gateway)");
    run_free(&x);

    test_setup(NULL);
    add_fault("/orgs/acme", NULL, 403, "Resource not accessible by personal access token", -1);
    fault_header("X-Accepted-GitHub-Permissions", "members=read");
    run_init(&x, NULL);
    run_scan(&x);
    assert_int_equal(x.rc, CASB_EAUTH);
    assert_string_equal(x.err, "the credentials lack the permission members=read needed to read "
                               "organization acme (GitHub: Resource not accessible by personal "
                               "access token)");
    run_free(&x);

    test_setup(NULL);
    add_fault("/orgs/acme", NULL, 403,
              "Resource protected by organization SAML enforcement. You must grant your "
              "Personal Access token access to this organization.", -1);
    run_init(&x, NULL);
    run_scan(&x);
    assert_int_equal(x.rc, CASB_EAUTH);
    assert_non_null(strstr(x.err, "GitHub refused these credentials access to organization acme: "
                                  "Resource protected by organization SAML enforcement"));
    run_free(&x);
}

/* A suspended or removed App installation needs the user's action: CASB_EAUTH, named. */
static void test_scan_github_app_suspended(void **state)
{
    run x;

    (void)state;
    add_fault("/app/installations/2001/access_tokens", NULL, 403,
              "This installation has been suspended", -1);
    run_init(&x, json_pack("{s:i,s:s,s:s}", "app_id", APP_ID, "private_key", app_private_pkcs8,
                           "installation_id", "2001"));
    run_scan(&x);
    assert_int_equal(x.rc, CASB_EAUTH);
    assert_string_equal(x.err, "the GitHub App installation 2001 was suspended or removed "
                               "(GitHub: This installation has been suspended)");
    assert_int_equal(json_array_size(x.rec.findings), 0);
    run_free(&x);
}

/* One 503 is absorbed by the retries. */
static void test_scan_transient_error(void **state)
{
    run x;

    (void)state;
    add_fault("/orgs/acme/repos", NULL, 503, "Service Unavailable", 1);
    run_init(&x, NULL);
    run_scan(&x);
    if (x.rc != 0)
        fail_msg("scan failed: %s", x.err);
    expect_findings(&x.rec, TENANT_FINDINGS);
    run_free(&x);
}

/* A malformed body is retried once; twice in a row fails the scan. */
static void test_scan_malformed_body(void **state)
{
    run x;

    (void)state;
    fake.malformed = 1;
    run_init(&x, NULL);
    run_scan(&x);
    if (x.rc != 0)
        fail_msg("scan failed: %s", x.err);
    expect_findings(&x.rec, TENANT_FINDINGS);
    run_free(&x);

    fake_reset();
    fake.malformed = 2;
    run_init(&x, NULL);
    run_scan(&x);
    assert_int_equal(x.rc, -1);
    assert_non_null(strstr(x.err, "malformed JSON"));
    run_free(&x);
}

/* An in-memory casb_page_cache for the conditional-request tests. */
typedef struct {
    json_t *pages; /* {url: {"etag","body","next"}} */
    int puts;
} mem_cache;

static int mem_get(casb_page_cache *pc, const char *url, char **etag, char **body,
                   size_t *body_len, char **next_url, char *err, size_t errlen)
{
    mem_cache *m = pc->ud;
    json_t *e = json_object_get(m->pages, url);
    const char *next;

    (void)err;
    (void)errlen;
    if (!e)
        return 0;
    next = casb_json_str(e, "next");
    *etag = strdup(casb_json_str(e, "etag"));
    *body = strdup(casb_json_str(e, "body"));
    *body_len = strlen(*body);
    *next_url = next ? strdup(next) : NULL;
    return 1;
}

static int mem_put(casb_page_cache *pc, const char *url, const char *etag, const char *body,
                   size_t body_len, const char *next_url, char *err, size_t errlen)
{
    mem_cache *m = pc->ud;

    (void)err;
    (void)errlen;
    assert_int_equal(strlen(body), body_len);
    json_object_set_new(m->pages, url, json_pack("{s:s,s:s,s:s?}", "etag", etag, "body", body,
                                                 "next", next_url));
    m->puts++;
    return 0;
}

/* A token scan through pc that must find the tenant's findings. */
static void scan_cached(run *x, casb_page_cache *pc)
{
    run_init(x, NULL);
    x->ctx.page_cache = pc;
    run_scan(x);
    if (x->rc != 0)
        fail_msg("scan failed: %s", x->err);
    expect_findings(&x->rec, TENANT_FINDINGS);
}

/* A rescan sends the ETags of the first scan; the pages answered 304 are evaluated from the
 * cache, so the findings and coverage are the same, in as many requests. */
static void test_scan_conditional_rescan(void **state)
{
    mem_cache m = {json_object(), 0};
    casb_page_cache pc = {mem_get, mem_put, &m, 0};
    run a, b;
    size_t first_requests;

    (void)state;
    scan_cached(&a, &pc);
    assert_int_equal(fake.conditional, 0);
    assert_true(m.puts > 10);
    assert_int_equal(pc.hits, 0);
    lock();
    first_requests = json_array_size(fake.log);
    json_array_clear(fake.log);
    unlock();

    scan_cached(&b, &pc);
    assert_true(json_equal(a.rec.findings, b.rec.findings));
    assert_true(json_equal(a.rec.ran, b.rec.ran));
    assert_int_equal(json_object_size(b.rec.skipped), 0);
    lock();
    assert_int_equal(json_array_size(fake.log), first_requests);
    unlock();
    /* Every list page was stored and answered 304, and taken from the cache. */
    assert_int_equal(fake.conditional, m.puts);
    assert_int_equal(fake.not_modified, m.puts);
    assert_int_equal(pc.hits, m.puts);
    run_free(&a);
    run_free(&b);
    json_decref(m.pages);
}

/* A cache that fails is dropped: the scan goes on with unconditional requests. */
static int failing_get(casb_page_cache *pc, const char *url, char **etag, char **body,
                       size_t *body_len, char **next_url, char *err, size_t errlen)
{
    (void)pc;
    (void)url;
    (void)etag;
    (void)body;
    (void)body_len;
    (void)next_url;
    snprintf(err, errlen, "database down");
    return -1;
}

static void test_scan_cache_failure_is_not_fatal(void **state)
{
    mem_cache m = {json_object(), 0};
    casb_page_cache pc = {failing_get, mem_put, &m, 0};
    run x;

    (void)state;
    scan_cached(&x, &pc);
    assert_int_equal(fake.conditional, 0);
    assert_int_equal(m.puts, 0);
    run_free(&x);
    json_decref(m.pages);
}

/* A Link to another origin would hand the token to it: refused, the scan fails. */
static void test_scan_foreign_link(void **state)
{
    run x;

    (void)state;
    fake.evil_link = 1;
    run_init(&x, NULL);
    run_scan(&x);
    assert_int_equal(x.rc, -1);
    assert_non_null(strstr(x.err, "outside the API base URL"));
    run_free(&x);
}

/* Cancellation between calls stops the scan. */
static void test_scan_cancel(void **state)
{
    run x;
    long requests;

    (void)state;
    run_init(&x, NULL);
    x.rec.cancel_after_first = &x.cancel;
    run_scan(&x);
    assert_int_equal(x.rc, -1);
    assert_non_null(strstr(x.err, "cancel"));
    /* The first finding comes from GET /orgs/acme; nothing after the next call. */
    lock();
    requests = (long)json_array_size(fake.log);
    unlock();
    assert_true(requests <= 2);
    assert_int_equal(json_array_size(x.rec.ran), 0);
    run_free(&x);
}

/* The SSRF guard: a base URL not in CASB_ALLOWED_ENDPOINTS is refused before any call. */
static void test_scan_endpoint_not_allowed(void **state)
{
    run x;

    (void)state;
    run_init(&x, NULL);
    x.ctx.allowed_endpoints = "http://127.0.0.1:1";
    run_scan(&x);
    assert_int_equal(x.rc, -1);
    assert_non_null(strstr(x.err, "api_base_url"));
    lock();
    assert_int_equal(json_array_size(fake.log), 0);
    unlock();
    run_free(&x);
}

/* GitHub App: JWT (iss, iat = now - 60, exp = now + 540) -> installation lookup -> token,
 * which then authorizes every API call; issued once for a one-hour token. */
static void test_scan_github_app(void **state)
{
    run x;
    long long now = (long long)time(NULL);
    json_t *a;
    size_t i;

    (void)state;
    run_init(&x, json_pack("{s:s,s:s}", "app_id", "1001", "private_key", app_private_pkcs1));
    run_scan(&x);
    if (x.rc != 0)
        fail_msg("scan failed: %s", x.err);
    expect_findings(&x.rec, TENANT_FINDINGS);
    assert_int_equal(log_index("GET /orgs/acme/installation#1"), 0);
    assert_int_equal(log_index("POST /app/installations/2001/access_tokens#1"), 1);
    assert_int_equal(log_count("POST "), 1);
    lock();
    assert_int_equal(casb_json_int(fake.jwt_claims, "iss", 0), APP_ID);
    assert_int_equal(casb_json_int(fake.jwt_claims, "exp", 0) -
                         casb_json_int(fake.jwt_claims, "iat", 0), 600);
    assert_true(llabs(casb_json_int(fake.jwt_claims, "iat", 0) - (now - 60)) <= 5);
    json_array_foreach(fake.auth_log, i, a) {
        if (i >= 2)
            assert_string_equal(json_string_value(a), "Bearer ghs_installation01");
    }
    unlock();
    run_free(&x);
}

/* A known installation id skips the lookup; a token that expires within 5 minutes is
 * renewed before the next call. */
static void test_scan_github_app_refresh(void **state)
{
    run x;

    (void)state;
    fake.token_ttl_s = 200;
    run_init(&x, json_pack("{s:i,s:s,s:s}", "app_id", APP_ID, "private_key", app_private_pkcs8,
                           "installation_id", "2001"));
    run_scan(&x);
    if (x.rc != 0)
        fail_msg("scan failed: %s", x.err);
    expect_findings(&x.rec, TENANT_FINDINGS);
    assert_int_equal(log_count("GET /orgs/acme/installation#"), 0);
    /* Every API call found its token inside the refresh window. */
    assert_int_equal(log_count("POST /app/installations/2001/access_tokens"),
                     log_count("GET /"));
    run_free(&x);
}

/* A key the App does not hold: the JWT is rejected, the scan fails as an auth failure. */
static void test_scan_github_app_wrong_key(void **state)
{
    run x;

    (void)state;
    run_init(&x, json_pack("{s:s,s:s}", "app_id", "1001", "private_key", other_private_pkcs1));
    run_scan(&x);
    assert_int_equal(x.rc, CASB_EAUTH);
    assert_non_null(strstr(x.err, "A JSON web token could not be decoded"));
    run_free(&x);
}


/* ---- OAuth user access tokens (consent flow) ----------------------------------------- */

/* The service's side of ctx->renew_credentials: counts calls and installs TOKEN valid for
 * ttl_s, or refuses like a provider that revoked the grant. */
typedef struct {
    int calls;
    int refuse;
    long ttl_s;
} renewer;

static int fake_renew(casb_scan_ctx *ctx, char *err, size_t errlen)
{
    renewer *rn = ctx->renew_ud;
    json_t *credentials = (json_t *)ctx->credentials;
    char expires[40];

    rn->calls++;
    if (rn->refuse)
        return casb_fail(err, errlen, CASB_EAUTH,
                         "bad_refresh_token: The refresh token passed is incorrect or expired.");
    casb_time_rfc3339(expires, sizeof(expires), time(NULL) + rn->ttl_s);
    json_object_set_new(credentials, "access_token", json_string(TOKEN));
    json_object_set_new(credentials, "expires_at", json_string(expires));
    return 0;
}

/* Consent-flow credentials expiring in_s seconds from now (wall clock: renewal compares
 * real time, not the scan's clock). */
static json_t *oauth_credentials(const char *access_token, long in_s)
{
    char expires[40];

    casb_time_rfc3339(expires, sizeof(expires), time(NULL) + in_s);
    return json_pack("{s:b,s:s,s:s,s:s}", "oauth", 1, "access_token", access_token,
                     "refresh_token", "ghr_refresh", "expires_at", expires);
}

static void run_oauth(run *x, renewer *rn, json_t *credentials)
{
    run_init(x, credentials);
    x->ctx.renew_credentials = fake_renew;
    x->ctx.renew_ud = rn;
    run_scan(x);
}

/* A token hours from expiry is used as it is, as a bearer. */
static void test_scan_oauth(void **state)
{
    renewer rn = {0, 0, 28800};
    run x;

    (void)state;
    run_oauth(&x, &rn, oauth_credentials(TOKEN, 28800));
    if (x.rc != 0)
        fail_msg("scan failed: %s", x.err);
    expect_findings(&x.rec, TENANT_FINDINGS);
    assert_int_equal(rn.calls, 0);
    run_free(&x);
}

/* A token inside the renewal window is renewed before the first call, and only once even
 * when the new one is short-lived (it is then used for half its life). */
static void test_scan_oauth_renews_before_expiry(void **state)
{
    renewer rn = {0, 0, 120};
    size_t i;
    json_t *a;
    run x;

    (void)state;
    run_oauth(&x, &rn, oauth_credentials("ghu_aboutToExpire", 60));
    if (x.rc != 0)
        fail_msg("scan failed: %s", x.err);
    expect_findings(&x.rec, TENANT_FINDINGS);
    assert_int_equal(rn.calls, 1);
    json_array_foreach(fake.auth_log, i, a)
        assert_string_equal(json_string_value(a), "Bearer " TOKEN);
    run_free(&x);
}

/* The provider refuses the refresh token: the scan fails as an authentication failure with
 * the provider's reason (the integration then needs reauthorization). */
static void test_scan_oauth_renewal_refused(void **state)
{
    renewer rn = {0, 1, 0};
    run x;

    (void)state;
    run_oauth(&x, &rn, oauth_credentials("ghu_aboutToExpire", 60));
    assert_int_equal(x.rc, CASB_EAUTH);
    assert_non_null(strstr(x.err, "bad_refresh_token"));
    assert_int_equal(json_array_size(fake.log), 0);
    assert_int_equal(json_array_size(x.rec.ran), 0);
    run_free(&x);
}

/* A token revoked before its expiry (401) is renewed once and the call repeated. */
static void test_scan_oauth_revoked_token(void **state)
{
    renewer rn = {0, 0, 28800};
    run x;

    (void)state;
    run_oauth(&x, &rn, oauth_credentials("ghu_revokedEarly", 28800));
    if (x.rc != 0)
        fail_msg("scan failed: %s", x.err);
    expect_findings(&x.rec, TENANT_FINDINGS);
    assert_int_equal(rn.calls, 1);
    assert_string_equal(json_string_value(json_array_get(fake.auth_log, 0)),
                        "Bearer ghu_revokedEarly");
    run_free(&x);
}

/* Without a way to renew (a connection check of fresh tokens), a token is used until it
 * expires, and an expired one is an authentication failure. */
static void test_scan_oauth_without_renewal(void **state)
{
    run x;

    (void)state;
    run_init(&x, oauth_credentials(TOKEN, 60));
    run_scan(&x);
    if (x.rc != 0)
        fail_msg("scan failed: %s", x.err);
    run_free(&x);
    fake_reset();
    fake_load_tenant();
    run_init(&x, oauth_credentials(TOKEN, -10));
    run_scan(&x);
    assert_int_equal(x.rc, CASB_EAUTH);
    assert_non_null(strstr(x.err, "reauthorize"));
    run_free(&x);
}

/* check_connection: OK, 401, unknown organization, unreachable, not allowed. */
static void test_check_connection(void **state)
{
    const casb_provider *gh = casb_provider_find("github");
    run x;

    (void)state;
    run_init(&x, NULL);
    assert_int_equal(gh->check_connection(&x.ctx, x.err, sizeof(x.err)), 0);
    assert_int_equal(log_count("GET /orgs/acme#1"), 1);
    run_free(&x);

    run_init(&x, json_pack("{s:s}", "token", "ghp_wrong"));
    assert_int_equal(gh->check_connection(&x.ctx, x.err, sizeof(x.err)), CASB_EAUTH);
    assert_string_equal(x.err, "GitHub rejected the credentials: Bad credentials");
    run_free(&x);

    run_init(&x, NULL);
    json_object_set_new(x.config, "organization", json_string("other-org"));
    assert_int_equal(gh->check_connection(&x.ctx, x.err, sizeof(x.err)), CASB_EAUTH);
    assert_non_null(strstr(x.err, "Not Found"));
    run_free(&x);

    run_init(&x, json_pack("{s:s,s:s}", "app_id", "1001", "private_key", app_private_pkcs1));
    assert_int_equal(gh->check_connection(&x.ctx, x.err, sizeof(x.err)), 0);
    run_free(&x);

    add_fault("/orgs/acme", NULL, 503, "Service Unavailable", -1);
    run_init(&x, NULL);
    assert_int_equal(gh->check_connection(&x.ctx, x.err, sizeof(x.err)), CASB_EUNAVAILABLE);
    run_free(&x);

    run_init(&x, NULL);
    json_object_set_new(x.config, "api_base_url", json_string("http://127.0.0.1:1"));
    x.ctx.allowed_endpoints = "http://127.0.0.1:1";
    assert_int_equal(gh->check_connection(&x.ctx, x.err, sizeof(x.err)), CASB_EUNAVAILABLE);
    run_free(&x);

    run_init(&x, NULL);
    x.ctx.allowed_endpoints = NULL;
    assert_int_equal(gh->check_connection(&x.ctx, x.err, sizeof(x.err)), CASB_EINVALID);
    assert_non_null(strstr(x.err, "config.api_base_url"));
    run_free(&x);
}

/* validate(): shapes only, naming the field. */
static void test_validate(void **state)
{
    const casb_provider *gh = casb_provider_find("github");
    struct {
        const char *config, *credentials, *field; /* field NULL: valid */
    } cases[] = {
        {"{\"organization\":\"acme-demo\"}", "{\"token\":\"ghp_x\"}", NULL},
        {"{\"organization\":\"acme\",\"api_base_url\":\"http://127.0.0.1:8090\"}",
         "{\"token\":\"ghp_x\",\"auth_method\":\"token\"}", NULL},
        {"{\"organization\":\"acme\"}", "{\"app_id\":\"1001\",\"private_key\":\"@1\"}", NULL},
        {"{\"organization\":\"acme\"}",
         "{\"app_id\":1001,\"private_key\":\"@8\",\"installation_id\":\"2001\"}", NULL},
        {"{}", "{\"token\":\"ghp_x\"}", "config.organization"},
        {"{\"organization\":\"-acme\"}", "{\"token\":\"ghp_x\"}", "config.organization"},
        {"{\"organization\":\"ac/me\"}", "{\"token\":\"ghp_x\"}", "config.organization"},
        {"{\"organization\":\"a234567890123456789012345678901234567890\"}",
         "{\"token\":\"ghp_x\"}", "config.organization"},
        {"{\"organization\":7}", "{\"token\":\"ghp_x\"}", "config.organization"},
        {"{\"organization\":\"acme\",\"api_base_url\":\"ftp://x\"}", "{\"token\":\"ghp_x\"}",
         "config.api_base_url"},
        {"{\"organization\":\"acme\",\"api_base_url\":\"https://u:p@x\"}",
         "{\"token\":\"ghp_x\"}", "config.api_base_url"},
        {"{\"organization\":\"acme\",\"colour\":\"red\"}", "{\"token\":\"ghp_x\"}",
         "config.colour"},
        {"{\"organization\":\"acme\"}", "{}", "credentials.token"},
        {"{\"organization\":\"acme\"}", "{\"token\":\"\"}", "credentials.token"},
        {"{\"organization\":\"acme\"}", "{\"token\":\"ghp_x\\r\\nX-Evil: 1\"}",
         "credentials.token"},
        {"{\"organization\":\"acme\"}", "{\"token\":\"ghp_x\",\"app_id\":\"1\"}", "credentials"},
        {"{\"organization\":\"acme\"}", "{\"token\":\"ghp_x\",\"auth_method\":\"github_app\"}",
         "credentials.auth_method"},
        {"{\"organization\":\"acme\"}", "{\"private_key\":\"@1\"}", "credentials.app_id"},
        {"{\"organization\":\"acme\"}", "{\"app_id\":\"10a\",\"private_key\":\"@1\"}",
         "credentials.app_id"},
        {"{\"organization\":\"acme\"}", "{\"app_id\":\"1001\"}", "credentials.private_key"},
        {"{\"organization\":\"acme\"}", "{\"app_id\":\"1001\",\"private_key\":\"not a pem\"}",
         "credentials.private_key"},
        {"{\"organization\":\"acme\"}", "{\"app_id\":\"1001\",\"private_key\":\"@ec\"}",
         "credentials.private_key"},
        {"{\"organization\":\"acme\"}",
         "{\"app_id\":\"1001\",\"private_key\":\"@1\",\"installation_id\":\"-3\"}",
         "credentials.installation_id"},
        {"{\"organization\":\"acme\"}", "{\"token\":\"ghp_x\",\"password\":\"x\"}",
         "credentials.password"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *config = json_loads(cases[i].config, 0, NULL);
        json_t *creds = json_loads(cases[i].credentials, 0, NULL);
        const char *k = casb_json_str(creds, "private_key");
        char field[128], err[256];
        int rc;

        assert_non_null(config);
        assert_non_null(creds);
        /* "@1", "@8", "@ec": the generated keys, PKCS#1, PKCS#8 and an EC key. */
        if (k && strcmp(k, "@1") == 0)
            json_object_set_new(creds, "private_key", json_string(app_private_pkcs1));
        else if (k && strcmp(k, "@8") == 0)
            json_object_set_new(creds, "private_key", json_string(app_private_pkcs8));
        else if (k && strcmp(k, "@ec") == 0)
            json_object_set_new(creds, "private_key", json_string(ec_private));
        rc = gh->validate(config, creds, field, sizeof(field), err, sizeof(err));
        if (!cases[i].field) {
            if (rc != 0)
                fail_msg("case %zu: expected valid, got %s (%s)", i, err, field);
        } else {
            if (rc != CASB_EINVALID)
                fail_msg("case %zu: expected %s invalid, got %d", i, cases[i].field, rc);
            if (strcmp(field, cases[i].field) != 0)
                fail_msg("case %zu: field %s, expected %s (%s)", i, field, cases[i].field, err);
            assert_non_null(strstr(err, cases[i].field));
            /* The message never echoes a secret value. */
            assert_null(strstr(err, "ghp_x"));
        }
        json_decref(config);
        json_decref(creds);
    }
}

/* The operator's OAuth registration turned into endpoints, and its refusals. */
static void test_oauth_endpoints(void **state)
{
    const casb_provider *gh = casb_provider_find("github");
    casb_oauth_registration regs[] = {{"github", "Iv1.client", "secret", NULL, NULL}};
    casb_oauth_endpoints ep;
    char err[512];

    (void)state;
    assert_int_equal(casb_provider_oauth_endpoints(gh, regs, 1, "", &ep, err, sizeof(err)), 0);
    assert_string_equal(ep.authorize_url, "https://github.com/login/oauth/authorize");
    assert_string_equal(ep.token_url, "https://github.com/login/oauth/access_token");
    assert_string_equal(ep.install_url, ""); /* no app name: no installation page */
    assert_ptr_equal(ep.client.token_url, ep.token_url);
    assert_string_equal(ep.client.client_id, "Iv1.client");
    assert_string_equal(ep.client.client_secret, "secret");

    regs[0].app_slug = "casb-scanner";
    assert_int_equal(casb_provider_oauth_endpoints(gh, regs, 1, "", &ep, err, sizeof(err)), 0);
    assert_string_equal(ep.install_url, "https://github.com/apps/casb-scanner/installations/new");
    regs[0].app_slug = "casb/../x";
    assert_int_equal(casb_provider_oauth_endpoints(gh, regs, 1, "", &ep, err, sizeof(err)),
                     CASB_EINVALID);
    regs[0].app_slug = NULL;

    /* A configured web URL (Enterprise Server, the simulator) must be allowed. */
    regs[0].web_url = "http://127.0.0.1:8090/";
    assert_int_equal(casb_provider_oauth_endpoints(gh, regs, 1, "", &ep, err, sizeof(err)),
                     CASB_EINVALID);
    assert_int_equal(casb_provider_oauth_endpoints(gh, regs, 1, "http://127.0.0.1:8090", &ep,
                                                   err, sizeof(err)),
                     0);
    assert_string_equal(ep.token_url, "http://127.0.0.1:8090/login/oauth/access_token");

    /* No client id or secret: not configured, and the message tells the operator what to do. */
    regs[0].client_secret = "";
    assert_int_equal(casb_provider_oauth_endpoints(gh, regs, 1, "", &ep, err, sizeof(err)),
                     CASB_ECONFLICT);
    assert_non_null(strstr(err, "CASB_GITHUB_OAUTH_CLIENT_ID"));
    assert_int_equal(casb_provider_oauth_endpoints(gh, regs, 0, "", &ep, err, sizeof(err)),
                     CASB_ECONFLICT);
}

/* Stored consent-flow credentials: their own members, a usable token. */
static void test_validate_oauth(void **state)
{
    const casb_provider *gh = casb_provider_find("github");
    json_t *config = json_pack("{s:s}", "organization", ORG);
    json_t *good = json_pack("{s:b,s:s,s:s,s:s,s:s,s:s}", "oauth", 1, "access_token", "ghu_a",
                             "refresh_token", "ghr_b", "expires_at", "2026-11-29T08:00:00Z",
                             "refresh_token_expires_at", "2027-05-28T00:00:00Z", "scope", "");
    json_t *unknown = json_pack("{s:b,s:s,s:s}", "oauth", 1, "access_token", "ghu_a", "token",
                                "ghp_x");
    json_t *spaced = json_pack("{s:b,s:s}", "oauth", 1, "access_token", "ghu a");
    char field[128], err[256];

    (void)state;
    assert_int_equal(gh->validate(config, good, field, sizeof(field), err, sizeof(err)), 0);
    assert_int_equal(gh->validate(config, unknown, field, sizeof(field), err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(field, "credentials.token");
    assert_int_equal(gh->validate(config, spaced, field, sizeof(field), err, sizeof(err)),
                     CASB_EINVALID);
    assert_string_equal(field, "credentials.access_token");
    json_decref(config);
    json_decref(good);
    json_decref(unknown);
    json_decref(spaced);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_scan_token, test_setup),
        cmocka_unit_test_setup(test_scan_no_outside_collaborators, test_setup),
        cmocka_unit_test_setup(test_scan_permissions_missing, test_setup),
        cmocka_unit_test_setup(test_scan_bad_credentials, test_setup),
        cmocka_unit_test_setup(test_scan_server_error, test_setup),
        cmocka_unit_test_setup(test_scan_failure_reasons, test_setup),
        cmocka_unit_test_setup(test_scan_github_app_suspended, test_setup),
        cmocka_unit_test_setup(test_scan_transient_error, test_setup),
        cmocka_unit_test_setup(test_scan_malformed_body, test_setup),
        cmocka_unit_test_setup(test_scan_foreign_link, test_setup),
        cmocka_unit_test_setup(test_scan_conditional_rescan, test_setup),
        cmocka_unit_test_setup(test_scan_cache_failure_is_not_fatal, test_setup),
        cmocka_unit_test_setup(test_scan_cancel, test_setup),
        cmocka_unit_test_setup(test_scan_endpoint_not_allowed, test_setup),
        cmocka_unit_test_setup(test_scan_github_app, test_setup),
        cmocka_unit_test_setup(test_scan_github_app_refresh, test_setup),
        cmocka_unit_test_setup(test_scan_github_app_wrong_key, test_setup),
        cmocka_unit_test_setup(test_scan_oauth, test_setup),
        cmocka_unit_test_setup(test_scan_oauth_renews_before_expiry, test_setup),
        cmocka_unit_test_setup(test_scan_oauth_renewal_refused, test_setup),
        cmocka_unit_test_setup(test_scan_oauth_revoked_token, test_setup),
        cmocka_unit_test_setup(test_scan_oauth_without_renewal, test_setup),
        cmocka_unit_test_setup(test_check_connection, test_setup),
        cmocka_unit_test_setup(test_validate, test_setup),
        cmocka_unit_test(test_oauth_endpoints),
        cmocka_unit_test(test_validate_oauth),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
