//! The OAUTHBEARER SASL exchange (RFC 7628, KIP-255): the client-initial parser and the state machine.
//!
//! The parser is pure and strict. The exchange follows Kafka: a token that fails validation is answered
//! with an RFC 7628 §3.2.2 JSON error challenge; the client must then send a single %x01, and only then
//! does the exchange fail (the session turns that into error 58).

use std::sync::Arc;

use super::{token, OAuthValidator};
use crate::auth::{FailureReason, Step};

/// Largest client message accepted (the token plus framing and extensions).
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Most SASL extensions accepted in one message. Kafka clients send a handful at most.
pub const MAX_EXTENSIONS: usize = 32;

const KVSEP: u8 = 0x01;

/// The parsed client-initial response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInitial {
    /// The authorization identity from the GS2 header (`a=`), unescaped.
    pub authzid: Option<String>,
    /// The bearer token (the value after `auth=Bearer `).
    pub token: String,
    /// The other key/value pairs (Kafka SASL extensions, or RFC 7628 `host`/`port`), in order.
    pub extensions: Vec<(String, String)>,
}

/// Parses `gs2-header %x01 *(key "=" value %x01) %x01` (RFC 7628 §3.1).
///
/// Strict: the GS2 flag must be `n` or `y` (channel binding, `p=`, is refused: the gateway does not
/// offer it); the authzid is a non-empty saslname with `=2C`/`=3D` as the only escapes; keys are
/// ASCII letters, values VCHAR/SP/HTAB/CR/LF and non-empty (as Kafka requires); duplicate keys are
/// refused; `auth` is mandatory and must be `Bearer <b64token>` (scheme case-insensitive). Errors are
/// short descriptions that never include the token.
pub fn parse_client_initial(input: &[u8]) -> Result<ClientInitial, String> {
    if input.len() > MAX_CLIENT_MESSAGE {
        return Err(format!(
            "message of {} bytes exceeds {MAX_CLIENT_MESSAGE}",
            input.len()
        ));
    }
    if input == [KVSEP] {
        return Err("a lone %x01 is only valid after an error challenge".into());
    }
    let (authzid, rest) = parse_gs2_header(input)?;

    // rest = %x01 *(kvpair %x01) %x01
    let rest = rest
        .strip_prefix(&[KVSEP])
        .ok_or("GS2 header not followed by %x01")?;
    let pairs = rest
        .strip_suffix(&[KVSEP])
        .ok_or("message does not end with %x01")?;
    if pairs.is_empty() {
        return Err("no key/value pairs (auth is mandatory)".into());
    }
    let pairs = pairs
        .strip_suffix(&[KVSEP])
        .ok_or("last key/value pair lacks its %x01, or the final %x01 is missing")?;

    let mut token = None;
    let mut extensions: Vec<(String, String)> = Vec::new();
    for pair in pairs.split(|b| *b == KVSEP) {
        if pair.is_empty() {
            return Err("empty key/value pair (stray %x01)".into());
        }
        let eq = pair
            .iter()
            .position(|b| *b == b'=')
            .ok_or("key/value pair without '='")?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        if key.is_empty() || !key.iter().all(u8::is_ascii_alphabetic) {
            return Err("key is not one or more ASCII letters".into());
        }
        if value.is_empty() {
            return Err("empty value".into());
        }
        if !value
            .iter()
            .all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Err("value holds characters outside VCHAR/SP/HTAB/CR/LF".into());
        }
        // Both checked ASCII above.
        let key = String::from_utf8_lossy(key).into_owned();
        let value = String::from_utf8_lossy(value).into_owned();
        if key == "auth" {
            if token.is_some() {
                return Err("auth given twice".into());
            }
            token = Some(parse_auth_value(&value)?);
        } else {
            if extensions.iter().any(|(k, _)| *k == key) {
                return Err(format!("extension {key:?} given twice"));
            }
            if extensions.len() == MAX_EXTENSIONS {
                return Err(format!("more than {MAX_EXTENSIONS} extensions"));
            }
            extensions.push((key, value));
        }
    }
    let token = token.ok_or("no auth key/value pair")?;
    Ok(ClientInitial {
        authzid,
        token,
        extensions,
    })
}

/// `gs2-cbind-flag "," [ "a=" saslname ] ","` → (authzid, remaining input).
fn parse_gs2_header(input: &[u8]) -> Result<(Option<String>, &[u8]), String> {
    let rest = match input {
        [b'n' | b'y', b',', rest @ ..] => rest,
        [b'p', b'=', ..] => return Err("channel binding (p=) is not supported".into()),
        _ => return Err("GS2 header must start with \"n,\" or \"y,\"".into()),
    };
    let comma = rest
        .iter()
        .position(|b| *b == b',')
        .ok_or("GS2 header not terminated by ','")?;
    let (field, rest) = (&rest[..comma], &rest[comma + 1..]);
    if field.is_empty() {
        return Ok((None, rest));
    }
    let name = field
        .strip_prefix(b"a=")
        .ok_or("GS2 header field is not an authzid (a=)")?;
    Ok((Some(unescape_saslname(name)?), rest))
}

