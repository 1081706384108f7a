//! Tests for the pre-decode bounds walker: schema agreement with kafka-protocol for every API and
//! version, every-prefix truncation, hostile counts, and mutation fuzzing.

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages;
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};
use proptest::prelude::*;

use super::super::wire_schema::{for_each_api, Elem, StructDef, Ty, APIS, NEVER, STRUCTS};
use super::*;

// ---------------------------------------------------------------------------------------------
// kafka-protocol access for every API, through function pointers
// ---------------------------------------------------------------------------------------------

/// kafka-protocol entry points for one message type.
#[derive(Clone, Copy)]
struct Codec {
    versions: (i16, i16),
    encode_default: fn(i16) -> Result<Vec<u8>, String>,
    /// Decodes and returns the number of bytes left unread.
    decode: fn(Bytes, i16) -> Result<usize, String>,
    /// Decodes, then encodes the decoded value again.
    reencode: fn(Bytes, i16) -> Result<Vec<u8>, String>,
}

fn encode_default<T: Encodable + Default>(version: i16) -> Result<Vec<u8>, String> {
    let mut out = BytesMut::new();
    T::default()
        .encode(&mut out, version)
        .map_err(|e| e.to_string())?;
    Ok(out.to_vec())
}

fn decode<T: Decodable>(mut body: Bytes, version: i16) -> Result<usize, String> {
    T::decode(&mut body, version).map_err(|e| e.to_string())?;
    Ok(body.len())
}

fn reencode<T: Decodable + Encodable>(mut body: Bytes, version: i16) -> Result<Vec<u8>, String> {
    let value = T::decode(&mut body, version).map_err(|e| e.to_string())?;
    let mut out = BytesMut::new();
    value.encode(&mut out, version).map_err(|e| e.to_string())?;
    Ok(out.to_vec())
}

impl Codec {
    fn of<T: Encodable + Decodable + Default + Message>() -> Self {
        Codec {
            versions: (T::VERSIONS.min, T::VERSIONS.max),
            encode_default: encode_default::<T>,
            decode: decode::<T>,
            reencode: reencode::<T>,
        }
    }
}

struct ApiCase {
    key: i16,
    request: Codec,
    response: Codec,
}

impl ApiCase {
    fn codec(&self, request: bool) -> Codec {
        if request {
            self.request
        } else {
            self.response
        }
    }
}

macro_rules! api_table {
    ($(($key:literal, $req:ident, $resp:ident)),* $(,)?) => {
        fn api_table() -> Vec<ApiCase> {
            vec![$(ApiCase {
                key: $key,
                request: Codec::of::<messages::$req>(),
                response: Codec::of::<messages::$resp>(),
            }),*]
        }
    };
}
for_each_api!(api_table);

fn apis() -> &'static [ApiCase] {
    static APIS_CELL: OnceLock<Vec<ApiCase>> = OnceLock::new();
    APIS_CELL.get_or_init(api_table)
}

fn api(key: i16) -> &'static ApiCase {
    apis()
        .iter()
        .find(|a| a.key == key)
        .expect("test asks for an API key the schema has")
}

fn check(key: i16, version: i16, request: bool, body: &[u8]) -> Result<usize, BoundsError> {
    if request {
        measure_request_body(key, version, body)
    } else {
        measure_response_body(key, version, body)
    }
}

fn versions(key: i16, request: bool) -> std::ops::RangeInclusive<i16> {
    let (lo, hi) = supported_body_versions(key, request).expect("key comes from the schema");
    lo..=hi
}

