//! Differential authorization: the same principal sends the same request (a) directly to Apache
//! Kafka 4.4, logged in as that user, with ACLs created through the Admin API (CreateAcls), and
//! (b) through the gateway, with the same ACLs as a policy file, to a second, identical cluster that
//! the gateway reaches with its super-user identity. The two answers must match wherever
//! authorization shows: error codes, which topics and groups are listed, authorized-operations
//! bitfields, filtered offsets, and everything else a request returns, after masking only what
//! differs by construction between two clusters (topic ids, broker addresses, cluster ids, member
//! ids, producer ids, timestamps, error message texts).
//!
//! Both clusters start from the same fixture and receive the same requests in the same order, so
//! requests that change state (produce, commit, join) keep them identical as long as the answers
//! agree; the first difference is what a failure reports.
//!
//! The ACL sets are the scenarios of SECURITY-SCENARIOS.md 1-32 plus random ones (literal, prefixed
//! and wildcard patterns, deny rules, host rules, `Group:` principals that the Kafka side gets
//! expanded to their members). Requests cover every API the gateway forwards at every version both
//! offer. `KGW_DIFF_SEED` replays a run; `KGW_DIFF_SETS` sets how many random ACL sets run.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::apache::*;
use common::kafka::{create_topics_ok, offset_commit, produce_ok, record_batch, BatchProducer};
use common::sasl::login;
use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------------------
// A small seeded generator (splitmix64): a run is replayed from its seed alone.
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    /// 1..=max distinct elements of `xs`, in a random order.
    fn some<T: Clone>(&mut self, xs: &[T], max: usize) -> Vec<T> {
        let n = 1 + self.below(max.min(xs.len()));
        let mut idx: Vec<usize> = (0..xs.len()).collect();
        for i in (1..idx.len()).rev() {
            idx.swap(i, self.below(i + 1));
        }
        idx.into_iter().take(n).map(|i| xs[i].clone()).collect()
    }
}

// ---------------------------------------------------------------------------------------------------------
// ACL sets, written both ways
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum RType {
    Topic,
    Group,
    TransactionalId,
    Cluster,
}

impl RType {
    fn gateway(self) -> &'static str {
        match self {
            RType::Topic => "Topic",
            RType::Group => "Group",
            RType::TransactionalId => "TransactionalId",
            RType::Cluster => "Cluster",
        }
    }
    fn kafka(self) -> i8 {
        match self {
            RType::Topic => 2,
            RType::Group => 3,
            RType::Cluster => 4,
            RType::TransactionalId => 5,
        }
    }
    /// The operations Kafka accepts for the type (AclCommand's table), `All` included.
    fn ops(self) -> &'static [&'static str] {
        match self {
            RType::Topic => &[
                "Read",
                "Write",
                "Create",
                "Delete",
                "Alter",
                "Describe",
                "DescribeConfigs",
                "AlterConfigs",
                "All",
            ],
            RType::Group => &[
                "Read",
                "Describe",
                "Delete",
                "DescribeConfigs",
                "AlterConfigs",
                "All",
            ],
            RType::TransactionalId => &["Describe", "Write", "All"],
            RType::Cluster => &[
                "Create",
                "ClusterAction",
                "DescribeConfigs",
                "AlterConfigs",
                "IdempotentWrite",
                "Alter",
                "Describe",
                "All",
            ],
        }
    }
}

fn kafka_op(op: &str) -> i8 {
    match op {
        "All" => 2,
        "Read" => 3,
        "Write" => 4,
        "Create" => 5,
        "Delete" => 6,
        "Alter" => 7,
        "Describe" => 8,
        "ClusterAction" => 9,
        "DescribeConfigs" => 10,
        "AlterConfigs" => 11,
        "IdempotentWrite" => 12,
        other => panic!("no Kafka operation {other}"),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pattern {
    Literal(String),
    Prefixed(String),
    Wildcard,
}

#[derive(Clone, Debug)]
struct Acl {
    principal: &'static str,
    rtype: RType,
    pattern: Pattern,
    op: &'static str,
    host: &'static str,
    allow: bool,
}

fn acl(
    principal: &'static str,
    rtype: RType,
    pattern: Pattern,
    op: &'static str,
    host: &'static str,
    allow: bool,
) -> Acl {
    Acl {
        principal,
        rtype,
        pattern,
        op,
        host,
        allow,
    }
}

fn lit(s: &str) -> Pattern {
    Pattern::Literal(s.to_string())
}

fn pre(s: &str) -> Pattern {
    Pattern::Prefixed(s.to_string())
}

/// Members of the one `Group:` principal the sets use.
const OPS_MEMBERS: [&str; 2] = ["alice", "carol"];

/// The ACL set as a gateway policy file.
fn policy_text(acls: &[Acl]) -> String {
    let mut out = String::from("# generated by e2e_differential\n");
    for m in OPS_MEMBERS {
        out.push_str(&format!("g, User:{m}, Group:ops\n"));
    }
    for a in acls {
        let pattern = match &a.pattern {
            Pattern::Literal(n) => n.clone(),
            Pattern::Prefixed(p) => format!("{p}*"),
            Pattern::Wildcard => "*".to_string(),
        };
        out.push_str(&format!(
            "p, {}, {}, {pattern}, {}, {}, {}\n",
            a.principal,
            a.rtype.gateway(),
            a.op,
            a.host,
            if a.allow { "allow" } else { "deny" }
        ));
    }
    out
}

/// The same set as Kafka ACL bindings: `Group:ops` expanded to its members (Kafka has no groups),
/// the cluster named kafka-cluster. Deduplicated, as Kafka stores a binding once.
fn kafka_bindings(acls: &[Acl]) -> BTreeSet<(i8, String, i8, String, String, i8, i8)> {
    let mut out = BTreeSet::new();
    for a in acls {
        let principals: Vec<String> = if a.principal == "Group:ops" {
            OPS_MEMBERS.iter().map(|m| format!("User:{m}")).collect()
        } else {
            vec![a.principal.to_string()]
        };
        let (name, pattern_type) = match (&a.pattern, a.rtype) {
            (_, RType::Cluster) => ("kafka-cluster".to_string(), 3),
            (Pattern::Literal(n), _) => (n.clone(), 3),
            (Pattern::Prefixed(p), _) => (p.clone(), 4),
            (Pattern::Wildcard, _) => ("*".to_string(), 3),
        };
        for p in principals {
            out.insert((
                a.rtype.kafka(),
                name.clone(),
                pattern_type,
                p,
                a.host.to_string(),
                kafka_op(a.op),
                if a.allow { 3 } else { 2 },
            ));
        }
    }
    out
}

/// Names in the fixture, and names that do not exist, that requests and ACLs draw from.
const TOPICS: [&str; 5] = ["t0", "t1", "pay-x", "other", "nope"];
const GROUPS: [&str; 3] = ["g0", "g1", "gnew"];
const TXN_IDS: [&str; 3] = ["x0", "pay-tx", "x-other"];
const PRINCIPALS: [&str; 3] = ["alice", "bob", "carol"];
/// Client source addresses (host rules name the first two).
const HOSTS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];

fn random_acl(rng: &mut Rng) -> Acl {
    let principal = *rng.pick(&[
        "User:alice",
        "User:bob",
        "User:carol",
        "User:*",
        "Group:ops",
    ]);
    let rtype = *rng.pick(&[
        RType::Topic,
        RType::Topic,
        RType::Topic,
        RType::Group,
        RType::Group,
        RType::TransactionalId,
        RType::Cluster,
    ]);
    let pattern = match rtype {
        RType::Cluster => lit("kafka-cluster"),
        _ => {
            let names: &[&str] = match rtype {
                RType::Topic => &TOPICS,
                RType::Group => &GROUPS,
                _ => &TXN_IDS,
            };
            let prefixes: &[&str] = match rtype {
                RType::Topic => &["t", "pay-", "o"],
                RType::Group => &["g", "g-"],
                _ => &["x", "pay-"],
            };
            match rng.below(10) {
                0..=5 => lit(names[rng.below(names.len())]),
                6..=8 => pre(prefixes[rng.below(prefixes.len())]),
                _ => Pattern::Wildcard,
            }
        }
    };
    let op = *rng.pick(rtype.ops());
    let host = match rng.below(10) {
        0 => "127.0.0.2",
        1 => "127.0.0.3",
        _ => "*",
    };
    Acl {
        principal,
        rtype,
        pattern,
        op,
        host,
        allow: !rng.chance(20),
    }
}

fn random_acls(rng: &mut Rng) -> Vec<Acl> {
    let n = 4 + rng.below(12);
    (0..n).map(|_| random_acl(rng)).collect()
}

/// The ACL sets of SECURITY-SCENARIOS.md 1-32 (as in e2e_authz).
fn scenario_sets() -> Vec<(String, Vec<Acl>)> {
    use RType::*;
    let a = "User:alice";
    let b = "User:bob";
    let c = "User:carol";
    vec![
        (
            "01 produce without write".into(),
            vec![
                acl(b, Topic, lit("t0"), "Describe", "*", true),
                acl(c, Topic, lit("t0"), "Read", "*", true),
                acl(a, Topic, lit("t1"), "Write", "*", true),
            ],
        ),
        (
            "02 missing topic".into(),
            vec![acl(a, Topic, lit("other"), "Write", "*", true)],
        ),
        (
            "03 idempotent write".into(),
            vec![
                acl(a, Topic, lit("t0"), "Read", "*", true),
                acl(b, Topic, lit("t0"), "Write", "*", true),
                acl(
                    c,
                    Cluster,
                    lit("kafka-cluster"),
                    "IdempotentWrite",
                    "*",
                    true,
                ),
            ],
        ),
        (
            "04 deny on wildcard".into(),
            vec![
                acl(a, Topic, lit("t0"), "Write", "*", true),
                acl(a, Topic, pre("t"), "Write", "*", true),
                acl(a, Topic, Pattern::Wildcard, "Write", "*", false),
                acl(b, Topic, lit("t0"), "Write", "*", true),
            ],
        ),
        (
            "05 transactional id".into(),
            vec![
                acl(a, TransactionalId, lit("x0"), "Describe", "*", true),
                acl(b, TransactionalId, lit("x0"), "Write", "*", true),
                acl(b, Topic, lit("t0"), "Write", "*", true),
            ],
        ),
        (
            "06-07 transactional produce".into(),
            vec![
                acl(a, Topic, lit("t0"), "Write", "*", true),
                acl(a, TransactionalId, lit("x0"), "Describe", "*", true),
            ],
        ),
        (
            "08-12 metadata".into(),
            vec![
                acl(a, Topic, lit("t1"), "Describe", "*", true),
                acl(a, Topic, lit("nope"), "Describe", "*", true),
                acl(b, Topic, lit("nope"), "Create", "*", true),
                acl(b, Topic, lit("nope"), "Describe", "*", true),
            ],
        ),
        (
            "13-17 fetch".into(),
            vec![
                acl(a, Topic, lit("t1"), "Read", "*", true),
                acl(b, Topic, lit("t0"), "Write", "*", true),
                acl(b, Group, lit("g0"), "Read", "*", true),
                acl(c, Cluster, lit("kafka-cluster"), "ClusterAction", "*", true),
            ],
        ),
        (
            "18-21 offsets".into(),
            vec![
                acl(a, Group, lit("g0"), "Read", "*", true),
                acl(a, Topic, lit("t0"), "Read", "*", true),
                acl(b, Topic, lit("t0"), "Read", "*", true),
                acl(c, Group, lit("g0"), "Read", "*", true),
            ],
        ),
        (
            "22-23 groups".into(),
            vec![
                acl(b, Group, lit("g0"), "Describe", "*", true),
                acl(b, Topic, lit("t0"), "Describe", "*", true),
                acl(a, Group, lit("g1"), "Describe", "*", true),
                acl(c, Cluster, lit("kafka-cluster"), "Describe", "*", true),
            ],
        ),
        (
            "24 txn offsets".into(),
            vec![
                acl(a, TransactionalId, lit("x0"), "Write", "*", true),
                acl(a, Group, lit("g0"), "Describe", "*", true),
                acl(a, Topic, lit("t0"), "Read", "*", true),
                acl(b, Group, lit("g0"), "Read", "*", true),
            ],
        ),
        (
            "25 offset delete".into(),
            vec![
                acl(a, Group, lit("g0"), "Delete", "*", true),
                acl(a, Group, lit("g0"), "Read", "*", true),
            ],
        ),
        (
            "26-27 admin".into(),
            vec![
                acl(b, Topic, lit("t0"), "Describe", "*", true),
                acl(b, Topic, pre("pay-"), "Create", "*", true),
                acl(c, Topic, lit("nope"), "Delete", "*", true),
                acl(c, Cluster, lit("kafka-cluster"), "Create", "*", true),
                acl(
                    a,
                    Cluster,
                    lit("kafka-cluster"),
                    "DescribeConfigs",
                    "*",
                    true,
                ),
            ],
        ),
        (
            "28 deny wins".into(),
            vec![
                acl(a, Topic, lit("t0"), "All", "*", false),
                acl(a, Topic, pre("t"), "Read", "*", true),
            ],
        ),
        (
            "29 implication".into(),
            vec![
                acl(a, Topic, lit("t0"), "Read", "*", true),
                acl(a, Topic, lit("t1"), "Write", "*", true),
                acl(a, Topic, lit("pay-x"), "Delete", "*", true),
                acl(a, Topic, lit("other"), "AlterConfigs", "*", true),
                acl(b, Topic, lit("nope"), "Create", "*", true),
                acl(c, Topic, lit("t0"), "Read", "*", false),
                acl(c, Topic, lit("t0"), "Describe", "*", true),
            ],
        ),
        (
            "30 prefixed".into(),
            vec![acl(b, Topic, pre("p"), "All", "*", true)],
        ),
        (
            "31 host rules".into(),
            vec![
                acl(a, Topic, lit("t0"), "Read", "127.0.0.2", false),
                acl(a, Topic, lit("t0"), "Read", "*", true),
                acl(b, Topic, Pattern::Wildcard, "Describe", "127.0.0.3", true),
            ],
        ),
        (
            "32 groups of users".into(),
            vec![
                acl("Group:ops", Topic, pre("t"), "Read", "*", true),
                acl("Group:ops", Group, Pattern::Wildcard, "Read", "*", true),
                acl("User:*", Topic, lit("other"), "Describe", "*", true),
            ],
        ),
    ]
}

// ---------------------------------------------------------------------------------------------------------
// The two sides
// ---------------------------------------------------------------------------------------------------------

/// One side of the comparison: where its clients connect and its cluster's topic ids.
struct Side {
    name: &'static str,
    sasl: SocketAddr,
    admin: SocketAddr,
    ids: HashMap<String, Uuid>,
    cluster_id: String,
    /// A tenant's prefix on this side's cluster ("" for none): `ids` are by the tenant's names.
    prefix: &'static str,
    /// Internal topics left out of answers (the tenant comparison: a tenant never sees them).
    hide_internal: bool,
}

impl Side {
    fn refresh_ids(&mut self) {
        let mut c = RawClient::connect(self.admin);
        let resp = common::kafka::metadata(&mut c, None, false);
        self.ids = resp
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.as_ref()?.0.as_str().strip_prefix(self.prefix)?;
                Some((name.to_string(), t.topic_id))
            })
            .collect();
        self.cluster_id = resp.cluster_id.map(|c| c.to_string()).unwrap_or_default();
    }
    fn id(&self, topic: &str) -> Uuid {
        self.ids.get(topic).copied().unwrap_or(Uuid::nil())
    }
}

