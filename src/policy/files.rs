//! Policy files: parsing and validating the hand-edited rule files, the casbin model that documents
//! (and cross-checks) the semantics, the version hash for audit, and lint warnings.
//!
//! A policy file holds casbin CSV lines, one rule per line (and safeguards, `s` lines, see
//! [`super::safeguards`]; casbin never sees them); a line starting with `#` is a comment and
//! blank lines are ignored:
//!
//! ```text
//! # principal       type   pattern  operation  host        effect
//! p, User:alice,    Topic, orders,  Read,      *,          allow
//! p, Group:payments, Topic, pay-*,  Write,     10.0.0.0/8, allow
//! g, User:bob, Group:payments
//! ```
//!
//! Resource types and operations are case-insensitive (`DESCRIBE_CONFIGS` works); principal types
//! (`User`, `Group`) are not, as in Kafka. The pattern `*` matches every name, `prefix*` is a
//! PREFIXED pattern, anything else is a literal name (so a literal name cannot end in `*`). A field
//! may be double-quoted to hold a comma (`"User:CN=a,O=b"`), with `""` for a quote.
//!
//! Every problem found is reported at once, each with `file:line` and the reason. The engine
//! ([`super::engine::Engine`]) is the hot path; the casbin enforcer built here from the model file
//! is kept for `explain` and for the equivalence tests, and a few probe requests at load prove that
//! the model evaluates and agrees with the rules as the gateway reads them.

mod casbin_model;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::{Effect, Operation, PatternType, ResourceType, CLUSTER_NAME};
use super::safeguards::{self, Change, Judged, Judgement, Safeguard, SafeguardId, Violation};
use crate::auth::Principal;

pub use casbin_model::REQUIRED_EFFECT;

/// Where a rule or membership was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    pub file: Arc<str>,
    pub line: u32,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A rule's position in the loaded policy (file order, starting at 0). Lower ids are reported
/// first when several rules decide alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Who a rule is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// `User:*`: every principal (Kafka's wildcard principal), including `User:ANONYMOUS`.
    AnyUser,
    /// `User:<name>`.
    User(String),
    /// `Group:<name>`: the users listed in `g` lines for this group.
    Group(String),
}

impl Subject {
    pub fn parse(s: &str) -> Result<Subject, String> {
        let Some((kind, name)) = s.split_once(':') else {
            return Err(format!(
                "bad principal `{s}`: expected `User:<name>`, `Group:<name>` or `User:*`"
            ));
        };
        check_principal_name(s, name)?;
        match kind {
            "User" if name == "*" => Ok(Subject::AnyUser),
            "User" => Ok(Subject::User(name.to_string())),
            "Group" if name == "*" => Err(format!(
                "bad principal `{s}`: `Group:*` is not a principal; write `User:*` for everyone"
            )),
            "Group" => Ok(Subject::Group(name.to_string())),
            _ if kind.eq_ignore_ascii_case("user") || kind.eq_ignore_ascii_case("group") => Err(format!(
                "bad principal `{s}`: principal types are case-sensitive, as in Kafka (write `User:` or `Group:`)"
            )),
            _ => Err(format!(
                "bad principal `{s}`: unknown principal type `{kind}` (expected `User` or `Group`)"
            )),
        }
    }

    pub fn kind(&self) -> &str {
        match self {
            Subject::AnyUser | Subject::User(_) => "User",
            Subject::Group(_) => "Group",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Subject::AnyUser => "*",
            Subject::User(n) | Subject::Group(n) => n,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.name())
    }
}

fn check_principal_name(whole: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("bad principal `{whole}`: empty name"));
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(format!(
            "bad principal `{whole}`: the name has surrounding spaces or control characters"
        ));
    }
    Ok(())
}

/// Parses a principal as written in configuration (`User:alice`) or on the command line.
pub fn parse_principal(s: &str) -> Result<Principal, String> {
    let Some((kind, name)) = s.split_once(':') else {
        return Err(format!("bad principal `{s}`: expected `User:<name>`"));
    };
    if kind.is_empty() || kind.chars().any(|c| !c.is_ascii_alphanumeric()) {
        return Err(format!("bad principal `{s}`: bad principal type `{kind}`"));
    }
    check_principal_name(s, name)?;
    Ok(Principal {
        kind: kind.to_string(),
        name: name.to_string(),
    })
}

/// Which resource names a rule covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pattern {
    /// The literal name `*`: every name.
    Any,
    /// Exactly this name.
    Literal(String),
    /// Every name starting with this (non-empty) prefix, written `prefix*`.
    Prefix(String),
}

