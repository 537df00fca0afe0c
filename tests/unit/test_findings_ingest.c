/* findings-api ingest (fa_ingest_apply) against a real PostgreSQL: CASB_TEST_DATABASE_URL
 * (tests/run exports it). Each test runs scans of its own integration through result
 * messages and checks findings, instances, scans and the integration afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casb/auth.h"
#include "casb/crypto.h"
#include "casb/db.h"
#include "casb/json.h"
#include "casb/migrate.h"
#include "fa_catalogue.h"
#include "fa_ingest.h"
#include "fa_message.h"
#include "sw_store.h"

#define T_2FA "github.org.member_2fa_disabled"
#define T_PUBLIC "github.repo.public"

static casb_db *db;
static fa_catalogue *cat;

static const char CATALOGUE[] =
    "{\"provider\":\"github\",\"finding_types\":["
    " {\"id\":\"github.repo.public\",\"title\":\"Public\",\"severity\":\"low\","
    "  \"category\":\"data_exposure\"},"
    " {\"id\":\"github.org.member_2fa_disabled\",\"title\":\"No 2FA\",\"severity\":\"high\","
    "  \"category\":\"user_activity\"}]}";

typedef struct {
    char integration_id[37];
} fixture;

static void exec_ok(const char *sql, int n, const char *const *params)
{
    char err[256] = "";

    if (casb_db_exec(db, sql, n, params, NULL, err, sizeof(err)) != 0)
        fail_msg("%s: %s", sql, err);
}

/* The first column of the first row as text ("" for none, "(null)" for NULL). */
static const char *value(char *buf, size_t len, const char *sql, int n, const char *const *params)
{
    char err[256] = "";
    PGresult *res = casb_db_query(db, sql, n, params, err, sizeof(err));

    if (!res)
        fail_msg("%s: %s", sql, err);
    if (PQntuples(res) == 0)
        snprintf(buf, len, "%s", "");
    else if (PQgetisnull(res, 0, 0))
        snprintf(buf, len, "%s", "(null)");
    else
        snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return buf;
}

static int group_setup(void **state)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");
    char err[256] = "";
    json_t *doc;

    if (!url || !*url)
        fail_msg("CASB_TEST_DATABASE_URL is not set: these tests need a real PostgreSQL "
                 "(tests/run exports it)");
    if (casb_db_open(&db, url, 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open: %s", err);
    if (casb_migrate(db, casb_migrations, casb_migrations_count, NULL, err, sizeof(err)) != 0)
        fail_msg("casb_migrate: %s", err);
    assert_int_equal(fa_catalogue_new(&cat, err, sizeof(err)), 0);
    doc = json_loads(CATALOGUE, 0, NULL);
    assert_int_equal(fa_catalogue_add(cat, doc, "test", err, sizeof(err)), 0);
    json_decref(doc);
    return 0;
}

static int group_teardown(void **state)
{
    fa_catalogue_free(cat);
    casb_db_close(db);
    return 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    casb_uuid_v4(f->integration_id);
    const char *params[] = {f->integration_id, CASB_DEFAULT_ACCOUNT_ID};
    exec_ok("INSERT INTO integrations (id, account_id, provider, name, credentials_sealed,"
            " credentials_key_id, scan_interval_s)"
            " VALUES ($1, $2, 'github', 'test_findings_ingest', 'v1.x.y', 'x', 3600)",
            2, params);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    const char *params[] = {f->integration_id};

    exec_ok("DELETE FROM ingested_batches WHERE scan_id IN"
            " (SELECT id FROM scans WHERE integration_id = $1)", 1, params);
    exec_ok("DELETE FROM integrations WHERE id = $1", 1, params);
    free(f);
    return 0;
}

/* A running scan in its first attempt, started at the given RFC 3339 time. */
static void new_scan(const fixture *f, char scan_id[37], const char *started_at)
{
    casb_uuid_v4(scan_id);
    const char *params[] = {scan_id, CASB_DEFAULT_ACCOUNT_ID, f->integration_id, started_at};
    exec_ok("INSERT INTO scans (id, account_id, integration_id, reason, status, started_at,"
            " worker_id, lease_until, attempt, attempt_started_at)"
            " VALUES ($1, $2, $3, 'manual', 'running', $4::timestamptz, 'w',"
            "         now() + interval '2 minutes', 1, $4::timestamptz)",
            4, params);
}

/* A message of the given attempt of a scan. */
static json_t *message_of(const fixture *f, const char *scan_id, int attempt,
                          const char *started_at, int seq, const char *kind)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s}", "schema",
                     "casb.scan.result/v1", "scan_id", scan_id, "integration_id",
                     f->integration_id, "account_id", CASB_DEFAULT_ACCOUNT_ID, "provider",
                     "github", "attempt", attempt, "seq", seq, "kind", kind, "scan_started_at",
                     started_at);
}

/* A message of a scan's first (and only) attempt. */
static json_t *message(const fixture *f, const char *scan_id, const char *started_at, int seq,
                       const char *kind)
{
    return message_of(f, scan_id, 1, started_at, seq, kind);
}

/* findings message of an attempt: "type|asset[|details-n]" entries, NULL-terminated. */
static json_t *findings_of(const fixture *f, const char *scan_id, int attempt,
                           const char *started_at, int seq, const char *const *entries)
{
    json_t *m = message_of(f, scan_id, attempt, started_at, seq, "findings");
    json_t *list = json_array();

    for (int i = 0; entries[i]; i++) {
        char type[128], asset[128];
        int n = 0;
        if (sscanf(entries[i], "%127[^|]|%127[^|]|%d", type, asset, &n) < 2)
            fail_msg("bad entry %s", entries[i]);
        json_array_append_new(list, json_pack("{s:s, s:{s:s, s:s, s:s}, s:{s:i}}",
                                              "finding_type", type, "asset", "kind", "thing",
                                              "id", asset, "name", asset, "details", "n", n));
    }
    json_object_set_new(m, "findings", list);
    return m;
}

static json_t *findings(const fixture *f, const char *scan_id, const char *started_at, int seq,
                        const char *const *entries)
{
    return findings_of(f, scan_id, 1, started_at, seq, entries);
}

