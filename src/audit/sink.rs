//! The file side of the writer, synchronous and owned by one task at a time: chains records, writes them
//! to the current file, rotates by size and age, applies retention, and recovers from crashes and failed
//! writes without ever rewriting a byte already written.
//!
//! Files are named `<prefix>-<first seq, 20 digits>-<UTC YYYYMMDDTHHMMSS.ffffffZ>.jsonl`, so a plain
//! sort by name is chain order. A new file is started at every start-up and after every write failure, so
//! the writer only ever appends to a file it created in this run, after a tail it knows is complete.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::copy::{CopyQueue, GapReason};
use super::event::{DeletedFile, Event, TornCause};
use super::record::{self, encode_body, encode_line, sha256_hex, GENESIS};
use super::time;
use super::writer::{AuditConfig, FsyncPolicy};

/// What one write call carries at most: a batch of a thousand records is written in pieces of
/// this size (and fsynced once), so the encoding buffer stays this small instead of growing to
/// hold the whole batch.
const WRITE_CHUNK_BYTES: usize = 64 * 1024;

/// One record waiting to be written: when it happened, its serialized event, and who waits for it
/// to be written (fail-closed callers answer nothing before that).
#[derive(Debug)]
pub(crate) struct Pending {
    pub ts: SystemTime,
    pub body: Vec<u8>,
    pub ack: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Pending {
    pub fn new(event: &Event) -> Pending {
        Pending::at(SystemTime::now(), event)
    }

    pub fn at(ts: SystemTime, event: &Event) -> Pending {
        Pending {
            ts,
            body: encode_body(event),
            ack: None,
        }
    }
}

/// A trail file name's parts.
pub fn parse_file_name(name: &str) -> Option<(&str, u64)> {
    let stem = name.strip_suffix(".jsonl")?;
    // <prefix>-<20 digits>-<timestamp>; the prefix may itself contain '-'.
    let (rest, _ts) = stem.rsplit_once('-')?;
    let (prefix, seq) = rest.rsplit_once('-')?;
    if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((prefix, seq.parse().ok()?))
}

/// `.jsonl` files in `dir` (all of them, or those with `prefix`), in chain order: by the first sequence
/// number in the name, then by name.
pub fn trail_files(dir: &Path, prefix: Option<&str>) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(".jsonl") || !entry.file_type()?.is_file() {
            continue;
        }
        if let Some(p) = prefix {
            if parse_file_name(name).map(|(fp, _)| fp) != Some(p) {
                continue;
            }
        }
        files.push(entry.path());
    }
    sort_chain_order(&mut files);
    Ok(files)
}

/// Sorts by the sequence number in the file name (names that do not parse go last, in given order).
pub fn sort_chain_order(files: &mut [PathBuf]) {
    files.sort_by_key(|p| {
        let name = file_name(p);
        let seq = parse_file_name(&name).map_or(u64::MAX, |(_, s)| s);
        (seq, name)
    });
}

pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The last self-consistent record of a file and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TailScan {
    /// (seq, hash) of the last line whose own hash checks out.
    pub last_good: Option<(u64, String)>,
    /// Byte offset just past that line (past its newline, if it has one).
    pub good_end: u64,
    /// Lines up to and including it.
    pub good_lines: u64,
    /// Bytes after it that are not a valid record, if any.
    pub torn_len: u64,
    pub torn_sha256: String,
}

/// Scans a file for its last valid record. Invalid lines *before* it are left to `verify`; only the
/// bytes after the last valid record count as a torn tail (that is what a crash mid-write leaves).
pub(crate) fn scan_tail(data: &[u8]) -> TailScan {
    let mut scan = TailScan {
        last_good: None,
        good_end: 0,
        good_lines: 0,
        torn_len: 0,
        torn_sha256: String::new(),
    };
    let mut start = 0usize;
    let mut line_no = 0u64;
    while start < data.len() {
        let (line, next) = match data[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (&data[start..start + i], start + i + 1),
            None => (&data[start..], data.len()),
        };
        line_no += 1;
        if let Ok(h) = record::check_line(line) {
            scan.last_good = Some((h.seq, h.hash));
            scan.good_end = next as u64;
            scan.good_lines = line_no;
        }
        start = next;
    }
    let good_end = usize::try_from(scan.good_end).unwrap_or(data.len());
    let torn = &data[good_end.min(data.len())..];
    if !torn.is_empty() {
        scan.torn_len = torn.len() as u64;
        scan.torn_sha256 = sha256_hex(torn);
    }
    scan
}

struct Current {
    file: File,
    path: PathBuf,
    name: String,
    len: u64,
    lines: u64,
    opened: Instant,
}

