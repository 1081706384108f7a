//! Checks for the group, offset and transaction APIs, as KafkaApis makes them: which Group,
//! TransactionalId, Topic and Cluster permissions each request needs, the error Kafka answers with
//! when one is missing, and how the answer for a denied part is merged into the upstream's response.
//!
//! - [`offsets`]: OffsetCommit, OffsetFetch, OffsetDelete, TxnOffsetCommit.
//! - [`membership`]: FindCoordinator, the classic and KIP-848 group protocols, DescribeGroups,
//!   ConsumerGroupDescribe, ListGroups, DeleteGroups.
//! - [`txn`]: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeProducers,
//!   DescribeTransactions, ListTransactions.
//!
//! When everything is allowed the plan is [`Plan::Forward`] and nothing is allocated: these APIs
//! carry every consumer's heartbeats and commits. Denied parts are answered in the client's order;
//! Kafka itself lists its local errors before or after the coordinator's results depending on the
//! API, and clients match entries by name, never by position.

mod membership;

pub(super) use membership::assignment_topic_ids;
mod offsets;
mod txn;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as CgDescribedGroup;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::describe_producers_response::TopicResponse as ProducersTopic;
use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::OffsetCommitResponseTopic;
use kafka_protocol::messages::offset_delete_response::OffsetDeleteResponseTopic;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::txn_offset_commit_response::TxnOffsetCommitResponseTopic;
use kafka_protocol::messages::{ApiKey, GroupId, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::marker::PhantomData;

use super::{respond, Authorize, Plan, TopicIds};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::encode_request_with_header;
use crate::protocol::codec::{decode_body, split_response, ProtocolError};
use crate::protocol::list::{self, Answers};
use crate::protocol::names::{NameListWire, NamedAnswer};
use crate::protocol::wire::WireError;

/// Kafka error codes these APIs answer with.
pub(crate) mod code {
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_REQUEST: i16 = 42;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
}

/// `Errors.message()` texts, for the fields where Kafka sends them.
pub(crate) mod message {
    pub const TOPIC_AUTHORIZATION_FAILED: &str = "Topic authorization failed.";
    pub const GROUP_AUTHORIZATION_FAILED: &str = "Group authorization failed.";
    pub const CLUSTER_AUTHORIZATION_FAILED: &str = "Cluster authorization failed.";
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: &str =
        "Transactional Id authorization failed.";
    pub const INVALID_REQUEST: &str = "This most likely occurs because of a request being malformed by the \
        client library or the message was sent to an incompatible broker. See the broker logs for more details.";
}

/// Entries answered by the gateway, each with its position in the client's list, to be merged with
/// the upstream's entries for the forwarded rest. They are encoded as they are decided: 50,000
/// denied group names cost their encoded answers (about 20 bytes each), not 50,000 response
/// structs of 230 bytes held until the response is encoded.
#[derive(Debug)]
pub struct Denied<T> {
    api: ApiKey,
    version: i16,
    answers: Answers,
    _entry: PhantomData<fn() -> T>,
}

impl<T: Encodable + Decodable + Default> Denied<T> {
    pub fn new(api: ApiKey, version: i16) -> Denied<T> {
        Denied {
            api,
            version,
            answers: Answers::default(),
            _entry: PhantomData,
        }
    }

    /// Answers the entry at `place` in the client's list with `entry`.
    pub fn push(&mut self, place: usize, entry: &T) -> Result<(), ProtocolError> {
        self.answers.push(self.api, self.version, place, entry)
    }

    /// Answers the entry at `place` with what `write` encodes.
    fn push_with(
        &mut self,
        place: usize,
        write: impl FnOnce(&mut bytes::BytesMut) -> Result<(), WireError>,
    ) -> Result<(), ProtocolError> {
        let (api, version) = (self.api, self.version);
        self.answers
            .push_with(place, write)
            .map_err(|e| ProtocolError::Encode {
                api,
                version,
                message: e.to_string(),
            })
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// The whole answer, when nothing was forwarded: `body` (its list left empty) with these
    /// entries as the list `put` sets.
    fn respond<R: Encodable + Clone>(
        self,
        header: &RequestHeader,
        body: &R,
        put: impl Fn(&mut R, Vec<T>),
    ) -> Result<Plan, ProtocolError> {
        let shell = list::Shell::answering(self.api, self.version, header, body, put)?;
        let frame = self.answers.into_frame(shell)?;
        Ok(Plan::Respond(frame))
    }

    /// The upstream's response (`resp`, whose list was taken out as `upstream`) with these entries
    /// put back at their places among the upstream's.
    fn merge<R: Encodable + Clone>(
        &self,
        header: &ResponseHeader,
        resp: &R,
        put: impl Fn(&mut R, Vec<T>),
        upstream: &[T],
    ) -> Result<Bytes, ProtocolError> {
        let size = (
            upstream.len() + self.answers.len(),
            list::entries_size(self.version, upstream, &self.answers),
        );
        let entries = list::interleave(upstream, &self.answers);
        list::encode_with_list(self.api, self.version, header, resp, put, size, entries)
    }

    /// The entries decoded again, for a list nested in another (a batched OffsetFetch group's
    /// topics), which is encoded with its parent.
    fn into_values(self) -> Result<Vec<(usize, T)>, ProtocolError> {
        self.answers
            .iter()
            .map(|(place, mut bytes)| {
                T::decode(&mut bytes, self.version)
                    .map(|t| (place, t))
                    .map_err(|e| ProtocolError::Decode {
                        api: self.api,
                        version: self.version,
                        what: "an answer of the gateway's",
                        message: e.to_string(),
                    })
            })
            .collect()
    }
}

/// How the upstream's response is completed or filtered, per API. Each variant keeps the request
/// version the response is decoded and re-encoded at (OffsetDelete has only v0).
#[derive(Debug)]
pub enum Merge {
    /// Topics denied READ (29 on every partition).
    OffsetCommit {
        version: i16,
        denied: Denied<OffsetCommitResponseTopic>,
    },
    /// OffsetFetch v1-7 (one group): topics denied DESCRIBE (29, committed offset -1), or, when the
    /// client asked for every topic, `filter_all`: drop the topics it may not DESCRIBE.
    OffsetFetch {
        version: i16,
        denied: Denied<OffsetFetchResponseTopic>,
        filter_all: bool,
    },
    /// OffsetFetch v8+ (batched groups): the groups answered by the gateway, at their places in
    /// the client's list, and the forwarded ones, in the client's order.
    OffsetFetchGroups {
        version: i16,
        local: Denied<OffsetFetchResponseGroup>,
        forwarded: Vec<ForwardedGroup>,
    },
    /// Topics denied READ (29 on every partition); v0 only.
    OffsetDelete {
        denied: Denied<OffsetDeleteResponseTopic>,
    },
    /// Topics denied READ (29 on every partition).
    TxnOffsetCommit {
        version: i16,
        denied: Denied<TxnOffsetCommitResponseTopic>,
    },
    /// FindCoordinator v4+: keys denied DESCRIBE (30 or 53, node -1).
    FindCoordinator {
        version: i16,
        denied: Denied<Coordinator>,
    },
    /// Groups denied DESCRIBE (30); `authorized_operations` is recomputed for this session.
    DescribeGroups {
        version: i16,
        denied: Denied<DescribedGroup>,
        authorized_operations: bool,
    },
    /// As DescribeGroups, and groups whose assignments name a topic the session may not DESCRIBE
    /// become 29 without members (KafkaApis.handleConsumerGroupDescribe).
    ConsumerGroupDescribe {
        version: i16,
        denied: Denied<CgDescribedGroup>,
        authorized_operations: bool,
    },
    /// Drops from the assignment the topics (by id) the session may not DESCRIBE: the coordinator
    /// resolved a subscription regex with the upstream principal's rights, not the client's.
    ConsumerGroupHeartbeat { version: i16 },
    /// Keeps the groups the session may DESCRIBE (no cluster DESCRIBE).
    ListGroups { version: i16 },
    /// Groups denied DELETE (30).
    DeleteGroups {
        version: i16,
        denied: Denied<DeletableGroupResult>,
    },
    /// Topics denied READ (29 on every partition).
    DescribeProducers {
        version: i16,
        denied: Denied<ProducersTopic>,
    },
    /// Transactional ids denied DESCRIBE (53); every state's topics filtered to DESCRIBE.
    DescribeTransactions {
        version: i16,
        denied: Denied<TransactionState>,
    },
    /// Keeps the transactional ids the session may DESCRIBE.
    ListTransactions { version: i16 },
}

/// A forwarded group of a batched (v8+) OffsetFetch: the upstream's answer for it is completed
/// with `denied` topics, or filtered to the topics the session may see.
#[derive(Debug)]
pub struct ForwardedGroup {
    pub group_id: GroupId,
    pub denied: Denied<OffsetFetchResponseTopics>,
    pub filter_all: bool,
}

/// Authorizes a request that is one list of group names, read from its bytes (the session never
/// decodes one whole).
pub fn plan_names(
    header: &RequestHeader,
    wire: &NameListWire,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    match wire.api() {
        ApiKey::DescribeGroups => membership::describe_groups(header, wire, authz),
        ApiKey::DeleteGroups => membership::delete_groups(header, wire, authz),
        _ => membership::consumer_group_describe(header, wire, authz),
    }
}

/// Authorizes one request of the group, offset and transaction APIs; `Ok(None)` for other APIs.
/// Every API here is authorized by name; topic ids only matter when merging.
pub fn plan(
    _api: ApiKey,
    version: i16,
    header: &RequestHeader,
    body: &RequestKind,
    authz: &dyn Authorize,
    _ids: &dyn TopicIds,
) -> Result<Option<Plan>, ProtocolError> {
    let plan = match body {
        RequestKind::OffsetCommit(r) => offsets::offset_commit(version, header, r, authz)?,
        RequestKind::OffsetFetch(r) => offsets::offset_fetch(version, header, r, authz)?,
        RequestKind::OffsetDelete(r) => offsets::offset_delete(version, header, r, authz)?,
        RequestKind::TxnOffsetCommit(r) => offsets::txn_offset_commit(version, header, r, authz)?,
        RequestKind::FindCoordinator(r) => membership::find_coordinator(version, header, r, authz)?,
        RequestKind::JoinGroup(r) => membership::join_group(version, header, r, authz)?,
        RequestKind::SyncGroup(r) => membership::sync_group(version, header, r, authz)?,
        RequestKind::Heartbeat(r) => membership::heartbeat(version, header, r, authz)?,
        RequestKind::LeaveGroup(r) => membership::leave_group(version, header, r, authz)?,
        RequestKind::ConsumerGroupHeartbeat(r) => {
            membership::consumer_group_heartbeat(version, header, r, authz)?
        }
        RequestKind::ListGroups(_) => membership::list_groups(version, authz),
        RequestKind::InitProducerId(r) => txn::init_producer_id(version, header, r, authz)?,
        RequestKind::AddPartitionsToTxn(r) => {
            txn::add_partitions_to_txn(version, header, r, authz, _ids)?
        }
        RequestKind::AddOffsetsToTxn(r) => txn::add_offsets_to_txn(version, header, r, authz)?,
        RequestKind::EndTxn(r) => txn::end_txn(version, header, r, authz)?,
        RequestKind::DescribeProducers(r) => txn::describe_producers(version, header, r, authz)?,
        RequestKind::DescribeTransactions(r) => {
            txn::describe_transactions(version, header, r, authz)?
        }
        RequestKind::ListTransactions(_) => txn::list_transactions(version),
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
        ids: &dyn TopicIds,
    ) -> Result<Bytes, ProtocolError> {
        match self {
            Merge::OffsetCommit { version, denied } => {
                offsets::merge_offset_commit(version, denied, payload)
            }
            Merge::OffsetFetch {
                version,
                denied,
                filter_all,
            } => offsets::merge_offset_fetch(version, denied, filter_all, payload, authz),
            Merge::OffsetFetchGroups {
                version,
                local,
                forwarded,
            } => offsets::merge_offset_fetch_groups(version, local, forwarded, payload, authz),
            Merge::OffsetDelete { denied } => offsets::merge_offset_delete(denied, payload),
            Merge::TxnOffsetCommit { version, denied } => {
                offsets::merge_txn_offset_commit(version, denied, payload)
            }
            Merge::FindCoordinator { version, denied } => {
                membership::merge_find_coordinator(version, denied, payload)
            }
            Merge::DescribeGroups {
                version,
                denied,
                authorized_operations,
            } => membership::merge_describe_groups(
                version,
                denied,
                authorized_operations,
                payload,
                authz,
            ),
            Merge::ConsumerGroupDescribe {
                version,
                denied,
                authorized_operations,
            } => membership::merge_consumer_group_describe(
                version,
                denied,
                authorized_operations,
                payload,
                authz,
            ),
            Merge::ConsumerGroupHeartbeat { version } => {
                membership::merge_consumer_group_heartbeat(version, payload, authz, ids)
            }
            Merge::ListGroups { version } => membership::merge_list_groups(version, payload, authz),
            Merge::DeleteGroups { version, denied } => {
                membership::merge_delete_groups(version, denied, payload)
            }
            Merge::DescribeProducers { version, denied } => {
                txn::merge_describe_producers(version, denied, payload)
            }
            Merge::DescribeTransactions { version, denied } => {
                txn::merge_describe_transactions(version, denied, payload, authz)
            }
            Merge::ListTransactions { version } => {
                txn::merge_list_transactions(version, payload, authz)
            }
        }
    }
}

// ---- helpers shared by the submodules ----

/// `None` when every item passes `ok` (the hot path: nothing allocated), otherwise one flag per
/// item. Each item is checked once.
fn mask<T>(items: &[T], ok: impl Fn(&T) -> bool) -> Option<Vec<bool>> {
    let first = items.iter().position(|i| !ok(i))?;
    let mut flags = vec![true; items.len()];
    for (i, item) in items.iter().enumerate().skip(first) {
        flags[i] = i != first && ok(item);
    }
    Some(flags)
}

/// How a request that is one list of group names ([`NameListWire`]) is answered.
enum ByName<T> {
    AllAllowed,
    /// Every name denied: the whole answer.
    Answered(Plan),
    /// The allowed names forwarded (`request`), the denied ones answered here.
    Partial {
        request: Bytes,
        denied: Denied<T>,
    },
}

/// Authorizes each name of `wire` once with `ok`, answering a denied one with `answer` (once per
/// distinct name with `once`, as Kafka de-duplicates DeleteGroups). Read in place: no struct per
/// name, and when every name is denied the answers are written straight into the response
/// (`body` with the list `put` sets).
fn by_name<T, R>(
    header: &RequestHeader,
    wire: &NameListWire,
    ok: impl Fn(&str) -> bool,
    answer: &NamedAnswer,
    once: bool,
    body: &R,
    put: impl Fn(&mut R, Vec<T>),
) -> Result<ByName<T>, ProtocolError>
where
    T: Encodable + Decodable + Default,
    R: Encodable + Clone,
{
    use hashbrown::hash_table::{Entry, HashTable};
    use std::hash::{BuildHasher, RandomState};
    // Per name: allowed, denied and answered, or denied and answered already (a repeat).
    const ALLOWED: u8 = 0;
    const ANSWER: u8 = 1;
    const REPEAT: u8 = 2;
    let mut state: Vec<u8> = Vec::with_capacity(wire.len());
    for (_, name) in wire.names() {
        state.push(if ok(name) { ALLOWED } else { ANSWER });
    }
    if state.iter().all(|s| *s == ALLOWED) {
        return Ok(ByName::AllAllowed);
    }
    if once {
        // A table of name offsets, not of names: 5 bytes a bucket (issue 11 item 5).
        let hasher = RandomState::new();
        let denied = state.iter().filter(|s| **s == ANSWER).count();
        let mut seen: HashTable<u32> = HashTable::with_capacity(denied);
        let name_at = |at: &u32| wire.name_at(*at).unwrap_or_default();
        for ((at, name), s) in wire.names().zip(state.iter_mut()) {
            if *s == ALLOWED {
                continue;
            }
            let hash = hasher.hash_one(name);
            match seen.entry(
                hash,
                |o| name_at(o) == name,
                |o| hasher.hash_one(name_at(o)),
            ) {
                Entry::Occupied(_) => *s = REPEAT,
                Entry::Vacant(slot) => {
                    slot.insert(at);
                }
            }
        }
    }
    let (api, version) = (wire.api(), wire.version());
    let encoding = |e: WireError| ProtocolError::Encode {
        api,
        version,
        message: e.to_string(),
    };
    let answered = || {
        wire.names()
            .zip(state.iter())
            .filter(|(_, s)| **s == ANSWER)
            .map(|((_, name), _)| name)
    };
    if state.iter().all(|s| *s != ALLOWED) {
        let count = answered().count();
        let size = answered().map(|n| answer.size(n)).sum();
        let frame = list::Shell::answering(api, version, header, body, put)?.finish(
            count,
            size,
            |out| {
                for name in answered() {
                    answer.write(out, name).map_err(encoding)?;
                }
                Ok(count)
            },
        )?;
        return Ok(ByName::Answered(Plan::Respond(frame)));
    }
    let mut denied = Denied::new(api, version);
    for (place, ((_, name), s)) in wire.names().zip(state.iter()).enumerate() {
        if *s == ANSWER {
            denied.push_with(place, |out| answer.write(out, name))?;
        }
    }
    let request = wire.splice(|i| state[i] == ALLOWED).map_err(encoding)?;
    Ok(ByName::Partial { request, denied })
}

/// The items whose flag is set (cloned, to be forwarded) and, for the others, `deny(item)`
/// encoded at its position in the client's list.
fn split<T: Clone, R: Encodable + Decodable + Default>(
    api: ApiKey,
    version: i16,
    items: &[T],
    flags: &[bool],
    deny: impl Fn(&T) -> R,
) -> Result<(Vec<T>, Denied<R>), ProtocolError> {
    let mut allowed = Vec::new();
    let mut denied = Denied::new(api, version);
    for (i, (item, ok)) in items.iter().zip(flags).enumerate() {
        if *ok {
            allowed.push(item.clone());
        } else {
            denied.push(i, &deny(item))?;
        }
    }
    Ok((allowed, denied))
}

/// Every item answered by the gateway with `deny(item)` (the whole request is denied).
fn deny_all<T, R: Encodable + Decodable + Default>(
    api: ApiKey,
    version: i16,
    items: &[T],
    deny: impl Fn(&T) -> R,
) -> Result<Denied<R>, ProtocolError> {
    let mut denied = Denied::new(api, version);
    for (i, item) in items.iter().enumerate() {
        denied.push(i, &deny(item))?;
    }
    Ok(denied)
}

/// Puts the gateway's entries back at their positions among the upstream's entries (which answer
/// the forwarded items, in order), for a list nested in another; top-level lists are written
/// entry by entry instead ([`Denied::merge`]). Entries carry their own names, so an upstream that
/// reorders or drops entries only changes the order, never which name gets which answer.
fn interleave<T>(upstream: Vec<T>, denied: Vec<(usize, T)>) -> Vec<T> {
    let mut out = Vec::with_capacity(upstream.len() + denied.len());
    let mut upstream = upstream.into_iter();
    let mut denied = denied.into_iter().peekable();
    loop {
        if let Some((_, entry)) = denied.next_if(|(pos, _)| *pos <= out.len()) {
            out.push(entry);
            continue;
        }
        match upstream.next() {
            Some(entry) => out.push(entry),
            None => {
                out.extend(denied.map(|(_, entry)| entry));
                return out;
            }
        }
    }
}

/// Kafka's authorized-operations bit field for a group: the operations
/// `AclEntry.supportedOperations` lists for groups.
fn group_authorized_operations(authz: &dyn Authorize, group: &str) -> i32 {
    // AclEntry.supportedOperations(GROUP): groups have configs since KIP-848.
    [
        Operation::Read,
        Operation::Describe,
        Operation::Delete,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
    ]
    .into_iter()
    .filter(|op| authz.allowed(*op, ResourceType::Group, group))
    .fold(0, |bits, op| bits | (1 << op.code()))
}

/// Topics no client may add to a transaction (Kafka's `Topic.isInternal`).
fn is_internal_topic(name: &str) -> bool {
    matches!(
        name,
        "__consumer_offsets" | "__transaction_state" | "__share_group_state"
    )
}

fn forward_partial<T: Encodable>(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    body: &T,
    merge: Merge,
) -> Result<Plan, ProtocolError> {
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(api, version, header, body)?,
        merge: super::Merge::Groups(merge),
    })
}

fn then_merge(merge: Merge) -> Plan {
    Plan::ForwardThenMerge(super::Merge::Groups(merge))
}

fn read_response<T: Decodable>(
    api: ApiKey,
    version: i16,
    payload: Bytes,
) -> Result<(ResponseHeader, T), ProtocolError> {
    let (header, body) = split_response(api, version, payload)?;
    Ok((header, decode_body(api, version, body)?))
}
