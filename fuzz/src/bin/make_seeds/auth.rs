//! Seeds for the authentication and configuration targets: `scram_server`, `upstream_sasl`,
//! `oauthbearer` and `config_files`. Each seed is in the input format its target's header
//! describes.

use std::io;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine;
use kafka_gateway::auth::credentials::Decoy;
use kafka_gateway::auth::oauth::{mint_expired_token, mint_token, write_dev_keys, DEV_KID};
use kafka_gateway::auth::scram::ScramExchange;
use kafka_gateway::auth::{Mechanism, Step};
use kafka_gateway_fuzz::scram::{client_keys, credential_store, proof_and_signature};
use kafka_gateway_fuzz::{UPSTREAM_PASSWORD, UPSTREAM_USERS};

use super::write;

/// SCRAM exchanges: `flags | client-first | 0 | client-final template | 0 | password`, with the
/// target's users (alice/alice-pw on both mechanisms, al,ice/comma-pw on SHA-256, a=b/equals-pw on
/// SHA-512). Returns how many were written.
pub fn scram(dir: &Path) -> io::Result<usize> {
    const NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
    let plain = "c=biws,r={nonce},p={proof}";
    let cases: &[(&str, u8, String, &str, &str)] = &[
        (
            "alice-256",
            0,
            format!("n,,n=alice,r={NONCE}"),
            plain,
            "alice-pw",
        ),
        (
            "alice-512",
            1,
            format!("n,,n=alice,r={NONCE}"),
            plain,
            "alice-pw",
        ),
        (
            "alice-wrong-pw",
            0,
            format!("n,,n=alice,r={NONCE}"),
            plain,
            "alice-PW",
        ),
        (
            "comma-user",
            0,
            format!("n,,n=al=2Cice,r={NONCE}"),
            plain,
            "comma-pw",
        ),
        (
            "equals-user",
            1,
            format!("n,,n=a=3Db,r={NONCE}"),
            plain,
            "equals-pw",
        ),
        (
            "unknown-user",
            0,
            format!("n,,n=mallory,r={NONCE}"),
            plain,
            "alice-pw",
        ),
        (
            "no-512-credential",
            1,
            format!("n,,n=al=2Cice,r={NONCE}"),
            plain,
            "comma-pw",
        ),
        (
            "authzid",
            1,
            format!("n,a=alice,n=alice,r={NONCE}"),
            // base64("n,a=alice,")
            "c=bixhPWFsaWNlLA==,r={nonce},p={proof}",
            "alice-pw",
        ),
        (
            "extensions",
            0,
            format!("n,,n=alice,r={NONCE},ext=1"),
            "c=biws,r={nonce},ext=2,p={proof}",
            "alice-pw",
        ),
        (
            "tokenauth",
            0,
            format!("n,,n=alice,r={NONCE},tokenauth=true"),
            plain,
            "x",
        ),
        (
            "wrong-nonce",
            0,
            format!("n,,n=alice,r={NONCE}"),
            "c=biws,r=abc,p={proof}",
            "alice-pw",
        ),
        (
            "literal-proof",
            1,
            format!("n,,n=alice,r={NONCE}"),
            "c=biws,r={nonce},p=dHJ1c3QgbWU=",
            "",
        ),
    ];
    for (name, flags, first, fin, password) in cases {
        let mut input = vec![*flags];
        input.extend_from_slice(first.as_bytes());
        input.push(0);
        input.extend_from_slice(fin.as_bytes());
        if !password.is_empty() {
            input.push(0);
            input.extend_from_slice(password.as_bytes());
        }
        write(dir, name, &input)?;
    }
    Ok(cases.len())
}

