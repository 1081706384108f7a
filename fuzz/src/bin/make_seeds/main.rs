//! Writes the seed corpora for the fuzz targets (generated, never committed).
//!
//! Usage: `make_seeds [CORPUS_DIR [CAPTURE_DIR]]` (defaults: `corpus/` and, if it exists,
//! `captures/` beside this crate's Cargo.toml).
//! - `decode_request/`: for every API in `api::SUPPORTED` and every version in its gateway range
//!   (and the SASL handshake APIs, which the session decodes itself, at every schema version),
//!   a request payload (header + default body, plus bodies with one element in their main array
//!   where that is easy), length prefix removed.
//! - `rewrite_response/`: Metadata, FindCoordinator and DescribeCluster responses naming a few
//!   brokers (mapped and unmapped ids), and a default response of every other API the target
//!   selects, at every version in the gateway range, behind the two selector bytes the
//!   `rewrite_response` target reads.
//! - `merge_response/`: each request above (except the SASL ones) with a default response of its
//!   API and version, behind a partial and a deny-all authorizer byte.
//! - `frame_split/`: a chunk-size byte and streams of length-prefixed frames, some ending on a
//!   refused prefix.
//! - `scram_server/`, `upstream_sasl/`, `oauthbearer/`, `config_files/`: see `auth.rs` (SCRAM
//!   exchanges, broker answers to the gateway's own login made by the gateway's SCRAM server, a
//!   real minted dev token, the sample files in `policies/`).
//! - from CAPTURE_DIR (frames recorded by `capture_frames.py` while librdkafka and the Java client
//!   ran through the gateway): `cap-*` seeds for every protocol target and `scram_server`; see
//!   `capture.rs`.
//!
//! A body that kafka-protocol refuses to encode at some version (a field set that the version
//! lacks) is skipped: the candidates below are tried at every version and kept where they encode.

mod auth;
mod capture;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_gateway::protocol::codec::{self, response_header};
use kafka_gateway::protocol::frame::{self, LEN_PREFIX};
use kafka_gateway::protocol::{api, bounds, rewrite};
use kafka_gateway_fuzz::{advertise, response_apis, REWRITTEN, TOPIC, TOPIC_ID};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    create_topics_request, fetch_request, list_offsets_request, metadata_request,
    offset_commit_request, offset_fetch_request, produce_request, ApiKey, BrokerId,
    CreateTopicsRequest, DescribeClusterResponse, DescribeGroupsRequest, FetchRequest,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, ListOffsetsRequest, MetadataRequest,
    MetadataResponse, OffsetCommitRequest, OffsetFetchRequest, ProduceRequest, RequestHeader,
    RequestKind, ResponseKind, SaslAuthenticateRequest, SaslHandshakeRequest, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

fn s(v: &'static str) -> StrBytes {
    StrBytes::from_static_str(v)
}

fn topic() -> TopicName {
    TopicName(s(TOPIC))
}

/// `RequestKind` / `ResponseKind` (`$kind`) with a default body of `$key`, for each API the
/// gateway supports.
macro_rules! default_body {
    ($kind:ident, $key:expr) => {
        default_body!(@ $kind, $key;
            Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch, FindCoordinator,
            JoinGroup, Heartbeat, LeaveGroup, SyncGroup, DescribeGroups, ListGroups, ApiVersions,
            CreateTopics, DeleteTopics, DeleteRecords, InitProducerId, OffsetForLeaderEpoch,
            AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeConfigs,
            AlterConfigs, DescribeLogDirs, CreatePartitions, DeleteGroups, IncrementalAlterConfigs,
            OffsetDelete, DescribeCluster, DescribeProducers, DescribeTransactions, ListTransactions,
            ConsumerGroupHeartbeat, ConsumerGroupDescribe, SaslHandshake, SaslAuthenticate)
    };
    (@ $kind:ident, $key:expr; $($name:ident),*) => {
        match $key {
            $(ApiKey::$name => Some($kind::$name(Default::default())),)*
            _ => None,
        }
    };
}

fn default_request(key: ApiKey) -> Option<RequestKind> {
    default_body!(RequestKind, key)
}

