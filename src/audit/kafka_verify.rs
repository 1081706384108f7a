//! `audit verify --kafka`: reads the audit topic back from the cluster and checks the copy's chain
//! as `audit verify` checks the files: every line's own hash, every link, and that whatever the
//! copy lacks is declared (`copy_gap`) or is where a copy legitimately starts (`copy_start`,
//! genesis, the topic's retention).
//!
//! The checking is a pure function over the records read ([`verify_copy`]); [`cmd_verify_kafka`]
//! does the reading.

use std::collections::{BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::copy::{GapReason, Marker};
use super::record::{check_line, GENESIS};
use crate::policy::migrate::cli::ClusterOptions;
use crate::upstream::acls::{AclRequestError, AdminConn};

/// One record read from the audit topic.
#[derive(Debug, Clone)]
pub struct CopyRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Bytes,
}

/// One run of linked records on the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub first_seq: u64,
    pub last_seq: u64,
    pub records: u64,
    /// How it starts: `genesis`, `copy_start`, `retention` or `declared gap`.
    pub start: &'static str,
    /// Gateway instances (record keys) whose records it holds.
    pub instances: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct CopyReport {
    pub records: u64,
    pub lines: u64,
    pub markers: u64,
    /// Records present twice, byte for byte (a restart copies again what it is not sure of).
    pub duplicates: u64,
    pub chains: Vec<Chain>,
    /// Declared gaps that the records actually lack.
    pub declared_missing: u64,
    pub notes: Vec<String>,
    pub errors: Vec<String>,
}

impl CopyReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

impl std::fmt::Display for CopyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} records: {} chained lines, {} markers, {} duplicates",
            self.records, self.lines, self.markers, self.duplicates
        )?;
        for (i, c) in self.chains.iter().enumerate() {
            let instances: Vec<&str> = c.instances.iter().map(String::as_str).collect();
            writeln!(
                f,
                "chain {}: seq {}..={} ({} records, starts at {}; instances {})",
                i + 1,
                c.first_seq,
                c.last_seq,
                c.records,
                c.start,
                instances.join(", ")
            )?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for e in &self.errors {
            writeln!(f, "ERROR: {e}")?;
        }
        if self.ok() {
            writeln!(f, "OK: the copy's chain verifies")
        } else {
            writeln!(f, "FAILED: {} problem(s)", self.errors.len())
        }
    }
}

#[derive(Clone, Copy)]
struct Open {
    chain: usize,
    last_seq: u64,
}

/// The chains' last records, by hash and by seq: each record costs a few map operations, so a
/// topic filled by someone hostile cannot make verify quadratic.
#[derive(Default)]
struct Tips {
    by_hash: HashMap<String, Open>,
    by_seq: BTreeSet<(u64, String)>,
}

impl Tips {
    fn insert(&mut self, hash: String, open: Open) {
        self.by_seq.insert((open.last_seq, hash.clone()));
        self.by_hash.insert(hash, open);
    }

    fn remove(&mut self, hash: &str) -> Option<Open> {
        let open = self.by_hash.remove(hash)?;
        self.by_seq.remove(&(open.last_seq, hash.to_string()));
        Some(open)
    }

    /// The tip with the highest seq below `seq`: the smallest hole a record at `seq` leaves.
    fn nearest_below(&self, seq: u64) -> Option<(String, Open)> {
        let (_, hash) = self.by_seq.range(..(seq, String::new())).next_back()?;
        Some((hash.clone(), *self.by_hash.get(hash)?))
    }
}

/// Declared gaps as disjoint, non-adjacent intervals (start -> end, inclusive).
#[derive(Default)]
struct Gaps(std::collections::BTreeMap<u64, u64>);

impl Gaps {
    fn insert(&mut self, mut from: u64, mut to: u64) {
        if from > to {
            return;
        }
        // Merge every interval that overlaps or touches [from, to].
        let touching: Vec<(u64, u64)> = self
            .0
            .range(..=to.saturating_add(1))
            .rev()
            .take_while(|(_, e)| e.saturating_add(1) >= from)
            .map(|(s, e)| (*s, *e))
            .collect();
        for (s, e) in touching {
            self.0.remove(&s);
            from = from.min(s);
            to = to.max(e);
        }
        self.0.insert(from, to);
    }

