//! Policy migration, both ways, without sockets: gateway policy rules to Kafka ACL bindings
//! (`policy export`: a `kafka-acls.sh` script, CreateAcls creations as JSON), and the ACLs a broker
//! lists in DescribeAcls back to policy-file lines (`policy import`).
//!
//! The conversion is lossless or it fails: whatever one side cannot express exactly is an error
//! naming the rule (`file:line`) or the ACL, every one of them at once, and nothing is produced.
//!
//! Gateway to Kafka:
//! - `Group:<g>` rules become one ACL per member (`g` lines), because Kafka has no groups. A group
//!   without members is an error: the rule matches nobody and would silently vanish, which is
//!   almost always a missing `g` line or a misspelt group.
//! - Hosts: `*`, an IP address, or a /32 (IPv4) or /128 (IPv6) block, written as Java prints the
//!   address (Kafka compares the client's `InetAddress.getHostAddress()` with the ACL's host as
//!   strings, so IPv6 is `0:0:0:0:0:0:0:1`, never `::1`). Wider CIDR blocks are an error.
//! - `prefix*` is a PREFIXED pattern; `*` and literal names are LITERAL. `Cluster, *` is the
//!   literal `kafka-cluster` (the only cluster resource, and the only name Kafka accepts there).
//! - Super users are not ACLs: they are reported for the brokers' `super.users`.
//! - For `kafka-acls.sh`, an operation that does not apply to the resource type (kafka-acls.sh
//!   refuses it; the gateway only warns, because no request ever asks for it) is an error.
//!
//! Kafka to gateway: Topic, Group, TransactionalId and Cluster ACLs of `User:` principals with a
//! gateway operation, from `*` or an exact address. DelegationToken and User resources, other
//! principal types, CREATE_TOKENS / DESCRIBE_TOKENS / TWO_PHASE_COMMIT, literal names holding a
//! `*` (the policy syntax reads a trailing `*` as a prefix and forbids it elsewhere), and hosts
//! that are not addresses in Java's form (they never match in Kafka, but would in the gateway) are
//! errors. The rules come out sorted and deduplicated, and the rendered file is parsed back with
//! the policy parser before it is returned.
//!
//! The commands that load files and talk to a cluster (through `upstream::acls`) are in [`cli`].

pub mod cli;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::net::IpAddr;

use indexmap::IndexMap;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::DescribeAclsResponse;
use kafka_protocol::protocol::StrBytes;

use super::files::{applicable_ops, HostSpec, Pattern, PolicySet, Rule, Source, Subject};
use super::model::{Effect, Operation, PatternType, ResourceType, CLUSTER_NAME};

/// Kafka's wire codes and Java enum names for the ACL vocabulary.
pub mod wire {
    use super::*;

    pub fn resource_type_code(t: ResourceType) -> i8 {
        match t {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    pub fn resource_type_from_code(code: i8) -> Option<ResourceType> {
        ResourceType::ALL
            .into_iter()
            .find(|t| resource_type_code(*t) == code)
    }

    /// `org.apache.kafka.common.resource.ResourceType` names, by code.
    pub fn resource_type_name(code: i8) -> Option<&'static str> {
        Some(match code {
            0 => "UNKNOWN",
            1 => "ANY",
            2 => "TOPIC",
            3 => "GROUP",
            4 => "CLUSTER",
            5 => "TRANSACTIONAL_ID",
            6 => "DELEGATION_TOKEN",
            7 => "USER",
            _ => return None,
        })
    }

    pub fn pattern_type_code(p: PatternType) -> i8 {
        match p {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn pattern_type_name(code: i8) -> Option<&'static str> {
        Some(match code {
            0 => "UNKNOWN",
            1 => "ANY",
            2 => "MATCH",
            3 => "LITERAL",
            4 => "PREFIXED",
            _ => return None,
        })
    }

    pub fn operation_from_code(code: i8) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.code() == code)
    }

