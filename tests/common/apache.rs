//! Apache Kafka 4.4 as the tests' upstream: KRaft clusters on loopback with free ports, started by
//! tests/kafka/KafkaHost.java.
//!
//! A single-node cluster ([`KafkaCluster::start`]) lives inside the one JVM each test binary starts
//! on first use (the "host"): a JVM costs seconds of CPU to start, a cluster inside a warm one a
//! fraction of a second, so every test gets a fresh cluster of its own and tests never see each
//! other's topics, groups or ACLs. A multi-node cluster ([`KafkaMultiCluster`]) runs one JVM per node,
//! because its tests kill -9 and restart nodes. Every JVM halts when its stdin closes, i.e. when the
//! test binary exits, however it exits: no test leaves a JVM behind.
//!
//! Every node has these listeners (all on 127.0.0.1):
//! - `PLAINTEXT`: principal `User:ANONYMOUS`, a super user (test setup; a test may advertise another
//!   port for it, a fault proxy's, with [`ClusterOptions::advertise_plaintext`]);
//! - `SASL_PLAINTEXT` and `SASL_SSL`: SCRAM-SHA-256 and SCRAM-SHA-512, users created at format time
//!   (`kafka-storage format --add-scram`), `User:gateway` a super user;
//! - `SSL`: client certificates required; the principal is the certificate's CN (`User:gateway` for
//!   [`KafkaCerts::client`]);
//! - `REAUTH`: SASL_PLAINTEXT with `connections.max.reauth.ms` set ([`ClusterOptions::reauth_ms`]);
//! - `INTERNAL` (PLAINTEXT) for traffic between brokers, so that a proxy in front of `PLAINTEXT`
//!   never carries it, and `CONTROLLER`;
//! - `GSSAPI` only with [`ClusterOptions::kerberos`]: SASL_PLAINTEXT with Kerberos (SASL/GSSAPI) as
//!   its only mechanism, service principal `kafka/HOST@REALM` (HOST `localhost` unless
//!   [`ClusterOptions::kerberos_host`] says otherwise), advertised as HOST: a Kerberos client asks
//!   for a ticket to `kafka/<the host it connects to>`. Principals map to Kafka users by
//!   `sasl.kerberos.principal.to.local.rules` (default: `name@REALM` -> `User:name`, so the
//!   gateway's `gateway@REALM` is the super user `User:gateway`).
//!
//! `StandardAuthorizer` is on everywhere: a principal that is not a super user needs ACLs.
//!
//! Kerberos configuration is global to a JVM (`java.security.krb5.conf`, read once): the host JVM
//! gets the `krb5.conf` of the first cluster of its test binary, so a test binary that uses
//! Kerberos starts its one KDC (`super::kdc::Kdc`) before its first cluster, and every cluster of
//! that binary uses that realm; a cluster asking for another `krb5.conf` panics.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, InitProducerIdRequest,
    InitProducerIdResponse, MetadataRequest, MetadataResponse, OffsetFetchRequest,
    OffsetFetchResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::{free_port, gateway_cli, tools, RawClient, Upstream};

/// The gateway's own identity on the brokers, a super user (SCRAM password [`GATEWAY_PASSWORD`],
/// or the certificate [`KafkaCerts::client`]).
pub const GATEWAY_USER: &str = "gateway";
pub const GATEWAY_PASSWORD: &str = "gateway-secret";

/// How long a cluster may take to start before the test fails (a loaded 2-core CI machine).
const START_WITHIN: Duration = Duration::from_secs(90);

/// The listeners of every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KafkaListener {
    Plaintext,
    SaslPlaintext,
    SaslSsl,
    Ssl,
    Reauth,
    /// SASL_PLAINTEXT with GSSAPI (Kerberos); only on clusters started with
    /// [`ClusterOptions::kerberos`].
    SaslGssapi,
}

impl KafkaListener {
    /// The listeners every node has ([`KafkaListener::SaslGssapi`] only when asked for).
    const ALL: [KafkaListener; 5] = [
        KafkaListener::Plaintext,
        KafkaListener::SaslPlaintext,
        KafkaListener::SaslSsl,
        KafkaListener::Ssl,
        KafkaListener::Reauth,
    ];

    fn name(self) -> &'static str {
        match self {
            KafkaListener::Plaintext => "PLAINTEXT",
            KafkaListener::SaslPlaintext => "SASL_PLAINTEXT",
            KafkaListener::SaslSsl => "SASL_SSL",
            KafkaListener::Ssl => "SSL",
            KafkaListener::Reauth => "REAUTH",
            KafkaListener::SaslGssapi => "GSSAPI",
        }
    }

    fn protocol(self) -> &'static str {
        match self {
            KafkaListener::Reauth | KafkaListener::SaslGssapi => "SASL_PLAINTEXT",
            l => l.name(),
        }
    }

    /// The SCRAM listeners.
    fn is_sasl(self) -> bool {
        matches!(
            self,
            KafkaListener::SaslPlaintext | KafkaListener::SaslSsl | KafkaListener::Reauth
        )
    }
}

/// What a test needs of its cluster beyond the defaults.
#[derive(Clone)]
pub struct ClusterOptions {
    /// SCRAM users besides `gateway` (name, password), created for both SCRAM mechanisms.
    pub users: Vec<(String, String)>,
    /// `connections.max.reauth.ms` of the REAUTH listener.
    pub reauth_ms: u64,
    /// Extra broker properties (`key=value` lines), appended last so they win.
    pub extra: Vec<String>,
    /// The port the PLAINTEXT listener advertises instead of its own (a proxy in front of it).
    pub advertise_plaintext: Option<u16>,
    /// The `GSSAPI` listener's Kerberos setup ([`ClusterOptions::kerberos`]); none by default.
    pub kerberos: Option<KafkaKerberos>,
}

