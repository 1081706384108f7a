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

use std::collections::HashSet;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, MetadataRequest, MetadataResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{
    authorized_operations, cluster_allowed, cluster_operations, code, encode_request_with_header,
    resolve, rewrite, topic_allowed, Key, Keyed, Merge, Slot, Splice,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::ProtocolError;

/// Metadata v4 has `allow_auto_topic_creation`.
const FIRST_AUTO_CREATE_FLAG_VERSION: i16 = 4;
/// Metadata v12 may name topics by id only.
const FIRST_BY_ID_VERSION: i16 = 12;

impl Keyed for MetadataResponseTopic {
    fn keys(&self, _version: i16) -> [Option<Key>; 2] {
        [
            self.name.as_ref().map(|n| Key::Name(n.0.clone())),
            (!self.topic_id.is_nil()).then_some(Key::Id(self.topic_id)),
        ]
    }
}

/// How the upstream's Metadata response is filtered and completed.
#[derive(Debug)]
pub struct MetadataMerge {
    version: i16,
    /// All-topics request: keep only the topics the session may DESCRIBE.
    filter_all: bool,
    /// Named request: the client's topics in order, the denied ones answered locally.
    slots: Option<Vec<Slot<MetadataResponseTopic>>>,
    /// Forwarded with auto-creation off on the session's behalf: an upstream 3 becomes 29.
    no_create: Vec<StrBytes>,
    cluster_ops: bool,
    topic_ops: bool,
}

/// The decision for one requested topic.
enum Decision {
    Forward,
    /// Forward with auto-creation off; 3 from upstream becomes 29.
    ForwardNoCreate,
    /// Answer 29 by name (no DESCRIBE, or v0-3 creation the session may not do).
    DeniedName,
    /// Answer 29 with the id echoed and a null name.
    DeniedId(Uuid),
    /// Answer 100 with the id echoed.
    UnknownId(Uuid),
}

pub(super) fn metadata(
    version: i16,
    header: &RequestHeader,
    req: &MetadataRequest,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    let cluster_ops = (8..=10).contains(&version) && req.include_cluster_authorized_operations;
    let topic_ops = version >= 8 && req.include_topic_authorized_operations;
    let requested = match &req.topics {
        Some(t) if !(version == 0 && t.is_empty()) => t,
        _ => {
            return Ok(Plan::ForwardThenMerge(super::super::Merge::Topics(
                Merge::Metadata(MetadataMerge {
                    version,
                    filter_all: true,
                    slots: None,
                    no_create: Vec::new(),
                    cluster_ops,
                    topic_ops,
                }),
            )));
        }
    };

    // A request naming any topic by id is answered by id alone (KafkaApis: `useTopicId`): entries
    // naming a topic only by name are then not answered at all, and a name beside an id is ignored.
    // Kafka also reads the list as a set: a topic named twice is answered once.
    let by_id = version >= FIRST_BY_ID_VERSION && requested.iter().any(|t| !t.topic_id.is_nil());
    let topics = distinct_topics(requested, by_id);

    // CREATE on the cluster is asked at most once, and only if some topic lacks topic CREATE.
    let cluster_create = std::cell::OnceCell::new();
    let may_create = |name: &str| {
        topic_allowed(authz, Operation::Create, name)
            || *cluster_create.get_or_init(|| cluster_allowed(authz, Operation::Create))
    };
    let decide = |t: &Requested<'_>| -> Result<Decision, ProtocolError> {
        let Some(name) = t.name else {
            if version < FIRST_BY_ID_VERSION {
                return Err(ProtocolError::Decode {
                    api: ApiKey::Metadata,
                    version,
                    what: "request body",
                    message: "null topic name before v12".into(),
                });
            }
            return Ok(match resolve(ids, t.topic_id) {
                None => Decision::UnknownId(t.topic_id),
                Some(n) if !topic_allowed(authz, Operation::Describe, &n) => {
                    Decision::DeniedId(t.topic_id)
                }
                Some(_) => Decision::Forward,
            });
        };
        if !topic_allowed(authz, Operation::Describe, name) {
            return Ok(Decision::DeniedName);
        }
        if !req.allow_auto_topic_creation || may_create(name) {
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

    let mut all_forward = true;
    for t in &topics {
        if !matches!(decide(t)?, Decision::Forward) {
            all_forward = false;
            break;
        }
    }
    // An empty list is "no topics" to Kafka but "every topic" to some brokers (tansu): the merge
    // below keeps only what was asked for, so no broker's reading can widen the answer.
    if all_forward
        && !cluster_ops
        && !topic_ops
        && !topics.is_empty()
        && topics.len() == requested.len()
    {
        return Ok(Plan::Forward);
    }

    let mut slots = Vec::with_capacity(topics.len());
    let mut no_create = Vec::new();
    let mut forwarded_topics = Vec::new();
    for t in &topics {
        let slot = match decide(t)? {
            d @ (Decision::Forward | Decision::ForwardNoCreate) => {
                if let (Decision::ForwardNoCreate, Some(n)) = (&d, t.name) {
                    no_create.push(n.0.clone());
                }
                forwarded_topics.push(t.entry.clone().with_name(t.name.cloned()));
                Slot::Upstream(match t.name {
                    Some(n) => Key::Name(n.0.clone()),
                    None => Key::Id(t.topic_id),
                })
            }
            Decision::DeniedName => {
                let name = t.name.cloned();
                Slot::Local(denied_topic(
                    code::TOPIC_AUTHORIZATION_FAILED,
                    name,
                    Uuid::nil(),
                ))
            }
            Decision::DeniedId(id) => {
                Slot::Local(denied_topic(code::TOPIC_AUTHORIZATION_FAILED, None, id))
            }
            Decision::UnknownId(id) => Slot::Local(denied_topic(code::UNKNOWN_TOPIC_ID, None, id)),
        };
        slots.push(slot);
    }

    let merge = MetadataMerge {
        version,
        filter_all: false,
        slots: Some(slots),
        no_create,
        cluster_ops,
        topic_ops,
    };
    let changed = by_id || forwarded_topics.len() != topics.len() || !merge.no_create.is_empty();
    if !changed {
        return Ok(Plan::ForwardThenMerge(super::super::Merge::Topics(
            Merge::Metadata(merge),
        )));
    }
    let mut forwarded = req.clone();
    forwarded.topics = Some(forwarded_topics);
    if !merge.no_create.is_empty() {
        forwarded.allow_auto_topic_creation = false;
    }
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(ApiKey::Metadata, version, header, &forwarded)?,
        merge: super::super::Merge::Topics(Merge::Metadata(merge)),
    })
}

