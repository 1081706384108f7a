//! Quotas end to end against Apache Kafka 4.4: a librdkafka, a Java 4.4 and a Java 3.9.1
//! producer whose principal has a `producer_byte_rate` measure a rate within 10% of it while
//! another principal produces at the same time unthrottled; a consumer byte rate; the audit
//! record and metrics of a throttle; and a policy reload that lifts the quota. Then the
//! connection rate per address, the login rate per principal (raw connections measure the served
//! rate; librdkafka and Java clients work beside and under them) and a request-time quota.
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
q, User:frank, -, producer_byte_rate, 1048576
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

/// The Java client on `cp` (4.4 or 3.9.1: the tools cache's, where install-deps compiled this
/// tree's WorkloadClient).
fn java(cp: &str, cmd: &str, bootstrap: &str, user: &str, rest: &[&str]) -> serde_json::Value {
    let mut a = vec![cmd.to_string()];
    a.extend(args(bootstrap, user));
    a.extend(rest.iter().map(|s| s.to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    parse_json_result("WorkloadClient", &run_java_client(cp, &a))
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

/// A gateway with one listener in front of a new Apache Kafka cluster, and what the tests read.
/// Fields drop in order: the gateway stops before its cluster.
struct Setup {
    gateway: Gateway,
    _broker: KafkaCluster,
    policy: std::path::PathBuf,
    audit: std::path::PathBuf,
    certs: Option<Certs>,
    /// Kept for the files above (removed when the test passes).
    _dir: TempDir,
}

/// `policy_text` enforced (super user `User:admin`), SCRAM users `users` with password
/// `<name>-secret`, `auth` added to `[authentication]`, `limits` as `[limits]`, an audit trail at
/// level admin; dev certificates for a TLS listener; PLAIN allowed on a plaintext one (the raw
/// logins use it, on loopback).
fn setup(
    tag: &str,
    listener: ListenerSpec,
    users: &[&str],
    auth: &str,
    policy_text: &str,
    limits: &str,
) -> Setup {
    setup_on(
        KafkaCluster::start(),
        tag,
        listener,
        (users, auth),
        policy_text,
        limits,
    )
}

/// [`setup`] in front of `broker`.
fn setup_on(
    broker: KafkaCluster,
    tag: &str,
    listener: ListenerSpec,
    (users, auth): (&[&str], &str),
    policy_text: &str,
    limits: &str,
) -> Setup {
    let dir = TempDir::new(tag);
    let certs = listener.tls.then(|| dev_certs(dir.path()));
    let users_file = dir.path().join("users.toml");
    for user in users {
        add_scram_user(
            &users_file,
            user,
            &format!("{user}-secret"),
            &["SCRAM-SHA-256"],
        );
    }
    let credentials = if users.is_empty() {
        String::new()
    } else {
        format!("credentials_file = {users_file:?}\n")
    };
    let model = dir.path().join("model.conf");
    std::fs::copy(repo_root().join("policies/model.conf"), &model).expect("copy the model");
    let policy = dir.path().join("acl.policy");
    std::fs::write(&policy, policy_text).expect("write policy");
    let audit = dir.path().join("audit");
    std::fs::create_dir_all(&audit).expect("audit dir");
    let extra = format!(
        "[authentication]\n{credentials}{auth}\n\n\
         [authorization]\nmodel = {model:?}\npolicy_files = [{policy:?}]\n\
         super_users = [\"User:admin\"]\n\n\
         [limits]\n{limits}\n\n\
         [audit]\ndir = {audit:?}\nlevel = \"admin\"\n"
    );
    let plain_over_plaintext = listener.sasl.contains("PLAIN") && !listener.tls;
    let (text, ports, admin) =
        gateway_config(&broker.upstream(), &[listener], certs.as_ref(), &extra);
    let text = if plain_over_plaintext {
        text.replacen(
            "\"PLAIN\"]\n",
            "\"PLAIN\"]\nallow_plain_over_plaintext = true\n",
            1,
        )
    } else {
        text
    };
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    Setup {
        gateway,
        _broker: broker,
        policy,
        audit,
        certs,
        _dir: dir,
    }
}

#[test]
fn producer_and_consumer_byte_rates_with_librdkafka_and_java() {
    let tools = tools();
    let Setup {
        gateway,
        policy,
        audit,
        ..
    } = &setup(
        "quotas",
        LISTENER,
        &["admin", "alice", "bob", "carol", "frank"],
        "timeout = \"5s\"",
        POLICY,
        "quota_window_num = 2",
    );
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

    // acks=0: no response carries the throttle; the gateway only stops reading, and the rate
    // that leaves the client is held by the socket buffers filling. Those let it run ahead by
    // what they hold (on loopback the kernel grows them to a few MB: 3.5 to 6.1 MB over four
    // runs, a quarter to 40% of the 15 s quota), as a Kafka broker's muted channel does: the
    // bound is twice the quota, far below the free rate (over 100 MB/s). Frank has alice's
    // quota: what his buffers still hold after the run drains at his quota, not into alice's
    // next run.
    let r = python(
        &tools,
        "produce-rate",
        &bootstrap,
        "frank",
        &[
            "--topic",
            "quota-frank",
            "--seconds",
            SECONDS,
            "--acks",
            "0",
        ],
    );
    eprintln!(
        "librdkafka producer, acks=0, frank: {:.0} B/s ({r})",
        rate(&r)
    );
    assert!(
        rate(&r) > 0.9 * QUOTA && rate(&r) < 2.0 * QUOTA,
        "acks=0 producer not held near its quota: {r}"
    );

    // Java 4.4, and 3.9.1 (a client older than the broker, as many are)
    for (client, cp) in [
        ("Java 4.4", &tools.java44_cp),
        ("Java 3.9.1", &tools.java_cp),
    ] {
        let (alice, bob) = side_by_side(|user, topic| {
            java(
                cp,
                "produce-rate",
                &bootstrap,
                user,
                &["--topic", topic, "--seconds", SECONDS],
            )
        });
        assert_near_quota(&format!("{client} producer, alice"), &alice, 0.10);
        eprintln!(
            "{client} producer, bob at the same time: {:.0} B/s",
            rate(&bob)
        );
        assert!(
            rate(&bob) > 3.0 * QUOTA,
            "bob unthrottled ({client}): {bob}"
        );
    }

    // A consumer byte rate: carol reads what bob wrote.
    let carol = python(
        &tools,
        "consume-rate",
        &bootstrap,
        "carol",
        &["--topic", "quota-bob", "--seconds", "10"],
    );
    assert_near_quota("librdkafka consumer, carol", &carol, 0.15);
    // Fetches of 1 MiB, as librdkafka's: each throttle then costs one round trip per quota's
    // worth, not four (with 256 KiB fetches the Java consumer measured 0.91 MB/s).
    let carol = java(
        &tools.java44_cp,
        "consume-rate",
        &bootstrap,
        "carol",
        &[
            "--topic",
            "quota-bob",
            "--seconds",
            "10",
            "--fetch-max-bytes",
            "1048576",
        ],
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
    let records = trail_records(audit);
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
        policy,
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

/// What one new connection met.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Attempt {
    /// Answered: ApiVersions, or the login's SaslAuthenticate (with error 0).
    Served,
    /// Closed unanswered after this long.
    Refused(Duration),
}

const RATE_LISTENER: ListenerSpec = ListenerSpec {
    name: "rates",
    tls: false,
    client_auth: "none",
    sasl: r#""SCRAM-SHA-256", "PLAIN""#,
};

/// A new connection from `src` that asks for ApiVersions (`login`: None) or logs in with PLAIN.
fn attempt(src: std::net::Ipv4Addr, to: std::net::SocketAddr, login: Option<&str>) -> Attempt {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, StrBytes};
    let mut c = connect_from(src, to).expect("connect");
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let start = std::time::Instant::now();
    let answered = |r: std::io::Result<bytes::Bytes>| match r {
        Ok(p) => Some(p),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            panic!("neither answered nor closed within 5 s")
        }
        Err(_) => None,
    };
    let Some(user) = login else {
        let (_, frame) = c.encode(ApiKey::ApiVersions, 3, &api_versions_request());
        if c.send_raw(&frame).is_err() {
            return Attempt::Refused(start.elapsed());
        }
        return match answered(c.read_frame()) {
            Some(_) => Attempt::Served,
            None => Attempt::Refused(start.elapsed()),
        };
    };
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    let (_, frame) = c.encode(ApiKey::SaslHandshake, 1, &hs);
    c.send_raw(&frame).expect("send handshake");
    let mut p = answered(c.read_frame()).expect("the handshake is answered");
    ResponseHeader::decode(&mut p, 0).expect("header");
    assert_eq!(
        SaslHandshakeResponse::decode(&mut p, 1)
            .expect("handshake")
            .error_code,
        0
    );
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = bytes::Bytes::from(format!("\0{user}\0{user}-secret"));
    let (_, frame) = c.encode(ApiKey::SaslAuthenticate, 2, &auth);
    let start = std::time::Instant::now();
    c.send_raw(&frame).expect("send authenticate");
    match answered(c.read_frame()) {
        Some(mut p) => {
            ResponseHeader::decode(&mut p, 1).expect("header");
            let r = SaslAuthenticateResponse::decode(&mut p, 2).expect("authenticate");
            assert_eq!(r.error_code, 0, "{user}'s login: {r:?}");
            Attempt::Served
        }
        None => Attempt::Refused(start.elapsed()),
    }
}

/// `threads` loops of [`attempt`] for `secs`: every outcome.
fn storm(
    threads: usize,
    secs: u64,
    src: std::net::Ipv4Addr,
    to: std::net::SocketAddr,
    login: Option<&str>,
) -> Vec<Attempt> {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    std::thread::scope(|s| {
        let loops: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let mut seen = Vec::new();
                    while std::time::Instant::now() < until {
                        seen.push(attempt(src, to, login));
                    }
                    seen
                })
            })
            .collect();
        loops
            .into_iter()
            .flat_map(|t| t.join().expect("storm thread"))
            .collect()
    })
}

