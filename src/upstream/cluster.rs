//! The gateway's own view of the upstream cluster: broker addresses by node id and negotiated versions.
//!
//! It is learned from the gateway's own ApiVersions + Metadata queries (at start and every
//! `metadata_refresh`) and from every broker-naming response a client receives, so a broker that joins
//! later becomes known as soon as any client or the refresh sees it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::sync::{read, write};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;

use super::conn::{Connector, UpstreamConn, UpstreamError};
use crate::protocol::api::VersionTable;
use crate::protocol::codec::{decode_body, split_response};
use crate::protocol::rewrite::UpstreamBroker;

/// Which upstream broker a client connection is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The bootstrap port: any broker will do.
    Bootstrap,
    /// A per-broker port: exactly this node.
    Node(i32),
}

pub struct Cluster {
    bootstrap: Vec<(String, u16)>,
    connector: Connector,
    request_timeout: Duration,
    max_response_bytes: usize,
    brokers: RwLock<HashMap<i32, (String, u16)>>,
    versions: RwLock<Option<Arc<VersionTable>>>,
    nodes: watch::Sender<BTreeSet<i32>>,
    /// Topic ids seen in any upstream Metadata response (the gateway's own and clients').
    pub topic_ids: Arc<super::topic_ids::TopicIdMap>,
    /// Who built each incremental fetch session on the brokers.
    pub fetch_sessions: super::fetch_sessions::FetchSessions,
    /// Who built each share session on the brokers, and its partitions the gateway answered.
    pub share_sessions: super::fetch_sessions::ShareSessions,
    next_bootstrap: AtomicUsize,
    /// One refresh at a time; callers that arrive during one wait for it instead of starting another.
    refresh_lock: tokio::sync::Mutex<()>,
    /// Completed refresh attempts and how the last one ended. A caller that waited for the lock
    /// while another caller's attempt ran takes that outcome: with the cluster unreachable, a crowd
    /// of reconnecting clients would otherwise queue one full (timed-out) refresh each.
    refreshed: std::sync::Mutex<(u64, Result<(), String>)>,
    /// When a request naming an unknown topic id last made the gateway refresh.
    unknown_id_refresh: std::sync::Mutex<Option<tokio::time::Instant>>,
}

/// The shortest interval between two refreshes caused by topic ids the gateway did not know.
pub const UNKNOWN_ID_REFRESH: Duration = Duration::from_secs(1);

impl Cluster {
    pub fn new(
        bootstrap: Vec<(String, u16)>,
        connector: Connector,
        request_timeout: Duration,
        max_response_bytes: usize,
    ) -> Arc<Self> {
        Arc::new(Cluster {
            bootstrap,
            connector,
            request_timeout,
            max_response_bytes,
            brokers: RwLock::new(HashMap::new()),
            versions: RwLock::new(None),
            nodes: watch::channel(BTreeSet::new()).0,
            topic_ids: Arc::default(),
            // Kafka's brokers keep 1,000 session slots each by default; idle sessions they evict
            // after 2 minutes under pressure. Ten minutes idle costs a client one full fetch.
            fetch_sessions: super::fetch_sessions::FetchSessions::new(
                100_000,
                Duration::from_secs(600),
            ),
            // Kafka's brokers keep group.share.max.share.sessions (2,000 by default) each. At
            // most 10,000 here, each carrying at most SHARE_DENIED_MAX denied partitions: about
            // 65 MiB in the worst case, the least recently used going first.
            share_sessions: super::fetch_sessions::ShareSessions::new(
                10_000,
                Duration::from_secs(600),
            ),
            next_bootstrap: AtomicUsize::new(0),
            refresh_lock: tokio::sync::Mutex::new(()),
            refreshed: std::sync::Mutex::new((0, Ok(()))),
            unknown_id_refresh: std::sync::Mutex::new(None),
        })
    }

    /// Node ids known so far; changes whenever a broker is first seen.
    pub fn subscribe_nodes(&self) -> watch::Receiver<BTreeSet<i32>> {
        self.nodes.subscribe()
    }

    pub fn node_addr(&self, node_id: i32) -> Option<(String, u16)> {
        read(&self.brokers).get(&node_id).cloned()
    }

