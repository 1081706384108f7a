//! Accept loop: caps total and per-IP connections, survives accept errors, and runs each TLS
//! handshake under a deadline on the handshake threads, below the priority of established
//! connections.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::audit::{AuditCtx, ConnInfo, Event};
use crate::session::{self, SessionCtx};
use crate::upstream::Target;
use std::sync::atomic::Ordering;

/// Connection caps shared by every listener of the gateway.
pub struct ConnLimits {
    total: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
    /// The accept pace (`limits.max_connection_rate`), if any.
    pace: Option<Mutex<Pace>>,
}

/// New connections per second, as a token bucket holding up to one second's worth: a burst of
/// `per_second` is accepted at once, then one every `1 / per_second` seconds.
struct Pace {
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Pace {
    /// Takes a token: `None` if there was one, else how long until there is.
    fn take(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return None;
        }
        Some(Duration::from_secs_f64(
            (1.0 - self.tokens) / self.per_second,
        ))
    }
}

/// Holds one connection's place under both caps; dropping it frees them.
pub struct ConnSlot {
    _total: OwnedSemaphorePermit,
    ip: IpAddr,
    limits: Arc<ConnLimits>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut map = self.limits.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl ConnLimits {
    /// `max_rate`: new connections per second over all listeners, 0 for no limit.
    pub fn new(max_total: usize, max_per_ip: usize, max_rate: usize) -> Arc<Self> {
        let pace = (max_rate > 0).then(|| {
            Mutex::new(Pace {
                per_second: max_rate as f64,
                tokens: max_rate as f64,
                at: Instant::now(),
            })
        });
        Arc::new(ConnLimits {
            total: Arc::new(Semaphore::new(max_total)),
            per_ip: Mutex::new(HashMap::new()),
            max_per_ip,
            pace,
        })
    }

    /// Waits until the accept pace allows another connection (at once without a limit). As in
    /// Kafka (KIP-612), a connection over the rate is not refused: it waits in the kernel's
    /// backlog until it is accepted. Returns whether it had to wait.
    pub async fn paced(&self) -> bool {
        let Some(pace) = &self.pace else {
            return false;
        };
        let mut waited = false;
        loop {
            let wait = pace
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(Instant::now());
            match wait {
                None => return waited,
                Some(d) => {
                    waited = true;
                    tokio::time::sleep(d).await;
                }
            }
        }
    }

    /// Takes a place for a connection from `ip`, or says which cap is full.
    pub fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnSlot, &'static str> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| "total_cap")?;
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err("per_ip_cap");
        }
        *n += 1;
        Ok(ConnSlot {
            _total: total,
            ip,
            limits: self.clone(),
        })
    }
}

/// What one bound port (or one SNI route of a shared port) needs to serve connections.
#[derive(Clone)]
pub struct PortCtx {
    pub session: SessionCtx,
    pub tls: Option<TlsAcceptor>,
    /// The virtual cluster's upstream: each connection takes the current one when it starts.
    pub upstream: Arc<crate::upstream::current::CurrentUpstream>,
    pub limits: Arc<ConnLimits>,
    /// Every connection task holds a clone; the server knows all have ended when the channel closes.
    pub alive: mpsc::Sender<()>,
}

/// One listener's route on a port shared by SNI listeners.
#[derive(Clone)]
pub struct SniRouteCtx {
    pub routes: crate::config::SniRoutes,
    /// The listener's context; its `tls` is the acceptor whose configuration finishes the
    /// handshake once the server name has picked this route. A broker name for a node id its
    /// current cluster does not have is refused like an unknown name (it leads nowhere).
    pub port: PortCtx,
}

/// How a bound port's connections are served.
#[derive(Clone)]
pub enum Dispatch {
    /// A port of one listener: its bootstrap port or one broker's port.
    Port(Arc<PortCtx>),
    /// A TLS port shared by SNI listeners (of one or several virtual clusters): the server name
    /// in the ClientHello picks the listener and the broker. Never empty.
    Sni(Arc<[SniRouteCtx]>),
}

impl Dispatch {
    /// What every route of the port shares: the gateway-wide limits, metrics, audit and shutdown.
    fn shared(&self) -> &PortCtx {
        match self {
            Dispatch::Port(p) => p,
            Dispatch::Sni(routes) => &routes[0].port,
        }
    }
}

