//! Pre-decode bounds check: walks a request/response body against the generated wire schema and
//! rejects any length or count that the bytes left in the frame cannot back, before kafka-protocol
//! (whose decoders call `Vec::with_capacity(n)` with `n` straight from the wire) sees the body.
//!
//! The walk reads exactly what kafka-protocol 0.18.0's decoder reads, version by version
//! (`wire_schema.rs` is generated from that decoder by `scripts/gen-wire-schema.py`), and checks:
//! - string / bytes / records lengths `<=` bytes remaining;
//! - array counts: `n * min_encoded_size(element) <= remaining`, with the minimum at least 1, so
//!   every accepted element is backed by at least one distinct byte of the frame;
//! - tagged fields: the declared size `<=` remaining; known tagged fields are walked inside their
//!   declared size and must fill it exactly;
//! - negative lengths other than -1 (null, and only where the decoder accepts null), varints
//!   longer than the decoder's 5 bytes, nesting deeper than [`MAX_DEPTH`].
//!
//! Because every element of every accepted array is actually present, the decoder's total
//! allocation for an accepted body is bounded by `body.len() * max(size_of::<element>())`. That
//! factor is large (an empty topic name is 1 byte on the wire and a 72-byte struct once decoded),
//! so the walk also adds up what the decoder will allocate, `count * size_of::<element>()` per
//! array plus the map nodes unknown tagged fields go into, and refuses a body whose total exceeds
//! the caller's budget ([`estimate_request_body`]). Strings and bytes are not counted: they are
//! decoded as views into the frame, not copies.
//!
//! Acceptance matches the decoder: every body kafka-protocol decodes successfully is accepted,
//! except for three encodings no conforming client produces, which are rejected on purpose:
//! a varint whose 5th byte has its continuation bit set (the decoder silently stops after 5
//! bytes), a known tagged field whose content does not fill its declared size exactly (the
//! decoder ignores the size of tags it knows), and a known tagged field at a version where the
//! decoder rejects it anyway. Trailing bytes after the body are ignored, like the decoder does;
//! [`measure_request_body`] / [`measure_response_body`] return where the body ends for callers
//! that want to reject them.
//!
//! The walk is allocation-free; recursion depth is bounded by the (acyclic) schema and capped at
//! [`MAX_DEPTH`]; time is linear in the body size.

use kafka_protocol::protocol::StrBytes;

use super::wire_schema::{Elem, StructDef, Ty, APIS, MAX_SCHEMA_DEPTH, NEVER, STRUCTS};

/// Deepest struct nesting the walker follows. The schema is acyclic, so input cannot make the
/// walk deeper than the schema; this is a guard against a future schema change.
pub const MAX_DEPTH: usize = 8;

// The generated schema must fit under the guard, or valid bodies would be refused.
const _: () = assert!(MAX_SCHEMA_DEPTH <= MAX_DEPTH);

/// Why a body was refused. Offsets are relative to the start of the body.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum BoundsError {
    #[error("unknown API key {api_key}")]
    UnknownApi { api_key: i16 },
    #[error("API key {api_key} has no body schema for version {api_version}")]
    UnsupportedVersion { api_key: i16, api_version: i16 },
    #[error("body truncated at offset {offset}")]
    Truncated { offset: usize },
    #[error("length {declared} at offset {offset} exceeds the {remaining} bytes left")]
    LengthOutOfBounds {
        offset: usize,
        declared: u64,
        remaining: usize,
    },
    #[error("count {declared} at offset {offset} cannot fit in the {remaining} bytes left")]
    CountOutOfBounds {
        offset: usize,
        declared: u64,
        remaining: usize,
    },
    #[error("negative length {declared} at offset {offset}")]
    NegativeLength { offset: usize, declared: i32 },
    #[error("null at offset {offset} where the field is not nullable")]
    UnexpectedNull { offset: usize },
    #[error("varint at offset {offset} is longer than 5 bytes")]
    VarIntTooLong { offset: usize },
    /// kafka-protocol keeps unknown tags as `i32` and re-encodes only the non-negative ones, so a tag
    /// of 2^31 or more would come out of a rewritten response with its count and content disagreeing.
    #[error("tagged field number {tag} at offset {offset} is above 2^31-1")]
    TagOutOfRange { offset: usize, tag: u32 },
    #[error("tagged field {tag} at offset {offset} is not valid at version {version}")]
    TagNotValidForVersion {
        offset: usize,
        tag: u32,
        version: i16,
    },
    #[error("tagged field {tag} at offset {offset} declares {declared} bytes but its content is {consumed}")]
    TaggedFieldSizeMismatch {
        offset: usize,
        tag: u32,
        declared: u64,
        consumed: usize,
    },
    #[error("{name} at offset {offset} is not defined for version {version}")]
    StructVersion {
        offset: usize,
        name: &'static str,
        version: i16,
    },
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Every length and count fits the frame, but the decoded body would take more memory than
    /// the caller allows for a frame of this size.
    #[error("decoding would allocate over {decoded} bytes (at offset {offset}), above the {budget} allowed")]
    DecodedTooLarge {
        offset: usize,
        decoded: u64,
        budget: u64,
    },
}

