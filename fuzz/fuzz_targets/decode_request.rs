//! Fuzzes request decoding: header peeking, the pre-decode bounds walk, the bounded decoder, and
//! the requests read in place (Metadata, Fetch, group-name lists) and authorized from their bytes.
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
//! - a decoded request re-encodes (header and body) without panicking;
//! - the session's reader (`codec::read_request`) reads Metadata, Fetch, Produce and the
//!   group-name lists (DescribeGroups, DeleteGroups, ConsumerGroupDescribe, ShareGroupDescribe)
//!   in place (`codec::reads_in_place`): it never panics, and
//!   planning such a request with an authorizer that denies every other name never panics, and
//!   any request it forwards in part decodes again;
//! - issue 11 item 5, measured on every input: decoding a request, or reading and planning one
//!   read in place, never has more than twice the request's size plus 1 MiB allocated at once
//!   (allocation-counter is this binary's allocator and reports the peak), so a regression in
//!   the decoded-size accounting or in the in-place Metadata path is a crash, not a figure.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_gateway::policy::mapping;
use kafka_gateway::policy::{Operation, ResourceType};
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
    if codec::reads_in_place(key, version) {
        let mut spliced = None;
        let cost = allocation_counter::measure(|| spliced = read_in_place(key, version, data));
        within_item_5(key, version, data.len(), cost.bytes_max);
        if let Some(request) = spliced {
            if let Err(e) = codec::decode_request(key, version, request.slice(4..)) {
                panic!("{key:?} v{version}: a spliced request does not decode: {e}");
            }
        }
    }
    let mut decoded = None;
    let cost = allocation_counter::measure(|| {
        decoded = codec::decode_request(key, version, Bytes::copy_from_slice(data)).ok();
    });
    within_item_5(key, version, data.len(), cost.bytes_max);
    let Some(decoded) = decoded else {
        return;
    };
    // Re-encoding may refuse a value (an error is fine); it must not panic.
    let mut out = BytesMut::new();
    let _ = decoded
        .header
        .encode(&mut out, key.request_header_version(version));
    let _ = decoded.body.encode(&mut out, version);
});

/// Allows names of even length (and any id the map knows): both outcomes of every entry occur.
struct EvenNames;

impl mapping::Authorize for EvenNames {
    fn allowed(&self, _op: Operation, _rtype: ResourceType, name: &str) -> bool {
        name.len() % 2 == 0
    }
    fn allowed_any(&self, _op: Operation, _rtype: ResourceType) -> bool {
        false
    }
}

struct SomeIds;

impl mapping::TopicIds for SomeIds {
    fn name_of(&self, id: uuid::Uuid) -> Option<String> {
        (id.as_u128() % 3 == 0).then(|| format!("t{}", id.as_u128() % 7))
    }
    fn id_of(&self, name: &str) -> Option<uuid::Uuid> {
        (name.len() % 3 == 0).then(|| uuid::Uuid::from_u128(3))
    }
}

/// Issue 11 item 5's bound: at most twice the request (its copy included) plus 1 MiB.
fn within_item_5(api: ApiKey, version: i16, len: usize, peak: u64) {
    let bound = 2 * len as u64 + (1 << 20);
    assert!(
        peak <= bound,
        "{api:?} v{version}: {peak} bytes allocated at once for a {len} byte request (bound {bound})"
    );
}

/// The session's path for the APIs it reads in place (Metadata, Fetch, Produce, the group-name
/// lists):
/// read under the default budget and planned from the bytes; the request forwarded in part, if
/// any.
fn read_in_place(api: ApiKey, version: i16, data: &[u8]) -> Option<Bytes> {
    let payload = Bytes::copy_from_slice(data);
    let budget = codec::decoded_budget(payload.len(), codec::DEFAULT_DECODED_FLOOR);
    let request = codec::read_request(api, version, payload, budget).ok()?;
    match mapping::plan_request(api, version, &request, &EvenNames, &SomeIds) {
        Ok(Some(mapping::Plan::ForwardPartial { request, .. })) => Some(request),
        _ => None,
    }
}
