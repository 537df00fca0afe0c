"""What the benchmark scripts share: the local stack's environment, psql, /proc readings."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_ACCOUNT = "00000000-0000-0000-0000-000000000001"


def load_env():
    """.local/casb.env of the running stack (deploy/local/up writes it)."""
    env = {}
    with open(os.path.join(ROOT, ".local", "casb.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def psql(env, sql, **params):
    """Runs sql with psql variables (:'name'); returns its unaligned output. Exits on error."""
    args = ["psql", env["CASB_DATABASE_URL"], "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]
    for k, v in params.items():
        args += ["-v", f"{k}={v}"]
    out = subprocess.run(args, input=sql, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"psql failed: {out.stderr}")
    return out.stdout.strip()


def service_pid(name):
    with open(os.path.join(ROOT, ".local", "run", f"{name}.pid")) as f:
        return int(f.read().strip())


def status_kb(pid, field):
    """A /proc/<pid>/status field in kB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


# ---- the results contract (tests/bench/README.md): --repeat, --json, --quick ----

def results_parser(doc):
    """An argument parser with the options every bench takes; argparse exits 2 on bad ones."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of the scenario (median)")
    ap.add_argument("--json", metavar="FILE", help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the harness")
    return ap


def median(xs):
    s = sorted(xs)
    n = len(s)
    return None if n == 0 else (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2)


def figure(fid, label, unit, samples, baseline=None, target=None):
    """One figure: samples of the value, optional baseline (label, samples) and target
    (op, value, of). The ratio is value / baseline."""
    value = median(samples)
    base = None
    ratio = None
    if baseline is not None:
        base = {"label": baseline[0], "value": median(baseline[1]), "samples": baseline[1]}
        if base["value"]:
            ratio = round(value / base["value"], 3)
    met = None
    if target is not None:
        op, tv, of = target
        x = ratio if of == "ratio" else value
        met = None if x is None else (x >= tv if op == ">=" else x <= tv if op == "<=" else
                                      x < tv if op == "<" else x > tv)
        target = {"op": op, "value": tv, "of": of}
    return {"id": fid, "label": label, "value": value, "unit": unit, "samples": samples,
            "baseline": base, "ratio": ratio, "target": target, "met": met}


def write_results(path, bench, params, figures, notes):
    if path:
        with open(path, "w") as f:
            json.dump({"bench": bench, "params": params, "figures": figures, "notes": notes},
                      f, indent=2)
            f.write("\n")


class PsqlSession:
    """One psql process kept open, for polling: a statement costs a round trip, not a process
    start. query() returns the unaligned output; raises RuntimeError when psql stops (an SQL
    error ends it: ON_ERROR_STOP)."""

    END = "__casb_bench_end__"

    def __init__(self, env):
        self.proc = subprocess.Popen(
            ["psql", env["CASB_DATABASE_URL"], "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def query(self, sql):
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + self.END + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("psql: " + self.proc.stderr.read().strip())
            if line.rstrip("\n") == self.END:
                return "\n".join(lines)
            lines.append(line.rstrip("\n"))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def stack_lib(script, timeout=300):
    """Runs bash with deploy/local/lib.sh sourced (its service helpers); returns stdout."""
    out = subprocess.run(["bash", "-c", f'. "{ROOT}/deploy/local/lib.sh"\n{script}'],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"lib.sh: {script!r} failed: {out.stderr[-2000:]}")
    return out.stdout


def checkpoint():
    """CHECKPOINT, as the local stack's database superuser: what a script just wrote (a seed)
    is then on disk, not written out over the next minutes while the script measures."""
    stack_lib("casb_psql_super -d postgres -c CHECKPOINT")


def stop_service(svc):
    """Stops every running replica of svc; returns their names, for start_replicas."""
    names = stack_lib(f'casb_svc_instances "{svc}"').split()
    running = [n for n in names if stack_lib(f'casb_svc_running "{n}" && echo y || true').strip()]
    for n in running:
        stack_lib(f'casb_replica_stop "{n}"')
    return running


def start_replicas(names):
    """Starts the replicas stop_service stopped, each until it answers /readyz."""
    for n in names:
        stack_lib(f'casb_replica_start "{n}"')


def metric_sum(urls, name):
    """The sum over the replicas at urls (comma-separated) of a Prometheus counter or gauge,
    all label sets included."""
    total = 0.0
    for url in urls.split(","):
        with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    total += float(line.rsplit(" ", 1)[1])
    return total


def call(env, base, method, path, body=None, auth=True, timeout_s=120):
    """One JSON request to the service whose URL is env[base] (CASB_INTEGRATIONS_URL, ...),
    with the admin token unless auth is false. Returns (status, parsed body or None; an
    error body that is not JSON as text)."""
    req = urllib.request.Request(env[base] + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if auth:
        req.add_header("Authorization", f"Bearer {env['CASB_TOKEN']}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else None
        except ValueError:
            return e.code, raw.decode(errors="replace")


def set_latency(env, ms):
    """The simulator's added latency per provider request; False when it has no such knob."""
    status, _ = call(env, "CASB_SIM_URL", "PUT", "/_sim/latency", {"ms": ms}, auth=False)
    return status == 200