//! The audit trail: typed events, a bounded writer of hash-chained JSON Lines files, and the review
//! tools (verify, query, tail, report).
//!
//! - [`event`]: the schema: who did what, when, from where, with what outcome, to which resource.
//! - [`level`]: which allowed decisions are recorded (denials always are).
//! - [`record`]: one line of the trail and the hash chain that links the lines.
//! - [`writer`]: [`Auditor`], the non-blocking handle, and its writer task (batching, fsync, failure modes).
//! - `sink`: the files: rotation, retention, crash and write-failure recovery.
//! - [`verify`]: finds the first edited, deleted, inserted, reordered or truncated record.
//! - [`review`]: `audit query` and `audit tail`; [`report`]: the HTML `audit report`.
//! - [`shadow_diff`]: `policy diff`, what a shadow policy would change, from its records.
//! - [`time`]: RFC 3339 timestamps without a date library.
//!
//! Design in one paragraph: each line is a JSON record `{"schema":1,"seq":N,"ts":..,"prev":H(N-1),
//! "event":..,...,"hash":H(N)}` where `H(N)` is the SHA-256 of the line's own bytes minus the hash member.
//! The chain runs from `prev` = 64 zeros across every file and restart. Files are
//! `<prefix>-<first seq, 20 digits>-<UTC timestamp>.jsonl`; every start and every recovery from a write
//! failure begins a new file, so nothing already written is ever modified. Irregularities that are
//! legitimate (retention deleted old files; a crash or failed write left a partial record) are declared
//! by `audit_retention` / `audit_torn_tail` records inside the chain, and verify accepts exactly what
//! they declare and nothing else.

pub mod copy;
pub mod ctx;
pub mod disk;
pub mod event;
pub mod kafka_sink;
pub mod kafka_verify;
pub mod level;
pub mod record;
pub mod repeats;
pub mod report;
pub mod review;
pub mod shadow_diff;
mod sink;
pub mod time;
pub mod verify;
pub mod writer;

pub use ctx::AuditCtx;
pub use event::{AuthzDecision, ConnInfo, Decision, Event, Outcome, ReloadKind, RuleRef};
pub use level::AuditLevel;
pub use record::Record;
pub use report::cmd_report;
pub use review::{cmd_query, cmd_tail, QueryFilters, TailOptions};
pub use sink::{parse_file_name, trail_files};
pub use verify::{cmd_verify, verify, VerifyReport};
pub use writer::{
    AuditConfig, AuditError, AuditUnavailable, Auditor, FailureMode, FsyncPolicy, Written,
};

#[cfg(test)]
mod review_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod verify_tests;
#[cfg(test)]
mod writer_tests;
