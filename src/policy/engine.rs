//! The decision engine (hot path): Kafka StandardAuthorizer semantics over an index of the rules.
//!
//! Rules are indexed by principal, then resource type, then name (literal names in a hash map, the
//! `*` rules in a list, prefixes in a hash map probed once per distinct prefix length), so a
//! decision costs about the number of rules that could match, not the number of rules.
//!
//! Semantics (StandardAuthorizer): super users are allowed everything; otherwise a matching DENY
//! (same operation, or All) denies whatever the allows say; otherwise a matching ALLOW (same
//! operation, All, or an operation that implies the requested one) allows; otherwise deny.
//! A rule matches when its principal is the requester, one of the requester's groups, or `User:*`,
//! its pattern matches the name, and its host is `*`, the client address, or a CIDR block holding
//! it. Names are compared as plain strings: any Unicode, any length, never a panic.

mod cli;
mod explain;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use super::cache::Snapshot;
use super::files::{
    canonical_ip, op_applies, parse_principal, HostSpec, Pattern, PolicySet, Rule, RuleId, Subject,
};
use super::mapping::Authorize;
use super::model::{Effect, Operation, ResourceType};
use super::safeguards::{Change as Proposed, Safeguard, SafeguardId, Target};
use crate::auth::Principal;

pub use cli::{
    cmd_check, cmd_explain, cmd_explain_proposal, cmd_explain_reserving, cmd_quotas, cmd_who_can,
    cmd_who_can_reserving, Proposal,
};
pub use explain::{ExplainedRule, Explanation, Outcome, Via, WhoCan, WhoVerdict};

/// Why a decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The principal is a super user: allowed, whatever the rules say.
    SuperUser,
    /// This DENY rule matched (the lowest-numbered one, if several did).
    Deny(RuleId),
    /// This ALLOW rule matched and no DENY did (the lowest-numbered one, if several did).
    Allow(RuleId),
    /// No ALLOW matched: Kafka's default deny.
    NoMatchingAllow,
    /// A reserved topic (the audit topic) that no rule names literally: wildcard and prefix
    /// rules, and super users, do not reach it.
    Reserved,
    /// The ACLs allowed it, but this safeguard (`s` line) refuses what the request asks for.
    Safeguard(SafeguardId),
}

