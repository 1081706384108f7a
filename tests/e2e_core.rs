//! End-to-end tests of the gateway core against Apache Kafka 4.4 (a fresh cluster per test), with real
//! and raw clients.

mod common;

use std::time::{Duration, Instant};

use common::apache::*;
use common::*;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

struct Setup {
    _dir: TempDir,
    _broker: KafkaCluster,
    gateway: Gateway,
    certs: Certs,
    tools: Tools,
}

fn setup(listeners: &[ListenerSpec], extra: &str) -> Setup {
    let tools = tools();
    let dir = TempDir::new("e2e");
    let certs = dev_certs(&dir.path().join("certs"));
    let broker = KafkaCluster::start();
    let (text, ports, admin) = gateway_config(&broker.upstream(), listeners, Some(&certs), extra);
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    Setup {
        _dir: dir,
        _broker: broker,
        gateway,
        certs,
        tools,
    }
}

const TLS: ListenerSpec = ListenerSpec {
    name: "tls",
    tls: true,
    client_auth: "optional",
    sasl: "",
};
const PLAIN: ListenerSpec = ListenerSpec {
    name: "plain",
    tls: false,
    client_auth: "none",
    sasl: "",
};

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn create_topic(c: &mut RawClient, name: &str, partitions: i32) {
    let mut t = CreatableTopic::default();
    t.name = topic(name);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 10_000;
    let resp: CreateTopicsResponse = c.request(ApiKey::CreateTopics, 5, &req);
    assert_eq!(resp.topics[0].error_code, 0, "create {name}");
    common::kafka::wait_for_leaders(c, &[name]);
}

fn assert_admin(what: &str, r: &serde_json::Value) {
    assert_eq!(r["created"], true, "{what}: {r}");
    assert_eq!(r["described"], true, "{what}: {r}");
    assert_eq!(r["deleted"], true, "{what}: {r}");
}

#[test]
fn librdkafka_over_tls_produces_consumes_and_administers() {
    let s = setup(&[TLS], "");
    let bootstrap = s.gateway.addr("tls").to_string();
    let ca = s.certs.ca();
    let ca = ca.to_str().expect("utf-8 path");
    let r = python_workload(
        &s.tools,
        &[
            "roundtrip",
            "--bootstrap",
            &bootstrap,
            "--tls-ca",
            ca,
            "--topic",
            "rk-orders",
            "--count",
            "10000",
            "--group",
            "rk-group",
        ],
    );
    assert_roundtrip("librdkafka roundtrip", &r, 10_000);
    let r = python_workload(
        &s.tools,
        &[
            "admin",
            "--bootstrap",
            &bootstrap,
            "--tls-ca",
            ca,
            "--topic",
            "rk-admin",
        ],
    );
    assert_admin("librdkafka admin", &r);
    // The traffic really went through the gateway, over TLS, to the broker ports it advertised.
    let m = s.gateway.metrics();
    assert!(
        m.contains("kafka_gateway_requests_total{api=\"Produce\"}"),
        "{m}"
    );
    assert!(
        m.contains("kafka_gateway_requests_total{api=\"Fetch\"}"),
        "{m}"
    );
    assert!(
        m.contains("kafka_gateway_requests_total{api=\"JoinGroup\"}"),
        "{m}"
    );
    assert!(
        m.contains("kafka_gateway_requests_total{api=\"CreateTopics\"}"),
        "{m}"
    );
    assert!(
        m.contains("kafka_gateway_requests_total{api=\"DeleteTopics\"}"),
        "{m}"
    );
}

#[test]
fn java_clients_3_9_and_4_4_over_tls_produce_consume_and_administer() {
    let s = setup(&[TLS], "");
    let bootstrap = s.gateway.addr("tls").to_string();
    let ca = s.certs.ca();
    let ca = ca.to_str().expect("utf-8 path");
    type Run = fn(&Tools, &[&str]) -> serde_json::Value;
    // 3.9.1 with the classic group protocol; 4.4 with the KIP-848 consumer protocol, its default.
    let clients: [(&str, Run, &str); 2] = [
        ("java 3.9.1", java_workload, "group.protocol=classic"),
        ("java 4.4.0", java44_workload, "group.protocol=consumer"),
    ];
    for (i, (what, run, protocol)) in clients.into_iter().enumerate() {
        let (orders, group, admin) = (
            format!("jv{i}-orders"),
            format!("jv{i}-group"),
            format!("jv{i}-admin"),
        );
        let r = run(
            &s.tools,
            &[
                "roundtrip",
                "--bootstrap",
                &bootstrap,
                "--tls-ca",
                ca,
                "--topic",
                &orders,
                "--count",
                "10000",
                "--group",
                &group,
                "--consumer-extra",
                protocol,
            ],
        );
        assert_roundtrip(&format!("{what} roundtrip"), &r, 10_000);
        let r = run(
            &s.tools,
            &[
                "admin",
                "--bootstrap",
                &bootstrap,
                "--tls-ca",
                ca,
                "--topic",
                &admin,
            ],
        );
        assert_admin(&format!("{what} admin"), &r);
    }
}

