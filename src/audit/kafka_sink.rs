//! The audit trail's second sink: the same events produced to a topic on the upstream cluster, so the
//! trail scales out with the cluster and survives the loss of one gateway's disk.
//!
//! It has its own bounded queue and task, and the same two failure modes as the file trail:
//! fail-closed refuses what cannot be queued or while the topic cannot be written; best-effort drops,
//! counts, and produces an `audit_gap` event once writing works again. Records are JSON objects
//! `{"ts", "instance", "event", ...}` keyed by the gateway instance (one partition keeps one
//! instance's order); the tamper-evident chain lives in the files, which `audit verify` checks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
use tokio::sync::mpsc;

use super::{AuditUnavailable, Event, FailureMode};
use crate::upstream::conn::{exchange, UpstreamConn};
use crate::upstream::{Cluster, Target};

#[derive(Debug, Clone)]
pub struct KafkaSinkConfig {
    pub topic: String,
    pub on_failure: FailureMode,
    pub queue_capacity: usize,
    pub batch_max: usize,
}

/// The handle the gateway records through; cheap to clone.
#[derive(Clone)]
pub struct KafkaSink {
    tx: mpsc::Sender<Bytes>,
    healthy: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    mode: FailureMode,
}

/// Every request to the broker gets this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE: usize = 16 << 20;

impl KafkaSink {
    /// Starts the producing task (inside a tokio runtime).
    pub fn start(config: KafkaSinkConfig, cluster: Arc<Cluster>, instance: String) -> KafkaSink {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let sink = KafkaSink {
            tx,
            healthy: Arc::new(AtomicBool::new(true)),
            dropped: Arc::new(AtomicU64::new(0)),
            mode: config.on_failure,
        };
        tokio::spawn(produce_loop(config, cluster, instance, rx, sink.clone()));
        sink
    }

    /// Queues one event. Never blocks.
    pub fn record(&self, event: &Event, instance: &str) -> Result<(), AuditUnavailable> {
        if self.mode == FailureMode::FailClosed && !self.healthy.load(Ordering::Relaxed) {
            return Err(AuditUnavailable::SinkFailing);
        }
        let line = render(event, instance);
        match self.tx.try_send(line) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AuditUnavailable::Closed),
            Err(mpsc::error::TrySendError::Full(_)) => match self.mode {
                FailureMode::FailClosed => Err(AuditUnavailable::QueueFull),
                FailureMode::BestEffort => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
            },
        }
    }

    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// One record value: the event's own JSON with the time and the instance added.
fn render(event: &Event, instance: &str) -> Bytes {
    let mut v = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut v {
        map.insert("ts".into(), super::time::rfc3339(SystemTime::now()).into());
        map.insert("instance".into(), instance.into());
    }
    Bytes::from(v.to_string())
}

async fn produce_loop(
    config: KafkaSinkConfig,
    cluster: Arc<Cluster>,
    instance: String,
    mut rx: mpsc::Receiver<Bytes>,
    sink: KafkaSink,
) {
    let mut conn: Option<UpstreamConn> = None;
    let mut backoff = Duration::from_millis(100);
    let mut failing_since: Option<SystemTime> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < config.batch_max {
            match rx.try_recv() {
                Ok(b) => batch.push(b),
                Err(_) => break,
            }
        }
        // A batch is only let go once the broker has it (fail-closed keeps retrying while the queue
        // fills and refuses new records); best-effort gives up after a few tries and counts the loss.
        let mut attempts = 0;
        loop {
            match produce(&cluster, &mut conn, &config.topic, &instance, &batch).await {
                Ok(()) => {
                    sink.healthy.store(true, Ordering::Relaxed);
                    if let Some(since) = failing_since.take() {
                        tracing::info!(topic = %config.topic, "audit topic writable again");
                        let dropped = sink.dropped.swap(0, Ordering::Relaxed);
                        if dropped > 0 {
                            let gap = Event::AuditGap {
                                dropped,
                                from: super::time::rfc3339(since),
                                to: super::time::rfc3339(SystemTime::now()),
                            };
                            let _ = produce(
                                &cluster,
                                &mut conn,
                                &config.topic,
                                &instance,
                                &[render(&gap, &instance)],
                            )
                            .await;
                        }
                    }
                    backoff = Duration::from_millis(100);
                    break;
                }
                Err(e) => {
                    conn = None;
                    attempts += 1;
                    if failing_since.is_none() {
                        failing_since = Some(SystemTime::now());
                        tracing::error!(topic = %config.topic, error = %e, "audit topic not writable");
                    }
                    sink.healthy.store(false, Ordering::Relaxed);
                    if config.on_failure == FailureMode::BestEffort && attempts >= 3 {
                        sink.dropped
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
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
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
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

    fn sink(mode: FailureMode, capacity: usize) -> (KafkaSink, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(capacity);
        let sink = KafkaSink {
            tx,
            healthy: Arc::new(AtomicBool::new(true)),
            dropped: Arc::new(AtomicU64::new(0)),
            mode,
        };
        (sink, rx)
    }

    fn event() -> Event {
        Event::GatewayStop {
            instance: "i".into(),
            reason: "r".into(),
            uptime_ms: 1,
        }
    }

    #[test]
    fn fail_closed_refuses_when_full_or_failing_and_loses_nothing_silently() {
        let (s, mut rx) = sink(FailureMode::FailClosed, 2);
        assert!(s.record(&event(), "i").is_ok());
        assert!(s.record(&event(), "i").is_ok());
        assert!(matches!(
            s.record(&event(), "i"),
            Err(AuditUnavailable::QueueFull)
        ));
        assert_eq!(s.dropped_total(), 0, "refused, not dropped");
        s.healthy.store(false, Ordering::Relaxed);
        let _ = rx.try_recv();
        assert!(matches!(
            s.record(&event(), "i"),
            Err(AuditUnavailable::SinkFailing)
        ));
        let line = rx.try_recv().expect("queued record");
        let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(
            (v["event"].as_str(), v["instance"].as_str()),
            (Some("gateway_stop"), Some("i"))
        );
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

    #[test]
    fn best_effort_counts_what_it_drops() {
        let (s, _rx) = sink(FailureMode::BestEffort, 1);
        s.healthy.store(false, Ordering::Relaxed);
        for _ in 0..5 {
            assert!(s.record(&event(), "i").is_ok());
        }
        assert_eq!(s.dropped_total(), 4, "one queued, four counted as dropped");
    }
}
