//! Quotas on one connection, as a Kafka broker applies them (KIP-219): usage is recorded when a
//! request is read (Produce: its size) or its response is ready (Fetch: the response's size;
//! request time: the gateway's own time on the request), the response goes out at once with
//! `throttle_time_ms` set (the larger of the gateway's and the broker's), and the connection is
//! not read from until the throttle has passed. A Produce with acks=0 has no response: reading
//! is delayed alone.
//!
//! Request time is the time the gateway spends on a request: from reading it to handing it to the
//! upstream connection, plus from the upstream's response to writing it. The upstream round trip
//! is left out: the broker meters it itself (for the gateway's identity), and a Fetch waiting for
//! data (long poll) is not work, as it is not thread time on a broker.

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
use crate::quota::{QuotaKind, QuotaSensors, Throttle};

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
    let policy = ctx.policy.as_ref()?;
    let snapshot = policy.current();
    let quotas = snapshot.engine().policy()?.quotas();
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
        let sensors = policy.quota_sensors();
        let t = record(ctx, sensors, &charge, &applied, size as f64, u64::MAX);
        // Muted from now: with acks=0 this is the only effect; otherwise the response also says so.
        mute(ctx, sensors, t.ms);
        charge.throttle_ms = t.ms;
    }
    Some(charge)
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
    let Some(policy) = &ctx.policy else {
        return frame;
    };
    let snapshot = policy.current();
    let Some(set) = snapshot.engine().policy() else {
        return frame;
    };
    let quotas = set.quotas();
    let sensors = policy.quota_sensors();
    let user = user_of(&charge.principal);
    let mut ms = charge.throttle_ms;
    if api == ApiKey::Fetch {
        if let Some(a) = quotas.for_client(QuotaKind::ConsumerByteRate, user, &charge.client_id) {
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
    if ms == 0 {
        return frame;
    }
    mute(ctx, sensors, ms);
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
    if t.ms == 0 {
        return t;
    }
    let quota = applied.key.kind.name();
    let principal = charge.principal.to_string();
    let labels = [("quota", quota), ("principal", principal.as_str())];
    ctx.metrics.inc("quota_throttled_responses_total", &labels);
    ctx.metrics
        .add("quota_throttle_time_ms_total", &labels, t.ms);
    if t.started {
        ctx.metrics.inc("quota_throttle_episodes_total", &labels);
        tracing::info!(
            principal = %principal, client_id = %charge.client_id, quota,
            limit = applied.bound, throttle_ms = t.ms, rule = %applied.rule.source,
            "quota: client throttled"
        );
        // Best effort, as the denial summaries: a throttle is not a decision to fail closed on.
        let _ = ctx.audit.record(Event::QuotaThrottle {
            conn: ctx.conn.clone(),
            principal,
            client_id: (!charge.client_id.is_empty()).then(|| charge.client_id.clone()),
            quota: quota.to_string(),
            limit: applied.bound.to_string(),
            throttle_ms: t.ms,
            rule: applied.rule.source.to_string(),
        });
    }
    t
}
