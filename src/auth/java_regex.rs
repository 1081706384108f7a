//! Java regular expressions and replacement strings (as Kafka's rule syntaxes use them) translated for the regex crate, or refused when the crate cannot match them the same way.
//!
//! Both of Kafka's principal rule languages, `ssl.principal.mapping.rules` ([`super::principal`])
//! and `sasl.kerberos.principal.to.local.rules` ([`super::kerberos_name`]), embed Java regexes and
//! `Matcher.replaceAll` replacement strings. One translation serves both, so that a pattern means
//! the same in either list.
//!
//! The crate has no backtracking, so matching time is linear in the input whatever the pattern.
//! The common dialect is the same; where the two engines read the same text differently it is
//! rewritten: `\w \d \s` (and negations, and `\p{Alpha}`-style POSIX classes) are ASCII-only as in
//! Java, `\v` is Java's vertical whitespace, `\<` `\>` are literal, `\Q...\E` quotes, `[:` inside a
//! class is literal, and `.` stops at all of Java's line terminators unless the pattern sets
//! `(?s)`. Java features the crate lacks (look-around, back-references, possessive quantifiers,
//! `(?U)`, `#` comments) are refused rather than matched differently; so are escapes and flags the
//! crate rejects on its own. Left as is: `(?i)` folds case by Unicode rules (Java: ASCII only),
//! `\b` uses the crate's Unicode word characters, `$` does not match before a final line
//! terminator, and `(?m)` knows only `\n` as a line end.

use std::collections::HashMap;

use regex::Regex;

/// Characters Java's `.` does not match (without DOTALL).
pub(crate) fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Java's `.` without DOTALL, as a crate class: every char but the line terminators above. Without
/// it the crate's `.` (which stops only at `\n`) would let `.*` run over a `\r` or U+2028 where
/// Java's stops.
const JAVA_DOT: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";

/// The crate's messages span several lines (pattern, caret, reason); rule errors are one line each.
pub(crate) fn regex_error(e: &regex::Error) -> String {
    // The crate words this one as an internal limit; say what it means for the rule.
    if let regex::Error::CompiledTooBig(limit) = e {
        return format!("the regular expression compiles to more than {limit} bytes");
    }
    let text = e.to_string();
    let reason = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or("").trim());
    format!("invalid regular expression: {reason}")
}