static json_t *completed_of(const fixture *f, const char *scan_id, int attempt,
                            const char *started_at, int seq, const char *const *ran)
{
    json_t *m = message_of(f, scan_id, attempt, started_at, seq, "completed");
    json_t *r = json_array();

    for (int i = 0; ran[i]; i++)
        json_array_append_new(r, json_string(ran[i]));
    json_object_set_new(m, "total_messages", json_integer(seq));
    json_object_set_new(m, "stats", json_pack("{s:i}", "api_calls", 7));
    json_object_set_new(m, "coverage", json_pack("{s:o, s:[]}", "ran", r, "skipped"));
    return m;
}

static json_t *completed(const fixture *f, const char *scan_id, const char *started_at, int seq,
                         const char *const *ran)
{
    return completed_of(f, scan_id, 1, started_at, seq, ran);
}

static json_t *failed_of(const fixture *f, const char *scan_id, int attempt,
                         const char *started_at, int seq, const char *error)
{
    json_t *m = message_of(f, scan_id, attempt, started_at, seq, "failed");

    json_object_set_new(m, "total_messages", json_integer(seq));
    json_object_set_new(m, "error", json_string(error));
    json_object_set_new(m, "error_kind", json_string("unavailable"));
    return m;
}

static fa_apply_result apply(json_t *m, char *reason, size_t reasonlen)
{
    char *text = json_dumps(m, JSON_COMPACT);
    fa_result_msg parsed;
    fa_apply_result r;

    json_decref(m);
    if (fa_message_parse(&parsed, text, strlen(text), cat, reason, reasonlen) != 0)
        fail_msg("message refused: %s", reason);
    free(text);
    r = fa_ingest_apply(db, &parsed, cat, reason, reasonlen);
    fa_message_clear(&parsed);
    return r;
}

static void apply_ok(json_t *m)
{
    char reason[512] = "";
    fa_apply_result r = apply(m, reason, sizeof(reason));

    if (r != FA_APPLY_APPLIED)
        fail_msg("apply: result %d: %s", (int)r, reason);
}

static const char *instance_state(const fixture *f, const char *type, const char *asset,
                                  char *buf, size_t len)
{
    const char *params[] = {f->integration_id, type, asset};

    return value(buf, len,
                 "SELECT i.state FROM finding_instances i JOIN findings f ON f.id = i.finding_id"
                 " WHERE f.integration_id = $1 AND f.finding_type = $2 AND i.asset_id = $3",
                 3, params);
}

static long instance_count(const fixture *f, const char *type)
{
    char buf[32];
    const char *params[] = {f->integration_id, type};

    value(buf, sizeof(buf),
          "SELECT instance_count FROM findings WHERE integration_id = $1 AND finding_type = $2",
          2, params);
    return buf[0] ? atol(buf) : -1;
}

static void test_scan_lifecycle_resolve_and_reopen(void **state)
{
    fixture *f = *state;
    char s1[37], s2[37], s3[37], buf[256], reason[256];
    const char *t1 = "2026-01-01T00:00:00.000001Z";
    const char *t2 = "2026-01-02T00:00:00Z";
    const char *t3 = "2026-01-03T00:00:00Z";

    /* Scan 1: two members without 2FA, one public repository. */
    new_scan(f, s1, t1);
    const char *e1[] = {T_2FA "|alice|1", T_2FA "|bob|1", T_PUBLIC "|acme/api|1", NULL};
    apply_ok(findings(f, s1, t1, 1, e1));
    /* Redelivered: a duplicate changes nothing. */
    assert_int_equal(apply(findings(f, s1, t1, 1, e1), reason, sizeof(reason)),
                     FA_APPLY_DUPLICATE);
    const char *ran_all[] = {T_2FA, T_PUBLIC, NULL};
    apply_ok(completed(f, s1, t1, 2, ran_all));
    assert_int_equal(instance_count(f, T_2FA), 2);
    assert_int_equal(instance_count(f, T_PUBLIC), 1);
    const char *ps1[] = {s1};
    assert_string_equal(value(buf, sizeof(buf), "SELECT status FROM scans WHERE id = $1", 1, ps1),
                        "succeeded");
    assert_string_equal(value(buf, sizeof(buf), "SELECT stats->>'api_calls' FROM scans WHERE id = $1",
                              1, ps1),
                        "7");
    assert_string_equal(value(buf, sizeof(buf), "SELECT coverage->'ran'->>0 FROM scans WHERE id = $1",
                              1, ps1),
                        T_2FA);
    const char *pi[] = {f->integration_id};
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT health || ',' || last_scan_status || ','"
                              " || (last_scan_at IS NOT NULL) FROM integrations WHERE id = $1",
                              1, pi),
                        "healthy,succeeded,true");
    assert_string_equal(value(buf, sizeof(buf), "SELECT severity FROM findings WHERE"
                              " integration_id = $1 AND finding_type = '" T_2FA "'", 1, pi),
                        "high");

    /* Scan 2: bob fixed; the public-repository check was skipped (not in ran). */
    new_scan(f, s2, t2);
    const char *e2[] = {T_2FA "|alice|2", NULL};
    apply_ok(findings(f, s2, t2, 1, e2));
    const char *ran_2fa[] = {T_2FA, NULL};
    apply_ok(completed(f, s2, t2, 2, ran_2fa));
    assert_string_equal(instance_state(f, T_2FA, "bob", buf, sizeof(buf)), "resolved");
    assert_string_equal(instance_state(f, T_2FA, "alice", buf, sizeof(buf)), "active");
    assert_string_equal(instance_state(f, T_PUBLIC, "acme/api", buf, sizeof(buf)), "active");
    assert_int_equal(instance_count(f, T_2FA), 1);
    assert_int_equal(instance_count(f, T_PUBLIC), 1);

    /* The user hides alice (and the finding's count follows, as triage recounts it). Scan 3
     * sees alice and bob again: bob reopens, alice stays hidden (and is not counted). */
    const char *ph[] = {f->integration_id};
    exec_ok("UPDATE finding_instances SET state = 'hidden' WHERE integration_id = $1"
            " AND asset_id = 'alice'", 1, ph);
    exec_ok("UPDATE findings f SET instance_count = (SELECT count(*) FROM finding_instances i"
            " WHERE i.finding_id = f.id AND i.state = 'active') WHERE integration_id = $1",
            1, ph);
    new_scan(f, s3, t3);
    const char *e3[] = {T_2FA "|alice|3", T_2FA "|bob|3", NULL};
    apply_ok(findings(f, s3, t3, 1, e3));
    assert_string_equal(instance_state(f, T_2FA, "bob", buf, sizeof(buf)), "active");
    assert_string_equal(instance_state(f, T_2FA, "alice", buf, sizeof(buf)), "hidden");
    assert_int_equal(instance_count(f, T_2FA), 1);
    const char *pb[] = {f->integration_id};
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT (resolved_at IS NULL) || ',' || (details->>'n')"
                              "  FROM finding_instances WHERE integration_id = $1 AND asset_id = 'bob'",
                              1, pb),
                        "true,3");
    /* Completing scan 3 leaves the hidden alice hidden. */
    apply_ok(completed(f, s3, t3, 2, ran_2fa));
    assert_string_equal(instance_state(f, T_2FA, "alice", buf, sizeof(buf)), "hidden");

    /* The timeline, each transition once (the duplicate delivery above added nothing), with
     * the scan that caused it: three detected by scan 1, bob resolved by scan 2 and reopened
     * by scan 3. The hidden alice seen again is no transition. */
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT string_agg(i.asset_id || ':' || e.event || ':' ||"
                              "       (e.scan_id = CASE e.event WHEN 'detected' THEN $2::uuid"
                              "        WHEN 'resolved' THEN $3::uuid ELSE $4::uuid END),"
                              "        ',' ORDER BY CASE e.event WHEN 'detected' THEN 0"
                              "        WHEN 'resolved' THEN 1 ELSE 2 END, i.asset_id)"
                              "  FROM finding_events e JOIN finding_instances i"
                              "    ON i.id = e.instance_id WHERE i.integration_id = $1",
                              4, (const char *[]){f->integration_id, s1, s2, s3}),
                        "acme/api:detected:true,alice:detected:true,bob:detected:true,"
                        "bob:resolved:true,bob:reopened:true");
}

