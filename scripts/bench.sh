#!/usr/bin/env bash
# Benchmark: the gateway versus a direct connection to the broker, in the same run.
#
#   scripts/bench.sh [--quick]
#
# Starts, on loopback with free ports: one tansu broker (memory storage), the release gateway
# with a plaintext and a TLS listener in front of it, and (if haproxy is installed or installs
# from apt) a plain TCP relay in front of a second tansu that advertises the relay's port.
# benches/bench_client.py (confluent-kafka / librdkafka) then measures, per path:
#   throughput  produce + consume MB/s, rounds interleaved with the path order rotated each round
#   CPU         utime+stime of gateway / tansu / haproxy per phase, per GB moved
#   latency     single-record acks=1 produce+flush, p50/p99
# and prints a Markdown report to stdout, also written to benches/results/latest.md.
# Progress and logs go to stderr. Missed targets do not fail the script; errors do.
#
# Env knobs: KGW_BENCH_MB (MB per throughput run), KGW_BENCH_ROUNDS, KGW_BENCH_LAT_COUNT,
# KGW_BENCH_RELAY=0 (skip the haproxy relay), KGW_BENCH_KEEP=1 (keep the
# temp dir with logs and raw JSON results), KGW_BENCH_OUT (report path), KGW_BENCH_GATEWAY=PATH
# (benchmark this prebuilt binary instead of running cargo build), KGW_BENCH_REV=REV (build that
# committed revision from `git archive` in $KGW_CACHE instead of the working tree).
# See benches/README.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

MODE=full
case "${1:-}" in
  --quick) MODE=quick ;;
  "") ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

if [ "$MODE" = quick ]; then
  MB="${KGW_BENCH_MB:-200}"; ROUNDS="${KGW_BENCH_ROUNDS:-3}"
  LAT_COUNT="${KGW_BENCH_LAT_COUNT:-500}"
  WARMUP_MB=20
else
  MB="${KGW_BENCH_MB:-1000}"; ROUNDS="${KGW_BENCH_ROUNDS:-7}"
  LAT_COUNT="${KGW_BENCH_LAT_COUNT:-2000}"
  WARMUP_MB=50
fi
LAT_WARMUP=200
LINGER_MS=5
OUT="${KGW_BENCH_OUT:-$REPO/benches/results/latest.md}"

say() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ processes + cleanup
WORK=""
PIDS=()
cleanup() {
  local rc=$? i pid
  trap - EXIT INT TERM
  for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
    pid="${PIDS[$i]}"
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "${KGW_BENCH_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
      say "logs and raw results kept in $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ deps + build
say "mode $MODE: $ROUNDS rounds x ${MB} MB per path, latency $LAT_COUNT records per path"
scripts/install-deps.sh >&2
# shellcheck disable=SC1091
source "${KGW_CACHE:-$HOME/.cache/kafka-gateway}/env.sh"
PY="$KGW_PYTHON"
if [ -n "${KGW_BENCH_GATEWAY:-}" ]; then
  say "using the prebuilt gateway $KGW_BENCH_GATEWAY (KGW_BENCH_GATEWAY)"
  [ -x "$KGW_BENCH_GATEWAY" ] || die "$KGW_BENCH_GATEWAY is not an executable"
  GW_SRC="$KGW_BENCH_GATEWAY"
elif [ -n "${KGW_BENCH_REV:-}" ]; then
  # a committed revision, exported (git archive, read-only on the repo) and built outside the repo
  BENCH_SHA="$(git -C "$REPO" rev-parse --verify "${KGW_BENCH_REV}^{commit}")" || die "bad KGW_BENCH_REV"
  REV_SRC="$KGW_CACHE/bench-src/$BENCH_SHA"
  if [ ! -f "$REV_SRC/Cargo.toml" ]; then
    rm -rf "$REV_SRC.tmp" && mkdir -p "$REV_SRC.tmp"
    git -C "$REPO" archive --format=tar "$BENCH_SHA" | tar -x -C "$REV_SRC.tmp"
    mv "$REV_SRC.tmp" "$REV_SRC"
  fi
  say "building the release gateway at $KGW_BENCH_REV ($BENCH_SHA) in $REV_SRC"
  CARGO_TARGET_DIR="$KGW_CACHE/bench-target" cargo build --release --locked \
    --manifest-path "$REV_SRC/Cargo.toml" >&2 || die "cargo build of $KGW_BENCH_REV failed"
  GW_SRC="$KGW_CACHE/bench-target/release/kafka-gateway"
else
  say "building the release gateway"
  cargo build --release --locked >&2 || die "cargo build --release --locked failed"
  GW_SRC="target/release/kafka-gateway"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kgw-bench.XXXXXX")"
# a private copy: a concurrent rebuild of target/ must not swap the binary under the benchmark
cp "$GW_SRC" "$WORK/kafka-gateway"
GW="$WORK/kafka-gateway"
"$GW" certs dev --dir "$WORK/certs" >/dev/null
CA="$WORK/certs/ca.pem"

# ------------------------------------------------------------------ haproxy (optional)
RELAY=1
RELAY_SKIP=""
if [ "${KGW_BENCH_RELAY:-1}" = 0 ]; then
  RELAY=0; RELAY_SKIP="disabled with KGW_BENCH_RELAY=0"
elif ! command -v haproxy >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing haproxy from Debian (reference TCP relay)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get install -y -qq haproxy >&2 \
      || { timeout 300 apt-get update -qq >&2 && timeout 300 apt-get install -y -qq haproxy >&2; } \
      || true
  fi
  command -v haproxy >/dev/null || { RELAY=0; RELAY_SKIP="haproxy not installed and apt-get install failed"; }
fi
[ "$RELAY" = 1 ] || say "relay path skipped: $RELAY_SKIP"

# ------------------------------------------------------------------ ports
# 8 free loopback ports, held open together so they are distinct
read -r P_TANSU P_TANSU2 P_RELAY P_GW_PLAIN P_GW_TLS P_GW_PLAIN_B P_GW_TLS_B P_ADMIN < <(
  "$PY" - <<'PY'
import socket
socks = []
for _ in range(8):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_tansu() { # name listen_port advertised_port -> sets STARTED_PID
  local name="$1" port="$2" adv="$3" dir="$WORK/$1"
  mkdir -p "$dir"
  # cwd = its own dir: tansu reads a .env file from its cwd
  (cd "$dir" && exec env -u OTEL_EXPORTER_OTLP_ENDPOINT -u STORAGE_ENGINE -u SCHEMA_REGISTRY \
      "$KGW_TANSU" broker --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$adv" \
      --storage-engine memory://tansu/ --cluster-id "kgw-bench-$name" \
      >"$dir/tansu.log" 2>&1 </dev/null) &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  local deadline=$(( $(date +%s) + 30 ))
  until port_open "$port"; do
    kill -0 "$STARTED_PID" 2>/dev/null || { tail -n 20 "$dir/tansu.log" >&2; die "$name exited during startup"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "$name not listening on $port after 30s"
    sleep 0.1
  done
  say "$name: pid $STARTED_PID on 127.0.0.1:$port (advertised 127.0.0.1:$adv)"
}

start_tansu tansu "$P_TANSU" "$P_TANSU"
TANSU_PID=$STARTED_PID
# the direct path must answer Metadata before anything else starts
until scripts/broker.sh probe "127.0.0.1:$P_TANSU" >/dev/null 2>&1; do
  kill -0 "$TANSU_PID" 2>/dev/null || die "tansu died"
  sleep 0.2
done

# ------------------------------------------------------------------ gateway
cat >"$WORK/gateway.toml" <<EOF
# generated by scripts/bench.sh
[[listeners]]
name = "plain"
bind = "127.0.0.1:$P_GW_PLAIN"
advertised_host = "127.0.0.1"
broker_port_base = $P_GW_PLAIN_B
broker_port_count = 1
node_id_base = 111

[[listeners]]
name = "tls"
bind = "127.0.0.1:$P_GW_TLS"
advertised_host = "127.0.0.1"
broker_port_base = $P_GW_TLS_B
broker_port_count = 1
node_id_base = 111

[listeners.tls]
cert_file = "certs/server.pem"
key_file = "certs/server-key.pem"

[upstream]
bootstrap_servers = ["127.0.0.1:$P_TANSU"]

[admin]
bind = "127.0.0.1:$P_ADMIN"

# Authorization on, as in production: the bench client is User:ANONYMOUS (no SASL here), allowed
# what the workload needs. Every request is checked; allowed ones are forwarded as their own bytes.
[authorization]
model = "$REPO/policies/model.conf"
policy_files = ["$WORK/bench.policy"]

[audit]
dir = "$WORK/audit"
level = "${KGW_BENCH_AUDIT_LEVEL:-admin}"
EOF
cat >"$WORK/bench.policy" <<EOF
p, User:ANONYMOUS, Topic, *, All, *, allow
p, User:ANONYMOUS, Group, *, All, *, allow
p, User:ANONYMOUS, Cluster, kafka-cluster, All, *, allow
EOF
"$GW" run --config "$WORK/gateway.toml" >"$WORK/gateway.out" 2>"$WORK/gateway.log" </dev/null &
GW_PID=$!
PIDS+=("$GW_PID")
deadline=$(( $(date +%s) + 30 ))
until [ "$(grep -c '^listening ' "$WORK/gateway.out" 2>/dev/null)" = 2 ] \
    && curl -fsS "http://127.0.0.1:$P_ADMIN/readyz" >/dev/null 2>&1; do
  kill -0 "$GW_PID" 2>/dev/null || { tail -n 20 "$WORK/gateway.log" >&2; die "gateway exited during startup"; }
  [ "$(date +%s)" -lt "$deadline" ] || { tail -n 20 "$WORK/gateway.log" >&2; die "gateway not ready after 30s"; }
  sleep 0.1
done
say "gateway: pid $GW_PID, $(tr '\n' ';' <"$WORK/gateway.out") admin 127.0.0.1:$P_ADMIN"

# ------------------------------------------------------------------ relay: 2nd tansu behind haproxy
HA_PID=""; TANSU2_PID=""; HAPROXY_VERSION=""
if [ "$RELAY" = 1 ]; then
  # A TCP relay cannot rewrite broker addresses, so this tansu advertises the relay's port:
  # clients bootstrap through haproxy and are sent back to haproxy for the partition leader.
  start_tansu tansu2 "$P_TANSU2" "$P_RELAY"
  TANSU2_PID=$STARTED_PID
  cat >"$WORK/haproxy.cfg" <<EOF
global
    log stdout format raw local0 err
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 10m
    timeout server 10m
frontend kafka
    bind 127.0.0.1:$P_RELAY
    default_backend tansu2
backend tansu2
    server tansu2 127.0.0.1:$P_TANSU2
EOF
  haproxy -c -q -f "$WORK/haproxy.cfg" >&2 || die "haproxy rejected its config"
  haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 </dev/null &
  HA_PID=$!
  PIDS+=("$HA_PID")
  deadline=$(( $(date +%s) + 15 ))
  until scripts/broker.sh probe "127.0.0.1:$P_RELAY" >/dev/null 2>&1; do
    kill -0 "$HA_PID" 2>/dev/null || { cat "$WORK/haproxy.log" >&2; die "haproxy exited"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "relay 127.0.0.1:$P_RELAY not answering Metadata"
    sleep 0.2
  done
  HAPROXY_VERSION="$(haproxy -v 2>/dev/null | awk 'NR==1{print "HAProxy", $3}')"
  say "relay: haproxy pid $HA_PID on 127.0.0.1:$P_RELAY -> tansu2 127.0.0.1:$P_TANSU2"
fi

# ------------------------------------------------------------------ client runs
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
METRICS="http://127.0.0.1:$P_ADMIN/metrics"

path_args() { # path -> PATH_ARGS
  case "$1" in
    direct)   PATH_ARGS=(--bootstrap "127.0.0.1:$P_TANSU" --cpu-pid "tansu=$TANSU_PID") ;;
    gw-plain) PATH_ARGS=(--bootstrap "127.0.0.1:$P_GW_PLAIN" --cpu-pid "gateway=$GW_PID" --cpu-pid "tansu=$TANSU_PID"
                         --metrics-url "$METRICS") ;;
    gw-tls)   PATH_ARGS=(--bootstrap "127.0.0.1:$P_GW_TLS" --tls-ca "$CA" --cpu-pid "gateway=$GW_PID"
                         --cpu-pid "tansu=$TANSU_PID" --metrics-url "$METRICS") ;;
    relay)    PATH_ARGS=(--bootstrap "127.0.0.1:$P_RELAY" --cpu-pid "haproxy=$HA_PID" --cpu-pid "tansu2=$TANSU2_PID") ;;
  esac
}

client() { # subcommand path round args...
  local cmd="$1" path="$2" round="$3"
  shift 3
  path_args "$path"
  local out="$WORK/client-$cmd-$path-$round.json" log="$WORK/client.log"
  if ! "$PY" "$REPO/benches/bench_client.py" "$cmd" --path "$path" --round "$round" "${PATH_ARGS[@]}" "$@" \
      >"$out" 2>>"$log"; then
    tail -n 15 "$log" >&2
    die "client $cmd failed on path $path (round $round)"
  fi
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || die "process $pid died during the benchmark (logs in $WORK)"; done
  tail -n1 "$out" >>"$RESULTS"
  grep "^\[bench_client\] $path: \(produce\|latency\)" "$log" | tail -n1 | sed "s/^\[bench_client\]/[bench] round $round/" >&2 || true
}

PATHS=(direct gw-plain gw-tls)
[ "$RELAY" = 1 ] && PATHS+=(relay)
rotated() { # round -> ORDER
  local n=${#PATHS[@]} k i
  k=$(( ($1 - 1) % n ))
  ORDER=()
  for (( i=0; i<n; i++ )); do ORDER+=("${PATHS[$(( (k + i) % n ))]}"); done
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
T0=$(date +%s)
say "warm-up: ${WARMUP_MB} MB per path (not reported)"
for p in "${PATHS[@]}"; do client throughput "$p" 0 --mb "$WARMUP_MB" --linger-ms "$LINGER_MS"; done

for (( r=1; r<=ROUNDS; r++ )); do
  rotated "$r"
  say "throughput round $r/$ROUNDS: ${ORDER[*]}"
  for p in "${ORDER[@]}"; do client throughput "$p" "$r" --mb "$MB" --linger-ms "$LINGER_MS"; done
done

say "latency: $LAT_COUNT records per path after $LAT_WARMUP warm-up, paths interleaved: ${PATHS[*]}"
LAT_ARGS=(--target "direct=127.0.0.1:$P_TANSU" --target "gw-plain=127.0.0.1:$P_GW_PLAIN"
          --target "gw-tls=127.0.0.1:$P_GW_TLS" --tls-path gw-tls --tls-ca "$CA")
[ "$RELAY" = 1 ] && LAT_ARGS+=(--target "relay=127.0.0.1:$P_RELAY")
if ! "$PY" "$REPO/benches/bench_client.py" latency "${LAT_ARGS[@]}" --count "$LAT_COUNT" \
    --warmup "$LAT_WARMUP" >"$WORK/client-latency.json" 2>>"$WORK/client.log"; then
  tail -n 15 "$WORK/client.log" >&2
  die "latency client failed"
fi
tail -n1 "$WORK/client-latency.json" >>"$RESULTS"
grep '^\[bench_client\] .*: latency' "$WORK/client.log" | sed 's/^\[bench_client\]/[bench]/' >&2 || true
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
say "measurements took $(( $(date +%s) - T0 ))s"

# ------------------------------------------------------------------ report
GIT_COMMIT="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "${KGW_BENCH_GATEWAY:-}" ]; then
  GIT_COMMIT="prebuilt binary $KGW_BENCH_GATEWAY, tree at $GIT_COMMIT"
elif [ -n "${KGW_BENCH_REV:-}" ]; then
  GIT_COMMIT="$(git -C "$REPO" rev-parse --short "$BENCH_SHA") (KGW_BENCH_REV=$KGW_BENCH_REV, committed tree only)"
elif [ -n "$(git -C "$REPO" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
  GIT_COMMIT="$GIT_COMMIT+uncommitted changes in src/"
fi
export B_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" B_NPROC="$(nproc)" \
  B_CPU="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  B_MEM="$(awk '/^MemTotal/{printf "%.0f", $2/1048576}' /proc/meminfo)" B_KERNEL="$(uname -r)" \
  B_GW="$("$GW" --version)" B_GIT="$GIT_COMMIT" B_RUSTC="$(rustc --version 2>/dev/null || echo rustc?)" \
  B_TANSU="$("$KGW_TANSU" --version)" B_HAPROXY="$HAPROXY_VERSION" B_RELAY_SKIP="$RELAY_SKIP" \
  B_MODE="$MODE" B_MB="$MB" B_LINGER="$LINGER_MS" B_LAT_COUNT="$LAT_COUNT" \
  B_LAT_WARMUP="$LAT_WARMUP" B_LOAD="$LOAD_BEFORE -> $LOAD_AFTER"
"$PY" - "$WORK/meta.json" <<'PY'
import json, os, sys
e = os.environ
json.dump({
    "date": e["B_DATE"], "nproc": e["B_NPROC"], "cpu_model": e["B_CPU"], "mem_gib": e["B_MEM"],
    "kernel": e["B_KERNEL"], "gateway_version": e["B_GW"], "git_commit": e["B_GIT"],
    "rustc": e["B_RUSTC"], "tansu_version": e["B_TANSU"], "haproxy_version": e["B_HAPROXY"],
    "relay_skip_reason": e["B_RELAY_SKIP"], "mode": e["B_MODE"], "mb": e["B_MB"],
    "linger_ms": e["B_LINGER"],
    "lat_count": int(e["B_LAT_COUNT"]), "lat_warmup": int(e["B_LAT_WARMUP"]),
    "loadavg": e["B_LOAD"],
}, open(sys.argv[1], "w"), indent=1)
PY
mkdir -p "$(dirname "$OUT")"
"$PY" "$REPO/benches/bench_client.py" report --results "$RESULTS" --meta "$WORK/meta.json" --out "$OUT"
say "report written to $OUT"
