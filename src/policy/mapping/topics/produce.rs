//! Produce, as KafkaApis.handleProduceRequest: transactional batches need WRITE on the
//! transactional id (else 53 on every partition, nothing written); each topic needs WRITE (else 29
//! on its partitions, whether or not it exists). An acks=0 request has no response to carry an
//! error, so a denial closes the connection, as Kafka does.
//!
//! The request is read in place ([`ProduceRequestWire`]): an allowed Produce is authorized from
//! its bytes without a struct per topic or partition, and the gateway's answers are written as
//! bytes.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::{code, message, records, topic_allowed};
use crate::policy::mapping::list_api::{
    self, list_api, malformed, Key, Then, TopicAnswers, Verdict,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::ProtocolError;
use crate::protocol::fetch::TopicRef;
use crate::protocol::list::{NestedAnswer, TopicAnswer};
use crate::protocol::produce::{ProduceRequestWire, ProduceTopic, FIRST_TOPIC_ID};

list_api!(ProduceTopics: Produce,
    ProduceResponse[responses] => TopicProduceResponse, |v, a| [Some(if v >= FIRST_TOPIC_ID {
        Key::Id(a.topic_id)
    } else {
        Key::Name(a.name.0.clone())
    }), None]);

pub(in crate::policy::mapping) fn produce(
    header: &RequestHeader,
    wire: &ProduceRequestWire,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    let version = wire.version();
    // Made when the first topic is answered: an allowed Produce allocates nothing.
    let answers = TopicAnswers::new(
        &[
            code::TOPIC_AUTHORIZATION_FAILED,
            code::UNKNOWN_TOPIC_ID,
            code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        ],
        |code| denied_topic(version, code),
    );
    if transactional_denied(wire, authz)? {
        if wire.acks == 0 {
            return Ok(Plan::Close(
                "acks=0 Produce denied: TransactionalId WRITE (53)".into(),
            ));
        }
        // ProduceRequest.getErrorResponse: 53 on every partition, nothing written.
        let whole =
            |_: &ProduceTopic<'_>| Verdict::Answer(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        let then = Then::<ProduceTopics>::default().refused();
        return list_api::plan(header, wire, whole, &answers, then);
    }

    // 100 for an id the gateway cannot name, 29 without WRITE.
    let check = |t: &ProduceTopic<'_>| {
        let writable = |name: &str| topic_allowed(authz, Operation::Write, name);
        let allowed = match t.topic {
            // The name is lent by the id map, not copied per topic.
            TopicRef::Id(id) => match ids.check_name(id, &mut |name| writable(name)) {
                None => return Verdict::Answer(code::UNKNOWN_TOPIC_ID),
                Some(allowed) => allowed,
            },
            TopicRef::Name(name) => writable(name),
        };
        if allowed {
            Verdict::Forward
        } else {
            Verdict::Answer(code::TOPIC_AUTHORIZATION_FAILED)
        }
    };
    match list_api::plan(
        header,
        wire,
        check,
        &answers,
        Then::<ProduceTopics>::default(),
    )? {
        Plan::Forward => Ok(Plan::Forward),
        _ if wire.acks == 0 => Ok(Plan::Close(
            "acks=0 Produce denied: Topic WRITE (29)".into(),
        )),
        plan => Ok(plan),
    }
}

/// The answer for a denied topic's partitions (`new PartitionResponse(error)`: base offset -1,
/// log append time -1, log start offset -1). Only the whole-request 53 (getErrorResponse)
/// carries a message, from v8.
fn denied_topic(version: i16, code: i16) -> Result<TopicAnswer, ProtocolError> {
    let error_message = (code == code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED && version >= 8)
        .then(|| StrBytes::from_static_str(message::TRANSACTIONAL_ID_AUTHORIZATION_FAILED));
    let partition = NestedAnswer::new(
        ApiKey::Produce,
        version,
        &PartitionProduceResponse::default()
            .with_error_code(code)
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
            .with_error_message(error_message),
        |p, i| p.index = i,
    )?;
    Ok(TopicAnswer::new(ApiKey::Produce, version, partition))
}

/// RequestUtils.hasTransactionalRecords, over every batch (Kafka looks at each partition's first
/// batch only; v3+ allows one batch per partition, so this differs only on requests Kafka refuses
/// anyway). A transactional id needs WRITE when the batches are transactional, as in Kafka, and
/// also whenever the request names one (stricter: the Java producer only names one when all its
/// batches are transactional).
fn transactional_denied(
    wire: &ProduceRequestWire,
    authz: &dyn Authorize,
) -> Result<bool, ProtocolError> {
    if let Some(tid) = wire.transactional_id() {
        return Ok(!authz.allowed(Operation::Write, ResourceType::TransactionalId, tid));
    }
    let version = wire.version();
    for topic in wire.topics() {
        let topic = topic.map_err(malformed(ApiKey::Produce, version))?;
        for partition in topic.partitions() {
            let Some(bytes) = partition.records else {
                continue;
            };
            let transactional =
                records::any_transactional(bytes).map_err(|e| ProtocolError::Decode {
                    api: ApiKey::Produce,
                    version,
                    what: "produce records",
                    message: format!("topic {} partition {}: {e}", topic.topic, partition.index),
                })?;
            if transactional {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
