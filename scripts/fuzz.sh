#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (protocol layer: request decoding, response rewriting and
# merging, framing; SCRAM and OAUTHBEARER authentication, and the gateway's own SASL login to the
# brokers; the operator's config files).
# docs/fuzzing.md describes each target and its properties.
#
#   scripts/fuzz.sh [--capture] [SECONDS_PER_TARGET (default 60)] [TARGET...]   (default: all)
#
# Steps: install cargo-fuzz if missing (pinned); build every target once (`cargo fuzz build`);
# with --capture, record real client traffic (below); write the seed corpora
# (fuzz/src/bin/make_seeds/ -> fuzz/corpus/<target>/, generated, not committed, plus `cap-*`
# seeds from fuzz/captures/ when it exists); run each built target for SECONDS with a 512 MiB RSS
# and single-allocation limit
# (an allocation blow-up is a crash) and a per-input timeout (a hang is a crash). Prints, per
# target: executions, exec/s, time, corpus size and crashes; exits 1 if any target crashed,
# naming the artifact and how to replay and minimize it.
#
# Toolchain: works on stable. libFuzzer instrumentation and AddressSanitizer are nightly-only
# rustc flags (-Zsanitizer=address), so the build runs with RUSTC_BOOTSTRAP=1, which lets a
# stable rustc accept them; cargo-fuzz also treats that variable as "nightly".
#
# --capture: starts tansu ($KGW_TANSU from ~/.cache/kafka-gateway/env.sh, made by
# scripts/install-deps.sh) and the gateway (a debug build: plaintext listener, SCRAM with
# policies/users.toml, allow_all), with fuzz/capture_frames.py relaying between the clients and
# every gateway port, and between the gateway and tansu. Real processes listen on 127.0.0.2, the
# relays on 127.0.0.3, and both the gateway and tansu advertise 127.0.0.3, so every connection of
# every client (and of the gateway) passes a relay. librdkafka (confluent-kafka, through
# tests/clients/workload.py with $KGW_PYTHON) and the Java client (WorkloadClient, $KGW_JAVA_CP)
# then run a produce/consume roundtrip and an admin workload each. The frames land in
# fuzz/captures/ (replaced on each capture, kept between runs, git-ignored), which make_seeds
# turns into seeds. A client that fails is reported and skipped; the fuzzing still runs.
#
# Env knobs:
#   FUZZ_SANITIZER  address (default) | none. ASan also makes -malloc_limit_mb work (libFuzzer
#                   sees allocations through the sanitizer's hooks); with none only RSS is capped.
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10).
#   FUZZ_RSS_MB     RSS and single-allocation limit in MiB (default 512).
#   FUZZ_DECODE_MALLOC_MB  single-allocation limit of decode_request (default 8; see below).
#   FUZZ_DECODE_RSS_MB  RSS limit of decode_request (default 256; see below).
#   FUZZ_CAPTURE_PORT  first of the ports --capture uses (default 39000): tansu on it, the
#                   gateway's bootstrap on +1, its broker ports from +10 (32 of them).
#
# Outputs (all git-ignored): fuzz/target (its own target dir, apart from the main build),
# fuzz/corpus/<target>, fuzz/artifacts/<target>, fuzz/target/logs/<target>.log.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(decode_request rewrite_response merge_response frame_split scram_server upstream_sasl
  oauthbearer config_files audit_copy tenant_names gssapi_server)

CAPTURE=0
if [ "${1:-}" = "--capture" ]; then
  CAPTURE=1
  shift
fi
SECONDS_PER_TARGET="${1:-60}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -eq 0 ]; then
  echo "usage: $0 [--capture] [SECONDS_PER_TARGET] [TARGET...]   (targets: ${ALL_TARGETS[*]})" >&2
  exit 2
fi
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
  if [[ " ${ALL_TARGETS[*]} " != *" $t "* ]]; then
    echo "unknown target '$t' (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done

SANITIZER="${FUZZ_SANITIZER:-address}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
RSS_MB="${FUZZ_RSS_MB:-512}"

