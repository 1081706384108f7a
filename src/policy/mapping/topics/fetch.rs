//! Fetch, as KafkaApis.handleFetchRequest: a follower (replica id >= 0) needs CLUSTER_ACTION on the
//! cluster, else 29 on every partition; a consumer needs READ on each topic, else 29 on its
//! partitions; v13+ topics are named by id, and an id the gateway does not know gets 100.
//!
//! The request is read in place ([`FetchRequestWire`]): no struct per partition, and the gateway's
//! answers are written as bytes, into the response itself when it answers everything.
//!
//! A partially denied fetch is forwarded without the denied topics and without its fetch session
//! (session 0, epoch -1: Kafka's sessionless full fetch). An incremental session would otherwise
//! hold the denied partitions out of every later request while the client still expects them; with
//! `session_id` 0 in the response the client falls back to full fetches, so each request is checked
//! whole. `forgotten_topics_data` is dropped with the session: a sessionless fetch has nothing to
//! forget, and FetchManager.newContext ignores the list for one.

use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::{cluster_allowed, code, resolve, topic_allowed, Key, Keyed, Slot, Splice};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::Operation;
use crate::protocol::codec::ProtocolError;
use crate::protocol::fetch::{respond_denied, DeniedTopics, FetchRequestWire, TopicRef};
use crate::protocol::wire::WireError;

/// Fetch v13 names topics by id.
const FIRST_TOPIC_ID_VERSION: i16 = 13;

impl Keyed for FetchableTopicResponse {
    fn keys(&self, version: i16) -> [Option<Key>; 2] {
        if version >= FIRST_TOPIC_ID_VERSION {
            [Some(Key::Id(self.topic_id)), None]
        } else {
            [Some(Key::Name(self.topic.0.clone())), None]
        }
    }
}

fn malformed(version: i16) -> impl Fn(WireError) -> ProtocolError {
    move |e| ProtocolError::Decode {
        api: ApiKey::Fetch,
        version,
        what: "request body",
        message: e.to_string(),
    }
}

pub(super) fn fetch(
    header: &RequestHeader,
    wire: &FetchRequestWire,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    let version = wire.version();
    let malformed = malformed(version);
    if wire.replica_id >= 0 {
        if cluster_allowed(authz, Operation::ClusterAction) {
            return Ok(Plan::Forward);
        }
        let denied = DeniedTopics::new(version, code::TOPIC_AUTHORIZATION_FAILED)?;
        let topics = wire.topics().map_while(Result::ok).map(|t| (t, &denied));
        return respond_denied(version, header, topics).map(Plan::Respond);
    }

    // The error for each topic, decided once (0: allowed): 100 for an id the gateway does not
    // know, 29 without READ.
    let denial = |t: TopicRef<'_>| -> i16 {
        let name = match t {
            TopicRef::Id(id) => match resolve(ids, id) {
                None => return code::UNKNOWN_TOPIC_ID,
                Some(name) => std::borrow::Cow::Owned(name),
            },
            TopicRef::Name(name) => std::borrow::Cow::Borrowed(name),
        };
        if topic_allowed(authz, Operation::Read, &name) {
            0
        } else {
            code::TOPIC_AUTHORIZATION_FAILED
        }
    };
    // Nothing is allocated while every topic is allowed: Fetch carries every consumer's data.
    let mut all_allowed = true;
    for t in wire.topics() {
        if denial(t.map_err(&malformed)?.topic) != 0 {
            all_allowed = false;
            break;
        }
    }
    if all_allowed {
        return Ok(Plan::Forward);
    }
    let mut codes = Vec::with_capacity(wire.topic_count());
    for t in wire.topics() {
        codes.push(denial(t.map_err(&malformed)?.topic));
    }
    let denied_29 = DeniedTopics::new(version, code::TOPIC_AUTHORIZATION_FAILED)?;
    let denied_100 = DeniedTopics::new(version, code::UNKNOWN_TOPIC_ID)?;
    let answer_for = |c: i16| {
        if c == code::UNKNOWN_TOPIC_ID {
            &denied_100
        } else {
            &denied_29
        }
    };
    if codes.iter().all(|c| *c != 0) {
        let topics = wire
            .topics()
            .map_while(Result::ok)
            .zip(codes.iter())
            .map(|(t, c)| (t, answer_for(*c)));
        return respond_denied(version, header, topics).map(Plan::Respond);
    }

    let (mut size, mut denied) = (0, 0);
    for (t, c) in wire.topics().map_while(Result::ok).zip(codes.iter()) {
        if *c != 0 {
            size += answer_for(*c).size(&t);
            denied += 1;
        }
    }
    let mut splice = Splice::with_capacity(ApiKey::Fetch, version, size, denied);
    for (t, c) in wire.topics().zip(codes.iter()) {
        let t = t.map_err(&malformed)?;
        if *c == 0 {
            splice.push(Slot::Upstream(match t.topic {
                TopicRef::Id(id) => Key::Id(id),
                TopicRef::Name(n) => Key::Name(StrBytes::from_string(n.to_owned())),
            }))?;
        } else {
            splice.push_with(|out| answer_for(*c).write(out, &t))?;
        }
    }
    let request = wire
        .splice(|forgotten, i| !forgotten && codes[i] == 0, true)
        .map_err(&malformed)?;
    Ok(Plan::ForwardPartial {
        request,
        merge: super::super::Merge::Topics(super::Merge::Fetch(splice)),
    })
}
