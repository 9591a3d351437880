"""The same client programs against runnel and against Apache Kafka: what
each program observes must be the same on both brokers.

Each program returns a transcript of what a user of that client sees
(records with keys, values, headers, partitions and offsets; committed
offsets; admin answers), with broker identity left out.
"""
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic as KpNewTopic

from conftest import CODECS, wait_for

# The records' timestamps: the start of the hour this module was loaded,
# recent enough for Apache Kafka's retention to keep them, and the same
# for both brokers' runs.
BASE_MS = int(time.time()) // 3600 * 3600 * 1000

RIDES = [
    (b"132", b'{"PULocationID": 132, "DOLocationID": 265, "fare_amount": 52.0}'),
    (b"148", b'{"PULocationID": 148, "DOLocationID": 7, "fare_amount": 8.5}'),
    (b"132", b'{"PULocationID": 132, "DOLocationID": 48, "fare_amount": 27.5}'),
    (b"43", b'{"PULocationID": 43, "DOLocationID": 43, "fare_amount": 3.0}'),
]


def on_both(broker, kafka_peer, program):
    """Runs `program(bootstrap, name)` against both brokers with the same
    unique name and asserts that both transcripts are equal."""
    name = f"peer-{program.__name__}-{uuid.uuid4().hex[:8]}"
    runnel = program(broker.bootstrap, name)
    kafka = program(kafka_peer, name)
    assert runnel == kafka, f"runnel: {runnel}\nkafka:  {kafka}"
    return runnel