    /// Whether every seq in `from..=to` is declared (an empty range is).
    fn covers(&self, from: u64, to: u64) -> bool {
        from > to
            || self
                .0
                .range(..=from)
                .next_back()
                .is_some_and(|(_, e)| *e >= to)
    }
}

/// Checks the records of the audit topic, in offset order per partition. `log_start` says, per
/// partition, whether the topic's retention has deleted its first records (log start offset > 0).
pub fn verify_copy(records: &[CopyRecord], log_start: &HashMap<i32, i64>) -> CopyReport {
    let mut r = CopyReport::default();
    // Every line's hash -> its seq: duplicates and forks are found by hash.
    let mut seen: HashMap<String, u64> = HashMap::new();
    // Chain tips: hash of the last record -> the chain.
    let mut tips = Tips::default();
    let mut gaps = Gaps::default();
    let mut starts: HashSet<(u64, String)> = HashSet::new();
    let mut keys_seen: HashSet<(i32, String)> = HashSet::new();
    for rec in records {
        r.records += 1;
        let at = format!(
            "partition {} offset {} (instance {})",
            rec.partition,
            rec.offset,
            rec.key.as_deref().unwrap_or("-")
        );
        if let Some(m) = Marker::parse(&rec.value) {
            r.markers += 1;
            match m {
                Marker::CopyGap {
                    from_seq,
                    to_seq,
                    reason,
                } => {
                    r.notes.push(format!(
                        "{at}: seq {from_seq}..={to_seq} declared not copied ({})",
                        reason_name(reason)
                    ));
                    gaps.insert(from_seq, to_seq);
                }
                Marker::CopyStart { seq, prev } => {
                    starts.insert((seq, prev));
                }
            }
            continue;
        }
        let h = match check_line(&rec.value) {
            Ok(h) => h,
            Err(e) => {
                r.errors
                    .push(format!("{at}: not a valid audit record: {e}"));
                continue;
            }
        };
        r.lines += 1;
        let key = rec.key.clone().unwrap_or_default();
        let first_of_key = keys_seen.insert((rec.partition, key.clone()));
        if let Some(&seq) = seen.get(&h.hash) {
            if seq == h.seq {
                r.duplicates += 1;
            } else {
                r.errors
                    .push(format!("{at}: record {} reappears as seq {}", seq, h.seq));
            }
            continue;
        }
        seen.insert(h.hash.clone(), h.seq);
        // Extends a chain whose last record it names.
        if let Some(open) = tips.remove(&h.prev) {
            if open.last_seq.checked_add(1) == Some(h.seq) {
                advance(&mut r.chains, &mut tips, open.chain, h.seq, h.hash, &key);
                continue;
            }
            r.errors.push(format!(
                "{at}: seq {} names seq {}'s hash as its predecessor",
                h.seq, open.last_seq
            ));
            tips.insert(h.prev.clone(), open);
            continue;
        }
        if seen.contains_key(&h.prev) {
            r.errors.push(format!(
                "{at}: seq {} follows a record another record already follows: the chain forks \
                 (records not produced by the gateway, or a trail file that lost records)",
                h.seq
            ));
            continue;
        }
        // Follows a chain across a declared gap: the nearest chain below is the only candidate
        // (a farther one leaves a larger hole, covered only if the nearest's is).
        let across = tips
            .nearest_below(h.seq)
            .filter(|(_, o)| gaps.covers(o.last_seq + 1, h.seq - 1))
            .map(|(k, _)| k);
        if let Some(tip) = across {
            if let Some(open) = tips.remove(&tip) {
                r.declared_missing += h.seq - open.last_seq - 1;
                advance(&mut r.chains, &mut tips, open.chain, h.seq, h.hash, &key);
            }
            continue;
        }
        let start = if h.seq == 0 && h.prev == GENESIS {
            Some("genesis")
        } else if starts.contains(&(h.seq, h.prev.clone())) {
            Some("copy_start")
        } else if first_of_key && log_start.get(&rec.partition).is_some_and(|s| *s > 0) {
            r.notes.push(format!(
                "{at}: the copy begins at seq {}: the records before it were deleted by the topic's retention (log start offset {})",
                h.seq,
                log_start.get(&rec.partition).copied().unwrap_or_default()
            ));
            Some("retention")
        } else if h.seq > 0 && gaps.covers(0, h.seq - 1) {
            Some("declared gap")
        } else {
            None
        };
        match start {
            Some(start) => {
                r.chains.push(Chain {
                    first_seq: h.seq,
                    last_seq: h.seq,
                    records: 1,
                    start,
                    instances: BTreeSet::from([key]),
                });
                tips.insert(
                    h.hash,
                    Open {
                        chain: r.chains.len() - 1,
                        last_seq: h.seq,
                    },
                );
            }
            None => r.errors.push(format!(
                "{at}: seq {} follows no record on the topic and nothing declares why: the records before it are missing",
                h.seq
            )),
        }
    }
    r
}

