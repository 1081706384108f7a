//! The gateway's own ACL requests to a Kafka cluster, for `policy import` and `policy export --apply`:
//! DescribeAcls and CreateAcls over the gateway's upstream connection code, every step under a
//! deadline.
//!
//! This module only moves messages: what the ACLs mean, and whether the gateway can express them,
//! is decided by the socket-free `policy::migrate`.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, CreateAclsRequest, CreateAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::client_properties::ClientProperties;
use super::cluster::query_api_versions;
use super::conn::{exchange, Connector, UpstreamConn, UpstreamError};
use crate::protocol::bounds::supported_body_versions;

/// Kafka's wire codes for the "match everything" DescribeAcls filter.
const ANY_RESOURCE_TYPE: i8 = 1;
const ANY_PATTERN_TYPE: i8 = 1;
const ANY_OPERATION: i8 = 1;
const ANY_PERMISSION: i8 = 1;

/// Cap on one response: far above the largest ACL listing a cluster holds (a million ACLs is
/// ~100 MB), and a bound on what a misbehaving broker can make the tool allocate.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AclRequestError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("TLS settings from the client properties: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("no bootstrap server given")]
    NoBootstrap,
    #[error("no broker reachable ({}):{}", tried.len(), tried.iter().map(|e| format!("\n  {e}")).collect::<String>())]
    Unreachable { tried: Vec<UpstreamError> },
    #[error(
        "broker {addr} supports {api} versions {broker}, the gateway {ours}: no version in common"
    )]
    NoCommonVersion {
        addr: String,
        api: &'static str,
        broker: String,
        ours: String,
    },
    #[error("{api} refused by {addr}: error {code} {name}{}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(), hint(*code, api))]
    Refused {
        addr: String,
        api: &'static str,
        code: i16,
        /// Kafka's name for the code, e.g. CLUSTER_AUTHORIZATION_FAILED.
        name: String,
        message: Option<String>,
    },
    #[error("CreateAcls: the broker answered {got} results for {sent} creations")]
    ResultCount { sent: usize, got: usize },
}

impl AclRequestError {
    /// The Kafka error code when the broker refused the request.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            AclRequestError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What operators most often need to do about the common refusals.
fn hint(code: i16, api: &str) -> String {
    match code {
        31 if api == "DescribeAcls" => " (the principal logged in as needs DESCRIBE on the cluster, or to be one of the brokers' super.users)".into(),
        31 => " (the principal logged in as needs ALTER on the cluster, or to be one of the brokers' super.users)".into(),
        54 => " (the brokers have no authorizer: set authorizer.class.name, e.g. org.apache.kafka.metadata.authorizer.StandardAuthorizer)".into(),
        _ => String::new(),
    }
}

/// Kafka's constant name for an error code (`CLUSTER_AUTHORIZATION_FAILED`), from kafka-protocol's
/// variant name (`ClusterAuthorizationFailed`).
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(ResponseError::Unknown(_)) => "UNKNOWN".into(),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}

/// One logged-in connection to a broker, with the versions it speaks.
pub struct AdminConn {
    conn: UpstreamConn,
    versions: ApiVersionsResponse,
    timeout: Duration,
}

impl AdminConn {
    /// Connects to the first reachable bootstrap server as the properties say (TLS, SASL login),
    /// and asks it for its API versions. `timeout` bounds each step: TCP connect, TLS handshake,
    /// each request of the login and each later request.
    pub async fn connect(
        bootstrap: &[(String, u16)],
        props: &ClientProperties,
        timeout: Duration,
    ) -> Result<AdminConn, AclRequestError> {
        if bootstrap.is_empty() {
            return Err(AclRequestError::NoBootstrap);
        }
        let tls = match (&props.truststore, props.protocol.uses_tls()) {
            (Some(ca), true) => {
                // Kafka's PEM keystore holds the key and its certificate chain in one file; the
                // loader reads each kind of PEM block from it.
                let client = props.keystore.as_deref().map(|k| (k, k));
                Some((crate::tls::client_config(Some(ca), client)?, None))
            }
            (None, true) => return Err(crate::tls::TlsError::UpstreamCaMissing.into()),
            (_, false) => None,
        };
        let connector = Connector::new(
            tls,
            props.sasl.clone(),
            timeout,
            timeout,
            MAX_RESPONSE_BYTES,
        );
        let mut tried = Vec::new();
        for (host, port) in bootstrap {
            let attempt = async {
                let mut conn = connector.connect(host, *port).await?;
                let versions = query_api_versions(&mut conn, timeout, MAX_RESPONSE_BYTES).await?;
                Ok::<_, UpstreamError>((conn, versions))
            };
            match attempt.await {
                Ok((conn, versions)) => {
                    return Ok(AdminConn {
                        conn,
                        versions,
                        timeout,
                    })
                }
                Err(e) => tried.push(e),
            }
        }
        Err(AclRequestError::Unreachable { tried })
    }

    pub fn addr(&self) -> &str {
        &self.conn.addr
    }

