#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (protocol layer: request decoding, response rewriting and
# merging, framing; SCRAM and OAUTHBEARER authentication; the operator's config files).
# docs/fuzzing.md describes each target and its properties.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]   (default: all targets)
#
# Steps: install cargo-fuzz if missing (pinned); build every target once (`cargo fuzz build`);
# write the seed corpora (fuzz/src/bin/make_seeds/ -> fuzz/corpus/<target>/, generated, not
# committed); run each built target for SECONDS with a 512 MiB RSS and single-allocation limit
# (an allocation blow-up is a crash) and a per-input timeout (a hang is a crash). Prints, per
# target: executions, exec/s, time, corpus size and crashes; exits 1 if any target crashed,
# naming the artifact and how to replay and minimize it.
#
# Toolchain: works on stable. libFuzzer instrumentation and AddressSanitizer are nightly-only
# rustc flags (-Zsanitizer=address), so the build runs with RUSTC_BOOTSTRAP=1, which lets a
# stable rustc accept them; cargo-fuzz also treats that variable as "nightly".
#
# Env knobs:
#   FUZZ_SANITIZER  address (default) | none. ASan also makes -malloc_limit_mb work (libFuzzer
#                   sees allocations through the sanitizer's hooks); with none only RSS is capped.
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10).
#   FUZZ_RSS_MB     RSS and single-allocation limit in MiB (default 512).
#
# Outputs (all git-ignored): fuzz/target (its own target dir, apart from the main build),
# fuzz/corpus/<target>, fuzz/artifacts/<target>, fuzz/target/logs/<target>.log.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(decode_request rewrite_response merge_response frame_split scram_server oauthbearer
  config_files)

SECONDS_PER_TARGET="${1:-60}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -eq 0 ]; then
  echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]   (targets: ${ALL_TARGETS[*]})" >&2
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

echo "==> generating seed corpora"
"$BIN_DIR/make_seeds" "$FUZZ/corpus"

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
  ASAN_OPTIONS="$ASAN_OPTS" "$BIN_DIR/$t" -artifact_prefix="$artifacts/" \
    -max_total_time="$SECONDS_PER_TARGET" \
    -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" \
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
