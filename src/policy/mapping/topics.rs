//! Checks for the topic, config and cluster-admin APIs, as KafkaApis (and, for the APIs a KRaft
//! broker forwards, ControllerApis) makes them: which Topic and Cluster permissions each request
//! needs, the error Kafka answers with when one is missing, and how the answer for a denied part is
//! merged into the upstream's response.
//!
//! - [`produce`]: Produce (transactional-id and per-topic WRITE), with [`records`] walking batch
//!   headers for the transactional bit.
//! - [`fetch`]: Fetch (follower CLUSTER_ACTION, consumer READ, topic ids, fetch-session reset).
//! - [`offsets`]: ListOffsets, OffsetForLeaderEpoch, DeleteRecords.
//! - [`metadata`]: Metadata (DESCRIBE filtering, auto-creation guard, authorized-operations
//!   bitfields) and DescribeCluster.
//! - [`partitions`]: DescribeTopicPartitions (DESCRIBE filtering, paging over what may be seen).
//! - [`admin`]: CreateTopics, DeleteTopics, CreatePartitions, the three config APIs and
//!   DescribeLogDirs.
//!
//! When everything is allowed the plan is [`Plan::Forward`], and Produce and Fetch (which carry
//! all the data) allocate nothing to decide it. Entries the gateway answers itself are kept in
//! the client's order (Metadata: after the upstream's topics, where Kafka lists unauthorized
//! ones); Kafka builds these responses from hash maps, so clients match entries by name (or id),
//! never by position. Every list is authorized in one shape ([`super::list_api`]): a denied entry
//! is encoded as it is decided, a denied topic's partitions from one
//! encoded partition ([`crate::protocol::list::NestedAnswer`]), and a wholly denied request is
//! written straight into its response.

pub(super) mod admin;
pub(super) mod fetch;
pub(super) mod metadata;
pub(super) mod offsets;
pub(super) mod partitions;
pub(super) mod produce;
pub mod records;

#[cfg(test)]
mod tests;

pub use metadata::MetadataMerge;

use uuid::Uuid;

use super::list_api::Decoded;
pub(crate) use super::{code, message};
use super::{Authorize, TopicIds};
use crate::policy::model::CLUSTER_NAME;
use crate::policy::{Operation, ResourceType};

// ---------------------------------------------------------------------------------------------
// Authorization helpers.

use super::{cluster_allowed, topic_allowed};

/// Kafka's `AuthHelper.authorizedOperations`: one bit (`1 << code`) per operation of
/// `AclEntry.supportedOperations(type)` the session is allowed. Implication (READ ⇒ DESCRIBE, ...)
/// is the authorizer's, as in Kafka, so an explicit DENY DESCRIBE still clears the DESCRIBE bit.
pub fn authorized_operations(authz: &dyn Authorize, rtype: ResourceType, name: &str) -> i32 {
    use Operation::*;
    let supported: &[Operation] = match rtype {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write],
    };
    supported
        .iter()
        .filter(|op| authz.allowed(**op, rtype, name))
        .fold(0i32, |bits, op| bits | (1i32 << op.code()))
}

/// `cluster_authorized_operations` as Metadata v8-10 and DescribeCluster compute it: 0 without
/// DESCRIBE on the cluster, else the bitfield.
fn cluster_operations(authz: &dyn Authorize) -> i32 {
    if cluster_allowed(authz, Operation::Describe) {
        authorized_operations(authz, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        0
    }
}

/// A topic name for a topic id: the gateway's map, or `None` (Kafka's UNKNOWN_TOPIC_ID).
pub(in crate::policy::mapping) fn resolve(ids: &dyn TopicIds, id: Uuid) -> Option<String> {
    if id.is_nil() {
        None
    } else {
        ids.name_of(id)
    }
}
