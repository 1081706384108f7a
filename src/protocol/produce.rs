//! Produce requests worked on as bytes: topics, partitions and their record bytes read in place,
//! and a partly denied request spliced from the client's bytes. Every Produce is on the hot path:
//! decoding one built a struct per topic and partition only for the gateway to look at names and
//! batch headers; reading in place allocates nothing.

use std::ops::Range;

use super::fetch::TopicRef;
use super::list::TopicPartitions;
use super::wire::{entries, splice_lists, within_offsets, Cursor, WireError};
use bytes::Bytes;

/// The versions read here: kafka-protocol's Produce range (v3+ carries a transactional id).
pub const VERSIONS: Range<i16> = 3..14;
/// v9 is the first flexible version.
const FIRST_FLEXIBLE: i16 = 9;
/// v13 names topics by id.
pub const FIRST_TOPIC_ID: i16 = 13;

/// A Produce request body read in place (after a bounds check by the caller).
#[derive(Debug, Clone)]
pub struct ProduceRequestWire {
    version: i16,
    /// The request without its length prefix: header, then body.
    payload: Bytes,
    transactional_id: Option<Range<usize>>,
    pub acks: i16,
    pub timeout_ms: i32,
    /// Where the topic list's count is, how many topics, where the first starts.
    topics: (usize, usize, usize),
    /// The body's tagged fields (v9+), up to the end of the body.
    rest: Range<usize>,
}

/// One topic of a Produce request, borrowed from the request's bytes.
#[derive(Debug, Clone, Copy)]
pub struct ProduceTopic<'a> {
    pub topic: TopicRef<'a>,
    /// The partitions' list: count and where the first entry starts.
    partitions: (usize, usize),
    payload: &'a [u8],
    flexible: bool,
    /// The entry's bytes in the request.
    range: (u32, u32),
}

/// One partition of a Produce topic: its index and its record batches as sent.
#[derive(Debug, Clone, Copy)]
pub struct ProducePartition<'a> {
    pub index: i32,
    pub records: Option<&'a [u8]>,
}

impl<'a> ProduceTopic<'a> {
    pub fn partition_count(&self) -> usize {
        self.partitions.0
    }

    /// The partitions, in the request's order.
    pub fn partitions(&self) -> impl Iterator<Item = ProducePartition<'a>> + 'a {
        let (payload, flexible) = (self.payload, self.flexible);
        let mut c = Cursor::new(payload, self.partitions.1);
        (0..self.partitions.0).map_while(move |_| {
            // Read before: an entry that fails now failed `parse` too, which refused the request.
            read_partition(payload, &mut c, flexible).ok()
        })
    }

    /// The partition indexes, in the request's order.
    pub fn indexes(&self) -> impl Iterator<Item = i32> + 'a {
        self.partitions().map(|p| p.index)
    }
}

/// What authorizing a Produce request of `topics` topics may allocate at most: its decision and
/// the forwarded topic's key kept for the merge, as for a Fetch ([`super::fetch::planning_bytes`]).
pub fn planning_bytes(topics: usize) -> u64 {
    super::fetch::planning_bytes(topics)
}

