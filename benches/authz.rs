//! Authorization benchmark: decisions per second with 10 and 10,000 rules (engine alone, through
//! the cache on a miss and on a hit, and casbin's enforcer for comparison), and policy load time
//! for 10,000 rules (parse + index, and the casbin enforcer build separately).
//!
//! Also the cost of a shadow policy (`shadow_policy_files`) on the per-request decision path: a
//! session's authorizer per request, one check, the decisions taken for audit, without a shadow,
//! with a shadow that agrees, and with one that differs on one check in eight.
//!
//! `cargo bench --bench authz` (plain `std::time::Instant`, prints a table).

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use kafka_gateway::auth::Principal;
use kafka_gateway::policy::cache::{PolicyHandle, Snapshot};
use kafka_gateway::policy::engine::Engine;
use kafka_gateway::policy::files::PolicySet;
use kafka_gateway::policy::{Operation, ResourceType};

const MODEL: &str = include_str!("../policies/model.conf");

/// A policy of `n` rules shaped like a real one: ten rules per service user (literal and prefix
/// topics, groups, a deny, a host-restricted rule), a few `User:*` rules, and group memberships.
fn policy(n: usize) -> String {
    let mut s = String::from(
        "p, User:*, Topic, public, Read, *, allow\np, User:*, Topic, secret*, All, *, deny\n",
    );
    let users = n.saturating_sub(2).div_ceil(10).max(1);
    for u in 0..users {
        s.push_str(&format!(
            "g, User:svc-{u}, Group:team-{g}\n\
             p, User:svc-{u}, Topic, orders-{u}-eu, Write, *, allow\n\
             p, User:svc-{u}, Topic, orders-{u}-*, Read, *, allow\n\
             p, User:svc-{u}, Topic, events-{u}, Write, 10.0.0.0/8, allow\n\
             p, User:svc-{u}, Topic, orders-{u}-audit, Write, *, deny\n\
             p, User:svc-{u}, Group, svc-{u}-*, Read, *, allow\n\
             p, User:svc-{u}, Group, shared, Describe, *, allow\n\
             p, User:svc-{u}, TransactionalId, tx-{u}-*, Write, *, allow\n\
             p, User:svc-{u}, Cluster, kafka-cluster, IdempotentWrite, *, allow\n\
             p, User:svc-{u}, Topic, metrics-{u}, Describe, 192.168.{o}.0/24, allow\n",
            g = u % 50,
            o = u % 250,
        ));
        if u < 50 {
            s.push_str(&format!(
                "p, Group:team-{u}, Topic, team-{u}-*, Read, *, allow\n"
            ));
        } else {
            s.push_str(&format!(
                "p, User:svc-{u}, Topic, logs-{u}, Read, *, allow\n"
            ));
        }
    }
    let lines: Vec<&str> = s
        .lines()
        .filter(|l| l.starts_with('g') || l.starts_with('p'))
        .collect();
    let mut out = String::new();
    let mut rules = 0;
    for l in lines {
        if l.starts_with('p') {
            if rules == n {
                continue;
            }
            rules += 1;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

struct Req {
    p: Principal,
    host: IpAddr,
    op: Operation,
    rtype: ResourceType,
    name: String,
}

/// Deterministic request mix: mostly allowed produce/consume checks, some denied, some describes.
fn requests(users: usize, count: usize) -> Vec<Req> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..count)
        .map(|_| {
            let u = (next() % users as u64) as usize;
            let k = next() % 8;
            let host: IpAddr = if next() % 2 == 0 {
                [10, 1, 2, 3].into()
            } else {
                [172, 16, 0, 9].into()
            };
            let (op, rtype, name) = match k {
                0 => (
                    Operation::Write,
                    ResourceType::Topic,
                    format!("orders-{u}-eu"),
                ),
                1 => (
                    Operation::Read,
                    ResourceType::Topic,
                    format!("orders-{u}-eu"),
                ),
                2 => (
                    Operation::Describe,
                    ResourceType::Topic,
                    format!("orders-{u}-us"),
                ),
                3 => (
                    Operation::Write,
                    ResourceType::Topic,
                    format!("orders-{u}-audit"),
                ),
                4 => (
                    Operation::Read,
                    ResourceType::Group,
                    format!("svc-{u}-consumers"),
                ),
                5 => (Operation::Write, ResourceType::Topic, format!("events-{u}")),
                6 => (Operation::Read, ResourceType::Topic, "public".to_string()),
                _ => (
                    Operation::Read,
                    ResourceType::Topic,
                    format!("team-{}-x", u % 50),
                ),
            };
            Req {
                p: Principal::user(format!("svc-{u}")),
                host,
                op,
                rtype,
                name,
            }
        })
        .collect()
}

/// Runs `f` over `reqs` repeatedly for at least `min`; returns decisions per second.
fn rate(reqs: &[Req], min: Duration, mut f: impl FnMut(&Req) -> bool) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        for r in reqs {
            black_box(f(r));
        }
        n += reqs.len() as u64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k/s", r / 1e3)
    } else {
        format!("{r:.1} /s")
    }
}

