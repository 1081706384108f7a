//! Fuzzes what the gateway does with upstream responses on their own: broker-address rewriting of
//! the responses that name brokers (with Produce v10+ / Fetch v16+ `node_endpoints`), and the bounded split + typed decode every other response
//! goes through when the gateway reads it (merging authorization results, its own upstream
//! queries and SASL login).
//!
//! Input: `api selector u8 | version selector u8 | response payload (length prefix removed)`.
//! The api selector picks, modulo the list's length, from: Metadata, FindCoordinator,
//! DescribeCluster (the three rewritten APIs, always first so selectors 0..=2 keep their meaning),
//! then every other API in `api::SUPPORTED`, then SaslHandshake and SaslAuthenticate (answered by
//! the broker to the gateway's own login). The version selector picks a version inside the
//! gateway's range for that API, so every input exercises a version the gateway really reads.
//!
//! Properties:
//! - `rewrite::rewrite_brokers` never panics (nor allocates unboundedly: `-malloc_limit_mb`);
//! - on success its frame is well formed: the length prefix matches, and the payload passes
//!   `codec::split_response` (header + bounds-checked body) for the same api and version;
//! - for every API, `codec::split_response` and then kafka-protocol's typed decoder never panic
//!   and never allocate unboundedly: the bounds walk must refuse every hostile count before
//!   kafka-protocol sees it; a decoded response re-encodes without panicking.
#![no_main]

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use kafka_gateway::protocol::frame::LEN_PREFIX;
use kafka_gateway::protocol::{codec, endpoints, rewrite};
use kafka_gateway_fuzz::{advertise, response_apis, REWRITTEN};
use kafka_protocol::messages::{ApiKey, ResponseKind};
use libfuzzer_sys::fuzz_target;

/// `(api, min version, max version)` in selector order.
fn apis() -> &'static [(ApiKey, i16, i16)] {
    static APIS: OnceLock<Vec<(ApiKey, i16, i16)>> = OnceLock::new();
    APIS.get_or_init(response_apis)
}

fuzz_target!(|data: &[u8]| {
    let [api_sel, version_sel, payload @ ..] = data else {
        return;
    };
    let apis = apis();
    let (api, min, max) = apis[usize::from(*api_sel) % apis.len()];
    // max - min < 256 for these APIs; the modulo keeps the version inside the range regardless.
    let span = i32::from(max) - i32::from(min) + 1;
    let version = (i32::from(min) + i32::from(*version_sel) % span) as i16;
    let payload = Bytes::copy_from_slice(payload);

    // Produce v10+ and Fetch v16+ name brokers in `node_endpoints` (KIP-951). They are rewritten
    // without checking the whole body (a Fetch response is forwarded as the upstream's bytes):
    // what is required is that a well-formed response stays well formed.
    if endpoints::applies(api, version) {
        // Well formed: kafka-protocol decodes it (the bounds walk alone does not check UTF-8).
        let well_formed = codec::split_response(api, version, payload.clone())
            .is_ok_and(|(_, mut body)| ResponseKind::decode(api, &mut body, version).is_ok());
        let (mut seen, mut unmapped) = (Vec::new(), Vec::new());
        let Ok(parts) =
            endpoints::rewrite(api, version, payload, &advertise, &mut seen, &mut unmapped)
        else {
            assert!(
                !well_formed,
                "{api:?} v{version}: a well-formed response was refused"
            );
            return;
        };
        let frame = parts.joined();
        let declared = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(
            usize::try_from(declared).ok(),
            Some(frame.len() - LEN_PREFIX)
        );
        if well_formed {
            if let Err(e) = codec::split_response(api, version, frame.slice(LEN_PREFIX..)) {
                panic!("{api:?} v{version}: a well-formed response rewritten does not split: {e}");
            }
        }
        return;
    }
    if REWRITTEN.contains(&api) {
        let Ok(out) = rewrite::rewrite_brokers(api, version, payload, &advertise) else {
            return;
        };
        let frame = out.frame();
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
        return;
    }

    let Ok((_header, mut body)) = codec::split_response(api, version, payload) else {
        return;
    };
    let Ok(decoded) = ResponseKind::decode(api, &mut body, version) else {
        return;
    };
    let mut out = BytesMut::new();
    let _ = decoded.encode(&mut out, version);
});
