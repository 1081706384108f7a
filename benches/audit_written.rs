//! Audit benchmark: what "fail-closed means written" costs a denied or admin request. For each
//! fsync policy, the latency from `record_written` to the record being in the file (fsynced under
//! `always` and `batch`), for one request at a time and for 64 at once (group commit), beside the
//! enqueue-only `record` a best-effort trail does.
//!
//! `cargo bench --bench audit_written` (plain `std::time::Instant`, prints a Markdown table). The
//! trail goes to `$KGW_BENCH_AUDIT_DIR` or the system temp dir: the disk under it is what is measured.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kafka_gateway::audit::{
    AuditConfig, Auditor, AuthzDecision, ConnInfo, Decision, Event, FailureMode, FsyncPolicy,
    RuleRef,
};

fn denial(i: usize) -> Event {
    Event::AuthzDecision(Box::new(AuthzDecision {
        conn: ConnInfo {
            id: i as u64 % 97,
            client: "10.1.2.3:51515".into(),
            listener: "tls".into(),
            virtual_cluster: None,
        },
        principal: "User:mallory".into(),
        api_key: 19,
        api_name: "CreateTopics".into(),
        api_version: 7,
        correlation_id: i as i32,
        client_id: Some("svc-a".into()),
        resource_type: "topic".into(),
        resource_name: format!("payments-{}", i % 16),
        operation: "Create".into(),
        decision: Decision::Deny,
        rule: Some(RuleRef {
            file: "policy.csv".into(),
            line: 12,
            text: "p, User:*, Topic, payments-*, All, *, deny".into(),
        }),
        policy_hash: "ab".repeat(32),
        more: None,
        repeated: None,
    }))
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

struct Row {
    policy: &'static str,
    waited: bool,
    concurrency: usize,
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

async fn run(
    dir: PathBuf,
    policy: &'static str,
    fsync: FsyncPolicy,
    waited: bool,
    concurrency: usize,
    rounds: usize,
) -> Row {
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = AuditConfig::new(&dir);
    cfg.fsync = fsync;
    cfg.on_failure = FailureMode::FailClosed;
    cfg.rotate_every = None;
    let (a, h) = Auditor::start(cfg).expect("trail starts");
    let mut lat = Vec::with_capacity(rounds * concurrency);
    let t0 = Instant::now();
    for r in 0..rounds {
        let mut tasks = Vec::with_capacity(concurrency);
        for c in 0..concurrency {
            let a = a.clone();
            let i = r * concurrency + c;
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                if waited {
                    let w = a.record_written(denial(i)).expect("accepted");
                    w.wait(Duration::from_secs(30)).await.expect("written");
                } else {
                    a.record(denial(i)).expect("accepted");
                }
                t.elapsed()
            }));
        }
        for t in tasks {
            lat.push(t.await.expect("task"));
        }
    }
    let took = t0.elapsed();
    a.shutdown().await.expect("clean shutdown");
    h.await.expect("writer ends");
    let _ = std::fs::remove_dir_all(&dir);
    lat.sort();
    Row {
        policy,
        waited,
        concurrency,
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
        per_sec: lat.len() as f64 / took.as_secs_f64(),
    }
}

fn main() {
    let base = std::env::var_os("KGW_BENCH_AUDIT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("kgw-audit-bench-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let policies: [(&str, FsyncPolicy); 4] = [
        ("always", FsyncPolicy::Always),
        ("batch (default)", FsyncPolicy::Batch),
        ("interval 1s", FsyncPolicy::Interval(Duration::from_secs(1))),
        ("never", FsyncPolicy::Never),
    ];
    let mut rows = Vec::new();
    rt.block_on(async {
        for (name, fsync) in policies {
            for (waited, concurrency, rounds) in [
                (false, 1, 500),
                (true, 1, 500),
                (false, 64, 40),
                (true, 64, 40),
            ] {
                rows.push(run(base.clone(), name, fsync, waited, concurrency, rounds).await);
            }
        }
    });
    println!("| fsync | caller | concurrent | p50 µs | p99 µs | records/s |");
    println!("|---|---|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} |",
            r.policy,
            if r.waited {
                "waits until written"
            } else {
                "enqueue only"
            },
            r.concurrency,
            us(r.p50),
            us(r.p99),
            r.per_sec
        );
    }
}
