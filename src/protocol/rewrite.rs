//! Broker address rewriting: every response that names brokers is made to name gateway ports instead.
//!
//! Pure functions over bytes. The mapping from node id to the advertised gateway address is passed in,
//! and the upstream addresses seen in the response are handed back so the caller can learn the cluster.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, DescribeClusterResponse, FindCoordinatorResponse, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::codec::{decode_body, encode_response, split_response, ProtocolError};
use super::frame::{Parts, LEN_PREFIX};
use super::metadata::{response_layout, response_topic_at};
use super::wire::{put_count, Cursor};

/// A broker as the upstream cluster names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamBroker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// Where clients of this listener reach a node through the gateway; `None` when it has no port.
pub trait Advertise {
    fn advertise(&self, node_id: i32) -> Option<(String, u16)>;
}

impl<F: Fn(i32) -> Option<(String, u16)>> Advertise for F {
    fn advertise(&self, node_id: i32) -> Option<(String, u16)> {
        self(node_id)
    }
}

#[derive(Debug)]
pub struct Rewritten {
    /// The new response frame, length prefix included. A Metadata response is two parts: its
    /// rewritten brokers are a new head (length prefix, header, throttle time, brokers), and the
    /// rest of its body (cluster id on: most of a large response) stays where the upstream's
    /// frame has it, sent without being copied.
    pub parts: Parts,
    /// Brokers the upstream named, with their real addresses.
    pub seen: Vec<UpstreamBroker>,
    /// Node ids that could not be given a gateway address (outside the port range).
    pub unmapped: Vec<i32>,
    /// A Metadata response's topics, for [`Rewritten::topics`].
    learn: Option<LearnTopics>,
}

impl Rewritten {
    /// The whole frame in one buffer (a copy when it is in two parts).
    pub fn frame(&self) -> Bytes {
        self.parts.clone().joined()
    }
}

/// COORDINATOR_NOT_AVAILABLE: the client retries FindCoordinator later.
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// Rewrites the broker addresses in a response payload (length prefix removed).
pub fn rewrite_brokers(
    api: ApiKey,
    version: i16,
    payload: Bytes,
    map: &dyn Advertise,
) -> Result<Rewritten, ProtocolError> {
    let mut seen = Vec::new();
    let mut unmapped = Vec::new();
    if super::endpoints::applies(api, version) {
        let parts =
            super::endpoints::rewrite(api, version, payload, map, &mut seen, &mut unmapped)?;
        return Ok(Rewritten {
            parts,
            seen,
            unmapped,
            learn: None,
        });
    }
    let (header, body) = split_response(api, version, payload)?;
    let mut learn = None;
    let (head, rest) = match api {
        ApiKey::Metadata => {
            let (head, rest, topics) =
                metadata_spliced(version, &header, body, map, &mut seen, &mut unmapped)?;
            learn = Some(topics);
            (head, rest)
        }
        ApiKey::FindCoordinator => {
            let mut resp: FindCoordinatorResponse = decode_body(api, version, body)?;
            if version < 4 {
                rewrite_coordinator(
                    &mut resp.node_id.0,
                    &mut resp.host,
                    &mut resp.port,
                    &mut resp.error_code,
                    map,
                    &mut seen,
                    &mut unmapped,
                );
            } else {
                for c in &mut resp.coordinators {
                    rewrite_coordinator(
                        &mut c.node_id.0,
                        &mut c.host,
                        &mut c.port,
                        &mut c.error_code,
                        map,
                        &mut seen,
                        &mut unmapped,
                    );
                }
            }
            (encode_response(api, version, &header, &resp)?, Bytes::new())
        }
        ApiKey::DescribeCluster => {
            let mut resp: DescribeClusterResponse = decode_body(api, version, body)?;
            resp.brokers.retain_mut(|b| {
                advertise_node(
                    b.broker_id.0,
                    &mut b.host,
                    &mut b.port,
                    map,
                    &mut seen,
                    &mut unmapped,
                )
            });
            (encode_response(api, version, &header, &resp)?, Bytes::new())
        }
        other => {
            return Err(ProtocolError::Decode {
                api: other,
                version,
                what: "response",
                message: "no broker rewriting is defined for this API".into(),
            })
        }
    };
    let mut parts = Parts::one(head);
    parts.push(rest);
    Ok(Rewritten {
        parts,
        seen,
        unmapped,
        learn,
    })
}

