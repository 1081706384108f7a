//! Reads whole Kafka frames from a byte stream, growing its buffer only as bytes actually arrive.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::protocol::frame::{frame_len, split_frame, FrameError, Split, LEN_PREFIX};

/// Largest single buffer reservation: a peer that announces a 100 MiB frame and sends a few bytes costs
/// this much, not the announced size.
const MAX_RESERVE: usize = 1 << 20;
/// Reserved for a read while a broker's frame length is unknown or nearly complete.
const MIN_RESERVE: usize = 16 * 1024;
/// The same for a client: idle connections wait with this reserved, and most requests are
/// small (issue 13: 10,000 idle connections within 30 KB each). A large request is reserved
/// whole once its length is known, so only its first read is this small.
const MIN_CLIENT_RESERVE: usize = 2 * 1024;
/// A buffer left empty with more room than this after a frame is replaced rather than kept
/// (a client's: a quarter of it, so an idle connection does not hold its last large request's
/// room).
const KEEP_BUFFER: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("connection closed in the middle of a frame ({buffered} bytes buffered)")]
    TruncatedFrame { buffered: usize },
}

pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    reserve_whole: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// For client connections: the buffer grows with the bytes that actually arrive.
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::new(),
            reserve_whole: false,
        }
    }

    /// For broker connections: once a frame's length is known (and within the limit), its whole size
    /// is reserved at once. Growing a large Fetch response step by step copied it several times; the
    /// brokers are the operator's own, and `max` still bounds what one frame can claim.
    pub fn reserving_whole_frames(inner: R) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::new(),
            reserve_whole: true,
        }
    }

    /// Next whole frame (length prefix included), or `None` on a clean end of stream between frames.
    /// `max` bounds the payload; a frame announcing more fails before anything is reserved for it.
    pub async fn next(&mut self, max: usize) -> Result<Option<Bytes>, ReadError> {
        loop {
            let needed = match split_frame(&mut self.buf, max)? {
                Split::Frame(frame) => {
                    self.let_go_of_large_buffer();
                    return Ok(Some(frame));
                }
                Split::Incomplete { needed } => needed,
            };
            let want = match needed {
                Some(n) if self.reserve_whole => (n - self.buf.len()).max(self.min_reserve()),
                Some(n) => (n - self.buf.len()).clamp(self.min_reserve(), MAX_RESERVE),
                None => self.min_reserve(),
            };
            if !self.fill(want).await? {
                return Ok(None);
            }
        }
    }

    /// After a large frame has been split off and nothing else is buffered, the buffer's memory
    /// belongs to that frame alone: start a new one, so the frame's memory is freed once it has
    /// been sent on, instead of staying with the connection until its next large frame.
    fn let_go_of_large_buffer(&mut self) {
        let keep = if self.reserve_whole {
            KEEP_BUFFER
        } else {
            KEEP_BUFFER / 4
        };
        if self.buf.is_empty() && self.buf.capacity() > keep {
            self.buf = BytesMut::new();
        }
    }

    /// What a read reserves at least: a broker's reader [`MIN_RESERVE`], a client's
    /// [`MIN_CLIENT_RESERVE`].
    fn min_reserve(&self) -> usize {
        if self.reserve_whole {
            MIN_RESERVE
        } else {
            MIN_CLIENT_RESERVE
        }
    }

    /// Reads what has arrived into the buffer, reserving `want` first. `false` on a clean end of
    /// stream between frames; an end of stream inside a frame is an error.
    async fn fill(&mut self, want: usize) -> Result<bool, ReadError> {
        self.buf.reserve(want);
        if self.inner.read_buf(&mut self.buf).await? > 0 {
            return Ok(true);
        }
        if self.buf.is_empty() {
            Ok(false)
        } else {
            Err(ReadError::TruncatedFrame {
                buffered: self.buf.len(),
            })
        }
    }

    /// Like [`FrameReader::next`] for client requests: once the length and the API key (the first
    /// two bytes of every request header) have arrived, the frame must also fit `per_api(api_key)`,
    /// so a 1 MiB Metadata limit holds before the 1 MiB is read, whatever `max` allows Produce.
    pub async fn next_request(
        &mut self,
        max: usize,
        per_api: impl Fn(i16) -> usize,
    ) -> Result<Option<Bytes>, ReadError> {
        loop {
            if self.buf.len() >= LEN_PREFIX + 2 {
                let len = frame_len([self.buf[0], self.buf[1], self.buf[2], self.buf[3]], max)?;
                let api_key = i16::from_be_bytes([self.buf[4], self.buf[5]]);
                let limit = per_api(api_key);
                if len > limit {
                    return Err(FrameError::TooLargeForApi {
                        api_key,
                        len,
                        max: limit,
                    }
                    .into());
                }
                return self.next(max).await;
            }
            if let Split::Frame(frame) = split_frame(&mut self.buf, max)? {
                // Only a frame shorter than an API key gets here; the caller refuses it.
                return Ok(Some(frame));
            }
            if !self.fill(self.min_reserve()).await? {
                return Ok(None);
            }
        }
    }

    /// Whether another whole frame is already buffered (so a writer can delay its flush).
    pub fn has_buffered_frame(&self, max: usize) -> bool {
        if self.buf.len() < 4 {
            return false;
        }
        let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        len > 0 && (len as usize) <= max && self.buf.len() >= 4 + len as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::with_prefix;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn frames_arrive_whole_across_partial_reads() {
        let (mut tx, rx) = tokio::io::duplex(7);
        let frames = vec![
            with_prefix(b"first"),
            with_prefix(&[9u8; 100]),
            with_prefix(b"x"),
        ];
        let send = frames.clone();
        tokio::spawn(async move {
            for f in send {
                tx.write_all(&f).await.expect("write");
            }
        });
        let mut r = FrameReader::new(rx);
        for f in frames {
            assert_eq!(r.next(1000).await.expect("frame"), Some(f));
        }
        assert_eq!(r.next(1000).await.expect("eof"), None);
    }

    #[tokio::test]
    async fn oversized_announcement_fails_without_reserving() {
        let (mut tx, rx) = tokio::io::duplex(64);
        tx.write_all(&0x7FFF_FFFFi32.to_be_bytes())
            .await
            .expect("write");
        let mut r = FrameReader::new(rx);
        let err = r.next(1024).await.expect_err("too large");
        assert!(matches!(err, ReadError::Frame(FrameError::TooLarge { .. })));
        assert!(r.buf.capacity() <= MAX_RESERVE);
    }

    #[tokio::test]
    async fn announced_but_unsent_bytes_cost_at_most_one_reservation() {
        let (mut tx, rx) = tokio::io::duplex(64);
        tx.write_all(&(90_000_000i32).to_be_bytes())
            .await
            .expect("write");
        tx.write_all(b"abc").await.expect("write");
        drop(tx);
        let mut r = FrameReader::new(rx);
        let err = r.next(100 * 1024 * 1024).await.expect_err("truncated");
        assert!(matches!(err, ReadError::TruncatedFrame { buffered: 7 }));
        assert!(
            r.buf.capacity() <= 2 * MAX_RESERVE,
            "capacity {}",
            r.buf.capacity()
        );
    }

    #[tokio::test]
    async fn a_request_is_held_to_its_apis_limit_before_its_body_arrives() {
        let (mut tx, rx) = tokio::io::duplex(64);
        // A Metadata request (key 3) announcing 5,000 bytes, of which only the header start is sent.
        tx.write_all(&5_000i32.to_be_bytes()).await.expect("write");
        tx.write_all(&3i16.to_be_bytes()).await.expect("write");
        let mut r = FrameReader::new(rx);
        let limits = |key: i16| if key == 0 { 10_000 } else { 1_000 };
        let err = r.next_request(10_000, limits).await.expect_err("too large");
        assert!(matches!(
            err,
            ReadError::Frame(FrameError::TooLargeForApi {
                api_key: 3,
                len: 5_000,
                max: 1_000
            })
        ));
        // A Produce request (key 0) of the same size is read whole.
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut frame = 0i16.to_be_bytes().to_vec();
        frame.resize(5_000, 7);
        let frame = with_prefix(&frame);
        let sent = frame.clone();
        tokio::spawn(async move { tx.write_all(&sent).await.expect("write") });
        let mut r = FrameReader::new(rx);
        assert_eq!(
            r.next_request(10_000, limits).await.expect("read"),
            Some(frame)
        );
        assert_eq!(r.next_request(10_000, limits).await.expect("eof"), None);
    }

    #[tokio::test]
    async fn negative_and_zero_lengths_close() {
        for prefix in [(-5i32).to_be_bytes(), 0i32.to_be_bytes()] {
            let (mut tx, rx) = tokio::io::duplex(64);
            tx.write_all(&prefix).await.expect("write");
            let mut r = FrameReader::new(rx);
            assert!(matches!(r.next(1024).await, Err(ReadError::Frame(_))));
        }
    }
}
