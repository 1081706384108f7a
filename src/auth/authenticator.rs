//! The gateway's authentication service: starts SASL exchanges, maps certificates, enforces lockout,
//! and holds the reloadable credential store.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::sync::{read, write};
use std::time::Instant;

use super::credentials::{CredentialStore, Decoy};
use super::gssapi::{GssapiExchange, KerberosAcceptor};
use super::lockout::{Lockout, LockoutConfig};
use super::oauth::{OAuthConfig, OAuthExchange, OAuthValidator};
use super::plain::PlainExchange;
use super::principal::PrincipalMapper;
use super::scram::ScramExchange;
use super::{Mechanism, Principal, Step};
use crate::config::AuthConfig;

/// One SASL exchange in progress, whichever the mechanism.
pub enum Exchange {
    Scram(ScramExchange),
    Plain(PlainExchange),
    OAuth(OAuthExchange),
    Gssapi(GssapiExchange),
}

impl Exchange {
    /// A failure the client cannot escape by disconnecting (OAUTHBEARER after its error challenge).
    pub fn abandoned_failure(&self) -> Option<(super::FailureReason, Option<String>)> {
        match self {
            Exchange::OAuth(x) => x.abandoned_failure(),
            Exchange::Scram(_) | Exchange::Plain(_) | Exchange::Gssapi(_) => None,
        }
    }

    pub async fn step(&mut self, input: &[u8]) -> Step {
        match self {
            Exchange::Scram(x) => x.step(input),
            Exchange::Plain(x) => x.step(input).await,
            Exchange::OAuth(x) => x.step(input).await,
            Exchange::Gssapi(x) => x.step(input).await,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("credentials file: {0}")]
    Credentials(String),
    #[error("authentication.principal_mapping_rules: {0}")]
    Rules(String),
    #[error("authentication.oauthbearer: {0}")]
    OAuth(String),
    #[error("authentication.kerberos: {0}")]
    Kerberos(String),
}

pub struct Authenticator {
    credentials_file: Option<PathBuf>,
    credentials: RwLock<Arc<CredentialStore>>,
    decoy: RwLock<Arc<Decoy>>,
    oauth: Option<Arc<OAuthValidator>>,
    kerberos: Option<Arc<KerberosAcceptor>>,
    mapper: PrincipalMapper,
    lockout: Arc<Lockout>,
    pub config: AuthConfig,
}

impl Authenticator {
    pub async fn new(config: &AuthConfig) -> Result<Arc<Self>, AuthSetupError> {
        let credentials = match &config.credentials_file {
            Some(path) => CredentialStore::load(path)
                .map_err(|e| AuthSetupError::Credentials(e.to_string()))?,
            None => CredentialStore::empty(),
        };
        let decoy = Decoy::for_store(&credentials);
        let mapper = PrincipalMapper::parse(&config.principal_mapping_rules)
            .map_err(|errs| AuthSetupError::Rules(errs.join("; ")))?;
        let oauth = match &config.oauthbearer {
            None => None,
            Some(o) => Some(
                OAuthValidator::new(OAuthConfig {
                    jwks_file: o.jwks_file.clone(),
                    jwks_url: o.jwks_url.clone(),
                    jwks_ca_file: o.jwks_ca_file.clone(),
                    issuer: o.issuer.clone(),
                    audience: o.audience.clone(),
                    clock_skew: o.clock_skew,
                    principal_claim: o.principal_claim.clone(),
                    scope_claim: o.scope_claim.clone(),
                    required_scopes: o.required_scopes.clone(),
                    jwks_min_refresh_interval: o.jwks_min_refresh_interval,
                    jwks_refresh_interval: o.jwks_refresh_interval,
                })
                .await
                .map_err(|e| AuthSetupError::OAuth(e.to_string()))?,
            ),
        };
        let kerberos = match &config.kerberos {
            None => None,
            Some(k) => Some(Arc::new(
                KerberosAcceptor::new(k).map_err(AuthSetupError::Kerberos)?,
            )),
        };
        let lockout = Arc::new(Lockout::new(LockoutConfig {
            max_failures: config.lockout_max_failures,
            max_failures_per_ip: config.lockout_max_failures_per_ip,
            window: config.lockout_window,
            duration: config.lockout_duration,
            max_entries: 100_000,
        }));
        Ok(Arc::new(Authenticator {
            credentials_file: config.credentials_file.clone(),
            credentials: RwLock::new(Arc::new(credentials)),
            decoy: RwLock::new(Arc::new(decoy)),
            oauth,
            kerberos,
            mapper,
            lockout,
            config: config.clone(),
        }))
    }

    /// Starts an exchange for a client at `ip`; the credential store in force now is used for all
    /// of it.
    pub fn start(&self, mechanism: Mechanism, ip: IpAddr) -> Option<Exchange> {
        let store = read(&self.credentials).clone();
        let decoy = read(&self.decoy).clone();
        Some(match mechanism {
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                Exchange::Scram(ScramExchange::new(mechanism, store, decoy))
            }
            Mechanism::Plain => {
                let lockout = self.lockout.clone();
                Exchange::Plain(PlainExchange::new(store, decoy).with_lockout(Arc::new(
                    move |user: &str| lockout.is_locked(Some(user), ip, Instant::now()),
                )))
            }
            Mechanism::OAuthBearer => Exchange::OAuth(OAuthExchange::new(self.oauth.clone()?)),
            Mechanism::Gssapi => Exchange::Gssapi(self.kerberos.as_ref()?.exchange()),
        })
    }

    /// The principal a client certificate maps to.
    pub fn principal_for_certificate(&self, der: &[u8]) -> Result<Principal, String> {
        self.mapper.map_certificate(der).map_err(|e| e.to_string())
    }

    pub fn is_locked_out(&self, user: Option<&str>, ip: IpAddr) -> bool {
        self.lockout.is_locked(user, ip, Instant::now())
    }

    pub fn record_failure(&self, user: Option<&str>, ip: IpAddr) {
        self.lockout.record_failure(user, ip, Instant::now());
    }

    pub fn record_success(&self, user: &str, ip: IpAddr) {
        self.lockout.record_success(user, ip, Instant::now());
    }

    /// Reloads the credential file; a broken file keeps the previous store in force.
    /// Returns the new store's fingerprint, or `None` when there is no file or it did not change.
    pub fn reload_credentials(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.credentials_file else {
            return Ok(None);
        };
        let store = CredentialStore::load(path).map_err(|e| e.to_string())?;
        let fingerprint = store.fingerprint();
        if read(&self.credentials).fingerprint() == fingerprint {
            return Ok(None);
        }
        // Same secret, new shape: an unknown user's decoy salt must not change at a reload while real
        // users' salts stay put, or a prober watching across the reload could tell them apart.
        let decoy = read(&self.decoy).reshaped_for(&store);
        *write(&self.decoy) = Arc::new(decoy);
        *write(&self.credentials) = Arc::new(store);
        Ok(Some(fingerprint))
    }

    /// Reloads the JWKS file; a broken file keeps the previous keys.
    pub fn reload_jwks(&self) -> Result<Option<String>, String> {
        match &self.oauth {
            None => Ok(None),
            Some(v) => {
                let before = v.fingerprint();
                let after = v.reload_file().map_err(|e| e.to_string())?;
                Ok((after != before).then_some(after))
            }
        }
    }

    pub fn credentials_file(&self) -> Option<&PathBuf> {
        self.credentials_file.as_ref()
    }

    pub fn jwks_file(&self) -> Option<&PathBuf> {
        self.config.oauthbearer.as_ref()?.jwks_file.as_ref()
    }
}
