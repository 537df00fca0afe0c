/* The SaaS simulator, in process on a free loopback port, called over HTTP with libcurl:
 * GitHub pagination, auth (tokens, App JWT -> installation token), filters, faults, the
 * primary rate limit, stats and the admin API; plus its RFC 7386 merge patch directly.
 *
 * The simulator is an executable, not a library, so its modules are compiled into this
 * test as they are (main.c aside). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "casb/json.h"
#include "casb/jwt.h"
#include "casb/log.h"
#include "casb/timeutil.h"

#include "sim.h"
#include "test_http_util.h"
#include "test_keys.h"

#define ORG "t-org"
#define TOKEN "ghp_testStaticToken000000000000000000001"
#define OTHER_TOKEN "ghp_otherOrgToken00000000000000000000002"
#define APP_ID 1001
#define INSTALLATION_ID 2001
#define NREPOS 250

static sim *S;
static char base[64];
static char *private_pem;
static char *public_pem;
static char *stranger_private_pem; /* a key the simulator does not know */

/* One request; url is absolute or a path on the simulator. auth is the whole header value. */
static response http(const char *method, const char *url, const char *auth, const char *body)
{
    const char *hdrs[3] = {NULL, NULL, NULL};
    char full[2048], authz[4096];
    size_t n = 0;

    snprintf(full, sizeof full, "%s%s", strncmp(url, "http", 4) == 0 ? "" : base, url);
    if (auth) {
        snprintf(authz, sizeof authz, "Authorization: %s", auth);
        hdrs[n++] = authz;
    }
    if (body)
        hdrs[n++] = "Content-Type: application/json";
    return http_request(method, full, hdrs, body);
}

/* The URL of rel="<rel>" in a Link header into buf; 0 when the relation is absent. */
static int link_rel_url(const char *link, const char *rel, char *buf, size_t len)
{
    char needle[32];
    const char *p, *open;

    snprintf(needle, sizeof needle, "rel=\"%s\"", rel);
    p = strstr(link, needle);
    if (!p)
        return 0;
    open = p;
    while (open > link && *open != '<')
        open--;
    const char *close = strchr(open, '>');
    assert_non_null(close);
    snprintf(buf, len, "%.*s", (int)(close - open - 1), open + 1);
    return 1;
}

static char *sign_jwt(const char *pem, long long iss, long long iat_offset, long long exp_offset)
{
    long long now = (long long)time(NULL);
    json_t *claims = json_pack("{s:I, s:I, s:I}", "iat", (json_int_t)(now + iat_offset), "exp",
                               (json_int_t)(now + exp_offset), "iss", (json_int_t)iss);
    char *jwt = NULL;
    char err[256];

    assert_int_equal(casb_jwt_sign_rs256(&jwt, claims, pem, err, sizeof err), 0);
    json_decref(claims);
    return jwt;
}

static char *bearer(const char *token)
{
    char *v = malloc(strlen(token) + 8);

    assert_non_null(v);
    sprintf(v, "Bearer %s", token);
    return v;
}

static json_t *tenant_doc(void)
{
    json_t *repos = json_array(), *members = json_array();
    char name[32];

    for (int i = 0; i < NREPOS; i++) {
        snprintf(name, sizeof name, "repo-%03d", i);
        json_array_append_new(repos, json_pack("{s:s, s:i, s:b, s:s}", "name", name, "id",
                                               100000 + i, "private", i % 3 == 0, "pushed_at",
                                               "now-10d"));
    }
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "user%02d", i);
        /* every 4th member lacks 2FA: 10 of 40; members 0 and 1 are admins */
        json_array_append_new(members, json_pack("{s:s, s:i, s:s, s:b}", "login", name, "id",
                                                 500 + i, "role", i < 2 ? "admin" : "member",
                                                 "two_factor", i % 4 != 0));
    }
    return json_pack("{s:s, s:{s:[s], s:{s:i, s:i, s:s}}, s:{s:b, s:s}, s:o, s:o, s:[{s:s, s:i, s:b}]}",
                     "login", ORG, "auth", "tokens", TOKEN, "app", "app_id", APP_ID,
                     "installation_id", INSTALLATION_ID, "public_key_pem", public_pem, "org",
                     "two_factor_requirement_enabled", 0, "default_repository_permission", "write",
                     "repos", repos, "members", members, "outside_collaborators", "login", "ext1",
                     "id", 901, "two_factor", 0);
}

