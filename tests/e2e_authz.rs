//! Authorization end to end (SECURITY-SCENARIOS 1-32): SCRAM users behind a SASL listener, a Kafka-vocabulary
//! policy file, and a fresh Apache Kafka 4.4 cluster per test. Each scenario checks the exact error codes a Kafka broker with the
//! same ACLs would return, and that allowed parts of a request really reach the broker. Policy reload and
//! real clients (librdkafka, Java) under allowing and denying policies close the file.
//!
//! `admin` is a super user: it sets the broker up (topics, records, committed offsets) and checks what
//! exists upstream afterwards.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::apache::*;
use common::kafka::*;
use common::sasl::login;
use common::*;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use uuid::Uuid;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const UNKNOWN_TOPIC_ID: i16 = 100;

/// Kafka's DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;

/// FindCoordinator key types.
const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

const LISTENER: ListenerSpec = ListenerSpec {
    name: "sasl",
    tls: false,
    client_auth: "none",
    sasl: r#""SCRAM-SHA-256""#,
};

const USERS: [&str; 4] = ["admin", "alice", "bob", "carol"];

fn password(user: &str) -> String {
    format!("{user}-secret")
}

/// How long a policy change may take to reach open connections: the 0.5 s poll and 0.5 s settle time,
/// with room for a busy host.
const RELOAD_WITHIN: Duration = Duration::from_secs(8);

struct Setup {
    _dir: TempDir,
    _broker: KafkaCluster,
    gateway: Gateway,
    tools: Tools,
    policy: PathBuf,
}

/// A broker, the users admin/alice/bob/carol, `policy` as the only policy file (admin is a super user),
/// and a gateway with one plaintext SCRAM-SHA-256 listener enforcing it.
fn authz_setup(policy: &str) -> Setup {
    let tools = tools();
    let dir = TempDir::new("authz");
    let broker = KafkaCluster::start();
    let users = dir.path().join("users.toml");
    for user in USERS {
        add_scram_user(
            &users,
            user,
            &password(user),
            &["SCRAM-SHA-256", "SCRAM-SHA-512"],
        );
    }
    let shipped_model = repo_root().join("policies/model.conf");
    let model = dir.path().join("model.conf");
    std::fs::copy(&shipped_model, &model).unwrap_or_else(|e| {
        panic!(
            "copy the shipped casbin model {}: {e}",
            shipped_model.display()
        )
    });
    let policy_file = dir.path().join("acl.policy");
    std::fs::write(&policy_file, policy).expect("write policy");
    let extra = format!(
        "[authentication]\ncredentials_file = {users:?}\ntimeout = \"5s\"\n\n\
         [authorization]\nmodel = {model:?}\npolicy_files = [{policy_file:?}]\n\
         super_users = [\"User:admin\"]\n"
    );
    let (text, ports, admin) = gateway_config(&broker.upstream(), &[LISTENER], None, &extra);
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    Setup {
        _dir: dir,
        _broker: broker,
        gateway,
        tools,
        policy: policy_file,
    }
}

impl Setup {
    /// A raw connection logged in as `user` with SCRAM-SHA-256.
    fn client(&self, user: &str) -> RawClient {
        let mut c = RawClient::connect(self.gateway.addr(LISTENER.name));
        let l = login(&mut c, "SCRAM-SHA-256", user, &password(user));
        assert_eq!(l.error_code(), 0, "login as {user}: {}", l.message());
        c
    }

    fn admin(&self) -> RawClient {
        self.client("admin")
    }

    fn bootstrap(&self) -> String {
        self.gateway.addr(LISTENER.name).to_string()
    }

    fn write_policy(&self, text: &str) {
        std::fs::write(&self.policy, text).expect("write policy");
    }
}

/// The API keys the gateway offers this (logged-in) connection.
fn offered_apis(c: &mut RawClient) -> Vec<i16> {
    let resp: ApiVersionsResponse = c.request(ApiKey::ApiVersions, 3, &api_versions_request());
    assert_eq!(resp.error_code, 0);
    resp.api_keys.iter().map(|a| a.api_key).collect()
}

/// Sends a request that the gateway must refuse by closing the connection, without any response.
fn assert_refused_with_close<T: kafka_protocol::protocol::Encodable>(
    c: &mut RawClient,
    api: ApiKey,
    version: i16,
    body: &T,
) {
    let (_, frame) = c.encode(api, version, body);
    c.send_raw(&frame).expect("send");
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "{api:?} v{version} left the connection open"
    );
}

fn init_producer_id(c: &mut RawClient, transactional_id: Option<&str>) -> InitProducerIdResponse {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = transactional_id.map(txn_id);
    req.transaction_timeout_ms = 60_000;
    req.producer_id = ProducerId(-1);
    req.producer_epoch = -1;
    c.request(ApiKey::InitProducerId, 4, &req)
}

/// FindCoordinator for one key: v3 puts the error at the top level, v4+ in the coordinator entry.
fn find_coordinator(c: &mut RawClient, version: i16, key_type: i8, key: &str) -> i16 {
    let mut req = FindCoordinatorRequest::default();
    req.key_type = key_type;
    if version < 4 {
        req.key = sb(key);
    } else {
        req.coordinator_keys = vec![sb(key)];
    }
    let resp: FindCoordinatorResponse = c.request(ApiKey::FindCoordinator, version, &req);
    if version < 4 {
        resp.error_code
    } else {
        assert_eq!(resp.coordinators.len(), 1, "{resp:?}");
        assert_eq!(resp.coordinators[0].key.as_str(), key);
        resp.coordinators[0].error_code
    }
}

/// OffsetFetch v8 for one group; `partitions` None asks for every committed partition.
fn offset_fetch_v8(
    c: &mut RawClient,
    group_id: &str,
    partitions: Option<&[(&str, i32)]>,
) -> offset_fetch_response::OffsetFetchResponseGroup {
    let mut g = OffsetFetchRequestGroup::default();
    g.group_id = group(group_id);
    g.topics = partitions.map(|ps| {
        let mut topics: Vec<OffsetFetchRequestTopics> = Vec::new();
        for (name, p) in ps {
            match topics.iter_mut().find(|t| t.name == topic(name)) {
                Some(t) => t.partition_indexes.push(*p),
                None => {
                    let mut t = OffsetFetchRequestTopics::default();
                    t.name = topic(name);
                    t.partition_indexes = vec![*p];
                    topics.push(t);
                }
            }
        }
        topics
    });
    let mut req = OffsetFetchRequest::default();
    req.groups = vec![g];
    let resp: OffsetFetchResponse = c.request(ApiKey::OffsetFetch, 8, &req);
    assert_eq!(resp.groups.len(), 1, "{resp:?}");
    resp.groups.into_iter().next().expect("one group")
}

/// OffsetFetch v7 (single group, top-level error) for one group.
fn offset_fetch_v7(
    c: &mut RawClient,
    group_id: &str,
    partitions: Option<&[(&str, i32)]>,
) -> OffsetFetchResponse {
    let mut req = OffsetFetchRequest::default();
    req.group_id = group(group_id);
    req.topics = partitions.map(|ps| {
        ps.iter()
            .map(|(name, p)| {
                let mut t = OffsetFetchRequestTopic::default();
                t.name = topic(name);
                t.partition_indexes = vec![*p];
                t
            })
            .collect()
    });
    c.request(ApiKey::OffsetFetch, 7, &req)
}

/// (topic, partition) -> (committed offset, error) of an OffsetFetch v8 group result.
fn committed_v8(
    g: &offset_fetch_response::OffsetFetchResponseGroup,
) -> Vec<(String, i32, i64, i16)> {
    g.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )
            })
        })
        .collect()
}

fn committed_v7(r: &OffsetFetchResponse) -> Vec<(String, i32, i64, i16)> {
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )
            })
        })
        .collect()
}

fn delete_topics(c: &mut RawClient, names: &[&str]) -> Vec<(String, i16)> {
    let mut req = DeleteTopicsRequest::default();
    req.topics = names
        .iter()
        .map(|n| {
            let mut t = delete_topics_request::DeleteTopicState::default();
            t.name = Some(topic(n));
            t
        })
        .collect();
    req.timeout_ms = 10_000;
    let resp: DeleteTopicsResponse = c.request(ApiKey::DeleteTopics, 6, &req);
    resp.responses
        .iter()
        .map(|r| {
            (
                r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                r.error_code,
            )
        })
        .collect()
}

