#!/usr/bin/env bash
# Benchmark: the gateway versus a direct connection and versus HAProxy, all in the same run.
#
#   scripts/bench.sh [--quick]
#
# Starts, on loopback with free ports: a tansu broker (memory storage) and four release gateways
# in front of it -- "gateway" (policy + the default audit level; a plaintext and a TLS listener),
# "gateway-allow" (authorization.allow_all = true, no audit), "gateway-shadow" (as "gateway" plus
# a shadow policy that differs on every Produce and Fetch check: the cost of issue 16's shadow
# policy) and "gateway-audit-all" (policy + audit level all), all three plaintext -- and, if
# haproxy is installed or installs from apt, a plain TCP relay (haproxy, mode tcp) in front of a
# 2nd tansu and a TLS-terminating haproxy (mode tcp, bind ... ssl, the gateway's dev server cert)
# in front of a 3rd tansu; each of those tansus advertises its haproxy's port.
# benches/bench_client.py (confluent-kafka / librdkafka) then measures, per path:
#   throughput  produce + consume MB/s, rounds interleaved with the path order rotated each round
#   CPU         utime+stime of gateway / tansu / haproxy per phase, per GB moved
#   latency     single-record acks=1 produce+flush, p50/p99 (direct, gateway plaintext + TLS,
#               haproxy relay + TLS; not the allow_all / shadow / audit-all gateways)
# and prints a Markdown report with the issue-13 targets (and, as info, issue 16's shadow policy
# cost: gw-shadow's gateway CPU per GB over gw-plain's and over allow_all's) to stdout, also
# written to benches/results/latest.md. Progress and logs go to stderr. Missed targets do not
# fail the script; errors do (a shadow gateway that recorded no difference is one).
#
# Env knobs: KGW_BENCH_MB (MB per throughput run), KGW_BENCH_ROUNDS, KGW_BENCH_LAT_COUNT,
# KGW_BENCH_RELAY=0 (skip both haproxy paths), KGW_BENCH_AUTHZ=0 (skip the allow_all, shadow and
# audit-all gateways), KGW_BENCH_AUDIT_LEVEL (override the audit level of the main gateway and of
# the shadow one; default: none set, i.e. the gateway's default), KGW_BENCH_KEEP=1 (keep the temp
# dir with logs, audit trails and raw JSON results), KGW_BENCH_OUT (report path),
# KGW_BENCH_GATEWAY=PATH (benchmark this prebuilt binary instead of running cargo build),
# KGW_BENCH_REV=REV (build that committed revision from `git archive` in $KGW_CACHE instead of
# the working tree).
# See benches/README.md.
set -euo pipefail

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_init bench

parse_mode '2,/^# See benches/p' "$@"

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

# ------------------------------------------------------------------ deps + build
say "mode $MODE: $ROUNDS rounds x ${MB} MB per path, latency $LAT_COUNT records per path"
scripts/install-deps.sh >&2
load_env
if [ -z "${KGW_BENCH_GATEWAY:-}" ] && [ -n "${KGW_BENCH_REV:-}" ]; then
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
  # shellcheck disable=SC2034  # read by make_work (bench-lib.sh)
  GW_SRC="$KGW_CACHE/bench-target/release/kafka-gateway"
else
  gateway_binary
fi
make_work kgw-bench
"$GW" certs dev --dir "$WORK/certs" >/dev/null
CA="$WORK/certs/ca.pem"

# ------------------------------------------------------------------ haproxy (optional)
RELAY=1
RELAY_SKIP=""
if [ "${KGW_BENCH_RELAY:-1}" = 0 ]; then
  RELAY=0; RELAY_SKIP="disabled with KGW_BENCH_RELAY=0"
elif ! command -v haproxy >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing haproxy from Debian (reference TCP relay and TLS termination)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get install -y -qq haproxy >&2 \
      || { timeout 300 apt-get update -qq >&2 && timeout 300 apt-get install -y -qq haproxy >&2; } \
      || true
  fi
  command -v haproxy >/dev/null || { RELAY=0; RELAY_SKIP="haproxy not installed and apt-get install failed"; }
