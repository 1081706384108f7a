//! Scenario tests for the topic and cluster APIs (numbers refer to SECURITY-SCENARIOS.md): plans are
//! checked by decoding what would go upstream or back to the client, merges by feeding a made-up
//! upstream response through them.

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::records::{any_transactional, BatchError};
use crate::policy::mapping::{self, Authorize, Plan, TopicIds};
use crate::policy::model::CLUSTER_NAME;
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::{
    decode_body, decode_request, encode_response, response_header, split_response,
};
use crate::protocol::frame::LEN_PREFIX;

use Operation as Op;
use ResourceType as Rt;

const CORRELATION: i32 = 4711;

/// A fake authorizer: a set of allowed (op, type, name), with Kafka's implication (READ, WRITE,
/// DELETE, ALTER ⇒ DESCRIBE; ALTER_CONFIGS ⇒ DESCRIBE_CONFIGS) as the real engine does.
#[derive(Default)]
struct Acl(HashSet<(Op, Rt, String)>);

impl Acl {
    fn new(rules: &[(Op, Rt, &str)]) -> Acl {
        Acl(rules
            .iter()
            .map(|(o, r, n)| (*o, *r, n.to_string()))
            .collect())
    }
    fn has(&self, op: Op, rtype: Rt, name: &str) -> bool {
        self.0.contains(&(op, rtype, name.to_string()))
    }
}

impl Authorize for Acl {
    fn allowed(&self, op: Op, rtype: Rt, name: &str) -> bool {
        self.has(op, rtype, name) || op.implied_by().iter().any(|i| self.has(*i, rtype, name))
    }
    fn allowed_any(&self, op: Op, rtype: Rt) -> bool {
        self.0.iter().any(|(o, r, _)| *o == op && *r == rtype)
    }
}

