use super::*;

fn window(samples: u32) -> WindowConfig {
    WindowConfig {
        samples,
        window_ms: 1000,
    }
}

/// The window a fresh rate with `samples` samples measures over: `samples - 1` whole windows,
/// as in `QuotaUtilsTest.quotaViolationException`.
fn fresh_window(samples: u32) -> u64 {
    Rate::new(window(samples)).window_size(0)
}

// QuotaUtilsTest
#[test]
fn throttle_time_is_zero_at_or_below_the_quota() {
    assert_eq!(throttle_time(16.5, 16.5, fresh_window(10)), 0);
    assert_eq!(throttle_time(16.5, 16.5, fresh_window(11)), 0);
    assert_eq!(throttle_time(16.5, 20.4, fresh_window(10)), 0);
}

#[test]
fn throttle_time_above_the_quota_is_proportional_to_the_window() {
    assert_eq!(throttle_time(100.0, 50.0, fresh_window(3)), 2000);
    // boundedThrottleTime: above the quota, below and above the limit
    assert_eq!(throttle_time(55.0, 50.0, fresh_window(2)).min(1000), 100);
    assert_eq!(throttle_time(100.0, 50.0, fresh_window(10)).min(1000), 1000);
}

// ClientQuotaManagerTest.testQuotaViolation: quota 500 B/s, 11 samples of 1 s.
#[test]
fn kafka_quota_violation_case() {
    let mut r = Rate::new(WindowConfig::default());
    let mut now = 0;
    for _ in 0..10 {
        assert_eq!(r.record_and_throttle(400.0, 500.0, now, u64::MAX), 0);
        now += 1000;
    }
    // 400*10 + 2000 + 300 = 6300 / 10.5 s = 600 B/s; (600-500)/500 * 10.5 s = 2100 ms.
    now += 500;
    assert_eq!(r.record_and_throttle(2300.0, 500.0, now, u64::MAX), 2100);
    now += 2100;
    // Still throttled until the bursty sample rolls over...
    for _ in 0..10 {
        r.record_and_throttle(400.0, 500.0, now, u64::MAX);
        now += 1000;
    }
    assert_eq!(
        r.record_and_throttle(0.0, 500.0, now, u64::MAX),
        0,
        "unthrottled once the bursty sample has rolled over"
    );
}

#[test]
fn a_young_sensor_counts_samples_minus_one_windows() {
    let mut r = Rate::new(WindowConfig::default());
    r.record(10_000.0, 0);
    assert_eq!(r.window_size(0), 10_000);
    assert!((r.measure(0) - 1000.0).abs() < 1e-9);
    assert!(r.idle(11_000));
    assert_eq!(r.window_size(12_500), 10_000, "expired samples start over");
}

/// A client that always sends again as soon as its throttle ends averages the quota over a
/// long run (the first burst is the `samples - 1` windows a young sensor allows).
#[test]
fn a_client_that_honours_throttles_averages_its_quota() {
    let (quota, request) = (100_000.0, 16_384.0);
    let mut r = Rate::new(WindowConfig::default());
    let (mut now, mut sent) = (0u64, 0.0);
    while now < 120_000 {
        let t = r.record_and_throttle(request, quota, now, u64::MAX);
        sent += request;
        now += t.max(5);
    }
    let rate = sent / (now as f64 / 1000.0);
    assert!(
        (rate - quota).abs() / quota < 0.1,
        "rate {rate} vs quota {quota}"
    );
}
