//! Kafka's ACL APIs, answered from the policy files (issue 12 item 5): DescribeAcls lists the
//! policy's rules as the ACL bindings Kafka with the same ACLs would hold, so operators keep
//! `kafka-acls.sh --list` and AdminClient.describeAcls; CreateAcls and DeleteAcls are refused with
//! SECURITY_DISABLED, because the files stay the source of truth. Nothing is forwarded: the
//! brokers' ACLs are not the ones the gateway enforces.
//!
//! Checks as AclApis makes them: DESCRIBE on the cluster for DescribeAcls (else a top-level 31),
//! ALTER on the cluster for CreateAcls and DeleteAcls (else 31 on every entry). Kafka's 31 message
//! embeds its internal request description; the gateway sends `Errors.message()` instead.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use super::{cluster_allowed, code, message, respond, Authorize, Plan};
use crate::policy::migrate::{wire, AclBinding};
use crate::policy::model::PatternType;
use crate::policy::Operation;
use crate::protocol::codec::ProtocolError;

/// Kafka's SECURITY_DISABLED.
const SECURITY_DISABLED: i16 = 54;
/// AclApis' texts when the broker has no authorizer (allow_all: the gateway authorizes nothing).
const NO_AUTHORIZER_DESCRIBE: &str = "No Authorizer is configured on the broker";
const NO_AUTHORIZER: &str = "No Authorizer is configured.";
/// Why the gateway refuses to change ACLs although the session may.
const POLICY_FILES: &str = "ACLs are managed in the gateway's policy files, not through Kafka's \
    ACL APIs: edit the files (check them with `kafka-gateway policy check`) and reload the gateway.";
/// DescribeAcls filter codes: ANY matches everything; MATCH (patterns only) every pattern that
/// matches the name.
const ANY: i8 = 1;
const MATCH: i8 = 2;

fn text(s: &'static str) -> Option<StrBytes> {
    Some(StrBytes::from_static_str(s))
}

/// AclApis.handleDescribeAcls: DESCRIBE on the cluster (31); then the bindings matching the
/// filter, grouped per resource pattern (Kafka groups them in a hash map: clients do not rely on
/// the order, the gateway sorts them). A filter with an UNKNOWN element is 42 (Kafka refuses to
/// build the request).
pub(in crate::policy::mapping) fn describe_acls(
    version: i16,
    header: &RequestHeader,
    req: &DescribeAclsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let error = |code: i16, text: Option<StrBytes>| {
        DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(text)
    };
    let resp = if !cluster_allowed(authz, Operation::Describe) {
        error(
            code::CLUSTER_AUTHORIZATION_FAILED,
            text(message::CLUSTER_AUTHORIZATION_FAILED),
        )
    } else if let Some(why) = unknown_element(req) {
        error(code::INVALID_REQUEST, Some(StrBytes::from_string(why)))
    } else if let Some(bindings) = authz.acl_bindings() {
        let mut resources: BTreeMap<(i8, &str, i8), Vec<AclDescription>> = BTreeMap::new();
        for b in bindings.iter().filter(|b| matches(req, b)) {
            let key = (
                wire::resource_type_code(b.resource_type),
                b.resource_name.as_str(),
                wire::pattern_type_code(b.pattern_type),
            );
            resources.entry(key).or_default().push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(b.principal.clone()))
                    .with_host(StrBytes::from_string(b.host.clone()))
                    .with_operation(b.operation.code())
                    .with_permission_type(wire::permission_code(b.permission)),
            );
        }
        DescribeAclsResponse::default().with_resources(
            resources
                .into_iter()
                .map(|((rtype, name, pattern), acls)| {
                    DescribeAclsResource::default()
                        .with_resource_type(rtype)
                        .with_resource_name(StrBytes::from_string(name.to_owned()))
                        .with_pattern_type(pattern)
                        .with_acls(acls)
                })
                .collect(),
        )
    } else {
        error(SECURITY_DISABLED, text(NO_AUTHORIZER_DESCRIBE))
    };
    respond(ApiKey::DescribeAcls, version, header, &resp)
}

/// `AclBindingFilter.findIndefiniteField` for a DescribeAcls filter: an UNKNOWN (0) or
/// out-of-range code in any element.
fn unknown_element(req: &DescribeAclsRequest) -> Option<String> {
    let bad = [
        ("resource type", req.resource_type_filter, 1..=7),
        ("pattern type", req.pattern_type_filter, 1..=4),
        ("operation", req.operation, 1..=15),
        ("permission type", req.permission_type, 1..=3),
    ]
    .into_iter()
    .find(|(_, code, valid)| !valid.contains(code))?;
    Some(format!("The filter has an unknown {}: {}.", bad.0, bad.1))
}

/// `AclBindingFilter.matches`: the resource pattern filter, then the entry filter.
fn matches(f: &DescribeAclsRequest, b: &AclBinding) -> bool {
    let rtype = wire::resource_type_code(b.resource_type);
    let pattern = wire::pattern_type_code(b.pattern_type);
    let resource = (f.resource_type_filter == ANY || f.resource_type_filter == rtype)
        && match (f.pattern_type_filter, f.resource_name_filter.as_deref()) {
            (ANY | MATCH, None) => true,
            (p, None) => p == pattern,
            (p, Some(name)) if p == ANY || p == pattern => name == b.resource_name,
            (MATCH, Some(name)) => match b.pattern_type {
                PatternType::Literal => name == b.resource_name || b.resource_name == "*",
                PatternType::Prefixed => name.starts_with(b.resource_name.as_str()),
            },
            _ => false,
        };
    resource
        && f.principal_filter
            .as_deref()
            .is_none_or(|p| p == b.principal)
        && f.host_filter.as_deref().is_none_or(|h| h == b.host)
        && (f.operation == ANY || f.operation == b.operation.code())
        && (f.permission_type == ANY || f.permission_type == wire::permission_code(b.permission))
}

/// Why a change to the ACLs is refused: 31 without ALTER on the cluster, else 54.
fn refusal(authz: &dyn Authorize) -> (i16, &'static str) {
    if !cluster_allowed(authz, Operation::Alter) {
        (
            code::CLUSTER_AUTHORIZATION_FAILED,
            message::CLUSTER_AUTHORIZATION_FAILED,
        )
    } else if authz.acl_bindings().is_none() {
        (SECURITY_DISABLED, NO_AUTHORIZER)
    } else {
        (SECURITY_DISABLED, POLICY_FILES)
    }
}

/// AclApis.handleCreateAcls: every creation refused ([`refusal`]).
pub(in crate::policy::mapping) fn create_acls(
    version: i16,
    header: &RequestHeader,
    req: &CreateAclsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let (code, why) = refusal(authz);
    let results = req.creations.iter().map(|_| {
        AclCreationResult::default()
            .with_error_code(code)
            .with_error_message(text(why))
    });
    let resp = CreateAclsResponse::default().with_results(results.collect());
    respond(ApiKey::CreateAcls, version, header, &resp)
}

/// AclApis.handleDeleteAcls: every filter refused ([`refusal`]), no ACL matched.
pub(in crate::policy::mapping) fn delete_acls(
    version: i16,
    header: &RequestHeader,
    req: &DeleteAclsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let (code, why) = refusal(authz);
    let results = req.filters.iter().map(|_| {
        DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(text(why))
    });
    let resp = DeleteAclsResponse::default().with_filter_results(results.collect());
    respond(ApiKey::DeleteAcls, version, header, &resp)
}

#[cfg(test)]
#[path = "acls_tests.rs"]
mod tests;
