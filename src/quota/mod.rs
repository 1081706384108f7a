//! Client quotas with Kafka's semantics: the windowed rate and throttle time math ([`rate`]), the
//! `q` rules of policy files and which one applies ([`rules`]), and the usage counted against them,
//! shared by all connections ([`sensors`]). The session applies them (`session::quota`).

pub mod rate;
pub mod rules;
pub mod sensors;

pub use rules::{QuotaKind, QuotaRule, QuotaSet};
pub use sensors::{QuotaSensors, Throttle};
