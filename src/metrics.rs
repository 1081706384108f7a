//! Metrics: lock-free counters for the request path, Prometheus text rendering, and the small admin HTTP server that exposes them.
//!
//! Per-request counters are fixed arrays of atomics indexed by API key, so recording a request is a few
//! relaxed increments with no allocation or lock. Per-connection and rare events (listeners, upstream
//! nodes, rejection reasons, the generic `inc`) go through small mutex-protected maps: they happen at
//! most once per connection, and their label sets are not known at compile time.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Every exported metric name starts with this.
const PREFIX: &str = "kafka_gateway_";

/// API keys 0..=127 get their own slot; anything else (negative, or a future key beyond 127) shares the
/// last one so a hostile client cannot make us index out of bounds or grow memory.
const API_SLOTS: usize = 129;
const OTHER_API_SLOT: usize = API_SLOTS - 1;

/// Latency histogram upper bounds in microseconds, paired with their `le` label exactly as rendered.
const LATENCY_BUCKETS: [(u64, &str); 18] = [
    (100, "0.0001"),
    (250, "0.00025"),
    (500, "0.0005"),
    (1_000, "0.001"),
    (2_500, "0.0025"),
    (5_000, "0.005"),
    (10_000, "0.01"),
    (25_000, "0.025"),
    (50_000, "0.05"),
    (100_000, "0.1"),
    (250_000, "0.25"),
    (500_000, "0.5"),
    (1_000_000, "1"),
    (2_500_000, "2.5"),
    (5_000_000, "5"),
    (10_000_000, "10"),
    (30_000_000, "30"),
    (60_000_000, "60"),
];

/// One slot per bucket plus one for observations above the largest bound.
const LATENCY_SLOTS: usize = LATENCY_BUCKETS.len() + 1;

fn api_slot(api_key: i16) -> usize {
    match usize::try_from(api_key) {
        Ok(slot) if slot < OTHER_API_SLOT => slot,
        _ => OTHER_API_SLOT,
    }
}

fn atomic_array<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// Counters here are plain numbers: a panic while one was held cannot leave them in a state worth
/// refusing to read, so a poisoned lock is simply taken over.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One virtual cluster's per-API counters.
struct VcCounters {
    name: String,
    requests: [AtomicU64; API_SLOTS],
    request_bytes: [AtomicU64; API_SLOTS],
    response_bytes: [AtomicU64; API_SLOTS],
}

#[derive(Default)]
struct ListenerStats {
    active: i64,
    total: u64,
    /// The virtual cluster the listener leads to (a label when the config declares them).
    virtual_cluster: Option<String>,
}

#[derive(Default)]
struct UpstreamStats {
    connects_ok: u64,
    connects_failed: u64,
    active: i64,
}

