//! Virtual clusters and SNI routing (issue 14, items 1 and 2): one gateway fronting two Apache
//! Kafka clusters (3 brokers, and 1) through one TLS port routed by server name, beside a
//! port-per-broker listener; real clients (librdkafka, Java 4.4) resolve the test names on
//! loopback. Unknown, missing and mistaken server names get a TLS alert, never a default cluster.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::apache::*;
use common::hosts::LoopbackNames;
use common::*;

const EU: &str = "eu.kgw.localhost";
const US: &str = "us.kgw.localhost";

/// Both clusters' names on loopback: bootstrap, brokers 1-4, and two names no route has.
fn names() -> Vec<String> {
    let mut n = Vec::new();
    for d in [EU, US] {
        n.push(format!("bootstrap.{d}"));
        for id in 1..=4 {
            n.push(format!("broker-{id}.{d}"));
        }
        n.push(format!("broker-9.{d}"));
        n.push(format!("nope.{d}"));
    }
    n
}

/// The two-cluster config: `eu` (the 3-broker cluster, allow_all) with an SNI listener and a
/// port-per-broker listener; `us` (one broker, a policy allowing only `us-` topics and groups) on
/// the same SNI port.
/// The gateway's ports: the shared SNI port, the plain listener's bootstrap and broker range, admin.
#[derive(Clone, Copy)]
struct Ports {
    sni: u16,
    plain: u16,
    plain_base: u16,
    admin: u16,
}

fn config(dir: &Path, certs: &Certs, eu: &Upstream, us: &Upstream, ports: &Ports) -> String {
    let Ports {
        sni: sni_port,
        plain: plain_port,
        plain_base,
        admin,
    } = *ports;
    let policy = dir.join("us.policy");
    std::fs::write(
        &policy,
        "p, User:ANONYMOUS, Topic, us-*, All, *, allow\n\
         p, User:ANONYMOUS, Group, us-*, Read, *, allow\n\
         p, User:ANONYMOUS, Cluster, kafka-cluster, IdempotentWrite, *, allow\n\
         # One connection per 10 s from 127.0.0.9 (a young sensor counts 10 windows).\n\
         q, 127.0.0.9, -, connection_creation_rate, 0.1\n",
    )
    .expect("policy");
    let model = repo_root().join("policies/model.conf");
    let tls = format!(
        "cert_file = {:?}\nkey_file = {:?}\n",
        certs.server(),
        certs.server_key()
    );
    // One cluster: its upstream, authorization, SNI listener on the shared port, and `more`.
    let cluster = |name: &str, u: &Upstream, authz: &str, domain: &str, more: &str| {
        let servers: Vec<String> = u.bootstrap.iter().map(|s| format!("{s:?}")).collect();
        format!(
            "[[virtual_clusters]]\nname = \"{name}\"\n\
             [virtual_clusters.upstream]\nbootstrap_servers = [{}]\nmetadata_refresh = \"2s\"\n\
             [virtual_clusters.authorization]\n{authz}\n\
             [[virtual_clusters.listeners]]\nname = \"{name}-sni\"\nbind = \"127.0.0.1:{sni_port}\"\n\
             [virtual_clusters.listeners.tls]\n{tls}\n\
             [virtual_clusters.listeners.sni]\nbootstrap = \"bootstrap.{domain}\"\n\
             broker = \"broker-{{node_id}}.{domain}\"\n{more}\n",
            servers.join(", ")
        )
    };
    let plain = format!(
        "[[virtual_clusters.listeners]]\nname = \"eu-plain\"\nbind = \"127.0.0.1:{plain_port}\"\n\
         advertised_host = \"127.0.0.1\"\nbroker_port_base = {plain_base}\n\
         broker_port_count = 8\nnode_id_base = 1\n"
    );
    let us_authz = format!("model = {model:?}\npolicy_files = [{policy:?}]");
    format!(
        "{}{}[admin]\nbind = \"127.0.0.1:{admin}\"\n\n[audit]\ndir = {:?}\nlevel = \"all\"\n",
        cluster("eu", eu, "allow_all = true", EU, &plain),
        cluster("us", us, &us_authz, US, ""),
        dir.join("audit"),
    )
}

