//! The audit trail's second sink: the file trail's own lines produced to a topic on the upstream
//! cluster, so the trail scales out with the cluster and survives the loss of one gateway's disk.
//!
//! Each record's value is a chained line exactly as the file has it (same seq, prev and hash), keyed
//! by the gateway instance, so `audit verify --kafka` checks the copy as `audit verify` checks the
//! files. The lines come from the file writer through a bounded [`CopyQueue`]; anything the copy
//! lacks is declared on the topic (`copy_gap`: which seqs, why), and each run declares where its copy
//! starts (`copy_start`). Failure modes as for the file: fail-closed refuses new records while the
//! topic cannot be written or the queue is full; best-effort gives a failing batch up after three
//! tries and declares it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::copy::{CopyItem, CopyQueue, Marker};
use super::{AuditUnavailable, FailureMode};
use crate::upstream::conn::{exchange, UpstreamConn};
use crate::upstream::{Cluster, Target};

#[derive(Debug, Clone)]
pub struct KafkaSinkConfig {
    pub topic: String,
    pub on_failure: FailureMode,
    pub queue_capacity: usize,
    pub batch_max: usize,
}

/// The handle the gateway admits records through; cheap to clone.
#[derive(Clone)]
pub struct KafkaSink {
    queue: Arc<CopyQueue>,
    healthy: Arc<AtomicBool>,
    mode: FailureMode,
}

/// Every request to the broker gets this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE: usize = 16 << 20;

impl KafkaSink {
    /// Starts the producing task (inside a tokio runtime), taking lines from `queue`, which the file
    /// writer fills.
    pub fn start(
        config: KafkaSinkConfig,
        cluster: Arc<Cluster>,
        instance: String,
        queue: Arc<CopyQueue>,
    ) -> KafkaSink {
        let sink = KafkaSink {
            queue,
            healthy: Arc::new(AtomicBool::new(true)),
            mode: config.on_failure,
        };
        tokio::spawn(produce_loop(config, cluster, instance, sink.clone()));
        sink
    }

    /// Whether a new record may go ahead as far as the copy is concerned. Never blocks.
    pub fn admit(&self) -> Result<(), AuditUnavailable> {
        if self.mode == FailureMode::BestEffort {
            return Ok(());
        }
        if !self.healthy.load(Ordering::Relaxed) {
            return Err(AuditUnavailable::SinkFailing);
        }
        if !self.queue.has_room() {
            return Err(AuditUnavailable::QueueFull);
        }
        Ok(())
    }

    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// At shutdown, once the file writer has stopped: waits until everything queued is on the
    /// topic, at most `deadline`. Returns whether it all got there.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            if self.queue.is_idle() {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Records of the chain declared as not copied.
    pub fn dropped_total(&self) -> u64 {
        self.queue.declared_total()
    }
}

/// The last seq an item accounts for on the topic.
fn last_seq(item: &CopyItem) -> Option<u64> {
    match item {
        CopyItem::Line { seq, .. } => Some(*seq),
        CopyItem::Gap { to, .. } => Some(*to),
        CopyItem::Start { .. } => None,
    }
}

