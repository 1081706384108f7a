//! Tests for principal mapping: Kafka's own `SslPrincipalMapperTest` cases, Java's RFC 2253 subject
//! strings, and certificates made with rcgen.

use rcgen::string::{BmpString, Ia5String, PrintableString};
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair, SanType};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::*;

fn mapper(rules: &str) -> PrincipalMapper {
    PrincipalMapper::parse(rules).unwrap_or_else(|e| panic!("rules {rules:?} should parse: {e:?}"))
}

fn errors(rules: &str) -> Vec<String> {
    match PrincipalMapper::parse(rules) {
        Ok(m) => panic!("rules {rules:?} should be rejected, parsed as {m}"),
        Err(e) => e,
    }
}

fn map(rules: &str, dn: &str) -> Option<String> {
    mapper(rules).map_dn(dn)
}

// ---- rule semantics -------------------------------------------------------------------------

#[test]
fn default_is_the_whole_dn() {
    let dn = "CN=alice,OU=dev,O=kafka-gateway";
    assert_eq!(map("DEFAULT", dn).as_deref(), Some(dn));
}

#[test]
fn empty_rules_mean_default() {
    for rules in ["", "   ", "\n\t "] {
        let m = mapper(rules);
        assert_eq!(m.to_string(), "[DEFAULT]");
        assert_eq!(m.map_dn("CN=a").as_deref(), Some("CN=a"));
    }
}

#[test]
fn only_empty_entries_is_an_error() {
    // Kafka accepts this as "no rules" and then rejects every client.
    let e = errors(",   , , ,      , , ,   ");
    assert_eq!(e.len(), 1);
    assert!(e[0].contains("no rules"), "{e:?}");
}

/// Kafka's SslPrincipalMapperTest.testSslPrincipalMapper.
#[test]
fn kafka_mapper_test_cases() {
    let rules = [
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
        "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
        "DEFAULT",
    ]
    .join(", ");
    let m = mapper(&rules);
    let cases = [
        ("CN=Duke,OU=ServiceUsers,O=Org,C=US", "duke"),
        ("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US", "duke@sme"),
        ("cn=duke,ou=sme,dc=mycp,dc=com", "DUKE@SME"),
        ("cN=duke,OU=JavaSoft,O=Sun Microsystems", "DUKE"),
        (
            "OU=JavaSoft,O=Sun Microsystems,C=US",
            "OU=JavaSoft,O=Sun Microsystems,C=US",
        ),
    ];
    for (dn, want) in cases {
        assert_eq!(m.map_dn(dn).as_deref(), Some(want), "{dn}");
    }
}

/// The rule list from Kafka's documentation of `ssl.principal.mapping.rules`.
#[test]
fn kafka_documented_rules() {
    let m = mapper(
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
         RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
         RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\
         DEFAULT",
    );
    assert_eq!(m.rules.len(), 4);
    let cases = [
        // The first rule has no flag: case is kept.
        ("CN=Duke,OU=ServiceUsers,O=Org,C=US", "Duke"),
        ("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US", "duke@sme"),
        ("cn=duke,ou=sme,dc=mycp,dc=com", "duke"),
        ("cN=Duke,OU=JavaSoft,O=Sun Microsystems", "duke"),
        // `[a-zA-Z0-9.]*` stops at the first `-`.
        ("CN=kafka-client.example.com,O=acme", "kafka"),
        (
            "OU=JavaSoft,O=Sun Microsystems,C=US",
            "OU=JavaSoft,O=Sun Microsystems,C=US",
        ),
    ];
    for (dn, want) in cases {
        assert_eq!(m.map_dn(dn).as_deref(), Some(want), "{dn}");
    }
}

