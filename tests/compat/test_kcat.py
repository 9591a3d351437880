"""kcat on Debian's librdkafka 2.0.2: old clients must keep working."""
import json
import subprocess

import pytest

from conftest import CODECS



def kcat(broker, *args, stdin=None):
    result = subprocess.run(["kcat", "-b", broker.bootstrap, *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def read(broker, topic, *extra):
    out = kcat(broker, "-C", "-t", topic, "-e", "-J", *extra)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_round_trip_with_keys_headers_and_timestamps(broker, topic):
    kcat(broker, "-P", "-t", topic, "-K", ":", "-H", "source=kcat", stdin="a:1\nb:2\nc:3\n")
    records = read(broker, topic)
    assert [(r["key"], r["payload"], r["offset"]) for r in records] == [("a", "1", 0), ("b", "2", 1), ("c", "3", 2)]
    assert all(r["headers"] == ["source", "kcat"] for r in records)
    assert all(r["ts"] > 1_600_000_000_000 for r in records)


@pytest.mark.parametrize("codec", CODECS)
def test_compression_codec(broker, topic, codec):
    lines = "".join(f"{codec} line {i} {'z' * (i % 30)}\n" for i in range(200))
    kcat(broker, "-P", "-t", topic, "-z", codec, stdin=lines)
    records = read(broker, topic)
    assert len(records) == 200
    assert records[150]["payload"].startswith(f"{codec} line 150")


def test_keyed_partitioning_with_auto_created_topic(tmp_path_factory):
    from conftest import Broker

    broker = Broker(tmp_path_factory.mktemp("kcat-partitions"), "--num-partitions", "4")
    try:
        lines = "".join(f"zone-{i % 12}:ride {i}\n" for i in range(96))
        kcat(broker, "-P", "-t", "rides", "-K", ":", stdin=lines)
        records = read(broker, "rides")
        assert len(records) == 96
        by_key = {}
        for r in records:
            by_key.setdefault(r["key"], set()).add(r["partition"])
        assert all(len(p) == 1 for p in by_key.values())
        assert len(set().union(*by_key.values())) >= 3
        metadata = json.loads(kcat(broker, "-L", "-J", "-t", "rides"))
        assert len(metadata["topics"][0]["partitions"]) == 4
    finally:
        broker.stop()


def test_consume_from_timestamp(broker, topic):
    kcat(broker, "-P", "-t", topic, stdin="early\n")
    first = read(broker, topic)[0]["ts"]
    kcat(broker, "-P", "-t", topic, "-X", "linger.ms=0", stdin="late\n")
    late_ts = read(broker, topic)[1]["ts"]
    if late_ts == first:
        pytest.skip("both records got the same millisecond")
    records = read(broker, topic, "-o", f"s@{late_ts}")
    assert [r["payload"] for r in records] == ["late"]


def test_idempotent_producer(broker, topic):
    lines = "".join(f"{i}\n" for i in range(500))
    kcat(broker, "-P", "-t", topic, "-X", "enable.idempotence=true", stdin=lines)
    assert [int(r["payload"]) for r in read(broker, topic)] == list(range(500))
