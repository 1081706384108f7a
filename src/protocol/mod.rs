//! Kafka wire protocol, free of I/O: framing, bounded decoding, version clamping and response rewriting.

pub mod api;
pub mod bounds;
pub mod codec;
pub mod endpoints;
pub mod error_response;
pub mod fetch;
pub mod frame;
pub mod list;
pub mod metadata;
pub mod names;
pub mod produce;
pub mod rewrite;
pub mod tenant;
pub mod throttle;
pub mod wire;
mod wire_schema;
