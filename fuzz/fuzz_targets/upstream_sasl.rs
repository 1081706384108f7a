//! Fuzzes the gateway's own SASL login to a broker (`upstream::sasl::SaslLogin`, the rsasl client
//! that `upstream::sasl::login` runs, configured and started the same way) with fuzzer-chosen
//! broker messages: for SCRAM, the server-first and server-final messages rsasl parses.
//!
//! Input: `flags u8 | server-first | 0x00 | server-final [| 0x00 | extra]`.
//! - flags bit 0 picks the hash (0: SCRAM-SHA-256, 1: SCRAM-SHA-512), bit 1 the service user
//!   (`gateway-svc`, or `gw,svc=1`, which SCRAM escapes); bits 2 and 3 both set: PLAIN instead.
//! - `{nonce}` in server-first becomes the client nonce of the gateway's client-first message
//!   (random per login, so the fuzzer cannot know it), and `{signature}` in server-final the base64
//!   RFC 5802 server signature of this exchange, computed here (aws-lc) from the service password
//!   and the salt and iteration count of server-first. Without placeholders a message goes as is.
//! - `extra` (default `v=`) is sent after the exchange ended.
//!
//! Properties:
//! - nothing panics, whatever the broker sends: every refusal is a `LoginError`;
//! - the first message is `n,,n=<escaped user>,r=<24 printable nonce characters>` (SCRAM, then
//!   `Send`) or `\0user\0password` (PLAIN, then `SendLast`, and any broker message after it is
//!   refused as `Ended`);
//! - server-first is answered with `Send(client-final)` or an error, never with success. It is
//!   accepted only when its nonce extends the client nonce and its iteration count is in Kafka's
//!   range (4096..=16384); the client-final is then `c=biws,r=<that nonce>,p=<proof>`, the proof
//!   being the RFC 5802 one (checked when server-first has no extensions: see below);
//! - success (`Done`) only after server-final, and only when its `v=` carries the server signature
//!   derived from the service password: a server-final not derived from the password never logs
//!   the gateway in. Positive control: server-final `v={signature}` after a server-first without
//!   extensions, in range, does;
//! - every broker message after the exchange ended, successfully or not, is refused.
//!
//! rsasl leaves server-first extensions (attributes after `i=`) out of the AuthMessage it signs,
//! where RFC 5802 signs the whole server-first message. A broker sending extensions would refuse
//! the gateway's proof and the gateway its signature (fails closed; Kafka sends none), so the proof
//! is compared only without extensions, and success with extensions is impossible: the signature
//! computed here differs from the one rsasl expects.
//!
//! rsasl's parser panics on some messages; the gateway catches that (`LoginError::Malformed`).
//! libFuzzer's panic hook aborts even on a caught panic, so panics raised inside rsasl's source
//! while the gateway steps the login are let unwind to the gateway's `catch_unwind`; a panic
//! anywhere else (or one nobody catches) is still a crash.
#![no_main]

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kafka_gateway::auth::credentials::ITERATIONS;
use kafka_gateway::auth::Mechanism;
use kafka_gateway::config::{Secret, UpstreamSasl};
use kafka_gateway::upstream::sasl::{LoginError, LoginStep, SaslLogin};
use kafka_gateway_fuzz::caught_panics::{gateway_catches, let_unwind_from};
use kafka_gateway_fuzz::scram::{client_keys, proof_and_signature};
use kafka_gateway_fuzz::{
    NONCE_PLACEHOLDER, SIGNATURE_PLACEHOLDER, UPSTREAM_PASSWORD, UPSTREAM_USERS,
};
use libfuzzer_sys::fuzz_target;

