//! The audit event schema (version [`SCHEMA_VERSION`]): what happened, to whom, from where, with what outcome.
//!
//! Each event kind maps the questions of NIST SP 800-53 AU-3 and PCI DSS 10.2 onto named fields:
//! *who* is `principal` (or `attempted` for a failed login), *what* is the `event` tag plus api/operation,
//! *when* is the record's `ts`, *where from* is `conn.client` and `conn.listener`, *outcome* is
//! `decision`/`outcome`/the success-or-failure kind, and the *affected resource* is `resource_type` +
//! `resource_name`. Secrets never appear: authentication events carry a reason *category*, never a
//! password, proof or token.

use serde::{Deserialize, Serialize};

/// The `schema` field of every record. Bump it when a field changes meaning or disappears; adding an
/// optional field does not need a bump (readers ignore unknown fields).
pub const SCHEMA_VERSION: u32 = 1;

/// Where a connection-scoped event happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnInfo {
    /// Gateway-assigned connection number, unique per gateway run; ties open, auth, decisions and close.
    pub id: u64,
    /// Client address as `ip:port`.
    pub client: String,
    /// Name of the listener the client connected to.
    pub listener: String,
    /// The virtual cluster that listener leads to, when the config declares virtual clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_cluster: Option<String>,
}

/// What a reload event reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadKind {
    Config,
    Policy,
    /// The shadow policy (`shadow_policy_files`).
    ShadowPolicy,
    Credentials,
    Jwks,
}

/// Outcome of an operation that can fail (reloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error,
}

/// An authorization decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// The policy rule that decided, so a reviewer can jump to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    pub file: String,
    pub line: u32,
    /// The rule as written (one line, trimmed).
    pub text: String,
}

/// One authorization decision on one resource of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzDecision {
    pub conn: ConnInfo,
    pub principal: String,
    pub api_key: i16,
    /// Kafka API name (`Produce`, `CreateTopics`, ...), so the trail reads without a key table.
    pub api_name: String,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// `topic`, `group`, `cluster`, `transactional_id`, ...
    pub resource_type: String,
    pub resource_name: String,
    /// Kafka's operation name: `Read`, `Write`, `Create`, `Delete`, `AlterConfigs`, ...
    pub operation: String,
    pub decision: Decision,
    /// The rule that decided; `None` means no rule matched and the default (deny) applied.
    pub rule: Option<RuleRef>,
    /// Hash of the policy version in force.
    pub policy_hash: String,
    /// Set on a summary of denials past the per-request limit: how many denials of `operation` on
    /// `resource_type` this record stands for (`resource_name` is then `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<u64>,
    /// Set on a summary of identical denials on one connection ("N more like this"): how many
    /// denials this record stands for, itself included (see `audit::repeats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeated: Option<u64>,
}

/// Which way a shadow policy would change a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShadowChange {
    /// Allowed now, the shadow would deny.
    Lose,
    /// Denied now, the shadow would allow.
    Gain,
}

impl ShadowChange {
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowChange::Lose => "lose",
            ShadowChange::Gain => "gain",
        }
    }
}

/// One policy's side of a shadow comparison: its outcome, deciding rule and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyOutcome {
    pub decision: Decision,
    /// The rule that decided; `None` means no rule matched (default deny), or a super user.
    pub rule: Option<RuleRef>,
    pub policy_hash: String,
}

/// One check where the shadow policy (a candidate evaluated beside the enforced one, never
/// enforced) decided otherwise than the enforced policy. The request was handled by `enforced`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowDecision {
    pub conn: ConnInfo,
    pub principal: String,
    pub api_key: i16,
    pub api_name: String,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub resource_type: String,
    /// `*` for an "on any resource of this type" check and for a summary past the per-request
    /// limit (`more`).
    pub resource_name: String,
    pub operation: String,
    /// `lose`: the principal would lose this right under the shadow; `gain`: would gain it.
    pub change: ShadowChange,
    pub enforced: PolicyOutcome,
    pub shadow: PolicyOutcome,
    /// Set on a summary of differences past the per-request limit (rules then unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<u64>,
    /// Set on a summary of identical differences on one connection: how many checks this record
    /// stands for, itself included (see `audit::repeats`). Absent: one check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeated: Option<u64>,
}

