//! One client connection: frame -> decode -> (authenticate -> authorize -> audit) -> forward, and back.
//!
//! Two halves run side by side. The request half reads client frames, answers what the gateway owns
//! (ApiVersions) and forwards the rest to the upstream broker. The response half writes answers back in
//! request order: every request that expects an answer leaves a [`Pending`] entry in a bounded queue,
//! and the response half takes them in order, reading the upstream's response for forwarded requests.
//! In-flight request bytes are bounded by a semaphore, so a client that never reads its responses
//! stops its own requests from being read instead of growing the gateway's memory.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

pub mod auth;
pub mod quota;
mod shadow;

use crate::audit::repeats::{DenialKind, DenialRepeats, Verdict};
use crate::audit::{AuditCtx, AuthzDecision, ConnInfo, Decision, Event, RuleRef};
use crate::auth::authenticator::Authenticator;
use crate::config::{Config, ListenerConfig};
use crate::metrics::Metrics;
use crate::net::framed::{FrameReader, ReadError};
use crate::policy::cache::PolicyHandle;
use crate::policy::engine::SessionAuthz;
use crate::policy::mapping::{self, Merge, Plan};
use crate::protocol::api::{self, ResponseHandling};
use crate::protocol::codec::{self, peek_request, peek_response_correlation, ProtocolError};
use crate::protocol::frame::{Parts, LEN_PREFIX};
use crate::protocol::rewrite::rewrite_brokers;
use crate::quota::QuotaKind;
use crate::upstream::conn::{BoxRead, BoxWrite};
use crate::upstream::{Cluster, Target, UpstreamError};

/// Bound on remembered acks=0 correlation ids between two answered requests.
const MAX_UNANSWERED: usize = 1024;

/// Everything a session needs from the gateway around it.
#[derive(Clone)]
pub struct SessionCtx {
    pub config: Arc<Config>,
    pub listener: Arc<ListenerConfig>,
    /// The listener's name, shared: the session registries key sessions by it per request.
    pub listener_name: Arc<str>,
    /// The virtual cluster's position in the config, when the config declares virtual clusters:
    /// its name goes into audit records, the position indexes the per-cluster counters.
    pub virtual_cluster_index: Option<u16>,
    /// The tenant namespace the virtual cluster maps its names into, if any.
    pub tenant: Option<Arc<crate::protocol::tenant::TenantMap>>,
    pub cluster: Arc<Cluster>,
    pub metrics: Arc<Metrics>,
    pub authenticator: Arc<Authenticator>,
    /// `None` only with `authorization.allow_all = true`.
    pub policy: Option<Arc<PolicyHandle>>,
    pub audit: Arc<AuditCtx>,
    /// This connection in audit records (assigned when the connection is accepted).
    pub conn: ConnInfo,
    /// Counters for the connection-close record.
    pub stats: Arc<SessionStats>,
    /// Repeated identical denials and shadow differences on this connection, summarized rather
    /// than recorded each time.
    pub repeats: Arc<Repeats>,
    pub target: Target,
    pub peer: SocketAddr,
    pub shutdown: watch::Receiver<bool>,
}

impl SessionCtx {
    /// The virtual cluster's name in audit records and metric labels (declared clusters only).
    pub fn virtual_cluster(&self) -> Option<&str> {
        let i = usize::from(self.virtual_cluster_index?);
        self.config.clusters.get(i).and_then(|c| c.label())
    }
}

/// Per connection: what [`DenialRepeats`] summarizes. One allocation for both, so that a
/// connection's task stays as small as before the shadow policy.
#[derive(Debug, Default)]
pub struct Repeats {
    pub denials: std::sync::Mutex<DenialRepeats<AuthzDecision>>,
    pub shadow:
        std::sync::Mutex<crate::audit::repeats::ShadowRepeats<crate::audit::event::ShadowDecision>>,
}

/// `record`'s verdict from one of a connection's repeat tables. The lock guards counters only: a
/// poisoned one still holds usable numbers.
pub(crate) fn repeat_verdict<T, K: Eq + std::hash::Hash + Clone>(
    table: &std::sync::Mutex<DenialRepeats<T, K>>,
    kind: &K,
    record: T,
) -> Verdict {
    table
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .on_denial(kind, Instant::now(), record)
}

/// What the connection-close audit record reports.
#[derive(Debug, Default)]
pub struct SessionStats {
    pub bytes_in: std::sync::atomic::AtomicU64,
    pub bytes_out: std::sync::atomic::AtomicU64,
    /// The authenticated principal, once there is one.
    pub principal: std::sync::OnceLock<String>,
    /// Until when (ms on the quota sensors' clock; 0: never) a quota throttle mutes the connection.
    pub quota_muted_until: std::sync::atomic::AtomicU64,
}

/// Why a session ended, and which side caused it.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("client: {0}")]
    ClientRead(#[from] ReadError),
    #[error("client: idle for {0:?}")]
    Idle(Duration),
    #[error("client: not authenticated within {0:?}")]
    AuthTimeout(Duration),
    #[error("client: {0}")]
    Auth(String),
    #[error("client: {0}")]
    Denied(String),
    #[error("client: over its {0} quota: closed after the throttle time")]
    Quota(QuotaKind),
    #[error("client: {0}")]
    ClientProtocol(#[from] ProtocolError),
    #[error("client: API key {api_key} v{version} is not supported by the gateway")]
    Unsupported { api_key: i16, version: i16 },
    #[error("client: write failed: {0}")]
    ClientWrite(std::io::Error),
    #[error("client: not reading responses for {0:?}")]
    ClientWriteTimeout(Duration),
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    #[error("upstream: malformed response to {api:?} v{version}: {message}")]
    UpstreamProtocol {
        api: ApiKey,
        version: i16,
        message: String,
    },
    #[error("upstream: no response to {api:?} (correlation {correlation_id}) within {after:?}")]
    UpstreamTimeout {
        api: ApiKey,
        correlation_id: i32,
        after: Duration,
    },
    #[error("upstream: closed the connection with {0} response(s) outstanding")]
    UpstreamClosed(usize),
}

impl SessionError {
    /// Label for logs and metrics: which side ended the session.
    pub fn side(&self) -> &'static str {
        match self {
            SessionError::ClientRead(_)
            | SessionError::Idle(_)
            | SessionError::AuthTimeout(_)
            | SessionError::Auth(_)
            | SessionError::Denied(_)
            | SessionError::Quota(_)
            | SessionError::ClientProtocol(_)
            | SessionError::Unsupported { .. }
            | SessionError::ClientWrite(_)
            | SessionError::ClientWriteTimeout(_) => "client",
            _ => "upstream",
        }
    }
}

