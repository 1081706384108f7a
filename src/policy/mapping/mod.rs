//! Request-to-check mapping, following Kafka's KafkaApis: which permissions each request needs, what
//! part of it may be forwarded, and how the answer for the denied part is merged into the response.
//!
//! Pure functions over decoded messages: no sockets, no policy files. The session hands in an
//! [`Authorize`] bound to the client's principal and address, and a [`TopicIds`] map.

pub(crate) mod acls;
pub mod groups;
pub(crate) mod list_api;
pub mod topics;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use uuid::Uuid;

use super::{Operation, ResourceType};
use crate::protocol::codec::{self, ProtocolError, Request};
use crate::protocol::frame::{Parts, LEN_PREFIX};

/// Kafka error codes the mappings answer with.
pub(crate) mod code {
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_REQUEST: i16 = 42;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
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

/// The decisions available to the mapping, for one session (principal + client address).
pub trait Authorize {
    /// May the session do `op` on the resource `rtype`/`name`? (For the cluster, `name` is
    /// `kafka-cluster`.)
    fn allowed(&self, op: Operation, rtype: ResourceType, name: &str) -> bool;
    /// Kafka's `authorizeByResourceType`: is `op` allowed on at least one resource of `rtype`, with no
    /// DENY that covers every such resource? (KIP-679: WRITE on any topic allows idempotent producing.)
    fn allowed_any(&self, op: Operation, rtype: ResourceType) -> bool;
    /// Whether the resource is reserved (the audit topic): a cluster-level grant that would reach
    /// every topic (Create, Delete on the cluster) does not reach it.
    fn reserved(&self, rtype: ResourceType, name: &str) -> bool {
        let _ = (rtype, name);
        false
    }
    /// The message of the safeguard (`s` line) that refuses `change`, an element the ACLs
    /// allowed: it is answered POLICY_VIOLATION (44) and not forwarded. `None` when every
    /// safeguard of the session's principal passes, or there are none.
    fn safeguard(&self, change: &crate::policy::safeguards::Change<'_>) -> Option<String> {
        let _ = change;
        None
    }
    /// The policy as Kafka ACL bindings, for DescribeAcls; `None` when the gateway authorizes
    /// nothing (`allow_all`), which Kafka answers as a broker without an authorizer.
    fn acl_bindings(&self) -> Option<Vec<crate::policy::migrate::AclBinding>> {
        None
    }
}

/// The gateway without a policy (`allow_all`): everything is allowed and there is no authorizer,
/// so the ACL APIs get Kafka's answers for a broker without one.
pub struct NoAuthorizer;

impl Authorize for NoAuthorizer {
    fn allowed(&self, _: Operation, _: ResourceType, _: &str) -> bool {
        true
    }
    fn allowed_any(&self, _: Operation, _: ResourceType) -> bool {
        true
    }
}

/// The checks every mapping makes, by resource type.
fn topic_allowed(authz: &dyn Authorize, op: Operation, name: &str) -> bool {
    authz.allowed(op, ResourceType::Topic, name)
}

fn group_allowed(authz: &dyn Authorize, op: Operation, group: &str) -> bool {
    authz.allowed(op, ResourceType::Group, group)
}

fn cluster_allowed(authz: &dyn Authorize, op: Operation) -> bool {
    authz.allowed(
        op,
        ResourceType::Cluster,
        crate::policy::model::CLUSTER_NAME,
    )
}

/// Topic ids the gateway has learned from upstream Metadata responses.
pub trait TopicIds {
    fn name_of(&self, id: Uuid) -> Option<String>;
    fn id_of(&self, name: &str) -> Option<Uuid>;
    /// Every topic of the cluster's last full listing (none when there has been none).
    fn listing(&self) -> Vec<String> {
        Vec::new()
    }
    /// `check` applied to the name of topic `id`, lent rather than copied (a Fetch v13+ names
    /// every topic by id); `None` for an id the gateway cannot name, the nil id included.
    fn check_name(&self, id: Uuid, check: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        if id.is_nil() {
            return None;
        }
        self.name_of(id).map(|name| check(&name))
    }
}

/// What to do with one request after authorization.
#[derive(Debug)]
pub enum Plan {
    /// Everything is allowed: forward the original bytes, pass the response through unchanged.
    Forward,
    /// Forward the original bytes, but the response must be adjusted (filtered or completed) by `merge`.
    ForwardThenMerge(Merge),
    /// Forward this re-encoded request (length prefix included) holding only the allowed part, and
    /// merge the denied part's errors into the response.
    ForwardPartial { request: Bytes, merge: Merge },
    /// Nothing may be forwarded: answer the client with this response frame (length prefix included).
    Respond(Bytes),
    /// Kafka closes the connection (e.g. a denied acks=0 Produce, which has no response to carry the
    /// error).
    Close(String),
}

/// Response adjustments: Metadata's (merged from the two parts the broker rewriting leaves it
/// in), every other API's through [`list_api::Complete`].
#[derive(Debug)]
pub enum Merge {
    Metadata(topics::MetadataMerge),
    Complete(Box<dyn list_api::Complete>),
}

impl Merge {
    pub(crate) fn list<L: list_api::ResponseList>(m: list_api::ListMerge<L>) -> Merge {
        Merge::Complete(Box::new(m))
    }

