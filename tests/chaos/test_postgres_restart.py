"""(5) Restart PostgreSQL in the middle of an ingest (a test trigger slows the tenant's
batches down so that the restart comes between two of them)."""

import chaoslib as c


def test_postgres_restart(record_property):
    with c.scenario("postgres_restart", record_property) as (t, fig, problems):
        for _ in range(c.ROUNDS):
            since = c.it.psql_value("SELECT now()")
            ids = [r["id"] for r in t.scans_since("-infinity")]  # none of the next ones yet
            where = (f"NEW.scan_id IN (SELECT id FROM scans WHERE integration_id = "
                     f"ANY({c.uuid_list(t.ids())}) AND NOT (id = ANY({c.uuid_list(ids)})))")
            with c.db_delay("delay_ingest_pg", "ingested_batches", "BEFORE INSERT", 0.7, where):
                scans = t.scan_now()
                new = list(scans.values())
                c.it.wait_until("a first batch applied", lambda: c.ingested(new) > 0, 90, 0.05)
                c.lib("casb_pg_stop")
                c.lib("casb_pg_start")
                fig["database_restarts"] = fig.get("database_restarts", 0) + 1
            problems += t.verify(since, {i: 1 for i in scans}, fig)
        c.check(problems)
