//! Gateway configuration: one TOML file parsed, validated with every problem reported at once, then typed.
//!
//! serde's `deny_unknown_fields` stops at the first problem, so the file is read as a `toml::Table` and
//! walked by [`Reader`], which records each error with its key path and keeps going. Only a config with
//! no errors at all becomes a [`Config`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::Mechanism;

/// A value that must never be printed: its `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call sites are easy to grep for.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMode {
    None,
    Optional,
    Required,
}

#[derive(Debug, Clone)]
pub struct ListenerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    pub client_auth: ClientAuthMode,
}

/// One client-facing listener: a bootstrap port plus one port per upstream broker, or (with
/// [`SniRoutes`]) one TLS port where the server name a client asks for picks the broker.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub bind: SocketAddr,
    /// Host name clients are told to connect to in rewritten broker addresses.
    pub advertised_host: String,
    /// Broker `node_id` is reachable at `broker_port_base + (node_id - node_id_base)` while that offset
    /// is below `broker_port_count`.
    pub broker_port_base: u16,
    pub broker_port_count: u16,
    pub node_id_base: i32,
    pub tls: Option<ListenerTls>,
    /// SASL mechanisms clients must authenticate with; empty means no SASL on this listener (the
    /// principal then comes from the client certificate, or is `User:ANONYMOUS`).
    pub sasl_mechanisms: Vec<Mechanism>,
    /// Routing by TLS server name on the bind port instead of a port per broker.
    pub sni: Option<SniRoutes>,
}

/// The server names an SNI listener answers to: one for bootstrapping and a pattern with the
/// broker's node id (`broker-{node_id}.kafka.example.com`), advertised in every rewritten
/// response. Names are compared in lower case (DNS names are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniRoutes {
    pub bootstrap: String,
    /// The broker pattern's text before and after `{node_id}`.
    pub broker_prefix: String,
    pub broker_suffix: String,
    /// The port advertised with the broker names (a load balancer's, say); the bind port if 0.
    pub advertised_port: u16,
}

/// What a server name asks for on an SNI listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SniRoute {
    Bootstrap,
    Node(i32),
}

impl SniRoutes {
    /// The broker name for `node_id`.
    pub fn broker_name(&self, node_id: i32) -> String {
        format!("{}{node_id}{}", self.broker_prefix, self.broker_suffix)
    }

    /// Which route `server_name` names, if any.
    pub fn route(&self, server_name: &str) -> Option<SniRoute> {
        let name = server_name.to_ascii_lowercase();
        if name == self.bootstrap {
            return Some(SniRoute::Bootstrap);
        }
        self.broker_id(&name).map(SniRoute::Node)
    }

    /// The node id a (lower-case) name gives in the broker pattern. A node id is decimal digits
    /// only (no sign, no leading zero, within i32): `broker-01` or `broker--1` name nothing.
    fn broker_id(&self, name: &str) -> Option<i32> {
        let id = name
            .strip_prefix(self.broker_prefix.as_str())?
            .strip_suffix(self.broker_suffix.as_str())?;
        let canonical = !id.is_empty()
            && id.len() <= 10
            && id.bytes().all(|b| b.is_ascii_digit())
            && (id == "0" || !id.starts_with('0'));
        if !canonical {
            return None;
        }
        id.parse::<i32>().ok()
    }

    /// Whether some name could match both `self`'s and `other`'s broker patterns or bootstrap
    /// names. Conservative: two patterns overlap when one's fixed prefix extends the other's and
    /// one's fixed suffix extends the other's.
    pub fn overlaps(&self, other: &SniRoutes) -> bool {
        let pre = self.broker_prefix.starts_with(&other.broker_prefix)
            || other.broker_prefix.starts_with(&self.broker_prefix);
        let suf = self.broker_suffix.ends_with(&other.broker_suffix)
            || other.broker_suffix.ends_with(&self.broker_suffix);
        (pre && suf)
            || self.bootstrap == other.bootstrap
            || self.broker_id(&other.bootstrap).is_some()
            || other.broker_id(&self.bootstrap).is_some()
    }
}

impl ListenerConfig {
    pub fn requires_sasl(&self) -> bool {
        !self.sasl_mechanisms.is_empty()
    }

    /// Where clients are told broker `node_id` is: the SNI name on the advertised port, or the
    /// advertised host on the node's own port (`None` when the range has no room for it).
    pub fn advertise(&self, node_id: i32) -> Option<(String, u16)> {
        match &self.sni {
            Some(sni) => {
                let port = match sni.advertised_port {
                    0 => self.bind.port(),
                    p => p,
                };
                Some((sni.broker_name(node_id), port))
            }
            None => self
                .broker_port(node_id)
                .map(|p| (self.advertised_host.clone(), p)),
        }
    }
}

impl ListenerConfig {
    /// The gateway port that stands for upstream broker `node_id` on this listener, if the range has room.
    pub fn broker_port(&self, node_id: i32) -> Option<u16> {
        let offset = i64::from(node_id) - i64::from(self.node_id_base);
        if offset < 0 || offset >= i64::from(self.broker_port_count) {
            return None;
        }
        u16::try_from(i64::from(self.broker_port_base) + offset).ok()
    }

    /// The node id a broker port stands for (inverse of [`Self::broker_port`]).
    pub fn node_for_port(&self, port: u16) -> Option<i32> {
        let offset = i32::from(port) - i32::from(self.broker_port_base);
        (offset >= 0 && offset < i32::from(self.broker_port_count))
            .then(|| self.node_id_base + offset)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    pub ca_file: PathBuf,
    /// Name to verify in the brokers' certificates instead of the host they are reached at.
    pub server_name: Option<String>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

/// The gateway's own identity towards the brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSasl {
    pub mechanism: Mechanism,
    /// SCRAM/PLAIN user; for GSSAPI the Kerberos principal (also in `kerberos`).
    pub username: String,
    /// Empty for GSSAPI: the key is in the keytab.
    pub password: Secret,
    pub kerberos: Option<UpstreamKerberos>,
}

/// The gateway's own Kerberos identity towards GSSAPI brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamKerberos {
    /// e.g. `gateway@EXAMPLE.COM`; its key is in `keytab`.
    pub principal: String,
    pub keytab: PathBuf,
    /// The brokers' service name (Kafka's `sasl.kerberos.service.name`): the gateway asks the
    /// KDC for `<service_name>/<broker host>`.
    pub service_name: String,
    pub krb5_conf: Option<PathBuf>,
}

/// GSSAPI at the gateway's listeners (`[authentication.kerberos]`).
#[derive(Debug, Clone)]
pub struct KerberosConfig {
    /// The principal clients get tickets for, e.g. `kafka/gateway.example.com@EXAMPLE.COM`.
    pub service_principal: String,
    pub keytab: PathBuf,
    /// MIT krb5.conf; without it the library's default (`KRB5_CONFIG` or /etc/krb5.conf).
    pub krb5_conf: Option<PathBuf>,
    /// Kafka's `sasl.kerberos.principal.to.local.rules`.
    pub principal_to_local_rules: Vec<String>,
    /// Realms whose principals may log in; by default the service principal's own.
    pub allowed_realms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub bootstrap_servers: Vec<String>,
    pub tls: Option<UpstreamTls>,
    pub sasl: Option<UpstreamSasl>,
    pub metadata_refresh: Duration,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest frame of any kind; what Produce, JoinGroup and SyncGroup requests may use.
    pub max_frame_bytes: usize,
    pub max_frame_bytes_unauthenticated: usize,
    /// Largest request of every other API: their requests are lists of names and ids, which
    /// decode to several times their size, and no client needs megabytes of them.
    pub max_request_bytes: usize,
    /// Per-API overrides of the two limits above, by API key.
    pub max_request_bytes_by_api: BTreeMap<i16, usize>,
    /// What decoding one request may allocate beyond its own size (a request of n bytes may
    /// decode to n + this). Above that it is refused before it is decoded.
    pub max_decoded_bytes: usize,
    pub max_response_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// New connections accepted per second over all listeners (Kafka's
    /// `max.connection.creation.rate`); 0: no limit. Above it, accepting waits.
    pub max_connection_rate: usize,
    pub max_inflight_bytes: usize,
    pub max_inflight_requests: usize,
    /// The samples quota rates are measured over and their length (Kafka's `quota.window.num`
    /// and `quota.window.size.seconds`: 11 of 1 s).
    pub quota_window_num: u32,
    pub quota_window_size: Duration,
}

#[derive(Debug, Clone)]
pub struct Timeouts {
    pub idle: Duration,
    pub tls_handshake: Duration,
    pub upstream_connect: Duration,
    /// Added to the wait a request itself asks for (Fetch max wait, JoinGroup rebalance timeout).
    pub upstream_request: Duration,
    pub client_write: Duration,
    pub shutdown_grace: Duration,
    /// How long a fail-closed request waits for its audit record to be written before it is
    /// refused.
    pub audit_write: Duration,
}

/// JWT validation settings for OAUTHBEARER.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    pub jwks_ca_file: Option<PathBuf>,
    pub issuer: String,
    pub audience: String,
    pub clock_skew: Duration,
    pub principal_claim: String,
    pub scope_claim: String,
    pub required_scopes: Vec<String>,
    pub jwks_min_refresh_interval: Duration,
    pub jwks_refresh_interval: Duration,
}

/// The audit trail: where and how it is written, and which allowed decisions it records.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub writer: crate::audit::AuditConfig,
    /// Below this much free space on the trail's disk, metrics and logs warn (`audit_disk_low`).
    pub warn_free_bytes: u64,
    pub level: crate::audit::AuditLevel,
    /// The same events produced to a topic on the upstream cluster.
    pub kafka: Option<crate::audit::kafka_sink::KafkaSinkConfig>,
}

/// Authorization settings. There is no implicit default: either policy files, or an explicit
/// `allow_all = true` that forwards every authenticated client's requests unchecked.
#[derive(Debug, Clone)]
pub struct AuthzConfig {
    pub allow_all: bool,
    /// The casbin model (policies/model.conf documents the semantics).
    pub model: Option<PathBuf>,
    pub policy_files: Vec<PathBuf>,
    /// A candidate policy evaluated beside `policy_files` on every check and never enforced:
    /// where it decides otherwise, a `shadow_decision` audit record (empty: no shadow).
    pub shadow_policy_files: Vec<PathBuf>,
    /// Principals allowed everything, e.g. `User:admin`.
    pub super_users: Vec<String>,
}

/// Client authentication settings shared by every listener.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// SCRAM credentials (also used by PLAIN).
    pub credentials_file: Option<PathBuf>,
    /// Time from connection to completed authentication; slow or silent clients are cut off.
    pub timeout: Duration,
    /// Delay before a failed authentication is answered (Kafka: 100 ms).
    pub failure_delay: Duration,
    /// Longest session before re-authentication (KIP-368); `None` disables re-authentication.
    pub max_session_lifetime: Option<Duration>,
    /// Kafka-style `ssl.principal.mapping.rules` for client certificates.
    pub principal_mapping_rules: String,
    pub lockout_max_failures: u32,
    pub lockout_max_failures_per_ip: u32,
    pub lockout_window: Duration,
    pub lockout_duration: Duration,
    pub oauthbearer: Option<OAuthSettings>,
    pub kerberos: Option<KerberosConfig>,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub bind: Option<SocketAddr>,
}

