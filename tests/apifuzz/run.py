#!/usr/bin/env python3
"""Runs Schemathesis against one HTTP service of the running local stack, driven by the
service's OpenAPI document (proto/openapi/<service>.yaml), with every response check and
both valid and hostile (negative) data. See tests/apifuzz/README.md.

    tests/apifuzz/run.py integration-manager --junit build/junit/apifuzz.integration_manager.xml
    tests/apifuzz/run.py findings-api --long

Exit status: Schemathesis's (0 when no check failed), 2 when the run could not start.
The last line printed gives the figures: "apifuzz <service>: N cases generated,
N operations, N failed, N s, <whose account>"."""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ST = os.path.join(ROOT, ".local", "venv-apifuzz", "bin", "st")

# service -> (OpenAPI document, the casb.env variable holding its base URL)
SERVICES = {
    "integration-manager": ("integration-manager.yaml", "CASB_INTEGRATIONS_URL"),
    "findings-api": ("findings-api.yaml", "CASB_FINDINGS_URL"),
}

# Never fuzzed: the OAuth callback exchanges the code with the provider's token endpoint and
# answers with a redirect: fuzzing it would send requests to wherever the state points.
ALWAYS_EXCLUDED = ["oauthCallback"]

# Excluded when the token belongs to the shared account (CASB_APIFUZZ_ISOLATED unset): they
# create objects the other tests and the demo would then see (integrations get scanned,
# webhooks get deliveries, tokens could act on everything). Operations on one object by id
# stay in: with the response data sources off (see config_toml) their ids are random UUIDs
# that name nothing.
SHARED_ACCOUNT_EXCLUDED = ["createIntegration", "createWebhook", "createToken"]

SHORT_SEED = 20261129
SHORT_EXAMPLES = 100
LONG_EXAMPLES = 1000


def load_env():
    """.local/casb.env (KEY=value lines), then the CASB_* variables of the environment (they win)."""
    path = os.path.join(ROOT, ".local", "casb.env")
    lines = []
    if os.path.exists(path):
        with open(path) as f:
            lines = f.read().splitlines()
    env = dict(line.strip().split("=", 1) for line in lines if "=" in line and line[0] != "#")
    env.update({k: v for k, v in os.environ.items() if k.startswith("CASB_") and v})
    return env


def config_toml(isolated, long_run, token):
    """tests/apifuzz/schemathesis.toml plus what depends on the token. In the shared account
    the examples, coverage and fuzzing phases must not reuse ids from earlier responses (they
    would PATCH, DELETE, pause or ignore the demo's and other tests' objects) and the stateful
    phase, which chains list -> change -> delete, stays off. The token goes here, in a
    private temporary file, rather than on a command line that ps shows."""
    reuse = "true" if isolated else "false"
    lines = [f"headers = {{ Authorization = {json.dumps('Bearer ' + token)} }}", ""]
    with open(os.path.join(ROOT, "tests", "apifuzz", "schemathesis.toml")) as f:
        lines.append(f.read())
    for phase in ("examples", "coverage", "fuzzing"):
        lines += [f"[phases.{phase}.extra-data-sources]", f"responses = {reuse}", ""]
    lines += ["[phases.stateful]", f"enabled = {'true' if isolated and long_run else 'false'}", ""]
    return "\n".join(lines)


def st_command(args, url, isolated, config_path, report_dir):
    doc = os.path.join(ROOT, "proto", "openapi", SERVICES[args.service][0])
    phases = "examples,coverage,fuzzing" + (",stateful" if isolated and args.long else "")
    cmd = [ST, "--config-file", config_path, "--no-color", "run", doc, "--url", url,
           "--mode", "all", "--phases", phases,
           "--workers", str(args.workers), "--request-timeout", "30",
           "--warnings", "off",
           "--report", "junit", "--report-dir", report_dir,
           "--report-junit-path", args.junit]
    if args.long:
        cmd += ["--max-examples", str(args.examples or LONG_EXAMPLES)]
        if args.seed is not None:
            cmd += ["--seed", str(args.seed)]
    else:
        cmd += ["--max-examples", str(args.examples or SHORT_EXAMPLES),
                "--seed", str(args.seed if args.seed is not None else SHORT_SEED)]
    excluded = ALWAYS_EXCLUDED + ([] if isolated else SHARED_ACCOUNT_EXCLUDED)
    for op in excluded:
        cmd += ["--exclude-operation-id", op]
    return cmd


def st_env():
    """Schemathesis runs every check unless the configuration turns one off (a --checks on
    the command line would override the per-operation exceptions of schemathesis.toml), with
    the hooks of casb_hooks.py."""
    env = dict(os.environ)
    env["SCHEMATHESIS_HOOKS"] = "casb_hooks"
    env["PYTHONPATH"] = os.path.join(ROOT, "tests", "apifuzz")
    return env