static int setup(void **state)
{
    EVP_PKEY *key = EVP_RSA_gen(2048), *stranger = EVP_RSA_gen(2048);
    char addr[32], err[256];
    int created = 0;
    int port = free_port();
    sim_opts opts = {.seed = 42};

    (void)state;
    casb_log_init("test-saas-sim", CASB_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!key || !stranger || port < 0)
        return -1;
    private_pem = private_pem_of(key);
    public_pem = public_pem_of(key);
    stranger_private_pem = private_pem_of(stranger);
    EVP_PKEY_free(key);
    EVP_PKEY_free(stranger);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(base, sizeof base, "http://%s", addr);
    opts.addr = addr;
    if (sim_new(&S, &opts, err, sizeof err) != 0)
        return -1;
    if (sim_org_put(S, ORG, tenant_doc(), &created, err, sizeof err) != 0 || !created) {
        fprintf(stderr, "tenant: %s\n", err);
        return -1;
    }
    json_t *other = json_pack("{s:s, s:{s:[s]}, s:[{s:s}]}", "login", "other-org", "auth",
                              "tokens", OTHER_TOKEN, "repos", "name", "x");
    if (sim_org_put(S, "other-org", other, &created, err, sizeof err) != 0)
        return -1;
    if (sim_start(S, err, sizeof err) != 0) {
        fprintf(stderr, "start: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sim_free(S);
    free(private_pem);
    free(public_pem);
    free(stranger_private_pem);
    curl_global_cleanup();
    return 0;
}

/* Between tests: no faults, fresh counters and rate budget. */
static int reset_org(void **state)
{
    response r;

    (void)state;
    r = http("DELETE", "/_sim/orgs/" ORG "/faults", NULL, NULL);
    response_free(&r);
    r = http("POST", "/_sim/orgs/" ORG "/stats/reset", NULL, "{}");
    response_free(&r);
    r = http("PATCH", "/_sim/orgs/" ORG, NULL, "{\"rate_limit\":{\"limit\":5000}}");
    response_free(&r);
    return 0;
}

static void test_pagination_link_chain(void **state)
{
    char link[2048], next[1024], last[1024], prev[1024], url[1024];
    json_t *seen = json_object();
    int pages = 0;

    (void)state;
    snprintf(url, sizeof url, "/orgs/" ORG "/repos?per_page=100");
    for (;;) {
        response r = http("GET", url, "token " TOKEN, NULL);
        json_t *items;
        size_t i;
        json_t *repo;

        assert_int_equal(r.status, 200);
        pages++;
        items = body_of(&r);
        json_array_foreach(items, i, repo) {
            assert_string_equal(casb_json_path_str(repo, "owner.login"), ORG);
            json_object_set_new(seen, casb_json_str(repo, "full_name"), json_true());
        }
        assert_int_equal(header(&r, "link", link, sizeof link), 1);
        if (pages == 1) {
            assert_int_equal(json_array_size(items), 100);
            assert_int_equal(link_rel_url(link, "prev", prev, sizeof prev), 0);
            assert_int_equal(link_rel_url(link, "last", last, sizeof last), 1);
            snprintf(url, sizeof url, "%s/orgs/" ORG "/repos?per_page=100&page=3", base);
            assert_string_equal(last, url);
        } else if (pages == 2) {
            assert_int_equal(json_array_size(items), 100);
            assert_int_equal(link_rel_url(link, "prev", prev, sizeof prev), 1);
            snprintf(url, sizeof url, "%s/orgs/" ORG "/repos?per_page=100&page=1", base);
            assert_string_equal(prev, url);
        } else {
            assert_int_equal(json_array_size(items), NREPOS - 200);
            assert_int_equal(link_rel_url(link, "last", last, sizeof last), 0);
        }
        json_decref(items);
        int more = link_rel_url(link, "next", next, sizeof next);
        response_free(&r);
        if (!more)
            break;
        /* GitHub's exact form: per_page carried, page last. */
        snprintf(url, sizeof url, "%s/orgs/" ORG "/repos?per_page=100&page=%d", base, pages + 1);
        assert_string_equal(next, url);
        assert_true(pages < 10);
    }
    assert_int_equal(pages, 3);
    assert_int_equal(json_object_size(seen), NREPOS);
    json_decref(seen);

    /* Default page size 30, per_page capped at 100, a single page has no Link header. */
    response r = http("GET", "/orgs/" ORG "/repos", "Bearer " TOKEN, NULL);
    json_t *items = body_of(&r);
    assert_int_equal(json_array_size(items), 30);
    assert_int_equal(header(&r, "link", link, sizeof link), 1);
    assert_non_null(strstr(link, "?page=2>; rel=\"next\""));
    assert_non_null(strstr(link, "?page=9>; rel=\"last\""));
    json_decref(items);
    response_free(&r);
    r = http("GET", "/orgs/" ORG "/repos?per_page=500", "Bearer " TOKEN, NULL);
    items = body_of(&r);
    assert_int_equal(json_array_size(items), 100);
    json_decref(items);
    response_free(&r);
    r = http("GET", "/orgs/" ORG "/outside_collaborators", "Bearer " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(header(&r, "link", link, sizeof link), 0);
    response_free(&r);
}

static void test_bad_credentials(void **state)
{
    char v[64];
    json_t *b;

    (void)state;
    response r = http("GET", "/orgs/" ORG, "token ghp_nottheright0000000000000000000000", NULL);
    assert_int_equal(r.status, 401);
    b = body_of(&r);
    assert_string_equal(casb_json_str(b, "message"), "Bad credentials");
    assert_non_null(casb_json_str(b, "documentation_url"));
    assert_int_equal(header(&r, "x-ratelimit-limit", v, sizeof v), 1);
    json_decref(b);
    response_free(&r);

    r = http("GET", "/orgs/" ORG "/members", NULL, NULL);
    assert_int_equal(r.status, 401);
    b = body_of(&r);
    assert_string_equal(casb_json_str(b, "message"), "Requires authentication");
    json_decref(b);
    response_free(&r);

    /* Another org's valid token sees nothing of this org. */
    r = http("GET", "/orgs/" ORG "/repos", "token " OTHER_TOKEN, NULL);
    assert_int_equal(r.status, 404);
    response_free(&r);

    /* A valid token on an unknown org: 404, not 401. */
    r = http("GET", "/orgs/no-such-org", "token " TOKEN, NULL);
    assert_int_equal(r.status, 404);
    response_free(&r);

    /* Every response carries the rate-limit headers. */
    r = http("GET", "/orgs/" ORG, "Bearer " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(header(&r, "x-ratelimit-remaining", v, sizeof v), 1);
    assert_int_equal(header(&r, "x-ratelimit-used", v, sizeof v), 1);
    assert_int_equal(header(&r, "x-ratelimit-reset", v, sizeof v), 1);
    assert_int_equal(header(&r, "x-ratelimit-resource", v, sizeof v), 1);
    assert_string_equal(v, "core");
    response_free(&r);
}

static void test_app_jwt_installation_token(void **state)
{
    char *jwt = sign_jwt(private_pem, APP_ID, -60, 540);
    char *auth = bearer(jwt);
    json_t *b;
    time_t expires;
    char token[64];

    (void)state;
    /* The JWT finds the installation... */
    response r = http("GET", "/orgs/" ORG "/installation", auth, NULL);
    assert_int_equal(r.status, 200);
    b = body_of(&r);
    assert_int_equal(casb_json_int(b, "id", 0), INSTALLATION_ID);
    assert_int_equal(casb_json_int(b, "app_id", 0), APP_ID);
    assert_string_equal(casb_json_path_str(b, "account.login"), ORG);
    json_decref(b);
    response_free(&r);

    /* ...and exchanges itself for an installation token valid one hour. */
    r = http("POST", "/app/installations/2001/access_tokens", auth, "{}");
    assert_int_equal(r.status, 201);
    b = body_of(&r);
    assert_non_null(casb_json_str(b, "token"));
    assert_int_equal(strncmp(casb_json_str(b, "token"), "ghs_", 4), 0);
    assert_int_equal(strlen(casb_json_str(b, "token")), 40);
    assert_int_equal(casb_time_parse(casb_json_str(b, "expires_at"), &expires), 0);
    assert_true(expires > time(NULL) + 3500 && expires <= time(NULL) + 3600);
    assert_string_equal(casb_json_str(b, "repository_selection"), "all");
    assert_string_equal(casb_json_path_str(b, "permissions.members"), "read");
    snprintf(token, sizeof token, "token %s", casb_json_str(b, "token"));
    json_decref(b);
    response_free(&r);

    /* The installation token works on the org's endpoints. */
    r = http("GET", "/orgs/" ORG "/members", token, NULL);
    assert_int_equal(r.status, 200);
    response_free(&r);
    /* ...and on no other org's. */
    r = http("GET", "/orgs/other-org", token, NULL);
    assert_int_equal(r.status, 404);
    response_free(&r);

    /* A JWT is accepted only on /app/... and /orgs/{org}/installation. */
    r = http("GET", "/orgs/" ORG "/repos", auth, NULL);
    assert_int_equal(r.status, 401);
    response_free(&r);
    /* A token is not accepted where a JWT is required. */
    r = http("GET", "/orgs/" ORG "/installation", "Bearer " TOKEN, NULL);
    assert_int_equal(r.status, 401);
    b = body_of(&r);
    assert_string_equal(casb_json_str(b, "message"), "A JSON web token could not be decoded");
    json_decref(b);
    response_free(&r);
    /* Unknown installation: 404. */
    r = http("POST", "/app/installations/999999/access_tokens", auth, NULL);
    assert_int_equal(r.status, 404);
    response_free(&r);
    free(auth);
    free(jwt);

    /* exp more than 10 minutes ahead. */
    jwt = sign_jwt(private_pem, APP_ID, -60, 3600);
    auth = bearer(jwt);
    r = http("POST", "/app/installations/2001/access_tokens", auth, NULL);
    assert_int_equal(r.status, 401);
    b = body_of(&r);
    assert_non_null(strstr(casb_json_str(b, "message"), "too far in the future"));
    json_decref(b);
    response_free(&r);
    free(auth);
    free(jwt);

    /* Expired. */
    jwt = sign_jwt(private_pem, APP_ID, -900, -300);
    auth = bearer(jwt);
    r = http("POST", "/app/installations/2001/access_tokens", auth, NULL);
    assert_int_equal(r.status, 401);
    response_free(&r);
    free(auth);
    free(jwt);

    /* Signed with a key the app does not have. */
    jwt = sign_jwt(stranger_private_pem, APP_ID, -60, 540);
    auth = bearer(jwt);
    r = http("POST", "/app/installations/2001/access_tokens", auth, NULL);
    assert_int_equal(r.status, 401);
    b = body_of(&r);
    assert_string_equal(casb_json_str(b, "message"), "A JSON web token could not be decoded");
    json_decref(b);
    response_free(&r);
    free(auth);
    free(jwt);

    /* The right key naming another app: that app is not installed here. */
    jwt = sign_jwt(private_pem, APP_ID + 1, -60, 540);
    auth = bearer(jwt);
    r = http("GET", "/orgs/" ORG "/installation", auth, NULL);
    assert_int_equal(r.status, 404);
    response_free(&r);
    free(auth);
    free(jwt);

    /* Tokens issued are the org's until the org goes: expired ones are refused. */
    pthread_rwlock_rdlock(&S->lock);
    assert_int_equal(sim_token_issue(S, sim_org_find(S, ORG), token + 6, sizeof token - 6, &expires), 0);
    pthread_rwlock_unlock(&S->lock);
    pthread_mutex_lock(&S->mu);
    S->tokens[S->ntokens - 1].expires_at = time(NULL) - 1;
    pthread_mutex_unlock(&S->mu);
    r = http("GET", "/orgs/" ORG, token, NULL);
    assert_int_equal(r.status, 401);
    response_free(&r);
}

static void test_member_filters(void **state)
{
    json_t *b, *u;
    size_t i;

    (void)state;
    response r = http("GET", "/orgs/" ORG "/members?filter=2fa_disabled&per_page=100", "token " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    b = body_of(&r);
    assert_int_equal(json_array_size(b), 10);
    json_array_foreach(b, i, u) {
        int n = atoi(casb_json_str(u, "login") + 4);
        assert_int_equal(n % 4, 0);
        /* Simple User with every url built on the simulator's own base. */
        assert_int_equal(strncmp(casb_json_str(u, "url"), base, strlen(base)), 0);
        assert_int_equal(strncmp(casb_json_str(u, "html_url"), "https://github.com/", 19), 0);
        assert_string_equal(casb_json_str(u, "type"), "User");
        assert_null(json_object_get(u, "two_factor"));
    }
    json_decref(b);
    response_free(&r);

    r = http("GET", "/orgs/" ORG "/members?role=admin", "token " TOKEN, NULL);
    b = body_of(&r);
    assert_int_equal(json_array_size(b), 2);
    json_decref(b);
    response_free(&r);

    r = http("GET", "/orgs/" ORG "/members?filter=2fa_disabled&role=admin", "token " TOKEN, NULL);
    b = body_of(&r);
    assert_int_equal(json_array_size(b), 1); /* user00 */
    json_decref(b);
    response_free(&r);

    r = http("GET", "/orgs/" ORG "/members?filter=nonsense", "token " TOKEN, NULL);
    assert_int_equal(r.status, 422);
    response_free(&r);

    r = http("GET", "/orgs/" ORG "/outside_collaborators?filter=2fa_disabled", "token " TOKEN, NULL);
    b = body_of(&r);
    assert_int_equal(json_array_size(b), 1);
    json_decref(b);
    response_free(&r);
}

static void check_merge(const char *target, const char *patch, const char *expected)
{
    json_t *t = json_loads(target, JSON_DECODE_ANY, NULL);
    json_t *p = json_loads(patch, JSON_DECODE_ANY, NULL);
    json_t *e = json_loads(expected, JSON_DECODE_ANY, NULL);
    json_t *before = json_deep_copy(t);
    json_t *got = sim_merge_patch(t, p);

    assert_non_null(got);
    if (!json_equal(got, e)) {
        char *s = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        fprintf(stderr, "merge %s + %s = %s, want %s\n", target, patch, s, expected);
        free(s);
    }
    assert_true(json_equal(got, e));
    assert_true(json_equal(t, before)); /* the target is not modified */
    json_decref(t);
    json_decref(p);
    json_decref(e);
    json_decref(before);
    json_decref(got);
}

/* RFC 7386 appendix A, every example. */
static void test_merge_patch(void **state)
{
    (void)state;
    check_merge("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    check_merge("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
    check_merge("{\"a\":\"b\"}", "{\"a\":null}", "{}");
    check_merge("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
    check_merge("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    check_merge("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
    check_merge("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}");
    check_merge("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
    check_merge("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
    check_merge("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
    check_merge("{\"a\":\"foo\"}", "null", "null");
    check_merge("{\"a\":\"foo\"}", "\"bar\"", "\"bar\"");
    check_merge("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
    check_merge("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
    check_merge("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");

    /* Through the admin API: an org setting and one repo, then what GitHub shows. */
    response r = http("PATCH", "/_sim/orgs/" ORG, NULL, "{\"org\":{\"two_factor_requirement_enabled\":true}}");
    assert_int_equal(r.status, 200);
    json_t *b = body_of(&r);
    assert_null(json_object_get(b, "auth")); /* credentials stay out of answers */
    json_decref(b);
    response_free(&r);
    r = http("GET", "/orgs/" ORG, "token " TOKEN, NULL);
    b = body_of(&r);
    assert_true(casb_json_bool(b, "two_factor_requirement_enabled", 0));
    assert_string_equal(casb_json_str(b, "default_repository_permission"), "write");
    json_decref(b);
    response_free(&r);

    r = http("GET", "/repos/" ORG "/repo-001/branches/main/protection", "token " TOKEN, NULL);
    assert_int_equal(r.status, 404);
    b = body_of(&r);
    assert_string_equal(casb_json_str(b, "message"), "Branch not protected");
    json_decref(b);
    response_free(&r);
    r = http("PATCH", "/_sim/orgs/" ORG "/repos/repo-001", NULL,
             "{\"branch_protection\":{\"enforce_admins\":{\"enabled\":true}},\"archived\":true}");
    assert_int_equal(r.status, 200);
    response_free(&r);
    r = http("GET", "/repos/" ORG "/repo-001/branches/main/protection", "token " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    b = body_of(&r);
    assert_true(json_is_true(casb_json_path(b, "enforce_admins.enabled")));
    assert_non_null(casb_json_str(b, "url"));
    json_decref(b);
    response_free(&r);
    r = http("GET", "/repos/" ORG "/repo-001", "token " TOKEN, NULL);
    b = body_of(&r);
    assert_true(casb_json_bool(b, "archived", 0));
    json_decref(b);
    response_free(&r);

    /* An invalid result is refused and changes nothing; unknown repos and orgs are 404. */
    r = http("PATCH", "/_sim/orgs/" ORG, NULL, "{\"repos\":\"not an array\"}");
    assert_int_equal(r.status, 400);
    response_free(&r);
    r = http("PATCH", "/_sim/orgs/" ORG "/repos/nope", NULL, "{\"archived\":true}");
    assert_int_equal(r.status, 404);
    response_free(&r);
    r = http("PATCH", "/_sim/orgs/nope", NULL, "{}");
    assert_int_equal(r.status, 404);
    response_free(&r);
    r = http("PATCH", "/_sim/orgs/" ORG, NULL, "{\"org\":{\"two_factor_requirement_enabled\":null}}");
    response_free(&r);
}

static void test_fault_429_then_clear(void **state)
{
    char v[64];
    json_t *b;

    (void)state;
    response r = http("POST", "/_sim/orgs/" ORG "/faults", NULL,
                      "{\"mode\":\"429\",\"count\":2,\"retry_after_s\":7,\"path_contains\":\"/repos\"}");
    assert_int_equal(r.status, 201);
    response_free(&r);

    /* Another path is not affected. */
    r = http("GET", "/orgs/" ORG, "token " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    response_free(&r);
    for (int i = 0; i < 2; i++) {
        r = http("GET", "/orgs/" ORG "/repos", "token " TOKEN, NULL);
        assert_int_equal(r.status, 429);
        assert_int_equal(header(&r, "retry-after", v, sizeof v), 1);
        assert_string_equal(v, "7");
        assert_int_equal(header(&r, "x-ratelimit-remaining", v, sizeof v), 1);
        assert_true(atoi(v) > 0); /* secondary, not primary */
        b = body_of(&r);
        assert_non_null(strstr(casb_json_str(b, "message"), "secondary rate limit"));
        json_decref(b);
        response_free(&r);
    }
    /* count honoured */
    r = http("GET", "/orgs/" ORG "/repos", "token " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    response_free(&r);

    /* Until cleared. */
    r = http("POST", "/_sim/orgs/" ORG "/faults", NULL, "{\"mode\":\"503\"}");
    response_free(&r);
    for (int i = 0; i < 3; i++) {
        r = http("GET", "/orgs/" ORG "/hooks", "token " TOKEN, NULL);
        assert_int_equal(r.status, 503);
        response_free(&r);
    }
    r = http("DELETE", "/_sim/orgs/" ORG "/faults", NULL, NULL);
    assert_int_equal(r.status, 204);
    response_free(&r);
    r = http("GET", "/orgs/" ORG "/hooks", "token " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    response_free(&r);

    /* Stats: per endpoint template, faults counted. */
    r = http("GET", "/_sim/orgs/" ORG "/stats", NULL, NULL);
    b = body_of(&r);
    assert_int_equal(casb_json_int(b, "requests", 0), 8);
    assert_int_equal(casb_json_int(b, "faults_injected", 0), 5);
    assert_int_equal(casb_json_int(json_object_get(b, "by_endpoint"), "GET /orgs/{org}/repos", 0), 3);
    assert_int_equal(casb_json_int(json_object_get(b, "by_endpoint"), "GET /orgs/{org}/hooks", 0), 4);
    json_decref(b);
    response_free(&r);

    r = http("POST", "/_sim/orgs/" ORG "/faults", NULL, "{\"mode\":\"sideways\"}");
    assert_int_equal(r.status, 400);
    response_free(&r);
    r = http("POST", "/_sim/orgs/" ORG "/faults", NULL, "{\"mode\":\"500\",\"rate\":2}");
    assert_int_equal(r.status, 400);
    response_free(&r);
}

static void test_fault_rate_is_reproducible(void **state)
{
    char first[41], second[41];
    int faulted = 0;

    (void)state;
    for (int round = 0; round < 2; round++) {
        char *seq = round == 0 ? first : second;
        response r = http("POST", "/_sim/orgs/" ORG "/faults", NULL, "{\"mode\":\"500\",\"rate\":0.5}");
        response_free(&r);
        for (int i = 0; i < 40; i++) {
            r = http("GET", "/orgs/" ORG, "token " TOKEN, NULL);
            assert_true(r.status == 200 || r.status == 500);
            seq[i] = r.status == 500 ? 'x' : '.';
            response_free(&r);
        }
        seq[40] = '\0';
        r = http("DELETE", "/_sim/orgs/" ORG "/faults", NULL, NULL);
        response_free(&r);
    }
    assert_string_equal(first, second);
    for (int i = 0; i < 40; i++)
        faulted += first[i] == 'x';
    assert_true(faulted > 5 && faulted < 35);
}

static void test_malformed_and_slow(void **state)
{
    json_error_t jerr;
    json_t *v;

    (void)state;
    response r = http("POST", "/_sim/orgs/" ORG "/faults", NULL, "{\"mode\":\"malformed\",\"count\":1}");
    response_free(&r);
    r = http("GET", "/orgs/" ORG "/members", "token " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_true(r.body_len > 10);
    v = json_loadb(r.body, r.body_len, 0, &jerr);
    assert_null(v);
    response_free(&r);

    r = http("POST", "/_sim/orgs/" ORG "/faults", NULL, "{\"mode\":\"slow\",\"delay_ms\":300,\"count\":1}");
    response_free(&r);
    int64_t t0 = casb_monotonic_ms();
    r = http("GET", "/orgs/" ORG, "token " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_true(casb_monotonic_ms() - t0 >= 300);
    v = body_of(&r);
    json_decref(v);
    response_free(&r);
}

static void test_primary_rate_limit(void **state)
{
    char v[64];
    json_t *b;

    (void)state;
    response r = http("PATCH", "/_sim/orgs/" ORG, NULL, "{\"rate_limit\":{\"limit\":3}}");
    response_free(&r);
    for (int i = 0; i < 3; i++) {
        r = http("GET", "/orgs/" ORG, "token " TOKEN, NULL);
        assert_int_equal(r.status, 200);
        header(&r, "x-ratelimit-remaining", v, sizeof v);
        assert_int_equal(atoi(v), 2 - i);
        response_free(&r);
    }
    r = http("GET", "/orgs/" ORG "/repos", "token " TOKEN, NULL);
    assert_int_equal(r.status, 403);
    header(&r, "x-ratelimit-remaining", v, sizeof v);
    assert_string_equal(v, "0");
    b = body_of(&r);
    assert_non_null(strstr(casb_json_str(b, "message"), "API rate limit exceeded"));
    json_decref(b);
    response_free(&r);
    /* /rate_limit does not count and still answers. */
    r = http("GET", "/rate_limit", "token " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    b = body_of(&r);
    assert_int_equal(casb_json_int(casb_json_path(b, "resources.core"), "remaining", -1), 0);
    assert_int_equal(casb_json_int(casb_json_path(b, "resources.core"), "limit", -1), 3);
    json_decref(b);
    response_free(&r);
}

/* GETs carry an ETag; If-None-Match naming it answers 304 without a body, and gives back the
 * rate-limit point; a changed document answers 200 with another ETag. */
static void test_conditional_get(void **state)
{
    const char *url = "/orgs/" ORG "/members?per_page=2";
    char etag[64], inm[96], full[256], used[32];
    const char *hdrs[] = {"Authorization: token " TOKEN, inm, NULL};
    json_t *st;

    (void)state;
    response r = http("GET", url, "token " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(header(&r, "etag", etag, sizeof etag), 1);
    assert_int_equal(strncmp(etag, "W/\"", 3), 0);
    response_free(&r);

    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    snprintf(full, sizeof full, "%s%s", base, url);
    r = http_request("GET", full, hdrs, NULL);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(header(&r, "x-ratelimit-used", used, sizeof used), 1);
    assert_string_equal(used, "1"); /* the first GET's point only */
    response_free(&r);
    r = http("GET", "/_sim/orgs/" ORG "/stats", NULL, NULL);
    st = body_of(&r);
    assert_int_equal(casb_json_int(st, "not_modified", -1), 1);
    assert_int_equal(casb_json_int(st, "rate_limit_used", -1), 1);
    json_decref(st);
    response_free(&r);

    r = http("PATCH", "/_sim/orgs/" ORG, NULL, "{\"members\":[{\"login\":\"zed\",\"id\":9}]}");
    response_free(&r);
    r = http_request("GET", full, hdrs, NULL);
    assert_int_equal(r.status, 200);
    assert_true(r.body_len > 0);
    response_free(&r);
    /* The other tests' members back. */
    json_t *doc = tenant_doc();
    char *text = json_dumps(doc, JSON_COMPACT);
    r = http("PUT", "/_sim/orgs/" ORG, NULL, text);
    assert_int_equal(r.status, 200);
    response_free(&r);
    free(text);
    json_decref(doc);
}

/* PUT /_sim/latency holds every provider request, not the admin API's. */
static void test_latency(void **state)
{
    int64_t t0;
    json_t *b;

    (void)state;
    response r = http("PUT", "/_sim/latency", NULL, "{\"ms\":-1}");
    assert_int_equal(r.status, 400);
    response_free(&r);
    r = http("PUT", "/_sim/latency", NULL, "{\"ms\":150}");
    assert_int_equal(r.status, 200);
    b = body_of(&r);
    assert_int_equal(casb_json_int(b, "ms", -1), 150);
    json_decref(b);
    response_free(&r);
    t0 = casb_monotonic_ms();
    r = http("GET", "/orgs/" ORG, "token " TOKEN, NULL);
    assert_int_equal(r.status, 200);
    assert_true(casb_monotonic_ms() - t0 >= 150);
    response_free(&r);
    t0 = casb_monotonic_ms();
    r = http("GET", "/_sim/orgs/" ORG "/stats", NULL, NULL);
    assert_true(casb_monotonic_ms() - t0 < 150);
    response_free(&r);
    r = http("PUT", "/_sim/latency", NULL, "{\"ms\":0}");
    assert_int_equal(r.status, 200);
    response_free(&r);
}

static void test_admin_put_delete(void **state)
{
    json_t *b;

    (void)state;
    response r = http("PUT", "/_sim/orgs/tmp-org", NULL,
                      "{\"auth\":{\"tokens\":[\"ghp_tmp\"]},\"installations\":[{\"id\":5,\"app_id\":9,"
                      "\"permissions\":{\"contents\":\"write\"}}],\"hooks\":[{\"id\":3,\"config\":"
                      "{\"url\":\"https://x.example\",\"secret\":\"hunter2\"}}]}");
    assert_int_equal(r.status, 201);
    response_free(&r);
    r = http("GET", "/orgs/tmp-org/installations", "token ghp_tmp", NULL);
    assert_int_equal(r.status, 200);
    b = body_of(&r);
    assert_int_equal(casb_json_int(b, "total_count", 0), 1);
    assert_string_equal(casb_json_path_str(json_array_get(json_object_get(b, "installations"), 0),
                                           "permissions.contents"),
                        "write");
    json_decref(b);
    response_free(&r);
    r = http("GET", "/orgs/tmp-org/hooks", "token ghp_tmp", NULL);
    assert_null(strstr(r.body, "hunter2"));
    b = body_of(&r);
    assert_string_equal(casb_json_path_str(json_array_get(b, 0), "config.secret"), "********");
    json_decref(b);
    response_free(&r);
    r = http("PUT", "/_sim/orgs/tmp-org", NULL, "{\"login\":\"someone-else\"}");
    assert_int_equal(r.status, 400);
    response_free(&r);
    r = http("DELETE", "/_sim/orgs/tmp-org", NULL, NULL);
    assert_int_equal(r.status, 204);
    response_free(&r);
    r = http("GET", "/orgs/tmp-org", "token ghp_tmp", NULL);
    assert_int_equal(r.status, 401);
    response_free(&r);
    r = http("DELETE", "/_sim/orgs/tmp-org", NULL, NULL);
    assert_int_equal(r.status, 404);
    response_free(&r);
    r = http("GET", "/_sim/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"ok\":true}");
    response_free(&r);
}

/* The demo tenant shipped beside the simulator loads and has the mix the demo relies on. */
static void test_demo_tenant(void **state)
{
    const char *src = getenv("CASB_SOURCE_DIR") ? getenv("CASB_SOURCE_DIR") : CASB_SOURCE_DIR;
    char path[1024], err[256];
    sim_opts opts = {.addr = "127.0.0.1:1"};
    sim *d = NULL;
    sim_org *o;

    (void)state;
    snprintf(path, sizeof path, "%s/tests/fakes/saas-sim/tenants/demo.json", src);
    assert_int_equal(sim_new(&d, &opts, err, sizeof err), 0);
    assert_int_equal(sim_tenant_load_file(d, path, err, sizeof err), 0);
    o = sim_org_find(d, "acme-demo");
    assert_non_null(o);
    assert_int_equal(casb_json_int(casb_json_path(o->doc, "auth.app"), "app_id", 0), 1001);
    assert_int_equal(casb_json_int(casb_json_path(o->doc, "auth.app"), "installation_id", 0), 2001);
    /* The OAuth app registration deploy/local configures for the consent flow. */
    assert_string_equal(casb_json_path_str(o->doc, "auth.oauth.client_id"),
                        "Iv1.acmedemo00000001");
    assert_string_equal(casb_json_path_str(o->doc, "auth.oauth.client_secret"),
                        "sim-oauth-secret-acme-demo-0000000000001");
    assert_int_equal(json_array_size(json_object_get(o->doc, "members")), 12);
    assert_int_equal(json_array_size(json_object_get(o->doc, "installations")), 2);
    assert_true(json_array_size(json_object_get(o->doc, "repos")) >= 15);
    sim_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_patch),
        cmocka_unit_test_setup(test_pagination_link_chain, reset_org),
        cmocka_unit_test_setup(test_bad_credentials, reset_org),
        cmocka_unit_test_setup(test_app_jwt_installation_token, reset_org),
        cmocka_unit_test_setup(test_member_filters, reset_org),
        cmocka_unit_test_setup(test_fault_429_then_clear, reset_org),
        cmocka_unit_test_setup(test_fault_rate_is_reproducible, reset_org),
        cmocka_unit_test_setup(test_malformed_and_slow, reset_org),
        cmocka_unit_test_setup(test_primary_rate_limit, reset_org),
        cmocka_unit_test_setup(test_admin_put_delete, reset_org),
        cmocka_unit_test_setup(test_conditional_get, reset_org),
        cmocka_unit_test_setup(test_latency, reset_org),
        cmocka_unit_test(test_demo_tenant),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
