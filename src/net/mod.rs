//! Sockets: the accept loop with its caps and TLS handshake, and frame reading over any byte stream.

pub mod framed;
pub mod listener;