fi
[ "$RELAY" = 1 ] || say "haproxy paths skipped: $RELAY_SKIP"
AUTHZ_PATHS=1
if [ "${KGW_BENCH_AUTHZ:-1}" = 0 ]; then
  AUTHZ_PATHS=0
  say "allow_all, shadow and audit-all gateways skipped (KGW_BENCH_AUTHZ=0)"
fi

# ------------------------------------------------------------------ ports
# 19 free loopback ports, held open together so they are distinct
read -r P_TANSU P_TANSU2 P_TANSU3 P_RELAY P_RELAY_TLS \
        P_GW_PLAIN P_GW_TLS P_GW_PLAIN_B P_GW_TLS_B P_ADMIN \
        P_GWA_PLAIN P_GWA_PLAIN_B P_GWA_ADMIN P_GWF_PLAIN P_GWF_PLAIN_B P_GWF_ADMIN \
        P_GWS_PLAIN P_GWS_PLAIN_B P_GWS_ADMIN < <(free_ports 19)

start_tansu tansu "$P_TANSU" "$P_TANSU"
TANSU_PID=$STARTED_PID

# ------------------------------------------------------------------ gateways
# Four gateway processes in front of the same tansu, so that each one's CPU is its own:
#   gateway            policy + audit at the default level; plaintext + TLS (paths gw-plain, gw-tls)
#   gateway-allow      authorization.allow_all = true, no audit; plaintext     (path gw-allow)
#   gateway-shadow     as gateway, plus a shadow policy; plaintext              (path gw-shadow)
#   gateway-audit-all  policy + audit level all; plaintext                      (path gw-audit-all)
# The bench client is User:ANONYMOUS (no SASL here), allowed what the workload needs: with a
# policy every request is checked; allowed ones are forwarded as their own bytes.
printf '%s\n' "p, User:ANONYMOUS, Topic, *, All, *, allow" \
  "p, User:ANONYMOUS, Group, *, All, *, allow" \
  "p, User:ANONYMOUS, Cluster, kafka-cluster, All, *, allow" >"$WORK/bench.policy"
# The shadow policy (issue 16: its cost measured here) is bench.policy without Read and Write on
# topics: a shadow that agrees with the enforced policy only costs its lookups, while one that
# differs also builds, counts and audits the differences, the costlier case, so that is the one
# measured. Every Produce (Write) and Fetch (Read) check of the bench client is then a "lose"
# difference; the other topic operations the workload needs (creating, describing and deleting
# its topics, ListOffsets' Describe) stay allowed, so the differences are only those two.
printf '%s\n' "p, User:ANONYMOUS, Topic, *, Create, *, allow" \
  "p, User:ANONYMOUS, Topic, *, Delete, *, allow" \
  "p, User:ANONYMOUS, Topic, *, Describe, *, allow" \
  "p, User:ANONYMOUS, Group, *, All, *, allow" \
  "p, User:ANONYMOUS, Cluster, kafka-cluster, All, *, allow" >"$WORK/bench-shadow.policy"
if [ -n "${KGW_BENCH_AUDIT_LEVEL:-}" ]; then
  AUDIT_LEVEL_LINE="level = \"$KGW_BENCH_AUDIT_LEVEL\""
  AUDIT_LEVEL_DESC="$KGW_BENCH_AUDIT_LEVEL"
else
  # no level key: the gateway's own default (admin, src/audit/level.rs) is what runs
  AUDIT_LEVEL_LINE="# level not set: the gateway's default"
  AUDIT_LEVEL_DESC="default"
fi