/// One cluster the gateway fronts: its upstream, the listeners that lead to it, and its policy.
/// A config with `[[virtual_clusters]]` declares several; one without is a single cluster
/// named `default` (today's top-level `[upstream]`, `[[listeners]]`, `[authorization]`).
#[derive(Debug, Clone)]
pub struct VirtualCluster {
    pub name: String,
    /// Declared as `[[virtual_clusters]]`: only then do audit records and metrics carry the
    /// name (a single-cluster gateway's records stay as they were).
    pub named: bool,
    pub upstream: UpstreamConfig,
    pub listeners: Vec<ListenerConfig>,
    pub authz: AuthzConfig,
    /// This cluster's SCRAM/PLAIN credentials, instead of `authentication.credentials_file`.
    pub credentials_file: Option<PathBuf>,
    /// A tenant namespace inside the upstream cluster: every topic, group and transactional id
    /// the clients name is `<prefix><name>` on the brokers.
    pub tenant: Option<TenantConfig>,
}

/// `[virtual_clusters.tenant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantConfig {
    pub prefix: String,
    /// The cluster id clients see (Metadata, DescribeCluster): the virtual cluster's name unless
    /// set.
    pub cluster_id: String,
}

impl VirtualCluster {
    /// The credentials this cluster's listeners check passwords against.
    pub fn credentials<'a>(&'a self, auth: &'a AuthConfig) -> Option<&'a Path> {
        self.credentials_file
            .as_deref()
            .or(auth.credentials_file.as_deref())
    }

    /// The audit and metrics label: the name when declared, else none.
    pub fn label(&self) -> Option<&str> {
        self.named.then_some(self.name.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// At least one; the first also receives the audit topic copy (`[audit.kafka]`).
    pub clusters: Vec<VirtualCluster>,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    /// `None`: no audit trail (a warning at start).
    pub audit: Option<AuditSettings>,
    /// Directory relative paths in the file are resolved against.
    pub base_dir: PathBuf,
    /// The file it was loaded from (watched for upstream switches), if any.
    pub source: Option<PathBuf>,
}

/// One problem in the configuration, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config file {path} has {} problem(s):\n{}", issues.len(), issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        issues: Vec<ConfigIssue>,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let parsed = Self::parse(&text, &base_dir).map(|mut c| {
            c.source = Some(path.to_path_buf());
            c
        });
        parsed.map_err(|e| match e {
            ParseError::Syntax(message) => ConfigError::Syntax {
                path: path.to_path_buf(),
                message,
            },
            ParseError::Invalid(issues) => ConfigError::Invalid {
                path: path.to_path_buf(),
                issues,
            },
        })
    }

    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ParseError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ParseError::Syntax(e.to_string()))?;
        let mut issues = Vec::new();
        let cfg = {
            let mut root = Reader::new(&table, String::new(), &mut issues);
            let cfg = read_config(&mut root, base_dir);
            root.finish();
            cfg
        };
        validate(&cfg, &mut issues);
        if issues.is_empty() {
            Ok(cfg)
        } else {
            Err(ParseError::Invalid(issues))
        }
    }

    /// A human-readable rendering with every secret redacted (for `check-config` and start-up logs).
    pub fn redacted_summary(&self) -> String {
        // Debug of the typed config is safe: secrets are `Secret`, which redacts itself.
        format!("{self:#?}")
    }
}

#[derive(Debug)]
pub enum ParseError {
    Syntax(String),
    Invalid(Vec<ConfigIssue>),
}

fn read_config(root: &mut Reader<'_>, base_dir: &Path) -> Config {
    let clusters = if root.has("virtual_clusters") {
        for key in ["upstream", "listeners", "authorization"] {
            if root.has(key) {
                root.reject(
                    key,
                    "with [[virtual_clusters]] each cluster has its own: move this into one of them",
                );
            }
        }
        let mut clusters = Vec::new();
        root.array_of_tables("virtual_clusters", |r| {
            let name = r.string("name", None).unwrap_or_default();
            let credentials_file = r.opt_path("credentials_file", base_dir);
            let tenant = r.optional_table("tenant", |t| TenantConfig {
                prefix: t.string("prefix", None).unwrap_or_default(),
                cluster_id: t.string("cluster_id", Some(&name)).unwrap_or_default(),
            });
            let mut vc = read_cluster(r, base_dir, name, true, credentials_file);
            vc.tenant = tenant;
            clusters.push(vc);
        });
        if clusters.is_empty() {
            root.issue(
                "virtual_clusters",
                "at least one [[virtual_clusters]] entry is required",
            );
        }
        clusters
    } else {
        vec![read_cluster(root, base_dir, "default".into(), false, None)]
    };
    let limits = root.table_or_default("limits", |r| Limits {
        max_frame_bytes: r.size("max_frame_bytes", 100 * 1024 * 1024),
        max_frame_bytes_unauthenticated: r.size("max_frame_bytes_unauthenticated", 512 * 1024),
        max_request_bytes: r.size("max_request_bytes", 1024 * 1024),
        max_request_bytes_by_api: r
            .optional_table("max_request_bytes_by_api", read_api_sizes)
            .unwrap_or_default(),
        max_decoded_bytes: r.size("max_decoded_bytes", 1024 * 1024),
        max_response_bytes: r.size("max_response_bytes", 100 * 1024 * 1024),
        max_connections: r.size("max_connections", 10_000),
        max_connections_per_ip: r.size("max_connections_per_ip", 1_000),
        max_connection_rate: r.size("max_connection_rate", 0),
        max_inflight_bytes: r.size("max_inflight_bytes", 64 * 1024 * 1024),
        max_inflight_requests: r.size("max_inflight_requests", 1_000),
        quota_window_num: r.int("quota_window_num", 11, 2, 1000) as u32,
        quota_window_size: r.duration("quota_window_size", Duration::from_secs(1)),
    });
    let timeouts = root.table_or_default("timeouts", |r| Timeouts {
        idle: r.duration("idle", Duration::from_secs(600)),
        tls_handshake: r.duration("tls_handshake", Duration::from_secs(10)),
        upstream_connect: r.duration("upstream_connect", Duration::from_secs(10)),
        upstream_request: r.duration("upstream_request", Duration::from_secs(30)),
        client_write: r.duration("client_write", Duration::from_secs(60)),
        shutdown_grace: r.duration("shutdown_grace", Duration::from_secs(30)),
        audit_write: r.duration("audit_write", Duration::from_secs(5)),
    });
    let admin = root.table_or_default("admin", |r| AdminConfig {
        bind: r.opt_socket_addr("bind"),
    });
    let auth = root.table_or_default("authentication", |r| read_auth(r, base_dir));
    let audit = root.optional_table("audit", |r| read_audit(r, base_dir));
    Config {
        clusters,
        limits,
        timeouts,
        admin,
        auth,
        audit,
        base_dir: base_dir.to_path_buf(),
        source: None,
    }
}

/// One cluster's upstream, listeners and authorization, from the top level or a
/// `[[virtual_clusters]]` entry.
fn read_cluster(
    root: &mut Reader<'_>,
    base_dir: &Path,
    name: String,
    named: bool,
    credentials_file: Option<PathBuf>,
) -> VirtualCluster {
    let mut listeners = Vec::new();
    root.array_of_tables("listeners", |r| listeners.push(read_listener(r, base_dir)));
    if listeners.is_empty() && !root.has("listeners") {
        root.issue("listeners", "at least one [[listeners]] entry is required");
    }

    let upstream = root
        .table("upstream", |r| {
            let bootstrap_servers = r.string_list("bootstrap_servers", None).unwrap_or_default();
            let tls = r.optional_table("tls", |t| UpstreamTls {
                ca_file: t.path("ca_file", base_dir, None).unwrap_or_default(),
                server_name: t.opt_string("server_name"),
                client_cert_file: t.opt_path("client_cert_file", base_dir),
                client_key_file: t.opt_path("client_key_file", base_dir),
            });
            let metadata_refresh = r.duration("metadata_refresh", Duration::from_secs(30));
            let has_tls = tls.is_some();
            let sasl = r.optional_table("sasl", |t| read_upstream_sasl(t, base_dir, has_tls));
            UpstreamConfig {
                bootstrap_servers,
                tls,
                sasl: sasl.flatten(),
                metadata_refresh,
            }
        })
        .unwrap_or(UpstreamConfig {
            bootstrap_servers: Vec::new(),
            tls: None,
            sasl: None,
            metadata_refresh: Duration::from_secs(30),
        });
    if !root.has("upstream") {
        root.issue(
            "upstream",
            "an [upstream] table with bootstrap_servers is required",
        );
    }

    if !root.has("authorization") {
        root.issue(
            "authorization",
            "required: policy_files (with model), or allow_all = true to forward every authenticated client's requests unchecked",
        );
    }
    let authz = root.table_or_default("authorization", |r| {
        let allow_all = r.boolean("allow_all", false);
        let model = r.opt_path("model", base_dir);
        let policy_files: Vec<PathBuf> = r
            .string_list("policy_files", Some(Vec::new()))
            .unwrap_or_default()
            .into_iter()
            .map(|f| base_dir.join(f))
            .collect();
        let shadow_policy_files: Vec<PathBuf> = r
            .string_list("shadow_policy_files", Some(Vec::new()))
            .unwrap_or_default()
            .into_iter()
            .map(|f| base_dir.join(f))
            .collect();
        let super_users = r
            .string_list("super_users", Some(Vec::new()))
            .unwrap_or_default();
        if !shadow_policy_files.is_empty() && (allow_all || model.is_none()) {
            r.issue(
                "shadow_policy_files",
                "a shadow policy is compared with an enforced one: needs model and policy_files, not allow_all",
            );
        }
        if allow_all && (!policy_files.is_empty() || model.is_some()) {
            r.issue(
                "allow_all",
                "allow_all = true contradicts model / policy_files",
            );
        }
        if !allow_all && r.has("policy_files") && (policy_files.is_empty() || model.is_none()) {
            r.issue("policy_files", "needs at least one policy file and a model");
        }
        for (i, su) in super_users.iter().enumerate() {
            if !su.contains(':') {
                r.issue(
                    &format!("super_users[{i}]"),
                    &format!("{su:?} is not a principal like User:admin"),
                );
            }
        }
        AuthzConfig {
            allow_all,
            model,
            policy_files,
            shadow_policy_files,
            super_users,
        }
    });
    VirtualCluster {
        name,
        named,
        upstream,
        listeners,
        authz,
        credentials_file,
        tenant: None,
    }
}

