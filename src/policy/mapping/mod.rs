//! Request-to-check mapping, following Kafka's KafkaApis: which permissions each request needs, what
//! part of it may be forwarded, and how the answer for the denied part is merged into the response.
//!
//! Pure functions over decoded messages: no sockets, no policy files. The session hands in an
//! [`Authorize`] bound to the client's principal and address, and a [`TopicIds`] map.

pub mod groups;
pub mod topics;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use uuid::Uuid;

use super::{Operation, ResourceType};
use crate::protocol::codec::{self, ProtocolError, Request};
use crate::protocol::frame::{Parts, LEN_PREFIX};

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
}

/// Topic ids the gateway has learned from upstream Metadata responses.
pub trait TopicIds {
    fn name_of(&self, id: Uuid) -> Option<String>;
    fn id_of(&self, name: &str) -> Option<Uuid>;
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

/// Response adjustments, one variant per module that produces them.
#[derive(Debug)]
pub enum Merge {
    Topics(topics::Merge),
    Groups(groups::Merge),
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
            Merge::Topics(m) => m.apply(payload, authz, ids),
            Merge::Groups(m) => m.apply(payload, authz, ids),
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
            Merge::Topics(topics::Merge::Metadata(m)) if parts.len() == 2 => {
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
            Merge::Groups(groups::Merge::ConsumerGroupHeartbeat { version }) => {
                groups::assignment_topic_ids(*version, payload.clone())
            }
            _ => Vec::new(),
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
    if let Some(p) = topics::plan(api, version, header, body, authz, ids)? {
        return Ok(Some(p));
    }
    groups::plan(api, version, header, body, authz, ids)
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
        Request::Metadata { wire, .. } => topics::plan_metadata(wire, authz, ids).map(Some),
        Request::Fetch { header, wire } => topics::plan_fetch(header, wire, authz, ids).map(Some),
        Request::Names { header, wire } => groups::plan_names(header, wire, authz).map(Some),
    }
}

/// The topic ids a request names (Fetch v13+, Metadata by id, DeleteTopics v6+, the assignment a
/// ConsumerGroupHeartbeat reports). Authorization resolves each to a name through [`TopicIds`]; an
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
            let ids = wire.topics().chain(wire.forgotten()).map_while(Result::ok);
            return named(ids.filter_map(|t| match t.topic {
                crate::protocol::fetch::TopicRef::Id(id) => Some(id),
                crate::protocol::fetch::TopicRef::Name(_) => None,
            }));
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
        // A partly denied AddPartitionsToTxn answers its allowed topics 3 when they do not exist.
        Some(RequestKind::AddPartitionsToTxn(a)) => a
            .v3_and_below_topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect(),
        _ => Vec::new(),
    }
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
