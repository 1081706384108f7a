//! Quotas on one connection, as a Kafka broker applies them (KIP-219): usage is recorded when a
//! request is read (Produce: its size) or its response is ready (Fetch: the response's size;
//! request time: the gateway's own time on the request), the response goes out at once with
//! `throttle_time_ms` set (the larger of the gateway's and the broker's), and the connection is
//! not read from until the throttle has passed. A Produce with acks=0 has no response: reading
//! is delayed alone.
//!
//! The connection and login rates are admissions rather than usage: a new connection over its
//! address's `connection_creation_rate`, or a login over its principal's or address's
//! `login_rate`, is not counted, held for the throttle time and closed unanswered, as Kafka's
//! `ConnectionQuotas` treats a connection over its address's rate (KIP-612).
//!
//! Request time is the time the gateway spends on a request: from reading it to handing it to the
//! upstream connection, plus from the upstream's response to writing it. The upstream round trip
//! is left out: the broker meters it itself (for the gateway's identity), and a Fetch waiting for
//! data (long poll) is not work, as it is not thread time on a broker.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiKey;

use super::SessionCtx;
use crate::audit::Event;
use crate::auth::Principal;
use crate::protocol::frame::Parts;
use crate::protocol::throttle;
use crate::quota::rules::Applied;
use crate::quota::{QuotaKind, QuotaSensors, QuotaSet, Throttle};

/// What a forwarded request owes its quotas, carried to its response.
#[derive(Debug)]
pub struct Charge {
    principal: Arc<Principal>,
    client_id: String,
    /// The Produce throttle decided when the request was read.
    throttle_ms: u64,
    read_at: Instant,
    /// The gateway's time on the request before it went upstream.
    request_work: Duration,
}

impl Charge {
    /// The request is handed to the upstream connection: its request-side time ends.
    pub fn forwarding(&mut self) {
        self.request_work = self.read_at.elapsed();
    }
}

/// Waits until the connection's throttle has passed (the gateway "mutes" it, as a broker does).
pub async fn wait_unmuted(ctx: &SessionCtx) {
    let until = ctx.stats.quota_muted_until.load(Ordering::Relaxed);
    if until == 0 {
        return;
    }
    let Some(policy) = &ctx.policy else { return };
    let sensors = policy.quota_sensors();
    if sensors.now_ms() < until {
        ctx.metrics.inc("quota_muted_reads_total", &[]);
        tokio::time::sleep_until(sensors.instant_at(until).into()).await;
    }
}

/// `f` on the quotas of the connection's current policy and the sensors they count in; `None`
/// without a policy, or before one has loaded.
fn with_quotas<T>(
    ctx: &SessionCtx,
    f: impl FnOnce(&QuotaSet, &QuotaSensors) -> Option<T>,
) -> Option<T> {
    let policy = ctx.policy.as_ref()?;
    let snapshot = policy.current();
    f(snapshot.engine().policy()?.quotas(), policy.quota_sensors())
}

/// A request was read from an authenticated client: records a Produce's size, and returns what
/// its response owes when some quota of this principal and client id applies to it.
pub fn on_request(
    ctx: &SessionCtx,
    principal: &Arc<Principal>,
    client_id: Option<&str>,
    api: ApiKey,
    size: usize,
    read_at: Instant,
) -> Option<Box<Charge>> {
    with_quotas(ctx, |quotas, sensors| {
        if quotas.is_empty() {
            return None;
        }
        let client_id = client_id.unwrap_or_default();
        let user = user_of(principal);
        let relevant = |k| quotas.for_client(k, user, client_id);
        let produce = (api == ApiKey::Produce)
            .then(|| relevant(QuotaKind::ProducerByteRate))
            .flatten();
        let applies = produce.is_some()
            || (api == ApiKey::Fetch && quotas.has(QuotaKind::ConsumerByteRate))
            || quotas.has(QuotaKind::RequestPercentage);
        if !applies {
            return None;
        }
        let mut charge = Box::new(Charge {
            principal: principal.clone(),
            client_id: client_id.to_string(),
            throttle_ms: 0,
            read_at,
            request_work: Duration::ZERO,
        });
        if let Some(applied) = produce {
            let t = record(ctx, sensors, &charge, &applied, size as f64, u64::MAX);
            // Muted from now: with acks=0 this is the only effect; otherwise the response also
            // says so.
            mute(ctx, sensors, t.ms);
            charge.throttle_ms = t.ms;
        }
        Some(charge)
    })
}