static void test_not_seen_hidden_stays_hidden(void **state)
{
    fixture *f = *state;
    char s1[37], s2[37], buf[64];
    const char *t1 = "2026-02-01T00:00:00Z", *t2 = "2026-02-02T00:00:00Z";
    const char *ran[] = {T_2FA, NULL};

    new_scan(f, s1, t1);
    const char *e1[] = {T_2FA "|carol", NULL};
    apply_ok(findings(f, s1, t1, 1, e1));
    apply_ok(completed(f, s1, t1, 2, ran));
    const char *p[] = {f->integration_id};
    exec_ok("UPDATE finding_instances SET state = 'hidden' WHERE integration_id = $1", 1, p);
    new_scan(f, s2, t2);
    apply_ok(completed(f, s2, t2, 1, ran));
    assert_string_equal(instance_state(f, T_2FA, "carol", buf, sizeof(buf)), "hidden");
    assert_int_equal(instance_count(f, T_2FA), 0);
}

/* Details are kept as the scanner wrote them (a json column, migration 0014): the text
 * comes back with its members in the order sent, not in jsonb's. */
static void test_details_kept_as_sent(void **state)
{
    fixture *f = *state;
    char scan_id[37], buf[256];
    const char *t = "2026-03-01T00:00:00Z";
    const char *e[] = {T_PUBLIC "|acme/web", NULL};
    json_t *m;

    new_scan(f, scan_id, t);
    m = findings(f, scan_id, t, 1, e);
    json_object_set_new(json_array_get(json_object_get(m, "findings"), 0), "details",
                        json_pack("{s:s, s:[i, {s:n}], s:s}", "zeta", "z", "alpha", 1, "b",
                                  "note", "caf\xc3\xa9 \"x\""));
    apply_ok(m);
    const char *p[] = {f->integration_id};
    assert_string_equal(
        value(buf, sizeof(buf),
              "SELECT details::text FROM finding_instances WHERE integration_id = $1", 1, p),
        "{\"zeta\":\"z\",\"alpha\":[1,{\"b\":null}],\"note\":\"caf\xc3\xa9 \\\"x\\\"\"}");
}

static void test_late_message_of_older_scan_changes_nothing(void **state)
{
    fixture *f = *state;
    char old_scan[37], new_scan_id[37], buf[128];
    const char *t_old = "2026-03-01T00:00:00Z", *t_new = "2026-03-02T00:00:00Z";

    new_scan(f, old_scan, t_old);
    new_scan(f, new_scan_id, t_new);
    const char *e_new[] = {T_PUBLIC "|acme/web|2", NULL};
    const char *e_old[] = {T_PUBLIC "|acme/web|1", NULL};
    apply_ok(findings(f, new_scan_id, t_new, 1, e_new));
    apply_ok(findings(f, old_scan, t_old, 1, e_old));
    const char *p[] = {f->integration_id};
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT details->>'n' FROM finding_instances WHERE integration_id = $1",
                              1, p),
                        "2");
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT last_scan_id::text = '' || (SELECT id FROM scans WHERE"
                              " started_at = '2026-03-02T00:00:00Z' AND integration_id = $1)"
                              "  FROM finding_instances WHERE integration_id = $1",
                              1, p),
                        "t");
}

static void test_repeated_asset_in_one_message_and_big_batch(void **state)
{
    fixture *f = *state;
    char s[37], buf[64];
    const char *t = "2026-04-01T00:00:00Z";

    new_scan(f, s, t);
    /* The same asset twice: one instance, the last sighting wins. */
    const char *e[] = {T_PUBLIC "|acme/x|1", T_PUBLIC "|acme/x|2", NULL};
    apply_ok(findings(f, s, t, 1, e));
    assert_int_equal(instance_count(f, T_PUBLIC), 1);
    const char *p[] = {f->integration_id};
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT details->>'n' FROM finding_instances WHERE integration_id = $1",
                              1, p),
                        "2");

    /* 500 instances in one message, one statement. */
    json_t *m = message(f, s, t, 2, "findings");
    json_t *list = json_array();
    for (int i = 0; i < 500; i++) {
        char asset[32];
        snprintf(asset, sizeof(asset), "member-%03d", i);
        json_array_append_new(list, json_pack("{s:s, s:{s:s, s:s}}", "finding_type", T_2FA,
                                              "asset", "kind", "member", "id", asset));
    }
    json_object_set_new(m, "findings", list);
    apply_ok(m);
    assert_int_equal(instance_count(f, T_2FA), 500);
    const char *ps[] = {s};
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT instances FROM ingested_batches WHERE scan_id = $1 AND seq = 2",
                              1, ps),
                        "500");
}

static void parse_ok(json_t *m, fa_result_msg *out)
{
    char *text = json_dumps(m, JSON_COMPACT);
    char reason[256] = "";

    json_decref(m);
    if (fa_message_parse(out, text, strlen(text), cat, reason, sizeof(reason)) != 0)
        fail_msg("message refused: %s", reason);
    free(text);
}

