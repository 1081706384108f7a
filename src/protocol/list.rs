//! Responses whose one long list is written entry by entry: the gateway's own answers are encoded
//! as they are decided, the upstream's entries one at a time, so a list of 50,000 entries is never
//! held as 50,000 response structs.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use super::codec::ProtocolError;
use super::fetch::TopicRef;
use super::frame::LEN_PREFIX;
use super::wire::{put_count, put_uvarint, set_frame_length, uvarint_len};

/// Bytes kept free before the first answer, so that a response made of the answers alone gets its
/// length, header and the fields before its list written in front of them, not copied.
const HEADROOM: usize = 64;

/// Entries of one response list encoded at the response version as they are decided, each with
/// its place in the client's list (where it goes among the upstream's entries).
#[derive(Debug)]
pub struct Answers {
    /// `HEADROOM` bytes, then the answers.
    bytes: BytesMut,
    /// (place in the client's list, end of the entry in `bytes`)
    marks: Vec<(u32, u32)>,
}

impl Default for Answers {
    fn default() -> Answers {
        Answers::with_capacity(0, 0)
    }
}

impl Answers {
    /// Room for `entries` answers of `bytes` in all, reserved at once: a buffer grown by doubling
    /// would hold up to twice the answers for the request's life.
    pub fn with_capacity(bytes: usize, entries: usize) -> Answers {
        let mut buf = BytesMut::with_capacity(HEADROOM + bytes);
        buf.resize(HEADROOM, 0);
        Answers {
            bytes: buf,
            marks: Vec::with_capacity(entries),
        }
    }

    /// The encoded answers' size in all.
    pub fn bytes_len(&self) -> usize {
        self.bytes.len() - HEADROOM
    }

    /// The whole response when every entry of its list is one of these answers, in order: `shell`
    /// is written into the room kept before the answers and its tail after them, so the answers
    /// are not copied (when the room is too small, they are).
    pub fn into_frame(self, shell: Shell) -> Result<Bytes, ProtocolError> {
        let Answers { mut bytes, marks } = self;
        let count = marks.len();
        drop(marks);
        let mut head = BytesMut::with_capacity(shell.head.len() + 5);
        head.extend_from_slice(&shell.head);
        put_count(&mut head, shell.compact, count).map_err(|e| shell.error(e.to_string()))?;
        if head.len() > HEADROOM {
            let size = bytes.len() - HEADROOM;
            return shell.finish(count, size, |out| {
                out.extend_from_slice(&bytes[HEADROOM..]);
                Ok(count)
            });
        }
        let start = HEADROOM - head.len();
        bytes[start..HEADROOM].copy_from_slice(&head);
        bytes.extend_from_slice(&shell.tail);
        let mut frame = bytes.split_off(start);
        drop(bytes);
        set_frame_length(&mut frame).map_err(|e| shell.error(e.to_string()))?;
        Ok(frame.freeze())
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
        let mut start = HEADROOM;
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

/// `value` encoded with the list `put` sets left out: what comes before the list's count and what
/// comes after the list, and whether the count is compact. `value` is encoded once with the list
/// empty and once with one default entry; the first byte where the two differ is in the count.
fn split_list<R, T>(
    api: ApiKey,
    version: i16,
    value: &R,
    put: impl Fn(&mut R, Vec<T>),
) -> Result<(BytesMut, Vec<u8>, bool), ProtocolError>
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
    let mut shell = value.clone();
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
    let tail = empty[at + len..].to_vec();
    empty.truncate(at);
    Ok((empty, tail, compact))
}

/// A response with its one long list left out: the frame up to the list's count (length prefix
/// and header included) and what follows the list ([`split_list`]).
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
        let (before, tail, compact) = split_list(api, version, body, put)?;
        let mut head = BytesMut::with_capacity(LEN_PREFIX + 16 + before.len());
        head.put_i32(0);
        header
            .encode(&mut head, api.response_header_version(version))
            .map_err(|e| ProtocolError::Encode {
                api,
                version,
                message: e.to_string(),
            })?;
        head.extend_from_slice(&before);
        Ok(Shell {
            api,
            version,
            head,
            tail,
            compact,
        })
    }

    /// The shell of an answer the gateway gives a request itself: its correlation id, no tagged
    /// header fields.
    pub fn answering<R, T>(
        api: ApiKey,
        version: i16,
        request: &RequestHeader,
        body: &R,
        put: impl Fn(&mut R, Vec<T>),
    ) -> Result<Shell, ProtocolError>
    where
        R: Encodable + Clone,
        T: Encodable + Default,
    {
        let header = super::codec::response_header(request.correlation_id);
        Shell::new(api, version, &header, body, put)
    }

    fn error(&self, message: String) -> ProtocolError {
        ProtocolError::Encode {
            api: self.api,
            version: self.version,
            message,
        }
    }

    /// The frame with `count` entries that `write` appends (`size` bytes, for sizing the frame
    /// once); `write` returns how many it wrote.
    pub fn finish(
        self,
        count: usize,
        size: usize,
        write: impl FnOnce(&mut BytesMut) -> Result<usize, ProtocolError>,
    ) -> Result<Bytes, ProtocolError> {
        let mut out = BytesMut::with_capacity(self.head.len() + 5 + size + self.tail.len());
        out.extend_from_slice(&self.head);
        put_count(&mut out, self.compact, count).map_err(|e| self.error(e.to_string()))?;
        let written = write(&mut out)?;
        if written != count {
            return Err(self.error(format!("{written} entries written for a count of {count}")));
        }
        out.extend_from_slice(&self.tail);
        set_frame_length(&mut out).map_err(|e| self.error(e.to_string()))?;
        Ok(out.freeze())
    }
}

