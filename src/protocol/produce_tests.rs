//! The in-place Produce reader, its splice and the denied-topic answer against kafka-protocol's
//! own decoder and encoder, every version the gateway handles.

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, ProduceResponse, RequestHeader, RequestKind, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::protocol::codec::{
    decode_request, encode_request_with_header, encode_response, read_produce_request,
    response_header,
};
use crate::protocol::frame::LEN_PREFIX;
use crate::protocol::list::{NestedAnswer, TopicAnswer};

fn header(version: i16) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version)
        .with_correlation_id(77)
        .with_client_id(Some(StrBytes::from_static_str("c")))
}

type Topics = Vec<(String, u128, Vec<(i32, Option<Vec<u8>>)>)>;

/// A request of `topics` (name, id, partitions with their record bytes) at `version`.
fn request(version: i16, tid: Option<&str>, acks: i16, topics: &Topics) -> ProduceRequest {
    let topic_data = topics
        .iter()
        .map(|(n, id, ps)| {
            let mut t = TopicProduceData::default().with_partition_data(
                ps.iter()
                    .map(|(index, records)| {
                        PartitionProduceData::default()
                            .with_index(*index)
                            .with_records(records.clone().map(Bytes::from))
                    })
                    .collect(),
            );
            if version >= FIRST_TOPIC_ID {
                t.topic_id = Uuid::from_u128(*id);
            } else {
                t.name = TopicName(StrBytes::from_string(n.clone()));
            }
            t
        })
        .collect();
    ProduceRequest::default()
        .with_transactional_id(tid.map(|t| TransactionalId(StrBytes::from_string(t.into()))))
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(topic_data)
}

fn read(version: i16, req: &ProduceRequest) -> (Bytes, ProduceRequestWire) {
    let frame = encode_request_with_header(ApiKey::Produce, version, &header(version), req)
        .expect("encode");
    let (_, wire) =
        read_produce_request(version, frame.slice(LEN_PREFIX..), u64::MAX).expect("reads");
    (frame, wire)
}

fn decoded(frame: &Bytes, version: i16) -> ProduceRequest {
    match decode_request(ApiKey::Produce, version, frame.slice(LEN_PREFIX..))
        .expect("decodes")
        .body
    {
        RequestKind::Produce(p) => p,
        other => panic!("not a Produce: {other:?}"),
    }
}

fn topics_strategy() -> impl Strategy<Value = Topics> {
    prop::collection::vec(
        (
            "[a-zé.]{0,6}",
            1u128..6,
            prop::collection::vec(
                (
                    0i32..50,
                    prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
                ),
                0..4,
            ),
        ),
        0..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every field the gateway reads is what kafka-protocol decodes; a splice that keeps
    /// everything is the frame as sent; one that drops topics decodes to the request with those
    /// topics dropped, every other field as sent.
    #[test]
    fn reads_and_splices_as_kafka_protocol_decodes(
        version in VERSIONS,
        tid in prop::option::of("[a-z]{0,5}"),
        acks in prop_oneof![Just(-1i16), Just(0), Just(1)],
        topics in topics_strategy(),
        drop_every in 2usize..4,
    ) {
        let req = request(version, tid.as_deref(), acks, &topics);
        let (frame, wire) = read(version, &req);
        prop_assert_eq!(wire.acks, acks);
        prop_assert_eq!(wire.timeout_ms, 30_000);
        prop_assert_eq!(wire.transactional_id(), tid.as_deref());
        prop_assert_eq!(wire.topic_count(), req.topic_data.len());
        let read_topics: Vec<_> = wire.topics().map(|t| {
            let t = t.expect("entry");
            let ps: Vec<_> = t.partitions().map(|p| (p.index, p.records.map(<[u8]>::to_vec))).collect();
            (t.topic.to_string(), ps)
        }).collect();
        let want: Vec<_> = req.topic_data.iter().map(|t| {
            let r = if version >= FIRST_TOPIC_ID {
                TopicRef::Id(t.topic_id)
            } else {
                TopicRef::Name(t.name.0.as_str())
            };
            let ps: Vec<_> = t.partition_data.iter()
                .map(|p| (p.index, p.records.as_ref().map(|r| r.to_vec()))).collect();
            (r.to_string(), ps)
        }).collect();
        prop_assert_eq!(read_topics, want);

        prop_assert_eq!(wire.splice(|_| true).expect("splice"), frame);
        let mut i = 0;
        let spliced = wire.splice(|_| { i += 1; i % drop_every != 0 }).expect("splice");
        let mut want = req.clone();
        let mut j = 0;
        want.topic_data.retain(|_| { j += 1; j % drop_every != 0 });
        prop_assert_eq!(decoded(&spliced, version), want);
    }

    /// The gateway's answer for a denied topic is the bytes kafka-protocol encodes for
    /// `new PartitionResponse(error)` on every partition.
    #[test]
    fn denied_answers_are_what_kafka_protocol_encodes(
        version in VERSIONS,
        topics in topics_strategy(),
        code in prop_oneof![Just(29i16), Just(100)],
    ) {
        let req = request(version, None, 1, &topics);
        let (_, wire) = read(version, &req);
        let partition = PartitionProduceResponse::default()
            .with_error_code(code)
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1);
        let nested = NestedAnswer::new(ApiKey::Produce, version, &partition, |p, i| p.index = i)
            .expect("template");
        let denied = TopicAnswer::new(ApiKey::Produce, version, nested);
        let shell = crate::protocol::list::Shell::answering(ApiKey::Produce, version, &header(version),
            &ProduceResponse::default(), |r, v| r.responses = v).expect("shell");
        let got = shell.finish(wire.topic_count(), 0, |out| {
            for t in wire.topics() {
                let t = t.expect("entry");
                let before = out.len();
                denied.write(out, &t)?;
                assert_eq!(denied.size(&t), out.len() - before, "the size written is the size told");
            }
            Ok(wire.topic_count())
        }).expect("respond");
        let responses = req.topic_data.iter().map(|t| {
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partition_responses(t.partition_data.iter()
                    .map(|p| partition.clone().with_index(p.index)).collect())
        }).collect();
        let want = encode_response(ApiKey::Produce, version, &response_header(77),
            &ProduceResponse::default().with_responses(responses)).expect("encode");
        prop_assert_eq!(got, want);
    }

    /// Whatever the bytes, reading never panics, and what it accepts kafka-protocol decodes.
    #[test]
    fn arbitrary_bodies_are_read_or_refused_without_panic(
        version in VERSIONS,
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let frame = encode_request_with_header(ApiKey::Produce, version, &header(version),
            &ProduceRequest::default()).expect("encode");
        let payload = frame.slice(LEN_PREFIX..);
        let body_at = body_at(&payload, version);
        let mut bytes = payload[..body_at].to_vec();
        bytes.extend_from_slice(&body);
        let payload = Bytes::from(bytes);
        if let Ok(wire) = ProduceRequestWire::parse(version, payload.clone(), body_at) {
            for t in wire.topics() {
                let _ = t.map(|t| t.partitions().count());
            }
            let spliced = wire.splice(|_| true).expect("splice of a read request");
            prop_assert!(decode_request(ApiKey::Produce, version, spliced.slice(LEN_PREFIX..)).is_ok());
        }
    }
}

