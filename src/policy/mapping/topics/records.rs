//! Walks the record-batch headers inside a Produce partition's `records` bytes, without copying or
//! decompressing, to find the transactional bit (RecordBatch v2 attributes bit 4, 0x10).
//!
//! Layout of a v2 batch header (big-endian): baseOffset i64 @0, batchLength i32 @8 (bytes after
//! this field), partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17, attributes i16 @21, ...;
//! the whole header is 61 bytes. Produce v3+ only accepts magic 2.
//!
//! Malformed input (a truncated batch, a length below the v2 header size or past the end, a magic
//! other than 2) is refused rather than guessed at: the gateway cannot tell what the broker will
//! make of bytes it cannot parse itself, and a transactional batch hidden behind them would bypass
//! the TransactionalId check. Kafka answers such partitions with CORRUPT_MESSAGE / INVALID_RECORD;
//! the gateway closes the connection instead (the caller turns the error into a close). No
//! well-behaved producer sends such bytes.

/// Offset of the batchLength field and size of the part before the counted bytes.
const LOG_OVERHEAD: usize = 12;
/// Size of a v2 batch header (`DefaultRecordBatch.RECORD_BATCH_OVERHEAD`).
const V2_HEADER: usize = 61;
const MAGIC_OFFSET: usize = 16;
const ATTRIBUTES_OFFSET: usize = 21;
const TRANSACTIONAL_FLAG: u16 = 0x10;

/// Why a partition's records could not be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch at byte {offset} is truncated ({left} bytes left, need {need})")]
    Truncated {
        offset: usize,
        left: usize,
        need: usize,
    },
    #[error("record batch at byte {offset} has length {len}, below the v2 header size")]
    TooShort { offset: usize, len: i32 },
    #[error("record batch at byte {offset} has magic {magic}; Produce v3+ requires 2")]
    Magic { offset: usize, magic: i8 },
}

/// Is any batch in `records` transactional? `Ok(false)` for empty records.
pub fn any_transactional(records: &[u8]) -> Result<bool, BatchError> {
    let mut pos = 0usize;
    let mut transactional = false;
    while pos < records.len() {
        let left = records.len() - pos;
        if left < V2_HEADER {
            return Err(BatchError::Truncated {
                offset: pos,
                left,
                need: V2_HEADER,
            });
        }
        let at = |i: usize| records[pos + i];
        let len = i32::from_be_bytes([at(8), at(9), at(10), at(11)]);
        let magic = at(MAGIC_OFFSET) as i8;
        if magic != 2 {
            return Err(BatchError::Magic { offset: pos, magic });
        }
        // `len` counts the bytes after the length field; a v2 batch has at least its header.
        let total = match usize::try_from(len) {
            Ok(l) if l >= V2_HEADER - LOG_OVERHEAD => l + LOG_OVERHEAD,
            _ => return Err(BatchError::TooShort { offset: pos, len }),
        };
        if total > left {
            return Err(BatchError::Truncated {
                offset: pos,
                left,
                need: total,
            });
        }
        let attributes = u16::from_be_bytes([at(ATTRIBUTES_OFFSET), at(ATTRIBUTES_OFFSET + 1)]);
        transactional |= attributes & TRANSACTIONAL_FLAG != 0;
        pos += total;
    }
    Ok(transactional)
}
