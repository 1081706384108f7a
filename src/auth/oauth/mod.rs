//! OAUTHBEARER authentication: JWT access-token validation against a JWKS, and the SASL exchange.
//!
//! Validates as Kafka's OIDC validator (KIP-768) does, and stricter:
//! - a signature is always required; `alg: none` and every `HS*` algorithm are refused;
//! - the algorithm is pinned by the key: the token's `kid` (mandatory, at most 256 printable ASCII
//!   characters, screened before any lookup) selects a JWK, and the token's `alg` must be one that JWK
//!   allows (its `alg`, else by key type). Verification uses aws-lc-rs directly with one parsed public
//!   key per allowed algorithm, so an RSA public key can never be used as an HMAC secret;
//! - `jku`, `jwk` and `x5u` headers are never followed: tokens carrying them are refused (a key-injection
//!   signal). `x5c`/`x5t` are ignored. Keys come only from the configured JWKS file and/or URL;
//! - `exp` and `iat` are required, `nbf` is honoured, `iss` must match exactly, `aud` must contain the
//!   configured audience; the clock skew widens every time check; the principal comes from a
//!   configurable claim and must be a non-empty string; required scopes must all be present.
//!
//! Submodules: `token` (JWS parsing, claim checks; pure), `jwks` (key-set parsing; pure), `fetch`
//! (HTTPS download), `sasl` (RFC 7628 parser and exchange state machine), `dev` (dev keys and tokens).

mod dev;
mod fetch;
// Public only for the fuzz targets (fuzz/fuzz_targets/oauthbearer.rs), which drive the parsers
// directly; the gateway itself reaches them through `OAuthValidator`.
#[doc(hidden)]
pub mod jwks;
mod sasl;
#[doc(hidden)]
pub mod token;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::ClientConfig;

use crate::auth::{FailureReason, Principal};
use crate::tls::TlsError;

pub use dev::{mint_expired_token, mint_token, write_dev_keys, DevKeyPaths, DEV_KID};
pub use fetch::FetchError;
pub use jwks::MAX_KID_LEN;
pub use sasl::{parse_client_initial, ClientInitial, OAuthExchange, MAX_CLIENT_MESSAGE};

use fetch::HttpsUrl;
use jwks::{JwkKey, KeySet};

/// Settings for token validation. Build with [`OAuthConfig::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// A JWKS JSON file. Re-read by [`OAuthValidator::reload_file`] and on an unknown `kid`.
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL; `https://` only.
    pub jwks_url: Option<String>,
    /// CA bundle to verify the JWKS URL's server (the build has no system trust store). Required with
    /// `jwks_url`.
    pub jwks_ca_file: Option<PathBuf>,
    /// Expected `iss`, compared exactly.
    pub issuer: String,
    /// Expected audience: the token's `aud` (string or array) must contain it.
    pub audience: String,
    /// Tolerance for `exp`, `nbf` and `iat` (default 30 s, at most 10 min).
    pub clock_skew: Duration,
    /// Claim holding the principal name (default `sub`).
    pub principal_claim: String,
    /// Claim holding the scopes, a space-separated string or an array (default `scope`).
    pub scope_claim: String,
    /// Scopes every token must have.
    pub required_scopes: Vec<String>,
    /// An unknown `kid` triggers at most one JWKS refresh per interval (default 60 s, at least 1 s).
    pub jwks_min_refresh_interval: Duration,
    /// Periodic refresh of the JWKS URL (default 1 h; not below `jwks_min_refresh_interval`).
    pub jwks_refresh_interval: Duration,
}

impl OAuthConfig {
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(30);
    pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(600);
    pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
    pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

