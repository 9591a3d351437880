"""Consumer groups under `group.initial.rebalance.delay.ms=3000`, Apache
Kafka's own default (runnel's is 0, for quick local starts): consumers
that start together land in one generation. With the same setting, runnel
and Apache Kafka must rebalance alike: cooperative-sticky joins, a third
member joining, a member unsubscribing, and a static member restarting
within its session without a rebalance for the others. Each scenario runs
against both, with librdkafka, the Java client (each member polled by its
own thread, as applications do) and franz-go, and the assignment and
revocation events each member sees must be the same. A second set changes
subscriptions: a member adding and dropping a topic, a pattern
subscription meeting a new topic, and (librdkafka and Java, as franz-go has
no poll deadline) a member that stops polling past
`max.poll.interval.ms` and comes back."""
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from conftest import ROOT, Broker, wait_for
from test_java import VERSIONS, compiled_probe
from test_peer import create_topic

DELAY_MS = "3000"


@pytest.fixture(scope="module")
def delayed_runnel(tmp_path_factory):
    broker = Broker(tmp_path_factory.mktemp("runnel-delayed"), "--group-initial-rebalance-delay-ms", DELAY_MS)
    yield broker.bootstrap
    broker.stop()


@pytest.fixture(scope="module")
def delayed_kafka(tmp_path_factory):
    """A second Apache Kafka, with its default initial rebalance delay
    (the shared peer runs with 0, as runnel does by default)."""
    work = tmp_path_factory.mktemp("kafka-delayed")
    started = subprocess.run([str(ROOT / "scripts" / "kafka-peer"), "start", str(work), f"group.initial.rebalance.delay.ms={DELAY_MS}"],
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    yield (work / "bootstrap").read_text().strip()
    subprocess.run([str(ROOT / "scripts" / "kafka-peer"), "stop", str(work)], check=False, timeout=60)


def make_topic(bootstrap, name):
    create_topic(bootstrap, name, 6)


class Member:
    """A cooperative-sticky librdkafka member that records the partitions
    each assignment, revocation and loss moved. `topics` is a list of
    topics or a `^pattern`."""

    def __init__(self, bootstrap, topics, group, **extra):
        self.events = []
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group, "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest", **extra,
        })
        self.subscribe(topics if isinstance(topics, list) else [topics])

    def subscribe(self, topics):
        self.consumer.subscribe(topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost)

    def _assigned(self, consumer, partitions):
        if partitions:
            self.events.append(f"+{len(partitions)}")

    def _revoked(self, consumer, partitions):
        if partitions:
            self.events.append(f"-{len(partitions)}")

    def _lost(self, consumer, partitions):
        if partitions:
            self.events.append(f"lost {len(partitions)}")

    def owned(self):
        return sorted((tp.topic, tp.partition) for tp in self.consumer.assignment())

    def topics(self, prefix):
        """The topics it owns partitions of, without the run's prefix."""
        return sorted({topic.removeprefix(prefix) for topic, _ in self.owned()})

    def taken(self):
        """The events since the last call."""
        events, self.events = self.events, []
        return events


def settle(members, counts, what):
    """Polls every member until each owns the given number of partitions."""
    def step():
        for m in members:
            m.consumer.poll(0.05)
        return [len(m.owned()) for m in members] == counts
    wait_for(step, timeout=60, interval=0, what=what)


