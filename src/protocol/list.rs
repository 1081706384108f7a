//! Responses whose one long list is written entry by entry: the gateway's own answers are encoded
//! as they are decided, the upstream's entries one at a time, so a list of 50,000 entries is never
//! held as 50,000 response structs.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use super::codec::ProtocolError;
use super::frame::LEN_PREFIX;
use super::wire::put_count;

/// Entries of one response list encoded at the response version as they are decided, each with
/// its place in the client's list (where it goes among the upstream's entries).
#[derive(Debug, Default)]
pub struct Answers {
    bytes: BytesMut,
    /// (place in the client's list, end of the entry in `bytes`)
    marks: Vec<(u32, u32)>,
}

impl Answers {
    /// Room for `entries` answers of `bytes` in all, reserved at once: a buffer grown by doubling
    /// would hold up to twice the answers for the request's life.
    pub fn with_capacity(bytes: usize, entries: usize) -> Answers {
        Answers {
            bytes: BytesMut::with_capacity(bytes),
            marks: Vec::with_capacity(entries),
        }
    }

    /// The encoded answers' size in all.
    pub fn bytes_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn push<T: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        place: usize,
        entry: &T,
    ) -> Result<(), ProtocolError> {
        entry
            .encode(&mut self.bytes, version)
            .map_err(|e| ProtocolError::Encode {
                api,
                version,
                message: e.to_string(),
            })?;
        self.marks.push((place as u32, self.bytes.len() as u32));
        Ok(())
    }

    /// Appends an entry `write` encodes itself (the answers of a list nested in the entry are
    /// written without a struct per answer).
    pub fn push_with<E>(
        &mut self,
        place: usize,
        write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), E> {
        write(&mut self.bytes)?;
        self.marks.push((place as u32, self.bytes.len() as u32));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.marks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// The entries in order, each with its place.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8])> {
        let mut start = 0usize;
        self.marks.iter().map(move |&(place, end)| {
            let entry = &self.bytes[start..end as usize];
            start = end as usize;
            (place as usize, entry)
        })
    }
}

