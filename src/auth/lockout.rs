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
//! table is full, an entry whose window and lock have both passed is dropped first, then the
//! least recently seen unlocked entry, and only if every entry is locked the one whose lock ends
//! first. Flooding the table with fresh names can therefore, at worst, free a locked name early;
//! raise `max_entries` if that matters more than memory. Each table keeps its entries ordered for
//! those three choices, so an eviction costs O(log n) under the lock, not a scan of the table.
//!
//! Locking by name lets anyone who knows a user name lock that user out (denial of service);
//! that is the usual trade-off against online password guessing.

use std::collections::{BTreeMap, HashMap};
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

/// A point in time that may be "never" (a `Duration::MAX` window or lockout), ordered after
/// every instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deadline {
    At(Instant),
    Never,
}

fn deadline(start: Instant, length: Duration) -> Deadline {
    start
        .checked_add(length)
        .map_or(Deadline::Never, Deadline::At)
}

/// Where an entry sits in the eviction orders: unlocked entries by when their window ends and by
/// when they were last seen, locked ones by when their lock ends. `seq` makes keys unique.
#[derive(Debug, Clone, Copy)]
enum Placed {
    Unlocked { window_end: Deadline, seen: Instant },
    Locked { lock_end: Deadline },
}

#[derive(Debug)]
struct Entry {
    counter: Counter,
    seq: u64,
    placed: Placed,
}

#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
    by_window_end: BTreeMap<(Deadline, u64), K>,
    by_seen: BTreeMap<(Instant, u64), K>,
    by_lock_end: BTreeMap<(Deadline, u64), K>,
    next_seq: u64,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            entries: HashMap::new(),
            by_window_end: BTreeMap::new(),
            by_seen: BTreeMap::new(),
            by_lock_end: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn unindex(&mut self, placed: Placed, seq: u64) {
        match placed {
            Placed::Unlocked { window_end, seen } => {
                self.by_window_end.remove(&(window_end, seq));
                self.by_seen.remove(&(seen, seq));
            }
            Placed::Locked { lock_end } => {
                self.by_lock_end.remove(&(lock_end, seq));
            }
        }
    }

    fn index(&mut self, key: &K, counter: &Counter, seq: u64, config: &LockoutConfig) -> Placed {
        let placed = match counter.locked_at {
            Some(at) => Placed::Locked {
                lock_end: deadline(at, config.duration),
            },
            None => Placed::Unlocked {
                window_end: deadline(counter.window_start, config.window),
                seen: counter.last_seen,
            },
        };
        match placed {
            Placed::Unlocked { window_end, seen } => {
                self.by_window_end.insert((window_end, seq), key.clone());
                self.by_seen.insert((seen, seq), key.clone());
            }
            Placed::Locked { lock_end } => {
                self.by_lock_end.insert((lock_end, seq), key.clone());
            }
        }
        placed
    }

    /// Applies `change` to the entry of `key` (if any) and re-files it in the orders.
    fn update(&mut self, key: &K, config: &LockoutConfig, change: impl FnOnce(&mut Counter)) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        change(&mut entry.counter);
        let (counter, seq, old) = (entry.counter, entry.seq, entry.placed);
        self.unindex(old, seq);
        let placed = self.index(key, &counter, seq, config);
        if let Some(entry) = self.entries.get_mut(key) {
            entry.placed = placed;
        }
    }

    fn remove(&mut self, key: &K) {
        if let Some(entry) = self.entries.remove(key) {
            self.unindex(entry.placed, entry.seq);
        }
    }

    fn add(&mut self, key: K, counter: Counter, config: &LockoutConfig) {
        self.remove(&key);
        let seq = self.next_seq;
        self.next_seq += 1;
        let placed = self.index(&key, &counter, seq, config);
        self.entries.insert(
            key,
            Entry {
                counter,
                seq,
                placed,
            },
        );
    }

    /// Re-files entries whose lock has ended as unlocked: locks end with time, not with a call.
    fn release_ended_locks(&mut self, now: Instant, config: &LockoutConfig) {
        while let Some((&(end, _), key)) = self.by_lock_end.first_key_value() {
            if end > Deadline::At(now) {
                break;
            }
            let key = key.clone();
            self.update(&key, config, |c| {
                c.locked_at = None;
                c.failures = 0;
            });
        }
    }

    /// The entry to drop from a full table (see the module documentation for the order).
    fn victim(&mut self, now: Instant, config: &LockoutConfig) -> Option<K> {
        self.release_ended_locks(now, config);
        if let Some((&(end, _), key)) = self.by_window_end.first_key_value() {
            if end <= Deadline::At(now) {
                return Some(key.clone());
            }
        }
        self.by_seen
            .first_key_value()
            .map(|(_, k)| k.clone())
            .or_else(|| self.by_lock_end.first_key_value().map(|(_, k)| k.clone()))
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
        locked(
            user.and_then(|u| tables.users.entries.get(u))
                .map(|e| &e.counter),
        ) || locked(tables.ips.entries.get(&ip_key(ip)).map(|e| &e.counter))
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
            let key = user.to_string();
            if tables.users.entries.contains_key(&key) {
                tables
                    .users
                    .update(&key, &self.config, |c| self.fail(c, now, per_user));
            } else {
                let counter = self.first_failure(now, per_user);
                self.insert(&mut tables.users, key, counter, now);
            }
        }
        if per_ip > 0 {
            let ip = ip_key(ip);
            if tables.ips.entries.contains_key(&ip) {
                tables
                    .ips
                    .update(&ip, &self.config, |c| self.fail(c, now, per_ip));
            } else {
                let counter = self.first_failure(now, per_ip);
                self.insert(&mut tables.ips, ip, counter, now);
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
        let key = user.to_string();
        let Some(entry) = tables.users.entries.get_mut(&key) else {
            return;
        };
        if self.locked(&entry.counter, now) {
            entry.counter.failures = 0; // no effect on the entry's place in the orders
        } else {
            tables.users.remove(&key);
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

    fn insert<K: Hash + Eq + Clone>(
        &self,
        table: &mut Table<K>,
        key: K,
        counter: Counter,
        now: Instant,
    ) {
        let max = self.config.max_entries.max(1);
        while table.entries.len() >= max {
            match table.victim(now, &self.config) {
                Some(victim) => table.remove(&victim),
                None => break,
            }
        }
        table.add(key, counter, &self.config);
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
