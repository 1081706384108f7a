//! OffsetCommit, OffsetFetch, OffsetDelete, TxnOffsetCommit and the share-group offset admin APIs
//! (DescribeShareGroupOffsets, AlterShareGroupOffsets, DeleteShareGroupOffsets): a group check
//! first (the whole request fails with 30, or 53 for a transactional id), then a topic check per
//! topic.
//!
//! A request whose every named topic is denied is answered by the gateway and never forwarded with
//! an empty topic list: Kafka reads an empty list as "no topics", but an older or non-Kafka
//! upstream could read it as "all", which would leak or delete other topics' offsets.

use std::collections::HashMap;

use kafka_protocol::messages::alter_share_group_offsets_request::AlterShareGroupOffsetsRequestTopic;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::describe_share_group_offsets_request::{
    DescribeShareGroupOffsetsRequestGroup, DescribeShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_request::OffsetDeleteRequestTopic;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, ApiKey,
    DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse,
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, RequestHeader, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::code::{
    GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use super::{group_allowed, message, topic_allowed};
use crate::policy::mapping::list_api::{
    self, answer_with, by_name, list_api, plan_each, single, Decoded, Key, ListMerge, RequestList,
    ResponseList, Splicing, Then, Verdict,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::Operation;
use crate::protocol::codec::ProtocolError;
use crate::protocol::list::Answers;

/// Kafka's `OffsetFetchResponse.INVALID_OFFSET`.
const INVALID_OFFSET: i64 = -1;
/// Kafka's `RecordBatch.NO_PARTITION_LEADER_EPOCH`.
const NO_LEADER_EPOCH: i32 = -1;

list_api!(CommitTopics: OffsetCommit,
    OffsetCommitResponse[topics] => OffsetCommitResponseTopic, |_, a| by_name(&a.name);
    OffsetCommitRequest[topics] => OffsetCommitRequestTopic, |_, t| Key::Name(t.name.0.clone()));
list_api!(OffsetDeleteTopics: OffsetDelete,
    OffsetDeleteResponse[topics] => OffsetDeleteResponseTopic, |_, a| by_name(&a.name);
    OffsetDeleteRequest[topics] => OffsetDeleteRequestTopic, |_, t| Key::Name(t.name.0.clone()));
list_api!(TxnCommitTopics: TxnOffsetCommit,
    TxnOffsetCommitResponse[topics] => TxnOffsetCommitResponseTopic, |_, a| by_name(&a.name);
    TxnOffsetCommitRequest[topics] => TxnOffsetCommitRequestTopic, |_, t| Key::Name(t.name.0.clone()));
list_api!(FetchTopics: OffsetFetch,
    OffsetFetchResponse[topics] => OffsetFetchResponseTopic, |_, a| by_name(&a.name));
list_api!(FetchGroups: OffsetFetch,
    OffsetFetchResponse[groups] => OffsetFetchResponseGroup, |_, a| by_name(&a.group_id);
    OffsetFetchRequest[groups] => OffsetFetchRequestGroup, |_, g| Key::Name(g.group_id.0.clone()));
list_api!(GroupTopics: OffsetFetch,
    OffsetFetchResponseGroup[topics] => OffsetFetchResponseTopics, |_, a| by_name(&a.name));

/// OffsetFetch v1-7 names its topics in a nullable list (null: every topic).
impl RequestList for FetchTopics {
    type Request = OffsetFetchRequest;
    type Entry = OffsetFetchRequestTopic;
    fn entries(r: &OffsetFetchRequest) -> &[OffsetFetchRequestTopic] {
        r.topics.as_deref().unwrap_or_default()
    }
    fn entries_mut(r: &mut OffsetFetchRequest) -> &mut Vec<OffsetFetchRequestTopic> {
        r.topics.get_or_insert_with(Vec::new)
    }
    fn key(_: i16, t: &OffsetFetchRequestTopic) -> Key {
        Key::Name(t.name.0.clone())
    }
}

/// Each partition of a topic answered `error`, as `partition(index, error)` builds it.
fn partitions<P>(
    indexes: impl Iterator<Item = i32>,
    error: i16,
    partition: fn(i32, i16) -> P,
) -> Vec<P> {
    indexes.map(|i| partition(i, error)).collect()
}

/// A list of topics each needing READ, whose denied topic is answered as one declaration says.
trait ReadTopics: RequestList {
    fn name(t: &Self::Entry) -> &str;
    /// The answer for a denied topic (`ids` when the answer names its id).
    fn denied(t: &Self::Entry, code: i16, ids: Option<&dyn TopicIds>) -> Self::Answer;
}

/// Declares [`ReadTopics`] for lists: the topic's name, its answer, and, when the answer lists
/// partitions, their indexes and type, each answered `code` (plus any further fields).
macro_rules! read_topics {
    ($($list:ty: |$t:ident, $code:ident, $ids:ident| $name:expr, $topic:expr
        $(, $parts:expr => $part:ident $(.$field:ident($value:expr))*)?;)*) => {$(
        impl ReadTopics for $list {
            fn name($t: &Self::Entry) -> &str { $name }
            fn denied($t: &Self::Entry, $code: i16, $ids: Option<&dyn TopicIds>) -> Self::Answer {
                let _ = $ids;
                $topic$(.with_partitions($parts.map(|i| $part::default()
                    .with_partition_index(i).with_error_code($code)$(.$field($value))*).collect()))?
            }
        }
    )*};
}

read_topics! {
    CommitTopics: |t, code, ids| &t.name,
        OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_topic_id(t.topic_id),
        t.partitions.iter().map(|p| p.partition_index) => OffsetCommitResponsePartition;
    TxnCommitTopics: |t, code, ids| &t.name,
        TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()),
        t.partitions.iter().map(|p| p.partition_index) => TxnOffsetCommitResponsePartition;
    OffsetDeleteTopics: |t, code, ids| &t.name,
        OffsetDeleteResponseTopic::default().with_name(t.name.clone()),
        t.partitions.iter().map(|p| p.partition_index) => OffsetDeleteResponsePartition;
    // Kafka names a denied topic by its id here (nil when unknown), each partition with a message.
    ShareAlterTopics: |t, code, ids| &t.topic_name,
        AlterShareGroupOffsetsResponseTopic::default().with_topic_name(t.topic_name.clone())
            .with_topic_id(ids.and_then(|ids| ids.id_of(&t.topic_name)).unwrap_or_default()),
        t.partitions.iter().map(|p| p.partition_index) => AlterShareGroupOffsetsResponsePartition
            .with_error_message(topic_denied_message());
    ShareDeleteTopics: |t, code, ids| &t.topic_name,
        DeleteShareGroupOffsetsResponseTopic::default().with_topic_name(t.topic_name.clone())
            .with_error_code(code).with_error_message(topic_denied_message());
}

/// READ on each topic of `source`, else 29 on it; `whole`, when set, answers every topic.
fn read_each<L: ReadTopics>(
    source: Decoded<'_, L>,
    whole: Option<i16>,
    authz: &dyn Authorize,
    ids: Option<&dyn TopicIds>,
    then: Then<L>,
) -> Result<Plan, ProtocolError> {
    let answer = answer_with(L::API, source.version, |t: &&L::Entry, code| {
        L::denied(t, code, ids)
    });
    let allowed = |t: &L::Entry| topic_allowed(authz, Operation::Read, L::name(t));
    plan_each(
        source,
        whole,
        (allowed, TOPIC_AUTHORIZATION_FAILED),
        &answer,
        then,
    )
}

/// KafkaApis.handleOffsetCommitRequest: READ on the group, else 30 on every partition; READ on each
/// topic, else 29 on its partitions.
pub(in crate::policy::mapping) fn offset_commit(
    version: i16,
    header: &RequestHeader,
    req: &OffsetCommitRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let whole = (!group_allowed(authz, Operation::Read, &req.group_id))
        .then_some(GROUP_AUTHORIZATION_FAILED);
    let source = Decoded::<CommitTopics>::new(version, header, req);
    read_each(source, whole, authz, None, Then::default())
}

/// KafkaApis.handleTxnOffsetCommitRequest: WRITE on the transactional id (53) then READ on the group
/// (30), each on every partition; READ on each topic, else 29 on its partitions.
pub(in crate::policy::mapping) fn txn_offset_commit(
    version: i16,
    header: &RequestHeader,
    req: &TxnOffsetCommitRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let whole = if !authz.allowed(
        Operation::Write,
        crate::policy::ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        Some(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else {
        (!group_allowed(authz, Operation::Read, &req.group_id))
            .then_some(GROUP_AUTHORIZATION_FAILED)
    };
    let source = Decoded::<TxnCommitTopics>::new(version, header, req);
    read_each(source, whole, authz, None, Then::default())
}

/// KafkaApis.handleOffsetDeleteRequest: DELETE on the group, else a top-level 30 and no topics;
/// READ on each topic, else 29 on its partitions. (Kafka checks no group READ here.) The group
/// coordinator is asked even when no topic is left, as Kafka does: its group-level error
/// (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, ...) replaces the topic errors in the answer
/// (OffsetDeleteResponse.Builder.merge).
pub(in crate::policy::mapping) fn offset_delete(
    version: i16,
    header: &RequestHeader,
    req: &OffsetDeleteRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let source = Decoded::<OffsetDeleteTopics>::new(version, header, req);
    group_then_topics(source, (&req.group_id, Operation::Delete), authz, None)
}

/// An answer the coordinator gave with a top-level error goes as it is: Kafka adds its topic
/// errors only to an answer without one.
fn upstream_error_wins<R: HasErrorCode>(
    r: &mut R,
    _: &dyn Authorize,
    _: &dyn crate::policy::mapping::TopicIds,
) -> Result<Splicing, ProtocolError> {
    Ok(match r.error_code() {
        0 => Splicing::Answers,
        _ => Splicing::UpstreamOnly,
    })
}

/// A response (or a batched OffsetFetch group) with a top-level error code.
trait HasErrorCode {
    fn error_code(&self) -> i16;
}

macro_rules! has_error_code {
    ($($t:ty),*) => {$(
        impl HasErrorCode for $t {
            fn error_code(&self) -> i16 {
                self.error_code
            }
        }
    )*};
}
has_error_code!(
    OffsetDeleteResponse,
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    AlterShareGroupOffsetsResponse,
    DeleteShareGroupOffsetsResponse,
    DescribeShareGroupOffsetsResponseGroup
);

/// Keeps the topics the session may DESCRIBE, for a request that asked for every topic.
fn describable_only<L: ResponseList>(
    name: fn(&L::Answer) -> &str,
) -> impl FnOnce(
    &mut L::Response,
    &dyn Authorize,
    &dyn crate::policy::mapping::TopicIds,
) -> Result<Splicing, ProtocolError>
       + Send
       + 'static {
    move |r, authz, _| {
        L::answers(r).retain(|t| topic_allowed(authz, Operation::Describe, name(t)));
        Ok(Splicing::Answers)
    }
}

/// KafkaApis.handleOffsetFetchRequest: DESCRIBE on each group, else 30 (v1: on every partition,
/// v2-7: top-level error and no topics, v8+: the group's error); DESCRIBE on each named topic,
/// else 29 with committed offset -1. All topics (null) → the answer keeps the DESCRIBE-able topics.
pub(in crate::policy::mapping) fn offset_fetch(
    version: i16,
    header: &RequestHeader,
    req: &OffsetFetchRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    if version >= 8 {
        return offset_fetch_groups(version, header, req, authz);
    }
    let group_ok = group_allowed(authz, Operation::Describe, &req.group_id);
    if !group_ok && version >= 2 {
        return single(ApiKey::OffsetFetch, version, header, group_ok, || {
            OffsetFetchResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED)
        });
    }
    // All topics (null), and an empty list too: Kafka reads [] as none, but a broker that reads it
    // as all (tansu does, for Metadata) must not widen the answer past what the session may see.
    let then = if req.topics.as_ref().is_none_or(Vec::is_empty) {
        Then::default().adjust(describable_only::<FetchTopics>(|t| &t.name))
    } else {
        Then::default().on_partial(upstream_error_wins)
    };
    let answer = answer_with(
        ApiKey::OffsetFetch,
        version,
        |t: &&OffsetFetchRequestTopic, code| {
            OffsetFetchResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions(
                    t.partition_indexes.iter().copied(),
                    code,
                    |i, e| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(i)
                            .with_committed_offset(INVALID_OFFSET)
                            .with_committed_leader_epoch(NO_LEADER_EPOCH)
                            .with_metadata(Some(StrBytes::new()))
                            .with_error_code(e)
                    },
                ))
        },
    );
    let allowed = |t: &OffsetFetchRequestTopic| topic_allowed(authz, Operation::Describe, &t.name);
    plan_each(
        Decoded::<FetchTopics>::new(version, header, req),
        (!group_ok).then_some(GROUP_AUTHORIZATION_FAILED),
        (allowed, TOPIC_AUTHORIZATION_FAILED),
        &answer,
        then,
    )
}