    /// The highest version of `api` both sides speak.
    fn version(&self, api: ApiKey, name: &'static str) -> Result<i16, AclRequestError> {
        let ours = supported_body_versions(api as i16, true)
            .zip(supported_body_versions(api as i16, false))
            .map(|((a, b), (c, d))| (a.max(c), b.min(d)));
        let broker = self
            .versions
            .api_keys
            .iter()
            .find(|v| v.api_key == api as i16)
            .map(|v| (v.min_version, v.max_version));
        let show = |r: Option<(i16, i16)>| match r {
            Some((lo, hi)) => format!("{lo}..={hi}"),
            None => "none".into(),
        };
        match (ours, broker) {
            (Some((omin, omax)), Some((bmin, bmax))) if omin.max(bmin) <= omax.min(bmax) => {
                Ok(omax.min(bmax))
            }
            _ => Err(AclRequestError::NoCommonVersion {
                addr: self.conn.addr.clone(),
                api: name,
                broker: show(broker),
                ours: show(ours),
            }),
        }
    }

    /// Any request, at the highest version both sides speak, but not above `max`.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        name: &'static str,
        max: i16,
        req: &Req,
    ) -> Result<(i16, Resp), AclRequestError> {
        let version = self.version(api, name)?.min(max);
        let resp = exchange(
            &mut self.conn,
            api,
            version,
            req,
            name,
            self.timeout,
            MAX_RESPONSE_BYTES,
        )
        .await?;
        Ok((version, resp))
    }

    /// Every ACL the cluster holds: DescribeAcls with a filter that matches everything.
    pub async fn describe_all(&mut self) -> Result<DescribeAclsResponse, AclRequestError> {
        let version = self.version(ApiKey::DescribeAcls, "DescribeAcls")?;
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(ANY_RESOURCE_TYPE)
            .with_resource_name_filter(None)
            .with_pattern_type_filter(ANY_PATTERN_TYPE)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(ANY_OPERATION)
            .with_permission_type(ANY_PERMISSION);
        let resp: DescribeAclsResponse = exchange(
            &mut self.conn,
            ApiKey::DescribeAcls,
            version,
            &req,
            "DescribeAcls",
            self.timeout,
            MAX_RESPONSE_BYTES,
        )
        .await?;
        if resp.error_code != 0 {
            return Err(AclRequestError::Refused {
                addr: self.conn.addr.clone(),
                api: "DescribeAcls",
                code: resp.error_code,
                name: error_name(resp.error_code),
                message: resp.error_message.as_ref().map(|m| m.to_string()),
            });
        }
        Ok(resp)
    }

    /// Creates the ACLs in one CreateAcls request. Returns one result per creation, in order:
    /// `Ok(())`, or the refusal for that ACL (the broker applies the others).
    pub async fn create(
        &mut self,
        creations: Vec<AclCreation>,
    ) -> Result<Vec<Result<(), AclRequestError>>, AclRequestError> {
        let version = self.version(ApiKey::CreateAcls, "CreateAcls")?;
        let sent = creations.len();
        let req = CreateAclsRequest::default().with_creations(creations);
        let resp: CreateAclsResponse = exchange(
            &mut self.conn,
            ApiKey::CreateAcls,
            version,
            &req,
            "CreateAcls",
            self.timeout,
            MAX_RESPONSE_BYTES,
        )
        .await?;
        if resp.results.len() != sent {
            return Err(AclRequestError::ResultCount {
                sent,
                got: resp.results.len(),
            });
        }
        Ok(resp
            .results
            .iter()
            .map(|r| match r.error_code {
                0 => Ok(()),
                code => Err(AclRequestError::Refused {
                    addr: self.conn.addr.clone(),
                    api: "CreateAcls",
                    code,
                    name: error_name(code),
                    message: r.error_message.as_ref().map(|m| m.to_string()),
                }),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(31), "CLUSTER_AUTHORIZATION_FAILED");
        assert_eq!(error_name(54), "SECURITY_DISABLED");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(9999), "UNKNOWN");
    }

    #[test]
    fn refusals_name_the_code_and_say_what_to_do() {
        let e = AclRequestError::Refused {
            addr: "b:9092".into(),
            api: "DescribeAcls",
            code: 54,
            name: error_name(54),
            message: Some("No Authorizer is configured.".into()),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("DescribeAcls refused by b:9092: error 54 SECURITY_DISABLED: No Authorizer is configured."),
            "{text}"
        );
        assert!(text.contains("authorizer.class.name"), "{text}");
        assert_eq!(e.kafka_code(), Some(54));
    }

    /// A broker that accepts the connection and never answers: the tool gives up after the
    /// deadline, naming the phase, instead of hanging.
    #[tokio::test]
    async fn a_silent_broker_times_out() {
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
        let started = std::time::Instant::now();
        let err = AdminConn::connect(
            &[("127.0.0.1".into(), port)],
            &ClientProperties::default(),
            Duration::from_millis(200),
        )
        .await
        .err()
        .expect("a silent broker");
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = err.to_string();
        assert!(text.contains("ApiVersions timed out"), "{text}");
    }
}