fn read_audit(r: &mut Reader<'_>, base_dir: &Path) -> AuditSettings {
    use crate::audit::{AuditConfig, AuditLevel, FailureMode, FsyncPolicy};
    let dir = r.path("dir", base_dir, None).unwrap_or_default();
    let mut w = AuditConfig::new(dir);
    w.file_prefix = r.string("file_prefix", Some("audit")).unwrap_or_default();
    w.max_file_bytes = r.size("max_file_bytes", w.max_file_bytes as usize) as u64;
    let rotate = r.duration("rotate_every", Duration::from_secs(86_400));
    w.rotate_every = (!rotate.is_zero()).then_some(rotate);
    // Bounded by default (160 files of 64 MiB, 10 GiB): one client's denials must not be able to
    // fill the disk. 0 keeps every file; deletions are recorded in the chain either way.
    w.retain_files = r.size("retain_files", DEFAULT_RETAIN_FILES);
    w.queue_capacity = r.size("queue_capacity", w.queue_capacity);
    w.fsync = match r.string("fsync", Some("batch")).as_deref() {
        Some("always") => FsyncPolicy::Always,
        Some("batch") | None => FsyncPolicy::Batch,
        Some("never") => FsyncPolicy::Never,
        Some(other) => match parse_duration(other) {
            Some(d) if !d.is_zero() => FsyncPolicy::Interval(d),
            _ => {
                r.issue(
                    "fsync",
                    &format!("{other:?} is not always, batch, never or an interval like \"1s\""),
                );
                FsyncPolicy::Batch
            }
        },
    };
    w.on_failure = match r.string("on_failure", Some("fail-closed")).as_deref() {
        Some("fail-closed") | None => FailureMode::FailClosed,
        Some("best-effort") => FailureMode::BestEffort,
        Some(other) => {
            r.issue(
                "on_failure",
                &format!("{other:?} is not fail-closed or best-effort"),
            );
            FailureMode::FailClosed
        }
    };
    let level = match r.string("level", Some("admin")).as_deref() {
        Some("none") => AuditLevel::None,
        Some("admin") | None => AuditLevel::Admin,
        Some("all") => AuditLevel::All,
        Some(other) => {
            r.issue("level", &format!("{other:?} is not none, admin or all"));
            AuditLevel::Admin
        }
    };
    if let Err(e) = w.validate() {
        r.issue("dir", &e.to_string());
    }
    let kafka = r.optional_table("kafka", |k| {
        let topic = k
            .string("topic", Some("_kafka_gateway_audit"))
            .unwrap_or_default();
        if topic.is_empty() {
            k.issue("topic", "must not be empty");
        }
        let on_failure = match k.string("on_failure", Some("fail-closed")).as_deref() {
            Some("best-effort") => FailureMode::BestEffort,
            Some("fail-closed") | None => FailureMode::FailClosed,
            Some(other) => {
                k.issue(
                    "on_failure",
                    &format!("{other:?} is not fail-closed or best-effort"),
                );
                FailureMode::FailClosed
            }
        };
        crate::audit::kafka_sink::KafkaSinkConfig {
            topic,
            on_failure,
            queue_capacity: k.size("queue_capacity", 65_536).max(1),
            batch_max: 500,
        }
    });
    // Four files' worth by default: enough warning to act before rotation cannot create one.
    let warn_free_bytes = r.size(
        "warn_free_bytes",
        usize::try_from(w.max_file_bytes.saturating_mul(4)).unwrap_or(usize::MAX),
    ) as u64;
    AuditSettings {
        writer: w,
        warn_free_bytes,
        level,
        kafka,
    }
}

fn read_upstream_sasl(t: &mut Reader<'_>, base_dir: &Path, has_tls: bool) -> Option<UpstreamSasl> {
    let mechanism = t
        .string("mechanism", None)
        .and_then(|m| match Mechanism::from_name(&m) {
            Some(
                m @ (Mechanism::Plain
                | Mechanism::ScramSha256
                | Mechanism::ScramSha512
                | Mechanism::Gssapi),
            ) => Some(m),
            _ => {
                t.issue(
                    "mechanism",
                    &format!("{m:?} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI"),
                );
                None
            }
        });
    if mechanism == Some(Mechanism::Gssapi) {
        for key in ["username", "password", "password_file"] {
            if t.has(key) {
                t.reject(key, "not used with GSSAPI (principal and keytab are)");
            }
        }
        let principal = t.string("principal", None);
        let keytab = t.path("keytab", base_dir, None);
        let service_name = t.string("service_name", Some("kafka"));
        let krb5_conf = t.opt_path("krb5_conf", base_dir);
        let kerberos = UpstreamKerberos {
            principal: principal?,
            keytab: keytab?,
            service_name: service_name?,
            krb5_conf,
        };
        return Some(UpstreamSasl {
            mechanism: Mechanism::Gssapi,
            username: kerberos.principal.clone(),
            password: Secret::new(""),
            kerberos: Some(kerberos),
        });
    }
    for key in ["principal", "keytab", "service_name", "krb5_conf"] {
        if t.has(key) {
            t.reject(key, "only used with mechanism = \"GSSAPI\"");
        }
    }
    if mechanism == Some(Mechanism::Plain) && !has_tls {
        t.issue(
            "mechanism",
            "PLAIN towards the brokers needs [upstream.tls]",
        );
    }
    let username = t.string("username", None);
    let inline = t.secret("password");
    let file = t.opt_path("password_file", base_dir);
    let password = match (inline, file) {
        (Some(p), None) => Some(p),
        (None, Some(f)) => match std::fs::read_to_string(&f) {
            Ok(p) => Some(Secret::new(p.trim_end_matches(['\n', '\r']))),
            Err(e) => {
                t.issue(
                    "password_file",
                    &format!("cannot read {}: {e}", f.display()),
                );
                None
            }
        },
        (Some(_), Some(_)) => {
            t.issue("password", "give password or password_file, not both");
            None
        }
        (None, None) => {
            t.issue("password", "required (or password_file)");
            None
        }
    };
    Some(UpstreamSasl {
        mechanism: mechanism?,
        username: username?,
        password: password?,
        kerberos: None,
    })
}

fn read_auth(r: &mut Reader<'_>, base_dir: &Path) -> AuthConfig {
    let oauthbearer = r.optional_table("oauthbearer", |t| OAuthSettings {
        jwks_file: t.opt_path("jwks_file", base_dir),
        jwks_url: t.opt_string("jwks_url"),
        jwks_ca_file: t.opt_path("jwks_ca_file", base_dir),
        issuer: t.string("issuer", None).unwrap_or_default(),
        audience: t.string("audience", None).unwrap_or_default(),
        clock_skew: t.duration("clock_skew", Duration::from_secs(30)),
        principal_claim: t.string("principal_claim", Some("sub")).unwrap_or_default(),
        scope_claim: t.string("scope_claim", Some("scope")).unwrap_or_default(),
        required_scopes: t
            .string_list("required_scopes", Some(Vec::new()))
            .unwrap_or_default(),
        jwks_min_refresh_interval: t.duration("jwks_min_refresh_interval", Duration::from_secs(60)),
        jwks_refresh_interval: t.duration("jwks_refresh_interval", Duration::from_secs(3600)),
    });
    let kerberos = r.optional_table("kerberos", |t| {
        let service_principal = t.string("service_principal", None).unwrap_or_default();
        let realm = service_principal
            .rsplit_once('@')
            .map(|(_, r)| r.to_string())
            .unwrap_or_default();
        if !service_principal.is_empty() && realm.is_empty() {
            t.issue(
                "service_principal",
                "needs its realm, e.g. kafka/gateway.example.com@EXAMPLE.COM",
            );
        }
        KerberosConfig {
            service_principal,
            keytab: t.path("keytab", base_dir, None).unwrap_or_default(),
            krb5_conf: t.opt_path("krb5_conf", base_dir),
            principal_to_local_rules: t
                .string_list("principal_to_local_rules", Some(vec!["DEFAULT".into()]))
                .unwrap_or_default(),
            allowed_realms: t
                .string_list("allowed_realms", Some(vec![realm]))
                .unwrap_or_default(),
        }
    });
    let lifetime = r.duration("max_session_lifetime", Duration::ZERO);
    AuthConfig {
        credentials_file: r.opt_path("credentials_file", base_dir),
        timeout: r.duration("timeout", Duration::from_secs(10)),
        failure_delay: r.duration("failure_delay", Duration::from_millis(100)),
        max_session_lifetime: (!lifetime.is_zero()).then_some(lifetime),
        principal_mapping_rules: r
            .string("principal_mapping_rules", Some("DEFAULT"))
            .unwrap_or_default(),
        lockout_max_failures: r.int("lockout_max_failures", 10, 0, 1_000_000) as u32,
        lockout_max_failures_per_ip: r.int("lockout_max_failures_per_ip", 100, 0, 1_000_000) as u32,
        lockout_window: r.duration("lockout_window", Duration::from_secs(300)),
        lockout_duration: r.duration("lockout_duration", Duration::from_secs(300)),
        oauthbearer,
        kerberos,
    }
}

fn read_listener(r: &mut Reader<'_>, base_dir: &Path) -> ListenerConfig {
    let name = r.string("name", None).unwrap_or_default();
    let bind = r
        .socket_addr("bind")
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let advertised_host = r
        .string("advertised_host", Some("localhost"))
        .unwrap_or_default();
    let sni = r.optional_table("sni", read_sni).flatten();
    if r.has("sni") {
        for key in [
            "broker_port_base",
            "broker_port_count",
            "node_id_base",
            "advertised_host",
        ] {
            if r.has(key) {
                r.reject(
                    key,
                    "an SNI listener advertises its [sni] names on its own port: no per-broker ports",
                );
            }
        }
        if !r.has("tls") {
            r.issue("sni", "routing by server name needs [listeners.tls]");
        }
    }
    let broker_port_base = r.port("broker_port_base", 0);
    let broker_port_count = r.port("broker_port_count", 16);
    let node_id_base = r.int("node_id_base", 0, i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    if !r.has("broker_port_base") && !r.has("sni") {
        r.issue(
            "broker_port_base",
            "required: the first gateway port of the per-broker port range (or an [sni] table)",
        );
    }
    let tls = r.optional_table("tls", |t| {
        let client_auth = match t.string("client_auth", Some("none")).as_deref() {
            Some("none") | None => ClientAuthMode::None,
            Some("optional") => ClientAuthMode::Optional,
            Some("required") => ClientAuthMode::Required,
            Some(other) => {
                t.issue(
                    "client_auth",
                    &format!("must be one of none, optional, required (got {other:?})"),
                );
                ClientAuthMode::None
            }
        };
        ListenerTls {
            cert_file: t.path("cert_file", base_dir, None).unwrap_or_default(),
            key_file: t.path("key_file", base_dir, None).unwrap_or_default(),
            client_ca_file: t.opt_path("client_ca_file", base_dir),
            client_auth,
        }
    });
    let mut sasl_mechanisms = Vec::new();
    for (i, m) in r
        .string_list("sasl_mechanisms", Some(Vec::new()))
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match Mechanism::from_name(m) {
            Some(m) if sasl_mechanisms.contains(&m) => r.issue(
                &format!("sasl_mechanisms[{i}]"),
                &format!("{m} listed twice"),
            ),
            Some(m) => sasl_mechanisms.push(m),
            None => r.issue(
                &format!("sasl_mechanisms[{i}]"),
                &format!(
                    "unknown mechanism {m:?} (SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, PLAIN, GSSAPI)"
                ),
            ),
        }
    }
    let allow_plain_over_plaintext = r.boolean("allow_plain_over_plaintext", false);
    if sasl_mechanisms.contains(&Mechanism::Plain) && !allow_plain_over_plaintext && !r.has("tls") {
        r.issue(
            "sasl_mechanisms",
            "PLAIN sends passwords in the clear: enable it only on a TLS listener, or set allow_plain_over_plaintext = true",
        );
    }
    ListenerConfig {
        name,
        bind,
        advertised_host,
        sasl_mechanisms,
        broker_port_base,
        broker_port_count,
        node_id_base,
        tls,
        sni,
    }
}

