"""Installing by consent: GitHub App user authorization (OAuth 2.0 authorization code with
PKCE) against the simulator's authorize and token endpoints.

start -> the user's browser at the provider -> the callback creates the integration with the
tokens sealed; the worker renews an expiring access token with the refresh token; a revoked
grant turns the integration needs_reauthorization and reauthorizing by consent heals it; a
callback with a wrong, reused or expired state, a denial or a bad code changes nothing.

The simulator's demo org acme-demo holds the OAuth client that deploy/local configures, so
these tests create their integrations on it (and delete them again)."""

import concurrent.futures
import glob
import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import cfg, describe, http, im, kafka_dump, psql, psql_value, sim, wait_until

ORG = "acme-demo"
CONFIG = {"organization": ORG, "api_base_url": cfg("CASB_SIM_URL")}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browser_get(url):
    """A browser's GET without following redirects: (status, Location, body text)."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url), timeout=30) as resp:
            return resp.status, resp.headers.get("Location"), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location"), e.read().decode()


def start(name="consent", **extra):
    body = {"name": name, "config": CONFIG}
    body.update(extra)
    r = im("POST", "/v1/integrations/oauth/github/start", body)
    assert r.status == 200, f"start: {r}"
    return r.body


def consent(authorize_url):
    """The user approves at the provider: the callback URL the browser is sent back to."""
    status, location, body = browser_get(authorize_url)
    assert status == 302, f"authorize: {status} {body}"
    return location


def callback(location):
    """The browser follows the provider's redirect to our callback (no bearer token)."""
    status, _, body = browser_get(location)
    return status, body


def query(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def oauth_stats():
    r = sim("GET", f"/_sim/orgs/{ORG}/oauth")
    assert r.status == 200, r
    return r.body


def sealed(integration_id):
    return psql_value("SELECT credentials_sealed FROM integrations WHERE id = :'id'",
                      id=integration_id)


def integration_count():
    return int(psql_value("SELECT count(*) FROM integrations"))


def wait_first_scan(integration_id):
    def done():
        scans = im("GET", f"/v1/integrations/{integration_id}/scans").body["scans"]
        return next((s for s in scans if s["status"] in ("succeeded", "failed")), None)
    return wait_until("the first scan", done, timeout_s=90)


def rescan(integration_id):
    r = wait_until("scan-now", lambda: (lambda x: x if x.status in (201, 202) else None)(
        im("POST", f"/v1/integrations/{integration_id}/scans")), timeout_s=30, interval_s=1)
    sid = r.body.get("id") or r.body.get("scan_id")

    def done():
        scans = im("GET", f"/v1/integrations/{integration_id}/scans").body["scans"]
        return next((s for s in scans if s["id"] == sid and
                     s["status"] in ("succeeded", "failed")), None)
    return wait_until(f"scan {sid}", done, timeout_s=90)


@pytest.fixture
def created():
    """Integrations the test creates by consent; deleted afterwards, and the simulator's
    OAuth settings of the demo org put back."""
    ids = []
    yield ids
    for i in ids:
        im("DELETE", f"/v1/integrations/{i}")
    sim("PATCH", f"/_sim/orgs/{ORG}",
        {"auth": {"oauth": {"access_token_ttl_s": None, "consent": None, "install": None}}})


def install(created, name="consent", **extra):
    flow = start(name, **extra)
    status, body = callback(consent(flow["authorize_url"]))
    assert status == 201, body
    integration = json.loads(body)
    created.append(integration["id"])
    return flow, integration


def test_consent_creates_the_integration_and_the_worker_renews_its_tokens(created):
    # Access tokens that live 2 minutes are inside the 5-minute renewal window at once: every
    # use of one renews it first.
    assert sim("PATCH", f"/_sim/orgs/{ORG}",
               {"auth": {"oauth": {"access_token_ttl_s": 120}}}).status == 200
    before = oauth_stats()
    count = integration_count()

    flow = start("consent renewal", scan_interval_s=7200)
    url = flow["authorize_url"]
    q = query(url)
    assert url.startswith(cfg("CASB_SIM_URL") + "/login/oauth/authorize?"), url
    assert q["response_type"] == "code" and q["client_id"] and q["state"] == flow["state"]
    assert q["redirect_uri"] == flow["redirect_uri"]
    assert flow["redirect_uri"].endswith("/v1/integrations/oauth/github/callback")
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert flow["pkce"] is True and flow["expires_at"]
    # Only the state's hash is stored; the verifier is sealed.
    row = psql("SELECT state_sha256, verifier_sealed FROM oauth_states WHERE state_sha256 = "
               ":'h'", h=hashlib.sha256(flow["state"].encode()).hexdigest())
    assert len(row) == 1 and row[0][1].startswith("v1."), row
    assert integration_count() == count, "starting a flow must not create anything"

    location = consent(url)
    back = query(location)
    assert back["state"] == flow["state"] and back["code"]
    status, body = callback(location)
    assert status == 201, body
    integration = json.loads(body)
    created.append(integration["id"])
    iid = integration["id"]
    assert integration["name"] == "consent renewal"
    assert integration["scan_interval_s"] == 7200
    assert integration["config"]["organization"] == ORG
    assert "credentials" not in integration and "ghu_" not in body and "ghr_" not in body

    stats = oauth_stats()
    assert stats["codes_redeemed"] == before["codes_redeemed"] + 1
    assert stats["last_code_challenge_method"] == "S256"
    stored = sealed(iid)
    assert stored.startswith("v1.") and "ghu_" not in stored and "ghr_" not in stored

    first = wait_first_scan(iid)
    assert first["status"] == "succeeded", describe(first)
    assert first["reason"] == "first"
    # The worker renewed the expiring token with the refresh token (the first scan may have
    # done so before `stored` was read: the next scan shows the new pair was stored).
    assert oauth_stats()["refreshes"] > stats["refreshes"]
    renewed = sealed(iid)
    health = im("GET", f"/v1/integrations/{iid}").body["health"]
    assert health == "healthy"

    # A later scan renews again (the simulator rotated the refresh token: the stored one is
    # the only one that works, so this proves the worker stored it).
    refreshes = oauth_stats()["refreshes"]
    again = rescan(iid)
    assert again["status"] == "succeeded", describe(again)
    assert sealed(iid) != renewed
    # Once per scan, not once per API call, even for tokens shorter than the window.
    assert oauth_stats()["refreshes"] - refreshes == 1

    # A config change checks the connection with the stored tokens: integration-manager
    # renews the expiring access token first, under the same row lock.
    refreshes = oauth_stats()["refreshes"]
    r = im("PATCH", f"/v1/integrations/{iid}", {"config": CONFIG})
    assert r.status == 200, r
    assert oauth_stats()["refreshes"] > refreshes

    # Concurrent checks never spend the same refresh token twice (the simulator rotates them:
    # a second use would be refused): renewals queue on the integration's row lock.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: im("PATCH", f"/v1/integrations/{iid}",
                                             {"config": CONFIG}), range(4)))
    assert [a.status for a in answers] == [200] * 4, answers
    assert rescan(iid)["status"] == "succeeded"

    # Replaying the callback (a reused state) is refused and creates nothing more.
    n = integration_count()
    status, body = callback(location)
    assert status == 400 and "already used" in body, body
    assert integration_count() == n

    entries = im("GET", f"/v1/audit-log?integration_id={iid}").body["entries"]
    create = [e for e in entries if e["action"] == "create"]
    assert create and create[0]["outcome"] == "success", entries
    assert create[0]["details"].get("via") == "oauth", create
    starts = im("GET", "/v1/audit-log?action=oauth_start").body["entries"]
    assert starts and starts[0]["outcome"] == "success", starts


