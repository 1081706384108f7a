//! Tests of the gateway's own login: against the gateway's SCRAM server (both hashes, a name SCRAM
//! escapes), a forged server signature, PLAIN, the end of the exchange, and the broker messages
//! the `upstream_sasl` fuzz target found rsasl panicking or hanging on.

use super::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::credentials::{add_user, CredentialStore, Decoy};
use crate::auth::scram::ScramExchange;
use crate::auth::Step;
use crate::config::Secret;

const PASSWORD: &str = "svc-secret";

fn sasl(mechanism: Mechanism, username: &str) -> UpstreamSasl {
    UpstreamSasl {
        mechanism,
        username: username.to_string(),
        password: Secret::new(PASSWORD),
        kerberos: None,
    }
}

/// The gateway's own SCRAM server, as the broker, knowing `users` (both SCRAM mechanisms).
fn broker(mechanism: Mechanism, users: &[&str]) -> ScramExchange {
    // One file per call: tests run in parallel.
    static FILES: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "kgw-upstream-sasl-{}-{}.toml",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    for user in users {
        add_user(
            &path,
            user,
            PASSWORD,
            &[Mechanism::ScramSha256, Mechanism::ScramSha512],
            4096,
        )
        .expect("valid user");
    }
    let store = CredentialStore::load(&path).expect("the file add_user wrote loads");
    let _ = std::fs::remove_file(&path);
    ScramExchange::new(mechanism, Arc::new(store), Arc::new(Decoy::new(4096, 32)))
}

fn sent(step: LoginStep) -> Vec<u8> {
    match step {
        LoginStep::Send(bytes) => bytes,
        other => panic!("expected a message to send, got {other:?}"),
    }
}

/// Starts a SCRAM login and returns it with its client nonce.
fn scram_login(mechanism: Mechanism) -> (SaslLogin, String) {
    let (login, first) = SaslLogin::start(&sasl(mechanism, "gateway-svc")).expect("starts");
    let first = String::from_utf8(sent(first)).expect("client-first is UTF-8");
    let nonce = first
        .strip_prefix("n,,n=gateway-svc,r=")
        .expect("client-first without authzid")
        .to_string();
    (login, nonce)
}

/// A server-first message that extends the gateway's nonce, with a valid salt.
fn server_first(nonce: &str, iterations: &str) -> Vec<u8> {
    format!("r={nonce}srv,s=PDw8PDw8PDw8PDw8,i={iterations}").into_bytes()
}

#[test]
fn logs_in_against_the_gateways_own_scram_server() {
    for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
        for user in ["gateway-svc", "gw,svc=1"] {
            let mut server = broker(mechanism, &[user]);
            let (mut login, first) = SaslLogin::start(&sasl(mechanism, user)).expect("starts");
            let Step::Continue(server_first) = server.step(&sent(first)) else {
                panic!("{mechanism} {user}: client-first refused");
            };
            let client_final = sent(login.next(&server_first).expect("server-first accepted"));
            let Step::Success {
                response,
                principal,
                ..
            } = server.step(&client_final)
            else {
                panic!("{mechanism} {user}: the gateway's proof refused");
            };
            assert_eq!(principal.name, user);
            assert_eq!(
                login.next(&response).expect("server signature verified"),
                LoginStep::Done
            );
            assert!(matches!(login.next(b"v="), Err(LoginError::Ended { .. })));
        }
    }
}

#[test]
fn a_forged_server_signature_is_refused() {
    let mut server = broker(Mechanism::ScramSha256, &["gateway-svc"]);
    let (mut login, first) =
        SaslLogin::start(&sasl(Mechanism::ScramSha256, "gateway-svc")).expect("starts");
    let Step::Continue(server_first) = server.step(&sent(first)) else {
        panic!("client-first refused");
    };
    sent(login.next(&server_first).expect("server-first accepted"));
    // A well-formed signature of the right length that the broker did not derive from the
    // password: a broker that does not hold the credential cannot log the gateway in.
    let forged = format!("v={}", "A".repeat(43) + "=");
    let refused = login.next(forged.as_bytes()).expect_err("forged signature");
    assert!(
        refused.to_string().contains("server-final message"),
        "{refused}"
    );
    assert!(matches!(login.next(b"v="), Err(LoginError::Ended { .. })));
}

#[test]
fn plain_sends_one_message_and_takes_none_back() {
    let (mut login, first) =
        SaslLogin::start(&sasl(Mechanism::Plain, "gateway-svc")).expect("starts");
    assert_eq!(
        first,
        LoginStep::SendLast(b"\0gateway-svc\0svc-secret".to_vec())
    );
    assert!(matches!(login.next(b""), Err(LoginError::Ended { .. })));
}

