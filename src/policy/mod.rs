//! Authorization with Kafka's StandardAuthorizer semantics: policy model and files, the decision
//! engine, and the mapping from each Kafka request to the checks KafkaApis makes.

pub mod cache;
pub mod engine;
pub mod files;
pub mod mapping;
pub mod model;

pub use model::{Effect, Operation, PatternType, ResourceType};