/// Advertises one broker (of a Metadata or DescribeCluster response) at its gateway address;
/// `false` (drop it) for a node outside the listener's port range: advertising the upstream's
/// own address would let clients bypass the gateway.
fn advertise_node(
    node_id: i32,
    host: &mut StrBytes,
    port: &mut i32,
    map: &dyn Advertise,
    seen: &mut Vec<UpstreamBroker>,
    unmapped: &mut Vec<i32>,
) -> bool {
    seen.push(UpstreamBroker {
        node_id,
        host: host.to_string(),
        port: *port,
    });
    match map.advertise(node_id) {
        Some((h, p)) => {
            *host = StrBytes::from_string(h);
            *port = i32::from(p);
            true
        }
        None => {
            unmapped.push(node_id);
            false
        }
    }
}

/// A Metadata response with its brokers rewritten, without decoding or copying the rest: the
/// brokers come first in the body, so they are decoded, rewritten and encoded into a new head, and
/// the rest (cluster id, controller, topics: most of a large response) is sent from the upstream's
/// frame as it came. Its topics are read later, one at a time, only to learn their ids
/// ([`Rewritten::topics`]).
fn metadata_spliced(
    version: i16,
    header: &ResponseHeader,
    body: Bytes,
    map: &dyn Advertise,
    seen: &mut Vec<UpstreamBroker>,
    unmapped: &mut Vec<i32>,
) -> Result<(Bytes, Bytes, LearnTopics), ProtocolError> {
    let api = ApiKey::Metadata;
    let malformed = |e: String| ProtocolError::Decode {
        api,
        version,
        what: "response body",
        message: e,
    };
    let layout = response_layout(version, &body).map_err(|e| malformed(e.to_string()))?;
    let compact = version >= 9;
    let mut c = Cursor::new(&body, 0);
    let throttle_time_ms = if version >= 3 {
        c.i32().map_err(|e| malformed(e.to_string()))?
    } else {
        0
    };
    let n_brokers = c
        .count(compact)
        .map_err(|e| malformed(e.to_string()))?
        .unwrap_or(0);
    // The layout read the list, so `n_brokers` brokers are present.
    let mut list = body.slice(c.pos()..layout.brokers.end);
    let mut brokers = Vec::with_capacity(n_brokers);
    for _ in 0..n_brokers {
        brokers.push(
            MetadataResponseBroker::decode(&mut list, version)
                .map_err(|e| malformed(e.to_string()))?,
        );
    }
    brokers
        .retain_mut(|b| advertise_node(b.node_id.0, &mut b.host, &mut b.port, map, seen, unmapped));
    let rest = body.slice(layout.brokers.end..);

    let enc = |e: anyhow::Error| ProtocolError::Encode {
        api,
        version,
        message: e.to_string(),
    };
    let mut out = BytesMut::with_capacity(LEN_PREFIX + 64 + 64 * brokers.len());
    out.extend_from_slice(&[0u8; LEN_PREFIX]);
    header
        .encode(&mut out, api.response_header_version(version))
        .map_err(enc)?;
    if version >= 3 {
        out.extend_from_slice(&throttle_time_ms.to_be_bytes());
    }
    put_count(&mut out, compact, brokers.len()).map_err(|e| enc(e.into()))?;
    for b in &brokers {
        b.encode(&mut out, version).map_err(enc)?;
    }
    let len = i32::try_from(out.len() - LEN_PREFIX + rest.len())
        .map_err(|_| enc(anyhow::anyhow!("response over 2 GiB")))?;
    out[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
    let learn = LearnTopics {
        version,
        count: layout.topics.0,
        start: layout.topics.1 - layout.brokers.end,
    };
    Ok((out.freeze(), rest, learn))
}

/// Where a rewritten Metadata response's topics are in its `rest`.
#[derive(Debug, Clone, Copy)]
struct LearnTopics {
    version: i16,
    count: usize,
    start: usize,
}

impl Rewritten {
    /// The names and ids of the topics a Metadata response answered without error, read one at
    /// a time from the frame (names are views into it, not copies); nothing for other APIs and
    /// for versions before topic ids (v10).
    pub fn topics(&self) -> impl Iterator<Item = (StrBytes, uuid::Uuid)> + '_ {
        let learn = self.learn.filter(|l| l.version >= 10);
        let mut at = learn.map_or(0, |l| l.start);
        (0..learn.map_or(0, |l| l.count))
            .map_while(move |_| {
                let l = learn?;
                let rest = self.parts.iter().nth(1)?;
                let (t, end) = response_topic_at(l.version, rest, at).ok()?;
                at = end;
                Some((t.error_code, t.name, t.topic_id))
            })
            .filter_map(|(error, name, id)| (error == 0).then_some((name?.0, id)))
    }
}

