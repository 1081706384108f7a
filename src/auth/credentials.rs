//! SCRAM credential store: the TOML file of salted keys that SCRAM and PLAIN logins are checked
//! against, the RFC 5802 key derivation, atomic updates of that file, and the decoy credentials
//! that make unknown users indistinguishable from real ones.
//!
//! The file never holds a password, only what RFC 5802 calls the stored credential:
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! mechanism = "SCRAM-SHA-256"   # or SCRAM-SHA-512
//! iterations = 8192             # 4096..=16384, as Kafka
//! salt = "<base64>"
//! stored_key = "<base64>"       # 32 bytes for SHA-256, 64 for SHA-512
//! server_key = "<base64>"
//! ```
//!
//! Loading validates everything and reports every problem at once, each with the file, the entry
//! index, the user name and the line. `StoredKey`/`ServerKey` are not passwords but are still
//! secrets (with them and one observed exchange an attacker can log in, or impersonate the
//! gateway), so `Debug` never prints them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use aws_lc_rs::{constant_time, digest, hmac, pbkdf2, rand};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use toml::Spanned;

use super::Mechanism;

/// Iteration counts accepted in the file and by [`add_user`]: Kafka's range for both SCRAM
/// mechanisms. Fewer iterations make a stolen file cheap to brute-force (scenario 36).
pub const ITERATIONS: RangeInclusive<u32> = 4096..=16384;

/// Iteration count used when nothing else is known (the decoy default, the CLI default).
pub const DEFAULT_ITERATIONS: u32 = 8192;

/// Length of the salts [`add_user`] generates.
pub const SALT_LEN: usize = 32;

/// Salt lengths accepted in the file. Kafka's own salts are ~25 bytes, RFC 7677's example 16.
pub const SALT_LEN_RANGE: RangeInclusive<usize> = 16..=128;

/// The keys an entry may have, for the "unknown key" message.
const KEYS: [&str; 6] = [
    "name",
    "mechanism",
    "iterations",
    "salt",
    "stored_key",
    "server_key",
];

const DEFAULT_HEADER: &str = "\
# kafka-gateway SCRAM credentials (SCRAM-SHA-256 / SCRAM-SHA-512).
# Written by kafka-gateway's `users` command. Each entry holds a salt and the RFC 5802
# StoredKey/ServerKey derived from the password, never the password itself. Those keys are still
# secrets: keep this file readable by the gateway only (mode 0600).";

/// The hash function behind a SCRAM mechanism, with the aws-lc-rs primitives SCRAM needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    /// `None` for mechanisms that are not SCRAM.
    pub(crate) fn of(mech: Mechanism) -> Option<ScramHash> {
        match mech {
            Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            Mechanism::ScramSha512 => Some(ScramHash::Sha512),
            Mechanism::OAuthBearer | Mechanism::Plain | Mechanism::Gssapi => None,
        }
    }

    pub(crate) fn mechanism(self) -> Mechanism {
        match self {
            ScramHash::Sha256 => Mechanism::ScramSha256,
            ScramHash::Sha512 => Mechanism::ScramSha512,
        }
    }

    /// Output length of the hash (and of the HMAC): the length of StoredKey, ServerKey and proofs.
    pub(crate) fn output_len(self) -> usize {
        match self {
            ScramHash::Sha256 => 32,
            ScramHash::Sha512 => 64,
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha256 => hmac::HMAC_SHA256,
            ScramHash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2_algorithm(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramHash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// `HMAC(key, data)`.
    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(self.hmac_algorithm(), key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    /// `H(data)`.
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            ScramHash::Sha256 => &digest::SHA256,
            ScramHash::Sha512 => &digest::SHA512,
        };
        digest::digest(algorithm, data).as_ref().to_vec()
    }

    /// RFC 5802 `Hi(password, salt, i)`: PBKDF2 with this hash's HMAC, output one hash long.
    pub(crate) fn salted_password(
        self,
        password: &[u8],
        salt: &[u8],
        iterations: NonZeroU32,
    ) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        pbkdf2::derive(
            self.pbkdf2_algorithm(),
            iterations,
            salt,
            password,
            &mut out,
        );
        out
    }
}

