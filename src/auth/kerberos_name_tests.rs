//! Tests of Kerberos name parsing and the principal-to-local rules: Kafka's own cases first, then
//! the edges Kafka's tests leave out (non-ASCII, Java's regex quirks, errors).

use super::*;

fn namer(default_realm: &str, rules: &[&str]) -> ShortNamer {
    let rules: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
    ShortNamer::new(default_realm, &rules).unwrap_or_else(|e| panic!("rules rejected: {e:?}"))
}

fn errors(rules: &[&str]) -> Vec<String> {
    let rules: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
    match ShortNamer::new("REALM.COM", &rules) {
        Ok(n) => panic!("rules accepted: {n}"),
        Err(e) => e,
    }
}

/// The single error for a one-rule list.
fn error(rule: &str) -> String {
    let mut all = errors(&[rule]);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn name(s: &str) -> KerberosName {
    KerberosName::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn short(n: &ShortNamer, principal: &str) -> Result<String, NameError> {
    n.short_name(&name(principal))
}

fn ok(n: &ShortNamer, principal: &str) -> String {
    short(n, principal).unwrap_or_else(|e| panic!("{principal:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Ported from Kafka: KerberosNameTest.testParse

#[test]
fn kafka_test_parse() {
    let n = namer(
        "REALM.COM",
        &[
            r"RULE:[1:$1](App\..*)s/App\.(.*)/$1/g",
            r"RULE:[2:$1](App\..*)s/App\.(.*)/$1/g",
            "DEFAULT",
        ],
    );

    let k = name("App.service-name/example.com@REALM.COM");
    assert_eq!(k.primary, "App.service-name");
    assert_eq!(k.instance.as_deref(), Some("example.com"));
    assert_eq!(k.realm.as_deref(), Some("REALM.COM"));
    assert_eq!(n.short_name(&k), Ok("service-name".into()));

    let k = name("App.service-name@REALM.COM");
    assert_eq!(k.primary, "App.service-name");
    assert_eq!(k.instance, None);
    assert_eq!(k.realm.as_deref(), Some("REALM.COM"));
    assert_eq!(n.short_name(&k), Ok("service-name".into()));

    let k = name("user/host@REALM.COM");
    assert_eq!(k.primary, "user");
    assert_eq!(k.instance.as_deref(), Some("host"));
    assert_eq!(k.realm.as_deref(), Some("REALM.COM"));
    assert_eq!(n.short_name(&k), Ok("user".into()));
}

// ---------------------------------------------------------------------------------------------
// Ported from Kafka: KerberosNameTest.testToLowerCase

#[test]
fn kafka_test_to_lower_case() {
    let n = namer(
        "REALM.COM",
        &[
            "RULE:[1:$1]/L",
            "RULE:[2:$1](Test.*)s/ABC///L",
            "RULE:[2:$1](ABC.*)s/ABC/XYZ/g/L",
            r"RULE:[2:$1](App\..*)s/App\.(.*)/$1/g/L",
            "RULE:[2:$1]/L",
            "DEFAULT",
        ],
    );
    assert_eq!(ok(&n, "User@REALM.COM"), "user");
    assert_eq!(ok(&n, "TestABC/host@FOO.COM"), "test");
    assert_eq!(ok(&n, "ABC_User_ABC/host@FOO.COM"), "xyz_user_xyz");
    assert_eq!(
        ok(&n, "App.SERVICE-name/example.com@REALM.COM"),
        "service-name"
    );
    assert_eq!(ok(&n, "User/root@REALM.COM"), "user");
}

// ---------------------------------------------------------------------------------------------
// Ported from Kafka: KerberosNameTest.testToUpperCase

#[test]
fn kafka_test_to_upper_case() {
    let n = namer(
        "REALM.COM",
        &[
            "RULE:[1:$1]/U",
            "RULE:[2:$1](Test.*)s/ABC///U",
            "RULE:[2:$1](ABC.*)s/ABC/XYZ/g/U",
            r"RULE:[2:$1](App\..*)s/App\.(.*)/$1/g/U",
            "RULE:[2:$1]/U",
            "DEFAULT",
        ],
    );
    assert_eq!(ok(&n, "User@REALM.COM"), "USER");
    assert_eq!(ok(&n, "TestABC/host@FOO.COM"), "TEST");
    assert_eq!(ok(&n, "ABC_User_ABC/host@FOO.COM"), "XYZ_USER_XYZ");
    assert_eq!(
        ok(&n, "App.SERVICE-name/example.com@REALM.COM"),
        "SERVICE-NAME"
    );
    assert_eq!(ok(&n, "User/root@REALM.COM"), "USER");
}

// ---------------------------------------------------------------------------------------------
// Ported from Kafka: KerberosNameTest.testInvalidRules

#[test]
fn kafka_test_invalid_rules() {
    for rule in [
        "default",
        "DEFAUL",
        "DEFAULT/L",
        "DEFAULT/g",
        "rule:[1:$1]",
        "rule:[1:$1]/L/U",
        "rule:[1:$1]/U/L",
        "rule:[1:$1]/LU",
        "RULE:[1:$1/L",
        "RULE:[1:$1]/l",
        "RULE:[2:$1](ABC.*)s/ABC/XYZ/L/g",
    ] {
        let e = error(rule);
        assert!(e.starts_with(&format!("rule 1 `{rule}`: ")), "{e}");
    }
}

#[test]
fn invalid_rule_reasons() {
    // Kafka's two messages: nothing recognised, or text left after the rule.
    assert!(error("default").contains("case-sensitive"));
    assert!(error("rule:[1:$1]").contains("case-sensitive"));
    assert!(error("DEFAUL").contains("not a rule"));
    assert!(error("").contains("not a rule"));
    assert!(error("RULE:[1:$1/L").contains("expected `RULE:[n:format]`"));
    assert!(error("DEFAULT/L").contains("unmatched substring `/L`"));
    assert!(error("RULE:[1:$1]/l").contains("unmatched substring `l`"));
    assert!(error("RULE:[2:$1](ABC.*)s/ABC/XYZ/L/g").contains("unmatched substring `/g`"));
    assert!(error("RULE:[1:$1]/L/U").contains("unmatched substring `/U`"));
    assert!(error("RULE:[1:$1]s/a/b").contains("unmatched substring `s/a/b`"));
    // Kafka does not trim: whitespace around a rule is left-over text (its config parser trims
    // each comma-separated entry before the rules see them).
    assert!(error("DEFAULT ").contains("unmatched substring ` `"));
    assert!(error(" DEFAULT").contains("not a rule"));
}

// ---------------------------------------------------------------------------------------------
// Ported from Kafka: KerberosRuleTest.testReplaceParameters

#[test]
fn kafka_test_replace_parameters() {
    let many = ["too", "many", "parameters", "are", "ok"];
    // positive test cases
    assert_eq!(replace_parameters("", &[]), Ok("".into()));
    assert_eq!(replace_parameters("hello", &[]), Ok("hello".into()));
    assert_eq!(replace_parameters("", &many), Ok("".into()));
    assert_eq!(replace_parameters("hello", &many), Ok("hello".into()));
    assert_eq!(
        replace_parameters("hello $0", &many),
        Ok("hello too".into())
    );
    assert_eq!(
        replace_parameters("hello $0", &["no recursion $1"]),
        Ok("hello no recursion $1".into())
    );

    // negative test cases: an out-of-bounds parameter number, a malformed parameter name
    let e = replace_parameters("$0", &[]).expect_err("out of range");
    assert!(
        e.contains("index 0 from `$0` is outside of the valid range 0 to -1"),
        "{e}"
    );
    let e = replace_parameters("hello $a", &["does not matter"]).expect_err("malformed");
    assert!(e.contains("bad format"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Ported from Kafka's documentation (docs/security.html, "sasl.kerberos.principal.to.local.rules").

#[test]
fn kafka_docs_example() {
    let n = namer(
        "OTHER.COM",
        &["RULE:[1:$1@$0](.*@MYDOMAIN.COM)s/@.*//", "DEFAULT"],
    );
    assert_eq!(ok(&n, "alice@MYDOMAIN.COM"), "alice");
    assert_eq!(ok(&n, "bob@OTHER.COM"), "bob");
    assert_eq!(ok(&n, "svc/host@OTHER.COM"), "svc");
    assert!(matches!(
        short(&n, "svc/host@MYDOMAIN.COM"),
        Err(NameError::NoMatchingRule { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Name parsing.

#[test]
fn parse_shapes() {
    let bare = name("alice");
    assert_eq!(
        (bare.primary.as_str(), bare.instance, bare.realm),
        ("alice", None, None)
    );
    // No `@`: Kafka takes the whole text as the primary, slashes and all.
    let k = name("a/b/c");
    assert_eq!(
        (k.primary.as_str(), k.instance, k.realm),
        ("a/b/c", None, None)
    );
    // Empty parts are allowed.
    let k = name("@R");
    assert_eq!((k.primary.as_str(), k.realm.as_deref()), ("", Some("R")));
    let k = name("a/@R");
    assert_eq!(k.instance.as_deref(), Some(""));
    let k = name("a@");
    assert_eq!(k.realm.as_deref(), Some(""));
    for bad in ["a@b@c", "a/b/c@R", "a@R/x", "a/b@R@S", "@@", "/@/"] {
        assert_eq!(
            KerberosName::parse(bad),
            Err(NameError::Malformed(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn display_round_trips() {
    for s in [
        "alice",
        "alice@R",
        "alice/host@R",
        "a/@R",
        "@R",
        "a@",
        "a/b/c",
    ] {
        assert_eq!(name(s).to_string(), s);
    }
    let no_realm = KerberosName {
        primary: "svc".into(),
        instance: Some("host".into()),
        realm: None,
    };
    assert_eq!(no_realm.to_string(), "svc/host");
}

#[test]
fn non_ascii_names() {
    let k = name("Jöns/hôst.例え@RÉALM.ÇOM");
    assert_eq!(k.primary, "Jöns");
    assert_eq!(k.instance.as_deref(), Some("hôst.例え"));
    assert_eq!(k.realm.as_deref(), Some("RÉALM.ÇOM"));
    assert_eq!(
        ok(
            &namer("RÉALM.ÇOM", &["DEFAULT"]),
            "Jöns/hôst.例え@RÉALM.ÇOM"
        ),
        "Jöns"
    );

    let n = namer("R", &["RULE:[1:$1]/L", "RULE:[2:$2]/U"]);
    assert_eq!(ok(&n, "ÅSA@R"), "åsa");
    assert_eq!(ok(&n, "ΟΔΟΣ@R"), "οδος", "final sigma, as Java maps it");
    assert_eq!(ok(&n, "x/straße@R"), "STRASSE");
    assert_eq!(ok(&n, "😀\u{0}\u{202e}@R"), "😀\u{0}\u{202e}");

    // Empty matches step over whole characters, never into one.
    let n = namer("R", &["RULE:[1:$1]s/x*/-/g"]);
    assert_eq!(ok(&n, "é😀@R"), "-é-😀-");

    // Java's `\w` is ASCII-only: a rule meant for ASCII names does not take `josé`.
    let n = namer("R", &[r"RULE:[1:$1](\w+)", r"RULE:[1:$1]s/[^\w]/_/g"]);
    assert_eq!(ok(&n, "jose@R"), "jose");
    assert_eq!(ok(&n, "josé@R"), "jos_");
    assert_eq!(ok(&namer("R", &[r"RULE:[1:$1](\d+)"]), "42@R"), "42");
    assert!(short(&namer("R", &[r"RULE:[1:$1](\d+)"]), "٤٢@R").is_err());
}

#[test]
fn error_messages_escape_names() {
    let n = namer("R", &["DEFAULT"]);
    let e = short(&n, "eve\n[INFO] fake@EVIL").expect_err("foreign realm");
    let text = e.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains(r#""eve\n[INFO] fake@EVIL""#), "{text}");
    let e = KerberosName::parse("a@b@\u{1b}[2J").expect_err("malformed");
    assert!(!e.to_string().contains('\u{1b}'), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Applying rules.

#[test]
fn bare_name_skips_rules() {
    let n = namer("R", &["RULE:[1:$1]s/a/b/"]);
    assert_eq!(ok(&n, "alice"), "alice");
    // Even with a slash, as in Kafka: there is no realm, so it is "already simple".
    assert_eq!(ok(&n, "a/b"), "a/b");
}

#[test]
fn default_maps_only_the_default_realm() {
    let n = namer("EXAMPLE.COM", &["DEFAULT"]);
    assert_eq!(ok(&n, "alice@EXAMPLE.COM"), "alice");
    assert_eq!(ok(&n, "kafka/broker1.example.com@EXAMPLE.COM"), "kafka");
    let e = short(&n, "alice@EVIL.COM").expect_err("foreign realm");
    assert_eq!(
        e,
        NameError::NoMatchingRule {
            name: "alice@EVIL.COM".into(),
            rules: "[DEFAULT]".into(),
        }
    );
    // The realm comparison is exact: no case folding.
    assert!(short(&n, "alice@example.com").is_err());
}

#[test]
fn empty_rule_list_means_default() {
    let n = ShortNamer::new("R", &[]).expect("empty list");
    assert_eq!(n.short_name(&name("alice/host@R")), Ok("alice".into()));
    assert!(n.short_name(&name("alice@S")).is_err());
}

#[test]
fn first_rule_that_applies_wins() {
    let n = namer(
        "R",
        &[
            "RULE:[2:$1](admin)s/.*/root/",
            "RULE:[2:$1@$0](.*@R)s/@.*//",
            "RULE:[2:$2]",
            "DEFAULT",
        ],
    );
    assert_eq!(ok(&n, "admin/x@R"), "root");
    assert_eq!(ok(&n, "alice/x@R"), "alice");
    assert_eq!(ok(&n, "alice/x@S"), "x");
    assert_eq!(
        ok(&n, "alice@R"),
        "alice",
        "one component: only DEFAULT applies"
    );
}

#[test]
fn format_parameters() {
    let n = namer("R", &["RULE:[2:$2-$1.$0]", "RULE:[1:x$1$1y]"]);
    assert_eq!(ok(&n, "a/b@R"), "b-a.R");
    assert_eq!(ok(&n, "a@R"), "xaay");
    // Leading zeros are one number, as for Java's parseInt.
    assert_eq!(ok(&namer("R", &["RULE:[01:$001]"]), "a@R"), "a");
    // A hand-built name with an instance and no realm: `$0` is empty (Java would write `null`).
    let n = namer("R", &["RULE:[2:$0$1]"]);
    let k = KerberosName {
        primary: "svc".into(),
        instance: Some("host".into()),
        realm: None,
    };
    assert_eq!(n.short_name(&k), Ok("svc".into()));
}

#[test]
fn match_regex_must_match_the_whole_string() {
    let n = namer(
        "R",
        &["RULE:[1:$1](ab)", "RULE:[1:$1](a|ab)s/.*/alt/", "DEFAULT"],
    );
    assert_eq!(ok(&n, "ab@R"), "ab");
    assert_eq!(
        ok(&n, "abc@R"),
        "abc",
        "no rule but DEFAULT applies to `abc`"
    );
    // Leftmost-first would stop at `a`; Java's matches() tries `ab` too.
    let n = namer("R", &["RULE:[1:$1](a|ab)s/.*/alt/", "DEFAULT"]);
    assert_eq!(ok(&n, "ab@R"), "alt");
    // `()` is an empty pattern: only an empty string matches it.
    let n = namer("S", &["RULE:[1:$1]()s/^/empty/", "DEFAULT"]);
    assert_eq!(ok(&n, "@S"), "empty");
    assert_eq!(ok(&n, "a@S"), "a");
}

#[test]
fn substitution_first_or_global() {
    let first = namer("R", &["RULE:[1:$1]s/a/X/"]);
    let global = namer("R", &["RULE:[1:$1]s/a/X/g"]);
    assert_eq!(ok(&first, "banana@R"), "bXnana");
    assert_eq!(ok(&global, "banana@R"), "bXnXnX");
    // Nothing to replace: the formatted string as it is.
    assert_eq!(ok(&global, "xyz@R"), "xyz");
    // Java's replaceAll also replaces the empty match at the end after `.*` took everything.
    assert_eq!(ok(&namer("R", &["RULE:[1:$1]s/.*/x/g"]), "abc@R"), "xx");
    assert_eq!(ok(&namer("R", &["RULE:[1:$1]s/.*/x/"]), "abc@R"), "x");
    assert_eq!(ok(&namer("R", &["RULE:[1:$1]s///g"]), "abc@R"), "abc");
}

#[test]
fn replacement_group_references() {
    // `$1` followed by letters is still group 1.
    let n = namer("R", &["RULE:[1:$1]s/(.*)-svc/$1abc/"]);
    assert_eq!(ok(&n, "foo-svc@R"), "fooabc");
    // With one group, `$10` is group 1 then `0`; with ten, it is group 10.
    let n = namer("R", &["RULE:[1:$1]s/(x)/$10/"]);
    assert_eq!(ok(&n, "x@R"), "x0");
    let n = namer("R", &["RULE:[1:$1]s/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)/$10$1/"]);
    assert_eq!(ok(&n, "abcdefghij@R"), "ja");
    // `$0` is the whole match; `\$` and `\\` are literal.
    let n = namer("R", &[r"RULE:[1:$1]s/b+/[$0]\$\\/"]);
    assert_eq!(ok(&n, "abbc@R"), r"a[bb]$\c");
    // Named groups.
    let n = namer(
        "R",
        &["RULE:[1:$1]s/(?<user>[a-z]+)_(?<team>[a-z]+)/${team}.${user}/"],
    );
    assert_eq!(ok(&n, "ann_ops@R"), "ops.ann");
    // A group that took no part inserts nothing.
    let n = namer("R", &["RULE:[1:$1]s/(x)?y/[$1]/"]);
    assert_eq!(ok(&n, "y@R"), "[]");
}

#[test]
fn case_flags() {
    let lower = namer("R", &["RULE:[1:$1]s/a/X/g/L"]);
    assert_eq!(ok(&lower, "Banana@R"), "bxnxnx");
    let upper = namer("R", &["RULE:[1:$1]s/a/x//U"]);
    assert_eq!(ok(&upper, "banana@R"), "BXNANA");
    // The `/` before the flag is optional in Kafka's grammar.
    assert_eq!(ok(&namer("R", &["RULE:[1:$1]L"]), "ABC@R"), "abc");
    assert_eq!(ok(&namer("R", &["RULE:[1:$1]s/a/b/gU"]), "aa@R"), "BB");
}

#[test]
fn non_simple_result_is_an_error_and_stops_evaluation() {
    let n = namer("R", &["RULE:[2:$1/$2]", "DEFAULT"]);
    assert_eq!(
        short(&n, "svc/host@R"),
        Err(NameError::NonSimpleName {
            result: "svc/host".into(),
            rule: "RULE:[2:$1/$2]".into(),
        })
    );
    let n = namer("R", &["RULE:[1:$1@$0](.*)s/@R$/@OTHER/", "DEFAULT"]);
    assert!(matches!(
        short(&n, "alice@R"),
        Err(NameError::NonSimpleName { result, .. }) if result == "alice@OTHER"
    ));
    // Checked on the result before case mapping, so a flag does not hide it. (A replacement
    // cannot write a `/`: Kafka's grammar ends it at the first one.)
    let n = namer("R", &["RULE:[1:$1/]/L"]);
    assert!(matches!(
        short(&n, "A-B@R"),
        Err(NameError::NonSimpleName { result, .. }) if result == "A-B/"
    ));
    // DEFAULT checks its primary too (reachable only with a hand-built name).
    let k = KerberosName {
        primary: "a@b".into(),
        instance: None,
        realm: Some("R".into()),
    };
    assert!(matches!(
        namer("R", &["DEFAULT"]).short_name(&k),
        Err(NameError::NonSimpleName { .. })
    ));
}

#[test]
fn rules_print_as_kafka_prints_them() {
    let n = namer(
        "R",
        &[
            "RULE:[007:$1]L",
            "RULE:[2:$1;$2](.*)s/;.*//g/U",
            "RULE:[1:$1]s/a/b/",
            "RULE:[1:$1]/",
            "DEFAULT",
        ],
    );
    assert_eq!(
        n.to_string(),
        "KerberosShortNamer(principalToLocalRules = [RULE:[7:$1]/L, RULE:[2:$1;$2](.*)s/;.*//g/U, \
         RULE:[1:$1]s/a/b/, RULE:[1:$1], DEFAULT])"
    );
    let e = namer("R", &["RULE:[3:$1]", "DEFAULT"])
        .short_name(&name("a@S"))
        .expect_err("no match");
    assert_eq!(
        e.to_string(),
        r#"no rules apply to "a@S", rules [RULE:[3:$1], DEFAULT]"#
    );
}

// ---------------------------------------------------------------------------------------------
// Rule list errors.

#[test]
fn several_rules_in_one_entry_are_rejected() {
    // Kafka checks that the rule parser consumed the whole entry ("unmatched substring"); rules
    // are separated by commas in the property, i.e. they are separate list entries here.
    for entry in [
        "RULE:[1:$1] DEFAULT",
        "RULE:[1:$1]\nDEFAULT",
        "DEFAULT\nDEFAULT",
        "RULE:[1:$1@$0](.*@R)s/@.*//,DEFAULT",
    ] {
        let e = error(entry);
        assert!(e.contains("unmatched substring"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
    assert!(error("RULE:[1:$1]\nDEFAULT").contains(r"unmatched substring `\nDEFAULT`"));
}

#[test]
fn every_bad_rule_is_reported_at_once() {
    let e = errors(&[
        "DEFAULT",
        "rule:[1:$1]",
        "RULE:[1:$1](a[)",
        "DEFAULT",
        "RULE:[x:$1]",
    ]);
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].starts_with("rule 2 `rule:[1:$1]`: "), "{}", e[0]);
    assert!(
        e[1].starts_with("rule 3 `RULE:[1:$1](a[)`: match regex: "),
        "{}",
        e[1]
    );
    assert!(e[2].starts_with("rule 5 `RULE:[x:$1]`: "), "{}", e[2]);
}

#[test]
fn bad_component_counts() {
    assert!(error("RULE:[:$1]").contains("component count ``"));
    assert!(error("RULE:[2147483648:$1]").contains("component count `2147483648`"));
    // Java's int limit itself is fine (such a rule never applies).
    namer("R", &["RULE:[2147483647:$1]"]);
}

#[test]
fn bad_formats_are_config_errors() {
    // Kafka throws these at login time (BadFormatString); here the rule list is refused.
    assert!(error("RULE:[1:$a]").contains("bad format"));
    assert!(error("RULE:[1:$1$]").contains("bad format"));
    assert!(error("RULE:[1:$99999999999]").contains("bad format"));
    let e = error("RULE:[1:$2]");
    assert!(
        e.contains("index 2 from `$2` is outside of the valid range 0 to 1"),
        "{e}"
    );
    assert!(error("RULE:[0:$1]").contains("valid range 0 to 0"));
    namer("R", &["RULE:[2:$2]", "RULE:[0:$0]", "RULE:[1:no params]"]);
}

#[test]
fn bad_regexes_are_config_errors() {
    let e = error("RULE:[1:$1](a[)");
    assert!(e.contains("match regex: invalid regular expression"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    // A trailing `\` must not swallow the wrapper's `)` and turn into something valid.
    assert!(error(r"RULE:[1:$1](a\)").contains("match regex"));
    assert!(error("RULE:[1:$1](a(b)").contains("match regex"));
    assert!(error("RULE:[1:$1]s/a(//").contains("substitution: invalid regular expression"));
    // Java features the crate lacks are refused rather than read differently.
    assert!(error("RULE:[1:$1]s/(?=a)a//").contains("substitution"));
    assert!(error("RULE:[1:$1]s/(a)\\1//").contains("substitution"));
    assert!(error("RULE:[1:$1]s/a*+//").contains("possessive"));
}

#[test]
fn bad_replacements_are_config_errors() {
    // Kafka throws these from Matcher.replaceAll at login time; here the rule list is refused.
    assert!(error("RULE:[1:$1]s/a/$1/").contains("refers to group 1, but the pattern has 0"));
    assert!(error("RULE:[1:$1]s/(a)/$2/").contains("refers to group 2"));
    assert!(error("RULE:[1:$1]s/a/x$/").contains("ends with `$`"));
    assert!(error(r"RULE:[1:$1]s/a/x\/").contains("lone `\\`"));
    assert!(error("RULE:[1:$1]s/a/$x/").contains("group number"));
    assert!(error("RULE:[1:$1]s/(a)/${nope}/").contains("no group named `nope`"));
    assert!(error("RULE:[1:$1]s/(a)/${}/").contains("group name"));
}

#[test]
fn oversized_regexes_are_refused() {
    let e = error("RULE:[1:$1]s/(?:a{1000}){1000}//");
    assert!(e.contains("compiles to more than 1048576 bytes"), "{e}");
    let e = error("RULE:[1:$1](a{200000})");
    assert!(e.contains("match regex"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Java's regex dialect (expected values checked against Kafka's classes on Java 17).

#[test]
fn dot_stops_at_java_line_terminators() {
    let n = namer(
        "R",
        &[
            "RULE:[1:$1](a.b)s/.*/dot/",
            "RULE:[1:$1]s/[\r\u{85}\u{2028}]/_/",
        ],
    );
    assert_eq!(ok(&n, "axb@R"), "dot");
    for odd in ["a\rb@R", "a\u{2028}b@R", "a\u{85}b@R"] {
        assert_eq!(ok(&n, odd), "a_b", "{odd:?}");
    }
    assert_eq!(
        ok(&namer("R", &["RULE:[1:$1]s/.*/X/g"]), "a\rb@R"),
        "XX\rXX"
    );
    // DOTALL lets `.` take them all, as in Java.
    assert_eq!(
        ok(&namer("R", &["RULE:[1:$1]s/(?s)a.b/dot/"]), "a\rb@R"),
        "dot"
    );
}

#[test]
fn unicode_escapes_and_properties() {
    // Braces after `\p` and `\x` are not a counted repetition, so a `+` after them is no
    // possessive quantifier.
    assert_eq!(
        ok(&namer("R", &[r"RULE:[1:$1]s/\p{L}+/W/g"]), "ab1cd@R"),
        "W1W"
    );
    assert_eq!(
        ok(
            &namer("R", &[r"RULE:[1:$1]s/\x{2028}+/_/"]),
            "a\u{2028}\u{2028}b@R"
        ),
        "a_b"
    );
    // `\p{Alpha}` is ASCII-only in Java; `\p{L}` is Unicode in both.
    let n = namer(
        "R",
        &[r"RULE:[1:$1](\p{Alpha}+)", r"RULE:[1:$1]s/\p{L}+/W/"],
    );
    assert_eq!(ok(&n, "jose@R"), "jose");
    assert_eq!(ok(&n, "josé@R"), "W");
}
