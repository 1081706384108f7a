//! Tests for OAUTHBEARER: token validation per algorithm and per claim, algorithm confusion, JWKS
//! loading and refresh limits (against a local HTTPS server), the RFC 7628 parser and the exchange.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::fetch::{parse_response, Eof, HttpsUrl, MAX_BODY};
use super::*;
use crate::auth::{FailureReason, Step};

const ISS: &str = "https://idp.example/realms/kafka";
const AUD: &str = "kafka-gateway";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("test clock is after 1970")
        .as_secs()
}

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir (no tempfile crate in dev-dependencies).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kgw-oauth-{name}-{}-{n}", std::process::id()));
        let _stale = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _best_effort = std::fs::remove_dir_all(&self.0);
    }
}

/// A private key for signing test tokens and its public JWK.
struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

fn ec_key(kid: &str, p384: bool) -> TestKey {
    let (rc_alg, alg) = if p384 {
        (&rcgen::PKCS_ECDSA_P384_SHA384, Algorithm::ES384)
    } else {
        (&rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256)
    };
    let kp = rcgen::KeyPair::generate_for(rc_alg).expect("rcgen generates EC keys");
    let mut jwk = dev::ec_public_jwk(&kp, kid).expect("P-256/P-384 key");
    // Exercise the "pinned by kty/crv" path: no alg member.
    jwk.as_object_mut().expect("jwk is an object").remove("alg");
    TestKey {
        kid: kid.into(),
        alg,
        encoding: EncodingKey::from_ec_der(&kp.serialize_der()),
        jwk,
    }
}

fn ed_key(kid: &str) -> TestKey {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("rcgen generates Ed25519");
    TestKey {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(&kp.serialize_der()),
        jwk: json!({
            "kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(kp.public_key_raw()),
        }),
    }
}

struct RsaTestKey {
    key: TestKey,
    /// SubjectPublicKeyInfo DER and PEM of the public key: what an attacker would use as HMAC secret.
    spki_der: Vec<u8>,
    spki_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn rsa_key(kid: &str, jwk_alg: Option<&str>, alg: Algorithm) -> RsaTestKey {
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .expect("aws-lc generates RSA keys");
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).expect("PKCS#8 export");
    let public = kp.public_key();
    let spki_der = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(public)
        .expect("SPKI export")
        .as_ref()
        .to_vec();
    let mut jwk = json!({
        "kty": "RSA", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    });
    if let Some(a) = jwk_alg {
        jwk["alg"] = json!(a);
    }
    let encoding = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes())
        .expect("jsonwebtoken reads PKCS#8 RSA PEM");
    RsaTestKey {
        key: TestKey {
            kid: kid.into(),
            alg,
            encoding,
            jwk,
        },
        spki_pem: pem("PUBLIC KEY", &spki_der),
        spki_der,
    }
}

fn jwks_json(keys: &[&TestKey]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }))
        .expect("json serializes")
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json serializes"))
}

/// Signs `claims` with `key`, header `{"alg","kid","typ"}` plus `extra_header` members.
fn sign_with(key: &TestKey, extra_header: Value, claims: &Value) -> String {
    let alg = serde_json::to_value(key.alg).expect("alg serializes");
    let mut header = json!({ "alg": alg, "kid": key.kid, "typ": "JWT" });
    if let Value::Object(extra) = extra_header {
        for (k, v) in extra {
            header[k] = v;
        }
    }
    let signing_input = format!("{}.{}", b64json(&header), b64json(claims));
    let sig = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key.encoding, key.alg)
        .expect("test key signs");
    format!("{signing_input}.{sig}")
}

fn sign(key: &TestKey, claims: &Value) -> String {
    sign_with(key, json!({}), claims)
}

fn claims(sub: &str) -> Value {
    let now = now();
    json!({ "iss": ISS, "aud": AUD, "sub": sub, "iat": now, "exp": now + 300, "scope": "kafka.read kafka.write" })
}

fn claims_with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = claims("alice");
    f(c.as_object_mut().expect("claims are an object"));
    c
}

fn config_for(jwks_file: &Path) -> OAuthConfig {
    let mut cfg = OAuthConfig::new(ISS, AUD);
    cfg.jwks_file = Some(jwks_file.to_path_buf());
    cfg
}

/// A validator over a JWKS file holding `keys`; the TempDir keeps the file alive.
async fn file_validator(
    keys: &[&TestKey],
    tweak: impl FnOnce(&mut OAuthConfig),
) -> (Arc<OAuthValidator>, TempDir) {
    let dir = TempDir::new("file");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks_json(keys)).expect("write jwks");
    let mut cfg = config_for(&path);
    tweak(&mut cfg);
    let v = OAuthValidator::new(cfg).await.expect("validator starts");
    (v, dir)
}

