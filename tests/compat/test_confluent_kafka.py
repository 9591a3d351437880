"""confluent-kafka (librdkafka 2.16) against runnel."""
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic

from conftest import CODECS


def produce(bootstrap, topic, records, **config):
    """Produces (key, value, kwargs) tuples; returns delivery offsets in order."""
    producer = Producer({"bootstrap.servers": bootstrap, **config})
    delivered = []

    def on_delivery(err, msg):
        assert err is None, err
        delivered.append((msg.partition(), msg.offset()))

    for key, value, extra in records:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery, **extra)
    assert producer.flush(20) == 0
    return delivered


def consume(bootstrap, topic, count, partition=0):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "compat", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, 0)])
    out = []
    while len(out) < count:
        message = consumer.poll(10)
        assert message is not None, f"got {len(out)} of {count}"
        assert message.error() is None, message.error()
        out.append(message)
    consumer.close()
    return out


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def test_round_trip_keeps_keys_values_headers_and_timestamps(broker, topic):
    base = 1_700_000_000_000
    records = [(b"k%d" % i, b"v%d" % i, {"headers": [("h", b"%d" % i)], "timestamp": base + i}) for i in range(20)]
    assert produce(broker.bootstrap, topic, records) == [(0, i) for i in range(20)]
    for i, m in enumerate(consume(broker.bootstrap, topic, 20)):
        assert (m.offset(), m.key(), m.value(), m.headers(), m.timestamp()) == (i, b"k%d" % i, b"v%d" % i, [("h", b"%d" % i)], (1, base + i))


@pytest.mark.parametrize("codec", CODECS)
def test_compression_codec(broker, topic, codec):
    records = [(None, (f"{codec}-{i}-" + "y" * (i % 40)).encode(), {}) for i in range(300)]
    offsets = produce(broker.bootstrap, topic, records, **{"compression.type": codec, "linger.ms": 20})
    assert sorted(o for _, o in offsets) == list(range(300))
    assert consume(broker.bootstrap, topic, 300)[200].value().startswith(f"{codec}-200-".encode())


def test_keyed_partitioning(broker, topic):
    client = admin(broker)
    client.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])[topic].result()
    records = [(b"zone-%d" % (i % 18), b"r", {}) for i in range(90)]
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    placements = {}
    for key, value, _ in records:
        producer.produce(topic, key=key, value=value, on_delivery=lambda err, msg: placements.setdefault(msg.key(), set()).add(msg.partition()))
    producer.flush(20)
    assert all(len(p) == 1 for p in placements.values())
    assert len(set().union(*placements.values())) >= 4


def test_auto_creation(broker, topic):
    produce(broker.bootstrap, topic, [(None, b"hello", {})])
    assert topic in admin(broker).list_topics(timeout=10).topics


def test_topic_admin(broker, topic):
    client = admin(broker)
    client.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1, config={"retention.ms": "3600000"})])[topic].result()
    with pytest.raises(KafkaException):
        client.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result()
    with pytest.raises(KafkaException):
        client.create_topics([NewTopic(topic + "-neg", num_partitions=1, replication_factor=1, config={"segment.ms": "0"})])[topic + "-neg"].result()

    def configs():
        resource = ConfigResource("topic", topic)
        return client.describe_configs([resource])[resource].result()

    entry = configs()["retention.ms"]
    assert (entry.value, entry.source) == ("3600000", 1)
    assert configs()["segment.bytes"].source == 5
    client.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET),
    ])])[ConfigResource("topic", topic)].result()
    assert configs()["retention.ms"].value == "7200000"
    with pytest.raises(KafkaException):
        client.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry("retention.ms", "never", incremental_operation=AlterConfigOpType.SET)])])[ConfigResource("topic", topic)].result()

    client.create_partitions([NewPartitions(topic, 4)])[topic].result()
    assert len(client.list_topics(topic, timeout=10).topics[topic].partitions) == 4
    produce(broker.bootstrap, topic, [(None, b"x", {"partition": 1})] * 10)
    result = client.delete_records([TopicPartition(topic, 1, 6)])
    assert next(iter(result.values())).result().low_watermark == 6
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wm"})
    assert consumer.get_watermark_offsets(TopicPartition(topic, 1), timeout=10) == (6, 10)
    consumer.close()

    client.delete_topics([topic])[topic].result()
    assert topic not in client.list_topics(timeout=10).topics


def test_log_append_time_topic_stamps_broker_time(broker, topic):
    client = admin(broker)
    client.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config={"message.timestamp.type": "LogAppendTime"})])[topic].result()
    produce(broker.bootstrap, topic, [(None, b"x", {"timestamp": 1000})])
    kind, ts = consume(broker.bootstrap, topic, 1)[0].timestamp()
    assert kind == 2 and ts > 1_600_000_000_000


def test_list_offsets_by_timestamp(broker, topic):
    base = 1_600_000_000_000
    produce(broker.bootstrap, topic, [(None, b"t", {"timestamp": base + i * 1000}) for i in range(10)], **{"linger.ms": 0, "batch.num.messages": 1})
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "times"})
    found = consumer.offsets_for_times([TopicPartition(topic, 0, base + 6500)], timeout=10)
    assert found[0].offset == 7
    consumer.close()


def test_idempotent_producer(broker, topic):
    records = [(None, b"%d" % i, {}) for i in range(1000)]
    offsets = produce(broker.bootstrap, topic, records, **{"enable.idempotence": True, "linger.ms": 2})
    assert sorted(o for _, o in offsets) == list(range(1000))
    assert [int(m.value()) for m in consume(broker.bootstrap, topic, 1000)] == list(range(1000))


def test_a_record_timestamped_hours_ahead_is_refused_and_the_rest_delivered(broker, topic):
    now = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "retries": 0})
    outcomes = {}

    def on_delivery(err, msg):
        outcomes[msg.value()] = err.code() if err else None

    producer.produce(topic, value=b"now", timestamp=now, on_delivery=on_delivery)
    producer.flush(20)
    producer.produce(topic, value=b"ahead", timestamp=now + 2 * 3600 * 1000, on_delivery=on_delivery)
    assert producer.flush(20) == 0
    assert outcomes == {b"now": None, b"ahead": KafkaError.INVALID_TIMESTAMP}


def test_a_topic_codec_rewrites_what_producers_send_and_consumers_read_it(broker, topic):
    client = admin(broker)
    client.create_topics([NewTopic(topic, 1, 1, config={"compression.type": "zstd", "compression.zstd.level": "9"})])[topic].result()
    records = [(b"zone-%d" % (i % 7), b"ride %d " % i + b"x" * (i % 50), {}) for i in range(500)]
    for codec in ("none", "gzip", "lz4"):
        produce(broker.bootstrap, topic, records, **{"compression.type": codec, "linger.ms": 5})
    got = consume(broker.bootstrap, topic, 1500)
    assert [(m.key(), m.value()) for m in got] == [(k, v) for k, v, _ in records] * 3
