//! Cluster topology through the gateway: upstream TLS (chained gateways in front of Apache Kafka); a
//! real 3-broker Apache Kafka cluster (a broker killed and restarted, leadership moved, a fourth
//! broker joining, the controller restarted) with producers and consumers running through the
//! gateway; and scripted upstreams for what no real cluster does on demand (a broker outside the
//! gateway's port range, a broker moving to a different cluster's address).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::apache::*;
use common::*;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

#[test]
fn upstream_tls_through_a_second_gateway_in_front_of_kafka() {
    let tools = tools();
    let dir = TempDir::new("chain");
    let certs = dev_certs(&dir.path().join("certs"));
    let broker = KafkaCluster::start();
    let tls = ListenerSpec {
        name: "tls",
        tls: true,
        client_auth: "none",
        sasl: "",
    };
    let (text, ports, admin) = gateway_config(&broker.upstream(), &[tls], Some(&certs), "");
    let inner = Gateway::start(dir.path(), &text, ports, admin);
    // The outer gateway reaches the inner one over TLS, verifying it against the dev CA.
    let extra = format!("[upstream.tls]\nca_file = {:?}\n", certs.ca());
    let plain = ListenerSpec {
        name: "plain",
        tls: false,
        client_auth: "none",
        sasl: "",
    };
    let (text, ports, admin) = gateway_config(
        &broker.upstream().through(inner.addr("tls")),
        &[plain],
        None,
        &extra,
    );
    let outer = Gateway::start(dir.path(), &text, ports, admin);
    let r = python_workload(
        &tools,
        &[
            "roundtrip",
            "--bootstrap",
            &outer.addr("plain").to_string(),
            "--topic",
            "chained",
            "--count",
            "2000",
            "--group",
            "chained-g",
        ],
    );
    assert_roundtrip("through two gateways", &r, 2000);
    let m = inner.metrics();
    assert!(
        m.contains("kafka_gateway_requests_total{api=\"Produce\"}"),
        "traffic did not pass the inner gateway:\n{m}"
    );
    assert!(
        m.contains("kafka_gateway_connections_total{listener=\"tls\"}"),
        "{m}"
    );
}

#[test]
fn upstream_tls_with_the_wrong_ca_never_reaches_the_broker() {
    let dir = TempDir::new("badca");
    let certs = dev_certs(&dir.path().join("certs"));
    let other = dev_certs(&dir.path().join("other-ca"));
    let broker = KafkaCluster::start();
    let tls = ListenerSpec {
        name: "tls",
        tls: true,
        client_auth: "none",
        sasl: "",
    };
    let (text, ports, admin) = gateway_config(&broker.upstream(), &[tls], Some(&certs), "");
    let inner = Gateway::start(dir.path(), &text, ports, admin);
    let extra = format!("[upstream.tls]\nca_file = {:?}\n", other.ca());
    let plain = ListenerSpec {
        name: "plain",
        tls: false,
        client_auth: "none",
        sasl: "",
    };
    let (text, _ports, admin) = gateway_config(
        &broker.upstream().through(inner.addr("tls")),
        &[plain],
        None,
        &extra,
    );
    let config = dir.path().join("outer.toml");
    std::fs::write(&config, &text).expect("write");
    let mut child = std::process::Command::new(gateway_bin())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    // Never ready: the upstream's certificate does not verify, and the log says why.
    std::thread::sleep(Duration::from_secs(2));
    let ready = http_get(SocketAddr::from(([127, 0, 0, 1], admin)), "/readyz");
    assert_eq!(
        ready.map(|r| r.0),
        Some(503),
        "outer gateway claims readiness with an untrusted upstream"
    );
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("TLS handshake failed"), "{log}");
    assert!(
        !inner.metrics().contains("requests_total{api="),
        "no request may reach the broker"
    );
}

/// A scripted upstream broker: answers ApiVersions and Metadata with whatever brokers it is told.
struct FakeBroker {
    port: u16,
    brokers: Arc<Mutex<Vec<(i32, u16)>>>,
}

