//! The one shape every list API is authorized in: each entry of a request's list is forwarded or
//! answered by the gateway; all forwarded, the client's bytes go as sent; none, the answer is
//! written here; in part, the allowed entries go upstream and the gateway's answers are spliced
//! into the upstream's response by key. An API is a declaration ([`list_api!`]: which lists, how
//! an entry is found) plus its check per entry ([`Verdict`]) and its answer ([`Answer`]).
//!
//! Answers are encoded as they are decided, never held as a response struct per entry: a request
//! of 50,000 denied entries costs its encoded answers. Kafka builds these responses from hash maps,
//! so clients match entries by name or id, never by position; the gateway still keeps the
//! client's order.

use std::cell::OnceCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::{Authorize, Merge, Plan, TopicIds};
use crate::protocol::codec::{
    decode_body, encode_request_with_header, encode_response, split_response, ProtocolError,
};
use crate::protocol::fetch::{FetchRequestWire, TopicEntry, TopicRef};
use crate::protocol::list::{self, Answers, Shell, TopicAnswer, TopicPartitions};
use crate::protocol::names::NameListWire;
use crate::protocol::produce::{ProduceRequestWire, ProduceTopic};
use crate::protocol::wire::WireError;

/// What identifies an entry of a response list: a name (topic, group, transactional id,
/// coordinator key), a topic id, or a config resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Name(StrBytes),
    Id(Uuid),
    Resource(i8, StrBytes),
}

impl Key {
    pub fn name(name: &str) -> Key {
        Key::Name(StrBytes::from_string(name.to_owned()))
    }
}

/// The response side of a list API: its list of answers and the keys an answer is found by.
pub trait ResponseList: 'static {
    const API: ApiKey;
    /// The message that holds the list (a response, or an entry of one for a nested list).
    type Response: Encodable + Decodable + Clone + Default + Send + 'static;
    type Answer: Encodable + Decodable + Default + Send + 'static;
    fn answers(r: &mut Self::Response) -> &mut Vec<Self::Answer>;
    /// The keys an answer can be found by, at `version` (a topic by name and by id).
    fn answer_keys(version: i16, a: &Self::Answer) -> [Option<Key>; 2];
}

/// The request side of a list API whose request is decoded.
pub trait RequestList: ResponseList {
    type Request: Encodable + Clone + 'static;
    type Entry: 'static;
    fn entries(r: &Self::Request) -> &[Self::Entry];
    fn entries_mut(r: &mut Self::Request) -> &mut Vec<Self::Entry>;
    /// The key the upstream's answer for `e` is found by.
    fn key(version: i16, e: &Self::Entry) -> Key;
}

