//! The gateway's own SASL login to a broker (PLAIN or SCRAM via rsasl), right after connecting.
//!
//! Clients' SASL frames are never forwarded: each upstream connection authenticates as the gateway's
//! service identity, and authorization happens at the gateway per client principal.
//!
//! [`SaslLogin`] is the exchange without I/O (a broker message in, the next message to send out),
//! so it can be tested and fuzzed with bytes alone; [`login`] carries its messages to the broker in
//! SaslHandshake and SaslAuthenticate requests.
//!
//! The broker's messages are untrusted input to rsasl, which panics on some malformed ones (rsasl
//! 2.3.1 slices the first two bytes of every SCRAM attribute unchecked, so `r=<nonce>,s` or an
//! empty server-final panics). Each rsasl step therefore runs under `catch_unwind`, and a panic
//! becomes [`LoginError::Malformed`]: the broker's fault, reported like any other refusal. (The
//! default panic hook still prints rsasl's panic to stderr.) The SCRAM iteration count is checked
//! against Kafka's range before rsasl runs PBKDF2 with it.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rsasl::callback::{Context, Request, SessionCallback, SessionData};
use rsasl::mechanisms::scram::properties::{Iterations, Salt, SaltedPassword};
use rsasl::prelude::{Mechname, SASLClient, SASLConfig, Session, SessionError, State};
use rsasl::property::{AuthId, Password};

use super::conn::{exchange, UpstreamConn, UpstreamError};
use crate::auth::credentials::ITERATIONS;
use crate::auth::Mechanism;
use crate::config::UpstreamSasl;

/// Broker messages one login may take: SCRAM needs two (server-first, server-final), PLAIN none.
/// The bound stops a broker from keeping the gateway in an endless exchange.
const MAX_BROKER_MESSAGES: usize = 3;

/// What the login sends next.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginStep {
    /// Send these bytes in a SaslAuthenticate request; the broker's answer goes to
    /// [`SaslLogin::next`].
    Send(Vec<u8>),
    /// Send these bytes; the login is over once the broker accepts them (PLAIN).
    SendLast(Vec<u8>),
    /// The broker proved it holds the credential (SCRAM's server signature verified): logged in.
    Done,
}

/// Why the login failed. `Config` and `Credentials` are about the gateway's own settings; every
/// other variant is about what the broker sent.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("SASL config: {0}")]
    Config(String),
    #[error("cannot start {mechanism} with the configured credentials: {reason}")]
    Credentials {
        mechanism: Mechanism,
        reason: String,
    },
    #[error("{mechanism} {message} from the broker refused: {reason}")]
    Refused {
        mechanism: Mechanism,
        message: &'static str,
        reason: String,
    },
    #[error(
        "broker sent a malformed {mechanism} {message} (the SASL library failed on it: {panic})"
    )]
    Malformed {
        mechanism: Mechanism,
        message: &'static str,
        panic: String,
    },
    /// Below Kafka's minimum, the proof the gateway sends is cheap to attack offline (Kafka's
    /// client refuses it too); above its maximum, which no Kafka broker sends, each login could
    /// cost a core an hour or more (`i=4294967295`).
    #[error(
        "broker's {mechanism} server-first message asks for {iterations} PBKDF2 iterations, \
         outside Kafka's {}..={}",
        ITERATIONS.start(),
        ITERATIONS.end()
    )]
    Iterations {
        mechanism: Mechanism,
        iterations: u32,
    },
    #[error("{mechanism} exchange did not finish after {MAX_BROKER_MESSAGES} broker messages")]
    TooLong { mechanism: Mechanism },
    #[error("{mechanism} exchange already ended, yet the broker sent another message")]
    Ended { mechanism: Mechanism },
}

/// Why one rsasl step failed.
enum StepError {
    /// rsasl returned an error.
    Refused(String),
    /// rsasl panicked (the message of the panic).
    Panicked(String),
}

impl StepError {
    fn describe(self) -> String {
        match self {
            StepError::Refused(reason) => reason,
            StepError::Panicked(panic) => format!("the SASL library panicked: {panic}"),
        }
    }
}

