//! The audit trail end to end: a scripted workload through the gateway to Apache Kafka with a known mix of
//! allowed and denied requests and authentication failures must leave exactly the expected records,
//! and `kafka-gateway audit verify` must pass on that trail and name the first bad record after each
//! kind of tampering.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::apache::*;
use common::kafka::*;
use common::sasl::login;
use common::*;

fn cli(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let out = gateway_cli(args, stdin);
    (out.ok, format!("{}{}", out.stdout, out.stderr))
}

fn add_user(users: &Path, name: &str) {
    add_scram_user(users, name, &format!("{name}-secret"), &["SCRAM-SHA-256"]);
}

const POLICY: &str = "\
p, User:alice, Topic, t-ok, Write, *, allow
p, User:alice, Topic, t-new, Create, *, allow
";

struct Trail {
    _dir: TempDir,
    audit_dir: PathBuf,
    broker: KafkaCluster,
    gateway: Gateway,
    /// What the gateway was started with, to start it again.
    config: (String, Vec<u16>, u16),
}

fn start(extra_audit: &str) -> Trail {
    start_with(POLICY, extra_audit)
}

fn start_with(policy_text: &str, extra_audit: &str) -> Trail {
    let dir = TempDir::new("audit");
    let broker = KafkaCluster::start();
    let users = dir.path().join("users.toml");
    for u in ["admin", "alice", "bob"] {
        add_user(&users, u);
    }
    let policy = dir.path().join("acl.policy");
    std::fs::write(&policy, policy_text).expect("policy");
    let audit_dir = dir.path().join("audit");
    let extra = format!(
        "[authentication]\ncredentials_file = {users:?}\nfailure_delay = \"10ms\"\n\
         [authorization]\nmodel = {:?}\npolicy_files = [{policy:?}]\nsuper_users = [\"User:admin\"]\n\
         [audit]\ndir = {audit_dir:?}\nlevel = \"admin\"\n{extra_audit}\n",
        repo_root().join("policies/model.conf")
    );
    let sasl = ListenerSpec {
        name: "sasl",
        tls: false,
        client_auth: "none",
        sasl: r#""SCRAM-SHA-256""#,
    };
    let (text, ports, admin) = gateway_config(&broker.upstream(), &[sasl], None, &extra);
    let gateway = Gateway::start(dir.path(), &text, ports.clone(), admin);
    Trail {
        _dir: dir,
        audit_dir,
        broker,
        gateway,
        config: (text, ports, admin),
    }
}

