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
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, RequestHeader, TopicName,
};

use super::{cluster_allowed, code, forward_kept, plan_entries, topic_allowed, Key, Keyed, Merge};
use crate::policy::mapping::{Authorize, Plan};
use crate::policy::Operation;
use crate::protocol::codec::ProtocolError;
use crate::protocol::list::NestedAnswer;

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
    const API: ApiKey = ApiKey::ListOffsets;
    let codes = denied_topics(
        &req.topics,
        |t| &t.name,
        |n| topic_allowed(authz, Operation::Describe, n),
    );
    if codes.iter().all(Option::is_none) {
        return Ok(Plan::Forward);
    }
    let partition = NestedAnswer::new(
        API,
        version,
        &ListOffsetsPartitionResponse::default()
            .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
            .with_timestamp(-1)
            .with_offset(-1),
        |p, i| p.partition_index = i,
    )?;
    plan_entries(
        API,
        version,
        header,
        &req.topics,
        &codes,
        |t| Key::Name(t.name.0.clone()),
        |out, t, _| {
            let topic = ListOffsetsTopicResponse::default().with_name(t.name.clone());
            let partitions = t.partitions.iter().map(|p| p.partition_index);
            partition.write(out, &topic, |t, v| t.partitions = v, partitions)
        },
        (&ListOffsetsResponse::default(), |r, v| r.topics = v),
        || forward_kept(API, version, header, req, |r| &mut r.topics, &codes),
        Merge::ListOffsets,
    )
}

pub(super) fn offset_for_leader_epoch(
    version: i16,
    header: &RequestHeader,
    req: &OffsetForLeaderEpochRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::OffsetForLeaderEpoch;
    // Kafka asks CLUSTER_ACTION first; asking it only when a topic fails gives the same answer
    // with one check fewer for consumers.
    let codes = denied_topics(
        &req.topics,
        |t| &t.topic,
        |n| topic_allowed(authz, Operation::Describe, n),
    );
    if codes.iter().all(Option::is_none) || cluster_allowed(authz, Operation::ClusterAction) {
        return Ok(Plan::Forward);
    }
    let partition = NestedAnswer::new(
        API,
        version,
        &EpochEndOffset::default()
            .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
            .with_leader_epoch(-1)
            .with_end_offset(-1),
        |p, i| p.partition = i,
    )?;
    plan_entries(
        API,
        version,
        header,
        &req.topics,
        &codes,
        |t| Key::Name(t.topic.0.clone()),
        |out, t, _| {
            let topic = OffsetForLeaderTopicResult::default().with_topic(t.topic.clone());
            let partitions = t.partitions.iter().map(|p| p.partition);
            partition.write(out, &topic, |t, v| t.partitions = v, partitions)
        },
        (&OffsetForLeaderEpochResponse::default(), |r, v| {
            r.topics = v
        }),
        || forward_kept(API, version, header, req, |r| &mut r.topics, &codes),
        Merge::OffsetForLeaderEpoch,
    )
}

pub(super) fn delete_records(
    version: i16,
    header: &RequestHeader,
    req: &DeleteRecordsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::DeleteRecords;
    let codes = denied_topics(
        &req.topics,
        |t| &t.name,
        |n| topic_allowed(authz, Operation::Delete, n),
    );
    if codes.iter().all(Option::is_none) {
        return Ok(Plan::Forward);
    }
    let partition = NestedAnswer::new(
        API,
        version,
        &DeleteRecordsPartitionResult::default()
            .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
            .with_low_watermark(-1),
        |p, i| p.partition_index = i,
    )?;
    plan_entries(
        API,
        version,
        header,
        &req.topics,
        &codes,
        |t| Key::Name(t.name.0.clone()),
        |out, t, _| {
            let topic = DeleteRecordsTopicResult::default().with_name(t.name.clone());
            let partitions = t.partitions.iter().map(|p| p.partition_index);
            partition.write(out, &topic, |t, v| t.partitions = v, partitions)
        },
        (&DeleteRecordsResponse::default(), |r, v| r.topics = v),
        || forward_kept(API, version, header, req, |r| &mut r.topics, &codes),
        Merge::DeleteRecords,
    )
}

/// Each topic's error: 29 when `allowed` refuses its name, `None` (forwarded) otherwise.
fn denied_topics<E>(
    topics: &[E],
    name: impl Fn(&E) -> &TopicName,
    allowed: impl Fn(&str) -> bool,
) -> Vec<Option<i16>> {
    topics
        .iter()
        .map(|t| (!allowed(name(t))).then_some(code::TOPIC_AUTHORIZATION_FAILED))
        .collect()
}
