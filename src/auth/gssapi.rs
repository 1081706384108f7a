//! SASL GSSAPI (Kerberos V5, RFC 4752) as Kafka speaks it: the gateway accepting clients' tickets with its keytab, and logging in to brokers with its own.
//!
//! Kafka's exchange, followed exactly: the client's AP-REQ; the server's AP-REP (mutual
//! authentication); an empty client message; the server's wrapped security-layer offer (only
//! "no security layer", receive buffer 65536, as Java's GssKrb5Server with Kafka's settings);
//! the client's wrapped choice (no layer, a buffer size, optionally an authorization id that must
//! name the authenticated principal); an empty final answer. The principal is then mapped with
//! Kafka's `sasl.kerberos.principal.to.local.rules`.
//!
//! MIT's library blocks (keytab and replay-cache files; the KDC for the initiator), so every call
//! runs on a blocking thread. It takes the keytab and krb5.conf from the environment
//! ([`configure_process`]), which is why a gateway has one acceptor keytab.

use std::sync::Arc;
use std::time::SystemTime;

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::{Error as GssError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL};

use super::kerberos_name::{KerberosName, ShortNamer};
use super::{FailureReason, Principal, Step};
use crate::config::{Config, KerberosConfig};

/// RFC 4752's security-layer bit for "none", the only layer Kafka uses (TLS protects the wire).
pub const NO_SECURITY_LAYER: u8 = 0x01;
/// The receive buffer a Kafka broker announces (Java's GssKrb5Server default).
const KAFKA_MAX_BUFFER: u32 = 65536;
/// Context tokens one exchange may take before it must be established: Kerberos needs one; the
/// bound keeps a client from holding the acceptor in an endless exchange.
const MAX_CONTEXT_TOKENS: usize = 3;

/// Points MIT's library at the configured krb5.conf and keytabs. MIT reads these from the
/// environment only, so this runs once, before the runtime's threads exist (`main`); a process
/// therefore has one acceptor keytab and one client keytab, which `Config::validate` enforces.
/// The initiator's tickets are cached in memory, never in the operator's own credential cache.
pub fn configure_process(config: &Config) {
    let upstream = config
        .clusters
        .iter()
        .find_map(|c| c.upstream.sasl.as_ref()?.kerberos.clone());
    let krb5_conf = config
        .auth
        .kerberos
        .as_ref()
        .and_then(|k| k.krb5_conf.clone())
        .or_else(|| upstream.as_ref().and_then(|k| k.krb5_conf.clone()));
    if let Some(conf) = krb5_conf {
        std::env::set_var("KRB5_CONFIG", conf);
    }
    if let Some(k) = &config.auth.kerberos {
        std::env::set_var("KRB5_KTNAME", format!("FILE:{}", k.keytab.display()));
    }
    if let Some(k) = &upstream {
        std::env::set_var("KRB5_CLIENT_KTNAME", format!("FILE:{}", k.keytab.display()));
        std::env::set_var("KRB5CCNAME", "MEMORY:kafka-gateway");
    }
}

fn krb5_only() -> Result<OidSet, GssError> {
    let mut set = OidSet::new();
    set.add(GSS_MECH_KRB5)?;
    Ok(set)
}

/// The gateway's acceptor: its service credential, the principal rules and the allowed realms.
pub struct KerberosAcceptor {
    cred: Cred,
    namer: ShortNamer,
    allowed_realms: Vec<String>,
}

impl std::fmt::Debug for KerberosAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosAcceptor")
            .field("allowed_realms", &self.allowed_realms)
            .finish_non_exhaustive()
    }
}