static fa_apply_result apply_batch(const fa_result_msg *const *batch, size_t n,
                                   size_t *duplicates)
{
    char reason[256] = "";

    return fa_ingest_apply_findings(db, batch, n, duplicates, reason, sizeof(reason));
}

/* Several findings messages in one transaction: one applied before is skipped, an asset
 * seen by two of them keeps the later sighting, counts and events are those of the
 * messages applied one by one, and the completed message finds every message recorded. */
static void test_batch_of_findings_messages(void **state)
{
    fixture *f = *state;
    char s[37], other[37], buf[64];
    const char *t = "2026-04-02T00:00:00Z";
    const char *e1[] = {T_PUBLIC "|acme/a|1", T_2FA "|alice|1", NULL};
    const char *e2[] = {T_PUBLIC "|acme/b|1", NULL};
    const char *e3[] = {T_PUBLIC "|acme/a|3", T_2FA "|bob|1", NULL};
    fa_result_msg ms[3];
    const fa_result_msg *batch[] = {&ms[0], &ms[1], &ms[2]};
    size_t duplicates = 99;

    new_scan(f, s, t);
    apply_ok(findings(f, s, t, 2, e2)); /* seq 2 arrived before, alone */
    parse_ok(findings(f, s, t, 1, e1), &ms[0]);
    parse_ok(findings(f, s, t, 2, e2), &ms[1]);
    parse_ok(findings(f, s, t, 3, e3), &ms[2]);
    assert_int_equal(apply_batch(batch, 3, &duplicates), FA_APPLY_APPLIED);
    assert_int_equal(duplicates, 1);
    assert_int_equal(instance_count(f, T_PUBLIC), 2);
    assert_int_equal(instance_count(f, T_2FA), 2);
    const char *p[] = {f->integration_id};
    /* acme/a: seen by messages 1 and 3, with n = 1 then n = 3. */
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT string_agg(asset_id || '=' || (details->>'n'), ','"
                              "                  ORDER BY asset_id)"
                              "  FROM finding_instances WHERE integration_id = $1",
                              1, p),
                        "acme/a=3,acme/b=1,alice=1,bob=1");
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT count(*) FROM finding_events e JOIN findings f"
                              "    ON f.id = e.finding_id"
                              " WHERE f.integration_id = $1 AND e.event = 'detected'",
                              1, p),
                        "4");
    const char *ps[] = {s};
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT string_agg(seq || ':' || instances, ',' ORDER BY seq)"
                              "  FROM ingested_batches WHERE scan_id = $1",
                              1, ps),
                        "1:2,2:1,3:2");

    /* Applied again (a redelivery): all three are duplicates and nothing changes. */
    assert_int_equal(apply_batch(batch, 3, &duplicates), FA_APPLY_APPLIED);
    assert_int_equal(duplicates, 3);
    assert_int_equal(instance_count(f, T_PUBLIC), 2);
    for (int i = 0; i < 3; i++)
        fa_message_clear(&ms[i]);

    /* A batch mixing two scans is refused whole, before touching the database. */
    new_scan(f, other, t);
    parse_ok(findings(f, s, t, 4, e1), &ms[0]);
    parse_ok(findings(f, other, t, 1, e1), &ms[1]);
    assert_int_equal(apply_batch(batch, 2, &duplicates), FA_APPLY_REJECTED);
    assert_int_equal(duplicates, 0);
    fa_message_clear(&ms[0]);
    fa_message_clear(&ms[1]);
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT count(*) FROM ingested_batches WHERE scan_id = $1 AND seq = 4",
                              1, ps),
                        "0");

    const char *ran[] = {T_PUBLIC, T_2FA, NULL};
    apply_ok(completed(f, s, t, 4, ran));
    assert_string_equal(value(buf, sizeof(buf), "SELECT status FROM scans WHERE id = $1", 1, ps),
                        "succeeded");
    assert_int_equal(instance_count(f, T_PUBLIC), 2);
    assert_int_equal(instance_count(f, T_2FA), 2);
}

static void test_incomplete_scan_is_not_applied(void **state)
{
    fixture *f = *state;
    char s0[37], s[37], buf[128], reason[256] = "";
    const char *t0 = "2026-05-01T00:00:00Z", *t = "2026-05-02T00:00:00Z";
    const char *ran[] = {T_2FA, NULL};

    new_scan(f, s0, t0);
    const char *e0[] = {T_2FA "|dave", NULL};
    apply_ok(findings(f, s0, t0, 1, e0));
    apply_ok(completed(f, s0, t0, 2, ran));

    /* Seq 2 of 3 never arrived: completing would resolve dave on partial evidence. */
    new_scan(f, s, t);
    const char *e1[] = {T_PUBLIC "|acme/z", NULL};
    apply_ok(findings(f, s, t, 1, e1));
    assert_int_equal(apply(completed(f, s, t, 3, ran), reason, sizeof(reason)),
                     FA_APPLY_INCOMPLETE);
    assert_string_equal(instance_state(f, T_2FA, "dave", buf, sizeof(buf)), "active");
    const char *ps[] = {s};
    assert_string_equal(value(buf, sizeof(buf), "SELECT status FROM scans WHERE id = $1", 1, ps),
                        "running");
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT count(*) FROM ingested_batches WHERE scan_id = $1", 1, ps),
                        "1");

    /* Given up on: the scan fails, nothing is resolved, a redelivery is a duplicate. */
    json_t *m = completed(f, s, t, 3, ran);
    char *text = json_dumps(m, JSON_COMPACT);
    fa_result_msg parsed;
    json_decref(m);
    assert_int_equal(fa_message_parse(&parsed, text, strlen(text), cat, reason, sizeof(reason)), 0);
    free(text);
    assert_int_equal(fa_ingest_fail_scan(db, &parsed, "incomplete scan results", reason,
                                         sizeof(reason)),
                     FA_APPLY_APPLIED);
    assert_int_equal(fa_ingest_apply(db, &parsed, cat, reason, sizeof(reason)),
                     FA_APPLY_DUPLICATE);
    fa_message_clear(&parsed);
    assert_string_equal(value(buf, sizeof(buf), "SELECT status || ':' || error FROM scans WHERE id = $1",
                              1, ps),
                        "failed:incomplete scan results");
    assert_string_equal(instance_state(f, T_2FA, "dave", buf, sizeof(buf)), "active");
}

