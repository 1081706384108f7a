//! Raw Kafka requests for end-to-end tests: record batches, topics, Produce, Fetch, Metadata and
//! offsets, built with kafka-protocol so every field a test cares about is explicit.

use std::collections::HashMap;
use std::process::Command;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use uuid::Uuid;

use super::{repo_root, RawClient, Tools};

pub fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub fn topic(name: &str) -> TopicName {
    TopicName(sb(name))
}

pub fn group(name: &str) -> GroupId {
    GroupId(sb(name))
}

pub fn txn_id(name: &str) -> TransactionalId {
    TransactionalId(sb(name))
}

/// Who wrote a batch: a plain producer has none; idempotent and transactional ones have an id and epoch.
#[derive(Clone, Copy)]
pub struct BatchProducer {
    pub id: i64,
    pub epoch: i16,
    pub transactional: bool,
}

/// One uncompressed v2 record batch holding `values` (keys `k-0`, `k-1`, ...).
pub fn record_batch(values: &[&str], producer: Option<BatchProducer>) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: producer.is_some_and(|p| p.transactional),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.map_or(-1, |p| p.id),
            producer_epoch: producer.map_or(-1, |p| p.epoch),
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch wherever `offset - sequence` changes, and takes the
            // batch's base sequence from its first record. Apache Kafka refuses a Produce with more
            // than one batch per partition (INVALID_RECORD), and a plain producer's base sequence
            // is -1: so the sequence runs from -1 here (only the base sequence is on the wire).
            sequence: if producer.is_some() {
                i as i32
            } else {
                i as i32 - 1
            },
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("k-{i}"))),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
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
    .expect("encode record batch");
    buf.freeze()
}

/// The values of every record in a Fetch partition's `records` (empty when there are none).
pub fn record_values(records: &Option<Bytes>) -> Vec<String> {
    let Some(bytes) = records else {
        return Vec::new();
    };
    let mut buf = bytes.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .expect("decode fetched records")
        .into_iter()
        .flat_map(|set| set.records)
        .filter(|r| !r.control)
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// CreateTopics v5 for `names`, each with `partitions` partitions; returns (name, error code) per topic.
pub fn create_topics(c: &mut RawClient, names: &[&str], partitions: i32) -> Vec<(String, i16)> {
    let mut req = CreateTopicsRequest::default();
    req.topics = names
        .iter()
        .map(|n| {
            let mut t = CreatableTopic::default();
            t.name = topic(n);
            t.num_partitions = partitions;
            t.replication_factor = 1;
            t
        })
        .collect();
    req.timeout_ms = 10_000;
    let resp: CreateTopicsResponse = c.request(ApiKey::CreateTopics, 5, &req);
    resp.topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.error_code))
        .collect()
}

/// Creates topics that must not fail, and waits until every partition has a leader (Apache Kafka
/// answers CreateTopics before the leaders are elected; a Produce sent at once would get
/// NOT_LEADER_OR_FOLLOWER, which real clients retry after a metadata refresh).
pub fn create_topics_ok(c: &mut RawClient, names: &[&str], partitions: i32) {
    for (name, code) in create_topics(c, names, partitions) {
        assert_eq!(code, 0, "create topic {name}");
    }
    wait_for_leaders(c, names);
}