impl KerberosAcceptor {
    /// Acquires the service principal's credential from the keytab: a keytab without its key
    /// fails here, at start, not at the first client. The keytab is read again at every accept,
    /// so a rotated keytab takes effect without a restart.
    pub fn new(cfg: &KerberosConfig) -> Result<KerberosAcceptor, String> {
        let realm = cfg
            .service_principal
            .rsplit_once('@')
            .map(|(_, r)| r)
            .ok_or("service_principal has no realm")?;
        let namer = ShortNamer::new(realm, &cfg.principal_to_local_rules)
            .map_err(|e| format!("principal_to_local_rules: {}", e.join("; ")))?;
        let name = Name::new(
            cfg.service_principal.as_bytes(),
            Some(GSS_NT_KRB5_PRINCIPAL),
        )
        .map_err(|e| format!("service_principal {:?}: {e}", cfg.service_principal))?;
        let cred = krb5_only()
            .and_then(|mechs| Cred::acquire(Some(&name), None, CredUsage::Accept, Some(&mechs)))
            .map_err(|e| {
                format!(
                    "no key for {} in keytab {}: {e}",
                    cfg.service_principal,
                    cfg.keytab.display()
                )
            })?;
        Ok(KerberosAcceptor {
            cred,
            namer,
            allowed_realms: cfg.allowed_realms.clone(),
        })
    }

    pub fn exchange(self: &Arc<Self>) -> GssapiExchange {
        GssapiExchange {
            acceptor: self.clone(),
            state: State::Start,
        }
    }
}

/// Who authenticated, known once the context is established.
#[derive(Debug, Clone)]
struct Peer {
    /// `alice@EXAMPLE.COM`, as the ticket names it.
    full: String,
    short: String,
    expires: Option<SystemTime>,
}

enum State {
    Start,
    Accepting {
        ctx: ServerCtx,
        tokens: usize,
    },
    /// Established; the client's next (empty) message asks for the layer offer.
    Established {
        ctx: ServerCtx,
        peer: Peer,
    },
    /// The offer was sent; the client's next message is its wrapped choice.
    Offered {
        ctx: ServerCtx,
        peer: Peer,
    },
    Ended,
}

/// One client's GSSAPI exchange at the gateway.
pub struct GssapiExchange {
    acceptor: Arc<KerberosAcceptor>,
    state: State,
}

impl GssapiExchange {
    /// One step, on a blocking thread (MIT reads the keytab and writes the replay cache).
    pub async fn step(&mut self, input: &[u8]) -> Step {
        let mut state = std::mem::replace(&mut self.state, State::Ended);
        let acceptor = self.acceptor.clone();
        let input = input.to_vec();
        match tokio::task::spawn_blocking(move || {
            let step = advance(&acceptor, &mut state, &input);
            (state, step)
        })
        .await
        {
            Ok((state, step)) => {
                self.state = state;
                step
            }
            Err(e) => failure("gss_failure", format!("the GSS-API call failed: {e}"), None),
        }
    }

    /// The same step on the caller's thread (tests and fuzzing).
    pub fn step_blocking(&mut self, input: &[u8]) -> Step {
        let mut state = std::mem::replace(&mut self.state, State::Ended);
        let step = advance(&self.acceptor, &mut state, input);
        self.state = state;
        step
    }
}

fn failure(category: &'static str, detail: String, attempted: Option<String>) -> Step {
    Step::Failure {
        reason: FailureReason::Kerberos { category, detail },
        attempted,
    }
}

