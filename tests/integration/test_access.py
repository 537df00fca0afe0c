"""Accounts, API tokens and roles, against the running stack.

Every operation of both OpenAPI documents is enumerated from the documents (not hand-picked):
- account isolation: an admin token of another account (made by `casb-integration-manager
  create-account`) calls each operation with the ids of the default account's objects; every
  operation on such an id answers exactly as for an id that exists nowhere (404, or 204 for
  an idempotent DELETE), no list or export shows any of them, and afterwards every object
  reads exactly as before;
- roles: a read_only, an analyst and an admin token of the default account call each
  operation, and get 403 exactly when the operation's `x-casb-role` is above theirs;
- token life: issued once with a secret, revoked and expired tokens refused, the audit log.
"""

import datetime
import hashlib
import json
import os
import re
import subprocess
import uuid

import pytest
import yaml

from conftest import ROOT, cfg, fa, http, im, list_all, psql_value, wait_until

METHODS = ("get", "post", "put", "patch", "delete")
ROLE_RANK = {"read_only": 0, "analyst": 1, "admin": 2}
SERVICES = (("integration-manager", "CASB_INTEGRATIONS_URL"),
            ("findings-api", "CASB_FINDINGS_URL"))
# The object a path {id} names, by the collection it follows.
ID_KIND = {"integrations": "integration", "findings": "finding", "instances": "instance",
           "webhooks": "webhook", "tokens": "token"}
# Bodies that pass validation, so that a call reaches the lookup of the object it names
# (any other operation gets {}). Keyed by operation, values may name the objects' ids.
VALID_BODIES = {
    ("PATCH", "/v1/integrations/{id}"): {"name": "renamed by another account"},
    ("PUT", "/v1/findings/{id}/severity"): {"severity": "low"},
    ("PATCH", "/v1/webhooks/{id}"): {"name": "renamed by another account"},
    ("POST", "/v1/findings/ignore"): {"ids": ["{finding}"]},
    ("POST", "/v1/findings/unignore"): {"ids": ["{finding}"]},
    ("POST", "/v1/instances/hide"): {"ids": ["{instance}"]},
    ("POST", "/v1/instances/unhide"): {"ids": ["{instance}"]},
}


def operations():
    """(service, base URL variable, METHOD, path, x-casb-role) of every authenticated
    operation of both documents."""
    ops = []
    for service, url_var in SERVICES:
        with open(os.path.join(ROOT, "proto", "openapi", f"{service}.yaml")) as f:
            doc = yaml.safe_load(f)
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if method not in METHODS or op.get("security", doc.get("security")) == []:
                    continue
                ops.append((service, url_var, method.upper(), path, op.get("x-casb-role")))
    return ops


OPERATIONS = operations()


def op_id(op):
    return f"{op[2]} {op[3]}"


def binary(name):
    build = os.environ.get("CASB_BUILD_DIR") or os.path.join(ROOT, "build")
    return os.path.join(build, name)


def run_im(subcommand, **env):
    full = dict(os.environ, CASB_DATABASE_URL=cfg("CASB_DATABASE_URL"), CASB_LOG_LEVEL="warn")
    full.update(env)
    return subprocess.run([binary("casb-integration-manager"), subcommand], env=full,
                          capture_output=True, text=True, timeout=60)


def issue(role, name=None, expires_at=None, token=None):
    body = {"name": name or f"test-{role}-{uuid.uuid4().hex[:8]}", "role": role}
    if expires_at:
        body["expires_at"] = expires_at
    r = http("POST", cfg("CASB_INTEGRATIONS_URL") + "/v1/tokens", body,
             token=token or cfg("CASB_TOKEN"))
    assert r.status == 201, r
    return r.body


def call(op, token, path, body=None):
    _, url_var, method, _, _ = op
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = {}
    return http(method, cfg(url_var) + path, body, token=token)


def fill(path, objects):
    """The path with the objects' ids: {id} by the collection before it."""
    segs = path.split("/")
    for i, seg in enumerate(segs):
        if seg == "{id}":
            segs[i] = objects[ID_KIND[segs[i - 1]]]
        elif seg == "{delivery_id}":
            segs[i] = objects["delivery"]
        elif seg == "{provider}":
            segs[i] = "github"
    return "/".join(segs)


