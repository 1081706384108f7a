//! Property tests: the indexed engine (with and without its cache) against a deliberately simple
//! reference written straight from Kafka's rules (a linear scan over the generated rules), and,
//! on a smaller sample, against the casbin enforcer built from the shipped policies/model.conf.
//! Small alphabets make names, prefixes, principals and hosts collide often.

use std::net::IpAddr;

use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::policy::cache::Snapshot;
use crate::policy::engine::tests::MODEL;
use crate::policy::files::PolicySet;

const SUBJECTS: &[&str] = &["User:a", "User:b", "User:*", "Group:g", "Group:h"];
const MEMBERSHIPS: &[(&str, &str)] = &[("a", "g"), ("b", "g"), ("a", "h"), ("c", "h")];
const RTYPES: &[ResourceType] = &[ResourceType::Topic, ResourceType::Group];
const PATTERNS: &[&str] = &[
    "*", "a", "b", "ab", "aa", "ü", "a*", "b*", "ab*", "ü*", "aü*",
];
const NAMES: &[&str] = &[
    "", "a", "b", "ab", "ba", "aa", "abb", "ü", "aü", "aüx", "*", "a*",
];
const OPS: &[Operation] = &[
    Operation::All,
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
];
const RULE_HOSTS: &[&str] = &[
    "*",
    "*",
    "10.0.0.1",
    "10.0.0.0/24",
    "10.0.1.0/24",
    "::ffff:10.0.0.2",
];
const HOSTS: &[&str] = &[
    "10.0.0.1",
    "10.0.0.2",
    "10.0.1.5",
    "192.168.0.1",
    "::ffff:10.0.0.1",
];
const PRINCIPALS: &[&str] = &["a", "b", "c", "d"];

#[derive(Debug, Clone)]
struct GenRule {
    subject: &'static str,
    rtype: ResourceType,
    pattern: &'static str,
    op: Operation,
    host: &'static str,
    allow: bool,
}

#[derive(Debug, Clone)]
struct GenPolicy {
    rules: Vec<GenRule>,
    members: Vec<(&'static str, &'static str)>,
    super_c: bool,
}

#[derive(Debug, Clone)]
struct GenRequest {
    user: &'static str,
    host: &'static str,
    op: Operation,
    rtype: ResourceType,
    name: &'static str,
}

fn rule() -> impl Strategy<Value = GenRule> {
    (
        select(SUBJECTS),
        select(RTYPES),
        select(PATTERNS),
        select(OPS),
        select(RULE_HOSTS),
        prop::bool::weighted(0.65),
    )
        .prop_map(|(subject, rtype, pattern, op, host, allow)| GenRule {
            subject,
            rtype,
            pattern,
            op,
            host,
            allow,
        })
}

fn policy(max_rules: usize) -> impl Strategy<Value = GenPolicy> {
    (
        prop::collection::vec(rule(), 0..max_rules),
        prop::sample::subsequence(MEMBERSHIPS.to_vec(), 0..=MEMBERSHIPS.len()),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(rules, members, super_c)| GenPolicy {
            rules,
            members,
            super_c,
        })
}

fn request() -> impl Strategy<Value = GenRequest> {
    (
        select(PRINCIPALS),
        select(HOSTS),
        select(OPS),
        select(RTYPES),
        select(NAMES),
    )
        .prop_map(|(user, host, op, rtype, name)| GenRequest {
            user,
            host,
            op,
            rtype,
            name,
        })
}

fn policy_text(p: &GenPolicy) -> String {
    let mut s = String::new();
    for (u, g) in &p.members {
        s.push_str(&format!("g, User:{u}, Group:{g}\n"));
    }
    for r in &p.rules {
        let eft = if r.allow { "allow" } else { "deny" };
        s.push_str(&format!(
            "p, {}, {}, {}, {}, {}, {eft}\n",
            r.subject, r.rtype, r.pattern, r.op, r.host
        ));
    }
    s
}

fn supers(p: &GenPolicy) -> Vec<String> {
    if p.super_c {
        vec!["User:c".to_string()]
    } else {
        Vec::new()
    }
}

// ---- The reference: Kafka's rules, read literally, one linear scan. ----

fn ipv4(s: &str) -> u32 {
    let ip: IpAddr = s.parse().expect("generated address");
    match ip.to_canonical() {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(_) => panic!("only IPv4 (or mapped) addresses are generated"),
    }
}

fn ref_host(rule: &str, host: &str) -> bool {
    if rule == "*" {
        return true;
    }
    match rule.split_once('/') {
        None => ipv4(rule) == ipv4(host),
        Some((net, len)) => {
            let len: u32 = len.parse().expect("len");
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            ipv4(host) & mask == ipv4(net)
        }
    }
}