/// `[listeners.sni]`: `bootstrap` (a DNS name) and `broker` (a DNS name pattern with one
/// `{node_id}`), optional `advertised_port`.
fn read_sni(t: &mut Reader<'_>) -> Option<SniRoutes> {
    let bootstrap = t.string("bootstrap", None).map(|b| b.to_ascii_lowercase());
    let broker = t.string("broker", None).map(|b| b.to_ascii_lowercase());
    let advertised_port = t.port("advertised_port", 0);
    if let Some(b) = &bootstrap {
        if let Err(e) = check_dns_name(b) {
            t.issue("bootstrap", &format!("{b:?} is not a DNS name: {e}"));
        }
    }
    let pattern = broker.and_then(|b| {
        let parts: Vec<&str> = b.split("{node_id}").collect();
        if parts.len() != 2 {
            t.issue(
                "broker",
                &format!("{b:?} must contain {{node_id}} exactly once"),
            );
            return None;
        }
        if let Err(e) = check_dns_name(&b.replace("{node_id}", "0")) {
            t.issue("broker", &format!("{b:?} is not a DNS name pattern: {e}"));
            return None;
        }
        Some((parts[0].to_string(), parts[1].to_string()))
    });
    let (bootstrap, (broker_prefix, broker_suffix)) = (bootstrap?, pattern?);
    let routes = SniRoutes {
        bootstrap,
        broker_prefix,
        broker_suffix,
        advertised_port,
    };
    if routes.broker_id(&routes.bootstrap).is_some() {
        t.issue("bootstrap", "must not be a name of the broker pattern");
    }
    Some(routes)
}

/// Letters, digits and hyphens in dot-separated labels of 1-63 characters, 253 at most, not
/// starting or ending a label with a hyphen; a wildcard is not a name a client asks for.
pub(crate) fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("length must be 1-253");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each label must be 1-63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("only letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label must not start or end with '-'");
        }
    }
    Ok(())
}

/// Cross-field checks that need the whole typed config.
fn validate(cfg: &Config, issues: &mut Vec<ConfigIssue>) {
    let mut push = |path: String, message: String| issues.push(ConfigIssue { path, message });
    let prefix = |k: usize| {
        if cfg.clusters.iter().any(|c| c.named) {
            format!("virtual_clusters[{k}].")
        } else {
            String::new()
        }
    };
    if let (Some(first), true) = (
        cfg.clusters.first(),
        cfg.audit.as_ref().is_some_and(|a| a.kafka.is_some()),
    ) {
        if first.authz.allow_all {
            // The audit topic is reserved for rules that name it; with no rules at all every client
            // could read, write or delete it.
            push(
                "audit.kafka".into(),
                format!("an audit topic needs a policy: {}authorization.allow_all = true would open it to every client", prefix(0)),
            );
        }
    }
    let mut cluster_names = HashSet::new();
    for (k, c) in cfg.clusters.iter().enumerate() {
        if !c.named {
            continue;
        }
        let p = format!("{}name", prefix(k));
        if c.name.is_empty()
            || !c
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            push(
                p,
                format!("{:?}: 1 or more of letters, digits, '.', '_', '-'", c.name),
            );
        } else if !cluster_names.insert(c.name.as_str()) {
            push(p, format!("duplicate virtual cluster name {:?}", c.name));
        }
    }
    let mut names = HashSet::new();
    // Every port the gateway may bind, to catch overlaps between listeners and ranges. Ports
    // shared by SNI listeners are claimed once per address, and checked name by name below.
    let mut claimed: Vec<(String, u16, u16)> = Vec::new();
    let mut sni_ports: Vec<(SocketAddr, Vec<(String, &ListenerConfig)>)> = Vec::new();
    for (k, c) in cfg.clusters.iter().enumerate() {
        for (i, l) in c.listeners.iter().enumerate() {
            let p = format!("{}listeners[{i}]", prefix(k));
            validate_listener(l, &p, &mut push, &mut names, &mut claimed);
            if l.sni.is_some() {
                match sni_ports
                    .iter_mut()
                    .find(|(a, _)| a.port() == l.bind.port())
                {
                    Some((a, ls)) if *a == l.bind => ls.push((p, l)),
                    Some((a, _)) => push(
                        format!("{p}.bind"),
                        format!(
                            "SNI listeners share port {} only on the same address ({a})",
                            l.bind.port()
                        ),
                    ),
                    None => {
                        if l.bind.port() != 0 {
                            claimed.push((format!("{p}.bind"), l.bind.port(), l.bind.port()));
                        }
                        sni_ports.push((l.bind, vec![(p, l)]));
                    }
                }
            } else if l.bind.port() != 0 {
                claimed.push((format!("{p}.bind"), l.bind.port(), l.bind.port()));
            }
        }
    }
    for (addr, ls) in &sni_ports {
        for (i, (pa, a)) in ls.iter().enumerate() {
            let Some(sa) = &a.sni else { continue };
            if addr.port() == 0 && sa.advertised_port == 0 {
                push(
                    format!("{pa}.bind"),
                    "an SNI listener advertises its port: bind a fixed port or set sni.advertised_port".into(),
                );
            }
            for (pb, b) in &ls[i + 1..] {
                if b.sni.as_ref().is_some_and(|sb| sa.overlaps(sb)) {
                    push(
                        format!("{pb}.sni"),
                        format!("names overlap {pa}.sni on the same port {addr}: a client's server name must pick one listener"),
                    );
                }
            }
        }
    }
    for (i, a) in claimed.iter().enumerate() {
        for b in &claimed[i + 1..] {
            if a.1 <= b.2 && b.1 <= a.2 {
                push(
                    a.0.clone(),
                    format!("ports {}-{} overlap {} ({}-{})", a.1, a.2, b.0, b.1, b.2),
                );
            }
        }
    }
    for (k, c) in cfg.clusters.iter().enumerate() {
        validate_cluster_auth(cfg, c, &prefix(k), &mut push);
    }
    // Tenants of one upstream must not nest: `acme.` would see every `acme.eu.` topic.
    for (k, a) in cfg.clusters.iter().enumerate() {
        for b in &cfg.clusters[k + 1..] {
            let (Some(ta), Some(tb)) = (&a.tenant, &b.tenant) else {
                continue;
            };
            let same_upstream = a
                .upstream
                .bootstrap_servers
                .iter()
                .any(|s| b.upstream.bootstrap_servers.contains(s));
            if same_upstream
                && (ta.prefix.starts_with(&tb.prefix) || tb.prefix.starts_with(&ta.prefix))
            {
                push(
                    format!("{}tenant.prefix", prefix(k)),
                    format!(
                        "{:?} and {:?} ({}) share an upstream and one prefix starts the other: each tenant would see the other's names",
                        ta.prefix, tb.prefix, b.name
                    ),
                );
            }
        }
    }
    let uses = |m: Mechanism| {
        cfg.clusters
            .iter()
            .flat_map(|c| &c.listeners)
            .any(|l| l.sasl_mechanisms.contains(&m))
    };
    if let Some(f) = &cfg.auth.credentials_file {
        check_file(&mut push, "authentication.credentials_file", f);
    }
    match &cfg.auth.oauthbearer {
        None if uses(Mechanism::OAuthBearer) => push(
            "authentication.oauthbearer".into(),
            "required: a listener enables OAUTHBEARER".into(),
        ),
        None => {}
        Some(o) => {
            if o.jwks_file.is_none() && o.jwks_url.is_none() {
                push(
                    "authentication.oauthbearer".into(),
                    "needs jwks_file, jwks_url or both".into(),
                );
            }
            if let Some(f) = &o.jwks_file {
                check_file(&mut push, "authentication.oauthbearer.jwks_file", f);
            }
            if let Some(u) = &o.jwks_url {
                if !u.starts_with("https://") {
                    push(
                        "authentication.oauthbearer.jwks_url".into(),
                        "must be an https:// URL".into(),
                    );
                }
                if o.jwks_ca_file.is_none() {
                    push(
                        "authentication.oauthbearer.jwks_ca_file".into(),
                        "required with jwks_url (the build has no system trust store)".into(),
                    );
                }
            }
            for (key, v) in [
                ("issuer", &o.issuer),
                ("audience", &o.audience),
                ("principal_claim", &o.principal_claim),
            ] {
                if v.is_empty() {
                    push(
                        format!("authentication.oauthbearer.{key}"),
                        "must not be empty".into(),
                    );
                }
            }
        }
    }
    validate_kerberos(cfg, uses(Mechanism::Gssapi), &mut push);
    let l = &cfg.limits;
    if l.max_frame_bytes_unauthenticated > l.max_frame_bytes {
        push(
            "limits.max_frame_bytes_unauthenticated".into(),
            "must not exceed limits.max_frame_bytes".into(),
        );
    }
    if l.max_request_bytes > l.max_frame_bytes {
        push(
            "limits.max_request_bytes".into(),
            "must not exceed limits.max_frame_bytes".into(),
        );
    }
    for (&api, &n) in &l.max_request_bytes_by_api {
        let name = kafka_protocol::messages::ApiKey::try_from(api)
            .map(|a| format!("{a:?}"))
            .unwrap_or_else(|_| api.to_string());
        let key = format!("limits.max_request_bytes_by_api.{name}");
        if n < 1024 {
            push(key, "must be at least 1024".into());
        } else if n > l.max_frame_bytes {
            push(key, "must not exceed limits.max_frame_bytes".into());
        }
    }
    for (key, v, min) in [
        ("limits.max_request_bytes", l.max_request_bytes, 1024),
        ("limits.max_decoded_bytes", l.max_decoded_bytes, 64 * 1024),
        ("limits.max_frame_bytes", l.max_frame_bytes, 1024),
        (
            "limits.max_frame_bytes_unauthenticated",
            l.max_frame_bytes_unauthenticated,
            1024,
        ),
        ("limits.max_response_bytes", l.max_response_bytes, 1024),
        ("limits.max_connections", l.max_connections, 1),
        ("limits.max_connections_per_ip", l.max_connections_per_ip, 1),
        ("limits.max_inflight_bytes", l.max_inflight_bytes, 1024),
        ("limits.max_inflight_requests", l.max_inflight_requests, 1),
    ] {
        if v < min {
            push(key.into(), format!("must be at least {min}"));
        }
    }
    // Frames are held as i32-length Kafka frames; larger limits are meaningless.
    for (key, v) in [
        ("limits.max_frame_bytes", l.max_frame_bytes),
        ("limits.max_response_bytes", l.max_response_bytes),
    ] {
        if v > i32::MAX as usize {
            push(key.into(), format!("must be at most {}", i32::MAX));
        }
    }
    for (key, d) in [
        ("timeouts.idle", cfg.timeouts.idle),
        ("timeouts.tls_handshake", cfg.timeouts.tls_handshake),
        ("timeouts.upstream_connect", cfg.timeouts.upstream_connect),
        ("timeouts.upstream_request", cfg.timeouts.upstream_request),
        ("timeouts.client_write", cfg.timeouts.client_write),
        ("timeouts.audit_write", cfg.timeouts.audit_write),
    ] {
        if d.is_zero() {
            push(key.into(), "must be greater than zero".into());
        }
    }
}

