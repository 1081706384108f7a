//! Metadata requests and responses worked on as bytes: a request's topics are read as borrowed
//! names and ids and its forwarded part is spliced from the client's own bytes; a response is
//! walked one topic at a time. A Metadata request may name tens of thousands of topics, and
//! decoding it whole costs a 72-byte struct per entry (2.5 times the wire size of a typical
//! name): this keeps a request's memory to its own bytes.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::protocol::Decodable;
use uuid::Uuid;

use super::frame::LEN_PREFIX;
use super::wire::{entries, put_count, set_frame_length, within_offsets, Cursor, WireError};

/// v9 is the first flexible version (compact strings and arrays, tagged fields).
const FIRST_FLEXIBLE: i16 = 9;
/// v10 puts a topic id before each requested topic's name.
const FIRST_TOPIC_ID: i16 = 10;
/// v4 has `allow_auto_topic_creation`.
const FIRST_AUTO_CREATE_FLAG: i16 = 4;

/// A Metadata request body read in place (after a bounds check by the caller).
#[derive(Debug, Clone)]
pub struct MetadataRequestWire {
    version: i16,
    /// The request without its length prefix: header, then body.
    payload: Bytes,
    /// Where the body starts in `payload`.
    body_at: usize,
    /// `None`: a null topic list (all topics).
    topics: Option<TopicList>,
    allow_auto_topic_creation: bool,
    include_cluster_authorized_operations: bool,
    include_topic_authorized_operations: bool,
    /// The fields after the topic list, up to the end of the body (trailing bytes excluded).
    after_topics: Range<usize>,
}

#[derive(Debug, Clone, Copy)]
struct TopicList {
    count: usize,
    /// Offset of the first entry in `payload`.
    start: usize,
}

/// What authorizing a request of `topics` entries may allocate at most: the de-duplication table
/// (hashbrown keeps at most 7/8 of a power-of-two number of buckets full; a bucket is a 4-byte
/// offset and a control byte) and the 8-byte key hash the response merge keeps per forwarded
/// topic. [`read_metadata_request`](super::codec::read_metadata_request) refuses a request whose
/// bound is above its decoded-size budget, as it would refuse one whose decoding would be.
pub fn planning_bytes(topics: usize) -> u64 {
    let buckets = if topics < 8 {
        8
    } else {
        (topics as u64 * 8 / 7).next_power_of_two()
    };
    buckets * 5 + topics as u64 * 8
}

/// One requested topic, borrowed from the request's bytes.
#[derive(Debug, Clone, Copy)]
pub struct TopicEntry<'a> {
    /// The name, if not null.
    pub name: Option<&'a str>,
    /// The id (v10+; nil before, and for topics named by name).
    pub topic_id: Uuid,
    /// Where the entry starts in the request: it identifies the entry for [`MetadataRequestWire::entry_at`].
    pub at: u32,
    /// Where the name's bytes start (after its length) and, with `tags_at`, end.
    name_at: u32,
    /// Where the entry's tagged fields start (its end for non-flexible versions).
    tags_at: u32,
    end: u32,
}

impl MetadataRequestWire {
    /// Reads a Metadata request's body, starting at `body_at` in `payload` (header, then body,
    /// no length prefix). Every name is checked to be UTF-8, as kafka-protocol's decoder does.
    pub fn parse(version: i16, payload: Bytes, body_at: usize) -> Result<Self, WireError> {
        within_offsets(&payload)?;
        let flexible = version >= FIRST_FLEXIBLE;
        let mut c = Cursor::new(&payload, body_at);
        let topics = match c.count(flexible)? {
            None => None,
            Some(count) => {
                let start = c.pos();
                for _ in 0..count {
                    read_entry(&payload, &mut c, version)?;
                }
                Some(TopicList { count, start })
            }
        };
        let after_start = c.pos();
        let allow_auto_topic_creation = if version >= FIRST_AUTO_CREATE_FLAG {
            c.bool()?
        } else {
            true
        };
        let include_cluster_authorized_operations = if (8..=10).contains(&version) {
            c.bool()?
        } else {
            false
        };
        let include_topic_authorized_operations = if version >= 8 { c.bool()? } else { false };
        if flexible {
            c.skip_tags()?;
        }
        let after_topics = after_start..c.pos();
        Ok(MetadataRequestWire {
            version,
            payload,
            body_at,
            topics,
            allow_auto_topic_creation,
            include_cluster_authorized_operations,
            include_topic_authorized_operations,
            after_topics,
        })
    }