fn advance(acceptor: &KerberosAcceptor, state: &mut State, input: &[u8]) -> Step {
    match std::mem::replace(state, State::Ended) {
        State::Start => {
            let ctx = ServerCtx::new(Some(acceptor.cred.clone()));
            *state = State::Accepting { ctx, tokens: 0 };
            advance(acceptor, state, input)
        }
        State::Accepting { mut ctx, tokens } => {
            if input.is_empty() {
                // MIT calls an empty token "no credentials supplied": say what it is.
                return failure("bad_token", "empty GSS-API token".into(), None);
            }
            if tokens >= MAX_CONTEXT_TOKENS {
                return failure(
                    "malformed",
                    format!("no security context after {tokens} tokens"),
                    None,
                );
            }
            let out = match ctx.step(input, None) {
                Ok(out) => out,
                Err(e) => {
                    let (category, detail) = classify(&e);
                    return failure(category, detail, None);
                }
            };
            if !ctx.is_complete() {
                let Some(out) = out else {
                    return failure(
                        "malformed",
                        "context incomplete without a token".into(),
                        None,
                    );
                };
                *state = State::Accepting {
                    ctx,
                    tokens: tokens + 1,
                };
                return Step::Continue(out.to_vec());
            }
            let peer = match established_peer(acceptor, &ctx) {
                Ok(peer) => peer,
                Err(step) => return step,
            };
            match out {
                // Mutual authentication: the AP-REP first; the client answers with an empty message.
                Some(token) if !token.is_empty() => {
                    *state = State::Established { ctx, peer };
                    Step::Continue(token.to_vec())
                }
                _ => offer(ctx, peer, state),
            }
        }
        // Whatever the client sent (an empty message) only asks for the offer, as in Java.
        State::Established { ctx, peer } => offer(ctx, peer, state),
        State::Offered { mut ctx, peer } => {
            let attempted = Some(peer.short.clone());
            let plain = match ctx.unwrap(input) {
                Ok(p) => p,
                Err(e) => {
                    let (category, detail) = classify(&e);
                    return failure(category, format!("layer choice: {detail}"), attempted);
                }
            };
            let choice = match parse_layer_choice(&plain) {
                Ok(c) => c,
                Err(e) => {
                    return Step::Failure {
                        reason: FailureReason::Malformed(e),
                        attempted,
                    }
                }
            };
            // Kafka's SaslServerCallbackHandler authorizes every authorization id and keeps the
            // authenticated one: the id a client names grants nothing. kafka-python, for one,
            // sends the service's name there.
            if let Some(authzid) = choice.authzid.filter(|a| *a != peer.full) {
                tracing::debug!(principal = %peer.full, authzid = %authzid.escape_debug(), "GSSAPI authorization id ignored, as Kafka does");
            }
            Step::Success {
                response: Vec::new(),
                principal: Principal::user(peer.short),
                expires: peer.expires,
            }
        }
        State::Ended => failure("malformed", "the exchange already ended".into(), None),
    }
}

/// The established context's client, checked against the allowed realms and mapped by the rules.
fn established_peer(acceptor: &KerberosAcceptor, ctx: &ServerCtx) -> Result<Peer, Step> {
    let gss = |e: GssError| {
        let (category, detail) = classify(&e);
        failure(category, detail, None)
    };
    let flags = ctx.flags().map_err(gss)?;
    if flags.contains(CtxFlags::GSS_C_ANON_FLAG) {
        return Err(failure(
            "anonymous",
            "anonymous Kerberos tickets are not accepted".into(),
            None,
        ));
    }
    let name = ctx.source_name().map_err(gss)?;
    let shown = name.display_name().map_err(gss)?;
    let full = String::from_utf8_lossy(&shown).into_owned();
    let parsed = KerberosName::parse(&full)
        .map_err(|e| failure("malformed", format!("principal {full:?}: {e}"), None))?;
    let realm = parsed.realm.clone().unwrap_or_default();
    if !acceptor.allowed_realms.contains(&realm) {
        return Err(failure(
            "realm_not_allowed",
            format!("{full}: realm {realm:?} is not in allowed_realms"),
            Some(full.clone()),
        ));
    }
    let short = acceptor.namer.short_name(&parsed).map_err(|e| {
        failure(
            "no_principal_mapping",
            format!("{full}: {e}"),
            Some(full.clone()),
        )
    })?;
    // The context lives as long as the ticket: the session must not outlive it (KIP-368).
    let expires = ctx
        .lifetime()
        .ok()
        .filter(|d| !d.is_zero())
        .map(|d| SystemTime::now() + d);
    Ok(Peer {
        full,
        short,
        expires,
    })
}

