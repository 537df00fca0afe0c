"""The Google Workspace provider end to end, against the running stack and the simulator's
Google tenant (Directory, Drive, Calendar, Gmail, the OAuth token endpoint that verifies the
service account's JWT, and a DNS responder for SPF and DMARC records).

Each test builds its own tenant with its own service-account key pair and domains, so that
the expected findings are known exactly: every finding type fires on the assets built for it
and on no other, fixes resolve them, paging crosses many pages, quota errors change nothing,
an invalid key is refused on add, a revoked delegation asks for reauthorization, and DNS
records that are present, absent, malformed or unreadable are told apart."""

import copy
import json
import math
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import cfg, describe, fa, im, list_all, sim, type_id, wait_until

P = "google_workspace."
RECENT = "now-2d"
LONG_AGO = "now-60d"


def key_pair():
    """A service-account key as Google issues it (with this test's token_uri) and its public
    key for the simulator."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return pem, pub


def user(email, uid, **fields):
    u = {"id": uid, "primaryEmail": email, "name": {"fullName": email.split("@")[0].title()},
         "isAdmin": False, "isDelegatedAdmin": False, "isEnrolledIn2Sv": True,
         "isEnforcedIn2Sv": True, "suspended": False, "archived": False,
         "lastLoginTime": RECENT, "creationTime": "2021-01-01T00:00:00.000Z",
         "recoveryEmail": "backup@example.org", "recoveryPhone": "+15555550100",
         "isMailboxSetup": True, "tokens": [], "delegates": [], "calendar_acl": [],
         "files": []}
    u.update(fields)
    return u


def perm(ptype, role, email=None, domain=None, discoverable=None, pid=None):
    p = {"id": pid or uuid.uuid4().hex[:12], "type": ptype, "role": role}
    if email:
        p["emailAddress"] = email
    if domain:
        p["domain"] = domain
    if discoverable is not None:
        p["allowFileDiscovery"] = discoverable
    return p


def token(client_id, name, scopes, anonymous=False):
    return {"clientId": client_id, "displayText": name, "scopes": scopes,
            "anonymous": anonymous, "nativeApp": False, "kind": "admin#directory#token"}


class Tenant:
    """A simulated Google Workspace customer with its own key, domains and integration; the
    expected findings are {type id: set of asset ids}."""

    def __init__(self):
        tag = uuid.uuid4().hex[:8]
        self.customer = "C" + tag
        self.dom = f"acme-{tag}.test"          # primary, healthy DNS
        self.alias = f"alias-{tag}.test"       # SPF +all, DMARC p=none
        self.bare = f"bare-{tag}.test"         # no SPF, no DMARC
        self.sub = f"sub-{tag}.test"           # SPF ?all; DMARC sp=none, pct=50
        self.bad = f"bad-{tag}.test"           # malformed DMARC (p=bogus): not present
        self.ext = f"partner-{tag}.test"       # not the customer's
        self.admin = f"admin@{self.dom}"
        self.private_key, self.public_key = key_pair()
        self.client_email = f"casb-{tag}@proj.iam.gserviceaccount.com"
        self.integration_id = None
        self.doc = self.build()

    def key_file(self, private_key=None):
        return {"type": "service_account", "project_id": "proj",
                "private_key_id": uuid.uuid4().hex,
                "private_key": private_key or self.private_key,
                "client_email": self.client_email, "client_id": "1234567890",
                "token_uri": cfg("CASB_SIM_URL") + "/token"}

    def email(self, local):
        return f"{local}@{self.dom}"

    def build(self):
        d, e = self.dom, self.email
        self.files = {
            "f-pub-edit": [perm("anyone", "writer", discoverable=False)],
            "f-pub-view": [perm("anyone", "reader", discoverable=True)],
            "f-ext-edit": [perm("user", "writer", email=f"x@{self.ext}")],
            "f-ext-view": [perm("user", "commenter", email=f"y@{self.ext}")],
            "f-dom-edit": [perm("domain", "writer", domain=d)],
            "f-dom-view": [perm("domain", "reader", domain=d)],
            "f-internal": [perm("user", "writer", email=e("alice"))],
            "f-alias": [perm("user", "reader", email=f"z@{self.alias}")],  # alias: internal
        }
        owner = perm("user", "owner", email=e("dave"))
        files = [{"id": fid, "name": fid, "mimeType": "application/vnd.google-apps.document",
                  "permissions": [owner] + ps} for fid, ps in self.files.items()]
        drive_member = perm("user", "organizer", email=e("dave"), pid="pm-dave")
        users = [
            user(self.admin, "u-admin", isAdmin=True),
            user(e("admin2"), "u-admin2", isAdmin=True, isEnrolledIn2Sv=False,
                 isEnforcedIn2Sv=False, isMailboxSetup=False),
            user(e("oldadmin"), "u-oldadmin", isAdmin=True, lastLoginTime=LONG_AGO,
                 isMailboxSetup=False),
            user(e("deleg"), "u-deleg", isDelegatedAdmin=True, suspended=True,
                 suspensionReason="ADMIN"),
            user(e("alice"), "u-alice", isEnrolledIn2Sv=False, isEnforcedIn2Sv=False,
                 recoveryEmail="", recoveryPhone=""),
            user(e("bob"), "u-bob", lastLoginTime=LONG_AGO),
            user(e("carol"), "u-carol", suspended=True, suspensionReason="ADMIN"),
            user(e("dave"), "u-dave", files=files,
                 delegates=[{"delegateEmail": e("erin"), "verificationStatus": "accepted"}],
                 calendar_acl=[{"id": "default", "role": "reader",
                                "scope": {"type": "default"}},
                               {"id": "user:" + e("dave"), "role": "owner",
                                "scope": {"type": "user", "value": e("dave")}}],
                 tokens=[
                     token("app-drive", "Drive App", ["https://www.googleapis.com/auth/drive.file"]),
                     token("app-gmail", "Mail App", ["https://www.googleapis.com/auth/gmail.readonly"]),
                     token("app-docs", "Docs App", ["https://www.googleapis.com/auth/documents"]),
                     token("app-cal", "Cal App", ["https://www.googleapis.com/auth/calendar"]),
                     token("app-slides", "Slides App", ["https://www.googleapis.com/auth/presentations"]),
                     token("app-sheets", "Sheets App", ["https://www.googleapis.com/auth/spreadsheets"]),
                     token("app-signin", "Sign In App", ["openid", "email", "profile"]),
                     token("app-shady", "Shady App", ["https://www.googleapis.com/auth/drive"],
                           anonymous=True),
                 ]),
            user(e("erin"), "u-erin",
                 delegates=[{"delegateEmail": e("dave"), "verificationStatus": "pending"}],
                 calendar_acl=[{"id": "domain:" + d, "role": "reader",
                                "scope": {"type": "domain", "value": d}}]),
        ]
        return {
            "kind": "google_workspace", "customer_id": self.customer, "admin_email": self.admin,
            "service_account": {"client_email": self.client_email,
                                "public_key_pem": self.public_key},
            "domains": [
                {"domainName": d, "verified": True, "isPrimary": True,
                 "domainAliases": [{"domainAliasName": self.alias, "verified": True}]},
                {"domainName": self.bare, "verified": True, "isPrimary": False},
                {"domainName": self.sub, "verified": True, "isPrimary": False},
                {"domainName": self.bad, "verified": True, "isPrimary": False},
                {"domainName": f"unverified-{d}", "verified": False, "isPrimary": False},
            ],
            "users": users,
            "shared_drives": [{
                "id": "sd-1", "name": "Projects",
                "permissions": [drive_member,
                                perm("user", "writer", email=f"w@{self.ext}", pid="pm-ext"),
                                perm("user", "reader", email=f"r@{self.ext}", pid="pm-extr")],
                "files": [{"id": "sd-f-pub", "name": "roadmap", "mimeType": "text/plain",
                           "permissions": [perm("anyone", "reader", discoverable=False)]},
                          {"id": "sd-f-plain", "name": "notes", "mimeType": "text/plain",
                           "permissions": []}]}],
            "dns": {
                d: ["v=spf1 include:_spf.google.com -all", "google-site-verification=x"],
                "_dmarc." + d: ["v=DMARC1; p=reject; rua=mailto:d@" + d],
                self.alias: ["v=spf1 +all"],
                "_dmarc." + self.alias: ["v=DMARC1; p=none"],
                self.bare: ["google-site-verification=y"],
                self.sub: ["v=spf1 ip4:192.0.2.0/24 ?all"],
                "_dmarc." + self.sub: ["v=DMARC1; p=reject; sp=none; pct=50"],
                self.bad: ["v=spf1 -all"],
                "_dmarc." + self.bad: ["v=DMARC1; p=bogus"],
            },
        }

    def clean(self):
        """The same tenant with every problem fixed: users enrolled in 2SV with recovery
        details and recent logins, none suspended, three super admins none of whom uses a
        mailbox, files and drives shared inside only, no app grants, no delegates, private
        calendars, strict SPF and DMARC on every domain."""
        doc = copy.deepcopy(self.doc)
        keep = {"u-admin", "u-admin2", "u-oldadmin", "u-alice", "u-dave", "u-erin"}
        users = []
        for u in doc["users"]:
            if u["id"] not in keep:
                continue
            u.update(isEnrolledIn2Sv=True, isEnforcedIn2Sv=True, suspended=False,
                     lastLoginTime=RECENT, recoveryEmail="r@example.org",
                     recoveryPhone="+15555550199", isMailboxSetup=not u.get("isAdmin"),
                     tokens=[], delegates=[], calendar_acl=[])
            for f in u.get("files", []):
                f["permissions"] = [p for p in f["permissions"]
                                    if p["type"] == "user" and p.get("role") == "owner"]
            users.append(u)
        doc["users"] = users
        for d in doc["shared_drives"]:
            d["permissions"] = [p for p in d["permissions"] if p["id"] == "pm-dave"]
            for f in d["files"]:
                f["permissions"] = []
        for dom in (self.dom, self.alias, self.bare, self.sub, self.bad):
            doc["dns"][dom] = ["v=spf1 include:_spf.google.com -all"]
            doc["dns"]["_dmarc." + dom] = ["v=DMARC1; p=reject"]
        return doc

    def resolved(self):
        """{type id: set of resolved instance asset ids} of this integration."""
        out = {}
        for f in list_all(fa, f"/v1/findings?integration_id={self.integration_id}"
                              "&include_resolved=true&limit=100", "findings"):
            ids = {i["asset"]["id"] for i in list_all(
                fa, f"/v1/findings/{f['id']}/instances?limit=200&state=resolved", "instances")}
            if ids:
                out[type_id(f)] = ids
        return out

    def expected(self):
        e = self.email
        return {
            P + "admin.two_step_disabled": {"u-admin2"},
            P + "user.two_step_disabled": {"u-alice"},
            P + "user.no_recovery_email": {"u-alice"},
            P + "user.no_recovery_phone": {"u-alice"},
            P + "admin.inactive": {"u-oldadmin"},
            P + "admin.suspended": {"u-deleg"},
            P + "user.inactive": {"u-bob"},
            P + "user.suspended": {"u-carol"},
            P + "file.public_edit": {"f-pub-edit"},
            P + "file.public_view": {"f-pub-view", "sd-f-pub"},
            P + "file.external_edit": {"f-ext-edit"},
            P + "file.external_view": {"f-ext-view"},
            P + "file.domain_edit": {"f-dom-edit"},
            P + "file.domain_view": {"f-dom-view"},
            P + "calendar.public": {e("dave")},
            P + "app.drive_access": {"app-drive", "app-shady"},
            P + "app.gmail_access": {"app-gmail"},
            P + "app.docs_access": {"app-docs"},
            P + "app.calendar_access": {"app-cal"},
            P + "app.slides_access": {"app-slides"},
            P + "app.sheets_access": {"app-sheets"},
            P + "app.sign_in_access": {"app-signin"},
            P + "user.delegates_email": {"u-dave"},
            P + "domain.spf_allows_any": {self.alias, self.sub},
            P + "domain.spf_missing": {self.bare},
            P + "domain.dmarc_missing": {self.bare, self.bad},
            P + "domain.dmarc_not_enforced": {self.alias},
            P + "domain.dmarc_subdomains_not_enforced": {self.sub, self.alias},
            P + "domain.dmarc_partial": {self.sub},
            P + "admin.super_admin_daily_use": {"u-admin"},
            P + "shared_drive.external_editor": {"sd-1"},
            P + "app.unverified_high_risk": {"app-shady"},
        }

    # --- simulator and integration

    def put(self):
        r = sim("PUT", f"/_sim/google/{self.customer}", self.doc)
        assert r.status in (200, 201), f"PUT /_sim/google/{self.customer}: {r}"

    def patch(self, patch):
        r = sim("PATCH", f"/_sim/google/{self.customer}", patch)
        assert r.status == 200, f"PATCH /_sim/google/{self.customer}: {r}"

    def body(self, key=None, **config):
        return {"provider": "google_workspace", "name": "gw-" + self.customer,
                "config": {"admin_email": self.admin, "customer_id": self.customer,
                           "api_base_url": cfg("CASB_SIM_URL"), **config},
                "auth_method": "service_account",
                "credentials": {"service_account_key": key or self.key_file()}}

    def create_integration(self, **config):
        r = im("POST", "/v1/integrations", self.body(**config))
        assert r.status == 201, f"POST /v1/integrations: {r}"
        self.integration_id = r.body["id"]
        return r

    def scans(self):
        r = im("GET", f"/v1/integrations/{self.integration_id}/scans")
        assert r.status == 200, r
        return r.body["scans"]

    def wait_scan(self, scan_id=None, timeout_s=120):
        def done():
            scans = self.scans()
            found = (next((s for s in scans if s["id"] == scan_id), None) if scan_id
                     else (min(scans, key=lambda s: s.get("queued_at") or "") if scans else None))
            return found if found and found["status"] in ("succeeded", "failed",
                                                          "cancelled") else None
        return wait_until(f"scan of {self.customer}", done, timeout_s)

    def rescan(self, timeout_s=120):
        r = wait_until("scan-now accepted", lambda: (lambda x: x if x.status in (201, 202)
                                                     else None)(
            im("POST", f"/v1/integrations/{self.integration_id}/scans")), 30, 1)
        sid = r.body.get("id") or (r.body.get("scan") or {}).get("id") or r.body.get("scan_id")
        return self.wait_scan(sid, timeout_s)

    def active(self):
        """{type id: set of active instance asset ids} of this integration."""
        out = {}
        for f in list_all(fa, f"/v1/findings?integration_id={self.integration_id}"
                              "&include_resolved=true&limit=100", "findings"):
            ids = {i["asset"]["id"] for i in list_all(
                fa, f"/v1/findings/{f['id']}/instances?limit=200&state=active", "instances")}
            if ids:
                out[type_id(f)] = ids
        return out

    def integration(self):
        r = im("GET", f"/v1/integrations/{self.integration_id}")
        assert r.status == 200, r
        return r.body

    def stats(self):
        r = sim("GET", f"/_sim/google/{self.customer}/stats")
        assert r.status == 200, r
        return r.body

    def cleanup(self):
        if self.integration_id:
            im("DELETE", f"/v1/integrations/{self.integration_id}")
        sim("DELETE", f"/_sim/google/{self.customer}/faults")
        sim("DELETE", f"/_sim/google/{self.customer}")


@pytest.fixture
def tenant():
    t = Tenant()
    try:
        t.put()
        yield t
    finally:
        t.cleanup()


def scanned(t, **config):
    t.create_integration(**config)
    first = t.wait_scan()
    assert first["status"] == "succeeded", describe(first)
    return first


def test_every_finding_type_fires_on_its_assets_only(tenant):
    first = scanned(tenant)
    assert tenant.active() == tenant.expected(), describe(first)
    ran = set(first["coverage"]["ran"])
    assert {P + t for t in ("tenant.too_many_super_admins",
                            "tenant.too_few_super_admins")} <= ran
    assert not first["coverage"]["skipped"], first["coverage"]


def test_fixes_resolve_every_type_and_super_admin_counts(tenant):
    scanned(tenant)
    doc = copy.deepcopy(tenant.doc)
    users = {u["id"]: u for u in doc["users"]}
    users["u-alice"].update(isEnrolledIn2Sv=True, recoveryEmail="a@example.org",
                            recoveryPhone="+15555550101")
    dave = users["u-dave"]
    dave["files"] = [f for f in dave["files"] if f["id"] not in ("f-pub-edit", "f-ext-edit")]
    dave["tokens"] = [t for t in dave["tokens"] if t["clientId"] != "app-shady"]
    dave["calendar_acl"] = [a for a in dave["calendar_acl"] if a["scope"]["type"] != "default"]
    doc["dns"][tenant.alias] = ["v=spf1 include:_spf.google.com -all"]
    # Two more super admins: five in all is too many.
    doc["users"] += [user(tenant.email("root4"), "u-root4", isAdmin=True, isMailboxSetup=False),
                     user(tenant.email("root5"), "u-root5", isAdmin=True, isMailboxSetup=False)]
    tenant.doc = doc
    tenant.put()
    second = tenant.rescan()
    assert second["status"] == "succeeded", describe(second)
    want = tenant.expected()
    for t in ("user.two_step_disabled", "user.no_recovery_email", "user.no_recovery_phone",
              "calendar.public", "app.unverified_high_risk"):
        want.pop(P + t)
    want[P + "file.public_edit"] = set()
    want[P + "file.external_edit"] = set()
    want[P + "app.drive_access"] = {"app-drive"}
    want[P + "domain.spf_allows_any"] = {tenant.sub}
    want[P + "tenant.too_many_super_admins"] = {tenant.customer}
    want = {k: v for k, v in want.items() if v}
    assert tenant.active() == want

    # Everything fixed: every type's instances resolve, the tenant-level one included.
    tenant.doc = tenant.clean()
    tenant.put()
    third = tenant.rescan()
    assert third["status"] == "succeeded", describe(third)
    assert tenant.active() == {}
    resolved = tenant.resolved()
    for t, assets in tenant.expected().items():
        assert assets <= resolved.get(t, set()), (t, assets, resolved.get(t))
    assert tenant.customer in resolved[P + "tenant.too_many_super_admins"]


def test_paging_across_many_pages(tenant):
    # 1,201 users (3 pages of 500), one with 2,500 files (3 pages of 1,000) of which every
    # 10th is public.
    doc = tenant.doc
    files = [{"id": f"bulk-{i}", "name": f"bulk {i}", "mimeType": "text/plain",
              "permissions": [perm("user", "owner", email=tenant.email("dave"))] +
              ([perm("anyone", "reader", discoverable=False)] if i % 10 == 0 else [])}
             for i in range(2500)]
    next(u for u in doc["users"] if u["id"] == "u-dave")["files"] += files
    base = len(doc["users"])
    doc["users"] += [user(tenant.email(f"bulk{i}"), f"u-bulk{i}", isEnrolledIn2Sv=(i % 7 != 0))
                     for i in range(1201 - base)]
    tenant.put()
    # The simulator answers at once: the pace is raised from Google's 40/s default.
    first = scanned(tenant, max_requests_per_second=1000)
    act = tenant.active()
    assert len(act[P + "file.public_view"]) == 2 + 250, describe(first)
    no2sv = {f"u-bulk{i}" for i in range(1201 - base) if i % 7 == 0} | {"u-alice"}
    assert act[P + "user.two_step_disabled"] == no2sv
    # No more requests than the page arithmetic needs (one users.list was the connection
    # check when the integration was added).
    by = tenant.stats()["by_endpoint"]
    assert by.get("GET /admin/directory/v1/users") == math.ceil(1201 / 500) + 1, by
    assert by.get("GET /admin/directory/v1/users/{userKey}/tokens") == 1201, by
    # Drive: one page per active user (two are suspended), two more for dave's 2,508 files,
    # one for the shared drive's files.
    assert by.get("GET /drive/v3/files") == (1201 - 2) + 2 + 1, by


def test_quota_errors_are_waited_out_and_change_nothing(tenant):
    scanned(tenant)
    before = tenant.active()
    r = sim("POST", f"/_sim/google/{tenant.customer}/faults", {"mode": "quota", "rate": 0.3})
    assert r.status in (200, 201), r
    again = tenant.rescan(timeout_s=240)
    assert again["status"] == "succeeded", describe(again)
    assert tenant.stats()["faults_injected"] > 0
    assert tenant.active() == before


def test_invalid_key_is_refused_on_add(tenant):
    other_pem, _ = key_pair()
    r = im("POST", "/v1/integrations", tenant.body(tenant.key_file(private_key=other_pem)))
    assert r.status == 422, r
    assert "Invalid JWT Signature" in r.body["detail"] or "refused" in r.body["detail"], r
    bad = tenant.key_file(private_key="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    r = im("POST", "/v1/integrations", tenant.body(bad))
    assert r.status == 422 and r.body["field"].startswith("credentials.service_account_key"), r
    r = im("POST", "/v1/integrations", tenant.body({"type": "authorized_user"}))
    assert r.status == 422, r
    names = {i["name"] for i in list_all(im, "/v1/integrations?limit=100", "integrations")}
    assert "gw-" + tenant.customer not in names


def test_revoked_delegation_needs_reauthorization(tenant):
    scanned(tenant)
    before = tenant.active()
    tenant.patch({"service_account": {"revoked": True}})
    failed = tenant.rescan()
    assert failed["status"] == "failed", describe(failed)
    it = tenant.integration()
    assert it["health"] == "needs_reauthorization", it
    assert "delegation" in (it.get("health_reason") or ""), it
    assert tenant.active() == before  # a failed scan resolves nothing


def test_unreadable_dns_skips_the_dns_checks_and_resolves_nothing(tenant):
    scanned(tenant)
    before = tenant.active()
    tenant.patch({"dns": {tenant.alias: "SERVFAIL"}})
    again = tenant.rescan()
    assert again["status"] == "succeeded", describe(again)
    skipped = {s["finding_type"] for s in again["coverage"]["skipped"]}
    assert P + "domain.spf_allows_any" in skipped and P + "domain.dmarc_missing" in skipped
    assert tenant.active() == before
