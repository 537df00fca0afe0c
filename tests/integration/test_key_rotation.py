"""Master key rotation keeps every integration scanning: deploy/local/rotate-master-key puts a
new CASB_MASTER_KEY in .local/secrets.env (the old one as CASB_MASTER_KEY_PREVIOUS), restarts
integration-manager and scanner-worker, re-seals every integration's credentials with
`casb-integration-manager rotate-credentials`, then drops the previous key. Afterwards every
row is under the new key, nothing is in clear, and scans still open the credentials.

The stack keeps running with the new key: secrets.env is what deploy/local/up reads, so the
tests after this one (and later `up` runs) use it."""

import glob
import hashlib
import json
import os
import re
import subprocess
import uuid

from conftest import ROOT, cfg, describe, im, psql, psql_value, wait_until

SECRETS = os.path.join(ROOT, ".local", "secrets.env")
ENVELOPE = re.compile(r"^v1\.([0-9a-f]{8})\.[A-Za-z0-9_-]+$")


def secrets():
    out = {}
    with open(SECRETS) as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out[k] = v
    return out


def key_id(hex_key):
    """crypto.h: the first 8 hex characters of SHA-256 of the 32-byte key."""
    return hashlib.sha256(bytes.fromhex(hex_key)).hexdigest()[:8]


def sealed_rows():
    return {row[0]: (row[1], row[2]) for row in psql(
        "SELECT id, credentials_sealed, credentials_key_id FROM integrations ORDER BY id")}


def scan_now_and_wait(iid, timeout_s=120):
    """Scan now (retried while a scan is already queued or running), then wait for it."""
    def accepted():
        r = im("POST", f"/v1/integrations/{iid}/scans")
        return r if r.status in (201, 202) else None
    r = wait_until(f"scan-now of {iid} to be accepted", accepted, timeout_s=60, interval_s=1)
    body = r.body if isinstance(r.body, dict) else {}
    sid = body.get("id") or body.get("scan_id") or (body.get("scan") or {}).get("id")
    assert sid, f"scan-now answered without a scan id: {r}"

    def done():
        resp = im("GET", f"/v1/integrations/{iid}/scans")
        assert resp.status == 200, f"GET scans: {resp}"
        found = next((s for s in resp.body["scans"] if s["id"] == sid), None)
        if found and found["status"] in ("succeeded", "failed", "cancelled"):
            return found
        return None
    return wait_until(f"scan {sid} of {iid} to finish", done, timeout_s)


def service_environ(name):
    """The environment variable names of a running service of the local stack."""
    with open(os.path.join(ROOT, ".local", "run", f"{name}.pid")) as f:
        pid = f.read().strip()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f"casb-{name}".encode() in f.read(), f"pid {pid} is not casb-{name}"
    with open(f"/proc/{pid}/environ", "rb") as f:
        return {item.split(b"=", 1)[0].decode() for item in f.read().split(b"\0") if item}


