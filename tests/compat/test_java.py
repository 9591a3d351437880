"""The Java kafka-clients, the reference client, in the 4.x line and the
still widely deployed 3.9: admin, idempotent producer with every codec,
consumer with topic-id fetches."""
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

JAVA_DIR = Path(__file__).parent / "java"
VERSIONS = ["4.4.0", "3.9.1"]


def classpath(version):
    clients = os.environ.get("RUNNEL_JAVA_CLIENTS")
    if not clients or not (Path(clients) / version).is_dir():
        pytest.fail(f"RUNNEL_JAVA_CLIENTS must name a folder with {version}/, the kafka-clients jars; scripts/test fetches them")
    if shutil.which("javac") is None:
        pytest.fail("javac is required; scripts/test installs a JDK")
    return f"{clients}/{version}/*"


def compiled_probe(version, tmp_path, probe="ClientProbe"):
    """A probe compiled against kafka-clients `version`; its classpath."""
    cp = classpath(version)
    subprocess.run(["javac", "-d", str(tmp_path), "-cp", cp, str(JAVA_DIR / f"{probe}.java")], check=True, timeout=120)
    return f"{tmp_path}:{cp}"


@pytest.mark.parametrize("version", VERSIONS)
def test_java_client_probe(broker, tmp_path, version):
    cp = compiled_probe(version, tmp_path)
    result = subprocess.run(["java", "-cp", cp, "ClientProbe", broker.bootstrap, f"java-{version}"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ALL OK" in result.stdout


@pytest.mark.parametrize("version", VERSIONS)
def test_java_transactions_on_runnel_and_kafka(broker, kafka_peer, tmp_path, version):
    """The Java transactional producer and read_committed consumers: the same
    checks hold against runnel and against Apache Kafka."""
    cp = compiled_probe(version, tmp_path, "TransactionProbe")
    for name, bootstrap in [("runnel", broker.bootstrap), ("kafka", kafka_peer)]:
        prefix = f"java-txn-{version}-{uuid.uuid4().hex[:6]}"
        result = subprocess.run(["java", "-cp", cp, "TransactionProbe", bootstrap, prefix], capture_output=True, text=True, timeout=180)
        assert result.returncode == 0 and "ALL OK" in result.stdout, f"{name}:\n{result.stdout}{result.stderr}"
