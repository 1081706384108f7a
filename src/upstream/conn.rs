//! Opens one connection to an upstream broker, plaintext or TLS, under a connect deadline.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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
}

/// A connected upstream broker, split into halves so requests and responses flow independently.
pub struct UpstreamConn {
    pub addr: String,
    pub reader: BoxRead,
    pub writer: BoxWrite,
}

/// How to reach brokers: plaintext, or TLS verified against the configured CA bundle.
#[derive(Clone)]
pub struct Connector {
    tls: Option<(TlsConnector, Option<String>)>,
    timeout: Duration,
}

impl Connector {
    pub fn new(
        tls: Option<(Arc<rustls::ClientConfig>, Option<String>)>,
        timeout: Duration,
    ) -> Self {
        Connector {
            tls: tls.map(|(cfg, name)| (TlsConnector::from(cfg), name)),
            timeout,
        }
    }

    pub async fn connect(&self, host: &str, port: u16) -> Result<UpstreamConn, UpstreamError> {
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
                })
            }
        }
    }
}