/// A fake topic-id map.
#[derive(Default)]
struct Ids(Vec<(Uuid, &'static str)>);

impl TopicIds for Ids {
    fn name_of(&self, id: Uuid) -> Option<String> {
        self.0
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.to_string())
    }
    fn id_of(&self, name: &str) -> Option<Uuid> {
        self.0.iter().find(|(_, n)| *n == name).map(|(i, _)| *i)
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn tn(s: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(s))
}

fn sb(s: &'static str) -> StrBytes {
    StrBytes::from_static_str(s)
}

fn header(api: ApiKey, version: i16) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(CORRELATION)
        .with_client_id(Some(sb("client-1")))
}

fn plan(api: ApiKey, version: i16, body: RequestKind, acl: &dyn Authorize, ids: &Ids) -> Plan {
    mapping::plan(api, version, &header(api, version), &body, acl, ids)
        .expect("plan")
        .expect("an API of the topics module")
}

/// The request a ForwardPartial sends upstream, decoded; checks the client's header was kept.
fn forwarded(api: ApiKey, version: i16, frame: &Bytes) -> RequestKind {
    let len = i32::from_be_bytes(frame[..4].try_into().expect("prefix"));
    assert_eq!(len as usize, frame.len() - LEN_PREFIX);
    let decoded = decode_request(api, version, frame.slice(LEN_PREFIX..)).expect("decodes");
    assert_eq!(decoded.header.correlation_id, CORRELATION);
    assert_eq!(decoded.header.client_id.as_deref(), Some("client-1"));
    decoded.body
}

/// A response frame (length prefix included), decoded; checks the correlation id.
fn response<T: Decodable>(api: ApiKey, version: i16, frame: &Bytes) -> T {
    let len = i32::from_be_bytes(frame[..4].try_into().expect("prefix"));
    assert_eq!(len as usize, frame.len() - LEN_PREFIX);
    let (h, body) = split_response(api, version, frame.slice(LEN_PREFIX..)).expect("split");
    assert_eq!(h.correlation_id, CORRELATION);
    decode_body(api, version, body).expect("decodes")
}

/// An upstream response payload (no length prefix), as `Merge::apply` receives it.
fn upstream<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Bytes {
    encode_response(api, version, &response_header(CORRELATION), body)
        .expect("encode")
        .slice(LEN_PREFIX..)
}

fn respond_frame(p: Plan) -> Bytes {
    match p {
        Plan::Respond(b) => b,
        other => panic!("expected Respond, got {other:?}"),
    }
}

fn partial(p: Plan) -> (Bytes, mapping::Merge) {
    match p {
        Plan::ForwardPartial { request, merge } => (request, merge),
        other => panic!("expected ForwardPartial, got {other:?}"),
    }
}

fn then_merge(p: Plan) -> mapping::Merge {
    match p {
        Plan::ForwardThenMerge(m) => m,
        other => panic!("expected ForwardThenMerge, got {other:?}"),
    }
}

fn assert_forward(p: Plan) {
    assert!(matches!(p, Plan::Forward), "expected Forward, got {p:?}");
}

// ---------------------------------------------------------------------------------------------
// Record batches

/// A RecordBatch v2 header of 61 bytes followed by `extra` bytes of records.
fn batch(attributes: i16, extra: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(61 + extra);
    b.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    b.extend_from_slice(&((49 + extra) as i32).to_be_bytes()); // batchLength
    b.extend_from_slice(&0i32.to_be_bytes()); // partitionLeaderEpoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc
    b.extend_from_slice(&attributes.to_be_bytes());
    b.resize(61 + extra, 0xAB);
    b
}

const TXN: i16 = 0x10;

#[test]
fn batch_walker_finds_the_transactional_bit_in_any_batch() {
    assert_eq!(any_transactional(&[]), Ok(false));
    assert_eq!(any_transactional(&batch(0, 10)), Ok(false));
    assert_eq!(any_transactional(&batch(TXN, 0)), Ok(true));
    // Compression bits and the control bit alone are not transactional.
    assert_eq!(any_transactional(&batch(0x07 | 0x20, 3)), Ok(false));
    let mut two = batch(0, 7);
    two.extend(batch(TXN | 0x01, 5));
    assert_eq!(any_transactional(&two), Ok(true));
}

#[test]
fn batch_walker_refuses_every_proper_prefix_and_garbage() {
    let mut two = batch(0, 7);
    two.extend(batch(TXN, 5));
    let first_len = 61 + 7;
    for cut in 0..two.len() {
        let r = any_transactional(&two[..cut]);
        if cut == 0 {
            assert_eq!(r, Ok(false));
        } else if cut == first_len {
            assert_eq!(r, Ok(false), "exactly the first batch");
        } else {
            assert!(
                matches!(r, Err(BatchError::Truncated { .. })),
                "prefix {cut}: {r:?}"
            );
        }
    }
    let mut bad_magic = batch(TXN, 0);
    bad_magic[16] = 1;
    assert_eq!(
        any_transactional(&bad_magic),
        Err(BatchError::Magic {
            offset: 0,
            magic: 1
        })
    );
    for len in [-1i32, 0, 48, i32::MIN] {
        let mut short = batch(TXN, 0);
        short[8..12].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            any_transactional(&short),
            Err(BatchError::TooShort { offset: 0, len })
        );
    }
    let mut huge = batch(TXN, 0);
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        any_transactional(&huge),
        Err(BatchError::Truncated { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Produce

fn produce_req(
    acks: i16,
    tid: Option<&'static str>,
    topics: &[(&'static str, &[i32], Vec<u8>)],
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1000)
        .with_transactional_id(tid.map(|t| TransactionalId(sb(t))))
        .with_topic_data(
            topics
                .iter()
                .map(|(name, parts, records)| {
                    produce_request::TopicProduceData::default()
                        .with_name(tn(name))
                        .with_partition_data(
                            parts
                                .iter()
                                .map(|p| {
                                    produce_request::PartitionProduceData::default()
                                        .with_index(*p)
                                        .with_records(Some(Bytes::from(records.clone())))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn produce_errors(resp: &ProduceResponse) -> Vec<(String, i32, i16)> {
    resp.responses
        .iter()
        .flat_map(|t| {
            t.partition_responses
                .iter()
                .map(|p| (t.name.to_string(), p.index, p.error_code))
        })
        .collect()
}

#[test]
fn scenario_1_2_produce_without_write_gets_29_on_every_partition() {
    for version in [3i16, 9] {
        for held in [
            vec![],
            vec![(Op::Describe, Rt::Topic, "t")],
            vec![(Op::Read, Rt::Topic, "t")],
        ] {
            let acl = Acl::new(&held);
            // "missing" does not exist: still 29, never 3.
            let req = produce_req(
                1,
                None,
                &[("t", &[0, 1], batch(0, 4)), ("missing", &[0], batch(0, 4))],
            );
            let frame = respond_frame(plan(
                ApiKey::Produce,
                version,
                RequestKind::Produce(req),
                &acl,
                &Ids::default(),
            ));
            let resp: ProduceResponse = response(ApiKey::Produce, version, &frame);
            assert_eq!(
                produce_errors(&resp),
                vec![
                    ("t".into(), 0, 29),
                    ("t".into(), 1, 29),
                    ("missing".into(), 0, 29)
                ]
            );
            let p = &resp.responses[0].partition_responses[0];
            assert_eq!(
                (p.base_offset, p.log_append_time_ms, p.log_start_offset),
                (-1, -1, -1)
            );
            assert_eq!(p.error_message, None);
            assert_eq!(resp.throttle_time_ms, 0);
        }
    }
}

#[test]
fn produce_all_allowed_is_forwarded_untouched() {
    let acl = Acl::new(&[
        (Op::Write, Rt::Topic, "t"),
        (Op::Write, Rt::TransactionalId, "tx"),
    ]);
    let req = produce_req(-1, Some("tx"), &[("t", &[0], batch(TXN, 8))]);
    assert_forward(plan(
        ApiKey::Produce,
        9,
        RequestKind::Produce(req),
        &acl,
        &Ids::default(),
    ));
    let req = produce_req(1, None, &[("t", &[0], batch(0, 8))]);
    assert_forward(plan(
        ApiKey::Produce,
        3,
        RequestKind::Produce(req),
        &acl,
        &Ids::default(),
    ));
}

#[test]
fn produce_partial_forwards_the_allowed_topics_and_merges_29s_in_client_order() {
    let acl = Acl::new(&[(Op::Write, Rt::Topic, "b")]);
    for version in [3i16, 9] {
        let req = produce_req(
            -1,
            None,
            &[
                ("a", &[0], batch(0, 1)),
                ("b", &[0, 1], batch(0, 1)),
                ("c", &[2], batch(0, 1)),
            ],
        );
        let (request, merge) = partial(plan(
            ApiKey::Produce,
            version,
            RequestKind::Produce(req),
            &acl,
            &Ids::default(),
        ));
        let RequestKind::Produce(fwd) = forwarded(ApiKey::Produce, version, &request) else {
            panic!("produce")
        };
        assert_eq!(fwd.acks, -1);
        assert_eq!(fwd.topic_data.len(), 1);
        assert_eq!(&*fwd.topic_data[0].name, "b");
        assert_eq!(
            fwd.topic_data[0].partition_data[1].records.as_deref(),
            Some(&batch(0, 1)[..])
        );

        let up = ProduceResponse::default().with_responses(vec![
            produce_response::TopicProduceResponse::default()
                .with_name(tn("b"))
                .with_partition_responses(vec![
                    produce_response::PartitionProduceResponse::default()
                        .with_index(1)
                        .with_base_offset(77),
                    produce_response::PartitionProduceResponse::default()
                        .with_index(0)
                        .with_base_offset(42),
                ]),
        ]);
        let merged = merge
            .apply(
                upstream(ApiKey::Produce, version, &up),
                &acl,
                &Ids::default(),
            )
            .expect("merge");
        let resp: ProduceResponse = response(ApiKey::Produce, version, &merged);
        assert_eq!(
            produce_errors(&resp),
            vec![
                ("a".into(), 0, 29),
                ("b".into(), 1, 0),
                ("b".into(), 0, 0),
                ("c".into(), 2, 29)
            ]
        );
        assert_eq!(resp.responses[1].partition_responses[0].base_offset, 77);
    }
}

#[test]
fn scenario_6_transactional_batches_without_transactional_id_get_53_everywhere() {
    let acl = Acl::new(&[(Op::Write, Rt::Topic, "t"), (Op::Write, Rt::Topic, "u")]);
    for version in [3i16, 9] {
        let req = produce_req(
            1,
            None,
            &[("t", &[0], batch(0, 2)), ("u", &[3], batch(TXN, 2))],
        );
        let frame = respond_frame(plan(
            ApiKey::Produce,
            version,
            RequestKind::Produce(req),
            &acl,
            &Ids::default(),
        ));
        let resp: ProduceResponse = response(ApiKey::Produce, version, &frame);
        assert_eq!(
            produce_errors(&resp),
            vec![("t".into(), 0, 53), ("u".into(), 3, 53)]
        );
        let expected_msg = (version >= 8).then_some("Transactional Id authorization failed.");
        assert_eq!(
            resp.responses[0].partition_responses[0]
                .error_message
                .as_deref(),
            expected_msg
        );
    }
}

#[test]
fn scenario_6_unauthorized_transactional_id_gets_53_even_for_allowed_topics() {
    let acl = Acl::new(&[
        (Op::Write, Rt::Topic, "t"),
        (Op::Describe, Rt::TransactionalId, "tx"),
    ]);
    let req = produce_req(1, Some("tx"), &[("t", &[0, 1], batch(TXN, 2))]);
    let frame = respond_frame(plan(
        ApiKey::Produce,
        9,
        RequestKind::Produce(req),
        &acl,
        &Ids::default(),
    ));
    let resp: ProduceResponse = response(ApiKey::Produce, 9, &frame);
    assert_eq!(
        produce_errors(&resp),
        vec![("t".into(), 0, 53), ("t".into(), 1, 53)]
    );
}

#[test]
fn malformed_records_are_refused_as_a_protocol_error() {
    let acl = Acl::new(&[(Op::Write, Rt::Topic, "t")]);
    let mut truncated = batch(TXN, 4);
    truncated.truncate(30);
    let req = produce_req(1, None, &[("t", &[0], truncated)]);
    let err = mapping::plan(
        ApiKey::Produce,
        9,
        &header(ApiKey::Produce, 9),
        &RequestKind::Produce(req),
        &acl,
        &Ids::default(),
    )
    .expect_err("malformed");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn scenario_7_acks_0_with_a_denied_topic_or_transactional_id_closes() {
    let acl = Acl::new(&[(Op::Write, Rt::Topic, "ok")]);
    let req = produce_req(
        0,
        None,
        &[("ok", &[0], batch(0, 1)), ("denied", &[0], batch(0, 1))],
    );
    assert!(matches!(
        plan(
            ApiKey::Produce,
            9,
            RequestKind::Produce(req),
            &acl,
            &Ids::default()
        ),
        Plan::Close(_)
    ));
    let req = produce_req(0, None, &[("ok", &[0], batch(TXN, 1))]);
    assert!(matches!(
        plan(
            ApiKey::Produce,
            3,
            RequestKind::Produce(req),
            &acl,
            &Ids::default()
        ),
        Plan::Close(_)
    ));
    let req = produce_req(0, None, &[("ok", &[0], batch(0, 1))]);
    assert_forward(plan(
        ApiKey::Produce,
        9,
        RequestKind::Produce(req),
        &acl,
        &Ids::default(),
    ));
}

// ---------------------------------------------------------------------------------------------
// Fetch

fn fetch_req(version: i16, topics: &[(&'static str, Uuid, &[i32])]) -> FetchRequest {
    let mut r = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(
            topics
                .iter()
                .map(|(name, tid, parts)| {
                    let mut t = fetch_request::FetchTopic::default().with_partitions(
                        parts
                            .iter()
                            .map(|p| {
                                fetch_request::FetchPartition::default()
                                    .with_partition(*p)
                                    .with_fetch_offset(10)
                                    .with_partition_max_bytes(1000)
                            })
                            .collect(),
                    );
                    if version >= 13 {
                        t.topic_id = *tid;
                    } else {
                        t.topic = tn(name);
                    }
                    t
                })
                .collect(),
        );
    if version >= 15 {
        r.replica_state.replica_id = BrokerId(-1);
    } else {
        r.replica_id = BrokerId(-1);
    }
    r
}

/// (topic name or id, partition, error) of a Fetch response.
fn fetch_errors(version: i16, resp: &FetchResponse) -> Vec<(String, i32, i16)> {
    resp.responses
        .iter()
        .flat_map(|t| {
            let key = if version >= 13 {
                t.topic_id.to_string()
            } else {
                t.topic.to_string()
            };
            t.partitions
                .iter()
                .map(move |p| (key.clone(), p.partition_index, p.error_code))
        })
        .collect()
}

#[test]
fn scenario_13_fetch_by_name_without_read_gets_29() {
    // 15: WRITE on the topic and READ on the group do not allow consuming it.
    let acl = Acl::new(&[(Op::Write, Rt::Topic, "t"), (Op::Read, Rt::Group, "g")]);
    for version in [11i16, 12] {
        let req = fetch_req(
            version,
            &[("t", Uuid::nil(), &[0, 1]), ("missing", Uuid::nil(), &[0])],
        );
        let frame = respond_frame(plan(
            ApiKey::Fetch,
            version,
            RequestKind::Fetch(req),
            &acl,
            &Ids::default(),
        ));
        let resp: FetchResponse = response(ApiKey::Fetch, version, &frame);
        assert_eq!(
            fetch_errors(version, &resp),
            vec![
                ("t".into(), 0, 29),
                ("t".into(), 1, 29),
                ("missing".into(), 0, 29)
            ]
        );
        assert_eq!(
            (resp.error_code, resp.session_id, resp.throttle_time_ms),
            (0, 0, 0)
        );
        let p = &resp.responses[0].partitions[0];
        assert_eq!(
            (p.high_watermark, p.last_stable_offset, p.log_start_offset),
            (-1, -1, -1)
        );
        assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    }
}

#[test]
fn scenario_14_fetch_by_unknown_id_gets_100_and_known_id_without_read_29() {
    let acl = Acl::new(&[(Op::Read, Rt::Topic, "readable")]);
    let ids = Ids(vec![(id(1), "secret"), (id(2), "readable")]);
    for version in [13i16, 15] {
        let req = fetch_req(version, &[("", id(9), &[0]), ("", id(1), &[2])]);
        let frame = respond_frame(plan(
            ApiKey::Fetch,
            version,
            RequestKind::Fetch(req),
            &acl,
            &ids,
        ));
        let resp: FetchResponse = response(ApiKey::Fetch, version, &frame);
        assert_eq!(
            fetch_errors(version, &resp),
            vec![(id(9).to_string(), 0, 100), (id(1).to_string(), 2, 29)]
        );
        let req = fetch_req(version, &[("", id(2), &[0])]);
        assert_forward(plan(
            ApiKey::Fetch,
            version,
            RequestKind::Fetch(req),
            &acl,
            &ids,
        ));
    }
}

#[test]
fn scenario_16_partial_fetch_drops_the_session_and_keeps_allowed_data() {
    let acl = Acl::new(&[(Op::Read, Rt::Topic, "t2")]);
    let ids = Ids(vec![(id(1), "t"), (id(2), "t2")]);
    for version in [11i16, 12, 13, 15] {
        let mut req = fetch_req(version, &[("t", id(1), &[0]), ("t2", id(2), &[0, 1])]);
        req.session_id = 1234;
        req.session_epoch = 7;
        let mut forget_t = fetch_request::ForgottenTopic::default().with_partitions(vec![3]);
        let mut forget_t2 = fetch_request::ForgottenTopic::default().with_partitions(vec![4]);
        if version >= 13 {
            forget_t.topic_id = id(1);
            forget_t2.topic_id = id(2);
        } else {
            forget_t.topic = tn("t");
            forget_t2.topic = tn("t2");
        }
        req.forgotten_topics_data = vec![forget_t, forget_t2];
        let (request, merge) = partial(plan(
            ApiKey::Fetch,
            version,
            RequestKind::Fetch(req),
            &acl,
            &ids,
        ));
        let RequestKind::Fetch(fwd) = forwarded(ApiKey::Fetch, version, &request) else {
            panic!("fetch")
        };
        assert_eq!(
            (fwd.session_id, fwd.session_epoch),
            (0, -1),
            "v{version}: sessionless"
        );
        assert_eq!(fwd.topics.len(), 1);
        // A sessionless fetch has nothing to forget (FetchManager.newContext ignores the list of
        // a full fetch): the denied topic's entry, and the rest, go with the session.
        assert!(fwd.forgotten_topics_data.is_empty());
        if version >= 13 {
            assert_eq!(fwd.topics[0].topic_id, id(2));
        } else {
            assert_eq!(&*fwd.topics[0].topic, "t2");
        }

        let mut t2 = fetch_response::FetchableTopicResponse::default().with_partitions(vec![
            fetch_response::PartitionData::default()
                .with_partition_index(0)
                .with_high_watermark(100)
                .with_records(Some(Bytes::from_static(b"t2-records"))),
            fetch_response::PartitionData::default()
                .with_partition_index(1)
                .with_high_watermark(5),
        ]);
        if version >= 13 {
            t2.topic_id = id(2);
        } else {
            t2.topic = tn("t2");
        }
        // An upstream that (wrongly) kept a session id must not leak it to the client.
        let up = FetchResponse::default()
            .with_session_id(99)
            .with_responses(vec![t2]);
        let merged = merge
            .apply(upstream(ApiKey::Fetch, version, &up), &acl, &ids)
            .expect("merge");
        let resp: FetchResponse = response(ApiKey::Fetch, version, &merged);
        assert_eq!(resp.session_id, 0);
        let (k1, k2) = if version >= 13 {
            (id(1).to_string(), id(2).to_string())
        } else {
            ("t".to_string(), "t2".to_string())
        };
        assert_eq!(
            fetch_errors(version, &resp),
            vec![(k1, 0, 29), (k2.clone(), 0, 0), (k2, 1, 0)]
        );
        assert!(resp.responses[0].partitions[0]
            .records
            .as_ref()
            .is_none_or(|r| r.is_empty()));
        assert_eq!(
            resp.responses[1].partitions[0].records.as_deref(),
            Some(&b"t2-records"[..])
        );
    }
}

#[test]
fn scenario_17_follower_fetch_needs_cluster_action() {
    let acl = Acl::new(&[(Op::Read, Rt::Topic, "t")]);
    for version in [11i16, 15] {
        let mut req = fetch_req(version, &[("t", id(1), &[0, 1])]);
        if version >= 15 {
            req.replica_state.replica_id = BrokerId(3);
        } else {
            req.replica_id = BrokerId(3);
        }
        let ids = Ids(vec![(id(1), "t")]);
        let frame = respond_frame(plan(
            ApiKey::Fetch,
            version,
            RequestKind::Fetch(req.clone()),
            &acl,
            &ids,
        ));
        let resp: FetchResponse = response(ApiKey::Fetch, version, &frame);
        let key = if version >= 13 {
            id(1).to_string()
        } else {
            "t".into()
        };
        assert_eq!(
            fetch_errors(version, &resp),
            vec![(key.clone(), 0, 29), (key, 1, 29)]
        );

        let follower = Acl::new(&[(Op::ClusterAction, Rt::Cluster, CLUSTER_NAME)]);
        assert_forward(plan(
            ApiKey::Fetch,
            version,
            RequestKind::Fetch(req),
            &follower,
            &ids,
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// ListOffsets, OffsetForLeaderEpoch, DeleteRecords

#[test]
fn list_offsets_without_describe_gets_29_per_partition() {
    let acl = Acl::new(&[(Op::Read, Rt::Topic, "ok")]);
    let topic = |n: &'static str, parts: &[i32]| {
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(tn(n))
            .with_partitions(
                parts
                    .iter()
                    .map(|p| {
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(*p)
                            .with_timestamp(-1)
                    })
                    .collect(),
            )
    };
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![topic("no", &[0, 1]), topic("ok", &[0])]);
    let (request, merge) = partial(plan(
        ApiKey::ListOffsets,
        7,
        RequestKind::ListOffsets(req.clone()),
        &acl,
        &Ids::default(),
    ));
    let RequestKind::ListOffsets(fwd) = forwarded(ApiKey::ListOffsets, 7, &request) else {
        panic!()
    };
    assert_eq!(
        fwd.topics
            .iter()
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>(),
        ["ok"]
    );
    let up = ListOffsetsResponse::default().with_topics(vec![
        list_offsets_response::ListOffsetsTopicResponse::default()
            .with_name(tn("ok"))
            .with_partitions(vec![
                list_offsets_response::ListOffsetsPartitionResponse::default().with_offset(500),
            ]),
    ]);
    let merged = merge
        .apply(upstream(ApiKey::ListOffsets, 7, &up), &acl, &Ids::default())
        .expect("merge");
    let resp: ListOffsetsResponse = response(ApiKey::ListOffsets, 7, &merged);
    assert_eq!(resp.topics.len(), 2);
    assert_eq!(&*resp.topics[0].name, "no");
    let p = &resp.topics[0].partitions[1];
    assert_eq!(
        (
            p.partition_index,
            p.error_code,
            p.offset,
            p.timestamp,
            p.leader_epoch
        ),
        (1, 29, -1, -1, -1)
    );
    assert_eq!(resp.topics[1].partitions[0].offset, 500);

    // Kafka makes no CLUSTER_ACTION check for a replica id here: DESCRIBE decides.
    let mut follower = req;
    follower.replica_id = BrokerId(1);
    follower.topics.remove(0);
    assert_forward(plan(
        ApiKey::ListOffsets,
        1,
        RequestKind::ListOffsets(follower),
        &acl,
        &Ids::default(),
    ));
}

#[test]
fn offset_for_leader_epoch_describe_or_cluster_action() {
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(tn("t"))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(4),
                ]),
        ]);
    let none = Acl::default();
    let frame = respond_frame(plan(
        ApiKey::OffsetForLeaderEpoch,
        4,
        RequestKind::OffsetForLeaderEpoch(req.clone()),
        &none,
        &Ids::default(),
    ));
    let resp: OffsetForLeaderEpochResponse = response(ApiKey::OffsetForLeaderEpoch, 4, &frame);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(
        (p.partition, p.error_code, p.leader_epoch, p.end_offset),
        (4, 29, -1, -1)
    );
    let cluster = Acl::new(&[(Op::ClusterAction, Rt::Cluster, CLUSTER_NAME)]);
    assert_forward(plan(
        ApiKey::OffsetForLeaderEpoch,
        4,
        RequestKind::OffsetForLeaderEpoch(req.clone()),
        &cluster,
        &Ids::default(),
    ));
    let describe = Acl::new(&[(Op::Describe, Rt::Topic, "t")]);
    assert_forward(plan(
        ApiKey::OffsetForLeaderEpoch,
        2,
        RequestKind::OffsetForLeaderEpoch(req),
        &describe,
        &Ids::default(),
    ));
}

#[test]
fn delete_records_without_delete_gets_29_and_low_watermark_minus_1() {
    let req = DeleteRecordsRequest::default().with_topics(vec![
        delete_records_request::DeleteRecordsTopic::default()
            .with_name(tn("t"))
            .with_partitions(vec![
                delete_records_request::DeleteRecordsPartition::default()
                    .with_partition_index(2)
                    .with_offset(9),
            ]),
    ]);
    let acl = Acl::new(&[(Op::Describe, Rt::Topic, "t")]);
    for version in [0i16, 2] {
        let frame = respond_frame(plan(
            ApiKey::DeleteRecords,
            version,
            RequestKind::DeleteRecords(req.clone()),
            &acl,
            &Ids::default(),
        ));
        let resp: DeleteRecordsResponse = response(ApiKey::DeleteRecords, version, &frame);
        let p = &resp.topics[0].partitions[0];
        assert_eq!(
            (p.partition_index, p.error_code, p.low_watermark),
            (2, 29, -1)
        );
    }
    let acl = Acl::new(&[(Op::Delete, Rt::Topic, "t")]);
    assert_forward(plan(
        ApiKey::DeleteRecords,
        2,
        RequestKind::DeleteRecords(req),
        &acl,
        &Ids::default(),
    ));
}

// ---------------------------------------------------------------------------------------------
// Metadata

fn md_req(names: &[&'static str]) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(
        names
            .iter()
            .map(|n| metadata_request::MetadataRequestTopic::default().with_name(Some(tn(n))))
            .collect(),
    ))
}

fn md_topic(name: &'static str, tid: Uuid, error: i16) -> metadata_response::MetadataResponseTopic {
    metadata_response::MetadataResponseTopic::default()
        .with_name(Some(tn(name)))
        .with_topic_id(tid)
        .with_error_code(error)
        .with_partitions(if error == 0 {
            vec![metadata_response::MetadataResponsePartition::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(1))]
        } else {
            vec![]
        })
}

fn md_upstream(version: i16, topics: Vec<metadata_response::MetadataResponseTopic>) -> Bytes {
    let mut resp = MetadataResponse::default()
        .with_brokers(vec![metadata_response::MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(sb("broker-1.internal"))
            .with_port(9092)])
        .with_controller_id(BrokerId(1))
        .with_topics(topics);
    if version >= 2 {
        resp.cluster_id = Some(sb("cluster-x"));
    }
    upstream(ApiKey::Metadata, version, &resp)
}

/// The response's topics by name, sorted: Kafka builds the list from a hash set, and the
/// gateway puts its own answers after the upstream's, so only the set is meaningful.
fn md_names(resp: &MetadataResponse) -> Vec<(Option<String>, i16)> {
    let mut names: Vec<_> = resp
        .topics
        .iter()
        .map(|t| (t.name.as_ref().map(|n| n.to_string()), t.error_code))
        .collect();
    names.sort();
    names
}

#[test]
fn scenario_8_9_metadata_named_topics_without_describe_get_29_and_are_not_forwarded() {
    let acl = Acl::new(&[(Op::Describe, Rt::Topic, "ok")]);
    let ids = Ids(vec![(id(5), "secret"), (id(6), "ok")]);
    for version in [1i16, 4, 9, 12] {
        // "secret" exists, "nowhere" does not: the same answer.
        let req = md_req(&["secret", "ok", "nowhere"]);
        let (request, merge) = partial(plan(
            ApiKey::Metadata,
            version,
            RequestKind::Metadata(req),
            &acl,
            &ids,
        ));
        let RequestKind::Metadata(fwd) = forwarded(ApiKey::Metadata, version, &request) else {
            panic!()
        };
        let names: Vec<_> = fwd
            .topics
            .iter()
            .flatten()
            .map(|t| t.name.as_ref().map(|n| n.to_string()))
            .collect();
        assert_eq!(names, vec![Some("ok".to_string())]);
        let up = md_upstream(
            version,
            vec![md_topic(
                "ok",
                if version >= 10 { id(6) } else { Uuid::nil() },
                0,
            )],
        );
        let merged = merge.apply(up, &acl, &ids).expect("merge");
        let resp: MetadataResponse = response(ApiKey::Metadata, version, &merged);
        assert_eq!(
            md_names(&resp),
            vec![
                (Some("nowhere".into()), 29),
                (Some("ok".into()), 0),
                (Some("secret".into()), 29),
            ]
        );
        for denied in resp.topics.iter().filter(|t| t.error_code == 29) {
            assert!(denied.topic_id.is_nil());
            assert!(denied.partitions.is_empty());
            assert!(!denied.is_internal);
        }
        assert_eq!(
            resp.brokers.len(),
            1,
            "brokers left for the session to rewrite"
        );
        assert_eq!(&*resp.brokers[0].host, "broker-1.internal");
    }
}

#[test]
fn metadata_all_named_topics_denied_still_fetches_the_brokers() {
    let acl = Acl::default();
    for version in [1i16, 9, 12] {
        let (request, merge) = partial(plan(
            ApiKey::Metadata,
            version,
            RequestKind::Metadata(md_req(&["x"])),
            &acl,
            &Ids::default(),
        ));
        let RequestKind::Metadata(fwd) = forwarded(ApiKey::Metadata, version, &request) else {
            panic!()
        };
        assert_eq!(
            fwd.topics.as_ref().map(Vec::len),
            Some(0),
            "no topics, not all topics"
        );
        let merged = merge
            .apply(md_upstream(version, vec![]), &acl, &Ids::default())
            .expect("merge");
        let resp: MetadataResponse = response(ApiKey::Metadata, version, &merged);
        assert_eq!(md_names(&resp), vec![(Some("x".into()), 29)]);
        assert_eq!(resp.brokers.len(), 1);
    }
    // v0: the empty list means every topic (and a name would be auto-created), so the upstream
    // lists every topic; none of them reaches the client, only its 29 and the brokers (as Kafka).
    let (request, merge) = partial(plan(
        ApiKey::Metadata,
        0,
        RequestKind::Metadata(md_req(&["x"])),
        &acl,
        &Ids::default(),
    ));
    let RequestKind::Metadata(fwd) = forwarded(ApiKey::Metadata, 0, &request) else {
        panic!()
    };
    assert_eq!(fwd.topics.as_ref().map(Vec::len), Some(0));
    let secret = metadata_response::MetadataResponseTopic::default()
        .with_name(Some(TopicName(sb("secret"))));
    let merged = merge
        .apply(md_upstream(0, vec![secret]), &acl, &Ids::default())
        .expect("merge");
    let resp: MetadataResponse = response(ApiKey::Metadata, 0, &merged);
    assert_eq!(md_names(&resp), vec![(Some("x".into()), 29)]);
    assert_eq!(resp.brokers.len(), 1);
}

#[test]
fn metadata_naming_any_topic_by_id_is_answered_by_id_only_as_kafka_does() {
    let acl = Acl::new(&[(Op::Describe, Rt::Topic, "ok")]);
    let ids = Ids(vec![(id(6), "ok")]);
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(sb("secret")))),
        metadata_request::MetadataRequestTopic::default().with_topic_id(id(6)),
    ]);
    req.allow_auto_topic_creation = false;
    let (request, merge) = partial(plan(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(req),
        &acl,
        &ids,
    ));
    let RequestKind::Metadata(fwd) = forwarded(ApiKey::Metadata, 12, &request) else {
        panic!()
    };
    let fwd_topics = fwd.topics.expect("named request");
    assert_eq!(fwd_topics.len(), 1, "the name-only entry is not forwarded");
    assert_eq!(fwd_topics[0].topic_id, id(6));
    let upstream_topic = metadata_response::MetadataResponseTopic::default()
        .with_name(Some(TopicName(sb("ok"))))
        .with_topic_id(id(6));
    let merged = merge
        .apply(md_upstream(12, vec![upstream_topic]), &acl, &ids)
        .expect("merge");
    let resp: MetadataResponse = response(ApiKey::Metadata, 12, &merged);
    assert_eq!(
        md_names(&resp),
        vec![(Some("ok".into()), 0)],
        "no answer for the name"
    );
}

#[test]
fn metadata_for_an_empty_topic_list_answers_no_topic_whatever_the_broker_reads() {
    // tansu reads an empty list as every topic: the merge keeps none of what comes back.
    let acl = Acl::new(&[(Op::Describe, Rt::Topic, "ok")]);
    for version in [1i16, 9, 12] {
        let merge = then_merge(plan(
            ApiKey::Metadata,
            version,
            RequestKind::Metadata(md_req(&[])),
            &acl,
            &Ids::default(),
        ));
        let merged = merge
            .apply(
                md_upstream(
                    version,
                    vec![md_topic("ok", id(1), 0), md_topic("secret", id(2), 0)],
                ),
                &acl,
                &Ids::default(),
            )
            .expect("merge");
        let resp: MetadataResponse = response(ApiKey::Metadata, version, &merged);
        assert!(resp.topics.is_empty(), "v{version}: {resp:?}");
        assert_eq!(resp.brokers.len(), 1, "the brokers still come through");
    }
}

#[test]
fn metadata_answers_a_topic_named_twice_once_as_kafka_does() {
    let acl = Acl::new(&[(Op::Describe, Rt::Topic, "ok")]);
    let ids = Ids(vec![(id(6), "ok")]);
    let by_id = metadata_request::MetadataRequestTopic::default().with_topic_id(id(9));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![by_id.clone(), by_id]);
    req.allow_auto_topic_creation = false;
    let (_, merge) = partial(plan(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(req),
        &acl,
        &ids,
    ));
    let merged = merge
        .apply(md_upstream(12, vec![]), &acl, &ids)
        .expect("merge");
    let resp: MetadataResponse = response(ApiKey::Metadata, 12, &merged);
    assert_eq!(resp.topics.len(), 1, "{resp:?}");
    assert_eq!(resp.topics[0].error_code, 100);
}

#[test]
fn scenario_10_metadata_for_all_topics_leaves_out_undescribable_topics() {
    let acl = Acl::new(&[(Op::Describe, Rt::Topic, "a"), (Op::Write, Rt::Topic, "c")]);
    for version in [0i16, 1, 9, 12] {
        let req = if version == 0 {
            md_req(&[])
        } else {
            MetadataRequest::default().with_topics(None)
        };
        let merge = then_merge(plan(
            ApiKey::Metadata,
            version,
            RequestKind::Metadata(req),
            &acl,
            &Ids::default(),
        ));
        let up = md_upstream(
            version,
            vec![
                md_topic("a", Uuid::nil(), 0),
                md_topic("b", Uuid::nil(), 0),
                md_topic("c", Uuid::nil(), 0),
            ],
        );
        let merged = merge.apply(up, &acl, &Ids::default()).expect("merge");
        let resp: MetadataResponse = response(ApiKey::Metadata, version, &merged);
        assert_eq!(
            md_names(&resp),
            vec![(Some("a".into()), 0), (Some("c".into()), 0)]
        );
    }
}

#[test]
fn scenario_11_metadata_by_topic_id() {
    let acl = Acl::new(&[(Op::Describe, Rt::Topic, "ok")]);
    let ids = Ids(vec![(id(5), "secret"), (id(6), "ok")]);
    let req = MetadataRequest::default().with_topics(Some(
        [id(5), id(6), id(7)]
            .iter()
            .map(|i| {
                metadata_request::MetadataRequestTopic::default()
                    .with_topic_id(*i)
                    .with_name(None)
            })
            .collect(),
    ));
    let (request, merge) = partial(plan(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(req),
        &acl,
        &ids,
    ));
    let RequestKind::Metadata(fwd) = forwarded(ApiKey::Metadata, 12, &request) else {
        panic!()
    };
    let fwd_ids: Vec<_> = fwd.topics.iter().flatten().map(|t| t.topic_id).collect();
    assert_eq!(fwd_ids, vec![id(6)]);
    let merged = merge
        .apply(md_upstream(12, vec![md_topic("ok", id(6), 0)]), &acl, &ids)
        .expect("merge");
    let resp: MetadataResponse = response(ApiKey::Metadata, 12, &merged);
    let mut got: Vec<_> = resp
        .topics
        .iter()
        .map(|t| {
            (
                t.topic_id,
                t.name.as_ref().map(|n| n.to_string()),
                t.error_code,
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (id(5), None, 29),
            (id(6), Some("ok".into()), 0),
            (id(7), None, 100)
        ]
    );
}

#[test]
fn scenario_12_auto_creation_needs_create() {
    let describe_only = Acl::new(&[
        (Op::Describe, Rt::Topic, "new"),
        (Op::Describe, Rt::Topic, "old"),
    ]);
    let ids = Ids(vec![(id(1), "old")]);
    for version in [4i16, 9, 12] {
        let req = md_req(&["new", "old"]).with_allow_auto_topic_creation(true);
        let (request, merge) = partial(plan(
            ApiKey::Metadata,
            version,
            RequestKind::Metadata(req.clone()),
            &describe_only,
            &ids,
        ));
        let RequestKind::Metadata(fwd) = forwarded(ApiKey::Metadata, version, &request) else {
            panic!()
        };
        assert!(
            !fwd.allow_auto_topic_creation,
            "nothing may be created upstream"
        );
        assert_eq!(fwd.topics.as_ref().map(Vec::len), Some(2));
        let up = md_upstream(
            version,
            vec![
                md_topic("new", Uuid::nil(), 3),
                md_topic("old", Uuid::nil(), 0),
            ],
        );
        let merged = merge.apply(up, &describe_only, &ids).expect("merge");
        let resp: MetadataResponse = response(ApiKey::Metadata, version, &merged);
        assert_eq!(
            md_names(&resp),
            vec![(Some("new".into()), 29), (Some("old".into()), 0)]
        );

        // The client asked for no creation: Kafka answers 3, and so does the upstream.
        let no_create = md_req(&["new"]).with_allow_auto_topic_creation(false);
        assert_forward(plan(
            ApiKey::Metadata,
            version,
            RequestKind::Metadata(no_create),
            &describe_only,
            &ids,
        ));

        for creator in [
            Acl::new(&[
                (Op::Describe, Rt::Topic, "new"),
                (Op::Describe, Rt::Topic, "old"),
                (Op::Create, Rt::Topic, "new"),
                (Op::Create, Rt::Topic, "old"),
            ]),
            Acl::new(&[
                (Op::Describe, Rt::Topic, "new"),
                (Op::Describe, Rt::Topic, "old"),
                (Op::Create, Rt::Cluster, CLUSTER_NAME),
            ]),
        ] {
            assert_forward(plan(
                ApiKey::Metadata,
                version,
                RequestKind::Metadata(req.clone()),
                &creator,
                &ids,
            ));
        }
    }
    // v1-3 cannot switch auto-creation off: a topic the gateway has not seen is answered 29.
    let (request, merge) = partial(plan(
        ApiKey::Metadata,
        1,
        RequestKind::Metadata(md_req(&["new", "old"])),
        &describe_only,
        &ids,
    ));
    let RequestKind::Metadata(fwd) = forwarded(ApiKey::Metadata, 1, &request) else {
        panic!()
    };
    assert_eq!(
        fwd.topics
            .iter()
            .flatten()
            .map(|t| t.name.as_ref().map(|n| n.to_string()))
            .collect::<Vec<_>>(),
        vec![Some("old".to_string())]
    );
    let merged = merge
        .apply(
            md_upstream(1, vec![md_topic("old", Uuid::nil(), 0)]),
            &describe_only,
            &ids,
        )
        .expect("merge");
    let resp: MetadataResponse = response(ApiKey::Metadata, 1, &merged);
    assert_eq!(
        md_names(&resp),
        vec![(Some("new".into()), 29), (Some("old".into()), 0)]
    );
}

#[test]
fn metadata_authorized_operations_are_recomputed_for_the_session() {
    let acl = Acl::new(&[
        (Op::Read, Rt::Topic, "t"),
        (Op::AlterConfigs, Rt::Topic, "t"),
        (Op::Describe, Rt::Topic, "u"),
        (Op::IdempotentWrite, Rt::Cluster, CLUSTER_NAME),
    ]);
    // READ(3) + DESCRIBE(8, implied) + DESCRIBE_CONFIGS(10, implied) + ALTER_CONFIGS(11).
    let t_ops = (1 << 3) | (1 << 8) | (1 << 10) | (1 << 11);
    let req = md_req(&["t", "u", "hidden"])
        .with_allow_auto_topic_creation(false)
        .with_include_cluster_authorized_operations(true)
        .with_include_topic_authorized_operations(true);
    let (_, merge) = partial(plan(
        ApiKey::Metadata,
        9,
        RequestKind::Metadata(req.clone()),
        &acl,
        &Ids::default(),
    ));
    let mut t = md_topic("t", Uuid::nil(), 0);
    t.topic_authorized_operations = 0x7fff_ffff; // the gateway principal's
    let up = md_upstream(9, vec![t, md_topic("u", Uuid::nil(), 0)]);
    let merged = merge.apply(up, &acl, &Ids::default()).expect("merge");
    let resp: MetadataResponse = response(ApiKey::Metadata, 9, &merged);
    let ops: Vec<_> = resp
        .topics
        .iter()
        .map(|t| t.topic_authorized_operations)
        .collect();
    assert_eq!(ops, vec![t_ops, 1 << 8, i32::MIN]);
    assert_eq!(resp.cluster_authorized_operations, 0, "no cluster DESCRIBE");

    let with_cluster = Acl::new(&[
        (Op::Describe, Rt::Cluster, CLUSTER_NAME),
        (Op::Alter, Rt::Cluster, CLUSTER_NAME),
        (Op::Describe, Rt::Topic, "t"),
        (Op::Describe, Rt::Topic, "u"),
        (Op::Describe, Rt::Topic, "hidden"),
    ]);
    let merge = then_merge(plan(
        ApiKey::Metadata,
        9,
        RequestKind::Metadata(req),
        &with_cluster,
        &Ids::default(),
    ));
    let merged = merge
        .apply(md_upstream(9, vec![]), &with_cluster, &Ids::default())
        .expect("merge");
    let resp: MetadataResponse = response(ApiKey::Metadata, 9, &merged);
    assert_eq!(resp.cluster_authorized_operations, (1 << 7) | (1 << 8));

    // Not asked: the upstream's i32::MIN passes through untouched.
    let plain = md_req(&["t"]).with_allow_auto_topic_creation(false);
    assert_forward(plan(
        ApiKey::Metadata,
        9,
        RequestKind::Metadata(plain),
        &acl,
        &Ids::default(),
    ));
}

#[test]
fn describe_cluster_operations_are_recomputed_when_asked() {
    let acl = Acl::new(&[
        (Op::Describe, Rt::Cluster, CLUSTER_NAME),
        (Op::ClusterAction, Rt::Cluster, CLUSTER_NAME),
    ]);
    assert_forward(plan(
        ApiKey::DescribeCluster,
        0,
        RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        &acl,
        &Ids::default(),
    ));
    let req = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    let merge = then_merge(plan(
        ApiKey::DescribeCluster,
        0,
        RequestKind::DescribeCluster(req),
        &acl,
        &Ids::default(),
    ));
    let up = DescribeClusterResponse::default()
        .with_cluster_id(sb("c"))
        .with_cluster_authorized_operations(-1)
        .with_brokers(vec![
            describe_cluster_response::DescribeClusterBroker::default()
                .with_host(sb("b1"))
                .with_port(1),
        ]);
    let merged = merge
        .apply(
            upstream(ApiKey::DescribeCluster, 0, &up),
            &acl,
            &Ids::default(),
        )
        .expect("merge");
    let resp: DescribeClusterResponse = response(ApiKey::DescribeCluster, 0, &merged);
    assert_eq!(resp.cluster_authorized_operations, (1 << 8) | (1 << 9));
    assert_eq!(&*resp.brokers[0].host, "b1");
}

// ---------------------------------------------------------------------------------------------
// CreateTopics, DeleteTopics, CreatePartitions

fn create_req(names: &[&'static str]) -> CreateTopicsRequest {
    CreateTopicsRequest::default().with_topics(
        names
            .iter()
            .map(|n| {
                create_topics_request::CreatableTopic::default()
                    .with_name(tn(n))
                    .with_num_partitions(3)
                    .with_replication_factor(1)
            })
            .collect(),
    )
}

#[test]
fn scenario_26_create_topics_needs_create_on_topic_or_cluster() {
    let none = Acl::default();
    for version in [2i16, 5, 7] {
        let frame = respond_frame(plan(
            ApiKey::CreateTopics,
            version,
            RequestKind::CreateTopics(create_req(&["t"])),
            &none,
            &Ids::default(),
        ));
        let resp: CreateTopicsResponse = response(ApiKey::CreateTopics, version, &frame);
        assert_eq!(resp.topics[0].error_code, 29);
        assert_eq!(
            resp.topics[0].error_message.as_deref(),
            Some("Authorization failed.")
        );
    }
    let cluster = Acl::new(&[
        (Op::Create, Rt::Cluster, CLUSTER_NAME),
        (Op::AlterConfigs, Rt::Topic, "t"),
    ]);
    assert_forward(plan(
        ApiKey::CreateTopics,
        7,
        RequestKind::CreateTopics(create_req(&["t"])),
        &cluster,
        &Ids::default(),
    ));
    let topic = Acl::new(&[(Op::Create, Rt::Topic, "t")]);
    assert_forward(plan(
        ApiKey::CreateTopics,
        4,
        RequestKind::CreateTopics(create_req(&["t"])),
        &topic,
        &Ids::default(),
    ));
}

#[test]
fn create_topics_hides_configs_without_describe_configs() {
    let acl = Acl::new(&[
        (Op::Create, Rt::Topic, "t"),
        (Op::Create, Rt::Topic, "u"),
        (Op::DescribeConfigs, Rt::Topic, "u"),
    ]);
    let req = create_req(&["t", "u", "denied", "denied"]).with_validate_only(true);
    let (request, merge) = partial(plan(
        ApiKey::CreateTopics,
        5,
        RequestKind::CreateTopics(req),
        &acl,
        &Ids::default(),
    ));
    let RequestKind::CreateTopics(fwd) = forwarded(ApiKey::CreateTopics, 5, &request) else {
        panic!()
    };
    assert!(fwd.validate_only);
    assert_eq!(
        fwd.topics
            .iter()
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>(),
        ["t", "u"]
    );
    let created = |n: &'static str| {
        create_topics_response::CreatableTopicResult::default()
            .with_name(tn(n))
            .with_num_partitions(3)
            .with_replication_factor(1)
            .with_configs(Some(vec![
                create_topics_response::CreatableTopicConfigs::default()
                    .with_name(sb("retention.ms"))
                    .with_value(Some(sb("1"))),
            ]))
    };
    let up = CreateTopicsResponse::default().with_topics(vec![created("u"), created("t")]);
    let merged = merge
        .apply(
            upstream(ApiKey::CreateTopics, 5, &up),
            &acl,
            &Ids::default(),
        )
        .expect("merge");
    let resp: CreateTopicsResponse = response(ApiKey::CreateTopics, 5, &merged);
    let got: Vec<_> = resp
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.error_code,
                t.topic_config_error_code,
                t.num_partitions,
                t.configs.as_ref().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("t".into(), 0, 29, -1, 0),
            ("u".into(), 0, 0, 3, 1),
            ("denied".into(), 42, 0, -1, 0),
        ]
    );
    assert_eq!(
        resp.topics[2].error_message.as_deref(),
        Some("Duplicate topic name.")
    );
}

#[test]
fn scenario_26_delete_topics_by_name_needs_delete() {
    // As ControllerApis: without DESCRIBE, 29 whether or not the topic exists; with DESCRIBE but
    // not DELETE, 29 for an existing topic and 3 for a missing one.
    let exists = Ids(vec![(id(7), "t")]);
    let missing = Ids::default();
    type Case<'a> = (Vec<(Op, Rt, &'a str)>, &'a Ids, i16, &'a str);
    let cases: [Case; 4] = [
        (vec![], &exists, 29, "Topic authorization failed."),
        (vec![], &missing, 29, "Topic authorization failed."),
        (
            vec![(Op::Describe, Rt::Topic, "t")],
            &exists,
            29,
            "Topic authorization failed.",
        ),
        (
            vec![(Op::Describe, Rt::Topic, "t")],
            &missing,
            3,
            "This server does not host this topic-partition.",
        ),
    ];
    for (held, ids, code, message) in cases {
        let acl = Acl::new(&held);
        for version in [1i16, 5] {
            let req = DeleteTopicsRequest::default().with_topic_names(vec![tn("t")]);
            let frame = respond_frame(plan(
                ApiKey::DeleteTopics,
                version,
                RequestKind::DeleteTopics(req),
                &acl,
                ids,
            ));
            let resp: DeleteTopicsResponse = response(ApiKey::DeleteTopics, version, &frame);
            let r = &resp.responses[0];
            assert_eq!(
                (r.name.as_deref().map(|n| n.to_string()), r.error_code),
                (Some("t".into()), code),
                "{held:?}"
            );
            let expected = (version >= 5).then_some(message);
            assert_eq!(r.error_message.as_deref(), expected);
        }
    }
    let cluster = Acl::new(&[(Op::Delete, Rt::Cluster, CLUSTER_NAME)]);
    let req = DeleteTopicsRequest::default().with_topic_names(vec![tn("t")]);
    assert_forward(plan(
        ApiKey::DeleteTopics,
        5,
        RequestKind::DeleteTopics(req),
        &cluster,
        &Ids::default(),
    ));
}

/// Found by the differential test against Kafka 4.4 (seed 1796582140342442869): DELETE on a
/// topic with DESCRIBE explicitly denied. Kafka answers 29 by name, whether or not the topic
/// exists, and deletes nothing; the gateway forwarded the deletion. By id Kafka only asks DELETE.
#[test]
fn delete_topics_by_name_needs_describe_as_well_as_delete() {
    struct DeleteNotDescribe;
    impl Authorize for DeleteNotDescribe {
        fn allowed(&self, op: Op, rtype: Rt, name: &str) -> bool {
            op == Op::Delete && rtype == Rt::Topic && name == "t"
        }
        fn allowed_any(&self, _op: Op, _rtype: Rt) -> bool {
            false
        }
    }
    for ids in [Ids(vec![(id(7), "t")]), Ids::default()] {
        for version in [1i16, 5, 6] {
            let req = if version >= 6 {
                DeleteTopicsRequest::default().with_topics(vec![
                    delete_topics_request::DeleteTopicState::default().with_name(Some(tn("t"))),
                ])
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![tn("t")])
            };
            let frame = respond_frame(plan(
                ApiKey::DeleteTopics,
                version,
                RequestKind::DeleteTopics(req),
                &DeleteNotDescribe,
                &ids,
            ));
            let resp: DeleteTopicsResponse = response(ApiKey::DeleteTopics, version, &frame);
            assert_eq!(resp.responses[0].error_code, 29, "v{version}");
        }
    }
    // By id, DELETE is enough.
    let req = DeleteTopicsRequest::default().with_topics(vec![
        delete_topics_request::DeleteTopicState::default().with_topic_id(id(7)),
    ]);
    assert_forward(plan(
        ApiKey::DeleteTopics,
        6,
        RequestKind::DeleteTopics(req),
        &DeleteNotDescribe,
        &Ids(vec![(id(7), "t")]),
    ));
}

/// Plans a DeleteTopics v6 that must be forwarded in part: the ids forwarded, and the merge.
fn delete_v6_partial(
    req: DeleteTopicsRequest,
    acl: &Acl,
    ids: &Ids,
) -> (Vec<Uuid>, crate::policy::mapping::Merge) {
    let (request, merge) = partial(plan(
        ApiKey::DeleteTopics,
        6,
        RequestKind::DeleteTopics(req),
        acl,
        ids,
    ));
    let RequestKind::DeleteTopics(fwd) = forwarded(ApiKey::DeleteTopics, 6, &request) else {
        panic!()
    };
    (fwd.topics.iter().map(|t| t.topic_id).collect(), merge)
}

/// The client's answer to a DeleteTopics v6 planned with [`delete_v6_partial`], once the broker
/// has deleted `deleted` (name, id) for the forwarded part.
fn delete_v6_answer(
    merge: crate::policy::mapping::Merge,
    deleted: (&'static str, Uuid),
    acl: &Acl,
    ids: &Ids,
) -> DeleteTopicsResponse {
    let up = DeleteTopicsResponse::default().with_responses(vec![
        delete_topics_response::DeletableTopicResult::default()
            .with_name(Some(tn(deleted.0)))
            .with_topic_id(deleted.1),
    ]);
    let merged = merge
        .apply(upstream(ApiKey::DeleteTopics, 6, &up), acl, ids)
        .expect("merge");
    response(ApiKey::DeleteTopics, 6, &merged)
}

#[test]
fn delete_topics_v6_by_id() {
    let acl = Acl::new(&[
        (Op::Delete, Rt::Topic, "gone"),
        (Op::Describe, Rt::Topic, "seen"),
    ]);
    let ids = Ids(vec![(id(1), "gone"), (id(2), "seen"), (id(3), "hidden")]);
    let state = |name: Option<&'static str>, tid: Uuid| {
        delete_topics_request::DeleteTopicState::default()
            .with_name(name.map(tn))
            .with_topic_id(tid)
    };
    let req = DeleteTopicsRequest::default().with_topics(vec![
        state(None, id(1)),
        state(None, id(2)),
        state(None, id(3)),
        state(None, id(9)),
        state(Some("byname"), Uuid::nil()),
    ]);
    let (forwarded_ids, merge) = delete_v6_partial(req, &acl, &ids);
    assert_eq!(forwarded_ids, vec![id(1)]);
    let resp = delete_v6_answer(merge, ("gone", id(1)), &acl, &ids);
    let got: Vec<_> = resp
        .responses
        .iter()
        .map(|r| {
            (
                r.name.as_ref().map(|n| n.to_string()),
                r.topic_id,
                r.error_code,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("gone".into()), id(1), 0),
            (Some("seen".into()), id(2), 29),
            (None, id(3), 29),
            (None, id(9), 100),
            (Some("byname".into()), Uuid::nil(), 29),
        ]
    );
    assert_eq!(
        resp.responses[3].error_message.as_deref(),
        Some("This server does not host this topic ID.")
    );
}

/// Issue 11 item 2: DELETE on the cluster reaches every topic the gateway can name, but an id it
/// cannot resolve (it could be any topic, the audit topic included) is answered UNKNOWN_TOPIC_ID
/// and never forwarded.
#[test]
fn delete_topics_by_an_unknown_id_is_never_forwarded_even_with_cluster_delete() {
    let acl = Acl::new(&[(Op::Delete, Rt::Cluster, CLUSTER_NAME)]);
    let ids = Ids(vec![(id(1), "known")]);
    let state = |tid: Uuid| delete_topics_request::DeleteTopicState::default().with_topic_id(tid);
    let req = DeleteTopicsRequest::default().with_topics(vec![state(id(1)), state(id(9))]);
    assert_eq!(
        delete_v6_partial(req, &acl, &ids).0,
        vec![id(1)],
        "the known topic is deleted through the cluster grant, the unknown id is not forwarded"
    );
    let known_only = DeleteTopicsRequest::default().with_topics(vec![state(id(1))]);
    assert!(matches!(
        plan(
            ApiKey::DeleteTopics,
            6,
            RequestKind::DeleteTopics(known_only),
            &acl,
            &ids
        ),
        Plan::Forward
    ));
}

/// Issue 11 item 2: an entry naming an allowed topic and carrying a denied topic's id is never
/// forwarded: answered 42 with Kafka's message, as ControllerApis answers it; so is an entry with
/// neither. The well-formed entries go ahead.
#[test]
fn delete_topics_entries_with_both_a_name_and_an_id_are_answered_here() {
    let acl = Acl::new(&[
        (Op::Delete, Rt::Topic, "allowed"),
        (Op::Delete, Rt::Topic, "other"),
    ]);
    let ids = Ids(vec![
        (id(1), "allowed"),
        (id(2), "secret"),
        (id(3), "other"),
    ]);
    let state = |name: Option<&'static str>, tid: Uuid| {
        delete_topics_request::DeleteTopicState::default()
            .with_name(name.map(tn))
            .with_topic_id(tid)
    };
    let req = DeleteTopicsRequest::default().with_topics(vec![
        state(Some("allowed"), id(2)),
        state(None, Uuid::nil()),
        state(None, id(3)),
    ]);
    let (forwarded_ids, merge) = delete_v6_partial(req, &acl, &ids);
    assert_eq!(
        forwarded_ids,
        vec![id(3)],
        "only the well-formed entry is forwarded"
    );
    let resp = delete_v6_answer(merge, ("other", id(3)), &acl, &ids);
    let got: Vec<_> = resp
        .responses
        .iter()
        .map(|r| {
            (
                r.topic_id,
                r.error_code,
                r.error_message.as_deref().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                id(2),
                42,
                Some("You may not specify both topic name and topic id.".into())
            ),
            (
                Uuid::nil(),
                42,
                Some("Neither topic name nor id were specified.".into())
            ),
            (id(3), 0, None),
        ]
    );
}

