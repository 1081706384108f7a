//! Fuzzes OAUTHBEARER: the RFC 7628 client-initial parser, the JWS/JWT parsers and claim checks,
//! JWKS parsing, and the whole validator with a dev key set (`oauth::write_dev_keys`).
//!
//! Input: `mode u8 | rest`, mode % 4:
//! - 0: `rest` is a SASL client-initial message: `parse_client_initial`, the token checks below on
//!   the token it carries, then a whole `OAuthExchange` (first message, then the lone %x01 after an
//!   error challenge);
//! - 1: `rest` is a bearer token: the token checks below and `OAuthValidator::validate`;
//! - 2: `rest` is a token whose signature part is replaced by a real ES256 signature from the dev
//!   key over its (fuzzed) header and payload, then validated;
//! - 3: `rest` is a JWKS document: `jwks::parse_jwks`, and each key it yields.
//!
//! Token checks: `token::split`, `parse_header`, `decode_payload`, `check_claims`,
//! `principal_from`, `claimed_principal`.
//!
//! Properties:
//! - nothing panics;
//! - what the parsers accept has the shape they promise: a header's `kid` is sane, a principal is
//!   non-empty, bounded and free of control characters, the signing input is `header.payload`;
//! - modes 0 and 1: a fuzzed token never validates (the dev key is made per process, so no input
//!   can carry its signature) and an exchange never succeeds;
//! - mode 2: the validator accepts a token signed with the right key exactly when the pure checks
//!   do (header names `dev-1` and ES256, claims pass `check_claims` now, the required scope is
//!   present), and then returns the checked principal and `exp`; otherwise it refuses;
//! - positive control: a token minted at start-up with `mint_token` validates.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use kafka_gateway::auth::oauth::jwks::{self, Alg};
use kafka_gateway::auth::oauth::token::{self, Expect, MAX_PRINCIPAL_LEN};
use kafka_gateway::auth::oauth::{
    mint_token, parse_client_initial, write_dev_keys, OAuthConfig, OAuthExchange, OAuthValidator,
    DEV_KID,
};
use kafka_gateway::auth::{FailureReason, Step};
use libfuzzer_sys::fuzz_target;

/// The issuer and audience of `policies/gateway.toml`, which `make_seeds` mints its token for.
const ISSUER: &str = "https://issuer.dev.kafka-gateway";
const AUDIENCE: &str = "kafka-gateway";
const SCOPE: &str = "kafka";
const SKEW_SECS: u64 = 30;

struct Fixture {
    rt: tokio::runtime::Runtime,
    validator: Arc<OAuthValidator>,
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kgw-fuzz-oauth-{}", std::process::id()));
        let paths = write_dev_keys(&dir, true).expect("dev keys are written");
        let pem = std::fs::read_to_string(&paths.signing_key).expect("dev signing key is readable");
        let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(der).expect("PEM body is base64");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .expect("dev key is PKCS#8 P-256");
        let control = mint_token(
            &paths.signing_key,
            DEV_KID,
            ISSUER,
            AUDIENCE,
            "fuzz-control",
            &[SCOPE],
            Duration::from_secs(3600),
        )
        .expect("dev token is minted");

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime starts");
        let mut cfg = OAuthConfig::new(ISSUER, AUDIENCE);
        cfg.jwks_file = Some(paths.jwks.clone());
        cfg.clock_skew = Duration::from_secs(SKEW_SECS);
        cfg.required_scopes = vec![SCOPE.into()];
        let validator = rt
            .block_on(OAuthValidator::new(cfg))
            .expect("validator loads the dev JWKS");
        let valid = rt
            .block_on(validator.validate(&control))
            .expect("positive control: a minted dev token validates");
        assert_eq!(valid.principal.name, "fuzz-control");
        // The keys are loaded. Without the file, an unknown kid's reload fails and the loaded keys
        // stay (which is what the gateway does too), and nothing is left behind in /tmp.
        let _ = std::fs::remove_dir_all(&dir);
        Fixture {
            rt,
            validator,
            key,
            rng: SystemRandom::new(),
        }
    })
}

fn expect() -> Expect<'static> {
    Expect {
        issuer: ISSUER,
        audience: AUDIENCE,
        skew_secs: SKEW_SECS,
        principal_claim: "sub",
        scope_claim: "scope",
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock is after 1970")
        .as_secs()
}

fn check_principal(name: &str) {
    assert!(!name.is_empty(), "empty principal accepted");
    assert!(name.len() <= MAX_PRINCIPAL_LEN, "principal over the limit");
    assert!(
        !name.chars().any(char::is_control),
        "principal with control characters accepted: {name:?}"
    );
}

