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
//! When everything is allowed the plan is [`Plan::Forward`] and nothing is allocated: Produce and
//! Fetch carry all the data. Entries the gateway answers itself are kept in the client's order
//! (Metadata: after the upstream's topics, where Kafka lists unauthorized ones); Kafka builds
//! these responses from hash maps, so clients match entries by name (or id), never by position.

mod admin;
mod fetch;
mod metadata;
mod offsets;
mod produce;
pub mod records;

#[cfg(test)]
mod tests;

pub use fetch::FetchMerge;
pub use metadata::MetadataMerge;

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::{respond, Authorize, Plan, TopicIds};
use crate::policy::model::CLUSTER_NAME;
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::{decode_body, encode_response, split_response, ProtocolError};
use crate::protocol::codec::{
    encode_request_with_header, read_fetch_request, read_metadata_request,
};
use crate::protocol::fetch::FetchRequestWire;
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
    /// Topics denied READ (29) or with an unknown id (100); see [`FetchMerge`].
    Fetch(FetchMerge),
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
        RequestKind::Fetch(r) if crate::protocol::fetch::VERSIONS.contains(&version) => {
            // As for Metadata: a decoded request is planned from its bytes, as the session plans
            // every Fetch request.
            let frame = encode_request_with_header(ApiKey::Fetch, version, header, r)?;
            let payload = frame.slice(crate::protocol::frame::LEN_PREFIX..);
            let (_, wire) = read_fetch_request(version, payload, u64::MAX)?;
            fetch::fetch(header, &wire, authz, ids)?
        }
        RequestKind::ListOffsets(r) => offsets::list_offsets(version, header, r, authz)?,
        RequestKind::OffsetForLeaderEpoch(r) => {
            offsets::offset_for_leader_epoch(version, header, r, authz)?
        }
        RequestKind::DeleteRecords(r) => offsets::delete_records(version, header, r, authz)?,
        RequestKind::Metadata(r) => {
            // A decoded request (tests, fuzzing) is planned from its bytes, as the session plans
            // every Metadata request: one implementation.
            let frame = encode_request_with_header(ApiKey::Metadata, version, header, r)?;
            let payload = frame.slice(crate::protocol::frame::LEN_PREFIX..);
            let (_, wire) = read_metadata_request(version, payload, u64::MAX)?;
            metadata::metadata(&wire, authz, ids)?
        }
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
            Merge::Produce(s) => rewrite(
                ApiKey::Produce,
                s.version,
                payload,
                |r: &mut m::ProduceResponse| {
                    r.responses = s.apply(std::mem::take(&mut r.responses));
                },
            ),
            Merge::Fetch(f) => f.apply(payload),
            Merge::ListOffsets(s) => rewrite(
                ApiKey::ListOffsets,
                s.version,
                payload,
                |r: &mut m::ListOffsetsResponse| {
                    r.topics = s.apply(std::mem::take(&mut r.topics));
                },
            ),
            Merge::OffsetForLeaderEpoch(s) => rewrite(
                ApiKey::OffsetForLeaderEpoch,
                s.version,
                payload,
                |r: &mut m::OffsetForLeaderEpochResponse| {
                    r.topics = s.apply(std::mem::take(&mut r.topics));
                },
            ),
            Merge::DeleteRecords(s) => rewrite(
                ApiKey::DeleteRecords,
                s.version,
                payload,
                |r: &mut m::DeleteRecordsResponse| {
                    r.topics = s.apply(std::mem::take(&mut r.topics));
                },
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
            Merge::DeleteTopics(s) => rewrite(
                ApiKey::DeleteTopics,
                s.version,
                payload,
                |r: &mut m::DeleteTopicsResponse| {
                    r.responses = s.apply(std::mem::take(&mut r.responses));
                },
            ),
            Merge::CreatePartitions(s) => rewrite(
                ApiKey::CreatePartitions,
                s.version,
                payload,
                |r: &mut m::CreatePartitionsResponse| {
                    r.results = s.apply(std::mem::take(&mut r.results));
                },
            ),
            Merge::DescribeConfigs(s) => rewrite(
                ApiKey::DescribeConfigs,
                s.version,
                payload,
                |r: &mut m::DescribeConfigsResponse| {
                    r.results = s.apply(std::mem::take(&mut r.results));
                },
            ),
            Merge::AlterConfigs(s) => rewrite(
                ApiKey::AlterConfigs,
                s.version,
                payload,
                |r: &mut m::AlterConfigsResponse| {
                    r.responses = s.apply(std::mem::take(&mut r.responses));
                },
            ),
            Merge::IncrementalAlterConfigs(s) => rewrite(
                ApiKey::IncrementalAlterConfigs,
                s.version,
                payload,
                |r: &mut m::IncrementalAlterConfigsResponse| {
                    r.responses = s.apply(std::mem::take(&mut r.responses));
                },
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

/// The client's entries in order, for one response list.
#[derive(Debug)]
pub struct Splice<T> {
    pub version: i16,
    pub slots: Vec<Slot<T>>,
}

impl<T: Keyed> Splice<T> {
    /// The final list: each slot in the client's order, local entries as built, forwarded ones taken
    /// from `upstream` (first unused match). Upstream entries no slot asked for are dropped: the
    /// client is only ever told about what it asked for and was checked for. (tansu, for one, reads
    /// an empty Metadata topic list as "every topic", which would otherwise reach a client that was
    /// denied all it asked for.)
    pub fn apply(self, upstream: Vec<T>) -> Vec<T> {
        let mut pool: Vec<Option<T>> = upstream.into_iter().map(Some).collect();
        let mut index: HashMap<Key, VecDeque<usize>> = HashMap::with_capacity(pool.len());
        for (i, entry) in pool.iter().enumerate() {
            if let Some(entry) = entry {
                for key in entry.keys(self.version).into_iter().flatten() {
                    index.entry(key).or_default().push_back(i);
                }
            }
        }
        let mut out = Vec::with_capacity(self.slots.len() + pool.len());
        for slot in self.slots {
            match slot {
                Slot::Local(entry) => out.push(entry),
                Slot::Upstream(key) => {
                    let Some(queue) = index.get_mut(&key) else {
                        continue;
                    };
                    // An entry indexed under two keys may already have been taken by the other.
                    while let Some(i) = queue.pop_front() {
                        if let Some(entry) = pool[i].take() {
                            out.push(entry);
                            break;
                        }
                    }
                }
            }
        }
        let extra = pool.iter().flatten().count();
        if extra > 0 {
            tracing::debug!(
                extra,
                "dropped upstream entries the request did not ask for"
            );
        }
        out
    }
}

/// Builds the slots for a request list whose entries are either answered locally or forwarded.
/// `decide` returns `Some(local entry)` for an entry the gateway answers.
fn slots_for<R, T>(
    entries: &[R],
    key: impl Fn(&R) -> Key,
    mut decide: impl FnMut(&R) -> Option<T>,
) -> Vec<Slot<T>> {
    entries
        .iter()
        .map(|e| match decide(e) {
            Some(local) => Slot::Local(local),
            None => Slot::Upstream(key(e)),
        })
        .collect()
}

/// Number of entries answered locally.
fn local_count<T>(slots: &[Slot<T>]) -> usize {
    slots.iter().filter(|s| matches!(s, Slot::Local(_))).count()
}

/// The local entries of `slots`, in order (for a response answered entirely by the gateway).
fn into_locals<T>(slots: Vec<Slot<T>>) -> Vec<T> {
    slots
        .into_iter()
        .filter_map(|s| match s {
            Slot::Local(t) => Some(t),
            Slot::Upstream(_) => None,
        })
        .collect()
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

/// The outcome of checking a list of entries named by topic.
enum Checked<T> {
    /// Every entry is allowed.
    AllAllowed,
    /// Every entry is answered by the gateway.
    AllDenied(Vec<T>),
    /// Some entries are answered by the gateway: forward the rest, splice these in.
    Partial(Vec<Slot<T>>),
}

/// Checks each entry with `allowed` (no allocation when all pass) and builds the local answer for
/// the denied ones with `local`.
fn check_by_name<R, T>(
    entries: &[R],
    name: impl Fn(&R) -> &StrBytes,
    allowed: impl Fn(&str) -> bool,
    local: impl Fn(&R) -> T,
) -> Checked<T> {
    if entries.iter().all(|e| allowed(name(e))) {
        return Checked::AllAllowed;
    }
    let slots = slots_for(
        entries,
        |e| Key::Name(name(e).clone()),
        |e| (!allowed(name(e))).then(|| local(e)),
    );
    if local_count(&slots) == entries.len() {
        Checked::AllDenied(into_locals(slots))
    } else {
        Checked::Partial(slots)
    }
}
