//! What only Apache Kafka can show: the gateway's own identity on Kafka's SASL and mTLS listeners,
//! upstream re-authentication before the broker's `connections.max.reauth.ms`, transactional
//! producers (Java 4.4 with transactions v2, and Java 3.9.1) with read_committed consumers,
//! the KIP-848 consumer protocol beside the classic one, incremental fetch sessions (served only
//! to who built them), Kafka's own `kafka-acls.sh` listing the policy, and Kafka Streams (classic
//! group protocol; the streams protocol refused cleanly), and share groups (KIP-932) with a denied
//! member.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::apache::*;
use common::kafka::*;
use common::sasl::login;
use common::*;

const PLAIN: ListenerSpec = ListenerSpec {
    name: "plain",
    tls: false,
    client_auth: "none",
    sasl: "",
};
const SASL: ListenerSpec = ListenerSpec {
    name: "sasl",
    tls: false,
    client_auth: "none",
    sasl: r#""SCRAM-SHA-512""#,
};

/// A gateway in front of `cluster` over `upstream`, with `listeners`; `extra` appended.
struct Rig {
    /// Holds the gateway's files until the test ends.
    _dir: TempDir,
    gateway: Gateway,
    tools: Tools,
    policy: PathBuf,
}

fn rig(upstream: &Upstream, listeners: &[ListenerSpec], policy: Option<&str>, extra: &str) -> Rig {
    let dir = TempDir::new("kafka");
    let users = dir.path().join("users.toml");
    for u in ["admin", "alice", "bob"] {
        add_scram_user(&users, u, &format!("{u}-secret"), &["SCRAM-SHA-512"]);
    }
    let policy_file = dir.path().join("acl.policy");
    let mut text =
        format!("[authentication]\ncredentials_file = {users:?}\ntimeout = \"5s\"\n\n{extra}\n");
    if let Some(p) = policy {
        std::fs::write(&policy_file, p).expect("policy");
        text.push_str(&format!(
            "[authorization]\nmodel = {:?}\npolicy_files = [{policy_file:?}]\nsuper_users = [\"User:admin\"]\n",
            repo_root().join("policies/model.conf")
        ));
    }
    let (config, ports, admin) = gateway_config(upstream, listeners, None, &text);
    let gateway = Gateway::start(dir.path(), &config, ports, admin);
    Rig {
        _dir: dir,
        gateway,
        tools: tools(),
        policy: policy_file,
    }
}

fn sasl_args<'a>(user: &'a str, password: &'a str) -> [&'a str; 6] {
    [
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--username",
        user,
        "--password",
        password,
    ]
}

fn roundtrip_args<'a>(bootstrap: &'a str, topic: &'a str) -> Vec<&'a str> {
    vec![
        "roundtrip",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--count",
        "2000",
    ]
}

// ---------------------------------------------------------------------------------------------------------
// The gateway's own identity upstream
// ---------------------------------------------------------------------------------------------------------