fn default_response(key: ApiKey) -> Option<ResponseKind> {
    default_body!(ResponseKind, key)
}

/// A default response of `key` at `version` (header with correlation id 1, length prefix
/// removed), when kafka-protocol can encode it there.
fn default_response_payload(key: ApiKey, version: i16) -> Option<Bytes> {
    let body = default_response(key)?;
    let mut buf = bytes::BytesMut::new();
    response_header(1)
        .encode(&mut buf, key.response_header_version(version))
        .ok()?;
    body.encode(&mut buf, version).ok()?;
    Some(buf.freeze())
}

/// Bodies with one element in the main array, for the APIs most traffic uses. Some candidates
/// only encode at some versions (name vs. topic id); the others are skipped there.
fn rich_requests(key: ApiKey) -> Vec<RequestKind> {
    let uuid = uuid_of(TOPIC_ID);
    match key {
        ApiKey::Produce => [false, true]
            .into_iter()
            .map(|by_id| {
                let mut t = produce_request::TopicProduceData::default().with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from_static(b"not-a-record-batch"))),
                ]);
                if by_id {
                    t.topic_id = uuid;
                } else {
                    t.name = topic();
                }
                RequestKind::Produce(
                    ProduceRequest::default()
                        .with_acks(-1)
                        .with_timeout_ms(30_000)
                        .with_topic_data(vec![t]),
                )
            })
            .collect(),
        ApiKey::Fetch => [false, true]
            .into_iter()
            .map(|by_id| {
                let mut t = fetch_request::FetchTopic::default().with_partitions(vec![
                    fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(42)
                        .with_partition_max_bytes(1 << 20),
                ]);
                if by_id {
                    t.topic_id = uuid;
                } else {
                    t.topic = topic();
                }
                RequestKind::Fetch(
                    FetchRequest::default()
                        .with_max_wait_ms(500)
                        .with_max_bytes(1 << 20)
                        .with_topics(vec![t]),
                )
            })
            .collect(),
        ApiKey::Metadata => vec![RequestKind::Metadata(
            MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
            ])),
        )],
        ApiKey::ListOffsets => vec![RequestKind::ListOffsets(
            ListOffsetsRequest::default().with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)]),
            ]),
        )],
        ApiKey::OffsetCommit => [false, true]
            .into_iter()
            .map(|by_id| {
                let mut t = offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(7),
                    ]);
                if by_id {
                    t.topic_id = uuid;
                } else {
                    t.name = topic();
                }
                RequestKind::OffsetCommit(
                    OffsetCommitRequest::default()
                        .with_group_id(GroupId(s("g1")))
                        .with_topics(vec![t]),
                )
            })
            .collect(),
        ApiKey::OffsetFetch => vec![
            RequestKind::OffsetFetch(
                OffsetFetchRequest::default()
                    .with_group_id(GroupId(s("g1")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(topic())
                            .with_partition_indexes(vec![0, 1]),
                    ])),
            ),
            RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s("g1")))
                    .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(topic())
                        .with_partition_indexes(vec![0])])),
            ])),
        ],
        ApiKey::FindCoordinator => vec![
            RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(s("g1"))),
            RequestKind::FindCoordinator(
                FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g1"), s("g2")]),
            ),
        ],
        ApiKey::SaslHandshake => vec![RequestKind::SaslHandshake(
            SaslHandshakeRequest::default().with_mechanism(s("SCRAM-SHA-256")),
        )],
        ApiKey::SaslAuthenticate => vec![RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from_static(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")),
        )],
        ApiKey::DescribeGroups => vec![RequestKind::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g1"))]),
        )],
        ApiKey::CreateTopics => vec![RequestKind::CreateTopics(
            CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(topic())
                    .with_num_partitions(3)
                    .with_replication_factor(1)
                    .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_value(Some(s("compact")))]),
            ]),
        )],
        _ => Vec::new(),
    }
}

fn uuid_of(bytes: [u8; 16]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(bytes)
}

/// A request payload (length prefix removed): `body` behind a header of correlation id 1.
fn request_payload(key: ApiKey, version: i16, body: &RequestKind) -> Option<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("fuzz-seed")));
    let frame = codec::encode_request_kind_with_header(key, version, &header, body).ok()?;
    Some(frame.slice(LEN_PREFIX..))
}