impl Reason {
    /// The rule that decided, if a rule did.
    pub fn rule(self) -> Option<RuleId> {
        match self {
            Reason::Deny(id) | Reason::Allow(id) => Some(id),
            Reason::SuperUser
            | Reason::NoMatchingAllow
            | Reason::Reserved
            | Reason::Safeguard(_) => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::SuperUser => f.write_str("super user"),
            Reason::Deny(id) => write!(f, "denied by rule {id}"),
            Reason::Allow(id) => write!(f, "allowed by rule {id}"),
            Reason::NoMatchingAllow => f.write_str("no matching allow (default deny)"),
            Reason::Reserved => f.write_str(
                "reserved topic (the audit topic): only a rule naming it literally applies",
            ),
            Reason::Safeguard(id) => write!(f, "refused by safeguard #{}", id.0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
}

impl Decision {
    fn from_reason(reason: Reason) -> Decision {
        Decision {
            allowed: matches!(reason, Reason::SuperUser | Reason::Allow(_)),
            reason,
        }
    }
}

fn rtype_index(rtype: ResourceType) -> usize {
    match rtype {
        ResourceType::Topic => 0,
        ResourceType::Group => 1,
        ResourceType::TransactionalId => 2,
        ResourceType::Cluster => 3,
    }
}

/// The rules of one principal (or group, or `User:*`) for one resource type, by name.
#[derive(Default)]
struct Bucket {
    literal: HashMap<Box<str>, Vec<u32>>,
    wildcard: Vec<u32>,
    prefixes: HashMap<Box<str>, Vec<u32>>,
    /// Distinct prefix lengths in bytes, ascending.
    prefix_lens: Vec<usize>,
    all: Vec<u32>,
}

impl Bucket {
    fn add(&mut self, id: u32, pattern: &Pattern) {
        match pattern {
            Pattern::Any => self.wildcard.push(id),
            Pattern::Literal(l) => self.literal.entry(l.as_str().into()).or_default().push(id),
            Pattern::Prefix(p) => {
                self.prefixes.entry(p.as_str().into()).or_default().push(id);
                if let Err(pos) = self.prefix_lens.binary_search(&p.len()) {
                    self.prefix_lens.insert(pos, p.len());
                }
            }
        }
        self.all.push(id);
    }

    /// Every rule whose pattern matches `name` (each once: a rule has one pattern).
    #[inline]
    fn for_each_match(&self, name: &str, mut f: impl FnMut(u32)) {
        if !self.literal.is_empty() {
            if let Some(ids) = self.literal.get(name) {
                ids.iter().for_each(|&i| f(i));
            }
        }
        self.wildcard.iter().for_each(|&i| f(i));
        for &len in &self.prefix_lens {
            if len > name.len() {
                break;
            }
            // A prefix is whole characters, so a match can only end on a character boundary.
            if name.is_char_boundary(len) {
                if let Some(ids) = self.prefixes.get(&name[..len]) {
                    ids.iter().for_each(|&i| f(i));
                }
            }
        }
    }
}

/// What the hot loop needs of a rule, packed together.
#[derive(Clone, Copy)]
struct Compact {
    op: Operation,
    effect: Effect,
    host: HostSpec,
}

#[derive(Default)]
struct Index {
    /// principal type -> name -> slot.
    subjects: HashMap<Box<str>, HashMap<Box<str>, u32>>,
    any_user: Option<u32>,
    /// user name -> slots of the groups (that have rules) it belongs to.
    groups_of: HashMap<Box<str>, Vec<u32>>,
    buckets: Vec<[Bucket; 4]>,
    compact: Vec<Compact>,
}

impl Index {
    fn build(set: &PolicySet) -> Index {
        let mut ix = Index::default();
        for r in set.rules() {
            let slot = ix.slot(&r.subject);
            ix.buckets[slot as usize][rtype_index(r.rtype)].add(r.id.0, &r.pattern);
            ix.compact.push(Compact {
                op: r.op,
                effect: r.effect,
                host: r.host,
            });
        }
        for m in set.memberships() {
            let Some(&slot) = ix
                .subjects
                .get("Group")
                .and_then(|g| g.get(m.group.as_str()))
            else {
                continue; // a group no rule names changes nothing
            };
            let v = ix.groups_of.entry(m.user.as_str().into()).or_default();
            if !v.contains(&slot) {
                v.push(slot);
            }
        }
        ix
    }

    fn slot(&mut self, subject: &Subject) -> u32 {
        let next = u32::try_from(self.buckets.len()).unwrap_or(u32::MAX);
        let slot = *self
            .subjects
            .entry(subject.kind().into())
            .or_default()
            .entry(subject.name().into())
            .or_insert(next);
        if slot == next {
            self.buckets.push(Default::default());
            if *subject == Subject::AnyUser {
                self.any_user = Some(slot);
            }
        }
        slot
    }

    /// The slots whose rules apply to `p`: its own, `User:*`, and its groups' (each once).
    #[inline]
    fn for_each_slot(&self, p: &Principal, mut f: impl FnMut(u32)) {
        let direct = self
            .subjects
            .get(p.kind.as_str())
            .and_then(|m| m.get(p.name.as_str()))
            .copied();
        if let Some(s) = direct {
            f(s);
        }
        if let Some(a) = self.any_user {
            if direct != Some(a) {
                f(a);
            }
        }
        if p.kind == "User" && !self.groups_of.is_empty() {
            if let Some(groups) = self.groups_of.get(p.name.as_str()) {
                groups.iter().for_each(|&g| f(g));
            }
        }
    }
}

/// An immutable, indexed policy. Build one per policy version; share it behind an `Arc`.
pub struct Engine {
    policy: Option<PolicySet>,
    super_users: Vec<Principal>,
    index: Index,
    /// Shared with every request's [`SessionAuthz`] and decision record, never copied.
    version: Arc<str>,
    /// Topics only literal rules reach (see [`Reason::Reserved`]).
    reserved: Vec<String>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("version", &self.version)
            .field("rules", &self.index.compact.len())
            .field("super_users", &self.super_users)
            .finish()
    }
}

/// The version reported by [`Engine::deny_all`].
pub const DENY_ALL_VERSION: &str = "deny-all";

impl Engine {
    pub fn new(set: PolicySet) -> Engine {
        let index = Index::build(&set);
        Engine {
            super_users: set.super_users().to_vec(),
            version: Arc::from(set.version_hash()),
            policy: Some(set),
            index,
            reserved: Vec::new(),
        }
    }

    /// This engine with `topics` reserved: only a rule naming one literally decides on it.
    pub fn with_reserved(mut self, topics: &[String]) -> Engine {
        self.set_reserved(topics);
        self
    }

    /// Reserves `topics` in place (see [`Engine::with_reserved`]).
    pub fn set_reserved(&mut self, topics: &[String]) {
        self.reserved = topics.to_vec();
    }

    /// Whether `name` of `rtype` is reserved.
    pub fn is_reserved(&self, rtype: ResourceType, name: &str) -> bool {
        rtype == ResourceType::Topic && self.reserved.iter().any(|r| r == name)
    }

    /// The engine to run with when the policy is missing or invalid (item 32): everyone but the
    /// super users is denied. Super users that do not parse are left out (and logged).
    pub fn deny_all(super_users: &[String]) -> Engine {
        let mut supers = Vec::new();
        for s in super_users {
            match parse_principal(s) {
                Ok(p) if p.name != "*" => supers.push(p),
                Ok(_) => tracing::warn!(super_user = %s, "wildcard super user ignored"),
                Err(e) => tracing::warn!(error = %e, "super user ignored"),
            }
        }
        Engine {
            policy: None,
            super_users: supers,
            index: Index::default(),
            version: Arc::from(DENY_ALL_VERSION),
            reserved: Vec::new(),
        }
    }

    /// The loaded policy (`None` for [`Engine::deny_all`]).
    pub fn policy(&self) -> Option<&PolicySet> {
        self.policy.as_ref()
    }

    /// The policy's version hash, or [`DENY_ALL_VERSION`].
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The version as the shared string it is kept in.
    pub fn version_shared(&self) -> &Arc<str> {
        &self.version
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        self.policy.as_ref().map(|p| p.rules()).unwrap_or(&[])
    }

    pub fn rule(&self, id: RuleId) -> Option<&Arc<Rule>> {
        self.policy.as_ref().and_then(|p| p.rule(id))
    }

    pub fn super_users(&self) -> &[Principal] {
        &self.super_users
    }

    pub fn is_super_user(&self, p: &Principal) -> bool {
        self.super_users
            .iter()
            .any(|s| s.kind == p.kind && s.name == p.name)
    }

    /// "The rule that decided", for audit: `file:line: text`, or what decided instead.
    pub fn describe(&self, reason: Reason) -> String {
        match reason.rule().and_then(|id| self.rule(id)) {
            Some(rule) => format!("{reason}: {rule}"),
            None => reason.to_string(),
        }
    }

    /// May `principal`, connecting from `host`, do `op` on `rtype`/`name`?
    pub fn decide(
        &self,
        principal: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: &str,
    ) -> Decision {
        let reserved = self.is_reserved(rtype, name);
        if self.is_super_user(principal) && !reserved {
            return Decision::from_reason(Reason::SuperUser);
        }
        let host = canonical_ip(host);
        let rt = rtype_index(rtype);
        let (mut deny, mut allow) = (u32::MAX, u32::MAX);
        let literal = |id: u32| {
            self.rules()
                .get(id as usize)
                .is_some_and(|r| matches!(r.pattern, Pattern::Literal(_)))
        };
        self.index.for_each_slot(principal, |slot| {
            self.index.buckets[slot as usize][rt].for_each_match(name, |id| {
                if reserved && !literal(id) {
                    return;
                }
                let r = &self.index.compact[id as usize];
                match r.effect {
                    Effect::Deny
                        if id < deny
                            && (r.op == op || r.op == Operation::All)
                            && r.host.matches(host) =>
                    {
                        deny = id
                    }
                    Effect::Allow
                        if id < allow
                            && op_applies(r.op, Effect::Allow, op)
                            && r.host.matches(host) =>
                    {
                        allow = id
                    }
                    _ => {}
                }
            })
        });
        Decision::from_reason(if deny != u32::MAX {
            Reason::Deny(RuleId(deny))
        } else if allow != u32::MAX {
            Reason::Allow(RuleId(allow))
        } else if reserved {
            Reason::Reserved
        } else {
            Reason::NoMatchingAllow
        })
    }

    /// Kafka's `authorizeByResourceType`: is `op` allowed on at least one resource of `rtype`?
    /// Super users: yes. A matching DENY on `*`: no. Otherwise yes if some matching ALLOW (the
    /// operation, All, or one implying it) has a pattern that no matching DENY covers (a DENY on
    /// the same literal name, or a DENY prefix that is a prefix of the allowed name or prefix).
    pub fn decide_any(
        &self,
        principal: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
    ) -> Decision {
        if self.is_super_user(principal) {
            return Decision::from_reason(Reason::SuperUser);
        }
        let host = canonical_ip(host);
        let rt = rtype_index(rtype);
        let Some(policy) = &self.policy else {
            return Decision::from_reason(Reason::NoMatchingAllow);
        };
        let mut wildcard_deny = u32::MAX;
        let mut deny_literals: HashMap<&str, u32> = HashMap::new();
        let mut deny_prefixes: HashMap<&str, u32> = HashMap::new();
        let mut allows: Vec<u32> = Vec::new();
        self.index.for_each_slot(principal, |slot| {
            for &id in &self.index.buckets[slot as usize][rt].all {
                let c = &self.index.compact[id as usize];
                if !c.host.matches(host) {
                    continue;
                }
                let pattern = &policy.rules()[id as usize].pattern;
                match c.effect {
                    Effect::Deny if c.op == op || c.op == Operation::All => match pattern {
                        Pattern::Any => wildcard_deny = wildcard_deny.min(id),
                        Pattern::Literal(l) => keep_min(&mut deny_literals, l, id),
                        Pattern::Prefix(p) => keep_min(&mut deny_prefixes, p, id),
                    },
                    Effect::Allow if op_applies(c.op, Effect::Allow, op) => allows.push(id),
                    _ => {}
                }
            }
        });
        if wildcard_deny != u32::MAX {
            return Decision::from_reason(Reason::Deny(RuleId(wildcard_deny)));
        }
        allows.sort_unstable();
        let mut prefix_lens: Vec<usize> = deny_prefixes.keys().map(|p| p.len()).collect();
        prefix_lens.sort_unstable();
        prefix_lens.dedup();
        let dominating_prefix = |s: &str| {
            prefix_lens
                .iter()
                .take_while(|&&l| l <= s.len())
                .filter(|&&l| s.is_char_boundary(l))
                .find_map(|&l| deny_prefixes.get(&s[..l]).copied())
        };
        let mut first_dominated_by = None;
        for &id in &allows {
            let dominated = match &policy.rules()[id as usize].pattern {
                Pattern::Any => None,
                Pattern::Literal(l) => deny_literals
                    .get(l.as_str())
                    .copied()
                    .or_else(|| dominating_prefix(l)),
                Pattern::Prefix(p) => dominating_prefix(p),
            };
            match dominated {
                None => return Decision::from_reason(Reason::Allow(RuleId(id))),
                Some(d) => {
                    first_dominated_by.get_or_insert(d);
                }
            }
        }
        Decision::from_reason(match first_dominated_by {
            Some(d) => Reason::Deny(RuleId(d)),
            None => Reason::NoMatchingAllow,
        })
    }

    /// Every rule about this principal and resource type, how it matched (or why not), the
    /// decision, and what the casbin model says.
    pub fn explain(
        &self,
        principal: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: &str,
    ) -> Explanation {
        explain::explain(self, principal, host, op, rtype, name)
    }

    /// Who may do `op` on `rtype`/`name`: super users, principals (and groups) allowed and from
    /// which hosts, and those explicitly denied.
    pub fn who_can(&self, op: Operation, rtype: ResourceType, name: &str) -> Vec<WhoCan> {
        explain::who_can(self, op, rtype, name)
    }
}

fn keep_min<'a>(map: &mut HashMap<&'a str, u32>, key: &'a str, id: u32) {
    let v = map.entry(key).or_insert(id);
    *v = (*v).min(id);
}

/// One decision a session made, for audit.
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    pub op: Operation,
    pub rtype: ResourceType,
    /// `None` for an "on any resource of this type" check (`allowed_any`).
    pub name: Option<String>,
    pub allowed: bool,
    pub reason: Reason,
    /// The rule that decided, with its file and line.
    pub rule: Option<Arc<Rule>>,
    /// The safeguard that refused (reason [`Reason::Safeguard`]).
    pub safeguard: Option<Arc<Safeguard>>,
    /// The policy version that decided.
    pub policy_version: Arc<str>,
}

