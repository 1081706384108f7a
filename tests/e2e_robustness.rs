//! Robustness end to end: hostile clients, upstream faults, reload faults and audit faults against
//! Apache Kafka 4.4, each case a test that prints what it observed (docs/robustness.md collects the
//! figures). Tests that kill the broker run it as its own JVM (a controller and one broker).

mod common;

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::apache::*;
use common::fault::{FaultProxy, Mode};
use common::kafka::*;
use common::sasl::*;
use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;

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
    sasl: r#""SCRAM-SHA-256", "SCRAM-SHA-512""#,
};
const TLS: ListenerSpec = ListenerSpec {
    name: "tls",
    tls: true,
    client_auth: "none",
    sasl: "",
};

/// The rig's cluster: a fresh single-node cluster in the test binary's JVM, or, behind a fault
/// proxy, a controller and one broker in JVMs of their own so that the broker can be killed.
enum RigBroker {
    Hosted(KafkaCluster),
    Process(Box<KafkaMultiCluster>),
}

impl RigBroker {
    fn addr(&self) -> String {
        match self {
            RigBroker::Hosted(c) => c.addr(),
            RigBroker::Process(c) => c.bootstrap(),
        }
    }

    /// kill -9 of the broker.
    fn kill(&mut self) {
        match self {
            RigBroker::Hosted(_) => panic!("a hosted cluster cannot be killed; use a proxy rig"),
            RigBroker::Process(c) => c.kill_broker(1),
        }
    }

    /// The broker again, with its data.
    fn restart(&mut self) {
        match self {
            RigBroker::Hosted(_) => panic!("a hosted cluster cannot be restarted"),
            RigBroker::Process(c) => c.restart_broker(1),
        }
    }
}

/// A broker (optionally behind a fault proxy), users admin/alice/bob (`<name>-secret`), and a gateway.
struct Rig {
    dir: TempDir,
    broker: RigBroker,
    proxy: Option<Arc<FaultProxy>>,
    gateway: Gateway,
    tools: Tools,
    /// The config the gateway runs with, to restart it as it was.
    config: (String, Vec<u16>, u16),
    policy: PathBuf,
    model: PathBuf,
    audit: PathBuf,
    certs: Certs,
}

#[derive(Default)]
struct Opts<'a> {
    /// Put a fault proxy between the gateway and the broker (the broker advertises the proxy).
    proxy: bool,
    /// Enforce this policy (casbin model + file, admin a super user) instead of allow_all.
    policy: Option<&'a str>,
    /// Audit trail settings (`[audit]` body without `dir`); `None`: no trail.
    audit: Option<&'a str>,
    /// Where the trail goes (default: `<dir>/audit`).
    audit_dir: Option<PathBuf>,
    /// Appended to `[authentication]`.
    auth: &'a str,
    /// Appended to the config.
    extra: &'a str,
    /// Environment of the gateway process.
    env: &'a [(&'a str, &'a str)],
}

fn rig(listeners: &[ListenerSpec], o: Opts) -> Rig {
    let tools = tools();
    let dir = TempDir::new("robust");
    let certs = dev_certs(&dir.path().join("certs"));
    let (broker, proxy, upstream) = if o.proxy {
        let front = free_port();
        let broker =
            KafkaMultiCluster::start(1, ClusterOptions::default().advertise_plaintext(front));
        let port = broker.brokers[0].socket(KafkaListener::Plaintext);
        let proxy = FaultProxy::start(front, port);
        let broker = RigBroker::Process(Box::new(broker));
        (broker, Some(Arc::new(proxy)), format!("127.0.0.1:{front}"))
    } else {
        let broker = RigBroker::Hosted(KafkaCluster::start());
        let addr = broker.addr();
        (broker, None, addr)
    };
    let users = dir.path().join("users.toml");
    for u in ["admin", "alice", "bob"] {
        add_scram_user(
            &users,
            u,
            &format!("{u}-secret"),
            &["SCRAM-SHA-256", "SCRAM-SHA-512"],
        );
    }
    let model = dir.path().join("model.conf");
    std::fs::copy(repo_root().join("policies/model.conf"), &model).expect("copy model");
    let policy = dir.path().join("acl.policy");
    let audit = o.audit_dir.unwrap_or_else(|| dir.path().join("audit"));
    let mut extra = format!(
        "[authentication]\ncredentials_file = {users:?}\ntimeout = \"3s\"\nfailure_delay = \"100ms\"\n{}\n",
        o.auth
    );
    if let Some(p) = o.policy {
        std::fs::write(&policy, p).expect("write policy");
        extra.push_str(&format!(
            "[authorization]\nmodel = {model:?}\npolicy_files = [{policy:?}]\nsuper_users = [\"User:admin\"]\n\n"
        ));
    }
    if let Some(a) = o.audit {
        extra.push_str(&format!("[audit]\ndir = {audit:?}\n{a}\n\n"));
    }
    extra.push_str(o.extra);
    let config = gateway_config(
        &Upstream::new(upstream, 1, 1),
        listeners,
        Some(&certs),
        &extra,
    );
    let gateway = Gateway::start_with_env(dir.path(), &config.0, config.1.clone(), config.2, o.env);
    Rig {
        dir,
        broker,
        proxy,
        gateway,
        tools,
        config,
        policy,
        model,
        audit,
        certs,
    }
}

impl Rig {
    fn raw(&self, listener: &str) -> RawClient {
        RawClient::connect(self.gateway.addr(listener))
    }

    fn user(&self, name: &str) -> RawClient {
        let mut c = self.raw("sasl");
        let l = login(&mut c, "SCRAM-SHA-256", name, &format!("{name}-secret"));
        assert_eq!(l.error_code(), 0, "login {name}: {}", l.message());
        c
    }

    fn proxy(&self) -> Arc<FaultProxy> {
        self.proxy.clone().expect("rig without a proxy")
    }

    /// Starts the gateway again with the same config (same ports), after the old one died.
    fn restart_gateway(&mut self) {
        let (text, ports, admin) = self.config.clone();
        self.gateway = Gateway::start(self.dir.path(), &text, ports, admin);
    }