/// One listener's own checks; its broker port range joins `claimed` (its bind port is added by
/// the caller, which knows whether an SNI port is shared).
fn validate_listener(
    l: &ListenerConfig,
    p: &str,
    push: &mut impl FnMut(String, String),
    names: &mut HashSet<String>,
    claimed: &mut Vec<(String, u16, u16)>,
) {
    if l.name.is_empty() {
        push(format!("{p}.name"), "must not be empty".into());
    } else if !names.insert(l.name.clone()) {
        push(
            format!("{p}.name"),
            format!("duplicate listener name {:?}", l.name),
        );
    }
    if l.sni.is_none() {
        if l.advertised_host.is_empty() {
            push(format!("{p}.advertised_host"), "must not be empty".into());
        }
        if l.broker_port_count == 0 {
            push(
                format!("{p}.broker_port_count"),
                "must be at least 1".into(),
            );
        }
        if l.broker_port_base != 0 {
            let end = u32::from(l.broker_port_base) + u32::from(l.broker_port_count);
            if end > 65_536 {
                push(
                    format!("{p}.broker_port_count"),
                    format!(
                        "range {}+{} goes past port 65535",
                        l.broker_port_base, l.broker_port_count
                    ),
                );
            }
            let last = end.min(65_536) as u16 - 1;
            claimed.push((
                format!("{p} broker ports"),
                l.broker_port_base,
                last.max(l.broker_port_base),
            ));
        }
    }
    if let Some(tls) = &l.tls {
        check_file(push, &format!("{p}.tls.cert_file"), &tls.cert_file);
        check_file(push, &format!("{p}.tls.key_file"), &tls.key_file);
        match (&tls.client_ca_file, tls.client_auth) {
            (Some(ca), _) => check_file(push, &format!("{p}.tls.client_ca_file"), ca),
            (None, ClientAuthMode::None) => {}
            (None, _) => push(
                format!("{p}.tls.client_ca_file"),
                "required when client_auth is optional or required".into(),
            ),
        }
    }
}

/// One cluster's upstream and the credentials its listeners need (`p`: its key prefix).
fn validate_cluster_auth(
    cfg: &Config,
    c: &VirtualCluster,
    p: &str,
    push: &mut impl FnMut(String, String),
) {
    let password_based = c.listeners.iter().any(|l| {
        l.sasl_mechanisms.iter().any(|m| {
            matches!(
                m,
                Mechanism::ScramSha256 | Mechanism::ScramSha512 | Mechanism::Plain
            )
        })
    });
    if password_based && c.credentials(&cfg.auth).is_none() {
        let key = if c.named {
            format!("{p}credentials_file (or authentication.credentials_file)")
        } else {
            "authentication.credentials_file".into()
        };
        push(key, "required: a listener enables SCRAM or PLAIN".into());
    }
    if let Some(f) = &c.credentials_file {
        check_file(push, &format!("{p}credentials_file"), f);
    }
    if let Some(t) = &c.tenant {
        let legal = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        if t.prefix.is_empty() || t.prefix.len() > 200 || !legal(&t.prefix) {
            push(
                format!("{p}tenant.prefix"),
                format!("{:?}: 1-200 of letters, digits, '.', '_', '-' (what a Kafka topic name may hold)", t.prefix),
            );
        }
        if t.cluster_id.is_empty() {
            push(format!("{p}tenant.cluster_id"), "must not be empty".into());
        }
        if c.authz.allow_all {
            push(
                format!("{p}authorization.allow_all"),
                "a tenant needs a policy: the gateway resolves every topic id a request names within the tenant as it authorizes it".into(),
            );
        }
    }
    if c.upstream.bootstrap_servers.is_empty() {
        push(
            format!("{p}upstream.bootstrap_servers"),
            "at least one host:port is required".into(),
        );
    }
    for (i, s) in c.upstream.bootstrap_servers.iter().enumerate() {
        if split_host_port(s).is_none() {
            push(
                format!("{p}upstream.bootstrap_servers[{i}]"),
                format!("{s:?} is not host:port"),
            );
        }
    }
    if let Some(tls) = &c.upstream.tls {
        check_file(push, &format!("{p}upstream.tls.ca_file"), &tls.ca_file);
        match (&tls.client_cert_file, &tls.client_key_file) {
            (Some(cert), Some(key)) => {
                check_file(push, &format!("{p}upstream.tls.client_cert_file"), cert);
                check_file(push, &format!("{p}upstream.tls.client_key_file"), key);
            }
            (None, None) => {}
            _ => push(
                format!("{p}upstream.tls"),
                "client_cert_file and client_key_file go together".into(),
            ),
        }
    }
    if c.upstream.metadata_refresh.is_zero() {
        push(
            format!("{p}upstream.metadata_refresh"),
            "must be greater than zero".into(),
        );
    }
}

/// GSSAPI settings: the listeners' section present when needed, rules that parse, keytabs that
/// only their owner (and group) can read, and one keytab and krb5.conf per process (MIT's
/// library takes them from the environment, see `auth::gssapi::configure_process`).
fn validate_kerberos(cfg: &Config, listeners_use_it: bool, push: &mut impl FnMut(String, String)) {
    let section = "authentication.kerberos";
    match &cfg.auth.kerberos {
        None if listeners_use_it => {
            push(section.into(), "required: a listener enables GSSAPI".into())
        }
        None => {}
        Some(k) => {
            check_keytab(push, &format!("{section}.keytab"), &k.keytab);
            if let Some(f) = &k.krb5_conf {
                check_file(push, &format!("{section}.krb5_conf"), f);
            }
            if k.allowed_realms.is_empty() {
                push(
                    format!("{section}.allowed_realms"),
                    "must name at least one realm".into(),
                );
            }
            let realm = k.service_principal.rsplit_once('@').map_or("", |(_, r)| r);
            if !realm.is_empty() {
                if let Err(errors) =
                    crate::auth::kerberos_name::ShortNamer::new(realm, &k.principal_to_local_rules)
                {
                    for e in errors {
                        push(format!("{section}.principal_to_local_rules"), e);
                    }
                }
            }
        }
    }
    let upstream: Vec<(&str, &UpstreamKerberos)> = cfg
        .clusters
        .iter()
        .filter_map(|c| {
            let k = c.upstream.sasl.as_ref()?.kerberos.as_ref()?;
            Some((c.name.as_str(), k))
        })
        .collect();
    for (name, k) in &upstream {
        let key = if cfg.clusters.iter().any(|c| c.named) {
            format!("virtual_clusters.{name}.upstream.sasl")
        } else {
            "upstream.sasl".to_string()
        };
        check_keytab(push, &format!("{key}.keytab"), &k.keytab);
        if !k.principal.contains('@') {
            push(
                format!("{key}.principal"),
                "needs its realm, e.g. gateway@EXAMPLE.COM".into(),
            );
        }
        if let Some(f) = &k.krb5_conf {
            check_file(push, &format!("{key}.krb5_conf"), f);
        }
    }
    // One process, one client keytab and one krb5.conf.
    let keytabs: std::collections::BTreeSet<&Path> =
        upstream.iter().map(|(_, k)| k.keytab.as_path()).collect();
    if keytabs.len() > 1 {
        push(
            "upstream.sasl.keytab".into(),
            format!("every GSSAPI upstream must use the same keytab (the Kerberos library reads one per process), found {keytabs:?}"),
        );
    }
    let confs: std::collections::BTreeSet<&Path> = upstream
        .iter()
        .filter_map(|(_, k)| k.krb5_conf.as_deref())
        .chain(
            cfg.auth
                .kerberos
                .iter()
                .filter_map(|k| k.krb5_conf.as_deref()),
        )
        .collect();
    if confs.len() > 1 {
        push(
            "authentication.kerberos.krb5_conf".into(),
            format!("one krb5.conf per gateway (the Kerberos library reads one per process), found {confs:?}"),
        );
    }
}

/// A keytab holds long-term keys: like a private key, never readable by everyone.
fn check_keytab(push: &mut impl FnMut(String, String), key: &str, path: &Path) {
    if path.as_os_str().is_empty() {
        return; // already reported as missing
    }
    match std::fs::metadata(path) {
        Err(e) => push(key.into(), format!("cannot read {}: {e}", path.display())),
        Ok(m) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o007 != 0 {
                push(
                    key.into(),
                    format!(
                        "{} is readable or writable by every user (mode {mode:o}): chmod 600 (or 640 for a service group)",
                        path.display()
                    ),
                );
            }
        }
    }
}

fn check_file(push: &mut impl FnMut(String, String), key: &str, path: &Path) {
    if path.as_os_str().is_empty() {
        return; // already reported as missing
    }
    if let Err(e) = std::fs::metadata(path) {
        push(key.into(), format!("cannot read {}: {e}", path.display()));
    }
}

/// The config text with virtual cluster `cluster`'s `bootstrap_servers` replaced by `servers`
/// (`kafka-gateway cluster switch`), everything else (comments included) as it was. A config
/// without `[[virtual_clusters]]` has one cluster, `default`, whose `[upstream]` is edited. The
/// caller validates the result with [`Config::parse`] before writing it.
pub fn with_upstream_servers(
    text: &str,
    cluster: &str,
    servers: &[String],
) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let header = |l: &str| {
        let t = l.trim();
        (t.starts_with('[')).then(|| t.split('#').next().unwrap_or("").trim().to_string())
    };
    let named = lines
        .iter()
        .any(|l| header(l).as_deref() == Some("[[virtual_clusters]]"));
    // The line range of the upstream table to edit.
    let mut in_cluster = !named && cluster == "default";
    let mut table = String::new();
    let mut target: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(h) = header(line) {
            if named && h == "[[virtual_clusters]]" {
                // The cluster's name comes on the lines after its header, before any sub-table.
                in_cluster = lines[i + 1..]
                    .iter()
                    .take_while(|l| header(l).is_none())
                    .any(|l| {
                        let mut kv = l.splitn(2, '=');
                        kv.next().map(str::trim) == Some("name")
                            && kv.next().map(|v| v.trim().trim_matches('"')) == Some(cluster)
                    });
            }
            table = h;
        } else if in_cluster
            && (table == "[upstream]" || table == "[virtual_clusters.upstream]")
            && line.trim_start().starts_with("bootstrap_servers")
        {
            let mut end = i;
            while !lines[end].contains(']') && end + 1 < lines.len() {
                end += 1;
            }
            target = Some((i, end));
            break;
        }
        i += 1;
    }
    let Some((start, end)) = target else {
        return Err(format!(
            "no bootstrap_servers for virtual cluster {cluster:?} in the config"
        ));
    };
    let quoted: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    let mut out: Vec<String> = lines[..start].iter().map(|l| l.to_string()).collect();
    out.push(format!("bootstrap_servers = [{}]", quoted.join(", ")));
    out.extend(lines[end + 1..].iter().map(|l| l.to_string()));
    Ok(out.join("\n") + "\n")
}

