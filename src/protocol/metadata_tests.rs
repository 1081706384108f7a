//! The in-place Metadata reader against kafka-protocol's own decoder and encoder, every version.

use bytes::Bytes;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, MetadataRequest, MetadataResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::protocol::codec::{decode_request, encode_request_with_header, encode_response};

fn header(version: i16) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(version)
        .with_correlation_id(77)
        .with_client_id(Some(StrBytes::from_static_str("c")))
}

/// The request's payload (no length prefix) and where its body starts.
fn payload(version: i16, req: &MetadataRequest) -> (Bytes, usize) {
    let frame = encode_request_with_header(ApiKey::Metadata, version, &header(version), req)
        .expect("encode");
    let payload = frame.slice(LEN_PREFIX..);
    let mut h = payload.clone();
    RequestHeader::decode(&mut h, ApiKey::Metadata.request_header_version(version))
        .expect("header");
    let body_at = payload.len() - h.len();
    (payload, body_at)
}

fn topic(name: Option<&str>, id: u128) -> MetadataRequestTopic {
    let mut t = MetadataRequestTopic::default()
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
        .with_topic_id(Uuid::from_u128(id));
    if id % 3 == 0 {
        // An unknown tagged field on the entry: kept byte for byte by a splice.
        t.unknown_tagged_fields.insert(7, Bytes::from_static(b"xy"));
    }
    t
}

/// What a request can be at `version`: names may be null from v10 on (by-id requests).
fn request(
    version: i16,
    topics: Option<Vec<(Option<String>, u128)>>,
    flags: [bool; 3],
) -> MetadataRequest {
    let topics = topics.map(|ts| {
        ts.into_iter()
            .map(|(n, id)| {
                let id = if version >= FIRST_TOPIC_ID { id } else { 0 };
                let n = if version >= FIRST_TOPIC_ID {
                    n
                } else {
                    n.or(Some(String::new()))
                };
                let mut t = topic(n.as_deref(), id);
                if version < FIRST_FLEXIBLE {
                    t.unknown_tagged_fields.clear();
                }
                t
            })
            .collect()
    });
    MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(version < 4 || flags[0])
        .with_include_cluster_authorized_operations((8..=10).contains(&version) && flags[1])
        .with_include_topic_authorized_operations(version >= 8 && flags[2])
}

fn decoded(frame: &Bytes, version: i16) -> MetadataRequest {
    let len = i32::from_be_bytes(frame[..4].try_into().expect("prefix"));
    assert_eq!(len as usize, frame.len() - LEN_PREFIX, "length prefix");
    let r = decode_request(ApiKey::Metadata, version, frame.slice(LEN_PREFIX..)).expect("decodes");
    assert_eq!(r.header, header(version), "the client's header is kept");
    match r.body {
        kafka_protocol::messages::RequestKind::Metadata(m) => m,
        other => panic!("not Metadata: {other:?}"),
    }
}

fn topics_strategy() -> impl Strategy<Value = Option<Vec<(Option<String>, u128)>>> {
    proptest::option::weighted(
        0.9,
        proptest::collection::vec(
            (
                proptest::option::weighted(0.8, "[a-cé]{0,3}"),
                prop_oneof![Just(0u128), 1u128..6],
            ),
            0..12,
        ),
    )
}

proptest! {
    /// The entries read in place are the decoder's, and a splice keeping any subset decodes to
    /// the original request with exactly that subset.
    #[test]
    fn reads_and_splices_as_the_decoder_sees_it(
        version in 0i16..=13,
        topics in topics_strategy(),
        flags in any::<[bool; 3]>(),
        keep_mask in any::<u64>(),
        allow in any::<bool>(),
        ids_only in any::<bool>(),
    ) {
        let req = request(version, topics, flags);
        let (payload, body_at) = payload(version, &req);
        let wire = MetadataRequestWire::parse(version, payload, body_at).expect("parse");
        prop_assert_eq!(wire.allow_auto_topic_creation(), req.allow_auto_topic_creation);
        prop_assert_eq!(wire.include_cluster_authorized_operations(), req.include_cluster_authorized_operations);
        prop_assert_eq!(wire.include_topic_authorized_operations(), req.include_topic_authorized_operations);
        prop_assert_eq!(wire.topic_count(), req.topics.as_ref().map(Vec::len));
        let Some(expected) = req.topics.as_ref() else {
            prop_assert!(wire.topics().is_none());
            return Ok(());
        };
        let got: Vec<TopicEntry<'_>> = wire.topics().expect("a list").map(|t| t.expect("entry")).collect();
        for (g, e) in got.iter().zip(expected) {
            prop_assert_eq!(g.name, e.name.as_ref().map(|n| n.0.as_str()));
            prop_assert_eq!(g.topic_id, e.topic_id);
            let again = wire.entry_at(g.at).expect("entry_at");
            prop_assert_eq!(again.name, g.name);
            prop_assert_eq!(again.end, g.end);
        }
        let ids_only = ids_only && version >= 12;
        let frame = wire
            .splice(|t| {
                let i = got.iter().position(|g| g.at == t.at).expect("known entry");
                keep_mask & (1 << i) != 0
            }, ids_only, allow)
            .expect("splice");
        let mut want = req.clone();
        want.topics = Some(
            expected
                .iter()
                .enumerate()
                .filter(|(i, _)| keep_mask & (1 << i) != 0)
                .map(|(_, t)| {
                    let mut t = t.clone();
                    if ids_only {
                        t.name = None;
                    }
                    t
                })
                .collect(),
        );
        if version >= FIRST_AUTO_CREATE_FLAG {
            want.allow_auto_topic_creation = allow;
        }
        prop_assert_eq!(decoded(&frame, version), want);
    }

    /// Every prefix of a request body is refused, never a panic; a whole one is read.
    #[test]
    fn a_cut_request_is_refused(version in 0i16..=13, topics in topics_strategy()) {
        let req = request(version, topics, [true, false, true]);
        let (payload, body_at) = payload(version, &req);
        for cut in body_at..payload.len() {
            prop_assert!(MetadataRequestWire::parse(version, payload.slice(..cut), body_at).is_err(), "cut at {}", cut);
        }
        prop_assert!(MetadataRequestWire::parse(version, payload, body_at).is_ok());
    }
}