/// The per-group merges of a request that lists groups, each with its own topics (OffsetFetch
/// v8+, DescribeShareGroupOffsets): a group asking for every topic gets its answer filtered, a
/// group whose denied topics were cut gets them spliced back, each nested in the response's.
struct GroupMerges<G: ResponseList> {
    version: i16,
    nested: HashMap<StrBytes, ListMerge<G>>,
    /// Some group's topics were cut: the request forwarded is not the client's.
    changed: bool,
}

impl<G: ResponseList> GroupMerges<G>
where
    G::Response: HasErrorCode,
{
    fn new(version: i16) -> Self {
        GroupMerges {
            version,
            nested: HashMap::new(),
            changed: false,
        }
    }

    /// Group `id` asks for every topic: the upstream's answer keeps the DESCRIBE-able ones.
    fn all_topics(&mut self, id: StrBytes, name: fn(&G::Answer) -> &str) {
        let filter = describable_only::<G>(name);
        let merge = ListMerge::nested(
            self.version,
            None,
            Answers::default(),
            Some(Box::new(filter)),
        );
        self.nested.insert(id, merge);
    }

    /// Group `id` was forwarded with only `forwarded` of its topics: the `answers` for the rest are
    /// spliced in unless the coordinator answered the group with an error.
    fn cut(&mut self, id: StrBytes, forwarded: Vec<Key>, answers: Answers) {
        let adjust = Some(Box::new(upstream_error_wins) as list_api::Adjust<G>);
        let merge = ListMerge::nested(self.version, Some(forwarded), answers, adjust);
        self.nested.insert(id, merge);
        self.changed = true;
    }

    fn is_empty(&self) -> bool {
        !self.changed && self.nested.is_empty()
    }

    /// The plan's `Then` for the groups' list `L`, whose entries are `G`'s messages.
    fn then<L: ResponseList<Answer = G::Response>>(
        self,
        group_id: fn(&G::Response) -> &StrBytes,
    ) -> Then<L> {
        let mut then = Then::<L>::default();
        if self.changed {
            then = then.changed();
        }
        let mut nested = self.nested;
        if !nested.is_empty() {
            then = then.adjust(move |r: &mut L::Response, authz, ids| {
                for group in L::answers(r) {
                    if let Some(merge) = nested.remove(group_id(group)) {
                        merge.apply_to(group, authz, ids)?;
                    }
                }
                Ok(Splicing::Answers)
            });
        }
        then
    }
}

