//! KIP-951 rewriting cost: what finding (and, after a leader move, rewriting) the `node_endpoints`
//! of a Fetch v16+ response costs, beside copying the same response once. Every Fetch v16+
//! response is walked to its tagged fields; only a leader move's carries the tag.
//!
//! `cargo bench --bench endpoints` (plain `std::time::Instant`, prints a Markdown table).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_gateway::protocol::codec::{encode_response, response_header};
use kafka_gateway::protocol::endpoints;
use kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse};
use kafka_protocol::protocol::StrBytes;

/// A Fetch v16 response of `partitions` partitions with `bytes` of records each, with or without
/// node endpoints; without its length prefix.
fn response(partitions: i32, bytes: usize, endpoints: bool) -> Bytes {
    let records = Bytes::from(vec![0x5a; bytes]);
    let topics = (0..partitions)
        .map(|p| {
            FetchableTopicResponse::default()
                .with_topic_id(uuid::Uuid::from_u128(p as u128 / 10))
                .with_partitions(vec![PartitionData::default()
                    .with_partition_index(p)
                    .with_high_watermark(1000)
                    .with_records(Some(records.clone()))])
        })
        .collect();
    let mut resp = FetchResponse::default().with_responses(topics);
    if endpoints {
        resp.node_endpoints = (1..=3)
            .map(|n| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(n))
                    .with_host(StrBytes::from_static_str("broker.internal"))
                    .with_port(9092)
            })
            .collect();
    }
    let frame = encode_response(ApiKey::Fetch, 16, &response_header(1), &resp).expect("encode");
    frame.slice(4..)
}

/// Mean time per call of `f` over about `budget`.
fn time(budget: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    start.elapsed() / n
}

fn main() {
    let advertise = |node: i32| Some(("gw.example".to_string(), 9000 + node as u16));
    println!("| Fetch v16 response | copy once | walk, no endpoints | rewrite 3 endpoints |");
    println!("|---|---:|---:|---:|");
    for (partitions, bytes) in [(1, 1 << 20), (100, 10 << 10), (1000, 1 << 10), (1000, 64)] {
        let plain = response(partitions, bytes, false);
        let hinted = response(partitions, bytes, true);
        let budget = Duration::from_millis(500);
        let copy = time(budget, || {
            black_box(Bytes::copy_from_slice(black_box(&plain)));
        });
        let run = |payload: &Bytes| {
            let (mut seen, mut unmapped) = (Vec::new(), Vec::new());
            let parts = endpoints::rewrite(
                ApiKey::Fetch,
                16,
                payload.clone(),
                &advertise,
                &mut seen,
                &mut unmapped,
            )
            .expect("rewrite");
            black_box(parts);
        };
        let walk = time(budget, || run(&plain));
        let rewrite = time(budget, || run(&hinted));
        println!(
            "| {partitions} partitions x {bytes} B of records ({} KiB) | {copy:.1?} | {walk:.1?} | {rewrite:.1?} |",
            plain.len() >> 10
        );
    }
}
