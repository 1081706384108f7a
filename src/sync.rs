//! Shared-state helpers: lock access for the gateway's small pieces of shared state (broker map,
//! credential store), and the gateway-wide bounds on concurrent key derivations and upstream logins.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Reads through a poisoned lock: every lock here guards plain data or an `Arc` swap, which a panic
/// elsewhere cannot leave half-written, so the value is still usable and serving beats failing.
pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// Writes through a poisoned lock, for the same reason as [`read`].
pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Key derivations (PBKDF2: a PLAIN login's check, the gateway's own SCRAM login upstream) allowed
/// at once, gateway-wide: one fewer than the cores (at least one), so a login storm always leaves a
/// core to the clients already logged in, and never queues unbounded work on tokio's blocking pool.
pub fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::sync::Semaphore::new(cores.saturating_sub(1).max(1))
    })
}

/// The gateway's own upstream logins (SASL exchanges with brokers) allowed at once. A reconnect
/// storm opens one upstream connection per client connection; beyond this many, logins queue
/// (within the connect deadline) instead of all running together.
pub const UPSTREAM_LOGINS: usize = 32;

pub fn upstream_login_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(UPSTREAM_LOGINS))
}
