"""PATCH /v1/integrations/{id} (name, interval, config, credentials checked like on add),
POST /v1/integrations/{id}/reauthorize, the last scan's outcome in the integration, and the
health/provider filters of GET /v1/integrations."""

import datetime
import uuid

from conftest import cfg, describe, im, list_all, psql_value, sim, wait_until


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def get(org):
    r = im("GET", f"/v1/integrations/{org.integration_id}")
    assert r.status == 200, r
    return r.body


def patch(org, body):
    return im("PATCH", f"/v1/integrations/{org.integration_id}", body)


def set_tokens(org, tokens):
    """Replaces the tokens the simulated organization accepts."""
    org.tenant["auth"]["tokens"] = list(tokens)
    r = sim("PUT", f"/_sim/orgs/{org.login}", org.tenant)
    assert r.status in (200, 201), r


def new_token():
    return "ghp_" + uuid.uuid4().hex + uuid.uuid4().hex[:4]


def sealed(org):
    return psql_value("SELECT credentials_sealed FROM integrations WHERE id = :'id'",
                      id=org.integration_id)


def test_integration_shows_last_scan(org):
    first = org.scans()[-1]
    body = get(org)
    assert body["last_scan_status"] == "succeeded"
    assert body["last_scan_at"] is not None
    assert body["next_scan_at"] is not None
    last = body["last_scan"]
    assert last == {"id": first["id"], "status": "succeeded", "reason": "first",
                    "finished_at": first["finished_at"], "error": None}, (last, first)


def test_rename(org):
    before = get(org)
    r = patch(org, {"name": "renamed " + org.login})
    assert r.status == 200, r
    assert r.body["name"] == "renamed " + org.login
    after = get(org)
    assert after["name"] == "renamed " + org.login
    for key in ("scan_interval_s", "next_scan_at", "config", "health", "paused"):
        assert after[key] == before[key], key


def test_interval_change_moves_next_scan(org):
    before = get(org)
    assert before["scan_interval_s"] != 3600
    r = patch(org, {"scan_interval_s": 3600})
    assert r.status == 200, r
    assert r.body["scan_interval_s"] == 3600
    last = parse_time(r.body["last_scan_at"])
    nxt = parse_time(r.body["next_scan_at"])
    # From the last scan, not from the old schedule; never in the past.
    assert abs((nxt - last).total_seconds() - 3600) <= 2, (last, nxt)
    assert nxt < parse_time(before["next_scan_at"])
    assert get(org)["next_scan_at"] == r.body["next_scan_at"]

    # A last scan longer ago than the new interval: due now, not in the past.
    assert psql_value("UPDATE integrations SET last_scan_at = now() - interval '3 hours' "
                      "WHERE id = :'id' RETURNING 1", id=org.integration_id) == "1"
    r = patch(org, {"scan_interval_s": 7200})
    assert r.status == 200, r
    # (Read from the answer: the scheduler may claim the now due integration at once.)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((parse_time(r.body["next_scan_at"]) - now).total_seconds()) <= 5, r.body


def test_bad_patches_change_nothing(org):
    before = get(org)
    cases = [
        ({"scan_interval_s": 100}, "scan_interval_s"),
        ({"scan_interval_s": 86401}, "scan_interval_s"),
        ({"scan_interval_s": "3600"}, "scan_interval_s"),
        ({"name": ""}, "name"),
        ({"name": "ok", "provider": "github"}, "provider"),
        ({"paused": True}, "paused"),
        ({}, "body"),
        ({"config": {"organization": org.login, "api_base_url": "http://10.0.0.1"}},
         "config.api_base_url"),
        ({"config": {"organization": org.login, "api_base_url": cfg("CASB_SIM_URL"),
                     "token": "x"}}, "config.token"),
        ({"credentials": {}}, None),
    ]
    for body, field in cases:
        r = patch(org, body)
        assert r.status == 422, (body, r)
        assert r.headers.get("Content-Type", "").startswith("application/problem+json"), r
        if field:
            assert r.body.get("field") == field, (body, r.body)
    r = im("PATCH", f"/v1/integrations/{uuid.uuid4()}", {"name": "x"})
    assert r.status == 404, r
    assert get(org) == before


def test_bad_new_credentials_change_nothing(org):
    before = get(org)
    sealed_before = sealed(org)
    r = patch(org, {"credentials": {"token": new_token()}, "name": "should not stick"})
    assert r.status == 422, r
    assert r.body.get("field") == "credentials", r.body
    assert get(org) == before
    assert sealed(org) == sealed_before
    # The stored token still works.
    done = org.rescan()
    assert done["status"] == "succeeded", describe(done)


def test_config_pointing_elsewhere_is_checked(org):
    before = get(org)
    # Another organization that the simulator does not know: the provider refuses it.
    r = patch(org, {"config": {"organization": "it-missing-" + uuid.uuid4().hex[:8],
                               "api_base_url": cfg("CASB_SIM_URL")}})
    assert r.status in (422, 502), r
    assert get(org) == before


