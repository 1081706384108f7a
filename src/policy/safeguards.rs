//! Safeguards (`s` lines): limits on what an allowed CreateTopics, CreatePartitions, AlterConfigs
//! or IncrementalAlterConfigs may ask for, answered as Kafka's CreateTopicPolicy and
//! AlterConfigPolicy answer: POLICY_VIOLATION (44) with a message, for that element only.
//!
//! ```text
//! # s, <principal>, <Topic|Broker>, <pattern>, <constraint>, <value>
//! s, User:*,   Topic, *, partitions, 1..64
//! s, User:*,   Topic, *, replication_factor, >=3
//! s, User:etl, Topic, *, name, ^etl\.[a-z0-9.-]+$
//! s, User:*,   Topic, *, config.retention.ms, 3600000..604800000
//! s, User:*,   Topic, *, config.cleanup.policy, delete|compact
//! s, User:*,   Topic, *, forbid_config, unclean.leader.election.enable
//! s, User:*,   Broker, *, allow_config, log.cleaner.threads|log.retention.ms
//! ```
//!
//! Pure data and pure functions: parsing one line's fields, and judging one proposed change
//! ([`Change`]) against one safeguard. Which safeguards apply to a principal is the policy set's
//! business (the same principal matching as `p` lines); the mapping asks through
//! [`super::mapping::Authorize::safeguard`] after the ACLs allowed the element.

use std::fmt;
use std::sync::Arc;

use super::files::{Pattern, Source, Subject};

/// A safeguard's position among the loaded safeguards (file order, starting at 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SafeguardId(pub u32);

/// What a safeguard's pattern names: topics, or brokers' config resources (by broker id; the
/// cluster-wide default resource has the empty name, which only `*` matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Topic,
    Broker,
}

impl Target {
    fn parse(s: &str) -> Option<Target> {
        match s.to_ascii_lowercase().as_str() {
            "topic" => Some(Target::Topic),
            "broker" => Some(Target::Broker),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Topic => "Topic",
            Target::Broker => "Broker",
        })
    }
}

/// An inclusive integer range: `a..b`, `>=a`, `<=b` or exactly `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl Range {
    pub fn parse(s: &str) -> Result<Range, String> {
        let num = |t: &str| {
            t.trim().parse::<i64>().map_err(|_| {
                format!("`{s}` is not a range: expected `min..max`, `>=min`, `<=max` or a number")
            })
        };
        let range = if let Some(rest) = s.strip_prefix(">=") {
            Range {
                min: Some(num(rest)?),
                max: None,
            }
        } else if let Some(rest) = s.strip_prefix("<=") {
            Range {
                min: None,
                max: Some(num(rest)?),
            }
        } else if let Some((a, b)) = s.split_once("..") {
            Range {
                min: Some(num(a)?),
                max: Some(num(b)?),
            }
        } else {
            let n = num(s)?;
            Range {
                min: Some(n),
                max: Some(n),
            }
        };
        if let (Some(a), Some(b)) = (range.min, range.max) {
            if a > b {
                return Err(format!("empty range `{s}`: {a} is greater than {b}"));
            }
        }
        Ok(range)
    }

    pub fn contains(&self, n: i64) -> bool {
        self.min.is_none_or(|m| n >= m) && self.max.is_none_or(|m| n <= m)
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(a), Some(b)) if a == b => write!(f, "exactly {a}"),
            (Some(a), Some(b)) => write!(f, "between {a} and {b}"),
            (Some(a), None) => write!(f, "at least {a}"),
            (None, Some(b)) => write!(f, "at most {b}"),
            (None, None) => f.write_str("any value"),
        }
    }
}

/// The values a config may be given.
#[derive(Debug, Clone)]
pub enum Values {
    /// An integer in the range.
    Range(Range),
    /// One of these words; for a list config (`cleanup.policy=compact,delete`) every element.
    OneOf(Vec<String>),
}

impl fmt::Display for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Values::Range(r) => write!(f, "{r}"),
            Values::OneOf(v) => write!(f, "one of {}", v.join(", ")),
        }
    }
}