gw_common() { # admin_port
  printf '[upstream]\nbootstrap_servers = ["127.0.0.1:%s"]\n\n[admin]\nbind = "127.0.0.1:%s"\n\n' "$P_TANSU" "$1"
}
gw_policy() {
  printf '[authorization]\nmodel = "%s"\npolicy_files = ["%s"]\n\n' "$REPO/policies/model.conf" "$WORK/bench.policy"
}
{
  echo "# generated by scripts/bench.sh: policy, audit at the default level"
  gw_listener plain "$P_GW_PLAIN" "$P_GW_PLAIN_B"
  gw_listener tls "$P_GW_TLS" "$P_GW_TLS_B"
  printf '[listeners.tls]\ncert_file = "%s"\nkey_file = "%s"\n\n' "$WORK/certs/server.pem" "$WORK/certs/server-key.pem"
  gw_common "$P_ADMIN"
  gw_policy
  printf '[audit]\ndir = "%s"\n%s\n' "$WORK/audit" "$AUDIT_LEVEL_LINE"
} >"$WORK/gateway.toml"
{
  echo "# generated by scripts/bench.sh: no authorization (allow_all), no audit"
  gw_listener plain "$P_GWA_PLAIN" "$P_GWA_PLAIN_B"
  gw_common "$P_GWA_ADMIN"
  printf '[authorization]\nallow_all = true\n'
} >"$WORK/gateway-allow.toml"
{
  # the same as gateway's plaintext side (same policy, same audit level) but for the shadow, so
  # gw-shadow / gw-plain is the shadow's own cost; an audit dir at any level, as the shadow's
  # differences are written at every level (none included)
  echo "# generated by scripts/bench.sh: policy + shadow policy, audit at the main gateway's level"
  gw_listener plain "$P_GWS_PLAIN" "$P_GWS_PLAIN_B"
  gw_common "$P_GWS_ADMIN"
  gw_policy
  printf 'shadow_policy_files = ["%s"]\n\n' "$WORK/bench-shadow.policy"
  printf '[audit]\ndir = "%s"\n%s\n' "$WORK/audit-shadow" "$AUDIT_LEVEL_LINE"
} >"$WORK/gateway-shadow.toml"
{
  echo "# generated by scripts/bench.sh: policy, audit level all"
  gw_listener plain "$P_GWF_PLAIN" "$P_GWF_PLAIN_B"
  gw_common "$P_GWF_ADMIN"
  gw_policy
  printf '[audit]\ndir = "%s"\nlevel = "all"\n' "$WORK/audit-all"
} >"$WORK/gateway-audit-all.toml"

start_gateway() { # name listeners admin_port -> STARTED_PID; config $WORK/name.toml
  local name="$1" want="$2" admin="$3"
  "$GW" run --config "$WORK/$name.toml" >"$WORK/$name.out" 2>"$WORK/$name.log" </dev/null &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  wait_gateway "$name" "$STARTED_PID" "$WORK/$name.out" "$WORK/$name.log" "$admin" "$want" 30
  say "$name: pid $STARTED_PID, $(tr '\n' ';' <"$WORK/$name.out") admin 127.0.0.1:$admin"
}

start_gateway gateway 2 "$P_ADMIN"
GW_PID=$STARTED_PID
GWA_PID=""; GWS_PID=""; GWF_PID=""
if [ "$AUTHZ_PATHS" = 1 ]; then
  start_gateway gateway-allow 1 "$P_GWA_ADMIN"
  GWA_PID=$STARTED_PID
  start_gateway gateway-shadow 1 "$P_GWS_ADMIN"
  GWS_PID=$STARTED_PID
  start_gateway gateway-audit-all 1 "$P_GWF_ADMIN"
  GWF_PID=$STARTED_PID
fi

