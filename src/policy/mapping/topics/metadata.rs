//! Metadata, as KafkaApis.handleTopicMetadataRequest, and DescribeCluster's authorized operations.
//!
//! - All topics (`topics` null, or empty at v0): forwarded; the topics the session may not DESCRIBE
//!   are left out of the response silently.
//! - Named topics without DESCRIBE: error 29, zero topic id, no partitions, not internal, whether
//!   or not the topic exists; their names are not forwarded. By id (v12+): an id the cluster does
//!   not know gets 100, a known one without DESCRIBE 29; both echo the id with a null name. A
//!   request naming any topic by id is answered by id only, as Kafka does: its name-only entries
//!   get no answer and names beside ids are ignored. A topic named twice is answered once.
//! - Auto-creation: Kafka creates a missing topic only with CREATE on the cluster or the topic, and
//!   answers 29 otherwise. When a DESCRIBE-able topic lacks CREATE (v4+), the request is forwarded
//!   with `allow_auto_topic_creation` false and an upstream 3 for such a topic becomes 29. This
//!   assumes the cluster's `auto.create.topics.enable` is on (Kafka's default; with it off Kafka
//!   answers 3), and in a request mixing such topics with missing topics the session may create,
//!   the latter are not auto-created either. v0-3 cannot turn auto-creation off: a topic without
//!   CREATE that the gateway has not seen (no known id) is answered 29 and not forwarded.
//! - `include_*_authorized_operations`: recomputed for the session (the upstream computed them for
//!   the gateway's own principal). Entries the gateway answers keep Kafka's i32::MIN.
//! - Every topic denied: forwarded with an empty topic list so the response still carries the
//!   brokers, cluster id and controller, as Kafka's does; a Metadata response without brokers is
//!   ignored by the Java client, which would then never see the 29s. At v0 an empty list means all
//!   topics (and names cannot be sent: v0 always auto-creates), so the upstream's answer lists
//!   every topic, and the splice keeps none of them: the client sees its 29s and the brokers.
//!
//! Broker addresses are left as the upstream sent them: the session rewrites them afterwards.
//!
//! The request is read from its bytes ([`MetadataRequestWire`]), never decoded into a struct per
//! topic: a request of 20,000 names costs its own bytes plus a 4-byte offset per distinct topic,
//! the forwarded part is spliced from the client's bytes, the gateway's answers are encoded as
//! they are decided, and the upstream's response is filtered one topic at a time, the topics it
//! keeps sent from the upstream's bytes. The gateway's answers follow the upstream's topics, where
//! KafkaApis puts the unauthorized ones (clients match topics by name or id).

use std::cell::OnceCell;
use std::hash::{BuildHasher, RandomState};

use bytes::{BufMut, Bytes, BytesMut};
use hashbrown::hash_table::{Entry, HashTable};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, TopicName};
use kafka_protocol::protocol::Encodable;
use uuid::Uuid;

use super::{
    authorized_operations, cluster_allowed, cluster_operations, code, resolve, topic_allowed,
};
use crate::policy::mapping::{list_api, Authorize, Merge, Plan, TopicIds};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::{split_response, ProtocolError};
use crate::protocol::frame::{Parts, LEN_PREFIX};
use crate::protocol::metadata::{
    brokers_end, response_tail, response_topic_at, topics_layout, MetadataRequestWire, TopicEntry,
};
use crate::protocol::wire::{put_count, WireError};

/// Metadata v4 has `allow_auto_topic_creation`.
pub(crate) const FIRST_AUTO_CREATE_FLAG_VERSION: i16 = 4;
/// Metadata v12 may name topics by id only.
const FIRST_BY_ID_VERSION: i16 = 12;

/// The de-duplication table holds each distinct topic's offset in the request with its decision
/// in the top bits: 4 bytes (plus a control byte) per distinct topic. The session refuses a request
/// whose [`planning_bytes`](crate::protocol::metadata::planning_bytes) exceed its decoded-size
/// budget before it gets here.
const DECISION_SHIFT: u32 = 29;
const OFFSET_MASK: u32 = (1 << DECISION_SHIFT) - 1;

