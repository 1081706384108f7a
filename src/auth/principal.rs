//! Maps a TLS client certificate to a principal, the way Kafka's `ssl.principal.mapping.rules` does.
//!
//! Kafka (`DefaultKafkaPrincipalBuilder` + `SslPrincipalMapper`) takes the certificate subject as Java's
//! `X500Principal.getName()` prints it (RFC 2253, most specific RDN first: `CN=alice,OU=dev,O=acme`) and
//! runs it through an ordered rule list. [`subject_dn_rfc2253`] reproduces Java's string byte for byte
//! and [`PrincipalMapper`] reproduces the rules, so a rule list copied from a broker's
//! `server.properties` maps every client to the same `User:<name>` here as there.
//!
//! # Rule syntax
//!
//! Rules are separated by commas; whitespace around a rule and empty rules are ignored. A rule is one of:
//!
//! - `DEFAULT` — the whole subject DN is the name.
//! - `RULE:pattern/replacement/` with an optional `L` (lowercase the result) or `U` (uppercase) right
//!   after the last `/`. The rule applies when the Java regular expression `pattern` matches the *whole*
//!   DN; the name is then the DN with every match of `pattern` replaced by `replacement` (Java's
//!   `String.replaceAll`), where `$1`, `${name}` and `$0` insert groups and `\x` is a literal `x`.
//!   A reference to a group the pattern does not have is kept as literal text (`$4` with three groups),
//!   as in Kafka. Inside the pattern and the replacement a `/` must be written `\/`; any other
//!   backslash pair (`\,`, `\.`) is kept as it is, so commas in a pattern need no escaping at all.
//!
//! The first rule that applies wins; when none applies the client is rejected (Kafka: `NoMatchingRule`).
//! An empty rule string means `DEFAULT`.
//!
//! # Extension: rules over subject alternative names
//!
//! Beyond Kafka, a rule can look at the certificate's subject alternative names instead of its DN:
//!
//! - `SAN:DNS:pattern/replacement/[L|U]` — dNSName entries, e.g. `SAN:DNS:^(.*)\.clients\.example\.com$/$1/`
//! - `SAN:URI:pattern/replacement/[L|U]` — URI entries, e.g.
//!   `SAN:URI:^spiffe:\/\/example\.org\/sa\/(.*)$/$1/` (note the `\/`)
//! - `SAN:EMAIL:pattern/replacement/[L|U]` — rfc822Name entries, e.g. `SAN:EMAIL:^(.*)@example\.com$/$1/L`
//!
//! The pattern, replacement and flags work exactly as in `RULE:`, applied to one SAN value at a time,
//! in certificate order; the first entry of that type the pattern matches wholly gives the name. When
//! no entry matches, evaluation goes on with the next rule, so `SAN:` and `RULE:` rules mix freely
//! (`SAN:URI:...,RULE:...,DEFAULT`). `SAN:` rules never apply to [`PrincipalMapper::map_dn`], which has
//! only the DN. Rule lists without `SAN:` rules are exactly Kafka's language: an entry starting with
//! `SAN:` is an error to Kafka, so no valid Kafka list changes meaning.
//!
//! # Differences from Kafka, all on the side of refusing
//!
//! - Problems are found when the rules are parsed, not when a client connects: a replacement that
//!   Java would throw on (`$` not followed by a group, a trailing `\`, `$1` in a pattern without
//!   groups, `${name}` of no group) makes the rule list invalid.
//! - Text Kafka silently skips is an error here: rules separated by a newline instead of a comma.
//! - [`PrincipalMapper::map_certificate`] refuses an empty name (a certificate with an empty subject
//!   under `DEFAULT`), which Kafka would accept as the principal `User:`.
//!
//! # Regular expressions
//!
//! Patterns are Java regexes run on the `regex` crate, which has no backtracking: the time to match
//! is linear in the DN whatever the pattern. The common dialect is the same; where the two engines read
//! the same text differently it is translated (by `auth::java_regex`, shared with the Kerberos rules):
//! `\w \d \s` (and negations, and `\p{Alpha}`-style POSIX classes) are ASCII-only as in Java, `\v` is
//! Java's vertical-whitespace class, `\<` `\>` are literal, `\Q...\E` quotes, `[:` inside a class is
//! literal, and `.` stops at all of Java's line terminators (`\n`, `\r`, U+0085, U+2028, U+2029)
//! unless the pattern sets `(?s)`. Java features the crate lacks (look-around, back-references,
//! possessive quantifiers, `(?U)`) make the rule invalid rather than match differently. Left as is:
//! `(?i)` is Unicode-aware in the crate (Java: ASCII case folding), and `$` does not match before a
//! final newline — neither of which matters for certificate subjects Java prints.

