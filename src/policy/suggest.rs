//! Least-privilege suggestions (`policy suggest`): a policy allowing exactly what an audit trail's allowed decisions used, and how much narrower it is than the enforced one.
//!
//! Input is the trail's `authz_decision` records at audit level `all` (every allowed decision is
//! recorded then; at lower levels only denials and admin operations are, and the suggestion would
//! miss the data plane, which is reported). No I/O here: the caller reads the trail.
//!
//! Rules are grouped into a prefix rule only where the prefix covers nothing the principal did
//! not use: every name of that resource type the trail mentions (for anyone, allowed or denied)
//! that starts with the prefix must have been used by this principal for this operation.
//! Operations Kafka implies (Read, Write, Delete, Alter imply Describe; AlterConfigs implies
//! DescribeConfigs) are not written twice. Hosts are `*`; the comment above each rule says from
//! which addresses and how often it was used.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use super::engine::Engine;
use super::model::{Operation, ResourceType};
use crate::audit::event::{Decision, Event};
use crate::audit::record::Record;
use crate::auth::Principal;

/// Characters after which a name may be cut into a prefix: Kafka's naming conventions
/// (`orders.eu`, `team-a-`, `app_1`).
const SEPARATORS: [char; 3] = ['.', '-', '_'];

/// How one (principal, operation, resource) was used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub requests: u64,
    pub hosts: BTreeSet<String>,
    pub first: String,
    pub last: String,
}

impl Usage {
    fn add(&mut self, ts: &str, host: &str, n: u64) {
        self.requests += n;
        self.hosts.insert(host.to_string());
        if self.first.is_empty() || ts < self.first.as_str() {
            self.first = ts.to_string();
        }
        if ts > self.last.as_str() {
            self.last = ts.to_string();
        }
    }

    fn merge(&mut self, o: &Usage) {
        self.requests += o.requests;
        self.hosts.extend(o.hosts.iter().cloned());
        if self.first.is_empty() || (!o.first.is_empty() && o.first < self.first) {
            self.first = o.first.clone();
        }
        if o.last > self.last {
            self.last = o.last.clone();
        }
    }
}

/// One suggested rule: `p, principal, rtype, pattern, op, *, allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestedRule {
    pub principal: String,
    pub rtype: ResourceType,
    /// A literal name, or `prefix*`.
    pub pattern: String,
    pub op: Operation,
    pub usage: Usage,
    /// For a prefix rule, the names it was made from.
    pub names: Vec<String>,
}

/// What the trail yields.
#[derive(Debug, Default)]
pub struct Suggestion {
    pub rules: Vec<SuggestedRule>,
    /// Allowed decisions read.
    pub allowed_records: u64,
    /// Allowed decisions on APIs the default audit level does not record (Produce, Fetch,
    /// Metadata, ...): none means the trail was not written at level `all`, and the suggestion
    /// lacks them.
    pub data_plane_records: u64,
    /// Allowed "on any resource of this type" checks, which no single rule names; they hold
    /// when the principal has any rule of that type.
    pub any_checks: BTreeSet<(String, ResourceType, Operation)>,
    /// Every (principal, operation, type, name) the trail shows allowed, for the comparison.
    pub used: BTreeSet<(String, Operation, ResourceType, String)>,
    /// Every name of each type the trail mentions.
    pub names: BTreeMap<ResourceType, BTreeSet<String>>,
    /// The enforced rules (`file:line`) that decided some allowed request.
    pub deciding_rules: BTreeSet<String>,
}