/// One entry of the in-order response queue.
enum Pending {
    /// A response the gateway made itself.
    Local { frame: Bytes },
    /// The upstream connection's read half, handed over when the first request is forwarded.
    Attach(FrameReader<BoxRead>),
    /// A forwarded acks=0 Produce: Kafka sends no response, but some brokers (tansu 0.6) do. Its
    /// correlation id lets the response half recognise and drop such an answer instead of failing.
    NoResponse { correlation_id: i32 },
    /// A request the gateway itself sent on the client's upstream connection (re-authentication):
    /// its response goes back to the request half, never to the client.
    Internal {
        expected: Expected,
        reply: oneshot::Sender<Bytes>,
    },
    /// A forwarded request whose response comes from the upstream.
    Upstream {
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        handling: ResponseHandling,
        /// Completes or filters the response for the parts authorization held back; the checks it
        /// makes are audited as the request's.
        /// Boxed: present only when the request was not forwarded whole (which allocates anyway),
        /// it would otherwise make every queue slot, allocated per connection, several times larger.
        merge: Option<Box<(Merge, SessionAuthz, RequestRef)>>,
        sent: Instant,
        deadline: tokio::time::Instant,
        /// A Fetch asking for a new session: who builds it, to be registered with the id the
        /// broker answers with.
        learn_fetch_session: Option<Box<(crate::upstream::fetch_sessions::Broker, FetchOwner)>>,
        /// What the response owes the client's quotas, when some apply.
        quota: Option<Box<quota::Charge>>,
        _permit: OwnedSemaphorePermit,
    },
}

/// Drives one client connection until it ends. Returns the reason it ended (Ok for a clean close).
pub async fn run<R, W>(
    reader: R,
    writer: W,
    ctx: SessionCtx,
    client_cert: Option<Vec<u8>>,
) -> Result<(), SessionError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let gate = auth::AuthGate::new(
        ctx.authenticator.clone(),
        ctx.listener.clone(),
        ctx.metrics.clone(),
        ctx.audit.clone(),
        ctx.conn.clone(),
        ctx.peer.ip(),
        client_cert.as_deref(),
    )
    .map_err(SessionError::Auth)?;
    // Mapped to the principal: the certificate's copy is not kept for the connection's lifetime.
    drop(client_cert);
    let limits = &ctx.config.limits;
    let (tx, rx) = mpsc::channel::<Pending>(limits.max_inflight_requests);
    let inflight = Arc::new(Semaphore::new(limits.max_inflight_bytes));
    let responder = tokio::spawn(respond(writer, rx, ctx.clone()));
    let requests = handle_requests(FrameReader::new(reader), tx, inflight, gate, &ctx).await;
    // The response half finishes what is in flight, then ends once the queue is closed.
    let responses = match responder.await {
        Ok(r) => r,
        Err(join) => {
            tracing::error!(error = %join, "response task failed");
            Ok(())
        }
    };
    // Identical denials counted since their last record: one summary each, so the trail accounts
    // for every one. Best effort: the connection is over and nothing waits on these.
    let pending = ctx
        .repeats
        .denials
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .drain();
    for (mut r, n) in pending {
        r.repeated = Some(n);
        let _ = ctx.audit.record(Event::AuthzDecision(Box::new(r)));
    }
    shadow::drain(&ctx);
    requests.and(responses)
}