# As `cargo fuzz run` sets, plus a small ASan quarantine: the default 256 MiB of freed-but-held
# memory (and the allocator keeping it) pushed frame_split's RSS past 512 MiB in ~80 s with no
# live allocation to blame; with 16 MiB it stays near 120 MiB, so the RSS limit measures the code.
# The gateway forbids unsafe code, so a short use-after-free window costs little. The caller's
# ASAN_OPTIONS come last and win.
ASAN_OPTS="detect_odr_violation=0:quarantine_size_mb=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$REPO/fuzz"
TARGET_DIR="$FUZZ/target"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$TARGET_DIR/$TRIPLE/release"
LOG_DIR="$TARGET_DIR/logs"
cd "$REPO"

export RUSTC_BOOTSTRAP=1
FUZZ_FLAGS=(--fuzz-dir "$FUZZ" --target-dir "$TARGET_DIR" --sanitizer "$SANITIZER")

# ---------------------------------------------------------------- cargo-fuzz
if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# ---------------------------------------------------------------- build + seeds
echo "==> building fuzz targets ($(rustc --version), sanitizer: $SANITIZER)"
build_start=$(date +%s)
cargo fuzz build "${FUZZ_FLAGS[@]}"
echo "    built in $(( $(date +%s) - build_start ))s"

# ---------------------------------------------------------------- capture (optional)
# Every process started here is stopped by its pid on exit.
CAPTURE_PIDS=()
stop_capture() {
  local pid
  for pid in "${CAPTURE_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${CAPTURE_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  CAPTURE_PIDS=()
}
trap stop_capture EXIT