/// Served attempts per second, and the longest a refused one was held.
fn served_rate(what: &str, seen: &[Attempt], secs: u64) -> (f64, Duration) {
    let served = seen.iter().filter(|a| **a == Attempt::Served).count();
    let held = seen
        .iter()
        .filter_map(|a| match a {
            Attempt::Refused(d) => Some(*d),
            Attempt::Served => None,
        })
        .max()
        .unwrap_or_default();
    let rate = served as f64 / secs as f64;
    eprintln!(
        "{what}: {served} of {} served in {secs} s ({rate:.1}/s), refused ones held up to {held:?}",
        seen.len()
    );
    (rate, held)
}

/// Checks that `served` attempts per second over [`STORM_SECS`] is what Kafka's windowed rate
/// admits under constant pressure at `bound` per second. The counts are small, and where the
/// window's samples fall decides a few: 2,000 simulated runs of Kafka's `Rate` (2 samples of 1 s,
/// refused ones taken back, attempts every 1-40 ms) admitted 13-16 in 8 s at 2/s, 21-25 at 3/s,
/// 37-42 at 5/s. Allowed: that range, one more below for the pressure's gaps.
fn assert_served_at(what: &str, served: f64, bound: f64) {
    let count = (served * STORM_SECS as f64).round();
    let quota = bound * STORM_SECS as f64;
    assert!(
        (quota - 4.0..=quota + 2.0).contains(&count),
        "{what}: {count} served in {STORM_SECS} s; Kafka's rate at {bound}/s admits about {}-{}",
        quota - 3.0,
        quota + 2.0
    );
}