#[test]
fn tls_listener_with_required_client_certs_refuses_anonymous_clients() {
    let s = setup(
        &[ListenerSpec {
            name: "mtls",
            tls: true,
            client_auth: "required",
            sasl: "",
        }],
        "",
    );
    let bootstrap = s.gateway.addr("mtls").to_string();
    let ca = s.certs.ca();
    let (cert, key) = (s.certs.client(), s.certs.client_key());
    let r = python_workload(
        &s.tools,
        &[
            "roundtrip",
            "--bootstrap",
            &bootstrap,
            "--tls-ca",
            ca.to_str().expect("path"),
            "--client-cert",
            cert.to_str().expect("path"),
            "--client-key",
            key.to_str().expect("path"),
            "--topic",
            "mtls",
            "--count",
            "100",
            "--group",
            "mtls-g",
        ],
    );
    assert_roundtrip("mTLS roundtrip", &r, 100);
    // Without a certificate the handshake fails and nothing is served.
    let mut raw = RawClient::connect(s.gateway.addr("mtls"));
    raw.send_raw(b"\x16\x03\x01\x00\x05hello").expect("send");
    assert!(raw.is_closed_within(Duration::from_secs(5)));
    s.gateway
        .wait_for_metric("connections_rejected_total{reason=\"tls_handshake\"}");
}

#[test]
fn metadata_and_find_coordinator_name_only_gateway_ports() {
    let s = setup(&[PLAIN], "");
    let mut c = RawClient::connect(s.gateway.addr("plain"));
    create_topic(&mut c, "meta-t", 2);
    let broker_port = i32::from(s.gateway.broker_ports[0]);
    for version in [1i16, 4, 9, 12] {
        let mut req = MetadataRequest::default();
        let mut t = MetadataRequestTopic::default();
        t.name = Some(topic("meta-t"));
        req.topics = Some(vec![t]);
        let resp: MetadataResponse = c.request(ApiKey::Metadata, version, &req);
        assert_eq!(resp.brokers.len(), 1, "v{version}");
        let b = &resp.brokers[0];
        assert_eq!(
            (b.node_id.0, b.host.as_str(), b.port),
            (KafkaCluster::NODE_ID, "127.0.0.1", broker_port),
            "v{version}"
        );
        assert_eq!(resp.topics[0].partitions.len(), 2);
    }
    for version in [0i16, 3, 4] {
        let mut req = FindCoordinatorRequest::default();
        if version < 4 {
            req.key = StrBytes::from_static_str("some-group");
        } else {
            req.coordinator_keys = vec![StrBytes::from_static_str("some-group")];
        }
        let resp: FindCoordinatorResponse = c.request(ApiKey::FindCoordinator, version, &req);
        let (host, port) = if version < 4 {
            (resp.host.to_string(), resp.port)
        } else {
            (
                resp.coordinators[0].host.to_string(),
                resp.coordinators[0].port,
            )
        };
        assert_eq!(
            (host.as_str(), port),
            ("127.0.0.1", broker_port),
            "FindCoordinator v{version}"
        );
    }
    // The advertised broker port really leads to that broker.
    let mut b = RawClient::connect(std::net::SocketAddr::from((
        [127, 0, 0, 1],
        s.gateway.broker_ports[0],
    )));
    // (topics = null is "every topic"; Kafka reads an empty list as "none".)
    let all = MetadataRequest::default().with_topics(None);
    let resp: MetadataResponse = b.request(ApiKey::Metadata, 12, &all);
    assert!(resp.topics.iter().any(|t| t.name == Some(topic("meta-t"))));
}

