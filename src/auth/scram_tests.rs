//! Tests of the SCRAM server: the RFC 7677 vector, interop with a small client written here and
//! with rsasl's client, the decoy, tampering, malformed input and a fuzz-style proptest.

use super::*;

use std::path::Path;

use aws_lc_rs::{digest, hmac, pbkdf2};
use proptest::prelude::*;

use crate::auth::credentials::scram_credential;

const RFC_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";

/// A store built through the real file format: (user, password, mechanism, iterations, salt).
fn store_of(users: &[(&str, &str, Mechanism, u32, &[u8])]) -> Arc<CredentialStore> {
    let mut text = String::new();
    for &(user, password, mech, iterations, salt) in users {
        let c = scram_credential(password, mech, iterations, salt).expect("SCRAM mechanism");
        text.push_str(&format!(
            "[[user]]\nname = {}\nmechanism = \"{mech}\"\niterations = {iterations}\n\
             salt = \"{}\"\nstored_key = \"{}\"\nserver_key = \"{}\"\n",
            toml::Value::String(user.to_string()),
            B64.encode(c.salt()),
            B64.encode(c.stored_key()),
            B64.encode(c.server_key()),
        ));
    }
    Arc::new(CredentialStore::from_bytes(Path::new("test.toml"), text.as_bytes()).expect("valid"))
}

const SALT: &[u8] = &[0x5a; 32];

/// Built once: each entry costs a PBKDF2, and the proptests need a store per case.
fn test_store() -> Arc<CredentialStore> {
    static STORE: std::sync::OnceLock<Arc<CredentialStore>> = std::sync::OnceLock::new();
    Arc::clone(STORE.get_or_init(build_test_store))
}

fn build_test_store() -> Arc<CredentialStore> {
    store_of(&[
        ("alice", "alice-pw", Mechanism::ScramSha256, 4096, SALT),
        ("alice", "alice-pw", Mechanism::ScramSha512, 4096, SALT),
        ("al,ice", "comma-pw", Mechanism::ScramSha256, 4096, SALT),
        ("a=b", "equals-pw", Mechanism::ScramSha512, 4096, SALT),
        ("bob", "bob-pw", Mechanism::ScramSha256, 4096, SALT),
    ])
}

fn exchange(mech: Mechanism, store: &Arc<CredentialStore>, decoy: &Arc<Decoy>) -> ScramExchange {
    ScramExchange::new(mech, Arc::clone(store), Arc::clone(decoy))
}

fn decoy() -> Arc<Decoy> {
    Arc::new(Decoy::new(4096, 32))
}

fn continue_bytes(step: Step) -> String {
    match step {
        Step::Continue(bytes) => String::from_utf8(bytes).expect("server messages are UTF-8"),
        other => panic!("expected Continue, got {other:?}"),
    }
}

fn failure(step: Step) -> (FailureReason, Option<String>) {
    match step {
        Step::Failure { reason, attempted } => (reason, attempted),
        other => panic!("expected Failure, got {other:?}"),
    }
}

fn is_malformed(step: Step) -> bool {
    matches!(
        step,
        Step::Failure {
            reason: FailureReason::Malformed(_),
            ..
        }
    )
}

/// A minimal SCRAM client written straight from RFC 5802 with aws-lc-rs primitives, sharing no
/// code with the server (not even the credential derivation).
struct TestClient {
    mech: Mechanism,
    gs2_header: String,
    client_first_bare: String,
    client_nonce: String,
}

impl TestClient {
    /// `escaped_user` goes on the wire as is; `extensions` are appended to client-first.
    fn new(mech: Mechanism, escaped_user: &str, authzid: Option<&str>, extensions: &str) -> Self {
        let client_nonce = "fyko+d2lbbFgONRv9qkxdawL".to_string();
        TestClient {
            mech,
            gs2_header: match authzid {
                Some(a) => format!("n,a={a},"),
                None => "n,,".to_string(),
            },
            client_first_bare: format!("n={escaped_user},r={client_nonce}{extensions}"),
            client_nonce,
        }
    }