/// The default host part of Kafka's Kerberos service principal (`kafka/localhost@REALM`), and the
/// host the `GSSAPI` listener advertises.
pub const KERBEROS_HOST: &str = "localhost";

/// The `GSSAPI` listener of a cluster: the broker logs in from a keytab as `principal`.
#[derive(Clone, Debug)]
pub struct KafkaKerberos {
    /// The realm's `krb5.conf`, given to the JVM as `-Djava.security.krb5.conf` when it starts.
    pub krb5_conf: PathBuf,
    /// The keytab of `principal`.
    pub keytab: PathBuf,
    /// The host of the service principal, which the listener advertises (and binds 127.0.0.1).
    pub host: String,
    /// The broker's service principal, `kafka/HOST@REALM`.
    pub principal: String,
    /// `sasl.kerberos.principal.to.local.rules`; `None` for Kafka's `DEFAULT` (`name@REALM` and
    /// `name/host@REALM` -> `name`, for the default realm of `krb5_conf`).
    pub principal_to_local_rules: Option<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            users: Vec::new(),
            reauth_ms: 10_000,
            extra: Vec::new(),
            advertise_plaintext: None,
            kerberos: None,
        }
    }
}

impl ClusterOptions {
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_string(), password.to_string()));
        self
    }

    pub fn prop(mut self, line: &str) -> Self {
        self.extra.push(line.to_string());
        self
    }

    pub fn advertise_plaintext(mut self, port: u16) -> Self {
        self.advertise_plaintext = Some(port);
        self
    }

    /// Adds the `GSSAPI` listener, Kerberos in `kdc`'s realm: the service principal
    /// `kafka/localhost@REALM` gets a keytab (the same keys for every cluster of the realm).
    /// Start the KDC before the test binary's first cluster (see the module doc).
    pub fn kerberos(self, kdc: &super::kdc::Kdc) -> Self {
        self.kerberos_host(kdc, KERBEROS_HOST)
    }

    /// [`ClusterOptions::kerberos`] with the service principal `kafka/HOST@REALM`, the listener
    /// advertised as `HOST:port` (e.g. `127.0.0.1`, for a broker whose principal differs from a
    /// gateway's `kafka/localhost` on the same machine). Note that the Java client takes the
    /// service host from a reverse lookup of the address it connected to (`localhost` for
    /// 127.0.0.1 here), so only `localhost` suits it.
    pub fn kerberos_host(mut self, kdc: &super::kdc::Kdc, host: &str) -> Self {
        let principal = kdc.principal(&format!("kafka/{host}"));
        self.kerberos = Some(KafkaKerberos {
            krb5_conf: kdc.krb5_conf(),
            keytab: kdc.add_keytab(&principal),
            host: host.to_string(),
            principal,
            principal_to_local_rules: None,
        });
        self
    }

    /// `sasl.kerberos.principal.to.local.rules` of the `GSSAPI` listener (after
    /// [`ClusterOptions::kerberos`]), e.g. `RULE:[1:$1@$0](.*@KGW\.TEST)s/@.*//,DEFAULT`.
    pub fn kerberos_rules(mut self, rules: &str) -> Self {
        self.kerberos
            .as_mut()
            .expect("kerberos_rules: call ClusterOptions::kerberos first")
            .principal_to_local_rules = Some(rules.to_string());
        self
    }

    fn krb5_conf(&self) -> Option<&Path> {
        self.kerberos.as_ref().map(|k| k.krb5_conf.as_path())
    }

    /// The host listener `l` advertises: `127.0.0.1`, or the Kerberos service host for `GSSAPI`.
    fn advertised_host(&self, l: KafkaListener) -> String {
        match (l, &self.kerberos) {
            (KafkaListener::SaslGssapi, Some(k)) => k.host.clone(),
            _ => "127.0.0.1".to_string(),
        }
    }

    fn scram_args(&self) -> Vec<String> {
        let mut users = vec![(GATEWAY_USER.to_string(), GATEWAY_PASSWORD.to_string())];
        users.extend(self.users.iter().cloned());
        let mut args = Vec::new();
        for (name, password) in users {
            assert!(
                !name.contains([' ', ',', ']']) && !password.contains([' ', ',', ']']),
                "SCRAM user {name:?}: kafka-storage's --add-scram syntax cannot hold ' ', ',' or ']'"
            );
            for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
                args.push(format!("{mechanism}=[name={name},password={password}]"));
            }
        }
        args
    }
}

/// The certificates every broker of a test binary uses: a CA, a server certificate for 127.0.0.1
/// and localhost, and a client certificate with CN=gateway. Made by `kafka-gateway certs dev`.
pub struct KafkaCerts {
    pub dir: PathBuf,
}

impl KafkaCerts {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// Client certificate (CN=gateway) and its key.
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("client.pem"), self.dir.join("client-key.pem"))
    }
    /// Kafka's PEM keystore: the server's private key and certificate in one file.
    fn server_keystore(&self) -> PathBuf {
        self.dir.join("server-keystore.pem")
    }
}

fn make_certs(dir: &Path) -> KafkaCerts {
    let out = gateway_cli(
        &[
            "certs",
            "dev",
            "--force",
            "--client-cn",
            GATEWAY_USER,
            "--dir",
            dir.to_str().expect("utf-8 path"),
        ],
        None,
    );
    assert!(out.ok, "certs dev for the brokers: {}", out.stderr);
    let certs = KafkaCerts {
        dir: dir.to_path_buf(),
    };
    let key = std::fs::read_to_string(dir.join("server-key.pem")).expect("server key");
    let cert = std::fs::read_to_string(dir.join("server.pem")).expect("server cert");
    std::fs::write(certs.server_keystore(), format!("{key}{cert}")).expect("keystore");
    certs
}