#[test]
fn api_versions_is_the_intersection_and_unsupported_versions_get_error_35() {
    let s = setup(&[PLAIN], "");
    let mut c = RawClient::connect(s.gateway.addr("plain"));
    let resp: ApiVersionsResponse = c.request(ApiKey::ApiVersions, 3, &api_versions_request());
    assert_eq!(resp.error_code, 0);
    let range = |k: ApiKey| {
        resp.api_keys
            .iter()
            .find(|a| a.api_key == k as i16)
            .map(|a| (a.min_version, a.max_version))
    };
    // node_endpoints are rewritten (KIP-951): Produce and Fetch as far as kafka-protocol decodes.
    assert!(range(ApiKey::Produce).is_some_and(|r| (9..=13).contains(&r.1)));
    assert!(range(ApiKey::Fetch).is_some_and(|r| r.1 <= 18));
    assert!(range(ApiKey::Metadata).is_some());
    assert_eq!(
        range(ApiKey::CreateAcls),
        Some((1, 3)),
        "ACL APIs are answered by the gateway, whatever the upstream offers"
    );
    assert_eq!(range(ApiKey::DescribeQuorum), None);

    // A version above what the gateway parses: v0 response, error 35, and the supported range.
    let mut raw = RawClient::connect(s.gateway.addr("plain"));
    let mut frame = Vec::new();
    frame.extend_from_slice(&18i16.to_be_bytes());
    frame.extend_from_slice(&99i16.to_be_bytes());
    frame.extend_from_slice(&77i32.to_be_bytes());
    frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // a body no version defines
    let mut msg = (frame.len() as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&frame);
    raw.send_raw(&msg).expect("send");
    let payload = raw.read_frame().expect("response");
    assert_eq!(&payload[..4], &77i32.to_be_bytes(), "correlation id echoed");
    assert_eq!(&payload[4..6], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
    let count = i32::from_be_bytes([payload[6], payload[7], payload[8], payload[9]]);
    assert_eq!(count, 1);
    assert_eq!(
        &payload[10..12],
        &18i16.to_be_bytes(),
        "range of ApiVersions itself"
    );
    // The connection stays usable, as with Kafka.
    let resp: ApiVersionsResponse = raw.request(ApiKey::ApiVersions, 0, &api_versions_request());
    assert_eq!(resp.error_code, 0);
}

#[test]
fn unsupported_api_keys_and_versions_close_the_connection() {
    let s = setup(&[PLAIN], "");
    // UpdateFeatures (refused), an unknown key, versions past the gateway's (Produce 13, Fetch 18).
    for (key, version) in [(57i16, 0i16), (999, 0), (0, 14), (1, 19), (3, 99)] {
        let mut raw = RawClient::connect(s.gateway.addr("plain"));
        let mut frame = Vec::new();
        frame.extend_from_slice(&key.to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&1i32.to_be_bytes());
        frame.extend_from_slice(&(-1i16).to_be_bytes());
        frame.extend_from_slice(&[0; 16]);
        let mut msg = (frame.len() as i32).to_be_bytes().to_vec();
        msg.extend_from_slice(&frame);
        raw.send_raw(&msg).expect("send");
        assert!(
            raw.is_closed_within(Duration::from_secs(5)),
            "api {key} v{version} not closed"
        );
    }
    s.gateway
        .wait_for_metric("frames_rejected_total{reason=\"unsupported_api\"}");
    s.gateway
        .wait_for_metric("frames_rejected_total{reason=\"unsupported_version\"}");
}

#[test]
fn hostile_lengths_close_the_connection_and_memory_stays_bounded() {
    let s = setup(&[PLAIN], "[limits]\nmax_frame_bytes = 1048576\n");
    let addr = s.gateway.addr("plain");
    let rss_before = s.gateway.rss_kib();
    let mut hostile: Vec<Vec<u8>> = vec![
        (-1i32).to_be_bytes().to_vec(),
        i32::MIN.to_be_bytes().to_vec(),
        0i32.to_be_bytes().to_vec(),
        0x7FFF_FFFFi32.to_be_bytes().to_vec(),
        (1_048_577i32).to_be_bytes().to_vec(),
    ];
    // A Metadata v4 request whose topic array claims 0x7FFFFFFF entries in a 30-byte frame.
    let mut body = Vec::new();
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&4i16.to_be_bytes());
    body.extend_from_slice(&9i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    body.extend_from_slice(&0x7FFF_FFFFi32.to_be_bytes());
    body.extend_from_slice(&[0, 1, b'a', 0]);
    let mut msg = (body.len() as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    hostile.push(msg);
    // A Produce v9 (flexible) request with a compact array count of 2^32-2 elements.
    let mut body = Vec::new();
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&9i16.to_be_bytes());
    body.extend_from_slice(&10i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    body.push(0); // header tagged fields
    body.push(0); // transactional id: null compact string
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&1000i32.to_be_bytes());
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let mut msg = (body.len() as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    hostile.push(msg);

    for (i, bytes) in hostile.iter().enumerate() {
        for _ in 0..20 {
            let mut raw = RawClient::connect(addr);
            raw.send_raw(bytes).expect("send");
            assert!(
                raw.is_closed_within(Duration::from_secs(5)),
                "hostile frame {i} left the connection open"
            );
        }
    }
    let rss_after = s.gateway.rss_kib();
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB on hostile frames"
    );
    // Everyone else is still served.
    let mut ok = RawClient::connect(addr);
    let resp: ApiVersionsResponse = ok.request(ApiKey::ApiVersions, 3, &api_versions_request());
    assert_eq!(resp.error_code, 0);
    let m = s.gateway.metrics();
    for reason in ["negative_length", "zero_length", "too_large", "malformed"] {
        assert!(
            m.contains(&format!("frames_rejected_total{{reason=\"{reason}\"}}")),
            "{reason}: {m}"
        );
    }
}

#[test]
fn pipelined_requests_are_answered_in_order_and_acks0_does_not_stall() {
    let s = setup(&[PLAIN], "");
    let mut c = RawClient::connect(s.gateway.addr("plain"));
    create_topic(&mut c, "pipe-t", 1);
    let mut expected = Vec::new();
    let mut batch = Vec::new();
    for i in 0..60 {
        let (corr, frame) = match i % 3 {
            // Answered by the gateway itself.
            0 => c.encode(ApiKey::ApiVersions, 3, &api_versions_request()),
            // Answered by the broker, and rewritten.
            1 => c.encode(ApiKey::Metadata, 12, &MetadataRequest::default()),
            // acks=0: no response at all, must not hold the others back.
            _ => {
                let mut p = ProduceRequest::default();
                p.acks = 0;
                p.timeout_ms = 1000;
                let (corr, f) = c.encode(ApiKey::Produce, 9, &p);
                batch.extend_from_slice(&f);
                let _ = corr;
                continue;
            }
        };
        expected.push(corr);
        batch.extend_from_slice(&frame);
    }
    c.send_raw(&batch).expect("send pipelined batch");
    for want in expected {
        let payload = c.read_frame().expect("response");
        let got = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
        assert_eq!(got, want, "responses out of order");
    }
}

#[test]
fn per_ip_cap_refuses_extra_connections_and_counts_them() {
    let s = setup(&[PLAIN], "[limits]\nmax_connections_per_ip = 3\n");
    let addr = s.gateway.addr("plain");
    let mut held: Vec<RawClient> = (0..3).map(|_| RawClient::connect(addr)).collect();
    for c in &mut held {
        let r: ApiVersionsResponse = c.request(ApiKey::ApiVersions, 3, &api_versions_request());
        assert_eq!(r.error_code, 0);
    }
    let mut extra = RawClient::connect(addr);
    assert!(
        extra.is_closed_within(Duration::from_secs(5)),
        "4th connection from one IP was kept"
    );
    s.gateway
        .wait_for_metric("connections_rejected_total{reason=\"per_ip_cap\"}");
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut again = RawClient::connect(addr);
    let r: ApiVersionsResponse = again.request(ApiKey::ApiVersions, 3, &api_versions_request());
    assert_eq!(r.error_code, 0, "a freed place is usable again");
}

#[test]
fn graceful_shutdown_finishes_in_flight_requests_and_refuses_new_connections() {
    let mut s = setup(&[PLAIN], "[timeouts]\nshutdown_grace = \"20s\"\n");
    let addr = s.gateway.addr("plain");
    let mut c = RawClient::connect(addr);
    create_topic(&mut c, "shut-t", 1);
    // A Fetch the broker holds for up to 3 s because there is nothing to return yet.
    let mut part = FetchPartition::default();
    part.partition = 0;
    part.fetch_offset = 0;
    part.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = topic("shut-t");
    t.partitions = vec![part];
    let mut fetch = FetchRequest::default();
    fetch.replica_id = BrokerId(-1);
    fetch.max_wait_ms = 3000;
    fetch.min_bytes = 1;
    fetch.max_bytes = 1 << 20;
    fetch.topics = vec![t];
    let (corr, frame) = c.encode(ApiKey::Fetch, 12, &fetch);
    let sent = Instant::now();
    c.send_raw(&frame).expect("send fetch");
    std::thread::sleep(Duration::from_millis(300));
    s.gateway.sigterm();
    // New connections are refused while the in-flight Fetch is still being served.
    let start = Instant::now();
    let mut refused = false;
    while start.elapsed() < Duration::from_secs(2) {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(refused, "new connections still accepted after SIGTERM");
    let payload = c
        .read_frame()
        .expect("in-flight fetch answered during the grace period");
    assert_eq!(&payload[..4], &corr.to_be_bytes());
    assert!(
        sent.elapsed() >= Duration::from_millis(300),
        "response came after the signal"
    );
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "connection closed after draining"
    );
    assert!(
        s.gateway.wait_exit(Duration::from_secs(10)),
        "gateway exits cleanly"
    );
}

#[test]
fn check_config_reports_every_problem_at_once() {
    let dir = TempDir::new("cfg");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "colour = 1\n[[listeners]]\nname = \"a\"\nbind = \"nope\"\nbroker_port_base = 9100\n\
         [upstream]\nbootstrap_servers = []\npassword = \"hunter2\"\n[timeouts]\nidle = \"forever\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(gateway_bin())
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "colour: unknown key",
        "listeners[0].bind",
        "upstream.bootstrap_servers",
        "upstream.password: unknown key",
        "timeouts.idle",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains("hunter2"), "a value was echoed back:\n{err}");
}

