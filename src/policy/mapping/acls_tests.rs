//! The ACL APIs answered from the policy: who may list, what a filter selects (Kafka's
//! `AclBindingFilter.matches`), and that changes are always refused.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::*;
use crate::policy::files::PolicySet;
use crate::policy::mapping::{self, NoAuthorizer};
use crate::policy::migrate::describe_bindings;
use crate::policy::ResourceType;
use crate::protocol::codec::{decode_body, split_response};
use crate::protocol::frame::LEN_PREFIX;

const POLICY: &str = "\
g, User:alice, Group:ops
g, User:carol, Group:ops
p, User:bob, Topic, orders, Read, *, allow
p, User:bob, Topic, orders, Write, 10.0.0.1, deny
p, Group:ops, Topic, pay-*, All, *, allow
p, User:*, Topic, *, Describe, *, allow
p, User:dave, Group, g1, Read, 10.1.0.0/16, allow
p, Group:nobody, Topic, x, Read, *, allow
p, User:ops, Cluster, kafka-cluster, Describe, *, allow
";

/// A session with the policy above and the given cluster operations.
struct Session {
    bindings: Option<Vec<AclBinding>>,
    cluster: &'static [Operation],
}

impl Authorize for Session {
    fn allowed(&self, op: Operation, rtype: ResourceType, _: &str) -> bool {
        rtype == ResourceType::Cluster && self.cluster.contains(&op)
    }
    fn allowed_any(&self, _: Operation, _: ResourceType) -> bool {
        false
    }
    fn acl_bindings(&self) -> Option<Vec<AclBinding>> {
        self.bindings.clone()
    }
}

fn session(cluster: &'static [Operation]) -> Session {
    let set = PolicySet::from_texts(None, &[("test.policy", POLICY)], &[]).expect("policy");
    Session {
        bindings: Some(describe_bindings(&set)),
        cluster,
    }
}

fn answer<R: Decodable>(api: ApiKey, body: RequestKind, authz: &dyn Authorize) -> R {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(3)
        .with_correlation_id(7);
    let ids = crate::upstream::topic_ids::TopicIdMap::default();
    let Some(Plan::Respond(frame)) =
        mapping::plan(api, 3, &header, &body, authz, &ids).expect("plan")
    else {
        panic!("the gateway answers {api:?} itself")
    };
    let (h, body) = split_response(api, 3, frame.slice(LEN_PREFIX..)).expect("split");
    assert_eq!(h.correlation_id, 7);
    decode_body(api, 3, body).expect("decode")
}

fn describe(f: DescribeAclsRequest, authz: &dyn Authorize) -> DescribeAclsResponse {
    answer(ApiKey::DescribeAcls, RequestKind::DescribeAcls(f), authz)
}

/// `AclBindingFilter.ANY`, as the Java client sends it (kafka-protocol's default names are "").
fn any() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(1)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1)
}

/// The listing as `(type, name, pattern, principal, host, op, permission)` rows, in order.
fn rows(r: &DescribeAclsResponse) -> Vec<(i8, String, i8, String, String, i8, i8)> {
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    r.resources
        .iter()
        .flat_map(|res| {
            res.acls.iter().map(|a| {
                (
                    res.resource_type,
                    res.resource_name.to_string(),
                    res.pattern_type,
                    a.principal.to_string(),
                    a.host.to_string(),
                    a.operation,
                    a.permission_type,
                )
            })
        })
        .collect()
}

fn row(
    t: i8,
    n: &str,
    p: i8,
    who: &str,
    host: &str,
    op: i8,
    perm: i8,
) -> (i8, String, i8, String, String, i8, i8) {
    (t, n.into(), p, who.into(), host.into(), op, perm)
}

#[test]
fn the_listing_is_the_policy_in_kafkas_form_for_a_session_with_cluster_describe() {
    let all = rows(&describe(any(), &session(&[Operation::Describe])));
    assert_eq!(
        all,
        vec![
            row(2, "*", 3, "User:*", "*", 8, 3),
            row(2, "orders", 3, "User:bob", "*", 3, 3),
            row(2, "orders", 3, "User:bob", "10.0.0.1", 4, 2),
            // Group:ops expanded to its members, as Kafka has no groups.
            row(2, "pay-", 4, "User:alice", "*", 2, 3),
            row(2, "pay-", 4, "User:carol", "*", 2, 3),
            // A CIDR block no Kafka ACL can hold is shown as written, never widened.
            row(3, "g1", 3, "User:dave", "10.1.0.0/16", 3, 3),
            row(4, "kafka-cluster", 3, "User:ops", "*", 8, 3),
        ],
        "grouped per resource pattern, the memberless group's rule lists nothing"
    );
}

