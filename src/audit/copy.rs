//! The hand-over from the file trail to its Kafka copy: the exact chained lines the file got, in
//! chain order and bounded; whatever does not fit, or cannot be produced, is declared as a gap.
//!
//! The file writer pushes each line once it is written; the Kafka task takes them in order. Both
//! sides are synchronous and short (a mutex around a queue), so the file writer can push from its
//! blocking task.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// Why records of the chain are not on the audit topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// The copy's queue was full (the topic was slower than the trail).
    QueueFull,
    /// Producing failed and the copy is best-effort.
    ProduceFailed,
    /// Written to the file by an earlier run that stopped before copying them, and too many to
    /// copy again at start.
    NotCopiedBeforeRestart,
}

/// One thing to put on the audit topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyItem {
    /// A trail line, byte for byte (without its newline).
    Line { seq: u64, line: Bytes },
    /// Records `from..=to` of the chain are not copied, and why.
    Gap {
        from: u64,
        to: u64,
        reason: GapReason,
    },
    /// This run of the gateway copies from `seq` on, whose predecessor's hash is `prev`: where the
    /// chain on the topic may legitimately start or restart.
    Start { seq: u64, prev: String },
}

struct State {
    items: VecDeque<CopyItem>,
    lines: usize,
    /// Items were taken and the taker has not said it is done with them.
    taken: bool,
}

/// The bounded queue between the file writer and the Kafka task.
pub struct CopyQueue {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
    /// Where the Kafka task notes the last seq the topic has (lines or declared gaps), so that a
    /// restart can copy what an earlier run wrote but did not copy.
    watermark: Option<PathBuf>,
    /// Records declared as gaps so far (a metric).
    declared: AtomicU64,
}

impl CopyQueue {
    pub fn new(capacity: usize, watermark: Option<PathBuf>) -> Arc<CopyQueue> {
        Arc::new(CopyQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                lines: 0,
                taken: false,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
            watermark,
            declared: AtomicU64::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether another line fits now (fail-closed admission).
    pub fn has_room(&self) -> bool {
        self.state().lines < self.capacity
    }

    /// Queues a written line; a line that does not fit becomes (part of) a declared gap.
    pub fn push_line(&self, seq: u64, line: Bytes) {
        let mut s = self.state();
        if s.lines >= self.capacity {
            push_gap(&mut s.items, seq, seq, GapReason::QueueFull);
            self.count_declared(seq, seq);
        } else {
            s.lines += 1;
            s.items.push_back(CopyItem::Line { seq, line });
        }
        drop(s);
        self.notify.notify_one();
    }

    pub fn push_start(&self, seq: u64, prev: String) {
        self.state().items.push_back(CopyItem::Start { seq, prev });
        self.notify.notify_one();
    }

    pub fn push_gap(&self, from: u64, to: u64, reason: GapReason) {
        push_gap(&mut self.state().items, from, to, reason);
        self.count_declared(from, to);
        self.notify.notify_one();
    }

    /// Puts what could not be produced back in front (a gap the Kafka task declares instead of
    /// lines it gave up on, or a marker it must still produce).
    pub fn push_front(&self, item: CopyItem) {
        let mut s = self.state();
        if matches!(item, CopyItem::Line { .. }) {
            s.lines += 1;
        }
        s.items.push_front(item);
    }

    /// Declares lines the Kafka task gave up producing, ahead of everything still queued.
    pub fn give_up(&self, from: u64, to: u64) {
        self.count_declared(from, to);
        self.push_front(CopyItem::Gap {
            from,
            to,
            reason: GapReason::ProduceFailed,
        });
    }

    /// The next item, or up to `max` consecutive lines; waits while there is nothing.
    pub async fn take(&self, max: usize) -> Vec<CopyItem> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state();
                let mut out = Vec::new();
                while out.len() < max.max(1) {
                    match s.items.front() {
                        Some(CopyItem::Line { .. }) => s.lines -= 1,
                        // A marker goes alone.
                        Some(_) if out.is_empty() => {
                            out.extend(s.items.pop_front());
                            break;
                        }
                        _ => break,
                    }
                    out.extend(s.items.pop_front());
                }
                if !out.is_empty() {
                    s.taken = true;
                    return out;
                }
            }
            notified.await;
        }
    }

    fn count_declared(&self, from: u64, to: u64) {
        self.declared
            .fetch_add(to.saturating_sub(from) + 1, Ordering::Relaxed);
    }

    /// Records declared as not copied so far.
    pub fn declared_total(&self) -> u64 {
        self.declared.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.state().items.is_empty()
    }

    /// The taker is done with what it took (produced it, or put back what it gave up).
    pub fn done(&self) {
        self.state().taken = false;
    }

    /// Nothing queued and nothing taken but unfinished.
    pub fn is_idle(&self) -> bool {
        let s = self.state();
        s.items.is_empty() && !s.taken
    }

    /// The last seq an earlier run had on the topic, if it noted one.
    pub fn read_watermark(&self) -> Option<u64> {
        let path = self.watermark.as_ref()?;
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Notes the last seq the topic has. Not fsynced: after a crash a stale mark only means some
    /// lines are copied twice, which verify accepts (same seq, same hash).
    pub fn write_watermark(&self, seq: u64) {
        if let Some(path) = &self.watermark {
            let tmp = path.with_extension("tmp");
            let r =
                std::fs::write(&tmp, format!("{seq}\n")).and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = r {
                tracing::warn!(file = %path.display(), error = %e, "audit: cannot note what the Kafka copy has");
            }
        }
    }
}