async fn handle_requests<R: AsyncRead + Unpin>(
    mut client: FrameReader<R>,
    tx: mpsc::Sender<Pending>,
    inflight: Arc<Semaphore>,
    mut gate: auth::AuthGate,
    ctx: &SessionCtx,
) -> Result<(), SessionError> {
    let cfg = &ctx.config;
    let mut shutdown = ctx.shutdown.clone();
    let mut upstream: Option<BufWriter<BoxWrite>> = None;
    let mut upstream_addr = String::new();
    // When the gateway's SASL session on that connection must be renewed (KIP-368).
    let mut reauth_at: Option<tokio::time::Instant> = None;
    // A listener without SASL knows the identity from the start: this is the connection's login.
    let hold = gate.session().and_then(|s| {
        let hold = quota::on_login(ctx, &s.principal)?;
        ctx.stats.principal.get_or_init(|| s.principal.to_string());
        Some(hold)
    });
    if let Some(hold) = hold {
        Box::pin(quota::hold_refused(ctx, hold)).await;
        return Err(SessionError::Quota(QuotaKind::LoginRate));
    }
    loop {
        let max_frame = gate.frame_limit(
            cfg.limits.max_frame_bytes,
            cfg.limits.max_frame_bytes_unauthenticated,
        );
        let (read_timeout, auth_deadline) = gate.read_timeout(cfg.timeouts.idle);
        // The one place forwarded requests are flushed: before waiting for the client's next
        // request, unless that is already buffered (a pipelined burst goes upstream in one write).
        // Whatever the last request was (forwarded or answered here), nothing forwarded is left
        // in the buffer while the client waits for its answer.
        if let Some(up) = upstream.as_mut() {
            if !up.buffer().is_empty() && !client.has_buffered_frame(max_frame) {
                write_upstream(up, &[], true, cfg, &upstream_addr).await?;
            }
        }
        let frame = tokio::select! {
            r = tokio::time::timeout(read_timeout, client.next_request(max_frame, |api| {
                // Before authentication the connection's (smaller) limit is the only one.
                max_frame.min(cfg.limits.request_limit(api))
            })) => match r {
                Err(_) if auth_deadline => return Err(SessionError::AuthTimeout(cfg.auth.timeout)),
                Err(_) => return Err(SessionError::Idle(cfg.timeouts.idle)),
                Ok(Err(ReadError::Frame(e))) => {
                    ctx.metrics.frame_rejected(e.reason());
                    return Err(ReadError::Frame(e).into());
                }
                Ok(r) => r?,
            },
            // Shutdown: stop taking requests; the response half still answers those in flight.
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
            // The response half ended (client gone or upstream failed): nothing more can be answered.
            _ = tx.closed() => return Ok(()),
        };
        let Some(frame) = frame else {
            return Ok(()); // client closed between requests
        };
        let read_at = Instant::now();
        let payload = frame.slice(LEN_PREFIX..);
        let meta =
            peek_request(&payload).inspect_err(|_| ctx.metrics.frame_rejected("malformed"))?;
        ctx.metrics.request(meta.api_key, frame.len());
        if let Some(vc) = ctx.virtual_cluster_index {
            ctx.metrics.vc_request(vc, meta.api_key, frame.len());
        }
        ctx.stats
            .bytes_in
            .fetch_add(frame.len() as u64, std::sync::atomic::Ordering::Relaxed);

        // Stage 1: authentication. Nothing passes this point before the client has authenticated.
        match gate.check(meta, &payload).await? {
            auth::Verdict::Pass => {
                if let Some(session) = gate.session() {
                    ctx.stats
                        .principal
                        .get_or_init(|| session.principal.to_string());
                }
            }
            auth::Verdict::Respond(response) => {
                if let Some(principal) = gate.take_new_login() {
                    if let Some(hold) = quota::on_login(ctx, &principal) {
                        ctx.stats.principal.get_or_init(|| principal.to_string());
                        // Unanswered: the client retries the connection, as after Kafka's
                        // connection rate, and the refused login has not counted.
                        Box::pin(quota::hold_refused(ctx, hold)).await;
                        return Err(SessionError::Quota(QuotaKind::LoginRate));
                    }
                }
                if tx.send(Pending::Local { frame: response }).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            auth::Verdict::RespondAndClose(response, why) => {
                // The response half delivers this before it sees the queue close.
                let _ = tx.send(Pending::Local { frame: response }).await;
                return Err(SessionError::Auth(why));
            }
            auth::Verdict::Close(why) => return Err(SessionError::Auth(why)),
        }
        // A throttled client's requests wait out its throttle (KIP-219: the broker mutes it).
        quota::wait_unmuted(ctx).await;

        if meta.api_key == ApiKey::ApiVersions as i16 {
            let response = api_versions(meta, payload, ctx).await?;
            if tx.send(Pending::Local { frame: response }).await.is_err() {
                return Ok(());
            }
            continue;
        }

        let Ok(api) = ApiKey::try_from(meta.api_key) else {
            ctx.metrics.frame_rejected("unsupported_api");
            return Err(SessionError::Unsupported {
                api_key: meta.api_key,
                version: meta.api_version,
            });
        };
        // Client SASL frames are answered by the gate above and never travel upstream.
        if matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) {
            return Err(SessionError::Unsupported {
                api_key: meta.api_key,
                version: meta.api_version,
            });
        }
        let table = ctx.cluster.versions().await?;
        if !table.allows(meta.api_key, meta.api_version) {
            ctx.metrics.frame_rejected("unsupported_version");
            return Err(SessionError::Unsupported {
                api_key: meta.api_key,
                version: meta.api_version,
            });
        }
        let budget = codec::decoded_budget(payload.len(), cfg.limits.max_decoded_bytes as u64);
        let request = codec::read_request(api, meta.api_version, payload, budget)
            .inspect_err(|e| ctx.metrics.frame_rejected(e.reason()))?;
        let expects_response = request.expects_response();
        let mut quota_charge = gate.session().and_then(|s| {
            let client_id = request.header().client_id.as_deref();
            quota::on_request(ctx, &s.principal, client_id, api, frame.len(), read_at)
        });
        let fetch_cap = match (&quota_charge, api) {
            (Some(_), ApiKey::Fetch) => gate.session().and_then(|s| {
                quota::fetch_cap(ctx, &s.principal, request.header().client_id.as_deref())
            }),
            _ => None,
        };
        let wait = match &request {
            codec::Request::Fetch { wire, .. } => wait_of(i64::from(wire.max_wait_ms)),
            codec::Request::Produce { wire, .. } => wait_of(i64::from(wire.timeout_ms)),
            _ => request.body().map_or(Duration::ZERO, requested_wait),
        };

        // Stage 2: authorization. What the policy allows is forwarded; the rest is answered here.
        let mut learn_fetch_session: Option<FetchOwner> = None;
        let (mut forward, merge) = match &ctx.policy {
            // Without a policy the ACL APIs are still answered here, as a broker without an
            // authorizer answers them: the brokers' ACLs are not what the gateway enforces, and
            // forwarding would let any client change them with the gateway's identity.
            None if api::ANSWERED.contains(&api) => {
                let ids = &topic_ids(ctx);
                let authz = &mapping::NoAuthorizer;
                match mapping::plan_request(api, meta.api_version, &request, authz, ids)? {
                    Some(Plan::Respond(response)) => {
                        if tx.send(Pending::Local { frame: response }).await.is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                    _ => {
                        return Err(SessionError::Unsupported {
                            api_key: meta.api_key,
                            version: meta.api_version,
                        })
                    }
                }
            }
            None => (frame, None),
            Some(policy) => {
                let Some(session) = gate.session() else {
                    unreachable!("the gate passes requests only for an authenticated session")
                };
                // Allowed decisions are kept only if the audit level records them for this API.
                let keep_allowed = ctx.audit.level.records(Decision::Allow, meta.api_key);
                let authz = policy
                    .session(session.principal.clone(), ctx.peer.ip())
                    .keeping_allowed(keep_allowed);
                // Who is asking, as the fetch- and share-session registries know a session's
                // builder (shared values only: building one allocates nothing).
                let owner = || FetchOwner {
                    principal: session.principal.clone(),
                    host: ctx.peer.ip(),
                    listener: ctx.listener_name.clone(),
                    policy_version: authz.snapshot().engine().version_shared().clone(),
                };
                if let codec::Request::Fetch { wire: f, .. } = &request {
                    // A fetch session on the broker is keyed by its id alone and every upstream
                    // connection is the gateway's: only its builder, under the policy in force,
                    // may continue it (the partitions it does not name were authorized when they
                    // joined it). Otherwise FETCH_SESSION_ID_NOT_FOUND: the client starts over
                    // with a full fetch, which is authorized in full.
                    let owner = owner();
                    if f.session_id != 0 {
                        let checked = ctx.cluster.fetch_sessions.check(
                            &(fetch_broker(ctx.target), f.session_id),
                            &owner,
                            Instant::now(),
                        );
                        if let Err(refusal) = checked {
                            ctx.metrics.inc(
                                "fetch_sessions_refused_total",
                                &[("reason", refusal.as_str())],
                            );
                            tracing::info!(
                                principal = %owner.principal, peer = %ctx.peer,
                                session_id = f.session_id, reason = refusal.as_str(),
                                "fetch session refused: the client restarts with a full fetch"
                            );
                            let response = fetch_session_not_found(meta)?;
                            if tx.send(Pending::Local { frame: response }).await.is_err() {
                                return Ok(());
                            }
                            continue;
                        }
                    }
                    // Epoch 0 asks the broker for a new session: learn its id from the answer.
                    if f.session_epoch == 0 {
                        learn_fetch_session = Some(owner);
                    }
                }
                let (named_ids, named_topics) = (
                    mapping::topic_ids_named(&request),
                    mapping::topic_names_named(&request),
                );
                if !named_ids.is_empty() || !named_topics.is_empty() {
                    // The cluster knows the broker's names: a tenant's gain its prefix.
                    let named_topics = match &ctx.tenant {
                        None => named_topics,
                        Some(t) => named_topics.iter().map(|n| t.broker_topic(n)).collect(),
                    };
                    Box::pin(ctx.cluster.resolve_topics(&named_ids, &named_topics)).await;
                }
                // Metadata v0-3 naming a topic the gateway does not know: whether it exists
                // decides the answer, so the cluster is asked first (found by the differential
                // test: a topic created moments before was refused as missing).
                if mapping::asks_for_every_topic(&request)
                    || mapping::names_unknown_auto_created(&request, &topic_ids(ctx))
                {
                    Box::pin(ctx.cluster.refresh_listing()).await;
                }
                let ids = &topic_ids(ctx);
                let plan = match plan_share(&request, ctx, owner, &authz, ids)? {
                    Some(plan) => Some(plan),
                    None => mapping::plan_request(api, meta.api_version, &request, &authz, ids)?,
                };
                let request_ref = RequestRef::new(meta, request.header());
                // What is forwarded is in the plan from here on (or is `frame`): the decoded or
                // read request is let go before the audit wait and the upstream write.
                drop(request);
                // The client's frame is kept only if it is what goes upstream: a partial plan
                // forwards its own bytes and an answer needs none, so it is let go before the
                // audit wait.
                let (plan, frame) = match plan {
                    Some(Plan::Forward | Plan::ForwardThenMerge(_)) => (plan, Some(frame)),
                    other => {
                        drop(frame);
                        (other, None)
                    }
                };
                audit_decisions(&authz, &request_ref, ctx).await?;
                match (plan, frame) {
                    (None, _) => {
                        // Fail closed: an API without a request-to-check mapping is never forwarded.
                        ctx.metrics.frame_rejected("unmapped_api");
                        return Err(SessionError::Unsupported {
                            api_key: meta.api_key,
                            version: meta.api_version,
                        });
                    }
                    (Some(Plan::Respond(response)), _) => {
                        if tx.send(Pending::Local { frame: response }).await.is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                    (Some(Plan::Close(why)), _) => return Err(SessionError::Denied(why)),
                    (Some(Plan::Forward), Some(frame)) => (frame, None),
                    (Some(Plan::ForwardThenMerge(m)), Some(frame)) => {
                        (frame, Some((m, authz, request_ref.detached())))
                    }
                    (Some(Plan::ForwardPartial { request, merge }), _) => {
                        (request, Some((merge, authz, request_ref.detached())))
                    }
                    (Some(Plan::Forward | Plan::ForwardThenMerge(_)), None) => {
                        unreachable!("the frame is kept for the plans that forward it")
                    }
                }
            }
        };
        if let Some(cap) = fetch_cap {
            forward = codec::cap_fetch_max_bytes(forward, meta.api_version, cap);
        }

        let handling = api::handling(api, meta.api_version);

        if upstream.is_none() {
            let node = match ctx.target {
                Target::Node(n) => n,
                Target::Bootstrap => -1,
            };
            let conn = Box::pin(ctx.cluster.connect(ctx.target)).await.inspect_err(|e| {
                ctx.metrics
                    .upstream_connect(ctx.virtual_cluster(), node, false);
                tracing::warn!(peer = %ctx.peer, error = %e, "cannot reach upstream for client");
            })?;
            ctx.metrics
                .upstream_connect(ctx.virtual_cluster(), node, true);
            if tx
                .send(Pending::Attach(FrameReader::reserving_whole_frames(
                    conn.reader,
                )))
                .await
                .is_err()
            {
                return Ok(());
            }
            upstream = Some(BufWriter::with_capacity(64 * 1024, conn.writer));
            upstream_addr = conn.addr;
            reauth_at = conn.reauth_at;
        }
        let Some(up) = upstream.as_mut() else {
            unreachable!("connected just above")
        };
        if reauth_at.is_some_and(|at| at <= tokio::time::Instant::now()) {
            reauth_at = Box::pin(reauthenticate_in_band(up, &tx, ctx, &upstream_addr)).await?;
        }

        if let Some(c) = quota_charge.as_mut() {
            c.forwarding();
        }
        // Backpressure: wait until enough earlier responses have been delivered to the client.
        let cost = forward.len().min(cfg.limits.max_inflight_bytes) as u32;
        let Ok(permit) = inflight.clone().acquire_many_owned(cost).await else {
            return Ok(()); // semaphore closed: the session is ending
        };
        if !expects_response {
            let pending = Pending::NoResponse {
                correlation_id: meta.correlation_id,
            };
            if tx.send(pending).await.is_err() {
                return Ok(());
            }
        } else {
            let pending = Pending::Upstream {
                api,
                version: meta.api_version,
                correlation_id: meta.correlation_id,
                handling,
                merge: merge.map(Box::new),
                sent: Instant::now(),
                deadline: tokio::time::Instant::now() + cfg.timeouts.upstream_request + wait,
                learn_fetch_session: learn_fetch_session
                    .map(|o| Box::new((fetch_broker(ctx.target), o))),
                quota: quota_charge,
                _permit: permit,
            };
            if tx.send(pending).await.is_err() {
                return Ok(());
            }
        }
        // A tenant's names become the broker's, after authorization (which is in the tenant's
        // names) and last, so every plan's bytes are translated the same way.
        let forward = match &ctx.tenant {
            None => forward,
            Some(t) => t.request_frame(&forward).map_err(|e| {
                SessionError::ClientProtocol(ProtocolError::Decode {
                    api,
                    version: meta.api_version,
                    what: "names for the tenant",
                    message: e.to_string(),
                })
            })?,
        };
        // Allowed requests go as their original bytes: no re-encoding, batches never copied. Only a
        // partially allowed request is re-encoded without its denied part.
        write_upstream(up, &forward, false, cfg, &upstream_addr).await?;
    }
}

/// Writes `bytes` to the upstream (flushing if `flush`) within the upstream request deadline.
async fn write_upstream(
    up: &mut BufWriter<BoxWrite>,
    bytes: &[u8],
    flush: bool,
    cfg: &Config,
    addr: &str,
) -> Result<(), SessionError> {
    let write = async {
        up.write_all(bytes).await?;
        if flush {
            up.flush().await?;
        }
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(cfg.timeouts.upstream_request, write).await {
        Err(_) => Err(UpstreamError::Timeout {
            addr: addr.to_string(),
            phase: "request write",
            after: cfg.timeouts.upstream_request,
        }
        .into()),
        Ok(Err(source)) => Err(UpstreamError::Io {
            addr: addr.to_string(),
            phase: "request write",
            source,
        }
        .into()),
        Ok(Ok(())) => Ok(()),
    }
}

/// Renews the gateway's SASL session on a client's upstream connection before the broker's
/// `connections.max.reauth.ms` runs out (KIP-368): a SaslHandshake and the SaslAuthenticate
/// exchange, sent between the client's requests on the same connection. The broker answers
/// requests in order, so their responses arrive after everything forwarded before them; the
/// response half hands them back here instead of to the client. Returns when the next renewal is
/// due.
async fn reauthenticate_in_band(
    up: &mut BufWriter<BoxWrite>,
    tx: &mpsc::Sender<Pending>,
    ctx: &SessionCtx,
    addr: &str,
) -> Result<Option<tokio::time::Instant>, SessionError> {
    let Some(sasl) = ctx.cluster.upstream_sasl() else {
        return Ok(None);
    };
    let mut t = InBand {
        up,
        tx,
        cfg: &ctx.config,
        addr,
        correlation: i32::MIN,
    };
    let outcome = crate::upstream::sasl::authenticate(&mut t, sasl).await;
    ctx.metrics.inc(
        "upstream_reauthentications_total",
        &[("outcome", if outcome.is_ok() { "ok" } else { "error" })],
    );
    let lifetime = outcome.inspect_err(|e| {
        tracing::warn!(upstream = %addr, error = %e, "re-authentication to the upstream failed");
    })?;
    tracing::debug!(upstream = %addr, lifetime_ms = lifetime, "re-authenticated to the upstream");
    Ok(crate::upstream::conn::reauth_deadline(
        tokio::time::Instant::now(),
        lifetime,
    ))
}

/// The SASL transport of an in-band re-authentication: requests written on the client's upstream
/// connection, answers brought back by the response half through [`Pending::Internal`].
struct InBand<'a> {
    up: &'a mut BufWriter<BoxWrite>,
    tx: &'a mpsc::Sender<Pending>,
    cfg: &'a Config,
    addr: &'a str,
    /// The gateway's own correlation ids count up from i32::MIN; responses are matched by
    /// position in the queue, so a client using the same ids confuses nothing.
    correlation: i32,
}

impl InBand<'_> {
    async fn call<
        Req: kafka_protocol::protocol::Encodable,
        Resp: kafka_protocol::protocol::Decodable,
    >(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
        phase: &'static str,
    ) -> Result<Resp, UpstreamError> {
        let proto = |message: String| UpstreamError::Protocol {
            addr: self.addr.to_string(),
            phase,
            message,
        };
        self.correlation = self.correlation.wrapping_add(1);
        let frame = codec::encode_request(api, version, self.correlation, "kafka-gateway", req)
            .map_err(|e| proto(e.to_string()))?;
        let (reply, answer) = oneshot::channel();
        let timeout = self.cfg.timeouts.upstream_request;
        let expected = Expected {
            api,
            version,
            correlation_id: self.correlation,
            sent: Instant::now(),
            deadline: tokio::time::Instant::now() + timeout,
        };
        if self
            .tx
            .send(Pending::Internal { expected, reply })
            .await
            .is_err()
        {
            return Err(UpstreamError::Closed {
                addr: self.addr.to_string(),
                phase,
            });
        }
        write_upstream(self.up, &frame, true, self.cfg, self.addr)
            .await
            .map_err(|e| match e {
                SessionError::Upstream(u) => u,
                other => proto(other.to_string()),
            })?;
        let frame = match tokio::time::timeout(timeout, answer).await {
            Err(_) => {
                return Err(UpstreamError::Timeout {
                    addr: self.addr.to_string(),
                    phase,
                    after: timeout,
                })
            }
            // The response half ended (and says why in its own error).
            Ok(Err(_)) => {
                return Err(UpstreamError::Closed {
                    addr: self.addr.to_string(),
                    phase,
                })
            }
            Ok(Ok(f)) => f,
        };
        let (_, body) = codec::split_response(api, version, frame.slice(LEN_PREFIX..))
            .map_err(|e| proto(e.to_string()))?;
        codec::decode_body(api, version, body).map_err(|e| proto(e.to_string()))
    }
}

impl crate::upstream::sasl::SaslTransport for InBand<'_> {
    fn addr(&self) -> &str {
        self.addr
    }

    async fn handshake(
        &mut self,
        req: &kafka_protocol::messages::SaslHandshakeRequest,
    ) -> Result<kafka_protocol::messages::SaslHandshakeResponse, UpstreamError> {
        self.call(
            ApiKey::SaslHandshake,
            1,
            req,
            "re-authentication SaslHandshake",
        )
        .await
    }

    async fn authenticate(
        &mut self,
        req: &kafka_protocol::messages::SaslAuthenticateRequest,
    ) -> Result<kafka_protocol::messages::SaslAuthenticateResponse, UpstreamError> {
        self.call(
            ApiKey::SaslAuthenticate,
            1,
            req,
            "re-authentication SaslAuthenticate",
        )
        .await
    }
}