use std::fmt;

use regex::Regex;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use super::java_regex::{self, Piece};
use super::Principal;

/// Why a client certificate yields no principal. Always the client's side: its certificate is
/// unreadable or no rule accepts it; the connection is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("client certificate cannot be parsed: {0}")]
    Certificate(String),
    #[error("no principal mapping rule applies to client certificate subject `{subject}`")]
    NoMatchingRule { subject: String },
    #[error("principal mapping gives an empty name for client certificate subject `{subject}`")]
    EmptyName { subject: String },
}

/// A parsed, validated rule list. `Display` prints it as Kafka's `SslPrincipalMapper` does.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace(ReplaceRule),
}

/// What a `RULE:`/`SAN:` rule is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Dn,
    San(SanKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SanKind {
    Dns,
    Uri,
    Email,
}

impl SanKind {
    fn keyword(self) -> &'static str {
        match self {
            SanKind::Dns => "DNS",
            SanKind::Uri => "URI",
            SanKind::Email => "EMAIL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
struct ReplaceRule {
    source: Source,
    /// As written, for `Display`.
    pattern: String,
    replacement: String,
    /// `\A(?:pattern)\z`: Java's `Matcher.matches()`, which decides whether the rule applies.
    whole: Regex,
    /// The bare pattern, for the `replaceAll` pass.
    find: Regex,
    template: Vec<Piece>,
    case: Case,
}

impl PrincipalMapper {
    /// Parses Kafka-style rules; every problem is reported (rule index, text, reason). Empty string =
    /// `DEFAULT`.
    pub fn parse(rules: &str) -> Result<PrincipalMapper, Vec<String>> {
        // Java's String.trim(): strips every char <= U+0020, not Unicode whitespace.
        let text = rules.trim_matches(|c: char| c <= ' ');
        if text.is_empty() {
            return Ok(PrincipalMapper {
                rules: vec![Rule::Default],
            });
        }
        let mut parsed = Vec::new();
        let mut errors = Vec::new();
        for (i, entry) in split_rules(text).into_iter().enumerate() {
            match compile_entry(&entry) {
                Ok(rule) => parsed.push(rule),
                Err(reason) => errors.push(format!("rule {} `{}`: {reason}", i + 1, entry.text)),
            }
        }
        if parsed.is_empty() && errors.is_empty() {
            errors.push(
                "no rules: the list has only empty entries; use DEFAULT for the whole DN".into(),
            );
        }
        if errors.is_empty() {
            Ok(PrincipalMapper { rules: parsed })
        } else {
            Err(errors)
        }
    }

    /// The principal for a DER certificate, or an error when it cannot be read or no rule matches
    /// (Kafka: that's an error -> auth fails). The subject alternative names are read only when the
    /// list has `SAN:` rules; an unreadable SAN extension is then an error.
    pub fn map_certificate(&self, cert_der: &[u8]) -> Result<Principal, MappingError> {
        let cert = parse_certificate(cert_der)?;
        let subject = name_to_rfc2253(cert.subject());
        let sans = if self.has_san_rules() {
            subject_alt_names(&cert)?
        } else {
            Vec::new()
        };
        match self.map(&subject, &sans) {
            None => Err(MappingError::NoMatchingRule { subject }),
            Some(name) if name.is_empty() => Err(MappingError::EmptyName { subject }),
            Some(name) => Ok(Principal::user(name)),
        }
    }

    /// The same over an already extracted subject DN string. `SAN:` rules never apply here.
    pub fn map_dn(&self, dn: &str) -> Option<String> {
        self.map(dn, &[])
    }

    fn has_san_rules(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r, Rule::Replace(r) if r.source != Source::Dn))
    }

    fn map(&self, dn: &str, sans: &[(SanKind, String)]) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_owned()),
            Rule::Replace(r) => match r.source {
                Source::Dn => r.apply(dn),
                Source::San(kind) => sans
                    .iter()
                    .filter(|(k, _)| *k == kind)
                    .find_map(|(_, value)| r.apply(value)),
            },
        })
    }
}