fn describe_configs(c: &mut RawClient, resources: &[(i8, &str)]) -> Vec<(i8, String, i16)> {
    let mut req = DescribeConfigsRequest::default();
    req.resources = resources
        .iter()
        .map(|(t, n)| {
            let mut r = DescribeConfigsResource::default();
            r.resource_type = *t;
            r.resource_name = sb(n);
            r.configuration_keys = None;
            r
        })
        .collect();
    let resp: DescribeConfigsResponse = c.request(ApiKey::DescribeConfigs, 4, &req);
    resp.results
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string(), r.error_code))
        .collect()
}

fn error_for(results: &[(i8, String, i16)], rtype: i8, name: &str) -> i16 {
    results
        .iter()
        .find(|(t, n, _)| *t == rtype && n == name)
        .unwrap_or_else(|| panic!("no result for {rtype}/{name}: {results:?}"))
        .2
}

fn error_of(results: &[(String, i16)], name: &str) -> i16 {
    results
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no result for {name}: {results:?}"))
        .1
}

/// The one topic of a Metadata response.
fn only_topic(resp: &MetadataResponse) -> &metadata_response::MetadataResponseTopic {
    assert_eq!(resp.topics.len(), 1, "{resp:?}");
    &resp.topics[0]
}

fn metadata_error(c: &mut RawClient, name: &str) -> i16 {
    only_topic(&metadata(c, Some(&[name]), false)).error_code
}

fn fetch_error(c: &mut RawClient, name: &str) -> i16 {
    fetched(&fetch_by_name(c, &[name]), name, 0).error_code
}

// ---------------------------------------------------------------------------------------------------------
// Produce and transactions
// ---------------------------------------------------------------------------------------------------------

#[test]
fn scenario_01_produce_without_write_is_denied_with_29() {
    let s = authz_setup(
        "# on t1 alice holds nothing, bob only DESCRIBE, carol only READ; alice may write t2\n\
         p, User:bob, Topic, t1, Describe, *, allow\n\
         p, User:carol, Topic, t1, Read, *, allow\n\
         p, User:alice, Topic, t2, Write, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1", "t2"], 1);
    for user in ["alice", "bob", "carol"] {
        let mut c = s.client(user);
        let resp = produce(&mut c, None, &[("t1", 0, record_batch(&[user], None))]);
        assert_eq!(
            produce_error(&resp, "t1", 0),
            TOPIC_AUTHORIZATION_FAILED,
            "{user}: {resp:?}"
        );
    }
    // Nothing reached the broker.
    let resp = fetch_by_name(&mut admin, &["t1"]);
    assert_eq!(
        record_values(&fetched(&resp, "t1", 0).records),
        Vec::<String>::new()
    );
    // WRITE is what it takes, and then the records are really written.
    let mut alice = s.client("alice");
    produce_ok(&mut alice, "t2", 0, &["written"]);
    let resp = fetch_by_name(&mut admin, &["t2"]);
    assert_eq!(
        record_values(&fetched(&resp, "t2", 0).records),
        vec!["written"]
    );
}

#[test]
fn scenario_02_produce_to_missing_topic_without_write_is_29_not_3() {
    let s = authz_setup("p, User:alice, Topic, other, Write, *, allow\n");
    let mut alice = s.client("alice");
    let resp = produce(
        &mut alice,
        None,
        &[("ghost", 0, record_batch(&["x"], None))],
    );
    assert_eq!(
        produce_error(&resp, "ghost", 0),
        TOPIC_AUTHORIZATION_FAILED,
        "{resp:?}"
    );
    let mut admin = s.admin();
    assert!(
        !topic_exists(&mut admin, "ghost"),
        "the denied produce created the topic"
    );
}

#[test]
fn scenario_03_idempotent_init_producer_id_needs_idempotent_write_or_write_on_any_topic() {
    let s = authz_setup(
        "p, User:alice, Topic, t1, Read, *, allow\n\
         p, User:bob, Topic, t1, Write, *, allow\n\
         p, User:carol, Cluster, kafka-cluster, IdempotentWrite, *, allow\n",
    );
    create_topics_ok(&mut s.admin(), &["t1"], 1);
    let mut alice = s.client("alice");
    let resp = init_producer_id(&mut alice, None);
    assert_eq!(
        resp.error_code, CLUSTER_AUTHORIZATION_FAILED,
        "alice: {resp:?}"
    );
    // KIP-679: WRITE on any topic is enough; so is cluster IDEMPOTENT_WRITE. Both reach the broker.
    for user in ["bob", "carol"] {
        let mut c = s.client(user);
        let resp = init_producer_id(&mut c, None);
        assert_eq!(resp.error_code, 0, "{user}: {resp:?}");
        assert!(
            resp.producer_id.0 >= 0,
            "{user}: broker-assigned id: {resp:?}"
        );
    }
}

#[test]
fn scenario_04_deny_on_wildcard_dominates_write_allows_for_idempotent_producing() {
    let s = authz_setup(
        "p, User:alice, Topic, t1, Write, *, allow\n\
         p, User:alice, Topic, t*, Write, *, allow\n\
         p, User:alice, Topic, *, Write, *, deny\n\
         # bob: the same allows without the deny\n\
         p, User:bob, Topic, t1, Write, *, allow\n\
         p, User:bob, Topic, t*, Write, *, allow\n",
    );
    create_topics_ok(&mut s.admin(), &["t1"], 1);
    let mut alice = s.client("alice");
    let resp = init_producer_id(&mut alice, None);
    assert_eq!(resp.error_code, CLUSTER_AUTHORIZATION_FAILED, "{resp:?}");
    let resp = produce(&mut alice, None, &[("t1", 0, record_batch(&["x"], None))]);
    assert_eq!(produce_error(&resp, "t1", 0), TOPIC_AUTHORIZATION_FAILED);
    let mut bob = s.client("bob");
    let resp = init_producer_id(&mut bob, None);
    assert_eq!(resp.error_code, 0, "bob: {resp:?}");
}

#[test]
fn scenario_05_transactional_id_needs_describe_to_find_and_write_to_init() {
    let s = authz_setup(
        "p, User:bob, TransactionalId, tx-a, Describe, *, allow\n\
         p, User:carol, TransactionalId, tx-a, Write, *, allow\n",
    );
    let mut alice = s.client("alice");
    for version in [3, 4] {
        assert_eq!(
            find_coordinator(&mut alice, version, TRANSACTION_KEY, "tx-a"),
            TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            "alice FindCoordinator v{version}"
        );
    }
    let mut bob = s.client("bob");
    assert_eq!(find_coordinator(&mut bob, 4, TRANSACTION_KEY, "tx-a"), 0);
    let resp = init_producer_id(&mut bob, Some("tx-a"));
    assert_eq!(
        resp.error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        "bob: {resp:?}"
    );
    // WRITE (which implies DESCRIBE) is enough for both, and the broker answers.
    let mut carol = s.client("carol");
    assert_eq!(find_coordinator(&mut carol, 4, TRANSACTION_KEY, "tx-a"), 0);
    let resp = init_producer_id(&mut carol, Some("tx-a"));
    assert_eq!(resp.error_code, 0, "carol: {resp:?}");
    assert!(resp.producer_id.0 >= 0, "{resp:?}");
}

#[test]
fn scenario_06_transactional_produce_without_authorized_transactional_id_is_53_everywhere() {
    let s = authz_setup(
        "p, User:alice, Topic, t1, Write, *, allow\n\
         p, User:alice, Topic, t2, Write, *, allow\n\
         p, User:carol, Topic, t1, Write, *, allow\n\
         p, User:carol, TransactionalId, tx-c, Write, *, allow\n",
    );
    create_topics_ok(&mut s.admin(), &["t1", "t2"], 1);
    let txn_batch = || {
        record_batch(
            &["in-txn"],
            Some(BatchProducer {
                id: 4242,
                epoch: 0,
                transactional: true,
            }),
        )
    };
    let mut alice = s.client("alice");
    for transactional_id in [None, Some("tx-x")] {
        let resp = produce(
            &mut alice,
            transactional_id,
            &[("t1", 0, txn_batch()), ("t2", 0, txn_batch())],
        );
        for t in ["t1", "t2"] {
            assert_eq!(
                produce_error(&resp, t, 0),
                TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                "transactional id {transactional_id:?}, {t}: {resp:?}"
            );
        }
    }
    // With WRITE on the transactional id, a real transaction's records reach the broker.
    let mut carol = s.client("carol");
    let init = init_producer_id(&mut carol, Some("tx-c"));
    assert_eq!(init.error_code, 0, "{init:?}");
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = txn_id("tx-c");
    add.v3_and_below_producer_id = init.producer_id;
    add.v3_and_below_producer_epoch = init.producer_epoch;
    let mut at = AddPartitionsToTxnTopic::default();
    at.name = topic("t1");
    at.partitions = vec![0];
    add.v3_and_below_topics = vec![at];
    let added: AddPartitionsToTxnResponse = carol.request(ApiKey::AddPartitionsToTxn, 3, &add);
    let codes: Vec<i16> = added
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect();
    assert_eq!(codes, vec![0], "{added:?}");
    let batch = record_batch(
        &["committed-in-txn"],
        Some(BatchProducer {
            id: init.producer_id.0,
            epoch: init.producer_epoch,
            transactional: true,
        }),
    );
    let resp = produce(&mut carol, Some("tx-c"), &[("t1", 0, batch)]);
    assert_eq!(produce_error(&resp, "t1", 0), 0, "{resp:?}");
}

