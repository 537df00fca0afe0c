"""The full path: add an integration -> first scan -> findings with the right instance counts
-> settings fixed in the SaaS -> rescan -> those instances resolved; and scan-now."""

import time

from conftest import (GOOD_PROTECTION, describe, expected_counts, fa, im, scan_id_of, sim, type_id,
                      wait_until)


def asset_id(instance):
    if "asset_id" in instance:
        return instance["asset_id"]
    return instance["asset"]["id"]


def all_instances(o, finding_id):
    """Every instance of a finding whatever its state."""
    return o.instances(finding_id, "all")


def test_add_scan_fix_rescan_resolves(new_org):
    o = new_org("github_app")
    created = o.create_integration()
    assert created.body["name"] == o.login
    assert created.body.get("health") in ("initializing", "healthy")
    assert "credentials" not in created.body and "private_key" not in created.raw

    first = o.wait_scan_done()
    assert first["status"] == "succeeded", describe(first)
    assert first["reason"] == "first"
    assert o.scan(first["id"])["status"] == "succeeded"

    # Findings visible with the right instance counts and assets.
    findings = o.findings()
    assert o.active_counts() == expected_counts(o.expected)
    for ftype, assets in o.expected.items():
        f = findings[ftype]
        assert f["status"] == "active"
        active = {asset_id(i) for i in o.instances(f["id"]) if i["state"] == "active"}
        assert active == assets, ftype
        one = fa("GET", f"/v1/findings/{f['id']}")
        assert one.status == 200 and one.body["instance_count"] == len(assets)

    integ = im("GET", f"/v1/integrations/{o.integration_id}")
    assert integ.status == 200
    assert integ.body["health"] == "healthy"
    assert integ.body["last_scan_at"]

    # Fix three things in the SaaS: bob enables 2FA, billing gets branch protection, the org
    # requires 2FA.
    members = [dict(m) for m in o.tenant["members"]]
    for m in members:
        if m["login"] == f"{o.login}-bob":
            m["two_factor"] = True
    assert sim("PATCH", f"/_sim/orgs/{o.login}", {"members": members}).status == 200
    assert sim("PATCH", f"/_sim/orgs/{o.login}/repos/billing",
               {"branch_protection": GOOD_PROTECTION}).status == 200
    assert sim("PATCH", f"/_sim/orgs/{o.login}",
               {"org": {"two_factor_requirement_enabled": True}}).status == 200

    second = o.rescan()
    assert second["status"] == "succeeded", describe(second)
    assert second["id"] != first["id"]

    want = expected_counts(o.expected)
    want["github.org.member_2fa_disabled"] = 1
    want["github.repo.default_branch_unprotected"] = 1
    del want["github.org.two_factor_requirement_disabled"]
    assert o.active_counts() == want

    findings = o.findings()
    by_asset = {asset_id(i): i for i in all_instances(o, findings["github.org.member_2fa_disabled"]["id"])}
    assert by_asset[f"{o.login}-bob"]["state"] == "resolved"
    assert by_asset[f"{o.login}-carol"]["state"] == "active"
    by_asset = {asset_id(i): i for i in all_instances(o, findings["github.repo.default_branch_unprotected"]["id"])}
    assert by_asset[f"{o.login}/billing"]["state"] == "resolved"
    assert by_asset[f"{o.login}/infra"]["state"] == "active"
    org2fa = findings.get("github.org.two_factor_requirement_disabled")
    if org2fa is not None:  # a finding may stay listed with no active instance
        assert org2fa["instance_count"] == 0
        states = {asset_id(i): i["state"] for i in all_instances(o, org2fa["id"])}
        assert states == {o.login: "resolved"}
    # What was not fixed stays exactly as it was.
    for ftype in ("github.repo.public", "github.repo.stale", "github.webhook.no_secret",
                  "github.repo.deploy_key_write", "github.org.default_write_permission"):
        active = {asset_id(i) for i in o.instances(findings[ftype]["id"]) if i["state"] == "active"}
        assert active == o.expected[ftype], ftype

    summary = fa("GET", "/v1/summary")
    assert summary.status == 200 and isinstance(summary.body, dict)


def test_scan_now_produces_a_new_scan_within_seconds(org):
    before = {s["id"] for s in org.scans()}
    t0 = time.time()
    r = org.scan_now()
    assert r.status in (201, 202), r
    sid = scan_id_of(r.body)
    assert sid and sid not in before

    # Asking again while it is queued or running answers with that same scan (409 or 202),
    # unless the first one already finished.
    again = org.scan_now()
    assert again.status in (201, 202, 409), again
    sid2 = scan_id_of(again.body)
    if sid2 != sid:
        assert org.scan(sid)["status"] in ("succeeded", "failed"), (again, org.scan(sid))

    wait_until("the manual scan to start", lambda: (org.scan(sid) or {}).get("status")
               in ("running", "succeeded"), timeout_s=10, interval_s=0.2)
    done = org.wait_scan_done(sid, timeout_s=60)
    assert done["status"] == "succeeded", describe(done)
    assert done["reason"] == "manual"
    took = time.time() - t0
    assert took < 30, f"scan-now took {took:.1f}s"
    assert org.active_counts() == expected_counts(org.expected)


def test_unknown_integration_and_auth():
    assert im("GET", "/v1/integrations/00000000-0000-4000-8000-000000000000").status == 404
    assert im("POST", "/v1/integrations/00000000-0000-4000-8000-000000000000/scans").status == 404
    from conftest import cfg, http
    assert http("GET", cfg("CASB_INTEGRATIONS_URL") + "/v1/integrations").status == 401
    assert http("GET", cfg("CASB_FINDINGS_URL") + "/v1/findings", token="wrong").status == 401