/* An unknown error kind gets no hint; an internal one says where to look. */
static void test_health_reason_hints(void **state)
{
    char buf[512];

    (void)state;
    fa_ingest_health_reason(buf, sizeof(buf), "i-1", "s-1", "internal", "boom");
    assert_string_equal(buf, "boom; the scan will be retried at the next interval; if it keeps "
                             "failing, look for scan_id s-1 in the scanner-worker log");
    fa_ingest_health_reason(buf, sizeof(buf), "i-1", "s-1", "cancelled", "integration is paused");
    assert_string_equal(buf, "integration is paused");
    fa_ingest_health_reason(buf, sizeof(buf), "i-1", "s-1", "unavailable", "");
    assert_non_null(strstr(buf, "the scan failed; the scan will be retried"));
    /* Truncated, never overflowing. */
    fa_ingest_health_reason(buf, 16, "i-1", "s-1", "auth", "GitHub rejected the credentials");
    assert_int_equal(strlen(buf), 15);
}

static void test_failed_scans_set_health(void **state)
{
    fixture *f = *state;
    char s1[37], s2[37], s3[37], buf[512], buf_expected[512];
    const char *t = "2026-06-01T00:00:00Z";
    const char *pi[] = {f->integration_id};

    new_scan(f, s1, t);
    json_t *m = message(f, s1, t, 1, "failed");
    json_object_set_new(m, "total_messages", json_integer(1));
    json_object_set_new(m, "error", json_string("GitHub rejected the credentials: Bad credentials"));
    json_object_set_new(m, "error_kind", json_string("auth"));
    apply_ok(m);
    snprintf(buf_expected, sizeof(buf_expected),
             "needs_reauthorization:GitHub rejected the credentials: Bad credentials; "
             "reauthorize the integration (POST /v1/integrations/%s/reauthorize) with valid "
             "credentials that hold the permissions GET /v1/providers lists:failed",
             f->integration_id);
    const char *ps[] = {s1};
    /* The scan keeps the provider's error; the integration's reason adds what to do. */
    assert_string_equal(value(buf, sizeof(buf), "SELECT status || ':' || error FROM scans WHERE id = $1",
                              1, ps),
                        "failed:GitHub rejected the credentials: Bad credentials");
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT health || ':' || health_reason || ':' || last_scan_status"
                              "  FROM integrations WHERE id = $1", 1, pi),
                        buf_expected);

    new_scan(f, s2, t);
    m = message(f, s2, t, 1, "failed");
    json_object_set_new(m, "total_messages", json_integer(1));
    json_object_set_new(m, "error", json_string("GitHub answered 500 repeatedly (GET /orgs/acme: "
                                                "Server Error)"));
    json_object_set_new(m, "error_kind", json_string("unavailable"));
    apply_ok(m);
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT health || ':' || health_reason FROM integrations WHERE id = $1",
                              1, pi),
                        "unhealthy:GitHub answered 500 repeatedly (GET /orgs/acme: Server Error); "
                        "the scan will be retried at the next interval, or start one with "
                        "scan-now once the provider answers again");

    /* A succeeded scan makes it healthy and clears the reason. */
    char s4[37];
    const char *none[] = {NULL};
    new_scan(f, s4, t);
    apply_ok(completed(f, s4, t, 1, none));
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT health || ':' || (health_reason IS NULL)"
                              "  FROM integrations WHERE id = $1", 1, pi),
                        "healthy:true");

    /* Paused meanwhile: the health says paused whatever the scan's fate; a cancelled scan
     * records its status. */
    exec_ok("UPDATE integrations SET paused = true, health = 'paused' WHERE id = $1", 1, pi);
    new_scan(f, s3, t);
    m = message(f, s3, t, 1, "failed");
    json_object_set_new(m, "total_messages", json_integer(1));
    json_object_set_new(m, "error", json_string("integration is paused"));
    json_object_set_new(m, "error_kind", json_string("cancelled"));
    apply_ok(m);
    const char *ps3[] = {s3};
    assert_string_equal(value(buf, sizeof(buf), "SELECT status FROM scans WHERE id = $1", 1, ps3),
                        "cancelled");
    assert_string_equal(value(buf, sizeof(buf), "SELECT health FROM integrations WHERE id = $1", 1, pi),
                        "paused");
}

static void test_unknown_scan_deleted_integration_and_wrong_provider(void **state)
{
    fixture *f = *state;
    char s[37], unknown[37], reason[256] = "";
    const char *t = "2026-07-01T00:00:00Z";
    const char *e[] = {T_PUBLIC "|acme/q", NULL};

    /* A scan the database does not know for an existing integration: dead-letter. */
    casb_uuid_v4(unknown);
    assert_int_equal(apply(findings(f, unknown, t, 1, e), reason, sizeof(reason)),
                     FA_APPLY_REJECTED);
    assert_non_null(strstr(reason, "unknown scan"));

    /* The integration's provider differs from the message's. */
    new_scan(f, s, t);
    const char *pi[] = {f->integration_id};
    exec_ok("UPDATE integrations SET provider = 'gitlab' WHERE id = $1", 1, pi);
    assert_int_equal(apply(findings(f, s, t, 1, e), reason, sizeof(reason)), FA_APPLY_REJECTED);
    assert_non_null(strstr(reason, "provider"));
    exec_ok("UPDATE integrations SET provider = 'github' WHERE id = $1", 1, pi);

    /* Deleted integration (its scans go with it): dropped, nothing written, whatever the
     * kind: no finding, no scan outcome, no health for a row that is gone. */
    exec_ok("DELETE FROM integrations WHERE id = $1", 1, pi);
    assert_int_equal(apply(findings(f, s, t, 1, e), reason, sizeof(reason)), FA_APPLY_DROPPED);
    const char *none[] = {NULL};
    assert_int_equal(apply(completed(f, s, t, 2, none), reason, sizeof(reason)),
                     FA_APPLY_DROPPED);
    json_t *failed = message(f, s, t, 2, "failed");
    json_object_set_new(failed, "total_messages", json_integer(2));
    json_object_set_new(failed, "error", json_string("GitHub answered 500 repeatedly"));
    json_object_set_new(failed, "error_kind", json_string("unavailable"));
    assert_int_equal(apply(failed, reason, sizeof(reason)), FA_APPLY_DROPPED);
    char buf[32];
    const char *ps[] = {s};
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT count(*) FROM ingested_batches WHERE scan_id = $1", 1, ps),
                        "0");
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT (SELECT count(*) FROM integrations WHERE id = $1)"
                              "     + (SELECT count(*) FROM scans WHERE integration_id = $1)"
                              "     + (SELECT count(*) FROM findings WHERE integration_id = $1)"
                              "     + (SELECT count(*) FROM finding_instances"
                              "         WHERE integration_id = $1)",
                              1, pi),
                        "0");
}