impl BoundsError {
    /// Metric label: `decoded_too_large` is a size policy, the rest are malformed bodies.
    pub fn reason(&self) -> &'static str {
        match self {
            BoundsError::DecodedTooLarge { .. } => "decoded_too_large",
            _ => "malformed",
        }
    }
}

/// What a walk found: where the body ends and about how much decoding it will allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Bytes the body occupies (the rest is trailing data the decoder ignores).
    pub end: usize,
    /// Bytes the decoder's vectors and tag maps will take, counted as the walk went.
    pub decoded: u64,
}

/// Decoder cost of the first unknown tagged field of a struct: kafka-protocol puts them in a
/// `BTreeMap<i32, Bytes>`, whose first leaf node is about 400 bytes.
const UNKNOWN_TAG_FIRST: u64 = 512;
/// Each further unknown tag: its share of a node (11 entries of 36 bytes) and of the inner nodes.
const UNKNOWN_TAG_MORE: u64 = 64;

/// Checks a request body (the bytes after the request header) for `api_key` at `api_version`.
pub fn check_request_body(api_key: i16, api_version: i16, body: &[u8]) -> Result<(), BoundsError> {
    measure_request_body(api_key, api_version, body).map(|_| ())
}

/// Checks a response body (the bytes after the response header) for `api_key` at `api_version`.
pub fn check_response_body(api_key: i16, api_version: i16, body: &[u8]) -> Result<(), BoundsError> {
    measure_response_body(api_key, api_version, body).map(|_| ())
}

