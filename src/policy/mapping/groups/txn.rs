//! Producer and transaction APIs: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! and the transaction admin APIs DescribeProducers, DescribeTransactions, ListTransactions.

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
use super::{cluster_allowed, group_allowed, is_internal_topic, message, topic_allowed};
use crate::policy::mapping::list_api::{
    self, answer_with, by_name, list_api, plan_each, rewrite, single, Decoded, Key, Splicing, Then,
    Verdict,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::ProtocolError;

list_api!(TxnTopics: AddPartitionsToTxn,
    AddPartitionsToTxnResponse[results_by_topic_v3_and_below] => AddPartitionsToTxnTopicResult, |_, a| by_name(&a.name);
    AddPartitionsToTxnRequest[v3_and_below_topics] => AddPartitionsToTxnTopic, |_, t| Key::Name(t.name.0.clone()));
list_api!(ProducerTopics: DescribeProducers,
    DescribeProducersResponse[topics] => ProducersTopic, |_, a| by_name(&a.name);
    DescribeProducersRequest[topics] => TopicRequest, |_, t| Key::Name(t.name.0.clone()));
list_api!(TxnStates: DescribeTransactions,
    DescribeTransactionsResponse[transaction_states] => TransactionState, |_, a| by_name(&a.transactional_id);
    DescribeTransactionsRequest[transactional_ids] => TransactionalId, |_, id| Key::Name(id.0.clone()));

fn txn_write(authz: &dyn Authorize, id: &str) -> bool {
    authz.allowed(Operation::Write, ResourceType::TransactionalId, id)
}

/// KafkaApis.handleInitProducerIdRequest: a transactional producer needs WRITE on its
/// transactional id (53); an idempotent one IDEMPOTENT_WRITE on the cluster or WRITE on some topic
/// (KIP-679, `authorizeByResourceType`), else 31. The error answer has producer id and epoch -1.
pub(in crate::policy::mapping) fn init_producer_id(
    version: i16,
    header: &RequestHeader,
    req: &InitProducerIdRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let error = match &req.transactional_id {
        Some(id) if txn_write(authz, id) => 0,
        Some(_) => TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        None if cluster_allowed(authz, Operation::IdempotentWrite)
            || authz.allowed_any(Operation::Write, ResourceType::Topic) =>
        {
            0
        }
        None => CLUSTER_AUTHORIZATION_FAILED,
    };
    single(ApiKey::InitProducerId, version, header, error == 0, || {
        InitProducerIdResponse::default()
            .with_error_code(error)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    })
}

/// KafkaApis.handleAddPartitionsToTxnRequest. Client versions (v0-3): WRITE on the transactional
/// id, else 53 on every partition; WRITE on each topic (never on an internal topic), else 29, and
/// if any partition fails nothing is added: an allowed topic that does not exist gets 3, the
/// others 55 OPERATION_NOT_ATTEMPTED (the session asked the cluster about names the gateway had
/// not seen before this plan). v4+ batches come from brokers verifying transactions and need
/// CLUSTER_ACTION, else a top-level 31.
pub(in crate::policy::mapping) fn add_partitions_to_txn(
    version: i16,
    header: &RequestHeader,
    req: &AddPartitionsToTxnRequest,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    if version >= 4 {
        let allowed = cluster_allowed(authz, Operation::ClusterAction);
        return single(ApiKey::AddPartitionsToTxn, version, header, allowed, || {
            AddPartitionsToTxnResponse::default().with_error_code(CLUSTER_AUTHORIZATION_FAILED)
        });
    }
    let topic_ok = |t: &AddPartitionsToTxnTopic| {
        !is_internal_topic(&t.name) && topic_allowed(authz, Operation::Write, &t.name)
    };
    let topics = &req.v3_and_below_topics;
    let txn_ok = txn_write(authz, &req.v3_and_below_transactional_id);
    // Nothing is added when anything fails: the whole request is answered, per topic. Each topic
    // is checked once (those before the first denied one were checked finding it).
    let first_denied = if txn_ok {
        topics.iter().position(|t| !topic_ok(t))
    } else {
        Some(0)
    };
    let mut place = 0;
    let check = |t: &&AddPartitionsToTxnTopic| {
        let i = place;
        place += 1;
        match first_denied {
            None => Verdict::Forward,
            Some(_) if !txn_ok => Verdict::Answer(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            Some(first) if i == first || (i > first && !topic_ok(t)) => {
                Verdict::Answer(TOPIC_AUTHORIZATION_FAILED)
            }
            Some(_) if ids.id_of(&t.name).is_none() => Verdict::Answer(UNKNOWN_TOPIC_OR_PARTITION),
            Some(_) => Verdict::Answer(OPERATION_NOT_ATTEMPTED),
        }
    };
    let answer = answer_with(
        ApiKey::AddPartitionsToTxn,
        version,
        |t: &&AddPartitionsToTxnTopic, code| {
            let partitions = t.partitions.iter().map(|&index| {
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(index)
                    .with_partition_error_code(code)
            });
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(partitions.collect())
        },
    );
    let then = match first_denied {
        Some(_) => Then::<TxnTopics>::default().refused(),
        None => Then::default(),
    };
    let source = Decoded::<TxnTopics>::new(version, header, req);
    list_api::plan(header, source, check, &answer, then)
}

/// KafkaApis.handleAddOffsetsToTxnRequest: WRITE on the transactional id (53), then READ on the
/// group (30).
pub(in crate::policy::mapping) fn add_offsets_to_txn(
    version: i16,
    header: &RequestHeader,
    req: &AddOffsetsToTxnRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let error = if !txn_write(authz, &req.transactional_id) {
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    } else if !group_allowed(authz, Operation::Read, &req.group_id) {
        GROUP_AUTHORIZATION_FAILED
    } else {
        0
    };
    single(ApiKey::AddOffsetsToTxn, version, header, error == 0, || {
        AddOffsetsToTxnResponse::default().with_error_code(error)
    })
}

/// KafkaApis.handleEndTxnRequest: WRITE on the transactional id, else 53.
pub(in crate::policy::mapping) fn end_txn(
    version: i16,
    header: &RequestHeader,
    req: &EndTxnRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let allowed = txn_write(authz, &req.transactional_id);
    single(ApiKey::EndTxn, version, header, allowed, || {
        EndTxnResponse::default().with_error_code(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    })
}

/// KafkaApis.handleDescribeProducersRequest: READ on each topic, else 29 with Kafka's message on
/// each of its partitions.
pub(in crate::policy::mapping) fn describe_producers(
    version: i16,
    header: &RequestHeader,
    req: &DescribeProducersRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let answer = answer_with(
        ApiKey::DescribeProducers,
        version,
        |t: &&TopicRequest, code| {
            let partitions = t.partition_indexes.iter().map(|&index| {
                PartitionResponse::default()
                    .with_partition_index(index)
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_static_str(
                        message::TOPIC_AUTHORIZATION_FAILED,
                    )))
            });
            ProducersTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions.collect())
        },
    );
    let allowed = |t: &TopicRequest| topic_allowed(authz, Operation::Read, &t.name);
    plan_each(
        Decoded::<ProducerTopics>::new(version, header, req),
        None,
        (allowed, TOPIC_AUTHORIZATION_FAILED),
        &answer,
        Then::default(),
    )
}