/// A chunk whose write failed: what we tried to write where, to find out later how much landed.
struct FailedWrite {
    path: PathBuf,
    name: String,
    offset: u64,
    first_line: u64,
    bytes: Vec<u8>,
    /// (seq, hash, end offset in `bytes`) of each line in `bytes`.
    lines: Vec<(u64, String, usize)>,
    /// The records those lines encode, taken out of `pending` until we know which landed.
    items: Vec<Pending>,
}

/// Why the sink failed, with the operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub(crate) struct SinkError {
    pub op: &'static str,
    pub path: String,
    #[source]
    pub source: io::Error,
}

fn err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SinkError + 'a {
    move |source| SinkError {
        op,
        path: path.display().to_string(),
        source,
    }
}

pub(crate) struct Sink {
    cfg: AuditConfig,
    next_seq: u64,
    last_hash: String,
    current: Option<Current>,
    /// Records not yet written, in order. Internal events are pushed to the front.
    pub pending: VecDeque<Pending>,
    failed: Option<FailedWrite>,
    unsynced: bool,
    buf: Vec<u8>,
    /// Waiters of records written since the last [`take_written`](Self::take_written), to be told
    /// once the write is as durable as the fsync policy makes it.
    written: Vec<tokio::sync::oneshot::Sender<()>>,
    /// The Kafka copy: every line written is handed over, byte for byte, once it is synced.
    copy: Option<std::sync::Arc<CopyQueue>>,
    /// Lines written since the last hand-over.
    copied: Vec<(u64, Bytes)>,
    /// Test hook: when >= 0, the byte budget left before writes fail with ENOSPC (a full disk).
    #[cfg(test)]
    pub fault: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Test hook: milliseconds every write takes (a slow disk).
    #[cfg(test)]
    pub slow_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Sink {
    /// Opens the trail in `cfg.dir`: finds the last good record of the newest file, declares any torn
    /// tail, and starts a new file that continues the chain.
    pub fn open(
        cfg: AuditConfig,
        copy: Option<std::sync::Arc<CopyQueue>>,
    ) -> Result<Sink, SinkError> {
        fs::create_dir_all(&cfg.dir).map_err(err("create directory", &cfg.dir))?;
        let files = trail_files(&cfg.dir, Some(&cfg.file_prefix)).map_err(err("list", &cfg.dir))?;
        let mut sink = Sink {
            cfg,
            next_seq: 0,
            last_hash: GENESIS.to_string(),
            current: None,
            pending: VecDeque::new(),
            failed: None,
            unsynced: false,
            buf: Vec::new(),
            written: Vec::new(),
            copy,
            copied: Vec::new(),
            #[cfg(test)]
            fault: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(-1)),
            #[cfg(test)]
            slow_ms: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        let mut torn = Vec::new();
        for path in files.iter().rev() {
            let data = fs::read(path).map_err(err("read", path))?;
            let scan = scan_tail(&data);
            if scan.torn_len > 0 {
                torn.push((file_name(path), scan.clone()));
            }
            if let Some((seq, hash)) = scan.last_good {
                sink.next_seq = seq + 1;
                sink.last_hash = hash;
                break;
            }
        }
        if let Some(q) = &sink.copy {
            copy_again(q, &files, sink.next_seq, &sink.last_hash);
        }
        let last_good_seq = sink.next_seq.checked_sub(1);
        // Oldest first, so the declarations read in file order.
        for (name, scan) in torn.into_iter().rev() {
            tracing::warn!(
                file = %name,
                line = scan.good_lines + 1,
                offset = scan.good_end,
                bytes = scan.torn_len,
                "audit: torn record at end of trail file (previous run died mid-write); left in place, chain continues from the last good record"
            );
            sink.pending.push_back(Pending::new(&Event::AuditTornTail {
                file: name,
                line: scan.good_lines + 1,
                offset: scan.good_end,
                length: scan.torn_len,
                sha256: scan.torn_sha256,
                last_good_seq,
                cause: TornCause::Restart,
            }));
        }
        sink.rotate()?;
        Ok(sink)
    }

    /// Records accepted but not (known to be) written.
    pub fn unwritten(&self) -> usize {
        self.pending.len() + self.failed.as_ref().map_or(0, |f| f.items.len())
    }

    pub fn has_unsynced(&self) -> bool {
        self.unsynced
    }

    /// Hands the lines written since the last call to the Kafka copy. Called once they are as
    /// durable as the fsync policy makes them (or the sync failed: they are in the file as far
    /// as anyone knows), so the copy does not get ahead of the disk in the normal case; under
    /// `batch`, lines nobody waits for may reach it up to `BATCH_LAZY_SYNC` before their fsync.
    pub fn hand_over_copies(&mut self) {
        if let Some(q) = &self.copy {
            for (seq, line) in self.copied.drain(..) {
                q.push_line(seq, line);
            }
        }
    }

    /// Drops the waiters of every record not yet known to be written, telling them it failed.
    pub fn forget_waiters(&mut self) {
        self.written.clear();
        let failed = self.failed.iter_mut().flat_map(|f| f.items.iter_mut());
        for p in self.pending.iter_mut().chain(failed) {
            p.ack = None;
        }
    }

    /// The waiters of every record written since the last call. The caller tells them only after
    /// the write (and the fsync the policy asks for) succeeded; dropping them instead tells them
    /// it failed.
    pub fn take_written(&mut self) -> Vec<tokio::sync::oneshot::Sender<()>> {
        std::mem::take(&mut self.written)
    }

    /// Writes everything pending. On error, records not known to be written stay pending and the sink
    /// must be [`recover`](Self::recover)ed before the next write.
    pub fn write_pending(&mut self) -> Result<(), SinkError> {
        if self.failed.is_some() {
            self.recover()?;
        }
        while !self.pending.is_empty() {
            let due = match &self.current {
                None => true,
                Some(c) => {
                    c.len > 0
                        && (c.len >= self.cfg.max_file_bytes
                            || self
                                .cfg
                                .rotate_every
                                .is_some_and(|d| c.opened.elapsed() >= d))
                }
            };
            if due {
                self.rotate()?;
            }
            self.write_chunk()?;
        }
        // Batch: fsynced now when a record just written is waited for; the others within
        // BATCH_LAZY_SYNC, by the writer.
        if self.cfg.fsync == FsyncPolicy::Batch && !self.written.is_empty() {
            self.sync()?;
        }
        Ok(())
    }

    /// Encodes as many pending records as fit in the current file (and in [`WRITE_CHUNK_BYTES`])
    /// and writes them with one call.
    fn write_chunk(&mut self) -> Result<(), SinkError> {
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        let room = self.cfg.max_file_bytes.saturating_sub(cur.len);
        let one_per_write = self.cfg.fsync == FsyncPolicy::Always;
        self.buf.clear();
        let mut lines = Vec::new();
        let mut seq = self.next_seq;
        let mut prev = self.last_hash.clone();
        for p in &self.pending {
            let full = self.buf.len() as u64 >= room || self.buf.len() >= WRITE_CHUNK_BYTES;
            if !lines.is_empty() && (one_per_write || full) {
                break;
            }
            let ts = time::rfc3339(p.ts);
            let hash = encode_line(seq, &ts, &prev, &p.body, &mut self.buf);
            lines.push((seq, hash.clone(), self.buf.len()));
            prev = hash;
            seq += 1;
        }
        #[cfg(test)]
        std::thread::sleep(std::time::Duration::from_millis(
            self.slow_ms.load(std::sync::atomic::Ordering::SeqCst),
        ));
        #[cfg(test)]
        let result = write_with_budget(&mut cur.file, &self.buf, &self.fault);
        #[cfg(not(test))]
        let result = cur.file.write_all(&self.buf);
        if let Err(e) = result {
            self.failed = Some(FailedWrite {
                path: cur.path.clone(),
                name: cur.name.clone(),
                offset: cur.len,
                first_line: cur.lines + 1,
                bytes: std::mem::take(&mut self.buf),
                items: self.pending.drain(..lines.len()).collect(),
                lines,
            });
            let path = cur.path.clone();
            self.current = None;
            return Err(err("write", &path)(e));
        }
        if self.copy.is_some() {
            let written = Bytes::copy_from_slice(&self.buf);
            self.copied.extend(line_slices(&written, &lines));
        }
        cur.len += self.buf.len() as u64;
        cur.lines += lines.len() as u64;
        self.written
            .extend(self.pending.drain(..lines.len()).filter_map(|p| p.ack));
        self.next_seq = seq;
        self.last_hash = prev;
        self.unsynced = true;
        if one_per_write {
            self.sync()?;
        }
        Ok(())
    }

    /// fsyncs the current file's data. A failed fsync leaves the file's state unknown, so the sink
    /// moves on to a new file.
    pub fn sync(&mut self) -> Result<(), SinkError> {
        if let Some(cur) = &self.current {
            if self.unsynced {
                if let Err(e) = cur.file.sync_data() {
                    let path = cur.path.clone();
                    self.current = None;
                    return Err(err("fsync", &path)(e));
                }
            }
        }
        self.unsynced = false;
        Ok(())
    }

    /// After a failure: finds out how much of the failed write reached the file, keeps those records,
    /// declares the remaining bytes as a torn tail, and makes the next write start a new file.
    pub fn recover(&mut self) -> Result<(), SinkError> {
        self.current = None;
        let Some(f) = self.failed.take() else {
            return Ok(());
        };
        let written = match read_from(&f.path, f.offset) {
            Ok(w) => w,
            // The file is gone with whatever reached it; nothing of ours to keep or declare.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                let path = f.path.clone();
                self.failed = Some(f);
                return Err(err("read back", &path)(e));
            }
        };
        if f.offset == 0 && written.is_empty() {
            // A file this sink created that received nothing: every retry on a full disk would
            // otherwise leave one more empty file behind (one a second, for as long as it lasts).
            if let Err(e) = fs::remove_file(&f.path) {
                tracing::debug!(file = %f.name, error = %e, "audit: cannot remove an empty trail file");
            }
        }
        let mut kept = 0usize;
        let mut matched = 0usize;
        for (seq, hash, end) in &f.lines {
            if written.len() >= *end && written[..*end] == f.bytes[..*end] {
                kept += 1;
                matched = *end;
                self.next_seq = seq + 1;
                self.last_hash = hash.clone();
            } else {
                break;
            }
        }
        if self.copy.is_some() {
            let landed = Bytes::copy_from_slice(&f.bytes[..matched]);
            self.copied.extend(line_slices(&landed, &f.lines[..kept]));
        }
        // The rest go back in front, in order, to be written again (with fresh seqs) in a new file.
        let mut items = f.items;
        let rest = items.split_off(kept.min(items.len()));
        self.written.extend(items.into_iter().filter_map(|p| p.ack));
        for p in rest.into_iter().rev() {
            self.pending.push_front(p);
        }
        let torn = &written[matched..];
        if !torn.is_empty() {
            tracing::warn!(file = %f.name, offset = f.offset + matched as u64, bytes = torn.len(),
                "audit: partial record left by a failed write; declared in the trail");
            self.pending.push_front(Pending::new(&Event::AuditTornTail {
                file: f.name,
                line: f.first_line + kept as u64,
                offset: f.offset + matched as u64,
                length: torn.len() as u64,
                sha256: sha256_hex(torn),
                last_good_seq: self.next_seq.checked_sub(1),
                cause: TornCause::WriteError,
            }));
        }
        Ok(())
    }

