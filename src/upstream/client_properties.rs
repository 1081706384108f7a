//! A Kafka client properties file (`--command-config`, as `kafka-acls.sh` takes it) read into the
//! settings the gateway's own upstream connection code uses: security protocol, TLS files, SASL login.
//!
//! Operators already have these files for Kafka's command-line tools, so the gateway's admin
//! commands take them unchanged. Only what the gateway's connection code can honour is accepted:
//!
//! | key                                   | accepted values                                       |
//! |---------------------------------------|-------------------------------------------------------|
//! | `security.protocol`                   | PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL    |
//! | `sasl.mechanism`                      | PLAIN, SCRAM-SHA-256, SCRAM-SHA-512                   |
//! | `sasl.jaas.config`                    | one `ScramLoginModule` / `PlainLoginModule` with `username` and `password` |
//! | `ssl.truststore.location` / `.type`   | a PEM file of CA certificates / `PEM`                  |
//! | `ssl.keystore.location` / `.type`     | a PEM file with the private key and its certificate chain / `PEM` |
//! | `ssl.endpoint.identification.algorithm` | `https` (Kafka's default: the broker's name is verified) |
//!
//! Any other key, and any other value, is an error rather than silently ignored: a setting the
//! operator relies on (`ssl.key.password`, GSSAPI, a JKS store) would otherwise be dropped and the
//! connection fail later with a less helpful message, or succeed with less protection than asked.
//! Every problem is reported at once, with its line. Values are quoted back only for the keys whose
//! values are names (`security.protocol`, `sasl.mechanism`, the store types), never for an unknown
//! key or `sasl.jaas.config`; the password is kept in a [`Secret`], so neither errors nor `Debug`
//! output show it.
//!
//! The file syntax is Java's `Properties` format: `key=value`, `key: value` or `key value`; `#` and
//! `!` start comment lines; a line ending in an odd number of backslashes continues on the next;
//! `\t`, `\n`, `\r`, `\f`, `\uXXXX` and `\<any>` escapes. Relative paths are relative to the
//! current directory, as for Kafka's tools. A key given twice is an error (Java silently keeps the
//! last one).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::auth::Mechanism;
use crate::config::{Secret, UpstreamSasl};

/// Larger than any real client properties file; a bound on what is read into memory.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Kafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Case-insensitive, as Kafka's `SecurityProtocol.forName`.
    pub fn from_name(s: &str) -> Option<SecurityProtocol> {
        SecurityProtocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to connect and log in, as the properties file says. `Debug` is safe to print: the password
/// is a [`Secret`].
#[derive(Debug, Clone)]
pub struct ClientProperties {
    pub protocol: SecurityProtocol,
    /// Set exactly when `protocol` uses SASL.
    pub sasl: Option<UpstreamSasl>,
    /// CA certificates to verify the brokers with; set exactly when `protocol` uses TLS.
    pub truststore: Option<PathBuf>,
    /// The client's own key and certificate chain (one PEM file), for brokers that require mTLS.
    pub keystore: Option<PathBuf>,
}

impl Default for ClientProperties {
    /// What Kafka's tools do without `--command-config`: PLAINTEXT, no login.
    fn default() -> Self {
        ClientProperties {
            protocol: SecurityProtocol::Plaintext,
            sasl: None,
            truststore: None,
            keystore: None,
        }
    }
}

/// One problem in the file. `line` is where the key was set (`None` for a missing key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyProblem {
    pub line: Option<u32>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for PropertyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PropertiesError {
    #[error("cannot read the client properties file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("client properties file {} is larger than {MAX_FILE_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error(
        "client properties file {file}: {} problem{}:{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.iter().map(|p| format!("\n  {p}")).collect::<String>()
    )]
    Invalid {
        file: String,
        problems: Vec<PropertyProblem>,
    },
}