/// Builds the suggestion from trail records, keeping those at or after `since` (RFC 3339 text
/// compares in time order).
pub fn suggest<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    since: Option<&str>,
) -> Suggestion {
    let mut s = Suggestion::default();
    // (principal, rtype, op) -> name -> usage
    let mut by_key: BTreeMap<(String, ResourceType, Operation), BTreeMap<String, Usage>> =
        BTreeMap::new();
    for r in records {
        if since.is_some_and(|t| r.ts.as_str() < t) {
            continue;
        }
        let Event::AuthzDecision(d) = &r.event else {
            continue;
        };
        let (Some(rtype), Some(op)) = (
            ResourceType::from_name(&d.resource_type),
            Operation::from_name(&d.operation),
        ) else {
            continue;
        };
        // Summaries of many denials carry `*`; a name is only real otherwise.
        if d.resource_name != "*" && d.more.is_none() {
            s.names
                .entry(rtype)
                .or_default()
                .insert(d.resource_name.clone());
        }
        if d.decision != Decision::Allow {
            continue;
        }
        s.allowed_records += 1;
        if !crate::audit::level::is_admin_api(d.api_key) {
            s.data_plane_records += 1;
        }
        if let Some(rule) = &d.rule {
            s.deciding_rules
                .insert(format!("{}:{}", rule.file, rule.line));
        }
        if d.resource_name == "*" {
            s.any_checks.insert((d.principal.clone(), rtype, op));
            continue;
        }
        let host = d
            .conn
            .client
            .rsplit_once(':')
            .map_or(d.conn.client.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        by_key
            .entry((d.principal.clone(), rtype, op))
            .or_default()
            .entry(d.resource_name.clone())
            .or_default()
            .add(&r.ts, host, d.repeated.unwrap_or(1));
        s.used
            .insert((d.principal.clone(), op, rtype, d.resource_name.clone()));
    }
    // An operation implied by another the principal used on the same name needs no rule.
    let implied = |principal: &str, rtype: ResourceType, op: Operation, name: &str| {
        op.implied_by().iter().any(|by| {
            by_key
                .get(&(principal.to_string(), rtype, *by))
                .is_some_and(|names| names.contains_key(name))
        })
    };
    for ((principal, rtype, op), names) in &by_key {
        let kept: BTreeMap<&String, &Usage> = names
            .iter()
            .filter(|(n, _)| !implied(principal, *rtype, *op, n))
            .collect();
        let universe = s.names.get(rtype).cloned().unwrap_or_default();
        let mut left: BTreeSet<&String> = kept.keys().copied().collect();
        for prefix in prefixes(&left, &universe) {
            let covered: Vec<&String> = left
                .iter()
                .copied()
                .filter(|n| n.starts_with(&prefix))
                .collect();
            let mut usage = Usage::default();
            for n in &covered {
                usage.merge(kept[n]);
                left.remove(n);
            }
            s.rules.push(SuggestedRule {
                principal: principal.clone(),
                rtype: *rtype,
                pattern: format!("{prefix}*"),
                op: *op,
                usage,
                names: covered.into_iter().cloned().collect(),
            });
        }
        for n in left {
            s.rules.push(SuggestedRule {
                principal: principal.clone(),
                rtype: *rtype,
                pattern: n.clone(),
                op: *op,
                usage: kept[n].clone(),
                names: vec![n.clone()],
            });
        }
    }
    s.rules.sort_by(|a, b| {
        (&a.principal, a.rtype.name(), &a.pattern, a.op.name()).cmp(&(
            &b.principal,
            b.rtype.name(),
            &b.pattern,
            b.op.name(),
        ))
    });
    s
}

/// The shortest prefixes (cut after a separator) that cover at least two used names and no
/// name of the universe the principal did not use; chosen greedily, shortest first, so one
/// prefix stands for as many names as it safely can.
fn prefixes(used: &BTreeSet<&String>, universe: &BTreeSet<String>) -> Vec<String> {
    let mut candidates: BTreeSet<(usize, String)> = BTreeSet::new();
    for n in used {
        for (i, c) in n.char_indices() {
            // A prefix must leave something after it: `orders.` for `orders.eu`, never the name.
            if SEPARATORS.contains(&c) && i + c.len_utf8() < n.len() {
                let p = &n[..i + c.len_utf8()];
                // `_` or `__` alone would stand for every internal topic: a prefix needs a word.
                if p.chars().filter(|c| !SEPARATORS.contains(c)).count() < 2 {
                    continue;
                }
                candidates.insert((p.chars().count(), p.to_string()));
            }
        }
    }
    let mut chosen: Vec<String> = Vec::new();
    let mut covered: BTreeSet<&String> = BTreeSet::new();
    for (_, p) in candidates {
        if chosen.iter().any(|c| p.starts_with(c.as_str())) {
            continue;
        }
        let mine: Vec<&String> = used
            .iter()
            .copied()
            .filter(|n| n.starts_with(&p) && !covered.contains(n))
            .collect();
        let safe = universe
            .iter()
            .filter(|n| n.starts_with(&p))
            .all(|n| used.contains(n));
        if mine.len() >= 2 && safe {
            covered.extend(mine);
            chosen.push(p);
        }
    }
    chosen
}

/// The suggestion as a policy file, one commented rule per use.
pub fn render(s: &Suggestion, source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Suggested by `kafka-gateway policy suggest` from {source}: {} allowed decisions.\n\
         # Each rule allows what the trail shows was used, no more; review before enforcing.",
        s.allowed_records
    );
    if s.data_plane_records == 0 {
        let _ = writeln!(
            out,
            "# WARNING: no allowed Produce/Fetch/Metadata decisions in the trail: it was not\n\
             # written at audit level `all`, so those rights are missing below."
        );
    }
    let mut principal = "";
    for r in &s.rules {
        if r.principal != principal {
            principal = &r.principal;
            let _ = writeln!(out, "\n# --- {principal}");
        }
        let hosts: Vec<&str> = r.usage.hosts.iter().map(String::as_str).collect();
        let _ = write!(
            out,
            "# {} request{} from {} ({} to {})",
            crate::audit::shadow_diff::grouped(r.usage.requests),
            if r.usage.requests == 1 { "" } else { "s" },
            hosts.join(", "),
            r.usage.first,
            r.usage.last
        );
        if r.pattern.ends_with('*') {
            let _ = write!(out, "; names used: {}", r.names.join(", "));
        }
        let _ = writeln!(
            out,
            "\np, {}, {}, {}, {}, *, allow",
            r.principal,
            r.rtype.name(),
            r.pattern,
            r.op.name()
        );
    }
    let uncovered: Vec<String> = s
        .any_checks
        .iter()
        .filter(|(p, rtype, _)| {
            !s.rules
                .iter()
                .any(|r| r.principal == *p && r.rtype == *rtype)
        })
        .map(|(p, rtype, op)| format!("{p} {op} on any {rtype}"))
        .collect();
    if !uncovered.is_empty() {
        let _ = writeln!(
            out,
            "\n# Checks on \"any resource of a type\" that no rule above satisfies (add one if they\n\
             # must keep working): {}",
            uncovered.join("; ")
        );
    }
    out
}

