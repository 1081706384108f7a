//! JWKS parsing: turns a JSON Web Key Set into verification keys, each pinned to the algorithms it may verify.
//!
//! No I/O here. A key set comes from a file or an HTTPS URL (see `fetch.rs`); this module decides which of
//! its keys are usable. The rules are deliberately narrow:
//!
//! - only public asymmetric keys: a JWK carrying private members (`d`, `p`, `q`, ...) or a symmetric `oct`
//!   key makes the whole set an error, because it means a secret was published or the issuer uses HMAC,
//!   which a gateway holding only public material must never accept;
//! - each key is pinned to its algorithms: the JWK's `alg` if present, else by `kty`/`crv`
//!   (RSA: RS256/RS384/RS512/PS256; EC P-256: ES256; EC P-384: ES384; OKP Ed25519: EdDSA). HMAC is not
//!   representable at all, so an RSA public key can never be used as an HMAC secret;
//! - keys that are well formed but not for us (`use` other than `sig`, `key_ops` without `verify`, an
//!   unsupported `kty`/`crv`/`alg`, no `kid`) are skipped with a warning, as IdPs publish such keys
//!   alongside signing keys;
//! - a `kid` appearing twice in one set is an error: the key for a token would be ambiguous.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{
    self as sig, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents, VerificationAlgorithm,
};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{Map, Value};

/// Longest `kid` accepted, in tokens and in key sets. Real kids are short (hashes, UUIDs, dates).
pub const MAX_KID_LEN: usize = 256;

/// A key set with more keys than this is refused: real IdPs publish a handful.
const MAX_KEYS: usize = 256;

/// RSA modulus sizes accepted (bits). Below 2048 is too weak; above 8192 is an expensive-verification
/// denial-of-service vector (and aws-lc rejects it at verification anyway).
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// JWK members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Base64url for JWK members: RFC 7517 says no padding, but some publishers pad; both decode the same.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Signature algorithms the gateway can verify. HMAC (`HS*`) and `none` are deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 9] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// The JOSE name (RFC 7518), e.g. `ES256`.
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// Exact, case-sensitive match as RFC 7515 requires.
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    fn rsa_params(self) -> Option<&'static RsaParameters> {
        Some(match self {
            Alg::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Alg::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Alg::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Alg::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            Alg::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            Alg::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
            Alg::ES256 | Alg::ES384 | Alg::EdDSA => return None,
        })
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Algorithms an RSA key without an `alg` member may verify (the set Kafka's validator accepts by
/// default). PS384/PS512 need the JWK to name them explicitly.
const RSA_DEFAULT_ALGS: [Alg; 4] = [Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256];
const RSA_ALGS: [Alg; 6] = [
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::PS256,
    Alg::PS384,
    Alg::PS512,
];

/// One usable verification key: one parsed public key per algorithm it is allowed to verify, so "is
/// this algorithm allowed for this key" and "which key object verifies it" are the same lookup.
pub struct JwkKey {
    pub kid: String,
    verifiers: Vec<(Alg, ParsedPublicKey)>,
    /// Canonical JSON of the public members, for the key-set fingerprint.
    canonical: String,
}

impl fmt::Debug for JwkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwkKey")
            .field("kid", &self.kid)
            .field("algs", &self.allowed_algs())
            .finish()
    }
}

impl JwkKey {
    pub fn allowed_algs(&self) -> Vec<Alg> {
        self.verifiers.iter().map(|(a, _)| *a).collect()
    }

    pub fn allows(&self, alg: Alg) -> bool {
        self.verifiers.iter().any(|(a, _)| *a == alg)
    }

    /// Verifies `signature` over `message` with `alg`. False if the algorithm is not allowed for this
    /// key or the signature does not verify.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        self.verifiers
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }
}

/// The usable keys of one JWKS document, by `kid`.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: HashMap<String, Arc<JwkKey>>,
    /// Why keys were skipped, for one warning per load.
    pub skipped: Vec<String>,
}

