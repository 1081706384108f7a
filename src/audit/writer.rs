//! The audit writer: a cheap-to-clone [`Auditor`] handle that enqueues records without blocking into its
//! own bounded queue, and one tokio task that drains it in batches into the [`Sink`](super::sink).
//!
//! The trail is never silently lossy. In `FailClosed` mode, [`Auditor::record`] returns
//! [`AuditUnavailable`] while the queue is full or the sink is failing (the caller refuses the request
//! with a retriable error); an `audit_failure` record with the number refused is written when the sink
//! recovers. In `BestEffort` mode, records that do not fit are dropped and counted
//! ([`Auditor::dropped_total`]), and an `audit_gap` record with the count and time range follows. A record
//! that was accepted is kept in memory until it is written, through any number of failed attempts.
//! `tracing` is deliberately not involved: its non-blocking appender drops lines when full.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use super::event::FailureMode;
use super::event::{Event, FailureCause, FailureState};
use super::sink::{Pending, Sink, SinkError};
use super::time;

/// When the writer forces records to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Each record is written and fsynced on its own (slow; for trails that must survive power loss
    /// record by record).
    Always,
    /// One fsync per batch the writer drains that holds a record someone waits for (a denial, an
    /// admin operation, an authentication result: the request or answer waits for the trail);
    /// records nobody waits for (allowed data-plane decisions at level `all`, connection records)
    /// are fsynced within [`BATCH_LAZY_SYNC`] (the default policy).
    Batch,
    /// At most one fsync per interval while there is unsynced data (and on rotation, flush, shutdown).
    Interval(Duration),
    /// Left to the OS, except on flush and shutdown.
    Never,
}

/// How long a record nobody waits for may stay unsynced under [`FsyncPolicy::Batch`]. An fsync per
/// such record was most of what audit level `all` cost (issue 13: 26% more gateway CPU than
/// `allow_all`, fdatasync the largest part); nothing waited for it, so a crash lost the same
/// records either way, up to the moment of the crash.
pub const BATCH_LAZY_SYNC: Duration = Duration::from_millis(100);

/// How long records nobody waits for are held before they are written (unless the batch fills or
/// a waited-for record arrives). At audit level `all` every allowed request is a record; waking the
/// blocking writer per few records was most of what remained of that level's cost (issue 13). Not
/// applied under [`FsyncPolicy::Always`], whose point is record-by-record durability.
pub const WRITE_LINGER: Duration = Duration::from_millis(5);

/// Where and how the trail is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub dir: PathBuf,
    /// File names are `<prefix>-<first seq>-<timestamp>.jsonl`.
    pub file_prefix: String,
    /// A file is rotated once it reaches this size (it may exceed it by at most one record).
    pub max_file_bytes: u64,
    /// A file is rotated once it is this old (checked when the next record arrives).
    pub rotate_every: Option<Duration>,
    /// How many files to keep; older ones are deleted at rotation. 0 keeps every file.
    pub retain_files: usize,
    pub fsync: FsyncPolicy,
    pub on_failure: FailureMode,
    /// Records the queue holds before `record` refuses (fail-closed) or drops (best-effort).
    pub queue_capacity: usize,
    /// Most records written with one write call.
    pub batch_max: usize,
}

impl AuditConfig {
    /// Defaults: 64 MiB / daily rotation, keep all files, fsync per batch, fail-closed.
    pub fn new(dir: impl Into<PathBuf>) -> AuditConfig {
        AuditConfig {
            dir: dir.into(),
            file_prefix: "audit".into(),
            max_file_bytes: 64 << 20,
            rotate_every: Some(Duration::from_secs(86_400)),
            retain_files: 0,
            fsync: FsyncPolicy::Batch,
            on_failure: FailureMode::FailClosed,
            queue_capacity: 65_536,
            batch_max: 1024,
        }
    }

