//! Quota rules as written in policy files (`q` lines), and which one applies to a client, with
//! the precedence of Kafka's default quota callback.
//!
//! ```text
//! # q, <principal>, <client id>, <quota>, <value>
//! # alice, all her clients together; each user (Kafka's default user); one client of bob's
//! q, User:alice, -,             producer_byte_rate, 1048576
//! q, User:*,     -,             consumer_byte_rate, 10485760
//! q, User:bob,   reporting-app, request_percentage, 50
//! # each client id (Kafka's default client id)
//! q, -,          *,             producer_byte_rate, 524288
//! # new connections from each address; logins of carol, and from one address
//! q, *,          -,             connection_creation_rate, 20
//! q, User:carol, -,             login_rate, 2
//! q, 10.0.0.7,   -,             login_rate, 5
//! ```
//!
//! The principal field is `User:<name>`, `User:*` (Kafka's `<default>` user: each user on its
//! own) or `-` (no user: a client-id quota); the client field is a client id, `*` (Kafka's
//! `<default>` client id) or `-` (no client id: shared by all the user's clients). Which quota a
//! client gets follows Kafka's order: (user, client-id) > (user, default client-id) > (user) >
//! (default user, client-id) > (default user, default client-id) > (default user) > (client-id) >
//! (default client-id). The sensor a client's usage is counted in is the one Kafka's metric tags
//! name: a user quota is shared by the user's clients, a `(user, client-id)` quota is that pair's.

use std::fmt;
use std::net::IpAddr;

use crate::policy::files::Source;

/// The quota types Kafka knows (and one of the gateway's own, `login_rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaKind {
    /// Produce request bytes per second.
    ProducerByteRate,
    /// Fetch response bytes per second.
    ConsumerByteRate,
    /// Percentage of one thread's time spent by the gateway on the client's requests.
    RequestPercentage,
    /// New connections per second from one address (Kafka's `connection_creation_rate` per IP).
    ConnectionCreationRate,
    /// Successful logins per second of one principal or from one address (not in Kafka: the
    /// per-principal counterpart of the connection rate, whose principal is known only then).
    LoginRate,
}

impl QuotaKind {
    pub const ALL: [QuotaKind; 5] = [
        QuotaKind::ProducerByteRate,
        QuotaKind::ConsumerByteRate,
        QuotaKind::RequestPercentage,
        QuotaKind::ConnectionCreationRate,
        QuotaKind::LoginRate,
    ];

    /// The name in policy files, metrics and audit records (Kafka's config key).
    pub fn name(self) -> &'static str {
        match self {
            QuotaKind::ProducerByteRate => "producer_byte_rate",
            QuotaKind::ConsumerByteRate => "consumer_byte_rate",
            QuotaKind::RequestPercentage => "request_percentage",
            QuotaKind::ConnectionCreationRate => "connection_creation_rate",
            QuotaKind::LoginRate => "login_rate",
        }
    }

    pub fn from_name(s: &str) -> Option<QuotaKind> {
        let s = s.replace('.', "_").to_ascii_lowercase();
        QuotaKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Is it about a principal and client id (rather than an address or a principal alone)?
    fn per_client(self) -> bool {
        matches!(
            self,
            QuotaKind::ProducerByteRate
                | QuotaKind::ConsumerByteRate
                | QuotaKind::RequestPercentage
        )
    }
}

impl fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One side of a quota entity: a name, Kafka's `<default>` (`*`), or absent (`-`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Named(String),
    Default,
    Absent,
}

impl Entity {
    fn write(&self, f: &mut fmt::Formatter<'_>, prefix: &str) -> fmt::Result {
        match self {
            Entity::Named(n) => write!(f, "{prefix}{n}"),
            Entity::Default => write!(f, "{prefix}*"),
            Entity::Absent => f.write_str("-"),
        }
    }
}

/// Whom a quota is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A Kafka client quota entity: user and client id.
    Client { user: Entity, client: Entity },
    /// Connections from one address, or (`None`) from each address on its own.
    Address(Option<IpAddr>),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Client { user, client } => {
                user.write(f, "User:")?;
                f.write_str(", ")?;
                client.write(f, "")
            }
            Target::Address(None) => f.write_str("*, -"),
            Target::Address(Some(ip)) => write!(f, "{ip}, -"),
        }
    }
}

/// One `q` line.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaRule {
    pub target: Target,
    pub kind: QuotaKind,
    /// Bytes per second, percent, or events per second.
    pub value: f64,
    pub source: Source,
}

impl QuotaRule {
    /// The canonical line, e.g. `q, User:alice, -, producer_byte_rate, 1048576`.
    pub fn canonical(&self) -> String {
        format!("q, {}, {}, {}", self.target, self.kind, self.value)
    }
}

