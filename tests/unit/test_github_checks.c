/* The GitHub checks on snapshots, without any server. Organization, repository, branch
 * protection and collaborator inputs are GitHub's recorded responses from octokit/fixtures
 * (scenarios get-organization, get-repository, branch-protection,
 * add-and-remove-repository-collaborator; Copyright (c) GitHub, MIT licence), trimmed of
 * their *_url members; members, webhooks, deploy keys and installations are hand-written in
 * the shapes of GitHub's documentation examples. Each test asserts the exact set of
 * findings (type and asset id) and the coverage. */
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
#include "github_internal.h"
#include "test_sink_recorder.h"

/* 2026-11-28T00:00:00Z: the octokit fixtures (2017) are long stale by then. */
#define NOW_S 1795824000LL

static const char FIX_ORG[] =
    "{\"login\":\"octokit-fixture-org\",\"id\":1000,\"url\":\"https://api.github.com/orgs/oct"
    "okit-fixture-org\",\"description\":null,\"is_verified\":false,\"has_organization_project"
    "s\":true,\"has_repository_projects\":true,\"public_repos\":42,\"public_gists\":0,\"follo"
    "wers\":0,\"following\":0,\"html_url\":\"https://github.com/octokit-fixture-org\",\"creat"
    "ed_at\":\"2017-10-10T16:00:00Z\",\"updated_at\":\"2017-10-10T16:00:00Z\",\"type\":\"Orga"
    "nization\",\"total_private_repos\":0,\"owned_private_repos\":0,\"private_gists\":0,\"dis"
    "k_usage\":1,\"collaborators\":0,\"billing_email\":\"octokit-fixture-user-a@kytrinyx.com"
    "\",\"default_repository_permission\":\"read\",\"members_can_create_repositories\":true,"
    "\"two_factor_requirement_enabled\":false,\"members_allowed_repository_creation_type\":\""
    "all\",\"members_can_create_public_repositories\":true,\"members_can_create_private_repos"
    "itories\":true,\"members_can_create_internal_repositories\":false,\"members_can_create_p"
    "ages\":true,\"members_can_fork_private_repositories\":false,\"members_can_create_public_"
    "pages\":true,\"members_can_create_private_pages\":true,\"web_commit_signoff_required\":f"
    "alse,\"plan\":{\"name\":\"team\",\"space\":976562499,\"private_repos\":999999,\"filled_s"
    "eats\":1,\"seats\":5}}";

static const char FIX_REPO[] =
    "{\"id\":1000,\"name\":\"hello-world\",\"full_name\":\"octokit-fixture-org/hello-world\","
    "\"private\":false,\"owner\":{\"login\":\"octokit-fixture-org\",\"id\":1000,\"type\":\"Or"
    "ganization\"},\"html_url\":\"https://github.com/octokit-fixture-org/hello-world\",\"desc"
    "ription\":null,\"fork\":false,\"url\":\"https://api.github.com/repos/octokit-fixture-org"
    "/hello-world\",\"created_at\":\"2017-10-10T16:00:00Z\",\"updated_at\":\"2017-10-10T16:00"
    ":00Z\",\"pushed_at\":\"2017-10-10T16:00:00Z\",\"homepage\":null,\"size\":0,\"stargazers_"
    "count\":42,\"watchers_count\":42,\"language\":null,\"has_issues\":true,\"has_projects\":"
    "true,\"has_downloads\":true,\"has_wiki\":true,\"has_pages\":false,\"forks_count\":42,\"a"
    "rchived\":false,\"disabled\":false,\"open_issues_count\":42,\"license\":null,\"allow_for"
    "king\":true,\"is_template\":false,\"web_commit_signoff_required\":false,\"topics\":[\"fi"
    "xtures\",\"hello\",\"hello-world\"],\"visibility\":\"public\",\"forks\":42,\"open_issues"
    "\":42,\"watchers\":42,\"default_branch\":\"master\",\"permissions\":{\"admin\":true,\"ma"
    "intain\":true,\"push\":true,\"triage\":true,\"pull\":true},\"temp_clone_token\":\"\",\"a"
    "llow_squash_merge\":true,\"allow_merge_commit\":true,\"allow_rebase_merge\":true,\"allow"
    "_auto_merge\":false,\"delete_branch_on_merge\":false,\"allow_update_branch\":false,\"use"
    "_squash_pr_title_as_default\":false,\"organization\":{\"login\":\"octokit-fixture-org\","
    "\"id\":1000,\"type\":\"Organization\"},\"network_count\":42,\"subscribers_count\":42}";

static const char FIX_BP_404[] =
    "{\"message\":\"Branch not protected\",\"documentation_url\":\"https://docs.github.com/re"
    "st/reference/repos#get-branch-protection\"}";

