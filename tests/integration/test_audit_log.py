"""GET /v1/audit-log: every create, update, pause, resume, delete, reauthorize and scan-now
leaves an entry with its actor and outcome, refused ones included; no entry holds a
secret; entries outlive the integration; the list pages and filters."""

import json
import uuid

from conftest import cfg, im, list_all, psql_value, wait_until


def entries(query=""):
    return list_all(im, "/v1/audit-log?limit=200" + query, "entries")


def of(integration_id):
    return entries(f"&integration_id={integration_id}")


def only(items, action, outcome):
    found = [e for e in items if e["action"] == action and e["outcome"] == outcome]
    assert found, f"no {outcome} entry for {action} in {json.dumps(items, indent=1)}"
    return found


def test_every_action_is_recorded(new_org):
    org = new_org()
    canary = "ghp_CANARY" + uuid.uuid4().hex
    body = {"provider": "github", "name": org.login,
            "config": {"organization": org.login, "api_base_url": cfg("CASB_SIM_URL")},
            "credentials": {"token": canary}}
    # Refused create: credentials the provider does not accept. Other tests run meanwhile
    # and a refusal is written just after its answer: look for this one among the newer.
    newest = max([e["id"] for e in entries("&action=create")] or [0])
    r = im("POST", "/v1/integrations", body)
    assert r.status == 422, r
    refused = wait_until("the refused create's entry", lambda: [
        e for e in entries("&action=create") if e["id"] > newest and
        e["outcome"] == "failure" and e["integration_id"] is None and
        e["status_code"] == 422], timeout_s=10)
    assert refused[0]["actor"], refused[0]

    org.create_integration()
    iid = org.integration_id
    org.wait_scan_done()

    assert im("PATCH", f"/v1/integrations/{iid}", {"name": "audited"}).status == 200
    assert im("PATCH", f"/v1/integrations/{iid}", {"scan_interval_s": 5}).status == 422
    assert im("PATCH", f"/v1/integrations/{iid}",
              {"credentials": {"token": canary}}).status == 422
    assert im("POST", f"/v1/integrations/{iid}/scans").status in (201, 202)
    assert im("POST", f"/v1/integrations/{iid}/pause").status == 200
    assert im("POST", f"/v1/integrations/{iid}/scans").status == 409
    assert im("POST", f"/v1/integrations/{iid}/resume").status == 200
    assert im("POST", f"/v1/integrations/{iid}/reauthorize",
              {"credentials": {"token": org.token}}).status == 200
    assert im("POST", f"/v1/integrations/{iid}/reauthorize",
              {"credentials": {"token": canary}}).status == 422
    # Let the scan the reauthorization queued finish: a result arriving after the delete is
    # another test's subject (test_delete.py).
    for sc in org.scans():
        org.wait_scan_done(sc["id"])
    scan_ids = [sc["id"] for sc in org.scans()]
    assert scan_ids
    assert im("DELETE", f"/v1/integrations/{iid}").status == 204
    # Everything of it went with it, in the one transaction of the delete.
    for table, column in [("integrations", "id"), ("scans", "integration_id"),
                          ("scan_outbox", "integration_id"), ("findings", "integration_id"),
                          ("finding_instances", "integration_id")]:
        assert psql_value(f"SELECT count(*) FROM {table} WHERE {column} = :'id'",
                          id=iid) == "0", table
    assert psql_value("SELECT count(*) FROM ingested_batches WHERE scan_id::text = ANY("
                      "string_to_array(:'ids', ','))", ids=",".join(scan_ids)) == "0"
    # Idempotent: the second delete answers 204 as well, and GET 404.
    assert im("DELETE", f"/v1/integrations/{iid}").status == 204
    assert im("GET", f"/v1/integrations/{iid}").status == 404
    org.integration_id = None

    items = of(iid)  # entries outlive the integration
    for e in items:
        assert e["integration_id"] == iid, e
        assert e["actor"] == "bootstrap", e
        assert e["at"], e
        assert (e["outcome"] == "success") == (e["status_code"] < 400), e

    created = only(items, "create", "success")[0]
    assert created["status_code"] == 201
    updates = only(items, "update", "success")
    assert updates[0]["details"]["changed"] == ["name"], updates
    failed_updates = only(items, "update", "failure")
    assert {e["status_code"] for e in failed_updates} == {422}
    assert any("scan_interval_s" in e["details"]["error"] for e in failed_updates), failed_updates
    only(items, "scan_now", "success")
    assert only(items, "scan_now", "failure")[0]["status_code"] == 409
    only(items, "pause", "success")
    only(items, "resume", "success")
    reauth = only(items, "reauthorize", "success")[0]
    assert reauth["details"]["changed"] == ["credentials"], reauth
    assert only(items, "reauthorize", "failure")[0]["status_code"] == 422
    deletes = only(items, "delete", "success")
    assert sorted(e["details"]["existed"] for e in deletes) == [False, True], deletes

    # Newest first.
    assert [e["id"] for e in items] == sorted((e["id"] for e in items), reverse=True)
    assert items[0]["action"] == "delete" and items[-1]["action"] == "create", items

    # No secret in any entry: neither the refused canary nor the real token.
    text = json.dumps(items) + json.dumps(refused)
    assert canary not in text
    assert org.token not in text
    assert psql_value("SELECT count(*) FROM audit_log WHERE details::text LIKE '%' || :'t' || '%' "
                      "OR details::text LIKE '%' || :'c' || '%'",
                      t=org.token, c=canary) == "0"


