//! Watches the free space on the audit trail's disk, so that a trail about to fill says so in
//! metrics and logs before a fail-closed gateway starts refusing everyone (issue 11 item 9).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;

/// How often the free space is read.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Bytes an unprivileged writer may still use on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// A change of state worth one log line.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Low,
    Recovered,
}

/// Low-space state with hysteresis: low below `threshold`, recovered only above 1.25 times it, so
/// a trail hovering at the line does not log on every reading.
#[derive(Debug, Default)]
pub struct Watch {
    low: bool,
}

impl Watch {
    pub fn is_low(&self) -> bool {
        self.low
    }

    pub fn observe(&mut self, free: u64, threshold: u64) -> Option<Change> {
        if !self.low && free < threshold {
            self.low = true;
            return Some(Change::Low);
        }
        if self.low && free > threshold.saturating_add(threshold / 4) {
            self.low = false;
            return Some(Change::Recovered);
        }
        None
    }
}

/// Reads the free space every [`INTERVAL`] until `shutdown`: gauges `audit_disk_free_bytes` and
/// `audit_disk_low` (1 below `threshold`), and a warning when it goes low.
pub async fn watch(
    dir: PathBuf,
    threshold: u64,
    fail_closed: bool,
    metrics: Arc<Metrics>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut state = Watch::default();
    loop {
        match free_bytes(&dir) {
            Ok(free) => {
                metrics.set_gauge(
                    "audit_disk_free_bytes",
                    "Bytes free for the audit trail on its filesystem.",
                    free,
                );
                match state.observe(free, threshold) {
                    Some(Change::Low) if fail_closed => tracing::warn!(
                        dir = %dir.display(), free, threshold,
                        "audit trail disk is nearly full: once it is, fail-closed refuses every request that needs a record; free space or raise retention limits"
                    ),
                    Some(Change::Low) => tracing::warn!(
                        dir = %dir.display(), free, threshold,
                        "audit trail disk is nearly full: once it is, records are dropped (best-effort)"
                    ),
                    Some(Change::Recovered) => {
                        tracing::info!(dir = %dir.display(), free, "audit trail disk has room again")
                    }
                    None => {}
                }
                metrics.set_gauge(
                    "audit_disk_low",
                    "1 while the audit trail's disk has less than audit.warn_free_bytes free.",
                    u64::from(state.is_low()),
                );
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read the audit trail disk's free space")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_space_is_announced_once_and_recovers_past_a_margin() {
        let mut w = Watch::default();
        assert_eq!(w.observe(1_000, 100), None);
        assert_eq!(w.observe(99, 100), Some(Change::Low));
        assert_eq!(w.observe(50, 100), None, "said once");
        assert_eq!(w.observe(110, 100), None, "within the margin: still low");
        assert!(w.is_low());
        assert_eq!(w.observe(126, 100), Some(Change::Recovered));
        assert!(!w.is_low());
    }

    #[test]
    fn the_free_space_of_a_real_directory_is_read() {
        let free = free_bytes(&std::env::temp_dir()).expect("statvfs");
        assert!(free > 0);
        assert!(free_bytes(Path::new("/nonexistent/kgw")).is_err());
    }
}