/// The client side of one SASL login, fed the broker's messages one at a time.
pub struct SaslLogin {
    mechanism: Mechanism,
    /// `None` once the exchange ended, successfully or not: rsasl's session must not be stepped
    /// again after it finished or failed.
    session: Option<Session>,
    /// Broker messages fed so far.
    received: usize,
}

impl SaslLogin {
    /// Starts the exchange the gateway runs against brokers (rsasl's client, configured with the
    /// service identity, with `sasl.mechanism` the only mechanism on offer). Returns the login and
    /// its first message.
    pub fn start(sasl: &UpstreamSasl) -> Result<(SaslLogin, LoginStep), LoginError> {
        let mechanism = sasl.mechanism;
        let config = SASLConfig::builder()
            .with_default_mechanisms()
            .with_callback(Credentials {
                mechanism,
                username: sasl.username.clone(),
                password: sasl.password.clone(),
            })
            .map_err(|e| LoginError::Config(e.to_string()))?;
        let mechname = Mechname::parse(mechanism.name().as_bytes())
            .map_err(|e| LoginError::Config(e.to_string()))?;
        let session = SASLClient::new(config)
            .start_suggested(&[mechname])
            .map_err(|e| LoginError::Credentials {
                mechanism,
                reason: e.to_string(),
            })?;
        let mut login = SaslLogin {
            mechanism,
            session: Some(session),
            received: 0,
        };
        let first = login.step(None).map_err(|e| LoginError::Credentials {
            mechanism,
            reason: e.describe(),
        })?;
        Ok((login, first))
    }

    /// Feeds the broker's answer to the last message sent; returns what to send next.
    pub fn next(&mut self, broker_message: &[u8]) -> Result<LoginStep, LoginError> {
        let mechanism = self.mechanism;
        if self.session.is_none() {
            return Err(LoginError::Ended { mechanism });
        }
        if self.received >= MAX_BROKER_MESSAGES {
            self.session = None;
            return Err(LoginError::TooLong { mechanism });
        }
        self.received += 1;
        let message = self.message_name();
        if self.received == 1
            && matches!(mechanism, Mechanism::ScramSha256 | Mechanism::ScramSha512)
        {
            if let Some(iterations) = iterations_outside_kafka_range(broker_message) {
                self.session = None;
                return Err(LoginError::Iterations {
                    mechanism,
                    iterations,
                });
            }
        }
        self.step(Some(broker_message)).map_err(|e| match e {
            StepError::Refused(reason) => LoginError::Refused {
                mechanism,
                message,
                reason,
            },
            StepError::Panicked(panic) => LoginError::Malformed {
                mechanism,
                message,
                panic,
            },
        })
    }

    /// What the broker message just received is called, for errors.
    fn message_name(&self) -> &'static str {
        match (self.mechanism, self.received) {
            (Mechanism::ScramSha256 | Mechanism::ScramSha512, 1) => "server-first message",
            (Mechanism::ScramSha256 | Mechanism::ScramSha512, 2) => "server-final message",
            _ => "message",
        }
    }

    /// One rsasl step, a panic caught. Ends the exchange when it finishes or fails.
    fn step(&mut self, input: Option<&[u8]>) -> Result<LoginStep, StepError> {
        let Some(session) = self.session.as_mut() else {
            return Err(StepError::Refused("the exchange already ended".into()));
        };
        let mut out = Cursor::new(Vec::new());
        // Unwind safety: after a panic the session is dropped below, never stepped again, and
        // `out` is discarded; nothing half-updated is observed.
        let state = catch_unwind(AssertUnwindSafe(|| session.step(input, &mut out)));
        let token = out.into_inner();
        match state {
            Ok(Ok(State::Running)) => Ok(LoginStep::Send(token)),
            Ok(Ok(State::Finished(_))) => {
                self.session = None;
                if token.is_empty() {
                    Ok(LoginStep::Done)
                } else {
                    Ok(LoginStep::SendLast(token))
                }
            }
            Ok(Err(e)) => {
                self.session = None;
                Err(StepError::Refused(e.to_string()))
            }
            Err(panic) => {
                self.session = None;
                Err(StepError::Panicked(panic_message(panic.as_ref())))
            }
        }
    }
}