/// RFC 5801 saslname: UTF-8 without NUL, ',' or '=', except the escapes `=2C` (',') and `=3D` ('=').
/// Control characters are refused too: the name ends up in logs and audit records.
fn unescape_saslname(raw: &[u8]) -> Result<String, String> {
    if raw.is_empty() {
        return Err("empty authzid".into());
    }
    let text = std::str::from_utf8(raw).map_err(|_| "authzid is not UTF-8")?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        let escape = rest.get(pos..pos + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err("authzid has an invalid '=' escape".into()),
        }
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    if out.chars().any(char::is_control) {
        return Err("authzid has control characters".into());
    }
    Ok(out)
}

/// `Bearer 1*SP b64token` (RFC 6750 §2.1); the scheme is case-insensitive.
fn parse_auth_value(value: &str) -> Result<String, String> {
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("auth value is not \"Bearer <token>\"")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("auth scheme is not Bearer".into());
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    {
        return Err("bearer token is empty or not a b64token".into());
    }
    Ok(token.to_string())
}

/// Where an exchange is.
#[derive(Debug)]
enum State {
    /// Waiting for the client-initial response.
    Initial,
    /// Sent an error challenge; waiting for the client's %x01.
    ChallengeSent {
        reason: FailureReason,
        attempted: Option<String>,
    },
    /// Finished (success or failure); any further message is a protocol error.
    Done,
}

/// One OAUTHBEARER authentication. Feed it each SaslAuthenticate payload in turn.
#[derive(Debug)]
pub struct OAuthExchange {
    validator: Arc<OAuthValidator>,
    state: State,
}

impl OAuthExchange {
    pub fn new(validator: Arc<OAuthValidator>) -> Self {
        OAuthExchange {
            validator,
            state: State::Initial,
        }
    }

    /// Processes one client message. First message: the client-initial response, answered with
    /// `Success` (empty response, `expires` = the token's `exp`), an error challenge (`Continue`), or
    /// `Failure` if it is malformed or the authzid names someone else. After a challenge: a lone %x01
    /// yields the remembered `Failure`. Anything after the end: `Failure(Malformed)`.
    pub async fn step(&mut self, input: &[u8]) -> Step {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Initial => self.first(input).await,
            State::ChallengeSent { reason, attempted } => {
                if input == [KVSEP] {
                    Step::Failure { reason, attempted }
                } else {
                    Step::Failure {
                        reason: FailureReason::Malformed(
                            "expected %x01 after the error challenge".into(),
                        ),
                        attempted,
                    }
                }
            }
            State::Done => Step::Failure {
                reason: FailureReason::Malformed("message after the exchange ended".into()),
                attempted: None,
            },
        }
    }

    /// The failure a client owes once it has been sent the error challenge: a client that
    /// disconnects instead of sending %x01 has still failed to log in.
    pub fn abandoned_failure(&self) -> Option<(FailureReason, Option<String>)> {
        match &self.state {
            State::ChallengeSent { reason, attempted } => Some((reason.clone(), attempted.clone())),
            _ => None,
        }
    }

    async fn first(&mut self, input: &[u8]) -> Step {
        let initial = match parse_client_initial(input) {
            Ok(initial) => initial,
            Err(e) => {
                return Step::Failure {
                    reason: FailureReason::Malformed(e),
                    attempted: None,
                }
            }
        };
        match self.validator.validate(&initial.token).await {
            Ok(valid) => {
                if let Some(authzid) = &initial.authzid {
                    if *authzid != valid.principal.name {
                        return Step::Failure {
                            reason: FailureReason::AuthzidMismatch,
                            attempted: Some(valid.principal.name),
                        };
                    }
                }
                Step::Success {
                    response: Vec::new(),
                    principal: valid.principal,
                    expires: Some(valid.expires),
                }
            }
            Err(reason) => {
                let challenge = self.validator.error_challenge(&reason);
                let attempted =
                    token::claimed_principal(&initial.token, self.validator.principal_claim());
                tracing::debug!(%reason, attempted = attempted.as_deref().unwrap_or("-"),
                    "OAUTHBEARER token rejected; sending error challenge");
                self.state = State::ChallengeSent { reason, attempted };
                Step::Continue(challenge)
            }
        }
    }
}