/* A queued scan, as casb_enqueue_scan leaves it. */
static void new_queued_scan(const fixture *f, char scan_id[37])
{
    casb_uuid_v4(scan_id);
    const char *params[] = {scan_id, CASB_DEFAULT_ACCOUNT_ID, f->integration_id};
    exec_ok("INSERT INTO scans (id, account_id, integration_id, reason)"
            " VALUES ($1, $2, $3, 'manual')", 3, params);
}

/* Takes the scan's lease with scanner-worker's own SQL, after expiring the current lease (its
 * worker died). Returns the attempt; started_at receives the attempt's start, the
 * scan_started_at of its messages. */
static int take_over(const fixture *f, const char *scan_id, const char *worker_id,
                     char started_at[48])
{
    char err[256] = "";
    int attempt = 0;
    const char *params[] = {scan_id};

    exec_ok("UPDATE scans SET lease_until = now() - interval '1 second'"
            " WHERE id = $1 AND status = 'running'", 1, params);
    if (sw_store_take_lease(db, scan_id, f->integration_id, worker_id, 120, &attempt, started_at,
                            48, err, sizeof(err)) != 1)
        fail_msg("sw_store_take_lease: %s", err);
    return attempt;
}

/* A worker dies mid-scan; another one takes the scan over and rescans from the start,
 * numbering its messages from 1 again. Its messages are not mistaken for duplicates of the
 * dead attempt's, its completed resolves what only the dead attempt saw, and the dead
 * attempt's late completed changes nothing. */
static void test_taken_over_scan_resolves_by_its_own_attempt(void **state)
{
    fixture *f = *state;
    char s[37], t1[48], t2[48], buf[256], reason[256] = "";
    const char *ran[] = {T_2FA, NULL};
    const char *ps[] = {s};
    const char *pi[] = {f->integration_id};
    int a1, a2;

    new_queued_scan(f, s);
    a1 = take_over(f, s, "worker-a", t1);
    assert_int_equal(a1, 1);
    const char *e1[] = {T_2FA "|A|1", T_2FA "|B|1", NULL};
    apply_ok(findings_of(f, s, a1, t1, 1, e1));
    assert_int_equal(instance_count(f, T_2FA), 2);

    /* worker-a dies before its completed; worker-b takes the scan over. */
    a2 = take_over(f, s, "worker-b", t2);
    assert_int_equal(a2, 2);
    assert_true(strcmp(t2, t1) > 0);
    const char *e2[] = {T_2FA "|A|2", NULL};
    apply_ok(findings_of(f, s, a2, t2, 1, e2));
    const char *pa[] = {f->integration_id};
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT details->>'n' FROM finding_instances"
                              " WHERE integration_id = $1 AND asset_id = 'A'", 1, pa),
                        "2");
    apply_ok(completed_of(f, s, a2, t2, 2, ran));
    assert_string_equal(instance_state(f, T_2FA, "B", buf, sizeof(buf)), "resolved");
    assert_string_equal(instance_state(f, T_2FA, "A", buf, sizeof(buf)), "active");
    assert_int_equal(instance_count(f, T_2FA), 1);
    assert_string_equal(value(buf, sizeof(buf), "SELECT status FROM scans WHERE id = $1", 1, ps),
                        "succeeded");
    assert_string_equal(value(buf, sizeof(buf), "SELECT health FROM integrations WHERE id = $1",
                              1, pi),
                        "healthy");

    /* The dead attempt's completed shows up late: recorded, and nothing else changes. */
    json_t *late = completed_of(f, s, a1, t1, 2, ran);
    json_object_set_new(late, "stats", json_pack("{s:i}", "api_calls", 99));
    assert_int_equal(apply(late, reason, sizeof(reason)), FA_APPLY_SUPERSEDED);
    assert_string_equal(instance_state(f, T_2FA, "B", buf, sizeof(buf)), "resolved");
    assert_string_equal(instance_state(f, T_2FA, "A", buf, sizeof(buf)), "active");
    assert_int_equal(instance_count(f, T_2FA), 1);
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT status || ':' || (stats->>'api_calls') FROM scans"
                              " WHERE id = $1", 1, ps),
                        "succeeded:7");
    late = completed_of(f, s, a1, t1, 2, ran);
    assert_int_equal(apply(late, reason, sizeof(reason)), FA_APPLY_DUPLICATE);
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT string_agg(attempt || ':' || seq || ':' || kind, ','"
                              "                  ORDER BY attempt, seq)"
                              "  FROM ingested_batches WHERE scan_id = $1", 1, ps),
                        "1:1:findings,1:2:completed,2:1:findings,2:2:completed");
}

/* While a newer attempt runs, an older attempt's end messages neither end nor fail the
 * scan (nor report its progress), and a completed waits for the earlier messages of its own
 * attempt: those of another attempt do not count. */
