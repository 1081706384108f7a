//! Request and response codec: header peeking, bounds-checked body decoding, and response encoding.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::bounds::{self, BoundsError};
use super::fetch::{self, FetchRequestWire};
use super::frame::LEN_PREFIX;
use super::metadata::{self, MetadataRequestWire};
use super::names::{self, NameListWire};
use super::produce::{self, ProduceRequestWire};
use super::wire::WireError;

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame too short for a request header ({0} bytes)")]
    ShortHeader(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{api:?} v{version}: {source}")]
    Bounds {
        api: ApiKey,
        version: i16,
        source: BoundsError,
    },
    #[error("{api:?} v{version}: cannot decode {what}: {message}")]
    Decode {
        api: ApiKey,
        version: i16,
        what: &'static str,
        message: String,
    },
    #[error("{api:?} v{version}: cannot encode response: {message}")]
    Encode {
        api: ApiKey,
        version: i16,
        message: String,
    },
    #[error("response correlation id {got} does not match the request's {expected}")]
    CorrelationMismatch { expected: i32, got: i32 },
}

impl ProtocolError {
    /// Label for the rejected-frames metric.
    pub fn reason(&self) -> &'static str {
        match self {
            ProtocolError::Bounds { source, .. } => source.reason(),
            _ => "malformed",
        }
    }
}

/// The fixed-position part of every request header, readable whatever the header version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMeta {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads api key, version and correlation id from a request payload (length prefix removed).
pub fn peek_request(payload: &[u8]) -> Result<RequestMeta, ProtocolError> {
    if payload.len() < 8 {
        return Err(ProtocolError::ShortHeader(payload.len()));
    }
    Ok(RequestMeta {
        api_key: i16::from_be_bytes([payload[0], payload[1]]),
        api_version: i16::from_be_bytes([payload[2], payload[3]]),
        correlation_id: i32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]),
    })
}

/// Correlation id of a response payload (length prefix removed); it leads every header version.
pub fn peek_response_correlation(payload: &[u8]) -> Option<i32> {
    (payload.len() >= 4)
        .then(|| i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]))
}