/// How the suggestion compares with the enforced policy over what the trail mentions.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// (principal, operation, type, name) combinations over the trail's names and the used
    /// operations that the enforced policy allows.
    pub enforced_allows: u64,
    pub suggested_allows: u64,
    /// Used accesses the suggestion denies: must be 0.
    pub used_but_denied: Vec<String>,
    /// Enforced allow rules that decided nothing in the trail (`file:line text`).
    pub unused_enforced_rules: Vec<String>,
}

/// Evaluates both policies on every principal of the trail x every operation it used on a type
/// x every name of that type the trail mentions, from `host`.
pub fn compare(s: &Suggestion, enforced: &Engine, suggested: &Engine, host: IpAddr) -> Comparison {
    let mut c = Comparison::default();
    let mut ops: BTreeMap<(String, ResourceType), BTreeSet<Operation>> = BTreeMap::new();
    for (p, op, rtype, _) in &s.used {
        ops.entry((p.clone(), *rtype)).or_default().insert(*op);
    }
    for ((p, rtype), ops) in &ops {
        let Ok(principal) = super::files::parse_principal(p) else {
            continue;
        };
        let principal: Principal = principal;
        for name in s.names.get(rtype).into_iter().flatten() {
            for op in ops {
                if enforced.decide(&principal, host, *op, *rtype, name).allowed {
                    c.enforced_allows += 1;
                }
                if suggested
                    .decide(&principal, host, *op, *rtype, name)
                    .allowed
                {
                    c.suggested_allows += 1;
                }
            }
        }
    }
    for (p, op, rtype, name) in &s.used {
        if let Ok(principal) = super::files::parse_principal(p) {
            if !suggested
                .decide(&principal, host, *op, *rtype, name)
                .allowed
            {
                c.used_but_denied.push(format!("{p} {op} {rtype}:{name}"));
            }
        }
    }
    if let Some(set) = enforced.policy() {
        for r in set.rules() {
            let key = format!("{}:{}", r.source.file, r.source.line);
            if r.effect == super::model::Effect::Allow && !s.deciding_rules.contains(&key) {
                c.unused_enforced_rules.push(format!("{key} {}", r.text));
            }
        }
    }
    c
}

/// The comparison as text for the terminal.
pub fn render_comparison(c: &Comparison) -> String {
    let mut out = String::new();
    let pct = |a: u64, b: u64| {
        if b == 0 {
            100.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let _ = writeln!(
        out,
        "Over the names and operations in the trail, the enforced policy allows {} accesses, the \
         suggestion {} ({:.0}%).",
        crate::audit::shadow_diff::grouped(c.enforced_allows),
        crate::audit::shadow_diff::grouped(c.suggested_allows),
        pct(c.suggested_allows, c.enforced_allows)
    );
    if c.used_but_denied.is_empty() {
        let _ = writeln!(out, "Everything the trail shows used stays allowed.");
    } else {
        let _ = writeln!(
            out,
            "NOT allowed by the suggestion although used: {}",
            c.used_but_denied.join("; ")
        );
    }
    let _ = writeln!(
        out,
        "Enforced allow rules that decided nothing in the trail: {}",
        c.unused_enforced_rules.len()
    );
    for r in &c.unused_enforced_rules {
        let _ = writeln!(out, "  {r}");
    }
    out
}

#[cfg(test)]
#[path = "suggest_tests.rs"]
mod tests;
