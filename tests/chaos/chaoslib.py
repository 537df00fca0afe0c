"""The fault suite's framework: a tenant whose correct findings are known, a fault-free
baseline, the faults (kill -9, broker and database restarts, extra workers, provider faults,
replayed messages) and the checks every scenario ends with. See tests/chaos/README.md.

The HTTP, psql and tenant helpers are tests/integration/conftest.py's (loaded under another
module name, so that pytest's own conftest handling is not involved); the environment of an
extra service process is tests/valgrind/run-service's (lib.sh's casb_proc_start_service)."""

import contextlib
import fcntl
import importlib.machinery
import importlib.util
import json
import os
import random
import signal
import subprocess
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _load(name, path):
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


it = _load("casb_integration_helpers", os.path.join(ROOT, "tests", "integration", "conftest.py"))
svc_env = _load("casb_run_service", os.path.join(ROOT, "tests", "valgrind", "run-service"))

LONG = os.environ.get("CASB_CHAOS_LONG") == "1"
# Short form: 3 organisations of the standard tenant; long form: 6, each with extra
# repositories and members (more findings, more instances per finding).
ORGS = int(os.environ.get("CASB_CHAOS_ORGS", "6" if LONG else "3"))
EXTRA_REPOS = int(os.environ.get("CASB_CHAOS_EXTRA_REPOS", "20" if LONG else "0"))
EXTRA_MEMBERS = int(os.environ.get("CASB_CHAOS_EXTRA_MEMBERS", "10" if LONG else "0"))
ROUNDS = int(os.environ.get("CASB_CHAOS_ROUNDS", "3" if LONG else "1"))
LOCK_PATH = os.environ.get("CASB_STACK_LOCK", "/tmp/casb-stack.lock")
LOCK_TIMEOUT_S = int(os.environ.get("CASB_CHAOS_LOCK_TIMEOUT_S", "900"))
# The worker's scan lease (CASB_LEASE_S, 120 s by default): a scan whose worker was killed can
# be taken over only once it has passed.
LEASE_S = int(os.environ.get("CASB_LEASE_S", "120"))
SETTLE_S = int(os.environ.get("CASB_CHAOS_SETTLE_S", str(LEASE_S + 60)))
FIGURES = os.environ.get("CASB_CHAOS_FIGURES",
                         os.path.join(ROOT, ".local", "chaos", "figures.jsonl"))
RESULTS_TOPIC = "casb.scan.results"


def log(msg):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------
# The stack: lock, lib.sh functions, readiness

@contextlib.contextmanager
def stack_lock():
    """The shared stack's lock (flock(1) on the same file). CASB_CHAOS_LOCK=0 skips it for a
    caller that holds it already (`flock /tmp/casb-stack.lock tests/chaos/run`): taking it
    again from this process would wait for ourselves. Otherwise it waits at most
    LOCK_TIMEOUT_S and then fails, instead of hanging a ctest run."""
    if os.environ.get("CASB_CHAOS_LOCK", "1") == "0":
        yield
        return
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.time() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    pytest.fail(f"{LOCK_PATH} still held after {LOCK_TIMEOUT_S}s "
                                f"(set CASB_CHAOS_LOCK=0 if this run's caller holds it)")
                time.sleep(1)
        yield
    finally:
        os.close(fd)  # releases the lock


LIB = r'''
set -e
. "$CASB_ROOT_DIR/deploy/local/lib.sh"
set -a
. "$CASB_LOCAL/secrets.env"
set +a
"$@"
'''