/// Declares a list API: a unit type implementing [`ResponseList`] (and, given a request list,
/// [`RequestList`]) from the lists' field names and two key functions.
macro_rules! list_api {
    ($(#[$doc:meta])* $vis:vis $name:ident: $api:ident,
     $resp:ty [$answers:ident] => $answer:ty, |$av:pat_param, $a:ident| $akeys:expr
     $(; $req:ty [$entries:ident] => $entry:ty, |$kv:pat_param, $e:ident| $key:expr)?) => {
        $(#[$doc])*
        #[derive(Debug)]
        $vis struct $name;

        impl $crate::policy::mapping::list_api::ResponseList for $name {
            const API: kafka_protocol::messages::ApiKey = kafka_protocol::messages::ApiKey::$api;
            type Response = $resp;
            type Answer = $answer;
            fn answers(r: &mut $resp) -> &mut Vec<$answer> {
                &mut r.$answers
            }
            fn answer_keys(
                $av: i16,
                $a: &$answer,
            ) -> [Option<$crate::policy::mapping::list_api::Key>; 2] {
                $akeys
            }
        }

        $(impl $crate::policy::mapping::list_api::RequestList for $name {
            type Request = $req;
            type Entry = $entry;
            fn entries(r: &$req) -> &[$entry] {
                &r.$entries
            }
            fn entries_mut(r: &mut $req) -> &mut Vec<$entry> {
                &mut r.$entries
            }
            fn key($kv: i16, $e: &$entry) -> $crate::policy::mapping::list_api::Key {
                $key
            }
        })?
    };
}
pub(crate) use list_api;

/// The answers' key for an answer found by name alone.
pub fn by_name(name: &StrBytes) -> [Option<Key>; 2] {
    [Some(Key::Name(name.clone())), None]
}

/// What the gateway does with one entry of a request's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    /// Answered here with this error code.
    Answer(i16),
    /// Denied again: already answered once (Kafka answers a repeated name once).
    Repeat,
}

/// How a denied entry is answered: written straight into the response's bytes.
pub trait Answer<E> {
    fn write(&self, out: &mut BytesMut, entry: &E, code: i16) -> Result<(), ProtocolError>;
    /// The answer's encoded size when known without encoding it (0 otherwise), so that the room
    /// for every answer is reserved once.
    fn size(&self, _entry: &E, _code: i16) -> usize {
        0
    }
}

impl<E, F: Fn(&mut BytesMut, &E, i16) -> Result<(), ProtocolError>> Answer<E> for F {
    fn write(&self, out: &mut BytesMut, entry: &E, code: i16) -> Result<(), ProtocolError> {
        self(out, entry, code)
    }
}

/// Answers for whole topics of a Fetch or Produce request: one [`TopicAnswer`] per error code in
/// `codes`, made by `make` when the first is needed, so that a request whose every topic is
/// allowed allocates nothing. A code not in `codes` is answered as the first.
pub struct TopicAnswers<F> {
    codes: &'static [i16],
    make: F,
    made: OnceCell<Vec<TopicAnswer>>,
}

impl<F: Fn(i16) -> Result<TopicAnswer, ProtocolError>> TopicAnswers<F> {
    pub fn new(codes: &'static [i16], make: F) -> Self {
        TopicAnswers {
            codes,
            make,
            made: OnceCell::new(),
        }
    }

    fn for_code(&self, code: i16) -> Result<&TopicAnswer, ProtocolError> {
        if self.made.get().is_none() {
            let made = self
                .codes
                .iter()
                .map(|c| (self.make)(*c))
                .collect::<Result<Vec<_>, _>>()?;
            let _ = self.made.set(made);
        }
        let made = self.made.get().expect("set above");
        let at = self.codes.iter().position(|c| *c == code).unwrap_or(0);
        Ok(&made[at])
    }
}

impl<E: TopicPartitions, F: Fn(i16) -> Result<TopicAnswer, ProtocolError>> Answer<E>
    for TopicAnswers<F>
{
    fn write(&self, out: &mut BytesMut, t: &E, code: i16) -> Result<(), ProtocolError> {
        self.for_code(code)?.write(out, t)
    }

    fn size(&self, t: &E, code: i16) -> usize {
        self.for_code(code).map_or(0, |a| a.size(t))
    }
}

/// An answer that is a message built per entry: `build(entry, code)` encoded at `version`.
pub fn answer_with<E, T: Encodable>(
    api: ApiKey,
    version: i16,
    build: impl Fn(&E, i16) -> T,
) -> impl Fn(&mut BytesMut, &E, i16) -> Result<(), ProtocolError> {
    move |out, e, code| {
        build(e, code)
            .encode(out, version)
            .map_err(|err| ProtocolError::Encode {
                api,
                version,
                message: err.to_string(),
            })
    }
}

/// Where a request's entries come from: a decoded request's list, or a list read in place.
pub trait Entries<'a>: Copy {
    type Entry;
    fn version(self) -> i16;
    fn count(self) -> usize;
    fn each(self) -> impl Iterator<Item = Result<Self::Entry, ProtocolError>> + 'a;
    fn key(self, e: &Self::Entry) -> Key;
    /// The request (length prefix included) with only the entries whose verdict is
    /// [`Verdict::Forward`].
    fn forward(self, verdicts: &[Verdict]) -> Result<Bytes, ProtocolError>;
}

