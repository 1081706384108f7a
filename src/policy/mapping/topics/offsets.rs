//! ListOffsets, OffsetForLeaderEpoch and DeleteRecords: one topic permission each, 29 on every
//! partition of a denied topic.
//!
//! - ListOffsets (handleListOffsetRequestV1AndAbove): DESCRIBE; offset and timestamp -1. Kafka makes
//!   no CLUSTER_ACTION check for a replica id >= 0 here (the broker only uses it to pick the
//!   isolation level), and neither does the gateway.
//! - OffsetForLeaderEpoch: CLUSTER_ACTION on the cluster allows every topic (the follower path),
//!   else DESCRIBE per topic (KIP-320); leader epoch and end offset -1.
//! - DeleteRecords: DELETE; low watermark -1.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ApiKey, DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, RequestHeader,
};

use super::{
    check_by_name, cluster_allowed, code, encode_request_with_header, respond, topic_allowed,
    Checked, Key, Keyed, Merge, Splice,
};
use crate::policy::mapping::{Authorize, Plan};
use crate::policy::Operation;
use crate::protocol::codec::ProtocolError;

impl Keyed for ListOffsetsTopicResponse {
    fn keys(&self, _version: i16) -> [Option<Key>; 2] {
        [Some(Key::Name(self.name.0.clone())), None]
    }
}

impl Keyed for OffsetForLeaderTopicResult {
    fn keys(&self, _version: i16) -> [Option<Key>; 2] {
        [Some(Key::Name(self.topic.0.clone())), None]
    }
}

impl Keyed for DeleteRecordsTopicResult {
    fn keys(&self, _version: i16) -> [Option<Key>; 2] {
        [Some(Key::Name(self.name.0.clone())), None]
    }
}

pub(super) fn list_offsets(
    version: i16,
    header: &RequestHeader,
    req: &ListOffsetsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let checked = check_by_name(
        &req.topics,
        |t| &t.name.0,
        |n| topic_allowed(authz, Operation::Describe, n),
        |t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
                        .with_timestamp(-1)
                        .with_offset(-1)
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        },
    );
    match checked {
        Checked::AllAllowed => Ok(Plan::Forward),
        Checked::AllDenied(topics) => respond(
            ApiKey::ListOffsets,
            version,
            header,
            &ListOffsetsResponse::default().with_topics(topics),
        ),
        Checked::Partial(slots) => {
            let mut forwarded = req.clone();
            forwarded
                .topics
                .retain(|t| topic_allowed(authz, Operation::Describe, &t.name));
            Ok(Plan::ForwardPartial {
                request: encode_request_with_header(
                    ApiKey::ListOffsets,
                    version,
                    header,
                    &forwarded,
                )?,
                merge: super::super::Merge::Topics(Merge::ListOffsets(Splice { version, slots })),
            })
        }
    }
}

pub(super) fn offset_for_leader_epoch(
    version: i16,
    header: &RequestHeader,
    req: &OffsetForLeaderEpochRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    // Kafka asks CLUSTER_ACTION first; asking it only when a topic fails gives the same answer
    // with one check fewer for consumers.
    let checked = check_by_name(
        &req.topics,
        |t| &t.topic.0,
        |n| topic_allowed(authz, Operation::Describe, n),
        |t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        },
    );
    if matches!(checked, Checked::AllAllowed) || cluster_allowed(authz, Operation::ClusterAction) {
        return Ok(Plan::Forward);
    }
    match checked {
        Checked::AllAllowed => Ok(Plan::Forward),
        Checked::AllDenied(topics) => respond(
            ApiKey::OffsetForLeaderEpoch,
            version,
            header,
            &OffsetForLeaderEpochResponse::default().with_topics(topics),
        ),
        Checked::Partial(slots) => {
            let mut forwarded = req.clone();
            forwarded
                .topics
                .retain(|t| topic_allowed(authz, Operation::Describe, &t.topic));
            Ok(Plan::ForwardPartial {
                request: encode_request_with_header(
                    ApiKey::OffsetForLeaderEpoch,
                    version,
                    header,
                    &forwarded,
                )?,
                merge: super::super::Merge::Topics(Merge::OffsetForLeaderEpoch(Splice {
                    version,
                    slots,
                })),
            })
        }
    }
}

pub(super) fn delete_records(
    version: i16,
    header: &RequestHeader,
    req: &DeleteRecordsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let checked = check_by_name(
        &req.topics,
        |t| &t.name.0,
        |n| topic_allowed(authz, Operation::Delete, n),
        |t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
                        .with_low_watermark(-1)
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        },
    );
    match checked {
        Checked::AllAllowed => Ok(Plan::Forward),
        Checked::AllDenied(topics) => respond(
            ApiKey::DeleteRecords,
            version,
            header,
            &DeleteRecordsResponse::default().with_topics(topics),
        ),
        Checked::Partial(slots) => {
            let mut forwarded = req.clone();
            forwarded
                .topics
                .retain(|t| topic_allowed(authz, Operation::Delete, &t.name));
            Ok(Plan::ForwardPartial {
                request: encode_request_with_header(
                    ApiKey::DeleteRecords,
                    version,
                    header,
                    &forwarded,
                )?,
                merge: super::super::Merge::Topics(Merge::DeleteRecords(Splice { version, slots })),
            })
        }
    }
}