def test_unknown_integration_refusals_are_recorded():
    ghost = str(uuid.uuid4())
    assert im("POST", f"/v1/integrations/{ghost}/pause").status == 404
    assert im("PATCH", f"/v1/integrations/{ghost}", {"name": "x"}).status == 404
    items = of(ghost)
    assert {(e["action"], e["outcome"], e["status_code"]) for e in items} == {
        ("pause", "failure", 404), ("update", "failure", 404)}, items


def test_filters_and_paging(org):
    for _ in range(3):
        assert im("POST", f"/v1/integrations/{org.integration_id}/pause").status == 200
    pauses = entries(f"&integration_id={org.integration_id}&action=pause")
    assert len(pauses) == 3 and all(e["action"] == "pause" for e in pauses), pauses
    # The first pause changed the state, the others did not.
    assert [e["details"]["state_changed"] for e in pauses] == [False, False, True], pauses

    r = im("GET", f"/v1/audit-log?integration_id={org.integration_id}&limit=1")
    assert r.status == 200 and len(r.body["entries"]) == 1 and r.body["next_cursor"], r
    seen = [r.body["entries"][0]["id"]]
    r2 = im("GET", f"/v1/audit-log?integration_id={org.integration_id}&limit=1"
                   f"&cursor={r.body['next_cursor']}")
    assert r2.status == 200 and r2.body["entries"][0]["id"] < seen[0], r2

    for query, param in [("action=explode", "action"), ("integration_id=42", "integration_id"),
                         ("cursor=abc", "cursor"), ("limit=0", "limit"), ("who=me", "who")]:
        r = im("GET", "/v1/audit-log?" + query)
        assert r.status == 400 and r.body.get("parameter") == param, (query, r)


def test_a_refused_body_is_recorded_with_the_status_it_got(org):
    import urllib.error
    import urllib.request

    url = f"{cfg('CASB_INTEGRATIONS_URL')}/v1/integrations/{org.integration_id}"
    req = urllib.request.Request(url, data=b'{"name": "x"}', method="PATCH", headers={
        "Authorization": "Bearer " + cfg("CASB_TOKEN"), "Content-Type": "text/plain"})
    try:
        urllib.request.urlopen(req, timeout=30)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    assert status == 415
    # A refusal is recorded just after its answer went out.
    refused = wait_until("the refusal's audit entry", lambda: [
        e for e in of(org.integration_id) if e["action"] == "update" and
        e["outcome"] == "failure"], timeout_s=10)
    assert refused[0]["status_code"] == 415, refused
    assert im("GET", f"/v1/integrations/{org.integration_id}").body["name"] == org.login