/// One node's ports.
#[derive(Debug, Clone)]
struct NodePorts {
    listeners: BTreeMap<KafkaListener, u16>,
    internal: u16,
    controller: u16,
}

impl NodePorts {
    fn free(opts: &ClusterOptions) -> NodePorts {
        let mut listeners: BTreeMap<KafkaListener, u16> = KafkaListener::ALL
            .iter()
            .map(|l| (*l, free_port()))
            .collect();
        if opts.kerberos.is_some() {
            listeners.insert(KafkaListener::SaslGssapi, free_port());
        }
        NodePorts {
            listeners,
            internal: free_port(),
            controller: free_port(),
        }
    }
}

/// The role a node plays in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Combined,
    Broker,
    Controller,
}

/// One node of a cluster, as its server.properties describes it.
struct NodeSpec<'a> {
    node_id: i32,
    role: Role,
    ports: &'a NodePorts,
    /// `controller.quorum.voters`.
    voters: &'a str,
    data: &'a Path,
    /// Replication factor of internal and default topics.
    replication: u16,
}

/// server.properties of one node.
fn node_properties(node: &NodeSpec, certs: &KafkaCerts, opts: &ClusterOptions) -> String {
    let NodeSpec {
        node_id,
        role,
        ports,
        voters,
        data,
        replication,
    } = *node;
    let mut p: Vec<String> = Vec::new();
    let roles = match role {
        Role::Combined => "broker,controller",
        Role::Broker => "broker",
        Role::Controller => "controller",
    };
    p.push(format!("process.roles={roles}"));
    p.push(format!("node.id={node_id}"));
    p.push(format!("controller.quorum.voters={voters}"));
    p.push("controller.listener.names=CONTROLLER".into());
    let mut listeners = Vec::new();
    let mut advertised = Vec::new();
    let mut map = vec!["CONTROLLER:PLAINTEXT".to_string()];
    if role != Role::Controller {
        for (l, port) in &ports.listeners {
            listeners.push(format!("{}://127.0.0.1:{port}", l.name()));
            let shown = match (l, opts.advertise_plaintext) {
                (KafkaListener::Plaintext, Some(front)) => front,
                _ => *port,
            };
            advertised.push(format!(
                "{}://{}:{shown}",
                l.name(),
                opts.advertised_host(*l)
            ));
            map.push(format!("{}:{}", l.name(), l.protocol()));
        }
        listeners.push(format!("INTERNAL://127.0.0.1:{}", ports.internal));
        advertised.push(format!("INTERNAL://127.0.0.1:{}", ports.internal));
        map.push("INTERNAL:PLAINTEXT".into());
        p.push("inter.broker.listener.name=INTERNAL".into());
    }
    if role != Role::Broker {
        listeners.push(format!("CONTROLLER://127.0.0.1:{}", ports.controller));
    }
    p.push(format!("listeners={}", listeners.join(",")));
    if !advertised.is_empty() {
        p.push(format!("advertised.listeners={}", advertised.join(",")));
    }
    p.push(format!("listener.security.protocol.map={}", map.join(",")));
    p.push(format!("log.dirs={}", data.display()));

    // Security: the authorizer Kafka ships, SCRAM on the SASL listeners, mTLS on SSL.
    p.push("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".into());
    p.push(format!("super.users=User:ANONYMOUS;User:{GATEWAY_USER}"));
    p.push("sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512".into());
    for l in KafkaListener::ALL.iter().filter(|l| l.is_sasl()) {
        for m in ["scram-sha-256", "scram-sha-512"] {
            p.push(format!(
                "listener.name.{}.{m}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
                l.name().to_lowercase()
            ));
        }
    }
    p.push(format!(
        "listener.name.reauth.connections.max.reauth.ms={}",
        opts.reauth_ms
    ));
    if let Some(k) = &opts.kerberos {
        // GSSAPI on its own listener only; the SCRAM listeners keep their mechanisms.
        p.push("listener.name.gssapi.sasl.enabled.mechanisms=GSSAPI".into());
        p.push(format!(
            "listener.name.gssapi.gssapi.sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required \
             useKeyTab=true storeKey=true keyTab=\"{}\" principal=\"{}\";",
            k.keytab.display(),
            k.principal
        ));
        p.push("sasl.kerberos.service.name=kafka".into());
        if let Some(rules) = &k.principal_to_local_rules {
            // (server.properties is read by java.util.Properties: a backslash escapes)
            p.push(format!(
                "sasl.kerberos.principal.to.local.rules={}",
                rules.replace('\\', "\\\\")
            ));
        }
    }
    p.push("ssl.keystore.type=PEM".into());
    p.push(format!(
        "ssl.keystore.location={}",
        certs.server_keystore().display()
    ));
    p.push("ssl.truststore.type=PEM".into());
    p.push(format!("ssl.truststore.location={}", certs.ca().display()));
    p.push("listener.name.ssl.ssl.client.auth=required".into());
    // The CN wherever it sits in the subject (the RDN order of `certs dev` certificates in RFC 2253
    // form puts it last).
    p.push(r"ssl.principal.mapping.rules=RULE:^(.*,)?CN=([^,]+)(,.*)?$/$2/,DEFAULT".into());

    // Internal topics sized for the cluster; few partitions so that a first group or transaction
    // does not create 50 partitions on a 2-core machine (the count changes nothing a client sees
    // beyond which coordinator it is sent to).
    let rf = replication;
    let min_isr = if rf >= 3 { 2 } else { 1 };
    p.push(format!("offsets.topic.replication.factor={rf}"));
    p.push("offsets.topic.num.partitions=4".into());
    p.push(format!("transaction.state.log.replication.factor={rf}"));
    p.push(format!("transaction.state.log.min.isr={min_isr}"));
    p.push("transaction.state.log.num.partitions=4".into());
    p.push(format!(
        "share.coordinator.state.topic.replication.factor={rf}"
    ));
    p.push(format!("share.coordinator.state.topic.min.isr={min_isr}"));
    p.push("share.coordinator.state.topic.num.partitions=4".into());
    p.push(format!("default.replication.factor={rf}"));
    p.push(format!("min.insync.replicas={min_isr}"));
    p.push("group.initial.rebalance.delay.ms=0".into());
    // Test records carry fixed timestamps from 2023 (so that two clusters get identical batches):
    // with the default 7-day retention, a cleaner pass (first after 30 s) would delete them.
    p.push("log.retention.ms=-1".into());

    // A small footprint: every cluster of a test binary shares the JVM's heap and 2 cores.
    p.push("num.network.threads=2".into());
    p.push("num.io.threads=2".into());
    p.push("background.threads=2".into());
    p.push("num.replica.fetchers=1".into());
    p.push("num.recovery.threads.per.data.dir=1".into());
    p.push("log.cleaner.threads=1".into());
    p.push("log.cleaner.dedupe.buffer.size=2097152".into());
    p.extend(opts.extra.iter().cloned());
    p.join("\n") + "\n"
}

