//! Review tool tests: query filters and output, tail (including -f across rotation), the HTML report.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::event::{ConnInfo, Event};
use super::report::cmd_report;
use super::review::{cmd_query, cmd_tail, QueryFilters, TailOptions};
use super::sink::trail_files;
use super::test_support::*;
use super::writer::Auditor;

fn auth_failure(i: u64, name: &str) -> Event {
    Event::AuthFailure {
        conn: ConnInfo {
            id: 1000 + i,
            client: format!("192.0.2.{}:4{:04}", i % 3, i),
            listener: "external".into(),
            virtual_cluster: None,
        },
        mechanism: "SCRAM-SHA-256".into(),
        attempted: Some(name.into()),
        reason: if i % 2 == 0 {
            "bad_credentials"
        } else {
            "unknown_user"
        }
        .into(),
    }
}

async fn sample_trail() -> TempDir {
    let dir = TempDir::new("review");
    let (a, h) = Auditor::start(config(dir.path())).expect("starts");
    for i in 0..12 {
        a.record(decision(i)).expect("accepted");
    }
    for i in 0..5 {
        a.record(auth_failure(i, "eve")).expect("accepted");
    }
    a.record(auth_failure(9, "<script>alert(1)</script>"))
        .expect("accepted");
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    dir
}

fn data_rows(out: &str) -> Vec<&str> {
    out.lines()
        .skip(1)
        .filter(|l| !l.contains("records match"))
        .collect()
}

#[tokio::test]
async fn query_filters_and_formats() {
    let dir = sample_trail().await;
    let paths = [dir.path().to_path_buf()];
    let q = |f: QueryFilters| cmd_query(&paths, &f, false).expect("query runs");

    let all = q(QueryFilters::default());
    assert_eq!(data_rows(&all).len(), 18, "{all}");
    assert!(all.contains("18 of 18 records match"));
    // Aligned: every row's SEQ column starts where the header's does.
    let header = all.lines().next().expect("header");
    let col = header.find("SEQ").expect("SEQ column");
    for row in data_rows(&all) {
        assert!(
            row.is_char_boundary(col) && row[..col].ends_with("  "),
            "misaligned: {row}"
        );
    }

    let denied = q(QueryFilters {
        decision: Some("deny".into()),
        ..QueryFilters::default()
    });
    assert_eq!(data_rows(&denied).len(), 6);
    assert!(data_rows(&denied).iter().all(|r| r.ends_with("deny")));

    let bob = q(QueryFilters {
        principal: Some("bob".into()),
        ..QueryFilters::default()
    });
    assert_eq!(data_rows(&bob).len(), 4);

    let glob = q(QueryFilters {
        resource: Some("topic:payments-[1]*".into()),
        ..QueryFilters::default()
    });
    assert_eq!(data_rows(&glob).len(), 0, "brackets are literal in globs");
    let glob = q(QueryFilters {
        resource: Some("payments-?".into()),
        api: Some("createtopics".into()),
        ..QueryFilters::default()
    });
    assert_eq!(data_rows(&glob).len(), 6);

    let failures = q(QueryFilters {
        event: Some("auth_failure".into()),
        principal: Some("eve".into()),
        ..QueryFilters::default()
    });
    assert_eq!(data_rows(&failures).len(), 5);

    let recent = q(QueryFilters {
        since: Some("1h".into()),
        until: Some("2999-01-01T00:00:00Z".into()),
        ..QueryFilters::default()
    });
    assert_eq!(data_rows(&recent).len(), 18);
    let old = q(QueryFilters {
        until: Some("2001-01-01".into()),
        ..QueryFilters::default()
    });
    assert_eq!(data_rows(&old).len(), 0);
    assert!(cmd_query(
        &paths,
        &QueryFilters {
            since: Some("last tuesday".into()),
            ..QueryFilters::default()
        },
        false
    )
    .is_err());

    // JSON: the exact lines, so hashes still check.
    let json = cmd_query(
        &paths,
        &QueryFilters {
            decision: Some("deny".into()),
            ..QueryFilters::default()
        },
        true,
    )
    .expect("query runs");
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 6);
    for l in lines {
        super::record::Record::parse_line(l.as_bytes()).expect("verbatim record");
    }
}