static void test_superseded_attempt_cannot_end_the_scan(void **state)
{
    fixture *f = *state;
    char s[37], t1[48], t2[48], t3[48], buf[256], reason[256] = "";
    const char *ran[] = {T_2FA, NULL};
    const char *ps[] = {s};
    const char *pi[] = {f->integration_id};
    int a1, a2, a3;

    new_queued_scan(f, s);
    a1 = take_over(f, s, "worker-a", t1);
    const char *e1[] = {T_2FA "|A|1", T_2FA "|B|1", NULL};
    apply_ok(findings_of(f, s, a1, t1, 1, e1));
    a2 = take_over(f, s, "worker-b", t2);
    assert_int_equal(a2, a1 + 1);

    /* Attempt 1 was not dead after all (a long pause): its progress and completed arrive
     * while attempt 2 runs. */
    json_t *p = message_of(f, s, a1, t1, 2, "progress");
    json_object_set_new(p, "stats", json_pack("{s:i}", "assets_seen", 5));
    apply_ok(p);
    assert_string_equal(value(buf, sizeof(buf), "SELECT stats FROM scans WHERE id = $1", 1, ps),
                        "(null)");
    assert_int_equal(apply(completed_of(f, s, a1, t1, 3, ran), reason, sizeof(reason)),
                     FA_APPLY_SUPERSEDED);
    assert_string_equal(value(buf, sizeof(buf), "SELECT status FROM scans WHERE id = $1", 1, ps),
                        "running");
    assert_string_equal(value(buf, sizeof(buf),
                              "SELECT health || ':' || coalesce(last_scan_status, '-')"
                              "  FROM integrations WHERE id = $1", 1, pi),
                        "initializing:-");
    /* The current attempt's progress is recorded. */
    p = message_of(f, s, a2, t2, 1, "progress");
    json_object_set_new(p, "stats", json_pack("{s:i}", "assets_seen", 6));
    apply_ok(p);
    assert_string_equal(value(buf, sizeof(buf), "SELECT stats->>'assets_seen' FROM scans"
                              " WHERE id = $1", 1, ps),
                        "6");

    /* Attempt 2 sees A and is taken over in turn; its failed arrives under attempt 3. */
    const char *e2[] = {T_2FA "|A|2", NULL};
    apply_ok(findings_of(f, s, a2, t2, 2, e2));
    a3 = take_over(f, s, "worker-c", t3);
    assert_int_equal(a3, a2 + 1);
    assert_int_equal(apply(failed_of(f, s, a2, t2, 3, "GitHub answered 500"), reason,
                           sizeof(reason)),
                     FA_APPLY_SUPERSEDED);
    assert_string_equal(value(buf, sizeof(buf), "SELECT status FROM scans WHERE id = $1", 1, ps),
                        "running");
    assert_string_equal(value(buf, sizeof(buf), "SELECT health FROM integrations WHERE id = $1",
                              1, pi),
                        "initializing");

    /* Attempt 3's seq 1 is missing: its completed (seq 2) is incomplete, even though seq 1
     * of attempts 1 and 2 were applied. */
    assert_int_equal(apply(completed_of(f, s, a3, t3, 2, ran), reason, sizeof(reason)),
                     FA_APPLY_INCOMPLETE);
    assert_string_equal(instance_state(f, T_2FA, "B", buf, sizeof(buf)), "active");
    /* Giving up on an incomplete attempt that was taken over meanwhile leaves the scan to
     * the current attempt. */
    json_t *m = completed_of(f, s, a2, t2, 4, ran);
    char *text = json_dumps(m, JSON_COMPACT);
    fa_result_msg parsed;
    json_decref(m);
    assert_int_equal(fa_message_parse(&parsed, text, strlen(text), cat, reason, sizeof(reason)), 0);
    free(text);
    assert_int_equal(fa_ingest_fail_scan(db, &parsed, "incomplete scan results", reason,
                                         sizeof(reason)),
                     FA_APPLY_SUPERSEDED);
    fa_message_clear(&parsed);
    assert_string_equal(value(buf, sizeof(buf), "SELECT status FROM scans WHERE id = $1", 1, ps),
                        "running");

    /* Attempt 3 ends the scan: A (seen by it) stays, B (seen only by attempt 1) resolves. */
    const char *e3[] = {T_2FA "|A|3", NULL};
    apply_ok(findings_of(f, s, a3, t3, 1, e3));
    apply_ok(completed_of(f, s, a3, t3, 2, ran));
    assert_string_equal(value(buf, sizeof(buf), "SELECT status FROM scans WHERE id = $1", 1, ps),
                        "succeeded");
    assert_string_equal(instance_state(f, T_2FA, "A", buf, sizeof(buf)), "active");
    assert_string_equal(instance_state(f, T_2FA, "B", buf, sizeof(buf)), "resolved");
    assert_string_equal(value(buf, sizeof(buf), "SELECT health FROM integrations WHERE id = $1",
                              1, pi),
                        "healthy");
}

/* Deliveries of a webhook: "event_type|asset" of each, sorted, joined by spaces. */
static const char *deliveries(const char *webhook_id, char *buf, size_t len)
{
    const char *params[] = {webhook_id};

    return value(buf, len,
                 "SELECT coalesce(string_agg(d.event_type || '|' || i.asset_id, ' '"
                 "                           ORDER BY d.event_type, i.asset_id), '')"
                 "  FROM webhook_deliveries d JOIN finding_instances i ON i.id = d.instance_id"
                 " WHERE d.webhook_id = $1",
                 1, params);
}

static void add_webhook(const fixture *f, char id[37], const char *severities, int enabled)
{
    casb_uuid_v4(id);
    const char *params[] = {id, CASB_DEFAULT_ACCOUNT_ID, severities, f->integration_id,
                            enabled ? "true" : "false"};
    exec_ok("INSERT INTO webhooks (id, account_id, name, url, auth_type, severities,"
            " integration_ids, enabled, created_by)"
            " VALUES ($1, $2, 'test_findings_ingest', 'https://example.com/', 'none',"
            "         $3::text[], ARRAY[$4::uuid], $5::boolean, 'test')",
            5, params);
}

/* Each new or reopened instance that matches an enabled webhook is queued once for it, in
 * the transaction that records it: a redelivered message queues nothing more, an instance
 * seen again while active nothing, an ignored finding nothing. */
