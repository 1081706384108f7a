//! JWS compact-serialization parsing and claim checks. No I/O and no clock: `now` is a parameter.
//!
//! The validator in `mod.rs` runs these in order: `split` → `parse_header` (alg and kid sanity, before
//! any key lookup) → key lookup and signature check (`jwks.rs`) → `decode_payload` → `check_claims`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use super::jwks::{kid_is_sane, Alg, MAX_KID_LEN};

/// Longest token accepted; the SASL message carrying it has a similar bound.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Longest principal name taken from a token.
pub const MAX_PRINCIPAL_LEN: usize = 1024;

/// Header members that point at, or carry, a key. A verifier that trusts its configured JWKS never
/// needs them; their presence is the signature of a key-injection attempt, so such tokens are refused
/// outright rather than silently ignored. (`x5c`/`x5t` are only ignored: some IdPs add them routinely.)
const KEY_POINTER_HEADERS: [&str; 3] = ["jku", "jwk", "x5u"];

/// A compact JWS split at its two dots, still encoded.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    token: &'a str,
    pub header_b64: &'a str,
    pub payload_b64: &'a str,
    pub signature_b64: &'a str,
}

impl Parts<'_> {
    /// The bytes the signature covers: `header.payload` exactly as received.
    pub fn signing_input(&self) -> &[u8] {
        let len = self.header_b64.len() + 1 + self.payload_b64.len();
        // `split` found exactly this prefix of the token, so the range is in bounds.
        &self.token.as_bytes()[..len]
    }

    pub fn signature(&self) -> Result<Vec<u8>, String> {
        URL_SAFE_NO_PAD
            .decode(self.signature_b64)
            .map_err(|_| "signature is not base64url".to_string())
    }
}

/// Splits a compact JWS. Five-part JWE tokens, empty parts and stray characters are refused.
pub fn split(token: &str) -> Result<Parts<'_>, String> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(format!("token longer than {MAX_TOKEN_LEN} bytes"));
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err("token is not a compact JWS (characters outside base64url and '.')".into());
    }
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        // An empty signature is let through so that `alg: none` tokens get their own clear refusal.
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() => Ok(Parts {
            token,
            header_b64: h,
            payload_b64: p,
            signature_b64: s,
        }),
        _ => Err("token is not a compact JWS (expected header.payload.signature)".into()),
    }
}

/// What the validator needs from the JOSE header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: Alg,
    pub kid: String,
}

/// Parses and screens the header. Everything a hostile token could use to steer key selection is
/// decided here, before any key is looked up: `alg` must be an asymmetric algorithm we implement,
/// the `kid` must be present and sane, and no key-pointer header or `crit` extension may appear.
pub fn parse_header(parts: &Parts<'_>) -> Result<Header, String> {
    let header = decode_json_object(parts.header_b64, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.as_str(),
        Some(_) => return Err("header \"alg\" is not a string".into()),
        None => return Err("header has no \"alg\"".into()),
    };
    let alg = match Alg::from_name(alg) {
        Some(alg) => alg,
        None if alg.eq_ignore_ascii_case("none") => {
            return Err("unsigned token (alg \"none\") refused".into())
        }
        None if alg.starts_with("HS") || alg.starts_with("hs") => {
            return Err(format!(
                "symmetric algorithm {} refused: only public-key signatures are accepted",
                printable(alg)
            ))
        }
        None => return Err(format!("unsupported algorithm {}", printable(alg))),
    };
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: a recipient must reject critical extensions it does not understand; we
        // understand none.
        return Err("header has \"crit\" extensions, none of which are supported".into());
    }
    if let Some(name) = KEY_POINTER_HEADERS
        .iter()
        .find(|h| header.contains_key(**h))
    {
        return Err(format!(
            "header member \"{name}\" refused: keys come only from the configured JWKS"
        ));
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) => kid,
        Some(_) => return Err("header \"kid\" is not a string".into()),
        None => return Err("header has no \"kid\"".into()),
    };
    if !kid_is_sane(kid) {
        // Deliberately not echoed: it may be huge or contain control characters.
        return Err(format!(
            "header \"kid\" is empty, longer than {MAX_KID_LEN} bytes or not printable ASCII"
        ));
    }
    Ok(Header {
        alg,
        kid: kid.clone(),
    })
}

/// Decodes the claims set. Only called after the signature verified.
pub fn decode_payload(parts: &Parts<'_>) -> Result<Map<String, Value>, String> {
    decode_json_object(parts.payload_b64, "payload")
}

