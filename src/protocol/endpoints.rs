//! KIP-951 leader hints rewritten to gateway addresses: Produce v10+ and Fetch v16+ responses name
//! the brokers a client should move to after NOT_LEADER_OR_FOLLOWER in a tagged field at the end
//! of the response (`node_endpoints`, tag 0). Nothing else is decoded: the body is skipped to its
//! tagged fields (records by their length: [`super::fetch::response_tags_at`] for Fetch,
//! [`bounds::response_tags_at`] for Produce), only those are read, and the answer is the
//! upstream's bytes up to there, uncopied, plus the rewritten tail.
//! A response without the tag (every response but a leader move's) goes as it came.
//!
//! ShareFetch and ShareAcknowledge responses (KIP-932) carry the same hints as their last regular
//! field: the body is walked to it ([`bounds::response_last_field_at`]), and only a non-empty
//! list is rewritten, spliced between the upstream's bytes before and after it.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    fetch_response, produce_response, share_acknowledge_response, share_fetch_response, ApiKey,
    BrokerId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::bounds;
use super::codec::ProtocolError;
use super::frame::Parts;
use super::rewrite::{Advertise, UpstreamBroker};
use super::wire::{put_uvarint, Cursor};

/// The first versions whose responses can carry `node_endpoints`.
pub const PRODUCE_FIRST: i16 = 10;
pub const FETCH_FIRST: i16 = 16;
/// The tag of `node_endpoints` in both responses.
const NODE_ENDPOINTS_TAG: u32 = 0;

/// Whether responses of `api` at `version` can carry `node_endpoints`.
pub fn applies(api: ApiKey, version: i16) -> bool {
    match api {
        ApiKey::Produce => version >= PRODUCE_FIRST,
        ApiKey::Fetch => version >= FETCH_FIRST,
        ApiKey::ShareFetch | ApiKey::ShareAcknowledge => true,
        _ => false,
    }
}

/// One `NodeEndpoint`, as both responses define it.
trait Endpoint: Encodable + Decodable {
    fn parts(&mut self) -> (&mut BrokerId, &mut StrBytes, &mut i32);
}

macro_rules! endpoint {
    ($($t:ty),*) => {$(
        impl Endpoint for $t {
            fn parts(&mut self) -> (&mut BrokerId, &mut StrBytes, &mut i32) {
                (&mut self.node_id, &mut self.host, &mut self.port)
            }
        }
    )*};
}
endpoint!(
    produce_response::NodeEndpoint,
    fetch_response::NodeEndpoint,
    share_fetch_response::NodeEndpoint,
    share_acknowledge_response::NodeEndpoint
);

