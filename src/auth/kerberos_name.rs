//! Kerberos principal names and Kafka's principal-to-local rules (sasl.kerberos.principal.to.local.rules), applied after a GSSAPI login.
//!
//! A port of Kafka's `KerberosName`, `KerberosShortNamer` and `KerberosRule`
//! (`org.apache.kafka.common.security.kerberos`), so that a rule list copied from a broker's
//! `server.properties` gives every Kerberos client the same `User:<name>` here as on the broker.
//!
//! # Names
//!
//! [`KerberosName::parse`] reads `primary[/instance]@REALM`. A string without `@` is a bare name
//! (all of it the primary, even if it has `/`); one with `@` must have exactly one `@`, at most one
//! `/` before it and none after it, or it is malformed.
//!
//! # Rules
//!
//! The list is tried in order and the first rule that gives a name wins; when none does, the
//! client is refused. A name with neither instance nor realm is returned as it is, without rules.
//! Each list entry is exactly one rule (Kafka's config splits the property at commas before the
//! rules are parsed, and rejects any text after a rule, so two rules in one entry are an error):
//!
//! - `DEFAULT` — a name in the default realm maps to its primary (`alice/host@REALM` → `alice`);
//!   a name in any other realm is left to the next rule.
//! - `RULE:[n:format](match)s/pattern/replacement/g/L` — applies to names with `n` components
//!   (1 for `alice@R`, 2 for `alice/host@R`). `format` builds a string where `$0` is the realm and
//!   `$1`, `$2` the components. The optional `(match)` regex must match that whole string (Java
//!   `matches()`) for the rule to apply. The optional `s/pattern/replacement/` then replaces the
//!   first match of `pattern` (every match with `g`), where `$1`, `${name}` insert groups and `\x`
//!   is a literal `x`, as in Java's `Matcher.replaceAll`. A final `/L` or `/U` lowercases or
//!   uppercases the result. The match regex cannot contain `)` and the substitution parts cannot
//!   contain `/`: Kafka's rule grammar ends them at the first one.
//!
//! A rule whose result still contains `/` or `@` is an error for that name: evaluation stops
//! there, later rules are not tried (Kafka: `NoMatchingRule`, "Non-simple name").
//!
//! # Differences from Kafka
//!
//! - Problems are found when the rules are parsed, not when a client connects: a `format` with a
//!   `$` not followed by digits, or `$n` beyond `n` components, and a replacement Java would throw
//!   on (`$` not followed by a group, a trailing `\`, a group the pattern does not have) make the
//!   rule list invalid. Kafka accepts them and fails each login the rule is tried on (or never
//!   notices, when the rule never applies). This is the policy of the SSL mapping rules
//!   ([`super::principal`]).
//! - An empty rule list means `["DEFAULT"]`. To Kafka an explicitly empty list means no rules (every
//!   name with a realm is refused); only an absent setting means `DEFAULT`.
//! - A name with an instance but no realm (only constructible by hand, not by `parse`) gives `$0` =
//!   the empty string; Java would insert the text `null`.
//!
//! # Regular expressions
//!
//! Rule regexes are Java regexes run on the `regex` crate, translated by the code the SSL mapping
//! rules use too (`auth::java_regex`): `\w \d \s` (and negations, and `\p{Alpha}`-style POSIX
//! classes) are ASCII-only as in Java, `\v` is Java's vertical whitespace, `\<` `\>` are literal,
//! `\Q...\E` quotes, and `[:` inside a class is literal. `.` stops at all of Java's line
//! terminators (`\n`, `\r`, U+0085, U+2028, U+2029) unless the pattern sets `(?s)`. Java features
//! the crate lacks (look-around, back-references, possessive quantifiers, `(?U)`, `(?d)`, `\R`,
//! `\h`) make the rule invalid rather than match differently. Left as is: `(?i)` folds case by
//! Unicode rules (Java: ASCII only, so `(?i)s` matches `ſ` here and not there), `\b` uses the
//! crate's Unicode word characters, `$` does not match before a final line terminator, and `(?m)`
//! knows only `\n` as a line end. The crate does not backtrack, so matching time is linear in the
//! name whatever the pattern; each compiled regex is also capped in size.
//!
//! Two Java quirks are not reproduced: an empty match next to a character outside the BMP lands
//! between its UTF-16 surrogates in Java (`s/x*/-/g` on `😀` splits the emoji into two `?`);
//! here it steps over the whole character. And Java picks a Greek final sigma (`ς`) with word
//! boundaries, Rust by Unicode's Final_Sigma context, so `ΟΔΟΣ-R` lowercases to `οδοσ-r` in
//! Java and `οδος-r` here.

