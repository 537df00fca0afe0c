"""Exports of findings and instances (GET /v1/findings/export, GET /v1/instances/export):
every format parses, holds exactly the rows the paginated lists hold for the same filters,
refuses bad queries like the lists, and a spreadsheet formula planted by the SaaS tenant in
an asset name comes out defused in CSV."""

import csv
import io
import json
import urllib.parse

from conftest import cfg, fa, http, list_all, sim

FINDING_COLUMNS = ["id", "integration_id", "integration_name", "provider", "finding_type",
                   "title", "severity", "status", "instance_count", "first_seen_at",
                   "last_seen_at"]
INSTANCE_COLUMNS = ["id", "finding_id", "integration_id", "integration_name", "provider",
                    "finding_type", "title", "severity", "finding_status", "state",
                    "asset_kind", "asset_id", "asset_name", "asset_url", "first_seen_at",
                    "last_seen_at", "resolved_at", "last_scan_id", "details"]
OCSF_SEVERITY = {"low": 2, "medium": 3, "high": 4, "critical": 5}


def export(what, **query):
    q = urllib.parse.urlencode(query)
    return http("GET", f"{cfg('CASB_FINDINGS_URL')}/v1/{what}/export" + (f"?{q}" if q else ""),
                token=cfg("CASB_TOKEN"), timeout=120)


def rows_csv(r):
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("text/csv"), r.headers
    reader = csv.reader(io.StringIO(r.raw, newline=""))
    table = list(reader)
    return table[0], [dict(zip(table[0], row)) for row in table[1:]]


def rows_jsonl(r, content_type):
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith(content_type), r.headers
    lines = r.raw.split("\n")
    assert lines[-1] == "", "a JSON Lines body ends with a newline"
    return [json.loads(line) for line in lines[:-1]]


def finding_list(integration_id, **filters):
    q = urllib.parse.urlencode(dict(integration_id=integration_id, limit=100, **filters))
    return list_all(fa, f"/v1/findings?{q}", "findings")


def instance_list(org, state="all", **filters):
    out = []
    for f in finding_list(org.integration_id, include_resolved="true", **filters):
        out.extend(org.instances(f["id"], state))
    return out


def test_findings_export_formats_match_the_list(org):
    listed = finding_list(org.integration_id)
    assert listed, "the scanned org has findings"
    header, rows = rows_csv(export("findings", integration_id=org.integration_id))
    assert header == FINDING_COLUMNS
    assert [r["id"] for r in rows] == [f["id"] for f in listed], "same rows, same order"
    by_id = {f["id"]: f for f in listed}
    for row in rows:
        f = by_id[row["id"]]
        assert row["integration_id"] == org.integration_id
        assert row["finding_type"] == f["finding_type"]["id"]
        assert row["title"] == f["finding_type"]["title"]
        assert row["severity"] == f["severity"]
        assert int(row["instance_count"]) == f["instance_count"]
        assert row["first_seen_at"] == f["first_seen_at"]

    r = export("findings", integration_id=org.integration_id, format="jsonl")
    items = rows_jsonl(r, "application/x-ndjson")
    assert [i["id"] for i in items] == [f["id"] for f in listed]
    assert set(items[0]) == set(FINDING_COLUMNS)
    assert all(isinstance(i["instance_count"], int) for i in items)
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="casb-findings-'), disposition
    assert disposition.endswith('.jsonl"'), disposition

    events = rows_jsonl(export("findings", integration_id=org.integration_id, format="ocsf"),
                        "application/json")
    assert [e["finding_info"]["uid"] for e in events] == [f["id"] for f in listed]
    for e in events:
        f = by_id[e["finding_info"]["uid"]]
        assert e["class_uid"] == 2004 and e["category_uid"] == 2 and e["type_uid"] == 200401
        assert e["severity_id"] == OCSF_SEVERITY[f["severity"]]
        assert e["status_id"] == 1 and e["status"] == "New"
        assert e["finding_info"]["types"] == [f["finding_type"]["id"]]
        assert e["metadata"]["version"] == "1.1.0"
        assert e["metadata"]["product"]["name"] == "CASB"
        assert e["cloud"]["provider"] == "github"
        assert e["unmapped"]["integration_id"] == org.integration_id
        assert isinstance(e["time"], int) and e["time"] > 1_600_000_000_000


def test_findings_export_filters(org):
    for filters in ({"severity": "high"}, {"finding_type": "github.org.member_2fa_disabled"},
                    {"category": "misconfiguration"}, {"status": "ignored"},
                    {"include_resolved": "true"}, {"provider": "github"}):
        listed = finding_list(org.integration_id, **filters)
        _, rows = rows_csv(export("findings", integration_id=org.integration_id, **filters))
        assert sorted(r["id"] for r in rows) == sorted(f["id"] for f in listed), filters
    _, rows = rows_csv(export("findings", integration_id=org.integration_id,
                              finding_type="github.org.member_2fa_disabled"))
    assert len(rows) == 1 and rows[0]["instance_count"] == "2"


