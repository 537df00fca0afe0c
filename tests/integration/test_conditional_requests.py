"""Conditional requests on rescans: the scanner-worker keeps each GitHub page's ETag and body
(provider_page_cache), a rescan sends If-None-Match, and the pages answered 304 Not Modified
(which GitHub does not count against the rate limit) are evaluated from the stored body, so
the rescan finds exactly what the first scan found. A changed page is fetched again."""

from conftest import (describe, expected_counts, im, psql_value, sim)


def cached_pages(integration_id):
    return int(psql_value("SELECT count(*) FROM provider_page_cache"
                          " WHERE integration_id = :'id'", id=integration_id))


def test_rescan_sends_if_none_match_and_finds_the_same(org):
    first = org.active_counts()
    assert first == expected_counts(org.expected)
    pages = cached_pages(org.integration_id)
    assert pages > 0

    # A patch of rate_limit restarts the budget: rate_limit_used then counts the rescan's.
    assert sim("PATCH", f"/_sim/orgs/{org.login}", {"rate_limit": {"limit": 5000}}).status == 200
    assert sim("POST", f"/_sim/orgs/{org.login}/stats/reset").status == 204
    second = org.rescan()
    assert second["status"] == "succeeded", describe(second)
    stats = sim("GET", f"/_sim/orgs/{org.login}/stats").body
    # Every stored page was asked for conditionally and had not changed; what is not stored
    # (the 404 "Branch not protected" of the unprotected repositories) was asked as before.
    assert stats["not_modified"] == pages, stats
    assert stats["rate_limit_used"] == stats["requests"] - pages, stats
    assert org.active_counts() == first
    assert cached_pages(org.integration_id) == pages

    # A changed page answers 200 and is evaluated: bob enables 2FA.
    members = [dict(m) for m in org.tenant["members"]]
    for m in members:
        if m["login"] == f"{org.login}-bob":
            m["two_factor"] = True
    assert sim("PATCH", f"/_sim/orgs/{org.login}", {"members": members}).status == 200
    sim("POST", f"/_sim/orgs/{org.login}/stats/reset")
    third = org.rescan()
    assert third["status"] == "succeeded", describe(third)
    stats = sim("GET", f"/_sim/orgs/{org.login}/stats").body
    assert 0 < stats["not_modified"] < pages, stats
    want = dict(first)
    want["github.org.member_2fa_disabled"] -= 1
    assert org.active_counts() == want


def test_page_cache_deleted_with_the_integration(org):
    assert cached_pages(org.integration_id) > 0
    r = im("DELETE", f"/v1/integrations/{org.integration_id}")
    assert r.status in (202, 204), r
    assert cached_pages(org.integration_id) == 0
