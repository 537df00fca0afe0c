"""`casb-integration-manager replay-dlq` against the running stack: a message dead-lettered by
findings-api goes back to casb.scan.results with its key; one that fails again lands in the
DLQ once more and is left for the next run instead of looping."""

import json
import os
import subprocess
import uuid

from conftest import ROOT, cfg, kafka_dump, wait_until


def replay(topic, **env):
    build = os.environ.get("CASB_BUILD_DIR") or os.path.join(ROOT, "build")
    full = dict(os.environ, CASB_KAFKA_BROKERS=cfg("CASB_KAFKA_BROKERS"), CASB_DLQ_TOPIC=topic,
                CASB_REPLAY_IDLE_MS="5000", CASB_LOG_LEVEL="warn")
    full.update(env)
    return subprocess.run([os.path.join(build, "casb-integration-manager"), "replay-dlq"],
                          env=full, capture_output=True, text=True, timeout=120)


def copies(key):
    return [line for line in kafka_dump("casb.scan.results.dlq").splitlines()
            if line.startswith(key + "\t")]


def produce(topic, key, value):
    subprocess.run(["kcat", "-b", cfg("CASB_KAFKA_BROKERS"), "-P", "-t", topic, "-k", key],
                   input=value, text=True, check=True, timeout=30)


def test_replay_sends_dead_letters_back_once_per_run():
    key = f"replay-{uuid.uuid4()}"
    produce("casb.scan.results", key, '{"schema": "not a scan result"}')
    wait_until("the poison message in the DLQ", lambda: len(copies(key)) == 1, timeout_s=30)

    r = replay("casb.scan.results.dlq")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["topic"] == "casb.scan.results.dlq" and summary["replayed"] >= 1
    # Back on its topic with its key, refused again by findings-api, dead-lettered again.
    assert any(line.startswith(key + "\t") for line in kafka_dump("casb.scan.results").splitlines()
               if line), "the message did not go back to casb.scan.results"
    wait_until("the replayed copy back in the DLQ", lambda: len(copies(key)) == 2, timeout_s=30)
    # The replay stopped instead of chasing its own failures: exactly one copy came back.
    assert len(copies(key)) == 2


def test_replay_refuses_a_topic_that_is_no_dlq():
    r = replay("casb.scan.results")
    assert r.returncode == 2 and "CASB_DLQ_TOPIC" in r.stderr
