/* Google Workspace's APIs over the Google tenants: the OAuth token endpoint for service
 * accounts with domain-wide delegation (JWT bearer grant), and the Directory, Drive,
 * Calendar and Gmail reads the provider makes, with Google's error bodies, nextPageToken
 * paging and `fields` partial responses.
 *
 * Access tokens are self-contained ("ya29.sim-" payload "." MAC), signed with their
 * tenant's secret: the simulator keeps no table of them, however many users a scan
 * impersonates. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <civetweb.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "casb/jwt.h"
#include "casb/log.h"
#include "sim_google.h"

#define TOKEN_PREFIX "ya29.sim-"
#define TOKEN_LIFETIME_S 3600
#define JWT_MAX_LIFETIME_S 3600
#define JWT_SKEW_S 300
#define JWT_GRANT "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define MSG_SHORT_LIVED \
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. " \
    "Check your iat and exp values in the JWT claim."
#define MSG_UNAUTHORIZED_CLIENT \
    "Client is unauthorized to retrieve access tokens using this method, or client not " \
    "authorized for any of the scopes requested."
#define MSG_UNAUTHENTICATED \
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login " \
    "cookie or other valid authentication credential. See " \
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
#define MSG_NOT_AUTHORIZED "Not Authorized to access this resource/api"
#define GAPI "https://www.googleapis.com/auth/"

/* Scopes an endpoint accepts, as bits; a token carries the bits of the known scopes it was
 * granted (an unknown scope that the service account may request grants nothing here). */
static const char *const SCOPES[] = {
    GAPI "admin.directory.user.readonly",   GAPI "admin.directory.user",
    GAPI "admin.directory.user.security",   GAPI "admin.directory.domain.readonly",
    GAPI "admin.directory.domain",          GAPI "drive.metadata.readonly",
    GAPI "drive.readonly",                  GAPI "drive",
    GAPI "drive.metadata",                  GAPI "calendar.readonly",
    GAPI "calendar",                        GAPI "gmail.settings.basic",
    GAPI "gmail.readonly",                  GAPI "gmail.modify",
    "https://mail.google.com/",
};
#define NSCOPES (sizeof SCOPES / sizeof SCOPES[0])
#define S_USERS (1u << 0 | 1u << 1)
#define S_TOKENS (1u << 2)
#define S_DOMAINS (1u << 3 | 1u << 4)
#define S_DRIVE (1u << 5 | 1u << 6 | 1u << 7 | 1u << 8)
#define S_CALENDAR (1u << 9 | 1u << 10)
#define S_GMAIL (1u << 11 | 1u << 12 | 1u << 13 | 1u << 14)

/* The default scopes a tenant's service account is authorized for (google_internal.h). */
static const char *const DEFAULT_SCOPES[] = {
    GAPI "admin.directory.user.readonly", GAPI "admin.directory.user.security",
    GAPI "admin.directory.domain.readonly", GAPI "drive.metadata.readonly",
    GAPI "calendar.readonly", GAPI "gmail.settings.basic",
};

typedef struct g_call g_call;
typedef void (*g_build)(g_call *c);

typedef struct {
    const char *pattern;
    const char *endpoint; /* stats key */
    unsigned scopes;
    int admin;            /* the subject must be an admin */
    g_build build;
    const char *default_fields; /* the mask without a fields parameter; NULL: everything */
} g_route;

struct g_call {
    sim *s;
    casb_http_req *req;
    const g_route *route;
    sim_gtenant *t;       /* valid while s->lock is held */
    char sub[256];
    long long sub_index;
    unsigned bits;
    char base[256];
    int status;
    json_t *body;
};

/* ---------- replies ---------- */

static void set_error(g_call *c, int code, const char *status, const char *message,
                      const char *domain, const char *reason, const char *location,
                      const char *location_type)
{
    json_t *e = json_pack("{s:s, s:s, s:s}", "message", message, "domain", domain, "reason", reason);

    if (location) {
        json_object_set_new(e, "location", json_string(location));
        json_object_set_new(e, "locationType", json_string(location_type));
    }
    json_decref(c->body);
    c->status = code;
    c->body = json_pack("{s:{s:i, s:s, s:[o], s:s?}}", "error", "code", code, "message", message,
                        "errors", e, "status", status);
}

static void err_unauthenticated(g_call *c)
{
    set_error(c, 401, "UNAUTHENTICATED", MSG_UNAUTHENTICATED, "global", "authError",
              "Authorization", "header");
    json_object_set_new(json_array_get(casb_json_path(c->body, "error.errors"), 0), "message",
                        json_string("Invalid Credentials"));
}

static void err_forbidden(g_call *c, const char *message)
{
    set_error(c, 403, "PERMISSION_DENIED", message, "global", "forbidden", NULL, NULL);
}

static void err_not_found(g_call *c, const char *message, const char *location)
{
    set_error(c, 404, "NOT_FOUND", message, "global", "notFound", location,
              location ? "parameter" : NULL);
}

static void err_invalid(g_call *c, const char *message, const char *location)
{
    set_error(c, 400, "INVALID_ARGUMENT", message, "global", "invalid", location,
              location ? "parameter" : NULL);
}

static void err_quota(g_call *c)
{
    set_error(c, 403, "PERMISSION_DENIED",
              "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per "
              "user' of service 'www.googleapis.com'.",
              "usageLimits", "userRateLimitExceeded", NULL, NULL);
}

static void err_fault(g_call *c, sim_fault_mode mode)
{
    switch (mode) {
    case SIM_FAULT_429:
        set_error(c, 429, "RESOURCE_EXHAUSTED",
                  "Resource has been exhausted (e.g. check quota).", "global",
                  "rateLimitExceeded", NULL, NULL);
        break;
    case SIM_FAULT_QUOTA:
        err_quota(c);
        break;
    case SIM_FAULT_500:
        set_error(c, 500, "INTERNAL", "Internal error encountered.", "global", "backendError",
                  NULL, NULL);
        break;
    case SIM_FAULT_503:
        set_error(c, 503, "UNAVAILABLE", "The service is currently unavailable.", "global",
                  "backendError", NULL, NULL);
        break;
    default:
        break;
    }
}

