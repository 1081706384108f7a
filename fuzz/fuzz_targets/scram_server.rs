//! Fuzzes the gateway's SCRAM server (`auth::scram::ScramExchange`) with fuzzer-chosen client
//! messages, for SCRAM-SHA-256 and SCRAM-SHA-512, known and unknown users.
//!
//! Input: `flags u8 | client-first | 0x00 | client-final [| 0x00 | password]`.
//! - flags bit 0 picks the mechanism (0: SCRAM-SHA-256, 1: SCRAM-SHA-512).
//! - Before client-final is sent, `{nonce}` in it becomes the nonce the server answered with
//!   (client nonce + server nonce, which the fuzzer cannot know), and a final `p={proof}` becomes
//!   the RFC 5802 client proof computed from `password` with the salt and iteration count of the
//!   server-first message. Without these placeholders the message goes as it is.
//!
//! The store (built through the real file format) holds `alice` (both mechanisms), `al,ice`
//! (SHA-256 only) and `a=b` (SHA-512 only); every other name is an unknown user, answered with a
//! decoy credential.
//!
//! Properties:
//! - `step` never panics: on client-first, on client-final, and on a message after the end, which
//!   always fails;
//! - client-first is answered with `Continue` holding `r=<client nonce><server nonce>,s=<salt>,i=<n>`,
//!   or with `Failure`;
//! - `Success` only for a known user with a credential for the mechanism, when the proof was
//!   computed here from that user's own password: a client-final not derived from the correct
//!   password never succeeds, and an unknown user never does. (The password may carry trailing
//!   NUL bytes: HMAC zero-pads its key, so PBKDF2 cannot tell them apart, in any SCRAM server.)
//!   The principal is that user, and the server-final message is `v=` + the server signature
//!   derived from the same password;
//! - positive control: the plain RFC exchange (`n,,n=<user>,r=<nonce>` then
//!   `c=biws,r={nonce},p={proof}`) with a known user's password succeeds.
#![no_main]

use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kafka_gateway::auth::credentials::{CredentialStore, Decoy};
use kafka_gateway::auth::scram::ScramExchange;
use kafka_gateway::auth::{Mechanism, Step};
use kafka_gateway_fuzz::scram::{client_keys, credential_store, proof_and_signature};
use libfuzzer_sys::fuzz_target;

/// (name, name as escaped on the wire, password, mechanisms).
const USERS: [(&str, &str, &str, &[Mechanism]); 3] = [
    (
        "alice",
        "alice",
        "alice-pw",
        &[Mechanism::ScramSha256, Mechanism::ScramSha512],
    ),
    ("al,ice", "al=2Cice", "comma-pw", &[Mechanism::ScramSha256]),
    ("a=b", "a=3Db", "equals-pw", &[Mechanism::ScramSha512]),
];

const SALT: &[u8] = &[0x5a; 32];
const ITERATIONS: u32 = 4096;

struct Fixture {
    store: Arc<CredentialStore>,
    decoy: Arc<Decoy>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let users: Vec<(&str, &str, &[Mechanism])> = USERS
            .iter()
            .map(|(name, _, password, mechs)| (*name, *password, *mechs))
            .collect();
        Fixture {
            store: Arc::new(credential_store(&users, ITERATIONS, SALT)),
            decoy: Arc::new(Decoy::new(ITERATIONS, SALT.len())),
        }
    })
}

/// Whether a proof computed from `password` is one computed from `real`. HMAC pads its key with
/// zeros to the hash's block size (PBKDF2's PRF is HMAC keyed with the password), so a password
/// and the same password followed by NUL bytes give the same keys: inherent to SCRAM, not a flaw
/// of the server.
fn same_password(password: &[u8], real: &str, sha512: bool) -> bool {
    let block = if sha512 { 128 } else { 64 };
    let trimmed = match password.iter().rposition(|b| *b != 0) {
        Some(last) => &password[..=last],
        None => &[],
    };
    password.len() <= block && trimmed == real.as_bytes()
}

