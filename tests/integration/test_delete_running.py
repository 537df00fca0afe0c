"""Delete while a scan runs: everything of the integration goes in one transaction, the
worker notices at its next lease renewal (about a second) and stops reading the tenant, and
nothing of the integration reappears afterwards."""

import os
import time

from conftest import (ENV, Org, cfg, fa, http, im, make_repo, psql_value, sim, wait_until)

REPOS = 120
DELAY_MS = 300


def requests_of(login):
    r = sim("GET", f"/_sim/orgs/{login}/stats")
    assert r.status == 200, r
    return r.body["requests"]


def leftovers(iid):
    """Rows of the integration in every table that holds its data."""
    counts = {}
    for table, column in (("integrations", "id"), ("scans", "integration_id"),
                          ("scan_outbox", "integration_id"), ("findings", "integration_id"),
                          ("finding_instances", "integration_id")):
        counts[table] = int(psql_value(f"SELECT count(*) FROM {table} WHERE {column} = :'id'",
                                       id=iid))
    return {t: n for t, n in counts.items() if n}


def worker_log_mentions(scan_id, text):
    path = os.path.join(ENV.get("CASB_LOG_DIR", ""), "scanner-worker.log")
    if not os.path.exists(path):
        return False
    with open(path, errors="replace") as f:
        return any(scan_id in line and text in line for line in f)


def test_delete_while_scanning_stops_the_worker_and_leaves_nothing():
    o = Org()
    try:
        # Many repositories, each answered slowly: the scan takes minutes, so it is certainly
        # running when the integration is deleted.
        o.tenant["repos"] += [make_repo(o.login, f"svc-{i:03d}") for i in range(REPOS)]
        assert sim("PUT", f"/_sim/orgs/{o.login}", o.tenant).status in (200, 201)
        r = sim("POST", f"/_sim/orgs/{o.login}/faults", {"mode": "slow", "delay_ms": DELAY_MS})
        assert r.status in (200, 201, 204), r

        o.create_integration()
        iid = o.integration_id

        def running():
            scans = o.scans()
            if scans and scans[0]["status"] == "running" and requests_of(o.login) > 10:
                return scans[0]
            return None
        scan = wait_until("the first scan to be running", running, timeout_s=60)
        assert scan["status"] == "running"

        r = im("DELETE", f"/v1/integrations/{iid}")
        assert r.status in (200, 204), r
        o.integration_id = None
        assert im("GET", f"/v1/integrations/{iid}").status == 404
        assert leftovers(iid) == {}

        # The worker stops at its next lease renewal: the simulator's request counter stops
        # moving within a few seconds (a request in flight may still land).
        def stopped():
            before = requests_of(o.login)
            time.sleep(2 * DELAY_MS / 1000 + 1)
            return requests_of(o.login) == before
        wait_until("the worker to stop calling the simulator", stopped, timeout_s=15,
                   interval_s=0)
        settled = requests_of(o.login)
        assert settled < REPOS * 3, "the scan ran to its end instead of stopping"
        time.sleep(5)
        assert requests_of(o.login) == settled, "the worker resumed calling a deleted tenant"

        # Nothing of it comes back: no result is applied for a deleted integration.
        assert leftovers(iid) == {}
        r = fa("GET", f"/v1/findings?integration_id={iid}&include_resolved=true")
        assert r.status == 404 or (r.status == 200 and r.body["findings"] == []), r

        # The worker said why it stopped, and sent no end message for the scan.
        assert wait_until("the worker's log line about the deleted scan",
                          lambda: worker_log_mentions(scan["id"], "scan deleted with its "
                                                      "integration"), timeout_s=10)
        assert not worker_log_mentions(scan["id"], "scan completed")
        assert not worker_log_mentions(scan["id"], "scan failed")

        metrics = http("GET", cfg("CASB_FINDINGS_URL") + "/metrics")
        assert metrics.status == 200
        assert 'casb_ingest_dropped_total{reason="integration_deleted"}' in metrics.raw
    finally:
        o.cleanup()


def test_delete_stops_a_scan_waiting_out_a_rate_limit():
    """A scan waiting out a long Retry-After (minutes, at worst) renews its lease and checks
    it every second meanwhile: a delete stops it within seconds, not after the wait."""
    o = Org()
    try:
        o.create_integration()
        first = o.wait_scan_done()
        assert first["status"] == "succeeded", first
        r = sim("POST", f"/_sim/orgs/{o.login}/faults", {"mode": "429", "retry_after_s": 120})
        assert r.status in (200, 201, 204), r
        scan = o.scan_now().body
        sid = scan.get("id") or scan.get("scan_id")

        def waiting():
            s = o.scan(sid)
            stats = sim("GET", f"/_sim/orgs/{o.login}/stats").body
            return s and s["status"] == "running" and stats["faults_injected"] > 0
        wait_until("the scan to be waiting out the rate limit", waiting, timeout_s=30)
        t0 = time.time()
        assert im("DELETE", f"/v1/integrations/{o.integration_id}").status == 204
        o.integration_id = None
        wait_until("the worker to stop the deleted scan",
                   lambda: worker_log_mentions(sid, "scan deleted with its integration"),
                   timeout_s=15)
        assert time.time() - t0 < 15
        assert not worker_log_mentions(sid, "scan failed")
    finally:
        o.cleanup()