/// A decoded request's list.
pub struct Decoded<'a, L: RequestList> {
    pub version: i16,
    pub header: &'a RequestHeader,
    pub request: &'a L::Request,
}

impl<'a, L: RequestList> Decoded<'a, L> {
    pub fn new(version: i16, header: &'a RequestHeader, request: &'a L::Request) -> Self {
        Decoded {
            version,
            header,
            request,
        }
    }
}

impl<L: RequestList> Clone for Decoded<'_, L> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<L: RequestList> Copy for Decoded<'_, L> {}

impl<'a, L: RequestList> Entries<'a> for Decoded<'a, L> {
    type Entry = &'a L::Entry;
    fn version(self) -> i16 {
        self.version
    }
    fn count(self) -> usize {
        L::entries(self.request).len()
    }
    fn each(self) -> impl Iterator<Item = Result<&'a L::Entry, ProtocolError>> + 'a {
        L::entries(self.request).iter().map(Ok)
    }
    fn key(self, e: &&'a L::Entry) -> Key {
        L::key(self.version, e)
    }
    fn forward(self, verdicts: &[Verdict]) -> Result<Bytes, ProtocolError> {
        let mut forwarded = self.request.clone();
        let mut kept = verdicts.iter();
        L::entries_mut(&mut forwarded).retain(|_| kept.next() == Some(&Verdict::Forward));
        encode_request_with_header(L::API, self.version, self.header, &forwarded)
    }
}

/// A request body the in-place reader refused, as the error the session reports.
pub(crate) fn malformed(api: ApiKey, version: i16) -> impl Fn(WireError) -> ProtocolError {
    move |e| ProtocolError::Decode {
        api,
        version,
        what: "request body",
        message: e.to_string(),
    }
}

/// A Fetch request's topics, read in place; forwarded sessionless and without its forgotten
/// topics (see [`super::topics`]' Fetch).
impl<'a> Entries<'a> for &'a FetchRequestWire {
    type Entry = TopicEntry<'a>;
    fn version(self) -> i16 {
        FetchRequestWire::version(self)
    }
    fn count(self) -> usize {
        self.topic_count()
    }
    fn each(self) -> impl Iterator<Item = Result<TopicEntry<'a>, ProtocolError>> + 'a {
        let malformed = malformed(ApiKey::Fetch, FetchRequestWire::version(self));
        self.topics().map(move |t| t.map_err(&malformed))
    }
    fn key(self, e: &TopicEntry<'a>) -> Key {
        topic_key(e.topic)
    }
    fn forward(self, verdicts: &[Verdict]) -> Result<Bytes, ProtocolError> {
        self.splice(
            |forgotten, i| !forgotten && verdicts[i] == Verdict::Forward,
            true,
        )
        .map_err(malformed(ApiKey::Fetch, FetchRequestWire::version(self)))
    }
}

/// A Produce request's topics, read in place.
impl<'a> Entries<'a> for &'a ProduceRequestWire {
    type Entry = ProduceTopic<'a>;
    fn version(self) -> i16 {
        ProduceRequestWire::version(self)
    }
    fn count(self) -> usize {
        self.topic_count()
    }
    fn each(self) -> impl Iterator<Item = Result<ProduceTopic<'a>, ProtocolError>> + 'a {
        let malformed = malformed(ApiKey::Produce, ProduceRequestWire::version(self));
        self.topics().map(move |t| t.map_err(&malformed))
    }
    fn key(self, e: &ProduceTopic<'a>) -> Key {
        topic_key(e.topic)
    }
    fn forward(self, verdicts: &[Verdict]) -> Result<Bytes, ProtocolError> {
        self.splice(|i| verdicts[i] == Verdict::Forward)
            .map_err(malformed(
                ApiKey::Produce,
                ProduceRequestWire::version(self),
            ))
    }
}

