#!/usr/bin/env python3
"""The HTTP steps of deploy/local/up: add the demo integrations (a GitHub organization and a
Google Workspace customer, both in the simulator), wait for their first scans, print the
findings summary. Standard library only; addresses and the token come from
the environment (.local/casb.env)."""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DEMO_NAME = "acme-demo"
GOOGLE_DEMO_NAME = "acme-google-demo"


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"demo.py: {name} is not set")
    return value


def call(method, url, body=None, timeout=15):
    data = None
    headers = {"Authorization": "Bearer " + env("CASB_TOKEN"), "Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"detail": raw.decode(errors="replace")}


def list_all(base, path, key):
    items, cursor = [], None
    while True:
        q = "?limit=100" + ("&cursor=" + urllib.parse.quote(cursor) if cursor else "")
        status, body = call("GET", base + path + q)
        if status != 200:
            sys.exit(f"demo.py: GET {path} answered {status}: {body}")
        items.extend(body.get(key, []))
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def existing(name):
    """The id of the integration called name, or None."""
    base = env("CASB_INTEGRATIONS_URL")
    for it in list_all(base, "/v1/integrations", "integrations"):
        if it.get("name") == name:
            return it["id"]
    return None


def create(body):
    status, resp = call("POST", env("CASB_INTEGRATIONS_URL") + "/v1/integrations", body)
    if status not in (200, 201):
        sys.exit(f"demo.py: POST /v1/integrations answered {status}: {resp}")
    print(resp["id"])


def add_demo(tenant_file, key_file):
    found = existing(DEMO_NAME)
    if found:
        print(found)
        return
    with open(tenant_file) as f:
        tenant = json.load(f)
    with open(key_file) as f:
        pem = f.read()
    app = tenant["auth"]["app"]
    body = {
        "provider": "github",
        "name": DEMO_NAME,
        "config": {"organization": tenant["login"], "api_base_url": env("CASB_SIM_URL")},
        "auth_method": "github_app",
        "credentials": {
            "app_id": str(app["app_id"]),
            "installation_id": str(app["installation_id"]),
            "private_key": pem,
        },
    }
    create(body)


def add_google_demo(tenant_file, key_file):
    found = existing(GOOGLE_DEMO_NAME)
    if found:
        print(found)
        return
    with open(tenant_file) as f:
        tenant = json.load(f)
    with open(key_file) as f:
        key = json.load(f)
    create({
        "provider": "google_workspace",
        "name": GOOGLE_DEMO_NAME,
        "config": {"admin_email": tenant["admin_email"], "customer_id": tenant["customer_id"],
                   "api_base_url": env("CASB_SIM_URL")},
        "auth_method": "service_account",
        "credentials": {"service_account_key": key},
    })


def wait_scan(integration_id, timeout_s):
    base = env("CASB_INTEGRATIONS_URL")
    deadline = time.time() + timeout_s
    last = None
    while time.time() < deadline:
        status, body = call("GET", f"{base}/v1/integrations/{integration_id}/scans")
        if status == 200:
            scans = body.get("scans", [])
            if any(s.get("status") == "succeeded" for s in scans):
                return
            if scans and scans[0].get("status") == "failed":
                sys.exit(f"demo.py: the scan failed: {scans[0].get('error')}")
            last = [s.get("status") for s in scans]
        time.sleep(1)
    sys.exit(f"demo.py: no successful scan after {timeout_s}s (scans: {last})")


def summary(integration_id, name):
    base = env("CASB_FINDINGS_URL")
    status, body = call("GET", base + "/v1/summary")
    if status != 200:
        print(f"GET /v1/summary answered {status}: {body}")
    elif "total_findings" in body:
        sev = body.get("by_severity", {})
        parts = [f"{s} {sev[s].get('findings', 0)}/{sev[s].get('instances', 0)}"
                 for s in ("critical", "high", "medium", "low") if s in sev]
        print(f"Summary (all integrations): {body['total_findings']} findings, "
              f"{body.get('total_instances', '?')} active instances"
              + (f" (findings/instances: {', '.join(parts)})" if parts else ""))
    else:
        print("Summary:", json.dumps(body, sort_keys=True))
    status, body = call("GET", f"{base}/v1/findings?integration_id={integration_id}&limit=100")
    if status != 200:
        print(f"GET /v1/findings answered {status}: {body}")
        return
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    findings = sorted(body.get("findings", []),
                      key=lambda f: (order.get(f.get("severity"), 9), -f.get("instance_count", 0)))
    print(f"Findings of {name} ({len(findings)}{'+' if body.get('next_cursor') else ''}):")
    for f in findings:
        ftype = f.get("finding_type") or {}
        title = ftype.get("title") if isinstance(ftype, dict) else ftype
        print(f"  {f.get('severity', '?'):<8} {f.get('instance_count', 0):>4}  {title}")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: demo.py add TENANT KEY | add-google TENANT KEY | "
                 "wait-scan ID TIMEOUT_S | summary ID NAME")
    cmd = sys.argv[1]
    if cmd == "add":
        add_demo(sys.argv[2], sys.argv[3])
    elif cmd == "add-google":
        add_google_demo(sys.argv[2], sys.argv[3])
    elif cmd == "wait-scan":
        wait_scan(sys.argv[2], int(sys.argv[3]))
    elif cmd == "summary":
        summary(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"demo.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
