//! The `throttle_time_ms` of Produce and Fetch responses, read and set in place: the field is
//! found by walking the frame (a Fetch response's records are never looked at), and a new value
//! is written into a copy of the bytes up to the field only.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

use super::frame::{Parts, LEN_PREFIX};

/// Where `throttle_time_ms` sits in a response frame (length prefix included), for the APIs and
/// versions that have it at a place found without decoding: Fetch v1+ (the body's first field)
/// and Produce (the body's last field, before the tagged fields). `None` otherwise or if the
/// frame is malformed.
pub fn field_at(api: ApiKey, version: i16, frame: &[u8]) -> Option<usize> {
    let payload = frame.get(LEN_PREFIX..)?;
    let at = super::codec::response_body_at(api, version, payload)?;
    let field = match api {
        ApiKey::Fetch if version >= 1 => at,
        ApiKey::Produce if version >= 1 => {
            let body = payload.get(at..)?;
            let (start, end) =
                super::bounds::response_last_field_at(api as i16, version, body).ok()??;
            if end - start != 4 {
                return None;
            }
            at + start
        }
        _ => return None,
    };
    payload.get(field..field + 4)?;
    Some(LEN_PREFIX + field)
}

/// The throttle time the frame carries, if [`field_at`] finds it.
pub fn read(api: ApiKey, version: i16, frame: &[u8]) -> Option<i32> {
    let at = field_at(api, version, frame)?;
    let b = frame.get(at..at + 4)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `frame` with `throttle_time_ms` set to `ms` at `at` (from [`field_at`] on the same frame):
/// the bytes up to the field are copied, the rest is passed on as it is.
pub fn set(frame: Parts, at: usize, ms: i32) -> Parts {
    let mut parts = frame.into_vec().into_iter();
    let Some(first) = parts.next() else {
        return Parts::default();
    };
    let rest: Vec<Bytes> = parts.collect();
    let (first, rest) = if first.len() >= at + 4 {
        (first, rest)
    } else {
        // The field spans parts (never for the frames built here): join them.
        (
            Parts::from_vec([vec![first], rest].concat()).joined(),
            Vec::new(),
        )
    };
    let mut head = BytesMut::with_capacity(at + 4);
    head.extend_from_slice(&first[..at]);
    head.extend_from_slice(&ms.to_be_bytes());
    let mut out = Parts::one(head.freeze());
    out.push(first.slice(at + 4..));
    for p in rest {
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{FetchResponse, ProduceResponse, ResponseHeader};
    use kafka_protocol::protocol::Encodable;

    fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Bytes {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0; 4]);
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut buf, api.response_header_version(version))
            .expect("header encodes");
        body.encode(&mut buf, version).expect("body encodes");
        let len = (buf.len() - 4) as u32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        buf.freeze()
    }

    #[test]
    fn found_and_set_in_every_version_of_produce_and_fetch() {
        for version in 4..=16 {
            let body = FetchResponse::default().with_throttle_time_ms(11);
            let f = frame(ApiKey::Fetch, version, &body);
            assert_eq!(
                read(ApiKey::Fetch, version, &f),
                Some(11),
                "fetch v{version}"
            );
            let at = field_at(ApiKey::Fetch, version, &f).expect("present in the test");
            let set = set(Parts::one(f), at, 250).joined();
            let expect = frame(ApiKey::Fetch, version, &body.with_throttle_time_ms(250));
            assert_eq!(set, expect, "fetch v{version}");
        }
        for version in 3..=13 {
            let body = ProduceResponse::default().with_throttle_time_ms(5);
            let f = frame(ApiKey::Produce, version, &body);
            assert_eq!(
                read(ApiKey::Produce, version, &f),
                Some(5),
                "produce v{version}"
            );
            let at = field_at(ApiKey::Produce, version, &f).expect("present in the test");
            let set = set(Parts::one(f), at, 1234).joined();
            let expect = frame(ApiKey::Produce, version, &body.with_throttle_time_ms(1234));
            assert_eq!(set, expect, "produce v{version}");
        }
    }

    #[test]
    fn truncated_frames_have_no_field() {
        let f = frame(ApiKey::Fetch, 12, &FetchResponse::default());
        for n in 0..LEN_PREFIX + 5 {
            assert_eq!(read(ApiKey::Fetch, 12, &f[..n]), None);
        }
        assert_eq!(read(ApiKey::Metadata, 12, &f), None);
    }
}
