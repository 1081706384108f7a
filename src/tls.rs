//! TLS setup: builds the rustls server config (client-facing) and client config (upstream) from PEM files.
//!
//! Every config here uses the same crypto provider (aws-lc-rs) and the same protocol versions (TLS 1.3 and
//! 1.2), so the gateway never negotiates something weaker on one side than on the other.
//!
//! The loaders read files with blocking `std::fs` calls: they run at startup and on reload, not per
//! connection. Call them from `spawn_blocking` if an async caller must not stall its worker.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    ClientConfig, CommonState, ProtocolVersion, RootCertStore, ServerConfig,
    SupportedProtocolVersion,
};

/// The only protocol versions the gateway speaks, on both sides. TLS 1.0/1.1 are not implemented by
/// rustls at all; listing the two explicitly keeps a future rustls default change from widening them.
pub static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Whether client-facing listeners ask for, or insist on, a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is requested.
    None,
    /// A certificate is requested; clients without one are still accepted (they must authenticate
    /// some other way, e.g. SASL), but a certificate that is presented must chain to the CA bundle.
    Optional,
    /// Clients without a certificate that chains to the CA bundle are refused during the handshake.
    Required,
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientAuth::None => "none",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        })
    }
}

/// What a PEM file was supposed to hold; used so errors say which setting points at the bad file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemRole {
    CertificateChain,
    PrivateKey,
    ClientCaBundle,
    UpstreamCaBundle,
}

impl fmt::Display for PemRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PemRole::CertificateChain => "certificate chain",
            PemRole::PrivateKey => "private key",
            PemRole::ClientCaBundle => "client CA bundle",
            PemRole::UpstreamCaBundle => "upstream CA bundle",
        })
    }
}

/// Failure to build a TLS configuration. Each variant names the file (and what it was for) so an operator
/// can fix the right setting without reading code.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {role} file {}: {source}", path.display())]
    Read {
        role: PemRole,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{role} file {} is not valid PEM: {source}", path.display())]
    Pem {
        role: PemRole,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{role} file {} contains no certificate (expected a \"BEGIN CERTIFICATE\" block)", path.display())]
    NoCertificate { role: PemRole, path: PathBuf },
    #[error(
        "private key file {} contains no private key (expected a PKCS#8, PKCS#1 or SEC1 PEM block)",
        path.display()
    )]
    NoPrivateKey { path: PathBuf },
    #[error("private key in {} is not usable: {source}", path.display())]
    UnusableKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("certificate {} is not valid: {source}", path.display())]
    BadCertificate {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("private key {} does not belong to the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{role} file {}: certificate rejected as a trust anchor: {source}", path.display())]
    BadTrustAnchor {
        role: PemRole,
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("client certificate verifier from {}: {source}", path.display())]
    Verifier {
        path: PathBuf,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    #[error("client authentication is {mode} but no client CA bundle is configured")]
    ClientCaMissing { mode: ClientAuth },
    /// This build has no system trust store (no native-roots crate), so upstream TLS must name its CA.
    #[error("upstream TLS needs a CA bundle file: this build does not use the system trust store")]
    UpstreamCaMissing,
    #[error("crypto provider rejected the TLS protocol versions: {0}")]
    Provider(#[source] rustls::Error),
}

/// The single crypto provider used for every TLS config the gateway builds.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the config for client-facing listeners.
///
/// `client_ca_pem` is required when `client_auth` is `Optional` or `Required`; with `ClientAuth::None` a
/// configured bundle is ignored (with a warning) because no certificate is requested. No ALPN is offered:
/// Kafka clients do not use it.
pub fn server_config(
    cert_chain_pem: &Path,
    key_pem: &Path,
    client_ca_pem: Option<&Path>,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = crypto_provider();
    let certified = load_certified_key(&provider, cert_chain_pem, key_pem)?;

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Provider)?;

    let builder = match (client_auth, client_ca_pem) {
        (ClientAuth::None, ca) => {
            if let Some(ca) = ca {
                tracing::warn!(
                    path = %ca.display(),
                    "client CA bundle configured but client authentication is off; bundle not used"
                );
            }
            builder.with_no_client_auth()
        }
        (mode, None) => return Err(TlsError::ClientCaMissing { mode }),
        (mode, Some(ca)) => {
            let roots = load_roots(ca, PemRole::ClientCaBundle)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|source| TlsError::Verifier {
                path: ca.to_path_buf(),
                source,
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };

    Ok(Arc::new(builder.with_cert_resolver(Arc::new(
        SingleCertAndKey::from(certified),
    ))))
}

/// Builds the config for connections to upstream brokers.
///
/// A CA bundle is mandatory: the build carries no system trust store, and trusting nothing-in-particular
/// by default would be worse than refusing to start. `client_cert` is `(certificate chain, private key)`
/// for brokers that require mTLS from the gateway.
pub fn client_config(
    ca_bundle_pem: Option<&Path>,
    client_cert: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let ca = ca_bundle_pem.ok_or(TlsError::UpstreamCaMissing)?;
    let provider = crypto_provider();
    let roots = load_roots(ca, PemRole::UpstreamCaBundle)?;

    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Provider)?
        .with_root_certificates(roots);

    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let certified = load_certified_key(&provider, cert, key)?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
        }
    };
    Ok(Arc::new(config))
}

