"""(8) Duplicate and out-of-order result messages: every result message of the tenant's
scans so far (the baseline's and a later scan's) is published again twice, shuffled, so that
findings-api sees old scans' batches after newer ones, completions before their findings and
every message more than once."""

import chaoslib as c


def test_duplicate_results(record_property):
    with c.scenario("duplicate_results", record_property) as (t, fig, problems):
        fa = c.it.cfg("CASB_FINDINGS_URL")
        for rnd in range(c.ROUNDS):
            since = c.it.psql_value("SELECT now()")
            scans = t.scan_now()
            t.wait_settled(since, 120)
            ids = [r["id"] for r in t.scans_since("-infinity")]
            msgs = c.dump_results(ids)
            assert msgs, "no result message of the tenant's scans found"
            before = c.metric(fa, "casb_ingest_duplicates_total")
            replay = c.shuffled(msgs + msgs, seed=rnd)
            c.publish_results(replay)
            fig["messages_republished"] = fig.get("messages_republished", 0) + len(replay)
            c.it.wait_until("the replayed messages counted as duplicates", lambda: (
                c.metric(fa, "casb_ingest_duplicates_total") - before >= len(replay)), 60, 0.5)
            fig["duplicates_counted"] = fig.get("duplicates_counted", 0) + int(
                c.metric(fa, "casb_ingest_duplicates_total") - before)
            problems += t.verify(since, {i: 1 for i in scans}, fig)
        c.check(problems)