# ------------------------------------------------------------------ haproxy: TCP relay and TLS termination
# A TCP relay cannot rewrite broker addresses, so each haproxy fronts its own tansu that advertises
# the haproxy port: clients bootstrap through haproxy and are sent back to it for the leader.
#   haproxy      bind ...                       -> tansu2   (path relay)
#   haproxy-tls  bind ... ssl crt <dev cert+key> -> tansu3   (path relay-tls, TLS terminated here)
# Both mode tcp, HAProxy's defaults otherwise (nbthread not set).
HA_PID=""; HAT_PID=""; TANSU2_PID=""; TANSU3_PID=""
HAPROXY_VERSION=""; HAPROXY_OPENSSL=""; HAPROXY_NBTHREAD=""
haproxy_cfg() { # frontend_bind_line backend_port
  printf '%s\n' "# generated by scripts/bench.sh; nbthread not set (HAProxy's default)" \
    "global" \
    "    log stdout format raw local0 err" \
    "defaults" \
    "    mode tcp" \
    "    log global" \
    "    timeout connect 5s" \
    "    timeout client 10m" \
    "    timeout server 10m" \
    "frontend kafka" \
    "    $1" \
    "    default_backend tansu" \
    "backend tansu" \
    "    server tansu 127.0.0.1:$2"
}
start_haproxy() { # name cfg -> STARTED_PID
  local name="$1" cfg="$2"
  haproxy -c -q -f "$cfg" >&2 || die "haproxy rejected $cfg"
  haproxy -db -f "$cfg" >"$WORK/$name.log" 2>&1 </dev/null &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
}
tls_session() { # port -> "TLSv1.3 TLS_AES_256_GCM_SHA384" (openssl s_client, verified against the dev CA)
  timeout 10 openssl s_client -connect "127.0.0.1:$1" -CAfile "$CA" -verify_return_error -brief \
      </dev/null 2>&1 | awk -F': ' '/^Protocol version/{p=$2} /^Ciphersuite/{c=$2} END{if (p && c) print p, c}' || true
}

if [ "$RELAY" = 1 ]; then
  start_tansu tansu2 "$P_TANSU2" "$P_RELAY"
  TANSU2_PID=$STARTED_PID
  start_tansu tansu3 "$P_TANSU3" "$P_RELAY_TLS"
  TANSU3_PID=$STARTED_PID
  # haproxy's crt: certificate and key in one PEM (the gateway's dev server cert)
  cat "$WORK/certs/server.pem" "$WORK/certs/server-key.pem" >"$WORK/certs/haproxy.pem"
  chmod 600 "$WORK/certs/haproxy.pem"
  haproxy_cfg "bind 127.0.0.1:$P_RELAY" "$P_TANSU2" >"$WORK/haproxy.cfg"
  haproxy_cfg "bind 127.0.0.1:$P_RELAY_TLS ssl crt $WORK/certs/haproxy.pem" "$P_TANSU3" >"$WORK/haproxy-tls.cfg"
  start_haproxy haproxy "$WORK/haproxy.cfg"
  HA_PID=$STARTED_PID
  start_haproxy haproxy-tls "$WORK/haproxy-tls.cfg"
  HAT_PID=$STARTED_PID
  deadline=$(( $(date +%s) + 15 ))
  until scripts/broker.sh probe "127.0.0.1:$P_RELAY" >/dev/null 2>&1; do
    kill -0 "$HA_PID" 2>/dev/null || { cat "$WORK/haproxy.log" >&2; die "haproxy exited"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "relay 127.0.0.1:$P_RELAY not answering Metadata"
    sleep 0.2
  done
  until [ -n "$(tls_session "$P_RELAY_TLS")" ]; do
    kill -0 "$HAT_PID" 2>/dev/null || { cat "$WORK/haproxy-tls.log" >&2; die "haproxy-tls exited"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "haproxy-tls 127.0.0.1:$P_RELAY_TLS: no verified TLS handshake"
    sleep 0.2
  done
  HAPROXY_VERSION="$(haproxy -v 2>/dev/null | awk 'NR==1{print "HAProxy", $3}')"
  HAPROXY_OPENSSL="$(haproxy -vv 2>/dev/null | sed -n 's/^Running on OpenSSL version : //p' | head -n1)"
  HAPROXY_NBTHREAD="$(haproxy -vv 2>/dev/null | sed -n 's/.*MAX_THREADS=[0-9]*, default=\([0-9]*\)).*/\1/p' | head -n1)"
  say "relay: haproxy pid $HA_PID on 127.0.0.1:$P_RELAY -> tansu2 127.0.0.1:$P_TANSU2"
  say "relay-tls: haproxy pid $HAT_PID on 127.0.0.1:$P_RELAY_TLS (TLS) -> tansu3 127.0.0.1:$P_TANSU3"
fi

# ------------------------------------------------------------------ client runs
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

path_args() { # path -> PATH_ARGS
  case "$1" in
    direct)       PATH_ARGS=(--bootstrap "127.0.0.1:$P_TANSU" --cpu-pid "tansu=$TANSU_PID") ;;
    gw-plain)     PATH_ARGS=(--bootstrap "127.0.0.1:$P_GW_PLAIN" --cpu-pid "gateway=$GW_PID"
                             --cpu-pid "tansu=$TANSU_PID" --metrics-url "http://127.0.0.1:$P_ADMIN/metrics") ;;
    gw-tls)       PATH_ARGS=(--bootstrap "127.0.0.1:$P_GW_TLS" --tls-ca "$CA" --cpu-pid "gateway=$GW_PID"
                             --cpu-pid "tansu=$TANSU_PID" --metrics-url "http://127.0.0.1:$P_ADMIN/metrics") ;;
    gw-allow)     PATH_ARGS=(--bootstrap "127.0.0.1:$P_GWA_PLAIN" --cpu-pid "gateway=$GWA_PID"
                             --cpu-pid "tansu=$TANSU_PID" --metrics-url "http://127.0.0.1:$P_GWA_ADMIN/metrics") ;;
    gw-shadow)    PATH_ARGS=(--bootstrap "127.0.0.1:$P_GWS_PLAIN" --cpu-pid "gateway=$GWS_PID"
                             --cpu-pid "tansu=$TANSU_PID" --metrics-url "http://127.0.0.1:$P_GWS_ADMIN/metrics") ;;
    gw-audit-all) PATH_ARGS=(--bootstrap "127.0.0.1:$P_GWF_PLAIN" --cpu-pid "gateway=$GWF_PID"
                             --cpu-pid "tansu=$TANSU_PID" --metrics-url "http://127.0.0.1:$P_GWF_ADMIN/metrics") ;;
    relay)        PATH_ARGS=(--bootstrap "127.0.0.1:$P_RELAY" --cpu-pid "haproxy=$HA_PID"
                             --cpu-pid "tansu2=$TANSU2_PID") ;;
    relay-tls)    PATH_ARGS=(--bootstrap "127.0.0.1:$P_RELAY_TLS" --tls-ca "$CA" --cpu-pid "haproxy=$HAT_PID"
                             --cpu-pid "tansu3=$TANSU3_PID") ;;
    *) die "unknown path $1" ;;
  esac
}

