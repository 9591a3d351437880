"""An exactly-once consume-transform-produce loop, as a separate process so
tests can SIGKILL it: reads rides from SOURCE, writes one
`pickup,total` record per ride to SINK, and commits its input offsets
inside the same transaction. Exits 0 once every input record is done.

usage: txn_processor.py BOOTSTRAP SOURCE SINK GROUP TRANSACTIONAL_ID
"""
import csv
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

BATCH = 2
# Time each transaction spends "working", so a kill lands mid-stream.
WORK_SECONDS = 0.01


def transform(ride: bytes) -> bytes:
    row = next(csv.reader([ride.decode()]))
    return f"{row[7]},{row[16]}".encode()


def main():
    bootstrap, source, sink, group, transactional_id = sys.argv[1:6]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 0})
    producer.init_transactions(60)
    partitions = sorted(consumer.list_topics(source, timeout=30).topics[source].partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(source, p), timeout=30)[1] for p in partitions}
    committed = consumer.committed([TopicPartition(source, p) for p in partitions], timeout=60)
    consumer.assign(committed)
    positions = {tp.partition: max(tp.offset, 0) for tp in committed}
    while any(positions[p] < ends[p] for p in partitions):
        messages = [m for m in consumer.consume(BATCH, timeout=0.5) if not m.error()]
        if not messages:
            continue
        producer.begin_transaction()
        time.sleep(WORK_SECONDS)
        for m in messages:
            producer.produce(sink, key=f"{m.partition()}:{m.offset()}".encode(), value=transform(m.value()), partition=0)
            positions[m.partition()] = m.offset() + 1
        offsets = [TopicPartition(source, p, positions[p]) for p in partitions]
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 60)
        producer.commit_transaction(60)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
