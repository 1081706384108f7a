#!/usr/bin/env bash
# Benchmark: the gateway vs a direct connection, in front of a 3-broker Apache Kafka cluster, with
# many partitions and 50 concurrent clients (producers + consumers in groups), in the same run.
#
#   scripts/bench-kafka.sh [--quick]
#
# Starts, on loopback with free ports, in a temp dir: a KRaft cluster of 3 Apache Kafka 4.4 nodes
# (each broker+controller, node ids 1-3, one JVM each, tests/kafka/KafkaHost.java "node" mode: it
# formats the log dir and runs kafka.server.KafkaRaftServer, and halts when this script's pipe to
# its stdin closes, so no JVM outlives the script even on SIGKILL), and the gateway (plaintext
# listener, broker_port_count = 3, node_id_base = 1, authorization on with an allow-all policy for
# User:ANONYMOUS, audit at the default level). benches/kafka_bench_client.py then runs, per path
# (direct to the brokers / through the gateway), interleaved in rounds with the path order rotated:
#   workload   a fresh 48-partition RF 3 topic; 25 idempotent acks=all producers (linger.ms 50,
#              5 processes) and
#              25 consumers in 5 groups (subscribe, one process per group); produce MB while
#              every group consumes everything; every record checked in every group
#   CPU        utime+stime of the gateway, each JVM and the client processes over the run
#   latency    single-record acks=1 produce+flush, p50/p99, direct and gateway interleaved
# and prints a Markdown report to stdout, also written to benches/results/kafka-cluster.md.
# Progress and logs go to stderr. Missed targets do not fail the script; errors do.
#
# Env knobs: KGW_KAFKA_BENCH_MB (MB produced per run), KGW_KAFKA_BENCH_ROUNDS,
# KGW_KAFKA_BENCH_LAT_COUNT, KGW_KAFKA_BENCH_PARTITIONS (48), KGW_KAFKA_BENCH_RF (3),
# KGW_KAFKA_BENCH_ACKS (all | 1), KGW_KAFKA_BENCH_LINGER_MS (50), KGW_KAFKA_BENCH_WARMUP_MB,
# KGW_KAFKA_BENCH_HEAP_MB (640 per JVM), KGW_KAFKA_BENCH_OUT
# (report path), KGW_BENCH_GATEWAY (gateway binary; default: cargo build --release --locked, then
# target/release/kafka-gateway), KGW_BENCH_KEEP=1 (keep the temp dir).
set -euo pipefail

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_init bench-kafka

parse_mode '2,28p' "$@"

if [ "$MODE" = quick ]; then
  MB="${KGW_KAFKA_BENCH_MB:-150}"; ROUNDS="${KGW_KAFKA_BENCH_ROUNDS:-3}"
  LAT_COUNT="${KGW_KAFKA_BENCH_LAT_COUNT:-500}"; WARMUP_MB="${KGW_KAFKA_BENCH_WARMUP_MB:-40}"
else
  MB="${KGW_KAFKA_BENCH_MB:-300}"; ROUNDS="${KGW_KAFKA_BENCH_ROUNDS:-7}"
  LAT_COUNT="${KGW_KAFKA_BENCH_LAT_COUNT:-2000}"; WARMUP_MB="${KGW_KAFKA_BENCH_WARMUP_MB:-100}"
fi
PARTITIONS="${KGW_KAFKA_BENCH_PARTITIONS:-48}"
RF="${KGW_KAFKA_BENCH_RF:-3}"
ACKS="${KGW_KAFKA_BENCH_ACKS:-all}"
HEAP_MB="${KGW_KAFKA_BENCH_HEAP_MB:-640}"
LAT_WARMUP=200
# 25 producers over 48 partitions: each producer's rate per partition is low, so batches only get
# past a few records with a longer linger (at 5 ms most requests carried 1-2 records and the
# clients and brokers spent ~50 CPU-s/GB on request overhead)
LINGER_MS="${KGW_KAFKA_BENCH_LINGER_MS:-50}"
OUT="${KGW_KAFKA_BENCH_OUT:-$REPO/benches/results/kafka-cluster.md}"
NODES=(1 2 3)

