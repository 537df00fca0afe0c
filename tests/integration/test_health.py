"""Health as users see it: healthy after a good scan; needs_reauthorization with the
provider's reason when the token is revoked, healed by reauthorize; unhealthy with a reason
and a hint when the provider keeps failing; the reason cleared once healthy again."""

import uuid

from conftest import describe, im, sim


def integration(o):
    r = im("GET", f"/v1/integrations/{o.integration_id}")
    assert r.status == 200, r
    return r.body


def test_revoked_token_needs_reauthorization_and_reauthorize_heals(new_org):
    o = new_org()
    o.create_integration()
    first = o.wait_scan_done()
    assert first["status"] == "succeeded", describe(first)
    body = integration(o)
    assert body["health"] == "healthy", body
    assert body["health_reason"] is None, body

    # The token is revoked at GitHub: the next scan is refused with 401.
    other = "ghp_" + uuid.uuid4().hex + uuid.uuid4().hex[:4]
    r = sim("PATCH", f"/_sim/orgs/{o.login}", {"auth": {"tokens": [other]}})
    assert r.status == 200, r
    scan = o.rescan()
    assert scan["status"] == "failed", describe(scan)
    assert "Bad credentials" in scan["error"], describe(scan)
    body = integration(o)
    assert body["health"] == "needs_reauthorization", body
    reason = body["health_reason"]
    assert reason.startswith("GitHub rejected the credentials: Bad credentials"), reason
    assert f"/v1/integrations/{o.integration_id}/reauthorize" in reason, reason
    assert other not in reason and o.token not in reason

    # Reauthorize with the token GitHub now accepts; the next scan succeeds.
    r = im("POST", f"/v1/integrations/{o.integration_id}/reauthorize",
           {"credentials": {"token": other}})
    assert r.status == 200, r
    assert other not in r.raw
    scan = o.rescan()
    assert scan["status"] == "succeeded", describe(scan)
    body = integration(o)
    assert body["health"] == "healthy", body
    assert body["health_reason"] is None, body


def test_persistent_500_is_unhealthy_with_reason_and_hint(new_org):
    o = new_org()
    o.create_integration()
    first = o.wait_scan_done()
    assert first["status"] == "succeeded", describe(first)

    r = sim("POST", f"/_sim/orgs/{o.login}/faults", {"mode": "500", "path_contains": "/repos"})
    assert r.status in (200, 201, 204), r
    scan = o.rescan(timeout_s=180)
    assert scan["status"] == "failed", describe(scan)
    body = integration(o)
    assert body["health"] == "unhealthy", body
    reason = body["health_reason"]
    assert reason.startswith("GitHub answered 500 repeatedly ("), reason
    assert "the scan will be retried at the next interval" in reason, reason

    # GitHub recovers: the next scan succeeds and the reason is gone.
    assert sim("DELETE", f"/_sim/orgs/{o.login}/faults").status in (200, 204)
    scan = o.rescan()
    assert scan["status"] == "succeeded", describe(scan)
    body = integration(o)
    assert body["health"] == "healthy", body
    assert body["health_reason"] is None, body
