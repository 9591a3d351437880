"""Transactions with real clients, each scenario run against runnel and
against Apache Kafka with the same visible results: confluent-kafka's
exactly-once consume-transform-produce loop killed with SIGKILL mid-stream,
visibility of committed and aborted transactions, and fencing of a
zombie producer."""
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from conftest import DATA
from test_peer import create_topic, on_both

PROCESSOR = Path(__file__).parent / "txn_processor.py"


def read_committed(bootstrap, topic, partitions=1, isolation="read_committed"):
    """Every record of `topic` a consumer at `isolation` can read, as
    (partition, key, value), up to each partition's end as it sees it."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-check", "isolation.level": isolation,
                         "enable.auto.commit": False})
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30) for p in range(partitions)}
    consumer.assign([TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
    seen = []
    deadline = time.monotonic() + 60
    while any(consumer.position([TopicPartition(topic, p)])[0].offset < high for p, (low, high) in ends.items() if high > low):
        assert time.monotonic() < deadline, f"stopped short of {ends}: {len(seen)} records"
        m = consumer.poll(0.2)
        if m is not None and not m.error():
            seen.append((m.partition(), m.key(), m.value()))
    consumer.close()
    return seen


def exactly_once_through_sigkills(bootstrap, name):
    source, sink = f"{name}-rides", f"{name}-out"
    create_topic(bootstrap, source, 3)
    create_topic(bootstrap, sink)
    rides = (DATA / "rides.csv").read_text().splitlines()[1:]
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for ride in rides:
        producer.produce(source, key=ride.split(",")[7].encode(), value=ride.encode())
    assert producer.flush(30) == 0
    command = [sys.executable, str(PROCESSOR), bootstrap, source, sink, f"{name}-group", f"{name}-processor"]
    pace = random.Random(7)
    kills = 0
    for _ in range(4):
        processor = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        time.sleep(pace.uniform(0.5, 1.2))
        if processor.poll() is None:
            processor.send_signal(signal.SIGKILL)
            processor.wait()
            kills += 1
    assert kills >= 2, "the processor finished before it could be killed mid-stream"
    processor = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=180)
    assert processor.returncode == 0 and "DONE" in processor.stdout
    out = read_committed(bootstrap, sink)
    keys = [key for _, key, _ in out]
    assert len(keys) == len(set(keys)) == len(rides), f"{len(rides)} rides, {len(keys)} outputs, {len(set(keys))} distinct"
    return sorted((key, value) for _, key, value in out)


def test_consume_transform_produce_is_exactly_once_through_sigkills(broker, kafka_peer):
    on_both(broker, kafka_peer, exactly_once_through_sigkills)


def committed_and_aborted_visibility(bootstrap, name):
    create_topic(bootstrap, name)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{name}-tx"})
    producer.init_transactions(30)
    for values, commit in [([b"c1", b"c2"], True), ([b"a1", b"a2", b"a3"], False), ([b"c3"], True)]:
        producer.begin_transaction()
        for value in values:
            producer.produce(name, value=value, partition=0)
        producer.flush(30)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    low_high = Consumer({"bootstrap.servers": bootstrap, "group.id": "w", "isolation.level": "read_committed"}).get_watermark_offsets(
        TopicPartition(name, 0), timeout=10)
    return {
        "read_committed": [v for _, _, v in read_committed(bootstrap, name)],
        "read_uncommitted": [v for _, _, v in read_committed(bootstrap, name, isolation="read_uncommitted")],
        "watermarks": low_high,
    }


def test_committed_and_aborted_transactions_are_seen_alike(broker, kafka_peer):
    seen = on_both(broker, kafka_peer, committed_and_aborted_visibility)
    assert seen["read_committed"] == [b"c1", b"c2", b"c3"]
    assert seen["watermarks"] == (0, 9), "six records and three markers"


def zombie_is_fenced(bootstrap, name):
    create_topic(bootstrap, name)
    zombie = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{name}-tx"})
    zombie.init_transactions(30)
    zombie.begin_transaction()
    zombie.produce(name, value=b"zombie", partition=0)
    zombie.flush(30)
    successor = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{name}-tx"})
    successor.init_transactions(60)
    try:
        zombie.commit_transaction(30)
        zombie_outcome = "committed"
    except KafkaException as e:
        zombie_outcome = ("fatal" if e.args[0].fatal() else "not fatal", e.args[0].name())
    successor.begin_transaction()
    successor.produce(name, value=b"successor", partition=0)
    successor.commit_transaction(30)
    return {"zombie": zombie_outcome, "visible": [v for _, _, v in read_committed(bootstrap, name)]}


def test_a_zombie_producer_is_fenced(broker, kafka_peer):
    seen = on_both(broker, kafka_peer, zombie_is_fenced)
    assert seen["visible"] == [b"successor"]
    assert seen["zombie"][0] == "fatal"