fn log4j_config(dir: &Path) -> PathBuf {
    let path = dir.join("log4j2.properties");
    // Warnings and errors, plus each server's start and stop lines; to stderr, because stdout
    // carries the host's answers.
    std::fs::write(
        &path,
        "status = error\n\
         appender.err.type = Console\n\
         appender.err.name = err\n\
         appender.err.target = SYSTEM_ERR\n\
         appender.err.layout.type = PatternLayout\n\
         appender.err.layout.pattern = [%d] %p %m (%c)%n\n\
         rootLogger.level = warn\n\
         rootLogger.appenderRef.err.ref = err\n\
         logger.raft.name = kafka.server.KafkaRaftServer\n\
         logger.raft.level = info\n",
    )
    .expect("log4j config");
    path
}

/// A JVM running tests/kafka/KafkaHost.java; its answers arrive as lines on its stdout.
struct Jvm {
    child: Child,
    stdin: ChildStdin,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
    log: PathBuf,
}

impl Jvm {
    /// `krb5_conf`: the realm of the JVM's Kerberos logins and acceptors, read once by the JVM.
    fn spawn(
        args: &[String],
        heap_mb: u32,
        log: &Path,
        log4j: &Path,
        krb5_conf: Option<&Path>,
    ) -> Jvm {
        let tools = tools();
        let mut java = Command::new("java");
        if let Some(conf) = krb5_conf {
            java.arg(format!("-Djava.security.krb5.conf={}", conf.display()));
        }
        let mut child = java
            .arg(format!("-Xmx{heap_mb}m"))
            .args([
                "-Xms64m",
                "-XX:+UseSerialGC",
                // C1 only: the JIT competes with the tests for 2 cores, and C2 pays off after
                // minutes, not in a test's seconds.
                "-XX:TieredStopAtLevel=1",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
            ])
            .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
            .args(["-cp", &tools.kafka_cp, "KafkaHost"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .expect("kafka log file"),
            ))
            .spawn()
            .expect("start java (KafkaHost)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let lines: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let (list, cv) = &*sink;
                list.lock().expect("lines").push(line);
                cv.notify_all();
            }
        });
        Jvm {
            child,
            stdin,
            lines,
            log: log.to_path_buf(),
        }
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .expect("write to KafkaHost");
    }

    /// Takes the first answer starting with one of `prefixes`, waiting at most `within`.
    fn answer(&mut self, prefixes: &[&str], within: Duration) -> String {
        let start = Instant::now();
        let (list, cv) = &*self.lines;
        let mut lines = list.lock().expect("lines");
        loop {
            if let Some(i) = lines
                .iter()
                .position(|l| prefixes.iter().any(|p| l.starts_with(p)))
            {
                return lines.remove(i);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the Kafka JVM exited ({status}); log {}:\n{}",
                    self.log.display(),
                    log_tail(&self.log)
                );
            }
            let left = within.checked_sub(start.elapsed()).unwrap_or_else(|| {
                panic!(
                    "no answer {prefixes:?} from the Kafka JVM within {within:?}; log {}:\n{}",
                    self.log.display(),
                    log_tail(&self.log)
                )
            });
            lines = cv
                .wait_timeout(lines, left.min(Duration::from_millis(500)))
                .expect("lines")
                .0;
        }
    }

    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    super::tail(&text, 6000).to_string()
}

/// The per-test-binary host: one JVM, its certificates and its directory.
struct Host {
    jvm: Mutex<Jvm>,
    dir: PathBuf,
    certs: &'static KafkaCerts,
    log4j: PathBuf,
    /// The JVM's `java.security.krb5.conf`, if its first cluster asked for Kerberos.
    krb5_conf: Option<PathBuf>,
}

/// Directories of hosts whose test binary has exited are removed by the next one.
fn remove_stale_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("kgw-kafka-") {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn host() -> &'static Host {
    host_with(None)
}

