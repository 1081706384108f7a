//! Tenant name mapping: rewrites every topic, group and transactional-id name of a request or
//! response body between a tenant's names (`orders`) and the shared cluster's (`acme.orders`),
//! walking the generated wire schema; no socket, no decode into kafka-protocol structs.
//!
//! Towards the broker every name gains the prefix, so nothing a tenant's client names can reach
//! another tenant's topic, group or transactional id. Towards the client the prefix is taken off,
//! and an array element that names anything outside the tenant (another tenant's topic in a
//! Metadata listing, `__consumer_offsets`, another tenant's group in ListGroups) is dropped, with
//! its array's count adjusted; a foreign name anywhere else fails the response (the session then
//! closes the connection rather than show it). Which fields are names comes from Kafka's
//! `entityType` annotations, as kafka-protocol's `TopicName` / `GroupId` / `TransactionalId`
//! newtypes carry them, plus coordinator keys, config resources (by their type), KIP-848 topic
//! regexes and the cluster id (the tenant's own).
//!
//! Every read is bounded by the body; output grows by at most the prefix per name. Empty topic
//! names stay empty (the broker answers them as invalid, as a dedicated cluster would); empty
//! group and transactional ids are the tenant's own (they get the prefix too).

use bytes::{BufMut, BytesMut};

use super::wire::{put_uvarint, uvarint_len};
use super::wire_schema::{Elem, Ent, StructDef, Ty, APIS, NEVER, STRUCTS};

/// Config resource types whose names are a tenant's (Kafka's `ConfigResource.Type`).
const CONFIG_TOPIC: i8 = 2;
const CONFIG_GROUP: i8 = 32;

/// Deepest struct nesting followed (the schema's is 5).
const MAX_DEPTH: usize = 8;

/// One tenant's view of a shared cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantMap {
    prefix: String,
    /// The prefix as a regex literal (its `.` escaped), for KIP-848 topic regexes.
    regex_prefix: String,
    cluster_id: String,
}

/// Why a body could not be translated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantError {
    #[error("body malformed at offset {0}")]
    Malformed(usize),
    #[error("no schema for API {0} version {1}")]
    Unsupported(i16, i16),
    #[error("a name outside the tenant at offset {0}, where no element can be left out")]
    Foreign(usize),
    #[error("a name at offset {0} is too long with the tenant prefix")]
    TooLong(usize),
    #[error("nesting too deep")]
    TooDeep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToBroker,
    ToClient,
}

impl TenantMap {
    /// `prefix` must be a valid start of a Kafka topic name (checked by the config).
    pub fn new(prefix: &str, cluster_id: &str) -> TenantMap {
        TenantMap {
            prefix: prefix.to_string(),
            regex_prefix: prefix.replace('.', "\\."),
            cluster_id: cluster_id.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The broker's name for a client's topic (an empty name stays empty).
    pub fn broker_topic(&self, name: &str) -> String {
        if name.is_empty() {
            String::new()
        } else {
            format!("{}{name}", self.prefix)
        }
    }

    /// The client's name for a broker's topic, `None` if it is not the tenant's.
    pub fn client_topic<'a>(&self, broker: &'a str) -> Option<&'a str> {
        broker.strip_prefix(self.prefix.as_str())
    }

    /// A request body with every name the broker's.
    pub fn to_broker(
        &self,
        api_key: i16,
        version: i16,
        body: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), TenantError> {
        self.walk(api_key, version, body, out, Dir::ToBroker)
    }

    /// A response body with every name the client's and what is not the tenant's left out.
    pub fn to_client(
        &self,
        api_key: i16,
        version: i16,
        body: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), TenantError> {
        self.walk(api_key, version, body, out, Dir::ToClient)
    }

