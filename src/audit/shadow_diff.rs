//! `policy diff --audit DIR`: what the shadow policy would change, summarized from the trail's
//! `shadow_decision` records ("User:bob would lose Read on Topic:orders: 1,204 requests from 3
//! addresses"), grouped by principal, operation, resource and direction, largest first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::event::{Event, ShadowChange, ShadowDecision};
use super::report::ip_of;
use super::review::{select, QueryFilters, ReviewError};

/// One line of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub principal: String,
    pub change: ShadowChange,
    pub operation: String,
    pub resource_type: String,
    pub resource_name: String,
    /// Checks the records stand for (a summary record counts as its `repeated` / `more`).
    pub requests: u64,
    /// Client addresses (without port), sorted.
    pub addresses: Vec<String>,
    /// Timestamps of the first and last record.
    pub first: String,
    pub last: String,
    /// The deciding rules seen on each side (`file:line`, or `default deny` / `-`).
    pub enforced_rules: Vec<String>,
    pub shadow_rules: Vec<String>,
}

type Key = (String, ShadowChange, String, String, String);

#[derive(Default)]
struct Acc {
    requests: u64,
    addresses: BTreeSet<String>,
    first: String,
    last: String,
    enforced_rules: BTreeSet<String>,
    shadow_rules: BTreeSet<String>,
}

fn rule_of(o: &super::event::PolicyOutcome, more: bool) -> String {
    match (&o.rule, more) {
        (Some(r), _) => format!("{}:{}", r.file, r.line),
        (None, true) => "-".into(),
        (None, false) => "no rule".into(),
    }
}

/// Groups shadow decision records (with their timestamps, oldest first).
pub fn summarize<'a>(
    records: impl IntoIterator<Item = (&'a str, &'a ShadowDecision)>,
) -> Vec<Difference> {
    let mut groups: BTreeMap<Key, Acc> = BTreeMap::new();
    for (ts, d) in records {
        let key = (
            d.principal.clone(),
            d.change,
            d.operation.clone(),
            d.resource_type.clone(),
            d.resource_name.clone(),
        );
        let acc = groups.entry(key).or_default();
        acc.requests += d.count();
        acc.addresses.insert(ip_of(&d.conn.client));
        if acc.first.is_empty() {
            acc.first = ts.to_string();
        }
        acc.last = ts.to_string();
        acc.enforced_rules
            .insert(rule_of(&d.enforced, d.more.is_some()));
        acc.shadow_rules
            .insert(rule_of(&d.shadow, d.more.is_some()));
    }
    let mut out: Vec<Difference> = groups
        .into_iter()
        .map(
            |((principal, change, operation, resource_type, resource_name), a)| Difference {
                principal,
                change,
                operation,
                resource_type,
                resource_name,
                requests: a.requests,
                addresses: a.addresses.into_iter().collect(),
                first: a.first,
                last: a.last,
                enforced_rules: a.enforced_rules.into_iter().collect(),
                shadow_rules: a.shadow_rules.into_iter().collect(),
            },
        )
        .collect();
    // Largest first; ties in a stable, readable order (the map's).
    out.sort_by_key(|d| std::cmp::Reverse(d.requests));
    out
}

/// `1204` as `1,204`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A record's timestamp to the second (`2026-12-07T08:01:02Z`).
fn to_second(ts: &str) -> String {
    match ts.split_once('.') {
        Some((s, _)) => format!("{s}Z"),
        None => ts.to_string(),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(n), if n == 1 { one } else { many })
}

/// One difference as a line of text.
pub fn line(d: &Difference) -> String {
    format!(
        "{} would {} {} on {}:{}: {} from {} (first {}, last {}; enforced {}, shadow {})",
        d.principal,
        d.change.as_str(),
        d.operation,
        d.resource_type,
        d.resource_name,
        plural(d.requests, "request", "requests"),
        plural(d.addresses.len() as u64, "address", "addresses"),
        to_second(&d.first),
        to_second(&d.last),
        d.enforced_rules.join(" "),
        d.shadow_rules.join(" "),
    )
}

