//! The authentication stage of a session: the SASL state machine of Kafka's SaslServerAuthenticator.
//!
//! Before a client has authenticated, only ApiVersions, SaslHandshake (v1) and SaslAuthenticate are
//! accepted; the first anything-else closes the connection, as Kafka does: without a response
//! before SaslHandshake, with the request's ILLEGAL_SASL_STATE error response after it. After
//! authentication the gate stands aside, except for re-authentication (KIP-368) and an expired
//! session, which is closed on its next request that is not a re-authentication.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, RequestKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::audit::{AuditCtx, ConnInfo, Event};
use crate::auth::authenticator::{Authenticator, Exchange};
use crate::auth::{FailureReason, Mechanism, Principal, Step};
use crate::config::ListenerConfig;
use crate::metrics::Metrics;
use crate::protocol::codec::{self, ProtocolError, RequestMeta};

/// Kafka's error codes used here.
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// Where a connection stands.
enum State {
    /// SASL listener, nothing done yet: ApiVersions or SaslHandshake expected.
    Start,
    /// Handshake accepted: SaslAuthenticate expected next.
    Handshaken {
        mechanism: Mechanism,
    },
    /// An exchange in progress.
    Exchanging {
        mechanism: Mechanism,
        exchange: Exchange,
    },
    Authenticated(Session),
}

/// An authenticated session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Shared with each request's authorizer without copying its strings.
    pub principal: std::sync::Arc<Principal>,
    /// `None` for identities that did not come from SASL (certificate, anonymous).
    pub mechanism: Option<Mechanism>,
    /// When the session ends (re-authentication lifetime, token expiry).
    pub expires: Option<Instant>,
}

/// What the session must do with a request after the gate has seen it.
pub enum Verdict {
    /// Not the gate's business: carry on (forward, or answer ApiVersions).
    Pass,
    /// The gate answered: send this frame to the client.
    Respond(Bytes),
    /// Send this frame, then close the connection.
    RespondAndClose(Bytes, String),
    /// Close without a response.
    Close(String),
}

pub struct AuthGate {
    state: State,
    /// The previous session while re-authenticating: the new one must be the same principal and
    /// mechanism.
    reauthenticating: Option<Session>,
    authenticator: Arc<Authenticator>,
    listener: Arc<ListenerConfig>,
    metrics: Arc<Metrics>,
    audit: Arc<AuditCtx>,
    conn: ConnInfo,
    ip: IpAddr,
    /// Authentication must be complete by then.
    deadline: Instant,
    /// A login (not a re-authentication) has just succeeded: the session checks its login rate.
    new_login: bool,
}

/// A client that disconnects after OAUTHBEARER's error challenge, instead of sending %x01, has
/// failed to log in all the same: it is recorded, counted and held against the lockout, or a
/// guesser could test tokens without ever being counted.
impl Drop for AuthGate {
    fn drop(&mut self) {
        let State::Exchanging {
            mechanism,
            exchange,
        } = &self.state
        else {
            return;
        };
        let Some((reason, attempted)) = exchange.abandoned_failure() else {
            return;
        };
        self.authenticator
            .record_failure(attempted.as_deref(), self.ip);
        let _ = self.audit.record(Event::AuthFailure {
            conn: self.conn.clone(),
            mechanism: mechanism.name().into(),
            attempted: attempted.clone(),
            reason: reason.category().into(),
        });
        self.failure_metric(mechanism.name(), reason.category());
        tracing::warn!(
            peer = %self.ip, %mechanism, attempted = attempted.as_deref().unwrap_or("-"),
            reason = %reason, "authentication failed: the client left after the error challenge"
        );
    }
}