use crate::upstream::fetch_sessions::Owner as FetchOwner;

/// The broker a connection's fetch sessions live on, as the registry knows it.
fn fetch_broker(target: Target) -> crate::upstream::fetch_sessions::Broker {
    match target {
        Target::Node(n) => n,
        Target::Bootstrap => -1,
    }
}

/// Plans a ShareFetch or ShareAcknowledge against the share-session registry
/// ([`crate::upstream::fetch_sessions`]) and records what the request changes in its session;
/// `None` for any other request. A share session on the broker is keyed by group and member id
/// (the client's own UUID, which anyone allowed to describe the group can read): only the client
/// that opened it through this gateway, under the policy in force, may continue it.
fn plan_share(
    request: &codec::Request,
    ctx: &SessionCtx,
    owner: impl FnOnce() -> FetchOwner,
    authz: &dyn mapping::Authorize,
    ids: &dyn mapping::TopicIds,
) -> Result<Option<Plan>, ProtocolError> {
    use mapping::groups::share::{self, Continuing};
    let codec::Request::Decoded(d) = request else {
        return Ok(None);
    };
    let (group, member, epoch) = match &d.body {
        RequestKind::ShareFetch(r) => (&r.group_id, &r.member_id, r.share_session_epoch),
        RequestKind::ShareAcknowledge(r) => (&r.group_id, &r.member_id, r.share_session_epoch),
        _ => return Ok(None),
    };
    let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
    let key = (
        fetch_broker(ctx.target),
        text(group.as_ref().map(|g| g.as_str())),
        text(member.as_ref().map(|m| m.as_str())),
    );
    let (owner, now) = (owner(), Instant::now());
    let registry = &ctx.cluster.share_sessions;
    let checked = if epoch == share::INITIAL_EPOCH {
        Ok(Vec::new())
    } else {
        registry.check(&key, &owner, now)
    };
    if let Err(refusal) = &checked {
        ctx.metrics.inc(
            "share_sessions_refused_total",
            &[("reason", refusal.as_str())],
        );
        tracing::info!(
            principal = %owner.principal, peer = %ctx.peer, group = %key.1,
            reason = refusal.as_str(),
            "share session refused: the client opens a new one"
        );
    }
    let session = match &checked {
        Ok(carried) => Continuing::Allowed(carried),
        Err(_) => Continuing::Refused,
    };
    let version = d.header.request_api_version;
    let plan = match &d.body {
        RequestKind::ShareFetch(r) => {
            let planned = share::share_fetch(version, &d.header, r, authz, ids, session)?;
            match (planned.denied, epoch) {
                (None, _) => {}
                (Some(denied), share::INITIAL_EPOCH) => registry.register(key, owner, denied, now),
                (Some(_), share::FINAL_EPOCH) => registry.remove(&key),
                (Some(denied), _) => registry.set(&key, denied),
            }
            planned.plan
        }
        RequestKind::ShareAcknowledge(r) => {
            let plan = share::share_acknowledge(version, &d.header, r, authz, ids, session)?;
            if epoch == share::FINAL_EPOCH && !matches!(plan, Plan::Respond(_)) {
                registry.remove(&key);
            }
            plan
        }
        _ => return Ok(None),
    };
    Ok(Some(plan))
}