def create_topic(bootstrap, topic, partitions=1):
    """Creates `topic` and waits until every partition has a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result()
    await_topic(bootstrap, topic, partitions)


def await_topic(bootstrap, topic, partitions):
    """Apache Kafka answers CreateTopics before its partitions have leaders."""
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def ready():
        found = admin.list_topics(topic, timeout=5).topics.get(topic)
        return found and found.error is None and len(found.partitions) == partitions and all(p.leader >= 0 for p in found.partitions.values())

    wait_for(ready, timeout=30, what=f"leaders for {topic}")


def consume_all(bootstrap, topic, count, group=None, **extra):
    config = {"bootstrap.servers": bootstrap, "group.id": group or f"{topic}-reader", "auto.offset.reset": "earliest",
              "enable.auto.commit": False, **extra}
    consumer = Consumer(config)
    consumer.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            raise KafkaException(message.error())
        seen.append(message)
    return consumer, seen


def confluent_keyed_records_with_headers_and_codecs(bootstrap, name):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result()
    await_topic(bootstrap, name, 3)
    transcript = []
    for codec in ["none", *CODECS]:
        producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "enable.idempotence": True,
                             "partitioner": "murmur2_random"})
        for key, value in RIDES:
            producer.produce(name, key=key, value=value, headers=[("codec", codec.encode()), ("empty", b"")], timestamp=BASE_MS)
        assert producer.flush(30) == 0
    consumer, messages = consume_all(bootstrap, name, len(RIDES) * (len(CODECS) + 1))
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        transcript.append((m.partition(), m.offset(), m.key(), m.value(), tuple(m.headers() or ()), m.timestamp()))
    consumer.commit(asynchronous=False)
    committed = consumer.committed([TopicPartition(name, p) for p in range(3)], timeout=10)
    transcript.append(sorted((tp.partition, tp.offset) for tp in committed))
    consumer.close()
    low_high = [Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"}).get_watermark_offsets(TopicPartition(name, p), timeout=10)
                for p in range(3)]
    transcript.append(low_high)
    return transcript


def test_confluent_kafka_records_keys_headers_codecs_and_commits(broker, kafka_peer):
    on_both(broker, kafka_peer, confluent_keyed_records_with_headers_and_codecs)


def confluent_admin(bootstrap, name):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    transcript = []
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1, config={"retention.ms": "3600000"})])[name].result()
    await_topic(bootstrap, name, 1)
    for bad in [NewTopic(name, num_partitions=1, replication_factor=1), NewTopic(name + "-rf", num_partitions=1, replication_factor=3),
                NewTopic(name + "-cfg", num_partitions=1, replication_factor=1, config={"retention.ms": "soon"})]:
        try:
            admin.create_topics([bad])[bad.topic].result()
            transcript.append((bad.topic.removeprefix(name), "created"))
        except KafkaException as e:
            transcript.append((bad.topic.removeprefix(name), e.args[0].code()))
    admin.create_partitions([NewPartitions(name, 3)])[name].result()
    await_topic(bootstrap, name, 3)
    try:
        admin.create_partitions([NewPartitions(name, 2)])[name].result()
    except KafkaException as e:
        transcript.append(("shrink", e.args[0].code()))
    described = admin.list_topics(name, timeout=10).topics[name]
    transcript.append(("partitions", sorted(described.partitions)))
    admin.delete_topics([name])[name].result()
    try:
        admin.delete_topics([name])[name].result()
    except KafkaException as e:
        transcript.append(("delete again", e.args[0].code()))
    return transcript


def test_confluent_kafka_admin_answers(broker, kafka_peer):
    on_both(broker, kafka_peer, confluent_admin)


def confluent_group_lifecycle(bootstrap, name):
    """A group keeps its protocol type once its last member has left, and a
    static member that closes is gone exactly when its session times out,
    so the group can be deleted then."""
    create_topic(bootstrap, name, 2)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    transcript = []

    def join(group, **extra):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **extra})
        consumer.subscribe([name])
        wait_for(lambda: consumer.poll(0.1) is None and consumer.assignment(), timeout=60, interval=0, what=f"{group} to be assigned")
        return consumer

    join(f"{name}-left").close()
    listed = [g for g in admin.list_consumer_groups().result().valid if g.group_id == f"{name}-left"]
    transcript.append(("after the last member left", [(g.is_simple_consumer_group, str(g.state)) for g in listed]))

    session_ms = 6000
    static = join(f"{name}-static", **{"group.instance.id": "only", "session.timeout.ms": session_ms})
    static.close()
    closed = time.monotonic()
    # The member's session ends at most session.timeout.ms after it closed.
    time.sleep(max(0.0, closed + session_ms / 1000 + 0.05 - time.monotonic()))
    try:
        admin.delete_consumer_groups([f"{name}-static"])[f"{name}-static"].result()
        transcript.append(("delete just after the static member's session", "deleted"))
    except KafkaException as e:
        transcript.append(("delete just after the static member's session", e.args[0].name()))
    return transcript


def test_groups_keep_their_type_and_expire_members_on_time(broker, kafka_peer):
    transcript = on_both(broker, kafka_peer, confluent_group_lifecycle)
    assert transcript[0] == ("after the last member left", [(False, "ConsumerGroupState.EMPTY")])
    assert transcript[1][1] == "deleted"


def kafka_python_round_trip_and_group(bootstrap, name):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([KpNewTopic(name, num_partitions=2, replication_factor=1)])
    await_topic(bootstrap, name, 2)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    offsets = []
    for i, (key, value) in enumerate(RIDES):
        metadata = producer.send(name, key=key, value=value, partition=i % 2, headers=[("i", str(i).encode())]).get(timeout=30)
        offsets.append((metadata.partition, metadata.offset))
    producer.close()
    consumer = KafkaConsumer(name, bootstrap_servers=bootstrap, group_id=f"{name}-kp", auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=10_000)
    records = []
    for message in consumer:
        records.append((message.partition, message.offset, message.key, message.value, message.headers))
        if len(records) == len(RIDES):
            break
    consumer.commit()
    committed = sorted((tp.partition, consumer.committed(tp)) for tp in consumer.assignment())
    consumer.close()
    admin.close()
    return [offsets, sorted(records), committed]


def test_kafka_python_round_trip_and_group(broker, kafka_peer):
    on_both(broker, kafka_peer, kafka_python_round_trip_and_group)


def test_java_client_probe_says_the_same_on_both(broker, kafka_peer, tmp_path):
    from test_java import VERSIONS, compiled_probe

    cp = compiled_probe(VERSIONS[0], tmp_path)
    prefix = f"peer-java-{uuid.uuid4().hex[:8]}"
    outputs = []
    for bootstrap in [broker.bootstrap, kafka_peer]:
        result = subprocess.run(["java", "-cp", cp, "ClientProbe", bootstrap, prefix], capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, f"against {bootstrap}:\n{result.stdout}{result.stderr}"
        outputs.append(result.stdout.splitlines())
    assert outputs[0] == outputs[1]
    assert outputs[0][-1] == "ALL OK"


@pytest.mark.parametrize("probe", ["franz_go", "kafkajs"])
def test_go_and_node_probes_say_the_same_on_both(broker, kafka_peer, probe):
    import test_probes

    run = getattr(test_probes, probe)
    prefix = f"peer-{probe}-{uuid.uuid4().hex[:8]}"
    assert run(broker.bootstrap, prefix) == run(kafka_peer, prefix)
