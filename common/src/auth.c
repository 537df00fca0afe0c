#include "casb/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "casb/auth_cache.h"
#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/log.h"
#include "casb/timeutil.h"

#define MIN_BOOTSTRAP_TOKEN_LEN 16
#define MAX_TOKEN_LEN 4096
#define POOL_WAIT_MS 2000

/* Only digests are kept, so that a memory dump does not reveal a token; comparing
 * fixed-size digests in constant time leaks neither content nor length. */
struct casb_auth {
    char bootstrap_sha256[65]; /* "" when none was configured */
    casb_db_pool *pool;        /* borrowed; NULL: the bootstrap token is the only one */
    casb_auth_cache *cache;    /* NULL: every check asks the database */
};

static const char *const role_names[] = {"read_only", "analyst", "admin"};

const char *casb_role_name(casb_role role)
{
    if ((int)role < 0 || (size_t)role >= sizeof(role_names) / sizeof(role_names[0]))
        return "read_only";
    return role_names[role];
}

int casb_role_parse(const char *name, casb_role *out)
{
    for (size_t i = 0; name && i < sizeof(role_names) / sizeof(role_names[0]); i++) {
        if (strcmp(name, role_names[i]) == 0) {
            *out = (casb_role)i;
            return 0;
        }
    }
    return -1;
}

