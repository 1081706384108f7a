//! The `policy` subcommands' work: check, explain and who-can, each returning printable text.
//! (Argument parsing lives with the binary.)

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::explain::show_name;
use super::{Engine, WhoVerdict};
use crate::policy::files::{parse_principal, PolicySet};
use crate::policy::model::{Effect, Operation, ResourceType, CLUSTER_NAME};
use crate::policy::safeguards::{Change, ConfigChange, Judgement, Target};

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
    let guards = set.safeguards().len();
    let allows = set
        .rules()
        .iter()
        .filter(|r| r.effect == Effect::Allow)
        .count();
    let _ = writeln!(
        out,
        "OK: {} rules ({} allow, {} deny), {} safeguard{} in {} file{}, {} group memberships, {} principals, {} super users, {} warning{}",
        set.rules().len(),
        allows,
        set.rules().len() - allows,
        guards,
        if guards == 1 { "" } else { "s" },
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
    question: (&str, &str, &str, Option<&str>),
) -> Result<String, String> {
    let none = Proposal::default();
    cmd_explain_proposal(model, files, super_users, reserved, question, &none)
}

/// What an admin request asks for, for `policy explain` to judge against the safeguards:
/// `Create Topic:t` is a CreateTopics, `Alter Topic:t --partitions N` a CreatePartitions,
/// `AlterConfigs Topic:t` / `AlterConfigs Cluster` an (Incremental)AlterConfigs of the topic /
/// of broker `broker` (the cluster-wide default when `None`).
#[derive(Debug, Clone, Default)]
pub struct Proposal {
    pub partitions: Option<i64>,
    pub replication_factor: Option<i64>,
    /// `name=value` (set) or `name` alone (back to the default).
    pub configs: Vec<String>,
    pub broker: Option<String>,
}

impl Proposal {
    fn is_empty(&self) -> bool {
        self.partitions.is_none()
            && self.replication_factor.is_none()
            && self.configs.is_empty()
            && self.broker.is_none()
    }

    /// The change this proposal describes for `op` on the resource; `None` for an operation no
    /// safeguard concerns.
    fn change<'a>(
        &'a self,
        op: Operation,
        rtype: ResourceType,
        name: &'a str,
    ) -> Result<Option<Change<'a>>, String> {
        let configs = || {
            self.configs
                .iter()
                .map(|c| match c.split_once('=') {
                    Some((n, v)) => ConfigChange::set(n, Some(v)),
                    None => ConfigChange::set(c, None),
                })
                .collect()
        };
        let only = |allowed: &[&str]| {
            let given = [
                ("--partitions", self.partitions.is_some()),
                ("--replication-factor", self.replication_factor.is_some()),
                ("--set", !self.configs.is_empty()),
                ("--broker", self.broker.is_some()),
            ];
            match given.iter().find(|(o, g)| *g && !allowed.contains(o)) {
                Some((o, _)) => Err(format!(
                    "{o} does not apply to {op} on {rtype} (safeguards judge Create Topic:<name>, \
                     Alter Topic:<name> --partitions N, AlterConfigs Topic:<name> and AlterConfigs Cluster)"
                )),
                None => Ok(()),
            }
        };
        Ok(match (op, rtype) {
            (Operation::Create, ResourceType::Topic) => {
                only(&["--partitions", "--replication-factor", "--set"])?;
                Some(Change::CreateTopic {
                    name,
                    partitions: self.partitions.filter(|n| *n >= 0),
                    replication_factor: self.replication_factor.filter(|n| *n >= 0),
                    configs: configs(),
                })
            }
            (Operation::Alter, ResourceType::Topic) => {
                only(&["--partitions"])?;
                self.partitions
                    .map(|count| Change::CreatePartitions { name, count })
            }
            (Operation::AlterConfigs, ResourceType::Topic) => {
                only(&["--set"])?;
                Some(Change::AlterConfigs {
                    target: Target::Topic,
                    name,
                    configs: configs(),
                })
            }
            (Operation::AlterConfigs, ResourceType::Cluster) => {
                only(&["--set", "--broker"])?;
                Some(Change::AlterConfigs {
                    target: Target::Broker,
                    name: self.broker.as_deref().unwrap_or(""),
                    configs: configs(),
                })
            }
            _ => {
                only(&[])?;
                None
            }
        })
    }
}

