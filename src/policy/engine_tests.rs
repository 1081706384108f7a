//! Engine decisions: SECURITY-SCENARIOS items 3-4 and 28-32 as decisions, the implication table,
//! super users, default deny, groups, hosts, hostile names, explain and who-can, sessions.

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::policy::cache::{PolicyHandle, Snapshot};
use crate::policy::files::PolicySet;
use crate::policy::model::{Operation as Op, ResourceType as Rt, CLUSTER_NAME};

pub(crate) const MODEL: &str = include_str!("../../policies/model.conf");

pub(crate) fn set(text: &str, supers: &[&str]) -> PolicySet {
    let su: Vec<String> = supers.iter().map(|s| s.to_string()).collect();
    PolicySet::from_texts(Some(("model.conf", MODEL)), &[("test.policy", text)], &su)
        .expect("the test policy loads")
}

pub(crate) fn engine(text: &str) -> Engine {
    Engine::new(set(text, &[]))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

const ANY_HOST: &str = "10.1.2.3";

fn user(n: &str) -> Principal {
    Principal::user(n)
}

fn allowed(e: &Engine, who: &str, op: Op, rt: Rt, name: &str) -> bool {
    let d = e.decide(&user(who), ip(ANY_HOST), op, rt, name);
    // Every decision must agree with the casbin model built from policies/model.conf.
    if d.reason != Reason::SuperUser {
        let c = e
            .policy()
            .and_then(|p| p.casbin_enforce(&user(who), ip(ANY_HOST), op, rt, name))
            .map(|r| r.expect("casbin evaluates"));
        if let Some(c) = c {
            assert_eq!(c, d.allowed, "casbin disagrees for {who} {op} {rt} {name}");
        }
    }
    d.allowed
}

#[test]
fn item_28_deny_wins_literal_deny_all_vs_prefix_allow() {
    let e = engine(
        "p, User:alice, Topic, foo, All, *, deny\n\
         p, User:alice, Topic, foo*, Read, *, allow\n",
    );
    let d = e.decide(&user("alice"), ip(ANY_HOST), Op::Read, Rt::Topic, "foo");
    assert_eq!(
        d,
        Decision {
            allowed: false,
            reason: Reason::Deny(RuleId(0))
        }
    );
    let d = e.decide(&user("alice"), ip(ANY_HOST), Op::Read, Rt::Topic, "foobar");
    assert_eq!(
        d,
        Decision {
            allowed: true,
            reason: Reason::Allow(RuleId(1))
        }
    );
    assert!(!allowed(&e, "alice", Op::Read, Rt::Topic, "foo"));
    assert!(allowed(&e, "alice", Op::Read, Rt::Topic, "foobar"));
}

#[test]
fn item_29_implication_table() {
    // For every operation an ALLOW grants, which requested operations does it allow?
    for granted in Op::ALL {
        let e = engine(&format!("p, User:u, Topic, t, {granted}, *, allow\n"));
        for requested in Op::ALL {
            let expect = granted == Op::All
                || granted == requested
                || (requested == Op::Describe
                    && matches!(granted, Op::Read | Op::Write | Op::Delete | Op::Alter))
                || (requested == Op::DescribeConfigs && granted == Op::AlterConfigs);
            assert_eq!(
                allowed(&e, "u", requested, Rt::Topic, "t"),
                expect,
                "allow {granted}, request {requested}"
            );
        }
    }
    // CREATE does not imply DESCRIBE.
    let e = engine("p, User:u, Topic, t, Create, *, allow\n");
    assert!(!allowed(&e, "u", Op::Describe, Rt::Topic, "t"));
}

#[test]
fn item_29_deny_never_implies() {
    for denied in [Op::Read, Op::Write, Op::Delete, Op::Alter] {
        let e = engine(&format!(
            "p, User:u, Topic, t, All, *, allow\n\
             p, User:u, Topic, t, {denied}, *, deny\n"
        ));
        assert!(!allowed(&e, "u", denied, Rt::Topic, "t"));
        assert!(
            allowed(&e, "u", Op::Describe, Rt::Topic, "t"),
            "DENY {denied} must not deny DESCRIBE"
        );
    }
    let e = engine(
        "p, User:u, Topic, t, All, *, allow\n\
         p, User:u, Topic, t, AlterConfigs, *, deny\n",
    );
    assert!(allowed(&e, "u", Op::DescribeConfigs, Rt::Topic, "t"));
    // DENY All denies everything, including what an ALLOW would imply.
    let e = engine(
        "p, User:u, Topic, t, Read, *, allow\n\
         p, User:u, Topic, t, All, *, deny\n",
    );
    assert!(!allowed(&e, "u", Op::Describe, Rt::Topic, "t"));
}

#[test]
fn item_30_prefixed_rules() {
    let e = engine("p, User:bob, Topic, f*, All, *, allow\n");
    assert!(allowed(&e, "bob", Op::Write, Rt::Topic, "foobarr"));
    assert!(!allowed(&e, "bob", Op::Read, Rt::Topic, "goobar"));
    assert!(allowed(&e, "bob", Op::Read, Rt::Topic, "f"));
    assert!(!allowed(&e, "bob", Op::Read, Rt::Topic, ""));
}

#[test]
fn item_31_host_rules() {
    let e = engine(
        "p, User:u, Topic, t, Read, 192.168.1.1, deny\n\
         p, User:u, Topic, t, Read, *, allow\n",
    );
    let p = user("u");
    assert!(
        !e.decide(&p, ip("192.168.1.1"), Op::Read, Rt::Topic, "t")
            .allowed
    );
    assert!(
        e.decide(&p, ip("192.168.1.2"), Op::Read, Rt::Topic, "t")
            .allowed
    );
    // The same address over an IPv4-mapped IPv6 socket is the same client.
    assert!(
        !e.decide(&p, ip("::ffff:192.168.1.1"), Op::Read, Rt::Topic, "t")
            .allowed
    );
}

#[test]
fn item_32_deny_all_engine_denies_everyone_but_super_users() {
    let e = Engine::deny_all(&["User:admin".to_string(), "garbage".to_string()]);
    assert_eq!(e.version(), DENY_ALL_VERSION);
    for rt in Rt::ALL {
        for op in Op::ALL {
            assert!(!e.decide(&user("alice"), ip(ANY_HOST), op, rt, "x").allowed);
            assert!(!e.decide_any(&user("alice"), ip(ANY_HOST), op, rt).allowed);
            assert!(e.decide(&user("admin"), ip(ANY_HOST), op, rt, "x").allowed);
            assert!(e.decide_any(&user("admin"), ip(ANY_HOST), op, rt).allowed);
        }
    }
    assert!(
        !e.decide(
            &user("ANONYMOUS"),
            ip(ANY_HOST),
            Op::Describe,
            Rt::Topic,
            "t"
        )
        .allowed
    );
}

#[test]
fn item_32_policy_that_does_not_load_gives_deny_all() {
    let dir = std::env::temp_dir().join(format!("kgw-policy-item32-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let model = dir.join("model.conf");
    std::fs::write(&model, MODEL).expect("write model");
    let bad = dir.join("bad.policy");
    std::fs::write(
        &bad,
        "p, User:alice, Topic, *, All, *, allow\np, nonsense\n",
    )
    .expect("write policy");
    let (handle, err) = PolicyHandle::load_or_deny_all(&model, &[bad], &["User:admin".to_string()]);
    assert!(err.is_some());
    let snap = handle.current();
    assert!(
        !snap
            .decide(&user("alice"), ip(ANY_HOST), Op::Read, Rt::Topic, "t")
            .allowed
    );
    assert!(
        snap.decide(&user("admin"), ip(ANY_HOST), Op::Read, Rt::Topic, "t")
            .allowed
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn item_3_read_only_gives_no_idempotent_write() {
    let e = engine("p, User:u, Topic, t, Read, *, allow\n");
    let p = user("u");
    assert!(
        !e.decide(
            &p,
            ip(ANY_HOST),
            Op::IdempotentWrite,
            Rt::Cluster,
            CLUSTER_NAME
        )
        .allowed
    );
    assert!(!e.decide_any(&p, ip(ANY_HOST), Op::Write, Rt::Topic).allowed);
    // WRITE on any topic is enough (KIP-679).
    let e = engine("p, User:u, Topic, some-topic, Write, *, allow\n");
    assert!(e.decide_any(&p, ip(ANY_HOST), Op::Write, Rt::Topic).allowed);
}

#[test]
fn item_4_wildcard_deny_dominates_allow_any() {
    let e = engine(
        "p, User:u, Topic, T, Write, *, allow\n\
         p, User:u, Topic, t*, Write, *, allow\n\
         p, User:u, Topic, *, Write, *, deny\n",
    );
    let d = e.decide_any(&user("u"), ip(ANY_HOST), Op::Write, Rt::Topic);
    assert_eq!(
        d,
        Decision {
            allowed: false,
            reason: Reason::Deny(RuleId(2))
        }
    );
}

#[test]
fn allow_any_follows_kafka_domination_rules() {
    let p = user("u");
    let any = |text: &str| {
        engine(text)
            .decide_any(&p, ip(ANY_HOST), Op::Write, Rt::Topic)
            .allowed
    };
    // A literal allow denied by the same literal: nothing left.
    assert!(!any(
        "p, User:u, Topic, a, Write, *, allow\np, User:u, Topic, a, Write, *, deny\n"
    ));
    // A literal allow under a deny prefix: nothing left.
    assert!(!any(
        "p, User:u, Topic, abc, Write, *, allow\np, User:u, Topic, ab*, Write, *, deny\n"
    ));
    // A prefix allow under a shorter deny prefix: nothing left.
    assert!(!any(
        "p, User:u, Topic, abc*, Write, *, allow\np, User:u, Topic, a*, Write, *, deny\n"
    ));
    // A prefix allow with a longer deny prefix: names outside it remain.
    assert!(any(
        "p, User:u, Topic, a*, Write, *, allow\np, User:u, Topic, abc*, Write, *, deny\n"
    ));
    // A literal deny does not cover a prefix allow of the same text.
    assert!(any(
        "p, User:u, Topic, a*, Write, *, allow\np, User:u, Topic, a, Write, *, deny\n"
    ));
    // One undominated allow is enough.
    assert!(any(
        "p, User:u, Topic, a, Write, *, allow\np, User:u, Topic, b, Write, *, allow\np, User:u, Topic, a, Write, *, deny\n"
    ));
    // A wildcard allow wins over any non-wildcard deny.
    assert!(any(
        "p, User:u, Topic, *, Write, *, allow\np, User:u, Topic, a*, Write, *, deny\n"
    ));
    // Denies for another host or another principal do not count; All counts.
    assert!(any(
        "p, User:u, Topic, a, Write, *, allow\np, User:u, Topic, *, Write, 10.9.9.9, deny\n"
    ));
    assert!(any(
        "p, User:u, Topic, a, Write, *, allow\np, User:v, Topic, *, Write, *, deny\n"
    ));
    assert!(!any(
        "p, User:u, Topic, a, Write, *, allow\np, User:*, Topic, *, All, *, deny\n"
    ));
    // Other resource types do not count.
    assert!(!any("p, User:u, Group, a, Write, *, allow\n"));
    assert!(any("p, User:u, Topic, a, All, *, allow\n"));
}

#[test]
fn super_users_bypass_denies() {
    let e = Engine::new(set("p, User:*, Topic, *, All, *, deny\n", &["User:root"]));
    let d = e.decide(&user("root"), ip(ANY_HOST), Op::Write, Rt::Topic, "t");
    assert_eq!(
        d,
        Decision {
            allowed: true,
            reason: Reason::SuperUser
        }
    );
    assert!(
        !e.decide(&user("alice"), ip(ANY_HOST), Op::Write, Rt::Topic, "t")
            .allowed
    );
    assert!(
        e.decide_any(&user("root"), ip(ANY_HOST), Op::Write, Rt::Topic)
            .allowed
    );
}

#[test]
fn default_deny() {
    let e = engine("p, User:alice, Topic, orders, Read, *, allow\n");
    let d = e.decide(&user("bob"), ip(ANY_HOST), Op::Read, Rt::Topic, "orders");
    assert_eq!(
        d,
        Decision {
            allowed: false,
            reason: Reason::NoMatchingAllow
        }
    );
    assert!(!allowed(&e, "alice", Op::Read, Rt::Group, "orders"));
    assert!(!allowed(&e, "alice", Op::Write, Rt::Topic, "orders"));
    assert!(!allowed(&e, "alice", Op::Read, Rt::Topic, "orders2"));
    assert!(!allowed(&e, "alice", Op::Read, Rt::Topic, "Orders"));
}

#[test]
fn wildcard_principal_matches_everyone_including_anonymous() {
    let e = engine("p, User:*, Topic, public, Read, *, allow\n");
    assert!(allowed(&e, "ANONYMOUS", Op::Read, Rt::Topic, "public"));
    assert!(allowed(&e, "anyone", Op::Describe, Rt::Topic, "public"));
    assert!(!allowed(&e, "anyone", Op::Read, Rt::Topic, "private"));
}

#[test]
fn groups() {
    let e = engine(
        "g, User:bob, Group:payments\n\
         g, User:carol, Group:payments\n\
         p, Group:payments, Topic, pay-*, Write, *, allow\n\
         p, User:carol, Topic, pay-secret, All, *, deny\n",
    );
    assert!(allowed(&e, "bob", Op::Write, Rt::Topic, "pay-in"));
    assert!(allowed(&e, "carol", Op::Write, Rt::Topic, "pay-in"));
    assert!(!allowed(&e, "carol", Op::Write, Rt::Topic, "pay-secret"));
    assert!(allowed(&e, "bob", Op::Write, Rt::Topic, "pay-secret"));
    assert!(!allowed(&e, "dave", Op::Write, Rt::Topic, "pay-in"));
    // The group's name is not a user.
    assert!(!allowed(&e, "payments", Op::Write, Rt::Topic, "pay-in"));
    // A group deny applies to members.
    let e = engine(
        "g, User:bob, Group:interns\n\
         p, User:*, Topic, *, Read, *, allow\n\
         p, Group:interns, Topic, hr-*, Read, *, deny\n",
    );
    assert!(!allowed(&e, "bob", Op::Read, Rt::Topic, "hr-salaries"));
    assert!(allowed(&e, "alice", Op::Read, Rt::Topic, "hr-salaries"));
}

#[test]
fn cidr_hosts() {
    let e = engine(
        "p, User:u, Topic, t, Read, 10.0.0.0/8, allow\n\
         p, User:u, Topic, t, Read, 10.66.0.0/16, deny\n\
         p, User:u, Topic, v6, Read, 2001:db8::/32, allow\n",
    );
    let p = user("u");
    let d = |h: &str, name: &str| e.decide(&p, ip(h), Op::Read, Rt::Topic, name).allowed;
    assert!(d("10.1.2.3", "t"));
    assert!(d("::ffff:10.1.2.3", "t"));
    assert!(!d("10.66.1.1", "t"));
    assert!(!d("11.0.0.1", "t"));
    assert!(d("2001:db8::1", "v6"));
    assert!(!d("2001:db9::1", "v6"));
    assert!(!d("10.1.2.3", "v6"));
}

#[test]
fn hostile_names_never_panic() {
    let e = engine(
        "p, User:u, Topic, ü*, Read, *, allow\n\
         p, User:u, Topic, 日本語, Write, *, allow\n\
         p, User:u, Group, a*, Read, *, allow\n\
         p, User:u, Group, ab*, Read, *, deny\n",
    );
    let p = user("u");
    let h = ip(ANY_HOST);
    assert!(e.decide(&p, h, Op::Read, Rt::Topic, "über").allowed);
    assert!(e.decide(&p, h, Op::Write, Rt::Topic, "日本語").allowed);
    assert!(!e.decide(&p, h, Op::Write, Rt::Topic, "日本").allowed);
    // A prefix length falling inside a multi-byte character must not slice it.
    assert!(!e.decide(&p, h, Op::Read, Rt::Topic, "u\u{308}").allowed);
    assert!(!e.decide(&p, h, Op::Read, Rt::Group, "\u{e9}").allowed);
    assert!(e.decide(&p, h, Op::Read, Rt::Group, "a\u{e9}").allowed);
    let long: String = "ü".repeat(5 * 1024); // 10 KiB
    assert!(e.decide(&p, h, Op::Read, Rt::Topic, &long).allowed);
    let long_a = format!("a{}", "\u{1F600}".repeat(2600));
    assert!(e.decide(&p, h, Op::Read, Rt::Group, &long_a).allowed);
    let long_ab = format!("ab{}", "x".repeat(10 * 1024));
    assert!(!e.decide(&p, h, Op::Read, Rt::Group, &long_ab).allowed);
    for name in ["", "\0", "\u{feff}", "*", "a*", &long, &long_ab] {
        let _ = e.decide(&p, h, Op::Describe, Rt::Topic, name);
        let _ = e.explain(&p, h, Op::Describe, Rt::Topic, name);
        let _ = e.who_can(Op::Describe, Rt::Topic, name);
        assert_eq!(
            e.policy()
                .and_then(|s| s.casbin_enforce(&p, h, Op::Read, Rt::Group, name))
                .map(|r| r.is_ok()),
            Some(true)
        );
    }
    // Hostile principals too.
    let odd = Principal::user(format!("{}\u{0}ü", "x".repeat(10_000)));
    assert!(!e.decide(&odd, h, Op::Read, Rt::Topic, "über").allowed);
    // A star in a requested name is just a character.
    assert!(!e.decide(&p, h, Op::Read, Rt::Group, "*").allowed);
}

#[test]
fn lowest_rule_id_is_reported() {
    let e = engine(
        "p, User:u, Topic, *, Read, *, allow\n\
         p, User:u, Topic, t*, Read, *, allow\n\
         p, User:*, Topic, t, Read, *, deny\n\
         p, User:u, Topic, t, All, *, deny\n",
    );
    let p = user("u");
    assert_eq!(
        e.decide(&p, ip(ANY_HOST), Op::Read, Rt::Topic, "t").reason,
        Reason::Deny(RuleId(2))
    );
    assert_eq!(
        e.decide(&p, ip(ANY_HOST), Op::Read, Rt::Topic, "tt").reason,
        Reason::Allow(RuleId(0))
    );
    let desc = e.describe(Reason::Deny(RuleId(2)));
    assert!(desc.contains("test.policy:3"), "{desc}");
}

#[test]
fn explain_lists_rules_and_how_they_matched() {
    let e = engine(
        "p, User:u, Topic, orders, Read, *, allow\n\
         p, User:u, Topic, orders, Read, 10.9.9.9, deny\n\
         p, User:u, Topic, orders, Read, 10.1.2.3, deny\n\
         p, User:*, Topic, orders, Write, *, allow\n\
         p, User:u, Topic, other, Read, *, allow\n\
         p, User:v, Topic, orders, Read, *, deny\n\
         p, User:u, Group, orders, Read, *, allow\n",
    );
    let x = e.explain(&user("u"), ip(ANY_HOST), Op::Describe, Rt::Topic, "orders");
    assert!(x.decision.allowed);
    assert_eq!(x.decision.reason, Reason::Allow(RuleId(0)));
    let outcomes: Vec<(u32, Outcome)> = x
        .rules
        .iter()
        .map(|r| (r.rule.id.0, r.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (0, Outcome::AllowsByImplication(Op::Read)),
            (1, Outcome::DenyDoesNotImply(Op::Read)),
            (2, Outcome::DenyDoesNotImply(Op::Read)),
            (3, Outcome::AllowsByImplication(Op::Write)),
            (4, Outcome::OtherName),
        ]
    );
    assert_eq!(x.rules[3].via, Via::AnyUser);
    assert_eq!(x.casbin, Some(Ok(true)));
    let x = e.explain(&user("u"), ip(ANY_HOST), Op::Read, Rt::Topic, "orders");
    assert!(!x.decision.allowed);
    assert_eq!(
        x.rules[1].outcome,
        Outcome::OtherHost("10.9.9.9".parse().map(HostSpec::Ip).expect("ip"))
    );
    assert_eq!(x.rules[2].outcome, Outcome::Denies);
    let text = x.to_string();
    assert!(text.contains("DENIED"), "{text}");
    assert!(text.contains("test.policy:3"), "{text}");
    assert!(text.contains("agrees"), "{text}");
}

#[test]
fn who_can_lists_allowed_denied_and_super_users() {
    let e = Engine::new(set(
        "g, User:bob, Group:payments\n\
         p, Group:payments, Topic, pay-*, Write, *, allow\n\
         p, User:alice, Topic, pay-in, All, 10.0.0.0/8, allow\n\
         p, User:alice, Topic, pay-*, Write, 10.66.0.0/16, deny\n\
         p, User:eve, Topic, *, Write, *, allow\n\
         p, User:eve, Topic, pay-in, All, *, deny\n\
         p, User:carol, Topic, pay-in, Read, *, allow\n",
        &["User:root"],
    ));
    let w = e.who_can(Op::Write, Rt::Topic, "pay-in");
    let summary: Vec<(String, WhoVerdict, String)> = w
        .iter()
        .map(|x| (x.principal.clone(), x.verdict, x.host.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("User:root".into(), WhoVerdict::SuperUser, "*".into()),
            ("Group:payments".into(), WhoVerdict::Allowed, "*".into()),
            (
                "User:alice".into(),
                WhoVerdict::Allowed,
                "10.0.0.0/8".into()
            ),
            (
                "User:alice".into(),
                WhoVerdict::Denied,
                "10.66.0.0/16".into()
            ),
            ("User:eve".into(), WhoVerdict::Denied, "*".into()),
        ]
    );
    assert_eq!(w[1].members, vec!["User:bob".to_string()]);
    assert_eq!(w[2].except.len(), 1);
}

#[test]
fn session_authz_records_decisions_and_sees_one_snapshot() {
    let handle = PolicyHandle::new(engine("p, User:u, Topic, t, Read, *, allow\n"));
    let s = handle.session(user("u"), ip(ANY_HOST));
    let authz: &dyn Authorize = &s;
    assert!(authz.allowed(Op::Read, Rt::Topic, "t"));
    assert!(!authz.allowed(Op::Write, Rt::Topic, "t"));
    assert!(!authz.allowed_any(Op::Write, Rt::Topic));
    let d = s.take_decisions();
    let (recs, dropped) = (d.records, d.dropped_allowed);
    assert_eq!(dropped, 0);
    assert_eq!(recs.len(), 3);
    assert!(recs[0].allowed);
    assert_eq!(
        recs[0].rule.as_ref().map(|r| r.source.to_string()),
        Some("test.policy:1".to_string())
    );
    assert_eq!(recs[1].reason, Reason::NoMatchingAllow);
    assert_eq!(recs[2].name, None);
    assert!(s.take_decisions().records.is_empty());

    for _ in 0..MAX_RECORDED_DECISIONS + 10 {
        s.allowed(Op::Read, Rt::Topic, "t");
    }
    // Past the limit, allowed decisions are counted and denials summarized, never lost.
    for _ in 0..7 {
        s.allowed(Op::Write, Rt::Topic, "t");
    }
    s.allowed(Op::Read, Rt::Group, "g");
    let d = s.take_decisions();
    assert_eq!(
        (d.records.len(), d.dropped_allowed),
        (MAX_RECORDED_DECISIONS, 10)
    );
    assert_eq!(
        d.denied_overflow,
        vec![(Op::Read, Rt::Group, 1), (Op::Write, Rt::Topic, 7)]
    );

    // A request's session keeps its snapshot through a reload; the next request's session (the
    // session makes one per request) sees the new policy.
    handle.replace(engine("p, User:u, Topic, t, Write, *, allow\n"));
    assert!(
        s.allowed(Op::Read, Rt::Topic, "t"),
        "one request sees one policy"
    );
    let next = handle.session(user("u"), ip(ANY_HOST));
    assert!(!next.allowed(Op::Read, Rt::Topic, "t"));
    assert!(next.allowed(Op::Write, Rt::Topic, "t"));
    let (old, new) = (s.take_decisions().records, next.take_decisions().records);
    assert_ne!(old[0].policy_version, new[0].policy_version);
}

#[test]
fn shared_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Engine>();
    check::<Snapshot>();
    check::<PolicyHandle>();
    check::<SessionAuthz>();
    check::<Arc<PolicySet>>();
}

#[test]
fn shipped_example_policy_loads_and_means_what_it_says() {
    let text = include_str!("../../policies/acl.policy");
    let set = PolicySet::from_texts(Some(("model.conf", MODEL)), &[("acl.policy", text)], &[])
        .expect("acl.policy loads");
    assert_eq!(set.check(), vec![], "the example has no warnings");
    let e = Engine::new(set);
    let h = ip(ANY_HOST);
    let ok = |who: &str, op: Op, rt: Rt, name: &str| e.decide(&user(who), h, op, rt, name).allowed;
    assert!(ok("orders-svc", Op::Write, Rt::Topic, "orders-eu"));
    assert!(ok(
        "orders-svc",
        Op::IdempotentWrite,
        Rt::Cluster,
        CLUSTER_NAME
    ));
    assert!(!ok("orders-svc", Op::Read, Rt::Topic, "orders"));
    assert!(ok("analytics", Op::Read, Rt::Topic, "orders"));
    assert!(ok("analytics", Op::Read, Rt::Group, "analytics-daily"));
    assert!(!ok("analytics", Op::Read, Rt::Topic, "orders-eu"));
    assert!(ok("ops", Op::Alter, Rt::Cluster, CLUSTER_NAME));
    assert!(ok("ops", Op::Delete, Rt::Topic, "anything"));
    assert!(ok("carol", Op::Read, Rt::Topic, "reports-q1"));
    assert!(!ok("carol", Op::Write, Rt::Topic, "reports-q1"));
    assert!(ok("carol", Op::Read, Rt::Group, "carol-1"));
    assert!(!ok("carol", Op::Read, Rt::Group, "analytics-1"));
    assert!(ok("alice", Op::Create, Rt::Topic, "demo-1"));
    assert!(ok("alice", Op::Read, Rt::Group, "g"));
    assert!(ok("alice", Op::IdempotentWrite, Rt::Cluster, CLUSTER_NAME));
    assert!(ok("bob", Op::Read, Rt::Topic, "demo"));
    assert!(!ok("bob", Op::Write, Rt::Topic, "demo"));
    assert!(!ok("ANONYMOUS", Op::Describe, Rt::Topic, "demo"));
}

fn shipped() -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    (root.join("model.conf"), vec![root.join("acl.policy")])
}

#[test]
fn cli_check_explain_and_who_can_on_the_shipped_policy() {
    let (model, files) = shipped();
    let supers = vec!["User:admin".to_string()];
    let (out, ok) = cmd_check(&model, &files, &supers);
    println!("{out}");
    assert!(ok, "{out}");
    assert!(out.contains("OK: 18 rules"), "{out}");
    assert!(out.contains("version: "), "{out}");

    let out = cmd_explain(
        &model,
        &files,
        &supers,
        "User:bob",
        "describe",
        "Topic:demo-1",
        Some("10.0.0.7"),
    )
    .expect("explains");
    println!("{out}");
    assert!(out.contains("ALLOWED"), "{out}");
    assert!(out.contains("acl.policy:"), "{out}");
    let out = cmd_explain(
        &model,
        &files,
        &supers,
        "User:bob",
        "WRITE",
        "topic:demo-1",
        None,
    )
    .expect("explains");
    println!("{out}");
    assert!(out.contains("DENIED"), "{out}");
    assert!(out.contains("for operation Read"), "{out}");
    let out = cmd_explain(
        &model,
        &files,
        &supers,
        "User:admin",
        "Alter",
        "Cluster",
        None,
    )
    .expect("explains");
    assert!(out.contains("super user"), "{out}");
    assert!(cmd_explain(&model, &files, &supers, "bob", "Read", "Topic:t", None).is_err());
    assert!(cmd_explain(&model, &files, &supers, "User:bob", "Reed", "Topic:t", None).is_err());
    assert!(cmd_explain(&model, &files, &supers, "User:bob", "Read", "Topc:t", None).is_err());
    assert!(cmd_explain(&model, &files, &supers, "User:bob", "Read", "Topic", None).is_err());
    assert!(cmd_explain(
        &model,
        &files,
        &supers,
        "User:bob",
        "Read",
        "Topic:t",
        Some("nohost")
    )
    .is_err());

    let out = cmd_who_can(&model, &files, &supers, "Read", "Topic:orders").expect("who can");
    println!("{out}");
    for who in ["User:admin", "User:analytics", "User:ops"] {
        assert!(out.contains(who), "{who} in {out}");
    }
    assert!(!out.contains("User:orders-svc"), "{out}");
    let out = cmd_who_can(&model, &files, &supers, "IdempotentWrite", "Cluster").expect("who can");
    assert!(
        out.contains("User:orders-svc") && out.contains("User:alice"),
        "{out}"
    );
}

#[test]
fn cli_check_reports_errors_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("kgw-policy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let model = dir.join("model.conf");
    std::fs::write(&model, MODEL).expect("write");
    let bad = dir.join("bad.policy");
    std::fs::write(
        &bad,
        "# ok\np, User:a, Topic, t, Raed, *, allow\np, User:a, Cluster, k*, All, *, allow\n",
    )
    .expect("write");
    let (out, ok) = cmd_check(&model, std::slice::from_ref(&bad), &[]);
    assert!(!ok);
    assert!(
        out.contains("bad.policy:2: unknown operation `Raed`"),
        "{out}"
    );
    assert!(out.contains("bad.policy:3: prefix pattern"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 11 item 10: the audit topic is reserved. `Topic:*` and prefix grants and super users do
/// not reach it; a rule naming it literally does, and a literal deny still wins; other topics are
/// decided as before.
#[test]
fn a_reserved_topic_is_reached_only_by_rules_that_name_it() {
    let e = Engine::new(set(
        "p, User:bob, Topic, *, All, *, allow\n\
         p, User:carol, Topic, _kafka*, All, *, allow\n\
         p, User:alice, Topic, _kafka_gateway_audit, Read, *, allow\n\
         p, User:dave, Topic, _kafka_gateway_audit, Read, *, allow\n\
         p, User:dave, Topic, _kafka_gateway_audit, All, *, deny\n",
        &["User:root"],
    ))
    .with_reserved(&["_kafka_gateway_audit".to_string()]);
    let audit = "_kafka_gateway_audit";
    let d = |who: &str, op: Op, name: &str| e.decide(&user(who), ip(ANY_HOST), op, Rt::Topic, name);
    assert_eq!(d("bob", Op::Read, audit).reason, Reason::Reserved);
    assert!(!d("bob", Op::Write, audit).allowed);
    assert!(
        !d("carol", Op::Read, audit).allowed,
        "a prefix rule does not reach it"
    );
    assert_eq!(
        d("root", Op::Read, audit).reason,
        Reason::Reserved,
        "nor a super user"
    );
    assert!(d("alice", Op::Read, audit).allowed, "a literal rule does");
    assert!(
        !d("alice", Op::Write, audit).allowed,
        "only for what it grants"
    );
    assert!(!d("dave", Op::Read, audit).allowed, "a literal deny wins");
    assert!(
        d("bob", Op::Write, "orders").allowed,
        "other topics as before"
    );
    assert!(d("root", Op::Delete, "orders").allowed);
    assert!(
        !e.is_reserved(Rt::Group, audit),
        "only the topic is reserved"
    );
    // `policy explain` answers as the gateway does, without a casbin "disagreement".
    let out = e
        .explain(&user("bob"), ip(ANY_HOST), Op::Read, Rt::Topic, audit)
        .to_string();
    assert!(out.contains("reserved topic"), "{out}");
    assert!(!out.contains("DISAGREES"), "{out}");
    // `policy who-can` too: only alice's and dave's literal rules, no super user.
    let who = e.who_can(Op::Read, Rt::Topic, audit);
    let mut names: Vec<&str> = who.iter().map(|w| w.principal.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names, ["User:alice", "User:dave"], "{who:?}");
}

/// Issue 11 item 5: one request naming many topics adds at most `REQUEST_CACHE_INSERTS` entries
/// to the shared decision cache (20,000 added about 4 MiB before the request was forwarded); the
/// rest are decided the same, uncached, and the next request may add its own.
#[test]
fn one_request_adds_a_bounded_number_of_decision_cache_entries() {
    let handle = PolicyHandle::new(engine("p, User:*, Topic, t-*, All, *, allow\n"));
    let first = handle.session(user("alice"), ip(ANY_HOST));
    for i in 0..5000 {
        assert!(
            first
                .decide(Op::Describe, Rt::Topic, &format!("t-{i}"))
                .allowed
        );
    }
    assert!(!first.decide(Op::Describe, Rt::Topic, "x-1").allowed);
    let entries = handle.current().cache().stats().entries;
    assert_eq!(
        entries, REQUEST_CACHE_INSERTS as usize,
        "bounded per request"
    );
    let next = handle.session(user("alice"), ip(ANY_HOST));
    assert!(next.decide(Op::Describe, Rt::Topic, "t-4999").allowed);
    assert_eq!(
        handle.current().cache().stats().entries,
        REQUEST_CACHE_INSERTS as usize + 1,
        "the next request caches its own"
    );
}

/// A RecordBatch v2 header (61 bytes) with no records: enough for the transactional-bit walk.
fn batch_header() -> bytes::Bytes {
    let mut b = vec![0u8; 61];
    b[8..12].copy_from_slice(&49i32.to_be_bytes()); // batchLength
    b[16] = 2; // magic
    bytes::Bytes::from(b)
}

/// What reading and authorizing one fully allowed Produce and one fully allowed Fetch (by name
/// and by id) costs in heap allocations, from reading the frame and the session's authorizer to
/// the plan and the decisions handed to the audit
/// (issue 13 measures forwarding against a TCP relay; this pins where the per-request allocations
/// are so that they can only go down).
#[test]
fn allocations_to_authorize_an_allowed_produce_and_fetch() {
    use crate::policy::mapping::{self, Plan};
    use crate::protocol::codec;
    use crate::protocol::frame::LEN_PREFIX;
    use kafka_protocol::messages::{
        fetch_request, produce_request, ApiKey, FetchRequest, ProduceRequest, RequestHeader,
        RequestKind, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    let handle = PolicyHandle::new(engine(
        "p, User:u, Topic, t, Read, *, allow\np, User:u, Topic, t, Write, *, allow\n",
    ));
    let ids = crate::upstream::topic_ids::TopicIdMap::default();
    let topic_id = uuid::Uuid::from_u128(7);
    ids.learn([("t", topic_id)]);
    let header = |api: ApiKey, v: i16| {
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(v)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str("c")))
    };
    let topic = TopicName(StrBytes::from_static_str("t"));
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic.clone())
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch_header())),
            ])]);
    // v13 names the topic by id.
    let mut produce_by_id = produce.clone();
    produce_by_id.topic_data[0].name = TopicName::default();
    produce_by_id.topic_data[0].topic_id = topic_id;
    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic)
            .with_partitions(vec![fetch_request::FetchPartition::default()])]);
    // v13+ names the topic by id: authorized by the name the gateway learned for it.
    let fetch_by_id = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic_id(topic_id)
            .with_partitions(vec![fetch_request::FetchPartition::default()])]);
    let frames = [
        (
            ApiKey::Produce,
            9,
            codec::encode_request_kind_with_header(
                ApiKey::Produce,
                9,
                &header(ApiKey::Produce, 9),
                &RequestKind::Produce(produce),
            )
            .expect("encode"),
        ),
        (
            ApiKey::Produce,
            13,
            codec::encode_request_kind_with_header(
                ApiKey::Produce,
                13,
                &header(ApiKey::Produce, 13),
                &RequestKind::Produce(produce_by_id),
            )
            .expect("encode"),
        ),
        (
            ApiKey::Fetch,
            12,
            codec::encode_request_kind_with_header(
                ApiKey::Fetch,
                12,
                &header(ApiKey::Fetch, 12),
                &RequestKind::Fetch(fetch),
            )
            .expect("encode"),
        ),
        (
            ApiKey::Fetch,
            13,
            codec::encode_request_kind_with_header(
                ApiKey::Fetch,
                13,
                &header(ApiKey::Fetch, 13),
                &RequestKind::Fetch(fetch_by_id),
            )
            .expect("encode"),
        ),
    ];
    // As the session holds it: shared, so each request's authorizer takes it without copying.
    let principal = Arc::new(user("u"));
    for (api, version, frame) in frames {
        // One warm-up: the shared decision cache is filled once per policy, not per request.
        for round in 0..2 {
            let mut stages = Vec::new();
            let mut stage = |name: &'static str, f: &mut dyn FnMut()| {
                let c = allocation_counter::measure(&mut *f);
                stages.push((name, c.count_total, c.bytes_total));
            };
            let mut request = None;
            stage("read", &mut || {
                request = Some(
                    codec::read_request(api, version, frame.slice(LEN_PREFIX..), u64::MAX)
                        .expect("read"),
                )
            });
            let mut authz = None;
            stage("session authorizer", &mut || {
                // At the default audit level a data-plane API's allowed decisions are not kept.
                authz = Some(
                    handle
                        .session(principal.clone(), ip(ANY_HOST))
                        .keeping_allowed(false),
                )
            });
            let (request, authz) = (request.expect("read"), authz.expect("authz"));
            stage("plan", &mut || {
                let plan = mapping::plan_request(api, version, &request, &authz, &ids)
                    .expect("plan")
                    .expect("mapped");
                assert!(matches!(plan, Plan::Forward), "{plan:?}");
            });
            stage("decisions", &mut || drop(authz.take_decisions()));
            if round == 1 {
                println!(
                    "RESULT allocations to authorize an allowed {api:?} v{version}: {stages:?}"
                );
                // Reading (in place) and authorizing allocate nothing.
                let counts: Vec<u64> = stages.iter().map(|s| s.1).collect();
                assert_eq!(counts, vec![0, 0, 0, 0], "{stages:?}");
            }
        }
    }
}