impl AuthGate {
    /// A gate for a new connection. Without SASL on the listener the identity is known at once: from
    /// the client certificate when there is one, else `User:ANONYMOUS`.
    pub fn new(
        authenticator: Arc<Authenticator>,
        listener: Arc<ListenerConfig>,
        metrics: Arc<Metrics>,
        audit: Arc<AuditCtx>,
        conn: ConnInfo,
        ip: IpAddr,
        client_cert: Option<&[u8]>,
    ) -> Result<AuthGate, String> {
        let deadline = Instant::now() + authenticator.config.timeout;
        let state = if listener.requires_sasl() {
            State::Start
        } else {
            let principal = match client_cert {
                Some(der) => {
                    let p = authenticator.principal_for_certificate(der);
                    let result = if p.is_ok() { "success" } else { "failure" };
                    metrics.inc(
                        "authentications_total",
                        &[
                            ("mechanism", "mTLS"),
                            ("result", result),
                            ("reason", "certificate"),
                        ],
                    );
                    match p {
                        Ok(p) => {
                            audit
                                .record(Event::AuthSuccess {
                                    conn: conn.clone(),
                                    mechanism: "mTLS".into(),
                                    principal: p.to_string(),
                                })
                                .map_err(|e| format!("audit trail unavailable: {e}"))?;
                            p
                        }
                        Err(e) => {
                            let _ = audit.record(Event::AuthFailure {
                                conn: conn.clone(),
                                mechanism: "mTLS".into(),
                                attempted: None,
                                reason: "certificate_unmapped".into(),
                            });
                            return Err(format!("client certificate maps to no principal: {e}"));
                        }
                    }
                }
                None => Principal::user("ANONYMOUS"),
            };
            tracing::debug!(%ip, listener = %listener.name, principal = %principal, "connection identity");
            State::Authenticated(Session {
                principal: principal.into(),
                mechanism: None,
                expires: None,
            })
        };
        Ok(AuthGate {
            state,
            reauthenticating: None,
            authenticator,
            listener,
            metrics,
            audit,
            conn,
            ip,
            deadline,
            new_login: false,
        })
    }

    /// The principal of a SASL login (not a re-authentication) that succeeded since the last
    /// call, once.
    pub fn take_new_login(&mut self) -> Option<Arc<Principal>> {
        if !std::mem::take(&mut self.new_login) {
            return None;
        }
        self.session().map(|s| s.principal.clone())
    }

    pub fn session(&self) -> Option<&Session> {
        match &self.state {
            State::Authenticated(s) => Some(s),
            _ => None,
        }
    }

    /// Frames before authentication have their own, smaller limit.
    pub fn frame_limit(&self, authenticated: usize, unauthenticated: usize) -> usize {
        if self.session().is_some() || self.reauthenticating.is_some() {
            authenticated
        } else {
            unauthenticated
        }
    }