static int send_json(casb_http_req *r, int status, const json_t *body, int cut)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
    size_t len;

    if (!text)
        return casb_http_reply_problem(r, 500, "cannot serialise the response", NULL);
    len = strlen(text);
    if (cut) {
        /* Half of the document: never valid JSON, since its closing bracket is cut. */
        status = 200;
        len /= 2;
    }
    casb_http_reply_text(r, status, "application/json; charset=UTF-8", text, len);
    free(text);
    return status;
}

/* ---------- tokens ---------- */

static void mac_of(const sim_gtenant *t, const char *data, char out[65])
{
    casb_hmac_sha256_hex(t->secret, sizeof t->secret, data, strlen(data), out);
}

/* "ya29.sim-" base64url(payload) "." 32 hex of its MAC. */
static char *token_make(const sim_gtenant *t, const char *sub, unsigned bits, long long exp)
{
    json_t *p = json_pack("{s:s, s:s, s:i, s:I}", "c", t->o.login, "s", sub, "b", (int)bits, "e",
                          (json_int_t)exp);
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL, *b64 = NULL, *out = NULL, mac[65];
    size_t n;

    json_decref(p);
    if (text)
        b64 = casb_base64url_encode(text, strlen(text));
    if (b64) {
        mac_of(t, b64, mac);
        n = strlen(TOKEN_PREFIX) + strlen(b64) + 34;
        out = malloc(n);
        if (out)
            snprintf(out, n, "%s%s.%.32s", TOKEN_PREFIX, b64, mac);
    }
    free(text);
    free(b64);
    return out;
}

/* Resolves the bearer token into c (tenant, subject, scopes). 1 when valid. Caller holds
 * the lock. */
