//! Writer tests on real files: chain continuity across rotation and restarts, crash recovery, both failure
//! modes with exact accounting, retention, throughput.

use std::fs;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::event::{Event, FailureCause, FailureMode, FailureState, TornCause};
use super::record::GENESIS;
use super::sink::{parse_file_name, trail_files};
use super::test_support::*;
use super::verify::verify;
use super::writer::{AuditUnavailable, Auditor, FsyncPolicy};

fn assert_contiguous(records: &[super::record::Record]) {
    assert_eq!(records[0].prev, GENESIS);
    for (i, w) in records.windows(2).enumerate() {
        assert_eq!(w[1].seq, w[0].seq + 1, "seq gap after record {i}");
        assert_eq!(w[1].prev, w[0].hash, "broken link after record {i}");
    }
}

#[tokio::test]
async fn chain_and_seq_continue_across_size_rotation() {
    let dir = TempDir::new("size");
    let mut cfg = config(dir.path());
    cfg.max_file_bytes = 4000;
    write_trail(cfg, 0..60).await;

    let files = trail_files(dir.path(), Some("audit")).expect("listable");
    assert!(
        files.len() >= 5,
        "expected several files, got {}",
        files.len()
    );
    let records = read_records(dir.path());
    assert_eq!(records.len(), 60);
    assert_contiguous(&records);
    assert_eq!(decision_ids(&records), (0..60).collect::<Vec<_>>());
    // Each file is named after its first record and stays near the size limit.
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).expect("utf8 name");
        let (prefix, first) = parse_file_name(name).expect("trail name");
        assert_eq!(prefix, "audit");
        let data = fs::read(f).expect("readable");
        let line = data.split(|&b| b == b'\n').next().expect("non-empty");
        let rec = super::record::Record::parse_line(line).expect("valid");
        assert_eq!(rec.seq, first, "{name}");
        assert!(data.len() < 4000 + 1000, "{name} is {} bytes", data.len());
    }
    let report = verify(&[dir.path().to_path_buf()]);
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.records, 60);
}

#[tokio::test]
async fn chain_continues_across_time_rotation() {
    let dir = TempDir::new("time");
    let mut cfg = config(dir.path());
    cfg.rotate_every = Some(Duration::from_millis(40));
    let (a, h) = Auditor::start(cfg).expect("starts");
    for i in 0..4 {
        a.record(decision(i)).expect("accepted");
        a.flush().await.expect("flushed");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    let files = trail_files(dir.path(), None).expect("listable");
    assert_eq!(files.len(), 4, "{files:?}");
    let records = read_records(dir.path());
    assert_contiguous(&records);
    assert!(verify(&files).ok());
}

#[tokio::test]
async fn chain_continues_across_restarts() {
    let dir = TempDir::new("restart");
    write_trail(config(dir.path()), 0..10).await;
    write_trail(config(dir.path()), 10..20).await;
    write_trail(config(dir.path()), 20..25).await;
    let files = trail_files(dir.path(), None).expect("listable");
    assert_eq!(files.len(), 3, "a new file per start");
    let records = read_records(dir.path());
    assert_eq!(records.len(), 25);
    assert_contiguous(&records);
    let report = verify(&[dir.path().to_path_buf()]);
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.first_seq, report.last_seq), (Some(0), Some(24)));
}