    fn audit_records(&self) -> Vec<serde_json::Value> {
        trail_records(&self.audit)
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.gateway.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn audit_verify(dir: &Path) -> CliOutput {
    gateway_cli(&["audit", "verify", dir.to_str().expect("path")], None)
}

/// A connection from a chosen loopback source address (all of 127/8 is local on Linux).
fn api_versions_ok(c: &mut RawClient) -> bool {
    let (corr, frame) = c.encode(ApiKey::ApiVersions, 3, &api_versions_request());
    if c.send_raw(&frame).is_err() {
        return false;
    }
    match c.read_frame() {
        Ok(mut p) => {
            let h = ResponseHeader::decode(&mut p, 0).expect("header");
            h.correlation_id == corr
                && ApiVersionsResponse::decode(&mut p, 3).is_ok_and(|r| r.error_code == 0)
        }
        Err(_) => false,
    }
}

/// A tiny deterministic generator, so that a failing case can be replayed from its seed.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

// ---------------------------------------------------------------------------------------------------------
// Hostile clients
// ---------------------------------------------------------------------------------------------------------

#[test]
fn hostile_a_thousand_connections_from_one_address_hit_the_cap_while_other_addresses_connect() {
    let s = rig(
        &[PLAIN],
        Opts {
            extra: "[limits]\nmax_connections_per_ip = 1000\n",
            ..Opts::default()
        },
    );
    let addr = s.gateway.addr("plain");
    let fds_before = s.open_fds();
    let mut held = Vec::new();
    for i in 0..1000 {
        let mut c = connect_from(Ipv4Addr::new(127, 0, 0, 1), addr)
            .unwrap_or_else(|e| panic!("connection {i}: {e} (is `ulimit -n` above 2100?)"));
        assert!(api_versions_ok(&mut c), "connection {i} was not served");
        held.push(c);
    }
    let mut extra = connect_from(Ipv4Addr::new(127, 0, 0, 1), addr).expect("connect");
    assert!(
        extra.is_closed_within(Duration::from_secs(5)),
        "connection 1001 from one address was kept"
    );
    // Other addresses are not affected by 127.0.0.1's cap.
    for last in 2..7 {
        let mut c = connect_from(Ipv4Addr::new(127, 0, 0, last), addr).expect("connect");
        assert!(
            api_versions_ok(&mut c),
            "127.0.0.{last} refused while 127.0.0.1 is capped"
        );
    }
    let rejected = metric_sum(
        &s.gateway.metrics(),
        "kafka_gateway_connections_rejected_total{reason=\"per_ip_cap\"}",
    );
    assert!(rejected >= 1, "per_ip_cap not counted");
    let fds_full = s.open_fds();
    drop(held);
    drop(extra);
    // Every socket is released once the clients are gone.
    eventually("file descriptors released", Duration::from_secs(10), || {
        s.open_fds() <= fds_before + 5
    });
    let mut again = connect_from(Ipv4Addr::new(127, 0, 0, 1), addr).expect("connect");
    assert!(api_versions_ok(&mut again), "served again after the flood");
    println!(
        "RESULT per-ip cap: 1000 served, #1001 closed, 5 other addresses served, fds {fds_before} -> {fds_full} -> {}",
        s.open_fds()
    );
}

#[test]
fn hostile_one_byte_per_second_before_authentication_is_cut_off_at_the_deadline() {
    // The authentication deadline is 3 s (rig): a frame dripped at 1 byte/s never completes.
    let s = rig(&[SASL], Opts::default());
    let mut c = s.raw("sasl");
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("SCRAM-SHA-256");
    let (_, frame) = c.encode(ApiKey::SaslHandshake, 1, &hs);
    let mut bystander = s.user("alice");
    let start = Instant::now();
    let mut sent = 0;
    for b in frame.iter() {
        if c.send_raw(&[*b]).is_err() {
            break;
        }
        sent += 1;
        if c.is_closed_within(Duration::from_secs(1)) {
            break;
        }
    }
    let cut_after = start.elapsed();
    assert!(
        c.is_closed_within(Duration::from_secs(1)),
        "a 1 byte/s client is still connected after {cut_after:?}"
    );
    assert!(
        cut_after < Duration::from_millis(4500),
        "cut off only after {cut_after:?}"
    );
    assert!(api_versions_ok(&mut bystander), "the bystander was hurt");
    assert!(s.gateway.log_text().contains("not authenticated within 3s"));
    println!("RESULT 1 byte/s before authentication: cut off after {cut_after:?} ({sent} bytes sent; deadline 3 s)");
}

#[test]
fn hostile_a_login_storm_locks_the_name_and_address_out_without_starving_others() {
    let s = rig(
        &[SASL],
        Opts {
            auth: "lockout_max_failures = 5\nlockout_max_failures_per_ip = 40\n\
                   lockout_window = \"1m\"\nlockout_duration = \"1m\"\n",
            ..Opts::default()
        },
    );
    let addr = s.gateway.addr("sasl");
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let fastest_failure_us = Arc::new(AtomicU64::new(u64::MAX));
    let storm: Vec<_> = (0..6)
        .map(|_| {
            let (stop, attempts, fastest) =
                (stop.clone(), attempts.clone(), fastest_failure_us.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok(mut c) = connect_from(Ipv4Addr::new(127, 0, 0, 2), addr) else {
                        continue;
                    };
                    let t = Instant::now();
                    let l = login(&mut c, "SCRAM-SHA-256", "bob", "guess");
                    assert_eq!(l.error_code(), 58, "a wrong password was accepted");
                    fastest.fetch_min(t.elapsed().as_micros() as u64, Ordering::SeqCst);
                    attempts.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // A well-behaved client from another address logs in and works throughout the storm.
    let mut latencies = Vec::new();
    let storm_start = Instant::now();
    while storm_start.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        let mut c = s.user("alice");
        assert!(api_versions_ok(&mut c), "alice not served during the storm");
        latencies.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    for t in storm {
        t.join().expect("storm thread");
    }
    // Wrong passwords during the lockout are counted as lockout failures, not as bad credentials.
    let locked_out: u64 = s
        .gateway
        .metrics()
        .lines()
        .filter(|l| l.contains("authentications_total") && l.contains("reason=\"locked_out\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(
        locked_out > 0,
        "no failure recorded as locked_out during the storm"
    );
    latencies.sort();
    let (p50, max) = (
        percentile(&latencies, 0.5),
        *latencies.last().expect("some"),
    );
    assert!(
        max < Duration::from_secs(3),
        "a well-behaved login took {max:?} during the storm"
    );
    // Every failure is answered after the failure delay (100 ms), so guessing stays slow.
    let fastest = Duration::from_micros(fastest_failure_us.load(Ordering::SeqCst));
    assert!(
        fastest >= Duration::from_millis(90),
        "a failure was answered after {fastest:?}"
    );
    // The attacked name is locked (even with its password), and so is the attacking address.
    let mut c = s.raw("sasl");
    assert_eq!(
        login(&mut c, "SCRAM-SHA-256", "bob", "bob-secret").error_code(),
        58,
        "bob not locked out"
    );
    let mut c = connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).expect("connect");
    assert_eq!(
        login(&mut c, "SCRAM-SHA-256", "alice", "alice-secret").error_code(),
        58,
        "the storming address not locked out"
    );
    assert!(s.gateway.metrics().contains("reason=\"locked_out\""));
    println!(
        "RESULT login storm: {} failed logins from 6 threads in 6 s (fastest failure {fastest:?}); \
         alice {} logins p50 {p50:?} max {max:?}; bob and 127.0.0.2 locked out",
        attempts.load(Ordering::SeqCst),
        latencies.len()
    );
}

#[test]
fn hostile_random_bytes_before_and_after_the_handshake_close_only_that_connection() {
    let s = rig(&[PLAIN, SASL, TLS], Opts::default());
    let mut bystander = s.user("alice");
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let closed_within = Duration::from_secs(5);
    for round in 0..30 {
        // Garbage instead of a TLS ClientHello.
        let mut c = s.raw("tls");
        let n = 1 + (rng.next() % 2000) as usize;
        let _ = c.send_raw(&rng.bytes(n));
        assert!(
            c.is_closed_within(closed_within),
            "tls round {round}: kept open"
        );
        // A well-framed random payload as the first request, with and without SASL.
        for listener in ["plain", "sasl"] {
            let mut c = s.raw(listener);
            let n = 8 + (rng.next() % 4096) as usize;
            let mut frame = (n as i32).to_be_bytes().to_vec();
            frame.extend(rng.bytes(n));
            let _ = c.send_raw(&frame);
            assert!(
                c.is_closed_within(closed_within),
                "{listener} round {round}: kept open"
            );
        }
        // Random bytes (length prefix included) after a successful login.
        let mut c = s.user("alice");
        let n = 8 + (rng.next() % 4096) as usize;
        let mut junk = rng.bytes(n);
        // A random length may ask for more than was sent: the half-close ends the wait.
        junk[0] &= 0x7F;
        let _ = c.send_raw(&junk);
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        assert!(
            c.is_closed_within(closed_within),
            "post-auth round {round}: kept open"
        );
    }
    // After a completed TLS handshake: a random (well-framed) request inside TLS records, and raw
    // random bytes that break the record layer itself.
    let tls = kafka_gateway::tls::client_config(Some(&s.certs.ca()), None).expect("tls config");
    for round in 0..10 {
        for inside_records in [true, false] {
            let sock = TcpStream::connect(s.gateway.addr("tls")).expect("connect");
            sock.set_read_timeout(Some(closed_within)).expect("timeout");
            let mut raw = sock.try_clone().expect("clone");
            let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
            let conn = rustls::ClientConnection::new(tls.clone(), name).expect("client");
            let mut stream = rustls::StreamOwned::new(conn, sock);
            while stream.conn.is_handshaking() {
                stream
                    .conn
                    .complete_io(&mut stream.sock)
                    .expect("TLS handshake");
            }
            let n = 8 + (rng.next() % 4096) as usize;
            let mut frame = (n as i32).to_be_bytes().to_vec();
            frame.extend(rng.bytes(n));
            if inside_records {
                let _ = std::io::Write::write_all(&mut stream, &frame);
                let _ = std::io::Write::flush(&mut stream);
            } else {
                let _ = std::io::Write::write_all(&mut raw, &frame);
            }
            let mut buf = [0u8; 4096];
            let closed = loop {
                match std::io::Read::read(&mut stream, &mut buf) {
                    Ok(0) => break true,
                    Ok(_) => continue,
                    // The read timeout: still open.
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break false
                    }
                    Err(_) => break true, // reset, or a TLS alert from the gateway
                }
            };
            assert!(
                closed,
                "TLS round {round} (inside records: {inside_records}): kept open"
            );
        }
    }
    // Everyone else still works: the connection open all along and new ones.
    assert!(api_versions_ok(&mut bystander), "the bystander was hurt");
    for listener in ["plain", "sasl"] {
        assert!(api_versions_ok(&mut s.raw(listener)), "{listener} refused");
    }
    println!(
        "RESULT random bytes: 140 hostile connections closed (before the TLS handshake, inside and under TLS records after it, plain, SASL pre-auth, post-auth); bystander and new clients served"
    );
}

#[test]
fn hostile_requests_pipelined_before_authentication_completes_are_refused() {
    let s = rig(&[SASL], Opts::default());
    let connects = || {
        metric_sum(
            &s.gateway.metrics(),
            "kafka_gateway_upstream_connects_total",
        )
    };
    let before = connects();
    // 1. Handshake, the first SCRAM message and two real requests in one write.
    let mut c = s.raw("sasl");
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("SCRAM-SHA-256");
    let (hs_corr, f1) = c.encode(ApiKey::SaslHandshake, 1, &hs);
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = Bytes::from_static(b"n,,n=alice,r=pipelinednonce0123456789");
    let (auth_corr, f2) = c.encode(ApiKey::SaslAuthenticate, 2, &auth);
    let (md_corr, f3) = c.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    let (_, f4) = c.encode(
        ApiKey::Produce,
        9,
        &produce_request(-1, None, &[("pipelined", 0, record_batch(&["x"], None))]),
    );
    let mut batch = BytesMut::new();
    for f in [f1, f2, f3, f4] {
        batch.extend_from_slice(&f);
    }
    c.send_raw(&batch).expect("send");
    let mut answered = Vec::new();
    let mut last = Bytes::new();
    while let Ok(mut p) = c.read_frame() {
        let h = ResponseHeader::decode(&mut p, 0).expect("header");
        answered.push(h.correlation_id);
        last = p;
    }
    // The Metadata request in the middle of the exchange gets Kafka's answer, its error response
    // (ILLEGAL_SASL_STATE, nothing in it), and the connection is closed: the Produce after it is
    // never read.
    assert_eq!(
        answered,
        vec![hs_corr, auth_corr, md_corr],
        "only the SASL exchange and the refusal may be answered before authentication completes"
    );
    let mut body = last.slice(1..); // the v12 response header's empty tag buffer
    let refusal = MetadataResponse::decode(&mut body, 12).expect("metadata error response");
    assert!(
        refusal.brokers.is_empty() && refusal.topics.is_empty(),
        "the refusal carried cluster data: {refusal:?}"
    );
    // 2. Requests before any handshake.
    let mut c = s.raw("sasl");
    let (_, f1) = c.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    let (_, f2) = c.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    let mut batch = f1.to_vec();
    batch.extend_from_slice(&f2);
    c.send_raw(&batch).expect("send");
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "Metadata before authentication was not refused"
    );
    assert_eq!(connects(), before, "a pre-auth request reached the broker");
    println!("RESULT pipelined pre-auth: SASL frames answered, the rest refused by closing; 0 upstream connections");
}

const CORR_FETCH: i32 = 1000;
#[test]
fn hostile_a_reused_correlation_id_does_not_confuse_response_ordering() {
    let s = rig(&[PLAIN], Opts::default());
    let mut c = s.raw("plain");
    create_topics_ok(&mut c, &["corr"], 1);
    // A Fetch the broker holds (nothing to read), then requests answered at once, all with id 7
    // except the Fetches. The burst ends with a request the gateway answers itself: this test
    // found that the forwarded requests before it stayed in the gateway's write buffer.
    let mut fetch = fetch_request(vec![fetch_topic_by_name("corr", &[0])]);
    fetch.max_wait_ms = 700;
    fetch.min_bytes = 1;
    let mut expected = Vec::new();
    let mut batch = BytesMut::new();
    for i in 0..40 {
        let (api, version, frame) = match i % 4 {
            0 => (
                ApiKey::Fetch,
                12,
                c.encode_with(ApiKey::Fetch, 12, CORR_FETCH, &fetch),
            ),
            1 => (
                ApiKey::ApiVersions,
                3,
                c.encode_with(ApiKey::ApiVersions, 3, 7, &api_versions_request()),
            ),
            2 => (
                ApiKey::Metadata,
                12,
                c.encode_with(ApiKey::Metadata, 12, 7, &MetadataRequest::default()),
            ),
            _ => (
                ApiKey::ApiVersions,
                0,
                c.encode_with(ApiKey::ApiVersions, 0, 7, &api_versions_request()),
            ),
        };
        expected.push((api, version));
        batch.extend_from_slice(&frame);
    }
    c.send_raw(&batch).expect("send");
    let broker_port = s.gateway.broker_addr().port() as i32;
    for (i, (api, version)) in expected.into_iter().enumerate() {
        let mut p = c
            .read_frame()
            .unwrap_or_else(|e| panic!("response #{i} ({api:?} v{version}): {e}"));
        let h =
            ResponseHeader::decode(&mut p, api.response_header_version(version)).expect("header");
        assert!(h.correlation_id == 7 || h.correlation_id == CORR_FETCH);
        match api {
            ApiKey::Fetch => {
                let r = FetchResponse::decode(&mut p, version)
                    .unwrap_or_else(|e| panic!("#{i}: not a Fetch response: {e}"));
                assert_eq!(r.responses.len(), 1, "#{i}: {r:?}");
            }
            ApiKey::ApiVersions => {
                let r = ApiVersionsResponse::decode(&mut p, version)
                    .unwrap_or_else(|e| panic!("#{i}: not an ApiVersions response: {e}"));
                assert!(!r.api_keys.is_empty(), "#{i}: {r:?}");
            }
            _ => {
                let r = MetadataResponse::decode(&mut p, version)
                    .unwrap_or_else(|e| panic!("#{i}: not a Metadata response: {e}"));
                assert!(
                    r.brokers.iter().all(|b| b.port == broker_port),
                    "#{i}: {r:?}"
                );
            }
        }
        assert!(p.is_empty(), "#{i}: {} bytes left over", p.len());
    }
    println!(
        "RESULT reused correlation id: 40 pipelined requests (30 with id 7), answered in order"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Cost of one request (issue 11 item 5)
// ---------------------------------------------------------------------------------------------------------

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A request frame around a hand-built body (a body no kafka-protocol struct would encode).
fn hand_frame(c: &mut RawClient, api: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let (_, header) = c.encode(api, version, &EmptyBody);
    let mut out = BytesMut::from(&header[..]);
    out.extend_from_slice(body);
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out.freeze()
}

/// Encodes nothing: [`hand_frame`] uses it to get a request header alone.
struct EmptyBody;

impl kafka_protocol::protocol::Encodable for EmptyBody {
    fn encode<B: bytes::BufMut>(&self, _: &mut B, _: i16) -> anyhow::Result<()> {
        Ok(())
    }
    fn compute_size(&self, _: i16) -> anyhow::Result<usize> {
        Ok(0)
    }
}

/// Fills a v9 Metadata body with `n` topic entries of `entry` bytes each.
fn metadata_body(n: usize, entry: &[u8], version: i16) -> Vec<u8> {
    let mut body = Vec::with_capacity(n * entry.len() + 16);
    put_uvarint(&mut body, n as u32 + 1);
    for _ in 0..n {
        body.extend_from_slice(entry);
    }
    // allow_auto_topic_creation, (v8-10) include_cluster_authorized_operations,
    // include_topic_authorized_operations, tagged fields
    body.extend_from_slice(if version <= 10 {
        &[0, 0, 0, 0]
    } else {
        &[0, 0, 0]
    });
    body
}

/// What one request cost the gateway.
struct Cost {
    what: &'static str,
    frame: usize,
    /// The answer's size (0 when the connection was closed instead).
    response: usize,
    peak_kib: u64,
    cpu: Duration,
    answered: bool,
}

/// A request frame as a client sends it (correlation id 1, client id "cost").
fn c_encode<T: kafka_protocol::protocol::Encodable>(api: ApiKey, version: i16, body: &T) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("cost")));
    kafka_gateway::protocol::codec::encode_request_with_header(api, version, &header, body)
        .expect("encode")
}

/// The largest `n` for which `make(n)` is within the gateway's default decoded-size budget
/// (what `codec::decode_request` admits: the frame plus 1 MiB).
fn largest_accepted(api: ApiKey, version: i16, make: impl Fn(i32) -> Bytes) -> i32 {
    use kafka_gateway::protocol::codec;
    // What the session admits: the frame limit, then its reader (in place or decoded) under the
    // default decoded-size budget.
    let admitted = |n: i32| {
        let f = make(n);
        let budget = codec::decoded_budget(f.len() - 4, codec::DEFAULT_DECODED_FLOOR);
        f.len() <= 1 << 20 && codec::read_request(api, version, f.slice(4..), budget).is_ok()
    };
    let (mut lo, mut hi) = (1, 1 << 20);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if admitted(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Sends one request twice, each time on a fresh connection, and keeps the run with the lower
/// peak: seen from outside the process, the allocator's state adds a few hundred KiB of noise to
/// a run now and then, while what the request itself costs shows in both. (The second run finds
/// the decisions the first one added to the shared cache; what one request may add there is
/// bounded and tested on its own, `engine_tests::one_request_adds_a_bounded_number_of_decision_cache_entries`.)
fn cost_of(s: &Rig, what: &'static str, frame: Bytes) -> Cost {
    let first = cost_once(s, what, &frame);
    let second = cost_once(s, what, &frame);
    let (cost, other) = if second.peak_kib < first.peak_kib {
        (second, first.peak_kib)
    } else {
        (first, second.peak_kib)
    };
    println!(
        "RESULT cost: {what}: frame {} KiB, peak +{} KiB ({:.2}x the frame; other run +{other} KiB; bound {} KiB), CPU {:?}, {} ({} KiB)",
        cost.frame >> 10,
        cost.peak_kib,
        cost.peak_kib as f64 * 1024.0 / cost.frame as f64,
        allowed_kib(&cost),
        cost.cpu,
        if cost.answered {
            "answered"
        } else {
            "refused (closed)"
        },
        cost.response >> 10
    );
    cost
}

/// One run of [`cost_of`]: the gateway's peak memory above where it stood (VmHWM reset just
/// before) and its CPU time, until the answer or the close.
fn cost_once(s: &Rig, what: &'static str, frame: &Bytes) -> Cost {
    let mut c = s.raw("plain");
    assert!(api_versions_ok(&mut c), "{what}: the connection works");
    let base = s.gateway.reset_peak_kib();
    let cpu0 = s.gateway.cpu_time();
    // The gateway may close before the whole frame is written: a failed write is an outcome.
    let _ = c.send_raw(frame);
    let response = c.read_frame().map(|f| f.len() + 4).unwrap_or(0);
    let answered = response > 0;
    // Let the gateway finish whatever it still does for this request (audit, cleanup).
    std::thread::sleep(Duration::from_millis(300));
    Cost {
        what,
        frame: frame.len(),
        response,
        peak_kib: s.gateway.peak_kib().saturating_sub(base),
        cpu: s.gateway.cpu_time().saturating_sub(cpu0),
        answered,
    }
}

/// Issue 11's target: at most twice the frame, plus a constant for what any request touches
/// (buffers, the audit records of up to 1,024 decisions, and, seen from outside the process, the
/// allocator's own pages: runs of the same request vary by a few hundred KiB, so the constant is
/// 1.5 MiB here; `metadata_of_many_names_costs_about_its_own_size` and
/// `fetch_of_many_denied_topics_costs_about_its_own_size` measure planning and merging inside the
/// process, exactly). When the answer is larger than the request it counts instead: an answer is
/// held at least once to be sent.
///
/// Met for every case since Metadata, Fetch and the group-name lists (DescribeGroups, DeleteGroups,
/// ConsumerGroupDescribe) are read in place and their denied entries written as bytes: before,
/// a Fetch of 22,000 denied partitions peaked at 8.2 MiB (11.4x its frame), a Fetch of 7,500
/// denied topics, each also forgotten, at 5.1 MiB (15x), DescribeGroups and DeleteGroups of
/// 58,000 denied names at 5.6 and 6.2 MiB (7-8x), and a connection's table of repeated denials
/// held a slot of a whole audit record per kind (1.5 MiB for a thousand kinds).
fn allowed_kib(cost: &Cost) -> u64 {
    // Issue 11 item 5: twice the request or its answer, whichever is larger, plus what one
    // request may cost whatever its size (the decoded-size floor, a thousand audit records).
    let sized = cost.frame.max(cost.response) as u64;
    2 * (sized >> 10) + 1536
}

#[test]
fn cost_the_worst_request_of_each_api_family_is_bounded_by_its_size() {
    // Anonymous clients (the plain listener) may describe and write the cost* topics: requests
    // from the least trusted principal the listener admits are authorized and forwarded in full.
    let s = rig(
        &[PLAIN, SASL],
        Opts {
            policy: Some(
                "p, User:ANONYMOUS, Topic, cost*, Describe, *, allow\n\
                 p, User:ANONYMOUS, Topic, cost*, Write, *, allow\n\
                 p, User:ANONYMOUS, Topic, cost*, Create, *, allow\n\
                 p, User:ANONYMOUS, Topic, cost*, Read, *, allow\n\
                 p, User:ANONYMOUS, Group, cost*, Read, *, allow\n",
            ),
            audit: Some("level = \"all\""),
            // One malloc arena: what one worker thread frees, the other reuses, so the peak
            // follows what is live rather than which thread allocated it. Allocations of 64 KiB
            // and more are mapped and unmapped (glibc's threshold would otherwise rise after the
            // first large free) and the heap top is trimmed: memory freed by one request is given
            // back rather than reused unseen by the next, whose peak would then read too low.
            env: &[
                ("MALLOC_ARENA_MAX", "1"),
                ("MALLOC_MMAP_THRESHOLD_", "65536"),
                ("MALLOC_TRIM_THRESHOLD_", "131072"),
            ],
            ..Opts::default()
        },
    );
    let mut admin = s.user("admin");
    create_topics_ok(&mut admin, &["cost-produce"], 1);
    wait_for_leaders(&mut admin, &["cost-produce"]);
    let limit = 1usize << 20; // limits.max_request_bytes, the default for all but Produce & co.
    let mut c = s.raw("plain");
    let mut costs = Vec::new();

    // Names: 1 MiB of empty topic names is half a million 72-byte structs once decoded.
    let body = metadata_body((limit - 64) / 2, &[1, 0], 9);
    let f = hand_frame(&mut c, ApiKey::Metadata, 9, &body);
    costs.push(cost_of(&s, "Metadata v9, 1 MiB of empty names", f));
    assert!(!costs.last().expect("cost").answered);

    // Unknown tagged fields: each one would be a map node once decoded. Metadata is read in
    // place, so they cost their bytes: the 50,000 entries (one topic, nil id) are answered once.
    let body = metadata_body(
        (limit - 64) / 20,
        &[[0; 16].as_slice(), &[0, 1, 10, 0]].concat(),
        12,
    );
    let f = hand_frame(&mut c, ApiKey::Metadata, 12, &body);
    costs.push(cost_of(&s, "Metadata v12, 1 MiB of unknown tags", f));
    assert!(costs.last().expect("cost").answered);

    // Above the Metadata limit: refused once the length and API key have arrived.
    let body = metadata_body((8 * limit) / 2, &[1, 0], 9);
    let f = hand_frame(&mut c, ApiKey::Metadata, 9, &body);
    costs.push(cost_of(&s, "Metadata v9 of 8 MiB (over its limit)", f));
    assert!(!costs.last().expect("cost").answered);

    // Warm-up, not measured: the structures every connection's requests share (the decision
    // cache's per-request share, the audit writer's buffers) reach their working size first.
    let warm: Vec<String> = (0..5_000).map(|i| format!("cost-{i:06}")).collect();
    let warm: Vec<&str> = warm.iter().map(String::as_str).collect();
    let (_, f) = c.encode(ApiKey::Metadata, 12, &metadata_request(&warm));
    c.send_raw(&f).expect("warm-up sent");
    c.read_frame().expect("warm-up answered");

    // Forwarded: real, distinct, allowed names (29 bytes each at v12): 20,000, then as many as
    // the limit takes; then the limit with every other name denied, so that the forwarded part is
    // spliced from the request and half the answers are the gateway's own.
    for (what, n, denied_every) in [
        ("Metadata v12 of 20,000 allowed names", 20_000, None),
        (
            "Metadata v12 of 36,000 allowed names (the limit)",
            36_000,
            None,
        ),
        (
            "Metadata v12 of 36,000 names, every other denied",
            36_000,
            Some(2),
        ),
    ] {
        let names: Vec<String> = (0..n)
            .map(|i| match denied_every {
                Some(k) if i % k == 1 => format!("deny-{i:06}"),
                _ => format!("cost-{i:06}"),
            })
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut m = metadata_request(&refs);
        m.allow_auto_topic_creation = false;
        let (_, f) = c.encode(ApiKey::Metadata, 12, &m);
        assert!(
            f.len() <= limit,
            "{what}: {} bytes, over the limit",
            f.len()
        );
        costs.push(cost_of(&s, what, f));
        assert!(costs.last().expect("cost").answered, "{what}");
    }

    // Partitions: a Fetch is read in place (33 bytes a partition on the wire, about 80 once
    // decoded, which refused this one by its decoded size before): 25,000 partitions are answered.
    let partitions: Vec<i32> = (0..25_000).collect();
    let fetch = fetch_request(vec![fetch_topic_by_name("cost-produce", &partitions)]);
    let (_, f) = c.encode(ApiKey::Fetch, 12, &fetch);
    costs.push(cost_of(&s, "Fetch v12 of 25,000 partitions", f));
    assert!(costs.last().expect("cost").answered);

    // The largest requests the session admits (the frame limit; for decoded requests, the frame
    // plus 1 MiB decoded), of partitions and of group names, allowed (forwarded) and denied
    // (answered by the gateway).
    let fetch_of = |topic: &str, n: i32| {
        let partitions: Vec<i32> = (0..n).collect();
        c_encode(
            ApiKey::Fetch,
            12,
            &fetch_request(vec![fetch_topic_by_name(topic, &partitions)]),
        )
    };
    let groups_of = |prefix: &str, n: i32| {
        let mut dg = DescribeGroupsRequest::default();
        dg.groups = (0..n).map(|i| group(&format!("{prefix}-{i:06}"))).collect();
        c_encode(ApiKey::DescribeGroups, 5, &dg)
    };
    let n = largest_accepted(ApiKey::Fetch, 12, |n| fetch_of("cost-produce", n));
    for (what, topic) in [
        (
            "Fetch v12, the most partitions admitted, allowed",
            "cost-produce",
        ),
        ("Fetch v12, the most partitions admitted, denied", "secret"),
    ] {
        costs.push(cost_of(&s, what, fetch_of(topic, n)));
        assert!(costs.last().expect("cost").answered, "{what}");
    }
    let n = largest_accepted(ApiKey::DescribeGroups, 5, |n| groups_of("cost-g", n));
    for (what, prefix) in [
        (
            "DescribeGroups v5, the most names admitted, allowed",
            "cost-g",
        ),
        (
            "DescribeGroups v5, the most names admitted, denied",
            "deny-g",
        ),
    ] {
        costs.push(cost_of(&s, what, groups_of(prefix, n)));
        assert!(costs.last().expect("cost").answered, "{what}");
    }

    // Lists the mapping once compared against themselves (quadratic CPU): denied group names of
    // a DeleteGroups, and a Fetch's forgotten topics against its denied topics.
    let delete_groups_of = |n: i32| {
        let mut dg = DeleteGroupsRequest::default();
        dg.groups_names = (0..n).map(|i| group(&format!("deny-g-{i:06}"))).collect();
        c_encode(ApiKey::DeleteGroups, 2, &dg)
    };
    let n = largest_accepted(ApiKey::DeleteGroups, 2, delete_groups_of);
    let what = "DeleteGroups v2, the most names admitted, denied";
    costs.push(cost_of(&s, what, delete_groups_of(n)));
    assert!(costs.last().expect("cost").answered, "{what}");
    let forgetting_fetch_of = |n: i32| {
        // One allowed topic, so that the rest is forwarded in part and not all answered here.
        let topics = std::iter::once(fetch_topic_by_name("cost-produce", &[0]))
            .chain((0..n).map(|i| fetch_topic_by_name(&format!("secret-{i:06}"), &[0])))
            .collect();
        let mut f = fetch_request(topics);
        f.forgotten_topics_data = (0..n)
            .map(|i| {
                fetch_request::ForgottenTopic::default()
                    .with_topic(topic(&format!("secret-{i:06}")))
                    .with_partitions(vec![0])
            })
            .collect();
        c_encode(ApiKey::Fetch, 12, &f)
    };
    let n = largest_accepted(ApiKey::Fetch, 12, forgetting_fetch_of);
    let what = "Fetch v12, the most denied topics admitted, each also forgotten";
    costs.push(cost_of(&s, what, forgetting_fetch_of(n)));
    assert!(costs.last().expect("cost").answered, "{what}");

    // The topic APIs whose answers have an entry per partition or per topic, everything denied:
    // the most entries the session admits.
    let produce_of = |n: i32| {
        let parts: Vec<(&str, i32, Bytes)> = (0..n).map(|i| ("secret", i, Bytes::new())).collect();
        c_encode(ApiKey::Produce, 9, &produce_request(-1, None, &parts))
    };
    let list_offsets_of = |n: i32| {
        let t = list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic("secret"))
            .with_partitions(
                (0..n)
                    .map(|i| {
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(i)
                            .with_timestamp(-1)
                    })
                    .collect(),
            );
        c_encode(
            ApiKey::ListOffsets,
            7,
            &ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![t]),
        )
    };
    let create_topics_of = |n: i32| {
        let topics = (0..n)
            .map(|i| {
                create_topics_request::CreatableTopic::default()
                    .with_name(topic(&format!("deny-t-{i:06}")))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
            })
            .collect();
        c_encode(
            ApiKey::CreateTopics,
            5,
            &CreateTopicsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(1000),
        )
    };
    type Maker<'a> = &'a dyn Fn(i32) -> Bytes;
    let makers: [(&'static str, ApiKey, i16, Maker); 3] = [
        (
            "Produce v9, the most partitions admitted, denied",
            ApiKey::Produce,
            9,
            &produce_of,
        ),
        (
            "ListOffsets v7, the most partitions admitted, denied",
            ApiKey::ListOffsets,
            7,
            &list_offsets_of,
        ),
        (
            "CreateTopics v5, the most topics admitted, denied",
            ApiKey::CreateTopics,
            5,
            &create_topics_of,
        ),
    ];
    for (what, api, version, make) in makers {
        let n = largest_accepted(api, version, make);
        costs.push(cost_of(&s, what, make(n)));
        assert!(costs.last().expect("cost").answered, "{what}");
    }

    // Group names: DescribeGroups of 1 MiB of one-letter names.
    let mut dg = DescribeGroupsRequest::default();
    dg.groups = (0..(limit - 64) / 2).map(|_| group("c")).collect();
    let (_, f) = c.encode(ApiKey::DescribeGroups, 5, &dg);
    costs.push(cost_of(&s, "DescribeGroups v5, 1 MiB of names", f));
    assert!(!costs.last().expect("cost").answered);

    // Records: Produce is held to limits.max_frame_bytes; records are forwarded, not decoded.
    let value = "r".repeat(1 << 20);
    let values: Vec<&str> = (0..16).map(|_| value.as_str()).collect();
    let r = produce_request(
        -1,
        None,
        &[("cost-produce", 0, record_batch(&values, None))],
    );
    let (_, f) = c.encode(ApiKey::Produce, 9, &r);
    costs.push(cost_of(&s, "Produce v9 of 16 MiB", f));
    assert!(costs.last().expect("cost").answered);

    for cost in &costs {
        let allowed_kib = allowed_kib(cost);
        assert!(
            cost.peak_kib <= allowed_kib,
            "{}: peak +{} KiB for a {} KiB frame and a {} KiB answer (allowed {allowed_kib} KiB)",
            cost.what,
            cost.peak_kib,
            cost.frame >> 10,
            cost.response >> 10
        );
        assert!(
            cost.cpu <= Duration::from_secs(1),
            "{}: {:?} of CPU",
            cost.what,
            cost.cpu
        );
    }
    // The gateway still serves everyone.
    assert!(api_versions_ok(&mut s.raw("plain")));
    let metrics = s.gateway.metrics();
    assert!(
        metrics.contains("reason=\"decoded_too_large\"")
            && metrics.contains("reason=\"too_large_for_api\""),
        "refusals are counted by reason"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Upstream faults
// ---------------------------------------------------------------------------------------------------------

fn acked_args<'a>(bootstrap: &'a str, topic: &'a str) -> Vec<&'a str> {
    vec![
        "acked",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--count",
        "1500",
        "--rate",
        "150",
        "--idempotent",
        "--timeout",
        "60",
        "--session-timeout-ms",
        "6000",
    ]
}

#[test]
fn upstream_a_broker_lost_mid_produce_never_yields_a_false_success_and_idempotence_holds() {
    let s = rig(
        &[PLAIN],
        Opts {
            proxy: true,
            ..Opts::default()
        },
    );
    let bootstrap = s.gateway.addr("plain").to_string();
    let proxy_accepts_before = s.proxy().accepted();
    // The broker disappears 3 s into a 10 s acks=all run and comes back 4 s later.
    let cut = {
        let proxy = s.proxy();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            proxy.set_mode(Mode::Down);
            std::thread::sleep(Duration::from_secs(4));
            proxy.set_mode(Mode::Pass);
        })
    };
    let r = python_workload(&s.tools, &acked_args(&bootstrap, "lost-mid-produce"));
    cut.join().expect("cut thread");
    let upstream_failures = s.gateway.log_text().matches("side=\"upstream\"").count()
        + s.gateway
            .log_text()
            .matches("cannot reach upstream")
            .count();
    println!("RESULT broker lost mid-produce: {upstream_failures} client connections hit the outage; {r}");
    assert!(upstream_failures > 0, "the outage never touched a client");
    assert_eq!(r["acked_but_missing"], 0, "a false success: {r}");
    assert_eq!(r["duplicates"], 0, "idempotence broken: {r}");
    assert_eq!(r["acked"], 1500, "records lost for good: {r}");
    assert_eq!(r["stored_distinct"], 1500, "{r}");
    assert!(s.proxy().accepted() > proxy_accepts_before, "reconnected");
}

#[test]
fn upstream_an_idempotent_producer_gets_exactly_once_across_a_broker_kill_9_and_restart() {
    // A real kill -9 of the broker's JVM in the middle of an acks=all run, then a restart on the
    // same data. Kafka acknowledges acks=all once the record is in the page cache of every in-sync
    // replica (here one), which a killed process does not lose. What is tested is the gateway's
    // part: no success the broker did not give, and the producer's retries (same producer id and
    // sequence numbers) deduplicated by the restarted broker.
    let tools = tools();
    let dir = TempDir::new("robust-kill9");
    let mut cluster = KafkaMultiCluster::start(1, ClusterOptions::default());
    let (text, ports, admin) = gateway_config(&cluster.upstream(), &[PLAIN], None, "");
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    let bootstrap = gateway.addr("plain").to_string();
    let restarted_after = std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            std::thread::sleep(Duration::from_secs(4));
            cluster.kill_broker(1);
            std::thread::sleep(Duration::from_secs(2));
            let t = Instant::now();
            cluster.restart_broker(1);
            t.elapsed()
        });
        let r = python_workload(&tools, &acked_args(&bootstrap, "durable"));
        let restarted_after = killer.join().expect("killer");
        println!("RESULT idempotent producer across kill -9 and restart: {r}");
        assert_eq!(r["acked_but_missing"], 0, "a false success: {r}");
        assert_eq!(r["duplicates"], 0, "idempotence broken: {r}");
        assert_eq!(r["acked"], 1500, "records lost for good: {r}");
        assert_eq!(r["stored_distinct"], 1500, "{r}");
        restarted_after
    });
    let upstream_failures = gateway.log_text().matches("side=\"upstream\"").count()
        + gateway.log_text().matches("cannot reach upstream").count();
    assert!(upstream_failures > 0, "the kill never touched a client");
    println!(
        "RESULT kill -9: {upstream_failures} client connections hit the outage; broker back in {restarted_after:?}"
    );
}

