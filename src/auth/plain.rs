//! SASL PLAIN server (RFC 4616) checked against the SCRAM credential store: the password is run
//! through the user's stored salt and iteration count and the resulting StoredKey compared in
//! constant time, so no cleartext password is ever stored.
//!
//! Parsing follows Kafka's `PlainSaslServer`: exactly three NUL-separated UTF-8 fields, no
//! SASLprep (the store's keys are derived without it, as Kafka's are). rsasl's PLAIN server is
//! not used because it applies SASLprep to the name and password, so a password that SASLprep
//! changes (compatibility characters, non-ASCII spaces, tabs) would work over SCRAM and fail
//! here, and a name like `ａｌｉｃｅ` would log in as `alice`.
//!
//! PLAIN sends the password in the clear: the session layer must only offer it over TLS (see
//! [`FailureReason::PlainOverPlaintext`]).
//!
//! The one PBKDF2 a PLAIN login costs runs on the gateway's low-priority hashing threads
//! ([`crate::sync::on_hashing_thread`]), at most [`crate::sync::hashing_slots`] at a time, never on
//! the runtime threads that serve authenticated clients; and a name or address under lockout is
//! refused before anything is hashed.

use std::sync::Arc;

use super::credentials::{CredentialStore, Decoy, ScramCredential};
use super::scram::MAX_MESSAGE_LEN;
use super::{FailureReason, Mechanism, Principal, Step};

/// Whether logins as a name are refused right now (the lockout, for the client's address).
pub type LockedOut = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// One PLAIN exchange: a single client message, then `Success` or `Failure`.
pub struct PlainExchange {
    store: Arc<CredentialStore>,
    decoy: Arc<Decoy>,
    locked_out: Option<LockedOut>,
    done: bool,
}

impl PlainExchange {
    pub fn new(store: Arc<CredentialStore>, decoy: Arc<Decoy>) -> Self {
        PlainExchange {
            store,
            decoy,
            locked_out: None,
            done: false,
        }
    }

    /// Refuses names for which `check` says yes before hashing their password.
    pub fn with_lockout(mut self, check: LockedOut) -> Self {
        self.locked_out = Some(check);
        self
    }

    /// Checks `[authzid] NUL authcid NUL passwd`. Any call after the first fails.
    pub async fn step(&mut self, input: &[u8]) -> Step {
        if std::mem::replace(&mut self.done, true) {
            return failure(malformed("the PLAIN exchange is already finished"), None);
        }
        if input.len() > MAX_MESSAGE_LEN {
            return failure(
                malformed(format!(
                    "message of {} bytes exceeds {MAX_MESSAGE_LEN}",
                    input.len()
                )),
                None,
            );
        }
        let fields: Vec<&[u8]> = input.split(|&b| b == 0).collect();
        let [authzid, authcid, password] = fields[..] else {
            return failure(malformed("expected authzid NUL authcid NUL password"), None);
        };
        let (Ok(authzid), Ok(authcid), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(authcid),
            std::str::from_utf8(password),
        ) else {
            return failure(malformed("not UTF-8"), None);
        };
        if authcid.is_empty() {
            return failure(malformed("empty authentication id"), None);
        }
        if authcid.chars().any(char::is_control) {
            // No such user can exist, and the name must not reach audit records.
            return failure(
                malformed("authentication id contains control characters"),
                None,
            );
        }
        let attempted = Some(authcid.to_string());
        if password.is_empty() {
            return failure(malformed("empty password"), attempted);
        }
        if !authzid.is_empty() && authzid != authcid {
            return failure(FailureReason::AuthzidMismatch, attempted);
        }

        if self
            .locked_out
            .as_ref()
            .is_some_and(|locked| locked(authcid))
        {
            return failure(FailureReason::LockedOut, attempted);
        }
        let Some((known, credential)) = self.credential(authcid) else {
            return failure(malformed("no credential to check against"), attempted);
        };
        // One PBKDF2 whether the user exists or not, so timing tells nothing; off the runtime.
        let Ok(_slot) = crate::sync::hashing_slots().acquire().await else {
            return failure(malformed("the gateway is shutting down"), attempted);
        };
        let password = password.to_string();
        let password_ok =
            crate::sync::on_hashing_thread(move || credential.verify_password(&password))
                .await
                .unwrap_or(false);
        if !known {
            failure(FailureReason::UnknownUser, attempted)
        } else if !password_ok {
            failure(FailureReason::BadCredentials, attempted)
        } else {
            Step::Success {
                response: Vec::new(),
                principal: Principal::user(authcid),
                expires: None,
            }
        }
    }

    /// The user's SCRAM-SHA-512 credential if any, else SCRAM-SHA-256; for unknown users the
    /// decoy for the mechanism a real user would most likely be checked with. (The PBKDF2 cost
    /// still follows the credential: a user whose iteration count or hash differs from the
    /// decoy's takes measurably longer or shorter. SCRAM publishes the count anyway.)
    fn credential(&self, user: &str) -> Option<(bool, ScramCredential)> {
        let mech = if self.store.has_mechanism(Mechanism::ScramSha512) {
            Mechanism::ScramSha512
        } else {
            Mechanism::ScramSha256
        };
        // Derived for every login, known user or not, so the lookup costs the same either way.
        let decoy = self.decoy.credential(user, mech)?;
        let stored = self
            .store
            .get(user, Mechanism::ScramSha512)
            .or_else(|| self.store.get(user, Mechanism::ScramSha256));
        Some(match stored {
            Some(credential) => (true, credential.clone()),
            None => (false, decoy),
        })
    }
}

fn failure(reason: FailureReason, attempted: Option<String>) -> Step {
    Step::Failure { reason, attempted }
}

fn malformed(message: impl Into<String>) -> FailureReason {
    FailureReason::Malformed(message.into())
}

#[cfg(test)]
#[path = "plain_tests.rs"]
mod tests;