static const char FIX_BP_MINIMAL[] =
    "{\"url\":\"https://api.github.com/repos/octokit-fixture-org/branch-protection/branches/m"
    "ain/protection\",\"required_signatures\":{\"url\":\"https://api.github.com/repos/octokit"
    "-fixture-org/tmp-scenario-branch-protection-20220719043700727-wbo1k/branches/main/protec"
    "tion/required_signatures\",\"enabled\":false},\"enforce_admins\":{\"url\":\"https://api."
    "github.com/repos/octokit-fixture-org/branch-protection/branches/main/protection/enforce_"
    "admins\",\"enabled\":false},\"required_linear_history\":{\"enabled\":false},\"allow_forc"
    "e_pushes\":{\"enabled\":false},\"allow_deletions\":{\"enabled\":false},\"block_creations"
    "\":{\"enabled\":false},\"required_conversation_resolution\":{\"enabled\":false}}";

static const char FIX_BP_FULL[] =
    "{\"url\":\"https://api.github.com/repos/octokit-fixture-org/branch-protection/branches/m"
    "ain/protection\",\"required_status_checks\":{\"url\":\"https://api.github.com/repos/octo"
    "kit-fixture-org/branch-protection/branches/main/protection/required_status_checks\",\"st"
    "rict\":true,\"contexts\":[\"foo/bar\"],\"checks\":[{\"context\":\"foo/bar\",\"app_id\":n"
    "ull}]},\"restrictions\":{\"url\":\"https://api.github.com/repos/octokit-fixture-org/bran"
    "ch-protection/branches/main/protection/restrictions\",\"users\":[{\"login\":\"octokit-fi"
    "xture-user-a\",\"id\":1000,\"url\":\"https://api.github.com/users/octokit-fixture-user-a"
    "\",\"html_url\":\"https://github.com/octokit-fixture-user-a\",\"type\":\"User\",\"site_a"
    "dmin\":false}],\"teams\":[{\"name\":\"A-Team\",\"id\":1000,\"slug\":\"a-team\",\"descrip"
    "tion\":\"If you have a problem, if no one else can help you, then if you can find them, "
    "maybe you can hire the A-Team!\",\"privacy\":\"closed\",\"url\":\"https://api.github.com"
    "/organizations/31898100/team/2527061\",\"html_url\":\"https://github.com/orgs/octokit-fi"
    "xture-org/teams/a-team\",\"permission\":\"pull\",\"parent\":null}],\"apps\":[]},\"requir"
    "ed_pull_request_reviews\":{\"url\":\"https://api.github.com/repos/octokit-fixture-org/br"
    "anch-protection/branches/main/protection/required_pull_request_reviews\",\"dismiss_stale"
    "_reviews\":true,\"require_code_owner_reviews\":false,\"required_approving_review_count\""
    ":1,\"dismissal_restrictions\":{\"url\":\"https://api.github.com/repos/octokit-fixture-or"
    "g/branch-protection/branches/main/protection/dismissal_restrictions\",\"users\":[{\"logi"
    "n\":\"octokit-fixture-user-a\",\"id\":1000,\"url\":\"https://api.github.com/users/octoki"
    "t-fixture-user-a\",\"html_url\":\"https://github.com/octokit-fixture-user-a\",\"type\":"
    "\"User\",\"site_admin\":false}],\"teams\":[],\"apps\":[]}},\"required_signatures\":{\"ur"
    "l\":\"https://api.github.com/repos/octokit-fixture-org/tmp-scenario-branch-protection-20"
    "220719043700727-wbo1k/branches/main/protection/required_signatures\",\"enabled\":false},"
    "\"enforce_admins\":{\"url\":\"https://api.github.com/repos/octokit-fixture-org/branch-pr"
    "otection/branches/main/protection/enforce_admins\",\"enabled\":true},\"required_linear_h"
    "istory\":{\"enabled\":false},\"allow_force_pushes\":{\"enabled\":false},\"allow_deletion"
    "s\":{\"enabled\":false},\"block_creations\":{\"enabled\":false},\"required_conversation_"
    "resolution\":{\"enabled\":false}}";

static const char FIX_COLLABORATORS[] =
    "[{\"login\":\"octokit-fixture-user-a\",\"id\":31898046,\"url\":\"https://api.github.com/"
    "users/octokit-fixture-user-a\",\"html_url\":\"https://github.com/octokit-fixture-user-a"
    "\",\"type\":\"User\",\"site_admin\":false,\"permissions\":{\"admin\":true,\"maintain\":t"
    "rue,\"push\":true,\"triage\":true,\"pull\":true},\"role_name\":\"admin\"},{\"login\":\"o"
    "ctokit-fixture-user-b\",\"id\":31899067,\"url\":\"https://api.github.com/users/octokit-f"
    "ixture-user-b\",\"html_url\":\"https://github.com/octokit-fixture-user-b\",\"type\":\"Us"
    "er\",\"site_admin\":false,\"permissions\":{\"admin\":false,\"maintain\":false,\"push\":t"
    "rue,\"triage\":true,\"pull\":true},\"role_name\":\"write\"}]";

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Asserts that the recorded findings are exactly `expected` ("type asset_id" strings,
 * NULL-terminated), in any order. */
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
    for (size_t i = 0; i < m; i++)
        want[i] = expected[i];
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

