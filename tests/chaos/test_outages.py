"""(9) Outages: the Kafka broker, then PostgreSQL, stopped for a while (15 s; 60 s in the long
form) in the middle of scans. Meanwhile every service stays up (/healthz answers) and says it
is not ready (/readyz 503); afterwards each is ready again without a restart, and the scans
requested before the outage complete once with the baseline's findings."""

import os
import time
import urllib.error
import urllib.request

import chaoslib as c

OUTAGE_S = int(os.environ.get("CASB_CHAOS_OUTAGE_S", "60" if c.LONG else "15"))


def status(url, path):
    try:
        with urllib.request.urlopen(url + path, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None  # the process does not answer at all


def hold_outage(what, fig, problems):
    """Keeps the dependency down for OUTAGE_S, checking that every service notices (not
    ready) and stays alive (healthz) meanwhile."""
    noticed = {name: False for name in c.SERVICES}
    deadline = time.time() + OUTAGE_S
    while time.time() < deadline:
        for name, var in c.SERVICES.items():
            url = c.it.cfg(var)
            if status(url, "/healthz") != 200:
                problems.append(f"{name} stopped answering /healthz while {what} was down")
                return
            if status(url, "/readyz") == 503:
                noticed[name] = True
        time.sleep(1)
    for name, seen in noticed.items():
        if not seen:
            problems.append(f"{name} never said not-ready during the {what} outage")
    fig[f"{what}_outage_s"] = OUTAGE_S


def test_outages(record_property):
    with c.scenario("outages", record_property) as (t, fig, problems):
        for what, stop, start in (("kafka", "casb_kafka_stop", "casb_kafka_start"),
                                  ("postgresql", "casb_pg_stop", "casb_pg_start")):
            since = c.it.psql_value("SELECT now()")
            t.add_fault(mode="slow", delay_ms=300)
            scans = t.scan_now()
            c.wait_scans_running(t, list(scans.values()))
            c.lib(stop)
            hold_outage(what, fig, problems)
            c.lib(start)
            t.clear_faults()  # the simulator is not the outage: it answers throughout
            # Ready again on their own: no service was restarted.
            c.wait_stack_ready(timeout_s=120)
            problems += t.verify(since, {i: 1 for i in scans}, fig)
            c.log(f"after the {what} outage: {problems}")
        c.check(problems)
