//! Development certificates (`kafka-gateway certs dev`): a throwaway CA plus server and client certificates for local testing.
//!
//! These are for laptops and CI only. The CA key is written next to the certificates, so anyone who can
//! read the directory can mint certificates that the gateway configured with this CA will trust.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Common name of the client certificate when the command line does not give one.
pub const DEFAULT_CLIENT_CN: &str = "alice";

/// How long the generated certificates stay valid. One year is plenty for development and short enough
/// that a forgotten dev CA does not stay trusted forever.
const VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Backdating tolerates clocks that run slightly behind on the machine doing the handshake.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// Where `write_dev_certs` put each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertPaths {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl DevCertPaths {
    fn in_dir(dir: &Path) -> Self {
        DevCertPaths {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        }
    }

    fn all(&self) -> [&Path; 6] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.client_cert,
            &self.client_key,
        ]
    }
}

/// Failure while generating or writing development certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot create certificate directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} already exists; use --force to overwrite", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("generating the {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("invalid client common name {cn:?}: {reason}")]
    InvalidClientCn { cn: String, reason: &'static str },
    #[error("invalid server name {name:?}: a DNS name, optionally starting with \"*.\"")]
    InvalidServerName { name: String },
    #[error("system clock is before 1970 or too far in the future to issue certificates")]
    Clock,
}

/// Generates a development CA, a server certificate for `localhost`/`127.0.0.1`/`::1`, and a client
/// certificate with subject `CN=<client_cn>,OU=dev,O=kafka-gateway`, and writes them as PEM into `dir`.
///
/// Without `force`, nothing is written if any of the six files already exists, so an earlier CA (which
/// clients may already trust) is never replaced by accident. Private keys are created with mode 0600.
pub fn write_dev_certs(
    dir: &Path,
    client_cn: &str,
    force: bool,
) -> Result<DevCertPaths, CertError> {
    write_dev_certs_for(dir, client_cn, &[], force)
}