/// Names the negotiated protocol version the way operators know it, for logs and audit records.
/// Returns "none" before the handshake has chosen a version.
pub fn negotiated_version_name(conn: &CommonState) -> &'static str {
    match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
        // Unreachable with PROTOCOL_VERSIONS, but a log line must not panic over it.
        Some(_) => "unknown",
        None => "none",
    }
}

/// Loads a certificate chain and its private key and checks that they belong together, so a mismatch is
/// reported at startup with both paths instead of as a handshake failure on the first client.
fn load_certified_key(
    provider: &CryptoProvider,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(cert_path, PemRole::CertificateChain)?;
    let key = load_private_key(key_path)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::UnusableKey {
            path: key_path.to_path_buf(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            })
        }
        // The key type cannot report its public key; rustls itself treats that as "can't tell", and so do we.
        Err(rustls::Error::InconsistentKeys(_)) => Ok(certified),
        // Anything else comes from parsing the end-entity certificate.
        Err(source) => Err(TlsError::BadCertificate {
            path: cert_path.to_path_buf(),
            source,
        }),
    }
}

/// Reads the file ourselves (rather than `pem_file_iter`) so a missing file is an I/O error and not
/// confused with a PEM syntax problem.
fn read_pem_file(path: &Path, role: PemRole) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        role,
        path: path.to_path_buf(),
        source,
    })
}