/// One entry of a list being written: an encoded answer, or an entry to encode.
pub enum Entry<'a, T> {
    Encoded(&'a [u8]),
    Value(&'a T),
}

/// A response with its one long list left out: the frame up to the list's count (length prefix
/// and header included) and what follows the list. `body` is encoded once with the list empty and
/// once with one default entry; the first byte where the two differ is in the list's count, which
/// splits the first encoding into what comes before the list and what comes after it.
pub struct Shell {
    api: ApiKey,
    version: i16,
    head: BytesMut,
    tail: Vec<u8>,
    compact: bool,
}

impl Shell {
    pub fn new<R, T>(
        api: ApiKey,
        version: i16,
        header: &ResponseHeader,
        body: &R,
        put: impl Fn(&mut R, Vec<T>),
    ) -> Result<Shell, ProtocolError>
    where
        R: Encodable + Clone,
        T: Encodable + Default,
    {
        let encoding = |e: anyhow::Error| ProtocolError::Encode {
            api,
            version,
            message: e.to_string(),
        };
        let mut empty = BytesMut::new();
        let mut shell = body.clone();
        put(&mut shell, Vec::new());
        shell.encode(&mut empty, version).map_err(encoding)?;
        let mut one = BytesMut::new();
        put(&mut shell, vec![T::default()]);
        shell.encode(&mut one, version).map_err(encoding)?;
        let compact = api.response_header_version(version) >= 1;
        let differ = empty.iter().zip(one.iter()).position(|(a, b)| a != b);
        let (at, len) = match (differ, compact) {
            (Some(d), true) => (d, 1),
            (Some(d), false) if d >= 3 => (d - 3, 4),
            _ => {
                return Err(encoding(anyhow::anyhow!(
                    "no list count found in the response"
                )))
            }
        };
        let empty_count: &[u8] = if compact { &[1] } else { &[0, 0, 0, 0] };
        if empty.get(at..at + len) != Some(empty_count) {
            return Err(encoding(anyhow::anyhow!(
                "the list count is not where it was looked for"
            )));
        }
        let mut head = BytesMut::with_capacity(LEN_PREFIX + 64 + at);
        head.put_i32(0);
        header
            .encode(&mut head, api.response_header_version(version))
            .map_err(encoding)?;
        head.extend_from_slice(&empty[..at]);
        Ok(Shell {
            api,
            version,
            head,
            tail: empty[at + len..].to_vec(),
            compact,
        })
    }

    /// The frame with `count` entries that `write` appends (`size` bytes, for sizing the frame
    /// once); `write` returns how many it wrote.
    pub fn finish(
        self,
        count: usize,
        size: usize,
        write: impl FnOnce(&mut BytesMut) -> Result<usize, ProtocolError>,
    ) -> Result<Bytes, ProtocolError> {
        let encoding = |m: String| ProtocolError::Encode {
            api: self.api,
            version: self.version,
            message: m,
        };
        let mut out = BytesMut::with_capacity(self.head.len() + 5 + size + self.tail.len());
        out.extend_from_slice(&self.head);
        put_count(&mut out, self.compact, count).map_err(|e| encoding(e.to_string()))?;
        let written = write(&mut out)?;
        if written != count {
            return Err(encoding(format!(
                "{written} entries written for a count of {count}"
            )));
        }
        out.extend_from_slice(&self.tail);
        let len = i32::try_from(out.len() - LEN_PREFIX)
            .map_err(|_| encoding("response over 2 GiB".into()))?;
        out[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
        Ok(out.freeze())
    }
}

/// Encodes `body` (whose list `put` sets is empty) with `entries` as that list ([`Shell`]): the
/// entries (`count` of them, `entries_size` bytes encoded, for sizing the frame once) are written
/// between what comes before the list and what comes after it.
pub fn encode_with_list<'a, R, T>(
    api: ApiKey,
    version: i16,
    header: &ResponseHeader,
    body: &R,
    put: impl Fn(&mut R, Vec<T>),
    (count, entries_size): (usize, usize),
    entries: impl Iterator<Item = Entry<'a, T>>,
) -> Result<Bytes, ProtocolError>
where
    R: Encodable + Clone,
    T: Encodable + Default + 'a,
{
    Shell::new(api, version, header, body, put)?.finish(count, entries_size, |out| {
        let mut written = 0;
        for e in entries {
            match e {
                Entry::Encoded(b) => out.extend_from_slice(b),
                Entry::Value(v) => v.encode(out, version).map_err(|e| ProtocolError::Encode {
                    api,
                    version,
                    message: e.to_string(),
                })?,
            }
            written += 1;
        }
        Ok(written)
    })
}

/// The encoded size of `values` with `answers`, for [`encode_with_list`].
pub fn entries_size<'a, T: Encodable + 'a>(
    version: i16,
    values: impl IntoIterator<Item = &'a T>,
    answers: &Answers,
) -> usize {
    values
        .into_iter()
        .map(|v| v.compute_size(version).unwrap_or(0))
        .sum::<usize>()
        + answers.bytes_len()
}

/// The upstream's entries (answering the forwarded items, in order) with the gateway's answers put
/// back at their places in the client's list.
pub fn interleave<'a, T: 'a>(
    upstream: impl IntoIterator<Item = &'a T>,
    answers: &'a Answers,
) -> impl Iterator<Item = Entry<'a, T>> {
    let mut up = upstream.into_iter();
    let mut local = answers.iter().peekable();
    let mut n = 0usize;
    std::iter::from_fn(move || {
        let next = match local.next_if(|(place, _)| *place <= n) {
            Some((_, b)) => Some(Entry::Encoded(b)),
            None => up
                .next()
                .map(Entry::Value)
                .or_else(|| local.next().map(|(_, b)| Entry::Encoded(b))),
        };
        n += usize::from(next.is_some());
        next
    })
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
    use kafka_protocol::messages::describe_groups_response::{
        DescribedGroup, DescribedGroupMember,
    };
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use kafka_protocol::messages::{
        BrokerId, DeleteGroupsResponse, DescribeGroupsResponse, FindCoordinatorResponse, GroupId,
        OffsetCommitResponse, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::protocol::codec::{encode_response, response_header};

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_string())
    }

    /// Writing a list entry by entry, as encoded answers (every `answer_every`-th entry) and as
    /// values, gives the same frame as encoding the whole response, at every version from `from`.
    fn same_as_whole<R, T>(
        api: ApiKey,
        from: i16,
        answer_every: usize,
        body: R,
        put: impl Fn(&mut R, Vec<T>),
        items: Vec<T>,
    ) where
        R: Encodable + Clone,
        T: Encodable + Default + Clone,
    {
        let range = api.valid_versions();
        for version in range.min.max(from)..=range.max {
            let header = response_header(7);
            let mut whole = body.clone();
            put(&mut whole, items.clone());
            let want = encode_response(api, version, &header, &whole).expect("whole");
            let mut answers = Answers::default();
            let mut upstream = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if i % answer_every == 0 {
                    answers.push(api, version, i, item).expect("answer");
                } else {
                    upstream.push(item.clone());
                }
            }
            let got = encode_with_list(
                api,
                version,
                &header,
                &body,
                &put,
                (items.len(), entries_size(version, &upstream, &answers)),
                interleave(&upstream, &answers),
            )
            .expect("streamed");
            assert_eq!(got, want, "{api:?} v{version}");
        }
    }

    #[test]
    fn a_list_written_entry_by_entry_is_the_whole_encoding() {
        let groups: Vec<DescribedGroup> = (0..5)
            .map(|i| {
                DescribedGroup::default()
                    .with_group_id(GroupId(s(&format!("g{i}"))))
                    .with_error_code(if i % 2 == 0 { 30 } else { 0 })
                    .with_members(vec![DescribedGroupMember::default().with_member_id(s("m"))])
            })
            .collect();
        same_as_whole(
            ApiKey::DescribeGroups,
            0,
            2,
            DescribeGroupsResponse::default().with_throttle_time_ms(3),
            |r: &mut DescribeGroupsResponse, v| r.groups = v,
            groups,
        );
        let results: Vec<DeletableGroupResult> = (0..4)
            .map(|i| {
                DeletableGroupResult::default()
                    .with_group_id(GroupId(s(&format!("g{i}"))))
                    .with_error_code(30)
            })
            .collect();
        same_as_whole(
            ApiKey::DeleteGroups,
            0,
            2,
            DeleteGroupsResponse::default(),
            |r: &mut DeleteGroupsResponse, v| r.results = v,
            results,
        );
        let topics: Vec<OffsetCommitResponseTopic> = (0..3)
            .map(|i| {
                OffsetCommitResponseTopic::default()
                    .with_name(TopicName(s(&format!("t{i}"))))
                    .with_partitions(vec![
                        OffsetCommitResponsePartition::default()
                            .with_error_code(29);
                        2
                    ])
            })
            .collect();
        same_as_whole(
            ApiKey::OffsetCommit,
            0,
            2,
            OffsetCommitResponse::default(),
            |r: &mut OffsetCommitResponse, v| r.topics = v,
            topics,
        );
    }

    /// FindCoordinator has a list of keys from v4, here answered by the gateway alone.
    #[test]
    fn find_coordinator_keys_from_v4() {
        let coordinators: Vec<Coordinator> = (0..3)
            .map(|i| {
                Coordinator::default()
                    .with_key(s(&format!("k{i}")))
                    .with_node_id(BrokerId(-1))
                    .with_error_code(30)
            })
            .collect();
        same_as_whole(
            ApiKey::FindCoordinator,
            4,
            1,
            FindCoordinatorResponse::default(),
            |r: &mut FindCoordinatorResponse, v| r.coordinators = v,
            coordinators,
        );
    }

    #[test]
    fn answers_go_back_to_their_places_among_the_upstreams_entries() {
        let places = |upstream: Vec<&'static str>, local: &[(usize, &'static str)]| {
            let mut answers = Answers::default();
            let mut names = std::collections::HashMap::new();
            for (place, name) in local {
                answers.bytes.extend_from_slice(name.as_bytes());
                answers
                    .marks
                    .push((*place as u32, answers.bytes.len() as u32));
                names.insert(name.as_bytes().to_vec(), *name);
            }
            interleave(&upstream, &answers)
                .map(|e| match e {
                    Entry::Encoded(b) => names[b],
                    Entry::Value(v) => *v,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            places(vec!["b", "d"], &[(0, "a"), (2, "c")]),
            vec!["a", "b", "c", "d"]
        );
        assert_eq!(places(vec![], &[(1, "x"), (3, "y")]), vec!["x", "y"]);
        assert_eq!(places(vec!["u"], &[(5, "late")]), vec!["u", "late"]);
    }
}