impl FakeBroker {
    fn start(name: &'static str, brokers: Arc<Mutex<Vec<(i32, u16)>>>) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = brokers.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let brokers = shared.clone();
                std::thread::spawn(move || serve_fake(stream, name, brokers));
            }
        });
        FakeBroker { port, brokers }
    }
}

fn serve_fake(mut s: TcpStream, name: &'static str, brokers: Arc<Mutex<Vec<(i32, u16)>>>) {
    use std::io::{Read, Write};
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        if s.read_exact(&mut buf).is_err() {
            return;
        }
        let mut payload = Bytes::from(buf);
        let key = ApiKey::try_from(i16::from_be_bytes([payload[0], payload[1]])).expect("api key");
        let version = i16::from_be_bytes([payload[2], payload[3]]);
        let header = RequestHeader::decode(&mut payload, key.request_header_version(version))
            .expect("header");
        let mut out = BytesMut::new();
        out.extend_from_slice(&[0; 4]);
        let mut rh = ResponseHeader::default();
        rh.correlation_id = header.correlation_id;
        rh.encode(&mut out, key.response_header_version(version))
            .expect("encode");
        match key {
            ApiKey::ApiVersions => {
                let mut r = ApiVersionsResponse::default();
                for (k, max) in [
                    (ApiKey::ApiVersions, 3i16),
                    (ApiKey::Metadata, 12),
                    (ApiKey::FindCoordinator, 4),
                ] {
                    let mut av = ApiVersion::default();
                    av.api_key = k as i16;
                    av.max_version = max;
                    r.api_keys.push(av);
                }
                r.encode(&mut out, version).expect("encode");
            }
            ApiKey::Metadata => {
                let mut r = MetadataResponse::default();
                r.cluster_id = Some(StrBytes::from_static_str(name));
                for &(node, port) in brokers.lock().expect("lock").iter() {
                    let mut b = MetadataResponseBroker::default();
                    b.node_id = BrokerId(node);
                    b.host = StrBytes::from_static_str("127.0.0.1");
                    b.port = i32::from(port);
                    r.brokers.push(b);
                }
                r.encode(&mut out, version).expect("encode");
            }
            other => panic!("fake broker got {other:?}"),
        }
        let n = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&n.to_be_bytes());
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

fn metadata(addr: SocketAddr) -> MetadataResponse {
    let mut c = RawClient::connect(addr);
    c.request(ApiKey::Metadata, 12, &MetadataRequest::default())
}

fn brokers_seen(m: &MetadataResponse) -> Vec<(i32, i32)> {
    m.brokers.iter().map(|b| (b.node_id.0, b.port)).collect()
}

/// Connects to a gateway broker port (retrying while it is being bound) and asks which upstream
/// answers there.
fn cluster_behind(port: u16) -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "broker port {port} never bound"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    metadata(addr)
        .cluster_id
        .map(|c| c.to_string())
        .unwrap_or_default()
}