/// A batched group's denied topic: 29 on each partition, committed offset -1.
fn group_topic_error(topic: &OffsetFetchRequestTopics) -> OffsetFetchResponseTopics {
    OffsetFetchResponseTopics::default()
        .with_name(topic.name.clone())
        .with_topic_id(topic.topic_id)
        .with_partitions(partitions(
            topic.partition_indexes.iter().copied(),
            TOPIC_AUTHORIZATION_FAILED,
            |i, e| {
                OffsetFetchResponsePartitions::default()
                    .with_partition_index(i)
                    .with_committed_offset(INVALID_OFFSET)
                    .with_committed_leader_epoch(NO_LEADER_EPOCH)
                    .with_metadata(Some(StrBytes::new()))
                    .with_error_code(e)
            },
        ))
}

/// The verdict of a batched group whose every named topic is denied: answered here, with no
/// group error.
const EVERY_TOPIC_DENIED: i16 = 0;

/// OffsetFetch v8+: each group is checked and answered on its own, and the topics of each allowed
/// group as in v1-7, the group's own merge nested in the response's ([`ListMerge::nested`]).
fn offset_fetch_groups(
    version: i16,
    header: &RequestHeader,
    req: &OffsetFetchRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let group_ok =
        |g: &OffsetFetchRequestGroup| group_allowed(authz, Operation::Describe, &g.group_id);
    let topic_ok =
        |t: &OffsetFetchRequestTopics| topic_allowed(authz, Operation::Describe, &t.name);
    let untouched = req.groups.iter().all(|g| {
        group_ok(g)
            && g.topics
                .as_ref()
                .is_some_and(|topics| !topics.is_empty() && topics.iter().all(topic_ok))
    });
    if untouched {
        return Ok(Plan::Forward);
    }
    // The request with each allowed group's denied topics cut, each such group's merge, and
    // each group's verdict: every group and topic is checked once here.
    let mut reduced = req.clone();
    let mut merges = GroupMerges::<GroupTopics>::new(version);
    let mut verdicts = Vec::with_capacity(reduced.groups.len());
    for group in reduced.groups.iter_mut() {
        if !group_ok(group) {
            verdicts.push(Verdict::Answer(GROUP_AUTHORIZATION_FAILED));
            continue;
        }
        let id = group.group_id.0.clone();
        // All topics (null) or an empty list (see `offset_fetch`): filtered to what may be seen.
        let Some(topics) = group.topics.as_mut().filter(|t| !t.is_empty()) else {
            merges.all_topics(id, |t| &t.name);
            verdicts.push(Verdict::Forward);
            continue;
        };
        let oks: Vec<bool> = topics.iter().map(topic_ok).collect();
        if oks.iter().all(|ok| *ok) {
            verdicts.push(Verdict::Forward);
            continue;
        }
        if !oks.iter().any(|ok| *ok) {
            verdicts.push(Verdict::Answer(EVERY_TOPIC_DENIED));
            continue;
        }
        let mut answers = Answers::default();
        let mut forwarded = Vec::new();
        for (place, (t, ok)) in topics.iter().zip(&oks).enumerate() {
            match ok {
                true => forwarded.push(Key::Name(t.name.0.clone())),
                false => {
                    answers.push(ApiKey::OffsetFetch, version, place, &group_topic_error(t))?
                }
            }
        }
        let mut kept = oks.iter();
        topics.retain(|_| kept.next() == Some(&true));
        merges.cut(id, forwarded, answers);
        verdicts.push(Verdict::Forward);
    }
    let mut groups = verdicts.into_iter();
    // One verdict per group of `reduced`, in order (never short: fail closed if it were).
    let check = |_: &&OffsetFetchRequestGroup| {
        groups
            .next()
            .unwrap_or(Verdict::Answer(GROUP_AUTHORIZATION_FAILED))
    };
    let answer = answer_with(
        ApiKey::OffsetFetch,
        version,
        |g: &&OffsetFetchRequestGroup, code| {
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            match code {
                EVERY_TOPIC_DENIED => {
                    group.with_topics(g.topics.iter().flatten().map(group_topic_error).collect())
                }
                _ => group.with_error_code(code),
            }
        },
    );
    let then = merges.then::<FetchGroups>(|g| &g.group_id.0);
    list_api::plan(
        header,
        Decoded::<FetchGroups>::new(version, header, &reduced),
        check,
        &answer,
        then,
    )
}

