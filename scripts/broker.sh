#!/usr/bin/env bash
# Start / stop a local tansu 0.6.0 broker (Kafka-compatible, in-memory storage)
# for the gateway's end-to-end tests.
#
#   scripts/broker.sh start PORT [DATADIR]   start on 127.0.0.1:PORT, wait until ready
#   scripts/broker.sh stop  [PORT]           stop the one on PORT (default: all started by this script)
#   scripts/broker.sh status [PORT]          print pid + Metadata (node id) of running brokers
#   scripts/broker.sh probe HOST:PORT        one raw Kafka Metadata v1 request, prints brokers
#
# tansu runs as:
#   tansu broker --listener-url tcp://127.0.0.1:PORT --advertised-listener-url tcp://127.0.0.1:PORT \
#                --storage-engine memory://tansu/ --cluster-id kgw-test-cluster
# with cwd=DATADIR (tansu reads a .env file from its cwd), log DATADIR/tansu.log,
# pid file $KGW_RUN_DIR/tansu-PORT.pid. tansu 0.6.0 advertises node id 111.
#
# "Ready" = the port accepts TCP AND a Kafka Metadata request returns the
# advertised broker (checked with a stdlib-only python probe, no venv needed).
#
# Env: KGW_TANSU (binary; default from $KGW_CACHE/env.sh written by install-deps.sh),
#      KGW_RUN_DIR (pid files; default ${TMPDIR:-/tmp}/kgw-brokers),
#      KGW_BROKER_ADVERTISED_URL (override advertised listener),
#      KGW_BROKER_CLUSTER_ID (default kgw-test-cluster),
#      KGW_BROKER_START_TIMEOUT (seconds, default 30), KGW_BROKER_ARGS (extra tansu args).
set -euo pipefail

CACHE="${KGW_CACHE:-$HOME/.cache/kafka-gateway}"
if [ -z "${KGW_TANSU:-}" ] && [ -f "$CACHE/env.sh" ]; then
  # shellcheck disable=SC1091
  . "$CACHE/env.sh"
fi
TANSU="${KGW_TANSU:-$CACHE/bin/tansu}"
RUN_DIR="${KGW_RUN_DIR:-${TMPDIR:-/tmp}/kgw-brokers}"
CLUSTER_ID="${KGW_BROKER_CLUSTER_ID:-kgw-test-cluster}"
START_TIMEOUT="${KGW_BROKER_START_TIMEOUT:-30}"
PYBASE="${KGW_PYTHON_BASE:-python3}"

say() { printf '[broker.sh] %s\n' "$*" >&2; }
die() { printf '[broker.sh] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,9p' "$0" >&2; exit 2; }

