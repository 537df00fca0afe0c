/* The SaaS simulator's Google Workspace, in process on free loopback ports, called over HTTP
 * with libcurl and over UDP for DNS: the service-account token exchange (JWT bearer grant),
 * scopes and admin checks, nextPageToken paging with exact counts, the fields mask (also
 * directly on sim_fields), Google's quota error bodies from injected faults, the generated
 * tenant's rules, the demo tenant and its key, and the TXT responder. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "casb/json.h"
#include "casb/jwt.h"
#include "casb/log.h"

#include "sim.h"
#include "sim_google.h"
#include "test_http_util.h"
#include "test_keys.h"

#define CUSTOMER "Ctest"
#define SA_EMAIL "scanner@test-proj.iam.gserviceaccount.com"
#define ADMIN "admin@t.test"
#define USER "u1@t.test"
#define GEN_USERS 1200
#define GEN_FILES 6
#define U1_FILES 250
#define GAPI "https://www.googleapis.com/auth/"
#define ADMIN_SCOPES GAPI "admin.directory.user.readonly " GAPI "admin.directory.user.security"
#define USER_SCOPES GAPI "drive.metadata.readonly " GAPI "calendar.readonly"
#define LONG_TXT_LEN 300

static sim *S;
static char base[64];
static int dns_port;
static char *private_pem, *public_pem, *stranger_pem;

static response http(const char *method, const char *path, const char *bearer, const char *body,
                     const char *content_type)
{
    const char *hdrs[3] = {NULL, NULL, NULL};
    char url[4096], authz[1024], ctype[128];
    size_t n = 0;

    snprintf(url, sizeof url, "%s%s", base, path);
    if (bearer) {
        snprintf(authz, sizeof authz, "Authorization: Bearer %s", bearer);
        hdrs[n++] = authz;
    }
    if (body) {
        snprintf(ctype, sizeof ctype, "Content-Type: %s", content_type);
        hdrs[n++] = ctype;
    }
    return http_request(method, url, hdrs, body);
}

static json_t *call(const char *method, const char *path, const char *bearer, const char *body,
                    long want_status)
{
    response r = http(method, path, bearer, body, "application/json");
    json_t *v;

    if (r.status != want_status)
        fprintf(stderr, "%s %s: %ld %s\n", method, path, r.status, r.body);
    assert_int_equal(r.status, want_status);
    v = r.body_len ? body_of(&r) : json_object();
    response_free(&r);
    return v;
}

static char *assertion(const char *pem, const char *iss, const char *sub, const char *scope,
                       const char *aud, long long iat_offset, long long lifetime)
{
    long long now = (long long)time(NULL);
    char default_aud[128], err[256];
    json_t *claims;
    char *jwt = NULL;

    snprintf(default_aud, sizeof default_aud, "%s/token", base);
    claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", iss, "sub", sub, "scope", scope,
                       "aud", aud ? aud : default_aud, "iat", (json_int_t)(now + iat_offset),
                       "exp", (json_int_t)(now + iat_offset + lifetime));
    assert_int_equal(casb_jwt_sign_rs256(&jwt, claims, pem, err, sizeof err), 0);
    json_decref(claims);
    return jwt;
}

/* POSTs the grant; returns the answer's body and sets *status. */
static json_t *exchange(const char *jwt, long *status)
{
    char body[8192];
    response r;
    json_t *v;

    char ctype[128];

    snprintf(body, sizeof body,
             "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s",
             jwt);
    r = http("POST", "/token", NULL, body, "application/x-www-form-urlencoded");
    *status = r.status;
    assert_int_equal(header(&r, "Content-Type", ctype, sizeof ctype), 1);
    assert_non_null(strstr(ctype, "application/json"));
    v = body_of(&r);
    response_free(&r);
    return v;
}