    /// A whole request frame (length prefix, header, body) with the body's names the broker's.
    pub fn request_frame(&self, frame: &[u8]) -> Result<bytes::Bytes, TenantError> {
        let payload = frame.get(4..).ok_or(TenantError::Malformed(0))?;
        let [k0, k1, v0, v1, ..] = *payload else {
            return Err(TenantError::Malformed(0));
        };
        let (api_key, version) = (i16::from_be_bytes([k0, k1]), i16::from_be_bytes([v0, v1]));
        let flexible = kafka_protocol::messages::ApiKey::try_from(api_key)
            .map_err(|_| TenantError::Unsupported(api_key, version))?
            .request_header_version(version)
            >= 2;
        let mut w = self.header_walker(payload, Dir::ToBroker);
        // After api key, version and correlation id: client_id, then (flexible) tagged fields.
        w.take(8)?;
        let n = w.i16()?;
        if n > 0 {
            w.take(n as usize)?;
        }
        let end = w.header_tags(flexible)?;
        self.reframe(&payload[..end], payload.len() - end, |out| {
            self.to_broker(api_key, version, &payload[end..], out)
        })
    }

    /// A whole response frame with the body's names the client's (the header is `header_len`
    /// bytes after the length prefix).
    pub fn response_frame(
        &self,
        api_key: i16,
        version: i16,
        frame: &[u8],
    ) -> Result<bytes::Bytes, TenantError> {
        let payload = frame.get(4..).ok_or(TenantError::Malformed(0))?;
        let flexible = kafka_protocol::messages::ApiKey::try_from(api_key)
            .map_err(|_| TenantError::Unsupported(api_key, version))?
            .response_header_version(version)
            >= 1;
        let mut w = self.header_walker(payload, Dir::ToClient);
        w.take(4)?; // correlation id
        let end = w.header_tags(flexible)?;
        self.reframe(&payload[..end], payload.len() - end, |out| {
            self.to_client(api_key, version, &payload[end..], out)
        })
    }

    fn header_walker<'a>(&'a self, payload: &'a [u8], dir: Dir) -> Walker<'a> {
        Walker {
            buf: payload,
            pos: 0,
            end: payload.len(),
            map: self,
            dir,
        }
    }

    /// A frame of `header` and what `body` writes, with its length prefix.
    fn reframe(
        &self,
        header: &[u8],
        body_len: usize,
        body: impl FnOnce(&mut BytesMut) -> Result<(), TenantError>,
    ) -> Result<bytes::Bytes, TenantError> {
        // The body's size plus room for prefixes: a Fetch response of megabytes is written once,
        // not grown by doubling.
        let mut out = BytesMut::with_capacity(4 + header.len() + body_len + body_len / 8 + 256);
        out.put_i32(0);
        out.extend_from_slice(header);
        body(&mut out)?;
        let len = i32::try_from(out.len() - 4).map_err(|_| TenantError::TooLong(0))?;
        out[..4].copy_from_slice(&len.to_be_bytes());
        Ok(out.freeze())
    }

    fn walk(
        &self,
        api_key: i16,
        version: i16,
        body: &[u8],
        out: &mut BytesMut,
        dir: Dir,
    ) -> Result<(), TenantError> {
        let api = APIS
            .iter()
            .find(|a| a.key == api_key)
            .ok_or(TenantError::Unsupported(api_key, version))?;
        // Requests go to the broker, responses to the client.
        let body_struct = match dir {
            Dir::ToBroker => api.request,
            Dir::ToClient => api.response,
        };
        let st = &STRUCTS[usize::from(body_struct)];
        if version < st.lo || version > st.hi {
            return Err(TenantError::Unsupported(api_key, version));
        }
        let mut w = Walker {
            buf: body,
            pos: 0,
            end: body.len(),
            map: self,
            dir,
        };
        if w.walk_struct(st, version, 0, out)? {
            return Err(TenantError::Foreign(0));
        }
        // Whatever follows the body (nothing, from a conforming peer) goes as it came.
        out.extend_from_slice(&body[w.pos..]);
        Ok(())
    }

    /// A KIP-848 topic regex confined to the tenant: `<prefix>(?:<regex>)`. The broker matches
    /// whole names, so `^` where a name starts and `$` where it ends mean nothing there and are
    /// dropped (inside the group they would never match after the prefix; librdkafka sends
    /// `(^re$)`). A regex whose parentheses do not balance (outside character classes, escapes
    /// followed) could close the group and match beyond the prefix (`x)|(.*`): it is sent in a
    /// form the broker refuses (INVALID_REGULAR_EXPRESSION), as are `\Q...\E` literals, whose
    /// parentheses the scan cannot see.
    fn broker_regex(&self, regex: &str) -> String {
        match confine_regex(regex) {
            Some(inner) => format!("{}(?:{inner})", self.regex_prefix),
            None => format!("{}(?:{regex})(", self.regex_prefix),
        }
    }

