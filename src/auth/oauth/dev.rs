//! Development helpers behind `kafka-gateway oauth dev-keys` and `oauth token`: a throwaway signing key
//! with its JWKS, and a token minter. For laptops, CI and tests only: whoever can read the signing key
//! can mint tokens that a gateway configured with the JWKS accepts.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::jwks::kid_is_sane;
use super::OAuthError;

/// The `kid` of the key `write_dev_keys` generates.
pub const DEV_KID: &str = "dev-1";

/// Where `write_dev_keys` put each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevKeyPaths {
    /// Public JWKS (`jwks.json`, mode 0644): point `jwks_file` at it.
    pub jwks: PathBuf,
    /// PKCS#8 PEM private key (`dev-signing-key.pem`, mode 0600): for `mint_token`.
    pub signing_key: PathBuf,
}

/// Generates an ES256 (P-256) key pair and writes `jwks.json` (public key only, kid `dev-1`) and
/// `dev-signing-key.pem` into `dir`. Without `force`, nothing is written if either file exists.
pub fn write_dev_keys(dir: &Path, force: bool) -> Result<DevKeyPaths, OAuthError> {
    let paths = DevKeyPaths {
        jwks: dir.join("jwks.json"),
        signing_key: dir.join("dev-signing-key.pem"),
    };
    fs::create_dir_all(dir).map_err(|source| OAuthError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    if !force {
        // Checked up front so a refusal leaves the directory untouched rather than half-written.
        if let Some(existing) = [&paths.jwks, &paths.signing_key]
            .into_iter()
            .find(|p| p.exists())
        {
            return Err(OAuthError::Exists {
                path: existing.clone(),
            });
        }
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| OAuthError::SigningKey(format!("generating a P-256 key: {e}")))?;
    let jwks = serde_json::json!({ "keys": [ec_public_jwk(&key, DEV_KID)?] });
    // A json! value always serializes.
    let jwks = serde_json::to_string_pretty(&jwks).unwrap_or_default() + "\n";
    write_file(
        &paths.signing_key,
        key.serialize_pem().as_bytes(),
        0o600,
        force,
    )?;
    write_file(&paths.jwks, jwks.as_bytes(), 0o644, force)?;
    Ok(paths)
}

/// The public JWK (`kty` EC) of an rcgen P-256 or P-384 key pair.
pub(crate) fn ec_public_jwk(
    key: &rcgen::KeyPair,
    kid: &str,
) -> Result<serde_json::Value, OAuthError> {
    let (crv, alg, coord) = if key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
        ("P-256", "ES256", 32)
    } else if key.algorithm() == &rcgen::PKCS_ECDSA_P384_SHA384 {
        ("P-384", "ES384", 48)
    } else {
        return Err(OAuthError::SigningKey("not a P-256 or P-384 key".into()));
    };
    // rcgen gives the uncompressed SEC1 point: 0x04 || x || y.
    let point = key.public_key_raw();
    if point.len() != 1 + 2 * coord || point[0] != 0x04 {
        return Err(OAuthError::SigningKey(
            "unexpected EC public key encoding".into(),
        ));
    }
    Ok(serde_json::json!({
        "kty": "EC",
        "crv": crv,
        "alg": alg,
        "use": "sig",
        "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..1 + coord]),
        "y": URL_SAFE_NO_PAD.encode(&point[1 + coord..]),
    }))
}

/// Signs a token with the PEM private key at `signing_key_pem` (P-256 → ES256, P-384 → ES384,
/// Ed25519 → EdDSA, RSA → RS256). Claims: `iss`, `aud`, `sub`, `iat` (now), `exp` (now + ttl) and, if
/// any scopes are given, `scope` as a space-separated string.
pub fn mint_token(
    signing_key_pem: &Path,
    kid: &str,
    issuer: &str,
    audience: &str,
    subject: &str,
    scopes: &[&str],
    ttl: Duration,
) -> Result<String, OAuthError> {
    mint(
        signing_key_pem,
        kid,
        issuer,
        audience,
        subject,
        scopes,
        ttl,
        false,
    )
}

