//! Tenants inside one cluster (issue 14, item 3): two virtual clusters map their names onto one
//! Apache Kafka cluster under `acme.` and `globex.`; real clients (librdkafka, Java) see only
//! their own topics, groups and transactional ids, under their own names and cluster id, and the
//! names and ids that try to reach the other tenant land in their own namespace or nowhere.

mod common;

use std::path::Path;
use std::time::Duration;

use common::apache::*;
use common::kafka::*;
use common::*;
use kafka_protocol::messages::*;

/// Both tenants' listeners and one policy file (in the tenants' names) for both.
fn config(dir: &Path, kafka: &Upstream, admin: u16) -> (String, Vec<(String, u16)>) {
    let policy = dir.join("tenant.policy");
    std::fs::write(
        &policy,
        "p, User:*, Topic, *, All, *, allow\n\
         p, User:*, Group, *, All, *, allow\n\
         p, User:*, TransactionalId, *, All, *, allow\n\
         p, User:*, Cluster, kafka-cluster, IdempotentWrite, *, allow\n\
         p, User:*, Cluster, kafka-cluster, Describe, *, allow\n",
    )
    .expect("policy");
    let model = repo_root().join("policies/model.conf");
    let servers: Vec<String> = kafka.bootstrap.iter().map(|s| format!("{s:?}")).collect();
    let mut text = String::new();
    let mut ports = Vec::new();
    for tenant in ["acme", "globex"] {
        let (bind, base) = (free_port(), free_port_range(kafka.node_count));
        ports.push((tenant.to_string(), base));
        text.push_str(&format!(
            "[[virtual_clusters]]\nname = \"{tenant}\"\n\
             [virtual_clusters.tenant]\nprefix = \"{tenant}.\"\n\
             [virtual_clusters.upstream]\nbootstrap_servers = [{servers}]\n\
             [virtual_clusters.authorization]\nmodel = {model:?}\npolicy_files = [{policy:?}]\n\
             [[virtual_clusters.listeners]]\nname = \"{tenant}\"\nbind = \"127.0.0.1:{bind}\"\n\
             advertised_host = \"127.0.0.1\"\nbroker_port_base = {base}\n\
             broker_port_count = {count}\nnode_id_base = {node}\n\n",
            servers = servers.join(", "),
            count = kafka.node_count,
            node = kafka.node_id_base,
        ));
    }
    text.push_str(&format!(
        "[admin]\nbind = \"127.0.0.1:{admin}\"\n[audit]\nlevel = \"all\"\ndir = {:?}\n",
        dir.join("audit")
    ));
    (text, ports)
}