static json_t *finding_of(const recorder *r, const char *type, const char *asset_id)
{
    json_t *f;
    size_t i;

    json_array_foreach(r->findings, i, f) {
        if (strcmp(casb_json_str(f, "type"), type) == 0 &&
            strcmp(casb_json_str(f, "id"), asset_id) == 0)
            return f;
    }
    fail_msg("no finding %s on %s", type, asset_id);
    return NULL;
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);

    if (!v)
        fail_msg("bad test JSON: %s", jerr.text);
    return v;
}

static int skipped(const casb_github_eval *ev, int type)
{
    return ev->cov.skip_reason[type] != NULL;
}

static int count_skipped(const casb_github_eval *ev)
{
    int n = 0;

    for (int i = 0; i < GH_T_COUNT; i++)
        n += ev->cov.skip_reason[i] != NULL;
    return n;
}

#define T(x) casb_github_finding_types[x]
#define REPO "octokit-fixture-org/hello-world"

/* ---- organization ---------------------------------------------------------------------- */

static void test_org_fixture(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *org = load(FIX_ORG);
    char a[128], b[128];
    const char *want[3];
    json_t *f;

    (void)state;
    rec_init(&r);
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    assert_int_equal(casb_github_check_org(&ev, org), 0);
    snprintf(a, sizeof(a), "%s octokit-fixture-org", T(GH_T_ORG_TWO_FACTOR_REQUIREMENT_DISABLED));
    snprintf(b, sizeof(b), "%s octokit-fixture-org", T(GH_T_ORG_MEMBERS_CAN_CREATE_PUBLIC_REPOS));
    want[0] = a;
    want[1] = b;
    want[2] = NULL;
    expect_findings(&r, want);
    assert_int_equal(count_skipped(&ev), 0);
    f = finding_of(&r, T(GH_T_ORG_TWO_FACTOR_REQUIREMENT_DISABLED), "octokit-fixture-org");
    assert_string_equal(casb_json_str(f, "kind"), "organization");
    assert_string_equal(casb_json_str(f, "url"), "https://github.com/octokit-fixture-org");
    assert_true(json_is_false(casb_json_path(f, "details.two_factor_requirement_enabled")));
    assert_int_equal(ev.cov.findings, 2);

    casb_github_eval_cleanup(&ev);
    json_decref(org);
    rec_free(&r);
}

/* A strict organization: base permission write is the one thing wrong. */
static void test_org_write_permission(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *org = load(FIX_ORG);
    char a[128];
    const char *want[] = {a, NULL};

    (void)state;
    json_object_set_new(org, "two_factor_requirement_enabled", json_true());
    json_object_set_new(org, "default_repository_permission", json_string("write"));
    json_object_set_new(org, "members_can_create_public_repositories", json_true());
    json_object_set_new(org, "members_can_create_repositories", json_false());
    rec_init(&r);
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    assert_int_equal(casb_github_check_org(&ev, org), 0);
    snprintf(a, sizeof(a), "%s octokit-fixture-org", T(GH_T_ORG_DEFAULT_WRITE_PERMISSION));
    expect_findings(&r, want);
    assert_string_equal(casb_json_path_str(finding_of(&r, T(GH_T_ORG_DEFAULT_WRITE_PERMISSION),
                                                      "octokit-fixture-org"),
                                           "details.default_repository_permission"),
                        "write");
    casb_github_eval_cleanup(&ev);
    json_decref(org);
    rec_free(&r);
}

/* A non-owner sees the basic organization only: the three settings checks are skipped, not
 * passed, and the coverage says so. */
static void test_org_hidden_fields_skip(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *org = load(FIX_ORG);
    const char *want[] = {NULL};

    (void)state;
    json_object_del(org, "two_factor_requirement_enabled");
    json_object_del(org, "default_repository_permission");
    json_object_set_new(org, "members_can_create_public_repositories", json_null());
    rec_init(&r);
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    assert_int_equal(casb_github_check_org(&ev, org), 0);
    expect_findings(&r, want);
    assert_true(skipped(&ev, GH_T_ORG_TWO_FACTOR_REQUIREMENT_DISABLED));
    assert_true(skipped(&ev, GH_T_ORG_DEFAULT_WRITE_PERMISSION));
    assert_true(skipped(&ev, GH_T_ORG_MEMBERS_CAN_CREATE_PUBLIC_REPOS));
    assert_int_equal(count_skipped(&ev), 3);
    assert_non_null(strstr(ev.cov.skip_reason[GH_T_ORG_TWO_FACTOR_REQUIREMENT_DISABLED],
                           "organization owners"));

    casb_github_eval_report(&ev);
    assert_int_equal(json_array_size(r.ran), GH_T_COUNT - 3);
    assert_int_equal(json_object_size(r.skipped), 3);
    assert_non_null(json_object_get(r.skipped, T(GH_T_ORG_DEFAULT_WRITE_PERMISSION)));
    casb_github_eval_cleanup(&ev);
    json_decref(org);
    rec_free(&r);
}

/* ---- repository ------------------------------------------------------------------------ */

static void run_repo(recorder *r, casb_github_eval *ev, json_t *repo)
{
    rec_init(r);
    casb_github_eval_init(ev, &r->sink, NOW_S);
    assert_int_equal(casb_github_check_repo(ev, repo), 0);
}