#[test]
fn upstream_a_broker_killed_before_answering_gives_the_client_no_success_and_the_gateway_recovers()
{
    let mut s = rig(
        &[PLAIN],
        Opts {
            proxy: true,
            ..Opts::default()
        },
    );
    let mut c = s.raw("plain");
    create_topics_ok(&mut c, &["killed"], 1);
    produce_ok(&mut c, "killed", 0, &["before"]);
    // The broker does the work, its answer is lost, then it is killed (SIGKILL).
    s.proxy().set_mode(Mode::Stall);
    let (_, frame) = c.encode(
        ApiKey::Produce,
        9,
        &produce_request(
            -1,
            None,
            &[("killed", 0, record_batch(&["in-flight"], None))],
        ),
    );
    c.send_raw(&frame).expect("send");
    std::thread::sleep(Duration::from_millis(500));
    s.broker.kill();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(45)))
        .expect("timeout");
    let started = Instant::now();
    match c.read_frame() {
        Ok(mut p) => {
            let _ = ResponseHeader::decode(&mut p, 1).expect("header");
            let r = ProduceResponse::decode(&mut p, 9).expect("produce response");
            assert_ne!(
                produce_error(&r, "killed", 0),
                0,
                "a success the broker never sent"
            );
        }
        Err(e) => println!("in-flight produce ended with a closed connection: {e}"),
    }
    let ended_after = started.elapsed();
    // The broker comes back (with its data) and the gateway serves again without a restart.
    s.broker.restart();
    s.proxy().set_mode(Mode::Pass);
    let t = Instant::now();
    eventually(
        "served after the broker returned",
        Duration::from_secs(30),
        || {
            let mut c = s.raw("plain");
            create_topics(&mut c, &["after-restart"], 1)
                .iter()
                .all(|(_, code)| *code == 0 || *code == 36)
        },
    );
    let mut c = s.raw("plain");
    // CreateTopics answers before the restarted broker leads the new partition: a produce sent
    // at once can get UNKNOWN_TOPIC_OR_PARTITION from the broker (seen once in CI-like runs).
    wait_for_leaders(&mut c, &["after-restart"]);
    produce_ok(&mut c, "after-restart", 0, &["after"]);
    println!(
        "RESULT broker killed before answering: client saw the connection close after {ended_after:?} (no response); served again {:?} after the broker returned",
        t.elapsed()
    );
}

