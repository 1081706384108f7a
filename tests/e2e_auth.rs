//! Authentication end to end (SECURITY-SCENARIOS 33-39): real clients with every mechanism through the
//! gateway to Apache Kafka, and raw SASL conversations for the exact error codes of every failure.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::apache::*;
use common::sasl::{authenticate, handshake, login, oauth_login};
use common::*;
use kafka_protocol::messages::*;

const ALL: &str = r#""SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "PLAIN""#;
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "kafka-gateway";
const FIXED_MESSAGE: &str =
    "Authentication failed during authentication due to invalid credentials with SASL mechanism";

struct AuthSetup {
    dir: TempDir,
    _broker: KafkaCluster,
    gateway: Gateway,
    certs: Certs,
    tools: Tools,
    users: PathBuf,
    oauth_key: PathBuf,
}

fn cli(args: &[&str], stdin: Option<&str>) -> String {
    let out = gateway_cli(args, stdin);
    assert!(out.ok, "kafka-gateway {args:?} failed: {}", out.stderr);
    out.stdout.trim().to_string()
}

fn add_user(users: &Path, name: &str, password: &str) {
    add_scram_user(users, name, password, &["SCRAM-SHA-256", "SCRAM-SHA-512"]);
}

/// Mints a token with the dev signing key; `scopes` empty means no scope claim.
fn token(
    key: &Path,
    subject: &str,
    scopes: &[&str],
    issuer: &str,
    audience: &str,
    ttl: &str,
) -> String {
    let mut args = vec![
        "oauth",
        "token",
        "--key",
        key.to_str().expect("path"),
        "--subject",
        subject,
        "--issuer",
        issuer,
        "--audience",
        audience,
        "--ttl",
        ttl,
    ];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    cli(&args, None)
}

const SASL_TLS: ListenerSpec = ListenerSpec {
    name: "sasl",
    tls: true,
    client_auth: "none",
    sasl: ALL,
};
const SASL_PLAINTEXT: ListenerSpec = ListenerSpec {
    name: "raw",
    tls: false,
    client_auth: "none",
    sasl: r#""SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER""#,
};
const MTLS: ListenerSpec = ListenerSpec {
    name: "mtls",
    tls: true,
    client_auth: "required",
    sasl: "",
};

fn setup(auth_extra: &str) -> AuthSetup {
    let tools = tools();
    let dir = TempDir::new("auth");
    let certs = dev_certs(&dir.path().join("certs"));
    let broker = KafkaCluster::start();
    let users = dir.path().join("users.toml");
    add_user(&users, "alice", "alice-secret");
    add_user(&users, "bob", "bob-secret");
    let oauth_dir = dir.path().join("oauth");
    cli(
        &[
            "oauth",
            "dev-keys",
            "--dir",
            oauth_dir.to_str().expect("path"),
        ],
        None,
    );
    let extra = format!(
        "[authentication]\ncredentials_file = {users:?}\ntimeout = \"3s\"\nfailure_delay = \"100ms\"\n\
         principal_mapping_rules = \"RULE:^CN=([^,]+),.*$/$1/L,DEFAULT\"\n{auth_extra}\n\
         [authentication.oauthbearer]\njwks_file = {:?}\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n\
         required_scopes = [\"kafka\"]\n",
        oauth_dir.join("jwks.json")
    );
    let (text, ports, admin) = gateway_config(
        &broker.upstream(),
        &[SASL_TLS, SASL_PLAINTEXT, MTLS],
        Some(&certs),
        &extra,
    );
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    AuthSetup {
        oauth_key: oauth_dir.join("dev-signing-key.pem"),
        dir,
        _broker: broker,
        gateway,
        certs,
        tools,
        users,
    }
}

impl AuthSetup {
    fn good_token(&self, subject: &str) -> String {
        token(
            &self.oauth_key,
            subject,
            &["kafka"],
            ISSUER,
            AUDIENCE,
            "10m",
        )
    }
    fn raw(&self) -> RawClient {
        RawClient::connect(self.gateway.addr("raw"))
    }
    /// Upstream connections opened on behalf of clients: none may exist before authentication.
    fn upstream_connects(&self) -> u64 {
        metric_sum(
            &self.gateway.metrics(),
            "kafka_gateway_upstream_connects_total",
        )
    }
}

