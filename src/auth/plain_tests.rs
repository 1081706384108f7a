//! Tests of the PLAIN server against the SCRAM credential store.

use super::*;

use std::path::Path;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::auth::credentials::scram_credential;

/// alice has both SCRAM mechanisms (with different passwords, to see which one PLAIN uses),
/// bob only SCRAM-SHA-256.
fn store() -> Arc<CredentialStore> {
    static STORE: OnceLock<Arc<CredentialStore>> = OnceLock::new();
    Arc::clone(STORE.get_or_init(|| {
        let mut text = String::new();
        for (user, password, mech) in [
            ("alice", "alice-512", Mechanism::ScramSha512),
            ("alice", "alice-256", Mechanism::ScramSha256),
            ("bob", "bob-pw", Mechanism::ScramSha256),
        ] {
            let c = scram_credential(password, mech, 4096, &[9; 32]).expect("SCRAM");
            text.push_str(&format!(
                "[[user]]\nname = \"{user}\"\nmechanism = \"{mech}\"\niterations = 4096\n\
                 salt = \"{}\"\nstored_key = \"{}\"\nserver_key = \"{}\"\n",
                B64.encode(c.salt()),
                B64.encode(c.stored_key()),
                B64.encode(c.server_key()),
            ));
        }
        Arc::new(CredentialStore::from_bytes(Path::new("t.toml"), text.as_bytes()).expect("valid"))
    }))
}

/// Runs an exchange's step to completion (its PBKDF2 runs on a blocking pool).
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn login(input: &[u8]) -> Step {
    block(PlainExchange::new(store(), Arc::new(Decoy::new(4096, 32))).step(input))
}

fn failure(step: Step) -> (FailureReason, Option<String>) {
    match step {
        Step::Failure { reason, attempted } => (reason, attempted),
        other => panic!("expected Failure, got {other:?}"),
    }
}

fn assert_success(step: Step, user: &str) {
    match step {
        Step::Success {
            response,
            principal,
            expires,
        } => {
            assert!(response.is_empty());
            assert_eq!(principal, Principal::user(user));
            assert_eq!(expires, None);
        }
        other => panic!("expected Success, got {other:?}"),
    }
}

#[test]
fn success_prefers_the_sha512_credential() {
    assert_success(login(b"\0alice\0alice-512"), "alice");
    assert_success(login(b"alice\0alice\0alice-512"), "alice");
    assert_eq!(
        failure(login(b"\0alice\0alice-256")),
        (FailureReason::BadCredentials, Some("alice".into()))
    );
    // Users with only SCRAM-SHA-256 are checked against it.
    assert_success(login(b"\0bob\0bob-pw"), "bob");
}

#[test]
fn wrong_password() {
    for input in [&b"\0bob\0bob-pW"[..], b"\0bob\0bob-pw ", b"\0alice\0x"] {
        assert_eq!(failure(login(input)).0, FailureReason::BadCredentials);
    }
}

#[test]
fn unknown_user() {
    assert_eq!(
        failure(login(b"\0mallory\0bob-pw")),
        (FailureReason::UnknownUser, Some("mallory".into()))
    );
    // Names are exact: no case folding, no SASLprep.
    assert_eq!(
        failure(login(b"\0Alice\0alice-512")).0,
        FailureReason::UnknownUser
    );
    assert_eq!(
        failure(login("\0ａｌｉｃｅ\0alice-512".as_bytes())).0,
        FailureReason::UnknownUser
    );
    let empty = block(
        PlainExchange::new(
            Arc::new(CredentialStore::empty()),
            Arc::new(Decoy::new(1, 1)),
        )
        .step(b"\0alice\0alice-512"),
    );
    assert_eq!(failure(empty).0, FailureReason::UnknownUser);
}

#[test]
fn authzid_mismatch() {
    assert_eq!(
        failure(login(b"bob\0alice\0alice-512")),
        (FailureReason::AuthzidMismatch, Some("alice".into()))
    );
}

#[test]
fn malformed() {
    let huge = [b"\0alice\0".as_slice(), &[b'x'; MAX_MESSAGE_LEN]].concat();
    let cases: Vec<(&[u8], Option<&str>)> = vec![
        (b"", None),
        (b"alice", None),
        (b"\0alice", None),
        (b"\0alice\0pw\0", None),
        (b"\0\0pw", None),
        (b"\0alice\0", Some("alice")),
        (b"\0ali\xffce\0pw", None),
        (b"\0alice\0p\xffw", None),
        (b"\xff\0alice\0pw", None),
        (b"\0tab\tless\0x", None),
        (&huge, None),
    ];
    for (input, attempted) in cases {
        let (reason, got) = failure(login(input));
        assert!(
            matches!(reason, FailureReason::Malformed(_)),
            "{:?}: {reason}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(
            got.as_deref(),
            attempted,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn one_message_only() {
    let mut exchange = PlainExchange::new(store(), Arc::new(Decoy::new(4096, 32)));
    assert_success(block(exchange.step(b"\0bob\0bob-pw")), "bob");
    assert!(matches!(
        failure(block(exchange.step(b"\0bob\0bob-pw"))).0,
        FailureReason::Malformed(_)
    ));
}

#[test]
fn a_locked_out_name_is_refused_before_its_password_is_hashed() {
    let hashed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = hashed.clone();
    // The check sees the name; a locked name fails as LockedOut even with the right password.
    let mut exchange = PlainExchange::new(store(), Arc::new(Decoy::new(4096, 32))).with_lockout(
        Arc::new(move |user: &str| {
            probe.store(true, std::sync::atomic::Ordering::Relaxed);
            user == "bob"
        }),
    );
    let (reason, attempted) = failure(block(exchange.step(b"\0bob\0bob-pw")));
    assert_eq!(reason, FailureReason::LockedOut);
    assert_eq!(attempted.as_deref(), Some("bob"));
    assert!(hashed.load(std::sync::atomic::Ordering::Relaxed), "checked");
    // Another name is checked and then hashed as usual.
    let mut other = PlainExchange::new(store(), Arc::new(Decoy::new(4096, 32)))
        .with_lockout(Arc::new(|user: &str| user == "bob"));
    assert_success(block(other.step(b"\0alice\0alice-512")), "alice");
}

proptest::proptest! {
    #[test]
    fn random_input_never_panics_or_authenticates(
        input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)
    ) {
        let failed = matches!(login(&input), Step::Failure { .. });
        proptest::prop_assert!(failed);
    }
}