/// What one safeguard limits.
#[derive(Debug, Clone)]
pub enum Constraint {
    /// The partition count of a new topic, and the new count of CreatePartitions.
    Partitions(Range),
    /// The replication factor of a new topic.
    ReplicationFactor(Range),
    /// A new topic's name must match this regular expression.
    Name(regex::Regex),
    /// A config, when set (at creation or altered), must have one of these values.
    Config { name: String, values: Values },
    /// These configs may not be set.
    ForbidConfig(Vec<String>),
    /// Only these configs may be set.
    AllowConfig(Vec<String>),
}

/// The constraint names, for error messages.
const CONSTRAINTS: &str =
    "partitions, replication_factor, name, config.<name>, forbid_config or allow_config";

impl Constraint {
    fn parse(kind: &str, value: &str, target: Option<Target>) -> Result<Constraint, String> {
        let topic_only = |what: &str| match target {
            Some(Target::Broker) => Err(format!(
                "`{what}` applies to topics only: write `Topic` as the resource type"
            )),
            _ => Ok(()),
        };
        let names = |v: &str| -> Result<Vec<String>, String> {
            let list: Vec<String> = v.split('|').map(|n| n.trim().to_string()).collect();
            if list
                .iter()
                .any(|n| n.is_empty() || n.contains(char::is_whitespace))
            {
                return Err(format!(
                    "`{v}`: expected config names separated by `|`, e.g. `retention.ms|cleanup.policy`"
                ));
            }
            Ok(list)
        };
        if value.is_empty() {
            return Err(format!("`{kind}` needs a value"));
        }
        match kind.to_ascii_lowercase().as_str() {
            "partitions" => {
                topic_only("partitions")?;
                Ok(Constraint::Partitions(Range::parse(value)?))
            }
            "replication_factor" => {
                topic_only("replication_factor")?;
                Ok(Constraint::ReplicationFactor(Range::parse(value)?))
            }
            "name" => {
                topic_only("name")?;
                regex::Regex::new(value)
                    .map(Constraint::Name)
                    .map_err(|e| format!("bad name pattern `{value}`: {e}"))
            }
            "forbid_config" => Ok(Constraint::ForbidConfig(names(value)?)),
            "allow_config" => Ok(Constraint::AllowConfig(names(value)?)),
            _ => match kind.strip_prefix("config.") {
                Some(name) if !name.is_empty() && !name.contains(char::is_whitespace) => {
                    // A value starting with a digit, `-`, `>=` or `<=` is a range; words are a set.
                    let numeric = value.starts_with(|c: char| c.is_ascii_digit() || c == '-')
                        || value.starts_with(">=")
                        || value.starts_with("<=");
                    let values = if numeric {
                        Values::Range(Range::parse(value)?)
                    } else {
                        Values::OneOf(names(value).map_err(|_| {
                            format!("`{value}`: expected a range or values separated by `|`, e.g. `delete|compact`")
                        })?)
                    };
                    Ok(Constraint::Config {
                        name: name.to_string(),
                        values,
                    })
                }
                _ => Err(format!(
                    "unknown safeguard `{kind}` (expected {CONSTRAINTS})"
                )),
            },
        }
    }
}

/// One `s` line.
#[derive(Debug, Clone)]
pub struct Safeguard {
    pub id: SafeguardId,
    pub subject: Subject,
    pub target: Target,
    pub pattern: Pattern,
    pub constraint: Constraint,
    pub source: Source,
    /// The line as written (trimmed), for audit and explain.
    pub text: String,
}

impl fmt::Display for Safeguard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.text)
    }
}

