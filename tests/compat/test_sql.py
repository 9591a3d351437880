"""The SQL service's REST API (ksqlDB's, on the port `runnel serve` gives it)
with a real HTTP client, over the course's rides: statements on /ksql, push
queries on /query and /query-stream over HTTP/1.1 and HTTP/2, inserts,
closing a query, and the catalog and queries surviving a restart."""
import asyncio
import csv
import json
import os
import re
import subprocess
import threading
import time
from collections import Counter

import httpx
import pytest
from confluent_kafka import Consumer, Producer

from conftest import DATA, Broker, runnel_binary

EARLIEST = {"ksql.streams.auto.offset.reset": "earliest"}


def rides():
    with open(DATA / "rides.csv") as f:
        return list(csv.DictReader(f))


def produce_rides(bootstrap, topic):
    producer = Producer({"bootstrap.servers": bootstrap})
    for ride in rides():
        value = {
            "VendorID": ride["VendorID"],
            "trip_distance": float(ride["trip_distance"]),
            "payment_type": ride["payment_type"],
            "PULocationID": int(ride["PULocationID"]),
            "total_amount": float(ride["total_amount"]),
        }
        producer.produce(topic, key=ride["PULocationID"], value=json.dumps(value))
    assert producer.flush(30) == 0


def ksql(sql_url, statements, properties=None, expect=200):
    response = httpx.post(f"{sql_url}/ksql", json={"ksql": statements, "streamsProperties": properties or {}},
                          headers={"Accept": "application/vnd.ksql.v1+json"}, timeout=60)
    assert response.status_code == expect, response.text
    return response.json()