// ---------------------------------------------------------------------------------------------
// Schema-driven synthetic frames: every array has one element, every nullable is present, every
// known tagged field is set, plus one unknown tag.
// ---------------------------------------------------------------------------------------------

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn synth_ty(out: &mut Vec<u8>, ty: Ty, version: i16) {
    match ty {
        Ty::Int8 | Ty::Boolean => out.push(1),
        Ty::Int16 | Ty::UInt16 => out.extend_from_slice(&1i16.to_be_bytes()),
        Ty::Int32 => out.extend_from_slice(&1i32.to_be_bytes()),
        Ty::Int64 => out.extend_from_slice(&1i64.to_be_bytes()),
        Ty::Float64 => out.extend_from_slice(&1.5f64.to_be_bytes()),
        Ty::Uuid => out.extend_from_slice(&[7; 16]),
        Ty::String | Ty::NullableString => {
            out.extend_from_slice(&2i16.to_be_bytes());
            out.extend_from_slice(b"ab");
        }
        Ty::CompactString | Ty::NullableCompactString => {
            put_uvarint(out, 3);
            out.extend_from_slice(b"ab");
        }
        Ty::Bytes | Ty::NullableBytes => {
            out.extend_from_slice(&3i32.to_be_bytes());
            out.extend_from_slice(b"xyz");
        }
        Ty::CompactBytes | Ty::NullableCompactBytes => {
            put_uvarint(out, 4);
            out.extend_from_slice(b"xyz");
        }
        Ty::Array(e) | Ty::NullableArray(e) => {
            out.extend_from_slice(&1i32.to_be_bytes());
            synth_elem(out, e, version);
        }
        Ty::CompactArray(e) | Ty::NullableCompactArray(e) => {
            put_uvarint(out, 2);
            synth_elem(out, e, version);
        }
        Ty::Struct(id) => synth_struct(out, &STRUCTS[usize::from(id)], version),
        Ty::OptionStruct(id) => {
            out.push(1);
            synth_struct(out, &STRUCTS[usize::from(id)], version);
        }
    }
}

fn synth_elem(out: &mut Vec<u8>, elem: Elem, version: i16) {
    let ty = match elem {
        Elem::Int8 => Ty::Int8,
        Elem::Int32 => Ty::Int32,
        Elem::Int64 => Ty::Int64,
        Elem::Uuid => Ty::Uuid,
        Elem::String => Ty::String,
        Elem::CompactString => Ty::CompactString,
        Elem::Struct(id) => Ty::Struct(id),
    };
    synth_ty(out, ty, version);
}

fn synth_struct(out: &mut Vec<u8>, st: &StructDef, version: i16) {
    for f in st
        .fields
        .iter()
        .filter(|f| f.0 <= version && version <= f.1)
    {
        synth_ty(out, f.2, version);
    }
    if st.flex != NEVER && version >= st.flex {
        let known: Vec<_> = st
            .tagged
            .iter()
            .filter(|t| t.1 <= version && version <= t.2)
            .collect();
        // One unknown tag after the known ones, as kafka-protocol re-encodes them in that order.
        let unknown_tag = st.tagged.iter().map(|t| t.0 + 1).max().unwrap_or(0) + 10;
        put_uvarint(out, known.len() as u32 + 1);
        for t in known {
            let mut content = Vec::new();
            synth_ty(&mut content, t.3, version);
            put_uvarint(out, t.0);
            put_uvarint(out, content.len() as u32);
            out.extend_from_slice(&content);
        }
        put_uvarint(out, unknown_tag);
        put_uvarint(out, 2);
        out.extend_from_slice(b"??");
    }
}

fn synth_body(key: i16, version: i16, request: bool) -> Vec<u8> {
    let api = APIS
        .iter()
        .find(|a| a.key == key)
        .expect("key comes from the schema");
    let id = if request { api.request } else { api.response };
    let mut out = Vec::new();
    synth_struct(&mut out, &STRUCTS[usize::from(id)], version);
    out
}

// ---------------------------------------------------------------------------------------------
// Schema agreement with kafka-protocol, for every API, version and direction
// ---------------------------------------------------------------------------------------------