/// Decisions kept one by one per session between two `take_decisions` calls, so a Metadata
/// request for every topic cannot grow memory unboundedly. Beyond this, allowed decisions are only
/// counted, and denials are counted per operation and resource type: every denial still reaches
/// the trail, the ones past the limit as a summary record with their count.
pub const MAX_RECORDED_DECISIONS: usize = 1024;

/// Which way a shadow policy's decision differs from the enforced one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// The enforced policy allows, the shadow would deny: the principal would lose the right.
    Lose,
    /// The enforced policy denies, the shadow would allow: the principal would gain it.
    Gain,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Lose => "lose",
            Change::Gain => "gain",
        }
    }
}

/// One check where the shadow policy (a candidate, evaluated beside the enforced one and never
/// enforced) decided otherwise. Both sides carry their deciding rule and policy version.
#[derive(Debug, Clone)]
pub struct ShadowDifference {
    pub enforced: DecisionRecord,
    pub shadow: DecisionRecord,
}

impl ShadowDifference {
    pub fn change(&self) -> Change {
        if self.enforced.allowed {
            Change::Lose
        } else {
            Change::Gain
        }
    }
}

#[derive(Default)]
struct DecisionLog {
    records: Vec<DecisionRecord>,
    dropped: u64,
    denied_overflow: BTreeMap<(Operation, ResourceType), u64>,
}

