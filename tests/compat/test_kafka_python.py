"""kafka-python (the course's client) against runnel."""
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import InvalidConfigurationError, InvalidPartitionsError, TopicAlreadyExistsError

from conftest import CODECS


def consume(bootstrap, topic, count, partition=0, **kwargs):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=10000, **kwargs)
    consumer.assign([TopicPartition(topic, partition)])
    consumer.seek_to_beginning()
    out = []
    for message in consumer:
        out.append(message)
        if len(out) == count:
            break
    consumer.close()
    assert len(out) == count, f"got {len(out)} of {count}"
    return out


def test_round_trip_keeps_keys_values_headers_and_timestamps(broker, topic):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    base = 1_700_000_000_000
    for i in range(20):
        meta = producer.send(topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"%d" % i)], timestamp_ms=base + i).get(10)
        assert meta.offset == i
    producer.close()
    for i, m in enumerate(consume(broker.bootstrap, topic, 20)):
        assert (m.offset, m.key, m.value, m.headers, m.timestamp, m.timestamp_type) == (i, b"k%d" % i, b"v%d" % i, [("h", b"%d" % i)], base + i, 0)


@pytest.mark.parametrize("codec", CODECS)
def test_compression_codec(broker, topic, codec):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=20)
    futures = [producer.send(topic, value=(f"{codec}-{i}-" + "x" * (i % 40)).encode()) for i in range(300)]
    producer.flush()
    assert sorted(f.get(10).offset for f in futures) == list(range(300))
    values = [m.value.decode() for m in consume(broker.bootstrap, topic, 300)]
    assert values[123].startswith(f"{codec}-123-")


def test_keyed_partitioning_and_explicit_partitions(broker, topic):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic, 4, 1)])
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    seen = {}
    for i in range(80):
        key = b"zone-%d" % (i % 16)
        seen.setdefault(key, set()).add(producer.send(topic, key=key, value=b"r").get(10).partition)
    assert all(len(p) == 1 for p in seen.values())
    assert len(set().union(*seen.values())) >= 3
    assert producer.send(topic, value=b"pinned", partition=3).get(10).partition == 3
    admin.close()


def test_auto_creation_on_produce(broker, topic):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    assert producer.send(topic, value=b"first").get(10).offset == 0
    assert topic in KafkaAdminClient(bootstrap_servers=broker.bootstrap).list_topics()


def test_topic_admin(broker, topic):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "3600000"})])
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(topic, 2, 1)])
    with pytest.raises(InvalidConfigurationError):
        admin.create_topics([NewTopic(topic + "-bad", 1, 1, topic_configs={"not.a.config": "1"})])

    def configs():
        result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        resources = result[0].resources if isinstance(result, list) else None
        if resources is not None:
            return {c[0]: c[1] for c in resources[0][4]}
        return {k: v["value"] for k, v in result["topic"][topic].items()}

    assert configs()["retention.ms"] == "3600000"
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "7200000"})])
    assert configs()["retention.ms"] == "7200000"

    admin.create_partitions({topic: NewPartitions(total_count=5)})
    with pytest.raises(InvalidPartitionsError):
        admin.create_partitions({topic: NewPartitions(total_count=3)})
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for _ in range(10):
        producer.send(topic, value=b"x", partition=4).get(10)
    admin.delete_records({TopicPartition(topic, 4): 7})
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    assert consumer.beginning_offsets([TopicPartition(topic, 4)])[TopicPartition(topic, 4)] == 7
    assert len(consumer.partitions_for_topic(topic)) == 5

    admin.delete_topics([topic])
    assert topic not in admin.list_topics()
    admin.close()


def test_list_offsets_by_timestamp(broker, topic):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)
    base = 1_600_000_000_000
    for i in range(10):
        producer.send(topic, value=b"t", timestamp_ms=base + i * 1000).get(10)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    tp = TopicPartition(topic, 0)
    found = consumer.offsets_for_times({tp: base + 4500})[tp]
    assert (found.offset, found.timestamp) == (5, base + 5000)
    assert consumer.offsets_for_times({tp: base + 99_000})[tp] is None
    assert consumer.end_offsets([tp])[tp] == 10


def test_idempotent_producer(broker, topic):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all")
    futures = [producer.send(topic, value=b"%d" % i) for i in range(500)]
    producer.flush()
    assert sorted(f.get(10).offset for f in futures) == list(range(500))
    values = [int(m.value) for m in consume(broker.bootstrap, topic, 500)]
    assert values == list(range(500))
