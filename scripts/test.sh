#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
# installs the real brokers and clients the tests drive, then formatting, lints, unit, protocol and
# end-to-end tests against Apache Kafka 4.4 (and tansu, the quickstart's broker, in a smoke suite)
# with librdkafka and the Apache Java clients 3.9.1 and 4.4.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

# First, before any cargo command: it also installs the Debian packages the build needs (libclang and
# the MIT krb5 headers, for the libgssapi crate) and the Kerberos tests' KDC.
step "installing test dependencies (MIT Kerberos, Apache Kafka 4.4, tansu, confluent-kafka, kafka-python, kafka-clients 3.9.1 and 4.4)"
scripts/install-deps.sh
# shellcheck disable=SC1091
source "${KGW_CACHE:-$HOME/.cache/kafka-gateway}/env.sh"

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "generated wire schema is current (needs the crate sources cargo fetched above)"
python3 scripts/gen-wire-schema.py --check

step "cargo test (unit, protocol, end-to-end)"
# The per-address cap test holds 1,000 client connections (and the gateway their 1,000 sockets).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 4096 ] ||
  echo "warning: ulimit -n is $(ulimit -n); the 1,000-connection test needs about 2,100" >&2
cargo test --locked --lib --bins --tests -- --test-threads="${KGW_TEST_THREADS:-4}"

step "soak, short variant (60 s mixed workload; scripts/soak.sh --duration 600 --release for the documented run)"
scripts/soak.sh --duration "${KGW_SOAK_SECONDS:-60}"
