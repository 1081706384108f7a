//! Lock helpers shared by the gateway's small pieces of shared state (broker map, credential store).

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
