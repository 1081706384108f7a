//! DescribeTopicPartitions (KIP-966), as DescribeTopicPartitionsRequestHandler answers it: DESCRIBE
//! on each topic, no cluster check; named topics the session may not describe are answered 29
//! (without revealing whether they exist) after the described ones, on every page; with no names
//! (every topic) they are left out silently, and the paging runs over the describable topics only.
//!
//! The upstream pages its answer by a partition budget and a cursor naming the next topic. With
//! every topic asked for, forwarding the request as it came would page over topics the session
//! may not see, and the upstream's cursor could name one. So the gateway asks for the describable
//! topics by name instead, from its last full listing of the cluster
//! ([`TopicIds::listing`]): the pages and cursors are those of Kafka with the same ACLs, and no
//! cursor names a topic the session may not describe.

use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, RequestHeader,
    TopicName,
};

use super::{authorized_operations, code, topic_allowed};
use crate::policy::mapping::list_api::rewrite;
use crate::policy::mapping::{respond, Authorize, Plan, TopicIds};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::{encode_request_with_header, ProtocolError};

const API: ApiKey = ApiKey::DescribeTopicPartitions;

pub(in crate::policy::mapping) fn describe_topic_partitions(
    version: i16,
    header: &RequestHeader,
    req: &DescribeTopicPartitionsRequest,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    let describable = |name: &str| topic_allowed(authz, Operation::Describe, name);
    let cursor = req.cursor.as_ref();
    // Kafka refuses these with 42 on every named topic, before any check: the upstream answers
    // the same, and only echoes the names the client sent.
    let cursor_invalid = cursor.is_some_and(|c| {
        c.partition_index < 0
            || (!req.topics.is_empty() && !req.topics.iter().any(|t| t.name == c.topic_name))
    });
    if cursor_invalid {
        return Ok(Plan::Forward);
    }
    let from = |name: &str| cursor.is_none_or(|c| name >= c.topic_name.as_str());
    let every_topic = req.topics.is_empty();
    let (allowed, denied): (Vec<TopicName>, Vec<TopicName>) = if every_topic {
        let mut names: Vec<TopicName> = ids
            .listing()
            .into_iter()
            .filter(|n| from(n) && describable(n))
            .map(|n| TopicName(kafka_protocol::protocol::StrBytes::from_string(n)))
            .collect();
        names.sort();
        (names, Vec::new())
    } else {
        let mut allowed: Vec<TopicName> = Vec::new();
        let mut denied: Vec<TopicName> = Vec::new();
        for t in req.topics.iter().filter(|t| from(&t.name)) {
            let list = if describable(&t.name) {
                &mut allowed
            } else {
                &mut denied
            };
            if !list.contains(&t.name) {
                list.push(t.name.clone());
            }
        }
        (allowed, denied)
    };
    let denied_answers: Vec<DescribeTopicPartitionsResponseTopic> = denied
        .into_iter()
        .map(|name| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
                .with_name(Some(name))
        })
        .collect();
    // Nothing to describe: never forwarded, as an empty list would ask for every topic.
    if allowed.is_empty() {
        let resp = DescribeTopicPartitionsResponse::default().with_topics(denied_answers);
        return respond(API, version, header, &resp);
    }
    // The cursor's topic when the session may describe it (it is then in `allowed`); else the
    // first describable topic after it, from its first partition, as Kafka's paging over the
    // authorized topics continues.
    let forwarded_cursor = cursor.map(|c| {
        if allowed.contains(&c.topic_name) {
            c.clone()
        } else {
            let first = allowed.iter().min().cloned().unwrap_or_default();
            Cursor::default()
                .with_topic_name(first)
                .with_partition_index(0)
        }
    });
    let changed = every_topic
        || !denied_answers.is_empty()
        || allowed.len() != req.topics.len()
        || forwarded_cursor.as_ref() != cursor;
    let adjust = move |r: &mut DescribeTopicPartitionsResponse,
                       authz: &dyn Authorize,
                       _: &dyn TopicIds| {
        if every_topic {
            // Deleted since the listing: Kafka's listing would not have had it.
            r.topics
                .retain(|t| t.error_code != code::UNKNOWN_TOPIC_OR_PARTITION);
        }
        // Computed by the upstream for the gateway's identity (Kafka fills them in for a topic
        // that does not exist too).
        for t in r.topics.iter_mut() {
            let name = t.name.as_deref().map_or("", |n| n.as_str());
            t.topic_authorized_operations = authorized_operations(authz, ResourceType::Topic, name);
        }
        r.topics.extend(denied_answers);
    };
    let plan = rewrite(API, version, adjust, None);
    if !changed {
        return Ok(plan);
    }
    let Plan::ForwardThenMerge(merge) = plan else {
        unreachable!("rewrite plans forward then merge")
    };
    let forwarded = req
        .clone()
        .with_topics(
            allowed
                .into_iter()
                .map(|name| TopicRequest::default().with_name(name))
                .collect(),
        )
        .with_cursor(forwarded_cursor);
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(API, version, header, &forwarded)?,
        merge,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use kafka_protocol::messages::RequestKind;
    use kafka_protocol::protocol::{Decodable, StrBytes};

    use super::*;
    use crate::protocol::codec::{
        decode_body, decode_request, encode_response, response_header, split_response,
    };
    use crate::protocol::frame::LEN_PREFIX;

    /// DESCRIBE on the named topics only.
    struct Describe(HashSet<&'static str>);

    impl Authorize for Describe {
        fn allowed(&self, op: Operation, rtype: ResourceType, name: &str) -> bool {
            op == Operation::Describe && rtype == ResourceType::Topic && self.0.contains(name)
        }
        fn allowed_any(&self, _: Operation, _: ResourceType) -> bool {
            false
        }
    }

    struct Listing(Vec<&'static str>);

    impl TopicIds for Listing {
        fn name_of(&self, _: uuid::Uuid) -> Option<String> {
            None
        }
        fn id_of(&self, _: &str) -> Option<uuid::Uuid> {
            None
        }
        fn listing(&self) -> Vec<String> {
            self.0.iter().map(|s| s.to_string()).collect()
        }
    }

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_owned()))
    }

    fn request(names: &[&str], cursor: Option<(&str, i32)>) -> DescribeTopicPartitionsRequest {
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                names
                    .iter()
                    .map(|n| TopicRequest::default().with_name(name(n)))
                    .collect(),
            )
            .with_response_partition_limit(2000)
            .with_cursor(cursor.map(|(t, p)| {
                Cursor::default()
                    .with_topic_name(name(t))
                    .with_partition_index(p)
            }))
    }

    fn plan(req: &DescribeTopicPartitionsRequest) -> Plan {
        let authz = Describe(HashSet::from(["a", "c"]));
        let ids = Listing(vec!["c", "b", "a", "d"]);
        let header = RequestHeader::default()
            .with_request_api_key(API as i16)
            .with_correlation_id(3);
        describe_topic_partitions(0, &header, req, &authz, &ids).expect("plan")
    }

    /// The forwarded request's names and cursor.
    fn forwarded(plan: &Plan) -> (Vec<String>, Option<(String, i32)>) {
        let Plan::ForwardPartial { request, .. } = plan else {
            panic!("expected a changed request, got {plan:?}")
        };
        let d = decode_request(API, 0, request.slice(LEN_PREFIX..)).expect("decodes");
        let RequestKind::DescribeTopicPartitions(r) = d.body else {
            panic!("a DescribeTopicPartitions")
        };
        (
            r.topics.iter().map(|t| t.name.to_string()).collect(),
            r.cursor
                .map(|c| (c.topic_name.to_string(), c.partition_index)),
        )
    }

    fn merged(plan: Plan, upstream: &DescribeTopicPartitionsResponse) -> Vec<(String, i16, i32)> {
        let merge = match plan {
            Plan::ForwardPartial { merge, .. } | Plan::ForwardThenMerge(merge) => merge,
            other => panic!("expected a merge, got {other:?}"),
        };
        let frame = encode_response(API, 0, &response_header(3), upstream).expect("encode");
        let authz = Describe(HashSet::from(["a", "c"]));
        let out = merge
            .apply(frame.slice(LEN_PREFIX..), &authz, &Listing(vec![]))
            .expect("merge");
        let (_, body) = split_response(API, 0, out.slice(LEN_PREFIX..)).expect("split");
        let r: DescribeTopicPartitionsResponse = decode_body(API, 0, body).expect("decode");
        r.topics
            .iter()
            .map(|t| {
                (
                    t.name.as_deref().map_or("", |n| n.as_str()).to_owned(),
                    t.error_code,
                    t.topic_authorized_operations,
                )
            })
            .collect()
    }

    fn described(n: &str) -> DescribeTopicPartitionsResponseTopic {
        DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(name(n)))
            .with_topic_authorized_operations(-1)
    }

    #[test]
    fn named_topics_the_session_may_not_describe_are_29_after_the_described_ones() {
        let p = plan(&request(&["b", "a", "x"], None));
        assert_eq!(forwarded(&p), (vec!["a".to_string()], None));
        let upstream = DescribeTopicPartitionsResponse::default().with_topics(vec![described("a")]);
        let got = merged(p, &upstream);
        let describe_bit = 1 << 8;
        assert_eq!(got[0].0, "a");
        assert_eq!(got[0].2, describe_bit, "recomputed for the session");
        assert_eq!(
            got[1..].to_vec(),
            vec![
                ("b".to_string(), 29, i32::MIN),
                ("x".to_string(), 29, i32::MIN)
            ]
        );
        // Nothing describable: answered here, never forwarded empty (which asks for every topic).
        let Plan::Respond(frame) = plan(&request(&["b"], None)) else {
            panic!("answered locally")
        };
        let (_, mut body) = split_response(API, 0, frame.slice(LEN_PREFIX..)).expect("split");
        let r = DescribeTopicPartitionsResponse::decode(&mut body, 0).expect("decode");
        assert_eq!((r.topics.len(), r.topics[0].error_code), (1, 29));
    }

    #[test]
    fn every_topic_is_asked_for_by_the_describable_names_and_the_cursor_never_names_another() {
        let (names, cursor) = forwarded(&plan(&request(&[], None)));
        assert_eq!(
            (names, cursor),
            (vec!["a".to_string(), "c".to_string()], None)
        );
        // A cursor on a topic the session may not describe moves to the next describable one.
        let (names, cursor) = forwarded(&plan(&request(&[], Some(("b", 7)))));
        assert_eq!(names, vec!["c".to_string()]);
        assert_eq!(cursor, Some(("c".to_string(), 0)));
        let (_, cursor) = forwarded(&plan(&request(&[], Some(("a", 7)))));
        assert_eq!(cursor, Some(("a".to_string(), 7)));
        // A topic deleted since the listing is left out, as Kafka's listing would not have it.
        let upstream = DescribeTopicPartitionsResponse::default()
            .with_topics(vec![described("a"), described("c").with_error_code(3)]);
        let got = merged(plan(&request(&[], None)), &upstream);
        assert_eq!(got.len(), 1);
        // Past the last describable topic: an empty answer.
        assert!(matches!(
            plan(&request(&[], Some(("d", 0)))),
            Plan::Respond(_)
        ));
    }

    #[test]
    fn an_invalid_cursor_goes_to_the_upstream_which_answers_42_as_kafka_does() {
        assert!(matches!(
            plan(&request(&["a"], Some(("c", 0)))),
            Plan::Forward
        ));
        assert!(matches!(
            plan(&request(&["a"], Some(("a", -1)))),
            Plan::Forward
        ));
    }
}