#[test]
fn lower_and_upper_flags() {
    let lower = mapper("RULE:^CN=([^,]*).*$/$1/L");
    let upper = mapper("RULE:^CN=([^,]*).*$/$1/U");
    let keep = mapper("RULE:^CN=([^,]*).*$/$1/");
    assert_eq!(
        lower.map_dn("CN=ÀLICE Smith,O=x").as_deref(),
        Some("àlice smith")
    );
    assert_eq!(upper.map_dn("CN=straße,O=x").as_deref(), Some("STRASSE"));
    assert_eq!(keep.map_dn("CN=MiXeD,O=x").as_deref(), Some("MiXeD"));
    assert_eq!(lower.to_string(), "[RULE:^CN=([^,]*).*$/$1/L]");
    assert_eq!(upper.to_string(), "[RULE:^CN=([^,]*).*$/$1/U]");
}

#[test]
fn no_matching_rule_is_none() {
    let m = mapper("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/");
    assert_eq!(m.map_dn("CN=alice,OU=dev,O=x"), None);
    // The pattern must match the whole DN, not a part of it.
    let m = mapper("RULE:CN=([a-z]+)/$1/");
    assert_eq!(m.map_dn("CN=alice,OU=dev"), None);
    assert_eq!(m.map_dn("CN=alice").as_deref(), Some("alice"));
}

#[test]
fn first_applying_rule_wins() {
    let m = mapper("RULE:^CN=admin,.*$/root/, RULE:^CN=([^,]+),.*$/$1/, DEFAULT");
    assert_eq!(m.map_dn("CN=admin,O=x").as_deref(), Some("root"));
    assert_eq!(m.map_dn("CN=bob,O=x").as_deref(), Some("bob"));
    assert_eq!(m.map_dn("O=x").as_deref(), Some("O=x"));
}

/// Kafka's testCommaWithWhitespace: `\\,` in the pattern matches the escaped comma Java prints.
#[test]
fn escaped_comma_in_the_dn() {
    let m = mapper(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT");
    assert_eq!(m.rules.len(), 2);
    assert_eq!(
        m.map_dn(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz")
            .as_deref(),
        Some(r"Tkac\, Adam")
    );
}

#[test]
fn escaped_comma_in_a_pattern() {
    // `\,` is a backslash pair to the splitter and a literal comma to the regex; unescaped commas
    // inside a pattern are fine too, because a pattern runs up to its `/`.
    let m =
        mapper(r"RULE:^CN=([^\,]+)\,OU=dev\,.*$/$1/, RULE:^CN=([^,]+),OU=ops,.*$/ops-$1/, DEFAULT");
    assert_eq!(m.rules.len(), 3);
    assert_eq!(m.map_dn("CN=alice,OU=dev,O=x").as_deref(), Some("alice"));
    assert_eq!(m.map_dn("CN=bob,OU=ops,O=x").as_deref(), Some("ops-bob"));
    assert_eq!(
        m.map_dn("CN=carol,OU=qa,O=x").as_deref(),
        Some("CN=carol,OU=qa,O=x")
    );
}

#[test]
fn slash_in_pattern_and_replacement() {
    let m = mapper(r"RULE:^CN=([a-z]+)\/([a-z]+)$/$2\/$1/");
    assert_eq!(m.map_dn("CN=ns/app").as_deref(), Some("app/ns"));
}

// ---- replacement strings (Java appendReplacement + Kafka's literal back-references) ------------

const THREE_GROUPS: &str = "^CN=(.*?),OU=(.*?),O=(.*?)$";
const DN3: &str = "CN=a,OU=b,O=c";

fn replace3(replacement: &str) -> Result<Option<String>, Vec<String>> {
    PrincipalMapper::parse(&format!("RULE:{THREE_GROUPS}/{replacement}/")).map(|m| m.map_dn(DN3))
}

#[test]
fn replacement_group_references() {
    let ok = |r: &str| replace3(r).unwrap_or_else(|e| panic!("{r}: {e:?}"));
    assert_eq!(ok("$3.$2.$1").as_deref(), Some("c.b.a"));
    assert_eq!(ok("$0").as_deref(), Some(DN3));
    // Kafka keeps a reference to a group the pattern lacks as literal text.
    assert_eq!(ok("$1@$4").as_deref(), Some("a@$4"));
    // Java: `$12` with fewer than 12 groups is group 1 followed by "2".
    assert_eq!(ok("$12").as_deref(), Some("a2"));
    // Backslash escapes the next character.
    assert_eq!(ok(r"\$1").as_deref(), Some("$1"));
    assert_eq!(ok(r"a\\b").as_deref(), Some(r"a\b"));
    assert_eq!(ok("").as_deref(), Some(""));
    let named = mapper("RULE:^CN=(?<user>[^,]+),.*$/${user}!/");
    assert_eq!(named.map_dn("CN=zoe,O=x").as_deref(), Some("zoe!"));
}

#[test]
fn replacement_errors_java_would_throw_on() {
    for bad in ["$", "a$", "$x", "${", "${user}", "${1a}", "${a"] {
        let e = errors(&format!("RULE:{THREE_GROUPS}/{bad}/"));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].starts_with("rule 1 `RULE:"), "{e:?}");
    }
    // No groups: Kafka passes `$1` straight to Java, which throws.
    let e = errors("RULE:^CN=alice$/$1/");
    assert!(e[0].contains("group 1"), "{e:?}");
    // Kafka's escaping misplaces the backslash for a second out-of-range reference; Java then throws.
    assert!(replace3("$5$6").is_err());
    assert_eq!(
        replace3("$5")
            .expect("a single out-of-range reference is literal")
            .as_deref(),
        Some("$5")
    );
}