# ------------------------------------------------------------------ processes + cleanup
# PIDS (bench-lib.sh) holds every process started here, JVMs included
JVM_PIDS=()
# shellcheck disable=SC2034  # read by cleanup (bench-lib.sh)
BENCH_STOP_TENTHS=100
bench_before_stop() {
  # closing the JVMs' stdin pipe makes KafkaHost halt them at once
  exec 7>&-
}
# shellcheck disable=SC2034  # BENCH_RC: the exit status cleanup (bench-lib.sh) ends with
bench_after_stop() {
  local pid
  for pid in "${JVM_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && say "WARNING: JVM $pid still running" && BENCH_RC=1
  done
  return 0
}

# ------------------------------------------------------------------ deps
[ -f "$CACHE/env.sh" ] || scripts/install-deps.sh >&2
load_env
[ -n "${KGW_KAFKA_CP:-}" ] || die "KGW_KAFKA_CP not set: run scripts/install-deps.sh"
[ -f "$CACHE/kafka-4.4.0/classes/KafkaHost.class" ] || die "KafkaHost.class missing: run scripts/install-deps.sh"
command -v java >/dev/null || die "java not found"
gateway_binary
make_work kgw-bench-kafka
say "mode $MODE: $ROUNDS rounds x ${MB} MB per path, $PARTITIONS partitions RF $RF, acks=$ACKS," \
    "latency $LAT_COUNT records per path; gateway $GW_SRC; work dir $WORK"

# ------------------------------------------------------------------ ports
# 9 broker ports + gateway bootstrap + admin, then 3 consecutive ports for the gateway's brokers
read -r -a PORTS < <(free_ports 11 3)
P_GW="${PORTS[9]}"; P_ADMIN="${PORTS[10]}"; P_GW_B="${PORTS[11]}"
declare -A P_CLIENT P_INTERNAL P_CTRL
for n in "${NODES[@]}"; do
  P_CLIENT[$n]="${PORTS[$(( (n-1)*3 ))]}"
  P_INTERNAL[$n]="${PORTS[$(( (n-1)*3 + 1 ))]}"
  P_CTRL[$n]="${PORTS[$(( (n-1)*3 + 2 ))]}"
done
VOTERS=""
BOOTSTRAP=""
for n in "${NODES[@]}"; do
  VOTERS+="${VOTERS:+,}$n@127.0.0.1:${P_CTRL[$n]}"
  BOOTSTRAP+="${BOOTSTRAP:+,}127.0.0.1:${P_CLIENT[$n]}"
done

# ------------------------------------------------------------------ Kafka cluster
MIN_ISR=$(( RF >= 3 ? 2 : 1 ))
cat >"$WORK/log4j2.properties" <<'EOF'
status = error
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = info
EOF
for n in "${NODES[@]}"; do
  mkdir -p "$WORK/kafka$n"
  cat >"$WORK/kafka$n/server.properties" <<EOF
# generated by scripts/bench-kafka.sh (after tests/common/apache.rs node_properties)
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$VOTERS
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:${P_CLIENT[$n]},INTERNAL://127.0.0.1:${P_INTERNAL[$n]},CONTROLLER://127.0.0.1:${P_CTRL[$n]}
advertised.listeners=PLAINTEXT://127.0.0.1:${P_CLIENT[$n]},INTERNAL://127.0.0.1:${P_INTERNAL[$n]}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT
inter.broker.listener.name=INTERNAL
log.dirs=$WORK/kafka$n/data
offsets.topic.replication.factor=3
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
share.coordinator.state.topic.num.partitions=4
default.replication.factor=$RF
min.insync.replicas=$MIN_ISR
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=3
num.io.threads=4
background.threads=2
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=2097152
EOF
done
JVM_OPTS=(-Xms256m "-Xmx${HEAP_MB}m" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
          -Djava.awt.headless=true "-Dlog4j2.configurationFile=$WORK/log4j2.properties"
          "-Dkgw.bench=$WORK")
# a KRaft cluster id: a UUID in Kafka's url-safe base64 (22 chars), not starting with '-' (an option)
CLUSTER_ID="$("$PY" -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if s[0].isalnum():
        print(s)
        break