/// The gateway's config for the tenant comparison: one virtual cluster mapping `prefix` onto
/// `upstream`, its SASL listener, the policy the run rewrites.
fn tenant_config(
    upstream: &Upstream,
    prefix: &str,
    users: &std::path::Path,
    policy: &std::path::Path,
) -> (String, Vec<u16>, u16) {
    let (bind, base, admin) = (
        free_port(),
        free_port_range(upstream.node_count),
        free_port(),
    );
    let servers: Vec<String> = upstream
        .bootstrap
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    let text = format!(
        "[[virtual_clusters]]\nname = \"tenant\"\n[virtual_clusters.tenant]\nprefix = \"{prefix}\"\n\
         [virtual_clusters.upstream]\nbootstrap_servers = [{}]\n\
         [virtual_clusters.authorization]\nmodel = {:?}\npolicy_files = [{policy:?}]\nsuper_users = []\n\
         [[virtual_clusters.listeners]]\nname = \"sasl\"\nbind = \"127.0.0.1:{bind}\"\n\
         advertised_host = \"127.0.0.1\"\nbroker_port_base = {base}\nbroker_port_count = {}\n\
         node_id_base = {}\nsasl_mechanisms = [\"SCRAM-SHA-256\"]\n\n\
         [authentication]\ncredentials_file = {users:?}\nfailure_delay = \"10ms\"\n\n\
         [admin]\nbind = \"127.0.0.1:{admin}\"\n",
        servers.join(", "),
        repo_root().join("policies/model.conf"),
        upstream.node_count,
        upstream.node_id_base,
    );
    (text, vec![base], admin)
}

fn password(user: &str) -> String {
    format!("{user}-secret")
}

/// The fixture both clusters start from, every name under `prefix` (a tenant's, or "").
fn fixture(admin: SocketAddr, prefix: &str) {
    let mut c = RawClient::connect(admin);
    let n = |s: &str| format!("{prefix}{s}");
    let (t0, t1, pay, other) = (n("t0"), n("t1"), n("pay-x"), n("other"));
    create_topics_ok(&mut c, &[&t0, &pay, &other], 1);
    create_topics_ok(&mut c, &[&t1], 2);
    for (t, p) in [(&t0, 0), (&t1, 0), (&t1, 1), (&pay, 0), (&other, 0)] {
        let resp = common::kafka::produce(
            &mut c,
            None,
            &[(t, p, record_batch(&["r0", "r1", "r2"], None))],
        );
        assert_eq!(common::kafka::produce_error(&resp, t, p), 0);
    }
    let _ = produce_ok;
    for (g, offsets) in [
        (
            n("g0"),
            vec![(t0.as_str(), 0, 1i64), (&t1, 0, 2), (&pay, 0, 1)],
        ),
        (n("g1"), vec![(other.as_str(), 0, 1)]),
    ] {
        let codes = offset_commit(&mut c, &g, &offsets);
        assert!(codes.iter().all(|c| c.2 == 0), "{g}: {codes:?}");
    }
}