#[test]
fn scenario_07_acks0_produce_to_denied_topic_closes_the_connection() {
    let s = authz_setup("p, User:alice, Topic, t2, Write, *, allow\n");
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1", "t2"], 1);
    let mut alice = s.client("alice");
    let req = produce_request(0, None, &[("t1", 0, record_batch(&["x"], None))]);
    let (_, frame) = alice.encode(ApiKey::Produce, 9, &req);
    alice.send_raw(&frame).expect("send");
    assert!(
        alice.is_closed_within(Duration::from_secs(5)),
        "acks=0 Produce to a denied topic left the connection open"
    );
    // The denial that no response can carry is still recorded.
    eventually("denial recorded", Duration::from_secs(5), || {
        s.gateway
            .log_text()
            .lines()
            .any(|l| l.contains("denied") && l.contains("User:alice") && l.contains("t1"))
    });
    // An allowed acks=0 Produce keeps the connection, and its record is written.
    let mut alice = s.client("alice");
    let req = produce_request(
        0,
        None,
        &[("t2", 0, record_batch(&["fire-and-forget"], None))],
    );
    let (_, frame) = alice.encode(ApiKey::Produce, 9, &req);
    alice.send_raw(&frame).expect("send");
    assert_eq!(
        metadata_error(&mut alice, "t2"),
        0,
        "connection still serves"
    );
    eventually("acks=0 record written", Duration::from_secs(5), || {
        let resp = fetch_by_name(&mut admin, &["t2"]);
        record_values(&fetched(&resp, "t2", 0).records) == vec!["fire-and-forget"]
    });
    let resp = fetch_by_name(&mut admin, &["t1"]);
    assert!(record_values(&fetched(&resp, "t1", 0).records).is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------------------

#[test]
fn scenario_08_metadata_named_topic_without_describe() {
    let s = authz_setup(
        "p, User:bob, Topic, t1, Describe, *, allow\n\
         p, User:carol, Topic, t2, Describe, *, allow\n",
    );
    create_topics_ok(&mut s.admin(), &["t1", "t2"], 2);
    let mut alice = s.client("alice");
    let resp = metadata(&mut alice, Some(&["t1"]), false);
    let t = only_topic(&resp);
    assert_eq!(t.error_code, TOPIC_AUTHORIZATION_FAILED, "{resp:?}");
    assert_eq!(t.name, Some(topic("t1")));
    assert_eq!(
        t.topic_id,
        Uuid::nil(),
        "no topic id for an unauthorized topic"
    );
    assert!(t.partitions.is_empty(), "{resp:?}");
    // Control: DESCRIBE shows the topic with its id and partitions.
    let mut bob = s.client("bob");
    let resp = metadata(&mut bob, Some(&["t1"]), false);
    let t = only_topic(&resp);
    assert_eq!(t.error_code, 0);
    assert_ne!(t.topic_id, Uuid::nil());
    assert_eq!(t.partitions.len(), 2);
    // Mixed: the allowed topic is the broker's answer, nothing else is added, and the order is
    // Kafka's (KafkaApis lists the authorized topics, then the unauthorized ones).
    let mut carol = s.client("carol");
    let resp = metadata(&mut carol, Some(&["t1", "t2"]), false);
    let got: Vec<(Option<String>, i16, usize)> = resp
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.0.to_string()),
                t.error_code,
                t.partitions.len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("t2".to_string()), 0, 2),
            (Some("t1".to_string()), TOPIC_AUTHORIZATION_FAILED, 0),
        ]
    );
}

#[test]
fn scenario_09_metadata_missing_topic_without_describe_is_29() {
    let s = authz_setup("p, User:bob, Topic, *, Describe, *, allow\n");
    let mut alice = s.client("alice");
    assert_eq!(
        metadata_error(&mut alice, "ghost"),
        TOPIC_AUTHORIZATION_FAILED
    );
    // Only a client that may describe it learns that it does not exist.
    let mut bob = s.client("bob");
    assert_eq!(
        metadata_error(&mut bob, "ghost"),
        UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[test]
fn scenario_10_metadata_all_topics_leaves_out_unauthorized_silently() {
    let s = authz_setup(
        "p, User:alice, Topic, t1, Describe, *, allow\n\
         p, User:alice, Topic, t3, Read, *, allow\n",
    );
    create_topics_ok(&mut s.admin(), &["t1", "t2", "t3"], 1);
    let mut alice = s.client("alice");
    let resp = metadata(&mut alice, None, false);
    assert_eq!(resp.error_code, 0);
    let mut names: Vec<String> = resp
        .topics
        .iter()
        .map(|t| {
            assert_eq!(
                t.error_code, 0,
                "no error entries for left-out topics: {resp:?}"
            );
            t.name.as_ref().expect("name").0.to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, vec!["t1", "t3"]);
    let mut bob = s.client("bob");
    let resp = metadata(&mut bob, None, false);
    assert!(resp.topics.is_empty(), "{resp:?}");
    assert_eq!(resp.brokers.len(), 1, "brokers are still listed");
}

#[test]
fn scenario_11_metadata_by_topic_id_without_describe() {
    let s = authz_setup("p, User:bob, Topic, t1, Describe, *, allow\n");
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1"], 1);
    let id = topic_ids(&mut admin)["t1"];
    let mut alice = s.client("alice");
    let resp = metadata_by_id(&mut alice, &[id]);
    let t = only_topic(&resp);
    assert_eq!(t.error_code, TOPIC_AUTHORIZATION_FAILED, "{resp:?}");
    assert_eq!(t.topic_id, id, "the id is echoed");
    assert_eq!(t.name, None, "the name is not revealed");
    assert!(t.partitions.is_empty());
    let unknown = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    for user in ["alice", "bob"] {
        let mut c = s.client(user);
        let resp = metadata_by_id(&mut c, &[unknown]);
        let t = only_topic(&resp);
        assert_eq!(t.error_code, UNKNOWN_TOPIC_ID, "{user}: {resp:?}");
        assert_eq!(t.topic_id, unknown);
        assert_eq!(t.name, None);
    }
}

#[test]
fn scenario_12_metadata_auto_creation_needs_create() {
    let s = authz_setup(
        "p, User:alice, Topic, auto-a, Describe, *, allow\n\
         p, User:bob, Topic, auto-b, Describe, *, allow\n\
         p, User:bob, Topic, auto-b, Create, *, allow\n\
         p, User:carol, Topic, auto-c, Describe, *, allow\n\
         p, User:carol, Cluster, kafka-cluster, Create, *, allow\n",
    );
    let mut admin = s.admin();
    let mut alice = s.client("alice");
    let resp = metadata(&mut alice, Some(&["auto-a"]), true);
    assert_eq!(
        only_topic(&resp).error_code,
        TOPIC_AUTHORIZATION_FAILED,
        "{resp:?}"
    );
    // Give a (wrongly) forwarded creation time to land before checking that there was none.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !topic_exists(&mut admin, "auto-a"),
        "auto-a was created upstream"
    );
    // CREATE on the topic, or on the cluster, lets the broker create it.
    for (user, name) in [("bob", "auto-b"), ("carol", "auto-c")] {
        let mut c = s.client(user);
        let resp = metadata(&mut c, Some(&[name]), true);
        assert_ne!(
            only_topic(&resp).error_code,
            TOPIC_AUTHORIZATION_FAILED,
            "{user}: {resp:?}"
        );
        eventually(&format!("{name} created"), Duration::from_secs(10), || {
            topic_exists(&mut admin, name)
        });
    }
}

// ---------------------------------------------------------------------------------------------------------
// Fetch
// ---------------------------------------------------------------------------------------------------------

#[test]
fn scenario_13_fetch_by_name_without_read_is_29_whether_or_not_the_topic_exists() {
    let s = authz_setup(
        "p, User:alice, Topic, t1, Describe, *, allow\n\
         p, User:bob, Topic, *, Read, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1"], 1);
    produce_ok(&mut admin, "t1", 0, &["secret"]);
    let mut alice = s.client("alice");
    let resp = fetch_by_name(&mut alice, &["t1", "ghost"]);
    for t in ["t1", "ghost"] {
        let p = fetched(&resp, t, 0);
        assert_eq!(p.error_code, TOPIC_AUTHORIZATION_FAILED, "{t}: {resp:?}");
        assert!(record_values(&p.records).is_empty(), "{t}");
    }
    // Control: with READ the records come back.
    let mut bob = s.client("bob");
    let resp = fetch_by_name(&mut bob, &["t1"]);
    assert_eq!(
        record_values(&fetched(&resp, "t1", 0).records),
        vec!["secret"]
    );
}

#[test]
fn scenario_14_fetch_by_topic_id_unknown_is_100_known_without_read_is_29() {
    let s = authz_setup(
        "p, User:alice, Topic, t1, Describe, *, allow\n\
         p, User:bob, Topic, t1, Read, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1"], 1);
    produce_ok(&mut admin, "t1", 0, &["by-id"]);
    let id = topic_ids(&mut admin)["t1"];
    let unknown = Uuid::from_u128(0xfeed_beef_0000_0000_0000_0000_0000_0001);
    let mut alice = s.client("alice");
    let resp = fetch_by_id(&mut alice, &[unknown]);
    assert_eq!(
        fetched_by_id(&resp, unknown, 0).error_code,
        UNKNOWN_TOPIC_ID,
        "{resp:?}"
    );
    let resp = fetch_by_id(&mut alice, &[id]);
    let p = fetched_by_id(&resp, id, 0);
    assert_eq!(p.error_code, TOPIC_AUTHORIZATION_FAILED, "{resp:?}");
    assert!(record_values(&p.records).is_empty());
    let mut bob = s.client("bob");
    let resp = fetch_by_id(&mut bob, &[id]);
    let p = fetched_by_id(&resp, id, 0);
    assert_eq!(p.error_code, 0, "{resp:?}");
    assert_eq!(record_values(&p.records), vec!["by-id"]);
}