/// Splits `host:port` (with `[v6]:port`), returning None when it is not of that form.
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host.to_string(), port))
}

/// Parses `500ms`, `10s`, `5m`, `1h` (a number and a unit, nothing else).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1_000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// Trail files kept by default (`audit.retain_files`).
pub const DEFAULT_RETAIN_FILES: usize = 160;

/// `[limits.max_request_bytes_by_api]`: API names as Kafka spells them (`Metadata`,
/// `OffsetCommit`), case and underscores ignored (`offset_commit`), each mapped to a size.
fn read_api_sizes(r: &mut Reader<'_>) -> BTreeMap<i16, usize> {
    fn norm(name: &str) -> String {
        name.chars()
            .filter(|c| *c != '_')
            .flat_map(char::to_lowercase)
            .collect()
    }
    let mut out = BTreeMap::new();
    for key in r.keys() {
        let api = kafka_protocol::messages::ApiKey::iter()
            .find(|api| norm(&format!("{api:?}")) == norm(&key));
        let size = r.size(&key, 0);
        match api {
            Some(api) => {
                if out.insert(api as i16, size).is_some() {
                    r.issue(&key, &format!("{api:?} is named more than once"));
                }
            }
            None => r.issue(
                &key,
                "not a Kafka API name (such as Metadata or OffsetCommit)",
            ),
        }
    }
    out
}

impl Limits {
    /// Largest request frame allowed for `api_key` once the client has authenticated.
    pub fn request_limit(&self, api_key: i16) -> usize {
        use kafka_protocol::messages::ApiKey;
        if let Some(&n) = self.max_request_bytes_by_api.get(&api_key) {
            return n;
        }
        match ApiKey::try_from(api_key) {
            Ok(ApiKey::Produce | ApiKey::JoinGroup | ApiKey::SyncGroup) => self.max_frame_bytes,
            _ => self.max_request_bytes,
        }
    }
}

/// Walks one TOML table, recording every problem with its path and every key it read, so that
/// [`Reader::finish`] can report the keys nobody asked for.
pub struct Reader<'a> {
    table: &'a toml::Table,
    path: String,
    sink: &'a mut Vec<ConfigIssue>,
    used: BTreeSet<String>,
}

impl<'a> Reader<'a> {
    pub fn new(table: &'a toml::Table, path: String, sink: &'a mut Vec<ConfigIssue>) -> Self {
        Reader {
            table,
            path,
            sink,
            used: BTreeSet::new(),
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn issue(&mut self, key: &str, message: &str) {
        let path = self.key_path(key);
        self.sink.push(ConfigIssue {
            path,
            message: message.to_string(),
        });
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Reports a key that is present but not allowed here (and so not also as unknown).
    pub fn reject(&mut self, key: &str, message: &str) {
        self.used.insert(key.to_string());
        self.issue(key, message);
    }

    /// This table's keys, for tables whose keys are data (such as API names).
    pub fn keys(&self) -> Vec<String> {
        self.table.keys().cloned().collect()
    }

    fn get(&mut self, key: &str) -> Option<&'a toml::Value> {
        self.used.insert(key.to_string());
        self.table.get(key)
    }

    fn type_issue(&mut self, key: &str, want: &str, got: &toml::Value) {
        self.issue(key, &format!("expected {want}, found {}", got.type_str()));
    }

    pub fn string(&mut self, key: &str, default: Option<&str>) -> Option<String> {
        match self.get(key) {
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.type_issue(key, "a string", v);
                None
            }
            None => match default {
                Some(d) => Some(d.to_string()),
                None => {
                    self.issue(key, "required");
                    None
                }
            },
        }
    }

    pub fn opt_string(&mut self, key: &str) -> Option<String> {
        match self.get(key) {
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.type_issue(key, "a string", v);
                None
            }
            None => None,
        }
    }

    pub fn secret(&mut self, key: &str) -> Option<Secret> {
        self.opt_string(key).map(Secret)
    }

