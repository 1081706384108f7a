//! Kafka's `AbstractRequest.getErrorResponse`: the answer a broker gives a request it refuses as a
//! whole with one error code (for the gateway: ILLEGAL_SASL_STATE for a request sent in the middle
//! of a SASL exchange), built from the decoded request without I/O.
//!
//! Covered are the requests a client sends first on a connection (Metadata, FindCoordinator,
//! Produce, Fetch, ListOffsets, the group and producer-id APIs). For any other API [`build`] gives
//! `None` and the caller closes the connection without an answer, which clients treat as a broken
//! connection just the same.

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchResponse, FindCoordinatorResponse, HeartbeatResponse,
    InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse, ListGroupsResponse,
    ListOffsetsResponse, MetadataResponse, ProduceResponse, ProducerId, RequestKind,
    SyncGroupResponse,
};

use kafka_protocol::protocol::Encodable;

use super::codec::{encode_response, response_header, ProtocolError};

/// The whole-request error answer to `body` with `code`, encoded with `correlation_id`; `None`
/// for an API this module does not cover.
pub fn build(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &RequestKind,
    code: i16,
) -> Result<Option<bytes::Bytes>, ProtocolError> {
    let header = response_header(correlation_id);
    match body {
        RequestKind::Metadata(req) => {
            let topics = req
                .topics
                .iter()
                .flatten()
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_topic_id(t.topic_id)
                        .with_error_code(code)
                        .with_is_internal(false)
                })
                .collect();
            answer(
                api,
                version,
                &header,
                &MetadataResponse::default().with_topics(topics),
            )
        }
        RequestKind::FindCoordinator(req) => {
            let mut resp = FindCoordinatorResponse::default();
            if version < 4 {
                resp.error_code = code;
                resp.node_id = BrokerId(-1);
                resp.port = -1;
            } else {
                resp.coordinators = req
                    .coordinator_keys
                    .iter()
                    .map(|k| {
                        Coordinator::default()
                            .with_key(k.clone())
                            .with_node_id(BrokerId(-1))
                            .with_port(-1)
                            .with_error_code(code)
                    })
                    .collect();
            }
            answer(api, version, &header, &resp)
        }
        RequestKind::Produce(req) => {
            let responses = req
                .topic_data
                .iter()
                .map(|t| {
                    TopicProduceResponse::default()
                        .with_name(t.name.clone())
                        .with_topic_id(t.topic_id)
                        .with_partition_responses(
                            t.partition_data
                                .iter()
                                .map(|p| {
                                    PartitionProduceResponse::default()
                                        .with_index(p.index)
                                        .with_error_code(code)
                                        .with_base_offset(-1)
                                        .with_log_append_time_ms(-1)
                                        .with_log_start_offset(-1)
                                })
                                .collect(),
                        )
                })
                .collect();
            answer(
                api,
                version,
                &header,
                &ProduceResponse::default().with_responses(responses),
            )
        }
        RequestKind::Fetch(req) => {
            // FetchRequest.getErrorResponse: the top-level error (v7+) and every partition's.
            let responses = req
                .topics
                .iter()
                .map(|t| {
                    FetchableTopicResponse::default()
                        .with_topic(t.topic.clone())
                        .with_topic_id(t.topic_id)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    PartitionData::default()
                                        .with_partition_index(p.partition)
                                        .with_error_code(code)
                                        .with_high_watermark(-1)
                                        .with_last_stable_offset(-1)
                                        .with_log_start_offset(-1)
                                })
                                .collect(),
                        )
                })
                .collect();
            let mut resp = FetchResponse::default().with_responses(responses);
            if version >= 7 {
                resp.error_code = code;
            }
            answer(api, version, &header, &resp)
        }
        RequestKind::ListOffsets(req) => {
            let topics = req
                .topics
                .iter()
                .map(|t| {
                    ListOffsetsTopicResponse::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code)
                                        .with_timestamp(-1)
                                        .with_offset(-1)
                                })
                                .collect(),
                        )
                })
                .collect();
            answer(
                api,
                version,
                &header,
                &ListOffsetsResponse::default().with_topics(topics),
            )
        }
        RequestKind::JoinGroup(_) => answer(
            api,
            version,
            &header,
            &JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1),
        ),
        RequestKind::SyncGroup(_) => answer(
            api,
            version,
            &header,
            &SyncGroupResponse::default().with_error_code(code),
        ),
        RequestKind::Heartbeat(_) => answer(
            api,
            version,
            &header,
            &HeartbeatResponse::default().with_error_code(code),
        ),
        RequestKind::LeaveGroup(_) => answer(
            api,
            version,
            &header,
            &LeaveGroupResponse::default().with_error_code(code),
        ),
        RequestKind::ListGroups(_) => answer(
            api,
            version,
            &header,
            &ListGroupsResponse::default().with_error_code(code),
        ),
        RequestKind::InitProducerId(_) => answer(
            api,
            version,
            &header,
            &InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        _ => Ok(None),
    }
}

fn answer<T: Encodable>(
    api: ApiKey,
    version: i16,
    header: &kafka_protocol::messages::ResponseHeader,
    body: &T,
) -> Result<Option<bytes::Bytes>, ProtocolError> {
    encode_response(api, version, header, body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::split_response;
    use crate::protocol::frame::LEN_PREFIX;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, TopicName};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    #[test]
    fn metadata_names_every_requested_topic_with_the_error() {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("t"))))]));
        let frame = build(ApiKey::Metadata, 12, 7, &RequestKind::Metadata(req), 34)
            .expect("encode")
            .expect("covered");
        let (h, mut body) =
            split_response(ApiKey::Metadata, 12, frame.slice(LEN_PREFIX..)).expect("split");
        assert_eq!(h.correlation_id, 7);
        let resp = MetadataResponse::decode(&mut body, 12).expect("decode");
        assert_eq!(resp.topics.len(), 1);
        assert_eq!(resp.topics[0].error_code, 34);
        assert!(resp.brokers.is_empty());
    }

    #[test]
    fn uncovered_apis_have_no_answer() {
        let body = RequestKind::DescribeAcls(Default::default());
        assert!(build(ApiKey::DescribeAcls, 3, 1, &body, 34)
            .expect("no encode")
            .is_none());
    }
}