/// Label pairs of one generic series, sorted by label name so the same set in another order is one series.
type LabelSet = Vec<(&'static str, String)>;

/// All gateway metrics. Cheap to share: hand out the `Arc` from [`Metrics::new`].
pub struct Metrics {
    requests: [AtomicU64; API_SLOTS],
    request_bytes: [AtomicU64; API_SLOTS],
    responses: [AtomicU64; API_SLOTS],
    response_bytes: [AtomicU64; API_SLOTS],
    /// Per-API latency sum; the matching count is `responses`, which is incremented in the same call.
    latency_sum_micros: [AtomicU64; API_SLOTS],
    /// Non-cumulative bucket counts; rendering accumulates them, which keeps `+Inf` equal to the total.
    latency_buckets: [AtomicU64; LATENCY_SLOTS],
    latency_total_micros: AtomicU64,
    /// `api` label value per slot, computed once so rendering does not re-derive names.
    api_names: Vec<String>,
    listeners: Mutex<BTreeMap<String, ListenerStats>>,
    connections_rejected: Mutex<BTreeMap<&'static str, u64>>,
    frames_rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// By virtual cluster label ("" for none) and node id: node ids repeat across clusters.
    upstream: Mutex<BTreeMap<(String, i32), UpstreamStats>>,
    generic: Mutex<BTreeMap<&'static str, BTreeMap<LabelSet, u64>>>,
    /// Requests and bytes by virtual cluster and API, when the config declares virtual clusters
    /// (set once at start; indexed by the cluster's position in the config).
    virtual_clusters: std::sync::OnceLock<Box<[VcCounters]>>,
    /// Gauges set by their owner (name -> (help, value)).
    gauges: Mutex<BTreeMap<&'static str, (&'static str, u64)>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let api_names = (0..API_SLOTS)
            .map(|slot| {
                if slot == OTHER_API_SLOT {
                    return "other".to_string();
                }
                // Slots below OTHER_API_SLOT are 0..=127 and always fit in an i16.
                match i16::try_from(slot)
                    .ok()
                    .and_then(|key| ApiKey::try_from(key).ok())
                {
                    Some(api) => format!("{api:?}"),
                    None => slot.to_string(),
                }
            })
            .collect();
        Arc::new(Metrics {
            requests: atomic_array(),
            request_bytes: atomic_array(),
            responses: atomic_array(),
            response_bytes: atomic_array(),
            latency_sum_micros: atomic_array(),
            latency_buckets: atomic_array(),
            latency_total_micros: AtomicU64::new(0),
            api_names,
            listeners: Mutex::default(),
            connections_rejected: Mutex::default(),
            frames_rejected: Mutex::default(),
            upstream: Mutex::default(),
            generic: Mutex::default(),
            virtual_clusters: std::sync::OnceLock::new(),
            gauges: Mutex::default(),
        })
    }

    /// Makes `listener`'s series exist from the start (at 0), labelled with its virtual cluster.
    pub fn register_listener(&self, listener: &str, virtual_cluster: Option<&str>) {
        lock(&self.listeners)
            .entry(listener.to_string())
            .or_default()
            .virtual_cluster = virtual_cluster.map(str::to_string);
    }

    /// A client connection was accepted on `listener` (counts it and raises the active gauge).
    pub fn connection_opened(&self, listener: &str) {
        let mut listeners = lock(&self.listeners);
        // Look up by &str first so the common case does not allocate the key.
        if let Some(stats) = listeners.get_mut(listener) {
            stats.active += 1;
            stats.total += 1;
        } else {
            listeners.insert(
                listener.to_string(),
                ListenerStats {
                    active: 1,
                    total: 1,
                    virtual_cluster: None,
                },
            );
        }
    }

    /// A client connection on `listener` ended; pairs with [`Metrics::connection_opened`].
    pub fn connection_closed(&self, listener: &str) {
        let mut listeners = lock(&self.listeners);
        if let Some(stats) = listeners.get_mut(listener) {
            stats.active -= 1;
        } else {
            // A close without an open is a caller bug; keep the gauge visible rather than hide it.
            listeners.insert(
                listener.to_string(),
                ListenerStats {
                    active: -1,
                    total: 0,
                    virtual_cluster: None,
                },
            );
        }
    }

    /// A connection was refused, e.g. "total_cap", "per_ip_cap", "tls_handshake", "shutdown",
    /// or by a quota ("connection_creation_rate"; "login_rate", once its session has logged in).
    pub fn connection_rejected(&self, reason: &'static str) {
        *lock(&self.connections_rejected).entry(reason).or_insert(0) += 1;
    }

    /// A request frame for `api_key` of `frame_bytes` bytes (including the length prefix) arrived.
    pub fn request(&self, api_key: i16, frame_bytes: usize) {
        let slot = api_slot(api_key);
        self.requests[slot].fetch_add(1, Ordering::Relaxed);
        self.request_bytes[slot].fetch_add(saturating_u64(frame_bytes), Ordering::Relaxed);
    }

    /// A response for `api_key` was sent to the client, `latency` after its request arrived.
    pub fn response(&self, api_key: i16, frame_bytes: usize, latency: Duration) {
        let slot = api_slot(api_key);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.responses[slot].fetch_add(1, Ordering::Relaxed);
        self.response_bytes[slot].fetch_add(saturating_u64(frame_bytes), Ordering::Relaxed);
        self.latency_sum_micros[slot].fetch_add(micros, Ordering::Relaxed);
        self.latency_total_micros
            .fetch_add(micros, Ordering::Relaxed);
        let bucket = LATENCY_BUCKETS.partition_point(|&(bound, _)| bound < micros);
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Declares the virtual clusters (by config position) whose requests are counted apart;
    /// only the first call counts.
    pub fn register_virtual_clusters(&self, names: &[String]) {
        let _ = self.virtual_clusters.set(
            names
                .iter()
                .map(|n| VcCounters {
                    name: n.clone(),
                    requests: atomic_array(),
                    request_bytes: atomic_array(),
                    response_bytes: atomic_array(),
                })
                .collect(),
        );
    }

    /// A request of virtual cluster `vc` (its config position) arrived.
    pub fn vc_request(&self, vc: u16, api_key: i16, frame_bytes: usize) {
        if let Some(c) = self
            .virtual_clusters
            .get()
            .and_then(|v| v.get(usize::from(vc)))
        {
            let slot = api_slot(api_key);
            c.requests[slot].fetch_add(1, Ordering::Relaxed);
            c.request_bytes[slot].fetch_add(saturating_u64(frame_bytes), Ordering::Relaxed);
        }
    }

    /// A response of virtual cluster `vc` was sent.
    pub fn vc_response(&self, vc: u16, api_key: i16, frame_bytes: usize) {
        if let Some(c) = self
            .virtual_clusters
            .get()
            .and_then(|v| v.get(usize::from(vc)))
        {
            c.response_bytes[api_slot(api_key)]
                .fetch_add(saturating_u64(frame_bytes), Ordering::Relaxed);
        }
    }

    /// A client frame was refused: "too_large", "negative_length", "zero_length", "malformed",
    /// "unsupported_api", "unsupported_version".
    pub fn frame_rejected(&self, reason: &'static str) {
        *lock(&self.frames_rejected).entry(reason).or_insert(0) += 1;
    }

    /// An attempt to connect to upstream broker `broker` finished.
    pub fn upstream_connect(&self, virtual_cluster: Option<&str>, broker: i32, ok: bool) {
        let mut upstream = lock(&self.upstream);
        let key = (virtual_cluster.unwrap_or_default().to_string(), broker);
        let stats = upstream.entry(key).or_default();
        if ok {
            stats.connects_ok += 1;
        } else {
            stats.connects_failed += 1;
        }
    }

    pub fn upstream_connection_opened(&self, virtual_cluster: Option<&str>, broker: i32) {
        let key = (virtual_cluster.unwrap_or_default().to_string(), broker);
        lock(&self.upstream).entry(key).or_default().active += 1;
    }

    pub fn upstream_connection_closed(&self, virtual_cluster: Option<&str>, broker: i32) {
        let key = (virtual_cluster.unwrap_or_default().to_string(), broker);
        lock(&self.upstream).entry(key).or_default().active -= 1;
    }

    /// Increments a labeled counter for rare events (authentication results and the like). `name` is
    /// exported as `kafka_gateway_<name>`, so pass names ending in `_total` and not clashing with the
    /// built-in metrics. Characters Prometheus does not allow in names become `_`.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1);
    }

    /// Adds `n` to a labeled counter, as [`Metrics::inc`] adds one.
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        let mut key: LabelSet = labels.iter().map(|&(k, v)| (k, v.to_string())).collect();
        key.sort();
        *lock(&self.generic)
            .entry(name)
            .or_default()
            .entry(key)
            .or_insert(0) += n;
    }

    /// Renders everything in the Prometheus text exposition format, version 0.0.4.
    /// Sets gauge `name` (created on first use, with `help`).
    pub fn set_gauge(&self, name: &'static str, help: &'static str, value: u64) {
        lock(&self.gauges).insert(name, (help, value));
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // fmt::Write for String only fails if a Display impl fails, and ours do not.
        self.render_into(&mut out)
            .expect("formatting metrics into a String cannot fail");
        out
    }

    fn render_into(&self, out: &mut String) -> fmt::Result {
        {
            let listeners = lock(&self.listeners);
            header(
                out,
                "connections_active",
                "gauge",
                "Client connections currently open, by listener.",
            )?;
            let labels = |name: &'_ str, stats: &ListenerStats| -> Vec<(&'static str, String)> {
                let mut l = vec![("listener", name.to_string())];
                if let Some(vc) = &stats.virtual_cluster {
                    l.push(("virtual_cluster", vc.clone()));
                }
                l
            };
            for (name, stats) in listeners.iter() {
                let l = labels(name, stats);
                sample(out, "connections_active", &borrowed(&l), stats.active)?;
            }
            header(
                out,
                "connections_total",
                "counter",
                "Client connections accepted, by listener.",
            )?;
            for (name, stats) in listeners.iter() {
                let l = labels(name, stats);
                sample(out, "connections_total", &borrowed(&l), stats.total)?;
            }
        }

        header(
            out,
            "connections_rejected_total",
            "counter",
            "Client connections refused (caps, TLS, connection and login rate quotas), by reason.",
        )?;
        for (reason, n) in lock(&self.connections_rejected).iter() {
            sample(out, "connections_rejected_total", &[("reason", reason)], n)?;
        }

        let per_api: [(&str, &str, &[AtomicU64; API_SLOTS]); 4] = [
            (
                "requests_total",
                "Requests received from clients, by API.",
                &self.requests,
            ),
            (
                "request_bytes_total",
                "Bytes of client request frames, including the length prefix, by API.",
                &self.request_bytes,
            ),
            (
                "responses_total",
                "Responses sent to clients, by API.",
                &self.responses,
            ),
            (
                "response_bytes_total",
                "Bytes of response frames sent to clients, including the length prefix, by API.",
                &self.response_bytes,
            ),
        ];
        for (name, help, counters) in per_api {
            header(out, name, "counter", help)?;
            for (slot, counter) in counters.iter().enumerate() {
                let n = counter.load(Ordering::Relaxed);
                // Series appear once used; 129 zero lines per metric would drown the useful ones.
                if n > 0 {
                    sample(out, name, &[("api", &self.api_names[slot])], n)?;
                }
            }
        }

        header(
            out,
            "request_latency_seconds",
            "histogram",
            "Time from a client request arriving to its response being sent, all APIs.",
        )?;
        let mut cumulative = 0u64;
        for (slot, (_, le)) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.latency_buckets[slot].load(Ordering::Relaxed);
            sample(
                out,
                "request_latency_seconds_bucket",
                &[("le", le)],
                cumulative,
            )?;
        }
        cumulative += self.latency_buckets[LATENCY_SLOTS - 1].load(Ordering::Relaxed);
        sample(
            out,
            "request_latency_seconds_bucket",
            &[("le", "+Inf")],
            cumulative,
        )?;
        let total_secs = micros_to_secs(self.latency_total_micros.load(Ordering::Relaxed));
        sample(out, "request_latency_seconds_sum", &[], total_secs)?;
        sample(out, "request_latency_seconds_count", &[], cumulative)?;

        header(
            out,
            "api_latency_seconds",
            "summary",
            "Time from a client request arriving to its response being sent, by API (sum and count only).",
        )?;
        for slot in 0..API_SLOTS {
            let count = self.responses[slot].load(Ordering::Relaxed);
            if count > 0 {
                let api = [("api", self.api_names[slot].as_str())];
                let sum = micros_to_secs(self.latency_sum_micros[slot].load(Ordering::Relaxed));
                sample(out, "api_latency_seconds_sum", &api, sum)?;
                sample(out, "api_latency_seconds_count", &api, count)?;
            }
        }

        header(
            out,
            "frames_rejected_total",
            "counter",
            "Client frames refused before forwarding, by reason.",
        )?;
        for (reason, n) in lock(&self.frames_rejected).iter() {
            sample(out, "frames_rejected_total", &[("reason", reason)], n)?;
        }

        {
            let upstream = lock(&self.upstream);
            header(
                out,
                "upstream_connects_total",
                "counter",
                "Connection attempts to upstream brokers, by node id and result.",
            )?;
            for ((vc, node), stats) in upstream.iter() {
                let node = node.to_string();
                for (result, n) in [("ok", stats.connects_ok), ("error", stats.connects_failed)] {
                    if n > 0 {
                        let mut l = vec![("node", node.as_str()), ("result", result)];
                        if !vc.is_empty() {
                            l.push(("virtual_cluster", vc));
                        }
                        sample(out, "upstream_connects_total", &l, n)?;
                    }
                }
            }
            header(
                out,
                "upstream_connections_active",
                "gauge",
                "Connections to upstream brokers currently open, by node id.",
            )?;
            for ((vc, node), stats) in upstream.iter() {
                let node = node.to_string();
                let mut l = vec![("node", node.as_str())];
                if !vc.is_empty() {
                    l.push(("virtual_cluster", vc));
                }
                sample(out, "upstream_connections_active", &l, stats.active)?;
            }
        }

        if let Some(vcs) = self.virtual_clusters.get() {
            for (metric, help, pick) in [
                (
                    "virtual_cluster_requests_total",
                    "Requests by virtual cluster and API.",
                    0,
                ),
                (
                    "virtual_cluster_request_bytes_total",
                    "Request bytes by virtual cluster and API.",
                    1,
                ),
                (
                    "virtual_cluster_response_bytes_total",
                    "Response bytes by virtual cluster and API.",
                    2,
                ),
            ] {
                header(out, metric, "counter", help)?;
                for vc in vcs.iter() {
                    let counters = match pick {
                        0 => &vc.requests,
                        1 => &vc.request_bytes,
                        _ => &vc.response_bytes,
                    };
                    for (slot, c) in counters.iter().enumerate() {
                        let n = c.load(Ordering::Relaxed);
                        if n > 0 {
                            let labels = [
                                ("virtual_cluster", vc.name.as_str()),
                                ("api", self.api_names[slot].as_str()),
                            ];
                            sample(out, metric, &labels, n)?;
                        }
                    }
                }
            }
        }

        for (name, (help, value)) in lock(&self.gauges).iter() {
            header(out, name, "gauge", help)?;
            sample(out, name, &[], value)?;
        }

        for (name, series) in lock(&self.generic).iter() {
            let name = sanitize_name(name);
            header(
                out,
                &name,
                "counter",
                "Event counter recorded by the gateway.",
            )?;
            for (labels, n) in series {
                let labels: Vec<(String, &str)> = labels
                    .iter()
                    .map(|(k, v)| (sanitize_name(k), v.as_str()))
                    .collect();
                let labels: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                sample(out, &name, &labels, n)?;
            }
        }
        Ok(())
    }
}