/// Parses the fields of an `s` line (the first field is `s`); problems go to `errs`.
pub(super) fn parse(
    fields: &[String],
    errs: &mut Vec<String>,
    source: Source,
    line: &str,
) -> Option<Safeguard> {
    if fields.len() != 6 {
        errs.push(format!(
            "wrong number of fields: a safeguard has 6 (`s, principal, Topic|Broker, pattern, constraint, value`), this line has {}",
            fields.len()
        ));
        return None;
    }
    let subject = Subject::parse(&fields[1]).map_err(|e| errs.push(e)).ok();
    let target = Target::parse(&fields[2]);
    if target.is_none() {
        errs.push(format!(
            "unknown safeguard resource type `{}` (expected Topic or Broker)",
            fields[2]
        ));
    }
    let pattern = Pattern::parse(&fields[3], None)
        .map_err(|e| errs.push(e))
        .ok();
    let constraint = Constraint::parse(&fields[4], &fields[5], target)
        .map_err(|e| errs.push(e))
        .ok();
    Some(Safeguard {
        id: SafeguardId(0),
        subject: subject?,
        target: target?,
        pattern: pattern?,
        constraint: constraint?,
        source,
        text: line.to_string(),
    })
}

/// How a config entry of a request changes the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set to the value (CreateTopics, AlterConfigs, IncrementalAlterConfigs SET).
    Set,
    /// Back to its default (IncrementalAlterConfigs DELETE, a null value).
    Delete,
    /// Add the value's elements to a list config.
    Append,
    /// Remove the value's elements from a list config.
    Subtract,
}

impl ConfigOp {
    /// IncrementalAlterConfigs' `config_operation`; `None` for an unknown one (the broker
    /// answers it).
    pub fn from_incremental(op: i8) -> Option<ConfigOp> {
        match op {
            0 => Some(ConfigOp::Set),
            1 => Some(ConfigOp::Delete),
            2 => Some(ConfigOp::Append),
            3 => Some(ConfigOp::Subtract),
            _ => None,
        }
    }
}

/// One config entry of a request.
#[derive(Debug, Clone, Copy)]
pub struct ConfigChange<'a> {
    pub name: &'a str,
    pub op: ConfigOp,
    pub value: Option<&'a str>,
}

impl<'a> ConfigChange<'a> {
    /// A config given a value (or, with `None`, its default).
    pub fn set(name: &'a str, value: Option<&'a str>) -> ConfigChange<'a> {
        let op = if value.is_some() {
            ConfigOp::Set
        } else {
            ConfigOp::Delete
        };
        ConfigChange { name, op, value }
    }

    /// Does this entry give the config a value the request chose? (Deleting a config returns it
    /// to the broker's default, and subtracting from a list only removes values already
    /// accepted: neither can break a limit.)
    fn sets(&self) -> bool {
        matches!(self.op, ConfigOp::Set | ConfigOp::Append)
    }
}

/// What a request asks for one element, as Kafka's policies see it.
#[derive(Debug, Clone)]
pub enum Change<'a> {
    /// CreateTopics: `None` for a count or factor left to the broker's default (-1).
    CreateTopic {
        name: &'a str,
        partitions: Option<i64>,
        replication_factor: Option<i64>,
        configs: Vec<ConfigChange<'a>>,
    },
    /// CreatePartitions: the topic's new partition count.
    CreatePartitions { name: &'a str, count: i64 },
    /// AlterConfigs or IncrementalAlterConfigs on one resource.
    AlterConfigs {
        target: Target,
        name: &'a str,
        configs: Vec<ConfigChange<'a>>,
    },
}

impl Change<'_> {
    pub fn target(&self) -> Target {
        match self {
            Change::CreateTopic { .. } | Change::CreatePartitions { .. } => Target::Topic,
            Change::AlterConfigs { target, .. } => *target,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Change::CreateTopic { name, .. }
            | Change::CreatePartitions { name, .. }
            | Change::AlterConfigs { name, .. } => name,
        }
    }

    /// Config limits apply to creations and config changes, not to CreatePartitions.
    fn has_configs(&self) -> bool {
        !matches!(self, Change::CreatePartitions { .. })
    }

    fn configs(&self) -> &[ConfigChange<'_>] {
        match self {
            Change::CreateTopic { configs, .. } | Change::AlterConfigs { configs, .. } => configs,
            Change::CreatePartitions { .. } => &[],
        }
    }

    /// How the element is named in messages: `Topic orders`, `Broker 1`, `the cluster's broker
    /// default`.
    fn what(&self) -> String {
        match (self.target(), self.name()) {
            (Target::Broker, "") => "The brokers' default config".to_string(),
            (t, n) => format!("{t} {n}"),
        }
    }
}