/// How the upstream's Metadata response is filtered and completed.
#[derive(Debug)]
pub struct MetadataMerge {
    version: i16,
    /// `None`: an all-topics request; only the topics the session may DESCRIBE are kept.
    named: Option<Named>,
    cluster_ops: bool,
    topic_ops: bool,
}

/// What a request naming topics keeps of the upstream's answer, and what the gateway adds to it.
#[derive(Debug)]
struct Named {
    /// Keys the hashes below are made with (random per request: not predictable by a client).
    hasher: RandomState,
    /// Hashes of the forwarded topics' keys, sorted: an upstream topic is kept only if it was
    /// asked for, and once. (tansu reads an empty list as "every topic".)
    forwarded: Vec<u64>,
    /// Hashes of the names forwarded with auto-creation off on the session's behalf: an upstream
    /// 3 for one of them becomes 29.
    no_create: Vec<u64>,
    /// The gateway's own answers, encoded as response topics at the request's version.
    local: Bytes,
    local_count: usize,
}

/// The decision for one requested topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Forward = 0,
    /// Forward with auto-creation off; 3 from upstream becomes 29.
    ForwardNoCreate = 1,
    /// Answer 29 by name (no DESCRIBE, or v0-3 creation the session may not do).
    DeniedName = 2,
    /// Answer 29 with the id echoed and a null name.
    DeniedId = 3,
    /// Answer 100 with the id echoed.
    UnknownId = 4,
}

impl Decision {
    fn pack(self, at: u32) -> u32 {
        at | (self as u32) << DECISION_SHIFT
    }

    fn unpack(packed: u32) -> (u32, Decision) {
        let d = match packed >> DECISION_SHIFT {
            0 => Decision::Forward,
            1 => Decision::ForwardNoCreate,
            2 => Decision::DeniedName,
            3 => Decision::DeniedId,
            _ => Decision::UnknownId,
        };
        (packed & OFFSET_MASK, d)
    }

    fn forwards(self) -> bool {
        matches!(self, Decision::Forward | Decision::ForwardNoCreate)
    }
}

/// What identifies a requested topic: its name, or its id (by-id requests, or a null name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TopicKey<'a> {
    Name(&'a str),
    Id(Uuid),
}

/// The key Kafka reads an entry by (KafkaApis `useTopicId`: a request naming any topic by id is
/// answered by id alone, so name-only entries get no answer (`None`) and a name beside an id is
/// ignored).
fn key_of<'a>(t: &TopicEntry<'a>, by_id: bool) -> Option<TopicKey<'a>> {
    if by_id {
        return (!t.topic_id.is_nil()).then_some(TopicKey::Id(t.topic_id));
    }
    Some(match t.name {
        Some(n) => TopicKey::Name(n),
        None => TopicKey::Id(t.topic_id),
    })
}

