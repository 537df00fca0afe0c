/* The finding-type catalogue (proto/findings/<provider>.json) against the compiled-in
 * providers: every type has all its fields with valid values, ids are unique, and the set of
 * types equals the provider's finding_types (every type has a check, every check a type).
 * Cloudflare's ten GitHub findings keep Cloudflare's exact titles and severities. */
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
#include "provider.h"

static json_t *load_catalogue(const char *provider)
{
    const char *dir = getenv("CASB_SOURCE_DIR");
    char path[1024];
    json_error_t jerr;
    json_t *cat;

    if (!dir || !dir[0])
        dir = CASB_SOURCE_DIR; /* compiled in by CMake, for runs outside ctest */
    snprintf(path, sizeof(path), "%s/proto/findings/%s.json", dir, provider);
    cat = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!cat)
        fail_msg("%s: line %d: %s", path, jerr.line, jerr.text);
    return cat;
}

static int in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

static void assert_text(const json_t *t, const char *key)
{
    const char *id = casb_json_str(t, "id");
    const char *s = casb_json_str(t, key);

    if (!s || strlen(s) < 3)
        fail_msg("%s: %s missing or empty", id ? id : "?", key);
}

static void assert_string_array(const json_t *t, const char *key, int required)
{
    const char *id = casb_json_str(t, "id");
    json_t *a = json_object_get(t, key);
    json_t *v;
    size_t i;

    if (!a && !required)
        return;
    if (!json_is_array(a) || json_array_size(a) == 0)
        fail_msg("%s: %s must be a non-empty array", id, key);
    json_array_foreach(a, i, v) {
        if (!json_is_string(v) || strlen(json_string_value(v)) < 3)
            fail_msg("%s: %s[%zu] must be a non-empty string", id, key, i);
    }
}

static void check_type_fields(const json_t *t, const char *provider)
{
    static const char *const severities[] = {"critical", "high", "medium", "low", NULL};
    static const char *const categories[] = {"misconfiguration", "user_activity",
                                             "data_exposure", "shadow_it", NULL};
    const char *id = casb_json_str(t, "id");
    const char *title = casb_json_str(t, "title");
    const char *severity = casb_json_str(t, "severity");
    const char *category = casb_json_str(t, "category");
    json_t *evidence = json_object_get(t, "evidence");
    json_t *compliance = json_object_get(t, "compliance");
    char prefix[64];
    json_t *c;
    size_t i;

    assert_non_null(id);
    snprintf(prefix, sizeof(prefix), "%s.", provider);
    if (strncmp(id, prefix, strlen(prefix)) != 0)
        fail_msg("%s: id must start with %s", id, prefix);
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_'))
            fail_msg("%s: id has a character outside [a-z0-9._]", id);
    /* Titles name the product as Cloudflare's do: "GitHub: ...", "Google Workspace: ...". */
    const casb_provider *prov = casb_provider_find(provider);
    char title_prefix[64];

    assert_non_null(prov);
    snprintf(title_prefix, sizeof(title_prefix), "%s: ", prov->display_name);
    if (!title || strncmp(title, title_prefix, strlen(title_prefix)) != 0)
        fail_msg("%s: title must start with \"%s\"", id, title_prefix);
    if (!severity || !in_list(severities, severity))
        fail_msg("%s: severity %s not one of critical|high|medium|low", id,
                 severity ? severity : "(none)");
    if (!category || !in_list(categories, category))
        fail_msg("%s: category %s invalid", id, category ? category : "(none)");
    assert_text(t, "asset_kind");
    assert_text(t, "description");
    assert_text(t, "impact");
    assert_string_array(t, "remediation", 1);
    if (!json_is_object(evidence) || !casb_json_str(evidence, "endpoint") ||
        !casb_json_str(evidence, "field"))
        fail_msg("%s: evidence needs endpoint and field", id);
    if (strncmp(casb_json_str(evidence, "endpoint"), "GET /", 5) != 0)
        fail_msg("%s: evidence.endpoint must name a read call (GET /...)", id);
    assert_string_array(t, "required_permissions", 1);
    if (compliance) {
        if (!json_is_array(compliance) || json_array_size(compliance) == 0)
            fail_msg("%s: compliance, when present, is a non-empty array", id);
        json_array_foreach(compliance, i, c) {
            if (!casb_json_str(c, "framework") || !casb_json_str(c, "control") ||
                !casb_json_str(c, "title"))
                fail_msg("%s: compliance[%zu] needs framework, control and title", id, i);
        }
    }
}

/* Every provider has a catalogue whose types are exactly its checks. */
static void test_catalogue_matches_providers(void **state)
{
    const casb_provider *const *all = casb_provider_all();

    (void)state;
    assert_non_null(all);
    assert_non_null(all[0]);
    for (size_t p = 0; all[p]; p++) {
        const casb_provider *prov = all[p];
        json_t *cat = load_catalogue(prov->id);
        json_t *types = json_object_get(cat, "finding_types");
        size_t nchecks = 0;
        json_t *t;
        size_t i;

        assert_string_equal(casb_json_str(cat, "provider"), prov->id);
        assert_true(json_is_array(types));
        while (prov->finding_types[nchecks])
            nchecks++;
        assert_true(nchecks > 0);

        json_array_foreach(types, i, t) {
            const char *id = casb_json_str(t, "id");

            check_type_fields(t, prov->id);
            /* unique */
            for (size_t j = 0; j < i; j++)
                if (strcmp(casb_json_str(json_array_get(types, j), "id"), id) == 0)
                    fail_msg("%s: duplicate id", id);
            /* every type has a check */
            if (!in_list(prov->finding_types, id))
                fail_msg("%s: in the catalogue but the %s provider has no check for it", id,
                         prov->id);
        }
        /* every check has a type */
        for (size_t k = 0; k < nchecks; k++) {
            int found = 0;

            json_array_foreach(types, i, t) {
                found |= strcmp(casb_json_str(t, "id"), prov->finding_types[k]) == 0;
            }
            if (!found)
                fail_msg("%s: checked by the %s provider but missing from the catalogue",
                         prov->finding_types[k], prov->id);
        }
        assert_int_equal(json_array_size(types), nchecks);
        json_decref(cat);
    }
}