#[test]
fn schema_covers_every_api_with_kafka_protocol_versions() {
    assert_eq!(apis().len(), APIS.len());
    for case in apis() {
        for request in [true, false] {
            assert_eq!(
                supported_body_versions(case.key, request),
                Some(case.codec(request).versions),
                "api {} request={request}",
                case.key
            );
        }
    }
    assert!(
        APIS.windows(2).all(|w| w[0].key < w[1].key),
        "APIS must be sorted for binary search"
    );
    assert_eq!(supported_body_versions(-1, true), None);
    assert_eq!(supported_body_versions(i16::MAX, false), None);
}

#[test]
fn default_bodies_are_accepted_and_have_the_minimum_size() {
    let mut pairs = 0;
    for case in apis() {
        for request in [true, false] {
            let codec = case.codec(request);
            let api = APIS.iter().find(|a| a.key == case.key).expect("same table");
            let st = &STRUCTS[usize::from(if request { api.request } else { api.response })];
            for v in versions(case.key, request) {
                let body = (codec.encode_default)(v)
                    .unwrap_or_else(|e| panic!("api {} v{v}: {e}", case.key));
                assert_eq!(
                    check(case.key, v, request, &body),
                    Ok(body.len()),
                    "api {} v{v} request={request}",
                    case.key
                );
                assert_eq!(
                    body.len(),
                    usize::from(st.min[(v - st.lo) as usize]),
                    "api {} v{v} request={request}: generated minimum size disagrees with Default",
                    case.key
                );
                pairs += 1;
            }
        }
    }
    // 87 API keys in kafka-protocol 0.18.0; every version of both directions is covered.
    assert!(pairs > 500, "only {pairs} bodies covered");
}

#[test]
fn synthetic_rich_bodies_decode_exactly_and_round_trip() {
    for case in apis() {
        for request in [true, false] {
            let codec = case.codec(request);
            for v in versions(case.key, request) {
                let ctx = format!("api {} v{v} request={request}", case.key);
                let body = synth_body(case.key, v, request);
                assert_eq!(check(case.key, v, request, &body), Ok(body.len()), "{ctx}");
                let left = (codec.decode)(Bytes::from(body.clone()), v)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(
                    left, 0,
                    "{ctx}: the decoder did not read what the schema describes"
                );
                let again = (codec.reencode)(Bytes::from(body.clone()), v)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(again, body, "{ctx}: re-encoding differs");
            }
        }
    }
}

#[test]
fn trailing_bytes_are_accepted_like_the_decoder() {
    let mut body = synth_body(3, 12, true);
    let len = body.len();
    body.extend_from_slice(b"trailing");
    assert_eq!(measure_request_body(3, 12, &body), Ok(len));
    assert_eq!(check_request_body(3, 12, &body), Ok(()));
    assert_eq!((api(3).request.decode)(Bytes::from(body), 12), Ok(8));
}

// ---------------------------------------------------------------------------------------------
// Hand-built messages
// ---------------------------------------------------------------------------------------------

fn s(v: &'static str) -> StrBytes {
    StrBytes::from_static_str(v)
}

fn enc<T: Encodable>(msg: &T, version: i16) -> Vec<u8> {
    let mut out = BytesMut::new();
    msg.encode(&mut out, version)
        .expect("hand-built message is valid at this version");
    out.to_vec()
}

/// (api key, version, request?, body).
type Sample = (i16, i16, bool, Vec<u8>);

