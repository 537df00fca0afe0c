"""(2) kill -9 the scheduler between claim and publish.

Two windows, each held open on purpose so that the kill lands in it every time:
- claimed by the scheduler, produced to Kafka, not yet marked sent: a test trigger delays the
  relay's `UPDATE scan_outbox SET sent_at` of this tenant's rows; the kill comes while the
  relay waits in it, so the restarted scheduler publishes the same jobs again (duplicates);
- enqueued (scan row and outbox row committed) with no scheduler alive: scan-now while the
  scheduler is dead, so nothing is published until it is back.
Then a burst of kills at random moments while the tenant's integrations are due."""

import random
import time

import chaoslib as c


def unsent(scan_ids):
    return int(c.it.psql_value(
        "SELECT count(*) FROM scan_outbox WHERE sent_at IS NULL "
        "AND scan_id = ANY(string_to_array(:'ids', ',')::uuid[])", ids=",".join(scan_ids)))


def due_scans(t, since):
    return [r["id"] for r in t.scans_since(since)]


def test_scheduler_kill(record_property):
    with c.scenario("scheduler_kill", record_property) as (t, fig, problems):
        fig["kills_in_window"] = 0
        for rnd in range(c.ROUNDS):
            # Window 1: produced, not marked sent.
            since = c.it.psql_value("SELECT now()")
            where = f"NEW.integration_id = ANY({c.uuid_list(t.ids())}) AND NEW.sent_at IS NOT NULL"
            with c.db_delay("delay_mark_sent", "scan_outbox", "BEFORE UPDATE", 3, where):
                t.make_due()
                ids = c.it.wait_until("the claim", lambda: (
                    lambda s: s if len(s) == len(t.orgs) else None)(due_scans(t, since)), 30, 0.05)
                time.sleep(1)  # the relay is inside the delayed UPDATE
                c.kill9("scheduler", fig)
                if unsent(ids) == len(ids):
                    fig["kills_in_window"] += 1
            c.start_service("scheduler")
            problems += t.verify(since, {i: 1 for i in t.ids()}, fig)

            # Window 2: enqueued while no scheduler runs.
            since = c.it.psql_value("SELECT now()")
            c.kill9("scheduler", fig)
            scans = t.scan_now()
            if unsent(list(scans.values())) == len(scans):
                fig["kills_in_window"] += 1
            c.start_service("scheduler")
            problems += t.verify(since, {i: 1 for i in scans}, fig)

            # A burst: kills at random moments while every integration is due.
            since = c.it.psql_value("SELECT now()")
            t.make_due()
            rng = random.Random(rnd)
            for _ in range(3):
                time.sleep(rng.uniform(0.0, 1.2))
                c.kill9("scheduler", fig)
                c.start_service("scheduler")
            problems += t.verify(since, {i: 1 for i in t.ids()}, fig)
        c.check(problems)