impl Pattern {
    /// Parses the pattern field of a rule for `rtype`.
    pub fn parse(s: &str, rtype: Option<ResourceType>) -> Result<Pattern, String> {
        if s.is_empty() {
            return Err("empty resource name (write `*` for every name)".into());
        }
        if s == "*" {
            return Ok(Pattern::Any);
        }
        if s.chars().any(char::is_control) {
            return Err(format!(
                "resource pattern `{}` holds control characters",
                s.escape_debug()
            ));
        }
        let (pattern, body) = match s.strip_suffix('*') {
            Some(prefix) => (Pattern::Prefix(prefix.to_string()), prefix),
            None => (Pattern::Literal(s.to_string()), s),
        };
        if body.contains('*') {
            return Err(format!(
                "resource pattern `{s}`: `*` may only be the whole pattern (every name) or its last \
                 character (a prefix); it is not a glob"
            ));
        }
        if rtype == Some(ResourceType::Cluster) {
            match &pattern {
                Pattern::Prefix(_) => {
                    return Err(format!(
                        "prefix pattern `{s}` on Cluster: the cluster resource is named \
                         `{CLUSTER_NAME}`; write `{CLUSTER_NAME}` or `*`"
                    ))
                }
                Pattern::Literal(n) if n != CLUSTER_NAME => {
                    return Err(format!(
                        "Cluster resource `{s}` can never match: the cluster resource is named \
                         `{CLUSTER_NAME}`; write `{CLUSTER_NAME}` or `*`"
                    ))
                }
                _ => {}
            }
        }
        Ok(pattern)
    }

    /// Kafka's matching: literal equality, `*` for everything, `startsWith` for prefixes.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Literal(l) => l == name,
            Pattern::Prefix(p) => name.starts_with(p.as_str()),
        }
    }

    /// Does every name this pattern matches also match `self`?
    pub fn covers(&self, other: &Pattern) -> bool {
        match (self, other) {
            (Pattern::Any, _) => true,
            (Pattern::Literal(a), Pattern::Literal(b)) => a == b,
            (Pattern::Prefix(p), Pattern::Literal(b) | Pattern::Prefix(b)) => {
                b.starts_with(p.as_str())
            }
            _ => false,
        }
    }

    /// The Kafka pattern type (`*` is a LITERAL pattern in Kafka).
    pub fn pattern_type(&self) -> PatternType {
        match self {
            Pattern::Any | Pattern::Literal(_) => PatternType::Literal,
            Pattern::Prefix(_) => PatternType::Prefixed,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Any => f.write_str("*"),
            Pattern::Literal(l) => f.write_str(l),
            Pattern::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

/// The client addresses a rule applies to. Host names are never resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostSpec {
    Any,
    Ip(IpAddr),
    /// An extension over Kafka (which only knows exact addresses and `*`).
    Cidr {
        net: IpAddr,
        len: u8,
    },
}

impl HostSpec {
    pub fn parse(s: &str) -> Result<HostSpec, String> {
        const HINT: &str = "expected `*`, an IP address or a CIDR block like 10.0.0.0/8 (host names are not resolved)";
        if s == "*" {
            return Ok(HostSpec::Any);
        }
        if let Some((addr, len)) = s.split_once('/') {
            let net: IpAddr = addr
                .parse()
                .map_err(|_| format!("bad host `{s}`: {HINT}"))?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            let len: u8 =
                len.parse().ok().filter(|l| *l <= max).ok_or_else(|| {
                    format!("bad host `{s}`: the prefix length must be 0..={max}")
                })?;
            let (net, len) = canonical_cidr(net, len);
            if mask(net, len) != net {
                return Err(format!(
                    "bad host `{s}`: the address has bits set beyond the /{len} prefix; did you mean `{}/{len}`?",
                    mask(net, len)
                ));
            }
            return Ok(HostSpec::Cidr { net, len });
        }
        let ip: IpAddr = s.parse().map_err(|_| format!("bad host `{s}`: {HINT}"))?;
        Ok(HostSpec::Ip(ip.to_canonical()))
    }

    /// `host` must be canonical (see [`canonical_ip`]).
    pub fn matches(&self, host: IpAddr) -> bool {
        match *self {
            HostSpec::Any => true,
            HostSpec::Ip(ip) => ip == host,
            HostSpec::Cidr { net, len } => {
                net.is_ipv4() == host.is_ipv4() && mask(host, len) == net
            }
        }
    }

    /// Does every address this spec matches also match `self`?
    pub fn covers(&self, other: &HostSpec) -> bool {
        match (*self, *other) {
            (HostSpec::Any, _) => true,
            (_, HostSpec::Any) => false,
            (_, HostSpec::Ip(ip)) => self.matches(ip),
            (HostSpec::Ip(_), HostSpec::Cidr { .. }) => false,
            (
                HostSpec::Cidr { net, len },
                HostSpec::Cidr {
                    net: onet,
                    len: olen,
                },
            ) => olen >= len && net.is_ipv4() == onet.is_ipv4() && mask(onet, len) == net,
        }
    }
}

impl fmt::Display for HostSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostSpec::Any => f.write_str("*"),
            HostSpec::Ip(ip) => write!(f, "{ip}"),
            HostSpec::Cidr { net, len } => write!(f, "{net}/{len}"),
        }
    }
}