/// [`write_dev_certs`] with more names in the server certificate: DNS names or wildcards such
/// as `*.eu.kafka.localhost`, for SNI listeners.
pub fn write_dev_certs_for(
    dir: &Path,
    client_cn: &str,
    server_names: &[String],
    force: bool,
) -> Result<DevCertPaths, CertError> {
    validate_cn(client_cn)?;
    for name in server_names {
        let bare = name.strip_prefix("*.").unwrap_or(name);
        // The same rule as the SNI names the listeners route by (case aside).
        if crate::config::check_dns_name(&bare.to_ascii_lowercase()).is_err() {
            return Err(CertError::InvalidServerName { name: name.clone() });
        }
    }
    let paths = DevCertPaths::in_dir(dir);
    fs::create_dir_all(dir).map_err(|source| CertError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    if !force {
        // Checked up front so a refusal leaves the directory untouched rather than half-written.
        if let Some(existing) = paths.all().into_iter().find(|p| p.exists()) {
            return Err(CertError::Exists {
                path: existing.to_path_buf(),
            });
        }
    }

    let bundle = generate(client_cn, server_names)?;
    let files: [(&Path, &str, bool); 6] = [
        (&paths.ca_cert, &bundle.ca_cert, false),
        (&paths.ca_key, &bundle.ca_key, true),
        (&paths.server_cert, &bundle.server_cert, false),
        (&paths.server_key, &bundle.server_key, true),
        (&paths.client_cert, &bundle.client_cert, false),
        (&paths.client_key, &bundle.client_key, true),
    ];
    for (path, contents, secret) in files {
        write_file(path, contents.as_bytes(), secret, force)?;
    }
    Ok(paths)
}

/// PEM text of everything `write_dev_certs` writes.
struct Bundle {
    ca_cert: String,
    ca_key: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn validate_cn(cn: &str) -> Result<(), CertError> {
    let reason = if cn.is_empty() {
        "must not be empty"
    } else if cn.chars().count() > 64 {
        // X.520 upper bound for commonName; longer names are rejected by some TLS stacks.
        "longer than 64 characters"
    } else if cn.chars().any(char::is_control) {
        "contains control characters"
    } else {
        return Ok(());
    };
    Err(CertError::InvalidClientCn {
        cn: cn.to_string(),
        reason,
    })
}

fn generate(client_cn: &str, server_names: &[String]) -> Result<Bundle, CertError> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CertError::Clock)?;
    let not_before = since_epoch.checked_sub(BACKDATE).ok_or(CertError::Clock)?;
    let not_after = since_epoch.checked_add(VALIDITY).ok_or(CertError::Clock)?;
    // rcgen takes `time::OffsetDateTime`; building it from the epoch avoids depending on `time` directly.
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let validity = |params: &mut CertificateParams| {
        params.not_before = epoch + not_before;
        params.not_after = epoch + not_after;
    };
    let gen_err = |what| move |source| CertError::Generate { what, source };

    let mut ca_params = CertificateParams::default();
    validity(&mut ca_params);
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "kafka-gateway");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kafka-gateway dev CA");
    // Path length 0: this CA signs leaf certificates only, never another CA.
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(gen_err("CA key"))?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(gen_err("CA certificate"))?;

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(server_names.iter().cloned());
    let mut server_params =
        CertificateParams::new(names).map_err(gen_err("server certificate parameters"))?;
    validity(&mut server_params);
    server_params.distinguished_name = rcgen::DistinguishedName::new();
    server_params
        .distinguished_name
        .push(DnType::OrganizationName, "kafka-gateway");
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate().map_err(gen_err("server key"))?;
    let server_cert = server_params
        .signed_by(&server_key, &*ca)
        .map_err(gen_err("server certificate"))?;

    let mut client_params = CertificateParams::default();
    validity(&mut client_params);
    // X.509 stores the DN most-significant first (O, OU, CN); its RFC 2253 form, which Kafka's
    // principal mapping rules match against, reverses that into `CN=<cn>,OU=dev,O=kafka-gateway`.
    // The default parameters already hold a CN, which would keep its first place: start empty.
    client_params.distinguished_name = rcgen::DistinguishedName::new();
    client_params
        .distinguished_name
        .push(DnType::OrganizationName, "kafka-gateway");
    client_params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "dev");
    client_params
        .distinguished_name
        .push(DnType::CommonName, client_cn);
    client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client_params.use_authority_key_identifier_extension = true;
    let client_key = KeyPair::generate().map_err(gen_err("client key"))?;
    let client_cert = client_params
        .signed_by(&client_key, &*ca)
        .map_err(gen_err("client certificate"))?;

    Ok(Bundle {
        ca_cert: ca.pem(),
        ca_key: ca.key().serialize_pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    })
}

/// Writes one file. Without `force` the file is created exclusively, so a file that appeared since the
/// up-front check is still not clobbered. With `force`, contents go to a temporary sibling first and are
/// renamed into place: a key is never briefly readable with old permissions, and a crash leaves either
/// the old file or the new one.
fn write_file(path: &Path, contents: &[u8], secret: bool, force: bool) -> Result<(), CertError> {
    let mode = if secret { 0o600 } else { 0o644 };
    let write_err = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    if !force {
        return create_and_write(path, contents, mode).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => CertError::Exists {
                path: path.to_path_buf(),
            },
            _ => write_err(source),
        });
    }

    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    // A leftover from an interrupted earlier run with the same pid would make create_new fail.
    let _ignored_missing = fs::remove_file(&tmp);
    let result = create_and_write(&tmp, contents, mode).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _best_effort_cleanup = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