#[test]
fn filters_select_as_kafkas_acl_binding_filter() {
    let s = session(&[Operation::Describe]);
    let names = |f: DescribeAclsRequest| -> Vec<(String, String)> {
        rows(&describe(f, &s))
            .into_iter()
            .map(|r| (r.1, r.3))
            .collect()
    };
    let name = |n: &'static str| Some(StrBytes::from_static_str(n));
    // MATCH: every pattern that matches the name: the literal, the wildcard, the prefix.
    let m = any()
        .with_resource_type_filter(2)
        .with_pattern_type_filter(2);
    assert_eq!(
        names(m.clone().with_resource_name_filter(name("pay-1"))),
        [
            ("*".into(), "User:*".into()),
            ("pay-".into(), "User:alice".into()),
            ("pay-".into(), "User:carol".into())
        ]
    );
    // LITERAL and ANY compare the name exactly; PREFIXED only prefixed patterns.
    let lit = any()
        .with_pattern_type_filter(3)
        .with_resource_name_filter(name("pay-"));
    assert!(names(lit).is_empty());
    let pre = any()
        .with_pattern_type_filter(4)
        .with_resource_name_filter(name("pay-"));
    assert_eq!(names(pre).len(), 2);
    let exact = any().with_resource_name_filter(name("orders"));
    assert_eq!(names(exact).len(), 2);
    // Entry filters: principal, host, operation, permission.
    let bob = any().with_principal_filter(name("User:bob"));
    assert_eq!(names(bob).len(), 2);
    let host = any().with_host_filter(name("10.0.0.1"));
    assert_eq!(names(host), [("orders".into(), "User:bob".into())]);
    let deny = any().with_permission_type(2);
    assert_eq!(names(deny), [("orders".into(), "User:bob".into())]);
    let write = any().with_operation(4);
    assert_eq!(names(write).len(), 1);
    let groups = any().with_resource_type_filter(3);
    assert_eq!(names(groups), [("g1".into(), "User:dave".into())]);
    let tokens = any().with_resource_type_filter(6);
    assert!(names(tokens).is_empty());
}

#[test]
fn listing_needs_cluster_describe_and_an_unknown_filter_element_is_42() {
    let denied = describe(any(), &session(&[Operation::Alter]));
    assert_eq!(denied.error_code, 31);
    assert!(denied.resources.is_empty());
    let unknown = describe(any().with_operation(0), &session(&[Operation::Describe]));
    assert_eq!(unknown.error_code, 42);
    assert!(unknown.resources.is_empty());
    let no_authorizer = describe(any(), &NoAuthorizer);
    assert_eq!(
        (
            no_authorizer.error_code,
            no_authorizer.error_message.as_deref()
        ),
        (54, Some("No Authorizer is configured on the broker"))
    );
}

#[test]
fn creating_and_deleting_acls_is_always_refused() {
    let create = CreateAclsRequest::default()
        .with_creations(vec![AclCreation::default(), AclCreation::default()]);
    let delete = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()]);
    let cases: [(&dyn Authorize, i16, &str); 3] = [
        (
            &session(&[Operation::Describe]),
            31,
            "Cluster authorization failed.",
        ),
        (&session(&[Operation::Alter]), 54, POLICY_FILES),
        (&NoAuthorizer, 54, "No Authorizer is configured."),
    ];
    for (authz, code, text) in cases {
        let c: CreateAclsResponse = answer(
            ApiKey::CreateAcls,
            RequestKind::CreateAcls(create.clone()),
            authz,
        );
        assert_eq!(c.results.len(), 2);
        for r in &c.results {
            assert_eq!(
                (r.error_code, r.error_message.as_deref()),
                (code, Some(text))
            );
        }
        let d: DeleteAclsResponse = answer(
            ApiKey::DeleteAcls,
            RequestKind::DeleteAcls(delete.clone()),
            authz,
        );
        assert_eq!(d.filter_results.len(), 1);
        let r = &d.filter_results[0];
        assert_eq!(
            (r.error_code, r.error_message.as_deref()),
            (code, Some(text))
        );
        assert!(r.matching_acls.is_empty());
    }
}
