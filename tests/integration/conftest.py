"""Helpers for the integration tests. They run against the stack that deploy/local/up started
(tests/run does that) and read its addresses from .local/casb.env; variables already in the
environment win. Standard library only: urllib for HTTP, psql and kcat through subprocess.

Every test creates its own organization in the SaaS simulator (a unique login, a known
tenant) and its own integration, so tests neither depend on the demo nor on each other."""

import copy
import datetime
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_env():
    env = {}
    path = os.path.join(ROOT, ".local", "casb.env")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    env[k] = v
    for k in list(env) + ["CASB_INTEGRATIONS_URL", "CASB_FINDINGS_URL", "CASB_TOKEN",
                          "CASB_SIM_URL", "CASB_DATABASE_URL", "CASB_KAFKA_BROKERS",
                          "CASB_LOG_DIR", "CASB_GITHUB_APP_KEY"]:
        if os.environ.get(k):
            env[k] = os.environ[k]
    return env


ENV = _load_env()


def cfg(name):
    value = ENV.get(name)
    if not value:
        pytest.fail(f"{name} is not set: start the stack with deploy/local/up "
                    f"(it writes .local/casb.env)")
    return value


# ------------------------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, body, raw, headers):
        self.status = status
        self.body = body
        self.raw = raw
        self.headers = headers

    def __repr__(self):
        return f"<HTTP {self.status} {self.raw[:500]!r}>"


def http(method, url, body=None, token=None, timeout=30):
    data = None
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw, hdrs = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), dict(e.headers)
    text = raw.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return Response(status, parsed, text, hdrs)


def im(method, path, body=None):
    """integration-manager, authenticated."""
    return http(method, cfg("CASB_INTEGRATIONS_URL") + path, body, token=cfg("CASB_TOKEN"))


def fa(method, path, body=None):
    """findings-api, authenticated."""
    return http(method, cfg("CASB_FINDINGS_URL") + path, body, token=cfg("CASB_TOKEN"))


def sim(method, path, body=None):
    """The simulator's admin API (no auth)."""
    return http(method, cfg("CASB_SIM_URL") + path, body)


def list_all(call, path, key):
    """Follows next_cursor through a list endpoint."""
    items, cursor = [], None
    for _ in range(100):
        sep = "&" if "?" in path else "?"
        r = call("GET", path + (f"{sep}cursor={urllib.parse.quote(cursor)}" if cursor else ""))
        assert r.status == 200, f"GET {path}: {r}"
        items.extend(r.body[key])
        cursor = r.body.get("next_cursor")
        if not cursor:
            return items
    raise AssertionError(f"GET {path}: more than 100 pages")


def wait_until(what, fn, timeout_s=60, interval_s=0.5):
    """Polls fn until it returns a truthy value; fails with what after timeout_s."""
    deadline = time.time() + timeout_s
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


# ------------------------------------------------------------------------------------------
# Raw access to PostgreSQL and Kafka


