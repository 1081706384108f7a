//! Broker address rewriting: every response that names brokers is made to name gateway ports instead.
//!
//! Pure functions over bytes. The mapping from node id to the advertised gateway address is passed in,
//! and the upstream addresses seen in the response are handed back so the caller can learn the cluster.

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, DescribeClusterResponse, FindCoordinatorResponse, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::codec::{decode_body, encode_response, split_response, ProtocolError};

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
    /// The new response frame, length prefix included.
    pub frame: Bytes,
    /// Brokers the upstream named, with their real addresses.
    pub seen: Vec<UpstreamBroker>,
    /// Node ids that could not be given a gateway address (outside the port range).
    pub unmapped: Vec<i32>,
    /// Topic names and ids a Metadata response carried (ids are nil before v10).
    pub topics: Vec<(String, uuid::Uuid)>,
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
    let (header, body) = split_response(api, version, payload)?;
    let mut seen = Vec::new();
    let mut unmapped = Vec::new();
    let mut topics = Vec::new();
    let frame = match api {
        ApiKey::Metadata => {
            let mut resp: MetadataResponse = decode_body(api, version, body)?;
            topics = resp
                .topics
                .iter()
                .filter(|t| t.error_code == 0)
                .filter_map(|t| Some((t.name.as_ref()?.to_string(), t.topic_id)))
                .collect();
            resp.brokers.retain_mut(|b| {
                seen.push(UpstreamBroker {
                    node_id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                });
                match map.advertise(b.node_id.0) {
                    Some((host, port)) => {
                        b.host = StrBytes::from_string(host);
                        b.port = i32::from(port);
                        true
                    }
                    None => {
                        // Advertising the upstream's own address would let clients bypass the gateway.
                        unmapped.push(b.node_id.0);
                        false
                    }
                }
            });
            encode_response(api, version, &header, &resp)?
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
            encode_response(api, version, &header, &resp)?
        }
        ApiKey::DescribeCluster => {
            let mut resp: DescribeClusterResponse = decode_body(api, version, body)?;
            resp.brokers.retain_mut(|b| {
                seen.push(UpstreamBroker {
                    node_id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                });
                match map.advertise(b.broker_id.0) {
                    Some((host, port)) => {
                        b.host = StrBytes::from_string(host);
                        b.port = i32::from(port);
                        true
                    }
                    None => {
                        unmapped.push(b.broker_id.0);
                        false
                    }
                }
            });
            encode_response(api, version, &header, &resp)?
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
    Ok(Rewritten {
        frame,
        seen,
        unmapped,
        topics,
    })
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
    use kafka_protocol::messages::BrokerId;
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
            let resp: MetadataResponse = decode_frame(ApiKey::Metadata, version, &out.frame);
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
        assert_eq!(&out.frame[LEN_PREFIX..], &want[..]);
        assert_eq!(&out.frame[..LEN_PREFIX], &(want.len() as i32).to_be_bytes());
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
                decode_frame(ApiKey::FindCoordinator, version, &out.frame);
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
        let got: DescribeClusterResponse = decode_frame(ApiKey::DescribeCluster, 0, &out.frame);
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
