//! Who built each session the brokers hold for the gateway's clients: incremental fetch sessions
//! (KIP-227, keyed by a broker-chosen id) and share sessions (KIP-932, keyed by group and member).
//!
//! A broker keys a fetch session by its id alone, and a share session by group and member id (the
//! member id is the client's own UUID, visible to anyone allowed to describe the group); every
//! upstream connection carries the gateway's identity, so the broker cannot tell one client's
//! session from another's. Kafka re-authorizes every partition of a session against the requester
//! on every request; the gateway authorizes the partitions a request names, and relies on this
//! registry for the ones it does not: a request continuing a session is forwarded only for a
//! session that the same principal, from the same address and listener, built through this
//! gateway under the policy version still in force. Anything else is answered "session not found",
//! and the client starts again with a full request, which is authorized in full.
//!
//! An entry may carry what the gateway must remember about its session (a share session's denied
//! partitions, which Kafka keeps in the session and answers on every fetch).
//!
//! Memory is bounded: at most `capacity` sessions; the least recently used goes first, and a
//! session unused for `idle` is forgotten (brokers evict idle sessions too; a forgotten session
//! costs its client one full request). Every operation is O(log n).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which broker a session lives on: the gateway's connection target (a node id, or -1 for a
/// bootstrap connection).
pub type Broker = i32;

/// Who built a session, and under which policy. Made for every Fetch that names a session, so
/// it holds shared values only: building one allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub principal: std::sync::Arc<crate::auth::Principal>,
    pub host: IpAddr,
    pub listener: std::sync::Arc<str>,
    pub policy_version: std::sync::Arc<str>,
}

/// Why an incremental fetch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not built through this gateway (or forgotten since).
    Unknown,
    /// Built by another principal, or from another address or listener.
    NotTheOwner,
    /// Built under a policy that has since changed: its partitions were authorized under rules no
    /// longer in force.
    PolicyChanged,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unknown => "unknown_session",
            Refusal::NotTheOwner => "not_the_owner",
            Refusal::PolicyChanged => "policy_changed",
        }
    }
}

struct Entry<V> {
    owner: Owner,
    value: V,
    last_used: Instant,
    seq: u64,
}

struct Inner<K, V> {
    entries: HashMap<K, Entry<V>>,
    by_use: BTreeMap<(Instant, u64), K>,
    next_seq: u64,
}

/// Sessions keyed by `K`, each with its owner and a value `V`.
pub struct Sessions<K, V> {
    inner: Mutex<Inner<K, V>>,
    capacity: usize,
    idle: Duration,
}

/// Fetch sessions: by broker and session id.
pub type FetchSessions = Sessions<(Broker, i32), ()>;

/// Share sessions: by broker, group id and member id; the value is what the gateway answered for
/// the session's partitions it did not forward ([`ShareDenied`]).
pub type ShareSessions = Sessions<(Broker, String, String), ShareDenied>;

/// A share session's partitions the gateway answered itself: (topic id, partition, error code).
/// Kafka keeps a partition that failed authorization in the session and answers it on every
/// ShareFetch until the client forgets it; the gateway does the same from here. At most
/// [`SHARE_DENIED_MAX`] are carried: a client naming more denied partitions still gets each
/// answered in the request that names it.
pub type ShareDenied = Vec<(uuid::Uuid, i32, i16)>;

/// How many denied partitions one share session carries at most: 6 KiB. A member is denied
/// partitions only of topics it may describe but not read, a handful in practice.
pub const SHARE_DENIED_MAX: usize = 256;

