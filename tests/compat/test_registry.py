"""The Schema Registry with confluent-kafka's client and serializers, and
its REST API as documented by Confluent."""
import json
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import DATA, Broker

KEY_SCHEMA = json.dumps({"type": "record", "name": "RideRecordKey", "namespace": "com.datatalksclub.taxi",
                         "fields": [{"name": "vendor_id", "type": "int"}]})
VALUE_FIELDS = [
    {"name": "vendor_id", "type": "int"},
    {"name": "passenger_count", "type": "int"},
    {"name": "trip_distance", "type": "float"},
    {"name": "payment_type", "type": "int"},
    {"name": "total_amount", "type": "float"},
]
VALUE_SCHEMA = json.dumps({"type": "record", "name": "RideRecord", "namespace": "com.datatalksclub.taxi", "fields": VALUE_FIELDS})


def call(broker, method, path, body=None):
    """One REST call; returns (status, parsed JSON)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(broker.registry + path, data=data, method=method,
                                     headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def value_schema(extra_fields=(), replace=None):
    fields = [dict(f) for f in VALUE_FIELDS]
    if replace:
        for f in fields:
            if f["name"] == replace[0]:
                f["type"] = replace[1]
    return json.dumps({"type": "record", "name": "RideRecord", "namespace": "com.datatalksclub.taxi", "fields": fields + list(extra_fields)})


def read_rides():
    import csv
    with open(DATA / "rides.csv") as f:
        rows = list(csv.DictReader(f))
    return [({"vendor_id": int(r["VendorID"])},
             {"vendor_id": int(r["VendorID"]), "passenger_count": int(r["passenger_count"]), "trip_distance": float(r["trip_distance"]),
              "payment_type": int(r["payment_type"]), "total_amount": float(r["total_amount"])}) for r in rows]


def test_course_avro_producer_and_consumer(broker):
    registry = SchemaRegistryClient({"url": broker.registry})
    key_serializer = AvroSerializer(registry, KEY_SCHEMA)
    value_serializer = AvroSerializer(registry, VALUE_SCHEMA)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    rides = read_rides()
    for key, value in rides:
        producer.produce("rides_avro",
                         key=key_serializer(key, SerializationContext("rides_avro", MessageField.KEY)),
                         value=value_serializer(value, SerializationContext("rides_avro", MessageField.VALUE)))
    assert producer.flush(20) == 0
    assert {"rides_avro-key", "rides_avro-value"} <= set(registry.get_subjects())

    key_deserializer = AvroDeserializer(registry)
    value_deserializer = AvroDeserializer(registry)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "avro-readers", "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("rides_avro", 0, 0)])
    got = []
    while len(got) < len(rides):
        message = consumer.poll(10)
        assert message is not None and message.error() is None
        assert message.value()[0] == 0, "Confluent wire format: magic byte 0"
        got.append((key_deserializer(message.key(), SerializationContext("rides_avro", MessageField.KEY)),
                    value_deserializer(message.value(), SerializationContext("rides_avro", MessageField.VALUE))))
    consumer.close()
    assert len(got) == 266
    for (key, value), (got_key, got_value) in zip(rides, got):
        assert got_key == key
        assert got_value["vendor_id"] == value["vendor_id"] and got_value["payment_type"] == value["payment_type"]
        assert got_value["trip_distance"] == pytest.approx(value["trip_distance"], rel=1e-6)


def test_schema_evolution_and_levels(broker):
    subject = "evolving-value"
    status, body = call(broker, "POST", f"/subjects/{subject}/versions", {"schema": value_schema()})
    assert status == 200
    first_id = body["id"]
    assert call(broker, "POST", f"/subjects/{subject}/versions", {"schema": value_schema()}) == (200, {"id": first_id}), "idempotent"

    optional = {"name": "pu_location_id", "type": ["null", "long"], "default": None}
    status, body = call(broker, "POST", f"/compatibility/subjects/{subject}/versions/latest?verbose=true", {"schema": value_schema([optional])})
    assert (status, body["is_compatible"]) == (200, True)
    assert call(broker, "POST", f"/subjects/{subject}/versions", {"schema": value_schema([optional])})[0] == 200

    incompatible = value_schema(replace=("vendor_id", "string"))
    status, body = call(broker, "POST", f"/subjects/{subject}/versions", {"schema": incompatible})
    assert status == 409 and body["error_code"] == 409
    status, body = call(broker, "POST", f"/compatibility/subjects/{subject}/versions/latest?verbose=true", {"schema": incompatible})
    assert body["is_compatible"] is False and body["messages"]

    # A required field without a default: fine FORWARD, refused BACKWARD.
    required = value_schema([optional, {"name": "tip", "type": "double"}])
    assert call(broker, "POST", f"/compatibility/subjects/{subject}/versions/latest", {"schema": required})[1]["is_compatible"] is False
    assert call(broker, "PUT", f"/config/{subject}", {"compatibility": "FORWARD"}) == (200, {"compatibility": "FORWARD"})
    assert call(broker, "POST", f"/compatibility/subjects/{subject}/versions/latest", {"schema": required})[1]["is_compatible"] is True
    assert call(broker, "PUT", f"/config/{subject}", {"compatibility": "FULL"})[0] == 200
    assert call(broker, "POST", f"/compatibility/subjects/{subject}/versions/latest", {"schema": required})[1]["is_compatible"] is False

    # Transitive levels check every version, not just the latest.
    dropped = value_schema()  # version 2 added pu_location_id; dropping it is fine against v1 and, with a default, v2
    assert call(broker, "PUT", f"/config/{subject}", {"compatibility": "BACKWARD_TRANSITIVE"})[0] == 200
    assert call(broker, "POST", f"/compatibility/subjects/{subject}/versions", {"schema": dropped})[1]["is_compatible"] is True
    renamed = json.dumps({"type": "record", "name": "Other", "fields": VALUE_FIELDS})
    assert call(broker, "POST", f"/compatibility/subjects/{subject}/versions", {"schema": renamed})[1]["is_compatible"] is False
    for level in ["NONE", "BACKWARD", "FORWARD_TRANSITIVE", "FULL_TRANSITIVE"]:
        assert call(broker, "PUT", f"/config/{subject}", {"compatibility": level}) == (200, {"compatibility": level})
    assert call(broker, "GET", f"/config/{subject}") == (200, {"compatibilityLevel": "FULL_TRANSITIVE"})
    assert call(broker, "GET", "/config") == (200, {"compatibilityLevel": "BACKWARD"})
    assert call(broker, "GET", "/config/unconfigured")[1]["error_code"] == 40408
    assert call(broker, "GET", "/config/unconfigured?defaultToGlobal=true") == (200, {"compatibilityLevel": "BACKWARD"})


def test_deletes_modes_references_and_bad_input(broker):
    subject = "lifecycle-value"
    ids = []
    for extra in [[], [{"name": "x", "type": ["null", "int"], "default": None}]]:
        ids.append(call(broker, "POST", f"/subjects/{subject}/versions", {"schema": value_schema(extra)})[1]["id"])
    assert call(broker, "GET", f"/subjects/{subject}/versions") == (200, [1, 2])
    assert call(broker, "GET", f"/schemas/ids/{ids[1]}/versions") == (200, [{"subject": subject, "version": 2}])
    assert call(broker, "DELETE", f"/subjects/{subject}/versions/2?permanent=true")[1]["error_code"] == 40407
    assert call(broker, "DELETE", f"/subjects/{subject}/versions/2") == (200, 2)
    assert call(broker, "GET", f"/subjects/{subject}/versions") == (200, [1])
    assert call(broker, "GET", f"/subjects/{subject}/versions?deleted=true") == (200, [1, 2])
    assert call(broker, "DELETE", f"/subjects/{subject}/versions/2?permanent=true") == (200, 2)
    assert call(broker, "DELETE", f"/subjects/{subject}?permanent=true")[1]["error_code"] == 40405
    assert call(broker, "DELETE", f"/subjects/{subject}") == (200, [1])
    assert subject not in call(broker, "GET", "/subjects")[1]
    assert subject in call(broker, "GET", "/subjects?deleted=true")[1]
    assert call(broker, "DELETE", f"/subjects/{subject}?permanent=true") == (200, [1])
    assert call(broker, "GET", f"/schemas/ids/{ids[0]}")[0] == 200, "ids stay resolvable"

    # References: a record that uses a type registered under another subject.
    address = json.dumps({"type": "record", "name": "Address", "namespace": "geo", "fields": [{"name": "zone", "type": "int"}]})
    assert call(broker, "POST", "/subjects/address/versions", {"schema": address})[0] == 200
    trip = json.dumps({"type": "record", "name": "Trip", "fields": [{"name": "from", "type": "geo.Address"}]})
    status, body = call(broker, "POST", "/subjects/trip-value/versions",
                        {"schema": trip, "references": [{"name": "geo.Address", "subject": "address", "version": 1}]})
    assert status == 200, body
    fetched = call(broker, "GET", "/subjects/trip-value/versions/1")[1]
    assert fetched["references"] == [{"name": "geo.Address", "subject": "address", "version": 1}]

    # Modes.
    assert call(broker, "PUT", "/mode/frozen", {"mode": "READONLY"}) == (200, {"mode": "READONLY"})
    assert call(broker, "POST", "/subjects/frozen/versions", {"schema": "\"int\""})[1]["error_code"] == 42205
    assert call(broker, "GET", "/mode") == (200, {"mode": "READWRITE"})
    assert call(broker, "PUT", "/mode", {"mode": "SIDEWAYS"})[1]["error_code"] == 42204

    # Bad input: each gets its documented code, never a 500.
    cases = [
        ("POST", "/subjects/bad/versions", b"{not json", 400),
        ("POST", "/subjects/bad/versions", {"schema": "{\"type\": \"recordz\"}"}, 42201),
        ("POST", "/subjects/bad/versions", {"schema": "{\"type\":\"record\",\"name\":\"R\"}"}, 42201),
        ("GET", "/subjects/unknown/versions/1", None, 40401),
        ("GET", "/subjects/address/versions/9", None, 40402),
        ("GET", "/subjects/address/versions/zero", None, 42202),
        ("GET", "/schemas/ids/9999", None, 40403),
        ("PUT", "/config", {"compatibility": "SIDEWAYS"}, 42203),
        ("POST", "/subjects/address", {"schema": "\"string\""}, 40403),
    ]
    for method, path, body, code in cases:
        status, answer = call(broker, method, path, body)
        assert status < 500 and answer["error_code"] == code, (method, path, status, answer)


def test_ids_survive_a_restart(tmp_path):
    first = Broker(tmp_path / "data")
    try:
        ids = [call(first, "POST", f"/subjects/s{i}-value/versions", {"schema": json.dumps({"type": "record", "name": f"R{i}", "fields": []})})[1]["id"] for i in range(3)]
        call(first, "PUT", "/config/s0-value", {"compatibility": "NONE"})
    finally:
        first.stop()
    second = Broker(tmp_path / "data")
    try:
        for i, schema_id in enumerate(ids):
            assert call(second, "GET", f"/subjects/s{i}-value/versions/1")[1]["id"] == schema_id
        assert call(second, "GET", "/config/s0-value") == (200, {"compatibilityLevel": "NONE"})
        new = call(second, "POST", "/subjects/s9-value/versions", {"schema": json.dumps({"type": "record", "name": "R9", "fields": []})})[1]["id"]
        assert new not in ids, "ids are never reused"
    finally:
        second.stop()


def test_json_schema_serializer_and_runnel_consume(broker):
    """confluent-kafka's JSONSerializer registers a JSON Schema; runnel's
    consume decodes what it wrote."""
    import subprocess
    from confluent_kafka.schema_registry.json_schema import JSONSerializer
    from conftest import runnel_binary

    schema = json.dumps({"type": "object", "title": "Ride", "properties": {"vendor_id": {"type": "integer"}, "total_amount": {"type": "number"}},
                         "required": ["vendor_id"]})
    registry = SchemaRegistryClient({"url": broker.registry})
    serialize = JSONSerializer(schema, registry)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce("rides_json_schema", value=serialize({"vendor_id": 2, "total_amount": 9.3}, SerializationContext("rides_json_schema", MessageField.VALUE)))
    assert producer.flush(10) == 0
    latest = registry.get_latest_version("rides_json_schema-value")
    assert latest.schema.schema_type == "JSON"
    out = subprocess.run([runnel_binary(), "consume", "rides_json_schema", "--format", "json", "--no-follow", "-b", broker.bootstrap],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out) == {"vendor_id": 2, "total_amount": 9.3}
    incompatible = json.dumps({"type": "object", "properties": {"vendor_id": {"type": "string"}}})
    status, body = call(broker, "POST", "/subjects/rides_json_schema-value/versions", {"schema": incompatible, "schemaType": "JSON"})
    assert status == 409, body


def test_protobuf_schemas(broker):
    ride = 'syntax = "proto3";\npackage taxi;\nmessage Ride {\n  int32 vendor_id = 1;\n  float total_amount = 2;\n}\n'
    status, body = call(broker, "POST", "/subjects/rides_proto-value/versions", {"schema": ride, "schemaType": "PROTOBUF"})
    assert status == 200, body
    fetched = call(broker, "GET", "/subjects/rides_proto-value/versions/latest")[1]
    assert fetched["schemaType"] == "PROTOBUF" and fetched["schema"] == ride
    assert call(broker, "POST", "/subjects/rides_proto-value/versions", {"schema": ride.replace("\n", " "), "schemaType": "PROTOBUF"}) == (200, {"id": body["id"]}), \
        "whitespace does not make a new schema"
    added = ride.replace("}\n", "  string zone = 3;\n}\n")
    assert call(broker, "POST", "/subjects/rides_proto-value/versions", {"schema": added, "schemaType": "PROTOBUF"})[0] == 200
    retyped = ride.replace("int32 vendor_id", "string vendor_id")
    status, body = call(broker, "POST", "/subjects/rides_proto-value/versions", {"schema": retyped, "schemaType": "PROTOBUF"})
    assert status == 409 and "FIELD_KIND_CHANGED" in body["message"]
    assert call(broker, "POST", "/subjects/bad-proto/versions", {"schema": "message {", "schemaType": "PROTOBUF"})[1]["error_code"] == 42201
    assert call(broker, "GET", "/schemas/types") == (200, ["JSON", "PROTOBUF", "AVRO"])


def test_import_mode_keeps_given_ids(broker):
    schema = json.dumps({"type": "record", "name": "Imported", "fields": [{"name": "a", "type": "int"}]})
    status, body = call(broker, "POST", "/subjects/migrated/versions", {"schema": schema, "id": 500, "version": 3})
    assert body["error_code"] == 42205, "ids can only be given in IMPORT mode"
    assert call(broker, "PUT", "/mode/migrated", {"mode": "IMPORT"}) == (200, {"mode": "IMPORT"})
    assert call(broker, "POST", "/subjects/migrated/versions", {"schema": schema, "id": 500, "version": 3}) == (200, {"id": 500})
    assert call(broker, "GET", "/subjects/migrated/versions/3")[1]["id"] == 500
    other = json.dumps({"type": "record", "name": "Other", "fields": []})
    assert call(broker, "POST", "/subjects/migrated/versions", {"schema": other, "id": 500, "version": 4})[1]["error_code"] == 42207
    call(broker, "PUT", "/mode/migrated", {"mode": "READWRITE"})
    fresh = call(broker, "POST", "/subjects/after-import/versions", {"schema": other})[1]["id"]
    assert fresh > 500, "new ids continue after imported ones"
