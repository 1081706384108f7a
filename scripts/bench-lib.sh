# shellcheck shell=bash
# Shared by the benchmark harnesses scripts/bench.sh, scripts/bench-conns.sh and
# scripts/bench-kafka.sh; sourced, not run. Each script calls `bench_init NAME` first.
#
# Provides: say/die with the script's prefix; the process list PIDS and an EXIT trap that stops
# everything in it (newest first) and removes the temp dir WORK unless KGW_BENCH_KEEP=1, the script
# failed or BENCH_KEEP_WORK=1; env.sh loading (PY); free loopback ports; port_open; start_tansu;
# the gateway binary (KGW_BENCH_GATEWAY, else cargo build --release --locked) and its private copy
# in WORK; waiting for a gateway; client runs appending to RESULTS; rotating the path order; the
# machine part of meta.tsv, the key<TAB>value file the reports read.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KGW_CACHE:-$HOME/.cache/kafka-gateway}"
BENCH_NAME=bench
WORK=""
PIDS=()             # every process started, stopped by cleanup in reverse order
BENCH_KEEP_WORK=0   # 1: keep WORK even on success (bench-conns under heaptrack)
BENCH_STOP_TENTHS=50  # how long cleanup waits for each process after SIGTERM, in 0.1 s
STARTED_PID=""

say() { printf '[%s] %s\n' "$BENCH_NAME" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

# ------------------------------------------------------------------ processes + cleanup
# Optional hooks a script may define: bench_before_stop (before the SIGTERMs) and
# bench_after_stop (after every process is gone; may set BENCH_RC to fail the run).
BENCH_RC=0
cleanup() {
  BENCH_RC=$?
  local i pid
  trap - EXIT INT TERM
  if declare -F bench_before_stop >/dev/null; then bench_before_stop; fi
  for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 "$BENCH_STOP_TENTHS"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if declare -F bench_after_stop >/dev/null; then bench_after_stop; fi
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "${KGW_BENCH_KEEP:-0}" = 1 ] || [ "$BENCH_RC" != 0 ] || [ "$BENCH_KEEP_WORK" = 1 ]; then
      say "logs and raw results kept in $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$BENCH_RC"
}

bench_init() { # name: the log prefix; installs the cleanup trap and cds to the repo
  BENCH_NAME="$1"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  cd "$REPO" || exit 1
}

check_alive() { # [pid...]: die if one of them (default: every started process) is gone
  local pid
  if [ "$#" = 0 ]; then set -- "${PIDS[@]}"; fi
  for pid in "$@"; do
    kill -0 "$pid" 2>/dev/null || die "process $pid died during the benchmark (logs in $WORK)"
  done
}

# ------------------------------------------------------------------ deps + gateway binary
load_env() { # sources $CACHE/env.sh (sets KGW_PYTHON, KGW_TANSU, ...) -> PY
  # shellcheck disable=SC1091
  source "$CACHE/env.sh" || die "no $CACHE/env.sh: run scripts/install-deps.sh first"
  PY="$KGW_PYTHON"
}

gateway_binary() { # -> GW_SRC: $KGW_BENCH_GATEWAY, else cargo build --release --locked
  if [ -n "${KGW_BENCH_GATEWAY:-}" ]; then
    say "using the prebuilt gateway $KGW_BENCH_GATEWAY (KGW_BENCH_GATEWAY)"
    GW_SRC="$KGW_BENCH_GATEWAY"
  else
    say "building the release gateway"
    cargo build --release --locked >&2 || die "cargo build --release --locked failed"
    GW_SRC="$REPO/target/release/kafka-gateway"
  fi
  [ -x "$GW_SRC" ] || die "$GW_SRC is not an executable"
}

make_work() { # temp-dir-prefix -> WORK, GW (a private copy of $GW_SRC in WORK)
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  # a private copy: a concurrent rebuild of target/ must not swap the binary under the benchmark
  cp "$GW_SRC" "$WORK/kafka-gateway"
  # shellcheck disable=SC2034  # used by the scripts
  GW="$WORK/kafka-gateway"
}

git_short() { git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown; }

# shellcheck disable=SC2034  # MODE is used by the scripts
parse_mode() { # help-sed-script [arg] -> MODE: --quick or nothing; --help prints the header
  MODE=full
  case "${2:-}" in
    --quick) MODE=quick ;;
    "") ;;
    -h|--help) sed -n "$1" "$0"; exit 0 ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
  esac
}