    /// Applies the adjustment to the upstream's response payload (length prefix removed, header
    /// included) and returns the new frame (length prefix included).
    pub fn apply(
        self,
        payload: Bytes,
        authz: &dyn Authorize,
        ids: &dyn TopicIds,
    ) -> Result<Bytes, ProtocolError> {
        match self {
            Merge::Metadata(m) => m.apply(payload, authz),
            Merge::Complete(c) => c.complete(payload, authz, ids),
        }
    }

    /// [`Merge::apply`] on a response frame (length prefix included) as the session holds it: a
    /// Metadata response in the two parts the broker rewriting leaves it in
    /// ([`crate::protocol::rewrite::Rewritten::parts`]) is merged without joining them, so the
    /// topics it keeps are sent from the upstream's bytes; anything else is merged whole.
    pub fn apply_parts(
        self,
        frame: Parts,
        authz: &dyn Authorize,
        ids: &dyn TopicIds,
    ) -> Result<Parts, ProtocolError> {
        let mut parts = frame.into_vec();
        match self {
            Merge::Metadata(m) if parts.len() == 2 => {
                let rest = parts.pop().unwrap_or_default();
                let head = parts.pop().unwrap_or_default();
                m.apply_split(&head, rest, authz)
            }
            merge => {
                let whole = Parts::from_vec(parts).joined();
                merge
                    .apply(whole.slice(LEN_PREFIX.min(whole.len())..), authz, ids)
                    .map(Parts::one)
            }
        }
    }

