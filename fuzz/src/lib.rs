//! What the fuzz targets and `make_seeds` must agree on: the selector lists in input formats and
//! the fixtures seeds are written for.

pub mod caught_panics;
pub mod scram;

use kafka_gateway::protocol::{api, bounds};
use kafka_protocol::messages::ApiKey;

/// The APIs whose responses name brokers and are rewritten, in selector order.
pub const REWRITTEN: [ApiKey; 3] = [
    ApiKey::Metadata,
    ApiKey::FindCoordinator,
    ApiKey::DescribeCluster,
];

/// `rewrite_response`'s api selector list, as `(api, min version, max version)`: the rewritten
/// APIs first (so selectors 0..=2 keep their meaning), every other API in `api::SUPPORTED` at its
/// gateway range, then SaslHandshake and SaslAuthenticate (answered by the broker to the gateway's
/// own login) at every version their schema knows.
pub fn response_apis() -> Vec<(ApiKey, i16, i16)> {
    let forwarded = REWRITTEN.into_iter().chain(
        api::SUPPORTED
            .iter()
            .map(|s| s.key)
            .filter(|k| !REWRITTEN.contains(k)),
    );
    let mut out: Vec<(ApiKey, i16, i16)> = forwarded
        .filter_map(|k| {
            let (min, max) = api::gateway_range(k)?;
            Some((k, min, max))
        })
        .collect();
    for k in [ApiKey::SaslHandshake, ApiKey::SaslAuthenticate] {
        if let Some((min, max)) = bounds::supported_body_versions(k as i16, false) {
            out.push((k, min, max));
        }
    }
    out
}

/// The gateway addresses the targets rewrite to: node ids 0..8 have a gateway port; any other id
/// is unmapped (dropped, or refused for a coordinator).
pub fn advertise(node: i32) -> Option<(String, u16)> {
    (0..8)
        .contains(&node)
        .then(|| ("gw".to_string(), 9000 + node as u16))
}

/// The topic the seeds name, and the id `merge_response`'s topic-id map knows it by.
pub const TOPIC: &str = "orders";
pub const TOPIC_ID: [u8; 16] = *b"0123456789abcdef";

/// `upstream_sasl`'s fixture: the gateway's service identities (`[upstream.sasl]`): a plain name
/// and one SCRAM must escape on the wire (`gw=2Csvc=3D1`), and their password.
pub const UPSTREAM_USERS: [&str; 2] = ["gateway-svc", "gw,svc=1"];
pub const UPSTREAM_PASSWORD: &str = "svc-secret";

/// `upstream_sasl`'s placeholders for what a real broker derives from the exchange: in a
/// server-first message, the client nonce the gateway sent (random per login); in a server-final
/// message, the base64 RFC 5802 server signature of the exchange.
pub const NONCE_PLACEHOLDER: &[u8] = b"{nonce}";
pub const SIGNATURE_PLACEHOLDER: &[u8] = b"{signature}";