/// What one safeguard says about one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The safeguard is not about this element or this kind of change.
    NotApplicable,
    Passes,
    /// Refused, with the message the client gets.
    Violates(String),
}

impl Safeguard {
    /// Judges `change` (the principal was matched by the caller).
    pub fn judge(&self, change: &Change<'_>) -> Judgement {
        if self.target != change.target() || !self.pattern.matches(change.name()) {
            return Judgement::NotApplicable;
        }
        let what = change.what();
        let verdict = |violation: Option<String>| match violation {
            Some(m) => Judgement::Violates(format!("{m} (gateway safeguard)")),
            None => Judgement::Passes,
        };
        match (&self.constraint, change) {
            (Constraint::Partitions(range), Change::CreateTopic { partitions, .. }) => {
                match partitions {
                    // The broker's default (num.partitions) is the operator's own setting.
                    None => Judgement::Passes,
                    Some(n) => verdict((!range.contains(*n)).then(|| {
                        format!("{what}: {n} partitions, the allowed number is {range}.")
                    })),
                }
            }
            (Constraint::Partitions(range), Change::CreatePartitions { count, .. }) => {
                verdict((!range.contains(*count)).then(|| {
                    format!("{what}: {count} partitions requested, the allowed number is {range}.")
                }))
            }
            (
                Constraint::ReplicationFactor(range),
                Change::CreateTopic {
                    replication_factor, ..
                },
            ) => match replication_factor {
                None => Judgement::Passes,
                Some(n) => verdict((!range.contains(*n)).then(|| {
                    format!("{what}: replication factor {n}, the allowed factor is {range}.")
                })),
            },
            (Constraint::Name(re), Change::CreateTopic { name, .. }) => {
                verdict((!re.is_match(name)).then(|| {
                    format!(
                        "{what}: the name does not match the required pattern {}.",
                        re.as_str()
                    )
                }))
            }
            (Constraint::Config { name, values }, _) if change.has_configs() => {
                let bad = change
                    .configs()
                    .iter()
                    .filter(|c| c.sets() && c.name == name)
                    .find_map(|c| {
                        let v = c.value.unwrap_or("");
                        (!value_allowed(values, v)).then(|| {
                            format!(
                                "{what}: {name}={v} is not allowed, the value must be {values}."
                            )
                        })
                    });
                verdict(bad)
            }
            (Constraint::ForbidConfig(names), _) if change.has_configs() => {
                let bad = change
                    .configs()
                    .iter()
                    .find(|c| c.sets() && names.iter().any(|n| n == c.name));
                verdict(bad.map(|c| format!("{what}: setting {} is not allowed.", c.name)))
            }
            (Constraint::AllowConfig(names), _) if change.has_configs() => {
                let bad = change
                    .configs()
                    .iter()
                    .find(|c| c.sets() && !names.iter().any(|n| n == c.name));
                verdict(bad.map(|c| {
                    format!(
                        "{what}: setting {} is not allowed, only {} may be set.",
                        c.name,
                        names.join(", ")
                    )
                }))
            }
            _ => Judgement::NotApplicable,
        }
    }
}

/// Does `value` satisfy `values`? A list config's value (`compact,delete`) passes a set when every
/// element is in it.
fn value_allowed(values: &Values, value: &str) -> bool {
    match values {
        Values::Range(r) => value.trim().parse::<i64>().is_ok_and(|n| r.contains(n)),
        Values::OneOf(set) => value
            .split(',')
            .map(str::trim)
            .all(|v| set.iter().any(|s| s == v)),
    }
}

/// One safeguard's verdict on a change, for explain.
#[derive(Debug, Clone)]
pub struct Judged {
    pub safeguard: Arc<Safeguard>,
    pub judgement: Judgement,
}

/// A refusal: the safeguard that decided (the first failing one in file order) and the message.
#[derive(Debug, Clone)]
pub struct Violation {
    pub safeguard: Arc<Safeguard>,
    pub message: String,
}

#[cfg(test)]
#[path = "safeguards_tests.rs"]
mod tests;
