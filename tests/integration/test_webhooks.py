"""Webhooks of findings-api end to end, against the running stack: a receiver in this process
(127.0.0.1 is in the stack's CASB_WEBHOOK_ALLOWED_NETWORKS) records every request and answers
per a plan. Secrets are never answered back; bad bodies are refused with the member named and
store nothing; a test delivery is one attempt; each new or reopened instance matching the
filters is delivered once, signed, with one idempotency key across retries (backoff honours
Retry-After), failed after CASB_WEBHOOK_MAX_ATTEMPTS (4 in the stack) and redeliverable;
ignored findings and disabled webhooks get nothing.

Deliveries of other integrations (other tests of the account) may reach a receiver whose
webhook has no integration filter: those are told apart by the body's integration id."""

import base64
import collections
import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import GOOD_PROTECTION, OLD, cfg, describe, fa, list_all, sim, wait_until

UNPROTECTED = "github.repo.default_branch_unprotected"
MEMBER_2FA = "github.org.member_2fa_disabled"
STALE = "github.repo.stale"
SETTLE_S = 1.0  # longer than the senders' idle poll (250 ms) and an ingest, to see nothing more


# ------------------------------------------------------------------------------------------
# The receiver


class Route:
    """One path of the receiver: what it got, and what it answers (the queued answers first,
    then the default). An answer is a status or (status, headers)."""

    def __init__(self, base, path):
        self.url = base + path
        self.path = path
        self.requests = []
        self.plan = collections.deque()
        self.default = (200, {})
        self.lock = threading.Lock()

    def answer(self, *queued, default=None):
        with self.lock:
            self.plan = collections.deque(a if isinstance(a, tuple) else (a, {}) for a in queued)
            if default is not None:
                self.default = default if isinstance(default, tuple) else (default, {})

    def next_answer(self):
        with self.lock:
            return self.plan.popleft() if self.plan else self.default

    def got(self):
        with self.lock:
            return list(self.requests)

    def wait_count(self, n, timeout_s=30, of=None):
        """Waits until n requests (of those kept by the predicate of) came; returns them."""
        def enough():
            got = [q for q in self.got() if of is None or of(q)]
            return got if len(got) >= n else None
        return wait_until(f"{n} requests at {self.path}", enough, timeout_s, 0.1)


class Receiver:
    def __init__(self):
        self.routes = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                route = receiver.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                with route.lock:
                    route.requests.append({"time": time.time(), "path": self.path,
                                           "headers": {k.lower(): v for k, v
                                                       in self.headers.items()},
                                           "raw": body, "json": json.loads(body)})
                status, headers = route.next_answer()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, *queued, default=200):
        r = Route(self.base, f"/hook/{uuid.uuid4().hex}")
        r.answer(*queued, default=default)
        self.routes[r.path] = r
        return r

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def hooks():
    """Creates webhooks (asserting 201) and deletes them afterwards."""
    made = []

    def create(body):
        r = fa("POST", "/v1/webhooks", body)
        assert r.status == 201, f"POST /v1/webhooks {body.get('name')}: {r}"
        made.append(r.body["id"])
        return r
    try:
        yield create
    finally:
        for wid in made:
            fa("DELETE", f"/v1/webhooks/{wid}")


# ------------------------------------------------------------------------------------------
# Helpers


def hook_body(url, auth=None, **members):
    body = {"name": "it-wh-" + uuid.uuid4().hex[:8], "url": url, "auth": auth or {"type": "none"}}
    body.update(members)
    return body


def deliveries(webhook_id, status=None):
    query = f"?limit=100&status={status}" if status else "?limit=100"
    return list_all(fa, f"/v1/webhooks/{webhook_id}/deliveries{query}", "deliveries")


def delivery(webhook_id, delivery_id):
    return next((d for d in deliveries(webhook_id) if d["id"] == delivery_id), None)


def wait_delivery(webhook_id, delivery_id, what, cond, timeout_s=30):
    return wait_until(f"delivery {delivery_id} {what}", lambda: (
        lambda d: d if d and cond(d) else None)(delivery(webhook_id, delivery_id)),
        timeout_s, 0.2)


def of_integration(integration_id):
    return lambda q: q["json"].get("finding", {}).get("integration_id") == integration_id