/// The key a topic's answer is found by: its id from v13, else its name.
fn topic_key(t: TopicRef<'_>) -> Key {
    match t {
        TopicRef::Id(id) => Key::Id(id),
        TopicRef::Name(n) => Key::name(n),
    }
}

/// A request that is one list of group names, read in place: each entry is its offset in the
/// request and the name.
impl<'a> Entries<'a> for &'a NameListWire {
    type Entry = (u32, &'a str);
    fn version(self) -> i16 {
        NameListWire::version(self)
    }
    fn count(self) -> usize {
        self.len()
    }
    fn each(self) -> impl Iterator<Item = Result<(u32, &'a str), ProtocolError>> + 'a {
        self.names().map(Ok)
    }
    fn key(self, e: &(u32, &'a str)) -> Key {
        Key::name(e.1)
    }
    fn forward(self, verdicts: &[Verdict]) -> Result<Bytes, ProtocolError> {
        self.splice(|i| verdicts[i] == Verdict::Forward)
            .map_err(malformed(self.api(), NameListWire::version(self)))
    }
}

/// Whether the gateway's answers are spliced into the upstream's response, as an adjustment
/// decides after looking at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Splicing {
    Answers,
    /// The upstream's response as it is (adjusted): its top-level error replaces the answers, as
    /// Kafka's own merge does (OffsetFetch, OffsetDelete).
    UpstreamOnly,
}

/// A change made to the upstream's response before the answers are spliced in: filtering what the
/// session may not see, recomputing what the upstream computed for the gateway's principal.
pub type Adjust<L> = Box<
    dyn FnOnce(
            &mut <L as ResponseList>::Response,
            &dyn Authorize,
            &dyn TopicIds,
        ) -> Result<Splicing, ProtocolError>
        + Send,
>;

/// A function that adjusts the upstream's response ([`Adjust`]).
pub trait AdjustFn<L: ResponseList>:
    FnOnce(&mut L::Response, &dyn Authorize, &dyn TopicIds) -> Result<Splicing, ProtocolError>
    + Send
    + 'static
{
}

impl<L: ResponseList, F> AdjustFn<L> for F where
    F: FnOnce(&mut L::Response, &dyn Authorize, &dyn TopicIds) -> Result<Splicing, ProtocolError>
        + Send
        + 'static
{
}

/// What the plan does besides choosing entries: how the upstream's response is adjusted, and
/// when the request is forwarded or answered whole.
pub struct Then<L: ResponseList> {
    /// Applied whenever the request is forwarded.
    always: Option<Adjust<L>>,
    /// Applied when only part of the request is forwarded.
    partial: Option<Adjust<L>>,
    /// Forwarded even when every entry is answered here (with none): the upstream's answer decides.
    forward_empty: bool,
    /// Never forwarded: the whole request is denied (and answered here even with no entries).
    refused: bool,
    /// The source's request is not the client's (a nested list was cut): forwarded from the
    /// source even when every entry is.
    changed: bool,
}

impl<L: ResponseList> Default for Then<L> {
    fn default() -> Self {
        Then {
            always: None,
            partial: None,
            forward_empty: false,
            refused: false,
            changed: false,
        }
    }
}

impl<L: ResponseList> Then<L> {
    /// Adjusts every upstream response to this request, even when everything was forwarded.
    pub fn adjust(mut self, f: impl AdjustFn<L>) -> Self {
        self.always = Some(Box::new(f));
        self
    }

    /// Adjusts the upstream's response when part of the request was answered here.
    pub fn on_partial(mut self, f: impl AdjustFn<L>) -> Self {
        self.partial = Some(Box::new(f));
        self
    }

    /// Forwarded even when every entry is answered here, with an empty list: the upstream's
    /// answer decides (OffsetDelete, whose group-level error replaces the topic errors).
    pub fn forward_empty(mut self) -> Self {
        self.forward_empty = true;
        self
    }

    /// The whole request is denied (the check answers every entry): nothing is forwarded, and a
    /// request with no entries gets the empty answer rather than being forwarded.
    pub fn refused(mut self) -> Self {
        self.refused = true;
        self
    }

    /// The source holds a request changed from the client's: it is what is forwarded.
    pub fn changed(mut self) -> Self {
        self.changed = true;
        self
    }
}

/// Authorizes a list: `check` is called once per entry, in order (so it may remember what it saw,
/// to answer repeats once); a denied entry is answered with `answer`. Nothing is allocated while
/// every entry is forwarded.
pub fn plan<'a, L: ResponseList, S: Entries<'a>>(
    header: &RequestHeader,
    source: S,
    mut check: impl FnMut(&S::Entry) -> Verdict,
    answer: &impl Answer<S::Entry>,
    then: Then<L>,
) -> Result<Plan, ProtocolError> {
    let version = source.version();
    // Left empty (nothing allocated) until an entry is not forwarded.
    let mut verdicts: Vec<Verdict> = Vec::new();
    for (i, e) in source.each().enumerate() {
        let v = check(&e?);
        debug_assert!(!then.refused || v != Verdict::Forward);
        if v != Verdict::Forward && verdicts.capacity() == 0 {
            verdicts.reserve_exact(source.count().max(1));
            verdicts.resize(i, Verdict::Forward);
        }
        if verdicts.capacity() > 0 {
            verdicts.push(v);
        }
    }
    if verdicts.is_empty() && !then.refused && !then.changed {
        return Ok(match then.always {
            None => Plan::Forward,
            Some(adjust) => Plan::ForwardThenMerge(Merge::list(ListMerge::<L> {
                version,
                forwarded: None,
                answers: Answers::default(),
                adjust: Some(adjust),
            })),
        });
    }
    if verdicts.is_empty() && then.changed {
        // Changed, and every entry forwarded.
        verdicts.resize(source.count(), Verdict::Forward);
    }
    let answered = || {
        source
            .each()
            .zip(verdicts.iter())
            .filter_map(|(e, v)| match v {
                Verdict::Answer(code) => Some(e.map(|e| (e, *code))),
                _ => None,
            })
    };
    let (count, size) = answered().try_fold((0, 0), |(n, s), e| {
        e.map(|(e, code)| (n + 1, s + answer.size(&e, code)))
    })?;
    let forwards = verdicts.contains(&Verdict::Forward);
    if !forwards && !then.forward_empty {
        let shell = Shell::answering(L::API, version, header, &L::Response::default(), put::<L>)?;
        let frame = shell.finish(count, size, |out| {
            for e in answered() {
                let (e, code) = e?;
                answer.write(out, &e, code)?;
            }
            Ok(count)
        })?;
        return Ok(Plan::Respond(frame));
    }
    let mut answers = Answers::with_capacity(size, count);
    let mut forwarded = Vec::with_capacity(verdicts.len() - count);
    let mut place = 0;
    for (e, v) in source.each().zip(verdicts.iter()) {
        let e = e?;
        match v {
            Verdict::Forward => forwarded.push(source.key(&e)),
            Verdict::Answer(code) => {
                answers.push_with(place, |out| answer.write(out, &e, *code))?
            }
            Verdict::Repeat => continue,
        }
        place += 1;
    }
    let request = source.forward(&verdicts)?;
    drop(verdicts);
    let adjust = match (then.always, then.partial) {
        (Some(a), Some(p)) => Some(chain::<L>(a, p)),
        (a, p) => a.or(p),
    };
    Ok(Plan::ForwardPartial {
        request,
        merge: Merge::list(ListMerge::<L> {
            version,
            forwarded: Some(forwarded),
            answers,
            adjust,
        }),
    })
}

/// A decoded list behind a whole-request check: `whole` is the error for every entry (the request
/// is refused), else each entry is forwarded when `allowed`, answered `code` otherwise.
pub fn plan_each<'a, L: RequestList>(
    source: Decoded<'a, L>,
    whole: Option<i16>,
    (allowed, code): (impl Fn(&L::Entry) -> bool, i16),
    answer: &impl Answer<&'a L::Entry>,
    then: Then<L>,
) -> Result<Plan, ProtocolError> {
    let then = if whole.is_some() {
        then.refused()
    } else {
        then
    };
    let check = |e: &&'a L::Entry| match whole {
        Some(code) => Verdict::Answer(code),
        None if allowed(e) => Verdict::Forward,
        None => Verdict::Answer(code),
    };
    plan(source.header, source, check, answer, then)
}

