//! Fuzzes request decoding: header peeking, the pre-decode bounds walk and the bounded decoder.
//!
//! Input: a request payload as it arrives from a client, length prefix removed
//! (`api_key i16 | api_version i16 | correlation_id i32 | rest of header | body`).
//!
//! Properties:
//! - `bounds::check_request_body` never panics, whatever api key / version the first 4 bytes name
//!   and whatever bytes follow the fixed 8-byte header prefix;
//! - for an API and version the gateway handles (its `gateway_range`, plus the SASL handshake
//!   APIs the session decodes before authentication, at every version the schema knows),
//!   `codec::decode_request` never panics and never allocates unboundedly: the walker refuses a
//!   body that would decode to more than its size plus 1 MiB, and scripts/fuzz.sh runs this target
//!   with an 8 MiB `-malloc_limit_mb` and 1 MiB hostile seeds (many empty names, many unknown
//!   tags), so a broken decoded-size accounting is a crash;
//! - a decoded request re-encodes (header and body) without panicking.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_gateway::protocol::{api, bounds, codec};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(meta) = codec::peek_request(data) else {
        return;
    };
    // The walk on its own, for any api/version (including ones the gateway refuses): the bytes
    // after the fixed prefix stand in for a body.
    let _ = bounds::check_request_body(meta.api_key, meta.api_version, &data[8..]);

    let Ok(key) = ApiKey::try_from(meta.api_key) else {
        return;
    };
    let range = match key {
        // Not forwarded (so absent from SUPPORTED), but decoded by the session before the client
        // is authenticated: the most exposed decode path.
        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => {
            bounds::supported_body_versions(meta.api_key, true)
        }
        _ => api::gateway_range(key),
    };
    let Some((min, max)) = range else {
        return;
    };
    if !(min..=max).contains(&meta.api_version) {
        return;
    }
    let version = meta.api_version;
    let Ok(decoded) = codec::decode_request(key, version, Bytes::copy_from_slice(data)) else {
        return;
    };
    // Re-encoding may refuse a value (an error is fine); it must not panic.
    let mut out = BytesMut::new();
    let _ = decoded
        .header
        .encode(&mut out, key.request_header_version(version));
    let _ = decoded.body.encode(&mut out, version);
});
