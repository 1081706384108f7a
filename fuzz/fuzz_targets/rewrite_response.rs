//! Fuzzes broker-address rewriting of the responses that name brokers.
//!
//! Input: `api selector u8 | version selector u8 | response payload (length prefix removed)`.
//! The selectors pick Metadata / FindCoordinator / DescribeCluster and a version inside the
//! gateway's range for it, so every input exercises a version the gateway really forwards.
//!
//! Properties:
//! - `rewrite::rewrite_brokers` never panics (nor allocates unboundedly: `-malloc_limit_mb`);
//! - on success its frame is well formed: the length prefix matches, and the payload passes
//!   `codec::split_response` (header + bounds-checked body) for the same api and version.
#![no_main]

use bytes::Bytes;
use kafka_gateway::protocol::frame::LEN_PREFIX;
use kafka_gateway::protocol::{api, codec, rewrite};
use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;

const APIS: [ApiKey; 3] = [
    ApiKey::Metadata,
    ApiKey::FindCoordinator,
    ApiKey::DescribeCluster,
];

fn advertise(node: i32) -> Option<(String, u16)> {
    // Node ids 0..8 have a gateway port; any other id is unmapped (and dropped / refused).
    (0..8)
        .contains(&node)
        .then(|| ("gw".to_string(), 9000 + node as u16))
}

fuzz_target!(|data: &[u8]| {
    let [api_sel, version_sel, payload @ ..] = data else {
        return;
    };
    let api = APIS[usize::from(*api_sel) % APIS.len()];
    let (min, max) = api::gateway_range(api).expect("every rewritten API is in SUPPORTED");
    // max - min < 256 for these APIs; the modulo keeps the version inside the range regardless.
    let span = i32::from(max) - i32::from(min) + 1;
    let version = (i32::from(min) + i32::from(*version_sel) % span) as i16;

    let Ok(out) =
        rewrite::rewrite_brokers(api, version, Bytes::copy_from_slice(payload), &advertise)
    else {
        return;
    };
    let frame = out.frame;
    assert!(frame.len() >= LEN_PREFIX, "frame shorter than its prefix");
    let declared = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    assert_eq!(
        usize::try_from(declared).ok(),
        Some(frame.len() - LEN_PREFIX),
        "{api:?} v{version}: length prefix does not match the frame"
    );
    if let Err(e) = codec::split_response(api, version, frame.slice(LEN_PREFIX..)) {
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        panic!("{api:?} v{version}: rewritten frame does not split: {e}\nframe: {hex}");
    }
});