fn chain<L: ResponseList>(first: Adjust<L>, then: Adjust<L>) -> Adjust<L> {
    Box::new(move |r, authz, ids| {
        let a = first(r, authz, ids)?;
        let b = then(r, authz, ids)?;
        Ok(if a == Splicing::Answers && b == Splicing::Answers {
            Splicing::Answers
        } else {
            Splicing::UpstreamOnly
        })
    })
}

fn put<L: ResponseList>(r: &mut L::Response, v: Vec<L::Answer>) {
    *L::answers(r) = v;
}

/// The gateway's answers for one response list and the forwarded entries' keys, in the client's
/// order, with the adjustment of the upstream's response.
pub struct ListMerge<L: ResponseList> {
    version: i16,
    /// `None`: every entry was forwarded; the upstream's list is kept as it is.
    forwarded: Option<Vec<Key>>,
    answers: Answers,
    adjust: Option<Adjust<L>>,
}

impl<L: ResponseList> fmt::Debug for ListMerge<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListMerge")
            .field("api", &L::API)
            .field("version", &self.version)
            .field("forwarded", &self.forwarded.as_ref().map(Vec::len))
            .field("answers", &self.answers.len())
            .field("adjusted", &self.adjust.is_some())
            .finish()
    }
}

impl<L: ResponseList> ListMerge<L> {
    /// A merge for a list nested in a forwarded entry (a batched OffsetFetch group's topics):
    /// `answers` at their places among the `forwarded` keys.
    pub fn nested(
        version: i16,
        forwarded: Option<Vec<Key>>,
        answers: Answers,
        adjust: Option<Adjust<L>>,
    ) -> Self {
        ListMerge {
            version,
            forwarded,
            answers,
            adjust,
        }
    }

