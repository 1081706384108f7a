//! The translation and replacement code on its own. The rule languages' tests
//! (`principal/tests.rs`, `kerberos_name_tests.rs`) check the same behaviour through each rule
//! syntax, with expected values taken from Kafka.

use super::*;

fn translated(java: &str) -> String {
    translate_java_regex(java).unwrap_or_else(|e| panic!("{java}: {e}"))
}

/// The translated pattern, compiled as the callers compile it.
fn regex(java: &str) -> Regex {
    Regex::new(&translated(java)).unwrap_or_else(|e| panic!("{java}: {}", regex_error(&e)))
}

fn refused(java: &str) -> String {
    match translate_java_regex(java) {
        Ok(t) => panic!("{java} should be refused, translated to {t}"),
        Err(e) => e,
    }
}

// ---- translation ------------------------------------------------------------------------------

#[test]
fn shorthand_and_posix_classes_are_ascii() {
    assert_eq!(translated(r"\w\D"), "[[:word:]][[:^digit:]]");
    // Inside a class the POSIX class is not wrapped again.
    assert_eq!(translated(r"[\s,]"), "[[:space:],]");
    assert_eq!(
        translated(r"\p{Alpha}\P{XDigit}"),
        "[[:alpha:]][[:^xdigit:]]"
    );
    assert!(!regex(r"\A\w+\z").is_match("Jürgen"));
    assert!(!regex(r"\A\d\z").is_match("١"));
    assert!(regex(r"\A\S\z").is_match("\u{a0}"));
}

#[test]
fn unicode_properties_and_braced_escapes_are_passed_whole() {
    // Their braces are no counted repetition, so a `+` after them is an ordinary quantifier.
    assert_eq!(translated(r"\p{L}+"), r"\p{L}+");
    assert_eq!(translated(r"\P{Greek}+"), r"\P{Greek}+");
    assert_eq!(translated(r"\x{2028}+"), r"\x{2028}+");
    assert!(regex(r"\A\p{L}+\z").is_match("Jürgen"));
    assert!(regex(r"\A\x{2028}+\z").is_match("\u{2028}\u{2028}"));
    // A counted repetition still marks a following `+` as possessive.
    assert!(refused(r"a{2}+").contains("possessive"));
    assert!(refused(r"\p{L}{2}+").contains("possessive"));
}

#[test]
fn dot_stops_at_java_line_terminators() {
    assert_eq!(translated("a.b"), format!("a{JAVA_DOT}b"));
    let dot = regex(r"\Aa.b\z");
    assert!(dot.is_match("axb"));
    for terminator in ['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'] {
        assert!(is_line_terminator(terminator));
        assert!(!dot.is_match(&format!("a{terminator}b")), "{terminator:?}");
    }
    assert!(!is_line_terminator('\u{b}'));
    // Literal dots are untouched: escaped, quoted, or in a class.
    assert_eq!(translated(r"\.[.]"), r"\.[.]");
    assert_eq!(translated(r"\Q.\E"), r"\.");
}

#[test]
fn a_dotall_flag_leaves_dot_to_the_crate() {
    for java in [r"(?s)\Aa.b\z", r"\A(?s:a.b)\z", r"(?is)\Aa.b\z"] {
        assert_eq!(translated(java), java);
        assert!(regex(java).is_match("a\rb"), "{java}");
    }
    // `(?-s)` is also a DOTALL flag: the crate's `.` (all but `\n`) then applies.
    assert_eq!(translated("(?-s)a.b"), "(?-s)a.b");
    // Not flags: a group with a name or a non-capturing group without letters.
    assert_eq!(translated("(?:.)"), format!("(?:{JAVA_DOT})"));
    assert_eq!(translated("(?<s>.)"), format!("(?<s>{JAVA_DOT})"));
}

#[test]
fn java_only_syntax_is_rewritten() {
    assert_eq!(translated(r"\Q(a.b)\E*"), r"\(a\.b\)*");
    // An unterminated `\Q` quotes the rest.
    assert_eq!(translated(r"\Q*+"), r"\*\+");
    assert_eq!(translated(r"\<x\>"), "<x>");
    assert_eq!(translated("[[:alpha:]]"), r"[[\:alpha:]]");
    assert_eq!(translated(r"\v"), r"[\n\x0B\f\r\x{85}\x{2028}\x{2029}]");
    assert_eq!(translated(r"[\v]"), r"[\n\x0B\f\r\x{85}\x{2028}\x{2029}]");
    // A `]` first in a class is literal, and the class goes on.
    assert_eq!(translated("[]a]"), "[]a]");
    assert_eq!(translated("[^]a]"), "[^]a]");
}