#[test]
fn upstream_a_silent_broker_times_clients_out_with_bounded_memory() {
    let s = rig(
        &[PLAIN],
        Opts {
            proxy: true,
            extra:
                "[timeouts]\nupstream_request = \"3s\"\n\n[limits]\nmax_inflight_bytes = 4194304\n",
            ..Opts::default()
        },
    );
    let mut c = s.raw("plain");
    create_topics_ok(&mut c, &["silent"], 1);
    s.proxy().set_mode(Mode::Silent);
    let rss_before = s.gateway.rss_kib();
    // A producer pushing 64 x 1 MiB requests at a broker that never answers.
    let addr = s.gateway.addr("plain");
    let pusher = std::thread::spawn(move || {
        let mut c = RawClient::connect(addr);
        c.stream
            .set_write_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let value = "x".repeat(1 << 20);
        let batch = record_batch(&[value.as_str()], None);
        let (_, frame) = c.encode(
            ApiKey::Produce,
            9,
            &produce_request(1, None, &[("silent", 0, batch)]),
        );
        let mut written = 0usize;
        for _ in 0..64 {
            if c.send_raw(&frame).is_err() {
                break;
            }
            written += frame.len();
        }
        let closed = c.is_closed_within(Duration::from_secs(20));
        (written, closed)
    });
    // A request on another connection times out cleanly: the connection is closed, not left hanging.
    let mut m = s.raw("plain");
    let t = Instant::now();
    let (_, frame) = m.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    m.send_raw(&frame).expect("send");
    assert!(
        m.is_closed_within(Duration::from_secs(15)),
        "a request to a silent broker hung"
    );
    let timed_out_after = t.elapsed();
    assert!(
        timed_out_after >= Duration::from_millis(2500),
        "closed before the upstream deadline: {timed_out_after:?}"
    );
    let rss_peak = s.gateway.rss_kib();
    // The gateway itself still answers what it owns.
    let t = Instant::now();
    assert!(api_versions_ok(&mut s.raw("plain")));
    let own_answer = t.elapsed();
    let (written, closed) = pusher.join().expect("pusher");
    assert!(closed, "the pushing client was never cut off");
    assert!(
        rss_peak < rss_before + 48 * 1024,
        "RSS {rss_before} -> {rss_peak} KiB with a silent broker"
    );
    assert!(
        written < 40 << 20,
        "{written} bytes accepted with a 4 MiB in-flight limit"
    );
    s.proxy().set_mode(Mode::Pass);
    let mut c = s.raw("plain");
    produce_ok(&mut c, "silent", 0, &["after"]);
    println!(
        "RESULT silent broker: request closed after {timed_out_after:?} (deadline 3 s); pusher got {} MiB in before backpressure; RSS {rss_before} -> {rss_peak} KiB; ApiVersions answered in {own_answer:?}",
        written >> 20
    );
}