#[test]
fn brokers_that_join_move_or_fall_outside_the_range_are_handled() {
    let dir = TempDir::new("topology");
    let list = Arc::new(Mutex::new(Vec::new()));
    let a = FakeBroker::start("fake-a", list.clone());
    let b = FakeBroker::start("fake-b", list.clone());
    let c = FakeBroker::start("fake-c", list.clone());
    list.lock().expect("lock").push((111, a.port));
    let base = free_port_range(4);
    let plain = ListenerSpec {
        name: "plain",
        tls: false,
        client_auth: "none",
        sasl: "",
    };
    let (text, _, admin) = gateway_config(
        &Upstream::new(format!("127.0.0.1:{}", a.port), TANSU_NODE_ID, 1),
        &[plain],
        None,
        "",
    );
    let text = text.replace("broker_port_count = 1", "broker_port_count = 4");
    let text = regex_replace_base(&text, base);
    let gw = Gateway::start(dir.path(), &text, vec![base], admin);
    let bootstrap = gw.addr("plain");
    let p = |node: i32| i32::from(base) + node - 111;

    assert_eq!(brokers_seen(&metadata(bootstrap)), vec![(111, p(111))]);
    assert_eq!(cluster_behind(base), "fake-a");

    // Node 112 joins (reachable at fake-b), and node 120 joins outside the 4-port range.
    list.lock()
        .expect("lock")
        .extend([(112, b.port), (120, c.port)]);
    assert_eq!(
        brokers_seen(&metadata(bootstrap)),
        vec![(111, p(111)), (112, p(112))],
        "joined broker rewritten; out-of-range broker hidden, never advertised with its real address"
    );
    assert_eq!(
        cluster_behind(base + 1),
        "fake-b",
        "joined broker reachable without a restart"
    );
    let m = gw.metrics();
    assert!(
        m.contains("unmapped_brokers_total{listener=\"plain\"}"),
        "{m}"
    );
    assert!(gw.log_text().contains("outside this listener's port range"));

    // Node 112 moves to fake-c: once the gateway sees the new address, new connections go there.
    {
        let mut l = list.lock().expect("lock");
        l.retain(|(n, _)| *n != 112 && *n != 120);
        l.push((112, c.port));
    }
    assert_eq!(
        brokers_seen(&metadata(bootstrap)),
        vec![(111, p(111)), (112, p(112))],
        "same gateway address after the move"
    );
    assert_eq!(cluster_behind(base + 1), "fake-c", "moved broker followed");
    let _ = (&a.brokers, &b.brokers);
}