#[test]
fn create_partitions_needs_alter() {
    let req = CreatePartitionsRequest::default().with_topics(vec![
        create_partitions_request::CreatePartitionsTopic::default()
            .with_name(tn("t"))
            .with_count(6),
    ]);
    let acl = Acl::new(&[(Op::Describe, Rt::Topic, "t")]);
    let frame = respond_frame(plan(
        ApiKey::CreatePartitions,
        3,
        RequestKind::CreatePartitions(req.clone()),
        &acl,
        &Ids::default(),
    ));
    let resp: CreatePartitionsResponse = response(ApiKey::CreatePartitions, 3, &frame);
    assert_eq!(
        (
            resp.results[0].error_code,
            resp.results[0].error_message.clone()
        ),
        (29, None)
    );
    let acl = Acl::new(&[(Op::Alter, Rt::Topic, "t")]);
    assert_forward(plan(
        ApiKey::CreatePartitions,
        0,
        RequestKind::CreatePartitions(req),
        &acl,
        &Ids::default(),
    ));
}

// ---------------------------------------------------------------------------------------------
// Configs

fn dc_resource(rtype: i8, name: &'static str) -> describe_configs_request::DescribeConfigsResource {
    describe_configs_request::DescribeConfigsResource::default()
        .with_resource_type(rtype)
        .with_resource_name(sb(name))
        .with_configuration_keys(None)
}

