"""Consumer groups with kafka-python and confluent-kafka: sharing partitions,
members leaving or dying, cooperative-sticky, static membership."""
import os
import signal
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer

from conftest import wait_for

PARTITIONS = 6
PER_PARTITION = 30


def make_topic(broker, topic):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result()
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.produce(topic, value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(20) == 0


def no_gaps(seen):
    return all(seen.get(p, set()) >= set(range(PER_PARTITION)) for p in range(PARTITIONS))


def owned_once(assignments):
    flat = [p for a in assignments for p in a]
    return sorted(flat) == list(range(PARTITIONS)) and all(assignments)


class ConfluentMember:
    """A confluent-kafka group member polled from the test thread."""

    def __init__(self, broker, topic, group, **extra):
        self.assigns = 0
        self.consumer = Consumer({
            "bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, **extra,
        })
        self.consumer.subscribe([topic], on_assign=self._on_assign)

    def _on_assign(self, consumer, partitions):
        self.assigns += 1

    def poll(self, seen):
        message = self.consumer.poll(0.05)
        if message is not None and message.error() is None:
            seen.setdefault(message.partition(), set()).add(message.offset())

    def partitions(self):
        return sorted(tp.partition for tp in self.consumer.assignment())


def poll_all(members, seen, predicate, what, timeout=45):
    def step():
        for m in members:
            m.poll(seen)
        return predicate()
    wait_for(step, timeout=timeout, interval=0, what=what)


def test_confluent_three_members_share_partitions_and_survive_leave_and_kill(broker, topic):
    make_topic(broker, topic)
    group = topic + "-group"
    members = [ConfluentMember(broker, topic, group) for _ in range(2)]
    # The third member is a separate process, so it can be killed outright.
    victim = subprocess.Popen([sys.executable, "-c", f"""
import sys
from confluent_kafka import Consumer
c = Consumer({{"bootstrap.servers": "{broker.bootstrap}", "group.id": "{group}", "auto.offset.reset": "earliest",
              "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}})
c.subscribe(["{topic}"])
announced = False
while True:
    c.poll(0.1)
    if c.assignment() and not announced:
        print("assigned", sorted(tp.partition for tp in c.assignment()), flush=True)
        announced = True
"""], stdout=subprocess.PIPE, text=True)
    try:
        seen = {}
        poll_all(members, seen, lambda: sum(len(m.partitions()) for m in members) == 4 and all(m.partitions() for m in members),
                 "a three-way split (two members here, one in the victim process)")
        victim_partitions = eval(victim.stdout.readline().split(" ", 1)[1])
        assert owned_once([m.partitions() for m in members] + [victim_partitions])
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        started = time.monotonic()
        poll_all(members, seen, lambda: owned_once([m.partitions() for m in members]) and no_gaps(seen),
                 "the survivors to take over the killed member's partitions")
        assert time.monotonic() - started >= 3, "takeover must wait for the session timeout"

        members[1].consumer.close()
        poll_all(members[:1], seen, lambda: members[0].partitions() == list(range(PARTITIONS)),
                 "the last member to own every partition after a clean leave")
        assert no_gaps(seen)
        members[0].consumer.close()
    finally:
        victim.kill()


def test_confluent_cooperative_sticky_rebalances_incrementally(broker, topic):
    make_topic(broker, topic)
    group = topic + "-coop"
    first = ConfluentMember(broker, topic, group, **{"partition.assignment.strategy": "cooperative-sticky"})
    seen = {}
    poll_all([first], seen, lambda: first.partitions() == list(range(PARTITIONS)), "the first member to own everything")
    second = ConfluentMember(broker, topic, group, **{"partition.assignment.strategy": "cooperative-sticky"})
    poll_all([first, second], seen, lambda: owned_once([first.partitions(), second.partitions()]) and no_gaps(seen),
             "an incremental split")
    assert len(first.partitions()) == 3 and len(second.partitions()) == 3
    first.consumer.close()
    second.consumer.close()


def test_confluent_static_member_rejoins_without_rebalance(broker, topic):
    make_topic(broker, topic)
    group = topic + "-static"
    static = {"group.instance.id": "static-a", "session.timeout.ms": 10000}
    a = ConfluentMember(broker, topic, group, **static)
    b = ConfluentMember(broker, topic, group, **{"group.instance.id": "static-b", "session.timeout.ms": 10000})
    seen = {}
    poll_all([a, b], seen, lambda: owned_once([a.partitions(), b.partitions()]), "two static members to split")
    before = a.partitions()
    b_assigns = b.assigns
    a.consumer.close()  # static members do not leave the group on close
    a = ConfluentMember(broker, topic, group, **static)
    poll_all([a, b], seen, lambda: a.partitions() == before, "the restarted static member to get its partitions back")
    for _ in range(20):
        b.poll(seen)
    assert b.assigns == b_assigns, "the other member saw no rebalance"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    described = admin.describe_consumer_groups([group])[group].result()
    assert len(described.members) == 2
    assert sorted(m.group_instance_id for m in described.members) == ["static-a", "static-b"]
    a.consumer.close()
    b.consumer.close()


def test_kafka_python_members_share_and_take_over(broker, topic):
    make_topic(broker, topic)
    group = topic + "-kp"
    seen = {}
    lock = threading.Lock()
    stop = {}
    consumers = {}

    def run(name):
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, auto_offset_reset="earliest",
                                 session_timeout_ms=6000, heartbeat_interval_ms=500)
        # kafka-python's leader assigns from the metadata it holds when the
        # join completes; with no initial rebalance delay a fast join can
        # beat its first metadata answer, and it then assigns nothing. Load
        # the topic's metadata before subscribing.
        assert consumer.partitions_for_topic(topic) == set(range(PARTITIONS))
        consumer.subscribe([topic])
        consumers[name] = consumer
        while not stop.get(name):
            for tp, messages in consumer.poll(timeout_ms=100).items():
                with lock:
                    seen.setdefault(tp.partition, set()).update(m.offset for m in messages)
        consumer.close()

    threads = {name: threading.Thread(target=run, args=(name,), daemon=True) for name in "abc"}
    for t in threads.values():
        t.start()

    def assignments(names):
        return [sorted(tp.partition for tp in consumers[n].assignment()) if n in consumers else [] for n in names]

    wait_for(lambda: owned_once(assignments("abc")) and no_gaps(seen), timeout=45, what="kafka-python three-way split")
    stop["c"] = True
    threads["c"].join(15)
    wait_for(lambda: owned_once(assignments("ab")), timeout=45, what="kafka-python takeover after a leave")
    stop["a"] = stop["b"] = True
    for t in threads.values():
        t.join(15)