pub(in crate::policy::mapping) fn metadata(
    wire: &MetadataRequestWire,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    let version = wire.version();
    let malformed = |e: WireError| ProtocolError::Decode {
        api: ApiKey::Metadata,
        version,
        what: "request body",
        message: e.to_string(),
    };
    let cluster_ops = (8..=10).contains(&version) && wire.include_cluster_authorized_operations();
    let topic_ops = version >= 8 && wire.include_topic_authorized_operations();
    let requested = match wire.topic_count() {
        Some(n) if !(version == 0 && n == 0) => n,
        _ => {
            return Ok(Plan::ForwardThenMerge(Merge::Metadata(MetadataMerge {
                version,
                named: None,
                cluster_ops,
                topic_ops,
            })));
        }
    };
    if wire.payload_len() > OFFSET_MASK as usize {
        return Err(malformed(WireError {
            at: 0,
            what: "request too large to plan",
        }));
    }
    let topics = || wire.topics().into_iter().flatten();
    let mut by_id = false;
    if version >= FIRST_BY_ID_VERSION {
        for t in topics() {
            if !t.map_err(malformed)?.topic_id.is_nil() {
                by_id = true;
                break;
            }
        }
    }

    // CREATE on the cluster is asked at most once, and only if some topic lacks topic CREATE.
    let cluster_create = OnceCell::new();
    let may_create = |name: &str| {
        topic_allowed(authz, Operation::Create, name)
            || *cluster_create.get_or_init(|| cluster_allowed(authz, Operation::Create))
    };
    let decide = |t: &TopicEntry<'_>| -> Result<Decision, ProtocolError> {
        let name = if by_id { None } else { t.name };
        let Some(name) = name else {
            if version < FIRST_BY_ID_VERSION {
                return Err(malformed(WireError {
                    at: t.at as usize,
                    what: "null topic name before v12",
                }));
            }
            return Ok(match resolve(ids, t.topic_id) {
                None => Decision::UnknownId,
                Some(n) if !topic_allowed(authz, Operation::Describe, &n) => Decision::DeniedId,
                Some(_) => Decision::Forward,
            });
        };
        if !topic_allowed(authz, Operation::Describe, name) {
            return Ok(Decision::DeniedName);
        }
        if !wire.allow_auto_topic_creation() || may_create(name) {
            return Ok(Decision::Forward);
        }
        Ok(if version >= FIRST_AUTO_CREATE_FLAG_VERSION {
            Decision::ForwardNoCreate
        } else if ids.id_of(name).is_some() {
            Decision::Forward
        } else {
            Decision::DeniedName
        })
    };

    // Kafka reads the list as a set: each distinct topic is decided once, at its first entry.
    let state = RandomState::new();
    let key_at = |at: u32| {
        wire.entry_at(at)
            .ok()
            .and_then(|e| key_of(&e, by_id).map(|k| (k, e)))
    };
    let rehash = |p: &u32| key_at(p & OFFSET_MASK).map_or(0, |(k, _)| state.hash_one(k));
    // Sized for every entry at once: growing it step by step held the old and new tables.
    let mut table: HashTable<u32> = HashTable::with_capacity(requested);
    let (mut forwards, mut no_creates) = (0, 0);
    for t in topics() {
        let t = t.map_err(malformed)?;
        let Some(k) = key_of(&t, by_id) else {
            continue;
        };
        let same = |p: &u32| key_at(p & OFFSET_MASK).is_some_and(|(o, _)| o == k);
        if let Entry::Vacant(slot) = table.entry(state.hash_one(k), same, rehash) {
            let d = decide(&t)?;
            forwards += usize::from(d.forwards());
            no_creates += usize::from(d == Decision::ForwardNoCreate);
            slot.insert(d.pack(t.at));
        }
    }
    let all_forward = forwards == table.len() && no_creates == 0;
    let distinct = table.len();
    // An empty list is "no topics" to Kafka but "every topic" to some brokers (tansu): the merge
    // keeps only what was asked for, so no broker's reading can widen the answer.
    if all_forward && !cluster_ops && !topic_ops && distinct > 0 && distinct == requested {
        return Ok(Plan::Forward);
    }

    // The decision of the entry `t` if it is the first of its topic.
    let first = |t: &TopicEntry<'_>| -> Option<Decision> {
        let k = key_of(t, by_id)?;
        let same = |p: &u32| key_at(p & OFFSET_MASK).is_some_and(|(o, _)| o == k);
        let (at, d) = Decision::unpack(*table.find(state.hash_one(k), same)?);
        (at == t.at).then_some(d)
    };
    // The gateway's own answers, encoded at their exact size (names are views into the request):
    // they wait for the upstream's response beside it.
    let answer = |t: &TopicEntry<'_>, d: Decision| match d {
        Decision::Forward | Decision::ForwardNoCreate => None,
        Decision::DeniedName => Some(denied_topic(
            code::TOPIC_AUTHORIZATION_FAILED,
            wire.name_view(t).map(TopicName),
            Uuid::nil(),
        )),
        Decision::DeniedId => Some(denied_topic(
            code::TOPIC_AUTHORIZATION_FAILED,
            None,
            t.topic_id,
        )),
        Decision::UnknownId => Some(denied_topic(code::UNKNOWN_TOPIC_ID, None, t.topic_id)),
    };
    let encoding = |e: anyhow::Error| ProtocolError::Encode {
        api: ApiKey::Metadata,
        version,
        message: e.to_string(),
    };
    let mut local_size = 0;
    for t in topics() {
        let t = t.map_err(malformed)?;
        if let Some(a) = first(&t).and_then(|d| answer(&t, d)) {
            local_size += a.compute_size(version).map_err(encoding)?;
        }
    }
    let hasher = RandomState::new();
    let mut local = BytesMut::with_capacity(local_size);
    let mut local_count = 0;
    let mut forwarded = Vec::with_capacity(forwards);
    let mut no_create = Vec::with_capacity(no_creates);
    for t in topics() {
        let t = t.map_err(malformed)?;
        let (Some(d), Some(k)) = (first(&t), key_of(&t, by_id)) else {
            continue;
        };
        match answer(&t, d) {
            Some(a) => {
                a.encode(&mut local, version).map_err(encoding)?;
                local_count += 1;
            }
            None => {
                forwarded.push(hasher.hash_one(k));
                if d == Decision::ForwardNoCreate {
                    no_create.push(hasher.hash_one(k));
                }
            }
        }
    }
    forwarded.sort_unstable();
    no_create.sort_unstable();
    let changed = by_id || forwarded.len() != distinct || !no_create.is_empty();
    let request = if changed {
        let allow_auto = wire.allow_auto_topic_creation() && no_create.is_empty();
        let keep = |t: &TopicEntry<'_>| first(t).is_some_and(Decision::forwards);
        Some(wire.splice(keep, by_id, allow_auto).map_err(malformed)?)
    } else {
        None
    };
    drop(table);
    let merge = Merge::Metadata(MetadataMerge {
        version,
        named: Some(Named {
            hasher,
            forwarded,
            no_create,
            local: local.freeze(),
            local_count,
        }),
        cluster_ops,
        topic_ops,
    });
    Ok(match request {
        Some(request) => Plan::ForwardPartial { request, merge },
        None => Plan::ForwardThenMerge(merge),
    })
}