#[test]
fn upstream_scram_sha_512_and_mtls_identities_are_the_gateways_own() {
    let cluster =
        KafkaCluster::start_with(ClusterOptions::default().user("nobody", "nobody-secret"));
    for l in [
        KafkaListener::SaslPlaintext,
        KafkaListener::SaslSsl,
        KafkaListener::Ssl,
    ] {
        let r = rig(&cluster.upstream_via(l), &[PLAIN], None, "");
        let bootstrap = r.gateway.addr("plain").to_string();
        let topic = format!("identity-{l:?}").to_lowercase();
        let out = python_workload(&r.tools, &roundtrip_args(&bootstrap, &topic));
        assert_roundtrip(&format!("{l:?}"), &out, 2000);
        println!("RESULT upstream over {l:?} as User:gateway: 2,000 records round-tripped");
    }
    // The broker really authorizes the gateway's identity: logged in as a user without ACLs, the
    // gateway's requests are refused by Kafka itself.
    let mut up = cluster.upstream_via(KafkaListener::SaslPlaintext);
    up.tables = up
        .tables
        .replace(
            &format!("username = \"{GATEWAY_USER}\""),
            "username = \"nobody\"",
        )
        .replace(
            &format!("password = \"{GATEWAY_PASSWORD}\""),
            "password = \"nobody-secret\"",
        );
    let r = rig(&up, &[PLAIN], None, "");
    let mut c = RawClient::connect(r.gateway.addr("plain"));
    let created = create_topics(&mut c, &["as-nobody"], 1);
    assert_eq!(
        created,
        vec![("as-nobody".to_string(), 29)],
        "Kafka answers TOPIC_AUTHORIZATION_FAILED to the gateway's identity"
    );
    // And a wrong password never gets the gateway ready.
    let mut bad = cluster.upstream_via(KafkaListener::SaslPlaintext);
    bad.tables = bad.tables.replace(GATEWAY_PASSWORD, "wrong");
    let dir = TempDir::new("kafka-badpw");
    let (config, _, admin) = gateway_config(&bad, &[PLAIN], None, "");
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, config).expect("config");
    let mut child = std::process::Command::new(gateway_bin())
        .args(["run", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    std::thread::sleep(Duration::from_secs(3));
    let ready = http_get(
        std::net::SocketAddr::from(([127, 0, 0, 1], admin)),
        "/readyz",
    );
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(ready.map(|r| r.0), Some(503), "ready with a refused login");
    assert!(log.contains("rejected the configured credentials"), "{log}");
    assert!(!log.contains("wrong"), "the password was logged: {log}");
}

// ---------------------------------------------------------------------------------------------------------
// Transactions and group protocols
// ---------------------------------------------------------------------------------------------------------

const TXN_POLICY: &str = "p, User:alice, Topic, txn-*, All, *, allow\n\
    p, User:alice, TransactionalId, tx-*, All, *, allow\n\
    p, User:alice, Group, *, All, *, allow\n\
    p, User:alice, Cluster, kafka-cluster, IdempotentWrite, *, allow\n";

#[test]
fn transactional_producers_java_4_4_and_3_9_with_read_committed_consumers() {
    let cluster = KafkaCluster::start();
    let r = rig(&cluster.upstream(), &[SASL], Some(TXN_POLICY), "");
    let bootstrap = r.gateway.addr("sasl").to_string();
    // The cluster runs transactions v2 (KIP-890), which needs Produce v12, EndTxn v5 and
    // TxnOffsetCommit v5: the gateway offers them (Produce up to v13, its `node_endpoints`
    // rewritten), so it passes transaction.version 2 on and 4.4 clients use the v2 protocol
    // (no AddPartitionsToTxn: the broker adds partitions as transactional batches arrive).
    let level = |addr: std::net::SocketAddr| -> i16 {
        let resp: kafka_protocol::messages::ApiVersionsResponse = RawClient::connect(addr).request(
            kafka_protocol::messages::ApiKey::ApiVersions,
            3,
            &api_versions_request(),
        );
        resp.finalized_features
            .iter()
            .find(|f| f.name.as_str() == "transaction.version")
            .map_or(0, |f| f.max_version_level)
    };
    assert_eq!(level(cluster.socket(KafkaListener::Plaintext)), 2);
    assert_eq!(level(r.gateway.addr("sasl")), 2);
    type Run = fn(&Tools, &[&str]) -> serde_json::Value;
    let clients: [(&str, Run, &str); 3] = [
        ("java 4.4.0", java44_workload, "group.protocol=consumer"),
        (
            "java 4.4.0 classic",
            java44_workload,
            "group.protocol=classic",
        ),
        ("java 3.9.1", java_workload, "group.protocol=classic"),
    ];
    for (i, (what, run, protocol)) in clients.into_iter().enumerate() {
        let (topic, txn) = (format!("txn-{i}"), format!("tx-{i}"));
        let mut args = vec![
            "txn",
            "--bootstrap",
            &bootstrap,
            "--topic",
            &topic,
            "--transactional-id",
            &txn,
            "--transactions",
            "9",
            "--per-txn",
            "25",
            "--abort-every",
            "3",
            "--consumer-extra",
            protocol,
        ];
        args.extend(sasl_args("alice", "alice-secret"));
        let out = run(&r.tools, &args);
        println!("RESULT {what} transactions through the gateway: {out}");
        assert_eq!(out["committed_transactions"], 6, "{what}: {out}");
        assert_eq!(out["read_committed_missing"], 0, "{what}: {out}");
        assert_eq!(out["read_committed_duplicates"], 0, "{what}: {out}");
        assert_eq!(out["read_committed_saw_aborted"], 0, "{what}: {out}");
        assert_eq!(out["read_uncommitted_saw_aborted"], 75, "{what}: {out}");
        assert_eq!(
            out["group_offset"], out["expected_group_offset"],
            "{what}: {out}"
        );
    }
    // Without WRITE on the transactional id the producer is refused (53) by the gateway.
    let mut args = vec![
        "txn",
        "--bootstrap",
        &bootstrap,
        "--topic",
        "txn-denied",
        "--transactional-id",
        "other-tx",
        "--transactions",
        "1",
    ];
    args.extend(sasl_args("alice", "alice-secret"));
    let out = java_workload_outcome(&r.tools, &args);
    assert!(!out.success, "{}", out.json);
    assert!(
        out.json
            .to_string()
            .contains("TransactionalIdAuthorization"),
        "{}",
        out.json
    );
}

#[test]
fn librdkafka_consumer_protocol_and_classic_groups_under_a_policy() {
    let cluster = KafkaCluster::start();
    let r = rig(
        &cluster.upstream(),
        &[SASL],
        Some(
            "p, User:alice, Topic, grp-*, All, *, allow\n\
             p, User:alice, Group, g-*, Read, *, allow\n",
        ),
        "",
    );
    let bootstrap = r.gateway.addr("sasl").to_string();
    for protocol in ["consumer", "classic"] {
        let topic = format!("grp-{protocol}");
        let group = format!("g-{protocol}");
        let proto = format!("group.protocol={protocol}");
        let mut args = roundtrip_args(&bootstrap, &topic);
        args.extend(["--group", &group, "--consumer-extra", &proto]);
        args.extend(sasl_args("alice", "alice-secret"));
        let out = python_workload(&r.tools, &args);
        assert_roundtrip(&format!("librdkafka group.protocol={protocol}"), &out, 2000);
    }
    // A group alice may not read: the KIP-848 heartbeat is refused with 30 at the gateway.
    let mut args = roundtrip_args(&bootstrap, "grp-denied");
    args.extend([
        "--group",
        "other-group",
        "--consumer-extra",
        "group.protocol=consumer",
        "--timeout",
        "10",
    ]);
    args.extend(sasl_args("alice", "alice-secret"));
    let out = python_workload_outcome(&r.tools, &args);
    assert!(!out.success, "{}", out.json);
    assert!(
        out.json.to_string().contains("GROUP_AUTHORIZATION_FAILED")
            || out.stderr.contains("GROUP_AUTHORIZATION_FAILED"),
        "{}\n{}",
        out.json,
        tail(&out.stderr, 2000)
    );
}

// ---------------------------------------------------------------------------------------------------------
// Upstream re-authentication (KIP-368)
// ---------------------------------------------------------------------------------------------------------

#[test]
fn upstream_sessions_are_renewed_before_the_brokers_connections_max_reauth_ms() {
    // The REAUTH listener expires every SASL session after 3 s: Kafka then closes a connection at
    // its next request unless it has logged in again.
    let cluster = KafkaCluster::start_with(ClusterOptions {
        reauth_ms: 3_000,
        ..ClusterOptions::default()
    });
    let r = rig(
        &cluster.upstream_via(KafkaListener::Reauth),
        &[PLAIN],
        None,
        "",
    );
    let mut c = RawClient::connect(r.gateway.addr("plain"));
    create_topics_ok(&mut c, &["reauth"], 1);
    // One client connection (so one upstream connection) busy for 10 s: more than three lifetimes.
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(10) {
        produce_ok(&mut c, "reauth", 0, &[&format!("r{n}")]);
        assert_eq!(
            metadata(&mut c, Some(&["reauth"]), false).topics[0].error_code,
            0
        );
        n += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let resp = fetch_by_name(&mut c, &["reauth"]);
    assert_eq!(record_values(&fetched(&resp, "reauth", 0).records).len(), n);
    let renewed = metric_sum(
        &r.gateway.metrics(),
        "kafka_gateway_upstream_reauthentications_total{outcome=\"ok\"}",
    );
    let failed = metric_sum(
        &r.gateway.metrics(),
        "kafka_gateway_upstream_reauthentications_total{outcome=\"error\"}",
    );
    println!(
        "RESULT upstream re-authentication: {n} produce+metadata pairs over one connection for 10 s \
         with a 3 s session lifetime; {renewed} in-band renewals, {failed} failures"
    );
    assert!(renewed >= 2, "sessions renewed {renewed} times");
    assert_eq!(failed, 0);
}

// ---------------------------------------------------------------------------------------------------------
// Incremental fetch sessions (KIP-227)
// ---------------------------------------------------------------------------------------------------------

/// A Fetch v12 in fetch session `session_id` at `epoch`, naming `topics` (none: an incremental
/// fetch that only asks what changed).
fn session_fetch(
    c: &mut RawClient,
    session_id: i32,
    epoch: i32,
    topics: &[&str],
    from: i64,
) -> kafka_protocol::messages::FetchResponse {
    let mut req = fetch_request(
        topics
            .iter()
            .map(|t| {
                let mut ft = fetch_topic_by_name(t, &[0]);
                ft.partitions[0].fetch_offset = from;
                ft
            })
            .collect(),
    );
    req.session_id = session_id;
    req.session_epoch = epoch;
    c.request(kafka_protocol::messages::ApiKey::Fetch, 12, &req)
}

/// Error code and session id of a Fetch response.
fn session_answer(r: &kafka_protocol::messages::FetchResponse) -> (i16, i32) {
    (r.error_code, r.session_id)
}

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

#[test]
fn incremental_fetch_sessions_belong_to_who_built_them_and_end_with_a_revocation() {
    let cluster = KafkaCluster::start();
    let r = rig(
        &cluster.upstream(),
        &[SASL],
        Some(
            "p, User:alice, Topic, fs, Read, *, allow\n\
             p, User:bob, Topic, other, Read, *, allow\n",
        ),
        "",
    );
    let mut admin = RawClient::connect(cluster.socket(KafkaListener::Plaintext));
    create_topics_ok(&mut admin, &["fs", "other"], 1);
    produce_ok(&mut admin, "fs", 0, &["a", "b"]);
    let login_as = |user: &str, from: std::net::Ipv4Addr| {
        let mut c = connect_from(from, r.gateway.addr("sasl")).expect("connect");
        let l = login(&mut c, "SCRAM-SHA-512", user, &format!("{user}-secret"));
        assert_eq!(l.error_code(), 0, "{}", l.message());
        c
    };
    let here = std::net::Ipv4Addr::new(127, 0, 0, 1);
    let mut alice = login_as("alice", here);
    // A full fetch at epoch 0 asks the broker for a session.
    let full = session_fetch(&mut alice, 0, 0, &["fs"], 0);
    assert_eq!(full.error_code, 0, "{full:?}");
    let id = full.session_id;
    assert_ne!(id, 0, "Kafka opened no fetch session: {full:?}");
    assert_eq!(
        record_values(&fetched(&full, "fs", 0).records),
        vec!["a", "b"]
    );
    // Incremental fetches in it, naming nothing or the partition again, are served.
    let idle = session_fetch(&mut alice, id, 1, &[], 0);
    assert_eq!(session_answer(&idle), (0, id));
    produce_ok(&mut admin, "fs", 0, &["c"]);
    let next = session_fetch(&mut alice, id, 2, &["fs"], 2);
    assert_eq!(session_answer(&next), (0, id));
    assert_eq!(record_values(&fetched(&next, "fs", 0).records), vec!["c"]);
    // Another principal that learns the id gets nothing from it; nor does alice from another
    // address (host rules would be bypassed); the owner's session is not ended by either.
    let mut bob = login_as("bob", here);
    let stolen = session_fetch(&mut bob, id, 3, &[], 0);
    assert_eq!(session_answer(&stolen), (FETCH_SESSION_ID_NOT_FOUND, 0));
    assert!(stolen.responses.is_empty(), "{stolen:?}");
    let mut elsewhere = login_as("alice", std::net::Ipv4Addr::new(127, 0, 0, 2));
    let moved = session_fetch(&mut elsewhere, id, 3, &[], 0);
    assert_eq!(session_answer(&moved), (FETCH_SESSION_ID_NOT_FOUND, 0));
    let still = session_fetch(&mut alice, id, 3, &[], 0);
    assert_eq!(
        session_answer(&still),
        (0, id),
        "the owner's session survived"
    );
    // READ is revoked: the session's partitions were authorized under the old policy. A new
    // connection (a reconnect) continuing the old session is refused, as is the old connection;
    // the full fetch that follows is denied.
    let reloads = |g: &Gateway| metric_sum(&g.metrics(), "kafka_gateway_reloads_total");
    let before = reloads(&r.gateway);
    std::fs::write(&r.policy, "# alice may read nothing now\n").expect("policy");
    eventually("revocation loaded", Duration::from_secs(8), || {
        reloads(&r.gateway) > before
    });
    let mut reconnected = login_as("alice", here);
    let after = session_fetch(&mut reconnected, id, 4, &[], 0);
    assert_eq!(session_answer(&after), (FETCH_SESSION_ID_NOT_FOUND, 0));
    assert!(after.responses.is_empty(), "{after:?}");
    let old = session_fetch(&mut alice, id, 4, &[], 0);
    assert_eq!(session_answer(&old), (FETCH_SESSION_ID_NOT_FOUND, 0));
    let denied = session_fetch(&mut reconnected, 0, 0, &["fs"], 0);
    assert_eq!(fetched(&denied, "fs", 0).error_code, 29, "{denied:?}");
    assert!(record_values(&fetched(&denied, "fs", 0).records).is_empty());
    let refused = metric_sum(
        &r.gateway.metrics(),
        "kafka_gateway_fetch_sessions_refused_total",
    );
    assert_eq!(refused, 4, "stolen, moved, reconnected, old");
    println!(
        "RESULT fetch session {id} through the gateway: served to its builder; refused with 70 to \
         another principal, to the builder from another address, and after READ was revoked (also \
         on a new connection); the full fetch then got 29"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Kafka's ACL tools, answered from the policy
// ---------------------------------------------------------------------------------------------------------

/// Runs Kafka 4.4's `kafka-acls.sh` (AclCommand) against `bootstrap` as `user` over SCRAM-SHA-512.
fn kafka_acls(
    tools: &Tools,
    dir: &std::path::Path,
    bootstrap: &str,
    user: &str,
    args: &[&str],
) -> std::process::Output {
    kafka_cli(tools, dir, (bootstrap, user), "AclCommand", args)
}

/// A tool's stdout and stderr, for assertions and their messages.
fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a Kafka 4.4 command-line tool (`org.apache.kafka.tools.<class>`) against `bootstrap` as
/// `user` over SCRAM-SHA-512.
fn kafka_cli(
    tools: &Tools,
    dir: &std::path::Path,
    (bootstrap, user): (&str, &str),
    class: &str,
    args: &[&str],
) -> std::process::Output {
    let props = dir.join(format!("{user}.properties"));
    std::fs::write(
        &props,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"{user}\" password=\"{user}-secret\";\n"
        ),
    )
    .expect("client properties");
    let props = props.to_string_lossy().into_owned();
    std::process::Command::new("java")
        .args([
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            &tools.kafka_cp,
        ])
        .arg(format!("org.apache.kafka.tools.{class}"))
        .args(["--bootstrap-server", bootstrap, "--command-config", &props])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {class}: {e}"))
}

#[test]
fn kafka_acls_lists_the_policy_and_cannot_change_it() {
    let cluster = KafkaCluster::start();
    let r = rig(
        &cluster.upstream(),
        &[SASL],
        Some(
            "g, User:alice, Group:team\n\
             p, Group:team, Topic, grp-*, All, *, allow\n\
             p, User:bob, Topic, orders, Read, 10.0.0.7, deny\n\
             p, User:bob, Cluster, *, Describe, *, allow\n",
        ),
        "",
    );
    let dir = TempDir::new("kafka-acls");
    let bootstrap = r.gateway.addr("sasl").to_string();
    let text = output_text;
    // bob may DESCRIBE the cluster: the policy, in Kafka's form (the group expanded to alice).
    let list = kafka_acls(&r.tools, dir.path(), &bootstrap, "bob", &["--list"]);
    let out = text(&list);
    assert!(list.status.success(), "{out}");
    for want in [
        "ResourcePattern(resourceType=TOPIC, name=grp-, patternType=PREFIXED)",
        "(principal=User:alice, host=*, operation=ALL, permissionType=ALLOW)",
        "ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)",
        "(principal=User:bob, host=10.0.0.7, operation=READ, permissionType=DENY)",
        "ResourcePattern(resourceType=CLUSTER, name=kafka-cluster, patternType=LITERAL)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // A filter: only the topic orders.
    let one = kafka_acls(
        &r.tools,
        dir.path(),
        &bootstrap,
        "bob",
        &["--list", "--topic", "orders"],
    );
    let one = text(&one);
    assert!(
        one.contains("name=orders") && !one.contains("name=grp-"),
        "{one}"
    );
    // alice may not DESCRIBE the cluster.
    let denied = kafka_acls(&r.tools, dir.path(), &bootstrap, "alice", &["--list"]);
    let out = text(&denied);
    assert!(!denied.status.success(), "{out}");
    assert!(out.contains("ClusterAuthorizationException"), "{out}");
    // Changes are refused, even for a super user: the files are the source of truth, and the
    // brokers' ACLs are untouched.
    let add = kafka_acls(
        &r.tools,
        dir.path(),
        &bootstrap,
        "admin",
        &[
            "--add",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Read",
            "--topic",
            "x",
        ],
    );
    let out = text(&add);
    assert!(
        out.contains("SecurityDisabledException") && out.contains("policy files"),
        "{out}"
    );
    let direct = cluster.bootstrap(KafkaListener::Plaintext);
    let brokers = std::process::Command::new("java")
        .args([
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            &r.tools.kafka_cp,
        ])
        .arg("org.apache.kafka.tools.AclCommand")
        .args(["--bootstrap-server", &direct, "--list"])
        .output()
        .expect("run AclCommand");
    let out = text(&brokers);
    assert!(brokers.status.success(), "{out}");
    assert!(!out.contains("name=x,"), "the broker got an ACL: {out}");
}

// ---------------------------------------------------------------------------------------------------------
// Kafka Streams
// ---------------------------------------------------------------------------------------------------------

/// Runs StreamsClient (Kafka Streams 4.4) through the gateway as alice; its JSON line and success.
fn streams_client(
    tools: &Tools,
    bootstrap: &str,
    app: &str,
    protocol: &str,
) -> (serde_json::Value, bool) {
    let out = std::process::Command::new("java")
        .args([
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            &tools.streams_cp,
            "StreamsClient",
        ])
        .args([
            "--bootstrap",
            bootstrap,
            "--app-id",
            app,
            "--group-protocol",
            protocol,
        ])
        .args([
            "--input",
            &format!("{app}-in"),
            "--output",
            &format!("{app}-out"),
        ])
        .args(["--count", "200", "--timeout", "60"])
        .args([
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--username",
            "alice",
            "--password",
            "alice-secret",
        ])
        .output()
        .expect("run StreamsClient");
    json_result("StreamsClient", &out)
}

/// The JSON line a test client prints last, and whether it exited 0.
fn json_result(what: &str, out: &std::process::Output) -> (serde_json::Value, bool) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "{what} printed no result:\n{stdout}\n{}",
                tail(&String::from_utf8_lossy(&out.stderr), 3000)
            )
        });
    (
        serde_json::from_str(line).expect("JSON"),
        out.status.success(),
    )
}