// ---- share-group offsets (KIP-932) ----

list_api!(ShareAlterTopics: AlterShareGroupOffsets,
    AlterShareGroupOffsetsResponse[responses] => AlterShareGroupOffsetsResponseTopic,
        |_, a| by_name(&a.topic_name);
    AlterShareGroupOffsetsRequest[topics] => AlterShareGroupOffsetsRequestTopic,
        |_, t| Key::Name(t.topic_name.0.clone()));
list_api!(ShareDeleteTopics: DeleteShareGroupOffsets,
    DeleteShareGroupOffsetsResponse[responses] => DeleteShareGroupOffsetsResponseTopic,
        |_, a| by_name(&a.topic_name);
    DeleteShareGroupOffsetsRequest[topics] => DeleteShareGroupOffsetsRequestTopic,
        |_, t| Key::Name(t.topic_name.0.clone()));
list_api!(ShareDescribeGroups: DescribeShareGroupOffsets,
    DescribeShareGroupOffsetsResponse[groups] => DescribeShareGroupOffsetsResponseGroup,
        |_, a| by_name(&a.group_id);
    DescribeShareGroupOffsetsRequest[groups] => DescribeShareGroupOffsetsRequestGroup,
        |_, g| Key::Name(g.group_id.0.clone()));
list_api!(ShareDescribeTopics: DescribeShareGroupOffsets,
    DescribeShareGroupOffsetsResponseGroup[topics] => DescribeShareGroupOffsetsResponseTopic,
        |_, a| by_name(&a.topic_name));

