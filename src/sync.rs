//! Shared-state helpers: lock access for the gateway's small pieces of shared state (broker map,
//! credential store), and the gateway-wide bound on concurrent key derivations.

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
/// at once, gateway-wide: one per core, so a login storm cannot take more than the machine's cores
/// nor queue unbounded work on tokio's blocking pool.
pub fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}