fn load_certs(path: &Path, role: PemRole) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem_file(path, role)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            role,
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            role,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem_file(path, PemRole::PrivateKey)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(TlsError::Pem {
            role: PemRole::PrivateKey,
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Every certificate in a CA bundle must be usable: silently skipping a broken one would leave clients of
/// that CA locked out with no hint why.
fn load_roots(path: &Path, role: PemRole) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path, role)? {
        roots.add(cert).map_err(|source| TlsError::BadTrustAnchor {
            role,
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::tests::TempDir;
    use crate::certs::{write_dev_certs, DevCertPaths};
    use rustls::pki_types::ServerName;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    fn dev_certs(tag: &str) -> (TempDir, DevCertPaths) {
        let dir = TempDir::new(tag);
        let paths = write_dev_certs(dir.path(), "alice", false)
            .expect("dev certs are writable in a fresh temp dir");
        (dir, paths)
    }

    /// Outcome of one in-memory handshake plus a ping/pong, seen from each side.
    struct Outcome {
        server: Result<&'static str, String>,
        client: Result<&'static str, String>,
    }

    /// Runs a real TLS handshake over an in-memory pipe, then exchanges one message each way so that
    /// failures the client only learns about after its handshake (TLS 1.3 client-auth rejection) surface.
    async fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Outcome {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server_side = async move {
            let mut tls = TlsAcceptor::from(server)
                .accept(server_io)
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            assert_eq!(&buf, b"ping");
            tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(negotiated_version_name(tls.get_ref().1))
        };
        let client_side = async move {
            let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
            let mut tls = TlsConnector::from(client)
                .connect(name, client_io)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            assert_eq!(&buf, b"pong");
            Ok::<_, String>(negotiated_version_name(tls.get_ref().1))
        };
        let (server, client) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(server_side, client_side)
        })
        .await
        .expect("handshake must finish within 10s");
        Outcome { server, client }
    }

    #[tokio::test]
    async fn server_auth_only_handshake_succeeds_with_tls13() {
        let (_dir, p) = dev_certs("tls-server-only");
        let server = server_config(&p.server_cert, &p.server_key, None, ClientAuth::None)
            .expect("server config");
        let client = client_config(Some(&p.ca_cert), None).expect("client config");
        let out = handshake(server, client).await;
        assert_eq!(out.server, Ok("TLSv1.3"));
        assert_eq!(out.client, Ok("TLSv1.3"));
    }

    #[tokio::test]
    async fn tls12_client_is_accepted() {
        let (_dir, p) = dev_certs("tls-12");
        let server = server_config(&p.server_cert, &p.server_key, None, ClientAuth::None)
            .expect("server config");
        let mut roots = RootCertStore::empty();
        for cert in load_certs(&p.ca_cert, PemRole::UpstreamCaBundle).expect("ca") {
            roots.add(cert).expect("dev CA is a valid trust anchor");
        }
        let client = ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("aws-lc-rs supports TLS 1.2")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let out = handshake(server, Arc::new(client)).await;
        assert_eq!(out.server, Ok("TLSv1.2"));
        assert_eq!(out.client, Ok("TLSv1.2"));
    }

    #[tokio::test]
    async fn required_client_auth_rejects_missing_cert_and_accepts_valid_one() {
        let (_dir, p) = dev_certs("tls-mtls");
        let server = server_config(
            &p.server_cert,
            &p.server_key,
            Some(&p.ca_cert),
            ClientAuth::Required,
        )
        .expect("server config");

        let anonymous = client_config(Some(&p.ca_cert), None).expect("client config");
        let out = handshake(server.clone(), anonymous).await;
        assert!(
            out.server.is_err(),
            "server must refuse a client without a certificate"
        );
        assert!(out.client.is_err(), "client must see the refusal");

        let with_cert = client_config(Some(&p.ca_cert), Some((&p.client_cert, &p.client_key)))
            .expect("client config");
        let out = handshake(server, with_cert).await;
        assert_eq!(out.server, Ok("TLSv1.3"));
        assert_eq!(out.client, Ok("TLSv1.3"));
    }

    #[tokio::test]
    async fn optional_client_auth_accepts_both() {
        let (_dir, p) = dev_certs("tls-optional");
        let server = server_config(
            &p.server_cert,
            &p.server_key,
            Some(&p.ca_cert),
            ClientAuth::Optional,
        )
        .expect("server config");
        let anonymous = client_config(Some(&p.ca_cert), None).expect("client config");
        assert_eq!(
            handshake(server.clone(), anonymous).await.server,
            Ok("TLSv1.3")
        );
        let with_cert = client_config(Some(&p.ca_cert), Some((&p.client_cert, &p.client_key)))
            .expect("client config");
        assert_eq!(handshake(server, with_cert).await.server, Ok("TLSv1.3"));
    }

    #[tokio::test]
    async fn client_cert_from_another_ca_is_rejected() {
        let (_dir_a, a) = dev_certs("tls-ca-a");
        let (_dir_b, b) = dev_certs("tls-ca-b");
        let server = server_config(
            &a.server_cert,
            &a.server_key,
            Some(&a.ca_cert),
            ClientAuth::Required,
        )
        .expect("server config");
        // Trusts server A's CA, but presents a certificate issued by CA B.
        let client = client_config(Some(&a.ca_cert), Some((&b.client_cert, &b.client_key)))
            .expect("client config");
        let out = handshake(server, client).await;
        assert!(out.server.is_err());
    }

    #[test]
    fn only_tls13_and_tls12_are_enabled() {
        let versions: Vec<ProtocolVersion> = PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
        assert_eq!(
            versions,
            vec![ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2]
        );
    }

    /// A minimal ClientHello record whose only version signal is `legacy_version` (no supported_versions).
    fn legacy_client_hello(minor: u8) -> Vec<u8> {
        let mut body = vec![0x03, minor]; // client_version
        body.extend_from_slice(&[0x11; 32]); // random
        body.push(0); // empty session id
        body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two TLS 1.1-era CBC suites
        body.extend_from_slice(&[0x01, 0x00]); // null compression only
                                               // Real TLS 1.1 clients send no signature_algorithms, which rustls refuses on its own; adding it
                                               // makes the refusal come from the version check.
        body.extend_from_slice(&[
            0x00, 0x0a, 0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x04, 0x01,
        ]);
        let body_len = u8::try_from(body.len()).expect("hello is small");
        let mut handshake = vec![0x01, 0x00, 0x00, body_len];
        handshake.extend_from_slice(&body);
        let handshake_len = u8::try_from(handshake.len()).expect("hello is small");
        let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake_len];
        record.extend_from_slice(&handshake);
        record
    }

    /// Feeds `hello` to a fresh server connection; returns the error and the version it had settled on.
    fn server_error_for(hello: &[u8], config: Arc<ServerConfig>) -> (rustls::Error, &'static str) {
        let mut conn = rustls::ServerConnection::new(config).expect("server connection");
        conn.read_tls(&mut &hello[..])
            .expect("read into rustls buffer");
        let err = conn
            .process_new_packets()
            .expect_err("this hello must be refused");
        (err, negotiated_version_name(&conn))
    }

    /// rustls cannot build a TLS 1.1 client, so hand-craft a TLS 1.1 ClientHello and feed it to the server.
    #[test]
    fn server_refuses_a_tls11_client_hello() {
        let (_dir, p) = dev_certs("tls-11");
        let config = server_config(&p.server_cert, &p.server_key, None, ClientAuth::None)
            .expect("server config");
        let tls11 = rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered);

        let (err, version) = server_error_for(&legacy_client_hello(0x02), config.clone());
        assert_eq!(err, tls11);
        assert_eq!(version, "none");
        // Control: the same hello claiming TLS 1.2 gets past the version check (and then fails for
        // lack of a shared cipher suite), so the refusal above really is about the version.
        let (err, version) = server_error_for(&legacy_client_hello(0x03), config);
        assert_ne!(err, tls11);
        assert_eq!(version, "TLSv1.2");
    }

    #[test]
    fn client_auth_without_ca_is_an_error() {
        let (_dir, p) = dev_certs("tls-noca");
        for mode in [ClientAuth::Optional, ClientAuth::Required] {
            let err = server_config(&p.server_cert, &p.server_key, None, mode)
                .expect_err("must need a CA");
            assert!(matches!(err, TlsError::ClientCaMissing { .. }), "{err}");
        }
        let err = client_config(None, None).expect_err("upstream needs a CA");
        assert!(matches!(err, TlsError::UpstreamCaMissing));
    }

    #[test]
    fn bad_files_are_named_in_errors() {
        let (dir, p) = dev_certs("tls-bad");
        let missing = dir.path().join("nope.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, b"this is not PEM at all\n").expect("write garbage");
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");

        let cases: Vec<(TlsError, &Path)> = vec![
            (
                server_config(&missing, &p.server_key, None, ClientAuth::None)
                    .expect_err("missing chain"),
                &missing,
            ),
            (
                server_config(&garbage, &p.server_key, None, ClientAuth::None)
                    .expect_err("garbage chain"),
                &garbage,
            ),
            (
                server_config(&broken, &p.server_key, None, ClientAuth::None)
                    .expect_err("broken base64"),
                &broken,
            ),
            (
                server_config(&p.server_cert, &garbage, None, ClientAuth::None)
                    .expect_err("garbage key"),
                &garbage,
            ),
            (
                // A certificate file where a key is expected: no key inside.
                server_config(&p.server_cert, &p.server_cert, None, ClientAuth::None)
                    .expect_err("cert as key"),
                &p.server_cert,
            ),
            (
                server_config(
                    &p.server_cert,
                    &p.server_key,
                    Some(&garbage),
                    ClientAuth::Required,
                )
                .expect_err("garbage CA"),
                &garbage,
            ),
            (
                client_config(Some(&missing), None).expect_err("missing CA"),
                &missing,
            ),
        ];
        for (err, path) in cases {
            let msg = err.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "error {msg:?} does not name {path:?}"
            );
        }

        let err =
            server_config(&missing, &p.server_key, None, ClientAuth::None).expect_err("missing");
        assert!(
            matches!(
                err,
                TlsError::Read {
                    role: PemRole::CertificateChain,
                    ..
                }
            ),
            "{err}"
        );
        let err = server_config(&p.server_cert, &p.server_cert, None, ClientAuth::None)
            .expect_err("no key");
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
        let err =
            server_config(&garbage, &p.server_key, None, ClientAuth::None).expect_err("no cert");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    }

    #[test]
    fn key_that_does_not_match_the_certificate_is_an_error() {
        let (_dir, p) = dev_certs("tls-mismatch");
        let err = server_config(&p.server_cert, &p.client_key, None, ClientAuth::None)
            .expect_err("mismatch");
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&p.client_key.display().to_string())
                && msg.contains(&p.server_cert.display().to_string())
        );

        let err = client_config(Some(&p.ca_cert), Some((&p.client_cert, &p.server_key)))
            .expect_err("mismatch");
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    }
}