/* hello-world is public, last pushed in 2017, and GET .../protection answered 404 "Branch
 * not protected"; security_and_analysis is missing from the recording (older API). */
static void test_repo_unprotected(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *repo = load(FIX_REPO);
    json_t *resp = load(FIX_BP_404);
    const char *want[] = {
        "github.repo.public " REPO,
        "github.repo.stale " REPO,
        "github.repo.default_branch_unprotected " REPO,
        NULL,
    };
    json_t *f;

    (void)state;
    /* What the collector does with that 404. */
    assert_string_equal(casb_json_str(resp, "message"), "Branch not protected");
    json_object_set_new(repo, "branch_protection", json_null());
    run_repo(&r, &ev, repo);
    expect_findings(&r, want);
    f = finding_of(&r, "github.repo.stale", REPO);
    assert_string_equal(casb_json_str(f, "kind"), "repository");
    assert_string_equal(casb_json_str(f, "name"), REPO);
    assert_string_equal(casb_json_str(f, "url"), "https://github.com/" REPO);
    assert_string_equal(casb_json_path_str(f, "details.pushed_at"), "2017-10-10T16:00:00Z");
    assert_true(casb_json_int(json_object_get(f, "details"), "days_since_update", 0) > 3000);
    f = finding_of(&r, "github.repo.default_branch_unprotected", REPO);
    assert_string_equal(casb_json_path_str(f, "details.default_branch"), "master");
    /* No security_and_analysis: both secret scanning checks are incomplete. */
    assert_true(skipped(&ev, GH_T_REPO_SECRET_SCANNING_DISABLED));
    assert_true(skipped(&ev, GH_T_REPO_PUSH_PROTECTION_DISABLED));
    assert_int_equal(count_skipped(&ev), 2);
    casb_github_eval_cleanup(&ev);
    json_decref(resp);
    json_decref(repo);
    rec_free(&r);
}

/* The first recorded protection: signatures, admins, history flags only; no PR reviews, no
 * status checks, force pushes off, admins not enforced. */
static void test_repo_minimal_protection(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *repo = load(FIX_REPO);
    const char *want[] = {
        "github.repo.public " REPO,
        "github.repo.stale " REPO,
        "github.repo.branch_protection_no_pr_review " REPO,
        "github.repo.branch_protection_admins_not_enforced " REPO,
        "github.repo.branch_protection_no_status_checks " REPO,
        NULL,
    };

    (void)state;
    json_object_set_new(repo, "branch_protection", load(FIX_BP_MINIMAL));
    run_repo(&r, &ev, repo);
    expect_findings(&r, want);
    casb_github_eval_cleanup(&ev);
    json_decref(repo);
    rec_free(&r);
}

/* The second recorded protection has everything: reviews dismissing stale approvals, status
 * checks, admins enforced, no force push. Recently pushed, private, secret scanning on. */
static void test_repo_full_protection_clean(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *repo = load(FIX_REPO);
    const char *want[] = {NULL};

    (void)state;
    json_object_set_new(repo, "branch_protection", load(FIX_BP_FULL));
    json_object_set_new(repo, "private", json_true());
    json_object_set_new(repo, "visibility", json_string("private"));
    json_object_set_new(repo, "pushed_at", json_string("2026-11-01T10:00:00Z"));
    json_object_set_new(repo, "security_and_analysis",
                        load("{\"secret_scanning\":{\"status\":\"enabled\"},"
                             "\"secret_scanning_push_protection\":{\"status\":\"enabled\"}}"));
    run_repo(&r, &ev, repo);
    expect_findings(&r, want);
    assert_int_equal(count_skipped(&ev), 0);
    casb_github_eval_cleanup(&ev);
    json_decref(repo);
    rec_free(&r);
}

/* Reviews required but stale approvals kept, force pushes allowed, status checks present but
 * empty; secret scanning and push protection disabled. */
static void test_repo_weak_protection(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *repo = load(FIX_REPO);
    json_t *bp = load(FIX_BP_FULL);
    const char *want[] = {
        "github.repo.branch_protection_force_push_allowed " REPO,
        "github.repo.branch_protection_stale_approvals_kept " REPO,
        "github.repo.branch_protection_no_status_checks " REPO,
        "github.repo.secret_scanning_disabled " REPO,
        "github.repo.push_protection_disabled " REPO,
        NULL,
    };

    (void)state;
    json_object_set_new(casb_json_path(bp, "required_pull_request_reviews"),
                        "dismiss_stale_reviews", json_false());
    json_object_set_new(casb_json_path(bp, "allow_force_pushes"), "enabled", json_true());
    json_object_set_new(casb_json_path(bp, "required_status_checks"), "contexts", json_array());
    json_object_set_new(casb_json_path(bp, "required_status_checks"), "checks", json_array());
    json_object_set_new(repo, "branch_protection", bp);
    json_object_set_new(repo, "visibility", json_string("internal"));
    json_object_set_new(repo, "pushed_at", json_string("2026-06-01T10:00:00Z"));
    json_object_set_new(repo, "security_and_analysis",
                        load("{\"secret_scanning\":{\"status\":\"disabled\"},"
                             "\"secret_scanning_push_protection\":{\"status\":\"disabled\"}}"));
    run_repo(&r, &ev, repo);
    expect_findings(&r, want);
    assert_int_equal(count_skipped(&ev), 0);
    casb_github_eval_cleanup(&ev);
    json_decref(repo);
    rec_free(&r);
}