def lib(*args, timeout=240):
    """Runs one deploy/local/lib.sh function (with the stack's secrets in its environment)."""
    env = dict(os.environ, CASB_ROOT_DIR=ROOT)
    out = subprocess.run(["bash", "-c", LIB, "lib"] + list(args), env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"lib.sh {' '.join(args)} failed: {out.stderr[-2000:]}"
    return out.stdout


SERVICES = {"integration-manager": "CASB_INTEGRATIONS_URL", "findings-api": "CASB_FINDINGS_URL",
            "scheduler": "CASB_SCHEDULER_URL", "scanner-worker": "CASB_SCANNER_URL"}


def ready(url):
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


def wait_stack_ready(timeout_s=120):
    for name, var in SERVICES.items():
        it.wait_until(f"{name} /readyz", lambda: ready(it.cfg(var)), timeout_s)


def restore_stack():
    """deploy/local/up (without the build): starts whatever a scenario left stopped; then every
    service must answer /readyz."""
    env = dict(os.environ, CASB_SKIP_BUILD="1")
    out = subprocess.run([os.path.join(ROOT, "deploy", "local", "up")], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"deploy/local/up failed: {out.stderr[-3000:]}"
    wait_stack_ready()


def pid_of(name):
    path = os.path.join(ROOT, ".local", "run", f"{name}.pid")
    with open(path) as f:
        pid = int(f.read().strip())
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f"casb-{name}".encode() in f.read(), f"pid {pid} of {path} is not casb-{name}"
    return pid


def kill9(name, figures):
    """kill -9 of the stack's copy of a service; waits until it is gone."""
    pid = pid_of(name)
    os.kill(pid, signal.SIGKILL)
    it.wait_until(f"{name} ({pid}) to die", lambda: not os.path.exists(f"/proc/{pid}")
                  or _zombie(pid), 10, 0.05)
    figures["kills"] = figures.get("kills", 0) + 1
    log(f"kill -9 {name} (pid {pid})")


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except OSError:
        return True


def stop_service(name):
    """Stops the stack's copy of a service with SIGTERM (lib.sh's casb_pid_stop)."""
    lib("casb_pid_stop", os.path.join(ROOT, ".local", "run", f"{name}.pid"), f"casb-{name}", "40")


def start_service(name):
    """Starts the stack's copy of a service again (lib.sh) and waits for /readyz."""
    lib("casb_proc_start_service", name)
    it.wait_until(f"{name} /readyz", lambda: ready(it.cfg(SERVICES[name])), 120, 0.2)


class ExtraWorker:
    """One more scanner-worker process with the stack's environment on a free port: same
    consumer group, its own worker id. Stopped with SIGTERM (graceful) or SIGKILL."""

    def __init__(self, n, **extra_env):
        self.addr = svc_env.free_addr()
        env = svc_env.service_env("scanner-worker", self.addr)
        self.worker_id = f"chaos-extra-{n}-{os.getpid()}"
        env["CASB_WORKER_ID"] = self.worker_id
        env.update(extra_env)
        binary = os.path.join(os.environ.get("CASB_BUILD_DIR", os.path.join(ROOT, "build")),
                              "casb-scanner-worker")
        logdir = os.path.join(ROOT, ".local", "logs")
        os.makedirs(logdir, exist_ok=True)
        self.log = open(os.path.join(logdir, f"chaos-worker-{n}.log"), "ab")
        self.proc = subprocess.Popen([binary], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        it.wait_until(f"extra worker {n} /readyz", lambda: ready("http://" + self.addr), 60, 0.2)
        log(f"extra worker {n} up on {self.addr} (pid {self.proc.pid})")

    def stop(self, sig=signal.SIGTERM, timeout_s=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"extra worker {self.proc.pid} ignored SIGTERM for {timeout_s}s")
        self.log.close()
        return self.proc.returncode


# ------------------------------------------------------------------------------------------
# The tenant

def _grow(org):
    """Adds EXTRA_REPOS unprotected private repositories and EXTRA_MEMBERS members without
    2FA to an organisation, and to what a scan of it must find."""
    t, exp = org.tenant, org.expected
    for i in range(EXTRA_REPOS):
        repo = it.make_repo(org.login, f"svc-{i:03d}", protection=None)
        t["repos"].append(repo)
        exp["github.repo.default_branch_unprotected"].add(f"{org.login}/svc-{i:03d}")
    for i in range(EXTRA_MEMBERS):
        login = f"{org.login}-m{i:03d}"
        t["members"].append({"login": login, "id": it._next_id(100_000), "role": "member",
                             "two_factor": False})
        exp["github.org.member_2fa_disabled"].add(login)
    if EXTRA_REPOS or EXTRA_MEMBERS:
        r = it.sim("PUT", f"/_sim/orgs/{org.login}", t)
        assert r.status in (200, 201), r


def snapshot(org):
    """What findings-api holds for one integration: per finding type its instance count and
    the asset ids of its active instances; and every instance's state."""
    by_type, states, finding_ids = {}, {}, {}
    for t, f in org.findings().items():
        insts = org.instances(f["id"])
        active = frozenset(i["asset"]["id"] for i in insts if i["state"] == "active")
        by_type[t] = (f["instance_count"], active)
        finding_ids[t] = f["id"]
        for i in insts:
            states[i["id"]] = i["state"]
    return {"by_type": by_type, "states": states, "finding_ids": finding_ids}


class Tenant:
    """ORGS simulator organisations, each with its GitHub integration and known findings."""

    def __init__(self):
        self.orgs = []
        self.baseline = {}
        self.t0 = None

    def create(self):
        for _ in range(ORGS):
            o = it.Org()
            self.orgs.append(o)
            _grow(o)
            o.create_integration()
        for o in self.orgs:
            first = o.wait_scan_done(timeout_s=180)
            assert first["status"] == "succeeded", "first scan: " + it.describe(first)

    def record_baseline(self):
        """The fault-free run: the first scans' findings, which must be exactly the tenant's
        known ones."""
        for o in self.orgs:
            snap = snapshot(o)
            counts = {t: c for t, (c, _) in snap["by_type"].items() if c > 0}
            assert counts == it.expected_counts(o.expected), \
                f"baseline of {o.login} differs from the known findings: {counts}"
            for t, assets in o.expected.items():
                assert snap["by_type"][t][1] == frozenset(assets), (t, snap["by_type"][t])
            self.baseline[o.integration_id] = snap
        self.t0 = it.psql_value("SELECT now()")

    def ids(self):
        return [o.integration_id for o in self.orgs]

    def cleanup(self):
        for o in self.orgs:
            o.cleanup()

    # --- faults at the provider

    def add_fault(self, **fault):
        for o in self.orgs:
            r = it.sim("POST", f"/_sim/orgs/{o.login}/faults", fault)
            assert r.status in (200, 201), r

    def clear_faults(self):
        for o in self.orgs:
            it.sim("DELETE", f"/_sim/orgs/{o.login}/faults")

    def sim_stats(self):
        total = {}
        for o in self.orgs:
            for k, v in (it.sim("GET", f"/_sim/orgs/{o.login}/stats").body or {}).items():
                if isinstance(v, int):
                    total[k] = total.get(k, 0) + v
        return total

    # --- scans

    def scan_now(self):
        """One manual scan per integration; returns {integration id: scan id}."""
        out = {}
        for o in self.orgs:
            # The provider's request counts start from here (wait_scans_running reads them).
            it.sim("POST", f"/_sim/orgs/{o.login}/stats/reset")
        for o in self.orgs:
            r = it.wait_until("scan-now accepted", lambda: (
                (lambda resp: resp if resp.status in (201, 202) else None)(o.scan_now())),
                timeout_s=60, interval_s=0.5)
            out[o.integration_id] = it.scan_id_of(r.body)
        return out

    def make_due(self):
        """Makes every integration due now, as the scheduler sees it (a scheduled scan)."""
        it.psql("UPDATE integrations SET next_scan_at = now() "
                "WHERE id = ANY(string_to_array(:'ids', ',')::uuid[])", ids=",".join(self.ids()))

    def scans_since(self, since):
        """Rows of the scans table of these integrations queued at or after since."""
        rows = it.psql("SELECT id, integration_id, status, attempt, reason, coalesce(error, '') "
                       "FROM scans WHERE integration_id = ANY(string_to_array(:'ids', ',')::uuid[])"
                       " AND queued_at >= :'since'::timestamptz ORDER BY queued_at",
                       ids=",".join(self.ids()), since=since)
        return [dict(zip(("id", "integration_id", "status", "attempt", "reason", "error"), r))
                for r in rows]

    def wait_settled(self, since, timeout_s=SETTLE_S):
        """Waits (bounded) until no scan since `since` is queued or running; returns the rows
        as they are then (the caller reports the ones still open as stuck)."""
        deadline = time.time() + timeout_s
        while True:
            rows = self.scans_since(since)
            if rows and all(r["status"] not in ("queued", "running") for r in rows):
                return rows
            if time.time() > deadline:
                return rows
            time.sleep(1)

    def results_lag(self):
        """findings-api's consumer lag on casb.scan.results (sum over partitions), or None."""
        try:
            with urllib.request.urlopen(it.cfg("CASB_FINDINGS_URL") + "/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        lag = 0
        for line in text.splitlines():
            if line.startswith("casb_kafka_consumer_lag{") and RESULTS_TOPIC in line:
                lag += int(float(line.rsplit(" ", 1)[1]))
        return lag

    # --- the checks every scenario ends with

    def verify(self, since, requested, figures):
        """requested: how many scans of each integration the scenario asked for. Checks:
        each completed exactly once in effect, findings and instance counts equal the
        baseline's, no instance resolved, no scan stuck in running."""
        rows = self.wait_settled(since)
        problems = [f"scan {r['id']} stuck in {r['status']} (attempt {r['attempt']}) after "
                    f"{SETTLE_S}s" for r in rows if r["status"] in ("queued", "running")]
        for o in self.orgs:
            mine = [r for r in rows if r["integration_id"] == o.integration_id]
            ok = [r for r in mine if r["status"] == "succeeded"]
            bad = [r for r in mine if r["status"] != "succeeded"]
            want = requested.get(o.integration_id, 0)
            if len(ok) != want or bad:
                problems.append(f"{o.login}: {want} scan(s) requested, {len(ok)} succeeded, "
                                f"others: {[(r['id'], r['status'], r['error']) for r in bad]}")
            api = {s["id"]: s["status"] for s in o.scans()}
            for r in mine:
                if api.get(r["id"]) != r["status"]:
                    problems.append(f"scan {r['id']}: table says {r['status']}, "
                                    f"/scans says {api.get(r['id'])}")
        figures["scans"] = figures.get("scans", 0) + len(rows)
        figures["takeovers"] = figures.get("takeovers", 0) + sum(
            max(0, int(r["attempt"]) - 1) for r in rows)
        it.wait_until("findings-api to consume every result message",
                      lambda: self.results_lag() == 0, 60, 0.5)
        compared = 0
        for o in self.orgs:
            base = self.baseline[o.integration_id]
            now = snapshot(o)
            for t, (count, assets) in base["by_type"].items():
                compared += 1
                got = now["by_type"].get(t)
                if got != (count, assets):
                    lost = assets - (got[1] if got else frozenset())
                    extra = (got[1] if got else frozenset()) - assets
                    problems.append(f"{o.login} {t}: baseline {count} instance(s), now "
                                    f"{got[0] if got else None}; lost {sorted(lost)}, "
                                    f"extra {sorted(extra)}")
            for t in set(now["by_type"]) - set(base["by_type"]):
                problems.append(f"{o.login}: new finding type {t}: {now['by_type'][t]}")
            for iid, state in now["states"].items():
                if state != "active":
                    problems.append(f"{o.login}: instance {iid} is {state}")
            for t, fid in now["finding_ids"].items():
                hist = it.fa("GET", f"/v1/findings/{fid}/history?limit=100")
                assert hist.status == 200, hist
                for ev in hist.body["events"]:
                    if ev["event"] == "resolved":
                        problems.append(f"{o.login} {t}: instance {ev['instance_id']} resolved "
                                        f"by scan {ev['scan_id']} at {ev['at']}")
        figures["findings_compared"] = figures.get("findings_compared", 0) + compared
        figures["instances_compared"] = figures.get("instances_compared", 0) + sum(
            len(s["states"]) for s in self.baseline.values())
        return problems


def write_figures(scenario, figures, problems):
    os.makedirs(os.path.dirname(FIGURES), exist_ok=True)
    rec = dict(figures, scenario=scenario, long=LONG, problems=len(problems),
               at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    with open(FIGURES, "a") as f:
        f.write(json.dumps(rec) + "\n")
    log(f"figures {scenario}: {json.dumps(rec)}")


@contextlib.contextmanager
def scenario(name, record_property=None):
    """The frame of one scenario: lock, ready stack, tenant and baseline; afterwards the
    tenant is removed, the stack restored (deploy/local/up) and the figures written.
    Yields (tenant, figures)."""
    figures = {"orgs": ORGS, "rounds": ROUNDS}
    with stack_lock():
        wait_stack_ready()
        tenant = Tenant()
        problems = []
        try:
            tenant.create()
            tenant.record_baseline()
            figures["baseline_findings"] = sum(len(s["by_type"]) for s in
                                               tenant.baseline.values())
            figures["baseline_instances"] = sum(len(s["states"]) for s in
                                                tenant.baseline.values())
            yield tenant, figures, problems
        finally:
            tenant.clear_faults()
            if os.environ.get("CASB_CHAOS_RESTORE", "1") != "0":
                restore_stack()
            tenant.cleanup()
            write_figures(name, figures, problems)
            if record_property:
                for k, v in figures.items():
                    record_property(k, v)


def check(problems):
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------
# Kafka: the result messages of given scans, re-published

def dump_results(scan_ids, timeout_s=30):
    """(key, value) of every message on casb.scan.results that belongs to one of scan_ids."""
    out = subprocess.run(
        ["timeout", str(timeout_s), "kcat", "-b", it.cfg("CASB_KAFKA_BROKERS"), "-C", "-t",
         RESULTS_TOPIC, "-o", "beginning", "-e", "-q", "-f", "%k\x1f%s\x1e"],
        capture_output=True)
    assert out.returncode == 0, out.stderr
    msgs = []
    wanted = set(scan_ids)
    for rec in out.stdout.split(b"\x1e"):
        if b"\x1f" not in rec:
            continue
        key, value = rec.split(b"\x1f", 1)
        try:
            sid = json.loads(value).get("scan_id")
        except ValueError:
            continue
        if sid in wanted:
            msgs.append((key, value))
    return msgs


def publish_results(msgs):
    """Publishes (key, value) pairs to casb.scan.results in the given order."""
    data = b"".join(k + b"\x1f" + v + b"\x1e" for k, v in msgs)
    out = subprocess.run(["kcat", "-b", it.cfg("CASB_KAFKA_BROKERS"), "-P", "-t", RESULTS_TOPIC,
                          "-K", "\x1f", "-D", "\x1e"], input=data, capture_output=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr


def shuffled(items, seed):
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


# ------------------------------------------------------------------------------------------
# Hooks in the database: a delay in a trigger on the rows of this tenant only

@contextlib.contextmanager
def db_delay(name, table, event, seconds, where):
    """A test-owned trigger that sleeps `seconds` in `event` (e.g. 'BEFORE INSERT') of each
    row of `table` matching `where` (SQL over NEW): it widens the window a fault must hit
    (a relay between produce and mark-sent, an ingest between two batches). Dropped after.
    DDL takes no parameters: callers pass only ids they generated, checked as UUIDs."""
    fn = f"casb_chaos_{name}"
    it.psql(f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF {where} THEN PERFORM pg_sleep({float(seconds)}); END IF; "
            f"RETURN NEW; END $$;\n"
            f"DROP TRIGGER IF EXISTS {fn} ON {table};\n"
            f"CREATE TRIGGER {fn} {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {fn}();")
    try:
        yield
    finally:
        it.wait_until("PostgreSQL to answer", lambda: _pg_answers(), 120, 1)
        it.psql(f"DROP TRIGGER IF EXISTS {fn} ON {table}; DROP FUNCTION IF EXISTS {fn}();")


def _pg_answers():
    try:
        return it.psql_value("SELECT 1") == "1"
    except AssertionError:
        return False


def uuid_list(ids):
    """ids as a SQL array literal of UUIDs (each checked)."""
    import uuid as _uuid
    return "ARRAY[" + ",".join(f"'{_uuid.UUID(i)}'" for i in ids) + "]::uuid[]"


def ingested(scan_ids):
    """How many result batches of these scans findings-api has applied."""
    return int(it.psql_value("SELECT count(*) FROM ingested_batches "
                             "WHERE scan_id = ANY(string_to_array(:'ids', ',')::uuid[])",
                             ids=",".join(scan_ids)))


def wait_scans_running(tenant, scan_ids, min_requests=3, timeout_s=60):
    """Waits until one of the scans is running (leased by a worker) and the provider has
    answered at least min_requests requests for this tenant: a worker is in the middle of a
    scan (one worker scans one integration at a time, so the others may still be queued)."""
    def mid():
        rows = it.psql("SELECT status FROM scans WHERE id = ANY(string_to_array(:'ids', ',')"
                       "::uuid[])", ids=",".join(scan_ids))
        if not any(r[0] == "running" for r in rows):
            return None
        return tenant.sim_stats().get("requests", 0) >= min_requests
    it.wait_until("a scan to be in the middle", mid, timeout_s, 0.1)


def metric(url, name):
    """Sum of a metric's samples on a service's /metrics (0 when absent)."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total