/// Accepts until shutdown. Errors from accept (e.g. out of file descriptors) pause the loop with a
/// growing back-off instead of ending it.
pub async fn accept_loop(listener: TcpListener, ctx: PortCtx, shutdown: watch::Receiver<bool>) {
    serve_port(listener, Dispatch::Port(Arc::new(ctx)), shutdown).await
}

/// [`accept_loop`] for any [`Dispatch`].
pub async fn serve_port(
    listener: TcpListener,
    dispatch: Dispatch,
    mut shutdown: watch::Receiver<bool>,
) {
    let ctx = dispatch.shared().clone();
    let local = listener.local_addr().ok();
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            r = async {
                if ctx.limits.paced().await {
                    ctx.session.metrics.inc("connections_paced_total", &[]);
                }
                listener.accept().await
            } => r,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(5);
                a
            }
            Err(e) => {
                tracing::warn!(listener = ?local, error = %e, ?backoff, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let slot = match ctx.limits.try_admit(peer.ip()) {
            Ok(s) => s,
            Err(reason) => {
                ctx.session.metrics.connection_rejected(reason);
                tracing::warn!(%peer, reason, "connection refused: cap reached");
                drop(stream);
                continue;
            }
        };
        let dispatch = dispatch.clone();
        let alive = ctx.alive.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _alive = alive;
            match dispatch {
                Dispatch::Port(ctx) => serve_connection(stream, peer, PortCtx::clone(&ctx)).await,
                Dispatch::Sni(routes) => serve_sni(stream, peer, routes, local).await,
            }
        });
    }
    tracing::info!(listener = ?local, "stopped accepting");
}

/// Handshakes cost the gateway about 0.65 ms of CPU each (mostly the key exchange and, with
/// mTLS, verifying the client's chain). Run among the connections' own tasks, a storm of new
/// connections queued hundreds of them ahead of established clients' requests (issue 13: p99
/// 17x the quiet p99 during a 10,000-connection storm on 2 cores). They run on their own
/// threads instead, at a lower scheduling priority (nice 10), so the kernel gives a waiting
/// request's worker the CPU first; the deadline still covers the whole handshake.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> Result<std::io::Result<tokio_rustls::server::TlsStream<TcpStream>>, tokio::time::error::Elapsed>
{
    match on_handshake_threads(tokio::time::timeout(timeout, acceptor.accept(stream))).await {
        Ok(result) => result,
        Err(e) => Ok(Err(std::io::Error::other(format!(
            "TLS handshake task failed: {e}"
        )))),
    }
}

/// Runs `work` on the handshake threads (inline if there are none); aborted if this
/// connection's task goes away first (shutdown).
async fn on_handshake_threads<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let Some(rt) = handshake_runtime() else {
        return Ok(work.await);
    };
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(rt.spawn(work));
    (&mut task.0).await
}

/// The handshake threads: half the CPUs (at least one), each at nice 10. `None` if they cannot
/// be started (handshakes then run in the connections' own tasks, as before).
fn handshake_runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(cpus.div_ceil(2))
                .thread_name("tls-handshake")
                .enable_all()
                .on_thread_start(lower_priority)
                .build()
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "no TLS handshake threads: handshakes run inline")
                })
                .ok()
        })
        .as_ref()
}

/// Lowers the calling thread's scheduling priority (Linux: a nice value is per thread).
fn lower_priority() {
    let me = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(me), HANDSHAKE_NICE) {
        tracing::debug!(error = %e, "handshake thread priority unchanged");
    }
}

/// The handshake threads' nice value (0 is the gateway's own; 19 the lowest priority).
const HANDSHAKE_NICE: i32 = 10;

async fn serve_connection(stream: TcpStream, peer: SocketAddr, ctx: PortCtx) {
    let _ = stream.set_nodelay(true);
    let mut session = ctx.session;
    (session.cluster, session.shutdown) = ctx.upstream.for_connection();
    session.peer = peer;
    session.conn = session
        .audit
        .conn(peer, &session.listener.name, session.virtual_cluster());
    // Before anything is read or any handshake is paid for, as Kafka checks an address's rate.
    if let Some(hold) = session::quota::on_connection(&session, peer.ip()) {
        session::quota::hold_refused(&session, hold).await;
        return;
    }
    let started = Instant::now();
    match ctx.tls {
        None => {
            let (r, w) = stream.into_split();
            serve(r, w, None, "none", session, started).await
        }
        Some(acceptor) => {
            let timeout = session.config.timeouts.tls_handshake;
            let result = handshake(acceptor, stream, timeout).await;
            let (audit, metrics) = (&session.audit, &session.metrics);
            let tls = match result {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let listener = &session.listener.name;
                    metrics.connection_rejected("tls_handshake");
                    let reason = tls_failure_reason(&e);
                    tracing::info!(%peer, %listener, error = %e, reason, "TLS handshake failed");
                    record_tls_failure(audit, &session.conn, metrics, reason);
                    return;
                }
                Err(_) => {
                    let listener = &session.listener.name;
                    metrics.connection_rejected("tls_handshake");
                    tracing::info!(%peer, %listener, ?timeout, "TLS handshake timed out");
                    record_tls_failure(audit, &session.conn, metrics, "tls_timeout");
                    return;
                }
            };
            serve_tls(tls, session, started).await
        }
    }
}