/// The form addresses are compared in: an IPv4-mapped IPv6 address is the IPv4 address (as Java's
/// `InetAddress` does, so Kafka rules written for IPv4 clients keep matching on dual-stack sockets).
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn canonical_cidr(net: IpAddr, len: u8) -> (IpAddr, u8) {
    match net {
        IpAddr::V6(v6) if len >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), len - 96),
            None => (net, len),
        },
        _ => (net, len),
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

/// Does a rule with operation `rule_op` and `effect` apply to a request for `requested`? DENY rules
/// apply to their own operation and to `All` rules; ALLOW rules also to the operations their
/// operation implies (READ/WRITE/DELETE/ALTER imply DESCRIBE, ALTER_CONFIGS implies
/// DESCRIBE_CONFIGS). DENY never implies anything.
pub fn op_applies(rule_op: Operation, effect: Effect, requested: Operation) -> bool {
    rule_op == Operation::All
        || rule_op == requested
        || (effect == Effect::Allow && requested.implied_by().contains(&rule_op))
}

/// The operations Kafka accepts in ACLs for each resource type (kafka-acls validates these). A rule
/// for another operation is legal here but is never requested by any API, so `check` warns.
pub fn applicable_ops(rtype: ResourceType) -> &'static [Operation] {
    use Operation::*;
    match rtype {
        ResourceType::Topic => &[
            All,
            Read,
            Write,
            Create,
            Delete,
            Alter,
            Describe,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[All, Read, Delete, Describe, DescribeConfigs, AlterConfigs],
        ResourceType::TransactionalId => &[All, Describe, Write],
        ResourceType::Cluster => &[
            All,
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
    }
}

/// One ALLOW or DENY rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: RuleId,
    pub subject: Subject,
    pub rtype: ResourceType,
    pub pattern: Pattern,
    pub op: Operation,
    pub host: HostSpec,
    pub effect: Effect,
    pub source: Source,
    /// The line as written (trimmed), for audit and explain.
    pub text: String,
}

impl Rule {
    /// The rule in canonical casbin form: `sub, rtype, pattern, op, host, eft`.
    pub fn casbin_fields(&self) -> Vec<String> {
        vec![
            self.subject.to_string(),
            self.rtype.name().to_string(),
            self.pattern.to_string(),
            self.op.name().to_string(),
            self.host.to_string(),
            self.effect.to_string(),
        ]
    }

    /// The canonical one-line form, e.g. `p, User:alice, Topic, orders, Read, *, allow`.
    pub fn canonical(&self) -> String {
        format!("p, {}", self.casbin_fields().join(", "))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.text)
    }
}

/// `g, User:<user>, Group:<group>`.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The user's name (the principal is `User:<user>`).
    pub user: String,
    pub group: String,
    pub source: Source,
}

/// One problem that stops a policy from loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// `None` for problems with the whole file (unreadable, broken model) or with configuration.
    pub line: Option<u32>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The policy did not load; every problem found is listed.
#[derive(Debug, Clone, thiserror::Error)]
pub struct PolicyError {
    pub problems: Vec<Diagnostic>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "policy not loaded: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Something legal but suspicious, found by [`PolicySet::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub source: Option<Source>,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(s) => write!(f, "{s}: warning: {}", self.message),
            None => write!(f, "warning: {}", self.message),
        }
    }
}