#[test]
fn scenario_15_write_without_read_cannot_consume_even_with_group_read() {
    let s = authz_setup(
        "p, User:alice, Topic, t1, Write, *, allow\n\
         p, User:alice, Group, g1, Read, *, allow\n",
    );
    create_topics_ok(&mut s.admin(), &["t1"], 1);
    let mut alice = s.client("alice");
    produce_ok(&mut alice, "t1", 0, &["mine"]);
    let resp = fetch_by_name(&mut alice, &["t1"]);
    let p = fetched(&resp, "t1", 0);
    assert_eq!(p.error_code, TOPIC_AUTHORIZATION_FAILED, "{resp:?}");
    assert!(record_values(&p.records).is_empty());
    // The group is hers, but committing a position on t1 still needs READ on t1.
    assert_eq!(find_coordinator(&mut alice, 4, GROUP_KEY, "g1"), 0);
    let codes = offset_commit(&mut alice, "g1", &[("t1", 0, 1)]);
    assert_eq!(
        codes,
        vec![("t1".to_string(), 0, TOPIC_AUTHORIZATION_FAILED)]
    );
}

#[test]
fn scenario_16_fetch_mixed_topics_denied_part_gets_29_allowed_part_gets_data() {
    let s = authz_setup("p, User:alice, Topic, t2, Read, *, allow\n");
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1", "t2"], 1);
    produce_ok(&mut admin, "t1", 0, &["t1-secret"]);
    produce_ok(&mut admin, "t2", 0, &["t2-a", "t2-b"]);
    let mut alice = s.client("alice");
    let resp = fetch_by_name(&mut alice, &["t1", "t2"]);
    let denied = fetched(&resp, "t1", 0);
    assert_eq!(denied.error_code, TOPIC_AUTHORIZATION_FAILED, "{resp:?}");
    assert!(
        record_values(&denied.records).is_empty(),
        "t1 records leaked"
    );
    let allowed = fetched(&resp, "t2", 0);
    assert_eq!(allowed.error_code, 0, "{resp:?}");
    assert_eq!(record_values(&allowed.records), vec!["t2-a", "t2-b"]);
    assert_eq!(allowed.high_watermark, 2);
    // Same by topic id.
    let ids = topic_ids(&mut admin);
    let resp = fetch_by_id(&mut alice, &[ids["t1"], ids["t2"]]);
    assert_eq!(
        fetched_by_id(&resp, ids["t1"], 0).error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        record_values(&fetched_by_id(&resp, ids["t2"], 0).records),
        vec!["t2-a", "t2-b"]
    );
}

#[test]
fn scenario_17_follower_fetch_without_cluster_action_is_29_on_every_partition() {
    let s = authz_setup("p, User:alice, Topic, t1, Read, *, allow\n");
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1"], 2);
    produce_ok(&mut admin, "t1", 0, &["replicated"]);
    let mut alice = s.client("alice");
    let mut req = fetch_request(vec![fetch_topic_by_name("t1", &[0, 1])]);
    req.replica_id = BrokerId(KafkaCluster::NODE_ID);
    let resp: FetchResponse = alice.request(ApiKey::Fetch, 12, &req);
    for p in [0, 1] {
        let part = fetched(&resp, "t1", p);
        assert_eq!(
            part.error_code, TOPIC_AUTHORIZATION_FAILED,
            "partition {p}: {resp:?}"
        );
        assert!(record_values(&part.records).is_empty());
    }
    // The same Fetch as a consumer is allowed.
    assert_eq!(fetch_error(&mut alice, "t1"), 0);
}

// ---------------------------------------------------------------------------------------------------------
// Groups and offsets
// ---------------------------------------------------------------------------------------------------------

#[test]
fn scenario_18_offset_commit_with_group_read_but_no_topic_read_is_29() {
    let s = authz_setup(
        "p, User:alice, Group, g1, Read, *, allow\n\
         p, User:alice, Topic, t2, Read, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1", "t2"], 1);
    let mut alice = s.client("alice");
    let mut codes = offset_commit(&mut alice, "g1", &[("t1", 0, 7), ("t2", 0, 8)]);
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("t1".to_string(), 0, TOPIC_AUTHORIZATION_FAILED),
            ("t2".to_string(), 0, 0)
        ]
    );
    // Only the allowed offset was committed upstream.
    let g = offset_fetch_v8(&mut admin, "g1", Some(&[("t1", 0), ("t2", 0)]));
    let mut got = committed_v8(&g);
    got.sort();
    assert_eq!(
        got,
        vec![("t1".to_string(), 0, -1, 0), ("t2".to_string(), 0, 8, 0)]
    );
}

#[test]
fn scenario_19_offset_commit_without_group_read_is_30_on_every_partition() {
    let s = authz_setup(
        "p, User:alice, Topic, t1, Read, *, allow\n\
         p, User:alice, Topic, t2, Read, *, allow\n\
         p, User:alice, Group, g1, Describe, *, allow\n",
    );
    create_topics_ok(&mut s.admin(), &["t1", "t2"], 2);
    let mut alice = s.client("alice");
    let mut codes = offset_commit(
        &mut alice,
        "g1",
        &[("t1", 0, 1), ("t1", 1, 1), ("t2", 0, 1)],
    );
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("t1".to_string(), 0, GROUP_AUTHORIZATION_FAILED),
            ("t1".to_string(), 1, GROUP_AUTHORIZATION_FAILED),
            ("t2".to_string(), 0, GROUP_AUTHORIZATION_FAILED),
        ]
    );
}

#[test]
fn scenario_20_offset_fetch_named_partitions_without_topic_describe() {
    let s = authz_setup(
        "p, User:alice, Group, g1, Describe, *, allow\n\
         p, User:alice, Topic, t2, Describe, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1", "t2"], 1);
    let mut codes = offset_commit(&mut admin, "g1", &[("t1", 0, 5), ("t2", 0, 6)]);
    codes.sort();
    assert_eq!(
        codes,
        vec![("t1".to_string(), 0, 0), ("t2".to_string(), 0, 0)]
    );
    let mut alice = s.client("alice");
    let g = offset_fetch_v8(&mut alice, "g1", Some(&[("t1", 0), ("t2", 0)]));
    assert_eq!(g.error_code, 0);
    let mut got = committed_v8(&g);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("t1".to_string(), 0, -1, TOPIC_AUTHORIZATION_FAILED),
            ("t2".to_string(), 0, 6, 0)
        ]
    );
    let r = offset_fetch_v7(&mut alice, "g1", Some(&[("t1", 0), ("t2", 0)]));
    assert_eq!(r.error_code, 0);
    let mut got = committed_v7(&r);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("t1".to_string(), 0, -1, TOPIC_AUTHORIZATION_FAILED),
            ("t2".to_string(), 0, 6, 0)
        ]
    );
}

