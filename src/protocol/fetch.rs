//! Fetch requests worked on as bytes: topics and partitions read in place, the forwarded part
//! spliced from the client's bytes, and the gateway's answers for denied topics written straight
//! into the response. A maximal Fetch names tens of thousands of partitions, each an 80-byte
//! struct once decoded (2.4 times its wire size) and a 200-byte one as a decoded answer: this keeps
//! a request's memory to its own bytes and its answer's.

use std::ops::Range;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::ApiKey;
use uuid::Uuid;

use super::codec::ProtocolError;
use super::frame::LEN_PREFIX;
use super::list::{NestedAnswer, TopicAnswer, TopicPartitions};
use super::wire::{entries, splice_lists, within_offsets, Cursor, WireError};

/// The versions read here: the gateway's Fetch range (v4+ has `isolation_level`; v16-18 differ
/// from v15 only in their responses and in partition tagged fields).
pub const VERSIONS: Range<i16> = 4..19;
/// v7 has fetch sessions and forgotten topics.
const FIRST_SESSION: i16 = 7;
/// v12 is the first flexible version.
const FIRST_FLEXIBLE: i16 = 12;
/// v13 names topics by id.
pub const FIRST_TOPIC_ID: i16 = 13;
/// v15 moves the replica id into the `replica_state` tagged field (tag 1).
const FIRST_REPLICA_STATE: i16 = 15;
const REPLICA_STATE_TAG: u32 = 1;

/// A Fetch request body read in place (after a bounds check by the caller).
#[derive(Debug, Clone)]
pub struct FetchRequestWire {
    version: i16,
    /// The request without its length prefix: header, then body.
    payload: Bytes,
    pub replica_id: i32,
    pub max_wait_ms: i32,
    /// 0 and -1 (a sessionless full fetch) before v7.
    pub session_id: i32,
    pub session_epoch: i32,
    /// Where `session_id` is in `payload` (v7+), followed by `session_epoch`.
    session_at: Option<usize>,
    topics: List,
    /// v7+.
    forgotten: Option<List>,
    /// The fields after the lists (rack id, tagged fields), up to the end of the body.
    rest: Range<usize>,
}

/// A list in `payload`: where its count is, how many entries it has, where the first starts.
#[derive(Debug, Clone, Copy)]
struct List {
    count_at: usize,
    count: usize,
    start: usize,
}

/// A topic, as a Fetch request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicRef<'a> {
    /// v4-12.
    Name(&'a str),
    /// v13+.
    Id(Uuid),
}

impl TopicRef<'_> {
    pub fn id(self) -> Option<Uuid> {
        match self {
            TopicRef::Id(id) => Some(id),
            TopicRef::Name(_) => None,
        }
    }
}

impl std::fmt::Display for TopicRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicRef::Name(name) => write!(f, "{name:?}"),
            TopicRef::Id(id) => write!(f, "id {id}"),
        }
    }
}

/// One topic of a Fetch request (or of its forgotten topics), borrowed from the request's bytes.
#[derive(Debug, Clone, Copy)]
pub struct TopicEntry<'a> {
    pub topic: TopicRef<'a>,
    /// The partition indexes' list: count and where the first entry starts.
    partitions: (usize, usize),
    /// Bytes per partition entry before its tagged fields (the whole entry before v12).
    partition_size: usize,
    payload: &'a [u8],
    version: i16,
    /// The entry's bytes in the request.
    range: (u32, u32),
}

impl<'a> TopicEntry<'a> {
    pub fn partition_count(&self) -> usize {
        self.partitions.0
    }

    /// The partition indexes, in the request's order.
    pub fn partitions(&self) -> impl Iterator<Item = i32> + 'a {
        let mut c = Cursor::new(self.payload, self.partitions.1);
        let (size, flexible) = (self.partition_size, self.version >= FIRST_FLEXIBLE);
        (0..self.partitions.0).map_while(move |_| {
            // Read before: an entry that fails now failed `parse` too, which refused the request.
            let start = c.pos();
            let index = c.i32().ok()?;
            c.skip(size - 4).ok()?;
            if flexible {
                c.skip_tags().ok()?;
            }
            debug_assert!(c.pos() > start);
            Some(index)
        })
    }
}

/// What authorizing a Fetch request of `topics` topics may allocate at most: its decision (2
/// bytes), each forwarded topic's key kept for the merge (40 bytes, its name's copy bounded by
/// the frame) and the 8-byte mark of each answer. Partitions cost nothing beyond their answers'
/// bytes, which are about their own size in the request.
pub fn planning_bytes(topics: usize) -> u64 {
    topics as u64 * (2 + 40 + 8)
}

impl FetchRequestWire {
    /// The topic count of a Fetch request body, read before anything else so that a request too
    /// long to authorize is refused without walking it.
    pub fn peek_topic_count(version: i16, body: &[u8]) -> Result<usize, WireError> {
        let mut c = Cursor::new(body, 0);
        c.skip(fixed_size(version))?;
        c.count(version >= FIRST_FLEXIBLE)?.ok_or(WireError {
            at: c.pos(),
            what: "null topic list",
        })
    }