static int token_check(g_call *c, const char *header)
{
    char payload_b64[2048], mac[65];
    const char *tok, *dot;
    unsigned char *raw;
    size_t rawlen = 0;
    json_t *p;
    int ok = 0;

    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return 0;
    tok = header + 7;
    while (*tok == ' ')
        tok++;
    if (strncmp(tok, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
        return 0;
    tok += strlen(TOKEN_PREFIX);
    dot = strchr(tok, '.');
    if (!dot || (size_t)(dot - tok) >= sizeof payload_b64 || strlen(dot + 1) != 32)
        return 0;
    snprintf(payload_b64, sizeof payload_b64, "%.*s", (int)(dot - tok), tok);
    raw = casb_base64url_decode(payload_b64, &rawlen);
    p = raw ? json_loadb((const char *)raw, rawlen, 0, NULL) : NULL;
    free(raw);
    c->t = sim_gtenant_find(c->s, casb_json_str(p, "c"));
    if (c->t) {
        mac_of(c->t, payload_b64, mac);
        mac[32] = '\0';
        ok = casb_secure_equal(mac, dot + 1) && casb_json_int(p, "e", 0) > (long long)time(NULL) &&
             casb_json_str(p, "s");
    }
    if (ok) {
        snprintf(c->sub, sizeof c->sub, "%s", casb_json_str(p, "s"));
        c->bits = (unsigned)casb_json_int(p, "b", 0);
        c->sub_index = sim_gtenant_user_find(c->t, c->sub);
        ok = c->sub_index >= 0; /* a user deleted since loses access */
    }
    if (!ok)
        c->t = NULL;
    json_decref(p);
    return ok;
}

/* ---------- paging ---------- */

/* An opaque page token: base64url("<offset>.<MAC of the path and offset>"). */
static char *page_token(const g_call *c, long long offset)
{
    char data[1100], mac[65], plain[64];

    snprintf(data, sizeof data, "%s|%lld", casb_http_path(c->req), offset);
    mac_of(c->t, data, mac);
    snprintf(plain, sizeof plain, "%lld.%.16s", offset, mac);
    return casb_base64url_encode(plain, strlen(plain));
}

static long long page_offset(const g_call *c, const char *token)
{
    size_t n = 0;
    unsigned char *raw = casb_base64url_decode(token, &n);
    char plain[64], data[1100], mac[65];
    long long offset = -1;
    int used = 0;

    if (raw && n < sizeof plain) {
        memcpy(plain, raw, n);
        plain[n] = '\0';
        if (sscanf(plain, "%lld.%n", &offset, &used) == 1 && used > 0 && offset >= 0) {
            snprintf(data, sizeof data, "%s|%lld", casb_http_path(c->req), offset);
            mac_of(c->t, data, mac);
            if (strlen(plain + used) != 16 || strncmp(mac, plain + used, 16) != 0)
                offset = -1;
        } else {
            offset = -1;
        }
    }
    free(raw);
    return offset;
}

/* Reads the page size (param, default def; above max: 400 unless cap) and the page token.
 * 0 with *offset and *size, or -1 with the error set. def 0 = everything. */
static int page_args(g_call *c, const char *param, long long def, long long max, int cap,
                     long long *offset, long long *size)
{
    char buf[1024];
    char *end = NULL;

    *offset = 0;
    *size = def;
    if (casb_http_query(c->req, param, buf, sizeof buf) == 1) {
        long long v = strtoll(buf, &end, 10);
        if (!end || *end || buf[0] == '\0' || v < 1 || (v > max && !cap)) {
            err_invalid(c, "Invalid Value", param);
            return -1;
        }
        *size = v > max ? max : v;
    }
    if (casb_http_query(c->req, "pageToken", buf, sizeof buf) != 0) {
        *offset = page_offset(c, buf);
        if (*offset < 0) {
            err_invalid(c, "Invalid Value", "pageToken");
            return -1;
        }
    }
    return 0;
}

/* Sets nextPageToken when more items follow this page. */
static void page_next(g_call *c, long long offset, long long size, long long total)
{
    if (size > 0 && offset + size < total) {
        char *next = page_token(c, offset + size);
        if (next)
            json_object_set_new(c->body, "nextPageToken", json_string(next));
        free(next);
    }
}

/* ---------- helpers over the model ---------- */

static int query_is(g_call *c, const char *name, const char *value)
{
    char buf[64];

    return casb_http_query(c->req, name, buf, sizeof buf) == 1 && strcmp(buf, value) == 0;
}

static int user_is_admin(const sim_gtenant *t, long long index)
{
    json_t *u = sim_gtenant_user(t, index);
    int admin = json_is_true(json_object_get(u, "isAdmin"));

    json_decref(u);
    return admin;
}

static void set_default(json_t *o, const char *key, json_t *v)
{
    if (!json_object_get(o, key))
        json_object_set(o, key, v);
    json_decref(v);
}

static void resolve_time_member(json_t *o, const char *key)
{
    char buf[40];
    const char *v = casb_json_str(o, key);
    const char *r = sim_google_time(v, buf, sizeof buf);

    if (v && r != v)
        json_object_set_new(o, key, json_string(r));
}

/* A users.list item: the stored user without the simulator's members, with Google's
 * defaults. */
static json_t *directory_user(const sim_gtenant *t, long long index)
{
    json_t *u = sim_gtenant_user(t, index), *out;
    const char *email;
    char id[32];

    if (!u)
        return NULL;
    out = json_deep_copy(u);
    json_decref(u);
    email = casb_json_str(out, "primaryEmail");
    json_object_del(out, "tokens");
    json_object_del(out, "delegates");
    json_object_del(out, "calendar_acl");
    json_object_del(out, "files");
    snprintf(id, sizeof id, "1%019lld", sim_fallback_id(email, 0));
    set_default(out, "kind", json_string("admin#directory#user"));
    set_default(out, "id", json_string(id));
    set_default(out, "name", json_pack("{s:s}", "fullName", email));
    set_default(out, "isAdmin", json_false());
    set_default(out, "isDelegatedAdmin", json_false());
    set_default(out, "isEnrolledIn2Sv", json_false());
    set_default(out, "isEnforcedIn2Sv", json_false());
    set_default(out, "suspended", json_false());
    set_default(out, "archived", json_false());
    set_default(out, "lastLoginTime", json_string("1970-01-01T00:00:00.000Z"));
    set_default(out, "creationTime", json_string("2020-01-01T00:00:00.000Z"));
    set_default(out, "isMailboxSetup", json_true());
    set_default(out, "customerId", json_string(t->o.login));
    set_default(out, "orgUnitPath", json_string("/"));
    set_default(out, "agreedToTerms", json_true());
    set_default(out, "changePasswordAtNextLogin", json_false());
    resolve_time_member(out, "lastLoginTime");
    resolve_time_member(out, "creationTime");
    return out;
}

/* A Drive permission with Google's ids: a user's or group's id is the same on every file
 * (derived from the address), so that a drive member's permission on a file of the drive
 * has the member's id. */
static json_t *drive_permission(const json_t *p)
{
    json_t *out = json_deep_copy(p);
    const char *type = casb_json_str(out, "type");
    char id[40];

    if (!type)
        json_object_set_new(out, "type", json_string(type = "user"));
    if (!json_object_get(out, "id")) {
        if (strcmp(type, "anyone") == 0)
            snprintf(id, sizeof id, "%s",
                     json_is_true(json_object_get(out, "allowFileDiscovery")) ? "anyone"
                                                                              : "anyoneWithLink");
        else if (strcmp(type, "domain") == 0)
            snprintf(id, sizeof id, "%lldk", sim_fallback_id(casb_json_str(out, "domain")
                                                                 ? casb_json_str(out, "domain")
                                                                 : "",
                                                             10000000000LL));
        else
            snprintf(id, sizeof id, "%lld", sim_fallback_id(casb_json_str(out, "emailAddress")
                                                                ? casb_json_str(out, "emailAddress")
                                                                : "",
                                                            10000000000LL));
        json_object_set_new(out, "id", json_string(id));
    }
    set_default(out, "kind", json_string("drive#permission"));
    set_default(out, "role", json_string("reader"));
    if (strcmp(type, "anyone") == 0 || strcmp(type, "domain") == 0)
        set_default(out, "allowFileDiscovery", json_false());
    set_default(out, "deleted", json_false());
    return out;
}

static json_t *permissions_of(const json_t *list)
{
    json_t *out = json_array(), *p;
    size_t i;

    json_array_foreach(list, i, p)
        json_array_append_new(out, drive_permission(p));
    return out;
}

static json_t *permission_ids(const json_t *perms)
{
    json_t *ids = json_array(), *p;
    size_t i;

    json_array_foreach(perms, i, p)
        json_array_append_new(ids, json_string(casb_json_str(p, "id")));
    return ids;
}

static void file_common(json_t *out, json_t *perms)
{
    char link[512];

    if (!json_object_get(out, "webViewLink")) {
        snprintf(link, sizeof link, "https://drive.google.com/file/d/%s/view?usp=drivesdk",
                 casb_json_str(out, "id"));
        json_object_set_new(out, "webViewLink", json_string(link));
    }
    set_default(out, "kind", json_string("drive#file"));
    set_default(out, "name", json_string(casb_json_str(out, "id")));
    set_default(out, "mimeType", json_string("application/octet-stream"));
    set_default(out, "trashed", json_false());
    json_object_set_new(out, "permissionIds", permission_ids(perms));
    json_object_set_new(out, "permissions", perms);
}

/* A user's file with its owner's permission first (every file has one). */
static json_t *user_file(const sim_gtenant *t, long long user, long long j)
{
    json_t *f = sim_gtenant_file(t, user, j), *u = sim_gtenant_user(t, user), *out, *perms, *p;
    const char *email = casb_json_str(u, "primaryEmail");
    int has_owner = 0;
    size_t i;

    out = json_deep_copy(f);
    json_decref(f);
    perms = permissions_of(json_object_get(out, "permissions"));
    json_array_foreach(perms, i, p) {
        if (strcmp(casb_json_str(p, "role") ? casb_json_str(p, "role") : "", "owner") == 0)
            has_owner = 1;
    }
    if (!has_owner) {
        json_t *owner = json_pack("{s:s, s:s, s:s}", "type", "user", "role", "owner",
                                  "emailAddress", email);
        json_array_insert_new(perms, 0, drive_permission(owner));
        json_decref(owner);
    }
    json_object_set_new(out, "owners",
                        json_pack("[{s:s, s:s, s:s, s:s}]", "kind", "drive#user", "displayName",
                                  casb_json_str(casb_json_path(u, "name"), "fullName")
                                      ? casb_json_str(casb_json_path(u, "name"), "fullName")
                                      : email,
                                  "emailAddress", email, "permissionId",
                                  casb_json_str(json_array_get(perms, 0), "id")));
    file_common(out, perms);
    json_decref(u);
    return out;
}

static json_t *find_drive(const sim_gtenant *t, const char *id, json_t **file)
{
    json_t *drives = json_object_get(t->o.doc, "shared_drives"), *d, *f;
    size_t i, j;

    if (file)
        *file = NULL;
    json_array_foreach(drives, i, d) {
        if (strcmp(casb_json_str(d, "id"), id) == 0)
            return d;
        json_array_foreach(json_object_get(d, "files"), j, f) {
            const char *fid = casb_json_str(f, "id");
            if (file && fid && strcmp(fid, id) == 0) {
                *file = f;
                return d;
            }
        }
    }
    return NULL;
}

static int drive_member(const json_t *drive, const char *email)
{
    json_t *p;
    size_t i;

    json_array_foreach(json_object_get(drive, "permissions"), i, p) {
        const char *e = casb_json_str(p, "emailAddress");
        if (e && strcasecmp(e, email) == 0)
            return 1;
    }
    return 0;
}

/* A shared drive's file: the drive's members (inherited) then its own permissions. */
static json_t *drive_file(const json_t *drive, const json_t *f)
{
    json_t *out = json_deep_copy(f), *perms = permissions_of(json_object_get(drive, "permissions"));
    json_t *own = permissions_of(json_object_get(f, "permissions"));

    json_array_extend(perms, own);
    json_decref(own);
    json_object_set_new(out, "driveId", json_string(casb_json_str(drive, "id")));
    file_common(out, perms);
    return out;
}

/* ---------- Directory ---------- */

static int customer_ok(g_call *c, const char *customer)
{
    return customer && (strcmp(customer, "my_customer") == 0 || strcmp(customer, c->t->o.login) == 0);
}

static void build_users(g_call *c)
{
    char customer[256], domain[256];
    long long offset, size, total = sim_gtenant_nusers(c->t);
    json_t *users;

    if (casb_http_query(c->req, "customer", customer, sizeof customer) != 1 &&
        casb_http_query(c->req, "domain", domain, sizeof domain) != 1) {
        err_invalid(c, "Bad Request", NULL);
        return;
    }
    if (casb_http_query(c->req, "customer", customer, sizeof customer) == 1 &&
        !customer_ok(c, customer)) {
        err_forbidden(c, MSG_NOT_AUTHORIZED);
        return;
    }
    if (page_args(c, "maxResults", 100, 500, 0, &offset, &size) != 0)
        return;
    users = json_array();
    for (long long i = offset; i < total && i < offset + size; i++)
        json_array_append_new(users, directory_user(c->t, i));
    c->body = json_pack("{s:s, s:s, s:o}", "kind", "admin#directory#users", "etag",
                        "\"sim\"", "users", users);
    page_next(c, offset, size, total);
}

static void build_tokens(g_call *c)
{
    long long index = sim_gtenant_user_find(c->t, casb_http_param(c->req, "userKey"));
    json_t *u, *items, *tok;
    size_t i;

    if (index < 0) {
        err_not_found(c, "Resource Not Found: userKey", NULL);
        return;
    }
    u = sim_gtenant_user(c->t, index);
    items = json_array();
    json_array_foreach(json_object_get(u, "tokens"), i, tok) {
        json_t *item = json_deep_copy(tok);
        set_default(item, "kind", json_string("admin#directory#token"));
        set_default(item, "userKey", json_string(casb_json_str(u, "id") ? casb_json_str(u, "id")
                                                                         : casb_json_str(u, "primaryEmail")));
        set_default(item, "anonymous", json_false());
        set_default(item, "nativeApp", json_false());
        set_default(item, "scopes", json_array());
        json_array_append_new(items, item);
    }
    json_decref(u);
    c->body = json_pack("{s:s, s:s, s:o}", "kind", "admin#directory#tokenList", "etag", "\"sim\"",
                        "items", items);
}

static void build_domains(g_call *c)
{
    json_t *domains = json_array(), *d, *a;
    size_t i, j;

    if (!customer_ok(c, casb_http_param(c->req, "customer"))) {
        err_forbidden(c, MSG_NOT_AUTHORIZED);
        return;
    }
    json_array_foreach(json_object_get(c->t->o.doc, "domains"), i, d) {
        json_t *out = json_deep_copy(d), *aliases = json_array();
        set_default(out, "kind", json_string("admin#directory#domains"));
        set_default(out, "verified", json_true());
        set_default(out, "isPrimary", json_false());
        set_default(out, "creationTime", json_string("1577836800000"));
        json_array_foreach(json_object_get(d, "domainAliases"), j, a) {
            json_t *alias = json_deep_copy(a);
            set_default(alias, "kind", json_string("admin#directory#domainAlias"));
            set_default(alias, "parentDomainName", json_string(casb_json_str(d, "domainName")));
            set_default(alias, "verified", json_true());
            json_array_append_new(aliases, alias);
        }
        json_object_set_new(out, "domainAliases", aliases);
        json_array_append_new(domains, out);
    }
    c->body = json_pack("{s:s, s:s, s:o}", "kind", "admin#directory#domainsList", "etag",
                        "\"sim\"", "domains", domains);
}

/* ---------- Drive ---------- */

static void build_drive_files(g_call *c, const json_t *drive)
{
    json_t *files_in = json_object_get(drive, "files"), *files = json_array();
    long long offset, size, total = (long long)json_array_size(files_in);

    if (!query_is(c, "includeItemsFromAllDrives", "true") || !query_is(c, "supportsAllDrives", "true")) {
        json_decref(files);
        err_invalid(c, "The includeItemsFromAllDrives parameter must be set to true when driveId "
                       "is specified.", "includeItemsFromAllDrives");
        return;
    }
    if (page_args(c, "pageSize", 100, 1000, 0, &offset, &size) != 0) {
        json_decref(files);
        return;
    }
    for (long long i = offset; i < total && i < offset + size; i++)
        json_array_append_new(files, drive_file(drive, json_array_get(files_in, (size_t)i)));
    c->body = json_pack("{s:s, s:b, s:o}", "kind", "drive#fileList", "incompleteSearch", 0,
                        "files", files);
    page_next(c, offset, size, total);
}

static void build_files(g_call *c)
{
    char corpora[32] = "user", drive_id[256];
    long long offset, size, total;
    json_t *files;

    if (casb_http_query(c->req, "corpora", corpora, sizeof corpora) != 1)
        snprintf(corpora, sizeof corpora, "user");
    if (strcmp(corpora, "drive") == 0) {
        const json_t *drive;
        if (casb_http_query(c->req, "driveId", drive_id, sizeof drive_id) != 1) {
            err_invalid(c, "The driveId parameter must be specified if and only if corpora is "
                           "set to drive.", "driveId");
            return;
        }
        drive = find_drive(c->t, drive_id, NULL);
        if (!drive || strcmp(casb_json_str(drive, "id"), drive_id) != 0 ||
            !drive_member(drive, c->sub)) {
            char msg[320];
            snprintf(msg, sizeof msg, "Shared drive not found: %s", drive_id);
            err_not_found(c, msg, "driveId");
            return;
        }
        build_drive_files(c, drive);
        return;
    }
    if (strcmp(corpora, "user") != 0) {
        err_invalid(c, "Invalid Value", "corpora");
        return;
    }
    /* q is not interpreted: a user's listing is the files the user owns, untrashed. */
    total = sim_gtenant_nfiles(c->t, c->sub_index);
    if (page_args(c, "pageSize", 100, 1000, 0, &offset, &size) != 0)
        return;
    files = json_array();
    for (long long j = offset; j < total && j < offset + size; j++)
        json_array_append_new(files, user_file(c->t, c->sub_index, j));
    c->body = json_pack("{s:s, s:b, s:o}", "kind", "drive#fileList", "incompleteSearch", 0,
                        "files", files);
    page_next(c, offset, size, total);
}

static void build_drives(g_call *c)
{
    json_t *all = json_object_get(c->t->o.doc, "shared_drives"), *visible = json_array(), *d;
    int as_admin = query_is(c, "useDomainAdminAccess", "true");
    long long offset, size, total;
    size_t i;

    if (as_admin && !user_is_admin(c->t, c->sub_index)) {
        json_decref(visible);
        err_forbidden(c, "The user does not have sufficient permissions for this operation.");
        return;
    }
    json_array_foreach(all, i, d) {
        if (as_admin || drive_member(d, c->sub))
            json_array_append(visible, d);
    }
    total = (long long)json_array_size(visible);
    if (page_args(c, "pageSize", 10, 100, 0, &offset, &size) != 0) {
        json_decref(visible);
        return;
    }
    json_t *drives = json_array();
    for (long long k = offset; k < total && k < offset + size; k++) {
        d = json_array_get(visible, (size_t)k);
        json_array_append_new(drives, json_pack("{s:s, s:s, s:s, s:s, s:b}", "kind", "drive#drive",
                                                "id", casb_json_str(d, "id"), "name",
                                                casb_json_str(d, "name"), "createdTime",
                                                "2020-01-01T00:00:00.000Z", "hidden", 0));
    }
    json_decref(visible);
    c->body = json_pack("{s:s, s:o}", "kind", "drive#driveList", "drives", drives);
    page_next(c, offset, size, total);
}

/* The permissions of a shared drive, of a shared drive's file or of a user's file, if the
 * subject may see them; NULL with the error set otherwise. *all_default: no pageSize means
 * the whole list (a file outside shared drives). */
static json_t *permissions_target(g_call *c, const char *id, int *all_default)
{
    int as_admin = query_is(c, "useDomainAdminAccess", "true") && user_is_admin(c->t, c->sub_index);
    json_t *file = NULL, *drive = find_drive(c->t, id, &file), *perms = NULL;
    long long user, j;
    char msg[320];

    *all_default = 0;
    if (drive && (as_admin || drive_member(drive, c->sub))) {
        if (!file)
            return permissions_of(json_object_get(drive, "permissions"));
        json_t *f = drive_file(drive, file);
        perms = json_incref(json_object_get(f, "permissions"));
        json_decref(f);
        return perms;
    }
    if (!drive && sim_gtenant_file_find(c->t, id, &user, &j) == 0) {
        json_t *f = user_file(c->t, user, j), *p;
        size_t i;
        int visible = as_admin || user == c->sub_index;
        json_array_foreach(json_object_get(f, "permissions"), i, p) {
            const char *e = casb_json_str(p, "emailAddress");
            if (e && strcasecmp(e, c->sub) == 0)
                visible = 1;
        }
        if (visible)
            perms = json_incref(json_object_get(f, "permissions"));
        json_decref(f);
        *all_default = 1;
        if (perms)
            return perms;
    }
    snprintf(msg, sizeof msg, "File not found: %s.", id);
    err_not_found(c, msg, "fileId");
    return NULL;
}

static void build_permissions(g_call *c)
{
    int all_default = 0;
    json_t *perms = permissions_target(c, casb_http_param(c->req, "fileId"), &all_default), *page;
    long long offset, size, total;

    if (!perms)
        return;
    total = (long long)json_array_size(perms);
    if (page_args(c, "pageSize", all_default ? 0 : 100, 100, 0, &offset, &size) != 0) {
        json_decref(perms);
        return;
    }
    if (size == 0)
        size = total > 0 ? total : 1;
    page = json_array();
    for (long long k = offset; k < total && k < offset + size; k++)
        json_array_append(page, json_array_get(perms, (size_t)k));
    json_decref(perms);
    c->body = json_pack("{s:s, s:o}", "kind", "drive#permissionList", "permissions", page);
    page_next(c, offset, size, total);
}

/* ---------- Calendar, Gmail ---------- */

static void build_calendar_acl(g_call *c)
{
    const char *cal = casb_http_param(c->req, "calendarId");
    json_t *u, *rules, *items, *r;
    long long offset, size, total;
    char owner_id[300];
    int has_owner = 0;
    size_t i;

    if (strcmp(cal, "primary") != 0 && strcasecmp(cal, c->sub) != 0) {
        err_not_found(c, "Not Found", NULL);
        return;
    }
    if (page_args(c, "maxResults", 100, 250, 1, &offset, &size) != 0)
        return;
    u = sim_gtenant_user(c->t, c->sub_index);
    rules = json_array();
    snprintf(owner_id, sizeof owner_id, "user:%s", c->sub);
    json_array_foreach(json_object_get(u, "calendar_acl"), i, r) {
        if (strcmp(casb_json_str(r, "id") ? casb_json_str(r, "id") : "", owner_id) == 0)
            has_owner = 1;
    }
    if (!has_owner)
        json_array_append_new(rules, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", owner_id, "role",
                                               "owner", "scope", "type", "user", "value", c->sub));
    json_array_extend(rules, json_object_get(u, "calendar_acl"));
    json_decref(u);
    total = (long long)json_array_size(rules);
    items = json_array();
    for (long long k = offset; k < total && k < offset + size; k++) {
        json_t *rule = json_deep_copy(json_array_get(rules, (size_t)k));
        set_default(rule, "kind", json_string("calendar#aclRule"));
        set_default(rule, "etag", json_string("\"00000000000000000000\""));
        json_array_append_new(items, rule);
    }
    json_decref(rules);
    c->body = json_pack("{s:s, s:s, s:o}", "kind", "calendar#acl", "etag",
                        "\"00000000000000000000\"", "items", items);
    page_next(c, offset, size, total);
}

static void build_delegates(g_call *c)
{
    const char *who = casb_http_param(c->req, "userId");
    json_t *u, *delegates;
    char msg[320];

    if (strcmp(who, "me") != 0 && strcasecmp(who, c->sub) != 0) {
        snprintf(msg, sizeof msg, "Delegation denied for %s", c->sub);
        err_forbidden(c, msg);
        return;
    }
    u = sim_gtenant_user(c->t, c->sub_index);
    delegates = json_object_get(u, "delegates");
    /* Gmail leaves the member out when there are none. */
    c->body = json_array_size(delegates) > 0
                  ? json_pack("{s:O}", "delegates", delegates)
                  : json_object();
    json_decref(u);
}

static const g_route ROUTES[] = {
    {"/admin/directory/v1/users", "GET /admin/directory/v1/users", S_USERS, 1, build_users, NULL},
    {"/admin/directory/v1/users/{userKey}/tokens", "GET /admin/directory/v1/users/{userKey}/tokens",
     S_TOKENS, 1, build_tokens, NULL},
    {"/admin/directory/v1/customer/{customer}/domains",
     "GET /admin/directory/v1/customer/{customer}/domains", S_DOMAINS, 1, build_domains, NULL},
    {"/drive/v3/files", "GET /drive/v3/files", S_DRIVE, 0, build_files,
     "kind,incompleteSearch,nextPageToken,files(kind,id,name,mimeType)"},
    {"/drive/v3/drives", "GET /drive/v3/drives", S_DRIVE, 0, build_drives,
     "kind,nextPageToken,drives(kind,id,name)"},
    {"/drive/v3/files/{fileId}/permissions", "GET /drive/v3/files/{fileId}/permissions", S_DRIVE,
     0, build_permissions, "kind,nextPageToken,permissions(kind,id,type,role,emailAddress,domain,allowFileDiscovery)"},
    {"/calendar/v3/calendars/{calendarId}/acl", "GET /calendar/v3/calendars/{calendarId}/acl",
     S_CALENDAR, 0, build_calendar_acl, NULL},
    {"/gmail/v1/users/{userId}/settings/delegates", "GET /gmail/v1/users/{userId}/settings/delegates",
     S_GMAIL, 0, build_delegates, NULL},
};

/* Applies the fields mask (or the route's default) to a 2xx body. */
static void apply_fields(g_call *c)
{
    char spec[4096], err[256];
    const char *mask = c->route->default_fields;
    sim_fields *f;
    json_t *out;
    int got = casb_http_query(c->req, "fields", spec, sizeof spec);

    if (got == 1)
        mask = spec;
    if (c->status >= 300 || !mask || !c->body)
        return;
    f = sim_fields_parse(mask, err, sizeof err);
    if (!f) {
        set_error(c, 400, "INVALID_ARGUMENT", err, "global", "invalidParameter", NULL, NULL);
        return;
    }
    out = sim_fields_apply(f, c->body);
    sim_fields_free(f);
    json_decref(c->body);
    c->body = out;
}

/* Takes one request from the tenant's budget when it has a rate_limit. Caller holds mu. */
static int over_quota(sim_gtenant *t)
{
    sim_rate rate;

    if (!json_object_get(t->o.doc, "rate_limit"))
        return 0;
    return !sim_rate_take(&t->o, 1, &rate);
}

static int g_serve(casb_http_req *r, const g_route *rt)
{
    g_call c = {.s = casb_http_app(r), .req = r, .route = rt, .status = 200};
    sim_fault_hit hit = {.mode = SIM_FAULT_NONE};
    sim *s = c.s;
    int faulted = 0, quota = 0, status;

    pthread_rwlock_rdlock(&s->lock);
    if (!token_check(&c, casb_http_header(r, "Authorization"))) {
        err_unauthenticated(&c);
        goto unlock;
    }
    pthread_mutex_lock(&s->mu);
    sim_stats_count(&c.t->o, rt->endpoint);
    faulted = sim_faults_pick(&c.t->o, casb_http_path(r), &hit);
    if (faulted)
        c.t->o.faults_injected++;
    else
        quota = over_quota(c.t);
    pthread_mutex_unlock(&s->mu);
    if (faulted && hit.mode != SIM_FAULT_SLOW && hit.mode != SIM_FAULT_TIMEOUT &&
        hit.mode != SIM_FAULT_MALFORMED) {
        err_fault(&c, hit.mode);
        goto unlock;
    }
    if (quota) {
        err_quota(&c);
        goto unlock;
    }
    if (!(c.bits & rt->scopes)) {
        set_error(&c, 403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.",
                  "global", "insufficientPermissions", NULL, NULL);
        json_object_set_new(json_array_get(casb_json_path(c.body, "error.errors"), 0), "message",
                            json_string("Insufficient Permission"));
        goto unlock;
    }
    if (rt->admin && !user_is_admin(c.t, c.sub_index)) {
        err_forbidden(&c, MSG_NOT_AUTHORIZED);
        goto unlock;
    }
    rt->build(&c);
    apply_fields(&c);
unlock:
    pthread_rwlock_unlock(&s->lock);
    if (faulted)
        casb_log_debug("fault injected", "mode", sim_fault_mode_name(hit.mode), "endpoint",
                       rt->endpoint);
    sim_latency_hold(s, hit.mode == SIM_FAULT_SLOW || hit.mode == SIM_FAULT_TIMEOUT
                            ? hit.delay_ms
                            : 0);
    status = send_json(r, c.status, c.body, faulted && hit.mode == SIM_FAULT_MALFORMED);
    json_decref(c.body);
    return status;
}

static int g_handler(casb_http_req *r)
{
    const char *path = casb_http_path(r);

    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        if (sim_path_matches(ROUTES[i].pattern, path))
            return g_serve(r, &ROUTES[i]);
    }
    return casb_http_reply_problem(r, 404, "no such Google route", NULL);
}