/* It travels in an HTTP header: visible ASCII only. */
static int printable_token(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];

        if (c <= 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

static int check_bootstrap_token(const char *token, char *err, size_t errlen)
{
    size_t n = strlen(token);

    if (n < MIN_BOOTSTRAP_TOKEN_LEN)
        return casb_fail(err, errlen, CASB_EINVALID,
                         "admin token must be at least %d characters", MIN_BOOTSTRAP_TOKEN_LEN);
    if (n > MAX_TOKEN_LEN)
        return casb_fail(err, errlen, CASB_EINVALID, "admin token is longer than %d characters",
                         MAX_TOKEN_LEN);
    if (!printable_token(token, n))
        return casb_fail(err, errlen, CASB_EINVALID,
                         "admin token must be printable ASCII without spaces");
    return 0;
}

int casb_auth_new(casb_auth **out, const char *bootstrap_token, char *err, size_t errlen)
{
    casb_auth *a;
    int rc;

    *out = NULL;
    if (bootstrap_token && (rc = check_bootstrap_token(bootstrap_token, err, errlen)) != 0)
        return rc;
    a = calloc(1, sizeof(*a));
    if (!a)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    if (bootstrap_token)
        casb_sha256_hex(bootstrap_token, strlen(bootstrap_token), a->bootstrap_sha256);
    *out = a;
    return 0;
}

void casb_auth_free(casb_auth *a)
{
    if (!a)
        return;
    casb_auth_cache_free(a->cache);
    casb_secret_wipe(a, sizeof(*a));
    free(a);
}

/* The token of an Authorization header: the scheme is case-insensitive (RFC 7235) and one or
 * more spaces separate it; trailing blanks are not part of the token. */
static const char *bearer_token(const char *header, size_t *n)
{
    const char *token;

    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    token = header + 7;
    while (*token == ' ')
        token++;
    *n = strlen(token);
    while (*n > 0 && (token[*n - 1] == ' ' || token[*n - 1] == '\t'))
        (*n)--;
    if (*n == 0 || *n > MAX_TOKEN_LEN || !printable_token(token, *n))
        return NULL;
    return token;
}

static void fill_bootstrap_principal(casb_principal *who)
{
    memset(who, 0, sizeof(*who));
    snprintf(who->account_id, sizeof(who->account_id), "%s", CASB_DEFAULT_ACCOUNT_ID);
    snprintf(who->token_id, sizeof(who->token_id), "%s", "bootstrap");
    snprintf(who->token_name, sizeof(who->token_name), "%s", "bootstrap");
    who->role = CASB_ROLE_ADMIN;
}

/* Last use is for people deciding what to revoke: minute precision is plenty, and it keeps
 * authentication from writing a row on every request. */
static void touch_last_used(casb_db *db, const char *token_id)
{
    const char *params[1] = {token_id};
    char err[256];

    if (casb_db_exec(db,
                     "UPDATE api_tokens SET last_used_at = now() WHERE id = $1 "
                     "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
                     1, params, NULL, err, sizeof(err)) != 0)
        casb_log_warn("cannot record a token's last use", "error", err);
}

/* expires_at: the token's expiry in seconds since 1970, rounded down (0: none). */
static int lookup(casb_db *db, const char *digest_hex, casb_principal *who,
                  long long *expires_at)
{
    const char *params[1] = {digest_hex};
    char err[256];
    PGresult *res;
    int rc = CASB_EAUTH;

    /* The index finds the row by digest; the digest is then compared again in constant time,
     * so that nothing about a near miss depends on the presented bytes. */
    res = casb_db_query_generic(
        db,
        "SELECT id, account_id, name, role, encode(secret_sha256, 'hex') AS sha,"
        " (expires_at IS NULL OR expires_at > now()) AND revoked_at IS NULL AS valid,"
        " last_used_at IS NULL OR last_used_at < now() - interval '1 minute' AS stale,"
        " floor(extract(epoch FROM expires_at))::bigint AS expires_s"
        " FROM api_tokens WHERE secret_sha256 = decode($1, 'hex')",
        1, params, err, sizeof(err));
    if (!res) {
        casb_log_warn("cannot look up an API token", "error", err);
        return CASB_EUNAVAILABLE;
    }
    if (PQntuples(res) == 1 && casb_secure_equal(casb_db_get(res, 0, "sha"), digest_hex) &&
        casb_db_get_bool(res, 0, "valid") &&
        casb_role_parse(casb_db_get(res, 0, "role"), &who->role) == 0) {
        snprintf(who->account_id, sizeof(who->account_id), "%s",
                 casb_db_get(res, 0, "account_id"));
        snprintf(who->token_id, sizeof(who->token_id), "%s", casb_db_get(res, 0, "id"));
        snprintf(who->token_name, sizeof(who->token_name), "%s", casb_db_get(res, 0, "name"));
        if (casb_db_get_bool(res, 0, "stale"))
            touch_last_used(db, who->token_id);
        *expires_at = casb_db_get_int(res, 0, "expires_s", 0);
        rc = 0;
    }
    PQclear(res);
    return rc;
}

int casb_auth_check(const casb_auth *a, const char *authorization_header, casb_principal *who)
{
    return casb_auth_check_keep(a, authorization_header, who, NULL);
}

void casb_auth_release(const casb_auth *a, casb_db *db)
{
    if (a && db)
        casb_db_pool_release(a->pool, db);
}

int casb_auth_check_keep(const casb_auth *a, const char *authorization_header,
                         casb_principal *who, casb_db **keep)
{
    const char *token;
    size_t n = 0;
    char digest[65];
    unsigned long long ticket;
    long long expires_at = 0;
    casb_db *db;
    int rc;

    if (keep)
        *keep = NULL;
    if (!a || !who || !(token = bearer_token(authorization_header, &n)))
        return CASB_EAUTH;
    casb_sha256_hex(token, n, digest);
    memset(who, 0, sizeof(*who));
    if (!a->pool) {
        if (!a->bootstrap_sha256[0] || !casb_secure_equal(digest, a->bootstrap_sha256))
            return CASB_EAUTH;
        fill_bootstrap_principal(who);
        return 0;
    }
    if (casb_auth_cache_get(a->cache, digest, who))
        return 0;
    ticket = casb_auth_cache_ticket(a->cache);
    db = casb_db_pool_acquire(a->pool, POOL_WAIT_MS);
    if (!db)
        return CASB_EUNAVAILABLE;
    rc = lookup(db, digest, who, &expires_at);
    if (rc == 0)
        casb_auth_cache_put(a->cache, ticket, digest, who, expires_at);
    if (rc == 0 && keep)
        *keep = db;
    else
        casb_db_pool_release(a->pool, db);
    if (rc != 0)
        memset(who, 0, sizeof(*who));
    return rc;
}

static int insert_token(casb_db *db, const char *id, const casb_token_spec *spec,
                        const char *digest_hex, int bootstrap, long *inserted, char *err,
                        size_t errlen)
{
    char expires_utc[32] = "";
    time_t expires;
    const char *params[8] = {id,
                             spec->account_id,
                             spec->name,
                             casb_role_name(spec->role),
                             digest_hex,
                             bootstrap ? "true" : "false",
                             spec->created_by,
                             spec->expires_at};

    /* In UTC: RFC 3339 allows offsets up to +-23:59, PostgreSQL refuses beyond +-15:59 (a
     * 500 for "+19:50", found by tests/apifuzz). check_spec parsed it already. */
    if (spec->expires_at && casb_time_parse(spec->expires_at, &expires) == 0) {
        casb_time_rfc3339(expires_utc, sizeof(expires_utc), expires);
        params[7] = expires_utc;
    }

    /* ON CONFLICT: a second bootstrap token for the account is not an error, it is ignored. */
    return casb_db_exec(db,
                        "INSERT INTO api_tokens (id, account_id, name, role, secret_sha256,"
                        " bootstrap, created_by, expires_at)"
                        " VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6, $7, $8::timestamptz)"
                        " ON CONFLICT (account_id) WHERE bootstrap DO NOTHING",
                        8, params, inserted, err, errlen);
}

/* 1 to CASB_TOKEN_NAME_MAX characters (not bytes: the API documents characters). */
static int valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0, chars = 0;

    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0; /* it is shown in the audit log and the dashboard */
        if (((unsigned char)name[i] & 0xC0) != 0x80)
            chars++;
    }
    return chars >= 1 && chars <= CASB_TOKEN_NAME_MAX;
}