    /// All problems at once.
    pub fn validate(&self) -> Result<(), AuditError> {
        let mut problems = Vec::new();
        let p = &self.file_prefix;
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            problems.push(format!(
                "file_prefix {p:?} must be non-empty ASCII letters, digits, '-', '_' or '.'"
            ));
        }
        if self.max_file_bytes < 4096 && !cfg!(test) {
            problems.push("max_file_bytes must be at least 4096".into());
        }
        if self.rotate_every.is_some_and(|d| d.is_zero()) {
            problems.push("rotate_every must be positive".into());
        }
        if self.queue_capacity == 0 {
            problems.push("queue_capacity must be positive".into());
        }
        if self.batch_max == 0 {
            problems.push("batch_max must be positive".into());
        }
        if matches!(self.fsync, FsyncPolicy::Interval(d) if d.is_zero()) {
            problems.push("fsync interval must be positive".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(AuditError::Config(problems.join("; ")))
        }
    }
}

/// The trail cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit config: {0}")]
    Config(String),
    #[error("audit trail in {dir}: {message}")]
    Sink { dir: String, message: String },
}

/// A record could not be accepted. In fail-closed mode the request that needed it must be refused with a
/// retriable error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuditUnavailable {
    #[error("audit queue is full")]
    QueueFull,
    #[error("audit sink is failing")]
    SinkFailing,
    #[error("audit trail is shut down")]
    Closed,
    #[error("audit record not confirmed written within {0:?}")]
    NotWritten(Duration),
}

/// A record accepted by [`Auditor::record_written`]: resolves once the record is in the trail as
/// durably as the fsync policy makes it (`always` and `batch`: fsynced; an interval or `never`:
/// written to the file).
#[must_use = "a fail-closed caller answers nothing before the record is written"]
#[derive(Debug)]
pub struct Written(Option<oneshot::Receiver<()>>);

impl Written {
    /// Nothing to wait for (no trail, or a best-effort one).
    pub fn now() -> Written {
        Written(None)
    }

    /// Waits for the write, at most `deadline`. `Err` if the writer failed the write (the record
    /// stays queued and is written once the sink recovers) or took longer.
    pub async fn wait(self, deadline: Duration) -> Result<(), AuditUnavailable> {
        let Some(rx) = self.0 else { return Ok(()) };
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(AuditUnavailable::SinkFailing),
            Err(_) => Err(AuditUnavailable::NotWritten(deadline)),
        }
    }
}

/// Count and time range of refused or dropped records not yet reported in the trail.
#[derive(Debug, Clone, Copy)]
struct Window {
    count: u64,
    from: SystemTime,
    to: SystemTime,
}

fn add(w: &mut Option<Window>, at: SystemTime) {
    match w {
        Some(w) => {
            w.count += 1;
            w.to = at;
        }
        None => {
            *w = Some(Window {
                count: 1,
                from: at,
                to: at,
            })
        }
    }
}

#[derive(Default)]
struct Windows {
    refused: Option<Window>,
    dropped: Option<Window>,
}

struct Shared {
    mode: FailureMode,
    healthy: AtomicBool,
    closed: AtomicBool,
    dropped_total: AtomicU64,
    refused_total: AtomicU64,
    windows: Mutex<Windows>,
}

impl Shared {
    fn windows(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

enum Control {
    Flush(oneshot::Sender<Result<(), AuditUnavailable>>),
    Shutdown(oneshot::Sender<Result<(), AuditUnavailable>>),
}

struct Inner {
    tx: mpsc::Sender<Pending>,
    ctl: mpsc::UnboundedSender<Control>,
    shared: Arc<Shared>,
    #[cfg(test)]
    fault: Arc<std::sync::atomic::AtomicI64>,
    #[cfg(test)]
    slow_ms: Arc<std::sync::atomic::AtomicU64>,
}

/// Handle to the audit trail. Clone it freely; all clones feed the same writer.
#[derive(Clone)]
pub struct Auditor {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("enabled", &self.inner.is_some())
            .field("healthy", &self.healthy())
            .finish()
    }
}

impl Auditor {
    /// No audit trail: `record` accepts and discards.
    pub fn disabled() -> Auditor {
        Auditor { inner: None }
    }

    /// Opens the trail (continuing the chain of the newest file in `config.dir`, declaring any torn
    /// tail a crash left) and spawns the writer task. Must be called inside a tokio runtime.
    pub fn start(config: AuditConfig) -> Result<(Auditor, JoinHandle<()>), AuditError> {
        Auditor::start_copying(config, None)
    }