fn main() {
    let min = Duration::from_millis(700);
    println!("kafka-gateway authorization benchmark");
    println!();
    println!(
        "{:<8} {:>14} {:>16} {:>16} {:>14} {:>14}",
        "rules", "engine", "cache miss", "cache hit", "casbin", "ns/decision"
    );
    for n in [10usize, 10_000] {
        let text = policy(n);
        let users = n.saturating_sub(2).div_ceil(10).max(1);
        let set =
            PolicySet::from_texts(Some(("model.conf", MODEL)), &[("bench.policy", &text)], &[])
                .expect("bench policy loads");
        assert_eq!(set.rules().len(), n);
        let engine = Engine::new(set);
        let reqs = requests(users, 4096);

        let engine_rate = rate(&reqs, min, |r| {
            engine.decide(&r.p, r.host, r.op, r.rtype, &r.name).allowed
        });

        // Misses: every request has a key never seen before (a unique name suffix, still matched
        // by the prefix rules), so each lookup misses, then inserts (and full shards get cleared).
        let unique: Vec<Req> = (0..300_000)
            .map(|i| {
                let r = &reqs[i % reqs.len()];
                Req {
                    p: r.p.clone(),
                    host: r.host,
                    op: r.op,
                    rtype: r.rtype,
                    name: format!("{}~{i}", r.name),
                }
            })
            .collect();
        let engine_for_miss = Engine::new(
            PolicySet::from_texts(None, &[("bench.policy", &text)], &[])
                .expect("bench policy loads"),
        );
        let snap = Snapshot::new(engine_for_miss, 100_000);
        let miss_start = Instant::now();
        let mut misses = 0u64;
        while miss_start.elapsed() < min {
            for r in &unique {
                black_box(snap.decide(&r.p, r.host, r.op, r.rtype, &r.name).allowed);
            }
            misses += unique.len() as u64;
        }
        let miss_rate = misses as f64 / miss_start.elapsed().as_secs_f64();
        let miss_stats = snap.cache().stats();

        let hot = Snapshot::new(
            Engine::new(
                PolicySet::from_texts(None, &[("bench.policy", &text)], &[])
                    .expect("bench policy loads"),
            ),
            100_000,
        );
        let hit_rate = rate(&reqs, min, |r| {
            hot.decide(&r.p, r.host, r.op, r.rtype, &r.name).allowed
        });
        let hit_stats = hot.cache().stats();

        let casbin_reqs = &reqs[..if n > 1000 { 40 } else { 2000 }];
        let policy = engine.policy().expect("loaded");
        let casbin_rate = rate(casbin_reqs, Duration::from_millis(300), |r| {
            matches!(
                policy.casbin_enforce(&r.p, r.host, r.op, r.rtype, &r.name),
                Some(Ok(true))
            )
        });
        // The casbin enforcer and the engine must agree on this mix too.
        for r in casbin_reqs {
            let c = policy
                .casbin_enforce(&r.p, r.host, r.op, r.rtype, &r.name)
                .and_then(Result::ok);
            assert_eq!(
                c,
                Some(engine.decide(&r.p, r.host, r.op, r.rtype, &r.name).allowed)
            );
        }
        println!(
            "{:<8} {:>14} {:>16} {:>16} {:>14} {:>14}",
            n,
            fmt_rate(engine_rate),
            fmt_rate(miss_rate),
            fmt_rate(hit_rate),
            fmt_rate(casbin_rate),
            format!(
                "{:.0}/{:.0}/{:.0}",
                1e9 / engine_rate,
                1e9 / miss_rate,
                1e9 / hit_rate
            ),
        );
        println!(
            "         (cache miss run: {} hits / {} misses; hit run: {} hits / {} misses)",
            miss_stats.hits, miss_stats.misses, hit_stats.hits, hit_stats.misses
        );
    }

    shadow_cost(min);

    println!();
    println!("{:<44} {:>12}", "load, 10,000 rules", "time");
    let text = policy(10_000);
    let runs = 5;
    let mut parse_index = Duration::MAX;
    let mut full = Duration::MAX;
    for _ in 0..runs {
        let t = Instant::now();
        let set = PolicySet::from_texts(None, &[("bench.policy", &text)], &[]).expect("loads");
        let e = Engine::new(set);
        parse_index = parse_index.min(t.elapsed());
        black_box(e);
        let t = Instant::now();
        let set =
            PolicySet::from_texts(Some(("model.conf", MODEL)), &[("bench.policy", &text)], &[])
                .expect("loads");
        let with_model = t.elapsed();
        let e = Engine::new(set);
        full = full.min(t.elapsed());
        black_box((e, with_model));
    }
    let t = Instant::now();
    let set = PolicySet::from_texts(None, &[("bench.policy", &text)], &[]).expect("loads");
    let parse_only = t.elapsed();
    let t = Instant::now();
    let warnings = set.check();
    let check = t.elapsed();
    println!(
        "{:<44} {:>9.1} ms",
        "parse + validate (no casbin)",
        parse_only.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>9.1} ms",
        "parse + validate + index build (Engine)",
        parse_index.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>9.1} ms",
        "casbin enforcer build + model probes",
        full.saturating_sub(parse_index).as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>9.1} ms",
        "full load (parse, casbin, index)",
        full.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>9.1} ms ({} warnings)",
        "check() lints",
        check.as_secs_f64() * 1e3,
        warnings.len()
    );
    println!("(best of {runs} runs)");
}

