//! The tenant walker against kafka-protocol's own encoder and decoder: names gain and lose the
//! prefix where Kafka's schema says they are names, foreign elements are left out with their
//! array's count fixed, and nothing else changes; arbitrary bytes never panic it.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;

fn map() -> TenantMap {
    TenantMap::new("acme.", "acme-cluster")
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn encode<T: Encodable>(body: &T, version: i16) -> BytesMut {
    let mut b = BytesMut::new();
    body.encode(&mut b, version).expect("encode");
    b
}

fn to_broker<Req: Encodable + Decodable>(api: ApiKey, version: i16, body: &Req) -> Req {
    let mut out = BytesMut::new();
    map()
        .to_broker(api as i16, version, &encode(body, version), &mut out)
        .expect("translate");
    Req::decode(&mut Bytes::from(out), version).expect("decodes")
}

fn to_client<Resp: Encodable + Decodable>(api: ApiKey, version: i16, body: &Resp) -> Resp {
    let mut out = BytesMut::new();
    map()
        .to_client(api as i16, version, &encode(body, version), &mut out)
        .expect("translate");
    Resp::decode(&mut Bytes::from(out), version).expect("decodes")
}

#[test]
fn metadata_names_gain_the_prefix_and_the_answer_shows_only_the_tenant() {
    for v in [1, 9, 12] {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(s("orders"))))]));
        let got = to_broker(ApiKey::Metadata, v, &req);
        let names: Vec<_> = got
            .topics
            .expect("present")
            .iter()
            .map(|t| t.name.clone().expect("present").0.to_string())
            .collect();
        assert_eq!(names, ["acme.orders"], "v{v}");

        let topic = |n: &str| {
            metadata_response::MetadataResponseTopic::default()
                .with_name(Some(TopicName(s(n))))
                .with_topic_id(Uuid::from_u128(n.len() as u128))
                .with_partitions(vec![metadata_response::MetadataResponsePartition::default()])
        };
        let resp = MetadataResponse::default()
            .with_cluster_id(Some(s("real-cluster")))
            .with_topics(vec![
                topic("acme.orders"),
                topic("globex.orders"),
                topic("__consumer_offsets"),
                topic("acme.audit"),
            ]);
        let got = to_client(ApiKey::Metadata, v, &resp);
        let names: Vec<_> = got
            .topics
            .iter()
            .map(|t| t.name.clone().expect("present").0.to_string())
            .collect();
        assert_eq!(names, ["orders", "audit"], "v{v}");
        if v >= 2 {
            assert_eq!(
                got.cluster_id.map(|c| c.to_string()),
                Some("acme-cluster".into())
            );
        }
        assert_eq!(
            got.topics[0].partitions.len(),
            1,
            "the rest of the element is untouched"
        );
    }
}

#[test]
fn coordinator_keys_groups_and_transactional_ids_are_the_tenant_s() {
    let req = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![s("g1"), s("")]);
    let got = to_broker(ApiKey::FindCoordinator, 4, &req);
    assert_eq!(got.coordinator_keys, [s("acme.g1"), s("acme.")]);
    let got = to_broker(
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default().with_key(s("tx")),
    );
    assert_eq!(got.key, s("acme.tx"));
    let c = |k: &str| find_coordinator_response::Coordinator::default().with_key(s(k));
    let resp =
        FindCoordinatorResponse::default().with_coordinators(vec![c("acme.g1"), c("globex.g1")]);
    let got = to_client(ApiKey::FindCoordinator, 4, &resp);
    assert_eq!(got.coordinators.len(), 1);
    assert_eq!(got.coordinators[0].key, s("g1"));

    let req =
        InitProducerIdRequest::default().with_transactional_id(Some(TransactionalId(s("tx"))));
    let got = to_broker(ApiKey::InitProducerId, 5, &req);
    assert_eq!(got.transactional_id.expect("present").0, s("acme.tx"));

    let g = |id: &str| list_groups_response::ListedGroup::default().with_group_id(GroupId(s(id)));
    let resp = ListGroupsResponse::default().with_groups(vec![g("acme.a"), g("b"), g("acme.")]);
    let got = to_client(ApiKey::ListGroups, 5, &resp);
    let ids: Vec<_> = got
        .groups
        .iter()
        .map(|g| g.group_id.0.to_string())
        .collect();
    assert_eq!(ids, ["a", ""]);
}

