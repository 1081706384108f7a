//! Safeguard lines: parsing (every problem at once, with file:line), and judging creations,
//! partition increases and config changes per principal.

use super::*;
use crate::auth::Principal;
use crate::policy::files::tests::{load, problems};
use crate::policy::files::PolicySet;

const GUARDS: &str = "\
p, User:*, Topic, *, All, *, allow
g, User:erin, Group:etl
s, User:*, Topic, *, partitions, 1..64
s, User:*, Topic, *, replication_factor, >=3
s, Group:etl, Topic, *, name, ^etl\\.[a-z0-9.-]+$
s, User:*, Topic, *, config.retention.ms, 3600000..604800000
s, User:*, Topic, *, config.cleanup.policy, delete|compact
s, User:*, Topic, *, forbid_config, unclean.leader.election.enable
s, User:bob, Broker, *, allow_config, log.cleaner.threads|log.retention.ms
s, User:*, Topic, small-*, partitions, <=4
";

fn create<'a>(
    name: &'a str,
    partitions: i64,
    rf: i64,
    configs: &[(&'a str, &'a str)],
) -> Change<'a> {
    Change::CreateTopic {
        name,
        partitions: (partitions >= 0).then_some(partitions),
        replication_factor: (rf >= 0).then_some(rf),
        configs: configs
            .iter()
            .map(|(n, v)| ConfigChange::set(n, Some(v)))
            .collect(),
    }
}

fn refusal(set: &PolicySet, who: &str, change: &Change<'_>) -> Option<(u32, String)> {
    set.safeguard_violation(&Principal::user(who), change)
        .map(|v| (v.safeguard.source.line, v.message))
}

#[test]
fn parses_every_kind() {
    let set = load(GUARDS).expect("loads");
    let s = set.safeguards();
    assert_eq!(s.len(), 8);
    assert_eq!(s[0].source.to_string(), "a.policy:3");
    assert!(matches!(
        s[0].constraint,
        Constraint::Partitions(Range {
            min: Some(1),
            max: Some(64)
        })
    ));
    assert!(matches!(
        s[1].constraint,
        Constraint::ReplicationFactor(Range {
            min: Some(3),
            max: None
        })
    ));
    assert_eq!(s[2].subject, Subject::Group("etl".into()));
    assert!(
        matches!(&s[3].constraint, Constraint::Config { name, values: Values::Range(_) } if name == "retention.ms")
    );
    assert!(
        matches!(&s[4].constraint, Constraint::Config { values: Values::OneOf(v), .. } if v == &["delete", "compact"])
    );
    assert_eq!(s[6].target, Target::Broker);
    assert_eq!(s[7].pattern, Pattern::Prefix("small-".into()));
    // Safeguards are not rules: casbin and the engine never see them.
    assert_eq!(set.rules().len(), 1);
}

#[test]
fn every_bad_line_is_reported_with_file_and_line() {
    let errs = problems(
        "s, User:*, Topic, *, partitions, 64..1\n\
         s, User:*, Topic, *, partitions, lots\n\
         s, User:*, Broker, *, replication_factor, >=3\n\
         s, User:*, Topic, *, name, ^(unclosed\n\
         s, User:*, Queue, *, partitions, 1\n\
         s, User:*, Topic, *, colour, blue\n\
         s, User:*, Topic, *, partitions\n\
         s, Group:*, Topic, *, partitions, 1\n\
         s, User:*, Topic, *, forbid_config, a b\n\
         s, User:*, Topic, *, config.retention.ms,\n\
         s, User:*, Topic, a*b, partitions, 1\n\
         s, User:*, Topic, *, config.cleanup.policy, delete|compact\n",
    );
    let at = |line: u32, needle: &str| {
        assert!(
            errs.iter()
                .any(|e| e.starts_with(&format!("a.policy:{line}: ")) && e.contains(needle)),
            "no `{needle}` at line {line} in {errs:#?}"
        )
    };
    at(1, "empty range `64..1`");
    at(2, "`lots` is not a range");
    at(3, "applies to topics only");
    at(4, "bad name pattern");
    at(5, "unknown safeguard resource type `Queue`");
    at(6, "unknown safeguard `colour`");
    at(7, "a safeguard has 6");
    at(8, "`Group:*` is not a principal");
    at(9, "config names separated by `|`");
    at(10, "needs a value");
    at(11, "not a glob");
    assert_eq!(errs.len(), 11, "{errs:#?}");
}

#[test]
fn creations_are_judged_by_every_safeguard_of_the_principal() {
    let set = load(GUARDS).expect("loads");
    assert_eq!(refusal(&set, "alice", &create("orders", 6, 3, &[])), None);
    let (line, msg) = refusal(&set, "alice", &create("orders", 100, 3, &[])).expect("refused");
    assert_eq!(line, 3);
    assert_eq!(
        msg,
        "Topic orders: 100 partitions, the allowed number is between 1 and 64. (gateway safeguard)"
    );
    let (line, msg) = refusal(&set, "alice", &create("orders", 6, 1, &[])).expect("refused");
    assert_eq!(line, 4);
    assert!(
        msg.contains("replication factor 1, the allowed factor is at least 3"),
        "{msg}"
    );
    // Several apply: the first failing one in file order decides; all must pass.
    assert_eq!(
        refusal(&set, "alice", &create("orders", 100, 1, &[])).map(|r| r.0),
        Some(3)
    );
    assert_eq!(
        refusal(&set, "alice", &create("small-x", 8, 3, &[])).map(|r| r.0),
        Some(10)
    );
    // Broker defaults (-1) are the operator's own settings.
    assert_eq!(refusal(&set, "alice", &create("orders", -1, -1, &[])), None);
    // The name pattern is for members of Group:etl only.
    assert_eq!(refusal(&set, "alice", &create("orders", 1, 3, &[])), None);
    let (line, msg) = refusal(&set, "erin", &create("orders", 1, 3, &[])).expect("refused");
    assert_eq!(line, 5);
    assert!(
        msg.contains(r"does not match the required pattern ^etl\.[a-z0-9.-]+$"),
        "{msg}"
    );
    assert_eq!(refusal(&set, "erin", &create("etl.daily", 1, 3, &[])), None);
}

