"""Credentials are sealed at rest and never leave the services: not in the database in clear,
not in any HTTP response, not in the service logs, not on Kafka."""

import glob
import os
import subprocess

from conftest import cfg, describe, im, kafka_dump


TOPICS = ["casb.scan.jobs", "casb.scan.results", "casb.integration.events",
          "casb.scan.jobs.dlq", "casb.scan.results.dlq", "casb.integration.events.dlq"]


def assert_nowhere(canaries, org):
    iid = org.integration_id
    # The database: the sealed column, then every table in a full data dump.
    sealed = subprocess.run(
        ["psql", cfg("CASB_DATABASE_URL"), "-XAtq", "-v", f"id={iid}"],
        input="SELECT credentials_sealed, credentials_key_id FROM integrations WHERE id = :'id'",
        capture_output=True, text=True, timeout=30)
    assert sealed.returncode == 0, sealed.stderr
    value, key_id = sealed.stdout.strip().split("|")
    assert value.startswith("v1." + key_id + "."), value[:40]
    dump = subprocess.run(["pg_dump", "--data-only", "-d", cfg("CASB_DATABASE_URL")],
                          capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr
    # HTTP responses.
    responses = [im("GET", f"/v1/integrations/{iid}").raw,
                 im("GET", "/v1/integrations?limit=100").raw,
                 im("GET", f"/v1/integrations/{iid}/scans").raw]
    # Service logs (the simulator plays the SaaS: it legitimately sees the token).
    logs = {}
    for path in glob.glob(os.path.join(cfg("CASB_LOG_DIR"), "*.log")):
        if os.path.basename(path).startswith("saas-sim"):
            continue
        with open(path, errors="replace") as f:
            logs[path] = f.read()
    assert any("integration-manager" in p for p in logs), logs.keys()
    kafka = {t: kafka_dump(t) for t in TOPICS}
    assert iid in kafka["casb.scan.jobs"]
    for canary in canaries:
        assert canary not in value
        assert canary not in dump.stdout, "credential in clear in the database"
        for raw in responses:
            assert canary not in raw, "credential in an HTTP response"
        for path, text in logs.items():
            assert canary not in text, f"credential in {path}"
        for topic, text in kafka.items():
            assert canary not in text, f"credential on {topic}"


def test_token_credentials_are_sealed_and_never_leak(new_org):
    o = new_org("token")
    created = o.create_integration()
    assert o.token not in created.raw
    first = o.wait_scan_done()
    assert first["status"] == "succeeded", describe(first)  # the worker could open the sealed token
    assert_nowhere([o.token], o)


def test_app_private_key_is_sealed_and_never_leaks(new_org):
    o = new_org("github_app")
    created = o.create_integration()
    first = o.wait_scan_done()
    assert first["status"] == "succeeded", describe(first)
    body_lines = [line for line in o.private_key.splitlines()
                  if line and not line.startswith("-----")]
    canaries = [body_lines[1], body_lines[len(body_lines) // 2], body_lines[-2]]
    for c in canaries:
        assert c not in created.raw
    assert_nowhere(canaries, o)
