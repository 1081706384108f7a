//! Authorization with Kafka's StandardAuthorizer semantics: policy model and files, the decision
//! engine, safeguards on what an allowed admin request may ask, the mapping from each Kafka request
//! to the checks KafkaApis makes, and migration of ACLs between Kafka clusters and policy files.

pub mod cache;
pub mod engine;
pub mod files;
pub mod mapping;
pub mod migrate;
pub mod model;
pub mod safeguards;
pub mod suggest;

pub use model::{Effect, Operation, PatternType, ResourceType};
