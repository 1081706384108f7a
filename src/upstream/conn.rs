//! Opens one connection to an upstream broker, plaintext or TLS, under a connect deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::UpstreamSasl;
use crate::net::framed::FrameReader;
use crate::protocol::codec::{
    decode_body, encode_request, peek_response_correlation, split_response,
};
use crate::protocol::frame::LEN_PREFIX;

pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {addr}: connect failed: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("upstream {addr}: connect timed out after {after:?}")]
    ConnectTimeout { addr: String, after: Duration },
    #[error("upstream {addr}: TLS handshake failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("upstream {addr}: invalid TLS server name {name:?}")]
    ServerName { addr: String, name: String },
    #[error("upstream {addr}: {phase} timed out after {after:?}")]
    Timeout {
        addr: String,
        phase: &'static str,
        after: Duration,
    },
    #[error("upstream {addr}: {phase}: {message}")]
    Protocol {
        addr: String,
        phase: &'static str,
        message: String,
    },
    #[error("upstream {addr}: closed the connection during {phase}")]
    Closed { addr: String, phase: &'static str },
    #[error("upstream {addr}: I/O error during {phase}: {source}")]
    Io {
        addr: String,
        phase: &'static str,
        source: std::io::Error,
    },
    #[error("no upstream broker reachable (tried {tried}): last error: {last}")]
    NoBroker { tried: usize, last: String },
    #[error("upstream node {0} is not known to the gateway")]
    UnknownNode(i32),
    /// Another caller's metadata refresh, which this one waited for, failed.
    #[error("upstream metadata refresh failed: {0}")]
    SharedRefresh(String),
}

/// A connected upstream broker, split into halves so requests and responses flow independently.
pub struct UpstreamConn {
    pub addr: String,
    pub reader: BoxRead,
    pub writer: BoxWrite,
    /// When the gateway must log in again on this connection (KIP-368): the broker closes a
    /// connection whose SASL session has expired at its next request. `None`: no expiry.
    pub reauth_at: Option<tokio::time::Instant>,
}

/// When to re-authenticate a session the broker gave `lifetime_ms` (0: never expires). Kafka's
/// Java client picks a random point between 85% and 95% of the lifetime, so that connections
/// opened together do not all log in again at once; the jitter here comes from the clock.
pub fn reauth_deadline(
    now: tokio::time::Instant,
    lifetime_ms: i64,
) -> Option<tokio::time::Instant> {
    if lifetime_ms <= 0 {
        return None;
    }
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 100);
    let permille = 850 + u64::from(jitter);
    Some(now + Duration::from_millis(lifetime_ms as u64 * permille / 1000))
}

/// How to reach brokers: plaintext, or TLS verified against the configured CA bundle.
#[derive(Clone)]
pub struct Connector {
    tls: Option<(TlsConnector, Option<String>)>,
    sasl: Option<UpstreamSasl>,
    timeout: Duration,
    request_timeout: Duration,
    max_response: usize,
}

impl Connector {
    pub fn new(
        tls: Option<(Arc<rustls::ClientConfig>, Option<String>)>,
        sasl: Option<UpstreamSasl>,
        timeout: Duration,
        request_timeout: Duration,
        max_response: usize,
    ) -> Self {
        Connector {
            tls: tls.map(|(cfg, name)| (TlsConnector::from(cfg), name)),
            sasl,
            timeout,
            request_timeout,
            max_response,
        }
    }

    /// Connects, then logs in with the gateway's own identity when one is configured.
    pub async fn connect(&self, host: &str, port: u16) -> Result<UpstreamConn, UpstreamError> {
        let mut conn = self.connect_transport(host, port).await?;
        self.reauthenticate(&mut conn).await?;
        Ok(conn)
    }

    /// Logs in (again) on a connection nobody else is using, and notes when the next login is due.
    /// Without a configured identity there is nothing to do.
    pub async fn reauthenticate(&self, conn: &mut UpstreamConn) -> Result<(), UpstreamError> {
        if let Some(sasl) = &self.sasl {
            let lifetime =
                super::sasl::login(conn, sasl, self.request_timeout, self.max_response).await?;
            conn.reauth_at = reauth_deadline(tokio::time::Instant::now(), lifetime);
        }
        Ok(())
    }

    /// The gateway's own identity on the brokers, if it has one.
    pub fn sasl(&self) -> Option<&UpstreamSasl> {
        self.sasl.as_ref()
    }