#[test]
fn config_resources_are_translated_by_their_type() {
    let r = |t: i8, n: &str| {
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(t)
            .with_resource_name(s(n))
    };
    let req = DescribeConfigsRequest::default().with_resources(vec![
        r(2, "orders"),
        r(4, "1"),
        r(32, "g"),
    ]);
    for v in [1, 4] {
        let got = to_broker(ApiKey::DescribeConfigs, v, &req);
        let names: Vec<_> = got
            .resources
            .iter()
            .map(|r| r.resource_name.to_string())
            .collect();
        assert_eq!(names, ["acme.orders", "1", "acme.g"], "v{v}");
    }
    let res = |t: i8, n: &str| {
        describe_configs_response::DescribeConfigsResult::default()
            .with_resource_type(t)
            .with_resource_name(s(n))
    };
    let resp = DescribeConfigsResponse::default().with_results(vec![
        res(2, "acme.orders"),
        res(2, "globex.x"),
        res(4, "1"),
    ]);
    let got = to_client(ApiKey::DescribeConfigs, 4, &resp);
    let names: Vec<_> = got
        .results
        .iter()
        .map(|r| r.resource_name.to_string())
        .collect();
    assert_eq!(names, ["orders", "1"]);
}

#[test]
fn a_topic_regex_is_confined_to_the_tenant_and_shown_back_as_written() {
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_subscribed_topic_names(Some(vec![TopicName(s("orders"))]))
        .with_subscribed_topic_regex(Some(s("ord.*|x")));
    let got = to_broker(ApiKey::ConsumerGroupHeartbeat, 1, &req);
    assert_eq!(got.group_id.0, s("acme.g"));
    assert_eq!(
        got.subscribed_topic_names.expect("present")[0].0,
        s("acme.orders")
    );
    assert_eq!(got.subscribed_topic_regex, Some(s("acme\\.(?:ord.*|x)")));
    let anchored = req.clone().with_subscribed_topic_regex(Some(s("^ord.*$")));
    let got = to_broker(ApiKey::ConsumerGroupHeartbeat, 1, &anchored);
    assert_eq!(got.subscribed_topic_regex, Some(s("acme\\.(?:ord.*)")));
    for (client, broker) in [
        ("(^.*orders$)", "acme\\.(?:(.*orders))"),
        ("^a|^b$", "acme\\.(?:a|b)"),
        ("[)(]x", "acme\\.(?:[)(]x)"),
        ("[]()]", "acme\\.(?:[]()])"),
        ("a\\(b", "acme\\.(?:a\\(b)"),
        // Escapes from the group are sent as regexes the broker refuses.
        ("x)|(.*", "acme\\.(?:x)|(.*)("),
        ("x)", "acme\\.(?:x))("),
        ("(x", "acme\\.(?:(x)("),
        ("\\Q)\\E|.*", "acme\\.(?:\\Q)\\E|.*)("),
        ("[x", "acme\\.(?:[x)("),
    ] {
        let r = req.clone().with_subscribed_topic_regex(Some(s(client)));
        let got = to_broker(ApiKey::ConsumerGroupHeartbeat, 1, &r);
        assert_eq!(got.subscribed_topic_regex, Some(s(broker)), "{client:?}");
    }
    let escaped = req.clone().with_subscribed_topic_regex(Some(s("ord\\$")));
    let got = to_broker(ApiKey::ConsumerGroupHeartbeat, 1, &escaped);
    assert_eq!(got.subscribed_topic_regex, Some(s("acme\\.(?:ord\\$)")));
    let m = consumer_group_describe_response::Member::default()
        .with_subscribed_topic_regex(Some(s("acme\\.(?:ord.*|x)")));
    let resp = ConsumerGroupDescribeResponse::default().with_groups(vec![
        consumer_group_describe_response::DescribedGroup::default()
            .with_group_id(GroupId(s("acme.g")))
            .with_members(vec![m]),
    ]);
    let got = to_client(ApiKey::ConsumerGroupDescribe, 0, &resp);
    assert_eq!(got.groups[0].group_id.0, s("g"));
    assert_eq!(
        got.groups[0].members[0].subscribed_topic_regex,
        Some(s("ord.*|x"))
    );
}