#[test]
fn config_values_ranges_lists_and_forbidden_names() {
    let set = load(GUARDS).expect("loads");
    let ok = create(
        "t",
        1,
        3,
        &[
            ("retention.ms", "86400000"),
            ("cleanup.policy", "compact,delete"),
        ],
    );
    assert_eq!(refusal(&set, "alice", &ok), None);
    for (config, value, line, needle) in [
        (
            "retention.ms",
            "1",
            6,
            "retention.ms=1 is not allowed, the value must be between 3600000 and 604800000",
        ),
        ("retention.ms", "-1", 6, "retention.ms=-1"),
        ("retention.ms", "soon", 6, "retention.ms=soon"),
        (
            "cleanup.policy",
            "compact,shred",
            7,
            "the value must be one of delete, compact",
        ),
        (
            "unclean.leader.election.enable",
            "true",
            8,
            "setting unclean.leader.election.enable is not allowed",
        ),
    ] {
        let (l, msg) = refusal(&set, "alice", &create("t", 1, 3, &[(config, value)]))
            .unwrap_or_else(|| panic!("{config}={value} passed"));
        assert_eq!(l, line, "{msg}");
        assert!(msg.contains(needle), "{msg}");
    }
    // Altering: the same limits; deleting a config (back to its default) and subtracting from a
    // list never break one.
    let alter =
        |op: ConfigOp, name: &'static str, value: Option<&'static str>| Change::AlterConfigs {
            target: Target::Topic,
            name: "t",
            configs: vec![ConfigChange { name, op, value }],
        };
    assert!(refusal(
        &set,
        "alice",
        &alter(ConfigOp::Set, "retention.ms", Some("5"))
    )
    .is_some());
    assert!(refusal(
        &set,
        "alice",
        &alter(ConfigOp::Append, "cleanup.policy", Some("shred"))
    )
    .is_some());
    assert!(refusal(
        &set,
        "alice",
        &alter(ConfigOp::Append, "cleanup.policy", Some("compact"))
    )
    .is_none());
    assert!(refusal(
        &set,
        "alice",
        &alter(ConfigOp::Delete, "unclean.leader.election.enable", None)
    )
    .is_none());
    assert!(refusal(
        &set,
        "alice",
        &alter(ConfigOp::Subtract, "cleanup.policy", Some("x"))
    )
    .is_none());
    // Broker resources: only bob's allow-list applies, to every broker and the cluster default.
    for broker in ["1", ""] {
        let change = |name: &'static str| Change::AlterConfigs {
            target: Target::Broker,
            name: broker,
            configs: vec![ConfigChange::set(name, Some("2"))],
        };
        assert!(refusal(&set, "bob", &change("log.cleaner.threads")).is_none());
        let (line, msg) = refusal(&set, "bob", &change("num.io.threads")).expect("refused");
        assert_eq!(line, 9);
        assert!(
            msg.contains("only log.cleaner.threads, log.retention.ms may be set"),
            "{msg}"
        );
        assert!(refusal(&set, "alice", &change("num.io.threads")).is_none());
    }
}

#[test]
fn new_partitions_are_held_to_the_partition_range_only() {
    let set = load(GUARDS).expect("loads");
    let more = |count| Change::CreatePartitions {
        name: "orders",
        count,
    };
    assert_eq!(refusal(&set, "alice", &more(64)), None);
    let (line, msg) = refusal(&set, "alice", &more(65)).expect("refused");
    assert_eq!(line, 3);
    assert_eq!(
        msg,
        "Topic orders: 65 partitions requested, the allowed number is between 1 and 64. (gateway safeguard)"
    );
    // The name pattern is about creating topics, not growing them.
    assert_eq!(refusal(&set, "erin", &more(2)), None);
}

#[test]
fn no_safeguards_change_nothing() {
    let set = load("p, User:*, Topic, *, All, *, allow\n").expect("loads");
    assert!(set.safeguards().is_empty());
    assert_eq!(
        refusal(&set, "alice", &create("x", 100_000, 1, &[("a", "b")])),
        None
    );
}

#[test]
fn ranges() {
    assert_eq!(Range::parse("5").expect("exact").to_string(), "exactly 5");
    assert_eq!(Range::parse("<=5").expect("max").to_string(), "at most 5");
    assert_eq!(
        Range::parse("-1..7").expect("range").to_string(),
        "between -1 and 7"
    );
    assert!(Range::parse("1..").is_err());
    assert!(Range::parse(">=x").is_err());
    let r = Range::parse("2..4").expect("range");
    assert!(!r.contains(1) && r.contains(2) && r.contains(4) && !r.contains(5));
}