/// [`cmd_explain_reserving`] for an admin request described by `proposal`: the ACL decision, then
/// each safeguard of the principal that concerns the request, and which one decides.
pub fn cmd_explain_proposal(
    model: &Path,
    files: &[PathBuf],
    super_users: &[String],
    reserved: &[String],
    (principal, op, resource, host): (&str, &str, &str, Option<&str>),
    proposal: &Proposal,
) -> Result<String, String> {
    let principal = parse_principal(principal)?;
    let op = parse_op(op)?;
    let (rtype, name) = parse_resource(resource)?;
    let change = proposal.change(op, rtype, &name)?;
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
    let judged = change.as_ref().map(|c| (c, set.judge(&principal, c)));
    let engine = Engine::new(set).with_reserved(reserved);
    let explanation = engine.explain(&principal, host, op, rtype, &name);
    let mut out = format!("{host_note}{explanation}");
    let Some((change, judged)) = judged else {
        return Ok(out);
    };
    // Without safeguards to show, the answer is the ACL explanation alone, as it always was.
    if proposal.is_empty() && judged.is_empty() {
        return Ok(out);
    }
    let _ = writeln!(out, "safeguards for {}:", describe(change));
    if !explanation.decision.allowed {
        out.push_str(
            "  (not reached: the ACLs deny this, so the client gets the authorization error)\n",
        );
    }
    if judged.is_empty() {
        out.push_str("  none of this principal's safeguards concerns this request\n");
    }
    for j in &judged {
        let _ = writeln!(out, "  {}", j.safeguard);
        match &j.judgement {
            Judgement::Violates(m) => {
                let _ = writeln!(out, "      REFUSES: {m}");
            }
            _ => out.push_str("      passes\n"),
        }
    }
    let first = judged.iter().find_map(|j| match &j.judgement {
        Judgement::Violates(m) => Some((&j.safeguard, m)),
        _ => None,
    });
    match (explanation.decision.allowed, first) {
        (true, Some((s, m))) => {
            let _ = writeln!(
                out,
                "decided by safeguard {}: POLICY_VIOLATION (44) \"{m}\"",
                s.source
            );
        }
        (true, None) => out.push_str("every safeguard passes: the request is forwarded\n"),
        (false, _) => {}
    }
    Ok(out)
}

