//! `audit verify`: checks that a trail is complete and unaltered, and names the first record that is not.
//!
//! Each line must carry its own correct hash, and link to the line before it (`seq` one more, `prev`
//! equal to its hash), across files in chain order. That detects edited, deleted, inserted, reordered
//! and truncated records. Two things break the chain legitimately, and are accepted only when a later
//! record *in the verified chain* vouches for them:
//!
//! - **Retention**: the first retained file starts at seq N > 0. Accepted if an `audit_retention` record
//!   declares that first seq and its `prev`. Deleting more files than retention did is reported.
//! - **Crash**: bytes after a file's last valid record (a torn write). Accepted if an `audit_torn_tail`
//!   record declares exactly those bytes (file, offset, length, SHA-256); the chain then continues from
//!   the last valid record. A truncation or an edit nobody declared is reported at its line.
//!
//! What a hash chain cannot show on its own is that the newest records were removed (the trail simply
//! ends earlier): the report prints the head (last seq and hash) to compare with an external copy.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use super::event::Event;
use super::record::{self, LineError, Record, GENESIS};
use super::sink::{file_name, sort_chain_order, trail_files};

/// What is wrong with the first bad record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file could not be read.
    Unreadable(String),
    /// The line is not a valid record (malformed, edited, no hash).
    Invalid(LineError),
    /// The file ends in the middle of a record and no `audit_torn_tail` record accounts for it.
    Truncated { bytes: u64 },
    /// Records are missing before this one (deleted, or moved later).
    SeqGap { expected: u64, found: u64 },
    /// This record's seq was already used (inserted, duplicated or moved earlier).
    SeqBackwards { expected: u64, found: u64 },
    /// Right seq, but it does not link to the record before it (replaced, or the previous one was).
    PrevMismatch { expected: String, found: String },
    /// The chain does not start at genesis and no retention record vouches for its start.
    UnanchoredStart { seq: u64 },
    /// Nothing to verify.
    NoRecords,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(e) => write!(f, "file cannot be read: {e}"),
            Problem::Invalid(LineError::HashMismatch { .. }) => {
                f.write_str("hash mismatch: the record was edited after it was written")
            }
            Problem::Invalid(e) => write!(f, "not a valid record: {e}"),
            Problem::Truncated { bytes } => write!(
                f,
                "incomplete record ({bytes} bytes without a newline): the file was truncated, and no audit_torn_tail record accounts for it"
            ),
            Problem::SeqGap { expected, found } => write!(
                f,
                "expected seq {expected}, found {found}: record(s) {expected}..{} are missing (deleted, or moved)",
                found - 1
            ),
            Problem::SeqBackwards { expected, found } => write!(
                f,
                "expected seq {expected}, found {found}: seq went backwards (record inserted, duplicated or moved)"
            ),
            Problem::PrevMismatch { expected, found } => write!(
                f,
                "prev {} does not match the previous record's hash {}: record replaced or inserted",
                short(found),
                short(expected)
            ),
            Problem::UnanchoredStart { seq } => write!(
                f,
                "the chain starts at seq {seq}, not at the first record ever, and no audit_retention record accounts for records 0..{} (files deleted?)",
                seq.saturating_sub(1)
            ),
            Problem::NoRecords => f.write_str("no audit records found"),
        }
    }
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

/// Where the first bad record is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub file: PathBuf,
    /// 1-based line number.
    pub line: u64,
    pub offset: u64,
    /// The record's seq, if it could be read.
    pub seq: Option<u64>,
    pub problem: Problem,
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.file.display(), self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// The outcome of verifying a trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files in the order they were checked.
    pub files: Vec<PathBuf>,
    /// Valid, linked records before the first bad one.
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Hash of the last valid record: the head to compare with an external copy.
    pub last_hash: Option<String>,
    /// The last record is a gateway_stop (clean shutdown, nothing written after).
    pub ends_with_stop: bool,
    /// Accepted irregularities (retention, declared torn tails) and hints.
    pub notes: Vec<String>,
    pub first_bad: Option<BadRecord>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Bytes after a file's last valid record, waiting for an `audit_torn_tail` to vouch for them.
struct TornCandidate {
    pos: (usize, u64),
    bad: BadRecord,
    name: String,
    length: u64,
    sha256: String,
}

struct StartCandidate {
    bad: BadRecord,
    seq: u64,
    prev: String,
}

