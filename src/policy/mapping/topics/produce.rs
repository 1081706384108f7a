//! Produce, as KafkaApis.handleProduceRequest: transactional batches need WRITE on the
//! transactional id (else 53 on every partition, nothing written); each topic needs WRITE (else 29
//! on its partitions, whether or not it exists). An acks=0 request has no response to carry an
//! error, so a denial closes the connection, as Kafka does.

use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{code, message, records, resolve, topic_allowed, Decoded};
use crate::policy::mapping::list_api::{self, list_api, Key, Then, Verdict};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::ProtocolError;
use crate::protocol::list::NestedAnswer;

/// Produce v13 names topics by id.
const FIRST_TOPIC_ID_VERSION: i16 = 13;

list_api!(ProduceTopics: Produce,
    ProduceResponse[responses] => TopicProduceResponse, |v, a| [Some(topic_key(v, &a.name, a.topic_id)), None];
    ProduceRequest[topic_data] => TopicProduceData, |v, t| topic_key(v, &t.name, t.topic_id));

pub(in crate::policy::mapping) fn produce(
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
        // ProduceRequest.getErrorResponse: 53 on every partition, nothing written.
        let codes = vec![Some(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED); req.topic_data.len()];
        return plan_denied(version, header, req, &codes, Then::default().refused());
    }

    // Fast path: no allocation unless some topic is denied.
    let name_of = |t: &TopicProduceData| {
        if version >= FIRST_TOPIC_ID_VERSION {
            resolve(ids, t.topic_id)
        } else {
            Some(t.name.0.to_string())
        }
    };
    let allowed = |t: &TopicProduceData| {
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

    let codes: Vec<Option<i16>> = req
        .topic_data
        .iter()
        .map(|t| {
            if allowed(t) {
                None
            } else if version >= FIRST_TOPIC_ID_VERSION && name_of(t).is_none() {
                Some(code::UNKNOWN_TOPIC_ID)
            } else {
                Some(code::TOPIC_AUTHORIZATION_FAILED)
            }
        })
        .collect();
    plan_denied(version, header, req, &codes, Then::default())
}

/// The plan for a request with some topic denied (`codes`: each topic's error, `None` for
/// forwarded).
fn plan_denied(
    version: i16,
    header: &RequestHeader,
    req: &ProduceRequest,
    codes: &[Option<i16>],
    then: Then<ProduceTopics>,
) -> Result<Plan, ProtocolError> {
    let answers = Answering::new(version)?;
    let mut codes = codes.iter();
    list_api::plan::<ProduceTopics, _>(
        header,
        Decoded::<ProduceTopics> {
            version,
            header,
            request: req,
        },
        |_| match codes.next() {
            Some(Some(code)) => Verdict::Answer(*code),
            _ => Verdict::Forward,
        },
        &|out: &mut bytes::BytesMut, t: &&TopicProduceData, code| answers.write(out, t, code),
        then,
    )
}

/// The answers for a denied topic's partitions (`new PartitionResponse(error)`: base offset -1,
/// log append time -1, log start offset -1), one encoded partition per error code. Only the
/// whole-request 53 (getErrorResponse) carries a message, from v8.
struct Answering {
    version: i16,
    by_code: [(i16, NestedAnswer); 3],
}

impl Answering {
    fn new(version: i16) -> Result<Answering, ProtocolError> {
        let answer = |code| {
            let error_message = (code == code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                && version >= 8)
                .then(|| StrBytes::from_static_str(message::TRANSACTIONAL_ID_AUTHORIZATION_FAILED));
            NestedAnswer::new(
                ApiKey::Produce,
                version,
                &PartitionProduceResponse::default()
                    .with_error_code(code)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(-1)
                    .with_error_message(error_message),
                |p, i| p.index = i,
            )
            .map(|a| (code, a))
        };
        Ok(Answering {
            version,
            by_code: [
                answer(code::TOPIC_AUTHORIZATION_FAILED)?,
                answer(code::UNKNOWN_TOPIC_ID)?,
                answer(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)?,
            ],
        })
    }

    fn write(
        &self,
        out: &mut bytes::BytesMut,
        t: &TopicProduceData,
        code: i16,
    ) -> Result<(), ProtocolError> {
        let (_, partition) = self
            .by_code
            .iter()
            .find(|(c, _)| *c == code)
            .unwrap_or(&self.by_code[0]);
        let mut topic = TopicProduceResponse::default();
        if self.version >= FIRST_TOPIC_ID_VERSION {
            topic.topic_id = t.topic_id;
        } else {
            topic.name = t.name.clone();
        }
        let partitions = t.partition_data.iter().map(|p| p.index);
        partition.write(out, &topic, |t, v| t.partition_responses = v, partitions)
    }
}

fn topic_key(version: i16, name: &TopicName, id: Uuid) -> Key {
    if version >= FIRST_TOPIC_ID_VERSION {
        Key::Id(id)
    } else {
        Key::Name(name.0.clone())
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