/// Applies an ACL set on the Kafka side: every ACL deleted, the set created, and waited for until
/// the broker's authorizer reports exactly it.
fn apply_kafka_acls(admin: SocketAddr, acls: &[Acl]) {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    let mut c = RawClient::connect(admin);
    let mut filter = DeleteAclsFilter::default();
    filter.resource_type_filter = 1;
    filter.pattern_type_filter = 1;
    filter.operation = 1;
    filter.permission_type = 1;
    filter.resource_name_filter = None;
    filter.principal_filter = None;
    filter.host_filter = None;
    let mut del = DeleteAclsRequest::default();
    del.filters = vec![filter];
    let resp: DeleteAclsResponse = c.request(ApiKey::DeleteAcls, 3, &del);
    assert!(
        resp.filter_results.iter().all(|r| r.error_code == 0),
        "{resp:?}"
    );
    let bindings = kafka_bindings(acls);
    if !bindings.is_empty() {
        let mut req = CreateAclsRequest::default();
        req.creations = bindings
            .iter()
            .map(|(rt, name, pt, principal, host, op, perm)| {
                let mut a = AclCreation::default();
                a.resource_type = *rt;
                a.resource_name = StrBytes::from_string(name.clone());
                a.resource_pattern_type = *pt;
                a.principal = StrBytes::from_string(principal.clone());
                a.host = StrBytes::from_string(host.clone());
                a.operation = *op;
                a.permission_type = *perm;
                a
            })
            .collect();
        let resp: CreateAclsResponse = c.request(ApiKey::CreateAcls, 3, &req);
        assert!(resp.results.iter().all(|r| r.error_code == 0), "{resp:?}");
    }
    let start = Instant::now();
    loop {
        let mut d = DescribeAclsRequest::default();
        d.resource_type_filter = 1;
        d.pattern_type_filter = 1;
        d.operation = 1;
        d.permission_type = 1;
        d.resource_name_filter = None;
        d.principal_filter = None;
        d.host_filter = None;
        let resp: DescribeAclsResponse = c.request(ApiKey::DescribeAcls, 3, &d);
        let n: usize = resp.resources.iter().map(|r| r.acls.len()).sum();
        if resp.error_code == 0 && n == bindings.len() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Kafka's authorizer never showed the ACL set: {resp:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Applies the set on the gateway side: the policy file rewritten, reloaded with SIGHUP.
fn apply_gateway_policy(gateway: &Gateway, policy: &std::path::Path, acls: &[Acl]) {
    let reloads = || {
        metric_sum(
            &gateway.metrics(),
            "kafka_gateway_reloads_total{file=\"policy\",result=\"success\"}",
        )
    };
    let before = reloads();
    std::fs::write(policy, policy_text(acls)).expect("policy");
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &gateway.pid().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    eventually("policy reloaded", Duration::from_secs(10), || {
        reloads() > before
    });
    let failures = gateway
        .metrics()
        .lines()
        .filter(|l| l.starts_with("kafka_gateway_reloads_total") && l.contains("failure"))
        .count();
    assert_eq!(
        failures,
        0,
        "the generated policy did not load:\n{}",
        policy_text(acls)
    );
}

/// Logged-in connections of one side, per (principal, source address).
struct Conns {
    map: HashMap<(&'static str, Ipv4Addr), RawClient>,
}

impl Conns {
    fn get(&mut self, side: &Side, user: &'static str, host: Ipv4Addr) -> &mut RawClient {
        self.map.entry((user, host)).or_insert_with(|| {
            let mut c = connect_from(host, side.sasl).expect("connect");
            let l = login(&mut c, "SCRAM-SHA-256", user, &password(user));
            assert_eq!(
                l.error_code(),
                0,
                "{}: login {user}: {}",
                side.name,
                l.message()
            );
            c
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn tn(s: &str) -> TopicName {
    TopicName(sb(s))
}

/// A topic id for a request: the side's id of a known topic, or (rarely) one no cluster has.
fn pick_topic_id(rng: &mut Rng, side: &Side) -> (String, Uuid) {
    if rng.chance(15) {
        (
            "<unknown id>".into(),
            Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0),
        )
    } else {
        let t = *rng.pick(&TOPICS[..4]);
        (t.to_string(), side.id(t))
    }
}

/// Builds one request of `api` at `version` from `rng`'s choices, with `side`'s topic ids. `n`
/// makes the names of per-request groups unique.
fn build(api: ApiKey, v: i16, rng: &mut Rng, side: &Side, n: usize) -> RequestKind {
    let topic = |rng: &mut Rng| *rng.pick(&TOPICS);
    let group = |rng: &mut Rng| *rng.pick(&GROUPS);
    let txn = |rng: &mut Rng| *rng.pick(&TXN_IDS);
    match api {
        ApiKey::Produce => {
            let mut req = ProduceRequest::default();
            req.acks = *rng.pick(&[-1i16, 1]);
            req.timeout_ms = 10_000;
            let transactional = rng.chance(20);
            let producer = transactional.then_some(BatchProducer {
                id: 9999,
                epoch: 0,
                transactional: true,
            });
            if transactional {
                req.transactional_id = Some(TransactionalId(sb(txn(rng))));
            }
            req.topic_data = rng
                .some(&TOPICS, 2)
                .into_iter()
                .map(|t| {
                    let mut td = produce_request::TopicProduceData::default();
                    if v >= 13 {
                        // v13 names topics by id: this side's id for a picked name, or one no
                        // cluster knows.
                        td.topic_id = pick_topic_id(rng, side).1;
                    } else {
                        td.name = tn(t);
                    }
                    let mut p = produce_request::PartitionProduceData::default();
                    p.index = 0;
                    p.records = Some(record_batch(&["d"], producer));
                    td.partition_data = vec![p];
                    td
                })
                .collect();
            req.topic_data
                .dedup_by(|a, b| a.name == b.name && a.topic_id == b.topic_id);
            RequestKind::Produce(req)
        }
        ApiKey::Fetch => {
            let mut req = FetchRequest::default();
            req.max_wait_ms = 0;
            req.min_bytes = 1;
            req.max_bytes = 1 << 20;
            req.session_id = 0;
            req.session_epoch = -1;
            let follower = rng.chance(10);
            if v >= 15 {
                req.replica_state.replica_id = BrokerId(if follower { 1 } else { -1 });
                req.replica_id = BrokerId(-1);
            } else {
                req.replica_id = BrokerId(if follower { 1 } else { -1 });
            }
            let count = 1 + rng.below(2);
            req.topics = (0..count)
                .map(|_| {
                    let mut ft = fetch_request::FetchTopic::default();
                    if v >= 13 {
                        ft.topic_id = pick_topic_id(rng, side).1;
                    } else {
                        ft.topic = tn(topic(rng));
                    }
                    let mut p = fetch_request::FetchPartition::default();
                    p.partition = 0;
                    p.fetch_offset = 0;
                    p.current_leader_epoch = -1;
                    p.last_fetched_epoch = -1;
                    p.log_start_offset = -1;
                    p.partition_max_bytes = 1 << 16;
                    ft.partitions = vec![p];
                    ft
                })
                .collect();
            req.topics
                .dedup_by(|a, b| a.topic == b.topic && a.topic_id == b.topic_id);
            RequestKind::Fetch(req)
        }
        ApiKey::ListOffsets => {
            let mut req = ListOffsetsRequest::default();
            req.replica_id = BrokerId(-1);
            if v >= 10 {
                req.timeout_ms = 5000;
            }
            req.topics = rng
                .some(&TOPICS, 2)
                .into_iter()
                .map(|t| {
                    let mut lt = list_offsets_request::ListOffsetsTopic::default();
                    lt.name = tn(t);
                    let mut p = list_offsets_request::ListOffsetsPartition::default();
                    p.partition_index = 0;
                    p.current_leader_epoch = -1;
                    p.timestamp = *rng.pick(&[-1i64, -2]);
                    lt.partitions = vec![p];
                    lt
                })
                .collect();
            RequestKind::ListOffsets(req)
        }
        ApiKey::Metadata => {
            let mut req = MetadataRequest::default();
            req.topics = if v >= 1 && rng.chance(25) {
                None
            } else {
                Some(
                    rng.some(&TOPICS, 3)
                        .into_iter()
                        .map(|t| {
                            let mut mt = metadata_request::MetadataRequestTopic::default();
                            if v >= 12 && rng.chance(25) {
                                mt.topic_id = pick_topic_id(rng, side).1;
                                mt.name = None;
                            } else {
                                mt.name = Some(tn(t));
                            }
                            mt
                        })
                        .collect(),
                )
            };
            if v >= 4 {
                // Auto-creation only for "nope" matters; it creates the topic on both sides alike.
                req.allow_auto_topic_creation = rng.chance(30);
            }
            if v >= 8 {
                req.include_topic_authorized_operations = rng.chance(50);
            }
            if (8..=10).contains(&v) {
                req.include_cluster_authorized_operations = rng.chance(50);
            }
            RequestKind::Metadata(req)
        }
        ApiKey::OffsetCommit => {
            let mut req = OffsetCommitRequest::default();
            req.group_id = GroupId(sb(group(rng)));
            req.generation_id_or_member_epoch = -1;
            req.member_id = sb("");
            if (2..=4).contains(&v) {
                req.retention_time_ms = -1;
            }
            req.topics = rng
                .some(&TOPICS, 2)
                .into_iter()
                .map(|t| {
                    let mut ot = offset_commit_request::OffsetCommitRequestTopic::default();
                    ot.name = tn(t);
                    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
                    p.partition_index = 0;
                    p.committed_offset = 1 + rng.below(3) as i64;
                    p.committed_leader_epoch = -1;
                    p.committed_metadata = Some(sb(""));
                    ot.partitions = vec![p];
                    ot
                })
                .collect();
            RequestKind::OffsetCommit(req)
        }
        ApiKey::OffsetFetch => {
            let mut req = OffsetFetchRequest::default();
            let all = v >= 2 && rng.chance(40);
            if v <= 7 {
                req.group_id = GroupId(sb(group(rng)));
                req.topics = (!all).then(|| {
                    rng.some(&TOPICS, 2)
                        .into_iter()
                        .map(|t| {
                            let mut ot = offset_fetch_request::OffsetFetchRequestTopic::default();
                            ot.name = tn(t);
                            ot.partition_indexes = vec![0];
                            ot
                        })
                        .collect()
                });
            } else {
                req.groups = rng
                    .some(&GROUPS, 2)
                    .into_iter()
                    .map(|g| {
                        let mut og = offset_fetch_request::OffsetFetchRequestGroup::default();
                        og.group_id = GroupId(sb(g));
                        if v >= 9 {
                            og.member_epoch = -1;
                        }
                        og.topics = (!all).then(|| {
                            rng.some(&TOPICS, 2)
                                .into_iter()
                                .map(|t| {
                                    let mut ot =
                                        offset_fetch_request::OffsetFetchRequestTopics::default();
                                    ot.name = tn(t);
                                    ot.partition_indexes = vec![0];
                                    ot
                                })
                                .collect()
                        });
                        og
                    })
                    .collect();
            }
            RequestKind::OffsetFetch(req)
        }
        ApiKey::FindCoordinator => {
            let mut req = FindCoordinatorRequest::default();
            let txn_key = v >= 1 && rng.chance(40);
            req.key_type = if txn_key { 1 } else { 0 };
            let key = if txn_key { txn(rng) } else { group(rng) };
            if v >= 4 {
                req.coordinator_keys = vec![sb(key)];
            } else {
                req.key = sb(key);
            }
            RequestKind::FindCoordinator(req)
        }
        ApiKey::JoinGroup => {
            let mut req = JoinGroupRequest::default();
            // Below v4 a join completes at once and leaves a member: each uses a group of its own.
            let name = if v < 4 {
                format!("g-join-{n}")
            } else {
                group(rng).to_string()
            };
            req.group_id = GroupId(sb(&name));
            req.session_timeout_ms = 300_000;
            if v >= 1 {
                req.rebalance_timeout_ms = 300_000;
            }
            req.member_id = sb("");
            req.protocol_type = sb("consumer");
            let mut p = join_group_request::JoinGroupRequestProtocol::default();
            p.name = sb("range");
            p.metadata = Bytes::from_static(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
            req.protocols = vec![p];
            RequestKind::JoinGroup(req)
        }
        ApiKey::Heartbeat => {
            let mut req = HeartbeatRequest::default();
            req.group_id = GroupId(sb(group(rng)));
            req.generation_id = 1;
            req.member_id = sb("m-1");
            RequestKind::Heartbeat(req)
        }
        ApiKey::LeaveGroup => {
            let mut req = LeaveGroupRequest::default();
            req.group_id = GroupId(sb(group(rng)));
            if v <= 2 {
                req.member_id = sb("m-1");
            } else {
                let mut m = leave_group_request::MemberIdentity::default();
                m.member_id = sb("m-1");
                req.members = vec![m];
            }
            RequestKind::LeaveGroup(req)
        }
        ApiKey::SyncGroup => {
            let mut req = SyncGroupRequest::default();
            req.group_id = GroupId(sb(group(rng)));
            req.generation_id = 1;
            req.member_id = sb("m-1");
            if v >= 5 {
                req.protocol_type = Some(sb("consumer"));
                req.protocol_name = Some(sb("range"));
            }
            RequestKind::SyncGroup(req)
        }
        ApiKey::DescribeGroups => {
            let mut req = DescribeGroupsRequest::default();
            req.groups = rng
                .some(&GROUPS, 3)
                .into_iter()
                .map(|g| GroupId(sb(g)))
                .collect();
            if v >= 3 {
                req.include_authorized_operations = rng.chance(50);
            }
            RequestKind::DescribeGroups(req)
        }
        ApiKey::ListGroups => {
            let mut req = ListGroupsRequest::default();
            if v >= 4 && rng.chance(30) {
                req.states_filter = vec![sb("Empty")];
            }
            if v >= 5 && rng.chance(30) {
                req.types_filter = vec![sb("classic")];
            }
            RequestKind::ListGroups(req)
        }
        ApiKey::CreateTopics => {
            let mut req = CreateTopicsRequest::default();
            req.timeout_ms = 10_000;
            // Validation only: authorization is checked, nothing is created, both sides stay equal.
            req.validate_only = true;
            req.topics = rng
                .some(&["nope", "pay-new", "t0", "x-new"], 2)
                .into_iter()
                .map(|t| {
                    let mut ct = create_topics_request::CreatableTopic::default();
                    ct.name = tn(t);
                    ct.num_partitions = 1;
                    ct.replication_factor = 1;
                    ct
                })
                .collect();
            RequestKind::CreateTopics(req)
        }
        ApiKey::DeleteTopics => {
            let mut req = DeleteTopicsRequest::default();
            req.timeout_ms = 10_000;
            // Topics that do not exist: a delete that is allowed finds nothing to delete.
            let names = rng.some(&["pay-gone", "t-gone", "nope-gone"], 2);
            if v >= 6 {
                req.topics = names
                    .iter()
                    .map(|t| {
                        let mut d = delete_topics_request::DeleteTopicState::default();
                        if rng.chance(20) {
                            d.topic_id = Uuid::from_u128(0xdead_beef);
                        } else {
                            d.name = Some(tn(t));
                        }
                        d
                    })
                    .collect();
            } else {
                req.topic_names = names.iter().map(|t| tn(t)).collect();
            }
            RequestKind::DeleteTopics(req)
        }
        ApiKey::DeleteRecords => {
            let mut req = DeleteRecordsRequest::default();
            req.timeout_ms = 10_000;
            req.topics = rng
                .some(&TOPICS, 2)
                .into_iter()
                .map(|t| {
                    let mut dt = delete_records_request::DeleteRecordsTopic::default();
                    dt.name = tn(t);
                    let mut p = delete_records_request::DeleteRecordsPartition::default();
                    p.partition_index = 0;
                    p.offset = 0; // nothing before offset 0: the log is unchanged
                    dt.partitions = vec![p];
                    dt
                })
                .collect();
            RequestKind::DeleteRecords(req)
        }
        ApiKey::InitProducerId => {
            let mut req = InitProducerIdRequest::default();
            req.transactional_id = rng.chance(60).then(|| TransactionalId(sb(txn(rng))));
            req.transaction_timeout_ms = 60_000;
            if v >= 3 {
                req.producer_id = ProducerId(-1);
                req.producer_epoch = -1;
            }
            RequestKind::InitProducerId(req)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut req = OffsetForLeaderEpochRequest::default();
            if v >= 3 {
                req.replica_id = BrokerId(if rng.chance(15) { 1 } else { -1 });
            }
            req.topics = rng
                .some(&TOPICS, 2)
                .into_iter()
                .map(|t| {
                    let mut ot = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
                    ot.topic = tn(t);
                    let mut p =
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
                    p.partition = 0;
                    p.current_leader_epoch = -1;
                    p.leader_epoch = 0;
                    ot.partitions = vec![p];
                    ot
                })
                .collect();
            RequestKind::OffsetForLeaderEpoch(req)
        }
        ApiKey::AddPartitionsToTxn => {
            let mut req = AddPartitionsToTxnRequest::default();
            let topics: Vec<add_partitions_to_txn_request::AddPartitionsToTxnTopic> = rng
                .some(&TOPICS, 2)
                .into_iter()
                .map(|t| {
                    let mut at = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
                    at.name = tn(t);
                    at.partitions = vec![0];
                    at
                })
                .collect();
            if v <= 3 {
                req.v3_and_below_transactional_id = TransactionalId(sb(txn(rng)));
                req.v3_and_below_producer_id = ProducerId(9999);
                req.v3_and_below_producer_epoch = 0;
                req.v3_and_below_topics = topics;
            } else {
                let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default();
                t.transactional_id = TransactionalId(sb(txn(rng)));
                t.producer_id = ProducerId(9999);
                t.producer_epoch = 0;
                t.verify_only = true;
                t.topics = topics;
                req.transactions = vec![t];
            }
            RequestKind::AddPartitionsToTxn(req)
        }
        ApiKey::AddOffsetsToTxn => {
            let mut req = AddOffsetsToTxnRequest::default();
            req.transactional_id = TransactionalId(sb(txn(rng)));
            req.producer_id = ProducerId(9999);
            req.producer_epoch = 0;
            req.group_id = GroupId(sb(group(rng)));
            RequestKind::AddOffsetsToTxn(req)
        }
        ApiKey::EndTxn => {
            let mut req = EndTxnRequest::default();
            req.transactional_id = TransactionalId(sb(txn(rng)));
            req.producer_id = ProducerId(9999);
            req.producer_epoch = 0;
            req.committed = rng.chance(50);
            RequestKind::EndTxn(req)
        }
        ApiKey::TxnOffsetCommit => {
            let mut req = TxnOffsetCommitRequest::default();
            req.transactional_id = TransactionalId(sb(txn(rng)));
            req.group_id = GroupId(sb(group(rng)));
            req.producer_id = ProducerId(9999);
            req.producer_epoch = 0;
            if v >= 3 {
                req.generation_id = -1;
                req.member_id = sb("");
            }
            req.topics = rng
                .some(&TOPICS, 2)
                .into_iter()
                .map(|t| {
                    let mut tt = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
                    tt.name = tn(t);
                    let mut p =
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
                    p.partition_index = 0;
                    p.committed_offset = 1;
                    p.committed_leader_epoch = -1;
                    tt.partitions = vec![p];
                    tt
                })
                .collect();
            RequestKind::TxnOffsetCommit(req)
        }
        ApiKey::DescribeConfigs => {
            let mut req = DescribeConfigsRequest::default();
            let mut resources = Vec::new();
            for _ in 0..1 + rng.below(2) {
                let mut r = describe_configs_request::DescribeConfigsResource::default();
                match rng.below(6) {
                    5 => {
                        r.resource_type = 32;
                        r.resource_name = sb(group(rng));
                    }
                    0 => {
                        r.resource_type = 4;
                        r.resource_name = sb("1");
                    }
                    1 => {
                        r.resource_type = 8;
                        r.resource_name = sb("1");
                    }
                    _ => {
                        r.resource_type = 2;
                        r.resource_name = sb(topic(rng));
                    }
                }
                r.configuration_keys = rng.chance(50).then(|| {
                    vec![
                        sb("retention.ms"),
                        sb("cleanup.policy"),
                        sb("log.retention.hours"),
                    ]
                });
                if !resources
                    .iter()
                    .any(|x: &describe_configs_request::DescribeConfigsResource| {
                        x.resource_type == r.resource_type && x.resource_name == r.resource_name
                    })
                {
                    resources.push(r);
                }
            }
            req.resources = resources;
            if v >= 1 {
                req.include_synonyms = rng.chance(30);
            }
            if v >= 3 {
                req.include_documentation = rng.chance(20);
            }
            RequestKind::DescribeConfigs(req)
        }
        ApiKey::AlterConfigs => {
            let mut req = AlterConfigsRequest::default();
            req.validate_only = true;
            let mut r = alter_configs_request::AlterConfigsResource::default();
            if rng.chance(25) {
                r.resource_type = 4;
                r.resource_name = sb("1");
                let mut c = alter_configs_request::AlterableConfig::default();
                c.name = sb("log.cleaner.threads");
                c.value = Some(sb("1"));
                r.configs = vec![c];
            } else {
                r.resource_type = 2;
                r.resource_name = sb(topic(rng));
                let mut c = alter_configs_request::AlterableConfig::default();
                c.name = sb("retention.ms");
                c.value = Some(sb("86400000"));
                r.configs = vec![c];
            }
            req.resources = vec![r];
            RequestKind::AlterConfigs(req)
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut req = IncrementalAlterConfigsRequest::default();
            req.validate_only = true;
            let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.config_operation = 0;
            if rng.chance(20) {
                r.resource_type = 32;
                r.resource_name = sb(group(rng));
                c.name = sb("consumer.session.timeout.ms");
                c.value = Some(sb("50000"));
            } else if rng.chance(25) {
                r.resource_type = 4;
                r.resource_name = sb("1");
                c.name = sb("log.cleaner.threads");
                c.value = Some(sb("1"));
            } else {
                r.resource_type = 2;
                r.resource_name = sb(topic(rng));
                c.name = sb("retention.ms");
                c.value = Some(sb("86400000"));
            }
            r.configs = vec![c];
            req.resources = vec![r];
            RequestKind::IncrementalAlterConfigs(req)
        }
        ApiKey::DescribeLogDirs => {
            let mut req = DescribeLogDirsRequest::default();
            req.topics = rng.chance(70).then(|| {
                rng.some(&TOPICS, 2)
                    .into_iter()
                    .map(|t| {
                        let mut d = describe_log_dirs_request::DescribableLogDirTopic::default();
                        d.topic = tn(t);
                        d.partitions = vec![0];
                        d
                    })
                    .collect()
            });
            RequestKind::DescribeLogDirs(req)
        }
        ApiKey::CreatePartitions => {
            let mut req = CreatePartitionsRequest::default();
            req.timeout_ms = 10_000;
            req.validate_only = true;
            req.topics = rng
                .some(&TOPICS, 2)
                .into_iter()
                .map(|t| {
                    let mut ct = create_partitions_request::CreatePartitionsTopic::default();
                    ct.name = tn(t);
                    ct.count = 4;
                    ct.assignments = None;
                    ct
                })
                .collect();
            RequestKind::CreatePartitions(req)
        }
        ApiKey::DeleteGroups => {
            let mut req = DeleteGroupsRequest::default();
            // Groups that hold nothing the fixture needs.
            req.groups_names = rng
                .some(&["gnew", "g-gone", "pay-gone"], 2)
                .into_iter()
                .map(|g| GroupId(sb(g)))
                .collect();
            RequestKind::DeleteGroups(req)
        }
        ApiKey::OffsetDelete => {
            let mut req = OffsetDeleteRequest::default();
            req.group_id = GroupId(sb(group(rng)));
            req.topics = rng
                .some(&TOPICS, 2)
                .into_iter()
                .map(|t| {
                    let mut ot = offset_delete_request::OffsetDeleteRequestTopic::default();
                    ot.name = tn(t);
                    let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
                    p.partition_index = 0;
                    ot.partitions = vec![p];
                    ot
                })
                .collect();
            RequestKind::OffsetDelete(req)
        }
        ApiKey::DescribeCluster => {
            let mut req = DescribeClusterRequest::default();
            req.include_cluster_authorized_operations = rng.chance(50);
            RequestKind::DescribeCluster(req)
        }
        ApiKey::DescribeProducers => {
            let mut req = DescribeProducersRequest::default();
            req.topics = rng
                .some(&TOPICS, 2)
                .into_iter()
                .map(|t| {
                    let mut dt = describe_producers_request::TopicRequest::default();
                    dt.name = tn(t);
                    dt.partition_indexes = vec![0];
                    dt
                })
                .collect();
            RequestKind::DescribeProducers(req)
        }
        ApiKey::DescribeTransactions => {
            let mut req = DescribeTransactionsRequest::default();
            req.transactional_ids = rng
                .some(&TXN_IDS, 2)
                .into_iter()
                .map(|t| TransactionalId(sb(t)))
                .collect();
            RequestKind::DescribeTransactions(req)
        }
        ApiKey::ListTransactions => {
            let mut req = ListTransactionsRequest::default();
            if rng.chance(30) {
                req.state_filters = vec![sb("Empty")];
            }
            if v >= 1 {
                req.duration_filter = -1;
            }
            if v >= 2 && rng.chance(30) {
                req.transactional_id_pattern = Some(sb("x.*"));
            }
            RequestKind::ListTransactions(req)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let mut req = ConsumerGroupHeartbeatRequest::default();
            // A join leaves a member: a group of its own per request.
            req.group_id = GroupId(sb(&format!("g-cgh-{n}")));
            req.member_id = sb(&format!("member-{n:016}"));
            req.member_epoch = 0;
            req.rebalance_timeout_ms = 300_000;
            req.subscribed_topic_names =
                Some(rng.some(&TOPICS[..4], 2).into_iter().map(tn).collect());
            req.topic_partitions = Some(Vec::new());
            RequestKind::ConsumerGroupHeartbeat(req)
        }
        ApiKey::ConsumerGroupDescribe => {
            let mut req = ConsumerGroupDescribeRequest::default();
            req.group_ids = rng
                .some(&GROUPS, 2)
                .into_iter()
                .map(|g| GroupId(sb(g)))
                .collect();
            req.include_authorized_operations = rng.chance(50);
            RequestKind::ConsumerGroupDescribe(req)
        }
        ApiKey::ListConfigResources => {
            let mut req = ListConfigResourcesRequest::default();
            if v >= 1 {
                // Topic, broker, broker logger, client metrics, group; an empty list means all.
                req.resource_types = rng.some(&[2i8, 4, 8, 16, 32], 2);
            }
            RequestKind::ListConfigResources(req)
        }
        ApiKey::DescribeAcls => {
            // Any filter the Java AclBindingFilter can express (no UNKNOWN element).
            let mut req = DescribeAclsRequest::default()
                .with_resource_type_filter(*rng.pick(&[1, 2, 3, 4, 5]))
                .with_pattern_type_filter(*rng.pick(&[1, 2, 3, 4]))
                .with_operation(if rng.chance(60) {
                    1
                } else {
                    *rng.pick(&[2i8, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
                })
                .with_permission_type(*rng.pick(&[1, 1, 2, 3]))
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None);
            if rng.chance(50) {
                let names = [
                    "t0",
                    "t1",
                    "pay-x",
                    "pay-",
                    "g0",
                    "g",
                    "x0",
                    "*",
                    "kafka-cluster",
                    "nope",
                ];
                let name: &&str = rng.pick(&names);
                req.resource_name_filter = Some(sb(name));
            }
            if rng.chance(30) {
                let who = [
                    "User:alice",
                    "User:bob",
                    "User:carol",
                    "User:*",
                    "Group:ops",
                ];
                let who: &&str = rng.pick(&who);
                req.principal_filter = Some(sb(who));
            }
            if rng.chance(20) {
                let host: &&str = rng.pick(&["*", "127.0.0.2"]);
                req.host_filter = Some(sb(host));
            }
            RequestKind::DescribeAcls(req)
        }
        ApiKey::ShareGroupHeartbeat => {
            // A join leaves a member: a group of its own per request.
            RequestKind::ShareGroupHeartbeat(
                ShareGroupHeartbeatRequest::default()
                    .with_group_id(GroupId(sb(&format!("g-sgh-{n}"))))
                    .with_member_id(sb(&kafka_uuid(n)))
                    .with_member_epoch(0)
                    .with_subscribed_topic_names(Some(
                        rng.some(&TOPICS[..4], 2).into_iter().map(tn).collect(),
                    )),
            )
        }
        ApiKey::ShareGroupDescribe => RequestKind::ShareGroupDescribe(
            ShareGroupDescribeRequest::default()
                .with_group_ids(
                    rng.some(&GROUPS, 2)
                        .into_iter()
                        .map(|g| GroupId(sb(g)))
                        .collect(),
                )
                .with_include_authorized_operations(rng.chance(50)),
        ),
        ApiKey::ShareFetch => {
            // A new share session per request (epoch 0): one request shows the checks, as the
            // differential compares single answers. e2e_kafka runs sessions with real members.
            let topics = (0..1 + rng.below(2))
                .map(|_| {
                    share_fetch_request::FetchTopic::default()
                        .with_topic_id(pick_topic_id(rng, side).1)
                        .with_partitions(vec![
                            share_fetch_request::FetchPartition::default().with_partition_index(0)
                        ])
                })
                .collect();
            let mut req = ShareFetchRequest::default()
                .with_group_id(Some(GroupId(sb(group(rng)))))
                .with_member_id(Some(sb(&kafka_uuid(n))))
                .with_share_session_epoch(0)
                .with_max_wait_ms(0)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_max_records(10)
                .with_batch_size(10)
                .with_topics(topics);
            req.topics.dedup_by(|a, b| a.topic_id == b.topic_id);
            RequestKind::ShareFetch(req)
        }
        ApiKey::ShareAcknowledge => {
            // No share session holds this member: Kafka answers 122 once the group is allowed.
            let topic = share_acknowledge_request::AcknowledgeTopic::default()
                .with_topic_id(pick_topic_id(rng, side).1)
                .with_partitions(vec![
                    share_acknowledge_request::AcknowledgePartition::default()
                        .with_partition_index(0)
                        .with_acknowledgement_batches(vec![
                            share_acknowledge_request::AcknowledgementBatch::default()
                                .with_first_offset(0)
                                .with_last_offset(0)
                                .with_acknowledge_types(vec![1]),
                        ]),
                ]);
            RequestKind::ShareAcknowledge(
                ShareAcknowledgeRequest::default()
                    .with_group_id(Some(GroupId(sb(group(rng)))))
                    .with_member_id(Some(sb(&kafka_uuid(n))))
                    .with_share_session_epoch(1)
                    .with_topics(vec![topic]),
            )
        }
        ApiKey::DescribeTopicPartitions => {
            let mut req = DescribeTopicPartitionsRequest::default()
                .with_response_partition_limit(*rng.pick(&[2000, 1]));
            if !rng.chance(30) {
                req.topics = rng
                    .some(&TOPICS, 4)
                    .into_iter()
                    .map(|t| {
                        describe_topic_partitions_request::TopicRequest::default().with_name(tn(t))
                    })
                    .collect();
            }
            if rng.chance(40) {
                // A cursor on a named topic, on any topic (invalid for a list without it), or
                // with a negative partition.
                let on: &str = match req.topics.first() {
                    Some(t) if rng.chance(70) => t.name.as_str(),
                    _ => topic(rng),
                };
                req.cursor = Some(
                    describe_topic_partitions_request::Cursor::default()
                        .with_topic_name(tn(on))
                        .with_partition_index(*rng.pick(&[0, 1, -1])),
                );
            }
            RequestKind::DescribeTopicPartitions(req)
        }
        ApiKey::DescribeShareGroupOffsets => {
            use describe_share_group_offsets_request as d;
            let groups = rng
                .some(&GROUPS, 2)
                .into_iter()
                .map(|g| {
                    let topics = (!rng.chance(30)).then(|| {
                        rng.some(&TOPICS, 3)
                            .into_iter()
                            .map(|t| {
                                d::DescribeShareGroupOffsetsRequestTopic::default()
                                    .with_topic_name(tn(t))
                                    .with_partitions(vec![0])
                            })
                            .collect()
                    });
                    d::DescribeShareGroupOffsetsRequestGroup::default()
                        .with_group_id(GroupId(sb(g)))
                        .with_topics(topics)
                })
                .collect();
            RequestKind::DescribeShareGroupOffsets(
                DescribeShareGroupOffsetsRequest::default().with_groups(groups),
            )
        }
        ApiKey::AlterShareGroupOffsets => {
            use alter_share_group_offsets_request as a;
            let topics = rng
                .some(&TOPICS, 3)
                .into_iter()
                .map(|t| {
                    a::AlterShareGroupOffsetsRequestTopic::default()
                        .with_topic_name(tn(t))
                        .with_partitions(vec![a::AlterShareGroupOffsetsRequestPartition::default()
                            .with_partition_index(0)
                            .with_start_offset(0)])
                })
                .collect();
            RequestKind::AlterShareGroupOffsets(
                AlterShareGroupOffsetsRequest::default()
                    .with_group_id(GroupId(sb(group(rng))))
                    .with_topics(topics),
            )
        }
        ApiKey::DeleteShareGroupOffsets => {
            use delete_share_group_offsets_request as d;
            let topics = rng
                .some(&TOPICS, 3)
                .into_iter()
                .map(|t| d::DeleteShareGroupOffsetsRequestTopic::default().with_topic_name(tn(t)))
                .collect();
            RequestKind::DeleteShareGroupOffsets(
                DeleteShareGroupOffsetsRequest::default()
                    .with_group_id(GroupId(sb(group(rng))))
                    .with_topics(topics),
            )
        }
        other => panic!("no request builder for {other:?}"),
    }
}

/// Kafka's text form of a Uuid (URL-safe base64 without padding), unique per `n`.
fn kafka_uuid(n: usize) -> String {
    use base64::Engine as _;
    let id = Uuid::from_u128(0x5ead_0000_0000_0000_0000_0000_0000_0000 | n as u128);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// What one side answered.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Answer(String),
    Closed,
}

fn send(c: &mut RawClient, api: ApiKey, v: i16, req: &RequestKind, side: &Side) -> Outcome {
    let correlation = 777;
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = v;
    header.correlation_id = correlation;
    header.client_id = Some(StrBytes::from_static_str("kgw-differential"));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    header
        .encode(&mut buf, api.request_header_version(v))
        .expect("header");
    req.encode(&mut buf, v)
        .unwrap_or_else(|e| panic!("encoding {api:?} v{v}: {e}: {req:?}"));
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    if c.send_raw(&buf).is_err() {
        return Outcome::Closed;
    }
    match c.read_frame() {
        Ok(mut payload) => {
            let h = ResponseHeader::decode(&mut payload, api.response_header_version(v))
                .expect("response header");
            assert_eq!(h.correlation_id, correlation);
            let resp = ResponseKind::decode(api, &mut payload, v)
                .unwrap_or_else(|e| panic!("decoding {api:?} v{v}: {e}"));
            Outcome::Answer(normalize(api, resp, side))
        }
        Err(_) => Outcome::Closed,
    }
}

/// Puts lists whose order is not part of the answer in order. Kafka builds many per-resource
/// result lists from hash maps (DeleteTopics, CreateTopics, Produce, ListOffsets, ...) and puts
/// unauthorized entries before authorized ones in others (DescribeGroups): clients match results
/// by name, never by position, so position is not compared.
fn sort(resp: &mut ResponseKind, side: &Side) {
    // A topic by its name on this side (ids differ between the two clusters).
    let key = |name: &str, id: Uuid| -> String {
        side.ids
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| format!("{name}/{id}"))
    };
    match resp {
        ResponseKind::Fetch(f) => f.responses.sort_by_key(|t| key(&t.topic, t.topic_id)),
        ResponseKind::ConsumerGroupHeartbeat(h) => {
            if let Some(a) = &mut h.assignment {
                a.topic_partitions.sort_by_key(|t| key("", t.topic_id));
            }
        }
        ResponseKind::ConsumerGroupDescribe(d) => {
            d.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id))
        }
        ResponseKind::ShareGroupDescribe(d) => d.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id)),
        ResponseKind::ShareGroupHeartbeat(h) => {
            if let Some(a) = &mut h.assignment {
                a.topic_partitions.sort_by_key(|t| key("", t.topic_id));
            }
        }
        ResponseKind::ShareFetch(f) => {
            f.responses.sort_by_key(|t| key("", t.topic_id));
            for t in &mut f.responses {
                t.partitions.sort_by_key(|p| p.partition_index);
            }
        }
        ResponseKind::DescribeTopicPartitions(d) => d.topics.sort_by(|a, b| a.name.cmp(&b.name)),
        ResponseKind::DescribeShareGroupOffsets(d) => {
            d.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            for g in &mut d.groups {
                g.topics.sort_by(|a, b| a.topic_name.cmp(&b.topic_name));
            }
        }
        ResponseKind::AlterShareGroupOffsets(a) => {
            a.responses.sort_by(|x, y| x.topic_name.cmp(&y.topic_name))
        }
        ResponseKind::DeleteShareGroupOffsets(d) => {
            d.responses.sort_by(|x, y| x.topic_name.cmp(&y.topic_name))
        }
        ResponseKind::ShareAcknowledge(a) => {
            a.responses.sort_by_key(|t| key("", t.topic_id));
            for t in &mut a.responses {
                t.partitions.sort_by_key(|p| p.partition_index);
            }
        }
        ResponseKind::Produce(p) => p.responses.sort_by_key(|t| key(&t.name, t.topic_id)),
        ResponseKind::ListOffsets(l) => l.topics.sort_by(|a, b| a.name.cmp(&b.name)),
        ResponseKind::OffsetCommit(o) => o.topics.sort_by(|a, b| a.name.cmp(&b.name)),
        ResponseKind::TxnOffsetCommit(o) => o.topics.sort_by(|a, b| a.name.cmp(&b.name)),
        ResponseKind::OffsetDelete(o) => o.topics.sort_by(|a, b| a.name.cmp(&b.name)),
        ResponseKind::OffsetForLeaderEpoch(o) => o.topics.sort_by(|a, b| a.topic.cmp(&b.topic)),
        ResponseKind::CreateTopics(c) => c.topics.sort_by(|a, b| a.name.cmp(&b.name)),
        ResponseKind::DeleteTopics(d) => d
            .responses
            .sort_by(|a, b| (&a.name, a.topic_id).cmp(&(&b.name, b.topic_id))),
        ResponseKind::DeleteRecords(d) => d.topics.sort_by(|a, b| a.name.cmp(&b.name)),
        ResponseKind::CreatePartitions(c) => c.results.sort_by(|a, b| a.name.cmp(&b.name)),
        ResponseKind::DescribeGroups(d) => d.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id)),
        ResponseKind::DeleteGroups(d) => d.results.sort_by(|a, b| a.group_id.cmp(&b.group_id)),
        ResponseKind::DescribeConfigs(d) => d.results.sort_by(|a, b| {
            (a.resource_type, &a.resource_name).cmp(&(b.resource_type, &b.resource_name))
        }),
        ResponseKind::DescribeProducers(d) => d.topics.sort_by(|a, b| a.name.cmp(&b.name)),
        ResponseKind::DescribeTransactions(d) => d
            .transaction_states
            .sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id)),
        ResponseKind::AddPartitionsToTxn(a) => {
            a.results_by_topic_v3_and_below
                .sort_by(|x, y| x.name.cmp(&y.name));
            for t in &mut a.results_by_transaction {
                t.topic_results.sort_by(|x, y| x.name.cmp(&y.name));
            }
        }
        ResponseKind::Metadata(m) => m
            .topics
            .sort_by_key(|t| key(t.name.as_ref().map_or("", |n| n.as_str()), t.topic_id)),
        ResponseKind::ListGroups(l) => l.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id)),
        ResponseKind::OffsetFetch(o) => {
            o.topics.sort_by(|a, b| a.name.cmp(&b.name));
            for g in &mut o.groups {
                g.topics.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        ResponseKind::DescribeLogDirs(d) => {
            for r in &mut d.results {
                r.topics.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        ResponseKind::ListTransactions(l) => l
            .transaction_states
            .sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id)),
        ResponseKind::ListConfigResources(l) => l.config_resources.sort_by(|a, b| {
            (a.resource_type, &a.resource_name).cmp(&(b.resource_type, &b.resource_name))
        }),
        // Kafka groups the bindings in a hash map.
        ResponseKind::DescribeAcls(d) => {
            d.resources.sort_by(|a, b| {
                (a.resource_type, &a.resource_name, a.pattern_type).cmp(&(
                    b.resource_type,
                    &b.resource_name,
                    b.pattern_type,
                ))
            });
            for r in &mut d.resources {
                r.acls.sort_by(|a, b| {
                    (&a.principal, &a.host, a.operation, a.permission_type).cmp(&(
                        &b.principal,
                        &b.host,
                        b.operation,
                        b.permission_type,
                    ))
                });
            }
        }
        _ => {}
    }
}

