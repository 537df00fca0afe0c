"""Delete removes the integration, its sealed credentials, its scans and its findings."""

from conftest import fa, im, kafka_dump, psql_value, wait_until
import json


def test_delete_removes_integration_credentials_and_findings(org):
    iid = org.integration_id
    assert org.findings(), "the first scan found nothing to delete"
    assert psql_value("SELECT count(*) FROM finding_instances WHERE integration_id = :'id'",
                      id=iid) != "0"

    r = im("DELETE", f"/v1/integrations/{iid}")
    assert r.status in (200, 204), r

    assert im("GET", f"/v1/integrations/{iid}").status == 404
    assert im("POST", f"/v1/integrations/{iid}/scans").status == 404
    # Delete is idempotent: a second one changes nothing and reveals nothing.
    assert im("DELETE", f"/v1/integrations/{iid}").status == 204
    listed = im("GET", "/v1/integrations?limit=100")
    assert iid not in {i["id"] for i in listed.body["integrations"]}

    for table in ("integrations WHERE id", "findings WHERE integration_id",
                  "finding_instances WHERE integration_id", "scans WHERE integration_id",
                  "scan_outbox WHERE integration_id"):
        assert psql_value(f"SELECT count(*) FROM {table} = :'id'", id=iid) == "0", table

    r = fa("GET", f"/v1/findings?integration_id={iid}&include_resolved=true")
    assert r.status == 404 or (r.status == 200 and r.body["findings"] == []), r

    def deleted_event():
        for line in kafka_dump("casb.integration.events").splitlines():
            _, _, value = line.partition("\t")
            try:
                msg = json.loads(value)
            except ValueError:
                continue
            if msg.get("integration_id") == iid and msg.get("event") == "deleted":
                return msg
        return None
    msg = wait_until("the deleted event on casb.integration.events", deleted_event, 20, 1)
    assert msg["schema"] == "casb.integration.event/v1"
    org.integration_id = None


def test_delete_of_a_path_that_is_no_uuid_answers_404_like_get():
    # Found by tests/apifuzz: DELETE answered 204 ("deleted") for ids such as "null,null".
    # Path ids are UUIDs only; anything else names nothing, for DELETE as for GET.
    for bad in ("null%2Cnull", "not-a-uuid", "0e266814-eff5-45ed-a7e6-6438b1d658b", "%00"):
        r = im("DELETE", f"/v1/integrations/{bad}")
        assert r.status == 404, (bad, r)
        assert im("GET", f"/v1/integrations/{bad}").status == 404, bad