fn rewrite_coordinator(
    node_id: &mut i32,
    host: &mut StrBytes,
    port: &mut i32,
    error_code: &mut i16,
    map: &dyn Advertise,
    seen: &mut Vec<UpstreamBroker>,
    unmapped: &mut Vec<i32>,
) {
    if *node_id < 0 || *error_code != 0 {
        return; // no coordinator named: nothing to rewrite
    }
    seen.push(UpstreamBroker {
        node_id: *node_id,
        host: host.to_string(),
        port: *port,
    });
    match map.advertise(*node_id) {
        Some((h, p)) => {
            *host = StrBytes::from_string(h);
            *port = i32::from(p);
        }
        None => {
            unmapped.push(*node_id);
            *node_id = -1;
            *host = StrBytes::default();
            *port = -1;
            *error_code = COORDINATOR_NOT_AVAILABLE;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::response_header;
    use crate::protocol::frame::LEN_PREFIX;
    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::metadata_response::MetadataResponsePartition;
    use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
    use kafka_protocol::protocol::Decodable;

    fn map(node: i32) -> Option<(String, u16)> {
        (0..4)
            .contains(&node)
            .then(|| ("gw.example".to_string(), 9100 + node as u16))
    }

    fn decode_frame<T: Decodable>(api: ApiKey, version: i16, frame: &Bytes) -> T {
        let (_, body) = split_response(api, version, frame.slice(LEN_PREFIX..)).expect("split");
        decode_body(api, version, body).expect("decode")
    }

    fn metadata(version: i16) -> Bytes {
        let mut resp = MetadataResponse::default();
        for (id, host) in [
            (1, "broker-1.internal"),
            (2, "broker-2.internal"),
            (70, "far.internal"),
        ] {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(id);
            b.host = StrBytes::from_static_str(host);
            b.port = 9092;
            resp.brokers.push(b);
        }
        resp.controller_id = BrokerId(1);
        encode_response(ApiKey::Metadata, version, &response_header(5), &resp)
            .expect("encode")
            .slice(LEN_PREFIX..)
    }

    /// Golden check for every Metadata version: brokers are rewritten, unmapped ones dropped, the
    /// upstream addresses reported, and nothing else changes.
    #[test]
    fn metadata_brokers_are_rewritten_in_every_version() {
        let v = ApiKey::Metadata.valid_versions();
        for version in v.min..=v.max {
            let out = rewrite_brokers(ApiKey::Metadata, version, metadata(version), &map)
                .expect("rewrite");
            let resp: MetadataResponse = decode_frame(ApiKey::Metadata, version, &out.frame());
            let got: Vec<(i32, String, i32)> = resp
                .brokers
                .iter()
                .map(|b| (b.node_id.0, b.host.to_string(), b.port))
                .collect();
            assert_eq!(
                got,
                vec![
                    (1, "gw.example".into(), 9101),
                    (2, "gw.example".into(), 9102)
                ],
                "v{version}"
            );
            assert_eq!(out.unmapped, vec![70]);
            assert_eq!(out.seen.len(), 3);
            assert_eq!(out.seen[0].host, "broker-1.internal");
            if version >= 1 {
                assert_eq!(resp.controller_id, BrokerId(1), "controller id kept");
            }
        }
    }

    /// What the splice replaced: decode the whole response, rewrite its brokers, encode it again.
    fn rewritten_by_decoding(version: i16, payload: Bytes) -> Bytes {
        let (header, body) = split_response(ApiKey::Metadata, version, payload).expect("split");
        let mut resp: MetadataResponse =
            decode_body(ApiKey::Metadata, version, body).expect("decode");
        resp.brokers.retain_mut(|b| match map(b.node_id.0) {
            Some((host, port)) => {
                b.host = StrBytes::from_string(host);
                b.port = i32::from(port);
                true
            }
            None => false,
        });
        encode_response(ApiKey::Metadata, version, &header, &resp).expect("encode")
    }

    /// A response with every field set: brokers (one unmapped), cluster id, controller, topics with
    /// partitions and errors, cluster operations, an unknown tag.
    fn rich_metadata(version: i16) -> MetadataResponse {
        let MetadataResponse { brokers, .. } = MetadataResponse::decode(
            &mut metadata(version).slice(if version >= 9 { 5 } else { 4 }..),
            version,
        )
        .expect("decode");
        let mut resp = MetadataResponse::default();
        resp.throttle_time_ms = 7;
        resp.brokers = brokers;
        resp.cluster_id = (version >= 2).then(|| StrBytes::from_static_str("cluster-Z"));
        resp.controller_id = BrokerId(2);
        for (i, error) in [(0, 0i16), (1, 3), (2, 0)] {
            let mut t =
                kafka_protocol::messages::metadata_response::MetadataResponseTopic::default();
            t.error_code = error;
            t.name = Some(TopicName(StrBytes::from_string(format!("topic-{i}"))));
            if version >= 10 {
                t.topic_id = uuid::Uuid::from_u128(0x1000 + i as u128);
            }
            t.is_internal = i == 2;
            if error == 0 {
                let mut p = MetadataResponsePartition::default();
                p.partition_index = i;
                p.leader_id = BrokerId(1);
                p.replica_nodes = vec![BrokerId(1), BrokerId(2)];
                p.isr_nodes = vec![BrokerId(1)];
                t.partitions = vec![p];
            }
            if version >= 8 {
                t.topic_authorized_operations = 0x0FF8;
            }
            resp.topics.push(t);
        }
        if (8..=10).contains(&version) {
            resp.cluster_authorized_operations = 0x1F;
        }
        if version >= 9 {
            resp.unknown_tagged_fields
                .insert(99, Bytes::from_static(b"future"));
        }
        resp
    }

    /// The splice gives exactly the bytes a whole decode and re-encode gave, at every version,
    /// learns the same topics, and drops trailing bytes the same way.
    #[test]
    fn metadata_splice_equals_a_whole_decode_and_re_encode() {
        let v = ApiKey::Metadata.valid_versions();
        for version in v.min..=v.max {
            let payload = encode_response(
                ApiKey::Metadata,
                version,
                &response_header(9),
                &rich_metadata(version),
            )
            .expect("encode")
            .slice(LEN_PREFIX..);
            let out =
                rewrite_brokers(ApiKey::Metadata, version, payload.clone(), &map).expect("rewrite");
            assert_eq!(
                out.frame(),
                rewritten_by_decoding(version, payload.clone()),
                "v{version}"
            );
            let head = out.parts.iter().next().expect("a head");
            assert!(head.len() < 128, "v{version}: only the head is new");
            // Ids are learned from v10 on (before, a response has no ids to learn).
            let ids: Vec<(String, uuid::Uuid)> = [0u128, 2]
                .iter()
                .filter(|_| version >= 10)
                .map(|&i| (format!("topic-{i}"), uuid::Uuid::from_u128(0x1000 + i)))
                .collect();
            let learned: Vec<(String, uuid::Uuid)> =
                out.topics().map(|(n, id)| (n.to_string(), id)).collect();
            assert_eq!(learned, ids, "v{version}: topics learned");
            assert_eq!(out.unmapped, vec![70], "v{version}");
            let mut trailing = BytesMut::from(&payload[..]);
            trailing.extend_from_slice(b"junk");
            let out = rewrite_brokers(ApiKey::Metadata, version, trailing.freeze(), &map)
                .expect("rewrite with trailing bytes");
            assert_eq!(
                out.frame(),
                rewritten_by_decoding(version, payload),
                "v{version}"
            );
        }
    }

    #[test]
    fn metadata_golden_bytes_v1() {
        let out = rewrite_brokers(ApiKey::Metadata, 1, metadata(1), &map).expect("rewrite");
        // correlation 5 | brokers: 2 x (node, "gw.example", port, rack null) | controller 1 | topics 0
        let mut want = Vec::new();
        want.extend_from_slice(&5i32.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        for (id, port) in [(1i32, 9101i32), (2, 9102)] {
            want.extend_from_slice(&id.to_be_bytes());
            want.extend_from_slice(&10i16.to_be_bytes());
            want.extend_from_slice(b"gw.example");
            want.extend_from_slice(&port.to_be_bytes());
            want.extend_from_slice(&(-1i16).to_be_bytes());
        }
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&0i32.to_be_bytes());
        let frame = out.frame();
        assert_eq!(&frame[LEN_PREFIX..], &want[..]);
        assert_eq!(&frame[..LEN_PREFIX], &(want.len() as i32).to_be_bytes());
    }

    #[test]
    fn find_coordinator_old_and_new_versions() {
        let v = ApiKey::FindCoordinator.valid_versions();
        for version in v.min..=v.max {
            let mut resp = FindCoordinatorResponse::default();
            if version < 4 {
                resp.node_id = BrokerId(3);
                resp.host = StrBytes::from_static_str("b3.internal");
                resp.port = 9092;
            } else {
                for (key, id) in [("g1", 3), ("g2", 99), ("g3", -1)] {
                    let mut c = Coordinator::default();
                    c.key = StrBytes::from_static_str(key);
                    c.node_id = BrokerId(id);
                    c.host = StrBytes::from_static_str("bx.internal");
                    c.port = 9092;
                    if id < 0 {
                        c.error_code = 15;
                    }
                    resp.coordinators.push(c);
                }
            }
            let payload =
                encode_response(ApiKey::FindCoordinator, version, &response_header(1), &resp)
                    .expect("encode")
                    .slice(LEN_PREFIX..);
            let out =
                rewrite_brokers(ApiKey::FindCoordinator, version, payload, &map).expect("rewrite");
            let got: FindCoordinatorResponse =
                decode_frame(ApiKey::FindCoordinator, version, &out.frame());
            if version < 4 {
                assert_eq!(
                    (got.node_id.0, got.host.to_string(), got.port),
                    (3, "gw.example".into(), 9103)
                );
            } else {
                let c = &got.coordinators;
                assert_eq!(
                    (c[0].host.to_string(), c[0].port),
                    ("gw.example".into(), 9103)
                );
                assert_eq!(
                    (c[1].node_id.0, c[1].error_code, c[1].port),
                    (-1, 15, -1),
                    "unmapped node 99"
                );
                assert_eq!(
                    c[2].host.to_string(),
                    "bx.internal",
                    "errors pass unchanged"
                );
                assert_eq!(out.unmapped, vec![99]);
            }
        }
    }

    #[test]
    fn describe_cluster_v0() {
        let mut resp = DescribeClusterResponse::default();
        let mut b = DescribeClusterBroker::default();
        b.broker_id = BrokerId(0);
        b.host = StrBytes::from_static_str("b0.internal");
        b.port = 9092;
        resp.brokers.push(b);
        let payload = encode_response(ApiKey::DescribeCluster, 0, &response_header(9), &resp)
            .expect("encode")
            .slice(LEN_PREFIX..);
        let out = rewrite_brokers(ApiKey::DescribeCluster, 0, payload, &map).expect("rewrite");
        let got: DescribeClusterResponse = decode_frame(ApiKey::DescribeCluster, 0, &out.frame());
        assert_eq!(
            (got.brokers[0].host.to_string(), got.brokers[0].port),
            ("gw.example".into(), 9100)
        );
    }

    #[test]
    fn truncated_upstream_responses_are_errors_not_panics() {
        let payload = metadata(12);
        for cut in 0..payload.len() {
            let _ = rewrite_brokers(ApiKey::Metadata, 12, payload.slice(..cut), &map);
        }
    }
}
