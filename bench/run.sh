#!/usr/bin/env bash
# The standard benchmark suite: starts a fresh broker on a temporary data
# directory, runs a fixed set of workloads with `runnel bench` (librdkafka
# load), and prints a results table with the broker's CPU seconds and peak
# RSS read from /proc.
#
#   bench/run.sh               full suite (several minutes, ~10 GB of disk)
#   bench/run.sh --smoke       a ~10 second run of every workload, for CI
#   bench/run.sh --peer kafka  workloads 1-5 against runnel and Apache Kafka
#                              (scripts/kafka-peer) with the same librdkafka
#                              load, side by side: runnel --fsync always
#                              against Kafka flushing every message, and
#                              runnel --fsync never against Kafka's defaults
#   bench/run.sh --streams     the three runnel-streams topologies beside the
#                              same ones in Java Kafka Streams
#                              (tests/compat/java/StreamsBench.java), on one
#                              runnel broker and the same input
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
PEER=""
STREAMS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --peer) PEER="${2:-}"; shift ;;
    --streams) STREAMS=1 ;;
    *) echo "usage: $0 [--smoke] [--peer kafka] [--streams]" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$PEER" ] && [ "$PEER" != kafka ]; then
  echo "--peer: only kafka is supported" >&2; exit 2
fi

if [ "$SMOKE" = 1 ]; then
  cargo build --quiet -p runnel
  RUNNEL="$PWD/target/debug/runnel"
  RECORDS=20000; CONSUME_RECORDS=20000; E2E_SECS=2; E2E_RATE=2000; STARTUP_PARTITIONS=50; RECOVERY_RECORDS=20000; CONNECTIONS=500
  STREAMS_RECORDS=20000
else
  cargo build --quiet --release -p runnel
  RUNNEL="$PWD/target/release/runnel"
  RECORDS=1000000; CONSUME_RECORDS=2000000; E2E_SECS=20; E2E_RATE=20000; STARTUP_PARTITIONS=1000; RECOVERY_RECORDS=5000000; CONNECTIONS=10000
  STREAMS_RECORDS=1000000
fi