    /// The topic count of a Metadata request body, read before anything else so that a request
    /// too long to authorize is refused without walking it; `None` for a null list.
    pub fn peek_topic_count(version: i16, body: &[u8]) -> Result<Option<usize>, WireError> {
        Cursor::new(body, 0).count(version >= FIRST_FLEXIBLE)
    }

    pub fn version(&self) -> i16 {
        self.version
    }

    /// The request's size without its length prefix.
    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }

    pub fn allow_auto_topic_creation(&self) -> bool {
        self.allow_auto_topic_creation
    }

    pub fn include_cluster_authorized_operations(&self) -> bool {
        self.include_cluster_authorized_operations
    }

    pub fn include_topic_authorized_operations(&self) -> bool {
        self.include_topic_authorized_operations
    }

    /// The number of requested topics; `None` for a null list (all topics).
    pub fn topic_count(&self) -> Option<usize> {
        self.topics.map(|t| t.count)
    }

    /// The requested topics in order; `None` for a null list (all topics).
    pub fn topics(
        &self,
    ) -> Option<impl Iterator<Item = Result<TopicEntry<'_>, WireError>> + Clone> {
        let (payload, version) = (&self.payload[..], self.version);
        self.topics.map(|t| {
            entries(Cursor::new(payload, t.start), t.count, move |c| {
                read_entry(payload, c, version)
            })
        })
    }

    /// An entry's name as a view into the request's bytes (no copy), for answers that echo it.
    pub fn name_view(&self, t: &TopicEntry<'_>) -> Option<kafka_protocol::protocol::StrBytes> {
        let name = t.name?;
        let (start, end) = (t.name_at as usize, t.tags_at as usize);
        // A name is what its entry read there: checked all the same (a foreign entry is `None`);
        // `from_utf8` below is the one UTF-8 check.
        (self.payload.get(start..end)? == name.as_bytes()).then_some(())?;
        kafka_protocol::protocol::StrBytes::from_utf8(self.payload.slice(start..end)).ok()
    }

    /// The entry that starts at `at` (a [`TopicEntry::at`] of this request).
    pub fn entry_at(&self, at: u32) -> Result<TopicEntry<'_>, WireError> {
        let mut c = Cursor::new(&self.payload, at as usize);
        read_entry(&self.payload, &mut c, self.version)
    }

    /// This request (length prefix included) with the client's header as sent and only the
    /// entries `keep` selects, in order, copied as sent (unknown tagged fields included); with
    /// `ids_only`, names beside ids are dropped (null). The fields after the list are kept, with
    /// auto-creation set to `allow_auto_topic_creation` where the version has the flag.
    pub fn splice(
        &self,
        mut keep: impl FnMut(&TopicEntry<'_>) -> bool,
        ids_only: bool,
        allow_auto_topic_creation: bool,
    ) -> Result<Bytes, WireError> {
        let flexible = self.version >= FIRST_FLEXIBLE;
        let mut kept = 0usize;
        let mut size = LEN_PREFIX + self.body_at + 5 + self.after_topics.len();
        for t in self.topics().into_iter().flatten() {
            let t = t?;
            if keep(&t) {
                kept += 1;
                size += (t.end - t.at) as usize;
            }
        }
        let mut out = BytesMut::with_capacity(size);
        out.put_i32(0); // the length, set below
        out.extend_from_slice(&self.payload[..self.body_at]);
        put_count(&mut out, flexible, kept)?;
        for t in self.topics().into_iter().flatten() {
            let t = t?;
            if !keep(&t) {
                continue;
            }
            if ids_only && t.name.is_some() {
                out.extend_from_slice(t.topic_id.as_bytes());
                out.put_u8(0); // a null compact string
                out.extend_from_slice(&self.payload[t.tags_at as usize..t.end as usize]);
            } else {
                out.extend_from_slice(&self.payload[t.at as usize..t.end as usize]);
            }
        }
        let flag_at = out.len();
        out.extend_from_slice(&self.payload[self.after_topics.clone()]);
        if self.version >= FIRST_AUTO_CREATE_FLAG {
            out[flag_at] = u8::from(allow_auto_topic_creation);
        }
        set_frame_length(&mut out)?;
        Ok(out.freeze())
    }
}

