//! SCRAM-SHA-256 / SCRAM-SHA-512 server (RFC 5802, RFC 7677) as Kafka speaks it: gs2 header `n,`
//! only (no channel binding), optional `a=` equal to the user name, `key=value` extensions
//! (`tokenauth=true` refused: no delegation tokens here), constant-time proof check.
//!
//! The server math is done here with aws-lc-rs rather than by rsasl's `ScramServer`, because
//! that server cannot meet this module's requirements (details in the tests' rsasl section):
//! it panics on some malformed client messages (it slices attributes without length checks),
//! reports a nonce mismatch and a wrong proof alike, compares StoredKey with `==`, rebuilds the
//! AuthMessage without the client's extensions (so clients that send any fail), hands the
//! still-escaped user name (`al=2Cice`) to the lookup, answers unknown users with a fresh random
//! salt and its own iteration count (which reveals that they are unknown), and its server nonce
//! cannot be fixed to check the RFC 7677 vector. rsasl's SCRAM client is used by the tests as an
//! independent implementation to prove interoperability, and rsasl's server as an oracle for the
//! stored-credential format.
//!
//! Unknown users get the same exchange as real ones, with a [`Decoy`] credential: same number
//! of rounds, a server-first of the same shape (and the same salt on every probe), the same work
//! on client-final; only the final verdict differs, and that verdict never reaches the wire.

use std::sync::Arc;

use aws_lc_rs::{constant_time, rand};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::credentials::{CredentialStore, Decoy, ScramCredential, ScramHash};
use super::{FailureReason, Mechanism, Principal, Step};

/// Longest client message accepted. Real ones are a few hundred bytes; the cap keeps hostile
/// ones from costing memory or hashing time.
pub const MAX_MESSAGE_LEN: usize = 8 * 1024;

/// Random bytes in the server nonce (base64-encoded on the wire: 32 characters).
const SERVER_NONCE_BYTES: usize = 24;

/// One SCRAM exchange: feed it the client's SaslAuthenticate tokens in order.
pub struct ScramExchange {
    mech: Mechanism,
    store: Arc<CredentialStore>,
    decoy: Arc<Decoy>,
    state: State,
    /// The unescaped user name once known, for `Failure::attempted`.
    user: Option<String>,
    /// Test-only replacement for the random server nonce (RFC 7677 vector).
    #[cfg(test)]
    fixed_server_nonce: Option<String>,
}

enum State {
    WaitingClientFirst,
    WaitingClientFinal(Box<Pending>),
    Done,
}

/// What client-final is checked against.
struct Pending {
    hash: ScramHash,
    /// False when `credential` is the decoy.
    known: bool,
    credential: ScramCredential,
    /// e.g. `n,,` or `n,a=alice,`: what `c=` must decode to.
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    /// Client nonce followed by server nonce.
    nonce: String,
}

impl ScramExchange {
    /// `mech` must be SCRAM-SHA-256 or SCRAM-SHA-512; anything else fails on the first step.
    pub fn new(mech: Mechanism, store: Arc<CredentialStore>, decoy: Arc<Decoy>) -> Self {
        ScramExchange {
            mech,
            store,
            decoy,
            state: State::WaitingClientFirst,
            user: None,
            #[cfg(test)]
            fixed_server_nonce: None,
        }
    }

    /// Uses `nonce` instead of a random server nonce. For known-answer tests only.
    #[cfg(test)]
    pub(crate) fn with_server_nonce(mut self, nonce: &str) -> Self {
        self.fixed_server_nonce = Some(nonce.to_string());
        self
    }

    /// Processes one client message. After `Success` or `Failure` every further call fails.
    pub fn step(&mut self, input: &[u8]) -> Step {
        let state = std::mem::replace(&mut self.state, State::Done);
        let result = match state {
            State::Done => Err(malformed("the SCRAM exchange is already finished")),
            _ if input.len() > MAX_MESSAGE_LEN => Err(malformed(format!(
                "message of {} bytes exceeds {MAX_MESSAGE_LEN}",
                input.len()
            ))),
            State::WaitingClientFirst => self.client_first(input),
            State::WaitingClientFinal(pending) => self.client_final(&pending, input),
        };
        match result {
            Ok(step) => step,
            Err(reason) => Step::Failure {
                reason,
                attempted: self.user.clone(),
            },
        }
    }