/// Like [`check_request_body`], returning how many bytes the body occupies (the rest is trailing
/// data that kafka-protocol's decoder ignores).
pub fn measure_request_body(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> Result<usize, BoundsError> {
    measure(api_key, api_version, body, true, u64::MAX).map(|m| m.end)
}

/// Like [`measure_request_body`], also refusing a body whose decoding would allocate more than
/// `budget` bytes ([`BoundsError::DecodedTooLarge`], raised as soon as the walk passes it).
pub fn estimate_request_body(
    api_key: i16,
    api_version: i16,
    body: &[u8],
    budget: u64,
) -> Result<Measured, BoundsError> {
    measure(api_key, api_version, body, true, budget)
}

/// Like [`check_response_body`], returning how many bytes the body occupies.
pub fn measure_response_body(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> Result<usize, BoundsError> {
    measure(api_key, api_version, body, false, u64::MAX).map(|m| m.end)
}

/// Where the top-level tagged fields of a response body start, the body checked as
/// [`check_response_body`] checks it; `None` when the version has no tagged fields. Fields are
/// walked, never decoded: a Fetch response's records are skipped by their length.
pub fn response_tags_at(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> Result<Option<usize>, BoundsError> {
    let (st, mut cur) = start(api_key, api_version, body, false, u64::MAX)?;
    for f in st
        .fields
        .iter()
        .filter(|f| f.0 <= api_version && api_version <= f.1)
    {
        walk_ty(&mut cur, f.2, api_version, 1)?;
    }
    if st.flex == NEVER || api_version < st.flex {
        return Ok(None);
    }
    let at = cur.pos;
    walk_tagged(&mut cur, st, api_version, 1)?;
    Ok(Some(at))
}

/// Where the last field of a response body present at `api_version` starts and ends, the body
/// checked as [`check_response_body`] checks it; `None` when the version has no field. Fields are
/// walked, never decoded.
pub fn response_last_field_at(
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> Result<Option<(usize, usize)>, BoundsError> {
    let (st, mut cur) = start(api_key, api_version, body, false, u64::MAX)?;
    let mut last = None;
    for f in st
        .fields
        .iter()
        .filter(|f| f.0 <= api_version && api_version <= f.1)
    {
        let at = cur.pos;
        walk_ty(&mut cur, f.2, api_version, 1)?;
        last = Some((at, cur.pos));
    }
    if st.flex != NEVER && api_version >= st.flex {
        walk_tagged(&mut cur, st, api_version, 1)?;
    }
    Ok(last)
}

/// The body versions the schema (and so kafka-protocol) supports for `api_key`, inclusive.
pub fn supported_body_versions(api_key: i16, request: bool) -> Option<(i16, i16)> {
    let id = body_struct(api_key, request)?;
    let st = &STRUCTS[usize::from(id)];
    Some((st.lo, st.hi))
}

fn body_struct(api_key: i16, request: bool) -> Option<u16> {
    let idx = APIS.binary_search_by_key(&api_key, |a| a.key).ok()?;
    let api = &APIS[idx];
    Some(if request { api.request } else { api.response })
}

fn measure(
    api_key: i16,
    api_version: i16,
    body: &[u8],
    request: bool,
    budget: u64,
) -> Result<Measured, BoundsError> {
    let (st, mut cur) = start(api_key, api_version, body, request, budget)?;
    walk_struct(&mut cur, st, api_version, 1)?;
    Ok(Measured {
        end: cur.pos,
        decoded: cur.decoded,
    })
}

/// The body struct of `api_key` at `api_version` and a cursor at the start of `body`.
fn start(
    api_key: i16,
    api_version: i16,
    body: &[u8],
    request: bool,
    budget: u64,
) -> Result<(&'static StructDef, Cursor<'_>), BoundsError> {
    let id = body_struct(api_key, request).ok_or(BoundsError::UnknownApi { api_key })?;
    let st = &STRUCTS[usize::from(id)];
    if api_version < st.lo || api_version > st.hi {
        return Err(BoundsError::UnsupportedVersion {
            api_key,
            api_version,
        });
    }
    let cur = Cursor {
        buf: body,
        pos: 0,
        end: body.len(),
        decoded: st.size as u64,
        budget,
    };
    Ok((st, cur))
}

/// A read position inside `buf[..end]`; `end` shrinks to a tagged field's declared size.
/// `decoded` is what the decoder will have allocated for everything walked so far.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    decoded: u64,
    budget: u64,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Counts `bytes` of decoder allocation, failing once the total passes the budget.
    fn charge(&mut self, offset: usize, bytes: u64) -> Result<(), BoundsError> {
        self.decoded = self.decoded.saturating_add(bytes);
        if self.decoded > self.budget {
            return Err(BoundsError::DecodedTooLarge {
                offset,
                decoded: self.decoded,
                budget: self.budget,
            });
        }
        Ok(())
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], BoundsError> {
        let bytes = self
            .buf
            .get(self.pos..self.end)
            .and_then(|rest| rest.get(..N))
            .ok_or(BoundsError::Truncated { offset: self.pos })?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        self.pos += N;
        Ok(out)
    }

    fn skip(&mut self, n: usize) -> Result<(), BoundsError> {
        if n > self.remaining() {
            return Err(BoundsError::Truncated { offset: self.pos });
        }
        self.pos += n;
        Ok(())
    }

    fn i8(&mut self) -> Result<i8, BoundsError> {
        Ok(i8::from_be_bytes(self.take::<1>()?))
    }

    fn i16(&mut self) -> Result<i16, BoundsError> {
        Ok(i16::from_be_bytes(self.take::<2>()?))
    }

    fn i32(&mut self) -> Result<i32, BoundsError> {
        Ok(i32::from_be_bytes(self.take::<4>()?))
    }

    /// Unsigned varint exactly as kafka-protocol decodes it (at most 5 bytes, high bits of the
    /// 5th byte dropped), except that a 5th byte with its continuation bit set is refused.
    fn uvarint(&mut self) -> Result<u32, BoundsError> {
        let start = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = self.take::<1>()?;
            value |= u32::from(b & 0x7F) << (i * 7);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(BoundsError::VarIntTooLong { offset: start })
    }

    /// Checks a byte length read at `offset` and skips over it.
    fn skip_len(&mut self, offset: usize, len: u64) -> Result<(), BoundsError> {
        let remaining = self.remaining();
        if len > remaining as u64 {
            return Err(BoundsError::LengthOutOfBounds {
                offset,
                declared: len,
                remaining,
            });
        }
        self.pos += len as usize;
        Ok(())
    }
}

/// Length or count prefix as the decoder interprets it.
enum Prefix {
    Null,
    Len(u64),
}

fn classic_prefix(offset: usize, raw: i32, nullable: bool) -> Result<Prefix, BoundsError> {
    match raw {
        -1 if nullable => Ok(Prefix::Null),
        -1 => Err(BoundsError::UnexpectedNull { offset }),
        n if n < 0 => Err(BoundsError::NegativeLength {
            offset,
            declared: n,
        }),
        n => Ok(Prefix::Len(n as u64)),
    }
}

fn compact_prefix(offset: usize, raw: u32, nullable: bool) -> Result<Prefix, BoundsError> {
    match raw {
        0 if nullable => Ok(Prefix::Null),
        0 => Err(BoundsError::UnexpectedNull { offset }),
        n => Ok(Prefix::Len(u64::from(n - 1))),
    }
}

fn struct_def(id: u16) -> &'static StructDef {
    &STRUCTS[usize::from(id)]
}

fn walk_struct(
    cur: &mut Cursor<'_>,
    st: &'static StructDef,
    version: i16,
    depth: usize,
) -> Result<(), BoundsError> {
    if depth > MAX_DEPTH {
        return Err(BoundsError::TooDeep);
    }
    if version < st.lo || version > st.hi {
        // The decoder bails on the first element of a struct used outside its versions.
        return Err(BoundsError::StructVersion {
            offset: cur.pos,
            name: st.name,
            version,
        });
    }
    for f in st
        .fields
        .iter()
        .filter(|f| f.0 <= version && version <= f.1)
    {
        walk_ty(cur, f.2, version, depth)?;
    }
    if st.flex != NEVER && version >= st.flex {
        walk_tagged(cur, st, version, depth)?;
    }
    Ok(())
}

fn walk_tagged(
    cur: &mut Cursor<'_>,
    st: &'static StructDef,
    version: i16,
    depth: usize,
) -> Result<(), BoundsError> {
    let offset = cur.pos;
    let count = cur.uvarint()?;
    // Each entry is at least a tag byte and a size byte.
    check_count(cur, offset, u64::from(count), 2)?;
    let mut unknown_seen = false;
    for _ in 0..count {
        let at = cur.pos;
        let tag = cur.uvarint()?;
        if tag > i32::MAX as u32 {
            return Err(BoundsError::TagOutOfRange { offset: at, tag });
        }
        let size_at = cur.pos;
        let size = u64::from(cur.uvarint()?);
        let remaining = cur.remaining();
        if size > remaining as u64 {
            return Err(BoundsError::LengthOutOfBounds {
                offset: size_at,
                declared: size,
                remaining,
            });
        }
        let Some(known) = st.tagged.iter().find(|t| t.0 == tag) else {
            let cost = if unknown_seen {
                UNKNOWN_TAG_MORE
            } else {
                UNKNOWN_TAG_FIRST
            };
            unknown_seen = true;
            cur.charge(at, cost)?;
            cur.pos += size as usize;
            continue;
        };
        if version < known.1 || version > known.2 {
            return Err(BoundsError::TagNotValidForVersion {
                offset: at,
                tag,
                version,
            });
        }
        let start = cur.pos;
        let mut inner = Cursor {
            buf: cur.buf,
            pos: start,
            end: start + size as usize,
            decoded: cur.decoded,
            budget: cur.budget,
        };
        walk_ty(&mut inner, known.3, version, depth)?;
        cur.decoded = inner.decoded;
        if inner.pos != inner.end {
            return Err(BoundsError::TaggedFieldSizeMismatch {
                offset: at,
                tag,
                declared: size,
                consumed: inner.pos - start,
            });
        }
        cur.pos = inner.end;
    }
    Ok(())
}

fn check_count(
    cur: &Cursor<'_>,
    offset: usize,
    count: u64,
    elem_min: u64,
) -> Result<(), BoundsError> {
    let remaining = cur.remaining();
    // count < 2^32 and elem_min < 2^16: the product cannot overflow u64.
    if count * elem_min.max(1) > remaining as u64 {
        return Err(BoundsError::CountOutOfBounds {
            offset,
            declared: count,
            remaining,
        });
    }
    Ok(())
}

fn walk_ty(cur: &mut Cursor<'_>, ty: Ty, version: i16, depth: usize) -> Result<(), BoundsError> {
    let offset = cur.pos;
    match ty {
        Ty::Int8 | Ty::Boolean => cur.skip(1),
        Ty::Int16 | Ty::UInt16 => cur.skip(2),
        Ty::Int32 => cur.skip(4),
        Ty::Int64 | Ty::Float64 => cur.skip(8),
        Ty::Uuid => cur.skip(16),
        Ty::String | Ty::NullableString => {
            let raw = cur.i16()?;
            bytes_body(
                cur,
                classic_prefix(offset, i32::from(raw), ty == Ty::NullableString)?,
                offset,
            )
        }
        Ty::Bytes | Ty::NullableBytes => {
            let raw = cur.i32()?;
            bytes_body(
                cur,
                classic_prefix(offset, raw, ty == Ty::NullableBytes)?,
                offset,
            )
        }
        Ty::CompactString | Ty::NullableCompactString => {
            let raw = cur.uvarint()?;
            bytes_body(
                cur,
                compact_prefix(offset, raw, ty == Ty::NullableCompactString)?,
                offset,
            )
        }
        Ty::CompactBytes | Ty::NullableCompactBytes => {
            let raw = cur.uvarint()?;
            bytes_body(
                cur,
                compact_prefix(offset, raw, ty == Ty::NullableCompactBytes)?,
                offset,
            )
        }
        Ty::Array(elem) | Ty::NullableArray(elem) => {
            let raw = cur.i32()?;
            let prefix = classic_prefix(offset, raw, matches!(ty, Ty::NullableArray(_)))?;
            array_body(cur, prefix, offset, elem, version, depth)
        }
        Ty::CompactArray(elem) | Ty::NullableCompactArray(elem) => {
            let raw = cur.uvarint()?;
            let prefix = compact_prefix(offset, raw, matches!(ty, Ty::NullableCompactArray(_)))?;
            array_body(cur, prefix, offset, elem, version, depth)
        }
        Ty::Struct(id) => walk_struct(cur, struct_def(id), version, depth + 1),
        Ty::OptionStruct(id) => {
            // The decoder reads the struct only for a marker of exactly 1; anything else is None.
            if cur.i8()? == 1 {
                walk_struct(cur, struct_def(id), version, depth + 1)
            } else {
                Ok(())
            }
        }
    }
}

fn bytes_body(cur: &mut Cursor<'_>, prefix: Prefix, offset: usize) -> Result<(), BoundsError> {
    match prefix {
        Prefix::Null => Ok(()),
        Prefix::Len(len) => cur.skip_len(offset, len),
    }
}

/// Minimum encoded size of one element at `version` (0 only for a struct used outside its
/// versions, whose first element the walk then rejects).
fn elem_min(elem: Elem, version: i16) -> u64 {
    match elem {
        Elem::Int8 => 1,
        Elem::Int32 => 4,
        Elem::Int64 => 8,
        Elem::Uuid => 16,
        Elem::String => 2,
        Elem::CompactString => 1,
        Elem::Struct(id) => {
            let st = struct_def(id);
            usize::try_from(version - st.lo)
                .ok()
                .and_then(|i| st.min.get(i))
                .map_or(0, |&m| u64::from(m))
        }
    }
}

/// What one decoded element takes in its `Vec`.
fn elem_size(elem: Elem) -> u64 {
    let size = match elem {
        Elem::Int8 => 1,
        Elem::Int32 => 4,
        Elem::Int64 => 8,
        Elem::Uuid => 16,
        Elem::String | Elem::CompactString => std::mem::size_of::<StrBytes>(),
        Elem::Struct(id) => struct_def(id).size,
    };
    size as u64
}

fn array_body(
    cur: &mut Cursor<'_>,
    prefix: Prefix,
    offset: usize,
    elem: Elem,
    version: i16,
    depth: usize,
) -> Result<(), BoundsError> {
    let Prefix::Len(count) = prefix else {
        return Ok(());
    };
    let min = elem_min(elem, version);
    check_count(cur, offset, count, min)?;
    // count < 2^32 and element sizes are far below 2^32: no overflow.
    cur.charge(offset, count * elem_size(elem))?;
    match elem {
        // Fixed-size elements: the count check above already proved they fit.
        Elem::Int8 | Elem::Int32 | Elem::Int64 | Elem::Uuid => cur.skip((count * min) as usize),
        Elem::String => (0..count).try_for_each(|_| walk_ty(cur, Ty::String, version, depth)),
        Elem::CompactString => {
            (0..count).try_for_each(|_| walk_ty(cur, Ty::CompactString, version, depth))
        }
        Elem::Struct(id) => {
            let st = struct_def(id);
            (0..count).try_for_each(|_| walk_struct(cur, st, version, depth + 1))
        }
    }
}

#[cfg(test)]
#[path = "bounds_tests.rs"]
mod tests;