fn read_entry<'a>(
    payload: &'a [u8],
    c: &mut Cursor<'_>,
    version: i16,
) -> Result<TopicEntry<'a>, WireError> {
    let at = c.pos() as u32;
    let topic_id = if version >= FIRST_TOPIC_ID {
        c.uuid()?
    } else {
        Uuid::nil()
    };
    let length_at = c.pos();
    let (name, name_at) = match c.string(version >= FIRST_FLEXIBLE)? {
        None => (None, c.pos()),
        Some(r) => {
            let name = std::str::from_utf8(&payload[r.clone()]).map_err(|_| WireError {
                at: length_at,
                what: "topic name is not UTF-8",
            })?;
            (Some(name), r.start)
        }
    };
    let tags_at = c.pos() as u32;
    if version >= FIRST_FLEXIBLE {
        c.skip_tags()?;
    }
    Ok(TopicEntry {
        name,
        topic_id,
        at,
        name_at: name_at as u32,
        tags_at,
        end: c.pos() as u32,
    })
}

/// Where a Metadata response body's parts are, found without decoding its topics.
#[derive(Debug, Clone)]
pub struct ResponseLayout {
    /// `throttle_time_ms` (v3+) and the broker list: `body[..brokers.end]`.
    pub brokers: Range<usize>,
    /// Cluster id (v2+) and controller id (v1+): `body[brokers.end..topics_count]`.
    pub topics_count: usize,
    /// The number of topics and where the first starts.
    pub topics: (usize, usize),
}

/// Reads a Metadata response body up to its first topic.
pub fn response_layout(version: i16, body: &[u8]) -> Result<ResponseLayout, WireError> {
    let brokers_end = brokers_end(version, body)?;
    let (topics_count, topics) = topics_layout(version, body, brokers_end)?;
    Ok(ResponseLayout {
        brokers: 0..brokers_end,
        topics_count,
        topics,
    })
}

/// Where the throttle time (v3+) and broker list that open a Metadata response body end.
pub fn brokers_end(version: i16, body: &[u8]) -> Result<usize, WireError> {
    let flexible = version >= FIRST_FLEXIBLE;
    let mut c = Cursor::new(body, 0);
    if version >= 3 {
        c.i32()?; // throttle_time_ms
    }
    let n = c.count(flexible)?.ok_or(WireError {
        at: c.pos(),
        what: "null broker list",
    })?;
    for _ in 0..n {
        c.i32()?; // node_id
        if c.string(flexible)?.is_none() {
            return c.fail("null broker host");
        }
        c.i32()?; // port
        if version >= 1 {
            c.string(flexible)?; // rack
        }
        if flexible {
            c.skip_tags()?;
        }
    }
    Ok(c.pos())
}

/// From `at` (the end of the brokers) in `body`: where the topic count is, and the count with
/// where the first topic starts.
pub fn topics_layout(
    version: i16,
    body: &[u8],
    at: usize,
) -> Result<(usize, (usize, usize)), WireError> {
    let flexible = version >= FIRST_FLEXIBLE;
    let mut c = Cursor::new(body, at);
    if version >= 2 {
        c.string(flexible)?; // cluster_id
    }
    if version >= 1 {
        c.i32()?; // controller_id
    }
    let topics_count = c.pos();
    let count = c.count(flexible)?.ok_or(WireError {
        at: topics_count,
        what: "null topic list",
    })?;
    Ok((topics_count, (count, c.pos())))
}

/// Decodes the response topic that starts at `at` in `body`, returning it with where it ends.
/// Its names are views into `body`, not copies.
pub fn response_topic_at(
    version: i16,
    body: &Bytes,
    at: usize,
) -> Result<(MetadataResponseTopic, usize), WireError> {
    let mut rest = body.slice(at.min(body.len())..);
    let before = rest.len();
    let topic = MetadataResponseTopic::decode(&mut rest, version).map_err(|_| WireError {
        at,
        what: "malformed topic",
    })?;
    Ok((topic, at + (before - rest.len())))
}

/// Where `cluster_authorized_operations` (v8-10) is in the fields after the topics, and where the
/// body ends, starting from `at` (the end of the last topic).
pub fn response_tail(
    version: i16,
    body: &[u8],
    at: usize,
) -> Result<(Option<usize>, usize), WireError> {
    let mut c = Cursor::new(body, at);
    let cluster_ops = if (8..=10).contains(&version) {
        let p = c.pos();
        c.i32()?;
        Some(p)
    } else {
        None
    };
    if version >= 13 {
        c.i16()?; // error_code
    }
    if version >= FIRST_FLEXIBLE {
        c.skip_tags()?;
    }
    Ok((cluster_ops, c.pos()))
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