    fn adjusted(
        &mut self,
        resp: &mut L::Response,
        authz: &dyn Authorize,
        ids: &dyn TopicIds,
    ) -> Result<bool, ProtocolError> {
        let splicing = match self.adjust.take() {
            Some(adjust) => adjust(resp, authz, ids)?,
            None => Splicing::Answers,
        };
        Ok(splicing == Splicing::Answers && (self.forwarded.is_some() || !self.answers.is_empty()))
    }

    /// Where the upstream's entries go, in the client's order: each forwarded key's first unused
    /// match. Upstream entries no forwarded entry asks for are dropped: the client is only ever
    /// told about what it asked for and was checked for.
    fn order(&self, upstream: &[L::Answer]) -> Vec<usize> {
        let Some(forwarded) = &self.forwarded else {
            return (0..upstream.len()).collect();
        };
        let mut index: HashMap<Key, VecDeque<usize>> = HashMap::with_capacity(upstream.len());
        for (i, entry) in upstream.iter().enumerate() {
            for key in L::answer_keys(self.version, entry).into_iter().flatten() {
                index.entry(key).or_default().push_back(i);
            }
        }
        let mut taken = vec![false; upstream.len()];
        let mut order = Vec::with_capacity(forwarded.len());
        for key in forwarded {
            let Some(queue) = index.get_mut(key) else {
                continue;
            };
            // An entry indexed under two keys may already have been taken by the other.
            while let Some(i) = queue.pop_front() {
                if !std::mem::replace(&mut taken[i], true) {
                    order.push(i);
                    break;
                }
            }
        }
        if upstream.len() > order.len() {
            tracing::debug!(
                api = ?L::API,
                extra = upstream.len() - order.len(),
                "dropped upstream entries the request did not ask for"
            );
        }
        order
    }

