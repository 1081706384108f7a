//! Tests of the lockout counters with an injected clock.

use super::*;

use std::net::Ipv4Addr;
use std::sync::Arc;

const SEC: Duration = Duration::from_secs(1);

fn config(max_failures: u32) -> LockoutConfig {
    LockoutConfig {
        max_failures,
        max_failures_per_ip: max_failures,
        window: 60 * SEC,
        duration: 300 * SEC,
        max_entries: 1000,
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

#[test]
fn locks_user_and_ip_after_max_failures_then_expires() {
    let lockout = Lockout::new(config(3));
    let t0 = Instant::now();
    for i in 0..2 {
        lockout.record_failure(Some("alice"), ip(1), t0 + i * SEC);
        assert!(!lockout.is_locked(Some("alice"), ip(1), t0 + i * SEC));
    }
    lockout.record_failure(Some("alice"), ip(1), t0 + 2 * SEC);
    let locked_at = t0 + 2 * SEC;
    // The user is locked from any address, the address for any user.
    assert!(lockout.is_locked(Some("alice"), ip(2), locked_at));
    assert!(lockout.is_locked(Some("bob"), ip(1), locked_at));
    assert!(lockout.is_locked(None, ip(1), locked_at));
    assert!(!lockout.is_locked(Some("bob"), ip(2), locked_at));
    // Until `duration` has passed.
    assert!(lockout.is_locked(Some("alice"), ip(2), locked_at + 299 * SEC));
    assert!(!lockout.is_locked(Some("alice"), ip(2), locked_at + 300 * SEC));
    assert!(!lockout.is_locked(Some("bob"), ip(1), locked_at + 300 * SEC));
    // After a lockout, counting starts afresh.
    let later = locked_at + 301 * SEC;
    lockout.record_failure(Some("alice"), ip(3), later);
    assert!(!lockout.is_locked(Some("alice"), ip(3), later));
}

#[test]
fn failures_outside_the_window_do_not_add_up() {
    let lockout = Lockout::new(config(3));
    let t0 = Instant::now();
    lockout.record_failure(Some("alice"), ip(1), t0);
    lockout.record_failure(Some("alice"), ip(2), t0 + 30 * SEC);
    // The window opened at t0 has closed: this is failure 1 of a new window.
    lockout.record_failure(Some("alice"), ip(3), t0 + 60 * SEC);
    assert!(!lockout.is_locked(Some("alice"), ip(4), t0 + 60 * SEC));
    lockout.record_failure(Some("alice"), ip(4), t0 + 61 * SEC);
    lockout.record_failure(Some("alice"), ip(5), t0 + 62 * SEC);
    assert!(lockout.is_locked(Some("alice"), ip(6), t0 + 62 * SEC));
}

#[test]
fn failures_while_locked_do_not_extend_the_lock() {
    let lockout = Lockout::new(config(2));
    let t0 = Instant::now();
    lockout.record_failure(Some("alice"), ip(1), t0);
    lockout.record_failure(Some("alice"), ip(1), t0);
    for i in 1..10 {
        lockout.record_failure(Some("alice"), ip(1), t0 + i * 10 * SEC);
    }
    assert!(!lockout.is_locked(Some("alice"), ip(1), t0 + 300 * SEC));
}

#[test]
fn success_clears_the_user_counter_but_not_the_ip_counter() {
    let lockout = Lockout::new(config(3));
    let t0 = Instant::now();
    lockout.record_failure(Some("alice"), ip(1), t0);
    lockout.record_failure(Some("alice"), ip(1), t0);
    lockout.record_success("alice", ip(1), t0);
    // alice starts from zero; the address is still at two.
    lockout.record_failure(Some("alice"), ip(2), t0);
    lockout.record_failure(Some("alice"), ip(2), t0);
    assert!(!lockout.is_locked(Some("alice"), ip(3), t0));
    lockout.record_failure(Some("carol"), ip(1), t0);
    assert!(lockout.is_locked(None, ip(1), t0));
    assert!(!lockout.is_locked(Some("carol"), ip(3), t0));
}

#[test]
fn success_does_not_lift_an_active_lock() {
    let lockout = Lockout::new(config(2));
    let t0 = Instant::now();
    lockout.record_failure(Some("alice"), ip(1), t0);
    lockout.record_failure(Some("alice"), ip(1), t0);
    lockout.record_success("alice", ip(2), t0 + SEC);
    assert!(lockout.is_locked(Some("alice"), ip(2), t0 + SEC));
    lockout.record_success("nobody", ip(2), t0 + SEC);
}

#[test]
fn failures_without_a_user_count_against_the_ip() {
    let lockout = Lockout::new(config(2));
    let t0 = Instant::now();
    lockout.record_failure(None, ip(1), t0);
    lockout.record_failure(None, ip(1), t0);
    assert!(lockout.is_locked(Some("alice"), ip(1), t0));
    assert_eq!(lockout.tracked(), (0, 1));
}

#[test]
fn zero_max_failures_disables() {
    let lockout = Lockout::new(config(0));
    let t0 = Instant::now();
    for _ in 0..100 {
        lockout.record_failure(Some("alice"), ip(1), t0);
    }
    assert!(!lockout.is_locked(Some("alice"), ip(1), t0));
    assert_eq!(lockout.tracked(), (0, 0));
}

#[test]
fn one_failure_locks_when_max_is_one() {
    let lockout = Lockout::new(config(1));
    let t0 = Instant::now();
    lockout.record_failure(Some("alice"), ip(1), t0);
    assert!(lockout.is_locked(Some("alice"), ip(2), t0));
}

#[test]
fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
    let lockout = Lockout::new(config(2));
    let t0 = Instant::now();
    let a: IpAddr = "2001:db8:1:2::1".parse().expect("valid");
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("valid");
    let other: IpAddr = "2001:db8:1:3::1".parse().expect("valid");
    lockout.record_failure(None, a, t0);
    lockout.record_failure(None, b, t0);
    assert!(lockout.is_locked(None, a, t0));
    assert!(!lockout.is_locked(None, other, t0));

    let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("valid");
    lockout.record_failure(None, mapped, t0);
    lockout.record_failure(None, ip(7), t0);
    assert!(lockout.is_locked(None, ip(7), t0));
}

#[test]
fn memory_is_bounded_and_locked_entries_are_evicted_last() {
    let lockout = Lockout::new(LockoutConfig {
        max_entries: 3,
        ..config(2)
    });
    let t0 = Instant::now();
    // "victim" is locked first.
    lockout.record_failure(Some("victim"), ip(1), t0);
    lockout.record_failure(Some("victim"), ip(1), t0);
    // A flood of fresh names from many addresses.
    for i in 0..50u8 {
        let name = format!("spray{i}");
        lockout.record_failure(Some(&name), ip(10 + i), t0 + u32::from(i) * SEC);
        let (users, ips) = lockout.tracked();
        assert!(users <= 3 && ips <= 3, "{users} {ips}");
    }
    // Unlocked entries went first, so the lock survived.
    assert!(lockout.is_locked(Some("victim"), ip(200), t0 + 60 * SEC));
}

#[test]
fn stale_entries_are_dropped_before_live_ones() {
    let lockout = Lockout::new(LockoutConfig {
        max_entries: 2,
        ..config(3)
    });
    let t0 = Instant::now();
    lockout.record_failure(Some("old"), ip(1), t0);
    lockout.record_failure(Some("live"), ip(1), t0 + 100 * SEC);
    lockout.record_failure(Some("live"), ip(1), t0 + 101 * SEC);
    // Table full: "old" (window long over) is dropped, "live" keeps its two failures.
    lockout.record_failure(Some("new"), ip(2), t0 + 102 * SEC);
    lockout.record_failure(Some("live"), ip(3), t0 + 103 * SEC);
    assert!(lockout.is_locked(Some("live"), ip(4), t0 + 103 * SEC));
    assert_eq!(lockout.tracked().0, 2);
}

#[test]
fn huge_durations_do_not_overflow() {
    let lockout = Lockout::new(LockoutConfig {
        max_failures: 1,
        max_failures_per_ip: 1,
        window: Duration::MAX,
        duration: Duration::MAX,
        max_entries: 0,
    });
    let t0 = Instant::now();
    lockout.record_failure(Some("alice"), ip(1), t0);
    assert!(lockout.is_locked(Some("alice"), ip(1), t0 + 1_000_000 * SEC));
    // A clock that goes backwards (threads racing to record) does not panic either.
    assert!(lockout.is_locked(Some("alice"), ip(1), t0 - SEC));
}

#[test]
fn concurrent_use() {
    let lockout = Arc::new(Lockout::new(config(1000)));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let lockout = Arc::clone(&lockout);
            std::thread::spawn(move || {
                for i in 0..100 {
                    lockout.record_failure(Some(&format!("u{}", i % 10)), ip(t), t0);
                    let _ = lockout.is_locked(Some("u1"), ip(t), t0);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no panics");
    }
    // 800 failures spread over 10 names: 80 each, under the limit; 8 addresses.
    assert_eq!(lockout.tracked(), (10, 8));
    assert!(!lockout.is_locked(Some("u1"), ip(100), t0));
}

#[test]
fn address_limit_is_separate_from_the_name_limit() {
    let l = Lockout::new(LockoutConfig {
        max_failures: 2,
        max_failures_per_ip: 5,
        window: Duration::from_secs(60),
        duration: Duration::from_secs(60),
        max_entries: 100,
    });
    let ip: IpAddr = [10, 0, 0, 9].into();
    let now = Instant::now();
    l.record_failure(Some("mallory"), ip, now);
    l.record_failure(Some("mallory"), ip, now);
    assert!(l.is_locked(Some("mallory"), ip, now), "name locked after 2");
    assert!(
        !l.is_locked(Some("alice"), ip, now),
        "a neighbour behind the same address is not"
    );
    for _ in 0..3 {
        l.record_failure(Some("eve"), ip, now);
    }
    assert!(
        l.is_locked(Some("alice"), ip, now),
        "address locked after 5 failures in all"
    );
    let no_ip = Lockout::new(LockoutConfig {
        max_failures: 1,
        max_failures_per_ip: 0,
        window: Duration::from_secs(60),
        duration: Duration::from_secs(60),
        max_entries: 100,
    });
    no_ip.record_failure(Some("x"), ip, now);
    assert!(
        !no_ip.is_locked(Some("y"), ip, now),
        "address lockout disabled"
    );
}

#[test]
fn a_flood_keeps_the_eviction_orders_in_step_with_the_table() {
    // Every entry is in exactly the orders its state calls for, whatever mix of locks, windows
    // and evictions a flood of names produces; the lock of the first name survives the flood.
    let lockout = Lockout::new(LockoutConfig {
        max_entries: 500,
        ..config(3)
    });
    let t0 = Instant::now();
    for _ in 0..3 {
        lockout.record_failure(Some("victim"), ip(1), t0);
    }
    for i in 0..20_000u32 {
        let name = format!("spray{}", i % 3_000);
        // 20,000 failures in 200 s: inside the victim's 300-s lockout.
        let at = t0 + Duration::from_millis(u64::from(i) * 10);
        lockout.record_failure(Some(&name), ip((i % 250) as u8), at);
        if i % 7 == 0 {
            lockout.record_success(&name, ip(3), at);
        }
    }
    let tables = lockout.tables();
    for t in [&tables.users.entries.len(), &tables.ips.entries.len()] {
        assert!(*t <= 500, "{t} entries");
    }
    let users = &tables.users;
    assert_eq!(users.by_seen.len(), users.by_window_end.len());
    assert_eq!(
        users.entries.len(),
        users.by_seen.len() + users.by_lock_end.len()
    );
    drop(tables);
    // (From an address the flood never used, so only the name's lock can answer.)
    assert!(lockout.is_locked(Some("victim"), ip(251), t0 + 200 * SEC));
    assert!(!lockout.is_locked(Some("nobody"), ip(251), t0 + 200 * SEC));
}
