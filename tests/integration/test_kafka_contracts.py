"""The Kafka message contracts, read back from the real broker: the job of a scan on
casb.scan.jobs, its results on casb.scan.results (seq 1..N, ending with completed), and the
integration's lifecycle events on casb.integration.events. Keys are integration ids."""

import json

from conftest import im, kafka_dump, wait_until


def messages(topic, **match):
    out = []
    for line in kafka_dump(topic).splitlines():
        key, _, value = line.partition("\t")
        try:
            msg = json.loads(value)
        except ValueError:
            continue
        if all(msg.get(k) == v for k, v in match.items()):
            out.append((key, msg))
    return out


def test_scan_job_and_results_follow_the_contract(org):
    scan = org.scans()[0]
    sid, iid = scan["id"], org.integration_id

    jobs = messages("casb.scan.jobs", scan_id=sid)
    assert len(jobs) == 1, jobs
    key, job = jobs[0]
    assert key == iid
    assert job["schema"] == "casb.scan.job/v1"
    assert job["integration_id"] == iid and job["provider"] == "github"
    assert job["reason"] == "first"
    assert job["account_id"] == "00000000-0000-0000-0000-000000000001"
    assert job["job_id"] and job["requested_at"].endswith("Z")

    results = messages("casb.scan.results", scan_id=sid)
    assert results
    assert all(k == iid for k, _ in results)
    msgs = sorted((m for _, m in results), key=lambda m: m["seq"])
    seqs = [m["seq"] for m in msgs]
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # each seq exactly once
    last = msgs[-1]
    assert last["kind"] == "completed"
    assert last["total_messages"] == len(msgs)
    for m in msgs:
        assert m["schema"] == "casb.scan.result/v1"
        assert m["integration_id"] == iid and m["provider"] == "github"
        assert m["scan_started_at"] == msgs[0]["scan_started_at"]
        assert m["attempt"] == msgs[0]["attempt"] >= 1  # one attempt (no takeover here)
        assert m["kind"] in ("findings", "progress", "completed")
    ran = set(last["coverage"]["ran"])
    assert set(org.expected) <= ran
    sent = [f for m in msgs if m["kind"] == "findings" for f in m["findings"]]
    assert all(len(m["findings"]) <= 500 for m in msgs if m["kind"] == "findings")
    got = {}
    for f in sent:
        got.setdefault(f["finding_type"], set()).add(f["asset"]["id"])
    assert got == org.expected
    assert last["stats"]["findings"] == len(sent)
    assert last["stats"]["api_calls"] > 0


def test_integration_events(org):
    iid = org.integration_id
    assert im("POST", f"/v1/integrations/{iid}/pause").status == 200
    assert im("POST", f"/v1/integrations/{iid}/resume").status == 200

    def events():
        evs = [m for k, m in messages("casb.integration.events", integration_id=iid)
               if k == iid]
        names = [e["event"] for e in evs]
        return evs if {"created", "paused", "resumed"} <= set(names) else None
    evs = wait_until("created, paused and resumed events", events, 20, 1)
    for e in evs:
        assert e["schema"] == "casb.integration.event/v1"
        assert e["provider"] == "github" and e["at"].endswith("Z")
    names = [e["event"] for e in evs]
    assert names.index("created") < names.index("paused") < names.index("resumed")