const STORM_SECS: u64 = 8;

/// Kafka's `connection_creation_rate` per address (KIP-612) and the gateway's `login_rate` per
/// principal: connections over the rate are held for the throttle time and closed unanswered,
/// and not counted, so the served rate is the quota's; other addresses and principals are
/// unaffected; real clients work under both. Then a `request_percentage` quota throttles a
/// producer that keeps the gateway busy, and not one that has none.
#[test]
fn connection_login_and_request_time_quotas() {
    let tools = tools();
    let Setup { gateway, audit, .. } = &setup(
        "quota-rates",
        RATE_LISTENER,
        &["admin", "alice", "bob", "dave", "erin"],
        "timeout = \"5s\"\nfailure_delay = \"0s\"",
        "p, User:*, Topic, *, All, *, allow\n\
         p, User:*, Group, *, All, *, allow\n\
         p, User:*, Cluster, kafka-cluster, Create, *, allow\n\
         q, 127.0.0.2, -, connection_creation_rate, 5\n\
         q, User:dave, -, login_rate, 3\n\
         q, 127.0.0.6, -, login_rate, 2\n\
         q, User:erin, -, request_percentage, 0.1\n",
        "quota_window_num = 2",
    );
    let addr = gateway.addr(RATE_LISTENER.name);
    let bootstrap = addr.to_string();
    let ip = |s: &str| s.parse::<std::net::Ipv4Addr>().expect("address");

    // Connection rate: 127.0.0.2 storms with 16 loops (a refused one is held, so many keep the pressure on); 127.0.0.3 connects beside it, unlimited,
    // and so do a librdkafka and a Java client from 127.0.0.1.
    let (stormed, other, rdkafka, java44) = std::thread::scope(|s| {
        let stormed = s.spawn(|| storm(16, STORM_SECS, ip("127.0.0.2"), addr, None));
        let other = s.spawn(|| storm(1, STORM_SECS, ip("127.0.0.3"), addr, None));
        let rdkafka = s.spawn(|| {
            python(
                &tools,
                "roundtrip",
                &bootstrap,
                "alice",
                &["--topic", "rates-rd", "--count", "50"],
            )
        });
        let java44 = s.spawn(|| {
            java(
                &tools.java44_cp,
                "roundtrip",
                &bootstrap,
                "bob",
                &["--topic", "rates-java", "--count", "50"],
            )
        });
        (
            stormed.join().expect("storm"),
            other.join().expect("other address"),
            rdkafka.join().expect("librdkafka"),
            java44.join().expect("java"),
        )
    });
    let (served, held) = served_rate("127.0.0.2, quota 5/s", &stormed, STORM_SECS);
    assert_served_at("connections from 127.0.0.2", served, 5.0);
    assert!(
        held > Duration::from_millis(50) && held < Duration::from_millis(1500),
        "a refused connection is held for its throttle, at most one window: {held:?}"
    );
    let (other_rate, _) = served_rate("127.0.0.3, no quota", &other, STORM_SECS);
    assert!(
        other.iter().all(|a| *a == Attempt::Served) && other_rate > 20.0,
        "127.0.0.3 has no quota: {other_rate:.1}/s"
    );
    assert_roundtrip("librdkafka beside the storm", &rdkafka, 50);
    assert_roundtrip("Java 4.4 beside the storm", &java44, 50);

    // Login rate: dave's logins (PLAIN, 12 loops) are held to 3/s; alice logs in beside him from
    // the same address, unlimited; at the same time 127.0.0.6's logins (alice's, 8 loops) are
    // held to its address's 2/s.
    let (dave, alice, from6) = std::thread::scope(|s| {
        let dave = s.spawn(|| storm(12, STORM_SECS, ip("127.0.0.4"), addr, Some("dave")));
        let alice = s.spawn(|| storm(1, STORM_SECS, ip("127.0.0.4"), addr, Some("alice")));
        let from6 = s.spawn(|| storm(8, STORM_SECS, ip("127.0.0.6"), addr, Some("alice")));
        (
            dave.join().expect("dave"),
            alice.join().expect("alice"),
            from6.join().expect("127.0.0.6"),
        )
    });
    let (served, _) = served_rate("logins from 127.0.0.6, quota 2/s", &from6, STORM_SECS);
    assert_served_at("logins from 127.0.0.6", served, 2.0);
    let (served, held) = served_rate("dave's logins, quota 3/s", &dave, STORM_SECS);
    assert_served_at("dave's logins", served, 3.0);
    assert!(held < Duration::from_millis(1500), "{held:?}");
    let (alice_rate, _) = served_rate("alice's logins, no quota", &alice, STORM_SECS);
    assert!(
        alice.iter().all(|a| *a == Attempt::Served) && alice_rate > 10.0,
        "alice has no login quota: {alice_rate:.1}/s"
    );
    // Real clients as dave, once his rate has recovered: a few logins each, within the quota.
    std::thread::sleep(Duration::from_secs(3));
    let r = python(
        &tools,
        "roundtrip",
        &bootstrap,
        "dave",
        &["--topic", "rates-dave", "--count", "20"],
    );
    assert_roundtrip("librdkafka as dave", &r, 20);
    let r = java(
        &tools.java44_cp,
        "roundtrip",
        &bootstrap,
        "dave",
        &["--topic", "rates-dave", "--count", "20"],
    );
    assert_roundtrip("Java 4.4 as dave", &r, 20);

    // Request time: erin may use 0.1% of a gateway thread; a producer at full speed uses more.
    let (erin, bob) = std::thread::scope(|s| {
        let erin = s.spawn(|| {
            python(
                &tools,
                "produce-rate",
                &bootstrap,
                "erin",
                &["--topic", "rates-erin", "--seconds", "6"],
            )
        });
        let bob = s.spawn(|| {
            python(
                &tools,
                "produce-rate",
                &bootstrap,
                "bob",
                &["--topic", "rates-bob", "--seconds", "6"],
            )
        });
        (erin.join().expect("erin"), bob.join().expect("bob"))
    });
    eprintln!(
        "request_percentage: erin {:.0} B/s, bob {:.0} B/s",
        rate(&erin),
        rate(&bob)
    );
    assert!(
        rate(&erin) * 3.0 < rate(&bob),
        "erin's request time quota slows her producer: erin {erin}, bob {bob}"
    );

    // Metrics and audit records.
    let metrics = gateway.metrics();
    for reason in ["connection_creation_rate", "login_rate"] {
        assert!(
            metrics.lines().any(
                |l| l.starts_with("kafka_gateway_connections_rejected_total")
                    && l.contains(&format!("reason=\"{reason}\""))
            ),
            "no rejection metric for {reason}:\n{metrics}"
        );
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("quota_throttled_responses_total")
                && l.contains("request_percentage")
                && l.contains("User:erin")),
        "no request_percentage throttle for erin:\n{metrics}"
    );
    assert!(
        !metrics
            .lines()
            .any(|l| l.contains("quota_") && l.contains("User:bob")),
        "bob has no quota:\n{metrics}"
    );
    let records = trail_records(audit);
    let throttle = |quota: &str| -> Vec<&serde_json::Value> {
        records
            .iter()
            .filter(|r| r["event"] == "quota_throttle" && r["quota"] == quota)
            .collect()
    };
    let conn = throttle("connection_creation_rate");
    assert!(!conn.is_empty(), "no connection rate record");
    assert!(
        conn.iter().all(|r| r["principal"].is_null()
            && r["conn"]["client"]
                .as_str()
                .unwrap_or("")
                .starts_with("127.0.0.2:")
            && r["rule"].as_str().unwrap_or("").ends_with("acl.policy:4")),
        "{conn:#?}"
    );
    let logins = throttle("login_rate");
    let from = |r: &serde_json::Value, ip: &str| {
        r["conn"]["client"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("{ip}:"))
    };
    assert!(
        logins.iter().any(|r| r["principal"] == "User:dave")
            && logins.iter().any(|r| from(r, "127.0.0.6"))
            && logins
                .iter()
                .all(|r| r["principal"] == "User:dave" || from(r, "127.0.0.6")),
        "{logins:#?}"
    );
    assert!(!throttle("request_percentage").is_empty());
}