    /// Records brokers named by an upstream response. A changed address replaces the old one: new
    /// connections go to where the broker is now.
    pub fn learn(&self, seen: &[UpstreamBroker]) {
        let mut added = false;
        {
            let mut map = write(&self.brokers);
            for b in seen {
                let Ok(port) = u16::try_from(b.port) else {
                    tracing::warn!(
                        node = b.node_id,
                        port = b.port,
                        "upstream named a broker with an invalid port"
                    );
                    continue;
                };
                if b.host.is_empty() || b.node_id < 0 {
                    continue;
                }
                let addr = (b.host.clone(), port);
                match map.insert(b.node_id, addr.clone()) {
                    None => {
                        tracing::info!(node = b.node_id, addr = %format!("{}:{}", addr.0, addr.1), "learned upstream broker");
                        added = true;
                    }
                    Some(old) if old != addr => {
                        tracing::info!(node = b.node_id, old = %format!("{}:{}", old.0, old.1), new = %format!("{}:{}", addr.0, addr.1), "upstream broker moved");
                    }
                    Some(_) => {}
                }
            }
        }
        if added {
            let ids: BTreeSet<i32> = read(&self.brokers).keys().copied().collect();
            self.nodes.send_replace(ids);
        }
    }

    /// Negotiated versions; fetched from the upstream if the gateway has none yet.
    pub async fn versions(&self) -> Result<Arc<VersionTable>, UpstreamError> {
        if let Some(t) = read(&self.versions).clone() {
            return Ok(t);
        }
        self.refresh().await?;
        read(&self.versions)
            .clone()
            .ok_or_else(|| UpstreamError::NoBroker {
                tried: 0,
                last: "no version information".into(),
            })
    }

    pub fn cached_versions(&self) -> Option<Arc<VersionTable>> {
        read(&self.versions).clone()
    }

