//! The upstream cluster: connections to its brokers and the gateway's own view of it (brokers, versions).

pub mod acls;
pub mod client_properties;
pub mod cluster;
pub mod conn;
pub mod current;
pub mod fetch_sessions;
pub mod sasl;
pub mod topic_ids;

pub use cluster::{Cluster, Target};
pub use conn::{Connector, UpstreamConn, UpstreamError};