/// Appends record `seq` (whose hash is `hash`) to `chain`; it becomes the chain's tip.
fn advance(chains: &mut [Chain], tips: &mut Tips, chain: usize, seq: u64, hash: String, key: &str) {
    let c = &mut chains[chain];
    c.last_seq = seq;
    c.records += 1;
    if !c.instances.contains(key) {
        c.instances.insert(key.to_string());
    }
    tips.insert(
        hash,
        Open {
            chain,
            last_seq: seq,
        },
    );
}

fn reason_name(r: GapReason) -> &'static str {
    match r {
        GapReason::QueueFull => "the copy's queue was full",
        GapReason::ProduceFailed => "producing failed (best-effort)",
        GapReason::NotCopiedBeforeRestart => "an earlier run stopped before copying them",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaVerifyError {
    #[error(transparent)]
    Cluster(#[from] crate::policy::migrate::cli::MigrateError),
    #[error(transparent)]
    Request(#[from] AclRequestError),
    #[error("topic {topic}: {message}")]
    Topic { topic: String, message: String },
}

impl KafkaVerifyError {
    fn topic(topic: &TopicName, message: String) -> KafkaVerifyError {
        KafkaVerifyError::Topic {
            topic: topic.to_string(),
            message,
        }
    }

    /// `what` answered Kafka error `code`: refused unless it is 0.
    fn check(topic: &TopicName, what: String, code: i16) -> Result<(), KafkaVerifyError> {
        if code == 0 {
            return Ok(());
        }
        let name = crate::upstream::acls::error_name(code);
        Err(KafkaVerifyError::topic(
            topic,
            format!("{what}: error {code} ({name})"),
        ))
    }
}

/// Reads every record of `topic` (every partition, from its log start to its end) and verifies.
pub async fn cmd_verify_kafka(
    opts: &ClusterOptions,
    topic: &str,
) -> Result<CopyReport, KafkaVerifyError> {
    let (mut conn, props) = opts.connect().await?;
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let mut t = MetadataRequestTopic::default();
    t.name = Some(name.clone());
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    let (_, meta): (i16, MetadataResponse) =
        conn.call(ApiKey::Metadata, "Metadata", 12, &req).await?;
    let topic_err = |message: String| KafkaVerifyError::topic(&name, message);
    let tm = meta
        .topics
        .iter()
        .find(|t| t.name.as_ref() == Some(&name))
        .ok_or_else(|| topic_err("not in the cluster's metadata".into()))?;
    KafkaVerifyError::check(&name, "Metadata".into(), tm.error_code)?;
    let mut partitions: Vec<(i32, BrokerId)> = tm
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id))
        .collect();
    partitions.sort_unstable();
    let brokers: HashMap<BrokerId, (String, u16)> = meta
        .brokers
        .iter()
        .map(|b| (b.node_id, (b.host.to_string(), b.port as u16)))
        .collect();
    let mut records = Vec::new();
    let mut log_start = HashMap::new();
    for (partition, leader) in partitions {
        let addr = brokers
            .get(&leader)
            .cloned()
            .ok_or_else(|| topic_err(format!("partition {partition} has no leader")))?;
        let mut leader_conn = AdminConn::connect(&[addr], &props, opts.timeout).await?;
        let start = list_offset(&mut leader_conn, &name, partition, -2).await?;
        let end = list_offset(&mut leader_conn, &name, partition, -1).await?;
        log_start.insert(partition, start);
        let mut next = start;
        while next < end {
            let got = fetch(&mut leader_conn, &name, partition, next).await?;
            let before = next;
            for (offset, key, value) in got {
                if offset < next || offset >= end {
                    continue;
                }
                next = offset + 1;
                records.push(CopyRecord {
                    partition,
                    offset,
                    key,
                    value,
                });
            }
            if next == before {
                // Only control records or compacted-away offsets left: nothing more to read.
                break;
            }
        }
    }
    drop(conn);
    Ok(verify_copy(&records, &log_start))
}

async fn list_offset(
    conn: &mut AdminConn,
    name: &TopicName,
    partition: i32,
    timestamp: i64,
) -> Result<i64, KafkaVerifyError> {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = timestamp;
    let mut t = ListOffsetsTopic::default();
    t.name = name.clone();
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    let (_, resp): (i16, ListOffsetsResponse) = conn
        .call(ApiKey::ListOffsets, "ListOffsets", 7, &req)
        .await?;
    let p = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| KafkaVerifyError::topic(name, "ListOffsets answered no partition".into()))?;
    let what = format!("ListOffsets of partition {partition}");
    KafkaVerifyError::check(name, what, p.error_code)?;
    Ok(p.offset)
}

