use super::*;

fn parse(text: &str) -> Result<QuotaSet, Vec<String>> {
    let mut rules = Vec::new();
    let mut errs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<String> = line.split(',').map(|f| f.trim().to_string()).collect();
        let source = Source {
            file: "t.policy".into(),
            line: i as u32 + 1,
        };
        let mut line_errs = Vec::new();
        if let Some(r) = parse_line(&fields, &mut line_errs, source) {
            rules.push(r);
        }
        errs.extend(line_errs.into_iter().map(|e| format!("{}: {e}", i + 1)));
    }
    let (set, dups) = QuotaSet::new(rules);
    errs.extend(dups.into_iter().map(|(s, m)| format!("{}: {m}", s.line)));
    if errs.is_empty() {
        Ok(set)
    } else {
        Err(errs)
    }
}

fn bound(
    set: &QuotaSet,
    user: &str,
    client: &str,
) -> Option<(f64, Option<String>, Option<String>)> {
    set.for_client(QuotaKind::ProducerByteRate, Some(user), client)
        .map(|a| (a.bound, a.key.user, a.key.client))
}

/// The configuration of Kafka's `ClientQuotaManagerTest.testQuotaConfigPrecedence`.
const KAFKA_PRECEDENCE: &str = "\
q, User:*, -, producer_byte_rate, 1000
q, -, *, producer_byte_rate, 2000
q, User:*, *, producer_byte_rate, 3000
q, User:userA, -, producer_byte_rate, 4000
q, User:userA, client1, producer_byte_rate, 5000
q, User:userB, -, producer_byte_rate, 6000
q, User:userB, client1, producer_byte_rate, 7000
q, User:userB, *, producer_byte_rate, 8000
q, User:userC, -, producer_byte_rate, 10000
q, -, client1, producer_byte_rate, 9000";

#[test]
fn kafka_precedence() {
    let set = parse(KAFKA_PRECEDENCE).expect("present in the test");
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        bound(&set, "userA", "client1"),
        Some((5000.0, s("userA"), s("client1")))
    );
    // <user> beats <client> and the defaults, and is shared by the user's clients.
    assert_eq!(
        bound(&set, "userA", "client2"),
        Some((4000.0, s("userA"), None))
    );
    assert_eq!(
        bound(&set, "userB", "client1"),
        Some((7000.0, s("userB"), s("client1")))
    );
    // The user's default client quota is each client's own.
    assert_eq!(
        bound(&set, "userB", "client2"),
        Some((8000.0, s("userB"), s("client2")))
    );
    assert_eq!(
        bound(&set, "userD", "client1"),
        Some((3000.0, s("userD"), s("client1")))
    );
}

#[test]
fn kafka_precedence_without_default_user_client() {
    let text = KAFKA_PRECEDENCE.replace("q, User:*, *, producer_byte_rate, 3000\n", "");
    let set = parse(&text).expect("present in the test");
    assert_eq!(
        bound(&set, "userF", "client4"),
        Some((1000.0, Some("userF".into()), None)),
        "the default user quota is shared across the user's clients"
    );
    let text = text.replace("q, User:*, -, producer_byte_rate, 1000\n", "");
    let set = parse(&text).expect("present in the test");
    assert_eq!(
        bound(&set, "userF", "client4"),
        Some((2000.0, None, Some("client4".into()))),
        "the default client-id quota is shared across the client id's users"
    );
    assert_eq!(
        bound(&set, "userF", "client1"),
        Some((9000.0, None, Some("client1".into())))
    );
}

#[test]
fn no_rule_no_quota_and_kinds_are_apart() {
    let set = parse("q, User:alice, -, consumer_byte_rate, 100").expect("present in the test");
    assert_eq!(bound(&set, "alice", "c"), None);
    assert!(set
        .for_client(QuotaKind::ConsumerByteRate, Some("alice"), "c")
        .is_some());
    assert!(set
        .for_client(QuotaKind::ConsumerByteRate, Some("bob"), "c")
        .is_none());
}

