//! Kerberos (SASL GSSAPI) end to end: a throwaway MIT realm, Apache Kafka with a GSSAPI listener,
//! the Java client and kafka-python through the gateway, and raw GSS exchanges for every refusal.
//!
//! One realm for the whole binary (the Kafka host JVM reads its krb5.conf once). Principals:
//! `kafka/localhost` is the gateway's service, `kafka/127.0.0.1` the broker's, `gateway` the
//! gateway's own identity towards the broker; users get keytabs or credential caches.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::apache::*;
use common::kdc::{Kdc, CLOCKSKEW_SECS};
use common::sasl::{authenticate, handshake, Login};
use common::*;
use kafka_protocol::messages::*;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE};

const REALM: &str = "KGW.TEST";
const FAILURE_DELAY: Duration = Duration::from_millis(300);

struct Realm {
    kdc: Kdc,
    /// `kafka/localhost`: what clients of the gateway get tickets for.
    service_keytab: PathBuf,
    /// `gateway`: the gateway's identity towards the broker.
    gateway_keytab: PathBuf,
}

fn realm() -> &'static Realm {
    static REALM_ONCE: OnceLock<Realm> = OnceLock::new();
    REALM_ONCE.get_or_init(|| {
        let kdc = Kdc::start(REALM);
        let service_keytab = kdc.add_keytab("kafka/localhost");
        let gateway_keytab = kdc.add_keytab("gateway");
        Realm {
            kdc,
            service_keytab,
            gateway_keytab,
        }
    })
}