/// The stored SCRAM credential of one user for one mechanism (RFC 5802 section 3).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    mechanism: Mechanism,
    iterations: u32,
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl ScramCredential {
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub fn stored_key(&self) -> &[u8] {
        &self.stored_key
    }

    /// `HMAC(SaltedPassword, "Server Key")`.
    pub fn server_key(&self) -> &[u8] {
        &self.server_key
    }

    /// Checks a cleartext password (SASL PLAIN) by deriving StoredKey again with this
    /// credential's salt and iteration count and comparing in constant time. Costs one PBKDF2,
    /// the same whether or not the password is right.
    pub fn verify_password(&self, password: &str) -> bool {
        match scram_credential(password, self.mechanism, self.iterations, &self.salt) {
            Ok(derived) => {
                constant_time::verify_slices_are_equal(&derived.stored_key, &self.stored_key)
                    .is_ok()
            }
            Err(_) => false,
        }
    }
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .finish()
    }
}

/// Derives the stored credential for `password` (RFC 5802 section 3):
///
/// ```text
/// SaltedPassword = Hi(password, salt, i)          -- PBKDF2-HMAC-SHA-256/512
/// ClientKey      = HMAC(SaltedPassword, "Client Key")
/// StoredKey      = H(ClientKey)
/// ServerKey      = HMAC(SaltedPassword, "Server Key")
/// ```
///
/// **No SASLprep.** The password's UTF-8 bytes are used as they are, exactly as Kafka's
/// `ScramFormatter` does (and Kafka's Java client, and rsasl's SCRAM client), so credentials made
/// here interoperate with Kafka clients. ASCII passwords are unaffected either way; a non-ASCII
/// password must reach us in the same Unicode normalization form it was registered in.
///
/// Any non-zero iteration count is accepted here (the RFC test vectors use small ones);
/// [`add_user`] and the file loader enforce [`ITERATIONS`].
pub fn scram_credential(
    password: &str,
    mech: Mechanism,
    iterations: u32,
    salt: &[u8],
) -> Result<ScramCredential, CredentialError> {
    let hash = ScramHash::of(mech).ok_or(CredentialError::NotScram(mech))?;
    let rounds = NonZeroU32::new(iterations).ok_or(CredentialError::InvalidIterations(0))?;
    let salted = hash.salted_password(password.as_bytes(), salt, rounds);
    let client_key = hash.hmac(&salted, b"Client Key");
    Ok(ScramCredential {
        mechanism: mech,
        iterations,
        salt: salt.to_vec(),
        stored_key: hash.hash(&client_key),
        server_key: hash.hmac(&salted, b"Server Key"),
    })
}

/// One problem found while loading a credential file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialProblem {
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// 0-based index of the `[[user]]` entry (`user[i]`), when the problem is inside one.
    pub entry: Option<usize>,
    /// The entry's `name`, when it has a readable one.
    pub user: Option<String>,
    pub message: String,
}

impl fmt::Display for CredentialProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(entry) = self.entry {
            write!(f, "user[{entry}]")?;
            if let Some(user) = &self.user {
                // Debug-quoted so a hostile name cannot forge log lines.
                write!(f, " (name {user:?})")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Errors of the credential store.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read credential file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write credential file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is unusable; `problems` lists everything wrong with it, not just the first thing.
    #[error("{}", describe_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<CredentialProblem>,
    },
    #[error("invalid user name {name:?}: {reason}")]
    InvalidUserName { name: String, reason: &'static str },
    #[error(
        "iteration count {0} is outside {min}..={max}",
        min = ITERATIONS.start(),
        max = ITERATIONS.end()
    )]
    InvalidIterations(u32),
    #[error("{0} is not a SCRAM mechanism")]
    NotScram(Mechanism),
    #[error("no SCRAM mechanism given")]
    NoMechanism,
}

fn describe_problems(path: &Path, problems: &[CredentialProblem]) -> String {
    let mut out = format!(
        "credential file {} has {} problem(s):",
        path.display(),
        problems.len()
    );
    for problem in problems {
        out.push_str(&format!("\n  {}: {problem}", path.display()));
    }
    out
}

/// What [`CredentialStore::users`] tells about a user: no key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub name: String,
    /// Each mechanism the user has a credential for, with its iteration count.
    pub mechanisms: Vec<(Mechanism, u32)>,
}