/// The `session_id` of a Fetch response (v7+) without decoding it: after the correlation id and,
/// from v12, the header's tagged fields come `throttle_time_ms`, `error_code` and `session_id`.
/// Record data, however large, is never looked at. `None` if the payload is too short.
pub fn peek_fetch_session_id(version: i16, payload: &[u8]) -> Option<i32> {
    if version < 7 {
        return None;
    }
    let at = response_body_at(ApiKey::Fetch, version, payload)?.checked_add(4 + 2)?;
    let b = payload.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Where the body of a response payload (no length prefix) starts: after the correlation id and,
/// for flexible headers, the header's tagged fields. `None` if the payload is too short.
pub fn response_body_at(api: ApiKey, version: i16, payload: &[u8]) -> Option<usize> {
    fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            let b = *buf.get(*at)?;
            *at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut at = 4;
    payload.get(..at)?;
    if api.response_header_version(version) >= 1 {
        let tags = varint(payload, &mut at)?;
        for _ in 0..tags.min(payload.len() as u64) {
            let _tag = varint(payload, &mut at)?;
            let size = varint(payload, &mut at)?;
            at = at.checked_add(usize::try_from(size).ok()?)?;
        }
    }
    Some(at)
}

#[derive(Debug)]
pub struct DecodedRequest {
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// A request as the gateway holds it between reading and forwarding: decoded whole, or, for
/// Metadata and Fetch (whose topic and partition lists are the longest lists of small entries a
/// client sends) and Produce (the other request of the data path), read in place from its bytes.
#[derive(Debug)]
pub enum Request {
    Decoded(DecodedRequest),
    Metadata {
        header: RequestHeader,
        wire: MetadataRequestWire,
    },
    Fetch {
        header: RequestHeader,
        wire: FetchRequestWire,
    },
    Produce {
        header: RequestHeader,
        wire: ProduceRequestWire,
    },
    /// DescribeGroups, DeleteGroups, ConsumerGroupDescribe, ShareGroupDescribe: one list of group
    /// names.
    Names {
        header: RequestHeader,
        wire: NameListWire,
    },
}

impl Request {
    pub fn header(&self) -> &RequestHeader {
        match self {
            Request::Decoded(r) => &r.header,
            Request::Metadata { header, .. }
            | Request::Fetch { header, .. }
            | Request::Produce { header, .. }
            | Request::Names { header, .. } => header,
        }
    }

    /// The decoded body; `None` for a request read in place.
    pub fn body(&self) -> Option<&RequestKind> {
        match self {
            Request::Decoded(r) => Some(&r.body),
            Request::Metadata { .. }
            | Request::Fetch { .. }
            | Request::Produce { .. }
            | Request::Names { .. } => None,
        }
    }

    /// Whether the client waits for an answer: not for an acks=0 Produce.
    pub fn expects_response(&self) -> bool {
        !matches!(self, Request::Produce { wire, .. } if wire.acks == 0)
    }
}

/// Whether the session reads requests of `api` at `version` in place ([`read_request`]) rather
/// than decoding them whole.
pub fn reads_in_place(api: ApiKey, version: i16) -> bool {
    api == ApiKey::Metadata
        || (api == ApiKey::Fetch && fetch::VERSIONS.contains(&version))
        || (api == ApiKey::Produce && produce::VERSIONS.contains(&version))
        || names::applies(api, version)
}

/// Reads a request for the session: Metadata, Fetch, Produce and the group-name lists in place
/// ([`read_metadata_request`], [`read_fetch_request`], [`read_produce_request`],
/// [`read_names_request`]), every other API
/// decoded ([`decode_request_within`]), all held to `budget`.
pub fn read_request(
    api: ApiKey,
    version: i16,
    payload: Bytes,
    budget: u64,
) -> Result<Request, ProtocolError> {
    if api == ApiKey::Metadata {
        let (header, wire) = read_metadata_request(version, payload, budget)?;
        return Ok(Request::Metadata { header, wire });
    }
    if api == ApiKey::Fetch && fetch::VERSIONS.contains(&version) {
        let (header, wire) = read_fetch_request(version, payload, budget)?;
        return Ok(Request::Fetch { header, wire });
    }
    if api == ApiKey::Produce && produce::VERSIONS.contains(&version) {
        let (header, wire) = read_produce_request(version, payload, budget)?;
        return Ok(Request::Produce { header, wire });
    }
    if names::applies(api, version) {
        let (header, wire) = read_names_request(api, version, payload, budget)?;
        return Ok(Request::Names { header, wire });
    }
    decode_request_within(api, version, payload, budget).map(Request::Decoded)
}

/// Decoded size a request of any length may reach: small requests legitimately decode to several
/// times their wire size (a 20-byte topic entry becomes a 72-byte struct), and a megabyte is
/// noise next to the gateway's baseline.
pub const DEFAULT_DECODED_FLOOR: u64 = 1 << 20;

/// What decoding a request payload of `len` bytes may allocate: its own size plus `floor`. With the
/// frame itself, a request's memory stays within twice its size plus the floor, and requests of
/// ordinary shape (names and partitions decode to one or two times their wire size) pass.
pub fn decoded_budget(len: usize, floor: u64) -> u64 {
    (len as u64).saturating_add(floor)
}

/// Decodes a whole request payload. The body's lengths and counts are bounded against the bytes left
/// before kafka-protocol sees it, so a hostile count fails here instead of allocating; so is what
/// the decoded body will take ([`decoded_budget`] with [`DEFAULT_DECODED_FLOOR`]).
pub fn decode_request(
    api: ApiKey,
    version: i16,
    payload: Bytes,
) -> Result<DecodedRequest, ProtocolError> {
    let budget = decoded_budget(payload.len(), DEFAULT_DECODED_FLOOR);
    decode_request_within(api, version, payload, budget)
}

/// [`decode_request`] with an explicit bound on the decoded size (`limits.max_decoded_bytes`).
pub fn decode_request_within(
    api: ApiKey,
    version: i16,
    payload: Bytes,
    budget: u64,
) -> Result<DecodedRequest, ProtocolError> {
    let mut buf = payload;
    let header = request_header(api, version, &mut buf)?;
    bounds::estimate_request_body(api as i16, version, &buf, budget).map_err(|source| {
        ProtocolError::Bounds {
            api,
            version,
            source,
        }
    })?;
    let body = RequestKind::decode(api, &mut buf, version).map_err(|e| ProtocolError::Decode {
        api,
        version,
        what: "request body",
        message: e.to_string(),
    })?;
    Ok(DecodedRequest { header, body })
}

/// Decodes a request's header from the front of `buf` (which is left at the body).
/// Lowers a Fetch request's `max_bytes` to `cap` (`frame` with its length prefix), as Kafka caps a
/// consumer's fetch by what its byte-rate quota allows in the quota window (`KafkaApis`:
/// `maxQuotaWindowBytes`); the frame is copied only when its value is larger. A frame that does
/// not read as a Fetch request is returned as it is (it was checked before it got here).
pub fn cap_fetch_max_bytes(frame: Bytes, version: i16, cap: i32) -> Bytes {
    let mut buf = frame.slice(LEN_PREFIX.min(frame.len())..);
    let total = buf.len();
    if request_header(ApiKey::Fetch, version, &mut buf).is_err() {
        return frame;
    }
    let at = LEN_PREFIX + (total - buf.len()) + super::fetch::max_bytes_offset(version);
    let Some(field) = frame.get(at..at + 4) else {
        return frame;
    };
    let current = i32::from_be_bytes([field[0], field[1], field[2], field[3]]);
    if current <= cap {
        return frame;
    }
    let mut out = bytes::BytesMut::from(&frame[..]);
    out[at..at + 4].copy_from_slice(&cap.max(1).to_be_bytes());
    out.freeze()
}

fn request_header(
    api: ApiKey,
    version: i16,
    buf: &mut Bytes,
) -> Result<RequestHeader, ProtocolError> {
    let header = RequestHeader::decode(buf, api.request_header_version(version)).map_err(|e| {
        ProtocolError::Decode {
            api,
            version,
            what: "request header",
            message: e.to_string(),
        }
    })?;
    check_header_tags(api, version, &header.unknown_tagged_fields)?;
    Ok(header)
}

/// Reads a Metadata request without decoding its topics: the header is decoded, the body
/// bounds-checked by the walker and then read in place ([`MetadataRequestWire`]). A request of
/// tens of thousands of names costs its own bytes, not a struct per name; one whose authorization
/// could allocate more than `budget` ([`metadata::planning_bytes`]) is refused, as a request
/// whose decoding would is.
pub fn read_metadata_request(
    version: i16,
    payload: Bytes,
    budget: u64,
) -> Result<(RequestHeader, MetadataRequestWire), ProtocolError> {
    read_in_place(
        ApiKey::Metadata,
        version,
        payload,
        budget,
        |body| {
            MetadataRequestWire::peek_topic_count(version, body)
                .ok()
                .flatten()
                .unwrap_or(0)
        },
        metadata::planning_bytes,
        |payload, body_at| MetadataRequestWire::parse(version, payload, body_at),
    )
}

/// Reads a Fetch request in place (v4-15, the gateway's range): its topic count is checked against
/// `budget` ([`fetch::planning_bytes`]) before the list is walked, then the body is bounds-checked
/// and read.
pub fn read_fetch_request(
    version: i16,
    payload: Bytes,
    budget: u64,
) -> Result<(RequestHeader, FetchRequestWire), ProtocolError> {
    read_in_place(
        ApiKey::Fetch,
        version,
        payload,
        budget,
        |body| FetchRequestWire::peek_topic_count(version, body).unwrap_or(0),
        fetch::planning_bytes,
        |payload, body_at| FetchRequestWire::parse(version, payload, body_at),
    )
}

/// Reads a Produce request in place (v3-13): its topic count is checked against `budget`
/// ([`produce::planning_bytes`]) before the list is walked, then the body is bounds-checked and
/// read; record bytes are delimited, never copied.
pub fn read_produce_request(
    version: i16,
    payload: Bytes,
    budget: u64,
) -> Result<(RequestHeader, ProduceRequestWire), ProtocolError> {
    read_in_place(
        ApiKey::Produce,
        version,
        payload,
        budget,
        |body| ProduceRequestWire::peek_topic_count(version, body).unwrap_or(0),
        produce::planning_bytes,
        |payload, body_at| ProduceRequestWire::parse(version, payload, body_at),
    )
}

/// Reads a request that is one list of group names in place ([`names::applies`]): its count is
/// checked against `budget` ([`names::planning_bytes`]) before the list is walked.
pub fn read_names_request(
    api: ApiKey,
    version: i16,
    payload: Bytes,
    budget: u64,
) -> Result<(RequestHeader, NameListWire), ProtocolError> {
    read_in_place(
        api,
        version,
        payload,
        budget,
        |body| NameListWire::peek_count(api, version, body).unwrap_or(0),
        names::planning_bytes,
        |payload, body_at| NameListWire::parse(api, version, payload, body_at),
    )
}

/// Reads a request in place: the count of its longest list (`count`, read from the body first)
/// is checked against `budget` through what authorizing that many entries may allocate
/// (`planning`), so a list too long to authorize is refused before it is walked; then the body
/// is bounds-checked and `parse`d from the payload and where its body starts.
fn read_in_place<W>(
    api: ApiKey,
    version: i16,
    payload: Bytes,
    budget: u64,
    count: impl FnOnce(&[u8]) -> usize,
    planning: fn(usize) -> u64,
    parse: impl FnOnce(Bytes, usize) -> Result<W, WireError>,
) -> Result<(RequestHeader, W), ProtocolError> {
    let mut buf = payload.clone();
    let header = request_header(api, version, &mut buf)?;
    let body_at = payload.len() - buf.len();
    let planned = planning(count(&buf));
    if planned > budget {
        return Err(ProtocolError::Bounds {
            api,
            version,
            source: BoundsError::DecodedTooLarge {
                offset: 0,
                decoded: planned,
                budget,
            },
        });
    }
    bounds::measure_request_body(api as i16, version, &buf).map_err(|source| {
        ProtocolError::Bounds {
            api,
            version,
            source,
        }
    })?;
    drop(buf);
    let wire = parse(payload, body_at).map_err(|e| ProtocolError::Decode {
        api,
        version,
        what: "request body",
        message: e.to_string(),
    })?;
    Ok((header, wire))
}

/// A response's header, decoded, and its body as the upstream sent it (not walked: a caller that
/// reads only part of the body checks what it reads).
pub fn response_header_of(
    api: ApiKey,
    version: i16,
    payload: Bytes,
) -> Result<(ResponseHeader, Bytes), ProtocolError> {
    let mut buf = payload;
    let header =
        ResponseHeader::decode(&mut buf, api.response_header_version(version)).map_err(|e| {
            ProtocolError::Decode {
                api,
                version,
                what: "response header",
                message: e.to_string(),
            }
        })?;
    check_header_tags(api, version, &header.unknown_tagged_fields)?;
    Ok((header, buf))
}

/// Splits a response payload into its header and the body bytes, bounds-checking the body and
/// dropping any bytes after it.
pub fn split_response(
    api: ApiKey,
    version: i16,
    payload: Bytes,
) -> Result<(ResponseHeader, Bytes), ProtocolError> {
    let (header, mut buf) = response_header_of(api, version, payload)?;
    let end = bounds::measure_response_body(api as i16, version, &buf).map_err(|source| {
        ProtocolError::Bounds {
            api,
            version,
            source,
        }
    })?;
    // Bytes after the body are dropped here, as a decode and re-encode drops them, so that paths
    // passing parts of a body on unchanged do not forward them either.
    buf.truncate(end);
    Ok((header, buf))
}

/// Headers are decoded by kafka-protocol directly; it stores tag numbers of 2^31 and above as negative
/// keys and would drop them when re-encoding, leaving a frame whose tag count lies. Refused here, as
/// the bounds walker refuses them in bodies.
fn check_header_tags(
    api: ApiKey,
    version: i16,
    tags: &std::collections::BTreeMap<i32, Bytes>,
) -> Result<(), ProtocolError> {
    match tags.keys().next() {
        Some(&tag) if tag < 0 => Err(ProtocolError::Bounds {
            api,
            version,
            source: BoundsError::TagOutOfRange {
                offset: 0,
                tag: tag as u32,
            },
        }),
        _ => Ok(()),
    }
}

/// Decodes a response body of a known type (after [`split_response`]).
pub fn decode_body<T: Decodable>(
    api: ApiKey,
    version: i16,
    mut body: Bytes,
) -> Result<T, ProtocolError> {
    T::decode(&mut body, version).map_err(|e| ProtocolError::Decode {
        api,
        version,
        what: "response body",
        message: e.to_string(),
    })
}

/// Encodes a response (header + body) into a frame with its length prefix.
pub fn encode_response<T: Encodable>(
    api: ApiKey,
    version: i16,
    header: &ResponseHeader,
    body: &T,
) -> Result<Bytes, ProtocolError> {
    let err = |e: anyhow::Error| ProtocolError::Encode {
        api,
        version,
        message: e.to_string(),
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.extend_from_slice(&[0u8; LEN_PREFIX]);
    header
        .encode(&mut buf, api.response_header_version(version))
        .map_err(err)?;
    body.encode(&mut buf, version).map_err(err)?;
    let len = (buf.len() - LEN_PREFIX) as i32;
    buf[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// A response header carrying only a correlation id.
pub fn response_header(correlation_id: i32) -> ResponseHeader {
    let mut h = ResponseHeader::default();
    h.correlation_id = correlation_id;
    h
}

/// Encodes a request (for the gateway's own upstream queries) into a frame with its length prefix.
pub fn encode_request<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &'static str,
    body: &T,
) -> Result<Bytes, ProtocolError> {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(kafka_protocol::protocol::StrBytes::from_static_str(
        client_id,
    ));
    encode_request_with_header(api, version, &header, body)
}

/// Encodes a request under a given header into a frame with its length prefix: the reduced part
/// of a partially denied client request keeps the client's own header (correlation id, client
/// id, tagged fields), so the upstream's answer pairs with the request as the original would.
pub fn encode_request_with_header<T: Encodable>(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    body: &T,
) -> Result<Bytes, ProtocolError> {
    encode_framed(api, version, header, |buf| body.encode(buf, version))
}

/// [`encode_request_with_header`] for a decoded request of any API (tests and fuzzing hold
/// requests as `RequestKind`).
pub fn encode_request_kind_with_header(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    body: &RequestKind,
) -> Result<Bytes, ProtocolError> {
    encode_framed(api, version, header, |buf| body.encode(buf, version))
}

fn encode_framed(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    body: impl FnOnce(&mut BytesMut) -> anyhow::Result<()>,
) -> Result<Bytes, ProtocolError> {
    let err = |e: anyhow::Error| ProtocolError::Encode {
        api,
        version,
        message: format!("request: {e}"),
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.extend_from_slice(&[0u8; LEN_PREFIX]);
    header
        .encode(&mut buf, api.request_header_version(version))
        .map_err(err)?;
    body(&mut buf).map_err(err)?;
    let len = i32::try_from(buf.len() - LEN_PREFIX).map_err(|_| ProtocolError::Encode {
        api,
        version,
        message: "request larger than 2 GiB".into(),
    })?;
    buf[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{MetadataRequest, ProduceRequest};

    #[test]
    fn a_fetch_is_capped_at_every_version_and_nothing_else_changes() {
        for version in crate::protocol::fetch::VERSIONS {
            let mut req = kafka_protocol::messages::FetchRequest::default();
            req.max_wait_ms = 500;
            req.min_bytes = 1;
            req.max_bytes = 50 << 20;
            req.isolation_level = 1;
            req.session_epoch = -1;
            let frame =
                encode_request(ApiKey::Fetch, version, 7, "consumer-app", &req).expect("encode");
            let capped = cap_fetch_max_bytes(frame.clone(), version, 2 << 20);
            let decoded = decode_request(ApiKey::Fetch, version, capped.slice(LEN_PREFIX..))
                .expect("decodes");
            let kafka_protocol::messages::RequestKind::Fetch(got) = decoded.body else {
                panic!("a Fetch")
            };
            let mut want = req.clone();
            want.max_bytes = 2 << 20;
            assert_eq!(got, want, "v{version}");
            assert_eq!(capped.len(), frame.len());
            // Already within the cap: the same bytes, not a copy.
            let small = cap_fetch_max_bytes(capped.clone(), version, 4 << 20);
            assert_eq!(small.as_ptr(), capped.as_ptr(), "v{version}");
        }
    }

    #[test]
    fn fetch_session_ids_are_read_without_decoding_at_every_version() {
        for version in 7..=15i16 {
            let mut resp = kafka_protocol::messages::FetchResponse::default();
            resp.throttle_time_ms = 3;
            resp.error_code = 0;
            resp.session_id = 0x1234_5678;
            let mut header = response_header(9);
            if version >= 12 {
                // A tagged field in the header must be stepped over.
                header
                    .unknown_tagged_fields
                    .insert(5, bytes::Bytes::from_static(b"xyz"));
            }
            let frame = encode_response(ApiKey::Fetch, version, &header, &resp).expect("encode");
            let payload = &frame[LEN_PREFIX..];
            assert_eq!(
                peek_fetch_session_id(version, payload),
                Some(0x1234_5678),
                "v{version}"
            );
            // Every truncation is None, never a panic.
            for cut in 0..payload.len().min(24) {
                let _ = peek_fetch_session_id(version, &payload[..cut]);
            }
        }
        assert_eq!(
            peek_fetch_session_id(6, &[0; 32]),
            None,
            "no sessions before v7"
        );
    }

    #[test]
    fn request_round_trip_through_decode() {
        let mut body = ProduceRequest::default();
        body.acks = 0;
        body.timeout_ms = 1234;
        let frame = encode_request(ApiKey::Produce, 9, 42, "test", &body).expect("encode");
        let payload = frame.slice(LEN_PREFIX..);
        let meta = peek_request(&payload).expect("peek");
        assert_eq!(
            meta,
            RequestMeta {
                api_key: 0,
                api_version: 9,
                correlation_id: 42
            }
        );
        let decoded = decode_request(ApiKey::Produce, 9, payload).expect("decode");
        match decoded.body {
            RequestKind::Produce(p) => assert_eq!((p.acks, p.timeout_ms), (0, 1234)),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(decoded.header.client_id.as_deref(), Some("test"));
    }

    #[test]
    fn every_prefix_of_a_request_fails_cleanly() {
        let mut body = MetadataRequest::default();
        body.topics = Some(vec![Default::default(), Default::default()]);
        for version in [1i16, 9, 12] {
            let frame = encode_request(ApiKey::Metadata, version, 7, "c", &body).expect("encode");
            let payload = frame.slice(LEN_PREFIX..);
            for cut in 0..payload.len() {
                // Must never panic; a prefix may only decode if the bytes left happen to form a message.
                let _ = decode_request(ApiKey::Metadata, version, payload.slice(..cut));
            }
            decode_request(ApiKey::Metadata, version, payload).expect("whole frame decodes");
        }
    }

    /// Found by the rewrite_response fuzz target: a header tag of 2^32-1 made a rewritten
    /// FindCoordinator v4 response claim one tagged field and carry none.
    #[test]
    fn tags_above_i32_max_are_refused_in_headers_and_bodies() {
        let header_tag = hex("00000001 01ffffffff0f00 000000000100");
        let err = split_response(ApiKey::FindCoordinator, 4, header_tag).expect_err("header tag");
        assert!(
            matches!(
                err,
                ProtocolError::Bounds {
                    source: BoundsError::TagOutOfRange { .. },
                    ..
                }
            ),
            "{err}"
        );
        let body_tag = hex("000000070000000000010000000001010000000001808080800800");
        let err = split_response(ApiKey::Metadata, 9, body_tag).expect_err("body tag");
        assert!(
            matches!(
                err,
                ProtocolError::Bounds {
                    source: BoundsError::TagOutOfRange { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    fn hex(s: &str) -> Bytes {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect::<Vec<u8>>();
        Bytes::from(bytes)
    }

    #[test]
    fn short_header_is_an_error() {
        assert!(matches!(
            peek_request(&[0, 3, 0]),
            Err(ProtocolError::ShortHeader(3))
        ));
    }
}