#[test]
fn a_name_that_is_not_utf8_is_refused_as_the_decoder_refuses_it() {
    let req = request(9, Some(vec![(Some("ab".into()), 0)]), [true; 3]);
    let (payload, body_at) = payload(9, &req);
    let mut bytes = payload.to_vec();
    let at = bytes.windows(2).position(|w| w == b"ab").expect("name");
    bytes[at] = 0xFF;
    let bytes = Bytes::from(bytes);
    assert!(decode_request(ApiKey::Metadata, 9, bytes.clone()).is_err());
    let err = MetadataRequestWire::parse(9, bytes, body_at).expect_err("refused");
    assert_eq!(err.what, "topic name is not UTF-8");
}

fn response(version: i16) -> MetadataResponse {
    let mut r = MetadataResponse::default()
        .with_throttle_time_ms(if version >= 3 { 5 } else { 0 })
        .with_controller_id(BrokerId(if version >= 1 { 2 } else { -1 }))
        .with_cluster_authorized_operations(if (8..=10).contains(&version) {
            9
        } else {
            i32::MIN
        });
    if version >= 2 {
        r.cluster_id = Some(StrBytes::from_static_str("cid"));
    }
    for id in 1..=3 {
        let mut b = MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_static_str("h"))
            .with_port(9000 + id);
        if version >= 1 {
            b.rack = Some(StrBytes::from_static_str("r"));
        }
        r.brokers.push(b);
    }
    for (i, name) in ["a", "bb", "ccc"].iter().enumerate() {
        let mut t = MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(name))))
            .with_error_code(i as i16)
            .with_partitions(vec![MetadataResponsePartition::default()
                .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                .with_isr_nodes(vec![BrokerId(1)])]);
        if version >= 10 {
            t.topic_id = Uuid::from_u128(i as u128 + 1);
        }
        if version >= 8 {
            t.topic_authorized_operations = 3;
        }
        r.topics.push(t);
    }
    r
}

#[test]
fn a_response_is_walked_as_the_decoder_reads_it_in_every_version() {
    for version in 0i16..=13 {
        let resp = response(version);
        let frame = encode_response(
            ApiKey::Metadata,
            version,
            &crate::protocol::codec::response_header(1),
            &resp,
        )
        .expect("encode");
        let (_, body) = crate::protocol::codec::split_response(
            ApiKey::Metadata,
            version,
            frame.slice(LEN_PREFIX..),
        )
        .expect("split");
        let layout = response_layout(version, &body).expect("layout");
        assert_eq!(layout.topics.0, 3, "v{version}");
        let mut at = layout.topics.1;
        for want in &resp.topics {
            let (got, end) = response_topic_at(version, &body, at).expect("topic");
            assert_eq!(&got, want, "v{version}");
            at = end;
        }
        let (ops_at, end) = response_tail(version, &body, at).expect("tail");
        assert_eq!(end, body.len(), "v{version}: the tail ends the body");
        assert_eq!(ops_at.is_some(), (8..=10).contains(&version));
        if let Some(p) = ops_at {
            assert_eq!(i32::from_be_bytes(body[p..p + 4].try_into().expect("4")), 9);
        }
        // The broker list, re-read from its own bytes, is the decoder's.
        let mut brokers = body.slice(layout.brokers.clone());
        if version >= 3 {
            let _ = brokers.split_to(4);
        }
        let n = if version >= FIRST_FLEXIBLE {
            brokers.split_to(1)[0] as usize - 1
        } else {
            i32::from_be_bytes(brokers.split_to(4)[..].try_into().expect("4")) as usize
        };
        let got: Vec<MetadataResponseBroker> = (0..n)
            .map(|_| MetadataResponseBroker::decode(&mut brokers, version).expect("broker"))
            .collect();
        assert_eq!(got, resp.brokers, "v{version}");
        assert!(brokers.is_empty());
    }
}