#[test]
fn two_tenants_share_one_kafka_cluster_and_never_see_each_other() {
    let tools = tools();
    let dir = TempDir::new("tenants");
    let kafka = KafkaCluster::start();
    let admin = free_port();
    let (text, ports) = config(dir.path(), &kafka.upstream(), admin);
    let gw = Gateway::start(
        dir.path(),
        &text,
        ports.iter().map(|(_, p)| *p).collect(),
        admin,
    );
    let (acme, globex) = (gw.addr("acme"), gw.addr("globex"));

    // The same names in both tenants are different topics, groups and records.
    for (addr, n) in [(acme, 600), (globex, 400)] {
        let r = python_workload(
            &tools,
            &words(&format!(
                "roundtrip --bootstrap {addr} --topic orders --count {n} --group readers"
            )),
        );
        assert_roundtrip(&addr.to_string(), &r, n);
    }
    // Java (4.4) transactions in acme: the transactional id is acme's on the broker.
    let j = java44_workload(
        &tools,
        &words(&format!(
            "txn --bootstrap {acme} --topic payments --transactional-id pay-1 --transactions 4"
        )),
    );
    assert_eq!(j["read_committed_missing"].as_u64(), Some(0), "{j}");
    assert_eq!(j["read_committed_saw_aborted"].as_u64(), Some(0), "{j}");

    // On the cluster itself: everything under the tenants' prefixes, nothing unprefixed.
    let mut direct = RawClient::connect(kafka.socket(KafkaListener::Plaintext));
    let all = listed_topics(&metadata(&mut direct, None, false));
    for want in ["acme.orders", "globex.orders", "acme.payments"] {
        assert!(
            all.iter().any(|t| t == want),
            "{want} missing on the broker: {all:?}"
        );
    }
    assert!(
        !all.iter().any(|t| t == "orders" || t == "payments"),
        "{all:?}"
    );
    let groups: ListGroupsResponse =
        direct.request(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
    let gids: Vec<String> = groups
        .groups
        .iter()
        .map(|g| g.group_id.0.to_string())
        .collect();
    assert!(gids.contains(&"acme.readers".to_string()), "{gids:?}");
    assert!(gids.contains(&"globex.readers".to_string()), "{gids:?}");

    // Through acme: its own topics by its own names, its own cluster id, no internal topics.
    let mut c = RawClient::connect(acme);
    let m = metadata(&mut c, None, false);
    let seen = listed_topics(&m);
    assert!(
        seen.contains(&"orders".to_string()) && seen.contains(&"payments".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|t| !t.starts_with("globex") && !t.starts_with("acme") && !t.starts_with("__")),
        "acme sees beyond itself: {seen:?}"
    );
    assert_eq!(
        m.cluster_id.as_ref().map(|c| c.to_string()),
        Some("acme".into())
    );
    let groups: ListGroupsResponse =
        c.request(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
    let gids: Vec<String> = groups
        .groups
        .iter()
        .map(|g| g.group_id.0.to_string())
        .collect();
    assert!(gids.contains(&"readers".to_string()), "{gids:?}");
    assert!(
        gids.iter()
            .all(|g| !g.contains("globex") && !g.starts_with("acme")),
        "{gids:?}"
    );

    // Names that try to escape land inside acme: "globex.orders" is acme's "acme.globex.orders".
    let r = python_workload(
        &tools,
        &words(&format!(
            "roundtrip --bootstrap {acme} --topic globex.orders --count 20"
        )),
    );
    assert_eq!(r["consumed"].as_u64(), Some(20), "{r}");
    let all = listed_topics(&metadata(&mut direct, None, false));
    assert!(all.contains(&"acme.globex.orders".to_string()), "{all:?}");
    assert_eq!(
        record_count(&mut direct, "globex.orders"),
        400,
        "globex's topic was written through acme"
    );

    // A regex subscription (KIP-848: the broker evaluates it) matches acme's topics only:
    // acme's `orders` (600 earlier records) and `globex.orders` (20), never globex's own 400.
    let r = python_workload(
        &tools,
        &words(&format!(
            "roundtrip --bootstrap {acme} --topic orders --count 30 --group regex-readers \
             --subscribe ^.*orders$ --settle 5 --timeout 30 --consumer-extra group.protocol=consumer"
        )),
    );
    assert_eq!(r["consumed"].as_u64(), Some(30), "{r}");
    assert_eq!(
        r["stale_ignored"].as_u64(),
        Some(620),
        "records beyond acme's: {r}"
    );
    let topics: Vec<&str> = r["topics_seen"]
        .as_array()
        .expect("topics")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert_eq!(topics, ["globex.orders", "orders"], "{r}");

    // Another tenant's topic id is unknown to acme: answered by the gateway, never forwarded.
    let ids = topic_ids(&mut direct);
    let globex_id = ids["globex.orders"];
    let acme_id = ids["acme.orders"];
    let fetched = fetch_by_id(&mut c, &[globex_id, acme_id]);
    let code = |id| {
        fetched
            .responses
            .iter()
            .find(|t| t.topic_id == id)
            .map(|t| t.partitions[0].error_code)
    };
    assert_eq!(
        code(globex_id),
        Some(100),
        "UNKNOWN_TOPIC_ID for globex's id: {fetched:?}"
    );
    assert_eq!(code(acme_id), Some(0), "acme's own id works: {fetched:?}");
    let by_id = metadata_by_id(&mut c, &[globex_id]);
    assert_eq!(by_id.topics[0].error_code, 100, "{by_id:?}");
    assert!(by_id.topics[0].name.is_none(), "the name leaked: {by_id:?}");

    // The audit trail and metrics name the tenant's virtual cluster; decisions are in its names.
    eventually(
        "acme's records in the trail",
        Duration::from_secs(5),
        || {
            trail_files(&dir.path().join("audit")).iter().any(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .contains("\"virtual_cluster\":\"acme\"")
            })
        },
    );
    let m = gw.metrics();
    assert!(m.contains("virtual_cluster=\"globex\""), "{m}");
}

/// Records in partitions 0-2 of a broker topic, read from the start.
fn record_count(c: &mut RawClient, broker_topic: &str) -> usize {
    let req = fetch_request(vec![fetch_topic_by_name(broker_topic, &[0, 1, 2])]);
    let resp: FetchResponse = c.request(ApiKey::Fetch, 12, &req);
    (0..3)
        .map(|p| record_values(&fetched(&resp, broker_topic, p).records).len())
        .sum()
}
