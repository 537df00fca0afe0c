"""What the benchmark scripts share: the local stack's environment, psql, /proc readings."""

import os
import subprocess
import sys

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