/* Reviews with zero required approvals do not count as PR review required. */
static void test_repo_zero_approvals(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *repo = load(FIX_REPO);
    json_t *bp = load(FIX_BP_FULL);
    const char *want[] = {"github.repo.branch_protection_no_pr_review " REPO, NULL};

    (void)state;
    json_object_set_new(casb_json_path(bp, "required_pull_request_reviews"),
                        "required_approving_review_count", json_integer(0));
    json_object_set_new(repo, "branch_protection", bp);
    json_object_set_new(repo, "visibility", json_string("private"));
    json_object_set_new(repo, "pushed_at", json_string("2026-11-01T10:00:00Z"));
    run_repo(&r, &ev, repo);
    expect_findings(&r, want);
    casb_github_eval_cleanup(&ev);
    json_decref(repo);
    rec_free(&r);
}

/* Archived: no branch checks, no staleness, no push protection, even with nothing known
 * about its protection; still public, and secret scanning still reported. */
static void test_repo_archived(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *repo = load(FIX_REPO);
    const char *want[] = {
        "github.repo.public " REPO,
        "github.repo.secret_scanning_disabled " REPO,
        NULL,
    };

    (void)state;
    json_object_set_new(repo, "archived", json_true());
    json_object_set_new(repo, "security_and_analysis",
                        load("{\"secret_scanning\":{\"status\":\"disabled\"},"
                             "\"secret_scanning_push_protection\":{\"status\":\"disabled\"}}"));
    run_repo(&r, &ev, repo);
    expect_findings(&r, want);
    assert_int_equal(count_skipped(&ev), 0);
    casb_github_eval_cleanup(&ev);
    json_decref(repo);
    rec_free(&r);
}

/* Protection not collected (403): the six branch checks are skipped with the collector's
 * reason; nothing is guessed. */
static void test_repo_protection_unknown(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *repo = load(FIX_REPO);
    const char *want[] = {"github.repo.public " REPO, "github.repo.stale " REPO, NULL};

    (void)state;
    json_object_set_new(repo, "branch_protection_error",
                        json_string("403 Resource not accessible by integration"));
    json_object_set_new(repo, "security_and_analysis",
                        load("{\"secret_scanning\":{\"status\":\"enabled\"},"
                             "\"secret_scanning_push_protection\":{\"status\":\"enabled\"}}"));
    run_repo(&r, &ev, repo);
    expect_findings(&r, want);
    assert_int_equal(count_skipped(&ev), 6);
    for (int t = GH_T_DEFAULT_BRANCH_UNPROTECTED; t <= GH_T_BP_NO_STATUS_CHECKS; t++) {
        assert_true(skipped(&ev, t));
        assert_non_null(strstr(ev.cov.skip_reason[t], "Resource not accessible by integration"));
    }
    casb_github_eval_cleanup(&ev);
    json_decref(repo);
    rec_free(&r);
}

/* An empty repository (its default branch does not exist) gets no branch verdict at all. */
static void test_repo_empty(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *repo = load(FIX_REPO);
    const char *want[] = {NULL};

    (void)state;
    json_object_set_new(repo, "default_branch_missing", json_true());
    json_object_set_new(repo, "private", json_true());
    json_object_del(repo, "visibility");
    json_object_del(repo, "pushed_at");
    json_object_set_new(repo, "updated_at", json_string("2026-10-01T00:00:00Z"));
    json_object_set_new(repo, "security_and_analysis",
                        load("{\"secret_scanning\":{\"status\":\"enabled\"},"
                             "\"secret_scanning_push_protection\":{\"status\":\"enabled\"}}"));
    run_repo(&r, &ev, repo);
    expect_findings(&r, want);
    assert_int_equal(count_skipped(&ev), 0);
    casb_github_eval_cleanup(&ev);
    json_decref(repo);
    rec_free(&r);
}

/* The staleness boundary: 365 days is not stale, 366 is. */
static void test_repo_stale_boundary(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *repo = load(FIX_REPO);
    const char *none[] = {NULL};
    const char *stale[] = {"github.repo.stale " REPO, NULL};

    (void)state;
    json_object_set_new(repo, "private", json_true());
    json_object_set_new(repo, "visibility", json_string("private"));
    json_object_set_new(repo, "branch_protection", load(FIX_BP_FULL));
    json_object_set_new(repo, "security_and_analysis",
                        load("{\"secret_scanning\":{\"status\":\"enabled\"},"
                             "\"secret_scanning_push_protection\":{\"status\":\"enabled\"}}"));
    json_object_set_new(repo, "pushed_at", json_string("2025-11-28T00:00:00Z")); /* 365 d */
    run_repo(&r, &ev, repo);
    expect_findings(&r, none);
    casb_github_eval_cleanup(&ev);
    rec_free(&r);
    json_object_set_new(repo, "pushed_at", json_string("2025-11-27T00:00:00Z")); /* 366 d */
    run_repo(&r, &ev, repo);
    expect_findings(&r, stale);
    casb_github_eval_cleanup(&ev);
    rec_free(&r);
    json_decref(repo);
}

