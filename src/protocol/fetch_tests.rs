//! The in-place Fetch reader and the denied-topic writer against kafka-protocol's own decoder and
//! encoder, every version the gateway handles.

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, RequestHeader, RequestKind, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::protocol::codec::{
    decode_request, encode_request_with_header, encode_response, read_fetch_request,
    response_header,
};

fn header(version: i16) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(version)
        .with_correlation_id(77)
        .with_client_id(Some(StrBytes::from_static_str("c")))
}

fn name(n: &str) -> TopicName {
    TopicName(StrBytes::from_string(n.to_string()))
}

/// A request of `topics` (name, id, partitions) and `forgotten` at `version`, with every field
/// set to something other than its default where the version has it.
fn request(
    version: i16,
    topics: &[(String, u128, Vec<i32>)],
    forgotten: &[(String, u128)],
    replica_id: i32,
) -> FetchRequest {
    let by_id = version >= FIRST_TOPIC_ID;
    let topics = topics
        .iter()
        .map(|(n, id, ps)| {
            let mut t = FetchTopic::default().with_partitions(
                ps.iter()
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_current_leader_epoch(if version >= 9 { 3 } else { -1 })
                            .with_fetch_offset(i64::from(*p) * 10)
                            .with_last_fetched_epoch(if version >= 12 { 2 } else { -1 })
                            .with_log_start_offset(if version >= 5 { 5 } else { -1 })
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            );
            if by_id {
                t.topic_id = Uuid::from_u128(*id);
            } else {
                t.topic = name(n);
            }
            t
        })
        .collect();
    let forgotten = if version >= 7 {
        forgotten
            .iter()
            .map(|(n, id)| {
                let mut f = ForgottenTopic::default().with_partitions(vec![0, 1]);
                if by_id {
                    f.topic_id = Uuid::from_u128(*id);
                } else {
                    f.topic = name(n);
                }
                f
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut r = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 24)
        .with_isolation_level(1)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten);
    if version >= 7 {
        r.session_id = 42;
        r.session_epoch = 3;
    }
    if version >= 11 {
        r.rack_id = StrBytes::from_static_str("rack-a");
    }
    if version >= 15 {
        r.replica_state = ReplicaState::default()
            .with_replica_id(BrokerId(replica_id))
            .with_replica_epoch(9);
    } else {
        r.replica_id = BrokerId(replica_id);
    }
    r
}

fn read(version: i16, req: &FetchRequest) -> (Bytes, FetchRequestWire) {
    let frame =
        encode_request_with_header(ApiKey::Fetch, version, &header(version), req).expect("encode");
    let (_, wire) =
        read_fetch_request(version, frame.slice(LEN_PREFIX..), u64::MAX).expect("reads");
    (frame, wire)
}

fn decoded(frame: &Bytes, version: i16) -> FetchRequest {
    match decode_request(ApiKey::Fetch, version, frame.slice(LEN_PREFIX..))
        .expect("decodes")
        .body
    {
        RequestKind::Fetch(f) => f,
        other => panic!("not a Fetch: {other:?}"),
    }
}

fn topics_strategy() -> impl Strategy<Value = Vec<(String, u128, Vec<i32>)>> {
    prop::collection::vec(
        (
            "[a-zé.]{0,6}",
            1u128..6,
            prop::collection::vec(0i32..50, 0..4),
        ),
        0..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every field the gateway reads is what kafka-protocol decodes; a splice that keeps
    /// everything is the frame as sent; a splice that drops entries and the session decodes to
    /// the request with those entries dropped and the session reset.
    #[test]
    fn reads_and_splices_as_kafka_protocol_decodes(
        version in VERSIONS,
        topics in topics_strategy(),
        forgotten in prop::collection::vec(("[a-z]{0,4}", 1u128..6), 0..4),
        replica_id in prop_oneof![Just(-1), 0..3],
        drop_every in 2usize..4,
    ) {
        let req = request(version, &topics, &forgotten, replica_id);
        let (frame, wire) = read(version, &req);
        prop_assert_eq!(wire.replica_id, replica_id);
        prop_assert_eq!(wire.max_wait_ms, 500);
        prop_assert_eq!((wire.session_id, wire.session_epoch), (req.session_id, req.session_epoch));
        let read_topics: Vec<_> = wire.topics().map(|t| {
            let t = t.expect("entry");
            (t.topic, t.partitions().collect::<Vec<_>>())
        }).collect();
        let want: Vec<_> = req.topics.iter().map(|t| {
            let r = if version >= FIRST_TOPIC_ID {
                TopicRef::Id(t.topic_id)
            } else {
                TopicRef::Name(t.topic.0.as_str())
            };
            (r, t.partitions.iter().map(|p| p.partition).collect::<Vec<_>>())
        }).collect();
        prop_assert_eq!(read_topics, want);
        prop_assert_eq!(wire.forgotten().count(), req.forgotten_topics_data.len());

        prop_assert_eq!(wire.splice(|_, _| true, false).expect("splice"), frame);

        let mut i = 0;
        let spliced = wire.splice(|_, _| { i += 1; i % drop_every != 0 }, true).expect("splice");
        let mut want = req.clone();
        let mut j = 0;
        want.topics.retain(|_| { j += 1; j % drop_every != 0 });
        want.forgotten_topics_data.retain(|_| { j += 1; j % drop_every != 0 });
        if version >= 7 {
            want.session_id = 0;
            want.session_epoch = -1;
        }
        prop_assert_eq!(decoded(&spliced, version), want);
    }

    /// The gateway's answer for denied topics is the bytes kafka-protocol encodes for
    /// `FetchResponse.partitionResponse(tp, error)` on every partition.
    #[test]
    fn denied_answers_are_what_kafka_protocol_encodes(
        version in VERSIONS,
        topics in topics_strategy(),
        code in prop_oneof![Just(29i16), Just(100)],
    ) {
        let req = request(version, &topics, &[], -1);
        let (_, wire) = read(version, &req);
        let denied = denied_topics(version, code).expect("template");
        for t in wire.topics() {
            let t = t.expect("entry");
            let mut one = bytes::BytesMut::new();
            denied.write(&mut one, &t).expect("write");
            prop_assert_eq!(denied.size(&t), one.len(), "the size written is the size told");
        }
        let body = FetchResponse::default();
        let shell = crate::protocol::list::Shell::answering(ApiKey::Fetch, version, &header(version), &body, |r, v| r.responses = v)
            .expect("shell");
        let got = shell.finish(wire.topic_count(), 0, |out| {
            for t in wire.topics() {
                denied.write(out, &t.expect("entry"))?;
            }
            Ok(wire.topic_count())
        }).expect("respond");
        let responses = req.topics.iter().map(|t| {
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(t.partitions.iter().map(|p| {
                    PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_error_code(code)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1)
                }).collect())
        }).collect();
        let want = encode_response(
            ApiKey::Fetch,
            version,
            &response_header(77),
            &FetchResponse::default().with_responses(responses),
        ).expect("encode");
        prop_assert_eq!(got, want);
    }

    /// Whatever the bytes, reading never panics, and what it accepts kafka-protocol decodes.
    #[test]
    fn arbitrary_bodies_are_read_or_refused_without_panic(
        version in VERSIONS,
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let frame = encode_request_with_header(ApiKey::Fetch, version, &header(version),
            &FetchRequest::default()).expect("encode");
        let body_at = body_at(&frame.slice(LEN_PREFIX..), version);
        let mut payload = frame[LEN_PREFIX..LEN_PREFIX + body_at].to_vec();
        payload.extend_from_slice(&body);
        let payload = Bytes::from(payload);
        if let Ok(wire) = FetchRequestWire::parse(version, payload.clone(), body_at) {
            for t in wire.topics().chain(wire.forgotten()) {
                let _ = t.map(|t| t.partitions().count());
            }
            let _ = wire.splice(|_, _| true, true);
        }
    }
}

/// Where the body starts in a request payload (after its header).
fn body_at(payload: &Bytes, version: i16) -> usize {
    let mut h = payload.clone();
    RequestHeader::decode(&mut h, ApiKey::Fetch.request_header_version(version)).expect("header");
    payload.len() - h.len()
}

#[test]
fn names_that_are_not_utf8_and_truncated_lists_are_refused() {
    let version = 12;
    let req = request(version, &[("ab".into(), 1, vec![0])], &[], -1);
    let (frame, _) = read(version, &req);
    let payload = frame.slice(LEN_PREFIX..);
    let body_at = body_at(&payload, version);
    let at = payload
        .windows(2)
        .position(|w| w == b"ab")
        .expect("the name");
    let mut bad = payload.to_vec();
    bad[at] = 0xFF;
    let err = FetchRequestWire::parse(version, Bytes::from(bad), body_at).expect_err("not UTF-8");
    assert_eq!(err.what, "topic name is not UTF-8");
    let short = payload.slice(..payload.len() - 3);
    assert!(FetchRequestWire::parse(version, short, body_at).is_err());
    assert!(
        FetchRequestWire::parse(16, payload, body_at).is_err(),
        "v16 is not read here"
    );
}

#[test]
fn a_request_too_long_to_authorize_is_refused_before_its_list_is_walked() {
    let version = 12;
    let topics: Vec<_> = (0..2_000).map(|i| (format!("t{i}"), 1, vec![0])).collect();
    let req = request(version, &topics, &[], -1);
    let frame =
        encode_request_with_header(ApiKey::Fetch, version, &header(version), &req).expect("encode");
    let budget = planning_bytes(1_000);
    let err = read_fetch_request(version, frame.slice(LEN_PREFIX..), budget).expect_err("refused");
    assert_eq!(err.reason(), "decoded_too_large");
    assert!(read_fetch_request(version, frame.slice(LEN_PREFIX..), planning_bytes(2_000)).is_ok());
}
