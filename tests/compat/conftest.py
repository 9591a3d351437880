"""Fixtures for the real-client compatibility suite.

Each test module gets its own `runnel serve` on an ephemeral port and a
fresh data directory; tests name their topics uniquely.
"""
import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def runnel_binary() -> str:
    binary = os.environ.get("RUNNEL_BIN", str(ROOT / "target" / "debug" / "runnel"))
    if not Path(binary).exists():
        pytest.fail(f"runnel binary not found at {binary}; build it with `cargo build -p runnel`")
    return binary


class Broker:
    """A `runnel serve` child process; `bootstrap` is its Kafka address."""

    def __init__(self, data_dir: Path, *args: str):
        self.data_dir = data_dir
        self.log = []
        self.proc = subprocess.Popen(
            [runnel_binary(), "serve", "--data-dir", str(data_dir), "--kafka-listen", "127.0.0.1:0",
             "--registry-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--sql-listen", "127.0.0.1:0", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "RUNNEL_LOG": "info"},
        )
        ready = threading.Event()
        self.bootstrap = None
        self.registry = None
        self.sql = None

        def pump():
            for line in self.proc.stderr:
                self.log.append(line.rstrip())
                bind = re.search(r"bind=(\S+)", line)
                if bind and "schema registry" in line:
                    self.registry = "http://" + bind.group(1)
                elif bind and "SQL service" in line:
                    self.sql = "http://" + bind.group(1)
                elif bind and "metrics" in line:
                    pass
                elif bind and self.bootstrap is None:
                    self.bootstrap = bind.group(1)
                if "ready" in line:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(30):
            self.stop()
            pytest.fail("runnel did not become ready:\n" + "\n".join(self.log))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("runnel-data"))
    yield b
    b.stop()
    assert b.proc.returncode == 0, "runnel should exit cleanly on SIGTERM"


@pytest.fixture(scope="session")
def kafka_peer():
    """Bootstrap address of the Apache Kafka broker the test command runs
    beside runnel (`scripts/kafka-peer`), for tests that compare the two."""
    bootstrap = os.environ.get("RUNNEL_KAFKA_BOOTSTRAP")
    if not bootstrap:
        pytest.fail("these tests compare runnel with Apache Kafka: run them with scripts/test, or start a peer with "
                    "`scripts/kafka-peer start DIR` and set RUNNEL_KAFKA_BOOTSTRAP=$(cat DIR/bootstrap)")
    return bootstrap


@pytest.fixture
def topic(request):
    """A topic name unique to this test."""
    name = re.sub(r"[^a-zA-Z0-9_-]", "-", request.node.name)[:80]
    return f"{name}-{uuid.uuid4().hex[:6]}"


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Polls `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


CODECS = ["gzip", "snappy", "lz4", "zstd"]
