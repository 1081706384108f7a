//! What only Apache Kafka can show: the gateway against Apache Kafka 4.4's own listeners, upstream
//! identities and re-authentication, fetch sessions, transactions and the KIP-848 consumer protocol.

mod common;

use common::apache::*;
use common::sasl::login;
use common::*;

#[test]
fn harness_cluster_has_every_listener() {
    let c = KafkaCluster::start_with(ClusterOptions::default().user("alice", "alice-secret"));
    let mut raw = RawClient::connect(c.socket(KafkaListener::SaslPlaintext));
    let l = login(&mut raw, "SCRAM-SHA-512", "alice", "alice-secret");
    assert_eq!(l.error_code(), 0, "{}", l.message());
    let mut raw = RawClient::connect(c.socket(KafkaListener::SaslPlaintext));
    let l = login(&mut raw, "SCRAM-SHA-256", "alice", "wrong");
    assert_eq!(l.error_code(), 58);
    let c2 = KafkaCluster::start();
    assert_ne!(c.cluster_id, c2.cluster_id);
}