fn offer(mut ctx: ServerCtx, peer: Peer, state: &mut State) -> Step {
    match ctx.wrap(false, &layer_offer()) {
        Ok(token) => {
            let token = token.to_vec();
            *state = State::Offered { ctx, peer };
            Step::Continue(token)
        }
        Err(e) => {
            let (category, detail) = classify(&e);
            failure(category, detail, Some(peer.short))
        }
    }
}

/// The server's offer before wrapping: no security layer, Kafka's receive buffer.
pub fn layer_offer() -> [u8; 4] {
    let b = KAFKA_MAX_BUFFER.to_be_bytes();
    [NO_SECURITY_LAYER, b[1], b[2], b[3]]
}

/// The client's security-layer choice (RFC 4752 section 3.1), unwrapped.
#[derive(Debug, PartialEq, Eq)]
pub struct LayerChoice {
    pub max_buffer: u32,
    pub authzid: Option<String>,
}

/// Parses the client's unwrapped choice: one layer byte that must be "no security layer", a
/// 3-byte buffer size, then an optional authorization id (read as Java does, invalid UTF-8
/// replaced; it is only logged).
pub fn parse_layer_choice(b: &[u8]) -> Result<LayerChoice, String> {
    let [layer, b1, b2, b3, rest @ ..] = b else {
        return Err(format!("layer choice of {} bytes (at least 4)", b.len()));
    };
    // Stricter than Java's GssKrb5Server, which accepts any choice sharing a bit with the offer
    // and would then switch on a layer it never offered.
    if *layer != NO_SECURITY_LAYER {
        return Err(format!(
            "client chose security layer {layer:#04x}; only none ({NO_SECURITY_LAYER:#04x}) was offered"
        ));
    }
    Ok(LayerChoice {
        max_buffer: u32::from_be_bytes([0, *b1, *b2, *b3]),
        authzid: (!rest.is_empty()).then(|| String::from_utf8_lossy(rest).into_owned()),
    })
}

/// A category for metrics and audit from MIT's status, and its text for the log. MIT's minor
/// codes come from com_err tables without exported constants here, so its (stable) messages
/// are matched.
fn classify(e: &GssError) -> (&'static str, String) {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let category = if lower.contains("replay") {
        "replay"
    } else if lower.contains("ticket expired")
        || e.major.contains(MajorFlags::GSS_S_CREDENTIALS_EXPIRED)
    {
        "ticket_expired"
    } else if lower.contains("clock skew") {
        "clock_skew"
    } else if lower.contains("wrong principal")
        || lower.contains("cannot decrypt ticket for")
        || lower.contains("not found in keytab")
        || lower.contains("key table entry not found")
        || lower.contains("cannot find key")
    {
        "wrong_service"
    } else if e.major.intersects(
        MajorFlags::GSS_S_DEFECTIVE_TOKEN | MajorFlags::GSS_S_BAD_MECH | MajorFlags::GSS_S_BAD_SIG,
    ) {
        "bad_token"
    } else {
        "gss_failure"
    };
    (category, text)
}

// ---------------------------------------------------------------------------------------------
// The gateway as a client of GSSAPI brokers.

/// What the gateway's login sends next.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginStep {
    Send(Vec<u8>),
    /// The last message: the broker's acceptance ends the login.
    SendLast(Vec<u8>),
}

enum LoginState {
    Establishing(ClientCtx),
    /// Established: the broker's next message is the wrapped layer offer.
    AwaitingOffer(ClientCtx),
    Ended,
}

/// The gateway's GSSAPI login to one broker. Every call may reach the KDC: run it off the
/// runtime's threads.
pub struct GssLogin {
    state: LoginState,
}

