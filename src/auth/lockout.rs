//! Brute-force protection: counts failed logins per principal name and per client address, and
//! refuses logins for a while once either has too many failures within a window.
//!
//! Counting is by fixed window: the first failure opens a window of `window`; reaching
//! `max_failures` inside it locks the name (or address) for `duration`, after which counting
//! starts afresh. Time is passed in (`now`), so the logic is testable with a fake clock.
//!
//! IPv6 clients are counted per /64 (one subscriber's allocation; per-address counting would let
//! one client rotate through 2^64 addresses), IPv4-mapped IPv6 addresses as their IPv4 address.
//!
//! Memory is bounded: at most `max_entries` names and `max_entries` addresses are tracked. When a
//! table is full, entries whose window and lock have both passed are dropped first, then the
//! least recently seen unlocked entry, and only if every entry is locked the least recently seen
//! locked one. Flooding the table with fresh names can therefore, at worst, free a locked name
//! early; raise `max_entries` if that matters more than memory.
//!
//! Locking by name lets anyone who knows a user name lock that user out (denial of service);
//! that is the usual trade-off against online password guessing.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Lockout settings. `max_failures = 0` disables lockout entirely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failures within `window` that trigger a lockout; 0 disables the feature.
    pub max_failures: u32,
    /// The same for one client address (IPv6 per /64); 0 disables address lockout. Kept separate and
    /// higher than the per-name limit: many clients can share an address (NAT), and one of them
    /// guessing must not lock the others out for long.
    pub max_failures_per_ip: u32,
    /// How long failures are counted together.
    pub window: Duration,
    /// How long a lockout lasts.
    pub duration: Duration,
    /// Most names, and most addresses, tracked at once (at least 1).
    pub max_entries: usize,
}

/// Failure counters, shared by all connections of a listener (`Arc<Lockout>`).
#[derive(Debug)]
pub struct Lockout {
    config: LockoutConfig,
    tables: Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    users: Table<String>,
    ips: Table<IpAddr>,
}

#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Counter>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            entries: HashMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    window_start: Instant,
    failures: u32,
    /// Start of the current lockout, if one was triggered.
    locked_at: Option<Instant>,
    last_seen: Instant,
}

impl Lockout {
    pub fn new(config: LockoutConfig) -> Lockout {
        Lockout {
            config,
            tables: Mutex::new(Tables::default()),
        }
    }

    pub fn config(&self) -> &LockoutConfig {
        &self.config
    }

    fn enabled(&self) -> bool {
        self.config.max_failures > 0 || self.config.max_failures_per_ip > 0
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock leaves counters that are at worst slightly off; keep
        // protecting logins rather than failing every one.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether logins by `user` (if known yet) or from `ip` are currently refused.
    pub fn is_locked(&self, user: Option<&str>, ip: IpAddr, now: Instant) -> bool {
        if !self.enabled() {
            return false;
        }
        let tables = self.tables();
        let locked = |c: Option<&Counter>| c.is_some_and(|c| self.locked(c, now));
        locked(user.and_then(|u| tables.users.entries.get(u)))
            || locked(tables.ips.entries.get(&ip_key(ip)))
    }

    /// Counts a failed login against `user` (if the client got as far as naming one) and `ip`.
    /// Failures while already locked are not counted (they do not extend the lockout).
    pub fn record_failure(&self, user: Option<&str>, ip: IpAddr, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut tables = self.tables();
        let (per_user, per_ip) = (self.config.max_failures, self.config.max_failures_per_ip);
        if let (Some(user), true) = (user, per_user > 0) {
            match tables.users.entries.get_mut(user) {
                Some(counter) => self.fail(counter, now, per_user),
                None => {
                    let counter = self.first_failure(now, per_user);
                    self.insert(&mut tables.users, user.to_string(), counter, now);
                }
            }
        }
        if per_ip > 0 {
            let ip = ip_key(ip);
            match tables.ips.entries.get_mut(&ip) {
                Some(counter) => self.fail(counter, now, per_ip),
                None => {
                    let counter = self.first_failure(now, per_ip);
                    self.insert(&mut tables.ips, ip, counter, now);
                }
            }
        }
    }

    /// A successful login clears `user`'s failure count (an active lockout stays). The
    /// address's count is kept: one success from an address does not excuse its other guesses.
    pub fn record_success(&self, user: &str, _ip: IpAddr, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut tables = self.tables();
        let Some(counter) = tables.users.entries.get_mut(user) else {
            return;
        };
        if self.locked(counter, now) {
            counter.failures = 0;
        } else {
            tables.users.entries.remove(user);
        }
    }

    /// Number of tracked (names, addresses); for metrics and tests.
    pub fn tracked(&self) -> (usize, usize) {
        let tables = self.tables();
        (tables.users.entries.len(), tables.ips.entries.len())
    }

    fn locked(&self, counter: &Counter, now: Instant) -> bool {
        counter
            .locked_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.config.duration)
    }

    fn first_failure(&self, now: Instant, limit: u32) -> Counter {
        let mut counter = Counter {
            window_start: now,
            failures: 0,
            locked_at: None,
            last_seen: now,
        };
        self.fail(&mut counter, now, limit);
        counter
    }

    fn fail(&self, counter: &mut Counter, now: Instant, limit: u32) {
        counter.last_seen = counter.last_seen.max(now);
        if self.locked(counter, now) {
            return;
        }
        if counter.locked_at.is_some()
            || now.saturating_duration_since(counter.window_start) >= self.config.window
        {
            // The lockout or the window is over: start counting afresh.
            counter.locked_at = None;
            counter.window_start = now;
            counter.failures = 0;
        }
        counter.failures = counter.failures.saturating_add(1);
        if counter.failures >= limit {
            counter.locked_at = Some(now);
            counter.failures = 0;
        }
    }

    /// Whether a counter carries no information any more (window and lockout both over).
    fn stale(&self, counter: &Counter, now: Instant) -> bool {
        !self.locked(counter, now)
            && now.saturating_duration_since(counter.window_start) >= self.config.window
    }

    fn insert<K: Hash + Eq + Clone>(
        &self,
        table: &mut Table<K>,
        key: K,
        counter: Counter,
        now: Instant,
    ) {
        let max = self.config.max_entries.max(1);
        if table.entries.len() >= max {
            table.entries.retain(|_, c| !self.stale(c, now));
        }
        while table.entries.len() >= max {
            // Least recently seen, preferring unlocked entries: `false < true`.
            let victim = table
                .entries
                .iter()
                .min_by_key(|(_, c)| (self.locked(c, now), c.last_seen))
                .map(|(k, _)| k.clone());
            match victim {
                Some(victim) => {
                    table.entries.remove(&victim);
                }
                None => break,
            }
        }
        table.entries.insert(key, counter);
    }
}

/// The address failures are counted under: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6
/// addresses by their /64 prefix.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
#[path = "lockout_tests.rs"]
mod tests;