    /// The merge applied to a decoded message (a nested list is encoded with its parent).
    pub fn apply_to(
        mut self,
        resp: &mut L::Response,
        authz: &dyn Authorize,
        ids: &dyn TopicIds,
    ) -> Result<(), ProtocolError> {
        if !self.adjusted(resp, authz, ids)? {
            return Ok(());
        }
        let order = self.order(L::answers(resp));
        let mut upstream: Vec<Option<L::Answer>> = std::mem::take(L::answers(resp))
            .into_iter()
            .map(Some)
            .collect();
        let mut ours = Vec::with_capacity(self.answers.len());
        for (place, mut bytes) in self.answers.iter() {
            let value =
                L::Answer::decode(&mut bytes, self.version).map_err(|e| ProtocolError::Decode {
                    api: L::API,
                    version: self.version,
                    what: "an answer of the gateway's",
                    message: e.to_string(),
                })?;
            ours.push((place, value));
        }
        let mut merged = Vec::with_capacity(order.len() + ours.len());
        let mut ours = ours.into_iter().peekable();
        for i in order {
            while let Some((_, value)) = ours.next_if(|(place, _)| *place <= merged.len()) {
                merged.push(value);
            }
            merged.extend(upstream[i].take());
        }
        merged.extend(ours.map(|(_, v)| v));
        *L::answers(resp) = merged;
        Ok(())
    }
}

/// Completes an upstream response (length prefix removed, header included) into the frame the
/// client gets (length prefix included).
pub trait Complete: Send + fmt::Debug {
    fn complete(
        self: Box<Self>,
        payload: Bytes,
        authz: &dyn Authorize,
        ids: &dyn TopicIds,
    ) -> Result<Bytes, ProtocolError>;

    /// Topic ids in the upstream's response that completing it must name (see
    /// [`Merge::upstream_topic_ids`]).
    fn upstream_topic_ids(&self, _payload: &Bytes) -> Vec<Uuid> {
        Vec::new()
    }
}

impl<L: ResponseList> Complete for ListMerge<L> {
    fn complete(
        mut self: Box<Self>,
        payload: Bytes,
        authz: &dyn Authorize,
        ids: &dyn TopicIds,
    ) -> Result<Bytes, ProtocolError> {
        let (api, version) = (L::API, self.version);
        let (header, body) = split_response(api, version, payload)?;
        let mut resp: L::Response = decode_body(api, version, body)?;
        if !self.adjusted(&mut resp, authz, ids)? {
            return encode_response(api, version, &header, &resp);
        }
        let upstream = std::mem::take(L::answers(&mut resp));
        let ordered: Vec<&L::Answer> = self
            .order(&upstream)
            .into_iter()
            .map(|i| &upstream[i])
            .collect();
        let size = (
            ordered.len() + self.answers.len(),
            list::entries_size(version, ordered.iter().copied(), &self.answers),
        );
        let entries = list::interleave(ordered, &self.answers);
        list::encode_with_list(api, version, &header, &resp, put::<L>, size, entries)
    }
}

/// A change made to a whole response.
type AdjustWhole<R> = Box<dyn FnOnce(&mut R, &dyn Authorize, &dyn TopicIds) + Send>;

/// A response adjusted as a whole (no list spliced): decoded, changed, encoded again.
pub struct Rewrite<R> {
    api: ApiKey,
    version: i16,
    adjust: AdjustWhole<R>,
    /// The topic ids the adjustment must name, read from the upstream's response.
    topic_ids: Option<fn(&R) -> Vec<Uuid>>,
}