/// Kafka's answer to an incremental fetch for a session it does not hold: FETCH_SESSION_ID_NOT_FOUND
/// (70), no session, no data.
fn fetch_session_not_found(meta: codec::RequestMeta) -> Result<Bytes, SessionError> {
    const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    let mut body = kafka_protocol::messages::FetchResponse::default();
    body.error_code = FETCH_SESSION_ID_NOT_FOUND;
    body.session_id = 0;
    Ok(codec::encode_response(
        ApiKey::Fetch,
        meta.api_version,
        &codec::response_header(meta.correlation_id),
        &body,
    )?)
}

/// The request a batch of decisions belongs to, for its audit records.
#[derive(Debug, Clone)]
struct RequestRef {
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    /// A slice of the client's frame while the request is planned (no copy per request); copied
    /// by [`RequestRef::detached`] before it is kept for the response, so that a few bytes of it
    /// do not keep the whole frame alive.
    client_id: Option<StrBytes>,
}

impl RequestRef {
    fn new(meta: codec::RequestMeta, header: &kafka_protocol::messages::RequestHeader) -> Self {
        RequestRef {
            api_key: meta.api_key,
            api_version: meta.api_version,
            correlation_id: meta.correlation_id,
            client_id: header.client_id.clone(),
        }
    }

    /// This reference holding its own copy of the client id, not a slice of the frame.
    fn detached(self) -> Self {
        RequestRef {
            client_id: self
                .client_id
                .map(|c| StrBytes::from_string(c.as_str().to_owned())),
            ..self
        }
    }
}