fn roundtrip_args<'a>(bootstrap: &'a str, topic: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "roundtrip",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--count",
        "300",
        "--group",
    ];
    args.push(topic);
    args.extend_from_slice(extra);
    args
}

/// Every mechanism works with a client library, through the gateway, against the real broker.
fn every_mechanism(run: impl Fn(&Tools, &[&str]) -> serde_json::Value, client: &str) {
    let s = setup("");
    let ca = s.certs.ca();
    let ca = ca.to_str().expect("path");
    let sasl = s.gateway.addr("sasl").to_string();
    for mech in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        let topic = format!("{client}-{}", mech.to_lowercase());
        let args = roundtrip_args(
            &sasl,
            &topic,
            &[
                "--tls-ca",
                ca,
                "--sasl-mechanism",
                mech,
                "--username",
                "alice",
                "--password",
                "alice-secret",
            ],
        );
        assert_roundtrip(&format!("{client} {mech}"), &run(&s.tools, &args), 300);
    }
    let tok = s.good_token("alice");
    let topic = format!("{client}-oauth");
    let args = roundtrip_args(&sasl, &topic, &["--tls-ca", ca, "--oauth-token", &tok]);
    assert_roundtrip(&format!("{client} OAUTHBEARER"), &run(&s.tools, &args), 300);

    let mtls = s.gateway.addr("mtls").to_string();
    let (cert, key) = (s.certs.client(), s.certs.client_key());
    let topic = format!("{client}-mtls");
    let args = roundtrip_args(
        &mtls,
        &topic,
        &[
            "--tls-ca",
            ca,
            "--client-cert",
            cert.to_str().expect("p"),
            "--client-key",
            key.to_str().expect("p"),
        ],
    );
    assert_roundtrip(&format!("{client} mTLS"), &run(&s.tools, &args), 300);

    let m = s.gateway.metrics();
    for (mech, reason) in [
        ("SCRAM-SHA-256", "ok"),
        ("SCRAM-SHA-512", "ok"),
        ("PLAIN", "ok"),
        ("OAUTHBEARER", "ok"),
        ("mTLS", "certificate"),
    ] {
        let series = format!("kafka_gateway_authentications_total{{mechanism=\"{mech}\",reason=\"{reason}\",result=\"success\"}}");
        assert!(m.contains(&series), "no success counted for {mech}:\n{m}");
    }
    // The certificate was mapped by the configured rule, CN=alice,OU=dev,O=kafka-gateway ->
    // User:alice, on the mTLS connection itself (SCRAM logins above log User:alice too).
    let log = s.gateway.log_text();
    assert!(
        log.lines().any(|l| l.contains("connection identity")
            && l.contains("listener=mtls")
            && l.contains("principal=User:alice")),
        "the mTLS connection's principal is not User:alice:\n{}",
        log.lines()
            .filter(|l| l.contains("listener=mtls"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn librdkafka_authenticates_with_every_mechanism() {
    every_mechanism(python_workload, "rk");
}

#[test]
fn java_client_authenticates_with_every_mechanism() {
    every_mechanism(java_workload, "jv");
}

#[test]
fn java_4_4_client_authenticates_with_every_mechanism() {
    every_mechanism(java44_workload, "jv44");
}

#[test]
fn scenario_35_wrong_password_and_unknown_user_are_indistinguishable() {
    let s = setup("");
    let before = s.upstream_connects();
    let mut timings = Vec::new();
    for (user, password) in [
        ("alice", "wrong"),
        ("mallory", "whatever"),
        ("alice", "wrong2"),
        ("nobody", "x"),
    ] {
        let mut c = s.raw();
        let start = Instant::now();
        let l = login(&mut c, "SCRAM-SHA-256", user, password);
        timings.push((user, start.elapsed()));
        assert_eq!(l.responses.len(), 2, "{user}: same number of rounds");
        assert_eq!(l.error_code(), 58, "{user}");
        assert_eq!(
            l.message(),
            format!("{FIXED_MESSAGE} SCRAM-SHA-256"),
            "{user}: one fixed message"
        );
        assert!(
            c.is_closed_within(Duration::from_secs(3)),
            "{user}: connection closed after failure"
        );
    }
    // Same server-first shape for a real and an unknown user: salt length and iteration count.
    let shape = |user: &str| {
        let mut c = s.raw();
        assert_eq!(handshake(&mut c, "SCRAM-SHA-256").error_code, 0);
        let first = authenticate(&mut c, format!("n,,n={user},r=abcdefghijklmnop").as_bytes());
        let text = String::from_utf8(first.auth_bytes.to_vec()).expect("utf-8");
        let field = |k: &str| {
            text.split(',')
                .find_map(|f| f.strip_prefix(k))
                .map(str::to_string)
                .expect(k)
        };
        (field("s=").len(), field("i="), field("s="))
    };
    let (real_len, real_i, _) = shape("alice");
    let (fake_len, fake_i, fake_salt) = shape("mallory");
    assert_eq!(
        (real_len, &real_i),
        (fake_len, &fake_i),
        "decoy credential has the real shape"
    );
    assert_eq!(
        shape("mallory").2,
        fake_salt,
        "the decoy salt is stable across attempts"
    );
    for (user, t) in &timings {
        assert!(
            *t >= Duration::from_millis(100),
            "{user}: failure answered after {t:?}, before the delay"
        );
    }
    let spread = timings.iter().map(|t| t.1).max().expect("t")
        - timings.iter().map(|t| t.1).min().expect("t");
    assert!(
        spread < Duration::from_millis(80),
        "timings differ by {spread:?}: {timings:?}"
    );
    assert_eq!(
        s.upstream_connects(),
        before,
        "a failed login reached the broker"
    );
}

#[test]
fn scenario_36_authzid_and_nonce_tampering_fail() {
    let s = setup("");
    // authzid naming someone else.
    let mut c = s.raw();
    assert_eq!(handshake(&mut c, "SCRAM-SHA-256").error_code, 0);
    let first = authenticate(&mut c, b"n,a=bob,n=alice,r=clientnonce123456");
    let failed = if first.error_code == 0 {
        authenticate(&mut c, b"c=biws,r=whatever,p=AAAA").error_code
    } else {
        first.error_code
    };
    assert_eq!(failed, 58, "authzid different from the user");

    // Client-final nonce that is not client nonce + server nonce.
    let mut c = s.raw();
    assert_eq!(handshake(&mut c, "SCRAM-SHA-256").error_code, 0);
    let first = authenticate(&mut c, b"n,,n=alice,r=clientnonce123456");
    assert_eq!(first.error_code, 0);
    let text = String::from_utf8(first.auth_bytes.to_vec()).expect("utf-8");
    let nonce = text
        .split(',')
        .find_map(|f| f.strip_prefix("r="))
        .expect("nonce");
    assert!(nonce.starts_with("clientnonce123456"));
    let tampered = format!(
        "c=biws,r={}X,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        nonce
    );
    let r = authenticate(&mut c, tampered.as_bytes());
    assert_eq!(r.error_code, 58, "tampered nonce");
}

#[test]
fn oauthbearer_token_failures_get_the_challenge_then_58() {
    let s = setup("");
    let key = &s.oauth_key;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let claims = serde_json::json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600, "scope": "kafka"});
    let alg_none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "kid": "dev-1"})),
        b64(&claims)
    );
    // HS256 "signed" with the published public key as HMAC secret: the classic algorithm confusion.
    let jwks = std::fs::read_to_string(s.dir.path().join("oauth/jwks.json")).expect("jwks");
    let hs256 = {
        let header = jsonwebtoken::Header {
            alg: jsonwebtoken::Algorithm::HS256,
            kid: Some("dev-1".into()),
            ..Default::default()
        };
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(jwks.as_bytes()),
        )
        .expect("hs256")
    };
    // Signed by a key the gateway does not know, under a kid it does know.
    let other = s.dir.path().join("other-oauth");
    cli(
        &["oauth", "dev-keys", "--dir", other.to_str().expect("p")],
        None,
    );
    let foreign = token(
        &other.join("dev-signing-key.pem"),
        "alice",
        &["kafka"],
        ISSUER,
        AUDIENCE,
        "10m",
    );

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            token(key, "alice", &["kafka"], ISSUER, AUDIENCE, "-5m"),
            "invalid_token",
        ),
        (
            "wrong audience",
            token(key, "alice", &["kafka"], ISSUER, "someone-else", "10m"),
            "invalid_token",
        ),
        (
            "wrong issuer",
            token(
                key,
                "alice",
                &["kafka"],
                "https://evil.test",
                AUDIENCE,
                "10m",
            ),
            "invalid_token",
        ),
        ("alg none", alg_none, "invalid_token"),
        ("HS256 with the public key", hs256, "invalid_token"),
        ("unknown signing key", foreign, "invalid_token"),
        // Scenario 39.
        (
            "missing scope",
            token(key, "alice", &["other"], ISSUER, AUDIENCE, "10m"),
            "insufficient_scope",
        ),
    ];
    let before = s.upstream_connects();
    for (what, tok, status) in cases {
        let mut c = s.raw();
        let l = oauth_login(&mut c, &tok);
        assert_eq!(l.responses.len(), 2, "{what}: challenge then failure");
        let challenge: serde_json::Value =
            serde_json::from_slice(&l.responses[0].auth_bytes).expect("JSON challenge");
        assert_eq!(challenge["status"], status, "{what}: {challenge}");
        assert_eq!(l.error_code(), 58, "{what}");
        assert!(c.is_closed_within(Duration::from_secs(3)), "{what}: closed");
    }
    assert_eq!(
        s.upstream_connects(),
        before,
        "a failed login reached the broker"
    );
    // And the good token works on the same listener.
    let mut c = s.raw();
    let l = oauth_login(&mut c, &s.good_token("alice"));
    assert_eq!((l.responses.len(), l.error_code()), (1, 0));
}