def assert_standard_headers(q, event_type):
    """The delivery contract's headers; the body's id is the idempotency key."""
    h = q["headers"]
    assert h.get("content-type", "").startswith("application/json"), h
    assert h["idempotency-key"] == h["x-casb-delivery"] == q["json"]["id"], h
    assert h["x-casb-event"] == q["json"]["event_type"] == event_type, h
    assert abs(int(h["x-casb-timestamp"]) - q["time"]) < 30, h


def assert_signed(q, secret):
    """X-CASB-Signature: t=<X-CASB-Timestamp>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>."""
    sig = q["headers"].get("x-casb-signature")
    assert sig, q["headers"]
    parts = dict(p.split("=", 1) for p in sig.split(","))
    assert set(parts) == {"t", "v1"}, sig
    assert parts["t"] == q["headers"]["x-casb-timestamp"], sig
    want = hmac.new(secret.encode(), parts["t"].encode() + b"." + q["raw"],
                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], want), (sig, want)


def raw_post(path, data, content_type):
    req = urllib.request.Request(cfg("CASB_FINDINGS_URL") + path, data=data, method="POST",
                                 headers={"Authorization": "Bearer " + cfg("CASB_TOKEN"),
                                          "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def add_member_without_2fa(org):
    """A new member without 2FA in the SaaS: a new member_2fa_disabled instance next scan."""
    login = f"{org.login}-eve"
    members = [dict(m) for m in org.tenant["members"]]
    members.append({"login": login, "id": int(time.time() * 1000) % 10**9 + 900_000_000,
                    "role": "member", "two_factor": False})
    assert sim("PATCH", f"/_sim/orgs/{org.login}", {"members": members}).status == 200
    return login


def rescan_ingested(org):
    """Scans now and waits until findings-api holds that scan's sightings."""
    scan = org.rescan()
    assert scan["status"] == "succeeded", describe(scan)
    def ingested():
        active = list_all(fa, f"/v1/instances?integration_id={org.integration_id}&limit=200",
                          "instances")
        return active and all(i["last_scan_id"] == scan["id"] for i in active)
    wait_until("findings-api to ingest the scan", ingested, timeout_s=30, interval_s=0.2)
    return scan


def instance_of(org, type_id, asset_id):
    f = org.findings()[type_id]
    return next(i for i in org.instances(f["id"]) if i["asset"]["id"] == asset_id)


def one_new_instance(org, routes, hooks, auth=None):
    """Webhooks on routes for the org's member_2fa_disabled only; a new such instance scanned.
    Returns the webhook ids and the new instance."""
    ids = [hooks(hook_body(r.url, auth, integration_ids=[org.integration_id],
                           finding_types=[MEMBER_2FA])).body["id"] for r in routes]
    login = add_member_without_2fa(org)
    rescan_ingested(org)
    return ids, instance_of(org, MEMBER_2FA, login)


# ------------------------------------------------------------------------------------------
# 1. CRUD and secrets


def test_crud_never_answers_secrets(receiver, hooks):
    url = receiver.route().url
    password, token = "pw-" + uuid.uuid4().hex, "tok-" + uuid.uuid4().hex
    header_value, secret = "hv-" + uuid.uuid4().hex, "sec-" + uuid.uuid4().hex
    auths = {
        "none": {"type": "none"},
        "basic": {"type": "basic", "username": "siem-user", "password": password},
        "bearer": {"type": "bearer", "token": token},
        "headers": {"type": "headers", "headers": {"X-Api-Key": header_value,
                                                   "X-Tenant": header_value + "2"}},
        "hmac": {"type": "hmac_sha256", "secret": secret},
        "hmac_made": {"type": "hmac_sha256"},
    }
    secrets = [password, token, header_value, secret]
    made = {}
    for kind, auth in auths.items():
        r = hooks(hook_body(url, auth))
        assert r.headers.get("Location") == f"/v1/webhooks/{r.body['id']}", r.headers
        assert r.body["auth"]["type"] == auth["type"] and r.body["enabled"] is True, r
        assert r.body["url"] == url and r.body["created_by"], r
        assert r.body["deliveries"]["pending"] == 0, r
        assert not any(s in r.raw for s in secrets), (kind, r.raw)
        made[kind] = r

    generated = made["hmac_made"].body.get("signing_secret")
    assert generated and len(generated) >= 16, made["hmac_made"]
    secrets.append(generated)
    for kind in ("none", "basic", "bearer", "headers", "hmac"):
        assert "signing_secret" not in made[kind].body, (kind, made[kind])
    assert made["basic"].body["auth"] == {"type": "basic", "username": "siem-user"}
    assert made["headers"].body["auth"]["type"] == "headers"
    assert sorted(made["headers"].body["auth"]["header_names"]) == ["X-Api-Key", "X-Tenant"]
    assert made["bearer"].body["auth"] == {"type": "bearer"}
    assert made["hmac"].body["auth"] == {"type": "hmac_sha256"}

    for kind, created in made.items():
        wid = created.body["id"]
        got = fa("GET", f"/v1/webhooks/{wid}")
        assert got.status == 200, got
        assert "signing_secret" not in got.body and not any(s in got.raw for s in secrets), got
        assert got.body["auth"] == created.body["auth"], (kind, got)
    listing = fa("GET", "/v1/webhooks?limit=100")
    assert listing.status == 200 and not any(s in listing.raw for s in secrets)
    everything = {w["id"] for w in list_all(fa, "/v1/webhooks?limit=2", "webhooks")}
    assert {c.body["id"] for c in made.values()} <= everything

    # PATCH changes what it names, keeps the auth (and answers no secret).
    wid = made["basic"].body["id"]
    r = fa("PATCH", f"/v1/webhooks/{wid}", {"name": "renamed", "enabled": False})
    assert r.status == 200, r
    assert r.body["name"] == "renamed" and r.body["enabled"] is False, r
    assert r.body["auth"] == {"type": "basic", "username": "siem-user"}, r
    assert r.body["url"] == url and not any(s in r.raw for s in secrets), r
    assert "signing_secret" not in r.body
    r = fa("PATCH", f"/v1/webhooks/{made['headers'].body['id']}", {"enabled": False})
    assert r.status == 200 and not any(s in r.raw for s in secrets), r
    assert sorted(r.body["auth"]["header_names"]) == ["X-Api-Key", "X-Tenant"], r
    # The kept secret still works: a test delivery carries the unchanged credentials.
    r = fa("PATCH", f"/v1/webhooks/{wid}", {"enabled": True})
    assert r.status == 200, r
    route = receiver.route()
    assert fa("PATCH", f"/v1/webhooks/{wid}", {"url": route.url}).status == 200
    t = fa("POST", f"/v1/webhooks/{wid}/test")
    assert t.status == 200 and t.body["status"] == "succeeded", t
    assert route.got()[0]["headers"]["authorization"] == "Basic " + base64.b64encode(
        f"siem-user:{password}".encode()).decode()

    # Bad PATCH: refused, nothing changed.
    r = fa("PATCH", f"/v1/webhooks/{wid}", {"url": "ftp://example.com/"})
    assert r.status == 422 and r.body.get("field") == "url", r
    assert fa("PATCH", f"/v1/webhooks/{wid}", {}).status == 422
    assert fa("GET", f"/v1/webhooks/{wid}").body["url"] == route.url

    r = fa("DELETE", f"/v1/webhooks/{wid}")
    assert r.status == 204, r
    assert fa("GET", f"/v1/webhooks/{wid}").status == 404
    assert fa("DELETE", f"/v1/webhooks/{wid}").status == 404
    assert fa("GET", f"/v1/webhooks/{wid}/deliveries").status == 404
    assert fa("GET", "/v1/webhooks/not-a-uuid").status == 404
    assert fa("GET", f"/v1/webhooks/{uuid.uuid4()}").status == 404
    assert fa("PATCH", f"/v1/webhooks/{uuid.uuid4()}", {"enabled": True}).status == 404


# ------------------------------------------------------------------------------------------
# 2. Validation


def test_invalid_bodies_are_refused_and_store_nothing(receiver):
    url = receiver.route().url
    name = "it-wh-invalid-" + uuid.uuid4().hex[:8]

    def body(**changes):
        b = {"name": name, "url": url, "auth": {"type": "none"}}
        b.update(changes)
        return {k: v for k, v in b.items() if v is not None}

    cases = [
        (body(url=None), "url"),
        (body(url="ftp://example.com/hook"), "url"),
        (body(url=url.replace("http://", "http://user:pass@")), "url"),
        (body(url=url + "#frag"), "url"),
        (body(auth={"type": "digest"}), "auth.type"),
        (body(auth={"type": "basic", "username": "u"}), "auth.password"),
        (body(auth={"type": "bearer", "token": "t", "password": "p"}), "auth.password"),
        (body(auth={"type": "headers", "headers": {"X-CASB-Foo": "v"}}),
         "auth.headers.X-CASB-Foo"),
        (body(auth={"type": "headers", "headers": {"Content-Type": "text/plain"}}),
         "auth.headers.Content-Type"),
        (body(auth={"type": "headers", "headers": {"X-Api-Key": "a\r\nX-Evil: 1"}}),
         "auth.headers.X-Api-Key"),
        (body(auth={"type": "hmac_sha256", "secret": "short-secret"}), "auth.secret"),
        (body(finding_types=["github.repo.no_such_check"]), "finding_types"),
        (body(severities=["urgent"]), "severities"),
        (body(integration_ids=[str(uuid.uuid4())]), "integration_ids"),
        (body(colour="blue"), "colour"),
        (body(url="http://10.0.0.1/hook"), "url"),
        (body(url="http://169.254.169.254/latest/meta-data/"), "url"),
        # ::1 is loopback but not in the allowed 127.0.0.0/8.
        (body(url="http://[::1]:8080/hook"), "url"),
        (body(url="http://nonexistent.invalid/hook"), "url"),
    ]
    before = len(list_all(fa, "/v1/webhooks?limit=100", "webhooks"))
    for b, field in cases:
        r = fa("POST", "/v1/webhooks", b)
        assert r.status == 422 and r.body.get("field") == field, (b, field, r)
    assert raw_post("/v1/webhooks", b"{not json", "application/json") == 400
    assert raw_post("/v1/webhooks", b"[1, 2]", "application/json") in (400, 422)
    assert raw_post("/v1/webhooks", json.dumps(body()).encode(), "text/plain") == 415
    after = list_all(fa, "/v1/webhooks?limit=100", "webhooks")
    assert not [w for w in after if w["name"] == name], after
    assert len(after) == before
    assert receiver.routes and not any(r.got() for r in receiver.routes.values())


# ------------------------------------------------------------------------------------------
# 3. Test deliveries


def test_test_delivery_carries_auth_and_signature(receiver, hooks):
    secret = "s3cret-" + uuid.uuid4().hex
    password, token = "pw-" + uuid.uuid4().hex, "tok-" + uuid.uuid4().hex
    cases = {
        "hmac": ({"type": "hmac_sha256", "secret": secret}, None),
        "basic": ({"type": "basic", "username": "alice", "password": password},
                  ("authorization", "Basic " + base64.b64encode(
                      f"alice:{password}".encode()).decode())),
        "bearer": ({"type": "bearer", "token": token}, ("authorization", "Bearer " + token)),
        "headers": ({"type": "headers", "headers": {"X-Api-Key": "k-" + token}},
                    ("x-api-key", "k-" + token)),
    }
    for kind, (auth, header) in cases.items():
        route = receiver.route()
        created = hooks(hook_body(route.url, auth))
        wid = created.body["id"]
        t = fa("POST", f"/v1/webhooks/{wid}/test")
        assert t.status == 200, (kind, t)
        d = t.body
        assert d["status"] == "succeeded" and d["last_status_code"] == 200, (kind, d)
        assert d["attempts"] == 1 and d["event_type"] == "webhook.test", d
        assert d["webhook_id"] == wid and d["finding_id"] is None and d["delivered_at"], d
        got = route.got()
        assert len(got) == 1, (kind, got)
        q = got[0]
        assert_standard_headers(q, "webhook.test")
        assert q["json"]["id"] == d["id"]
        assert q["json"]["webhook"] == {"id": wid, "name": created.body["name"]}, q["json"]
        assert q["json"]["account_id"] and q["json"]["occurred_at"], q["json"]
        if kind == "hmac":
            assert_signed(q, secret)
        else:
            assert "x-casb-signature" not in q["headers"], q["headers"]
            assert q["headers"].get(header[0]) == header[1], (kind, q["headers"])
        assert [x["id"] for x in deliveries(wid)] == [d["id"]]

    # A failing destination: answered as failed, recorded, never retried.
    route = receiver.route(default=500)
    wid = hooks(hook_body(route.url)).body["id"]
    t = fa("POST", f"/v1/webhooks/{wid}/test")
    assert t.status == 200, t
    assert t.body["status"] == "failed" and t.body["last_status_code"] == 500, t
    assert t.body["attempts"] == 1 and t.body["last_error"], t
    time.sleep(2.0)  # several retry periods (300 ms base): none may come
    assert len(route.got()) == 1, route.got()
    listed = deliveries(wid)
    assert len(listed) == 1 and listed[0]["id"] == t.body["id"], listed
    assert listed[0]["status"] == "failed" and listed[0]["attempts"] == 1, listed
    assert fa("GET", f"/v1/webhooks/{wid}").body["deliveries"]["failed"] == 1
    # A test delivery is not redelivered.
    r = fa("POST", f"/v1/webhooks/{wid}/deliveries/{t.body['id']}/redeliver")
    assert r.status == 409, r
    assert fa("POST", f"/v1/webhooks/{uuid.uuid4()}/test").status == 404


# ------------------------------------------------------------------------------------------
# 4. Detected instances


def test_detected_instances_delivered_once_per_matching_instance(receiver, hooks, new_org):
    high, unprotected = receiver.route(), receiver.route()
    secret = "hi-" + uuid.uuid4().hex
    by_severity = hooks(hook_body(high.url, {"type": "hmac_sha256", "secret": secret},
                                  severities=["high"])).body
    made = hooks(hook_body(unprotected.url, {"type": "hmac_sha256"},
                           finding_types=[UNPROTECTED]))
    by_type, made_secret = made.body, made.body["signing_secret"]

    org = new_org()
    org.create_integration()
    first = org.wait_scan_done()
    assert first["status"] == "succeeded", describe(first)
    mine = of_integration(org.integration_id)

    findings = org.findings()
    base = f"/v1/instances?integration_id={org.integration_id}&limit=200"
    want_high = {(i["finding_id"], i["id"]) for i in list_all(fa, base + "&severity=high",
                                                             "instances")}
    want_type = {(findings[UNPROTECTED]["id"], i["id"])
                 for i in org.instances(findings[UNPROTECTED]["id"], "active")}
    assert len(want_high) == 3 and len(want_type) == 2, (want_high, want_type)

    for route, want, webhook, key in ((high, want_high, by_severity, secret),
                                      (unprotected, want_type, by_type, made_secret)):
        route.wait_count(len(want), of=mine)
        time.sleep(SETTLE_S)
        got = [q for q in route.got() if mine(q)]
        assert len(got) == len(want), got
        assert {(q["json"]["finding"]["id"], q["json"]["instance"]["id"]) for q in got} == want
        assert len({q["headers"]["idempotency-key"] for q in got}) == len(got)
        for q in got:
            assert_standard_headers(q, "instance.detected")
            assert_signed(q, key)
            body = q["json"]
            assert body["scan_id"] == first["id"], body
            assert body["instance"]["state"] == "active", body
            assert body["instance"]["finding_id"] == body["finding"]["id"], body
            if webhook is by_severity:
                assert body["finding"]["severity"] == "high", body
            else:
                assert body["finding"]["finding_type"]["id"] == UNPROTECTED, body
        listed = {d["id"]: d for d in deliveries(webhook["id"])}
        for q in got:
            d = listed[q["json"]["id"]]
            assert (d["status"], d["attempts"], d["event_type"]) == \
                ("succeeded", 1, "instance.detected"), d
            assert (d["finding_id"], d["instance_id"]) == \
                (q["json"]["finding"]["id"], q["json"]["instance"]["id"]), d
            assert d["last_status_code"] == 200 and d["delivered_at"], d

    # A second scan sees the same instances, already active: nothing new.
    seen = (len(high.got()), len(unprotected.got()))
    rescan_ingested(org)
    time.sleep(SETTLE_S)
    assert len([q for q in high.got() if mine(q)]) == len(want_high)
    assert len([q for q in unprotected.got() if mine(q)]) == len(want_type)
    assert (len(high.got()), len(unprotected.got())) == seen


# ------------------------------------------------------------------------------------------
# 5. Reopened instances


def test_reopened_instance_delivered_once(receiver, hooks, org):
    route = receiver.route()
    wid = hooks(hook_body(route.url, integration_ids=[org.integration_id],
                          finding_types=[UNPROTECTED])).body["id"]
    billing = instance_of(org, UNPROTECTED, f"{org.login}/billing")

    assert sim("PATCH", f"/_sim/orgs/{org.login}/repos/billing",
               {"branch_protection": GOOD_PROTECTION}).status == 200
    rescan_ingested(org)
    wait_until("billing to resolve", lambda: instance_of(
        org, UNPROTECTED, f"{org.login}/billing")["state"] == "resolved", 30, 0.2)
    assert sim("PATCH", f"/_sim/orgs/{org.login}/repos/billing",
               {"branch_protection": None}).status == 200
    broken = rescan_ingested(org)

    got = route.wait_count(1)
    time.sleep(SETTLE_S)
    got = route.got()
    assert len(got) == 1, got
    q = got[0]
    assert_standard_headers(q, "instance.reopened")
    assert q["json"]["instance"]["id"] == billing["id"], q["json"]
    assert q["json"]["instance"]["state"] == "active" and q["json"]["scan_id"] == broken["id"]
    d = delivery(wid, q["json"]["id"])
    assert d and d["event_type"] == "instance.reopened" and d["instance_id"] == billing["id"], d


# ------------------------------------------------------------------------------------------
# 6. Ignored findings


def test_ignored_finding_is_not_delivered(receiver, hooks, org):
    route = receiver.route()
    wid = hooks(hook_body(route.url, integration_ids=[org.integration_id])).body["id"]
    f = org.findings()[MEMBER_2FA]
    r = fa("POST", f"/v1/findings/{f['id']}/ignore")
    assert r.status == 200 and r.body["status"] == "ignored", r

    # A new instance of the ignored finding, and one of a finding that is not ignored.
    login = add_member_without_2fa(org)
    assert sim("PATCH", f"/_sim/orgs/{org.login}/repos/api",
               {"pushed_at": OLD, "updated_at": OLD}).status == 200
    rescan_ingested(org)
    eve = instance_of(org, MEMBER_2FA, login)
    assert eve["state"] == "active", eve
    stale_api = instance_of(org, STALE, f"{org.login}/api")

    route.wait_count(1)
    time.sleep(SETTLE_S)
    got = route.got()
    assert [q["json"]["instance"]["id"] for q in got] == [stale_api["id"]], got
    assert [d["instance_id"] for d in deliveries(wid)] == [stale_api["id"]]


# ------------------------------------------------------------------------------------------
# 7. Retries and redelivery


def test_retried_until_success_with_one_idempotency_key(receiver, hooks, org):
    route = receiver.route(500, 500, default=200)
    (wid,), inst = one_new_instance(org, [route], hooks)
    got = route.wait_count(3)
    d = wait_delivery(wid, got[0]["json"]["id"], "to succeed",
                      lambda d: d["status"] != "pending")
    time.sleep(SETTLE_S)
    got = route.got()
    assert len(got) == 3, got
    assert len({q["headers"]["idempotency-key"] for q in got}) == 1
    assert len({q["json"]["id"] for q in got}) == 1
    assert got[0]["headers"]["idempotency-key"] == got[0]["json"]["id"] == d["id"]
    assert all(q["json"]["instance"]["id"] == inst["id"] for q in got)
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("succeeded", 3, 200), d
    # Backoff: each retry later than the one before (300 ms base, jitter 0.8..1.2).
    assert got[1]["time"] - got[0]["time"] >= 0.2, got
    assert got[2]["time"] - got[1]["time"] >= 0.4, got


def test_retry_after_is_honoured_and_pending_is_not_redelivered(receiver, hooks, org):
    route = receiver.route((429, {"Retry-After": "2"}), default=200)
    (wid,), inst = one_new_instance(org, [route], hooks)
    first = route.wait_count(1)[0]
    did = first["json"]["id"]
    pending = wait_delivery(wid, did, "to record its first attempt",
                            lambda d: d["attempts"] == 1)
    assert pending["status"] == "pending" and pending["last_status_code"] == 429, pending
    r = fa("POST", f"/v1/webhooks/{wid}/deliveries/{did}/redeliver")
    assert r.status == 409 and r.body["id"] == did and r.body["status"] == "pending", r

    got = route.wait_count(2, timeout_s=15)
    assert got[1]["time"] - got[0]["time"] >= 1.8, (got[0]["time"], got[1]["time"])
    assert got[1]["headers"]["idempotency-key"] == did
    d = wait_delivery(wid, did, "to succeed", lambda d: d["status"] == "succeeded")
    assert d["attempts"] == 2 and d["instance_id"] == inst["id"], d
    assert fa("POST", f"/v1/webhooks/{wid}/deliveries/{uuid.uuid4()}/redeliver").status == 404


def test_failed_after_max_attempts_then_redelivered(receiver, hooks, org):
    route = receiver.route(default=503)
    secret = "rd-" + uuid.uuid4().hex
    (wid,), inst = one_new_instance(org, [route], hooks,
                                    {"type": "hmac_sha256", "secret": secret})
    first = route.wait_count(1)[0]
    did = first["json"]["id"]
    d = wait_delivery(wid, did, "to fail", lambda d: d["status"] != "pending")
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("failed", 4, 503), d
    assert d["last_error"] and d["delivered_at"] is None, d
    time.sleep(SETTLE_S)
    assert len(route.got()) == 4, route.got()
    counts = fa("GET", f"/v1/webhooks/{wid}").body["deliveries"]
    assert counts["failed"] == 1 and counts["pending"] == 0 and counts["last_failure_at"], counts
    assert [x["id"] for x in deliveries(wid, "failed")] == [did]

    route.answer(default=200)
    r = fa("POST", f"/v1/webhooks/{wid}/deliveries/{did}/redeliver")
    assert r.status == 202 and r.body["id"] == did and r.body["status"] == "pending", r
    d = wait_delivery(wid, did, "to succeed", lambda d: d["status"] == "succeeded")
    assert d["attempts"] == 1 and d["last_status_code"] == 200, d
    time.sleep(SETTLE_S)
    got = route.got()
    assert len(got) == 5, got
    assert {q["headers"]["idempotency-key"] for q in got} == {did}
    assert got[-1]["json"]["instance"]["id"] == inst["id"]
    assert_signed(got[-1], secret)
    # Succeeded deliveries may be redelivered too.
    r = fa("POST", f"/v1/webhooks/{wid}/deliveries/{did}/redeliver")
    assert r.status == 202, r
    route.wait_count(6)


# ------------------------------------------------------------------------------------------
# 8. Disabled webhooks


def test_disabled_webhook_receives_nothing(receiver, hooks, new_org):
    control, disabled = receiver.route(), receiver.route()
    hooks(hook_body(control.url))
    wid = hooks(hook_body(disabled.url, enabled=False)).body["id"]

    org = new_org()
    org.create_integration()
    first = org.wait_scan_done()
    assert first["status"] == "succeeded", describe(first)
    total = sum(f["instance_count"] for f in org.findings().values())
    mine = of_integration(org.integration_id)
    control.wait_count(total, of=mine)
    time.sleep(SETTLE_S)
    assert disabled.got() == [] and deliveries(wid) == []

    # Enabled again: what happened while disabled is not delivered, what comes next is.
    r = fa("PATCH", f"/v1/webhooks/{wid}", {"enabled": True})
    assert r.status == 200 and r.body["enabled"] is True, r
    login = add_member_without_2fa(org)
    rescan_ingested(org)
    eve = instance_of(org, MEMBER_2FA, login)
    disabled.wait_count(1, of=mine)
    time.sleep(SETTLE_S)
    got = [q for q in disabled.got() if mine(q)]
    assert [q["json"]["instance"]["id"] for q in got] == [eve["id"]], got