impl Trail {
    /// With `[audit.kafka]` fail-closed, requests are refused until the gateway has created the
    /// audit topic and written to it (the topic has no leader for a moment after creation): waits
    /// until the topic holds a record, read straight from the broker.
    fn wait_for_audit_topic(&self, name: &str) {
        let start = std::time::Instant::now();
        loop {
            let mut direct = RawClient::connect(self.broker.socket(KafkaListener::Plaintext));
            let resp = fetch_by_name(&mut direct, &[name]);
            let ready = resp
                .responses
                .first()
                .and_then(|r| r.partitions.first())
                .is_some_and(|p| p.error_code == 0 && !record_values(&p.records).is_empty());
            if ready {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the gateway never wrote to its audit topic {name}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn client(&self, user: &str) -> RawClient {
        let mut c = RawClient::connect(self.gateway.addr("sasl"));
        assert_eq!(
            login(&mut c, "SCRAM-SHA-256", user, &format!("{user}-secret")).error_code(),
            0
        );
        c
    }

    /// Stops the gateway (so the trail is flushed and ends with gateway_stop) and reads it.
    fn stop_and_read(&mut self) -> Vec<serde_json::Value> {
        self.gateway.sigterm();
        assert!(
            self.gateway.wait_exit(Duration::from_secs(20)),
            "gateway exit"
        );
        read_trail(&self.audit_dir)
    }
}

fn read_trail(dir: &Path) -> Vec<serde_json::Value> {
    trail_files(dir)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("read")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map(|l| serde_json::from_str(&l).expect("each line is one JSON record"))
        .collect()
}

fn of_kind<'a>(records: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    records.iter().filter(|r| r["event"] == kind).collect()
}

#[test]
fn a_scripted_workload_leaves_exactly_the_expected_records() {
    let mut t = start("");
    // The super user creates t-ok (an admin operation: recorded even though allowed).
    let mut admin = t.client("admin");
    create_topics_ok(&mut admin, &["t-ok"], 1);
    // An authentication failure: wrong password.
    let mut bad = RawClient::connect(t.gateway.addr("sasl"));
    assert_eq!(
        login(&mut bad, "SCRAM-SHA-256", "bob", "not-bobs").error_code(),
        58
    );
    // alice: an allowed produce (not recorded at level admin), a denied one, an allowed create.
    let mut alice = t.client("alice");
    produce_ok(&mut alice, "t-ok", 0, &["v1"]);
    let denied = produce(&mut alice, None, &[("t-no", 0, record_batch(&["v"], None))]);
    assert_eq!(produce_error(&denied, "t-no", 0), 29);
    // (Not create_topics_ok: its wait for leaders would ask Metadata, which alice may not describe.)
    let created = create_topics(&mut alice, &["t-new"], 1);
    assert_eq!(created, vec![("t-new".to_string(), 0)]);
    drop((admin, bad, alice));
    std::thread::sleep(Duration::from_millis(300));

    let records = t.stop_and_read();
    assert_eq!(of_kind(&records, "gateway_start").len(), 1);
    assert_eq!(of_kind(&records, "gateway_stop").len(), 1);
    assert_eq!(
        records.last().expect("records")["event"],
        "gateway_stop",
        "the trail ends with the stop"
    );
    let failures = of_kind(&records, "auth_failure");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["attempted"], "bob");
    assert_eq!(failures[0]["reason"], "bad_credentials");
    assert_eq!(failures[0]["mechanism"], "SCRAM-SHA-256");
    let successes: Vec<&str> = of_kind(&records, "auth_success")
        .iter()
        .filter_map(|r| r["principal"].as_str())
        .collect();
    assert_eq!(successes, ["User:admin", "User:alice"]);
    let decisions = of_kind(&records, "authz_decision");
    let summary: Vec<(String, String, String, String)> = decisions
        .iter()
        .map(|d| {
            (
                d["principal"].as_str().unwrap_or_default().to_string(),
                d["operation"].as_str().unwrap_or_default().to_string(),
                format!(
                    "{}:{}",
                    d["resource_type"].as_str().unwrap_or_default(),
                    d["resource_name"].as_str().unwrap_or_default()
                ),
                d["decision"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want = |p: &str, o: &str, r: &str, d: &str| {
        (p.to_string(), o.to_string(), r.to_string(), d.to_string())
    };
    assert_eq!(
        summary,
        vec![
            want("User:admin", "Create", "Cluster:kafka-cluster", "allow"),
            // CreateTopics v5+ answers show configs only to who may DescribeConfigs (Kafka).
            want("User:admin", "DescribeConfigs", "Topic:t-ok", "allow"),
            want("User:alice", "Write", "Topic:t-no", "deny"),
            // CREATE on the cluster is checked first; CREATE on the topic then allows it.
            want("User:alice", "Create", "Cluster:kafka-cluster", "deny"),
            want("User:alice", "Create", "Topic:t-new", "allow"),
            want("User:alice", "DescribeConfigs", "Topic:t-new", "deny"),
        ],
        "exactly the admin operations and the denial, nothing from the allowed produce"
    );
    let deny = decisions[2];
    assert_eq!(deny["api_name"], "Produce");
    assert!(
        deny["rule"].is_null(),
        "no rule allowed it: the default deny decided"
    );
    let allow = decisions[4];
    let rule_text = allow["rule"]["text"].as_str().unwrap_or_default();
    assert!(
        rule_text.contains("t-new, Create"),
        "the deciding rule is named: {allow}"
    );
    assert!(allow["policy_hash"].as_str().is_some_and(|h| h.len() == 64));
    // Three client connections (admin, the failed login, alice), each opened and closed.
    assert_eq!(of_kind(&records, "connection_open").len(), 3);
    let closes = of_kind(&records, "connection_close");
    assert_eq!(closes.len(), 3);
    assert!(closes
        .iter()
        .any(|c| c["principal"] == "User:alice" && c["bytes_in"].as_u64() > Some(100)));
    // Every record has the chain fields and a sub-second UTC timestamp; no secret ever appears.
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["schema"], 1);
        assert_eq!(r["seq"].as_u64(), Some(i as u64));
        let ts = r["ts"].as_str().unwrap_or_default();
        assert!(ts.ends_with('Z') && ts.contains('.'), "timestamp {ts}");
    }
    let raw: String = trail_files(&t.audit_dir)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    for secret in ["alice-secret", "admin-secret", "not-bobs", "p="] {
        assert!(
            !raw.contains(secret),
            "secret material {secret:?} in the trail"
        );
    }
    let (ok, report) = cli(&["audit", "verify", t.audit_dir.to_str().expect("p")], None);
    assert!(ok, "{report}");
}

#[test]
fn audit_verify_names_the_first_bad_record_for_each_kind_of_tampering() {
    let mut t = start("");
    let mut alice = t.client("alice");
    for _ in 0..3 {
        produce(&mut alice, None, &[("t-no", 0, record_batch(&["v"], None))]);
    }
    drop(alice);
    let _ = t.stop_and_read();
    let files = trail_files(&t.audit_dir);
    assert_eq!(files.len(), 1);
    let original = std::fs::read_to_string(&files[0]).expect("read");
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 6, "{} records", lines.len());
    let work = t.audit_dir.join("tampered.jsonl");
    let cases: Vec<(&str, String)> = vec![
        (
            "edited",
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if i == 3 {
                        // Any byte changed: the timestamp's last digit before the Z.
                        let z = l.find("Z\"").expect("timestamp");
                        let digit = if &l[z - 1..z] == "1" { "2" } else { "1" };
                        format!("{}{digit}{}", &l[..z - 1], &l[z..])
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n",
        ),
        (
            "deleted",
            lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 3)
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
                .join("\n")
                + "\n",
        ),
        ("inserted", {
            let mut v: Vec<&str> = lines.clone();
            v.insert(3, lines[2]);
            v.join("\n") + "\n"
        }),
        ("reordered", {
            let mut v: Vec<&str> = lines.clone();
            v.swap(3, 4);
            v.join("\n") + "\n"
        }),
        ("truncated", original[..original.len() - 20].to_string()),
    ];
    std::fs::remove_file(&files[0]).expect("move original away");
    for (what, text) in cases {
        std::fs::write(&work, &text).expect("write");
        let (ok, report) = cli(&["audit", "verify", work.to_str().expect("p")], None);
        assert!(!ok, "{what}: tampering not detected:\n{report}");
        let first_bad_line = if what == "truncated" { lines.len() } else { 4 };
        assert!(
            report.contains(&format!(":{first_bad_line}"))
                || report.contains(&format!("line {first_bad_line}")),
            "{what}: the first bad record (line {first_bad_line}) is not named:\n{report}"
        );
    }
    std::fs::write(&work, &original).expect("restore");
    let (ok, report) = cli(&["audit", "verify", work.to_str().expect("p")], None);
    assert!(ok, "the untouched trail verifies:\n{report}");
}

/// Issue 11 item 9: a client repeating one denied request in a loop. The first ten denials are
/// recorded in full, the rest summarized ("repeated": N) every 10 s and at close, and the counts add
/// up to every denial. A second connection starts over with full records.
#[test]
fn repeated_identical_denials_on_one_connection_are_summarized_and_all_counted() {
    let mut t = start("");
    let denials = 300u64;
    let mut alice = t.client("alice");
    for _ in 0..denials {
        let r = produce(&mut alice, None, &[("t-no", 0, record_batch(&["v"], None))]);
        assert_eq!(produce_error(&r, "t-no", 0), 29, "every attempt is denied");
    }
    drop(alice);
    let mut again = t.client("alice");
    for _ in 0..3 {
        produce(&mut again, None, &[("t-no", 0, record_batch(&["v"], None))]);
    }
    drop(again);
    std::thread::sleep(Duration::from_millis(500));
    let metrics = t.gateway.metrics();
    let records = t.stop_and_read();
    let on_t_no: Vec<&serde_json::Value> = of_kind(&records, "authz_decision")
        .into_iter()
        .filter(|r| r["resource_name"] == "t-no" && r["decision"] == "deny")
        .collect();
    let mut by_conn: std::collections::BTreeMap<u64, (u64, u64, u64)> = Default::default();
    for r in &on_t_no {
        let conn = r["conn"]["id"].as_u64().expect("conn id");
        let e = by_conn.entry(conn).or_default();
        match r["repeated"].as_u64() {
            Some(n) => {
                e.1 += 1;
                e.2 += n;
            }
            None => {
                e.0 += 1;
                e.2 += 1;
            }
        }
    }
    let per_conn: Vec<(u64, u64, u64)> = by_conn.into_values().collect();
    assert_eq!(per_conn.len(), 2, "{per_conn:?}");
    let (full, summaries, counted) = per_conn[0];
    assert_eq!(full, 10, "the first ten recorded in full");
    assert!(summaries >= 1, "the rest summarized");
    assert_eq!(counted, denials, "every denial counted");
    assert_eq!(per_conn[1], (3, 0, 3), "a new connection starts over");
    assert!(
        on_t_no.len() < 20,
        "{} records for {} denials",
        on_t_no.len(),
        denials + 3
    );
    assert!(
        metrics.contains("audit_denials_summarized_total"),
        "suppressed records are counted"
    );
    let dir = t.audit_dir.to_str().expect("p");
    let (ok, report) = cli(&["audit", "verify", dir], None);
    assert!(ok, "{report}");
    println!(
        "RESULT repeated denials: {} denials, {} records ({full} full, {summaries} summaries)",
        denials + 3,
        on_t_no.len()
    );
}

/// Issue 11 item 9: a trail whose disk is nearly full says so (metric and log) before it fills. The
/// threshold is set above any real disk's size here, so this disk counts as nearly full.
#[test]
fn a_trail_running_out_of_disk_says_so_before_it_is_full() {
    let gauge = |metrics: &str, name: &str| -> Option<u64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("kafka_gateway_{name} ")))
            .and_then(|v| v.trim().parse().ok())
    };
    let wait_for = |t: &Trail| -> String {
        let start = std::time::Instant::now();
        loop {
            let m = t.gateway.metrics();
            if gauge(&m, "audit_disk_low").is_some() || start.elapsed() > Duration::from_secs(10) {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let t = start("");
    let m = wait_for(&t);
    assert!(
        gauge(&m, "audit_disk_free_bytes").is_some_and(|f| f > 0),
        "{m}"
    );
    assert_eq!(
        gauge(&m, "audit_disk_low"),
        Some(0),
        "the default threshold (256 MiB)"
    );
    drop(t);
    let t = start("warn_free_bytes = 9223372036854775807\n");
    let m = wait_for(&t);
    assert_eq!(gauge(&m, "audit_disk_low"), Some(1), "{m}");
    let log = t.gateway.log_text();
    assert!(
        log.contains("audit trail disk is nearly full") && log.contains("fail-closed refuses"),
        "no warning in the log"
    );
}

#[test]
fn rotation_keeps_the_chain_verifiable_across_files_and_query_finds_the_denials() {
    let mut t = start("max_file_bytes = 4096\n");
    let mut alice = t.client("alice");
    // 30 different denials (identical ones would be summarized after the tenth).
    for i in 0..30 {
        let name = format!("t-no-{i}");
        produce(
            &mut alice,
            None,
            &[(name.as_str(), 0, record_batch(&["v"], None))],
        );
    }
    drop(alice);
    let records = t.stop_and_read();
    assert!(
        trail_files(&t.audit_dir).len() >= 3,
        "rotation by size did not happen"
    );
    assert_eq!(of_kind(&records, "authz_decision").len(), 30);
    let dir = t.audit_dir.to_str().expect("p");
    let (ok, report) = cli(&["audit", "verify", dir], None);
    assert!(ok, "{report}");
    let (ok, out) = cli(
        &[
            "audit",
            "query",
            dir,
            "--decision",
            "deny",
            "--principal",
            "User:alice",
            "--json",
        ],
        None,
    );
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with('{')).count(),
        30,
        "{out}"
    );
    let html = t.audit_dir.join("report.html");
    let (ok, out) = cli(
        &["audit", "report", dir, "--out", html.to_str().expect("p")],
        None,
    );
    assert!(ok, "{out}");
    let page = std::fs::read_to_string(&html).expect("report");
    assert!(
        page.contains("User:alice") && page.contains("t-no"),
        "report names the denied principal and resource"
    );
}