    /// A name as the other side knows it: `Ok(None)` for a foreign name towards the client.
    fn translate(&self, ent: Ent, name: &str, dir: Dir) -> Option<String> {
        match (dir, ent) {
            (Dir::ToBroker, Ent::Topic) => Some(self.broker_topic(name)),
            (Dir::ToBroker, Ent::Regex) => Some(self.broker_regex(name)),
            (Dir::ToBroker, Ent::ClusterId) => Some(name.to_string()),
            (Dir::ToBroker, _) => Some(format!("{}{name}", self.prefix)),
            (Dir::ToClient, Ent::ClusterId) => Some(self.cluster_id.clone()),
            (Dir::ToClient, Ent::Topic) if name.is_empty() => Some(String::new()),
            (Dir::ToClient, Ent::Regex) => name
                .strip_prefix(self.regex_prefix.as_str())
                .and_then(|r| r.strip_prefix("(?:"))
                .and_then(|r| r.strip_suffix(')'))
                .map(str::to_string),
            (Dir::ToClient, _) => name.strip_prefix(self.prefix.as_str()).map(str::to_string),
        }
    }
}

/// The regex without anchors at name boundaries, or `None` if its parentheses do not balance
/// (or it holds a `\Q` literal). Conservative: a character class ends at its first `]` (after a
/// leading `]` or `^]`), never later than the regex engine's, so no parenthesis counted here as
/// inside a class is outside one for the broker.
fn confine_regex(regex: &str) -> Option<String> {
    let chars: Vec<char> = regex.chars().collect();
    let mut out = String::with_capacity(regex.len());
    let mut depth: i32 = 0;
    let mut i = 0;
    // Whether what was written so far ends where a name may start.
    let at_start = |out: &str| {
        out.is_empty() || out.ends_with('(') || out.ends_with("(?:") || out.ends_with('|')
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let next = *chars.get(i + 1)?;
                if next == 'Q' {
                    return None;
                }
                out.push(c);
                out.push(next);
                i += 2;
                continue;
            }
            '[' => {
                // Copy the class through its closing `]`.
                let start = i;
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    i += 1;
                }
                while i < chars.len() && chars[i] != ']' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return None;
                }
                out.extend(&chars[start..=i]);
                i += 1;
                continue;
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            '^' if at_start(&out) => {
                i += 1;
                continue;
            }
            '$' if matches!(chars.get(i + 1), None | Some(')') | Some('|')) => {
                i += 1;
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    (depth == 0).then_some(out)
}

/// Where a config resource's name was written, to be translated once its type is known.
struct PendingConfigName {
    at: usize,
    end: usize,
    compact: bool,
    name: Option<String>,
}

struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    map: &'a TenantMap,
    dir: Dir,
}

impl Walker<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], TenantError> {
        if n > self.end - self.pos {
            return Err(TenantError::Malformed(self.pos));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn copy(&mut self, n: usize, out: &mut BytesMut) -> Result<(), TenantError> {
        let s = self.take(n)?;
        out.extend_from_slice(s);
        Ok(())
    }

    /// Skips a header's tagged fields (flexible versions only); returns where the body starts.
    fn header_tags(&mut self, flexible: bool) -> Result<usize, TenantError> {
        if flexible {
            for _ in 0..self.uvarint()? {
                self.uvarint()?;
                let size = self.uvarint()? as usize;
                self.take(size)?;
            }
        }
        Ok(self.pos)
    }

    fn i16(&mut self) -> Result<i16, TenantError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, TenantError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn uvarint(&mut self) -> Result<u32, TenantError> {
        let start = self.pos;
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0];
            v |= u32::from(b & 0x7F) << (i * 7);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(TenantError::Malformed(start))
    }