/// A token that expired `ago` ago (issued a minute before that), for testing rejection paths.
pub fn mint_expired_token(
    signing_key_pem: &Path,
    kid: &str,
    issuer: &str,
    audience: &str,
    subject: &str,
    scopes: &[&str],
    ago: Duration,
) -> Result<String, OAuthError> {
    mint(
        signing_key_pem,
        kid,
        issuer,
        audience,
        subject,
        scopes,
        ago,
        true,
    )
}

#[allow(clippy::too_many_arguments)] // the claims of a test token, each one a knob the tests turn
fn mint(
    signing_key_pem: &Path,
    kid: &str,
    issuer: &str,
    audience: &str,
    subject: &str,
    scopes: &[&str],
    ttl: Duration,
    expired: bool,
) -> Result<String, OAuthError> {
    if !kid_is_sane(kid) {
        return Err(OAuthError::SigningKey(
            "kid must be 1 to 256 printable ASCII characters".into(),
        ));
    }
    if ttl.as_secs() == 0 {
        return Err(OAuthError::SigningKey(
            "ttl must be at least one second".into(),
        ));
    }
    if let Some(bad) = scopes.iter().find(|s| s.is_empty() || s.contains(' ')) {
        return Err(OAuthError::SigningKey(format!(
            "scope {bad:?} is empty or contains a space"
        )));
    }
    let pem = fs::read_to_string(signing_key_pem).map_err(|source| OAuthError::Read {
        path: signing_key_pem.to_path_buf(),
        source,
    })?;
    let bad_key =
        |reason: String| OAuthError::SigningKey(format!("{}: {reason}", signing_key_pem.display()));
    let key_pair = rcgen::KeyPair::from_pem(&pem).map_err(|e| bad_key(e.to_string()))?;
    let alg = key_pair.algorithm();
    let (algorithm, key) = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        (Algorithm::ES256, EncodingKey::from_ec_pem(pem.as_bytes()))
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        (Algorithm::ES384, EncodingKey::from_ec_pem(pem.as_bytes()))
    } else if alg == &rcgen::PKCS_ED25519 {
        (Algorithm::EdDSA, EncodingKey::from_ed_pem(pem.as_bytes()))
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        (Algorithm::RS256, EncodingKey::from_rsa_pem(pem.as_bytes()))
    } else {
        return Err(bad_key("unsupported key type".into()));
    };
    let key = key.map_err(|e| bad_key(e.to_string()))?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| OAuthError::SigningKey("system clock is before 1970".into()))?
        .as_secs();
    let mut claims = serde_json::json!({
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": if expired { now.saturating_sub(ttl.as_secs() + 60) } else { now },
        "exp": if expired { now.saturating_sub(ttl.as_secs()) } else { now.saturating_add(ttl.as_secs()) },
    });
    if !scopes.is_empty() {
        claims["scope"] = serde_json::Value::String(scopes.join(" "));
    }
    let mut header = Header::new(algorithm);
    header.typ = Some("JWT".into());
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| OAuthError::SigningKey(format!("signing: {e}")))
}

fn write_file(path: &Path, contents: &[u8], mode: u32, force: bool) -> Result<(), OAuthError> {
    let write_err = |source| OAuthError::Write {
        path: path.to_path_buf(),
        source,
    };
    if !force {
        return create_and_write(path, contents, mode).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => OAuthError::Exists {
                path: path.to_path_buf(),
            },
            _ => write_err(source),
        });
    }
    // Write a fresh file and rename it over the old one, so the mode applies even when replacing a
    // file that was world-readable, and a crash never leaves a half-written key.
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    // A leftover from an interrupted earlier run with the same pid would make create_new fail.
    let _ignored_missing = fs::remove_file(&tmp);
    let result = create_and_write(&tmp, contents, mode).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _best_effort_cleanup = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

fn create_and_write(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