fn topic_denied_message() -> Option<StrBytes> {
    Some(StrBytes::from_static_str(
        message::TOPIC_AUTHORIZATION_FAILED,
    ))
}

/// OffsetDelete and the admin APIs that change a share group's offsets: `group_op` on the group,
/// else a top-level 30 and no topics; READ on each topic, else 29. The coordinator is asked even
/// when no topic is left, and its group-level error replaces the topic errors, as Kafka's handlers
/// answer.
fn group_then_topics<L: ReadTopics>(
    source: Decoded<'_, L>,
    (group, group_op): (&str, Operation),
    authz: &dyn Authorize,
    ids: Option<&dyn TopicIds>,
) -> Result<Plan, ProtocolError>
where
    L::Response: HasErrorCode + GroupDenied,
{
    if !group_allowed(authz, group_op, group) {
        return single(L::API, source.version, source.header, false, || {
            L::Response::group_denied()
        });
    }
    let then = Then::default()
        .forward_empty()
        .on_partial(upstream_error_wins);
    read_each(source, None, authz, ids, then)
}

/// KafkaApis.handleAlterShareGroupOffsetsRequest: READ on the group (not ALTER), READ on each
/// topic; a denied topic is answered 29 on each partition under its id (nil when unknown).
pub(in crate::policy::mapping) fn alter_share_group_offsets(
    version: i16,
    header: &RequestHeader,
    req: &AlterShareGroupOffsetsRequest,
    authz: &dyn Authorize,
    ids: &dyn crate::policy::mapping::TopicIds,
) -> Result<Plan, ProtocolError> {
    let source = Decoded::<ShareAlterTopics>::new(version, header, req);
    group_then_topics(source, (&req.group_id, Operation::Read), authz, Some(ids))
}