def body_for(op, objects):
    body = VALID_BODIES.get((op[2], op[3]))
    if body is None:
        return None
    text = json.dumps(body)
    for kind, value in objects.items():
        text = text.replace("{%s}" % kind, value)
    return json.loads(text)


@pytest.fixture(scope="module")
def other_account():
    r = run_im("create-account", CASB_ACCOUNT_NAME=f"other-{uuid.uuid4().hex[:8]}")
    assert r.returncode == 0, r.stderr
    issued = json.loads(r.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"casb_[A-Za-z0-9_-]{43}", issued["token"])
    assert issued["token"] not in r.stderr, "the secret must not be logged"
    return issued


@pytest.fixture(scope="module")
def role_tokens():
    tokens = {"admin": cfg("CASB_TOKEN")}
    made = []
    for role in ("analyst", "read_only"):
        t = issue(role)
        tokens[role] = t["token"]
        made.append(t["id"])
    yield tokens
    for tid in made:
        im("DELETE", f"/v1/tokens/{tid}")


@pytest.fixture(scope="module")
def objects():
    """Ids of the default account's objects, one of each kind the API names: the demo
    integrations' findings and instances, a webhook with a delivery, a token."""
    def finding_with_instance():
        fs = fa("GET", "/v1/findings?limit=50").body["findings"]
        return next((f for f in fs if f.get("instance_count", 0) > 0), None)

    finding = wait_until("a finding of the demo tenant", finding_with_instance, timeout_s=120)
    instance = fa("GET", f"/v1/findings/{finding['id']}/instances?limit=1").body["instances"][0]
    hook = fa("POST", "/v1/webhooks", {"name": "access-test", "url": "http://127.0.0.1:9/hook",
                                       "auth": {"type": "none"}})
    assert hook.status == 201, hook
    wid = hook.body["id"]
    fa("POST", f"/v1/webhooks/{wid}/test")
    deliveries = list_all(fa, f"/v1/webhooks/{wid}/deliveries", "deliveries")
    token = issue("read_only", name="access-test object")
    ids = {"integration": finding["integration_id"], "finding": finding["id"],
           "instance": instance["id"], "webhook": wid, "token": token["id"],
           "delivery": deliveries[0]["id"] if deliveries else str(uuid.uuid4())}
    yield ids
    fa("DELETE", f"/v1/webhooks/{wid}")
    im("DELETE", f"/v1/tokens/{token['id']}")


# What moves on its own while the test runs: scans, the webhook's deliveries and retries.
VOLATILE = ("last_used_at", "next_scan_at", "last_scan_at", "last_scan", "last_seen_at",
            "updated_at", "health", "health_reason", "last_scan_status", "deliveries")


def snapshot(objects):
    """How the default account's objects read now, without what scans move on their own."""
    reads = {
        "integration": im("GET", f"/v1/integrations/{objects['integration']}"),
        "finding": fa("GET", f"/v1/findings/{objects['finding']}"),
        "instance": fa("GET", f"/v1/instances/{objects['instance']}"),
        "webhook": fa("GET", f"/v1/webhooks/{objects['webhook']}"),
        "token": im("GET", f"/v1/tokens/{objects['token']}"),
    }
    out = {}
    for kind, r in reads.items():
        assert r.status == 200, f"{kind}: {r}"
        out[kind] = {k: v for k, v in r.body.items() if k not in VOLATILE}
    return out


def test_every_operation_names_its_role():
    missing = [op_id(op) for op in OPERATIONS if op[4] not in ROLE_RANK]
    assert not missing, f"operations without x-casb-role: {missing}"
    assert len(OPERATIONS) >= 40