impl<R> fmt::Debug for Rewrite<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rewrite")
            .field("api", &self.api)
            .field("version", &self.version)
            .finish()
    }
}

/// The plan that forwards a request as sent and adjusts its response with `adjust`.
pub fn rewrite<R: Decodable + Encodable + Send + 'static>(
    api: ApiKey,
    version: i16,
    adjust: impl FnOnce(&mut R, &dyn Authorize, &dyn TopicIds) + Send + 'static,
    topic_ids: Option<fn(&R) -> Vec<Uuid>>,
) -> Plan {
    Plan::ForwardThenMerge(Merge::Complete(Box::new(Rewrite {
        api,
        version,
        adjust: Box::new(adjust),
        topic_ids,
    })))
}

impl<R: Decodable + Encodable + Send + 'static> Complete for Rewrite<R> {
    fn complete(
        self: Box<Self>,
        payload: Bytes,
        authz: &dyn Authorize,
        ids: &dyn TopicIds,
    ) -> Result<Bytes, ProtocolError> {
        let (header, body) = split_response(self.api, self.version, payload)?;
        let mut resp: R = decode_body(self.api, self.version, body)?;
        (self.adjust)(&mut resp, authz, ids);
        encode_response(self.api, self.version, &header, &resp)
    }

    fn upstream_topic_ids(&self, payload: &Bytes) -> Vec<Uuid> {
        let Some(read) = self.topic_ids else {
            return Vec::new();
        };
        split_response(self.api, self.version, payload.clone())
            .and_then(|(_, body)| decode_body::<R>(self.api, self.version, body))
            .map(|r| read(&r))
            .unwrap_or_default()
    }
}

/// The plan for a request that needs one permission: forwarded with it, else answered with
/// `denied()`.
pub fn single<R: Encodable>(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    allowed: bool,
    denied: impl FnOnce() -> R,
) -> Result<Plan, ProtocolError> {
    if allowed {
        Ok(Plan::Forward)
    } else {
        super::respond(api, version, header, &denied())
    }
}

/// Kafka checks for repeated entries before authorizing: a denied entry that the request names
/// more than once is answered 42 (INVALID_REQUEST), once (the topic APIs) or at each place (the
/// config APIs); an allowed one is forwarded and answered 42 upstream.
pub struct Repeats<K> {
    repeated: std::collections::HashSet<K>,
    /// `None`: each repeat is answered.
    answered: Option<std::collections::HashSet<K>>,
}

impl<K: std::hash::Hash + Eq> Repeats<K> {
    /// A repeated key answered once.
    pub fn new(keys: impl IntoIterator<Item = K>) -> Repeats<K> {
        let mut seen = std::collections::HashSet::new();
        let mut repeated = std::collections::HashSet::new();
        for k in keys {
            if let Some(k) = seen.replace(k) {
                repeated.insert(k);
            }
        }
        Repeats {
            repeated,
            answered: Some(std::collections::HashSet::new()),
        }
    }

    /// A repeated key answered at each of its places.
    pub fn each(keys: impl IntoIterator<Item = K>) -> Repeats<K> {
        Repeats {
            answered: None,
            ..Repeats::new(keys)
        }
    }

    /// The verdict for a denied entry `key` whose own error is `code`.
    pub fn denied(&mut self, key: K, code: i16) -> Verdict {
        if !self.repeated.contains(&key) {
            return Verdict::Answer(code);
        }
        match &mut self.answered {
            Some(answered) if answered.contains(&key) => Verdict::Repeat,
            Some(answered) => {
                answered.insert(key);
                Verdict::Answer(super::code::INVALID_REQUEST)
            }
            None => Verdict::Answer(super::code::INVALID_REQUEST),
        }
    }
}

#[cfg(test)]
#[path = "list_api_tests.rs"]
mod tests;