    /// A config with the defaults and no key source (set `jwks_file` and/or `jwks_url`).
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        OAuthConfig {
            jwks_file: None,
            jwks_url: None,
            jwks_ca_file: None,
            issuer: issuer.into(),
            audience: audience.into(),
            clock_skew: Self::DEFAULT_CLOCK_SKEW,
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scopes: Vec::new(),
            jwks_min_refresh_interval: Self::DEFAULT_MIN_REFRESH_INTERVAL,
            jwks_refresh_interval: Self::DEFAULT_REFRESH_INTERVAL,
        }
    }

    /// Every problem at once, so an operator fixes the config in one pass.
    pub fn validate(&self) -> Result<(), OAuthError> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("issuer", &self.issuer),
            ("audience", &self.audience),
            ("principal_claim", &self.principal_claim),
            ("scope_claim", &self.scope_claim),
        ] {
            if value.is_empty() {
                problems.push(format!("{name} must not be empty"));
            }
        }
        if self.jwks_file.is_none() && self.jwks_url.is_none() {
            problems.push("set jwks_file and/or jwks_url".into());
        }
        match (&self.jwks_url, &self.jwks_ca_file) {
            (Some(url), ca) => {
                if let Err(e) = HttpsUrl::parse(url) {
                    problems.push(format!("jwks_url: {e}"));
                }
                if ca.is_none() {
                    problems.push(
                        "jwks_url needs jwks_ca_file: this build does not use the system trust store"
                            .into(),
                    );
                }
            }
            (None, Some(_)) => problems.push("jwks_ca_file is set but jwks_url is not".into()),
            (None, None) => {}
        }
        for scope in &self.required_scopes {
            // RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E.
            let ok = !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e));
            if !ok {
                problems.push(format!(
                    "required scope {scope:?} is not a valid scope token"
                ));
            }
        }
        if self.clock_skew > Self::MAX_CLOCK_SKEW {
            problems.push(format!(
                "clock_skew must be at most {}s",
                Self::MAX_CLOCK_SKEW.as_secs()
            ));
        }
        if self.jwks_min_refresh_interval < Duration::from_secs(1) {
            problems.push("jwks_min_refresh_interval must be at least 1s".into());
        }
        if self.jwks_refresh_interval < self.jwks_min_refresh_interval {
            problems
                .push("jwks_refresh_interval must not be below jwks_min_refresh_interval".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(OAuthError::Config(problems))
        }
    }
}

/// Failure to set up validation, load keys, or use the dev helpers. Names the file or URL at fault.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid OAuth settings: {}", .0.join("; "))]
    Config(Vec<String>),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("JWKS from {origin} rejected: {reason}")]
    Jwks { origin: String, reason: String },
    #[error("fetching JWKS from {url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: FetchError,
    },
    #[error("JWKS CA bundle: {0}")]
    Tls(#[from] TlsError),
    #[error("{} already exists; use --force to overwrite", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signing key: {0}")]
    SigningKey(String),
}

/// A token that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub principal: Principal,
    /// The token's `exp`: the session must not outlive it.
    pub expires: SystemTime,
    pub scopes: Vec<String>,
}

/// The keys in use: each source's last good set, and their merge.
struct Keys {
    file: Option<Arc<KeySet>>,
    url: Option<Arc<KeySet>>,
    merged: HashMap<String, Arc<JwkKey>>,
    fingerprint: String,
}

impl Keys {
    fn new(file: Option<Arc<KeySet>>, url: Option<Arc<KeySet>>) -> Keys {
        let mut merged: HashMap<String, Arc<JwkKey>> = HashMap::new();
        // File keys first: an operator-provided file wins over what a URL serves for the same kid.
        for set in [&file, &url].into_iter().flatten() {
            for (kid, key) in &set.keys {
                if merged.contains_key(kid) {
                    tracing::warn!(
                        kid,
                        "kid present in both jwks_file and jwks_url; the file's key is used"
                    );
                } else {
                    merged.insert(kid.clone(), key.clone());
                }
            }
        }
        let fingerprint = jwks::fingerprint(merged.values().map(|k| k.as_ref()));
        Keys {
            file,
            url,
            merged,
            fingerprint,
        }
    }
}

/// Validates bearer tokens. Shared (`Arc`) by every OAUTHBEARER exchange.
pub struct OAuthValidator {
    cfg: OAuthConfig,
    url: Option<HttpsUrl>,
    tls: Option<Arc<ClientConfig>>,
    keys: RwLock<Keys>,
    /// Serializes refreshes and remembers when the last unknown-kid refresh started.
    refresh_gate: tokio::sync::Mutex<Option<Instant>>,
    /// Unknown-kid refreshes performed (for tests and metrics).
    unknown_kid_refreshes: AtomicU64,
}