/// A list entry (a topic) whose nested list (its partitions) is answered alike: one nested answer
/// encoded once, each entry of the nested list a copy with its own index written in (the index
/// is an i32 the encoding holds as is; where, is found by encoding two indexes).
#[derive(Debug, Clone)]
pub struct NestedAnswer {
    api: ApiKey,
    version: i16,
    template: Vec<u8>,
    index_at: usize,
}

impl NestedAnswer {
    pub fn new<P: Encodable + Clone>(
        api: ApiKey,
        version: i16,
        nested: &P,
        set_index: impl Fn(&mut P, i32),
    ) -> Result<NestedAnswer, ProtocolError> {
        let encode = |index: i32| {
            let mut p = nested.clone();
            set_index(&mut p, index);
            let mut out = BytesMut::new();
            p.encode(&mut out, version)
                .map(|()| out)
                .map_err(|e| ProtocolError::Encode {
                    api,
                    version,
                    message: e.to_string(),
                })
        };
        let (zero, marked) = (encode(0)?, encode(0x7F7F_7F7F)?);
        let index_at = zero
            .iter()
            .zip(marked.iter())
            .position(|(a, b)| a != b)
            .filter(|&at| {
                zero.len() == marked.len()
                    && marked.get(at..at + 4) == Some(&[0x7F; 4][..])
                    && zero.get(at..at + 4) == Some(&[0; 4][..])
                    && zero[at + 4..] == marked[at + 4..]
            })
            .ok_or_else(|| ProtocolError::Encode {
                api,
                version,
                message: "the index is not where it was looked for".into(),
            })?;
        Ok(NestedAnswer {
            api,
            version,
            template: zero.to_vec(),
            index_at,
        })
    }

    /// The size of `count` nested answers.
    pub fn size(&self, count: usize) -> usize {
        count * self.template.len()
    }

    /// Appends `entry` (its nested list set by `put`) with one nested answer per index.
    pub fn write<R, T>(
        &self,
        out: &mut BytesMut,
        entry: &R,
        put: impl Fn(&mut R, Vec<T>),
        indexes: impl ExactSizeIterator<Item = i32>,
    ) -> Result<(), ProtocolError>
    where
        R: Encodable + Clone,
        T: Encodable + Default,
    {
        let (before, after, compact) = split_list(self.api, self.version, entry, put)?;
        out.reserve(before.len() + 5 + self.size(indexes.len()) + after.len());
        out.extend_from_slice(&before);
        self.write_list(out, compact, indexes.len(), indexes)?;
        out.extend_from_slice(&after);
        Ok(())
    }

    /// Appends the nested list alone: its count (`compact` or not), then one nested answer per
    /// index, for callers that write the entry around it themselves. `indexes` must yield `count`
    /// indexes; fewer or more is an error, never a frame whose count is wrong.
    pub fn write_list(
        &self,
        out: &mut BytesMut,
        compact: bool,
        count: usize,
        indexes: impl Iterator<Item = i32>,
    ) -> Result<(), ProtocolError> {
        let error = |message: String| ProtocolError::Encode {
            api: self.api,
            version: self.version,
            message,
        };
        put_count(out, compact, count).map_err(|e| error(e.to_string()))?;
        let mut written = 0;
        for index in indexes {
            let at = out.len() + self.index_at;
            out.extend_from_slice(&self.template);
            out[at..at + 4].copy_from_slice(&index.to_be_bytes());
            written += 1;
        }
        if written != count {
            return Err(error(format!(
                "{written} nested answers written for a count of {count}"
            )));
        }
        Ok(())
    }
}

/// A topic entry of a request answered alike on every partition (Fetch, Produce): its name or
/// id and its partition indexes, read from the request's bytes.
pub trait TopicPartitions {
    fn topic(&self) -> TopicRef<'_>;
    fn partition_count(&self) -> usize;
    fn indexes(&self) -> impl Iterator<Item = i32> + '_;
}