def test_instances_export_formats_match_the_lists(org):
    for state in ("all", "active", "resolved", "hidden"):
        listed = instance_list(org, state)
        query = {"integration_id": org.integration_id}
        if state != "all":
            query["state"] = state
        header, rows = rows_csv(export("instances", **query))
        assert header == INSTANCE_COLUMNS
        assert sorted(r["id"] for r in rows) == sorted(i["id"] for i in listed), state
    listed = {i["id"]: i for i in instance_list(org)}
    expected_assets = set().union(*org.expected.values())
    _, rows = rows_csv(export("instances", integration_id=org.integration_id))
    assert {r["asset_id"] for r in rows} == {i["asset"]["id"] for i in listed.values()}
    assert expected_assets <= {r["asset_id"] for r in rows}
    for row in rows:
        i = listed[row["id"]]
        assert row["finding_id"] == i["finding_id"]
        assert row["asset_name"] == i["asset"]["name"]
        assert row["state"] == i["state"]
        assert json.loads(row["details"]) == i["details"]

    items = rows_jsonl(export("instances", integration_id=org.integration_id, format="jsonl"),
                       "application/x-ndjson")
    assert sorted(x["id"] for x in items) == sorted(listed)
    assert set(items[0]) == set(INSTANCE_COLUMNS)
    assert all(isinstance(x["details"], dict) for x in items)

    events = rows_jsonl(export("instances", integration_id=org.integration_id, format="ocsf"),
                        "application/json")
    assert sorted(e["finding_info"]["uid"] for e in events) == sorted(listed)
    for e in events:
        i = listed[e["finding_info"]["uid"]]
        assert e["class_uid"] == 2004 and e["type_uid"] == 200401
        assert e["resources"] == [{"uid": i["asset"]["id"], "name": i["asset"]["name"],
                                   "type": i["asset"]["kind"]}]
        assert e["remediation"]["desc"], "remediation steps come from the catalogue"
        assert e["finding_info"]["title"] and e["finding_info"]["desc"]
        assert e["unmapped"]["details"] == i["details"]
        assert e["unmapped"]["finding_id"] == i["finding_id"]


def test_instances_export_filters(org):
    for filters in ({"severity": "medium"}, {"finding_type": "github.repo.stale"},
                    {"category": "user_activity"}, {"status": "active"}):
        listed = instance_list(org, "all", **filters)
        _, rows = rows_csv(export("instances", integration_id=org.integration_id, **filters))
        assert sorted(r["id"] for r in rows) == sorted(i["id"] for i in listed), filters
    _, rows = rows_csv(export("instances", integration_id=org.integration_id,
                              finding_type="github.org.member_2fa_disabled"))
    assert {r["asset_id"] for r in rows} == org.expected["github.org.member_2fa_disabled"]


def test_resolved_instances_are_exported_with_their_state(org):
    # bob turns two-factor on: his instance is resolved by the next scan.
    members = [dict(m) for m in org.tenant["members"]]
    for m in members:
        if m["login"] == f"{org.login}-bob":
            m["two_factor"] = True
    r = sim("PATCH", f"/_sim/orgs/{org.login}", {"members": members})
    assert r.status == 200, r
    assert org.rescan()["status"] == "succeeded"
    _, rows = rows_csv(export("instances", integration_id=org.integration_id,
                              state="resolved"))
    assert [r["asset_id"] for r in rows] == [f"{org.login}-bob"]
    assert rows[0]["resolved_at"]
    events = rows_jsonl(export("instances", integration_id=org.integration_id,
                               state="resolved", format="ocsf"), "application/json")
    assert [(e["status_id"], e["status"]) for e in events] == [(4, "Resolved")]


def test_csv_defuses_formulas_from_the_tenant(org):
    # A deploy key's title is chosen by whoever can add keys to the repository; it becomes
    # the start of the asset name ("<title> (deploy key of <repo>)").
    formula = '=HYPERLINK("http://evil.example/x","click, me")'
    repo = next(x for x in org.tenant["repos"] if x["name"] == "infra")
    key = dict(repo["deploy_keys"][0], id=repo["deploy_keys"][0]["id"] + 1, title=formula)
    r = sim("PATCH", f"/_sim/orgs/{org.login}/repos/infra", {"deploy_keys": [key]})
    assert r.status == 200, r
    assert org.rescan()["status"] == "succeeded"

    query = {"integration_id": org.integration_id, "finding_type": "github.repo.deploy_key_write",
             "state": "active"}
    _, rows = rows_csv(export("instances", **query))
    assert len(rows) == 1, rows
    assert rows[0]["asset_name"] == "'" + formula + f" (deploy key of {org.login}/infra)"
    # The raw body quotes the cell (comma and quotes inside) and doubles the quotes.
    raw = export("instances", **query).raw
    assert '"\'=HYPERLINK(""http://evil.example/x"",""click, me"")' in raw
    # JSON keeps the value as it is: defusing is a spreadsheet matter.
    items = rows_jsonl(export("instances", format="jsonl", **query), "application/x-ndjson")
    assert items[0]["asset_name"].startswith(formula)


def test_export_refuses_bad_queries():
    base = cfg("CASB_FINDINGS_URL")
    for what in ("findings", "instances"):
        r = http("GET", f"{base}/v1/{what}/export")
        assert r.status == 401, r
        r = export(what, integration="x")
        assert r.status == 400 and r.body["parameter"] == "integration", r
        r = export(what, format="xml")
        assert r.status == 400 and r.body["parameter"] == "format", r
        r = export(what, severity="urgent")
        assert r.status == 400 and r.body["parameter"] == "severity", r
        r = export(what, integration_id="not-a-uuid")
        assert r.status == 400 and r.body["parameter"] == "integration_id", r
        r = export(what, limit="10")
        assert r.status == 400 and r.body["parameter"] == "limit", r
    r = export("instances", state="gone")
    assert r.status == 400 and r.body["parameter"] == "state", r
    r = export("findings", state="active")
    assert r.status == 400 and r.body["parameter"] == "state", r


def test_export_of_nothing_is_a_header_only():
    unknown = "00000000-0000-4000-8000-000000000000"
    header, rows = rows_csv(export("instances", integration_id=unknown))
    assert header == INSTANCE_COLUMNS and rows == []
    assert rows_jsonl(export("findings", integration_id=unknown, format="jsonl"),
                      "application/x-ndjson") == []