#[test]
fn scenario_27_describe_configs_topic_broker_logger_group() {
    let acl = Acl::new(&[(Op::AlterConfigs, Rt::Topic, "ok")]);
    for version in [1i16, 4] {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            dc_resource(2, "t"),
            dc_resource(2, "ok"),
            dc_resource(8, "1"),
            dc_resource(4, "1"),
            dc_resource(32, "g"),
        ]);
        let (request, merge) = partial(plan(
            ApiKey::DescribeConfigs,
            version,
            RequestKind::DescribeConfigs(req),
            &acl,
            &Ids::default(),
        ));
        let RequestKind::DescribeConfigs(fwd) =
            forwarded(ApiKey::DescribeConfigs, version, &request)
        else {
            panic!()
        };
        assert_eq!(
            fwd.resources
                .iter()
                .map(|r| r.resource_name.to_string())
                .collect::<Vec<_>>(),
            ["ok"]
        );
        let up = DescribeConfigsResponse::default().with_results(vec![
            describe_configs_response::DescribeConfigsResult::default()
                .with_resource_type(2)
                .with_resource_name(sb("ok"))
                .with_error_message(None),
        ]);
        let merged = merge
            .apply(
                upstream(ApiKey::DescribeConfigs, version, &up),
                &acl,
                &Ids::default(),
            )
            .expect("merge");
        let resp: DescribeConfigsResponse = response(ApiKey::DescribeConfigs, version, &merged);
        let got: Vec<_> = resp
            .results
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string(), r.error_code))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "t".into(), 29),
                (2, "ok".into(), 0),
                (8, "1".into(), 31),
                (4, "1".into(), 31),
                (32, "g".into(), 30)
            ]
        );
        assert_eq!(
            resp.results[2].error_message.as_deref(),
            Some("Cluster authorization failed.")
        );
    }
    let cluster = Acl::new(&[(Op::DescribeConfigs, Rt::Cluster, CLUSTER_NAME)]);
    let req = DescribeConfigsRequest::default().with_resources(vec![dc_resource(8, "1")]);
    assert_forward(plan(
        ApiKey::DescribeConfigs,
        4,
        RequestKind::DescribeConfigs(req),
        &cluster,
        &Ids::default(),
    ));
}

