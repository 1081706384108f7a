//! Safeguards (`s` lines) end to end against Apache Kafka 4.4: what the ACLs allow is held to the
//! principal's safeguards, and an element that breaks one is answered POLICY_VIOLATION (44) with
//! the safeguard's message, as Kafka's CreateTopicPolicy / AlterConfigPolicy answer, while the
//! rest of the request reaches the broker. Raw requests check exact codes and messages per
//! element, librdkafka and the Java client see the same, the broker is asked directly what was
//! (not) created or altered, and requests no safeguard concerns are answered as the broker
//! (which has no `create.topic.policy.class.name`) answers them.

mod common;

use std::path::Path;

use common::apache::*;
use common::kafka::*;
use common::sasl::login;
use common::*;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::*;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const POLICY_VIOLATION: i16 = 44;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

const LISTENER: ListenerSpec = ListenerSpec {
    name: "sasl",
    tls: false,
    client_auth: "none",
    sasl: r#""SCRAM-SHA-256""#,
};

const USERS: [&str; 5] = ["admin", "alice", "bob", "carol", "dave"];

/// alice may do anything with topics and alter broker configs; bob (Group:etl) creates etl.*
/// topics only by name; carol needs replication factor 2 or more; dave may not create at all.
const POLICY: &str = r"
p, User:alice, Topic, *, All, *, allow
p, User:alice, Cluster, kafka-cluster, AlterConfigs, *, allow
p, User:bob, Topic, *, All, *, allow
p, User:carol, Topic, *, All, *, allow
p, User:dave, Topic, *, Describe, *, allow
g, User:bob, Group:etl
s, User:*, Topic, *, partitions, 1..8
s, User:*, Topic, *, config.retention.ms, 3600000..604800000
s, User:*, Topic, *, config.cleanup.policy, delete|compact
s, User:*, Topic, *, forbid_config, unclean.leader.election.enable
s, Group:etl, Topic, *, name, ^etl\.[a-z0-9.-]+$
s, User:carol, Topic, *, replication_factor, >=2
s, User:alice, Broker, *, allow_config, log.cleaner.threads|log.retention.ms
";

fn password(user: &str) -> String {
    format!("{user}-secret")
}

struct Setup {
    _dir: TempDir,
    policy: std::path::PathBuf,
    audit: std::path::PathBuf,
    broker: KafkaCluster,
    gateway: Gateway,
    tools: Tools,
}

fn setup() -> Setup {
    let tools = tools();
    let dir = TempDir::new("safeguards");
    let broker = KafkaCluster::start();
    let users = dir.path().join("users.toml");
    for user in USERS {
        add_scram_user(&users, user, &password(user), &["SCRAM-SHA-256"]);
    }
    let model = dir.path().join("model.conf");
    std::fs::copy(repo_root().join("policies/model.conf"), &model).expect("copy the model");
    let policy = dir.path().join("acl.policy");
    std::fs::write(&policy, POLICY).expect("write policy");
    let audit = dir.path().join("audit");
    let extra = format!(
        "[authentication]\ncredentials_file = {users:?}\ntimeout = \"5s\"\n\n\
         [authorization]\nmodel = {model:?}\npolicy_files = [{policy:?}]\n\
         super_users = [\"User:admin\"]\n\n[audit]\ndir = {audit:?}\n"
    );
    let (text, ports, admin) = gateway_config(&broker.upstream(), &[LISTENER], None, &extra);
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    Setup {
        _dir: dir,
        policy,
        audit,
        broker,
        gateway,
        tools,
    }
}

impl Setup {
    fn client(&self, user: &str) -> RawClient {
        let mut c = RawClient::connect(self.gateway.addr(LISTENER.name));
        let l = login(&mut c, "SCRAM-SHA-256", user, &password(user));
        assert_eq!(l.error_code(), 0, "login as {user}: {}", l.message());
        c
    }

    /// A connection straight to the broker (its PLAINTEXT listener, no gateway).
    fn direct(&self) -> RawClient {
        RawClient::connect(self.broker.socket(KafkaListener::Plaintext))
    }