def test_revoked_grant_needs_reauthorization_and_consent_heals_it(created):
    _, integration = install(created, "consent revoked")
    iid = integration["id"]
    first = wait_first_scan(iid)
    assert first["status"] == "succeeded", describe(first)

    # The organization's admin removes the authorization: access and refresh tokens die.
    r = sim("POST", f"/_sim/orgs/{ORG}/oauth/revoke")
    assert r.status == 200 and r.body["revoked_refresh_tokens"] >= 1, r
    failed = rescan(iid)
    assert failed["status"] == "failed", describe(failed)
    now = im("GET", f"/v1/integrations/{iid}").body
    assert now["health"] == "needs_reauthorization", now
    assert "bad_refresh_token" in (now["health_reason"] or ""), now

    # Reauthorize without credentials: consent again, for this integration.
    r = im("POST", f"/v1/integrations/{iid}/reauthorize", {})
    assert r.status == 200, r
    assert query(r.body["authorize_url"])["code_challenge_method"] == "S256"
    count = integration_count()
    status, body = callback(consent(r.body["authorize_url"]))
    assert status == 200, body
    assert integration_count() == count, "a reauthorization must not create an integration"
    healed = json.loads(body)
    assert healed["id"] == iid and healed["health"] == "initializing", healed

    def healthy():
        b = im("GET", f"/v1/integrations/{iid}").body
        return b if b["health"] == "healthy" else None
    wait_until("the reauthorized integration to be healthy", healthy, timeout_s=90)
    entries = im("GET", f"/v1/audit-log?integration_id={iid}&action=reauthorize").body["entries"]
    assert entries and entries[0]["outcome"] == "success", entries