/// What the pure checks say about a token, in the validator's order. `Ok((principal, exp))` when
/// every check (header, claims at `now`, required scope) passes.
fn pure_verdict(token: &str, now: u64) -> Result<(String, u64), String> {
    let parts = token::split(token)?;
    assert!(
        token.as_bytes().starts_with(parts.signing_input()),
        "signing input is not a prefix of the token"
    );
    assert_eq!(
        parts.signing_input().len(),
        parts.header_b64.len() + 1 + parts.payload_b64.len()
    );
    let _ = parts.signature();
    let _ = token::claimed_principal(token, "sub").map(|p| check_principal(&p));
    let header = token::parse_header(&parts);
    if let Ok(h) = &header {
        assert!(
            jwks::kid_is_sane(&h.kid),
            "insane kid accepted: {:?}",
            h.kid
        );
        assert!(Alg::ALL.contains(&h.alg));
    }
    let claims = token::decode_payload(&parts)?;
    if let Ok(p) = token::principal_from(&claims, "sub") {
        check_principal(&p);
    }
    let checked = token::check_claims(&claims, &expect(), now);
    if let Ok(c) = &checked {
        check_principal(&c.principal);
        assert!(
            now < c.exp.saturating_add(SKEW_SECS),
            "expired token passed"
        );
    }
    let header = header?;
    let checked = checked?;
    if header.kid != DEV_KID || header.alg != Alg::ES256 {
        return Err("not the dev key's kid and algorithm".into());
    }
    if !checked.scopes.iter().any(|s| s == SCOPE) {
        return Err("required scope missing".into());
    }
    Ok((checked.principal, checked.exp))
}

fn refuses(f: &Fixture, token: &str) {
    if let Ok(valid) = f.rt.block_on(f.validator.validate(token)) {
        panic!("unsigned fuzzed token validated as {}", valid.principal);
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let f = fixture();
    match mode % 4 {
        0 => {
            if let Ok(initial) = parse_client_initial(rest) {
                assert!(initial.extensions.len() <= 32);
                assert!(!initial.token.is_empty());
                let _ = pure_verdict(&initial.token, now());
            }
            let mut exchange = OAuthExchange::new(Arc::clone(&f.validator));
            match f.rt.block_on(exchange.step(rest)) {
                Step::Success { principal, .. } => {
                    panic!("fuzzed OAUTHBEARER message authenticated {principal}")
                }
                Step::Continue(challenge) => {
                    let json: serde_json::Value =
                        serde_json::from_slice(&challenge).expect("error challenge is JSON");
                    assert!(json.get("status").is_some(), "challenge without status");
                    let end = f.rt.block_on(exchange.step(&[1]));
                    assert!(
                        matches!(end, Step::Failure { .. }),
                        "%x01 after the challenge: {end:?}"
                    );
                }
                Step::Failure { .. } => {}
            }
        }
        1 => {
            let token = String::from_utf8_lossy(rest);
            let _ = pure_verdict(&token, now());
            refuses(f, &token);
        }
        2 => {
            let token = String::from_utf8_lossy(rest);
            let Ok(parts) = token::split(&token) else {
                refuses(f, &token);
                return;
            };
            let input = parts.signing_input();
            let signature = f
                .key
                .sign(&f.rng, input)
                .expect("ECDSA signing does not fail");
            let signed = format!(
                "{}.{}",
                String::from_utf8_lossy(input),
                URL_SAFE_NO_PAD.encode(signature.as_ref())
            );
            let before = now();
            let verdict = f.rt.block_on(f.validator.validate(&signed));
            let after = now();
            let expected = pure_verdict(&signed, before);
            if expected.is_ok() != pure_verdict(&signed, after).is_ok() {
                return; // a time check flipped during validation; either answer is right
            }
            match (verdict, expected) {
                (Ok(valid), Ok((principal, exp))) => {
                    assert_eq!(valid.principal.name, principal);
                    assert_eq!(valid.expires, UNIX_EPOCH + Duration::from_secs(exp));
                }
                (Err(_), Err(_)) => {}
                // exp so large that it does not fit a SystemTime: refused, as it should be.
                (Err(FailureReason::InvalidToken(m)), Ok(_)) if m.contains("exp out of range") => {}
                (Ok(valid), Err(why)) => panic!(
                    "validator accepted {} but the checks say: {why}",
                    valid.principal
                ),
                (Err(reason), Ok((principal, _))) => {
                    panic!("validator refused {principal} ({reason}) but the checks pass")
                }
            }
        }
        _ => {
            if let Ok(set) = jwks::parse_jwks(rest) {
                for (kid, key) in &set.keys {
                    assert!(jwks::kid_is_sane(kid), "insane kid in a key set: {kid:?}");
                    assert_eq!(&key.kid, kid);
                    let algs = key.allowed_algs();
                    assert!(!algs.is_empty(), "key {kid:?} allows no algorithm");
                    for alg in algs {
                        let _ = key.verify(alg, b"header.payload", &[0u8; 64]);
                    }
                }
                let _ = jwks::fingerprint(set.keys.values().map(|k| k.as_ref()));
            }
        }
    }
});
