//! Explaining decisions: which rules concern a request and how each matched (or why not), and who
//! may do what on a resource. Not on the hot path: a linear reading of the rules.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::{Decision, Engine};
use crate::auth::Principal;
use crate::policy::files::{canonical_ip, op_applies, HostSpec, Pattern, Rule, Subject};
use crate::policy::model::{Effect, Operation, ResourceType};

/// How a rule's principal applies to the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The rule names the requester.
    Direct,
    /// The requester is a member of this group.
    Group(String),
    /// The rule is for `User:*`.
    AnyUser,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Via::Direct => f.write_str("direct"),
            Via::Group(g) => write!(f, "member of Group:{g}"),
            Via::AnyUser => f.write_str("User:* (everyone)"),
        }
    }
}

/// How one rule fared against the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A DENY that matches: the request is denied.
    Denies,
    /// An ALLOW that matches on its own operation (or All).
    Allows,
    /// An ALLOW that matches because its operation implies the requested one.
    AllowsByImplication(Operation),
    /// A DENY whose operation would imply the requested one for an ALLOW: DENY never implies.
    DenyDoesNotImply(Operation),
    /// The rule is for another operation.
    OtherOperation(Operation),
    /// Name and operation match, but not the client address.
    OtherHost(HostSpec),
    /// The pattern does not match the name.
    OtherName,
}