/// Reads and validates a properties file; also checks that the files it names exist.
pub fn load(path: &Path) -> Result<ClientProperties, PropertiesError> {
    let read_err = |source| PropertiesError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_FILE_BYTES {
        return Err(PropertiesError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    let file = path.display().to_string();
    let (props, mut problems) = validate(&text);
    if let Some(p) = &props {
        for (key, file) in [
            ("ssl.truststore.location", &p.truststore),
            ("ssl.keystore.location", &p.keystore),
        ] {
            if let Some(f) = file {
                if !f.is_file() {
                    problems.push(PropertyProblem {
                        line: None,
                        key: key.into(),
                        message: format!("{} is not a readable file", f.display()),
                    });
                }
            }
        }
    }
    match props {
        Some(p) if problems.is_empty() => Ok(p),
        _ => Err(PropertiesError::Invalid { file, problems }),
    }
}

/// Parses and validates the text of a properties file (no file system access).
pub fn parse(name: &str, text: &str) -> Result<ClientProperties, PropertiesError> {
    match validate(text) {
        (Some(p), problems) if problems.is_empty() => Ok(p),
        (_, problems) => Err(PropertiesError::Invalid {
            file: name.to_string(),
            problems,
        }),
    }
}

const SUPPORTED_KEYS: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.jaas.config",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.endpoint.identification.algorithm",
];

const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// Returns the settings when every key is valid, and every problem found (possibly with settings:
/// the caller decides).
fn validate(text: &str) -> (Option<ClientProperties>, Vec<PropertyProblem>) {
    let mut problems = Vec::new();
    let mut values: BTreeMap<String, (u32, String)> = BTreeMap::new();
    for (line, key, value) in java_properties(text) {
        if let Some((first, _)) = values.get(&key) {
            problems.push(PropertyProblem {
                line: Some(line),
                key: key.clone(),
                message: format!(
                    "set again (first on line {first}); Java would silently keep the last one"
                ),
            });
            continue;
        }
        if !SUPPORTED_KEYS.contains(&key.as_str()) {
            problems.push(PropertyProblem {
                line: Some(line),
                key: key.clone(),
                message: format!(
                    "unknown or unsupported key (supported: {})",
                    SUPPORTED_KEYS.join(", ")
                ),
            });
        }
        values.insert(key, (line, value));
    }
    let get = |key: &str| values.get(key).map(|(l, v)| (*l, v.trim()));
    let mut problem = |line: Option<u32>, key: &str, message: String| {
        problems.push(PropertyProblem {
            line,
            key: key.into(),
            message,
        })
    };

    let protocol = match get("security.protocol") {
        None => Some(SecurityProtocol::Plaintext),
        Some((line, v)) => SecurityProtocol::from_name(v).or_else(|| {
            problem(
                Some(line),
                "security.protocol",
                format!(
                    "unsupported value `{v}` (expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
                ),
            );
            None
        }),
    };
    let protocol_name = protocol.map_or("?", SecurityProtocol::name);
    let uses_sasl = protocol.is_some_and(SecurityProtocol::uses_sasl);
    let uses_tls = protocol.is_some_and(SecurityProtocol::uses_tls);

    // SASL.
    let mechanism = match get("sasl.mechanism") {
        None if uses_sasl => {
            problem(
                None,
                "sasl.mechanism",
                format!("required with {protocol_name} (Kafka's default, GSSAPI, is configured in [upstream.sasl], not imported): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
            );
            None
        }
        None => None,
        Some((line, v)) => match Mechanism::from_name(v) {
            Some(m @ (Mechanism::Plain | Mechanism::ScramSha256 | Mechanism::ScramSha512)) => {
                Some((line, m))
            }
            _ => {
                problem(
                    Some(line),
                    "sasl.mechanism",
                    format!("unsupported value `{v}` (expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; names are case-sensitive)"),
                );
                None
            }
        },
    };
    let jaas = match get("sasl.jaas.config") {
        None if uses_sasl => {
            problem(
                None,
                "sasl.jaas.config",
                format!("required with {protocol_name}: `{SCRAM_MODULE} required username=\"...\" password=\"...\";`"),
            );
            None
        }
        None => None,
        Some((line, v)) => match parse_jaas(v) {
            Ok(j) => Some((line, j)),
            Err(e) => {
                problem(Some(line), "sasl.jaas.config", e);
                None
            }
        },
    };
    if let (Some((_, m)), Some((line, j))) = (&mechanism, &jaas) {
        let want = match m {
            Mechanism::Plain => PLAIN_MODULE,
            _ => SCRAM_MODULE,
        };
        if j.module != want {
            problem(
                Some(*line),
                "sasl.jaas.config",
                format!(
                    "sasl.mechanism {m} needs the login module {want}, not {}",
                    j.module
                ),
            );
        }
    }
    if protocol.is_some() && !uses_sasl {
        for key in ["sasl.mechanism", "sasl.jaas.config"] {
            if let Some((line, _)) = get(key) {
                problem(
                    Some(line),
                    key,
                    format!("set, but security.protocol is {protocol_name}: it would be ignored (use SASL_PLAINTEXT or SASL_SSL to log in)"),
                );
            }
        }
    }

    // TLS.
    let mut store = |which: &str, required: bool| -> Option<PathBuf> {
        let loc_key = format!("ssl.{which}.location");
        let type_key = format!("ssl.{which}.type");
        let location = get(&loc_key);
        let kind = get(&type_key);
        if let Some((line, t)) = kind {
            if !t.eq_ignore_ascii_case("PEM") {
                problem(
                    Some(line),
                    &type_key,
                    format!("unsupported value `{t}`: only PEM files are supported (convert a JKS or PKCS12 store with keytool and openssl)"),
                );
            }
        }
        match (location, kind) {
            (Some((line, _)), None) => {
                problem(
                    Some(line),
                    &type_key,
                    format!("required with {loc_key}, and must be PEM (Kafka's default type is JKS, which is not supported)"),
                );
                None
            }
            (None, Some((line, _))) => {
                problem(
                    Some(line),
                    &loc_key,
                    format!("required with {type_key} (inline PEM in ssl.{which}.certificates/key is not supported)"),
                );
                None
            }
            (None, None) if required => {
                problem(
                    None,
                    &loc_key,
                    format!("required with {protocol_name}: a PEM file of the CA certificates that sign the brokers' certificates (there is no system trust store)"),
                );
                None
            }
            (None, None) => None,
            (Some((line, "")), Some(_)) => {
                problem(Some(line), &loc_key, "empty path".into());
                None
            }
            (Some((_, loc)), Some(_)) => Some(PathBuf::from(loc)),
        }
    };
    let truststore = store("truststore", uses_tls);
    let keystore = store("keystore", false);
    if let Some((line, v)) = get("ssl.endpoint.identification.algorithm") {
        if !v.eq_ignore_ascii_case("https") {
            problem(
                Some(line),
                "ssl.endpoint.identification.algorithm",
                format!("unsupported value `{v}`: the broker's host name is always verified (only `https` is accepted)"),
            );
        }
    }
    if protocol.is_some() && !uses_tls {
        for key in [
            "ssl.truststore.location",
            "ssl.truststore.type",
            "ssl.keystore.location",
            "ssl.keystore.type",
            "ssl.endpoint.identification.algorithm",
        ] {
            if let Some((line, _)) = get(key) {
                problem(
                    Some(line),
                    key,
                    format!("set, but security.protocol is {protocol_name}: it would be ignored (use SSL or SASL_SSL for TLS)"),
                );
            }
        }
    }

    let sasl = match (uses_sasl, mechanism, jaas) {
        (true, Some((_, mechanism)), Some((_, j))) => Some(UpstreamSasl {
            mechanism,
            username: j.username,
            password: j.password,
            kerberos: None,
        }),
        _ => None,
    };
    // In file order (missing keys last), however the checks above found them.
    problems.sort_by_key(|p| (p.line.is_none(), p.line));
    let complete =
        protocol.is_some() && (sasl.is_some() || !uses_sasl) && (truststore.is_some() || !uses_tls);
    let props = complete.then(|| ClientProperties {
        protocol: protocol.unwrap_or(SecurityProtocol::Plaintext),
        sasl,
        truststore,
        keystore: if uses_tls { keystore } else { None },
    });
    (props, problems)
}

/// The login module and the two options the gateway uses.
struct Jaas {
    module: String,
    username: String,
    password: Secret,
}

/// Parses `sasl.jaas.config` as Kafka's `JaasConfig` does, for the one login module a client
/// uses: `<module class> <flag> name="value" ... ;`. Values are double-quoted (with `\` escaping
/// the next character) or bare words. Errors describe positions and option names, never values.
fn parse_jaas(text: &str) -> Result<Jaas, String> {
    let mut chars = text.chars().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    };
    let word = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '$') {
                w.push(c);
                chars.next();
            } else {
                break;
            }
        }
        w
    };
    skip_ws(&mut chars);
    let module = word(&mut chars);
    if module.is_empty() {
        return Err(format!(
            "expected a login module class, e.g. `{SCRAM_MODULE} required username=\"...\" password=\"...\";`"
        ));
    }
    if module != SCRAM_MODULE && module != PLAIN_MODULE {
        return Err(format!(
            "unsupported login module `{module}` (expected {SCRAM_MODULE} or {PLAIN_MODULE})"
        ));
    }
    skip_ws(&mut chars);
    let flag = word(&mut chars);
    if !["required", "requisite", "sufficient", "optional"]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(&flag))
    {
        return Err(format!(
            "expected a control flag (`required`) after {module}"
        ));
    }
    let mut username = None;
    let mut password = None;
    loop {
        skip_ws(&mut chars);
        match chars.peek() {
            None => return Err("missing `;` at the end of the login module".into()),
            Some(';') => {
                chars.next();
                break;
            }
            Some(_) => {}
        }
        let name = word(&mut chars);
        if name.is_empty() {
            return Err("expected an option `name=\"value\"` or `;`".into());
        }
        skip_ws(&mut chars);
        if chars.next() != Some('=') {
            return Err(format!("expected `=` after option `{name}`"));
        }
        skip_ws(&mut chars);
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quoted value of option `{name}`")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        None => {
                            return Err(format!("unterminated quoted value of option `{name}`"))
                        }
                        Some('n') => v.push('\n'),
                        Some('t') => v.push('\t'),
                        Some('r') => v.push('\r'),
                        Some(c) => v.push(c),
                    },
                    Some(c) => v.push(c),
                }
            }
            v
        } else {
            let v = word(&mut chars);
            if v.is_empty() {
                return Err(format!("option `{name}` has no value"));
            }
            v
        };
        let slot = match name.as_str() {
            "username" => &mut username,
            "password" => &mut password,
            _ => {
                return Err(format!(
                    "unsupported option `{name}` (only username and password are supported)"
                ))
            }
        };
        if slot.replace(value).is_some() {
            return Err(format!("option `{name}` given twice"));
        }
    }
    skip_ws(&mut chars);
    if chars.next().is_some() {
        return Err(
            "more than one login module (a client uses exactly one; nothing may follow its `;`)"
                .into(),
        );
    }
    match (username, password) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Ok(Jaas {
            module,
            username: u,
            password: Secret::new(p),
        }),
        (u, p) => {
            let missing: Vec<&str> = [
                ("username", u.as_ref().is_none_or(String::is_empty)),
                ("password", p.as_ref().is_none_or(String::is_empty)),
            ]
            .into_iter()
            .filter(|(_, m)| *m)
            .map(|(n, _)| n)
            .collect();
            Err(format!(
                "{module} needs a non-empty {}",
                missing.join(" and ")
            ))
        }
    }
}

