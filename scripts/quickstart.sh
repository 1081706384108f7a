#!/usr/bin/env bash
# The embedded default: a local tansu broker plus the gateway with the sample config and development
# certificates, ready for a client. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
# shellcheck disable=SC1091
source "${KGW_CACHE:-$HOME/.cache/kafka-gateway}/env.sh"

cargo build --release --locked
GW=target/release/kafka-gateway
[ -f certs/dev/server-key.pem ] || "$GW" certs dev --dir certs/dev
[ -f certs/dev/oauth/dev-signing-key.pem ] || "$GW" oauth dev-keys --dir certs/dev/oauth

RUN=target/quickstart
mkdir -p "$RUN"
BROKER=127.0.0.1:19092
"$KGW_TANSU" broker --listener-url "tcp://$BROKER" --advertised-listener-url "tcp://$BROKER" \
  --storage-engine memory://tansu/ --cluster-id quickstart >"$RUN/tansu.log" 2>&1 &
TANSU_PID=$!
trap 'kill $TANSU_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null && break
  sleep 0.1
done

cat <<INFO

  tansu broker (upstream)    $BROKER            log: $RUN/tansu.log
  gateway, plaintext         localhost:9092     (broker ports 9100+)
  gateway, TLS               localhost:9093     CA: certs/dev/ca.pem (broker ports 9200+)
  metrics                    http://127.0.0.1:9644/metrics

  Users (policies/users.toml): alice, bob, carol with passwords alice-secret, bob-secret, carol-secret
  OAUTHBEARER token:  $GW oauth token --subject alice

  Try, in another terminal:
    source ${KGW_CACHE:-$HOME/.cache/kafka-gateway}/env.sh
    \$KGW_PYTHON tests/clients/workload.py roundtrip --bootstrap localhost:9093 --tls-ca certs/dev/ca.pem \\
        --sasl-mechanism SCRAM-SHA-512 --username alice --password alice-secret --topic demo --count 1000
    librdkafka / Java: bootstrap.servers=localhost:9093, security.protocol=SASL_SSL,
        sasl.mechanism=SCRAM-SHA-512, ssl.ca.location=certs/dev/ca.pem (Java: ssl.truststore.type=PEM)

INFO
"$GW" run --config policies/gateway.toml
