//! Policy file parsing, validation (every problem at once, with file:line), the model check,
//! version hashes and warnings.

use super::*;

const MODEL: &str = include_str!("../../policies/model.conf");

pub(crate) fn load(text: &str) -> Result<PolicySet, PolicyError> {
    PolicySet::from_texts(Some(("model.conf", MODEL)), &[("a.policy", text)], &[])
}

pub(crate) fn problems(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected the policy to be rejected"),
        Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
    }
}

fn warnings(text: &str) -> Vec<String> {
    load(text)
        .expect("policy loads")
        .check()
        .iter()
        .map(|w| w.to_string())
        .collect()
}

#[test]
fn parses_rules_memberships_comments_and_case() {
    let set = load(
        "\u{feff}# a comment\n\
         \n\
         p, User:alice, Topic, orders, Read, *, allow\n\
         P,Group:payments,TOPIC,pay-*,write,10.0.0.0/8,ALLOW\r\n\
         \t p , User:*, cluster, kafka-cluster, DESCRIBE_CONFIGS, ::1, Deny  \n\
         p, User:bob, transactionalid, *, idempotent_write, 192.168.0.1, allow\n\
         g, User:bob, Group:payments\n\
         p, \"User:CN=a,O=b\", Group, \"we\"\"ird, name\", Read, *, allow\n",
    )
    .expect("loads");
    let r = set.rules();
    assert_eq!(r.len(), 5);
    assert_eq!(
        r[0].canonical(),
        "p, User:alice, Topic, orders, Read, *, allow"
    );
    assert_eq!(r[0].source.to_string(), "a.policy:3");
    assert_eq!(r[1].subject, Subject::Group("payments".into()));
    assert_eq!(r[1].pattern, Pattern::Prefix("pay-".into()));
    assert_eq!(r[1].op, Operation::Write);
    assert_eq!(r[1].effect, Effect::Allow);
    assert_eq!(r[1].host.to_string(), "10.0.0.0/8");
    assert_eq!(r[2].subject, Subject::AnyUser);
    assert_eq!(r[2].rtype, ResourceType::Cluster);
    assert_eq!(r[2].op, Operation::DescribeConfigs);
    assert_eq!(r[2].effect, Effect::Deny);
    assert_eq!(r[3].op, Operation::IdempotentWrite);
    assert_eq!(r[3].pattern, Pattern::Any);
    assert_eq!(r[4].subject, Subject::User("CN=a,O=b".into()));
    assert_eq!(r[4].pattern, Pattern::Literal("we\"ird, name".into()));
    assert_eq!(set.memberships().len(), 1);
    assert_eq!(set.groups_of("bob").collect::<Vec<_>>(), vec!["payments"]);
    assert_eq!(
        r.iter().map(|r| r.id.0).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
}

#[test]
fn every_problem_is_reported_at_once_with_file_and_line() {
    let text = "p, User:alice, Topic, orders, Read, *, allow\n\
                p, User:alice, Tpoic, orders, Raed, *, allow\n\
                p, User:alice, Topic, orders, Read, *\n\
                p, alice, Topic, orders, Read, *, allow\n\
                p, User:alice, Topic, , Read, *, allow\n\
                p, User:alice, Topic, orders, Read, 10.0.0.1/8, allow\n\
                p, User:alice, Topic, orders, Read, example.com, allow\n\
                p, User:alice, Topic, orders, Read, 10.0.0.0/33, allow\n\
                p, User:alice, Cluster, kafka-*, All, *, allow\n\
                p, User:alice, Cluster, my-cluster, All, *, allow\n\
                p, User:alice, Topic, a*b, Read, *, allow\n\
                p, User:alice, Topic, orders, Read, *, permit\n\
                p, user:alice, Topic, orders, Read, *, allow\n\
                p, Group:*, Topic, orders, Read, *, allow\n\
                g, User:*, Group:all\n\
                g, Group:a, Group:b\n\
                g, User:bob\n\
                x, User:bob, Group:b\n\
                p, User:alice, Topic, orders, Read, *, allow # trailing comment\n\
                p, \"User:alice, Topic, orders, Read, *, allow\n\
                p, Service:x, Topic, orders, Read, *, allow\n";
    let got = problems(text);
    let expect: &[(&str, &str)] = &[
        ("a.policy:2:", "unknown resource type `Tpoic`"),
        ("a.policy:2:", "unknown operation `Raed`"),
        ("a.policy:3:", "wrong number of fields"),
        ("a.policy:4:", "bad principal `alice`"),
        ("a.policy:5:", "empty resource name"),
        ("a.policy:6:", "did you mean `10.0.0.0/8`"),
        ("a.policy:7:", "bad host `example.com`"),
        ("a.policy:8:", "prefix length"),
        ("a.policy:9:", "prefix pattern `kafka-*` on Cluster"),
        ("a.policy:10:", "can never match"),
        ("a.policy:11:", "not a glob"),
        ("a.policy:12:", "unknown effect `permit`"),
        ("a.policy:13:", "case-sensitive"),
        ("a.policy:14:", "`Group:*` is not a principal"),
        ("a.policy:15:", "must be a single user"),
        ("a.policy:16:", "must be a single user"),
        ("a.policy:17:", "wrong number of fields"),
        ("a.policy:18:", "unknown line type `x`"),
        ("a.policy:19:", "unknown effect"),
        ("a.policy:19:", "comments must be on their own line"),
        ("a.policy:20:", "unterminated quoted field"),
        ("a.policy:21:", "unknown principal type `Service`"),
    ];
    for (loc, msg) in expect {
        assert!(
            got.iter().any(|g| g.starts_with(loc) && g.contains(msg)),
            "missing `{loc} ... {msg}` in:\n{}",
            got.join("\n")
        );
    }
    assert!(!got.iter().any(|g| g.starts_with("a.policy:1:")), "{got:?}");
    assert_eq!(got.len(), expect.len(), "{}", got.join("\n"));
}

#[test]
fn problems_in_several_files_and_super_users_are_all_reported() {
    let err = PolicySet::from_texts(
        Some(("model.conf", MODEL)),
        &[
            (
                "one.policy",
                "p, User:a, Topic, t, Read, *, allow\np, nope\n",
            ),
            ("two.policy", "\n\np, User:a, Nope, t, Read, *, allow\n"),
        ],
        &[
            "alice".to_string(),
            "User:*".to_string(),
            "User:root".to_string(),
        ],
    )
    .expect_err("rejected");
    let text = err.to_string();
    assert!(text.contains("one.policy:2:"), "{text}");
    assert!(text.contains("two.policy:3:"), "{text}");
    assert!(text.contains("super_users[0]"), "{text}");
    assert!(text.contains("super_users[1]"), "{text}");
    assert!(!text.contains("super_users[2]"), "{text}");
    assert_eq!(err.problems.len(), 4);
}

#[test]
fn broken_models_are_rejected() {
    let rules = [("a.policy", "p, User:a, Topic, t, Read, *, allow\n")];
    let reject = |model: &str| -> String {
        PolicySet::from_texts(Some(("model.conf", model)), &rules, &[])
            .expect_err("model rejected")
            .to_string()
    };
    let no_effect = MODEL.replace(
        "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
        "",
    );
    assert!(reject(&no_effect).contains("missing [policy_effect]"));
    let other_effect = MODEL.replace(
        "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
        "e = some(where (p.eft == allow))",
    );
    assert!(reject(&other_effect).contains("[policy_effect] must be exactly"));
    let unsupported_effect = MODEL.replace(
        "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
        "e = priority(p.eft) && deny",
    );
    assert!(reject(&unsupported_effect).contains("[policy_effect]"));
    let reordered = MODEL.replace(
        "r = sub, host, rtype, name, op",
        "r = sub, rtype, name, op, host",
    );
    assert!(reject(&reordered).contains("[request_definition] must be exactly"));
    let no_matcher: String = MODEL
        .lines()
        .filter(|l| !l.starts_with("m =") && !l.starts_with("    &&"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(reject(&no_matcher).contains("missing [matchers]"));
    // A matcher that calls an unknown function fails when evaluated: the probes catch it.
    let bad_fn = MODEL.replace(
        "kafkaNameMatch(r.name, p.pattern)",
        "kafkaNameMatches(r.name, p.pattern)",
    );
    assert!(reject(&bad_fn).contains("matcher failed"));
    // A matcher that forgets deny-never-implies disagrees with the rules: rejected.
    let wrong = MODEL.replace("&& r.rtype == p.rtype", "");
    let rules2 = [("a.policy", "p, User:a, Group, t, Read, *, allow\n")];
    let err = PolicySet::from_texts(Some(("model.conf", &wrong)), &rules2, &[])
        .expect_err("wrong semantics rejected");
    assert!(err.to_string().contains("does not encode"), "{err}");
    // Not a model at all.
    assert!(reject("this is not a model").contains("model.conf"));
    assert!(reject("").contains("missing [request_definition]"));
}

#[test]
fn problems_in_rules_and_model_are_listed_together() {
    let no_effect = MODEL.replace(
        "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
        "",
    );
    let err = PolicySet::from_texts(
        Some(("model.conf", &no_effect)),
        &[("a.policy", "p, x\n")],
        &[],
    )
    .expect_err("rejected");
    let text = err.to_string();
    assert!(
        text.contains("a.policy:1:") && text.contains("policy_effect"),
        "{text}"
    );
}

#[test]
fn load_reads_files_and_reports_missing_ones() {
    let dir = std::env::temp_dir().join(format!("kgw-policy-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let model = dir.join("model.conf");
    std::fs::write(&model, MODEL).expect("write");
    let a = dir.join("a.policy");
    std::fs::write(&a, "p, User:a, Topic, t, Read, *, allow\n").expect("write");
    let set = PolicySet::load(&model, std::slice::from_ref(&a), &[]).expect("loads");
    assert_eq!(set.rules().len(), 1);
    assert_eq!(set.rules()[0].source.file.as_ref(), a.display().to_string());
    let missing = dir.join("missing.policy");
    let err = PolicySet::load(&dir.join("nomodel.conf"), &[a.clone(), missing], &[])
        .expect_err("rejected");
    assert_eq!(err.problems.len(), 2, "{err}");
    assert!(PolicySet::load(&model, &[], &[]).is_err());
    // Loading works from inside a tokio runtime too (casbin's constructors need no runtime).
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let n = rt.block_on(async {
        PolicySet::load(&model, std::slice::from_ref(&a), &[]).map(|s| s.rules().len())
    });
    assert_eq!(n.expect("loads in a runtime"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_hash_depends_on_model_files_order_and_super_users() {
    let a = "p, User:a, Topic, t, Read, *, allow\n";
    let b = "p, User:b, Topic, t, Read, *, allow\n";
    let h = |files: &[(&str, &str)], su: &[String]| {
        PolicySet::from_texts(Some(("m", MODEL)), files, su)
            .expect("loads")
            .version_hash()
            .to_string()
    };
    let base = h(&[("a", a), ("b", b)], &[]);
    assert_eq!(base.len(), 64);
    assert!(base.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(base, h(&[("a", a), ("b", b)], &[]));
    assert_ne!(base, h(&[("b", b), ("a", a)], &[]));
    assert_ne!(base, h(&[("a", a), ("b", b)], &["User:x".into()]));
    let model2 = format!("{MODEL}\n# another comment\n");
    let other =
        PolicySet::from_texts(Some(("m", &model2)), &[("a", a), ("b", b)], &[]).expect("loads");
    assert_ne!(base, other.version_hash());
    // Framing: moving text between files changes the hash.
    assert_ne!(
        h(
            &[("a", "p, User:a, Topic, t, Read, *, allow\n"), ("b", "")],
            &[]
        ),
        h(
            &[("a", ""), ("b", "p, User:a, Topic, t, Read, *, allow\n")],
            &[]
        )
    );
}

#[test]
fn host_specs() {
    let m = |spec: &str, host: &str| {
        HostSpec::parse(spec)
            .expect("spec")
            .matches(canonical_ip(host.parse().expect("ip")))
    };
    assert!(m("*", "1.2.3.4"));
    assert!(m("1.2.3.4", "1.2.3.4"));
    assert!(m("1.2.3.4", "::ffff:1.2.3.4"));
    assert!(m("::ffff:1.2.3.4", "1.2.3.4"));
    assert!(!m("1.2.3.4", "1.2.3.5"));
    assert!(m("0.0.0.0/0", "255.1.1.1"));
    assert!(!m("0.0.0.0/0", "::1"));
    assert!(m("::/0", "::1"));
    assert!(m("1.2.3.4/32", "1.2.3.4"));
    assert!(m("::ffff:10.0.0.0/104", "10.200.0.1"));
    assert!(m("fe80::/10", "fe80::1"));
    assert!(!m("fe80::/10", "fec0::1"));
    for bad in [
        "",
        "1.2.3",
        "1.2.3.4/",
        "1.2.3.4/x",
        "::1/129",
        "1.2.3.4/-1",
        "localhost",
        "1.2.3.4 ",
        "10.0.0.1/8",
    ] {
        assert!(HostSpec::parse(bad).is_err(), "{bad}");
    }
    let c = |a: &str, b: &str| {
        HostSpec::parse(a)
            .expect("a")
            .covers(&HostSpec::parse(b).expect("b"))
    };
    assert!(c("*", "10.0.0.0/8"));
    assert!(c("10.0.0.0/8", "10.1.0.0/16"));
    assert!(!c("10.1.0.0/16", "10.0.0.0/8"));
    assert!(c("10.0.0.0/8", "10.1.2.3"));
    assert!(!c("10.1.2.3", "10.0.0.0/8"));
    assert!(!c("10.0.0.0/8", "*"));
}

#[test]
fn patterns() {
    assert_eq!(Pattern::parse("*", None), Ok(Pattern::Any));
    assert_eq!(Pattern::parse("a*", None), Ok(Pattern::Prefix("a".into())));
    assert_eq!(
        Pattern::parse("kafka-cluster", Some(ResourceType::Cluster)),
        Ok(Pattern::Literal("kafka-cluster".into()))
    );
    assert!(Pattern::parse("**", None).is_err());
    assert!(Pattern::parse("*a", None).is_err());
    assert!(Pattern::parse("a\nb", None).is_err());
    assert!(Pattern::Prefix("ab".into()).covers(&Pattern::Literal("abc".into())));
    assert!(Pattern::Prefix("ab".into()).covers(&Pattern::Prefix("abc".into())));
    assert!(!Pattern::Literal("ab".into()).covers(&Pattern::Prefix("ab".into())));
    assert!(!Pattern::Prefix("abc".into()).covers(&Pattern::Prefix("ab".into())));
    assert!(Pattern::Any.covers(&Pattern::Any));
    assert!(!Pattern::Prefix("a".into()).covers(&Pattern::Any));
    assert!(Pattern::Prefix("ü".into()).matches("üb"));
    assert!(!Pattern::Literal("ü".into()).matches("u"));
}

#[test]
fn warnings_for_rules_that_never_matter() {
    let w = warnings(
        "p, User:a, Topic, t, Read, *, allow\n\
         p, User:a, Topic, t, Read, *, allow\n\
         p, Group:ghosts, Topic, t, Read, *, allow\n\
         g, User:a, Group:unused\n\
         g, User:a, Group:unused\n\
         p, User:*, Group, *, All, *, deny\n\
         p, User:b, Topic, x*, Write, *, allow\n\
         p, User:b, Topic, x, Create, 10.0.0.1, allow\n\
         p, User:b, Topic, x, All, 10.0.0.0/8, deny\n\
         p, User:c, Topic, y, Read, *, allow\n\
         p, User:c, Topic, y, Read, *, deny\n\
         p, User:d, Topic, z, Write, *, allow\n\
         p, Group:unused2, Topic, z, All, *, deny\n\
         p, User:e, Topic, bad name, Read, *, allow\n\
         p, User:e, Topic, t, IdempotentWrite, *, allow\n",
    );
    let has = |loc: &str, msg: &str| {
        assert!(
            w.iter().any(|x| x.starts_with(loc) && x.contains(msg)),
            "missing `{loc} {msg}` in:\n{}",
            w.join("\n")
        )
    };
    has("a.policy:2:", "duplicate of the rule at a.policy:1");
    has("a.policy:3:", "Group:ghosts has no members");
    has("a.policy:5:", "duplicate of the membership at a.policy:4");
    has("a.policy:4:", "Group:unused is not used");
    has(
        "a.policy:6:",
        "blocks everything on every Group for everyone",
    );
    has("a.policy:8:", "never takes effect: the deny at a.policy:9");
    has("a.policy:10:", "still grants the implied Describe");
    has("a.policy:14:", "cannot match a Kafka topic name");
    has("a.policy:15:", "IdempotentWrite does not apply to Topic");
    // Not shadowed: the deny covers fewer hosts than the allow.
    assert!(!w.iter().any(|x| x.starts_with("a.policy:7:")), "{w:?}");
    assert_eq!(w.len(), 10, "{}", w.join("\n"));
}

#[test]
fn super_user_rules_are_flagged() {
    let set = PolicySet::from_texts(
        Some(("model.conf", MODEL)),
        &[("a.policy", "p, User:root, Topic, t, Read, *, deny\n")],
        &["User:root".to_string()],
    )
    .expect("loads");
    let w = set.check();
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("super user"));
}

#[test]
fn csv_splitting() {
    assert_eq!(split_csv("a, b ,c").expect("ok"), vec!["a", "b", "c"]);
    assert_eq!(split_csv("a,,c").expect("ok"), vec!["a", "", "c"]);
    assert_eq!(
        split_csv("\"a,b\" , \"c\"\"d\"").expect("ok"),
        vec!["a,b", "c\"d"]
    );
    assert_eq!(split_csv("a,").expect("ok"), vec!["a", ""]);
    assert!(split_csv("\"a").is_err());
    assert!(split_csv("\"a\"b").is_err());
}

#[test]
fn quota_lines_load_and_bad_ones_are_reported_with_their_lines() {
    let ok = "p, User:*, Topic, *, Read, *, allow\nq, User:alice, -, producer_byte_rate, 1048576\n";
    let set = PolicySet::from_texts(None, &[("a.policy", ok)], &[]).expect("loads");
    assert_eq!(set.quotas().rules().len(), 1);
    assert_eq!(set.rules().len(), 1, "quota lines are not rules");
    let bad = "q, User:alice, -, producer_byte_rate, fast\n\
               p, User:*, Topic, *, Read, *, allow\n\
               q, User:alice, -, producer_byte_rate, 10\n\
               q, User:alice, -, producer_byte_rate, 20\n\
               q, *, -, connection_creation_rate, 20\n";
    let e = PolicySet::from_texts(None, &[("a.policy", bad)], &[]).expect_err("refused");
    let at: Vec<String> = e
        .problems
        .iter()
        .map(|p| format!("{}:{}", p.file, p.line.unwrap_or(0)))
        .collect();
    assert_eq!(at, ["a.policy:1", "a.policy:4"], "{e}");
}
