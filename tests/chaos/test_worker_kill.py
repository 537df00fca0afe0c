"""(1) kill -9 a scanner-worker in the middle of a scan (made slow by the simulator): the
redelivered job waits for the dead worker's lease to lapse and takes the scan over (a new
attempt); each scan completes exactly once in effect and the findings equal the baseline's.

Short form: the stack's worker is stopped for the scenario and the killed worker, and the one
that takes over, are extra processes with CASB_LEASE_S=30 (the shortest lease allowed), so
that the takeover comes within 30 s. Long form: the stack's own worker (lease 120 s) is
killed and started again."""

import chaoslib as c

SHORT_LEASE = {"CASB_LEASE_S": "30"}


def test_worker_kill(record_property):
    with c.scenario("worker_kill", record_property) as (t, fig, problems):
        for rnd in range(c.ROUNDS):
            since = c.it.psql_value("SELECT now()")
            t.add_fault(mode="slow", delay_ms=300)
            if c.LONG:
                scans = t.scan_now()
                c.wait_scans_running(t, list(scans.values()))
                c.kill9("scanner-worker", fig)
                t.clear_faults()
                c.start_service("scanner-worker")
                problems += t.verify(since, {i: 1 for i in scans}, fig)
                continue
            c.stop_service("scanner-worker")
            victim = c.ExtraWorker(f"{rnd}-victim", **SHORT_LEASE)
            heir = None
            try:
                scans = t.scan_now()
                c.wait_scans_running(t, list(scans.values()))
                victim.stop(c.signal.SIGKILL)
                fig["kills"] = fig.get("kills", 0) + 1
                t.clear_faults()
                heir = c.ExtraWorker(f"{rnd}-heir", **SHORT_LEASE)
                problems += t.verify(since, {i: 1 for i in scans}, fig)
            finally:
                victim.stop(c.signal.SIGKILL)
                if heir:
                    heir.stop()
            if fig.get("takeovers", 0) == 0:
                problems.append("no scan was taken over: the kill did not land mid-scan")
        c.check(problems)
