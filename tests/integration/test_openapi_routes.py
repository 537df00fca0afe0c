"""The OpenAPI documents and the routes the services serve agree, for integration-manager
and findings-api: every operation in proto/openapi/<service>.yaml reaches a handler (the
router's own 404 "no such resource" or 405 would mean it does not), and every route the
service registers is in its document."""

import os
import re
import uuid

import yaml

from conftest import ROOT, cfg, http

import pytest

SERVICES = {
    "integration-manager": "CASB_INTEGRATIONS_URL",
    "findings-api": "CASB_FINDINGS_URL",
}
METHODS = ("get", "post", "put", "patch", "delete")
# Served by the HTTP server itself (common/src/http_server.c), not registered by the service.
SERVER_ROUTES = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


def doc_of(service):
    return os.path.join(ROOT, "proto", "openapi", f"{service}.yaml")


def documented(service="integration-manager"):
    with open(doc_of(service)) as f:
        doc = yaml.safe_load(f)
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                public = op.get("security", doc.get("security")) == []
                ops.append((method.upper(), path, public))
    return ops


def registered(service):
    """(METHOD, pattern) of every route the service registers: the entries of its route
    tables and any direct casb_http_route(...) call."""
    routes = set()
    table = re.compile(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)"\s*,\s*"(/[^"]*)"\s*,\s*\w+\s*'
                       r'(?:,\s*\w+\s*)?\}')
    direct = re.compile(r'casb_http_route\s*\(\s*\w+\s*,\s*"(GET|POST|PUT|PATCH|DELETE)"\s*,'
                        r'\s*"(/[^"]*)"')
    sources = os.path.join(ROOT, "services", service)
    for name in sorted(os.listdir(sources)):
        if not name.endswith(".c"):
            continue
        with open(os.path.join(sources, name)) as f:
            text = f.read()
        routes.update(table.findall(text))
        routes.update(direct.findall(text))
    return routes


def url(service, path):
    return cfg(SERVICES[service]) + re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def test_document_parses_and_is_not_trivial():
    ops = documented()
    assert len(ops) >= 10, ops
    assert ("PATCH", "/v1/integrations/{id}", False) in ops
    assert ("GET", "/v1/audit-log", False) in ops


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_documented_operation_is_served(service):
    for method, path, public in documented(service):
        body = {} if method in ("POST", "PUT", "PATCH") else None
        r = http(method, url(service, path), body)
        if public:
            # No token needed; a 404 must be the handler's own (an unknown {provider}).
            assert r.status not in (401, 405), (method, path, r)
            if r.status == 404:
                assert (r.body or {}).get("detail") != "no such resource", (method, path, r)
            continue
        # The router matches before it authenticates: 401 proves the route exists.
        assert r.status == 401, (method, path, r)
        r = http(method, url(service, path), body, token=cfg("CASB_TOKEN"))
        assert r.status != 405, (method, path, r)
        assert r.status < 500 or r.status == 502, (method, path, r)
        if r.status == 404:
            assert (r.body or {}).get("detail") != "no such resource", (method, path, r)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_registered_route_is_documented(service):
    routes = registered(service)
    assert len(routes) >= 5, routes
    documented_pairs = {(m, p) for m, p, _ in documented(service)}
    missing = sorted(routes - documented_pairs)
    assert not missing, f"served but not in {doc_of(service)}: {missing}"
    for pair in SERVER_ROUTES:
        assert pair in documented_pairs, pair


def test_an_unregistered_route_is_told_apart():
    # The check above relies on the router's own answers; make sure they look as expected.
    r = http("GET", cfg("CASB_INTEGRATIONS_URL") + "/v1/no-such-thing", token=cfg("CASB_TOKEN"))
    assert r.status == 404 and r.body.get("detail") == "no such resource", r
    r = http("PUT", url("integration-manager", "/v1/integrations/{id}"), {},
             token=cfg("CASB_TOKEN"))
    assert r.status == 405, r