    pub fn string_list(&mut self, key: &str, default: Option<Vec<String>>) -> Option<Vec<String>> {
        match self.get(key) {
            Some(toml::Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        toml::Value::String(s) => out.push(s.clone()),
                        other => self.issue(
                            &format!("{key}[{i}]"),
                            &format!("expected a string, found {}", other.type_str()),
                        ),
                    }
                }
                Some(out)
            }
            Some(v) => {
                self.type_issue(key, "an array of strings", v);
                None
            }
            None => {
                if default.is_none() {
                    self.issue(key, "required");
                }
                default
            }
        }
    }

    pub fn int(&mut self, key: &str, default: i64, min: i64, max: i64) -> i64 {
        match self.get(key) {
            Some(toml::Value::Integer(n)) if (min..=max).contains(n) => *n,
            Some(toml::Value::Integer(n)) => {
                self.issue(key, &format!("{n} is out of range {min}..={max}"));
                default
            }
            Some(v) => {
                self.type_issue(key, "an integer", v);
                default
            }
            None => default,
        }
    }

    pub fn size(&mut self, key: &str, default: usize) -> usize {
        self.int(key, default as i64, 0, i64::MAX) as usize
    }

    pub fn port(&mut self, key: &str, default: u16) -> u16 {
        self.int(key, i64::from(default), 0, 65_535) as u16
    }

    pub fn boolean(&mut self, key: &str, default: bool) -> bool {
        match self.get(key) {
            Some(toml::Value::Boolean(b)) => *b,
            Some(v) => {
                self.type_issue(key, "true or false", v);
                default
            }
            None => default,
        }
    }

    pub fn duration(&mut self, key: &str, default: Duration) -> Duration {
        match self.get(key) {
            Some(toml::Value::String(s)) => parse_duration(s).unwrap_or_else(|| {
                self.issue(
                    key,
                    &format!("{s:?} is not a duration like \"500ms\", \"10s\", \"5m\", \"1h\""),
                );
                default
            }),
            Some(v) => {
                self.type_issue(key, "a duration string such as \"10s\"", v);
                default
            }
            None => default,
        }
    }

    pub fn socket_addr(&mut self, key: &str) -> Option<SocketAddr> {
        let s = self.string(key, None)?;
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.issue(key, &format!("{s:?} is not an IP:port address"));
                None
            }
        }
    }

    pub fn opt_socket_addr(&mut self, key: &str) -> Option<SocketAddr> {
        let s = self.opt_string(key)?;
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.issue(key, &format!("{s:?} is not an IP:port address"));
                None
            }
        }
    }

    pub fn path(&mut self, key: &str, base: &Path, default: Option<&str>) -> Option<PathBuf> {
        self.string(key, default).map(|s| base.join(s))
    }

    pub fn opt_path(&mut self, key: &str, base: &Path) -> Option<PathBuf> {
        self.opt_string(key).map(|s| base.join(s))
    }

    /// Reads a required sub-table.
    pub fn table<T>(&mut self, key: &str, f: impl FnOnce(&mut Reader<'_>) -> T) -> Option<T> {
        match self.get(key) {
            Some(toml::Value::Table(t)) => {
                let path = self.key_path(key);
                let mut sub = Reader::new(t, path, self.sink);
                let out = f(&mut sub);
                sub.finish();
                Some(out)
            }
            Some(v) => {
                self.type_issue(key, "a table", v);
                None
            }
            None => None,
        }
    }

    /// Reads an optional sub-table, using an empty table (and so every default) when it is absent.
    pub fn table_or_default<T>(&mut self, key: &str, f: impl FnOnce(&mut Reader<'_>) -> T) -> T {
        static EMPTY: std::sync::OnceLock<toml::Table> = std::sync::OnceLock::new();
        match self.get(key) {
            Some(toml::Value::Table(t)) => {
                let path = self.key_path(key);
                let mut sub = Reader::new(t, path, self.sink);
                let out = f(&mut sub);
                sub.finish();
                out
            }
            other => {
                if let Some(v) = other {
                    self.type_issue(key, "a table", v);
                }
                let empty = EMPTY.get_or_init(toml::Table::new);
                let path = self.key_path(key);
                let mut sub = Reader::new(empty, path, self.sink);
                f(&mut sub)
            }
        }
    }

    pub fn optional_table<T>(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut Reader<'_>) -> T,
    ) -> Option<T> {
        if self.has(key) {
            self.table(key, f)
        } else {
            self.used.insert(key.to_string());
            None
        }
    }

    pub fn array_of_tables(&mut self, key: &str, mut f: impl FnMut(&mut Reader<'_>)) {
        match self.get(key) {
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{}[{i}]", self.key_path(key));
                    match item {
                        toml::Value::Table(t) => {
                            let mut sub = Reader::new(t, path, self.sink);
                            f(&mut sub);
                            sub.finish();
                        }
                        other => self.sink.push(ConfigIssue {
                            path,
                            message: format!("expected a table, found {}", other.type_str()),
                        }),
                    }
                }
            }
            Some(v) => self.type_issue(key, "an array of tables ([[...]])", v),
            None => {}
        }
    }

    /// Reports every key of this table that no reader asked for.
    pub fn finish(self) {
        for key in self.table.keys() {
            if !self.used.contains(key) {
                let path = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                self.sink.push(ConfigIssue {
                    path,
                    message: "unknown key".into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;

    const MINIMAL: &str = r#"
        [[listeners]]
        name = "plain"
        bind = "127.0.0.1:9092"
        broker_port_base = 9100

        [upstream]
        bootstrap_servers = ["127.0.0.1:19092"]

        [authorization]
        allow_all = true
    "#;

    fn issues(text: &str) -> Vec<ConfigIssue> {
        match Config::parse(text, Path::new(".")) {
            Err(ParseError::Invalid(i)) => i,
            Err(ParseError::Syntax(s)) => panic!("syntax error: {s}"),
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn shadow_policy_files_need_an_enforced_policy_and_resolve_like_policy_files() {
        let with = |authz: &str| MINIMAL.replace("allow_all = true", authz);
        let found = issues(&with(
            "allow_all = true\nshadow_policy_files = [\"next.policy\"]",
        ));
        assert!(
            found.iter().any(|i| i.to_string().contains(
                "authorization.shadow_policy_files: a shadow policy is compared with an enforced one"
            )),
            "{found:?}"
        );
        let text = with(
            "model = \"model.conf\"\npolicy_files = [\"acl.policy\"]\n\
             shadow_policy_files = [\"next.policy\"]",
        );
        let cfg = Config::parse(&text, Path::new("/etc/kgw")).expect("valid");
        assert_eq!(
            cfg.clusters[0].authz.shadow_policy_files,
            vec![PathBuf::from("/etc/kgw/next.policy")]
        );
        let cfg = Config::parse(MINIMAL, Path::new(".")).expect("valid");
        assert!(cfg.clusters[0].authz.shadow_policy_files.is_empty());
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let cfg = Config::parse(MINIMAL, Path::new(".")).expect("valid");
        assert_eq!(cfg.clusters[0].listeners[0].advertised_host, "localhost");
        assert_eq!(cfg.clusters[0].listeners[0].broker_port(0), Some(9100));
        assert_eq!(cfg.clusters[0].listeners[0].broker_port(15), Some(9115));
        assert_eq!(cfg.clusters[0].listeners[0].broker_port(16), None);
        assert_eq!(cfg.clusters[0].listeners[0].broker_port(-1), None);
        assert_eq!(cfg.clusters[0].listeners[0].node_for_port(9103), Some(3));
        assert_eq!(cfg.limits.max_frame_bytes, 100 * 1024 * 1024);
        assert_eq!(cfg.limits.max_frame_bytes_unauthenticated, 512 * 1024);
        assert_eq!(cfg.timeouts.idle, Duration::from_secs(600));
    }

    #[test]
    fn audit_retention_is_bounded_by_default() {
        let dir = std::env::temp_dir().join(format!("kgw-retain-{}", std::process::id()));
        let text = format!("{MINIMAL}\n[audit]\ndir = {dir:?}\n");
        let cfg = Config::parse(&text, Path::new(".")).expect("valid");
        let audit = cfg.audit.as_ref().expect("audit configured");
        assert_eq!(audit.writer.retain_files, 160);
        assert_eq!(
            audit.warn_free_bytes,
            4 * 64 * 1024 * 1024,
            "four files' worth"
        );
    }

    #[test]
    fn an_audit_topic_is_refused_without_a_policy_to_reserve_it_in() {
        let dir = std::env::temp_dir().join(format!("kgw-reserve-{}", std::process::id()));
        let text = format!("{MINIMAL}\n[audit]\ndir = {dir:?}\n[audit.kafka]\n");
        let err =
            Config::parse(&text, Path::new(".")).expect_err("allow_all opens the audit topic");
        assert!(format!("{err:?}").contains("audit.kafka"), "{err:?}");
    }

    #[test]
    fn request_limits_default_small_except_for_apis_that_carry_data() {
        let cfg = Config::parse(MINIMAL, Path::new(".")).expect("valid");
        let l = &cfg.limits;
        assert_eq!(l.max_request_bytes, 1024 * 1024);
        assert_eq!(l.max_decoded_bytes, 1024 * 1024);
        assert_eq!(l.request_limit(ApiKey::Produce as i16), 100 * 1024 * 1024);
        assert_eq!(l.request_limit(ApiKey::SyncGroup as i16), 100 * 1024 * 1024);
        assert_eq!(l.request_limit(ApiKey::Metadata as i16), 1024 * 1024);
        assert_eq!(l.request_limit(-7), 1024 * 1024);

        let text = format!(
            "{MINIMAL}\n[limits]\nmax_request_bytes = 65536\n\
             [limits.max_request_bytes_by_api]\nMetadata = 4194304\noffset_commit = 2048\n"
        );
        let cfg = Config::parse(&text, Path::new(".")).expect("valid");
        let l = &cfg.limits;
        assert_eq!(l.request_limit(ApiKey::Metadata as i16), 4 * 1024 * 1024);
        assert_eq!(l.request_limit(ApiKey::OffsetCommit as i16), 2048);
        assert_eq!(l.request_limit(ApiKey::FindCoordinator as i16), 65536);
        assert_eq!(l.request_limit(ApiKey::Produce as i16), 100 * 1024 * 1024);
    }

    #[test]
    fn bad_request_limits_are_reported_by_name() {
        let text = format!(
            "{MINIMAL}\n[limits]\nmax_frame_bytes = 2000000\nmax_request_bytes = 3000000\n\
             max_decoded_bytes = 10\n[limits.max_request_bytes_by_api]\nMetadta = 4096\n\
             Produce = 10\nFetch = 9000000\nListOffsets = \"big\"\n"
        );
        let found: Vec<String> = issues(&text)
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        for want in [
            "limits.max_request_bytes: must not exceed limits.max_frame_bytes",
            "limits.max_decoded_bytes: must be at least 65536",
            "limits.max_request_bytes_by_api.Metadta: not a Kafka API name",
            "limits.max_request_bytes_by_api.Produce: must be at least 1024",
            "limits.max_request_bytes_by_api.Fetch: must not exceed limits.max_frame_bytes",
            "limits.max_request_bytes_by_api.ListOffsets: expected an integer",
        ] {
            assert!(
                found.iter().any(|f| f.starts_with(want)),
                "missing {want:?} in {found:?}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            colour = "blue"
            [[listeners]]
            name = "a"
            bind = "not an address"
            broker_port_base = 9100
            typo_key = 1
            [listeners.tls]
            cert_file = "/nonexistent/cert.pem"
            key_file = "/nonexistent/key.pem"
            client_auth = "sometimes"
            [upstream]
            bootstrap_servers = ["nohostport"]
            [limits]
            max_frame_bytes = "big"
            [timeouts]
            idle = "10 parsecs"
        "#;
        let found: Vec<String> = issues(text).iter().map(|i| i.path.clone()).collect();
        for want in [
            "colour",
            "listeners[0].bind",
            "listeners[0].typo_key",
            "listeners[0].tls.cert_file",
            "listeners[0].tls.key_file",
            "listeners[0].tls.client_auth",
            "upstream.bootstrap_servers[0]",
            "limits.max_frame_bytes",
            "timeouts.idle",
        ] {
            assert!(
                found.iter().any(|f| f == want),
                "missing {want} in {found:?}"
            );
        }
    }

    #[test]
    fn overlapping_ports_are_rejected() {
        let text = r#"
            [[listeners]]
            name = "a"
            bind = "127.0.0.1:9105"
            broker_port_base = 9100
            [upstream]
            bootstrap_servers = ["b:1"]
        "#;
        let found = issues(text);
        assert!(
            found.iter().any(|i| i.message.contains("overlap")),
            "{found:?}"
        );
    }

    #[test]
    fn missing_sections_are_reported() {
        let found: Vec<String> = issues("").iter().map(|i| i.path.clone()).collect();
        assert!(found.contains(&"listeners".to_string()), "{found:?}");
        assert!(
            found.contains(&"authorization".to_string()),
            "no silent default: {found:?}"
        );
        assert!(found.contains(&"upstream".to_string()), "{found:?}");
    }

    #[test]
    fn authentication_settings_are_cross_checked() {
        let text = r#"
            [[listeners]]
            name = "a"
            bind = "127.0.0.1:9092"
            broker_port_base = 9100
            sasl_mechanisms = ["PLAIN", "OAUTHBEARER", "SCRAM-SHA-256", "GSSAPI", "KERBEROS"]
            [upstream]
            bootstrap_servers = ["b:1"]
            [upstream.sasl]
            mechanism = "PLAIN"
            username = "gw"
        "#;
        let found: Vec<String> = issues(text).iter().map(|i| format!("{i}")).collect();
        let has = |s: &str| found.iter().any(|f| f.contains(s));
        assert!(
            has("listeners[0].sasl_mechanisms: PLAIN sends passwords in the clear"),
            "{found:?}"
        );
        assert!(
            has("listeners[0].sasl_mechanisms[4]: unknown mechanism \"KERBEROS\""),
            "{found:?}"
        );
        assert!(
            has("authentication.kerberos: required: a listener enables GSSAPI"),
            "{found:?}"
        );
        assert!(
            has("authentication.credentials_file: required"),
            "{found:?}"
        );
        assert!(has("authentication.oauthbearer: required"), "{found:?}");
        assert!(has("upstream.sasl.password: required"), "{found:?}");
        assert!(
            has("upstream.sasl.mechanism: PLAIN towards the brokers needs [upstream.tls]"),
            "{found:?}"
        );
    }

    #[test]
    fn upstream_password_is_redacted_in_the_summary() {
        let text = r#"
            [[listeners]]
            name = "a"
            bind = "127.0.0.1:9092"
            broker_port_base = 9100
            [upstream]
            bootstrap_servers = ["b:1"]
            [upstream.sasl]
            mechanism = "SCRAM-SHA-512"
            username = "gw"
            password = "hunter2"
            [authorization]
            allow_all = true
        "#;
        let cfg = Config::parse(text, Path::new(".")).expect("valid");
        let summary = cfg.redacted_summary();
        assert!(!summary.contains("hunter2"), "{summary}");
        assert!(summary.contains("<redacted>"));
    }

    #[test]
    fn durations_parse_strictly() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a:1"), Some(("a".into(), 1)));
        assert_eq!(split_host_port("[::1]:9092"), Some(("::1".into(), 9092)));
        assert_eq!(split_host_port("a"), None);
        assert_eq!(split_host_port(":1"), None);
        assert_eq!(split_host_port("a:0"), None);
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
    }

    /// One virtual cluster with an SNI listener on port 9093 (`extra` goes into its [sni]
    /// table) and whatever listeners `more` declares; the certificate files only need to exist.
    fn sni_cluster(name: &str, octet: u8, extra: &str, more: &str) -> String {
        let cert = std::env::current_exe().expect("exe");
        format!(
            r#"
            [[virtual_clusters]]
            name = "{name}"
            [virtual_clusters.upstream]
            bootstrap_servers = ["10.0.{octet}.1:9092"]
            [virtual_clusters.authorization]
            allow_all = true
            [[virtual_clusters.listeners]]
            name = "{name}-sni"
            bind = "0.0.0.0:9093"
            [virtual_clusters.listeners.tls]
            cert_file = {cert:?}
            key_file = {cert:?}
            [virtual_clusters.listeners.sni]
            bootstrap = "bootstrap.{name}.kafka.example"
            broker = "broker-{{node_id}}.{name}.kafka.example"
            {extra}
            {more}
            "#
        )
    }

    /// Two clusters, one SNI port shared by both plus a port-per-broker listener in the first.
    fn two_clusters(extra_a: &str, extra_b: &str) -> String {
        let plain = "[[virtual_clusters.listeners]]\nname = \"eu-plain\"\nbind = \"0.0.0.0:9092\"\nbroker_port_base = 9100\n";
        let (eu, us) = (
            sni_cluster("eu", 0, extra_a, plain),
            sni_cluster("us", 1, extra_b, ""),
        );
        format!("{eu}{us}")
    }

    fn has_issue(found: &[ConfigIssue], path: &str, msg: &str) -> bool {
        found
            .iter()
            .any(|i| i.path == path && i.message.contains(msg))
    }

    #[test]
    fn kerberos_settings_are_checked_all_at_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kgw-krb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let open = dir.join("open.keytab");
        let closed = dir.join("closed.keytab");
        for (f, mode) in [(&open, 0o644), (&closed, 0o600)] {
            std::fs::write(f, b"\x05\x02").expect("keytab");
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(mode)).expect("mode");
        }
        let gssapi_listener = MINIMAL.replace(
            "broker_port_base = 9100",
            "broker_port_base = 9100\nsasl_mechanisms = [\"GSSAPI\"]",
        );
        let found = issues(&gssapi_listener);
        assert!(
            has_issue(
                &found,
                "authentication.kerberos",
                "a listener enables GSSAPI"
            ),
            "{found:?}"
        );
        let text = format!(
            "{gssapi_listener}\n[authentication.kerberos]\nservice_principal = \"kafka/gw\"\n\
             keytab = {open:?}\nprincipal_to_local_rules = [\"RULE:[1:$1](.*)s/x/y/\", \"NOPE\"]\n\
             allowed_realms = []\n\
             [upstream.sasl]\nmechanism = \"GSSAPI\"\nprincipal = \"gateway\"\nkeytab = {open:?}\n\
             username = \"x\"\n"
        );
        let found = issues(&text);
        for (path, msg) in [
            (
                "authentication.kerberos.service_principal",
                "needs its realm",
            ),
            (
                "authentication.kerberos.keytab",
                "readable or writable by every user",
            ),
            (
                "authentication.kerberos.allowed_realms",
                "at least one realm",
            ),
            ("upstream.sasl.keytab", "readable or writable by every user"),
            ("upstream.sasl.principal", "needs its realm"),
            ("upstream.sasl.username", "not used with GSSAPI"),
        ] {
            assert!(has_issue(&found, path, msg), "{path}: {found:?}");
        }
        let text = format!(
            "{gssapi_listener}\n[authentication.kerberos]\nservice_principal = \"kafka/gw@EXAMPLE.COM\"\n\
             keytab = {closed:?}\nprincipal_to_local_rules = [\"RULE:[1:$1](.*)s/x/y/\", \"NOPE\"]\n"
        );
        let found = issues(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            has_issue(
                &found,
                "authentication.kerberos.principal_to_local_rules",
                "NOPE"
            ),
            "{found:?}"
        );
        let fixed = text.replace(", \"NOPE\"", "");
        let cfg = Config::parse(&fixed, Path::new(".")).expect("valid");
        let k = cfg.auth.kerberos.expect("kerberos");
        assert_eq!(
            k.allowed_realms,
            ["EXAMPLE.COM"],
            "the service's realm by default"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn virtual_clusters_share_an_sni_port_and_keep_their_own_upstreams() {
        let cfg = Config::parse(&two_clusters("", ""), Path::new(".")).expect("valid");
        let names: Vec<_> = cfg.clusters.iter().map(|c| c.label()).collect();
        assert_eq!(names, [Some("eu"), Some("us")]);
        assert_eq!(
            cfg.clusters[1].upstream.bootstrap_servers,
            ["10.0.1.1:9092"]
        );
        let eu = &cfg.clusters[0].listeners[0];
        let sni = eu.sni.as_ref().expect("sni");
        assert_eq!(
            eu.advertise(7),
            Some(("broker-7.eu.kafka.example".into(), 9093))
        );
        assert_eq!(
            sni.route("BOOTSTRAP.eu.kafka.example"),
            Some(SniRoute::Bootstrap)
        );
        assert_eq!(
            sni.route("broker-12.eu.kafka.example"),
            Some(SniRoute::Node(12))
        );
        assert_eq!(
            sni.route("broker-0.eu.kafka.example"),
            Some(SniRoute::Node(0))
        );
        for other in [
            "broker-12.us.kafka.example",
            "broker-012.eu.kafka.example",
            "broker--1.eu.kafka.example",
            "broker-.eu.kafka.example",
            "broker-99999999999.eu.kafka.example",
            "broker-1x.eu.kafka.example",
            "eu.kafka.example",
            "",
        ] {
            assert_eq!(sni.route(other), None, "{other:?}");
        }
        // The single-cluster form is one unnamed cluster: records and metrics stay as they were.
        let single = Config::parse(MINIMAL, Path::new(".")).expect("valid");
        assert_eq!(single.clusters.len(), 1);
        assert_eq!(single.clusters[0].label(), None);
    }

    #[test]
    fn virtual_cluster_mistakes_are_all_reported() {
        let text = two_clusters("", "")
            .replace("name = \"us\"", "name = \"eu\"")
            .replace(
                "broker-{node_id}.us.kafka.example",
                "broker-{node_id}.eu.kafka.example",
            )
            .replace("bind = \"0.0.0.0:9092\"", "bind = \"0.0.0.0:9093\"")
            + "\n[upstream]\nbootstrap_servers = [\"x:1\"]\n";
        let found = issues(&text);
        let has = |path: &str, msg: &str| has_issue(&found, path, msg);
        assert!(has("upstream", "each cluster has its own"), "{found:#?}");
        assert!(has("virtual_clusters[1].name", "duplicate"), "{found:#?}");
        assert!(
            has("virtual_clusters[1].listeners[0].sni", "overlap"),
            "{found:#?}"
        );
        assert!(
            found.iter().any(|i| i.message.contains("overlap")
                && (i.path.contains("listeners[1].bind")
                    || i.message.contains("listeners[1].bind"))),
            "a port-per-broker listener on the SNI port: {found:#?}"
        );
        assert!(
            !found.iter().any(|i| i.message == "unknown key"),
            "{found:#?}"
        );
    }

    #[test]
    fn sni_listener_settings_are_checked() {
        let text = two_clusters("advertised_port = 443", "")
            .replace(
                "bootstrap = \"bootstrap.us.kafka.example\"",
                "bootstrap = \"bad_name.us\"",
            )
            .replace(
                "broker-{node_id}.us.kafka.example",
                "broker.us.kafka.example",
            );
        let found = issues(&text);
        let has = |path: &str, msg: &str| has_issue(&found, path, msg);
        assert!(
            has(
                "virtual_clusters[1].listeners[0].sni.bootstrap",
                "not a DNS name"
            ),
            "{found:#?}"
        );
        assert!(
            has(
                "virtual_clusters[1].listeners[0].sni.broker",
                "exactly once"
            ),
            "{found:#?}"
        );
        let no_tls = two_clusters("", "").replacen(
            "[virtual_clusters.listeners.tls]",
            "[virtual_clusters.listeners.tlsx]",
            1,
        );
        assert!(issues(&no_tls)
            .iter()
            .any(|i| i.message.contains("needs [listeners.tls]")));
        let ports = two_clusters("", "").replacen(
            "broker = \"broker-{node_id}.eu.kafka.example\"",
            "broker = \"broker-{node_id}.eu.kafka.example\"\n[virtual_clusters.listeners.x]",
            1,
        );
        assert!(!issues(&ports).is_empty());
        let with_range = MINIMAL.replace(
            "broker_port_base = 9100",
            "broker_port_base = 9100\n[listeners.sni]\nbootstrap = \"b.example\"\nbroker = \"b{node_id}.example\"",
        );
        let found = issues(&with_range);
        assert!(
            found
                .iter()
                .any(|i| i.path == "listeners[0].broker_port_base"
                    && i.message.contains("no per-broker ports")),
            "{found:#?}"
        );
        let bootstrap_is_a_broker = two_clusters("", "").replace(
            "bootstrap = \"bootstrap.eu.kafka.example\"",
            "bootstrap = \"broker-1.eu.kafka.example\"",
        );
        assert!(issues(&bootstrap_is_a_broker).iter().any(|i| i
            .message
            .contains("must not be a name of the broker pattern")));
    }

    #[test]
    fn tenants_need_a_policy_a_legal_prefix_and_no_nesting() {
        let tenant = |prefix: &str| format!("[virtual_clusters.tenant]\nprefix = \"{prefix}\"\n");
        let text = two_clusters("", "")
            .replacen(
                "[virtual_clusters.upstream]",
                &format!("{}[virtual_clusters.upstream]", tenant("acme.")),
                1,
            )
            .replacen("10.0.1.1:9092", "10.0.0.1:9092", 1)
            .replacen(
                "name = \"us\"",
                &format!("name = \"us\"\n{}", tenant("acme.us/")),
                1,
            );
        let found = issues(&text);
        let has = |path: &str, msg: &str| has_issue(&found, path, msg);
        assert!(
            has(
                "virtual_clusters[0].authorization.allow_all",
                "needs a policy"
            ),
            "{found:#?}"
        );
        assert!(
            has("virtual_clusters[1].tenant.prefix", "1-200 of letters"),
            "{found:#?}"
        );
        assert!(
            has(
                "virtual_clusters[0].tenant.prefix",
                "one prefix starts the other"
            ),
            "{found:#?}"
        );
        let ok = two_clusters("", "").replacen(
            "[virtual_clusters.upstream]",
            &format!("{}[virtual_clusters.upstream]", tenant("acme.")),
            1,
        );
        assert!(
            Config::parse(&ok, Path::new(".")).is_err(),
            "allow_all with a tenant is refused"
        );
        let with_policy = ok.replacen(
            "allow_all = true",
            "model = \"model.conf\"\npolicy_files = [\"tenant.policy\"]",
            1,
        );
        let cfg = Config::parse(&with_policy, Path::new(".")).expect("a tenant with a policy");
        let t = cfg.clusters[0].tenant.as_ref().expect("tenant");
        assert_eq!((t.prefix.as_str(), t.cluster_id.as_str()), ("acme.", "eu"));
    }

    #[test]
    fn a_switch_edits_only_that_cluster_s_servers() {
        let text = two_clusters("", "");
        let out = with_upstream_servers(&text, "us", &["10.9.9.9:9092".into()]).expect("edited");
        let cfg = Config::parse(&out, Path::new(".")).expect("still valid");
        assert_eq!(
            cfg.clusters[1].upstream.bootstrap_servers,
            ["10.9.9.9:9092"]
        );
        assert_eq!(
            cfg.clusters[0].upstream.bootstrap_servers,
            ["10.0.0.1:9092"]
        );
        assert!(with_upstream_servers(&text, "nope", &[]).is_err());
        let single = with_upstream_servers(MINIMAL, "default", &["h:1".into(), "h:2".into()])
            .expect("single cluster");
        let cfg = Config::parse(&single, Path::new(".")).expect("valid");
        assert_eq!(cfg.clusters[0].upstream.bootstrap_servers, ["h:1", "h:2"]);
        let multi = MINIMAL.replace(
            "bootstrap_servers = [\"127.0.0.1:19092\"]",
            "bootstrap_servers = [\n  \"a:1\",\n  \"b:2\",\n]",
        );
        let out = with_upstream_servers(&multi, "default", &["c:3".into()]).expect("multi-line");
        let cfg = Config::parse(&out, Path::new(".")).expect("valid");
        assert_eq!(cfg.clusters[0].upstream.bootstrap_servers, ["c:3"]);
    }
}