/// A loaded, validated policy: rules, group memberships, super users, and the casbin enforcer built
/// from the model (kept for explain and cross-checks, never on the hot path).
pub struct PolicySet {
    rules: Vec<Arc<Rule>>,
    memberships: Vec<Membership>,
    /// `s` lines, in file order. Not part of the casbin model: they never decide access, only
    /// limit what an allowed request may ask for.
    safeguards: Vec<Arc<Safeguard>>,
    super_users: Vec<Principal>,
    /// The `q` lines: client quotas (not part of the casbin model).
    quotas: crate::quota::QuotaSet,
    version: String,
    enforcer: Option<casbin::Enforcer>,
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySet")
            .field("rules", &self.rules.len())
            .field("memberships", &self.memberships.len())
            .field("safeguards", &self.safeguards.len())
            .field("super_users", &self.super_users)
            .field("version", &self.version)
            .field("casbin", &self.enforcer.is_some())
            .finish()
    }
}

impl PolicySet {
    /// Reads, parses and validates the model and the policy files, and builds the casbin enforcer
    /// from the model to prove it loads and agrees with the rules.
    ///
    /// Synchronous and runtime-agnostic: casbin's async constructors are driven to completion here
    /// without a runtime (they never wait on I/O once given the model text), so this works from the
    /// CLI and from inside a tokio runtime alike. It does blocking file I/O and takes milliseconds
    /// to a few hundred milliseconds for tens of thousands of rules: from async code call it through
    /// `spawn_blocking` (see `PolicyHandle::reload_async`).
    pub fn load(
        model: &Path,
        files: &[PathBuf],
        super_users: &[String],
    ) -> Result<PolicySet, PolicyError> {
        let mut problems = Vec::new();
        let model_name = model.display().to_string();
        let model_text = match std::fs::read_to_string(model) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(Diagnostic {
                    file: model_name.clone(),
                    line: None,
                    message: format!("cannot read the model: {e}"),
                });
                None
            }
        };
        let mut texts = Vec::with_capacity(files.len());
        for path in files {
            match std::fs::read_to_string(path) {
                Ok(t) => texts.push((path.display().to_string(), t)),
                Err(e) => problems.push(Diagnostic {
                    file: path.display().to_string(),
                    line: None,
                    message: format!("cannot read the policy file: {e}"),
                }),
            }
        }
        if files.is_empty() {
            problems.push(Diagnostic {
                file: model_name.clone(),
                line: None,
                message: "no policy files given".into(),
            });
        }
        let borrowed: Vec<(&str, &str)> = texts
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let model_ref = model_text.as_deref().map(|t| (model_name.as_str(), t));
        match (
            PolicySet::build(model_ref, &borrowed, super_users, true),
            problems.is_empty(),
        ) {
            (Ok(set), true) => Ok(set),
            (Ok(_), false) => Err(PolicyError { problems }),
            (Err(e), _) => {
                problems.extend(e.problems);
                Err(PolicyError { problems })
            }
        }
    }

    /// As [`PolicySet::load`], from texts already in memory: `model` is `(name, text)`, each file is
    /// `(name, text)`; names are used in diagnostics and sources. With `model = None` the casbin
    /// enforcer is not built (for benchmarks and tests that measure parsing alone): `explain` then
    /// has no cross-check.
    pub fn from_texts(
        model: Option<(&str, &str)>,
        files: &[(&str, &str)],
        super_users: &[String],
    ) -> Result<PolicySet, PolicyError> {
        PolicySet::build(model, files, super_users, model.is_some())
    }

    fn build(
        model: Option<(&str, &str)>,
        files: &[(&str, &str)],
        super_users: &[String],
        with_casbin: bool,
    ) -> Result<PolicySet, PolicyError> {
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        let mut memberships = Vec::new();
        let mut guards = Vec::new();
        let mut quotas = Vec::new();
        for (name, text) in files {
            let mut parsed = Parsed {
                rules: &mut rules,
                memberships: &mut memberships,
                safeguards: &mut guards,
                quotas: &mut quotas,
                problems: &mut problems,
            };
            parse_file(name, text, &mut parsed);
        }
        let (quotas, duplicates) = crate::quota::QuotaSet::new(quotas);
        problems.extend(duplicates.into_iter().map(|(s, message)| Diagnostic {
            file: s.file.to_string(),
            line: Some(s.line),
            message,
        }));
        let mut supers = Vec::new();
        for (i, s) in super_users.iter().enumerate() {
            match parse_principal(s) {
                Ok(p) if p.name == "*" => problems.push(Diagnostic {
                    file: format!("super_users[{i}]"),
                    line: None,
                    message: format!(
                        "`{s}`: a wildcard super user would disable authorization; list users"
                    ),
                }),
                Ok(p) => supers.push(p),
                Err(e) => problems.push(Diagnostic {
                    file: format!("super_users[{i}]"),
                    line: None,
                    message: e,
                }),
            }
        }
        supers.sort();
        supers.dedup();
        let version = version_hash(model.map(|m| m.1), files, super_users);
        let mut set = PolicySet {
            rules: rules.into_iter().map(Arc::new).collect(),
            memberships,
            safeguards: guards.into_iter().map(Arc::new).collect(),
            super_users: supers,
            quotas,
            version,
            enforcer: None,
        };
        if with_casbin {
            match model {
                Some((name, text)) if problems.is_empty() => {
                    match casbin_model::build(text, &set) {
                        Ok(e) => set.enforcer = Some(e),
                        Err(msgs) => problems.extend(msgs.into_iter().map(|m| Diagnostic {
                            file: name.to_string(),
                            line: None,
                            message: m,
                        })),
                    }
                }
                // Still check that the model itself loads, so its problems are listed too.
                Some((name, text)) => {
                    if let Err(msgs) = casbin_model::check_model(text) {
                        problems.extend(msgs.into_iter().map(|m| Diagnostic {
                            file: name.to_string(),
                            line: None,
                            message: m,
                        }));
                    }
                }
                None => {}
            }
        }
        if !problems.is_empty() {
            return Err(PolicyError { problems });
        }
        if let Some(e) = &set.enforcer {
            casbin_model::probe(e, &set).map_err(|m| PolicyError {
                problems: vec![Diagnostic {
                    file: model.map(|m| m.0).unwrap_or("model").to_string(),
                    line: None,
                    message: m,
                }],
            })?;
        }
        Ok(set)
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    pub fn rule(&self, id: RuleId) -> Option<&Arc<Rule>> {
        self.rules.get(id.0 as usize)
    }

    pub fn memberships(&self) -> &[Membership] {
        &self.memberships
    }

    pub fn safeguards(&self) -> &[Arc<Safeguard>] {
        &self.safeguards
    }

    /// Every safeguard of `principal` (the same principal matching as rules: directly, through a
    /// group, or `User:*`; super users included, as Kafka's policies know no exceptions) that
    /// concerns `change`, in file order, with its judgement.
    pub fn judge(&self, principal: &Principal, change: &Change<'_>) -> Vec<Judged> {
        self.safeguards
            .iter()
            .filter(|s| self.subject_applies(&s.subject, principal))
            .filter_map(|s| match s.judge(change) {
                Judgement::NotApplicable => None,
                judgement => Some(Judged {
                    safeguard: s.clone(),
                    judgement,
                }),
            })
            .collect()
    }

    /// The first of `principal`'s safeguards (file order) that refuses `change`: every one that
    /// applies must pass.
    pub fn safeguard_violation(
        &self,
        principal: &Principal,
        change: &Change<'_>,
    ) -> Option<Violation> {
        if self.safeguards.is_empty() {
            return None;
        }
        self.safeguards
            .iter()
            .filter(|s| self.subject_applies(&s.subject, principal))
            .find_map(|s| match s.judge(change) {
                Judgement::Violates(message) => Some(Violation {
                    safeguard: s.clone(),
                    message,
                }),
                _ => None,
            })
    }

    pub fn super_users(&self) -> &[Principal] {
        &self.super_users
    }

    /// The client quotas (`q` lines).
    pub fn quotas(&self) -> &crate::quota::QuotaSet {
        &self.quotas
    }

    pub fn is_super_user(&self, p: &Principal) -> bool {
        self.super_users.iter().any(|s| s == p)
    }

    /// Hex SHA-256 over the model and the files in order (each length-prefixed), then the super
    /// users: what decided, for audit. Identical inputs give identical hashes.
    pub fn version_hash(&self) -> &str {
        &self.version
    }

    /// Every principal named in a rule or membership (including groups and `User:*`).
    pub fn principals(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.rules.iter().map(|r| r.subject.to_string()).collect();
        for m in &self.memberships {
            out.insert(format!("User:{}", m.user));
            out.insert(format!("Group:{}", m.group));
        }
        out
    }

    /// The groups `User:<user>` belongs to.
    pub fn groups_of<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.memberships
            .iter()
            .filter(move |m| m.user == user)
            .map(|m| m.group.as_str())
    }

    /// Does `subject` apply to `principal` (directly, through a group, or as `User:*`)?
    pub fn subject_applies(&self, subject: &Subject, principal: &Principal) -> bool {
        match subject {
            Subject::AnyUser => true,
            Subject::User(n) => principal.kind == "User" && &principal.name == n,
            Subject::Group(g) => {
                (principal.kind == "Group" && &principal.name == g)
                    || (principal.kind == "User" && self.groups_of(&principal.name).any(|x| x == g))
            }
        }
    }

    /// Asks the casbin enforcer built from the model (slow: linear in the rules). `None` when the
    /// set was built without a model. Super users are not part of the model: the caller checks
    /// them first.
    pub fn casbin_enforce(
        &self,
        principal: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: &str,
    ) -> Option<Result<bool, String>> {
        self.enforcer
            .as_ref()
            .map(|e| casbin_model::enforce(e, principal, host, op, rtype, name))
    }

    /// A straight linear reading of the rules (no super users): used to probe the model at load.
    fn decide_linear(
        &self,
        principal: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: &str,
    ) -> bool {
        let host = canonical_ip(host);
        let matching = |eff: Effect| {
            self.rules.iter().any(|r| {
                r.effect == eff
                    && r.rtype == rtype
                    && self.subject_applies(&r.subject, principal)
                    && r.pattern.matches(name)
                    && r.host.matches(host)
                    && op_applies(r.op, r.effect, op)
            })
        };
        !matching(Effect::Deny) && matching(Effect::Allow)
    }

    /// Rules that can never match or never change a decision, duplicates, and other likely
    /// mistakes. Errors (that stop loading) are not repeated here.
    pub fn check(&self) -> Vec<Warning> {
        lint(self)
    }
}