fn ref_name(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn ref_subject(p: &GenPolicy, subject: &str, user: &str) -> bool {
    subject == "User:*"
        || subject == format!("User:{user}")
        || p.members
            .iter()
            .any(|(u, g)| *u == user && subject == format!("Group:{g}"))
}

fn ref_op(rule_op: Operation, allow: bool, op: Operation) -> bool {
    if rule_op == Operation::All || rule_op == op {
        return true;
    }
    allow
        && ((op == Operation::Describe
            && matches!(
                rule_op,
                Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
            ))
            || (op == Operation::DescribeConfigs && rule_op == Operation::AlterConfigs))
}

fn ref_decide(p: &GenPolicy, q: &GenRequest) -> Decision {
    if p.super_c && q.user == "c" {
        return Decision {
            allowed: true,
            reason: Reason::SuperUser,
        };
    }
    let matching = |allow: bool| {
        p.rules.iter().enumerate().find(|(_, r)| {
            r.allow == allow
                && r.rtype == q.rtype
                && ref_subject(p, r.subject, q.user)
                && ref_name(r.pattern, q.name)
                && ref_host(r.host, q.host)
                && ref_op(r.op, r.allow, q.op)
        })
    };
    if let Some((i, _)) = matching(false) {
        return Decision {
            allowed: false,
            reason: Reason::Deny(RuleId(i as u32)),
        };
    }
    if let Some((i, _)) = matching(true) {
        return Decision {
            allowed: true,
            reason: Reason::Allow(RuleId(i as u32)),
        };
    }
    Decision {
        allowed: false,
        reason: Reason::NoMatchingAllow,
    }
}

/// Kafka's default `authorizeByResourceType`, transcribed (with implied operations for ALLOW).
fn ref_decide_any(p: &GenPolicy, q: &GenRequest) -> bool {
    if p.super_c && q.user == "c" {
        return true;
    }
    let mut deny_literal = Vec::new();
    let mut deny_prefixed = Vec::new();
    let mut allow_literal = Vec::new();
    let mut allow_prefixed = Vec::new();
    let mut wildcard_allow = false;
    for r in &p.rules {
        if r.rtype != q.rtype || !ref_host(r.host, q.host) || !ref_subject(p, r.subject, q.user) {
            continue;
        }
        if !ref_op(r.op, r.allow, q.op) {
            continue;
        }
        let (literal, name) = match r.pattern.strip_suffix('*') {
            Some(prefix) if r.pattern != "*" => (false, prefix),
            _ => (true, r.pattern),
        };
        if !r.allow {
            if literal && name == "*" {
                return false;
            }
            if literal {
                deny_literal.push(name)
            } else {
                deny_prefixed.push(name)
            }
        } else if literal && name == "*" {
            wildcard_allow = true;
        } else if literal {
            allow_literal.push(name)
        } else {
            allow_prefixed.push(name)
        }
    }
    if wildcard_allow {
        return true;
    }
    let dominated = |s: &str| {
        let mut sb = String::new();
        for ch in s.chars() {
            sb.push(ch);
            if deny_prefixed.contains(&sb.as_str()) {
                return true;
            }
        }
        false
    };
    allow_literal
        .iter()
        .any(|l| !deny_literal.contains(l) && !dominated(l))
        || allow_prefixed.iter().any(|p| !dominated(p))
}

fn principal(q: &GenRequest) -> Principal {
    Principal::user(q.user)
}

fn host(q: &GenRequest) -> IpAddr {
    q.host.parse().expect("generated address")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn engine_and_cache_match_the_reference(p in policy(14), reqs in prop::collection::vec(request(), 1..24)) {
        let set = PolicySet::from_texts(None, &[("gen.policy", &policy_text(&p))], &supers(&p)).expect("generated policy loads");
        // A tiny cache, so entries are evicted and refilled during the run.
        let snap = Snapshot::new(Engine::new(set), 32);
        for q in &reqs {
            let want = ref_decide(&p, q);
            prop_assert_eq!(snap.engine().decide(&principal(q), host(q), q.op, q.rtype, q.name), want, "{:?}", q);
            prop_assert_eq!(snap.decide(&principal(q), host(q), q.op, q.rtype, q.name), want, "cache miss {:?}", q);
            prop_assert_eq!(snap.decide(&principal(q), host(q), q.op, q.rtype, q.name), want, "cache hit {:?}", q);
            let any = ref_decide_any(&p, q);
            prop_assert_eq!(snap.engine().decide_any(&principal(q), host(q), q.op, q.rtype).allowed, any, "any {:?}", q);
            prop_assert_eq!(snap.decide_any(&principal(q), host(q), q.op, q.rtype).allowed, any, "cached any {:?}", q);
        }
    }

    #[test]
    fn decide_any_is_consistent_with_decide(p in policy(10), q in request()) {
        // If some named resource is allowed and it is not `*`-denied, allowed_any must be true for
        // the generated names (the converse does not hold: a prefix may cover names not generated).
        let set = PolicySet::from_texts(None, &[("gen.policy", &policy_text(&p))], &supers(&p)).expect("generated policy loads");
        let e = Engine::new(set);
        let some_allowed = NAMES.iter().any(|n| e.decide(&principal(&q), host(&q), q.op, q.rtype, n).allowed);
        if some_allowed {
            prop_assert!(e.decide_any(&principal(&q), host(&q), q.op, q.rtype).allowed);
        }
    }
}

proptest! {
    // casbin evaluates every rule through a script engine: fewer cases.
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn shipped_casbin_model_matches_the_engine(p in policy(12), reqs in prop::collection::vec(request(), 1..32)) {
        let set = PolicySet::from_texts(Some(("model.conf", MODEL)), &[("gen.policy", &policy_text(&p))], &supers(&p))
            .expect("generated policy loads with the model");
        let e = Engine::new(set);
        for q in &reqs {
            let d = e.decide(&principal(q), host(q), q.op, q.rtype, q.name);
            if d.reason == Reason::SuperUser {
                continue; // super users are decided before the model
            }
            let c = e.policy().and_then(|s| s.casbin_enforce(&principal(q), host(q), q.op, q.rtype, q.name));
            prop_assert_eq!(c, Some(Ok(d.allowed)), "{:?}\n{}", q, policy_text(&p));
        }
    }
}
