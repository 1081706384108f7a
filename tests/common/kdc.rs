//! A throwaway MIT Kerberos realm on loopback for the Kerberos (SASL/GSSAPI) tests: its own
//! database, `krb5.conf` and `kdc.conf` in a temp dir, and `krb5kdc` on a free port (UDP and TCP),
//! stopped when the [`Kdc`] is dropped, a panic included.
//!
//! Everything that talks Kerberos in a test (the gateway, `kinit`, the Apache Kafka JVM, Python
//! clients) is pointed at the realm's files through the environment ([`Kdc::env`]) or, for a JVM,
//! `-Djava.security.krb5.conf` ([`Kdc::jvm_flag`]); nothing reads `/etc/krb5.conf`.
//!
//! A JVM reads its `krb5.conf` once: the Kafka host JVM of a test binary is started with the
//! realm of the first cluster that asks for Kerberos (`ClusterOptions::kerberos`), so a test
//! binary that uses Kerberos starts one [`Kdc`] for all its tests (in a `OnceLock`, say) before
//! its first Kafka cluster.
//!
//! `krb5kdc` runs under a small `sh` watchdog that holds the read end of a pipe from the test
//! process on its stdin: when the pipe closes, on drop or because the test binary died however it
//! died, the watchdog stops the KDC. No test leaves a `krb5kdc` behind (the idea of
//! `KafkaHost.java`, whose JVM halts when its stdin closes).
//!
//! Host names: Kafka's service principal is `kafka/localhost@REALM` (see `apache::KERBEROS_HOST`),
//! so a client must name the broker `localhost` (connect to `localhost:port`, or set the service
//! host explicitly); `localhost` and `127.0.0.1` map to the realm in `[domain_realm]`, and with
//! `rdns = false` and `dns_canonicalize_hostname = false` MIT libraries use the name as given (the
//! Java client does not: it asks for `kafka/<reverse lookup of the address>`, `localhost` here).

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, TempDir};

/// How long the KDC may take to answer its first `kinit`.
const START_WITHIN: Duration = Duration::from_secs(10);

/// The maximum clock skew of the realm, in seconds (see [`krb5_conf`]).
pub const CLOCKSKEW_SECS: u64 = 5;

/// A running KDC for one realm; stopped (and its files removed unless the test failed) on drop.
pub struct Kdc {
    realm: String,
    port: u16,
    /// The `sh` watchdog (see the module doc); it exits when `krb5kdc` does.
    watchdog: Child,
    /// Closing it stops the KDC.
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    kdc_pid: u32,
    // Declared last: removed after `Drop::drop` has stopped the KDC.
    dir: TempDir,
}

/// The watchdog: starts krb5kdc in the foreground (`-n`, its own log in $2), prints its pid, and
/// kills it when stdin reaches end of file. (A background job's stdin is /dev/null unless
/// redirected, hence the copy on fd 3.) It exits when krb5kdc exits, for whatever reason.
const WATCHDOG: &str = r#"
exec 3<&0
"$1" -n >>"$2" 2>&1 </dev/null &
kdc=$!
echo "pid $kdc"
{ while read -r _; do :; done; kill "$kdc" 2>/dev/null; } <&3 >/dev/null 2>&1 &
exec 3<&-
wait "$kdc"
"#;