def test_good_new_credentials_are_used(org):
    second = new_token()
    set_tokens(org, [org.token, second])
    sealed_before = sealed(org)
    r = patch(org, {"credentials": {"token": second}})
    assert r.status == 200, r
    assert "credentials" not in r.body
    assert second not in r.raw
    assert sealed(org) != sealed_before
    assert second not in sealed(org)

    # Only the new token is accepted from now on: the next scan must use it.
    set_tokens(org, [second])
    done = org.rescan()
    assert done["status"] == "succeeded", describe(done)
    assert get(org)["health"] == "healthy"


def test_reauthorize_heals_needs_reauthorization(org):
    replacement = new_token()
    set_tokens(org, [replacement])  # the stored token is revoked
    failed = org.rescan()
    assert failed["status"] == "failed", describe(failed)
    body = wait_until("needs_reauthorization", lambda: (
        lambda b: b if b["health"] == "needs_reauthorization" else None)(get(org)),
        timeout_s=30)
    assert body["last_scan"]["id"] == failed["id"]
    assert body["last_scan"]["status"] == "failed"
    assert body["last_scan"]["error"]

    # Refused credentials leave it as it is.
    r = im("POST", f"/v1/integrations/{org.integration_id}/reauthorize",
           {"credentials": {"token": new_token()}})
    assert r.status == 422, r
    assert get(org)["health"] == "needs_reauthorization"
    r = im("POST", f"/v1/integrations/{org.integration_id}/reauthorize", {"token": "x"})
    assert r.status == 422 and r.body.get("field") == "token", r
    # Without credentials, reauthorizing starts the consent flow (test_oauth.py); the
    # integration stays as it is until the provider sends the user back.
    r = im("POST", f"/v1/integrations/{org.integration_id}/reauthorize", {})
    assert r.status == 200 and "authorize_url" in r.body, r
    assert get(org)["health"] == "needs_reauthorization"

    scans_before = {s["id"] for s in org.scans()}
    r = im("POST", f"/v1/integrations/{org.integration_id}/reauthorize",
           {"credentials": {"token": replacement}})
    assert r.status == 200, r
    assert r.body["health"] == "initializing", r.body
    assert r.body["health_reason"] is None
    new = [s for s in org.scans() if s["id"] not in scans_before]
    assert len(new) == 1 and new[0]["reason"] == "manual", new
    done = org.wait_scan_done(new[0]["id"])
    assert done["status"] == "succeeded", describe(done)
    wait_until("healthy after reauthorize",
               lambda: get(org)["health"] == "healthy", timeout_s=30)


def test_reauthorize_paused_stays_paused(org):
    assert im("POST", f"/v1/integrations/{org.integration_id}/pause").status == 200
    scans_before = {s["id"] for s in org.scans()}
    r = im("POST", f"/v1/integrations/{org.integration_id}/reauthorize",
           {"credentials": {"token": org.token}})
    assert r.status == 200, r
    assert r.body["health"] == "paused" and r.body["paused"] is True
    assert {s["id"] for s in org.scans()} == scans_before


def ids(query):
    return {i["id"] for i in list_all(im, "/v1/integrations?limit=200" + query, "integrations")}


def test_health_and_provider_filters(org):
    wait_until("healthy", lambda: get(org)["health"] == "healthy", timeout_s=30)
    assert org.integration_id in ids("&health=healthy")
    assert org.integration_id in ids("&provider=github")
    assert org.integration_id in ids("&health=healthy&provider=github")
    assert org.integration_id not in ids("&health=paused")
    for item in list_all(im, "/v1/integrations?health=healthy", "integrations"):
        assert item["health"] == "healthy", item

    assert im("POST", f"/v1/integrations/{org.integration_id}/pause").status == 200
    assert org.integration_id in ids("&health=paused")
    assert org.integration_id not in ids("&health=healthy")
    for item in list_all(im, "/v1/integrations?health=paused&provider=github", "integrations"):
        assert item["health"] == "paused" and item["provider"] == "github", item


def test_filters_refuse_bad_values():
    for query, param in [("health=bogus", "health"), ("health=", "health"),
                         ("provider=nope", "provider"), ("health=healthy&health=paused", "health"),
                         ("healthy=1", "healthy")]:
        r = im("GET", "/v1/integrations?" + query)
        assert r.status == 400, (query, r)
        assert r.body.get("parameter") == param, (query, r.body)


def test_refusal_of_a_long_non_ascii_member_name_says_which():
    # Found by tests/apifuzz: the name was cut at 100 bytes inside a UTF-8 sequence, jansson
    # refused the string, and the 422 came without detail and field.
    key = "a" + "\U0001d47b" * 30
    r = im("POST", "/v1/integrations",
           {"provider": "github", "name": "x", "credentials": {}, "config": {key: 1}})
    assert r.status == 422, r
    assert r.body["field"].startswith("config.a\U0001d47b"), r
    assert "unknown configuration field" in r.body["detail"], r