#[test]
fn scenario_21_offset_fetch_all_partitions_filters_unauthorized_topics() {
    let s = authz_setup(
        "p, User:alice, Group, g1, Describe, *, allow\n\
         p, User:alice, Topic, t1, Describe, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1", "t2"], 1);
    let mut codes = offset_commit(&mut admin, "g1", &[("t1", 0, 3), ("t2", 0, 4)]);
    codes.sort();
    assert_eq!(
        codes,
        vec![("t1".to_string(), 0, 0), ("t2".to_string(), 0, 0)]
    );
    // The admin sees both.
    let mut all = committed_v8(&offset_fetch_v8(&mut admin, "g1", None));
    all.sort();
    assert_eq!(
        all,
        vec![("t1".to_string(), 0, 3, 0), ("t2".to_string(), 0, 4, 0)]
    );
    let mut alice = s.client("alice");
    let g = offset_fetch_v8(&mut alice, "g1", None);
    assert_eq!(g.error_code, 0);
    assert_eq!(committed_v8(&g), vec![("t1".to_string(), 0, 3, 0)]);
    // The same at v7 (one group, top-level error).
    let r = offset_fetch_v7(&mut alice, "g1", None);
    assert_eq!(r.error_code, 0);
    assert_eq!(committed_v7(&r), vec![("t1".to_string(), 0, 3, 0)]);
}

fn join_group(c: &mut RawClient, group_id: &str) -> JoinGroupResponse {
    let mut req = JoinGroupRequest::default();
    req.group_id = group(group_id);
    req.session_timeout_ms = 6000;
    req.rebalance_timeout_ms = 6000;
    req.member_id = sb("");
    req.protocol_type = sb("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = sb("range");
    p.metadata = bytes::Bytes::from_static(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    req.protocols = vec![p];
    c.request(ApiKey::JoinGroup, 9, &req)
}

#[test]
fn scenario_22_group_apis_without_group_permission_are_30() {
    let s = authz_setup(
        "p, User:bob, Group, g1, Describe, *, allow\n\
         p, User:bob, Topic, t1, Describe, *, allow\n\
         p, User:carol, Group, g1, Read, *, allow\n\
         p, User:carol, Topic, t1, Describe, *, allow\n",
    );
    create_topics_ok(&mut s.admin(), &["t1"], 1);
    let group_errors = |c: &mut RawClient, with_describe: bool| {
        let (fc_v3, fc_v4) = (
            find_coordinator(c, 3, GROUP_KEY, "g1"),
            find_coordinator(c, 4, GROUP_KEY, "g1"),
        );
        let join = join_group(c, "g1").error_code;
        let mut sync = SyncGroupRequest::default();
        sync.group_id = group("g1");
        sync.generation_id = 1;
        sync.member_id = sb("m-1");
        sync.protocol_type = Some(sb("consumer"));
        sync.protocol_name = Some(sb("range"));
        let sync: SyncGroupResponse = c.request(ApiKey::SyncGroup, 5, &sync);
        let mut hb = HeartbeatRequest::default();
        hb.group_id = group("g1");
        hb.generation_id = 1;
        hb.member_id = sb("m-1");
        let hb: HeartbeatResponse = c.request(ApiKey::Heartbeat, 4, &hb);
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = group("g1");
        let mut m = MemberIdentity::default();
        m.member_id = sb("m-1");
        leave.members = vec![m];
        let leave: LeaveGroupResponse = c.request(ApiKey::LeaveGroup, 5, &leave);
        let of8 = offset_fetch_v8(c, "g1", Some(&[("t1", 0)])).error_code;
        let of7 = offset_fetch_v7(c, "g1", Some(&[("t1", 0)])).error_code;
        let g30 = GROUP_AUTHORIZATION_FAILED;
        let describe_needed = if with_describe { 0 } else { g30 };
        assert_eq!(fc_v3, describe_needed, "FindCoordinator v3");
        assert_eq!(fc_v4, describe_needed, "FindCoordinator v4");
        assert_eq!(of8, describe_needed, "OffsetFetch v8");
        assert_eq!(of7, describe_needed, "OffsetFetch v7");
        // Joining, syncing, heartbeating and leaving need READ, which DESCRIBE does not give.
        assert_eq!(join, g30, "JoinGroup");
        assert_eq!(sync.error_code, g30, "SyncGroup");
        assert_eq!(hb.error_code, g30, "Heartbeat");
        assert_eq!(leave.error_code, g30, "LeaveGroup");
    };
    group_errors(&mut s.client("alice"), false);
    group_errors(&mut s.client("bob"), true);
    // ConsumerGroupHeartbeat (KIP-848) needs READ on the group too; DESCRIBE is not enough.
    let cgh = |c: &mut RawClient, member: &str| -> ConsumerGroupHeartbeatResponse {
        let mut req = ConsumerGroupHeartbeatRequest::default();
        req.group_id = group("g1");
        req.member_id = sb(member);
        req.member_epoch = 0;
        req.rebalance_timeout_ms = 30_000;
        req.subscribed_topic_names = Some(vec![topic("t1")]);
        req.topic_partitions = Some(Vec::new());
        c.request(ApiKey::ConsumerGroupHeartbeat, 1, &req)
    };
    assert_eq!(
        cgh(&mut s.client("alice"), "m-alice-0000000000000").error_code,
        GROUP_AUTHORIZATION_FAILED
    );
    assert_eq!(
        cgh(&mut s.client("bob"), "m-bob-00000000000000").error_code,
        GROUP_AUTHORIZATION_FAILED
    );
    // With READ on the group (and DESCRIBE on the topic) the member joins and is assigned t1.
    let joined = cgh(&mut s.client("carol"), "m-carol-000000000000");
    assert_eq!(joined.error_code, 0, "{joined:?}");
    assert!(joined.member_epoch >= 1, "{joined:?}");
}

#[test]
fn scenario_23_list_groups_without_cluster_describe_shows_only_describable_groups() {
    let s = authz_setup(
        "p, User:alice, Group, g-a, Describe, *, allow\n\
         p, User:carol, Cluster, kafka-cluster, Describe, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1"], 1);
    for g in ["g-a", "g-b"] {
        let codes = offset_commit(&mut admin, g, &[("t1", 0, 1)]);
        assert_eq!(codes, vec![("t1".to_string(), 0, 0)], "{g}");
    }
    let list = |c: &mut RawClient| -> (i16, Vec<String>) {
        let resp: ListGroupsResponse =
            c.request(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
        let mut names: Vec<String> = resp
            .groups
            .iter()
            .map(|g| g.group_id.0.to_string())
            .collect();
        names.sort();
        (resp.error_code, names)
    };
    let (code, all) = list(&mut admin);
    assert_eq!(code, 0);
    assert_eq!(all, vec!["g-a", "g-b"], "the broker lists both groups");
    assert_eq!(list(&mut s.client("alice")), (0, vec!["g-a".to_string()]));
    assert_eq!(list(&mut s.client("bob")), (0, Vec::new()));
    assert_eq!(
        list(&mut s.client("carol")),
        (0, vec!["g-a".to_string(), "g-b".to_string()])
    );
}

#[test]
fn scenario_24_txn_offset_commit_and_add_offsets_with_only_group_describe_are_30() {
    let s = authz_setup(
        "p, User:alice, TransactionalId, tx-a, Write, *, allow\n\
         p, User:alice, Group, g1, Describe, *, allow\n\
         p, User:alice, Topic, t1, Read, *, allow\n\
         # bob may not write the transactional id: that check comes first\n\
         p, User:bob, Group, g1, Read, *, allow\n\
         p, User:bob, Topic, t1, Read, *, allow\n",
    );
    create_topics_ok(&mut s.admin(), &["t1"], 1);
    let add_offsets = |c: &mut RawClient| -> i16 {
        let mut req = AddOffsetsToTxnRequest::default();
        req.transactional_id = txn_id("tx-a");
        req.producer_id = ProducerId(4242);
        req.producer_epoch = 0;
        req.group_id = group("g1");
        let resp: AddOffsetsToTxnResponse = c.request(ApiKey::AddOffsetsToTxn, 3, &req);
        resp.error_code
    };
    let txn_commit = |c: &mut RawClient| -> Vec<i16> {
        let mut req = TxnOffsetCommitRequest::default();
        req.transactional_id = txn_id("tx-a");
        req.group_id = group("g1");
        req.producer_id = ProducerId(4242);
        req.producer_epoch = 0;
        req.generation_id = -1;
        req.member_id = sb("");
        let mut t = TxnOffsetCommitRequestTopic::default();
        t.name = topic("t1");
        let mut p = TxnOffsetCommitRequestPartition::default();
        p.partition_index = 0;
        p.committed_offset = 1;
        p.committed_leader_epoch = -1;
        t.partitions = vec![p];
        req.topics = vec![t];
        let resp: TxnOffsetCommitResponse = c.request(ApiKey::TxnOffsetCommit, 3, &req);
        resp.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    };
    let mut alice = s.client("alice");
    assert_eq!(add_offsets(&mut alice), GROUP_AUTHORIZATION_FAILED);
    assert_eq!(txn_commit(&mut alice), vec![GROUP_AUTHORIZATION_FAILED]);
    let mut bob = s.client("bob");
    assert_eq!(add_offsets(&mut bob), TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    assert_eq!(
        txn_commit(&mut bob),
        vec![TRANSACTIONAL_ID_AUTHORIZATION_FAILED]
    );
}

#[test]
fn scenario_25_offset_delete_with_group_delete_and_read_but_no_topic_read_is_29() {
    let s = authz_setup(
        "p, User:alice, Group, g1, Delete, *, allow\n\
         p, User:alice, Group, g1, Read, *, allow\n\
         p, User:alice, Topic, t2, Read, *, allow\n\
         # bob may read the group but not delete from it\n\
         p, User:bob, Group, g1, Read, *, allow\n\
         p, User:bob, Topic, *, Read, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1", "t2"], 1);
    let codes = offset_commit(&mut admin, "g1", &[("t1", 0, 5), ("t2", 0, 7)]);
    assert!(codes.iter().all(|c| c.2 == 0), "{codes:?}");
    let offset_delete = |c: &mut RawClient| -> OffsetDeleteResponse {
        let mut req = OffsetDeleteRequest::default();
        req.group_id = group("g1");
        req.topics = ["t1", "t2"]
            .iter()
            .map(|n| {
                let mut t = OffsetDeleteRequestTopic::default();
                t.name = topic(n);
                let mut p = OffsetDeleteRequestPartition::default();
                p.partition_index = 0;
                t.partitions = vec![p];
                t
            })
            .collect();
        c.request(ApiKey::OffsetDelete, 0, &req)
    };
    let mut bob = s.client("bob");
    assert!(offered_apis(&mut bob).contains(&(ApiKey::OffsetDelete as i16)));
    assert_eq!(
        offset_delete(&mut bob).error_code,
        GROUP_AUTHORIZATION_FAILED,
        "DELETE on the group is needed"
    );
    let resp = offset_delete(&mut s.client("alice"));
    assert_eq!(resp.error_code, 0, "{resp:?}");
    let per_topic: Vec<(String, i16)> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.error_code))
        })
        .collect();
    assert_eq!(
        per_topic,
        vec![
            ("t1".to_string(), TOPIC_AUTHORIZATION_FAILED),
            ("t2".to_string(), 0)
        ]
    );
    // Only the allowed offset is gone upstream.
    let g = offset_fetch_v8(&mut admin, "g1", Some(&[("t1", 0), ("t2", 0)]));
    assert_eq!(
        committed_v8(&g),
        vec![("t1".to_string(), 0, 5, 0), ("t2".to_string(), 0, -1, 0)]
    );
}