/* A token for sub with scope (the test fails unless granted); malloc'ed. */
static char *token_for(const char *sub, const char *scope)
{
    char *jwt = assertion(private_pem, SA_EMAIL, sub, scope, NULL, 0, 3600);
    long status = 0;
    json_t *v = exchange(jwt, &status);
    char *tok;

    assert_int_equal(status, 200);
    tok = strdup(casb_json_str(v, "access_token"));
    json_decref(v);
    free(jwt);
    return tok;
}

static json_t *tenant_doc(void)
{
    json_t *files = json_array();
    char id[32];

    for (int j = 0; j < U1_FILES; j++) {
        snprintf(id, sizeof id, "u1-file-%03d", j);
        json_array_append_new(files, json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:b}]}", "id", id,
                                               "name", id, "mimeType", "text/plain",
                                               "permissions", "type", "anyone", "role", "reader",
                                               "allowFileDiscovery", 0));
    }
    return json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:[{s:s, s:b, s:b}],"
        " s:[{s:s, s:b, s:s, s:[{s:s, s:s, s:[s]}]}, {s:s, s:o, s:[{s:s, s:s}]}],"
        " s:{s:i, s:i, s:i}, s:{s:[s], s:[s], s:s, s:s}}",
        "kind", "google_workspace", "customer_id", CUSTOMER, "service_account", "client_email",
        SA_EMAIL, "public_key_pem", public_pem, "domains", "domainName", "t.test", "verified", 1,
        "isPrimary", 1, "users", "primaryEmail", ADMIN, "isAdmin", 1, "lastLoginTime", "now-3d",
        "tokens", "clientId", "c1", "displayText", "App", "scopes", GAPI "drive", "primaryEmail",
        USER, "files", files, "delegates", "delegateEmail", "x@t.test", "verificationStatus",
        "accepted", "generate", "users", GEN_USERS, "files_per_user", GEN_FILES, "seed", 7, "dns",
        "t.test", "v=spf1 include:_spf.google.com ~all", "_dmarc.t.test", "v=DMARC1; p=none",
        "broken.t.test", "SERVFAIL", "long.t.test", "placeholder");
}