/// `r=`, `s=` and `i=` of a server-first message the server itself produced.
fn server_first_parts(server_first: &str) -> (String, Vec<u8>, u32) {
    let mut nonce = None;
    let mut salt = None;
    let mut iterations = None;
    for attr in server_first.split(',') {
        if let Some(v) = attr.strip_prefix("r=") {
            nonce = Some(v.to_string());
        } else if let Some(v) = attr.strip_prefix("s=") {
            salt = Some(B64.decode(v).expect("server-first salt is base64"));
        } else if let Some(v) = attr.strip_prefix("i=") {
            iterations = Some(v.parse().expect("server-first iteration count is a number"));
        }
    }
    match (nonce, salt, iterations) {
        (Some(r), Some(s), Some(i)) => (r, s, i),
        _ => panic!("server-first {server_first:?} lacks r=, s= or i="),
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, rest @ ..] = data else {
        return;
    };
    let sha512 = flags & 1 == 1;
    let mech = if sha512 {
        Mechanism::ScramSha512
    } else {
        Mechanism::ScramSha256
    };
    let mut parts = rest.splitn(3, |b| *b == 0);
    let first = parts.next().unwrap_or_default();
    let final_template = parts.next();
    let password = parts.next();

    let f = fixture();
    let mut exchange = ScramExchange::new(mech, Arc::clone(&f.store), Arc::clone(&f.decoy));
    let server_first = match exchange.step(first) {
        Step::Continue(reply) => String::from_utf8(reply).expect("server-first is UTF-8"),
        Step::Failure { .. } => {
            // Failed exchanges stay failed.
            let again = exchange.step(final_template.unwrap_or_default());
            assert!(matches!(again, Step::Failure { .. }), "{again:?}");
            return;
        }
        other => panic!("client-first answered with {other:?}"),
    };
    let (nonce, salt, iterations) = server_first_parts(&server_first);
    let first_text = std::str::from_utf8(first).expect("accepted client-first is UTF-8");
    let client_nonce = first_text
        .split(',')
        .find_map(|a| a.strip_prefix("r="))
        .expect("accepted client-first has r=");
    assert!(
        nonce.starts_with(client_nonce) && nonce.len() > client_nonce.len(),
        "server nonce {nonce:?} does not extend the client's {client_nonce:?}"
    );
    let Some(template) = final_template else {
        return;
    };

    // client-first-bare: everything after the gs2 header (`n,` [a=...] `,`).
    let bare = first_text
        .splitn(3, ',')
        .nth(2)
        .expect("accepted client-first has a gs2 header");
    let mut client_final = template.to_vec();
    let mut proof_from: Option<&[u8]> = None;
    let mut expected_verifier = None;
    if let Ok(text) = std::str::from_utf8(template) {
        let text = text.replace("{nonce}", &nonce);
        let mut out = text.clone();
        if let (Some(without_proof), Some(password)) = (text.strip_suffix(",p={proof}"), password) {
            let rounds = NonZeroU32::new(iterations).expect("the server never sends i=0");
            let keys = client_keys(sha512, password, &salt, rounds);
            let auth_message = format!("{bare},{server_first},{without_proof}");
            let (proof, signature) = proof_and_signature(&keys, sha512, auth_message.as_bytes());
            out = format!("{without_proof},p={}", B64.encode(proof));
            proof_from = Some(password);
            expected_verifier = Some(format!("v={}", B64.encode(signature)));
        }
        client_final = out.into_bytes();
    }

    // Positive control: the plain exchange with a known user's own password.
    let known = USERS.iter().find(|(_, escaped, _, mechs)| {
        mechs.contains(&mech) && first_text == format!("n,,n={escaped},r={client_nonce}")
    });
    let must_succeed = known.is_some_and(|(_, _, pw, _)| {
        template == b"c=biws,r={nonce},p={proof}" && password == Some(pw.as_bytes())
    });

    match exchange.step(&client_final) {
        Step::Success {
            response,
            principal,
            expires,
        } => {
            let user = USERS
                .iter()
                .find(|(name, _, _, mechs)| *name == principal.name && mechs.contains(&mech))
                .unwrap_or_else(|| panic!("success for {principal} who has no {mech} credential"));
            assert!(
                proof_from.is_some_and(|p| same_password(p, user.2, sha512)),
                "success for {principal} without a proof derived from their password: {:?}",
                proof_from.map(String::from_utf8_lossy)
            );
            assert_eq!(principal.kind, "User");
            assert!(
                expires.is_none(),
                "SCRAM sessions have no expiry of their own"
            );
            assert_eq!(
                Some(String::from_utf8_lossy(&response).into_owned()),
                expected_verifier,
                "server-final is not the server signature"
            );
        }
        Step::Failure { .. } => {
            assert!(
                !must_succeed,
                "a correct exchange failed: {first_text:?} / {:?}",
                String::from_utf8_lossy(&client_final)
            );
        }
        Step::Continue(reply) => panic!(
            "client-final answered with Continue({:?})",
            String::from_utf8_lossy(&reply)
        ),
    }
    let after = exchange.step(b"c=biws");
    assert!(
        matches!(after, Step::Failure { .. }),
        "message after the end: {after:?}"
    );
});
