//! ListOffsets, OffsetForLeaderEpoch and DeleteRecords: one topic permission each, 29 on every
//! partition of a denied topic.
//!
//! - ListOffsets (handleListOffsetRequestV1AndAbove): DESCRIBE; offset and timestamp -1. Kafka makes
//!   no CLUSTER_ACTION check for a replica id >= 0 here (the broker only uses it to pick the
//!   isolation level), and neither does the gateway.
//! - OffsetForLeaderEpoch: CLUSTER_ACTION on the cluster allows every topic (the follower path),
//!   else DESCRIBE per topic (KIP-320); leader epoch and end offset -1.
//! - DeleteRecords: DELETE; low watermark -1.

use kafka_protocol::messages::delete_records_request::DeleteRecordsTopic;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_request::ListOffsetsTopic;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderTopic;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::Encodable;

use super::{cluster_allowed, code, topic_allowed, Decoded};
use crate::policy::mapping::list_api::{self, by_name, list_api, Key, RequestList, Then, Verdict};
use crate::policy::mapping::{Authorize, Plan};
use crate::policy::Operation;
use crate::protocol::codec::ProtocolError;
use crate::protocol::list::NestedAnswer;

list_api!(ListOffsetsTopics: ListOffsets,
    ListOffsetsResponse[topics] => ListOffsetsTopicResponse, |_, a| by_name(&a.name);
    ListOffsetsRequest[topics] => ListOffsetsTopic, |_, t| Key::Name(t.name.0.clone()));
list_api!(EpochTopics: OffsetForLeaderEpoch,
    OffsetForLeaderEpochResponse[topics] => OffsetForLeaderTopicResult, |_, a| by_name(&a.topic);
    OffsetForLeaderEpochRequest[topics] => OffsetForLeaderTopic, |_, t| Key::Name(t.topic.0.clone()));
list_api!(DeleteRecordsTopics: DeleteRecords,
    DeleteRecordsResponse[topics] => DeleteRecordsTopicResult, |_, a| by_name(&a.name);
    DeleteRecordsRequest[topics] => DeleteRecordsTopic, |_, t| Key::Name(t.name.0.clone()));

pub(in crate::policy::mapping) fn list_offsets(
    version: i16,
    header: &RequestHeader,
    req: &ListOffsetsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let partition = ListOffsetsPartitionResponse::default()
        .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
        .with_timestamp(-1)
        .with_offset(-1);
    per_topic::<ListOffsetsTopics, _>(
        (version, header, req),
        |n| topic_allowed(authz, Operation::Describe, n),
        |t| {
            (
                &t.name,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        },
        (partition, |p, i| p.partition_index = i),
        |n| ListOffsetsTopicResponse::default().with_name(n),
        |t, v| t.partitions = v,
    )
}

pub(in crate::policy::mapping) fn offset_for_leader_epoch(
    version: i16,
    header: &RequestHeader,
    req: &OffsetForLeaderEpochRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    // Kafka asks CLUSTER_ACTION first; asking it only when a topic fails gives the same answer
    // with one check fewer for consumers.
    let cluster = std::cell::OnceCell::new();
    let allowed = |n: &str| {
        topic_allowed(authz, Operation::Describe, n)
            || *cluster.get_or_init(|| cluster_allowed(authz, Operation::ClusterAction))
    };
    let partition = EpochEndOffset::default()
        .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
        .with_leader_epoch(-1)
        .with_end_offset(-1);
    per_topic::<EpochTopics, _>(
        (version, header, req),
        allowed,
        |t| (&t.topic, t.partitions.iter().map(|p| p.partition).collect()),
        (partition, |p, i| p.partition = i),
        |n| OffsetForLeaderTopicResult::default().with_topic(n),
        |t, v| t.partitions = v,
    )
}

pub(in crate::policy::mapping) fn delete_records(
    version: i16,
    header: &RequestHeader,
    req: &DeleteRecordsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let partition = DeleteRecordsPartitionResult::default()
        .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
        .with_low_watermark(-1);
    per_topic::<DeleteRecordsTopics, _>(
        (version, header, req),
        |n| topic_allowed(authz, Operation::Delete, n),
        |t| {
            (
                &t.name,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        },
        (partition, |p, i| p.partition_index = i),
        |n| DeleteRecordsTopicResult::default().with_name(n),
        |t, v| t.partitions = v,
    )
}

/// A topic list whose denied topics are answered 29 on each of their partitions: `topic` names
/// an entry and its partition indexes; a denied one's answer is `answer(name)` with the partitions
/// `put` sets, each `partition` (its index set by `set_index`), from one encoded partition.
fn per_topic<L, P>(
    (version, header, req): (i16, &RequestHeader, &L::Request),
    allowed: impl Fn(&str) -> bool,
    topic: impl Fn(&L::Entry) -> (&TopicName, Vec<i32>),
    (partition, set_index): (P, fn(&mut P, i32)),
    answer: impl Fn(TopicName) -> L::Answer,
    put: impl Fn(&mut L::Answer, Vec<P>) + Copy,
) -> Result<Plan, ProtocolError>
where
    L: RequestList,
    L::Answer: Clone,
    P: Encodable + Clone + Default,
{
    let nested = NestedAnswer::new(L::API, version, &partition, set_index)?;
    let write = |out: &mut bytes::BytesMut, t: &&L::Entry, _code: i16| {
        let (name, indexes) = topic(t);
        nested.write(out, &answer(name.clone()), put, indexes.into_iter())
    };
    list_api::plan::<L, _>(
        header,
        Decoded::<L> {
            version,
            header,
            request: req,
        },
        |t| match allowed(topic(t).0) {
            true => Verdict::Forward,
            false => Verdict::Answer(code::TOPIC_AUTHORIZATION_FAILED),
        },
        &write,
        Then::default(),
    )
}
