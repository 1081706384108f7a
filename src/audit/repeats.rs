//! Per-connection summarizing of repeated identical denials, so that one client retrying a denied
//! request in a loop cannot fill the disk or drown the trail (issue 11 item 9).
//!
//! The first [`FULL_RECORDS`] denials of one kind on a connection are recorded one by one. After
//! that, identical ones are counted, and a summary record (`repeated: N`, "N more like this")
//! stands for them. It is written when the next one comes after [`SUMMARY_EVERY`], and for all
//! that are left when the connection closes. No denial is lost from the counts. The answer to the
//! client is the same denial in every case. Pure: the caller passes the time.
//!
//! Shadow-policy differences (`shadow_decision` records) are summarized the same way, keyed by
//! [`ShadowKind`]: a busy client hitting one difference thousands of times a second writes ten
//! records and then one summary every ten seconds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Denials of one kind recorded in full on a connection before they are summarized.
pub const FULL_RECORDS: u64 = 10;
/// How often at most a summary is written for one kind while it keeps repeating.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// Kinds tracked per connection. Past this, new kinds are recorded in full: each distinct one is
/// a different fact worth its record, and the map stays bounded. A retry loop repeats a few kinds;
/// 256 (about 100 KiB) covers it without a connection that sweeps many names holding a
/// thousand-entry table for its life.
pub const MAX_KINDS: usize = 256;

/// What makes two denials "identical": the same API, resource, operation and deciding rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DenialKind {
    pub api_key: i16,
    pub resource_type: String,
    pub resource_name: String,
    pub operation: String,
    /// `file:line` of the rule that decided, empty when the default (deny) applied.
    pub rule: String,
}

/// What makes two shadow differences "identical": the same API, resource, operation, direction
/// and deciding rules (both policies').
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShadowKind {
    pub api_key: i16,
    pub resource_type: String,
    pub resource_name: String,
    pub operation: String,
    pub change: super::event::ShadowChange,
    /// `file:line` of each policy's deciding rule, empty for none.
    pub rules: (String, String),
}

#[derive(Debug)]
struct Seen<T> {
    recorded: u64,
    suppressed: u64,
    last_summary: Instant,
    /// The last suppressed denial's record, which a summary at close is written from. Boxed: a
    /// record is a few hundred bytes, and the table keeps a slot for one in every bucket of up to
    /// MAX_KINDS kinds whether suppressed or not (1.5 MiB for a thousand kinds, inline; issue 11
    /// item 5).
    last: Option<Box<T>>,
}

/// What to do with one denial.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Record it in full.
    Record,
    /// Record it as a summary standing for this many denials: itself and the ones suppressed
    /// before it.
    Summary(u64),
    /// Count it and write nothing now.
    Suppress,
}

/// `T` is the caller's record of a denial, kept for the summaries written at close; `K` what
/// makes two of them identical.
#[derive(Debug)]
pub struct DenialRepeats<T, K = DenialKind> {
    kinds: HashMap<K, Seen<T>>,
}

/// Repeated shadow-policy differences on one connection.
pub type ShadowRepeats<T> = DenialRepeats<T, ShadowKind>;

impl<T, K> Default for DenialRepeats<T, K> {
    fn default() -> Self {
        DenialRepeats {
            kinds: HashMap::new(),
        }
    }
}

impl<T, K: Eq + std::hash::Hash + Clone> DenialRepeats<T, K> {
    pub fn new() -> DenialRepeats<T, K> {
        DenialRepeats::default()
    }

    /// Decides how to record a denial of `kind` seen at `now`; `record` is kept if it is
    /// suppressed.
    pub fn on_denial(&mut self, kind: &K, now: Instant, record: T) -> Verdict {
        if !self.kinds.contains_key(kind) {
            if self.kinds.len() >= MAX_KINDS {
                return Verdict::Record;
            }
            self.kinds.insert(
                kind.clone(),
                Seen {
                    recorded: 0,
                    suppressed: 0,
                    last_summary: now,
                    last: None,
                },
            );
        }
        let Some(seen) = self.kinds.get_mut(kind) else {
            return Verdict::Record;
        };
        if seen.recorded < FULL_RECORDS {
            seen.recorded += 1;
            return Verdict::Record;
        }
        if now.duration_since(seen.last_summary) >= SUMMARY_EVERY {
            let n = seen.suppressed + 1;
            seen.suppressed = 0;
            seen.last_summary = now;
            seen.last = None;
            return Verdict::Summary(n);
        }
        seen.suppressed += 1;
        seen.last = Some(Box::new(record));
        Verdict::Suppress
    }

    /// The last suppressed record of each kind with denials not yet summarized, and how many
    /// those are (at connection close). Leaves nothing pending.
    pub fn drain(&mut self) -> Vec<(T, u64)> {
        self.kinds
            .values_mut()
            .filter_map(|s| {
                let n = std::mem::take(&mut s.suppressed);
                s.last.take().map(|last| (*last, n))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> DenialKind {
        DenialKind {
            api_key: 0,
            resource_type: "topic".into(),
            resource_name: name.into(),
            operation: "Write".into(),
            rule: String::new(),
        }
    }

    #[test]
    fn the_first_denials_are_recorded_then_counted_and_every_one_is_accounted_for() {
        let mut r = DenialRepeats::<()>::new();
        let t0 = Instant::now();
        let k = kind("secret");
        let mut recorded = 0u64;
        let mut summarized = 0u64;
        let mut summaries = 0;
        // 1,000 denials over 25 s: one every 25 ms.
        for i in 0..1_000u64 {
            match r.on_denial(&k, t0 + Duration::from_millis(25 * i), ()) {
                Verdict::Record => recorded += 1,
                Verdict::Summary(n) => {
                    summarized += n;
                    summaries += 1;
                }
                Verdict::Suppress => {}
            }
        }
        assert_eq!(recorded, FULL_RECORDS);
        assert_eq!(summaries, 2, "one summary per 10 s of repeating");
        let left: u64 = r.drain().iter().map(|(_, n)| n).sum();
        assert_eq!(
            recorded + summarized + left,
            1_000,
            "no denial lost from the counts"
        );
        assert!(r.drain().is_empty(), "drain leaves nothing pending");
    }

    #[test]
    fn different_denials_are_each_recorded_and_the_map_stays_bounded() {
        let mut r = DenialRepeats::<()>::new();
        let t0 = Instant::now();
        for i in 0..(MAX_KINDS + 50) {
            assert_eq!(
                r.on_denial(&kind(&format!("t{i}")), t0, ()),
                Verdict::Record
            );
        }
        assert_eq!(r.kinds.len(), MAX_KINDS);
        // A kind beyond the bound is recorded every time, never suppressed.
        let extra = kind("beyond");
        for _ in 0..(FULL_RECORDS + 5) {
            assert_eq!(r.on_denial(&extra, t0, ()), Verdict::Record);
        }
    }
}