/// The gateway's credentials for rsasl. For SCRAM it answers rsasl's request for the salted
/// password itself, from [`salted_passwords`] when this salt and count were seen before: the
/// broker keeps one salt per credential, so only the first login after a start (or a credential
/// change) runs PBKDF2, not every new upstream connection.
struct Credentials {
    mechanism: Mechanism,
    username: String,
    password: crate::config::Secret,
}

impl SessionCallback for Credentials {
    fn callback(
        &self,
        _session: &SessionData,
        context: &Context,
        request: &mut Request<'_>,
    ) -> Result<(), SessionError> {
        if request.is::<SaltedPassword>() {
            let hash = crate::auth::credentials::ScramHash::of(self.mechanism);
            let (Some(hash), Some(salt), Some(&iterations)) = (
                hash,
                context.get_ref::<Salt>(),
                context.get_ref::<Iterations>(),
            ) else {
                // Not answered: rsasl falls back to the plain password.
                return Ok(());
            };
            let Some(rounds) = std::num::NonZeroU32::new(iterations) else {
                return Ok(());
            };
            let salted = salted_passwords().get_or_derive(
                self.mechanism,
                &self.username,
                self.password.expose(),
                salt,
                iterations,
                || hash.salted_password(self.password.expose().as_bytes(), salt, rounds),
            );
            request.satisfy::<SaltedPassword>(&salted)?;
            return Ok(());
        }
        request
            .satisfy::<AuthId>(&self.username)?
            .satisfy::<Password>(self.password.expose().as_bytes())?;
        Ok(())
    }
}

/// Salted passwords of the gateway's own logins, keyed by a hash of everything they derive from
/// (mechanism, user, password, salt, iteration count), so a changed password or salt is a miss,
/// never a stale hit. A few entries: one per broker credential of the gateway.
pub(crate) struct SaltedPasswords {
    entries: std::sync::Mutex<std::collections::VecDeque<([u8; 32], Vec<u8>)>>,
    derivations: std::sync::atomic::AtomicU64,
}

const SALTED_CACHE_ENTRIES: usize = 8;

