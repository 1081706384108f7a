//! Produce, as KafkaApis.handleProduceRequest: transactional batches need WRITE on the
//! transactional id (else 53 on every partition, nothing written); each topic needs WRITE (else 29
//! on its partitions, whether or not it exists). An acks=0 request has no response to carry an
//! error, so a denial closes the connection, as Kafka does.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use super::{
    code, encode_request_with_header, local_count, message, records, resolve, respond, slots_for,
    topic_allowed, Key, Keyed, Merge, Splice,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::ProtocolError;

/// Produce v13 names topics by id.
const FIRST_TOPIC_ID_VERSION: i16 = 13;

impl Keyed for TopicProduceResponse {
    fn keys(&self, version: i16) -> [Option<Key>; 2] {
        if version >= FIRST_TOPIC_ID_VERSION {
            [Some(Key::Id(self.topic_id)), None]
        } else {
            [Some(Key::Name(self.name.0.clone())), None]
        }
    }
}

pub(super) fn produce(
    version: i16,
    header: &RequestHeader,
    req: &ProduceRequest,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    if transactional_denied(version, req, authz)? {
        if req.acks == 0 {
            return Ok(Plan::Close(
                "acks=0 Produce denied: TransactionalId WRITE (53)".into(),
            ));
        }
        let resp = error_response(version, req, code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        return respond(ApiKey::Produce, version, header, &resp);
    }

    // Fast path: no allocation unless some topic is denied.
    let name_of = |t: &kafka_protocol::messages::produce_request::TopicProduceData| {
        if version >= FIRST_TOPIC_ID_VERSION {
            resolve(ids, t.topic_id)
        } else {
            Some(t.name.0.to_string())
        }
    };
    let allowed = |t: &kafka_protocol::messages::produce_request::TopicProduceData| {
        if version >= FIRST_TOPIC_ID_VERSION {
            name_of(t).is_some_and(|n| topic_allowed(authz, Operation::Write, &n))
        } else {
            topic_allowed(authz, Operation::Write, &t.name)
        }
    };
    if req.topic_data.iter().all(allowed) {
        return Ok(Plan::Forward);
    }
    if req.acks == 0 {
        return Ok(Plan::Close(
            "acks=0 Produce denied: Topic WRITE (29)".into(),
        ));
    }

    let slots = slots_for(
        &req.topic_data,
        |t| topic_key(version, t),
        |t| {
            if allowed(t) {
                return None;
            }
            let code = if version >= FIRST_TOPIC_ID_VERSION && name_of(t).is_none() {
                code::UNKNOWN_TOPIC_ID
            } else {
                code::TOPIC_AUTHORIZATION_FAILED
            };
            Some(topic_error(version, t, code))
        },
    );
    if local_count(&slots) == req.topic_data.len() {
        let resp = ProduceResponse::default().with_responses(super::into_locals(slots));
        return respond(ApiKey::Produce, version, header, &resp);
    }
    let mut forwarded = req.clone();
    forwarded.topic_data.retain(allowed);
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(ApiKey::Produce, version, header, &forwarded)?,
        merge: super::super::Merge::Topics(Merge::Produce(Splice { version, slots })),
    })
}

fn topic_key(version: i16, t: &kafka_protocol::messages::produce_request::TopicProduceData) -> Key {
    if version >= FIRST_TOPIC_ID_VERSION {
        Key::Id(t.topic_id)
    } else {
        Key::Name(t.name.0.clone())
    }
}

/// RequestUtils.hasTransactionalRecords, over every batch (Kafka looks at each partition's first
/// batch only; v3+ allows one batch per partition, so this differs only on requests Kafka refuses
/// anyway). A transactional id needs WRITE when the batches are transactional, as in Kafka, and
/// also whenever the request names one (stricter: the Java producer only names one when all its
/// batches are transactional).
fn transactional_denied(
    version: i16,
    req: &ProduceRequest,
    authz: &dyn Authorize,
) -> Result<bool, ProtocolError> {
    if let Some(tid) = &req.transactional_id {
        return Ok(!authz.allowed(Operation::Write, ResourceType::TransactionalId, tid));
    }
    for topic in &req.topic_data {
        for partition in &topic.partition_data {
            let Some(bytes) = &partition.records else {
                continue;
            };
            let transactional =
                records::any_transactional(bytes).map_err(|e| ProtocolError::Decode {
                    api: ApiKey::Produce,
                    version,
                    what: "produce records",
                    message: format!(
                        "topic {:?} partition {}: {e}",
                        &*topic.name, partition.index
                    ),
                })?;
            if transactional {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// ProduceRequest.getErrorResponse: `code` on every partition (53 carries its message, v8+).
fn error_response(version: i16, req: &ProduceRequest, code: i16) -> ProduceResponse {
    let responses = req
        .topic_data
        .iter()
        .map(|t| topic_error(version, t, code))
        .collect();
    ProduceResponse::default().with_responses(responses)
}

fn topic_error(
    version: i16,
    t: &kafka_protocol::messages::produce_request::TopicProduceData,
    code: i16,
) -> TopicProduceResponse {
    // `new PartitionResponse(error)`: base offset -1, log append time -1, log start offset -1. Only
    // getErrorResponse (the whole-request 53) sets a message.
    let error_message = (code == code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED && version >= 8)
        .then(|| StrBytes::from_static_str(message::TRANSACTIONAL_ID_AUTHORIZATION_FAILED));
    let partitions = t
        .partition_data
        .iter()
        .map(|p| {
            PartitionProduceResponse::default()
                .with_index(p.index)
                .with_error_code(code)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1)
                .with_error_message(error_message.clone())
        })
        .collect();
    let mut out = TopicProduceResponse::default().with_partition_responses(partitions);
    if version >= FIRST_TOPIC_ID_VERSION {
        out.topic_id = t.topic_id;
    } else {
        out.name = t.name.clone();
    }
    out
}