fn invalid_reason(r: Result<ValidToken, FailureReason>) -> String {
    match r {
        Err(FailureReason::InvalidToken(reason)) => reason,
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Local HTTPS JWKS server
// ---------------------------------------------------------------------------------------------

struct JwksServer {
    url: String,
    ca: PathBuf,
    hits: Arc<AtomicUsize>,
    response: Arc<Mutex<Vec<u8>>>,
    _dir: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    async fn start(response: Vec<u8>) -> JwksServer {
        let dir = TempDir::new("https");
        let certs = crate::certs::write_dev_certs(dir.path(), "alice", false).expect("dev certs");
        let tls = crate::tls::server_config(
            &certs.server_cert,
            &certs.server_key,
            None,
            crate::tls::ClientAuth::None,
        )
        .expect("server tls config");
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("bound address").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let response = Arc::new(Mutex::new(response));
        let (h, r) = (hits.clone(), response.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, hits, response) = (acceptor.clone(), h.clone(), r.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16384 {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    hits.fetch_add(1, Ordering::SeqCst);
                    let body = response.lock().expect("test lock").clone();
                    let _ = tls.write_all(&body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        JwksServer {
            url: format!("https://127.0.0.1:{port}/.well-known/jwks.json"),
            ca: certs.ca_cert,
            hits,
            response,
            _dir: dir,
            task,
        }
    }

    fn set(&self, response: Vec<u8>) {
        *self.response.lock().expect("test lock") = response;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn config(&self) -> OAuthConfig {
        let mut cfg = OAuthConfig::new(ISS, AUD);
        cfg.jwks_url = Some(self.url.clone());
        cfg.jwks_ca_file = Some(self.ca.clone());
        cfg
    }
}

fn http_ok(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn valid_token_for_each_algorithm() {
    let es256 = ec_key("es256", false);
    let es384 = ec_key("es384", true);
    let ed = ed_key("ed");
    let rs256 = rsa_key("rsa-default", None, Algorithm::RS256);
    // The same RSA key (no alg in its JWK) also verifies PS256.
    let ps256 = TestKey {
        kid: "rsa-default".into(),
        alg: Algorithm::PS256,
        encoding: rs256.key.encoding.clone(),
        jwk: Value::Null,
    };
    let rs512 = rsa_key("rsa-512", Some("RS512"), Algorithm::RS512);
    let ps384 = rsa_key("rsa-ps384", Some("PS384"), Algorithm::PS384);
    let (v, _dir) = file_validator(
        &[&es256, &es384, &ed, &rs256.key, &rs512.key, &ps384.key],
        |_| {},
    )
    .await;

    for key in [
        &es256, &es384, &ed, &rs256.key, &ps256, &rs512.key, &ps384.key,
    ] {
        let c = claims("alice");
        let token = sign(key, &c);
        let valid = v
            .validate(&token)
            .await
            .unwrap_or_else(|e| panic!("{:?} token rejected: {e}", key.alg));
        assert_eq!(valid.principal, Principal::user("alice"));
        let exp = c["exp"].as_u64().expect("exp is a number");
        assert_eq!(valid.expires, UNIX_EPOCH + Duration::from_secs(exp));
        assert_eq!(valid.scopes, vec!["kafka.read", "kafka.write"]);
    }
}

#[tokio::test]
async fn algorithm_is_pinned_by_the_key() {
    let es256 = ec_key("ec", false);
    let rs_pinned = rsa_key("rsa-ps", Some("PS256"), Algorithm::PS256);
    let (v, _dir) = file_validator(&[&es256, &rs_pinned.key], |_| {}).await;

    // The JWK says PS256; an RS256 signature by the same private key is refused.
    let rs256_same_key = TestKey {
        kid: "rsa-ps".into(),
        alg: Algorithm::RS256,
        encoding: rs_pinned.key.encoding.clone(),
        jwk: Value::Null,
    };
    let reason = invalid_reason(v.validate(&sign(&rs256_same_key, &claims("alice"))).await);
    assert!(reason.contains("not allowed"), "{reason}");

    // ES384 header against a P-256 key: refused before any verification.
    let es384 = ec_key("ec", true);
    let reason = invalid_reason(v.validate(&sign(&es384, &claims("alice"))).await);
    assert!(reason.contains("not allowed"), "{reason}");

    // PS512 by default is not allowed for an RSA key without alg either.
    let rs_default = rsa_key("rsa-any", None, Algorithm::PS512);
    let (v2, _dir2) = file_validator(&[&rs_default.key], |_| {}).await;
    let reason = invalid_reason(v2.validate(&sign(&rs_default.key, &claims("alice"))).await);
    assert!(reason.contains("not allowed"), "{reason}");
}

#[tokio::test]
async fn time_claims() {
    let key = ec_key("k", false);
    let (v, _dir) = file_validator(&[&key], |_| {}).await;
    let n = now();

    let expired = claims_with(|c| {
        c.insert("exp".into(), json!(n - 100));
    });
    assert!(invalid_reason(v.validate(&sign(&key, &expired)).await).contains("expired"));
    // Within the 30 s skew: accepted.
    let just_expired = claims_with(|c| {
        c.insert("exp".into(), json!(n - 10));
    });
    assert!(v.validate(&sign(&key, &just_expired)).await.is_ok());

    let not_yet = claims_with(|c| {
        c.insert("nbf".into(), json!(n + 100));
    });
    assert!(invalid_reason(v.validate(&sign(&key, &not_yet)).await).contains("not valid yet"));
    let nbf_in_skew = claims_with(|c| {
        c.insert("nbf".into(), json!(n + 10));
    });
    assert!(v.validate(&sign(&key, &nbf_in_skew)).await.is_ok());
    let nbf_not_number = claims_with(|c| {
        c.insert("nbf".into(), json!("soon"));
    });
    assert!(invalid_reason(v.validate(&sign(&key, &nbf_not_number)).await).contains("nbf"));

    let no_iat = claims_with(|c| {
        c.remove("iat");
    });
    assert!(invalid_reason(v.validate(&sign(&key, &no_iat)).await).contains("iat"));
    let future_iat = claims_with(|c| {
        c.insert("iat".into(), json!(n + 3600));
    });
    assert!(invalid_reason(v.validate(&sign(&key, &future_iat)).await).contains("future"));

    let no_exp = claims_with(|c| {
        c.remove("exp");
    });
    assert!(invalid_reason(v.validate(&sign(&key, &no_exp)).await).contains("exp"));
    let exp_string = claims_with(|c| {
        c.insert("exp".into(), json!(format!("{}", n + 300)));
    });
    assert!(invalid_reason(v.validate(&sign(&key, &exp_string)).await).contains("exp"));
    // Fractional NumericDate is fine.
    let exp_float = claims_with(|c| {
        c.insert("exp".into(), json!((n + 300) as f64 + 0.5));
    });
    assert!(v.validate(&sign(&key, &exp_float)).await.is_ok());
}

#[tokio::test]
async fn issuer_audience_and_principal() {
    let key = ec_key("k", false);
    let (v, _dir) = file_validator(&[&key], |_| {}).await;

    let wrong_iss = claims_with(|c| {
        c.insert("iss".into(), json!("https://evil.example"));
    });
    assert!(invalid_reason(v.validate(&sign(&key, &wrong_iss)).await).contains("issuer"));
    let iss_prefix = claims_with(|c| {
        c.insert("iss".into(), json!(format!("{ISS}/")));
    });
    assert!(v.validate(&sign(&key, &iss_prefix)).await.is_err());
    let no_iss = claims_with(|c| {
        c.remove("iss");
    });
    assert!(invalid_reason(v.validate(&sign(&key, &no_iss)).await).contains("iss"));

    let wrong_aud = claims_with(|c| {
        c.insert("aud".into(), json!("other-service"));
    });
    assert!(invalid_reason(v.validate(&sign(&key, &wrong_aud)).await).contains("audience"));
    let aud_array = claims_with(|c| {
        c.insert("aud".into(), json!(["other", AUD]));
    });
    assert!(v.validate(&sign(&key, &aud_array)).await.is_ok());
    let aud_array_without = claims_with(|c| {
        c.insert("aud".into(), json!(["other", "more"]));
    });
    assert!(v.validate(&sign(&key, &aud_array_without)).await.is_err());
    let no_aud = claims_with(|c| {
        c.remove("aud");
    });
    assert!(v.validate(&sign(&key, &no_aud)).await.is_err());

    for bad_sub in [json!(""), json!(42), json!("a\nb")] {
        let c = claims_with(|c| {
            c.insert("sub".into(), bad_sub.clone());
        });
        assert!(invalid_reason(v.validate(&sign(&key, &c)).await).contains("principal"));
    }

    // Configurable principal and scope claims; scopes as an array.
    let (v2, _dir2) = file_validator(&[&key], |cfg| {
        cfg.principal_claim = "preferred_username".into();
        cfg.scope_claim = "scp".into();
        cfg.required_scopes = vec!["produce".into()];
    })
    .await;
    let c = claims_with(|c| {
        c.insert("preferred_username".into(), json!("bob"));
        c.insert("scp".into(), json!(["produce", "consume"]));
    });
    let valid = v2.validate(&sign(&key, &c)).await.expect("valid token");
    assert_eq!(valid.principal, Principal::user("bob"));
    assert_eq!(valid.scopes, vec!["produce", "consume"]);
}

#[tokio::test]
async fn missing_scope_gives_insufficient_scope_challenge_then_failure() {
    let key = ec_key("k", false);
    let (v, _dir) = file_validator(&[&key], |cfg| {
        cfg.required_scopes = vec!["kafka.read".into(), "kafka.admin".into()];
    })
    .await;
    let token = sign(&key, &claims("alice"));
    assert_eq!(
        v.validate(&token).await,
        Err(FailureReason::InsufficientScope)
    );

    let mut ex = OAuthExchange::new(v.clone());
    let msg = format!("n,,\x01auth=Bearer {token}\x01\x01");
    match ex.step(msg.as_bytes()).await {
        Step::Continue(challenge) => {
            assert_eq!(
                challenge,
                br#"{"status":"insufficient_scope","scope":"kafka.read kafka.admin"}"#
            );
            let parsed: Value = serde_json::from_slice(&challenge).expect("challenge is JSON");
            assert_eq!(parsed["status"], "insufficient_scope");
        }
        other => panic!("expected an error challenge, got {other:?}"),
    }
    match ex.step(b"\x01").await {
        Step::Failure { reason, attempted } => {
            assert_eq!(reason, FailureReason::InsufficientScope);
            assert_eq!(attempted.as_deref(), Some("alice"));
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert!(matches!(
        ex.step(b"\x01").await,
        Step::Failure {
            reason: FailureReason::Malformed(_),
            ..
        }
    ));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let key = ec_key("k", false);
    let (v, _dir) = file_validator(&[&key], |_| {}).await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({ "alg": alg, "kid": "k", "typ": "JWT" });
        let body = b64json(&claims("alice"));
        for sig in ["", "AAAA"] {
            let token = format!("{}.{body}.{sig}", b64json(&header));
            let reason = invalid_reason(v.validate(&token).await);
            assert!(reason.contains("none"), "{reason}");
        }
    }
    // And with no alg at all.
    let token = format!(
        "{}.{}.",
        b64json(&json!({ "kid": "k" })),
        b64json(&claims("alice"))
    );
    assert!(invalid_reason(v.validate(&token).await).contains("alg"));
}

#[tokio::test]
async fn hs256_with_rsa_public_key_as_secret_is_refused() {
    let rsa = rsa_key("rsa-1", None, Algorithm::RS256);
    let (v, _dir) = file_validator(&[&rsa.key], |_| {}).await;
    // Sanity: the RSA key itself works.
    assert!(v.validate(&sign(&rsa.key, &claims("alice"))).await.is_ok());

    let secrets: [&[u8]; 3] = [
        rsa.spki_pem.as_bytes(),
        &rsa.spki_der,
        rsa.key.jwk["n"].as_str().expect("n").as_bytes(),
    ];
    for secret in secrets {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let forged = TestKey {
                kid: "rsa-1".into(),
                alg,
                encoding: EncodingKey::from_secret(secret),
                jwk: Value::Null,
            };
            let reason = invalid_reason(v.validate(&sign(&forged, &claims("mallory"))).await);
            assert!(reason.contains("symmetric"), "{reason}");
        }
    }
}

#[tokio::test]
async fn symmetric_or_private_jwks_are_refused_at_load() {
    let dir = TempDir::new("private");
    let path = dir.path().join("jwks.json");
    let cases = [
        json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}),
        json!({"keys": [{"kty": "oct", "kid": "h"}]}),
        json!({"keys": [{"kty": "EC", "kid": "e", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}]}),
        json!({"keys": [{"kty": "RSA", "kid": "r", "n": "AA", "e": "AQAB", "p": "AA", "q": "AA"}]}),
    ];
    for doc in cases {
        std::fs::write(&path, serde_json::to_vec(&doc).expect("json")).expect("write");
        match OAuthValidator::new(config_for(&path)).await {
            Err(OAuthError::Jwks { reason, .. }) => {
                assert!(
                    reason.contains("private") || reason.contains("symmetric"),
                    "{reason}"
                )
            }
            other => panic!("expected a JWKS error for {doc}, got {other:?}"),
        }
    }
    // Garbage, empty sets and a missing file are start-up errors too.
    for doc in [&b"not json"[..], br#"{"keys": []}"#, br#"{"nokeys": 1}"#] {
        std::fs::write(&path, doc).expect("write");
        assert!(OAuthValidator::new(config_for(&path)).await.is_err());
    }
    assert!(matches!(
        OAuthValidator::new(config_for(&dir.path().join("missing.json"))).await,
        Err(OAuthError::Read { .. })
    ));
}

#[tokio::test]
async fn unusable_keys_are_skipped_and_duplicates_refused() {
    let good = ec_key("good", false);
    let mut enc = ec_key("enc", false);
    enc.jwk["use"] = json!("enc");
    let mut mismatched = ec_key("mismatch", false);
    mismatched.jwk["alg"] = json!("ES384");
    let mut rsa_small = rsa_key("small", None, Algorithm::RS256);
    rsa_small.key.jwk["n"] = json!(URL_SAFE_NO_PAD.encode([0xffu8; 128]));
    let (v, _dir) = file_validator(&[&good, &enc, &mismatched, &rsa_small.key], |_| {}).await;
    assert!(v.validate(&sign(&good, &claims("a"))).await.is_ok());
    for skipped in [&enc, &mismatched] {
        assert!(
            invalid_reason(v.validate(&sign(skipped, &claims("a"))).await).contains("unknown kid")
        );
    }

    let dir = TempDir::new("dup");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks_json(&[&good, &good])).expect("write");
    assert!(OAuthValidator::new(config_for(&path)).await.is_err());
}

#[tokio::test]
async fn known_kid_signed_by_another_key_is_refused() {
    let real = ec_key("k1", false);
    let impostor = ec_key("k1", false);
    let (v, _dir) = file_validator(&[&real], |_| {}).await;
    let reason = invalid_reason(v.validate(&sign(&impostor, &claims("alice"))).await);
    assert!(reason.contains("signature"), "{reason}");

    // Tampered payload with a valid signature from the real key.
    let token = sign(&real, &claims("alice"));
    let mut parts: Vec<&str> = token.split('.').collect();
    let evil = b64json(&claims("admin"));
    parts[1] = &evil;
    assert!(invalid_reason(v.validate(&parts.join(".")).await).contains("signature"));
}

#[tokio::test]
async fn malformed_tokens() {
    let key = ec_key("k", false);
    let (v, _dir) = file_validator(&[&key], |_| {}).await;
    let good = sign(&key, &claims("alice"));
    let cases = [
        String::new(),
        "abc".into(),
        "a.b".into(),
        format!("{good}.extra.parts"),
        good.replace('.', " "),
        format!("{good}="),
        "x".repeat(70 * 1024),
    ];
    for token in cases {
        assert!(v.validate(&token).await.is_err());
    }
    // crit is refused.
    let token = sign_with(&key, json!({"crit": ["exp"], "exp": 1}), &claims("alice"));
    assert!(invalid_reason(v.validate(&token).await).contains("crit"));
}

// ---------------------------------------------------------------------------------------------
// JWKS refresh
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_kid_triggers_exactly_one_url_refresh_for_100_concurrent_validations() {
    let k1 = ec_key("k1", false);
    let k2 = ed_key("k2");
    let server = JwksServer::start(http_ok(&jwks_json(&[&k1]))).await;
    let v = OAuthValidator::new(server.config())
        .await
        .expect("validator starts");
    assert_eq!(server.hits(), 1);
    let fp1 = v.fingerprint();

    // The IdP rotates in k2.
    server.set(http_ok(&jwks_json(&[&k1, &k2])));
    let token = sign(&k2, &claims("alice"));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            tokio::spawn(async move { v.validate(&token).await })
        })
        .collect();
    for t in tasks {
        t.await
            .expect("task")
            .expect("k2 token accepted after refresh");
    }
    assert_eq!(
        server.hits(),
        2,
        "one refresh for 100 concurrent validations"
    );
    assert_eq!(v.unknown_kid_refreshes(), 1);
    assert_ne!(v.fingerprint(), fp1);

    // Another unknown kid within the interval: no fetch at all, every validation fails fast.
    let k3 = ec_key("k3", true);
    let token = sign(&k3, &claims("alice"));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            tokio::spawn(async move { v.validate(&token).await })
        })
        .collect();
    for t in tasks {
        let reason = invalid_reason(t.await.expect("task"));
        assert!(reason.contains("unknown kid"), "{reason}");
    }
    assert_eq!(server.hits(), 2);
    assert_eq!(v.unknown_kid_refreshes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_kid_rereads_the_file_at_most_once_per_interval() {
    let k1 = ec_key("k1", false);
    let k2 = ec_key("k2", false);
    let k3 = ec_key("k3", false);
    let (v, dir) = file_validator(&[&k1], |_| {}).await;
    let path = dir.path().join("jwks.json");

    std::fs::write(&path, jwks_json(&[&k1, &k2])).expect("write");
    let token = sign(&k2, &claims("alice"));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            tokio::spawn(async move { v.validate(&token).await })
        })
        .collect();
    for t in tasks {
        t.await
            .expect("task")
            .expect("k2 accepted after the file was re-read");
    }
    assert_eq!(v.unknown_kid_refreshes(), 1);

    let fp = v.fingerprint();
    std::fs::write(&path, jwks_json(&[&k3])).expect("write");
    assert!(v.validate(&sign(&k3, &claims("alice"))).await.is_err());
    assert_eq!(v.unknown_kid_refreshes(), 1);
    assert_eq!(v.fingerprint(), fp, "file not re-read within the interval");
    // An explicit reload picks it up (and drops k1, k2).
    assert_ne!(v.reload_file().expect("reload"), fp);
    assert!(v.validate(&sign(&k3, &claims("alice"))).await.is_ok());
    assert!(v.validate(&sign(&k1, &claims("alice"))).await.is_err());
}