    async fn connect_transport(
        &self,
        host: &str,
        port: u16,
    ) -> Result<UpstreamConn, UpstreamError> {
        let addr = format!("{host}:{port}");
        let tcp = match tokio::time::timeout(self.timeout, TcpStream::connect((host, port))).await {
            Err(_) => {
                return Err(UpstreamError::ConnectTimeout {
                    addr,
                    after: self.timeout,
                })
            }
            Ok(Err(source)) => return Err(UpstreamError::Connect { addr, source }),
            Ok(Ok(s)) => s,
        };
        // Kafka traffic is request/response: Nagle would add latency to every small request.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => {
                let (r, w) = tcp.into_split();
                Ok(UpstreamConn {
                    addr,
                    reader: Box::new(r),
                    writer: Box::new(w),
                    reauth_at: None,
                })
            }
            Some((connector, server_name)) => {
                let name = server_name.clone().unwrap_or_else(|| host.to_string());
                let sn =
                    ServerName::try_from(name.clone()).map_err(|_| UpstreamError::ServerName {
                        addr: addr.clone(),
                        name,
                    })?;
                let tls = match tokio::time::timeout(self.timeout, connector.connect(sn, tcp)).await
                {
                    Err(_) => {
                        return Err(UpstreamError::Timeout {
                            addr,
                            phase: "TLS handshake",
                            after: self.timeout,
                        })
                    }
                    Ok(Err(source)) => return Err(UpstreamError::Tls { addr, source }),
                    Ok(Ok(s)) => s,
                };
                let (r, w) = tokio::io::split(tls);
                Ok(UpstreamConn {
                    addr,
                    reader: Box::new(r),
                    writer: Box::new(w),
                    reauth_at: None,
                })
            }
        }
    }
}

/// One request/response on a connection nobody else is using (the gateway's own queries and login).
pub async fn exchange<Req: Encodable, Resp: Decodable>(
    conn: &mut UpstreamConn,
    api: ApiKey,
    version: i16,
    body: &Req,
    phase: &'static str,
    timeout: Duration,
    max_response: usize,
) -> Result<Resp, UpstreamError> {
    let payload = roundtrip(conn, api, version, body, phase, timeout, max_response).await?;
    let proto = |e: crate::protocol::codec::ProtocolError| UpstreamError::Protocol {
        addr: conn.addr.clone(),
        phase,
        message: e.to_string(),
    };
    let (_, body) = split_response(api, version, payload).map_err(proto)?;
    decode_body(api, version, body).map_err(proto)
}

/// Sends one request and returns the response payload (length prefix removed).
pub async fn roundtrip<Req: Encodable>(
    conn: &mut UpstreamConn,
    api: ApiKey,
    version: i16,
    body: &Req,
    phase: &'static str,
    timeout: Duration,
    max_response: usize,
) -> Result<Bytes, UpstreamError> {
    const CORRELATION: i32 = 1;
    let frame = encode_request(api, version, CORRELATION, "kafka-gateway", body).map_err(|e| {
        UpstreamError::Protocol {
            addr: conn.addr.clone(),
            phase,
            message: e.to_string(),
        }
    })?;
    let write = async {
        conn.writer.write_all(&frame).await?;
        conn.writer.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Err(_) => {
            return Err(UpstreamError::Timeout {
                addr: conn.addr.clone(),
                phase,
                after: timeout,
            })
        }
        Ok(Err(source)) => {
            return Err(UpstreamError::Io {
                addr: conn.addr.clone(),
                phase,
                source,
            })
        }
        Ok(Ok(())) => {}
    }
    let mut reader = FrameReader::new(&mut conn.reader);
    let frame = match tokio::time::timeout(timeout, reader.next(max_response)).await {
        Err(_) => {
            return Err(UpstreamError::Timeout {
                addr: conn.addr.clone(),
                phase,
                after: timeout,
            })
        }
        Ok(Err(e)) => {
            return Err(UpstreamError::Protocol {
                addr: conn.addr.clone(),
                phase,
                message: e.to_string(),
            })
        }
        Ok(Ok(None)) => {
            return Err(UpstreamError::Closed {
                addr: conn.addr.clone(),
                phase,
            })
        }
        Ok(Ok(Some(f))) => f,
    };
    let payload = frame.slice(LEN_PREFIX..);
    match peek_response_correlation(&payload) {
        Some(CORRELATION) => Ok(payload),
        other => Err(UpstreamError::Protocol {
            addr: conn.addr.clone(),
            phase,
            message: format!("unexpected correlation id {other:?}"),
        }),
    }
}