/// Waits until Metadata shows a leader for every partition of `names` (or a topic error other
/// than "not there yet", for a client that may not describe them).
pub fn wait_for_leaders(c: &mut RawClient, names: &[&str]) {
    let start = std::time::Instant::now();
    loop {
        let resp = metadata(c, Some(names), false);
        let ready = resp.topics.iter().all(|t| match t.error_code {
            0 => !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader_id.0 >= 0),
            3 | 5 => false,
            _ => true,
        });
        // The broker's metadata cache names a leader a moment before its replica manager has
        // become that leader: ListOffsets is answered by the replica manager.
        if ready && leaders_serve(c, &resp) {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "topics {names:?} have no leaders after 30 s: {resp:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A Produce v9 request: each element is (topic, partition, record batch).
pub fn produce_request(
    acks: i16,
    transactional_id: Option<&str>,
    parts: &[(&str, i32, Bytes)],
) -> ProduceRequest {
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 10_000;
    req.transactional_id = transactional_id.map(txn_id);
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (name, partition, batch) in parts {
        let mut p = PartitionProduceData::default();
        p.index = *partition;
        p.records = Some(batch.clone());
        match topics.iter_mut().find(|t| t.name == topic(name)) {
            Some(t) => t.partition_data.push(p),
            None => {
                let mut t = TopicProduceData::default();
                t.name = topic(name);
                t.partition_data = vec![p];
                topics.push(t);
            }
        }
    }
    req.topic_data = topics;
    req
}

/// Produce v9 with acks=-1; returns the response.
pub fn produce(
    c: &mut RawClient,
    transactional_id: Option<&str>,
    parts: &[(&str, i32, Bytes)],
) -> ProduceResponse {
    c.request(
        ApiKey::Produce,
        9,
        &produce_request(-1, transactional_id, parts),
    )
}

/// Error code of partition `partition` of `name` in a Produce response.
pub fn produce_error(resp: &ProduceResponse, name: &str, partition: i32) -> i16 {
    resp.responses
        .iter()
        .find(|t| t.name == topic(name))
        .and_then(|t| t.partition_responses.iter().find(|p| p.index == partition))
        .unwrap_or_else(|| panic!("no produce result for {name}-{partition}: {resp:?}"))
        .error_code
}

/// Produces plain records that must be accepted.
pub fn produce_ok(c: &mut RawClient, name: &str, partition: i32, values: &[&str]) {
    let resp = produce(c, None, &[(name, partition, record_batch(values, None))]);
    assert_eq!(
        produce_error(&resp, name, partition),
        0,
        "produce to {name}: {resp:?}"
    );
}

fn fetch_partition(partition: i32) -> FetchPartition {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = 0;
    p.current_leader_epoch = -1;
    p.last_fetched_epoch = -1;
    p.log_start_offset = -1;
    p.partition_max_bytes = 1 << 20;
    p
}

/// A topic of a Fetch request named by name (v12 and below).
pub fn fetch_topic_by_name(name: &str, partitions: &[i32]) -> FetchTopic {
    let mut t = FetchTopic::default();
    t.topic = topic(name);
    t.partitions = partitions.iter().map(|p| fetch_partition(*p)).collect();
    t
}

/// A topic of a Fetch request named by id (v13 and above).
pub fn fetch_topic_by_id(id: Uuid, partitions: &[i32]) -> FetchTopic {
    let mut t = FetchTopic::default();
    t.topic_id = id;
    t.partitions = partitions.iter().map(|p| fetch_partition(*p)).collect();
    t
}

/// A consumer's full Fetch (no fetch session) from offset 0 that waits at most 100 ms.
pub fn fetch_request(topics: Vec<FetchTopic>) -> FetchRequest {
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = 100;
    req.min_bytes = 1;
    req.max_bytes = 4 << 20;
    req.isolation_level = 0;
    req.session_id = 0;
    req.session_epoch = -1;
    req.topics = topics;
    req
}

/// Fetch v12 of partition 0 of each named topic.
pub fn fetch_by_name(c: &mut RawClient, names: &[&str]) -> FetchResponse {
    let topics = names.iter().map(|n| fetch_topic_by_name(n, &[0])).collect();
    c.request(ApiKey::Fetch, 12, &fetch_request(topics))
}

/// Fetch v13 of partition 0 of each topic id.
pub fn fetch_by_id(c: &mut RawClient, ids: &[Uuid]) -> FetchResponse {
    let topics = ids.iter().map(|id| fetch_topic_by_id(*id, &[0])).collect();
    c.request(ApiKey::Fetch, 13, &fetch_request(topics))
}

/// The partition `partition` of topic `name` in a Fetch response (by name, v12 and below).
pub fn fetched<'a>(
    resp: &'a FetchResponse,
    name: &str,
    partition: i32,
) -> &'a fetch_response::PartitionData {
    resp.responses
        .iter()
        .find(|t| t.topic == topic(name))
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition))
        .unwrap_or_else(|| panic!("no fetch result for {name}-{partition}: {resp:?}"))
}

/// The partition `partition` of topic `id` in a Fetch response (by id, v13 and above).
pub fn fetched_by_id(
    resp: &FetchResponse,
    id: Uuid,
    partition: i32,
) -> &fetch_response::PartitionData {
    resp.responses
        .iter()
        .find(|t| t.topic_id == id)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition))
        .unwrap_or_else(|| panic!("no fetch result for {id}-{partition}: {resp:?}"))
}

/// Metadata v12 for the named topics (`None`: all topics).
pub fn metadata(
    c: &mut RawClient,
    names: Option<&[&str]>,
    allow_auto_topic_creation: bool,
) -> MetadataResponse {
    let mut req = MetadataRequest::default();
    req.topics = names.map(|ns| {
        ns.iter()
            .map(|n| {
                let mut t = MetadataRequestTopic::default();
                t.name = Some(topic(n));
                t
            })
            .collect()
    });
    req.allow_auto_topic_creation = allow_auto_topic_creation;
    c.request(ApiKey::Metadata, 12, &req)
}

/// Metadata v12 by topic id.
pub fn metadata_by_id(c: &mut RawClient, ids: &[Uuid]) -> MetadataResponse {
    let mut req = MetadataRequest::default();
    req.topics = Some(
        ids.iter()
            .map(|id| {
                let mut t = MetadataRequestTopic::default();
                t.topic_id = *id;
                t.name = None;
                t
            })
            .collect(),
    );
    c.request(ApiKey::Metadata, 12, &req)
}