fn decode_json_object(b64: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| format!("{what} is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("{what} is not a JSON object")),
        Err(_) => Err(format!("{what} is not valid JSON")),
    }
}

/// The expectations `check_claims` applies; borrowed from the validator's config.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub skew_secs: u64,
    pub principal_claim: &'a str,
    pub scope_claim: &'a str,
}

/// Claims of a token that passed every check except, possibly, the scope check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub principal: String,
    pub exp: u64,
    pub scopes: Vec<String>,
}

/// Checks registered claims and extracts principal and scopes. `now` is seconds since the epoch.
/// Required: `exp`, `iat`, `iss` (exact), `aud` (string, or array containing ours), the principal
/// claim (non-empty string). `nbf` is honoured when present. The skew widens every time comparison.
pub fn check_claims(
    claims: &Map<String, Value>,
    expect: &Expect<'_>,
    now: u64,
) -> Result<Checked, String> {
    let skew = expect.skew_secs;
    let exp = numeric_date(claims, "exp")?.ok_or("no \"exp\" claim")?;
    let iat = numeric_date(claims, "iat")?.ok_or("no \"iat\" claim")?;
    let nbf = numeric_date(claims, "nbf")?;
    if now >= exp.saturating_add(skew) {
        return Err(format!("token expired (exp {exp}, now {now})"));
    }
    if let Some(nbf) = nbf {
        if nbf > now.saturating_add(skew) {
            return Err(format!("token not valid yet (nbf {nbf}, now {now})"));
        }
    }
    if iat > now.saturating_add(skew) {
        return Err(format!("token issued in the future (iat {iat}, now {now})"));
    }

    match claims.get("iss") {
        Some(Value::String(iss)) if iss == expect.issuer => {}
        Some(Value::String(iss)) => return Err(format!("issuer {} not accepted", printable(iss))),
        Some(_) => return Err("\"iss\" is not a string".into()),
        None => return Err("no \"iss\" claim".into()),
    }

    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expect.audience,
        Some(Value::Array(auds)) => {
            if !auds.iter().all(Value::is_string) {
                return Err("\"aud\" array holds non-strings".into());
            }
            auds.iter().any(|a| a.as_str() == Some(expect.audience))
        }
        Some(_) => return Err("\"aud\" is neither a string nor an array".into()),
        None => return Err("no \"aud\" claim".into()),
    };
    if !audience_ok {
        return Err("audience not accepted".into());
    }

    let principal = principal_from(claims, expect.principal_claim)?;

    let scopes = match claims.get(expect.scope_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("\"{}\" array holds non-strings", expect.scope_claim))?,
        Some(_) => {
            return Err(format!(
                "\"{}\" is neither a string nor an array",
                expect.scope_claim
            ))
        }
    };

    Ok(Checked {
        principal,
        exp,
        scopes,
    })
}

/// The principal name: a non-empty string without control characters, bounded in length (it ends up
/// in logs, audit records and ACL matching).
pub fn principal_from(claims: &Map<String, Value>, claim: &str) -> Result<String, String> {
    match claims.get(claim) {
        Some(Value::String(name))
            if !name.is_empty()
                && name.len() <= MAX_PRINCIPAL_LEN
                && !name.chars().any(char::is_control) =>
        {
            Ok(name.clone())
        }
        Some(Value::String(_)) => Err(format!(
            "principal claim \"{claim}\" is empty, too long or has control characters"
        )),
        Some(_) => Err(format!("principal claim \"{claim}\" is not a string")),
        None => Err(format!("no principal claim \"{claim}\"")),
    }
}

/// The principal a token claims, read WITHOUT verifying anything. For audit of failed attempts only.
pub fn claimed_principal(token: &str, claim: &str) -> Option<String> {
    let parts = split(token).ok()?;
    let claims = decode_payload(&parts).ok()?;
    principal_from(&claims, claim)
        .ok()
        .filter(|name| name.len() <= 256)
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number of seconds; fractions are truncated.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                return Ok(Some(v));
            }
            match n.as_f64() {
                // The range check makes the cast exact up to truncation of the fraction.
                Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
                _ => Err(format!("\"{name}\" is not a non-negative number")),
            }
        }
        Some(_) => Err(format!("\"{name}\" is not a number")),
    }
}

/// Peer-controlled text in error messages: clipped and without control characters.
fn printable(s: &str) -> String {
    let clipped: String = s
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    format!("{clipped:?}")
}