/// `CreateTopics of Topic orders (partitions 100, replication factor 1, retention.ms=1)`.
fn describe(change: &Change<'_>) -> String {
    let shown = show_name(change.name());
    let configs = |configs: &[ConfigChange<'_>]| -> Vec<String> {
        configs
            .iter()
            .map(|c| match c.value {
                Some(v) => format!("{}={v}", c.name),
                None => format!("{} (default)", c.name),
            })
            .collect()
    };
    match change {
        Change::CreateTopic {
            partitions,
            replication_factor,
            configs: c,
            ..
        } => {
            let mut parts = vec![
                partitions.map_or("partitions: broker default".into(), |n| {
                    format!("partitions {n}")
                }),
                replication_factor.map_or("replication factor: broker default".into(), |n| {
                    format!("replication factor {n}")
                }),
            ];
            parts.extend(configs(c));
            format!("CreateTopics of Topic {shown} ({})", parts.join(", "))
        }
        Change::CreatePartitions { count, .. } => {
            format!("CreatePartitions of Topic {shown} (to {count} partitions)")
        }
        Change::AlterConfigs {
            target, configs: c, ..
        } => {
            let what = match (target, change.name()) {
                (Target::Broker, "") => "the brokers' default config".to_string(),
                (t, _) => format!("{t} {shown}"),
            };
            format!("AlterConfigs of {what} ({})", configs(c).join(", "))
        }
    }
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

/// `policy quotas`: which `q` line sets each quota of `principal`'s client `client_id` from
/// `host`, by Kafka's precedence, and whose usage it is counted in; `-` for none.
pub fn cmd_quotas(
    model: &Path,
    files: &[PathBuf],
    super_users: &[String],
    (principal, client_id, host): (&str, Option<&str>, Option<&str>),
) -> Result<String, String> {
    use crate::quota::rules::Applied;
    use crate::quota::QuotaKind;
    let p = parse_principal(principal)?;
    let host = host
        .map(|h| {
            h.parse::<IpAddr>()
                .map(crate::policy::files::canonical_ip)
                .map_err(|_| format!("bad --host `{h}`: an IP address"))
        })
        .transpose()?;
    let set = PolicySet::load(model, files, super_users).map_err(|e| e.to_string())?;
    let quotas = set.quotas();
    let user = (p.kind == "User").then_some(p.name.as_str());
    let client = client_id.unwrap_or_default();
    let mut out = format!(
        "quotas of {principal}, client id `{client}`{}:\n",
        host.map(|h| format!(", from {h}")).unwrap_or_default()
    );
    let line = |out: &mut String, kind: QuotaKind, applied: Option<Applied<'_>>, unit: &str| {
        let name = kind.name();
        let Some(a) = applied else {
            let _ = writeln!(out, "  {name:<25}-");
            return;
        };
        let counted = match (kind, &a.key.user, &a.key.client, a.key.address) {
            (QuotaKind::ConnectionCreationRate, _, _, Some(ip)) => format!("connections from {ip}"),
            (_, _, _, Some(ip)) => format!("logins from {ip}"),
            (QuotaKind::LoginRate, Some(u), _, _) => format!("User:{u}'s logins"),
            (_, Some(u), Some(c), _) => format!("User:{u} with client id `{c}`"),
            (_, Some(u), None, _) => format!("all of User:{u}'s clients together"),
            (_, None, Some(c), _) => format!("every client with client id `{c}` together"),
            (_, None, None, _) => "everyone together".to_string(),
        };
        let _ = writeln!(
            out,
            "  {name:<25}{} {unit}, counted for {counted}\n  {:<25}{}: {}",
            a.bound,
            "",
            a.rule.source,
            a.rule.canonical()
        );
    };
    for (kind, unit) in [
        (QuotaKind::ProducerByteRate, "bytes/s"),
        (QuotaKind::ConsumerByteRate, "bytes/s"),
        (QuotaKind::RequestPercentage, "% of a thread"),
    ] {
        line(&mut out, kind, quotas.for_client(kind, user, client), unit);
    }
    line(
        &mut out,
        QuotaKind::LoginRate,
        user.and_then(|u| quotas.for_login(u)),
        "logins/s",
    );
    match host {
        Some(ip) => {
            line(
                &mut out,
                QuotaKind::LoginRate,
                quotas.for_address(QuotaKind::LoginRate, ip),
                "logins/s",
            );
            line(
                &mut out,
                QuotaKind::ConnectionCreationRate,
                quotas.for_address(QuotaKind::ConnectionCreationRate, ip),
                "connections/s",
            );
        }
        None if quotas.has(QuotaKind::ConnectionCreationRate)
            || quotas.rules().iter().any(|r| {
                r.kind == QuotaKind::LoginRate
                    && matches!(r.target, crate::quota::rules::Target::Address(_))
            }) =>
        {
            out.push_str("  (per-address quotas exist: give --host to see which applies)\n");
        }
        None => {}
    }
    let _ = writeln!(out, "policy: {}", Engine::new(set).version());
    Ok(out)
}