    /// Topic ids in the upstream's response that the merge must name to authorize them (the
    /// assignment a ConsumerGroupHeartbeat answer carries); the session makes sure the gateway
    /// knows them before [`Merge::apply`], which drops ids it still cannot name. They come from
    /// the broker, not the client, so resolving them cannot be turned into an amplification.
    pub fn upstream_topic_ids(&self, payload: &Bytes) -> Vec<Uuid> {
        match self {
            Merge::Complete(c) => c.upstream_topic_ids(payload),
            Merge::Metadata(_) => Vec::new(),
        }
    }
}

/// Authorizes one decoded request. Every API the gateway forwards has a mapping; an API without one
/// is refused (the caller closes the connection).
pub fn plan(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    body: &RequestKind,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Option<Plan>, ProtocolError> {
    if codec::reads_in_place(api, version) {
        // Tests and fuzzing hold decoded requests; the session reads these APIs in place. Such a
        // request is planned from its bytes, as the session plans it: one implementation.
        let frame = codec::encode_request_kind_with_header(api, version, header, body)?;
        let budget = u64::MAX;
        let request = codec::read_request(api, version, frame.slice(LEN_PREFIX..), budget)?;
        return plan_request(api, version, &request, authz, ids);
    }
    use groups::{membership, offsets, txn};
    const NEW: groups::share::Continuing = groups::share::Continuing::Allowed(&[]);
    use topics::{admin, metadata, offsets as topic_offsets};
    use RequestKind as K;
    let (v, h) = (version, header);
    let plan = match body {
        K::ListOffsets(r) => topic_offsets::list_offsets(v, h, r, authz)?,
        K::OffsetForLeaderEpoch(r) => topic_offsets::offset_for_leader_epoch(v, h, r, authz)?,
        K::DeleteRecords(r) => topic_offsets::delete_records(v, h, r, authz)?,
        K::DescribeCluster(r) => metadata::describe_cluster(v, r),
        K::DescribeTopicPartitions(r) => {
            topics::partitions::describe_topic_partitions(v, h, r, authz, ids)?
        }
        K::CreateTopics(r) => admin::create_topics(v, h, r, authz)?,
        K::DeleteTopics(r) => admin::delete_topics(v, h, r, authz, ids)?,
        K::CreatePartitions(r) => admin::create_partitions(v, h, r, authz)?,
        K::DescribeConfigs(r) => admin::describe_configs(v, h, r, authz)?,
        K::AlterConfigs(r) => admin::alter_configs(v, h, r, authz)?,
        K::IncrementalAlterConfigs(r) => admin::incremental_alter_configs(v, h, r, authz)?,
        K::DescribeLogDirs(_) => admin::describe_log_dirs(v, h, authz)?,
        K::ListConfigResources(_) => admin::list_config_resources(v, h, authz)?,
        K::OffsetCommit(r) => offsets::offset_commit(v, h, r, authz)?,
        K::OffsetFetch(r) => offsets::offset_fetch(v, h, r, authz)?,
        K::OffsetDelete(r) => offsets::offset_delete(v, h, r, authz)?,
        K::DescribeShareGroupOffsets(r) => offsets::describe_share_group_offsets(v, h, r, authz)?,
        K::AlterShareGroupOffsets(r) => offsets::alter_share_group_offsets(v, h, r, authz, ids)?,
        K::DeleteShareGroupOffsets(r) => offsets::delete_share_group_offsets(v, h, r, authz)?,
        K::TxnOffsetCommit(r) => offsets::txn_offset_commit(v, h, r, authz)?,
        K::FindCoordinator(r) => membership::find_coordinator(v, h, r, authz)?,
        K::JoinGroup(r) => membership::join_group(v, h, r, authz)?,
        K::SyncGroup(r) => membership::sync_group(v, h, r, authz)?,
        K::Heartbeat(r) => membership::heartbeat(v, h, r, authz)?,
        K::LeaveGroup(r) => membership::leave_group(v, h, r, authz)?,
        K::ConsumerGroupHeartbeat(r) => membership::consumer_group_heartbeat(v, h, r, authz)?,
        K::ShareGroupHeartbeat(r) => groups::share::share_group_heartbeat(v, h, r, authz)?,
        // A share request out of its session's context (tests, fuzzing): the session carries
        // no partitions answered earlier. The session plans these itself (`groups::share`).
        K::ShareFetch(r) => groups::share::share_fetch(v, h, r, authz, ids, NEW)?.plan,
        K::ShareAcknowledge(r) => groups::share::share_acknowledge(v, h, r, authz, ids, NEW)?,
        K::ListGroups(_) => membership::list_groups(v, authz),
        K::InitProducerId(r) => txn::init_producer_id(v, h, r, authz)?,
        K::AddPartitionsToTxn(r) => txn::add_partitions_to_txn(v, h, r, authz, ids)?,
        K::AddOffsetsToTxn(r) => txn::add_offsets_to_txn(v, h, r, authz)?,
        K::EndTxn(r) => txn::end_txn(v, h, r, authz)?,
        K::DescribeProducers(r) => txn::describe_producers(v, h, r, authz)?,
        K::DescribeTransactions(r) => txn::describe_transactions(v, h, r, authz)?,
        K::ListTransactions(_) => txn::list_transactions(v),
        K::DescribeAcls(r) => acls::describe_acls(v, h, r, authz)?,
        K::CreateAcls(r) => acls::create_acls(v, h, r, authz)?,
        K::DeleteAcls(r) => acls::delete_acls(v, h, r, authz)?,
        _ => return Ok(None),
    };
    Ok(Some(plan))
}

/// Authorizes one request as the session holds it ([`Request`]): Metadata from its bytes, every
/// other API decoded ([`plan`]).
pub fn plan_request(
    api: ApiKey,
    version: i16,
    request: &Request,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Option<Plan>, ProtocolError> {
    match request {
        Request::Decoded(r) => plan(api, version, &r.header, &r.body, authz, ids),
        Request::Metadata { wire, .. } => topics::metadata::metadata(wire, authz, ids).map(Some),
        Request::Fetch { header, wire } => topics::fetch::fetch(header, wire, authz, ids).map(Some),
        Request::Produce { header, wire } => {
            topics::produce::produce(header, wire, authz, ids).map(Some)
        }
        Request::Names { header, wire } => {
            use groups::membership::{
                consumer_group_describe, delete_groups, describe_groups, share_group_describe,
            };
            match wire.api() {
                ApiKey::DescribeGroups => describe_groups(header, wire, authz),
                ApiKey::DeleteGroups => delete_groups(header, wire, authz),
                ApiKey::ShareGroupDescribe => share_group_describe(header, wire, authz),
                _ => consumer_group_describe(header, wire, authz),
            }
            .map(Some)
        }
    }
}

/// The topic ids a request names (Produce v13, Fetch v13+, Metadata by id, DeleteTopics v6+, the assignment a
/// ConsumerGroupHeartbeat reports, ShareFetch, ShareAcknowledge). Authorization resolves each to a name through [`TopicIds`]; an
/// id it cannot resolve is UNKNOWN_TOPIC_ID, so the session first asks the cluster about ids the
/// gateway has not seen (a topic created since its last look).
pub fn topic_ids_named(request: &Request) -> Vec<Uuid> {
    // Nil ids (topics named by name) are left out as they are met: a request of 20,000 names
    // would otherwise collect 320 KB of zeros first.
    fn named(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
        ids.filter(|id| !id.is_nil()).collect()
    }
    let body = match request {
        Request::Decoded(r) => &r.body,
        Request::Names { .. } => return Vec::new(),
        Request::Fetch { wire, .. } => {
            let topics = wire.topics().chain(wire.forgotten()).map_while(Result::ok);
            return named(topics.filter_map(|t| t.topic.id()));
        }
        // Produce v13 names topics by id.
        Request::Produce { wire, .. } => {
            return named(
                wire.topics()
                    .map_while(Result::ok)
                    .filter_map(|t| t.topic.id()),
            );
        }
        Request::Metadata { wire, .. } => {
            // Entries that fail to read cannot name an id: planning refuses the request anyway.
            return named(
                wire.topics()
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|t| t.topic_id),
            );
        }
    };
    match body {
        RequestKind::Fetch(f) => named(
            f.topics
                .iter()
                .map(|t| t.topic_id)
                .chain(f.forgotten_topics_data.iter().map(|t| t.topic_id)),
        ),
        RequestKind::Metadata(m) => named(m.topics.iter().flatten().map(|t| t.topic_id)),
        RequestKind::DeleteTopics(d) => named(d.topics.iter().map(|t| t.topic_id)),
        RequestKind::ConsumerGroupHeartbeat(h) => {
            named(h.topic_partitions.iter().flatten().map(|t| t.topic_id))
        }
        RequestKind::ShareFetch(f) => named(
            f.topics
                .iter()
                .map(|t| t.topic_id)
                .chain(f.forgotten_topics_data.iter().map(|t| t.topic_id)),
        ),
        RequestKind::ShareAcknowledge(a) => named(a.topics.iter().map(|t| t.topic_id)),
        _ => Vec::new(),
    }
}

/// The topic names whose existence decides a request's answer: DeleteTopics answers a topic the
/// session may DESCRIBE but not DELETE with 3 when it does not exist and 29 when it does, and a
/// partly denied AddPartitionsToTxn answers an allowed topic 3 or 55, so the session asks the
/// cluster about names the gateway has not seen before planning.
pub fn topic_names_named(request: &Request) -> Vec<String> {
    match request.body() {
        Some(RequestKind::DeleteTopics(d)) => d
            .topic_names
            .iter()
            .chain(d.topics.iter().filter_map(|t| t.name.as_ref()))
            .map(|n| n.0.to_string())
            .collect(),
        // AlterShareGroupOffsets answers a denied topic under its id.
        Some(RequestKind::AlterShareGroupOffsets(a)) => a
            .topics
            .iter()
            .map(|t| t.topic_name.0.to_string())
            .collect(),
        // A partly denied AddPartitionsToTxn answers its allowed topics 3 when they do not exist.
        Some(RequestKind::AddPartitionsToTxn(a)) => a
            .v3_and_below_topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a request is answered from the gateway's listing of every topic (a
/// DescribeTopicPartitions without names): the session lists them again first.
/// Whether a Metadata v0-3 request (which creates every missing topic it names, with no flag
/// to turn that off) names a topic `ids` does not know: its answer depends on whether the topic
/// exists, so the cluster must be asked first (Kafka's own view is never stale).
pub fn names_unknown_auto_created(request: &Request, ids: &dyn TopicIds) -> bool {
    let Request::Metadata { wire, .. } = request else {
        return false;
    };
    if wire.version() >= topics::metadata::FIRST_AUTO_CREATE_FLAG_VERSION {
        return false;
    }
    wire.topics().is_some_and(|mut topics| {
        topics.any(|t| t.is_ok_and(|t| t.name.is_some_and(|n| ids.id_of(n).is_none())))
    })
}

pub fn asks_for_every_topic(request: &Request) -> bool {
    matches!(request.body(), Some(RequestKind::DescribeTopicPartitions(d)) if d.topics.is_empty())
}

/// A response the gateway answers itself, with the request's correlation id.
fn respond<T: kafka_protocol::protocol::Encodable>(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    body: &T,
) -> Result<Plan, ProtocolError> {
    let header = crate::protocol::codec::response_header(header.correlation_id);
    Ok(Plan::Respond(crate::protocol::codec::encode_response(
        api, version, &header, body,
    )?))
}