/// The loaded credential file: immutable, shared by all exchanges (`Arc<CredentialStore>`);
/// a reload builds a new one.
pub struct CredentialStore {
    users: HashMap<String, Vec<ScramCredential>>,
    entries: usize,
    /// Mechanisms at least one user has, so [`CredentialStore::has_mechanism`] is O(1).
    mechanisms: Vec<Mechanism>,
    fingerprint: String,
}

impl CredentialStore {
    /// A store without users: every login is an unknown user.
    pub fn empty() -> CredentialStore {
        CredentialStore {
            users: HashMap::new(),
            entries: 0,
            mechanisms: Vec::new(),
            fingerprint: hex(digest::digest(&digest::SHA256, b"").as_ref()),
        }
    }

    /// Reads and validates a credential file. On error, every problem found is reported.
    pub fn load(path: impl AsRef<Path>) -> Result<CredentialStore, CredentialError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|source| CredentialError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        CredentialStore::from_bytes(path, &bytes)
    }

    /// Validates credential-file contents; `path` is only used in messages.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<CredentialStore, CredentialError> {
        let (_, entries) = parse_file(path, bytes)?;
        let mut store = CredentialStore::empty();
        store.fingerprint = hex(digest::digest(&digest::SHA256, bytes).as_ref());
        store.entries = entries.len();
        for entry in entries {
            if !store.mechanisms.contains(&entry.credential.mechanism) {
                store.mechanisms.push(entry.credential.mechanism);
            }
            store
                .users
                .entry(entry.name)
                .or_default()
                .push(entry.credential);
        }
        Ok(store)
    }

    /// The credential of `user` for `mech`; `None` for unknown users, users without a credential
    /// for that mechanism, and non-SCRAM mechanisms. `user` is the unescaped name.
    pub fn get(&self, user: &str, mech: Mechanism) -> Option<&ScramCredential> {
        self.users
            .get(user)?
            .iter()
            .find(|credential| credential.mechanism == mech)
    }

    /// Every user with the mechanisms and iteration counts they have, sorted by name.
    pub fn users(&self) -> Vec<UserSummary> {
        let mut users: Vec<UserSummary> = self
            .users
            .iter()
            .map(|(name, credentials)| {
                let mut mechanisms: Vec<(Mechanism, u32)> = credentials
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect();
                mechanisms.sort();
                UserSummary {
                    name: name.clone(),
                    mechanisms,
                }
            })
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users
    }

    /// Number of `[[user]]` entries (one per user and mechanism).
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Whether any user has a credential for `mech`.
    pub fn has_mechanism(&self, mech: Mechanism) -> bool {
        self.mechanisms.contains(&mech)
    }

    /// Hex SHA-256 of the bytes the store was loaded from (of nothing for [`CredentialStore::empty`]),
    /// for audit records of which credential file was in force.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The iteration count and salt length a decoy should have to blend in: the most common ones
    /// in the store (ties go to the larger value), else [`DEFAULT_ITERATIONS`] and [`SALT_LEN`].
    pub fn decoy_shape(&self) -> (u32, usize) {
        let credentials = || self.users.values().flatten();
        let iterations = most_common(credentials().map(|c| c.iterations));
        let salt_len = most_common(credentials().map(|c| c.salt.len()));
        (
            iterations.unwrap_or(DEFAULT_ITERATIONS),
            salt_len.unwrap_or(SALT_LEN),
        )
    }
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("users", &self.users.len())
            .field("entries", &self.entries)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

fn most_common<T: Ord + Copy>(values: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    // `max_by_key` keeps the last maximum, i.e. the largest value among equally common ones.
    counts
        .into_iter()
        .max_by_key(|&(_, count)| count)
        .map(|(value, _)| value)
}

/// Stand-in credentials for users the store does not know (scenario 35).
///
/// A SCRAM server must answer client-first with a salt and iteration count before it can know
/// whether the password is right; if unknown users got a fresh random salt (rsasl's behaviour)
/// or a different salt length or iteration count, probing would reveal which users exist. The
/// decoy derives a salt and keys from a per-process secret, so every probe of the same
/// (user, mechanism) sees the same salt, shaped like the real users' salts.
pub struct Decoy {
    key: hmac::Key,
    iterations: u32,
    salt_len: usize,
}