#[test]
fn describe_configs_unknown_resource_type_fails_the_whole_request_with_42() {
    let acl = Acl::new(&[(Op::DescribeConfigs, Rt::Topic, "ok")]);
    let req = DescribeConfigsRequest::default()
        .with_resources(vec![dc_resource(2, "ok"), dc_resource(99, "x")]);
    let frame = respond_frame(plan(
        ApiKey::DescribeConfigs,
        4,
        RequestKind::DescribeConfigs(req),
        &acl,
        &Ids::default(),
    ));
    let resp: DescribeConfigsResponse = response(ApiKey::DescribeConfigs, 4, &frame);
    assert_eq!(
        resp.results
            .iter()
            .map(|r| r.error_code)
            .collect::<Vec<_>>(),
        vec![42, 42]
    );
}

#[test]
fn scenario_27_alter_configs_and_incremental_alter_configs() {
    let acl = Acl::new(&[(Op::AlterConfigs, Rt::Topic, "ok")]);
    // Legacy AlterConfigs.
    let res = |t: i8, n: &'static str| {
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(t)
            .with_resource_name(sb(n))
    };
    let req = AlterConfigsRequest::default().with_resources(vec![
        res(2, "t"),
        res(2, "ok"),
        res(4, ""),
        res(32, "g"),
        res(77, "?"),
        res(2, "dup"),
        res(2, "dup"),
    ]);
    let (request, merge) = partial(plan(
        ApiKey::AlterConfigs,
        2,
        RequestKind::AlterConfigs(req),
        &acl,
        &Ids::default(),
    ));
    let RequestKind::AlterConfigs(fwd) = forwarded(ApiKey::AlterConfigs, 2, &request) else {
        panic!()
    };
    assert_eq!(fwd.resources.len(), 1);
    let up = AlterConfigsResponse::default().with_responses(vec![
        alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(2)
            .with_resource_name(sb("ok")),
    ]);
    let merged = merge
        .apply(
            upstream(ApiKey::AlterConfigs, 2, &up),
            &acl,
            &Ids::default(),
        )
        .expect("merge");
    let resp: AlterConfigsResponse = response(ApiKey::AlterConfigs, 2, &merged);
    let got: Vec<_> = resp
        .responses
        .iter()
        .map(|r| (r.resource_type, r.error_code))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, 29),
            (2, 0),
            (4, 31),
            (32, 30),
            (77, 35),
            (2, 42),
            (2, 42)
        ]
    );
    assert_eq!(
        resp.responses[4].error_message.as_deref(),
        Some("Unknown resource type 77.")
    );

    // IncrementalAlterConfigs: a broker logger needs cluster ALTER_CONFIGS.
    let ires = |t: i8, n: &'static str| {
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(t)
            .with_resource_name(sb(n))
    };
    for version in [0i16, 1] {
        let req = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![ires(8, "1"), ires(2, "t")]);
        let frame = respond_frame(plan(
            ApiKey::IncrementalAlterConfigs,
            version,
            RequestKind::IncrementalAlterConfigs(req),
            &acl,
            &Ids::default(),
        ));
        let resp: IncrementalAlterConfigsResponse =
            response(ApiKey::IncrementalAlterConfigs, version, &frame);
        let got: Vec<_> = resp
            .responses
            .iter()
            .map(|r| (r.resource_type, r.error_code))
            .collect();
        assert_eq!(got, vec![(8, 31), (2, 29)]);
        assert_eq!(
            resp.responses[0].error_message.as_deref(),
            Some("Cluster authorization failed.")
        );
    }
    let cluster = Acl::new(&[(Op::AlterConfigs, Rt::Cluster, CLUSTER_NAME)]);
    let req =
        IncrementalAlterConfigsRequest::default().with_resources(vec![ires(8, "1"), ires(4, "1")]);
    assert_forward(plan(
        ApiKey::IncrementalAlterConfigs,
        1,
        RequestKind::IncrementalAlterConfigs(req),
        &cluster,
        &Ids::default(),
    ));
}