/// A user's credential cache, fresh from its keytab.
fn ccache(user: &str, lifetime: Option<&str>) -> PathBuf {
    let r = realm();
    let keytab = r.kdc.add_keytab(user);
    let cc = r.kdc.ccache_path(&format!("{user}-{}", unique()));
    r.kdc.kinit(user, &keytab, &cc, lifetime);
    cc
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn gateway_kerberos_section(extra: &str) -> String {
    let r = realm();
    format!(
        "[authentication.kerberos]\nservice_principal = \"kafka/localhost@{REALM}\"\nkeytab = {:?}\n\
         krb5_conf = {:?}\n{extra}\n",
        r.service_keytab,
        r.kdc.krb5_conf()
    )
}

const GSSAPI: ListenerSpec = ListenerSpec {
    name: "krb",
    tls: false,
    client_auth: "none",
    sasl: r#""GSSAPI""#,
};

struct Setup {
    dir: TempDir,
    gateway: Gateway,
    audit_dir: PathBuf,
}

/// A gateway with a GSSAPI listener in front of `upstream`, policy `policy`.
fn gateway(upstream: &Upstream, auth_extra: &str, kerberos_extra: &str, policy: &str) -> Setup {
    let r = realm();
    let dir = TempDir::new("krb");
    let audit_dir = dir.path().join("audit");
    let policy_file = dir.path().join("acl.policy");
    let model = repo_root().join("policies/model.conf");
    std::fs::write(&policy_file, policy).expect("policy");
    let extra = format!(
        "[authentication]\ntimeout = \"5s\"\nfailure_delay = \"{}ms\"\n{auth_extra}\n{}\
         [authorization]\nmodel = {model:?}\npolicy_files = [{policy_file:?}]\n\n\
         [audit]\ndir = {audit_dir:?}\nlevel = \"admin\"\n",
        FAILURE_DELAY.as_millis(),
        gateway_kerberos_section(kerberos_extra),
    );
    let (text, ports, admin) = gateway_config(upstream, &[GSSAPI], None, &extra);
    let env = r.kdc.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let gateway = Gateway::start_with_env(dir.path(), &text, ports, admin, &env);
    Setup {
        dir,
        gateway,
        audit_dir,
    }
}

// ---------------------------------------------------------------------------------------------
// A GSS-API client in the test process (libgssapi, as the gateway uses it).

/// MIT's library takes the credential cache from the environment, which is per process: one
/// client context is set up at a time.
static GSS_ENV: Mutex<()> = Mutex::new(());

fn krb5() -> OidSet {
    let mut s = OidSet::new();
    s.add(GSS_MECH_KRB5).expect("oid");
    s
}

/// A client context for `kafka@host` from the credentials in `cc`, and its first token.
fn gss_start(cc: &Path, host: &str) -> (ClientCtx, Vec<u8>) {
    let _env = GSS_ENV.lock().unwrap_or_else(|p| p.into_inner());
    std::env::set_var("KRB5_CONFIG", realm().kdc.krb5_conf());
    std::env::set_var("KRB5CCNAME", format!("FILE:{}", cc.display()));
    let cred = Cred::acquire(None, None, CredUsage::Initiate, Some(&krb5())).expect("cred");
    let target = Name::new(
        format!("kafka@{host}").as_bytes(),
        Some(GSS_NT_HOSTBASED_SERVICE),
    )
    .expect("target");
    let mut ctx = ClientCtx::new(
        Some(cred),
        target,
        CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_SEQUENCE_FLAG,
        Some(GSS_MECH_KRB5),
    );
    let first = ctx.step(None, None).expect("first token").expect("a token");
    (ctx, first.to_vec())
}

/// A whole GSSAPI login on `c` as Kafka's clients run it, with `authzid` in the layer choice.
/// Returns the responses and the first token (for a replay).
fn gss_login(c: &mut RawClient, cc: &Path, authzid: Option<&str>) -> (Login, Vec<u8>) {
    gss_login_choosing(c, cc, 1, authzid)
}

/// [`gss_login`] choosing security layer `layer` (1 is none, the only one offered).
fn gss_login_choosing(
    c: &mut RawClient,
    cc: &Path,
    layer: u8,
    authzid: Option<&str>,
) -> (Login, Vec<u8>) {
    let hs = handshake(c, "GSSAPI");
    assert_eq!(hs.error_code, 0, "handshake: {hs:?}");
    let (mut ctx, first) = gss_start(cc, "localhost");
    let mut responses = vec![authenticate(c, &first)];
    let last = |responses: &Vec<SaslAuthenticateResponse>| {
        responses.last().expect("a response").error_code != 0
    };
    if last(&responses) {
        return (Login { responses }, first);
    }
    // The AP-REP (mutual authentication), then an empty message asks for the layer offer.
    let rep = responses[0].auth_bytes.clone();
    let out = ctx.step(Some(&rep), None).expect("AP-REP accepted");
    assert!(ctx.is_complete(), "context established after the AP-REP");
    let empty = out.map(|t| t.to_vec()).unwrap_or_default();
    responses.push(authenticate(c, &empty));
    if last(&responses) {
        return (Login { responses }, first);
    }
    let offer = ctx.unwrap(&responses[1].auth_bytes).expect("offer unwraps");
    assert_eq!(
        &offer[..],
        &[1, 1, 0, 0],
        "no layer, 65536 (as a Kafka broker)"
    );
    let mut choice = vec![layer, 0, 0, 0];
    choice.extend_from_slice(authzid.unwrap_or("").as_bytes());
    let wrapped = ctx.wrap(false, &choice).expect("wrap");
    responses.push(authenticate(c, &wrapped));
    (Login { responses }, first)
}

fn assert_refused(what: &str, login: &Login, c: &mut RawClient, started: Instant) {
    assert_eq!(login.error_code(), 58, "{what}: {:?}", login.responses);
    assert!(
        login
            .message()
            .contains("invalid credentials with SASL mechanism GSSAPI"),
        "{what}: {}",
        login.message()
    );
    assert!(
        started.elapsed() >= FAILURE_DELAY,
        "{what}: answered after {:?}, before the failure delay",
        started.elapsed()
    );
    // Nothing else is served on the connection: a Metadata request gets no answer.
    let (_, frame) = c.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    let _ = c.send_raw(&frame);
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "{what}: connection kept open"
    );
}