impl Kdc {
    /// A new realm `realm` (say `KGW.TEST`) with a running KDC that has answered a `kinit`.
    /// Panics with the KDC's log if it does not answer within 10 s.
    pub fn start(realm: &str) -> Kdc {
        assert!(
            !realm.is_empty()
                && realm
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.' || c == '-'),
            "realm {realm:?}: use upper-case letters, digits, '.' and '-'"
        );
        // A port taken between the check and the KDC's bind makes krb5kdc exit: try other ports.
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            match Kdc::try_start(realm) {
                Ok(kdc) => return kdc,
                Err(e) if attempt < ATTEMPTS => eprintln!("[kdc] {e}; trying another port"),
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!("the last attempt panics")
    }

    fn try_start(realm: &str) -> Result<Kdc, String> {
        let started = Instant::now();
        remove_stale_dirs();
        let dir = TempDir::new("kdc");
        let port = free_udp_tcp_port();
        let d = dir.path();
        for sub in ["rcache", "keytabs", "ccaches"] {
            std::fs::create_dir_all(d.join(sub)).expect("kdc sub dir");
        }
        std::fs::write(d.join("kdc.conf"), kdc_conf(realm, port, d)).expect("kdc.conf");
        std::fs::write(d.join("krb5.conf"), krb5_conf(realm, port)).expect("krb5.conf");

        let out = tool_command("kdb5_util", d)
            .args(["create", "-s", "-r", realm, "-P", &random_secret()])
            .stdin(Stdio::null())
            .output()
            .expect("run kdb5_util (Debian: krb5-kdc; scripts/install-deps.sh installs it)");
        check(&out, "kdb5_util create");

        let mut watchdog = tool_command("sh", d)
            .args(["-c", WATCHDOG, "kdc-watchdog"])
            .arg(tool("krb5kdc"))
            .arg(d.join("krb5kdc.out"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sh (krb5kdc watchdog)");
        let stdin = watchdog.stdin.take();
        let mut stdout = BufReader::new(watchdog.stdout.take().expect("watchdog stdout (piped)"));
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        let kdc_pid = first
            .trim()
            .strip_prefix("pid ")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        // From here on a panic drops `kdc`, which stops krb5kdc.
        let mut kdc = Kdc {
            realm: realm.to_string(),
            port,
            watchdog,
            stdin,
            stdout: Some(stdout.into_inner()),
            kdc_pid,
            dir,
        };
        assert!(kdc_pid != 0, "krb5kdc watchdog said {first:?}, not its pid");
        kdc.wait_ready(started)?;
        eprintln!(
            "[kdc] realm {realm} on 127.0.0.1:{port} (udp+tcp, krb5kdc pid {kdc_pid}) ready in {:?}; files in {}",
            started.elapsed(),
            kdc.dir.path().display()
        );
        Ok(kdc)
    }

    /// Ready when a client gets a ticket: the KDC has bound its ports and reads its database.
    /// Err if krb5kdc exited (its port was taken, most likely); panics after [`START_WITHIN`].
    fn wait_ready(&mut self, started: Instant) -> Result<(), String> {
        let probe = "kgw-kdc-probe";
        let keytab = self.add_keytab(probe);
        let ccache = self.dir.path().join("ccaches/probe");
        loop {
            let last = match self.kinit_command(probe, &keytab, &ccache, None).output() {
                Ok(o) if o.status.success() => return Ok(()),
                Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                Err(e) => e.to_string(),
            };
            if let Ok(Some(status)) = self.watchdog.try_wait() {
                return Err(format!(
                    "krb5kdc for {} on port {} exited ({status}); log:\n{}",
                    self.realm,
                    self.port,
                    self.log_text()
                ));
            }
            assert!(
                started.elapsed() < START_WITHIN,
                "the KDC for {} on 127.0.0.1:{} did not answer kinit within {START_WITHIN:?} \
                 (last: {last}); log:\n{}",
                self.realm,
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The KDC's port on 127.0.0.1, UDP and TCP.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The realm's directory (configuration, database, keytabs, KDC log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `name@REALM` (`name` as is if it already names a realm).
    pub fn principal(&self, name: &str) -> String {
        if name.contains('@') {
            name.to_string()
        } else {
            format!("{name}@{}", self.realm)
        }
    }

    /// The client configuration (`[libdefaults]`, `[realms]`, `[domain_realm]`) for this realm.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// The KDC's own configuration (database, ports, logging).
    pub fn kdc_conf(&self) -> PathBuf {
        self.dir.path().join("kdc.conf")
    }

    /// Environment for a child process that uses this realm through MIT krb5 (the gateway,
    /// python-gssapi, kinit): `KRB5_CONFIG`, and `KRB5RCACHEDIR` so that acceptors keep their
    /// replay caches in the realm's directory rather than the machine's /var/tmp. No
    /// `KRB5_TRACE`: add it (`KRB5_TRACE=/dev/stderr`) when debugging.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("KRB5_CONFIG".into(), self.krb5_conf().display().to_string()),
            (
                "KRB5RCACHEDIR".into(),
                self.dir.path().join("rcache").display().to_string(),
            ),
        ]
    }

    /// [`Kdc::env`] plus `KRB5CCNAME=FILE:<ccache>`: a client that uses the tickets `ccache`
    /// holds (from [`Kdc::kinit`]).
    pub fn client_env(&self, ccache: &Path) -> Vec<(String, String)> {
        let mut env = self.env();
        env.push(("KRB5CCNAME".into(), format!("FILE:{}", ccache.display())));
        env
    }

    /// The JVM flag that points Java's Kerberos at this realm (`-Djava.security.krb5.conf=...`).
    pub fn jvm_flag(&self) -> String {
        format!("-Djava.security.krb5.conf={}", self.krb5_conf().display())
    }

    /// Where [`Kdc::add_keytab`] puts the keytab of `principal`.
    pub fn keytab_path(&self, principal: &str) -> PathBuf {
        self.dir
            .path()
            .join("keytabs")
            .join(format!("{}.keytab", sanitize(principal)))
    }

    /// A fresh credential cache path in the realm's directory (`tag` names it), for
    /// [`Kdc::kinit`] and `KRB5CCNAME=FILE:<path>`.
    pub fn ccache_path(&self, tag: &str) -> PathBuf {
        self.dir.path().join("ccaches").join(sanitize(tag))
    }

    /// Creates `principal` with a random key (unless it exists) and writes its keys to a keytab
    /// of its own (mode 0600), which is returned. Idempotent: a second call for the same principal
    /// exports the same keys (`ktadd -norandkey`), so keytabs handed out earlier stay valid.
    pub fn add_keytab(&self, principal: &str) -> PathBuf {
        let p = self.principal(principal);
        let out = self.kadmin(&format!("addprinc -randkey {p}"));
        let text = lossy(&out);
        assert!(
            text.contains(&format!("Principal \"{p}\" created")) || text.contains("already exists"),
            "kadmin.local addprinc -randkey {p} failed:\n{text}"
        );
        let keytab = self.keytab_path(principal);
        let _ = std::fs::remove_file(&keytab);
        let out = self.kadmin(&format!("ktadd -norandkey -k {} {p}", keytab.display()));
        assert!(
            lossy(&out).contains("added to keytab") && keytab.exists(),
            "kadmin.local ktadd {p} failed:\n{}",
            lossy(&out)
        );
        set_mode_0600(&keytab);
        keytab
    }

    /// Creates `principal` with a password.
    pub fn add_password(&self, principal: &str, password: &str) {
        assert!(
            !password.contains(['"', '\n']),
            "kadmin.local -q cannot quote a password with '\"' or a newline"
        );
        let p = self.principal(principal);
        let out = self.kadmin(&format!("addprinc -pw \"{password}\" {p}"));
        assert!(
            lossy(&out).contains(&format!("Principal \"{p}\" created")),
            "kadmin.local addprinc {p} failed:\n{}",
            lossy(&out)
        );
    }

    /// The longest ticket `principal` may get (`modprinc -maxlife`), in kadmin's time syntax:
    /// `"10 seconds"`, `"2 minutes"`, `"1:00:00"`. A ticket's life is the least of what its
    /// client, its service and the realm allow, so limiting the client limits all its tickets.
    pub fn set_max_life(&self, principal: &str, life: &str) {
        let p = self.principal(principal);
        let out = self.kadmin(&format!("modprinc -maxlife \"{life}\" {p}"));
        assert!(
            lossy(&out).contains(&format!("Principal \"{p}\" modified")),
            "kadmin.local modprinc -maxlife {life:?} {p} failed:\n{}",
            lossy(&out)
        );
    }

    /// `kinit -k -t KEYTAB -c FILE:CCACHE [-l LIFETIME] PRINCIPAL`; panics with kinit's stderr if
    /// it fails. `lifetime` in kinit's syntax (`10s`, `5m`); the principal's max life still caps it.
    pub fn kinit(&self, principal: &str, keytab: &Path, ccache: &Path, lifetime: Option<&str>) {
        let out = self
            .kinit_command(principal, keytab, ccache, lifetime)
            .output()
            .expect("run kinit (Debian: krb5-user)");
        check(
            &out,
            &format!("kinit {principal} (keytab {})", keytab.display()),
        );
    }

    /// `kinit` with a password (given on stdin) into `FILE:ccache`; panics if it fails.
    pub fn kinit_password(&self, principal: &str, password: &str, ccache: &Path) {
        let mut child = tool_command("kinit", self.dir.path())
            .arg("-c")
            .arg(format!("FILE:{}", ccache.display()))
            .arg(self.principal(principal))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kinit (Debian: krb5-user)");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "{password}");
        }
        let out = child.wait_with_output().expect("wait for kinit");
        check(&out, &format!("kinit {principal} (password)"));
    }

    /// `klist -c FILE:ccache`: what the cache holds (panics if it cannot be read).
    pub fn klist(&self, ccache: &Path) -> String {
        let out = tool_command("klist", self.dir.path())
            .arg("-c")
            .arg(format!("FILE:{}", ccache.display()))
            .output()
            .expect("run klist (Debian: krb5-user)");
        check(&out, "klist");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kadmin.local -q QUERY` against this realm's database; its stdout and stderr. (kadmin.local
    /// exits 0 even when the query fails: callers check the output.)
    pub fn kadmin(&self, query: &str) -> Output {
        let out = tool_command("kadmin.local", self.dir.path())
            .args(["-r", &self.realm, "-q", query])
            .stdin(Stdio::null())
            .output()
            .expect("run kadmin.local (Debian: krb5-admin-server)");
        check(&out, &format!("kadmin.local -q {query:?}"));
        out
    }

    /// The KDC's log (its `[logging]` file and what krb5kdc printed).
    pub fn log_text(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let text = format!("{}{}", read("krb5kdc.out"), read("kdc.log"));
        super::tail(&text, 6000).to_string()
    }

    fn kinit_command(
        &self,
        principal: &str,
        keytab: &Path,
        ccache: &Path,
        lifetime: Option<&str>,
    ) -> Command {
        let mut cmd = tool_command("kinit", self.dir.path());
        cmd.arg("-k")
            .arg("-t")
            .arg(keytab)
            .arg("-c")
            .arg(format!("FILE:{}", ccache.display()));
        if let Some(l) = lifetime {
            cmd.args(["-l", l]);
        }
        cmd.arg(self.principal(principal)).stdin(Stdio::null());
        cmd
    }
}

/// Runs tests/clients/kpy_gssapi.py (kafka-python with python-gssapi) with `env` (say
/// [`Kdc::client_env`]); a verification or Kafka failure (exit code 1) is an outcome, anything
/// else that prints no JSON a panic. `args` as `kpy_gssapi.py roundtrip --bootstrap ...` takes them.
pub fn kpy_gssapi(
    tools: &super::Tools,
    env: &[(String, String)],
    args: &[&str],
) -> super::kafka::WorkloadOutcome {
    let out = Command::new(&tools.python)
        .arg(super::repo_root().join("tests/clients/kpy_gssapi.py"))
        .args(args)
        .env_remove("KRB5CCNAME")
        .env_remove("KRB5_CLIENT_KTNAME")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run kpy_gssapi.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    match (out.status.code(), last) {
        (Some(0 | 1), Some(l)) => super::kafka::WorkloadOutcome {
            success: out.status.success(),
            json: serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("kpy_gssapi.py: bad JSON {l:?}: {e}")),
            stderr,
        },
        _ => panic!(
            "kpy_gssapi.py crashed ({}):\nstdout:\n{stdout}\nstderr (tail):\n{}",
            out.status,
            super::tail(&stderr, 4000)
        ),
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        // Closing the watchdog's stdin makes it SIGTERM krb5kdc; the watchdog then exits.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.watchdog.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    // Still alive after 5 s: krb5kdc is the watchdog's child and not yet reaped,
                    // so its pid is still its own. (0 would be `kill` of our process group.)
                    if self.kdc_pid > 1 {
                        let _ = Command::new("kill")
                            .args(["-KILL", &self.kdc_pid.to_string()])
                            .status();
                    }
                    let _ = self.watchdog.kill();
                    let _ = self.watchdog.wait();
                    break;
                }
            }
        }
        drop(self.stdout.take());
        if std::thread::panicking() {
            eprintln!("KDC log of realm {}:\n{}", self.realm, self.log_text());
        }
    }
}

/// A command for one of the krb5 tools, pointed at the realm in `dir` (client and KDC profile).
fn tool_command(name: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(if name == "sh" {
        PathBuf::from("sh")
    } else {
        tool(name)
    });
    cmd.env("KRB5_CONFIG", dir.join("krb5.conf"))
        .env("KRB5_KDC_PROFILE", dir.join("kdc.conf"))
        .env("KRB5RCACHEDIR", dir.join("rcache"))
        // A caller's own cache or keytab must not stand in for the ones a test names.
        .env_remove("KRB5CCNAME")
        .env_remove("KRB5_KTNAME")
        .env_remove("KRB5_CLIENT_KTNAME");
    cmd
}

/// The path of a krb5 program: on PATH, or in /usr/sbin where Debian puts the KDC's (a non-root
/// PATH often lacks it).
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found: install krb5-kdc, krb5-admin-server and krb5-user \
                 (scripts/install-deps.sh does, as root)"
            )
        })
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        lossy(out)
    );
}

fn lossy(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Removes the realm directories of test processes that have exited: a KDC kept in a static for a
/// whole test binary is stopped by its watchdog, but its directory is never dropped.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("kgw-test-kdc-")
            .and_then(|rest| rest.split('-').next());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// A TCP port that is free (see [`free_port`]) and free for UDP too: the KDC listens on both.
fn free_udp_tcp_port() -> u16 {
    for _ in 0..50 {
        let port = free_port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// A principal as a file name: `kafka/localhost@R` -> `kafka_localhost_R`.
fn sanitize(principal: &str) -> String {
    principal
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn set_mode_0600(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 0600");
}

/// A random master password (never reused, never needed again: the stash file holds the key).
fn random_secret() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..4)
        .map(|_| {
            let h = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            format!("{h:016x}")
        })
        .collect()
}

/// The KDC's profile: loopback only, the realm's files in `dir`.
fn kdc_conf(realm: &str, port: u16, dir: &Path) -> String {
    let d = dir.display();
    format!(
        "[kdcdefaults]\n\
         \x20kdc_listen = 127.0.0.1:{port}\n\
         \x20kdc_tcp_listen = 127.0.0.1:{port}\n\
         \n\
         [realms]\n\
         \x20{realm} = {{\n\
         \x20 database_name = {d}/principal\n\
         \x20 key_stash_file = {d}/stash\n\
         \x20 acl_file = {d}/kadm5.acl\n\
         \x20 max_life = 10h\n\
         \x20 max_renewable_life = 0\n\
         \x20}}\n\
         \n\
         [logging]\n\
         \x20kdc = FILE:{d}/kdc.log\n\
         \x20admin_server = FILE:{d}/kadmin.log\n\
         \x20default = FILE:{d}/krb5lib.log\n"
    )
}

/// The client profile every process of the test uses.
fn krb5_conf(realm: &str, port: u16) -> String {
    format!(
        "[libdefaults]\n\
         \x20default_realm = {realm}\n\
         \x20dns_lookup_kdc = false\n\
         \x20dns_lookup_realm = false\n\
         \x20dns_canonicalize_hostname = false\n\
         \x20rdns = false\n\
         \x20# TCP for every request (UDP only for messages under 1 byte, i.e. never): one transport\n\
         \x20# to reason about, and what a firewall-friendly deployment uses.\n\
         \x20udp_preference_limit = 1\n\
         \x20# A ticket is accepted until its end time plus the clock skew: with the default 300 s a\n\
         \x20# test that lets a short ticket expire would wait five more minutes to see it refused.\n\
         \x20clockskew = {CLOCKSKEW_SECS}\n\
         \x20forwardable = false\n\
         \x20# Tests name their caches (kinit -c, KRB5CCNAME); a process that logs in from a keytab\n\
         \x20# (KRB5_CLIENT_KTNAME) without one keeps its tickets to itself, not in a shared file.\n\
         \x20default_ccache_name = MEMORY:kgw-default\n\
         \n\
         [realms]\n\
         \x20{realm} = {{\n\
         \x20 kdc = 127.0.0.1:{port}\n\
         \x20}}\n\
         \n\
         [domain_realm]\n\
         \x20localhost = {realm}\n\
         \x20127.0.0.1 = {realm}\n"
    )
}
