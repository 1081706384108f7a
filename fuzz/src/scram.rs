//! RFC 5802 arithmetic the SCRAM targets check the gateway (and rsasl) against, computed with
//! aws-lc rather than either implementation under test, and the credential store both the
//! `scram_server` target and the `upstream_sasl` seeds run the gateway's SCRAM server with.

use std::cell::RefCell;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kafka_gateway::auth::credentials::{scram_credential, CredentialStore};
use kafka_gateway::auth::Mechanism;

/// An RFC 5802 client's keys for one password, salt and iteration count.
pub struct ClientKeys {
    pub client_key: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

type KeyCache = HashMap<(bool, Vec<u8>, Vec<u8>, u32), Arc<ClientKeys>>;

/// The keys for `password` (SHA-512 when `sha512`, else SHA-256). PBKDF2 with 4096+ rounds is the
/// slow part; the fuzzer mostly mutates other bytes, so the keys of recent (password, salt,
/// iterations) triples are kept.
pub fn client_keys(
    sha512: bool,
    password: &[u8],
    salt: &[u8],
    iterations: NonZeroU32,
) -> Arc<ClientKeys> {
    thread_local! {
        static CACHE: RefCell<KeyCache> = RefCell::new(HashMap::new());
    }
    let key = (sha512, password.to_vec(), salt.to_vec(), iterations.get());
    if let Some(hit) = CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return hit;
    }
    let (pbkdf, mac, hash, len) = if sha512 {
        (
            pbkdf2::PBKDF2_HMAC_SHA512,
            hmac::HMAC_SHA512,
            &digest::SHA512,
            64,
        )
    } else {
        (
            pbkdf2::PBKDF2_HMAC_SHA256,
            hmac::HMAC_SHA256,
            &digest::SHA256,
            32,
        )
    };
    let mut salted = vec![0u8; len];
    pbkdf2::derive(pbkdf, iterations, salt, password, &mut salted);
    let salted = hmac::Key::new(mac, &salted);
    let client_key = hmac::sign(&salted, b"Client Key").as_ref().to_vec();
    let keys = Arc::new(ClientKeys {
        stored_key: digest::digest(hash, &client_key).as_ref().to_vec(),
        client_key,
        server_key: hmac::sign(&salted, b"Server Key").as_ref().to_vec(),
    });
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= 256 {
            c.clear();
        }
        c.insert(key, Arc::clone(&keys));
    });
    keys
}

pub fn hmac_of(sha512: bool, key: &[u8], data: &[u8]) -> Vec<u8> {
    let alg = if sha512 {
        hmac::HMAC_SHA512
    } else {
        hmac::HMAC_SHA256
    };
    hmac::sign(&hmac::Key::new(alg, key), data)
        .as_ref()
        .to_vec()
}

/// The client proof and the server signature (RFC 5802 section 3) for `auth_message`.
pub fn proof_and_signature(
    keys: &ClientKeys,
    sha512: bool,
    auth_message: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let client_signature = hmac_of(sha512, &keys.stored_key, auth_message);
    let proof = keys
        .client_key
        .iter()
        .zip(&client_signature)
        .map(|(a, b)| a ^ b)
        .collect();
    (proof, hmac_of(sha512, &keys.server_key, auth_message))
}

/// A credential store loaded through the real file format: `(name, password, mechanisms)`, all
/// with the same iteration count and salt.
pub fn credential_store(
    users: &[(&str, &str, &[Mechanism])],
    iterations: u32,
    salt: &[u8],
) -> CredentialStore {
    let mut text = String::new();
    for (name, password, mechs) in users {
        for &mech in *mechs {
            let c = scram_credential(password, mech, iterations, salt)
                .expect("SCRAM mechanisms have credentials");
            text.push_str(&format!(
                "[[user]]\nname = {name:?}\nmechanism = \"{mech}\"\niterations = {iterations}\n\
                 salt = \"{}\"\nstored_key = \"{}\"\nserver_key = \"{}\"\n",
                B64.encode(c.salt()),
                B64.encode(c.stored_key()),
                B64.encode(c.server_key()),
            ));
        }
    }
    CredentialStore::from_bytes(Path::new("fuzz-users.toml"), text.as_bytes())
        .expect("the fixture's credential file is valid")
}