# ------------------------------------------------------------------ ports
free_ports() { # count [run]: count distinct free loopback ports, then (with run) the first of
  # run consecutive free ones; all held open together while chosen, so they are distinct
  "$PY" - "$@" <<'PY'
import socket, sys
n = int(sys.argv[1])
run = int(sys.argv[2]) if len(sys.argv) > 2 else 0
socks = []
def grab(port=0):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    socks.append(s)
    return s.getsockname()[1]
ports = [grab() for _ in range(n)]
while run:
    base = grab()
    try:
        for i in range(1, run):
            grab(base + i)
        ports.append(base)
        break
    except OSError:
        continue
print(" ".join(str(p) for p in ports))
PY
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ------------------------------------------------------------------ tansu + gateway
start_tansu() { # name listen_port advertised_port -> STARTED_PID, once it answers Metadata
  local name="$1" port="$2" adv="$3" dir="$WORK/$1" deadline
  mkdir -p "$dir"
  # cwd = its own dir: tansu reads a .env file from its cwd
  (cd "$dir" && exec env -u OTEL_EXPORTER_OTLP_ENDPOINT -u STORAGE_ENGINE -u SCHEMA_REGISTRY \
      "$KGW_TANSU" broker --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$adv" \
      --storage-engine memory://tansu/ --cluster-id "kgw-bench-$name" \
      >"$dir/tansu.log" 2>&1 </dev/null) &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  deadline=$(( $(date +%s) + 30 ))
  until port_open "$port"; do
    kill -0 "$STARTED_PID" 2>/dev/null || { tail -n 20 "$dir/tansu.log" >&2; die "$name exited during startup"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "$name not listening on $port after 30s"
    sleep 0.1
  done
  # it must answer Metadata before anything uses it
  until scripts/broker.sh probe "127.0.0.1:$port" >/dev/null 2>&1; do
    kill -0 "$STARTED_PID" 2>/dev/null || die "$name died"
    [ "$(date +%s)" -lt "$deadline" ] || die "$name not answering Metadata on $port after 30s"
    sleep 0.2
  done
  say "$name: pid $STARTED_PID on 127.0.0.1:$port (advertised 127.0.0.1:$adv)"
}

wait_gateway() { # name pid stdout log admin_port listeners timeout_s: until it printed that many
  # "listening" lines and its admin /readyz answers
  local name="$1" pid="$2" out="$3" log="$4" admin="$5" want="$6" secs="$7" deadline
  deadline=$(( $(date +%s) + secs ))
  until [ "$(grep -c '^listening ' "$out" 2>/dev/null)" = "$want" ] \
      && curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "$name exited during startup"; }
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 20 "$log" >&2; die "$name not ready after ${secs}s"; }
    sleep 0.1
  done
}

gw_listener() { # name bind_port broker_port_base [broker_port_count [node_id_base]]: gateway.toml
  # [[listeners]] table on 127.0.0.1 (defaults: 1 broker port, node id base 111), then a blank line
  printf '[[listeners]]\nname = "%s"\nbind = "127.0.0.1:%s"\nadvertised_host = "127.0.0.1"\n' "$1" "$2"
  printf 'broker_port_base = %s\nbroker_port_count = %s\nnode_id_base = %s\n\n' "$3" "${4:-1}" "${5:-111}"
}

# ------------------------------------------------------------------ client runs
client_run() { # out what cmd...: runs cmd (stdout -> out, stderr -> $WORK/client.log), dies
  # naming what on failure, checks every process is alive, appends out's last line to RESULTS
  local out="$1" what="$2"
  shift 2
  if ! "$@" >"$out" 2>>"$WORK/client.log" 7>&-; then
    tail -n 15 "$WORK/client.log" >&2
    die "$what failed"
  fi
  check_alive
  tail -n1 "$out" >>"$RESULTS"
}

relay_log() { # client-prefix grep-pattern [lines|all] [new-prefix]: the client's last matching
  # log lines (all of them with "all") to stderr, "[client-prefix]" replaced by "[NAME]" (or new-prefix)
  local last=(tail -n "${3:-1}")
  if [ "${3:-1}" = all ]; then last=(cat); fi
  grep "$2" "$WORK/client.log" | "${last[@]}" | sed "s/^\[$1\]/${4:-[$BENCH_NAME]}/" >&2 || true
}

rotated() { # round path... -> ORDER: the paths, rotated by (round - 1)
  local k i n
  k=$1
  shift
  n=$#
  k=$(( ((k - 1) % n + n) % n ))
  ORDER=()
  for (( i=0; i<n; i++ )); do
    ORDER+=("${@:$(( (k + i) % n + 1 )):1}")
  done
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ------------------------------------------------------------------ meta.tsv
META=""
meta_begin() { META="$1"; : >"$META"; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
meta_machine() { # gateway-binary: date, machine and gateway version
  meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
  meta nproc "$(nproc)"
  meta cpu_model "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  meta mem_gib "$(awk '/^MemTotal/{printf "%.0f", $2/1048576}' /proc/meminfo)"
  meta kernel "$(uname -r)"
  meta gateway_version "$("$1" --version)"
}