static int setup(void **state)
{
    EVP_PKEY *key = EVP_RSA_gen(2048), *stranger = EVP_RSA_gen(2048);
    char addr[32], dns_addr[32], err[256], long_txt[LONG_TXT_LEN + 1];
    int created = 0, port = free_port();
    sim_opts opts = {.seed = 7};
    json_t *doc;

    (void)state;
    casb_log_init("test-saas-sim-google", CASB_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    dns_port = free_port();
    if (!key || !stranger || port < 0 || dns_port < 0)
        return -1;
    private_pem = private_pem_of(key);
    public_pem = public_pem_of(key);
    stranger_pem = private_pem_of(stranger);
    EVP_PKEY_free(key);
    EVP_PKEY_free(stranger);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(dns_addr, sizeof dns_addr, "127.0.0.1:%d", dns_port);
    snprintf(base, sizeof base, "http://%s", addr);
    opts.addr = addr;
    opts.dns_addr = dns_addr;
    if (sim_new(&S, &opts, err, sizeof err) != 0)
        return -1;
    doc = tenant_doc();
    memset(long_txt, 'a', LONG_TXT_LEN);
    long_txt[LONG_TXT_LEN] = '\0';
    json_object_set_new(json_object_get(doc, "dns"), "long.t.test",
                        json_pack("[s, s]", long_txt, "short"));
    if (sim_gtenant_put(S, CUSTOMER, doc, &created, err, sizeof err) != 0 || !created) {
        fprintf(stderr, "tenant: %s\n", err);
        return -1;
    }
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
    free(stranger_pem);
    curl_global_cleanup();
    return 0;
}

static int reset(void **state)
{
    json_decref(call("DELETE", "/_sim/google/" CUSTOMER "/faults", NULL, NULL, 204));
    json_decref(call("POST", "/_sim/google/" CUSTOMER "/stats/reset", NULL, "{}", 204));
    (void)state;
    return 0;
}

/* ---------- token endpoint ---------- */

static void test_token_ok(void **state)
{
    char *tok = token_for(ADMIN, ADMIN_SCOPES);
    json_t *stats;

    (void)state;
    assert_int_equal(strncmp(tok, "ya29.sim-", 9), 0);
    stats = call("GET", "/_sim/google/" CUSTOMER "/stats", NULL, NULL, 200);
    assert_int_equal(casb_json_int(stats, "token_issues", -1), 1);
    assert_int_equal(casb_json_int(json_object_get(stats, "by_endpoint"), "POST /token", -1), 1);
    json_decref(stats);
    free(tok);
}

static void expect_refusal(const char *jwt, long want_status, const char *error,
                           const char *description_prefix)
{
    long status = 0;
    json_t *v = exchange(jwt, &status);

    assert_int_equal(status, want_status);
    assert_string_equal(casb_json_str(v, "error"), error);
    assert_int_equal(strncmp(casb_json_str(v, "error_description"), description_prefix,
                             strlen(description_prefix)),
                     0);
    json_decref(v);
}

static void test_token_bad_signature(void **state)
{
    char *jwt = assertion(stranger_pem, SA_EMAIL, ADMIN, ADMIN_SCOPES, NULL, 0, 3600);
    char *unknown = assertion(private_pem, "who@else.iam.gserviceaccount.com", ADMIN,
                              ADMIN_SCOPES, NULL, 0, 3600);

    (void)state;
    expect_refusal(jwt, 400, "invalid_grant", "Invalid JWT Signature.");
    expect_refusal(unknown, 400, "invalid_grant", "Invalid JWT Signature.");
    free(jwt);
    free(unknown);
}

static void test_token_times_audience_subject(void **state)
{
    char *expired = assertion(private_pem, SA_EMAIL, ADMIN, ADMIN_SCOPES, NULL, -7200, 3600);
    char *too_long = assertion(private_pem, SA_EMAIL, ADMIN, ADMIN_SCOPES, NULL, 0, 7200);
    char *aud = assertion(private_pem, SA_EMAIL, ADMIN, ADMIN_SCOPES,
                          "https://oauth2.googleapis.com/token", 0, 3600);
    char *stranger = assertion(private_pem, SA_EMAIL, "nobody@t.test", ADMIN_SCOPES, NULL, 0, 3600);

    (void)state;
    expect_refusal(expired, 400, "invalid_grant", "Invalid JWT: Token must be a short-lived token");
    expect_refusal(too_long, 400, "invalid_grant", "Invalid JWT: Token must be a short-lived token");
    expect_refusal(aud, 400, "invalid_grant", "Invalid JWT: Failed audience check");
    expect_refusal(stranger, 400, "invalid_grant", "Invalid email or User ID");
    free(expired);
    free(too_long);
    free(aud);
    free(stranger);
}

static void test_token_unauthorized_scope_and_revoked(void **state)
{
    char *full_drive = assertion(private_pem, SA_EMAIL, USER, GAPI "drive", NULL, 0, 3600);
    char *ok = assertion(private_pem, SA_EMAIL, USER, USER_SCOPES, NULL, 0, 3600);
    json_t *stats;

    (void)state;
    expect_refusal(full_drive, 401, "unauthorized_client", "Client is unauthorized");
    json_decref(call("PATCH", "/_sim/google/" CUSTOMER, NULL,
                     "{\"service_account\":{\"revoked\":true}}", 200));
    expect_refusal(ok, 401, "unauthorized_client", "Client is unauthorized");
    json_decref(call("PATCH", "/_sim/google/" CUSTOMER, NULL,
                     "{\"service_account\":{\"revoked\":false}}", 200));
    stats = call("GET", "/_sim/google/" CUSTOMER "/stats", NULL, NULL, 200);
    assert_int_equal(casb_json_int(stats, "token_issues", -1), 0);
    json_decref(stats);
    free(full_drive);
    free(ok);
}

/* ---------- API: auth, scopes, admin ---------- */

static void expect_google_error(json_t *v, int code, const char *status, const char *reason)
{
    json_t *e = json_object_get(v, "error");

    assert_int_equal(casb_json_int(e, "code", 0), code);
    if (status)
        assert_string_equal(casb_json_str(e, "status"), status);
    assert_string_equal(casb_json_path_str(json_array_get(json_object_get(e, "errors"), 0), "reason"),
                        reason);
    json_decref(v);
}

static void test_api_auth_and_scopes(void **state)
{
    char *admin = token_for(ADMIN, ADMIN_SCOPES), *user = token_for(USER, USER_SCOPES);
    char *user_dir = token_for(USER, ADMIN_SCOPES);

    (void)state;
    expect_google_error(call("GET", "/admin/directory/v1/users?customer=my_customer", NULL, NULL,
                             401), 401, "UNAUTHENTICATED", "authError");
    expect_google_error(call("GET", "/drive/v3/files", "ya29.sim-forged.0123456789abcdef0123456789abcdef",
                             NULL, 401), 401, "UNAUTHENTICATED", "authError");
    expect_google_error(call("GET", "/drive/v3/files", admin, NULL, 403), 403, "PERMISSION_DENIED",
                        "insufficientPermissions");
    expect_google_error(call("GET", "/admin/directory/v1/users?customer=my_customer", user_dir,
                             NULL, 403), 403, NULL, "forbidden");
    json_decref(call("GET", "/gmail/v1/users/me/settings/delegates", user, NULL, 403));
    json_decref(call("GET", "/calendar/v3/calendars/" ADMIN "/acl", user, NULL, 404));
    free(admin);
    free(user);
    free(user_dir);
}

/* ---------- paging ---------- */

/* Pages through path (which has a '?') as bearer; returns how many items list_key held in
 * all and sets *pages. Ids must not repeat. */
static long page_all(const char *path, const char *bearer, const char *list_key, int *pages)
{
    char url[2048], tok[512];
    json_t *seen = json_object();
    long total = 0;

    *pages = 0;
    snprintf(url, sizeof url, "%s", path);
    for (;;) {
        json_t *v = call("GET", url, bearer, NULL, 200), *items = json_object_get(v, list_key), *it;
        const char *next = casb_json_str(v, "nextPageToken");
        size_t i;

        (*pages)++;
        json_array_foreach(items, i, it) {
            assert_null(json_object_get(seen, casb_json_str(it, "id")));
            json_object_set_new(seen, casb_json_str(it, "id"), json_true());
        }
        total += (long)json_array_size(items);
        if (!next) {
            json_decref(v);
            break;
        }
        snprintf(tok, sizeof tok, "%s", next);
        snprintf(url, sizeof url, "%s&pageToken=%s", path, tok);
        json_decref(v);
    }
    json_decref(seen);
    return total;
}

static void test_paging_users_and_files(void **state)
{
    char *admin = token_for(ADMIN, ADMIN_SCOPES), *user = token_for(USER, USER_SCOPES);
    int pages = 0;
    json_t *stats;

    (void)state;
    assert_int_equal(page_all("/admin/directory/v1/users?customer=my_customer&maxResults=500&"
                              "fields=nextPageToken,users(id,primaryEmail)",
                              admin, "users", &pages),
                     2 + GEN_USERS);
    assert_int_equal(pages, 3);
    /* Google's default page of users is 100. */
    assert_int_equal(page_all("/admin/directory/v1/users?customer=" CUSTOMER, admin, "users", &pages),
                     2 + GEN_USERS);
    assert_int_equal(pages, 13);
    assert_int_equal(page_all("/drive/v3/files?corpora=user&q=%27me%27%20in%20owners%20and%20trashed%3Dfalse&pageSize=100",
                              user, "files", &pages),
                     U1_FILES);
    assert_int_equal(pages, 3);
    stats = call("GET", "/_sim/google/" CUSTOMER "/stats", NULL, NULL, 200);
    assert_int_equal(casb_json_int(json_object_get(stats, "by_endpoint"), "GET /drive/v3/files", -1), 3);
    assert_int_equal(casb_json_int(json_object_get(stats, "by_endpoint"), "GET /admin/directory/v1/users", -1),
                     16);
    json_decref(stats);
    expect_google_error(call("GET", "/admin/directory/v1/users?customer=my_customer&pageToken=Zm9v",
                             admin, NULL, 400), 400, NULL, "invalid");
    expect_google_error(call("GET", "/admin/directory/v1/users?customer=my_customer&maxResults=501",
                             admin, NULL, 400), 400, NULL, "invalid");
    expect_google_error(call("GET", "/drive/v3/files?pageSize=1001", user, NULL, 400), 400, NULL,
                        "invalid");
    free(admin);
    free(user);
}

/* ---------- fields ---------- */

static void test_fields_parser(void **state)
{
    char err[128];
    json_t *doc = json_pack("{s:s, s:i, s:[{s:s, s:s, s:[{s:s, s:s, s:s}]}], s:{s:{s:i, s:i}}}",
                            "nextPageToken", "x", "kind", 1, "files", "id", "f1", "name", "n",
                            "permissions", "id", "p1", "type", "user", "role", "reader", "a",
                            "b", "c", 1, "d", 2);
    sim_fields *f = sim_fields_parse("nextPageToken,files(id,permissions(id,type)),a/b/c", err,
                                     sizeof err);
    json_t *out, *want;

    (void)state;
    assert_non_null(f);
    out = sim_fields_apply(f, doc);
    want = json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}]}], s:{s:{s:i}}}", "nextPageToken", "x",
                     "files", "id", "f1", "permissions", "id", "p1", "type", "user", "a", "b",
                     "c", 1);
    assert_true(json_equal(out, want));
    json_decref(out);
    json_decref(want);
    sim_fields_free(f);
    /* A member selected whole and again in part stays whole. */
    f = sim_fields_parse("a,a(b)", err, sizeof err);
    out = sim_fields_apply(f, doc);
    assert_int_equal(casb_json_int(casb_json_path(out, "a.b"), "d", 0), 2);
    json_decref(out);
    sim_fields_free(f);
    f = sim_fields_parse("files(*)", err, sizeof err);
    out = sim_fields_apply(f, doc);
    assert_true(json_equal(json_object_get(out, "files"), json_object_get(doc, "files")));
    json_decref(out);
    sim_fields_free(f);
    assert_null(sim_fields_parse("files(id", err, sizeof err));
    assert_non_null(strstr(err, "Invalid field selection"));
    assert_null(sim_fields_parse("a,,b", err, sizeof err));
    assert_null(sim_fields_parse("a)", err, sizeof err));
    assert_null(sim_fields_parse("", err, sizeof err));
    json_decref(doc);
}

