//! The list-authorizer's splicing: the client's order whatever the upstream's, entries nobody asked
//! for dropped, nested lists merged in place, repeats answered once.

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::*;
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::response_header;
use crate::protocol::frame::LEN_PREFIX;

struct Nobody;

impl Authorize for Nobody {
    fn allowed(&self, _: Operation, _: ResourceType, _: &str) -> bool {
        false
    }
    fn allowed_any(&self, _: Operation, _: ResourceType) -> bool {
        false
    }
}

impl TopicIds for Nobody {
    fn name_of(&self, _: Uuid) -> Option<String> {
        None
    }
    fn id_of(&self, _: &str) -> Option<Uuid> {
        None
    }
}

list_api!(Topics: Produce,
    ProduceResponse[responses] => TopicProduceResponse, |_, a| by_name(&a.name));

fn topic(name: &'static str, code: i16) -> TopicProduceResponse {
    TopicProduceResponse::default()
        .with_name(TopicName(StrBytes::from_static_str(name)))
        .with_partition_responses(vec![
            PartitionProduceResponse::default().with_error_code(code)
        ])
}

fn key(name: &'static str) -> Key {
    Key::Name(StrBytes::from_static_str(name))
}

/// The merge of the client's list `c, x (answered here), a, a, missing`.
fn merge() -> ListMerge<Topics> {
    let mut answers = Answers::default();
    answers
        .push(ApiKey::Produce, 9, 1, &topic("x", 29))
        .expect("push");
    ListMerge::nested(
        9,
        Some(vec![key("c"), key("a"), key("a"), key("missing")]),
        answers,
        None,
    )
}

/// The upstream answers out of order, twice for "a", and with a topic nobody asked for (dropped:
/// found end to end, where tansu answered an empty Metadata topic list with every topic).
fn upstream() -> ProduceResponse {
    ProduceResponse::default().with_responses(vec![
        topic("a", 1),
        topic("extra", 2),
        topic("c", 3),
        topic("a", 4),
    ])
}

fn names(r: &ProduceResponse) -> Vec<(String, i16)> {
    r.responses
        .iter()
        .map(|t| (t.name.to_string(), t.partition_responses[0].error_code))
        .collect()
}

const WANT: [(&str, i16); 4] = [("c", 3), ("x", 29), ("a", 1), ("a", 4)];

#[test]
fn a_merged_response_keeps_the_client_order_whatever_the_upstream_order() {
    let frame = crate::protocol::codec::encode_response(
        ApiKey::Produce,
        9,
        &response_header(4711),
        &upstream(),
    )
    .expect("encode");
    let merged: Bytes = Box::new(merge())
        .complete(frame.slice(LEN_PREFIX..), &Nobody, &Nobody)
        .expect("merge");
    let (_, body) = split_response(ApiKey::Produce, 9, merged.slice(LEN_PREFIX..)).expect("header");
    let out: ProduceResponse = decode_body(ApiKey::Produce, 9, body).expect("decode");
    let want: Vec<_> = WANT.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(
        names(&out),
        want,
        "an upstream entry nobody asked for is never passed on"
    );
}

#[test]
fn a_nested_merge_gives_the_same_list_as_a_whole_one() {
    let mut resp = upstream();
    merge()
        .apply_to(&mut resp, &Nobody, &Nobody)
        .expect("merge");
    let want: Vec<_> = WANT.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(names(&resp), want);
}

#[test]
fn answers_past_the_upstream_entries_come_last_and_none_keeps_the_upstream_list() {
    // Nothing upstream: the gateway's answers alone, in order.
    let mut answers = Answers::default();
    for (place, n) in [(1, "x"), (3, "y")] {
        answers
            .push(ApiKey::Produce, 9, place, &topic(n, 29))
            .expect("push");
    }
    let mut empty = ProduceResponse::default();
    ListMerge::<Topics>::nested(9, Some(vec![key("gone")]), answers, None)
        .apply_to(&mut empty, &Nobody, &Nobody)
        .expect("merge");
    assert_eq!(names(&empty), [("x".into(), 29), ("y".into(), 29)]);
    // Everything forwarded and nothing answered: the upstream's list as it is.
    let mut resp = upstream();
    ListMerge::<Topics>::nested(9, None, Answers::default(), None)
        .apply_to(&mut resp, &Nobody, &Nobody)
        .expect("merge");
    assert_eq!(names(&resp), names(&upstream()));
}

#[test]
fn a_repeated_denied_key_is_answered_once_with_42() {
    let mut r = Repeats::new(["a", "b", "a", "c", "a"]);
    assert_eq!(r.denied("b", 29), Verdict::Answer(29));
    assert_eq!(r.denied("a", 29), Verdict::Answer(42));
    assert_eq!(r.denied("a", 29), Verdict::Repeat);
    assert_eq!(r.denied("a", 3), Verdict::Repeat);
    assert_eq!(r.denied("c", 3), Verdict::Answer(3));
    let mut each = Repeats::each(["a", "a"]);
    assert_eq!(each.denied("a", 29), Verdict::Answer(42));
    assert_eq!(each.denied("a", 29), Verdict::Answer(42));
}