/// Kafka's `metadataResponseTopic(error, name, id, isInternal = false, no partitions)`; its
/// authorized operations stay at the schema default (i32::MIN).
fn denied_topic(code: i16, name: Option<TopicName>, id: Uuid) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name)
        .with_topic_id(id)
        .with_is_internal(false)
        .with_partitions(Vec::new())
}

impl Named {
    /// Whether the upstream topic `t` was asked for and not answered yet (marking it answered).
    fn take(&self, t: &MetadataResponseTopic, answered: &mut [bool]) -> bool {
        let keys = [
            t.name.as_ref().map(|n| TopicKey::Name(n.0.as_str())),
            (!t.topic_id.is_nil()).then_some(TopicKey::Id(t.topic_id)),
        ];
        for k in keys.into_iter().flatten() {
            if let Ok(i) = self.forwarded.binary_search(&self.hasher.hash_one(k)) {
                if !std::mem::replace(&mut answered[i], true) {
                    return true;
                }
            }
        }
        false
    }

    fn no_create(&self, name: &str) -> bool {
        self.no_create
            .binary_search(&self.hasher.hash_one(TopicKey::Name(name)))
            .is_ok()
    }
}

/// What the merge does with one upstream topic.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Drop,
    Copy,
    Change,
}

impl MetadataMerge {
    /// The upstream's response (payload: header and body, no length prefix) filtered and
    /// completed, as one frame.
    pub(crate) fn apply(
        self,
        payload: Bytes,
        authz: &dyn Authorize,
    ) -> Result<Bytes, ProtocolError> {
        let version = self.version;
        let api = ApiKey::Metadata;
        let (header, body) = split_response(api, version, payload)?;
        let brokers_end = brokers_end(version, &body).map_err(|e| malformed(version, e))?;
        let mut head = BytesMut::with_capacity(LEN_PREFIX + 16 + brokers_end);
        head.put_i32(0);
        header
            .encode(&mut head, api.response_header_version(version))
            .map_err(|e| encoding(version, e))?;
        head.extend_from_slice(&body[..brokers_end]);
        Ok(self
            .apply_split(&head, body.slice(brokers_end..), authz)?
            .joined())
    }