static void test_fields_over_http(void **state)
{
    char *user = token_for(USER, USER_SCOPES);
    json_t *v, *file;

    (void)state;
    v = call("GET", "/drive/v3/files?pageSize=2&fields=nextPageToken,files(id,permissions(id,type))",
             user, NULL, 200);
    assert_non_null(json_object_get(v, "nextPageToken"));
    assert_null(json_object_get(v, "kind"));
    file = json_array_get(json_object_get(v, "files"), 0);
    assert_int_equal(json_object_size(file), 2);
    /* The owner's permission comes first, then the tenant's "anyone" one. */
    assert_int_equal(json_array_size(json_object_get(file, "permissions")), 2);
    assert_int_equal(json_object_size(json_array_get(json_object_get(file, "permissions"), 1)), 2);
    assert_string_equal(casb_json_str(json_array_get(json_object_get(file, "permissions"), 1), "id"),
                        "anyoneWithLink");
    json_decref(v);
    /* Without fields: Drive's default of kind, id, name, mimeType. */
    v = call("GET", "/drive/v3/files?pageSize=1", user, NULL, 200);
    file = json_array_get(json_object_get(v, "files"), 0);
    assert_int_equal(json_object_size(file), 4);
    assert_string_equal(casb_json_str(file, "kind"), "drive#file");
    json_decref(v);
    expect_google_error(call("GET", "/drive/v3/files?fields=files(id", user, NULL, 400), 400, NULL,
                        "invalidParameter");
    free(user);
}