// ---------------------------------------------------------------------------------------------
// Cluster APIs

#[test]
fn describe_log_dirs_needs_cluster_describe() {
    let none = Acl::default();
    for (version, code) in [(1i16, 0i16), (2, 0), (3, 31), (4, 31)] {
        let req = DescribeLogDirsRequest::default().with_topics(None);
        let frame = respond_frame(plan(
            ApiKey::DescribeLogDirs,
            version,
            RequestKind::DescribeLogDirs(req),
            &none,
            &Ids::default(),
        ));
        let resp: DescribeLogDirsResponse = response(ApiKey::DescribeLogDirs, version, &frame);
        assert_eq!(
            (resp.error_code, resp.results.len()),
            (code, 0),
            "v{version}"
        );
    }
    let acl = Acl::new(&[(Op::Describe, Rt::Cluster, CLUSTER_NAME)]);
    assert_forward(plan(
        ApiKey::DescribeLogDirs,
        4,
        RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default()),
        &acl,
        &Ids::default(),
    ));
}

/// An API the gateway does not offer (`api::SUPPORTED`) has no mapping: the session refuses it.
#[test]
fn apis_the_gateway_does_not_offer_are_not_planned() {
    let cases = [
        (
            ApiKey::ElectLeaders,
            RequestKind::ElectLeaders(ElectLeadersRequest::default()),
        ),
        (
            ApiKey::AlterPartitionReassignments,
            RequestKind::AlterPartitionReassignments(AlterPartitionReassignmentsRequest::default()),
        ),
        (
            ApiKey::DescribeUserScramCredentials,
            RequestKind::DescribeUserScramCredentials(
                DescribeUserScramCredentialsRequest::default(),
            ),
        ),
    ];
    for (api, body) in cases {
        assert!(
            crate::protocol::api::spec_for(api).is_none(),
            "{api:?} is offered"
        );
        let p = mapping::plan(
            api,
            2,
            &header(api, 2),
            &body,
            &Acl::default(),
            &Ids::default(),
        )
        .expect("ok");
        assert!(p.is_none(), "{api:?} has a mapping");
    }
}

