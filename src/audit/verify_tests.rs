//! Tampering tests: each kind of change to a real trail is caught, at the first bad record.

use std::fs;
use std::path::{Path, PathBuf};

use super::record::{encode_body, encode_line, Record};
use super::sink::trail_files;
use super::test_support::*;
use super::verify::{cmd_verify, verify, Problem};

/// A pristine 3+ file trail, written once per test and copied into a scratch dir per tampering case.
async fn pristine() -> TempDir {
    let dir = TempDir::new("verify");
    let mut cfg = config(dir.path());
    cfg.max_file_bytes = 4000;
    write_trail(cfg, 0..30).await;
    assert!(trail_files(dir.path(), None).expect("ls").len() >= 3);
    dir
}

fn copy(from: &Path) -> (TempDir, Vec<PathBuf>) {
    let to = TempDir::new("verify-copy");
    for f in trail_files(from, None).expect("ls") {
        fs::copy(&f, to.path().join(f.file_name().expect("name"))).expect("copyable");
    }
    let files = trail_files(to.path(), None).expect("ls");
    (to, files)
}

fn lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .expect("utf8")
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(p: &Path, l: &[String]) {
    fs::write(p, l.join("\n") + "\n").expect("writable");
}

fn seq_at(p: &Path, line: usize) -> u64 {
    Record::parse_line(lines(p)[line - 1].as_bytes())
        .expect("valid")
        .seq
}

fn first_bad(dir: &TempDir) -> super::verify::BadRecord {
    let r = verify(&[dir.path().to_path_buf()]);
    assert!(!r.ok(), "tampering not detected: {r:?}");
    r.first_bad.expect("bad record")
}