#[test]
fn upstream_a_broker_that_returns_at_another_address_keeps_the_rewritten_addresses() {
    let dir = TempDir::new("robust-move");
    let mut cluster = KafkaMultiCluster::start(1, ClusterOptions::default());
    let old_port = cluster.brokers[0].socket(KafkaListener::Plaintext).port();
    let new_port = free_port();
    // Both addresses are bootstrap servers: the cluster is known by more than one name.
    let upstream = Upstream::new(format!("127.0.0.1:{old_port},127.0.0.1:{new_port}"), 1, 1);
    let (text, ports, admin) = gateway_config(&upstream, &[PLAIN], None, "");
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    let node_addr = gateway.broker_addr();
    let brokers_seen = |c: &mut RawClient| -> Vec<(i32, String, i32)> {
        let r: MetadataResponse = c.request(ApiKey::Metadata, 12, &MetadataRequest::default());
        r.brokers
            .iter()
            .map(|b| (b.node_id.0, b.host.to_string(), b.port))
            .collect()
    };
    let mut c = RawClient::connect(gateway.addr("plain"));
    let before = brokers_seen(&mut c);
    assert_eq!(
        before,
        vec![(1, "127.0.0.1".to_string(), node_addr.port() as i32)]
    );
    let mut n = RawClient::connect(node_addr);
    create_topics_ok(&mut n, &["moved"], 1);
    produce_ok(&mut n, "moved", 0, &["before"]);
    cluster.restart_broker_on(1, new_port);
    let t = Instant::now();
    // A client reconnecting to the node's gateway port reaches the broker at its new address.
    eventually(
        "node reachable at its new address",
        Duration::from_secs(20),
        || {
            let Ok(s) = TcpStream::connect(node_addr) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut c = RawClient::from_stream(s);
            let (_, frame) = c.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
            c.send_raw(&frame).is_ok() && c.read_frame().is_ok()
        },
    );
    let reached_after = t.elapsed();
    let mut n = RawClient::connect(node_addr);
    wait_for_leaders(&mut n, &["moved"]);
    produce_ok(&mut n, "moved", 0, &["after"]);
    let resp = fetch_by_name(&mut n, &["moved"]);
    assert_eq!(
        record_values(&fetched(&resp, "moved", 0).records),
        vec!["before", "after"],
        "the same broker, with its data"
    );
    let after = brokers_seen(&mut RawClient::connect(gateway.addr("plain")));
    assert_eq!(
        after, before,
        "clients must keep seeing the gateway's address"
    );
    println!(
        "RESULT broker moved {old_port} -> {new_port}: node 1 served at the same gateway port after {reached_after:?}; Metadata unchanged {after:?}"
    );
}

