"""(6) Rebalance casb.scan.jobs' consumer group during scans: extra scanner-worker processes
join while the tenant's scans run (slowed by the simulator); the worker busy with a scan
(an extra one or the stack's) leaves with SIGTERM in the middle of it; another joins; then
the extras leave and the stack's worker is started again."""

import chaoslib as c


def test_rebalance(record_property):
    with c.scenario("rebalance", record_property) as (t, fig, problems):
        fig["workers_added"] = fig["workers_removed"] = 0
        for rnd in range(c.ROUNDS):
            since = c.it.psql_value("SELECT now()")
            extras = [c.ExtraWorker(f"{rnd}a")]
            fig["workers_added"] += 1
            t.add_fault(mode="slow", delay_ms=300)
            scans = t.scan_now()
            try:
                c.wait_scans_running(t, list(scans.values()))
                extras.append(c.ExtraWorker(f"{rnd}b"))
                fig["workers_added"] += 1
                c.wait_scans_running(t, list(scans.values()), min_requests=6)
                # The worker leaving is the one in the middle of a scan: it must hand the scan
                # back (graceful shutdown), and another member of the group take it over.
                busy = c.it.psql_value("SELECT worker_id FROM scans WHERE status = 'running' "
                                       "AND id = ANY(string_to_array(:'ids', ',')::uuid[])",
                                       ids=",".join(scans.values()))
                leaving = next((w for w in extras if w.worker_id == busy), None)
                if leaving:
                    extras.remove(leaving)
                    rc = leaving.stop()
                    if rc != 0:
                        problems.append(f"extra worker {busy} exited {rc} on SIGTERM")
                else:
                    c.stop_service("scanner-worker")  # the stack's worker; restored at the end
                fig["workers_removed"] += 1
                fig["busy_worker_removed"] = fig.get("busy_worker_removed", 0) + (1 if busy else 0)
                extras.append(c.ExtraWorker(f"{rnd}c"))
                fig["workers_added"] += 1
                t.clear_faults()
                problems += t.verify(since, {i: 1 for i in scans}, fig)
            finally:
                for w in extras:
                    w.stop()
                    fig["workers_removed"] += 1
            workers = c.it.psql("SELECT DISTINCT worker_id FROM scans WHERE id = ANY("
                                "string_to_array(:'ids', ',')::uuid[])",
                                ids=",".join(scans.values()))
            fig["distinct_workers"] = max(fig.get("distinct_workers", 0), len(workers))
        c.check(problems)
