//! The policy a running gateway uses: a reloadable handle to an immutable snapshot that pairs an
//! [`Engine`] with its own decision cache.
//!
//! The cache lives inside the snapshot, so a reload replaces engine and cache in one pointer swap:
//! no request can get a decision cached under an older policy, or mix two policies. (casbin's
//! `CachedEnforcer` keeps its cache across policy changes; that is the trap this avoids.)

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::engine::{Decision, Engine, SessionAuthz};
use super::files::{PolicyError, PolicySet};
use super::model::{Operation, ResourceType};
use crate::auth::Principal;

/// Default number of cached decisions per snapshot.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Requests with longer names (or principal names) are decided without the cache: names are
/// client-controlled, and caching 10 KiB names would let one client fill memory.
pub const MAX_CACHED_NAME_BYTES: usize = 256;

const SHARDS: usize = 16;

/// The keys are already hashes: hash them no further.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Entry {
    /// Principal type, principal name and resource name, concatenated: one allocation per entry.
    key: Box<str>,
    kind_len: u32,
    principal_len: u32,
    host: IpAddr,
    op: Operation,
    rtype: ResourceType,
    /// `false` for `decide_any` (no resource name).
    named: bool,
    decision: Decision,
}

impl Entry {
    fn is(
        &self,
        p: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: Option<&str>,
    ) -> bool {
        let (k, n) = (self.kind_len as usize, self.principal_len as usize);
        self.host == host
            && self.op == op
            && self.rtype == rtype
            && self.named == name.is_some()
            && self.key.get(..k) == Some(p.kind.as_str())
            && self.key.get(k..k + n) == Some(p.name.as_str())
            && self.key.get(k + n..) == Some(name.unwrap_or(""))
    }
}

type Shard = HashMap<u64, Entry, BuildHasherDefault<IdentityHasher>>;

/// A bounded map (principal, host, operation, resource type, name) -> decision. Sharded; a shard
/// that fills up is cleared (cheap, and the engine behind it is fast anyway). A 64-bit hash
/// collision can only cause a miss: entries keep their full key and are compared on lookup.
pub struct DecisionCache {
    shards: Box<[RwLock<Shard>]>,
    shard_capacity: usize,
    hasher: RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Cache counters since the snapshot was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
}