')"
# One pipe into every JVM's stdin, write end held only by this shell (fd 7): when the shell exits,
# however, the JVMs see end of file and halt. Every other child gets 7>&- so it never holds it.
mkfifo "$WORK/jvm-stdin"
exec 7<>"$WORK/jvm-stdin"
declare -A JVM_PID
T_START=$(date +%s)
for n in "${NODES[@]}"; do
  java "${JVM_OPTS[@]}" -cp "$KGW_KAFKA_CP" KafkaHost node "$WORK/kafka$n/server.properties" "$CLUSTER_ID" \
    <"$WORK/jvm-stdin" >"$WORK/kafka$n/stdout" 2>"$WORK/kafka$n/server.log" 7>&- &
  JVM_PID[$n]=$!
  PIDS+=("$!"); JVM_PIDS+=("$!")
done
deadline=$(( $(date +%s) + 150 ))
for n in "${NODES[@]}"; do
  until grep -q '^started node' "$WORK/kafka$n/stdout" 2>/dev/null; do
    kill -0 "${JVM_PID[$n]}" 2>/dev/null || { tail -n 20 "$WORK/kafka$n/server.log" >&2; die "kafka$n exited during startup"; }
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 20 "$WORK/kafka$n/server.log" >&2; die "kafka$n not started after 150s"; }
    sleep 0.2
  done
done
"$PY" "$REPO/benches/kafka_bench_client.py" wait-cluster --bootstrap "$BOOTSTRAP" --brokers 3 --timeout 120 \
  >"$WORK/cluster.json" 2>>"$WORK/client.log" 7>&- || { tail -n 5 "$WORK/client.log" >&2; die "cluster not ready"; }
say "kafka: 3 nodes ready in $(( $(date +%s) - T_START ))s, pids ${JVM_PID[*]}, brokers $BOOTSTRAP"

# ------------------------------------------------------------------ gateway
{
  echo "# generated by scripts/bench-kafka.sh"
  gw_listener plain "$P_GW" "$P_GW_B" 3 1
  cat <<EOF
[upstream]
bootstrap_servers = [$(for n in "${NODES[@]}"; do printf '"127.0.0.1:%s"%s' "${P_CLIENT[$n]}" "$([ "$n" = 3 ] || echo ', ')"; done)]

[admin]
bind = "127.0.0.1:$P_ADMIN"

# Authorization on, as in production: the bench clients are User:ANONYMOUS (no SASL here), allowed
# everything. Every request is checked; allowed ones are forwarded as their own bytes.
[authorization]
model = "$REPO/policies/model.conf"
policy_files = ["$WORK/bench.policy"]

# audit at the default level (admin)
[audit]
dir = "$WORK/audit"
EOF
} >"$WORK/gateway.toml"
cat >"$WORK/bench.policy" <<EOF
p, User:ANONYMOUS, Topic, *, All, *, allow
p, User:ANONYMOUS, Group, *, All, *, allow
p, User:ANONYMOUS, TransactionalId, *, All, *, allow
p, User:ANONYMOUS, Cluster, kafka-cluster, All, *, allow
EOF
"$GW" check-config --config "$WORK/gateway.toml" >"$WORK/check-config.out" 2>&1 7>&- \
  || { cat "$WORK/check-config.out" >&2; die "gateway config rejected"; }
"$GW" run --config "$WORK/gateway.toml" >"$WORK/gateway.out" 2>"$WORK/gateway.log" </dev/null 7>&- &
GW_PID=$!
PIDS+=("$GW_PID")
# the JVMs die with this shell whatever kills it (their stdin pipe); the gateway gets a watchdog
SELF=$$
( while kill -0 "$SELF" 2>/dev/null; do sleep 1; done; kill -TERM "$GW_PID" 2>/dev/null ) </dev/null >/dev/null 2>&1 7>&- &
PIDS+=("$!")
wait_gateway gateway "$GW_PID" "$WORK/gateway.out" "$WORK/gateway.log" "$P_ADMIN" 1 30
"$PY" "$REPO/benches/kafka_bench_client.py" wait-cluster --bootstrap "127.0.0.1:$P_GW" --brokers 3 --timeout 60 \
  >"$WORK/cluster-gw.json" 2>>"$WORK/client.log" 7>&- || { tail -n 5 "$WORK/client.log" >&2; die "gateway does not list 3 brokers"; }
