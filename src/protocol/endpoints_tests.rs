//! `node_endpoints` rewriting: the endpoints at gateway addresses, everything else byte for byte
//! the upstream's, the records never copied, and hostile tails refused without a panic.

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{self, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_response::{
    self, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchResponse, ProduceResponse, ShareAcknowledgeResponse, ShareFetchResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;

use super::*;
use crate::protocol::codec::{decode_body, encode_response, response_header, split_response};
use crate::protocol::frame::LEN_PREFIX;

/// Nodes 1 and 2 have gateway ports; node 3 has none.
fn advertise(node: i32) -> Option<(String, u16)> {
    (node < 3).then(|| ("gw.example".to_string(), 9000 + node as u16))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn run(api: ApiKey, version: i16, frame: &Bytes) -> (Parts, Vec<UpstreamBroker>, Vec<i32>) {
    let (mut seen, mut unmapped) = (Vec::new(), Vec::new());
    let parts = rewrite(
        api,
        version,
        frame.slice(LEN_PREFIX..),
        &advertise,
        &mut seen,
        &mut unmapped,
    )
    .expect("rewrite");
    (parts, seen, unmapped)
}

fn decoded<T: Decodable>(api: ApiKey, version: i16, frame: &Bytes) -> T {
    let len = i32::from_be_bytes(frame[..4].try_into().expect("prefix"));
    assert_eq!(len as usize, frame.len() - LEN_PREFIX, "length prefix");
    let (_, body) = split_response(api, version, frame.slice(LEN_PREFIX..)).expect("header");
    decode_body(api, version, body).expect("decodes")
}

fn fetch_response(endpoints: &[(i32, &str, i32)]) -> FetchResponse {
    let records = Bytes::from(vec![7u8; 300]);
    FetchResponse::default()
        .with_session_id(11)
        .with_responses(vec![FetchableTopicResponse::default()
            .with_topic_id(uuid::Uuid::from_u128(5))
            .with_partitions(vec![PartitionData::default()
                .with_partition_index(0)
                .with_error_code(6)
                .with_high_watermark(42)
                .with_records(Some(records))])])
        .with_node_endpoints(
            endpoints
                .iter()
                .map(|(id, host, port)| {
                    fetch_response::NodeEndpoint::default()
                        .with_node_id(BrokerId(*id))
                        .with_host(s(host))
                        .with_port(*port)
                        .with_rack(Some(s("r1")))
                })
                .collect(),
        )
        .with_unknown_tagged_fields([(7, Bytes::from_static(b"keep"))].into())
}

#[test]
fn fetch_endpoints_get_gateway_addresses_and_the_records_are_not_copied() {
    for version in FETCH_FIRST..=18 {
        let upstream = fetch_response(&[(1, "b1", 9092), (3, "b3", 9094)]);
        let frame = encode_response(ApiKey::Fetch, version, &response_header(9), &upstream)
            .expect("encode");
        let (parts, seen, unmapped) = run(ApiKey::Fetch, version, &frame);
        // The head, records included, is the upstream's buffer itself.
        let head = parts.iter().nth(1).expect("head");
        assert_eq!(
            head.as_ptr(),
            frame[LEN_PREFIX..].as_ptr(),
            "v{version}: copied"
        );
        let got: FetchResponse = decoded(ApiKey::Fetch, version, &parts.joined());
        let want =
            upstream
                .clone()
                .with_node_endpoints(vec![fetch_response::NodeEndpoint::default()
                    .with_node_id(BrokerId(1))
                    .with_host(s("gw.example"))
                    .with_port(9001)
                    .with_rack(Some(s("r1")))]);
        assert_eq!(got, want, "v{version}");
        assert_eq!(
            seen,
            [
                UpstreamBroker {
                    node_id: 1,
                    host: "b1".into(),
                    port: 9092
                },
                UpstreamBroker {
                    node_id: 3,
                    host: "b3".into(),
                    port: 9094
                }
            ]
        );
        assert_eq!(unmapped, [3], "a node without a gateway port is left out");
    }
}

#[test]
fn produce_endpoints_get_gateway_addresses() {
    for version in PRODUCE_FIRST..=13 {
        let upstream = ProduceResponse::default()
            .with_responses(vec![TopicProduceResponse::default()
                .with_name(TopicName(s(if version < 13 { "t" } else { "" })))
                .with_topic_id(if version < 13 {
                    uuid::Uuid::nil()
                } else {
                    uuid::Uuid::from_u128(9)
                })
                .with_partition_responses(vec![
                    PartitionProduceResponse::default().with_error_code(6)
                ])])
            .with_node_endpoints(vec![produce_response::NodeEndpoint::default()
                .with_node_id(BrokerId(2))
                .with_host(s("b2"))
                .with_port(9093)]);
        let frame = encode_response(ApiKey::Produce, version, &response_header(3), &upstream)
            .expect("encode");
        let (out, _, unmapped) = run(ApiKey::Produce, version, &frame);
        let got: ProduceResponse = decoded(ApiKey::Produce, version, &out.joined());
        assert_eq!(got.node_endpoints[0].host.as_str(), "gw.example");
        assert_eq!(got.node_endpoints[0].port, 9002);
        assert_eq!(got.responses, upstream.responses, "v{version}");
        assert!(unmapped.is_empty());
    }
}

#[test]
fn a_response_without_endpoints_is_the_upstreams_bytes() {
    for version in FETCH_FIRST..=18 {
        let upstream = fetch_response(&[]);
        let frame = encode_response(ApiKey::Fetch, version, &response_header(9), &upstream)
            .expect("encode");
        let (out, seen, _) = run(ApiKey::Fetch, version, &frame);
        assert_eq!(out.joined(), frame, "v{version}");
        assert!(seen.is_empty());
    }
    assert!(!applies(ApiKey::Fetch, 15) && applies(ApiKey::Fetch, 16));
    assert!(!applies(ApiKey::Produce, 9) && applies(ApiKey::Produce, 10));
    assert!(!applies(ApiKey::Metadata, 12));
}

/// Bytes after the body (which a decoder ignores) do not shift where the rewrite cuts: found by
/// fuzzing, when the body's offset was taken from a body that `split_response` had trimmed.
#[test]
fn bytes_after_the_body_do_not_shift_the_rewrite() {
    let upstream = ProduceResponse::default()
        .with_responses(vec![TopicProduceResponse::default()
            .with_name(TopicName(s("t")))
            .with_partition_responses(vec![PartitionProduceResponse::default()])])
        .with_node_endpoints(vec![produce_response::NodeEndpoint::default()
            .with_node_id(BrokerId(1))
            .with_host(s("b1"))
            .with_port(9092)]);
    let frame =
        encode_response(ApiKey::Produce, 11, &response_header(3), &upstream).expect("encode");
    let mut padded = frame.to_vec();
    padded.extend_from_slice(&[0xAB; 7]);
    let (out, _, _) = run(ApiKey::Produce, 11, &Bytes::from(padded));
    let got: ProduceResponse = decoded(ApiKey::Produce, 11, &out.joined());
    assert_eq!(got.responses, upstream.responses);
    assert_eq!(got.node_endpoints[0].port, 9001);
}

proptest! {
    /// The Fetch reader finds the tagged fields where the generic walk does, for any response.
    #[test]
    fn the_fetch_reader_finds_the_tags_where_the_schema_walk_does(
        version in FETCH_FIRST..=18i16,
        topics in prop::collection::vec((0u8..3, prop::collection::vec(0usize..200, 0..4)), 0..4),
        aborted in 0usize..3,
        nodes in prop::collection::vec(0i32..4, 0..3),
    ) {
        use kafka_protocol::messages::fetch_response::AbortedTransaction;
        let mut resp = fetch_response(&nodes.iter().map(|n| (*n, "h", 1)).collect::<Vec<_>>());
        resp.responses = topics.iter().enumerate().map(|(t, (_, sizes))| {
            FetchableTopicResponse::default()
                .with_topic_id(uuid::Uuid::from_u128(t as u128 + 1))
                .with_partitions(sizes.iter().enumerate().map(|(p, size)| {
                    PartitionData::default()
                        .with_partition_index(p as i32)
                        .with_aborted_transactions(Some(vec![AbortedTransaction::default(); aborted]))
                        .with_records((*size > 0).then(|| Bytes::from(vec![1u8; *size])))
                }).collect())
        }).collect();
        let frame = encode_response(ApiKey::Fetch, version, &response_header(1), &resp)
            .expect("encode");
        let (_, body) = split_response(ApiKey::Fetch, version, frame.slice(LEN_PREFIX..))
            .expect("split");
        let walked = bounds::response_tags_at(ApiKey::Fetch as i16, version, &body).expect("walk");
        prop_assert_eq!(Some(crate::protocol::fetch::response_tags_at(&body).expect("read")), walked);
    }

    /// Whatever follows a valid header, rewriting never panics: it answers or refuses.
    #[test]
    fn arbitrary_bodies_are_rewritten_or_refused_without_panic(
        version in FETCH_FIRST..=18i16,
        body in prop::collection::vec(any::<u8>(), 0..300),
        produce in any::<bool>(),
    ) {
        let api = if produce { ApiKey::Produce } else { ApiKey::Fetch };
        let version = if produce { version - 6 } else { version };
        let mut payload = vec![0, 0, 0, 1, 0]; // correlation id 1, no header tags
        payload.extend_from_slice(&body);
        let (mut seen, mut unmapped) = (Vec::new(), Vec::new());
        let _ = rewrite(api, version, Bytes::from(payload), &advertise, &mut seen, &mut unmapped);
    }

    /// A valid response with any endpoints comes back with the same ones at gateway addresses.
    #[test]
    fn any_endpoint_list_is_rewritten_in_order(
        nodes in prop::collection::vec(0i32..6, 0..8),
        version in FETCH_FIRST..=18i16,
    ) {
        let list: Vec<(i32, &str, i32)> = nodes.iter().map(|n| (*n, "h", 1000 + *n)).collect();
        let upstream = fetch_response(&list);
        let frame = encode_response(ApiKey::Fetch, version, &response_header(1), &upstream)
            .expect("encode");
        let (out, seen, unmapped) = run(ApiKey::Fetch, version, &frame);
        let got: FetchResponse = decoded(ApiKey::Fetch, version, &out.joined());
        let want: Vec<i32> = nodes.iter().copied().filter(|n| *n < 3).collect();
        let ids: Vec<i32> = got.node_endpoints.iter().map(|e| e.node_id.0).collect();
        prop_assert_eq!(ids, want);
        prop_assert!(got.node_endpoints.iter().all(|e| e.host.as_str() == "gw.example"));
        prop_assert_eq!(seen.len(), nodes.len());
        prop_assert_eq!(unmapped.len(), nodes.iter().filter(|n| **n >= 3).count());
        prop_assert_eq!(got.responses, upstream.responses);
    }
}

/// ShareFetch and ShareAcknowledge name the leaders in a regular field: rewritten in place, the
/// bytes before it (records included) and after it the upstream's own.
#[test]
fn share_endpoints_get_gateway_addresses_and_the_rest_is_the_upstreams() {
    use kafka_protocol::messages::share_acknowledge_response as ack;
    use kafka_protocol::messages::share_fetch_response as sf;
    let records = Bytes::from(vec![9u8; 200]);
    let endpoint = |id: i32| {
        sf::NodeEndpoint::default()
            .with_node_id(BrokerId(id))
            .with_host(s(&format!("b{id}")))
            .with_port(9092)
            .with_rack(Some(s("r1")))
    };
    let upstream = ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(30_000)
        .with_responses(vec![sf::ShareFetchableTopicResponse::default()
            .with_topic_id(uuid::Uuid::from_u128(5))
            .with_partitions(vec![sf::PartitionData::default()
                .with_partition_index(0)
                .with_error_code(6)
                .with_records(Some(records.clone()))])])
        .with_node_endpoints(vec![endpoint(1), endpoint(3)])
        .with_unknown_tagged_fields([(7, Bytes::from_static(b"keep"))].into());
    let frame =
        encode_response(ApiKey::ShareFetch, 1, &response_header(9), &upstream).expect("encode");
    let (parts, seen, unmapped) = run(ApiKey::ShareFetch, 1, &frame);
    assert!(
        parts
            .iter()
            .any(|p| p.as_ptr() == frame[LEN_PREFIX..].as_ptr()),
        "the head is the upstream's buffer, not a copy"
    );
    let got: ShareFetchResponse = decoded(ApiKey::ShareFetch, 1, &parts.joined());
    let mut want = upstream.clone();
    want.node_endpoints = vec![endpoint(1).with_host(s("gw.example")).with_port(9001)];
    assert_eq!(got, want);
    assert_eq!(seen.len(), 2);
    assert_eq!(unmapped, vec![3]);
    // Without endpoints (every response but a leader move's) the frame goes as it came.
    let plain = upstream.with_node_endpoints(Vec::new());
    let frame =
        encode_response(ApiKey::ShareFetch, 1, &response_header(9), &plain).expect("encode");
    let (parts, seen, _) = run(ApiKey::ShareFetch, 1, &frame);
    assert_eq!(parts.joined(), frame);
    assert!(seen.is_empty());

    let upstream = ShareAcknowledgeResponse::default()
        .with_responses(vec![ack::ShareAcknowledgeTopicResponse::default()
            .with_topic_id(uuid::Uuid::from_u128(5))
            .with_partitions(
                vec![ack::PartitionData::default().with_error_code(6)],
            )])
        .with_node_endpoints(vec![ack::NodeEndpoint::default()
            .with_node_id(BrokerId(2))
            .with_host(s("b2"))
            .with_port(9092)]);
    let frame = encode_response(ApiKey::ShareAcknowledge, 1, &response_header(9), &upstream)
        .expect("encode");
    let (parts, _, unmapped) = run(ApiKey::ShareAcknowledge, 1, &frame);
    let got: ShareAcknowledgeResponse = decoded(ApiKey::ShareAcknowledge, 1, &parts.joined());
    assert_eq!(got.node_endpoints[0].host.as_str(), "gw.example");
    assert_eq!(got.node_endpoints[0].port, 9002);
    assert!(unmapped.is_empty());
    // A truncated response is refused, never read past its end.
    for cut in 1..frame.len() - LEN_PREFIX {
        let payload = frame.slice(LEN_PREFIX..frame.len() - cut);
        let (mut seen, mut unmapped) = (Vec::new(), Vec::new());
        let _ = rewrite(
            ApiKey::ShareAcknowledge,
            1,
            payload,
            &advertise,
            &mut seen,
            &mut unmapped,
        );
    }
}