/// Kafka Streams works through the gateway with the classic group protocol (the default), under a
/// policy; the streams group protocol (KIP-1071: StreamsGroupHeartbeat, not in kafka-protocol 0.18)
/// is not offered, so a Streams application that asks for it stops with Kafka's own "not
/// supported" error instead of hanging or reaching the brokers unchecked.
#[test]
fn kafka_streams_runs_with_the_classic_protocol_and_streams_groups_are_refused_cleanly() {
    let cluster = KafkaCluster::start();
    let r = rig(
        &cluster.upstream(),
        &[SASL],
        Some(
            "p, User:alice, Topic, streams-*, All, *, allow\n\
             p, User:alice, Group, streams-*, All, *, allow\n\
             p, User:alice, Cluster, kafka-cluster, IdempotentWrite, *, allow\n",
        ),
        "",
    );
    let bootstrap = r.gateway.addr("sasl").to_string();
    let (classic, ok) = streams_client(&r.tools, &bootstrap, "streams-classic", "classic");
    assert!(ok, "{classic}");
    assert_eq!(classic["copied"], 200, "{classic}");
    assert_eq!(classic["wrong"], 0, "{classic}");
    let (refused, ok) = streams_client(&r.tools, &bootstrap, "streams-kip1071", "streams");
    assert!(!ok, "{refused}");
    assert_eq!(refused["copied"], 0, "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("STREAMS") || error.contains("streams"),
        "{refused}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Share groups (KIP-932)
// ---------------------------------------------------------------------------------------------------------

/// Runs a Kafka 4.4 tool's main class against the brokers directly (test setup, not under test).
fn kafka_tool(tools: &Tools, class: &str, args: &[&str]) {
    let out = std::process::Command::new("java")
        .args([
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            &tools.kafka_cp,
            class,
        ])
        .args(args)
        .output()
        .expect("run a Kafka tool");
    assert!(
        out.status.success(),
        "{class} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts ShareClient (a KafkaShareConsumer of the Java client 4.4) as `user`.
fn share_client(tools: &Tools, bootstrap: &str, user: &str, args: &[&str]) -> std::process::Child {
    let password = format!("{user}-secret");
    std::process::Command::new("java")
        .args([
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            &tools.share_cp,
            "ShareClient",
        ])
        .args([
            "--bootstrap",
            bootstrap,
            "--topic",
            "share-t",
            "--group",
            "share-g",
        ])
        .args(sasl_args(user, &password))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start ShareClient")
}

/// ShareClient's JSON line, and whether it succeeded.
fn share_result(child: std::process::Child) -> (serde_json::Value, bool) {
    let out = child.wait_with_output().expect("ShareClient ran");
    json_result("ShareClient", &out)
}

/// Two members of one share group consume through the gateway: alice reads every record, releasing
/// each record at an even offset the first time, which the broker delivers again before she accepts
/// it (acknowledgements through ShareFetch and ShareAcknowledge, redelivery by the broker); bob may
/// join the group and describe the topic but not READ it, so each of his fetches is answered
/// TOPIC_AUTHORIZATION_FAILED by the gateway, on every poll as Kafka answers the partitions of a
/// share session, while the group goes on serving alice.
#[test]
fn share_group_members_consume_acknowledge_and_see_redelivery_and_a_denied_member_gets_29() {
    let cluster = KafkaCluster::start();
    let r = rig(
        &cluster.upstream(),
        &[SASL],
        Some(
            "p, User:alice, Topic, share-*, All, *, allow\n\
             p, User:alice, Group, share-*, All, *, allow\n\
             p, User:alice, Cluster, kafka-cluster, IdempotentWrite, *, allow\n\
             p, User:bob, Group, share-*, Read, *, allow\n\
             p, User:bob, Topic, share-*, Describe, *, allow\n",
        ),
        "",
    );
    let direct = cluster.bootstrap(KafkaListener::Plaintext);
    kafka_tool(
        &r.tools,
        "org.apache.kafka.tools.TopicCommand",
        &[
            "--bootstrap-server",
            &direct,
            "--create",
            "--topic",
            "share-t",
            "--partitions",
            "2",
            "--replication-factor",
            "1",
        ],
    );
    // Share groups start at the latest offset by default; the records are produced first.
    kafka_tool(
        &r.tools,
        "org.apache.kafka.tools.ConfigCommand",
        &[
            "--bootstrap-server",
            &direct,
            "--alter",
            "--entity-type",
            "groups",
            "--entity-name",
            "share-g",
            "--add-config",
            "share.auto.offset.reset=earliest",
        ],
    );
    let bootstrap = r.gateway.addr("sasl").to_string();
    let bob = share_client(
        &r.tools,
        &bootstrap,
        "bob",
        &["--count", "1", "--timeout", "60", "--max-auth-errors", "3"],
    );
    let alice = share_client(
        &r.tools,
        &bootstrap,
        "alice",
        &[
            "--produce",
            "100",
            "--count",
            "100",
            "--timeout",
            "90",
            "--release-even",
            "true",
        ],
    );
    let (alice, alice_ok) = share_result(alice);
    let (bob, bob_ok) = share_result(bob);
    eprintln!("alice: {alice}\nbob: {bob}");
    assert!(alice_ok, "alice: {alice}");
    assert_eq!(alice["produced"], 100, "{alice}");
    assert_eq!(alice["accepted"], 100, "{alice}");
    let released = alice["released"].as_u64().unwrap_or_default();
    let redelivered = alice["redelivered"].as_u64().unwrap_or_default();
    assert!(released > 0, "{alice}");
    assert!(
        redelivered >= released,
        "every released record comes back: {alice}"
    );
    assert_eq!(alice["auth_errors"], 0, "{alice}");
    assert!(!bob_ok, "bob: {bob}");
    assert_eq!(bob["accepted"], 0, "{bob}");
    assert_eq!(
        bob["auth_errors"], 3,
        "denied on every poll, not once: {bob}"
    );
    let error = bob["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("TopicAuthorization"), "{bob}");
}

/// A ShareFetch through the gateway in share session (`group`, `member`) at `epoch`, naming
/// partition 0 of `topics` (by id).
fn share_fetch(
    c: &mut RawClient,
    member: &str,
    epoch: i32,
    topics: &[uuid::Uuid],
) -> kafka_protocol::messages::ShareFetchResponse {
    use kafka_protocol::messages::share_fetch_request::{FetchPartition, FetchTopic};
    let req = kafka_protocol::messages::ShareFetchRequest::default()
        .with_group_id(Some(group("share-s")))
        .with_member_id(Some(sb(member)))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_max_records(100)
        .with_batch_size(100)
        .with_topics(
            topics
                .iter()
                .map(|id| {
                    FetchTopic::default()
                        .with_topic_id(*id)
                        .with_partitions(vec![FetchPartition::default().with_partition_index(0)])
                })
                .collect(),
        );
    c.request(kafka_protocol::messages::ApiKey::ShareFetch, 1, &req)
}

const SHARE_SESSION_NOT_FOUND: i16 = 122;

/// A broker keys a share session by group and member id, which anyone allowed to describe the
/// group can read, and serves its partitions to whoever continues it: Kafka re-authorizes them
/// against the requester, the gateway (whose upstream connections are all its own) serves a
/// session only to the client that opened it under the policy in force, and answers anyone else
/// SHARE_SESSION_NOT_FOUND, after which a client opens a new session, authorized in full.
#[test]
fn share_sessions_belong_to_the_client_that_opened_them() {
    let cluster = KafkaCluster::start();
    let r = rig(
        &cluster.upstream(),
        &[SASL],
        Some(
            "p, User:alice, Topic, share-s, Read, *, allow\n\
             p, User:alice, Group, share-s, Read, *, allow\n\
             p, User:bob, Group, share-s, Read, *, allow\n",
        ),
        "",
    );
    let mut admin = RawClient::connect(cluster.socket(KafkaListener::Plaintext));
    create_topics_ok(&mut admin, &["share-s"], 1);
    let id = topic_ids(&mut admin)["share-s"];
    let login_as = |user: &str| {
        let mut c =
            connect_from(std::net::Ipv4Addr::LOCALHOST, r.gateway.addr("sasl")).expect("connect");
        let l = login(&mut c, "SCRAM-SHA-512", user, &format!("{user}-secret"));
        assert_eq!(l.error_code(), 0, "{}", l.message());
        c
    };
    // Kafka's text form of a Uuid, as clients make member ids.
    let member = "AAAAAAAAAAAAAAAAAAAAAQ";
    let mut alice = login_as("alice");
    let opened = share_fetch(&mut alice, member, 0, &[id]);
    assert_eq!(opened.error_code, 0, "{opened:?}");
    let mut bob = login_as("bob");
    let stolen = share_fetch(&mut bob, member, 1, &[]);
    assert_eq!(
        (stolen.error_code, stolen.responses.len()),
        (SHARE_SESSION_NOT_FOUND, 0)
    );
    let ack = kafka_protocol::messages::ShareAcknowledgeRequest::default()
        .with_group_id(Some(group("share-s")))
        .with_member_id(Some(sb(member)))
        .with_share_session_epoch(1);
    let acked: kafka_protocol::messages::ShareAcknowledgeResponse =
        bob.request(kafka_protocol::messages::ApiKey::ShareAcknowledge, 1, &ack);
    assert_eq!(acked.error_code, SHARE_SESSION_NOT_FOUND);
    let still = share_fetch(&mut alice, member, 1, &[]);
    assert_eq!(
        still.error_code, 0,
        "the owner's session survived: {still:?}"
    );
    // READ on the topic revoked: the session's partition was authorized under the old policy.
    let reloads = |g: &Gateway| metric_sum(&g.metrics(), "kafka_gateway_reloads_total");
    let before = reloads(&r.gateway);
    std::fs::write(&r.policy, "p, User:alice, Group, share-s, Read, *, allow\n").expect("policy");
    eventually("revocation loaded", Duration::from_secs(8), || {
        reloads(&r.gateway) > before
    });
    let after = share_fetch(&mut alice, member, 2, &[]);
    assert_eq!(after.error_code, SHARE_SESSION_NOT_FOUND);
    let reopened = share_fetch(&mut alice, member, 0, &[id]);
    assert_eq!(reopened.error_code, 0, "{reopened:?}");
    let denied: Vec<i16> = reopened
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect();
    assert_eq!(denied, vec![29], "{reopened:?}");
    let refused = metric_sum(
        &r.gateway.metrics(),
        "kafka_gateway_share_sessions_refused_total",
    );
    assert_eq!(
        refused, 3,
        "stolen fetch, stolen acknowledge, policy changed"
    );
}

// ---------------------------------------------------------------------------------------------------------
// DescribeTopicPartitions (KIP-966)
// ---------------------------------------------------------------------------------------------------------

/// `kafka-topics.sh --describe` (Java 4.4 admin: DescribeTopicPartitions, no Metadata fallback as
/// the gateway offers it) through the gateway shows the topics the session may describe, with
/// their partitions, and nothing of the others.
#[test]
fn kafka_topics_describe_uses_describe_topic_partitions_and_shows_only_describable_topics() {
    let cluster = KafkaCluster::start();
    let r = rig(
        &cluster.upstream(),
        &[SASL],
        // DESCRIBE_CONFIGS too: the tool shows each topic's configs.
        Some(
            "p, User:alice, Topic, dtp-a, Describe, *, allow\n\
             p, User:alice, Topic, dtp-a, DescribeConfigs, *, allow\n",
        ),
        "",
    );
    let mut admin = RawClient::connect(cluster.socket(KafkaListener::Plaintext));
    create_topics_ok(&mut admin, &["dtp-a"], 3);
    create_topics_ok(&mut admin, &["dtp-secret"], 1);
    let dir = TempDir::new("kafka-topics");
    let bootstrap = r.gateway.addr("sasl").to_string();
    let text = output_text;
    let topics = |args: &[&str]| {
        kafka_cli(
            &r.tools,
            dir.path(),
            (&bootstrap, "alice"),
            "TopicCommand",
            args,
        )
    };
    let one = topics(&["--describe", "--topic", "dtp-a"]);
    let out = text(&one);
    assert!(one.status.success(), "{out}");
    assert!(out.contains("PartitionCount: 3"), "{out}");
    assert_eq!(out.matches("Partition: ").count(), 3, "{out}");
    let all = topics(&["--describe"]);
    let out = text(&all);
    assert!(all.status.success(), "{out}");
    assert!(out.contains("dtp-a"), "{out}");
    assert!(!out.contains("dtp-secret"), "{out}");
    let dtp = metric_sum(
        &r.gateway.metrics(),
        "kafka_gateway_requests_total{api=\"DescribeTopicPartitions\"}",
    );
    assert!(
        dtp >= 2,
        "the admin client described through DescribeTopicPartitions ({dtp})"
    );
}
