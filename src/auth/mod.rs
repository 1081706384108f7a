//! Client authentication at the gateway: SASL mechanisms, credentials and principal mapping.
//!
//! A SASL exchange is a small state machine fed with the client's SaslAuthenticate tokens. It never
//! talks to a broker: client SASL frames are answered here and never forwarded upstream.

pub mod authenticator;
pub mod credentials;
pub mod gssapi;
pub(crate) mod java_regex;
pub mod kerberos_name;
pub mod lockout;
pub mod oauth;
pub mod plain;
pub mod principal;
pub mod scram;

use std::fmt;
use std::time::SystemTime;

/// An authenticated identity, e.g. `User:alice`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub fn user(name: impl Into<String>) -> Self {
        Principal {
            kind: "User".into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// SASL mechanisms the gateway can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    ScramSha256,
    ScramSha512,
    OAuthBearer,
    Plain,
    /// Kerberos V5 through SASL GSSAPI (RFC 4752).
    Gssapi,
}

impl Mechanism {
    pub const ALL: [Mechanism; 5] = [
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::OAuthBearer,
        Mechanism::Plain,
        Mechanism::Gssapi,
    ];

    /// The IANA / Kafka name, e.g. `SCRAM-SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::Plain => "PLAIN",
            Mechanism::Gssapi => "GSSAPI",
        }
    }

    /// Mechanism names are matched exactly, as Kafka does.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an authentication failed, for logs, metrics and audit. Never sent to the client: on the wire
/// every failure is error 58 with one fixed message, so unknown users and wrong passwords look alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// The client's message could not be parsed.
    Malformed(String),
    UnknownUser,
    BadCredentials,
    /// SCRAM: the client-final nonce is not client nonce + server nonce.
    NonceMismatch,
    /// The authorization id names someone other than the authenticated user.
    AuthzidMismatch,
    /// OAUTHBEARER: the token failed validation (signature, expiry, issuer, audience, ...).
    InvalidToken(String),
    /// OAUTHBEARER: the token lacks a required scope.
    InsufficientScope,
    /// Too many recent failures for this principal or address.
    LockedOut,
    /// PLAIN offered on a plaintext listener without explicit permission.
    PlainOverPlaintext,
    /// GSSAPI: the Kerberos exchange failed. `category` names why for metrics and audit
    /// (`ticket_expired`, `replay`, `wrong_service`, `realm_not_allowed`, ...); `detail` is
    /// the GSS-API's own message, for the log.
    Kerberos {
        category: &'static str,
        detail: String,
    },
}

impl FailureReason {
    /// Short category label for metrics and audit.
    pub fn category(&self) -> &'static str {
        match self {
            FailureReason::Malformed(_) => "malformed",
            FailureReason::UnknownUser => "unknown_user",
            FailureReason::BadCredentials => "bad_credentials",
            FailureReason::NonceMismatch => "nonce_mismatch",
            FailureReason::AuthzidMismatch => "authzid_mismatch",
            FailureReason::InvalidToken(_) => "invalid_token",
            FailureReason::InsufficientScope => "insufficient_scope",
            FailureReason::LockedOut => "locked_out",
            FailureReason::PlainOverPlaintext => "plain_over_plaintext",
            FailureReason::Kerberos { category, .. } => category,
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::Malformed(m) => write!(f, "malformed SASL message: {m}"),
            FailureReason::InvalidToken(m) => write!(f, "invalid token: {m}"),
            FailureReason::Kerberos { category, detail } => write!(f, "{category}: {detail}"),
            other => f.write_str(other.category()),
        }
    }
}

/// What one step of a SASL exchange produced.
#[derive(Debug)]
pub enum Step {
    /// Send these bytes as the SaslAuthenticate response and expect another client message.
    Continue(Vec<u8>),
    /// Authenticated. `response` goes back in the final SaslAuthenticate response (e.g. SCRAM's
    /// server-final `v=...`); `expires` caps the session lifetime (e.g. a token's `exp`).
    Success {
        response: Vec<u8>,
        principal: Principal,
        expires: Option<SystemTime>,
    },
    /// Failed: the client gets error 58 with the fixed message. `attempted` is the name the client
    /// claimed, if it got that far (for audit; never a password or token).
    Failure {
        reason: FailureReason,
        attempted: Option<String>,
    },
}
