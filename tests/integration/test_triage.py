"""Triage and the timeline through findings-api against the real stack: ignoring a finding
keeps it scanned and counted apart and loses no instance; a hidden instance stays hidden when
it recurs; a tuned severity survives scans until reset; every transition (detected, resolved,
reopened, ignored, hidden, severity changed) is on the finding's history with who or which
scan caused it; the trend follows the scans; list, instance listing, summary and trend counts
agree; bad input is refused and changes nothing."""

import json
import uuid

from conftest import GOOD_PROTECTION, describe, fa, list_all, sim

UNPROTECTED = "github.repo.default_branch_unprotected"
STALE = "github.repo.stale"


def finding(org, type_id):
    return org.findings()[type_id]


def active(org, finding_id):
    return [i for i in org.instances(finding_id) if i["state"] == "active"]


def history(finding_id):
    return list_all(fa, f"/v1/findings/{finding_id}/history?limit=200", "events")


def events_of(finding_id, kind):
    return [e for e in history(finding_id) if e["event"] == kind]


def summary_instances(org):
    s = fa("GET", "/v1/summary").body
    return next(i["instances"] for i in s["by_integration"]
                if i["integration_id"] == org.integration_id)


def assert_counts_agree(org):
    """Each finding's instance_count is its active instances; the summary's count for the
    integration is the sum over its findings that are not ignored."""
    total = 0
    for f in org.findings().values():
        assert f["instance_count"] == len(active(org, f["id"])), f
        if f["status"] == "active":
            total += f["instance_count"]
    assert summary_instances(org) == total


def today_in_trend(org):
    """Today's trend counts of the integration, by severity."""
    day = fa("GET", f"/v1/trend?integration_id={org.integration_id}&days=1").body["days"][-1]
    return {k: day[k] for k in ("critical", "high", "medium", "low")}


def test_ignore_keeps_scanning_and_loses_nothing(org):
    f = finding(org, UNPROTECTED)
    before = {i["id"] for i in active(org, f["id"])}
    assert len(before) == 2
    summary_before = summary_instances(org)
    trend_before = today_in_trend(org)

    r = fa("POST", f"/v1/findings/{f['id']}/ignore")
    assert r.status == 200 and r.body["status"] == "ignored", r
    assert r.body["instance_count"] == 2
    # The trend shows the day as the triage left it, without waiting for a scan.
    trend_ignored = dict(trend_before)
    trend_ignored[f["severity"]] -= 2
    assert today_in_trend(org) == trend_ignored
    ignored = list_all(fa, f"/v1/findings?integration_id={org.integration_id}&status=ignored",
                       "findings")
    assert [x["id"] for x in ignored] == [f["id"]]
    assert summary_instances(org) == summary_before - 2

    # Still scanned and counted: a rescan keeps it ignored with its instances.
    again = org.rescan()
    assert again["status"] == "succeeded", describe(again)
    f2 = finding(org, UNPROTECTED)
    assert f2["status"] == "ignored" and f2["instance_count"] == 2
    assert {i["id"] for i in active(org, f["id"])} == before
    assert_counts_agree(org)

    # Idempotent: ignoring again changes nothing and records nothing more.
    assert fa("POST", f"/v1/findings/{f['id']}/ignore").status == 200
    assert len(events_of(f["id"], "ignored")) == 1
    r = fa("POST", f"/v1/findings/{f['id']}/unignore")
    assert r.status == 200 and r.body["status"] == "active"
    assert summary_instances(org) == summary_before
    assert today_in_trend(org) == trend_before
    ev = events_of(f["id"], "ignored")[0]
    assert ev["actor"] == "bootstrap" and ev["scan_id"] is None


def test_hidden_instances_stay_hidden_and_bulk_actions(org):
    f = finding(org, UNPROTECTED)
    inst = sorted(active(org, f["id"]), key=lambda i: i["asset"]["id"])
    r = fa("POST", f"/v1/instances/{inst[0]['id']}/hide")
    assert r.status == 200 and r.body["state"] == "hidden", r
    assert finding(org, UNPROTECTED)["instance_count"] == 1
    assert fa("GET", f"/v1/instances/{inst[0]['id']}").body["state"] == "hidden"

    # The asset is still unprotected: the next scan sees it, and it stays hidden.
    again = org.rescan()
    assert again["status"] == "succeeded", describe(again)
    assert fa("GET", f"/v1/instances/{inst[0]['id']}").body["state"] == "hidden"
    assert finding(org, UNPROTECTED)["instance_count"] == 1
    assert_counts_agree(org)

    # Bulk: ids of another account or none are counted, not named; nothing else changes.
    stranger = str(uuid.uuid4())
    r = fa("POST", "/v1/instances/hide",
           {"ids": [inst[0]["id"], inst[1]["id"], stranger, inst[1]["id"]]})
    assert r.status == 200 and r.body == {"changed": 1, "not_found": 1}, r
    assert finding(org, UNPROTECTED)["instance_count"] == 0
    r = fa("POST", "/v1/instances/unhide", {"ids": [i["id"] for i in inst]})
    assert r.status == 200 and r.body == {"changed": 2, "not_found": 0}, r
    assert finding(org, UNPROTECTED)["instance_count"] == 2
    assert_counts_agree(org)
    assert len(events_of(f["id"], "hidden")) == 2
    assert len(events_of(f["id"], "unhidden")) == 2

    findings = [x["id"] for x in org.findings().values()][:3]
    r = fa("POST", "/v1/findings/ignore", {"ids": findings})
    assert r.status == 200 and r.body["changed"] == len(findings), r
    r = fa("POST", "/v1/findings/unignore", {"ids": findings})
    assert r.status == 200 and r.body["changed"] == len(findings), r


