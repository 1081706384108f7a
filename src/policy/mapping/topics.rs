//! Checks for the topic, config and cluster-admin APIs, as KafkaApis (and, for the APIs a KRaft
//! broker forwards, ControllerApis) makes them: which Topic and Cluster permissions each request
//! needs, the error Kafka answers with when one is missing, and how the answer for a denied part is
//! merged into the upstream's response.
//!
//! - [`produce`]: Produce (transactional-id and per-topic WRITE), with [`records`] walking batch
//!   headers for the transactional bit.
//! - [`fetch`]: Fetch (follower CLUSTER_ACTION, consumer READ, topic ids, fetch-session reset).
//! - [`offsets`]: ListOffsets, OffsetForLeaderEpoch, DeleteRecords.
//! - [`metadata`]: Metadata (DESCRIBE filtering, auto-creation guard, authorized-operations
//!   bitfields) and DescribeCluster.
//! - [`admin`]: CreateTopics, DeleteTopics, CreatePartitions, the three config APIs,
//!   DescribeLogDirs and the cluster-ALTER/DESCRIBE APIs (ElectLeaders, AlterReplicaLogDirs,
//!   Alter/ListPartitionReassignments).
//!
//! When everything is allowed the plan is [`Plan::Forward`], and Produce and Fetch (which carry
//! all the data) allocate nothing to decide it. Entries the gateway answers itself are kept in
//! the client's order (Metadata: after the upstream's topics, where Kafka lists unauthorized
//! ones); Kafka builds these responses from hash maps, so clients match entries by name (or id),
//! never by position. No answer is built as a response struct per entry: a denied entry is
//! encoded as it is decided ([`Splice`], [`plan_entries`]), a denied topic's partitions from one
//! encoded partition ([`crate::protocol::list::NestedAnswer`]), and a wholly denied request is
//! written straight into its response.

mod admin;
mod fetch;
mod metadata;
mod offsets;
mod produce;
pub mod records;

#[cfg(test)]
mod tests;

pub use metadata::MetadataMerge;

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::{respond, Authorize, Plan, TopicIds};
use crate::policy::model::CLUSTER_NAME;
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::encode_request_with_header;
use crate::protocol::codec::{decode_body, encode_response, split_response, ProtocolError};
use crate::protocol::fetch::FetchRequestWire;
use crate::protocol::list::{self, Answers};
use crate::protocol::metadata::MetadataRequestWire;