    /// The response filtered and completed from its two parts as the broker rewriting leaves
    /// them ([`crate::protocol::rewrite::Rewritten::parts`]): `head` is the frame up to the end
    /// of the brokers (length prefix, header, throttle time, brokers), `rest` the body from the
    /// cluster id on, already bounds-checked. Topics kept unchanged are sent from `rest` as they
    /// came; only the topic count, changed topics, the gateway's own answers and the fields after
    /// the topics are new bytes.
    pub(crate) fn apply_split(
        self,
        head: &[u8],
        rest: Bytes,
        authz: &dyn Authorize,
    ) -> Result<Parts, ProtocolError> {
        let MetadataMerge {
            version,
            named,
            cluster_ops,
            topic_ops,
        } = self;
        let malformed = |e: WireError| malformed(version, e);
        let (topics_count, (count, first)) = topics_layout(version, &rest, 0).map_err(malformed)?;

        // First pass: which topics stay, which change; where each ends.
        let mut answered = vec![false; named.as_ref().map_or(0, |n| n.forwarded.len())];
        let mut plan: Vec<(Keep, u32)> = Vec::with_capacity(count);
        let mut at = first;
        for _ in 0..count {
            let (t, end) = response_topic_at(version, &rest, at).map_err(malformed)?;
            let keep = match &named {
                None => t
                    .name
                    .as_ref()
                    .is_some_and(|n| topic_allowed(authz, Operation::Describe, n)),
                Some(named) => named.take(&t, &mut answered),
            };
            let no_create = |n: &TopicName| named.as_ref().is_some_and(|x| x.no_create(n));
            let change = topic_ops
                || (t.error_code == code::UNKNOWN_TOPIC_OR_PARTITION
                    && t.name.as_ref().is_some_and(no_create));
            let keep = match (keep, change) {
                (false, _) => Keep::Drop,
                (true, false) => Keep::Copy,
                (true, true) => Keep::Change,
            };
            plan.push((keep, end as u32));
            at = end;
        }
        drop(answered);
        let topics_end = at;
        let (ops_at, end) = response_tail(version, &rest, topics_end).map_err(malformed)?;

        // Second pass: the new frame. New bytes collect in `fresh`; a run of kept topics long
        // enough to be worth a part of its own is sent from `rest` (short ones are copied, so
        // the parts stay few whatever the pattern of kept and dropped topics).
        let (local, local_count) = named
            .as_ref()
            .map_or((Bytes::new(), 0), |n| (n.local.clone(), n.local_count));
        let kept = plan.iter().filter(|(k, _)| *k != Keep::Drop).count();
        let mut parts = Parts::default();
        let mut fresh = BytesMut::with_capacity(head.len() + topics_count + 8);
        fresh.extend_from_slice(head);
        fresh.extend_from_slice(&rest[..topics_count]);
        put_count(&mut fresh, version >= 9, kept + local_count).map_err(malformed)?;
        let mut run = first..first;
        let flush_run =
            |run: &mut std::ops::Range<usize>, fresh: &mut BytesMut, parts: &mut Parts| {
                if run.len() >= MIN_PART {
                    parts.push(fresh.split().freeze());
                    parts.push(rest.slice(run.clone()));
                } else {
                    fresh.extend_from_slice(&rest[run.clone()]);
                }
                *run = run.end..run.end;
            };
        let mut at = first;
        for (keep, end) in plan {
            let end = end as usize;
            match keep {
                Keep::Copy if run.end == at => run.end = end,
                Keep::Copy => {
                    flush_run(&mut run, &mut fresh, &mut parts);
                    run = at..end;
                }
                Keep::Drop => {}
                Keep::Change => {
                    flush_run(&mut run, &mut fresh, &mut parts);
                    let (mut t, _) = response_topic_at(version, &rest, at).map_err(malformed)?;
                    let no_create = named
                        .as_ref()
                        .zip(t.name.as_ref())
                        .is_some_and(|(n, name)| n.no_create(name));
                    match t.name.clone() {
                        Some(name)
                            if t.error_code == code::UNKNOWN_TOPIC_OR_PARTITION && no_create =>
                        {
                            t = denied_topic(
                                code::TOPIC_AUTHORIZATION_FAILED,
                                Some(name),
                                Uuid::nil(),
                            );
                        }
                        Some(name) if topic_ops => {
                            t.topic_authorized_operations =
                                authorized_operations(authz, ResourceType::Topic, &name);
                        }
                        _ => {}
                    }
                    t.encode(&mut fresh, version)
                        .map_err(|e| encoding(version, e))?;
                }
            }
            at = end;
        }
        flush_run(&mut run, &mut fresh, &mut parts);
        if local.len() >= MIN_PART {
            parts.push(fresh.split().freeze());
            parts.push(local);
        } else {
            fresh.extend_from_slice(&local);
        }
        let tail = &rest[topics_end..end];
        let tail_at = fresh.len();
        fresh.extend_from_slice(tail);
        if let (true, Some(p)) = (cluster_ops, ops_at) {
            let p = tail_at + (p - topics_end);
            fresh[p..p + 4].copy_from_slice(&cluster_operations(authz).to_be_bytes());
        }
        parts.push(fresh.freeze());
        let mut parts = parts.into_vec();
        let len = parts.iter().map(Bytes::len).sum::<usize>() - LEN_PREFIX;
        let len = i32::try_from(len)
            .map_err(|_| encoding(version, anyhow::anyhow!("response over 2 GiB")))?;
        // The length goes at the front of the first part, which is always new bytes (the head
        // and the count, copied if the rest of its buffer went out as other parts).
        let mut first_part = BytesMut::from(std::mem::take(&mut parts[0]));
        first_part[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
        parts[0] = first_part.freeze();
        Ok(Parts::from_vec(parts))
    }
}

/// A run of unchanged topics shorter than this is copied into the new bytes rather than sent as
/// a part of its own.
const MIN_PART: usize = 512;

fn malformed(version: i16, e: WireError) -> ProtocolError {
    ProtocolError::Decode {
        api: ApiKey::Metadata,
        version,
        what: "response body",
        message: e.to_string(),
    }
}

fn encoding(version: i16, e: anyhow::Error) -> ProtocolError {
    ProtocolError::Encode {
        api: ApiKey::Metadata,
        version,
        message: e.to_string(),
    }
}

/// DescribeCluster (v0 at the gateway; no permission needed, as in Kafka): forwarded, and
/// `cluster_authorized_operations` recomputed for the session when asked for.
pub(in crate::policy::mapping) fn describe_cluster(
    version: i16,
    req: &DescribeClusterRequest,
) -> Plan {
    if req.include_cluster_authorized_operations {
        list_api::rewrite(
            ApiKey::DescribeCluster,
            version,
            |r: &mut kafka_protocol::messages::DescribeClusterResponse, authz, _| {
                r.cluster_authorized_operations = cluster_operations(authz);
            },
            None,
        )
    } else {
        Plan::Forward
    }
}