fn saturating_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn micros_to_secs(micros: u64) -> f64 {
    // Precision loss above 2^53 µs (285 years of summed latency) is irrelevant for a metric.
    micros as f64 / 1_000_000.0
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) -> fmt::Result {
    // HELP texts are our own constants and contain neither backslashes nor newlines, so need no escaping.
    writeln!(out, "# HELP {PREFIX}{name} {help}")?;
    writeln!(out, "# TYPE {PREFIX}{name} {kind}")
}

/// Owned label pairs as the borrowed form [`sample`] takes.
fn borrowed<'a>(labels: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: impl fmt::Display,
) -> fmt::Result {
    out.push_str(PREFIX);
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
        }
        out.push('}');
    }
    writeln!(out, " {value}")
}

/// Label values come from clients and config (listener names, principals), so they are escaped as the
/// exposition format requires: backslash, double quote and newline.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Metric and label names allow only `[a-zA-Z0-9_]` here (and no leading digit for label names).
fn sanitize_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Limits for the admin server; tests shrink the deadlines.
#[derive(Debug, Clone, Copy)]
struct AdminLimits {
    /// Whole request head must arrive within this time.
    head_deadline: Duration,
    /// Writing the response must finish within this time.
    write_deadline: Duration,
    /// After responding we read and discard what the client still sends for at most this long, so that
    /// closing with unread data does not turn into a TCP reset that destroys our response in flight.
    linger: Duration,
}