/* ---------- faults and quota ---------- */

static void test_quota_fault_shape(void **state)
{
    char *user = token_for(USER, USER_SCOPES);
    json_t *v, *e;

    (void)state;
    json_decref(call("POST", "/_sim/google/" CUSTOMER "/faults", NULL,
                     "{\"mode\":\"quota\",\"count\":1,\"path_contains\":\"/drive/\"}", 201));
    v = call("GET", "/drive/v3/files", user, NULL, 403);
    e = json_object_get(v, "error");
    assert_int_equal(casb_json_int(e, "code", 0), 403);
    assert_string_equal(casb_json_str(e, "status"), "PERMISSION_DENIED");
    assert_string_equal(casb_json_path_str(json_array_get(json_object_get(e, "errors"), 0), "domain"),
                        "usageLimits");
    expect_google_error(v, 403, "PERMISSION_DENIED", "userRateLimitExceeded");
    json_decref(call("GET", "/drive/v3/files", user, NULL, 200));
    json_decref(call("POST", "/_sim/google/" CUSTOMER "/faults", NULL,
                     "{\"mode\":\"429\",\"count\":1}", 201));
    expect_google_error(call("GET", "/drive/v3/files", user, NULL, 429), 429, "RESOURCE_EXHAUSTED",
                        "rateLimitExceeded");
    /* A per-minute quota from the tenant's rate_limit answers the same 403. */
    json_decref(call("PATCH", "/_sim/google/" CUSTOMER, NULL, "{\"rate_limit\":{\"limit\":1}}", 200));
    json_decref(call("GET", "/drive/v3/files", user, NULL, 200));
    expect_google_error(call("GET", "/drive/v3/files", user, NULL, 403), 403, "PERMISSION_DENIED",
                        "userRateLimitExceeded");
    json_decref(call("PATCH", "/_sim/google/" CUSTOMER, NULL, "{\"rate_limit\":null}", 200));
    v = call("GET", "/_sim/google/" CUSTOMER "/stats", NULL, NULL, 200);
    assert_int_equal(casb_json_int(v, "faults_injected", -1), 2);
    json_decref(v);
    free(user);
}

