/* The Google Workspace checks on snapshots in the shapes of the Directory, Drive, Calendar
 * and Gmail responses (google_internal.h), without any server. Each test asserts the exact
 * set of findings (type and asset id), on both sides of every boundary, and the coverage. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casb/json.h"
#include "google_internal.h"
#include "test_sink_recorder.h"

/* 2026-11-28T00:00:00Z */
#define NOW_S 1795824000LL

typedef struct {
    recorder rec;
    casb_google_eval ev;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    rec_init(&f->rec);
    casb_google_eval_init(&f->ev, &f->rec.sink, NOW_S, "C0123abc");
    assert_int_equal(casb_google_eval_add_domain(&f->ev, "Example.com"), 0);
    assert_int_equal(casb_google_eval_add_domain(&f->ev, "example-alias.net"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    casb_google_eval_cleanup(&f->ev);
    rec_free(&f->rec);
    free(f);
    return 0;
}

/* JSON written with single quotes for readability. */
static json_t *J(const char *text)
{
    char *s = strdup(text);
    json_error_t jerr;
    json_t *v;

    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    v = json_loads(s, 0, &jerr);
    if (!v)
        fail_msg("bad fixture (%s): %s", jerr.text, s);
    free(s);
    return v;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The recorded findings are exactly the "type asset_id" strings given (NULL-terminated;
 * the type without its "google_workspace." prefix), in any order; then forgets them. */
static void expect(fixture *f, ...)
{
    size_t n = json_array_size(f->rec.findings), m = 0;
    char *got[64], *want[64];
    const char *s;
    va_list ap;
    int equal;

    assert_true(n < 64);
    va_start(ap, f);
    while ((s = va_arg(ap, const char *)) != NULL) {
        assert_true(m < 64);
        want[m++] = (char *)s;
    }
    va_end(ap);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(f->rec.findings, i);

        assert_true(asprintf(&got[i], "%s %s", casb_json_str(x, "type") + 17,
                             casb_json_str(x, "id")) > 0);
    }
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
    assert_true(equal);
    json_array_clear(f->rec.findings);
}

static json_t *finding(fixture *f, const char *type, const char *id)
{
    json_t *x;
    size_t i;

    json_array_foreach(f->rec.findings, i, x) {
        if (strcmp(casb_json_str(x, "type") + 17, type) == 0 &&
            strcmp(casb_json_str(x, "id"), id) == 0)
            return x;
    }
    fail_msg("no finding %s %s", type, id);
    return NULL;
}

static void run(fixture *f, int (*check)(casb_google_eval *, const json_t *), const char *text)
{
    json_t *v = J(text);

    assert_int_equal(check(&f->ev, v), 0);
    json_decref(v);
}

/* A healthy user, plus the members of extra (an object's inside, without braces). */
static void user(fixture *f, const char *id, const char *extra)
{
    char buf[2048];

    snprintf(buf, sizeof(buf),
             "{'id':'%s','primaryEmail':'%s@example.com','isAdmin':false,"
             "'isDelegatedAdmin':false,'isEnrolledIn2Sv':true,'isEnforcedIn2Sv':true,"
             "'suspended':false,'archived':false,'lastLoginTime':'2026-11-27T00:00:00.000Z',"
             "'creationTime':'2020-01-01T00:00:00.000Z','recoveryEmail':'r@elsewhere.org',"
             "'recoveryPhone':'+15550100','isMailboxSetup':true%s%s}",
             id, id, extra[0] ? "," : "", extra);
    run(f, casb_google_check_user, buf);
}

/* ---- users ----------------------------------------------------------------------------- */

static void test_user_healthy_and_2sv(void **state)
{
    fixture *f = *state;
    json_t *x;

    user(f, "u1", "");
    expect(f, NULL);
    user(f, "u2", "'isEnrolledIn2Sv':false,'isEnforcedIn2Sv':false");
    user(f, "a1", "'isAdmin':true,'isEnrolledIn2Sv':false,'isMailboxSetup':false");
    user(f, "a2", "'isDelegatedAdmin':true,'isEnrolledIn2Sv':false");
    x = finding(f, "user.two_step_disabled", "u2");
    assert_string_equal(casb_json_str(x, "kind"), "user");
    assert_string_equal(casb_json_str(x, "name"), "u2@example.com");
    assert_string_equal(casb_json_str(x, "url"), "https://admin.google.com/ac/users/u2");
    /* Admin or user variant, never both. */
    expect(f, "user.two_step_disabled u2", "admin.two_step_disabled a1",
           "admin.two_step_disabled a2", NULL);
}

static void test_user_recovery(void **state)
{
    fixture *f = *state;

    user(f, "u1", "'recoveryEmail':''");
    user(f, "u2", "'recoveryPhone':null");
    /* Only for active users: suspended and archived ones are not asked. */
    user(f, "u3", "'suspended':true,'recoveryEmail':''");
    user(f, "u4", "'archived':true,'recoveryEmail':'','recoveryPhone':''");
    expect(f, "user.no_recovery_email u1", "user.no_recovery_phone u2", "user.suspended u3",
           NULL);
    /* Absent members are unset (Google leaves them out). */
    run(f, casb_google_check_user,
        "{'id':'u5','primaryEmail':'u5@example.com','isEnrolledIn2Sv':true,"
        "'lastLoginTime':'2026-11-27T00:00:00.000Z'}");
    expect(f, "user.no_recovery_email u5", "user.no_recovery_phone u5", NULL);
}

static void test_user_inactive_boundaries(void **state)
{
    fixture *f = *state;
    json_t *x;

    /* Exactly 30 days is not inactive; one second more is. */
    user(f, "u30", "'lastLoginTime':'2026-10-29T00:00:00.000Z'");
    user(f, "u31", "'lastLoginTime':'2026-10-28T23:59:59.000Z'");
    user(f, "a31", "'isAdmin':true,'lastLoginTime':'2026-10-28T23:59:59Z'");
    /* Never logged in (the epoch): judged by the account's age. */
    user(f, "new", "'lastLoginTime':'1970-01-01T00:00:00.000Z',"
                   "'creationTime':'2026-11-20T00:00:00.000Z'");
    user(f, "old", "'lastLoginTime':'1970-01-01T00:00:00.000Z',"
                   "'creationTime':'2026-10-28T23:59:59.000Z'");
    /* Suspended users are reported as suspended, not inactive. */
    user(f, "s1", "'suspended':true,'suspensionReason':'ADMIN',"
                  "'lastLoginTime':'2025-01-01T00:00:00.000Z'");
    user(f, "sa", "'isAdmin':true,'suspended':true,'lastLoginTime':'2025-01-01T00:00:00Z'");
    x = finding(f, "user.inactive", "old");
    assert_true(json_is_true(casb_json_path(x, "details.never_logged_in")));
    x = finding(f, "user.inactive", "u31");
    assert_int_equal(casb_json_int(json_object_get(x, "details"), "days_since_login", 0), 30);
    x = finding(f, "user.suspended", "s1");
    assert_string_equal(casb_json_path_str(x, "details.suspensionReason"), "ADMIN");
    expect(f, "user.inactive u31", "admin.inactive a31", "user.inactive old",
           "user.suspended s1", "admin.suspended sa", NULL);
    /* Only the active super admin is counted. */
    assert_int_equal(f->ev.super_admins, 1);

    /* An unreadable lastLoginTime skips the check rather than guessing. */
    user(f, "bad", "'lastLoginTime':'yesterday'");
    expect(f, NULL);
    casb_google_eval_report(&f->ev);
    assert_non_null(json_object_get(f->rec.skipped, "google_workspace.user.inactive"));
    assert_null(json_object_get(f->rec.skipped, "google_workspace.admin.inactive"));
}

static void test_super_admin_daily_use(void **state)
{
    fixture *f = *state;

    /* Mailbox and a login within 7 days. */
    user(f, "a1", "'isAdmin':true,'lastLoginTime':'2026-11-21T00:00:00Z'");
    user(f, "a2", "'isAdmin':true,'lastLoginTime':'2026-11-20T23:59:59Z'");
    user(f, "a3", "'isAdmin':true,'isMailboxSetup':false");
    user(f, "d1", "'isDelegatedAdmin':true");
    user(f, "a4", "'isAdmin':true,'suspended':true");
    expect(f, "admin.super_admin_daily_use a1", "admin.suspended a4", NULL);
}

/* ---- files ----------------------------------------------------------------------------- */

#define FILE_HEAD "{'id':'%s','name':'Plan','mimeType':'application/vnd.google-apps.document'," \
                  "'webViewLink':'https://docs.google.com/document/d/%s/edit',"             \
                  "'owners':[{'emailAddress':'alice@example.com'}],'permissions':["          \
                  "{'id':'0','type':'user','role':'owner','emailAddress':'alice@example.com'}"

static void file(fixture *f, const char *id, const char *perms)
{
    char buf[4096];

    snprintf(buf, sizeof(buf), FILE_HEAD "%s%s]}", id, id, perms[0] ? "," : "", perms);
    run(f, casb_google_check_file, buf);
}

static void test_file_sharing(void **state)
{
    fixture *f = *state;
    json_t *x;

    /* Owned, shared inside (by address and by alias domain): nothing. */
    file(f, "f0", "{'id':'1','type':'user','role':'writer','emailAddress':'bob@EXAMPLE.com'},"
                  "{'id':'2','type':'group','role':'reader','emailAddress':'g@example-alias.net'}");
    expect(f, NULL);
    /* Anyone with the link, and discoverable: both public. */
    file(f, "f1", "{'id':'anyoneWithLink','type':'anyone','role':'reader',"
                  "'allowFileDiscovery':false}");
    file(f, "f2", "{'id':'anyone','type':'anyone','role':'writer','allowFileDiscovery':true}");
    /* Commenter is view. */
    file(f, "f3", "{'id':'3','type':'user','role':'commenter','emailAddress':'eve@other.org'}");
    file(f, "f4", "{'id':'4','type':'group','role':'writer','emailAddress':'g@other.org'}");
    /* A domain permission: ours is company-wide, another domain's is external. */
    file(f, "f5", "{'id':'5','type':'domain','role':'reader','domain':'example.com'}");
    file(f, "f6", "{'id':'6','type':'domain','role':'writer','domain':'example-alias.net'}");
    file(f, "f7", "{'id':'7','type':'domain','role':'reader','domain':'partner.com'}");
    /* A subdomain is another domain unless added. */
    file(f, "f8", "{'id':'8','type':'user','role':'fileOrganizer',"
                  "'emailAddress':'x@eng.example.com'}");
    x = finding(f, "file.public_view", "f1");
    assert_string_equal(casb_json_str(x, "kind"), "file");
    assert_string_equal(casb_json_str(x, "name"), "Plan");
    assert_string_equal(casb_json_str(x, "url"), "https://docs.google.com/document/d/f1/edit");
    assert_true(json_is_false(
        casb_json_path(json_array_get(casb_json_path(x, "details.permissions"), 0),
                       "allowFileDiscovery")));
    expect(f, "file.public_view f1", "file.public_edit f2", "file.external_view f3",
           "file.external_edit f4", "file.domain_view f5", "file.domain_edit f6",
           "file.external_view f7", "file.external_edit f8", NULL);

    /* One instance per type met; the owner never counts as sharing. */
    file(f, "f9", "{'id':'a','type':'anyone','role':'reader'},"
                  "{'id':'b','type':'user','role':'reader','emailAddress':'a@x.org'},"
                  "{'id':'c','type':'user','role':'reader','emailAddress':'b@x.org'},"
                  "{'id':'d','type':'user','role':'owner','emailAddress':'c@x.org'}");
    x = finding(f, "file.external_view", "f9");
    assert_int_equal(casb_json_int(json_object_get(x, "details"), "permission_count", 0), 2);
    expect(f, "file.public_view f9", "file.external_view f9", NULL);
}

static void test_file_details_bounded_and_skip(void **state)
{
    fixture *f = *state;
    json_t *perms = json_array(), *fl;
    json_t *x;

    for (int i = 0; i < 500; i++) {
        char email[64];

        snprintf(email, sizeof(email), "p%d@outside.org", i);
        json_array_append_new(perms, json_pack("{s:s,s:s,s:s}", "type", "user", "role",
                                               "reader", "emailAddress", email));
    }
    fl = json_pack("{s:s,s:s,s:o}", "id", "big", "name", "Big", "permissions", perms);
    assert_int_equal(casb_google_check_file(&f->ev, fl), 0);
    json_decref(fl);
    x = finding(f, "file.external_view", "big");
    assert_int_equal(json_array_size(casb_json_path(x, "details.permissions")), 20);
    assert_int_equal(casb_json_int(json_object_get(x, "details"), "permission_count", 0), 500);
    expect(f, "file.external_view big", NULL);

    run(f, casb_google_check_file, "{'id':'nop','name':'x'}");
    expect(f, NULL);
    casb_google_eval_report(&f->ev);
    assert_non_null(json_object_get(f->rec.skipped, "google_workspace.file.public_edit"));
    assert_non_null(json_object_get(f->rec.skipped, "google_workspace.file.domain_view"));
}

static void test_shared_drive(void **state)
{
    fixture *f = *state;
    json_t *x;

    run(f, casb_google_check_shared_drive,
        "{'id':'d1','name':'Finance','permissions':["
        "{'id':'1','type':'user','role':'organizer','emailAddress':'a@example.com'},"
        "{'id':'2','type':'user','role':'reader','emailAddress':'r@partner.com'},"
        "{'id':'3','type':'user','role':'commenter','emailAddress':'c@partner.com'}]}");
    expect(f, NULL);
    run(f, casb_google_check_shared_drive,
        "{'id':'d2','name':'Deals','permissions':["
        "{'id':'1','type':'user','role':'writer','emailAddress':'w@partner.com'},"
        "{'id':'2','type':'group','role':'fileOrganizer','emailAddress':'g@partner.com'},"
        "{'id':'3','type':'domain','role':'writer','domain':'example.com'}]}");
    x = finding(f, "shared_drive.external_editor", "d2");
    assert_string_equal(casb_json_str(x, "kind"), "shared_drive");
    assert_string_equal(casb_json_str(x, "name"), "Deals");
    assert_int_equal(casb_json_int(json_object_get(x, "details"), "external_editor_count", 0), 2);
    expect(f, "shared_drive.external_editor d2", NULL);
}

/* ---- calendars and delegates ----------------------------------------------------------- */

static void test_calendar(void **state)
{
    fixture *f = *state;
    json_t *x;

    run(f, casb_google_check_calendar,
        "{'id':'a@example.com','owner':'a@example.com','acl':["
        "{'id':'user:a@example.com','role':'owner','scope':{'type':'user','value':'a@example.com'}},"
        "{'id':'domain:example.com','role':'reader','scope':{'type':'domain','value':'example.com'}},"
        "{'id':'default','role':'none','scope':{'type':'default'}}]}");
    expect(f, NULL);
    run(f, casb_google_check_calendar,
        "{'id':'b@example.com','owner':'b@example.com','acl':["
        "{'id':'default','role':'reader','scope':{'type':'default'}}]}");
    /* Free/busy published to everyone counts as public. */
    run(f, casb_google_check_calendar,
        "{'id':'c@example.com','owner':'c@example.com','acl':["
        "{'id':'default','role':'freeBusyReader','scope':{'type':'default'}}]}");
    x = finding(f, "calendar.public", "c@example.com");
    assert_true(json_is_false(casb_json_path(x, "details.event_details_visible")));
    assert_string_equal(casb_json_str(x, "url"),
                        "https://calendar.google.com/calendar/embed?src=c%40example.com");
    expect(f, "calendar.public b@example.com", "calendar.public c@example.com", NULL);
}

static void test_delegates(void **state)
{
    fixture *f = *state;
    json_t *x;

    run(f, casb_google_check_delegates,
        "{'user':'a@example.com','user_id':'u1','delegates':["
        "{'delegateEmail':'b@example.com','verificationStatus':'pending'}]}");
    run(f, casb_google_check_delegates, "{'user':'a@example.com','user_id':'u1','delegates':[]}");
    expect(f, NULL);
    run(f, casb_google_check_delegates,
        "{'user':'c@example.com','user_id':'u3','delegates':["
        "{'delegateEmail':'b@example.com','verificationStatus':'accepted'},"
        "{'delegateEmail':'x@other.org','verificationStatus':'accepted'},"
        "{'delegateEmail':'y@other.org','verificationStatus':'pending'}]}");
    x = finding(f, "user.delegates_email", "u3");
    assert_string_equal(casb_json_str(x, "kind"), "user");
    assert_string_equal(casb_json_str(x, "name"), "c@example.com");
    assert_int_equal(casb_json_int(json_object_get(x, "details"), "delegate_count", 0), 2);
    assert_true(json_is_false(
        casb_json_path(json_array_get(casb_json_path(x, "details.delegates"), 1), "internal")));
    expect(f, "user.delegates_email u3", NULL);
}

/* ---- domains --------------------------------------------------------------------------- */

static void test_domains(void **state)
{
    fixture *f = *state;

    run(f, casb_google_check_domain,
        "{'domainName':'example.com','verified':true,"
        "'spf':['v=spf1 include:_spf.google.com -all'],'dmarc':['v=DMARC1; p=reject']}");
    /* Unverified domains are not judged. */
    run(f, casb_google_check_domain,
        "{'domainName':'unverified.com','verified':false,'spf':[],'dmarc':[]}");
    expect(f, NULL);
    run(f, casb_google_check_domain,
        "{'domainName':'a.com','verified':true,'spf':['v=spf1 +all'],'dmarc':[]}");
    run(f, casb_google_check_domain,
        "{'domainName':'b.com','verified':true,'spf':['v=spf1 -all','v=spf1 ~all'],"
        "'dmarc':['v=DMARC1; p=none']}");
    run(f, casb_google_check_domain,
        "{'domainName':'c.com','verified':true,'spf':['v=spf1 ?all'],"
        "'dmarc':['v=DMARC1; p=quarantine; sp=none; pct=50']}");
    run(f, casb_google_check_domain,
        "{'domainName':'d.com','verified':true,'spf':['v=spf1 ~all'],"
        "'dmarc':['v=DMARC1; p=none; pct=10']}");
    assert_true(json_is_true(
        casb_json_path(finding(f, "domain.spf_missing", "b.com"), "details.multiple_records")));
    expect(f, "domain.spf_allows_any a.com", "domain.dmarc_missing a.com",
           "domain.spf_missing b.com", "domain.dmarc_not_enforced b.com",
           "domain.dmarc_subdomains_not_enforced b.com", "domain.spf_allows_any c.com",
           "domain.dmarc_subdomains_not_enforced c.com", "domain.dmarc_partial c.com",
           "domain.dmarc_not_enforced d.com", "domain.dmarc_subdomains_not_enforced d.com",
           NULL);
    casb_google_eval_report(&f->ev);
    assert_int_equal(json_object_size(f->rec.skipped), 0);

    /* Unreadable DNS skips the SPF and DMARC types for the scan. */
    run(f, casb_google_check_domain,
        "{'domainName':'e.com','verified':true,'dns_error':'DNS lookup of e.com failed'}");
    expect(f, NULL);
    json_array_clear(f->rec.ran);
    casb_google_eval_report(&f->ev);
    assert_int_equal(json_object_size(f->rec.skipped), 6);
    assert_non_null(strstr(casb_json_str(f->rec.skipped, "google_workspace.domain.spf_missing"),
                           "e.com"));
    assert_int_equal(json_array_size(f->rec.ran), GW_T_COUNT - 6);
}

/* ---- apps and the tenant --------------------------------------------------------------- */

static void token(fixture *f, const char *user_email, const char *text)
{
    json_t *t = J(text);

    assert_int_equal(casb_google_add_token(&f->ev, t, user_email), 0);
    json_decref(t);
}

static void test_apps(void **state)
{
    fixture *f = *state;
    json_t *x;

    token(f, "a@example.com",
          "{'clientId':'drv','displayText':'Drive Tool','anonymous':false,"
          "'scopes':['https://www.googleapis.com/auth/drive.readonly','openid','email']}");
    token(f, "b@example.com",
          "{'clientId':'drv','displayText':'Drive Tool','anonymous':false,"
          "'scopes':['https://www.googleapis.com/auth/drive.file']}");
    token(f, "a@example.com",
          "{'clientId':'all','displayText':'Suite','scopes':["
          "'https://mail.google.com/','https://www.googleapis.com/auth/documents.readonly',"
          "'https://www.googleapis.com/auth/calendar.events',"
          "'https://www.googleapis.com/auth/presentations',"
          "'https://www.googleapis.com/auth/spreadsheets.readonly',"
          "'https://www.googleapis.com/auth/driveactivity',"
          "'https://www.googleapis.com/auth/admin.directory.user.readonly']}");
    token(f, "a@example.com",
          "{'clientId':'login','displayText':'Login','scopes':["
          "'https://www.googleapis.com/auth/userinfo.email','profile']}");
    /* Unverified: high risk only with full Drive or Gmail read/modify. */
    token(f, "c@example.com",
          "{'clientId':'anon1','displayText':'Script','anonymous':true,"
          "'scopes':['https://www.googleapis.com/auth/drive']}");
    token(f, "c@example.com",
          "{'clientId':'anon2','displayText':'Script 2','anonymous':true,"
          "'scopes':['https://www.googleapis.com/auth/drive.file',"
          "'https://www.googleapis.com/auth/gmail.send']}");
    token(f, "c@example.com",
          "{'clientId':'anon3','displayText':'Script 3','anonymous':true,"
          "'scopes':['https://www.googleapis.com/auth/gmail.readonly']}");
    token(f, "c@example.com",
          "{'clientId':'ok','displayText':'Verified','anonymous':false,"
          "'scopes':['https://www.googleapis.com/auth/drive']}");
    token(f, "c@example.com", "{'displayText':'no id','scopes':['openid']}");
    assert_int_equal(f->ev.apps_count, 7);

    /* Super admins: 2 are fine. */
    user(f, "s1", "'isAdmin':true,'isMailboxSetup':false");
    user(f, "s2", "'isAdmin':true,'isMailboxSetup':false");
    expect(f, NULL);
    assert_int_equal(casb_google_check_tenant(&f->ev), 0);
    x = finding(f, "app.drive_access", "drv");
    assert_string_equal(casb_json_str(x, "kind"), "app");
    assert_string_equal(casb_json_str(x, "name"), "Drive Tool");
    assert_int_equal(casb_json_int(json_object_get(x, "details"), "users", 0), 2);
    assert_int_equal(json_array_size(casb_json_path(x, "details.sample_users")), 2);
    assert_int_equal(json_array_size(casb_json_path(x, "details.scopes")), 4);
    assert_int_equal(json_array_size(casb_json_path(x, "details.matching_scopes")), 2);
    assert_true(json_is_false(casb_json_path(x, "details.anonymous")));
    expect(f, "app.drive_access drv", "app.sign_in_access drv", "app.gmail_access all",
           "app.docs_access all", "app.calendar_access all", "app.slides_access all",
           "app.sheets_access all", "app.sign_in_access login", "app.drive_access anon1",
           "app.unverified_high_risk anon1", "app.drive_access anon2",
           "app.gmail_access anon2", "app.gmail_access anon3",
           "app.unverified_high_risk anon3", "app.drive_access ok", NULL);
}

static void test_super_admin_counts(void **state)
{
    fixture *f = *state;
    json_t *x;
    char id[16];

    /* One super admin (a second one suspended, a delegated admin): too few. */
    user(f, "s0", "'isAdmin':true,'isMailboxSetup':false");
    user(f, "s1", "'isAdmin':true,'suspended':true");
    user(f, "d1", "'isDelegatedAdmin':true");
    json_array_clear(f->rec.findings);
    assert_int_equal(casb_google_check_tenant(&f->ev), 0);
    x = finding(f, "tenant.too_few_super_admins", "C0123abc");
    assert_string_equal(casb_json_str(x, "kind"), "customer");
    assert_int_equal(casb_json_int(json_object_get(x, "details"), "super_admins", 0), 1);
    expect(f, "tenant.too_few_super_admins C0123abc", NULL);

    /* Four is the most that is fine, five too many. */
    for (int i = 2; i <= 4; i++) {
        snprintf(id, sizeof(id), "s%d", i);
        user(f, id, "'isAdmin':true,'isMailboxSetup':false");
    }
    assert_int_equal(f->ev.super_admins, 4);
    assert_int_equal(casb_google_check_tenant(&f->ev), 0);
    expect(f, NULL);
    user(f, "s5", "'isAdmin':true,'isMailboxSetup':false");
    assert_int_equal(casb_google_check_tenant(&f->ev), 0);
    x = finding(f, "tenant.too_many_super_admins", "C0123abc");
    assert_int_equal(json_array_size(casb_json_path(x, "details.sample")), 5);
    expect(f, "tenant.too_many_super_admins C0123abc", NULL);
}

static void test_internal_and_sink_failure(void **state)
{
    fixture *f = *state;
    json_t *v;

    assert_true(casb_google_is_internal(&f->ev, "x@EXAMPLE.COM"));
    assert_true(casb_google_is_internal(&f->ev, "example-alias.net"));
    assert_false(casb_google_is_internal(&f->ev, "x@example.com.evil.org"));
    assert_false(casb_google_is_internal(&f->ev, "x@"));
    assert_false(casb_google_is_internal(&f->ev, NULL));
    assert_int_equal(casb_google_eval_add_domain(&f->ev, "EXAMPLE.com"), 0);
    assert_int_equal(json_array_size(f->ev.domains), 2);

    f->rec.refuse = 1;
    v = J("{'id':'u','primaryEmail':'u@example.com','isEnrolledIn2Sv':false,"
          "'lastLoginTime':'2026-11-27T00:00:00Z'}");
    assert_int_equal(casb_google_check_user(&f->ev, v), -1);
    json_decref(v);
    assert_true(f->ev.cov.sink_failed);
}

/* Every type is reported once, as ran or skipped, and the ids are the catalogue's. */
static void test_report_and_ids(void **state)
{
    fixture *f = *state;

    casb_google_eval_report(&f->ev);
    assert_int_equal(json_array_size(f->rec.ran), GW_T_COUNT);
    for (int i = 0; i < GW_T_COUNT; i++)
        assert_non_null(casb_google_finding_types[i]);
    assert_null(casb_google_finding_types[GW_T_COUNT]);
    assert_string_equal(casb_google_finding_types[GW_T_DMARC_PARTIAL],
                        "google_workspace.domain.dmarc_partial");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_user_healthy_and_2sv),  T(test_user_recovery),
        T(test_user_inactive_boundaries), T(test_super_admin_daily_use),
        T(test_file_sharing),          T(test_file_details_bounded_and_skip),
        T(test_shared_drive),          T(test_calendar),
        T(test_delegates),             T(test_domains),
        T(test_apps),                  T(test_super_admin_counts),
        T(test_internal_and_sink_failure), T(test_report_and_ids),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