def test_bad_callbacks_and_starts_change_nothing(created):
    count = integration_count()
    cb = cfg("CASB_INTEGRATIONS_URL") + "/v1/integrations/oauth/github/callback"

    status, body = callback(cb + "?code=abc")
    assert status == 400 and "state" in body, body
    status, body = callback(cb + "?code=abc&state=not-a-state-we-issued")
    assert status == 400 and "unknown" in body, body
    status, body = callback(cb + "?code=abc&state=x&surprise=1")
    assert status == 400, body
    status, body = callback(cfg("CASB_INTEGRATIONS_URL") +
                            "/v1/integrations/oauth/nosuch/callback?code=a&state=b")
    assert status == 404, body

    # Expired: the flow outlived its time (moved into the past here instead of waiting).
    flow = start("expired")
    psql("UPDATE oauth_states SET expires_at = now() - interval '1 second' "
         "WHERE state_sha256 = :'h'", h=hashlib.sha256(flow["state"].encode()).hexdigest())
    status, body = callback(consent(flow["authorize_url"]))
    assert status == 400 and "expired" in body, body

    # A wrong code: the provider refuses the exchange; the state is spent.
    flow = start("bad code")
    status, body = callback(cb + "?" + urllib.parse.urlencode(
        {"code": "0123456789abcdef0123", "state": flow["state"]}))
    assert status == 422 and "bad_verification_code" in body, body

    # The user denies consent at the provider.
    assert sim("PATCH", f"/_sim/orgs/{ORG}", {"auth": {"oauth": {"consent": "deny"}}}).status \
        == 200
    flow = start("denied")
    location = consent(flow["authorize_url"])
    assert query(location)["error"] == "access_denied"
    status, body = callback(location)
    assert status == 400 and "access_denied" in body, body

    assert integration_count() == count
    failures = [e for e in im("GET", "/v1/audit-log?action=create").body["entries"]
                if e["outcome"] == "failure" and (e.get("details") or {}).get("via") == "oauth"]
    assert len(failures) >= 2, failures

    # Bad starts: unknown provider, bad bodies, no token, and consent-flow tokens pasted into
    # a plain create.
    assert im("POST", "/v1/integrations/oauth/nosuch/start",
              {"name": "x", "config": CONFIG}).status == 404
    r = im("POST", "/v1/integrations/oauth/github/start", {"config": CONFIG})
    assert r.status == 422 and r.body["field"] == "name", r
    r = im("POST", "/v1/integrations/oauth/github/start",
           {"name": "x", "config": CONFIG, "credentials": {"token": "t"}})
    assert r.status == 422 and r.body["field"] == "credentials", r
    r = im("POST", "/v1/integrations/oauth/github/start",
           {"name": "x", "config": {"organization": ORG, "api_base_url": "http://10.1.2.3"}})
    assert r.status == 422 and r.body["field"] == "config.api_base_url", r
    r = im("POST", "/v1/integrations/oauth/github/start",
           {"name": "x", "config": CONFIG, "scan_interval_s": 60})
    assert r.status == 422 and r.body["field"] == "scan_interval_s", r
    r = http("POST", cfg("CASB_INTEGRATIONS_URL") + "/v1/integrations/oauth/github/start",
             {"name": "x", "config": CONFIG})
    assert r.status == 401, r
    r = im("POST", "/v1/integrations", {"provider": "github", "name": "x", "config": CONFIG,
                                        "credentials": {"oauth": True, "access_token": "t"}})
    assert r.status == 422 and r.body["field"] == "credentials.oauth", r
    assert integration_count() == count


def test_install_page_installs_and_consents_on_the_way(created):
    """An organization without the App: start on the App's installation page; GitHub sends
    the user on to the callback with a code (no PKCE on that page) once it is installed."""
    flow = start("consent install", install=True)
    assert flow["install"] is True and flow["pkce"] is False
    url = flow["authorize_url"]
    assert url.startswith(cfg("CASB_SIM_URL") + "/apps/casb-scanner/installations/new?"), url
    assert query(url) == {"state": flow["state"]}
    location = consent(url)
    back = query(location)
    assert back["setup_action"] == "install" and back["installation_id"] and back["code"]
    assert back["state"] == flow["state"]
    status, body = callback(location)
    assert status == 201, body
    integration = json.loads(body)
    created.append(integration["id"])
    first = wait_first_scan(integration["id"])
    assert first["status"] == "succeeded", describe(first)

    # A member's installation request awaits an owner's approval: nothing to connect yet.
    assert sim("PATCH", f"/_sim/orgs/{ORG}", {"auth": {"oauth": {"install": "request"}}}).status \
        == 200
    count = integration_count()
    flow = start("consent install request", install=True)
    location = consent(flow["authorize_url"])
    assert query(location).get("setup_action") == "request" and "code" not in query(location)
    status, body = callback(location)
    assert status == 409 and "approval" in body, body
    assert integration_count() == count


def test_tokens_never_reach_logs_or_kafka(created):
    _, integration = install(created, "consent logs")
    first = wait_first_scan(integration["id"])
    assert first["status"] == "succeeded", describe(first)
    logs = glob.glob(os.path.join(cfg("CASB_LOG_DIR"), "*.log"))
    assert logs
    for path in logs:
        with open(path, errors="replace") as f:
            text = f.read()
        for marker in ("ghu_", "ghr_", "sim-oauth-secret-acme-demo", "code_verifier="):
            assert marker not in text, f"{marker} in {path}"
    for topic in ("casb.scan.jobs", "casb.scan.results", "casb.integration.events"):
        text = kafka_dump(topic)
        assert integration["id"] in text, f"{topic} holds nothing of the integration"
        for marker in ("ghu_", "ghr_", "sim-oauth-secret-acme-demo"):
            assert marker not in text, f"{marker} on {topic}"
