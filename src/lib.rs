//! kafka-gateway: a security gateway that terminates client connections and forwards Kafka traffic upstream.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod certs;
pub mod config;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod protocol;
pub mod quota;
pub mod reload;
pub mod server;
pub mod session;
pub mod sync;
pub mod tls;
pub mod upstream;