#[test]
fn replacement_follows_java_replace_all() {
    // The pattern is matched against the whole DN, then *every* match is replaced, as String.replaceAll.
    // Java finds an empty match after `.*` consumed everything.
    assert_eq!(map("RULE:.*/x/", "CN=a").as_deref(), Some("xx"));
    assert_eq!(map("RULE:(.*)/[$1]/", "CN=a").as_deref(), Some("[CN=a][]"));
    // A lazy group at the end of an unanchored pattern is empty in the replaceAll pass; the rest of
    // the DN is copied through.
    assert_eq!(
        map("RULE:CN=(.*?),OU=(.*?)/$1@$2/", "CN=x,OU=y").as_deref(),
        Some("x@y")
    );
    // Whole-match uses backtracking semantics (`a|ab` matches "ab"), replaceAll leftmost-first.
    assert_eq!(map("RULE:a|ab/x/", "ab").as_deref(), Some("xb"));
    // Only the empty DN matches an empty pattern.
    assert_eq!(map("RULE://", "CN=a"), None);
    assert_eq!(map("RULE://", "").as_deref(), Some(""));
}

// ---- Java regex dialect ---------------------------------------------------------------------------

#[test]
fn word_digit_space_classes_are_ascii_as_in_java() {
    assert_eq!(
        map(r"RULE:^CN=(\w+).*$/$1/", "CN=Jürgen,O=x").as_deref(),
        Some("J")
    );
    assert_eq!(
        map(r"RULE:^CN=([\w ]+),.*$/$1/", "CN=John Doe,O=x").as_deref(),
        Some("John Doe")
    );
    assert_eq!(map(r"RULE:^CN=([\w ]+),.*$/$1/", "CN=Jürgen,O=x"), None);
    assert_eq!(map(r"RULE:^CN=(\d+)$/$1/", "CN=١٢٣"), None);
    assert_eq!(
        map(r"RULE:^CN=(\d+)$/$1/", "CN=123").as_deref(),
        Some("123")
    );
    assert_eq!(
        map(r"RULE:^CN=\S+\s(\S+)$/$1/", "CN=a\u{a0}b c"),
        Some("c".into())
    );
    assert_eq!(map(r"RULE:^CN=(\W+)$/$1/", "CN=ü-"), Some("ü-".into()));
    assert_eq!(
        map(r"RULE:^CN=(\p{Alpha}+).*$/$1/", "CN=Jürgen").as_deref(),
        Some("J")
    );
    assert_eq!(
        map(r"RULE:^CN=(\P{Alpha}+)$/$1/", "CN=ü1").as_deref(),
        Some("ü1")
    );
}