def psql(sql, **params):
    """Runs SQL through psql with params as psql variables (use :'name' in sql: psql quotes
    them). Returns rows as lists of strings."""
    args = ["psql", cfg("CASB_DATABASE_URL"), "-X", "-A", "-t", "-q", "-F", "\t",
            "-v", "ON_ERROR_STOP=1"]
    for k, v in params.items():
        args += ["-v", f"{k}={v}"]
    out = subprocess.run(args, input=sql, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"psql failed: {out.stderr}"
    return [line.split("\t") for line in out.stdout.splitlines() if line != ""]


def psql_value(sql, **params):
    rows = psql(sql, **params)
    return rows[0][0] if rows else None


def kafka_dump(topic, timeout_s=30):
    """Every message of a topic from the beginning (keys and values), as one string."""
    out = subprocess.run(
        ["timeout", str(timeout_s), "kcat", "-b", cfg("CASB_KAFKA_BROKERS"), "-C", "-t", topic,
         "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n"],
        capture_output=True, text=True, errors="replace")
    assert out.returncode == 0, f"kcat on {topic} failed ({out.returncode}): {out.stderr}"
    return out.stdout


# ------------------------------------------------------------------------------------------
# Tenants: a known organization per test

NOW = datetime.datetime.now(datetime.timezone.utc)
RECENT = (NOW - datetime.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
CREATED = "2021-03-01T10:00:00Z"
OLD = "2020-01-15T10:00:00Z"

# A default-branch protection with every sub-setting a reviewer asks for (GitHub's shape).
GOOD_PROTECTION = {
    "required_status_checks": {"strict": True, "contexts": ["ci/build"],
                               "checks": [{"context": "ci/build", "app_id": None}]},
    "required_pull_request_reviews": {"dismiss_stale_reviews": True,
                                      "require_code_owner_reviews": True,
                                      "required_approving_review_count": 1,
                                      "require_last_push_approval": False},
    "enforce_admins": {"enabled": True},
    "required_linear_history": {"enabled": False},
    "allow_force_pushes": {"enabled": False},
    "allow_deletions": {"enabled": False},
    "block_creations": {"enabled": False},
    "required_conversation_resolution": {"enabled": True},
    "required_signatures": {"enabled": False},
    "restrictions": None,
}

SECURE_ANALYSIS = {"secret_scanning": {"status": "enabled"},
                   "secret_scanning_push_protection": {"status": "enabled"}}

_ids = iter(range(1, 10**9))


def _next_id(base):
    # Unique across the tests of one run (installation ids must be unique in the simulator).
    return base + (int(uuid.uuid4().int % 10**6) * 1000) + next(_ids)


def make_repo(org, name, private=True, protection=None, updated=RECENT, deploy_keys=None,
              hooks=None):
    rid = _next_id(5_000_000)
    return {
        "name": name, "id": rid, "private": private,
        "visibility": "private" if private else "public",
        "archived": False, "fork": False, "default_branch": "main",
        "pushed_at": updated, "updated_at": updated, "created_at": CREATED,
        "security_and_analysis": copy.deepcopy(SECURE_ANALYSIS),
        "branch_protection": copy.deepcopy(protection),
        "deploy_keys": deploy_keys or [],
        "hooks": hooks or [],
        "collaborators": [],
    }


def make_tenant(org, token, app_id=None, installation_id=None, public_key_pem=None):
    """An organization with a known set of problems. EXPECTED below lists what a scan of it
    must find (finding type -> asset ids)."""
    members = [
        {"login": f"{org}-alice", "id": _next_id(100_000), "role": "admin", "two_factor": True},
        {"login": f"{org}-bob", "id": _next_id(100_000), "role": "member", "two_factor": False},
        {"login": f"{org}-carol", "id": _next_id(100_000), "role": "member", "two_factor": False},
        {"login": f"{org}-dave", "id": _next_id(100_000), "role": "member", "two_factor": True},
    ]
    hook_id = _next_id(7_000_000)
    key_id = _next_id(8_000_000)
    repos = [
        make_repo(org, "api", private=False, protection=GOOD_PROTECTION),
        make_repo(org, "billing", protection=None),
        make_repo(org, "infra", protection=None,
                  deploy_keys=[{"id": key_id, "title": "deployer", "key": "ssh-ed25519 AAAAC3Nza"
                                "C1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
                                "read_only": False, "verified": True, "created_at": CREATED}],
                  hooks=[{"id": hook_id, "name": "web", "active": True, "events": ["push"],
                          "config": {"url": "https://ci.example.com/hook", "content_type": "json",
                                     "insecure_ssl": "0"},
                          "created_at": CREATED, "updated_at": CREATED}]),
        make_repo(org, "old", protection=GOOD_PROTECTION, updated=OLD),
    ]
    auth = {"tokens": [token]}
    if app_id is not None:
        auth["app"] = {"app_id": app_id, "installation_id": installation_id}
        if public_key_pem:
            auth["app"]["public_key_pem"] = public_key_pem
    tenant = {
        "login": org,
        "auth": auth,
        "rate_limit": {"limit": 5000},
        "org": {
            "two_factor_requirement_enabled": False,
            "default_repository_permission": "write",
            "members_can_create_public_repositories": False,
            "members_can_create_repositories": True,
            "secret_scanning_enabled_for_new_repositories": True,
            "secret_scanning_push_protection_enabled_for_new_repositories": True,
        },
        "members": members,
        "outside_collaborators": [],
        "repos": repos,
        "hooks": [],
        "installations": [],
    }
    expected = {
        "github.org.two_factor_requirement_disabled": {org},
        "github.org.default_write_permission": {org},
        "github.org.member_2fa_disabled": {f"{org}-bob", f"{org}-carol"},
        "github.repo.public": {f"{org}/api"},
        "github.repo.default_branch_unprotected": {f"{org}/billing", f"{org}/infra"},
        "github.repo.stale": {f"{org}/old"},
        "github.repo.deploy_key_write": {f"{org}/infra#key:{key_id}"},
        "github.webhook.no_secret": {f"{org}/infra#hook:{hook_id}"},
    }
    return tenant, expected


# ------------------------------------------------------------------------------------------
# Integrations


class Org:
    """One simulator organization with its own integration, cleaned up afterwards."""

    def __init__(self, auth="token"):
        self.login = "it-" + uuid.uuid4().hex[:10]
        self.token = "ghp_" + uuid.uuid4().hex + uuid.uuid4().hex[:4]
        self.auth = auth
        self.app_id = self.installation_id = None
        pub = None
        if auth == "github_app":
            self.app_id = _next_id(10_000)
            self.installation_id = _next_id(20_000)
            key = cfg("CASB_GITHUB_APP_KEY")
            with open(key) as f:
                self.private_key = f.read()
            pub_path = key.replace(".pem", ".pub.pem")
            with open(pub_path) as f:
                pub = f.read()
        self.tenant, self.expected = make_tenant(self.login, self.token, self.app_id,
                                                 self.installation_id, pub)
        self.integration_id = None
        r = sim("PUT", f"/_sim/orgs/{self.login}", self.tenant)
        assert r.status in (200, 201), f"PUT /_sim/orgs/{self.login}: {r}"

    def credentials(self):
        if self.auth == "github_app":
            return {"app_id": str(self.app_id), "installation_id": str(self.installation_id),
                    "private_key": self.private_key}
        return {"token": self.token}

    def create_integration(self, **extra):
        body = {"provider": "github", "name": self.login,
                "config": {"organization": self.login, "api_base_url": cfg("CASB_SIM_URL")},
                "auth_method": self.auth, "credentials": self.credentials()}
        body.update(extra)
        r = im("POST", "/v1/integrations", body)
        assert r.status == 201, f"POST /v1/integrations: {r}"
        assert r.body["provider"] == "github"
        self.integration_id = r.body["id"]
        return r

    # --- scans

    def scans(self):
        r = im("GET", f"/v1/integrations/{self.integration_id}/scans")
        assert r.status == 200, f"GET scans: {r}"
        return r.body["scans"]

    def scan(self, scan_id):
        for s in self.scans():
            if s["id"] == scan_id:
                return s
        return None

    def wait_scan_done(self, scan_id=None, timeout_s=90):
        """Waits until the scan (or the only/first scan) finished; returns it."""
        def done():
            scans = self.scans()
            if scan_id is None:
                found = scans[-1] if scans else None
                if len(scans) > 1:
                    found = min(scans, key=lambda s: s.get("queued_at") or "")
            else:
                found = next((s for s in scans if s["id"] == scan_id), None)
            if found and found["status"] in ("succeeded", "failed", "cancelled"):
                return found
            return None
        return wait_until(f"scan {scan_id or '(first)'} of {self.login} to finish", done,
                          timeout_s)

    def scan_now(self):
        r = im("POST", f"/v1/integrations/{self.integration_id}/scans")
        return r

    def rescan(self, timeout_s=90):
        """Scan now, wait for it to finish, return it."""
        r = wait_until("scan-now to be accepted", lambda: (
            (lambda resp: resp if resp.status in (201, 202) else None)(self.scan_now())),
            timeout_s=30, interval_s=1)
        sid = scan_id_of(r.body)
        assert sid, f"scan-now answered without a scan id: {r}"
        return self.wait_scan_done(sid, timeout_s)

    # --- findings

    def findings(self):
        """{finding type id: finding} of this integration."""
        items = list_all(fa, f"/v1/findings?integration_id={self.integration_id}&include_resolved=true&limit=100",
                         "findings")
        out = {}
        for f in items:
            assert f["integration_id"] == self.integration_id, f
            out[type_id(f)] = f
        return out

    def instances(self, finding_id, state="all"):
        """Instances of a finding (every state by default)."""
        return list_all(fa, f"/v1/findings/{finding_id}/instances?limit=100&state={state}",
                        "instances")

    def active_counts(self):
        return {t: f["instance_count"] for t, f in self.findings().items()
                if f["instance_count"] > 0}

    def cleanup(self):
        if self.integration_id:
            im("DELETE", f"/v1/integrations/{self.integration_id}")
        sim("DELETE", f"/_sim/orgs/{self.login}/faults")
        sim("DELETE", f"/_sim/orgs/{self.login}")


def type_id(finding):
    ft = finding.get("finding_type")
    return ft["id"] if isinstance(ft, dict) else ft


def scan_id_of(body):
    if not isinstance(body, dict):
        return None
    for key in ("id", "scan_id"):
        if isinstance(body.get(key), str):
            return body[key]
    if isinstance(body.get("scan"), dict):
        return body["scan"].get("id")
    return None


def expected_counts(expected):
    return {t: len(assets) for t, assets in expected.items()}


@pytest.fixture
def org():
    """A simulator org (token auth) with its integration created and the first scan done."""
    o = Org()
    try:
        o.create_integration()
        first = o.wait_scan_done()
        assert first["status"] == "succeeded", "first scan: " + describe(first)
        yield o
    finally:
        o.cleanup()


@pytest.fixture
def new_org():
    """A simulator org without an integration yet (the test creates it)."""
    orgs = []

    def make(auth="token"):
        o = Org(auth)
        orgs.append(o)
        return o
    try:
        yield make
    finally:
        for o in orgs:
            o.cleanup()


def describe(scan):
    """A scan in one line for assertion messages: status, error and stats first."""
    if not isinstance(scan, dict):
        return repr(scan)
    return (f"scan {scan.get('id')} {scan.get('status')} (reason {scan.get('reason')}): "
            f"error={scan.get('error')!r} stats={scan.get('stats')}")