/// KIP-1152: ListTransactions v2 filters transactional ids by a regex, which must not reach
/// beyond the tenant either (found by the tenant differential test).
#[test]
fn a_transactional_id_pattern_is_confined_to_the_tenant() {
    let req = ListTransactionsRequest::default().with_transactional_id_pattern(Some(s("x.*")));
    let got = to_broker(ApiKey::ListTransactions, 2, &req);
    assert_eq!(got.transactional_id_pattern, Some(s("acme\\.(?:x.*)")));
    let t = |id: &str| {
        list_transactions_response::TransactionState::default()
            .with_transactional_id(TransactionalId(s(id)))
    };
    let resp = ListTransactionsResponse::default().with_transaction_states(vec![
        t("acme.x0"),
        t("zz.acme.x1"),
        t("x2"),
    ]);
    let got = to_client(ApiKey::ListTransactions, 2, &resp);
    let ids: Vec<_> = got
        .transaction_states
        .iter()
        .map(|t| t.transactional_id.0.to_string())
        .collect();
    assert_eq!(ids, ["x0"]);
}

#[test]
fn produce_records_pass_unchanged_under_a_translated_name() {
    let records = Bytes::from(vec![7u8; 300]);
    let req = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(s("tx"))))
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(s("orders")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_records(Some(records.clone())),
            ])]);
    for v in [3, 9, 12] {
        let got = to_broker(ApiKey::Produce, v, &req);
        assert_eq!(
            got.transactional_id.clone().expect("present").0,
            s("acme.tx")
        );
        assert_eq!(got.topic_data[0].name.0, s("acme.orders"));
        assert_eq!(
            got.topic_data[0].partition_data[0].records,
            Some(records.clone())
        );
    }
}

/// Leaving elements out can shorten a compact count's varint (128 elements -> 2 bytes, 100 -> 1).
#[test]
fn counts_are_rewritten_when_their_varint_shrinks() {
    let groups: Vec<_> = (0..140)
        .map(|i| {
            let id = if i < 100 {
                format!("acme.g{i}")
            } else {
                format!("other.g{i}")
            };
            list_groups_response::ListedGroup::default().with_group_id(GroupId(s(&id)))
        })
        .collect();
    let resp = ListGroupsResponse::default().with_groups(groups);
    for v in [2, 3, 5] {
        let got = to_client(ApiKey::ListGroups, v, &resp);
        assert_eq!(got.groups.len(), 100, "v{v}");
        assert_eq!(got.groups[99].group_id.0, s("g99"));
    }
}

#[test]
fn names_that_try_to_escape_stay_inside() {
    for name in ["../globex.orders", "acme.", "", "globex.orders", "acme..x"] {
        let req = DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s(name))]);
        let got = to_broker(ApiKey::DeleteTopics, 5, &req);
        let want = if name.is_empty() {
            String::new()
        } else {
            format!("acme.{name}")
        };
        assert_eq!(got.topic_names[0].0.to_string(), want, "{name:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
    /// Arbitrary bytes as any body of any API: an error or an output at most the prefix per
    /// input byte larger, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300), api in 0i16..90, v in 0i16..20, req in any::<bool>()) {
        let mut out = BytesMut::new();
        let r = if req {
            map().to_broker(api, v, &body, &mut out)
        } else {
            map().to_client(api, v, &body, &mut out)
        };
        if r.is_ok() {
            prop_assert!(out.len() <= body.len() * (1 + "acme.".len()) + "acme-cluster".len() + 16);
        }
    }
}