#[test]
fn java_only_escapes_are_translated() {
    assert_eq!(
        map(r"RULE:^CN=\Q(a.b)\E,.*$/ok/", "CN=(a.b),O=x").as_deref(),
        Some("ok")
    );
    assert_eq!(map(r"RULE:^CN=\Q(a.b)\E,.*$/ok/", "CN=(aXb),O=x"), None);
    // An unterminated \Q quotes the rest of the pattern.
    assert_eq!(map(r"RULE:^CN=\Q*+/ok/", "CN=*+").as_deref(), Some("ok"));
    assert_eq!(
        map(r"RULE:^CN=\<(.*)\>$/$1/", "CN=<x>").as_deref(),
        Some("x")
    );
    // Java reads `[[:alpha:]]` as a nested class of the characters `:alph`.
    assert_eq!(
        map("RULE:^CN=([[:alpha:]]+)$/$1/", "CN=ha:p").as_deref(),
        Some("ha:p")
    );
    assert_eq!(map("RULE:^CN=([[:alpha:]]+)$/$1/", "CN=xyz"), None);
    assert_eq!(
        map(r"RULE:^CN=a\vb$/ok/", "CN=a\u{2028}b").as_deref(),
        Some("ok")
    );
    assert_eq!(
        map(r"RULE:(?i)^cn=([a-z]+),.*$/$1/L", "CN=Alice,O=x").as_deref(),
        Some("alice")
    );
    assert_eq!(
        map(r"RULE:(?x) ^CN= (\w+) ,.*$/$1/", "CN=bob,O=x").as_deref(),
        Some("bob")
    );
}

#[test]
fn java_features_the_engine_lacks_are_errors() {
    for pattern in [
        r"^CN=(?=a).*$",
        r"^CN=(a)\1$",
        r"^CN=a++$",
        r"^CN=a*+a$",
        r"^CN=a{2}+$",
        r"(?U)^CN=.*$",
        r"(?x)^CN=.* # comment",
    ] {
        let rules = format!("RULE:{pattern}/x/");
        let e = PrincipalMapper::parse(&rules).err();
        assert!(e.is_some(), "{pattern} should be rejected");
    }
}

// ---- parsing and splitting --------------------------------------------------------------------------

/// Kafka's SslPrincipalMapperTest.testValidRules.
#[test]
fn kafka_valid_rules() {
    for rules in [
        "DEFAULT",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
        "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
        "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
        "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
    ] {
        mapper(rules);
    }
}

/// Kafka's SslPrincipalMapperTest.testInvalidRules.
#[test]
fn kafka_invalid_rules() {
    for rules in [
        "default",
        "DEFAUL",
        "DEFAULT/L",
        "DEFAULT/U",
        "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
        "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
    ] {
        errors(rules);
    }
}