#[test]
fn scenarios_33_34_37_the_sasl_state_machine() {
    let s = setup("");
    let before = s.upstream_connects();
    // 33: a first frame that is neither ApiVersions nor SaslHandshake closes, with no response.
    let mut c = s.raw();
    let (_, frame) = c.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    c.send_raw(&frame).expect("send");
    assert!(c.read_frame().is_err(), "no response before authentication");
    // 33: after SaslHandshake, anything but SaslAuthenticate closes.
    let mut c = s.raw();
    assert_eq!(handshake(&mut c, "SCRAM-SHA-256").error_code, 0);
    let (_, frame) = c.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    c.send_raw(&frame).expect("send");
    assert!(c.is_closed_within(Duration::from_secs(3)));
    // 34: an unknown or disabled mechanism gets 33 and the enabled list.
    let mut c = s.raw();
    let hs = handshake(&mut c, "GSSAPI");
    assert_eq!(hs.error_code, 33);
    let listed: Vec<String> = hs.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(listed, ["SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]);
    let mut c = s.raw();
    assert_eq!(
        handshake(&mut c, "PLAIN").error_code,
        33,
        "PLAIN is not enabled on this plaintext listener"
    );
    // SaslHandshake v0 would be followed by raw tokens: refused.
    let mut c = s.raw();
    let (_, frame) = c.encode(ApiKey::SaslHandshake, 0, &SaslHandshakeRequest::default());
    c.send_raw(&frame).expect("send");
    assert!(c.is_closed_within(Duration::from_secs(3)));
    assert_eq!(
        s.upstream_connects(),
        before,
        "nothing reached the broker before authentication"
    );
    // 37: after a successful login with re-authentication off, SaslHandshake / SaslAuthenticate get 34
    // and the connection stays open.
    let mut c = s.raw();
    assert_eq!(
        login(&mut c, "SCRAM-SHA-512", "alice", "alice-secret").error_code(),
        0
    );
    assert_eq!(handshake(&mut c, "SCRAM-SHA-512").error_code, 34);
    assert_eq!(authenticate(&mut c, b"n,,n=alice,r=x").error_code, 34);
    let m: MetadataResponse = c.request(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(m.brokers.len(), 1, "still open and served");
    // ApiVersions is always allowed before authentication.
    let mut c = s.raw();
    let v: ApiVersionsResponse = c.request(ApiKey::ApiVersions, 3, &api_versions_request());
    assert_eq!(v.error_code, 0);
}

#[test]
fn scenario_38_reauthentication_and_session_lifetime() {
    let s = setup("max_session_lifetime = \"3s\"\n");
    let mut c = s.raw();
    let l = login(&mut c, "SCRAM-SHA-256", "alice", "alice-secret");
    assert_eq!(l.error_code(), 0);
    let lifetime = l.last().session_lifetime_ms;
    assert!(
        (1..=3000).contains(&lifetime),
        "session_lifetime_ms {lifetime}"
    );
    // Re-authenticating as the same principal with the same mechanism renews the session.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        login(&mut c, "SCRAM-SHA-256", "alice", "alice-secret").error_code(),
        0
    );
    std::thread::sleep(Duration::from_millis(2000));
    let m: MetadataResponse = c.request(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(
        m.brokers.len(),
        1,
        "renewed session still valid 3.5 s after the first login"
    );
    // Re-authenticating as someone else fails.
    let l = login(&mut c, "SCRAM-SHA-256", "bob", "bob-secret");
    assert_eq!(
        l.error_code(),
        58,
        "re-authentication as a different principal"
    );
    // A different mechanism is refused at the handshake.
    let mut c = s.raw();
    assert_eq!(
        login(&mut c, "SCRAM-SHA-256", "alice", "alice-secret").error_code(),
        0
    );
    assert_eq!(
        handshake(&mut c, "SCRAM-SHA-512").error_code,
        33,
        "re-authentication with another mechanism"
    );
    // Past its lifetime, a session is closed on its next request that is not re-authentication.
    let mut c = s.raw();
    assert_eq!(
        login(&mut c, "SCRAM-SHA-256", "alice", "alice-secret").error_code(),
        0
    );
    std::thread::sleep(Duration::from_millis(3300));
    let (_, frame) = c.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    c.send_raw(&frame).expect("send");
    assert!(c.read_frame().is_err(), "expired session was served");
    // OAUTHBEARER: the token's own expiry caps the lifetime.
    let mut c = s.raw();
    let tok = token(&s.oauth_key, "alice", &["kafka"], ISSUER, AUDIENCE, "2s");
    let l = oauth_login(&mut c, &tok);
    assert_eq!(l.error_code(), 0);
    assert!(
        (1..=2000).contains(&l.last().session_lifetime_ms),
        "{}",
        l.last().session_lifetime_ms
    );
}

#[test]
fn slow_clients_are_cut_off_by_the_authentication_deadline_and_pre_auth_frames_are_small() {
    let s = setup("");
    let addr = s.gateway.addr("raw");
    // One byte every 300 ms never completes a frame within the 3 s deadline.
    let mut c = RawClient::connect(addr);
    let (_, frame) = c.encode(ApiKey::ApiVersions, 3, &api_versions_request());
    let start = Instant::now();
    let mut cut = false;
    for b in frame.iter().cycle().take(40) {
        if c.send_raw(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        if start.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    assert!(
        cut || c.is_closed_within(Duration::from_secs(1)),
        "slow client not cut off"
    );
    assert!(start.elapsed() < Duration::from_secs(6));
    // A silent client too.
    let mut c = RawClient::connect(addr);
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "silent client not cut off"
    );
    // Before authentication the frame limit is 512 KiB.
    let mut c = RawClient::connect(addr);
    let mut big = (600 * 1024i32).to_be_bytes().to_vec();
    big.extend_from_slice(&[0u8; 64]);
    c.send_raw(&big).expect("send");
    assert!(
        c.is_closed_within(Duration::from_secs(3)),
        "oversized pre-auth frame accepted"
    );
    s.gateway
        .wait_for_metric("frames_rejected_total{reason=\"too_large\"}");
}

#[test]
fn repeated_failures_lock_the_principal_out_indistinguishably() {
    let s = setup("lockout_max_failures = 3\nlockout_window = \"1m\"\nlockout_duration = \"1m\"\n");
    for _ in 0..3 {
        let mut c = s.raw();
        assert_eq!(
            login(&mut c, "SCRAM-SHA-256", "bob", "wrong").error_code(),
            58
        );
    }
    // Locked out: even the right password fails, with the same answer.
    let mut c = s.raw();
    let l = login(&mut c, "SCRAM-SHA-256", "bob", "bob-secret");
    assert_eq!(
        (l.error_code(), l.message()),
        (58, format!("{FIXED_MESSAGE} SCRAM-SHA-256"))
    );
    assert!(s.gateway.metrics().contains("reason=\"locked_out\""));
}

#[test]
fn credential_file_changes_apply_without_restart_and_broken_files_are_ignored() {
    let s = setup("");
    let mut c = s.raw();
    assert_eq!(
        login(&mut c, "SCRAM-SHA-512", "dave", "dave-secret").error_code(),
        58
    );
    add_user(&s.users, "dave", "dave-secret");
    let start = Instant::now();
    loop {
        let mut c = s.raw();
        if login(&mut c, "SCRAM-SHA-512", "dave", "dave-secret").error_code() == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "new user not picked up"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // A broken file keeps the previous credentials in force.
    std::fs::write(&s.users, "[[user]]\nname = \"dave\"\niterations = 10\n").expect("write");
    std::thread::sleep(Duration::from_secs(4));
    let mut c = s.raw();
    assert_eq!(
        login(&mut c, "SCRAM-SHA-512", "dave", "dave-secret").error_code(),
        0,
        "previous store dropped"
    );
    assert!(s
        .gateway
        .log_text()
        .contains("previous version stays in force"));
}

#[test]
fn the_gateway_authenticates_upstream_with_its_own_identity() {
    // Inner gateway: terminates SCRAM-SHA-512 over TLS in front of Kafka. Outer gateway: logs in to it.
    let s = setup("");
    add_user(&s.users, "gateway-svc", "svc-secret");
    std::thread::sleep(Duration::from_secs(3)); // picked up by the inner gateway's reload
    let plain = ListenerSpec {
        name: "plain",
        tls: false,
        client_auth: "none",
        sasl: "",
    };
    let extra = format!(
        "[upstream.tls]\nca_file = {:?}\n[upstream.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"gateway-svc\"\npassword = \"svc-secret\"\n",
        s.certs.ca()
    );
    let (text, ports, admin) = gateway_config(
        &Upstream::new(s.gateway.addr("sasl").to_string(), KafkaCluster::NODE_ID, 1),
        &[plain],
        None,
        &extra,
    );
    let outer = Gateway::start(s.dir.path(), &text, ports, admin);
    let r = python_workload(
        &s.tools,
        &roundtrip_args(&outer.addr("plain").to_string(), "chained-sasl", &[]),
    );
    assert_roundtrip(
        "client -> gateway -> SCRAM/TLS -> gateway -> Kafka",
        &r,
        300,
    );
    assert!(!outer.log_text().contains("svc-secret"), "password logged");
    // The client's own SASL never travels upstream: the inner gateway saw only gateway-svc.
    let inner_log = s.gateway.log_text();
    assert!(
        inner_log.contains("principal=User:gateway-svc"),
        "inner gateway did not see the service identity"
    );
    let _: SocketAddr = outer.addr("plain");
}

#[test]
fn an_oauthbearer_client_that_leaves_after_the_error_challenge_has_still_failed() {
    let s = setup("");
    let series = "kafka_gateway_authentications_total{mechanism=\"OAUTHBEARER\",reason=\"invalid_token\",result=\"failure\"}";
    let before = metric_sum(&s.gateway.metrics(), series);
    let mut c = s.raw();
    assert_eq!(handshake(&mut c, "OAUTHBEARER").error_code, 0);
    let challenge = authenticate(&mut c, &common::sasl::oauth_initial("not.a.token"));
    assert_eq!(challenge.error_code, 0, "the error challenge comes first");
    assert!(String::from_utf8_lossy(&challenge.auth_bytes).contains("invalid_token"));
    // The client never sends %x01: it disconnects to try the next token.
    drop(c);
    eventually(
        "the abandoned login counted as a failure",
        Duration::from_secs(5),
        || metric_sum(&s.gateway.metrics(), series) > before,
    );
    assert!(s
        .gateway
        .log_text()
        .contains("left after the error challenge"));
}