/// Where one client's usage of one quota type is counted (Kafka's metric tags).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SensorKey {
    pub kind: QuotaKind,
    pub user: Option<String>,
    pub client: Option<String>,
    pub address: Option<IpAddr>,
}

/// The quota that applies to a client, and where its usage is counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied<'a> {
    pub key: SensorKey,
    pub bound: f64,
    pub rule: &'a QuotaRule,
}

/// The quota rules of a loaded policy.
#[derive(Debug, Clone, Default)]
pub struct QuotaSet {
    rules: Vec<QuotaRule>,
}

impl QuotaSet {
    /// Takes the parsed rules; a second rule for the same entity and type is a problem reported
    /// at its line (`(file, line, message)`), as Kafka has one value per entity and type.
    pub fn new(rules: Vec<QuotaRule>) -> (QuotaSet, Vec<(Source, String)>) {
        let mut problems = Vec::new();
        let mut kept: Vec<QuotaRule> = Vec::with_capacity(rules.len());
        for r in rules {
            match kept
                .iter()
                .find(|k| k.kind == r.kind && k.target == r.target)
            {
                Some(first) => problems.push((
                    r.source.clone(),
                    format!(
                        "a second {} quota for `{}` (the first is at {}): one value per entity",
                        r.kind, r.target, first.source
                    ),
                )),
                None => kept.push(r),
            }
        }
        (QuotaSet { rules: kept }, problems)
    }

    pub fn rules(&self) -> &[QuotaRule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Does any rule of this type exist (a cheap test before resolving)?
    pub fn has(&self, kind: QuotaKind) -> bool {
        self.rules.iter().any(|r| r.kind == kind)
    }

    /// The client quota of type `kind` for `user` (the principal's name, `None` for a principal
    /// that is not a `User`) and `client` id, by Kafka's precedence.
    pub fn for_client(
        &self,
        kind: QuotaKind,
        user: Option<&str>,
        client: &str,
    ) -> Option<Applied<'_>> {
        let rank = |t: &Target| -> Option<u8> {
            let Target::Client { user: u, client: c } = t else {
                return None;
            };
            let named_user = matches!(u, Entity::Named(n) if Some(n.as_str()) == user);
            let named_client = matches!(c, Entity::Named(n) if n == client);
            // Kafka's order, lowest first.
            match (u, c) {
                (Entity::Named(_), Entity::Named(_)) if named_user && named_client => Some(1),
                (Entity::Named(_), Entity::Default) if named_user => Some(2),
                (Entity::Named(_), Entity::Absent) if named_user => Some(3),
                (Entity::Default, Entity::Named(_)) if named_client && user.is_some() => Some(4),
                (Entity::Default, Entity::Default) if user.is_some() => Some(5),
                (Entity::Default, Entity::Absent) if user.is_some() => Some(6),
                (Entity::Absent, Entity::Named(_)) if named_client => Some(7),
                (Entity::Absent, Entity::Default) => Some(8),
                _ => None,
            }
        };
        let (best, rule) = self.best(kind, rank)?;
        // Kafka's metric tags: the user's quota is shared by its clients; the client-id quota by
        // the client id's users.
        let (u, c) = match best {
            3 | 6 => (user, None),
            7 | 8 => (None, Some(client)),
            _ => (user, Some(client)),
        };
        Some(Applied {
            key: SensorKey {
                kind,
                user: u.map(str::to_string),
                client: c.map(str::to_string),
                address: None,
            },
            bound: rule.value,
            rule,
        })
    }

    /// The `kind` rule `rank` puts first (lowest), with its rank; rules it does not rank do not
    /// apply.
    fn best(
        &self,
        kind: QuotaKind,
        rank: impl Fn(&Target) -> Option<u8>,
    ) -> Option<(u8, &QuotaRule)> {
        self.rules
            .iter()
            .filter(|r| r.kind == kind)
            .filter_map(|r| rank(&r.target).map(|k| (k, r)))
            .min_by_key(|(k, _)| *k)
    }

    /// The `kind` quota (connection creation or login rate) for `ip`: its own rule, else the
    /// default per address.
    pub fn for_address(&self, kind: QuotaKind, ip: IpAddr) -> Option<Applied<'_>> {
        let (_, rule) = self.best(kind, |t| match t {
            Target::Address(Some(a)) if *a == ip => Some(0),
            Target::Address(None) => Some(1),
            _ => None,
        })?;
        Some(Applied {
            key: SensorKey {
                kind,
                user: None,
                client: None,
                address: Some(ip),
            },
            bound: rule.value,
            rule,
        })
    }

    /// The login rate of `user` (a `User` principal's name): its own rule, else each user's.
    pub fn for_login(&self, user: &str) -> Option<Applied<'_>> {
        let (_, rule) = self.best(QuotaKind::LoginRate, |t| match t {
            Target::Client {
                user: Entity::Named(n),
                ..
            } if n == user => Some(0),
            Target::Client {
                user: Entity::Default,
                ..
            } => Some(1),
            _ => None,
        })?;
        Some(Applied {
            key: SensorKey {
                kind: QuotaKind::LoginRate,
                user: Some(user.to_string()),
                client: None,
                address: None,
            },
            bound: rule.value,
            rule,
        })
    }
}

