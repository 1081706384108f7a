//! Requests that are one list of names (DescribeGroups, DeleteGroups, ConsumerGroupDescribe,
//! ShareGroupDescribe) read
//! in place, and answers that echo a name written from a template. A group name is a 32-byte
//! struct once decoded, more than twice its wire size: this keeps such a request's memory to its
//! own bytes.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;

use super::codec::ProtocolError;
use super::frame::LEN_PREFIX;
use super::wire::{
    put_count, put_uvarint, set_frame_length, uvarint_len, within_offsets, Cursor, WireError,
};

/// How a name-list request of one API is laid out at one version.
#[derive(Debug, Clone, Copy)]
struct Shape {
    flexible: bool,
    /// `include_authorized_operations` follows the list.
    flag: bool,
}

fn shape(api: ApiKey, version: i16) -> Option<Shape> {
    match api {
        ApiKey::DescribeGroups if (0..=6).contains(&version) => Some(Shape {
            flexible: version >= 5,
            flag: version >= 3,
        }),
        ApiKey::DeleteGroups if (0..=2).contains(&version) => Some(Shape {
            flexible: version >= 2,
            flag: false,
        }),
        ApiKey::ConsumerGroupDescribe if (0..=1).contains(&version) => Some(Shape {
            flexible: true,
            flag: true,
        }),
        ApiKey::ShareGroupDescribe if version == 1 => Some(Shape {
            flexible: true,
            flag: true,
        }),
        _ => None,
    }
}

/// Whether requests of `api` at `version` are read as a [`NameListWire`].
pub fn applies(api: ApiKey, version: i16) -> bool {
    shape(api, version).is_some()
}

/// What authorizing a request of `names` names may allocate at most: a decision flag per name,
/// the 8-byte mark of each answer and a 4-byte offset with a control byte per bucket of the
/// table that answers each denied name once (hashbrown keeps at most 7/8 of a power-of-two
/// number of buckets full).
pub fn planning_bytes(names: usize) -> u64 {
    let buckets = if names < 8 {
        8
    } else {
        (names as u64 * 8 / 7).next_power_of_two()
    };
    names as u64 * (1 + 8) + buckets * 5
}

/// A name-list request body read in place (after a bounds check by the caller).
#[derive(Debug, Clone)]
pub struct NameListWire {
    api: ApiKey,
    version: i16,
    shape: Shape,
    /// The request without its length prefix: header, then body.
    payload: Bytes,
    /// Where the list's count is (the body's first field), the count, where the first name is.
    count_at: usize,
    count: usize,
    start: usize,
    include_authorized_operations: bool,
    /// The fields after the list, up to the end of the body.
    rest: Range<usize>,
}

impl NameListWire {
    /// The name count, read before anything else so that a list too long to authorize is refused
    /// without walking it.
    pub fn peek_count(api: ApiKey, version: i16, body: &[u8]) -> Result<usize, WireError> {
        let flexible = shape(api, version).is_some_and(|s| s.flexible);
        Cursor::new(body, 0).count(flexible)?.ok_or(WireError {
            at: 0,
            what: "null name list",
        })
    }

    /// Reads the body starting at `body_at` in `payload` (header, then body, no length prefix).
    /// Names are checked to be UTF-8, as kafka-protocol's decoder does.
    pub fn parse(
        api: ApiKey,
        version: i16,
        payload: Bytes,
        body_at: usize,
    ) -> Result<Self, WireError> {
        let shape = shape(api, version).ok_or(WireError {
            at: 0,
            what: "not a name-list request",
        })?;
        within_offsets(&payload)?;
        let mut c = Cursor::new(&payload, body_at);
        let count_at = c.pos();
        let count = c.count(shape.flexible)?.ok_or(WireError {
            at: count_at,
            what: "null name list",
        })?;
        let start = c.pos();
        for _ in 0..count {
            read_name(&payload, &mut c, shape.flexible)?;
        }
        let rest_start = c.pos();
        let include_authorized_operations = shape.flag && c.bool()?;
        if shape.flexible {
            c.skip_tags()?;
        }
        Ok(NameListWire {
            api,
            version,
            shape,
            count_at,
            count,
            start,
            include_authorized_operations,
            rest: rest_start..c.pos(),
            payload,
        })
    }

    pub fn api(&self) -> ApiKey {
        self.api
    }

    pub fn version(&self) -> i16 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn include_authorized_operations(&self) -> bool {
        self.include_authorized_operations
    }