def test_tuned_severity_survives_scans_until_reset(org):
    f = finding(org, STALE)
    default = f["severity"]
    assert f["default_severity"] == default and f["severity_tuned"] is False
    tuned = "critical" if default != "critical" else "low"
    trend_before = today_in_trend(org)
    r = fa("PUT", f"/v1/findings/{f['id']}/severity", {"severity": tuned})
    assert r.status == 200 and r.body["severity"] == tuned and r.body["severity_tuned"], r
    moved = dict(trend_before)
    moved[default] -= f["instance_count"]
    moved[tuned] += f["instance_count"]
    assert today_in_trend(org) == moved
    again = org.rescan()
    assert again["status"] == "succeeded", describe(again)
    assert finding(org, STALE)["severity"] == tuned
    r = fa("DELETE", f"/v1/findings/{f['id']}/severity")
    assert r.status == 200 and r.body["severity"] == default, r
    assert r.body["severity_tuned"] is False
    changed = events_of(f["id"], "severity_changed")
    assert changed and changed[0]["details"] == {"from": default, "to": tuned}, changed
    reset = events_of(f["id"], "severity_reset")
    assert reset and reset[0]["details"] == {"from": tuned, "to": default}, reset


def test_timeline_and_trend_follow_the_scans(org):
    f = finding(org, UNPROTECTED)
    detected = events_of(f["id"], "detected")
    assert len(detected) == 2 and all(e["scan_id"] and e["actor"] is None for e in detected)
    assert {e["asset_name"] for e in detected} == {f"{org.login}/billing", f"{org.login}/infra"}

    # Fixed in the SaaS: resolved by the next scan; broken again: reopened by the one after.
    assert sim("PATCH", f"/_sim/orgs/{org.login}/repos/billing",
               {"branch_protection": GOOD_PROTECTION}).status == 200
    fixed = org.rescan()
    assert fixed["status"] == "succeeded", describe(fixed)
    resolved = events_of(f["id"], "resolved")
    assert len(resolved) == 1 and resolved[0]["scan_id"] == fixed["id"], resolved
    trend = fa("GET", f"/v1/trend?integration_id={org.integration_id}&days=7").body["days"]
    assert len(trend) == 7
    today = trend[-1]
    by_severity = {}
    for x in org.findings().values():
        if x["status"] == "active":
            by_severity[x["severity"]] = by_severity.get(x["severity"], 0) + x["instance_count"]
    assert {k: today[k] for k in ("critical", "high", "medium", "low")} == {
        k: by_severity.get(k, 0) for k in ("critical", "high", "medium", "low")}

    assert sim("PATCH", f"/_sim/orgs/{org.login}/repos/billing",
               {"branch_protection": None}).status == 200
    broken = org.rescan()
    assert broken["status"] == "succeeded", describe(broken)
    reopened = events_of(f["id"], "reopened")
    assert len(reopened) == 1 and reopened[0]["scan_id"] == broken["id"], reopened
    assert finding(org, UNPROTECTED)["instance_count"] == 2
    later = fa("GET", f"/v1/trend?integration_id={org.integration_id}&days=7").body["days"][-1]
    assert sum(later[k] for k in ("critical", "high", "medium", "low")) == \
        sum(today[k] for k in ("critical", "high", "medium", "low")) + 1

    # Newest first, paged with a cursor.
    page = fa("GET", f"/v1/findings/{f['id']}/history?limit=2")
    assert page.status == 200 and len(page.body["events"]) == 2 and page.body["next_cursor"]
    assert page.body["events"][0]["event"] == "reopened"
    rest = fa("GET", f"/v1/findings/{f['id']}/history?limit=200&cursor="
              f"{page.body['next_cursor']}").body["events"]
    assert [e["id"] for e in page.body["events"] + rest] == [e["id"] for e in history(f["id"])]
    assert_counts_agree(org)