impl fmt::Display for PrincipalMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{rule}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for Rule {
    /// Kafka's `Rule.toString()`: the closing `/` is printed only with a flag.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = match self {
            Rule::Default => return f.write_str("DEFAULT"),
            Rule::Replace(r) => r,
        };
        match r.source {
            Source::Dn => f.write_str("RULE:")?,
            Source::San(kind) => write!(f, "SAN:{}:", kind.keyword())?,
        }
        write!(f, "{}/{}", r.pattern, r.replacement)?;
        match r.case {
            Case::Keep => Ok(()),
            Case::Lower => f.write_str("/L"),
            Case::Upper => f.write_str("/U"),
        }
    }
}

impl ReplaceRule {
    /// Kafka's `Rule.apply`: if the pattern matches the whole input, the input with every match
    /// replaced (Java `replaceAll`), then case-mapped.
    fn apply(&self, input: &str) -> Option<String> {
        if !self.whole.is_match(input) {
            return None;
        }
        let out = java_regex::replace(&self.find, &self.template, input, true);
        // Locale.ENGLISH case mapping is Unicode's default full mapping, as Rust's.
        Some(match self.case {
            Case::Keep => out,
            Case::Lower => out.to_lowercase(),
            Case::Upper => out.to_uppercase(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Splitting the rule list: a hand-written equivalent of Kafka's
//   \s*((DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?))\s*(,\s*|$)
// applied with `find()` over the trimmed list, extended with `SAN:TYPE:` in the RULE branch.

struct Entry<'a> {
    /// The rule as Kafka splits it (surrounding whitespace removed).
    text: &'a str,
    kind: EntryKind<'a>,
}

enum EntryKind<'a> {
    Default,
    Rule(RuleParts<'a>),
    /// Kafka's last alternative: anything up to the next comma; valid only when empty.
    Other,
}

struct RuleParts<'a> {
    /// `None` for `RULE:`, the type word for `SAN:TYPE:`.
    san_type: Option<&'a str>,
    pattern: &'a str,
    replacement: &'a str,
    flag: Option<u8>,
    /// Whatever follows the flag before the separator; an error unless empty.
    trailing: &'a str,
}

/// Java's `\s`.
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

fn skip_spaces(text: &str, from: usize) -> usize {
    text[from..]
        .find(|c| !is_java_space(c))
        .map_or(text.len(), |i| from + i)
}

/// `\s*(,\s*|$)` at `at`: where the next rule starts, if a separator is there.
fn separator(text: &str, at: usize) -> Option<usize> {
    let k = skip_spaces(text, at);
    if k == text.len() {
        Some(k)
    } else if text.as_bytes()[k] == b',' {
        Some(skip_spaces(text, k + 1))
    } else {
        None
    }
}

/// The shortest stretch from `from` that is followed by a separator: (its end, the next rule's start).
fn up_to_separator(text: &str, from: usize) -> (usize, usize) {
    let mut j = from;
    loop {
        if let Some(next) = separator(text, j) {
            return (j, next);
        }
        // `separator` matches at the end of the text, so there is a char here.
        j += text[j..].chars().next().map_or(1, char::len_utf8);
    }
}

fn split_rules(text: &str) -> Vec<Entry<'_>> {
    let mut entries = Vec::new();
    let mut pos = skip_spaces(text, 0);
    while pos < text.len() {
        let (entry, next) = next_entry(text, pos);
        if !entry.text.is_empty() {
            entries.push(entry);
        }
        pos = next;
    }
    entries
}

fn next_entry(text: &str, start: usize) -> (Entry<'_>, usize) {
    if text[start..].starts_with("DEFAULT") {
        if let Some(next) = separator(text, start + "DEFAULT".len()) {
            let entry = Entry {
                text: &text[start..start + "DEFAULT".len()],
                kind: EntryKind::Default,
            };
            return (entry, next);
        }
    }
    if let Some((mut parts, end)) = rule_parts(text, start) {
        let (stop, next) = up_to_separator(text, end);
        parts.trailing = &text[end..stop];
        let entry = Entry {
            text: &text[start..stop],
            kind: EntryKind::Rule(parts),
        };
        return (entry, next);
    }
    let (stop, next) = up_to_separator(text, start);
    let entry = Entry {
        text: &text[start..stop],
        kind: EntryKind::Other,
    };
    (entry, next)
}

/// `RULE:pattern/replacement/` or `SAN:TYPE:pattern/replacement/`, then an optional `L`/`U`.
fn rule_parts(text: &str, start: usize) -> Option<(RuleParts<'_>, usize)> {
    let rest = &text[start..];
    let (san_type, body) = if rest.starts_with("RULE:") {
        (None, start + "RULE:".len())
    } else if let Some(after) = rest.strip_prefix("SAN:") {
        let len = after.find(|c: char| !c.is_ascii_alphanumeric())?;
        if len == 0 || !after[len..].starts_with(':') {
            return None;
        }
        (Some(&after[..len]), start + "SAN:".len() + len + 1)
    } else {
        return None;
    };
    let pattern_end = scan_part(text, body)?;
    let replacement_end = scan_part(text, pattern_end + 1)?;
    let mut end = replacement_end + 1;
    let flag = match text.as_bytes().get(end) {
        Some(&f @ (b'L' | b'U')) => {
            end += 1;
            Some(f)
        }
        _ => None,
    };
    let parts = RuleParts {
        san_type,
        pattern: &text[body..pattern_end],
        replacement: &text[pattern_end + 1..replacement_end],
        flag,
        trailing: "",
    };
    Some((parts, end))
}

/// `((\\.|[^\\/])*)/`: the index of the `/` that ends the part starting at `from`.
fn scan_part(text: &str, from: usize) -> Option<usize> {
    let mut chars = text[from..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => return Some(from + i),
            '\\' => match chars.next() {
                Some((_, escaped)) if !java_regex::is_line_terminator(escaped) => {}
                _ => return None,
            },
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Compiling one rule.

fn compile_entry(entry: &Entry<'_>) -> Result<Rule, String> {
    match &entry.kind {
        EntryKind::Default => Ok(Rule::Default),
        EntryKind::Other => Err(explain_other(entry.text)),
        EntryKind::Rule(parts) => compile_rule(parts).map(Rule::Replace),
    }
}

fn explain_other(text: &str) -> String {
    let upper = text.to_ascii_uppercase();
    let miscased = |keyword: &str| upper.starts_with(keyword) && !text.starts_with(keyword);
    if miscased("DEFAULT") || miscased("RULE:") || miscased("SAN:") {
        "keywords are case-sensitive: DEFAULT, RULE: and SAN: are upper case".into()
    } else if text.starts_with("DEFAULT") {
        "DEFAULT takes no pattern or flags".into()
    } else if text.starts_with("RULE:") || text.starts_with("SAN:") {
        "incomplete rule: expected RULE:pattern/replacement/ or SAN:TYPE:pattern/replacement/ \
         (a `/` inside the pattern or replacement is written `\\/`)"
            .into()
    } else {
        "not a rule: expected DEFAULT, RULE:pattern/replacement/[L|U] or \
         SAN:DNS|URI|EMAIL:pattern/replacement/[L|U]"
            .into()
    }
}

fn compile_rule(parts: &RuleParts<'_>) -> Result<ReplaceRule, String> {
    if !parts.trailing.is_empty() {
        return Err(format!(
            "unexpected `{}` after the rule: the only flags are L (lowercase) and U (uppercase), \
             and rules are separated by commas",
            parts.trailing
        ));
    }
    let source = match parts.san_type {
        None => Source::Dn,
        Some("DNS") => Source::San(SanKind::Dns),
        Some("URI") => Source::San(SanKind::Uri),
        Some("EMAIL") => Source::San(SanKind::Email),
        Some(other) => {
            return Err(format!(
                "unknown SAN type `{other}`: expected DNS, URI or EMAIL"
            ))
        }
    };
    let translated = java_regex::translate_java_regex(parts.pattern)?;
    let find = Regex::new(&translated).map_err(|e| java_regex::regex_error(&e))?;
    let whole =
        Regex::new(&format!(r"\A(?:{translated})\z")).map_err(|e| java_regex::regex_error(&e))?;
    // Kafka's SslPrincipalMapper rewrites the replacement before Java reads it (the Kerberos rules
    // do not), so the rewrite stays here and the shared parser sees what Java would.
    let replacement = escape_literal_back_references(parts.replacement, find.captures_len() - 1)?;
    let template = java_regex::parse_replacement(&replacement, &find)?;
    let case = match parts.flag {
        Some(b'L') => Case::Lower,
        Some(b'U') => Case::Upper,
        _ => Case::Keep,
    };
    Ok(ReplaceRule {
        source,
        pattern: parts.pattern.to_owned(),
        replacement: parts.replacement.to_owned(),
        whole,
        find,
        template,
        case,
    })
}

/// Kafka's `escapeLiteralBackReferences` (from Apache NiFi), reproduced exactly: a `$n` whose first
/// digit already names no group gets a `\` so that Java reads it literally. It works on UTF-16 units
/// and, after the first insertion, inserts at positions of the unmodified string — so a second
/// out-of-range reference ends up unescaped and the replacement invalid, in Kafka as here.
fn escape_literal_back_references(unescaped: &str, groups: usize) -> Result<String, String> {
    if groups == 0 {
        return Ok(unescaped.to_owned());
    }
    let original: Vec<u16> = unescaped.encode_utf16().collect();
    let mut value = original.clone();
    let is_digit = |u: u16| (u16::from(b'0')..=u16::from(b'9')).contains(&u);
    let mut i = 0;
    while i < original.len() {
        if original[i] != u16::from(b'$') {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = start
            + original[start..]
                .iter()
                .take_while(|&&u| is_digit(u))
                .count();
        if end == start {
            i += 1;
            continue;
        }
        i = end;
        let digits = String::from_utf16_lossy(&original[start..end]);
        if digits.starts_with('0') {
            continue;
        }
        // Java's Integer.parseInt: more than an i32 throws.
        let mut index: usize = digits
            .parse::<i32>()
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("group reference `${digits}` is too large"))?;
        while index > groups && index >= 10 {
            index /= 10;
        }
        if index > groups {
            value.insert(start - 1, u16::from(b'\\'));
        }
    }
    Ok(String::from_utf16_lossy(&value))
}

// ---------------------------------------------------------------------------------------------
// Certificates.

fn parse_certificate(cert_der: &[u8]) -> Result<X509Certificate<'_>, MappingError> {
    let (rest, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| MappingError::Certificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(MappingError::Certificate(format!(
            "{} bytes after the certificate",
            rest.len()
        )));
    }
    Ok(cert)
}

/// The subject DN as Java's `X500Principal.getName()` prints it (RFC 2253): RDNs from the last in the
/// certificate to the first (`CN=..,OU=..,O=..`), multi-valued RDNs joined by `+`.
pub fn subject_dn_rfc2253(cert_der: &[u8]) -> Result<String, MappingError> {
    Ok(name_to_rfc2253(parse_certificate(cert_der)?.subject()))
}

fn subject_alt_names(cert: &X509Certificate<'_>) -> Result<Vec<(SanKind, String)>, MappingError> {
    let ext = cert
        .subject_alternative_name()
        .map_err(|e| MappingError::Certificate(format!("subject alternative names: {e}")))?;
    let Some(ext) = ext else {
        return Ok(Vec::new());
    };
    Ok(ext
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(s) => Some((SanKind::Dns, (*s).to_owned())),
            GeneralName::URI(s) => Some((SanKind::Uri, (*s).to_owned())),
            GeneralName::RFC822Name(s) => Some((SanKind::Email, (*s).to_owned())),
            _ => None,
        })
        .collect())
}

/// Java `X500Name.getRFC2253Name()`.
fn name_to_rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| rdn.iter().map(ava_to_rfc2253).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// Java `AVA.toRFC2253String()`: a keyword and escaped text for the types RFC 2253 names and the
/// string types Java decodes; otherwise the dotted OID and/or `#` + hex of the value's DER.
fn ava_to_rfc2253(ava: &AttributeTypeAndValue<'_>) -> String {
    let oid = ava.attr_type().to_id_string();
    let value = ava.attr_value();
    let mut out = String::new();
    match rfc2253_keyword(&oid) {
        Some(keyword) if is_java_string(value) => {
            out.push_str(keyword);
            out.push('=');
            // Java decodes every string type's bytes as UTF-8 here, even BMPString.
            escape_rfc2253_value(&String::from_utf8_lossy(value.data), &mut out);
        }
        keyword => {
            out.push_str(keyword.unwrap_or(&oid));
            out.push_str("=#");
            for b in der_encoding(value) {
                out.push_str(&format!("{b:02x}"));
            }
        }
    }
    out
}

/// The attribute types Java prints by keyword in RFC 2253 form; all others print as OIDs.
fn rfc2253_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// Java `AVA.isDerString(value, false)`: universal, primitive PrintableString, T61String, IA5String,
/// GeneralString, BMPString or UTF8String.
fn is_java_string(value: &x509_parser::asn1_rs::Any<'_>) -> bool {
    use x509_parser::asn1_rs::{Class, Tag};
    value.header.class() == Class::Universal
        && value.header.is_primitive()
        && [
            Tag::PrintableString,
            Tag::T61String,
            Tag::Ia5String,
            Tag::GeneralString,
            Tag::BmpString,
            Tag::Utf8String,
        ]
        .contains(&value.tag())
}

/// The value re-encoded as DER (identifier, definite length, content), as Java's `toByteArray()`.
fn der_encoding(value: &x509_parser::asn1_rs::Any<'_>) -> Vec<u8> {
    let header = &value.header;
    let mut out = Vec::with_capacity(value.data.len() + 8);
    let lead = ((header.class() as u8) << 6) | if header.is_constructed() { 0x20 } else { 0 };
    let tag = header.tag().0;
    if tag < 31 {
        out.push(lead | tag as u8);
    } else {
        out.push(lead | 0x1f);
        let mut base128 = vec![(tag & 0x7f) as u8];
        let mut rest = tag >> 7;
        while rest > 0 {
            base128.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        out.extend(base128.iter().rev());
    }
    let len = value.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value.data);
    out
}

/// Java's RFC 2253 value escaping: `\` before each of `,=+<>#;"\` anywhere (Java escapes `=` and
/// `#` everywhere, not only a leading `#`), NUL as `\00`, then `\` before each leading or trailing
/// space or CR. Other characters, non-ASCII included, are kept as they are.
fn escape_rfc2253_value(value: &str, out: &mut String) {
    let mut escaped: Vec<char> = Vec::with_capacity(value.len());
    for c in value.chars() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\0' => escaped.extend(['\\', '0', '0']),
            _ => escaped.push(c),
        }
    }
    let is_blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = escaped.iter().take_while(|c| is_blank(c)).count();
    let trail = escaped.len() - escaped.iter().rev().take_while(|c| is_blank(c)).count();
    for (i, c) in escaped.into_iter().enumerate() {
        if i < lead || i >= trail {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests;
