"""The course's JSON producer and consumer, as written in the course, against
runnel: 266 NYC taxi rides to `rides_json` and back, field for field."""
import csv
import json
import subprocess
from decimal import Decimal
from datetime import datetime

from kafka import KafkaConsumer, KafkaProducer

from conftest import DATA, runnel_binary


class Ride:
    """The course's ride record: typed fields parsed from one CSV row."""

    def __init__(self, arr):
        self.vendor_id = int(arr[0])
        self.tpep_pickup_datetime = datetime.strptime(arr[1], "%Y-%m-%d %H:%M:%S")
        self.tpep_dropoff_datetime = datetime.strptime(arr[2], "%Y-%m-%d %H:%M:%S")
        self.passenger_count = int(arr[3])
        self.trip_distance = Decimal(arr[4])
        self.rate_code_id = int(arr[5])
        self.store_and_fwd_flag = arr[6]
        self.pu_location_id = int(arr[7])
        self.do_location_id = int(arr[8])
        self.payment_type = arr[9]
        self.fare_amount = Decimal(arr[10])
        self.extra = Decimal(arr[11])
        self.mta_tax = Decimal(arr[12])
        self.tip_amount = Decimal(arr[13])
        self.tolls_amount = Decimal(arr[14])
        self.improvement_surcharge = Decimal(arr[15])
        self.total_amount = Decimal(arr[16])
        self.congestion_surcharge = Decimal(arr[17])


def read_rides():
    with open(DATA / "rides.csv") as f:
        reader = csv.reader(f)
        next(reader)
        return [Ride(row) for row in reader]


def test_course_json_producer_and_consumer(broker):
    rides = read_rides()
    assert len(rides) == 266
    producer = KafkaProducer(
        bootstrap_servers=[broker.bootstrap],
        key_serializer=lambda key: str(key).encode(),
        value_serializer=lambda x: json.dumps(x.__dict__, default=str).encode("utf-8"),
    )
    offsets = []
    for ride in rides:
        record = producer.send(topic="rides_json", key=ride.pu_location_id, value=ride)
        offsets.append(record.get().offset)
    assert offsets == list(range(266))

    consumer = KafkaConsumer(
        "rides_json",
        bootstrap_servers=[broker.bootstrap],
        auto_offset_reset="earliest",
        key_deserializer=lambda key: int(key.decode("utf-8")),
        value_deserializer=lambda x: json.loads(x.decode("utf-8")),
        consumer_timeout_ms=10000,
    )
    received = []
    for message in consumer:
        received.append(message)
        if len(received) == 266:
            break
    consumer.close()
    assert len(received) == 266
    for ride, message in zip(rides, received):
        assert message.key == ride.pu_location_id
        assert message.value == json.loads(json.dumps(ride.__dict__, default=str))


def test_course_group_consumer_resumes_from_committed_offsets(broker):
    """The course's JSON consumer: group consumer.group.id.json-example.1,
    earliest, auto-commit. It reads all 266 rides; run again, it reads none."""
    producer = KafkaProducer(bootstrap_servers=[broker.bootstrap], key_serializer=lambda key: str(key).encode(),
                             value_serializer=lambda x: json.dumps(x.__dict__, default=str).encode("utf-8"))
    for ride in read_rides():
        producer.send(topic="rides_json_grouped", key=ride.pu_location_id, value=ride).get()

    def run_consumer(timeout_ms):
        consumer = KafkaConsumer(
            "rides_json_grouped",
            bootstrap_servers=[broker.bootstrap],
            auto_offset_reset="earliest",
            enable_auto_commit=True,
            key_deserializer=lambda key: int(key.decode("utf-8")),
            value_deserializer=lambda x: json.loads(x.decode("utf-8")),
            group_id="consumer.group.id.json-example.1",
            consumer_timeout_ms=timeout_ms,
        )
        rides = [message.value for message in consumer]
        consumer.close()
        return rides

    assert len(run_consumer(8000)) == 266
    assert run_consumer(4000) == []

    described = json.loads(runnel(broker, "group", "describe", "consumer.group.id.json-example.1", "--json"))
    assert [(p["topic"], p["committed"], p["lag"]) for p in described["partitions"]] == [("rides_json_grouped", 266, 0)]

    for ride in read_rides()[:10]:
        producer.send(topic="rides_json_grouped", key=ride.pu_location_id, value=ride).get()
    again = run_consumer(4000)
    assert [r["pu_location_id"] for r in again] == [r.pu_location_id for r in read_rides()[:10]]


def runnel(broker, *args):
    """Runs the runnel CLI against the test broker; returns its stdout."""
    result = subprocess.run([runnel_binary(), *args, "-b", broker.bootstrap], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_runnel_csv_load_read_by_kafka_python(broker):
    """`runnel produce --csv` yields 266 JSON rides keyed by PULocationID,
    with typed fields, as an independent client sees them."""
    subprocess.run([runnel_binary(), "produce", "rides_cli", "--csv", str(DATA / "rides.csv"), "--key", "PULocationID",
                    "-b", broker.bootstrap], check=True, capture_output=True, timeout=60)
    consumer = KafkaConsumer("rides_cli", bootstrap_servers=[broker.bootstrap], auto_offset_reset="earliest", consumer_timeout_ms=8000)
    messages = [m for m in consumer]
    consumer.close()
    assert len(messages) == 266
    with open(DATA / "rides.csv") as f:
        rows = list(csv.DictReader(f))
    for message, row in zip(messages, rows):
        assert message.key.decode() == row["PULocationID"]
        ride = json.loads(message.value)
        assert ride["PULocationID"] == int(row["PULocationID"])
        assert ride["trip_distance"] == float(row["trip_distance"])
        assert ride["store_and_fwd_flag"] == row["store_and_fwd_flag"]
        assert ride["tpep_pickup_datetime"] == row["tpep_pickup_datetime"]
