"""Provider faults: a 429 storm slows a scan down but it completes with the same findings; a
persistent 500 fails the scan and resolves nothing."""

import time

from conftest import describe, im, sim


def add_fault(org, **fault):
    r = sim("POST", f"/_sim/orgs/{org.login}/faults", fault)
    assert r.status in (200, 201), r


def test_429_storm_slows_the_scan_but_it_completes(org):
    baseline = org.active_counts()
    assert baseline
    quiet = org.rescan()
    assert quiet["status"] == "succeeded", describe(quiet)
    assert sim("POST", f"/_sim/orgs/{org.login}/stats/reset").status in (200, 204)

    add_fault(org, mode="429", rate=0.5, retry_after_s=1)
    t0 = time.time()
    stormy = org.rescan(timeout_s=300)
    took = time.time() - t0
    sim("DELETE", f"/_sim/orgs/{org.login}/faults")

    assert stormy["status"] == "succeeded", describe(stormy)
    stats = sim("GET", f"/_sim/orgs/{org.login}/stats").body
    assert stats["faults_injected"] > 0, stats
    # Every 429 asked for a 1 s pause: the scan must have waited at least once.
    assert took >= 1.0
    scan_stats = stormy.get("stats") or {}
    if "rate_limit_waits" in scan_stats:
        assert scan_stats["rate_limit_waits"] + scan_stats.get("retries", 0) > 0, scan_stats
    assert org.active_counts() == baseline


def test_persistent_500_fails_the_scan_and_resolves_nothing(org):
    baseline = org.active_counts()
    findings = org.findings()
    active_before = {f["id"]: {i["id"] for i in org.instances(f["id"]) if i["state"] == "active"}
                     for f in findings.values()}

    add_fault(org, mode="500")
    failed = org.rescan(timeout_s=180)
    assert failed["status"] == "failed", describe(failed)
    assert failed.get("error"), failed

    assert org.active_counts() == baseline
    for fid, ids in active_before.items():
        now = {i["id"] for i in org.instances(fid) if i["state"] == "active"}
        assert now == ids
    integ = im("GET", f"/v1/integrations/{org.integration_id}").body
    assert integ["health"] in ("unhealthy", "needs_reauthorization"), integ

    # Once the provider is back, the next scan succeeds and the integration is healthy again.
    sim("DELETE", f"/_sim/orgs/{org.login}/faults")
    ok = org.rescan()
    assert ok["status"] == "succeeded", describe(ok)
    assert org.active_counts() == baseline
    assert im("GET", f"/v1/integrations/{org.integration_id}").body["health"] == "healthy"


def test_failed_scan_after_partial_collection_resolves_nothing(org):
    """The members were fixed in the SaaS, but a later endpoint fails for good: the failed
    scan saw bob with 2FA, yet must not resolve his instance."""
    baseline = org.active_counts()
    members = [dict(m, two_factor=True) for m in org.tenant["members"]]
    assert sim("PATCH", f"/_sim/orgs/{org.login}", {"members": members}).status == 200
    add_fault(org, mode="500", path_contains="/keys")
    failed = org.rescan(timeout_s=180)
    assert failed["status"] == "failed", describe(failed)
    assert org.active_counts() == baseline