async fn serve_tls(
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    session: SessionCtx,
    started: Instant,
) {
    let version = crate::tls::negotiated_version_name(tls.get_ref().1);
    let client_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec());
    let (r, w) = tokio::io::split(tls);
    serve(r, w, client_cert, version, session, started).await
}

/// Runs an established connection's session, with its open and close records and metrics.
async fn serve<R, W>(
    r: R,
    w: W,
    client_cert: Option<Vec<u8>>,
    tls_version: &'static str,
    mut session: SessionCtx,
    started: Instant,
) where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    session.stats = Arc::default();
    session.repeats = Arc::default();
    let audit = session.audit.clone();
    let conn = session.conn.clone();
    let stats = session.stats.clone();
    let metrics = session.metrics.clone();
    let listener = session.listener.name.clone();
    let peer = session.peer;
    let tls = (tls_version != "none").then_some(tls_version);
    if !opened(&audit, &conn, tls) {
        return;
    }
    metrics.connection_opened(&listener);
    let result = session::run(r, w, session, client_cert).await;
    metrics.connection_closed(&listener);
    let reason = match &result {
        Ok(()) => "closed".to_string(),
        Err(e) => e.to_string(),
    };
    let _ = audit.record(Event::ConnectionClose {
        conn,
        principal: stats.principal.get().cloned(),
        bytes_in: stats.bytes_in.load(Ordering::Relaxed),
        bytes_out: stats.bytes_out.load(Ordering::Relaxed),
        duration_ms: started.elapsed().as_millis() as u64,
        reason,
    });
    match result {
        Ok(()) => {
            tracing::debug!(%peer, %listener, tls = tls_version, duration = ?started.elapsed(), "connection closed")
        }
        Err(e) => {
            tracing::info!(%peer, %listener, tls = tls_version, side = e.side(), error = %e, duration = ?started.elapsed(), "connection closed")
        }
    }
}

/// A TLS alert record, unencrypted (nothing has been negotiated yet): fatal, unrecognized_name
/// (RFC 6066 section 3), the answer to a server name no listener on the port routes.
const ALERT_UNRECOGNIZED_NAME: [u8; 7] = [21, 3, 3, 0, 2, 2, 112];

/// How an SNI port's handshake ended.
enum SniOutcome {
    /// The route's index, the broker, the finished handshake and the route's session for this
    /// connection (peer and audit identity set).
    Routed(
        Box<(
            usize,
            Target,
            tokio_rustls::server::TlsStream<TcpStream>,
            SessionCtx,
        )>,
    ),
    /// No route for the name (`None`: the client sent none); the alert has been sent.
    Unrouted(Option<String>),
    /// The route's `connection_creation_rate` refuses the connection: held for this long (the
    /// handshake unfinished), then closed.
    Throttled(
        Box<(
            Duration,
            tokio_rustls::StartHandshake<TcpStream>,
            SessionCtx,
        )>,
    ),
    Failed(std::io::Error),
}

/// Which route (index, target) a server name picks on a shared port.
fn pick_route(routes: &[SniRouteCtx], name: &str) -> Option<(usize, Target)> {
    routes
        .iter()
        .enumerate()
        .find_map(|(i, r)| match r.routes.route(name)? {
            crate::config::SniRoute::Bootstrap => Some((i, Target::Bootstrap)),
            crate::config::SniRoute::Node(id) => r
                .port
                .upstream
                .cluster()
                .subscribe_nodes()
                .borrow()
                .contains(&id)
                .then_some((i, Target::Node(id))),
        })
}