    /// Reads a Fetch request's body, starting at `body_at` in `payload` (header, then body, no
    /// length prefix). Names are checked to be UTF-8, as kafka-protocol's decoder does.
    pub fn parse(version: i16, payload: Bytes, body_at: usize) -> Result<Self, WireError> {
        if !VERSIONS.contains(&version) {
            return Err(WireError {
                at: 0,
                what: "Fetch version outside the gateway's range",
            });
        }
        within_offsets(&payload)?;
        let flexible = version >= FIRST_FLEXIBLE;
        let mut c = Cursor::new(&payload, body_at);
        let mut replica_id = if version < FIRST_REPLICA_STATE {
            c.i32()?
        } else {
            -1
        };
        let max_wait_ms = c.i32()?;
        c.skip(4 + 4 + 1)?; // min_bytes, max_bytes, isolation_level
        let (session_at, session_id, session_epoch) = if version >= FIRST_SESSION {
            let at = c.pos();
            (Some(at), c.i32()?, c.i32()?)
        } else {
            (None, 0, -1)
        };
        let topics = read_list(&payload, &mut c, version, false)?;
        let forgotten = if version >= FIRST_SESSION {
            Some(read_list(&payload, &mut c, version, true)?)
        } else {
            None
        };
        let rest_start = c.pos();
        if version >= 11 && c.string(flexible)?.is_none() {
            return c.fail("null rack id");
        }
        if flexible {
            let n = c.uvarint()?;
            for _ in 0..n {
                let tag = c.uvarint()?;
                let size = c.uvarint()? as usize;
                let at = c.pos();
                c.skip(size)?;
                if tag == REPLICA_STATE_TAG && version >= FIRST_REPLICA_STATE {
                    replica_id = Cursor::new(&payload[..at + size], at).i32()?;
                }
            }
        }
        let rest = rest_start..c.pos();
        Ok(FetchRequestWire {
            version,
            payload,
            replica_id,
            max_wait_ms,
            session_id,
            session_epoch,
            session_at,
            topics,
            forgotten,
            rest,
        })
    }

    pub fn version(&self) -> i16 {
        self.version
    }

    pub fn topic_count(&self) -> usize {
        self.topics.count
    }

    /// The topics to fetch, in order.
    pub fn topics(&self) -> impl Iterator<Item = Result<TopicEntry<'_>, WireError>> + Clone {
        self.entries(Some(self.topics), false)
    }

    /// The topics the client's fetch session should forget (none before v7).
    pub fn forgotten(&self) -> impl Iterator<Item = Result<TopicEntry<'_>, WireError>> + Clone {
        self.entries(self.forgotten, true)
    }

    fn entries(
        &self,
        list: Option<List>,
        forgotten: bool,
    ) -> impl Iterator<Item = Result<TopicEntry<'_>, WireError>> + Clone {
        let (count, start) = list.map_or((0, 0), |l| (l.count, l.start));
        let (payload, version) = (&self.payload[..], self.version);
        entries(Cursor::new(payload, start), count, move |c| {
            read_entry(payload, c, version, forgotten)
        })
    }

    /// This request (length prefix included) with the client's header as sent, only the topics
    /// and forgotten topics `keep` selects (called with whether the entry is a forgotten one and
    /// its place in its list; kept entries are copied as sent), and, with `sessionless`, session
    /// id 0 and epoch -1 (Kafka's sessionless full fetch) where the version has sessions.
    pub fn splice(
        &self,
        mut keep: impl FnMut(bool, usize) -> bool,
        sessionless: bool,
    ) -> Result<Bytes, WireError> {
        // The entries kept, per list, found first: the new frame is allocated at its size.
        let mut kept: [Vec<(u32, u32)>; 2] = Default::default();
        for (list, forgotten) in [false, true].into_iter().enumerate() {
            let list_of = if forgotten {
                self.forgotten
            } else {
                Some(self.topics)
            };
            for (i, t) in self.entries(list_of, forgotten).enumerate() {
                let t = t?;
                if keep(list == 1, i) {
                    kept[list].push(t.range);
                }
            }
        }
        let lists = [&kept[0][..], &kept[1][..]];
        let lists = if self.forgotten.is_some() {
            &lists[..]
        } else {
            &lists[..1]
        };
        let mut out = splice_lists(
            &self.payload,
            self.topics.count_at,
            lists,
            self.version >= FIRST_FLEXIBLE,
            self.rest.clone(),
        )?;
        if let (true, Some(at)) = (sessionless, self.session_at) {
            let at = LEN_PREFIX + at;
            out[at..at + 4].copy_from_slice(&0i32.to_be_bytes());
            out[at + 4..at + 8].copy_from_slice(&(-1i32).to_be_bytes());
        }
        Ok(out.freeze())
    }
}

/// Where a Fetch request's `max_bytes` is, from the start of its body.
pub fn max_bytes_offset(version: i16) -> usize {
    let replica = if version < FIRST_REPLICA_STATE { 4 } else { 0 };
    replica + 4 + 4 // max_wait_ms, min_bytes
}