fn version_hash(model: Option<&str>, files: &[(&str, &str)], super_users: &[String]) -> String {
    use aws_lc_rs::digest::{Context, SHA256};
    let mut ctx = Context::new(&SHA256);
    let mut part = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    part(model.unwrap_or("").as_bytes());
    for (_, text) in files {
        part(text.as_bytes());
    }
    for s in super_users {
        part(s.as_bytes());
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Splits one CSV line: fields separated by commas and trimmed; a field may be double-quoted (then
/// it may hold commas, and `""` is a quote).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected `{c}` after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_string());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_string());
        }
    }
}

/// Where [`parse_file`] puts what it reads.
struct Parsed<'a> {
    rules: &'a mut Vec<Rule>,
    memberships: &'a mut Vec<Membership>,
    safeguards: &'a mut Vec<Safeguard>,
    quotas: &'a mut Vec<crate::quota::QuotaRule>,
    problems: &'a mut Vec<Diagnostic>,
}

fn parse_file(name: &str, text: &str, out: &mut Parsed<'_>) {
    let Parsed {
        rules,
        memberships,
        safeguards: guards,
        quotas,
        problems,
    } = out;
    let file: Arc<str> = Arc::from(name);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut errs = Vec::new();
        let source = Source {
            file: file.clone(),
            line: line_no,
        };
        match split_csv(line) {
            Err(e) => errs.push(e),
            Ok(fields) => match fields[0].to_ascii_lowercase().as_str() {
                "p" => {
                    if let Some(r) = parse_rule(&fields, &mut errs, source, line) {
                        rules.push(Rule {
                            id: RuleId(u32::try_from(rules.len()).unwrap_or(u32::MAX)),
                            ..r
                        });
                    }
                }
                "g" => {
                    if let Some(m) = parse_membership(&fields, &mut errs, source) {
                        memberships.push(m);
                    }
                }
                "s" => {
                    if let Some(s) = safeguards::parse(&fields, &mut errs, source, line) {
                        guards.push(Safeguard {
                            id: SafeguardId(u32::try_from(guards.len()).unwrap_or(u32::MAX)),
                            ..s
                        });
                    }
                }
                "q" => {
                    if let Some(q) = crate::quota::rules::parse_line(&fields, &mut errs, source) {
                        quotas.push(q);
                    }
                }
                other => errs.push(format!(
                    "unknown line type `{other}`: a line is a rule (`p, principal, type, pattern, operation, host, allow|deny`), a group membership (`g, User:<name>, Group:<name>`), a safeguard (`s, principal, Topic|Broker, pattern, constraint, value`) or a quota (`q, principal, client id, quota, value`)"
                )),
            },
        }
        if line.contains('#') && !errs.is_empty() {
            errs.push("(comments must be on their own line, starting with `#`)".into());
        }
        problems.extend(errs.into_iter().map(|message| Diagnostic {
            file: name.to_string(),
            line: Some(line_no),
            message,
        }));
    }
}