/// `kafka-gateway policy diff --audit PATH... [--since T] [--json]`.
pub fn cmd_diff(paths: &[PathBuf], since: Option<&str>, json: bool) -> Result<String, ReviewError> {
    let filters = QueryFilters {
        event: Some("shadow_decision".into()),
        since: since.map(str::to_string),
        ..QueryFilters::default()
    };
    let (trail, hits) = select(paths, &filters)?;
    let records = hits.iter().filter_map(|&i| {
        let r = &trail.records[i].record;
        match &r.event {
            Event::ShadowDecision(d) => Some((r.ts.as_str(), &**d)),
            _ => None,
        }
    });
    let diffs = summarize(records);
    let mut out = String::new();
    if json {
        for d in &diffs {
            // Plain data of strings and numbers: serializing cannot fail.
            let _ = writeln!(out, "{}", serde_json::to_string(d).unwrap_or_default());
        }
        return Ok(out);
    }
    for d in &diffs {
        let _ = writeln!(out, "{}", line(d));
    }
    let (lose, gain) = diffs.iter().fold((0, 0), |(l, g), d| match d.change {
        ShadowChange::Lose => (l + d.requests, g),
        ShadowChange::Gain => (l, g + d.requests),
    });
    let _ = writeln!(
        out,
        "{} differences: {} would be lost, {} gained",
        diffs.len(),
        plural(lose, "request", "requests"),
        plural(gain, "request", "requests"),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::{ConnInfo, Decision, PolicyOutcome, RuleRef};

    fn record(
        client: &str,
        name: &str,
        change: ShadowChange,
        repeated: Option<u64>,
    ) -> ShadowDecision {
        let side = |decision, line: Option<u32>| PolicyOutcome {
            decision,
            rule: line.map(|line| RuleRef {
                file: "acl.policy".into(),
                line,
                text: String::new(),
            }),
            policy_hash: String::new(),
        };
        let (enforced, shadow) = match change {
            ShadowChange::Lose => (side(Decision::Allow, Some(3)), side(Decision::Deny, None)),
            ShadowChange::Gain => (side(Decision::Deny, None), side(Decision::Allow, Some(7))),
        };
        ShadowDecision {
            conn: ConnInfo {
                id: 1,
                client: client.into(),
                listener: "plain".into(),
                virtual_cluster: None,
            },
            principal: "User:bob".into(),
            api_key: 1,
            api_name: "Fetch".into(),
            api_version: 17,
            correlation_id: 1,
            client_id: None,
            resource_type: "Topic".into(),
            resource_name: name.into(),
            operation: "Read".into(),
            change,
            enforced,
            shadow,
            more: None,
            repeated,
        }
    }

    #[test]
    fn groups_by_principal_operation_resource_and_direction_largest_first() {
        let recs = [
            (
                "2026-12-07T08:01:02.5Z",
                record("10.0.0.1:5000", "orders", ShadowChange::Lose, None),
            ),
            (
                "2026-12-07T08:01:03.0Z",
                record("10.0.0.2:5001", "orders", ShadowChange::Lose, Some(1_200)),
            ),
            (
                "2026-12-07T08:01:04.0Z",
                record("[::1]:5002", "orders", ShadowChange::Lose, Some(3)),
            ),
            (
                "2026-12-07T08:02:00.0Z",
                record("10.0.0.1:5003", "audit", ShadowChange::Gain, None),
            ),
        ];
        let diffs = summarize(recs.iter().map(|(t, r)| (*t, r)));
        assert_eq!(diffs.len(), 2);
        assert_eq!(
            line(&diffs[0]),
            "User:bob would lose Read on Topic:orders: 1,204 requests from 3 addresses \
             (first 2026-12-07T08:01:02Z, last 2026-12-07T08:01:04Z; enforced acl.policy:3, shadow no rule)"
        );
        assert_eq!(diffs[1].change, ShadowChange::Gain);
        assert_eq!(diffs[1].requests, 1);
        assert_eq!(diffs[1].shadow_rules, vec!["acl.policy:7".to_string()]);
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(999), "999");
    }
}