    fn client_args(&self, user: &str) -> Vec<String> {
        [
            "--bootstrap",
            &self.gateway.addr(LISTENER.name).to_string(),
            "--sasl-mechanism",
            "SCRAM-SHA-256",
            "--username",
            user,
            "--password",
            &password(user),
            "--op-timeout",
            "20",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

fn new_topic(name: &str, partitions: i32, rf: i16, configs: &[(&str, &str)]) -> CreatableTopic {
    let mut t = CreatableTopic::default();
    t.name = topic(name);
    t.num_partitions = partitions;
    t.replication_factor = rf;
    t.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = sb(k);
            c.value = Some(sb(v));
            c
        })
        .collect();
    t
}

fn create(
    c: &mut RawClient,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
) -> CreateTopicsResponse {
    let mut req = CreateTopicsRequest::default();
    req.topics = topics;
    req.timeout_ms = 15_000;
    req.validate_only = validate_only;
    c.request(ApiKey::CreateTopics, 7, &req)
}

/// (code, message) per topic name.
fn create_results(resp: &CreateTopicsResponse) -> Vec<(String, i16, String)> {
    let mut out: Vec<_> = resp
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.error_code,
                t.error_message.as_deref().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn result_of<'a>(results: &'a [(String, i16, String)], name: &str) -> (i16, &'a str) {
    let r = results
        .iter()
        .find(|r| r.0 == name)
        .unwrap_or_else(|| panic!("no result for {name} in {results:?}"));
    (r.1, &r.2)
}

fn partition_count(c: &mut RawClient, name: &str) -> usize {
    let resp = metadata(c, Some(&[name]), false);
    resp.topics
        .iter()
        .find(|t| t.name == Some(topic(name)))
        .map_or(0, |t| t.partitions.len())
}

fn topic_config(c: &mut RawClient, name: &str, key: &str) -> Option<String> {
    let mut r = DescribeConfigsResource::default();
    r.resource_type = RESOURCE_TOPIC;
    r.resource_name = sb(name);
    r.configuration_keys = Some(vec![sb(key)]);
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![r];
    let resp: DescribeConfigsResponse = c.request(ApiKey::DescribeConfigs, 4, &req);
    let res = &resp.results[0];
    assert_eq!(res.error_code, 0, "describe {name}: {res:?}");
    res.configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
}

/// A config resource (type, name) and its configs (name, value).
type LegacyResource<'a> = (i8, &'a str, &'a [(&'a str, &'a str)]);
/// A config resource (type, name) and its configs (name, operation, value).
type IncrementalResource<'a> = (i8, &'a str, &'a [(&'a str, i8, Option<&'a str>)]);

fn legacy_alter(c: &mut RawClient, resources: &[LegacyResource<'_>]) -> Vec<(String, i16, String)> {
    let mut req = AlterConfigsRequest::default();
    req.resources = resources
        .iter()
        .map(|(rtype, name, configs)| {
            let mut r = AlterConfigsResource::default();
            r.resource_type = *rtype;
            r.resource_name = sb(name);
            r.configs = configs
                .iter()
                .map(|(k, v)| {
                    let mut c = AlterableConfig::default();
                    c.name = sb(k);
                    c.value = Some(sb(v));
                    c
                })
                .collect();
            r
        })
        .collect();
    let resp: AlterConfigsResponse = c.request(ApiKey::AlterConfigs, 2, &req);
    resp.responses
        .iter()
        .map(|r| {
            (
                r.resource_name.to_string(),
                r.error_code,
                r.error_message.as_deref().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// IncrementalAlterConfigs; each config is (name, operation, value).
fn incremental_alter(
    c: &mut RawClient,
    resources: &[IncrementalResource<'_>],
) -> Vec<(String, i16, String)> {
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = resources
        .iter()
        .map(|(rtype, name, configs)| {
            let mut r = incremental::AlterConfigsResource::default();
            r.resource_type = *rtype;
            r.resource_name = sb(name);
            r.configs = configs
                .iter()
                .map(|(k, op, v)| {
                    let mut c = incremental::AlterableConfig::default();
                    c.name = sb(k);
                    c.config_operation = *op;
                    c.value = v.map(sb);
                    c
                })
                .collect();
            r
        })
        .collect();
    let resp: IncrementalAlterConfigsResponse = c.request(ApiKey::IncrementalAlterConfigs, 1, &req);
    resp.responses
        .iter()
        .map(|r| {
            (
                r.resource_name.to_string(),
                r.error_code,
                r.error_message.as_deref().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The (code, message) answered for resource `name`: clients match config answers by resource,
/// not by position.
fn for_resource(results: &[(String, i16, String)], name: &str) -> (i16, String) {
    let r = results
        .iter()
        .find(|r| r.0 == name)
        .unwrap_or_else(|| panic!("no answer for {name} in {results:?}"));
    (r.1, r.2.clone())
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;

#[test]
fn create_topics_violations_are_answered_per_topic_and_never_reach_the_broker() {
    let s = setup();
    let mut alice = s.client("alice");
    let mut direct = s.direct();
    let topics = || {
        vec![
            new_topic("ok-a", 3, 1, &[("retention.ms", "7200000")]),
            new_topic("big-a", 100, 1, &[]),
            new_topic("ret-a", 1, 1, &[("retention.ms", "1")]),
            new_topic(
                "unclean-a",
                1,
                1,
                &[("unclean.leader.election.enable", "true")],
            ),
            new_topic("cp-a", 1, 1, &[("cleanup.policy", "compact,delete")]),
            new_topic("shred-a", 1, 1, &[("cleanup.policy", "shred")]),
        ]
    };
    // validate_only gets the same answers, and creates nothing.
    let checked = create_results(&create(&mut alice, topics(), true));
    let created = create_results(&create(&mut alice, topics(), false));
    for results in [&checked, &created] {
        assert_eq!(result_of(results, "ok-a"), (0, ""));
        assert_eq!(result_of(results, "cp-a"), (0, ""));
        assert_eq!(
            result_of(results, "big-a"),
            (
                POLICY_VIOLATION,
                "Topic big-a: 100 partitions, the allowed number is between 1 and 8. (gateway safeguard)"
            )
        );
        assert_eq!(
            result_of(results, "ret-a"),
            (
                POLICY_VIOLATION,
                "Topic ret-a: retention.ms=1 is not allowed, the value must be between 3600000 and 604800000. (gateway safeguard)"
            )
        );
        assert_eq!(
            result_of(results, "unclean-a"),
            (
                POLICY_VIOLATION,
                "Topic unclean-a: setting unclean.leader.election.enable is not allowed. (gateway safeguard)"
            )
        );
        assert_eq!(result_of(results, "shred-a").0, POLICY_VIOLATION);
    }
    wait_for_leaders(&mut direct, &["ok-a", "cp-a"]);
    for name in ["ok-a", "cp-a"] {
        assert!(topic_exists(&mut direct, name), "{name} was not created");
    }
    for name in ["big-a", "ret-a", "unclean-a", "shred-a"] {
        assert!(
            !topic_exists(&mut direct, name),
            "{name} reached the broker"
        );
    }
    assert_eq!(
        topic_config(&mut direct, "ok-a", "retention.ms").as_deref(),
        Some("7200000")
    );

    // Kafka itself (no create.topic.policy.class.name) accepts every one of them.
    let mut unguarded = topics();
    for t in &mut unguarded {
        t.name = topic(&format!("direct-{}", t.name.0));
    }
    let broker_says = create_results(&create(&mut direct, unguarded, true));
    for (name, code, _) in &broker_says {
        let expected = if name == "direct-shred-a" { 40 } else { 0 };
        assert_eq!(*code, expected, "the broker on {name}: {broker_says:?}");
    }

    // Authorization first: dave may not create, so he gets 29 however many partitions.
    let mut dave = s.client("dave");
    let r = create_results(&create(
        &mut dave,
        vec![new_topic("big-d", 100, 1, &[])],
        false,
    ));
    assert_eq!(
        result_of(&r, "big-d"),
        (TOPIC_AUTHORIZATION_FAILED, "Authorization failed.")
    );

    // Group:etl's name pattern, for bob only.
    let mut bob = s.client("bob");
    let r = create_results(&create(
        &mut bob,
        vec![
            new_topic("orders", 1, 1, &[]),
            new_topic("etl.daily", 1, 1, &[]),
        ],
        false,
    ));
    assert_eq!(
        result_of(&r, "orders"),
        (
            POLICY_VIOLATION,
            r"Topic orders: the name does not match the required pattern ^etl\.[a-z0-9.-]+$. (gateway safeguard)"
        )
    );
    assert_eq!(result_of(&r, "etl.daily"), (0, ""));
    let r = create_results(&create(
        &mut alice,
        vec![new_topic("orders", 1, 1, &[])],
        false,
    ));
    assert_eq!(result_of(&r, "orders"), (0, ""));

    // carol's replication-factor minimum: factor 1 is refused at the gateway; factor 2 passes it
    // and reaches the broker, which has one node (38).
    let mut carol = s.client("carol");
    let r = create_results(&create(
        &mut carol,
        vec![new_topic("rf1-c", 1, 1, &[]), new_topic("rf2-c", 1, 2, &[])],
        false,
    ));
    assert_eq!(
        result_of(&r, "rf1-c"),
        (
            POLICY_VIOLATION,
            "Topic rf1-c: replication factor 1, the allowed factor is at least 2. (gateway safeguard)"
        )
    );
    assert_eq!(result_of(&r, "rf2-c").0, INVALID_REPLICATION_FACTOR);

    // No safeguard concerns these: the gateway answers exactly as the broker does (broker
    // defaults, a config no safeguard names, a bad value of it).
    let plain = |prefix: &str| {
        vec![
            new_topic(&format!("{prefix}-defaults"), -1, -1, &[]),
            new_topic(&format!("{prefix}-seg"), 2, 1, &[("segment.bytes", "abc")]),
        ]
    };
    let via_gateway = create(&mut alice, plain("same"), true);
    let from_broker = create(&mut direct, plain("same"), true);
    assert_eq!(via_gateway.topics.len(), 2);
    for (g, b) in via_gateway.topics.iter().zip(&from_broker.topics) {
        assert_eq!(g.name, b.name);
        assert_eq!(
            (
                g.error_code,
                &g.error_message,
                g.num_partitions,
                g.replication_factor
            ),
            (
                b.error_code,
                &b.error_message,
                b.num_partitions,
                b.replication_factor
            ),
            "{:?}",
            g.name
        );
    }
}

#[test]
fn partitions_and_config_changes_are_held_to_the_safeguards() {
    let s = setup();
    let mut alice = s.client("alice");
    let mut direct = s.direct();
    create_topics_ok(&mut direct, &["grow", "conf"], 2);

    // CreatePartitions (Kafka has no policy hook for it; the gateway's range applies).
    let mut req = CreatePartitionsRequest::default();
    req.timeout_ms = 15_000;
    req.topics = [("grow", 4), ("conf", 20)]
        .iter()
        .map(|(n, count)| {
            let mut t = CreatePartitionsTopic::default();
            t.name = topic(n);
            t.count = *count;
            t.assignments = None;
            t
        })
        .collect();
    let resp: CreatePartitionsResponse = alice.request(ApiKey::CreatePartitions, 3, &req);
    let by_name = |n: &str| {
        let r = resp
            .results
            .iter()
            .find(|r| r.name.0.as_str() == n)
            .expect("result");
        (
            r.error_code,
            r.error_message.as_deref().unwrap_or("").to_string(),
        )
    };
    assert_eq!(by_name("grow"), (0, String::new()));
    assert_eq!(
        by_name("conf"),
        (
            POLICY_VIOLATION,
            "Topic conf: 20 partitions requested, the allowed number is between 1 and 8. (gateway safeguard)".into()
        )
    );
    eventually(
        "grow has 4 partitions",
        std::time::Duration::from_secs(10),
        || partition_count(&mut direct, "grow") == 4,
    );
    assert_eq!(partition_count(&mut direct, "conf"), 2);

    // AlterConfigs (legacy): per resource, topic and broker.
    let r = legacy_alter(
        &mut alice,
        &[
            (RESOURCE_TOPIC, "grow", &[("retention.ms", "7200000")]),
            (RESOURCE_TOPIC, "conf", &[("retention.ms", "1")]),
            (RESOURCE_BROKER, "1", &[("num.io.threads", "4")]),
        ],
    );
    assert_eq!(for_resource(&r, "grow"), (0, String::new()));
    assert_eq!(
        for_resource(&r, "conf"),
        (
            POLICY_VIOLATION,
            "Topic conf: retention.ms=1 is not allowed, the value must be between 3600000 and 604800000. (gateway safeguard)".into()
        )
    );
    assert_eq!(
        for_resource(&r, "1"),
        (
            POLICY_VIOLATION,
            "Broker 1: setting num.io.threads is not allowed, only log.cleaner.threads, log.retention.ms may be set. (gateway safeguard)".into()
        )
    );
    eventually(
        "grow's retention.ms",
        std::time::Duration::from_secs(10),
        || topic_config(&mut direct, "grow", "retention.ms").as_deref() == Some("7200000"),
    );
    assert_ne!(
        topic_config(&mut direct, "conf", "retention.ms").as_deref(),
        Some("1")
    );

    // IncrementalAlterConfigs: SET and APPEND are held to the limits, DELETE goes through.
    let r = incremental_alter(
        &mut alice,
        &[
            (RESOURCE_TOPIC, "conf", &[("retention.ms", SET, Some("3"))]),
            (
                RESOURCE_TOPIC,
                "grow",
                &[("cleanup.policy", APPEND, Some("compact"))],
            ),
            (
                RESOURCE_BROKER,
                "1",
                &[("log.cleaner.threads", SET, Some("1"))],
            ),
        ],
    );
    let conf = for_resource(&r, "conf");
    assert_eq!(conf.0, POLICY_VIOLATION, "{r:?}");
    assert!(conf.1.contains("retention.ms=3 is not allowed"), "{r:?}");
    assert_eq!(for_resource(&r, "grow"), (0, String::new()));
    assert_eq!(for_resource(&r, "1"), (0, String::new()));
    // The broker applies the change a moment after answering.
    eventually(
        "compact appended to grow's cleanup.policy",
        std::time::Duration::from_secs(10),
        || {
            topic_config(&mut direct, "grow", "cleanup.policy")
                .is_some_and(|v| v.split(',').any(|p| p == "compact"))
        },
    );
    let r = incremental_alter(
        &mut alice,
        &[
            (
                RESOURCE_TOPIC,
                "grow",
                &[("cleanup.policy", APPEND, Some("shred"))],
            ),
            (
                RESOURCE_TOPIC,
                "conf",
                &[("unclean.leader.election.enable", DELETE, None)],
            ),
        ],
    );
    assert_eq!(for_resource(&r, "grow").0, POLICY_VIOLATION, "{r:?}");
    assert_eq!(for_resource(&r, "conf"), (0, String::new()));

    // Unchanged when no safeguard concerns the change: the broker's own answer for a bad value.
    let via_gateway = incremental_alter(
        &mut alice,
        &[(
            RESOURCE_TOPIC,
            "conf",
            &[("segment.bytes", SET, Some("abc"))],
        )],
    );
    let from_broker = incremental_alter(
        &mut direct,
        &[(
            RESOURCE_TOPIC,
            "conf",
            &[("segment.bytes", SET, Some("abc"))],
        )],
    );
    assert_eq!(via_gateway, from_broker);
    assert_ne!(via_gateway[0].1, 0);
}

fn outcomes(result: &serde_json::Value) -> Vec<(i64, String)> {
    assert_eq!(result["ok"], true, "{result}");
    result["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["code"].as_i64().expect("code"),
                r["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn librdkafka_and_java_clients_get_policy_violations() {
    let s = setup();
    let mut direct = s.direct();
    for (client, prefix) in [("python", "py"), ("java", "jv")] {
        let mut ops = vec![
            format!("create {prefix}-ok 2 1 retention.ms=7200000"),
            format!("create {prefix}-big 50 1"),
            format!("validate {prefix}-ret 1 1 retention.ms=5"),
            format!("create {prefix}-unclean 1 1 unclean.leader.election.enable=true"),
            format!("partitions {prefix}-ok 4"),
            format!("partitions {prefix}-ok 9"),
            format!("incremental topic {prefix}-ok retention.ms=1"),
            format!("incremental topic {prefix}-ok retention.ms=86400000"),
            "incremental broker 1 num.io.threads=4".to_string(),
        ];
        if client == "python" {
            // The legacy AlterConfigs (the 4.x Java Admin no longer has it).
            ops.push(format!("alter topic {prefix}-ok retention.ms=2"));
            ops.push(format!("alter topic {prefix}-ok retention.ms=3600000"));
        }
        let mut args = vec!["safeguards".to_string()];
        args.extend(s.client_args("alice"));
        for op in &ops {
            args.push("--op".into());
            args.push(op.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let result = match client {
            "python" => python_workload(&s.tools, &args),
            _ => java44_workload(&s.tools, &args),
        };
        let got = outcomes(&result);
        assert_eq!(got.len(), ops.len(), "{result}");
        let expect = |i: usize, code: i64, needle: &str| {
            assert_eq!(got[i].0, code, "{client}: {} -> {:?}", ops[i], got[i]);
            assert!(
                got[i].1.contains(needle),
                "{client}: {} -> {:?}",
                ops[i],
                got[i]
            );
        };
        expect(0, 0, "");
        expect(
            1,
            44,
            "50 partitions, the allowed number is between 1 and 8",
        );
        expect(2, 44, "retention.ms=5 is not allowed");
        expect(
            3,
            44,
            "setting unclean.leader.election.enable is not allowed",
        );
        expect(4, 0, "");
        expect(5, 44, "9 partitions requested");
        expect(6, 44, "retention.ms=1 is not allowed");
        expect(7, 0, "");
        expect(8, 44, "setting num.io.threads is not allowed");
        if client == "python" {
            expect(9, 44, "retention.ms=2 is not allowed");
            expect(10, 0, "");
        }
        // What the broker holds.
        let ok = format!("{prefix}-ok");
        assert!(topic_exists(&mut direct, &ok), "{client}");
        for bad in ["big", "ret", "unclean"] {
            assert!(
                !topic_exists(&mut direct, &format!("{prefix}-{bad}")),
                "{client}: {bad}"
            );
        }
        assert_eq!(partition_count(&mut direct, &ok), 4, "{client}");
        let retention = if client == "python" {
            "3600000"
        } else {
            "86400000"
        };
        eventually(
            &format!("{client}: {ok}'s retention.ms"),
            std::time::Duration::from_secs(10),
            || topic_config(&mut direct, &ok, "retention.ms").as_deref() == Some(retention),
        );
    }
}

#[test]
fn policy_check_and_explain_show_safeguards() {
    let dir = TempDir::new("safeguards-cli");
    let model = dir.path().join("model.conf");
    std::fs::copy(repo_root().join("policies/model.conf"), &model).expect("copy the model");
    let good = dir.path().join("good.policy");
    std::fs::write(&good, POLICY).expect("write");
    let bad = dir.path().join("bad.policy");
    std::fs::write(
        &bad,
        "p, User:alice, Topic, *, All, *, allow\n\
         s, User:*, Topic, *, partitions, 9..1\n\
         s, User:*, Broker, *, name, ^x$\n\
         s, User:*, Topic, *, colour, blue\n",
    )
    .expect("write");
    let cli = |file: &Path, rest: &[&str]| {
        let mut args = vec![
            "policy".to_string(),
            "--model".into(),
            model.display().to_string(),
            "--file".into(),
            file.display().to_string(),
        ];
        args.extend(rest.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gateway_cli(&args, None)
    };
    let out = cli(&good, &["check"]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("7 safeguards"), "{}", out.stdout);

    let out = cli(&bad, &["check"]);
    assert!(!out.ok);
    let text = format!("{}{}", out.stdout, out.stderr);
    let name = bad.display().to_string();
    for (line, needle) in [
        (2, "empty range `9..1`"),
        (3, "applies to topics only"),
        (4, "unknown safeguard `colour`"),
    ] {
        assert!(
            text.contains(&format!("{name}:{line}: ")) && text.contains(needle),
            "{needle} at line {line}: {text}"
        );
    }

    let out = cli(
        &good,
        &[
            "explain",
            "User:bob",
            "Create",
            "Topic:orders",
            "--partitions",
            "100",
            "--replication-factor",
            "1",
            "--set",
            "retention.ms=1",
        ],
    );
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let good_name = good.display().to_string();
    assert!(
        out.stdout.contains(&format!(
            "decided by safeguard {good_name}:8: POLICY_VIOLATION (44)"
        )),
        "{}",
        out.stdout
    );
    for needle in [
        "REFUSES: Topic orders: 100 partitions",
        "retention.ms=1 is not allowed",
        "does not match the required pattern",
    ] {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
    // `policy explain WORDS` answers, mentioning each of `needles`.
    let explains = |line: &str, needles: &[&str]| {
        let mut args = vec!["explain"];
        args.extend(words(line));
        let out = cli(&good, &args);
        assert!(out.ok, "{line}: {}{}", out.stdout, out.stderr);
        for needle in needles {
            assert!(
                out.stdout.contains(needle),
                "{line}: no `{needle}` in {}",
                out.stdout
            );
        }
    };
    explains(
        "User:alice Create Topic:fine --partitions 4",
        &["every safeguard passes"],
    );
    // The ACLs come first: dave may not create, the safeguards are not reached.
    explains(
        "User:dave Create Topic:x --partitions 100",
        &["not reached: the ACLs deny this"],
    );
    explains(
        "User:alice Alter Topic:x --partitions 9",
        &[
            "CreatePartitions of Topic x (to 9 partitions)",
            "POLICY_VIOLATION (44)",
        ],
    );
    explains(
        "User:alice AlterConfigs Cluster --broker 1 --set num.io.threads=4",
        &["setting num.io.threads is not allowed"],
    );
}

#[test]
fn a_reloaded_safeguard_applies_at_once_and_each_refusal_is_in_the_trail() {
    let s = setup();
    let mut alice = s.client("alice");
    let resp = create(&mut alice, vec![new_topic("rl-wide", 12, 1, &[])], false);
    let (code, _) = result_of(&create_results(&resp), "rl-wide");
    assert_eq!(code, POLICY_VIOLATION);
    // The range changes on disk; the open connection sees it once the reload is in.
    let set_range = |range: &str| {
        let reloads = |g: &Gateway| metric_sum(&g.metrics(), "kafka_gateway_reloads_total");
        let before = reloads(&s.gateway);
        std::fs::write(
            &s.policy,
            POLICY.replace("partitions, 1..8", &format!("partitions, {range}")),
        )
        .expect("policy");
        eventually(
            &format!("the safeguard's range {range} loaded"),
            std::time::Duration::from_secs(8),
            || reloads(&s.gateway) > before,
        );
    };
    set_range("1..16");
    let resp = create(&mut alice, vec![new_topic("rl-wide", 12, 1, &[])], false);
    assert_eq!(
        result_of(&create_results(&resp), "rl-wide").0,
        0,
        "{resp:?}"
    );
    assert_eq!(partition_count(&mut s.direct(), "rl-wide"), 12);
    // Tightened again: refused again, on the same connection.
    set_range("1..4");
    let resp = create(&mut alice, vec![new_topic("rl-narrow", 6, 1, &[])], false);
    assert_eq!(
        result_of(&create_results(&resp), "rl-narrow").0,
        POLICY_VIOLATION
    );
    // Both refusals are denials in the trail, naming the `s` line that decided.
    let refusals: Vec<serde_json::Value> = trail_records(&s.audit)
        .into_iter()
        .filter(|r| {
            r["event"] == "authz_decision"
                && r["decision"] == "deny"
                && r["resource_name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("rl-"))
        })
        .collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    for r in &refusals {
        let text = r["rule"]["text"].as_str().unwrap_or_default();
        assert!(text.starts_with("s, User:*, Topic, *, partitions"), "{r}");
        assert_eq!(r["api_name"], "CreateTopics", "{r}");
        assert_eq!(r["principal"], "User:alice", "{r}");
    }
}