const ADMIN_LIMITS: AdminLimits = AdminLimits {
    head_deadline: Duration::from_secs(5),
    write_deadline: Duration::from_secs(5),
    linger: Duration::from_secs(1),
};

/// Largest request head accepted; everything the admin API serves fits in a request line.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Bytes drained after responding before giving up and closing anyway.
const MAX_LINGER_BYTES: usize = 64 * 1024;
/// Concurrent admin connections; further ones are closed at once so scrapes cannot exhaust tasks.
const MAX_ADMIN_CONNECTIONS: usize = 64;
/// Pause after a failed accept (e.g. out of file descriptors) instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `/metrics`, `/healthz` and `/readyz` over HTTP/1.1, one request per connection, until
/// `shutdown` becomes true (or its sender is dropped). Connections still being answered finish on their
/// own, bounded by the read/write deadlines.
pub async fn serve_admin(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: watch::Receiver<bool>,
) {
    serve_admin_with(listener, metrics, ready, shutdown, ADMIN_LIMITS).await;
}

async fn serve_admin_with(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
    limits: AdminLimits,
) {
    let permits = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        if *shutdown.borrow_and_update() {
            break;
        }
        let accepted = tokio::select! {
            changed = shutdown.changed() => {
                // A dropped sender means nobody can ever ask us to stop: treat it as the request to stop.
                if changed.is_err() {
                    break;
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "admin listener accept failed; backing off");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "admin connection limit reached; closing connection");
            continue;
        };
        let metrics = metrics.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            handle_admin_connection(stream, &metrics, &ready, limits).await;
            drop(permit);
        });
    }
    tracing::debug!("admin server stopped");
}