/// Found by the `upstream_sasl` fuzz target within a second (`r=<nonce>,` was its shortest
/// input): rsasl 2.3.1 slices `[0..2]` of each SCRAM attribute without a length check, so these
/// broker messages panicked inside the gateway's login.
#[test]
fn malformed_scram_messages_are_refused_not_panics() {
    for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
        // server-first whose salt or iteration attribute is cut short.
        for cut in ["", "s", "s=PDw8,i", "s=PDw8,"] {
            let (mut login, nonce) = scram_login(mechanism);
            let message = format!("r={nonce}srv,{cut}");
            let err = login.next(message.as_bytes()).expect_err(&message);
            assert!(
                matches!(
                    &err,
                    LoginError::Malformed {
                        message: "server-first message",
                        ..
                    }
                ),
                "{message:?}: {err:?}"
            );
            assert!(
                err.to_string()
                    .starts_with(&format!("broker sent a malformed {mechanism} server-first")),
                "{err}"
            );
            assert!(matches!(login.next(b"v="), Err(LoginError::Ended { .. })));
        }
        // server-final that is empty or one byte long, after a good server-first.
        for server_final in [&b""[..], b"v"] {
            let (mut login, nonce) = scram_login(mechanism);
            sent(
                login
                    .next(&server_first(&nonce, "4096"))
                    .expect("server-first accepted"),
            );
            let err = login.next(server_final).expect_err("short server-final");
            assert!(
                matches!(
                    &err,
                    LoginError::Malformed {
                        message: "server-final message",
                        ..
                    }
                ),
                "{server_final:?}: {err:?}"
            );
        }
    }
}

/// Found by the `upstream_sasl` fuzz target: rsasl runs PBKDF2 with whatever count the broker
/// names (the fuzzer had it accept 4 and 40896), so `i=4294967295` would keep a
/// core busy for an hour or more per login (a libFuzzer timeout). Kafka's range is enforced first.
#[test]
fn iteration_counts_outside_kafkas_range_are_refused_before_pbkdf2() {
    for (iterations, refused) in [
        ("4294967295", Some(u32::MAX)),
        ("16385", Some(16385)),
        ("4095", Some(4095)),
        ("0", Some(0)),
        ("+4095", Some(4095)),
        ("4096", None),
        ("16384", None),
    ] {
        let (mut login, nonce) = scram_login(Mechanism::ScramSha512);
        let started = Instant::now();
        match (login.next(&server_first(&nonce, iterations)), refused) {
            (Err(LoginError::Iterations { iterations: n, .. }), Some(want)) => {
                assert_eq!(n, want);
                assert!(started.elapsed() < Duration::from_secs(1));
            }
            (Ok(LoginStep::Send(_)), None) => {}
            (other, _) => panic!("i={iterations}: {other:?}"),
        }
    }
}

/// Issue 11 item 6: the salted password is derived once per (mechanism, user, password, salt,
/// count); any change is a miss, never a stale hit; and logins that take it from the cache still
/// prove the password to the broker.
#[test]
fn the_salted_password_is_derived_once_and_reused_by_later_logins() {
    let cache = SaltedPasswords::new();
    let derive = |c: &SaltedPasswords, user: &str, pw: &str, salt: &[u8], i: u32| {
        c.get_or_derive(Mechanism::ScramSha256, user, pw, salt, i, || {
            format!("{user}/{pw}/{i}").into_bytes()
        })
    };
    let first = derive(&cache, "svc", "pw", b"salt", 4096);
    assert_eq!(derive(&cache, "svc", "pw", b"salt", 4096), first);
    assert_eq!(cache.derivations(), 1, "the second login reuses it");
    for (user, pw, salt, i) in [
        ("svc", "pw2", &b"salt"[..], 4096),
        ("svc", "pw", b"salt2", 4096),
        ("svc", "pw", b"salt", 8192),
        ("svc2", "pw", b"salt", 4096),
    ] {
        derive(&cache, user, pw, salt, i);
    }
    assert_eq!(cache.derivations(), 5, "every changed input is a miss");
    for i in 0..20 {
        derive(&cache, "many", "pw", b"salt", 4096 + i);
    }
    assert!(cache.lock().len() <= SALTED_CACHE_ENTRIES, "bounded");

    // Logins whose salted password the gateway answers itself (rather than rsasl) still prove the
    // password to the broker.
    for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
        let user = format!("cache-{}", mechanism.name());
        for round in 0..2 {
            let mut server = broker(mechanism, &[&user]);
            let (mut login, first) = SaslLogin::start(&sasl(mechanism, &user)).expect("starts");
            let Step::Continue(server_first) = server.step(&sent(first)) else {
                panic!("client-first refused");
            };
            let client_final = sent(login.next(&server_first).expect("server-first accepted"));
            let Step::Success { response, .. } = server.step(&client_final) else {
                panic!("{mechanism} round {round}: the proof from the salted password was refused");
            };
            assert_eq!(login.next(&response).expect("verified"), LoginStep::Done);
        }
    }
}