/// A session's shadow policy and what it found. Boxed in the session, allocated only when a
/// shadow is configured: a connection's task holds a `SessionAuthz` and must stay small.
struct Shadow {
    snapshot: Arc<Snapshot>,
    /// Its own cache insert budget, as the enforced policy's.
    inserts_left: std::sync::atomic::AtomicU32,
    log: Mutex<ShadowLog>,
}

#[derive(Default)]
struct ShadowLog {
    differences: Vec<ShadowDifference>,
    overflow: BTreeMap<(Operation, ResourceType, Change), u64>,
}

/// What a session decided since the last [`SessionAuthz::take_decisions`].
#[derive(Debug, Default)]
pub struct Decisions {
    /// Oldest first, at most [`MAX_RECORDED_DECISIONS`].
    pub records: Vec<DecisionRecord>,
    /// Allowed decisions past the limit (counted, not kept).
    pub dropped_allowed: u64,
    /// Denials past the limit, per operation and resource type.
    pub denied_overflow: Vec<(Operation, ResourceType, u64)>,
}

/// Where the shadow policy decided otherwise since the last [`SessionAuthz::take_shadow`].
#[derive(Debug, Default)]
pub struct ShadowDifferences {
    /// Oldest first, at most [`MAX_RECORDED_DECISIONS`].
    pub differences: Vec<ShadowDifference>,
    /// Differences past the limit, per operation, resource type and direction.
    pub overflow: Vec<(Operation, ResourceType, Change, u64)>,
}

