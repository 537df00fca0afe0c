"""Operability metrics (issue 9): after a scan, each service's /metrics shows the series the
Grafana dashboard (deploy/grafana/casb-dashboard.json) is drawn from, and every metric name
the dashboard's expressions use is one that some service exposes.

/metrics is public on every service. Series registered on first use (a route, a provider, a
status class) appear once the event happened, so the test makes the requests it then looks
for. Consumer lag comes from librdkafka statistics every 15 s: it is waited for."""

import json
import os
import re

from conftest import ROOT, cfg, describe, fa, http, im, wait_until

DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "casb-dashboard.json")
SERVICES = {
    "integration-manager": "CASB_INTEGRATIONS_URL",
    "findings-api": "CASB_FINDINGS_URL",
    "scheduler": "CASB_SCHEDULER_URL",
    "scanner-worker": "CASB_SCANNER_URL",
}
# A sample line: name, optional {labels}, value (timestamps are not written by libcommon).
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})? (\S+)$')
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def scrape(service):
    r = http("GET", cfg(SERVICES[service]) + "/metrics")
    assert r.status == 200, f"{service} /metrics: {r}"
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    return r.raw


def parse(text):
    """{name: [(labels dict, value)]} of the samples, and {name: type} of the TYPE lines."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return samples, types


def find(samples, name, **labels):
    """The values of name's samples whose labels include the given ones."""
    return [v for ls, v in samples.get(name, []) if all(ls.get(k) == w for k, w in labels.items())]


def assert_series(service, name, kind, **labels):
    samples, types = parse(scrape(service))
    assert types.get(name) == kind, f"{service}: {name} has TYPE {types.get(name)}, want {kind}"
    sample_name = name + "_count" if kind == "histogram" else name
    assert find(samples, sample_name, **labels), \
        f"{service}: no {sample_name} with {labels}; have {samples.get(sample_name)}"
    return samples


def assert_histogram_consistent(samples, name, **labels):
    """Cumulative buckets, +Inf equal to _count."""
    buckets = [(ls["le"], v) for ls, v in samples.get(name + "_bucket", [])
               if all(ls.get(k) == w for k, w in labels.items())]
    assert buckets and buckets[-1][0] == "+Inf", buckets
    values = [v for _, v in buckets]
    assert values == sorted(values), buckets
    assert [values[-1]] == find(samples, name + "_count", **labels), buckets


def wait_series(service, name, kind, timeout_s=60, **labels):
    def present():
        try:
            return assert_series(service, name, kind, **labels)
        except AssertionError:
            return None
    return wait_until(f"{service} {name}{labels}", present, timeout_s=timeout_s)


