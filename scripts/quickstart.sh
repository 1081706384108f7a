#!/usr/bin/env bash
# The embedded default: a local tansu broker plus the gateway with the sample config and development
# certificates, ready for a client. Ctrl-C stops both.
#
#   scripts/quickstart.sh           tansu (starts in milliseconds)
#   scripts/quickstart.sh --kafka   Apache Kafka 4.4 instead (one KRaft node, id 111, ~5 s to start)
#   scripts/quickstart.sh --virtual-clusters
#                                   two tansu clusters, three tenants (policies/virtual-clusters.toml)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

UPSTREAM=tansu
case "${1:-}" in
  "") ;;
  --kafka) UPSTREAM=kafka ;;
  --virtual-clusters) UPSTREAM=virtual-clusters ;;
  *) echo "usage: scripts/quickstart.sh [--kafka | --virtual-clusters]" >&2; exit 2 ;;
esac

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
if [ "$UPSTREAM" = virtual-clusters ]; then
  # Two tansu clusters ("eu" and "us"); the gateway maps three tenants onto them.
  "$KGW_TANSU" broker --listener-url "tcp://$BROKER" --advertised-listener-url "tcp://$BROKER" \
    --storage-engine memory://tansu/ --cluster-id eu >"$RUN/broker-eu.log" 2>&1 &
  EU_PID=$!
  "$KGW_TANSU" broker --listener-url "tcp://127.0.0.1:19192" \
    --advertised-listener-url "tcp://127.0.0.1:19192" --storage-engine memory://tansu/ \
    --cluster-id us >"$RUN/broker-us.log" 2>&1 &
  US_PID=$!
  trap 'kill $EU_PID $US_PID 2>/dev/null || true' EXIT
  for port in 19092 19192; do
    for _ in $(seq 300); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.1
    done
  done
  cat <<INFO

  tansu "eu"  127.0.0.1:19092 (log: $RUN/broker-eu.log)   tansu "us"  127.0.0.1:19192
  tenant acme     -> eu   localhost:9092
  tenant globex   -> eu   localhost:9094
  tenant initech  -> us   localhost:9096
  metrics  http://127.0.0.1:9644/metrics     audit trail  target/quickstart/audit-vc

  Try, in another terminal (the same topic name in two tenants is two topics):
    source ${KGW_CACHE:-$HOME/.cache/kafka-gateway}/env.sh
    \$KGW_PYTHON tests/clients/workload.py roundtrip --bootstrap localhost:9092 --topic orders --count 100
    \$KGW_PYTHON tests/clients/workload.py roundtrip --bootstrap localhost:9094 --topic orders --count 50
    \$KGW_PYTHON tests/clients/workload.py metadata --bootstrap localhost:9094

INFO
  "$GW" run --config policies/virtual-clusters.toml
  exit $?
fi
if [ "$UPSTREAM" = tansu ]; then
  "$KGW_TANSU" broker --listener-url "tcp://$BROKER" --advertised-listener-url "tcp://$BROKER" \
    --storage-engine memory://tansu/ --cluster-id quickstart >"$RUN/broker.log" 2>&1 &
  BROKER_PID=$!
  trap 'kill $BROKER_PID 2>/dev/null || true' EXIT
else
  # One combined broker+controller, node id 111 like tansu's, so policies/gateway.toml fits both.
  # Its data is thrown away on every start; the JVM halts when this script's pipe to it closes.
  rm -rf "$RUN/kafka-data"
  cat >"$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=111
controller.quorum.voters=111@127.0.0.1:19093
listeners=PLAINTEXT://$BROKER,CONTROLLER://127.0.0.1:19093
advertised.listeners=PLAINTEXT://$BROKER
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$PWD/$RUN/kafka-data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  sleep infinity | java -Xmx512m -cp "$KGW_KAFKA_CP" KafkaHost node "$RUN/server.properties" \
    quickstart0000000000000 >"$RUN/broker.log" 2>&1 &
  BROKER_PID=$!
  trap 'kill $BROKER_PID 2>/dev/null || true; pkill -P $$ sleep 2>/dev/null || true' EXIT
fi
for _ in $(seq 300); do
  (exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null && break
  sleep 0.1
done

cat <<INFO

  $UPSTREAM broker (upstream)    $BROKER        log: $RUN/broker.log
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