/* ---------- POST /token ---------- */

static int token_error(casb_http_req *r, int status, const char *error, const char *description)
{
    json_t *body = json_pack("{s:s, s:s}", "error", error, "error_description", description);
    int rc = send_json(r, status, body, 0);

    json_decref(body);
    return rc;
}

/* The unverified claims of a JWT (to pick the tenant by iss); new reference or NULL. */
static json_t *peek_claims(const char *jwt)
{
    const char *a = strchr(jwt, '.'), *b = a ? strchr(a + 1, '.') : NULL;
    char seg[8192];
    unsigned char *raw;
    size_t n = 0;
    json_t *claims;

    if (!b || (size_t)(b - a - 1) >= sizeof seg)
        return NULL;
    snprintf(seg, sizeof seg, "%.*s", (int)(b - a - 1), a + 1);
    raw = casb_base64url_decode(seg, &n);
    claims = raw ? json_loadb((const char *)raw, n, 0, NULL) : NULL;
    free(raw);
    return claims;
}

/* The scope bits of a space-separated list, or -1 when one is not authorized. */
static long long grant_bits(const json_t *sa, const char *scope)
{
    json_t *allowed = json_object_get(sa, "scopes");
    char *copy = strdup(scope), *save = NULL;
    long long bits = 0;
    int any = 0;

    for (char *tok = copy ? strtok_r(copy, " ", &save) : NULL; tok; tok = strtok_r(NULL, " ", &save)) {
        int ok = 0;
        size_t i;
        json_t *v;
        if (allowed) {
            json_array_foreach(allowed, i, v)
                ok |= strcmp(json_string_value(v), tok) == 0;
        } else {
            for (i = 0; i < sizeof DEFAULT_SCOPES / sizeof DEFAULT_SCOPES[0]; i++)
                ok |= strcmp(DEFAULT_SCOPES[i], tok) == 0;
        }
        if (!ok) {
            bits = -1;
            break;
        }
        any = 1;
        for (i = 0; i < NSCOPES; i++) {
            if (strcmp(SCOPES[i], tok) == 0)
                bits |= 1LL << i;
        }
    }
    free(copy);
    return any ? bits : -1;
}

