//! The gateway's handle on its audit trail: the writer, the recording level and this instance's name.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::kafka_sink::KafkaSink;
use super::{AuditLevel, AuditUnavailable, Auditor, ConnInfo, Event, Written};

pub struct AuditCtx {
    pub auditor: Auditor,
    pub level: AuditLevel,
    pub instance: String,
    next_conn: AtomicU64,
    /// The copy of the trail on the upstream cluster, once the cluster is known.
    kafka: OnceLock<KafkaSink>,
}

impl AuditCtx {
    pub fn new(auditor: Auditor, level: AuditLevel, instance: String) -> Arc<AuditCtx> {
        Arc::new(AuditCtx {
            auditor,
            level,
            instance,
            next_conn: AtomicU64::new(1),
            kafka: OnceLock::new(),
        })
    }

    /// Adds the Kafka topic sink: from then on its health and room decide admission too (it gets
    /// the lines from the file writer).
    pub fn attach_kafka(&self, sink: KafkaSink) {
        let _ = self.kafka.set(sink);
    }

    pub fn kafka(&self) -> Option<&KafkaSink> {
        self.kafka.get()
    }

    /// No trail: every record is accepted and dropped (the gateway warns about this at start).
    pub fn disabled() -> Arc<AuditCtx> {
        AuditCtx::new(Auditor::disabled(), AuditLevel::None, String::new())
    }

    /// Identifies one client connection in every record about it.
    pub fn conn(
        &self,
        client: std::net::SocketAddr,
        listener: &str,
        virtual_cluster: Option<&str>,
    ) -> ConnInfo {
        ConnInfo {
            id: self.next_conn.fetch_add(1, Ordering::Relaxed),
            client: client.to_string(),
            listener: listener.to_string(),
            virtual_cluster: virtual_cluster.map(str::to_string),
        }
    }

    /// Whether every sink takes records now. A record that is merely counted (a repeated denial
    /// being summarized) is written in full instead when this is false, so that fail-closed
    /// still refuses what the trail cannot take.
    pub fn healthy(&self) -> bool {
        self.auditor.healthy() && self.kafka.get().is_none_or(KafkaSink::healthy)
    }

    /// Whether a fail-closed sink is refusing records now (so the gateway refuses what they
    /// would describe): the file trail failing or shut down, or the Kafka copy failing or full.
    pub fn refusing(&self) -> bool {
        self.auditor.refuses() || self.kafka_admits().is_err()
    }

    /// Records an event. An error means the trail cannot take it (fail-closed): the caller must not
    /// carry out what the record describes. The refusal itself is logged here and recorded by the
    /// writer once the sink recovers.
    pub fn record(&self, event: Event) -> Result<(), AuditUnavailable> {
        let kafka = self.kafka_admits();
        logged(self.auditor.record(event).and(kafka))
    }

    /// Records an event that must be in the trail before what it describes happens (a denial, an
    /// admin operation): the caller waits on the returned [`Written`] (nothing to wait for unless
    /// the file trail is fail-closed). The Kafka copy is not waited for: it is produced from the
    /// file's lines once they are written, and declares anything it could not copy.
    pub fn record_written(&self, event: Event) -> Result<Written, AuditUnavailable> {
        let kafka = self.kafka_admits();
        logged(
            self.auditor
                .record_written(event)
                .and_then(|w| kafka.map(|()| w)),
        )
    }

    /// The Kafka copy's admission (it gets the line from the file writer, not from here).
    fn kafka_admits(&self) -> Result<(), AuditUnavailable> {
        self.kafka.get().map_or(Ok(()), KafkaSink::admit)
    }
}

/// Logs a refusal; the writer records it once the sink recovers.
fn logged<T>(r: Result<T, AuditUnavailable>) -> Result<T, AuditUnavailable> {
    r.inspect_err(|e| {
        tracing::error!(error = %e, "audit trail unavailable: refusing what it would have recorded");
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Event, Outcome, ReloadKind};

    /// Found end to end: a reload event's `hash` member collided with the record's chain hash, and
    /// verify could not read the trail. No event may use the record envelope's member names.
    #[test]
    fn no_event_member_collides_with_the_record_envelope() {
        let events = [
            Event::Reload {
                what: ReloadKind::Policy,
                source: "x".into(),
                outcome: Outcome::Ok,
                hash: Some("h".into()),
                error: Some("e".into()),
                virtual_cluster: Some("eu".into()),
            },
            Event::GatewayStart {
                version: "v".into(),
                instance: "i".into(),
                config_hash: Some("c".into()),
                listeners: vec![],
            },
        ];
        for e in events {
            let v = serde_json::to_value(&e).expect("serialize");
            for reserved in ["schema", "seq", "ts", "prev", "hash"] {
                assert!(v.get(reserved).is_none(), "{reserved} in {v}");
            }
        }
    }
}
