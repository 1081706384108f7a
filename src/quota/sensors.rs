//! The usage counted against quotas, shared by every connection of a policy (Kafka's quota
//! sensors): one windowed rate per [`SensorKey`], kept across policy reloads so that a changed
//! quota applies to the usage already seen.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::rate::{Rate, WindowConfig};
use super::rules::SensorKey;

/// Sensors kept before idle ones are dropped; beyond it (after dropping idle ones) new clients
/// share one overflow sensor, so hostile client ids cannot grow the gateway's memory, nor escape
/// their quota: together they get what one client gets (fail closed).
pub const MAX_SENSORS: usize = 100_000;

/// What recording one use decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Throttle {
    /// How long the client is throttled for (0: not throttled).
    pub ms: u64,
    /// The first throttle after a whole window without one: the client starts being throttled
    /// (what the audit trail records, once per episode rather than per request).
    pub started: bool,
}

struct Sensor {
    rate: Rate,
    /// Until when (ms) the last throttle lasts.
    throttled_until: Option<u64>,
}

/// Every sensor of one policy handle.
pub struct QuotaSensors {
    clock: Instant,
    window: WindowConfig,
    sensors: Mutex<Table>,
}

struct Table {
    by_key: HashMap<SensorKey, Sensor>,
    /// Every client that found the table full.
    overflow: Sensor,
}

impl std::fmt::Debug for QuotaSensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaSensors")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Default for QuotaSensors {
    fn default() -> Self {
        QuotaSensors::new(WindowConfig::default())
    }
}

impl QuotaSensors {
    pub fn new(window: WindowConfig) -> QuotaSensors {
        QuotaSensors {
            clock: Instant::now(),
            window,
            sensors: Mutex::new(Table {
                by_key: HashMap::new(),
                overflow: Sensor {
                    rate: Rate::new(window),
                    throttled_until: None,
                },
            }),
        }
    }

