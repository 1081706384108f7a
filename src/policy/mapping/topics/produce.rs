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
use crate::policy::mapping::list_api::{self, list_api, Answer, Key, Then, Verdict};
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
    let malformed = |e: crate::protocol::wire::WireError| ProtocolError::Decode {
        api: ApiKey::Produce,
        version,
        what: "request body",
        message: e.to_string(),
    };
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
        return list_api::plan(header, wire, whole, &Answering::new(version)?, then);
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
    // The common case, every topic allowed, is decided in one pass that allocates nothing.
    let mut all = true;
    for t in wire.topics() {
        all &= check(&t.map_err(malformed)?) == Verdict::Forward;
    }
    if all {
        return Ok(Plan::Forward);
    }
    if wire.acks == 0 {
        return Ok(Plan::Close(
            "acks=0 Produce denied: Topic WRITE (29)".into(),
        ));
    }
    let then = Then::<ProduceTopics>::default();
    list_api::plan(header, wire, check, &Answering::new(version)?, then)
}

/// The answers for a denied topic's partitions (`new PartitionResponse(error)`: base offset -1,
/// log append time -1, log start offset -1), one encoded partition per error code. Only the
/// whole-request 53 (getErrorResponse) carries a message, from v8.
struct Answering {
    by_code: [(i16, TopicAnswer); 3],
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
            .map(|a| (code, TopicAnswer::new(ApiKey::Produce, version, a)))
        };
        Ok(Answering {
            by_code: [
                answer(code::TOPIC_AUTHORIZATION_FAILED)?,
                answer(code::UNKNOWN_TOPIC_ID)?,
                answer(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)?,
            ],
        })
    }

    fn for_code(&self, code: i16) -> &TopicAnswer {
        let (_, answer) = self
            .by_code
            .iter()
            .find(|(c, _)| *c == code)
            .unwrap_or(&self.by_code[0]);
        answer
    }
}

impl<'a> Answer<ProduceTopic<'a>> for Answering {
    fn write(
        &self,
        out: &mut bytes::BytesMut,
        t: &ProduceTopic<'a>,
        code: i16,
    ) -> Result<(), ProtocolError> {
        self.for_code(code).write(out, t)
    }

    fn size(&self, t: &ProduceTopic<'a>, code: i16) -> usize {
        self.for_code(code).size(t)
    }
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
        let topic = topic.map_err(|e| ProtocolError::Decode {
            api: ApiKey::Produce,
            version,
            what: "request body",
            message: e.to_string(),
        })?;
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