/// The answer as text, with what differs between two clusters by construction masked.
fn normalize(api: ApiKey, mut resp: ResponseKind, side: &Side) -> String {
    if side.hide_internal {
        let internal = |n: &str| n.starts_with("__");
        match &mut resp {
            ResponseKind::Metadata(m) => m
                .topics
                .retain(|t| !t.name.as_ref().is_some_and(|n| internal(n.as_str()))),
            ResponseKind::DescribeLogDirs(d) => d
                .results
                .iter_mut()
                .for_each(|r| r.topics.retain(|t| !internal(t.name.as_str()))),
            ResponseKind::DescribeTopicPartitions(d) => d
                .topics
                .retain(|t| !t.name.as_ref().is_some_and(|n| internal(n.as_str()))),
            // The harness warms each new cluster's coordinators up with its own (unprefixed)
            // transactional ids and groups: a dedicated cluster's, never a tenant's.
            ResponseKind::ListTransactions(l) => l
                .transaction_states
                .retain(|t| !t.transactional_id.as_str().starts_with("kgw-warmup")),
            ResponseKind::ListGroups(l) => l
                .groups
                .retain(|g| !g.group_id.as_str().starts_with("kgw-warmup")),
            ResponseKind::ListConfigResources(l) => l
                .config_resources
                .retain(|r| !(r.resource_type == 2 && internal(r.resource_name.as_str()))),
            _ => {}
        }
    }
    if let ResponseKind::CreateTopics(c) = &mut resp {
        // A validate-only creation still reports the id the topic would get: random per cluster.
        for t in &mut c.topics {
            t.topic_id = Uuid::nil();
        }
    }
    if let ResponseKind::DescribeLogDirs(d) = &mut resp {
        // The share coordinator writes its state topic in the background, after the share
        // requests that cause it: its size at any instant, and the order its partitions come
        // in, are timing.
        for t in d.results.iter_mut().flat_map(|r| &mut r.topics) {
            if t.name.as_str() == "__share_group_state" {
                t.partitions.iter_mut().for_each(|p| p.partition_size = 0);
                t.partitions.sort_by_key(|p| p.partition_index);
            }
        }
    }
    sort(&mut resp, side);
    let mut s = format!("{resp:?}");
    let rules: Vec<(&str, &str)> = vec![
        (r"throttle_time_ms: -?\d+", "throttle_time_ms: _"),
        (
            r#"error_message: (None|Some\("(?:[^"\\]|\\.)*"\))"#,
            "error_message: _",
        ),
        (r#"host: "[^"]*""#, "host: _"),
        (r"port: -?\d+", "port: _"),
        (
            r#"cluster_id: (None|Some\("[^"]*"\)|"[^"]*")"#,
            "cluster_id: _",
        ),
        (r#"member_id: (Some\()?"[^"]*"\)?"#, "member_id: _"),
        (r#"leader: "[^"]*""#, "leader: _"),
        (r"producer_id: (ProducerId\()?-?\d+\)?", "producer_id: _"),
        (r"session_id: -?\d+", "session_id: _"),
        (r#"client_host: "[^"]*""#, "client_host: _"),
        (r#"log_dir: "[^"]*""#, "log_dir: _"),
        (r"total_bytes: -?\d+", "total_bytes: _"),
        (r"usable_bytes: -?\d+", "usable_bytes: _"),
        (
            r"transaction_start_time_ms: -?\d+",
            "transaction_start_time_ms: _",
        ),
        (r"last_timestamp: -?\d+", "last_timestamp: _"),
    ];
    for (re, to) in rules {
        if api == ApiKey::DescribeAcls && to == "host: _" {
            continue; // an ACL's host is policy, not a broker address
        }
        s = regex::Regex::new(re)
            .expect("regex")
            .replace_all(&s, to)
            .into_owned();
    }
    if api == ApiKey::ShareFetch {
        // Which records a new share partition has acquired by the time of a fetch that does not
        // wait is timing, not authorization.
        for (re, to) in [
            (
                r#"records: (None|Some\(b"(?:[^"\\]|\\.)*"\))"#,
                "records: _",
            ),
            (r"acquired_records: \[[^\]]*\]", "acquired_records: _"),
        ] {
            s = regex::Regex::new(re)
                .expect("regex")
                .replace_all(&s, to)
                .into_owned();
        }
    }
    if api == ApiKey::DescribeConfigs {
        // Broker configs name each cluster's own ports and directories.
        s = regex::Regex::new(r#"value: (None|Some\("(?:[^"\\]|\\.)*"\))"#)
            .expect("regex")
            .replace_all(&s, "value: _")
            .into_owned();
    }
    s
}

/// Replaces each known topic id by the topic's name.
fn ids_to_names(s: &str, side: &Side) -> String {
    let mut out = s.to_string();
    for (name, id) in &side.ids {
        out = out.replace(&id.to_string(), &format!("<id of {name}>"));
    }
    out.replace(&side.cluster_id, "<cluster id>")
}

/// After a Metadata request that may auto-create `names`: waits for each to exist on both
/// sides or neither, and returns the topics the gateway's side created that Kafka's did not (a
/// fail-open: the gateway let a session create what Kafka refused). A topic Kafka created and
/// the gateway's side did not is the documented limitation of topics/metadata.rs (a request that
/// mixes topics the session may auto-create with DESCRIBE-able ones it may not is forwarded with
/// auto-creation off: same answer, the creation left to a later request): it is created on the
/// gateway's side too, so that later requests compare equal state, and reported.
fn settle_auto_creation(kafka: &mut Side, gw: &mut Side, names: &[String]) -> Option<Vec<String>> {
    let start = Instant::now();
    loop {
        kafka.refresh_ids();
        gw.refresh_ids();
        let settled = names
            .iter()
            .all(|n| kafka.ids.contains_key(n) == gw.ids.contains_key(n));
        if (settled && start.elapsed() > Duration::from_millis(300))
            || start.elapsed() > Duration::from_secs(2)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let only_kafka: Vec<&String> = names
        .iter()
        .filter(|n| kafka.ids.contains_key(*n) && !gw.ids.contains_key(*n))
        .collect();
    if !only_kafka.is_empty() {
        println!(
            "RESULT differential: auto-created by Kafka and not through the gateway (the mixed-request limitation): {only_kafka:?}"
        );
        let mut c = RawClient::connect(gw.admin);
        let prefixed: Vec<String> = only_kafka
            .iter()
            .map(|n| format!("{}{n}", gw.prefix))
            .collect();
        let names: Vec<&str> = prefixed.iter().map(|n| n.as_str()).collect();
        for (name, code) in common::kafka::create_topics(&mut c, &names, 1) {
            // 36: the gateway's side created it after all, a moment later.
            assert!(code == 0 || code == 36, "creating {name}: {code}");
        }
        gw.refresh_ids();
    }
    let only_gateway: Vec<String> = names
        .iter()
        .filter(|n| gw.ids.contains_key(*n) && !kafka.ids.contains_key(*n))
        .cloned()
        .collect();
    (!only_gateway.is_empty()).then_some(only_gateway)
}

struct Difference {
    set: String,
    policy: String,
    user: &'static str,
    host: Ipv4Addr,
    api: ApiKey,
    version: i16,
    request: String,
    kafka: String,
    gateway: String,
}

/// The APIs the gateway forwards and the versions both sides offer them at.
fn common_versions(kafka: SocketAddr, gateway: SocketAddr) -> Vec<(ApiKey, i16)> {
    let versions = |addr: SocketAddr| -> BTreeMap<i16, (i16, i16)> {
        let resp: ApiVersionsResponse =
            RawClient::connect(addr).request(ApiKey::ApiVersions, 3, &api_versions_request());
        resp.api_keys
            .iter()
            .map(|a| (a.api_key, (a.min_version, a.max_version)))
            .collect()
    };
    let (k, g) = (versions(kafka), versions(gateway));
    let mut out = Vec::new();
    for (key, (gmin, gmax)) in &g {
        let Ok(api) = ApiKey::try_from(*key) else {
            continue;
        };
        // CreateAcls and DeleteAcls differ by design: Kafka changes its ACLs, the gateway refuses
        // with SECURITY_DISABLED because its policy files are the source of truth (e2e_kafka runs
        // kafka-acls.sh against it).
        if matches!(
            api,
            ApiKey::ApiVersions
                | ApiKey::SaslHandshake
                | ApiKey::SaslAuthenticate
                | ApiKey::CreateAcls
                | ApiKey::DeleteAcls
        ) {
            continue;
        }
        let Some((kmin, kmax)) = k.get(key) else {
            continue;
        };
        for v in (*gmin).max(*kmin)..=(*gmax).min(*kmax) {
            out.push((api, v));
        }
    }
    out
}

#[test]
fn the_gateway_answers_as_kafka_does_with_the_same_acls() {
    differential("", 2000);
}

/// The same comparison for a tenant (issue 14): the gateway's cluster is shared, its fixture under
/// `ten.` beside another tenant's (`zz.`) and unprefixed names, and the tenant's client must see
/// what a client of a dedicated cluster sees, names translated, nothing of the others. Internal
/// topics (`__consumer_offsets`, ...) are what differs by design: a dedicated cluster lists them
/// to whoever may describe them, a tenant never sees them; they are left out of both sides.
#[test]
fn a_tenant_answers_as_a_dedicated_cluster_does_with_the_same_acls() {
    differential("ten.", 1000);
}

fn differential(prefix: &'static str, min_pairs: usize) {
    let seed: u64 = std::env::var("KGW_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let random_sets: usize = std::env::var("KGW_DIFF_SETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    println!("RESULT differential seed {seed} (replay: KGW_DIFF_SEED={seed})");
    let opts = || {
        let mut o = ClusterOptions::default()
            // Members joined by the test stay for its whole run on both sides alike.
            .prop("group.consumer.session.timeout.ms=600000")
            .prop("group.consumer.max.session.timeout.ms=600000");
        for u in PRINCIPALS {
            o = o.user(u, &password(u));
        }
        o
    };
    let direct = KafkaCluster::start_with(opts());
    let behind = KafkaCluster::start_with(opts());
    let dir = TempDir::new("differential");
    let users = dir.path().join("users.toml");
    for u in PRINCIPALS {
        add_scram_user(&users, u, &password(u), &["SCRAM-SHA-256"]);
    }
    let policy = dir.path().join("acl.policy");
    std::fs::write(&policy, "# empty at start\n").expect("policy");
    let listener = ListenerSpec {
        name: "sasl",
        tls: false,
        client_auth: "none",
        sasl: r#""SCRAM-SHA-256""#,
    };
    let extra = format!(
        "[authentication]\ncredentials_file = {users:?}\nfailure_delay = \"10ms\"\n\n\
         [authorization]\nmodel = {:?}\npolicy_files = [{policy:?}]\nsuper_users = []\n",
        repo_root().join("policies/model.conf")
    );
    let (text, ports, admin) = if prefix.is_empty() {
        gateway_config(&behind.upstream(), &[listener], None, &extra)
    } else {
        tenant_config(&behind.upstream(), prefix, &users, &policy)
    };
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    fixture(direct.socket(KafkaListener::Plaintext), "");
    fixture(behind.socket(KafkaListener::Plaintext), prefix);
    if !prefix.is_empty() {
        // Neighbours on the shared cluster, named like the tenant's own: never to be seen.
        fixture(behind.socket(KafkaListener::Plaintext), "zz.");
        fixture(behind.socket(KafkaListener::Plaintext), "");
    }
    let mut kafka = Side {
        name: "kafka",
        sasl: direct.socket(KafkaListener::SaslPlaintext),
        admin: direct.socket(KafkaListener::Plaintext),
        ids: HashMap::new(),
        cluster_id: String::new(),
        prefix: "",
        hide_internal: !prefix.is_empty(),
    };
    let mut gw = Side {
        name: "gateway",
        sasl: gateway.addr("sasl"),
        admin: behind.socket(KafkaListener::Plaintext),
        ids: HashMap::new(),
        cluster_id: String::new(),
        prefix,
        hide_internal: !prefix.is_empty(),
    };
    let combos = common_versions(kafka.sasl, gw.sasl);
    let mut rng = Rng(seed);
    let mut sets: Vec<(String, Vec<Acl>)> = scenario_sets();
    for i in 0..random_sets {
        sets.push((format!("random {i}"), random_acls(&mut rng)));
    }
    let mut differences: Vec<Difference> = Vec::new();
    let mut pairs = 0usize;
    let mut covered: BTreeMap<(String, i16), usize> = BTreeMap::new();
    let started = Instant::now();
    let mut n = 0usize;
    for (set_index, (set_name, acls)) in sets.iter().enumerate() {
        apply_kafka_acls(kafka.admin, acls);
        apply_gateway_policy(&gateway, &policy, acls);
        kafka.refresh_ids();
        gw.refresh_ids();
        let mut kc = Conns {
            map: HashMap::new(),
        };
        let mut gc = Conns {
            map: HashMap::new(),
        };
        // Scenario sets get a quarter of the combinations each (in turn), random sets all of them.
        let mine: Vec<(ApiKey, i16)> = if set_index < scenario_sets().len() {
            combos
                .iter()
                .enumerate()
                .filter(|(i, _)| (i + set_index) % 4 == 0)
                .map(|(_, c)| *c)
                .collect()
        } else {
            combos.clone()
        };
        for (api, v) in mine {
            n += 1;
            let user = *rng.pick(&PRINCIPALS);
            let host = *rng.pick(&HOSTS);
            let choices = rng.clone();
            let mut r1 = choices.clone();
            let mut r2 = choices;
            rng.next();
            let req_k = build(api, v, &mut r1, &kafka, n);
            let req_g = build(api, v, &mut r2, &gw, n);
            // Paging through every topic starts with the internal ones on a dedicated cluster and
            // never shows them to a tenant: the pages are not comparable (read-only, so skipped).
            if !prefix.is_empty()
                && matches!(&req_k, RequestKind::DescribeTopicPartitions(d) if d.topics.is_empty())
            {
                continue;
            }
            // Topics a Metadata request may auto-create: named, and missing on Kafka's side.
            let may_create: Vec<String> = match &req_k {
                RequestKind::Metadata(m) if m.allow_auto_topic_creation => m
                    .topics
                    .iter()
                    .flatten()
                    .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                    .filter(|n| !kafka.ids.contains_key(n))
                    .collect(),
                _ => Vec::new(),
            };
            let a = send(kc.get(&kafka, user, host), api, v, &req_k, &kafka);
            let b = send(gc.get(&gw, user, host), api, v, &req_g, &gw);
            if a == Outcome::Closed {
                kc.map.remove(&(user, host));
            }
            if b == Outcome::Closed {
                gc.map.remove(&(user, host));
            }
            let show = |o: &Outcome, side: &Side| match o {
                Outcome::Answer(s) => ids_to_names(s, side),
                Outcome::Closed => "<connection closed>".to_string(),
            };
            // A Metadata request may have auto-created a topic: learn its ids on both sides.
            if matches!(&req_k, RequestKind::Metadata(m) if m.allow_auto_topic_creation) {
                kafka.refresh_ids();
                gw.refresh_ids();
            }
            let (mut sa, mut sb_) = (show(&a, &kafka), show(&b, &gw));
            if sa != sb_ {
                // A topic auto-created a moment ago may only now show up: learn ids, compare again.
                kafka.refresh_ids();
                gw.refresh_ids();
                (sa, sb_) = (show(&a, &kafka), show(&b, &gw));
            }
            if sa != sb_ && api == ApiKey::Metadata {
                // An auto-created topic can reach one cluster's metadata before the other's (seen
                // once: the gateway's side listed it, the direct side not yet). Metadata changes
                // nothing that was not already asked for: ask both again once things settled.
                std::thread::sleep(Duration::from_millis(500));
                kafka.refresh_ids();
                gw.refresh_ids();
                let a2 = send(kc.get(&kafka, user, host), api, v, &req_k, &kafka);
                let b2 = send(gc.get(&gw, user, host), api, v, &req_g, &gw);
                (sa, sb_) = (show(&a2, &kafka), show(&b2, &gw));
            }
            if sa != sb_
                && matches!(api, ApiKey::ShareFetch | ApiKey::ShareAcknowledge)
                && (sa.contains("error_code: -1") || sb_.contains("error_code: -1"))
            {
                // Kafka answers a partition of a share group it has not yet loaded the state of
                // with UNKNOWN_SERVER_ERROR (-1) now and then (seen once in CI, on the direct
                // side, for a new group). No authorization decision yields -1, so this is the
                // broker's timing: the same request on new share sessions, once things settled,
                // must then compare equal (as another member, so no session of the first is
                // in the way).
                std::thread::sleep(Duration::from_millis(500));
                let again = |req: &RequestKind| {
                    let mut req = req.clone();
                    if let RequestKind::ShareFetch(f) = &mut req {
                        f.member_id = Some(sb(&kafka_uuid(n + (1 << 40))));
                    }
                    req
                };
                let a2 = send(kc.get(&kafka, user, host), api, v, &again(&req_k), &kafka);
                let b2 = send(gc.get(&gw, user, host), api, v, &again(&req_g), &gw);
                (sa, sb_) = (show(&a2, &kafka), show(&b2, &gw));
            }
            pairs += 1;
            *covered.entry((format!("{api:?}"), v)).or_default() += 1;
            let difference = |kafka_said: String, gateway_said: String, kafka: &Side| Difference {
                set: set_name.clone(),
                policy: policy_text(acls),
                user,
                host,
                api,
                version: v,
                request: ids_to_names(&format!("{req_k:?}"), kafka),
                kafka: kafka_said,
                gateway: gateway_said,
            };
            if !may_create.is_empty() {
                if let Some(created) = settle_auto_creation(&mut kafka, &mut gw, &may_create) {
                    differences.push(difference(
                        "(no topic auto-created)".into(),
                        format!("auto-created {created:?}"),
                        &kafka,
                    ));
                }
            }
            if sa != sb_ {
                differences.push(difference(sa, sb_, &kafka));
            }
        }
    }
    let apis: BTreeSet<&String> = covered.keys().map(|(a, _)| a).collect();
    println!(
        "RESULT differential: {pairs} request pairs over {} ACL sets ({} scenario sets), {} APIs x \
         {} versions, {} differences, {:?}",
        sets.len(),
        scenario_sets().len(),
        apis.len(),
        covered.len(),
        differences.len(),
        started.elapsed()
    );
    for api in &apis {
        let vs: Vec<String> = covered
            .keys()
            .filter(|(a, _)| a == *api)
            .map(|(_, v)| v.to_string())
            .collect();
        println!("RESULT   {api}: v{}", vs.join(","));
    }
    // Differences grouped by API and version, each group with its first example in full.
    let mut groups: BTreeMap<(String, i16), Vec<&Difference>> = BTreeMap::new();
    for d in &differences {
        groups
            .entry((format!("{:?}", d.api), d.version))
            .or_default()
            .push(d);
    }
    for ((api, v), ds) in &groups {
        let d = ds[0];
        println!(
            "DIFFERENCE {api} v{v} ({} cases); first in set '{}' as User:{} from {}:\n  policy:\n{}  request: {}\n  kafka:   {}\n  gateway: {}\n",
            ds.len(),
            d.set,
            d.user,
            d.host,
            d.policy
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>(),
            tail(&d.request, 1500),
            tail(&d.kafka, 3000),
            tail(&d.gateway, 3000)
        );
    }
    assert!(pairs >= min_pairs, "only {pairs} pairs compared");
    assert!(
        differences.is_empty(),
        "{} differences in {} API versions (seed {seed}); see DIFFERENCE lines above",
        differences.len(),
        groups.len()
    );
}

// ---------------------------------------------------------------------------------------------------------
// SECURITY-SCENARIOS 33-38: the SASL conversation itself, compared with Kafka's
// ---------------------------------------------------------------------------------------------------------

/// What a SASL step left behind, in a form both sides can be compared by.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Error code of the response (and, for handshakes, the mechanisms on offer, sorted).
    Answer(i16, Vec<String>),
    Closed,
}

fn handshake_step(c: &mut RawClient, mechanism: &str) -> Step {
    let mut req = SaslHandshakeRequest::default();
    req.mechanism = sb(mechanism);
    let (_, frame) = c.encode(ApiKey::SaslHandshake, 1, &req);
    if c.send_raw(&frame).is_err() {
        return Step::Closed;
    }
    match c.read_frame() {
        Ok(mut p) => {
            let _ = ResponseHeader::decode(&mut p, 0).expect("header");
            let r = SaslHandshakeResponse::decode(&mut p, 1).expect("handshake");
            let mut m: Vec<String> = r.mechanisms.iter().map(|m| m.to_string()).collect();
            m.sort();
            Step::Answer(r.error_code, m)
        }
        Err(_) => Step::Closed,
    }
}

fn authenticate_step(c: &mut RawClient, bytes: &[u8]) -> (Step, Option<SaslAuthenticateResponse>) {
    let mut req = SaslAuthenticateRequest::default();
    req.auth_bytes = Bytes::copy_from_slice(bytes);
    let (_, frame) = c.encode(ApiKey::SaslAuthenticate, 2, &req);
    if c.send_raw(&frame).is_err() {
        return (Step::Closed, None);
    }
    match c.read_frame() {
        Ok(mut p) => {
            let _ = ResponseHeader::decode(&mut p, 1).expect("header");
            let r = SaslAuthenticateResponse::decode(&mut p, 2).expect("authenticate");
            (Step::Answer(r.error_code, Vec::new()), Some(r))
        }
        Err(_) => (Step::Closed, None),
    }
}

/// A Metadata request's fate: answered (with its error code) or the connection closed.
fn metadata_step(c: &mut RawClient) -> Step {
    let (_, frame) = c.encode(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(Vec::new())),
    );
    if c.send_raw(&frame).is_err() {
        return Step::Closed;
    }
    match c.read_frame() {
        Ok(_) => Step::Answer(0, Vec::new()),
        Err(_) => Step::Closed,
    }
}

/// Steps a scenario takes on one side's SASL listener, returning what each step saw.
fn auth_scenario(addr: SocketAddr, scenario: u8) -> Vec<Step> {
    let connect = || RawClient::connect(addr);
    let closed = |c: &mut RawClient| {
        if c.is_closed_within(Duration::from_secs(3)) {
            Step::Closed
        } else {
            Step::Answer(-1, vec!["open".into()])
        }
    };
    match scenario {
        // 33a: a first frame that is neither ApiVersions nor SaslHandshake.
        33 => {
            let mut c = connect();
            let mut out = vec![metadata_step(&mut c)];
            // 33b: after SaslHandshake, anything but SaslAuthenticate.
            let mut c = connect();
            out.push(handshake_step(&mut c, "SCRAM-SHA-256"));
            out.push(metadata_step(&mut c));
            out.push(closed(&mut c));
            out
        }
        // 34: a mechanism that is not enabled.
        34 => {
            let mut c = connect();
            vec![
                handshake_step(&mut c, "GSSAPI"),
                handshake_step(&mut c, "NOT-A-MECH"),
            ]
        }
        // 35: wrong password; unknown user. The same number of rounds, the same final code.
        35 => {
            let mut out = Vec::new();
            for (user, password) in [("alice", "wrong"), ("nobody", "whatever")] {
                let mut c = connect();
                let l = login(&mut c, "SCRAM-SHA-256", user, password);
                out.push(Step::Answer(
                    l.error_code(),
                    vec![l.responses.len().to_string()],
                ));
            }
            out
        }
        // 36: authzid naming someone else; a client-final nonce that is not the server's.
        36 => {
            let mut out = Vec::new();
            let mut c = connect();
            out.push(handshake_step(&mut c, "SCRAM-SHA-256"));
            let (first, _) = authenticate_step(&mut c, b"n,a=bob,n=alice,r=clientnonce123456");
            let failed = match first {
                Step::Answer(0, _) => authenticate_step(&mut c, b"c=biws,r=whatever,p=AAAA").0,
                other => other,
            };
            out.push(failed);
            let mut c = connect();
            out.push(handshake_step(&mut c, "SCRAM-SHA-256"));
            let (_, r) = authenticate_step(&mut c, b"n,,n=alice,r=clientnonce123456");
            let text = r
                .map(|r| String::from_utf8_lossy(&r.auth_bytes).into_owned())
                .unwrap_or_default();
            let nonce = text
                .split(',')
                .find_map(|f| f.strip_prefix("r="))
                .unwrap_or_default()
                .to_string();
            let tampered =
                format!("c=biws,r={nonce}X,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
            out.push(authenticate_step(&mut c, tampered.as_bytes()).0);
            out
        }
        // 37: SaslHandshake after a successful login, with re-authentication off.
        37 => {
            let mut c = connect();
            let l = login(&mut c, "SCRAM-SHA-256", "alice", &password("alice"));
            vec![
                Step::Answer(l.error_code(), Vec::new()),
                handshake_step(&mut c, "SCRAM-SHA-256"),
                closed(&mut c),
            ]
        }
        _ => unreachable!("scenario {scenario}"),
    }
}

#[test]
fn scenarios_33_to_37_the_sasl_conversation_answers_as_kafka_does() {
    let mut o = ClusterOptions::default();
    for u in PRINCIPALS {
        o = o.user(u, &password(u));
    }
    let kafka = KafkaCluster::start_with(o);
    let dir = TempDir::new("differential-auth");
    let users = dir.path().join("users.toml");
    for u in PRINCIPALS {
        add_scram_user(&users, u, &password(u), &["SCRAM-SHA-256", "SCRAM-SHA-512"]);
    }
    // The same mechanisms as Kafka's listener, re-authentication off on both.
    let listener = ListenerSpec {
        name: "sasl",
        tls: false,
        client_auth: "none",
        sasl: r#""SCRAM-SHA-256", "SCRAM-SHA-512""#,
    };
    let extra =
        format!("[authentication]\ncredentials_file = {users:?}\nfailure_delay = \"100ms\"\n");
    let (text, ports, admin) = gateway_config(&kafka.upstream(), &[listener], None, &extra);
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    let mut differences = Vec::new();
    for scenario in [33u8, 34, 35, 36, 37] {
        let k = auth_scenario(kafka.socket(KafkaListener::SaslPlaintext), scenario);
        let g = auth_scenario(gateway.addr("sasl"), scenario);
        println!("RESULT scenario {scenario}: kafka {k:?}, gateway {g:?}");
        if scenario == 35 {
            // The one intended difference: Kafka refuses an unknown user at the client-first
            // message (1 round) and a wrong password at client-final (2 rounds), which tells an
            // attacker which names exist. The gateway answers an unknown user with a decoy
            // server-first, so both fail after 2 rounds, as SECURITY-SCENARIOS 35 requires.
            let codes = |v: &[Step]| -> Vec<i16> {
                v.iter()
                    .map(|s| match s {
                        Step::Answer(c, _) => *c,
                        Step::Closed => -1,
                    })
                    .collect()
            };
            assert_eq!(codes(&k), vec![58, 58], "kafka: {k:?}");
            assert_eq!(codes(&g), vec![58, 58], "gateway: {g:?}");
            assert_eq!(
                g[0], g[1],
                "the gateway tells unknown users from wrong passwords"
            );
            continue;
        }
        if k != g {
            differences.push(format!("scenario {scenario}: kafka {k:?}\n  gateway {g:?}"));
        }
    }
    // (38, re-authentication, is compared in e2e_kafka against Kafka's REAUTH listener from the
    // gateway's upstream side, and in e2e_auth from the client side; 39, OAUTHBEARER scopes, needs
    // an OAuth-configured broker, which Kafka's test cluster does not have.)
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
