//! Quotas end to end against Apache Kafka 4.4: a librdkafka and a Java producer whose principal
//! has a `producer_byte_rate` measure a rate within 10% of it while another principal produces at
//! the same time unthrottled; a consumer byte rate; the audit record and metrics of a throttle;
//! and a policy reload that lifts the quota.
//!
//! The gateway measures rates over `quota_window_num = 2` samples of 1 s here (Kafka's default is
//! 11): a young sensor lets a client burst `samples - 1` windows of its quota before throttling
//! (Kafka's `Rate.windowSize`), and with 11 samples that burst alone is two thirds of a 15 s
//! run's quota. The throttle math is the same; unit tests check it against Kafka's own cases.

mod common;

use std::time::Duration;

use common::apache::*;
use common::*;

const LISTENER: ListenerSpec = ListenerSpec {
    name: "sasl",
    tls: false,
    client_auth: "none",
    sasl: r#""SCRAM-SHA-256""#,
};

const QUOTA: f64 = 1_048_576.0;
const SECONDS: &str = "15";

const POLICY: &str = "\
p, User:*, Topic, *, All, *, allow
p, User:*, Group, *, All, *, allow
p, User:*, Cluster, kafka-cluster, Create, *, allow
q, User:alice, -, producer_byte_rate, 1048576
q, User:carol, -, consumer_byte_rate, 1048576
";