    /// The names in order, each with where its entry starts (for [`NameListWire::name_at`]).
    pub fn names(&self) -> impl Iterator<Item = (u32, &str)> + '_ {
        let mut c = Cursor::new(&self.payload, self.start);
        (0..self.count).map_while(move |_| {
            // Read before: a name that fails now failed `parse`, which refused the request.
            let at = c.pos() as u32;
            read_name(&self.payload, &mut c, self.shape.flexible)
                .ok()
                .map(|n| (at, n))
        })
    }

    /// The name whose entry starts at `at` (an offset [`NameListWire::names`] gave).
    pub fn name_at(&self, at: u32) -> Option<&str> {
        let mut c = Cursor::new(&self.payload, at as usize);
        read_name(&self.payload, &mut c, self.shape.flexible).ok()
    }

    /// This request (length prefix included) with the client's header as sent and only the names
    /// `keep` selects (by place in the list), copied as sent; the fields after the list as sent.
    pub fn splice(&self, mut keep: impl FnMut(usize) -> bool) -> Result<Bytes, WireError> {
        let mut kept = Vec::new();
        let mut c = Cursor::new(&self.payload, self.start);
        for i in 0..self.count {
            let at = c.pos();
            read_name(&self.payload, &mut c, self.shape.flexible)?;
            if keep(i) {
                kept.push((at as u32, c.pos() as u32));
            }
        }
        let size = LEN_PREFIX
            + self.count_at
            + 5
            + kept.iter().map(|(a, b)| (b - a) as usize).sum::<usize>()
            + self.rest.len();
        let mut out = BytesMut::with_capacity(size);
        out.put_i32(0); // the length, set below
        out.extend_from_slice(&self.payload[..self.count_at]);
        put_count(&mut out, self.shape.flexible, kept.len())?;
        for (start, end) in kept {
            out.extend_from_slice(&self.payload[start as usize..end as usize]);
        }
        out.extend_from_slice(&self.payload[self.rest.clone()]);
        set_frame_length(&mut out)?;
        Ok(out.freeze())
    }
}

fn read_name<'a>(
    payload: &'a [u8],
    c: &mut Cursor<'_>,
    flexible: bool,
) -> Result<&'a str, WireError> {
    let at = c.pos();
    let Some(r) = c.string(flexible)? else {
        return c.fail("null name");
    };
    std::str::from_utf8(&payload[r]).map_err(|_| WireError {
        at,
        what: "name is not UTF-8",
    })
}

/// One answer entry that echoes a name (a group's): the entry encoded once with an empty name,
/// split around that name, so each answer is the two halves with its name between them.
#[derive(Debug, Clone)]
pub struct NamedAnswer {
    before: Vec<u8>,
    after: Vec<u8>,
    compact: bool,
}

impl NamedAnswer {
    /// `entry` is encoded with `set_name` setting its name to "" and to "x"; where the two
    /// encodings first differ is the name's length, which both versions of the string (classic
    /// i16 or compact varint) keep in a fixed number of bytes for these two names.
    pub fn new<T: Encodable + Clone>(
        api: ApiKey,
        version: i16,
        entry: &T,
        compact: bool,
        set_name: impl Fn(&mut T, &'static str),
    ) -> Result<NamedAnswer, ProtocolError> {
        let encode = |name: &'static str| {
            let mut e = entry.clone();
            set_name(&mut e, name);
            let mut out = BytesMut::new();
            e.encode(&mut out, version)
                .map(|()| out)
                .map_err(|e| ProtocolError::Encode {
                    api,
                    version,
                    message: e.to_string(),
                })
        };
        let (empty, one) = (encode("")?, encode("x")?);
        let len = if compact { 1 } else { 2 };
        let at = empty
            .iter()
            .zip(one.iter())
            .position(|(a, b)| a != b)
            .map(|d| if compact { d } else { d.saturating_sub(1) })
            .filter(|&at| one.get(at + len) == Some(&b'x') && empty.len() + 1 == one.len())
            .ok_or_else(|| ProtocolError::Encode {
                api,
                version,
                message: "the name is not where it was looked for".into(),
            })?;
        Ok(NamedAnswer {
            before: empty[..at].to_vec(),
            after: empty[at + len..].to_vec(),
            compact,
        })
    }

    /// The encoded size of the answer for `name`.
    pub fn size(&self, name: &str) -> usize {
        let len = if self.compact {
            uvarint_len(name.len() + 1)
        } else {
            2
        };
        self.before.len() + len + name.len() + self.after.len()
    }

    /// Appends the answer for `name`.
    pub fn write(&self, out: &mut BytesMut, name: &str) -> Result<(), WireError> {
        out.extend_from_slice(&self.before);
        if self.compact {
            let len = u32::try_from(name.len() + 1).map_err(|_| WireError {
                at: out.len(),
                what: "name too long",
            })?;
            put_uvarint(out, len);
        } else {
            let len = i16::try_from(name.len()).map_err(|_| WireError {
                at: out.len(),
                what: "name too long",
            })?;
            out.put_i16(len);
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&self.after);
        Ok(())
    }
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