/// Expands directories to their `.jsonl` files and sorts everything into chain order.
pub fn expand(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<BadRecord>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_dir() {
            match trail_files(p, None) {
                Ok(f) => files.extend(f),
                Err(e) => errors.push(unreadable(p, &e.to_string())),
            }
        } else {
            files.push(p.clone());
        }
    }
    sort_chain_order(&mut files);
    files.dedup();
    (files, errors)
}

fn unreadable(p: &Path, e: &str) -> BadRecord {
    BadRecord {
        file: p.to_path_buf(),
        line: 0,
        offset: 0,
        seq: None,
        problem: Problem::Unreadable(e.to_string()),
    }
}

/// Verifies the trail made of `paths` (files and/or directories).
pub fn verify(paths: &[PathBuf]) -> VerifyReport {
    let (files, errors) = expand(paths);
    let mut report = VerifyReport {
        files: files.clone(),
        ..VerifyReport::default()
    };
    if let Some(e) = errors.into_iter().next() {
        report.first_bad = Some(e);
        return report;
    }
    let mut expect: Option<(u64, String)> = None;
    let mut start: Option<StartCandidate> = None;
    let mut torn: Vec<TornCandidate> = Vec::new();
    let mut chain_error: Option<((usize, u64), BadRecord)> = None;
    let mut decls: Vec<Declaration> = Vec::new();

    'files: for (fi, path) in files.iter().enumerate() {
        let data = match fs::read(path) {
            Ok(d) => d,
            Err(e) => {
                chain_error = Some(((fi, 0), unreadable(path, &e.to_string())));
                break;
            }
        };
        let name = file_name(path);
        let mut offset = 0usize;
        let mut line_no = 0u64;
        while offset < data.len() {
            let (line, next, terminated) = match data[offset..].iter().position(|&b| b == b'\n') {
                Some(i) => (&data[offset..offset + i], offset + i + 1, true),
                None => (&data[offset..], data.len(), false),
            };
            line_no += 1;
            let at = |seq: Option<u64>, problem: Problem| BadRecord {
                file: path.clone(),
                line: line_no,
                offset: offset as u64,
                seq,
                problem,
            };
            let header = match record::check_line(line) {
                Ok(h) => h,
                Err(e) => {
                    // Everything from here to the end of the file is suspect; fine only if declared.
                    let rest = &data[offset..];
                    let seq = seq_of(line);
                    let problem = if terminated {
                        Problem::Invalid(e)
                    } else {
                        Problem::Truncated {
                            bytes: rest.len() as u64,
                        }
                    };
                    torn.push(TornCandidate {
                        pos: (fi, offset as u64),
                        bad: at(seq, problem),
                        name: name.clone(),
                        length: rest.len() as u64,
                        sha256: record::sha256_hex(rest),
                    });
                    continue 'files;
                }
            };
            match &expect {
                None => {
                    report.first_seq = Some(header.seq);
                    if header.seq != 0 || header.prev != GENESIS {
                        start = Some(StartCandidate {
                            bad: at(
                                Some(header.seq),
                                Problem::UnanchoredStart { seq: header.seq },
                            ),
                            seq: header.seq,
                            prev: header.prev.clone(),
                        });
                    }
                }
                Some((seq, hash)) => {
                    let problem = if header.seq > *seq {
                        Some(Problem::SeqGap {
                            expected: *seq,
                            found: header.seq,
                        })
                    } else if header.seq < *seq {
                        Some(Problem::SeqBackwards {
                            expected: *seq,
                            found: header.seq,
                        })
                    } else if header.prev != *hash {
                        Some(Problem::PrevMismatch {
                            expected: hash.clone(),
                            found: header.prev.clone(),
                        })
                    } else {
                        None
                    };
                    if let Some(problem) = problem {
                        chain_error = Some(((fi, offset as u64), at(Some(header.seq), problem)));
                        break 'files;
                    }
                }
            }
            if header.event == "audit_retention" || header.event == "audit_torn_tail" {
                if let Ok(rec) = Record::parse_line(line) {
                    decls.push(if header.event == "audit_retention" {
                        Declaration::Retention(rec)
                    } else {
                        Declaration::Torn(rec)
                    });
                }
            }
            report.ends_with_stop = header.event == "gateway_stop";
            report.records += 1;
            report.last_seq = Some(header.seq);
            report.last_hash = Some(header.hash.clone());
            expect = Some((header.seq + 1, header.hash));
            offset = next;
        }
    }

    resolve(&decls, &mut start, &mut torn, &mut report.notes);
    // The first bad record is the earliest of: an undeclared torn/invalid region, an unanchored start,
    // and the point where the chain broke.
    let mut candidates: Vec<((usize, u64), BadRecord)> =
        torn.into_iter().map(|t| (t.pos, t.bad)).collect();
    if let Some(s) = start {
        candidates.push(((0, 0), s.bad));
    }
    candidates.extend(chain_error);
    candidates.sort_by_key(|(pos, _)| *pos);
    report.first_bad = candidates.into_iter().next().map(|(_, b)| b);
    if report.first_bad.is_none() && report.records == 0 {
        report.first_bad = Some(BadRecord {
            file: files.first().cloned().unwrap_or_default(),
            line: 0,
            offset: 0,
            seq: None,
            problem: Problem::NoRecords,
        });
    }
    report
}