/// One requested topic as Kafka reads it: by id alone when the request names any topic by id.
struct Requested<'a> {
    entry: &'a MetadataRequestTopic,
    name: Option<&'a kafka_protocol::messages::TopicName>,
    topic_id: Uuid,
}

/// The requested topics Kafka answers (KafkaApis `useTopicId`: a request naming any topic by id
/// is answered by id alone, so name-only entries get no answer and a name beside an id is
/// ignored), each once (Kafka reads the list as a set), first occurrences in request order.
///
/// Memory stays a few bytes per topic (borrowed entries and a sorted index, no copies and no hash
/// set of owned names): a request of many topics may decode to about twice its size, and this must
/// not add a third.
fn distinct_topics(requested: &[MetadataRequestTopic], by_id: bool) -> Vec<Requested<'_>> {
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum KeyRef<'a> {
        Name(&'a [u8]),
        Id(Uuid),
    }
    let all: Vec<Requested<'_>> = requested
        .iter()
        .filter(|t| !by_id || !t.topic_id.is_nil())
        .map(|t| Requested {
            entry: t,
            name: if by_id { None } else { t.name.as_ref() },
            topic_id: t.topic_id,
        })
        .collect();
    fn key<'a>(t: &Requested<'a>) -> KeyRef<'a> {
        match t.name {
            Some(n) => KeyRef::Name(n.0.as_bytes()),
            None => KeyRef::Id(t.topic_id),
        }
    }
    let mut order: Vec<u32> = (0..all.len() as u32).collect();
    // Stable: among equal keys the first occurrence comes first and is the one kept.
    order.sort_by(|&a, &b| key(&all[a as usize]).cmp(&key(&all[b as usize])));
    let mut keep = vec![false; all.len()];
    for (i, &at) in order.iter().enumerate() {
        keep[at as usize] = i == 0 || key(&all[order[i - 1] as usize]) != key(&all[at as usize]);
    }
    drop(order);
    let mut keep = keep.into_iter();
    let mut out = all;
    out.retain(|_| keep.next().unwrap_or(false));
    out
}

/// Kafka's `metadataResponseTopic(error, name, id, isInternal = false, no partitions)`; its
/// authorized operations stay at the schema default (i32::MIN).
fn denied_topic(
    code: i16,
    name: Option<kafka_protocol::messages::TopicName>,
    id: Uuid,
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name)
        .with_topic_id(id)
        .with_is_internal(false)
        .with_partitions(Vec::new())
}

impl MetadataMerge {
    pub(super) fn apply(
        self,
        payload: bytes::Bytes,
        authz: &dyn Authorize,
    ) -> Result<bytes::Bytes, ProtocolError> {
        let MetadataMerge {
            version,
            filter_all,
            slots,
            no_create,
            cluster_ops,
            topic_ops,
        } = self;
        let no_create: HashSet<StrBytes> = no_create.into_iter().collect();
        rewrite(
            ApiKey::Metadata,
            version,
            payload,
            |r: &mut MetadataResponse| {
                if filter_all {
                    r.topics.retain(|t| {
                        t.name
                            .as_ref()
                            .is_some_and(|n| topic_allowed(authz, Operation::Describe, n))
                    });
                }
                for t in r.topics.iter_mut() {
                    let Some(name) = t.name.clone() else {
                        continue;
                    };
                    if t.error_code == code::UNKNOWN_TOPIC_OR_PARTITION
                        && no_create.contains(&name.0)
                    {
                        *t =
                            denied_topic(code::TOPIC_AUTHORIZATION_FAILED, Some(name), Uuid::nil());
                    } else if topic_ops {
                        t.topic_authorized_operations =
                            authorized_operations(authz, ResourceType::Topic, &name);
                    }
                }
                if let Some(slots) = slots {
                    r.topics = Splice { version, slots }.apply(std::mem::take(&mut r.topics));
                }
                if cluster_ops {
                    r.cluster_authorized_operations = cluster_operations(authz);
                }
            },
        )
    }
}

/// DescribeCluster (v0 at the gateway; no permission needed, as in Kafka): forwarded, and
/// `cluster_authorized_operations` recomputed for the session when asked for.
pub(super) fn describe_cluster(version: i16, req: &DescribeClusterRequest) -> Plan {
    if req.include_cluster_authorized_operations {
        Plan::ForwardThenMerge(super::super::Merge::Topics(Merge::DescribeCluster {
            version,
        }))
    } else {
        Plan::Forward
    }
}