fn create_and_write(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    // The mode passed to open() is filtered by the umask; set it explicitly so a permissive umask cannot
    // widen the key permissions and a strict one does not make certificates unreadable.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::server::WebPkiClientVerifier;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// A unique directory under the system temp dir, removed on drop (the crate has no tempfile dependency).
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "kafka-gateway-test-{tag}-{}-{nanos}-{n}",
                std::process::id()
            ));
            fs::create_dir_all(&path).expect("temp dir must be creatable");
            TempDir(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _best_effort = fs::remove_dir_all(&self.0);
        }
    }

    fn read_certs(path: &Path) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(path)
            .expect("file opens")
            .collect::<Result<Vec<_>, _>>()
            .expect("file parses as PEM certificates")
    }

    fn roots(ca: &Path) -> Arc<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(ca) {
            roots.add(cert).expect("dev CA is a valid trust anchor");
        }
        Arc::new(roots)
    }

    #[test]
    fn writes_parseable_certificates_that_chain_to_the_ca() {
        let dir = TempDir::new("certs-chain");
        let p = write_dev_certs(dir.path(), DEFAULT_CLIENT_CN, false).expect("write dev certs");
        for cert in [&p.ca_cert, &p.server_cert, &p.client_cert] {
            assert_eq!(read_certs(cert).len(), 1, "{cert:?}");
        }
        for key in [&p.ca_key, &p.server_key, &p.client_key] {
            rustls::pki_types::PrivateKeyDer::from_pem_file(key).expect("key parses");
        }

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots(&p.ca_cert),
            provider.clone(),
        )
        .build()
        .expect("server verifier");
        let server_ee = &read_certs(&p.server_cert)[0];
        for name in ["localhost", "127.0.0.1", "::1"] {
            let name = ServerName::try_from(name).expect("valid server name");
            server_verifier
                .verify_server_cert(server_ee, &[], &name, &[], UnixTime::now())
                .unwrap_or_else(|e| panic!("server cert must verify for {name:?}: {e}"));
        }
        let other = ServerName::try_from("example.com").expect("valid server name");
        assert!(server_verifier
            .verify_server_cert(server_ee, &[], &other, &[], UnixTime::now())
            .is_err());

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots(&p.ca_cert), provider)
                .build()
                .expect("client verifier");
        let client_ee = &read_certs(&p.client_cert)[0];
        client_verifier
            .verify_client_cert(client_ee, &[], UnixTime::now())
            .expect("client cert verifies against the dev CA");
        // The server certificate lacks the clientAuth EKU, so it must not pass as a client certificate.
        assert!(client_verifier
            .verify_client_cert(server_ee, &[], UnixTime::now())
            .is_err());
    }

    #[test]
    fn client_subject_contains_the_requested_cn() {
        let dir = TempDir::new("certs-cn");
        let p = write_dev_certs(dir.path(), "bob", false).expect("write dev certs");
        let der = read_certs(&p.client_cert).remove(0);
        let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        // DER-encoded string values appear verbatim inside the certificate.
        assert!(contains(b"bob"));
        assert!(contains(b"dev"));
        assert!(contains(b"kafka-gateway"));
        // What principal mapping rules see: the CN first, so the sample `^CN=([^,]+),.*$` matches.
        assert_eq!(
            crate::auth::principal::subject_dn_rfc2253(&der).expect("subject"),
            "CN=bob,OU=dev,O=kafka-gateway"
        );
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = TempDir::new("certs-force");
        let first = write_dev_certs(dir.path(), "alice", false).expect("first run");
        let ca_before = fs::read(&first.ca_cert).expect("read ca");

        let err =
            write_dev_certs(dir.path(), "alice", false).expect_err("second run without force");
        assert!(matches!(err, CertError::Exists { .. }), "{err}");
        assert_eq!(
            fs::read(&first.ca_cert).expect("read ca"),
            ca_before,
            "refusal must not touch files"
        );

        let second = write_dev_certs(dir.path(), "alice", true).expect("second run with force");
        assert_eq!(first, second);
        assert_ne!(
            fs::read(&second.ca_cert).expect("read ca"),
            ca_before,
            "force writes a new CA"
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("list dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "temporary files left behind: {leftovers:?}"
        );
    }

    #[test]
    fn private_keys_are_owner_only() {
        let dir = TempDir::new("certs-mode");
        let p = write_dev_certs(dir.path(), "alice", false).expect("write dev certs");
        // Pre-widen one key so --force has to fix the mode of an existing file too.
        fs::set_permissions(&p.server_key, fs::Permissions::from_mode(0o644)).expect("chmod");
        let p = write_dev_certs(dir.path(), "alice", true).expect("rewrite with force");
        for key in [&p.ca_key, &p.server_key, &p.client_key] {
            let mode = fs::metadata(key).expect("stat key").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{key:?}");
        }
        let mode = fs::metadata(&p.ca_cert)
            .expect("stat cert")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn rejects_bad_client_names() {
        let dir = TempDir::new("certs-badcn");
        for cn in ["", "a\nb", &"x".repeat(65)] {
            let err = write_dev_certs(dir.path(), cn, false).expect_err("bad cn");
            assert!(matches!(err, CertError::InvalidClientCn { .. }), "{err}");
        }
        assert_eq!(
            fs::read_dir(dir.path()).expect("list").count(),
            0,
            "nothing written"
        );
    }
}