#[tokio::test]
async fn each_kind_of_tampering_is_caught_at_the_first_bad_record() {
    let src = pristine().await;
    let ok = verify(&[src.path().to_path_buf()]);
    assert!(ok.ok(), "{ok:?}");
    let (text, good) = cmd_verify(&[src.path().to_path_buf()]);
    assert!(
        good && text.contains("audit verify: OK") && text.contains("30 (seq 0..29)"),
        "{text}"
    );

    // Edit a field.
    let (d, files) = copy(src.path());
    let f = &files[1];
    let seq = seq_at(f, 2);
    let mut l = lines(f);
    l[1] = l[1].replacen("payments", "paymentz", 1);
    write_lines(f, &l);
    let bad = first_bad(&d);
    assert_eq!((&bad.file, bad.line, bad.seq), (f, 2, Some(seq)));
    assert!(bad.problem.to_string().contains("edited"), "{bad}");

    // Delete a line.
    let (d, files) = copy(src.path());
    let f = &files[0];
    let mut l = lines(f);
    let deleted = seq_at(f, 3);
    l.remove(2);
    write_lines(f, &l);
    let bad = first_bad(&d);
    assert_eq!((&bad.file, bad.line), (f, 3));
    assert_eq!(
        bad.problem,
        Problem::SeqGap {
            expected: deleted,
            found: deleted + 1
        }
    );

    // Insert a copy of an earlier line.
    let (d, files) = copy(src.path());
    let f = &files[1];
    let mut l = lines(f);
    let dup = l[0].clone();
    l.insert(3, dup);
    write_lines(f, &l);
    let bad = first_bad(&d);
    assert_eq!((&bad.file, bad.line), (f, 4));
    assert!(matches!(bad.problem, Problem::SeqBackwards { .. }), "{bad}");

    // Insert a forged record with a correct hash of its own, claiming the next seq.
    let (d, files) = copy(src.path());
    let f = &files[1];
    let mut l = lines(f);
    let prev = Record::parse_line(l[1].as_bytes()).expect("valid");
    let mut forged = Vec::new();
    encode_line(
        prev.seq + 1,
        &prev.ts,
        &prev.hash,
        &encode_body(&decision(7777)),
        &mut forged,
    );
    l.insert(
        2,
        String::from_utf8(forged)
            .expect("utf8")
            .trim_end()
            .to_string(),
    );
    write_lines(f, &l);
    let bad = first_bad(&d);
    // The forgery links correctly, so the first record that no longer fits is the original successor.
    assert_eq!((&bad.file, bad.line), (f, 4));
    assert!(matches!(bad.problem, Problem::SeqBackwards { .. }), "{bad}");

    // Swap two lines.
    let (d, files) = copy(src.path());
    let f = &files[2];
    let mut l = lines(f);
    l.swap(1, 2);
    write_lines(f, &l);
    let bad = first_bad(&d);
    assert_eq!((&bad.file, bad.line), (f, 2));
    assert!(matches!(bad.problem, Problem::SeqGap { .. }), "{bad}");

    // Truncate the last file in the middle of a record.
    let (d, files) = copy(src.path());
    let f = files.last().expect("files");
    let data = fs::read(f).expect("readable");
    let n = lines(f).len();
    fs::write(f, &data[..data.len() - 40]).expect("writable");
    let bad = first_bad(&d);
    assert_eq!((&bad.file, bad.line), (f, n as u64));
    assert!(matches!(bad.problem, Problem::Truncated { .. }), "{bad}");

    // Truncate a middle file at a line boundary: caught where the next file no longer links.
    let (d, files) = copy(src.path());
    let mut l = lines(&files[1]);
    let cut = Record::parse_line(l[l.len() - 2].as_bytes())
        .expect("valid")
        .seq;
    l.truncate(l.len() - 2);
    write_lines(&files[1], &l);
    let bad = first_bad(&d);
    assert_eq!((&bad.file, bad.line), (&files[2], 1));
    assert!(
        matches!(bad.problem, Problem::SeqGap { expected, .. } if expected == cut),
        "{bad}"
    );

    // Delete a middle rotated file.
    let (d, files) = copy(src.path());
    fs::remove_file(&files[1]).expect("removable");
    let bad = first_bad(&d);
    assert_eq!((&bad.file, bad.line), (&files[2], 1));
    assert!(matches!(bad.problem, Problem::SeqGap { .. }), "{bad}");

    // Delete the first file (not by retention).
    let (d, files) = copy(src.path());
    fs::remove_file(&files[0]).expect("removable");
    let bad = first_bad(&d);
    assert_eq!((&bad.file, bad.line), (&files[1], 1));
    assert!(
        matches!(bad.problem, Problem::UnanchoredStart { .. }),
        "{bad}"
    );

    // Rewrite a record's content and fix its own hash: its successor no longer links.
    let (d, files) = copy(src.path());
    let f = &files[0];
    let mut l = lines(f);
    let orig = Record::parse_line(l[4].as_bytes()).expect("valid");
    let mut re = Vec::new();
    encode_line(
        orig.seq,
        &orig.ts,
        &orig.prev,
        &encode_body(&decision(4242)),
        &mut re,
    );
    l[4] = String::from_utf8(re).expect("utf8").trim_end().to_string();
    write_lines(f, &l);
    let bad = first_bad(&d);
    assert_eq!((&bad.file, bad.line), (f, 6));
    assert!(matches!(bad.problem, Problem::PrevMismatch { .. }), "{bad}");

    // The CLI text names the file, line and seq.
    let (text, good) = cmd_verify(&[d.path().to_path_buf()]);
    assert!(!good);
    assert!(
        text.contains("FAILED")
            && text.contains("line 6")
            && text.contains(&format!("seq {}", orig.seq + 1)),
        "{text}"
    );
}

#[test]
fn empty_input_is_not_ok() {
    let d = TempDir::new("verify-empty");
    let r = verify(&[d.path().to_path_buf()]);
    assert_eq!(r.first_bad.map(|b| b.problem), Some(Problem::NoRecords));
}