    /// Makes sure the topic-id map has asked the cluster about `ids` before a request naming them is
    /// authorized: an id the gateway has not seen may belong to a topic created since its last
    /// refresh, and Kafka answers such a request as for the topic (29 without the permission), not
    /// with UNKNOWN_TOPIC_ID. At most one such refresh runs per [`UNKNOWN_ID_REFRESH`] across all
    /// sessions, so a client sending made-up ids cannot turn each request into a cluster-wide
    /// Metadata query; ids still unknown afterwards are unknown to the cluster too (or too new).
    /// Names count too: a request may be answered by whether a topic exists (DeleteTopics).
    pub async fn resolve_topics(&self, ids: &[uuid::Uuid], names: &[String]) {
        use crate::policy::mapping::TopicIds as _;
        if ids.iter().all(|id| self.topic_ids.name_of(*id).is_some())
            && names.iter().all(|n| self.topic_ids.id_of(n).is_some())
        {
            return;
        }
        {
            let mut last = self
                .unknown_id_refresh
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = tokio::time::Instant::now();
            if last.is_some_and(|t| now.duration_since(t) < UNKNOWN_ID_REFRESH) {
                return;
            }
            *last = Some(now);
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "refresh for an unknown topic id failed");
        }
    }

    /// Lists the cluster's topics again for a request that asks for every topic
    /// (DescribeTopicPartitions), whose answer must not miss a topic created a moment ago. Not
    /// rate-limited: it costs the brokers what the client's own request for every topic costs,
    /// and concurrent callers share one refresh ([`Cluster::refresh`]).
    pub async fn refresh_listing(&self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "refresh for a topic listing failed");
        }
    }

    /// Logs in again on an exclusive connection whose SASL session is due for renewal.
    pub async fn reauthenticate(&self, conn: &mut UpstreamConn) -> Result<(), UpstreamError> {
        self.connector.reauthenticate(conn).await
    }

    /// The gateway's own identity on the brokers, if it has one.
    pub fn upstream_sasl(&self) -> Option<&crate::config::UpstreamSasl> {
        self.connector.sasl()
    }

    /// Opens a connection for a client session.
    pub async fn connect(&self, target: Target) -> Result<UpstreamConn, UpstreamError> {
        match target {
            Target::Node(node) => {
                let addr = match self.node_addr(node) {
                    Some(a) => a,
                    None => {
                        // A client may know a node from another gateway instance before this one does.
                        self.refresh().await?;
                        self.node_addr(node)
                            .ok_or(UpstreamError::UnknownNode(node))?
                    }
                };
                match self.connector.connect(&addr.0, addr.1).await {
                    Ok(conn) => Ok(conn),
                    Err(first) => {
                        // The broker may have come back at another address (a replaced host, a
                        // new pod IP): ask the cluster once rather than failing every client until
                        // the next periodic refresh. Clients keep the gateway's address throughout.
                        if self.refresh().await.is_err() {
                            return Err(first);
                        }
                        match self.node_addr(node) {
                            // `learn` has logged the move.
                            Some(moved) if moved != addr => {
                                self.connector.connect(&moved.0, moved.1).await
                            }
                            _ => Err(first),
                        }
                    }
                }
            }
            Target::Bootstrap => self.connect_any().await,
        }
    }

    /// Tries the bootstrap servers, then the known brokers, starting at a rotating offset.
    async fn connect_any(&self) -> Result<UpstreamConn, UpstreamError> {
        let mut candidates = self.bootstrap.clone();
        for addr in read(&self.brokers).values() {
            if !candidates.contains(addr) {
                candidates.push(addr.clone());
            }
        }
        let start = self.next_bootstrap.fetch_add(1, Ordering::Relaxed);
        let mut last = String::from("no candidates");
        for i in 0..candidates.len() {
            let (host, port) = &candidates[(start + i) % candidates.len()];
            match self.connector.connect(host, *port).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(error = %e, "upstream candidate unreachable");
                    last = e.to_string();
                }
            }
        }
        Err(UpstreamError::NoBroker {
            tried: candidates.len(),
            last,
        })
    }

    /// Queries the cluster for its versions and brokers. Concurrent callers share one query.
    pub async fn refresh(&self) -> Result<(), UpstreamError> {
        let attempts_before = self.refresh_outcome().0;
        let _guard = self.refresh_lock.lock().await;
        let (attempts, outcome) = self.refresh_outcome();
        if attempts != attempts_before {
            return outcome.map_err(UpstreamError::SharedRefresh);
        }
        let result = self.query_cluster().await;
        let mut last = self
            .refreshed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = (
            last.0 + 1,
            result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        );
        result
    }

    fn refresh_outcome(&self) -> (u64, Result<(), String>) {
        self.refreshed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// One refresh: versions, brokers and topic ids from any reachable broker.
    async fn query_cluster(&self) -> Result<(), UpstreamError> {
        let mut conn = self.connect_any().await?;
        let versions = self.query_versions(&mut conn).await?;
        let table = Arc::new(VersionTable::from_upstream(&versions));
        let (_, meta_max) =
            table
                .range(ApiKey::Metadata as i16)
                .ok_or_else(|| UpstreamError::Protocol {
                    addr: conn.addr.clone(),
                    phase: "ApiVersions",
                    message: "upstream supports no Metadata version the gateway can use".into(),
                })?;
        // Every topic (null list, v1+): the answer also teaches the gateway the topic ids that
        // requests naming topics by id are authorized through.
        let version = meta_max.clamp(1, 12);
        let mut req = MetadataRequest::default();
        req.topics = None;
        req.allow_auto_topic_creation = false;
        let payload = self
            .roundtrip(&mut conn, ApiKey::Metadata, version, &req, "Metadata")
            .await?;
        let (_, body) = split_response(ApiKey::Metadata, version, payload)
            .map_err(|e| proto(&conn, "Metadata", e))?;
        let meta: MetadataResponse = decode_body(ApiKey::Metadata, version, body)
            .map_err(|e| proto(&conn, "Metadata", e))?;
        let seen: Vec<UpstreamBroker> = meta
            .brokers
            .iter()
            .map(|b| UpstreamBroker {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
            })
            .collect();
        self.learn(&seen);
        let listing: Vec<(String, uuid::Uuid)> = meta
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| Some((t.name.as_ref()?.to_string(), t.topic_id)))
            .collect();
        self.topic_ids.learn_listing(&listing);
        *write(&self.versions) = Some(table);
        Ok(())
    }

    async fn query_versions(
        &self,
        conn: &mut UpstreamConn,
    ) -> Result<ApiVersionsResponse, UpstreamError> {
        query_api_versions(conn, self.request_timeout, self.max_response_bytes).await
    }

    async fn roundtrip<T: kafka_protocol::protocol::Encodable>(
        &self,
        conn: &mut UpstreamConn,
        api: ApiKey,
        version: i16,
        body: &T,
        phase: &'static str,
    ) -> Result<Bytes, UpstreamError> {
        super::conn::roundtrip(
            conn,
            api,
            version,
            body,
            phase,
            self.request_timeout,
            self.max_response_bytes,
        )
        .await
    }
}

