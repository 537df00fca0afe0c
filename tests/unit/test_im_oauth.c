/* The consent flows in progress (im_oauth.c) against a real PostgreSQL, in a schema of their
 * own: a flow is taken once, only for its provider, only before it expires; a
 * reauthorization flow needs an integration of the same account and goes with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "casb/auth.h"
#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "im_oauth.h"
#include "test_schema.h"

#define OTHER_ACCOUNT "00000000-0000-0000-0000-0000000000aa"

static casb_db *db;
static char schema[64];

static void exec_ok(const char *sql, int n, const char *const *params)
{
    char err[256] = "";

    if (casb_db_exec(db, sql, n, params, NULL, err, sizeof(err)) != 0)
        fail_msg("%s: %s", sql, err);
}

static int setup(void **state)
{
    const char *params[] = {OTHER_ACCOUNT};

    (void)state;
    test_schema_open(&db, "test_im_oauth", schema);
    exec_ok("INSERT INTO accounts (id, name) VALUES ($1, 'other')", 1, params);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_schema_close(db, schema);
    return 0;
}

/* Saves a flow whose state hashes to the SHA-256 of state; returns the save's code. */
static int save(const char *state, const char *integration_id, long ttl_s)
{
    char hash[65], expires[32], err[256] = "";
    im_oauth_flow_new f = {
        .state_sha256 = hash,
        .account_id = CASB_DEFAULT_ACCOUNT_ID,
        .actor = "admin",
        .provider = "github",
        .integration_id = integration_id,
        .request_json = "{\"name\":\"n\",\"config\":{\"organization\":\"acme\"}}",
        .redirect_uri = "http://127.0.0.1:8081/v1/integrations/oauth/github/callback",
        .verifier_sealed = "v1.k.sealed",
        .ttl_s = ttl_s,
    };
    int rc;

    casb_sha256_hex(state, strlen(state), hash);
    rc = im_oauth_flow_save(db, &f, expires, err, sizeof(err));
    if (rc == 0)
        assert_int_equal(strlen(expires), 20); /* 2026-11-28T23:00:00Z */
    return rc;
}

static int take(const char *state, const char *provider, im_oauth_flow *out)
{
    char hash[65], err[256] = "";

    casb_sha256_hex(state, strlen(state), hash);
    return im_oauth_flow_take(db, hash, provider, out, err, sizeof(err));
}

static void test_taken_once(void **state)
{
    im_oauth_flow f;

    (void)state;
    assert_int_equal(save("state-once", NULL, 600), 0);
    /* Another provider's callback does not see it. */
    assert_int_equal(take("state-once", "slack", &f), CASB_ENOTFOUND);
    assert_int_equal(take("state-once", "github", &f), 0);
    assert_string_equal(f.account_id, CASB_DEFAULT_ACCOUNT_ID);
    assert_string_equal(f.actor, "admin");
    assert_string_equal(f.provider, "github");
    assert_string_equal(f.integration_id, "");
    assert_string_equal(casb_json_str(f.request, "name"), "n");
    assert_string_equal(f.verifier_sealed, "v1.k.sealed");
    assert_non_null(strstr(f.redirect_uri, "/oauth/github/callback"));
    im_oauth_flow_clear(&f);
    assert_int_equal(take("state-once", "github", &f), CASB_ECONFLICT);
    assert_int_equal(take("never-issued", "github", &f), CASB_ENOTFOUND);
}

static void test_expired(void **state)
{
    const char *params[1];
    char hash[65];
    im_oauth_flow f;

    (void)state;
    assert_int_equal(save("state-expired", NULL, 600), 0);
    casb_sha256_hex("state-expired", strlen("state-expired"), hash);
    params[0] = hash;
    exec_ok("UPDATE oauth_states SET expires_at = now() - interval '1 second' "
            "WHERE state_sha256 = $1",
            1, params);
    assert_int_equal(take("state-expired", "github", &f), CASB_EINVALID);
    /* Still expired (not "used") the second time: nothing was marked. */
    assert_int_equal(take("state-expired", "github", &f), CASB_EINVALID);

    /* Long-expired flows are cleared by the next save. */
    exec_ok("UPDATE oauth_states SET expires_at = now() - interval '2 days' "
            "WHERE state_sha256 = $1",
            1, params);
    assert_int_equal(save("state-next", NULL, 600), 0);
    assert_int_equal(take("state-expired", "github", &f), CASB_ENOTFOUND);
}

static void test_reauthorization_flows(void **state)
{
    char mine[37], theirs[37];
    const char *params[3];
    im_oauth_flow f;

    (void)state;
    casb_uuid_v4(mine);
    casb_uuid_v4(theirs);
    params[0] = mine;
    params[1] = CASB_DEFAULT_ACCOUNT_ID;
    exec_ok("INSERT INTO integrations (id, account_id, provider, name, credentials_sealed, "
            "credentials_key_id, scan_interval_s) VALUES ($1, $2, 'github', 'm', 'v1.k.x', 'k', "
            "3600)",
            2, params);
    params[0] = theirs;
    params[1] = OTHER_ACCOUNT;
    exec_ok("INSERT INTO integrations (id, account_id, provider, name, credentials_sealed, "
            "credentials_key_id, scan_interval_s) VALUES ($1, $2, 'github', 't', 'v1.k.x', 'k', "
            "3600)",
            2, params);

    /* Another account's integration, or none, cannot be reauthorized. */
    assert_int_equal(save("state-theirs", theirs, 600), CASB_ENOTFOUND);
    assert_int_equal(take("state-theirs", "github", &f), CASB_ENOTFOUND);
    assert_int_equal(save("state-mine", mine, 600), 0);
    assert_int_equal(save("state-mine-2", mine, 600), 0);
    assert_int_equal(take("state-mine", "github", &f), 0);
    assert_string_equal(f.integration_id, mine);
    im_oauth_flow_clear(&f);

    /* Deleting the integration deletes its flows: nothing of it outlives the delete. */
    params[0] = mine;
    exec_ok("DELETE FROM integrations WHERE id = $1", 1, params);
    assert_int_equal(take("state-mine-2", "github", &f), CASB_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taken_once),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_reauthorization_flows),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
