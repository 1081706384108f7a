#!/usr/bin/env bash
# What SNI routing and tenant name translation cost, against the same gateway's plain listeners,
# in one run: one tansu, one gateway with four listeners (plaintext port-per-broker, plaintext
# tenant, TLS port-per-broker, TLS SNI), the librdkafka bench client (benches/bench_client.py).
#
#   scripts/bench-vclusters.sh [--quick]
#
# The SNI path needs its names to resolve: the script adds them to /etc/hosts (marked lines,
# removed on exit); without root the SNI path is skipped and the report says so.
# Env: KGW_BENCH_MB, KGW_BENCH_ROUNDS, KGW_BENCH_LAT_COUNT, KGW_BENCH_GATEWAY=PATH (prebuilt),
# KGW_BENCH_KEEP=1, KGW_BENCH_OUT (default benches/results/vclusters.md).
set -euo pipefail

# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_init bench-vclusters
parse_mode '2,/^set -euo/p' "$@"
if [ "$MODE" = quick ]; then
  MB="${KGW_BENCH_MB:-200}"; ROUNDS="${KGW_BENCH_ROUNDS:-3}"; LAT_COUNT="${KGW_BENCH_LAT_COUNT:-500}"
else
  MB="${KGW_BENCH_MB:-500}"; ROUNDS="${KGW_BENCH_ROUNDS:-5}"; LAT_COUNT="${KGW_BENCH_LAT_COUNT:-1500}"
fi
OUT="${KGW_BENCH_OUT:-$REPO/benches/results/vclusters.md}"
scripts/install-deps.sh >&2
load_env
gateway_binary
make_work kgw-bench-vc

DOMAIN=bench.kgw.localhost
HOSTS_MARK="# kafka-gateway-bench-vclusters"
SNI=1
HOSTS_NOTE="names added to /etc/hosts for the run"
if [ -w /etc/hosts ]; then
  grep -v "$HOSTS_MARK\$" /etc/hosts >"$WORK/hosts" || true
  echo "127.0.0.1 bootstrap.$DOMAIN broker-111.$DOMAIN $HOSTS_MARK" >>"$WORK/hosts"
  cat "$WORK/hosts" >/etc/hosts
  bench_after_stop() { # the names out of /etc/hosts again (bench-lib's cleanup hook)
    local kept
    kept="$(grep -v "$HOSTS_MARK\$" /etc/hosts || true)"
    printf '%s\n' "$kept" >/etc/hosts
  }
else
  SNI=0; HOSTS_NOTE="/etc/hosts not writable: SNI path skipped"
  say "$HOSTS_NOTE"
fi
"$GW" certs dev --dir "$WORK/certs" --server-name "*.$DOMAIN" >/dev/null
CA="$WORK/certs/ca.pem"

read -r P_TANSU P_PLAIN P_PLAIN_B P_TENANT P_TENANT_B P_TLS P_TLS_B P_SNI P_ADMIN < <(free_ports 9)
start_tansu tansu "$P_TANSU" "$P_TANSU"
TANSU_PID=$STARTED_PID
printf '%s\n' "p, User:ANONYMOUS, Topic, *, All, *, allow" "p, User:ANONYMOUS, Group, *, All, *, allow" \
  "p, User:ANONYMOUS, Cluster, kafka-cluster, All, *, allow" >"$WORK/bench.policy"