/// A handful of realistic messages.
fn hand_built() -> Vec<Sample> {
    use kafka_protocol::messages::*;
    let mut out = Vec::new();

    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(s("orders")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(3)
                    .with_records(Some(Bytes::from_static(&[0u8; 61]))),
            ])]);
    for v in [3, 8, 9, 12] {
        out.push((0, v, true, enc(&produce, v)));
    }

    let fetch = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(s("orders")))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(1)
                .with_fetch_offset(42)])]);
    for v in [4, 11, 12] {
        out.push((1, v, true, enc(&fetch, v)));
    }
    let fetch_resp = FetchResponse::default().with_responses(vec![
        fetch_response::FetchableTopicResponse::default()
            .with_topic(TopicName(s("orders")))
            .with_partitions(vec![fetch_response::PartitionData::default()
                .with_high_watermark(100)
                .with_aborted_transactions(Some(
                    vec![fetch_response::AbortedTransaction::default()],
                ))
                .with_records(Some(Bytes::from_static(b"0123456789")))]),
    ]);
    for v in [4, 11, 12] {
        out.push((1, v, false, enc(&fetch_resp, v)));
    }

    let metadata_req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s("t")))),
    ]));
    for v in [1, 9, 12] {
        out.push((3, v, true, enc(&metadata_req, v)));
    }
    let metadata = MetadataResponse::default()
        .with_brokers(vec![metadata_response::MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(s("broker-1"))
            .with_port(9092)])
        .with_topics(vec![metadata_response::MetadataResponseTopic::default()
            .with_name(Some(TopicName(s("orders"))))
            .with_partitions(vec![
                metadata_response::MetadataResponsePartition::default()
                    .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                    .with_isr_nodes(vec![BrokerId(1)]),
            ])]);
    for v in [1, 8, 9, 12] {
        out.push((3, v, false, enc(&metadata, v)));
    }

    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("orders")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_committed_offset(7)
                        .with_committed_metadata(Some(s("meta"))),
                ]),
        ]);
    for v in [2, 7, 8] {
        out.push((8, v, true, enc(&commit, v)));
    }

    let find = FindCoordinatorResponse::default().with_coordinators(vec![
        find_coordinator_response::Coordinator::default()
            .with_key(s("g"))
            .with_host(s("h"))
            .with_port(1),
    ]);
    out.push((10, 4, false, enc(&find, 4)));
    let find_req = FindCoordinatorRequest::default().with_key(s("group-1"));
    out.push((10, 0, true, enc(&find_req, 0)));
    out.push((10, 3, true, enc(&find_req, 3)));

    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(b"\x00\x01meta"))]);
    for v in [0, 5, 6, 9] {
        out.push((11, v, true, enc(&join, v)));
    }

    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s("new")))
            .with_num_partitions(3)
            .with_assignments(vec![
                create_topics_request::CreatableReplicaAssignment::default()
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2)]),
            ])
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(s("cleanup.policy"))
                .with_value(Some(s("compact")))]),
    ]);
    for v in [2, 4, 5, 7] {
        out.push((19, v, true, enc(&create, v)));
    }

    let describe_cluster = DescribeClusterResponse::default()
        .with_cluster_id(s("c"))
        .with_brokers(vec![
            describe_cluster_response::DescribeClusterBroker::default()
                .with_host(s("b"))
                .with_rack(Some(s("r"))),
        ]);
    out.push((60, 0, false, enc(&describe_cluster, 0)));
    out.push((60, 1, false, enc(&describe_cluster, 1)));

    let api_versions = ApiVersionsResponse::default()
        .with_api_keys(vec![api_versions_response::ApiVersion::default()
            .with_api_key(18)
            .with_max_version(4)])
        .with_supported_features(vec![
            api_versions_response::SupportedFeatureKey::default().with_name(s("f"))
        ])
        .with_finalized_features_epoch(5)
        .with_zk_migration_ready(true);
    for v in [0, 2, 3, 4] {
        out.push((18, v, false, enc(&api_versions, v)));
    }
    out
}