fn args(bootstrap: &str, user: &str) -> Vec<String> {
    [
        "--bootstrap",
        bootstrap,
        "--sasl-mechanism",
        "SCRAM-SHA-256",
        "--username",
        user,
        "--password",
        &format!("{user}-secret"),
        "--partitions",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn python(
    tools: &Tools,
    cmd: &str,
    bootstrap: &str,
    user: &str,
    rest: &[&str],
) -> serde_json::Value {
    let mut a = vec![cmd.to_string()];
    a.extend(args(bootstrap, user));
    a.extend(rest.iter().map(|s| s.to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    python_workload(tools, &a)
}

/// The Java client 4.4 (`cp`: the tools cache's, where install-deps compiled this tree's
/// WorkloadClient).
fn java(cp: &str, cmd: &str, bootstrap: &str, user: &str, rest: &[&str]) -> serde_json::Value {
    let mut a = vec![cmd.to_string()];
    a.extend(args(bootstrap, user));
    a.extend(rest.iter().map(|s| s.to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    parse_json_result("WorkloadClient (4.4)", &run_java_client(cp, &a))
}

fn rate(r: &serde_json::Value) -> f64 {
    r["bytes_per_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("no rate in {r}"))
}

fn assert_near_quota(what: &str, r: &serde_json::Value, tolerance: f64) {
    let got = rate(r);
    eprintln!("{what}: {got:.0} B/s for a quota of {QUOTA} B/s ({r})");
    assert!(
        (got - QUOTA).abs() / QUOTA <= tolerance,
        "{what}: {got:.0} B/s is not within {:.0}% of {QUOTA}: {r}",
        tolerance * 100.0
    );
}

/// Runs the throttled and the free producer side by side.
fn side_by_side(
    run: impl Fn(&str, &str) -> serde_json::Value + Sync,
) -> (serde_json::Value, serde_json::Value) {
    std::thread::scope(|s| {
        let throttled = s.spawn(|| run("alice", "quota-alice"));
        let free = s.spawn(|| run("bob", "quota-bob"));
        (
            throttled.join().expect("alice's producer"),
            free.join().expect("bob's producer"),
        )
    })
}

#[test]
fn producer_and_consumer_byte_rates_with_librdkafka_and_java() {
    let tools = tools();
    let dir = TempDir::new("quotas");
    let broker = KafkaCluster::start();
    let users = dir.path().join("users.toml");
    for user in ["admin", "alice", "bob", "carol"] {
        add_scram_user(&users, user, &format!("{user}-secret"), &["SCRAM-SHA-256"]);
    }
    let model = dir.path().join("model.conf");
    std::fs::copy(repo_root().join("policies/model.conf"), &model).expect("copy the model");
    let policy = dir.path().join("acl.policy");
    std::fs::write(&policy, POLICY).expect("write policy");
    let audit = dir.path().join("audit");
    std::fs::create_dir_all(&audit).expect("audit dir");
    let extra = format!(
        "[authentication]\ncredentials_file = {users:?}\ntimeout = \"5s\"\n\n\
         [authorization]\nmodel = {model:?}\npolicy_files = [{policy:?}]\n\
         super_users = [\"User:admin\"]\n\n\
         [limits]\nquota_window_num = 2\n\n\
         [audit]\ndir = {audit:?}\nlevel = \"admin\"\n"
    );
    let (text, ports, admin) = gateway_config(&broker.upstream(), &[LISTENER], None, &extra);
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    let bootstrap = gateway.addr(LISTENER.name).to_string();

    // librdkafka
    let (alice, bob) = side_by_side(|user, topic| {
        python(
            &tools,
            "produce-rate",
            &bootstrap,
            user,
            &["--topic", topic, "--seconds", SECONDS],
        )
    });
    assert_near_quota("librdkafka producer, alice", &alice, 0.10);
    eprintln!(
        "librdkafka producer, bob at the same time: {:.0} B/s",
        rate(&bob)
    );
    assert!(
        rate(&bob) > 3.0 * QUOTA,
        "bob has no quota and produces at the same time: {bob}"
    );

    // Java 4.4
    let cp = tools.java44_cp.clone();
    let (alice, bob) = side_by_side(|user, topic| {
        java(
            &cp,
            "produce-rate",
            &bootstrap,
            user,
            &["--topic", topic, "--seconds", SECONDS],
        )
    });
    assert_near_quota("Java producer, alice", &alice, 0.10);
    eprintln!("Java producer, bob at the same time: {:.0} B/s", rate(&bob));
    assert!(rate(&bob) > 3.0 * QUOTA, "bob unthrottled (Java): {bob}");

    // A consumer byte rate: carol reads what bob wrote.
    let carol = python(
        &tools,
        "consume-rate",
        &bootstrap,
        "carol",
        &["--topic", "quota-bob", "--seconds", "10"],
    );
    assert_near_quota("librdkafka consumer, carol", &carol, 0.15);
    let carol = java(
        &cp,
        "consume-rate",
        &bootstrap,
        "carol",
        &["--topic", "quota-bob", "--seconds", "10"],
    );
    assert_near_quota("Java consumer, carol", &carol, 0.15);

    // Metrics and one audit record per throttling episode, not per request.
    let metrics = gateway.metrics();
    for (quota, principal) in [
        ("producer_byte_rate", "User:alice"),
        ("consumer_byte_rate", "User:carol"),
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.contains("quota_throttled_responses_total")
                    && l.contains(quota)
                    && l.contains(principal)),
            "no throttle metric for {principal} {quota}:\n{metrics}"
        );
    }
    assert!(
        !metrics.contains("principal=\"User:bob\""),
        "bob was throttled:\n{metrics}"
    );
    let records = trail_records(&audit);
    let throttles: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["event"] == "quota_throttle")
        .collect();
    let alices = throttles
        .iter()
        .filter(|r| r["principal"] == "User:alice")
        .count();
    assert!(
        (1..=6).contains(&alices),
        "a few quota_throttle records for alice (one per episode), got {alices}: {throttles:#?}"
    );
    let rec = throttles
        .iter()
        .find(|r| r["principal"] == "User:alice")
        .expect("alice's record");
    assert_eq!(rec["quota"], "producer_byte_rate", "{rec}");
    assert!(
        rec["rule"].as_str().unwrap_or("").ends_with("acl.policy:4"),
        "{rec}"
    );
    assert!(throttles.iter().all(|r| r["principal"] != "User:bob"));

    // A reload that lifts alice's quota applies to her next connection and the ones open.
    std::fs::write(
        &policy,
        POLICY.replace("q, User:alice, -, producer_byte_rate, 1048576\n", ""),
    )
    .expect("rewrite policy");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = python(
            &tools,
            "produce-rate",
            &bootstrap,
            "alice",
            &["--topic", "quota-alice", "--seconds", "4"],
        );
        if rate(&r) > 3.0 * QUOTA {
            eprintln!("after the reload alice produces {:.0} B/s", rate(&r));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the quota was not lifted: {r}"
        );
    }
}