/// The host, started with `krb5_conf` if this is its first use; a cluster that needs Kerberos
/// panics if the host runs without it or with another realm's (a JVM reads it once).
fn host_with(krb5_conf: Option<&Path>) -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    let host = HOST.get_or_init(|| {
        let root = std::env::temp_dir();
        remove_stale_dirs(&root);
        let dir = root.join(format!("kgw-kafka-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("kafka host dir");
        let certs = kafka_certs();
        let log4j = log4j_config(&dir);
        let log = dir.join("host.log");
        let started = Instant::now();
        let jvm = Jvm::spawn(
            &["host".to_string(), dir.display().to_string()],
            1536,
            &log,
            &log4j,
            krb5_conf,
        );
        eprintln!(
            "[kafka] host JVM pid {} for this test binary (log {}), spawned in {:?}",
            jvm.child.id(),
            log.display(),
            started.elapsed()
        );
        Host {
            jvm: Mutex::new(jvm),
            dir,
            certs,
            log4j,
            krb5_conf: krb5_conf.map(Path::to_path_buf),
        }
    });
    if let Some(wanted) = krb5_conf {
        assert_eq!(
            host.krb5_conf.as_deref(),
            Some(wanted),
            "this test binary's Kafka JVM was started with krb5.conf {:?}: a JVM reads it once, so \
             start the one KDC of a Kerberos test binary before its first cluster and use it for all",
            host.krb5_conf
        );
    }
    host
}

/// The certificates the brokers of this test binary use (made once, without starting the host).
pub fn kafka_certs() -> &'static KafkaCerts {
    static CERTS: OnceLock<KafkaCerts> = OnceLock::new();
    CERTS.get_or_init(|| {
        let root = std::env::temp_dir();
        remove_stale_dirs(&root);
        let dir = root
            .join(format!("kgw-kafka-{}", std::process::id()))
            .join("certs");
        std::fs::create_dir_all(&dir).expect("kafka certs dir");
        make_certs(&dir)
    })
}

fn cluster_id() -> String {
    // KRaft cluster ids are a UUID in Kafka's base64 form (22 characters).
    // (RandomState is seeded randomly per instance: random enough for an id, no extra crate.)
    use std::hash::{BuildHasher, Hasher};
    loop {
        let mut bytes = Vec::with_capacity(16);
        for _ in 0..2 {
            let h = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            bytes.extend_from_slice(&h.to_be_bytes());
        }
        let id = base64_url(&bytes);
        // An id starting with '-' reads as an option to `kafka-storage format -t` (1 in 64; it
        // failed a CI run twice). Kafka's own Uuid.randomUuid() skips such ids for that reason.
        if !id.starts_with('-') {
            return id;
        }
    }
}

fn base64_url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Waits until the node(s) `expect` are registered and unfenced, as Metadata over PLAINTEXT shows.
fn wait_ready(bootstrap: SocketAddr, expect: &[i32], within: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::from("no answer");
    while start.elapsed() < within {
        match std::net::TcpStream::connect_timeout(&bootstrap, Duration::from_millis(500)) {
            Ok(stream) => {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut c = RawClient::from_stream(stream);
                let mut req = MetadataRequest::default();
                req.topics = Some(Vec::new());
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    c.request::<_, MetadataResponse>(ApiKey::Metadata, 12, &req)
                })) {
                    Ok(resp) => {
                        let ids: Vec<i32> = resp.brokers.iter().map(|b| b.node_id.0).collect();
                        if expect.iter().all(|id| ids.contains(id)) && resp.controller_id.0 >= 0 {
                            return Ok(());
                        }
                        last = format!("brokers {ids:?}, controller {}", resp.controller_id.0);
                    }
                    Err(_) => last = "metadata request failed".into(),
                }
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last)
}

/// Partitions of `__consumer_offsets` and `__transaction_state` (see [`node_properties`]).
const COORDINATOR_PARTITIONS: i32 = 4;

/// Kafka's coordinator partition for a group or transactional id: `abs(key.hashCode()) % n`,
/// with Java's String.hashCode over UTF-16 code units.
fn coordinator_partition(key: &str) -> i32 {
    let h = key
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    (h & 0x7fff_ffff) % COORDINATOR_PARTITIONS
}

/// One key per coordinator partition.
fn warmup_keys(prefix: &str) -> Vec<String> {
    let mut keys: Vec<Option<String>> = vec![None; COORDINATOR_PARTITIONS as usize];
    for n in 0.. {
        let key = format!("{prefix}-{n}");
        let slot = &mut keys[coordinator_partition(&key) as usize];
        if slot.is_none() {
            *slot = Some(key);
        }
        if keys.iter().all(Option::is_some) {
            break;
        }
    }
    keys.into_iter().flatten().collect()
}