#[test]
fn hand_built_messages_are_accepted() {
    for (key, v, request, body) in hand_built() {
        assert_eq!(
            check(key, v, request, &body),
            Ok(body.len()),
            "api {key} v{v} request={request}"
        );
        assert_eq!(
            (api(key).codec(request).decode)(Bytes::from(body), v),
            Ok(0)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Every-prefix truncation
// ---------------------------------------------------------------------------------------------

/// On every prefix of a valid body: the walker never panics; whenever the decoder succeeds, the
/// walker accepts too (it is never stricter on honest bytes); when the walker accepts, decoding
/// runs (prefixes of honest bodies cannot ask for more than the original held).
fn check_prefixes(key: i16, v: i16, request: bool, body: &[u8]) {
    let codec = api(key).codec(request);
    for cut in 0..body.len() {
        let prefix = &body[..cut];
        let walked = check(key, v, request, prefix);
        let decoded = (codec.decode)(Bytes::copy_from_slice(prefix), v);
        if decoded.is_ok() {
            assert!(
                walked.is_ok(),
                "api {key} v{v} request={request} cut {cut}: decoder ok, walker {walked:?}"
            );
        }
        if let Ok(len) = walked {
            assert!(len <= cut);
        }
    }
}

#[test]
fn every_prefix_of_hand_built_messages() {
    for (key, v, request, body) in hand_built() {
        check_prefixes(key, v, request, &body);
    }
}

#[test]
fn every_prefix_of_synthetic_bodies() {
    for key in [0, 1, 3, 8, 10, 11, 18, 19, 32, 60, 68, 75] {
        for request in [true, false] {
            for v in versions(key, request) {
                check_prefixes(key, v, request, &synth_body(key, v, request));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile lengths and counts
// ---------------------------------------------------------------------------------------------

#[test]
fn huge_classic_array_count_is_rejected() {
    // MetadataRequest v1: topics is a nullable Array(MetadataRequestTopic).
    let body = 0x7FFF_FFFFi32.to_be_bytes();
    assert_eq!(
        check_request_body(3, 1, &body),
        Err(BoundsError::CountOutOfBounds {
            offset: 0,
            declared: 0x7FFF_FFFF,
            remaining: 0
        })
    );
    // Same count with some bytes behind it: still far more elements than bytes.
    let mut body = 0x7FFF_FFFFi32.to_be_bytes().to_vec();
    body.extend_from_slice(&[0; 64]);
    assert!(matches!(
        check_request_body(3, 1, &body),
        Err(BoundsError::CountOutOfBounds { remaining: 64, .. })
    ));
}

#[test]
fn huge_compact_array_count_is_rejected() {
    // MetadataRequest v9 (flexible): topics is a nullable CompactArray; varint 0xFFFFFFFF.
    let body = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0];
    assert_eq!(
        check_request_body(3, 9, &body),
        Err(BoundsError::CountOutOfBounds {
            offset: 0,
            declared: 0xFFFF_FFFE,
            remaining: 3
        })
    );
    // A CompactArray of Int32 (fixed size elements): 3 elements need 12 bytes, 8 are there.
    // CreateTopicsRequest v5: topics[1] { name "t", num_partitions, replication_factor, assignments[1] { partition_index, broker_ids } }
    let mut body = vec![0x02, 0x02, b't', 0, 0, 0, 1, 0, 1, 0x02, 0, 0, 0, 0, 0x04];
    body.extend_from_slice(&[0; 8]);
    assert_eq!(
        check_request_body(19, 5, &body),
        Err(BoundsError::CountOutOfBounds {
            offset: 14,
            declared: 3,
            remaining: 8
        })
    );
}

#[test]
fn long_string_with_few_bytes_left_is_rejected() {
    // FindCoordinatorRequest v0: key is a String.
    let body = [0x7F, 0xFF, b'a', b'b', b'c'];
    assert_eq!(
        check_request_body(10, 0, &body),
        Err(BoundsError::LengthOutOfBounds {
            offset: 0,
            declared: 0x7FFF,
            remaining: 3
        })
    );
    // v3: CompactString with length 100, 3 bytes left.
    let body = [101, b'a', b'b', b'c'];
    assert_eq!(
        check_request_body(10, 3, &body),
        Err(BoundsError::LengthOutOfBounds {
            offset: 0,
            declared: 100,
            remaining: 3
        })
    );
}

#[test]
fn negative_lengths_are_rejected() {
    // String length -2 (FindCoordinatorRequest v0).
    assert_eq!(
        check_request_body(10, 0, &[0xFF, 0xFE, 0, 0]),
        Err(BoundsError::NegativeLength {
            offset: 0,
            declared: -2
        })
    );
    // Null where the decoder requires a string.
    assert_eq!(
        check_request_body(10, 0, &[0xFF, 0xFF, 0]),
        Err(BoundsError::UnexpectedNull { offset: 0 })
    );
    // Array count -2 (MetadataRequest v1).
    assert_eq!(
        check_request_body(3, 1, &(-2i32).to_be_bytes()),
        Err(BoundsError::NegativeLength {
            offset: 0,
            declared: -2
        })
    );
    // Array count -1 is null, which MetadataRequest v1 topics allows.
    assert_eq!(check_request_body(3, 1, &(-1i32).to_be_bytes()), Ok(()));
    // Records length -2 in ProduceRequest v3:
    // transactional_id null, acks, timeout, topic_data[1] { name "t", partition_data[1] { index, records } }
    let mut body = vec![
        0xFF, 0xFF, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0,
    ];
    body.extend_from_slice(&(-2i32).to_be_bytes());
    assert_eq!(
        check_request_body(0, 3, &body),
        Err(BoundsError::NegativeLength {
            offset: 23,
            declared: -2
        })
    );
}

#[test]
fn nested_count_larger_than_the_rest_of_the_frame_is_rejected() {
    // ProduceRequest v3: topic_data[1] { name "t", partition_data[1000] } with 40 bytes left.
    // Each PartitionProduceData is at least 8 bytes (index + records length).
    let mut body = vec![0xFF, 0xFF, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, b't'];
    body.extend_from_slice(&1000i32.to_be_bytes());
    body.extend_from_slice(&[0; 40]);
    assert_eq!(
        check_request_body(0, 3, &body),
        Err(BoundsError::CountOutOfBounds {
            offset: 15,
            declared: 1000,
            remaining: 40
        })
    );
    // 5 elements of 8 bytes fit exactly in 40 bytes (records length 0 each).
    let mut body = vec![0xFF, 0xFF, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, b't'];
    body.extend_from_slice(&5i32.to_be_bytes());
    body.extend_from_slice(&[0; 40]);
    assert_eq!(check_request_body(0, 3, &body), Ok(()));
    assert_eq!((api(0).request.decode)(Bytes::from(body), 3), Ok(0));
}

#[test]
fn counts_inside_a_known_tagged_field_are_bounded_by_its_size() {
    // FetchResponse v16: throttle, error_code, session_id, responses (empty), then one tagged
    // field 0 (node_endpoints) of size 1 whose content claims 4 elements; plenty of bytes follow
    // the tagged field but the count may only use the field's own bytes.
    let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0x00, 0x01, 0x05];
    body.extend_from_slice(&[0; 100]);
    assert_eq!(
        check_response_body(1, 16, &body),
        Err(BoundsError::CountOutOfBounds {
            offset: 14,
            declared: 4,
            remaining: 0
        })
    );
    // Known tagged field whose content is shorter than its declared size.
    let body = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0x00, 0x02, 0x01, 0x00,
    ];
    assert_eq!(
        check_response_body(1, 16, &body),
        Err(BoundsError::TaggedFieldSizeMismatch {
            offset: 12,
            tag: 0,
            declared: 2,
            consumed: 1
        })
    );
    // The same tag at v12..15 is one the decoder refuses.
    assert_eq!(
        check_response_body(1, 12, &body),
        Err(BoundsError::TagNotValidForVersion {
            offset: 12,
            tag: 0,
            version: 12
        })
    );
}

#[test]
fn unknown_tagged_field_larger_than_the_frame_is_rejected() {
    // FindCoordinatorRequest v3: key "", key_type, then tags: 1 field, tag 9, size 1000.
    let body = [0x01, 0x00, 0x01, 0x09, 0xE8, 0x07, 0, 0];
    assert_eq!(
        check_request_body(10, 3, &body),
        Err(BoundsError::LengthOutOfBounds {
            offset: 4,
            declared: 1000,
            remaining: 2
        })
    );
    // Tag count far beyond the bytes left.
    let body = [0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
    assert!(matches!(
        check_request_body(10, 3, &body),
        Err(BoundsError::CountOutOfBounds { offset: 2, .. })
    ));
}

#[test]
fn overlong_varint_and_unknown_api_are_rejected() {
    let body = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
    assert_eq!(
        check_request_body(10, 3, &body),
        Err(BoundsError::VarIntTooLong { offset: 0 })
    );
    assert_eq!(
        check_request_body(10, 3, &[0x80]),
        Err(BoundsError::Truncated { offset: 1 })
    );
    assert_eq!(
        check_request_body(4, 0, &[]),
        Err(BoundsError::UnknownApi { api_key: 4 })
    );
    assert_eq!(
        check_request_body(-1, 0, &[]),
        Err(BoundsError::UnknownApi { api_key: -1 })
    );
    assert_eq!(
        check_request_body(0, 2, &[]),
        Err(BoundsError::UnsupportedVersion {
            api_key: 0,
            api_version: 2
        })
    );
    assert_eq!(
        check_response_body(10, 7, &[]),
        Err(BoundsError::UnsupportedVersion {
            api_key: 10,
            api_version: 7
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Mutation fuzzing
// ---------------------------------------------------------------------------------------------

fn corpus() -> &'static [Sample] {
    static CORPUS: OnceLock<Vec<Sample>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut out = hand_built();
        for case in apis() {
            for request in [true, false] {
                for v in versions(case.key, request) {
                    out.push((case.key, v, request, synth_body(case.key, v, request)));
                }
            }
        }
        out
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, xor: u8 },
    SetI32 { at: usize, value: i32 },
    SetVarint { at: usize, value: u32 },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let count = prop_oneof![
        Just(i32::MAX),
        Just(-2),
        Just(-1),
        Just(0x0100_0000),
        0..64i32,
        any::<i32>()
    ];
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        (any::<usize>(), count).prop_map(|(at, value)| Mutation::SetI32 { at, value }),
        (
            any::<usize>(),
            prop_oneof![Just(u32::MAX), 0..300u32, any::<u32>()]
        )
            .prop_map(|(at, value)| Mutation::SetVarint { at, value }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(body: &mut Vec<u8>, m: &Mutation) {
    if body.is_empty() {
        return;
    }
    match *m {
        Mutation::Flip { at, xor } => {
            let i = at % body.len();
            body[i] ^= xor;
        }
        Mutation::SetI32 { at, value } => {
            let i = at % body.len();
            let end = (i + 4).min(body.len());
            body[i..end].copy_from_slice(&value.to_be_bytes()[..end - i]);
        }
        Mutation::SetVarint { at, value } => {
            let i = at % body.len();
            let mut enc = Vec::new();
            put_uvarint(&mut enc, value);
            // Splice: replace one byte by the varint, shifting the rest.
            body.splice(i..i + 1, enc);
        }
        Mutation::Truncate { at } => {
            let i = at % body.len();
            body.truncate(i);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn mutated_bodies_never_panic_and_accepted_ones_decode_safely(
        pick in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let corpus = corpus();
        let (key, v, request, original) = &corpus[pick % corpus.len()];
        let mut body = original.clone();
        for m in &mutations {
            apply(&mut body, m);
        }
        if let Ok(len) = check(*key, *v, *request, &body) {
            prop_assert!(len <= body.len());
            // The walker vouched for every count and length: decoding must not blow up (it may
            // still fail, e.g. on invalid UTF-8, which the walker does not look at).
            let _ = (api(*key).codec(*request).decode)(Bytes::from(body), *v);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_and_accepted_ones_decode_safely(
        pick in any::<usize>(),
        request in any::<bool>(),
        version_pick in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let case = &apis()[pick % apis().len()];
        let (lo, hi) = case.codec(request).versions;
        let v = lo + i16::from(version_pick) % (hi - lo + 1);
        if check(case.key, v, request, &body).is_ok() {
            let _ = (case.codec(request).decode)(Bytes::from(body), v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoded-size accounting against what kafka-protocol's decoder really allocates
// ---------------------------------------------------------------------------------------------

/// Bytes allocated on this thread while running `f` (allocation-counter is this test binary's
/// global allocator and counts per thread, so parallel tests do not disturb it).
fn allocated_by(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).bytes_total
}

/// The walker's estimate must cover what decoding allocates, for every API, version and direction
/// (synthetic bodies have an element in every array, every tagged field and an unknown tag), or a
/// request could pass the budget and still decode to more.
#[test]
fn decoded_size_estimate_covers_what_the_decoder_allocates() {
    // Splitting a `Bytes` made from a `Vec` moves it to a shared header once (a few words).
    const SHARED_HEADER: u64 = 64;
    let mut worst: (f64, String) = (0.0, String::new());
    for case in apis() {
        for request in [true, false] {
            let codec = case.codec(request);
            for v in versions(case.key, request) {
                let ctx = format!("api {} v{v} request={request}", case.key);
                let body = synth_body(case.key, v, request);
                let estimate = measure(case.key, v, &body, request, u64::MAX)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"))
                    .decoded;
                let input = Bytes::from(body);
                let actual = allocated_by(|| {
                    (codec.decode)(input, v).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                });
                assert!(
                    actual <= estimate + SHARED_HEADER,
                    "{ctx}: decoding allocated {actual} bytes, the walker estimated {estimate}"
                );
                // The top-level struct is charged although it lives on the stack.
                let body_struct = STRUCTS[usize::from(
                    body_struct(case.key, request).expect("key comes from the schema"),
                )]
                .size as u64;
                if actual > 0 {
                    let ratio = estimate.saturating_sub(body_struct) as f64 / actual as f64;
                    if ratio > worst.0 {
                        worst = (ratio, ctx);
                    }
                }
            }
        }
    }
    // The estimate is an upper bound, not a wild one: beyond the top-level struct, only the tag
    // maps' rounded node size makes it overestimate.
    println!("worst overestimate: {:.2}x for {}", worst.0, worst.1);
    assert!(
        worst.0 < 2.0,
        "estimate {}x the allocation for {}",
        worst.0,
        worst.1
    );
}

/// The case issue 11 measured: a Metadata request of empty topic names is 1-2 bytes per topic on
/// the wire and a whole `MetadataRequestTopic` per topic once decoded.
#[test]
fn many_empty_names_are_refused_by_their_decoded_size() {
    let count = 100_000u32;
    // v9 (flexible): compact array of topics, each an empty compact name and no tags.
    let mut body = Vec::new();
    put_uvarint(&mut body, count + 1);
    for _ in 0..count {
        body.extend_from_slice(&[1, 0]);
    }
    // allow_auto_topic_creation, include_cluster_ and include_topic_authorized_operations, tags
    body.extend_from_slice(&[0, 0, 0, 0]);
    let per_topic = std::mem::size_of::<messages::metadata_request::MetadataRequestTopic>() as u64;
    let measured = estimate_request_body(3, 9, &body, u64::MAX).expect("well-formed");
    assert!(measured.decoded >= u64::from(count) * per_topic);
    let budget = body.len() as u64;
    match estimate_request_body(3, 9, &body, budget) {
        Err(BoundsError::DecodedTooLarge {
            decoded, budget: b, ..
        }) => {
            assert_eq!(b, budget);
            assert!(decoded > budget);
        }
        other => panic!("expected DecodedTooLarge, got {other:?}"),
    }
    // Real names of ordinary length stay within a budget of the frame's own size.
    let mut body = Vec::new();
    put_uvarint(&mut body, 1_001);
    for i in 0..1_000 {
        let name = format!("orders.eu-west-1.{i:06}");
        put_uvarint(&mut body, name.len() as u32 + 1);
        body.extend_from_slice(name.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(&[0, 0, 0, 0]);
    let m = estimate_request_body(3, 9, &body, body.len() as u64 * 4).expect("within budget");
    assert_eq!(m.end, body.len());
}
