"""Replicas on one stack: several schedulers, scanner-workers and findings-apis share the work
without doing any of it twice, and each service stops cleanly on SIGTERM (a worker mid-scan
hands its job back to another worker).

Needs no special stack: the extra replicas are started here through deploy/local/lib.sh
(casb_replica_start, the same environment as the stack's own copy but for the port) and
stopped at the end; a replica of the stack that a test stops is started again."""

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import (GOOD_PROTECTION, ROOT, Org, cfg, describe, expected_counts, http,
                      kafka_dump, make_repo, psql, psql_value, sim, wait_until)

LIB = os.path.join(ROOT, "deploy", "local", "lib.sh")
RUN_DIR = os.path.join(ROOT, ".local", "run")
# Integrations made due together for the schedulers, spread over DUE_SPREAD_MS so that every
# scheduler's tick (1 s) falls inside the window and each claims a share.
INTEGRATIONS = 24
DUE_SPREAD_MS = 2400
# The worker's scan lease (CASB_LEASE_S default): a job handed back must be taken again long
# before a lease left behind would have expired.
LEASE_S = 120
HANDOVER_MAX_S = 30
# CASB_SHUTDOWN_GRACE_S of the local stack (lib.sh) plus the time to close connections.
STOP_MAX_S = 12


def lib(script, timeout=120):
    """Runs bash with deploy/local/lib.sh sourced; returns stdout."""
    out = subprocess.run(["bash", "-c", f'. "{LIB}"\n{script}'], capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"lib.sh: {script!r} failed: {out.stderr[-2000:]}"
    return out.stdout


def pid_of(name):
    try:
        with open(os.path.join(RUN_DIR, name + ".pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def free_replica(svc, taken=()):
    """The name of the first replica of svc (k >= 2) that neither runs nor is in taken."""
    for k in range(2, 10):
        name = f"{svc}-{k}"
        if name not in taken and pid_of(name) is None:
            return name
    pytest.fail(f"no free replica number for {svc}")


def addr_of(name):
    return lib(f'casb_svc_addr "{name}"').strip()


def log_path(name):
    return os.path.join(cfg("CASB_LOG_DIR"), name + ".log")


class LogTail:
    """The lines a process logs from now on (its log file is appended to across runs)."""

    def __init__(self, name):
        self.name = name
        path = log_path(name)
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0

    def records(self):
        path = log_path(self.name)
        if not os.path.exists(path):
            return []
        with open(path, errors="replace") as f:
            f.seek(self.offset)
            out = []
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
            return out

    def messages(self, msg, **fields):
        return [r for r in self.records() if r.get("msg") == msg and
                all(r.get(k) == v for k, v in fields.items())]


def start_replica(name):
    lib(f'casb_replica_start "{name}"', timeout=150)
    assert pid_of(name), f"{name} did not start"


def stop_replica(name):
    lib(f'casb_replica_stop "{name}"', timeout=60)


def metric_sum(name, metric):
    """The sum of a counter's series in a replica's /metrics."""
    with urllib.request.urlopen(f"http://{addr_of(name)}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if re.match(rf"{metric}(\{{| )", line))


def sigterm_and_time(name):
    """SIGTERM to a running replica; returns the seconds until its process was gone."""
    pid = pid_of(name)
    assert pid, f"{name} is not running"
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    wait_until(f"{name} (pid {pid}) to exit", lambda: not os.path.exists(f"/proc/{pid}"),
               timeout_s=60, interval_s=0.05)
    return time.monotonic() - t0


def assigned(tail):
    """A consumer replica has joined its group and holds partitions."""
    return any(int(r.get("partitions", "0")) > 0
               for r in tail.messages("kafka partitions assigned"))


@pytest.fixture(scope="module")
def replicas():
    """Two more schedulers, one more scanner-worker and one more findings-api, ready and in
    their consumer groups; stopped afterwards."""
    names = {"scheduler": [], "scanner-worker": [], "findings-api": []}
    started = []
    try:
        for svc, count in (("scheduler", 2), ("scanner-worker", 1), ("findings-api", 1)):
            for _ in range(count):
                name = free_replica(svc, started)
                tail = LogTail(name)
                start_replica(name)
                started.append(name)
                names[svc].append((name, tail))
        for svc in ("scanner-worker", "findings-api"):
            for name, tail in names[svc]:
                wait_until(f"{name} to be assigned partitions", lambda: assigned(tail),
                           timeout_s=45)
        yield {svc: [n for n, _ in v] for svc, v in names.items()}
    finally:
        for name in started:
            stop_replica(name)


def all_instances(svc, reps):
    return [svc] + reps[svc]


def logged_by(tails, msg, scan_ids):
    """scan id -> the replicas that logged msg about it (of scan_ids only)."""
    out = {}
    for name, tail in tails.items():
        for rec in tail.messages(msg):
            if rec.get("scan_id") in scan_ids:
                out.setdefault(rec["scan_id"], []).append(name)
    return out


def jobs_by_scan():
    """scan id -> number of messages in casb.scan.jobs."""
    counts = {}
    for line in kafka_dump("casb.scan.jobs").splitlines():
        _, _, value = line.partition("\t")
        try:
            sid = json.loads(value).get("scan_id")
        except (ValueError, AttributeError):
            continue
        if sid:
            counts[sid] = counts.get(sid, 0) + 1
    return counts


def test_replicas_dispatch_scan_and_ingest_each_scan_once(replicas):
    schedulers = all_instances("scheduler", replicas)
    workers = all_instances("scanner-worker", replicas)
    apis = all_instances("findings-api", replicas)
    sched_tails = {n: LogTail(n) for n in schedulers}
    worker_tails = {n: LogTail(n) for n in workers}
    ingest_before = {n: metric_sum(n, "casb_ingest_messages_total") for n in apis}
    orgs = []
    try:
        for _ in range(INTEGRATIONS):
            o = Org()
            orgs.append(o)
            o.create_integration()
        ids = "{" + ",".join(o.integration_id for o in orgs) + "}"

        def scans_done(reason, want):
            n = int(psql_value(
                "SELECT count(*) FROM scans WHERE integration_id = ANY(:'ids'::uuid[])"
                " AND reason = :'reason' AND status IN ('succeeded', 'failed', 'cancelled')",
                ids=ids, reason=reason))
            return n >= want
        wait_until("the first scans", lambda: scans_done("first", INTEGRATIONS), timeout_s=60)

        # Due together, a few milliseconds apart: every scheduler's claim races the others.
        psql("UPDATE integrations i SET next_scan_at = now() + x.n * :'step'::interval"
             "  FROM unnest(:'ids'::uuid[]) WITH ORDINALITY AS x(id, n) WHERE i.id = x.id",
             ids=ids, step=f"{DUE_SPREAD_MS // INTEGRATIONS} milliseconds")
        wait_until("the scheduled scans", lambda: scans_done("scheduled", INTEGRATIONS),
                   timeout_s=60)

        rows = psql("SELECT s.id, s.integration_id, s.reason, s.status, s.attempt, s.worker_id,"
                    "       (SELECT count(*) FROM scan_outbox o WHERE o.scan_id = s.id),"
                    "       (SELECT count(*) FROM scan_outbox o WHERE o.scan_id = s.id"
                    "                                            AND o.sent_at IS NULL)"
                    "  FROM scans s WHERE s.integration_id = ANY(:'ids'::uuid[])", ids=ids)
        scans = {r[0]: r for r in rows}
        per_integration = {}
        for r in rows:
            per_integration.setdefault((r[1], r[2]), []).append(r[0])
        doubled = {k: v for k, v in per_integration.items() if len(v) != 1}
        assert not doubled, f"integrations with more than one scan of a kind: {doubled}"
        assert len(scans) == 2 * INTEGRATIONS
        bad = [r for r in rows if r[3] != "succeeded" or r[4] != "1" or r[6] != "1" or
               r[7] != "0"]
        assert not bad, f"scans not (succeeded, attempt 1, one outbox row, sent): {bad}"

        # Each due integration claimed by exactly one scheduler.
        claimed_by = logged_by(sched_tails, "scan scheduled", scans)
        scheduled = [sid for sid, r in scans.items() if r[2] == "scheduled"]
        assert sorted(claimed_by) == sorted(scheduled)
        assert all(len(v) == 1 for v in claimed_by.values()), claimed_by
        share = {n: sum(1 for v in claimed_by.values() if v[0] == n) for n in schedulers}
        assert sum(1 for c in share.values() if c > 0) >= 2, f"claims by scheduler: {share}"

        # casb.scan.jobs: every scan's job published once, whichever scheduler relayed it.
        jobs = jobs_by_scan()
        dup_jobs = {sid: jobs.get(sid, 0) for sid in scans if jobs.get(sid, 0) != 1}
        assert not dup_jobs, f"scans whose job is not exactly once in casb.scan.jobs: {dup_jobs}"

        # The workers share the topic, each scan is run once, and no integration by two
        # workers at a time (attempts of one integration never overlap).
        started_by = logged_by(worker_tails, "scan started", scans)
        assert sorted(started_by) == sorted(scans)
        assert all(len(v) == 1 for v in started_by.values()), started_by
        worker_share = {n: sum(1 for v in started_by.values() if v[0] == n) for n in workers}
        assert all(c > 0 for c in worker_share.values()), f"scans by worker: {worker_share}"
        overlaps = psql_value(
            "SELECT count(*) FROM scans a JOIN scans b ON a.integration_id = b.integration_id"
            "   AND a.id < b.id"
            " WHERE a.integration_id = ANY(:'ids'::uuid[])"
            "   AND tstzrange(a.attempt_started_at, a.finished_at)"
            "    && tstzrange(b.attempt_started_at, b.finished_at)", ids=ids)
        assert overlaps == "0"

        # Both findings-api replicas ingested, and every integration's findings are right.
        ingested = {n: metric_sum(n, "casb_ingest_messages_total") - ingest_before[n]
                    for n in apis}
        assert all(v > 0 for v in ingested.values()), f"results ingested by replica: {ingested}"
        wrong = {o.login: o.active_counts() for o in orgs
                 if o.active_counts() != expected_counts(o.expected)}
        assert not wrong, f"findings differ from the tenants' known ones: {wrong}"
        print(f"\nreplicas: schedulers {schedulers}, workers {workers}, findings-apis {apis}")
        print(f"scans {len(scans)} (first + scheduled of {INTEGRATIONS} integrations); "
              f"claims by scheduler {share}; scans by worker {worker_share}; "
              f"results ingested by replica {ingested}; duplicates 0")
    finally:
        for o in orgs:
            o.cleanup()


def test_sigterm_mid_scan_hands_the_job_to_another_worker(replicas):
    workers = all_instances("scanner-worker", replicas)
    tails = {n: LogTail(n) for n in workers}
    o = Org()
    try:
        # A tenant answered slowly: the scan is surely running when its worker is stopped.
        o.tenant["repos"] += [make_repo(o.login, f"svc-{i:03d}", protection=GOOD_PROTECTION)
                              for i in range(80)]
        assert sim("PUT", f"/_sim/orgs/{o.login}", o.tenant).status in (200, 201)
        r = sim("POST", f"/_sim/orgs/{o.login}/faults", {"mode": "slow", "delay_ms": 300})
        assert r.status in (200, 201, 204), r
        o.create_integration()

        def running():
            row = psql("SELECT id, worker_id, attempt FROM scans WHERE integration_id = :'id'"
                       "   AND status = 'running'", id=o.integration_id)
            return row[0] if row else None
        scan_id, holder_id, attempt = wait_until("the scan to run", running, timeout_s=60)
        assert attempt == "1"
        holder_pid = int(holder_id.rsplit("-", 1)[1])
        holder = next(n for n in workers if pid_of(n) == holder_pid)
        wait_until("the worker to be inside the tenant's API calls",
                   lambda: sim("GET", f"/_sim/orgs/{o.login}/stats").body["requests"] > 5,
                   timeout_s=30)

        stopped_at = time.time()
        took = sigterm_and_time(holder)
        assert took < STOP_MAX_S, f"{holder} took {took:.1f}s to stop"
        assert tails[holder].messages("scan abandoned on shutdown; the job will be redelivered",
                                      scan_id=scan_id)
        assert tails[holder].messages("stopped"), f"{holder} did not log a clean stop"
        sim("DELETE", f"/_sim/orgs/{o.login}/faults")

        done = o.wait_scan_done(scan_id, timeout_s=60)
        assert done["status"] == "succeeded", describe(done)
        row = psql("SELECT attempt, worker_id, extract(epoch FROM attempt_started_at)"
                   "  FROM scans WHERE id = :'id'", id=scan_id)[0]
        assert row[0] == "2", f"attempts: {row[0]}"
        assert row[1] != holder_id
        # Taken again well before the 120 s lease would have expired: it was released.
        handover = float(row[2]) - stopped_at
        assert handover < HANDOVER_MAX_S, f"job taken again after {handover:.1f}s"
        assert jobs_by_scan().get(scan_id) == 1, "the job was produced again, not redelivered"
        completed = [n for n, t in tails.items() if t.messages("scan completed", scan_id=scan_id)]
        assert len(completed) == 1, completed
        assert o.active_counts() == expected_counts(o.expected)
        print(f"\nworker {holder} stopped mid-scan in {took:.2f}s; scan {scan_id} taken again "
              f"by {completed[0]} after {handover:.1f}s (attempt 2), completed once")
    finally:
        o.cleanup()
        # The stack's own worker (replica 1) may be the one stopped: it runs again.
        if pid_of("scanner-worker") is None:
            start_replica("scanner-worker")


@pytest.mark.parametrize("svc", ["integration-manager", "scheduler", "scanner-worker",
                                 "findings-api"])
def test_sigterm_stops_a_replica_cleanly(svc, replicas):
    name = free_replica(svc, sum(replicas.values(), []))
    tail = LogTail(name)
    start_replica(name)
    try:
        if svc in ("scanner-worker", "findings-api"):
            wait_until(f"{name} to be assigned partitions", lambda: assigned(tail),
                       timeout_s=45)
        took = sigterm_and_time(name)
        print(f"\n{name} stopped in {took:.2f}s")
        assert took < STOP_MAX_S, f"{name} took {took:.1f}s to stop"
        assert tail.messages("shutting down") and tail.messages("stopped"), \
            f"{name} did not log a clean stop: {[r.get('msg') for r in tail.records()][-10:]}"
        assert not [r for r in tail.records() if r.get("level") == "error"], \
            [r for r in tail.records() if r.get("level") == "error"]
        if svc in ("scanner-worker", "findings-api"):
            assert tail.messages("kafka partitions revoked"), "left its group without revoke"
    finally:
        stop_replica(name)


# A grace period short enough that the test sees the watchdog act, and a request held far
# longer by the simulator (IM validates new credentials against the provider).
SHORT_GRACE_S = 2
WATCHDOG_MARGIN_S = 5
HOLD_MS = 30000


def test_shutdown_never_outlasts_the_grace_period(new_org):
    o = new_org()
    r = sim("POST", f"/_sim/orgs/{o.login}/faults", {"mode": "slow", "delay_ms": HOLD_MS})
    assert r.status in (200, 201, 204), r
    name = free_replica("integration-manager")
    tail = LogTail(name)
    lib(f'CASB_SHUTDOWN_GRACE_S={SHORT_GRACE_S} casb_replica_start "{name}"', timeout=150)
    body = {"provider": "github", "name": o.login,
            "config": {"organization": o.login, "api_base_url": cfg("CASB_SIM_URL")},
            "auth_method": "token", "credentials": o.credentials()}
    url, token = f"http://{addr_of(name)}/v1/integrations", cfg("CASB_TOKEN")

    def post():
        try:
            http("POST", url, body, token=token, timeout=60)
        except OSError:
            pass  # the replica exits under it: no answer is the expected outcome
    request = threading.Thread(target=post, daemon=True)
    try:
        request.start()
        wait_until("the request to be held by the simulator",
                   lambda: sim("GET", f"/_sim/orgs/{o.login}/stats").body["requests"] > 0,
                   timeout_s=30, interval_s=0.1)
        took = sigterm_and_time(name)
        print(f"\n{name} with a request held {HOLD_MS // 1000}s stopped in {took:.2f}s "
              f"(grace {SHORT_GRACE_S}s)")
        assert took < SHORT_GRACE_S + WATCHDOG_MARGIN_S + 4, f"{name} took {took:.1f}s"
        assert tail.messages("shutdown took longer than the grace period; exiting now")
    finally:
        stop_replica(name)
        for (iid,) in psql("SELECT id FROM integrations WHERE name = :'n'", n=o.login):
            o.integration_id = iid