/// Serves a connection to a port shared by SNI listeners: reads the ClientHello, picks the
/// listener and broker by the server name, and finishes the handshake with that listener's TLS
/// settings; a name no route knows gets an `unrecognized_name` alert, never a default route.
async fn serve_sni(
    stream: TcpStream,
    peer: SocketAddr,
    routes: Arc<[SniRouteCtx]>,
    local: Option<SocketAddr>,
) {
    let _ = stream.set_nodelay(true);
    let shared = routes[0].port.session.clone();
    let port = match local {
        Some(a) => format!("sni:{a}"),
        None => "sni".to_string(),
    };
    let conn = shared.audit.conn(peer, &port, None);
    let timeout = shared.config.timeouts.tls_handshake;
    let started = Instant::now();
    let work = {
        let routes = routes.clone();
        let conn = conn.clone();
        async move {
            let start = match tokio_rustls::LazyConfigAcceptor::new(
                rustls::server::Acceptor::default(),
                stream,
            )
            .await
            {
                Ok(s) => s,
                Err(e) => return SniOutcome::Failed(e),
            };
            let name = start
                .client_hello()
                .server_name()
                .map(str::to_ascii_lowercase);
            let Some((i, target)) = name.as_deref().and_then(|n| pick_route(&routes, n)) else {
                // Any listener's settings will do: the connection is only used to send the alert.
                let config = routes[0].port.tls.as_ref().map(|t| t.config().clone());
                if let Some(config) = config {
                    let mut refused = start.into_stream(config);
                    if let Some(io) = refused.get_mut() {
                        use tokio::io::AsyncWriteExt;
                        let _ = io.write_all(&ALERT_UNRECOGNIZED_NAME).await;
                        let _ = io.shutdown().await;
                    }
                }
                return SniOutcome::Unrouted(name);
            };
            // The route's quotas decide, before the rest of the handshake is paid for.
            let mut session = routes[i].port.session.clone();
            session.peer = peer;
            session.conn = ConnInfo {
                listener: session.listener.name.clone(),
                virtual_cluster: session.virtual_cluster().map(str::to_string),
                ..conn
            };
            if let Some(hold) = session::quota::on_connection(&session, peer.ip()) {
                return SniOutcome::Throttled(Box::new((hold, start, session)));
            }
            let Some(acceptor) = &routes[i].port.tls else {
                return SniOutcome::Failed(std::io::Error::other("SNI listener without TLS"));
            };
            match start.into_stream(acceptor.config().clone()).await {
                Ok(tls) => SniOutcome::Routed(Box::new((i, target, tls, session))),
                Err(e) => SniOutcome::Failed(e),
            }
        }
    };
    let outcome = match on_handshake_threads(tokio::time::timeout(timeout, work)).await {
        Ok(Ok(o)) => o,
        Ok(Err(_)) => {
            shared.metrics.connection_rejected("tls_handshake");
            tracing::info!(%peer, %port, ?timeout, "TLS handshake timed out");
            record_tls_failure(&shared.audit, &conn, &shared.metrics, "tls_timeout");
            return;
        }
        Err(e) => SniOutcome::Failed(std::io::Error::other(format!(
            "TLS handshake task failed: {e}"
        ))),
    };
    match outcome {
        SniOutcome::Routed(routed) => {
            let (i, target, tls, mut session) = *routed;
            (session.cluster, session.shutdown) = routes[i].port.upstream.for_connection();
            session.target = target;
            serve_tls(tls, session, started).await
        }
        SniOutcome::Throttled(held) => {
            let (hold, start, session) = *held;
            session::quota::hold_refused(&session, hold).await;
            drop(start);
        }
        SniOutcome::Unrouted(name) => {
            shared.metrics.connection_rejected("tls_server_name");
            tracing::info!(%peer, %port, server_name = ?name, "TLS server name matches no listener or known broker on this port: refused (unrecognized_name)");
            record_tls_failure(
                &shared.audit,
                &conn,
                &shared.metrics,
                "tls_unknown_server_name",
            );
        }
        SniOutcome::Failed(e) => {
            shared.metrics.connection_rejected("tls_handshake");
            let reason = tls_failure_reason(&e);
            tracing::info!(%peer, %port, error = %e, reason, "TLS handshake failed");
            record_tls_failure(&shared.audit, &conn, &shared.metrics, reason);
        }
    }
}