/// `haystack` with every `from` replaced by `to`.
fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// SCRAM's escaping of `,` and `=` in names (RFC 5802 section 5.1).
fn escape(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The attributes of a server-first message as RFC 5802 reads them.
struct ServerFirst {
    nonce: Vec<u8>,
    salt: Vec<u8>,
    iterations: u32,
    /// Attributes after `i=`.
    extensions: bool,
}

fn parse_server_first(message: &[u8]) -> Option<ServerFirst> {
    let mut attrs = message.split(|b| *b == b',');
    let nonce = attrs.next()?.strip_prefix(b"r=")?.to_vec();
    let salt = B64.decode(attrs.next()?.strip_prefix(b"s=")?).ok()?;
    let iterations = std::str::from_utf8(attrs.next()?.strip_prefix(b"i=")?)
        .ok()?
        .parse()
        .ok()?;
    Some(ServerFirst {
        nonce,
        salt,
        iterations,
        extensions: attrs.next().is_some(),
    })
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fuzz_target!(|data: &[u8]| {
    let_unwind_from(&["/rsasl-"]);
    let [flags, rest @ ..] = data else {
        return;
    };
    let plain = flags & 0x0c == 0x0c;
    let sha512 = flags & 1 == 1;
    let mechanism = match (plain, sha512) {
        (true, _) => Mechanism::Plain,
        (false, false) => Mechanism::ScramSha256,
        (false, true) => Mechanism::ScramSha512,
    };
    let user = UPSTREAM_USERS[usize::from(flags >> 1 & 1)];
    let mut parts = rest.splitn(3, |b| *b == 0);
    let first_template = parts.next().unwrap_or_default();
    let final_template = parts.next();
    let extra = parts.next().unwrap_or(b"v=");

    let sasl = UpstreamSasl {
        mechanism,
        username: user.to_string(),
        password: Secret::new(UPSTREAM_PASSWORD),
        kerberos: None,
    };
    let (mut login, first) =
        SaslLogin::start(&sasl).expect("the fixture's credentials start every mechanism");

    if plain {
        let expected = format!("\0{user}\0{UPSTREAM_PASSWORD}").into_bytes();
        assert_eq!(first, LoginStep::SendLast(expected));
        let after = gateway_catches(|| login.next(first_template));
        assert!(
            matches!(after, Err(LoginError::Ended { .. })),
            "PLAIN took a broker message: {after:?}"
        );
        return;
    }

    // client-first: `n,,n=<user>,r=<nonce>`.
    let LoginStep::Send(client_first) = first else {
        panic!("SCRAM's first step is {first:?}");
    };
    let prefix = format!("n,,n={},r=", escape(user));
    let client_nonce = client_first
        .strip_prefix(prefix.as_bytes())
        .unwrap_or_else(|| panic!("client-first {:?}", text(&client_first)));
    assert!(
        client_nonce.len() == 24
            && client_nonce
                .iter()
                .all(|b| (0x21..=0x7e).contains(b) && *b != b','),
        "client nonce {:?}",
        text(client_nonce)
    );
    let client_first_bare = &client_first[3..];

    let server_first = replace(first_template, NONCE_PLACEHOLDER, client_nonce);
    let answer = gateway_catches(|| login.next(&server_first));
    let parsed = parse_server_first(&server_first);
    let mut expected_signature = None;
    match answer {
        Ok(LoginStep::Send(client_final)) => {
            let sf = parsed.unwrap_or_else(|| {
                panic!(
                    "accepted a server-first RFC 5802 refuses: {:?}",
                    text(&server_first)
                )
            });
            assert!(
                sf.nonce.starts_with(client_nonce) && sf.nonce.len() > client_nonce.len(),
                "accepted server nonce {:?} that does not extend the client's",
                text(&sf.nonce)
            );
            assert!(
                ITERATIONS.contains(&sf.iterations),
                "accepted {} iterations",
                sf.iterations
            );
            let mut without_proof = b"c=biws,r=".to_vec();
            without_proof.extend_from_slice(&sf.nonce);
            let proof = client_final
                .strip_prefix(&without_proof[..])
                .and_then(|p| p.strip_prefix(b",p="))
                .unwrap_or_else(|| panic!("client-final {:?}", text(&client_final)));
            let rounds = NonZeroU32::new(sf.iterations).expect("checked in Kafka's range");
            let keys = client_keys(sha512, UPSTREAM_PASSWORD.as_bytes(), &sf.salt, rounds);
            let mut auth_message = client_first_bare.to_vec();
            auth_message.push(b',');
            auth_message.extend_from_slice(&server_first);
            auth_message.push(b',');
            auth_message.extend_from_slice(&without_proof);
            let (rfc_proof, signature) = proof_and_signature(&keys, sha512, &auth_message);
            if !sf.extensions {
                assert_eq!(
                    text(proof),
                    B64.encode(rfc_proof),
                    "client proof is not RFC 5802's"
                );
            }
            expected_signature = Some((B64.encode(signature), sf.extensions));
        }
        Ok(step) => panic!("server-first answered with {step:?}"),
        Err(LoginError::Ended { .. } | LoginError::TooLong { .. }) => {
            panic!("server-first refused as if the exchange had ended")
        }
        Err(_) => {}
    }
    let Some(final_template) = final_template else {
        return;
    };

    let server_final = match &expected_signature {
        Some((signature, _)) => {
            replace(final_template, SIGNATURE_PLACEHOLDER, signature.as_bytes())
        }
        None => final_template.to_vec(),
    };
    let outcome = gateway_catches(|| login.next(&server_final));
    match (&outcome, &expected_signature) {
        (Ok(LoginStep::Done), Some((signature, _))) => {
            let verifier = server_final
                .split(|b| *b == b',')
                .next()
                .and_then(|a| a.strip_prefix(b"v="))
                .and_then(|v| B64.decode(v).ok());
            assert_eq!(
                verifier.as_deref(),
                B64.decode(signature).ok().as_deref(),
                "logged in on server-final {:?}, which does not carry the server signature",
                text(&server_final)
            );
        }
        (Ok(LoginStep::Done), None) => panic!("logged in after a refused server-first"),
        (Ok(step), _) => panic!("server-final answered with {step:?}"),
        (Err(e), Some((signature, false))) => assert!(
            server_final != format!("v={signature}").as_bytes(),
            "the right server signature was refused: {e}"
        ),
        (Err(e), None) => assert!(
            matches!(e, LoginError::Ended { .. }),
            "after a refused server-first, server-final got {e:?}"
        ),
        (Err(_), Some((_, true))) => {}
    }

    let after = gateway_catches(|| login.next(extra));
    assert!(
        matches!(after, Err(LoginError::Ended { .. })),
        "message after the end: {after:?}"
    );
});