impl Decoy {
    /// A decoy with a fresh random secret. Values outside [`ITERATIONS`] / [`SALT_LEN_RANGE`] are
    /// clamped into them (the store cannot hold anything else, so neither should the decoy).
    pub fn new(iterations: u32, salt_len: usize) -> Decoy {
        let mut secret = [0u8; 32];
        // AWS-LC's RAND_bytes only fails when the OS entropy source is broken, and then nothing
        // secure (no salt, no nonce) can be produced anyway.
        rand::fill(&mut secret).expect("system random number generator failed");
        Decoy {
            key: hmac::Key::new(hmac::HMAC_SHA512, &secret),
            iterations: iterations.clamp(*ITERATIONS.start(), *ITERATIONS.end()),
            salt_len: salt_len.clamp(*SALT_LEN_RANGE.start(), *SALT_LEN_RANGE.end()),
        }
    }

    /// A decoy shaped like the store's real credentials ([`CredentialStore::decoy_shape`]).
    pub fn for_store(store: &CredentialStore) -> Decoy {
        let (iterations, salt_len) = store.decoy_shape();
        Decoy::new(iterations, salt_len)
    }

    /// The same decoy (same secret) reshaped for a reloaded store. Use this on reload instead of
    /// a new `Decoy`: with a fresh secret every unknown user's salt would change at the reload
    /// while real users' salts stay put, telling a prober who watches across it which is which.
    pub fn reshaped_for(&self, store: &CredentialStore) -> Decoy {
        let (iterations, salt_len) = store.decoy_shape();
        Decoy {
            key: self.key.clone(),
            iterations: iterations.clamp(*ITERATIONS.start(), *ITERATIONS.end()),
            salt_len: salt_len.clamp(*SALT_LEN_RANGE.start(), *SALT_LEN_RANGE.end()),
        }
    }

    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    pub fn salt_len(&self) -> usize {
        self.salt_len
    }

    /// The decoy credential of `user` for `mech`: the same for the life of this `Decoy`, random
    /// looking, and matching no password anyone knows. `None` if `mech` is not SCRAM.
    pub fn credential(&self, user: &str, mech: Mechanism) -> Option<ScramCredential> {
        let hash = ScramHash::of(mech)?;
        Some(ScramCredential {
            mechanism: mech,
            iterations: self.iterations,
            salt: self.expand(b"salt", mech, user, self.salt_len),
            stored_key: self.expand(b"stored_key", mech, user, hash.output_len()),
            server_key: self.expand(b"server_key", mech, user, hash.output_len()),
        })
    }

    /// `len` bytes of HMAC-SHA-512(secret, label || counter || mechanism || user), counter mode.
    /// The user name comes last, so distinct inputs cannot collide.
    fn expand(&self, label: &[u8], mech: Mechanism, user: &str, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 64);
        let mut counter: u32 = 0;
        while out.len() < len {
            let mut ctx = hmac::Context::with_key(&self.key);
            ctx.update(label);
            ctx.update(&[0]);
            ctx.update(&counter.to_be_bytes());
            ctx.update(mech.name().as_bytes());
            ctx.update(&[0]);
            ctx.update(user.as_bytes());
            out.extend_from_slice(ctx.sign().as_ref());
            counter += 1;
        }
        out.truncate(len);
        out
    }
}

impl fmt::Debug for Decoy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoy")
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt_len)
            .finish_non_exhaustive()
    }
}

/// Refuses names a credential file must not hold: empty ones and ones with control characters
/// (which would corrupt logs and audit records, and no client can type).
pub fn validate_user_name(name: &str) -> Result<(), CredentialError> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name.chars().any(char::is_control) {
        "the name contains control characters"
    } else {
        return Ok(());
    };
    Err(CredentialError::InvalidUserName {
        name: name.to_string(),
        reason,
    })
}