/// The response (`payload`: length prefix removed) with its `node_endpoints` at gateway addresses
/// (a node without one is left out, as in Metadata), as a frame with its length prefix. The
/// brokers named are added to `seen`, nodes without a gateway port to `unmapped`.
pub fn rewrite(
    api: ApiKey,
    version: i16,
    payload: Bytes,
    map: &dyn Advertise,
    seen: &mut Vec<UpstreamBroker>,
    unmapped: &mut Vec<i32>,
) -> Result<Parts, ProtocolError> {
    let malformed = |message: String| ProtocolError::Decode {
        api,
        version,
        what: "response node endpoints",
        message,
    };
    let wire = |e: super::wire::WireError| malformed(e.to_string());
    // The header is decoded as everywhere else; the body is not walked whole first (as
    // `split_response` would): that walk alone cost 60 us for a Fetch response of 1,000
    // partitions (benches/results/endpoints.md).
    let (_, rest) = super::codec::response_header_of(api, version, payload.clone())?;
    let body_at = payload.len() - rest.len();
    let body = &payload[body_at..];
    if matches!(api, ApiKey::ShareFetch | ApiKey::ShareAcknowledge) {
        let Some((start, end)) = bounds::response_last_field_at(api as i16, version, body)
            .map_err(|e| malformed(e.to_string()))?
        else {
            return Ok(framed(payload, Bytes::new()));
        };
        // An empty compact array (every response but a leader move's) is one byte: 1.
        if body[start..end] == [1] {
            return Ok(framed(payload, Bytes::new()));
        }
        let value = &body[start..end];
        let rewritten = match api {
            ApiKey::ShareFetch => {
                endpoints::<share_fetch_response::NodeEndpoint>(version, value, map, seen, unmapped)
            }
            _ => endpoints::<share_acknowledge_response::NodeEndpoint>(
                version, value, map, seen, unmapped,
            ),
        }
        .map_err(|e| malformed(e.to_string()))?;
        return Ok(framed_all([
            payload.slice(..body_at + start),
            Bytes::from(rewritten),
            payload.slice(body_at + end..),
        ]));
    }
    // Fetch responses carry the data, often of many partitions: they are skipped by a reader of
    // their own. Produce responses are small: the generic walk.
    let tags_at = match api {
        ApiKey::Fetch => super::fetch::response_tags_at(body).map_err(wire)?,
        _ => match bounds::response_tags_at(api as i16, version, body) {
            Ok(Some(at)) => at,
            Ok(None) => return Ok(framed(payload, Bytes::new())),
            Err(e) => return Err(malformed(e.to_string())),
        },
    };
    let tags = &body[tags_at..];
    let mut c = Cursor::new(tags, 0);
    let count = c.uvarint().map_err(wire)?;
    let mut fields = Vec::with_capacity(count.min(8) as usize);
    for _ in 0..count {
        let tag = c.uvarint().map_err(wire)?;
        let size = c.uvarint().map_err(wire)? as usize;
        fields.push((tag, c.take(size).map_err(wire)?));
    }
    if !fields.iter().any(|(tag, _)| *tag == NODE_ENDPOINTS_TAG) {
        return Ok(framed(payload, Bytes::new()));
    }
    let mut out = BytesMut::with_capacity(tags.len() + 64);
    put_uvarint(&mut out, count);
    for (tag, value) in fields {
        put_uvarint(&mut out, tag);
        if tag != NODE_ENDPOINTS_TAG {
            put_uvarint(&mut out, value.len() as u32);
            out.extend_from_slice(value);
            continue;
        }
        let rewritten = match api {
            ApiKey::Produce => {
                endpoints::<produce_response::NodeEndpoint>(version, value, map, seen, unmapped)
            }
            _ => endpoints::<fetch_response::NodeEndpoint>(version, value, map, seen, unmapped),
        }
        .map_err(|e| malformed(e.to_string()))?;
        put_uvarint(&mut out, rewritten.len() as u32);
        out.extend_from_slice(&rewritten);
    }
    let head = payload.slice(..body_at + tags_at);
    Ok(framed(head, out.freeze()))
}

/// A compact array of endpoints, each advertised at its gateway address, encoded again.
fn endpoints<E: Endpoint>(
    version: i16,
    value: &[u8],
    map: &dyn Advertise,
    seen: &mut Vec<UpstreamBroker>,
    unmapped: &mut Vec<i32>,
) -> anyhow::Result<Vec<u8>> {
    let mut c = Cursor::new(value, 0);
    let n = c
        .count(true)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .unwrap_or(0);
    // The bounds walk checked every entry is present: `n` is backed by the bytes.
    let mut buf = Bytes::copy_from_slice(&value[c.pos()..]);
    let mut kept = Vec::with_capacity(n);
    for _ in 0..n {
        let mut e = E::decode(&mut buf, version)?;
        let (node, host, port) = e.parts();
        seen.push(UpstreamBroker {
            node_id: node.0,
            host: host.to_string(),
            port: *port,
        });
        match map.advertise(node.0) {
            Some((h, p)) => {
                *host = StrBytes::from_string(h);
                *port = i32::from(p);
                kept.push(e);
            }
            None => unmapped.push(node.0),
        }
    }
    let mut out = BytesMut::new();
    put_uvarint(&mut out, kept.len() as u32 + 1);
    for e in &kept {
        e.encode(&mut out, version)?;
    }
    Ok(out.to_vec())
}

/// `head` (the payload up to the tagged fields, or all of it) and `tail` as one frame.
fn framed(head: Bytes, tail: Bytes) -> Parts {
    framed_all([head, tail])
}

/// The pieces of a payload as one frame, behind its length prefix.
fn framed_all<const N: usize>(pieces: [Bytes; N]) -> Parts {
    let mut prefix = BytesMut::with_capacity(4);
    prefix.put_i32(pieces.iter().map(Bytes::len).sum::<usize>() as i32);
    let mut parts = Parts::one(prefix.freeze());
    for piece in pieces {
        parts.push(piece);
    }
    parts
}

#[cfg(test)]
#[path = "endpoints_tests.rs"]
mod tests;
