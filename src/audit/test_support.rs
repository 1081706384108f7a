//! Shared helpers for the audit tests: temp dirs, sample events, reading a trail back.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::event::{AuthzDecision, ConnInfo, Decision, Event, RuleRef};
use super::record::Record;
use super::sink::trail_files;
use super::writer::{AuditConfig, Auditor, FailureMode, FsyncPolicy};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "kgw-audit-{tag}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).expect("temp dir is creatable");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn config(dir: &Path) -> AuditConfig {
    AuditConfig {
        dir: dir.to_path_buf(),
        file_prefix: "audit".into(),
        max_file_bytes: 64 << 20,
        rotate_every: None,
        retain_files: 0,
        fsync: FsyncPolicy::Batch,
        on_failure: FailureMode::FailClosed,
        queue_capacity: 1024,
        batch_max: 64,
    }
}

pub fn conn(id: u64) -> ConnInfo {
    ConnInfo {
        id,
        client: format!("10.0.0.{}:5{:04}", id % 250, id % 10_000),
        listener: "external".into(),
        virtual_cluster: None,
    }
}

/// A decision; odd `i` are denials. `correlation_id` is `i`, so tests can count what came out.
pub fn decision(i: i32) -> Event {
    let deny = i % 2 == 1;
    Event::AuthzDecision(Box::new(AuthzDecision {
        conn: conn(i as u64 % 7),
        principal: format!("User:{}", ["alice", "bob", "mallory"][i as usize % 3]),
        api_key: if deny { 19 } else { 0 },
        api_name: if deny { "CreateTopics" } else { "Produce" }.into(),
        api_version: 7,
        correlation_id: i,
        client_id: Some("svc-a".into()),
        resource_type: "topic".into(),
        resource_name: format!("payments-{}", i % 4),
        operation: if deny { "create" } else { "write" }.into(),
        decision: if deny {
            Decision::Deny
        } else {
            Decision::Allow
        },
        rule: Some(RuleRef {
            file: "policy.toml".into(),
            line: 10 + (i as u32 % 3),
            text: "allow User:alice write topic:payments-*".into(),
        }),
        policy_hash: "ab".repeat(32),
        more: None,
        repeated: None,
    }))
}

/// All valid records under `dir`, in chain order.
pub fn read_records(dir: &Path) -> Vec<Record> {
    let mut out = Vec::new();
    for f in trail_files(dir, None).expect("listable") {
        let data = fs::read(&f).expect("readable");
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(r) = Record::parse_line(line) {
                out.push(r);
            }
        }
    }
    out
}

/// Correlation ids of the decisions in a trail.
pub fn decision_ids(records: &[Record]) -> Vec<i32> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::AuthzDecision(d) => Some(d.correlation_id),
            _ => None,
        })
        .collect()
}

/// Writes `ids` through a fresh auditor and shuts it down cleanly.
pub async fn write_trail(cfg: AuditConfig, ids: std::ops::Range<i32>) {
    let (a, h) = Auditor::start(cfg).expect("trail starts");
    for i in ids {
        a.record(decision(i)).expect("accepted");
    }
    a.shutdown().await.expect("clean shutdown");
    h.await.expect("writer ends");
}

/// Polls until `f` holds (or panics after 10 s).
pub async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