/// Vouches for an irregularity; accepted only from records that are part of the verified chain, and
/// matched once the whole chain has been read (a declaration may sort before the bytes it declares if
/// the clock stepped back between a crash and the restart).
enum Declaration {
    Retention(Record),
    Torn(Record),
}

fn resolve(
    decls: &[Declaration],
    start: &mut Option<StartCandidate>,
    torn: &mut Vec<TornCandidate>,
    notes: &mut Vec<String>,
) {
    for d in decls {
        match d {
            Declaration::Retention(rec) => {
                let Event::AuditRetention {
                    first_retained_seq,
                    anchor_prev,
                    first_retained_file,
                    deleted,
                } = &rec.event
                else {
                    continue;
                };
                if start
                    .as_ref()
                    .is_some_and(|s| s.seq == *first_retained_seq && s.prev == *anchor_prev)
                {
                    *start = None;
                    notes.push(format!(
                        "chain starts at seq {first_retained_seq} in {first_retained_file}: {} older file(s) deleted by retention (recorded at seq {})",
                        deleted.len(),
                        rec.seq
                    ));
                }
            }
            Declaration::Torn(rec) => {
                let Event::AuditTornTail {
                    file,
                    offset,
                    length,
                    sha256,
                    cause,
                    ..
                } = &rec.event
                else {
                    continue;
                };
                if let Some(i) = torn.iter().position(|t| {
                    t.name == *file
                        && t.pos.1 == *offset
                        && t.length == *length
                        && t.sha256 == *sha256
                }) {
                    let t = torn.remove(i);
                    let cause = match cause {
                        super::event::TornCause::Restart => "crash before a restart",
                        super::event::TornCause::WriteError => "failed write",
                    };
                    notes.push(format!(
                        "{} line {}: {length} bytes of an incomplete record ({cause}) left in place, declared at seq {}",
                        t.bad.file.display(),
                        t.bad.line,
                        rec.seq
                    ));
                }
            }
        }
    }
}

/// Best-effort seq of a damaged line, for the report.
fn seq_of(line: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(line).ok()?;
    let i = s.find("\"seq\":")? + 6;
    let digits: String = s[i..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// `kafka-gateway audit verify PATH...`: the report as text, and whether the trail is intact.
pub fn cmd_verify(paths: &[PathBuf]) -> (String, bool) {
    let r = verify(paths);
    (render(&r), r.ok())
}

pub fn render(r: &VerifyReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let status = if r.ok() { "OK" } else { "FAILED" };
    let _ = writeln!(out, "audit verify: {status}");
    let _ = writeln!(out, "  files:    {}", r.files.len());
    let range = match (r.first_seq, r.last_seq) {
        (Some(a), Some(b)) => format!(" (seq {a}..{b})"),
        _ => String::new(),
    };
    let verb = if r.ok() {
        "verified"
    } else {
        "verified before the first bad record"
    };
    let _ = writeln!(out, "  records:  {}{range} {verb}", r.records);
    if let Some(h) = &r.last_hash {
        let _ = writeln!(out, "  head:     seq {} hash {h}", r.last_seq.unwrap_or(0));
        let _ = writeln!(
            out,
            "            {}",
            if r.ends_with_stop {
                "ends with gateway_stop (clean shutdown)"
            } else {
                "does not end with gateway_stop (gateway running, crashed, or newest records removed: compare the head with an external copy)"
            }
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "  note:     {n}");
    }
    if let Some(b) = &r.first_bad {
        let _ = writeln!(out, "  FIRST BAD RECORD: {b}");
    }
    out
}