/// Retries `f` while it answers one of Kafka's "not ready yet" codes: COORDINATOR_LOAD_IN_PROGRESS
/// (14), COORDINATOR_NOT_AVAILABLE (15), NOT_COORDINATOR (16), NOT_LEADER_OR_FOLLOWER (6),
/// LEADER_NOT_AVAILABLE (5), CONCURRENT_TRANSACTIONS (51) and REQUEST_TIMED_OUT (7). Returns the
/// first other answer (which may be an error a test expects). This is what every Kafka client does.
pub fn until_ready<T>(what: &str, mut f: impl FnMut() -> (i16, T)) -> T {
    const NOT_YET: [i16; 7] = [5, 6, 7, 14, 15, 16, 51];
    let start = Instant::now();
    loop {
        let (code, value) = f();
        if !NOT_YET.contains(&code) {
            return value;
        }
        assert!(
            start.elapsed() < START_WITHIN,
            "{what}: still error {code} after {START_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Makes a new cluster look like one that has run for a while: the group and transaction
/// coordinators exist and have loaded every partition, and the producer id manager has ids. A
/// fresh cluster answers the first requests of each kind with "not ready yet" codes, which real
/// clients retry; tests that send one raw request and check its answer would see those instead.
fn warm_up(bootstrap: SocketAddr, node: &dyn Fn(i32) -> SocketAddr) {
    let mut c = RawClient::connect(bootstrap);
    let sb = |s: &str| StrBytes::from_string(s.to_string());
    for (key_type, prefix) in [(0i8, "kgw-warmup-group"), (1, "kgw-warmup-txn")] {
        let keys = warmup_keys(prefix);
        for key in &keys {
            // The coordinator of this key's partition (any broker of a multi-node cluster), reached
            // at its own port: what it advertises may be a proxy that is not there yet.
            let coordinator = until_ready("FindCoordinator", || {
                let mut req = FindCoordinatorRequest::default();
                req.key_type = key_type;
                req.coordinator_keys = vec![sb(key)];
                let resp: FindCoordinatorResponse = c.request(ApiKey::FindCoordinator, 4, &req);
                match resp.coordinators.first() {
                    Some(r) => (r.error_code, r.node_id.0),
                    None => (-1, -1),
                }
            });
            let mut k = RawClient::connect(node(coordinator));
            if key_type == 0 {
                until_ready("OffsetFetch", || {
                    let mut g = OffsetFetchRequestGroup::default();
                    g.group_id = GroupId(sb(key));
                    g.topics = None;
                    let mut req = OffsetFetchRequest::default();
                    req.groups = vec![g];
                    let resp: OffsetFetchResponse = k.request(ApiKey::OffsetFetch, 8, &req);
                    (resp.groups.first().map_or(-1, |g| g.error_code), ())
                });
            } else {
                until_ready("InitProducerId (transactional)", || {
                    let resp = init_producer_id(&mut k, Some(key));
                    (resp.error_code, ())
                });
            }
        }
    }
    until_ready("InitProducerId (idempotent)", || {
        (init_producer_id(&mut c, None).error_code, ())
    });
}

fn init_producer_id(c: &mut RawClient, txn: Option<&str>) -> InitProducerIdResponse {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = txn.map(|t| TransactionalId(StrBytes::from_string(t.to_string())));
    req.transaction_timeout_ms = 60_000;
    req.producer_id = ProducerId(-1);
    req.producer_epoch = -1;
    c.request(ApiKey::InitProducerId, 4, &req)
}

/// A fresh single-node Apache Kafka cluster (combined broker and controller, node id 1) inside
/// this test binary's host JVM; stopped and deleted when dropped.
pub struct KafkaCluster {
    name: String,
    ports: NodePorts,
    /// The host of the `GSSAPI` listener's service principal, if it has one.
    kerberos_host: Option<String>,
    pub node_id: i32,
    pub cluster_id: String,
    dir: PathBuf,
}

impl KafkaCluster {
    pub const NODE_ID: i32 = 1;

    pub fn start() -> KafkaCluster {
        KafkaCluster::start_with(ClusterOptions::default())
    }

    pub fn start_with(opts: ClusterOptions) -> KafkaCluster {
        // A port chosen free can still be taken before the broker binds it (by another process on
        // the machine); the broker then fails to start, and a new set of ports is tried.
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            match KafkaCluster::try_start(&opts) {
                Ok(c) => return c,
                Err(e) if attempt < ATTEMPTS => eprintln!("[kafka] {e}; trying other ports"),
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!("the last attempt panics")
    }

    fn try_start(opts: &ClusterOptions) -> Result<KafkaCluster, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let host = host_with(opts.krb5_conf());
        let name = format!("c{}", N.fetch_add(1, Ordering::Relaxed));
        let dir = host.dir.join(&name);
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let ports = NodePorts::free(opts);
        let voters = format!("{}@127.0.0.1:{}", Self::NODE_ID, ports.controller);
        let data = dir.join("data");
        let spec = NodeSpec {
            node_id: Self::NODE_ID,
            role: Role::Combined,
            ports: &ports,
            voters: &voters,
            data: &data,
            replication: 1,
        };
        let props = node_properties(&spec, host.certs, opts);
        let props_file = dir.join("server.properties");
        std::fs::write(&props_file, props).expect("server.properties");
        let cluster_id = cluster_id();
        let started = Instant::now();
        let (answer, rss) = {
            let mut jvm = host.jvm.lock().unwrap_or_else(|e| e.into_inner());
            let mut command = format!("start {name} {} {cluster_id}", props_file.display());
            for arg in opts.scram_args() {
                command.push(' ');
                command.push_str(&arg);
            }
            jvm.send(&command);
            let answer = jvm.answer(
                &[&format!("started {name} "), &format!("failed {name} ")],
                START_WITHIN,
            );
            (answer, jvm.rss_kib())
        };
        if !answer.starts_with("started") {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!("Kafka cluster {name}: {answer}"));
        }
        let cluster = KafkaCluster {
            name,
            ports,
            kerberos_host: opts.kerberos.as_ref().map(|k| k.host.clone()),
            node_id: Self::NODE_ID,
            cluster_id,
            dir,
        };
        if let Err(last) = wait_ready(
            cluster.socket(KafkaListener::Plaintext),
            &[Self::NODE_ID],
            START_WITHIN,
        ) {
            panic!(
                "Kafka cluster {} never became ready ({last}); host log:\n{}",
                cluster.name,
                log_tail(&host.dir.join("host.log"))
            );
        }
        let ready = started.elapsed();
        let own = cluster.socket(KafkaListener::Plaintext);
        warm_up(own, &|_| own);
        eprintln!(
            "[kafka] cluster {} ready in {ready:?}, coordinators warm after {:?} ({answer}: format ms, start ms); host JVM RSS {} MiB",
            cluster.name,
            started.elapsed(),
            rss / 1024
        );
        Ok(cluster)
    }

    pub fn port(&self, l: KafkaListener) -> u16 {
        self.ports.listeners[&l]
    }

    pub fn socket(&self, l: KafkaListener) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(l)))
    }

    /// `host:port` as the listener advertises it (the Kerberos service host, `localhost` unless
    /// chosen otherwise, for [`KafkaListener::SaslGssapi`]).
    pub fn bootstrap(&self, l: KafkaListener) -> String {
        let host = match (l, &self.kerberos_host) {
            (KafkaListener::SaslGssapi, Some(h)) => h.as_str(),
            _ => "127.0.0.1",
        };
        format!("{host}:{}", self.port(l))
    }

    /// The `GSSAPI` listener's service principal host (`localhost` by default); `None` without
    /// [`ClusterOptions::kerberos`].
    pub fn kerberos_host(&self) -> Option<&str> {
        self.kerberos_host.as_deref()
    }

    /// The PLAINTEXT address (a super user's view), as `Broker::addr` gives for tansu.
    pub fn addr(&self) -> String {
        self.bootstrap(KafkaListener::Plaintext)
    }

    /// What a gateway config needs to front this cluster over PLAINTEXT.
    pub fn upstream(&self) -> Upstream {
        Upstream::new(self.addr(), self.node_id, 1)
    }

    /// The same over `l`, with the gateway logging in as `User:gateway` (SCRAM-SHA-512) on the SASL
    /// listeners and presenting its CN=gateway certificate on SSL. For
    /// [`KafkaListener::SaslGssapi`] only the bootstrap (`localhost:port` by default): the test adds
    /// its Kerberos `[upstream.*]` table to `tables`.
    pub fn upstream_via(&self, l: KafkaListener) -> Upstream {
        upstream_section(self.bootstrap(l), self.node_id, 1, l)
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        let host = host();
        let mut jvm = host.jvm.lock().unwrap_or_else(|e| e.into_inner());
        jvm.send(&format!("stop {}", self.name));
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            jvm.answer(&[&format!("stopped {} ", self.name)], START_WITHIN)
        }));
        drop(jvm);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!(
                "Kafka cluster {} kept in {}; host log {}",
                self.name,
                self.dir.display(),
                host.dir.join("host.log").display()
            );
        }
    }
}

