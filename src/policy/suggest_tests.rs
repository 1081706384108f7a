use super::*;
use crate::audit::event::{AuthzDecision, ConnInfo, Decision, RuleRef};
use crate::policy::files::PolicySet;

/// An `authz_decision` record as the gateway writes it.
fn rec(
    ts: &str,
    principal: &str,
    api: i16,
    rtype: &str,
    name: &str,
    op: &str,
    allow: bool,
) -> Record {
    Record {
        schema: 1,
        seq: 0,
        ts: ts.into(),
        prev: String::new(),
        event: Event::AuthzDecision(Box::new(AuthzDecision {
            conn: ConnInfo {
                id: 1,
                client: "10.0.0.5:50000".into(),
                listener: "plain".into(),
                virtual_cluster: None,
            },
            principal: principal.into(),
            api_key: api,
            api_name: String::new(),
            api_version: 0,
            correlation_id: 0,
            client_id: None,
            resource_type: rtype.into(),
            resource_name: name.into(),
            operation: op.into(),
            decision: if allow {
                Decision::Allow
            } else {
                Decision::Deny
            },
            rule: allow.then(|| RuleRef {
                file: "acl.policy".into(),
                line: 1,
                text: "p, User:*, Topic, *, All, *, allow".into(),
            }),
            policy_hash: String::new(),
            more: None,
            repeated: None,
        })),
        hash: String::new(),
    }
}

const T: &str = "2026-12-07T08:00:00.000000Z";

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("p, ")).collect()
}

#[test]
fn prefixes_only_where_every_covered_name_was_used() {
    let records = vec![
        rec(T, "User:alice", 0, "Topic", "orders.eu", "Write", true),
        rec(T, "User:alice", 0, "Topic", "orders.us", "Write", true),
        rec(T, "User:alice", 1, "Topic", "billing.a", "Read", true),
        rec(T, "User:alice", 1, "Topic", "billing.b", "Read", true),
        // bob's billing.c puts a name under billing. that alice never read.
        rec(T, "User:bob", 1, "Topic", "billing.c", "Read", true),
        // A separator alone is no prefix.
        rec(
            T,
            "User:bob",
            3,
            "Topic",
            "__consumer_offsets",
            "Describe",
            true,
        ),
        rec(
            T,
            "User:bob",
            3,
            "Topic",
            "__transaction_state",
            "Describe",
            true,
        ),
    ];
    let s = suggest(&records, None);
    let text = render(&s, "test");
    assert_eq!(
        lines(&text),
        [
            "p, User:alice, Topic, billing.a, Read, *, allow",
            "p, User:alice, Topic, billing.b, Read, *, allow",
            "p, User:alice, Topic, orders.*, Write, *, allow",
            "p, User:bob, Topic, __consumer_offsets, Describe, *, allow",
            "p, User:bob, Topic, __transaction_state, Describe, *, allow",
            "p, User:bob, Topic, billing.c, Read, *, allow",
        ],
        "{text}"
    );
    assert!(text.contains("names used: orders.eu, orders.us"), "{text}");
    assert!(text.contains("from 10.0.0.5"), "{text}");
}

#[test]
fn implied_operations_are_not_written_twice_and_denials_grant_nothing() {
    let records = vec![
        rec(T, "User:alice", 1, "Topic", "t", "Read", true),
        rec(T, "User:alice", 3, "Topic", "t", "Describe", true),
        rec(T, "User:alice", 3, "Topic", "u", "Describe", true),
        rec(T, "User:alice", 0, "Topic", "secret", "Write", false),
        rec(T, "User:alice", 32, "Topic", "t", "DescribeConfigs", true),
        rec(T, "User:alice", 44, "Topic", "t", "AlterConfigs", true),
    ];
    let s = suggest(&records, None);
    assert_eq!(
        lines(&render(&s, "test")),
        [
            "p, User:alice, Topic, t, AlterConfigs, *, allow",
            "p, User:alice, Topic, t, Read, *, allow",
            "p, User:alice, Topic, u, Describe, *, allow",
        ]
    );
    assert_eq!(s.allowed_records, 5);
}

#[test]
fn since_repeats_and_level_warnings() {
    let mut repeated = rec(
        "2026-12-07T09:00:00.000000Z",
        "User:a",
        1,
        "Topic",
        "x",
        "Read",
        true,
    );
    if let Event::AuthzDecision(d) = &mut repeated.event {
        d.repeated = Some(41);
    }
    let records = vec![rec(T, "User:a", 1, "Topic", "old", "Read", true), repeated];
    let s = suggest(&records, Some("2026-12-07T08:30:00Z"));
    let text = render(&s, "test");
    assert_eq!(lines(&text), ["p, User:a, Topic, x, Read, *, allow"]);
    assert!(text.contains("# 41 requests from 10.0.0.5"), "{text}");
    // Only admin decisions: the trail was not at level `all`.
    let admin_only = vec![rec(T, "User:a", 19, "Topic", "x", "Create", true)];
    assert!(render(&suggest(&admin_only, None), "t").contains("WARNING"));
    assert!(!text.contains("WARNING"), "{text}");
}

#[test]
fn the_suggestion_allows_what_was_used_and_is_narrower_than_the_enforced_policy() {
    let records = vec![
        rec(T, "User:alice", 0, "Topic", "orders.eu", "Write", true),
        rec(T, "User:alice", 0, "Topic", "orders.us", "Write", true),
        rec(T, "User:alice", 3, "Topic", "audit", "Describe", false),
        rec(T, "User:bob", 1, "Topic", "audit", "Read", true),
    ];
    let s = suggest(&records, None);
    let text = render(&s, "test");
    let suggested = PolicySet::from_texts(None, &[("suggested.policy", &text)], &[])
        .expect("the suggestion loads");
    let enforced = PolicySet::from_texts(
        None,
        &[(
            "acl.policy",
            "p, User:alice, Topic, *, All, *, allow\np, User:bob, Topic, *, Read, *, allow\n",
        )],
        &[],
    )
    .expect("enforced");
    let host: IpAddr = [10, 0, 0, 5].into();
    let c = compare(&s, &Engine::new(enforced), &Engine::new(suggested), host);
    assert!(c.used_but_denied.is_empty(), "{c:?}");
    // Names in the trail: orders.eu, orders.us, audit; alice used Write, bob Read.
    assert_eq!((c.enforced_allows, c.suggested_allows), (6, 3), "{c:?}");
    // The records name line 1 as deciding (see `rec`): bob's rule on line 2 decided nothing.
    assert_eq!(
        c.unused_enforced_rules,
        ["acl.policy:2 p, User:bob, Topic, *, Read, *, allow"]
    );
    let report = render_comparison(&c);
    assert!(
        report.contains("allows 6 accesses, the suggestion 3 (50%)"),
        "{report}"
    );
}

#[test]
fn thousands_are_grouped() {
    assert_eq!(crate::audit::shadow_diff::grouped(0), "0");
    assert_eq!(crate::audit::shadow_diff::grouped(1204), "1,204");
    assert_eq!(crate::audit::shadow_diff::grouped(1_000_000), "1,000,000");
}