/* ---------- the generated tenant's rules (tenants/README.md) ---------- */

static void test_generated_rules(void **state)
{
    char *admin = token_for(ADMIN, ADMIN_SCOPES), url[1024], *tok;
    long no2sv = 0, suspended = 0, admins = 0, publics = 0;
    json_t *v, *u;
    size_t i;

    (void)state;
    {
        char next[512] = "";
        for (;;) {
            snprintf(url, sizeof url,
                     "/admin/directory/v1/users?customer=my_customer&maxResults=500%s%s",
                     next[0] ? "&pageToken=" : "", next);
            v = call("GET", url, admin, NULL, 200);
            json_array_foreach(json_object_get(v, "users"), i, u) {
                if (strncmp(casb_json_str(u, "primaryEmail"), "user", 4) != 0)
                    continue;
                no2sv += !json_is_true(json_object_get(u, "isEnrolledIn2Sv"));
                suspended += json_is_true(json_object_get(u, "suspended"));
                admins += json_is_true(json_object_get(u, "isAdmin"));
            }
            snprintf(next, sizeof next, "%s",
                     casb_json_str(v, "nextPageToken") ? casb_json_str(v, "nextPageToken") : "");
            json_decref(v);
            if (!next[0])
                break;
        }
    }
    assert_int_equal(no2sv, GEN_USERS / 10);
    assert_int_equal(suspended, GEN_USERS / 50);
    assert_int_equal(admins, 2);
    /* Users 0..19: anyone on files of 0 and 10 (readers) and 3 (writer); external users on
     * 1, 11 and 4; the domain on 2, 12 and 5 (tenants/README.md). */
    {
        long external = 0, domain = 0, writers = 0;
        for (int g = 0; g < 20; g++) {
            char who[64];
            snprintf(who, sizeof who, "user%d@t.test", g);
            tok = token_for(who, USER_SCOPES);
            v = call("GET", "/drive/v3/files?fields=files(id,permissions(type,role))", tok, NULL,
                     200);
            assert_int_equal(json_array_size(json_object_get(v, "files")), GEN_FILES);
            json_array_foreach(json_object_get(v, "files"), i, u) {
                size_t k;
                json_t *p;
                json_array_foreach(json_object_get(u, "permissions"), k, p) {
                    const char *type = casb_json_str(p, "type"), *role = casb_json_str(p, "role");
                    if (strcmp(role, "owner") == 0)
                        continue;
                    publics += strcmp(type, "anyone") == 0;
                    external += strcmp(type, "user") == 0;
                    domain += strcmp(type, "domain") == 0;
                    writers += strcmp(role, "writer") == 0;
                }
            }
            json_decref(v);
            free(tok);
        }
        assert_int_equal(publics, 3);
        assert_int_equal(external, 3);
        assert_int_equal(domain, 3);
        assert_int_equal(writers, 3);
    }
    free(admin);
}