/// The `[upstream]` section for a Kafka listener, with the gateway's credentials for it.
fn upstream_section(
    bootstrap: String,
    node_id_base: i32,
    count: u16,
    l: KafkaListener,
) -> Upstream {
    let certs = kafka_certs();
    let mut up = Upstream::new(bootstrap, node_id_base, count);
    if matches!(l, KafkaListener::SaslSsl | KafkaListener::Ssl) {
        up.tables
            .push_str(&format!("[upstream.tls]\nca_file = {:?}\n", certs.ca()));
        if l == KafkaListener::Ssl {
            let (cert, key) = certs.client();
            up.tables.push_str(&format!(
                "client_cert_file = {cert:?}\nclient_key_file = {key:?}\n"
            ));
        }
        up.tables.push('\n');
    }
    if l.is_sasl() {
        up.tables.push_str(&format!(
            "[upstream.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"{GATEWAY_USER}\"\npassword = \"{GATEWAY_PASSWORD}\"\n\n"
        ));
    }
    up
}

/// One node of a [`KafkaMultiCluster`]: its own JVM, so that it can be killed and restarted.
pub struct KafkaNode {
    pub node_id: i32,
    role: Role,
    ports: NodePorts,
    props: PathBuf,
    jvm: Option<Jvm>,
    log: PathBuf,
    /// The JVM's `java.security.krb5.conf` ([`ClusterOptions::kerberos`]).
    krb5_conf: Option<PathBuf>,
}

impl KafkaNode {
    fn spawn(&mut self, cluster_id: &str, scram: &[String], log4j: &Path) {
        let mut args = vec![
            "node".to_string(),
            self.props.display().to_string(),
            cluster_id.to_string(),
        ];
        args.extend(scram.iter().cloned());
        let mut jvm = Jvm::spawn(&args, 384, &self.log, log4j, self.krb5_conf.as_deref());
        let answer = jvm.answer(&["started node"], START_WITHIN);
        eprintln!(
            "[kafka] node {} ({:?}) {answer}; RSS {} MiB",
            self.node_id,
            self.role,
            jvm.rss_kib() / 1024
        );
        self.jvm = Some(jvm);
    }

    pub fn socket(&self, l: KafkaListener) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.listeners[&l]))
    }

    pub fn is_running(&self) -> bool {
        self.jvm.is_some()
    }
}

/// A KRaft cluster of one controller (node id 100) and brokers 1..=n, one JVM per node, with
/// replication factor 3 (min ISR 2) where it has three brokers or more.
pub struct KafkaMultiCluster {
    pub cluster_id: String,
    pub controller: KafkaNode,
    pub brokers: Vec<KafkaNode>,
    voters: String,
    opts: ClusterOptions,
    replication: u16,
    dir: super::TempDir,
    log4j: PathBuf,
}

impl KafkaMultiCluster {
    pub const CONTROLLER_ID: i32 = 100;