/// Stops the gateway (the trail then ends with gateway_stop) and reads every record.
fn stop_and_read(s: &Setup) -> Vec<serde_json::Value> {
    s.gateway.sigterm();
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended =
        |recs: &[serde_json::Value]| recs.last().is_some_and(|r| r["event"] == "gateway_stop");
    loop {
        let records = trail_records(&s.audit_dir);
        if ended(&records) || Instant::now() > deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn failures_by_reason(records: &[serde_json::Value]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["event"] == "auth_failure" && r["mechanism"] == "GSSAPI")
        .map(|r| r["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Every authenticated user may use every topic and group.
const ALLOW_ALL: &str = "p, User:*, Topic, *, All, *, allow\np, User:*, Group, *, All, *, allow\n";

// ---------------------------------------------------------------------------------------------

/// Kafka's GSSAPI listener as the gateway's upstream: the broker is `kafka/127.0.0.1` (apart
/// from the gateway's `kafka/localhost`), the gateway logs in as `gateway` (a super user there).
fn kerberos_broker() -> (KafkaCluster, Upstream) {
    let r = realm();
    let broker =
        KafkaCluster::start_with(ClusterOptions::default().kerberos_host(&r.kdc, "127.0.0.1"));
    let mut upstream = broker.upstream_via(KafkaListener::SaslGssapi);
    upstream.tables.push_str(&format!(
        "[upstream.sasl]\nmechanism = \"GSSAPI\"\nprincipal = \"gateway@{REALM}\"\nkeytab = {:?}\n\n",
        r.gateway_keytab
    ));
    (broker, upstream)
}

#[test]
fn java_and_kafka_python_log_in_with_kerberos_through_the_gateway_to_a_kerberos_broker() {
    let r = realm();
    let tools = tools();
    let (_broker, upstream) = kerberos_broker();
    let policy = "p, User:alice, Topic, krb-java, All, *, allow\n\
                  p, User:alice, Group, krb-java-g, All, *, allow\n\
                  p, User:bob, Topic, krb-python, All, *, allow\n\
                  p, User:bob, Group, krb-python-g, All, *, allow\n";
    let s = gateway(&upstream, "", "", policy);
    let addr = s.gateway.addr("krb");
    // Java 4.4 from a keytab (Krb5LoginModule); it asks for kafka/<reverse lookup of 127.0.0.1>,
    // which is localhost here.
    let alice_keytab = r.kdc.add_keytab("alice");
    let krb5_conf = r.kdc.krb5_conf();
    let args = format!(
        "roundtrip --bootstrap {addr} --sasl-mechanism GSSAPI --principal alice@{REALM} \
         --keytab {} --service-name kafka --krb5-conf {} --topic krb-java --count 200 \
         --group krb-java-g",
        alice_keytab.display(),
        krb5_conf.display()
    );
    let java = java44_workload(&tools, &words(&args));
    assert_roundtrip("Java 4.4 with GSSAPI", &java, 200);
    let java = java_workload(&tools, &words(&args.replace("--count 200", "--count 100")));
    assert_roundtrip("Java 3.9.1 with GSSAPI", &java, 100);
    // kafka-python with python-gssapi, from bob's credential cache.
    let bob = ccache("bob", None);
    let env = r.kdc.client_env(&bob);
    let py = common::kdc::kpy_gssapi(
        &tools,
        &env,
        &words(&format!(
            "roundtrip --bootstrap {addr} --service-host localhost --topic krb-python \
             --count 200 --group krb-python-g"
        )),
    );
    assert!(py.success, "kafka-python: {} {}", py.json, py.stderr);
    assert_roundtrip("kafka-python with GSSAPI", &py.json, 200);
    // Authorization applies to the Kerberos principal: bob may not read alice's topic.
    let denied = common::kdc::kpy_gssapi(
        &tools,
        &env,
        &words(&format!(
            "roundtrip --bootstrap {addr} --service-host localhost --topic krb-java \
             --count 5 --group krb-python-g --op-timeout 10 --timeout 15"
        )),
    );
    assert!(!denied.success, "bob used alice's topic: {}", denied.json);

    let m = s.gateway.metrics();
    assert!(
        metric_sum(
            &m,
            "kafka_gateway_authentications_total{mechanism=\"GSSAPI\",reason=\"ok\",result=\"success\"}"
        ) >= 3,
        "{m}"
    );
    let records = stop_and_read(&s);
    let principals: std::collections::BTreeSet<String> = records
        .iter()
        .filter(|r| r["event"] == "auth_success" && r["mechanism"] == "GSSAPI")
        .map(|r| r["principal"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        principals.into_iter().collect::<Vec<_>>(),
        ["User:alice", "User:bob"],
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["event"] == "authz_decision" && r["decision"] == "deny"),
        "bob's denial is in the trail"
    );
    println!(
        "RESULT Java 4.4 and 3.9.1 (keytab) and kafka-python (ticket cache) round-tripped records \
         through the gateway's GSSAPI listener to Kafka's GSSAPI listener (gateway@{REALM} upstream)"
    );
}

#[test]
fn bad_kerberos_input_gets_58_after_the_delay_and_nothing_else() {
    let r = realm();
    let (broker, upstream) = kerberos_broker();
    let s = gateway(&upstream, "", "", ALLOW_ALL);
    let addr = s.gateway.addr("krb");
    let alice = ccache("alice", None);

    // Malformed and truncated tokens: answered as Kafka's own GSSAPI listener answers them.
    let (_, good_first) = gss_start(&alice, "localhost");
    let kafka = broker.socket(KafkaListener::SaslGssapi);
    for (what, token) in [
        ("garbage", b"\x60\x82\xff\xff not a token".to_vec()),
        ("empty", Vec::new()),
        ("truncated", good_first[..good_first.len() / 2].to_vec()),
    ] {
        let mut c = RawClient::connect(addr);
        assert_eq!(handshake(&mut c, "GSSAPI").error_code, 0);
        let started = Instant::now();
        let login = Login {
            responses: vec![authenticate(&mut c, &token)],
        };
        let mut k = RawClient::connect(kafka);
        assert_eq!(handshake(&mut k, "GSSAPI").error_code, 0);
        let theirs = authenticate(&mut k, &token);
        assert_eq!(
            (
                theirs.error_code,
                theirs.error_message.as_ref().map(|m| m.to_string())
            ),
            (login.error_code(), Some(login.message())),
            "{what}: Kafka answered otherwise"
        );
        assert_refused(what, &login, &mut c, started);
    }

    // A ticket for another service (the broker's principal).
    r.kdc.add_keytab("kafka/127.0.0.1");
    let mut c = RawClient::connect(addr);
    assert_eq!(handshake(&mut c, "GSSAPI").error_code, 0);
    let (_, other) = gss_start(&alice, "127.0.0.1");
    let started = Instant::now();
    let login = Login {
        responses: vec![authenticate(&mut c, &other)],
    };
    assert_refused("ticket for another service", &login, &mut c, started);

    // A good login, then its first token replayed on a new connection.
    let mut c = RawClient::connect(addr);
    let (login, first) = gss_login(&mut c, &alice, None);
    assert_eq!(login.error_code(), 0, "{:?}", login.responses);
    let mut c = RawClient::connect(addr);
    assert_eq!(handshake(&mut c, "GSSAPI").error_code, 0);
    let started = Instant::now();
    let login = Login {
        responses: vec![authenticate(&mut c, &first)],
    };
    assert_refused("replayed authenticator", &login, &mut c, started);

    // A token made while the ticket was valid, presented after it (and the skew) expired.
    let short = ccache("shortlived", Some("3s"));
    let (_, stale) = gss_start(&short, "localhost");
    std::thread::sleep(Duration::from_secs(3 + CLOCKSKEW_SECS + 1));
    let mut c = RawClient::connect(addr);
    assert_eq!(handshake(&mut c, "GSSAPI").error_code, 0);
    let started = Instant::now();
    let login = Login {
        responses: vec![authenticate(&mut c, &stale)],
    };
    assert_refused("expired ticket", &login, &mut c, started);

    // A security layer the gateway did not offer.
    let mut c = RawClient::connect(addr);
    let started = Instant::now();
    let (login, _) = gss_login_choosing(&mut c, &alice, 2, None);
    assert_refused("integrity layer chosen", &login, &mut c, started);
    // An authorization id naming someone else grants nothing and is ignored, as Kafka's
    // SaslServerCallbackHandler does: the session is alice's (checked in the trail below).
    let mut c = RawClient::connect(addr);
    let (login, _) = gss_login(&mut c, &alice, Some(&format!("bob@{REALM}")));
    assert_eq!(login.error_code(), 0, "{:?}", login.responses);
    // Scenario 37: with re-authentication off, SaslHandshake after the login gets 34 and the
    // connection stays open.
    assert_eq!(handshake(&mut c, "GSSAPI").error_code, 34);
    let md: MetadataResponse = c.request(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(!md.brokers.is_empty(), "{md:?}");

    let m = s.gateway.metrics();
    assert!(
        metric_sum(
            &m,
            "kafka_gateway_authentications_total{mechanism=\"GSSAPI\",reason=\"replay\",result=\"failure\"}"
        ) >= 1,
        "{m}"
    );
    let records = stop_and_read(&s);
    let reasons = failures_by_reason(&records);
    println!("RESULT GSSAPI refusals recorded as {reasons:?}");
    assert_eq!(reasons.len(), 7, "{reasons:?}");
    assert_eq!(
        reasons[0..3],
        ["bad_token", "bad_token", "bad_token"],
        "{reasons:?}"
    );
    assert_eq!(reasons[3], "wrong_service", "{reasons:?}");
    assert_eq!(reasons[4], "replay", "{reasons:?}");
    assert!(
        ["ticket_expired", "clock_skew"].contains(&reasons[5].as_str()),
        "{reasons:?}"
    );
    assert_eq!(reasons[6], "malformed", "{reasons:?}");
    let principals: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|r| r["event"] == "auth_success")
        .filter_map(|r| r["principal"].as_str())
        .collect();
    assert_eq!(
        principals.into_iter().collect::<Vec<_>>(),
        ["User:alice"],
        "the authzid changed nobody's identity"
    );
    let log = s.gateway.log_text();
    assert!(log.contains("authentication failed"), "{log}");
    drop(s.dir);
}

#[test]
fn realms_rules_lockout_and_the_session_lifetime_follow_the_config() {
    let r = realm();
    let (_broker, upstream) = kerberos_broker();
    // Only another realm is allowed: this realm's principals are refused.
    let elsewhere = gateway(
        &upstream,
        "",
        "allowed_realms = [\"ELSEWHERE.TEST\"]\n",
        ALLOW_ALL,
    );
    let alice = ccache("alice", None);
    let mut c = RawClient::connect(elsewhere.gateway.addr("krb"));
    let started = Instant::now();
    let (login, _) = gss_login(&mut c, &alice, None);
    assert_refused("realm not allowed", &login, &mut c, started);
    let m = elsewhere.gateway.metrics();
    assert!(
        metric_sum(
            &m,
            "kafka_gateway_authentications_total{mechanism=\"GSSAPI\",reason=\"realm_not_allowed\",result=\"failure\"}"
        ) == 1,
        "{m}"
    );

    // Kafka's rules: etl/batch01 becomes `pipeline`; others their primary (DEFAULT).
    let s = gateway(
        &upstream,
        "lockout_max_failures_per_ip = 3\nlockout_window = \"1m\"\nlockout_duration = \"1m\"\n\
         max_session_lifetime = \"10m\"\n",
        "principal_to_local_rules = [\"RULE:[2:$1](etl)s/^.*$/pipeline/\", \"DEFAULT\"]\n",
        ALLOW_ALL,
    );
    let addr = s.gateway.addr("krb");
    let etl = ccache("etl/batch01", None);
    let mut c = RawClient::connect(addr);
    let (login, _) = gss_login(&mut c, &etl, None);
    assert_eq!(login.error_code(), 0, "{:?}", login.responses);

    // Scenario 34: another mechanism on a GSSAPI-only listener gets 33 and the enabled list.
    let mut c = RawClient::connect(addr);
    let hs = handshake(&mut c, "SCRAM-SHA-256");
    assert_eq!((hs.error_code, hs.mechanisms.len()), (33, 1), "{hs:?}");
    assert_eq!(hs.mechanisms[0].as_str(), "GSSAPI");

    // Scenario 38: the session lasts as long as the ticket (KIP-368), not the configured 10
    // minutes; MIT's acceptor lets a context live the realm's clock skew past the ticket's end.
    let dave = ccache("dave", Some("8s"));
    let mut c = RawClient::connect(addr);
    let (login, _) = gss_login(&mut c, &dave, None);
    assert_eq!(login.error_code(), 0, "{:?}", login.responses);
    let lifetime = login.last().session_lifetime_ms;
    let cap = 8_000 + CLOCKSKEW_SECS as i64 * 1000;
    assert!(
        lifetime > 3_000 && lifetime <= cap,
        "session lifetime {lifetime} ms for an 8 s ticket (at most {cap})"
    );
    let mut second = RawClient::connect(addr);
    let (login, _) = gss_login(&mut second, &dave, None);
    assert_eq!(login.error_code(), 0, "{:?}", login.responses);
    // Re-authenticating a session as someone else fails.
    let (relogin, _) = gss_login(&mut c, &etl, None);
    assert_eq!(relogin.error_code(), 58, "{:?}", relogin.responses);
    // Past its lifetime, a session's next request that is not a re-authentication closes it.
    std::thread::sleep(Duration::from_millis(lifetime as u64 + 500));
    let (_, frame) = second.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    let _ = second.send_raw(&frame);
    assert!(
        second.is_closed_within(Duration::from_secs(5)),
        "a session past its ticket's end was served"
    );

    // Lockout as for SCRAM, per address here (a bad ticket names nobody): after two failures
    // from 127.0.0.1 even carol's good login is refused.
    for _ in 0..2 {
        let mut c = RawClient::connect(addr);
        assert_eq!(handshake(&mut c, "GSSAPI").error_code, 0);
        assert_eq!(authenticate(&mut c, b"\x60\x03\x06\x01\x00").error_code, 58);
    }
    let carol = ccache("carol", None);
    let mut c = RawClient::connect(addr);
    let (login, _) = gss_login(&mut c, &carol, None);
    assert_eq!(login.error_code(), 58, "locked out: {:?}", login.responses);

    let records = stop_and_read(&s);
    let successes: Vec<String> = records
        .iter()
        .filter(|r| r["event"] == "auth_success" && r["mechanism"] == "GSSAPI")
        .map(|r| r["principal"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        successes,
        ["User:pipeline", "User:dave", "User:dave"],
        "{records:?}"
    );
    let reasons = failures_by_reason(&records);
    assert_eq!(
        reasons,
        ["malformed", "bad_token", "bad_token", "locked_out"],
        "{records:?}"
    );
    let _ = r;
    drop(s.dir);
}