    fn client_first(&mut self, input: &[u8]) -> Result<Step, FailureReason> {
        let hash = ScramHash::of(self.mech)
            .ok_or_else(|| malformed(format!("{} is not a SCRAM mechanism", self.mech)))?;
        let text = std::str::from_utf8(input).map_err(|_| malformed("not UTF-8"))?;
        let first = ClientFirst::parse(text)?;
        self.user = Some(first.user.clone());

        // Kafka checks this on client-first too. It reveals nothing about the user.
        if first.authzid.as_ref().is_some_and(|a| *a != first.user) {
            return Err(FailureReason::AuthzidMismatch);
        }
        if first.token_auth {
            return Err(malformed(
                "delegation-token authentication (tokenauth=true) is not supported",
            ));
        }

        // The decoy is derived for every login, known or not, so the lookup costs the same
        // either way (a few HMACs would otherwise time unknown users apart).
        let decoy = self
            .decoy
            .credential(&first.user, self.mech)
            .ok_or_else(|| malformed("no decoy for this mechanism"))?;
        let (known, credential) = match self.store.get(&first.user, self.mech) {
            Some(credential) => (true, credential.clone()),
            None => (false, decoy),
        };

        let server_nonce = self.server_nonce();
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(credential.salt()),
            credential.iterations()
        );
        let reply = server_first.clone().into_bytes();
        self.state = State::WaitingClientFinal(Box::new(Pending {
            hash,
            known,
            credential,
            gs2_header: first.gs2_header.to_string(),
            client_first_bare: first.bare.to_string(),
            server_first,
            nonce,
        }));
        Ok(Step::Continue(reply))
    }

    fn client_final(&mut self, p: &Pending, input: &[u8]) -> Result<Step, FailureReason> {
        let text = std::str::from_utf8(input).map_err(|_| malformed("not UTF-8"))?;
        // client-final = channel-binding "," nonce ["," extensions] "," proof
        let (without_proof, proof) = text
            .rsplit_once(',')
            .ok_or_else(|| malformed("client-final has no proof"))?;
        let proof = proof
            .strip_prefix("p=")
            .ok_or_else(|| malformed("client-final does not end with p="))?;

        let mut attributes = without_proof.split(',');
        let binding = attributes
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(|| malformed("client-final does not start with c="))?;
        let binding = B64
            .decode(binding)
            .map_err(|_| malformed("channel binding is not base64"))?;
        if binding != p.gs2_header.as_bytes() {
            return Err(malformed("channel binding does not repeat the gs2 header"));
        }
        let nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| malformed("client-final has no r= after c="))?;
        for extension in attributes {
            parse_extension(extension)?;
        }
        // The nonce is public (it was just sent in the clear), so `!=` needs no constant time.
        if nonce != p.nonce {
            return Err(FailureReason::NonceMismatch);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| malformed("proof is not base64"))?;
        if proof.len() != p.hash.output_len() {
            return Err(malformed(format!(
                "proof is {} bytes, {} needs {}",
                proof.len(),
                self.mech,
                p.hash.output_len()
            )));
        }

        // Identical work for real and decoy credentials, so timing tells nothing.
        let auth_message = format!("{},{},{without_proof}", p.client_first_bare, p.server_first);
        let client_signature = p
            .hash
            .hmac(p.credential.stored_key(), auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let proof_ok = constant_time::verify_slices_are_equal(
            &p.hash.hash(&client_key),
            p.credential.stored_key(),
        )
        .is_ok();
        let server_signature = p
            .hash
            .hmac(p.credential.server_key(), auth_message.as_bytes());

        if !p.known {
            return Err(FailureReason::UnknownUser);
        }
        if !proof_ok {
            return Err(FailureReason::BadCredentials);
        }
        let user = self.user.clone().unwrap_or_default();
        Ok(Step::Success {
            response: format!("v={}", B64.encode(server_signature)).into_bytes(),
            principal: Principal::user(user),
            expires: None,
        })
    }

    fn server_nonce(&self) -> String {
        #[cfg(test)]
        if let Some(nonce) = &self.fixed_server_nonce {
            return nonce.clone();
        }
        let mut bytes = [0u8; SERVER_NONCE_BYTES];
        // AWS-LC's RAND_bytes only fails when the OS entropy source is broken; no safe nonce
        // (and no safe session) can be made then.
        rand::fill(&mut bytes).expect("system random number generator failed");
        B64.encode(bytes)
    }
}