enum HeadError {
    TooLarge,
    /// The peer closed before finishing the head; carries what it did send.
    Eof(Vec<u8>),
    Io,
}

async fn handle_admin_connection(
    mut stream: TcpStream,
    metrics: &Metrics,
    ready: &AtomicBool,
    limits: AdminLimits,
) {
    let response = match tokio::time::timeout(limits.head_deadline, read_head(&mut stream)).await {
        Err(_elapsed) => Response::text(
            408,
            "Request Timeout",
            "request head not received in time\n",
        ),
        Ok(Err(HeadError::TooLarge)) => Response::text(
            431,
            "Request Header Fields Too Large",
            "request head too large\n",
        ),
        // A connect-and-close (port probe, load balancer check) deserves no answer and no log noise.
        Ok(Err(HeadError::Eof(partial))) if partial.is_empty() => return,
        Ok(Err(HeadError::Eof(_))) => Response::text(400, "Bad Request", "incomplete request\n"),
        Ok(Err(HeadError::Io)) => return,
        Ok(Ok(head)) => route(&head, metrics, ready),
    };
    let bytes = response.to_bytes();
    let write = async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(limits.write_deadline, write).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "admin response write failed");
            return;
        }
        Err(_elapsed) => {
            tracing::debug!("admin response write timed out");
            return;
        }
    }
    let _client_gone_or_slow = tokio::time::timeout(limits.linger, drain(&mut stream)).await;
}

