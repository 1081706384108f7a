//! Length-prefixed Kafka framing: the 4-byte length is validated before a single byte is reserved for it.

use bytes::{Bytes, BytesMut};

/// Size of the big-endian i32 length prefix in front of every Kafka frame.
pub const LEN_PREFIX: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame length {0}")]
    Negative(i32),
    #[error("zero-length frame")]
    Zero,
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// Within the connection's limit, but above the one for this request's API
    /// (`limits.max_request_bytes`, `limits.max_request_bytes_by_api`).
    #[error(
        "request of {len} bytes for API key {api_key} exceeds that API's limit of {max} bytes"
    )]
    TooLargeForApi {
        api_key: i16,
        len: usize,
        max: usize,
    },
}

impl FrameError {
    /// Label for the rejected-frames metric.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::Negative(_) => "negative_length",
            FrameError::Zero => "zero_length",
            FrameError::TooLarge { .. } => "too_large",
            FrameError::TooLargeForApi { .. } => "too_large_for_api",
        }
    }
}

/// One frame (length prefix included) held as parts sent one after the other: the bytes of an
/// upstream response that are passed on unchanged are sent from where they were read instead of
/// being copied into a new frame with the few bytes that change.
///
/// The first part is held inline: a response passed on whole (every allowed Produce and Fetch)
/// costs no allocation here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    first: Option<Bytes>,
    rest: Vec<Bytes>,
}

impl Parts {
    pub fn one(frame: Bytes) -> Parts {
        Parts {
            first: Some(frame),
            rest: Vec::new(),
        }
    }

    /// Appends a part; empty ones are left out.
    pub fn push(&mut self, part: Bytes) {
        if part.is_empty() {
            return;
        }
        match &self.first {
            None => self.first = Some(part),
            Some(_) => self.rest.push(part),
        }
    }

    /// The frame's size, length prefix included.
    pub fn len(&self) -> usize {
        self.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().all(Bytes::is_empty)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.first.iter().chain(self.rest.iter())
    }

    pub fn into_vec(self) -> Vec<Bytes> {
        self.first.into_iter().chain(self.rest).collect()
    }

    pub fn from_vec(parts: Vec<Bytes>) -> Parts {
        let mut out = Parts::default();
        for p in parts {
            out.push(p);
        }
        out
    }

    /// The frame in one buffer: the part itself when there is one, else a copy.
    pub fn joined(self) -> Bytes {
        match (self.first, self.rest.is_empty()) {
            (None, _) => Bytes::new(),
            (Some(one), true) => one,
            (Some(first), false) => {
                let size = first.len() + self.rest.iter().map(Bytes::len).sum::<usize>();
                let mut out = BytesMut::with_capacity(size);
                out.extend_from_slice(&first);
                for p in &self.rest {
                    out.extend_from_slice(p);
                }
                out.freeze()
            }
        }
    }
}

/// Validates a length prefix against `max` (the payload limit, prefix excluded).
pub fn frame_len(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let len = i32::from_be_bytes(prefix);
    if len < 0 {
        return Err(FrameError::Negative(len));
    }
    if len == 0 {
        return Err(FrameError::Zero);
    }
    let len = len as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// What the buffer holds right now.
#[derive(Debug, PartialEq, Eq)]
pub enum Split {
    /// A whole frame, length prefix included, split off the front of the buffer.
    Frame(Bytes),
    /// Not enough bytes yet; `needed` is the total (prefix included) the next frame takes, once known.
    Incomplete { needed: Option<usize> },
}

/// Splits one whole frame off `buf` if it holds one. Never allocates: the caller reads more bytes into
/// `buf` (bounded by `needed`) when the answer is `Incomplete`.
pub fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Split, FrameError> {
    if buf.len() < LEN_PREFIX {
        return Ok(Split::Incomplete { needed: None });
    }
    let prefix = [buf[0], buf[1], buf[2], buf[3]];
    let total = LEN_PREFIX + frame_len(prefix, max)?;
    if buf.len() < total {
        return Ok(Split::Incomplete {
            needed: Some(total),
        });
    }
    Ok(Split::Frame(buf.split_to(total).freeze()))
}

/// Prepends the length prefix to an encoded payload.
pub fn with_prefix(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(LEN_PREFIX + payload.len());
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_lengths_are_rejected_before_allocation() {
        assert_eq!(
            frame_len((-1i32).to_be_bytes(), 100),
            Err(FrameError::Negative(-1))
        );
        assert_eq!(
            frame_len(i32::MIN.to_be_bytes(), 100),
            Err(FrameError::Negative(i32::MIN))
        );
        assert_eq!(frame_len(0i32.to_be_bytes(), 100), Err(FrameError::Zero));
        assert_eq!(
            frame_len(0x7FFF_FFFFi32.to_be_bytes(), 100),
            Err(FrameError::TooLarge {
                len: 0x7FFF_FFFF,
                max: 100
            })
        );
        assert_eq!(
            frame_len(101i32.to_be_bytes(), 100),
            Err(FrameError::TooLarge { len: 101, max: 100 })
        );
        assert_eq!(frame_len(100i32.to_be_bytes(), 100), Ok(100));
    }

    #[test]
    fn every_prefix_of_a_frame_is_incomplete_until_whole() {
        let frame = with_prefix(b"hello kafka");
        for cut in 0..frame.len() {
            let mut buf = BytesMut::from(&frame[..cut]);
            let cap_before = buf.capacity();
            match split_frame(&mut buf, 1024).expect("valid prefix") {
                Split::Incomplete { needed } => {
                    if cut >= LEN_PREFIX {
                        assert_eq!(needed, Some(frame.len()));
                    }
                }
                Split::Frame(_) => panic!("frame split from {cut} of {} bytes", frame.len()),
            }
            assert_eq!(buf.len(), cut, "incomplete input must be left untouched");
            assert_eq!(
                buf.capacity(),
                cap_before,
                "no allocation for an incomplete frame"
            );
        }
        let mut buf = BytesMut::from(&frame[..]);
        buf.extend_from_slice(&[0, 0]);
        assert_eq!(split_frame(&mut buf, 1024), Ok(Split::Frame(frame.clone())));
        assert_eq!(&buf[..], &[0, 0]);
    }

    #[test]
    fn two_frames_in_one_buffer_split_in_order() {
        let a = with_prefix(b"a");
        let b = with_prefix(b"bb");
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&a);
        buf.extend_from_slice(&b);
        assert_eq!(split_frame(&mut buf, 10), Ok(Split::Frame(a)));
        assert_eq!(split_frame(&mut buf, 10), Ok(Split::Frame(b)));
        assert_eq!(
            split_frame(&mut buf, 10),
            Ok(Split::Incomplete { needed: None })
        );
    }
}