impl DecisionCache {
    /// `capacity` 0 disables caching.
    pub fn new(capacity: usize) -> DecisionCache {
        DecisionCache {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            shard_capacity: capacity.div_ceil(SHARDS),
            hasher: RandomState::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn key_hash(
        &self,
        p: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: Option<&str>,
    ) -> u64 {
        self.hasher
            .hash_one((p.kind.as_str(), p.name.as_str(), host, op, rtype, name))
    }

    fn cacheable(&self, p: &Principal, name: Option<&str>) -> bool {
        self.shard_capacity > 0
            && p.name.len() <= MAX_CACHED_NAME_BYTES
            && p.kind.len() <= MAX_CACHED_NAME_BYTES
            && name.is_none_or(|n| n.len() <= MAX_CACHED_NAME_BYTES)
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        &self.shards[(hash >> 60) as usize % SHARDS]
    }

    pub fn get(
        &self,
        p: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: Option<&str>,
    ) -> Option<Decision> {
        if !self.cacheable(p, name) {
            return None;
        }
        self.get_hashed(
            self.key_hash(p, host, op, rtype, name),
            p,
            host,
            op,
            rtype,
            name,
        )
    }

    fn get_hashed(
        &self,
        h: u64,
        p: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: Option<&str>,
    ) -> Option<Decision> {
        // Poisoning cannot leave a shard half-updated in a harmful way: entries are inserted whole.
        let shard = self.shard(h).read().unwrap_or_else(PoisonError::into_inner);
        match shard.get(&h).filter(|e| e.is(p, host, op, rtype, name)) {
            Some(e) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(e.decision)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn insert(
        &self,
        p: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: Option<&str>,
        decision: Decision,
    ) {
        if self.cacheable(p, name) {
            self.insert_hashed(
                self.key_hash(p, host, op, rtype, name),
                p,
                host,
                op,
                rtype,
                name,
                decision,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_hashed(
        &self,
        h: u64,
        p: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: Option<&str>,
        decision: Decision,
    ) {
        let mut key = String::with_capacity(p.kind.len() + p.name.len() + name.map_or(0, str::len));
        key.push_str(&p.kind);
        key.push_str(&p.name);
        key.push_str(name.unwrap_or(""));
        let entry = Entry {
            key: key.into_boxed_str(),
            // Both fit: cacheable() bounds them by MAX_CACHED_NAME_BYTES.
            kind_len: p.kind.len() as u32,
            principal_len: p.name.len() as u32,
            host,
            op,
            rtype,
            named: name.is_some(),
            decision,
        };
        let mut shard = self
            .shard(h)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.shard_capacity {
            shard.clear();
        }
        shard.insert(h, entry);
    }

    /// The cached decision, or `decide()`'s, cached only if `may_insert`. Also returns whether it
    /// added an entry. Hashes the key once.
    #[allow(clippy::too_many_arguments)]
    pub fn get_or_decide(
        &self,
        p: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: Option<&str>,
        may_insert: bool,
        decide: impl FnOnce() -> Decision,
    ) -> (Decision, bool) {
        if !self.cacheable(p, name) {
            return (decide(), false);
        }
        let h = self.key_hash(p, host, op, rtype, name);
        if let Some(d) = self.get_hashed(h, p, host, op, rtype, name) {
            return (d, false);
        }
        let d = decide();
        if may_insert {
            self.insert_hashed(h, p, host, op, rtype, name, d);
        }
        (d, may_insert)
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self
                .shards
                .iter()
                .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
                .sum(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    pub fn clear(&self) {
        for s in self.shards.iter() {
            s.write().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }
}

/// One policy version: the engine and the decisions cached for it. Immutable but for the cache.
pub struct Snapshot {
    engine: Engine,
    cache: DecisionCache,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("engine", &self.engine)
            .field("cache", &self.cache.stats())
            .finish()
    }
}

impl Snapshot {
    pub fn new(engine: Engine, cache_capacity: usize) -> Snapshot {
        Snapshot {
            engine,
            cache: DecisionCache::new(cache_capacity),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn cache(&self) -> &DecisionCache {
        &self.cache
    }

    pub fn version(&self) -> &str {
        self.engine.version()
    }

    /// [`Engine::decide`] through the cache.
    pub fn decide(
        &self,
        p: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
        name: &str,
    ) -> Decision {
        self.decide_within(p, host, (op, rtype, name), true).0
    }

    /// [`Snapshot::decide`], adding the decision to the cache only if `may_insert`; also returns
    /// whether it did.
    pub fn decide_within(
        &self,
        p: &Principal,
        host: IpAddr,
        (op, rtype, name): (Operation, ResourceType, &str),
        may_insert: bool,
    ) -> (Decision, bool) {
        self.cache
            .get_or_decide(p, host, op, rtype, Some(name), may_insert, || {
                self.engine.decide(p, host, op, rtype, name)
            })
    }

    /// [`Engine::decide_any`] through the cache.
    pub fn decide_any(
        &self,
        p: &Principal,
        host: IpAddr,
        op: Operation,
        rtype: ResourceType,
    ) -> Decision {
        self.cache
            .get_or_decide(p, host, op, rtype, None, true, || {
                self.engine.decide_any(p, host, op, rtype)
            })
            .0
    }
}

/// The reloadable policy holder. `current()` is a read lock and an `Arc` clone; a reload builds
/// the new snapshot outside the lock and swaps it in, or keeps the old one on any error.
pub struct PolicyHandle {
    current: RwLock<Arc<Snapshot>>,
    /// The shadow policy: a candidate asked every question beside `current`, never enforced.
    /// `None` when none is configured, or while it does not load.
    shadow: RwLock<Option<Arc<Snapshot>>>,
    cache_capacity: usize,
    /// Topics only a literal rule reaches (the audit topic), applied to every engine installed.
    reserved: Vec<String>,
    /// The usage counted against the policy's quotas: kept across reloads.
    quota_sensors: crate::quota::QuotaSensors,
}

impl std::fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyHandle")
            .field("current", &self.current())
            .finish()
    }
}

impl PolicyHandle {
    pub fn new(engine: Engine) -> PolicyHandle {
        PolicyHandle::with_capacity(engine, DEFAULT_CAPACITY)
    }

    pub fn with_capacity(engine: Engine, cache_capacity: usize) -> PolicyHandle {
        PolicyHandle {
            current: RwLock::new(Arc::new(Snapshot::new(engine, cache_capacity))),
            shadow: RwLock::new(None),
            cache_capacity,
            reserved: Vec::new(),
            quota_sensors: crate::quota::QuotaSensors::default(),
        }
    }

    /// Reserves `topics`: from now on (this policy and every reload) no principal, super users
    /// included, reaches them except through a rule that names them literally.
    pub fn reserving(mut self, topics: Vec<String>) -> PolicyHandle {
        self.reserved = topics;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        match Arc::get_mut(&mut current) {
            Some(snapshot) => snapshot.engine.set_reserved(&self.reserved),
            None => unreachable!("a handle being built is not shared yet"),
        }
        drop(current);
        self
    }

    /// Startup: the loaded policy, or, if it does not load, a deny-all engine (only super users
    /// get through; item 32) together with the reason, for the caller to log.
    pub fn load_or_deny_all(
        model: &Path,
        files: &[PathBuf],
        super_users: &[String],
    ) -> (PolicyHandle, Option<PolicyError>) {
        match PolicySet::load(model, files, super_users) {
            Ok(set) => (PolicyHandle::new(Engine::new(set)), None),
            Err(e) => (PolicyHandle::new(Engine::deny_all(super_users)), Some(e)),
        }
    }

    /// The snapshot to use for one whole request.
    pub fn current(&self) -> Arc<Snapshot> {
        // The lock only guards an Arc swap: a poisoned lock still holds a valid snapshot.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Installs `engine` with an empty cache; returns the previous snapshot.
    pub fn replace(&self, engine: Engine) -> Arc<Snapshot> {
        let engine = engine.with_reserved(&self.reserved);
        let next = Arc::new(Snapshot::new(engine, self.cache_capacity));
        std::mem::replace(
            &mut *self.current.write().unwrap_or_else(PoisonError::into_inner),
            next,
        )
    }

    /// Loads the policy and swaps it in; returns the new version hash. On error the current
    /// snapshot stays. Blocking (file I/O, casbin): from async code use [`PolicyHandle::reload_async`].
    pub fn reload(
        &self,
        model: &Path,
        files: &[PathBuf],
        super_users: &[String],
    ) -> Result<String, PolicyError> {
        let set = PolicySet::load(model, files, super_users)?;
        let version = set.version_hash().to_string();
        self.replace(Engine::new(set));
        Ok(version)
    }

    /// [`PolicyHandle::reload`] on tokio's blocking pool.
    pub async fn reload_async(
        self: &Arc<Self>,
        model: PathBuf,
        files: Vec<PathBuf>,
        super_users: Vec<String>,
    ) -> Result<String, PolicyError> {
        self.on_blocking_pool(move |me| me.reload(&model, &files, &super_users))
            .await
    }

    /// [`PolicyHandle::reload_shadow`] on tokio's blocking pool.
    pub async fn reload_shadow_async(
        self: &Arc<Self>,
        model: PathBuf,
        files: Vec<PathBuf>,
        super_users: Vec<String>,
    ) -> Result<String, PolicyError> {
        self.on_blocking_pool(move |me| me.reload_shadow(&model, &files, &super_users))
            .await
    }

    async fn on_blocking_pool(
        self: &Arc<Self>,
        load: impl FnOnce(&PolicyHandle) -> Result<String, PolicyError> + Send + 'static,
    ) -> Result<String, PolicyError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || load(&me))
            .await
            .unwrap_or_else(|e| {
                Err(PolicyError {
                    problems: vec![super::files::Diagnostic {
                        file: "policy reload".into(),
                        line: None,
                        message: format!("the reload task failed: {e}"),
                    }],
                })
            })
    }

    /// Measures quota rates over `window` (set before the handle is shared).
    pub fn with_quota_window(mut self, window: crate::quota::rate::WindowConfig) -> PolicyHandle {
        self.quota_sensors = crate::quota::QuotaSensors::new(window);
        self
    }

    /// The usage counted against the quotas of every policy this handle installs.
    pub fn quota_sensors(&self) -> &crate::quota::QuotaSensors {
        &self.quota_sensors
    }

    /// A session's authorizer bound to the current snapshot (and the current shadow, if any).
    pub fn session(&self, principal: impl Into<Arc<Principal>>, host: IpAddr) -> SessionAuthz {
        SessionAuthz::new(self.current(), principal.into(), host).shadowed_by(self.shadow())
    }

    /// The shadow snapshot in force, if any.
    pub fn shadow(&self) -> Option<Arc<Snapshot>> {
        self.shadow
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Installs `engine` as the shadow policy with an empty cache (with the same reserved topics
    /// as the enforced one), or removes the shadow (`None`).
    pub fn replace_shadow(&self, engine: Option<Engine>) {
        let next = engine.map(|e| {
            Arc::new(Snapshot::new(
                e.with_reserved(&self.reserved),
                self.cache_capacity,
            ))
        });
        *self.shadow.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    /// Loads the shadow policy (same model and super users as the enforced one) and swaps it in;
    /// returns its version hash. A shadow that does not load is removed, not kept: until it
    /// loads there are no shadow decisions (the enforced policy is never affected either way).
    /// Blocking, like [`PolicyHandle::reload`].
    pub fn reload_shadow(
        &self,
        model: &Path,
        files: &[PathBuf],
        super_users: &[String],
    ) -> Result<String, PolicyError> {
        match PolicySet::load(model, files, super_users) {
            Ok(set) => {
                let version = set.version_hash().to_string();
                self.replace_shadow(Some(Engine::new(set)));
                Ok(version)
            }
            Err(e) => {
                self.replace_shadow(None);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