/// Reads until the blank line ending the request head, at most `MAX_HEAD_BYTES`.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await.map_err(|_| HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Eof(head));
        }
        // Only the new bytes (plus 3 before them) can complete a terminator split across reads.
        let search_from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find_head_end(&head[search_from..]) {
            head.truncate(search_from + end);
            return Ok(head);
        }
        if head.len() >= MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Position just past the head terminator; bare `\n\n` is accepted as well, as most servers do.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < MAX_LINGER_BYTES {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    extra_headers: &'static str,
    body: String,
    /// HEAD requests get the headers (with the real length) but no body.
    include_body: bool,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: &str) -> Self {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            extra_headers: "",
            body: body.to_string(),
            include_body: true,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len(),
            self.extra_headers,
        )
        .into_bytes();
        if self.include_body {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

fn route(head: &[u8], metrics: &Metrics, ready: &AtomicBool) -> Response {
    let bad_request = || Response::text(400, "Bad Request", "malformed request line\n");
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return bad_request();
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad_request();
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return bad_request();
    }
    let include_body = match method {
        "GET" => true,
        "HEAD" => false,
        _ => {
            let mut r = Response::text(
                405,
                "Method Not Allowed",
                "only GET and HEAD are supported\n",
            );
            r.extra_headers = "Allow: GET, HEAD\r\n";
            return r;
        }
    };
    let path = target.split('?').next().unwrap_or(target);
    let mut response = match path {
        "/metrics" => Response {
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            ..Response::text(200, "OK", &metrics.render())
        },
        "/healthz" => Response::text(200, "OK", "ok\n"),
        "/readyz" if ready.load(Ordering::Acquire) => Response::text(200, "OK", "ready\n"),
        "/readyz" => Response::text(503, "Service Unavailable", "not ready\n"),
        _ => Response::text(404, "Not Found", "not found\n"),
    };
    response.include_body = include_body;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::task::JoinHandle;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    fn assert_has(text: &str, line: &str) {
        assert!(
            lines(text).contains(&line),
            "missing line {line:?} in:\n{text}"
        );
    }

    #[test]
    fn render_reports_connections_and_rejections() {
        let m = Metrics::new();
        m.connection_opened("plain");
        m.connection_opened("plain");
        m.connection_opened("tls");
        m.connection_closed("plain");
        m.connection_rejected("per_ip_cap");
        m.connection_rejected("per_ip_cap");
        m.frame_rejected("too_large");
        let text = m.render();
        assert_has(&text, "# TYPE kafka_gateway_connections_active gauge");
        assert_has(
            &text,
            "kafka_gateway_connections_active{listener=\"plain\"} 1",
        );
        assert_has(
            &text,
            "kafka_gateway_connections_active{listener=\"tls\"} 1",
        );
        assert_has(
            &text,
            "kafka_gateway_connections_total{listener=\"plain\"} 2",
        );
        assert_has(
            &text,
            "kafka_gateway_connections_rejected_total{reason=\"per_ip_cap\"} 2",
        );
        assert_has(
            &text,
            "kafka_gateway_frames_rejected_total{reason=\"too_large\"} 1",
        );
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn render_reports_per_api_counters_with_names() {
        let m = Metrics::new();
        m.request(0, 100);
        m.request(0, 50);
        m.request(3, 20);
        m.request(-1, 8);
        m.request(i16::MAX, 8);
        m.request(127, 8);
        m.response(0, 40, Duration::from_micros(150));
        let text = m.render();
        assert_has(&text, "kafka_gateway_requests_total{api=\"Produce\"} 2");
        assert_has(
            &text,
            "kafka_gateway_request_bytes_total{api=\"Produce\"} 150",
        );
        assert_has(&text, "kafka_gateway_requests_total{api=\"Metadata\"} 1");
        assert_has(&text, "kafka_gateway_requests_total{api=\"other\"} 2");
        // 127 is in range but not a known API: it keeps its own slot, labelled by number.
        assert_has(&text, "kafka_gateway_requests_total{api=\"127\"} 1");
        assert_has(&text, "kafka_gateway_responses_total{api=\"Produce\"} 1");
        assert_has(
            &text,
            "kafka_gateway_response_bytes_total{api=\"Produce\"} 40",
        );
        assert!(
            !text.contains("api=\"Fetch\""),
            "unused APIs are not rendered"
        );
    }

    #[test]
    fn latency_histogram_is_cumulative() {
        let m = Metrics::new();
        m.response(1, 10, Duration::from_micros(150));
        m.response(1, 10, Duration::from_micros(100)); // exactly on a bound: counts in that bucket
        m.response(0, 10, Duration::from_secs(90)); // beyond the last bucket
        let text = m.render();
        assert_has(
            &text,
            "# TYPE kafka_gateway_request_latency_seconds histogram",
        );
        assert_has(
            &text,
            "kafka_gateway_request_latency_seconds_bucket{le=\"0.0001\"} 1",
        );
        assert_has(
            &text,
            "kafka_gateway_request_latency_seconds_bucket{le=\"0.00025\"} 2",
        );
        assert_has(
            &text,
            "kafka_gateway_request_latency_seconds_bucket{le=\"60\"} 2",
        );
        assert_has(
            &text,
            "kafka_gateway_request_latency_seconds_bucket{le=\"+Inf\"} 3",
        );
        assert_has(&text, "kafka_gateway_request_latency_seconds_count 3");
        assert_has(&text, "kafka_gateway_request_latency_seconds_sum 90.00025");
        assert_has(
            &text,
            "kafka_gateway_api_latency_seconds_sum{api=\"Fetch\"} 0.00025",
        );
        assert_has(
            &text,
            "kafka_gateway_api_latency_seconds_count{api=\"Fetch\"} 2",
        );
        assert_has(
            &text,
            "kafka_gateway_api_latency_seconds_count{api=\"Produce\"} 1",
        );
    }

    #[test]
    fn upstream_metrics_by_node() {
        let m = Metrics::new();
        m.upstream_connect(None, 1, true);
        m.upstream_connect(None, 1, false);
        m.upstream_connect(None, 2, false);
        m.upstream_connection_opened(None, 1);
        m.upstream_connection_opened(None, 1);
        m.upstream_connection_closed(None, 1);
        let text = m.render();
        assert_has(
            &text,
            "kafka_gateway_upstream_connects_total{node=\"1\",result=\"ok\"} 1",
        );
        assert_has(
            &text,
            "kafka_gateway_upstream_connects_total{node=\"1\",result=\"error\"} 1",
        );
        assert_has(
            &text,
            "kafka_gateway_upstream_connects_total{node=\"2\",result=\"error\"} 1",
        );
        assert_has(
            &text,
            "kafka_gateway_upstream_connections_active{node=\"1\"} 1",
        );
    }

    #[test]
    fn generic_counters_escape_label_values_and_merge_label_order() {
        let m = Metrics::new();
        m.inc(
            "auth_results_total",
            &[("mechanism", "PLAIN"), ("result", "ok")],
        );
        m.inc(
            "auth_results_total",
            &[("result", "ok"), ("mechanism", "PLAIN")],
        );
        m.inc("auth_results_total", &[("principal", "a\"b\\c\nd")]);
        m.inc("bad-name.total", &[("1st", "x")]);
        let text = m.render();
        assert_has(&text, "# TYPE kafka_gateway_auth_results_total counter");
        assert_has(
            &text,
            "kafka_gateway_auth_results_total{mechanism=\"PLAIN\",result=\"ok\"} 2",
        );
        assert_has(
            &text,
            r#"kafka_gateway_auth_results_total{principal="a\"b\\c\nd"} 1"#,
        );
        assert_has(&text, "kafka_gateway_bad_name_total{_1st=\"x\"} 1");
    }

    #[test]
    fn listener_names_are_escaped() {
        let m = Metrics::new();
        m.connection_opened("we\"ird\\\nname");
        assert_has(
            &m.render(),
            r#"kafka_gateway_connections_active{listener="we\"ird\\\nname"} 1"#,
        );
    }

    #[test]
    fn every_metric_has_help_and_type() {
        let m = Metrics::new();
        m.request(0, 1);
        m.inc("x_total", &[]);
        let text = m.render();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| text.contains(&format!("# TYPE {f} ")))
                })
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "{family} lacks HELP"
            );
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} lacks TYPE"
            );
        }
    }

    struct Admin {
        addr: SocketAddr,
        ready: Arc<AtomicBool>,
        shutdown: watch::Sender<bool>,
        task: JoinHandle<()>,
        metrics: Arc<Metrics>,
    }

    async fn start_admin(limits: AdminLimits) -> Admin {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let metrics = Metrics::new();
        let ready = Arc::new(AtomicBool::new(false));
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(serve_admin_with(
            listener,
            metrics.clone(),
            ready.clone(),
            rx,
            limits,
        ));
        Admin {
            addr,
            ready,
            shutdown,
            task,
            metrics,
        }
    }

    /// Sends raw bytes and returns everything the server answers until it closes.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send request");
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
            .await
            .expect("server answers within 10s")
            .expect("read response");
        String::from_utf8_lossy(&response).into_owned()
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await
    }

    #[tokio::test]
    async fn admin_serves_metrics_health_and_readiness() {
        let admin = start_admin(ADMIN_LIMITS).await;
        admin.metrics.request(0, 10);

        let resp = get(admin.addr, "/metrics").await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(
            resp.contains("Content-Type: text/plain; version=0.0.4"),
            "{resp}"
        );
        assert!(resp.contains("Connection: close\r\n"), "{resp}");
        assert!(
            resp.contains("kafka_gateway_requests_total{api=\"Produce\"} 1"),
            "{resp}"
        );
        let (head, body) = resp.split_once("\r\n\r\n").expect("head and body");
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );

        let resp = get(admin.addr, "/healthz").await;
        assert!(
            resp.starts_with("HTTP/1.1 200 OK\r\n") && resp.ends_with("\r\n\r\nok\n"),
            "{resp}"
        );

        let resp = get(admin.addr, "/readyz").await;
        assert!(resp.starts_with("HTTP/1.1 503 "), "{resp}");
        admin.ready.store(true, Ordering::Release);
        let resp = get(admin.addr, "/readyz?verbose=1").await;
        assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");

        let resp = get(admin.addr, "/nope").await;
        assert!(resp.starts_with("HTTP/1.1 404 "), "{resp}");

        let resp = exchange(admin.addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(
            resp.starts_with("HTTP/1.1 405 ") && resp.contains("Allow: GET, HEAD\r\n"),
            "{resp}"
        );

        let resp = exchange(admin.addr, b"HEAD /healthz HTTP/1.1\r\n\r\n").await;
        assert!(
            resp.starts_with("HTTP/1.1 200 ") && resp.ends_with("\r\n\r\n"),
            "{resp}"
        );

        admin
            .shutdown
            .send(true)
            .expect("admin server still listening");
        tokio::time::timeout(Duration::from_secs(5), admin.task)
            .await
            .expect("admin server stops on shutdown")
            .expect("admin task does not panic");
    }

    #[tokio::test]
    async fn admin_survives_garbage_and_oversized_requests() {
        let admin = start_admin(ADMIN_LIMITS).await;

        let resp = exchange(admin.addr, b"\x00\xff\xfe garbage \x01\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 400 "), "{resp}");

        let resp = exchange(admin.addr, b"GET /metrics\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 400 "), "{resp}");

        let oversized = vec![b'A'; 3 * MAX_HEAD_BYTES];
        let resp = exchange(admin.addr, &oversized).await;
        assert!(resp.starts_with("HTTP/1.1 431 "), "{resp}");

        // Connect and hang up without sending anything.
        drop(TcpStream::connect(admin.addr).await.expect("connect"));

        // Half a request, then the client closes its side.
        let mut stream = TcpStream::connect(admin.addr).await.expect("connect");
        stream.write_all(b"GET /heal").await.expect("send");
        stream.shutdown().await.expect("half close");
        let mut resp = Vec::new();
        stream.read_to_end(&mut resp).await.expect("read");
        assert!(
            resp.starts_with(b"HTTP/1.1 400 "),
            "{}",
            String::from_utf8_lossy(&resp)
        );

        // Terminator split across two writes still completes the head.
        let mut stream = TcpStream::connect(admin.addr).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n\r")
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.write_all(b"\n").await.expect("send");
        let mut resp = Vec::new();
        stream.read_to_end(&mut resp).await.expect("read");
        assert!(
            resp.starts_with(b"HTTP/1.1 200 "),
            "{}",
            String::from_utf8_lossy(&resp)
        );

        // After all that the server still answers normally.
        let resp = get(admin.addr, "/healthz").await;
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        admin.task.abort();
    }

    #[tokio::test]
    async fn admin_times_out_silent_clients() {
        let limits = AdminLimits {
            head_deadline: Duration::from_millis(200),
            ..ADMIN_LIMITS
        };
        let admin = start_admin(limits).await;
        let resp = exchange(admin.addr, b"GET /metrics HTTP/1.1\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 408 "), "{resp}");
        admin.task.abort();
    }

    #[tokio::test]
    async fn admin_stops_when_shutdown_sender_is_dropped() {
        let admin = start_admin(ADMIN_LIMITS).await;
        drop(admin.shutdown);
        tokio::time::timeout(Duration::from_secs(5), admin.task)
            .await
            .expect("admin server stops when the shutdown sender goes away")
            .expect("admin task does not panic");
    }

    #[test]
    fn head_terminator_detection() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(api_slot(-5), OTHER_API_SLOT);
        assert_eq!(api_slot(128), OTHER_API_SLOT);
        assert_eq!(api_slot(127), 127);
    }
}
