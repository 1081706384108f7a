//! Test harness: real brokers (Apache Kafka 4.4 in `apache`, tansu here), the real gateway binary,
//! real clients, and a raw Kafka client.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod apache;
pub mod fault;
pub mod hosts;
pub mod kafka;
pub mod kdc;
pub mod sasl;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Tools installed by scripts/install-deps.sh. A missing tool fails the test: it is never skipped.
pub struct Tools {
    pub tansu: PathBuf,
    pub python: PathBuf,
    /// The Java client 3.9.1 (with WorkloadClient).
    pub java_cp: String,
    /// The Java client 4.4.0 (with WorkloadClient).
    pub java44_cp: String,
    /// Apache Kafka 4.4.0, broker and tools (with KafkaHost).
    pub kafka_cp: String,
    /// Kafka Streams 4.4.0 (with StreamsClient).
    pub streams_cp: String,
    /// The Java client 4.4.0 (with ShareClient, a share-group member).
    pub share_cp: String,
    /// MirrorMaker 2 (connect-mirror 4.3.1).
    pub mm2_cp: String,
}

pub fn tools() -> Tools {
    let cache = std::env::var("KGW_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/kafka-gateway")
        });
    let mut vars = std::collections::HashMap::new();
    if let Ok(text) = std::fs::read_to_string(cache.join("env.sh")) {
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("export ") {
                if let Some((k, v)) = rest.split_once('=') {
                    vars.insert(
                        k.to_string(),
                        v.trim_matches(|c| c == '"' || c == '\'').to_string(),
                    );
                }
            }
        }
    }
    let get = |k: &str| {
        std::env::var(k)
            .ok()
            .or_else(|| vars.get(k).cloned())
            .unwrap_or_else(|| {
                panic!(
                    "{k} is not set and {} has no value for it: run scripts/install-deps.sh",
                    cache.join("env.sh").display()
                )
            })
    };
    Tools {
        tansu: PathBuf::from(get("KGW_TANSU")),
        python: PathBuf::from(get("KGW_PYTHON")),
        java_cp: get("KGW_JAVA_CP"),
        java44_cp: get("KGW_JAVA44_CP"),
        kafka_cp: get("KGW_KAFKA_CP"),
        streams_cp: get("KGW_STREAMS_CP"),
        share_cp: get("KGW_SHARE_CP"),
        mm2_cp: get("KGW_MM2_CP"),
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory under the target dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kgw-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // A failed test keeps its broker and gateway logs for whoever investigates.
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Ports handed out by this process come from 10000..32000, below Linux's ephemeral range
/// (32768..60999): a port taken from the kernel with `bind(0)` and released is an ephemeral port,
/// which any outgoing connection may be given before the broker or gateway meant to listen on it
/// binds it. A cursor never hands the same port out twice in one test binary; its start depends on
/// the process id so that two binaries running at once rarely meet.
const PORTS: std::ops::Range<u32> = 10_000..32_000;

fn next_ports(n: u16) -> u16 {
    static CURSOR: std::sync::Mutex<Option<u32>> = std::sync::Mutex::new(None);
    let span = PORTS.end - PORTS.start;
    let mut cursor = CURSOR.lock().unwrap_or_else(|e| e.into_inner());
    let mut next = cursor.unwrap_or_else(|| (std::process::id().wrapping_mul(7919)) % span);
    for _ in 0..span {
        if next + u32::from(n) > span {
            next = 0;
        }
        let base = (PORTS.start + next) as u16;
        next += u32::from(n);
        let held: Vec<_> = (0..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(n) {
            *cursor = Some(next);
            return base;
        }
    }
    panic!("no {n} free consecutive ports in {PORTS:?}");
}

/// A TCP port that was free a moment ago (and is not an ephemeral port).
pub fn free_port() -> u16 {
    next_ports(1)
}

/// `n` consecutive free ports (checked by binding them all at once).
pub fn free_port_range(n: u16) -> u16 {
    next_ports(n)
}

pub fn wait_for_port(addr: SocketAddr, within: Duration) {
    let start = Instant::now();
    while start.elapsed() < within {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr} did not accept connections within {within:?}");
}

/// The node id tansu 0.6 gives itself.
pub const TANSU_NODE_ID: i32 = 111;

/// What a gateway config needs to know of the cluster it fronts: where to bootstrap, which node
/// ids its brokers have (so that each gets a gateway port), and any `[upstream.*]` tables.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub bootstrap: Vec<String>,
    pub node_id_base: i32,
    pub node_count: u16,
    /// TOML tables such as `[upstream.tls]` and `[upstream.sasl]`, appended to the config.
    pub tables: String,
}

impl Upstream {
    /// `bootstrap` is one `host:port` or a comma-separated list.
    pub fn new(bootstrap: impl AsRef<str>, node_id_base: i32, node_count: u16) -> Upstream {
        Upstream {
            bootstrap: bootstrap
                .as_ref()
                .split(',')
                .map(|s| s.trim().to_string())
                .collect(),
            node_id_base,
            node_count,
            tables: String::new(),
        }
    }

    /// The same cluster reached through another gateway's listener at `addr`.
    pub fn through(&self, addr: SocketAddr) -> Upstream {
        Upstream::new(addr.to_string(), self.node_id_base, self.node_count)
    }
}

/// A tansu broker with in-memory storage on a free port; killed when dropped. (The quickstart's
/// embedded default; the suites run against Apache Kafka, see `apache`.)
pub struct Broker {
    pub port: u16,
    child: Child,
    pub log: PathBuf,
}

impl Broker {
    pub fn start(tools: &Tools, dir: &Path) -> Broker {
        let port = free_port();
        let log = dir.join(format!("tansu-{port}.log"));
        let child = spawn_tansu(&tools.tansu, &log, port);
        Broker { port, child, log }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn upstream(&self) -> Upstream {
        Upstream::new(self.addr(), TANSU_NODE_ID, 1)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_tansu(tansu: &Path, log: &Path, port: u16) -> Child {
    let append = |p: PathBuf| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .expect("log file")
    };
    let child = Command::new(tansu)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--cluster-id",
            "kgw-test",
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(Stdio::from(append(log.to_path_buf())))
        .stderr(Stdio::from(append(log.with_extension("err"))))
        .spawn()
        .expect("start tansu");
    wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(20),
    );
    child
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Paths of the development certificates, generated once per test binary by the gateway itself.
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn server(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }
    pub fn client(&self) -> PathBuf {
        self.dir.join("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }
}

pub fn dev_certs(dir: &Path) -> Certs {
    dev_certs_for(dir, &[])
}

/// [`dev_certs`] whose server certificate also names `server_names` (wildcards allowed).
pub fn dev_certs_for(dir: &Path, server_names: &[&str]) -> Certs {
    let mut cmd = Command::new(gateway_bin());
    cmd.args(["certs", "dev", "--force", "--dir"]).arg(dir);
    for n in server_names {
        cmd.args(["--server-name", n]);
    }
    let out = cmd.output().expect("run certs dev");
    assert!(
        out.status.success(),
        "certs dev failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Certs {
        dir: dir.to_path_buf(),
    }
}

pub fn gateway_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kafka-gateway"))
}

/// What one `kafka-gateway` command printed.
pub struct CliOutput {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `kafka-gateway ARGS`, feeding `stdin` (then closing it).
pub fn gateway_cli(args: &[&str], stdin: Option<&str>) -> CliOutput {
    let mut child = Command::new(gateway_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gateway cli");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    CliOutput {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Adds a SCRAM user with `kafka-gateway users add`, for the given mechanisms; must succeed.
pub fn add_scram_user(users: &Path, name: &str, password: &str, mechanisms: &[&str]) {
    let mut args = vec![
        "users",
        "add",
        name,
        "--file",
        users.to_str().expect("utf-8 path"),
    ];
    for m in mechanisms {
        args.extend(["--mechanism", m]);
    }
    args.push("--password-stdin");
    let out = gateway_cli(&args, Some(&format!("{password}\n")));
    assert!(out.ok, "kafka-gateway {args:?} failed: {}", out.stderr);
}

/// What one listener of a test gateway looks like.
pub struct ListenerSpec {
    pub name: &'static str,
    pub tls: bool,
    pub client_auth: &'static str,
    /// SASL mechanisms, as the inside of a TOML array (`"SCRAM-SHA-256", "PLAIN"`); empty for none.
    pub sasl: &'static str,
}

/// A running gateway process; SIGKILLed when dropped unless stopped first.
pub struct Gateway {
    pub child: Child,
    pub bootstrap: Vec<(String, SocketAddr)>,
    pub broker_ports: Vec<u16>,
    pub admin: SocketAddr,
    pub log: PathBuf,
    pub config: PathBuf,
}

/// Renders a gateway config for the given upstream and listeners; `extra` is appended verbatim.
pub fn gateway_config(
    upstream: &Upstream,
    listeners: &[ListenerSpec],
    certs: Option<&Certs>,
    extra: &str,
) -> (String, Vec<u16>, u16) {
    let mut text = String::new();
    let mut broker_ports = Vec::new();
    for l in listeners {
        let bind = free_port();
        let base = free_port_range(upstream.node_count);
        broker_ports.push(base);
        text.push_str(&format!(
            "[[listeners]]\nname = \"{}\"\nbind = \"127.0.0.1:{bind}\"\nadvertised_host = \"127.0.0.1\"\n\
             broker_port_base = {base}\nbroker_port_count = {}\nnode_id_base = {}\n\
             sasl_mechanisms = [{}]\n",
            l.name, upstream.node_count, upstream.node_id_base, l.sasl
        ));
        if l.tls {
            let c = certs.expect("certs for a TLS listener");
            text.push_str(&format!(
                "[listeners.tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\nclient_auth = \"{}\"\n",
                c.server(),
                c.server_key(),
                c.ca(),
                l.client_auth
            ));
        }
        text.push('\n');
    }
    let admin = free_port();
    let servers: Vec<String> = upstream
        .bootstrap
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    text.push_str(&format!(
        "[upstream]\nbootstrap_servers = [{}]\n\n{}[admin]\nbind = \"127.0.0.1:{admin}\"\n\n{extra}\n",
        servers.join(", "),
        upstream.tables
    ));
    // Tests of other stages run without policies, and must say so: the gateway has no silent default.
    if !extra.contains("[authorization]") {
        text.push_str("\n[authorization]\nallow_all = true\n");
    }
    (text, broker_ports, admin)
}

impl Gateway {
    pub fn start(dir: &Path, config_text: &str, broker_ports: Vec<u16>, admin: u16) -> Gateway {
        Gateway::start_with_env(dir, config_text, broker_ports, admin, &[])
    }

    /// [`Gateway::start`] with extra environment variables for the gateway process.
    pub fn start_with_env(
        dir: &Path,
        config_text: &str,
        broker_ports: Vec<u16>,
        admin: u16,
        env: &[(&str, &str)],
    ) -> Gateway {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let config = dir.join(format!("gateway-{n}.toml"));
        std::fs::write(&config, config_text).expect("write config");
        let log = dir.join(format!("gateway-{n}.log"));
        let mut child = Command::new(gateway_bin())
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info,kafka_gateway=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
            .spawn()
            .expect("start gateway");
        let stdout = child.stdout.take().expect("stdout");
        // `[[listeners]]` and `[[virtual_clusters.listeners]]`.
        let n_listeners = config_text.matches("listeners]]").count();
        let mut bootstrap = Vec::new();
        let mut lines = BufReader::new(stdout).lines();
        while bootstrap.len() < n_listeners {
            let line = match lines.next() {
                Some(Ok(l)) => l,
                _ => panic!(
                    "gateway exited before listening; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            };
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() == 3 && parts[0] == "listening" {
                bootstrap.push((parts[1].to_string(), parts[2].parse().expect("addr")));
            }
        }
        // Keep draining stdout so the gateway never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let gw = Gateway {
            child,
            bootstrap,
            broker_ports,
            admin: SocketAddr::from(([127, 0, 0, 1], admin)),
            log,
            config,
        };
        gw.wait_ready(Duration::from_secs(30));
        gw
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.bootstrap
            .iter()
            .find(|(n, _)| n == listener)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no listener {listener}"))
    }

    /// The broker port of tansu's node on the first listener.
    pub fn broker_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.broker_ports[0]))
    }

    pub fn wait_ready(&self, within: Duration) {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some((200, _)) = http_get(self.admin, "/readyz") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway not ready; log:\n{}", self.log_text());
    }

    pub fn metrics(&self) -> String {
        http_get(self.admin, "/metrics").expect("metrics").1
    }

    /// Waits until `/metrics` names `series`. A closed socket is not a counted rejection:
    /// the gateway closes (drops the stream) and counts in either order, so a test that
    /// sees the close must still wait for the count.
    pub fn wait_for_metric(&self, series: &str) {
        let start = Instant::now();
        loop {
            let m = self.metrics();
            if m.contains(series) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{series} not in /metrics within 5 s:\n{m}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the gateway process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }

    /// Resets the process's peak resident memory (VmHWM) to its current RSS; returns that, in KiB.
    pub fn reset_peak_kib(&self) -> u64 {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").expect("clear_refs");
        self.status_kib("VmHWM:")
    }

    /// Peak resident memory (VmHWM) since the start or the last [`Gateway::reset_peak_kib`], in KiB.
    pub fn peak_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/pid/status"))
    }

    /// CPU time (user + system) the gateway process has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("proc stat");
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for the process to exit and returns whether it exited successfully.
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gateway did not exit within {within:?}");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal HTTP GET for the admin endpoint: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// A workload client's `roundtrip` result: `n` records produced and consumed, each once and
/// unchanged.
pub fn assert_roundtrip(what: &str, r: &serde_json::Value, n: u64) {
    assert_eq!(r["produced"], n, "{what}: {r}");
    assert_eq!(r["consumed"], n, "{what}: {r}");
    assert_eq!(r["distinct"], n, "{what}: {r}");
    assert_eq!(r["mismatches"], 0, "{what}: {r}");
}

/// A workload command line's words (for arguments without spaces).
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Runs tests/clients/workload.py and returns its JSON result line.
pub fn python_workload(tools: &Tools, args: &[&str]) -> serde_json::Value {
    let script = repo_root().join("tests/clients/workload.py");
    let out = Command::new(&tools.python)
        .arg(script)
        .args(args)
        .output()
        .expect("run workload.py");
    parse_json_result("workload.py", &out)
}

/// Runs the Java workload client (kafka-clients 3.9.1) and returns its JSON result line.
pub fn java_workload(tools: &Tools, args: &[&str]) -> serde_json::Value {
    parse_json_result("WorkloadClient", &run_java_client(&tools.java_cp, args))
}

/// The same with kafka-clients 4.4.0.
pub fn java44_workload(tools: &Tools, args: &[&str]) -> serde_json::Value {
    parse_json_result(
        "WorkloadClient (4.4)",
        &run_java_client(&tools.java44_cp, args),
    )
}

/// Runs tests/clients/java/WorkloadClient.java compiled against the client on `classpath`.
pub fn run_java_client(classpath: &str, args: &[&str]) -> std::process::Output {
    Command::new("java")
        .args([
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            classpath,
            "WorkloadClient",
        ])
        .args(args)
        .output()
        .expect("run java WorkloadClient")
}

pub fn parse_json_result(what: &str, out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    match (out.status.success(), last) {
        (true, Some(l)) => {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: bad JSON {l:?}: {e}"))
        }
        _ => panic!(
            "{what} failed ({}):\nstdout:\n{stdout}\nstderr (tail):\n{}",
            out.status,
            tail(&stderr, 4000)
        ),
    }
}

pub fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let mut i = start;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// Polls `check` until it holds or `within` passes.
pub fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sum of every sample of a metric in Prometheus text: `name` is a family
/// (`kafka_gateway_upstream_connects_total`) or one series with its labels as rendered.
pub fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l.as_bytes().get(name.len()) == Some(&b'{')
                    || l.as_bytes().get(name.len()) == Some(&b' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The audit trail files in `dir`, oldest first (names start with the first sequence number).
pub fn trail_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("audit dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

/// Every complete record of the trail in `dir` (a torn last line, still being written, is skipped).
pub fn trail_records(dir: &Path) -> Vec<serde_json::Value> {
    trail_files(dir)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An ApiVersions request as a client sends it: from v3 Kafka requires a client software name and
/// version (an empty one is INVALID_REQUEST).
pub fn api_versions_request() -> kafka_protocol::messages::ApiVersionsRequest {
    kafka_protocol::messages::ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kgw-test"))
        .with_client_software_version(StrBytes::from_static_str("1.0"))
}

/// A raw connection from a chosen loopback source address (127.0.0.2, say), for host rules.
pub fn connect_from(src: std::net::Ipv4Addr, dst: SocketAddr) -> std::io::Result<RawClient> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stream = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(std::net::IpAddr::V4(src), 0))?;
        sock.connect(dst).await
    })?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_nodelay(true)?;
    Ok(RawClient::from_stream(stream))
}

/// A raw Kafka connection speaking kafka-protocol, for requests no client library would send.
pub struct RawClient {
    pub stream: TcpStream,
    next_correlation: i32,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        RawClient {
            stream,
            next_correlation: 1,
        }
    }

    /// Wraps a connected stream (from a chosen source address, say).
    pub fn from_stream(stream: TcpStream) -> RawClient {
        RawClient {
            stream,
            next_correlation: 1,
        }
    }

    pub fn encode<T: Encodable>(&mut self, api: ApiKey, version: i16, body: &T) -> (i32, Bytes) {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        (
            correlation,
            self.encode_with(api, version, correlation, body),
        )
    }

    /// A request frame with a chosen correlation id (a reused one, say).
    pub fn encode_with<T: Encodable>(
        &self,
        api: ApiKey,
        version: i16,
        correlation: i32,
        body: &T,
    ) -> Bytes {
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = correlation;
        header.client_id = Some(StrBytes::from_static_str("raw-test-client"));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0; 4]);
        header
            .encode(&mut buf, api.request_header_version(version))
            .expect("header");
        body.encode(&mut buf, version).expect("body");
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        buf.freeze()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one response frame payload (length prefix removed).
    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        assert!((0..64 << 20).contains(&len), "absurd response length {len}");
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    }

    pub fn request<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        let (correlation, frame) = self.encode(api, version, body);
        self.send_raw(&frame).expect("send");
        let mut payload = self.read_frame().expect("response");
        let header = ResponseHeader::decode(&mut payload, api.response_header_version(version))
            .expect("header");
        assert_eq!(header.correlation_id, correlation, "correlation id");
        Resp::decode(&mut payload, version).expect("decode response")
    }

    /// True once the peer has closed the connection (EOF or reset) within `within`.
    pub fn is_closed_within(&mut self, within: Duration) -> bool {
        self.stream.set_read_timeout(Some(within)).expect("timeout");
        let mut buf = [0u8; 1024];
        let start = Instant::now();
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {} // drain anything sent before the close
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
            if start.elapsed() > within {
                return false;
            }
        }
    }
}