def test_rotation_keeps_every_integration_scanning(new_org):
    token_org = new_org("token")
    app_org = new_org("github_app")
    token_org.create_integration()
    app_org.create_integration()
    for o in (token_org, app_org):
        first = o.wait_scan_done()
        assert first["status"] == "succeeded", describe(first)
    demo_id = psql_value("SELECT id FROM integrations WHERE config->>'organization' = 'acme-demo'"
                         " ORDER BY created_at LIMIT 1")
    assert demo_id, "the demo integration (deploy/local/up) is missing"

    script = os.path.join(ROOT, "deploy", "local", "rotate-master-key")
    if "CASB_MASTER_KEY_PREVIOUS" in secrets():
        # A rotation left unfinished (an earlier run stopped): the script finishes it first.
        finish = subprocess.run([script], capture_output=True, text=True, timeout=600)
        assert finish.returncode == 0, finish.stdout + finish.stderr
        assert "CASB_MASTER_KEY_PREVIOUS" not in secrets()
    old_key = secrets()["CASB_MASTER_KEY"]
    admin_token = secrets()["CASB_ADMIN_TOKEN"]
    before = sealed_rows()
    assert before[token_org.integration_id][1] == key_id(old_key)
    # Webhooks' secrets are sealed under the same key (findings-api): one sealed with the old
    # key (an envelope of the token integration's, as good as any) and one without secrets.
    # Disabled, so that ingest delivers nothing to them.
    hooks = {"sealed": str(uuid.uuid4()), "none": str(uuid.uuid4())}
    psql("INSERT INTO webhooks (id, account_id, name, url, auth_type, auth_sealed, auth_key_id,"
         " enabled, created_by) SELECT :'id', account_id, 'key-rotation', 'https://example.com/',"
         " 'bearer', credentials_sealed, credentials_key_id, false, 'test'"
         " FROM integrations WHERE id = :'iid'", id=hooks["sealed"], iid=token_org.integration_id)
    psql("INSERT INTO webhooks (id, account_id, name, url, auth_type, enabled, created_by)"
         " VALUES (:'id', '00000000-0000-0000-0000-000000000001', 'key-rotation',"
         " 'https://example.com/', 'none', false, 'test')", id=hooks["none"])
    hook_sealed_before = psql_value("SELECT auth_sealed FROM webhooks WHERE id = :'id'",
                                    id=hooks["sealed"])

    run = subprocess.run([script], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"rotate-master-key failed:\n{run.stdout}\n{run.stderr}"
    summary_lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(summary_lines) == 1, run.stdout
    summary = json.loads(summary_lines[0])

    # secrets.env: a new key, the previous one dropped, the admin token untouched.
    after_secrets = secrets()
    new_key = after_secrets["CASB_MASTER_KEY"]
    assert new_key != old_key
    assert "CASB_MASTER_KEY_PREVIOUS" not in after_secrets
    assert after_secrets["CASB_ADMIN_TOKEN"] == admin_token
    assert oct(os.stat(SECRETS).st_mode & 0o777) == "0o600"
    new_id = key_id(new_key)
    assert summary["key_id"] == new_id
    assert summary["failed"] == 0 and summary["failed_integration_ids"] == [], summary
    # Rows created meanwhile by other tests may already be under the new key; ours were not.
    assert summary["rotated"] >= 3, summary
    assert summary["webhooks"]["failed"] == 0, summary
    assert summary["webhooks"]["failed_webhook_ids"] == [], summary
    assert summary["webhooks"]["rotated"] >= 1, summary
    hook_sealed, hook_kid = psql(
        "SELECT auth_sealed, auth_key_id FROM webhooks WHERE id = :'id'", id=hooks["sealed"])[0]
    assert hook_kid == new_id and ENVELOPE.match(hook_sealed).group(1) == new_id, hook_kid
    assert hook_sealed != hook_sealed_before, "the webhook's secrets were not re-sealed"
    assert psql("SELECT auth_sealed, auth_key_id FROM webhooks WHERE id = :'id'",
                id=hooks["none"]) == [["", ""]]
    psql("DELETE FROM webhooks WHERE id IN (:'a', :'b')", a=hooks["sealed"], b=hooks["none"])
    # Neither key is printed, nor logged by the services.
    outputs = {"rotate-master-key": run.stdout + run.stderr}
    for path in glob.glob(os.path.join(cfg("CASB_LOG_DIR"), "*.log")):
        with open(path, errors="replace") as f:
            outputs[path] = f.read()
    for where, text in outputs.items():
        assert old_key not in text and new_key not in text, f"a master key in {where}"

    # Every row, read raw: under the new key, re-sealed (not merely relabelled), no clear text.
    after = sealed_rows()
    assert set(before) <= set(after)
    for iid, (sealed, kid) in after.items():
        assert kid == new_id, f"integration {iid} still under key {kid}"
        m = ENVELOPE.match(sealed)
        assert m and m.group(1) == new_id, f"integration {iid}: {sealed[:24]}..."
        if iid in before:
            assert sealed != before[iid][0], f"integration {iid} was not re-sealed"
    private_key_lines = [line for line in app_org.private_key.splitlines()
                         if line and not line.startswith("-----")]
    canaries = [token_org.token, private_key_lines[1], private_key_lines[-2]]
    dump = subprocess.run(["psql", cfg("CASB_DATABASE_URL"), "-XAtq", "-c",
                           "SELECT credentials_sealed FROM integrations"],
                          capture_output=True, text=True, timeout=30)
    assert dump.returncode == 0, dump.stderr
    for canary in canaries:
        assert canary not in dump.stdout, "credentials in clear after the rotation"

    # The services hold the new key only.
    for svc in ("integration-manager", "scanner-worker", "findings-api"):
        names = service_environ(svc)
        assert "CASB_MASTER_KEY" in names
        assert "CASB_MASTER_KEY_PREVIOUS" not in names, f"{svc} still has the previous key"

    # Scans still open the credentials: ours (token and GitHub App) and the demo's.
    for iid in (token_org.integration_id, app_org.integration_id, demo_id):
        scan = scan_now_and_wait(iid)
        assert scan["status"] == "succeeded", f"{iid} after rotation: {describe(scan)}"

    # A new integration is sealed with the new key from the start.
    late = new_org("token")
    late.create_integration()
    assert psql_value("SELECT credentials_key_id FROM integrations WHERE id = :'id'",
                      id=late.integration_id) == new_id
    first = late.wait_scan_done()
    assert first["status"] == "succeeded", describe(first)

    # Running the rotation command again changes nothing.
    build = os.environ.get("CASB_BUILD_DIR") or os.path.join(ROOT, "build")
    again = subprocess.run([os.path.join(build, "casb-integration-manager"), "rotate-credentials"],
                           env={**os.environ, "CASB_DATABASE_URL": cfg("CASB_DATABASE_URL"),
                                "CASB_MASTER_KEY": new_key, "CASB_MASTER_KEY_PREVIOUS": ""},
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    again_summary = json.loads(again.stdout.strip())
    assert again_summary["rotated"] == 0 and again_summary["failed"] == 0, again_summary
    assert again_summary["already_current"] >= len(after) + 1, again_summary


def test_failed_rotation_keeps_the_previous_key_and_resumes():
    """An integration sealed with a key in neither variable stops the rotation before the
    previous key is dropped; once it is gone, running the script again finishes the same
    rotation (no third key)."""
    script = os.path.join(ROOT, "deploy", "local", "rotate-master-key")
    old_key = secrets()["CASB_MASTER_KEY"]
    stray = str(uuid.uuid4())
    psql("INSERT INTO integrations (id, account_id, provider, name, config, credentials_sealed,"
         " credentials_key_id, scan_interval_s, paused, health)"
         " VALUES (:'id', '00000000-0000-0000-0000-000000000001', 'github', 'key-rotation-stray',"
         " '{}', 'v1.deadbeef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',"
         " 'deadbeef', 3600, true, 'paused')", id=stray)
    try:
        run = subprocess.run([script], capture_output=True, text=True, timeout=600)
        assert run.returncode != 0, run.stdout
        assert stray in run.stdout and stray in run.stderr, run.stdout + run.stderr
        summary = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][0])
        assert summary["failed_integration_ids"] == [stray], summary
        kept = secrets()
        assert kept["CASB_MASTER_KEY_PREVIOUS"] == old_key
        new_key = kept["CASB_MASTER_KEY"]
        assert new_key != old_key
        # Every other row is already under the new key; the services hold both keys.
        assert psql("SELECT id FROM integrations WHERE credentials_key_id <> :'k' AND id <> :'id'",
                    k=key_id(new_key), id=stray) == []
        for svc in ("scanner-worker", "findings-api"):
            assert "CASB_MASTER_KEY_PREVIOUS" in service_environ(svc), svc
    finally:
        psql("DELETE FROM integrations WHERE id = :'id'", id=stray)

    again = subprocess.run([script], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming" in again.stderr
    done = secrets()
    assert done["CASB_MASTER_KEY"] == new_key
    assert "CASB_MASTER_KEY_PREVIOUS" not in done
    assert "CASB_MASTER_KEY_PREVIOUS" not in service_environ("integration-manager")
    assert psql_value("SELECT count(*) FROM integrations WHERE credentials_key_id <> :'k'",
                      k=key_id(new_key)) == "0"
