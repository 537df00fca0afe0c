"""The finding-type catalogue served by findings-api."""

from conftest import fa, im

# Cloudflare's GitHub findings: titles and severities (reference/cloudflare-casb.md §2).
CLOUDFLARE = {
    "github.repo.default_branch_unprotected": ("Repository has no Default Branch Protection", "medium"),
    "github.repo.branch_protection_no_pr_review": ("Repository Default Branch Protection does not have PR Review Required", "medium"),
    "github.repo.branch_protection_force_push_allowed": ("Repository Default Branch Protection does not have Force Pushes Disabled", "medium"),
    "github.repo.branch_protection_stale_approvals_kept": ("Repository Default Branch Protection does not have Stale PR Approvals Disabled", "medium"),
    "github.repo.branch_protection_admins_not_enforced": ("Repository Default Branch Protection does not have Admin Restrictions", "medium"),
    "github.repo.branch_protection_no_status_checks": ("Repository Default Branch Protection does not have Status Checks", "medium"),
    "github.org.default_write_permission": ("Organization repository has default WRITE permission", "medium"),
    "github.repo.stale": ("Repository not updated in 12+ months", "medium"),
    "github.org.two_factor_requirement_disabled": ("Organization two-factor authentication disabled", "high"),
    "github.org.member_2fa_disabled": ("Organization user two-factor authentication disabled", "high"),
}
BEYOND = [
    "github.repo.public", "github.org.members_can_create_public_repos",
    "github.repo.outside_collaborator_admin", "github.webhook.no_secret",
    "github.webhook.insecure_ssl", "github.repo.deploy_key_write",
    "github.org.app_broad_permissions", "github.repo.secret_scanning_disabled",
    "github.repo.push_protection_disabled",
]


def catalogue():
    r = fa("GET", "/v1/finding-types")
    assert r.status == 200, r
    return {t["id"]: t for t in r.body["finding_types"]}


def test_catalogue_lists_every_github_type():
    types = catalogue()
    for tid in list(CLOUDFLARE) + BEYOND:
        assert tid in types, tid
    for tid, t in types.items():
        assert t["severity"] in ("critical", "high", "medium", "low"), t
        assert t["category"] in ("misconfiguration", "user_activity", "data_exposure",
                                 "shadow_it"), t
        assert t["title"], t
        if tid.startswith("github."):
            assert t.get("provider", "github") == "github"


def test_cloudflare_titles_and_severities():
    types = catalogue()
    for tid, (title, severity) in CLOUDFLARE.items():
        got = types[tid]["title"]
        if got.startswith("GitHub: "):
            got = got[len("GitHub: "):]
        assert got == title, tid
        assert types[tid]["severity"] == severity, tid


def test_catalogue_needs_a_token_and_providers_list_github():
    from conftest import cfg, http
    assert http("GET", cfg("CASB_FINDINGS_URL") + "/v1/finding-types").status == 401
    r = im("GET", "/v1/providers")
    assert r.status == 200, r
    assert "github" in {p["id"] if isinstance(p, dict) else p for p in r.body["providers"]}