#[test]
fn a_client_that_never_reads_meets_backpressure_and_memory_stays_flat() {
    let s = setup(&[PLAIN], "[limits]\nmax_inflight_requests = 100\n");
    let addr = s.gateway.addr("plain").to_string();
    // 40 MB of records, so that every Fetch below has a full 1 MiB to return.
    let r = python_workload(
        &s.tools,
        &[
            "throughput",
            "--bootstrap",
            &addr,
            "--topic",
            "hog",
            "--bytes",
            "40000000",
            "--record-size",
            "10000",
            // One partition: every Fetch below reads partition 0, which must hold all the data.
            "--partitions",
            "1",
        ],
    );
    assert!(r.get("error").is_none(), "{r}");
    let rss_before = s.gateway.rss_kib();

    let mut part = FetchPartition::default();
    part.partition = 0;
    part.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = topic("hog");
    t.partitions = vec![part];
    let mut fetch = FetchRequest::default();
    fetch.replica_id = BrokerId(-1);
    fetch.max_wait_ms = 100;
    fetch.max_bytes = 1 << 20;
    fetch.topics = vec![t];
    let mut hog = RawClient::connect(s.gateway.broker_addr());
    hog.stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    // 1,000 pipelined Fetches would be ~1 GB of responses; the client reads none of them.
    let mut sent = 0;
    for _ in 0..1000 {
        let (_, frame) = hog.encode(ApiKey::Fetch, 12, &fetch);
        if hog.send_raw(&frame).is_err() {
            break; // the gateway stopped reading this client: backpressure reached the sender
        }
        sent += 1;
    }
    std::thread::sleep(Duration::from_secs(3));
    let rss_during = s.gateway.rss_kib();
    assert!(
        rss_during < rss_before + 64 * 1024,
        "gateway buffered responses nobody reads: RSS {rss_before} KiB -> {rss_during} KiB ({sent} fetches sent)"
    );
    // Everyone else is served meanwhile.
    let mut other = RawClient::connect(s.gateway.addr("plain"));
    let all = MetadataRequest::default().with_topics(None);
    let resp: MetadataResponse = other.request(ApiKey::Metadata, 12, &all);
    assert!(resp.topics.iter().any(|t| t.name == Some(topic("hog"))));
    // The hog's own responses are intact and in order once it reads.
    hog.stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    for want in 1i32..=5 {
        let payload = hog.read_frame().expect("response");
        assert_eq!(&payload[..4], &want.to_be_bytes());
        // Each answer is large, so buffering them would have shown in the RSS check above.
        assert!(
            payload.len() > 500_000,
            "fetch response of only {} bytes",
            payload.len()
        );
    }
    eprintln!("hog: {sent} fetches sent, RSS {rss_before} -> {rss_during} KiB");
}