client() { # subcommand path round args...
  local cmd="$1" path="$2" round="$3"
  shift 3
  path_args "$path"
  client_run "$WORK/client-$cmd-$path-$round.json" "client $cmd on path $path (round $round)" \
    "$PY" "$REPO/benches/bench_client.py" "$cmd" --path "$path" --round "$round" "${PATH_ARGS[@]}" "$@"
  relay_log bench_client "^\[bench_client\] $path: \(produce\|latency\)" 1 "[bench] round $round"
}

# the four plaintext gateways next to each other, as their CPU is compared (rotation keeps them
# adjacent); gw-shadow right after gw-plain, the path its cost is taken against
PATHS=(direct)
[ "$AUTHZ_PATHS" = 1 ] && PATHS+=(gw-allow)
PATHS+=(gw-plain)
[ "$AUTHZ_PATHS" = 1 ] && PATHS+=(gw-shadow gw-audit-all)
PATHS+=(gw-tls)
[ "$RELAY" = 1 ] && PATHS+=(relay relay-tls)

LOAD_BEFORE="$(loadavg)"
T0=$(date +%s)
say "paths: ${PATHS[*]}"
say "warm-up: ${WARMUP_MB} MB per path (not reported)"
for p in "${PATHS[@]}"; do client throughput "$p" 0 --mb "$WARMUP_MB" --linger-ms "$LINGER_MS"; done

