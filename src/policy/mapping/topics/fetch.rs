//! Fetch, as KafkaApis.handleFetchRequest: a follower (replica id >= 0) needs CLUSTER_ACTION on the
//! cluster, else 29 on every partition; a consumer needs READ on each topic, else 29 on its
//! partitions; v13+ topics are named by id, and an id the gateway does not know gets 100.
//!
//! A partially denied fetch is forwarded without the denied topics and without its fetch session
//! (session 0, epoch -1: Kafka's sessionless full fetch). An incremental session would otherwise
//! hold the denied partitions out of every later request while the client still expects them; with
//! `session_id` 0 in the response the client falls back to full fetches, so each request is checked
//! whole. `forgotten_topics_data` entries for denied topics are dropped.
//!
//! Known limit: an incremental request names only the partitions that changed, so a session set up
//! while every topic was allowed keeps serving its partitions after a policy change denies one.
//! Open connections should be re-checked (or closed) when the policy changes.

use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, RequestHeader};

use super::{
    cluster_allowed, code, encode_request_with_header, into_locals, local_count, resolve, respond,
    slots_for, topic_allowed, Key, Keyed, Merge, Splice,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::Operation;
use crate::protocol::codec::ProtocolError;

/// Fetch v13 names topics by id.
const FIRST_TOPIC_ID_VERSION: i16 = 13;
/// Fetch v7 has fetch sessions.
const FIRST_SESSION_VERSION: i16 = 7;
/// Fetch v15 moves the replica id into `replica_state`.
const FIRST_REPLICA_STATE_VERSION: i16 = 15;
/// `FetchMetadata.INVALID_SESSION_ID` and `FINAL_EPOCH`: a sessionless full fetch.
const NO_SESSION_ID: i32 = 0;
const SESSIONLESS_EPOCH: i32 = -1;

impl Keyed for FetchableTopicResponse {
    fn keys(&self, version: i16) -> [Option<Key>; 2] {
        if version >= FIRST_TOPIC_ID_VERSION {
            [Some(Key::Id(self.topic_id)), None]
        } else {
            [Some(Key::Name(self.topic.0.clone())), None]
        }
    }
}

pub(super) fn fetch(
    version: i16,
    header: &RequestHeader,
    req: &FetchRequest,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    let replica_id = if version >= FIRST_REPLICA_STATE_VERSION {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    if replica_id >= 0 {
        if cluster_allowed(authz, Operation::ClusterAction) {
            return Ok(Plan::Forward);
        }
        let responses = req
            .topics
            .iter()
            .map(|t| topic_error(version, t, code::TOPIC_AUTHORIZATION_FAILED))
            .collect();
        return respond(ApiKey::Fetch, version, header, &response(responses));
    }

    // The error for a topic, if any: 100 for an id the gateway does not know, 29 without READ.
    let denial = |t: &FetchTopic| -> Option<i16> {
        if version >= FIRST_TOPIC_ID_VERSION {
            match resolve(ids, t.topic_id) {
                None => Some(code::UNKNOWN_TOPIC_ID),
                Some(name) if !topic_allowed(authz, Operation::Read, &name) => {
                    Some(code::TOPIC_AUTHORIZATION_FAILED)
                }
                Some(_) => None,
            }
        } else if topic_allowed(authz, Operation::Read, &t.topic) {
            None
        } else {
            Some(code::TOPIC_AUTHORIZATION_FAILED)
        }
    };
    if req.topics.iter().all(|t| denial(t).is_none()) {
        return Ok(Plan::Forward);
    }

    let slots = slots_for(
        &req.topics,
        |t| topic_key(version, t),
        |t| denial(t).map(|code| topic_error(version, t, code)),
    );
    if local_count(&slots) == req.topics.len() {
        return respond(
            ApiKey::Fetch,
            version,
            header,
            &response(into_locals(slots)),
        );
    }

    let mut forwarded = req.clone();
    // A set: forgotten topics are looked up in it one by one (a list made that quadratic).
    let mut denied_keys = std::collections::HashSet::new();
    forwarded.topics.retain(|t| {
        let keep = denial(t).is_none();
        if !keep {
            denied_keys.insert(topic_key(version, t));
        }
        keep
    });
    forwarded.forgotten_topics_data.retain(|f| {
        let key = if version >= FIRST_TOPIC_ID_VERSION {
            Key::Id(f.topic_id)
        } else {
            Key::Name(f.topic.0.clone())
        };
        !denied_keys.contains(&key)
    });
    if version >= FIRST_SESSION_VERSION {
        forwarded.session_id = NO_SESSION_ID;
        forwarded.session_epoch = SESSIONLESS_EPOCH;
    }
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(ApiKey::Fetch, version, header, &forwarded)?,
        merge: super::super::Merge::Topics(Merge::Fetch(Splice { version, slots })),
    })
}

fn topic_key(version: i16, t: &FetchTopic) -> Key {
    if version >= FIRST_TOPIC_ID_VERSION {
        Key::Id(t.topic_id)
    } else {
        Key::Name(t.topic.0.clone())
    }
}

/// A response answered by the gateway: no error, no session, no throttle.
fn response(responses: Vec<FetchableTopicResponse>) -> FetchResponse {
    FetchResponse::default()
        .with_session_id(NO_SESSION_ID)
        .with_responses(responses)
}

/// `FetchResponse.partitionResponse(tp, error)` for every partition of `t`: high watermark -1,
/// last stable offset -1, log start offset -1, no records.
fn topic_error(version: i16, t: &FetchTopic, code: i16) -> FetchableTopicResponse {
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            PartitionData::default()
                .with_partition_index(p.partition)
                .with_error_code(code)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
        })
        .collect();
    let mut out = FetchableTopicResponse::default().with_partitions(partitions);
    if version >= FIRST_TOPIC_ID_VERSION {
        out.topic_id = t.topic_id;
    } else {
        out.topic = t.topic.clone();
    }
    out
}