/// Asks a broker which versions of each API it supports (ApiVersions v3, or v0 from an older
/// broker), on a connection nobody else is using.
pub async fn query_api_versions(
    conn: &mut UpstreamConn,
    timeout: Duration,
    max_response: usize,
) -> Result<ApiVersionsResponse, UpstreamError> {
    // v3 first; a broker that does not know it answers v0 with UNSUPPORTED_VERSION (35).
    for version in [3i16, 0] {
        let mut req = ApiVersionsRequest::default();
        if version >= 3 {
            req.client_software_name = StrBytes::from_static_str("kafka-gateway");
            req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        }
        let payload = super::conn::roundtrip(
            conn,
            ApiKey::ApiVersions,
            version,
            &req,
            "ApiVersions",
            timeout,
            max_response,
        )
        .await?;
        // ApiVersions responses always use header v0 (the correlation id alone), so the error code
        // sits at bytes 4..6 whichever body version the broker chose to answer with.
        if payload.len() >= 6 && i16::from_be_bytes([payload[4], payload[5]]) == 35 && version > 0 {
            continue;
        }
        let (_, body) = split_response(ApiKey::ApiVersions, version, payload)
            .map_err(|e| proto(conn, "ApiVersions", e))?;
        let resp: ApiVersionsResponse = decode_body(ApiKey::ApiVersions, version, body)
            .map_err(|e| proto(conn, "ApiVersions", e))?;
        if resp.error_code != 0 {
            return Err(UpstreamError::Protocol {
                addr: conn.addr.clone(),
                phase: "ApiVersions",
                message: format!("error code {}", resp.error_code),
            });
        }
        return Ok(resp);
    }
    Err(UpstreamError::Protocol {
        addr: conn.addr.clone(),
        phase: "ApiVersions",
        message: "no common ApiVersions version".into(),
    })
}

fn proto(conn: &UpstreamConn, phase: &'static str, e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Protocol {
        addr: conn.addr.clone(),
        phase,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster whose one bootstrap server accepts connections and never answers: each attempt
    /// lasts `timeout`.
    async fn silent_cluster(timeout: Duration) -> Arc<Cluster> {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = silent.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let connector = Connector::new(None, None, timeout, timeout, 1 << 20);
        Cluster::new(
            vec![("127.0.0.1".into(), port)],
            connector,
            timeout,
            1 << 20,
        )
    }

    /// A crowd of callers refreshing while the cluster does not answer shares one attempt instead
    /// of queueing one timed-out attempt each.
    #[tokio::test]
    async fn concurrent_refreshes_share_one_attempt() {
        let timeout = Duration::from_millis(300);
        let cluster = silent_cluster(timeout).await;
        let started = std::time::Instant::now();
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let c = cluster.clone();
                tokio::spawn(async move { c.refresh().await })
            })
            .collect();
        for call in calls {
            assert!(
                call.await.expect("task").is_err(),
                "a silent cluster refreshed"
            );
        }
        let took = started.elapsed();
        assert!(
            took < timeout * 4,
            "8 callers took {took:?}: they queued their own attempts"
        );
        assert_eq!(cluster.refresh_outcome().0, 1, "one attempt for all");
    }

    /// Unknown topic ids make the gateway ask the cluster, but at most once per interval however
    /// many requests name them; known ids never do.
    #[tokio::test]
    async fn unknown_topic_ids_refresh_at_most_once_per_interval() {
        let timeout = Duration::from_millis(100);
        let cluster = silent_cluster(timeout).await;
        let known = uuid::Uuid::from_u128(1);
        cluster.topic_ids.learn([("known", known)]);
        cluster.resolve_topics(&[known], &[]).await;
        assert_eq!(
            cluster.refresh_outcome().0,
            0,
            "a known id needs no refresh"
        );
        let unknown = uuid::Uuid::from_u128(2);
        for _ in 0..20 {
            cluster
                .resolve_topics(&[known, unknown], &["known".into()])
                .await;
        }
        assert_eq!(
            cluster.refresh_outcome().0,
            1,
            "one refresh for 20 requests"
        );
    }
}