for (( r=1; r<=ROUNDS; r++ )); do
  rotated "$r" "${PATHS[@]}"
  say "throughput round $r/$ROUNDS: ${ORDER[*]}"
  for p in "${ORDER[@]}"; do client throughput "$p" "$r" --mb "$MB" --linger-ms "$LINGER_MS"; done
done
T_TP=$(( $(date +%s) - T0 ))

LAT_PATHS=(direct gw-plain gw-tls)
LAT_ARGS=(--target "direct=127.0.0.1:$P_TANSU" --target "gw-plain=127.0.0.1:$P_GW_PLAIN"
          --target "gw-tls=127.0.0.1:$P_GW_TLS" --tls-path gw-tls --tls-ca "$CA")
if [ "$RELAY" = 1 ]; then
  LAT_PATHS+=(relay relay-tls)
  LAT_ARGS+=(--target "relay=127.0.0.1:$P_RELAY" --target "relay-tls=127.0.0.1:$P_RELAY_TLS"
             --tls-path relay-tls)
fi
say "latency: $LAT_COUNT records per path after $LAT_WARMUP warm-up, paths interleaved: ${LAT_PATHS[*]}"
client_run "$WORK/client-latency.json" "latency client" \
  "$PY" "$REPO/benches/bench_client.py" latency "${LAT_ARGS[@]}" --count "$LAT_COUNT" --warmup "$LAT_WARMUP"
relay_log bench_client '^\[bench_client\] .*: latency' all
LOAD_AFTER="$(loadavg)"
T_ALL=$(( $(date +%s) - T0 ))
say "measurements took ${T_ALL}s (throughput ${T_TP}s)"

