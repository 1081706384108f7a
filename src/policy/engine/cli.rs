//! The `policy` subcommands' work: check, explain and who-can, each returning printable text.
//! (Argument parsing lives with the binary.)

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::explain::show_name;
use super::{Engine, WhoVerdict};
use crate::policy::files::{parse_principal, PolicySet};
use crate::policy::model::{Effect, Operation, ResourceType, CLUSTER_NAME};

/// `policy check`: every error with `file:line`, then warnings, then a summary. `ok` is false when
/// the policy does not load (warnings do not fail the check).
pub fn cmd_check(model: &Path, files: &[PathBuf], super_users: &[String]) -> (String, bool) {
    let set = match PolicySet::load(model, files, super_users) {
        Ok(set) => set,
        Err(e) => return (format!("{e}\n"), false),
    };
    let mut out = String::new();
    let warnings = set.check();
    for w in &warnings {
        let _ = writeln!(out, "{w}");
    }
    let allows = set
        .rules()
        .iter()
        .filter(|r| r.effect == Effect::Allow)
        .count();
    let _ = writeln!(
        out,
        "OK: {} rules ({} allow, {} deny) in {} file{}, {} group memberships, {} principals, {} super users, {} warning{}",
        set.rules().len(),
        allows,
        set.rules().len() - allows,
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        set.memberships().len(),
        set.principals().len(),
        set.super_users().len(),
        warnings.len(),
        if warnings.len() == 1 { "" } else { "s" },
    );
    let _ = writeln!(out, "version: {}", set.version_hash());
    (out, true)
}

/// Parses `Topic:orders`, `group:analytics`, `TransactionalId:tx-1`, `Cluster` (or
/// `Cluster:kafka-cluster`). The name may itself contain `:`.
pub fn parse_resource(s: &str) -> Result<(ResourceType, String), String> {
    let (t, name) = match s.split_once(':') {
        Some((t, n)) => (t, Some(n)),
        None => (s, None),
    };
    let rtype = ResourceType::from_name(t).ok_or_else(|| {
        format!("unknown resource type `{t}` in `{s}` (expected Topic:<name>, Group:<name>, TransactionalId:<name> or Cluster)")
    })?;
    match (rtype, name) {
        (ResourceType::Cluster, None) => Ok((rtype, CLUSTER_NAME.to_string())),
        (_, None) => Err(format!("`{s}`: give the resource as {t}:<name>")),
        (_, Some("")) => Err(format!("`{s}`: empty resource name")),
        (_, Some(n)) => Ok((rtype, n.to_string())),
    }
}

fn parse_op(op: &str) -> Result<Operation, String> {
    Operation::from_name(op).ok_or_else(|| {
        let names: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
        format!(
            "unknown operation `{op}` (expected one of {})",
            names.join(", ")
        )
    })
}

/// `policy explain`: the decision for one request and the rules that made it. Without a host (or
/// with `*`), the client address is taken as 0.0.0.0, which only rules for any host (`*`) match.
#[allow(clippy::too_many_arguments)]
pub fn cmd_explain(
    model: &Path,
    files: &[PathBuf],
    super_users: &[String],
    principal: &str,
    op: &str,
    resource: &str,
    host: Option<&str>,
) -> Result<String, String> {
    cmd_explain_reserving(
        model,
        files,
        super_users,
        &[],
        (principal, op, resource, host),
    )
}

/// [`cmd_explain`] with the topics the gateway reserves (the audit topic of `[audit.kafka]`), so
/// the answer is the gateway's. The question is `(principal, operation, resource, host)`.
pub fn cmd_explain_reserving(
    model: &Path,
    files: &[PathBuf],
    super_users: &[String],
    reserved: &[String],
    (principal, op, resource, host): (&str, &str, &str, Option<&str>),
) -> Result<String, String> {
    let principal = parse_principal(principal)?;
    let op = parse_op(op)?;
    let (rtype, name) = parse_resource(resource)?;
    let (host, host_note) = match host {
        None | Some("*") => (
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            "(no client address given: only rules for any host apply)\n",
        ),
        Some(h) => (
            h.parse::<IpAddr>()
                .map_err(|_| format!("bad host `{h}`: give the client's IP address"))?,
            "",
        ),
    };
    let set = PolicySet::load(model, files, super_users).map_err(|e| e.to_string())?;
    let engine = Engine::new(set).with_reserved(reserved);
    Ok(format!(
        "{host_note}{}",
        engine.explain(&principal, host, op, rtype, &name)
    ))
}

/// `policy who-can`: super users, who is allowed (from which hosts) and who is explicitly denied.
pub fn cmd_who_can(
    model: &Path,
    files: &[PathBuf],
    super_users: &[String],
    op: &str,
    resource: &str,
) -> Result<String, String> {
    cmd_who_can_reserving(model, files, super_users, &[], (op, resource))
}

/// [`cmd_who_can`] with the topics the gateway reserves: on those only literal rules count and
/// super users are not listed. The question is `(operation, resource)`.
pub fn cmd_who_can_reserving(
    model: &Path,
    files: &[PathBuf],
    super_users: &[String],
    reserved: &[String],
    (op, resource): (&str, &str),
) -> Result<String, String> {
    let op = parse_op(op)?;
    let (rtype, name) = parse_resource(resource)?;
    let set = PolicySet::load(model, files, super_users).map_err(|e| e.to_string())?;
    let engine = Engine::new(set).with_reserved(reserved);
    let entries = engine.who_can(op, rtype, &name);
    let mut out = format!("who can {op} {rtype} `{}`:\n", show_name(&name));
    if engine.is_reserved(rtype, &name) {
        out.push_str(
            "(a reserved topic, the audit topic: only rules naming it literally, no super user)\n",
        );
    }
    if entries.iter().all(|e| e.verdict != WhoVerdict::Allowed) {
        out.push_str("(no principal is allowed by a rule: only super users)\n");
    }
    for e in &entries {
        let _ = writeln!(out, "{e}");
    }
    let _ = writeln!(out, "policy: {}", engine.version());
    Ok(out)
}