    /// Like [`start`](Self::start), handing every line written to `copy` as well (the Kafka copy).
    pub fn start_copying(
        config: AuditConfig,
        copy: Option<Arc<super::copy::CopyQueue>>,
    ) -> Result<(Auditor, JoinHandle<()>), AuditError> {
        config.validate()?;
        let sink_err = |e: SinkError| AuditError::Sink {
            dir: config.dir.display().to_string(),
            message: e.to_string(),
        };
        let mut sink = Sink::open(config.clone(), copy).map_err(sink_err)?;
        // Write the start-up declarations now, so an unwritable trail stops the gateway at start.
        sink.write_pending().map_err(sink_err)?;
        sink.hand_over_copies();
        let shared = Arc::new(Shared {
            mode: config.on_failure,
            healthy: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            dropped_total: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            windows: Mutex::new(Windows::default()),
        });
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        #[cfg(test)]
        let (fault, slow_ms) = (sink.fault.clone(), sink.slow_ms.clone());
        let writer = Writer {
            sink: Some(Box::new(sink)),
            rx,
            ctl: ctl_rx,
            ctl_open: true,
            shared: shared.clone(),
            fsync: config.fsync,
            batch_max: config.batch_max,
            episode: None,
            last_sync: Instant::now(),
            write_at: None,
            waited: false,
        };
        let handle = tokio::spawn(writer.run());
        let inner = Inner {
            tx,
            ctl: ctl_tx,
            shared,
            #[cfg(test)]
            fault,
            #[cfg(test)]
            slow_ms,
        };
        Ok((
            Auditor {
                inner: Some(Arc::new(inner)),
            },
            handle,
        ))
    }

    /// Enqueues a record without blocking. The event time is now.
    ///
    /// `Err` only in fail-closed mode (queue full, sink failing) or after shutdown; in best-effort mode a
    /// record that does not fit is counted as dropped and `Ok` is returned.
    pub fn record(&self, event: Event) -> Result<(), AuditUnavailable> {
        self.enqueue(event, None)
    }

    /// Like [`record`](Self::record), and in fail-closed mode also returns what to wait on before
    /// carrying out what the record describes: fail-closed means written, not merely queued.
    /// Concurrent waiters share one write and one fsync (group commit).
    pub fn record_written(&self, event: Event) -> Result<Written, AuditUnavailable> {
        match &self.inner {
            Some(i) if i.shared.mode == FailureMode::FailClosed => {
                let (tx, rx) = oneshot::channel();
                self.enqueue(event, Some(tx))?;
                Ok(Written(Some(rx)))
            }
            _ => self.enqueue(event, None).map(|()| Written::now()),
        }
    }