/// On a listener without SASL the certificate's identity is the connection's login: a second
/// connection of alice's within her login rate completes its TLS handshake (the identity comes
/// from it), then is held and closed without an answer. (Other principals being unaffected is
/// checked with SASL above; this is the certificate path.)
#[test]
fn a_client_certificate_is_a_login_under_the_login_rate() {
    const MTLS: ListenerSpec = ListenerSpec {
        name: "mtls",
        tls: true,
        client_auth: "required",
        sasl: "",
    };
    // One login per 10 s (a young sensor counts 10 windows of Kafka's default 11 samples).
    let Setup {
        gateway,
        audit,
        certs,
        ..
    } = &setup(
        "quota-mtls",
        MTLS,
        &[],
        "principal_mapping_rules = \"RULE:^CN=([^,]+),.*$/$1/L,DEFAULT\"",
        "p, User:*, Topic, *, All, *, allow\nq, User:alice, -, login_rate, 0.1\n",
        "",
    );
    let certs = certs.as_ref().expect("a TLS listener's certificates");
    let addr = gateway.addr(MTLS.name);
    let tls = kafka_gateway::tls::client_config(
        Some(&certs.ca()),
        Some((&certs.client(), &certs.client_key())),
    )
    .expect("client TLS");
    // A TLS connection with alice's certificate that asks for ApiVersions: answered or closed.
    let ask = || -> Result<(), String> {
        use std::io::{Read, Write};
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut conn = rustls::ClientConnection::new(tls.clone(), name).expect("client");
        let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut s = rustls::Stream::new(&mut conn, &mut tcp);
        // ApiVersions v0, correlation id 1, client id "test".
        s.write_all(&[
            0, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 1, 0, 4, b't', b'e', b's', b't',
        ])
        .map_err(|e| e.to_string())?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).map_err(|e| e.to_string())
    };
    ask().expect("alice's first connection is served");
    let started = std::time::Instant::now();
    let refused = ask();
    assert!(
        refused.is_err(),
        "a second login within the rate was served"
    );
    assert!(
        started.elapsed() > Duration::from_millis(300),
        "closed at once rather than held for the throttle: {refused:?}"
    );
    gateway.wait_for_metric("kafka_gateway_connections_rejected_total{reason=\"login_rate\"}");
    eventually("the login rate's record", Duration::from_secs(5), || {
        trail_records(audit).iter().any(|r| {
            r["event"] == "quota_throttle"
                && r["quota"] == "login_rate"
                && r["principal"] == "User:alice"
        })
    });
}