/// Rewrites the one `broker_port_base = N` line of a generated config.
fn regex_replace_base(text: &str, base: u16) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("broker_port_base") {
                format!("broker_port_base = {base}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------------------
// A real 3-broker Apache Kafka cluster
// ---------------------------------------------------------------------------------------------------------

/// Partitions of each churn topic (replication factor 3).
const CHURN_PARTITIONS: i32 = 6;

/// AlterPartitionReassignments sent directly to the cluster (as an operator's admin tool does).
fn reassign(cluster: &KafkaMultiCluster, topic: &str, replicas: &dyn Fn(i32) -> Vec<i32>) {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    let mut c = RawClient::connect(cluster.brokers[0].socket(KafkaListener::Plaintext));
    let mut t = ReassignableTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = (0..CHURN_PARTITIONS)
        .map(|p| {
            let mut rp = ReassignablePartition::default();
            rp.partition_index = p;
            rp.replicas = Some(replicas(p).into_iter().map(BrokerId).collect());
            rp
        })
        .collect();
    let mut req = AlterPartitionReassignmentsRequest::default();
    req.timeout_ms = 30_000;
    req.topics = vec![t];
    let resp: AlterPartitionReassignmentsResponse =
        c.request(ApiKey::AlterPartitionReassignments, 0, &req);
    assert_eq!(resp.error_code, 0, "{resp:?}");
    for r in resp.responses.iter().flat_map(|t| &t.partitions) {
        assert_eq!(r.error_code, 0, "{resp:?}");
    }
}

/// Preferred-leader election for every partition of `topic`, retried until each partition's
/// preferred replica leads (0) or already led (ELECTION_NOT_NEEDED, 84).
fn elect_preferred(cluster: &KafkaMultiCluster, topic: &str) {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    let start = Instant::now();
    loop {
        let mut c = RawClient::connect(cluster.brokers[0].socket(KafkaListener::Plaintext));
        let mut tp = TopicPartitions::default();
        tp.topic = TopicName(StrBytes::from_string(topic.to_string()));
        tp.partitions = (0..CHURN_PARTITIONS).collect();
        let mut req = ElectLeadersRequest::default();
        req.election_type = 0;
        req.topic_partitions = Some(vec![tp]);
        req.timeout_ms = 30_000;
        let resp: ElectLeadersResponse = c.request(ApiKey::ElectLeaders, 2, &req);
        let codes: Vec<i16> = resp
            .replica_election_results
            .iter()
            .flat_map(|r| r.partition_result.iter().map(|p| p.error_code))
            .collect();
        if resp.error_code == 0 && codes.iter().all(|c| *c == 0 || *c == 84) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "preferred leaders never elected: {resp:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Leaders of the churn topic's partitions, as the cluster itself reports them.
fn leaders(cluster: &KafkaMultiCluster, topic: &str) -> Vec<i32> {
    let mut c = RawClient::connect(cluster.brokers[0].socket(KafkaListener::Plaintext));
    let resp = common::kafka::metadata(&mut c, Some(&[topic]), false);
    let mut ps: Vec<(i32, i32)> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect();
    ps.sort();
    ps.into_iter().map(|(_, l)| l).collect()
}

/// KIP-951 after a leader move: a Produce (v11) sent through the gateway to a broker that no
/// longer leads the partition (a client's cached leader) is answered NOT_LEADER_OR_FOLLOWER, and a
/// Fetch (v16) with the epoch from before the move FENCED_LEADER_EPOCH, each with the current
/// leader's endpoint, which names the gateway's port for it; sent there, they succeed. The client
/// needs no Metadata request, and never learns a broker's own address.
fn a_stale_leader_points_the_client_at_the_gateways_port_for_the_new_one(
    cluster: &KafkaMultiCluster,
    gateway: &Gateway,
    topic: &str,
) {
    const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    const FENCED_LEADER_EPOCH: i16 = 74;
    // The partition whose leader changed most recently (the move rotated every partition's
    // replicas, but one may have kept its leader): its epoch is past 0.
    let (topic_id, partition, leader, leader_epoch) = {
        let mut c = RawClient::connect(cluster.brokers[0].socket(KafkaListener::Plaintext));
        let t = &common::kafka::metadata(&mut c, Some(&[topic]), false).topics[0];
        let p = t
            .partitions
            .iter()
            .max_by_key(|p| p.leader_epoch)
            .expect("partitions");
        (t.topic_id, p.partition_index, p.leader_id.0, p.leader_epoch)
    };
    let stale = (1..=3).find(|n| *n != leader).expect("a follower");
    let port_of = |node: i32| i32::from(gateway.broker_ports[0]) + node - 1;
    let at = |port: i32| SocketAddr::from(([127, 0, 0, 1], port as u16));
    assert!(leader_epoch > 0, "leadership moved, so the epoch is past 0");
    let mut produce = ProduceRequest::default();
    produce.acks = 1;
    produce.timeout_ms = 10_000;
    let mut td = produce_request::TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(topic.to_string()));
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = Some(common::kafka::record_batch(&["kip-951"], None));
    td.partition_data = vec![p];
    produce.topic_data = vec![td];
    let mut c = RawClient::connect(at(port_of(stale)));
    let resp: ProduceResponse = c.request(ApiKey::Produce, 11, &produce);
    let part = &resp.responses[0].partition_responses[0];
    assert_eq!(part.error_code, NOT_LEADER_OR_FOLLOWER, "{resp:?}");
    assert_eq!(part.current_leader.leader_id.0, leader, "{resp:?}");
    let hint = resp
        .node_endpoints
        .iter()
        .find(|e| e.node_id.0 == leader)
        .unwrap_or_else(|| panic!("no endpoint for the new leader: {resp:?}"));
    assert_eq!(
        (hint.host.as_str(), hint.port),
        ("127.0.0.1", port_of(leader)),
        "the leader's endpoint is the gateway's port for it"
    );
    let mut c = RawClient::connect(at(hint.port));
    let resp: ProduceResponse = c.request(ApiKey::Produce, 11, &produce);
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code, 0,
        "{resp:?}"
    );

    // Fetch v16: a consumer asking with the leader epoch from before the move is told
    // FENCED_LEADER_EPOCH with the current leader's endpoint (followers may serve consumers, so a
    // stale epoch, not a stale broker, is what makes a fetch point elsewhere).
    let mut fetch = FetchRequest::default();
    fetch.replica_id = BrokerId(-1);
    fetch.max_wait_ms = 0;
    fetch.max_bytes = 1 << 20;
    fetch.session_epoch = -1;
    let mut ft = fetch_request::FetchTopic::default();
    ft.topic_id = topic_id;
    let mut fp = fetch_request::FetchPartition::default();
    fp.partition = partition;
    fp.partition_max_bytes = 1 << 16;
    fp.current_leader_epoch = leader_epoch - 1;
    fp.last_fetched_epoch = -1;
    fp.log_start_offset = -1;
    ft.partitions = vec![fp];
    fetch.topics = vec![ft];
    let mut c = RawClient::connect(at(port_of(leader)));
    let resp: FetchResponse = c.request(ApiKey::Fetch, 16, &fetch);
    let part = &resp.responses[0].partitions[0];
    assert_eq!(part.error_code, FENCED_LEADER_EPOCH, "{}", short(&resp));
    let hint = resp
        .node_endpoints
        .iter()
        .find(|e| e.node_id.0 == part.current_leader.leader_id.0)
        .unwrap_or_else(|| panic!("no endpoint for the leader: {}", short(&resp)));
    assert_eq!(
        (hint.host.as_str(), hint.port),
        ("127.0.0.1", port_of(leader))
    );
    fetch.topics[0].partitions[0].current_leader_epoch = part.current_leader.leader_epoch;
    let mut c = RawClient::connect(at(hint.port));
    let resp: FetchResponse = c.request(ApiKey::Fetch, 16, &fetch);
    let part = &resp.responses[0].partitions[0];
    assert_eq!(part.error_code, 0, "{}", short(&resp));
    assert!(part.records.as_ref().is_some_and(|r| !r.is_empty()));
}

/// A Fetch response without its records, for assertion messages.
fn short(r: &FetchResponse) -> String {
    let mut r = r.clone();
    for p in r.responses.iter_mut().flat_map(|t| &mut t.partitions) {
        p.records = p
            .records
            .as_ref()
            .map(|b| Bytes::from(format!("<{} bytes>", b.len())));
    }
    format!("{r:?}")
}

/// Runs the churn workload through the gateway while `change` alters the cluster, and a monitor
/// checks that every broker address the gateway hands out is one of its own ports.
fn churn_through(
    tools: &Tools,
    gateway: &Gateway,
    cluster: &mut KafkaMultiCluster,
    phase: &str,
    change: impl FnOnce(&mut KafkaMultiCluster),
) -> serde_json::Value {
    let bootstrap = gateway.addr("plain").to_string();
    let base = i32::from(gateway.broker_ports[0]);
    let topic = format!("churn-{phase}");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let r = std::thread::scope(|scope| {
        let monitor = scope.spawn(|| {
            let mut checks = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(s) = TcpStream::connect(gateway.addr("plain")) {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut c = RawClient::from_stream(s);
                    let (_, frame) = c.encode(
                        ApiKey::Metadata,
                        12,
                        &MetadataRequest::default().with_topics(None),
                    );
                    if c.send_raw(&frame).is_ok() {
                        if let Ok(mut p) = c.read_frame() {
                            let _ = ResponseHeader::decode(&mut p, 1);
                            if let Ok(m) = MetadataResponse::decode(&mut p, 12) {
                                for b in &m.brokers {
                                    assert_eq!(b.host.as_str(), "127.0.0.1");
                                    assert!(
                                        (base..base + 8).contains(&b.port)
                                            && b.port == base + b.node_id.0 - 1,
                                        "{phase}: broker {} advertised at {}:{}, not a gateway port",
                                        b.node_id.0,
                                        b.host,
                                        b.port
                                    );
                                }
                                checks += 1;
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            checks
        });
        let work = scope.spawn(|| {
            common::kafka::python_workload_outcome(
                tools,
                &[
                    "churn",
                    "--bootstrap",
                    &bootstrap,
                    "--topic",
                    &topic,
                    "--partitions",
                    &CHURN_PARTITIONS.to_string(),
                    "--replication",
                    "3",
                    "--count",
                    "1200",
                    "--rate",
                    "100",
                    "--timeout",
                    "90",
                ],
            )
        });
        std::thread::sleep(Duration::from_secs(3));
        let t = Instant::now();
        change(cluster);
        let changed_in = t.elapsed();
        let outcome = work.join().expect("workload");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let checks = monitor.join().expect("monitor");
        println!(
            "RESULT 3 brokers, {phase}: change took {changed_in:?}; {checks} Metadata checks through the gateway named only gateway ports; {}",
            outcome.json
        );
        assert!(checks > 0, "{phase}: the monitor never got an answer");
        outcome
    });
    let j = &r.json;
    assert_eq!(j["acked_but_missing"], 0, "{phase}: a false success: {j}");
    assert_eq!(j["duplicates"], 0, "{phase}: idempotence broken: {j}");
    assert_eq!(j["acked"], 1200, "{phase}: records lost for good: {j}");
    assert_eq!(
        j["acked_but_not_consumed"], 0,
        "{phase}: the group missed records: {j}"
    );
    assert!(r.success, "{phase}: {j}\n{}", tail(&r.stderr, 3000));
    r.json
}

#[test]
fn three_brokers_killed_moved_joined_and_the_controller_restarted_lose_nothing() {
    let tools = tools();
    let dir = TempDir::new("three-brokers");
    let mut cluster = KafkaMultiCluster::start(3, ClusterOptions::default());
    let plain = ListenerSpec {
        name: "plain",
        tls: false,
        client_auth: "none",
        sasl: "",
    };
    let (text, ports, admin) = gateway_config(&cluster.upstream(), &[plain], None, "");
    let gateway = Gateway::start(dir.path(), &text, ports, admin);

    // 1. kill -9 of broker 2, restarted 4 s later.
    churn_through(&tools, &gateway, &mut cluster, "kill9", |c| {
        c.kill_broker(2);
        std::thread::sleep(Duration::from_secs(4));
        c.restart_broker(2);
    });

    // 2. Leadership moved by the operator, directly on the cluster: every partition's replica list
    //    rotated, then a preferred-leader election.
    let before = leaders(&cluster, "churn-kill9");
    churn_through(&tools, &gateway, &mut cluster, "moved", |c| {
        for topic in ["churn-kill9", "churn-moved"] {
            reassign(c, topic, &|p| {
                let first = (p + 1) % 3 + 1;
                vec![first, first % 3 + 1, (first + 1) % 3 + 1]
            });
            elect_preferred(c, topic);
        }
    });
    let after = leaders(&cluster, "churn-kill9");
    assert_ne!(before, after, "leadership did not move");
    a_stale_leader_points_the_client_at_the_gateways_port_for_the_new_one(
        &cluster,
        &gateway,
        "churn-moved",
    );

    // 3. A fourth broker (node id 4) joins and takes over half the leaders: clients reach it through
    //    the gateway's port for node 4 without the gateway being restarted.
    churn_through(&tools, &gateway, &mut cluster, "joined", |c| {
        c.add_broker(4);
        reassign(c, "churn-joined", &|p| {
            if p % 2 == 0 {
                vec![4, 1, 2]
            } else {
                vec![1, 2, 3]
            }
        });
        elect_preferred(c, "churn-joined");
    });
    assert!(
        leaders(&cluster, "churn-joined").contains(&4),
        "node 4 leads nothing"
    );
    let m = metadata(gateway.addr("plain"));
    assert!(
        brokers_seen(&m).contains(&(4, i32::from(gateway.broker_ports[0]) + 3)),
        "node 4 not advertised at its gateway port: {:?}",
        brokers_seen(&m)
    );

    // 4. The controller is killed and restarted; the brokers keep serving meanwhile.
    churn_through(&tools, &gateway, &mut cluster, "controller", |c| {
        c.kill_controller();
        std::thread::sleep(Duration::from_secs(4));
        c.restart_controller();
    });
}
