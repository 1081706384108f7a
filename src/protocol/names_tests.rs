//! The in-place name-list reader and the named-answer template against kafka-protocol's own
//! decoder and encoder, every version read this way.

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as CgDescribedGroup;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    RequestHeader, RequestKind,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::prelude::*;

use super::*;
use crate::protocol::codec::{decode_request, encode_request_with_header, read_names_request};

fn header(api: ApiKey, version: i16) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(77)
        .with_client_id(Some(StrBytes::from_static_str("c")))
}

fn g(n: &str) -> GroupId {
    GroupId(StrBytes::from_string(n.to_string()))
}

/// The request of `names` for `api` at `version`, framed, with the flag set where it exists.
fn frame(api: ApiKey, version: i16, names: &[String], flag: bool) -> Bytes {
    let groups: Vec<GroupId> = names.iter().map(|n| g(n)).collect();
    let h = header(api, version);
    match api {
        ApiKey::DescribeGroups => encode_request_with_header(
            api,
            version,
            &h,
            &DescribeGroupsRequest::default()
                .with_groups(groups)
                .with_include_authorized_operations(version >= 3 && flag),
        ),
        ApiKey::DeleteGroups => encode_request_with_header(
            api,
            version,
            &h,
            &DeleteGroupsRequest::default().with_groups_names(groups),
        ),
        _ => encode_request_with_header(
            api,
            version,
            &h,
            &ConsumerGroupDescribeRequest::default()
                .with_group_ids(groups)
                .with_include_authorized_operations(flag),
        ),
    }
    .expect("encode")
}

fn names_of(api: ApiKey, version: i16, frame: &Bytes) -> Vec<String> {
    let body = decode_request(api, version, frame.slice(LEN_PREFIX..))
        .expect("decodes")
        .body;
    let groups = match body {
        RequestKind::DescribeGroups(r) => r.groups,
        RequestKind::DeleteGroups(r) => r.groups_names,
        RequestKind::ConsumerGroupDescribe(r) => r.group_ids,
        other => panic!("unexpected {other:?}"),
    };
    groups.iter().map(|g| g.0.to_string()).collect()
}

fn apis() -> impl Strategy<Value = (ApiKey, i16)> {
    prop_oneof![
        (0i16..=6).prop_map(|v| (ApiKey::DescribeGroups, v)),
        (0i16..=2).prop_map(|v| (ApiKey::DeleteGroups, v)),
        (0i16..=1).prop_map(|v| (ApiKey::ConsumerGroupDescribe, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The names read are the names decoded; a splice keeping every name is the frame as sent; a
    /// splice dropping some decodes to the request without them.
    #[test]
    fn reads_and_splices_as_kafka_protocol_decodes(
        (api, version) in apis(),
        names in prop::collection::vec("[a-zé.-]{0,8}", 0..8),
        flag in any::<bool>(),
        drop_every in 2usize..4,
    ) {
        let f = frame(api, version, &names, flag);
        let (_, wire) = read_names_request(api, version, f.slice(LEN_PREFIX..), u64::MAX)
            .expect("reads");
        let read: Vec<String> = wire.names().map(|(_, n)| n.to_string()).collect();
        prop_assert_eq!(&read, &names);
        for (at, n) in wire.names() {
            prop_assert_eq!(wire.name_at(at), Some(n));
        }
        let has_flag = match api {
            ApiKey::DescribeGroups => version >= 3,
            ApiKey::DeleteGroups => false,
            _ => true,
        };
        prop_assert_eq!(wire.include_authorized_operations(), has_flag && flag);
        prop_assert_eq!(wire.splice(|_| true).expect("splice"), f.clone());
        let spliced = wire.splice(|i| i % drop_every != 0).expect("splice");
        let want: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| i % drop_every != 0)
            .map(|(_, n)| n.clone())
            .collect();
        prop_assert_eq!(names_of(api, version, &spliced), want);
    }

    /// An answer written from the template is the entry kafka-protocol encodes with that name.
    #[test]
    fn named_answers_are_what_kafka_protocol_encodes(
        name in "[a-zé.-]{0,200}",
        code in prop_oneof![Just(30i16), Just(0)],
    ) {
        fn check<T: Encodable + Clone>(
            api: ApiKey,
            version: i16,
            compact: bool,
            entry: T,
            name: &str,
            set: impl Fn(&mut T, &'static str),
            set_owned: impl Fn(&mut T, &str),
        ) -> Result<(), TestCaseError> {
            let answer = NamedAnswer::new(api, version, &entry, compact, set).expect("template");
            let mut got = bytes::BytesMut::new();
            answer.write(&mut got, name).expect("write");
            let mut want_entry = entry;
            set_owned(&mut want_entry, name);
            let mut want = bytes::BytesMut::new();
            want_entry.encode(&mut want, version).expect("encode");
            prop_assert_eq!(&got[..], &want[..], "{:?} v{}", api, version);
            prop_assert_eq!(answer.size(name), got.len());
            Ok(())
        }
        for version in 0..=6 {
            check(ApiKey::DescribeGroups, version, version >= 5,
                DescribedGroup::default().with_error_code(code), &name,
                |e, n| e.group_id = GroupId(StrBytes::from_static_str(n)),
                |e, n| e.group_id = g(n))?;
        }
        for version in 0..=2 {
            check(ApiKey::DeleteGroups, version, version >= 2,
                DeletableGroupResult::default().with_error_code(code), &name,
                |e, n| e.group_id = GroupId(StrBytes::from_static_str(n)),
                |e, n| e.group_id = g(n))?;
        }
        for version in 0..=1 {
            check(ApiKey::ConsumerGroupDescribe, version, true,
                CgDescribedGroup::default().with_error_code(code), &name,
                |e, n| e.group_id = GroupId(StrBytes::from_static_str(n)),
                |e, n| e.group_id = g(n))?;
        }
    }

    /// Whatever the bytes after a valid header, reading never panics.
    #[test]
    fn arbitrary_bodies_are_read_or_refused_without_panic(
        (api, version) in apis(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let f = frame(api, version, &[], false);
        let payload = f.slice(LEN_PREFIX..);
        let mut h = payload.clone();
        RequestHeader::decode(&mut h, api.request_header_version(version)).expect("header");
        let body_at = payload.len() - h.len();
        let mut bytes = payload[..body_at].to_vec();
        bytes.extend_from_slice(&body);
        if let Ok(wire) = NameListWire::parse(api, version, Bytes::from(bytes), body_at) {
            let _ = wire.names().count();
            let _ = wire.splice(|i| i % 2 == 0);
        }
    }
}

#[test]
fn a_list_too_long_to_authorize_is_refused_before_it_is_walked() {
    let names: Vec<String> = (0..2_000).map(|i| format!("g{i}")).collect();
    let f = frame(ApiKey::DeleteGroups, 2, &names, false);
    let payload = f.slice(LEN_PREFIX..);
    let err = read_names_request(
        ApiKey::DeleteGroups,
        2,
        payload.clone(),
        planning_bytes(1_000),
    )
    .expect_err("refused");
    assert_eq!(err.reason(), "decoded_too_large");
    assert!(read_names_request(ApiKey::DeleteGroups, 2, payload, planning_bytes(2_000)).is_ok());
}
