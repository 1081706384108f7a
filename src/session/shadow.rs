//! The shadow policy's differences with the enforced one, as audit records and metrics.
//!
//! Never enforced and never in the way: the request was already decided by the enforced policy,
//! and a shadow record the trail cannot take is dropped (the refusal is logged and recorded by
//! the writer), not a reason to refuse the request. Every difference is counted in
//! `shadow_decisions_total{change,operation,resource_type}`; the records are bounded like the
//! denials are: per connection, the first ten identical differences in full, then one summary
//! (`repeated: N`) at most every ten seconds and at close.

use crate::audit::event::{PolicyOutcome, ShadowChange, ShadowDecision};
use crate::audit::repeats::{ShadowKind, Verdict};
use crate::audit::{Decision, Event, RuleRef};
use crate::policy::engine::{Change, DecisionRecord, SessionAuthz, ShadowDifferences};
use crate::policy::model::{Operation, ResourceType};
use kafka_protocol::messages::ApiKey;

use super::{RequestRef, SessionCtx};

fn change_of(c: Change) -> ShadowChange {
    match c {
        Change::Lose => ShadowChange::Lose,
        Change::Gain => ShadowChange::Gain,
    }
}

fn outcome(d: &DecisionRecord) -> PolicyOutcome {
    PolicyOutcome {
        decision: if d.allowed {
            Decision::Allow
        } else {
            Decision::Deny
        },
        rule: d.rule.as_ref().map(|r| RuleRef {
            file: r.source.file.to_string(),
            line: r.source.line,
            text: r.text.clone(),
        }),
        policy_hash: d.policy_version.to_string(),
    }
}

fn rule_key(o: &PolicyOutcome) -> String {
    o.rule
        .as_ref()
        .map(|r| format!("{}:{}", r.file, r.line))
        .unwrap_or_default()
}

fn count(ctx: &SessionCtx, change: ShadowChange, op: Operation, rtype: ResourceType, n: u64) {
    ctx.metrics.add(
        "shadow_decisions_total",
        &[
            ("change", change.as_str()),
            ("operation", op.name()),
            ("resource_type", rtype.name()),
        ],
        n,
    );
}

/// Records the shadow differences `authz` found on `request`: one by one (repeats summarized),
/// and those past the per-request bound as one summary per operation, type and direction.
pub(super) fn audit_differences(authz: &SessionAuthz, request: &RequestRef, ctx: &SessionCtx) {
    let ShadowDifferences {
        differences,
        overflow,
    } = authz.take_shadow();
    if differences.is_empty() && overflow.is_empty() {
        return;
    }
    let principal = authz.principal().to_string();
    let api_name = ApiKey::try_from(request.api_key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_default();
    let client_id = request.client_id.as_ref().map(|c| c.to_string());
    let record = |rtype: ResourceType, name: String, op: Operation, change, sides| {
        let (enforced, shadow): (PolicyOutcome, PolicyOutcome) = sides;
        ShadowDecision {
            conn: ctx.conn.clone(),
            principal: principal.clone(),
            api_key: request.api_key,
            api_name: api_name.clone(),
            api_version: request.api_version,
            correlation_id: request.correlation_id,
            client_id: client_id.clone(),
            resource_type: rtype.name().to_string(),
            resource_name: name,
            operation: op.name().to_string(),
            change,
            enforced,
            shadow,
            more: None,
            repeated: None,
        }
    };
    // The mapping may ask the same question twice for one request: one record per check.
    let mut seen = std::collections::HashSet::new();
    for d in &differences {
        let e = &d.enforced;
        let change = change_of(d.change());
        count(ctx, change, e.op, e.rtype, 1);
        if !seen.insert((e.op, e.rtype, e.name.as_deref(), change)) {
            continue;
        }
        let mut r = record(
            e.rtype,
            e.name.clone().unwrap_or_else(|| "*".into()),
            e.op,
            change,
            (outcome(e), outcome(&d.shadow)),
        );
        let kind = ShadowKind {
            api_key: r.api_key,
            resource_type: r.resource_type.clone(),
            resource_name: r.resource_name.clone(),
            operation: r.operation.clone(),
            change,
            rules: (rule_key(&r.enforced), rule_key(&r.shadow)),
        };
        let verdict = super::repeat_verdict(&ctx.repeats.shadow, &kind, r.clone());
        match verdict {
            Verdict::Record => {}
            Verdict::Summary(n) => r.repeated = Some(n),
            Verdict::Suppress => continue,
        }
        write(ctx, r);
    }
    let hashes = (
        authz.snapshot().version().to_string(),
        authz
            .shadow()
            .map(|s| s.version().to_string())
            .unwrap_or_default(),
    );
    for (op, rtype, change, n) in overflow {
        let change = change_of(change);
        count(ctx, change, op, rtype, n);
        let side = |allowed: bool, hash: &String| PolicyOutcome {
            decision: if allowed {
                Decision::Allow
            } else {
                Decision::Deny
            },
            rule: None,
            policy_hash: hash.clone(),
        };
        let lose = change == ShadowChange::Lose;
        let (enforced, shadow) = &hashes;
        let sides = (side(lose, enforced), side(!lose, shadow));
        let mut r = record(rtype, "*".into(), op, change, sides);
        r.more = Some(n);
        write(ctx, r);
    }
}

/// Summaries of the differences counted since their last record, at connection close.
pub(super) fn drain(ctx: &SessionCtx) {
    let pending = ctx
        .repeats
        .shadow
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .drain();
    for (mut r, n) in pending {
        r.repeated = Some(n);
        write(ctx, r);
    }
}

fn write(ctx: &SessionCtx, r: ShadowDecision) {
    // Never refuses the request: see the module comment.
    let _ = ctx.audit.record(Event::ShadowDecision(Box::new(r)));
}