/// The watermark file of a trail: `<dir>/<prefix>.kafka-copied`.
pub fn watermark_path(dir: &Path, prefix: &str) -> PathBuf {
    dir.join(format!("{prefix}.kafka-copied"))
}

fn push_gap(items: &mut VecDeque<CopyItem>, from: u64, to: u64, reason: GapReason) {
    if let Some(CopyItem::Gap {
        to: last,
        reason: r,
        ..
    }) = items.back_mut()
    {
        if *r == reason && last.checked_add(1) == Some(from) {
            *last = to;
            return;
        }
    }
    items.push_back(CopyItem::Gap { from, to, reason });
}

/// A gap or start declaration as it is produced to the topic (a chain line is produced as is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Marker {
    CopyGap {
        from_seq: u64,
        to_seq: u64,
        reason: GapReason,
    },
    CopyStart {
        seq: u64,
        prev: String,
    },
}

impl Marker {
    pub fn of(item: &CopyItem) -> Option<Marker> {
        match item {
            CopyItem::Line { .. } => None,
            CopyItem::Gap { from, to, reason } => Some(Marker::CopyGap {
                from_seq: *from,
                to_seq: *to,
                reason: *reason,
            }),
            CopyItem::Start { seq, prev } => Some(Marker::CopyStart {
                seq: *seq,
                prev: prev.clone(),
            }),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// A marker, or `None` for anything else (a chain line).
    pub fn parse(value: &[u8]) -> Option<Marker> {
        serde_json::from_slice(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_does_not_fit_is_one_declared_gap_per_run_of_records() {
        let q = CopyQueue::new(2, None);
        for seq in 0..6 {
            q.push_line(seq, Bytes::from(format!("l{seq}")));
        }
        assert!(!q.has_room());
        let first = q.take(10).await;
        assert_eq!(first.len(), 2, "{first:?}");
        assert!(q.has_room());
        q.push_line(6, Bytes::from_static(b"l6"));
        assert_eq!(
            q.take(10).await,
            [CopyItem::Gap {
                from: 2,
                to: 5,
                reason: GapReason::QueueFull
            }]
        );
        assert_eq!(
            q.take(10).await,
            [CopyItem::Line {
                seq: 6,
                line: Bytes::from_static(b"l6")
            }]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn markers_round_trip_and_lines_are_not_markers() {
        let m = Marker::CopyGap {
            from_seq: 3,
            to_seq: 9,
            reason: GapReason::ProduceFailed,
        };
        assert_eq!(Marker::parse(&m.to_bytes()), Some(m));
        assert_eq!(
            &Marker::CopyStart {
                seq: 1,
                prev: "ab".into()
            }
            .to_bytes()[..],
            br#"{"copy_start":{"seq":1,"prev":"ab"}}"#
        );
        assert_eq!(Marker::parse(br#"{"schema":1,"seq":0,"event":"x"}"#), None);
    }
}