fn metadata_response() -> MetadataResponse {
    let broker = |id: i32, host: &'static str, rack: Option<&'static str>| {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(s(host))
            .with_port(9092)
            .with_rack(rack.map(s))
    };
    MetadataResponse::default()
        .with_brokers(vec![
            broker(0, "b0.internal", Some("r1")),
            broker(1, "b1.internal", None),
            broker(70, "far.internal", Some("r2")),
        ])
        .with_cluster_id(Some(s("cluster-1")))
        .with_controller_id(BrokerId(1))
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(topic()))
            .with_partitions(vec![MetadataResponsePartition::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(1))
                .with_replica_nodes(vec![BrokerId(0), BrokerId(1)])
                .with_isr_nodes(vec![BrokerId(1)])])])
}

fn find_coordinator_responses() -> Vec<FindCoordinatorResponse> {
    let coordinator = |key: &'static str, id: i32, error: i16| {
        Coordinator::default()
            .with_key(s(key))
            .with_node_id(BrokerId(id))
            .with_host(s("bx.internal"))
            .with_port(9092)
            .with_error_code(error)
    };
    vec![
        // Old versions: one coordinator in the top-level fields.
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(3))
            .with_host(s("b3.internal"))
            .with_port(9092),
        // v4+: one entry per key, mapped, unmapped and failed.
        FindCoordinatorResponse::default().with_coordinators(vec![
            coordinator("g1", 3, 0),
            coordinator("g2", 99, 0),
            coordinator("g3", -1, 15),
        ]),
    ]
}

fn describe_cluster_response() -> DescribeClusterResponse {
    DescribeClusterResponse::default()
        .with_cluster_id(s("cluster-1"))
        .with_controller_id(BrokerId(0))
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(0))
                .with_host(s("b0.internal"))
                .with_port(9092),
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(12))
                .with_host(s("b12.internal"))
                .with_port(9092)
                .with_rack(Some(s("r1"))),
        ])
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(dir.join(name), bytes)
}

