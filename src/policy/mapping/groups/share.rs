//! The share-group protocol (KIP-932) as KafkaApis checks it: ShareGroupHeartbeat (READ on the
//! group, DESCRIBE on each subscribed topic), ShareFetch and ShareAcknowledge (READ on the group,
//! READ on each topic). ShareGroupDescribe is a group-name list (`membership`).
//!
//! ShareFetch and ShareAcknowledge always reach the broker once the group is allowed: the broker
//! advances the share session's epoch on each, so a request the gateway answered alone would put
//! the client's epoch ahead of the broker's. The denied topics are taken out of what is forwarded
//! and answered per partition in the response. Kafka keeps a denied partition in the share session
//! and answers it on every fetch until the client forgets it; the gateway carries those answers in
//! its share-session registry ([`ShareDenied`]) and adds them to every response of the session.

use bytes::Bytes;
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData as AckPartition, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::share_fetch_response::{
    PartitionData as FetchPartition, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest,
    ShareFetchResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::code::{GROUP_AUTHORIZATION_FAILED, INVALID_REQUEST, TOPIC_AUTHORIZATION_FAILED};
use super::{group_allowed, topic_allowed};
use crate::policy::mapping::list_api::{single, Complete};
use crate::policy::mapping::{respond, Authorize, Merge, Plan, TopicIds};
use crate::policy::Operation;
use crate::protocol::codec::{
    decode_body, encode_request_with_header, encode_response, split_response, ProtocolError,
};
use crate::upstream::fetch_sessions::{ShareDenied, SHARE_DENIED_MAX};

/// Kafka's SHARE_SESSION_NOT_FOUND: the client starts a new share session (epoch 0).
pub const SHARE_SESSION_NOT_FOUND: i16 = 122;

/// Kafka's UNKNOWN_SERVER_ERROR.
const UNKNOWN_SERVER_ERROR: i16 = -1;

/// Share session epochs: 0 opens a session, -1 closes it.
pub const INITIAL_EPOCH: i32 = 0;
pub const FINAL_EPOCH: i32 = -1;

/// KafkaApis.handleShareGroupHeartbeat: READ on the group (30), a member id of 1 to 36 characters
/// (42), then DESCRIBE on every subscribed topic (29 for the whole request when one is missing). The response is forwarded as it comes:
/// Kafka filters nothing in it.
pub(in crate::policy::mapping) fn share_group_heartbeat(
    version: i16,
    header: &RequestHeader,
    req: &ShareGroupHeartbeatRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let error = if !group_allowed(authz, Operation::Read, &req.group_id) {
        GROUP_AUTHORIZATION_FAILED
    } else if !member_id_valid(Some(&req.member_id)) {
        INVALID_REQUEST
    } else if req
        .subscribed_topic_names
        .iter()
        .flatten()
        .any(|name| !topic_allowed(authz, Operation::Describe, name))
    {
        TOPIC_AUTHORIZATION_FAILED
    } else {
        0
    };
    single(
        ApiKey::ShareGroupHeartbeat,
        version,
        header,
        error == 0,
        || ShareGroupHeartbeatResponse::default().with_error_code(error),
    )
}

/// Kafka 4.4's member id check, after the group's authorization and before anything else: present,
/// not empty, at most 36 characters (42 otherwise).
fn member_id_valid(member: Option<&StrBytes>) -> bool {
    member.is_some_and(|m| !m.is_empty() && m.chars().count() <= 36)
}

/// The checks of either share request that answer it whole, in Kafka's order: a group id (42),
/// READ on the group (30), a member id (42), `invalid` (42), the session (122), the topic ids
/// ([`names_unknown_topic`], -1).
fn whole_request_error(
    (group, member): (
        Option<&kafka_protocol::messages::GroupId>,
        Option<&StrBytes>,
    ),
    epoch: i32,
    invalid: bool,
    session: Continuing<'_>,
    topic_ids: impl IntoIterator<Item = Uuid>,
    (authz, ids): (&dyn Authorize, &dyn TopicIds),
) -> Option<i16> {
    let Some(group) = group else {
        return Some(INVALID_REQUEST);
    };
    if !group_allowed(authz, Operation::Read, group) {
        Some(GROUP_AUTHORIZATION_FAILED)
    } else if !member_id_valid(member) || invalid {
        Some(INVALID_REQUEST)
    } else if matches!(session, Continuing::Refused) && epoch != INITIAL_EPOCH {
        Some(SHARE_SESSION_NOT_FOUND)
    } else if names_unknown_topic(topic_ids, ids) {
        Some(UNKNOWN_SERVER_ERROR)
    } else {
        None
    }
}

/// One acknowledgement batch, as both requests carry it.
struct Batch<'a> {
    first: i64,
    last: i64,
    types: &'a [i8],
}