def test_another_account_sees_and_changes_nothing(other_account, objects):
    token = other_account["token"]
    before = snapshot(objects)
    mine = set(objects.values())
    checked = 0
    # The lists first: afterwards the other account's own audit log names the ids it sent.
    for op in sorted(OPERATIONS, key=lambda op: op[2] != "GET" or "{" in op[3]):
        path = fill(op[3], objects)
        r = call(op, token, path, body_for(op, objects))
        checked += 1
        assert r.status not in (401, 403, 500), f"{op_id(op)} as another account's admin: {r}"
        if "{" in op[3] and "{provider}" not in op[3]:
            # Exactly the answer for an id that exists nowhere: no existence oracle.
            unknown = {kind: str(uuid.uuid4()) for kind in objects}
            alike = call(op, token, fill(op[3], unknown), body_for(op, unknown))
            assert r.status == alike.status and r.body == alike.body, \
                f"{op_id(op)}: the default account's object {r}, an unknown one {alike}"
            assert r.status == 404 or (op[2] == "DELETE" and r.status == 204), r
        elif op[2] == "GET":
            assert r.status == 200, f"{op_id(op)}: {r}"
            leaked = [i for i in mine if i in r.raw]
            assert not leaked, f"{op_id(op)} shows the default account's {leaked}"
    assert checked == len(OPERATIONS)
    assert snapshot(objects) == before


def test_another_account_starts_empty(other_account):
    token = other_account["token"]
    me = http("GET", cfg("CASB_INTEGRATIONS_URL") + "/v1/me", token=token)
    assert me.status == 200 and me.body["account_id"] == other_account["account_id"]
    assert me.body["token"]["role"] == "admin"
    for url_var, path, key in (("CASB_INTEGRATIONS_URL", "/v1/integrations", "integrations"),
                               ("CASB_FINDINGS_URL", "/v1/findings", "findings"),
                               ("CASB_FINDINGS_URL", "/v1/webhooks", "webhooks")):
        r = http("GET", cfg(url_var) + path, token=token)
        assert r.status == 200 and r.body[key] == [], f"{path}: {r}"
    r = http("GET", cfg("CASB_INTEGRATIONS_URL") + "/v1/tokens", token=token)
    assert [t["id"] for t in r.body["tokens"]] == [other_account["token_id"]]


@pytest.mark.parametrize("role", ["read_only", "analyst", "admin"])
def test_each_role_can_do_exactly_its_operations(role, role_tokens):
    """Unknown ids and empty bodies: an allowed call is refused for what it names or sends
    (404, 422, ...), never for the role; a forbidden one is 403 whatever it names."""
    unknown = {kind: str(uuid.uuid4()) for kind in
               ("integration", "finding", "instance", "webhook", "token", "delivery")}
    wrong = []
    for op in OPERATIONS:
        r = call(op, role_tokens[role], fill(op[3], unknown))
        allowed = ROLE_RANK[role] >= ROLE_RANK[op[4]]
        if allowed == (r.status == 403) or r.status in (401, 500):
            wrong.append(f"{op_id(op)} (needs {op[4]}): {r.status}")
    assert not wrong, f"as {role}: {wrong}"


def test_an_analyst_triages_but_a_read_only_token_does_not(role_tokens, objects):
    fid = objects["finding"]
    url = cfg("CASB_FINDINGS_URL") + f"/v1/findings/{fid}/severity"
    r = http("PUT", url, {"severity": "low"}, token=role_tokens["read_only"])
    assert r.status == 403 and "analyst" in r.body["detail"]
    r = http("PUT", url, {"severity": "low"}, token=role_tokens["analyst"])
    assert r.status == 200 and r.body["severity"] == "low", r
    r = http("DELETE", url, token=role_tokens["analyst"])
    assert r.status == 200, r
    r = http("POST", cfg("CASB_INTEGRATIONS_URL") + "/v1/tokens",
             {"name": "x", "role": "admin"}, token=role_tokens["analyst"])
    assert r.status == 403


def test_a_token_is_shown_once_and_stored_as_a_digest():
    t = issue("read_only")
    assert re.fullmatch(r"casb_[A-Za-z0-9_-]{43}", t["token"])
    assert t["status"] == "active" and t["created_by"] == "bootstrap"
    again = im("GET", f"/v1/tokens/{t['id']}")
    assert again.status == 200 and "token" not in again.body
    listed = list_all(im, "/v1/tokens", "tokens")
    assert t["id"] in [x["id"] for x in listed]
    assert t["token"] not in json.dumps(listed)
    stored = psql_value("SELECT encode(secret_sha256, 'hex') FROM api_tokens WHERE id = :'id'",
                        id=t["id"])
    assert stored == hashlib.sha256(t["token"].encode()).hexdigest()
    im("DELETE", f"/v1/tokens/{t['id']}")