/// Stage 3: audit. Every denied check, and the allowed ones the configured level asks for, become
/// records before anything is forwarded; if the trail cannot take them (fail-closed), the request
/// does not happen and the connection is closed (clients retry on a new one). Fail-closed means
/// written: a request with a denial or an admin operation waits until those records are in the
/// file (fsynced under `batch` / `always`), at most `timeouts.audit_write`. Called again after a
/// response merge, for the checks made while completing or filtering the response.
async fn audit_decisions(
    authz: &SessionAuthz,
    request: &RequestRef,
    ctx: &SessionCtx,
) -> Result<(), SessionError> {
    // Not enforced, never waited for: written first, outside this function's await points.
    shadow::audit_differences(authz, request, ctx);
    let batch = authz.take_decisions();
    if batch.records.is_empty() && batch.denied_overflow.is_empty() {
        return Ok(());
    }
    let api_name = ApiKey::try_from(request.api_key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_default();
    let record =
        |rtype: &str, name: String, op: &str, decision, rule, hash: String, more| AuthzDecision {
            conn: ctx.conn.clone(),
            principal: authz.principal().to_string(),
            api_key: request.api_key,
            api_name: api_name.clone(),
            api_version: request.api_version,
            correlation_id: request.correlation_id,
            client_id: request.client_id.as_ref().map(|c| c.to_string()),
            resource_type: rtype.to_string(),
            resource_name: name,
            operation: op.to_string(),
            decision,
            rule,
            policy_hash: hash,
            more,
            repeated: None,
        };
    let mut waiters = Vec::new();
    let mut write = |r: AuthzDecision| {
        let must_be_written =
            r.decision == Decision::Deny || crate::audit::level::is_admin_api(r.api_key);
        let event = Event::AuthzDecision(Box::new(r));
        let refused = |e| SessionError::Denied(format!("audit trail unavailable: {e}"));
        if must_be_written {
            waiters.push(ctx.audit.record_written(event).map_err(refused)?);
            Ok(())
        } else {
            ctx.audit.record(event).map_err(refused)
        }
    };
    // The mapping may ask the same question twice for one request (deciding, then shaping the
    // answer): one record per distinct check.
    let mut seen = std::collections::HashSet::new();
    for d in &batch.records {
        if !seen.insert((d.op, d.rtype, d.name.as_deref(), d.allowed)) {
            continue;
        }
        let decision = if d.allowed {
            Decision::Allow
        } else {
            Decision::Deny
        };
        if !ctx.audit.level.records(decision, request.api_key) {
            continue;
        }
        let rule = match (&d.rule, &d.safeguard) {
            (Some(r), _) => Some((&r.source, &r.text)),
            (None, Some(s)) => Some((&s.source, &s.text)),
            (None, None) => None,
        }
        .map(|(source, text)| RuleRef {
            file: source.file.to_string(),
            line: source.line,
            text: text.clone(),
        });
        let mut r = record(
            d.rtype.name(),
            d.name.clone().unwrap_or_else(|| "*".into()),
            d.op.name(),
            decision,
            rule,
            d.policy_version.to_string(),
            None,
        );
        // One client retrying a denied request in a loop: after the first few, identical denials
        // are counted and summarized ("N more like this"), never dropped uncounted. Fail-closed:
        // while the trail cannot take records, a denial is written in full (and so refused with
        // everything else), never merely counted.
        if !d.allowed && ctx.audit.healthy() {
            let kind = DenialKind {
                api_key: r.api_key,
                resource_type: r.resource_type.clone(),
                resource_name: r.resource_name.clone(),
                operation: r.operation.clone(),
                rule: r
                    .rule
                    .as_ref()
                    .map(|x| format!("{}:{}", x.file, x.line))
                    .unwrap_or_default(),
            };
            let verdict = repeat_verdict(&ctx.repeats.denials, &kind, r.clone());
            match verdict {
                Verdict::Record => {}
                Verdict::Summary(n) => r.repeated = Some(n),
                Verdict::Suppress => {
                    ctx.metrics.inc("audit_denials_summarized_total", &[]);
                    continue;
                }
            }
        }
        write(r)?;
    }
    // Denials past the per-request limit: one summary record per operation and resource type,
    // with their number, so that none is missing from the trail.
    let version = authz.snapshot().version().to_string();
    for &(op, rtype, n) in &batch.denied_overflow {
        write(record(
            rtype.name(),
            "*".into(),
            op.name(),
            Decision::Deny,
            None,
            version.clone(),
            Some(n),
        ))?;
    }
    if !waiters.is_empty() {
        let deadline = ctx.config.timeouts.audit_write;
        let until = Instant::now() + deadline;
        for w in waiters {
            let left = until.saturating_duration_since(Instant::now());
            if let Err(e) = w.wait(left.max(Duration::from_millis(1))).await {
                ctx.metrics.inc("audit_unwritten_refusals_total", &[]);
                tracing::error!(error = %e, "audit trail unavailable: the record was not written, refusing the request");
                return Err(SessionError::Denied(format!(
                    "audit trail unavailable: {e}"
                )));
            }
        }
    }
    if batch.dropped_allowed > 0 || !batch.denied_overflow.is_empty() {
        let summarized: u64 = batch.denied_overflow.iter().map(|o| o.2).sum();
        tracing::warn!(
            allowed_not_kept = batch.dropped_allowed,
            denials_summarized = summarized,
            api_key = request.api_key,
            "more decisions in one request than the audit keeps one by one"
        );
    }
    for d in batch.records.iter().filter(|d| !d.allowed) {
        ctx.metrics.inc(
            "authorization_denied_total",
            &[("resource", d.rtype.name()), ("operation", d.op.name())],
        );
        tracing::info!(
            principal = %authz.principal(), peer = %ctx.peer, api_key = request.api_key,
            api_version = request.api_version, correlation_id = request.correlation_id,
            operation = %d.op, resource = %d.rtype, name = d.name.as_deref().unwrap_or("*"),
            reason = %d.reason, "denied"
        );
    }
    for &(op, rtype, n) in &batch.denied_overflow {
        ctx.metrics.add(
            "authorization_denied_total",
            &[("resource", rtype.name()), ("operation", op.name())],
            n,
        );
    }
    Ok(())
}

/// How long the broker may legitimately hold this request before answering, beyond the base timeout.
fn requested_wait(body: &RequestKind) -> Duration {
    let ms = match body {
        RequestKind::JoinGroup(j) => i64::from(j.rebalance_timeout_ms.max(j.session_timeout_ms)),
        RequestKind::CreateTopics(c) => i64::from(c.timeout_ms),
        RequestKind::DeleteTopics(d) => i64::from(d.timeout_ms),
        RequestKind::CreatePartitions(c) => i64::from(c.timeout_ms),
        RequestKind::DeleteRecords(d) => i64::from(d.timeout_ms),
        _ => 0,
    };
    wait_of(ms)
}

/// A wait a request asks for, in milliseconds: a client cannot make the gateway wait forever by
/// asking for it.
fn wait_of(ms: i64) -> Duration {
    Duration::from_millis(ms.clamp(0, 15 * 60 * 1000) as u64)
}

/// Answers ApiVersions locally: the intersection of upstream and gateway, or Kafka's v0 error answer
/// for a version above what the gateway parses.
async fn api_versions(
    meta: codec::RequestMeta,
    payload: Bytes,
    ctx: &SessionCtx,
) -> Result<Bytes, SessionError> {
    let header = codec::response_header(meta.correlation_id);
    if meta.api_version > api::api_versions_max() || meta.api_version < 0 {
        let body = api::unsupported_api_versions_response();
        return Ok(codec::encode_response(
            ApiKey::ApiVersions,
            0,
            &header,
            &body,
        )?);
    }
    let request = codec::decode_request(ApiKey::ApiVersions, meta.api_version, payload)
        .inspect_err(|_| ctx.metrics.frame_rejected("malformed"))?;
    if let RequestKind::ApiVersions(r) = &request.body {
        if !api::valid_client_software(meta.api_version, r) {
            // Kafka answers INVALID_REQUEST, with no API list, and keeps the connection.
            let mut body = kafka_protocol::messages::ApiVersionsResponse::default();
            body.error_code = api::INVALID_REQUEST;
            return Ok(codec::encode_response(
                ApiKey::ApiVersions,
                meta.api_version,
                &header,
                &body,
            )?);
        }
    }
    let table = ctx.cluster.versions().await?;
    Ok(codec::encode_response(
        ApiKey::ApiVersions,
        meta.api_version,
        &header,
        &table.response(),
    )?)
}

async fn respond<W: AsyncWrite + Unpin>(
    writer: W,
    mut rx: mpsc::Receiver<Pending>,
    ctx: SessionCtx,
) -> Result<(), SessionError> {
    // Small: it coalesces small responses into one write; a large one (a Fetch) is written past
    // it. Every connection holds it for its lifetime, idle ones included (issue 13: 10,000 idle
    // connections within 30 KB each).
    let mut out = BufWriter::with_capacity(8 * 1024, writer);
    let result = respond_loop(&mut out, &mut rx, &ctx).await;
    // Close the queue so the request half notices at once, then say goodbye properly (TLS close_notify).
    rx.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = out.flush().await;
        let _ = out.shutdown().await;
    })
    .await;
    result
}