/// A Produce v9 (acks=-1) of one `bytes`-byte record to partition 0 of `topic`, as a frame.
fn produce_frame(c: &mut RawClient, topic: &str, bytes: usize) -> bytes::Bytes {
    use common::kafka::{produce_request, record_batch};
    let value = "q".repeat(bytes);
    let req = produce_request(-1, None, &[(topic, 0, record_batch(&[&value], None))]);
    c.encode(kafka_protocol::messages::ApiKey::Produce, 9, &req)
        .1
}

/// The next Produce v9 response's throttle, after checking it accepted the records.
fn produce_throttle(c: &mut RawClient) -> i32 {
    use kafka_protocol::messages::{ApiKey, ProduceResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;
    let mut p = c.read_frame().expect("a Produce response");
    ResponseHeader::decode(&mut p, ApiKey::Produce.response_header_version(9)).expect("header");
    let r = ProduceResponse::decode(&mut p, 9).expect("Produce response");
    assert_eq!(
        common::kafka::produce_error(&r, "thr", 0),
        0,
        "the records are accepted: {r:?}"
    );
    r.throttle_time_ms
}

/// The broker's own quota on the gateway's identity (`User:ANONYMOUS` on PLAINTEXT) and the
/// gateway's on a client: the response carries the larger throttle, as the client must wait for
/// both (KIP-219). Alice's gateway quota (64 KB/s) throttles a 256 KB Produce for about 3 s, the
/// broker's 100 KB/s for about 1.5 s: she is told the gateway's. Bob's gateway quota (800 KB/s)
/// throttles his second 512 KB Produce by at most ~0.3 s, while the broker, which muted his
/// upstream connection after the first, throttles it for seconds: he is told the broker's.
#[test]
fn the_larger_of_the_brokers_and_the_gateways_throttle_is_sent() {
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey};
    let broker = KafkaCluster::start_with(ClusterOptions {
        // One window of history, as the gateway's below: throttles start at once.
        extra: vec!["quota.window.num=2".into()],
        ..ClusterOptions::default()
    });
    let mut direct = RawClient::connect(broker.socket(KafkaListener::Plaintext));
    common::kafka::create_topics_ok(&mut direct, &["thr"], 1);
    common::kafka::wait_for_leaders(&mut direct, &["thr"]);
    let mut req = AlterClientQuotasRequest::default();
    let mut entity = EntityData::default();
    entity.entity_type = common::kafka::sb("user");
    entity.entity_name = Some(common::kafka::sb("ANONYMOUS"));
    let mut op = OpData::default();
    op.key = common::kafka::sb("producer_byte_rate");
    op.value = 102_400.0;
    let mut entry = EntryData::default();
    entry.entity = vec![entity];
    entry.ops = vec![op];
    req.entries = vec![entry];
    let resp: AlterClientQuotasResponse = direct.request(ApiKey::AlterClientQuotas, 1, &req);
    assert!(
        resp.entries.iter().all(|e| e.error_code == 0),
        "broker quota: {resp:?}"
    );
    let s = setup_on(
        broker,
        "quota-broker",
        LISTENER,
        (&["admin", "alice", "bob"], "timeout = \"5s\""),
        "p, User:*, Topic, *, All, *, allow\n\
         p, User:*, Cluster, kafka-cluster, IdempotentWrite, *, allow\n\
         q, User:alice, -, producer_byte_rate, 65536\n\
         q, User:bob, -, producer_byte_rate, 819200\n",
        "quota_window_num = 2",
    );
    let addr = s.gateway.addr(LISTENER.name);
    // The quota reaches the broker through its metadata log: wait until the broker describes it.
    eventually("the broker's quota", Duration::from_secs(10), || {
        use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
        use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
        let mut c = ComponentData::default();
        c.entity_type = common::kafka::sb("user");
        c.match_type = 0; // exact
        c._match = Some(common::kafka::sb("ANONYMOUS"));
        let mut req = DescribeClientQuotasRequest::default();
        req.components = vec![c];
        let r: DescribeClientQuotasResponse = direct.request(ApiKey::DescribeClientQuotas, 1, &req);
        r.entries.iter().flatten().any(|e| {
            e.values
                .iter()
                .any(|v| v.key.as_str() == "producer_byte_rate" && v.value == 102_400.0)
        })
    });

    let mut alice = RawClient::connect(addr);
    let l = common::sasl::login(&mut alice, "SCRAM-SHA-256", "alice", "alice-secret");
    assert_eq!(l.error_code(), 0, "alice's login");
    let frame = produce_frame(&mut alice, "thr", 256 * 1024);
    alice.send_raw(&frame).expect("send");
    let alice_throttle = produce_throttle(&mut alice);
    eprintln!("alice (gateway 64 KB/s, broker 100 KB/s): throttle_time_ms {alice_throttle}");
    assert!(
        alice_throttle >= 2500,
        "the gateway's throttle (about 3,000 ms) is larger than the broker's (at most ~1,600): got {alice_throttle}"
    );

    let mut bob = RawClient::connect(addr);
    let l = common::sasl::login(&mut bob, "SCRAM-SHA-256", "bob", "bob-secret");
    assert_eq!(l.error_code(), 0, "bob's login");
    for _ in 0..2 {
        let frame = produce_frame(&mut bob, "thr", 512 * 1024);
        bob.send_raw(&frame).expect("send");
    }
    let first = produce_throttle(&mut bob);
    let second = produce_throttle(&mut bob);
    eprintln!("bob (gateway 800 KB/s, broker 100 KB/s): throttle_time_ms {first}, {second}");
    assert!(
        first >= 2000 && second >= 2000,
        "the broker's throttles (seconds) are larger than the gateway's (at most ~300 ms): {first}, {second}"
    );
    // The gateway did throttle bob's second request itself (smaller, so not what he was told).
    let metrics = s.gateway.metrics();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("quota_throttled_responses_total") && l.contains("User:bob")),
        "the gateway throttled bob too:\n{metrics}"
    );
}