def test_revoked_tokens_are_refused_and_audited():
    t = issue("analyst")
    me = cfg("CASB_INTEGRATIONS_URL") + "/v1/me"
    assert http("GET", me, token=t["token"]).status == 200
    findings = cfg("CASB_FINDINGS_URL") + "/v1/findings"
    assert http("GET", findings, token=t["token"]).status == 200  # now in its token cache
    assert im("DELETE", f"/v1/tokens/{t['id']}").status == 204
    r = http("GET", me, token=t["token"])
    assert r.status == 401, r  # the replica that revoked it: at once
    # Another service hears of it from PostgreSQL (NOTIFY), within milliseconds.
    wait_until("findings-api to refuse the revoked token",
               lambda: http("GET", findings, token=t["token"]).status == 401,
               timeout_s=2, interval_s=0.01)
    shown = im("GET", f"/v1/tokens/{t['id']}").body
    assert shown["status"] == "revoked" and shown["revoked_at"]
    assert im("DELETE", f"/v1/tokens/{t['id']}").status == 204  # again: nothing changes
    entries = im("GET", "/v1/audit-log?limit=20").body["entries"]
    revokes = [e for e in entries if e["action"] == "token_revoke"
               and (e["details"] or {}).get("token_id") == t["id"]]
    creates = [e for e in entries if e["action"] == "token_create"
               and (e["details"] or {}).get("token_id") == t["id"]]
    assert revokes and creates and revokes[0]["actor"] == "bootstrap"


def test_expired_tokens_are_refused():
    soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2))
    t = issue("read_only", expires_at=soon.strftime("%Y-%m-%dT%H:%M:%SZ"))
    me = cfg("CASB_INTEGRATIONS_URL") + "/v1/me"
    assert http("GET", me, token=t["token"]).status == 200
    wait_until("the token to expire", lambda: http("GET", me, token=t["token"]).status == 401,
               timeout_s=10)
    assert im("GET", f"/v1/tokens/{t['id']}").body["status"] == "expired"


@pytest.mark.parametrize("body,field", [
    ({"role": "admin"}, "name"),
    ({"name": "x"}, "role"),
    ({"name": "x", "role": "owner"}, "role"),
    ({"name": "x", "role": "admin", "scopes": []}, "scopes"),
    ({"name": "", "role": "admin"}, "name"),
    ({"name": "a\u0007b", "role": "admin"}, "name"),
    ({"name": "x" * 101, "role": "admin"}, "name"),
    ({"name": "x", "role": "admin", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({"name": "x", "role": "admin", "expires_at": "tomorrow"}, "expires_at"),
    ({"name": "x", "role": "admin", "expires_at": 5}, "expires_at"),
])
def test_bad_token_requests_are_refused_and_change_nothing(body, field):
    before = len(list_all(im, "/v1/tokens", "tokens"))
    r = im("POST", "/v1/tokens", body)
    assert r.status == 422 and r.body.get("field") == field, r
    assert len(list_all(im, "/v1/tokens", "tokens")) == before


def test_create_token_for_the_operator():
    r = run_im("create-token", CASB_TOKEN_NAME="break-glass", CASB_TOKEN_ROLE="read_only")
    assert r.returncode == 0, r.stderr
    issued = json.loads(r.stdout.strip().splitlines()[-1])
    me = http("GET", cfg("CASB_INTEGRATIONS_URL") + "/v1/me", token=issued["token"])
    assert me.body["token"] == {"id": issued["token_id"], "name": "break-glass",
                                "role": "read_only"}
    im("DELETE", f"/v1/tokens/{issued['token_id']}")
    bad = run_im("create-token", CASB_TOKEN_NAME="x", CASB_TOKEN_ROLE="owner")
    assert bad.returncode == 2 and "CASB_TOKEN_ROLE" in bad.stderr
    unknown = run_im("create-token", CASB_TOKEN_NAME="x", CASB_ACCOUNT_ID=str(uuid.uuid4()))
    assert unknown.returncode == 1


def test_the_bootstrap_token_is_seeded_once():
    assert psql_value("SELECT count(*) FROM api_tokens WHERE bootstrap") == "1"
