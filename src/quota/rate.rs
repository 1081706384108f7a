//! Kafka's windowed rate (`SampledStat` + `Rate` from `org.apache.kafka.common.metrics`) and
//! `QuotaUtils.throttleTime`, ported line for line so throttle times match a broker's.
//!
//! A rate is the sum of up to `samples + 1` samples (one extra for the sample overlapping the
//! window's start) divided by the time elapsed since the oldest one started, counted as at least
//! `samples - 1` whole windows: a young sensor does not see a huge rate from its first request.
//! Times are milliseconds on any monotonic clock.

/// `quota.window.num` and `quota.window.size.seconds`, as Kafka's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    pub samples: u32,
    pub window_ms: u64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            samples: 11,
            window_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: u64,
    last_event_ms: u64,
    value: f64,
}

impl Sample {
    fn new(now: u64) -> Sample {
        Sample {
            start_ms: now,
            last_event_ms: now,
            value: 0.0,
        }
    }
}

/// A rate over a sliding window of samples (per second).
#[derive(Debug, Clone)]
pub struct Rate {
    config: WindowConfig,
    samples: Vec<Sample>,
    current: usize,
}

impl Rate {
    pub fn new(config: WindowConfig) -> Rate {
        Rate {
            config,
            samples: Vec::with_capacity(config.samples as usize + 1),
            current: 0,
        }
    }

    /// `SampledStat.record`: adds `value` to the current sample, starting a new one when the
    /// current is complete (older than a window).
    pub fn record(&mut self, value: f64, now: u64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now));
        }
        if now.saturating_sub(self.samples[self.current].start_ms) >= self.config.window_ms {
            // One extra placeholder for the sample overlapping the window's start.
            let max = self.config.samples as usize + 1;
            self.current = (self.current + 1) % max;
            if self.current >= self.samples.len() {
                self.samples.push(Sample::new(now));
            } else {
                self.samples[self.current] = Sample::new(now);
            }
        }
        let s = &mut self.samples[self.current];
        s.value += value;
        s.last_event_ms = now;
    }

    /// Samples with no event in the whole window are reset (kept if they overlap it).
    fn purge(&mut self, now: u64) {
        let expire = u64::from(self.config.samples) * self.config.window_ms;
        for s in &mut self.samples {
            if now.saturating_sub(s.last_event_ms) >= expire {
                *s = Sample::new(now);
            }
        }
    }

    /// `Rate.windowSize`: milliseconds since the oldest sample started, at least `samples - 1`
    /// whole windows (plus the current fraction), and at least 1.
    pub fn window_size(&mut self, now: u64) -> u64 {
        self.purge(now);
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now));
        }
        let oldest = self.samples.iter().map(|s| s.start_ms).min().unwrap_or(now);
        let mut elapsed = now.saturating_sub(oldest);
        let full = elapsed / self.config.window_ms;
        let min_full = u64::from(self.config.samples.saturating_sub(1));
        if full < min_full {
            elapsed += (min_full - full) * self.config.window_ms;
        }
        elapsed.max(1)
    }

    /// `Rate.measure` in units per second.
    pub fn measure(&mut self, now: u64) -> f64 {
        let window = self.window_size(now);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (window as f64 / 1000.0)
    }

    /// Records `value`, then, as `Sensor.record` with quota checks followed by
    /// `QuotaUtils.throttleTime`, returns how long (ms) the client is throttled for when the rate
    /// is above `bound` (0 otherwise). `max_ms` caps it (the request quota caps at one window).
    pub fn record_and_throttle(&mut self, value: f64, bound: f64, now: u64, max_ms: u64) -> u64 {
        self.record(value, now);
        let rate = self.measure(now);
        if rate <= bound || bound <= 0.0 {
            return 0;
        }
        throttle_time(rate, bound, self.window_size(now)).min(max_ms)
    }

    /// Has nothing been recorded for a whole window of samples (the sensor may be dropped)?
    pub fn idle(&self, now: u64) -> bool {
        let expire = u64::from(self.config.samples) * self.config.window_ms;
        self.samples
            .iter()
            .all(|s| now.saturating_sub(s.last_event_ms) >= expire)
    }
}

/// `QuotaUtils.throttleTime`: how long until the rate falls back to the bound if nothing more is
/// recorded: `(rate - bound) / bound * window`, rounded.
pub fn throttle_time(rate: f64, bound: f64, window_ms: u64) -> u64 {
    let ms = (rate - bound) / bound * window_ms as f64;
    if ms.is_finite() && ms > 0.0 {
        ms.round() as u64
    } else {
        0
    }
}

#[cfg(test)]
#[path = "rate_tests.rs"]
mod tests;