/// The response to a charged request is ready: records the Fetch bytes and the request time,
/// sets `throttle_time_ms` to the largest throttle (the broker's included) and mutes the
/// connection for the gateway's.
pub fn on_response(
    ctx: &SessionCtx,
    charge: Box<Charge>,
    api: ApiKey,
    version: i16,
    frame: Parts,
    received: Instant,
) -> Parts {
    let ms = with_quotas(ctx, |quotas, sensors| {
        let user = user_of(&charge.principal);
        let mut ms = charge.throttle_ms;
        if api == ApiKey::Fetch {
            if let Some(a) = quotas.for_client(QuotaKind::ConsumerByteRate, user, &charge.client_id)
            {
                ms = ms.max(record(ctx, sensors, &charge, &a, frame.len() as f64, u64::MAX).ms);
            }
        }
        if let Some(a) = quotas.for_client(QuotaKind::RequestPercentage, user, &charge.client_id) {
            let work = charge.request_work + received.elapsed();
            // Kafka's nanosToPercentage: percent of one thread for one second.
            let value = work.as_nanos() as f64 * 100.0 / 1e9;
            let max = sensors.window_ms();
            ms = ms.max(record(ctx, sensors, &charge, &a, value, max).ms);
        }
        mute(ctx, sensors, ms);
        Some(ms)
    });
    let Some(ms) = ms.filter(|ms| *ms > 0) else {
        return frame;
    };
    let frame = match api {
        // Small: joined, so the field is in the one part.
        ApiKey::Produce => Parts::one(frame.joined()),
        _ => frame,
    };
    let Some(head) = frame.iter().next() else {
        return frame;
    };
    let Some(at) = throttle::field_at(api, version, head) else {
        return frame;
    };
    let upstream = throttle::read(api, version, head).unwrap_or(0);
    let ours = i32::try_from(ms).unwrap_or(i32::MAX);
    if ours > upstream {
        throttle::set(frame, at, ours)
    } else {
        frame
    }
}

/// The largest Fetch response a consumer under a `consumer_byte_rate` quota may ask for: what the
/// quota allows over all but one of the quota's samples, as Kafka's `maxValueInQuotaWindow`, so a
/// throttled consumer gets several short throttles rather than one long one.
pub fn fetch_cap(ctx: &SessionCtx, principal: &Principal, client_id: Option<&str>) -> Option<i32> {
    with_quotas(ctx, |quotas, sensors| {
        if !quotas.has(QuotaKind::ConsumerByteRate) {
            return None;
        }
        let applied = quotas.for_client(
            QuotaKind::ConsumerByteRate,
            user_of(principal),
            client_id.unwrap_or_default(),
        )?;
        let window_s = sensors.window_ms() as f64 / 1000.0;
        let bytes = applied.bound * f64::from(sensors.samples().saturating_sub(1)) * window_s;
        // Saturating, as `Double.toInt`.
        Some(bytes as i32)
    })
}

fn user_of(p: &Principal) -> Option<&str> {
    (p.kind == "User").then_some(p.name.as_str())
}

fn mute(ctx: &SessionCtx, sensors: &QuotaSensors, ms: u64) {
    if ms > 0 {
        let until = sensors.now_ms() + ms;
        ctx.stats
            .quota_muted_until
            .fetch_max(until, Ordering::Relaxed);
    }
}

/// Records `value` against `applied`, with its metrics and, when throttling starts, its audit
/// record.
fn record(
    ctx: &SessionCtx,
    sensors: &QuotaSensors,
    charge: &Charge,
    applied: &Applied<'_>,
    value: f64,
    max_ms: u64,
) -> Throttle {
    let now = sensors.now_ms();
    let t = sensors.record(&applied.key, value, applied.bound, max_ms, now);
    if t.ms > 0 {
        ctx.metrics.inc(
            "quota_throttled_responses_total",
            &[
                ("quota", applied.key.kind.name()),
                ("principal", &charge.principal.to_string()),
            ],
        );
        throttled(
            ctx,
            applied,
            t,
            Some(charge.principal.to_string()),
            &charge.client_id,
        );
    }
    t
}