/// Names of the topics in a Metadata response that came back without error.
pub fn listed_topics(resp: &MetadataResponse) -> Vec<String> {
    resp.topics
        .iter()
        .filter(|t| t.error_code == 0)
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect()
}

/// Every topic's id, from a Metadata v12 for all topics.
pub fn topic_ids(c: &mut RawClient) -> HashMap<String, Uuid> {
    metadata(c, None, false)
        .topics
        .iter()
        .filter_map(|t| Some((t.name.as_ref()?.0.to_string(), t.topic_id)))
        .collect()
}

/// Whether the broker reports `name` (asked by a client that may describe every topic).
pub fn topic_exists(c: &mut RawClient, name: &str) -> bool {
    let resp = metadata(c, Some(&[name]), false);
    resp.topics
        .iter()
        .any(|t| t.name == Some(topic(name)) && t.error_code == 0)
}

/// Whether ListOffsets (latest) succeeds on every partition Metadata listed without error.
fn leaders_serve(c: &mut RawClient, meta: &MetadataResponse) -> bool {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = meta
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .filter_map(|t| {
            let mut lt = ListOffsetsTopic::default();
            lt.name = t.name.clone()?;
            lt.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut lp = ListOffsetsPartition::default();
                    lp.partition_index = p.partition_index;
                    lp.current_leader_epoch = -1;
                    lp.timestamp = -1;
                    lp
                })
                .collect();
            Some(lt)
        })
        .collect();
    if req.topics.is_empty() {
        return true;
    }
    let resp: ListOffsetsResponse = c.request(ApiKey::ListOffsets, 7, &req);
    resp.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .all(|p| !matches!(p.error_code, 5 | 6 | 3))
}

/// OffsetCommit v8 outside any generation (a "simple" consumer group, as Kafka's admin tools commit).
pub fn offset_commit_request(group_id: &str, offsets: &[(&str, i32, i64)]) -> OffsetCommitRequest {
    let mut req = OffsetCommitRequest::default();
    req.group_id = group(group_id);
    req.generation_id_or_member_epoch = -1;
    req.member_id = sb("");
    req.retention_time_ms = -1;
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (name, partition, offset) in offsets {
        let mut p = OffsetCommitRequestPartition::default();
        p.partition_index = *partition;
        p.committed_offset = *offset;
        p.committed_leader_epoch = -1;
        p.committed_metadata = Some(sb(""));
        match topics.iter_mut().find(|t| t.name == topic(name)) {
            Some(t) => t.partitions.push(p),
            None => {
                let mut t = OffsetCommitRequestTopic::default();
                t.name = topic(name);
                t.partitions = vec![p];
                topics.push(t);
            }
        }
    }
    req.topics = topics;
    req
}

/// OffsetCommit v8; returns (topic, partition, error code) for every partition in the response.
pub fn offset_commit(
    c: &mut RawClient,
    group_id: &str,
    offsets: &[(&str, i32, i64)],
) -> Vec<(String, i32, i16)> {
    let resp: OffsetCommitResponse = c.request(
        ApiKey::OffsetCommit,
        8,
        &offset_commit_request(group_id, offsets),
    );
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect()
}

/// The result of a client workload that may fail: its exit status and its JSON result line.
pub struct WorkloadOutcome {
    pub success: bool,
    pub json: serde_json::Value,
    pub stderr: String,
}

/// Runs tests/clients/workload.py, accepting a verification failure (exit code 1) as an outcome.
pub fn python_workload_outcome(tools: &Tools, args: &[&str]) -> WorkloadOutcome {
    let script = repo_root().join("tests/clients/workload.py");
    let out = Command::new(&tools.python)
        .arg(script)
        .args(args)
        .output()
        .expect("run workload.py");
    outcome("workload.py", &out)
}

/// Runs the Java workload client, accepting a verification failure (exit code 1) as an outcome.
pub fn java_workload_outcome(tools: &Tools, args: &[&str]) -> WorkloadOutcome {
    outcome(
        "WorkloadClient",
        &super::run_java_client(&tools.java_cp, args),
    )
}

/// The same with kafka-clients 4.4.0.
pub fn java44_workload_outcome(tools: &Tools, args: &[&str]) -> WorkloadOutcome {
    outcome(
        "WorkloadClient (4.4)",
        &super::run_java_client(&tools.java44_cp, args),
    )
}

fn outcome(what: &str, out: &std::process::Output) -> WorkloadOutcome {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code();
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    match (code, last) {
        (Some(0 | 1), Some(l)) => WorkloadOutcome {
            success: code == Some(0),
            json: serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: bad JSON {l:?}: {e}")),
            stderr,
        },
        _ => panic!(
            "{what} crashed ({}):\nstdout:\n{stdout}\nstderr (tail):\n{}",
            out.status,
            super::tail(&stderr, 4000)
        ),
    }
}