    fn first(&self) -> String {
        format!("{}{}", self.gs2_header, self.client_first_bare)
    }

    fn algorithms(
        &self,
    ) -> (
        pbkdf2::Algorithm,
        hmac::Algorithm,
        &'static digest::Algorithm,
        usize,
    ) {
        match self.mech {
            Mechanism::ScramSha256 => (
                pbkdf2::PBKDF2_HMAC_SHA256,
                hmac::HMAC_SHA256,
                &digest::SHA256,
                32,
            ),
            Mechanism::ScramSha512 => (
                pbkdf2::PBKDF2_HMAC_SHA512,
                hmac::HMAC_SHA512,
                &digest::SHA512,
                64,
            ),
            other => panic!("{other} is not SCRAM"),
        }
    }

    /// Returns (client-final, the server-final the server must send), with `nonce` replacing
    /// the combined nonce when given and `extra` inserted before the proof.
    fn finish(
        &self,
        server_first: &str,
        password: &str,
        nonce: Option<&str>,
        extra: &str,
    ) -> (String, String) {
        let attr = |name: &str| {
            server_first
                .split(',')
                .find_map(|a| a.strip_prefix(name))
                .expect("server-first attribute")
                .to_string()
        };
        let combined = attr("r=");
        assert!(combined.starts_with(&self.client_nonce));
        let salt = B64.decode(attr("s=")).expect("salt is base64");
        let iterations: u32 = attr("i=").parse().expect("i is a number");
        let (pbkdf2_alg, hmac_alg, digest_alg, len) = self.algorithms();

        let mut salted = vec![0u8; len];
        pbkdf2::derive(
            pbkdf2_alg,
            std::num::NonZeroU32::new(iterations).expect("non-zero"),
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(hmac_alg, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(digest_alg, client_key.as_ref());
        let server_key = hmac::sign(&salted_key, b"Server Key");

        let without_proof = format!(
            "c={},r={}{extra}",
            B64.encode(&self.gs2_header),
            nonce.unwrap_or(&combined)
        );
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac::sign(
            &hmac::Key::new(hmac_alg, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_signature = hmac::sign(
            &hmac::Key::new(hmac_alg, server_key.as_ref()),
            auth_message.as_bytes(),
        );
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            format!("v={}", B64.encode(server_signature)),
        )
    }
}

/// Runs a whole exchange with the test client; returns the final step and the expected `v=`.
fn run(
    mech: Mechanism,
    store: &Arc<CredentialStore>,
    decoy: &Arc<Decoy>,
    client: &TestClient,
    password: &str,
) -> (Step, String) {
    let mut server = exchange(mech, store, decoy);
    let server_first = continue_bytes(server.step(client.first().as_bytes()));
    let (client_final, expected) = client.finish(&server_first, password, None, "");
    (server.step(client_final.as_bytes()), expected)
}

fn assert_success(step: Step, expected_v: &str, user: &str) {
    match step {
        Step::Success {
            response,
            principal,
            expires,
        } => {
            assert_eq!(String::from_utf8(response).expect("UTF-8"), expected_v);
            assert_eq!(principal, Principal::user(user));
            assert_eq!(expires, None);
        }
        other => panic!("expected Success, got {other:?}"),
    }
}

#[test]
fn rfc_7677_vector() {
    let salt = B64.decode(RFC_SALT).expect("base64");
    let store = store_of(&[("user", "pencil", Mechanism::ScramSha256, 4096, &salt)]);
    let mut server =
        exchange(Mechanism::ScramSha256, &store, &decoy()).with_server_nonce(RFC_NONCE);

    let server_first = continue_bytes(server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
    assert_eq!(
        server_first,
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let step = server.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
          p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    );
    assert_success(
        step,
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        "user",
    );
}

#[test]
fn rfc_7677_vector_with_wrong_password_fails() {
    let salt = B64.decode(RFC_SALT).expect("base64");
    let store = store_of(&[("user", "pencil2", Mechanism::ScramSha256, 4096, &salt)]);
    let mut server =
        exchange(Mechanism::ScramSha256, &store, &decoy()).with_server_nonce(RFC_NONCE);
    continue_bytes(server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
    let step = server.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
          p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    );
    assert_eq!(
        failure(step),
        (FailureReason::BadCredentials, Some("user".into()))
    );
}

#[test]
fn success_sha256_and_sha512() {
    let (store, decoy) = (test_store(), decoy());
    for mech in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
        let client = TestClient::new(mech, "alice", None, "");
        let (step, v) = run(mech, &store, &decoy, &client, "alice-pw");
        assert_success(step, &v, "alice");
    }
}

#[test]
fn server_first_has_the_stored_salt_and_a_fresh_long_nonce() {
    let (store, decoy) = (test_store(), decoy());
    let client = TestClient::new(Mechanism::ScramSha256, "alice", None, "");
    let nonces: Vec<String> = (0..2)
        .map(|_| {
            let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
            let first = continue_bytes(server.step(client.first().as_bytes()));
            let parts: Vec<&str> = first.split(',').collect();
            assert_eq!(parts.len(), 3, "{first}");
            assert_eq!(parts[1], format!("s={}", B64.encode(SALT)));
            assert_eq!(parts[2], "i=4096");
            let server_nonce = parts[0]
                .strip_prefix("r=")
                .and_then(|r| r.strip_prefix(&client.client_nonce))
                .expect("server nonce extends the client nonce")
                .to_string();
            assert_eq!(B64.decode(&server_nonce).expect("base64").len(), 24);
            server_nonce
        })
        .collect();
    assert_ne!(nonces[0], nonces[1]);
}

#[test]
fn wrong_password_is_bad_credentials() {
    let (store, decoy) = (test_store(), decoy());
    for mech in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
        let client = TestClient::new(mech, "alice", None, "");
        let (step, _) = run(mech, &store, &decoy, &client, "alice-pw!");
        assert_eq!(
            failure(step),
            (FailureReason::BadCredentials, Some("alice".into()))
        );
    }
}

#[test]
fn unknown_user_looks_like_a_real_one_until_the_end() {
    let (store, decoy) = (test_store(), decoy());
    let shape = |first: &str| {
        let parts: Vec<&str> = first.split(',').collect();
        let salt = B64
            .decode(parts[1].strip_prefix("s=").expect("salt"))
            .expect("base64");
        (parts[0].len(), salt, parts[2].to_string())
    };
    let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
    let real = shape(&continue_bytes(
        server.step(
            TestClient::new(Mechanism::ScramSha256, "alice", None, "")
                .first()
                .as_bytes(),
        ),
    ));

    let ghost = TestClient::new(Mechanism::ScramSha256, "mallory", None, "");
    let mut salts = Vec::new();
    for _ in 0..2 {
        let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
        let first = continue_bytes(server.step(ghost.first().as_bytes()));
        let (nonce_len, salt, iterations) = shape(&first);
        assert_eq!(nonce_len, real.0, "same nonce length");
        assert_eq!(salt.len(), real.1.len(), "same salt length");
        assert_eq!(iterations, real.2, "same iteration count");
        salts.push(salt);
        // Same number of rounds: the failure only comes with client-final.
        let (client_final, _) = ghost.finish(&first, "guess", None, "");
        assert_eq!(
            failure(server.step(client_final.as_bytes())),
            (FailureReason::UnknownUser, Some("mallory".into()))
        );
    }
    assert_eq!(salts[0], salts[1], "a repeated probe sees the same salt");
    assert_ne!(salts[0], real.1);

    // A real user probed with a mechanism they have no credential for is an unknown user too.
    let client = TestClient::new(Mechanism::ScramSha512, "bob", None, "");
    let (step, _) = run(Mechanism::ScramSha512, &store, &decoy, &client, "bob-pw");
    assert_eq!(
        failure(step),
        (FailureReason::UnknownUser, Some("bob".into()))
    );
}

#[test]
fn empty_store_answers_with_decoys() {
    let store = Arc::new(CredentialStore::empty());
    let decoy = decoy();
    let client = TestClient::new(Mechanism::ScramSha512, "alice", None, "");
    let (step, _) = run(Mechanism::ScramSha512, &store, &decoy, &client, "x");
    assert_eq!(failure(step).0, FailureReason::UnknownUser);
}

#[test]
fn tampered_nonce_is_nonce_mismatch() {
    let (store, decoy) = (test_store(), decoy());
    let client = TestClient::new(Mechanism::ScramSha256, "alice", None, "");
    let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
    let first = continue_bytes(server.step(client.first().as_bytes()));
    let combined = first
        .split(',')
        .next()
        .and_then(|r| r.strip_prefix("r="))
        .expect("nonce")
        .to_string();
    let tampered = [
        format!("{combined}x"),
        combined[..combined.len() - 1].to_string(),
        client.client_nonce.clone(),
        format!("X{}", &combined[1..]),
    ];
    for nonce in tampered {
        let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
        let first = continue_bytes(server.step(client.first().as_bytes()));
        // The proof is valid for the tampered AuthMessage: only the nonce check can catch it.
        let (client_final, _) = client.finish(&first, "alice-pw", Some(&nonce), "");
        assert_eq!(
            failure(server.step(client_final.as_bytes())),
            (FailureReason::NonceMismatch, Some("alice".into())),
            "{client_final}"
        );
    }
}

#[test]
fn authzid_must_match_the_user() {
    let (store, decoy) = (test_store(), decoy());
    let client = TestClient::new(Mechanism::ScramSha256, "alice", Some("bob"), "");
    let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
    assert_eq!(
        failure(server.step(client.first().as_bytes())),
        (FailureReason::AuthzidMismatch, Some("alice".into()))
    );
    // Equal authzid is fine, and the c= attribute must then repeat it.
    let client = TestClient::new(Mechanism::ScramSha256, "alice", Some("alice"), "");
    let (step, v) = run(Mechanism::ScramSha256, &store, &decoy, &client, "alice-pw");
    assert_success(step, &v, "alice");
    // Escaped authzid compares unescaped.
    let client = TestClient::new(Mechanism::ScramSha256, "al=2Cice", Some("al=2Cice"), "");
    let (step, v) = run(Mechanism::ScramSha256, &store, &decoy, &client, "comma-pw");
    assert_success(step, &v, "al,ice");
}

#[test]
fn escaped_user_names_are_unescaped_before_lookup() {
    let (store, decoy) = (test_store(), decoy());
    let client = TestClient::new(Mechanism::ScramSha256, "al=2Cice", None, "");
    let (step, v) = run(Mechanism::ScramSha256, &store, &decoy, &client, "comma-pw");
    assert_success(step, &v, "al,ice");
    let client = TestClient::new(Mechanism::ScramSha512, "a=3Db", None, "");
    let (step, v) = run(Mechanism::ScramSha512, &store, &decoy, &client, "equals-pw");
    assert_success(step, &v, "a=b");
    // The escaped form is not a user name of its own.
    for bad in ["al=2cice", "al=ice", "alice=", "=2", "=3"] {
        let client = TestClient::new(Mechanism::ScramSha256, bad, None, "");
        let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
        assert!(
            is_malformed(server.step(client.first().as_bytes())),
            "{bad}"
        );
    }
    assert_eq!(unescape_saslname("=2C=3D=2C").expect("valid"), ",=,");
    assert_eq!(unescape_saslname("ünï=2Ccode").expect("valid"), "ünï,code");
}

#[test]
fn extensions_are_honoured_and_tokenauth_refused() {
    let (store, decoy) = (test_store(), decoy());
    // Unknown extensions are ignored but stay part of the AuthMessage.
    let client = TestClient::new(
        Mechanism::ScramSha256,
        "alice",
        None,
        ",tokenauth=false,foo=bar=baz",
    );
    let (step, v) = run(Mechanism::ScramSha256, &store, &decoy, &client, "alice-pw");
    assert_success(step, &v, "alice");

    for ext in [",tokenauth=true", ",tokenauth=TRUE"] {
        let client = TestClient::new(Mechanism::ScramSha256, "alice", None, ext);
        let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
        let (reason, attempted) = failure(server.step(client.first().as_bytes()));
        assert!(
            matches!(&reason, FailureReason::Malformed(m) if m.contains("tokenauth")),
            "{reason}"
        );
        assert_eq!(attempted.as_deref(), Some("alice"));
    }

    // Extensions in client-final are allowed too (and covered by the proof).
    let client = TestClient::new(Mechanism::ScramSha512, "alice", None, "");
    let mut server = exchange(Mechanism::ScramSha512, &store, &decoy);
    let first = continue_bytes(server.step(client.first().as_bytes()));
    let (client_final, v) = client.finish(&first, "alice-pw", None, ",x=1");
    assert_success(server.step(client_final.as_bytes()), &v, "alice");
}

#[test]
fn exchange_is_over_after_success_or_failure() {
    let (store, decoy) = (test_store(), decoy());
    let client = TestClient::new(Mechanism::ScramSha256, "alice", None, "");
    let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
    let first = continue_bytes(server.step(client.first().as_bytes()));
    let (client_final, v) = client.finish(&first, "alice-pw", None, "");
    assert_success(server.step(client_final.as_bytes()), &v, "alice");
    let (reason, attempted) = failure(server.step(client_final.as_bytes()));
    assert!(matches!(reason, FailureReason::Malformed(_)));
    assert_eq!(attempted.as_deref(), Some("alice"));
    assert!(is_malformed(server.step(client.first().as_bytes())));

    let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
    assert!(is_malformed(server.step(b"garbage")));
    // A failed first step does not leave a usable exchange behind.
    assert!(is_malformed(server.step(client.first().as_bytes())));
}

#[test]
fn non_scram_mechanism_fails() {
    let (store, decoy) = (test_store(), decoy());
    let client = TestClient::new(Mechanism::ScramSha256, "alice", None, "");
    for mech in [Mechanism::Plain, Mechanism::OAuthBearer] {
        let mut server = exchange(mech, &store, &decoy);
        assert!(is_malformed(server.step(client.first().as_bytes())));
    }
}

#[test]
fn malformed_client_first_fails_cleanly() {
    let (store, decoy) = (test_store(), decoy());
    let huge = format!("n,,n=alice,r={}", "x".repeat(MAX_MESSAGE_LEN));
    let cases: Vec<&[u8]> = vec![
        b"",
        b"garbage",
        b"n",
        b"n,",
        b"n,,",
        b"n,,n",
        b"n,,n=",
        b"n,,n=alice",
        b"n,,n=alice,",
        b"n,,n=alice,r",
        b"n,,n=alice,r=",
        b"n,,n=alice,r=abc def",
        b"n,,n=alice,r=abc\x7f",
        b"n,,r=abc,n=alice",
        b"n,,m=ext,n=alice,r=abc",
        b"n,,n=alice,r=abc,=x",
        b"n,,n=alice,r=abc,noequals",
        b"n,,n=alice,r=abc,k-y=v",
        b"n,a,n=alice,r=abc",
        b"n,a=,n=alice,r=abc",
        b"n,b=alice,n=alice,r=abc",
        b"y,,n=alice,r=abc",
        b"p=tls-unique,,n=alice,r=abc",
        b"p=,,n=alice,r=abc",
        b"N,,n=alice,r=abc",
        b"n,,n=ali\x00ce,r=abc",
        b"n,,n=ali\x01ce,r=abc",
        b"n,,n=\xff\xfe,r=abc",
        b"\xff",
        huge.as_bytes(),
    ];
    for case in cases {
        let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
        let step = server.step(case);
        assert!(is_malformed(step), "{:?}", String::from_utf8_lossy(case));
    }
}

#[test]
fn malformed_client_final_fails_cleanly() {
    let (store, decoy) = (test_store(), decoy());
    let client = TestClient::new(Mechanism::ScramSha256, "alice", Some("alice"), "");
    let mut server = exchange(Mechanism::ScramSha256, &store, &decoy).with_server_nonce("fixed");
    let first = continue_bytes(server.step(client.first().as_bytes()));
    let (good, _) = client.finish(&first, "alice-pw", None, "");
    let (c_attr, rest) = good.split_once(',').expect("c=");
    let (r_attr, p_attr) = rest.split_once(',').expect("r=");
    let cases: Vec<String> = vec![
        String::new(),
        "garbage".into(),
        ",".into(),
        format!("{c_attr},{r_attr}"),
        format!("{c_attr},{r_attr},p="),
        format!("{c_attr},{r_attr},p=!!!!"),
        format!("{c_attr},{r_attr},p=AAAA"),
        format!("{c_attr},{r_attr},{p_attr}AAAA"),
        format!("{r_attr},{c_attr},{p_attr}"),
        format!("{c_attr},{p_attr}"),
        format!("c=biws,{r_attr},{p_attr}"),
        format!("c=!,{r_attr},{p_attr}"),
        format!("{c_attr},{r_attr},bad ext,{p_attr}"),
        format!("{c_attr},{r_attr},{p_attr},x=1"),
        format!("{good}{}", "A".repeat(MAX_MESSAGE_LEN)),
    ];
    for case in cases {
        let mut server =
            exchange(Mechanism::ScramSha256, &store, &decoy).with_server_nonce("fixed");
        continue_bytes(server.step(client.first().as_bytes()));
        let (reason, attempted) = failure(server.step(case.as_bytes()));
        assert!(
            matches!(reason, FailureReason::Malformed(_)),
            "{case:?}: {reason}"
        );
        assert_eq!(attempted.as_deref(), Some("alice"));
    }
    let mut server = exchange(Mechanism::ScramSha256, &store, &decoy).with_server_nonce("fixed");
    continue_bytes(server.step(client.first().as_bytes()));
    assert!(is_malformed(server.step(b"\xff\xfe")));
}

#[test]
fn every_prefix_of_valid_messages_fails_without_panic() {
    let (store, decoy) = (test_store(), decoy());
    let client = TestClient::new(Mechanism::ScramSha512, "al=2Cice", Some("al=2Cice"), ",e=1");
    let first = client.first();
    for end in 0..first.len() {
        let mut server = exchange(Mechanism::ScramSha512, &store, &decoy);
        // Some prefixes are valid client-firsts (a shorter nonce); the rest must fail.
        let _ = server.step(&first.as_bytes()[..end]);
    }
    let mut server = exchange(Mechanism::ScramSha512, &store, &decoy);
    let server_first = continue_bytes(server.step(first.as_bytes()));
    let (client_final, _) = client.finish(&server_first, "pw", None, "");
    for end in 0..client_final.len() {
        let mut server = exchange(Mechanism::ScramSha512, &store, &decoy);
        continue_bytes(server.step(first.as_bytes()));
        assert!(
            matches!(
                server.step(&client_final.as_bytes()[..end]),
                Step::Failure { .. }
            ),
            "prefix {end}"
        );
    }
}

proptest! {
    #[test]
    fn random_client_first_never_panics(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (store, decoy) = (test_store(), decoy());
        let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
        let _ = server.step(&input);
        let _ = server.step(&input);
    }

    #[test]
    fn scram_shaped_client_first_never_panics(input in "[nyp]?,?(a=)?[a-z=23CD,]{0,12}(,n=)?[a-z=23CD,]{0,12}(,r=)?[ -~]{0,12}") {
        let (store, decoy) = (test_store(), decoy());
        let mut server = exchange(Mechanism::ScramSha512, &store, &decoy);
        let _ = server.step(input.as_bytes());
    }

    #[test]
    fn random_client_final_never_panics(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (store, decoy) = (test_store(), decoy());
        for user in ["alice", "mallory"] {
            let client = TestClient::new(Mechanism::ScramSha256, user, None, "");
            let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
            continue_bytes(server.step(client.first().as_bytes()));
            let failed = matches!(server.step(&input), Step::Failure { .. });
            prop_assert!(failed, "random bytes must not authenticate");
        }
    }

    #[test]
    fn scram_shaped_client_final_never_panics(tail in "[cr=p,A-Za-z0-9+/]{0,80}") {
        let (store, decoy) = (test_store(), decoy());
        let client = TestClient::new(Mechanism::ScramSha256, "alice", None, "");
        let mut server = exchange(Mechanism::ScramSha256, &store, &decoy);
        continue_bytes(server.step(client.first().as_bytes()));
        let input = format!("c=biws,{tail}");
        let failed = matches!(server.step(input.as_bytes()), Step::Failure { .. });
        prop_assert!(failed, "must not authenticate");
    }
}

/// rsasl: its SCRAM client is an independent implementation (RustCrypto, its own parser), so a
/// full exchange against it proves interoperability; its server serves as an oracle for the
/// stored-credential format.
mod rsasl_interop {
    use super::*;

    use rsasl::callback::{Context, Request, SessionCallback, SessionData};
    use rsasl::mechanisms::scram::properties::ScramStoredPassword;
    use rsasl::prelude::{Mechname, SASLClient, SASLConfig, SASLServer, SessionError, State};
    use rsasl::property::AuthId;
    use rsasl::validate::{Validate, Validation, ValidationError};

    fn rsasl_login(
        mech: Mechanism,
        user: &str,
        authzid: Option<&str>,
        password: &str,
        store: &Arc<CredentialStore>,
    ) -> Step {
        let config = SASLConfig::with_credentials(
            authzid.map(str::to_string),
            user.to_string(),
            password.to_string(),
        )
        .expect("rsasl client config");
        let mechname = Mechname::parse(mech.name().as_bytes()).expect("mechanism name");
        let mut client = SASLClient::new(config)
            .start_suggested(&[mechname])
            .expect("rsasl has SCRAM-SHA-256/512");
        let mut server = exchange(mech, store, &decoy());

        let mut client_first = Vec::new();
        client.step(None, &mut client_first).expect("client-first");
        let server_first = match server.step(&client_first) {
            Step::Continue(bytes) => bytes,
            other => return other,
        };
        let mut client_final = Vec::new();
        client
            .step(Some(&server_first), &mut client_final)
            .expect("client-final");
        let step = server.step(&client_final);
        if let Step::Success { response, .. } = &step {
            // rsasl's client verifies our server signature.
            let state = client
                .step(Some(response), &mut Vec::new())
                .expect("rsasl accepts the server signature");
            assert!(state.is_finished());
        }
        step
    }

    #[test]
    fn rsasl_client_logs_in_with_sha256_and_sha512() {
        let store = test_store();
        for mech in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            match rsasl_login(mech, "alice", None, "alice-pw", &store) {
                Step::Success { principal, .. } => assert_eq!(principal, Principal::user("alice")),
                other => panic!("{mech}: {other:?}"),
            }
            let (reason, _) = failure(rsasl_login(mech, "alice", None, "wrong", &store));
            assert_eq!(reason, FailureReason::BadCredentials);
            let (reason, _) = failure(rsasl_login(mech, "nobody", None, "x", &store));
            assert_eq!(reason, FailureReason::UnknownUser);
        }
    }

    #[test]
    fn rsasl_client_escapes_names_and_sends_authzid() {
        let store = test_store();
        match rsasl_login(
            Mechanism::ScramSha256,
            "al,ice",
            Some("al,ice"),
            "comma-pw",
            &store,
        ) {
            Step::Success { principal, .. } => assert_eq!(principal, Principal::user("al,ice")),
            other => panic!("{other:?}"),
        }
        match rsasl_login(Mechanism::ScramSha512, "a=b", None, "equals-pw", &store) {
            Step::Success { principal, .. } => assert_eq!(principal, Principal::user("a=b")),
            other => panic!("{other:?}"),
        }
        let (reason, _) = failure(rsasl_login(
            Mechanism::ScramSha256,
            "alice",
            Some("bob"),
            "alice-pw",
            &store,
        ));
        assert_eq!(reason, FailureReason::AuthzidMismatch);
    }

    /// Serves one stored credential to rsasl's server and records who it validated.
    struct StoredCredential(ScramCredential);

    struct Validated;
    impl Validation for Validated {
        type Value = String;
    }

    impl SessionCallback for StoredCredential {
        fn callback(
            &self,
            _session_data: &SessionData,
            _context: &Context,
            request: &mut Request<'_>,
        ) -> Result<(), SessionError> {
            let c = &self.0;
            request.satisfy::<ScramStoredPassword>(&ScramStoredPassword::new(
                c.iterations(),
                c.salt(),
                c.stored_key(),
                c.server_key(),
            ))?;
            Ok(())
        }

        fn validate(
            &self,
            _session_data: &SessionData,
            context: &Context,
            validate: &mut Validate<'_>,
        ) -> Result<(), ValidationError> {
            let user = context.get_ref::<AuthId>().unwrap_or_default().to_string();
            validate.with::<Validated, _>(|| Ok(user))?;
            Ok(())
        }
    }

    /// (rsasl server's final state, its validation) for a login by rsasl's client.
    fn rsasl_server_login(
        mech: Mechanism,
        credential: ScramCredential,
        password: &str,
    ) -> (State, Option<String>) {
        let mechname = Mechname::parse(mech.name().as_bytes()).expect("mechanism name");
        let server_config = SASLConfig::builder()
            .with_defaults()
            .with_callback(StoredCredential(credential))
            .expect("rsasl server config");
        let mut server = SASLServer::<Validated>::new(server_config)
            .start_suggested(mechname)
            .expect("rsasl server has SCRAM");
        let client_config =
            SASLConfig::with_credentials(None, "alice".into(), password.into()).expect("config");
        let mut client = SASLClient::new(client_config)
            .start_suggested(&[mechname])
            .expect("rsasl client has SCRAM");

        let mut to_server = Vec::new();
        client.step(None, &mut to_server).expect("client-first");
        let mut to_client = Vec::new();
        server
            .step(Some(&to_server), &mut to_client)
            .expect("server-first");
        to_server.clear();
        client
            .step(Some(&to_client), &mut to_server)
            .expect("client-final");
        to_client.clear();
        let state = server
            .step(Some(&to_server), &mut to_client)
            .expect("server-final");
        (state, server.validation())
    }

    #[test]
    fn rsasl_server_accepts_our_stored_credentials() {
        for mech in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let credential = scram_credential("alice-pw", mech, 4096, SALT).expect("SCRAM");
            let (state, validated) = rsasl_server_login(mech, credential.clone(), "alice-pw");
            assert!(state.is_finished());
            assert_eq!(validated.as_deref(), Some("alice"), "{mech}");

            // The trap: with a wrong password rsasl's server is just as `Finished`; only the
            // missing validation tells the failure apart.
            let (state, validated) = rsasl_server_login(mech, credential, "wrong");
            assert!(state.is_finished());
            assert_eq!(validated, None, "{mech}");
        }
    }
}
