//! Kafka's primitive wire types read and written in place, for the paths that work on a message's
//! bytes instead of decoding it whole (Metadata requests and responses).

use std::ops::Range;

use bytes::{BufMut, BytesMut};
use uuid::Uuid;

/// Where and why reading a message's bytes failed (offsets from the start of the buffer read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at offset {at}")]
pub struct WireError {
    pub at: usize,
    pub what: &'static str,
}

/// A read position in a byte slice. Every read checks what is left first: nothing here can panic
/// or allocate, whatever the bytes say.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], pos: usize) -> Cursor<'a> {
        Cursor { buf, pos }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn fail<T>(&self, what: &'static str) -> Result<T, WireError> {
        Err(WireError { at: self.pos, what })
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return self.fail("truncated");
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), WireError> {
        self.take(n).map(|_| ())
    }

    /// The next `N` bytes as an array (for the fixed-size types).
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A boolean as kafka-protocol reads one: any non-zero byte is true.
    pub fn bool(&mut self) -> Result<bool, WireError> {
        Ok(self.array::<1>()?[0] != 0)
    }

    pub fn i16(&mut self) -> Result<i16, WireError> {
        self.array().map(i16::from_be_bytes)
    }

    pub fn i32(&mut self) -> Result<i32, WireError> {
        self.array().map(i32::from_be_bytes)
    }

    pub fn uuid(&mut self) -> Result<Uuid, WireError> {
        self.array().map(Uuid::from_bytes)
    }

    /// An unsigned varint of at most 5 bytes (kafka-protocol's limit for lengths and counts).
    pub fn uvarint(&mut self) -> Result<u32, WireError> {
        let mut value = 0u32;
        for i in 0..5 {
            let [b] = self.array()?;
            value |= u32::from(b & 0x7F) << (i * 7);
            if b < 0x80 {
                return Ok(value);
            }
        }
        self.fail("varint longer than 5 bytes")
    }

    /// An array count; `None` for null. A count that the bytes left cannot back (every element
    /// takes at least one byte) is refused.
    pub fn count(&mut self, compact: bool) -> Result<Option<usize>, WireError> {
        let n = if compact {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as u64 > self.remaining() as u64 {
            return self.fail("array count out of bounds");
        }
        Ok(Some(n as usize))
    }

    /// A (nullable) string's bytes, as a range of the buffer; `None` for null.
    pub fn string(&mut self, compact: bool) -> Result<Option<Range<usize>>, WireError> {
        let len = if compact {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i16()?)
        };
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return self.fail("negative string length");
        }
        let start = self.pos;
        self.skip(len as usize)?;
        Ok(Some(start..self.pos))
    }

    /// A tagged-field section, skipped whole.
    pub fn skip_tags(&mut self) -> Result<(), WireError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.skip(size as usize)?;
        }
        Ok(())
    }
}

/// Refuses a request too large for the in-place readers, which keep entries as 32-bit offsets.
pub fn within_offsets(payload: &[u8]) -> Result<(), WireError> {
    if payload.len() > u32::MAX as usize {
        return Err(WireError {
            at: 0,
            what: "request over 4 GiB",
        });
    }
    Ok(())
}

/// `count` entries read one at a time by `read` from `c`; after an entry fails, none more.
pub fn entries<'a, T>(
    mut c: Cursor<'a>,
    count: usize,
    read: impl Fn(&mut Cursor<'a>) -> Result<T, WireError> + Clone + 'a,
) -> impl Iterator<Item = Result<T, WireError>> + Clone + 'a
where
    T: 'a,
{
    let mut left = count;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        left -= 1;
        let entry = read(&mut c);
        if entry.is_err() {
            left = 0;
        }
        Some(entry)
    })
}

/// Writes the length of the frame `out` holds (after its 4-byte prefix) into that prefix.
pub fn set_frame_length(out: &mut BytesMut) -> Result<(), WireError> {
    let len = out
        .len()
        .checked_sub(4)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or(WireError {
            at: 0,
            what: "frame over 2 GiB",
        })?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// `payload` (a request without its length prefix) as a new frame: its bytes up to `head_end`
/// (where the first list's count is), then each list of `lists` as a count and the entries kept
/// (byte ranges of `payload`, copied as sent), then the bytes of `rest`. The frame is allocated
/// once, at its size.
pub fn splice_lists(
    payload: &[u8],
    head_end: usize,
    lists: &[&[(u32, u32)]],
    compact: bool,
    rest: Range<usize>,
) -> Result<BytesMut, WireError> {
    let entries: usize = lists
        .iter()
        .flat_map(|l| l.iter())
        .map(|(a, b)| (b - a) as usize)
        .sum();
    let size = super::frame::LEN_PREFIX + head_end + lists.len() * 5 + entries + rest.len();
    let mut out = BytesMut::with_capacity(size);
    out.extend_from_slice(&[0; super::frame::LEN_PREFIX]); // the length, set below
    out.extend_from_slice(&payload[..head_end]);
    for ranges in lists {
        put_count(&mut out, compact, ranges.len())?;
        for &(start, end) in ranges.iter() {
            out.extend_from_slice(&payload[start as usize..end as usize]);
        }
    }
    out.extend_from_slice(&payload[rest]);
    set_frame_length(&mut out)?;
    Ok(out)
}

/// Bytes `v` takes as an unsigned varint.
pub fn uvarint_len(v: usize) -> usize {
    let bits = usize::BITS - v.leading_zeros();
    (bits.max(1) as usize).div_ceil(7)
}

pub fn put_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// An array count: compact (varint of n + 1) or classic (i32).
pub fn put_count(out: &mut BytesMut, compact: bool, n: usize) -> Result<(), WireError> {
    let n = u32::try_from(n)
        .ok()
        .filter(|n| *n < i32::MAX as u32)
        .ok_or(WireError {
            at: out.len(),
            what: "array too long",
        })?;
    if compact {
        put_uvarint(out, n + 1);
    } else {
        out.put_i32(n as i32);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_refuse_what_the_bytes_cannot_back() {
        let mut c = Cursor::new(&[0x03, b'a'], 0);
        assert_eq!(
            c.clone().string(true),
            Err(WireError {
                at: 1,
                what: "truncated"
            })
        );
        assert_eq!(
            c.count(true).map_err(|e| e.what),
            Err("array count out of bounds")
        );
        let mut c = Cursor::new(&[0xFF, 0xFF, 0xFF, 0xFF], 0);
        assert_eq!(c.count(false), Ok(None), "-1 is null");
        let mut c = Cursor::new(&[0xFF, 0xFF, 0xFF, 0xFE], 0);
        assert!(c.count(false).is_err(), "-2 is refused");
        let mut c = Cursor::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 0);
        assert_eq!(
            c.uvarint().map_err(|e| e.what),
            Err("varint longer than 5 bytes")
        );
    }

    #[test]
    fn counts_and_varints_round_trip() {
        for n in [0usize, 1, 127, 128, 300, 1 << 21] {
            let mut varint = BytesMut::new();
            put_uvarint(&mut varint, n as u32);
            assert_eq!(uvarint_len(n), varint.len(), "{n}");
            for compact in [false, true] {
                let mut out = BytesMut::new();
                put_count(&mut out, compact, n).expect("fits");
                out.resize(out.len() + n, 0);
                assert_eq!(Cursor::new(&out, 0).count(compact), Ok(Some(n)));
            }
        }
    }
}