use std::fmt;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

use super::java_regex::{self, Piece};

/// Ceiling on one rule regex's compiled program, well under the crate's default: rule regexes are
/// a few dozen characters, and a nested count such as `(?:a{1000}){1000}` should be refused at
/// startup, not held in memory for the life of the process.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Kafka's `RULE_PARSER`, anchored at the start as `lookingAt()` is. Kafka's `\d` is ASCII-only,
/// hence `[0-9]`. Every optional part is greedy and delimited by a character it cannot contain, so
/// the leftmost-first match here ends where Java's backtracking match does.
static RULE_PARSER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\A(?:(?P<default>DEFAULT)|RULE:\[(?P<n>[0-9]*):(?P<format>[^\]]*)\]",
        r"(?:\((?P<match>[^)]*)\))?",
        r"(?:s/(?P<from>[^/]*)/(?P<to>[^/]*)/(?P<g>g)?)?",
        r"/?(?P<case>L|U)?)",
    ))
    .expect("the rule grammar is a valid regex")
});

/// A Kerberos principal name, `primary[/instance][@realm]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KerberosName {
    pub primary: String,
    pub instance: Option<String>,
    pub realm: Option<String>,
}

impl KerberosName {
    /// Kafka's `KerberosName.parse`: the whole string against `([^/@]*)(/([^/@]*))?@([^/@]*)`;
    /// without an `@` it is a bare name, with one it must fit that pattern.
    pub fn parse(s: &str) -> Result<KerberosName, NameError> {
        let Some((before, realm)) = s.split_once('@') else {
            return Ok(KerberosName {
                primary: s.to_owned(),
                instance: None,
                realm: None,
            });
        };
        let malformed = || NameError::Malformed(s.to_owned());
        if realm.contains(['/', '@']) {
            return Err(malformed());
        }
        let (primary, instance) = match before.split_once('/') {
            Some((_, instance)) if instance.contains('/') => return Err(malformed()),
            Some((primary, instance)) => (primary, Some(instance.to_owned())),
            None => (before, None),
        };
        Ok(KerberosName {
            primary: primary.to_owned(),
            instance,
            realm: Some(realm.to_owned()),
        })
    }
}

impl fmt::Display for KerberosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.primary)?;
        if let Some(instance) = &self.instance {
            write!(f, "/{instance}")?;
        }
        if let Some(realm) = &self.realm {
            write!(f, "@{realm}")?;
        }
        Ok(())
    }
}

/// Why a Kerberos name has no local name. Names are quoted and escaped (`{:?}`): they come from
/// the network and may hold control characters that must not break a log line.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum NameError {
    /// More than one `@`, a `/` in the realm, or more than one `/` before the `@`.
    #[error("malformed Kerberos name {0:?}")]
    Malformed(String),
    /// No rule gave a name (e.g. `DEFAULT` only, and a foreign realm).
    #[error("no rules apply to {name:?}, rules {rules}")]
    NoMatchingRule { name: String, rules: String },
    /// The first rule that applied left a `/` or `@` in the result.
    #[error("non-simple name {result:?} after auth_to_local rule {rule}")]
    NonSimpleName { result: String, rule: String },
}

/// Kafka's `KerberosShortNamer`: the parsed rule list and the realm `DEFAULT` accepts.
#[derive(Debug, Clone)]
pub struct ShortNamer {
    default_realm: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Explicit(Box<ExplicitRule>),
}