wait_port() { # host port seconds
  local i
  for i in $(seq $(( $3 * 10 ))); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

capture() {
  # shellcheck disable=SC1091
  source "${KGW_CACHE:-$HOME/.cache/kafka-gateway}/env.sh"
  local py="${KGW_PYTHON_BASE:-python3}"
  local base="${FUZZ_CAPTURE_PORT:-39000}"
  local real=127.0.0.2 relay=127.0.0.3
  local tansu_port=$base gw_port=$(( base + 1 )) broker_base=$(( base + 10 )) broker_count=32
  local run="$TARGET_DIR/capture" cap="$FUZZ/captures"
  rm -rf "$cap" "$run"
  mkdir -p "$cap" "$run"

  echo "==> capture: building the gateway (debug)"
  cargo build --bin kafka-gateway
  local gw="$REPO/target/debug/kafka-gateway"

  echo "==> capture: tansu on $real:$tansu_port, advertised (and relayed) at $relay:$tansu_port"
  (cd "$run" && exec "$KGW_TANSU" broker --listener-url "tcp://$real:$tansu_port" \
    --advertised-listener-url "tcp://$relay:$tansu_port" --storage-engine memory://tansu/ \
    --cluster-id fuzz-capture) >"$run/tansu.log" 2>&1 &
  CAPTURE_PIDS+=($!)
  "$py" "$FUZZ/capture_frames.py" --out "$cap" --leg upstream \
    --map "$relay:$tansu_port=$real:$tansu_port" >"$run/relay-upstream.log" 2>&1 &
  CAPTURE_PIDS+=($!)
  wait_port "$real" "$tansu_port" 30 || { echo "tansu did not start; see $run/tansu.log" >&2; return 1; }
  wait_port "$relay" "$tansu_port" 10 || { echo "relay did not start; see $run/relay-upstream.log" >&2; return 1; }

  cat >"$run/gateway.toml" <<TOML
# Written by scripts/fuzz.sh --capture.
[[listeners]]
name = "capture"
bind = "$real:$gw_port"
advertised_host = "$relay"
broker_port_base = $broker_base
broker_port_count = $broker_count
node_id_base = 100
sasl_mechanisms = ["SCRAM-SHA-512", "SCRAM-SHA-256"]

[upstream]
bootstrap_servers = ["$relay:$tansu_port"]

[authentication]
credentials_file = "$REPO/policies/users.toml"

[authorization]
allow_all = true
TOML
  echo "==> capture: gateway on $real:$gw_port (brokers from $broker_base), relayed at $relay"
  RUST_LOG=info "$gw" run --config "$run/gateway.toml" >"$run/gateway.out" 2>"$run/gateway.log" &
  CAPTURE_PIDS+=($!)
  local maps=(--map "$relay:$gw_port=$real:$gw_port") k
  for k in $(seq 0 $(( broker_count - 1 ))); do
    maps+=(--map "$relay:$(( broker_base + k ))=$real:$(( broker_base + k ))")
  done
  "$py" "$FUZZ/capture_frames.py" --out "$cap" --leg client "${maps[@]}" \
    >"$run/relay-client.log" 2>&1 &
  CAPTURE_PIDS+=($!)
  wait_port "$real" "$gw_port" 30 || { echo "gateway did not start; see $run/gateway.log" >&2; return 1; }
  wait_port "$relay" "$gw_port" 10 || { echo "relay did not start; see $run/relay-client.log" >&2; return 1; }

  local boot="$relay:$gw_port" ok=0 failed=0
  run_client() { # name command...
    local name=$1
    shift
    if "$@" >"$run/$name.out" 2>"$run/$name.err"; then
      ok=$(( ok + 1 ))
      echo "    $name: ok"
    else
      failed=$(( failed + 1 ))
      echo "    !! $name failed (exit $?): $(tail -c 300 "$run/$name.out" | tr '\n' ' ')"
    fi
  }
  local pyw=("$KGW_PYTHON" "$REPO/tests/clients/workload.py")
  local jw=(java -cp "$KGW_JAVA_CP" WorkloadClient)
  local alice=(--username alice --password alice-secret)
  echo "==> capture: clients through $boot"
  run_client librdkafka-roundtrip "${pyw[@]}" roundtrip --bootstrap "$boot" \
    --sasl-mechanism SCRAM-SHA-512 "${alice[@]}" --topic cap-py --count 500
  run_client librdkafka-admin "${pyw[@]}" admin --bootstrap "$boot" \
    --sasl-mechanism SCRAM-SHA-256 "${alice[@]}" --topic cap-py-admin
  if [ -n "${KGW_JAVA_CP:-}" ] && command -v java >/dev/null; then
    run_client java-roundtrip "${jw[@]}" roundtrip --bootstrap "$boot" \
      --sasl-mechanism SCRAM-SHA-256 "${alice[@]}" --topic cap-java --count 500 --group cap-java
    run_client java-admin "${jw[@]}" admin --bootstrap "$boot" \
      --sasl-mechanism SCRAM-SHA-512 "${alice[@]}" --topic cap-java-admin
  else
    echo "    !! no java or \$KGW_JAVA_CP: Java client skipped"
    failed=$(( failed + 1 ))
  fi
  stop_capture
  echo "    $ok client run(s) ok, $failed failed; $(find "$cap/frames" -name '*.req' | wc -l) requests," \
    "$(find "$cap/frames" -name '*.resp' | wc -l) responses captured in ${cap#"$REPO"/}" \
    "(logs: ${run#"$REPO"/})"
}

if [ "$CAPTURE" -eq 1 ]; then
  capture || echo "    !! capture incomplete; fuzzing with what was captured"
fi

echo "==> generating seed corpora"
"$BIN_DIR/make_seeds" "$FUZZ/corpus" "$FUZZ/captures"

# ---------------------------------------------------------------- run
mkdir -p "$LOG_DIR"
declare -A EXECS RATE SECS CORPUS NEW CRASH ARTIFACT
failed=0
run_start=$(date +%s)
for t in "${TARGETS[@]}"; do
  corpus="$FUZZ/corpus/$t"
  artifacts="$FUZZ/artifacts/$t"
  log="$LOG_DIR/$t.log"
  mkdir -p "$corpus" "$artifacts"
  marker="$(mktemp)"
  echo "==> $t: ${SECONDS_PER_TARGET}s (log: ${log#"$REPO"/})"
  start=$(date +%s)
  set +e
  # The binary built above is run directly rather than through `cargo fuzz run`, which would
  # rebuild first: the main crate is edited concurrently, and every target should fuzz the same
  # build. New corpus entries go to $corpus.
  # decode_request: one decode may allocate at most its input plus 1 MiB (the walker's
  # decoded-size budget, issue 11 item 5), so any single allocation over 8 MiB, on inputs of up
  # to the 1 MiB hostile seeds, means the accounting broke. The other targets keep the general cap.
  # The target itself also asserts, on every input, that no more than twice the input plus
  # 1 MiB is allocated at once while it is decoded or (Metadata) read and planned in place, and
  # its RSS is capped at 256 MiB (an ASan build of it peaks near 170 MiB on the 1 MiB seeds).
  malloc_mb="$RSS_MB"
  rss_mb="$RSS_MB"
  if [ "$t" = decode_request ]; then
    malloc_mb="${FUZZ_DECODE_MALLOC_MB:-8}"
    rss_mb="${FUZZ_DECODE_RSS_MB:-256}"
  fi
  ASAN_OPTIONS="$ASAN_OPTS" "$BIN_DIR/$t" -artifact_prefix="$artifacts/" \
    -max_total_time="$SECONDS_PER_TARGET" \
    -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" \
    -timeout="$TIMEOUT" -print_final_stats=1 "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  SECS[$t]=$(( $(date +%s) - start ))
  # Final stats are printed on a clean stop; after a crash, fall back to the last status line.
  EXECS[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  RATE[$t]=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ -z "${EXECS[$t]}" ]; then
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    EXECS[$t]=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
    RATE[$t]=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$last")
  fi
  NEW[$t]=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  CORPUS[$t]="$(find "$corpus" -type f | wc -l) files, $(du -sk "$corpus" | cut -f1) KiB"
  found=$(find "$artifacts" -type f -newer "$marker" | sort)
  rm -f "$marker"
  if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    failed=1
    CRASH[$t]="CRASH (exit $rc)"
    ARTIFACT[$t]="${found:-none written, see the log}"
    echo "    !! $t crashed; artifact(s): ${ARTIFACT[$t]}"
    grep -m1 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY:' "$log" | sed 's/^/    /' || true
  else
    CRASH[$t]="0"
  fi
done
total=$(( $(date +%s) - run_start ))

# ---------------------------------------------------------------- report
echo
printf '%-18s %12s %8s %7s %-24s %s\n' target executions exec/s time corpus crashes
for t in "${TARGETS[@]}"; do
  printf '%-18s %12s %8s %6ss %-24s %s\n' "$t" "${EXECS[$t]:-?}" "${RATE[$t]:-?}" \
    "${SECS[$t]}" "${CORPUS[$t]}" "${CRASH[$t]}"
done
echo "fuzzing wall time: ${total}s (${#TARGETS[@]} target(s) x ${SECONDS_PER_TARGET}s)"

if [ "$failed" -ne 0 ]; then
  echo
  for t in "${TARGETS[@]}"; do
    [ "${CRASH[$t]}" = "0" ] && continue
    echo "$t: ${ARTIFACT[$t]}"
    for a in ${ARTIFACT[$t]}; do
      [ -f "$a" ] || continue
      echo "  replay:   ASAN_OPTIONS=$ASAN_OPTS ${BIN_DIR#"$REPO"/}/$t $a"
      echo "            (or: RUSTC_BOOTSTRAP=1 cargo fuzz run ${FUZZ_FLAGS[*]} $t $a)"
      echo "  minimize: RUSTC_BOOTSTRAP=1 cargo fuzz tmin ${FUZZ_FLAGS[*]} $t $a"
      echo "  hex:      $(od -An -tx1 -v "$a" | tr -d ' \n' | cut -c1-400)"
    done
  done
  exit 1
fi