/// One request's authorization as the session makes it (authorizer from the handle, one check,
/// the decisions taken for the audit), without and with a shadow policy, through warm caches.
fn shadow_cost(min: Duration) {
    println!();
    println!(
        "{:<8} {:>16} {:>18} {:>18} {:>12}",
        "rules", "no shadow", "shadow, agrees", "shadow, 1/8 differ", "ns added"
    );
    for n in [10usize, 10_000] {
        let text = policy(n);
        let users = n.saturating_sub(2).div_ceil(10).max(1);
        let engine = |text: &str| {
            Engine::new(
                PolicySet::from_texts(None, &[("bench.policy", text)], &[])
                    .expect("bench policy loads"),
            )
        };
        // The candidate drops the `orders-N-audit` denies: check kind 3 of 8 would be gained.
        let differing: String = text
            .lines()
            .filter(|l| !(l.contains("-audit,") && l.ends_with("deny")))
            .map(|l| format!("{l}\n"))
            .collect();
        let reqs = requests(users, 4096);
        let per_request = |handle: &PolicyHandle| {
            rate(&reqs, min, |r| {
                let authz = handle.session(r.p.clone(), r.host).keeping_allowed(false);
                let allowed = authz.decide(r.op, r.rtype, &r.name).allowed;
                black_box(authz.take_decisions());
                allowed
            })
        };
        let plain = PolicyHandle::new(engine(&text));
        let same = PolicyHandle::new(engine(&text));
        same.replace_shadow(Some(engine(&text)));
        let differs = PolicyHandle::new(engine(&text));
        differs.replace_shadow(Some(engine(&differing)));
        let (a, b, c) = (
            per_request(&plain),
            per_request(&same),
            per_request(&differs),
        );
        println!(
            "{:<8} {:>16} {:>18} {:>18} {:>12}",
            n,
            format!("{} ({:.0} ns)", fmt_rate(a), 1e9 / a),
            format!("{} ({:.0} ns)", fmt_rate(b), 1e9 / b),
            format!("{} ({:.0} ns)", fmt_rate(c), 1e9 / c),
            format!("{:.0}/{:.0}", 1e9 / b - 1e9 / a, 1e9 / c - 1e9 / a),
        );
    }
}