async fn respond_loop<W: AsyncWrite + Unpin>(
    out: &mut BufWriter<W>,
    rx: &mut mpsc::Receiver<Pending>,
    ctx: &SessionCtx,
) -> Result<(), SessionError> {
    let write_timeout = ctx.config.timeouts.client_write;
    let mut upstream: Option<FrameReader<BoxRead>> = None;
    // acks=0 requests sent since the last answered one: the only responses that may be skipped.
    let mut unanswered: VecDeque<i32> = VecDeque::new();
    loop {
        let entry = match rx.try_recv() {
            Ok(e) => e,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Nothing else queued: push what is buffered to the client before waiting.
                match tokio::time::timeout(write_timeout, out.flush()).await {
                    Err(_) => return Err(SessionError::ClientWriteTimeout(write_timeout)),
                    Ok(Err(e)) => return Err(SessionError::ClientWrite(e)),
                    Ok(Ok(())) => {}
                }
                match rx.recv().await {
                    Some(e) => e,
                    None => return Ok(()),
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
        };
        let frame = match entry {
            Pending::Attach(r) => {
                upstream = Some(r);
                continue;
            }
            Pending::NoResponse { correlation_id } => {
                if unanswered.len() == MAX_UNANSWERED {
                    unanswered.pop_front();
                }
                unanswered.push_back(correlation_id);
                continue;
            }
            Pending::Local { frame } => Parts::one(frame),
            Pending::Internal { expected, reply } => {
                let Some(up) = upstream.as_mut() else {
                    unreachable!("Attach is always queued before the first request upstream")
                };
                let frame = read_response(up, &expected, &mut unanswered, ctx, rx.len()).await?;
                // The request half may have given up (its own deadline): nothing else wants it.
                let _ = reply.send(frame);
                continue;
            }
            Pending::Upstream {
                api,
                version,
                correlation_id,
                handling,
                merge,
                sent,
                deadline,
                learn_fetch_session,
                quota: quota_charge,
                _permit,
            } => {
                let Some(up) = upstream.as_mut() else {
                    unreachable!("Attach is always queued before the first forwarded request")
                };
                let expected = Expected {
                    api,
                    version,
                    correlation_id,
                    sent,
                    deadline,
                };
                let frame = read_response(up, &expected, &mut unanswered, ctx, rx.len()).await?;
                let received = Instant::now();
                if let Some(learned) = learn_fetch_session {
                    let (broker, owner) = *learned;
                    let id = codec::peek_fetch_session_id(version, &frame[LEN_PREFIX..]);
                    if let Some(id) = id.filter(|id| *id != 0) {
                        ctx.cluster.fetch_sessions.register(
                            (broker, id),
                            owner,
                            (),
                            Instant::now(),
                        );
                    }
                }
                // Broker addresses first: a rewritten Metadata response is two parts (a new
                // head, the rest as the upstream sent it), which the merge keeps apart.
                let frame = match handling {
                    ResponseHandling::Passthrough => Parts::one(frame),
                    ResponseHandling::RewriteBrokers => rewrite(frame, &expected, ctx)?,
                };
                // A tenant's answer in its own names, before the merge adds what the gateway
                // answers (in the tenant's names already) and checks names against the policy.
                let frame = match &ctx.tenant {
                    None => frame,
                    Some(t) => Parts::one(tenant_response(t, &frame, api, version)?),
                };
                let frame = match merge.map(|m| *m) {
                    None => frame,
                    Some((merge, authz, request_ref)) => {
                        let named = frame
                            .iter()
                            .next()
                            .map(|f| merge.upstream_topic_ids(&f.slice(LEN_PREFIX.min(f.len())..)))
                            .unwrap_or_default();
                        {
                            use crate::policy::mapping::TopicIds as _;
                            let ids = topic_ids(ctx);
                            if named.iter().any(|id| ids.name_of(*id).is_none()) {
                                if let Err(e) = Box::pin(ctx.cluster.refresh()).await {
                                    tracing::warn!(error = %e, "refresh for an assigned topic id failed");
                                }
                            }
                        }
                        // The upstream's frame is consumed: only what the merge keeps of it
                        // stays (as parts of the new one).
                        let merged =
                            merge
                                .apply_parts(frame, &authz, &topic_ids(ctx))
                                .map_err(|e| SessionError::UpstreamProtocol {
                                    api,
                                    version,
                                    message: format!("merging the authorization result: {e}"),
                                })?;
                        // Fail closed here too: a response whose checks the trail cannot take is
                        // not delivered.
                        Box::pin(audit_decisions(&authz, &request_ref, ctx)).await?;
                        merged
                    }
                };
                // Last: the size the client gets is what a consumer byte rate counts.
                let frame = match quota_charge {
                    None => frame,
                    Some(c) => quota::on_response(ctx, c, api, version, frame, received),
                };
                ctx.metrics
                    .response(api as i16, frame.len(), sent.elapsed());
                if let Some(vc) = ctx.virtual_cluster_index {
                    ctx.metrics.vc_response(vc, api as i16, frame.len());
                }
                frame
            }
        };
        // A response may come in parts (a rewritten head, the rest as the upstream sent it):
        // written one after the other, never joined.
        let size = frame.len();
        let write = async {
            for part in frame.iter() {
                out.write_all(part).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        match tokio::time::timeout(write_timeout, write).await {
            Err(_) => return Err(SessionError::ClientWriteTimeout(write_timeout)),
            Ok(Err(e)) => return Err(SessionError::ClientWrite(e)),
            Ok(Ok(())) => {}
        }
        ctx.stats
            .bytes_out
            .fetch_add(size as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The request a response is awaited for.
struct Expected {
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    sent: Instant,
    deadline: tokio::time::Instant,
}

/// Reads the upstream's response to `expected`, dropping answers to earlier acks=0 requests.
async fn read_response(
    up: &mut FrameReader<BoxRead>,
    expected: &Expected,
    unanswered: &mut VecDeque<i32>,
    ctx: &SessionCtx,
    queued: usize,
) -> Result<Bytes, SessionError> {
    let protocol = |message: String| SessionError::UpstreamProtocol {
        api: expected.api,
        version: expected.version,
        message,
    };
    loop {
        let next = up.next(ctx.config.limits.max_response_bytes);
        let frame = match tokio::time::timeout_at(expected.deadline, next).await {
            Err(_) => {
                return Err(SessionError::UpstreamTimeout {
                    api: expected.api,
                    correlation_id: expected.correlation_id,
                    after: expected.sent.elapsed(),
                })
            }
            Ok(Err(e)) => return Err(protocol(e.to_string())),
            Ok(Ok(None)) => return Err(SessionError::UpstreamClosed(1 + queued)),
            Ok(Ok(Some(f))) => f,
        };
        match peek_response_correlation(&frame[LEN_PREFIX..]) {
            Some(got) if got == expected.correlation_id => {
                // Responses come in request order: earlier acks=0 requests will never be answered now.
                unanswered.clear();
                return Ok(frame);
            }
            Some(got) if unanswered.contains(&got) => {
                // An answer to an acks=0 Produce: the client expects none, so it is dropped.
                unanswered.retain(|c| *c != got);
                ctx.metrics.inc("acks0_responses_dropped_total", &[]);
            }
            got => {
                return Err(protocol(format!(
                    "correlation id {got:?}, expected {}",
                    expected.correlation_id
                )))
            }
        }
    }
}

/// The topic ids this session's requests may name: the cluster's, or only its tenant's.
fn topic_ids(ctx: &SessionCtx) -> SessionTopicIds<'_> {
    match &ctx.tenant {
        None => SessionTopicIds::Cluster(&ctx.cluster.topic_ids),
        Some(t) => SessionTopicIds::Tenant(crate::upstream::topic_ids::TenantTopicIds {
            ids: &ctx.cluster.topic_ids,
            tenant: t,
        }),
    }
}

/// [`topic_ids`]' answer: one type for both, without a box per request.
enum SessionTopicIds<'a> {
    Cluster(&'a crate::upstream::topic_ids::TopicIdMap),
    Tenant(crate::upstream::topic_ids::TenantTopicIds<'a>),
}

impl mapping::TopicIds for SessionTopicIds<'_> {
    fn name_of(&self, id: uuid::Uuid) -> Option<String> {
        match self {
            SessionTopicIds::Cluster(c) => c.name_of(id),
            SessionTopicIds::Tenant(t) => t.name_of(id),
        }
    }
    fn id_of(&self, name: &str) -> Option<uuid::Uuid> {
        match self {
            SessionTopicIds::Cluster(c) => c.id_of(name),
            SessionTopicIds::Tenant(t) => t.id_of(name),
        }
    }
    fn listing(&self) -> Vec<String> {
        match self {
            SessionTopicIds::Cluster(c) => c.listing(),
            SessionTopicIds::Tenant(t) => t.listing(),
        }
    }
    fn check_name(&self, id: uuid::Uuid, check: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        match self {
            SessionTopicIds::Cluster(c) => c.check_name(id, check),
            SessionTopicIds::Tenant(t) => t.check_name(id, check),
        }
    }
}

/// A response in the tenant's names (joined first if it came in parts: tenants pay a copy).
fn tenant_response(
    tenant: &crate::protocol::tenant::TenantMap,
    frame: &Parts,
    api: ApiKey,
    version: i16,
) -> Result<Bytes, SessionError> {
    let joined: Vec<u8>;
    let parts: Vec<&Bytes> = frame.iter().collect();
    let whole: &[u8] = match parts.as_slice() {
        [one] => one,
        parts => {
            joined = parts.iter().flat_map(|p| p.iter().copied()).collect();
            &joined
        }
    };
    tenant
        .response_frame(api as i16, version, whole)
        .map_err(|e| SessionError::UpstreamProtocol {
            api,
            version,
            message: format!("tenant names: {e}"),
        })
}

/// Rewrites the broker addresses of a response for this session's listener, learning the upstream's.
fn rewrite(frame: Bytes, expected: &Expected, ctx: &SessionCtx) -> Result<Parts, SessionError> {
    let l = &ctx.listener;
    let advertise = |node: i32| l.advertise(node);
    let out = rewrite_brokers(
        expected.api,
        expected.version,
        frame.slice(LEN_PREFIX..),
        &advertise,
    )
    .map_err(|e| SessionError::UpstreamProtocol {
        api: expected.api,
        version: expected.version,
        message: e.to_string(),
    })?;
    ctx.cluster.learn(&out.seen);
    ctx.cluster.topic_ids.learn(out.topics());
    if !out.unmapped.is_empty() {
        ctx.metrics
            .inc("unmapped_brokers_total", &[("listener", &l.name)]);
        tracing::error!(
            listener = %l.name,
            nodes = ?out.unmapped,
            "brokers outside this listener's port range are hidden from clients; widen broker_port_count"
        );
    }
    Ok(out.parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn of three or four arguments returns, without calling it.
    fn future_size3<A, B, C, F: FnOnce(A, B, C) -> Fut, Fut>(_: F) -> usize {
        std::mem::size_of::<Fut>()
    }
    fn future_size4<A, B, C, D, F: FnOnce(A, B, C, D) -> Fut, Fut>(_: F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// What every connection holds for its lifetime, idle ones included, stays small (issue 13:
    /// 10,000 idle TLS connections within 30 KB each): its two tasks (the futures of `run` and
    /// `respond`; the authentication exchange, upstream connect, re-authentication and refreshes
    /// are boxed while they run) and its response queue, whose slots tokio allocates up front.
    /// Measured in this (debug) build; release futures are about the same size or smaller.
    #[test]
    fn a_connection_s_tasks_and_queue_entries_stay_small() {
        type R = tokio::io::ReadHalf<tokio::io::DuplexStream>;
        type W = tokio::io::WriteHalf<tokio::io::DuplexStream>;
        let sizes = [
            ("run", future_size4(run::<R, W>), 5 * 1024),
            ("respond", future_size3(respond::<W>), 5 * 512),
            ("Pending", std::mem::size_of::<Pending>(), 96),
        ];
        println!("RESULT sizes (name, bytes, bound): {sizes:?}");
        for (name, size, bound) in sizes {
            assert!(size <= bound, "{name} is {size} bytes (bound {bound})");
        }
    }
}