static int check_spec(const casb_token_spec *spec, char *err, size_t errlen)
{
    time_t expires;

    if (!spec->account_id || !casb_uuid_valid(spec->account_id))
        return casb_fail(err, errlen, CASB_EINVALID, "account must be a UUID");
    if (!valid_name(spec->name))
        return casb_fail(err, errlen, CASB_EINVALID,
                         "name must be 1 to %d characters, without control characters",
                         CASB_TOKEN_NAME_MAX);
    if (spec->expires_at) {
        if (casb_time_parse(spec->expires_at, &expires) != 0)
            return casb_fail(err, errlen, CASB_EINVALID,
                             "expires_at must be an RFC 3339 date-time");
        if (expires <= time(NULL))
            return casb_fail(err, errlen, CASB_EINVALID, "expires_at must be in the future");
    }
    return 0;
}

int casb_auth_issue(casb_db *db, const casb_token_spec *spec, char token[CASB_TOKEN_SIZE],
                    char id[37], char *err, size_t errlen)
{
    unsigned char secret[32];
    char *encoded;
    char digest[65];
    int rc;

    token[0] = '\0';
    if ((rc = check_spec(spec, err, errlen)) != 0)
        return rc;
    if (casb_random_bytes(secret, sizeof(secret)) != 0)
        return casb_fail(err, errlen, CASB_ERROR, "no randomness for a token");
    encoded = casb_base64url_encode(secret, sizeof(secret));
    casb_secret_wipe(secret, sizeof(secret));
    if (!encoded)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    snprintf(token, CASB_TOKEN_SIZE, "%s%s", CASB_TOKEN_PREFIX, encoded);
    casb_secret_wipe(encoded, strlen(encoded));
    free(encoded);
    casb_sha256_hex(token, strlen(token), digest);
    casb_uuid_v4(id);
    if (insert_token(db, id, spec, digest, 0, NULL, err, errlen) != 0) {
        casb_secret_wipe(token, CASB_TOKEN_SIZE);
        token[0] = '\0';
        return CASB_ERROR;
    }
    return 0;
}

static int stored_bootstrap_differs(casb_db *db, const char *digest_hex, int *differs,
                                    char *err, size_t errlen)
{
    const char *params[2] = {CASB_DEFAULT_ACCOUNT_ID, digest_hex};
    PGresult *res = casb_db_query(db,
                                  "SELECT secret_sha256 <> decode($2, 'hex') AS differs"
                                  " FROM api_tokens WHERE account_id = $1 AND bootstrap",
                                  2, params, err, errlen);

    if (!res)
        return CASB_ERROR;
    *differs = PQntuples(res) == 1 && casb_db_get_bool(res, 0, "differs");
    PQclear(res);
    return 0;
}

static int seed_bootstrap(casb_auth *a, int *seeded, int *ignored, char *err, size_t errlen)
{
    casb_token_spec spec = {CASB_DEFAULT_ACCOUNT_ID, "bootstrap", CASB_ROLE_ADMIN, NULL,
                            "configuration"};
    char id[37];
    long inserted = 0;
    casb_db *db;
    int rc;

    db = casb_db_pool_acquire(a->pool, POOL_WAIT_MS * 5);
    if (!db)
        return casb_fail(err, errlen, CASB_EUNAVAILABLE, "no database connection");
    casb_uuid_v4(id);
    rc = insert_token(db, id, &spec, a->bootstrap_sha256, 1, &inserted, err, errlen);
    if (rc == 0 && inserted == 1)
        *seeded = 1;
    else if (rc == 0)
        rc = stored_bootstrap_differs(db, a->bootstrap_sha256, ignored, err, errlen);
    casb_db_pool_release(a->pool, db);
    return rc;
}

int casb_auth_connect(casb_auth *a, casb_db_pool *pool, char *err, size_t errlen)
{
    int seeded = 0, ignored = 0;

    if (!a || !pool)
        return casb_fail(err, errlen, CASB_EINVALID, "auth: no database");
    a->pool = pool;
    if (!a->bootstrap_sha256[0])
        return 0;
    if (seed_bootstrap(a, &seeded, &ignored, err, errlen) != 0)
        return CASB_ERROR;
    if (seeded)
        casb_log_info("the bootstrap admin token was stored for the default account");
    if (ignored)
        casb_log_warn("CASB_ADMIN_TOKEN is not the bootstrap token stored at the first start "
                      "and is ignored; issue tokens with POST /v1/tokens or "
                      "`integration-manager create-token`");
    return 0;
}

int casb_auth_cache_tokens(casb_auth *a, const char *database_url, char *err, size_t errlen)
{
    if (!a || !a->pool)
        return casb_fail(err, errlen, CASB_EINVALID, "auth: connect before caching tokens");
    if (a->cache)
        return 0;
    return casb_auth_cache_new(&a->cache, database_url, err, errlen);
}

void casb_auth_forget_tokens(const casb_auth *a)
{
    if (a)
        casb_auth_cache_clear(a->cache);
}

int casb_auth_caching(const casb_auth *a)
{
    return a ? casb_auth_cache_listening(a->cache) : 0;
}