#[test]
fn upstream_a_malformed_response_closes_that_client_and_no_other() {
    let s = rig(
        &[PLAIN],
        Opts {
            proxy: true,
            ..Opts::default()
        },
    );
    let mut bystander = s.raw("plain");
    create_topics_ok(&mut bystander, &["fine"], 1);
    s.proxy().poison(b"poison-topic");
    let mut victim = s.raw("plain");
    let _: MetadataResponse = victim.request(ApiKey::Metadata, 12, &MetadataRequest::default());
    let (_, frame) = victim.encode(ApiKey::Metadata, 12, &metadata_request(&["poison-topic"]));
    victim.send_raw(&frame).expect("send");
    assert!(
        victim.is_closed_within(Duration::from_secs(10)),
        "a malformed Metadata response did not close the client"
    );
    assert_eq!(s.proxy().corrupted(), 1);
    for _ in 0..20 {
        produce_ok(&mut bystander, "fine", 0, &["still"]);
        let _: MetadataResponse =
            bystander.request(ApiKey::Metadata, 12, &MetadataRequest::default());
    }
    assert!(api_versions_ok(&mut s.raw("plain")));
    let log = s.gateway.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("upstream") && (l.contains("decode") || l.contains("malformed")))
        .unwrap_or_else(|| {
            panic!(
                "no log line names the upstream's bad response:\n{}",
                tail(&log, 3000)
            )
        });
    println!("RESULT malformed upstream response: victim closed, bystander did 20 produce+metadata; log: {line}");
}

