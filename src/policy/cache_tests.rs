//! The decision cache and the reloadable handle: bounded, never stale across a reload, old
//! snapshot kept when a reload fails.

use std::net::IpAddr;
use std::path::PathBuf;

use super::*;
use crate::policy::engine::tests::{engine, MODEL};
use crate::policy::engine::Reason;

const HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3));

fn alice() -> Principal {
    Principal::user("alice")
}

struct TempPolicy {
    dir: PathBuf,
}

impl TempPolicy {
    fn new(tag: &str) -> TempPolicy {
        let dir =
            std::env::temp_dir().join(format!("kgw-policy-cache-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("model.conf"), MODEL).expect("write model");
        TempPolicy { dir }
    }
    fn model(&self) -> PathBuf {
        self.dir.join("model.conf")
    }
    fn write(&self, text: &str) -> Vec<PathBuf> {
        let p = self.dir.join("acl.policy");
        std::fs::write(&p, text).expect("write policy");
        vec![p]
    }
}

impl Drop for TempPolicy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn cache_returns_engine_decisions_and_counts_hits() {
    let snap = Snapshot::new(engine("p, User:alice, Topic, t*, Read, *, allow\n"), 1000);
    let d1 = snap.decide(&alice(), HOST, Operation::Read, ResourceType::Topic, "t1");
    let d2 = snap.decide(&alice(), HOST, Operation::Read, ResourceType::Topic, "t1");
    assert_eq!(d1, d2);
    assert!(d1.allowed);
    // Every part of the key matters.
    assert!(
        !snap
            .decide(&alice(), HOST, Operation::Write, ResourceType::Topic, "t1")
            .allowed
    );
    assert!(
        !snap
            .decide(&alice(), HOST, Operation::Read, ResourceType::Group, "t1")
            .allowed
    );
    assert!(
        !snap
            .decide(&alice(), HOST, Operation::Read, ResourceType::Topic, "x1")
            .allowed
    );
    assert!(
        !snap
            .decide(
                &Principal::user("bob"),
                HOST,
                Operation::Read,
                ResourceType::Topic,
                "t1"
            )
            .allowed
    );
    let other_kind = Principal {
        kind: "Group".into(),
        name: "alice".into(),
    };
    assert!(
        !snap
            .decide(
                &other_kind,
                HOST,
                Operation::Read,
                ResourceType::Topic,
                "t1"
            )
            .allowed
    );
    assert!(
        snap.decide_any(&alice(), HOST, Operation::Read, ResourceType::Topic)
            .allowed
    );
    assert!(
        snap.decide_any(&alice(), HOST, Operation::Read, ResourceType::Topic)
            .allowed
    );
    let s = snap.cache().stats();
    assert_eq!((s.hits, s.entries), (2, 7));
}

#[test]
fn host_is_part_of_the_key() {
    let snap = Snapshot::new(
        engine("p, User:alice, Topic, t, Read, 10.0.0.0/8, allow\n"),
        1000,
    );
    assert!(
        snap.decide(&alice(), HOST, Operation::Read, ResourceType::Topic, "t")
            .allowed
    );
    assert!(
        !snap
            .decide(
                &alice(),
                "11.0.0.1".parse().expect("ip"),
                Operation::Read,
                ResourceType::Topic,
                "t"
            )
            .allowed
    );
}

#[test]
fn cache_is_bounded_and_skips_long_names() {
    let snap = Snapshot::new(engine("p, User:alice, Topic, *, Read, *, allow\n"), 160);
    for i in 0..10_000 {
        assert!(
            snap.decide(
                &alice(),
                HOST,
                Operation::Read,
                ResourceType::Topic,
                &format!("t{i}")
            )
            .allowed
        );
        assert!(snap.cache().stats().entries <= 160);
    }
    snap.cache().clear();
    let long = "x".repeat(MAX_CACHED_NAME_BYTES + 1);
    assert!(
        snap.decide(&alice(), HOST, Operation::Read, ResourceType::Topic, &long)
            .allowed
    );
    assert_eq!(snap.cache().stats().entries, 0);
    let off = Snapshot::new(engine("p, User:alice, Topic, *, Read, *, allow\n"), 0);
    assert!(
        off.decide(&alice(), HOST, Operation::Read, ResourceType::Topic, "t")
            .allowed
    );
    assert_eq!(off.cache().stats().entries, 0);
}

#[test]
fn reload_invalidates_cached_decisions() {
    let tmp = TempPolicy::new("invalidate");
    let files = tmp.write("p, User:alice, Topic, orders, Read, *, allow\n");
    let (handle, err) = PolicyHandle::load_or_deny_all(&tmp.model(), &files, &[]);
    assert!(err.is_none());
    let before = handle.current();
    // Cache the allow under the old policy (twice: the second is a hit).
    for _ in 0..2 {
        assert!(
            before
                .decide(
                    &alice(),
                    HOST,
                    Operation::Read,
                    ResourceType::Topic,
                    "orders"
                )
                .allowed
        );
    }
    assert_eq!(before.cache().stats().hits, 1);
    let old_version = before.version().to_string();

    let files = tmp.write("p, User:alice, Topic, orders, Read, *, deny\n");
    let version = handle.reload(&tmp.model(), &files, &[]).expect("reload");
    assert_ne!(version, old_version);
    let after = handle.current();
    assert_eq!(after.version(), version);
    let d = after.decide(
        &alice(),
        HOST,
        Operation::Read,
        ResourceType::Topic,
        "orders",
    );
    assert!(
        !d.allowed,
        "a decision cached under the old policy must not survive the reload"
    );
    assert!(matches!(d.reason, Reason::Deny(_)));
    // A request that started before the reload keeps its own snapshot, consistently.
    assert!(
        before
            .decide(
                &alice(),
                HOST,
                Operation::Read,
                ResourceType::Topic,
                "orders"
            )
            .allowed
    );
}

#[test]
fn failed_reload_keeps_the_old_snapshot() {
    let tmp = TempPolicy::new("keep");
    let files = tmp.write("p, User:alice, Topic, orders, Read, *, allow\n");
    let (handle, err) = PolicyHandle::load_or_deny_all(&tmp.model(), &files, &[]);
    assert!(err.is_none());
    let before = handle.current();
    let files = tmp.write("p, User:alice, Topic, orders, Read, *, allow\np, User:alice, Topic\n");
    let err = handle
        .reload(&tmp.model(), &files, &[])
        .expect_err("broken policy");
    assert!(err.to_string().contains("acl.policy:2:"), "{err}");
    assert!(Arc::ptr_eq(&before, &handle.current()));
    assert!(
        handle
            .current()
            .decide(
                &alice(),
                HOST,
                Operation::Read,
                ResourceType::Topic,
                "orders"
            )
            .allowed
    );
    // A broken model is rejected at reload too.
    std::fs::write(tmp.model(), MODEL.replace("[policy_effect]", "[nothing]")).expect("write");
    let files = tmp.write("p, User:alice, Topic, orders, Write, *, allow\n");
    assert!(handle.reload(&tmp.model(), &files, &[]).is_err());
    assert!(Arc::ptr_eq(&before, &handle.current()));
}

#[test]
fn reload_async_from_a_runtime() {
    let tmp = TempPolicy::new("async");
    let files = tmp.write("p, User:alice, Topic, orders, Read, *, allow\n");
    let handle = Arc::new(PolicyHandle::new(Engine::deny_all(&[])));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime");
    let v = rt
        .block_on(handle.reload_async(tmp.model(), files, Vec::new()))
        .expect("reloads");
    assert_eq!(handle.current().version(), v);
    assert!(
        handle
            .current()
            .decide(
                &alice(),
                HOST,
                Operation::Read,
                ResourceType::Topic,
                "orders"
            )
            .allowed
    );
}

#[test]
fn concurrent_readers_see_whole_snapshots() {
    let allow = engine(
        "p, User:alice, Topic, t, Read, *, allow\np, User:alice, Topic, u, Read, *, allow\n",
    );
    let handle = Arc::new(PolicyHandle::new(allow));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (handle, stop) = (Arc::clone(&handle), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // One request = one snapshot: both checks must come from the same policy.
                    let s = handle.current();
                    let t = s
                        .decide(&alice(), HOST, Operation::Read, ResourceType::Topic, "t")
                        .allowed;
                    let u = s
                        .decide(&alice(), HOST, Operation::Read, ResourceType::Topic, "u")
                        .allowed;
                    assert_eq!(t, u);
                }
            })
        })
        .collect();
    for i in 0..50 {
        let text = if i % 2 == 0 {
            "p, User:alice, Topic, t, Read, *, deny\np, User:alice, Topic, u, Read, *, deny\n"
        } else {
            "p, User:alice, Topic, t, Read, *, allow\np, User:alice, Topic, u, Read, *, allow\n"
        };
        handle.replace(engine(text));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader");
    }
}