impl SaltedPasswords {
    pub(crate) fn new() -> SaltedPasswords {
        SaltedPasswords {
            entries: std::sync::Mutex::new(std::collections::VecDeque::new()),
            derivations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn get_or_derive(
        &self,
        mechanism: Mechanism,
        username: &str,
        password: &str,
        salt: &[u8],
        iterations: u32,
        derive: impl FnOnce() -> Vec<u8>,
    ) -> Vec<u8> {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [
            mechanism.name().as_bytes(),
            username.as_bytes(),
            password.as_bytes(),
            salt,
        ] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        ctx.update(&iterations.to_be_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        if let Some((_, v)) = self.lock().iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        // Derived outside the lock: the caller holds a hashing slot already.
        let salted = derive();
        self.derivations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut entries = self.lock();
        if !entries.iter().any(|(k, _)| *k == key) {
            if entries.len() >= SALTED_CACHE_ENTRIES {
                entries.pop_front();
            }
            entries.push_back((key, salted.clone()));
        }
        salted
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<([u8; 32], Vec<u8>)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// PBKDF2 runs so far.
    #[cfg(test)]
    pub(crate) fn derivations(&self) -> u64 {
        self.derivations.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The gateway-wide cache.
pub(crate) fn salted_passwords() -> &'static SaltedPasswords {
    static CACHE: std::sync::OnceLock<SaltedPasswords> = std::sync::OnceLock::new();
    CACHE.get_or_init(SaltedPasswords::new)
}

/// The iteration count of a SCRAM server-first message when it is a number outside Kafka's range.
/// Read where rsasl reads it (the third attribute, `i=`, parsed as a `u32`); anything else is
/// left to rsasl to refuse.
fn iterations_outside_kafka_range(server_first: &[u8]) -> Option<u32> {
    let value = server_first
        .split(|b| *b == b',')
        .nth(2)?
        .strip_prefix(b"i=")?;
    let iterations: u32 = std::str::from_utf8(value).ok()?.parse().ok()?;
    (!ITERATIONS.contains(&iterations)).then_some(iterations)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Carries a login's SaslHandshake and SaslAuthenticate requests to the broker and brings back
/// its answers: on a connection of its own at connect time ([`login`]), or in-band between a
/// client's requests when a long-lived connection re-authenticates (KIP-368).
pub(crate) trait SaslTransport {
    /// The broker's address, for errors.
    fn addr(&self) -> &str;
    async fn handshake(
        &mut self,
        req: &SaslHandshakeRequest,
    ) -> Result<SaslHandshakeResponse, UpstreamError>;
    async fn authenticate(
        &mut self,
        req: &SaslAuthenticateRequest,
    ) -> Result<SaslAuthenticateResponse, UpstreamError>;
}

/// Runs the whole login as the configured identity over `t`. Returns the broker's session
/// lifetime in ms (0 when the broker does not ask for re-authentication).
pub(crate) async fn authenticate<T: SaslTransport>(
    t: &mut T,
    sasl: &UpstreamSasl,
) -> Result<i64, UpstreamError> {
    let err = |t: &T, message: String| UpstreamError::Protocol {
        addr: t.addr().to_string(),
        phase: "SASL login",
        message,
    };
    let mech = sasl.mechanism.name();
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str(mech);
    let resp = t.handshake(&hs).await?;
    if resp.error_code != 0 {
        let offered: Vec<String> = resp.mechanisms.iter().map(|m| m.to_string()).collect();
        return Err(err(
            t,
            format!(
                "broker refused {mech} (error {}), offers {offered:?}",
                resp.error_code
            ),
        ));
    }

    if let Some(k) = &sasl.kerberos {
        return authenticate_gssapi(t, k).await;
    }
    let (mut client, mut step) = SaslLogin::start(sasl).map_err(|e| err(t, e.to_string()))?;
    let mut lifetime = 0;
    loop {
        let (token, last) = match step {
            LoginStep::Done => return Ok(lifetime),
            LoginStep::Send(token) => (token, false),
            LoginStep::SendLast(token) => (token, true),
        };
        let resp = send_token(t, token).await?;
        lifetime = resp.session_lifetime_ms;
        if last {
            return Ok(lifetime);
        }
        // The broker's server-first message may make the login run PBKDF2 (thousands of HMACs;
        // only the first time per salt, see `Credentials`): on the low-priority hashing threads,
        // a bounded number at a time, so a crowd of connections opening at once (a restart, a
        // reconnect storm) does not stall the runtime threads serving clients.
        let slot = crate::sync::hashing_slots().acquire().await;
        let message = resp.auth_bytes.clone();
        let (back, next) = crate::sync::on_hashing_thread(move || {
            let next = client.next(&message);
            (client, next)
        })
        .await
        .ok_or_else(|| err(t, "the login's key derivation failed".into()))?;
        drop(slot);
        client = back;
        step = next.map_err(|e| err(t, e.to_string()))?;
    }
}

/// One SaslAuthenticate round; a broker's error is the login's failure.
async fn send_token<T: SaslTransport>(
    t: &mut T,
    token: Vec<u8>,
) -> Result<SaslAuthenticateResponse, UpstreamError> {
    let mut req = SaslAuthenticateRequest::default();
    req.auth_bytes = Bytes::from(token);
    let resp = t.authenticate(&req).await?;
    if resp.error_code != 0 {
        let msg = resp
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default();
        return Err(UpstreamError::Protocol {
            addr: t.addr().to_string(),
            phase: "SASL login",
            message: format!(
                "broker rejected the configured credentials (error {}): {msg}",
                resp.error_code
            ),
        });
    }
    Ok(resp)
}

/// Longest a Kerberos library call may take: the first login of a process asks the KDC for a
/// ticket-granting ticket and a service ticket.
const KDC_DEADLINE: Duration = Duration::from_secs(15);

/// The GSSAPI login (RFC 4752 as Kafka runs it) as the gateway's own principal, to
/// `<service_name>/<broker host>`. MIT's calls block (the KDC), so they run on blocking threads
/// under [`KDC_DEADLINE`].
async fn authenticate_gssapi<T: SaslTransport>(
    t: &mut T,
    k: &crate::config::UpstreamKerberos,
) -> Result<i64, UpstreamError> {
    let err = |t: &T, message: String| UpstreamError::Protocol {
        addr: t.addr().to_string(),
        phase: "SASL login",
        message,
    };
    async fn blocking<R: Send + 'static>(
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, String> {
        match tokio::time::timeout(KDC_DEADLINE, tokio::task::spawn_blocking(f)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(format!("the Kerberos library failed: {e}")),
            Err(_) => Err(format!(
                "the Kerberos library (KDC) did not answer within {KDC_DEADLINE:?}"
            )),
        }
    }
    let host = broker_host(t.addr()).to_string();
    let (principal, service) = (k.principal.clone(), k.service_name.clone());
    let (mut login, first) =
        blocking(move || crate::auth::gssapi::GssLogin::start(&principal, &service, &host))
            .await
            .and_then(|r| r)
            .map_err(|e| err(t, e))?;
    let (mut token, mut last) = (first, false);
    for _ in 0..=MAX_BROKER_MESSAGES {
        let resp = send_token(t, std::mem::take(&mut token)).await?;
        if last {
            return Ok(resp.session_lifetime_ms);
        }
        let message = resp.auth_bytes.clone();
        let (back, next) = blocking(move || {
            let next = login.next(&message);
            (login, next)
        })
        .await
        .map_err(|e| err(t, e))?;
        login = back;
        match next.map_err(|e| err(t, e))? {
            crate::auth::gssapi::LoginStep::Send(next) => token = next,
            crate::auth::gssapi::LoginStep::SendLast(next) => (token, last) = (next, true),
        }
    }
    Err(err(
        t,
        format!("GSSAPI exchange did not finish after {MAX_BROKER_MESSAGES} broker messages"),
    ))
}

/// The host of `host:port` (`[v6]:port` too): the broker's name in its service principal.
fn broker_host(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A connection used by nothing else: one request, then its response.
struct Exclusive<'a> {
    conn: &'a mut UpstreamConn,
    timeout: Duration,
    max_response: usize,
}

impl SaslTransport for Exclusive<'_> {
    fn addr(&self) -> &str {
        &self.conn.addr
    }

    async fn handshake(
        &mut self,
        req: &SaslHandshakeRequest,
    ) -> Result<SaslHandshakeResponse, UpstreamError> {
        let (t, max) = (self.timeout, self.max_response);
        exchange(
            self.conn,
            ApiKey::SaslHandshake,
            1,
            req,
            "SaslHandshake",
            t,
            max,
        )
        .await
    }

    async fn authenticate(
        &mut self,
        req: &SaslAuthenticateRequest,
    ) -> Result<SaslAuthenticateResponse, UpstreamError> {
        let (t, max) = (self.timeout, self.max_response);
        exchange(
            self.conn,
            ApiKey::SaslAuthenticate,
            1,
            req,
            "SaslAuthenticate",
            t,
            max,
        )
        .await
    }
}

/// Authenticates `conn` as the configured identity. Returns the broker's session lifetime (0 when the
/// broker does not ask for re-authentication).
pub async fn login(
    conn: &mut UpstreamConn,
    sasl: &UpstreamSasl,
    timeout: Duration,
    max_response: usize,
) -> Result<i64, UpstreamError> {
    let addr = conn.addr.clone();
    let _slot = tokio::time::timeout(timeout, crate::sync::upstream_login_slots().acquire())
        .await
        .map_err(|_| UpstreamError::Protocol {
            addr,
            phase: "SASL login",
            message: format!(
                "{} upstream logins already running for {timeout:?}",
                crate::sync::UPSTREAM_LOGINS
            ),
        })?;
    let mut t = Exclusive {
        conn,
        timeout,
        max_response,
    };
    authenticate(&mut t, sasl).await
}

#[cfg(test)]
#[path = "sasl_tests.rs"]
mod tests;