impl Outcome {
    pub fn matched(&self) -> bool {
        matches!(
            self,
            Outcome::Denies | Outcome::Allows | Outcome::AllowsByImplication(_)
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Denies => f.write_str("matches: DENIES"),
            Outcome::Allows => f.write_str("matches: allows"),
            Outcome::AllowsByImplication(op) => {
                write!(f, "matches: allows ({op} implies the requested operation)")
            }
            Outcome::DenyDoesNotImply(op) => {
                write!(
                    f,
                    "does not match: a DENY of {op} does not extend to implied operations"
                )
            }
            Outcome::OtherOperation(op) => write!(f, "does not match: for operation {op}"),
            Outcome::OtherHost(h) => write!(
                f,
                "does not match: host {h} does not include the client address"
            ),
            Outcome::OtherName => f.write_str("does not match: pattern does not match the name"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExplainedRule {
    pub rule: Arc<Rule>,
    pub via: Via,
    pub outcome: Outcome,
}

/// At most this many rules for other names are listed (the rest are counted).
const MAX_OTHER_NAMES: usize = 20;

/// The decision for one request and every rule that concerns it.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub principal: Principal,
    pub host: IpAddr,
    pub op: Operation,
    pub rtype: ResourceType,
    pub name: String,
    pub decision: Decision,
    /// The rule that decided, if one did.
    pub deciding_rule: Option<Arc<Rule>>,
    pub super_user: bool,
    pub policy_version: String,
    /// Rules of this resource type whose principal applies, in file order: matching ones first
    /// come in their file order too.
    pub rules: Vec<ExplainedRule>,
    /// Rules for other names not listed in `rules`.
    pub omitted_other_names: usize,
    /// What the casbin model says (no super users there): `None` for super users and when no
    /// model was loaded.
    pub casbin: Option<Result<bool, String>>,
}

impl Explanation {
    /// Does the casbin model disagree with the engine? (It never should.)
    pub fn casbin_disagrees(&self) -> bool {
        matches!(self.casbin, Some(Ok(c)) if c != self.decision.allowed)
    }
}

/// Shows a client-controlled name safely: escaped, and cut if very long.
pub(crate) fn show_name(name: &str) -> String {
    const MAX: usize = 120;
    let escaped: String = name.escape_debug().collect();
    if escaped.chars().count() <= MAX {
        escaped
    } else {
        let cut: String = escaped.chars().take(MAX).collect();
        format!("{cut}... ({} bytes)", name.len())
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "request:  {} from {}: {} on {} `{}`",
            self.principal,
            self.host,
            self.op,
            self.rtype,
            show_name(&self.name)
        )?;
        let verdict = if self.decision.allowed {
            "ALLOWED"
        } else {
            "DENIED"
        };
        match &self.deciding_rule {
            Some(r) => writeln!(
                f,
                "decision: {verdict}, {}\n          {r}",
                self.decision.reason
            )?,
            None => writeln!(f, "decision: {verdict}, {}", self.decision.reason)?,
        }
        writeln!(f, "policy:   {}", self.policy_version)?;
        if self.super_user {
            writeln!(
                f,
                "{} is a super user: no rule applies to super users.",
                self.principal
            )?;
        }
        if self.rules.is_empty() {
            writeln!(
                f,
                "no rule for {} (or its groups, or User:*) on {} resources.",
                self.principal, self.rtype
            )?;
        } else {
            writeln!(
                f,
                "rules for {} on {} resources:",
                self.principal, self.rtype
            )?;
            for e in &self.rules {
                let mark = match (&e.outcome, e.rule.effect) {
                    (o, Effect::Deny) if o.matched() => "DENY ",
                    (o, Effect::Allow) if o.matched() => "ALLOW",
                    _ => "  -  ",
                };
                writeln!(f, "  {mark} {}", e.rule)?;
                let via = if e.via == Via::Direct {
                    String::new()
                } else {
                    format!(" [{}]", e.via)
                };
                writeln!(f, "        {}{via}", e.outcome)?;
            }
            if self.omitted_other_names > 0 {
                writeln!(
                    f,
                    "  ({} more rules for other names not shown)",
                    self.omitted_other_names
                )?;
            }
        }
        match &self.casbin {
            Some(Ok(c)) if *c == self.decision.allowed => {
                writeln!(f, "casbin model: {} (agrees)", allow_word(*c))
            }
            Some(Ok(c)) => writeln!(
                f,
                "casbin model: {} -- DISAGREES with the engine; please report this",
                allow_word(*c)
            ),
            Some(Err(e)) => writeln!(f, "casbin model: error: {e}"),
            None => Ok(()),
        }
    }
}

fn allow_word(b: bool) -> &'static str {
    if b {
        "allow"
    } else {
        "deny"
    }
}

fn via(subject: &Subject) -> Via {
    match subject {
        Subject::AnyUser => Via::AnyUser,
        Subject::User(_) => Via::Direct,
        Subject::Group(g) => Via::Group(g.clone()),
    }
}

pub(super) fn explain(
    engine: &Engine,
    principal: &Principal,
    host: IpAddr,
    op: Operation,
    rtype: ResourceType,
    name: &str,
) -> Explanation {
    let host = canonical_ip(host);
    let decision = engine.decide(principal, host, op, rtype, name);
    let super_user = engine.is_super_user(principal);
    let mut rules = Vec::new();
    let mut omitted = 0;
    let mut other_names = 0;
    if let Some(set) = engine.policy() {
        for r in set.rules().iter().filter(|r| r.rtype == rtype) {
            let direct_group = matches!(&r.subject, Subject::Group(g) if principal.kind == "Group" && &principal.name == g);
            if !set.subject_applies(&r.subject, principal) {
                continue;
            }
            let outcome = if !r.pattern.matches(name) {
                Outcome::OtherName
            } else if !op_applies(r.op, r.effect, op) {
                if r.effect == Effect::Deny && op_applies(r.op, Effect::Allow, op) {
                    Outcome::DenyDoesNotImply(r.op)
                } else {
                    Outcome::OtherOperation(r.op)
                }
            } else if !r.host.matches(host) {
                Outcome::OtherHost(r.host)
            } else if r.effect == Effect::Deny {
                Outcome::Denies
            } else if r.op == op || r.op == Operation::All {
                Outcome::Allows
            } else {
                Outcome::AllowsByImplication(r.op)
            };
            if outcome == Outcome::OtherName {
                if other_names >= MAX_OTHER_NAMES {
                    omitted += 1;
                    continue;
                }
                other_names += 1;
            }
            rules.push(ExplainedRule {
                rule: r.clone(),
                via: if direct_group {
                    Via::Direct
                } else {
                    via(&r.subject)
                },
                outcome,
            });
        }
    }
    let casbin = match engine.policy() {
        // The model knows nothing of reserved topics: no comparison to make there.
        Some(set) if !super_user && !engine.is_reserved(rtype, name) => {
            set.casbin_enforce(principal, host, op, rtype, name)
        }
        _ => None,
    };
    Explanation {
        principal: principal.clone(),
        host,
        op,
        rtype,
        name: name.to_string(),
        deciding_rule: decision
            .reason
            .rule()
            .and_then(|id| engine.rule(id))
            .cloned(),
        decision,
        super_user,
        policy_version: engine.version().to_string(),
        rules,
        omitted_other_names: omitted,
        casbin,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WhoVerdict {
    SuperUser,
    Allowed,
    Denied,
}

/// One line of "who can": a principal (or group, or `User:*`), from which hosts, and why.
#[derive(Debug, Clone)]
pub struct WhoCan {
    pub principal: String,
    pub verdict: WhoVerdict,
    /// `*` for super users.
    pub host: String,
    /// The rule (absent for super users).
    pub rule: Option<Arc<Rule>>,
    /// For a group: its members (`User:<name>`).
    pub members: Vec<String>,
    /// For an allow: denies that take away part of it (some hosts, or some members).
    pub except: Vec<Arc<Rule>>,
}

impl fmt::Display for WhoCan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            WhoVerdict::SuperUser => "super user",
            WhoVerdict::Allowed => "allowed",
            WhoVerdict::Denied => "DENIED",
        };
        write!(f, "{:<10} {} from {}", verdict, self.principal, self.host)?;
        if !self.members.is_empty() {
            write!(f, " (members: {})", self.members.join(", "))?;
        }
        if let Some(r) = &self.rule {
            write!(f, "\n           {r}")?;
        }
        for e in &self.except {
            write!(f, "\n           except as denied by {e}")?;
        }
        Ok(())
    }
}