/// KafkaApis.handleDeleteShareGroupOffsetsRequest: DELETE on the group, READ on each topic (29
/// on the topic, with Kafka's message).
pub(in crate::policy::mapping) fn delete_share_group_offsets(
    version: i16,
    header: &RequestHeader,
    req: &DeleteShareGroupOffsetsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let source = Decoded::<ShareDeleteTopics>::new(version, header, req);
    group_then_topics(source, (&req.group_id, Operation::Delete), authz, None)
}

/// A response whose whole answer for a denied group is a top-level 30 with Kafka's message
/// (`getErrorResponse(Errors)` copies `error.message()`).
trait GroupDenied {
    fn group_denied() -> Self;
}

macro_rules! group_denied {
    ($($t:ty),*) => {$(
        impl GroupDenied for $t {
            fn group_denied() -> Self {
                Self::default()
                    .with_error_code(GROUP_AUTHORIZATION_FAILED)
                    .with_error_message(Some(StrBytes::from_static_str(
                        message::GROUP_AUTHORIZATION_FAILED,
                    )))
            }
        }
    )*};
}
group_denied!(
    AlterShareGroupOffsetsResponse,
    DeleteShareGroupOffsetsResponse
);

/// OffsetDelete's denied group carries no message (`OffsetDeleteRequest.getErrorResponse`).
impl GroupDenied for OffsetDeleteResponse {
    fn group_denied() -> Self {
        Self::default().with_error_code(GROUP_AUTHORIZATION_FAILED)
    }
}

