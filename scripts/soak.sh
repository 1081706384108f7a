#!/usr/bin/env bash
# Soak test: a mixed workload through the gateway for a while (produce, consume with group
# rebalances, admin operations, authentication failures, denied requests, policy reloads), sampling
# the gateway's RSS and open file descriptors, then checks: no crash, no lost record, bounded memory
# and descriptors, and an audit trail without gaps that verifies. Exits non-zero on any violation.
#
#   scripts/soak.sh [--duration SECONDS] [--release] [--rss-bound-mib N] [--out FILE]
#
# --duration     workload time in seconds (default 60: the CI variant; docs/soak.md has a 600 s run)
# --release      build and soak the release binary (default: the debug one the test suite builds)
# --rss-bound-mib  allowed RSS growth from the end of the warm-up to the end (default 16)
# --out          also copy the markdown summary there (e.g. benches/results/soak-10min.md)
#
# Everything runs in target/soak/run (wiped at start, kept afterwards for inspection): tansu with
# in-memory storage and the gateway on free ports, with their own config, credentials and policy
# (the workload edits the policy there, never the repository's). The summary is printed and written
# to target/soak/summary.md. See docs/soak.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=60
PROFILE=debug
RSS_BOUND_MIB=16
OUT=""
usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { printf '[soak] ERROR: %s\n' "$*" >&2; exit 2; }
say() { printf '[soak] %s\n' "$*" >&2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) [ $# -ge 2 ] || die "--duration needs a value"; DURATION="$2"; shift 2 ;;
    --duration=*) DURATION="${1#*=}"; shift ;;
    --release) PROFILE=release; shift ;;
    --rss-bound-mib) [ $# -ge 2 ] || die "--rss-bound-mib needs a value"; RSS_BOUND_MIB="$2"; shift 2 ;;
    --rss-bound-mib=*) RSS_BOUND_MIB="${1#*=}"; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a value"; OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 30 ] || die "--duration must be a whole number of seconds >= 30"
[[ "$RSS_BOUND_MIB" =~ ^[0-9]+$ ]] || die "--rss-bound-mib must be a whole number"

scripts/install-deps.sh
# shellcheck disable=SC1091
source "${KGW_CACHE:-$HOME/.cache/kafka-gateway}/env.sh"

if [ "$PROFILE" = release ]; then
  cargo build --release --locked
else
  cargo build --locked