/// Bytes of the fixed fields before the topic list.
fn fixed_size(version: i16) -> usize {
    let replica = if version < FIRST_REPLICA_STATE { 4 } else { 0 };
    let session = if version >= FIRST_SESSION { 8 } else { 0 };
    replica + 4 + 4 + 4 + 1 + session
}

/// Bytes of a partition entry of a fetch topic before its tagged fields.
fn partition_size(version: i16) -> usize {
    let leader_epoch = if version >= 9 { 4 } else { 0 };
    let last_fetched_epoch = if version >= FIRST_FLEXIBLE { 4 } else { 0 };
    let log_start = if version >= 5 { 8 } else { 0 };
    4 + leader_epoch + 8 + last_fetched_epoch + log_start + 4
}

fn read_list(
    payload: &[u8],
    c: &mut Cursor<'_>,
    version: i16,
    forgotten: bool,
) -> Result<List, WireError> {
    let count_at = c.pos();
    let count = c.count(version >= FIRST_FLEXIBLE)?.ok_or(WireError {
        at: count_at,
        what: "null topic list",
    })?;
    let start = c.pos();
    for _ in 0..count {
        read_entry(payload, c, version, forgotten)?;
    }
    Ok(List {
        count_at,
        count,
        start,
    })
}

fn read_entry<'a>(
    payload: &'a [u8],
    c: &mut Cursor<'_>,
    version: i16,
    forgotten: bool,
) -> Result<TopicEntry<'a>, WireError> {
    let flexible = version >= FIRST_FLEXIBLE;
    let at = c.pos();
    let topic = if version >= FIRST_TOPIC_ID {
        TopicRef::Id(c.uuid()?)
    } else {
        let Some(r) = c.string(flexible)? else {
            return c.fail("null topic name");
        };
        TopicRef::Name(std::str::from_utf8(&payload[r]).map_err(|_| WireError {
            at,
            what: "topic name is not UTF-8",
        })?)
    };
    let count_at = c.pos();
    let count = c.count(flexible)?.ok_or(WireError {
        at: count_at,
        what: "null partition list",
    })?;
    let first = c.pos();
    let size = if forgotten {
        4
    } else {
        partition_size(version)
    };
    for _ in 0..count {
        c.skip(size)?;
        if flexible && !forgotten {
            c.skip_tags()?;
        }
    }
    if flexible {
        c.skip_tags()?;
    }
    Ok(TopicEntry {
        topic,
        partitions: (count, first),
        partition_size: size,
        payload,
        version,
        range: (at as u32, c.pos() as u32),
    })
}

// ---------------------------------------------------------------------------------------------
// The gateway's answers.

/// The answer for a denied topic's partitions: `FetchResponse.partitionResponse(tp, error)`
/// (high watermark, last stable offset and log start offset -1, no records), written from the
/// request's bytes ([`TopicAnswer`]).
pub fn denied_topics(version: i16, code: i16) -> Result<TopicAnswer, ProtocolError> {
    let partition = NestedAnswer::new(
        ApiKey::Fetch,
        version,
        &PartitionData::default()
            .with_error_code(code)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1),
        |p, i| p.partition_index = i,
    )?;
    Ok(TopicAnswer::new(ApiKey::Fetch, version, partition))
}

impl TopicPartitions for TopicEntry<'_> {
    fn topic(&self) -> TopicRef<'_> {
        self.topic
    }
    fn partition_count(&self) -> usize {
        self.partitions.0
    }
    fn indexes(&self) -> impl Iterator<Item = i32> + '_ {
        self.partitions()
    }
}

/// Where the top-level tagged fields of a Fetch v13+ response body start: the body skipped field
/// by field (records by their length, never read). What the generic walk
/// ([`super::bounds::response_tags_at`]) does for every API, at a fraction of its cost per
/// partition (about 11 ns, benches/results/endpoints.md): every Fetch v16+ response goes through
/// it to find its `node_endpoints`. Every read is bounded by the body; a count that the bytes
/// left cannot back is refused.
pub fn response_tags_at(body: &[u8]) -> Result<usize, WireError> {
    let mut c = Cursor::new(body, 0);
    c.skip(4 + 2 + 4)?; // throttle_time_ms, error_code, session_id
    let topics = c.count(true)?.unwrap_or(0);
    for _ in 0..topics {
        c.skip(16)?; // topic_id
        let partitions = c.count(true)?.unwrap_or(0);
        for _ in 0..partitions {
            // partition_index, error_code, high_watermark, last_stable_offset, log_start_offset
            c.skip(4 + 2 + 8 + 8 + 8)?;
            let aborted = c.count(true)?.unwrap_or(0);
            for _ in 0..aborted {
                c.skip(8 + 8)?; // producer_id, first_offset
                c.skip_tags()?;
            }
            c.skip(4)?; // preferred_read_replica
            c.string(true)?; // records: compact nullable bytes, skipped by length
            c.skip_tags()?;
        }
        c.skip_tags()?;
    }
    Ok(c.pos())
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