say "gateway: pid $GW_PID, $(tr '\n' ';' <"$WORK/gateway.out") brokers on ports $P_GW_B-$(( P_GW_B + 2 )), admin 127.0.0.1:$P_ADMIN"

# ------------------------------------------------------------------ client runs
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
METRICS="http://127.0.0.1:$P_ADMIN/metrics"
CPU_ARGS=()
for n in "${NODES[@]}"; do CPU_ARGS+=(--cpu-pid "kafka$n=${JVM_PID[$n]}"); done

run() { # path round mb
  local path="$1" round="$2" mb="$3" args
  case "$path" in
    direct)  args=(--bootstrap "$BOOTSTRAP" "${CPU_ARGS[@]}") ;;
    gateway) args=(--bootstrap "127.0.0.1:$P_GW" "${CPU_ARGS[@]}" --cpu-pid "gateway=$GW_PID" --metrics-url "$METRICS") ;;
  esac
  client_run "$WORK/run-$path-$round.json" "run on path $path (round $round)" \
    "$PY" "$REPO/benches/kafka_bench_client.py" run --path "$path" --round "$round" --mb "$mb" \
    --partitions "$PARTITIONS" --rf "$RF" --acks "$ACKS" --linger-ms "$LINGER_MS" "${args[@]}"
  relay_log kafka_bench_client "^\[kafka_bench_client\] $path r$round: produce"
}

PATHS=(direct gateway)
LOAD_BEFORE="$(loadavg)"
T0=$(date +%s)
say "warm-up: ${WARMUP_MB} MB per path (not reported)"
for p in "${PATHS[@]}"; do run "$p" 0 "$WARMUP_MB"; done
for (( r=1; r<=ROUNDS; r++ )); do
  rotated "$r" "${PATHS[@]}"
  say "round $r/$ROUNDS: ${ORDER[*]}"
  for p in "${ORDER[@]}"; do run "$p" "$r" "$MB"; done
done

say "latency: $LAT_COUNT records per path after $LAT_WARMUP warm-up, interleaved"
client_run "$WORK/latency.json" "latency client" \
  "$PY" "$REPO/benches/kafka_bench_client.py" latency --target "direct=$BOOTSTRAP" \
  --target "gateway=127.0.0.1:$P_GW" --rf "$RF" --count "$LAT_COUNT" --warmup "$LAT_WARMUP"
relay_log kafka_bench_client '^\[kafka_bench_client\] .*: latency' all
LOAD_AFTER="$(loadavg)"
say "measurements took $(( $(date +%s) - T0 ))s"

# ------------------------------------------------------------------ report
meta_begin "$WORK/meta.tsv"
meta_machine "$GW"
meta git_commit "prebuilt binary $GW_SRC, tree at $(git_short)"
meta mode "$MODE"
meta warmup_mb "$WARMUP_MB"
meta linger_ms "$LINGER_MS"
meta lat_count "$LAT_COUNT"
meta lat_warmup "$LAT_WARMUP"
meta rf "$RF"
meta loadavg "$LOAD_BEFORE -> $LOAD_AFTER"
meta jvm_opts "-Xmx${HEAP_MB}m, G1"
meta java "$(java -version 2>&1 | head -n1)"
meta fs "$(df -T "$WORK" | awk 'NR==2{print $2}')"
meta kafka_version "$(find "$CACHE/kafka-4.4.0/libs" -name 'kafka-server-[0-9]*.jar' -printf '%f\n' \
  | sed -n 's/^kafka-server-\(.*\)\.jar$/\1/p')"
meta brokers "$(printf 'kafka%s,' "${NODES[@]}" | sed 's/,$//')"
mkdir -p "$(dirname "$OUT")"
"$PY" "$REPO/benches/kafka_bench_client.py" report --results "$RESULTS" --meta "$META" --out "$OUT" 7>&-
say "report written to $OUT"