    pub fn start(brokers: i32, opts: ClusterOptions) -> KafkaMultiCluster {
        let dir = super::TempDir::new("kafka-multi");
        let log4j = log4j_config(dir.path());
        let controller_ports = NodePorts::free(&opts);
        let voters = format!(
            "{}@127.0.0.1:{}",
            Self::CONTROLLER_ID,
            controller_ports.controller
        );
        let replication = brokers.clamp(1, 3) as u16;
        let mut cluster = KafkaMultiCluster {
            cluster_id: cluster_id(),
            controller: KafkaNode {
                node_id: Self::CONTROLLER_ID,
                role: Role::Controller,
                ports: controller_ports,
                props: PathBuf::new(),
                jvm: None,
                log: PathBuf::new(),
                krb5_conf: opts.krb5_conf().map(Path::to_path_buf),
            },
            brokers: Vec::new(),
            voters,
            opts,
            replication,
            dir,
            log4j,
        };
        let started = Instant::now();
        let props = cluster.write_props(
            Self::CONTROLLER_ID,
            Role::Controller,
            &cluster.controller.ports.clone(),
        );
        cluster.controller.props = props;
        cluster.controller.log = cluster.dir.path().join("node-100.log");
        let scram = cluster.opts.scram_args();
        let (cid, log4j) = (cluster.cluster_id.clone(), cluster.log4j.clone());
        cluster.controller.spawn(&cid, &scram, &log4j);
        for id in 1..=brokers {
            cluster.add_broker_node(id);
        }
        let ids: Vec<i32> = (1..=brokers).collect();
        if let Err(last) = wait_ready(
            cluster.brokers[0].socket(KafkaListener::Plaintext),
            &ids,
            START_WITHIN,
        ) {
            panic!("Kafka cluster never became ready ({last})");
        }
        let sockets: Vec<(i32, SocketAddr)> = cluster
            .brokers
            .iter()
            .map(|b| (b.node_id, b.socket(KafkaListener::Plaintext)))
            .collect();
        warm_up(sockets[0].1, &|id| {
            sockets
                .iter()
                .find(|(n, _)| *n == id)
                .map(|(_, s)| *s)
                .unwrap_or_else(|| panic!("no broker {id}"))
        });
        eprintln!(
            "[kafka] {brokers}-broker cluster + controller ready and warm in {:?}",
            started.elapsed()
        );
        cluster
    }

    fn write_props(&self, node_id: i32, role: Role, ports: &NodePorts) -> PathBuf {
        let path = self.dir.path().join(format!("node-{node_id}.properties"));
        let data = self.dir.path().join(format!("data-{node_id}"));
        let spec = NodeSpec {
            node_id,
            role,
            ports,
            voters: &self.voters,
            data: &data,
            replication: self.replication,
        };
        let text = node_properties(&spec, kafka_certs(), &self.opts);
        std::fs::write(&path, text).expect("node properties");
        path
    }

    fn add_broker_node(&mut self, id: i32) {
        let ports = NodePorts::free(&self.opts);
        let props = self.write_props(id, Role::Broker, &ports);
        let mut node = KafkaNode {
            node_id: id,
            role: Role::Broker,
            ports,
            props,
            jvm: None,
            log: self.dir.path().join(format!("node-{id}.log")),
            krb5_conf: self.opts.krb5_conf().map(Path::to_path_buf),
        };
        node.spawn(&self.cluster_id, &[], &self.log4j);
        self.brokers.push(node);
    }

    /// Starts one more broker with node id `id` and waits until the cluster lists it.
    pub fn add_broker(&mut self, id: i32) {
        self.add_broker_node(id);
        let boot = self.brokers[0].socket(KafkaListener::Plaintext);
        if let Err(last) = wait_ready(boot, &[id], START_WITHIN) {
            panic!("broker {id} never joined ({last})");
        }
    }

    pub fn broker(&mut self, id: i32) -> &mut KafkaNode {
        self.brokers
            .iter_mut()
            .find(|b| b.node_id == id)
            .unwrap_or_else(|| panic!("no broker {id}"))
    }

    /// kill -9 of broker `id`'s JVM.
    pub fn kill_broker(&mut self, id: i32) {
        if let Some(mut jvm) = self.broker(id).jvm.take() {
            jvm.kill();
        }
    }

    /// Starts broker `id` again on the same ports and data.
    pub fn restart_broker(&mut self, id: i32) {
        let (cid, log4j) = (self.cluster_id.clone(), self.log4j.clone());
        self.broker(id).spawn(&cid, &[], &log4j);
    }

    /// Starts broker `id` again with its data, but listening on new ports (PLAINTEXT on `plaintext`):
    /// a broker that comes back at another address.
    pub fn restart_broker_on(&mut self, id: i32, plaintext: u16) {
        self.kill_broker(id);
        let mut ports = NodePorts::free(&self.opts);
        ports.listeners.insert(KafkaListener::Plaintext, plaintext);
        let props = self.write_props(id, Role::Broker, &ports);
        let (cid, log4j) = (self.cluster_id.clone(), self.log4j.clone());
        let node = self.broker(id);
        node.ports = ports;
        node.props = props;
        node.spawn(&cid, &[], &log4j);
    }

    pub fn kill_controller(&mut self) {
        if let Some(mut jvm) = self.controller.jvm.take() {
            jvm.kill();
        }
    }

    pub fn restart_controller(&mut self) {
        let (cid, log4j) = (self.cluster_id.clone(), self.log4j.clone());
        let scram = self.opts.scram_args();
        self.controller.spawn(&cid, &scram, &log4j);
    }

    /// The PLAINTEXT bootstrap list of every running broker.
    pub fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .filter(|b| b.is_running())
            .map(|b| b.socket(KafkaListener::Plaintext).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A gateway upstream for node ids 1..=8 (room for brokers that join later).
    pub fn upstream(&self) -> Upstream {
        Upstream::new(self.bootstrap(), 1, 8)
    }
}

impl Drop for KafkaMultiCluster {
    fn drop(&mut self) {
        for b in &mut self.brokers {
            if let Some(mut jvm) = b.jvm.take() {
                jvm.kill();
            }
        }
        self.kill_controller();
    }
}