    /// `org.apache.kafka.common.acl.AclOperation` names, by code.
    pub fn operation_name(code: i8) -> Option<&'static str> {
        Some(match code {
            0 => "UNKNOWN",
            1 => "ANY",
            2 => "ALL",
            3 => "READ",
            4 => "WRITE",
            5 => "CREATE",
            6 => "DELETE",
            7 => "ALTER",
            8 => "DESCRIBE",
            9 => "CLUSTER_ACTION",
            10 => "DESCRIBE_CONFIGS",
            11 => "ALTER_CONFIGS",
            12 => "IDEMPOTENT_WRITE",
            13 => "CREATE_TOKENS",
            14 => "DESCRIBE_TOKENS",
            15 => "TWO_PHASE_COMMIT",
            _ => return None,
        })
    }

    pub fn permission_code(e: Effect) -> i8 {
        match e {
            Effect::Deny => 2,
            Effect::Allow => 3,
        }
    }

    pub fn permission_from_code(code: i8) -> Option<Effect> {
        match code {
            2 => Some(Effect::Deny),
            3 => Some(Effect::Allow),
            _ => None,
        }
    }

    pub fn permission_name(code: i8) -> Option<&'static str> {
        Some(match code {
            0 => "UNKNOWN",
            1 => "ANY",
            2 => "DENY",
            3 => "ALLOW",
            _ => return None,
        })
    }
}

/// An address as Java's `InetAddress.getHostAddress()` prints it, which is what Kafka compares an
/// ACL's host with: dotted IPv4, and IPv6 as eight lowercase hex groups without compression.
pub fn java_host_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// One Kafka ACL binding in Kafka's terms: what CreateAcls creates and DescribeAcls lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:<name>` or `User:*`.
    pub principal: String,
    /// `*` or an address as Java prints it.
    pub host: String,
    pub operation: Operation,
    pub permission: Effect,
}

impl AclBinding {
    /// The CreateAcls creation for this binding.
    pub fn creation(&self) -> AclCreation {
        AclCreation::default()
            .with_resource_type(wire::resource_type_code(self.resource_type))
            .with_resource_name(StrBytes::from_string(self.resource_name.clone()))
            .with_resource_pattern_type(wire::pattern_type_code(self.pattern_type))
            .with_principal(StrBytes::from_string(self.principal.clone()))
            .with_host(StrBytes::from_string(self.host.clone()))
            .with_operation(self.operation.code())
            .with_permission_type(wire::permission_code(self.permission))
    }

    pub fn wire(&self) -> WireAcl {
        WireAcl::from_creation(&self.creation())
    }
}

/// A rule of the policy that produced an ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: Source,
    pub text: String,
    /// The group the rule names, when the ACL is for one of its members.
    pub via_group: Option<String>,
}

/// One ACL to create, with the rules it comes from (several rules can yield the same ACL, e.g. a
/// group rule and a rule for one of its members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedAcl {
    pub binding: AclBinding,
    pub origins: Vec<Origin>,
}

/// A policy converted to Kafka ACLs.
#[derive(Debug, Clone)]
pub struct Export {
    /// In policy order, each binding once.
    pub acls: Vec<ExportedAcl>,
    /// `User:<name>` principals for the brokers' `super.users`.
    pub super_users: Vec<String>,
    /// The policy's version hash, for the script's header.
    pub version: String,
}

/// Where the ACLs go: `kafka-acls.sh` refuses some ACLs that CreateAcls takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportTarget {
    KafkaAclsScript,
    CreateAcls,
    /// An answer to DescribeAcls: the policy as it is, never refused. A CIDR block wider than one
    /// address is listed as `net/len` (a host no Kafka ACL matches, so the listing does not claim
    /// more than the rule allows), a group without members as no ACL (it matches nobody).
    DescribeAcls,
}

/// The policy's rules as the ACL bindings DescribeAcls lists, each once: what Kafka with the same
/// ACLs would hold ([`ExportTarget::DescribeAcls`]).
pub fn describe_bindings(set: &PolicySet) -> Vec<AclBinding> {
    match export(set, ExportTarget::DescribeAcls) {
        Ok(e) => e.acls.into_iter().map(|a| a.binding).collect(),
        // Unreachable: this target refuses nothing. Listing nothing is the fail-closed answer.
        Err(e) => {
            tracing::error!(error = %e, "the policy could not be listed as ACLs");
            Vec::new()
        }
    }
}