#[tokio::test]
async fn absurd_kids_are_never_looked_up() {
    let k1 = ec_key("k1", false);
    let server = JwksServer::start(http_ok(&jwks_json(&[&k1]))).await;
    let v = OAuthValidator::new(server.config())
        .await
        .expect("validator starts");
    assert_eq!(server.hits(), 1);
    let kids = [
        "k".repeat(10 * 1024),
        "k".repeat(MAX_KID_LEN + 1),
        "k1\u{0}".into(),
        "k1\n".into(),
        "\u{7}".into(),
        "kïd".into(),
        String::new(),
    ];
    for kid in kids {
        let key = TestKey {
            kid,
            alg: k1.alg,
            encoding: k1.encoding.clone(),
            jwk: Value::Null,
        };
        let reason = invalid_reason(v.validate(&sign(&key, &claims("alice"))).await);
        assert!(reason.contains("kid"), "{reason}");
        assert!(reason.len() < 200, "the kid is not echoed");
    }
    // Non-string kid and missing kid.
    for extra in [json!({"kid": 7}), json!({"kid": ["k1"]})] {
        let token = sign_with(&k1, extra, &claims("alice"));
        assert!(v.validate(&token).await.is_err());
    }
    assert_eq!(server.hits(), 1, "no refresh for absurd kids");
    assert_eq!(v.unknown_kid_refreshes(), 0);
}