def quiet(members, seconds=1.0):
    """Keeps polling a while, so late events are counted in their step."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for m in members:
            m.consumer.poll(0.05)


def librdkafka_rebalances(bootstrap, name):
    make_topic(bootstrap, name)
    transcript = {}
    a, b = Member(bootstrap, name, f"{name}-co"), Member(bootstrap, name, f"{name}-co")
    settle([a, b], [3, 3], "two members starting together to split the partitions")
    transcript["start together"] = (a.taken(), b.taken())
    c = Member(bootstrap, name, f"{name}-co")
    settle([a, b, c], [2, 2, 2], "a third member to get its share")
    quiet([a, b, c])
    transcript["third joins"] = (a.taken(), b.taken(), c.taken())
    c.consumer.unsubscribe()
    settle([a, b, c], [3, 3, 0], "the others to take the unsubscribed member's partitions")
    quiet([a, b, c])
    transcript["third unsubscribes"] = (a.taken(), b.taken(), c.taken())
    for m in (a, b, c):
        m.consumer.close()

    static = {"session.timeout.ms": 20000}
    s1 = Member(bootstrap, name, f"{name}-static", **{"group.instance.id": "s1"}, **static)
    s2 = Member(bootstrap, name, f"{name}-static", **{"group.instance.id": "s2"}, **static)
    settle([s1, s2], [3, 3], "two static members to split the partitions")
    before = s1.owned()
    s1.taken(), s2.taken()
    s1.consumer.close()
    s1 = Member(bootstrap, name, f"{name}-static", **{"group.instance.id": "s1"}, **static)
    settle([s1, s2], [3, 3], "the restarted static member to rejoin")
    quiet([s1, s2], 2.0)
    transcript["static restart"] = (s1.owned() == before, s1.taken(), s2.taken())
    for m in (s1, s2):
        m.consumer.close()
    return transcript


def alike_on_both(program, delayed_runnel, delayed_kafka, prefix):
    """Runs `program(bootstrap, name)` on both brokers; the transcripts
    must be equal. Returns runnel's."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    runnel, kafka = program(delayed_runnel, name), program(delayed_kafka, name)
    assert runnel == kafka, f"runnel: {runnel}\nkafka:  {kafka}"
    return runnel


def test_librdkafka_rebalances_alike_with_the_initial_delay(delayed_runnel, delayed_kafka):
    runnel = alike_on_both(librdkafka_rebalances, delayed_runnel, delayed_kafka, "delay")
    assert runnel["start together"] == (["+3"], ["+3"]), "one generation: nobody gets everything first"
    assert runnel["static restart"][0] and runnel["static restart"][2] == [], "the other static member sees nothing"


def franz_probe():
    probe = os.environ.get("RUNNEL_FRANZ_PROBE")
    if not probe or not Path(probe).exists():
        pytest.fail("RUNNEL_FRANZ_PROBE must name the built franz-go probe; scripts/test builds it")
    return probe