/// A session's view of the policy: one principal, one client address, one policy snapshot. It
/// serves the request mapping's [`Authorize`] and records every decision for audit.
///
/// The session makes one per request from the current snapshot, so a request sees one policy for
/// all its checks and the next request sees a reload.
pub struct SessionAuthz {
    snapshot: Arc<Snapshot>,
    principal: Arc<Principal>,
    host: IpAddr,
    log: Mutex<DecisionLog>,
    /// Whether allowed decisions are kept for the audit: not when its level would drop them (a
    /// data-plane request at the default level), so an allowed Produce or Fetch records nothing.
    keep_allowed: bool,
    /// New entries this request may still add to the shared decision cache: one request naming
    /// 20,000 topics would otherwise add 20,000 entries (about 4 MiB) before it is forwarded.
    cache_inserts_left: std::sync::atomic::AtomicU32,
    /// The shadow policy, asked every question the enforced one is asked (through its own
    /// cache, with its own insert budget); its answers are only compared, never enforced.
    shadow: Option<Box<Shadow>>,
}

/// New decision-cache entries one request may add; its other decisions are computed (the engine
/// is fast) and not kept.
pub const REQUEST_CACHE_INSERTS: u32 = 1024;

impl SessionAuthz {
    pub fn new(snapshot: Arc<Snapshot>, principal: Arc<Principal>, host: IpAddr) -> SessionAuthz {
        SessionAuthz {
            snapshot,
            principal,
            host: canonical_ip(host),
            log: Mutex::default(),
            keep_allowed: true,
            cache_inserts_left: std::sync::atomic::AtomicU32::new(REQUEST_CACHE_INSERTS),
            shadow: None,
        }
    }