/// Broker messages for the gateway's own login (`flags | server-first | 0 | server-final
/// [| 0 | extra]`), produced by running the gateway's SCRAM server (`auth::scram::ScramExchange`)
/// as the broker, with the target's service users and password: for both hashes and both users,
/// its server-first (client nonce `{nonce}`, so the target substitutes the real one) with
/// `v={signature}` (logs in), and with the literal server-final the server answered a client that
/// used the nonce `{nonce}` (a well-formed signature of another exchange: refused). Then variants of
/// the SHA-256 pair: errors, extensions, iteration counts at and past Kafka's range, bad nonces and
/// salts, a message after the end, and PLAIN. Returns how many were written.
pub fn upstream_sasl(dir: &Path) -> io::Result<usize> {
    const ITERATIONS: u32 = 4096;
    const SALT: &[u8] = &[0x3c; 24];
    let users: Vec<(&str, &str, &[Mechanism])> = UPSTREAM_USERS
        .iter()
        .map(|u| {
            (
                *u,
                UPSTREAM_PASSWORD,
                &[Mechanism::ScramSha256, Mechanism::ScramSha512][..],
            )
        })
        .collect();
    let store = Arc::new(credential_store(&users, ITERATIONS, SALT));
    let decoy = Arc::new(Decoy::new(ITERATIONS, SALT.len()));

    let mut seeds: Vec<(String, u8, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut sha256_first = String::new();
    for (sha512, mech) in [
        (false, Mechanism::ScramSha256),
        (true, Mechanism::ScramSha512),
    ] {
        for (user_bit, user) in UPSTREAM_USERS.iter().enumerate() {
            let escaped = user.replace('=', "=3D").replace(',', "=2C");
            let bare = format!("n={escaped},r={{nonce}}");
            let mut server = ScramExchange::new(mech, Arc::clone(&store), Arc::clone(&decoy));
            let Step::Continue(first) = server.step(format!("n,,{bare}").as_bytes()) else {
                return Err(io::Error::other(
                    "the gateway's SCRAM server refused client-first",
                ));
            };
            let first = String::from_utf8(first).map_err(io::Error::other)?;
            let nonce = first
                .split(',')
                .next()
                .and_then(|r| r.strip_prefix("r="))
                .ok_or_else(|| io::Error::other("server-first without r="))?;
            let without_proof = format!("c=biws,r={nonce}");
            let keys = client_keys(
                sha512,
                UPSTREAM_PASSWORD.as_bytes(),
                SALT,
                NonZeroU32::new(ITERATIONS).expect("non-zero"),
            );
            let auth_message = format!("{bare},{first},{without_proof}");
            let (proof, _) = proof_and_signature(&keys, sha512, auth_message.as_bytes());
            let client_final = format!("{without_proof},p={}", B64.encode(proof));
            let Step::Success { response, .. } = server.step(client_final.as_bytes()) else {
                return Err(io::Error::other(
                    "the gateway's SCRAM server refused client-final",
                ));
            };
            let flags = u8::from(sha512) | (user_bit as u8) << 1;
            let name = format!("{mech}-{}", ["svc", "escaped-svc"][user_bit]);
            seeds.push((
                name.clone(),
                flags,
                first.clone().into(),
                b"v={signature}".to_vec(),
            ));
            seeds.push((
                format!("{name}-literal-final"),
                flags,
                first.clone().into(),
                response,
            ));
            if !sha512 && user_bit == 0 {
                sha256_first = first;
            }
        }
    }

    let first = sha256_first;
    let with_iterations = |i: &str| first.replace(&format!(",i={ITERATIONS}"), &format!(",i={i}"));
    let salt_attr = format!(",s={}", B64.encode(SALT));
    let sig = b"v={signature}".to_vec();
    let variants: [(&str, u8, String, &[u8]); 15] = [
        ("error-invalid-proof", 0, first.clone(), b"e=invalid-proof"),
        ("error-other", 0, first.clone(), b"e=no-such-error"),
        ("first-extension", 0, format!("{first},ext=1"), &sig),
        ("final-extension", 0, first.clone(), b"v={signature},ext=1"),
        (
            "message-after-end",
            0,
            first.clone(),
            b"v={signature}\0v={signature}",
        ),
        ("iterations-max", 0, with_iterations("16384"), &sig),
        ("iterations-below", 0, with_iterations("4095"), &sig),
        ("iterations-above", 0, with_iterations("16385"), &sig),
        ("iterations-u32-max", 0, with_iterations("4294967295"), &sig),
        ("iterations-zero", 0, with_iterations("0"), &sig),
        (
            "nonce-not-extended",
            0,
            format!("r={{nonce}}{salt_attr},i={ITERATIONS}"),
            &sig,
        ),
        (
            "nonce-foreign",
            0,
            format!("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j{salt_attr},i={ITERATIONS}"),
            &sig,
        ),
        (
            "salt-not-base64",
            0,
            first.replace(&salt_attr, ",s=*"),
            &sig,
        ),
        ("mandatory-extension", 0, format!("m=x,{first}"), &sig),
        ("plain", 0x0c, String::new(), b""),
    ];
    for (name, flags, first, fin) in variants {
        seeds.push((name.to_string(), flags, first.into_bytes(), fin.to_vec()));
    }
    for (name, flags, first, fin) in &seeds {
        let mut input = vec![*flags];
        input.extend_from_slice(first);
        input.push(0);
        input.extend_from_slice(fin);
        write(dir, name, &input)?;
    }
    Ok(seeds.len())
}

/// OAUTHBEARER: a real dev token (minted with a throwaway `oauth::write_dev_keys` key), SASL
/// messages carrying it, claim variants for the re-signing mode, and the dev JWKS.
pub fn oauth(dir: &Path) -> io::Result<usize> {
    const ISSUER: &str = "https://issuer.dev.kafka-gateway";
    const AUDIENCE: &str = "kafka-gateway";
    let keys_dir = std::env::temp_dir().join(format!("kgw-make-seeds-{}", std::process::id()));
    let keys = write_dev_keys(&keys_dir, true).map_err(io::Error::other)?;
    // Ten years: the re-signing mode keeps reaching the success path while the corpus is kept.
    let ttl = Duration::from_secs(10 * 365 * 24 * 3600);
    let token = mint_token(
        &keys.signing_key,
        DEV_KID,
        ISSUER,
        AUDIENCE,
        "alice",
        &["kafka", "read"],
        ttl,
    )
    .map_err(io::Error::other)?;
    let unscoped = mint_token(
        &keys.signing_key,
        DEV_KID,
        ISSUER,
        AUDIENCE,
        "bob",
        &[],
        ttl,
    )
    .map_err(io::Error::other)?;
    let expired = mint_expired_token(
        &keys.signing_key,
        DEV_KID,
        ISSUER,
        AUDIENCE,
        "alice",
        &["kafka"],
        Duration::from_secs(3600),
    )
    .map_err(io::Error::other)?;
    let jwks = std::fs::read(&keys.jwks)?;
    let _ = std::fs::remove_dir_all(&keys_dir);

    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, mode: u8, body: &[u8]| {
        let mut input = vec![mode];
        input.extend_from_slice(body);
        seeds.push((name.to_string(), input));
    };
    // Mode 0: SASL client-initial messages.
    add(
        "sasl-plain",
        0,
        format!("n,,\x01auth=Bearer {token}\x01\x01").as_bytes(),
    );
    add(
        "sasl-authzid-extensions",
        0,
        format!("n,a=alice,\x01host=localhost\x01port=9092\x01auth=Bearer {token}\x01traceId=abc\x01\x01")
            .as_bytes(),
    );
    add(
        "sasl-escaped-authzid",
        0,
        b"y,a=a=2Cb=3Dc,\x01auth=bearer x.y.z\x01\x01",
    );
    add("sasl-after-challenge", 0, b"\x01");
    // Mode 1: tokens as they are.
    add("token", 1, token.as_bytes());
    add("token-expired", 1, expired.as_bytes());
    add("token-unscoped", 1, unscoped.as_bytes());
    // Mode 2: re-signed with the target's key, so the claims decide.
    add("resign-token", 2, token.as_bytes());
    add("resign-expired", 2, expired.as_bytes());
    add("resign-unscoped", 2, unscoped.as_bytes());
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"dev-1","typ":"JWT"}"#);
    for (name, claims) in [
        (
            "resign-aud-array-scope-array",
            r#"{"iss":"https://issuer.dev.kafka-gateway","aud":["other","kafka-gateway"],"sub":"carol","iat":1700000000,"exp":4000000000,"nbf":1700000000,"scope":["kafka"]}"#,
        ),
        (
            "resign-fractional-dates",
            r#"{"iss":"https://issuer.dev.kafka-gateway","aud":"kafka-gateway","sub":"dave","iat":1700000000.5,"exp":4000000000.25,"scope":"kafka write"}"#,
        ),
        (
            "resign-not-yet-valid",
            r#"{"iss":"https://issuer.dev.kafka-gateway","aud":"kafka-gateway","sub":"erin","iat":1700000000,"exp":4000000000,"nbf":3999999999,"scope":"kafka"}"#,
        ),
        (
            "resign-wrong-issuer",
            r#"{"iss":"https://evil.example","aud":"kafka-gateway","sub":"mallory","iat":1700000000,"exp":4000000000,"scope":"kafka"}"#,
        ),
    ] {
        let token = format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims));
        add(name, 2, token.as_bytes());
    }
    for (name, header) in [
        ("header-alg-none", r#"{"alg":"none","kid":"dev-1"}"#),
        ("header-hs256", r#"{"alg":"HS256","kid":"dev-1"}"#),
        (
            "header-jku",
            r#"{"alg":"ES256","kid":"dev-1","jku":"https://evil.example/jwks"}"#,
        ),
        ("header-no-kid", r#"{"alg":"RS256"}"#),
    ] {
        let token = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        );
        add(name, 1, token.as_bytes());
    }
    // Mode 3: key sets.
    add("jwks-dev", 3, &jwks);
    add(
        "jwks-mixed",
        3,
        br#"{"keys":[{"kty":"EC","crv":"P-384","kid":"k384","use":"sig","x":"AA","y":"AA"},{"kty":"RSA","kid":"rsa","n":"AQAB","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},{"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"AA","y":"AA"}]}"#,
    );
    add(
        "jwks-private",
        3,
        br#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#,
    );
    for (name, input) in &seeds {
        write(dir, name, input)?;
    }
    Ok(seeds.len())
}

/// The sample files (`policies/`), each behind its `config_files` selector, and a few small ones.
pub fn config(dir: &Path, policies: &Path) -> io::Result<usize> {
    let mut n = 0;
    for (selector, file) in [
        (0u8, "acl.policy"),
        (1, "model.conf"),
        (2, "users.toml"),
        (3, "gateway.toml"),
    ] {
        let mut input = vec![selector];
        input.extend_from_slice(&std::fs::read(policies.join(file))?);
        write(dir, &format!("sample-{file}"), &input)?;
        n += 1;
    }
    let small: [(&str, u8, &str); 4] = [
        (
            "policy-groups-cidr-deny",
            0,
            "g, User:bob, Group:payments\n\
             p, Group:payments, Topic, pay-*, Write, 10.0.0.0/8, allow\n\
             p, User:*, Topic, \"a,b\", Describe, ::ffff:192.0.2.1, deny\n\
             p, User:bob, TransactionalId, tx-*, All, *, allow\n\
             p, User:bob, Cluster, kafka-cluster, IdempotentWrite, 192.0.2.7, allow\n",
        ),
        (
            "policy-errors",
            0,
            "p, User:*, Cluster, kafka-*, All, *, allow\nq, nothing\np, User:a, Topic, x, Fly, *, allow # comment\n",
        ),
        (
            "config-minimal",
            3,
            "[[listeners]]\nname = \"plain\"\nbind = \"127.0.0.1:9092\"\nadvertised_host = \"localhost\"\n\
             broker_port_base = 9100\nbroker_port_count = 4\nnode_id_base = 0\n\n\
             [upstream]\nbootstrap_servers = [\"127.0.0.1:19092\"]\n\n[authorization]\nallow_all = true\n",
        ),
        (
            "config-upstream-sasl",
            3,
            "[[listeners]]\nname = \"plain\"\nbind = \"127.0.0.1:9092\"\nadvertised_host = \"localhost\"\n\
             broker_port_base = 9100\nbroker_port_count = 4\nnode_id_base = 0\n\
             sasl_mechanisms = [\"SCRAM-SHA-256\"]\n\n\
             [upstream]\nbootstrap_servers = [\"127.0.0.1:19092\"]\n\
             [upstream.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"gw\"\npassword = \"s3cret\"\n\n\
             [authentication]\ncredentials_file = \"users.toml\"\n\n\
             [authorization]\nmodel = \"model.conf\"\npolicy_files = [\"acl.policy\"]\n",
        ),
    ];
    for (name, selector, text) in small {
        let mut input = vec![selector];
        input.extend_from_slice(text.as_bytes());
        write(dir, name, &input)?;
        n += 1;
    }
    Ok(n)
}
