//! `policy suggest` end to end: librdkafka and the Java client run their workloads through a
//! gateway with a broad policy at audit level `all`; the suggestion from that trail then lets the
//! same workloads run unchanged, refuses accesses nobody used, and is reported narrower than the
//! enforced policy.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::apache::*;
use common::kafka::*;
use common::sasl::login;
use common::*;

const LISTENER: ListenerSpec = ListenerSpec {
    name: "sasl",
    tls: false,
    client_auth: "none",
    sasl: r#""SCRAM-SHA-256""#,
};

/// Broad on purpose: what teams write before anyone checks what is used.
const ENFORCED: &str = "p, User:alice, Topic, *, All, *, allow\n\
                        p, User:alice, Group, *, All, *, allow\n\
                        p, User:bob, Topic, *, All, *, allow\n\
                        p, User:bob, Group, *, All, *, allow\n\
                        p, User:bob, Cluster, kafka-cluster, All, *, allow\n";

fn start_gateway(
    dir: &Path,
    upstream: &Upstream,
    users: &Path,
    policy: &Path,
    audit: &Path,
) -> Gateway {
    let model = repo_root().join("policies/model.conf");
    let extra = format!(
        "[authentication]\ncredentials_file = {users:?}\ntimeout = \"5s\"\n\n\
         [authorization]\nmodel = {model:?}\npolicy_files = [{policy:?}]\n\n\
         [audit]\ndir = {audit:?}\nlevel = \"all\"\n"
    );
    let (text, ports, admin) = gateway_config(upstream, &[LISTENER], None, &extra);
    Gateway::start(dir, &text, ports, admin)
}

fn workloads(tools: &Tools, bootstrap: &str) {
    let py = python_workload(
        tools,
        &words(&format!(
            "roundtrip --bootstrap {bootstrap} --sasl-mechanism SCRAM-SHA-256 --username alice \
             --password alice-secret --topic sg-orders.eu --count 200 --group sg-alice.orders"
        )),
    );
    assert_roundtrip("librdkafka as alice", &py, 200);
    let java = java44_workload(
        tools,
        &words(&format!(
            "roundtrip --bootstrap {bootstrap} --sasl-mechanism SCRAM-SHA-256 --username bob \
             --password bob-secret --topic sg-billing --count 200 --group sg-bob.billing"
        )),
    );
    assert_roundtrip("Java 4.4 as bob", &java, 200);
}

fn stop(gateway: &Gateway) {
    gateway.sigterm();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if std::fs::metadata(format!("/proc/{}", gateway.pid())).is_err()
            || std::fs::read_to_string(format!("/proc/{}/stat", gateway.pid()))
                .is_ok_and(|s| s.contains(") Z "))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gateway did not stop");
}

#[test]
fn a_suggested_policy_runs_the_recorded_workload_and_nothing_more() {
    let tools = tools();
    let dir = TempDir::new("suggest");
    let broker = KafkaCluster::start();
    let users = dir.path().join("users.toml");
    for u in ["alice", "bob"] {
        add_scram_user(&users, u, &format!("{u}-secret"), &["SCRAM-SHA-256"]);
    }
    let enforced = dir.path().join("enforced.policy");
    std::fs::write(&enforced, ENFORCED).expect("policy");
    let audit = dir.path().join("audit");
    let gw_dir = dir.path().join("first");
    std::fs::create_dir_all(&gw_dir).expect("dir");
    let gateway = start_gateway(&gw_dir, &broker.upstream(), &users, &enforced, &audit);
    workloads(&tools, &gateway.addr("sasl").to_string());
    stop(&gateway);

    let suggested = dir.path().join("suggested.policy");
    let model = repo_root().join("policies/model.conf");
    let path = |p: &PathBuf| p.to_str().expect("path").to_string();
    let out = gateway_cli(
        &[
            "policy",
            "suggest",
            "--audit",
            &path(&audit),
            "--model",
            &path(&model),
            "--file",
            &path(&enforced),
            "--out",
            &path(&suggested),
        ],
        None,
    );
    assert!(out.ok, "policy suggest: {}", out.stderr);
    let text = std::fs::read_to_string(&suggested).expect("suggestion");
    println!("RESULT suggested policy:\n{text}\n{}", out.stderr);
    assert!(
        out.stderr
            .contains("Everything the trail shows used stays allowed"),
        "{}",
        out.stderr
    );
    // Narrower, measured over the names and operations the trail mentions.
    let pct: u32 = out
        .stderr
        .split_once("the suggestion ")
        .and_then(|(_, rest)| rest.split_once('(')?.1.split_once('%'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no comparison in {}", out.stderr));
    assert!(
        pct < 60,
        "only {pct}% of the enforced reach is needed: {}",
        out.stderr
    );
    let rules: Vec<&str> = text.lines().filter(|l| l.starts_with("p, ")).collect();
    assert!(
        rules
            .iter()
            .all(|r| !r.contains(", *, ") || r.ends_with(", *, allow")),
        "no wildcard names: {rules:?}"
    );
    assert!(
        rules
            .iter()
            .any(|r| r.contains("User:alice, Topic, sg-orders.eu, ")),
        "{rules:?}"
    );
    assert!(
        rules
            .iter()
            .any(|r| r.contains("User:bob, Topic, sg-billing, ")),
        "{rules:?}"
    );
    assert!(
        !rules
            .iter()
            .any(|r| r.contains("User:alice, Topic, sg-billing")),
        "{rules:?}"
    );
    let check = gateway_cli(
        &[
            "policy",
            "check",
            "--model",
            &path(&model),
            "--file",
            &path(&suggested),
        ],
        None,
    );
    assert!(check.ok, "policy check: {}{}", check.stdout, check.stderr);

    // The same workloads under the suggestion.
    let audit2 = dir.path().join("audit2");
    let gw2_dir = dir.path().join("second");
    std::fs::create_dir_all(&gw2_dir).expect("dir");
    let gateway = start_gateway(&gw2_dir, &broker.upstream(), &users, &suggested, &audit2);
    let bootstrap = gateway.addr("sasl").to_string();
    workloads(&tools, &bootstrap);
    // Probes of what nobody used: refused.
    let mut alice = RawClient::connect(gateway.addr("sasl"));
    assert_eq!(
        login(&mut alice, "SCRAM-SHA-256", "alice", "alice-secret").error_code(),
        0
    );
    let r = produce(
        &mut alice,
        None,
        &[("sg-billing", 0, record_batch(&["x"], None))],
    );
    assert_eq!(
        produce_error(&r, "sg-billing", 0),
        29,
        "alice writes bob's topic"
    );
    let created = create_topics(&mut alice, &["sg-new"], 1);
    assert_eq!(
        created,
        vec![("sg-new".to_string(), 29)],
        "alice creates an unused topic"
    );
    let mut bob = RawClient::connect(gateway.addr("sasl"));
    assert_eq!(
        login(&mut bob, "SCRAM-SHA-256", "bob", "bob-secret").error_code(),
        0
    );
    let f = fetch_by_name(&mut bob, &["sg-orders.eu"]);
    assert_eq!(
        fetched(&f, "sg-orders.eu", 0).error_code,
        29,
        "bob reads alice's topic"
    );
}