def latest_values(bootstrap, topic, expected_keys, deadline_s=60):
    """The latest value of each key of `topic`, read until every expected key
    has one that parses, or the deadline."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{topic}-{time.time()}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    latest = {}
    deadline = time.time() + deadline_s
    try:
        while time.time() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                if set(latest) >= expected_keys and message is None:
                    return latest
                continue
            latest[message.key().decode()] = json.loads(message.value()) if message.value() else None
    finally:
        consumer.close()
    return latest


CREATE_RIDES = ("CREATE STREAM ride_streams (VendorID VARCHAR, trip_distance DOUBLE, payment_type VARCHAR, "
                "total_amount DOUBLE) WITH (KAFKA_TOPIC='rides', VALUE_FORMAT='JSON');")


@pytest.fixture(scope="module")
def sql(broker):
    produce_rides(broker.bootstrap, "rides")
    [created] = ksql(broker.sql, CREATE_RIDES)
    assert created["@type"] == "currentStatus"
    assert created["commandStatus"]["status"] == "SUCCESS"
    assert created["commandStatus"]["message"] == "Stream created"
    assert created["commandId"] == "stream/`RIDE_STREAMS`/create"
    return broker


def test_listings_and_descriptions(sql):
    [streams] = ksql(sql.sql, "SHOW STREAMS;")
    assert streams["@type"] == "streams"
    assert {"type": "STREAM", "name": "RIDE_STREAMS", "topic": "rides", "keyFormat": "KAFKA", "valueFormat": "JSON",
            "isWindowed": False} in streams["streams"]
    [described] = ksql(sql.sql, "DESCRIBE ride_streams;")
    fields = described["sourceDescription"]["fields"]
    assert [f["name"] for f in fields] == ["VENDORID", "TRIP_DISTANCE", "PAYMENT_TYPE", "TOTAL_AMOUNT"]
    assert fields[1]["schema"] == {"type": "DOUBLE", "fields": None, "memberSchema": None}
    assert described["sourceDescription"]["partitions"] == 1
    [topics] = ksql(sql.sql, "LIST TOPICS;")
    assert "rides" in [t["name"] for t in topics["topics"]]


def test_a_bad_statement_is_refused_with_the_statement_and_what_ran_before(sql):
    # A request that does not parse runs nothing.
    body = ksql(sql.sql, "SHOW STREAMS;\nSELEKT * FROM ride_streams;", expect=400)
    assert body["@type"] == "statement_error"
    assert body["error_code"] == 40001
    assert "SELEKT" in body["statementText"]
    assert "line 2:1" in body["message"]
    assert body["entities"] == []
    # One that parses runs until a statement fails.
    unknown = ksql(sql.sql, "SHOW STREAMS; DESCRIBE no_such_stream;", expect=400)
    assert unknown["error_code"] == 40001
    assert unknown["statementText"] == "DESCRIBE no_such_stream;"
    assert unknown["entities"][0]["@type"] == "streams"
    query = ksql(sql.sql, "SELECT * FROM ride_streams EMIT CHANGES;", expect=400)
    assert query["error_code"] == 40002
    missing_topic = ksql(sql.sql, "CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='no_such_topic', VALUE_FORMAT='JSON');", expect=400)
    assert "does not exist" in missing_topic["message"]
    malformed = httpx.post(f"{sql.sql}/ksql", content=b"{not json", timeout=10)
    assert malformed.status_code == 400 and malformed.json()["error_code"] == 40000


def push_rows(url, path, body, http2=False, accept=None):
    """A push query's whole response, over HTTP/2 with prior knowledge when
    asked."""
    headers = {"Accept": accept} if accept else {}
    with httpx.Client(http1=not http2, http2=http2, timeout=60) as client:
        response = client.post(f"{url}{path}", json=body, headers=headers)
        assert response.status_code == 200, response.text
        if http2:
            assert response.http_version == "HTTP/2"
        return response


@pytest.mark.parametrize("http2", [False, True])
def test_query_stream_sends_a_header_then_rows(sql, http2):
    response = push_rows(sql.sql, "/query-stream", {
        "sql": "SELECT VendorID, total_amount FROM ride_streams WHERE payment_type = '1' EMIT CHANGES LIMIT 5;",
        "properties": {"auto.offset.reset": "earliest"}}, http2=http2)
    assert response.headers["content-type"] == "application/vnd.ksqlapi.delimited.v1"
    lines = [json.loads(line) for line in response.text.splitlines()]
    header, rows = lines[0], lines[1:]
    assert header["columnNames"] == ["VENDORID", "TOTAL_AMOUNT"]
    assert header["columnTypes"] == ["STRING", "DOUBLE"]
    assert header["queryId"].startswith("transient_RIDE_STREAMS_")
    card = [r for r in rides() if r["payment_type"] == "1"][:5]
    assert rows == [[r["VendorID"], float(r["total_amount"])] for r in card]


def test_query_answers_a_json_array_ending_with_the_limit(sql):
    response = push_rows(sql.sql, "/query", {"ksql": "SELECT * FROM ride_streams EMIT CHANGES LIMIT 3;",
                                             "streamsProperties": EARLIEST})
    body = json.loads(response.text)
    assert body[0]["header"]["schema"] == "`VENDORID` STRING, `TRIP_DISTANCE` DOUBLE, `PAYMENT_TYPE` STRING, `TOTAL_AMOUNT` DOUBLE"
    assert [len(item["row"]["columns"]) for item in body[1:4]] == [4, 4, 4]
    assert body[4] == {"finalMessage": "Limit Reached"}
    as_array = push_rows(sql.sql, "/query-stream", {"sql": "SELECT VendorID FROM ride_streams EMIT CHANGES LIMIT 2;",
                                                    "properties": EARLIEST}, accept="application/json")
    array = as_array.json()
    assert array[0]["columnNames"] == ["VENDORID"] and len(array) == 3


def test_close_query_ends_a_push_query(sql):
    header = {}
    ended = threading.Event()

    def run():
        with httpx.Client(timeout=60) as client:
            with client.stream("POST", f"{sql.sql}/query-stream",
                               json={"sql": "SELECT * FROM ride_streams EMIT CHANGES;", "properties": {}}) as response:
                for line in response.iter_lines():
                    if not header:
                        header.update(json.loads(line))
        ended.set()

    threading.Thread(target=run, daemon=True).start()
    deadline = time.time() + 30
    while not header and time.time() < deadline:
        time.sleep(0.05)
    assert header, "the query never sent its header"
    closed = httpx.post(f"{sql.sql}/close-query", json={"queryId": header["queryId"]}, timeout=10)
    assert closed.status_code == 200
    assert ended.wait(30), "the response did not end"
    unknown = httpx.post(f"{sql.sql}/close-query", json={"queryId": header["queryId"]}, timeout=10)
    assert unknown.status_code == 400


def test_a_table_of_counts_per_vendor(sql):
    # Exactly once, as a request may ask: the counts are exact.
    [started] = ksql(sql.sql, "CREATE TABLE rides_per_vendor AS SELECT VendorID, COUNT(*) AS rides "
                              "FROM ride_streams GROUP BY VendorID EMIT CHANGES;",
                     {**EARLIEST, "ksql.streams.processing.guarantee": "exactly_once_v2"})
    query_id = started["commandStatus"]["queryId"]
    assert started["commandStatus"]["message"] == f"Created query with ID {query_id}"
    assert query_id.startswith("CTAS_RIDES_PER_VENDOR_")
    expected = Counter(r["VendorID"] for r in rides())
    latest = latest_values(sql.bootstrap, "RIDES_PER_VENDOR", set(expected))
    assert {vendor: value["RIDES"] for vendor, value in latest.items()} == dict(expected)
    [queries] = ksql(sql.sql, "SHOW QUERIES;")
    assert query_id in [q["id"] for q in queries["queries"]]
    status = httpx.get(f"{sql.sql}/status/{started['commandId']}", timeout=10).json()
    assert status["status"] == "SUCCESS"
    # A pull query answers with the table as it is now.
    pulled = push_rows(sql.sql, "/query-stream", {"sql": "SELECT * FROM rides_per_vendor WHERE VendorID = '2';"})
    header, *rows = [json.loads(line) for line in pulled.text.splitlines()]
    assert header["columnNames"] == ["VENDORID", "RIDES"]
    assert rows == [["2", expected["2"]]]
    everything = json.loads(push_rows(sql.sql, "/query", {"ksql": "SELECT VendorID, RIDES * 2 FROM rides_per_vendor;"}).text)
    assert everything[0]["header"]["schema"] == "`VENDORID` STRING, `KSQL_COL_0` BIGINT"
    assert sorted(tuple(r["row"]["columns"]) for r in everything[1:]) == sorted((v, 2 * n) for v, n in expected.items())
    on_a_stream = httpx.post(f"{sql.sql}/query-stream", json={"sql": "SELECT * FROM ride_streams;"}, timeout=10)
    assert on_a_stream.status_code == 400 and "stream" in on_a_stream.json()["message"]


def test_the_course_s_session_table_answers_pull_queries(sql):
    ksql(sql.sql, "CREATE TABLE payment_type_sessions AS SELECT payment_type, COUNT(*) AS rides FROM ride_streams "
                  "WINDOW SESSION (60 SECONDS) GROUP BY payment_type EMIT CHANGES;", EARLIEST)
    # The rides were produced within seconds, so each payment type has one session.
    expected = Counter(r["payment_type"] for r in rides())
    deadline, rows = time.time() + 60, []
    while time.time() < deadline:
        pulled = push_rows(sql.sql, "/query-stream", {"sql": "SELECT * FROM payment_type_sessions WHERE payment_type = '1';"})
        header, *rows = [json.loads(line) for line in pulled.text.splitlines()]
        if rows and rows[0][3] == expected["1"]:
            break
        time.sleep(0.2)
    assert header["columnNames"] == ["PAYMENT_TYPE", "WINDOWSTART", "WINDOWEND", "RIDES"]
    assert len(rows) == 1 and rows[0][0] == "1" and rows[0][3] == expected["1"]
    assert rows[0][1] <= rows[0][2]


RIDE_AVRO = json.dumps({"type": "record", "name": "Ride", "namespace": "taxi", "fields": [
    {"name": "VendorID", "type": "string"},
    {"name": "trip_distance", "type": "double"},
    {"name": "payment_type", "type": {"type": "enum", "name": "Payment", "symbols": ["P1", "P2", "P3", "P4"]}},
    {"name": "total_amount", "type": ["null", "double"], "default": None},
]})


def test_avro_rides_in_avro_and_json_schema_tables_out(sql):
    """confluent-kafka's AvroSerializer writes the rides; a stream declared
    without columns takes them from the registry; the queries' sinks
    register ksqlDB's schemas, and confluent-kafka's deserializers read
    what they write."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    registry = SchemaRegistryClient({"url": sql.registry})
    serialize = AvroSerializer(registry, RIDE_AVRO)
    producer = Producer({"bootstrap.servers": sql.bootstrap})
    for ride in rides():
        value = {"VendorID": ride["VendorID"], "trip_distance": float(ride["trip_distance"]),
                 "payment_type": "P" + ride["payment_type"], "total_amount": float(ride["total_amount"])}
        producer.produce("rides_avro", value=serialize(value, SerializationContext("rides_avro", MessageField.VALUE)))
    assert producer.flush(30) == 0

    ksql(sql.sql, "CREATE STREAM rides_avro WITH (KAFKA_TOPIC='rides_avro', VALUE_FORMAT='AVRO');")
    [described] = ksql(sql.sql, "DESCRIBE rides_avro;")
    fields = [(f["name"], f["schema"]["type"]) for f in described["sourceDescription"]["fields"]]
    assert fields == [("VENDORID", "STRING"), ("TRIP_DISTANCE", "DOUBLE"), ("PAYMENT_TYPE", "STRING"), ("TOTAL_AMOUNT", "DOUBLE")]
    assert described["sourceDescription"]["valueFormat"] == "AVRO"

    ksql(sql.sql, "CREATE TABLE avro_fares AS SELECT vendorid, COUNT(*) AS rides, SUM(total_amount) AS total "
                  "FROM rides_avro GROUP BY vendorid EMIT CHANGES;", EARLIEST)
    ksql(sql.sql, "CREATE STREAM card_rides WITH (VALUE_FORMAT='JSON_SR') AS SELECT vendorid, total_amount "
                  "FROM rides_avro WHERE payment_type = 'P1' EMIT CHANGES;", EARLIEST)
    sink_schema = registry.get_latest_version("AVRO_FARES-value").schema
    assert sink_schema.schema_type == "AVRO" and '"KsqlDataSourceSchema"' in sink_schema.schema_str
    assert registry.get_latest_version("CARD_RIDES-value").schema.schema_type == "JSON"

    def read_all(topic, deserialize, count):
        consumer = Consumer({"bootstrap.servers": sql.bootstrap, "group.id": f"check-{topic}", "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        records, deadline = [], time.time() + 60
        try:
            while len(records) < count and time.time() < deadline:
                message = consumer.poll(0.5)
                if message is not None and not message.error():
                    context = SerializationContext(topic, MessageField.VALUE)
                    records.append((message.key(), deserialize(message.value(), context)))
        finally:
            consumer.close()
        return records

    all_rides = rides()
    per_vendor = Counter(r["VendorID"] for r in all_rides)
    counts = read_all("AVRO_FARES", AvroDeserializer(registry), len(all_rides))
    latest = {key.decode(): value for key, value in counts}
    assert {vendor: value["RIDES"] for vendor, value in latest.items()} == dict(per_vendor)
    for vendor, value in latest.items():
        expected_total = sum(float(r["total_amount"]) for r in all_rides if r["VendorID"] == vendor)
        assert abs(value["TOTAL"] - expected_total) < 1e-6
    card = [r for r in all_rides if r["payment_type"] == "1"]
    written = read_all("CARD_RIDES", JSONDeserializer(None, schema_registry_client=registry), len(card))
    assert sorted(value["TOTAL_AMOUNT"] for _, value in written) == sorted(float(r["total_amount"]) for r in card)
    assert {value["VENDORID"] for _, value in written} == {r["VendorID"] for r in card}


def test_header_columns_read_what_the_producer_sent(sql):
    """Headers a confluent-kafka producer sets reach HEADERS and
    HEADER('key') columns; BYTES come back base64-encoded, as from ksqlDB."""
    import base64
    producer = Producer({"bootstrap.servers": sql.bootstrap})
    producer.produce("rides_traced", key="a", value=json.dumps({"fare": 1.5}), headers=[("trace", b"t-1"), ("app", b"web")])
    producer.produce("rides_traced", key="b", value=json.dumps({"fare": 2.5}), headers=[("app", b"cli")])
    assert producer.flush(30) == 0
    ksql(sql.sql, "CREATE STREAM rides_traced (id STRING KEY, fare DOUBLE, trace BYTES HEADER('trace'), "
                  "hs ARRAY<STRUCT<key STRING, value BYTES>> HEADERS) WITH (KAFKA_TOPIC='rides_traced', VALUE_FORMAT='JSON');")
    pulled = push_rows(sql.sql, "/query-stream", {"sql": "SELECT id, FROM_BYTES(trace, 'utf8') AS trace, ARRAY_LENGTH(hs) AS n, hs[1]->value AS first "
                                                          "FROM rides_traced EMIT CHANGES LIMIT 2;", "properties": EARLIEST})
    header, *rows = [json.loads(line) for line in pulled.text.splitlines()]
    assert header["columnNames"] == ["ID", "TRACE", "N", "FIRST"]
    assert sorted(rows) == [["a", "t-1", 2, base64.b64encode(b"t-1").decode()], ["b", None, 1, base64.b64encode(b"cli").decode()]]


def test_inserts_stream_acknowledges_each_row(sql):
    ksql(sql.sql, "CREATE STREAM tips (driver VARCHAR KEY, tip DOUBLE) WITH (KAFKA_TOPIC='tips', PARTITIONS=2, VALUE_FORMAT='JSON');")
    lines = [{"target": "TIPS"}, {"DRIVER": "ann", "TIP": 2.5}, {"driver": "bob", "tip": 1}, {"TIP": "not a number"}]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    response = httpx.post(f"{sql.sql}/inserts-stream", content=body, timeout=30)
    assert response.status_code == 200
    acks = [json.loads(line) for line in response.text.splitlines()]
    assert acks[:2] == [{"status": "ok", "seq": 0}, {"status": "ok", "seq": 1}]
    assert acks[2]["status"] == "error" and acks[2]["seq"] == 2
    latest = latest_values(sql.bootstrap, "tips", {"ann", "bob"})
    assert latest == {"ann": {"TIP": 2.5}, "bob": {"TIP": 1.0}}


def test_functions_explain_and_print(sql):
    [functions] = ksql(sql.sql, "SHOW FUNCTIONS;")
    listed = {f["name"]: f for f in functions["functions"]}
    assert listed["SUBSTRING"]["type"] == "SCALAR" and listed["TOPK"]["type"] == "AGGREGATE"
    [described] = ksql(sql.sql, "DESCRIBE FUNCTION substring;")
    assert described["@type"] == "describe_function" and described["name"] == "SUBSTRING" and described["description"]
    assert ksql(sql.sql, "DESCRIBE FUNCTION no_such_function;", expect=400)["error_code"] == 40001
    [explained] = ksql(sql.sql, "EXPLAIN SELECT VendorID, COUNT(*) FROM ride_streams GROUP BY VendorID EMIT CHANGES;")
    description = explained["queryDescription"]
    assert description["sources"] == ["RIDE_STREAMS"]
    assert [f["name"] for f in description["fields"]] == ["VENDORID", "KSQL_COL_0"]
    assert "Sub-topology: 0" in description["topology"] and "KSTREAM-AGGREGATE" in description["topology"]
    printed = push_rows(sql.sql, "/query", {"ksql": "PRINT 'rides' FROM BEGINNING LIMIT 2;"}).text.splitlines()
    assert printed[:2] == ["Key format: KAFKA_STRING", "Value format: JSON"]
    first = rides()[0]
    assert printed[2].startswith("rowtime: ") and f"key: {first['PULocationID']}, value: {{" in printed[2] and printed[2].endswith("partition: 0")
    assert len(printed) == 4
    shell = runnel_sql(sql.sql, "-e", "PRINT rides FROM BEGINNING LIMIT 1;")
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.splitlines()[:2] == ["Key format: KAFKA_STRING", "Value format: JSON"]


def test_info_and_healthcheck(sql):
    info = httpx.get(f"{sql.sql}/info", timeout=10).json()["KsqlServerInfo"]
    assert info["ksqlServiceId"] == "default_" and info["serverStatus"] == "RUNNING" and info["kafkaClusterId"]
    health = httpx.get(f"{sql.sql}/healthcheck", timeout=10).json()
    assert health["isHealthy"] is True
    missing = httpx.get(f"{sql.sql}/no/such/path", timeout=10)
    assert missing.status_code == 404 and missing.json()["error_code"] == 40400


def test_streams_tables_and_queries_survive_a_restart(tmp_path):
    data = tmp_path / "data"
    first = Broker(data)
    try:
        produce_rides(first.bootstrap, "rides")
        ksql(first.sql, CREATE_RIDES)
        ksql(first.sql, "CREATE STREAM card_rides AS SELECT * FROM ride_streams WHERE payment_type = '1' EMIT CHANGES;", EARLIEST)
        [dropped] = ksql(first.sql, "CREATE STREAM doomed (a INT) WITH (KAFKA_TOPIC='doomed', PARTITIONS=1, VALUE_FORMAT='JSON');"
                                    "DROP STREAM doomed DELETE TOPIC;")[1:]
        assert dropped["commandStatus"]["status"] == "SUCCESS"
    finally:
        first.stop()
    second = Broker(data)
    try:
        [streams] = ksql(second.sql, "SHOW STREAMS;")
        assert sorted(s["name"] for s in streams["streams"]) == ["CARD_RIDES", "RIDE_STREAMS"]
        [queries] = ksql(second.sql, "SHOW QUERIES;")
        assert [q["sinks"] for q in queries["queries"]] == [["CARD_RIDES"]]
        # The restarted query goes on from where it committed: rides
        # produced now reach its sink too.
        produce_rides(second.bootstrap, "rides")
        card = sum(1 for r in rides() if r["payment_type"] == "1")
        consumer = Consumer({"bootstrap.servers": second.bootstrap, "group.id": "check-card", "auto.offset.reset": "earliest"})
        consumer.subscribe(["CARD_RIDES"])
        seen, deadline = 0, time.time() + 60
        while seen < 2 * card and time.time() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                seen += 1
        consumer.close()
        assert seen == 2 * card
    finally:
        second.stop()


def runnel_sql(sql_url, *args, stdin=None):
    return subprocess.run([runnel_binary(), "sql", "--server", sql_url, *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_the_shell_runs_scripts_and_prints_tables(sql, tmp_path):
    listed = runnel_sql(sql.sql, "-e", "SHOW STREAMS;")
    assert listed.returncode == 0, listed.stderr
    assert "|RIDE_STREAMS " in listed.stdout and "|Stream Name " in listed.stdout
    script = tmp_path / "first_rides.sql"
    script.write_text("SET 'auto.offset.reset' = 'earliest';\n"
                      "DEFINE kind = '2';\n"
                      "SELECT VendorID, payment_type\n  FROM ride_streams\n  WHERE payment_type = '${kind}'\n  EMIT CHANGES LIMIT 3;\n")
    queried = runnel_sql(sql.sql, "-f", str(script))
    assert queried.returncode == 0, queried.stderr
    lines = queried.stdout.splitlines()
    assert lines[0] == "Successfully changed local property 'auto.offset.reset' to 'earliest'."
    assert lines[2].startswith("|VENDORID ") and "|PAYMENT_TYPE " in lines[2]
    rows = [line for line in lines[4:] if line.startswith("|")]
    assert len(rows) == 3 and all(row.split("|")[2].strip() == "2" for row in rows)
    assert lines[-1] == "Query terminated: 3 rows."
    refused = runnel_sql(sql.sql, "-e", "DESCRIBE no_such_stream;")
    assert refused.returncode == 1
    assert "NO_SUCH_STREAM" in refused.stderr.upper()
    piped = runnel_sql(sql.sql, stdin="SHOW\n  TABLES;\nexit\n")
    assert piped.returncode == 0, piped.stderr
    assert "|Table Name " in piped.stdout


class SqlServer:
    """A `runnel sql-server` child process against `bootstrap`."""

    def __init__(self, bootstrap, *args):
        self.proc = subprocess.Popen([runnel_binary(), "sql-server", "-b", bootstrap, "--listen", "127.0.0.1:0", *args],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**os.environ, "RUNNEL_LOG": "info"})
        self.url = None
        for line in self.proc.stderr:
            bind = re.search(r"bind=(\S+)", line)
            if bind and "SQL service listening" in line:
                self.url = "http://" + bind.group(1)
            if "SQL service ready" in line:
                break
        assert self.url, "the SQL server never started"
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        assert self.proc.returncode == 0


def eventually(check, deadline_s=30):
    deadline = time.time() + deadline_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_servers_of_one_service_share_statements_as_they_are_made(tmp_path):
    broker = Broker(tmp_path / "data")
    second = SqlServer(broker.bootstrap)
    try:
        produce_rides(broker.bootstrap, "rides")
        ksql(broker.sql, CREATE_RIDES)
        [started] = ksql(broker.sql, "CREATE STREAM card_rides AS SELECT * FROM ride_streams WHERE payment_type = '1' EMIT CHANGES;", EARLIEST)
        query_id = started["commandStatus"]["queryId"]

        def second_runs_it():
            [queries] = ksql(second.url, "SHOW QUERIES;")
            assert [q["id"] for q in queries["queries"]] == [query_id]

        eventually(second_runs_it)
        [streams] = ksql(second.url, "SHOW STREAMS;")
        assert sorted(s["name"] for s in streams["streams"]) == ["CARD_RIDES", "RIDE_STREAMS"]
        # Either server answers for the whole service.
        [terminated] = ksql(second.url, f"TERMINATE {query_id};")
        assert terminated["commandStatus"]["message"] == "Query terminated."

        def first_stopped_it():
            [queries] = ksql(broker.sql, "SHOW QUERIES;")
            assert queries["queries"] == []

        eventually(first_stopped_it)
    finally:
        second.stop()
        broker.stop()


def test_a_server_killed_mid_query_loses_no_statement_and_no_count(tmp_path):
    broker = Broker(tmp_path / "data", "--no-sql")
    state = str(tmp_path / "sql-state")
    server = SqlServer(broker.bootstrap, "--state-dir", state)
    try:
        produce_rides(broker.bootstrap, "rides")
        ksql(server.url, CREATE_RIDES)
        # A short session timeout (passed through to the query's clients),
        # so the killed server's member leaves the group within seconds.
        ksql(server.url, "CREATE TABLE rides_per_vendor AS SELECT VendorID, COUNT(*) AS rides "
                         "FROM ride_streams GROUP BY VendorID EMIT CHANGES;",
             {**EARLIEST, "ksql.streams.session.timeout.ms": "6000", "ksql.streams.heartbeat.interval.ms": "500"})
        assert latest_values(broker.bootstrap, "RIDES_PER_VENDOR", {"1"}, deadline_s=30), "the query never counted"
        server.proc.kill()
        server.proc.wait(10)
        server = SqlServer(broker.bootstrap, "--state-dir", state)
        [queries] = ksql(server.url, "SHOW QUERIES;")
        assert [q["sinks"] for q in queries["queries"]] == [["RIDES_PER_VENDOR"]]
        produce_rides(broker.bootstrap, "rides")
        expected = {vendor: 2 * n for vendor, n in Counter(r["VendorID"] for r in rides()).items()}

        def counted_at_least_once():
            latest = latest_values(broker.bootstrap, "RIDES_PER_VENDOR", set(expected), deadline_s=10)
            counts = {vendor: value["RIDES"] for vendor, value in latest.items()}
            assert set(counts) == set(expected) and all(counts[v] >= n for v, n in expected.items()), (counts, expected)

        eventually(counted_at_least_once, deadline_s=60)
    finally:
        server.stop()
        broker.stop()


def test_the_ksqldb_python_client_drives_the_service(sql):
    """`ksqldb` from PyPI, a client written for ksqlDB's REST API: statements
    and listings on /ksql, pull and push queries on /query-stream over HTTP/2,
    inserts, and closing a running query."""
    from ksqldb import KSQLdbClient

    client = KSQLdbClient(sql.sql)
    assert any(p["name"].endswith("auto.offset.reset") for p in client.get_properties())
    assert "RIDE_STREAMS" in [s["name"] for s in client.ksql("SHOW STREAMS;")[0]["streams"]]

    [created] = client.ksql("CREATE STREAM client_rows (id VARCHAR KEY, n INT) "
                            "WITH (KAFKA_TOPIC='client_rows', PARTITIONS=1, VALUE_FORMAT='JSON');")
    assert created["commandStatus"]["status"] == "SUCCESS"
    acks = client.inserts_stream("CLIENT_ROWS", [{"ID": "a", "N": 1}, {"ID": "b", "N": 2}])
    assert [ack["status"] for ack in acks] == ["ok", "ok"]

    async def push(query, close_after=None):
        items = []
        rows = client.query_async(query, stream_properties={"auto.offset.reset": "earliest"}, timeout=30)
        async for item in rows:
            items.append(item)
            if close_after is not None and len(items) == 1 + close_after:
                assert client.close_query(items[0]["queryId"])
        return items

    header, *rows = asyncio.run(push("SELECT * FROM client_rows EMIT CHANGES LIMIT 2;"))
    assert header["columnNames"] == ["ID", "N"] and rows == [["a", 1], ["b", 2]]
    # A query without a limit runs until the client closes it.
    header, *rows = asyncio.run(push("SELECT id FROM client_rows EMIT CHANGES;", close_after=1))
    assert header["queryId"] and rows[0] == ["a"] and len(rows) <= 2

    client.ksql("CREATE TABLE client_vendors AS SELECT VendorID, COUNT(*) AS rides FROM ride_streams GROUP BY VendorID;",
                stream_properties={"auto.offset.reset": "earliest"})
    expected = Counter(ride["VendorID"] for ride in rides())

    def counted():
        header, *rows = client.query_sync("SELECT * FROM client_vendors;", timeout=30)
        assert header["columnNames"] == ["VENDORID", "RIDES"]
        assert dict(rows) == expected
    eventually(counted, deadline_s=60)