/* ---------- the demo tenant and its key file ---------- */

static char *slurp(const char *rel)
{
    const char *root = getenv("CASB_SOURCE_DIR");
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof path, "%s/%s", root ? root : ".", rel);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

static void test_demo_tenant_and_key(void **state)
{
    char *doc_text = slurp("tests/fakes/saas-sim/tenants/google-demo.json");
    char *key_text = slurp("tests/fakes/saas-sim/tenants/google-demo-sa-key.json");
    json_t *key = json_loads(key_text, 0, NULL);
    char path[128], *jwt;
    long status = 0;
    json_t *v;

    (void)state;
    assert_non_null(key);
    v = call("PUT", "/_sim/google/C01demo", NULL, doc_text, 201);
    json_decref(v);
    assert_string_equal(casb_json_str(key, "token_uri"), "http://127.0.0.1:8090/token");
    /* The key's token_uri names the default port; this test's simulator is elsewhere. */
    snprintf(path, sizeof path, "%s/token", base);
    {
        long long now = (long long)time(NULL);
        char err[256];
        json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss",
                                   casb_json_str(key, "client_email"), "sub", "admin@acme.test",
                                   "scope", ADMIN_SCOPES, "aud", path, "iat", (json_int_t)now,
                                   "exp", (json_int_t)(now + 3600));
        jwt = NULL;
        assert_int_equal(casb_jwt_sign_rs256(&jwt, claims, casb_json_str(key, "private_key"), err,
                                             sizeof err),
                         0);
        json_decref(claims);
    }
    v = exchange(jwt, &status);
    assert_int_equal(status, 200);
    json_decref(v);
    json_decref(call("DELETE", "/_sim/google/C01demo", NULL, NULL, 204));
    json_decref(call("GET", "/_sim/google/C01demo", NULL, NULL, 404));
    free(jwt);
    json_decref(key);
    free(doc_text);
    free(key_text);
}

/* ---------- DNS ---------- */

/* Sends a query for name/qtype; returns the answer's length into ans (0 on timeout). */
static size_t dns_query(const char *name, unsigned qtype, unsigned char *ans, size_t cap)
{
    unsigned char q[300];
    size_t n = 12;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)dns_port)};
    struct timeval tv = {.tv_sec = 2};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    const char *p = name;
    ssize_t got;

    memset(q, 0, sizeof q);
    q[0] = 0xab;
    q[1] = 0xcd;
    q[2] = 0x01; /* RD */
    q[5] = 1;    /* QDCOUNT */
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        q[n++] = (unsigned char)len;
        memcpy(q + n, p, len);
        n += len;
        p += len + (dot ? 1 : 0);
    }
    q[n++] = 0;
    q[n++] = (unsigned char)(qtype >> 8);
    q[n++] = (unsigned char)qtype;
    q[n++] = 0;
    q[n++] = 1;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(sendto(fd, q, n, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)n);
    got = recv(fd, ans, cap, 0);
    close(fd);
    assert_true(got >= 12);
    assert_int_equal(ans[0], 0xab);
    assert_int_equal(ans[1], 0xcd);
    assert_true(ans[2] & 0x80); /* QR */
    return (size_t)got;
}