/// Where the body starts in a request payload (after its header).
fn body_at(payload: &Bytes, version: i16) -> usize {
    let mut h = payload.clone();
    RequestHeader::decode(&mut h, ApiKey::Produce.request_header_version(version)).expect("header");
    payload.len() - h.len()
}

#[test]
fn names_that_are_not_utf8_negative_lengths_and_truncated_lists_are_refused() {
    for version in [8, 12] {
        let topics = vec![("ab".to_string(), 1, vec![(0, Some(vec![7; 3]))])];
        let (frame, _) = read(version, &request(version, Some("tx"), 1, &topics));
        let payload = frame.slice(LEN_PREFIX..);
        let body_at = body_at(&payload, version);
        let mut bad = payload.to_vec();
        let at = bad.windows(2).position(|w| w == b"ab").expect("the name");
        bad[at] = 0xFF;
        let err = ProduceRequestWire::parse(version, Bytes::from(bad), body_at).expect_err("name");
        assert_eq!(err.what, "topic name is not UTF-8");
        let mut bad = payload.to_vec();
        let at = bad.windows(2).position(|w| w == b"tx").expect("the id");
        bad[at] = 0xC0;
        let err = ProduceRequestWire::parse(version, Bytes::from(bad), body_at).expect_err("tid");
        assert_eq!(err.what, "transactional id is not UTF-8");
        let short = payload.slice(..payload.len() - 2);
        assert!(ProduceRequestWire::parse(version, short, body_at).is_err());
    }
    // A records length of -2 (v8: an i32) is neither null nor a length.
    let topics = vec![("ab".to_string(), 1, vec![(0, Some(vec![]))])];
    let (frame, _) = read(8, &request(8, None, 1, &topics));
    let mut bad = frame[LEN_PREFIX..].to_vec();
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&(-2i32).to_be_bytes());
    let body_at = body_at(&frame.slice(LEN_PREFIX..), 8);
    let err = ProduceRequestWire::parse(8, Bytes::from(bad), body_at).expect_err("length");
    assert_eq!(err.what, "negative records length");
}

#[test]
fn a_request_too_long_to_authorize_is_refused_before_its_list_is_walked() {
    let version = 9;
    let topics: Topics = (0..2_000)
        .map(|i| (format!("t{i}"), 1, vec![(0, None)]))
        .collect();
    let req = request(version, None, 1, &topics);
    let frame = encode_request_with_header(ApiKey::Produce, version, &header(version), &req)
        .expect("encode");
    let budget = planning_bytes(1_000);
    let err =
        read_produce_request(version, frame.slice(LEN_PREFIX..), budget).expect_err("refused");
    assert_eq!(err.reason(), "decoded_too_large");
    assert!(
        read_produce_request(version, frame.slice(LEN_PREFIX..), planning_bytes(2_000)).is_ok()
    );
}