impl ShadowDecision {
    /// How many checks this record stands for.
    pub fn count(&self) -> u64 {
        self.repeated.or(self.more).unwrap_or(1)
    }
}

/// The fail-closed / best-effort choice, as recorded in audit_failure events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Requests that need an audit record get a retriable error while the trail cannot take records.
    #[default]
    FailClosed,
    /// Records that cannot be queued are dropped, counted, and reported by an audit_gap event.
    BestEffort,
}

/// Phase of a sink failure episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureState {
    /// The sink failed at `since` (written once the sink works again, first thing).
    Engaged,
    /// The sink works again; `refused` records were refused to callers since `since`.
    Recovered,
}

/// What made the trail unable to take records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCause {
    /// Writing, syncing, creating or rotating a file failed.
    WriteError,
    /// The writer could not keep up and the bounded queue was full.
    QueueFull,
}

/// Why a torn (incomplete or unreadable) tail was found in a trail file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TornCause {
    /// Found at start-up: the previous run died mid-write (crash, kill -9, power loss).
    Restart,
    /// A write failed part-way (disk full, I/O error).
    WriteError,
}

/// A file deleted by retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedFile {
    pub file: String,
    pub first_seq: Option<u64>,
}

/// One audit event. Serialized internally tagged: `{"event":"auth_failure", ...fields}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    GatewayStart {
        /// Gateway version.
        version: String,
        /// Unique id of this gateway run.
        instance: String,
        /// SHA-256 of the configuration file as loaded.
        config_hash: Option<String>,
        listeners: Vec<String>,
    },
    GatewayStop {
        instance: String,
        /// `signal`, `shutdown`, `error: ...`.
        reason: String,
        uptime_ms: u64,
    },
    Reload {
        what: ReloadKind,
        /// The file or URL reloaded.
        source: String,
        outcome: Outcome,
        /// SHA-256 of what was loaded (on success). Serialized as `loaded_hash`: a member named
        /// `hash` would collide with the record's own chain hash.
        #[serde(rename = "loaded_hash")]
        hash: Option<String>,
        /// Why the reload failed (the old version stays in force).
        error: Option<String>,
        /// Whose policy, when the config declares virtual clusters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        virtual_cluster: Option<String>,
    },
    /// A virtual cluster forwards to another upstream from now on; the connections to the
    /// previous one stop taking requests, answer what is in flight and close.
    UpstreamSwitch {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        virtual_cluster: Option<String>,
        from: Vec<String>,
        to: Vec<String>,
        /// What asked for it (the config file).
        source: String,
        /// Connections told to drain.
        draining: u64,
    },
    ConnectionOpen {
        conn: ConnInfo,
        /// `TLSv1.3`, `TLSv1.2`, or `None` on a plaintext listener.
        tls_version: Option<String>,
        /// Known at open time for mTLS listeners.
        principal: Option<String>,
    },
    ConnectionClose {
        conn: ConnInfo,
        principal: Option<String>,
        bytes_in: u64,
        bytes_out: u64,
        duration_ms: u64,
        /// `client_closed`, `idle`, `auth_timeout`, `error: ...`, `shutdown`, ...
        reason: String,
    },
    AuthSuccess {
        conn: ConnInfo,
        mechanism: String,
        principal: String,
    },
    AuthFailure {
        conn: ConnInfo,
        mechanism: String,
        /// The name the client claimed, if it got that far. Never a secret.
        attempted: Option<String>,
        /// A category (`bad_credentials`, `unknown_user`, `invalid_token`, ...), never secret material.
        reason: String,
    },
    /// Boxed: it is by far the largest variant and the most frequent one.
    AuthzDecision(Box<AuthzDecision>),
    /// A client starts being throttled by a quota: written once per episode (the first throttle
    /// after a whole quota window without one), not per throttled request. For the connection
    /// and login rates the throttled connection is closed after `throttle_ms`, unanswered.
    QuotaThrottle {
        conn: ConnInfo,
        /// Absent for a new connection over its address's rate (no principal yet).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        principal: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`, ...
        quota: String,
        /// The quota's value, as written in the policy (bytes/s, percent, or per second).
        limit: String,
        /// The throttle of the request that crossed it.
        throttle_ms: u64,
        /// The `q` line that set the quota (`file:line`).
        rule: String,
    },
    /// The shadow policy decided a check otherwise (`[authorization] shadow_policy_files`).
    ShadowDecision(Box<ShadowDecision>),
    /// Best-effort mode dropped `dropped` records between `from` and `to`.
    AuditGap {
        dropped: u64,
        from: String,
        to: String,
    },
    /// The trail could not take records. `refused` counts records refused to callers (fail-closed).
    AuditFailure {
        state: FailureState,
        mode: FailureMode,
        cause: FailureCause,
        error: Option<String>,
        since: String,
        refused: u64,
    },
    /// Retention deleted the oldest files. The chain now starts at `first_retained_seq` in
    /// `first_retained_file`, whose first record's `prev` is `anchor_prev`; verify accepts that start only
    /// because this record (itself in the chain) vouches for it.
    AuditRetention {
        deleted: Vec<DeletedFile>,
        first_retained_file: String,
        first_retained_seq: u64,
        anchor_prev: String,
    },
    /// Bytes that are not a complete record were found at the end of `file` from byte `offset` (line
    /// `line`) to its end. They are left in place (the trail is append-only) and this record vouches for
    /// exactly those bytes (`length`, `sha256`); the chain continues from `last_good_seq`.
    AuditTornTail {
        file: String,
        line: u64,
        offset: u64,
        length: u64,
        sha256: String,
        last_good_seq: Option<u64>,
        cause: TornCause,
    },
}