WORK="$(mktemp -d)"
BROKER_PID=""
cleanup() {
  [ -n "$BROKER_PID" ] && kill -9 "$BROKER_PID" 2>/dev/null || true
  [ -f "$WORK/kafka/pid" ] && scripts/kafka-peer stop "$WORK/kafka"
  rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# start_broker DATA_DIR: starts runnel, waits for `ready`, sets BROKER_PID,
# BOOTSTRAP, BROKER_LOG and READY_MS (time from exec to ready).
start_broker() {
  local data="$1" log="$WORK/broker-$(date +%s%N).log" started
  shift
  started=$(now_ms)
  BROKER_LOG="$log"
  RUNNEL_LOG=info "$RUNNEL" serve --data-dir "$data" --kafka-listen 127.0.0.1:0 --no-registry --no-metrics --no-sql "$@" 2>"$log" &
  BROKER_PID=$!
  for _ in $(seq 1 600); do
    if grep -q "ready" "$log" 2>/dev/null; then
      READY_MS=$(( $(now_ms) - started ))
      BOOTSTRAP=$(grep -o 'bind=[0-9.:]*' "$log" | head -1 | cut -d= -f2)
      return 0
    fi
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then cat "$log"; echo "broker died" >&2; exit 1; fi
    sleep 0.05
  done
  echo "broker did not become ready" >&2; exit 1
}

stop_broker() { kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""; }
kill9_broker() { kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""; }

cpu_seconds() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/${1:-$BROKER_PID}/stat"; }
rss_mb() { awk -v f="$2" '$1==f {printf "%.1f", $2/1024}' "/proc/$1/status"; }
whole() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
json_field() { python3 -c "import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print('-' if v is None else (f'{v:.2f}' if isinstance(v, float) else v))" "$1" "$2"; }

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 |"); }

# Each workload starts with the previous one's dirty pages written back, so
# its fsyncs do not pay for another workload's data.
bench() { sync; "$RUNNEL" bench "$@" --bootstrap-server "$BOOTSTRAP" --json; }

# --- runnel-streams beside Java Kafka Streams ---------------------------------
if [ "$STREAMS" = 1 ]; then
  JAVA_STREAMS="$(scripts/java-streams)"
  CLASSES="$WORK/classes"
  mkdir -p "$CLASSES"
  javac -d "$CLASSES" -cp "$JAVA_STREAMS/*" tests/compat/java/StreamsBench.java
  start_broker "$WORK/streams"
  # The first run writes the input; every run, runnel's and Java's, reads it.
  "$RUNNEL" bench streams --topology stateless --records "$STREAMS_RECORDS" --bootstrap-server "$BOOTSTRAP" --json >/dev/null
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.1f", a / b }'; }
  echo "runnel-streams beside Java Kafka Streams 4.4 ($([ "$SMOKE" = 1 ] && echo smoke || echo full)), $STREAMS_RECORDS records of 200 B, one stream thread each, $(nproc) cores, $(date -u +%Y-%m-%d)"
  echo
  echo "| topology | runnel-streams records/s | Kafka Streams records/s | × | runnel CPU s | Java CPU s | runnel RSS MB | Java RSS MB | memory ÷ |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for topology in stateless windowed join persistent; do
    if [ "$topology" = persistent ]; then
      # The windowed count with stores on disk: runnel's local checkpoints,
      # Java's RocksDB.
      r=$("$RUNNEL" bench streams --topology windowed --state-dir "$WORK/runnel-state" --records "$STREAMS_RECORDS" --bootstrap-server "$BOOTSTRAP" --json)
      j=$(java -Xmx1g -cp "$CLASSES:$JAVA_STREAMS/*" StreamsBench "$BOOTSTRAP" windowed "$STREAMS_RECORDS" rocksdb)
    else
      r=$("$RUNNEL" bench streams --topology "$topology" --records "$STREAMS_RECORDS" --bootstrap-server "$BOOTSTRAP" --json)
      j=$(java -Xmx1g -cp "$CLASSES:$JAVA_STREAMS/*" StreamsBench "$BOOTSTRAP" "$topology" "$STREAMS_RECORDS")
    fi
    echo "| $topology | $(whole "$(json_field "$r" records_per_sec)") | $(whole "$(json_field "$j" records_per_sec)") | $(ratio "$(json_field "$r" records_per_sec)" "$(json_field "$j" records_per_sec)") | $(json_field "$r" cpu_seconds) | $(json_field "$j" cpu_seconds) | $(json_field "$r" rss_mb) | $(json_field "$j" rss_mb) | $(ratio "$(json_field "$j" rss_mb)" "$(json_field "$r" rss_mb)") |"
  done
  stop_broker
  echo
  echo "Both sides keep their state in memory (Java: in-memory DSL stores) except in the persistent row (runnel: local checkpoints; Java: RocksDB), commit every 30 s, and are timed from their first record to their last."
  exit 0
fi

# --- runnel beside Apache Kafka ----------------------------------------------
if [ "$PEER" = kafka ]; then
  scripts/kafka-peer install
  declare -A RESULT
  # workloads LABEL PID: runs workloads 1-5 against $BOOTSTRAP and records
  # MB/s (p99 ms for 5), the broker's CPU seconds for them and its peak RSS.
  workloads() {
    local label="$1" pid="$2" cpu_before r
    cpu_before=$(cpu_seconds "$pid")
    r=$(bench produce --topic "w1-$label" --record-size 1024 --records "$RECORDS" --acks 1 --partitions 1 --producers 1); RESULT[$label,1]=$(json_field "$r" mb_per_sec)
    r=$(bench produce --topic "w2-$label" --record-size 1024 --records "$RECORDS" --acks -1 --partitions 1 --producers 1); RESULT[$label,2]=$(json_field "$r" mb_per_sec)
    r=$(bench produce --topic "w3-$label" --record-size 1024 --records "$RECORDS" --acks -1 --partitions 8 --producers 2); RESULT[$label,3]=$(json_field "$r" mb_per_sec)
    r=$(bench consume --topic "w1-$label" --record-size 1024 --records "$RECORDS"); RESULT[$label,4]=$(json_field "$r" mb_per_sec)
    r=$(bench e2e --topic "w5-$label" --record-size 1024 --rate "$E2E_RATE" --duration "$E2E_SECS" --acks -1); RESULT[$label,5]=$(json_field "$r" p99_ms)
    RESULT[$label,cpu]=$(awk -v a="$cpu_before" -v b="$(cpu_seconds "$pid")" 'BEGIN {printf "%.1f", b - a}')
    RESULT[$label,rss]=$(rss_mb "$pid" VmHWM:)
  }
  start_broker "$WORK/runnel-durable" --fsync always
  workloads runnel-durable "$BROKER_PID"; stop_broker
  BOOTSTRAP=$(scripts/kafka-peer start "$WORK/kafka" log.flush.interval.messages=1 | cut -d= -f2)
  workloads kafka-durable "$(cat "$WORK/kafka/pid")"; scripts/kafka-peer stop "$WORK/kafka"
  start_broker "$WORK/runnel-relaxed" --fsync never
  workloads runnel-relaxed "$BROKER_PID"; stop_broker
  BOOTSTRAP=$(scripts/kafka-peer start "$WORK/kafka" | cut -d= -f2)
  workloads kafka-relaxed "$(cat "$WORK/kafka/pid")"; scripts/kafka-peer stop "$WORK/kafka"

  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
  names=("" "1. produce 1 KiB, 1 partition, acks=1 (MB/s)" "2. same, acks=-1 (MB/s)" "3. 8 partitions, 2 producers, acks=-1 (MB/s)"
         "4. consume (MB/s)" "5. end-to-end p99 at $(( E2E_RATE / 1000 ))k rec/s, acks=-1 (ms)")
  echo "runnel beside Apache Kafka $(basename "$(ls -d .test-deps/kafka-* | tail -1)" | cut -d- -f2) ($([ "$SMOKE" = 1 ] && echo smoke || echo full)), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u +%Y-%m-%d)"
  echo
  echo "| workload | runnel, fsync always | Kafka, flush every message | ratio | runnel, fsync never | Kafka, defaults | ratio |"
  echo "|---|---|---|---|---|---|---|"
  for i in 1 2 3 4 5; do
    echo "| ${names[$i]} | ${RESULT[runnel-durable,$i]} | ${RESULT[kafka-durable,$i]} | $(ratio "${RESULT[runnel-durable,$i]}" "${RESULT[kafka-durable,$i]}") | ${RESULT[runnel-relaxed,$i]} | ${RESULT[kafka-relaxed,$i]} | $(ratio "${RESULT[runnel-relaxed,$i]}" "${RESULT[kafka-relaxed,$i]}") |"
  done
  echo "| broker CPU seconds for 1-5 | ${RESULT[runnel-durable,cpu]} | ${RESULT[kafka-durable,cpu]} | $(ratio "${RESULT[runnel-durable,cpu]}" "${RESULT[kafka-durable,cpu]}") | ${RESULT[runnel-relaxed,cpu]} | ${RESULT[kafka-relaxed,cpu]} | $(ratio "${RESULT[runnel-relaxed,cpu]}" "${RESULT[kafka-relaxed,cpu]}") |"
  echo "| broker peak RSS (MB) | ${RESULT[runnel-durable,rss]} | ${RESULT[kafka-durable,rss]} | $(ratio "${RESULT[runnel-durable,rss]}" "${RESULT[kafka-durable,rss]}") | ${RESULT[runnel-relaxed,rss]} | ${RESULT[kafka-relaxed,rss]} | $(ratio "${RESULT[runnel-relaxed,rss]}" "${RESULT[kafka-relaxed,rss]}") |"
  exit 0
fi

start_broker "$WORK/data"
IDLE_RSS=$(rss_mb "$BROKER_PID" VmRSS:)

r=$(bench produce --topic w1 --record-size 1024 --records "$RECORDS" --acks 1 --partitions 1 --producers 1)
row "1. produce 1 KiB, 1 partition, 1 producer, acks=1" "$(json_field "$r" records_per_sec)" "$(json_field "$r" mb_per_sec)" "-" "≥ 250 MB/s"
r=$(bench produce --topic w2 --record-size 1024 --records "$RECORDS" --acks -1 --partitions 1 --producers 1)
row "2. same, acks=-1 (fsync)" "$(json_field "$r" records_per_sec)" "$(json_field "$r" mb_per_sec)" "-" "≥ 150 MB/s"
r=$(bench produce --topic w3 --record-size 1024 --records "$RECORDS" --acks -1 --partitions 8 --producers 2)
row "3. produce 1 KiB, 8 partitions, 2 producers, acks=-1" "$(json_field "$r" records_per_sec)" "$(json_field "$r" mb_per_sec)" "-" "≥ 150 MB/s"
bench produce --topic w4 --record-size 1024 --records "$CONSUME_RECORDS" --acks 1 >/dev/null
r=$(bench consume --topic w4 --record-size 1024 --records "$CONSUME_RECORDS")
row "4. consume $(( CONSUME_RECORDS / 1000 ))k × 1 KiB already written" "$(json_field "$r" records_per_sec)" "$(json_field "$r" mb_per_sec)" "-" "≥ 600 MB/s"
r=$(bench e2e --topic w5 --record-size 1024 --rate "$E2E_RATE" --duration "$E2E_SECS" --acks -1)
row "5. end-to-end at $(( E2E_RATE / 1000 ))k rec/s (1 KiB), acks=-1" "$(json_field "$r" records_per_sec)" "$(json_field "$r" mb_per_sec)" \
    "p50 $(json_field "$r" p50_ms) / p99 $(json_field "$r" p99_ms) / p99.9 $(json_field "$r" p999_ms) ms" "p99 ≤ 10 ms"
CPU=$(cpu_seconds)
PEAK=$(rss_mb "$BROKER_PID" VmHWM:)
stop_broker

# 6. Start-up with many partitions on disk.
start_broker "$WORK/startup"
for i in $(seq 1 $(( STARTUP_PARTITIONS / 100 ))); do
  bench produce --topic "many-$i" --partitions 100 --record-size 100 --records 1000 --acks 1 >/dev/null
done
[ "$STARTUP_PARTITIONS" -lt 100 ] && bench produce --topic many --partitions "$STARTUP_PARTITIONS" --record-size 100 --records 1000 --acks 1 >/dev/null
stop_broker
start_broker "$WORK/startup"
STARTUP_MS=$READY_MS
stop_broker
row "6. idle RSS; start-up with $STARTUP_PARTITIONS partitions" "-" "-" "idle RSS ${IDLE_RSS} MB; ready in ${STARTUP_MS} ms" "≤ 30 MB; ≤ 200 ms"

# 7. Recovery after kill -9 with data on disk.
start_broker "$WORK/recovery"
bench produce --topic big --record-size 1024 --records "$RECOVERY_RECORDS" --acks 1 >/dev/null
DISK=$(du -sm "$WORK/recovery" | cut -f1)
kill9_broker
start_broker "$WORK/recovery"
RECOVERY_MS=$READY_MS
stop_broker
row "7. recovery after kill -9 with ${DISK} MB on disk" "-" "-" "ready in ${RECOVERY_MS} ms" "≤ 2 s (5 GB)"

# 8. Many idle connections: memory per connection, and what is left once
# they close (three rounds).
start_broker "$WORK/connections"
CONN=$(python3 - "$BROKER_PID" "${BOOTSTRAP##*:}" "$CONNECTIONS" <<'PY'
import resource, socket, sys, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
def rss():
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")) * 1024
start, held, after = rss(), 0, 0
for _ in range(3):
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    time.sleep(1)
    held = max(held, rss())
    for s in socks:
        s.close()
    time.sleep(2)
    after = rss()
print(f"{(held - start) / n / 1024:.1f} KB per connection; RSS {start / 2**20:.1f} MB before, {after / 2**20:.1f} MB after")
PY
)
stop_broker
row "8. $CONNECTIONS idle connections, 3 rounds" "-" "-" "$CONN" "≤ 10 KB; after ≤ 2× before"

# 9. Transactions committed every 100 ms against the idempotent producer
# they build on, both acks=all.
start_broker "$WORK/transactions"
r=$(bench produce --topic idempotent --record-size 1024 --records "$RECORDS" --acks -1 -X enable.idempotence=true)
IDEMPOTENT=$(json_field "$r" mb_per_sec)
r=$(bench produce --topic transactional --record-size 1024 --records "$RECORDS" --acks -1 --transaction-ms 100)
TRANSACTIONAL=$(json_field "$r" mb_per_sec)
stop_broker
row "9. transactional producer committing every 100 ms, acks=-1" "$(json_field "$r" records_per_sec)" "$TRANSACTIONAL" \
    "$(awk -v t="$TRANSACTIONAL" -v i="$IDEMPOTENT" 'BEGIN {printf "%.0f%% of idempotent (%.1f MB/s)", 100 * t / i, i}')" "≥ 70% of idempotent"

# 10. End-to-end latency while the cleaner compacts a large dirty topic
# (paced by --log-cleaner-io-max-bytes-per-second, 64 MiB/s by default):
# the topic becomes cleanable (min.compaction.lag.ms drops to 0) just as
# the end-to-end run starts.
start_broker "$WORK/cleaning" --log-cleaner-backoff-ms 200
"$RUNNEL" topic create churn -b "$BOOTSTRAP" --config cleanup.policy=compact --config segment.bytes=1048576 \
  --config min.compaction.lag.ms=3600000 >/dev/null
bench produce --topic churn --record-size 1024 --records "$RECORDS" --acks 1 --keyed >/dev/null
"$RUNNEL" topic alter churn -b "$BOOTSTRAP" --config min.compaction.lag.ms=0 >/dev/null
r=$(bench e2e --topic w10 --record-size 1024 --rate "$E2E_RATE" --duration "$E2E_SECS" --acks -1)
for _ in $(seq 1 900); do grep -q "compacted partition=churn" "$BROKER_LOG" && break; sleep 0.2; done
CLEANED=$(grep "compacted partition=churn" "$BROKER_LOG" | python3 -c "import re,sys; t=sys.stdin.read(); b=sum(map(int,re.findall(r'bytes_before=(\d+)',t))); a=sum(map(int,re.findall(r'bytes_after=(\d+)',t))); print(f'{b/2**20:.0f} MB to {a/2**20:.0f} MB')")
stop_broker
row "10. end-to-end at $(( E2E_RATE / 1000 ))k rec/s while the cleaner compacts" "$(json_field "$r" records_per_sec)" "$(json_field "$r" mb_per_sec)" \
    "p50 $(json_field "$r" p50_ms) / p99 $(json_field "$r" p99_ms) ms; the pass rewrote $CLEANED" "p99 ≤ 10 ms"

# 11. Start-up replay of __consumer_offsets after many commits: compaction
# keeps it to the live offsets and the active segment, not the history.
start_broker "$WORK/commits" --log-cleaner-backoff-ms 1000
bench commit --topic committed --partitions 10 --consumers 100 --records "$RECORDS" >/dev/null
if [ "$SMOKE" = 0 ]; then
  for _ in $(seq 1 300); do grep -q "compacted partition=__consumer_offsets-0" "$BROKER_LOG" && break; sleep 0.2; done
fi
stop_broker
start_broker "$WORK/commits"
REPLAY=$(grep "replayed committed offsets" "$BROKER_LOG" | grep -o 'records=[0-9]* elapsed_ms=[0-9]*' | tr '=' ' ' | awk '{print $2 " records in " $4 " ms"}')
stop_broker
row "11. start-up after $(( RECORDS / 1000 ))k offset commits on 100 groups" "-" "-" "replayed ${REPLAY:-nothing}; ready in ${READY_MS} ms" "bounded by live offsets + 1 segment"

# 12-14. runnel-streams topologies over 200-byte JSON records (the input is
# written once, by the first run).
start_broker "$WORK/streams"
for topology in stateless windowed join; do
  r=$("$RUNNEL" bench streams --topology "$topology" --records "$STREAMS_RECORDS" --bootstrap-server "$BOOTSTRAP" --json)
  n=$([ "$topology" = stateless ] && echo 12 || ([ "$topology" = windowed ] && echo 13 || echo 14))
  row "$n. runnel-streams $topology, $(( STREAMS_RECORDS / 1000 ))k records" "$(whole "$(json_field "$r" records_per_sec)")" "-" \
      "CPU $(json_field "$r" cpu_seconds) s, RSS $(json_field "$r" rss_mb) MB" "≥ 3× Kafka Streams (bench/run.sh --streams)"
done
# 15-17. The same work written in SQL, planned by runnel-sql onto
# runnel-streams, beside its hand-written twin (serde structs reading and
# writing the same JSON), which bench sql runs first in a process of its own.
for topology in stateless windowed join; do
  r=$("$RUNNEL" bench sql --topology "$topology" --records "$STREAMS_RECORDS" --bootstrap-server "$BOOTSTRAP" --json)
  n=$([ "$topology" = stateless ] && echo 15 || ([ "$topology" = windowed ] && echo 16 || echo 17))
  share=$(python3 -c "import json,sys; print(round(100 * json.loads(sys.argv[1])['share']))" "$r")
  row "$n. runnel-sql $topology, $(( STREAMS_RECORDS / 1000 ))k records" "$(whole "$(json_field "$r" records_per_sec)")" "-" \
      "${share}% of hand-written ($(whole "$(json_field "$r" hand_written_records_per_sec)") rec/s); CPU $(json_field "$r" cpu_seconds) s, RSS $(json_field "$r" rss_mb) MB" "≥ 80% of hand-written"
done
stop_broker

echo "runnel benchmark suite ($([ "$SMOKE" = 1 ] && echo smoke || echo full)), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u +%Y-%m-%d)"
echo
echo "| workload | records/s | MB/s | latency / other | target |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "broker during workloads 1–5: ${CPU} CPU seconds, peak RSS ${PEAK} MB"
