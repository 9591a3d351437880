"""runnel-streams beside Java Kafka Streams: the course's programs (count
per location, the same regrouped by pickup location, 10-second windowed
count, ride/pickup join) and programs for every group of operators
(stream-table, stream-global-table, table-table and foreign-key joins, regrouped tables, reduce, split,
session and sliding windows, suppression of all but final results, left
and outer stream joins),
written once with each library, run on each library's test driver over the
same input built from rides.csv and taxi_zone_lookup.csv. The outputs must
be equal byte for byte: keys, values and timestamps, in order."""
import csv
import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import DATA, ROOT

JAVA_DIR = Path(__file__).parent / "java"
ORACLE = ROOT / "target" / "debug" / "examples" / "oracle"
NULL = "\\N"  # how an input line writes a null value


def rides():
    lines = (DATA / "rides.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


def epoch_ms(text):
    return int((datetime.strptime(text, "%Y-%m-%d %H:%M:%S") - datetime(1970, 1, 1)).total_seconds() * 1000)


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def ride_lines():
    """Rides in the CSV's order (by pickup), stamped with their drop-off
    time: far out of order."""
    return [("rides", r["DOLocationID"], epoch_ms(r["tpep_dropoff_datetime"]), compact(r)) for r in rides()]


def nearly_ordered_ride_lines():
    """Rides by drop-off time, with every seventh moved back behind the
    two before it, so some arrive within their window's grace and some
    after it."""
    lines = sorted(ride_lines(), key=lambda line: line[2])
    for i in range(7, len(lines), 7):
        lines[i - 2], lines[i - 1], lines[i] = lines[i], lines[i - 2], lines[i - 1]
    return lines


def join_lines():
    """Each ride, then a pickup at its drop-off location 5 or 15 minutes
    after the drop-off (or, for every third, 4 minutes before)."""
    lines = []
    for i, ride in enumerate(rides()):
        dropoff = datetime.strptime(ride["tpep_dropoff_datetime"], "%Y-%m-%d %H:%M:%S")
        pickup = dropoff + timedelta(minutes=[5, 15, -4][i % 3])
        event = {"PULocationID": ride["DOLocationID"], "tpep_pickup_datetime": pickup.strftime("%Y-%m-%d %H:%M:%S")}
        lines.append(("rides", ride["DOLocationID"], epoch_ms(ride["tpep_dropoff_datetime"]), compact(ride)))
        lines.append(("rides_location", f"vendor-{ride['VendorID']}", epoch_ms(event["tpep_pickup_datetime"]), compact(event)))
    return lines


def early_lines():
    """Rides on three keys in the first 25 minutes after the epoch, in a
    scrambled order: sliding windows of records within their first time
    difference share one window from 0."""
    return [("rides", str(i % 3), (i * 37_000) % 1_500_000, compact(ride)) for i, ride in enumerate(rides()[:120])]


def zones():
    with open(DATA / "taxi_zone_lookup.csv", newline="") as f:
        return list(csv.DictReader(f))


def zone_json(borough, zone, service_zone):
    return compact({"borough": borough, "zone": zone, "service_zone": service_zone})


def table_lines():
    """The zone table and a table of notes on zones, then the rides, with
    changes to both tables among them: renamed zones, zones moved to
    Manhattan, deleted zones and notes, updates that change nothing (at a
    later time, and at an earlier one), and deletions of keys never set."""
    first = min(epoch_ms(r["tpep_dropoff_datetime"]) for r in rides()) - 3_600_000
    current = {z["locationid"]: zone_json(z["borough"], z["zone"], z["service_zone"]) for z in zones()}
    lines = [("zones", key, first, value) for key, value in current.items()]
    lines += [("zone_notes", key, first + 1, f"note-{i}") for i, key in enumerate(current) if i % 3 == 0]
    lines.append(("zones", "999", first + 2, None))
    for i, ride in enumerate(rides()):
        ts = epoch_ms(ride["tpep_dropoff_datetime"])
        dropoff, pickup = ride["DOLocationID"], ride["PULocationID"]
        lines.append(("rides", dropoff, ts, compact(ride)))
        old = json.loads(current.get(dropoff) or zone_json("Queens", f"zone {dropoff}", "Boro Zone"))
        if i % 20 == 0:
            borough = "Manhattan" if i % 40 == 0 else old["borough"]
            current[dropoff] = zone_json(borough, f"{old['zone']} {i}", old["service_zone"])
            lines.append(("zones", dropoff, ts, current[dropoff]))
        if i % 37 == 0:
            current.pop(pickup, None)
            lines.append(("zones", pickup, ts, None))
        if i % 25 == 0 and dropoff in current:
            lines.append(("zones", dropoff, ts + (1000 if i % 50 == 0 else -1_000_000), current[dropoff]))
        if i % 11 == 0:
            lines.append(("zone_notes", dropoff, ts, f"ride-{i}"))
        if i % 23 == 0:
            lines.append(("zone_notes", pickup, ts, None))
    return lines


def trip_lines():
    """The zone table and its changes, as for the table programs, with
    the rides as a table of 40 trips: each ride updates a trip (often to
    another pickup zone), and every thirteenth deletes one."""
    lines = []
    for i, (topic, key, ts, value) in enumerate(table_lines()):
        if topic == "rides":
            lines.append(("trips", f"trip-{i % 40}", ts, value))
            if i % 13 == 0:
                lines.append(("trips", f"trip-{(i * 7) % 40}", ts, None))
        else:
            lines.append((topic, key, ts, value))
    return lines


@pytest.fixture(scope="module")
def java_oracle(tmp_path_factory):
    streams = os.environ.get("RUNNEL_JAVA_STREAMS")
    if not streams or not Path(streams).is_dir():
        pytest.fail("RUNNEL_JAVA_STREAMS must name the Kafka Streams 4.4 jars; scripts/test fetches them")
    if shutil.which("javac") is None:
        pytest.fail("javac is required; scripts/test installs a JDK")
    classes = tmp_path_factory.mktemp("oracle")
    subprocess.run(["javac", "-d", str(classes), "-cp", f"{streams}/*", str(JAVA_DIR / "StreamsOracle.java")], check=True, timeout=180)
    return f"{classes}:{streams}/*"


@pytest.mark.parametrize("program,lines", [("count", ride_lines), ("regroup", ride_lines), ("windowed", ride_lines),
                                           ("windowed", nearly_ordered_ride_lines), ("join", join_lines),
                                           ("enrich", table_lines), ("tables", table_lines), ("boroughs", table_lines),
                                           ("split", ride_lines), ("sessions", ride_lines), ("sessions", nearly_ordered_ride_lines),
                                           ("finals", ride_lines), ("finals", nearly_ordered_ride_lines),
                                           ("outer", join_lines), ("global", table_lines),
                                           ("sliding", ride_lines), ("sliding", nearly_ordered_ride_lines),
                                           ("sliding", early_lines), ("fk", trip_lines)])
def test_runnel_streams_matches_kafka_streams(java_oracle, tmp_path, program, lines):
    if not ORACLE.exists():
        pytest.fail(f"{ORACLE} is missing; `cargo test --workspace` builds it")
    records = lines()
    input_file = tmp_path / "input.tsv"
    input_file.write_text("".join(f"{topic}\t{key}\t{ts}\t{NULL if value is None else value}\n" for topic, key, ts, value in records))
    java = subprocess.run(["java", "-cp", java_oracle, "StreamsOracle", program, str(input_file)], capture_output=True, text=True, timeout=300)
    assert java.returncode == 0, java.stderr
    rust = subprocess.run([str(ORACLE), program, str(input_file)], capture_output=True, text=True, timeout=120)
    assert rust.returncode == 0, rust.stderr
    kafka_out, runnel_out = java.stdout.splitlines(), rust.stdout.splitlines()
    for i, (k, r) in enumerate(zip(kafka_out, runnel_out)):
        assert r == k, f"record {i} differs:\n  runnel: {r}\n  kafka:  {k}"
    assert len(runnel_out) == len(kafka_out)
    assert kafka_out, "the scenario must produce output"


@pytest.mark.parametrize("program", ["count", "regroup", "windowed", "join", "enrich", "tables", "boroughs", "split", "sessions",
                                     "sliding", "fk", "global", "outer", "finals"])
def test_topologies_describe_themselves_as_kafka_streams_does(java_oracle, program):
    """The same topology described by each library: sub-topologies split at
    repartition topics, nodes and stores named and numbered alike (so
    internal topics are named alike), in Kafka Streams' order and layout."""
    java = subprocess.run(["java", "-cp", java_oracle, "StreamsOracle", program, "--describe"], capture_output=True, text=True, timeout=120)
    assert java.returncode == 0, java.stderr
    rust = subprocess.run([str(ORACLE), program, "--describe"], capture_output=True, text=True, timeout=60)
    assert rust.returncode == 0, rust.stderr
    assert rust.stdout == java.stdout