    /// Also asks `shadow` (when there is one) every question, recording where it differs.
    pub fn shadowed_by(mut self, shadow: Option<Arc<Snapshot>>) -> SessionAuthz {
        self.shadow = shadow.map(|snapshot| {
            Box::new(Shadow {
                snapshot,
                inserts_left: std::sync::atomic::AtomicU32::new(REQUEST_CACHE_INSERTS),
                log: Mutex::default(),
            })
        });
        self
    }

    /// The shadow policy this session compares with, if any.
    pub fn shadow(&self) -> Option<&Arc<Snapshot>> {
        self.shadow.as_ref().map(|s| &s.snapshot)
    }

    /// Keeps allowed decisions for the audit only when `keep` (denials are always kept).
    pub fn keeping_allowed(mut self, keep: bool) -> SessionAuthz {
        self.keep_allowed = keep;
        self
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn host(&self) -> IpAddr {
        self.host
    }

    pub fn decide(&self, op: Operation, rtype: ResourceType, name: &str) -> Decision {
        let check = (op, rtype, name);
        let d = decide_budgeted(
            &self.snapshot,
            &self.cache_inserts_left,
            &self.principal,
            self.host,
            check,
        );
        self.record(op, rtype, Some(name), d);
        if let Some(shadow) = &self.shadow {
            let s = decide_budgeted(
                &shadow.snapshot,
                &shadow.inserts_left,
                &self.principal,
                self.host,
                check,
            );
            self.compare(shadow, op, rtype, Some(name), d, s);
        }
        d
    }

    pub fn decide_any(&self, op: Operation, rtype: ResourceType) -> Decision {
        let d = self
            .snapshot
            .decide_any(&self.principal, self.host, op, rtype);
        self.record(op, rtype, None, d);
        if let Some(shadow) = &self.shadow {
            let s = shadow
                .snapshot
                .decide_any(&self.principal, self.host, op, rtype);
            self.compare(shadow, op, rtype, None, d, s);
        }
        d
    }

    fn record(&self, op: Operation, rtype: ResourceType, name: Option<&str>, d: Decision) {
        self.record_with(op, rtype, name, d, None);
    }

    fn record_with(
        &self,
        op: Operation,
        rtype: ResourceType,
        name: Option<&str>,
        d: Decision,
        safeguard: Option<Arc<Safeguard>>,
    ) {
        if d.allowed && !self.keep_allowed {
            return;
        }
        // A poisoned lock only means another thread panicked mid-push: the Vec is still valid.
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.records.len() >= MAX_RECORDED_DECISIONS {
            if d.allowed {
                log.dropped += 1;
            } else {
                *log.denied_overflow.entry((op, rtype)).or_insert(0) += 1;
            }
            return;
        }
        log.records.push(DecisionRecord {
            safeguard,
            ..decision_record(&self.snapshot, (op, rtype, name), d)
        });
    }

    /// Keeps the shadow's decision `s` if it differs from the enforced `d` (whatever the audit
    /// level: the differences are what a shadow policy is for). Same bound as the decisions.
    fn compare(
        &self,
        shadow: &Shadow,
        op: Operation,
        rtype: ResourceType,
        name: Option<&str>,
        d: Decision,
        s: Decision,
    ) {
        if d.allowed == s.allowed {
            return;
        }
        let mut log = shadow.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.differences.len() >= MAX_RECORDED_DECISIONS {
            let change = if d.allowed {
                Change::Lose
            } else {
                Change::Gain
            };
            *log.overflow.entry((op, rtype, change)).or_insert(0) += 1;
            return;
        }
        log.differences.push(ShadowDifference {
            enforced: decision_record(&self.snapshot, (op, rtype, name), d),
            shadow: decision_record(&shadow.snapshot, (op, rtype, name), s),
        });
    }

    /// The decisions made since the last call.
    pub fn take_decisions(&self) -> Decisions {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        Decisions {
            records: std::mem::take(&mut log.records),
            dropped_allowed: std::mem::take(&mut log.dropped),
            denied_overflow: std::mem::take(&mut log.denied_overflow)
                .into_iter()
                .map(|((op, rtype), n)| (op, rtype, n))
                .collect(),
        }
    }

    /// The shadow policy's differences since the last call (kept apart from the decisions: the
    /// audit writes them without waiting, whatever its level).
    pub fn take_shadow(&self) -> ShadowDifferences {
        let Some(shadow) = &self.shadow else {
            return ShadowDifferences::default();
        };
        let mut log = shadow.log.lock().unwrap_or_else(PoisonError::into_inner);
        ShadowDifferences {
            differences: std::mem::take(&mut log.differences),
            overflow: std::mem::take(&mut log.overflow)
                .into_iter()
                .map(|((op, rtype, change), n)| (op, rtype, change, n))
                .collect(),
        }
    }
}

/// `snapshot`'s decision on `check`, added to its cache only while `inserts_left` allows.
fn decide_budgeted(
    snapshot: &Snapshot,
    inserts_left: &std::sync::atomic::AtomicU32,
    principal: &Principal,
    host: IpAddr,
    check: (Operation, ResourceType, &str),
) -> Decision {
    use std::sync::atomic::Ordering::Relaxed;
    let may_insert = inserts_left.load(Relaxed) > 0;
    let (d, inserted) = snapshot.decide_within(principal, host, check, may_insert);
    if inserted {
        inserts_left.fetch_sub(1, Relaxed);
    }
    d
}

/// `d`, made by `snapshot`, as the audit keeps it: with its deciding rule and policy version.
fn decision_record(
    snapshot: &Snapshot,
    (op, rtype, name): (Operation, ResourceType, Option<&str>),
    d: Decision,
) -> DecisionRecord {
    let engine = snapshot.engine();
    DecisionRecord {
        op,
        rtype,
        name: name.map(str::to_string),
        allowed: d.allowed,
        reason: d.reason,
        rule: d.reason.rule().and_then(|id| engine.rule(id)).cloned(),
        safeguard: None,
        policy_version: engine.version_shared().clone(),
    }
}

impl Authorize for SessionAuthz {
    fn allowed(&self, op: Operation, rtype: ResourceType, name: &str) -> bool {
        self.decide(op, rtype, name).allowed
    }