// ---------------------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------------------

#[test]
fn scenario_26_delete_topics_needs_delete_and_create_topics_needs_create() {
    let s = authz_setup(
        "p, User:bob, Topic, t1, Describe, *, allow\n\
         p, User:bob, Topic, b-*, Create, *, allow\n\
         p, User:carol, Topic, t2, Delete, *, allow\n\
         p, User:carol, Cluster, kafka-cluster, Create, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1", "t2"], 1);
    // DeleteTopics: without DELETE it is 29, with or without DESCRIBE; the topic stays.
    for user in ["alice", "bob"] {
        let mut c = s.client(user);
        let res = delete_topics(&mut c, &["t1"]);
        assert_eq!(
            error_of(&res, "t1"),
            TOPIC_AUTHORIZATION_FAILED,
            "{user}: {res:?}"
        );
    }
    assert!(topic_exists(&mut admin, "t1"));
    let mut carol = s.client("carol");
    let res = delete_topics(&mut carol, &["t1", "t2"]);
    assert_eq!(error_of(&res, "t1"), TOPIC_AUTHORIZATION_FAILED, "{res:?}");
    assert_eq!(error_of(&res, "t2"), 0, "{res:?}");
    eventually("t2 deleted", Duration::from_secs(10), || {
        !topic_exists(&mut admin, "t2")
    });
    assert!(topic_exists(&mut admin, "t1"));
    // CreateTopics: CREATE on the topic, or on the cluster.
    let mut alice = s.client("alice");
    let res = create_topics(&mut alice, &["a-new"], 1);
    assert_eq!(error_of(&res, "a-new"), TOPIC_AUTHORIZATION_FAILED);
    let mut bob = s.client("bob");
    let res = create_topics(&mut bob, &["b-new", "x-new"], 1);
    assert_eq!(error_of(&res, "b-new"), 0, "{res:?}");
    assert_eq!(
        error_of(&res, "x-new"),
        TOPIC_AUTHORIZATION_FAILED,
        "{res:?}"
    );
    let res = create_topics(&mut carol, &["c-anything"], 1);
    assert_eq!(error_of(&res, "c-anything"), 0, "{res:?}");
    for (name, exists) in [
        ("a-new", false),
        ("x-new", false),
        ("b-new", true),
        ("c-anything", true),
    ] {
        assert_eq!(topic_exists(&mut admin, name), exists, "{name}");
    }
}