/// A parsed client-first message. Borrowed parts point into the original text, because the
/// AuthMessage must use the bytes exactly as the client sent them.
struct ClientFirst<'a> {
    /// `n,,` or `n,a=...,`
    gs2_header: &'a str,
    /// Unescaped authzid, if any.
    authzid: Option<String>,
    /// Unescaped user name.
    user: String,
    nonce: &'a str,
    /// client-first-message-bare, verbatim (with any extensions).
    bare: &'a str,
    /// The client asked for delegation-token authentication.
    token_auth: bool,
}

impl<'a> ClientFirst<'a> {
    /// `gs2-header client-first-message-bare` where
    /// `gs2-header = "n," ["a=" saslname] ","` and
    /// `client-first-message-bare = "n=" saslname ",r=" c-nonce ["," extensions]`.
    fn parse(text: &'a str) -> Result<ClientFirst<'a>, FailureReason> {
        let after_flag = match text.strip_prefix("n,") {
            Some(rest) => rest,
            None if text.starts_with("y,") || text.starts_with("p=") => {
                return Err(malformed(
                    "channel binding is not supported (gs2 flag must be n)",
                ))
            }
            None => return Err(malformed("client-first does not start with a gs2 header")),
        };
        let (authzid, bare) = after_flag
            .split_once(',')
            .ok_or_else(|| malformed("gs2 header is not terminated"))?;
        let gs2_header = &text[..text.len() - bare.len()];
        let authzid = if authzid.is_empty() {
            None
        } else {
            let name = authzid
                .strip_prefix("a=")
                .ok_or_else(|| malformed("authzid does not start with a="))?;
            Some(unescape_saslname(name)?)
        };

        let mut attributes = bare.split(',');
        let user = attributes.next().unwrap_or_default();
        if user.starts_with("m=") {
            return Err(malformed("mandatory extensions (m=) are not supported"));
        }
        let user = user
            .strip_prefix("n=")
            .ok_or_else(|| malformed("client-first has no n= user name"))?;
        let user = unescape_saslname(user)?;
        let nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| malformed("client-first has no r= nonce"))?;
        // printable = %x21-2B / %x2D-7E (`,` already excluded by the split)
        if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(malformed("client nonce is empty or not printable ASCII"));
        }
        let mut token_auth = false;
        for extension in attributes {
            let (key, value) = parse_extension(extension)?;
            // Kafka: `tokenauth` is parsed with Boolean.parseBoolean (case-insensitive "true").
            if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
                token_auth = true;
            }
            // Other extensions are ignored, as Kafka does.
        }
        Ok(ClientFirst {
            gs2_header,
            authzid,
            user,
            nonce,
            bare,
            token_auth,
        })
    }
}

/// `key=value` with an alphanumeric key (Kafka's extension syntax; RFC 5802's attr-val is the
/// one-letter case).
fn parse_extension(extension: &str) -> Result<(&str, &str), FailureReason> {
    match extension.split_once('=') {
        Some((key, value)) if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Ok((key, value))
        }
        _ => Err(malformed("extension is not key=value")),
    }
}

/// RFC 5802 saslname: `=2C` is `,` and `=3D` is `=`; any other `=` is invalid. Names that are
/// empty or contain control characters are refused (no such user can exist in the store, and they
/// would end up in audit records).
pub(crate) fn unescape_saslname(escaped: &str) -> Result<String, FailureReason> {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix("2C") {
            out.push(',');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("3D") {
            out.push('=');
            rest = tail;
        } else {
            return Err(malformed("invalid = escape in name (only =2C and =3D)"));
        }
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(malformed("empty name"));
    }
    if out.chars().any(char::is_control) {
        return Err(malformed("name contains control characters"));
    }
    Ok(out)
}

fn malformed(message: impl Into<String>) -> FailureReason {
    FailureReason::Malformed(message.into())
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