/// Java `Properties` logical lines: `(line number, key, value)`, escapes resolved.
fn java_properties(text: &str) -> Vec<(u32, String, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, first)) = lines.next() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let trimmed = first.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // Join continuation lines: an odd number of trailing backslashes continues the line.
        let mut logical = String::new();
        let mut current = trimmed;
        loop {
            let trailing = current.chars().rev().take_while(|c| *c == '\\').count();
            if trailing % 2 == 1 {
                logical.push_str(&current[..current.len() - 1]);
                match lines.next() {
                    Some((_, next)) => current = next.trim_start(),
                    None => break,
                }
            } else {
                logical.push_str(current);
                break;
            }
        }
        let (key, value) = split_key_value(&logical);
        out.push((line_no, key, value));
    }
    out
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace, and unescapes both parts.
fn split_key_value(line: &str) -> (String, String) {
    let mut key_end = line.len();
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => {
                key_end = i;
                break;
            }
            c if c.is_whitespace() => {
                key_end = i;
                break;
            }
            _ => {}
        }
    }
    let key = unescape(&line[..key_end]);
    let mut rest = line[key_end..].trim_start_matches([' ', '\t', '\u{c}']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\u{c}']);
    }
    (key, unescape(rest))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => {}
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == 4 => out.push(ch),
                    // Java throws on a malformed \u escape; keeping the text makes the value
                    // fail validation (or the login) visibly instead.
                    _ => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
        }
    }
    out
}

#[cfg(test)]
#[path = "client_properties_tests.rs"]
mod tests;