/* ---- members --------------------------------------------------------------------------- */

static void test_members(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *alice = load("{\"login\":\"alice\",\"id\":101,"
                         "\"html_url\":\"https://github.com/alice\","
                         "\"role\":\"admin\",\"two_factor_disabled\":true}");
    json_t *bob = load("{\"login\":\"bob\",\"id\":102,\"role\":\"member\","
                       "\"two_factor_disabled\":false}");
    json_t *carol = load("{\"login\":\"carol\",\"id\":103,\"role\":null}");
    const char *want[] = {"github.org.member_2fa_disabled alice", NULL};
    json_t *f;

    (void)state;
    rec_init(&r);
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    assert_int_equal(casb_github_check_member(&ev, alice), 0);
    assert_int_equal(casb_github_check_member(&ev, bob), 0);
    expect_findings(&r, want);
    f = finding_of(&r, "github.org.member_2fa_disabled", "alice");
    assert_string_equal(casb_json_str(f, "kind"), "member");
    assert_string_equal(casb_json_path_str(f, "details.role"), "admin");
    assert_int_equal(count_skipped(&ev), 0);
    /* Two-factor status unknown (the 2fa_disabled filter was refused): skipped, no finding. */
    assert_int_equal(casb_github_check_member(&ev, carol), 0);
    expect_findings(&r, want);
    assert_true(skipped(&ev, GH_T_ORG_MEMBER_2FA_DISABLED));
    casb_github_eval_cleanup(&ev);
    json_decref(alice);
    json_decref(bob);
    json_decref(carol);
    rec_free(&r);
}

/* A member sent with an empty login (found by fuzz.github_page) cannot key a finding: no
 * finding reaches the sink, and the check is reported incomplete rather than clean. */
static void test_member_without_login(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *nameless = load("{\"login\":\"\",\"id\":104,\"two_factor_disabled\":true}");
    const char *none[] = {NULL};

    (void)state;
    rec_init(&r);
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    assert_int_equal(casb_github_check_member(&ev, nameless), 0);
    expect_findings(&r, none);
    assert_int_equal(ev.cov.findings, 0);
    assert_true(skipped(&ev, GH_T_ORG_MEMBER_2FA_DISABLED));
    casb_github_eval_cleanup(&ev);
    json_decref(nameless);
    rec_free(&r);
}

/* ---- webhooks -------------------------------------------------------------------------- */

static void test_webhooks(void **state)
{
    recorder r;
    casb_github_eval ev;
    /* Secret set, SSL verified: clean. */
    json_t *good = load("{\"id\":1,\"name\":\"web\",\"active\":true,\"events\":[\"push\"],"
                        "\"config\":{\"url\":\"https://ci.example.com/hook\",\"content_type\":"
                        "\"json\",\"insecure_ssl\":\"0\",\"secret\":\"********\"},"
                        "\"scope\":\"organization\",\"target\":\"acme\"}");
    /* No secret, SSL verification off, a token in the URL path. */
    json_t *bad = load("{\"id\":7,\"name\":\"web\",\"active\":true,\"events\":[\"push\"],"
                       "\"config\":{\"url\":\"https://user:pw@hooks.example.net:8443/T0/B0/"
                       "sekr1t?x=1\",\"content_type\":\"json\",\"insecure_ssl\":\"1\"},"
                       "\"scope\":\"repository\",\"repository\":\"acme/api\","
                       "\"target\":\"acme/api\","
                       "\"asset_url\":\"https://github.com/acme/api/settings/hooks/7\"}");
    /* Plain http with a secret: no TLS at all. */
    json_t *plain = load("{\"id\":9,\"config\":{\"url\":\"http://old.example.org/h\","
                         "\"insecure_ssl\":\"0\",\"secret\":\"********\"},"
                         "\"scope\":\"organization\",\"target\":\"acme\"}");
    const char *want[] = {
        "github.webhook.no_secret acme/api#hook:7",
        "github.webhook.insecure_ssl acme/api#hook:7",
        "github.webhook.insecure_ssl org-hook:9",
        NULL,
    };
    json_t *f;
    char *dump;

    (void)state;
    rec_init(&r);
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    assert_int_equal(casb_github_check_hook(&ev, good), 0);
    assert_int_equal(casb_github_check_hook(&ev, bad), 0);
    assert_int_equal(casb_github_check_hook(&ev, plain), 0);
    expect_findings(&r, want);
    f = finding_of(&r, "github.webhook.insecure_ssl", "acme/api#hook:7");
    assert_string_equal(casb_json_str(f, "kind"), "webhook");
    assert_string_equal(casb_json_str(f, "url"), "https://github.com/acme/api/settings/hooks/7");
    assert_string_equal(casb_json_path_str(f, "details.url_host"), "hooks.example.net:8443");
    assert_true(json_is_true(casb_json_path(f, "details.insecure_ssl")));
    /* The webhook URL's path, query and userinfo may hold secrets: never in a finding. */
    dump = json_dumps(r.findings, 0);
    assert_null(strstr(dump, "sekr1t"));
    assert_null(strstr(dump, "pw@"));
    free(dump);
    f = finding_of(&r, "github.webhook.insecure_ssl", "org-hook:9");
    assert_true(json_is_true(casb_json_path(f, "details.plain_http")));
    assert_int_equal(count_skipped(&ev), 0);
    /* A hook listed without its config cannot be judged: skipped, no finding. */
    json_object_del(good, "config");
    assert_int_equal(casb_github_check_hook(&ev, good), 0);
    expect_findings(&r, want);
    assert_true(skipped(&ev, GH_T_WEBHOOK_NO_SECRET));
    assert_true(skipped(&ev, GH_T_WEBHOOK_INSECURE_SSL));
    casb_github_eval_cleanup(&ev);
    json_decref(good);
    json_decref(bad);
    json_decref(plain);
    rec_free(&r);
}