#[test]
fn fetch_before_sessions_is_stripped_without_session_fields() {
    let acl = Acl::new(&[(Op::Read, Rt::Topic, "ok")]);
    for version in [4i16, 6] {
        let req = fetch_req(
            version,
            &[("no", Uuid::nil(), &[0]), ("ok", Uuid::nil(), &[0])],
        );
        let (request, merge) = partial(plan(
            ApiKey::Fetch,
            version,
            RequestKind::Fetch(req),
            &acl,
            &Ids::default(),
        ));
        let RequestKind::Fetch(fwd) = forwarded(ApiKey::Fetch, version, &request) else {
            panic!()
        };
        assert_eq!(
            fwd.topics
                .iter()
                .map(|t| t.topic.to_string())
                .collect::<Vec<_>>(),
            ["ok"]
        );
        let up = FetchResponse::default().with_responses(vec![
            fetch_response::FetchableTopicResponse::default()
                .with_topic(tn("ok"))
                .with_partitions(vec![
                    fetch_response::PartitionData::default().with_high_watermark(3)
                ]),
        ]);
        let merged = merge
            .apply(upstream(ApiKey::Fetch, version, &up), &acl, &Ids::default())
            .expect("merge");
        let resp: FetchResponse = response(ApiKey::Fetch, version, &merged);
        assert_eq!(
            fetch_errors(version, &resp),
            vec![("no".into(), 0, 29), ("ok".into(), 0, 0)]
        );
    }
}