/// kill -9 mid-write: the newest file ends with half a record. Verify names it; a restart declares it,
/// leaves it in place, and chains from the last good record; verify is then OK and says so.
#[tokio::test]
async fn torn_tail_after_crash_is_declared_and_chain_continues() {
    let dir = TempDir::new("torn");
    write_trail(config(dir.path()), 0..10).await;
    let files = trail_files(dir.path(), None).expect("listable");
    let newest = files.last().expect("a file").clone();
    let data = fs::read(&newest).expect("readable");
    let good_len = data.len() as u64;
    // Half of a plausible next record, no newline: what a crash in write(2) leaves.
    let half = &data[..data.len() / 20];
    fs::write(&newest, [data.as_slice(), half].concat()).expect("writable");

    let before = verify(&files);
    let bad = before.first_bad.clone().expect("torn record reported");
    assert_eq!(bad.file, newest);
    assert_eq!(bad.line, 11);
    assert_eq!(bad.offset, good_len);
    assert!(
        matches!(bad.problem, super::verify::Problem::Truncated { bytes } if bytes == half.len() as u64),
        "{bad}"
    );
    assert_eq!(before.records, 10);

    write_trail(config(dir.path()), 10..15).await;
    let records = read_records(dir.path());
    assert_eq!(decision_ids(&records), (0..15).collect::<Vec<_>>());
    let torn: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::AuditTornTail {
                file,
                line,
                offset,
                length,
                last_good_seq,
                cause,
                ..
            } => Some((
                file.clone(),
                *line,
                *offset,
                *length,
                *last_good_seq,
                *cause,
            )),
            _ => None,
        })
        .collect();
    let newest_name = newest.file_name().and_then(|n| n.to_str()).expect("name");
    assert_eq!(
        torn,
        vec![(
            newest_name.to_string(),
            11,
            good_len,
            half.len() as u64,
            Some(9),
            TornCause::Restart
        )]
    );
    // The torn bytes are still there: the trail is append-only.
    assert_eq!(
        fs::read(&newest).expect("readable").len() as u64,
        good_len + half.len() as u64
    );
    assert_contiguous(&records);
    let after = verify(&[dir.path().to_path_buf()]);
    assert!(after.ok(), "{after:?}");
    assert!(
        after.notes.iter().any(|n| n.contains("line 11")),
        "{:?}",
        after.notes
    );
    // Tampering with the declared bytes afterwards is still caught.
    fs::write(&newest, [data.as_slice(), b"X", &half[1..]].concat()).expect("writable");
    let tampered = verify(&[dir.path().to_path_buf()]);
    assert_eq!(tampered.first_bad.expect("caught").line, 11);
}

/// A torn tail on a newest file that holds nothing valid at all (crash right after rotation).
#[tokio::test]
async fn newest_file_entirely_torn() {
    let dir = TempDir::new("torn-all");
    write_trail(config(dir.path()), 0..3).await;
    let junk = dir
        .path()
        .join("audit-00000000000000000003-29991231T000000.000000Z.jsonl");
    fs::write(&junk, b"{\"schema\":1,\"seq\":3,\"ts\"").expect("writable");
    write_trail(config(dir.path()), 3..5).await;
    let records = read_records(dir.path());
    assert_contiguous(&records);
    assert_eq!(decision_ids(&records), (0..5).collect::<Vec<_>>());
    let report = verify(&[dir.path().to_path_buf()]);
    assert!(report.ok(), "{report:?}");
}

fn failures(records: &[super::record::Record]) -> Vec<(FailureState, FailureCause, u64)> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::AuditFailure {
                state,
                cause,
                refused,
                ..
            } => Some((*state, *cause, *refused)),
            _ => None,
        })
        .collect()
}

fn gaps(records: &[super::record::Record]) -> u64 {
    records
        .iter()
        .map(|r| match &r.event {
            Event::AuditGap { dropped, .. } => *dropped,
            _ => 0,
        })
        .sum()
}