fn metadata_request(names: &[&str]) -> MetadataRequest {
    let mut r = MetadataRequest::default();
    r.topics = Some(
        names
            .iter()
            .map(|n| {
                let mut t = metadata_request::MetadataRequestTopic::default();
                t.name = Some(topic(n));
                t
            })
            .collect(),
    );
    r
}

// ---------------------------------------------------------------------------------------------------------
// Reload faults
// ---------------------------------------------------------------------------------------------------------

const RELOAD_BASE: &str = "p, User:alice, Topic, rl, All, *, allow\n\
                           p, User:bob, Topic, rl, Describe, *, allow\n";
const RELOAD_GRANT_BOB: &str = "p, User:alice, Topic, rl, All, *, allow\n\
                                p, User:bob, Topic, rl, Describe, *, allow\n\
                                p, User:bob, Topic, rl, Write, *, allow\n";

fn produce_code(c: &mut RawClient, name: &str) -> i16 {
    let r = produce(c, None, &[(name, 0, record_batch(&["r"], None))]);
    produce_error(&r, name, 0)
}

/// Replaces a file the safe way: write a temporary file, then rename it over the old one.
fn replace_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn reload_faults_keep_the_last_good_policy_say_why_and_revocations_reach_open_connections() {
    let s = rig(
        &[SASL],
        Opts {
            policy: Some(RELOAD_BASE),
            audit: Some("level = \"admin\"\n"),
            ..Opts::default()
        },
    );
    create_topics_ok(&mut s.user("admin"), &["rl"], 1);
    let mut alice = s.user("alice");
    let mut bob = s.user("bob");
    let failures = || {
        metric_sum(
            &s.gateway.metrics(),
            "kafka_gateway_reloads_total{file=\"policy\",result=\"failure\"}",
        )
    };
    let in_force = |alice: &mut RawClient, bob: &mut RawClient, bob_may_write: bool| {
        assert_eq!(produce_code(alice, "rl"), 0, "alice lost her grant");
        let want = if bob_may_write {
            0
        } else {
            TOPIC_AUTHORIZATION_FAILED
        };
        assert_eq!(produce_code(bob, "rl"), want, "bob's access changed");
    };
    in_force(&mut alice, &mut bob, false);

    // 1. A syntax error.
    let f0 = failures();
    std::fs::write(&s.policy, "p, User:alice, Topic\nthis is not a rule\n").expect("write");
    eventually("syntax error noticed", Duration::from_secs(10), || {
        failures() > f0
    });
    in_force(&mut alice, &mut bob, false);

    // 2. A file cut in the middle of a line (a writer that died half way).
    let f1 = failures();
    let cut = RELOAD_GRANT_BOB.len() - 12;
    std::fs::write(&s.policy, &RELOAD_GRANT_BOB[..cut]).expect("write");
    eventually("truncated file noticed", Duration::from_secs(10), || {
        failures() > f1
    });
    in_force(&mut alice, &mut bob, false);

    // 3. A slow writer: half the file, a pause, the rest. The half file must never be read.
    let f2 = failures();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&s.policy).expect("create");
        f.write_all(&RELOAD_GRANT_BOB.as_bytes()[..cut])
            .expect("write");
        f.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(150));
        f.write_all(&RELOAD_GRANT_BOB.as_bytes()[cut..])
            .expect("write");
    }
    eventually("slow write applied", Duration::from_secs(10), || {
        produce_code(&mut bob, "rl") == 0
    });
    assert_eq!(failures(), f2, "a half-written file was read");

    // 4. A casbin model without its policy effect.
    let model = std::fs::read_to_string(&s.model).expect("model");
    let broken: String = model
        .lines()
        .filter(|l| !l.starts_with("[policy_effect]") && !l.starts_with("e = "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(broken, model);
    let f3 = failures();
    std::fs::write(&s.model, &broken).expect("write model");
    eventually("broken model noticed", Duration::from_secs(10), || {
        failures() > f3
    });
    in_force(&mut alice, &mut bob, true);
    replace_atomically(&s.model, &model);

    // 5. A revocation reaches bob's open connection on its next request: how long it takes.
    std::thread::sleep(Duration::from_secs(2));
    replace_atomically(&s.policy, RELOAD_BASE);
    let t = Instant::now();
    while produce_code(&mut bob, "rl") == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "revocation never applied"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let by_poll = t.elapsed();
    // And with SIGHUP right after the edit.
    replace_atomically(&s.policy, RELOAD_GRANT_BOB);
    let ok = Command::new("kill")
        .args(["-HUP", &s.gateway.pid().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let t = Instant::now();
    while produce_code(&mut bob, "rl") != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "SIGHUP grant never applied"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let by_hup = t.elapsed();
    assert!(
        by_poll < Duration::from_secs(4),
        "revocation took {by_poll:?}"
    );

    // Each failure is in the audit trail (with its reason) and the log. A reload's record is
    // written after the new policy is in force (the SIGHUP grant above is seen by bob first), so
    // the trail is read once the three successful reloads are in it.
    let applied_reloads = |records: &[serde_json::Value]| {
        records
            .iter()
            .filter(|r| r["event"] == "reload" && r["outcome"] == "ok" && r["source"] != "start")
            .count()
    };
    eventually("the reload records written", Duration::from_secs(5), || {
        applied_reloads(&s.audit_records()) >= 3
    });
    let records = s.audit_records();
    let failed: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "reload" && r["outcome"] == "error")
        .collect();
    assert!(failed.len() >= 3, "failed reloads audited: {failed:?}");
    assert!(failed
        .iter()
        .all(|r| r["error"].as_str().is_some_and(|e| !e.is_empty())));
    assert!(
        failed
            .iter()
            .any(|r| r["error"].as_str().unwrap_or("").contains("policy_effect")),
        "the model error does not say what is missing: {failed:?}"
    );
    // Successful reloads name the file that changed (on SIGHUP: every part of the policy).
    let applied: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "reload" && r["outcome"] == "ok" && r["source"] != "start")
        .collect();
    assert!(applied.len() >= 3, "{applied:?}");
    assert!(
        applied
            .iter()
            .all(|r| r["source"].as_str().unwrap_or("").contains("acl.policy")),
        "a reload record does not name the policy file that changed: {applied:?}"
    );
    let log = s.gateway.log_text();
    assert!(
        log.matches("reload failed: the previous version stays in force")
            .count()
            >= 3
    );
    println!(
        "RESULT reload faults: syntax error, truncated file, model without policy_effect kept the last good policy ({} audited failures); slow writer never read half-written; revocation applied to an open connection after {by_poll:?} (file poll), grant after {by_hup:?} (SIGHUP)",
        failed.len()
    );
}

// ---------------------------------------------------------------------------------------------------------
// Audit faults
// ---------------------------------------------------------------------------------------------------------

/// A small tmpfs, unmounted when dropped. Mounting needs CAP_SYS_ADMIN (root on the CI machine).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Tmpfs(at.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

const ALICE_WRITES: &str = "p, User:alice, Topic, *, All, *, allow\n";

#[test]
fn audit_disk_full_refuses_requests_loses_no_record_and_recovers() {
    let fs_dir = TempDir::new("robust-fs");
    let mount = match Tmpfs::mount(&fs_dir.path().join("mnt"), "1m") {
        Ok(m) => m,
        Err(e) if std::env::var_os("KGW_REQUIRE_TMPFS").is_none() => {
            println!("SKIPPED audit disk-full: cannot mount a tmpfs here ({e}); the unit test disk_full_mid_write_keeps_whole_records_and_declares_the_partial_one covers the writer");
            return;
        }
        Err(e) => panic!("cannot mount a tmpfs: {e}"),
    };
    // Fill most of it, so the trail runs out of space within a few hundred records.
    let filler = mount.0.join("filler");
    std::fs::write(&filler, vec![0u8; 800 * 1024]).expect("filler");
    let s = rig(
        &[SASL],
        Opts {
            policy: Some(ALICE_WRITES),
            audit: Some("level = \"all\"\non_failure = \"fail-closed\"\n"),
            audit_dir: Some(mount.0.join("audit")),
            ..Opts::default()
        },
    );
    create_topics_ok(&mut s.user("admin"), &["full"], 1);
    let mut succeeded = 0u64;
    let mut refused = false;
    'outer: for _ in 0..20 {
        let mut c = s.user("alice");
        for _ in 0..2000 {
            let (_, frame) = c.encode(
                ApiKey::Produce,
                9,
                &produce_request(-1, None, &[("full", 0, record_batch(&["payload"], None))]),
            );
            if c.send_raw(&frame).is_err() {
                refused = true;
                break 'outer;
            }
            match c.read_frame() {
                Ok(mut p) => {
                    let _ = ResponseHeader::decode(&mut p, 1).expect("header");
                    let r = ProduceResponse::decode(&mut p, 9).expect("produce");
                    assert_eq!(produce_error(&r, "full", 0), 0);
                    succeeded += 1;
                }
                Err(_) => {
                    refused = true;
                    break 'outer;
                }
            }
        }
    }
    assert!(refused, "the disk never filled ({succeeded} produces)");
    // Still alive (its admin endpoint answers); new connections, which would be audited, are
    // refused as well until the trail can take records again.
    assert!(s.gateway.metrics().contains("kafka_gateway_"));
    assert!(s
        .gateway
        .log_text()
        .contains("audit trail unavailable: refusing what it would have recorded"));
    // Space comes back: the gateway notices and serves again, and the trail says what happened.
    std::fs::remove_file(&filler).expect("free space");
    let t = Instant::now();
    eventually(
        "recovered after space was freed",
        Duration::from_secs(20),
        || {
            // Until recovery the connection is closed under the client (RawClient panics on that).
            std::panic::catch_unwind(|| {
                let mut c = s.user("alice");
                produce_code(&mut c, "full") == 0
            })
            .unwrap_or(false)
        },
    );
    let recovered_after = t.elapsed();
    // No silent loss: every produce the client saw succeed has its decision in the trail (records
    // caught in the failed write were held in memory and written after recovery).
    let audited = s
        .audit_records()
        .iter()
        .filter(|r| {
            r["event"] == "authz_decision"
                && r["resource_name"] == "full"
                && r["decision"] == "allow"
                && r["operation"] == "Write"
        })
        .count() as u64;
    assert!(
        audited >= succeeded,
        "{succeeded} produces succeeded but only {audited} were audited"
    );
    let records = s.audit_records();
    let states: Vec<&str> = records
        .iter()
        .filter(|r| r["event"] == "audit_failure")
        .filter_map(|r| r["state"].as_str())
        .collect();
    assert!(
        states.contains(&"engaged") && states.contains(&"recovered"),
        "audit_failure records: {states:?}"
    );
    let v = audit_verify(&s.audit);
    assert!(v.ok, "verify after disk full: {}{}", v.stdout, v.stderr);
    assert!(s.gateway.log_text().contains("No space left on device"));
    println!(
        "RESULT audit disk full: {succeeded} produces succeeded before ENOSPC, then requests and connections refused by closing; recovered {recovered_after:?} after space was freed; {audited} allow decisions in the trail (none lost); verify OK"
    );
}