#[tokio::test]
async fn key_pointer_headers_are_not_followed() {
    let k1 = ec_key("k1", false);
    let attacker = ec_key("evil", false);
    let server = JwksServer::start(http_ok(&jwks_json(&[&k1]))).await;
    let v = OAuthValidator::new(server.config())
        .await
        .expect("validator starts");
    assert_eq!(server.hits(), 1);
    // The jku points at the very server (serving the attacker's key) — it must not be fetched.
    server.set(http_ok(&jwks_json(&[&attacker])));
    for (name, value) in [
        ("jku", json!(server.url)),
        ("x5u", json!(server.url)),
        ("jwk", attacker.jwk.clone()),
    ] {
        for key in [&k1, &attacker] {
            let token = sign_with(key, json!({ name: value.clone() }), &claims("alice"));
            let reason = invalid_reason(v.validate(&token).await);
            assert!(reason.contains(name), "{reason}");
        }
    }
    assert_eq!(server.hits(), 1, "jku/x5u never fetched");
    // x5c is ignored: a legitimately signed token carrying one is fine.
    let token = sign_with(
        &k1,
        json!({"x5c": ["MIIB"], "x5t": "abc"}),
        &claims("alice"),
    );
    assert!(v.validate(&token).await.is_ok());
}

#[tokio::test]
async fn bad_url_responses_keep_previous_keys() {
    let k1 = ec_key("k1", false);
    let server = JwksServer::start(http_ok(&jwks_json(&[&k1]))).await;
    let v = OAuthValidator::new(server.config())
        .await
        .expect("validator starts");
    let fp = v.fingerprint();
    let token = sign(&k1, &claims("alice"));

    let mut oversized = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    oversized.extend(std::iter::repeat_n(b' ', MAX_BODY + 10));
    let responses: Vec<(Vec<u8>, &str)> =
        vec![
        (http_ok(b"<html>garbage</html>"), "JSON"),
        (http_ok(br#"{"keys": []}"#), "no usable"),
        (
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 2 * MAX_BODY).into_bytes(),
            "exceeds",
        ),
        (oversized, "exceeds"),
        (
            b"HTTP/1.1 302 Found\r\nLocation: https://evil.example/\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
            "302",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"keys\":".to_vec(),
            "truncated",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            "Transfer-Encoding",
        ),
        (b"garbage\r\n\r\n".to_vec(), "status line"),
    ];
    for (response, expected) in responses {
        server.set(response);
        let err = v.refresh_url().await.expect_err("bad response refused");
        assert!(err.to_string().contains(expected), "{err} !~ {expected}");
        assert_eq!(v.fingerprint(), fp);
        assert!(
            v.validate(&token).await.is_ok(),
            "previous keys still in use"
        );
    }

    // Chunked encoding is handled.
    let body = jwks_json(&[&k1]);
    let (a, b) = body.split_at(body.len() / 2);
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in [a, b] {
        chunked.extend(format!("{:x}\r\n", part.len()).into_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    server.set(chunked);
    assert_eq!(v.refresh_url().await.expect("chunked JWKS accepted"), fp);

    // At start, a bad URL is an error.
    server.set(http_ok(b"garbage"));
    assert!(OAuthValidator::new(server.config()).await.is_err());
}

#[tokio::test]
async fn url_is_refreshed_periodically_until_the_validator_is_dropped() {
    let k1 = ec_key("k1", false);
    let k2 = ec_key("k2", false);
    let server = JwksServer::start(http_ok(&jwks_json(&[&k1]))).await;
    let mut cfg = server.config();
    cfg.jwks_min_refresh_interval = Duration::from_secs(1);
    cfg.jwks_refresh_interval = Duration::from_secs(1);
    let v = OAuthValidator::new(cfg).await.expect("validator starts");
    let fp = v.fingerprint();
    server.set(http_ok(&jwks_json(&[&k2])));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while v.fingerprint() == fp {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no periodic refresh"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(v.validate(&sign(&k2, &claims("a"))).await.is_ok());
    assert_eq!(v.unknown_kid_refreshes(), 0);

    drop(v);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after_drop = server.hits();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        server.hits(),
        after_drop,
        "refresh task stopped with the validator"
    );
}

#[tokio::test]
async fn file_and_url_keys_are_merged() {
    let file_key = ec_key("file", false);
    let url_key = ed_key("url");
    let server = JwksServer::start(http_ok(&jwks_json(&[&url_key]))).await;
    let dir = TempDir::new("merge");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks_json(&[&file_key])).expect("write");
    let mut cfg = server.config();
    cfg.jwks_file = Some(path.clone());
    let v = OAuthValidator::new(cfg).await.expect("validator starts");
    assert!(v.validate(&sign(&file_key, &claims("a"))).await.is_ok());
    assert!(v.validate(&sign(&url_key, &claims("a"))).await.is_ok());

    // A broken file on reload keeps both sources' keys.
    let fp = v.fingerprint();
    std::fs::write(&path, b"{").expect("write");
    assert!(v.reload_file().is_err());
    assert_eq!(v.fingerprint(), fp);
    assert!(v.validate(&sign(&file_key, &claims("a"))).await.is_ok());
}

#[tokio::test]
async fn config_is_validated() {
    let mut cfg = OAuthConfig::new("", "");
    cfg.jwks_url = Some("http://idp.example/jwks".into());
    cfg.jwks_min_refresh_interval = Duration::ZERO;
    cfg.clock_skew = Duration::from_secs(3600);
    cfg.required_scopes = vec!["two words".into()];
    match OAuthValidator::new(cfg).await {
        Err(OAuthError::Config(problems)) => {
            let all = problems.join("\n");
            for needle in [
                "issuer",
                "audience",
                "https",
                "jwks_ca_file",
                "clock_skew",
                "jwks_min_refresh_interval",
                "two words",
            ] {
                assert!(all.contains(needle), "missing {needle:?} in {all}");
            }
        }
        other => panic!("expected config errors, got {other:?}"),
    }
    assert!(
        OAuthConfig::new(ISS, AUD).validate().is_err(),
        "no key source"
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP and URL parsing
// ---------------------------------------------------------------------------------------------

#[test]
fn https_url_parsing() {
    let u = HttpsUrl::parse("https://idp.example/realms/x/certs?a=b#frag").expect("valid");
    assert_eq!(
        (u.host.as_str(), u.port, u.path.as_str()),
        ("idp.example", 443, "/realms/x/certs?a=b")
    );
    let u = HttpsUrl::parse("HTTPS://[::1]:8443").expect("valid");
    assert_eq!(
        (u.host.as_str(), u.port, u.path.as_str()),
        ("::1", 8443, "/")
    );
    assert_eq!(u.to_string(), "https://[::1]:8443/");
    for bad in [
        "http://idp.example/jwks",
        "https://user:pw@idp.example/",
        "https://idp.example/a b",
        "https://idp.example/a\r\nX-Evil: 1",
        "https://idp.example:0/",
        "https://idp.example:99999/",
        "https:///path",
        "https://[::1/",
        "ftp://x",
    ] {
        assert!(HttpsUrl::parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn http_response_parsing() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(parse_response(ok, Eof::No), Ok(Some(b"hello".to_vec())));
    // Every strict prefix is incomplete, not an error, and an error at end of stream.
    for i in 0..ok.len() {
        assert_eq!(parse_response(&ok[..i], Eof::No), Ok(None), "prefix {i}");
        assert!(parse_response(&ok[..i], Eof::Clean).is_err(), "prefix {i}");
    }
    let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nTrailer: x\r\n\r\n";
    assert_eq!(
        parse_response(chunked, Eof::No),
        Ok(Some(b"hello".to_vec()))
    );
    for i in 0..chunked.len() {
        assert_eq!(
            parse_response(&chunked[..i], Eof::No),
            Ok(None),
            "prefix {i}"
        );
    }
    let until_eof = b"HTTP/1.0 200 OK\r\n\r\nhello";
    assert_eq!(parse_response(until_eof, Eof::No), Ok(None));
    assert_eq!(
        parse_response(until_eof, Eof::Clean),
        Ok(Some(b"hello".to_vec()))
    );
    assert!(parse_response(until_eof, Eof::Unclean).is_err());
    for bad in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n",
        b"HTTP/1.1 404 Not Found\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
    ] {
        assert!(
            parse_response(bad, Eof::No).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let huge_head = [b"HTTP/1.1 200 OK\r\nX: ".to_vec(), vec![b'a'; 20_000]].concat();
    assert!(parse_response(&huge_head, Eof::No).is_err());
}

// ---------------------------------------------------------------------------------------------
// RFC 7628 parser
// ---------------------------------------------------------------------------------------------

#[test]
fn client_initial_valid_messages() {
    let ci = parse_client_initial(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01").expect("valid");
    assert_eq!(
        ci,
        ClientInitial {
            authzid: None,
            token: "abc.def.ghi".into(),
            extensions: vec![],
        }
    );
    let ci = parse_client_initial(
        b"y,a=alice=2Cx=3Dy,\x01host=broker\x01auth=bearer   tok-_.~+/==\x01traceId=1 2\x01\x01",
    )
    .expect("valid");
    assert_eq!(ci.authzid.as_deref(), Some("alice,x=y"));
    assert_eq!(ci.token, "tok-_.~+/==");
    assert_eq!(
        ci.extensions,
        vec![
            ("host".to_string(), "broker".to_string()),
            ("traceId".to_string(), "1 2".to_string())
        ]
    );
}

#[test]
fn client_initial_malformed_messages() {
    let long = [
        b"n,,\x01auth=Bearer ".to_vec(),
        vec![b'a'; MAX_CLIENT_MESSAGE],
        b"\x01\x01".to_vec(),
    ]
    .concat();
    let many_ext: Vec<u8> = {
        let mut m = b"n,,\x01auth=Bearer t\x01".to_vec();
        for i in 0..=super::sasl::MAX_EXTENSIONS {
            m.extend(format!("{}=v\x01", "k".repeat(i + 1)).into_bytes());
        }
        m.push(0x01);
        m
    };
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "GS2"),
        (b"\x01", "lone"),
        (b"n,,\x01\x01", "auth"),
        (b"n,,\x01host=x\x01\x01", "auth"),
        (b"n,,\x01auth=Bearer t\x01", "final %x01"),
        (b"n,,auth=Bearer t\x01\x01", "%x01"),
        (b"n,,\x01auth=Bearer t", "end"),
        (b"n,,\x01auth=Bearer t\x01\x01\x01", "stray"),
        (b"n,,\x01\x01auth=Bearer t\x01\x01", "stray"),
        (
            b"p=tls-unique,,\x01auth=Bearer t\x01\x01",
            "channel binding",
        ),
        (b"x,,\x01auth=Bearer t\x01\x01", "GS2"),
        (b"n,a=,\x01auth=Bearer t\x01\x01", "authzid"),
        (b"n,a=bad=2X,\x01auth=Bearer t\x01\x01", "escape"),
        (b"n,b=x,\x01auth=Bearer t\x01\x01", "authzid"),
        (b"n,\x01auth=Bearer t\x01\x01", "GS2"),
        (b"n,,\x01auth=Basic dXNlcg==\x01\x01", "Bearer"),
        (b"n,,\x01auth=Bearer\x01\x01", "Bearer"),
        (b"n,,\x01auth=Bearer \x01\x01", "b64token"),
        (b"n,,\x01auth=Bearer a b\x01\x01", "b64token"),
        (b"n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01", "twice"),
        (b"n,,\x01auth=Bearer t\x01k=1\x01k=2\x01\x01", "twice"),
        (b"n,,\x01auth=Bearer t\x01k1=v\x01\x01", "letters"),
        (b"n,,\x01auth=Bearer t\x01=v\x01\x01", "letters"),
        (b"n,,\x01auth=Bearer t\x01novalue\x01\x01", "'='"),
        (b"n,,\x01auth=Bearer t\x01k=\x01\x01", "empty value"),
        (b"n,,\x01auth=Bearer t\x01k=\x7f\x01\x01", "VCHAR"),
        (b"n,,\x01auth=Bearer t\x01k=\xc3\xa9\x01\x01", "VCHAR"),
        (&long, "exceeds"),
        (&many_ext, "extensions"),
    ];
    for (input, expected) in cases {
        match parse_client_initial(input) {
            Err(e) => assert!(
                e.contains(expected),
                "{:?}: error {e:?} does not mention {expected:?}",
                String::from_utf8_lossy(input)
            ),
            Ok(ci) => panic!("{:?} accepted: {ci:?}", String::from_utf8_lossy(input)),
        }
    }
}

proptest! {
    #[test]
    fn parser_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_client_initial(&bytes);
    }

    #[test]
    fn parser_never_panics_on_near_valid_messages(
        prefix in prop::sample::select(vec![&b"n,,"[..], b"y,,", b"n,a=x,", b"n,a=x=2", b""]),
        body in proptest::collection::vec(prop::sample::select(vec![0x01u8, b'=', b' ', b'a', b'B', b',', b'.', 0xff]), 0..64),
    ) {
        let mut input = prefix.to_vec();
        input.extend(body);
        let _ = parse_client_initial(&input);
    }

    #[test]
    fn token_parsing_never_panics(s in "[A-Za-z0-9_.=-]{0,200}") {
        if let Ok(parts) = token::split(&s) {
            let _ = token::parse_header(&parts);
            let _ = parts.signature();
            let _ = token::claimed_principal(&s, "sub");
        }
    }

    #[test]
    fn http_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        input.extend(bytes);
        for eof in [Eof::No, Eof::Clean, Eof::Unclean] {
            let _ = parse_response(&input, eof);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exchange
// ---------------------------------------------------------------------------------------------

fn client_message(authzid: Option<&str>, token: &str) -> Vec<u8> {
    let a = authzid.map(|a| format!("a={a}")).unwrap_or_default();
    format!("n,{a},\x01auth=Bearer {token}\x01\x01").into_bytes()
}

#[tokio::test]
async fn exchange_success_and_authzid() {
    let key = ec_key("k", false);
    let (v, _dir) = file_validator(&[&key], |_| {}).await;
    let c = claims("alice");
    let token = sign(&key, &c);
    let exp = UNIX_EPOCH + Duration::from_secs(c["exp"].as_u64().expect("exp"));

    for authzid in [None, Some("alice")] {
        let mut ex = OAuthExchange::new(v.clone());
        match ex.step(&client_message(authzid, &token)).await {
            Step::Success {
                response,
                principal,
                expires,
            } => {
                assert!(response.is_empty());
                assert_eq!(principal, Principal::user("alice"));
                assert_eq!(expires, Some(exp));
            }
            other => panic!("expected success, got {other:?}"),
        }
        assert!(matches!(
            ex.step(b"\x01").await,
            Step::Failure {
                reason: FailureReason::Malformed(_),
                ..
            }
        ));
    }

    let mut ex = OAuthExchange::new(v.clone());
    match ex.step(&client_message(Some("bob"), &token)).await {
        Step::Failure { reason, attempted } => {
            assert_eq!(reason, FailureReason::AuthzidMismatch);
            assert_eq!(attempted.as_deref(), Some("alice"));
        }
        other => panic!("expected authzid mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn exchange_invalid_token_challenge() {
    let key = ec_key("k", false);
    let (v, _dir) = file_validator(&[&key], |_| {}).await;
    let expired = claims_with(|c| {
        c.insert("exp".into(), json!(now() - 3600));
        c.insert("sub".into(), json!("carol"));
    });
    let token = sign(&key, &expired);

    let mut ex = OAuthExchange::new(v.clone());
    match ex.step(&client_message(None, &token)).await {
        Step::Continue(challenge) => assert_eq!(challenge, br#"{"status":"invalid_token"}"#),
        other => panic!("expected a challenge, got {other:?}"),
    }
    match ex.step(b"\x01").await {
        Step::Failure {
            reason: FailureReason::InvalidToken(r),
            attempted,
        } => {
            assert!(r.contains("expired"), "{r}");
            assert_eq!(attempted.as_deref(), Some("carol"));
            assert!(!r.contains(&token));
        }
        other => panic!("expected failure, got {other:?}"),
    }

    // Anything but a lone %x01 after the challenge is malformed.
    let mut ex = OAuthExchange::new(v.clone());
    assert!(matches!(
        ex.step(&client_message(None, &token)).await,
        Step::Continue(_)
    ));
    assert!(matches!(
        ex.step(&client_message(None, &token)).await,
        Step::Failure {
            reason: FailureReason::Malformed(_),
            ..
        }
    ));
    assert!(matches!(
        ex.step(b"\x01").await,
        Step::Failure {
            reason: FailureReason::Malformed(_),
            attempted: None
        }
    ));

    // A malformed first message fails at once, without a challenge.
    let mut ex = OAuthExchange::new(v);
    assert!(matches!(
        ex.step(b"n,,\x01auth=Basic x\x01\x01").await,
        Step::Failure {
            reason: FailureReason::Malformed(_),
            attempted: None
        }
    ));
}

// ---------------------------------------------------------------------------------------------
// Dev helpers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn dev_keys_and_minted_token_validate() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("dev");
    let paths = write_dev_keys(dir.path(), false).expect("dev keys written");
    let mode = std::fs::metadata(&paths.signing_key)
        .expect("key exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "signing key is private: {mode:o}");
    let jwks = std::fs::read_to_string(&paths.jwks).expect("jwks exists");
    assert!(!jwks.contains("\"d\""), "JWKS has no private part");
    assert!(matches!(
        write_dev_keys(dir.path(), false),
        Err(OAuthError::Exists { .. })
    ));

    let token = mint_token(
        &paths.signing_key,
        DEV_KID,
        ISS,
        AUD,
        "dev-user",
        &["kafka.read"],
        Duration::from_secs(600),
    )
    .expect("token minted");
    let mut cfg = config_for(&paths.jwks);
    cfg.required_scopes = vec!["kafka.read".into()];
    let v = OAuthValidator::new(cfg).await.expect("validator starts");
    let valid = v.validate(&token).await.expect("minted token validates");
    assert_eq!(valid.principal, Principal::user("dev-user"));
    assert_eq!(valid.scopes, vec!["kafka.read"]);
    assert_eq!(v.fingerprint().len(), 64);

    // Forced regeneration replaces the key: the old token no longer verifies after reload.
    write_dev_keys(dir.path(), true).expect("forced rewrite");
    v.reload_file().expect("reload");
    assert!(v.validate(&token).await.is_err());
    assert!(mint_token(
        &paths.jwks,
        DEV_KID,
        ISS,
        AUD,
        "x",
        &[],
        Duration::from_secs(60)
    )
    .is_err());
}

#[tokio::test]
async fn mint_token_supports_other_key_types() {
    let dir = TempDir::new("mint");
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519");
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("p384");
    let ed_jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": URL_SAFE_NO_PAD.encode(ed.public_key_raw())});
    let p384_jwk = dev::ec_public_jwk(&p384, "p384").expect("jwk");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_vec(&json!({"keys": [ed_jwk, p384_jwk]})).expect("json"),
    )
    .expect("write");
    let v = OAuthValidator::new(config_for(&jwks))
        .await
        .expect("validator starts");
    for (kp, kid) in [(&ed, "ed"), (&p384, "p384")] {
        let pem_path = dir.path().join(format!("{kid}.pem"));
        std::fs::write(&pem_path, kp.serialize_pem()).expect("write");
        let token = mint_token(&pem_path, kid, ISS, AUD, "u", &[], Duration::from_secs(60))
            .expect("minted");
        assert!(v.validate(&token).await.is_ok(), "{kid}");
    }
}