impl Event {
    /// The `event` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::GatewayStart { .. } => "gateway_start",
            Event::GatewayStop { .. } => "gateway_stop",
            Event::Reload { .. } => "reload",
            Event::UpstreamSwitch { .. } => "upstream_switch",
            Event::ConnectionOpen { .. } => "connection_open",
            Event::ConnectionClose { .. } => "connection_close",
            Event::AuthSuccess { .. } => "auth_success",
            Event::AuthFailure { .. } => "auth_failure",
            Event::AuthzDecision(_) => "authz_decision",
            Event::QuotaThrottle { .. } => "quota_throttle",
            Event::ShadowDecision(_) => "shadow_decision",
            Event::AuditGap { .. } => "audit_gap",
            Event::AuditFailure { .. } => "audit_failure",
            Event::AuditRetention { .. } => "audit_retention",
            Event::AuditTornTail { .. } => "audit_torn_tail",
        }
    }

    /// Who: the authenticated principal, or the name a failed login attempted.
    pub fn principal(&self) -> Option<&str> {
        match self {
            Event::ConnectionOpen { principal, .. }
            | Event::ConnectionClose { principal, .. }
            | Event::QuotaThrottle { principal, .. } => principal.as_deref(),
            Event::AuthSuccess { principal, .. } => Some(principal),
            Event::AuthFailure { attempted, .. } => attempted.as_deref(),
            Event::AuthzDecision(d) => Some(&d.principal),
            Event::ShadowDecision(d) => Some(&d.principal),
            _ => None,
        }
    }

    /// Where from: the connection, for connection-scoped events.
    pub fn conn(&self) -> Option<&ConnInfo> {
        match self {
            Event::ConnectionOpen { conn, .. }
            | Event::ConnectionClose { conn, .. }
            | Event::AuthSuccess { conn, .. }
            | Event::AuthFailure { conn, .. }
            | Event::QuotaThrottle { conn, .. } => Some(conn),
            Event::AuthzDecision(d) => Some(&d.conn),
            Event::ShadowDecision(d) => Some(&d.conn),
            _ => None,
        }
    }

    /// Affected resource as `type:name`.
    pub fn resource(&self) -> Option<String> {
        match self {
            Event::AuthzDecision(d) => Some(format!("{}:{}", d.resource_type, d.resource_name)),
            Event::ShadowDecision(d) => Some(format!("{}:{}", d.resource_type, d.resource_name)),
            Event::Reload { what, source, .. } => Some(format!("{}:{source}", reload_kind(*what))),
            Event::UpstreamSwitch {
                virtual_cluster, ..
            } => Some(format!(
                "upstream:{}",
                virtual_cluster.as_deref().unwrap_or("default")
            )),
            _ => None,
        }
    }

    /// The outcome in one word: `allow`/`deny`, `success`/`failure`, `ok`/`error`, or `-`. A
    /// shadow decision's is the enforced one's (what happened to the request).
    pub fn outcome(&self) -> &'static str {
        match self {
            Event::AuthzDecision(d) => d.decision.as_str(),
            Event::ShadowDecision(d) => d.enforced.decision.as_str(),
            Event::AuthSuccess { .. } => "success",
            Event::AuthFailure { .. } => "failure",
            Event::QuotaThrottle { .. } => "throttle",
            Event::Reload {
                outcome: Outcome::Ok,
                ..
            } => "ok",
            Event::Reload { .. } | Event::AuditGap { .. } | Event::AuditFailure { .. } => "error",
            _ => "-",
        }
    }

    /// A short human description of the action (api + operation, mechanism, reason).
    pub fn action(&self) -> String {
        match self {
            Event::AuthzDecision(d) => format!("{} v{} {}", d.api_name, d.api_version, d.operation),
            Event::ShadowDecision(d) => format!(
                "{} v{} {}: shadow would {} x{}",
                d.api_name,
                d.api_version,
                d.operation,
                d.change.as_str(),
                d.count()
            ),
            Event::AuthSuccess { mechanism, .. } => mechanism.clone(),
            Event::QuotaThrottle {
                quota,
                limit,
                throttle_ms,
                client_id,
                ..
            } => format!(
                "{quota} {limit} throttled {throttle_ms} ms{}",
                client_id
                    .as_ref()
                    .map(|c| format!(" client {c}"))
                    .unwrap_or_default()
            ),
            Event::AuthFailure {
                mechanism, reason, ..
            } => format!("{mechanism} {reason}"),
            Event::ConnectionOpen { tls_version, .. } => {
                tls_version.clone().unwrap_or_else(|| "plaintext".into())
            }
            Event::ConnectionClose {
                reason,
                bytes_in,
                bytes_out,
                ..
            } => format!("{reason} in={bytes_in} out={bytes_out}"),
            Event::Reload { error, hash, .. } => error
                .clone()
                .or_else(|| hash.as_ref().map(|h| format!("sha256 {}", short(h))))
                .unwrap_or_default(),
            Event::GatewayStart { version, .. } => format!("version {version}"),
            Event::UpstreamSwitch {
                from, to, draining, ..
            } => format!(
                "{} -> {}, {draining} connections draining",
                from.join(","),
                to.join(",")
            ),
            Event::GatewayStop { reason, .. } => reason.clone(),
            Event::AuditGap { dropped, .. } => format!("{dropped} records dropped"),
            Event::AuditFailure {
                state,
                cause,
                refused,
                ..
            } => format!("{state:?} {cause:?} refused={refused}").to_lowercase(),
            Event::AuditRetention { deleted, .. } => format!("{} files deleted", deleted.len()),
            Event::AuditTornTail {
                file,
                offset,
                length,
                ..
            } => {
                format!("{length} torn bytes at {file}:{offset}")
            }
        }
    }
}