/// Kafka's SslPrincipalMapperTest.testRulesSplitting: `Display` prints rules as Kafka's toString.
#[test]
fn kafka_rules_splitting() {
    let cases = [
        ("[DEFAULT]", "DEFAULT"),
        ("[RULE:/]", "RULE://"),
        ("[RULE:/.*]", "RULE:/.*/"),
        ("[RULE:/.*/L]", "RULE:/.*/L"),
        ("[RULE:/, DEFAULT]", "RULE://,DEFAULT"),
        ("[RULE:/, DEFAULT]", "  RULE:// ,  DEFAULT  "),
        (
            "[RULE:   /     , DEFAULT]",
            "  RULE:   /     / ,  DEFAULT  ",
        ),
        (
            "[RULE:  /     /U, DEFAULT]",
            "  RULE:  /     /U   ,DEFAULT  ",
        ),
        (
            "[RULE:([A-Z]*)/$1/U, RULE:([a-z]+)/$1, DEFAULT]",
            "  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  ",
        ),
        // Empty rules are ignored.
        ("[RULE:/, DEFAULT]", ",,RULE://,,,DEFAULT,,"),
        (
            "[RULE: /   , DEFAULT]",
            ",  , RULE: /   /    ,,,   DEFAULT, ,   ",
        ),
        (
            "[RULE:   /  /U, DEFAULT]",
            "     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,",
        ),
        // Escape sequences.
        (r"[RULE:\/\\\(\)\n\t/\/\/]", r"RULE:\/\\\(\)\n\t/\/\//"),
        (
            r"[RULE:\**\/+/*/L, RULE:\/*\**/**]",
            r"RULE:\**\/+/*/L,RULE:\/*\**/**/",
        ),
        // Rules rule.
        (
            r"[RULE:,RULE:,/,RULE:,\//U, RULE:,/RULE:,, RULE:,RULE:,/L,RULE:,/L, RULE:, DEFAULT, /DEFAULT, DEFAULT]",
            r"RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT",
        ),
    ];
    for (want, rules) in cases {
        assert_eq!(mapper(rules).to_string(), want, "{rules}");
    }
}

#[test]
fn every_invalid_rule_is_reported_with_its_index() {
    let e = errors("RULE:a/b/X, RULE:(/x/, DEFAULT, RULE:a/$1/, foo, SAN:IP:(.*)/$1/");
    assert_eq!(e.len(), 5, "{e:#?}");
    assert!(
        e[0].starts_with("rule 1 `RULE:a/b/X`: unexpected `X`"),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with("rule 2 `RULE:(/x/`: invalid regular expression"),
        "{}",
        e[1]
    );
    assert!(e[2].starts_with("rule 4 `RULE:a/$1/`: "), "{}", e[2]);
    assert!(e[3].starts_with("rule 5 `foo`: not a rule"), "{}", e[3]);
    assert!(
        e[4].starts_with("rule 6 `SAN:IP:(.*)/$1/`: unknown SAN type `IP`"),
        "{}",
        e[4]
    );
    for msg in &e {
        assert!(!msg.contains('\n'), "one line each: {msg:?}");
    }
}

#[test]
fn helpful_messages_for_common_mistakes() {
    assert!(errors("default")[0].contains("case-sensitive"));
    assert!(errors("rule:a/b/")[0].contains("case-sensitive"));
    assert!(errors("DEFAULT/L")[0].contains("DEFAULT takes no"));
    assert!(errors("RULE:a/b")[0].contains("incomplete rule"));
    // Rules must be separated by commas; Kafka silently drops the first rule here.
    let e = errors("RULE:^CN=(.*)$/$1/\nDEFAULT");
    assert_eq!(e.len(), 1);
    assert!(e[0].contains("separated by commas"), "{e:?}");
}

// ---- SAN rules over strings --------------------------------------------------------------------------

#[test]
fn san_rules_parse_and_print() {
    let m = mapper(
        r"SAN:DNS:^(.*)\.example\.com$/$1/L, SAN:URI:^x:(.*)$/$1/, SAN:EMAIL:(.*)@(.*)/$1/U,DEFAULT",
    );
    assert_eq!(
        m.to_string(),
        r"[SAN:DNS:^(.*)\.example\.com$/$1/L, SAN:URI:^x:(.*)$/$1, SAN:EMAIL:(.*)@(.*)/$1/U, DEFAULT]"
    );
    // map_dn has no SANs: SAN rules are skipped.
    assert_eq!(m.map_dn("CN=a").as_deref(), Some("CN=a"));
    assert_eq!(mapper("SAN:DNS:(.*)/$1/").map_dn("CN=a"), None);
    assert!(errors("SAN:dns:(.*)/$1/")[0].contains("unknown SAN type `dns`"));
    assert!(errors("SAN:(.*)/$1/")[0].contains("incomplete rule"));
}

