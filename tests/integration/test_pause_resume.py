"""Pause stops new scans (scan-now answers 409, the scheduler skips it even when due) and
resume starts one at once."""

import time

from conftest import describe, im, psql, psql_value, sim, wait_until


def test_pause_stops_scans_and_resume_starts_one(org):
    r = im("POST", f"/v1/integrations/{org.integration_id}/pause")
    assert r.status == 200, r
    assert r.body["health"] == "paused"
    assert im("GET", f"/v1/integrations/{org.integration_id}").body["health"] == "paused"
    assert psql_value("SELECT paused FROM integrations WHERE id = :'id'",
                      id=org.integration_id) == "t"

    scans_before = {s["id"] for s in org.scans()}
    assert sim("POST", f"/_sim/orgs/{org.login}/stats/reset").status in (200, 204)

    r = org.scan_now()
    assert r.status == 409, r

    # Make it due, as if its interval had passed: a paused integration must still be skipped.
    psql("UPDATE integrations SET next_scan_at = now() - interval '1 minute' WHERE id = :'id'",
         id=org.integration_id)
    time.sleep(8)  # several scheduler ticks
    assert {s["id"] for s in org.scans()} == scans_before
    assert psql_value("SELECT count(*) FROM scans WHERE integration_id = :'id' "
                      "AND status IN ('queued','running')", id=org.integration_id) == "0"
    stats = sim("GET", f"/_sim/orgs/{org.login}/stats").body
    assert stats["requests"] == 0, stats

    t0 = time.time()
    r = im("POST", f"/v1/integrations/{org.integration_id}/resume")
    assert r.status == 200, r
    assert r.body["health"] != "paused"
    assert psql_value("SELECT paused FROM integrations WHERE id = :'id'",
                      id=org.integration_id) == "f"
    # The next regular scan is an interval away again.
    assert psql_value("SELECT next_scan_at > now() + interval '30 minutes' FROM integrations "
                      "WHERE id = :'id'", id=org.integration_id) == "t"

    new = wait_until("a scan after resume", lambda: [
        s for s in org.scans() if s["id"] not in scans_before], timeout_s=15, interval_s=0.3)
    assert len(new) == 1, new
    assert new[0]["reason"] == "resume"
    done = org.wait_scan_done(new[0]["id"], timeout_s=60)
    assert done["status"] == "succeeded", describe(done)
    assert time.time() - t0 < 45
    assert sim("GET", f"/_sim/orgs/{org.login}/stats").body["requests"] > 0
    assert im("GET", f"/v1/integrations/{org.integration_id}").body["health"] == "healthy"


def test_pause_and_resume_are_idempotent(org):
    for _ in range(2):
        assert im("POST", f"/v1/integrations/{org.integration_id}/pause").status == 200
    assert org.scan_now().status == 409
    r = im("POST", f"/v1/integrations/{org.integration_id}/resume")
    assert r.status == 200
    # A second resume does not queue a second scan next to the first.
    im("POST", f"/v1/integrations/{org.integration_id}/resume")
    open_scans = psql_value("SELECT count(*) FROM scans WHERE integration_id = :'id' "
                            "AND status IN ('queued','running')", id=org.integration_id)
    assert int(open_scans) <= 1
