"""findings-api's ingest consumer against the running stack: a backlog of one scan's findings
messages on casb.scan.results is applied in runs that share a transaction, and the result is
that of the messages applied one by one.

The backlog is made deterministic by holding the scan's row lock (which every ingest
transaction takes first) while the scan's messages are produced: the first transaction waits,
the consumer's reader meanwhile polls and parses the rest into a run, and the lock's release
lets them through."""

import json
import subprocess
import time
import urllib.request
import uuid

from conftest import cfg, psql, psql_value, wait_until

MESSAGES = 8
PER_MESSAGE = 50
TYPES = ["github.repo.public", "github.org.member_2fa_disabled"]


def batched_total():
    """casb_ingest_batched_messages_total summed over the findings-api replicas."""
    total = 0.0
    for url in cfg("CASB_FINDINGS_URLS").split(","):
        with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("casb_ingest_batched_messages_total "):
                    total += float(line.rsplit(" ", 1)[1])
    return total


def produce(key, values):
    data = b"".join(key.encode() + b"\x1f" + v.encode() + b"\x1e" for v in values)
    subprocess.run(["kcat", "-b", cfg("CASB_KAFKA_BROKERS"), "-P", "-t", "casb.scan.results",
                    "-K", "\x1f", "-D", "\x1e"], input=data, check=True, timeout=30)


def scan_messages(org, sid, started):
    base = {"schema": "casb.scan.result/v1", "scan_id": sid,
            "integration_id": org.integration_id,
            "account_id": "00000000-0000-0000-0000-000000000001", "provider": "github",
            "attempt": 1, "scan_started_at": started}
    out = []
    for seq in range(1, MESSAGES + 1):
        findings = [{"finding_type": TYPES[i % 2],
                     "asset": {"kind": "thing", "id": f"batch-{seq}-{i}"},
                     "details": {"seq": seq}}
                    for i in range(PER_MESSAGE)]
        # Each message also sees batch-shared again: the last message's sighting wins.
        findings.append({"finding_type": TYPES[0], "asset": {"kind": "thing",
                                                             "id": "batch-shared"},
                         "details": {"seq": seq}})
        out.append(dict(base, seq=seq, kind="findings", findings=findings))
    out.append(dict(base, seq=MESSAGES + 1, kind="completed", total_messages=MESSAGES + 1,
                    coverage={"ran": [], "skipped": []}, stats={}))
    return [json.dumps(m) for m in out]


def test_a_backlog_is_applied_in_runs(org):
    sid = str(uuid.uuid4())
    started = psql_value("""
INSERT INTO scans (id, account_id, integration_id, reason, status, started_at, worker_id,
                   lease_until, attempt, attempt_started_at)
SELECT :'sid', account_id, id, 'manual', 'running', now(), 'test-ingest-batches',
       now() + interval '1 hour', 1, now()
  FROM integrations WHERE id = :'iid'
RETURNING to_char(attempt_started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
                         sid=sid, iid=org.integration_id)
    before = batched_total()
    holder = subprocess.Popen(["psql", cfg("CASB_DATABASE_URL"), "-X", "-A", "-t", "-q"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        holder.stdin.write("BEGIN;\n"
                           f"SELECT 'locked' FROM scans WHERE id = '{sid}' FOR UPDATE;\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"
        produce(org.integration_id, scan_messages(org, sid, started))
        time.sleep(3)  # the consumer holds the messages; the first transaction waits
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()

    wait_until("the scan to succeed",
               lambda: psql_value("SELECT status FROM scans WHERE id = :'sid'", sid=sid)
               == "succeeded", timeout_s=60)
    batched = batched_total() - before
    assert batched >= 2, f"no run of several messages was applied ({batched})"

    rows = dict(psql("""
SELECT asset_id, details->>'seq' FROM finding_instances
 WHERE integration_id = :'iid' AND last_scan_id = :'sid'""", iid=org.integration_id, sid=sid))
    assert len(rows) == MESSAGES * PER_MESSAGE + 1
    assert rows["batch-shared"] == str(MESSAGES), "a later message's sighting must win"
    assert rows[f"batch-{MESSAGES}-0"] == str(MESSAGES)
    detected = psql_value("""
SELECT count(*) FROM finding_events WHERE scan_id = :'sid' AND event = 'detected'""", sid=sid)
    assert detected == str(MESSAGES * PER_MESSAGE + 1)
    applied = psql_value("SELECT count(*) FROM ingested_batches WHERE scan_id = :'sid'", sid=sid)
    assert applied == str(MESSAGES + 1), "every message is recorded once"