static void test_webhook_deliveries_queued_once(void **state)
{
    fixture *f = *state;
    char s1[37], s2[37], s3[37], s4[37], high[37], off[37], all[37], buf[1024], reason[256];
    const char *t1 = "2026-02-01T00:00:00Z", *t2 = "2026-02-02T00:00:00Z";
    const char *t3 = "2026-02-03T00:00:00Z", *t4 = "2026-02-04T00:00:00Z";
    const char *ran[] = {T_2FA, T_PUBLIC, NULL};

    add_webhook(f, high, "{high}", 1);
    add_webhook(f, off, "{}", 0);
    add_webhook(f, all, "{}", 1);

    new_scan(f, s1, t1);
    const char *e1[] = {T_2FA "|alice", T_2FA "|bob", T_PUBLIC "|acme/api", NULL};
    apply_ok(findings(f, s1, t1, 1, e1));
    assert_int_equal(apply(findings(f, s1, t1, 1, e1), reason, sizeof(reason)),
                     FA_APPLY_DUPLICATE);
    apply_ok(completed(f, s1, t1, 2, ran));
    assert_string_equal(deliveries(high, buf, sizeof(buf)),
                        "instance.detected|alice instance.detected|bob");
    assert_string_equal(deliveries(off, buf, sizeof(buf)), "");
    assert_int_equal(strlen(deliveries(all, buf, sizeof(buf))) > 0, 1);

    /* bob fixed, then back: one reopened delivery; alice, still active, none. */
    new_scan(f, s2, t2);
    const char *e2[] = {T_2FA "|alice", T_PUBLIC "|acme/api", NULL};
    apply_ok(findings(f, s2, t2, 1, e2));
    apply_ok(completed(f, s2, t2, 2, ran));
    new_scan(f, s3, t3);
    apply_ok(findings(f, s3, t3, 1, e1));
    apply_ok(completed(f, s3, t3, 2, ran));
    assert_string_equal(deliveries(high, buf, sizeof(buf)),
                        "instance.detected|alice instance.detected|bob"
                        " instance.reopened|bob");

    /* An ignored finding's new instance goes to no webhook. */
    const char *pi[] = {f->integration_id};
    exec_ok("UPDATE findings SET status = 'ignored' WHERE integration_id = $1"
            " AND finding_type = '" T_2FA "'", 1, pi);
    new_scan(f, s4, t4);
    const char *e4[] = {T_2FA "|alice", T_2FA "|bob", T_2FA "|carol", T_PUBLIC "|acme/api",
                        NULL};
    apply_ok(findings(f, s4, t4, 1, e4));
    apply_ok(completed(f, s4, t4, 2, ran));
    assert_string_equal(deliveries(high, buf, sizeof(buf)),
                        "instance.detected|alice instance.detected|bob"
                        " instance.reopened|bob");
    assert_null(strstr(deliveries(all, buf, sizeof(buf)), "carol"));
    assert_string_equal(deliveries(all, buf, sizeof(buf)),
                        "instance.detected|acme/api instance.detected|alice"
                        " instance.detected|bob instance.reopened|bob");

    const char *pw[] = {high, off, all};
    exec_ok("DELETE FROM webhooks WHERE id IN ($1, $2, $3)", 3, pw);
}

/* The events of a deleted integration's findings go with them (a trigger, not a foreign
 * key: migration 0011), also an event a concurrent transaction writes while the delete runs:
 * the writer locks the finding or instance it writes about, the delete waits for it and then
 * sees its event. Each writer below is the shape of a real one: triage hiding an instance
 * (locks only the instance) and ignoring a finding (locks the finding). */
static void test_events_go_with_their_findings(void **state)
{
    static const char *const writers[] = {
        "WITH t AS (UPDATE finding_instances i SET state = 'hidden' FROM findings f"
        "            WHERE i.finding_id = f.id AND f.integration_id = $1 AND i.asset_id = 'bob'"
        "            RETURNING i.id, i.finding_id)"
        " INSERT INTO finding_events (account_id, finding_id, instance_id, event, actor)"
        " SELECT $2::uuid, t.finding_id, t.id, 'hidden', 'test' FROM t",
        "WITH t AS (UPDATE findings SET status = 'ignored' WHERE integration_id = $1"
        "            AND finding_type = '" T_PUBLIC "' RETURNING id)"
        " INSERT INTO finding_events (account_id, finding_id, event, actor)"
        " SELECT $2::uuid, t.id, 'ignored', 'test' FROM t",
    };
    const char *url = getenv("CASB_TEST_DATABASE_URL");
    char buf[256], err[256] = "";

    (void)state;
    for (size_t w = 0; w < sizeof(writers) / sizeof(writers[0]); w++) {
        fixture *f = NULL;
        casb_db *writer = NULL;
        char s1[37], findings_of_it[1024];

        setup((void **)&f);
        new_scan(f, s1, "2026-01-01T00:00:00Z");
        const char *e1[] = {T_2FA "|alice|1", T_2FA "|bob|1", T_PUBLIC "|acme/api|1", NULL};
        apply_ok(findings(f, s1, "2026-01-01T00:00:00Z", 1, e1));
        const char *pi[] = {f->integration_id, CASB_DEFAULT_ACCOUNT_ID};
        value(findings_of_it, sizeof(findings_of_it),
              "SELECT array_agg(id)::text FROM findings WHERE integration_id = $1", 1, pi);
        const char *pf[] = {findings_of_it};
        static const char count_events[] =
            "SELECT count(*) FROM finding_events WHERE finding_id = ANY($1::uuid[])";
        assert_string_equal(value(buf, sizeof(buf), count_events, 1, pf), "3"); /* detected */

        /* The writer's transaction holds its event uncommitted... */
        assert_int_equal(casb_db_open(&writer, url, 5000, err, sizeof(err)), 0);
        assert_int_equal(casb_db_begin(writer, err, sizeof(err)), 0);
        assert_int_equal(casb_db_exec(writer, writers[w], 2, pi, NULL, err, sizeof(err)), 0);
        /* ...while the integration is deleted: the delete waits for the writer... */
        PGconn *conn = casb_db_conn(db);
        assert_int_equal(PQsendQueryParams(conn, "DELETE FROM integrations WHERE id = $1", 1,
                                           NULL, pi, NULL, NULL, 0), 1);
        for (int i = 0; i < 20; i++) {
            assert_int_equal(PQconsumeInput(conn), 1);
            assert_int_equal(PQisBusy(conn), 1);
            struct timespec ms10 = {0, 10 * 1000 * 1000};
            nanosleep(&ms10, NULL);
        }
        /* ...and, once it committed, deletes its event with the others. */
        assert_int_equal(casb_db_commit(writer, err, sizeof(err)), 0);
        PGresult *res;
        int deleted = 0;
        while ((res = PQgetResult(conn)) != NULL) {
            assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
            deleted += atoi(PQcmdTuples(res));
            PQclear(res);
        }
        assert_int_equal(deleted, 1);
        assert_string_equal(value(buf, sizeof(buf), count_events, 1, pf), "0");
        casb_db_close(writer);
        teardown((void **)&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_lifecycle_resolve_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_seen_hidden_stays_hidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_deliveries_queued_once, setup, teardown),
        cmocka_unit_test(test_events_go_with_their_findings),
        cmocka_unit_test_setup_teardown(test_details_kept_as_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_message_of_older_scan_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_repeated_asset_in_one_message_and_big_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_of_findings_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incomplete_scan_is_not_applied, setup, teardown),
        cmocka_unit_test(test_health_reason_hints),
        cmocka_unit_test_setup_teardown(test_failed_scans_set_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_scan_deleted_integration_and_wrong_provider,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_taken_over_scan_resolves_by_its_own_attempt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_superseded_attempt_cannot_end_the_scan, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