    /// A string's value (`None`: null), read with its length prefix.
    fn string(&mut self, compact: bool) -> Result<Option<String>, TenantError> {
        let at = self.pos;
        let len = if compact {
            match self.uvarint()? {
                0 => return Ok(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.i16()? {
                -1 => return Ok(None),
                n if n < 0 => return Err(TenantError::Malformed(at)),
                n => n as usize,
            }
        };
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(|s| Some(s.to_string()))
            .map_err(|_| TenantError::Malformed(at))
    }

    fn put_string(
        out: &mut BytesMut,
        s: Option<&str>,
        compact: bool,
        at: usize,
    ) -> Result<(), TenantError> {
        match (s, compact) {
            (None, true) => out.put_u8(0),
            (None, false) => out.put_i16(-1),
            (Some(s), true) => {
                let n = u32::try_from(s.len() + 1).map_err(|_| TenantError::TooLong(at))?;
                put_uvarint(out, n);
                out.extend_from_slice(s.as_bytes());
            }
            (Some(s), false) => {
                let n = i16::try_from(s.len()).map_err(|_| TenantError::TooLong(at))?;
                out.put_i16(n);
                out.extend_from_slice(s.as_bytes());
            }
        }
        Ok(())
    }

    /// Reads a name and writes it as the other side knows it; true if it is foreign.
    fn name(&mut self, ent: Ent, compact: bool, out: &mut BytesMut) -> Result<bool, TenantError> {
        let at = self.pos;
        let Some(name) = self.string(compact)? else {
            Self::put_string(out, None, compact, at)?;
            return Ok(false);
        };
        match self.map.translate(ent, &name, self.dir) {
            Some(t) => {
                Self::put_string(out, Some(&t), compact, at)?;
                Ok(false)
            }
            None => {
                // Written as it came: the element holding it is left out by the caller.
                Self::put_string(out, Some(&name), compact, at)?;
                Ok(true)
            }
        }
    }

    fn walk_struct(
        &mut self,
        st: &'static StructDef,
        version: i16,
        depth: usize,
        out: &mut BytesMut,
    ) -> Result<bool, TenantError> {
        if depth > MAX_DEPTH {
            return Err(TenantError::TooDeep);
        }
        if version < st.lo || version > st.hi {
            return Err(TenantError::Malformed(self.pos));
        }
        let mut foreign = false;
        let mut config_type: Option<i8> = None;
        let mut config_name: Option<PendingConfigName> = None;
        for (i, f) in st.fields.iter().enumerate() {
            if version < f.0 || version > f.1 {
                continue;
            }
            let ent = st
                .names
                .iter()
                .find(|(idx, _)| usize::from(*idx) == i)
                .map(|(_, e)| *e);
            match (ent, f.2) {
                (Some(Ent::ConfigType), Ty::Int8) => {
                    let b = self.take(1)?[0];
                    out.put_u8(b);
                    config_type = Some(b as i8);
                }
                (Some(Ent::ConfigName), ty @ (Ty::String | Ty::CompactString)) => {
                    let compact = ty == Ty::CompactString;
                    let at = out.len();
                    let src = self.pos;
                    let name = self.string(compact)?;
                    Self::put_string(out, name.as_deref(), compact, src)?;
                    config_name = Some(PendingConfigName {
                        at,
                        end: out.len(),
                        compact,
                        name,
                    });
                }
                (Some(e), Ty::String | Ty::NullableString) => {
                    foreign |= self.name(e, false, out)?
                }
                (Some(e), Ty::CompactString | Ty::NullableCompactString) => {
                    foreign |= self.name(e, true, out)?
                }
                (Some(e), ty) => foreign |= self.names_array(e, ty, version, depth, out)?,
                (None, ty) => foreign |= self.walk_ty(ty, version, depth, out)?,
            }
        }
        if let (Some(t), Some(p)) = (config_type, config_name) {
            if t == CONFIG_TOPIC || t == CONFIG_GROUP {
                foreign |= self.translate_config_name(p, out)?;
            }
        }
        if st.flex != NEVER && version >= st.flex {
            self.walk_tagged(st, version, depth, out)?;
        }
        Ok(foreign)
    }

    /// Rewrites a config resource name written at `p` once its type says it is a tenant's.
    fn translate_config_name(
        &mut self,
        p: PendingConfigName,
        out: &mut BytesMut,
    ) -> Result<bool, TenantError> {
        let Some(name) = p.name else {
            return Ok(false);
        };
        let (t, foreign) = match self.map.translate(Ent::Group, &name, self.dir) {
            Some(t) => (t, false),
            None => (name, true),
        };
        let tail = out.split_off(p.end);
        out.truncate(p.at);
        Self::put_string(out, Some(&t), p.compact, p.at)?;
        out.extend_from_slice(&tail);
        Ok(foreign)
    }

    /// An array of names (`[]string` with an entity type): each translated; towards the client
    /// a foreign one is left out.
    fn names_array(
        &mut self,
        ent: Ent,
        ty: Ty,
        version: i16,
        depth: usize,
        out: &mut BytesMut,
    ) -> Result<bool, TenantError> {
        let (compact, elem) = match ty {
            Ty::Array(e) | Ty::NullableArray(e) => (false, e),
            Ty::CompactArray(e) | Ty::NullableCompactArray(e) => (true, e),
            // A name in a type the walker does not translate: copied as is.
            other => return self.walk_ty(other, version, depth, out),
        };
        if !matches!(elem, Elem::String | Elem::CompactString) {
            return self.walk_ty(ty, version, depth, out);
        }
        let Some((count, count_at, count_len)) = self.array_count(compact, out)? else {
            return Ok(false);
        };
        let mut kept = 0usize;
        for _ in 0..count {
            let start = out.len();
            if self.name(ent, compact, out)? {
                out.truncate(start);
            } else {
                kept += 1;
            }
        }
        Self::fix_count(out, compact, count_at, count_len, count, kept)?;
        Ok(false)
    }

    /// Reads an array's count and writes it; `None` for a null array (written as such).
    fn array_count(
        &mut self,
        compact: bool,
        out: &mut BytesMut,
    ) -> Result<Option<(usize, usize, usize)>, TenantError> {
        let at = self.pos;
        let count_at = out.len();
        let count = if compact {
            match self.uvarint()? {
                0 => {
                    out.put_u8(0);
                    return Ok(None);
                }
                n => (n - 1) as usize,
            }
        } else {
            match self.i32()? {
                -1 => {
                    out.put_i32(-1);
                    return Ok(None);
                }
                n if n < 0 => return Err(TenantError::Malformed(at)),
                n => n as usize,
            }
        };
        // Every element is at least one byte: a count the body cannot back is malformed.
        if count > self.end - self.pos {
            return Err(TenantError::Malformed(at));
        }
        if compact {
            put_uvarint(out, (count + 1) as u32);
        } else {
            out.put_i32(count as i32);
        }
        Ok(Some((count, count_at, out.len() - count_at)))
    }

    /// Rewrites an array's count after elements were left out.
    fn fix_count(
        out: &mut BytesMut,
        compact: bool,
        at: usize,
        len: usize,
        count: usize,
        kept: usize,
    ) -> Result<(), TenantError> {
        if kept == count {
            return Ok(());
        }
        if !compact {
            out[at..at + 4].copy_from_slice(&(kept as i32).to_be_bytes());
            return Ok(());
        }
        let new_len = uvarint_len(kept + 1);
        if new_len == len {
            let mut b = BytesMut::with_capacity(len);
            put_uvarint(&mut b, (kept + 1) as u32);
            out[at..at + len].copy_from_slice(&b);
        } else {
            let tail = out.split_off(at + len);
            out.truncate(at);
            put_uvarint(out, (kept + 1) as u32);
            out.extend_from_slice(&tail);
        }
        Ok(())
    }

    fn walk_tagged(
        &mut self,
        st: &'static StructDef,
        version: i16,
        depth: usize,
        out: &mut BytesMut,
    ) -> Result<(), TenantError> {
        let count = self.uvarint()?;
        put_uvarint(out, count);
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size_at = self.pos;
            let size = self.uvarint()? as usize;
            if size > self.end - self.pos {
                return Err(TenantError::Malformed(size_at));
            }
            put_uvarint(out, tag);
            match st.tagged.iter().find(|t| t.0 == tag) {
                Some(known) if version >= known.1 && version <= known.2 => {
                    // Walked inside its declared size, into its own buffer: a name inside may
                    // change the size written before it.
                    let outer_end = self.end;
                    self.end = self.pos + size;
                    let mut inner = BytesMut::new();
                    let foreign = self.walk_ty(known.3, version, depth, &mut inner)?;
                    if foreign || self.pos != self.end {
                        return Err(TenantError::Foreign(size_at));
                    }
                    self.end = outer_end;
                    put_uvarint(out, inner.len() as u32);
                    out.extend_from_slice(&inner);
                }
                _ => {
                    put_uvarint(out, size as u32);
                    self.copy(size, out)?;
                }
            }
        }
        Ok(())
    }

    /// Copies one field; true if a struct in it (not in an array) named something foreign.
    fn walk_ty(
        &mut self,
        ty: Ty,
        version: i16,
        depth: usize,
        out: &mut BytesMut,
    ) -> Result<bool, TenantError> {
        let at = self.pos;
        match ty {
            Ty::Int8 | Ty::Boolean => self.copy(1, out)?,
            Ty::Int16 | Ty::UInt16 => self.copy(2, out)?,
            Ty::Int32 => self.copy(4, out)?,
            Ty::Int64 | Ty::Float64 => self.copy(8, out)?,
            Ty::Uuid => self.copy(16, out)?,
            Ty::String | Ty::NullableString => {
                let n = self.i16()?;
                out.put_i16(n);
                if n >= 0 {
                    self.copy(n as usize, out)?;
                } else if n != -1 {
                    return Err(TenantError::Malformed(at));
                }
            }
            Ty::Bytes | Ty::NullableBytes => {
                let n = self.i32()?;
                out.put_i32(n);
                if n >= 0 {
                    self.copy(n as usize, out)?;
                } else if n != -1 {
                    return Err(TenantError::Malformed(at));
                }
            }
            Ty::CompactString
            | Ty::NullableCompactString
            | Ty::CompactBytes
            | Ty::NullableCompactBytes => {
                let n = self.uvarint()?;
                put_uvarint(out, n);
                if n > 0 {
                    self.copy((n - 1) as usize, out)?;
                }
            }
            Ty::Array(e) | Ty::NullableArray(e) => {
                return self.array(e, false, version, depth, out)
            }
            Ty::CompactArray(e) | Ty::NullableCompactArray(e) => {
                return self.array(e, true, version, depth, out)
            }
            Ty::Struct(id) => {
                return self.walk_struct(&STRUCTS[usize::from(id)], version, depth + 1, out)
            }
            Ty::OptionStruct(id) => {
                let marker = self.take(1)?[0];
                out.put_u8(marker);
                if marker == 1 {
                    return self.walk_struct(&STRUCTS[usize::from(id)], version, depth + 1, out);
                }
            }
        }
        Ok(false)
    }

    /// An array of non-name elements; towards the client an element naming something foreign is
    /// left out (and the count adjusted).
    fn array(
        &mut self,
        elem: Elem,
        compact: bool,
        version: i16,
        depth: usize,
        out: &mut BytesMut,
    ) -> Result<bool, TenantError> {
        let Some((count, count_at, count_len)) = self.array_count(compact, out)? else {
            return Ok(false);
        };
        let mut kept = 0usize;
        for _ in 0..count {
            let start = out.len();
            let foreign = match elem {
                Elem::Int8 => self.copy(1, out).map(|()| false)?,
                Elem::Int32 => self.copy(4, out).map(|()| false)?,
                Elem::Int64 => self.copy(8, out).map(|()| false)?,
                Elem::Uuid => self.copy(16, out).map(|()| false)?,
                Elem::String => self.walk_ty(Ty::String, version, depth, out)?,
                Elem::CompactString => self.walk_ty(Ty::CompactString, version, depth, out)?,
                Elem::Struct(id) => {
                    self.walk_struct(&STRUCTS[usize::from(id)], version, depth + 1, out)?
                }
            };
            if foreign && self.dir == Dir::ToClient {
                out.truncate(start);
            } else {
                kept += 1;
            }
        }
        Self::fix_count(out, compact, count_at, count_len, count, kept)?;
        Ok(false)
    }
}

#[cfg(test)]
#[path = "tenant_tests.rs"]
mod tests;