/* The rdata of answer index (0-based) as its character-strings joined; returns how many
 * character-strings it had. */
static int txt_answer(const unsigned char *a, size_t n, int index, char *out, size_t cap)
{
    size_t at = 12;

    while (at < n && a[at] != 0)
        at += a[at] + 1;
    at += 5; /* root label, qtype, qclass */
    for (int i = 0;; i++) {
        size_t rdlen, end;
        int strings = 0;
        assert_true(at + 12 <= n);
        assert_int_equal(a[at], 0xc0); /* a pointer to the question */
        assert_int_equal(a[at + 2] << 8 | a[at + 3], 16);
        rdlen = (size_t)(a[at + 10] << 8 | a[at + 11]);
        at += 12;
        end = at + rdlen;
        assert_true(end <= n);
        if (i != index) {
            at = end;
            continue;
        }
        out[0] = '\0';
        while (at < end) {
            size_t len = a[at++], have = strlen(out);
            assert_true(have + len < cap);
            memcpy(out + have, a + at, len);
            out[have + len] = '\0';
            at += len;
            strings++;
        }
        return strings;
    }
}

static void test_dns_responder(void **state)
{
    unsigned char a[1024];
    char txt[1024];
    size_t n;

    (void)state;
    n = dns_query("t.test", 16, a, sizeof a);
    assert_int_equal(a[3] & 0x0f, 0);
    assert_int_equal(a[6] << 8 | a[7], 1);
    assert_int_equal(txt_answer(a, n, 0, txt, sizeof txt), 1);
    assert_string_equal(txt, "v=spf1 include:_spf.google.com ~all");
    n = dns_query("_DMARC.t.test", 255, a, sizeof a); /* ANY, any case */
    assert_int_equal(a[6] << 8 | a[7], 1);
    assert_int_equal(txt_answer(a, n, 0, txt, sizeof txt), 1);
    assert_string_equal(txt, "v=DMARC1; p=none");
    /* A 300-byte record travels as two character-strings (255 + 45). */
    n = dns_query("long.t.test", 16, a, sizeof a);
    assert_int_equal(a[6] << 8 | a[7], 2);
    assert_int_equal(txt_answer(a, n, 0, txt, sizeof txt), 2);
    assert_int_equal(strlen(txt), LONG_TXT_LEN);
    assert_int_equal(txt_answer(a, n, 1, txt, sizeof txt), 1);
    assert_string_equal(txt, "short");
    n = dns_query("nowhere.t.test", 16, a, sizeof a);
    assert_int_equal(a[3] & 0x0f, 3);
    assert_int_equal(a[6] << 8 | a[7], 0);
    n = dns_query("broken.t.test", 16, a, sizeof a);
    assert_int_equal(a[3] & 0x0f, 2);
    n = dns_query("t.test", 1, a, sizeof a); /* A: known name, no such record */
    assert_int_equal(a[3] & 0x0f, 0);
    assert_int_equal(a[6] << 8 | a[7], 0);
    (void)n;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_token_ok, reset),
        cmocka_unit_test_setup(test_token_bad_signature, reset),
        cmocka_unit_test_setup(test_token_times_audience_subject, reset),
        cmocka_unit_test_setup(test_token_unauthorized_scope_and_revoked, reset),
        cmocka_unit_test_setup(test_api_auth_and_scopes, reset),
        cmocka_unit_test_setup(test_paging_users_and_files, reset),
        cmocka_unit_test(test_fields_parser),
        cmocka_unit_test_setup(test_fields_over_http, reset),
        cmocka_unit_test_setup(test_quota_fault_shape, reset),
        cmocka_unit_test_setup(test_generated_rules, reset),
        cmocka_unit_test_setup(test_demo_tenant_and_key, reset),
        cmocka_unit_test(test_dns_responder),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