/* Cloudflare's GitHub findings (cloudflare-casb.md section 2), word for word. */
static void test_github_cloudflare_titles(void **state)
{
    static const struct {
        const char *id, *title, *severity;
    } cf[] = {
        {"github.repo.default_branch_unprotected",
         "GitHub: Repository has no Default Branch Protection", "medium"},
        {"github.repo.branch_protection_no_pr_review",
         "GitHub: Repository Default Branch Protection does not have PR Review Required",
         "medium"},
        {"github.repo.branch_protection_force_push_allowed",
         "GitHub: Repository Default Branch Protection does not have Force Pushes Disabled",
         "medium"},
        {"github.repo.branch_protection_stale_approvals_kept",
         "GitHub: Repository Default Branch Protection does not have Stale PR Approvals Disabled",
         "medium"},
        {"github.repo.branch_protection_admins_not_enforced",
         "GitHub: Repository Default Branch Protection does not have Admin Restrictions",
         "medium"},
        {"github.repo.branch_protection_no_status_checks",
         "GitHub: Repository Default Branch Protection does not have Status Checks", "medium"},
        {"github.org.default_write_permission",
         "GitHub: Organization repository has default WRITE permission", "medium"},
        {"github.repo.stale", "GitHub: Repository not updated in 12+ months", "medium"},
        {"github.org.two_factor_requirement_disabled",
         "GitHub: Organization two-factor authentication disabled", "high"},
        {"github.org.member_2fa_disabled",
         "GitHub: Organization user two-factor authentication disabled", "high"},
    };
    json_t *cat = load_catalogue("github");
    json_t *types = json_object_get(cat, "finding_types");

    (void)state;
    for (size_t k = 0; k < sizeof(cf) / sizeof(cf[0]); k++) {
        json_t *t, *hit = NULL;
        size_t i;

        json_array_foreach(types, i, t) {
            if (strcmp(casb_json_str(t, "id"), cf[k].id) == 0)
                hit = t;
        }
        if (!hit)
            fail_msg("%s missing", cf[k].id);
        assert_string_equal(casb_json_str(hit, "title"), cf[k].title);
        assert_string_equal(casb_json_str(hit, "severity"), cf[k].severity);
    }
    json_decref(cat);
}

/* The asset kinds the brief fixes for GitHub's asset ids. */
static void test_github_asset_kinds(void **state)
{
    static const char *const kinds[] = {"organization", "member",       "repository",
                                        "webhook",      "deploy_key",   "installation",
                                        "collaborator", NULL};
    json_t *cat = load_catalogue("github");
    json_t *t;
    size_t i;

    (void)state;
    json_array_foreach(json_object_get(cat, "finding_types"), i, t) {
        if (!in_list(kinds, casb_json_str(t, "asset_kind")))
            fail_msg("%s: asset_kind %s", casb_json_str(t, "id"), casb_json_str(t, "asset_kind"));
    }
    json_decref(cat);
}

/* The registry and the descriptor GET /v1/providers shows. */
static void test_registry_and_descriptor(void **state)
{
    const casb_provider *gh = casb_provider_find("github");
    int has_app = 0, has_token = 0;

    (void)state;
    assert_non_null(gh);
    assert_ptr_equal(casb_provider_all()[0], gh);
    assert_null(casb_provider_find("nope"));
    assert_null(casb_provider_find(NULL));
    assert_string_equal(gh->display_name, "GitHub");
    assert_string_equal(gh->default_api_base_url, "https://api.github.com");
    assert_true(gh->default_scan_interval_s >= 3600 && gh->default_scan_interval_s <= 86400);
    for (size_t i = 0; gh->auth_methods[i]; i++) {
        has_app |= strcmp(gh->auth_methods[i], "github_app") == 0;
        has_token |= strcmp(gh->auth_methods[i], "token") == 0;
    }
    assert_true(has_app && has_token);
    assert_string_equal(gh->config_fields[0].name, "organization");
    assert_true(gh->config_fields[0].required);
    for (size_t i = 0; gh->credential_fields[i].name; i++) {
        assert_true(gh->credential_fields[i].secret);
        assert_non_null(gh->credential_fields[i].help);
    }
    assert_non_null(gh->permissions[0].name);
    for (size_t i = 0; gh->permissions[i].name; i++)
        assert_non_null(gh->permissions[i].reason);
    assert_non_null(gh->validate);
    assert_non_null(gh->check_connection);
    assert_non_null(gh->scan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue_matches_providers),
        cmocka_unit_test(test_github_cloudflare_titles),
        cmocka_unit_test(test_github_asset_kinds),
        cmocka_unit_test(test_registry_and_descriptor),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