/// Adds or replaces `user`'s credentials for each of `mechs` (fresh random 32-byte salt each) in
/// the file at `path`, creating it if missing. Entries of other users and mechanisms are kept,
/// as is the file's leading comment. The file is rewritten atomically (see [`write_atomic`]).
/// An existing file that does not load is left alone and its problems returned.
pub fn add_user(
    path: impl AsRef<Path>,
    user: &str,
    password: &str,
    mechs: &[Mechanism],
    iterations: u32,
) -> Result<(), CredentialError> {
    let path = path.as_ref();
    validate_user_name(user)?;
    if !ITERATIONS.contains(&iterations) {
        return Err(CredentialError::InvalidIterations(iterations));
    }
    if mechs.is_empty() {
        return Err(CredentialError::NoMechanism);
    }
    if let Some(&mech) = mechs.iter().find(|&&m| ScramHash::of(m).is_none()) {
        return Err(CredentialError::NotScram(mech));
    }

    let (header, mut entries) = read_for_update(path)?.unwrap_or_else(|| (None, Vec::new()));
    for &mech in mechs {
        let mut salt = [0u8; SALT_LEN];
        // See `Decoy::new` for why a failing RNG is not recoverable.
        rand::fill(&mut salt).expect("system random number generator failed");
        let credential = scram_credential(password, mech, iterations, &salt)?;
        match entries
            .iter_mut()
            .find(|e| e.name == user && e.credential.mechanism == mech)
        {
            Some(existing) => existing.credential = credential,
            None => entries.push(Entry {
                name: user.to_string(),
                credential,
            }),
        }
    }
    write_atomic(path, render(header.as_deref(), &entries).as_bytes())
}

/// Removes every credential of `user` from the file at `path`. Returns whether anything was
/// removed; a missing file or unknown user is `Ok(false)` and leaves the file untouched.
pub fn remove_user(path: impl AsRef<Path>, user: &str) -> Result<bool, CredentialError> {
    let path = path.as_ref();
    let Some((header, mut entries)) = read_for_update(path)? else {
        return Ok(false);
    };
    let before = entries.len();
    entries.retain(|e| e.name != user);
    if entries.len() == before {
        return Ok(false);
    }
    write_atomic(path, render(header.as_deref(), &entries).as_bytes())?;
    Ok(true)
}

/// Replaces the file at `path` with `contents` so that readers see either the old or the new file,
/// never a torn one, and the new one survives a crash: write a temporary file (mode 0600) in the
/// same directory, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), CredentialError> {
    let write_error = |source| CredentialError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        write_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path has no file name",
        ))
    })?;
    let mut nonce = [0u8; 8];
    rand::fill(&mut nonce).expect("system random number generator failed");
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        hex(&nonce)
    ));

    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(write_error)?;
    let result = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp, path)
        })
        .and_then(|()| sync_dir(dir));
    if result.is_err() {
        // Best effort: the temporary file may already be gone (renamed) or never written.
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_error)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// One valid `[[user]]` entry.
struct Entry {
    name: String,
    credential: ScramCredential,
}

/// A credential file taken apart for rewriting: its leading comment and its entries.
type Contents = (Option<String>, Vec<Entry>);

/// Reads the file for `add_user`/`remove_user`: `None` if it does not exist (refusing to touch a
/// file that does not load).
fn read_for_update(path: &Path) -> Result<Option<Contents>, CredentialError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    // The loader's full validation: an update never rewrites a file the gateway would refuse.
    let (text, entries) = parse_file(path, &bytes)?;
    Ok(Some((leading_comment(text), entries)))
}

/// UTF-8 check, then [`parse_entries`].
fn parse_file<'a>(path: &Path, bytes: &'a [u8]) -> Result<(&'a str, Vec<Entry>), CredentialError> {
    let text = std::str::from_utf8(bytes).map_err(|e| CredentialError::Invalid {
        path: path.to_path_buf(),
        problems: vec![CredentialProblem {
            line: Some(line_of(bytes, e.valid_up_to())),
            entry: None,
            user: None,
            message: "the file is not valid UTF-8".into(),
        }],
    })?;
    Ok((text, parse_entries(path, text)?))
}

/// The comment block at the top of the file (comment and blank lines before the first other line).
fn leading_comment(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .take_while(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#')
        })
        .collect();
    let comment = lines.join("\n");
    let comment = comment.trim();
    (!comment.is_empty()).then(|| comment.to_string())
}

fn render(header: Option<&str>, entries: &[Entry]) -> String {
    let mut out = String::new();
    out.push_str(header.unwrap_or(DEFAULT_HEADER));
    out.push('\n');
    for entry in entries {
        let c = &entry.credential;
        // `toml::Value`'s Display quotes and escapes the name as a TOML basic string.
        let name = toml::Value::String(entry.name.clone());
        out.push_str(&format!(
            "\n[[user]]\nname = {name}\nmechanism = \"{}\"\niterations = {}\nsalt = \"{}\"\n\
             stored_key = \"{}\"\nserver_key = \"{}\"\n",
            c.mechanism.name(),
            c.iterations,
            B64.encode(&c.salt),
            B64.encode(&c.stored_key),
            B64.encode(&c.server_key),
        ));
    }
    out
}

