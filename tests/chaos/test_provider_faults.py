"""(7) 30 % of the provider's answers fail: 429 (with Retry-After), 500 and 503, about 10 %
each, and one request that holds past the worker's HTTP timeout (CASB_HTTP_TIMEOUT_MS,
30 s). Scans complete with the
baseline's findings."""

import chaoslib as c


def test_provider_faults(record_property):
    with c.scenario("provider_faults", record_property) as (t, fig, problems):
        for _ in range(c.ROUNDS):
            since = c.it.psql_value("SELECT now()")
            # The simulator tries faults in order, each with its own draw: 0.1, then
            # 0.9 * 0.111, then 0.8 * 0.125 of the requests: 10 % each.
            # One request of the first organisation holds past the worker's 30 s timeout (one
            # worker scans one organisation at a time: one such wait per round is enough).
            first = t.orgs[0].login
            r = c.it.sim("POST", f"/_sim/orgs/{first}/faults", {
                "mode": "timeout", "count": 1, "delay_ms": 31000, "path_contains": "/members"})
            assert r.status in (200, 201), r
            t.add_fault(mode="429", rate=0.1, retry_after_s=1)
            t.add_fault(mode="500", rate=0.111)
            t.add_fault(mode="503", rate=0.125)
            scans = t.scan_now()
            t.wait_settled(since, 240)
            stats = t.sim_stats()
            fig["provider_requests"] = fig.get("provider_requests", 0) + stats.get("requests", 0)
            fig["provider_faults"] = fig.get("provider_faults", 0) + stats.get("faults_injected", 0)
            t.clear_faults()
            problems += t.verify(since, {i: 1 for i in scans}, fig)
            if stats.get("faults_injected", 0) == 0:
                problems.append(f"no fault injected: {stats}")
        c.check(problems)