/// Answers for whole topics of a Fetch or Produce request, one error on every partition.
/// `FetchableTopicResponse` and `TopicProduceResponse` are laid out alike (the name before v13,
/// the id from v13, the partitions, tagged fields when flexible): the name or id is written from
/// the request's bytes, the partitions from one encoded partition answer ([`NestedAnswer`]).
#[derive(Debug)]
pub struct TopicAnswer {
    flexible: bool,
    partition: NestedAnswer,
}

impl TopicAnswer {
    pub fn new(api: ApiKey, version: i16, partition: NestedAnswer) -> TopicAnswer {
        TopicAnswer {
            flexible: api.response_header_version(version) >= 1,
            partition,
        }
    }

    /// The encoded size of the answer for `t`.
    pub fn size(&self, t: &impl TopicPartitions) -> usize {
        let n = t.partition_count();
        let name = match t.topic() {
            TopicRef::Name(name) if self.flexible => uvarint_len(name.len() + 1) + name.len(),
            TopicRef::Name(name) => 2 + name.len(),
            TopicRef::Id(_) => 16,
        };
        let (count, tags) = if self.flexible {
            (uvarint_len(n + 1), 1)
        } else {
            (4, 0)
        };
        name + count + self.partition.size(n) + tags
    }

    /// Appends the topic's answer with every partition answered.
    pub fn write(&self, out: &mut BytesMut, t: &impl TopicPartitions) -> Result<(), ProtocolError> {
        match t.topic() {
            TopicRef::Id(id) => out.extend_from_slice(id.as_bytes()),
            TopicRef::Name(name) if self.flexible => {
                put_uvarint(out, name.len() as u32 + 1);
                out.extend_from_slice(name.as_bytes());
            }
            TopicRef::Name(name) => {
                out.put_i16(name.len() as i16);
                out.extend_from_slice(name.as_bytes());
            }
        }
        self.partition
            .write_list(out, self.flexible, t.partition_count(), t.indexes())?;
        if self.flexible {
            out.put_u8(0); // no tagged fields
        }
        Ok(())
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
            // Every entry answered: the response written around the answers is the same frame.
            let mut all = Answers::default();
            for (i, item) in items.iter().enumerate() {
                all.push(api, version, i, item).expect("answer");
            }
            let shell = Shell::new(api, version, &header, &body, &put).expect("shell");
            let got = all.into_frame(shell).expect("in place");
            assert_eq!(got, want, "{api:?} v{version}, answered in place");
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

    /// A topic answered from one encoded partition with each index written in is the topic
    /// kafka-protocol encodes with every partition, at every version of the APIs that use it.
    #[test]
    fn nested_answers_are_the_whole_encoding() {
        use kafka_protocol::messages::list_offsets_response::{
            ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
        };
        use kafka_protocol::messages::produce_response::{
            PartitionProduceResponse, TopicProduceResponse,
        };
        let indexes = [0, 7, -1, i32::MAX, 300];
        let range = ApiKey::Produce.valid_versions();
        for version in range.min..=range.max {
            let partition = PartitionProduceResponse::default()
                .with_error_code(29)
                .with_base_offset(-1)
                .with_log_start_offset(-1)
                .with_error_message(Some(s("why")));
            let nested =
                NestedAnswer::new(ApiKey::Produce, version, &partition, |p, i| p.index = i)
                    .expect("template");
            let topic = TopicProduceResponse::default().with_name(TopicName(s("t")));
            let mut got = BytesMut::new();
            nested
                .write(
                    &mut got,
                    &topic,
                    |t, v| t.partition_responses = v,
                    indexes.into_iter(),
                )
                .expect("write");
            let whole = topic.clone().with_partition_responses(
                indexes
                    .iter()
                    .map(|i| partition.clone().with_index(*i))
                    .collect(),
            );
            let mut want = BytesMut::new();
            whole.encode(&mut want, version).expect("encode");
            assert_eq!(got, want, "Produce v{version}");
        }
        let range = ApiKey::ListOffsets.valid_versions();
        for version in range.min..=range.max {
            let partition = ListOffsetsPartitionResponse::default()
                .with_error_code(29)
                .with_timestamp(-1)
                .with_offset(-1);
            let nested = NestedAnswer::new(ApiKey::ListOffsets, version, &partition, |p, i| {
                p.partition_index = i
            })
            .expect("template");
            let topic = ListOffsetsTopicResponse::default().with_name(TopicName(s("t")));
            let mut got = BytesMut::new();
            nested
                .write(
                    &mut got,
                    &topic,
                    |t, v| t.partitions = v,
                    indexes.into_iter(),
                )
                .expect("write");
            let whole = topic.clone().with_partitions(
                indexes
                    .iter()
                    .map(|i| partition.clone().with_partition_index(*i))
                    .collect(),
            );
            let mut want = BytesMut::new();
            whole.encode(&mut want, version).expect("encode");
            assert_eq!(got, want, "ListOffsets v{version}");
        }
    }
}