type RawEntry = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    user: Vec<Spanned<RawEntry>>,
}

/// Parses and validates the whole file, collecting every problem.
fn parse_entries(path: &Path, text: &str) -> Result<Vec<Entry>, CredentialError> {
    let invalid = |problems: Vec<CredentialProblem>| CredentialError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let syntax = |e: toml::de::Error| CredentialProblem {
        line: e.span().map(|span| line_of(text.as_bytes(), span.start)),
        entry: None,
        user: None,
        message: e.message().trim().to_string(),
    };

    let top: BTreeMap<Spanned<String>, serde::de::IgnoredAny> =
        toml::from_str(text).map_err(|e| invalid(vec![syntax(e)]))?;
    let mut problems: Vec<CredentialProblem> = top
        .keys()
        .filter(|key| key.get_ref() != "user")
        .map(|key| CredentialProblem {
            line: Some(line_of(text.as_bytes(), key.span().start)),
            entry: None,
            user: None,
            message: format!(
                "unknown top-level key {:?} (only [[user]] entries are allowed)",
                key.get_ref()
            ),
        })
        .collect();

    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            problems.push(syntax(e));
            return Err(invalid(problems));
        }
    };

    let mut entries = Vec::new();
    let mut seen: HashMap<(String, Mechanism), (usize, usize)> = HashMap::new();
    for (index, raw_entry) in raw.user.iter().enumerate() {
        let line = line_of(text.as_bytes(), raw_entry.span().start);
        let mut checker = EntryChecker {
            text,
            index,
            line,
            user: None,
            problems: &mut problems,
        };
        let Some(entry) = checker.check(raw_entry.get_ref()) else {
            continue;
        };
        let key = (entry.name.clone(), entry.credential.mechanism);
        if let Some(&(first_index, first_line)) = seen.get(&key) {
            problems.push(CredentialProblem {
                line: Some(line),
                entry: Some(index),
                user: Some(entry.name.clone()),
                message: format!(
                    "duplicate {} entry for this user (first at user[{first_index}], line {first_line})",
                    entry.credential.mechanism
                ),
            });
            continue;
        }
        seen.insert(key, (index, line));
        entries.push(entry);
    }

    if problems.is_empty() {
        Ok(entries)
    } else {
        problems.sort_by_key(|p| (p.line, p.entry));
        Err(invalid(problems))
    }
}

/// Validates one `[[user]]` table, recording problems instead of stopping at the first.
struct EntryChecker<'a> {
    text: &'a str,
    index: usize,
    /// Line of the entry's `[[user]]` header.
    line: usize,
    user: Option<String>,
    problems: &'a mut Vec<CredentialProblem>,
}

