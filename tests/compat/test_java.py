"""The Java kafka-clients 3.9 (the reference client): admin, idempotent
producer with every codec, consumer with topic-id fetches."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

JAVA_DIR = Path(__file__).parent / "java"


def classpath():
    jars = os.environ.get("RUNNEL_JAVA_JARS")
    if not jars or not (Path(jars) / "kafka-clients.jar").exists():
        pytest.fail("RUNNEL_JAVA_JARS must name a folder with kafka-clients.jar; scripts/test fetches it")
    if shutil.which("javac") is None:
        pytest.fail("javac is required; scripts/test installs a JDK")
    return f"{jars}/*"


def test_java_client_probe(broker, tmp_path):
    cp = classpath()
    subprocess.run(["javac", "-d", str(tmp_path), "-cp", cp, str(JAVA_DIR / "ClientProbe.java")], check=True, timeout=120)
    result = subprocess.run(
        ["java", "-cp", f"{tmp_path}:{cp}", "ClientProbe", broker.bootstrap, "java"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ALL OK" in result.stdout