impl fmt::Debug for OAuthValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthValidator")
            .field("issuer", &self.cfg.issuer)
            .field("audience", &self.cfg.audience)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl OAuthValidator {
    /// Validates the config and loads the keys; a missing, unreadable or unusable file or URL is an
    /// error here, so a gateway never starts unable to authenticate anyone. With a URL, a background
    /// task refreshes it every `jwks_refresh_interval` until the validator is dropped.
    pub async fn new(cfg: OAuthConfig) -> Result<Arc<Self>, OAuthError> {
        cfg.validate()?;
        let url = cfg
            .jwks_url
            .as_deref()
            .map(HttpsUrl::parse)
            .transpose()
            .map_err(|e| OAuthError::Config(vec![format!("jwks_url: {e}")]))?;
        let tls = match &url {
            Some(_) => Some(crate::tls::client_config(
                cfg.jwks_ca_file.as_deref(),
                None,
            )?),
            None => None,
        };
        let file = match &cfg.jwks_file {
            Some(path) => Some(Arc::new(load_file(path)?)),
            None => None,
        };
        let url_keys = match (&url, &tls) {
            (Some(url), Some(tls)) => Some(Arc::new(load_url(url, tls.clone()).await?)),
            _ => None,
        };
        let keys = Keys::new(file, url_keys);
        tracing::info!(
            keys = keys.merged.len(),
            fingerprint = %keys.fingerprint,
            "OAUTHBEARER: JWKS loaded"
        );
        let validator = Arc::new(OAuthValidator {
            cfg,
            url,
            tls,
            keys: RwLock::new(keys),
            refresh_gate: tokio::sync::Mutex::new(None),
            unknown_kid_refreshes: AtomicU64::new(0),
        });
        if validator.url.is_some() {
            spawn_periodic_refresh(&validator);
        }
        Ok(validator)
    }

    /// Validates a bearer token. Failures are `InvalidToken(reason)` or, for an otherwise valid token
    /// lacking a required scope, `InsufficientScope`.
    pub async fn validate(&self, token: &str) -> Result<ValidToken, FailureReason> {
        let invalid = FailureReason::InvalidToken;
        let parts = token::split(token).map_err(invalid)?;
        let header = token::parse_header(&parts).map_err(invalid)?;
        let key = match self.lookup(&header.kid) {
            Some(key) => key,
            None => self
                .refresh_for_unknown_kid(&header.kid)
                .await
                .ok_or_else(|| invalid(format!("unknown kid {:?}", header.kid)))?,
        };
        if !key.allows(header.alg) {
            let allowed: Vec<&str> = key.allowed_algs().into_iter().map(|a| a.name()).collect();
            return Err(invalid(format!(
                "algorithm {} not allowed for key {:?} (allowed: {})",
                header.alg,
                header.kid,
                allowed.join(", ")
            )));
        }
        let signature = parts.signature().map_err(invalid)?;
        if !key.verify(header.alg, parts.signing_input(), &signature) {
            return Err(invalid("signature does not verify".into()));
        }
        let claims = token::decode_payload(&parts).map_err(invalid)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| invalid("system clock is before 1970".into()))?
            .as_secs();
        let expect = token::Expect {
            issuer: &self.cfg.issuer,
            audience: &self.cfg.audience,
            skew_secs: self.cfg.clock_skew.as_secs(),
            principal_claim: &self.cfg.principal_claim,
            scope_claim: &self.cfg.scope_claim,
        };
        let checked = token::check_claims(&claims, &expect, now).map_err(invalid)?;
        let expires = UNIX_EPOCH
            .checked_add(Duration::from_secs(checked.exp))
            .ok_or_else(|| invalid("exp out of range".into()))?;
        if !self
            .cfg
            .required_scopes
            .iter()
            .all(|required| checked.scopes.contains(required))
        {
            return Err(FailureReason::InsufficientScope);
        }
        Ok(ValidToken {
            principal: Principal::user(checked.principal),
            expires,
            scopes: checked.scopes,
        })
    }

    /// Re-reads `jwks_file`. On any error the previous keys stay in use. Returns the new fingerprint.
    /// Blocking file I/O: call from `spawn_blocking` if the caller must not stall a worker.
    pub fn reload_file(&self) -> Result<String, OAuthError> {
        let path = self
            .cfg
            .jwks_file
            .as_ref()
            .ok_or_else(|| OAuthError::Config(vec!["no jwks_file configured".into()]))?;
        let set = load_file(path)?;
        Ok(self.install(Some(Arc::new(set)), None))
    }

    /// Fetches `jwks_url` now. On any error the previous keys stay in use. Returns the new fingerprint.
    pub async fn refresh_url(&self) -> Result<String, OAuthError> {
        let _gate = self.refresh_gate.lock().await;
        self.refresh_url_locked().await
    }

    /// Hex SHA-256 of the keys in use (canonical JSON of their public members, sorted by kid): changes
    /// exactly when the usable key set changes.
    pub fn fingerprint(&self) -> String {
        self.read_keys().fingerprint.clone()
    }

    /// Number of refreshes an unknown `kid` has triggered so far.
    pub fn unknown_kid_refreshes(&self) -> u64 {
        self.unknown_kid_refreshes.load(Ordering::Relaxed)
    }

    /// The RFC 7628 §3.2.2 error challenge for a validation failure. The openid-configuration member
    /// is omitted: the gateway does not advertise its IdP.
    pub fn error_challenge(&self, reason: &FailureReason) -> Vec<u8> {
        match reason {
            FailureReason::InsufficientScope => {
                // A String always serializes to JSON.
                let scope = serde_json::to_string(&self.cfg.required_scopes.join(" "))
                    .unwrap_or_else(|_| "\"\"".into());
                format!(r#"{{"status":"insufficient_scope","scope":{scope}}}"#).into_bytes()
            }
            _ => br#"{"status":"invalid_token"}"#.to_vec(),
        }
    }

    pub(crate) fn principal_claim(&self) -> &str {
        &self.cfg.principal_claim
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        // A panic while holding the lock cannot leave Keys half-updated (it is replaced whole).
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lookup(&self, kid: &str) -> Option<Arc<JwkKey>> {
        self.read_keys().merged.get(kid).cloned()
    }

    /// Replaces one source's keys (the other is kept) and returns the new fingerprint.
    fn install(&self, file: Option<Arc<KeySet>>, url: Option<Arc<KeySet>>) -> String {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let file = file.or_else(|| keys.file.clone());
        let url = url.or_else(|| keys.url.clone());
        let before = keys.fingerprint.clone();
        *keys = Keys::new(file, url);
        if keys.fingerprint != before {
            tracing::info!(
                keys = keys.merged.len(),
                fingerprint = %keys.fingerprint,
                "OAUTHBEARER: JWKS changed"
            );
        }
        keys.fingerprint.clone()
    }

    /// Caller holds `refresh_gate`.
    async fn refresh_url_locked(&self) -> Result<String, OAuthError> {
        let (Some(url), Some(tls)) = (&self.url, &self.tls) else {
            return Err(OAuthError::Config(vec!["no jwks_url configured".into()]));
        };
        let set = load_url(url, tls.clone()).await?;
        Ok(self.install(None, Some(Arc::new(set))))
    }

    /// An unknown kid may mean the IdP rotated keys. Refresh every source, but at most once per
    /// `jwks_min_refresh_interval`: validations arriving while a refresh runs wait for it and then look
    /// again; later ones within the interval fail at once without touching the network.
    async fn refresh_for_unknown_kid(&self, kid: &str) -> Option<Arc<JwkKey>> {
        let mut last = self.refresh_gate.lock().await;
        if let Some(key) = self.lookup(kid) {
            return Some(key);
        }
        if last.is_some_and(|t| t.elapsed() < self.cfg.jwks_min_refresh_interval) {
            return None;
        }
        *last = Some(Instant::now());
        self.unknown_kid_refreshes.fetch_add(1, Ordering::Relaxed);
        tracing::info!(kid, "OAUTHBEARER: unknown kid; refreshing JWKS");
        if let Some(path) = self.cfg.jwks_file.clone() {
            match tokio::task::spawn_blocking(move || load_file(&path)).await {
                Ok(Ok(set)) => {
                    self.install(Some(Arc::new(set)), None);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "JWKS file reload failed; keeping previous keys")
                }
                Err(e) => tracing::warn!(error = %e, "JWKS file reload task failed"),
            }
        }
        if self.url.is_some() {
            if let Err(e) = self.refresh_url_locked().await {
                tracing::warn!(error = %e, "JWKS refresh failed; keeping previous keys");
            }
        }
        drop(last);
        self.lookup(kid)
    }
}