#[tokio::test]
async fn tail_prints_the_last_records() {
    let dir = sample_trail().await;
    let mut out = Vec::new();
    let opts = TailOptions {
        last: 3,
        ..TailOptions::default()
    };
    cmd_tail(
        &[dir.path().to_path_buf()],
        &opts,
        &mut out,
        &AtomicBool::new(false),
    )
    .expect("tail runs");
    let out = String::from_utf8(out).expect("utf8");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("#17"), "{out}");
}

/// A `Write` shared with the test thread.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_new_records_across_rotation() {
    let dir = TempDir::new("tail");
    let mut cfg = config(dir.path());
    cfg.max_file_bytes = 2000;
    let (a, h) = Auditor::start(cfg).expect("starts");
    a.record(decision(0)).expect("accepted");
    a.flush().await.expect("flushed");

    let out = Shared::default();
    let stop = Arc::new(AtomicBool::new(false));
    let tail = {
        let (out, stop, dir) = (out.clone(), stop.clone(), dir.path().to_path_buf());
        std::thread::spawn(move || {
            let opts = TailOptions {
                follow: true,
                json: true,
                last: 10,
                poll: Duration::from_millis(10),
            };
            let mut w = out;
            cmd_tail(&[dir], &opts, &mut w, &stop).expect("tail runs");
        })
    };
    wait_for("initial record", || out.text().lines().count() == 1).await;
    for i in 1..20 {
        a.record(decision(i)).expect("accepted");
        if i % 5 == 0 {
            a.flush().await.expect("flushed");
        }
    }
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    assert!(
        trail_files(dir.path(), None).expect("ls").len() > 3,
        "rotated"
    );
    wait_for("all records", || out.text().lines().count() == 20).await;
    stop.store(true, Ordering::Relaxed);
    tail.join().expect("tail thread");
    let seqs: Vec<u64> = out
        .text()
        .lines()
        .map(|l| {
            super::record::Record::parse_line(l.as_bytes())
                .expect("valid")
                .seq
        })
        .collect();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
}

/// Checks that every element opened is closed in order (void elements and `/>` aside).
fn assert_balanced(html: &str) {
    const VOID: [&str; 6] = ["meta", "br", "hr", "img", "input", "link"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("unterminated tag");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name.trim(), "mismatched close");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!name.is_empty(), "bad tag <{tag}>");
        if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        stack.push(name);
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[tokio::test]
async fn report_is_self_contained_balanced_and_escaped() {
    let dir = sample_trail().await;
    let out = TempDir::new("report-out");
    let html_path = out.path().join("report.html");
    let s = cmd_report(&[dir.path().to_path_buf()], &html_path).expect("report");
    assert_eq!(
        (s.records, s.denied, s.auth_failures, s.chain_ok),
        (18, 6, 6, true)
    );
    let html = fs::read_to_string(&html_path).expect("written");
    assert_balanced(&html);
    assert!(html.contains("Chain verified"));
    assert!(html.contains("<svg"), "inline charts");
    assert!(
        !html.contains("<script"),
        "no scripts, and the hostile name is escaped"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || !html.contains("alert(1)"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    assert!(html.contains("User:bob") && html.contains("192.0.2.1"));

    // A tampered trail gets a red banner naming the record.
    let files = trail_files(dir.path(), None).expect("ls");
    let text = fs::read_to_string(&files[0])
        .expect("utf8")
        .replacen("payments-1", "payments-9", 1);
    fs::write(&files[0], text).expect("writable");
    let bad: PathBuf = out.path().join("bad.html");
    let s = cmd_report(&[dir.path().to_path_buf()], &bad).expect("report");
    assert!(!s.chain_ok);
    let html = fs::read_to_string(&bad).expect("written");
    assert_balanced(&html);
    assert!(
        html.contains("Chain verification FAILED") && html.contains("line 2"),
        "first bad record named"
    );
}
