"""franz-go (Go) and kafkajs (Node.js): admin, keyed records with headers
in every codec each client supports, a committing consumer group, and a
rebalance when a member leaves. Each probe checks what it sees and prints
it; `test_peer.py` compares its output with Apache Kafka's."""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

NODE_PROBE = Path(__file__).parent / "node" / "probe.js"


def franz_go(bootstrap, prefix):
    probe = os.environ.get("RUNNEL_FRANZ_PROBE")
    if not probe or not Path(probe).exists():
        pytest.fail("RUNNEL_FRANZ_PROBE must name the built franz-go probe; scripts/test builds it")
    return run([probe, bootstrap, prefix])


def kafkajs(bootstrap, prefix):
    if not os.environ.get("NODE_PATH") or shutil.which("node") is None:
        pytest.fail("node and NODE_PATH (kafkajs installed by scripts/test) are required")
    return run(["node", str(NODE_PROBE), bootstrap, prefix])


# The records' timestamps: the start of the hour this module was loaded,
# recent enough for Apache Kafka's retention to keep them, and the same
# for every run of a probe, so two brokers' transcripts can be compared.
BASE_MS = int(time.time()) // 3600 * 3600 * 1000


def run(command):
    env = {**os.environ, "PROBE_BASE_MS": str(BASE_MS)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "ALL OK", result.stdout
    return lines


@pytest.mark.parametrize("probe", [franz_go, kafkajs])
def test_probe(broker, topic, probe):
    lines = probe(broker.bootstrap, topic)
    assert "group split ok" in lines and "takeover ok" in lines