/* ---- deploy keys ----------------------------------------------------------------------- */

static void test_deploy_keys(void **state)
{
    recorder r;
    casb_github_eval ev;
    /* GitHub's documentation example, read-only, then the same key with write access. */
    json_t *ro = load("{\"id\":1,\"key\":\"ssh-rsa AAA...\",\"url\":\"https://api.github.com/repos/"
                      "octocat/Hello-World/keys/1\",\"title\":\"octocat@octomac\","
                      "\"verified\":true,"
                      "\"created_at\":\"2014-12-10T15:53:42Z\",\"read_only\":true,\"added_by\":"
                      "\"octocat\",\"last_used\":\"2022-01-10T15:53:42Z\",\"enabled\":true,"
                      "\"repository\":\"octocat/Hello-World\"}");
    json_t *rw = json_deep_copy(ro);
    const char *want[] = {"github.repo.deploy_key_write octocat/Hello-World#key:2", NULL};
    json_t *f;

    (void)state;
    json_object_set_new(rw, "id", json_integer(2));
    json_object_set_new(rw, "read_only", json_false());
    json_object_set_new(rw, "asset_url",
                        json_string("https://github.com/octocat/Hello-World/settings/keys"));
    rec_init(&r);
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    assert_int_equal(casb_github_check_deploy_key(&ev, ro), 0);
    assert_int_equal(casb_github_check_deploy_key(&ev, rw), 0);
    expect_findings(&r, want);
    f = finding_of(&r, "github.repo.deploy_key_write", "octocat/Hello-World#key:2");
    assert_string_equal(casb_json_str(f, "kind"), "deploy_key");
    assert_string_equal(casb_json_path_str(f, "details.title"), "octocat@octomac");
    assert_null(casb_json_path(f, "details.key")); /* the key itself stays out */
    casb_github_eval_cleanup(&ev);
    json_decref(ro);
    json_decref(rw);
    rec_free(&r);
}

/* ---- installations --------------------------------------------------------------------- */

static void test_installations(void **state)
{
    recorder r;
    casb_github_eval ev;
    /* GitHub's documentation example: selected repositories, deployments write: narrow. */
    json_t *doc = load("{\"id\":25381,\"account\":{\"login\":\"octo-org\"},"
                       "\"repository_selection\":"
                       "\"selected\",\"app_id\":2218,\"target_type\":\"Organization\","
                       "\"permissions\":{\"deployments\":\"write\",\"metadata\":\"read\","
                       "\"pull_requests\":\"read\",\"statuses\":\"read\"},"
                       "\"events\":[\"deployment\"],"
                       "\"app_slug\":\"github-actions\",\"suspended_at\":null,"
                       "\"html_url\":\"https://github.com/organizations/octo-org/settings/"
                       "installations/25381\"}");
    json_t *all_write = load("{\"id\":3001,\"app_slug\":\"some-app\",\"app_id\":77,"
                             "\"repository_selection\":\"all\",\"permissions\":{\"contents\":"
                             "\"write\",\"administration\":\"write\",\"metadata\":\"read\"}}");
    json_t *org_write = load("{\"id\":3002,\"app_slug\":\"hr-sync\",\"repository_selection\":"
                             "\"selected\",\"permissions\":{\"members\":\"write\",\"contents\":"
                             "\"write\"}}");
    json_t *suspended = load("{\"id\":3003,\"app_slug\":\"old\",\"repository_selection\":\"all\","
                             "\"permissions\":{\"contents\":\"write\"},"
                             "\"suspended_at\":\"2025-01-01T00:00:00Z\"}");
    json_t *all_read = load("{\"id\":3004,\"app_slug\":\"casb\",\"repository_selection\":\"all\","
                            "\"permissions\":{\"administration\":\"read\",\"metadata\":\"read\"}}");
    const char *want[] = {
        "github.org.app_broad_permissions installation:3001",
        "github.org.app_broad_permissions installation:3002",
        NULL,
    };
    json_t *f;

    (void)state;
    rec_init(&r);
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    assert_int_equal(casb_github_check_installation(&ev, doc), 0);
    assert_int_equal(casb_github_check_installation(&ev, all_write), 0);
    assert_int_equal(casb_github_check_installation(&ev, org_write), 0);
    assert_int_equal(casb_github_check_installation(&ev, suspended), 0);
    assert_int_equal(casb_github_check_installation(&ev, all_read), 0);
    expect_findings(&r, want);
    f = finding_of(&r, "github.org.app_broad_permissions", "installation:3001");
    assert_string_equal(casb_json_str(f, "name"), "some-app");
    assert_string_equal(casb_json_path_str(f, "details.broad_permissions.contents"), "write");
    assert_string_equal(casb_json_path_str(f, "details.broad_permissions.administration"),
                        "write");
    assert_null(casb_json_path(f, "details.broad_permissions.metadata"));
    /* Selected repositories: only the organization-level permission is broad. */
    f = finding_of(&r, "github.org.app_broad_permissions", "installation:3002");
    assert_int_equal(json_object_size(casb_json_path(f, "details.broad_permissions")), 1);
    assert_string_equal(casb_json_path_str(f, "details.broad_permissions.members"), "write");
    casb_github_eval_cleanup(&ev);
    json_decref(doc);
    json_decref(all_write);
    json_decref(org_write);
    json_decref(suspended);
    json_decref(all_read);
    rec_free(&r);
}