fn hosts_overlap(a: &HostSpec, b: &HostSpec) -> bool {
    // CIDR blocks (and single addresses) either nest or are disjoint.
    a.covers(b) || b.covers(a)
}

pub(super) fn who_can(
    engine: &Engine,
    op: Operation,
    rtype: ResourceType,
    name: &str,
) -> Vec<WhoCan> {
    // A reserved topic: no super user, and only literal rules (see `Engine::decide`).
    let reserved = engine.is_reserved(rtype, name);
    let supers: &[Principal] = if reserved { &[] } else { engine.super_users() };
    let mut out: Vec<WhoCan> = supers
        .iter()
        .map(|p| WhoCan {
            principal: p.to_string(),
            verdict: WhoVerdict::SuperUser,
            host: "*".into(),
            rule: None,
            members: Vec::new(),
            except: Vec::new(),
        })
        .collect();
    let Some(set) = engine.policy() else {
        return out;
    };
    let matching: Vec<&Arc<Rule>> = set
        .rules()
        .iter()
        .filter(|r| {
            r.rtype == rtype
                && r.pattern.matches(name)
                && op_applies(r.op, r.effect, op)
                && (!reserved || matches!(r.pattern, Pattern::Literal(_)))
        })
        .collect();
    let is_member = |user: &str, group: &str| {
        set.memberships()
            .iter()
            .any(|m| m.user == user && m.group == group)
    };
    let members_of = |group: &str| -> Vec<String> {
        let mut v: Vec<String> = set
            .memberships()
            .iter()
            .filter(|m| m.group == group)
            .map(|m| format!("User:{}", m.user))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let denies: Vec<&Arc<Rule>> = matching
        .iter()
        .copied()
        .filter(|r| r.effect == Effect::Deny)
        .collect();
    for a in matching.iter().filter(|r| r.effect == Effect::Allow) {
        // Denies that apply to everyone the allow is for.
        let covers_subject = |d: &Rule| {
            d.subject == a.subject
                || d.subject == Subject::AnyUser
                || matches!((&d.subject, &a.subject), (Subject::Group(g), Subject::User(u)) if is_member(u, g))
        };
        // Denies that apply to some of them.
        let touches_subject = |d: &Rule| {
            covers_subject(d)
                || a.subject == Subject::AnyUser
                || matches!((&d.subject, &a.subject), (Subject::User(u), Subject::Group(g)) if is_member(u, g))
        };
        if denies
            .iter()
            .any(|d| covers_subject(d) && d.host.covers(&a.host))
        {
            continue;
        }
        let except: Vec<Arc<Rule>> = denies
            .iter()
            .filter(|d| touches_subject(d) && hosts_overlap(&d.host, &a.host))
            .map(|d| Arc::clone(d))
            .collect();
        out.push(WhoCan {
            principal: a.subject.to_string(),
            verdict: WhoVerdict::Allowed,
            host: a.host.to_string(),
            rule: Some(Arc::clone(a)),
            members: match &a.subject {
                Subject::Group(g) => members_of(g),
                _ => Vec::new(),
            },
            except,
        });
    }
    for d in denies {
        out.push(WhoCan {
            principal: d.subject.to_string(),
            verdict: WhoVerdict::Denied,
            host: d.host.to_string(),
            rule: Some(Arc::clone(d)),
            members: match &d.subject {
                Subject::Group(g) => members_of(g),
                _ => Vec::new(),
            },
            except: Vec::new(),
        });
    }
    out
}