/// KafkaApis.validateAcknowledgementBatches, which runs before authorization: a partition whose
/// batches are out of order, empty or of unknown types is answered INVALID_REQUEST.
fn acks_valid<'a>(batches: impl IntoIterator<Item = Batch<'a>>) -> bool {
    let mut prev_end = -1i64;
    for b in batches {
        let n = b.types.len() as i64;
        if b.first > b.last
            || b.first < prev_end
            || b.types.is_empty()
            || (n > 1 && b.last.wrapping_sub(b.first) != n - 1)
            || b.types.iter().any(|t| !(0..=3).contains(t))
        {
            return false;
        }
        prev_end = b.last;
    }
    true
}

/// Each topic's error in either request, decided once: 29 without READ, `None` when it is
/// forwarded.
fn topic_errors(
    topic_ids: impl Iterator<Item = Uuid>,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Vec<Option<i16>> {
    topic_ids
        .map(|id| {
            let name = super::super::topics::resolve(ids, id).unwrap_or_default();
            (!topic_allowed(authz, Operation::Read, &name)).then_some(TOPIC_AUTHORIZATION_FAILED)
        })
        .collect()
}

/// The request without its denied topics (`errors`, one per topic); `None` when none is denied,
/// so that a request whose every topic is allowed is never copied.
fn without_denied<R: Clone, T>(
    req: &R,
    errors: &[Option<i16>],
    topics: impl Fn(&mut R) -> &mut Vec<T>,
) -> Option<R> {
    if errors.iter().all(Option::is_none) {
        return None;
    }
    let mut forwarded = req.clone();
    let mut kept = errors.iter();
    topics(&mut forwarded).retain(|_| kept.next().is_some_and(Option::is_none));
    Some(forwarded)
}

/// Kafka 4.4 answers a share request naming a topic id its metadata does not hold with
/// UNKNOWN_SERVER_ERROR for the whole request, not UNKNOWN_TOPIC_ID per partition: KafkaApis
/// authorizes the request's partitions by topic name, and a null name fails the authorizer's
/// resource pattern before anything is answered. The differential test pins this; the gateway
/// answers the same, without forwarding.
fn names_unknown_topic(ids: impl IntoIterator<Item = Uuid>, names: &dyn TopicIds) -> bool {
    ids.into_iter()
        .any(|id| super::super::topics::resolve(names, id).is_none())
}

/// What the gateway's share-session registry says about the session a request continues (any
/// epoch but 0).
#[derive(Debug, Clone, Copy)]
pub enum Continuing<'a> {
    /// Built by this client under the policy in force (or a new session): the partitions
    /// earlier requests of the session had answered here.
    Allowed(&'a [(Uuid, i32, i16)]),
    /// Unknown to the gateway, or another client's: answered SHARE_SESSION_NOT_FOUND, and the
    /// client opens a new session, authorized in full.
    Refused,
}

/// What a share request's plan decided about its session.
#[derive(Debug)]
pub struct SharePlan {
    pub plan: Plan,
    /// The session's denied partitions after this request (for the registry); `None` when the
    /// request leaves the session as it was (it was answered here).
    pub denied: Option<ShareDenied>,
}

/// KafkaApis.handleShareFetchRequest: a group id (42), READ on the group (30 for the whole
/// request), a member id of 1 to 36 characters (42); an epoch-0 request carrying
/// acknowledgements is INVALID_REQUEST (SharePartitionManager.newContext); a session the registry
/// refuses is 122, as newContext answers a session it does not hold; an unknown topic id is -1 for
/// the whole request ([`names_unknown_topic`]). Each topic then needs READ (29 on each
/// partition). A denied partition's piggybacked acknowledgements are answered with its error (or
/// 42 for invalid batches) in `acknowledge_error_code`.
pub fn share_fetch(
    version: i16,
    header: &RequestHeader,
    req: &ShareFetchRequest,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
    session: Continuing<'_>,
) -> Result<SharePlan, ProtocolError> {
    const API: ApiKey = ApiKey::ShareFetch;
    let acks = |p: &kafka_protocol::messages::share_fetch_request::FetchPartition| {
        !p.acknowledgement_batches.is_empty()
    };
    let whole = whole_request_error(
        (req.group_id.as_ref(), req.member_id.as_ref()),
        req.share_session_epoch,
        // SharePartitionManager.newContext: a new session carries no acknowledgements.
        req.share_session_epoch == INITIAL_EPOCH
            && req.topics.iter().flat_map(|t| &t.partitions).any(acks),
        session,
        req.topics.iter().map(|t| t.topic_id),
        (authz, ids),
    );
    let carried = match session {
        Continuing::Allowed(carried) => carried,
        Continuing::Refused => &[],
    };
    if let Some(code) = whole {
        let resp = ShareFetchResponse::default().with_error_code(code);
        return Ok(SharePlan {
            plan: respond(API, version, header, &resp)?,
            denied: None,
        });
    }
    let final_epoch = req.share_session_epoch == FINAL_EPOCH;
    let mut answers = Vec::new();
    let mut denied_now: ShareDenied = Vec::new();
    let errors = topic_errors(req.topics.iter().map(|t| t.topic_id), authz, ids);
    for (t, code) in req.topics.iter().zip(&errors) {
        let Some(code) = *code else {
            continue;
        };
        for p in &t.partitions {
            let ack = if !acks(p) {
                0
            } else if acks_valid(p.acknowledgement_batches.iter().map(|b| Batch {
                first: b.first_offset,
                last: b.last_offset,
                types: &b.acknowledge_types,
            })) {
                code
            } else {
                INVALID_REQUEST
            };
            // A closing request fetches nothing: only its acknowledgements are answered.
            let fetch_code = if final_epoch { 0 } else { code };
            if !final_epoch || ack != 0 {
                answers.push((t.topic_id, p.partition_index, fetch_code, ack));
            }
            denied_now.push((t.topic_id, p.partition_index, code));
        }
    }
    let forwarded = without_denied(req, &errors, |r| &mut r.topics);
    let denied = if final_epoch {
        Vec::new()
    } else {
        let forgotten = |id: Uuid, p: i32| {
            req.forgotten_topics_data
                .iter()
                .any(|f| f.topic_id == id && f.partitions.contains(&p))
        };
        let mut denied: ShareDenied = if req.share_session_epoch == INITIAL_EPOCH {
            Vec::new()
        } else {
            carried
                .iter()
                .filter(|(id, p, _)| !forgotten(*id, *p))
                .copied()
                .collect()
        };
        for d in denied_now {
            if !denied.iter().any(|(id, p, _)| (*id, *p) == (d.0, d.1)) {
                denied.push(d);
            }
        }
        denied.truncate(SHARE_DENIED_MAX);
        // The session's partitions this request does not name are answered as Kafka answers
        // them: every fetch, with their error.
        for &(id, p, code) in &denied {
            if !answers.iter().any(|a| (a.0, a.1) == (id, p)) {
                answers.push((id, p, code, 0));
            }
        }
        denied
    };
    let plan = if answers.is_empty() && forwarded.is_none() {
        Plan::Forward
    } else {
        let merge = Merge::Complete(Box::new(ShareMerge::<ShareFetchResponse> {
            version,
            answers,
            _r: std::marker::PhantomData,
        }));
        match forwarded {
            None => Plan::ForwardThenMerge(merge),
            Some(forwarded) => {
                let request = encode_request_with_header(API, version, header, &forwarded)?;
                Plan::ForwardPartial { request, merge }
            }
        }
    };
    Ok(SharePlan {
        plan,
        denied: Some(denied),
    })
}

/// KafkaApis.handleShareAcknowledgeRequest: a group id (42), READ on the group (30 for the whole
/// request), a member id of 1 to 36 characters (42); then
/// the session (122), an unknown topic id (-1 for the whole request, [`names_unknown_topic`]);
/// each topic needs READ (29 per partition); invalid batches are 42 first.
pub fn share_acknowledge(
    version: i16,
    header: &RequestHeader,
    req: &ShareAcknowledgeRequest,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
    session: Continuing<'_>,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::ShareAcknowledge;
    // Epoch 0 is INVALID_SHARE_SESSION_EPOCH, answered by the broker.
    let whole = whole_request_error(
        (req.group_id.as_ref(), req.member_id.as_ref()),
        req.share_session_epoch,
        false,
        session,
        req.topics.iter().map(|t| t.topic_id),
        (authz, ids),
    );
    if let Some(code) = whole {
        let resp = ShareAcknowledgeResponse::default().with_error_code(code);
        return respond(API, version, header, &resp);
    }
    let mut answers = Vec::new();
    let errors = topic_errors(req.topics.iter().map(|t| t.topic_id), authz, ids);
    for (t, code) in req.topics.iter().zip(&errors) {
        let Some(code) = *code else {
            continue;
        };
        for p in &t.partitions {
            let valid = acks_valid(p.acknowledgement_batches.iter().map(|b| Batch {
                first: b.first_offset,
                last: b.last_offset,
                types: &b.acknowledge_types,
            }));
            let code = if valid { code } else { INVALID_REQUEST };
            answers.push((t.topic_id, p.partition_index, code, code));
        }
    }
    let Some(forwarded) = without_denied(req, &errors, |r| &mut r.topics) else {
        return Ok(Plan::Forward);
    };
    let request = encode_request_with_header(API, version, header, &forwarded)?;
    Ok(Plan::ForwardPartial {
        request,
        merge: Merge::Complete(Box::new(ShareMerge::<ShareAcknowledgeResponse> {
            version,
            answers,
            _r: std::marker::PhantomData,
        })),
    })
}

/// A share response whose per-partition answers the gateway adds to.
trait ShareResponse: Decodable + Encodable + Send + 'static {
    const API: ApiKey;
    fn error_code(&self) -> i16;
    /// Adds the answer for one partition: its fetch error and its acknowledgement error.
    fn add(&mut self, topic_id: Uuid, partition: i32, code: i16, ack: i16);
}

