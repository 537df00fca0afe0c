"""The OpenAPI document of integration-manager and the routes it serves agree: every
operation in proto/openapi/integration-manager.yaml reaches a handler (the router's own 404
"no such resource" or 405 would mean it does not), and every route the service registers
is in the document."""

import os
import re
import uuid

import yaml

from conftest import ROOT, cfg, http

DOC = os.path.join(ROOT, "proto", "openapi", "integration-manager.yaml")
SOURCES = os.path.join(ROOT, "services", "integration-manager")
METHODS = ("get", "post", "put", "patch", "delete")
# Served by the HTTP server itself (common/src/http_server.c), not registered by the service.
SERVER_ROUTES = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


def documented():
    with open(DOC) as f:
        doc = yaml.safe_load(f)
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                public = op.get("security", doc.get("security")) == []
                ops.append((method.upper(), path, public))
    return ops


def registered():
    """(METHOD, pattern) of every route the service registers: the entries of its route
    table and any direct casb_http_route(...) call."""
    routes = set()
    table = re.compile(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)"\s*,\s*"(/[^"]*)"\s*,\s*\w+\s*\}')
    direct = re.compile(r'casb_http_route\s*\(\s*\w+\s*,\s*"(GET|POST|PUT|PATCH|DELETE)"\s*,'
                        r'\s*"(/[^"]*)"')
    for name in sorted(os.listdir(SOURCES)):
        if not name.endswith(".c"):
            continue
        with open(os.path.join(SOURCES, name)) as f:
            text = f.read()
        routes.update(table.findall(text))
        routes.update(direct.findall(text))
    return routes


def url(path):
    return cfg("CASB_INTEGRATIONS_URL") + re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def test_document_parses_and_is_not_trivial():
    ops = documented()
    assert len(ops) >= 10, ops
    assert ("PATCH", "/v1/integrations/{id}", False) in ops
    assert ("GET", "/v1/audit-log", False) in ops


def test_every_documented_operation_is_served():
    for method, path, public in documented():
        body = {} if method in ("POST", "PUT", "PATCH") else None
        r = http(method, url(path), body)
        if public:
            # No token needed; a 404 must be the handler's own (an unknown {provider}).
            assert r.status not in (401, 405), (method, path, r)
            if r.status == 404:
                assert (r.body or {}).get("detail") != "no such resource", (method, path, r)
            continue
        # The router matches before it authenticates: 401 proves the route exists.
        assert r.status == 401, (method, path, r)
        r = http(method, url(path), body, token=cfg("CASB_TOKEN"))
        assert r.status != 405, (method, path, r)
        assert r.status < 500 or r.status == 502, (method, path, r)
        if r.status == 404:
            assert (r.body or {}).get("detail") != "no such resource", (method, path, r)


def test_every_registered_route_is_documented():
    routes = registered()
    assert ("PATCH", "/v1/integrations/{id}") in routes, routes
    documented_pairs = {(m, p) for m, p, _ in documented()}
    missing = sorted(routes - documented_pairs)
    assert not missing, f"served but not in {DOC}: {missing}"
    for pair in SERVER_ROUTES:
        assert pair in documented_pairs, pair


def test_an_unregistered_route_is_told_apart():
    # The check above relies on the router's own answers; make sure they look as expected.
    r = http("GET", cfg("CASB_INTEGRATIONS_URL") + "/v1/no-such-thing", token=cfg("CASB_TOKEN"))
    assert r.status == 404 and r.body.get("detail") == "no such resource", r
    r = http("PUT", url("/v1/integrations/{id}"), {}, token=cfg("CASB_TOKEN"))
    assert r.status == 405, r