/// What a TLS client gets when it asks the SNI port for `server_name` (`None`: no SNI at all).
fn handshake(port: u16, ca: &Path, server_name: Option<&str>) -> Result<(), String> {
    handshake_from([127, 0, 0, 1].into(), port, ca, server_name)
}

/// [`handshake`] from the loopback address `src`.
fn handshake_from(
    src: std::net::Ipv4Addr,
    port: u16,
    ca: &Path,
    server_name: Option<&str>,
) -> Result<(), String> {
    let config = kafka_gateway::tls::client_config(Some(ca), None).expect("client config");
    let name = match server_name {
        Some(n) => rustls::pki_types::ServerName::try_from(n.to_string()).expect("name"),
        // rustls sends no SNI for an IP address.
        None => {
            rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into())
        }
    };
    let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tcp: TcpStream = connect_from(src, SocketAddr::from(([127, 0, 0, 1], port)))
        .expect("connect")
        .stream;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    // Something must come back over the routed connection: an ApiVersions answer.
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    tls.write_all(&[
        0, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 1, 0, 4, b't', b'e', b's', b't',
    ])
    .map_err(|e| e.to_string())?;
    let mut len = [0u8; 4];
    tls.read_exact(&mut len).map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn two_clusters_behind_one_sni_port_with_a_port_per_broker_listener_beside_it() {
    let tools = tools();
    let dir = TempDir::new("vclusters");
    let _names = LoopbackNames::add(&names());
    let certs = dev_certs_for(
        &dir.path().join("certs"),
        &[&format!("*.{EU}"), &format!("*.{US}")],
    );
    let eu = KafkaMultiCluster::start(3, ClusterOptions::default());
    let us = KafkaCluster::start();
    let ports = Ports {
        sni: free_port(),
        plain: free_port(),
        plain_base: free_port_range(8),
        admin: free_port(),
    };
    let (sni_port, plain_port, plain_base, admin) =
        (ports.sni, ports.plain, ports.plain_base, ports.admin);
    let text = config(dir.path(), &certs, &eu.upstream(), &us.upstream(), &ports);
    let gw = Gateway::start(dir.path(), &text, vec![plain_base], admin);
    let ca = certs.ca();
    let ca = ca.to_str().expect("utf-8");
    let eu_boot = format!("bootstrap.{EU}:{sni_port}");
    let us_boot = format!("bootstrap.{US}:{sni_port}");
    let eu_rt = format!("roundtrip --bootstrap {eu_boot} --tls-ca {ca}");
    let us_rt = format!("roundtrip --bootstrap {us_boot} --tls-ca {ca}");

    // librdkafka through eu's SNI route: every broker is advertised by name on the one port.
    let m = python_workload(
        &tools,
        &words(&format!("metadata --bootstrap {eu_boot} --tls-ca {ca}")),
    );
    let mut brokers: Vec<String> = m["brokers"]
        .as_array()
        .expect("brokers")
        .iter()
        .map(|b| format!("{}:{}", b["host"].as_str().unwrap_or("?"), b["port"]))
        .collect();
    brokers.sort();
    let want: Vec<String> = (1..=3)
        .map(|id| format!("broker-{id}.{EU}:{sni_port}"))
        .collect();
    assert_eq!(brokers, want, "{m}");
    let r = python_workload(
        &tools,
        &words(&format!(
            "{eu_rt} --topic eu-orders --count 2000 --group eu-g --partitions 6 --replication 3"
        )),
    );
    assert_roundtrip("eu over SNI", &r, 2000);

    // Java 4.4 through us's route on the same port: node 1 there is another broker than eu's 1.
    let j = java44_workload(
        &tools,
        &words(&format!(
            "{us_rt} --topic us-orders --count 1000 --group us-g"
        )),
    );
    assert_roundtrip("us over SNI (Java)", &j, 1000);
    let m = python_workload(
        &tools,
        &words(&format!("metadata --bootstrap {us_boot} --tls-ca {ca}")),
    );
    let topics: Vec<&str> = m["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(topics.contains(&"us-orders"), "{m}");
    assert!(!topics.contains(&"eu-orders"), "us sees eu's cluster: {m}");
    assert_eq!(
        m["brokers"][0]["host"].as_str(),
        Some(format!("broker-1.{US}").as_str()),
        "{m}"
    );
    // us has its own policy: a topic outside us-* is denied there (eu allows everything).
    let denied = common::kafka::python_workload_outcome(
        &tools,
        &words(&format!(
            "{us_rt} --topic eu-orders --count 10 --timeout 15"
        )),
    );
    assert!(
        !denied.success
            && denied.json["error"]
                .as_str()
                .is_some_and(|e| e.contains("TOPIC_AUTHORIZATION_FAILED")),
        "us's policy did not apply: {}",
        denied.json
    );

    // The port-per-broker listener beside it still works, to the same eu cluster.
    let plain = format!("127.0.0.1:{plain_port}");
    let r = python_workload(
        &tools,
        &words(&format!(
            "roundtrip --bootstrap {plain} --topic eu-orders --count 500 --group eu-plain-g"
        )),
    );
    assert_eq!(
        r["consumed"].as_u64(),
        Some(500),
        "eu over the plain listener: {r}"
    );

    // Names no route has: an unrecognized_name alert, no default cluster.
    for bad in [
        Some(format!("nope.{EU}")),
        Some(format!("broker-9.{EU}")),
        Some(format!("broker-01.{EU}")),
        Some(format!("bootstrap.other.{EU}")),
        None,
    ] {
        let got = handshake(sni_port, &certs.ca(), bad.as_deref());
        let err = got.expect_err(&format!("{bad:?} was served"));
        assert!(
            err.contains("UnrecognisedName") || err.contains("UnrecognizedName"),
            "{bad:?}: {err}"
        );
    }
    // The known names do complete (the same helper is not simply failing).
    handshake(sni_port, &certs.ca(), Some(&format!("bootstrap.{US}"))).expect("us bootstrap");
    handshake(sni_port, &certs.ca(), Some(&format!("broker-2.{EU}"))).expect("eu broker 2");
    let log = gw.log_text();
    assert!(
        log.contains("TLS server name matches no listener or known broker"),
        "{}",
        tail(&log, 3000)
    );
    let metrics = gw.metrics();
    for want in [
        "kafka_gateway_connections_total{listener=\"eu-sni\",virtual_cluster=\"eu\"}",
        "kafka_gateway_connections_total{listener=\"us-sni\",virtual_cluster=\"us\"}",
        "kafka_gateway_connections_total{listener=\"eu-plain\",virtual_cluster=\"eu\"}",
        "kafka_gateway_virtual_cluster_requests_total{virtual_cluster=\"eu\",api=\"Produce\"}",
        "kafka_gateway_virtual_cluster_requests_total{virtual_cluster=\"us\",api=\"Produce\"}",
        "kafka_gateway_virtual_cluster_response_bytes_total{virtual_cluster=\"us\",api=\"Fetch\"}",
    ] {
        assert!(metrics.contains(want), "no {want}:\n{metrics}");
    }
    assert!(
        metric_sum(&metrics, "kafka_gateway_connections_rejected_total") >= 5,
        "{metrics}"
    );

    // Every connection's audit records name its virtual cluster; refused names are recorded
    // against the port.
    let trail = || {
        trail_files(&dir.path().join("audit"))
            .into_iter()
            .map(|f| std::fs::read_to_string(f).expect("trail"))
            .collect::<String>()
    };
    // Records nobody waits for reach the file within the writer's linger.
    eventually("the refusals in the trail", Duration::from_secs(5), || {
        trail().contains("tls_unknown_server_name")
    });
    let lines = trail();
    for (listener, vc) in [("eu-sni", "eu"), ("us-sni", "us"), ("eu-plain", "eu")] {
        let want = format!("\"listener\":\"{listener}\",\"virtual_cluster\":\"{vc}\"");
        assert!(lines.contains(&want), "no record with {want}");
    }
    assert!(
        lines.contains("tls_unknown_server_name"),
        "refusals not audited"
    );
    assert!(
        lines.contains("\"event\":\"reload\"") && lines.contains("\"virtual_cluster\":\"us\""),
        "us's policy start record"
    );

    // On a shared port the route's quotas decide, before the rest of the handshake: us allows
    // 127.0.0.9 one connection per 10 s, eu (no quotas) any number from there.
    let us_boot = format!("bootstrap.{US}");
    let src = std::net::Ipv4Addr::new(127, 0, 0, 9);
    handshake_from(src, sni_port, &certs.ca(), Some(&us_boot)).expect("the first is admitted");
    let started = std::time::Instant::now();
    let refused = handshake_from(src, sni_port, &certs.ca(), Some(&us_boot));
    assert!(
        refused.is_err(),
        "a second connection within the rate was served"
    );
    assert!(
        started.elapsed() > Duration::from_millis(300),
        "refused at once rather than held for the throttle: {refused:?} in {:?}",
        started.elapsed()
    );
    for _ in 0..3 {
        handshake_from(src, sni_port, &certs.ca(), Some(&format!("bootstrap.{EU}")))
            .expect("eu has no connection quota");
    }
    gw.wait_for_metric(
        "kafka_gateway_connections_rejected_total{reason=\"connection_creation_rate\"}",
    );
    eventually(
        "the connection rate's record",
        Duration::from_secs(5),
        || trail().contains("\"quota\":\"connection_creation_rate\""),
    );
}

/// A gateway with one virtual cluster, `main`, in front of `upstream`: a port-per-broker
/// listener (4 ports from the returned base, node ids from 1) and an audit trail in `dir/audit`.
fn switchable_gateway(dir: &Path, upstream: &KafkaCluster) -> (Gateway, u16) {
    let (bind, base, admin) = (free_port(), free_port_range(4), free_port());
    let text = format!(
        "[[virtual_clusters]]\nname = \"main\"\n\
         [virtual_clusters.upstream]\nbootstrap_servers = [{:?}]\nmetadata_refresh = \"2s\"\n\
         [virtual_clusters.authorization]\nallow_all = true\n\
         [[virtual_clusters.listeners]]\nname = \"main\"\nbind = \"127.0.0.1:{bind}\"\n\
         advertised_host = \"127.0.0.1\"\nbroker_port_base = {base}\nbroker_port_count = 4\nnode_id_base = 1\n\n\
         [admin]\nbind = \"127.0.0.1:{admin}\"\n[audit]\ndir = {:?}\n",
        upstream.addr(),
        dir.join("audit"),
    );
    (Gateway::start(dir, &text, vec![base], admin), base)
}

/// `kafka-gateway cluster switch main --to <to>` on the gateway's own config file.
fn switch_to(gw: &Gateway, to: &KafkaCluster) {
    let out = gateway_cli(
        &[
            "cluster",
            "switch",
            "main",
            "--to",
            &to.addr(),
            "--config",
            gw.config.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(out.ok, "cluster switch: {}", out.stderr);
}

/// Switchover (issue 14, item 4): `kafka-gateway cluster switch` points a virtual cluster at
/// another Apache Kafka cluster while clients are connected. A request in flight is answered, then
/// every old connection closes; new connections reach the other cluster; the switch is recorded.
#[test]
fn a_switch_drains_old_connections_and_sends_new_ones_to_the_other_cluster() {
    let tools = tools();
    let dir = TempDir::new("switch");
    let (a, b) = (KafkaCluster::start(), KafkaCluster::start());
    let (gw, base) = switchable_gateway(dir.path(), &a);
    let addr = gw.addr("main");
    let before = python_workload(
        &tools,
        &words(&format!(
            "roundtrip --bootstrap {addr} --topic before --count 100"
        )),
    );
    assert_roundtrip("before the switch", &before, 100);

    // Two connections to the broker port: one idle, one with a Fetch waiting 3 s for records.
    let broker = std::net::SocketAddr::from(([127, 0, 0, 1], base));
    let mut idle = RawClient::connect(broker);
    let _: kafka_protocol::messages::ApiVersionsResponse = idle.request(
        kafka_protocol::messages::ApiKey::ApiVersions,
        3,
        &api_versions_request(),
    );
    let mut busy = RawClient::connect(broker);
    let mut fetch =
        common::kafka::fetch_request(vec![common::kafka::fetch_topic_by_name("before", &[0])]);
    fetch.max_wait_ms = 3000;
    fetch.topics[0].partitions[0].fetch_offset = 1_000_000; // past the end: nothing to return
    let (_, frame) = busy.encode(kafka_protocol::messages::ApiKey::Fetch, 12, &fetch);
    busy.send_raw(&frame).expect("send fetch");
    std::thread::sleep(Duration::from_millis(300));

    switch_to(&gw, &b);
    // The waiting Fetch is answered (its 3 s run out on the old cluster), then the connection closes.
    let answered = busy.read_frame().expect("the in-flight Fetch is answered");
    assert!(answered.len() > 8, "{answered:?}");
    assert!(
        busy.is_closed_within(Duration::from_secs(10)),
        "old connection left open"
    );
    assert!(
        idle.is_closed_within(Duration::from_secs(10)),
        "idle old connection left open"
    );

    // New connections reach b: its cluster id, and a topic that exists only there.
    eventually("the gateway ready on b", Duration::from_secs(20), || {
        http_get(gw.admin, "/readyz").is_some_and(|(c, _)| c == 200)
    });
    let mut c = RawClient::connect(addr);
    let m = common::kafka::metadata(&mut c, None, false);
    assert_eq!(
        m.cluster_id.map(|c| c.to_string()),
        Some(b.cluster_id.clone())
    );
    let after = python_workload(
        &tools,
        &words(&format!(
            "roundtrip --bootstrap {addr} --topic after --count 100"
        )),
    );
    assert_roundtrip("after the switch", &after, 100);
    let java = java44_workload(
        &tools,
        &words(&format!(
            "roundtrip --bootstrap {addr} --topic after-java --count 100"
        )),
    );
    assert_roundtrip("after the switch (Java)", &java, 100);
    let mut on_a = RawClient::connect(a.socket(KafkaListener::Plaintext));
    assert!(
        !common::kafka::topic_exists(&mut on_a, "after"),
        "written to the old cluster"
    );
    let mut on_b = RawClient::connect(b.socket(KafkaListener::Plaintext));
    assert!(common::kafka::topic_exists(&mut on_b, "after"));

    eventually("the switch in the trail", Duration::from_secs(5), || {
        trail_files(&dir.path().join("audit")).iter().any(|f| {
            let t = std::fs::read_to_string(f).unwrap_or_default();
            t.contains("\"event\":\"upstream_switch\"") && t.contains(&b.addr())
        })
    });
    let metrics = gw.metrics();
    assert!(
        metrics.contains("kafka_gateway_upstream_switches_total{virtual_cluster=\"main\"} 1"),
        "{metrics}"
    );
}

/// MirrorMaker 2 (its own JVM), killed when dropped.
struct MirrorMaker(std::process::Child);

impl Drop for MirrorMaker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// MM2 replicating every topic and consumer group offset from `a` to `b`, names unchanged
/// (IdentityReplicationPolicy), syncing group offsets every second.
fn mirror(tools: &Tools, dir: &Path, a: &KafkaCluster, b: &KafkaCluster) -> MirrorMaker {
    let props = dir.join("mm2.properties");
    let internal_rf = [
        "replication.factor",
        "checkpoints.topic.replication.factor",
        "heartbeats.topic.replication.factor",
        "offset-syncs.topic.replication.factor",
        "offset.storage.replication.factor",
        "status.storage.replication.factor",
        "config.storage.replication.factor",
    ]
    .map(|k| format!("{k} = 1\n"))
    .concat();
    std::fs::write(
        &props,
        format!(
            "clusters = a, b\na.bootstrap.servers = {}\nb.bootstrap.servers = {}\n\
             a->b.enabled = true\na->b.topics = .*\na->b.groups = .*\nb->a.enabled = false\n\
             replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n\
             sync.group.offsets.enabled = true\nsync.group.offsets.interval.seconds = 1\n\
             emit.checkpoints.interval.seconds = 1\nrefresh.topics.interval.seconds = 1\n\
             refresh.groups.interval.seconds = 1\noffset.lag.max = 0\n{internal_rf}",
            a.addr(),
            b.addr()
        ),
    )
    .expect("mm2.properties");
    let log = std::fs::File::create(dir.join("mm2.log")).expect("mm2 log");
    let child = std::process::Command::new("java")
        .args(["-Xmx384m", "-XX:TieredStopAtLevel=1", "-cp", &tools.mm2_cp])
        .arg("org.apache.kafka.connect.mirror.MirrorMaker")
        .arg(&props)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start MirrorMaker 2");
    MirrorMaker(child)
}

/// The committed offsets of `group` (OffsetFetch v7), summed over its partitions of `topic`.
fn committed(c: &mut RawClient, group: &str, topic: &str) -> i64 {
    use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(kafka_protocol::protocol::StrBytes::from_string(
            group.to_string(),
        )))
        .with_topics(None);
    let resp: OffsetFetchResponse =
        c.request(kafka_protocol::messages::ApiKey::OffsetFetch, 7, &req);
    resp.topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .map(|p| p.committed_offset.max(0))
        .sum()
}

/// Switchover with MirrorMaker 2 (issue 14, item 4): a consumer group reads `orders` on cluster a
/// through the gateway; MM2 mirrors the topic and translates the group's offsets to b; after the
/// switch the same group, through the same gateway address, continues on b where it stopped:
/// it reads only what was produced after the switch.
#[test]
fn after_a_switch_to_a_mirror_a_consumer_group_continues_where_it_stopped() {
    let tools = tools();
    let dir = TempDir::new("switch-mm2");
    let (a, b) = (KafkaCluster::start(), KafkaCluster::start());
    let (gw, _) = switchable_gateway(dir.path(), &a);
    let addr = gw.addr("main");
    let before = python_workload(
        &tools,
        &words(&format!(
            "roundtrip --bootstrap {addr} --topic orders --count 200 --group readers"
        )),
    );
    assert_roundtrip("on cluster a", &before, 200);
    let mut on_a = RawClient::connect(a.socket(KafkaListener::Plaintext));
    let committed_a = committed(&mut on_a, "readers", "orders");
    assert_eq!(committed_a, 200, "the group committed everything on a");

    let _mm2 = mirror(&tools, dir.path(), &a, &b);
    let mut on_b = RawClient::connect(b.socket(KafkaListener::Plaintext));
    eventually(
        "MirrorMaker 2 mirrored the topic and translated the group's offsets to b",
        Duration::from_secs(120),
        || committed(&mut on_b, "readers", "orders") == committed_a,
    );

    switch_to(&gw, &b);
    eventually("the gateway on b", Duration::from_secs(20), || {
        let mut c = RawClient::connect(addr);
        common::kafka::metadata(&mut c, None, false)
            .cluster_id
            .is_some_and(|id| id.as_str() == b.cluster_id)
    });
    // The same group through the same address: only the 50 records produced after the switch,
    // none of the 200 it had read before (they are on b too, mirrored).
    let after = python_workload(
        &tools,
        &words(&format!(
            "roundtrip --bootstrap {addr} --topic orders --count 50 --group readers --settle 3"
        )),
    );
    assert_roundtrip("on cluster b", &after, 50);
    assert_eq!(
        after["stale_ignored"].as_u64(),
        Some(0),
        "re-read mirrored records: {after}"
    );
}