/// Declares a share response: its topic list and how one partition's answer is made.
macro_rules! share_response {
    ($resp:ty, $api:ident, $topic:ty, |$partition:ident, $code:ident, $ack:ident| $make:expr) => {
        impl ShareResponse for $resp {
            const API: ApiKey = ApiKey::$api;
            fn error_code(&self) -> i16 {
                self.error_code
            }
            fn add(&mut self, topic_id: Uuid, $partition: i32, $code: i16, $ack: i16) {
                let p = $make;
                match self.responses.iter_mut().find(|t| t.topic_id == topic_id) {
                    Some(t) => t.partitions.push(p),
                    None => self.responses.push(
                        <$topic>::default()
                            .with_topic_id(topic_id)
                            .with_partitions(vec![p]),
                    ),
                }
            }
        }
    };
}

// ShareFetchResponse.partitionResponse: empty (not null) records.
share_response!(
    ShareFetchResponse,
    ShareFetch,
    ShareFetchableTopicResponse,
    |partition, code, ack| FetchPartition::default()
        .with_partition_index(partition)
        .with_error_code(code)
        .with_acknowledge_error_code(ack)
        .with_records(Some(Bytes::new()))
);
// A ShareAcknowledge partition has one error: its acknowledgement's.
share_response!(
    ShareAcknowledgeResponse,
    ShareAcknowledge,
    ShareAcknowledgeTopicResponse,
    |partition, _code, ack| AckPartition::default()
        .with_partition_index(partition)
        .with_error_code(ack)
);

/// The gateway's answers added to a share response: (topic id, partition, error, acknowledge
/// error). A response with a top-level error goes as it came: Kafka's error responses carry no
/// partitions.
struct ShareMerge<R> {
    version: i16,
    answers: Vec<(Uuid, i32, i16, i16)>,
    _r: std::marker::PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for ShareMerge<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareMerge")
            .field("version", &self.version)
            .field("answers", &self.answers.len())
            .finish()
    }
}

impl<R: ShareResponse> Complete for ShareMerge<R> {
    fn complete(
        self: Box<Self>,
        payload: Bytes,
        _: &dyn Authorize,
        _: &dyn TopicIds,
    ) -> Result<Bytes, ProtocolError> {
        let (api, version) = (R::API, self.version);
        let (header, body) = split_response(api, version, payload)?;
        let mut resp: R = decode_body(api, version, body)?;
        if resp.error_code() == 0 {
            for (id, p, code, ack) in self.answers {
                resp.add(id, p, code, ack);
            }
        }
        encode_response(api, version, &header, &resp)
    }
}
