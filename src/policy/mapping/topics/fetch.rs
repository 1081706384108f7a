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
use kafka_protocol::messages::{FetchResponse, RequestHeader};

use super::{cluster_allowed, code, topic_allowed};
use crate::policy::mapping::list_api::{
    self, list_api, Key, Splicing, Then, TopicAnswers, Verdict,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::Operation;
use crate::protocol::codec::ProtocolError;
use crate::protocol::fetch::{denied_topics, FetchRequestWire, TopicEntry, TopicRef};

/// Fetch v13 names topics by id.
const FIRST_TOPIC_ID_VERSION: i16 = 13;

list_api!(FetchTopics: Fetch,
    FetchResponse[responses] => FetchableTopicResponse, |v, a| [Some(if v >= FIRST_TOPIC_ID_VERSION {
        Key::Id(a.topic_id)
    } else {
        Key::Name(a.topic.0.clone())
    }), None]);

pub(in crate::policy::mapping) fn fetch(
    header: &RequestHeader,
    wire: &FetchRequestWire,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    let version = wire.version();
    // 29 or 100 on every partition of a denied topic.
    let denied = TopicAnswers::new(
        &[code::TOPIC_AUTHORIZATION_FAILED, code::UNKNOWN_TOPIC_ID],
        |code| denied_topics(version, code),
    );
    // The follower path: every topic or none.
    let follower = (wire.replica_id >= 0).then(|| cluster_allowed(authz, Operation::ClusterAction));
    // 100 for an id the gateway does not know, 29 without READ.
    let check = |t: &TopicEntry<'_>| {
        let readable = |name: &str| topic_allowed(authz, Operation::Read, name);
        let allowed = match (follower, t.topic) {
            (Some(allowed), _) => allowed,
            // The name is lent by the id map, not copied per topic.
            (None, TopicRef::Id(id)) => match ids.check_name(id, &mut |name| readable(name)) {
                None => return Verdict::Answer(code::UNKNOWN_TOPIC_ID),
                Some(allowed) => allowed,
            },
            (None, TopicRef::Name(name)) => readable(name),
        };
        if allowed {
            Verdict::Forward
        } else {
            Verdict::Answer(code::TOPIC_AUTHORIZATION_FAILED)
        }
    };
    // The forwarded request was made sessionless: the client must not think it holds a session.
    let mut then = Then::<FetchTopics>::default().on_partial(|r, _, _| {
        r.session_id = 0;
        Ok(Splicing::Answers)
    });
    if follower == Some(false) {
        then = then.refused();
    }
    list_api::plan(header, wire, check, &denied, then)
}