fn parse_rule(
    fields: &[String],
    errs: &mut Vec<String>,
    source: Source,
    line: &str,
) -> Option<Rule> {
    if fields.len() != 7 {
        errs.push(format!(
            "wrong number of fields: a rule has 7 (`p, principal, type, pattern, operation, host, allow|deny`), this line has {}",
            fields.len()
        ));
        return None;
    }
    let subject = Subject::parse(&fields[1]).map_err(|e| errs.push(e)).ok();
    let rtype = ResourceType::from_name(&fields[2])
        .ok_or_else(|| {
            errs.push(format!(
                "unknown resource type `{}` (expected Topic, Group, TransactionalId or Cluster)",
                fields[2]
            ))
        })
        .ok();
    let pattern = Pattern::parse(&fields[3], rtype)
        .map_err(|e| errs.push(e))
        .ok();
    let op = Operation::from_name(&fields[4])
        .ok_or_else(|| {
            let names: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
            errs.push(format!(
                "unknown operation `{}` (expected one of {})",
                fields[4],
                names.join(", ")
            ))
        })
        .ok();
    let host = HostSpec::parse(&fields[5]).map_err(|e| errs.push(e)).ok();
    let effect = match fields[6].to_ascii_lowercase().as_str() {
        "allow" => Some(Effect::Allow),
        "deny" => Some(Effect::Deny),
        other => {
            errs.push(format!("unknown effect `{other}` (expected allow or deny)"));
            None
        }
    };
    Some(Rule {
        id: RuleId(0),
        subject: subject?,
        rtype: rtype?,
        pattern: pattern?,
        op: op?,
        host: host?,
        effect: effect?,
        source,
        text: line.to_string(),
    })
}

