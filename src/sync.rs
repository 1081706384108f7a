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

/// How many key derivations run at once: one fewer than the cores (at least one).
fn hashing_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// Key derivations (PBKDF2: a PLAIN login's check, the gateway's own SCRAM login upstream) allowed
/// at once, gateway-wide: one per hashing thread, so a login storm always leaves a core to the
/// clients already logged in and never queues unbounded work. Hold a slot across
/// [`on_hashing_thread`].
pub fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(hashing_threads()))
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs a key derivation on one of the gateway's hashing threads and waits for it. Those threads run
/// at a lower CPU priority (nice 10) than the ones serving clients: under a login storm the kernel
/// serves logged-in clients first and the logins take what is left. `None` if the job panicked.
pub async fn on_hashing_thread<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    static POOL: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..hashing_threads() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("kgw-hash-{i}"))
                .spawn(move || {
                    // Per thread on Linux; failing to lower it only costs the priority.
                    let _ =
                        rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        let Ok(job) = job else { return };
                        // A panicking job loses its answer (its caller sees `None`), not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a hashing thread");
            }
        }
        std::sync::Mutex::new(tx)
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    let sent = pool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send(job);
    if sent.is_err() {
        return None;
    }
    rx.await.ok()
}

/// The gateway's own upstream logins (SASL exchanges with brokers) allowed at once. A reconnect
/// storm opens one upstream connection per client connection; beyond this many, logins queue
/// (within the connect deadline) instead of all running together.
pub const UPSTREAM_LOGINS: usize = 32;

pub fn upstream_login_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(UPSTREAM_LOGINS))
}