def test_metrics_after_a_scan(org):
    scan = org.scans()[0]
    assert scan["status"] == "succeeded", describe(scan)
    # Requests whose route series the test then looks for.
    assert fa("GET", "/v1/findings?limit=1").status == 200
    assert im("GET", f"/v1/integrations/{org.integration_id}").status == 200
    for service in SERVICES:
        assert http("GET", cfg(SERVICES[service]) + "/healthz").status == 200

    # scanner-worker: scans, scan duration, provider API calls, rate-limit waits, Kafka.
    s = wait_series("scanner-worker", "casb_scans_total", "counter",
                    provider="github", outcome="completed")
    assert find(s, "casb_scans_total", provider="github", outcome="completed")[0] >= 1
    s = assert_series("scanner-worker", "casb_scan_duration_seconds", "histogram",
                      provider="github")
    assert_histogram_consistent(s, "casb_scan_duration_seconds", provider="github")
    s = assert_series("scanner-worker", "casb_provider_api_calls_total", "counter",
                      provider="github", status="2xx")
    assert find(s, "casb_provider_api_calls_total", provider="github", status="2xx")[0] >= 1
    assert not any(ls.get("status") not in ("error", "1xx", "2xx", "3xx", "4xx", "5xx")
                   for ls, _ in s["casb_provider_api_calls_total"]), s
    assert_series("scanner-worker", "casb_provider_rate_limit_waits_total", "counter",
                  provider="github")
    assert_series("scanner-worker", "casb_dlq_messages_total", "counter", topic="casb.scan.jobs")
    wait_series("scanner-worker", "casb_kafka_consumer_lag", "gauge", timeout_s=45,
                topic="casb.scan.jobs")
    wait_series("scanner-worker", "casb_http_requests_total", "counter",
                method="GET", route="/healthz", status="200")

    # findings-api: ingest, dead letters, consumer lag, HTTP by route pattern, DB pool.
    s = assert_series("findings-api", "casb_ingest_instances_total", "counter")
    assert find(s, "casb_ingest_messages_total", kind="completed")[0] >= 1
    assert_series("findings-api", "casb_dlq_messages_total", "counter", topic="casb.scan.results")
    wait_series("findings-api", "casb_kafka_consumer_lag", "gauge", timeout_s=45,
                topic="casb.scan.results")
    s = wait_series("findings-api", "casb_http_requests_total", "counter",
                    method="GET", route="/v1/findings", status="200")
    s = assert_series("findings-api", "casb_http_request_duration_seconds", "histogram",
                      method="GET", route="/v1/findings")
    assert_histogram_consistent(s, "casb_http_request_duration_seconds",
                                method="GET", route="/v1/findings")
    for service in ("findings-api", "integration-manager", "scheduler"):
        s = assert_series(service, "casb_db_pool_connections", "gauge", state="idle")
        assert find(s, "casb_db_pool_connections", state="in_use"), service

    # integration-manager: the route pattern, never the raw path (label cardinality).
    s = wait_series("integration-manager", "casb_http_requests_total", "counter",
                    method="GET", route="/v1/integrations/{id}", status="200")
    text = scrape("integration-manager")
    assert org.integration_id not in text
    assert_series("integration-manager", "casb_http_request_duration_seconds", "histogram",
                  method="GET", route="/v1/integrations/{id}")


def dashboard_metric_names():
    """Metric names in the dashboard's expressions: identifiers that are not PromQL
    keywords, functions, label names or Grafana variables, i.e. the casb_ ones."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = []

    def walk(panels):
        for p in panels:
            exprs.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
            walk(p.get("panels", []))
    walk(dash["panels"])
    names = set()
    for e in exprs:
        # Drop label matchers and strings so that label values are not read as names.
        e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', e)
        e = re.sub(r"\[[^\]]*\]", "", e)
        names.update(n for n in NAME.findall(e) if n.startswith("casb_"))
    return dash, exprs, names


def test_dashboard_is_well_formed():
    dash, exprs, names = dashboard_metric_names()
    assert dash["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
    assert all(e.count("(") == e.count(")") for e in exprs)
    # Quantiles are computed from histogram buckets, by le.
    quantile_exprs = [e for e in exprs if "histogram_quantile" in e]
    assert quantile_exprs and all("_bucket" in e and "le" in e for e in quantile_exprs)
    for wanted in ("casb_scans_total", "casb_scan_duration_seconds_bucket",
                   "casb_provider_api_calls_total", "casb_provider_rate_limit_waits_total",
                   "casb_ingest_instances_total", "casb_dlq_messages_total",
                   "casb_kafka_consumer_lag", "casb_http_requests_total",
                   "casb_http_request_duration_seconds_bucket", "casb_db_pool_connections"):
        assert wanted in names, wanted


def test_dashboard_names_are_exposed(org):
    """Every name the dashboard queries is exposed by some service (after a scan, so that
    lazily registered series exist)."""
    _, _, names = dashboard_metric_names()
    fa("GET", "/v1/findings?limit=1")

    def missing():
        exposed = set()
        for service in SERVICES:
            samples, types = parse(scrape(service))
            exposed.update(samples)
            exposed.update(types)
        for n in list(exposed):
            for suffix in HISTOGRAM_SUFFIXES:
                if n.endswith(suffix):
                    exposed.add(n[: -len(suffix)])
        return sorted(names - exposed)
    # Consumer lag shows after the first statistics interval (15 s).
    wait_until("every dashboard metric exposed", lambda: not missing(), timeout_s=45)
    assert not missing()
