"""(4) Restart the Kafka broker in the middle of scans (made slow by the simulator)."""

import chaoslib as c


def test_kafka_restart(record_property):
    with c.scenario("kafka_restart", record_property) as (t, fig, problems):
        for _ in range(c.ROUNDS):
            since = c.it.psql_value("SELECT now()")
            t.add_fault(mode="slow", delay_ms=300)
            scans = t.scan_now()
            c.wait_scans_running(t, list(scans.values()))
            c.lib("casb_kafka_stop")
            c.lib("casb_kafka_start")
            fig["broker_restarts"] = fig.get("broker_restarts", 0) + 1
            t.clear_faults()
            problems += t.verify(since, {i: 1 for i in scans}, fig)
        c.check(problems)