    fn enqueue(
        &self,
        event: Event,
        ack: Option<oneshot::Sender<()>>,
    ) -> Result<(), AuditUnavailable> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let shared = &inner.shared;
        let now = SystemTime::now();
        if shared.closed.load(Ordering::Acquire) {
            return Err(AuditUnavailable::Closed);
        }
        if shared.mode == FailureMode::FailClosed && !shared.healthy.load(Ordering::Acquire) {
            self.refuse(now);
            return Err(AuditUnavailable::SinkFailing);
        }
        let mut pending = Pending::at(now, &event);
        pending.ack = ack;
        match inner.tx.try_send(pending) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => match shared.mode {
                FailureMode::FailClosed => {
                    self.refuse(now);
                    Err(AuditUnavailable::QueueFull)
                }
                FailureMode::BestEffort => {
                    shared.dropped_total.fetch_add(1, Ordering::Relaxed);
                    add(&mut shared.windows().dropped, now);
                    Ok(())
                }
            },
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AuditUnavailable::Closed),
        }
    }

    fn refuse(&self, now: SystemTime) {
        if let Some(inner) = &self.inner {
            inner.shared.refused_total.fetch_add(1, Ordering::Relaxed);
            add(&mut inner.shared.windows().refused, now);
        }
    }

    /// Waits until every record accepted before this call is written and fsynced. `Err` if the sink is
    /// failing (the records stay queued and are written when it recovers) or the writer is gone.
    pub async fn flush(&self) -> Result<(), AuditUnavailable> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        inner
            .ctl
            .send(Control::Flush(tx))
            .map_err(|_| AuditUnavailable::Closed)?;
        rx.await.unwrap_or(Err(AuditUnavailable::Closed))
    }

    /// Stops accepting records, writes and fsyncs everything queued, and ends the writer task. `Err` if
    /// queued records could not be written (they are counted in the error log).
    pub async fn shutdown(&self) -> Result<(), AuditUnavailable> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        inner.shared.closed.store(true, Ordering::Release);
        let (tx, rx) = oneshot::channel();
        inner
            .ctl
            .send(Control::Shutdown(tx))
            .map_err(|_| AuditUnavailable::Closed)?;
        rx.await.unwrap_or(Err(AuditUnavailable::Closed))
    }

    /// Whether [`record`](Self::record) refuses now: a fail-closed trail whose sink is failing, or
    /// any trail after shutdown.
    pub fn refuses(&self) -> bool {
        match &self.inner {
            None => false,
            Some(i) => {
                i.shared.closed.load(Ordering::Acquire)
                    || (i.shared.mode == FailureMode::FailClosed
                        && !i.shared.healthy.load(Ordering::Acquire))
            }
        }
    }

    /// False while the sink is failing (fail-closed callers are refused) or after shutdown.
    pub fn healthy(&self) -> bool {
        match &self.inner {
            None => true,
            Some(i) => {
                i.shared.healthy.load(Ordering::Acquire) && !i.shared.closed.load(Ordering::Acquire)
            }
        }
    }

    /// Records dropped in best-effort mode (a metric; each drop is also reported by an audit_gap record).
    pub fn dropped_total(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.shared.dropped_total.load(Ordering::Relaxed))
    }

    /// Records refused in fail-closed mode (the callers refused their requests).
    pub fn refused_total(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.shared.refused_total.load(Ordering::Relaxed))
    }

    /// Test hook: milliseconds every write takes.
    #[cfg(test)]
    pub(crate) fn disk_delay_ms(&self) -> Arc<std::sync::atomic::AtomicU64> {
        match &self.inner {
            Some(i) => i.slow_ms.clone(),
            None => Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Test hook: bytes the sink may still write before failing like a full disk (-1: no limit).
    #[cfg(test)]
    pub(crate) fn disk_budget(&self) -> Arc<std::sync::atomic::AtomicI64> {
        match &self.inner {
            Some(i) => i.fault.clone(),
            None => Arc::new(std::sync::atomic::AtomicI64::new(-1)),
        }
    }
}

/// A sink failure in progress.
struct Episode {
    since: SystemTime,
    error: String,
}

const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

struct Writer {
    /// Moved into a blocking task for each file operation and back.
    sink: Option<Box<Sink>>,
    rx: mpsc::Receiver<Pending>,
    ctl: mpsc::UnboundedReceiver<Control>,
    ctl_open: bool,
    shared: Arc<Shared>,
    fsync: FsyncPolicy,
    batch_max: usize,
    episode: Option<Episode>,
    last_sync: Instant,
    /// Set while records nobody waits for linger before their write ([`WRITE_LINGER`]).
    write_at: Option<Instant>,
    /// A record someone waits for is pending: write without lingering.
    waited: bool,
}

/// The blocking task running a sink operation panicked; the sink is gone.
struct Fatal;

impl Writer {
    async fn run(mut self) {
        let mut backoff = MIN_BACKOFF;
        loop {
            let step = if self.episode.is_some() {
                tokio::select! {
                    biased;
                    c = self.ctl.recv(), if self.ctl_open => self.control_while_failing(c).await,
                    _ = tokio::time::sleep(backoff) => {
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        let r = self.try_recover().await;
                        if self.episode.is_none() {
                            backoff = MIN_BACKOFF;
                        }
                        r.map(|()| true)
                    }
                }
            } else {
                let sync_at = match self.fsync {
                    FsyncPolicy::Interval(d) if self.unsynced() => Some(self.last_sync + d),
                    FsyncPolicy::Batch if self.unsynced() => Some(self.last_sync + BATCH_LAZY_SYNC),
                    _ => None,
                };
                tokio::select! {
                    biased;
                    c = self.ctl.recv(), if self.ctl_open => self.control(c).await,
                    item = self.rx.recv() => match item {
                        Some(p) => {
                            self.push(p);
                            self.drain(self.batch_max.saturating_sub(1));
                            if self.may_linger() {
                                self.write_at.get_or_insert_with(|| Instant::now() + WRITE_LINGER);
                                Ok(true)
                            } else {
                                self.write(false).await.map(|_| true)
                            }
                        }
                        // Every Auditor is gone: write what is left and stop.
                        None => self.write(true).await.map(|_| false),
                    },
                    _ = sleep_until_opt(self.write_at), if self.write_at.is_some() => self.write(false).await.map(|_| true),
                    _ = sleep_until_opt(sync_at), if sync_at.is_some() => self.write(true).await.map(|_| true),
                }
            };
            match step {
                Ok(true) => {}
                Ok(false) | Err(Fatal) => break,
            }
        }
        self.shared.healthy.store(false, Ordering::Release);
        self.shared.closed.store(true, Ordering::Release);
        self.report_unwritten();
    }

    fn unsynced(&self) -> bool {
        self.sink.as_ref().is_some_and(|s| s.has_unsynced())
    }

    /// Whether what is pending may wait [`WRITE_LINGER`] for more records to share its write.
    fn may_linger(&self) -> bool {
        self.fsync != FsyncPolicy::Always
            && !self.waited
            && self
                .sink
                .as_ref()
                .is_some_and(|s| s.pending.len() < self.batch_max)
    }

    fn push(&mut self, p: Pending) {
        self.waited |= p.ack.is_some();
        if let Some(s) = self.sink.as_mut() {
            s.pending.push_back(p);
        }
    }

    /// Moves up to `max` queued records into the sink.
    fn drain(&mut self, max: usize) {
        for _ in 0..max {
            match self.rx.try_recv() {
                Ok(p) => self.push(p),
                Err(_) => break,
            }
        }
    }

    /// Returns whether to keep running.
    async fn control(&mut self, c: Option<Control>) -> Result<bool, Fatal> {
        match c {
            None => {
                self.ctl_open = false;
                Ok(true)
            }
            Some(Control::Flush(reply)) => {
                self.drain(usize::MAX);
                let ok = self.write(true).await?;
                let _ = reply.send(if ok {
                    Ok(())
                } else {
                    Err(AuditUnavailable::SinkFailing)
                });
                Ok(true)
            }
            Some(Control::Shutdown(reply)) => {
                // No more sends can succeed after close(); what is buffered can still be drained.
                self.rx.close();
                self.drain(usize::MAX);
                let ok = self.write(true).await?;
                let _ = reply.send(if ok {
                    Ok(())
                } else {
                    Err(AuditUnavailable::SinkFailing)
                });
                Ok(false)
            }
        }
    }

    async fn control_while_failing(&mut self, c: Option<Control>) -> Result<bool, Fatal> {
        match c {
            None => {
                self.ctl_open = false;
                Ok(true)
            }
            Some(Control::Flush(reply)) => {
                let _ = reply.send(Err(AuditUnavailable::SinkFailing));
                Ok(true)
            }
            Some(Control::Shutdown(reply)) => {
                self.rx.close();
                self.drain(usize::MAX);
                self.try_recover().await?;
                let ok = self.episode.is_none() && self.write(true).await?;
                let _ = reply.send(if ok {
                    Ok(())
                } else {
                    Err(AuditUnavailable::SinkFailing)
                });
                Ok(false)
            }
        }
    }

    /// Adds records for refusals and drops not yet reported.
    fn report_windows(&mut self, failure: Option<Episode>) {
        let (refused, dropped) = {
            let mut w = self.shared.windows();
            (w.refused.take(), w.dropped.take())
        };
        let mode = self.shared.mode;
        let mut events = Vec::new();
        if let Some(ep) = failure {
            events.push(Event::AuditFailure {
                state: FailureState::Recovered,
                mode,
                cause: FailureCause::WriteError,
                error: Some(ep.error),
                since: time::rfc3339(ep.since),
                refused: refused.map_or(0, |w| w.count),
            });
        } else if let Some(w) = refused {
            events.push(Event::AuditFailure {
                state: FailureState::Recovered,
                mode,
                cause: FailureCause::QueueFull,
                error: None,
                since: time::rfc3339(w.from),
                refused: w.count,
            });
        }
        if let Some(w) = dropped {
            events.push(Event::AuditGap {
                dropped: w.count,
                from: time::rfc3339(w.from),
                to: time::rfc3339(w.to),
            });
        }
        for e in events {
            self.push(Pending::new(&e));
        }
    }

    /// Writes what is pending (and fsyncs if `sync`, or as the policy says). Returns false if the sink
    /// failed; the failure episode starts and the records stay pending.
    async fn write(&mut self, sync: bool) -> Result<bool, Fatal> {
        self.write_at = None;
        self.waited = false;
        self.report_windows(None);
        let result = self
            .with_sink(move |s| {
                s.write_pending()?;
                if sync {
                    s.sync()?;
                }
                Ok::<(), SinkError>(())
            })
            .await?;
        if sync || !self.unsynced() {
            self.last_sync = Instant::now();
        }
        self.tell_written(result.is_ok());
        match result {
            Ok(()) => Ok(true),
            Err(e) => {
                self.fail(e);
                Ok(false)
            }
        }
    }

    /// Tells the waiters of the records just written that they are in the trail, or (`ok` false:
    /// the write or its fsync failed, so what reached the disk is unknown) that they are not.
    fn tell_written(&mut self, ok: bool) {
        let waiters = match self.sink.as_mut() {
            Some(s) => {
                s.hand_over_copies();
                s.take_written()
            }
            None => Vec::new(),
        };
        if ok {
            for w in waiters {
                let _ = w.send(());
            }
        }
    }

    fn fail(&mut self, e: SinkError) {
        tracing::error!(error = %e, mode = ?self.shared.mode, "audit: trail sink failed; retrying");
        // Whoever waits on a record not yet written is refused now rather than at its deadline;
        // the records themselves stay queued and are written once the sink recovers.
        if let Some(s) = self.sink.as_mut() {
            s.forget_waiters();
        }
        let since = SystemTime::now();
        self.shared.healthy.store(false, Ordering::Release);
        if self.episode.is_none() {
            // Written first thing once the sink works again, with the time it failed.
            if let Some(s) = self.sink.as_mut() {
                s.pending.push_front(Pending::at(
                    since,
                    &Event::AuditFailure {
                        state: FailureState::Engaged,
                        mode: self.shared.mode,
                        cause: FailureCause::WriteError,
                        error: Some(e.to_string()),
                        since: time::rfc3339(since),
                        refused: 0,
                    },
                ));
            }
            self.episode = Some(Episode {
                since,
                error: e.to_string(),
            });
        }
    }

    /// One recovery attempt: find out what the failed write left, write everything pending to a new file.
    async fn try_recover(&mut self) -> Result<(), Fatal> {
        let result = self
            .with_sink(|s| {
                s.recover()?;
                s.write_pending()?;
                s.sync()
            })
            .await?;
        match result {
            Ok(()) => {
                let ep = self.episode.take();
                if let Some(ep) = &ep {
                    tracing::warn!(since = %time::rfc3339(ep.since), "audit: trail sink recovered");
                }
                self.shared.healthy.store(true, Ordering::Release);
                self.report_windows(ep);
                self.write(true).await?;
            }
            Err(e) => {
                self.tell_written(false);
                tracing::debug!(error = %e, "audit: trail sink still failing");
                if let Some(ep) = self.episode.as_mut() {
                    ep.error = e.to_string();
                }
            }
        }
        Ok(())
    }

    async fn with_sink<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Sink) -> R + Send + 'static,
    ) -> Result<R, Fatal> {
        let Some(mut sink) = self.sink.take() else {
            return Err(Fatal);
        };
        match tokio::task::spawn_blocking(move || {
            let r = f(&mut sink);
            (sink, r)
        })
        .await
        {
            Ok((sink, r)) => {
                self.sink = Some(sink);
                Ok(r)
            }
            Err(e) => {
                tracing::error!(error = %e, "audit: writer task failed; the trail is closed");
                Err(Fatal)
            }
        }
    }

    /// At exit: anything not written is lost, and must at least be loud.
    fn report_unwritten(&mut self) {
        let pending = self.sink.as_ref().map_or(0, |s| s.unwritten());
        let w = self.shared.windows();
        let refused = w.refused.map_or(0, |w| w.count);
        let dropped = w.dropped.map_or(0, |w| w.count);
        if pending + refused as usize + dropped as usize > 0 {
            tracing::error!(
                unwritten = pending,
                refused_unreported = refused,
                dropped_unreported = dropped,
                "audit: writer stopped with records not in the trail"
            );
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