/// Audit topics for `audit_copy`: `flags | key byte + value | 0xFF | ...`: a chain with its start
/// marker, a declared gap, a duplicate, an edited record and a stranger.
fn audit_copy_seeds(dir: &Path) -> std::io::Result<usize> {
    use kafka_gateway::audit::record::{encode_line, GENESIS};
    std::fs::create_dir_all(dir)?;
    let mut lines = Vec::new();
    let mut prev = GENESIS.to_string();
    for seq in 0..6u64 {
        let mut buf = Vec::new();
        let body =
            format!(r#"{{"event":"gateway_stop","instance":"i","reason":"r{seq}","uptime_ms":1}}"#);
        prev = encode_line(
            seq,
            "2026-12-04T00:00:00.000000Z",
            &prev,
            body.as_bytes(),
            &mut buf,
        );
        buf.pop();
        lines.push(buf);
    }
    let start = format!(r#"{{"copy_start":{{"seq":0,"prev":"{GENESIS}"}}}}"#).into_bytes();
    let gap = br#"{"copy_gap":{"from_seq":3,"to_seq":3,"reason":"queue_full"}}"#.to_vec();
    let topics: Vec<(&str, u8, Vec<(u8, Vec<u8>)>)> = vec![
        ("chain", 0, (0..6).map(|i| (0, lines[i].clone())).collect()),
        (
            "declared",
            0,
            vec![
                (1, start),
                (1, lines[0].clone()),
                (1, lines[1].clone()),
                (1, lines[2].clone()),
                (2, gap),
                (2, lines[4].clone()),
                (2, lines[4].clone()),
            ],
        ),
        (
            "tampered",
            1,
            vec![
                (0, lines[2].clone()),
                (
                    0,
                    lines[3]
                        .iter()
                        .map(|b| if *b == b'3' { b'7' } else { *b })
                        .collect(),
                ),
                (3, b"not json".to_vec()),
                (0, lines[5].clone()),
            ],
        ),
    ];
    for (name, flags, records) in &topics {
        let mut seed = vec![*flags];
        for (i, (key, value)) in records.iter().enumerate() {
            if i > 0 {
                seed.push(0xFF);
            }
            seed.push(*key);
            seed.extend_from_slice(value);
        }
        write(dir, name, &seed)?;
    }
    Ok(topics.len())
}

fn main() -> std::io::Result<()> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let root = args.next().unwrap_or_else(|| here.join("corpus"));
    let captures = args.next().unwrap_or_else(|| here.join("captures"));

    let req_dir = root.join("decode_request");
    std::fs::create_dir_all(&req_dir)?;
    let mut requests = 0usize;
    let mut skipped = 0usize;
    let mut undecodable = 0usize;
    // (api, version, payload) of the forwarded APIs' requests, for merge_response.
    let mut forwarded: Vec<(ApiKey, i16, String, Bytes)> = Vec::new();
    // The forwarded APIs at their gateway range, and the SASL APIs the session decodes itself.
    let ranges = api::SUPPORTED
        .iter()
        .filter_map(|spec| Some((spec.key, api::gateway_range(spec.key)?)))
        .chain(
            [ApiKey::SaslHandshake, ApiKey::SaslAuthenticate]
                .into_iter()
                .filter_map(|key| Some((key, bounds::supported_body_versions(key as i16, true)?))),
        );
    for (key, (min, max)) in ranges {
        for version in min..=max {
            let mut bodies: Vec<RequestKind> = default_request(key).into_iter().collect();
            bodies.extend(rich_requests(key));
            for (i, body) in bodies.iter().enumerate() {
                match request_payload(key, version, body) {
                    Some(payload) => {
                        // A seed the gateway itself refuses would only teach the fuzzer error paths.
                        if let Err(e) = codec::decode_request(key, version, payload.clone()) {
                            eprintln!("warning: seed {key:?} v{version} #{i} does not decode: {e}");
                            undecodable += 1;
                        }
                        let name = format!("{key:?}-v{version}-{i}");
                        write(&req_dir, &name, &payload)?;
                        requests += 1;
                        if api::spec_for(key).is_some() {
                            forwarded.push((key, version, name, payload));
                        }
                    }
                    None => skipped += 1,
                }
            }
        }
    }

    // Requests at the 1 MiB request limit that decode to many times their size (issue 11 item
    // 5): the walker must refuse them before decoding. With these in the corpus, libFuzzer's
    // max_len grows to 1 MiB, and scripts/fuzz.sh runs this target with an 8 MiB allocation limit:
    // a decoded-size accounting that stops working becomes a crash at the first execution.
    for (name, version, topic, entry_len) in [
        (
            "hostile-Metadata-v9-empty-names",
            9,
            metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s("")))),
            2,
        ),
        (
            "hostile-Metadata-v12-unknown-tags",
            12,
            metadata_request::MetadataRequestTopic::default()
                .with_topic_id(uuid::Uuid::from_u128(7))
                .with_unknown_tagged_fields([(10, Bytes::new())].into()),
            20,
        ),
    ] {
        let n = (1 << 20) / entry_len - 64;
        let body = MetadataRequest::default().with_topics(Some(vec![topic; n]));
        let payload = request_payload(ApiKey::Metadata, version, &RequestKind::Metadata(body))
            .expect("a Metadata request encodes");
        match codec::decode_request(ApiKey::Metadata, version, payload.clone()) {
            Err(e) if e.reason() == "decoded_too_large" => {}
            other => panic!("{name}: expected a decoded-size refusal, got {other:?}"),
        }
        write(&req_dir, name, &payload)?;
        requests += 1;
    }
    // And one the in-place Metadata path accepts and plans: 36,000 distinct names of odd and even
    // length (the target's authorizer allows even ones), so the splice, the de-duplication table
    // and the gateway's own answers are all at their largest within the 2x bound.
    let names: Vec<metadata_request::MetadataRequestTopic> = (0..36_000)
        .map(|i| {
            let name = if i % 2 == 0 {
                format!("cost-{i:06}")
            } else {
                format!("deny-{i:05}")
            };
            metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name))))
        })
        .collect();
    let body = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(names));
    let payload = request_payload(ApiKey::Metadata, 12, &RequestKind::Metadata(body))
        .expect("a Metadata request encodes");
    write(&req_dir, "limit-Metadata-v12-distinct-names", &payload)?;
    requests += 1;
    // The other requests read in place at their largest: a Fetch of 15,000 topics of odd and even
    // length (half denied, so a splice and the gateway's answers), each also forgotten, and a
    // DeleteGroups of 60,000 such names, some repeated.
    let names: Vec<String> = (0..15_000)
        .map(|i| {
            if i % 2 == 0 {
                format!("t{i:05}")
            } else {
                format!("t{i:06}")
            }
        })
        .collect();
    let fetch = FetchRequest::default()
        .with_topics(
            names
                .iter()
                .map(|n| {
                    fetch_request::FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(n.clone())))
                        .with_partitions(vec![fetch_request::FetchPartition::default()])
                })
                .collect(),
        )
        .with_forgotten_topics_data(
            names
                .iter()
                .map(|n| {
                    fetch_request::ForgottenTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(n.clone())))
                        .with_partitions(vec![0])
                })
                .collect(),
        );
    let payload = request_payload(ApiKey::Fetch, 12, &RequestKind::Fetch(fetch))
        .expect("a Fetch request encodes");
    write(&req_dir, "limit-Fetch-v12-denied-and-forgotten", &payload)?;
    requests += 1;
    let groups = kafka_protocol::messages::DeleteGroupsRequest::default().with_groups_names(
        (0..60_000)
            .map(|i| GroupId(StrBytes::from_string(format!("g{:05}", i % 50_000))))
            .collect(),
    );
    let payload = request_payload(ApiKey::DeleteGroups, 2, &RequestKind::DeleteGroups(groups))
        .expect("a DeleteGroups request encodes");
    write(&req_dir, "limit-DeleteGroups-v2-names", &payload)?;
    requests += 1;

    let resp_dir = root.join("rewrite_response");
    std::fs::create_dir_all(&resp_dir)?;
    let mut responses = 0usize;
    for (sel, key) in REWRITTEN.into_iter().enumerate() {
        let (min, max) = api::gateway_range(key).expect("rewritten APIs are supported");
        for version in min..=max {
            let header = response_header(5);
            let encoded: Vec<Bytes> = match key {
                ApiKey::Metadata => {
                    codec::encode_response(key, version, &header, &metadata_response())
                        .into_iter()
                        .collect()
                }
                ApiKey::FindCoordinator => find_coordinator_responses()
                    .iter()
                    .filter_map(|r| codec::encode_response(key, version, &header, r).ok())
                    .collect(),
                _ => codec::encode_response(key, version, &header, &describe_cluster_response())
                    .into_iter()
                    .collect(),
            };
            for (i, frame) in encoded.iter().enumerate() {
                let payload = frame.slice(LEN_PREFIX..);
                if let Err(e) = rewrite::rewrite_brokers(key, version, payload, &advertise) {
                    eprintln!("warning: seed {key:?} v{version} #{i} does not rewrite: {e}");
                    undecodable += 1;
                }
                let mut input = vec![sel as u8, (version - min) as u8];
                input.extend_from_slice(&frame[LEN_PREFIX..]);
                write(&resp_dir, &format!("{key:?}-v{version}-{i}"), &input)?;
                responses += 1;
            }
        }
    }

    // Every other API the target selects: a default response at each version.
    for (sel, (key, min, max)) in response_apis().into_iter().enumerate() {
        if REWRITTEN.contains(&key) {
            continue;
        }
        for version in min..=max {
            if let Some(payload) = default_response_payload(key, version) {
                let mut input = vec![sel as u8, (version - min) as u8];
                input.extend_from_slice(&payload);
                write(&resp_dir, &format!("{key:?}-v{version}"), &input)?;
                responses += 1;
            }
        }
    }

    // merge_response: each forwarded request with a default response, partly allowed (0x00)
    // and denied (0xfe).
    let merge_dir = root.join("merge_response");
    std::fs::create_dir_all(&merge_dir)?;
    let mut merges = 0usize;
    for (key, version, name, request) in &forwarded {
        let (Some(response), Ok(len)) = (
            default_response_payload(*key, *version),
            u16::try_from(request.len()),
        ) else {
            continue;
        };
        for authz in [0x00u8, 0xfe] {
            let mut input = vec![authz];
            input.extend_from_slice(&len.to_be_bytes());
            input.extend_from_slice(request);
            input.extend_from_slice(&response);
            write(&merge_dir, &format!("{name}-{authz:02x}"), &input)?;
            merges += 1;
        }
    }

    // frame_split: chunk selector, then a stream of frames (two whole, one cut short), plus
    // streams stopped by a refused prefix (negative, zero, over the 1 MiB limit).
    let frame_dir = root.join("frame_split");
    std::fs::create_dir_all(&frame_dir)?;
    let one = frame::with_prefix(b"\x00\x03\x00\x0c\x00\x00\x00\x01\x00\x01c");
    let mut stream = vec![3u8];
    stream.extend_from_slice(&one);
    stream.extend_from_slice(&frame::with_prefix(&[0u8; 40]));
    stream.extend_from_slice(&one[..7]);
    write(&frame_dir, "frames", &stream)?;
    for (name, prefix) in [
        ("negative", -1i32),
        ("zero", 0),
        ("too-large", (1 << 20) + 1),
        ("at-limit", 1 << 20),
    ] {
        let mut s = vec![0u8];
        s.extend_from_slice(&one);
        s.extend_from_slice(&prefix.to_be_bytes());
        s.extend_from_slice(b"rest");
        write(&frame_dir, name, &s)?;
    }

    let mut auth_dirs = Vec::new();
    for target in [
        "scram_server",
        "oauthbearer",
        "config_files",
        "upstream_sasl",
    ] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        auth_dirs.push(dir);
    }
    let scram = auth::scram(&auth_dirs[0])?;
    let oauth = auth::oauth(&auth_dirs[1])?;
    let config = auth::config(&auth_dirs[2], &here.join("../policies"))?;
    let upstream = auth::upstream_sasl(&auth_dirs[3])?;
    let copies = audit_copy_seeds(&root.join("audit_copy"))?;
    // gssapi_server: the start of a krb5 AP-REQ (GSS framing, the Kerberos OID, an APPLICATION 14
    // header), the same followed by a second token, and layer choices for the parser.
    let gss_dir = root.join("gssapi_server");
    std::fs::create_dir_all(&gss_dir)?;
    let ap_req: &[u8] =
        b"\x00\x60\x82\x02\x10\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01\x00\x6e\x82\x01\xff\x30\x82\x01\xfb\xa0\x03\x02\x01\x05\xa1\x03\x02\x01\x0e";
    write(&gss_dir, "ap-req", ap_req)?;
    write(&gss_dir, "two-tokens", &[ap_req, b"\xff\xfe", &[]].concat())?;
    write(&gss_dir, "choice-none", b"\x01\x01\x00\x00\x00")?;
    write(&gss_dir, "choice-authzid", b"\x01\x01\x01\x00\x00alice@KGW.TEST")?;
    write(&gss_dir, "choice-integrity", b"\x01\x02\xff\xff\xff")?;

    println!(
        "seeds: {requests} requests ({skipped} version/body pairs that do not encode skipped), \
         {responses} responses, {merges} request/response pairs, 5 frame streams, {scram} SCRAM \
         exchanges, {upstream} broker SCRAM/PLAIN answers, {oauth} OAUTHBEARER inputs, {config} config files, \
         {copies} audit topics, in {}",
        root.display()
    );
    if captures.is_dir() {
        let c = capture::seeds(&captures, &root)?;
        println!(
            "captured ({}): {} requests, {} responses, {} request/response pairs, {} streams, \
             {} SCRAM logins",
            captures.display(),
            c.requests,
            c.responses,
            c.pairs,
            c.streams,
            c.scram
        );
    }
    if undecodable > 0 {
        // Worth a look (a valid encoding the gateway refuses), but not a reason to stop fuzzing.
        eprintln!("warning: {undecodable} seeds are refused by the gateway itself (see above)");
    }
    Ok(())
}