/// A rule that cannot be exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportProblem {
    pub source: Source,
    pub message: String,
}

impl fmt::Display for ExportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub struct ExportError {
    pub problems: Vec<ExportProblem>,
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A rule can have several problems: count the rules.
        let n = self
            .problems
            .iter()
            .map(|p| &p.source)
            .collect::<BTreeSet<_>>()
            .len();
        write!(
            f,
            "cannot export the policy as Kafka ACLs (nothing written): {n} rule{} cannot be expressed",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Converts every rule of `set` to Kafka ACL bindings, or lists every rule that cannot be.
pub fn export(set: &PolicySet, target: ExportTarget) -> Result<Export, ExportError> {
    let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in set.memberships() {
        let list = members.entry(m.group.as_str()).or_default();
        if !list.contains(&m.user.as_str()) {
            list.push(m.user.as_str());
        }
    }
    let mut problems = Vec::new();
    let mut acls: IndexMap<AclBinding, Vec<Origin>> = IndexMap::new();
    for rule in set.rules() {
        match export_rule(rule, &members, target) {
            Err(messages) => problems.extend(messages.into_iter().map(|message| ExportProblem {
                source: rule.source.clone(),
                message,
            })),
            Ok(bindings) => {
                for (binding, via_group) in bindings {
                    acls.entry(binding).or_default().push(Origin {
                        source: rule.source.clone(),
                        text: rule.text.clone(),
                        via_group,
                    });
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(ExportError { problems });
    }
    Ok(Export {
        acls: acls
            .into_iter()
            .map(|(binding, origins)| ExportedAcl { binding, origins })
            .collect(),
        super_users: set.super_users().iter().map(|p| p.to_string()).collect(),
        version: set.version_hash().to_string(),
    })
}

/// The bindings for one rule (with the group they were expanded from), or why there are none.
fn export_rule(
    rule: &Rule,
    members: &BTreeMap<&str, Vec<&str>>,
    target: ExportTarget,
) -> Result<Vec<(AclBinding, Option<String>)>, Vec<String>> {
    let mut errs = Vec::new();
    let principals: Vec<(String, Option<String>)> = match &rule.subject {
        Subject::AnyUser => vec![("User:*".into(), None)],
        Subject::User(u) => vec![(format!("User:{u}"), None)],
        Subject::Group(g) => match members.get(g.as_str()) {
            Some(users) => users
                .iter()
                .map(|u| (format!("User:{u}"), Some(g.clone())))
                .collect(),
            None if target == ExportTarget::DescribeAcls => Vec::new(),
            None => {
                errs.push(format!(
                    "Group:{g} has no members (no `g, User:<name>, Group:{g}` line): Kafka has no groups, \
                     so the rule would export as no ACL at all; add the members or remove the rule"
                ));
                Vec::new()
            }
        },
    };
    let host = match rule.host {
        HostSpec::Any => Some("*".to_string()),
        HostSpec::Ip(ip) => Some(java_host_address(ip)),
        HostSpec::Cidr { net, len } if len == if net.is_ipv4() { 32 } else { 128 } => {
            Some(java_host_address(net))
        }
        HostSpec::Cidr { net, len } if target == ExportTarget::DescribeAcls => {
            Some(format!("{}/{len}", java_host_address(net)))
        }
        HostSpec::Cidr { .. } => {
            errs.push(format!(
                "host {}: Kafka ACLs match exact client addresses only; a CIDR block other than /32 \
                 or /128 cannot be expressed (write one rule per address, or keep the rule in the gateway)",
                rule.host
            ));
            None
        }
    };
    let (name, pattern_type) = match (&rule.pattern, rule.rtype) {
        (Pattern::Any, ResourceType::Cluster) => (CLUSTER_NAME.to_string(), PatternType::Literal),
        (Pattern::Any, _) => ("*".to_string(), PatternType::Literal),
        (Pattern::Literal(n), _) => (n.clone(), PatternType::Literal),
        (Pattern::Prefix(p), _) => (p.clone(), PatternType::Prefixed),
    };
    if target == ExportTarget::KafkaAclsScript && !applicable_ops(rule.rtype).contains(&rule.op) {
        errs.push(format!(
            "operation {} does not apply to {} resources: kafka-acls.sh refuses it (and no request \
             ever asks for it); remove the rule, or export with --format json / --apply",
            rule.op, rule.rtype
        ));
    }
    match host {
        Some(host) if errs.is_empty() => Ok(principals
            .into_iter()
            .map(|(principal, via_group)| {
                (
                    AclBinding {
                        resource_type: rule.rtype,
                        resource_name: name.clone(),
                        pattern_type,
                        principal,
                        host: host.clone(),
                        operation: rule.op,
                        permission: rule.effect,
                    },
                    via_group,
                )
            })
            .collect()),
        _ => Err(errs),
    }
}

/// Quotes `s` for a POSIX shell: single quotes, with `'` written as `'\''`. Plain words that the
/// shell leaves alone stay unquoted for readability.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@%+=,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Text from a policy file, safe inside a one-line comment (no control characters).
fn comment_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A shell script of `kafka-acls.sh --add` commands, one per ACL. `from` says which policy files
/// it was generated from (for the header).
pub fn render_kafka_acls(export: &Export, from: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#!/bin/sh");
    let _ = writeln!(
        out,
        "# Generated by `kafka-gateway policy export --format kafka-acls` from {} (policy version {}).",
        comment_safe(from),
        export.version
    );
    let _ = writeln!(
        out,
        "# Recreates the gateway policy as Kafka ACLs: {} ACL{}, one `kafka-acls.sh --add` each.",
        export.acls.len(),
        if export.acls.len() == 1 { "" } else { "s" }
    );
    out.push_str(
        "# Set BOOTSTRAP (host:port of a broker), COMMAND_CONFIG (a client properties file for a\n\
         # principal allowed to alter the cluster's ACLs) and, if kafka-acls.sh is not on the PATH,\n\
         # KAFKA_ACLS, then run this script.\n",
    );
    if export.super_users.is_empty() {
        out.push_str("# The policy has no super users.\n");
    } else {
        out.push_str(
            "#\n# Super users are not ACLs: set them on every broker and controller instead:\n",
        );
        let _ = writeln!(
            out,
            "#   super.users={}",
            comment_safe(&export.super_users.join(";"))
        );
    }
    out.push_str(
        "set -eu\n\
         : \"${BOOTSTRAP:?set BOOTSTRAP to the host:port of a broker}\"\n\
         : \"${COMMAND_CONFIG:?set COMMAND_CONFIG to a client properties file}\"\n\
         KAFKA_ACLS=\"${KAFKA_ACLS:-kafka-acls.sh}\"\n",
    );
    for acl in &export.acls {
        out.push('\n');
        for o in &acl.origins {
            let via = match &o.via_group {
                Some(g) => format!(" (a member of Group:{g})"),
                None => String::new(),
            };
            let _ = writeln!(out, "# {}: {}{via}", o.source, comment_safe(&o.text));
        }
        let b = &acl.binding;
        let side = match b.permission {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        };
        let resource = match b.resource_type {
            ResourceType::Topic => format!("--topic {}", shell_quote(&b.resource_name)),
            ResourceType::Group => format!("--group {}", shell_quote(&b.resource_name)),
            ResourceType::TransactionalId => {
                format!("--transactional-id {}", shell_quote(&b.resource_name))
            }
            ResourceType::Cluster => "--cluster".to_string(),
        };
        let pattern = match b.pattern_type {
            PatternType::Literal => "literal",
            PatternType::Prefixed => "prefixed",
        };
        let _ = writeln!(
            out,
            "\"$KAFKA_ACLS\" --bootstrap-server \"$BOOTSTRAP\" --command-config \"$COMMAND_CONFIG\" --add \\\n  \
             --{side}-principal {} --{side}-host {} --operation {} \\\n  \
             {resource} --resource-pattern-type {pattern}",
            shell_quote(&b.principal),
            shell_quote(&b.host),
            b.operation.name(),
        );
    }
    out
}

/// One CreateAcls creation, as `policy export --format json` prints it: field names after the
/// CreateAcls request, values as Kafka's Java enums name them (what `fromString` accepts).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JsonCreation {
    pub resource_type: String,
    pub resource_name: String,
    pub resource_pattern_type: String,
    pub principal: String,
    pub host: String,
    pub operation: String,
    pub permission_type: String,
}

impl JsonCreation {
    pub fn of(b: &AclBinding) -> JsonCreation {
        let name = |n: Option<&'static str>| n.unwrap_or("UNKNOWN").to_string();
        JsonCreation {
            resource_type: name(wire::resource_type_name(wire::resource_type_code(
                b.resource_type,
            ))),
            resource_name: b.resource_name.clone(),
            resource_pattern_type: name(wire::pattern_type_name(wire::pattern_type_code(
                b.pattern_type,
            ))),
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: name(wire::operation_name(b.operation.code())),
            permission_type: name(wire::permission_name(wire::permission_code(b.permission))),
        }
    }
}

/// The creations as a JSON array (one object per ACL), ending in a newline.
pub fn render_json(export: &Export) -> String {
    let items: Vec<JsonCreation> = export
        .acls
        .iter()
        .map(|a| JsonCreation::of(&a.binding))
        .collect();
    // Serializing plain strings into a Vec cannot fail.
    let mut out = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into());
    out.push('\n');
    out
}

/// An ACL as a broker lists it: wire codes, before the gateway maps them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WireAcl {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

impl WireAcl {
    pub fn from_creation(c: &AclCreation) -> WireAcl {
        WireAcl {
            resource_type: c.resource_type,
            resource_name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type,
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation,
            permission: c.permission_type,
        }
    }

    /// Every ACL of a DescribeAcls response, in the broker's order.
    pub fn from_response(resp: &DescribeAclsResponse) -> Vec<WireAcl> {
        resp.resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(move |a| WireAcl {
                    resource_type: r.resource_type,
                    resource_name: r.resource_name.to_string(),
                    pattern_type: r.pattern_type,
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: a.operation,
                    permission: a.permission_type,
                })
            })
            .collect()
    }
}

impl fmt::Display for WireAcl {
    /// As `kafka-acls.sh --list` prints it, so operators can find it there.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |n: Option<&'static str>, code: i8| match n {
            Some(n) => n.to_string(),
            None => format!("code {code}"),
        };
        write!(
            f,
            "ResourcePattern(resourceType={}, name={}, patternType={}) (principal={}, host={}, operation={}, permissionType={})",
            name(wire::resource_type_name(self.resource_type), self.resource_type),
            self.resource_name.escape_debug(),
            name(wire::pattern_type_name(self.pattern_type), self.pattern_type),
            self.principal.escape_debug(),
            self.host.escape_debug(),
            name(wire::operation_name(self.operation), self.operation),
            name(wire::permission_name(self.permission), self.permission),
        )
    }
}