    /// Closes the current file (synced unless the policy is `Never`), opens a new one named after the
    /// next sequence number, and applies retention.
    fn rotate(&mut self) -> Result<(), SinkError> {
        if self.current.is_some() && self.cfg.fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        self.current = None;
        let now = SystemTime::now();
        let name = format!(
            "{}-{:020}-{}.jsonl",
            self.cfg.file_prefix,
            self.next_seq,
            time::compact(now)
        );
        let path = self.cfg.dir.join(&name);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(err("create", &path))?;
        if self.cfg.fsync != FsyncPolicy::Never {
            // Make the new directory entry durable too; some filesystems refuse to fsync a directory,
            // which is not worth failing the trail over.
            if let Ok(d) = File::open(&self.cfg.dir) {
                let _ = d.sync_all();
            }
        }
        tracing::debug!(file = %name, seq = self.next_seq, "audit: new trail file");
        self.current = Some(Current {
            file,
            path,
            name,
            len: 0,
            lines: 0,
            opened: Instant::now(),
        });
        self.apply_retention();
        Ok(())
    }

    /// Deletes the oldest files beyond `retain_files` and records that in the chain, so verify can
    /// tell "deleted by retention" from "deleted by someone".
    fn apply_retention(&mut self) {
        if self.cfg.retain_files == 0 {
            return;
        }
        let files = match trail_files(&self.cfg.dir, Some(&self.cfg.file_prefix)) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "audit: cannot list trail files for retention");
                return;
            }
        };
        if files.len() <= self.cfg.retain_files {
            return;
        }
        let (old, kept) = files.split_at(files.len() - self.cfg.retain_files);
        let mut deleted = Vec::new();
        for path in old {
            let name = file_name(path);
            match fs::remove_file(path) {
                Ok(()) => deleted.push(DeletedFile {
                    first_seq: parse_file_name(&name).map(|(_, s)| s),
                    file: name,
                }),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "audit: retention could not delete")
                }
            }
        }
        if deleted.is_empty() {
            return;
        }
        let first = &kept[0];
        let first_name = file_name(first);
        let is_current = self.current.as_ref().is_some_and(|c| c.path == *first);
        // The first retained record is what verify will see first; its link is what must be vouched for.
        let anchor = if is_current {
            Some((self.next_seq, self.last_hash.clone()))
        } else {
            first_record_link(first)
        };
        let (first_retained_seq, anchor_prev) = anchor.unwrap_or_else(|| {
            tracing::warn!(file = %first_name, "audit: cannot read first record of oldest retained file");
            (parse_file_name(&first_name).map_or(0, |(_, s)| s), String::new())
        });
        tracing::info!(deleted = deleted.len(), first_retained = %first_name, "audit: retention deleted old trail files");
        self.pending
            .push_front(Pending::new(&Event::AuditRetention {
                deleted,
                first_retained_file: first_name,
                first_retained_seq,
                anchor_prev,
            }));
    }
}