/// A new connection from `ip`: how long to hold it before closing it unread when it is over its
/// address's `connection_creation_rate` (Kafka's `ConnectionQuotas`: the throttle, at most one
/// quota window), `None` to serve it.
pub fn on_connection(ctx: &SessionCtx, ip: IpAddr) -> Option<Duration> {
    with_quotas(ctx, |quotas, sensors| {
        let ip = crate::policy::files::canonical_ip(ip);
        let applied = quotas.for_address(QuotaKind::ConnectionCreationRate, ip)?;
        admit(ctx, sensors, &[applied], None)
    })
}

/// A login (not a re-authentication) of `principal` from the connection's address: how long to
/// hold the connection before closing it unanswered when it is over the principal's or the
/// address's `login_rate`, `None` to go on.
pub fn on_login(ctx: &SessionCtx, principal: &Principal) -> Option<Duration> {
    with_quotas(ctx, |quotas, sensors| {
        if !quotas.has(QuotaKind::LoginRate) {
            return None;
        }
        let ip = crate::policy::files::canonical_ip(ctx.peer.ip());
        let applied: Vec<Applied<'_>> = user_of(principal)
            .and_then(|u| quotas.for_login(u))
            .into_iter()
            .chain(quotas.for_address(QuotaKind::LoginRate, ip))
            .collect();
        admit(ctx, sensors, &applied, Some(principal.to_string()))
    })
}

/// Counts one connection or login in each of `applied`; if one refuses it, it counts in none and
/// the throttle is returned.
fn admit(
    ctx: &SessionCtx,
    sensors: &QuotaSensors,
    applied: &[Applied<'_>],
    principal: Option<String>,
) -> Option<Duration> {
    let now = sensors.now_ms();
    // Kafka's ConnectionQuotas caps the delay at one quota window.
    let max = sensors.window_ms();
    for (i, a) in applied.iter().enumerate() {
        let t = sensors.admit(&a.key, a.bound, max, now);
        if t.ms == 0 {
            continue;
        }
        for earlier in &applied[..i] {
            sensors.take_back(&earlier.key, 1.0, now);
        }
        ctx.metrics.connection_rejected(a.key.kind.name());
        tracing::debug!(
            peer = %ctx.peer, principal = principal.as_deref().unwrap_or("-"),
            quota = a.key.kind.name(), limit = a.bound, throttle_ms = t.ms,
            "quota: connection over its rate, closed after the throttle"
        );
        throttled(ctx, a, t, principal, "");
        return Some(Duration::from_millis(t.ms));
    }
    None
}

/// A throttle's metrics and, when an episode starts, its log line and audit record.
fn throttled(
    ctx: &SessionCtx,
    applied: &Applied<'_>,
    t: Throttle,
    principal: Option<String>,
    client_id: &str,
) {
    let quota = applied.key.kind.name();
    let who = principal.as_deref().unwrap_or("-");
    let labels = [("quota", quota), ("principal", who)];
    ctx.metrics
        .add("quota_throttle_time_ms_total", &labels, t.ms);
    if !t.started {
        return;
    }
    ctx.metrics.inc("quota_throttle_episodes_total", &labels);
    tracing::info!(
        peer = %ctx.peer, principal = who, client_id, quota,
        limit = applied.bound, throttle_ms = t.ms, rule = %applied.rule.source,
        "quota: client throttled"
    );
    // Best effort, as the denial summaries: a throttle is not a decision to fail closed on.
    let _ = ctx.audit.record(Event::QuotaThrottle {
        conn: ctx.conn.clone(),
        principal,
        client_id: (!client_id.is_empty()).then(|| client_id.to_string()),
        quota: quota.to_string(),
        limit: applied.bound.to_string(),
        throttle_ms: t.ms,
        rule: applied.rule.source.to_string(),
    });
}

/// Holds a connection refused by a rate for `hold` (or until shutdown), so that a client retrying
/// at once cannot turn the refusal into a busy loop; the caller then closes it.
pub async fn hold_refused(ctx: &SessionCtx, hold: Duration) {
    let mut shutdown = ctx.shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(hold) => {}
        _ = shutdown.wait_for(|s| *s) => {}
    }
}