/// KafkaApis.handleDescribeTransactionsRequest: DESCRIBE per transactional id, else 53 for it; the
/// topics of every returned state are filtered to those the session may DESCRIBE, so the answer is
/// always merged.
pub(in crate::policy::mapping) fn describe_transactions(
    version: i16,
    header: &RequestHeader,
    req: &DescribeTransactionsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let answer = answer_with(
        ApiKey::DescribeTransactions,
        version,
        |id: &&TransactionalId, code| {
            TransactionState::default()
                .with_transactional_id((*id).clone())
                .with_error_code(code)
        },
    );
    // The gateway's own answers (53) carry no topics: only the upstream's states are filtered.
    let then = Then::<TxnStates>::default().adjust(|r, authz, _| {
        for state in &mut r.transaction_states {
            state
                .topics
                .retain(|t| topic_allowed(authz, Operation::Describe, &t.topic));
        }
        Ok(Splicing::Answers)
    });
    let allowed = |id: &TransactionalId| {
        authz.allowed(Operation::Describe, ResourceType::TransactionalId, id)
    };
    plan_each(
        Decoded::<TxnStates>::new(version, header, req),
        None,
        (allowed, TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        &answer,
        then,
    )
}

/// KafkaApis.handleListTransactionsRequest: the answer keeps the transactional ids the session may
/// DESCRIBE.
pub(in crate::policy::mapping) fn list_transactions(version: i16) -> Plan {
    rewrite(
        ApiKey::ListTransactions,
        version,
        |r: &mut ListTransactionsResponse, authz, _| {
            r.transaction_states.retain(|s| {
                authz.allowed(
                    Operation::Describe,
                    ResourceType::TransactionalId,
                    &s.transactional_id,
                )
            })
        },
        None,
    )
}
