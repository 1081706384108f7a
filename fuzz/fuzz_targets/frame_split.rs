//! Fuzzes length-prefix framing.
//!
//! Input: `chunk selector u8 | byte stream`. The stream is split with a 1 MiB limit, first all at
//! once, then fed in chunks of 1..=16 bytes (as reads from a socket arrive).
//!
//! Properties:
//! - `frame::split_frame` never panics;
//! - every returned frame is its 4-byte prefix plus exactly the length that prefix names, which is
//!   positive and within the limit, and is the front of the buffer;
//! - `Incomplete` leaves the buffer untouched, and `needed` (once known) exceeds what is buffered;
//! - feeding the stream in chunks yields the same frames and the same final outcome.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_gateway::protocol::frame::{self, FrameError, Split, LEN_PREFIX};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 20;

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Stopped waiting for more bytes.
    Incomplete(Option<usize>),
    /// Stopped on a refused length prefix.
    Refused(FrameError),
}

/// Splits every whole frame off `buf`, checking each step; returns why it stopped.
fn drain(buf: &mut BytesMut, frames: &mut Vec<Bytes>) -> End {
    loop {
        let before = buf.clone();
        match frame::split_frame(buf, MAX) {
            Ok(Split::Frame(f)) => {
                assert!(f.len() >= LEN_PREFIX, "frame shorter than its prefix");
                let declared = i32::from_be_bytes([f[0], f[1], f[2], f[3]]);
                assert!(declared > 0, "accepted non-positive length {declared}");
                let declared = declared as usize;
                assert!(declared <= MAX, "accepted {declared} > {MAX}");
                assert_eq!(f.len(), LEN_PREFIX + declared, "frame length != its prefix");
                assert_eq!(
                    &f[..],
                    &before[..f.len()],
                    "frame is not the buffer's front"
                );
                assert_eq!(&buf[..], &before[f.len()..], "rest of buffer changed");
                frames.push(f);
            }
            Ok(Split::Incomplete { needed }) => {
                assert_eq!(buf, &before, "incomplete split changed the buffer");
                match needed {
                    None => assert!(buf.len() < LEN_PREFIX, "prefix buffered but needed unknown"),
                    Some(n) => assert!(n > buf.len(), "needed {n} but {} buffered", buf.len()),
                }
                return End::Incomplete(needed);
            }
            Err(e) => {
                assert_eq!(buf, &before, "refused split changed the buffer");
                return End::Refused(e);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [chunk_sel, stream @ ..] = data else {
        return;
    };

    let mut whole = BytesMut::from(stream);
    let mut frames_whole = Vec::new();
    let end_whole = drain(&mut whole, &mut frames_whole);

    let chunk = usize::from(*chunk_sel % 16) + 1;
    let mut buf = BytesMut::new();
    let mut frames_chunked = Vec::new();
    let mut end_chunked = End::Incomplete(None);
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        end_chunked = drain(&mut buf, &mut frames_chunked);
        if matches!(end_chunked, End::Refused(_)) {
            break; // the gateway closes the connection here
        }
    }
    assert_eq!(
        frames_chunked, frames_whole,
        "chunked feed split differently"
    );
    assert_eq!(end_chunked, end_whole, "chunked feed ended differently");
});