#[test]
fn produce_by_topic_id_resolves_names() {
    // Produce v13 names topics by id (the gateway caps Produce lower today).
    let acl = Acl::new(&[(Op::Write, Rt::Topic, "t")]);
    let ids = Ids(vec![(id(1), "t"), (id(2), "secret")]);
    let topic = |tid: Uuid| {
        produce_request::TopicProduceData::default()
            .with_topic_id(tid)
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default().with_records(None)
            ])
    };
    let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
        topic(id(1)),
        topic(id(2)),
        topic(id(3)),
    ]);
    let (_, merge) = partial(plan(
        ApiKey::Produce,
        13,
        RequestKind::Produce(req),
        &acl,
        &ids,
    ));
    let up = ProduceResponse::default().with_responses(vec![
        produce_response::TopicProduceResponse::default()
            .with_topic_id(id(1))
            .with_partition_responses(vec![produce_response::PartitionProduceResponse::default()]),
    ]);
    let merged = merge
        .apply(upstream(ApiKey::Produce, 13, &up), &acl, &ids)
        .expect("merge");
    let resp: ProduceResponse = response(ApiKey::Produce, 13, &merged);
    let got: Vec<_> = resp
        .responses
        .iter()
        .map(|t| (t.topic_id, t.partition_responses[0].error_code))
        .collect();
    assert_eq!(got, vec![(id(1), 0), (id(2), 29), (id(3), 100)]);
}

/// Issue 11 item 5: a Metadata request of many names is authorized from its bytes. Planning one
/// of 36,000 names (1 MiB, every other denied) allocates less than the frame's size beyond what it
/// hands on (the spliced request, the gateway's answers), and merging the answer costs the new
/// bytes only: kept topics are sent from the upstream's frame.
#[test]
fn metadata_of_many_names_costs_about_its_own_size() {
    struct Half;
    impl Authorize for Half {
        fn allowed(&self, _op: Op, _rtype: Rt, name: &str) -> bool {
            name.starts_with("cost")
        }
        fn allowed_any(&self, _op: Op, _rtype: Rt) -> bool {
            false
        }
    }
    let names: Vec<String> = (0..36_000)
        .map(|i| match i % 2 {
            1 => format!("deny-{i:06}"),
            _ => format!("cost-{i:06}"),
        })
        .collect();
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(
            names
                .iter()
                .map(|n| {
                    metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                })
                .collect(),
        ));
    let frame = crate::protocol::codec::encode_request_with_header(
        ApiKey::Metadata,
        12,
        &header(ApiKey::Metadata, 12),
        &req,
    )
    .expect("encode");
    let upstream_topics: Vec<_> = names
        .iter()
        .filter(|n| n.starts_with("cost"))
        .map(|n| {
            metadata_response::MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                .with_error_code(3)
        })
        .collect();
    drop(req);
    let up = md_upstream(12, upstream_topics);
    let rewritten = crate::protocol::rewrite::rewrite_brokers(ApiKey::Metadata, 12, up, &|n| {
        Some(("gw".to_string(), 9000 + n as u16))
    })
    .expect("rewrite");

    let mut planned = None;
    let plan_cost = allocation_counter::measure(|| {
        let (_, wire) =
            crate::protocol::codec::read_metadata_request(12, frame.slice(LEN_PREFIX..), u64::MAX)
                .expect("read");
        planned = Some(mapping::plan_request(
            ApiKey::Metadata,
            12,
            &crate::protocol::codec::Request::Metadata {
                header: header(ApiKey::Metadata, 12),
                wire,
            },
            &Half,
            &Ids::default(),
        ));
    });
    let (forward, merge) = partial(planned.expect("planned").expect("plan").expect("mapped"));
    assert!(
        forward.len() < frame.len() / 2 + 64,
        "only the allowed half is forwarded"
    );
    // What the plan hands on: the spliced request and the answers for 18,000 denied names.
    let handed_on = plan_cost.bytes_current.max(0) as u64;
    let scratch = plan_cost.bytes_max - handed_on;
    assert!(
        scratch < frame.len() as u64 / 2,
        "planning used {scratch} bytes beyond what it handed on, for a {} byte frame",
        frame.len()
    );
    assert!(
        handed_on < 2 * frame.len() as u64,
        "the plan keeps {handed_on} bytes for a {} byte frame",
        frame.len()
    );
    let mut merged = None;
    let merge_cost = allocation_counter::measure(|| {
        merged = Some(merge.apply_parts(rewritten.parts.clone(), &Half, &Ids::default()));
    });
    let merged = merged.expect("merged").expect("merge");
    let upstream_len = rewritten.parts.len();
    assert!(
        merge_cost.bytes_max < upstream_len as u64 / 4,
        "merging allocated {} bytes for a {upstream_len} byte answer",
        merge_cost.bytes_max
    );
    println!(
        "RESULT metadata 36,000 names: frame {} B, plan scratch {scratch} B, handed on {handed_on} B, merge {} B for a {upstream_len} B answer",
        frame.len(),
        merge_cost.bytes_max
    );
    let resp: MetadataResponse = response(ApiKey::Metadata, 12, &merged.joined());
    assert_eq!(resp.topics.len(), 36_000);
    assert_eq!(
        resp.topics.iter().filter(|t| t.error_code == 29).count(),
        18_000
    );
}

/// What a denied topic's answer takes at v12 (name, one partition's 37 bytes, counts and tags) and
/// its 8-byte mark, for every name, plus 1 KiB.
fn merged_len_bound(names: &[String]) -> u64 {
    names
        .iter()
        .map(|n| n.len() as u64 + 1 + 1 + 37 + 1 + 8)
        .sum::<u64>()
        + 1024
}

/// Issue 11 item 5: a Fetch is authorized from its bytes. A request of one allowed topic and
/// 20,000 denied ones, each also forgotten (about 1 MiB), plans into the spliced request and the
/// denied answers (about their own size) with little scratch, and the merge allocates about the
/// answer it writes.
#[test]
fn fetch_of_many_denied_topics_costs_about_its_own_size() {
    struct One;
    impl Authorize for One {
        fn allowed(&self, _op: Op, _rtype: Rt, name: &str) -> bool {
            name == "cost"
        }
        fn allowed_any(&self, _op: Op, _rtype: Rt) -> bool {
            false
        }
    }
    let names: Vec<String> = (0..20_000).map(|i| format!("secret-{i:06}")).collect();
    let mut req = fetch_req(12, &[("cost", id(1), &[0])]);
    for n in &names {
        req.topics.push(
            fetch_request::FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(n.clone())))
                .with_partitions(vec![fetch_request::FetchPartition::default()]),
        );
        req.forgotten_topics_data.push(
            fetch_request::ForgottenTopic::default()
                .with_topic(TopicName(StrBytes::from_string(n.clone())))
                .with_partitions(vec![0]),
        );
    }
    let frame = crate::protocol::codec::encode_request_with_header(
        ApiKey::Fetch,
        12,
        &header(ApiKey::Fetch, 12),
        &req,
    )
    .expect("encode");
    drop(req);
    let mut planned = None;
    let plan_cost = allocation_counter::measure(|| {
        let (header, wire) =
            crate::protocol::codec::read_fetch_request(12, frame.slice(LEN_PREFIX..), u64::MAX)
                .expect("read");
        planned = Some(mapping::plan_request(
            ApiKey::Fetch,
            12,
            &crate::protocol::codec::Request::Fetch { header, wire },
            &One,
            &Ids::default(),
        ));
    });
    let (forward, merge) = partial(planned.expect("planned").expect("plan").expect("mapped"));
    assert!(forward.len() < 200, "only the allowed topic is forwarded");
    let handed_on = plan_cost.bytes_current.max(0) as u64;
    let scratch = plan_cost.bytes_max - handed_on;
    let up = encode_response(
        ApiKey::Fetch,
        12,
        &response_header(4711),
        &FetchResponse::default().with_responses(vec![
            fetch_response::FetchableTopicResponse::default()
                .with_topic(tn("cost"))
                .with_partitions(vec![fetch_response::PartitionData::default()]),
        ]),
    )
    .expect("encode");
    let mut merged = None;
    let merge_cost = allocation_counter::measure(|| {
        merged = Some(merge.apply(up.slice(LEN_PREFIX..), &One, &Ids::default()));
    });
    let merged = merged.expect("merged").expect("merge");
    println!(
        "RESULT fetch 20,000 denied topics: frame {} B, plan scratch {scratch} B, handed on {handed_on} B, merge {} B for a {} B answer",
        frame.len(),
        merge_cost.bytes_max,
        merged.len()
    );
    assert!(
        scratch < frame.len() as u64 / 4,
        "planning used {scratch} bytes beyond what it handed on, for a {} byte frame",
        frame.len()
    );
    // The answers as they will be sent, and an 8-byte mark each.
    assert!(
        handed_on < merged_len_bound(&names),
        "the plan keeps {handed_on} bytes for {} denied topics",
        names.len()
    );
    assert!(
        merge_cost.bytes_max < merged.len() as u64 * 5 / 4,
        "merging allocated {} bytes for a {} byte answer",
        merge_cost.bytes_max,
        merged.len()
    );
    assert!(merged.len() as u64 + 8 * 20_000 <= merged_len_bound(&names) + 2048);
    let resp: FetchResponse = response(ApiKey::Fetch, 12, &merged);
    assert_eq!(resp.responses.len(), 20_001);
    assert_eq!(&*resp.responses[0].topic, "cost");
    assert!(resp.responses[1..]
        .iter()
        .all(|t| t.partitions[0].error_code == 29));
}