def own_account_token(env, build_dir):
    """The first admin token of a new account (casb-integration-manager create-account): what
    the fuzzer creates, changes or deletes there nobody else sees. None when it failed."""
    child = dict(os.environ)
    child.update({"CASB_DATABASE_URL": env.get("CASB_DATABASE_URL", ""),
                  "CASB_ACCOUNT_NAME": "apifuzz " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    proc = subprocess.run([os.path.join(build_dir, "casb-integration-manager"), "create-account"],
                          env=child, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])["token"]
    except (IndexError, ValueError, KeyError, TypeError):
        # stderr is the service's log: no secret in it, the token goes to stdout only.
        print(f"apifuzz: create-account failed ({proc.returncode}): {proc.stderr.strip()}",
              file=sys.stderr)
        return None


def pick_token(args, env):
    """(token, isolated): a new account's with --own-account, else CASB_APIFUZZ_TOKEN (its
    own account when CASB_APIFUZZ_ISOLATED=1), else the shared admin token of casb.env."""
    if args.own_account:
        return own_account_token(env, args.build_dir), True
    if env.get("CASB_APIFUZZ_TOKEN"):
        return env["CASB_APIFUZZ_TOKEN"], env.get("CASB_APIFUZZ_ISOLATED") == "1"
    return env.get("CASB_TOKEN"), False


def run_schemathesis(args, url, token, isolated):
    """Runs st; returns (exit status, its output with the token masked, seconds)."""
    with tempfile.TemporaryDirectory(prefix="casb-apifuzz-") as tmp:
        args.junit = os.path.abspath(args.junit or os.path.join(tmp, "junit.xml"))
        os.makedirs(os.path.dirname(args.junit), exist_ok=True)
        config_path = os.path.join(tmp, "schemathesis.toml")
        with open(config_path, "w") as f:
            f.write(config_toml(isolated, args.long, token))
        cmd = st_command(args, url, isolated, config_path, tmp)
        print("apifuzz:", " ".join(cmd), flush=True)
        started = time.monotonic()
        # Schemathesis writes .hypothesis/ into its working directory: keep it in tmp.
        proc = subprocess.run(cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=st_env())
        return proc.returncode, proc.stdout.replace(token, "[token]"), time.monotonic() - started


def summary(service, output, took, isolated):
    """The last line: what Schemathesis's own summary says, or None without one."""
    generated = re.search(r"(\d+) generated", output)
    if not generated:
        return None
    operations = re.search(r"Tested: (\d+)", output)
    failures = re.search(r"(\d+) found (\d+) unique failure", output)
    return (f"apifuzz {service}: {generated.group(1)} cases generated, "
            f"{operations.group(1) if operations else '?'} operations, "
            f"{failures.group(2) if failures else 0} failed, {took:.0f}s, "
            + ("own account" if isolated else "shared account: creating operations excluded"))


def annotate_junit(path, line, generated):
    """Adds the figures to Schemathesis's JUnit report: a generated_cases property and the
    summary line as system-out of its testsuite."""
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return
    suite = tree.getroot().find("testsuite")
    if suite is None:
        return
    props = ET.Element("properties")
    ET.SubElement(props, "property", name="generated_cases", value=str(generated))
    suite.insert(0, props)
    ET.SubElement(suite, "system-out").text = line
    tree.write(path, encoding="utf-8", xml_declaration=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("service", choices=sorted(SERVICES))
    p.add_argument("--junit", help="JUnit XML to write (one testcase per operation)")
    p.add_argument("--long", action="store_true",
                   help=f"the long run: {LONG_EXAMPLES} examples per operation, random seed, "
                        "stateful phase with --own-account")
    p.add_argument("--own-account", action="store_true",
                   help="fuzz as the admin of a new account (creates it with the build's "
                        "casb-integration-manager create-account): every operation included")
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build"),
                   help="where casb-integration-manager is (--own-account)")
    p.add_argument("--examples", type=int, help="examples per operation (overrides the default)")
    p.add_argument("--seed", type=int, help="seed (the short run's default is fixed)")
    # One worker: Hypothesis 6 is not thread-safe in places (it reported internal errors
    # with two), and one keeps the short run's order, hence its results, reproducible.
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()

    env = load_env()
    url = env.get(SERVICES[args.service][1])
    if not url:
        print(f"apifuzz {args.service}: no {SERVICES[args.service][1]}: start the stack with "
              "deploy/local/up (it writes .local/casb.env)", file=sys.stderr)
        return 2
    if not os.access(ST, os.X_OK):
        print(f"apifuzz: {ST} missing: run casb_install_apifuzz_deps from deploy/local/lib.sh",
              file=sys.stderr)
        return 2
    token, isolated = pick_token(args, env)
    if not token:
        print("apifuzz: no token (CASB_APIFUZZ_TOKEN, CASB_TOKEN in casb.env, or --own-account)",
              file=sys.stderr)
        return 2
    status, output, took = run_schemathesis(args, url, token, isolated)
    sys.stdout.write(output)
    line = summary(args.service, output, took, isolated)
    print(line or f"apifuzz {args.service}: Schemathesis generated no case (exit {status})")
    if line:
        annotate_junit(args.junit, line, re.search(r"(\d+) cases generated", line).group(1))
    return status if line else (status or 2)


if __name__ == "__main__":
    sys.exit(main())
