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

mod shadow {
    //! The shadow policy: asked every question the enforced one is, through its own cache; only
    //! differences are kept (both directions); never enforced; reloaded; absent while broken.

    use super::*;
    use crate::policy::engine::{Change, ShadowDifferences};
    use crate::policy::mapping::Authorize;

    const ENFORCED: &str = "p, User:alice, Topic, orders, Read, *, allow\n\
                            p, User:alice, Topic, audit, Read, *, allow\n";
    /// Takes Read on `orders` away, adds Write on `orders`, keeps `audit` as it is.
    const SHADOW: &str = "p, User:alice, Topic, audit, Read, *, allow\n\
                          p, User:alice, Topic, orders, Write, *, allow\n";

    fn shadowed() -> PolicyHandle {
        let handle = PolicyHandle::new(engine(ENFORCED));
        handle.replace_shadow(Some(engine(SHADOW)));
        handle
    }

    fn changes(d: &ShadowDifferences) -> Vec<(Change, Operation, String)> {
        d.differences
            .iter()
            .map(|s| {
                (
                    s.change(),
                    s.enforced.op,
                    s.enforced.name.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn differences_in_both_directions_are_kept_and_enforcement_is_unchanged() {
        let handle = shadowed();
        let s = handle.session(alice(), HOST).keeping_allowed(false);
        // The enforced answers, whatever the shadow says.
        assert!(s.allowed(Operation::Read, ResourceType::Topic, "orders"));
        assert!(!s.allowed(Operation::Write, ResourceType::Topic, "orders"));
        assert!(s.allowed(Operation::Read, ResourceType::Topic, "audit"));
        assert!(!s.allowed(Operation::Read, ResourceType::Topic, "other"));
        let d = s.take_shadow();
        assert_eq!(
            changes(&d),
            vec![
                (Change::Lose, Operation::Read, "orders".into()),
                (Change::Gain, Operation::Write, "orders".into()),
            ],
            "only the checks where the two differ, each with its direction"
        );
        // Both sides carry their deciding rule (file:line) and their own policy version.
        let lose = &d.differences[0];
        assert_eq!(
            lose.enforced.rule.as_ref().map(|r| r.source.to_string()),
            Some("test.policy:1".into())
        );
        assert!(lose.shadow.rule.is_none(), "default deny in the shadow");
        assert_eq!(lose.shadow.reason, Reason::NoMatchingAllow);
        let gain = &d.differences[1];
        assert_eq!(
            gain.shadow.rule.as_ref().map(|r| r.source.to_string()),
            Some("test.policy:2".into())
        );
        assert_ne!(lose.enforced.policy_version, lose.shadow.policy_version);
        // The decision log itself is the enforced one's: the denials (the level drops allowed).
        let enforced = s.take_decisions();
        assert_eq!(enforced.records.len(), 2);
        assert!(enforced.records.iter().all(|r| !r.allowed));

        // "On any resource of this type" checks are compared too.
        assert!(!s.allowed_any(Operation::Write, ResourceType::Topic));
        let d = s.take_shadow();
        assert_eq!(d.differences.len(), 1);
        assert_eq!(d.differences[0].change(), Change::Gain);
        assert_eq!(d.differences[0].enforced.name, None);
    }

    #[test]
    fn the_shadow_has_its_own_cache_and_differences_are_bounded_per_request() {
        let handle = shadowed();
        let s = handle.session(alice(), HOST);
        for _ in 0..crate::policy::engine::MAX_RECORDED_DECISIONS + 5 {
            s.allowed(Operation::Read, ResourceType::Topic, "orders");
        }
        let d = s.take_shadow();
        assert_eq!(
            d.differences.len(),
            crate::policy::engine::MAX_RECORDED_DECISIONS
        );
        assert_eq!(
            d.overflow,
            vec![(Operation::Read, ResourceType::Topic, Change::Lose, 5)],
            "past the bound, differences are counted, never lost"
        );
        let shadow = handle.shadow().expect("a shadow is installed");
        assert_eq!(shadow.cache().stats().entries, 1);
        assert!(shadow.cache().stats().hits > 1000);
        assert_eq!(handle.current().cache().stats().entries, 1);
    }

    #[test]
    fn without_a_shadow_nothing_is_compared() {
        let handle = PolicyHandle::new(engine(ENFORCED));
        let s = handle.session(alice(), HOST);
        assert!(s.allowed(Operation::Read, ResourceType::Topic, "orders"));
        assert!(s.take_shadow().differences.is_empty());
        assert!(s.shadow().is_none());
    }

    #[test]
    fn the_shadow_reloads_and_a_broken_one_is_absent_until_it_loads() {
        let tmp = TempPolicy::new("shadow");
        let shadow_file = tmp.dir.join("shadow.policy");
        std::fs::write(&shadow_file, SHADOW).expect("write shadow");
        let handle = PolicyHandle::new(engine(ENFORCED));
        let files = vec![shadow_file.clone()];
        let v1 = handle
            .reload_shadow(&tmp.model(), &files, &[])
            .expect("the shadow loads");
        let enforced_version = handle.current().version().to_string();
        let lost = |h: &PolicyHandle| {
            let s = h.session(alice(), HOST);
            s.allowed(Operation::Read, ResourceType::Topic, "orders");
            s.allowed(Operation::Read, ResourceType::Topic, "audit");
            changes(&s.take_shadow())
        };
        assert_eq!(
            lost(&handle),
            vec![(Change::Lose, Operation::Read, "orders".into())]
        );

        // A new candidate: now `audit` is the one lost, `orders` is kept.
        std::fs::write(
            &shadow_file,
            "p, User:alice, Topic, orders, Read, *, allow\n",
        )
        .expect("rewrite shadow");
        let v2 = handle
            .reload_shadow(&tmp.model(), &files, &[])
            .expect("reloads");
        assert_ne!(v1, v2);
        assert_eq!(
            lost(&handle),
            vec![(Change::Lose, Operation::Read, "audit".into())]
        );

        // A broken candidate: reported with file:line, no shadow at all until it loads, and the
        // enforced policy untouched.
        std::fs::write(&shadow_file, "p, User:alice, Topic\n").expect("break shadow");
        let e = handle
            .reload_shadow(&tmp.model(), &files, &[])
            .expect_err("a broken shadow does not load");
        assert!(e.to_string().contains("shadow.policy:1"), "{e}");
        assert!(handle.shadow().is_none());
        assert!(lost(&handle).is_empty());
        assert_eq!(handle.current().version(), enforced_version);
        let s = handle.session(alice(), HOST);
        assert!(s.allowed(Operation::Read, ResourceType::Topic, "orders"));

        std::fs::write(&shadow_file, SHADOW).expect("fix shadow");
        assert_eq!(
            handle.reload_shadow(&tmp.model(), &files, &[]).ok(),
            Some(v1)
        );
        assert_eq!(lost(&handle).len(), 1);
    }

    #[test]
    fn the_shadow_respects_reserved_topics() {
        let handle = PolicyHandle::new(engine("p, User:alice, Topic, *, Read, *, allow\n"))
            .reserving(vec!["_audit".into()]);
        handle.replace_shadow(Some(engine("p, User:alice, Topic, *, Read, *, allow\n")));
        let s = handle.session(alice(), HOST);
        assert!(!s.allowed(Operation::Read, ResourceType::Topic, "_audit"));
        assert!(
            s.take_shadow().differences.is_empty(),
            "the shadow reserves the audit topic as the enforced policy does"
        );
    }
}
