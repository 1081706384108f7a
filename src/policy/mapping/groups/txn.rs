//! Producer and transaction APIs: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! and the transaction admin APIs DescribeProducers, DescribeTransactions, ListTransactions.

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, TopicResponse as ProducersTopic,
};
use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, ApiKey, DescribeProducersRequest, DescribeProducersResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse,
    InitProducerIdRequest, InitProducerIdResponse, ListTransactionsResponse, ProducerId,
    RequestHeader, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::code::{
    CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, OPERATION_NOT_ATTEMPTED,
    TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION,
};
use super::{
    forward_partial, is_internal_topic, mask, message, read_response, respond, split, then_merge,
    Denied, Merge,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::model::CLUSTER_NAME;
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::{encode_response, ProtocolError};

fn txn_write(authz: &dyn Authorize, id: &str) -> bool {
    authz.allowed(Operation::Write, ResourceType::TransactionalId, id)
}

/// KafkaApis.handleInitProducerIdRequest: a transactional producer needs WRITE on its
/// transactional id (53); an idempotent one IDEMPOTENT_WRITE on the cluster or WRITE on some topic
/// (KIP-679, `authorizeByResourceType`), else 31. The error answer has producer id and epoch -1.
pub(super) fn init_producer_id(
    version: i16,
    header: &RequestHeader,
    req: &InitProducerIdRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let error = match &req.transactional_id {
        Some(id) if txn_write(authz, id) => return Ok(Plan::Forward),
        Some(_) => TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        None => {
            if authz.allowed(
                Operation::IdempotentWrite,
                ResourceType::Cluster,
                CLUSTER_NAME,
            ) || authz.allowed_any(Operation::Write, ResourceType::Topic)
            {
                return Ok(Plan::Forward);
            }
            CLUSTER_AUTHORIZATION_FAILED
        }
    };
    let resp = InitProducerIdResponse::default()
        .with_error_code(error)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    respond(ApiKey::InitProducerId, version, header, &resp)
}

/// KafkaApis.handleAddPartitionsToTxnRequest. Client versions (v0-3): WRITE on the transactional
/// id, else 53 on every partition; WRITE on each topic (never on an internal topic), else 29, and
/// if any partition fails nothing is added: an allowed topic that does not exist gets 3, the
/// others 55 OPERATION_NOT_ATTEMPTED (the session asked the cluster about names the gateway had
/// not seen before this plan). v4+ batches come from brokers verifying transactions and need
/// CLUSTER_ACTION, else a top-level 31.
pub(super) fn add_partitions_to_txn(
    version: i16,
    header: &RequestHeader,
    req: &AddPartitionsToTxnRequest,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::AddPartitionsToTxn;
    if version >= 4 {
        if authz.allowed(
            Operation::ClusterAction,
            ResourceType::Cluster,
            CLUSTER_NAME,
        ) {
            return Ok(Plan::Forward);
        }
        let resp =
            AddPartitionsToTxnResponse::default().with_error_code(CLUSTER_AUTHORIZATION_FAILED);
        return respond(API, version, header, &resp);
    }
    let topics = &req.v3_and_below_topics;
    let results: Vec<AddPartitionsToTxnTopicResult> =
        if !txn_write(authz, &req.v3_and_below_transactional_id) {
            topics
                .iter()
                .map(|t| txn_partitions_result(t, TRANSACTIONAL_ID_AUTHORIZATION_FAILED))
                .collect()
        } else {
            let topic_ok = |t: &AddPartitionsToTxnTopic| {
                !is_internal_topic(&t.name)
                    && authz.allowed(Operation::Write, ResourceType::Topic, &t.name)
            };
            let Some(flags) = mask(topics, topic_ok) else {
                return Ok(Plan::Forward);
            };
            topics
                .iter()
                .zip(flags)
                .map(|(t, ok)| {
                    let error = if !ok {
                        TOPIC_AUTHORIZATION_FAILED
                    } else if ids.id_of(&t.name).is_none() {
                        UNKNOWN_TOPIC_OR_PARTITION
                    } else {
                        OPERATION_NOT_ATTEMPTED
                    };
                    txn_partitions_result(t, error)
                })
                .collect()
        };
    let resp = AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    respond(API, version, header, &resp)
}

fn txn_partitions_result(
    topic: &AddPartitionsToTxnTopic,
    error: i16,
) -> AddPartitionsToTxnTopicResult {
    let partitions = topic.partitions.iter().map(|&index| {
        AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(index)
            .with_partition_error_code(error)
    });
    AddPartitionsToTxnTopicResult::default()
        .with_name(topic.name.clone())
        .with_results_by_partition(partitions.collect())
}

/// KafkaApis.handleAddOffsetsToTxnRequest: WRITE on the transactional id (53), then READ on the
/// group (30).
pub(super) fn add_offsets_to_txn(
    version: i16,
    header: &RequestHeader,
    req: &AddOffsetsToTxnRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let error = if !txn_write(authz, &req.transactional_id) {
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    } else if !authz.allowed(Operation::Read, ResourceType::Group, &req.group_id) {
        GROUP_AUTHORIZATION_FAILED
    } else {
        return Ok(Plan::Forward);
    };
    let resp = AddOffsetsToTxnResponse::default().with_error_code(error);
    respond(ApiKey::AddOffsetsToTxn, version, header, &resp)
}

/// KafkaApis.handleEndTxnRequest: WRITE on the transactional id, else 53.
pub(super) fn end_txn(
    version: i16,
    header: &RequestHeader,
    req: &EndTxnRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    if txn_write(authz, &req.transactional_id) {
        return Ok(Plan::Forward);
    }
    let resp = EndTxnResponse::default().with_error_code(TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    respond(ApiKey::EndTxn, version, header, &resp)
}

/// KafkaApis.handleDescribeProducersRequest: READ on each topic, else 29 with Kafka's message on
/// each of its partitions.
pub(super) fn describe_producers(
    version: i16,
    header: &RequestHeader,
    req: &DescribeProducersRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::DescribeProducers;
    let topic_ok = |t: &TopicRequest| authz.allowed(Operation::Read, ResourceType::Topic, &t.name);
    let Some(flags) = mask(&req.topics, topic_ok) else {
        return Ok(Plan::Forward);
    };
    let (allowed, denied) = split(API, version, &req.topics, &flags, producers_denied)?;
    if allowed.is_empty() {
        return denied.respond(header, &DescribeProducersResponse::default(), |r, v| {
            r.topics = v
        });
    }
    let mut forwarded = req.clone();
    forwarded.topics = allowed;
    forward_partial(
        API,
        version,
        header,
        &forwarded,
        Merge::DescribeProducers { version, denied },
    )
}

fn producers_denied(topic: &TopicRequest) -> ProducersTopic {
    let partitions = topic.partition_indexes.iter().map(|&index| {
        PartitionResponse::default()
            .with_partition_index(index)
            .with_error_code(TOPIC_AUTHORIZATION_FAILED)
            .with_error_message(Some(StrBytes::from_static_str(
                message::TOPIC_AUTHORIZATION_FAILED,
            )))
    });
    ProducersTopic::default()
        .with_name(topic.name.clone())
        .with_partitions(partitions.collect())
}

pub(super) fn merge_describe_producers(
    version: i16,
    denied: Denied<ProducersTopic>,
    payload: Bytes,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::DescribeProducers;
    let (header, mut resp): (_, DescribeProducersResponse) = read_response(API, version, payload)?;
    let upstream = std::mem::take(&mut resp.topics);
    denied.merge(&header, &resp, |r, v| r.topics = v, &upstream)
}

/// KafkaApis.handleDescribeTransactionsRequest: DESCRIBE per transactional id, else 53 for it; the
/// topics of every returned state are filtered to those the session may DESCRIBE, so the answer is
/// always merged.
pub(super) fn describe_transactions(
    version: i16,
    header: &RequestHeader,
    req: &DescribeTransactionsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::DescribeTransactions;
    let id_ok = |id: &TransactionalId| {
        authz.allowed(Operation::Describe, ResourceType::TransactionalId, id)
    };
    let Some(flags) = mask(&req.transactional_ids, id_ok) else {
        return Ok(then_merge(Merge::DescribeTransactions {
            version,
            denied: Denied::new(API, version),
        }));
    };
    let (allowed, denied) = split(API, version, &req.transactional_ids, &flags, |id| {
        TransactionState::default()
            .with_transactional_id(id.clone())
            .with_error_code(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    })?;
    if allowed.is_empty() {
        return denied.respond(header, &DescribeTransactionsResponse::default(), |r, v| {
            r.transaction_states = v
        });
    }
    let mut forwarded = req.clone();
    forwarded.transactional_ids = allowed;
    let merge = Merge::DescribeTransactions { version, denied };
    forward_partial(API, version, header, &forwarded, merge)
}

pub(super) fn merge_describe_transactions(
    version: i16,
    denied: Denied<TransactionState>,
    payload: Bytes,
    authz: &dyn Authorize,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::DescribeTransactions;
    let (header, mut resp): (_, DescribeTransactionsResponse) =
        read_response(API, version, payload)?;
    // The gateway's own answers (53) carry no topics: only the upstream's states are filtered.
    let mut upstream = std::mem::take(&mut resp.transaction_states);
    for state in &mut upstream {
        state
            .topics
            .retain(|t| authz.allowed(Operation::Describe, ResourceType::Topic, &t.topic));
    }
    denied.merge(&header, &resp, |r, v| r.transaction_states = v, &upstream)
}

/// KafkaApis.handleListTransactionsRequest: the answer keeps the transactional ids the session may
/// DESCRIBE.
pub(super) fn list_transactions(version: i16) -> Plan {
    then_merge(Merge::ListTransactions { version })
}

pub(super) fn merge_list_transactions(
    version: i16,
    payload: Bytes,
    authz: &dyn Authorize,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::ListTransactions;
    let (header, mut resp): (_, ListTransactionsResponse) = read_response(API, version, payload)?;
    resp.transaction_states.retain(|s| {
        authz.allowed(
            Operation::Describe,
            ResourceType::TransactionalId,
            &s.transactional_id,
        )
    });
    encode_response(API, version, &header, &resp)
}