/// Fail-closed against a real error: the trail directory is replaced by a regular file, so the next
/// rotation cannot create a file (ENOTDIR, even as root).
#[tokio::test]
async fn fail_closed_refuses_while_the_directory_is_unusable_and_records_recovery() {
    let base = TempDir::new("failclosed");
    let dir = base.path().join("trail");
    let saved = base.path().join("trail.saved");
    let mut cfg = config(&dir);
    cfg.max_file_bytes = 1; // every write rotates, so every write needs the directory
    let (a, h) = Auditor::start(cfg).expect("starts");
    let (mut ok, mut refused) = (Vec::new(), 0u64);
    for i in 0..5 {
        a.record(decision(i)).expect("accepted");
        ok.push(i);
    }
    a.flush().await.expect("flushed");

    fs::rename(&dir, &saved).expect("renamable");
    fs::write(&dir, b"not a directory").expect("writable");
    // Accepted before the failure is noticed: must not be lost.
    a.record(decision(5)).expect("accepted while still healthy");
    ok.push(5);
    assert_eq!(a.flush().await, Err(AuditUnavailable::SinkFailing));
    assert!(!a.healthy());
    for i in 6..10 {
        assert_eq!(a.record(decision(i)), Err(AuditUnavailable::SinkFailing));
        refused += 1;
    }
    assert_eq!(a.refused_total(), refused);

    fs::remove_file(&dir).expect("removable");
    fs::rename(&saved, &dir).expect("renamable");
    wait_for("recovery", || a.healthy()).await;
    for i in 10..12 {
        a.record(decision(i)).expect("accepted after recovery");
        ok.push(i);
    }
    a.shutdown().await.expect("clean");
    h.await.expect("ends");

    let records = read_records(&dir);
    assert_eq!(
        decision_ids(&records),
        ok,
        "every accepted record, once, in order"
    );
    let f = failures(&records);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].0, FailureState::Engaged);
    assert_eq!(
        (f[1].0, f[1].1),
        (FailureState::Recovered, FailureCause::WriteError)
    );
    // In = out + reported refusals.
    assert_eq!(f[1].2, refused);
    assert_eq!(12, ok.len() as u64 + f[1].2, "in = out + reported refusals");
    let report = verify(std::slice::from_ref(&dir));
    assert!(report.ok(), "{report:?}");
}

