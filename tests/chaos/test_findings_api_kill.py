"""(3) kill -9 findings-api in the middle of an ingest: the tenant's scans run while
findings-api is down (their result messages pile up in casb.scan.results), then it starts
and is killed again after it applied some of them but not all (a test trigger slows the
tenant's batches down, so that "some but not all" is real)."""

import chaoslib as c


def test_findings_api_kill(record_property):
    with c.scenario("findings_api_kill", record_property) as (t, fig, problems):
        fig["kills_mid_ingest"] = 0
        for _ in range(c.ROUNDS):
            since = c.it.psql_value("SELECT now()")
            c.kill9("findings-api", fig)
            scans = t.scan_now()
            ids = list(scans.values())
            msgs = c.it.wait_until("every result message in Kafka", lambda: (
                lambda m: m if sum(b'"kind":"completed"' in v for _, v in m) == len(ids)
                else None)(c.dump_results(ids)), 90, 0.5)
            fig["messages_in_flight"] = fig.get("messages_in_flight", 0) + len(msgs)
            where = f"NEW.scan_id = ANY({c.uuid_list(ids)})"
            with c.db_delay("delay_ingest", "ingested_batches", "BEFORE INSERT", 0.7, where):
                c.lib("casb_proc_start_service", "findings-api")
                c.it.wait_until("a first batch applied", lambda: c.ingested(ids) > 0, 90, 0.05)
                c.kill9("findings-api", fig)
                done = c.ingested(ids)
                if done < len(msgs):
                    fig["kills_mid_ingest"] += 1
                fig["redelivered_at_least"] = fig.get("redelivered_at_least", 0) + len(msgs) - done
            c.start_service("findings-api")
            problems += t.verify(since, {i: 1 for i in scans}, fig)
        c.check(problems)