/* ---- collaborators --------------------------------------------------------------------- */

/* The recorded collaborator list: user-a is admin, user-b has write. Listed as outside
 * collaborators (affiliation=outside), only user-a is a finding; the same users listed
 * without the outside mark are not. */
static void test_collaborators(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *list = load(FIX_COLLABORATORS);
    const char *want[] = {
        "github.repo.outside_collaborator_admin acme/api#collaborator:octokit-fixture-user-a",
        NULL,
    };
    json_t *c, *f;
    size_t i;

    (void)state;
    rec_init(&r);
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    json_array_foreach(list, i, c) {
        json_object_set_new(c, "repository", json_string("acme/api"));
        assert_int_equal(casb_github_check_collaborator(&ev, c), 0);
    }
    expect_findings(&r, (const char *const[]){NULL});
    json_array_foreach(list, i, c) {
        json_object_set_new(c, "outside", json_true());
        assert_int_equal(casb_github_check_collaborator(&ev, c), 0);
    }
    expect_findings(&r, want);
    f = finding_of(&r, "github.repo.outside_collaborator_admin",
                   "acme/api#collaborator:octokit-fixture-user-a");
    assert_string_equal(casb_json_str(f, "kind"), "collaborator");
    assert_string_equal(casb_json_path_str(f, "details.role_name"), "admin");
    casb_github_eval_cleanup(&ev);
    json_decref(list);
    rec_free(&r);
}

/* ---- sink and coverage ----------------------------------------------------------------- */

static void test_sink_refusal(void **state)
{
    recorder r;
    casb_github_eval ev;
    json_t *org = load(FIX_ORG);

    (void)state;
    rec_init(&r);
    r.refuse = 1;
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    assert_int_equal(casb_github_check_org(&ev, org), -1);
    assert_true(ev.cov.sink_failed);
    assert_int_equal(json_array_size(r.findings), 0);
    casb_github_eval_cleanup(&ev);
    json_decref(org);
    rec_free(&r);
}

/* The first skip reason wins, and every type is reported exactly once. */
static void test_coverage_report(void **state)
{
    recorder r;
    casb_github_eval ev;

    (void)state;
    rec_init(&r);
    casb_github_eval_init(&ev, &r.sink, NOW_S);
    casb_github_eval_skip(&ev, GH_T_WEBHOOK_NO_SECRET, "first %d", 1);
    casb_github_eval_skip(&ev, GH_T_WEBHOOK_NO_SECRET, "second");
    casb_github_eval_report(&ev);
    assert_int_equal(json_array_size(r.ran) + json_object_size(r.skipped), GH_T_COUNT);
    assert_string_equal(json_string_value(json_object_get(r.skipped, "github.webhook.no_secret")),
                        "first 1");
    casb_github_eval_cleanup(&ev);
    rec_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_org_fixture),
        cmocka_unit_test(test_org_write_permission),
        cmocka_unit_test(test_org_hidden_fields_skip),
        cmocka_unit_test(test_repo_unprotected),
        cmocka_unit_test(test_repo_minimal_protection),
        cmocka_unit_test(test_repo_full_protection_clean),
        cmocka_unit_test(test_repo_weak_protection),
        cmocka_unit_test(test_repo_zero_approvals),
        cmocka_unit_test(test_repo_archived),
        cmocka_unit_test(test_repo_protection_unknown),
        cmocka_unit_test(test_repo_empty),
        cmocka_unit_test(test_repo_stale_boundary),
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_member_without_login),
        cmocka_unit_test(test_webhooks),
        cmocka_unit_test(test_deploy_keys),
        cmocka_unit_test(test_installations),
        cmocka_unit_test(test_collaborators),
        cmocka_unit_test(test_sink_refusal),
        cmocka_unit_test(test_coverage_report),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