/// Disk full part-way through a batch: the complete records that landed are kept, the partial one is
/// declared, the rest are written after recovery, nothing twice.
#[tokio::test]
async fn disk_full_mid_write_keeps_whole_records_and_declares_the_partial_one() {
    let dir = TempDir::new("diskfull");
    let (a, h) = Auditor::start(config(dir.path())).expect("starts");
    for i in 0..5 {
        a.record(decision(i)).expect("accepted");
    }
    a.flush().await.expect("flushed");
    let line_len = fs::read(trail_files(dir.path(), None).expect("ls")[0].clone())
        .expect("readable")
        .len()
        / 5;
    let budget = a.disk_budget();
    budget.store((line_len * 2 + line_len / 2) as i64, Ordering::SeqCst);
    for i in 5..10 {
        a.record(decision(i)).expect("accepted");
    }
    assert_eq!(a.flush().await, Err(AuditUnavailable::SinkFailing));
    assert_eq!(a.record(decision(99)), Err(AuditUnavailable::SinkFailing));
    // The disk stays full across several retries (20 ms, 40 ms, ... backoff): no file piles up.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let files_while_full = trail_files(dir.path(), None).expect("ls").len();
    budget.store(-1, Ordering::SeqCst);
    wait_for("recovery", || a.healthy()).await;
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    assert!(
        files_while_full <= 2,
        "{files_while_full} trail files after retries on a full disk"
    );

    let records = read_records(dir.path());
    assert_eq!(decision_ids(&records), (0..10).collect::<Vec<_>>());
    assert_contiguous(&records);
    let torn: Vec<_> = records
        .iter()
        .filter(|r| {
            matches!(
                r.event,
                Event::AuditTornTail {
                    cause: TornCause::WriteError,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(torn.len(), 1);
    let f = failures(&records);
    assert_eq!(
        f.iter().map(|x| x.0).collect::<Vec<_>>(),
        [FailureState::Engaged, FailureState::Recovered]
    );
    assert_eq!(f[1].2, 1, "the one refused record is reported");
    let report = verify(&[dir.path().to_path_buf()]);
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
}

/// A slow disk (every write takes 30 ms) under a burst: fail-closed refuses what the queue cannot
/// hold, and every record it accepted reaches the trail, in order; nothing is lost silently.
#[tokio::test]
async fn slow_disk_fail_closed_refuses_the_overflow_and_writes_everything_it_accepted() {
    let dir = TempDir::new("slowdisk");
    let mut cfg = config(dir.path());
    cfg.queue_capacity = 64;
    cfg.batch_max = 16;
    let (a, h) = Auditor::start(cfg).expect("starts");
    a.disk_delay_ms().store(30, Ordering::SeqCst);
    let mut accepted = Vec::new();
    let mut refused = 0u64;
    for i in 0..1000 {
        match a.record(decision(i)) {
            Ok(()) => accepted.push(i),
            Err(AuditUnavailable::QueueFull) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(refused > 0, "a 64-record queue took a 1,000-record burst");
    assert!(accepted.len() >= 64, "accepted only {}", accepted.len());
    a.disk_delay_ms().store(0, Ordering::SeqCst);
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    let records = read_records(dir.path());
    assert_eq!(
        decision_ids(&records),
        accepted,
        "accepted = written, in order"
    );
    assert_eq!(accepted.len() as u64 + refused, 1000);
    assert_eq!(a.refused_total(), refused, "every refusal counted");
    assert!(verify(&[dir.path().to_path_buf()]).ok());
}

/// Best-effort on the same slow disk: never refuses; drops are counted and written as a gap.
#[tokio::test]
async fn slow_disk_best_effort_never_blocks_and_reports_what_it_dropped() {
    let dir = TempDir::new("slowdisk-be");
    let mut cfg = config(dir.path());
    cfg.on_failure = FailureMode::BestEffort;
    cfg.queue_capacity = 64;
    cfg.batch_max = 16;
    let (a, h) = Auditor::start(cfg).expect("starts");
    a.disk_delay_ms().store(30, Ordering::SeqCst);
    let started = Instant::now();
    for i in 0..1000 {
        assert_eq!(a.record(decision(i)), Ok(()), "best effort never refuses");
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "recording waited for the disk: {:?}",
        started.elapsed()
    );
    a.disk_delay_ms().store(0, Ordering::SeqCst);
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    let records = read_records(dir.path());
    let kept = decision_ids(&records).len() as u64;
    assert!(gaps(&records) > 0, "no gap written for the drops");
    assert_eq!(kept + gaps(&records), 1000, "in = out + reported drops");
    assert!(verify(&[dir.path().to_path_buf()]).ok());
}

/// Best-effort: callers are never refused; what did not fit is counted and reported as a gap.
#[tokio::test]
async fn best_effort_counts_drops_and_writes_a_gap() {
    let dir = TempDir::new("besteffort");
    let mut cfg = config(dir.path());
    cfg.on_failure = FailureMode::BestEffort;
    cfg.queue_capacity = 8;
    let (a, h) = Auditor::start(cfg).expect("starts");
    a.disk_budget().store(0, Ordering::SeqCst);
    a.record(decision(0)).expect("accepted");
    wait_for("failure", || !a.healthy()).await;
    for i in 1..50 {
        assert_eq!(a.record(decision(i)), Ok(()), "best effort never refuses");
    }
    let dropped = a.dropped_total();
    assert!(dropped >= 50 - 1 - 8, "dropped {dropped}");
    a.disk_budget().store(-1, Ordering::SeqCst);
    wait_for("recovery", || a.healthy()).await;
    a.shutdown().await.expect("clean");
    h.await.expect("ends");

    let records = read_records(dir.path());
    let ids = decision_ids(&records);
    assert_eq!(
        ids.len() as u64 + gaps(&records),
        50,
        "in = out + reported drops"
    );
    assert_eq!(gaps(&records), dropped);
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ids, "what was kept is in order");
    assert!(failures(&records)
        .iter()
        .any(|f| f.0 == FailureState::Recovered));
    assert!(verify(&[dir.path().to_path_buf()]).ok());
}

#[tokio::test]
async fn retention_deletes_old_files_and_verify_accepts_only_that() {
    let dir = TempDir::new("retention");
    let mut cfg = config(dir.path());
    cfg.max_file_bytes = 3000;
    cfg.retain_files = 3;
    write_trail(cfg, 0..80).await;
    let files = trail_files(dir.path(), None).expect("listable");
    assert_eq!(files.len(), 3);
    let report = verify(&[dir.path().to_path_buf()]);
    assert!(report.ok(), "{report:?}");
    assert!(report.first_seq.expect("records") > 0);
    assert!(
        report.notes.iter().any(|n| n.contains("retention")),
        "{:?}",
        report.notes
    );
    // Deleting one more file than retention did is caught, at the new first record.
    fs::remove_file(&files[0]).expect("removable");
    let report = verify(&[dir.path().to_path_buf()]);
    let bad = report.first_bad.expect("caught");
    assert_eq!((bad.file.clone(), bad.line), (files[1].clone(), 1));
    assert!(
        matches!(bad.problem, super::verify::Problem::UnanchoredStart { .. }),
        "{bad}"
    );
}

#[tokio::test]
async fn interval_and_always_fsync_policies_write_everything() {
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::from_millis(5)),
        FsyncPolicy::Never,
    ] {
        let dir = TempDir::new("fsync");
        let mut cfg = config(dir.path());
        cfg.fsync = policy;
        let (a, h) = Auditor::start(cfg).expect("starts");
        for i in 0..20 {
            a.record(decision(i)).expect("accepted");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        a.flush().await.expect("flushed");
        assert_eq!(
            decision_ids(&read_records(dir.path())).len(),
            20,
            "{policy:?}"
        );
        drop(a);
        // Dropping every handle also ends the writer after writing what is queued.
        h.await.expect("ends");
        assert!(verify(&[dir.path().to_path_buf()]).ok());
    }
}

#[tokio::test]
async fn disabled_and_closed() {
    let off = Auditor::disabled();
    assert_eq!(off.record(decision(1)), Ok(()));
    assert_eq!(off.flush().await, Ok(()));
    assert!(off.healthy());

    let dir = TempDir::new("closed");
    let (a, h) = Auditor::start(config(dir.path())).expect("starts");
    a.shutdown().await.expect("clean");
    assert_eq!(a.record(decision(1)), Err(AuditUnavailable::Closed));
    assert!(!a.healthy());
    h.await.expect("ends");
}

#[test]
fn config_validation_lists_every_problem() {
    let mut cfg = config(std::path::Path::new("/tmp/x"));
    cfg.file_prefix = "a/b".into();
    cfg.queue_capacity = 0;
    cfg.batch_max = 0;
    let e = cfg.validate().expect_err("invalid").to_string();
    assert!(
        e.contains("file_prefix") && e.contains("queue_capacity") && e.contains("batch_max"),
        "{e}"
    );
}

#[test]
fn unwritable_trail_fails_at_start() {
    let base = TempDir::new("startfail");
    let file = base.path().join("plain-file");
    fs::write(&file, b"x").expect("writable");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let r = rt.block_on(async { Auditor::start(config(&file.join("trail"))).map(|_| ()) });
    assert!(r.is_err());
}

/// 100k records with an fsync per batch. Prints the rate; asserts only that nothing was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_100k_with_fsync_per_batch() {
    const N: i32 = 100_000;
    let dir = TempDir::new("throughput");
    let mut cfg = config(dir.path());
    cfg.queue_capacity = 8192;
    cfg.batch_max = 1024;
    let (a, h) = Auditor::start(cfg).expect("starts");
    let started = Instant::now();
    let mut waits = 0u64;
    for i in 0..N {
        let mut ev = decision(i);
        loop {
            match a.record(ev) {
                Ok(()) => break,
                Err(AuditUnavailable::QueueFull) => {
                    // A producer that must not lose records waits for room (the gateway would instead
                    // refuse the request); refusals are reported in the trail.
                    waits += 1;
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    ev = decision(i);
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
    a.flush().await.expect("flushed");
    let elapsed = started.elapsed();
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    let rate = f64::from(N) / elapsed.as_secs_f64();
    let bytes: u64 = trail_files(dir.path(), None)
        .expect("ls")
        .iter()
        .map(|f| fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let vstart = Instant::now();
    let report = verify(&[dir.path().to_path_buf()]);
    println!(
        "audit throughput: {N} records in {elapsed:?} = {rate:.0} records/s ({:.1} MB/s, fsync per batch of <= 1024, {waits} queue-full waits); verify: {:?}",
        bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        vstart.elapsed()
    );
    assert!(report.ok(), "{report:?}");
    let ids = decision_ids(&read_records(dir.path()));
    assert_eq!(ids.len(), N as usize);
}

/// Fail-closed means written: a waiter is told only once its record is in the file. A slow disk
/// (every write takes 150 ms) holds the answer back; 32 concurrent waiters share the writes (group
/// commit) instead of taking a write each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_waited_on_is_in_the_file_before_the_waiter_is_told() {
    let dir = TempDir::new("written");
    let (a, h) = Auditor::start(config(dir.path())).expect("starts");
    a.disk_delay_ms().store(150, Ordering::SeqCst);
    let t0 = Instant::now();
    let waits: Vec<_> = (0..32)
        .map(|i| a.record_written(decision(i)).expect("accepted"))
        .collect();
    let mut tasks = Vec::new();
    for (i, w) in waits.into_iter().enumerate() {
        let dir = dir.path().to_path_buf();
        tasks.push(tokio::spawn(async move {
            w.wait(Duration::from_secs(10)).await.expect("written");
            let ids = decision_ids(&read_records(&dir));
            assert!(
                ids.contains(&(i as i32)),
                "record {i} told written before it is"
            );
            t0.elapsed()
        }));
    }
    for t in tasks {
        let took = t.await.expect("waiter");
        assert!(took >= Duration::from_millis(150), "told after {took:?}");
        assert!(
            took < Duration::from_millis(1500),
            "32 waiters took {took:?}: no group commit"
        );
    }
    a.disk_delay_ms().store(0, Ordering::SeqCst);
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
}

/// A write that fails tells its waiters so (they refuse); a write slower than the deadline is
/// refused too; the records stay queued and reach the trail once the disk recovers.
#[tokio::test]
async fn a_waiter_is_refused_when_the_write_fails_or_is_too_slow() {
    let dir = TempDir::new("unwritten");
    let (a, h) = Auditor::start(config(dir.path())).expect("starts");
    a.disk_budget().store(0, Ordering::SeqCst);
    let w = a.record_written(decision(1)).expect("accepted");
    assert_eq!(
        w.wait(Duration::from_secs(5)).await,
        Err(AuditUnavailable::SinkFailing),
        "a full disk refuses the waiter"
    );
    a.disk_budget().store(-1, Ordering::SeqCst);
    wait_for("recovery", || a.healthy()).await;
    a.disk_delay_ms().store(300, Ordering::SeqCst);
    let slow = a.record_written(decision(2)).expect("accepted");
    assert_eq!(
        slow.wait(Duration::from_millis(50)).await,
        Err(AuditUnavailable::NotWritten(Duration::from_millis(50)))
    );
    a.disk_delay_ms().store(0, Ordering::SeqCst);
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    assert_eq!(decision_ids(&read_records(dir.path())), [1, 2]);

    // Best-effort trails and no trail at all have nothing to wait for.
    let dir = TempDir::new("unwritten-be");
    let mut cfg = config(dir.path());
    cfg.on_failure = FailureMode::BestEffort;
    let (a, h) = Auditor::start(cfg).expect("starts");
    a.disk_delay_ms().store(300, Ordering::SeqCst);
    let w = a.record_written(decision(3)).expect("accepted");
    assert_eq!(w.wait(Duration::from_millis(1)).await, Ok(()));
    a.disk_delay_ms().store(0, Ordering::SeqCst);
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    let w = Auditor::disabled()
        .record_written(decision(4))
        .expect("no trail");
    assert_eq!(w.wait(Duration::from_millis(1)).await, Ok(()));
}

/// The Kafka copy gets the file's own lines, byte for byte, in chain order; a restart copies
/// again what the previous run wrote after its watermark, so the copy's chain has no hole; the
/// whole result verifies as the topic would.
#[tokio::test]
async fn the_copy_is_the_files_lines_and_a_restart_copies_what_was_not_copied() {
    use super::copy::{watermark_path, CopyItem, CopyQueue};
    use super::kafka_verify::{verify_copy, CopyRecord};
    let dir = TempDir::new("copy");
    let mark = watermark_path(dir.path(), "audit");
    let q = CopyQueue::new(1000, Some(mark.clone()));
    let (a, h) = Auditor::start_copying(config(dir.path()), Some(q.clone())).expect("starts");
    for i in 0..10 {
        a.record(decision(i)).expect("accepted");
    }
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    let mut copied = Vec::new();
    while !q.is_empty() {
        copied.extend(q.take(100).await);
    }
    let file_lines: Vec<Vec<u8>> = trail_files(dir.path(), None)
        .expect("ls")
        .iter()
        .flat_map(|f| {
            fs::read(f)
                .expect("readable")
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect();
    let lines: Vec<Vec<u8>> = copied
        .iter()
        .filter_map(|i| match i {
            CopyItem::Line { line, .. } => Some(line.to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(lines, file_lines, "the copy is the file, line for line");
    assert!(
        matches!(&copied[0], CopyItem::Start { seq: 0, prev } if prev == GENESIS),
        "{:?}",
        copied[0]
    );

    // The topic had up to seq 4 when the gateway died; the next run copies 5.. again first.
    q.write_watermark(4);
    let q2 = CopyQueue::new(1000, Some(mark));
    let (a, h) = Auditor::start_copying(config(dir.path()), Some(q2.clone())).expect("restarts");
    a.record(decision(10)).expect("accepted");
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
    let mut again = Vec::new();
    while !q2.is_empty() {
        again.extend(q2.take(100).await);
    }
    let seqs: Vec<u64> = again
        .iter()
        .filter_map(|i| match i {
            CopyItem::Line { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, (5..=10).collect::<Vec<_>>(), "{again:?}");

    // What the topic holds: the first run's lines up to 4, then the second run's.
    let mut topic = Vec::new();
    for (key, items) in [("gw-1", &copied), ("gw-2", &again)] {
        for item in items.iter() {
            let value = match item {
                CopyItem::Line { seq, line } if key == "gw-2" || *seq <= 4 => line.clone(),
                CopyItem::Line { .. } => continue,
                other => super::copy::Marker::of(other).expect("marker").to_bytes(),
            };
            topic.push(CopyRecord {
                partition: 0,
                offset: topic.len() as i64,
                key: Some(key.into()),
                value,
            });
        }
    }
    let report = verify_copy(&topic, &std::collections::HashMap::new());
    assert!(report.ok(), "{report}");
    assert_eq!(report.chains.len(), 1, "{report}");
    assert_eq!(report.chains[0].last_seq, 10);
}

/// Records nobody waits for share a write after at most `WRITE_LINGER` (no flush needed to see
/// them); a record someone waits for is written at once, taking the lingering ones with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwaited_records_linger_briefly_and_a_waited_one_does_not() {
    use super::writer::WRITE_LINGER;
    let dir = TempDir::new("linger");
    let (a, h) = Auditor::start(config(dir.path())).expect("starts");
    for i in 0..10 {
        a.record(decision(i)).expect("accepted");
    }
    let deadline = Instant::now() + WRITE_LINGER * 40;
    while decision_ids(&read_records(dir.path())).len() < 10 {
        assert!(Instant::now() < deadline, "unwaited records never written");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    a.record(decision(10)).expect("accepted");
    let t0 = Instant::now();
    a.record_written(decision(11))
        .expect("accepted")
        .wait(Duration::from_secs(5))
        .await
        .expect("written");
    let took = t0.elapsed();
    let ids = decision_ids(&read_records(dir.path()));
    assert!(ids.contains(&10) && ids.contains(&11), "{ids:?}");
    assert!(took < Duration::from_secs(1), "waited record took {took:?}");
    a.shutdown().await.expect("clean");
    h.await.expect("ends");
}