/// A policy rule as plain data: what a `p` line says, without where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleKey {
    pub subject: Subject,
    pub rtype: ResourceType,
    pub pattern: Pattern,
    pub op: Operation,
    pub host: HostSpec,
    pub effect: Effect,
}

impl RuleKey {
    pub fn of(rule: &Rule) -> RuleKey {
        RuleKey {
            subject: rule.subject.clone(),
            rtype: rule.rtype,
            pattern: rule.pattern.clone(),
            op: rule.op,
            host: rule.host,
            effect: rule.effect,
        }
    }

    /// The policy-file line, fields quoted where the parser needs it.
    pub fn line(&self) -> String {
        format!(
            "p, {}, {}, {}, {}, {}, {}",
            csv_field(&self.subject.to_string()),
            self.rtype,
            csv_field(&self.pattern.to_string()),
            self.op,
            self.host,
            self.effect
        )
    }
}

/// A policy-file field: double-quoted (with `""` for a quote) when it holds a comma or a quote, or
/// starts or ends with white space, which the parser would otherwise split or trim.
fn csv_field(s: &str) -> String {
    let needs = s.contains([',', '"'])
        || s.starts_with(char::is_whitespace)
        || s.ends_with(char::is_whitespace);
    if needs {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// An ACL that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    pub acl: String,
    pub message: String,
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.acl, self.message)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub struct ImportError {
    pub problems: Vec<ImportProblem>,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An ACL can have several problems: count the ACLs.
        let n = self
            .problems
            .iter()
            .map(|p| &p.acl)
            .collect::<BTreeSet<_>>()
            .len();
        write!(
            f,
            "cannot import the cluster's ACLs (nothing written): {n} ACL{} cannot be expressed in a policy file",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// The gateway rule for one Kafka ACL, or every reason it has none.
pub fn import_acl(acl: &WireAcl) -> Result<RuleKey, Vec<String>> {
    let mut errs = Vec::new();
    let rtype = match wire::resource_type_from_code(acl.resource_type) {
        Some(t) => Some(t),
        None => {
            errs.push(match wire::resource_type_name(acl.resource_type) {
                Some(n @ ("DELEGATION_TOKEN" | "USER")) => format!(
                    "{n} ACLs have no gateway equivalent (the gateway authorizes Topic, Group, \
                     TransactionalId and Cluster; delegation tokens and user credentials are the brokers' own)"
                ),
                _ => format!(
                    "resource type code {} is not one the gateway authorizes (Topic, Group, TransactionalId, Cluster)",
                    acl.resource_type
                ),
            });
            None
        }
    };
    let name = &acl.resource_name;
    let pattern = match acl.pattern_type {
        3 if name == "*" => Some(Pattern::Any),
        3 if name.ends_with('*') => {
            errs.push(format!(
                "the LITERAL name `{}` ends in `*`, which a policy file reads as a PREFIXED pattern: \
                 it cannot be expressed (rename the resource, or keep the ACL on the brokers)",
                name.escape_debug()
            ));
            None
        }
        3 if name.contains('*') => {
            errs.push(format!(
                "the LITERAL name `{}` holds a `*`, which a policy file only allows as the whole name \
                 or the last character: it cannot be expressed",
                name.escape_debug()
            ));
            None
        }
        4 if name.contains('*') => {
            errs.push(format!(
                "the PREFIXED name `{}` holds a `*`: a policy file cannot express it",
                name.escape_debug()
            ));
            None
        }
        4 if name.is_empty() => {
            errs.push("an empty PREFIXED name cannot be expressed".into());
            None
        }
        3 | 4 => {
            let text = if acl.pattern_type == 4 {
                format!("{name}*")
            } else {
                name.clone()
            };
            match rtype.map(|t| Pattern::parse(&text, Some(t))) {
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    errs.push(e);
                    None
                }
                None => None,
            }
        }
        other => {
            errs.push(format!(
                "pattern type {} is not LITERAL or PREFIXED",
                wire::pattern_type_name(other)
                    .map_or_else(|| format!("code {other}"), str::to_string)
            ));
            None
        }
    };
    let subject = match acl.principal.split_once(':') {
        Some(("User", _)) => match Subject::parse(&acl.principal) {
            Ok(s) => Some(s),
            Err(e) => {
                errs.push(e);
                None
            }
        },
        Some((kind, _)) => {
            errs.push(format!(
                "principal type `{}` has no gateway equivalent: the gateway's principals are `User:` \
                 (a `Group:` in a policy file means its `g` members, not a Kafka principal type)",
                kind.escape_debug()
            ));
            None
        }
        None => {
            errs.push(format!(
                "principal `{}` is not `Type:name`",
                acl.principal.escape_debug()
            ));
            None
        }
    };
    let host = if acl.host == "*" {
        Some(HostSpec::Any)
    } else {
        match acl.host.parse::<IpAddr>() {
            Ok(ip) if java_host_address(ip.to_canonical()) == acl.host => {
                Some(HostSpec::Ip(ip.to_canonical()))
            }
            Ok(ip) => {
                errs.push(format!(
                    "host `{}` never matches in Kafka, which compares the client's address as Java \
                     prints it (`{}`); the gateway would match it, so importing it would widen access",
                    acl.host,
                    java_host_address(ip.to_canonical())
                ));
                None
            }
            Err(_) => {
                errs.push(format!(
                    "host `{}` is not `*` or an IP address (Kafka compares host strings with the \
                     client's address; the gateway never resolves names)",
                    acl.host.escape_debug()
                ));
                None
            }
        }
    };
    let op = match wire::operation_from_code(acl.operation) {
        Some(op) => Some(op),
        None => {
            errs.push(match wire::operation_name(acl.operation) {
                Some(n @ ("CREATE_TOKENS" | "DESCRIBE_TOKENS" | "TWO_PHASE_COMMIT")) => {
                    format!("operation {n} has no gateway equivalent")
                }
                Some(n) => format!("operation {n} is not an ACL operation"),
                None => format!("unknown operation code {}", acl.operation),
            });
            None
        }
    };
    let effect = match wire::permission_from_code(acl.permission) {
        Some(e) => Some(e),
        None => {
            errs.push(format!(
                "permission type {} is not ALLOW or DENY",
                wire::permission_name(acl.permission)
                    .map_or_else(|| format!("code {}", acl.permission), str::to_string)
            ));
            None
        }
    };
    match (rtype, pattern, subject, host, op, effect) {
        (Some(rtype), Some(pattern), Some(subject), Some(host), Some(op), Some(effect))
            if errs.is_empty() =>
        {
            Ok(RuleKey {
                subject,
                rtype,
                pattern,
                op,
                host,
                effect,
            })
        }
        _ => Err(errs),
    }
}

/// The gateway rules for a cluster's ACLs, sorted (by principal, resource type, pattern,
/// operation, host, effect) and deduplicated; or every ACL that cannot be expressed.
pub fn import(acls: &[WireAcl]) -> Result<Vec<RuleKey>, ImportError> {
    let mut rules = BTreeSet::new();
    let mut problems = Vec::new();
    // The broker's order is not stable across calls: sort the ACLs so errors are too.
    let mut sorted: Vec<&WireAcl> = acls.iter().collect();
    sorted.sort();
    for acl in sorted {
        match import_acl(acl) {
            Ok(r) => {
                rules.insert(r);
            }
            Err(messages) => problems.extend(messages.into_iter().map(|message| ImportProblem {
                acl: acl.to_string(),
                message,
            })),
        }
    }
    if problems.is_empty() {
        Ok(rules.into_iter().collect())
    } else {
        Err(ImportError { problems })
    }
}

/// The policy file for imported rules: `header` lines as comments, then the rules, a blank line
/// between principals. The text is parsed back with the policy parser and must yield exactly
/// `rules`; anything else is an error (a bug here, never a silently different policy).
pub fn render_policy(rules: &[RuleKey], header: &[String]) -> Result<String, ImportError> {
    let mut out = String::new();
    for h in header {
        let _ = writeln!(out, "# {}", comment_safe(h));
    }
    let mut last: Option<&Subject> = None;
    for r in rules {
        if last.is_some_and(|s| s != &r.subject) || (last.is_none() && !header.is_empty()) {
            out.push('\n');
        }
        last = Some(&r.subject);
        out.push_str(&r.line());
        out.push('\n');
    }
    let parsed = PolicySet::from_texts(None, &[("imported policy", &out)], &[]).map_err(|e| {
        ImportError {
            problems: e
                .problems
                .into_iter()
                .map(|d| ImportProblem {
                    acl: "(rendered policy)".into(),
                    message: format!("the policy parser refuses the output: {d}"),
                })
                .collect(),
        }
    })?;
    let got: BTreeSet<RuleKey> = parsed.rules().iter().map(|r| RuleKey::of(r)).collect();
    let want: BTreeSet<RuleKey> = rules.iter().cloned().collect();
    if got != want || parsed.rules().len() != rules.len() {
        return Err(ImportError {
            problems: vec![ImportProblem {
                acl: "(rendered policy)".into(),
                message: "the policy parser reads the output back as different rules".into(),
            }],
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod tests;