#[test]
fn addresses_own_rule_beats_the_default() {
    let set =
        parse("q, *, -, connection_creation_rate, 20\nq, 10.0.0.1, -, connection_creation_rate, 5")
            .expect("present in the test");
    let ip = |s: &str| s.parse::<IpAddr>().expect("present in the test");
    assert_eq!(
        set.for_address(QuotaKind::ConnectionCreationRate, ip("10.0.0.1"))
            .expect("present in the test")
            .bound,
        5.0
    );
    assert_eq!(
        set.for_address(QuotaKind::ConnectionCreationRate, ip("10.0.0.2"))
            .expect("present in the test")
            .bound,
        20.0
    );
}

#[test]
fn every_bad_line_is_reported() {
    let errs = parse(
        "q, User:alice, -, producer_byte_rate\n\
         q, Group:g, -, producer_byte_rate, 10\n\
         q, User:alice, -, producer_bytes, 10\n\
         q, User:alice, -, producer_byte_rate, -5\n\
         q, User:alice, app, login_rate, 5\n\
         q, nonsense, -, connection_creation_rate, 5\n\
         q, -, -, consumer_byte_rate, 5\n\
         q, User:bob, -, producer_byte_rate, 10\n\
         q, User:bob, -, producer_byte_rate, 20\n\
         q, User:carol, -, connection_creation_rate, 5\n\
         q, -, -, login_rate, 5\n\
         q, 10.0.0.1, app, login_rate, 5",
    )
    .expect_err("refused");
    let lines: Vec<&str> = errs
        .iter()
        .map(|e| e.split(':').next().expect("present in the test"))
        .collect();
    assert_eq!(
        lines,
        ["1", "2", "3", "4", "5", "6", "7", "10", "11", "12", "9"],
        "{errs:#?}"
    );
    assert!(errs[7].contains("use login_rate"), "{errs:#?}");
    assert!(errs[10].contains("first is at t.policy:8"), "{errs:#?}");
}

#[test]
fn canonical_lines_read_back() {
    let set = parse(
        "q, User:alice, *, producer.byte.rate, 1048576\nq, *, -, connection_creation_rate, 20",
    )
    .expect("present in the test");
    let lines: Vec<String> = set.rules().iter().map(QuotaRule::canonical).collect();
    assert_eq!(
        lines,
        [
            "q, User:alice, *, producer_byte_rate, 1048576",
            "q, *, -, connection_creation_rate, 20"
        ]
    );
}

#[test]
fn login_rates_per_principal_and_per_address() {
    let set = parse(
        "q, User:*, -, login_rate, 10\n\
         q, User:carol, -, login_rate, 2\n\
         q, 10.0.0.7, -, login_rate, 5\n\
         q, *, -, connection_creation_rate, 20",
    )
    .expect("present in the test");
    let ip = |s: &str| s.parse::<IpAddr>().expect("present in the test");
    let carol = set.for_login("carol").expect("present in the test");
    assert_eq!(
        (carol.bound, carol.key.user.as_deref()),
        (2.0, Some("carol"))
    );
    assert_eq!(set.for_login("dave").expect("default user").bound, 10.0);
    let at = set
        .for_address(QuotaKind::LoginRate, ip("10.0.0.7"))
        .expect("present in the test");
    assert_eq!((at.bound, at.key.address), (5.0, Some(ip("10.0.0.7"))));
    assert!(set
        .for_address(QuotaKind::LoginRate, ip("10.0.0.8"))
        .is_none());
    // The connection rate is its own kind: it does not limit logins, nor logins connections.
    assert_eq!(
        set.for_address(QuotaKind::ConnectionCreationRate, ip("10.0.0.7"))
            .expect("default address")
            .bound,
        20.0
    );
    let lines: Vec<String> = set.rules().iter().map(QuotaRule::canonical).collect();
    assert_eq!(lines[2], "q, 10.0.0.7, -, login_rate, 5");
}
