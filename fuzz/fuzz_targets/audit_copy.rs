//! Fuzzes `audit verify --kafka`'s checking of what it reads from the audit topic
//! (`audit::kafka_verify::verify_copy`): record values are untrusted, anyone who can produce to
//! the topic behind the gateway chooses them.
//!
//! Input: records separated by `0xFF`; the first byte of each record picks its key (instance
//! `a`..`d`), the rest is its value. The first input byte, when odd, says the topic's retention has
//! deleted its head (log start offset > 0).
//!
//! Properties:
//! - nothing panics;
//! - every record is counted once: lines + markers + records with an error or duplicate >= records;
//! - every chain's first seq is at most its last, and the chains hold no more records than lines.
#![no_main]

use std::collections::HashMap;

use bytes::Bytes;
use kafka_gateway::audit::kafka_verify::{verify_copy, CopyRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let records: Vec<CopyRecord> = rest
        .split(|&b| b == 0xFF)
        .enumerate()
        .filter_map(|(i, r)| {
            let (&k, value) = r.split_first()?;
            Some(CopyRecord {
                partition: 0,
                offset: i as i64,
                key: Some(char::from(b'a' + k % 4).to_string()),
                value: Bytes::copy_from_slice(value),
            })
        })
        .collect();
    let log_start = HashMap::from([(0, i64::from(flags & 1))]);
    let report = verify_copy(&records, &log_start);
    assert_eq!(report.records, records.len() as u64);
    assert!(report.lines + report.markers <= report.records);
    let in_chains: u64 = report.chains.iter().map(|c| c.records).sum();
    assert!(in_chains + report.duplicates <= report.lines);
    for c in &report.chains {
        assert!(c.first_seq <= c.last_seq, "{c:?}");
    }
    let _ = report.to_string();
});