/// Kafka error codes these APIs answer with.
pub(crate) mod code {
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_REQUEST: i16 = 42;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// `Errors.message()` texts and the fixed messages KafkaApis/ControllerApis send with some errors.
pub(crate) mod message {
    pub const TOPIC_AUTHORIZATION_FAILED: &str = "Topic authorization failed.";
    pub const GROUP_AUTHORIZATION_FAILED: &str = "Group authorization failed.";
    pub const CLUSTER_AUTHORIZATION_FAILED: &str = "Cluster authorization failed.";
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: &str =
        "Transactional Id authorization failed.";
    pub const UNKNOWN_TOPIC_ID: &str = "This server does not host this topic ID.";
    pub const UNKNOWN_TOPIC_OR_PARTITION: &str = "This server does not host this topic-partition.";
    pub const INVALID_REQUEST: &str = "This most likely occurs because of a request being malformed \
        by the client library or the message was sent to an incompatible broker. See the broker logs \
        for more details.";
    /// ControllerApis.createTopics' text for a topic it may not create.
    pub const CREATE_DENIED: &str = "Authorization failed.";
    pub const DUPLICATE_TOPIC_NAME: &str = "Duplicate topic name.";
    pub const DUPLICATE_TOPIC_ID: &str = "Duplicate topic id.";
    pub const NAME_AND_ID: &str = "You may not specify both topic name and topic id.";
    pub const NEITHER_NAME_NOR_ID: &str = "Neither topic name nor id were specified.";
    pub const DUPLICATE_RESOURCE: &str = "Each resource must appear at most once.";
}

/// How the upstream's response is completed or filtered, per API. Every variant keeps the request
/// version, which the response is decoded and re-encoded at.
#[derive(Debug)]
pub enum Merge {
    /// Topics denied WRITE (29 on every partition).
    Produce(Splice<kafka_protocol::messages::produce_response::TopicProduceResponse>),
    /// Topics denied READ (29) or with an unknown id (100); the response's `session_id` is forced
    /// to 0 because the forwarded request was made sessionless.
    Fetch(Splice<kafka_protocol::messages::fetch_response::FetchableTopicResponse>),
    /// Topics denied DESCRIBE (29 on every partition, offset -1).
    ListOffsets(Splice<kafka_protocol::messages::list_offsets_response::ListOffsetsTopicResponse>),
    /// Topics denied DESCRIBE (29 on every partition, epoch and end offset -1).
    OffsetForLeaderEpoch(
        Splice<kafka_protocol::messages::offset_for_leader_epoch_response::OffsetForLeaderTopicResult>,
    ),
    /// Topics denied DELETE (29 on every partition, low watermark -1).
    DeleteRecords(Splice<kafka_protocol::messages::delete_records_response::DeleteRecordsTopicResult>),
    /// See [`MetadataMerge`].
    Metadata(MetadataMerge),
    /// Recomputes `cluster_authorized_operations` for this session.
    DescribeCluster { version: i16 },
    /// Topics denied CREATE (29), denied duplicates (42), and `strip_configs`: created topics whose
    /// configs the session may not DESCRIBE_CONFIGS (v5+: `topic_config_error_code` 29).
    CreateTopics {
        splice: Splice<kafka_protocol::messages::create_topics_response::CreatableTopicResult>,
        strip_configs: Vec<StrBytes>,
    },
    /// Topics denied DELETE (29), unknown ids (100), malformed or duplicate entries (42).
    DeleteTopics(Splice<kafka_protocol::messages::delete_topics_response::DeletableTopicResult>),
    /// Topics denied ALTER (29), denied duplicates (42).
    CreatePartitions(
        Splice<kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult>,
    ),
    /// Resources denied DESCRIBE_CONFIGS (29 / 31 / 30).
    DescribeConfigs(Splice<kafka_protocol::messages::describe_configs_response::DescribeConfigsResult>),
    /// Resources denied ALTER_CONFIGS (29 / 31 / 30), unknown types (35), denied duplicates (42).
    AlterConfigs(
        Splice<kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse>,
    ),
    /// As AlterConfigs.
    IncrementalAlterConfigs(
        Splice<
            kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse,
        >,
    ),
}

/// Authorizes a Fetch request read from its bytes (the session never decodes one whole).
pub fn plan_fetch(
    header: &RequestHeader,
    wire: &FetchRequestWire,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    fetch::fetch(header, wire, authz, ids)
}

/// Authorizes a Metadata request read from its bytes (the session never decodes one whole).
pub fn plan_metadata(
    wire: &MetadataRequestWire,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    metadata::metadata(wire, authz, ids)
}

/// Authorizes one request of the topic, config and cluster-admin APIs; `Ok(None)` for other APIs.
pub fn plan(
    _api: ApiKey,
    version: i16,
    header: &RequestHeader,
    body: &RequestKind,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Option<Plan>, ProtocolError> {
    let plan = match body {
        RequestKind::Produce(r) => produce::produce(version, header, r, authz, ids)?,
        RequestKind::ListOffsets(r) => offsets::list_offsets(version, header, r, authz)?,
        RequestKind::OffsetForLeaderEpoch(r) => {
            offsets::offset_for_leader_epoch(version, header, r, authz)?
        }
        RequestKind::DeleteRecords(r) => offsets::delete_records(version, header, r, authz)?,
        RequestKind::DescribeCluster(r) => metadata::describe_cluster(version, r),
        RequestKind::CreateTopics(r) => admin::create_topics(version, header, r, authz)?,
        RequestKind::DeleteTopics(r) => admin::delete_topics(version, header, r, authz, ids)?,
        RequestKind::CreatePartitions(r) => admin::create_partitions(version, header, r, authz)?,
        RequestKind::DescribeConfigs(r) => admin::describe_configs(version, header, r, authz)?,
        RequestKind::AlterConfigs(r) => admin::alter_configs(version, header, r, authz)?,
        RequestKind::IncrementalAlterConfigs(r) => {
            admin::incremental_alter_configs(version, header, r, authz)?
        }
        RequestKind::DescribeLogDirs(_) => admin::describe_log_dirs(version, header, authz)?,
        RequestKind::ElectLeaders(r) => admin::elect_leaders(version, header, r, authz)?,
        RequestKind::AlterReplicaLogDirs(r) => {
            admin::alter_replica_log_dirs(version, header, r, authz)?
        }
        RequestKind::AlterPartitionReassignments(r) => {
            admin::alter_partition_reassignments(version, header, r, authz)?
        }
        RequestKind::ListPartitionReassignments(_) => {
            admin::list_partition_reassignments(version, header, authz)?
        }
        _ => return Ok(None),
    };
    Ok(Some(plan))
}

impl Merge {
    /// Applies the adjustment to the upstream's response payload (length prefix removed, header
    /// included) and returns the new frame (length prefix included).
    pub fn apply(
        self,
        payload: Bytes,
        authz: &dyn Authorize,
        _ids: &dyn TopicIds,
    ) -> Result<Bytes, ProtocolError> {
        use kafka_protocol::messages as m;
        match self {
            Merge::Produce(s) => s.merge(
                payload,
                |r: &mut m::ProduceResponse| std::mem::take(&mut r.responses),
                |r, v| r.responses = v,
            ),
            Merge::Fetch(s) => s.merge(
                payload,
                |r: &mut m::FetchResponse| {
                    // The forwarded request was sessionless: the client must not think it holds
                    // a session.
                    r.session_id = 0;
                    std::mem::take(&mut r.responses)
                },
                |r, v| r.responses = v,
            ),
            Merge::ListOffsets(s) => s.merge(
                payload,
                |r: &mut m::ListOffsetsResponse| std::mem::take(&mut r.topics),
                |r, v| r.topics = v,
            ),
            Merge::OffsetForLeaderEpoch(s) => s.merge(
                payload,
                |r: &mut m::OffsetForLeaderEpochResponse| std::mem::take(&mut r.topics),
                |r, v| r.topics = v,
            ),
            Merge::DeleteRecords(s) => s.merge(
                payload,
                |r: &mut m::DeleteRecordsResponse| std::mem::take(&mut r.topics),
                |r, v| r.topics = v,
            ),
            Merge::Metadata(mm) => mm.apply(payload, authz),
            Merge::DescribeCluster { version } => rewrite(
                ApiKey::DescribeCluster,
                version,
                payload,
                |r: &mut m::DescribeClusterResponse| {
                    r.cluster_authorized_operations = cluster_operations(authz);
                },
            ),
            Merge::CreateTopics {
                splice,
                strip_configs,
            } => admin::merge_create_topics(splice, &strip_configs, payload),
            Merge::DeleteTopics(s) => s.merge(
                payload,
                |r: &mut m::DeleteTopicsResponse| std::mem::take(&mut r.responses),
                |r, v| r.responses = v,
            ),
            Merge::CreatePartitions(s) => s.merge(
                payload,
                |r: &mut m::CreatePartitionsResponse| std::mem::take(&mut r.results),
                |r, v| r.results = v,
            ),
            Merge::DescribeConfigs(s) => s.merge(
                payload,
                |r: &mut m::DescribeConfigsResponse| std::mem::take(&mut r.results),
                |r, v| r.results = v,
            ),
            Merge::AlterConfigs(s) => s.merge(
                payload,
                |r: &mut m::AlterConfigsResponse| std::mem::take(&mut r.responses),
                |r, v| r.responses = v,
            ),
            Merge::IncrementalAlterConfigs(s) => s.merge(
                payload,
                |r: &mut m::IncrementalAlterConfigsResponse| std::mem::take(&mut r.responses),
                |r, v| r.responses = v,
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Splicing local entries into the upstream's list, in the client's order.

/// What identifies an entry of a response list: a topic name, a topic id, or a config resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Name(StrBytes),
    Id(Uuid),
    Resource(i8, StrBytes),
}

/// A response entry type the upstream may answer in any order.
pub trait Keyed {
    /// The keys this entry can be found by, at `version` (a topic by name and by id).
    fn keys(&self, version: i16) -> [Option<Key>; 2];
}

/// One entry of the client's request: answered by the gateway, or forwarded and found in the
/// upstream's answer by key.
#[derive(Debug)]
pub enum Slot<T> {
    Local(T),
    Upstream(Key),
}

/// The client's entries in order, for one response list: the gateway's answers encoded as they are
/// decided (no struct is kept per answer), the forwarded entries by key.
#[derive(Debug)]
pub struct Splice<T> {
    api: ApiKey,
    pub version: i16,
    forwarded: Vec<Key>,
    answers: Answers,
    /// Entries so far: the next entry's place in the client's list.
    places: usize,
    _entry: PhantomData<fn() -> T>,
}

impl<T: Keyed + Encodable + Decodable + Default> Splice<T> {
    pub fn new(api: ApiKey, version: i16) -> Splice<T> {
        Splice::with_capacity(api, version, 0, 0)
    }

    /// Room for `answers` answers of `bytes` in all, reserved at once ([`Answers::with_capacity`]).
    pub fn with_capacity(api: ApiKey, version: i16, bytes: usize, answers: usize) -> Splice<T> {
        Splice {
            api,
            version,
            forwarded: Vec::new(),
            answers: Answers::with_capacity(bytes, answers),
            places: 0,
            _entry: PhantomData,
        }
    }

    /// The next entry: its answer (encoded now) or its key in the upstream's answer.
    pub fn push(&mut self, slot: Slot<T>) -> Result<(), ProtocolError> {
        match slot {
            Slot::Local(entry) => self
                .answers
                .push(self.api, self.version, self.places, &entry)?,
            Slot::Upstream(key) => self.forwarded.push(key),
        }
        self.places += 1;
        Ok(())
    }

    /// The next entry, answered with what `write` encodes.
    pub fn push_with(
        &mut self,
        write: impl FnOnce(&mut BytesMut) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        self.answers.push_with(self.places, write)?;
        self.places += 1;
        Ok(())
    }

    /// Entries answered by the gateway.
    pub fn local_count(&self) -> usize {
        self.answers.len()
    }

    /// Entries in all.
    pub fn entries(&self) -> usize {
        self.places
    }

    /// The whole answer when every entry is the gateway's: `body` with the answers as the list
    /// `put` sets, written around them rather than copied.
    pub fn respond<R: Encodable + Clone>(
        self,
        header: &RequestHeader,
        body: &R,
        put: impl Fn(&mut R, Vec<T>),
    ) -> Result<Plan, ProtocolError> {
        let shell = list::Shell::answering(self.api, self.version, header, body, put)?;
        self.answers.into_frame(shell).map(Plan::Respond)
    }

    /// The upstream's response (`payload`, length prefix removed) with its list (`take`n out,
    /// and `put` back) completed: each entry in the client's order, the gateway's answers as
    /// encoded, the forwarded ones found in the upstream's list by key (first unused match).
    /// Upstream entries no forwarded entry asks for are dropped: the client is only ever told
    /// about what it asked for and was checked for.
    pub fn merge<R: Decodable + Encodable + Clone>(
        self,
        payload: Bytes,
        take: impl FnOnce(&mut R) -> Vec<T>,
        put: impl Fn(&mut R, Vec<T>),
    ) -> Result<Bytes, ProtocolError> {
        let (header, body) = split_response(self.api, self.version, payload)?;
        let mut resp: R = decode_body(self.api, self.version, body)?;
        let upstream = take(&mut resp);
        let mut index: HashMap<Key, VecDeque<usize>> = HashMap::with_capacity(upstream.len());
        for (i, entry) in upstream.iter().enumerate() {
            for key in entry.keys(self.version).into_iter().flatten() {
                index.entry(key).or_default().push_back(i);
            }
        }
        let mut taken = vec![false; upstream.len()];
        let mut ordered = Vec::with_capacity(self.forwarded.len());
        for key in &self.forwarded {
            let Some(queue) = index.get_mut(key) else {
                continue;
            };
            // An entry indexed under two keys may already have been taken by the other.
            while let Some(i) = queue.pop_front() {
                if !std::mem::replace(&mut taken[i], true) {
                    ordered.push(&upstream[i]);
                    break;
                }
            }
        }
        let extra = upstream.len() - ordered.len();
        if extra > 0 {
            tracing::debug!(
                extra,
                "dropped upstream entries the request did not ask for"
            );
        }
        let size = (
            ordered.len() + self.answers.len(),
            list::entries_size(self.version, ordered.iter().copied(), &self.answers),
        );
        let entries = list::interleave(ordered, &self.answers);
        list::encode_with_list(self.api, self.version, &header, &resp, put, size, entries)
    }
}

/// Plans a request whose entries are each forwarded or answered here: `codes[i]` is the error
/// for entry `i` (`None`: forwarded), `write` writes a denied entry's answer, `key` names a
/// forwarded one in the upstream's answer. Wholly denied, the answers are written straight into
/// the response (`body` with the list `put` sets); in part, `forward` gives the request without
/// the denied entries and `merge` what completes its answer. No struct is built per answer.
#[allow(clippy::too_many_arguments)] // one list's description: what the callers differ in
fn plan_entries<E, T, R>(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    entries: &[E],
    codes: &[Option<i16>],
    key: impl Fn(&E) -> Key,
    write: impl Fn(&mut BytesMut, &E, i16) -> Result<(), ProtocolError>,
    (body, put): (&R, impl Fn(&mut R, Vec<T>)),
    forward: impl FnOnce() -> Result<Bytes, ProtocolError>,
    merge: impl FnOnce(Splice<T>) -> Merge,
) -> Result<Plan, ProtocolError>
where
    T: Keyed + Encodable + Decodable + Default,
    R: Encodable + Clone,
{
    if codes.iter().all(Option::is_none) {
        return Ok(Plan::Forward);
    }
    if codes.iter().all(Option::is_some) {
        let shell = list::Shell::answering(api, version, header, body, put)?;
        let frame = shell.finish(entries.len(), 0, |out| {
            for (e, code) in entries.iter().zip(codes) {
                write(out, e, code.unwrap_or_default())?;
            }
            Ok(entries.len())
        })?;
        return Ok(Plan::Respond(frame));
    }
    let mut splice = Splice::new(api, version);
    for (e, code) in entries.iter().zip(codes) {
        match code {
            Some(code) => splice.push_with(|out| write(out, e, *code))?,
            None => splice.push(Slot::Upstream(key(e)))?,
        }
    }
    Ok(Plan::ForwardPartial {
        request: forward()?,
        merge: super::Merge::Topics(merge(splice)),
    })
}

/// The request `req` with only the entries of its list (`list`) whose code is `None`, encoded.
fn forward_kept<R: Encodable + Clone, E>(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    req: &R,
    list: impl Fn(&mut R) -> &mut Vec<E>,
    codes: &[Option<i16>],
) -> Result<Bytes, ProtocolError> {
    let mut forwarded = req.clone();
    let mut kept = codes.iter();
    list(&mut forwarded).retain(|_| kept.next().is_some_and(Option::is_none));
    encode_request_with_header(api, version, header, &forwarded)
}

/// Names that occur more than once in `names`.
fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> std::collections::HashSet<&'a str> {
    let mut seen = std::collections::HashSet::new();
    let mut dups = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n) {
            dups.insert(n);
        }
    }
    dups
}

// ---------------------------------------------------------------------------------------------
// Encoding.

/// Decodes the upstream's response, adjusts it and re-encodes it with the upstream's header.
fn rewrite<T: Decodable + Encodable>(
    api: ApiKey,
    version: i16,
    payload: Bytes,
    f: impl FnOnce(&mut T),
) -> Result<Bytes, ProtocolError> {
    let (header, body) = split_response(api, version, payload)?;
    let mut resp: T = decode_body(api, version, body)?;
    f(&mut resp);
    encode_response(api, version, &header, &resp)
}

// ---------------------------------------------------------------------------------------------
// Authorization helpers.

fn topic_allowed(authz: &dyn Authorize, op: Operation, name: &str) -> bool {
    authz.allowed(op, ResourceType::Topic, name)
}

fn cluster_allowed(authz: &dyn Authorize, op: Operation) -> bool {
    authz.allowed(op, ResourceType::Cluster, CLUSTER_NAME)
}

/// Kafka's `AuthHelper.authorizedOperations`: one bit (`1 << code`) per operation of
/// `AclEntry.supportedOperations(type)` the session is allowed. Implication (READ ⇒ DESCRIBE, ...)
/// is the authorizer's, as in Kafka, so an explicit DENY DESCRIBE still clears the DESCRIBE bit.
pub fn authorized_operations(authz: &dyn Authorize, rtype: ResourceType, name: &str) -> i32 {
    use Operation::*;
    let supported: &[Operation] = match rtype {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write],
    };
    supported
        .iter()
        .filter(|op| authz.allowed(**op, rtype, name))
        .fold(0i32, |bits, op| bits | (1i32 << op.code()))
}

/// `cluster_authorized_operations` as Metadata v8-10 and DescribeCluster compute it: 0 without
/// DESCRIBE on the cluster, else the bitfield.
fn cluster_operations(authz: &dyn Authorize) -> i32 {
    if cluster_allowed(authz, Operation::Describe) {
        authorized_operations(authz, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        0
    }
}

/// A topic name for a topic id: the gateway's map, or `None` (Kafka's UNKNOWN_TOPIC_ID).
fn resolve(ids: &dyn TopicIds, id: Uuid) -> Option<String> {
    if id.is_nil() {
        None
    } else {
        ids.name_of(id)
    }
}