#[test]
fn java_features_the_crate_lacks_are_refused() {
    assert!(refused("a*+").contains("possessive"));
    assert!(refused("a++").contains("possessive"));
    assert!(refused("a?+").contains("possessive"));
    assert!(refused("(?U)a*").contains("(?U)"));
    assert!(refused("(?x)a # comment").contains("comments"));
    assert!(refused(r"a\").contains("lone"));
    // `#` is fine without (?x), and `+` after a quantifier inside a class is literal.
    assert_eq!(translated("a#b"), "a#b");
    assert_eq!(translated("a*[+]"), "a*[+]");
    // Left to the crate: look-around and back-references fail to compile there.
    for java in ["(?=a)", r"(a)\1"] {
        let e = Regex::new(&translated(java)).expect_err(java);
        assert!(regex_error(&e).starts_with("invalid regular expression: "));
    }
}

#[test]
fn regex_errors_are_one_line() {
    // Through the translation, as the callers build it (a literal would trip clippy's regex check).
    let e = Regex::new(&translated("a(")).expect_err("unbalanced");
    let message = regex_error(&e);
    assert!(
        message.starts_with("invalid regular expression: "),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    let e = regex::RegexBuilder::new("a{1000}")
        .size_limit(100)
        .build()
        .expect_err("too big");
    assert_eq!(
        regex_error(&e),
        "the regular expression compiles to more than 100 bytes"
    );
}

// ---- replacement strings ----------------------------------------------------------------------

fn pieces(replacement: &str, pattern: &str) -> Result<Vec<Piece>, String> {
    parse_replacement(replacement, &regex(pattern))
}

fn lit(text: &str) -> Piece {
    Piece::Literal(text.into())
}

#[test]
fn replacement_references_and_escapes() {
    assert_eq!(
        pieces(r"<$1>\$\\", "(a)"),
        Ok(vec![lit("<"), Piece::Group(1), lit(r">$\")])
    );
    assert_eq!(pieces("$0", "a"), Ok(vec![Piece::Group(0)]));
    // Later digits join the reference only while it still names a group.
    assert_eq!(pieces("$10", "(a)"), Ok(vec![Piece::Group(1), lit("0")]));
    assert_eq!(
        pieces("$10", "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)"),
        Ok(vec![Piece::Group(10)])
    );
    assert_eq!(
        pieces("${user}@", "(?<user>a)"),
        Ok(vec![Piece::Group(1), lit("@")])
    );
    assert_eq!(pieces("", "a"), Ok(vec![]));
}

#[test]
fn replacements_java_would_throw_on_are_refused() {
    let error =
        |replacement: &str, pattern: &str| pieces(replacement, pattern).expect_err(replacement);
    assert!(error("$", "a").contains("ends with `$`"));
    assert!(error("a\\", "a").contains("lone `\\`"));
    assert!(error("$x", "a").contains("group number"));
    assert!(error("$1", "a").contains("refers to group 1, but the pattern has 0"));
    assert!(error("$2", "(a)").contains("refers to group 2"));
    assert!(error("${nope}", "(?<user>a)").contains("no group named `nope`"));
    assert!(error("${}", "(a)").contains("group name"));
    assert!(error("${a", "(?<a>a)").contains("group name"));
}

#[test]
fn replace_first_and_all_follow_java() {
    let find = |java: &str, replacement: &str, input: &str, all: bool| {
        let pattern = regex(java);
        let template = parse_replacement(replacement, &pattern).expect(replacement);
        replace(&pattern, &template, input, all)
    };
    assert_eq!(find("o", "0", "foo", false), "f0o");
    assert_eq!(find("o", "0", "foo", true), "f00");
    assert_eq!(find("x", "0", "foo", true), "foo");
    // Java finds an empty match after `.*` consumed everything; the crate's iterators would not.
    assert_eq!(find(".*", "x", "ab", true), "xx");
    assert_eq!(find("(.*)", "[$1]", "ab", true), "[ab][]");
    // After an empty match the search resumes one whole char later.
    assert_eq!(find("x*", "-", "aé", true), "-a-é-");
    // A group that did not take part inserts nothing.
    assert_eq!(find("(a)|b", "<$1>", "ab", true), "<a><>");
    // `.` stops at `\r`, so `.*` matches on each side of it.
    assert_eq!(find(".*", "X", "a\rb", true), "XX\rXX");
}

// ---- the two fixes, seen through the SSL mapping rules ---------------------------------------
// (The Kerberos rules' own tests cover them there: `kerberos_name_tests.rs`.)

fn ssl_map(rules: &str, dn: &str) -> Option<String> {
    crate::auth::principal::PrincipalMapper::parse(rules)
        .unwrap_or_else(|e| panic!("{rules}: {e:?}"))
        .map_dn(dn)
}

#[test]
fn ssl_rules_take_a_plus_after_a_unicode_property() {
    // Once refused as a possessive quantifier.
    let rule = r"RULE:^CN=(\p{L}+)$/$1/";
    assert_eq!(ssl_map(rule, "CN=Jürgen").as_deref(), Some("Jürgen"));
    assert_eq!(ssl_map(rule, "CN=Ζωή").as_deref(), Some("Ζωή"));
    assert_eq!(ssl_map(rule, "CN=bob1"), None);
    assert_eq!(
        ssl_map(r"RULE:^CN=a\x{2028}+b$/ok/", "CN=a\u{2028}\u{2028}b").as_deref(),
        Some("ok")
    );
}

#[test]
fn ssl_rule_dot_stops_at_java_line_terminators() {
    let rule = "RULE:^CN=a.b$/dot/";
    assert_eq!(ssl_map(rule, "CN=axb").as_deref(), Some("dot"));
    for odd in ["CN=a\rb", "CN=a\u{85}b", "CN=a\u{2028}b", "CN=a\u{2029}b"] {
        assert_eq!(ssl_map(rule, odd), None, "{odd:?}");
    }
    // `.*` no longer runs over a `\r` to make the rule apply ...
    assert_eq!(ssl_map("RULE:^CN=(.*)$/$1/", "CN=a\rb"), None);
    // ... unless the pattern asks for DOTALL, as in Java.
    assert_eq!(
        ssl_map("RULE:(?s)^CN=a.b$/dot/", "CN=a\rb").as_deref(),
        Some("dot")
    );
}