    /// Milliseconds on the sensors' clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The sensors' clock at `at`.
    pub fn ms_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.clock).as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant `ms` on the sensors' clock.
    pub fn instant_at(&self, ms: u64) -> Instant {
        self.clock + std::time::Duration::from_millis(ms)
    }

    /// Records `value` in `key`'s sensor at `now` (ms) and returns the throttle for a rate above
    /// `bound`, at most `max_ms`.
    pub fn record(
        &self,
        key: &SensorKey,
        value: f64,
        bound: f64,
        max_ms: u64,
        now: u64,
    ) -> Throttle {
        self.record_inner(key, value, bound, max_ms, now, false)
    }

    /// One connection or login, as Kafka's `ConnectionQuotas` counts a connection: recorded, and
    /// when that puts the rate above `bound`, taken back (the connection is refused, so it does
    /// not count) and the throttle returned.
    pub fn admit(&self, key: &SensorKey, bound: f64, max_ms: u64, now: u64) -> Throttle {
        self.record_inner(key, 1.0, bound, max_ms, now, true)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // The lock guards plain counters: a poisoned one still holds usable numbers.
        self.sensors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes back `value` recorded at `now` in `key`'s sensor (a login one quota admitted and
    /// another refused does not count in either).
    pub fn take_back(&self, key: &SensorKey, value: f64, now: u64) {
        let mut table = self.table();
        let Table { by_key, overflow } = &mut *table;
        by_key
            .get_mut(key)
            .unwrap_or(overflow)
            .rate
            .record(-value, now);
    }

    fn record_inner(
        &self,
        key: &SensorKey,
        value: f64,
        bound: f64,
        max_ms: u64,
        now: u64,
        refused_uncounted: bool,
    ) -> Throttle {
        let mut table = self.table();
        let Table { by_key, overflow } = &mut *table;
        if !by_key.contains_key(key) && by_key.len() >= MAX_SENSORS {
            by_key.retain(|_, s| !s.rate.idle(now));
        }
        let sensor = if by_key.contains_key(key) || by_key.len() < MAX_SENSORS {
            by_key.entry(key.clone()).or_insert_with(|| Sensor {
                rate: Rate::new(self.window),
                throttled_until: None,
            })
        } else {
            overflow
        };
        let ms = sensor.rate.record_and_throttle(value, bound, now, max_ms);
        if ms == 0 {
            return Throttle::default();
        }
        if refused_uncounted {
            sensor.rate.record(-value, now);
        }
        let quiet = u64::from(self.window.samples) * self.window.window_ms;
        let started = sensor
            .throttled_until
            .is_none_or(|until| now >= until.saturating_add(quiet));
        sensor.throttled_until = Some(sensor.throttled_until.unwrap_or(0).max(now + ms));
        Throttle { ms, started }
    }

    /// The number of samples rates are measured over (`quota.window.num`).
    pub fn samples(&self) -> u32 {
        self.window.samples
    }

    /// One window, the cap on request-time throttles (`ClientRequestQuotaManager`).
    pub fn window_ms(&self) -> u64 {
        self.window.window_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::rules::QuotaKind;

    #[test]
    fn throttling_starts_once_per_episode() {
        let s = QuotaSensors::default();
        let key = SensorKey {
            kind: QuotaKind::ProducerByteRate,
            user: Some("alice".into()),
            client: None,
            address: None,
        };
        let other = SensorKey {
            user: Some("bob".into()),
            ..key.clone()
        };
        assert_eq!(
            s.record(&key, 500.0, 100.0, u64::MAX, 0),
            Throttle::default()
        );
        let first = s.record(&key, 1000.0, 100.0, u64::MAX, 10);
        assert!(first.ms > 0 && first.started, "{first:?}");
        let again = s.record(&key, 1000.0, 100.0, u64::MAX, 20);
        assert!(again.ms > first.ms && !again.started, "{again:?}");
        assert_eq!(
            s.record(&other, 500.0, 100.0, u64::MAX, 20),
            Throttle::default()
        );
        // Long after the throttle ended, and the samples rolled over: a new episode.
        let later = s.record(&key, 2000.0, 100.0, u64::MAX, 1_000_000);
        assert!(later.started, "{later:?}");
    }

    #[test]
    fn refused_connections_do_not_count() {
        let s = QuotaSensors::new(crate::quota::rate::WindowConfig {
            samples: 2,
            window_ms: 1000,
        });
        let key = SensorKey {
            kind: QuotaKind::ConnectionCreationRate,
            user: None,
            client: None,
            address: Some([10, 0, 0, 1].into()),
        };
        // Two per second over a window of at least one second: two admitted, the third refused.
        assert_eq!(s.admit(&key, 2.0, 1000, 0).ms, 0);
        assert_eq!(s.admit(&key, 2.0, 1000, 0).ms, 0);
        let refused = s.admit(&key, 2.0, 1000, 0);
        assert!(refused.ms > 0 && refused.started, "{refused:?}");
        // However many more are refused meanwhile, the rate stays at the two admitted: once the
        // window has moved on, a connection is admitted again.
        for _ in 0..50 {
            assert!(s.admit(&key, 2.0, 1000, 10).ms > 0);
        }
        assert_eq!(s.admit(&key, 2.0, 1000, 1500).ms, 0);
    }

    #[test]
    fn clients_beyond_the_table_share_one_quota_rather_than_none() {
        let s = QuotaSensors::default();
        let key = |i: usize| SensorKey {
            kind: QuotaKind::ProducerByteRate,
            user: None,
            client: Some(format!("c{i}")),
            address: None,
        };
        for i in 0..MAX_SENSORS {
            s.record(&key(i), 1.0, 1e12, u64::MAX, 0);
        }
        // None is idle at 0 ms, so two new client ids land in the shared overflow sensor: each
        // alone stays under the bound, together they are throttled.
        assert_eq!(s.record(&key(MAX_SENSORS), 600.0, 100.0, u64::MAX, 0).ms, 0);
        let second = s.record(&key(MAX_SENSORS + 1), 600.0, 100.0, u64::MAX, 0);
        assert!(
            second.ms > 0,
            "overflow clients escaped their quota: {second:?}"
        );
    }
}