# ------------------------------------------------------------------ sanity: the audit trails
trail() { # dir -> "RECORDS PRODUCE_RECORDS BYTES" of the audit files in it
  local n=0 np=0 b=0
  if compgen -G "$1/*" >/dev/null; then
    n=$(cat "$1"/* | wc -l)
    np=$(cat "$1"/* | grep -c '"api_name":"Produce"' || true)
    b=$(cat "$1"/* | wc -c)
  fi
  echo "$n $np $b"
}
read -r AUDIT_RECORDS AUDIT_PRODUCE AUDIT_BYTES < <(trail "$WORK/audit")
AUDIT_ALL_RECORDS=""; AUDIT_ALL_PRODUCE=""; AUDIT_ALL_BYTES=""
SHADOW_TRAIL=""
if [ "$AUTHZ_PATHS" = 1 ]; then
  read -r AUDIT_ALL_RECORDS AUDIT_ALL_PRODUCE AUDIT_ALL_BYTES < <(trail "$WORK/audit-all")
  # level all records every allowed Produce: without those records the path measured nothing
  [ "$AUDIT_ALL_PRODUCE" -gt 0 ] \
    || die "gateway-audit-all (level all) wrote no Produce decision records (logs in $WORK)"
  read -r SHADOW_RECORDS _ SHADOW_BYTES < <(trail "$WORK/audit-shadow")
  SHADOW_DECISIONS=0; SHADOW_PRODUCE=0; SHADOW_FETCH=0
  if compgen -G "$WORK/audit-shadow/*" >/dev/null; then
    grep -h '"event":"shadow_decision"' "$WORK/audit-shadow"/* >"$WORK/shadow-decisions.jsonl" || true
    SHADOW_DECISIONS=$(wc -l <"$WORK/shadow-decisions.jsonl")
    SHADOW_PRODUCE=$(grep -c '"api_name":"Produce"' "$WORK/shadow-decisions.jsonl" || true)
    SHADOW_FETCH=$(grep -c '"api_name":"Fetch"' "$WORK/shadow-decisions.jsonl" || true)
  fi
  # every difference is counted by the metric, the records are bounded per connection (repeats
  # summarized): the metric says how many checks differed, the records that they reached the trail
  SHADOW_DIFFS=$(curl -fsS "http://127.0.0.1:$P_GWS_ADMIN/metrics" \
    | awk '/^kafka_gateway_shadow_decisions_total[{ ]/{n += $NF} END{printf "%d", n}') \
    || die "gateway-shadow: no /metrics on 127.0.0.1:$P_GWS_ADMIN"
  # a shadow that never differed would have measured its lookups only, not what is reported
  if [ "$SHADOW_DECISIONS" = 0 ] || [ "$SHADOW_DIFFS" = 0 ]; then
    die "gateway-shadow wrote $SHADOW_DECISIONS shadow_decision records and counted $SHADOW_DIFFS differences (logs in $WORK)"
  fi
  SHADOW_TRAIL="$SHADOW_RECORDS records, $SHADOW_DECISIONS of them shadow_decision ($SHADOW_PRODUCE Produce, $SHADOW_FETCH Fetch), $SHADOW_BYTES bytes; $SHADOW_DIFFS differences counted (shadow_decisions_total)"
fi

# ------------------------------------------------------------------ report
GIT_COMMIT="$(git_short)"
if [ -n "${KGW_BENCH_GATEWAY:-}" ]; then
  GIT_COMMIT="prebuilt binary $KGW_BENCH_GATEWAY, tree at $GIT_COMMIT"
elif [ -n "${KGW_BENCH_REV:-}" ]; then
  GIT_COMMIT="$(git -C "$REPO" rev-parse --short "$BENCH_SHA") (KGW_BENCH_REV=$KGW_BENCH_REV, committed tree only)"
elif [ -n "$(git -C "$REPO" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
  GIT_COMMIT="$GIT_COMMIT+uncommitted changes in src/"
fi
threads() { # pid -> its thread count now
  if [ -n "$1" ]; then awk '/^Threads:/{print $2}' "/proc/$1/status" 2>/dev/null || true; fi
}

# meta.tsv: one "key<TAB>value" a line, read by the report
meta_begin "$WORK/meta.tsv"
meta_machine "$GW"
meta git_commit "$GIT_COMMIT"
meta rustc "$(rustc --version 2>/dev/null || echo rustc?)"
meta tansu_version "$("$KGW_TANSU" --version)"
meta haproxy_version "$HAPROXY_VERSION"
meta haproxy_openssl "$HAPROXY_OPENSSL"
meta haproxy_nbthread_default "$HAPROXY_NBTHREAD"
meta relay_skip_reason "$RELAY_SKIP"
meta authz_paths "$AUTHZ_PATHS"
meta audit_level "$AUDIT_LEVEL_DESC"
meta audit_trail "$AUDIT_RECORDS records ($AUDIT_PRODUCE Produce decisions), $AUDIT_BYTES bytes"
if [ "$AUTHZ_PATHS" = 1 ]; then
  meta audit_all_trail "$AUDIT_ALL_RECORDS records ($AUDIT_ALL_PRODUCE Produce decisions), $AUDIT_ALL_BYTES bytes"
  meta audit_shadow_trail "$SHADOW_TRAIL"
fi
meta threads_gateway "$(threads "$GW_PID")"
meta threads_gateway_allow "$(threads "$GWA_PID")"
meta threads_gateway_shadow "$(threads "$GWS_PID")"
meta threads_gateway_audit_all "$(threads "$GWF_PID")"
meta threads_haproxy "$(threads "$HA_PID")"
meta threads_haproxy_tls "$(threads "$HAT_PID")"
meta tls_gw "$(tls_session "$P_GW_TLS")"
if [ "$RELAY" = 1 ]; then meta tls_relay "$(tls_session "$P_RELAY_TLS")"; fi
meta mode "$MODE"
meta mb "$MB"
meta linger_ms "$LINGER_MS"
meta lat_count "$LAT_COUNT"
meta lat_warmup "$LAT_WARMUP"
meta loadavg "$LOAD_BEFORE -> $LOAD_AFTER"
meta seconds "$T_ALL"
mkdir -p "$(dirname "$OUT")"
"$PY" "$REPO/benches/bench_client.py" report --results "$RESULTS" --meta "$META" --out "$OUT"
say "report written to $OUT"