#[derive(Debug, Clone)]
struct ExplicitRule {
    /// Java's `int` (so at most `i32::MAX`); only 1 and 2 can ever apply.
    components: usize,
    /// As written, for `Display`.
    format_text: String,
    format: Vec<FormatPiece>,
    /// The match regex as written, and `\A(?:...)\z` for Java's `matches()`.
    matcher: Option<(String, Regex)>,
    substitution: Option<Substitution>,
    case: Case,
}

#[derive(Debug, Clone)]
struct Substitution {
    /// As written, for `Display`.
    pattern: String,
    replacement: String,
    find: Regex,
    template: Vec<Piece>,
    global: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// A parsed `format`: text, and `$n` parameters (0 = realm, 1.. = components).
#[derive(Debug, Clone, PartialEq, Eq)]
enum FormatPiece {
    Literal(String),
    Param(usize),
}

impl ShortNamer {
    /// `rules` as in Kafka's config (default when empty: ["DEFAULT"]); every unparseable rule is reported, all at once.
    ///
    /// Each error names the rule by its 1-based position and text, then the reason.
    pub fn new(default_realm: &str, rules: &[String]) -> Result<ShortNamer, Vec<String>> {
        let mut parsed = Vec::with_capacity(rules.len().max(1));
        let mut errors = Vec::new();
        for (i, text) in rules.iter().enumerate() {
            match parse_rule(text) {
                Ok(rule) => parsed.push(rule),
                Err(reason) => errors.push(format!(
                    "rule {} `{}`: {reason}",
                    i + 1,
                    text.escape_debug()
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if parsed.is_empty() {
            parsed.push(Rule::Default);
        }
        Ok(ShortNamer {
            default_realm: default_realm.to_owned(),
            rules: parsed,
        })
    }

    /// The local (short) name, or why no rule applied.
    pub fn short_name(&self, name: &KerberosName) -> Result<String, NameError> {
        let realm = name.realm.as_deref();
        let components: Vec<&str> = match (&name.instance, realm) {
            // Already simple: Kafka returns it untouched, without consulting the rules.
            (None, None) => return Ok(name.primary.clone()),
            (None, Some(_)) => vec![name.primary.as_str()],
            (Some(instance), _) => vec![name.primary.as_str(), instance.as_str()],
        };
        for rule in &self.rules {
            if let Some(short) = rule.apply(&self.default_realm, realm, &components)? {
                return Ok(short);
            }
        }
        Err(NameError::NoMatchingRule {
            name: name.to_string(),
            rules: self.rules_text(),
        })
    }

    /// Kafka's `List.toString()` of the rules: `[RULE:..., DEFAULT]`.
    fn rules_text(&self) -> String {
        let texts: Vec<String> = self.rules.iter().map(Rule::to_string).collect();
        format!("[{}]", texts.join(", "))
    }
}

impl fmt::Display for ShortNamer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KerberosShortNamer(principalToLocalRules = {})",
            self.rules_text()
        )
    }
}

impl Rule {
    /// Kafka's `KerberosRule.apply`: `Ok(None)` when the rule does not apply to this name.
    fn apply(
        &self,
        default_realm: &str,
        realm: Option<&str>,
        components: &[&str],
    ) -> Result<Option<String>, NameError> {
        let (result, case) = match self {
            Rule::Default => match (realm, components.first()) {
                (Some(realm), Some(primary)) if realm == default_realm => {
                    ((*primary).to_owned(), Case::Keep)
                }
                _ => return Ok(None),
            },
            Rule::Explicit(rule) => match rule.apply(realm, components) {
                Some(result) => (result, rule.case),
                None => return Ok(None),
            },
        };
        // Checked before the case mapping, as Kafka does; no case mapping produces `/` or `@`.
        if result.contains(['/', '@']) {
            return Err(NameError::NonSimpleName {
                result,
                rule: self.to_string(),
            });
        }
        // Kafka maps case with Locale.ENGLISH, i.e. Unicode's default full mappings, as Rust does.
        Ok(Some(match case {
            Case::Keep => result,
            Case::Lower => result.to_lowercase(),
            Case::Upper => result.to_uppercase(),
        }))
    }
}

impl ExplicitRule {
    /// Format, match, substitute; the non-simple check and case mapping are the caller's.
    fn apply(&self, realm: Option<&str>, components: &[&str]) -> Option<String> {
        if components.len() != self.components {
            return None;
        }
        let mut base = String::new();
        for piece in &self.format {
            match piece {
                FormatPiece::Literal(text) => base.push_str(text),
                FormatPiece::Param(0) => base.push_str(realm.unwrap_or("")),
                // Parsing checked every index against the component count, which equals
                // `components.len()` here, so the fallback is never taken.
                FormatPiece::Param(n) => {
                    base.push_str(components.get(n - 1).copied().unwrap_or(""));
                }
            }
        }
        if let Some((_, matcher)) = &self.matcher {
            if !matcher.is_match(&base) {
                return None;
            }
        }
        Some(match &self.substitution {
            None => base,
            Some(sub) => sub.apply(&base),
        })
    }
}

impl Substitution {
    /// Java's `Matcher.replaceFirst` / `replaceAll`.
    fn apply(&self, input: &str) -> String {
        java_regex::replace(&self.find, &self.template, input, self.global)
    }
}

impl fmt::Display for Rule {
    /// Kafka's `KerberosRule.toString()`, which prints the parsed parts, not the text as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match self {
            Rule::Default => return f.write_str("DEFAULT"),
            Rule::Explicit(rule) => rule,
        };
        write!(f, "RULE:[{}:{}]", rule.components, rule.format_text)?;
        if let Some((text, _)) = &rule.matcher {
            write!(f, "({text})")?;
        }
        if let Some(sub) = &rule.substitution {
            write!(f, "s/{}/{}/", sub.pattern, sub.replacement)?;
            if sub.global {
                f.write_str("g")?;
            }
        }
        match rule.case {
            Case::Keep => Ok(()),
            Case::Lower => f.write_str("/L"),
            Case::Upper => f.write_str("/U"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing one rule.

fn parse_rule(text: &str) -> Result<Rule, String> {
    let Some(caps) = RULE_PARSER.captures(text) else {
        return Err(explain_unparseable(text));
    };
    let end = caps.get(0).map_or(0, |m| m.end());
    if end != text.len() {
        return Err(format!(
            "unmatched substring `{}` (each list entry is one rule; the flags are `g` after the \
             replacement, then `/L` or `/U`)",
            text[end..].escape_debug()
        ));
    }
    if caps.name("default").is_some() {
        return Ok(Rule::Default);
    }
    let part = |name: &str| caps.name(name).map(|m| m.as_str());
    let n = part("n").unwrap_or("");
    let components = parse_java_int(n)
        .ok_or_else(|| format!("the component count `{n}` in `[n:format]` is not a number"))?;
    let format_text = part("format").unwrap_or("").to_owned();
    let format = parse_format(&format_text)?;
    check_format_indices(&format, components.saturating_add(1), &format_text)?;
    let matcher = match part("match") {
        None => None,
        Some(pattern) => {
            let whole = compile_whole(pattern).map_err(|e| format!("match regex: {e}"))?;
            Some((pattern.to_owned(), whole))
        }
    };
    let substitution = match (part("from"), part("to")) {
        (Some(pattern), Some(replacement)) => Some(
            compile_substitution(pattern, replacement, part("g").is_some())
                .map_err(|e| format!("substitution: {e}"))?,
        ),
        _ => None,
    };
    let case = match part("case") {
        Some("L") => Case::Lower,
        Some("U") => Case::Upper,
        _ => Case::Keep,
    };
    Ok(Rule::Explicit(Box::new(ExplicitRule {
        components,
        format_text,
        format,
        matcher,
        substitution,
        case,
    })))
}

/// Kafka only says "Invalid rule"; say what the start of the text should have been.
fn explain_unparseable(text: &str) -> String {
    let miscased = |keyword: &str| {
        text.get(..keyword.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(keyword) && start != keyword)
    };
    if miscased("DEFAULT") || miscased("RULE:") {
        "keywords are case-sensitive: DEFAULT and RULE: are upper case".into()
    } else if text.starts_with("RULE:") {
        "expected `RULE:[n:format]`: a `[`, the component count, `:`, the format and a `]`".into()
    } else {
        "not a rule: expected DEFAULT or RULE:[n:format](regex)s/pattern/replacement/[g][/L|/U]"
            .into()
    }
}

/// Java's `Integer.parseInt` over the grammar's ASCII digits: empty or beyond `i32` is an error.
fn parse_java_int(digits: &str) -> Option<usize> {
    digits
        .parse::<i32>()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
}

/// Kafka's `replaceParameters` scan of a format (`([^$]*)(\$(\d*))?` repeated): a `$` must be
/// followed by ASCII digits that fit an `int`.
fn parse_format(format: &str) -> Result<Vec<FormatPiece>, String> {
    let mut pieces = Vec::new();
    let mut rest = format;
    while !rest.is_empty() {
        let (literal, after) = rest.split_once('$').unwrap_or((rest, ""));
        if !literal.is_empty() {
            pieces.push(FormatPiece::Literal(literal.to_owned()));
        }
        if literal.len() == rest.len() {
            break;
        }
        let digits_len = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let digits = &after[..digits_len];
        let index = parse_java_int(digits)
            .ok_or_else(|| format!("bad format in username mapping in `{digits}`"))?;
        pieces.push(FormatPiece::Param(index));
        rest = &after[digits_len..];
    }
    Ok(pieces)
}

/// Kafka's range check, done once: `$n` must name one of `param_count` parameters.
fn check_format_indices(
    pieces: &[FormatPiece],
    param_count: usize,
    format: &str,
) -> Result<(), String> {
    for piece in pieces {
        if let FormatPiece::Param(n) = piece {
            if *n >= param_count {
                return Err(format!(
                    "index {n} from `{format}` is outside of the valid range 0 to {}",
                    param_count as i64 - 1
                ));
            }
        }
    }
    Ok(())
}

/// Kafka's `KerberosRule.replaceParameters`, whole, as its own test exercises it.
#[cfg(test)]
fn replace_parameters(format: &str, params: &[&str]) -> Result<String, String> {
    let pieces = parse_format(format)?;
    check_format_indices(&pieces, params.len(), format)?;
    let mut out = String::new();
    for piece in &pieces {
        match piece {
            FormatPiece::Literal(text) => out.push_str(text),
            FormatPiece::Param(n) => out.push_str(params.get(*n).copied().unwrap_or("")),
        }
    }
    Ok(out)
}

fn build_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| java_regex::regex_error(&e))
}

/// The regex for Java's `matches()`. The bare pattern is compiled first so that a pattern which
/// is broken on its own (say, ending in `\`) cannot pair up with the wrapper's `)`.
fn compile_whole(java: &str) -> Result<Regex, String> {
    let translated = java_regex::translate_java_regex(java)?;
    build_regex(&translated)?;
    build_regex(&format!(r"\A(?:{translated})\z"))
}

fn compile_substitution(
    java: &str,
    replacement: &str,
    global: bool,
) -> Result<Substitution, String> {
    let find = build_regex(&java_regex::translate_java_regex(java)?)?;
    // Kafka hands the replacement to Java as written: unlike the SSL mapping rules, there is no
    // escaping of out-of-range `$n` first.
    let template = java_regex::parse_replacement(replacement, &find)?;
    Ok(Substitution {
        pattern: java.to_owned(),
        replacement: replacement.to_owned(),
        find,
        template,
        global,
    })
}

#[cfg(test)]
#[path = "kerberos_name_tests.rs"]
mod tests;
