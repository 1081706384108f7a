//! One line of the trail: an [`Event`] wrapped with `schema`, `seq`, `ts`, `prev` and `hash`, and the
//! byte-exact hashing that chains the lines together.
//!
//! A line is a JSON object whose *last* member is `"hash"`:
//!
//! ```text
//! {"schema":1,"seq":41,"ts":"2024-05-01T12:00:00.123456Z","prev":"<64 hex>","event":"...",...,"hash":"<64 hex>"}
//! ```
//!
//! `hash` is the SHA-256 of the line's exact bytes with the `,"hash":"..."` member removed (that is, the
//! same object without its last member). Hashing the bytes as written, rather than a re-serialization,
//! means any edit (a field, a space, key order) is detected and readers need no canonical JSON. `prev`
//! is the previous record's `hash` ([`GENESIS`] for the first record ever), so each record commits to
//! everything before it, across files and restarts, and a verifier can name the first record whose own
//! bytes or whose link to its predecessor is wrong.

use std::time::SystemTime;

use aws_lc_rs::digest;
use serde::Deserialize;

use super::event::{Event, SCHEMA_VERSION};
use super::time;

/// `prev` of the very first record of a trail.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_MEMBER: &[u8] = b",\"hash\":\"";
/// `,"hash":"` + 64 hex digits + `"}`.
const SUFFIX_LEN: usize = HASH_MEMBER.len() + 64 + 2;

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// A record as read back from a trail file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Record {
    pub schema: u32,
    pub seq: u64,
    /// When the event happened (UTC, RFC 3339, microseconds).
    pub ts: String,
    pub prev: String,
    #[serde(flatten)]
    pub event: Event,
    pub hash: String,
}

impl Record {
    /// Parses a line (without its newline) and checks its own hash. Does not check the chain.
    pub fn parse_line(line: &[u8]) -> Result<Record, LineError> {
        let header = check_line(line)?;
        let record: Record =
            serde_json::from_slice(line).map_err(|e| LineError::Malformed(e.to_string()))?;
        debug_assert_eq!(record.seq, header.seq);
        Ok(record)
    }

    pub fn time(&self) -> Option<SystemTime> {
        time::parse_rfc3339(&self.ts)
    }
}

/// The chain fields of a line, enough to check links without decoding the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub schema: u32,
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    pub event: String,
}

/// Why a line is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not a complete JSON record ({0})")]
    Malformed(String),
    #[error("no trailing \"hash\" member")]
    NoHash,
    #[error(
        "hash mismatch: the record's bytes were changed (stored {stored}, computed {computed})"
    )]
    HashMismatch { stored: String, computed: String },
    #[error("unsupported schema version {0}")]
    Schema(u32),
}

#[derive(Deserialize)]
struct RawHeader {
    schema: u32,
    seq: u64,
    prev: String,
    hash: String,
    event: String,
}

/// Parses the chain fields of a line and checks its own hash.
pub fn check_line(line: &[u8]) -> Result<Header, LineError> {
    let raw: RawHeader =
        serde_json::from_slice(line).map_err(|e| LineError::Malformed(e.to_string()))?;
    let n = line.len();
    if n < SUFFIX_LEN + 2
        || &line[n - SUFFIX_LEN..n - SUFFIX_LEN + HASH_MEMBER.len()] != HASH_MEMBER
    {
        return Err(LineError::NoHash);
    }
    let stored = &line[n - 66..n - 2];
    let mut canonical = Vec::with_capacity(n);
    canonical.extend_from_slice(&line[..n - SUFFIX_LEN]);
    canonical.push(b'}');
    let computed = sha256_hex(&canonical);
    if stored != computed.as_bytes() || raw.hash != computed {
        return Err(LineError::HashMismatch {
            stored: raw.hash,
            computed,
        });
    }
    if raw.schema != SCHEMA_VERSION {
        return Err(LineError::Schema(raw.schema));
    }
    Ok(Header {
        schema: raw.schema,
        seq: raw.seq,
        prev: raw.prev,
        hash: raw.hash,
        event: raw.event,
    })
}

/// Serializes an event body (`{"event":...}`) once, on the caller's thread, so the writer task only
/// splices headers and hashes.
///
/// The body waits in the writer's queue, and one request may queue a thousand of them: it is
/// kept at its length, not at the doubled capacity serializing left it with (about half).
pub fn encode_body(event: &Event) -> Vec<u8> {
    // Serializing these plain data types cannot fail: no maps with non-string keys, no custom impls.
    let mut body =
        serde_json::to_vec(event).unwrap_or_else(|_| b"{\"event\":\"unserializable\"}".to_vec());
    body.shrink_to_fit();
    body
}

/// Appends one complete line (with `\n`) for `body` to `out` and returns the record's hash.
pub fn encode_line(seq: u64, ts: &str, prev: &str, body: &[u8], out: &mut Vec<u8>) -> String {
    let start = out.len();
    out.extend_from_slice(b"{\"schema\":");
    out.extend_from_slice(SCHEMA_VERSION.to_string().as_bytes());
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b",\"ts\":\"");
    out.extend_from_slice(ts.as_bytes());
    out.extend_from_slice(b"\",\"prev\":\"");
    out.extend_from_slice(prev.as_bytes());
    out.extend_from_slice(b"\",");
    // body is `{...}`; keep its members and closing brace.
    out.extend_from_slice(body.get(1..).unwrap_or_default());
    let hash = sha256_hex(&out[start..]);
    out.pop();
    out.extend_from_slice(HASH_MEMBER);
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(b"\"}\n");
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event::GatewayStop {
            instance: "i-1".into(),
            reason: "signal".into(),
            uptime_ms: 5,
        }
    }

    #[test]
    fn encode_then_check() {
        let mut out = Vec::new();
        let body = encode_body(&sample());
        let h = encode_line(3, "2024-05-01T12:00:00.000000Z", GENESIS, &body, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let line = &out[..out.len() - 1];
        let header = check_line(line).expect("valid");
        assert_eq!(header.seq, 3);
        assert_eq!(header.hash, h);
        assert_eq!(header.event, "gateway_stop");
        let rec = Record::parse_line(line).expect("valid");
        assert_eq!(rec.event, sample());
        assert_eq!(rec.prev, GENESIS);
    }

    #[test]
    fn any_byte_change_is_detected() {
        let mut out = Vec::new();
        encode_line(
            1,
            "2024-05-01T12:00:00.000000Z",
            GENESIS,
            &encode_body(&sample()),
            &mut out,
        );
        out.pop();
        let edited = String::from_utf8(out.clone())
            .expect("utf8")
            .replace("signal", "signax");
        assert!(matches!(
            check_line(edited.as_bytes()),
            Err(LineError::HashMismatch { .. })
        ));
        let spaced = String::from_utf8(out.clone())
            .expect("utf8")
            .replacen(':', ": ", 1);
        assert!(matches!(
            check_line(spaced.as_bytes()),
            Err(LineError::HashMismatch { .. })
        ));
        assert!(matches!(
            check_line(&out[..out.len() - 10]),
            Err(LineError::Malformed(_))
        ));
    }
}