typedef struct {
    sim *s;
    casb_http_req *r;
    char base[256];
    json_t *claims;
    int status;
    const char *error;
    char description[512];
    char *token;
    long long expires_in;
} token_req;

static void token_refuse(token_req *q, int status, const char *error, const char *description)
{
    q->status = status;
    q->error = error;
    snprintf(q->description, sizeof q->description, "%s", description);
}

/* Checks the verified assertion's claims against the tenant; caller holds the lock. */
static void token_grant(token_req *q, sim_gtenant *t)
{
    json_t *sa = json_object_get(t->o.doc, "service_account");
    long long now = (long long)time(NULL), iat = casb_json_int(q->claims, "iat", 0);
    long long exp = casb_json_int(q->claims, "exp", 0), bits;
    long long lifetime = casb_json_int(sa, "token_lifetime_s", TOKEN_LIFETIME_S);
    const char *aud = casb_json_str(q->claims, "aud"), *sub = casb_json_str(q->claims, "sub");
    const char *scope = casb_json_str(q->claims, "scope");
    char expected[300];

    snprintf(expected, sizeof expected, "%s/token", q->base);
    if (exp <= iat || exp - iat > JWT_MAX_LIFETIME_S || exp <= now - JWT_SKEW_S ||
        iat > now + JWT_SKEW_S)
    {
        token_refuse(q, 400, "invalid_grant", MSG_SHORT_LIVED);
        return;
    }
    if (!aud || strcmp(aud, expected) != 0) {
        snprintf(q->description, sizeof q->description,
                 "Invalid JWT: Failed audience check. The right audience is %s", expected);
        q->status = 400;
        q->error = "invalid_grant";
        return;
    }
    if (!scope || !*scope) {
        token_refuse(q, 400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");
        return;
    }
    if (!sub || sim_gtenant_user_find(t, sub) < 0) {
        token_refuse(q, 400, "invalid_grant", "Invalid email or User ID");
        return;
    }
    bits = grant_bits(sa, scope);
    if (bits < 0 || json_is_true(json_object_get(sa, "revoked"))) {
        token_refuse(q, 401, "unauthorized_client", MSG_UNAUTHORIZED_CLIENT);
        return;
    }
    q->token = token_make(t, sub, (unsigned)bits, now + lifetime);
    q->expires_in = lifetime - 1;
    q->status = q->token ? 200 : 500;
}

static void host_base(casb_http_req *r, sim *s, char *buf, size_t len)
{
    const char *host = casb_http_header(r, "Host");
    int ok = host && *host && strlen(host) < 200;

    for (const char *p = host; ok && *p; p++)
        ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", *p) != NULL;
    if (ok)
        snprintf(buf, len, "http://%s", host);
    else
        snprintf(buf, len, "%s", s->default_base_url);
}

static int h_token(casb_http_req *r)
{
    token_req q = {.s = casb_http_app(r), .r = r, .status = 400, .error = "invalid_grant"};
    sim_fault_hit hit = {.mode = SIM_FAULT_NONE};
    char grant[128], assertion[8192], err[256];
    size_t len = 0;
    const char *body = casb_http_body(r, &len);
    const char *pem;
    sim_gtenant *t;
    json_t *verified = NULL;
    int faulted = 0, rc;

    snprintf(q.description, sizeof q.description, "Invalid JWT Signature.");
    host_base(r, q.s, q.base, sizeof q.base);
    if (!body || mg_get_var2(body, len, "grant_type", grant, sizeof grant, 0) < 0)
        grant[0] = '\0';
    if (strcmp(grant, JWT_GRANT) != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "Invalid grant_type: %s", grant);
        return token_error(r, 400, "unsupported_grant_type", msg);
    }
    if (mg_get_var2(body, len, "assertion", assertion, sizeof assertion, 0) < 0)
        return token_error(r, 400, "invalid_request", "Missing required parameter: assertion");
    q.claims = peek_claims(assertion);
    pthread_rwlock_rdlock(&q.s->lock);
    t = sim_gtenant_by_client_email(q.s, casb_json_str(q.claims, "iss"));
    if (!t)
        goto unlock;
    pthread_mutex_lock(&q.s->mu);
    sim_stats_count(&t->o, "POST /token");
    faulted = sim_faults_pick(&t->o, "/token", &hit);
    if (faulted)
        t->o.faults_injected++;
    pthread_mutex_unlock(&q.s->mu);
    if (faulted && (hit.mode == SIM_FAULT_500 || hit.mode == SIM_FAULT_503 ||
                    hit.mode == SIM_FAULT_429)) {
        q.status = hit.mode == SIM_FAULT_429 ? 429 : hit.mode == SIM_FAULT_500 ? 500 : 503;
        q.error = "internal_failure";
        snprintf(q.description, sizeof q.description, "Backend error (injected)");
        goto unlock;
    }
    pem = casb_json_str(json_object_get(t->o.doc, "service_account"), "public_key_pem");
    if (!pem)
        pem = q.s->google_sa_public_key_pem;
    /* The times are checked below with Google's message: the verification only must not
     * refuse them. */
    if (!pem || casb_jwt_verify_rs256(&verified, assertion, pem, 10L * 365 * 86400, err,
                                      sizeof err) != 0)
        goto unlock;
    json_decref(q.claims);
    q.claims = verified;
    token_grant(&q, t);
    if (q.status == 200) {
        pthread_mutex_lock(&q.s->mu);
        t->token_issues++;
        pthread_mutex_unlock(&q.s->mu);
    }
unlock:
    pthread_rwlock_unlock(&q.s->lock);
    json_decref(q.claims);
    sim_latency_hold(q.s, faulted && (hit.mode == SIM_FAULT_SLOW || hit.mode == SIM_FAULT_TIMEOUT)
                              ? hit.delay_ms
                              : 0);
    if (q.status != 200)
        return token_error(r, q.status, q.error, q.description);
    json_t *ok = json_pack("{s:s, s:I, s:s}", "access_token", q.token, "expires_in",
                           (json_int_t)q.expires_in, "token_type", "Bearer");
    rc = send_json(r, 200, ok, faulted && hit.mode == SIM_FAULT_MALFORMED);
    json_decref(ok);
    free(q.token);
    return rc;
}

int sim_google_routes(sim *s, casb_http_server *http)
{
    (void)s;
    if (casb_http_route(http, "POST", "/token", h_token, CASB_ROUTE_PUBLIC) != 0)
        return -1;
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        if (casb_http_route(http, "GET", ROUTES[i].pattern, g_handler, CASB_ROUTE_PUBLIC) != 0)
            return -1;
    }
    return 0;
}