/// Parses a JWKS document. `Err` means the document as a whole must not be used.
pub fn parse_jwks(bytes: &[u8]) -> Result<KeySet, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let keys = doc
        .as_object()
        .ok_or("not a JSON object")?
        .get("keys")
        .ok_or("no \"keys\" member")?
        .as_array()
        .ok_or("\"keys\" is not an array")?;
    if keys.len() > MAX_KEYS {
        return Err(format!("{} keys (at most {MAX_KEYS} accepted)", keys.len()));
    }

    let mut set = KeySet::default();
    for (index, jwk) in keys.iter().enumerate() {
        let jwk = jwk
            .as_object()
            .ok_or_else(|| format!("key #{index} is not a JSON object"))?;
        let label = match jwk.get("kid").and_then(Value::as_str) {
            Some(kid) => format!("key #{index} (kid {:?})", truncate(kid)),
            None => format!("key #{index}"),
        };
        if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
            return Err(format!(
                "{label} contains private or symmetric key material (member \"{member}\"); \
                 only public keys may be configured"
            ));
        }
        if jwk.get("kty").and_then(Value::as_str) == Some("oct") {
            return Err(format!(
                "{label} is a symmetric (oct) key; only public keys may be configured"
            ));
        }
        match parse_jwk(jwk) {
            Ok(key) => {
                if set.keys.contains_key(&key.kid) {
                    return Err(format!("{label}: kid appears more than once"));
                }
                set.keys.insert(key.kid.clone(), Arc::new(key));
            }
            Err(reason) => set.skipped.push(format!("{label}: {reason}")),
        }
    }
    if set.keys.is_empty() {
        let detail = if set.skipped.is_empty() {
            String::new()
        } else {
            format!(" ({})", set.skipped.join("; "))
        };
        return Err(format!("no usable signing keys{detail}"));
    }
    Ok(set)
}