    /// How long the next read may take: bounded by the authentication deadline until authenticated.
    pub fn read_timeout(&self, idle: Duration) -> (Duration, bool) {
        if self.session().is_some() || self.reauthenticating.is_some() {
            return (idle, false);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < idle {
            (left, true)
        } else {
            (idle, false)
        }
    }

    /// Looks at one request before anything else happens to it.
    pub async fn check(
        &mut self,
        meta: RequestMeta,
        payload: &Bytes,
    ) -> Result<Verdict, ProtocolError> {
        let key = meta.api_key;
        let is = |k: ApiKey| key == k as i16;
        match &mut self.state {
            State::Authenticated(session) => {
                let expired = session.expires.is_some_and(|e| Instant::now() >= e);
                if is(ApiKey::SaslHandshake) {
                    if self.authenticator.config.max_session_lifetime.is_none()
                        || session.mechanism.is_none()
                    {
                        // Scenario 37: no re-authentication here; answer 34 and stay open.
                        return self.handshake_error(meta, payload, ILLEGAL_SASL_STATE);
                    }
                    self.reauthenticating = Some(session.clone());
                    return Box::pin(self.handshake(meta, payload)).await;
                }
                if expired {
                    return Ok(Verdict::Close(
                        "session lifetime expired without re-authentication".into(),
                    ));
                }
                if is(ApiKey::SaslAuthenticate) {
                    return self.authenticate_error(
                        meta,
                        payload,
                        ILLEGAL_SASL_STATE,
                        "already authenticated",
                    );
                }
                Ok(Verdict::Pass)
            }
            State::Start => {
                if is(ApiKey::ApiVersions) {
                    return Ok(Verdict::Pass);
                }
                if is(ApiKey::SaslHandshake) {
                    return Box::pin(self.handshake(meta, payload)).await;
                }
                Ok(Verdict::Close(format!(
                    "API key {key} before authentication (only ApiVersions and SaslHandshake are accepted)"
                )))
            }
            State::Handshaken { .. } | State::Exchanging { .. } => {
                if is(ApiKey::SaslAuthenticate) {
                    return Box::pin(self.authenticate(meta, payload)).await;
                }
                // Scenario 33: after SaslHandshake, anything but SaslAuthenticate is an illegal state.
                if is(ApiKey::SaslHandshake) {
                    return match self.handshake_error(meta, payload, ILLEGAL_SASL_STATE)? {
                        Verdict::Respond(f) => {
                            Ok(Verdict::RespondAndClose(f, "second SaslHandshake".into()))
                        }
                        other => Ok(other),
                    };
                }
                // Kafka answers such a request with its error response (ILLEGAL_SASL_STATE), then
                // closes; an API whose error response the gateway does not build is just closed.
                let why = format!(
                    "API key {key} during SASL authentication (only SaslAuthenticate is accepted)"
                );
                let answer = ApiKey::try_from(key)
                    .ok()
                    .and_then(|api| {
                        codec::decode_request(api, meta.api_version, payload.clone())
                            .ok()
                            .map(|r| (api, r))
                    })
                    .and_then(|(api, r)| {
                        crate::protocol::error_response::build(
                            api,
                            meta.api_version,
                            meta.correlation_id,
                            &r.body,
                            ILLEGAL_SASL_STATE,
                        )
                        .ok()
                        .flatten()
                    });
                Ok(match answer {
                    Some(frame) => Verdict::RespondAndClose(frame, why),
                    None => Verdict::Close(why),
                })
            }
        }
    }

    async fn handshake(
        &mut self,
        meta: RequestMeta,
        payload: &Bytes,
    ) -> Result<Verdict, ProtocolError> {
        if meta.api_version < 1 {
            // v0 is followed by raw SASL tokens outside Kafka framing; refuse rather than misparse.
            return Ok(Verdict::Close("SaslHandshake v0 is not supported".into()));
        }
        let request =
            codec::decode_request(ApiKey::SaslHandshake, meta.api_version, payload.clone())?;
        let RequestKind::SaslHandshake(req) = request.body else {
            unreachable!("decoded as SaslHandshake")
        };
        let enabled = &self.listener.sasl_mechanisms;
        let requested =
            Mechanism::from_name(req.mechanism.as_str()).filter(|m| enabled.contains(m));
        // Re-authentication must use the mechanism of the session it renews.
        let requested = match (&self.reauthenticating, requested) {
            (Some(prev), Some(m)) if prev.mechanism != Some(m) => None,
            (_, m) => m,
        };
        let mut resp = SaslHandshakeResponse::default();
        resp.mechanisms = enabled
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        match requested {
            Some(mechanism) => {
                resp.error_code = 0;
                self.state = State::Handshaken { mechanism };
                Ok(Verdict::Respond(self.encode(
                    ApiKey::SaslHandshake,
                    meta,
                    &resp,
                )?))
            }
            None => {
                // Scenario 34: 33 with the enabled list; Kafka then closes the connection.
                resp.error_code = UNSUPPORTED_SASL_MECHANISM;
                self.failure_metric(req.mechanism.as_str(), "unsupported_mechanism");
                let _ = self.audit.record(Event::AuthFailure {
                    conn: self.conn.clone(),
                    mechanism: req.mechanism.as_str().chars().take(64).collect(),
                    attempted: None,
                    reason: "unsupported_mechanism".into(),
                });
                let frame = self.encode(ApiKey::SaslHandshake, meta, &resp)?;
                Ok(Verdict::RespondAndClose(
                    frame,
                    format!("unsupported SASL mechanism {:?}", req.mechanism.as_str()),
                ))
            }
        }
    }

    async fn authenticate(
        &mut self,
        meta: RequestMeta,
        payload: &Bytes,
    ) -> Result<Verdict, ProtocolError> {
        let request =
            codec::decode_request(ApiKey::SaslAuthenticate, meta.api_version, payload.clone())?;
        let RequestKind::SaslAuthenticate(req) = request.body else {
            unreachable!("decoded as SaslAuthenticate")
        };
        let state = std::mem::replace(&mut self.state, State::Start);
        let (mechanism, mut exchange) = match state {
            State::Handshaken { mechanism } => match self.authenticator.start(mechanism, self.ip) {
                Some(x) => (mechanism, x),
                None => return Ok(Verdict::Close(format!("{mechanism} is not configured"))),
            },
            State::Exchanging {
                mechanism,
                exchange,
            } => (mechanism, exchange),
            _ => unreachable!("authenticate is only called while handshaken or exchanging"),
        };
        match exchange.step(&req.auth_bytes).await {
            Step::Continue(challenge) => {
                self.state = State::Exchanging {
                    mechanism,
                    exchange,
                };
                let mut resp = SaslAuthenticateResponse::default();
                resp.auth_bytes = Bytes::from(challenge);
                Ok(Verdict::Respond(self.encode(
                    ApiKey::SaslAuthenticate,
                    meta,
                    &resp,
                )?))
            }
            Step::Success {
                response,
                principal,
                expires,
            } => {
                let user = principal.name.clone();
                if self.authenticator.is_locked_out(Some(&user), self.ip) {
                    return self
                        .fail(meta, mechanism, FailureReason::LockedOut, Some(user))
                        .await;
                }
                if let Some(prev) = &self.reauthenticating {
                    if *prev.principal != principal {
                        let reason = FailureReason::Malformed(format!(
                            "re-authentication as {principal} on a session of {}",
                            prev.principal
                        ));
                        return self.fail(meta, mechanism, reason, Some(user)).await;
                    }
                }
                let audited = self.audit.record(Event::AuthSuccess {
                    conn: self.conn.clone(),
                    mechanism: mechanism.name().into(),
                    principal: principal.to_string(),
                });
                if audited.is_err() {
                    // Fail closed: a login the trail cannot record does not happen.
                    return Ok(Verdict::Close(
                        "audit trail unavailable: login refused".into(),
                    ));
                }
                self.authenticator.record_success(&user, self.ip);
                self.metrics.inc(
                    "authentications_total",
                    &[
                        ("mechanism", mechanism.name()),
                        ("result", "success"),
                        ("reason", "ok"),
                    ],
                );
                let lifetime = self.lifetime(expires);
                let mut resp = SaslAuthenticateResponse::default();
                resp.auth_bytes = Bytes::from(response);
                // Only announced when re-authentication is on: a client told of a lifetime re-authenticates.
                if self.authenticator.config.max_session_lifetime.is_some() {
                    resp.session_lifetime_ms =
                        lifetime.map_or(0, |d| d.as_millis().clamp(1, i64::MAX as u128) as i64);
                }
                tracing::info!(principal = %principal, %mechanism, reauth = self.reauthenticating.is_some(), "authenticated");
                self.new_login = self.reauthenticating.is_none();
                self.reauthenticating = None;
                self.state = State::Authenticated(Session {
                    principal: principal.into(),
                    mechanism: Some(mechanism),
                    expires: lifetime.map(|d| Instant::now() + d),
                });
                Ok(Verdict::Respond(self.encode(
                    ApiKey::SaslAuthenticate,
                    meta,
                    &resp,
                )?))
            }
            Step::Failure { reason, attempted } => {
                self.fail(meta, mechanism, reason, attempted).await
            }
        }
    }

    /// The session lifetime: the configured maximum, capped by the credential's own expiry.
    fn lifetime(&self, expires: Option<SystemTime>) -> Option<Duration> {
        let until_expiry = expires.map(|e| {
            e.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        match (self.authenticator.config.max_session_lifetime, until_expiry) {
            (Some(max), Some(e)) => Some(max.min(e)),
            (Some(max), None) => Some(max),
            (None, e) => e,
        }
    }

    /// Every failure looks the same to the client: error 58, one fixed message, after the same delay.
    async fn fail(
        &mut self,
        meta: RequestMeta,
        mechanism: Mechanism,
        reason: FailureReason,
        attempted: Option<String>,
    ) -> Result<Verdict, ProtocolError> {
        // A failure while the name or address is locked out is recorded as such, whatever else
        // was wrong, so that an auditor sees the lockout at work. The client's answer is the same.
        let locked = self
            .authenticator
            .is_locked_out(attempted.as_deref(), self.ip);
        let reason = match reason {
            FailureReason::LockedOut => FailureReason::LockedOut,
            other if locked => {
                tracing::debug!(peer = %self.ip, underlying = %other, "failure during a lockout");
                FailureReason::LockedOut
            }
            other => other,
        };
        self.authenticator
            .record_failure(attempted.as_deref(), self.ip);
        let written = self.audit.record_written(Event::AuthFailure {
            conn: self.conn.clone(),
            mechanism: mechanism.name().into(),
            attempted: attempted.clone(),
            reason: reason.category().into(),
        });
        self.failure_metric(mechanism.name(), reason.category());
        tracing::warn!(
            peer = %self.ip, %mechanism, attempted = attempted.as_deref().unwrap_or("-"),
            reason = %reason, reauth = self.reauthenticating.is_some(), "authentication failed"
        );
        tokio::time::sleep(self.authenticator.config.failure_delay).await;
        // Fail-closed means written: the refusal is answered once it is in the trail (the write
        // mostly overlaps the failure delay), within the login's own deadline; otherwise the
        // connection is closed unanswered.
        let in_trail = match written {
            Ok(w) => w.wait(self.authenticator.config.timeout).await.is_ok(),
            Err(_) => false,
        };
        if !in_trail {
            return Ok(Verdict::Close(
                "audit trail unavailable: the failed login could not be recorded".into(),
            ));
        }
        let mut resp = SaslAuthenticateResponse::default();
        resp.error_code = SASL_AUTHENTICATION_FAILED;
        resp.error_message = Some(StrBytes::from_string(format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
        )));
        let frame = self.encode(ApiKey::SaslAuthenticate, meta, &resp)?;
        self.state = State::Start;
        Ok(Verdict::RespondAndClose(
            frame,
            format!("authentication failed: {}", reason.category()),
        ))
    }

    fn failure_metric(&self, mechanism: &str, reason: &str) {
        let mechanism = Mechanism::from_name(mechanism).map_or("unknown", |m| m.name());
        self.metrics.inc(
            "authentications_total",
            &[
                ("mechanism", mechanism),
                ("result", "failure"),
                ("reason", reason),
            ],
        );
    }

    fn handshake_error(
        &self,
        meta: RequestMeta,
        payload: &Bytes,
        code: i16,
    ) -> Result<Verdict, ProtocolError> {
        codec::decode_request(ApiKey::SaslHandshake, meta.api_version, payload.clone())?;
        // Kafka's SaslHandshakeRequest.getErrorResponse: the error alone, no mechanism list.
        let mut resp = SaslHandshakeResponse::default();
        resp.error_code = code;
        Ok(Verdict::Respond(self.encode(
            ApiKey::SaslHandshake,
            meta,
            &resp,
        )?))
    }

    fn authenticate_error(
        &self,
        meta: RequestMeta,
        payload: &Bytes,
        code: i16,
        message: &str,
    ) -> Result<Verdict, ProtocolError> {
        codec::decode_request(ApiKey::SaslAuthenticate, meta.api_version, payload.clone())?;
        let mut resp = SaslAuthenticateResponse::default();
        resp.error_code = code;
        resp.error_message = Some(StrBytes::from_string(message.to_string()));
        Ok(Verdict::Respond(self.encode(
            ApiKey::SaslAuthenticate,
            meta,
            &resp,
        )?))
    }

    fn encode<T: kafka_protocol::protocol::Encodable>(
        &self,
        api: ApiKey,
        meta: RequestMeta,
        body: &T,
    ) -> Result<Bytes, ProtocolError> {
        codec::encode_response(
            api,
            meta.api_version,
            &codec::response_header(meta.correlation_id),
            body,
        )
    }
}