# Raw Kafka Metadata v1 request (stdlib only). Prints "node_id host port" per
# broker and "controller ID"; exit 1 on any failure.
probe() { # host port [timeout]
  "$PYBASE" - "$1" "$2" "${3:-2}" <<'PY'
import socket, struct, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(timeout)
    cid = b"kgw-broker-probe"
    # header: api_key=3 (Metadata), api_version=1, correlation_id=7, client_id
    # body: topics = null (-1) -> all topics
    req = struct.pack(">hhih", 3, 1, 7, len(cid)) + cid + struct.pack(">i", -1)
    s.sendall(struct.pack(">i", len(req)) + req)
    def readn(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise EOFError("connection closed")
            b += c
        return b
    (size,) = struct.unpack(">i", readn(4))
    buf = readn(size)
    off = 0
    def take(fmt):
        global off
        v = struct.unpack_from(fmt, buf, off)
        off += struct.calcsize(fmt)
        return v[0]
    def string():
        global off
        n = take(">h")
        if n < 0:
            return None
        v = buf[off:off + n].decode()
        off += n
        return v
    assert take(">i") == 7, "bad correlation id"
    nb = take(">i")
    for _ in range(nb):
        node, h, p = take(">i"), string(), take(">i")
        string()  # rack
        print(node, h, p)
    print("controller", take(">i"))
    if nb < 1:
        sys.exit(1)
except Exception as e:  # noqa: BLE001
    print("probe failed: %s" % e, file=sys.stderr)
    sys.exit(1)
PY
}

pidfile() { echo "$RUN_DIR/tansu-$1.pid"; }

# pid from pid file if that process is alive and is our tansu on that port
live_pid() { # port
  local f pid
  f="$(pidfile "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "tansu.*--listener-url tcp://127.0.0.1:$1 " || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd_start() {
  local port="${1:-}" datadir="${2:-}"
  [[ "$port" =~ ^[0-9]+$ ]] || usage
  [ -x "$TANSU" ] || die "tansu not found at $TANSU; run scripts/install-deps.sh first"
  datadir="${datadir:-$RUN_DIR/$port}"
  mkdir -p "$RUN_DIR"
  local log pid
  if pid="$(live_pid "$port")"; then
    say "tansu already running on 127.0.0.1:$port (pid $pid)"
    datadir="$(readlink "/proc/$pid/cwd" 2>/dev/null || echo "${datadir}")"
    log="$datadir/tansu.log"
  else
    port_open "$port" && die "127.0.0.1:$port is already in use by another process"
    mkdir -p "$datadir"
    datadir="$(cd "$datadir" && pwd)"
    log="$datadir/tansu.log"
    local adv="${KGW_BROKER_ADVERTISED_URL:-tcp://127.0.0.1:$port}"
    say "starting $("$TANSU" --version) on 127.0.0.1:$port (advertised $adv), log $log"
    # shellcheck disable=SC2086
    (cd "$datadir" && exec env -u OTEL_EXPORTER_OTLP_ENDPOINT -u STORAGE_ENGINE -u SCHEMA_REGISTRY \
        nohup "$TANSU" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "$adv" \
        --storage-engine "memory://tansu/" \
        --cluster-id "$CLUSTER_ID" ${KGW_BROKER_ARGS:-} \
        >>"$log" 2>&1 </dev/null) &
    pid=$!
    echo "$pid" > "$(pidfile "$port")"
  fi
  local deadline=$(( $(date +%s) + START_TIMEOUT )) out=""
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$(pidfile "$port")"
      tail -n 20 "$log" >&2 || true
      die "tansu exited during startup (see $log)"
    fi
    if port_open "$port" && out="$(probe 127.0.0.1 "$port" 2 2>/dev/null)"; then
      break
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "tansu on port $port not ready after ${START_TIMEOUT}s (see $log)"
    sleep 0.1
  done
  say "ready: pid $pid, metadata: $(echo "$out" | tr '\n' ';')"
  echo "$out" > "$datadir/metadata.txt"
  # machine-readable line for harnesses
  local node
  node="$(echo "$out" | awk 'NR==1{print $1}')"
  echo "KGW_BROKER_PORT=$port KGW_BROKER_PID=$pid KGW_BROKER_NODE_ID=$node KGW_BROKER_LOG=$log"
}

stop_one() { # port
  local port="$1" pid f
  f="$(pidfile "$port")"
  if ! pid="$(live_pid "$port")"; then
    [ -f "$f" ] && say "no live tansu for port $port (stale pid file removed)" || say "no tansu started on port $port"
    rm -f "$f"
    return 0
  fi
  say "stopping tansu on port $port (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cmd_stop() {
  if [ -n "${1:-}" ]; then
    stop_one "$1"
    return
  fi
  local f any=0
  for f in "$RUN_DIR"/tansu-*.pid; do
    [ -e "$f" ] || continue
    any=1
    f="${f##*/tansu-}"
    stop_one "${f%.pid}"
  done
  [ "$any" = 1 ] || say "no brokers recorded in $RUN_DIR"
}

cmd_status() {
  local ports=() f p pid rc=0
  if [ -n "${1:-}" ]; then ports=("$1"); else
    for f in "$RUN_DIR"/tansu-*.pid; do [ -e "$f" ] || continue; f="${f##*/tansu-}"; ports+=("${f%.pid}"); done
  fi
  for p in "${ports[@]}"; do
    if pid="$(live_pid "$p")"; then
      echo "port $p pid $pid: $(probe 127.0.0.1 "$p" 2 2>&1 | tr '\n' ';')"
    else
      echo "port $p: not running"; rc=1
    fi
  done
  return $rc
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) shift; cmd_status "$@" ;;
  probe) shift; [ -n "${1:-}" ] || usage; probe "${1%:*}" "${1##*:}" 5 ;;
  *) usage ;;
esac