/// Whether a `kid` is sane enough to look up: bounded and printable ASCII. Checked before any lookup
/// or refresh so a hostile token cannot make the gateway hash, log or fetch on its behalf.
pub fn kid_is_sane(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= MAX_KID_LEN && kid.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Hex SHA-256 over the canonical JSON of the given keys, sorted by kid. Canonical (sorted members, no
/// whitespace, unused members dropped) so that the fingerprint changes exactly when the usable key set
/// changes, not when a publisher reorders or reformats its document.
pub fn fingerprint<'a>(keys: impl Iterator<Item = &'a JwkKey>) -> String {
    let mut canon: Vec<&str> = keys.map(|k| k.canonical.as_str()).collect();
    canon.sort_unstable();
    let doc = format!("{{\"keys\":[{}]}}", canon.join(","));
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, doc.as_bytes()).as_ref())
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn parse_jwk(jwk: &Map<String, Value>) -> Result<JwkKey, String> {
    let str_member = |name: &str| -> Result<Option<&str>, String> {
        match jwk.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("\"{name}\" is not a string")),
        }
    };
    let kid = str_member("kid")?.ok_or("no kid (tokens must name their key)")?;
    if !kid_is_sane(kid) {
        return Err(format!(
            "kid is empty, longer than {MAX_KID_LEN} bytes or not printable ASCII"
        ));
    }
    if let Some(key_use) = str_member("use")? {
        if key_use != "sig" {
            return Err(format!("\"use\" is {key_use:?}, not \"sig\""));
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops.as_array().ok_or("\"key_ops\" is not an array")?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err("\"key_ops\" does not include \"verify\"".into());
        }
    }
    let declared_alg =
        match str_member("alg")? {
            None => None,
            Some(name) => Some(Alg::from_name(name).ok_or_else(|| {
                format!("\"alg\" {name:?} is not a supported signature algorithm")
            })?),
        };
    let kty = str_member("kty")?.ok_or("no kty")?;
    let b64 = |name: &str| -> Result<Vec<u8>, String> {
        let text = str_member(name)?.ok_or_else(|| format!("no \"{name}\""))?;
        JWK_B64
            .decode(text)
            .map_err(|e| format!("\"{name}\" is not base64url: {e}"))
    };

    let mut canonical: BTreeMap<&str, &str> = BTreeMap::new();
    canonical.insert("kid", kid);
    canonical.insert("kty", kty);
    if let Some(alg) = declared_alg {
        canonical.insert("alg", alg.name());
    }

    let pin = |allowed: &[Alg], default: &[Alg]| -> Result<Vec<Alg>, String> {
        match declared_alg {
            Some(alg) if allowed.contains(&alg) => Ok(vec![alg]),
            Some(alg) => Err(format!("\"alg\" {alg} does not match this key type")),
            None => Ok(default.to_vec()),
        }
    };

    let verifiers = match kty {
        "RSA" => {
            let n = strip_leading_zeros(b64("n")?);
            let e = strip_leading_zeros(b64("e")?);
            let bits = bit_len(&n);
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return Err(format!(
                    "RSA modulus is {bits} bits (accepted: {RSA_MIN_BITS} to {RSA_MAX_BITS})"
                ));
            }
            if e.is_empty() || e.len() > 8 {
                return Err("RSA exponent is empty or implausibly large".into());
            }
            canonical.insert("n", str_member("n")?.unwrap_or_default());
            canonical.insert("e", str_member("e")?.unwrap_or_default());
            let components = RsaPublicKeyComponents { n: &n, e: &e };
            pin(&RSA_ALGS, &RSA_DEFAULT_ALGS)?
                .into_iter()
                .map(|alg| {
                    // rsa_params is Some for every RSA_ALGS member.
                    let params = alg.rsa_params().ok_or("not an RSA algorithm")?;
                    components
                        .to_parsed_public_key(params)
                        .map(|key| (alg, key))
                        .map_err(|e| format!("RSA key rejected: {e}"))
                })
                .collect::<Result<Vec<_>, String>>()?
        }
        "EC" => {
            let crv = str_member("crv")?.ok_or("no crv")?;
            let (alg, coord_len, verification): (Alg, usize, &'static dyn VerificationAlgorithm) =
                match crv {
                    "P-256" => (Alg::ES256, 32, &sig::ECDSA_P256_SHA256_FIXED),
                    "P-384" => (Alg::ES384, 48, &sig::ECDSA_P384_SHA384_FIXED),
                    other => return Err(format!("EC curve {other:?} is not supported")),
                };
            let algs = pin(&[alg], &[alg])?;
            let (x, y) = (b64("x")?, b64("y")?);
            if x.len() != coord_len || y.len() != coord_len {
                return Err(format!("{crv} coordinates must be {coord_len} bytes each"));
            }
            canonical.insert("crv", crv);
            canonical.insert("x", str_member("x")?.unwrap_or_default());
            canonical.insert("y", str_member("y")?.unwrap_or_default());
            let mut point = Vec::with_capacity(1 + 2 * coord_len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let key = ParsedPublicKey::new(verification, &point)
                .map_err(|e| format!("EC point rejected: {e}"))?;
            algs.into_iter().map(|a| (a, key.clone())).collect()
        }
        "OKP" => {
            let crv = str_member("crv")?.ok_or("no crv")?;
            if crv != "Ed25519" {
                return Err(format!("OKP curve {crv:?} is not supported"));
            }
            let algs = pin(&[Alg::EdDSA], &[Alg::EdDSA])?;
            let x = b64("x")?;
            if x.len() != 32 {
                return Err("Ed25519 public key must be 32 bytes".into());
            }
            canonical.insert("crv", crv);
            canonical.insert("x", str_member("x")?.unwrap_or_default());
            let key = ParsedPublicKey::new(&sig::ED25519, &x)
                .map_err(|e| format!("Ed25519 key rejected: {e}"))?;
            algs.into_iter().map(|a| (a, key.clone())).collect()
        }
        other => return Err(format!("key type {other:?} is not supported")),
    };

    Ok(JwkKey {
        kid: kid.to_string(),
        verifiers,
        // A BTreeMap of strings always serializes.
        canonical: serde_json::to_string(&canonical).unwrap_or_default(),
    })
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

fn bit_len(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        None => 0,
        Some(first) => big_endian.len() * 8 - first.leading_zeros() as usize,
    }
}
