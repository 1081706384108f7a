//! Issue 13: heap allocations per forwarded request, counted for the whole gateway in this
//! process. The gateway runs on a current-thread runtime on the test thread, next to a raw client
//! on the same runtime, in front of a tansu broker (another process); allocation-counter counts
//! this thread's allocations, so everything the gateway does for a request (reading the frame,
//! authorizing, queueing, forwarding, reading and writing the response, metrics) is counted. The
//! client sends one pre-encoded frame again and again and reads each response into a reused
//! buffer: it allocates nothing itself.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::kafka::*;
use common::*;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request frame sent `n` times on `stream`, one at a time, each response read whole.
async fn round_trips(stream: &mut TcpStream, frame: &Bytes, n: usize, buf: &mut Vec<u8>) {
    for _ in 0..n {
        stream.write_all(frame).await.expect("write");
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.expect("length");
        let len = i32::from_be_bytes(len) as usize;
        assert!(len <= buf.capacity(), "a response of {len} bytes");
        buf.resize(len, 0);
        stream.read_exact(&mut buf[..len]).await.expect("response");
    }
}

fn config(dir: &Path, broker: &Broker) -> (String, Vec<u16>) {
    let plain = ListenerSpec {
        name: "plain",
        tls: false,
        client_auth: "none",
        sasl: "",
    };
    let policy = dir.join("allow.policy");
    std::fs::write(
        &policy,
        "p, User:ANONYMOUS, Topic, *, All, *, allow\n\
         p, User:ANONYMOUS, Cluster, kafka-cluster, All, *, allow\n",
    )
    .expect("policy");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/model.conf");
    // The default audit level: allowed data-plane decisions are not recorded.
    let extra = format!(
        "[authorization]\nmodel = {model:?}\npolicy_files = [{policy:?}]\n\n[audit]\ndir = {:?}\n",
        dir.join("audit")
    );
    let (text, ports, _admin) = gateway_config(&broker.upstream(), &[plain], None, &extra);
    (text, ports)
}

#[test]
fn forwarding_an_allowed_produce_or_fetch_allocates_nothing_per_request() {
    let tools = tools();
    let dir = TempDir::new("allocations");
    let broker = Broker::start(&tools, dir.path());
    let (text, _) = config(dir.path(), &broker);
    let cfg = kafka_gateway::config::Config::parse(&text, dir.path()).expect("config");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let running = rt
        .block_on(kafka_gateway::server::start(cfg))
        .expect("gateway");
    let addr = running.bootstrap[0].1;

    // Setup with the blocking raw client, on another thread while this one drives the gateway.
    rt.block_on(async {
        tokio::task::spawn_blocking(move || {
            let mut c = RawClient::connect(addr);
            create_topics_ok(&mut c, &["alloc"], 1);
            wait_for_leaders(&mut c, &["alloc"]);
            produce_ok(&mut c, "alloc", 0, &["warm"]);
        })
        .await
        .expect("setup")
    });

    let mut c = RawClient::connect(addr);
    let batch = record_batch(&["a-record-value-of-some-length"], None);
    let (_, produce) = c.encode(
        ApiKey::Produce,
        9,
        &produce_request(1, None, &[("alloc", 0, batch)]),
    );
    let (_, fetch) = c.encode(
        ApiKey::Fetch,
        12,
        &fetch_request(vec![fetch_topic_by_name("alloc", &[0])]),
    );
    drop(c);
    let mut buf = Vec::with_capacity(1 << 20);
    let mut stream = rt.block_on(async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        // Warm-up: the connection's upstream, queues, buffers and the metrics' label sets.
        round_trips(&mut s, &produce, 200, &mut buf).await;
        round_trips(&mut s, &fetch, 200, &mut buf).await;
        s
    });

    for (name, frame) in [("Produce v9 acks=1", &produce), ("Fetch v12", &fetch)] {
        // The difference between 300 and 100 round trips: what is per request, not per run.
        let mut counts = Vec::new();
        for n in [100, 300] {
            let c = allocation_counter::measure(|| {
                rt.block_on(round_trips(&mut stream, frame, n, &mut buf));
            });
            counts.push((c.count_total, c.bytes_total));
        }
        let per_request = (counts[1].0 as f64 - counts[0].0 as f64) / 200.0;
        let bytes_per_request = (counts[1].1 as f64 - counts[0].1 as f64) / 200.0;
        println!(
            "RESULT {name}: {per_request:.2} allocations and {bytes_per_request:.0} bytes per \
             forwarded request (100 requests: {:?}, 300: {:?})",
            counts[0], counts[1]
        );
        // None per request; a stray one per run (a timer level, a grown buffer) is not one.
        assert!(
            per_request < 0.1 && counts[1].0 < 30,
            "{name}: {per_request:.2} allocations per request ({counts:?})"
        );
    }

    rt.block_on(async {
        drop(stream);
        tokio::time::timeout(Duration::from_secs(10), running.shutdown())
            .await
            .expect("shutdown")
    });
    drop(broker);
}