fn spawn_periodic_refresh(validator: &Arc<OAuthValidator>) {
    let weak = Arc::downgrade(validator);
    let period = validator.cfg.jwks_refresh_interval;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            // Stops once the validator is gone (config reload, shutdown).
            let Some(validator) = weak.upgrade() else {
                break;
            };
            if let Err(e) = validator.refresh_url().await {
                tracing::warn!(error = %e, "periodic JWKS refresh failed; keeping previous keys");
            }
        }
    });
}

fn load_file(path: &std::path::Path) -> Result<KeySet, OAuthError> {
    let bytes = std::fs::read(path).map_err(|source| OAuthError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_logged(&bytes, &path.display().to_string())
}

async fn load_url(url: &HttpsUrl, tls: Arc<ClientConfig>) -> Result<KeySet, OAuthError> {
    let body = fetch::fetch(url, tls)
        .await
        .map_err(|source| OAuthError::Fetch {
            url: url.to_string(),
            source,
        })?;
    parse_logged(&body, &url.to_string())
}

fn parse_logged(bytes: &[u8], origin: &str) -> Result<KeySet, OAuthError> {
    let set = jwks::parse_jwks(bytes).map_err(|reason| OAuthError::Jwks {
        origin: origin.to_string(),
        reason,
    })?;
    for skipped in &set.skipped {
        tracing::warn!(origin, "JWKS key skipped: {skipped}");
    }
    Ok(set)
}