def probe_on_both(delayed_runnel, delayed_kafka, name, make_topics, command):
    """Runs a probe program (`command(bootstrap)`) against both brokers,
    after `make_topics(bootstrap)`, and asserts that the lines it prints
    starting with `|` are the same; returns runnel's."""
    transcripts = {}
    for label, bootstrap in [("runnel", delayed_runnel), ("kafka", delayed_kafka)]:
        make_topics(bootstrap, name)
        result = subprocess.run(command(bootstrap), capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, f"{label}:\n{result.stdout}{result.stderr}"
        transcripts[label] = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert transcripts["runnel"] == transcripts["kafka"], f"runnel: {transcripts['runnel']}\nkafka:  {transcripts['kafka']}"
    return transcripts["runnel"]


@pytest.mark.parametrize("version", VERSIONS)
def test_java_rebalances_alike_with_the_initial_delay(delayed_runnel, delayed_kafka, tmp_path, version):
    cp = compiled_probe(version, tmp_path, "RebalanceProbe")
    name = f"delay-java-{uuid.uuid4().hex[:8]}"
    transcript = probe_on_both(delayed_runnel, delayed_kafka, name, make_topic, lambda bootstrap: ["java", "-cp", cp, "RebalanceProbe", bootstrap, name])
    assert "| start together: [+3] [+3]" in transcript


def test_franz_go_rebalances_alike_with_the_initial_delay(delayed_runnel, delayed_kafka):
    probe, name = franz_probe(), f"delay-franz-{uuid.uuid4().hex[:8]}"
    transcript = probe_on_both(delayed_runnel, delayed_kafka, name, make_topic, lambda bootstrap: [probe, "rebalance", bootstrap, name])
    assert "| start together: [+3] [+3]" in transcript

def librdkafka_subscription_changes(bootstrap, name):
    probe_topics(bootstrap, name)
    transcript = {}
    a, b = Member(bootstrap, [f"{name}-a"], f"{name}-subs"), Member(bootstrap, [f"{name}-a"], f"{name}-subs")
    settle([a, b], [2, 2], "two members to split one topic")
    a.taken(), b.taken()
    a.subscribe([f"{name}-a", f"{name}-b"])
    settle([a, b], [4, 4], "a member adding a topic to take all of it")
    quiet([a, b])
    transcript["one member adds a topic"] = (a.taken(), b.taken(), a.topics(name), b.topics(name))
    a.subscribe([f"{name}-a"])
    settle([a, b], [2, 2], "the member dropping the topic again")
    quiet([a, b])
    transcript["and drops it"] = (a.taken(), b.taken(), a.topics(name), b.topics(name))
    for m in (a, b):
        m.consumer.close()

    fresh = {"topic.metadata.refresh.interval.ms": 1000}
    c, d = Member(bootstrap, f"^{name}-w-.*", f"{name}-wild", **fresh), Member(bootstrap, f"^{name}-w-.*", f"{name}-wild", **fresh)
    settle([c, d], [2, 2], "two pattern members to split the one matching topic")
    c.taken(), d.taken()
    create_topic(bootstrap, f"{name}-w-2", 4)
    settle([c, d], [4, 4], "the pattern members to share the new matching topic")
    quiet([c, d])
    transcript["a new topic matches"] = (c.taken(), d.taken(), c.topics(name), d.topics(name))
    for m in (c, d):
        m.consumer.close()

    deadline = {"session.timeout.ms": 6000, "max.poll.interval.ms": 7000}
    e, f = Member(bootstrap, [f"{name}-a"], f"{name}-slow", **deadline), Member(bootstrap, [f"{name}-a"], f"{name}-slow", **deadline)
    settle([e, f], [2, 2], "two members to split one topic")
    e.taken(), f.taken()
    settle([f], [4], "the member that kept polling to take the other's partitions")
    quiet([f])
    transcript["a member stops polling"] = (e.taken(), f.taken())
    settle([e, f], [2, 2], "the member that polls again to get its share back")
    quiet([e, f])
    transcript["and polls again"] = (e.taken(), f.taken())
    for m in (e, f):
        m.consumer.close()
    return transcript


def test_librdkafka_subscription_changes_alike_with_the_initial_delay(delayed_runnel, delayed_kafka):
    runnel = alike_on_both(librdkafka_subscription_changes, delayed_runnel, delayed_kafka, "subs")
    assert runnel["a new topic matches"][2:] == (["-w-1", "-w-2"], ["-w-1", "-w-2"]), "both members share the new topic"


def probe_topics(bootstrap, name):
    for topic in ("a", "b", "w-1"):
        create_topic(bootstrap, f"{name}-{topic}", 4)


@pytest.mark.parametrize("version", VERSIONS)
def test_java_subscription_changes_alike_with_the_initial_delay(delayed_runnel, delayed_kafka, tmp_path, version):
    cp = compiled_probe(version, tmp_path, "RebalanceProbe")
    name = f"subs-java-{uuid.uuid4().hex[:8]}"
    transcript = probe_on_both(delayed_runnel, delayed_kafka, name, probe_topics, lambda bootstrap: ["java", "-cp", cp, "RebalanceProbe", bootstrap, name, "changes"])
    assert len(transcript) == 5


def test_franz_go_subscription_changes_alike_with_the_initial_delay(delayed_runnel, delayed_kafka):
    probe, name = franz_probe(), f"subs-franz-{uuid.uuid4().hex[:8]}"
    transcript = probe_on_both(delayed_runnel, delayed_kafka, name, probe_topics, lambda bootstrap: [probe, "subscription-changes", bootstrap, name])
    assert len(transcript) == 3