vc() { # name [tenant-prefix]
  printf '[[virtual_clusters]]\nname = "%s"\n' "$1"
  [ -n "${2:-}" ] && printf '[virtual_clusters.tenant]\nprefix = "%s"\n' "$2"
  printf '[virtual_clusters.upstream]\nbootstrap_servers = ["127.0.0.1:%s"]\n' "$P_TANSU"
  printf '[virtual_clusters.authorization]\nmodel = "%s"\npolicy_files = ["%s"]\n' \
    "$REPO/policies/model.conf" "$WORK/bench.policy"
}
listener() { # name bind base
  printf '[[virtual_clusters.listeners]]\nname = "%s"\nbind = "127.0.0.1:%s"\nadvertised_host = "127.0.0.1"\n' "$1" "$2"
  printf 'broker_port_base = %s\nbroker_port_count = 1\nnode_id_base = 111\n' "$3"
}
tls() { printf '[virtual_clusters.listeners.tls]\ncert_file = "%s"\nkey_file = "%s"\n' "$WORK/certs/server.pem" "$WORK/certs/server-key.pem"; }
{
  vc plain; listener vc-plain "$P_PLAIN" "$P_PLAIN_B"; listener vc-tls "$P_TLS" "$P_TLS_B"; tls
  vc tenant bench.; listener vc-tenant "$P_TENANT" "$P_TENANT_B"
  if [ "$SNI" = 1 ]; then
    vc sni
    printf '[[virtual_clusters.listeners]]\nname = "vc-sni"\nbind = "127.0.0.1:%s"\n' "$P_SNI"; tls
    printf '[virtual_clusters.listeners.sni]\nbootstrap = "bootstrap.%s"\nbroker = "broker-{node_id}.%s"\n' "$DOMAIN" "$DOMAIN"
  fi
  printf '[admin]\nbind = "127.0.0.1:%s"\n[audit]\ndir = "%s"\n' "$P_ADMIN" "$WORK/audit"
} >"$WORK/gateway.toml"
"$GW" run --config "$WORK/gateway.toml" >"$WORK/gateway.out" 2>"$WORK/gateway.log" </dev/null &
GW_PID=$!
PIDS+=("$GW_PID")
wait_gateway gateway "$GW_PID" "$WORK/gateway.out" "$WORK/gateway.log" "$P_ADMIN" $((3 + SNI)) 30

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
path_args() {
  case "$1" in
    direct)    PATH_ARGS=(--bootstrap "127.0.0.1:$P_TANSU" --cpu-pid "tansu=$TANSU_PID") ;;
    vc-plain)  PATH_ARGS=(--bootstrap "127.0.0.1:$P_PLAIN" --cpu-pid "gateway=$GW_PID") ;;
    vc-tenant) PATH_ARGS=(--bootstrap "127.0.0.1:$P_TENANT" --cpu-pid "gateway=$GW_PID") ;;
    vc-tls)    PATH_ARGS=(--bootstrap "127.0.0.1:$P_TLS" --tls-ca "$CA" --cpu-pid "gateway=$GW_PID") ;;
    vc-sni)    PATH_ARGS=(--bootstrap "bootstrap.$DOMAIN:$P_SNI" --tls-ca "$CA" --cpu-pid "gateway=$GW_PID") ;;
  esac
}
client() { # cmd path round args...
  local cmd="$1" path="$2" round="$3"; shift 3
  path_args "$path"
  client_run "$WORK/client-$cmd-$path-$round.json" "client $cmd on $path (round $round)" \
    "$PY" "$REPO/benches/bench_client.py" "$cmd" --path "$path" --round "$round" "${PATH_ARGS[@]}" "$@"
  relay_log bench_client "^\[bench_client\] $path: produce" 1 "[bench-vclusters] round $round"
}
PATHS=(direct vc-plain vc-tenant vc-tls)
[ "$SNI" = 1 ] && PATHS+=(vc-sni)
for p in "${PATHS[@]}"; do client throughput "$p" 0 --mb 20 --linger-ms 5; done
for (( r=1; r<=ROUNDS; r++ )); do
  rotated "$r" "${PATHS[@]}"
  for p in "${ORDER[@]}"; do client throughput "$p" "$r" --mb "$MB" --linger-ms 5; done
done
LAT_ARGS=(--target "direct=127.0.0.1:$P_TANSU" --target "vc-plain=127.0.0.1:$P_PLAIN"
          --target "vc-tenant=127.0.0.1:$P_TENANT" --target "vc-tls=127.0.0.1:$P_TLS"
          --tls-path vc-tls --tls-ca "$CA")
[ "$SNI" = 1 ] && LAT_ARGS+=(--target "vc-sni=bootstrap.$DOMAIN:$P_SNI" --tls-path vc-sni)
client_run "$WORK/client-latency.json" "latency client" \
  "$PY" "$REPO/benches/bench_client.py" latency "${LAT_ARGS[@]}" --count "$LAT_COUNT" --warmup 200
check_alive

meta_begin "$WORK/meta.tsv"
meta_machine "$GW"
meta rounds "$ROUNDS x $MB MB per path, paths rotated every round"
meta mb "$MB"
meta hosts "$HOSTS_NOTE"
mkdir -p "$(dirname "$OUT")"
"$PY" "$REPO/benches/vclusters_report.py" --results "$RESULTS" --meta "$META" --out "$OUT"
say "report written to $OUT"