#[test]
fn an_unwritable_audit_trail_keeps_the_gateway_from_starting() {
    let dir = TempDir::new("audit-bad");
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").expect("write");
    let config = dir.path().join("gw.toml");
    std::fs::write(
        &config,
        format!(
            "[[listeners]]\nname = \"p\"\nbind = \"127.0.0.1:0\"\nbroker_port_base = {}\n\
             [upstream]\nbootstrap_servers = [\"127.0.0.1:1\"]\n[authorization]\nallow_all = true\n\
             [audit]\ndir = {not_a_dir:?}\n",
            free_port_range(1)
        ),
    )
    .expect("config");
    let (ok, out) = cli(&["run", "--config", config.to_str().expect("p")], None);
    assert!(!ok, "started with an audit trail it cannot write");
    assert!(out.contains("audit"), "{out}");
}

#[test]
fn a_failing_trail_refuses_what_it_cannot_record_and_says_so_when_it_recovers() {
    let mut t = start("max_file_bytes = 4096\n");
    let mut alice = t.client("alice");
    // Make the trail unwritable at run time: its directory is replaced by a regular file, so the
    // next rotation cannot create a file (root ignores permission bits, not this).
    let moved = t.audit_dir.with_extension("moved");
    std::fs::rename(&t.audit_dir, &moved).expect("move trail away");
    std::fs::write(&t.audit_dir, b"not a directory").expect("block the path");
    // Denied produces need a record each: once the open file is full, they cannot be recorded.
    let mut refused = false;
    for _ in 0..200 {
        let (_, frame) = alice.encode(
            kafka_protocol::messages::ApiKey::Produce,
            9,
            &produce_request(-1, None, &[("t-no", 0, record_batch(&["v"], None))]),
        );
        if alice.send_raw(&frame).is_err() || alice.read_frame().is_err() {
            refused = true; // fail-closed: the connection is closed instead of answering unrecorded
            break;
        }
    }
    assert!(
        refused,
        "denials kept being answered while the trail could not record them"
    );
    assert!(
        t.gateway.log_text().contains("audit trail unavailable"),
        "the refusal is logged"
    );
    // A load balancer is told: not ready while the trail refuses, ready again once it recovers.
    let readyz = |t: &Trail| http_get(t.gateway.admin, "/readyz").map(|r| r.0);
    let wait_ready = |t: &Trail, want: u16| {
        let start = std::time::Instant::now();
        while readyz(t) != Some(want) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "/readyz never answered {want}: {:?}",
                readyz(t)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_ready(&t, 503);
    // Recovery: the directory comes back; new work is recorded again, and so is the outage.
    std::fs::remove_file(&t.audit_dir).expect("unblock");
    std::fs::rename(&moved, &t.audit_dir).expect("restore");
    wait_ready(&t, 200);
    let mut again = t.client("alice");
    let denied = produce(&mut again, None, &[("t-no", 0, record_batch(&["v"], None))]);
    assert_eq!(produce_error(&denied, "t-no", 0), 29);
    drop((alice, again));
    let records = t.stop_and_read();
    let failures = of_kind(&records, "audit_failure");
    assert!(
        failures.iter().any(|f| f["state"] == "engaged")
            && failures.iter().any(|f| f["state"] == "recovered"),
        "the outage is in the trail: {failures:?}"
    );
    let (ok, report) = cli(&["audit", "verify", t.audit_dir.to_str().expect("p")], None);
    assert!(ok, "the chain survives the outage:\n{report}");
}

/// Issue 11 item 10: the audit topic holds the file trail's own chained lines, `audit verify
/// --kafka` checks them and names a record produced behind the gateway's back, and the topic is
/// reserved: a `Topic:*` grant and a super user do not reach it, a literal rule does.
#[test]
fn the_audit_topic_holds_the_trails_chain_verifies_and_is_reserved() {
    let policy = format!(
        "{POLICY}p, User:bob, Topic, *, All, *, allow\n\
         p, User:bob, Cluster, kafka-cluster, All, *, allow\n\
         p, User:alice, Topic, gw-audit, Read, *, allow\n\
         p, User:alice, Topic, gw-audit, Describe, *, allow\n"
    );
    let t = start_with(&policy, "[audit.kafka]\ntopic = \"gw-audit\"\n");
    t.wait_for_audit_topic("gw-audit");
    let mut alice = t.client("alice");
    let denied = produce(&mut alice, None, &[("t-no", 0, record_batch(&["v"], None))]);
    assert_eq!(produce_error(&denied, "t-no", 0), 29);
    // alice's literal rule reads the audit topic back through the gateway.
    let start = std::time::Instant::now();
    let lines: Vec<String> = loop {
        let resp = fetch_by_name(&mut alice, &["gw-audit"]);
        let part = resp
            .responses
            .iter()
            .find(|r| r.topic == topic("gw-audit"))
            .and_then(|r| r.partitions.first())
            .expect("the audit topic's partition");
        assert_eq!(
            part.error_code, 0,
            "a literal Read rule reaches the audit topic"
        );
        let found = record_values(&part.records);
        if found
            .iter()
            .any(|v| v.contains("\"resource_name\":\"t-no\""))
        {
            break found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "audit events never reached the topic: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    // Each chained line on the topic is a line of the file, byte for byte.
    let file_lines: std::collections::HashSet<String> = trail_files(&t.audit_dir)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("trail")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let chained: Vec<&String> = lines.iter().filter(|l| l.contains("\"hash\"")).collect();
    assert!(chained.len() >= 2, "{lines:?}");
    for l in &chained {
        assert!(file_lines.contains(*l), "not a line of the file: {l}");
    }
    assert!(
        lines[0].starts_with("{\"copy_start\""),
        "the copy declares where it starts: {lines:?}"
    );

    // Reserved: bob's Topic:* grant and the admin super user reach every topic but this one.
    let mut bob = t.client("bob");
    let mut admin = t.client("admin");
    for (who, c) in [("bob", &mut bob), ("admin", &mut admin)] {
        let resp = produce(c, None, &[("gw-audit", 0, record_batch(&["forged"], None))]);
        assert_eq!(
            produce_error(&resp, "gw-audit", 0),
            29,
            "{who} produced to the audit topic"
        );
        let resp = fetch_by_name(c, &["gw-audit"]);
        let code = resp
            .responses
            .first()
            .and_then(|r| r.partitions.first())
            .map(|p| p.error_code);
        assert_eq!(code, Some(29), "{who} read the audit topic");
        let resp = metadata(c, Some(&["gw-audit"]), false);
        assert_eq!(
            resp.topics.first().map(|t| t.error_code),
            Some(29),
            "{who} described it"
        );
        let mut del = kafka_protocol::messages::DeleteTopicsRequest::default();
        del.topic_names = vec![topic("gw-audit")];
        del.timeout_ms = 5000;
        let resp: kafka_protocol::messages::DeleteTopicsResponse =
            c.request(kafka_protocol::messages::ApiKey::DeleteTopics, 4, &del);
        assert_eq!(
            resp.responses.first().map(|r| r.error_code),
            Some(29),
            "{who} deleted it"
        );
    }
    let resp = produce(&mut bob, None, &[("t-ok", 0, record_batch(&["v"], None))]);
    assert_ne!(
        produce_error(&resp, "t-ok", 0),
        29,
        "bob's grant still reaches other topics"
    );

    // The copy verifies against the cluster itself.
    let bootstrap = t.broker.addr();
    let (ok, report) = cli(
        &[
            "audit", "verify", "--kafka", &bootstrap, "--topic", "gw-audit",
        ],
        None,
    );
    assert!(ok, "{report}");
    assert!(report.contains("OK: the copy's chain verifies"), "{report}");

    // A record produced straight to the broker, behind the gateway: verify names it.
    let mut direct = RawClient::connect(t.broker.socket(KafkaListener::Plaintext));
    let forged = r#"{"schema":1,"seq":999,"ts":"2026-12-04T00:00:00.000000Z","prev":"00","event":"gateway_stop","hash":"00"}"#;
    let resp = produce(
        &mut direct,
        None,
        &[("gw-audit", 0, record_batch(&[forged], None))],
    );
    assert_eq!(produce_error(&resp, "gw-audit", 0), 0);
    let (ok, report) = cli(
        &[
            "audit", "verify", "--kafka", &bootstrap, "--topic", "gw-audit",
        ],
        None,
    );
    assert!(!ok, "{report}");
    assert!(report.contains("not a valid audit record"), "{report}");
}

/// Issue 11 item 10, across a crash: a burst of denials, kill -9 with the watermark behind (as a
/// crash within its one-second interval leaves it), a restart on the same trail. The second run
/// copies again what came after the watermark, so the topic holds the whole chain: `verify
/// --kafka` finds one chain from seq 0 to the file's last record (the stop record, copied before
/// exit), nothing declared missing, the re-copied records accepted as exact duplicates.
#[test]
fn after_a_crash_the_audit_topic_still_holds_every_record_of_the_file() {
    let mut t = start("[audit.kafka]\ntopic = \"gw-audit-crash\"\n");
    t.wait_for_audit_topic("gw-audit-crash");
    let mut alice = t.client("alice");
    for round in 0..2 {
        // Denials pipelined, then the crash right after the last answer.
        for _ in 0..50 {
            let resp = produce(&mut alice, None, &[("t-no", 0, record_batch(&["v"], None))]);
            assert_eq!(produce_error(&resp, "t-no", 0), 29);
        }
        if round == 0 {
            // As if the crash came before the watermark caught up: the restart copies again
            // everything after seq 5 (the topic gets those as exact duplicates).
            let (text, ports, admin) = t.config.clone();
            t.gateway.kill9();
            std::fs::write(t.audit_dir.join("audit.kafka-copied"), "5\n").expect("watermark");
            t.gateway = Gateway::start(t._dir.path(), &text, ports, admin);
            alice = t.client("alice");
        }
    }
    drop(alice);
    t.gateway.sigterm();
    assert!(t.gateway.wait_exit(Duration::from_secs(20)), "gateway exit");
    let last_seq = read_trail(&t.audit_dir)
        .iter()
        .filter_map(|r| r["seq"].as_u64())
        .max()
        .expect("a trail");
    let bootstrap = t.broker.addr();
    let verify = || {
        cli(
            &[
                "audit",
                "verify",
                "--kafka",
                &bootstrap,
                "--topic",
                "gw-audit-crash",
            ],
            None,
        )
    };
    // The copy is asynchronous: a clean stop may leave the last batch in flight for a moment.
    let start = std::time::Instant::now();
    let (ok, report) = loop {
        let (ok, report) = verify();
        if ok && report.contains(&format!("..={last_seq} ")) {
            break (ok, report);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the copy never reached seq {last_seq}:\n{report}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!("chain 1: seq 0..={last_seq} ")),
        "one chain from genesis to the file's last record:\n{report}"
    );
    assert!(!report.contains("chain 2:"), "{report}");
    assert!(!report.contains("declared not copied"), "{report}");
    let duplicates: u64 = report
        .split(" duplicates")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        duplicates > 0,
        "the restart copied again what came after its watermark:\n{report}"
    );
}

#[test]
fn every_denial_reaches_the_trail_past_the_per_request_limit_and_from_response_merges() {
    let mut t = start_with(
        "p, User:alice, Group, g, Describe, *, allow\n\
         p, User:alice, Topic, t-ok, Describe, *, allow\n",
        "",
    );
    let mut admin = t.client("admin");
    create_topics_ok(&mut admin, &["t-ok", "t-secret"], 1);
    let codes = offset_commit(&mut admin, "g", &[("t-ok", 0, 1), ("t-secret", 0, 2)]);
    assert!(codes.iter().all(|c| c.2 == 0), "{codes:?}");
    let mut alice = t.client("alice");
    // 1,100 topics alice may not describe in one Metadata request: more denials than the gateway
    // keeps one by one per request.
    let names: Vec<String> = (0..1100).map(|i| format!("x-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let resp = metadata(&mut alice, Some(&refs), false);
    assert!(resp.topics.iter().all(|t| t.error_code == 29));
    // OffsetFetch of all of g's topics: the merge hides t-secret, a check made on the response.
    let mut req = kafka_protocol::messages::OffsetFetchRequest::default();
    req.group_id = group("g");
    req.topics = None;
    let resp: kafka_protocol::messages::OffsetFetchResponse =
        alice.request(kafka_protocol::messages::ApiKey::OffsetFetch, 7, &req);
    let listed: Vec<String> = resp.topics.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(listed, vec!["t-ok".to_string()]);
    drop((admin, alice));
    let records = t.stop_and_read();
    let denials: Vec<&serde_json::Value> = of_kind(&records, "authz_decision")
        .into_iter()
        .filter(|r| r["decision"] == "deny" && r["principal"] == "User:alice")
        .collect();
    let metadata_denials: u64 = denials
        .iter()
        .filter(|r| r["api_name"] == "Metadata" && r["operation"] == "Describe")
        .map(|r| r["more"].as_u64().unwrap_or(1))
        .sum();
    let summaries = denials.iter().filter(|r| r["more"].is_u64()).count();
    assert_eq!(metadata_denials, 1100, "denials lost from the trail");
    assert_eq!(summaries, 1, "the overflow is one summary record");
    assert!(
        denials.iter().any(|r| r["api_name"] == "OffsetFetch"
            && r["resource_name"] == "t-secret"
            && r["operation"] == "Describe"),
        "the merge's denial of t-secret is not in the trail"
    );
    let (ok, out) = cli(
        &["audit", "verify", t.audit_dir.to_str().expect("utf-8")],
        None,
    );
    assert!(ok, "{out}");
}

#[test]
fn failed_tls_handshakes_are_recorded_within_a_rate_limit() {
    let dir = TempDir::new("audit-tls");
    let broker = KafkaCluster::start();
    let certs = dev_certs(&dir.path().join("certs"));
    let audit_dir = dir.path().join("audit");
    let mtls = ListenerSpec {
        name: "mtls",
        tls: true,
        client_auth: "required",
        sasl: "",
    };
    let extra = format!("[audit]\ndir = {audit_dir:?}\nlevel = \"admin\"\n");
    let (text, ports, admin) = gateway_config(&broker.upstream(), &[mtls], Some(&certs), &extra);
    let mut gateway = Gateway::start(dir.path(), &text, ports, admin);
    let tools = tools();
    // A real client without a certificate on a listener that requires one.
    let out = common::kafka::python_workload_outcome(
        &tools,
        &[
            "metadata",
            "--bootstrap",
            &gateway.addr("mtls").to_string(),
            "--tls-ca",
            certs.ca().to_str().expect("utf-8"),
            "--op-timeout",
            "3",
        ],
    );
    assert!(
        !out.success,
        "a client without a certificate got in: {}",
        out.json
    );
    // A storm of 200 connections sending garbage instead of a ClientHello.
    for _ in 0..200 {
        if let Ok(mut s) = std::net::TcpStream::connect(gateway.addr("mtls")) {
            use std::io::Write;
            let _ = s.write_all(b"\x16\x03\x01\x00\x05hello, not TLS");
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let suppressed = metric_sum(
        &gateway.metrics(),
        "kafka_gateway_audit_records_suppressed_total",
    );
    gateway.sigterm();
    assert!(gateway.wait_exit(Duration::from_secs(20)));
    let records = read_trail(&audit_dir);
    let failures: Vec<&serde_json::Value> = of_kind(&records, "auth_failure")
        .into_iter()
        .filter(|r| r["mechanism"] == "TLS")
        .collect();
    assert!(
        failures
            .iter()
            .any(|r| r["reason"] == "tls_no_client_certificate"),
        "the missing client certificate is not in the trail: {failures:?}"
    );
    assert!(
        failures.iter().any(|r| r["reason"] == "tls_protocol"),
        "{failures:?}"
    );
    assert!(
        failures.len() < 120 && suppressed > 0,
        "{} TLS failure records, {suppressed} suppressed: the storm was not rate-limited",
        failures.len()
    );
    println!(
        "RESULT TLS handshake failures: {} recorded, {suppressed} suppressed by the rate limit",
        failures.len()
    );
}