def test_bad_triage_input_changes_nothing(org):
    f = finding(org, STALE)
    assert fa("PUT", f"/v1/findings/{f['id']}/severity", {"severity": "urgent"}).status == 422
    assert fa("PUT", f"/v1/findings/{f['id']}/severity",
              {"severity": "low", "extra": 1}).status == 422
    for body in ({"ids": []}, {"ids": ["not-a-uuid"]}, {"ids": "x"}, {"ids": [str(uuid.uuid4())],
                                                                      "more": 1}):
        r = fa("POST", "/v1/instances/hide", body)
        assert r.status == 422 and r.body.get("field") == "ids", (body, r)
    # Found by tests/apifuzz: an unknown member's name cut inside a UTF-8 sequence lost the
    # answer its detail.
    r = fa("POST", "/v1/instances/hide", {"a" + "\U0001d47b" * 20: 1})
    assert r.status == 422 and "unknown field" in r.body.get("detail", ""), r
    assert fa("POST", f"/v1/instances/{uuid.uuid4()}/hide").status == 404
    assert fa("POST", "/v1/instances/not-a-uuid/hide").status == 404
    assert fa("POST", f"/v1/findings/{uuid.uuid4()}/ignore").status == 404
    assert fa("GET", f"/v1/findings/{f['id']}/history?cursor=bogus").status == 400
    assert fa("GET", "/v1/trend?days=0").status == 400
    assert fa("GET", "/v1/trend?integration_id=x").status == 400
    assert fa("GET", "/v1/trend?surprise=1").status == 400
    g = finding(org, STALE)
    assert (g["severity"], g["status"], g["instance_count"]) == \
        (f["severity"], f["status"], f["instance_count"])
    assert not events_of(f["id"], "severity_changed")


def test_text_search_in_titles_and_asset_names(org):
    def found(q, extra=""):
        return {x["finding_type"]["id"] if isinstance(x["finding_type"], dict)
                else x["finding_type"] for x in list_all(
                    fa, f"/v1/findings?integration_id={org.integration_id}&q={q}{extra}",
                    "findings")}

    # A title: case does not matter.
    assert found("NOT%20UPDATED") == {STALE}
    # An asset name: only the findings with an instance on that asset.
    billing = found(f"{org.login}/bill")
    assert UNPROTECTED in billing and STALE not in billing
    # The pattern's own characters match literally.
    assert found("%25") == set() and found("_") == set()
    assert fa("GET", "/v1/findings?q=" + "x" * 101).status == 400
    # The instance export keeps the instances that match, with the same filter.
    r = fa("GET", f"/v1/instances/export?format=jsonl&integration_id={org.integration_id}"
                  f"&q={org.login}/billing")
    assert r.status == 200, r
    names = {json.loads(line)["asset_name"] for line in r.raw.splitlines() if line}
    assert names == {f"{org.login}/billing"}, names


def test_sorts_page_through_the_same_findings(org):
    base = f"/v1/findings?integration_id={org.integration_id}"
    everything = list_all(fa, base + "&limit=200", "findings")
    assert everything and "remediation" in everything[0], everything[0]
    for sort in ("instance_count", "last_seen"):
        paged = list_all(fa, base + f"&sort={sort}&limit=2", "findings")
        assert sorted(x["id"] for x in paged) == sorted(x["id"] for x in everything)
        if sort == "instance_count":
            counts = [x["instance_count"] for x in paged]
            assert counts == sorted(counts, reverse=True), counts
        else:
            seen = [x["last_seen_at"] for x in paged]
            assert seen == sorted(seen, reverse=True), seen
    first = fa("GET", base + "&sort=instance_count&limit=1").body["next_cursor"]
    r = fa("GET", base + f"&sort=last_seen&cursor={first}")
    assert r.status == 400 and r.body.get("parameter") == "cursor", r
    assert fa("GET", base + "&sort=newest").status == 400


def test_instances_across_findings_with_the_same_filters(org):
    base = f"/v1/instances?integration_id={org.integration_id}"
    findings = org.findings().values()
    active_total = sum(f["instance_count"] for f in findings)
    paged = list_all(fa, base + "&limit=3", "instances")
    assert len(paged) == active_total == len({i["id"] for i in paged})
    assert all(i["state"] == "active" and i["finding_type"] and i["severity"] for i in paged)
    high = list_all(fa, base + "&severity=high&limit=200", "instances")
    assert len(high) == sum(f["instance_count"] for f in findings if f["severity"] == "high")
    assert {i["severity"] for i in high} == {"high"}
    billing = list_all(fa, base + f"&q={org.login}/billing&state=all", "instances")
    assert {i["asset"]["name"] for i in billing} == {f"{org.login}/billing"}, billing
    assert fa("GET", base + "&cursor=bogus").status == 400
    assert fa("GET", base + "&state=gone").status == 400
    assert fa("GET", base + "&include_resolved=true").status == 400