fi
# Where cargo put it (CARGO_TARGET_DIR may point elsewhere, e.g. a shared build cache).
GW="$(cargo metadata --format-version 1 --no-deps | python3 -c "import json,sys; print(json.load(sys.stdin)[\"target_directory\"])")/$PROFILE/kafka-gateway"

SOAK=target/soak
RUN="$SOAK/run"
rm -rf "$RUN"
mkdir -p "$RUN"
RUN="$(cd "$RUN" && pwd)"

TANSU_PID=""
GW_PID=""
cleanup() {
  # Only the processes this script started, by their ids.
  [ -n "$GW_PID" ] && kill -KILL "$GW_PID" 2>/dev/null || true
  [ -n "$TANSU_PID" ] && kill -TERM "$TANSU_PID" 2>/dev/null || true
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # port seconds
  local i
  for i in $(seq $(( $2 * 10 ))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- broker
TANSU_PORT=$(free_port)
"$KGW_TANSU" broker --listener-url "tcp://127.0.0.1:$TANSU_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$TANSU_PORT" \
  --storage-engine memory://tansu/ --cluster-id kgw-soak >"$RUN/tansu.log" 2>&1 &
TANSU_PID=$!
wait_port "$TANSU_PORT" 20 || die "tansu did not listen on $TANSU_PORT (log: $RUN/tansu.log)"

# ---------------------------------------------------------------- gateway config
cp policies/users.toml policies/model.conf "$RUN/"
# The workload rewrites this file (adds and removes one rule, writes a broken version once) to
# exercise reloads; this is the version it starts from and returns to.
cat >"$RUN/soak.policy" <<'POLICY'
# Soak test policy (scripts/soak.sh). alice does everything the workload needs; bob may only
# describe, so his produce / create / delete attempts are denied.
p, User:alice, Topic, soak-*, All, *, allow
p, User:alice, Group, soak-*, All, *, allow
p, User:alice, Cluster, kafka-cluster, IdempotentWrite, *, allow
p, User:bob, Topic, soak-data-*, Describe, *, allow
p, User:bob, Topic, soak-toggle, Describe, *, allow
# Deny wins: nobody but super users deletes the data topics, whatever else is allowed.
p, User:*, Topic, soak-data-*, Delete, *, deny
POLICY

GW_PORT=$(free_port)
BROKER_PORT=$(free_port)
ADMIN_PORT=$(free_port)
cat >"$RUN/gateway.toml" <<EOF
# Written by scripts/soak.sh; relative paths are resolved against this directory.
[[listeners]]
name = "soak"
bind = "127.0.0.1:$GW_PORT"
advertised_host = "127.0.0.1"
broker_port_base = $BROKER_PORT
broker_port_count = 1
node_id_base = 111                    # tansu 0.6's node id
sasl_mechanisms = ["SCRAM-SHA-512"]

[upstream]
bootstrap_servers = ["127.0.0.1:$TANSU_PORT"]
metadata_refresh = "10s"              # more refreshes than the default, to soak that path too

[authentication]
credentials_file = "users.toml"
# Long-lived client connections re-authenticate (KIP-368) a few times during the run.
max_session_lifetime = "60s"
# Every soak client connects from 127.0.0.1: the per-address lockout (default 100 failures in 5m)
# would lock alice out along with the failing logins. Lockout itself is tested in tests/e2e_auth.rs;
# the per-name lockout (10) stays and is reached here by the wrong-password user.
lockout_max_failures_per_ip = 100000

[authorization]
model = "model.conf"
policy_files = ["soak.policy"]

[audit]
dir = "audit"
level = "all"                         # a record for every decision: the most the writer can be asked
fsync = "batch"
on_failure = "fail-closed"            # a record the trail cannot take refuses the request: no gap
max_file_bytes = 4194304              # small, so that the run rotates files and verify spans them
retain_files = 0

[admin]
bind = "127.0.0.1:$ADMIN_PORT"
EOF
"$GW" check-config --config "$RUN/gateway.toml" >"$RUN/check-config.txt" 2>&1 \
  || { cat "$RUN/check-config.txt" >&2; die "the soak config does not validate"; }

# ---------------------------------------------------------------- gateway
RUST_LOG=info "$GW" run --config "$RUN/gateway.toml" >"$RUN/gateway.out" 2>"$RUN/gateway.log" &
GW_PID=$!
ready=""
for _ in $(seq 300); do
  kill -0 "$GW_PID" 2>/dev/null || { tail -n 30 "$RUN/gateway.log" >&2; die "the gateway exited at start"; }
  if curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || die "the gateway was not ready within 30 s (log: $RUN/gateway.log)"
say "tansu 127.0.0.1:$TANSU_PORT (pid $TANSU_PID), gateway 127.0.0.1:$GW_PORT (pid $GW_PID, $PROFILE build), admin 127.0.0.1:$ADMIN_PORT"
say "run dir $RUN; workload for ${DURATION}s"

# ---------------------------------------------------------------- workload
set +e
"$KGW_PYTHON" tests/clients/soak.py run \
  --bootstrap "127.0.0.1:$GW_PORT" --admin "127.0.0.1:$ADMIN_PORT" --gateway-pid "$GW_PID" \
  --policy "$RUN/soak.policy" --duration "$DURATION" --out "$RUN/results.json" \
  --samples "$RUN/samples.csv" 2>"$RUN/workload.log"
WORKLOAD_RC=$?
set -e
[ "$WORKLOAD_RC" -le 1 ] || { tail -n 40 "$RUN/workload.log" >&2; say "the workload driver failed (exit $WORKLOAD_RC)"; }

# ---------------------------------------------------------------- graceful stop, audit
curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" >"$RUN/metrics-final.txt" 2>/dev/null || : >"$RUN/metrics-final.txt"
GW_EXIT=alive-after-40s
if kill -0 "$GW_PID" 2>/dev/null; then
  kill -TERM "$GW_PID"
  for _ in $(seq 400); do
    kill -0 "$GW_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! kill -0 "$GW_PID" 2>/dev/null; then
    set +e; wait "$GW_PID"; GW_EXIT=$?; set -e
    GW_PID=""
  fi
else
  set +e; wait "$GW_PID"; GW_EXIT="died-before-stop:$?"; set -e
  GW_PID=""
fi
set +e
"$GW" audit verify "$RUN/audit" >"$RUN/audit-verify.txt" 2>&1
VERIFY_RC=$?
"$GW" audit query "$RUN/audit" --json >"$RUN/audit.jsonl" 2>"$RUN/audit-query.err"
QUERY_RC=$?
set -e

set +e
"$KGW_PYTHON" tests/clients/soak.py finish \
  --results "$RUN/results.json" --metrics "$RUN/metrics-final.txt" \
  --gateway-exit "$GW_EXIT" --gateway-log "$RUN/gateway.log" \
  --verify-output "$RUN/audit-verify.txt" --verify-rc "$VERIFY_RC" \
  --audit-jsonl "$RUN/audit.jsonl" --query-rc "$QUERY_RC" \
  --profile "$PROFILE" --rss-bound-mib "$RSS_BOUND_MIB" \
  --summary "$SOAK/summary.md"
FINISH_RC=$?
set -e
if [ -n "$OUT" ]; then cp "$SOAK/summary.md" "$OUT"; say "summary copied to $OUT"; fi
exit "$FINISH_RC"