/// Records the connection; false (fail-closed trail refusing) means the connection is dropped.
/// The audit category of a failed TLS handshake: a client certificate missing or refused under
/// `client_auth = required`, or any other protocol failure.
fn tls_failure_reason(e: &std::io::Error) -> &'static str {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::NoCertificatesPresented) => "tls_no_client_certificate",
        Some(rustls::Error::InvalidCertificate(_)) => "tls_bad_client_certificate",
        _ => "tls_protocol",
    }
}

/// TLS failures recorded per second at most: a handshake storm costs a few records a second, not
/// the disk. Those past the limit are counted (`audit_records_suppressed_total`), not written.
const TLS_FAILURE_RECORDS_PER_SECOND: u64 = 20;

/// Records a failed TLS handshake as an authentication failure, within the rate limit.
fn record_tls_failure(
    audit: &AuditCtx,
    conn: &ConnInfo,
    metrics: &crate::metrics::Metrics,
    reason: &'static str,
) {
    use std::sync::atomic::AtomicU64;
    static WINDOW: AtomicU64 = AtomicU64::new(0);
    static IN_WINDOW: AtomicU64 = AtomicU64::new(0);
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if WINDOW.swap(second, Ordering::Relaxed) != second {
        IN_WINDOW.store(0, Ordering::Relaxed);
    }
    if IN_WINDOW.fetch_add(1, Ordering::Relaxed) >= TLS_FAILURE_RECORDS_PER_SECOND {
        metrics.inc(
            "audit_records_suppressed_total",
            &[("event", "tls_failure")],
        );
        return;
    }
    metrics.inc(
        "authentications_total",
        &[
            ("mechanism", "TLS"),
            ("result", "failure"),
            ("reason", reason),
        ],
    );
    // A trail that cannot take it refuses the connection anyway: it is already closed.
    let _ = audit.record(Event::AuthFailure {
        conn: conn.clone(),
        mechanism: "TLS".into(),
        attempted: None,
        reason: reason.into(),
    });
}

fn opened(audit: &AuditCtx, conn: &ConnInfo, tls: Option<&str>) -> bool {
    audit
        .record(Event::ConnectionOpen {
            conn: conn.clone(),
            tls_version: tls.map(str::to_string),
            principal: None,
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_cap_leaves_other_addresses_alone() {
        let limits = ConnLimits::new(10, 2, 0);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let s1 = limits.try_admit(a).expect("first");
        let _s2 = limits.try_admit(a).expect("second");
        assert_eq!(limits.try_admit(a).err(), Some("per_ip_cap"));
        let _s3 = limits.try_admit(b).expect("other address still admitted");
        drop(s1);
        let _s4 = limits.try_admit(a).expect("a place was freed");
    }

    #[test]
    fn total_cap_applies_across_addresses() {
        let limits = ConnLimits::new(2, 10, 0);
        let _a = limits.try_admit([10, 0, 0, 1].into()).expect("a");
        let _b = limits.try_admit([10, 0, 0, 2].into()).expect("b");
        assert_eq!(
            limits.try_admit([10, 0, 0, 3].into()).err(),
            Some("total_cap")
        );
    }

    /// A second's worth at once, then one connection per `1 / rate` seconds; an idle second
    /// refills the burst, never beyond it.
    #[test]
    fn the_accept_pace_allows_a_one_second_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut pace = Pace {
            per_second: 4.0,
            tokens: 4.0,
            at: t0,
        };
        for _ in 0..4 {
            assert_eq!(pace.take(t0), None);
        }
        let wait = pace.take(t0).expect("the burst is spent");
        assert!((wait.as_secs_f64() - 0.25).abs() < 1e-9, "{wait:?}");
        assert_eq!(pace.take(t0 + Duration::from_millis(250)), None);
        assert!(pace.take(t0 + Duration::from_millis(300)).is_some());
        let later = t0 + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(pace.take(later), None);
        }
        assert!(pace.take(later).is_some(), "no more than a second's worth");
    }

    #[tokio::test]
    async fn accepting_waits_for_the_pace_and_never_without_one() {
        let unlimited = ConnLimits::new(10, 10, 0);
        for _ in 0..1000 {
            assert!(!unlimited.paced().await);
        }
        let limits = ConnLimits::new(10, 10, 20);
        let start = Instant::now();
        for _ in 0..20 {
            assert!(!limits.paced().await);
        }
        assert!(limits.paced().await, "the 21st in the same second waits");
        assert!(
            start.elapsed() >= Duration::from_millis(45),
            "{:?}",
            start.elapsed()
        );
    }
}