/// KafkaApis.handleDescribeShareGroupOffsetsRequest: DESCRIBE on each group (the group's 30, no
/// message); all topics (null) → the answer keeps the DESCRIBE-able topics; named topics →
/// DESCRIBE on each, a denied one answered 29 on each partition (start offset -1, nil id), after
/// the coordinator's answer and only when it has no group-level error. Unlike OffsetFetch, a
/// group whose every named topic is denied still goes to the coordinator (with none).
pub(in crate::policy::mapping) fn describe_share_group_offsets(
    version: i16,
    header: &RequestHeader,
    req: &DescribeShareGroupOffsetsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::DescribeShareGroupOffsets;
    let group_ok = |g: &DescribeShareGroupOffsetsRequestGroup| {
        group_allowed(authz, Operation::Describe, &g.group_id)
    };
    let topic_ok = |t: &DescribeShareGroupOffsetsRequestTopic| {
        topic_allowed(authz, Operation::Describe, &t.topic_name)
    };
    let mut reduced = req.clone();
    let mut merges = GroupMerges::<ShareDescribeTopics>::new(version);
    for group in reduced.groups.iter_mut().filter(|g| group_ok(g)) {
        let id = group.group_id.0.clone();
        let Some(topics) = &mut group.topics else {
            merges.all_topics(id, |t| &t.topic_name);
            continue;
        };
        if topics.iter().all(topic_ok) {
            continue;
        }
        // Kafka appends the denied topics after the coordinator's: their places come last.
        let mut answers = Answers::default();
        let mut forwarded = Vec::new();
        for t in topics.iter() {
            if topic_ok(t) {
                forwarded.push(Key::Name(t.topic_name.0.clone()));
            }
        }
        for (n, t) in topics.iter().filter(|t| !topic_ok(t)).enumerate() {
            let denied = DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name.clone())
                .with_partitions(partitions(
                    t.partitions.iter().copied(),
                    TOPIC_AUTHORIZATION_FAILED,
                    |i, e| {
                        DescribeShareGroupOffsetsResponsePartition::default()
                            .with_partition_index(i)
                            .with_start_offset(INVALID_OFFSET)
                            .with_error_code(e)
                            .with_error_message(topic_denied_message())
                    },
                ));
            answers.push(API, version, forwarded.len() + n, &denied)?;
        }
        topics.retain(topic_ok);
        merges.cut(id, forwarded, answers);
    }
    if merges.is_empty() && req.groups.iter().all(group_ok) {
        return Ok(Plan::Forward);
    }
    let answer = answer_with(
        API,
        version,
        |g: &&DescribeShareGroupOffsetsRequestGroup, code| {
            DescribeShareGroupOffsetsResponseGroup::default()
                .with_group_id(g.group_id.clone())
                .with_error_code(code)
        },
    );
    let then = merges.then::<ShareDescribeGroups>(|g| &g.group_id.0);
    plan_each(
        Decoded::<ShareDescribeGroups>::new(version, header, &reduced),
        None,
        (group_ok, GROUP_AUTHORIZATION_FAILED),
        &answer,
        then,
    )
}