#[test]
fn scenario_27_acl_apis_answered_from_the_policy_scram_token_apis_refused_and_broker_configs_need_cluster_describe_configs(
) {
    let s = authz_setup(
        "p, User:alice, Topic, t1, DescribeConfigs, *, allow\n\
         p, User:carol, Cluster, kafka-cluster, DescribeConfigs, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1", "t2"], 1);
    // The gateway owns identity and policy: the brokers' SCRAM and delegation-token APIs are not
    // offered (to anyone, super users included); neither are AlterReplicaLogDirs and ElectLeaders.
    // The ACL APIs are offered and answered from the policy (issue 12 item 5), never forwarded.
    let refused = [
        ApiKey::DescribeUserScramCredentials,
        ApiKey::AlterUserScramCredentials,
        ApiKey::CreateDelegationToken,
        ApiKey::RenewDelegationToken,
        ApiKey::ExpireDelegationToken,
        ApiKey::DescribeDelegationToken,
        ApiKey::AlterReplicaLogDirs,
        ApiKey::ElectLeaders,
    ];
    for user in ["admin", "alice"] {
        let mut c = s.client(user);
        let offered = offered_apis(&mut c);
        for api in refused {
            assert!(
                !offered.contains(&(api as i16)),
                "{api:?} offered to {user}"
            );
        }
        for api in [ApiKey::DescribeAcls, ApiKey::CreateAcls, ApiKey::DeleteAcls] {
            assert!(
                offered.contains(&(api as i16)),
                "{api:?} not offered to {user}"
            );
        }
    }
    // DescribeAcls: 31 without cluster DESCRIBE; the policy's rules for a super user.
    let mut acls = DescribeAclsRequest::default();
    acls.resource_type_filter = 1; // ANY
    acls.pattern_type_filter = 1; // ANY
    acls.operation = 1; // ANY
    acls.permission_type = 1; // ANY
    acls.resource_name_filter = None;
    acls.principal_filter = None;
    acls.host_filter = None;
    let denied: DescribeAclsResponse = s.client("alice").request(ApiKey::DescribeAcls, 2, &acls);
    assert_eq!(denied.error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert!(denied.resources.is_empty());
    let listed: DescribeAclsResponse = s.admin().request(ApiKey::DescribeAcls, 2, &acls);
    assert_eq!(listed.error_code, 0, "{listed:?}");
    let mut got: Vec<(i8, String, String, i8)> = listed
        .resources
        .iter()
        .flat_map(|r| {
            r.acls.iter().map(|a| {
                (
                    r.resource_type,
                    r.resource_name.to_string(),
                    a.principal.to_string(),
                    a.operation,
                )
            })
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (2, "t1".to_string(), "User:alice".to_string(), 10),
            (4, "kafka-cluster".to_string(), "User:carol".to_string(), 10),
        ]
    );
    // CreateAcls and DeleteAcls: 31 without cluster ALTER, else 54 (the files are the source).
    let creation = kafka_protocol::messages::create_acls_request::AclCreation::default();
    let create = CreateAclsRequest::default().with_creations(vec![creation]);
    for (user, code) in [("alice", CLUSTER_AUTHORIZATION_FAILED), ("admin", 54)] {
        let r: CreateAclsResponse = s.client(user).request(ApiKey::CreateAcls, 2, &create);
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.results[0].error_code, code, "{user}: {r:?}");
    }
    assert_refused_with_close(
        &mut s.client("alice"),
        ApiKey::DescribeUserScramCredentials,
        0,
        &DescribeUserScramCredentialsRequest::default(),
    );
    // Broker and broker-logger configs need cluster DESCRIBE_CONFIGS; topic configs the topic's.
    let broker = KafkaCluster::NODE_ID.to_string();
    let mut alice = s.client("alice");
    let res = describe_configs(
        &mut alice,
        &[
            (RESOURCE_BROKER_LOGGER, &broker),
            (RESOURCE_BROKER, &broker),
            (RESOURCE_TOPIC, "t1"),
            (RESOURCE_TOPIC, "t2"),
        ],
    );
    assert_eq!(
        error_for(&res, RESOURCE_BROKER_LOGGER, &broker),
        CLUSTER_AUTHORIZATION_FAILED,
        "{res:?}"
    );
    assert_eq!(
        error_for(&res, RESOURCE_BROKER, &broker),
        CLUSTER_AUTHORIZATION_FAILED,
        "{res:?}"
    );
    assert_eq!(error_for(&res, RESOURCE_TOPIC, "t1"), 0, "{res:?}");
    assert_eq!(
        error_for(&res, RESOURCE_TOPIC, "t2"),
        TOPIC_AUTHORIZATION_FAILED,
        "{res:?}"
    );
    let mut carol = s.client("carol");
    let res = describe_configs(&mut carol, &[(RESOURCE_BROKER, &broker)]);
    assert_ne!(
        error_for(&res, RESOURCE_BROKER, &broker),
        CLUSTER_AUTHORIZATION_FAILED,
        "{res:?}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// ACL semantics
// ---------------------------------------------------------------------------------------------------------

#[test]
fn scenario_28_deny_wins_over_a_matching_allow() {
    let s = authz_setup(
        "p, User:alice, Topic, foo, All, *, deny\n\
         p, User:alice, Topic, foo*, Read, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["foo", "foobar"], 1);
    produce_ok(&mut admin, "foobar", 0, &["visible"]);
    let mut alice = s.client("alice");
    let resp = fetch_by_name(&mut alice, &["foo", "foobar"]);
    assert_eq!(
        fetched(&resp, "foo", 0).error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    let allowed = fetched(&resp, "foobar", 0);
    assert_eq!(allowed.error_code, 0, "{resp:?}");
    assert_eq!(record_values(&allowed.records), vec!["visible"]);
    // DENY ALL also denies the DESCRIBE that READ would imply.
    assert_eq!(
        metadata_error(&mut alice, "foo"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(metadata_error(&mut alice, "foobar"), 0);
}

#[test]
fn scenario_29_implied_operations() {
    let s = authz_setup(
        "p, User:alice, Topic, t-read, Read, *, allow\n\
         p, User:alice, Topic, t-write, Write, *, allow\n\
         p, User:alice, Topic, t-delete, Delete, *, allow\n\
         p, User:alice, Topic, t-alter, Alter, *, allow\n\
         p, User:alice, Topic, t-create, Create, *, allow\n\
         p, User:alice, Topic, t-alter-configs, AlterConfigs, *, allow\n\
         # DENY implies nothing: denying READ leaves DESCRIBE, denying DESCRIBE leaves READ\n\
         p, User:bob, Topic, t-read, Describe, *, allow\n\
         p, User:bob, Topic, t-read, Read, *, deny\n\
         p, User:carol, Topic, t-read, Read, *, allow\n\
         p, User:carol, Topic, t-read, Describe, *, deny\n",
    );
    let topics = [
        "t-read",
        "t-write",
        "t-delete",
        "t-alter",
        "t-create",
        "t-alter-configs",
    ];
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &topics, 1);
    produce_ok(&mut admin, "t-read", 0, &["r"]);
    let mut alice = s.client("alice");
    for t in ["t-read", "t-write", "t-delete", "t-alter"] {
        assert_eq!(metadata_error(&mut alice, t), 0, "DESCRIBE implied on {t}");
    }
    assert_eq!(
        metadata_error(&mut alice, "t-create"),
        TOPIC_AUTHORIZATION_FAILED,
        "CREATE does not imply DESCRIBE"
    );
    assert_eq!(
        metadata_error(&mut alice, "t-alter-configs"),
        TOPIC_AUTHORIZATION_FAILED,
        "ALTER_CONFIGS does not imply DESCRIBE"
    );
    let res = describe_configs(
        &mut alice,
        &[
            (RESOURCE_TOPIC, "t-alter-configs"),
            (RESOURCE_TOPIC, "t-read"),
        ],
    );
    assert_eq!(
        error_for(&res, RESOURCE_TOPIC, "t-alter-configs"),
        0,
        "{res:?}"
    );
    assert_eq!(
        error_for(&res, RESOURCE_TOPIC, "t-read"),
        TOPIC_AUTHORIZATION_FAILED,
        "READ does not imply DESCRIBE_CONFIGS: {res:?}"
    );
    let mut bob = s.client("bob");
    assert_eq!(metadata_error(&mut bob, "t-read"), 0);
    assert_eq!(fetch_error(&mut bob, "t-read"), TOPIC_AUTHORIZATION_FAILED);
    let mut carol = s.client("carol");
    assert_eq!(
        metadata_error(&mut carol, "t-read"),
        TOPIC_AUTHORIZATION_FAILED
    );
    let resp = fetch_by_name(&mut carol, &["t-read"]);
    assert_eq!(
        record_values(&fetched(&resp, "t-read", 0).records),
        vec!["r"]
    );
}

#[test]
fn scenario_30_prefixed_rules() {
    let s = authz_setup("p, User:bob, Topic, f*, All, *, allow\n");
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["foobarr", "goobar"], 1);
    produce_ok(&mut admin, "goobar", 0, &["g"]);
    let mut bob = s.client("bob");
    produce_ok(&mut bob, "foobarr", 0, &["from-bob"]);
    let resp = fetch_by_name(&mut admin, &["foobarr"]);
    assert_eq!(
        record_values(&fetched(&resp, "foobarr", 0).records),
        vec!["from-bob"]
    );
    assert_eq!(fetch_error(&mut bob, "goobar"), TOPIC_AUTHORIZATION_FAILED);
    let resp = produce(&mut bob, None, &[("goobar", 0, record_batch(&["x"], None))]);
    assert_eq!(
        produce_error(&resp, "goobar", 0),
        TOPIC_AUTHORIZATION_FAILED
    );
}

#[test]
fn scenario_31_host_rules_use_the_client_address() {
    // Our clients connect from 127.0.0.1.
    let s = authz_setup(
        "p, User:alice, Topic, t1, Read, 127.0.0.1, deny\n\
         p, User:alice, Topic, t1, Read, *, allow\n\
         p, User:bob, Topic, t1, Read, 192.168.1.1, deny\n\
         p, User:bob, Topic, t1, Read, *, allow\n\
         # CIDR rules\n\
         p, User:alice, Topic, t2, Read, 10.0.0.0/8, deny\n\
         p, User:alice, Topic, t2, Read, *, allow\n\
         p, User:bob, Topic, t2, Read, 127.0.0.0/8, deny\n\
         p, User:bob, Topic, t2, Read, *, allow\n\
         p, User:carol, Topic, t1, Read, 192.168.1.1, allow\n\
         p, User:carol, Topic, t2, Read, 127.0.0.0/8, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1", "t2"], 1);
    let expect = [
        ("alice", "t1", TOPIC_AUTHORIZATION_FAILED),
        ("bob", "t1", 0),
        ("alice", "t2", 0),
        ("bob", "t2", TOPIC_AUTHORIZATION_FAILED),
        ("carol", "t1", TOPIC_AUTHORIZATION_FAILED),
        ("carol", "t2", 0),
    ];
    for (user, t, code) in expect {
        let mut c = s.client(user);
        assert_eq!(fetch_error(&mut c, t), code, "{user} reading {t}");
    }
}

#[test]
fn scenario_32_invalid_policy_at_start_denies_everyone_but_super_users() {
    let s = authz_setup(
        "p, User:alice, Topic, t1, Write, *, allow\n\
         p, User:alice, Topic, t1, Frobnicate, *, allow\n\
         p, User:alice, Topic\n\
         this is not a policy line\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1"], 1);
    produce_ok(&mut admin, "t1", 0, &["admin-wrote"]);
    let resp = fetch_by_name(&mut admin, &["t1"]);
    assert_eq!(
        record_values(&fetched(&resp, "t1", 0).records),
        vec!["admin-wrote"]
    );
    let mut alice = s.client("alice");
    let resp = produce(&mut alice, None, &[("t1", 0, record_batch(&["x"], None))]);
    assert_eq!(produce_error(&resp, "t1", 0), TOPIC_AUTHORIZATION_FAILED);
    assert!(metadata(&mut alice, None, false).topics.is_empty());
    let res = create_topics(&mut alice, &["a-new"], 1);
    assert_eq!(error_of(&res, "a-new"), TOPIC_AUTHORIZATION_FAILED);
}

#[test]
fn group_membership_and_every_user_principal() {
    let s = authz_setup(
        "g, User:bob, Group:payments\n\
         p, Group:payments, Topic, pay-*, Read, *, allow\n\
         p, User:*, Topic, public, Describe, *, allow\n",
    );
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["pay-1", "public"], 1);
    produce_ok(&mut admin, "pay-1", 0, &["paid"]);
    let mut bob = s.client("bob");
    let resp = fetch_by_name(&mut bob, &["pay-1"]);
    assert_eq!(
        record_values(&fetched(&resp, "pay-1", 0).records),
        vec!["paid"]
    );
    let mut carol = s.client("carol");
    assert_eq!(fetch_error(&mut carol, "pay-1"), TOPIC_AUTHORIZATION_FAILED);
    for user in ["alice", "bob", "carol"] {
        let mut c = s.client(user);
        assert_eq!(metadata_error(&mut c, "public"), 0, "{user}");
        assert_eq!(
            fetch_error(&mut c, "public"),
            TOPIC_AUTHORIZATION_FAILED,
            "{user}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// Policy reload
// ---------------------------------------------------------------------------------------------------------

const RELOAD_BASE: &str = "p, User:bob, Topic, t1, Read, *, allow\n";

#[test]
fn policy_changes_apply_to_open_connections_and_a_broken_file_keeps_the_last_good_policy() {
    let s = authz_setup(RELOAD_BASE);
    let mut admin = s.admin();
    create_topics_ok(&mut admin, &["t1"], 1);
    let mut alice = s.client("alice");
    assert_eq!(fetch_error(&mut alice, "t1"), TOPIC_AUTHORIZATION_FAILED);
    let granted = format!("{RELOAD_BASE}p, User:alice, Topic, t1, Read, *, allow\n");
    s.write_policy(&granted);
    eventually("grant reaches the open connection", RELOAD_WITHIN, || {
        fetch_error(&mut alice, "t1") == 0
    });
    s.write_policy(RELOAD_BASE);
    eventually(
        "revocation reaches the open connection",
        RELOAD_WITHIN,
        || fetch_error(&mut alice, "t1") == TOPIC_AUTHORIZATION_FAILED,
    );
    s.write_policy(&granted);
    eventually("grant again", RELOAD_WITHIN, || {
        fetch_error(&mut alice, "t1") == 0
    });
    // A broken file (which would not grant alice anything) is ignored: the last good policy stays.
    s.write_policy("p, User:bob, Topic, t1, Read\nnot a policy\n");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        fetch_error(&mut alice, "t1"),
        0,
        "a broken file replaced the policy"
    );
    assert_eq!(
        fetch_error(&mut s.client("alice"), "t1"),
        0,
        "new connections too"
    );
    // Reloading still works after the broken file.
    s.write_policy(RELOAD_BASE);
    eventually("revocation after a broken file", RELOAD_WITHIN, || {
        fetch_error(&mut alice, "t1") == TOPIC_AUTHORIZATION_FAILED
    });
}

#[test]
fn policy_reloads_on_sighup() {
    let s = authz_setup(RELOAD_BASE);
    create_topics_ok(&mut s.admin(), &["t1"], 1);
    let mut alice = s.client("alice");
    assert_eq!(fetch_error(&mut alice, "t1"), TOPIC_AUTHORIZATION_FAILED);
    // Keep the modification time, so that only the signal can tell the gateway to look.
    let mtime = std::fs::metadata(&s.policy)
        .and_then(|m| m.modified())
        .expect("policy mtime");
    s.write_policy(&format!(
        "{RELOAD_BASE}p, User:alice, Topic, t1, Read, *, allow\n"
    ));
    std::fs::File::options()
        .write(true)
        .open(&s.policy)
        .and_then(|f| f.set_modified(mtime))
        .expect("restore mtime");
    let ok = Command::new("kill")
        .args(["-HUP", &s.gateway.pid().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -HUP failed");
    eventually("SIGHUP reload", RELOAD_WITHIN, || {
        fetch_error(&mut alice, "t1") == 0
    });
}

// ---------------------------------------------------------------------------------------------------------
// Real clients
// ---------------------------------------------------------------------------------------------------------

/// alice may create, produce and consume `rk-*` topics in `rk-*` groups, but not write `rk-denied`.
const CLIENT_POLICY: &str = "p, User:alice, Topic, rk-*, All, *, allow\n\
                             p, User:alice, Group, rk-*, Read, *, allow\n\
                             p, User:alice, Topic, rk-denied, Write, *, deny\n";

fn client_args<'a>(s: &'a str, topic: &'a str, password: &'a str) -> Vec<&'a str> {
    vec![
        "roundtrip",
        "--bootstrap",
        s,
        "--topic",
        topic,
        "--count",
        "300",
        "--group",
        "rk-group",
        "--sasl-mechanism",
        "SCRAM-SHA-256",
        "--username",
        "alice",
        "--password",
        password,
    ]
}

fn assert_counts(what: &str, r: &WorkloadOutcome) {
    assert!(r.success, "{what}: {}\n{}", r.json, tail(&r.stderr, 3000));
    let j = &r.json;
    assert_eq!(
        (
            &j["produced"],
            &j["consumed"],
            &j["distinct"],
            &j["mismatches"]
        ),
        (
            &serde_json::json!(300),
            &serde_json::json!(300),
            &serde_json::json!(300),
            &serde_json::json!(0)
        ),
        "{what}: {j}"
    );
}

fn assert_topic_authorization_failure(what: &str, r: &WorkloadOutcome, markers: &[&str]) {
    assert!(!r.success, "{what} succeeded without WRITE: {}", r.json);
    let error = format!("{} {}", r.json["error"], r.json["last_client_error"]);
    assert!(
        markers.iter().any(|m| error.contains(m)),
        "{what}: expected a topic authorization error, got {}",
        r.json
    );
    assert!(
        r.json["produced"].as_u64().unwrap_or(0) == 0,
        "{what}: records were produced: {}",
        r.json
    );
}

#[test]
fn librdkafka_roundtrip_under_an_allowing_policy_and_topic_authorization_failed_without_write() {
    let s = authz_setup(CLIENT_POLICY);
    let bootstrap = s.bootstrap();
    let pw = password("alice");
    let r = python_workload_outcome(&s.tools, &client_args(&bootstrap, "rk-orders", &pw));
    assert_counts("librdkafka roundtrip", &r);
    let r = python_workload_outcome(&s.tools, &client_args(&bootstrap, "rk-denied", &pw));
    assert_topic_authorization_failure(
        "librdkafka produce to rk-denied",
        &r,
        &["TOPIC_AUTHORIZATION_FAILED", "Topic authorization failed"],
    );
    let mut admin = s.admin();
    let resp = fetch_by_name(&mut admin, &["rk-denied"]);
    assert!(record_values(&fetched(&resp, "rk-denied", 0).records).is_empty());
}

#[test]
fn java_roundtrip_under_an_allowing_policy_and_topic_authorization_exception_without_write() {
    let s = authz_setup(CLIENT_POLICY);
    let bootstrap = s.bootstrap();
    let pw = password("alice");
    let r = java_workload_outcome(&s.tools, &client_args(&bootstrap, "rk-orders", &pw));
    assert_counts("java roundtrip", &r);
    let r = java_workload_outcome(&s.tools, &client_args(&bootstrap, "rk-denied", &pw));
    assert_topic_authorization_failure(
        "java produce to rk-denied",
        &r,
        &["TopicAuthorizationException"],
    );
}