#[test]
fn cli_quotas_name_the_line_that_applies_and_where_usage_is_counted() {
    let dir = std::env::temp_dir().join(format!("kgw-policy-quotas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let model = dir.join("model.conf");
    std::fs::write(&model, MODEL).expect("write");
    let file = dir.join("q.policy");
    std::fs::write(
        &file,
        "p, User:*, Topic, *, Read, *, allow\n\
         q, User:alice, -, producer_byte_rate, 1048576\n\
         q, User:*, *, consumer_byte_rate, 10485760\n\
         q, -, billing, request_percentage, 50\n\
         q, *, -, connection_creation_rate, 20\n\
         q, User:alice, -, login_rate, 2\n\
         q, 10.0.0.7, -, login_rate, 10\n",
    )
    .expect("write");
    let files = [file];
    let alice = cmd_quotas(
        &model,
        &files,
        &[],
        ("User:alice", Some("billing"), Some("10.0.0.7")),
    )
    .expect("quotas");
    for want in [
        "producer_byte_rate       1048576 bytes/s, counted for all of User:alice's clients together",
        "q.policy:2: q, User:alice, -, producer_byte_rate, 1048576",
        "consumer_byte_rate       10485760 bytes/s, counted for User:alice with client id `billing`",
        "request_percentage       50 % of a thread, counted for every client with client id `billing` together",
        "login_rate               2 logins/s, counted for User:alice's logins",
        "login_rate               10 logins/s, counted for logins from 10.0.0.7",
        "connection_creation_rate 20 connections/s, counted for connections from 10.0.0.7",
    ] {
        assert!(alice.contains(want), "{want} in\n{alice}");
    }
    let bob = cmd_quotas(&model, &files, &[], ("User:bob", None, None)).expect("quotas");
    assert!(bob.contains("producer_byte_rate       -\n"), "{bob}");
    assert!(bob.contains("give --host"), "{bob}");
    assert!(cmd_quotas(&model, &files, &[], ("bob", None, None)).is_err());
    assert!(cmd_quotas(&model, &files, &[], ("User:bob", None, Some("x"))).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
