//! Checks for the group, offset and transaction APIs, as KafkaApis makes them: which Group,
//! TransactionalId, Topic and Cluster permissions each request needs, the error Kafka answers with
//! when one is missing, and how the answer for a denied part is merged into the upstream's response.
//!
//! - [`offsets`]: OffsetCommit, OffsetFetch, OffsetDelete, TxnOffsetCommit.
//! - [`membership`]: FindCoordinator, the classic and KIP-848 group protocols, DescribeGroups,
//!   ConsumerGroupDescribe, ShareGroupDescribe, ListGroups, DeleteGroups.
//! - [`share`]: ShareGroupHeartbeat, ShareFetch, ShareAcknowledge (KIP-932).
//! - [`txn`]: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeProducers,
//!   DescribeTransactions, ListTransactions.
//!
//! When everything is allowed the plan is [`Plan::Forward`] and nothing is allocated: these APIs
//! carry every consumer's heartbeats and commits. Denied parts are answered in the client's order;
//! Kafka itself lists its local errors before or after the coordinator's results depending on the
//! API, and clients match entries by name, never by position.

pub(super) mod membership;
pub(super) mod offsets;
pub mod share;
pub(super) mod txn;

#[cfg(test)]
mod tests;

use super::Authorize;
pub(crate) use super::{code, message};
use crate::policy::ResourceType;

/// Kafka's authorized-operations bit field for a group.
fn group_authorized_operations(authz: &dyn Authorize, group: &str) -> i32 {
    super::topics::authorized_operations(authz, ResourceType::Group, group)
}

/// Topics no client may add to a transaction (Kafka's `Topic.isInternal`).
fn is_internal_topic(name: &str) -> bool {
    matches!(
        name,
        "__consumer_offsets" | "__transaction_state" | "__share_group_state"
    )
}

use super::{cluster_allowed, group_allowed, topic_allowed};