/// Rewrites a Java regex where the `regex` crate would read the same text differently (see the
/// module docs). Everything else passes through and is left to the crate to accept or reject.
pub(crate) fn translate_java_regex(java: &str) -> Result<String, String> {
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::with_capacity(java.len() + 16);
    let mut class_depth = 0usize;
    let mut comments_mode = false;
    let mut saw_hash = false;
    // Whether the previous token was a quantifier (`*`, `+`, `?`, `{n,m}`), to spot Java's possessive
    // `a*+`, which the crate would read as a repeated repetition.
    let mut after_quantifier = false;
    let mut in_braces = false;
    // With a DOTALL flag anywhere, `.` keeps the crate's meaning (which honours `(?s)`) rather
    // than guessing the flag's scope.
    let java_dot = !sets_dot_flags(java);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        let follows_quantifier = std::mem::take(&mut after_quantifier);
        match c {
            '+' if class_depth == 0 && follows_quantifier => {
                return Err(
                    "possessive quantifiers (`*+`, `++`, `?+`, `{n}+`) are not supported".into(),
                );
            }
            '*' | '+' | '?' if class_depth == 0 => {
                after_quantifier = true;
                out.push(c);
            }
            '{' if class_depth == 0 => {
                in_braces = true;
                out.push(c);
            }
            '}' if class_depth == 0 && in_braces => {
                in_braces = false;
                after_quantifier = true;
                out.push(c);
            }
            '\\' => {
                let Some(&next) = chars.get(i) else {
                    return Err("the pattern ends with a lone `\\`".into());
                };
                i += 1;
                let in_class = class_depth > 0;
                match next {
                    'w' | 'W' | 'd' | 'D' | 's' | 'S' => {
                        let name = match next.to_ascii_lowercase() {
                            'w' => "word",
                            'd' => "digit",
                            _ => "space",
                        };
                        push_ascii_class(&mut out, name, next.is_ascii_uppercase(), in_class);
                    }
                    'p' | 'P' if chars.get(i) == Some(&'{') => {
                        let close = chars[i..].iter().position(|&c| c == '}');
                        let name: Option<String> =
                            close.map(|n| chars[i + 1..i + n].iter().collect());
                        match (close, name.as_deref().and_then(java_posix_class)) {
                            (Some(n), Some(posix)) => {
                                push_ascii_class(&mut out, posix, next == 'P', in_class);
                                i += n + 1;
                            }
                            // Not a POSIX name (`\p{L}`, `\p{Greek}`): passed through whole, so
                            // that its braces are not read as a counted repetition before a `+`.
                            (Some(n), None) => {
                                out.push('\\');
                                out.push(next);
                                out.extend(&chars[i..=i + n]);
                                i += n + 1;
                            }
                            (None, _) => {
                                out.push('\\');
                                out.push(next);
                            }
                        }
                    }
                    // `\x{2028}`: the same in both dialects; the braces are not a repetition.
                    'x' if chars.get(i) == Some(&'{') => {
                        let close = chars[i..].iter().position(|&c| c == '}');
                        let end = close.map_or(i, |n| i + n + 1);
                        out.push_str("\\x");
                        out.extend(&chars[i..end]);
                        i = end;
                    }
                    // Java: vertical whitespace. The crate: U+000B alone.
                    'v' => {
                        let set = r"\n\x0B\f\r\x{85}\x{2028}\x{2029}";
                        if in_class {
                            out.push_str(set);
                        } else {
                            out.push('[');
                            out.push_str(set);
                            out.push(']');
                        }
                    }
                    // Java: literal. The crate: word-boundary assertions.
                    '<' | '>' => out.push(next),
                    'Q' => {
                        let rest: String = chars[i..].iter().collect();
                        let (quoted, consumed) = match rest.find("\\E") {
                            Some(end) => (&rest[..end], rest[..end].chars().count() + 2),
                            None => (rest.as_str(), rest.chars().count()),
                        };
                        out.push_str(&regex::escape(quoted));
                        i += consumed;
                    }
                    _ => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            '[' => {
                if class_depth > 0 && chars.get(i) == Some(&':') {
                    // Java: a nested class starting with `:`. The crate: a POSIX class `[:alpha:]`.
                    out.push_str(r"[\:");
                    i += 1;
                } else {
                    out.push('[');
                }
                class_depth += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` first in a class is literal in both dialects.
                if chars.get(i) == Some(&']') {
                    out.push(']');
                    i += 1;
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
            }
            '(' if class_depth == 0 && chars.get(i) == Some(&'?') => {
                let flags: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic() || **c == '-')
                    .collect();
                let after = chars.get(i + 1 + flags.chars().count());
                if !flags.is_empty() && matches!(after, Some(')' | ':')) {
                    if flags.contains('U') {
                        return Err("the (?U) flag is not supported (in the `regex` crate it \
                                    swaps greediness)"
                            .into());
                    }
                    if flags.split('-').next().is_some_and(|on| on.contains('x')) {
                        comments_mode = true;
                    }
                }
                out.push('(');
            }
            '#' if class_depth == 0 => {
                saw_hash = true;
                out.push('#');
            }
            '.' if class_depth == 0 && java_dot => out.push_str(JAVA_DOT),
            _ => out.push(c),
        }
    }
    if comments_mode && saw_hash {
        return Err("`#` comments in (?x) patterns are not supported".into());
    }
    Ok(out)
}

/// Whether an inline flag group (`(?s)`, `(?i-s:`) turns DOTALL on or off.
fn sets_dot_flags(java: &str) -> bool {
    java.match_indices("(?").any(|(at, _)| {
        let rest = &java[at + 2..];
        let flags_len = rest
            .find(|c: char| !(c.is_ascii_alphabetic() || c == '-'))
            .unwrap_or(rest.len());
        let flags = &rest[..flags_len];
        matches!(rest[flags_len..].chars().next(), Some(')' | ':')) && flags.contains('s')
    })
}

fn push_ascii_class(out: &mut String, name: &str, negated: bool, in_class: bool) {
    let caret = if negated { "^" } else { "" };
    if in_class {
        out.push_str(&format!("[:{caret}{name}:]"));
    } else {
        out.push_str(&format!("[[:{caret}{name}:]]"));
    }
}

/// Java's ASCII-only POSIX classes (`\p{Alpha}`), by their name in the crate.
fn java_posix_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "Lower" => "lower",
        "Upper" => "upper",
        "ASCII" => "ascii",
        "Alpha" => "alpha",
        "Digit" => "digit",
        "Alnum" => "alnum",
        "Punct" => "punct",
        "Graph" => "graph",
        "Print" => "print",
        "Blank" => "blank",
        "Cntrl" => "cntrl",
        "XDigit" => "xdigit",
        "Space" => "space",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Replacement strings.

/// A parsed replacement string: text, and references to the pattern's groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(String),
    Group(usize),
}

/// Java's `Matcher.appendReplacement` reading of `replacement` for matches of `pattern`, done
/// once: every case where Java would throw on a match is an error now. The text is read as Java
/// receives it; a caller whose Kafka code rewrites it first (the SSL rules'
/// `escapeLiteralBackReferences`) does that before.
pub(crate) fn parse_replacement(replacement: &str, pattern: &Regex) -> Result<Vec<Piece>, String> {
    let groups = pattern.captures_len() - 1;
    let names: HashMap<&str, usize> = pattern
        .capture_names()
        .enumerate()
        .filter_map(|(i, name)| Some((name?, i)))
        .collect();
    let chars: Vec<char> = replacement.chars().collect();
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' => {
                let escaped = chars
                    .get(i)
                    .ok_or("the replacement ends with a lone `\\`")?;
                literal.push(*escaped);
                i += 1;
            }
            '$' => {
                let next = *chars
                    .get(i)
                    .ok_or("the replacement ends with `$`; write `\\$` for a literal dollar")?;
                let group = if next == '{' {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .collect();
                    let close = i + 1 + name.len();
                    if name.is_empty() || chars.get(close) != Some(&'}') {
                        return Err("`${` in the replacement must be followed by a group name \
                                    and `}`"
                            .into());
                    }
                    i = close + 1;
                    *names
                        .get(name.as_str())
                        .ok_or_else(|| format!("the pattern has no group named `{name}`"))?
                } else {
                    let first = next.to_digit(10).ok_or(
                        "`$` in the replacement must be followed by a group number or `{name}`; \
                         write `\\$` for a literal dollar",
                    )?;
                    i += 1;
                    // Java: the first digit always belongs to the reference; later digits join it
                    // while the number still names a group, so `$1x` and `$10` (one group) are
                    // group 1 then text.
                    let mut group = first as usize;
                    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                        let longer = group * 10 + d as usize;
                        if longer > groups {
                            break;
                        }
                        group = longer;
                        i += 1;
                    }
                    if group > groups {
                        return Err(format!(
                            "the replacement refers to group {group}, but the pattern has {groups}"
                        ));
                    }
                    group
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Group(group));
            }
            _ => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// Java's `Matcher.replaceAll` (`all`) or `replaceFirst`: `input` with every (or the first) match
/// of `pattern` replaced by `template`, which [`parse_replacement`] made for this pattern.
pub(crate) fn replace(pattern: &Regex, template: &[Piece], input: &str, all: bool) -> String {
    let mut out = String::with_capacity(input.len());
    let mut copied = 0;
    let mut at = 0;
    // Java's find loop: after an empty match the next search starts one char later, and an empty
    // match right after a non-empty one counts (the crate's iterators skip that one, so `.*` would
    // give one replacement where Java gives two).
    while at <= input.len() {
        let Some(caps) = pattern.captures_at(input, at) else {
            break;
        };
        let Some(m) = caps.get(0) else {
            break;
        };
        out.push_str(&input[copied..m.start()]);
        for piece in template {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                // A group that did not take part inserts nothing, as in Java.
                Piece::Group(g) => out.push_str(caps.get(*g).map_or("", |c| c.as_str())),
            }
        }
        copied = m.end();
        if !all {
            break;
        }
        at = if m.is_empty() {
            m.end() + input[m.end()..].chars().next().map_or(1, char::len_utf8)
        } else {
            m.end()
        };
    }
    out.push_str(&input[copied..]);
    out
}

#[cfg(test)]
#[path = "java_regex_tests.rs"]
mod tests;