impl GssLogin {
    /// Starts a login as `principal` (its key from the client keytab) to `service`@`host`.
    pub fn start(
        principal: &str,
        service: &str,
        host: &str,
    ) -> Result<(GssLogin, Vec<u8>), String> {
        let me = Name::new(principal.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
            .map_err(|e| format!("principal {principal:?}: {e}"))?;
        let cred = krb5_only()
            .and_then(|mechs| Cred::acquire(Some(&me), None, CredUsage::Initiate, Some(&mechs)))
            .map_err(|e| format!("no credential for {principal}: {e}"))?;
        let target = Name::new(
            format!("{service}@{host}").as_bytes(),
            Some(GSS_NT_HOSTBASED_SERVICE),
        )
        .map_err(|e| format!("service {service}@{host}: {e}"))?;
        let mut ctx = ClientCtx::new(
            Some(cred),
            target,
            CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_SEQUENCE_FLAG,
            Some(GSS_MECH_KRB5),
        );
        let first = ctx
            .step(None, None)
            .map_err(|e| format!("no ticket for {service}/{host}: {e}"))?
            .map(|t| t.to_vec())
            .unwrap_or_default();
        let state = if ctx.is_complete() {
            LoginState::AwaitingOffer(ctx)
        } else {
            LoginState::Establishing(ctx)
        };
        Ok((GssLogin { state }, first))
    }

    /// Feeds the broker's message; returns what to send next.
    pub fn next(&mut self, broker_message: &[u8]) -> Result<LoginStep, String> {
        match std::mem::replace(&mut self.state, LoginState::Ended) {
            LoginState::Establishing(mut ctx) => {
                let out = ctx
                    .step(Some(broker_message), None)
                    .map_err(|e| format!("the broker's Kerberos reply failed: {e}"))?;
                if ctx.is_complete() {
                    self.state = LoginState::AwaitingOffer(ctx);
                } else {
                    self.state = LoginState::Establishing(ctx);
                }
                // Established: an empty message asks for the offer, as Java's client sends.
                Ok(LoginStep::Send(out.map(|t| t.to_vec()).unwrap_or_default()))
            }
            LoginState::AwaitingOffer(mut ctx) => {
                let offer = ctx
                    .unwrap(broker_message)
                    .map_err(|e| format!("the broker's layer offer failed: {e}"))?;
                match offer.first() {
                    Some(layers) if offer.len() == 4 && layers & NO_SECURITY_LAYER != 0 => {}
                    _ => {
                        return Err(format!(
                            "the broker's layer offer {:?} does not allow no security layer",
                            &offer[..offer.len().min(8)]
                        ))
                    }
                }
                // No layer, no buffer, no authorization id (the broker then uses the principal).
                let choice = ctx
                    .wrap(false, &[NO_SECURITY_LAYER, 0, 0, 0])
                    .map_err(|e| format!("wrapping the layer choice failed: {e}"))?;
                Ok(LoginStep::SendLast(choice.to_vec()))
            }
            LoginState::Ended => Err("the exchange already ended".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_is_what_a_kafka_broker_sends() {
        assert_eq!(layer_offer(), [0x01, 0x01, 0x00, 0x00]);
    }

    #[test]
    fn layer_choices_are_parsed_strictly() {
        assert_eq!(
            parse_layer_choice(&[1, 0, 0, 0]),
            Ok(LayerChoice {
                max_buffer: 0,
                authzid: None
            })
        );
        assert_eq!(
            parse_layer_choice(b"\x01\x01\x00\x00alice@EXAMPLE.COM"),
            Ok(LayerChoice {
                max_buffer: 65536,
                authzid: Some("alice@EXAMPLE.COM".into())
            })
        );
        assert!(parse_layer_choice(&[1, 0, 0]).is_err());
        assert!(parse_layer_choice(&[]).is_err());
        // Integrity or confidentiality were not offered.
        assert!(parse_layer_choice(&[2, 0, 0, 0]).is_err());
        assert!(parse_layer_choice(&[3, 0, 0, 0]).is_err());
        // As Java's `new String(bytes, UTF_8)`: never refused for its bytes.
        assert_eq!(
            parse_layer_choice(&[1, 0, 0, 0, 0xff, b'a']).map(|c| c.authzid),
            Ok(Some("\u{fffd}a".into()))
        );
    }
}