/// Parses the fields of a `q` line (`fields[0]` is `q`); problems go to `errs`.
pub fn parse_line(fields: &[String], errs: &mut Vec<String>, source: Source) -> Option<QuotaRule> {
    if fields.len() != 5 {
        errs.push(format!(
            "wrong number of fields: a quota has 5 (`q, principal, client id, quota, value`), this line has {}",
            fields.len()
        ));
        return None;
    }
    let kind = QuotaKind::from_name(&fields[3]);
    if kind.is_none() {
        let names: Vec<&str> = QuotaKind::ALL.iter().map(|k| k.name()).collect();
        errs.push(format!(
            "unknown quota `{}` (expected one of {})",
            fields[3],
            names.join(", ")
        ));
    }
    let value = match fields[4].parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Some(v),
        _ => {
            errs.push(format!(
                "bad quota value `{}`: a positive number (bytes/s, percent or per second)",
                fields[4]
            ));
            None
        }
    };
    let target = match kind? {
        QuotaKind::ConnectionCreationRate if fields[1].starts_with("User:") => {
            errs.push(format!(
                "connection_creation_rate is per address (a new connection has no principal yet): write an IP address or `*` (each address), or use login_rate for `{}`",
                fields[1]
            ));
            None
        }
        k @ (QuotaKind::ConnectionCreationRate | QuotaKind::LoginRate)
            if !fields[1].starts_with("User:") && fields[1] != "-" =>
        {
            parse_address(k, &fields[1], &fields[2], errs)
        }
        k => parse_client(k, &fields[1], &fields[2], errs),
    };
    if let (Some(QuotaKind::RequestPercentage), Some(v)) = (kind, value) {
        if v > 100.0 * 1024.0 {
            errs.push(format!("request_percentage {v} is beyond any thread count"));
            return None;
        }
    }
    Some(QuotaRule {
        target: target?,
        kind: kind?,
        value: value?,
        source,
    })
}

fn parse_client(
    kind: QuotaKind,
    user: &str,
    client: &str,
    errs: &mut Vec<String>,
) -> Option<Target> {
    let u = match user {
        "-" => Some(Entity::Absent),
        "User:*" => Some(Entity::Default),
        _ => match user.strip_prefix("User:") {
            Some(n) if !n.is_empty() && n.trim() == n && !n.chars().any(char::is_control) => {
                Some(Entity::Named(n.to_string()))
            }
            _ => {
                errs.push(format!(
                    "bad quota principal `{user}`: expected `User:<name>`, `User:*` (each user) or `-` (no user); groups have no quotas in Kafka"
                ));
                None
            }
        },
    };
    let c = match client {
        "-" => Some(Entity::Absent),
        "*" => Some(Entity::Default),
        "" => {
            errs.push(
                "empty client id: write a client id, `*` (each client id) or `-` (none)".into(),
            );
            None
        }
        c if c.chars().any(char::is_control) => {
            errs.push("the client id holds control characters".into());
            None
        }
        c => Some(Entity::Named(c.to_string())),
    };
    let (u, c) = (u?, c?);
    if !kind.per_client() && c != Entity::Absent {
        errs.push(format!(
            "{kind} is per principal: write `-` for the client id (`q, User:<name>, -, {kind}, <value>`)"
        ));
        return None;
    }
    if kind == QuotaKind::LoginRate && u == Entity::Absent {
        errs.push(
            "login_rate is per principal or per address: write `User:<name>`, `User:*`, an IP address or `*`"
                .to_string(),
        );
        return None;
    }
    if u == Entity::Absent && c == Entity::Absent {
        errs.push(
            "quota for nobody: give a principal, a client id, or both (`User:*` and `*` for each one)"
                .to_string(),
        );
        return None;
    }
    Some(Target::Client { user: u, client: c })
}

fn parse_address(
    kind: QuotaKind,
    addr: &str,
    client: &str,
    errs: &mut Vec<String>,
) -> Option<Target> {
    let ip = match addr {
        "*" => Some(None),
        a => match a.parse::<IpAddr>() {
            Ok(ip) => Some(Some(crate::policy::files::canonical_ip(ip))),
            Err(_) => {
                errs.push(format!(
                    "bad address `{a}`: {kind} is per client address here: write an IP address, `*` (each address){}",
                    if kind == QuotaKind::LoginRate { " or `User:<name>`" } else { "" }
                ));
                None
            }
        },
    };
    if client != "-" {
        errs.push(format!(
            "{kind} has no client id: write `-` for it, not `{client}`"
        ));
        return None;
    }
    ip.map(Target::Address)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