// ---- RFC 2253 subject strings (Java X500Principal.getName()) ----------------------------------------

const CN: &[u8] = &[0x55, 0x04, 0x03];
const OU: &[u8] = &[0x55, 0x04, 0x0b];
const O: &[u8] = &[0x55, 0x04, 0x0a];
const C: &[u8] = &[0x55, 0x04, 0x06];
const SERIAL: &[u8] = &[0x55, 0x04, 0x05];
const DC: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19];
const UID: &[u8] = &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01];
const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
const UTF8: u8 = 0x0c;
const PRINTABLE: u8 = 0x13;
const IA5: u8 = 0x16;
const BMP: u8 = 0x1e;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        out.extend([0x82, (content.len() >> 8) as u8, content.len() as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn ava(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
    tlv(0x30, &[tlv(0x06, oid), tlv(tag, value)].concat())
}

fn rdn(avas: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &avas.concat())
}

/// A Name from RDNs in certificate (DER) order: the first one prints last.
fn dn_string(rdns: &[Vec<u8>]) -> String {
    let der = tlv(0x30, &rdns.concat());
    let (rest, name) = X509Name::from_der(&der).expect("test DER is a valid Name");
    assert!(rest.is_empty());
    name_to_rfc2253(&name)
}

fn cn(value: &str) -> String {
    dn_string(&[rdn(&[ava(CN, UTF8, value.as_bytes())])])
}

#[test]
fn rdns_print_most_specific_first() {
    let s = dn_string(&[
        rdn(&[ava(C, PRINTABLE, b"US")]),
        rdn(&[ava(O, UTF8, b"kafka-gateway")]),
        rdn(&[ava(OU, UTF8, b"dev")]),
        rdn(&[ava(CN, UTF8, b"alice")]),
    ]);
    assert_eq!(s, "CN=alice,OU=dev,O=kafka-gateway,C=US");
    assert_eq!(dn_string(&[]), "");
}

#[test]
fn special_characters_are_escaped_as_java_does() {
    assert_eq!(cn(r#"a,b+c"d\e<f>g;h"#), r#"CN=a\,b\+c\"d\\e\<f\>g\;h"#);
    // Java escapes `=` and `#` everywhere, not only a leading `#`.
    assert_eq!(cn("x=y#z"), r"CN=x\=y\#z");
    assert_eq!(cn("#lead"), r"CN=\#lead");
    // Leading and trailing spaces: each one is escaped; inner ones are not.
    assert_eq!(cn(" both ends "), r"CN=\ both ends\ ");
    assert_eq!(cn("  two"), r"CN=\ \ two");
    assert_eq!(cn("   "), r"CN=\ \ \ ");
    assert_eq!(cn("a\0b"), r"CN=a\00b");
    // Everything else is kept as is, non-ASCII included.
    assert_eq!(cn("Jürgen Müller*@_!"), "CN=Jürgen Müller*@_!");
}

#[test]
fn keywords_multi_valued_rdns_and_hex_values() {
    let s = dn_string(&[
        rdn(&[ava(DC, IA5, b"com")]),
        rdn(&[ava(DC, IA5, b"example")]),
        rdn(&[ava(CN, UTF8, b"a"), ava(UID, UTF8, b"b")]),
    ]);
    assert_eq!(s, "CN=a+UID=b,DC=example,DC=com");
    // Types without an RFC 2253 keyword print as OIDs with the value's DER in hex.
    assert_eq!(
        dn_string(&[rdn(&[ava(EMAIL, IA5, b"a@b.c")])]),
        "1.2.840.113549.1.9.1=#16056140622e63"
    );
    assert_eq!(
        dn_string(&[rdn(&[ava(SERIAL, PRINTABLE, b"123")])]),
        "2.5.4.5=#1303313233"
    );
    // A keyword type whose value is not a string type: hex too.
    assert_eq!(dn_string(&[rdn(&[ava(CN, 0x02, &[0x01])])]), "CN=#020101");
    // Java decodes every string type as UTF-8 in this form, BMPString included.
    assert_eq!(
        dn_string(&[rdn(&[ava(CN, BMP, &[0, b'A', 0, b'B'])])]),
        r"CN=\00A\00B"
    );
}

// ---- certificates ------------------------------------------------------------------------------

fn certificate(dn: Vec<(DnType, DnValue)>, sans: Vec<SanType>) -> Vec<u8> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    for (ty, value) in dn {
        name.push(ty, value);
    }
    params.distinguished_name = name;
    params.subject_alt_names = sans;
    let key = KeyPair::generate().expect("key generation");
    params
        .self_signed(&key)
        .expect("self-signing")
        .der()
        .to_vec()
}

fn ia5(s: &str) -> Ia5String {
    Ia5String::try_from(s).expect("ASCII test string")
}

/// DN in certificate order O, OU, CN: Java prints `CN=alice,OU=dev,O=kafka-gateway`.
fn alice_dn() -> Vec<(DnType, DnValue)> {
    vec![
        (DnType::OrganizationName, "kafka-gateway".into()),
        (DnType::OrganizationalUnitName, "dev".into()),
        (DnType::CommonName, "alice".into()),
    ]
}

fn alice_sans() -> Vec<SanType> {
    vec![
        SanType::DnsName(ia5("orders-7.clients.example.com")),
        SanType::DnsName(ia5("orders.example.net")),
        SanType::URI(ia5("spiffe://example.org/ns/prod/sa/orders")),
        SanType::Rfc822Name(ia5("Alice@Example.COM")),
    ]
}

#[test]
fn certificate_subject_and_default_principal() {
    let der = certificate(alice_dn(), vec![]);
    assert_eq!(
        subject_dn_rfc2253(&der).expect("rcgen certificates parse"),
        "CN=alice,OU=dev,O=kafka-gateway"
    );
    assert_eq!(
        mapper("DEFAULT")
            .map_certificate(&der)
            .expect("a rule applies"),
        Principal::user("CN=alice,OU=dev,O=kafka-gateway")
    );
    let m = mapper("RULE:^CN=(.*?),OU=(.*?),O=kafka-gateway$/$1@$2/U");
    let p = m.map_certificate(&der).expect("a rule applies");
    assert_eq!(p.to_string(), "User:ALICE@DEV");
}

#[test]
fn certificate_with_special_characters_and_string_types() {
    let der = certificate(
        vec![
            (
                DnType::CountryName,
                DnValue::PrintableString(PrintableString::try_from("DE").expect("printable")),
            ),
            (
                DnType::OrganizationName,
                DnValue::Ia5String(ia5("Acme; Inc")),
            ),
            (
                DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                DnValue::Ia5String(ia5("d@x.io")),
            ),
            (DnType::CommonName, "Doe, Jöhn".into()),
        ],
        vec![],
    );
    assert_eq!(
        subject_dn_rfc2253(&der).expect("rcgen certificates parse"),
        r"CN=Doe\, Jöhn,1.2.840.113549.1.9.1=#16066440782e696f,O=Acme\; Inc,C=DE"
    );
    let m = mapper(r"RULE:^CN=((?:\\,|[^,])+),.*$/$1/");
    assert_eq!(
        m.map_certificate(&der).expect("a rule applies"),
        Principal::user(r"Doe\, Jöhn")
    );
    let bmp = certificate(
        vec![(
            DnType::CommonName,
            DnValue::BmpString(BmpString::try_from("Hi").expect("BMP")),
        )],
        vec![],
    );
    assert_eq!(
        subject_dn_rfc2253(&bmp).expect("rcgen certificates parse"),
        r"CN=\00H\00i"
    );
}

#[test]
fn certificate_san_rules() {
    let der = certificate(alice_dn(), alice_sans());
    let user = |rules: &str| mapper(rules).map_certificate(&der).map(|p| p.name);
    assert_eq!(
        user(r"SAN:URI:^spiffe:\/\/example\.org\/ns\/([^\/]+)\/sa\/([^\/]+)$/$2.$1/,DEFAULT")
            .as_deref(),
        Ok("orders.prod")
    );
    assert_eq!(
        user(r"SAN:EMAIL:(?i)^(.*)@example\.com$/$1/L").as_deref(),
        Ok("alice")
    );
    // The first SAN of the type that matches wins, in certificate order.
    assert_eq!(
        user(r"SAN:DNS:^([^.]+)\..*$/$1/").as_deref(),
        Ok("orders-7")
    );
    assert_eq!(
        user(r"SAN:DNS:^(.*)\.example\.net$/$1/").as_deref(),
        Ok("orders")
    );
    // A SAN rule that matches nothing falls through to the next rule; rules keep their order.
    assert_eq!(
        user(r"SAN:DNS:^nomatch$/x/, RULE:^CN=([^,]+),.*$/$1/").as_deref(),
        Ok("alice")
    );
    assert_eq!(
        user(r"RULE:^CN=([^,]+),.*$/$1/, SAN:DNS:(.*)/$1/").as_deref(),
        Ok("alice")
    );
    // A SAN rule only looks at its own type.
    assert_eq!(
        user(r"SAN:DNS:^spiffe:.*$/x/"),
        Err(MappingError::NoMatchingRule {
            subject: "CN=alice,OU=dev,O=kafka-gateway".into()
        })
    );
}

#[test]
fn san_rule_on_certificate_without_sans() {
    let der = certificate(alice_dn(), vec![]);
    let err = mapper("SAN:DNS:(.*)/$1/")
        .map_certificate(&der)
        .expect_err("no rule applies");
    assert!(matches!(err, MappingError::NoMatchingRule { .. }), "{err}");
}

#[test]
fn empty_subject_certificate() {
    let der = certificate(vec![], vec![SanType::DnsName(ia5("svc.example.com"))]);
    assert_eq!(
        subject_dn_rfc2253(&der).expect("rcgen certificates parse"),
        ""
    );
    // Kafka would make this `User:`; an empty name is refused.
    assert_eq!(
        mapper("DEFAULT").map_certificate(&der),
        Err(MappingError::EmptyName {
            subject: String::new()
        })
    );
    assert_eq!(
        mapper(r"SAN:DNS:^([^.]+)\..*$/$1/,DEFAULT").map_certificate(&der),
        Ok(Principal::user("svc"))
    );
}

#[test]
fn no_matching_rule_names_the_subject() {
    let der = certificate(alice_dn(), vec![]);
    let err = mapper("RULE:^CN=bob,.*$/bob/")
        .map_certificate(&der)
        .expect_err("no rule applies");
    assert_eq!(
        err.to_string(),
        "no principal mapping rule applies to client certificate subject `CN=alice,OU=dev,O=kafka-gateway`"
    );
}

#[test]
fn unreadable_certificates_are_errors() {
    let m = mapper("DEFAULT");
    for bad in [
        &b""[..],
        b"not a certificate",
        &[0x30, 0x03, 0x02, 0x01, 0x01],
    ] {
        assert!(matches!(
            m.map_certificate(bad),
            Err(MappingError::Certificate(_))
        ));
        assert!(matches!(
            subject_dn_rfc2253(bad),
            Err(MappingError::Certificate(_))
        ));
    }
    let mut der = certificate(alice_dn(), vec![]);
    der.push(0);
    assert!(matches!(
        m.map_certificate(&der),
        Err(MappingError::Certificate(_))
    ));
}