fn reload_kind(k: ReloadKind) -> &'static str {
    match k {
        ReloadKind::Config => "config",
        ReloadKind::Policy => "policy",
        ReloadKind::ShadowPolicy => "shadow_policy",
        ReloadKind::Credentials => "credentials",
        ReloadKind::Jwks => "jwks",
    }
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> ConnInfo {
        ConnInfo {
            id: 7,
            client: "10.0.0.5:53422".into(),
            listener: "external".into(),
            virtual_cluster: Some("eu".into()),
        }
    }

    #[test]
    fn tagged_snake_case_json() {
        let e = Event::AuthFailure {
            conn: conn(),
            mechanism: "SCRAM-SHA-256".into(),
            attempted: Some("alice".into()),
            reason: "bad_credentials".into(),
        };
        let json = serde_json::to_string(&e).expect("serializable");
        assert_eq!(
            json,
            r#"{"event":"auth_failure","conn":{"id":7,"client":"10.0.0.5:53422","listener":"external","virtual_cluster":"eu"},"mechanism":"SCRAM-SHA-256","attempted":"alice","reason":"bad_credentials"}"#
        );
        let back: Event = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, e);
        // A single-cluster gateway's records stay as they were: no member for no virtual cluster,
        // and records written before virtual clusters existed still read.
        let mut single = conn();
        single.virtual_cluster = None;
        let json = serde_json::to_string(&single).expect("serializable");
        assert_eq!(
            json,
            r#"{"id":7,"client":"10.0.0.5:53422","listener":"external"}"#
        );
        assert_eq!(
            serde_json::from_str::<ConnInfo>(&json).expect("old form reads"),
            single
        );
        assert_eq!(back.kind(), "auth_failure");
        assert_eq!(back.principal(), Some("alice"));
    }

    #[test]
    fn authz_decision_is_flat_under_the_tag() {
        let e = Event::AuthzDecision(Box::new(AuthzDecision {
            conn: conn(),
            principal: "User:bob".into(),
            api_key: 19,
            api_name: "CreateTopics".into(),
            api_version: 7,
            correlation_id: 42,
            client_id: Some("admin-cli".into()),
            resource_type: "topic".into(),
            resource_name: "payments".into(),
            operation: "create".into(),
            decision: Decision::Deny,
            rule: Some(RuleRef {
                file: "policy.toml".into(),
                line: 12,
                text: "deny User:bob create topic:payments*".into(),
            }),
            policy_hash: "ab".repeat(32),
            more: None,
            repeated: None,
        }));
        let v: serde_json::Value = serde_json::to_value(&e).expect("serializable");
        assert_eq!(v["event"], "authz_decision");
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["rule"]["line"], 12);
        let back: Event = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, e);
        assert_eq!(back.resource().as_deref(), Some("topic:payments"));
        assert_eq!(back.outcome(), "deny");
    }

    #[test]
    fn shadow_decision_carries_both_sides() {
        let side = |decision, line: Option<u32>| PolicyOutcome {
            decision,
            rule: line.map(|line| RuleRef {
                file: "acl.policy".into(),
                line,
                text: "p, User:bob, Topic, orders, Read, *, allow".into(),
            }),
            policy_hash: "cd".repeat(32),
        };
        let e = Event::ShadowDecision(Box::new(ShadowDecision {
            conn: conn(),
            principal: "User:bob".into(),
            api_key: 1,
            api_name: "Fetch".into(),
            api_version: 17,
            correlation_id: 9,
            client_id: None,
            resource_type: "topic".into(),
            resource_name: "orders".into(),
            operation: "Read".into(),
            change: ShadowChange::Lose,
            enforced: side(Decision::Allow, Some(3)),
            shadow: side(Decision::Deny, None),
            more: None,
            repeated: Some(40),
        }));
        let v: serde_json::Value = serde_json::to_value(&e).expect("serializable");
        assert_eq!(v["event"], "shadow_decision");
        assert_eq!(v["change"], "lose");
        assert_eq!(v["enforced"]["decision"], "allow");
        assert_eq!(v["enforced"]["rule"]["line"], 3);
        assert_eq!(v["shadow"]["rule"], serde_json::Value::Null);
        assert_eq!(v["repeated"], 40);
        assert!(v.get("more").is_none());
        let back: Event = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, e);
        assert_eq!(back.kind(), "shadow_decision");
        assert_eq!(back.principal(), Some("User:bob"));
        assert_eq!(back.resource().as_deref(), Some("topic:orders"));
        assert_eq!(back.outcome(), "allow");
        assert_eq!(back.action(), "Fetch v17 Read: shadow would lose x40");
    }
}