/// Each written line of `bytes` (without its newline) with its seq, from the `(seq, hash, end)`
/// the write recorded, as slices of one buffer.
fn line_slices<'a>(
    bytes: &'a Bytes,
    lines: &'a [(u64, String, usize)],
) -> impl Iterator<Item = (u64, Bytes)> + 'a {
    let starts = std::iter::once(0).chain(lines.iter().map(|l| l.2));
    lines
        .iter()
        .zip(starts)
        .map(|((seq, _, end), start)| (*seq, bytes.slice(start..end - 1)))
}

/// At start, with a Kafka copy: queues again the lines an earlier run wrote after the last one the
/// topic is known to have (its watermark), so a restart leaves no hole in the copy; what no longer
/// exists or does not fit is declared. Then declares where this run's copy starts.
fn copy_again(q: &CopyQueue, files: &[PathBuf], next_seq: u64, last_hash: &str) {
    let Some(mark) = q
        .read_watermark()
        .filter(|w| w.saturating_add(1) < next_seq)
    else {
        q.push_start(next_seq, last_hash.to_string());
        return;
    };
    let mut expected = mark + 1;
    let mut started = false;
    let firsts: Vec<u64> = files
        .iter()
        .map(|f| parse_file_name(&file_name(f)).map_or(0, |(_, s)| s))
        .collect();
    for (i, path) in files.iter().enumerate() {
        // Every record of this file is at or below the watermark.
        if firsts.get(i + 1).is_some_and(|next| *next <= expected) {
            continue;
        }
        let Ok(data) = fs::read(path) else { continue };
        for line in data.split(|&b| b == b'\n') {
            let Ok(h) = record::check_line(line) else {
                continue;
            };
            if h.seq < expected || h.seq >= next_seq {
                continue;
            }
            if !started {
                q.push_start(h.seq, h.prev.clone());
                started = true;
            }
            if h.seq > expected {
                q.push_gap(expected, h.seq - 1, GapReason::NotCopiedBeforeRestart);
            }
            if q.has_room() {
                q.push_line(h.seq, Bytes::copy_from_slice(line));
            } else {
                q.push_gap(h.seq, h.seq, GapReason::NotCopiedBeforeRestart);
            }
            expected = h.seq + 1;
        }
    }
    if !started {
        q.push_start(next_seq, last_hash.to_string());
    }
    if expected < next_seq {
        q.push_gap(expected, next_seq - 1, GapReason::NotCopiedBeforeRestart);
    }
    tracing::info!(
        from = mark + 1,
        to = next_seq - 1,
        "audit: copying again to Kafka what the previous run wrote after its last copied record"
    );
}

/// (seq, prev) of a file's first record.
fn first_record_link(path: &Path) -> Option<(u64, String)> {
    let data = fs::read(path).ok()?;
    let line = data.split(|&b| b == b'\n').next()?;
    let h = record::check_line(line).ok()?;
    Some((h.seq, h.prev))
}

fn read_from(path: &Path, offset: u64) -> io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// Test-only: writes at most the remaining byte budget, then fails like a full disk.
#[cfg(test)]
fn write_with_budget(
    file: &mut File,
    buf: &[u8],
    budget: &std::sync::atomic::AtomicI64,
) -> io::Result<()> {
    use std::sync::atomic::Ordering;
    let left = budget.load(Ordering::SeqCst);
    if left < 0 {
        return file.write_all(buf);
    }
    let n = usize::try_from(left).unwrap_or(0).min(buf.len());
    file.write_all(&buf[..n])?;
    budget.fetch_sub(n as i64, Ordering::SeqCst);
    if n < buf.len() {
        return Err(io::Error::from_raw_os_error(28)); // ENOSPC
    }
    Ok(())
}