type Fetched = Vec<(i64, Option<String>, Bytes)>;

async fn fetch(
    conn: &mut AdminConn,
    name: &TopicName,
    partition: i32,
    offset: i64,
) -> Result<Fetched, KafkaVerifyError> {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 8 << 20;
    let mut t = FetchTopic::default();
    t.topic = name.clone();
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = 100;
    req.min_bytes = 1;
    req.max_bytes = 8 << 20;
    req.topics = vec![t];
    let (_, resp): (i16, FetchResponse) = conn.call(ApiKey::Fetch, "Fetch", 12, &req).await?;
    let err = |message: String| KafkaVerifyError::topic(name, message);
    let part = resp
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| err("Fetch answered no partition".into()))?;
    let what = format!("Fetch of partition {partition} at offset {offset}");
    KafkaVerifyError::check(name, what, part.error_code)?;
    let mut out = Vec::new();
    if let Some(mut bytes) = part.records.clone() {
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes)
            .map_err(|e| err(format!("record batch at offset {offset}: {e}")))?;
        for set in sets {
            for rec in set.records {
                if rec.control {
                    continue;
                }
                out.push((
                    rec.offset,
                    rec.key.map(|k| String::from_utf8_lossy(&k).into_owned()),
                    rec.value.unwrap_or_default(),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::record::encode_line;
    use super::*;

    /// `n` chained lines from `seq`, whose first names `prev`.
    fn lines(seq: u64, prev: &str, n: u64) -> Vec<(Bytes, String)> {
        tagged("r", seq, prev, n)
    }

    fn tagged(tag: &str, seq: u64, prev: &str, n: u64) -> Vec<(Bytes, String)> {
        let mut out = Vec::new();
        let mut prev = prev.to_string();
        for s in seq..seq + n {
            let mut buf = Vec::new();
            let body = format!(
                r#"{{"event":"gateway_stop","instance":"i","reason":"{tag}{s}","uptime_ms":1}}"#
            );
            let hash = encode_line(
                s,
                "2026-12-04T00:00:00.000000Z",
                &prev,
                body.as_bytes(),
                &mut buf,
            );
            buf.pop();
            out.push((Bytes::from(buf), hash.clone()));
            prev = hash;
        }
        out
    }

    fn topic(values: Vec<(&str, Bytes)>) -> Vec<CopyRecord> {
        values
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| CopyRecord {
                partition: 0,
                offset: i as i64,
                key: Some(k.to_string()),
                value: v,
            })
            .collect()
    }

    fn marker(m: Marker) -> Bytes {
        m.to_bytes()
    }

    fn check(recs: &[CopyRecord]) -> CopyReport {
        verify_copy(recs, &HashMap::from([(0, 0)]))
    }

    #[test]
    fn a_copy_across_restarts_verifies_with_duplicates_and_declared_gaps() {
        let l = lines(0, GENESIS, 10);
        let start = |s: u64, p: &str| {
            marker(Marker::CopyStart {
                seq: s,
                prev: p.to_string(),
            })
        };
        let recs = topic(vec![
            ("a", start(0, GENESIS)),
            ("a", l[0].0.clone()),
            ("a", l[1].0.clone()),
            ("a", l[2].0.clone()),
            // Restart: b copies again from its watermark (2 is there already: a duplicate).
            ("b", start(2, &l[1].1)),
            ("b", l[2].0.clone()),
            ("b", l[3].0.clone()),
            // The queue was full for 4..=5.
            (
                "b",
                marker(Marker::CopyGap {
                    from_seq: 4,
                    to_seq: 5,
                    reason: GapReason::QueueFull,
                }),
            ),
            ("b", l[6].0.clone()),
            ("b", l[7].0.clone()),
        ]);
        let r = check(&recs);
        assert!(r.ok(), "{r}");
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.declared_missing, 2);
        assert_eq!(r.chains.len(), 1, "{r}");
        assert_eq!((r.chains[0].first_seq, r.chains[0].last_seq), (0, 7));
        assert_eq!(r.chains[0].instances.len(), 2);
    }

    #[test]
    fn edits_undeclared_holes_forks_and_strangers_are_named() {
        let l = lines(0, GENESIS, 6);
        // An edited record: its bytes no longer match its hash.
        let edited = Bytes::from(String::from_utf8_lossy(&l[1].0).replace("\"r1\"", "\"r9\""));
        let r = check(&topic(vec![("a", l[0].0.clone()), ("a", edited)]));
        assert_eq!(r.errors.len(), 1, "{r}");
        assert!(
            r.errors[0].contains("offset 1") && r.errors[0].contains("hash"),
            "{r}"
        );

        // A missing record nothing declares.
        let r = check(&topic(vec![
            ("a", l[0].0.clone()),
            ("a", l[1].0.clone()),
            ("a", l[3].0.clone()),
        ]));
        assert_eq!(r.errors.len(), 1, "{r}");
        assert!(r.errors[0].contains("seq 3"), "{r}");

        // Someone else's record that follows seq 1 as well: a fork.
        let forged = tagged("forged", 2, &l[1].1, 1);
        let r = check(&topic(vec![
            ("a", l[0].0.clone()),
            ("a", l[1].0.clone()),
            ("a", l[2].0.clone()),
            ("x", forged[0].0.clone()),
        ]));
        assert!(
            r.errors
                .iter()
                .any(|e| e.contains("forks") || e.contains("predecessor")),
            "{r}"
        );

        // Not an audit record at all.
        let r = check(&topic(vec![("x", Bytes::from_static(b"hello"))]));
        assert_eq!(r.errors.len(), 1, "{r}");

        // A chain starting mid-way without a declaration, unless the topic's retention explains it.
        let tail = topic(vec![("a", l[4].0.clone()), ("a", l[5].0.clone())]);
        assert!(!check(&tail).ok());
        let r = verify_copy(&tail, &HashMap::from([(0, 40)]));
        assert!(r.ok(), "{r}");
        assert_eq!(r.chains[0].start, "retention");
    }

    #[test]
    fn declared_gaps_must_cover_the_whole_hole() {
        let mut gaps = Gaps::default();
        gaps.insert(4, 6);
        gaps.insert(2, 3);
        gaps.insert(10, 12);
        gaps.insert(11, 20);
        assert!(gaps.covers(2, 6), "adjacent declarations join");
        assert!(gaps.covers(3, 5));
        assert!(!gaps.covers(1, 6));
        assert!(!gaps.covers(2, 7));
        assert!(!gaps.covers(6, 10), "7..=9 is not declared");
        assert!(gaps.covers(10, 20), "overlapping declarations merge");
        assert!(gaps.covers(5, 4), "an empty range");
        assert_eq!(gaps.0.len(), 2, "{:?}", gaps.0);
    }
}