impl ProduceRequestWire {
    /// The topic count of a Produce request body, read before anything else so that a request
    /// too long to authorize is refused without walking it.
    pub fn peek_topic_count(version: i16, body: &[u8]) -> Result<usize, WireError> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut c = Cursor::new(body, 0);
        c.string(flexible)?;
        c.skip(2 + 4)?;
        c.count(flexible)?.ok_or(WireError {
            at: c.pos(),
            what: "null topic list",
        })
    }

    /// Reads a Produce request's body, starting at `body_at` in `payload` (header, then body, no
    /// length prefix). The transactional id and topic names are checked to be UTF-8, as
    /// kafka-protocol's decoder does; record bytes are only delimited.
    pub fn parse(version: i16, payload: Bytes, body_at: usize) -> Result<Self, WireError> {
        if !VERSIONS.contains(&version) {
            return Err(WireError {
                at: 0,
                what: "Produce version outside the gateway's range",
            });
        }
        within_offsets(&payload)?;
        let flexible = version >= FIRST_FLEXIBLE;
        let mut c = Cursor::new(&payload, body_at);
        let at = c.pos();
        let transactional_id = c.string(flexible)?;
        if let Some(r) = &transactional_id {
            utf8(&payload[r.clone()], at, "transactional id is not UTF-8")?;
        }
        let acks = c.i16()?;
        let timeout_ms = c.i32()?;
        let count_at = c.pos();
        let count = c.count(flexible)?.ok_or(WireError {
            at: count_at,
            what: "null topic list",
        })?;
        let start = c.pos();
        for _ in 0..count {
            read_topic(&payload, &mut c, version)?;
        }
        let rest_start = c.pos();
        if flexible {
            c.skip_tags()?;
        }
        let rest = rest_start..c.pos();
        Ok(ProduceRequestWire {
            version,
            payload,
            transactional_id,
            acks,
            timeout_ms,
            topics: (count_at, count, start),
            rest,
        })
    }

    pub fn version(&self) -> i16 {
        self.version
    }

    pub fn transactional_id(&self) -> Option<&str> {
        // Checked to be UTF-8 by `parse`.
        let r = self.transactional_id.clone()?;
        std::str::from_utf8(&self.payload[r]).ok()
    }

    pub fn topic_count(&self) -> usize {
        self.topics.1
    }

    /// The topics, in order.
    pub fn topics(&self) -> impl Iterator<Item = Result<ProduceTopic<'_>, WireError>> + Clone {
        let (_, count, start) = self.topics;
        let (payload, version) = (&self.payload[..], self.version);
        entries(Cursor::new(payload, start), count, move |c| {
            read_topic(payload, c, version)
        })
    }

    /// This request (length prefix included) with the client's header and fields as sent and
    /// only the topics `keep` selects (called with each topic's place; kept topics are copied as
    /// sent).
    pub fn splice(&self, mut keep: impl FnMut(usize) -> bool) -> Result<Bytes, WireError> {
        let mut kept = Vec::new();
        for (i, t) in self.topics().enumerate() {
            let t = t?;
            if keep(i) {
                kept.push(t.range);
            }
        }
        let out = splice_lists(
            &self.payload,
            self.topics.0,
            &[&kept],
            self.version >= FIRST_FLEXIBLE,
            self.rest.clone(),
        )?;
        Ok(out.freeze())
    }
}

fn utf8<'a>(bytes: &'a [u8], at: usize, what: &'static str) -> Result<&'a str, WireError> {
    std::str::from_utf8(bytes).map_err(|_| WireError { at, what })
}

fn read_topic<'a>(
    payload: &'a [u8],
    c: &mut Cursor<'_>,
    version: i16,
) -> Result<ProduceTopic<'a>, WireError> {
    let flexible = version >= FIRST_FLEXIBLE;
    let at = c.pos();
    let topic = if version >= FIRST_TOPIC_ID {
        TopicRef::Id(c.uuid()?)
    } else {
        let Some(r) = c.string(flexible)? else {
            return c.fail("null topic name");
        };
        TopicRef::Name(utf8(&payload[r], at, "topic name is not UTF-8")?)
    };
    let count_at = c.pos();
    let count = c.count(flexible)?.ok_or(WireError {
        at: count_at,
        what: "null partition list",
    })?;
    let first = c.pos();
    for _ in 0..count {
        read_partition(payload, c, flexible)?;
    }
    if flexible {
        c.skip_tags()?;
    }
    Ok(ProduceTopic {
        topic,
        partitions: (count, first),
        payload,
        flexible,
        range: (at as u32, c.pos() as u32),
    })
}

fn read_partition<'a>(
    payload: &'a [u8],
    c: &mut Cursor<'_>,
    flexible: bool,
) -> Result<ProducePartition<'a>, WireError> {
    let index = c.i32()?;
    // Nullable bytes: a compact length (varint of n + 1) or an i32 one.
    let len = if flexible {
        i64::from(c.uvarint()?) - 1
    } else {
        i64::from(c.i32()?)
    };
    let records = match len {
        -1 => None,
        n if n < 0 => return c.fail("negative records length"),
        n => {
            let start = c.pos();
            c.skip(n as usize)?;
            Some(&payload[start..c.pos()])
        }
    };
    if flexible {
        c.skip_tags()?;
    }
    Ok(ProducePartition { index, records })
}

impl TopicPartitions for ProduceTopic<'_> {
    fn topic(&self) -> TopicRef<'_> {
        self.topic
    }
    fn partition_count(&self) -> usize {
        self.partitions.0
    }
    fn indexes(&self) -> impl Iterator<Item = i32> + '_ {
        ProduceTopic::indexes(self)
    }
}

#[cfg(test)]
#[path = "produce_tests.rs"]
mod tests;