#[test]
fn audit_kill_9_during_heavy_writing_leaves_a_precisely_reported_tail_and_the_chain_continues() {
    let mut s = rig(
        &[SASL],
        Opts {
            policy: Some(ALICE_WRITES),
            audit: Some("level = \"all\"\n"),
            ..Opts::default()
        },
    );
    create_topics_ok(&mut s.user("admin"), &["heavy"], 1);
    let stop = Arc::new(AtomicBool::new(false));
    let addr = s.gateway.addr("sasl");
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = RawClient::connect(addr);
                if login(&mut c, "SCRAM-SHA-256", "alice", "alice-secret").error_code() != 0 {
                    return 0;
                }
                let (_, frame) = c.encode(
                    ApiKey::Produce,
                    9,
                    &produce_request(1, None, &[("heavy", 0, record_batch(&["h"], None))]),
                );
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    if c.send_raw(&frame).is_err() || c.read_frame().is_err() {
                        break;
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    s.gateway.child.kill().expect("kill -9");
    let _ = s.gateway.child.wait();
    stop.store(true, Ordering::SeqCst);
    let produced: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();

    let files = trail_files(&s.audit);
    let newest = files.last().expect("a trail file").clone();
    let mut bytes = std::fs::read(&newest).expect("read");
    let torn_by_kill = bytes.last().is_some_and(|b| *b != b'\n');
    if !torn_by_kill {
        // The kill landed between records: tear the last record as a crash mid-write would.
        let last_start = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let torn = bytes[last_start..last_start + 40].to_vec();
        bytes.extend_from_slice(&torn);
        std::fs::write(&newest, &bytes).expect("tear");
    }
    let v = audit_verify(&s.audit);
    let report = format!("{}{}", v.stdout, v.stderr);
    assert!(!v.ok, "a torn tail passed verification: {report}");
    let name = newest
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(
        report.contains("incomplete record") && report.contains(&name),
        "the report does not name the torn tail: {report}"
    );
    let last_good = trail_records(&s.audit)
        .iter()
        .filter_map(|r| r["seq"].as_u64())
        .max()
        .expect("records");

    s.restart_gateway();
    let mut c = s.user("alice");
    produce_ok(&mut c, "heavy", 0, &["after restart"]);
    s.gateway.sigterm();
    assert!(s.gateway.wait_exit(Duration::from_secs(30)));
    let v = audit_verify(&s.audit);
    assert!(v.ok, "after restart: {}{}", v.stdout, v.stderr);
    let records = trail_records(&s.audit);
    let torn = records
        .iter()
        .find(|r| r["event"] == "audit_torn_tail")
        .expect("the restart declares the torn tail");
    assert_eq!(torn["last_good_seq"].as_u64(), Some(last_good), "{torn}");
    assert_eq!(
        torn["seq"].as_u64(),
        Some(last_good + 1),
        "the chain continues from the last good record"
    );
    println!(
        "RESULT audit kill -9: {produced} produces in 3 s, torn by the kill itself: {torn_by_kill}; verify named {name}; restart declared the tail (last good seq {last_good}) and continued the chain; verify OK"
    );
}