impl<K: Hash + Eq + Clone, V: Clone> Sessions<K, V> {
    pub fn new(capacity: usize, idle: Duration) -> Self {
        Sessions {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                by_use: BTreeMap::new(),
                next_seq: 0,
            }),
            capacity: capacity.max(1),
            idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // The map holds plain data: a panic elsewhere cannot leave it half-written.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `owner` built session `key` (a fetch session's id is learned from the broker's
    /// answer to a full fetch at epoch 0; a share session's key is in its request).
    pub fn register(&self, key: K, owner: Owner, value: V, now: Instant) {
        let mut inner = self.lock();
        Self::expire(&mut inner, now, self.idle);
        if let Some(old) = inner.entries.remove(&key) {
            inner.by_use.remove(&(old.last_used, old.seq));
        }
        while inner.entries.len() >= self.capacity {
            let Some((_, key)) = inner.by_use.pop_first() else {
                break;
            };
            inner.entries.remove(&key);
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.by_use.insert((now, seq), key.clone());
        inner.entries.insert(
            key,
            Entry {
                owner,
                value,
                last_used: now,
                seq,
            },
        );
    }

    /// Replaces the value of session `key`, if it is still known.
    pub fn set(&self, key: &K, value: V) {
        if let Some(e) = self.lock().entries.get_mut(key) {
            e.value = value;
        }
    }

    /// Forgets session `key` (its client closed it).
    pub fn remove(&self, key: &K) {
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(key) {
            inner.by_use.remove(&(old.last_used, old.seq));
        }
    }

    /// Whether `requester` may use session `key`, and its value if so. A session refused for a
    /// policy change is forgotten: its partitions are never served to anyone again without a
    /// full, authorized request.
    pub fn check(&self, key: &K, requester: &Owner, now: Instant) -> Result<V, Refusal> {
        let mut inner = self.lock();
        Self::expire(&mut inner, now, self.idle);
        let Some(entry) = inner.entries.get_mut(key) else {
            return Err(Refusal::Unknown);
        };
        let o = &entry.owner;
        let refusal = if o.principal != requester.principal
            || o.host != requester.host
            || o.listener != requester.listener
        {
            Some(Refusal::NotTheOwner)
        } else if o.policy_version != requester.policy_version {
            Some(Refusal::PolicyChanged)
        } else {
            None
        };
        let old = (entry.last_used, entry.seq);
        match refusal {
            None => {
                entry.last_used = now;
                let (seq, value) = (entry.seq, entry.value.clone());
                inner.by_use.remove(&old);
                inner.by_use.insert((now, seq), key.clone());
                Ok(value)
            }
            Some(r) => {
                // Another principal's guess must not end the owner's session: only a session
                // the requester itself built under an older policy is forgotten.
                if r == Refusal::PolicyChanged {
                    inner.entries.remove(key);
                    inner.by_use.remove(&old);
                }
                Err(r)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expire(inner: &mut Inner<K, V>, now: Instant, idle: Duration) {
        while let Some((&(used, _), _)) = inner.by_use.first_key_value() {
            if now.saturating_duration_since(used) < idle {
                break;
            }
            if let Some((_, key)) = inner.by_use.pop_first() {
                inner.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(p: &str, host: [u8; 4], policy: &str) -> Owner {
        let (kind, name) = p.split_once(':').expect("Kind:name");
        Owner {
            principal: std::sync::Arc::new(crate::auth::Principal {
                kind: kind.into(),
                name: name.into(),
            }),
            host: IpAddr::from(host),
            listener: "sasl".into(),
            policy_version: policy.into(),
        }
    }

    #[test]
    fn only_the_builder_under_the_same_policy_may_continue_a_session() {
        let s = FetchSessions::new(10, Duration::from_secs(60));
        let t = Instant::now();
        let alice = owner("User:alice", [10, 0, 0, 1], "v1");
        s.register((1, 77), alice.clone(), (), t);
        assert_eq!(s.check(&(1, 77), &alice, t), Ok(()));
        assert_eq!(
            s.check(&(2, 77), &alice, t),
            Err(Refusal::Unknown),
            "another broker"
        );
        assert_eq!(
            s.check(&(1, 77), &owner("User:bob", [10, 0, 0, 1], "v1"), t),
            Err(Refusal::NotTheOwner),
            "a guessed id"
        );
        assert_eq!(
            s.check(&(1, 77), &owner("User:alice", [10, 0, 0, 9], "v1"), t),
            Err(Refusal::NotTheOwner),
            "the same principal from another address"
        );
        assert_eq!(
            s.check(&(1, 77), &alice, t),
            Ok(()),
            "a guess does not end it"
        );
        assert_eq!(
            s.check(&(1, 77), &owner("User:alice", [10, 0, 0, 1], "v2"), t),
            Err(Refusal::PolicyChanged)
        );
        assert_eq!(
            s.check(&(1, 77), &alice, t),
            Err(Refusal::Unknown),
            "a session refused for a policy change is forgotten"
        );
    }

    #[test]
    fn memory_is_bounded_and_idle_sessions_expire() {
        let s = FetchSessions::new(3, Duration::from_secs(60));
        let t = Instant::now();
        let a = owner("User:a", [10, 0, 0, 1], "v");
        for id in 1..=5 {
            s.register((1, id), a.clone(), (), t + Duration::from_secs(id as u64));
        }
        assert_eq!(s.len(), 3);
        assert_eq!(
            s.check(&(1, 1), &a, t + Duration::from_secs(6)),
            Err(Refusal::Unknown)
        );
        assert_eq!(s.check(&(1, 5), &a, t + Duration::from_secs(6)), Ok(()));
        assert_eq!(
            s.check(&(1, 5), &a, t + Duration::from_secs(200)),
            Err(Refusal::Unknown),
            "idle past the limit"
        );
        assert!(s.is_empty());
    }
}