async fn produce_loop(
    config: KafkaSinkConfig,
    cluster: Arc<Cluster>,
    instance: String,
    sink: KafkaSink,
) {
    let queue = sink.queue.clone();
    let mut conn: Option<UpstreamConn> = None;
    let mut backoff = Duration::from_millis(100);
    let mut failing = false;
    let mut mark = Watermark {
        seq: None,
        written: tokio::time::Instant::now(),
    };
    loop {
        let mut items = tokio::select! {
            items = queue.take(config.batch_max) => items,
            // A busy trail notes its watermark once a second, an idle one right away.
            _ = tokio::time::sleep(Duration::from_secs(1)), if mark.seq.is_some() => {
                mark.write(&queue);
                continue;
            }
        };
        let values: Vec<Bytes> = items
            .iter()
            .map(|i| match i {
                CopyItem::Line { line, .. } => line.clone(),
                other => Marker::of(other).map(|m| m.to_bytes()).unwrap_or_default(),
            })
            .collect();
        // A batch is only let go once the broker has it (fail-closed keeps retrying while the queue
        // fills and new records are refused); best-effort gives up after a few tries and declares it.
        let mut attempts = 0;
        loop {
            match produce(&cluster, &mut conn, &config.topic, &instance, &values).await {
                Ok(()) => {
                    sink.healthy.store(true, Ordering::Relaxed);
                    if std::mem::take(&mut failing) {
                        tracing::info!(topic = %config.topic, "audit topic writable again");
                    }
                    backoff = Duration::from_millis(100);
                    if let Some(seq) = items.iter().filter_map(last_seq).max() {
                        mark.seq = Some(seq);
                    }
                    if queue.is_empty() || mark.written.elapsed() >= Duration::from_secs(1) {
                        mark.write(&queue);
                    }
                    queue.done();
                    break;
                }
                Err(e) => {
                    conn = None;
                    attempts += 1;
                    if !failing {
                        failing = true;
                        tracing::error!(topic = %config.topic, error = %e, "audit topic not writable");
                    }
                    sink.healthy.store(false, Ordering::Relaxed);
                    let giving_up = config.on_failure == FailureMode::BestEffort && attempts >= 3;
                    if giving_up {
                        give_up(&queue, std::mem::take(&mut items));
                        queue.done();
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if giving_up {
                        break;
                    }
                }
            }
        }
    }
}

/// The last seq the topic is known to hold, noted in the watermark file at most once a second
/// while busy.
struct Watermark {
    seq: Option<u64>,
    written: tokio::time::Instant,
}

impl Watermark {
    fn write(&mut self, queue: &CopyQueue) {
        if let Some(seq) = self.seq.take() {
            queue.write_watermark(seq);
        }
        self.written = tokio::time::Instant::now();
    }
}

/// Best-effort, after failed tries: lines become one declared gap, a marker is tried again later;
/// both go back in front of what is queued, so the topic keeps chain order. (A batch is either
/// consecutive lines or one marker: see `CopyQueue::take`.)
fn give_up(queue: &CopyQueue, items: Vec<CopyItem>) {
    let mut seqs = items.iter().filter_map(|i| match i {
        CopyItem::Line { seq, .. } => Some(*seq),
        _ => None,
    });
    match seqs.next() {
        Some(from) => queue.give_up(from, seqs.last().unwrap_or(from)),
        None => {
            for item in items.into_iter().rev() {
                queue.push_front(item);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ProduceError {
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    #[error("{0}")]
    Broker(String),
}

/// Produces one batch to partition 0 of the topic (creating the topic the first time), on a
/// connection to that partition's leader.
async fn produce(
    cluster: &Cluster,
    conn: &mut Option<UpstreamConn>,
    topic: &str,
    instance: &str,
    values: &[Bytes],
) -> Result<(), ProduceError> {
    if conn.is_none() {
        *conn = Some(connect_leader(cluster, topic).await?);
    }
    let Some(c) = conn.as_mut() else {
        unreachable!("connected just above")
    };
    // A long-lived connection: log in again before the broker's session expires (KIP-368).
    if c.reauth_at
        .is_some_and(|at| at <= tokio::time::Instant::now())
    {
        cluster.reauthenticate(c).await?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let batch = encode_batch(values, instance, now)
        .map_err(|e| ProduceError::Broker(format!("encoding the batch: {e}")))?;
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(batch);
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![partition];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = REQUEST_TIMEOUT.as_millis() as i32;
    req.topic_data = vec![t];
    let resp: ProduceResponse = exchange(
        c,
        ApiKey::Produce,
        9,
        &req,
        "audit produce",
        REQUEST_TIMEOUT,
        MAX_RESPONSE,
    )
    .await?;
    let code = resp
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .map_or(-1, |p| p.error_code);
    if code != 0 {
        return Err(ProduceError::Broker(format!(
            "produce answered error {code}"
        )));
    }
    Ok(())
}

async fn connect_leader(cluster: &Cluster, topic: &str) -> Result<UpstreamConn, ProduceError> {
    let mut conn = cluster.connect(Target::Bootstrap).await?;
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let mut leader = find_leader(&mut conn, &name).await?;
    if leader.is_none() {
        let mut t = CreatableTopic::default();
        t.name = name.clone();
        t.num_partitions = 1;
        t.replication_factor = -1;
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = REQUEST_TIMEOUT.as_millis() as i32;
        let resp: CreateTopicsResponse = exchange(
            &mut conn,
            ApiKey::CreateTopics,
            5,
            &req,
            "audit topic create",
            REQUEST_TIMEOUT,
            MAX_RESPONSE,
        )
        .await?;
        // 36 TOPIC_ALREADY_EXISTS: another gateway instance was first.
        if let Some(code) = resp
            .topics
            .first()
            .map(|t| t.error_code)
            .filter(|c| *c != 0 && *c != 36)
        {
            return Err(ProduceError::Broker(format!(
                "cannot create the audit topic {topic}: error {code}"
            )));
        }
        leader = find_leader(&mut conn, &name).await?;
    }
    match leader {
        Some(node) => match cluster.node_addr(node) {
            Some(_) => Ok(cluster.connect(Target::Node(node)).await?),
            None => Ok(conn),
        },
        None => Err(ProduceError::Broker(format!(
            "audit topic {topic} has no leader"
        ))),
    }
}

async fn find_leader(
    conn: &mut UpstreamConn,
    name: &TopicName,
) -> Result<Option<i32>, ProduceError> {
    let mut t = MetadataRequestTopic::default();
    t.name = Some(name.clone());
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = false;
    let resp: MetadataResponse = exchange(
        conn,
        ApiKey::Metadata,
        9,
        &req,
        "audit metadata",
        REQUEST_TIMEOUT,
        MAX_RESPONSE,
    )
    .await?;
    Ok(resp
        .topics
        .iter()
        .find(|t| t.error_code == 0 && t.name.as_ref() == Some(name))
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0))
        .map(|p| p.leader_id.0)
        .filter(|l| *l >= 0))
}

/// One uncompressed v2 record batch of `values`, keyed by the gateway instance.
///
/// Apache Kafka takes exactly one batch per partition in a Produce (more is INVALID_RECORD).
/// kafka-protocol starts a new batch wherever `offset - sequence` changes and takes the base
/// sequence from the first record, so the sequences run -1, 0, 1, ...: one batch whose base
/// sequence is -1, as a producer without an id sends.
fn encode_batch(values: &[Bytes], instance: &str, now: i64) -> Result<Bytes, String> {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: now,
            key: Some(Bytes::copy_from_slice(instance.as_bytes())),
            value: Some(v.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(mode: FailureMode, capacity: usize) -> KafkaSink {
        KafkaSink {
            queue: CopyQueue::new(capacity, None),
            healthy: Arc::new(AtomicBool::new(true)),
            mode,
        }
    }

    #[test]
    fn fail_closed_refuses_when_full_or_failing_and_best_effort_declares() {
        let s = sink(FailureMode::FailClosed, 2);
        assert!(s.admit().is_ok());
        s.queue.push_line(0, Bytes::from_static(b"a"));
        s.queue.push_line(1, Bytes::from_static(b"b"));
        assert_eq!(s.admit(), Err(AuditUnavailable::QueueFull));
        s.healthy.store(false, Ordering::Relaxed);
        assert_eq!(s.admit(), Err(AuditUnavailable::SinkFailing));
        assert_eq!(s.dropped_total(), 0, "refused, not dropped");

        let b = sink(FailureMode::BestEffort, 1);
        b.healthy.store(false, Ordering::Relaxed);
        for seq in 0..5 {
            assert!(b.admit().is_ok());
            b.queue.push_line(seq, Bytes::from_static(b"x"));
        }
        assert_eq!(b.dropped_total(), 4, "one queued, four declared as a gap");
    }

    #[tokio::test]
    async fn a_batch_given_up_is_declared_ahead_of_what_follows() {
        let q = CopyQueue::new(10, None);
        for seq in 0..3 {
            q.push_line(seq, Bytes::from_static(b"l"));
        }
        let batch = q.take(2).await;
        give_up(&q, batch);
        assert_eq!(
            q.take(10).await,
            [CopyItem::Gap {
                from: 0,
                to: 1,
                reason: super::super::copy::GapReason::ProduceFailed
            }]
        );
        assert_eq!(q.take(10).await.len(), 1);
        assert_eq!(q.declared_total(), 2);
    }

    #[test]
    fn a_batch_of_many_events_is_one_record_batch_without_a_producer() {
        let values: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("e{i}"))).collect();
        let mut bytes = encode_batch(&values, "gw-1", 1_700_000_000_000).expect("encode");
        let sets =
            kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes).expect("decode");
        assert_eq!(sets.len(), 1, "one batch per partition, as Kafka requires");
        let records = &sets[0].records;
        assert_eq!(records.len(), 5);
        assert!(records.iter().all(|r| r.producer_id == -1));
        assert_eq!(
            records[0].sequence, -1,
            "base sequence of a producer without an id"
        );
        assert_eq!(records[4].value.as_deref(), Some(&b"e4"[..]));
    }
}