    fn allowed_any(&self, op: Operation, rtype: ResourceType) -> bool {
        self.decide_any(op, rtype).allowed
    }

    fn reserved(&self, rtype: ResourceType, name: &str) -> bool {
        self.snapshot.engine().is_reserved(rtype, name)
    }

    /// The refusal is recorded for audit as a denial of the operation the ACLs allowed (CREATE
    /// for a new topic, ALTER for new partitions, ALTER_CONFIGS), naming the safeguard.
    fn safeguard(&self, change: &Proposed<'_>) -> Option<String> {
        let set = self.snapshot.engine().policy()?;
        let v = set.safeguard_violation(&self.principal, change)?;
        let (op, rtype) = match change {
            Proposed::CreateTopic { .. } => (Operation::Create, ResourceType::Topic),
            Proposed::CreatePartitions { .. } => (Operation::Alter, ResourceType::Topic),
            Proposed::AlterConfigs { target, .. } => (
                Operation::AlterConfigs,
                match target {
                    Target::Topic => ResourceType::Topic,
                    Target::Broker => ResourceType::Cluster,
                },
            ),
        };
        let d = Decision {
            allowed: false,
            reason: Reason::Safeguard(v.safeguard.id),
        };
        self.record_with(op, rtype, Some(change.name()), d, Some(v.safeguard));
        Some(v.message)
    }

    fn acl_bindings(&self) -> Option<Vec<crate::policy::migrate::AclBinding>> {
        // A snapshot without a policy set denies everything: an authorizer with no ACLs.
        let set = self.snapshot.engine().policy();
        Some(
            set.map(crate::policy::migrate::describe_bindings)
                .unwrap_or_default(),
        )
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "prop_tests.rs"]
mod prop_tests;
