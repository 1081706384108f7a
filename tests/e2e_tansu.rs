//! Smoke tests against tansu, the quickstart's embedded broker: the suites prove the gateway against
//! Apache Kafka 4.4; these keep the quickstart's default working (real clients round-trip through
//! the gateway, addresses are rewritten, a policy denies) where tansu differs from Kafka.

mod common;

use common::kafka::*;
use common::sasl::login;
use common::*;
use kafka_protocol::messages::*;

const TLS: ListenerSpec = ListenerSpec {
    name: "tls",
    tls: true,
    client_auth: "optional",
    sasl: "",
};
const SASL: ListenerSpec = ListenerSpec {
    name: "sasl",
    tls: false,
    client_auth: "none",
    sasl: r#""SCRAM-SHA-256""#,
};

#[test]
fn tansu_librdkafka_and_java_round_trip_over_tls_with_rewritten_addresses() {
    let tools = tools();
    let dir = TempDir::new("tansu");
    let certs = dev_certs(&dir.path().join("certs"));
    let broker = Broker::start(&tools, dir.path());
    let (text, ports, admin) = gateway_config(&broker.upstream(), &[TLS], Some(&certs), "");
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    let bootstrap = gateway.addr("tls").to_string();
    let ca = certs.ca();
    let ca = ca.to_str().expect("utf-8 path");
    let args = |topic: &'static str| {
        vec![
            "roundtrip",
            "--bootstrap",
            &bootstrap,
            "--tls-ca",
            ca,
            "--topic",
            topic,
            "--count",
            "2000",
        ]
    };
    assert_roundtrip(
        "librdkafka",
        &python_workload(&tools, &args("smoke-rk")),
        2000,
    );
    assert_roundtrip(
        "java 3.9.1",
        &java_workload(&tools, &args("smoke-jv")),
        2000,
    );
    // tansu's node (111) is advertised at the gateway's port for it, never at tansu's own.
    let m = python_workload(
        &tools,
        &["metadata", "--bootstrap", &bootstrap, "--tls-ca", ca],
    );
    let brokers: Vec<(u64, u64)> = m["brokers"]
        .as_array()
        .expect("brokers")
        .iter()
        .map(|b| {
            (
                b["node_id"].as_u64().unwrap_or(0),
                b["port"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        brokers,
        vec![(TANSU_NODE_ID as u64, u64::from(gateway.broker_ports[0]))],
        "{m}"
    );
}

#[test]
fn tansu_behind_a_policy_denies_what_the_policy_denies() {
    let tools = tools();
    let dir = TempDir::new("tansu-authz");
    let broker = Broker::start(&tools, dir.path());
    let users = dir.path().join("users.toml");
    for u in ["admin", "alice"] {
        add_scram_user(&users, u, &format!("{u}-secret"), &["SCRAM-SHA-256"]);
    }
    let policy = dir.path().join("acl.policy");
    std::fs::write(&policy, "p, User:alice, Topic, ok, All, *, allow\n").expect("policy");
    let extra = format!(
        "[authentication]\ncredentials_file = {users:?}\n\n[authorization]\nmodel = {:?}\n\
         policy_files = [{policy:?}]\nsuper_users = [\"User:admin\"]\n",
        repo_root().join("policies/model.conf")
    );
    let (text, ports, admin) = gateway_config(&broker.upstream(), &[SASL], None, &extra);
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    let client = |user: &str| {
        let mut c = RawClient::connect(gateway.addr("sasl"));
        let l = login(&mut c, "SCRAM-SHA-256", user, &format!("{user}-secret"));
        assert_eq!(l.error_code(), 0, "{}", l.message());
        c
    };
    let mut admin = client("admin");
    create_topics_ok(&mut admin, &["ok", "secret"], 1);
    let mut alice = client("alice");
    produce_ok(&mut alice, "ok", 0, &["v"]);
    let resp = produce(
        &mut alice,
        None,
        &[("secret", 0, record_batch(&["x"], None))],
    );
    assert_eq!(produce_error(&resp, "secret", 0), 29, "{resp:?}");
    let m: MetadataResponse = alice.request(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    );
    assert_eq!(listed_topics(&m), vec!["ok".to_string()]);
    // tansu reads an empty topic list as every topic; Kafka, and so the gateway, as none.
    let m: MetadataResponse = alice.request(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(Vec::new())),
    );
    assert!(
        m.topics.is_empty(),
        "an empty list widened to {:?}",
        listed_topics(&m)
    );
}