fn parse_membership(
    fields: &[String],
    errs: &mut Vec<String>,
    source: Source,
) -> Option<Membership> {
    if fields.len() != 3 {
        errs.push(format!(
            "wrong number of fields: a group membership has 3 (`g, User:<name>, Group:<name>`), this line has {}",
            fields.len()
        ));
        return None;
    }
    let user = match Subject::parse(&fields[1]) {
        Ok(Subject::User(u)) => Some(u),
        Ok(s) => {
            errs.push(format!(
                "group member `{s}` must be a single user (`User:<name>`): groups do not nest and `User:*` is already everyone"
            ));
            None
        }
        Err(e) => {
            errs.push(e);
            None
        }
    };
    let group = match Subject::parse(&fields[2]) {
        Ok(Subject::Group(g)) => Some(g),
        Ok(s) => {
            errs.push(format!(
                "`{s}` is not a group: the third field of a `g` line is `Group:<name>`"
            ));
            None
        }
        Err(e) => {
            errs.push(e);
            None
        }
    };
    Some(Membership {
        user: user?,
        group: group?,
        source,
    })
}

/// Kafka's legal topic name characters (and length): a topic rule with anything else never matches.
fn legal_topic_chars(s: &str) -> bool {
    s.len() <= 249
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn lint(set: &PolicySet) -> Vec<Warning> {
    let mut out = Vec::new();
    let warn = |out: &mut Vec<Warning>, src: &Source, message: String| {
        out.push(Warning {
            source: Some(src.clone()),
            message,
        })
    };
    let groups_with_members: HashSet<&str> =
        set.memberships.iter().map(|m| m.group.as_str()).collect();
    let groups_used: HashSet<&str> = set
        .rules
        .iter()
        .map(|r| &r.subject)
        .chain(set.safeguards.iter().map(|s| &s.subject))
        .filter_map(|s| match s {
            Subject::Group(g) => Some(g.as_str()),
            _ => None,
        })
        .collect();
    for s in &set.safeguards {
        if let Subject::Group(g) = &s.subject {
            if !groups_with_members.contains(g.as_str()) {
                warn(
                    &mut out,
                    &s.source,
                    format!("Group:{g} has no members (no `g, User:<name>, Group:{g}` line): this safeguard applies to nobody"),
                );
            }
        }
    }

    // Duplicates: identical rules (in canonical form).
    let mut seen: HashMap<(Subject, ResourceType, Pattern, Operation, HostSpec, Effect), &Source> =
        HashMap::new();
    for r in &set.rules {
        let key = (
            r.subject.clone(),
            r.rtype,
            r.pattern.clone(),
            r.op,
            r.host,
            r.effect,
        );
        if let Some(first) = seen.get(&key) {
            warn(
                &mut out,
                &r.source,
                format!("duplicate of the rule at {first}"),
            );
        } else {
            seen.insert(key, &r.source);
        }
    }
    let mut seen_m: HashMap<(&str, &str), &Source> = HashMap::new();
    for m in &set.memberships {
        if let Some(first) = seen_m.insert((m.user.as_str(), m.group.as_str()), &m.source) {
            warn(
                &mut out,
                &m.source,
                format!("duplicate of the membership at {first}"),
            );
        }
    }

    for r in &set.rules {
        if !applicable_ops(r.rtype).contains(&r.op) {
            warn(
                &mut out,
                &r.source,
                format!(
                    "operation {} does not apply to {} resources: no request ever asks for it, so this rule never matters",
                    r.op, r.rtype
                ),
            );
        }
        if r.rtype == ResourceType::Topic {
            if let Pattern::Literal(n) | Pattern::Prefix(n) = &r.pattern {
                if !legal_topic_chars(n) {
                    warn(
                        &mut out,
                        &r.source,
                        format!("`{}` cannot match a Kafka topic name (legal: a-z A-Z 0-9 . _ -, at most 249)", r.pattern),
                    );
                }
            }
        }
        match &r.subject {
            Subject::Group(g) if !groups_with_members.contains(g.as_str()) => warn(
                &mut out,
                &r.source,
                format!("Group:{g} has no members (no `g, User:<name>, Group:{g}` line): this rule matches nobody"),
            ),
            Subject::User(u) if set.super_users.iter().any(|s| s.kind == "User" && &s.name == u) => warn(
                &mut out,
                &r.source,
                format!("User:{u} is a super user: super users are allowed everything, this rule never decides"),
            ),
            _ => {}
        }
        if r.effect == Effect::Deny
            && r.subject == Subject::AnyUser
            && r.pattern == Pattern::Any
            && r.host == HostSpec::Any
        {
            let what = if r.op == Operation::All {
                format!("everything on every {}", r.rtype)
            } else {
                format!("{} on every {}", r.op, r.rtype)
            };
            warn(
                &mut out,
                &r.source,
                format!(
                    "this deny blocks {what} for everyone but super users, whatever the allows say"
                ),
            );
        }
    }
    let mut reported: HashSet<&str> = HashSet::new();
    for m in &set.memberships {
        if !groups_used.contains(m.group.as_str()) && reported.insert(m.group.as_str()) {
            warn(
                &mut out,
                &m.source,
                format!("Group:{} is not used by any rule", m.group),
            );
        }
    }

    // Allows that a deny fully shadows: same resource type, the deny applies to the allow's subject
    // (the same subject, `User:*`, or a group of that user), covers its pattern and hosts, and
    // denies every operation the allow grants.
    let mut denies_by_type: BTreeMap<ResourceType, Vec<&Rule>> = BTreeMap::new();
    for r in set.rules.iter().filter(|r| r.effect == Effect::Deny) {
        denies_by_type.entry(r.rtype).or_default().push(r);
    }
    for a in set.rules.iter().filter(|r| r.effect == Effect::Allow) {
        let Some(denies) = denies_by_type.get(&a.rtype) else {
            continue;
        };
        let grants_implied = Operation::ALL
            .iter()
            .any(|o| o.implied_by().contains(&a.op));
        for d in denies {
            let subject_covered = d.subject == a.subject
                || d.subject == Subject::AnyUser
                || matches!((&d.subject, &a.subject), (Subject::Group(g), Subject::User(u))
                    if set.memberships.iter().any(|m| &m.user == u && &m.group == g));
            if !subject_covered || !d.pattern.covers(&a.pattern) || !d.host.covers(&a.host) {
                continue;
            }
            if d.op == Operation::All || (d.op == a.op && !grants_implied) {
                warn(
                    &mut out,
                    &a.source,
                    format!(
                        "this allow never takes effect: the deny at {} overrides it",
                        d.source
                    ),
                );
                break;
            }
            if d.op == a.op {
                let implied: Vec<&str> = Operation::ALL
                    .iter()
                    .filter(|o| o.implied_by().contains(&a.op))
                    .map(|o| o.name())
                    .collect();
                warn(
                    &mut out,
                    &a.source,
                    format!(
                        "the deny at {} overrides this allow; it still grants the implied {}",
                        d.source,
                        implied.join(", ")
                    ),
                );
                break;
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "files_tests.rs"]
pub(crate) mod tests;