impl EntryChecker<'_> {
    fn problem(&mut self, offset: Option<usize>, message: String) {
        let line = offset.map_or(self.line, |o| line_of(self.text.as_bytes(), o));
        self.problems.push(CredentialProblem {
            line: Some(line),
            entry: Some(self.index),
            user: self.user.clone(),
            message,
        });
    }

    fn check(&mut self, raw: &RawEntry) -> Option<Entry> {
        let field = |name: &str| {
            raw.iter()
                .find(|(k, _)| k.get_ref() == name)
                .map(|(_, v)| v)
        };

        // The name first, so later problems can mention it.
        let name = match field("name") {
            None => {
                self.problem(None, "missing key `name`".into());
                None
            }
            Some(value) => match value.get_ref() {
                toml::Value::String(name) => {
                    if let Err(CredentialError::InvalidUserName { reason, .. }) =
                        validate_user_name(name)
                    {
                        self.problem(
                            Some(value.span().start),
                            format!("invalid `name`: {reason}"),
                        );
                        None
                    } else {
                        self.user = Some(name.clone());
                        Some(name.clone())
                    }
                }
                other => {
                    self.wrong_type(value, "name", "a string", other);
                    None
                }
            },
        };

        for key in raw.keys() {
            if !KEYS.contains(&key.get_ref().as_str()) {
                self.problem(
                    Some(key.span().start),
                    format!(
                        "unknown key {:?} (expected {})",
                        key.get_ref(),
                        KEYS.join(", ")
                    ),
                );
            }
        }

        let mechanism = self
            .string(field("mechanism"), "mechanism")
            .and_then(
                |(m, at)| match Mechanism::from_name(&m).and_then(ScramHash::of) {
                    Some(hash) => Some(hash),
                    None => {
                        self.problem(
                            Some(at),
                            format!("mechanism {m:?} is not SCRAM-SHA-256 or SCRAM-SHA-512"),
                        );
                        None
                    }
                },
            );

        let iterations = match field("iterations") {
            None => {
                self.problem(None, "missing key `iterations`".into());
                None
            }
            Some(value) => match value.get_ref() {
                toml::Value::Integer(n) => match u32::try_from(*n) {
                    Ok(n) if ITERATIONS.contains(&n) => Some(n),
                    _ => {
                        self.problem(
                            Some(value.span().start),
                            format!(
                                "iterations {n} is outside {}..={} (fewer make stolen keys cheap \
                                 to crack; Kafka refuses them too)",
                                ITERATIONS.start(),
                                ITERATIONS.end()
                            ),
                        );
                        None
                    }
                },
                other => {
                    self.wrong_type(value, "iterations", "an integer", other);
                    None
                }
            },
        };

        let salt = self.base64(field("salt"), "salt").and_then(|(salt, at)| {
            if SALT_LEN_RANGE.contains(&salt.len()) {
                Some(salt)
            } else {
                self.problem(
                    Some(at),
                    format!(
                        "salt is {} bytes, expected {}..={}",
                        salt.len(),
                        SALT_LEN_RANGE.start(),
                        SALT_LEN_RANGE.end()
                    ),
                );
                None
            }
        });
        let stored_key = self.key(field("stored_key"), "stored_key", mechanism);
        let server_key = self.key(field("server_key"), "server_key", mechanism);

        Some(Entry {
            name: name?,
            credential: ScramCredential {
                mechanism: mechanism?.mechanism(),
                iterations: iterations?,
                salt: salt?,
                stored_key: stored_key?,
                server_key: server_key?,
            },
        })
    }

    fn wrong_type(
        &mut self,
        value: &Spanned<toml::Value>,
        key: &str,
        expected: &str,
        got: &toml::Value,
    ) {
        self.problem(
            Some(value.span().start),
            format!("`{key}` must be {expected}, found {}", got.type_str()),
        );
    }

    /// A required string field and the offset of its value.
    fn string(
        &mut self,
        value: Option<&Spanned<toml::Value>>,
        key: &str,
    ) -> Option<(String, usize)> {
        let Some(value) = value else {
            self.problem(None, format!("missing key `{key}`"));
            return None;
        };
        match value.get_ref() {
            toml::Value::String(s) => Some((s.clone(), value.span().start)),
            other => {
                self.wrong_type(value, key, "a string", other);
                None
            }
        }
    }

    fn base64(
        &mut self,
        value: Option<&Spanned<toml::Value>>,
        key: &str,
    ) -> Option<(Vec<u8>, usize)> {
        let (encoded, at) = self.string(value, key)?;
        match B64.decode(encoded.as_bytes()) {
            Ok(bytes) => Some((bytes, at)),
            Err(e) => {
                self.problem(Some(at), format!("`{key}` is not valid base64: {e}"));
                None
            }
        }
    }

    /// StoredKey or ServerKey: base64 of exactly one hash output of the entry's mechanism.
    fn key(
        &mut self,
        value: Option<&Spanned<toml::Value>>,
        key: &str,
        hash: Option<ScramHash>,
    ) -> Option<Vec<u8>> {
        let (bytes, at) = self.base64(value, key)?;
        let hash = hash?;
        if bytes.len() == hash.output_len() {
            Some(bytes)
        } else {
            self.problem(
                Some(at),
                format!(
                    "`{key}` is {} bytes, {} needs {}",
                    bytes.len(),
                    hash.mechanism(),
                    hash.output_len()
                ),
            );
            None
        }
    }
}

/// 1-based line number of byte `offset` in `text`.
fn line_of(text: &[u8], offset: usize) -> usize {
    let end = offset.min(text.len());
    text[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
