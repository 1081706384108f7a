//! Fuzzes the parsers of the files an operator writes: policy files and the casbin model
//! (`policy::files::PolicySet`), the SCRAM credential file (`CredentialStore::from_bytes`) and the
//! gateway config (`Config::parse`).
//!
//! Input: `selector u8 | file contents`, selector % 4:
//! - 0: a policy file, loaded with the sample model (`policies/model.conf`);
//! - 1: a model file, loaded with the sample policy (`policies/acl.policy`);
//! - 2: a credential file;
//! - 3: a gateway config, its relative paths resolved against `policies/` (so the sample config's
//!   `users.toml`, `model.conf`, ... exist there).
//!
//! Policy, model and config files are read with `read_to_string` by the gateway, so contents that
//! are not UTF-8 are skipped here (they never reach the parsers).
//!
//! Properties:
//! - nothing panics; every problem is an error value. One exception is made, as the gateway makes
//!   it: casbin (and its rhai engine) panics on some model texts, and the gateway catches those
//!   panics and turns them into load errors. libFuzzer's panic hook aborts even on a caught panic,
//!   so panics raised inside casbin/rhai code are let unwind to the gateway's `catch_unwind`; a
//!   panic anywhere else (or one nobody catches) is still a crash;
//! - a policy file loads with the sample model exactly when it loads without casbin (the model
//!   agrees with the engine, or the load-time probe would refuse it); then the engine's decision
//!   and casbin's agree for requests built from the first rules, and the lint (`check`) runs;
//! - a loaded credential store only holds SCRAM credentials with iteration counts in Kafka's range,
//!   and a decoy can be shaped for it;
//! - a config that parses can print its redacted summary.
//!
//! `Config::parse` reads `password_file` and checks that the files it names exist. Inputs naming
//! a path under /dev, /proc or /sys, or a file that is not a regular file or directory or is over
//! 16 MiB, are skipped, so a fuzzed config cannot make the harness block on a FIFO or read
//! /dev/zero (an operator's config is trusted to that extent; the fuzzer's is not).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Component, Path, PathBuf};

use kafka_gateway::auth::credentials::{CredentialStore, Decoy, ITERATIONS};
use kafka_gateway::auth::{Mechanism, Principal};
use kafka_gateway::config::Config;
use kafka_gateway::policy::engine::Engine;
use kafka_gateway::policy::files::{HostSpec, Pattern, PolicySet, Subject};
use kafka_gateway::policy::{Operation, ResourceType};
use kafka_gateway_fuzz::caught_panics::{gateway_catches, let_unwind_from};
use libfuzzer_sys::fuzz_target;

const SAMPLE_MODEL: &str = include_str!("../../policies/model.conf");
const SAMPLE_POLICY: &str = include_str!("../../policies/acl.policy");

/// Rules per input whose decision is compared between the engine and casbin (casbin is linear in
/// the rules, so a handful keeps the target fast).
const COMPARED_RULES: usize = 8;

fn policy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// `base.join(s)` with `.` and `..` resolved lexically.
fn normalize(base: &Path, s: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(s).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether some string in the config names a path the harness must not let the gateway read.
fn names_unsafe_path(value: &toml::Value, base: &Path) -> bool {
    match value {
        toml::Value::String(s) => {
            if s.contains('\0') {
                return false; // no such path: the gateway's read fails
            }
            let path = normalize(base, s);
            if ["/dev", "/proc", "/sys", "/run", "/var/run"]
                .iter()
                .any(|d| path.starts_with(d))
            {
                return true;
            }
            match std::fs::metadata(&path) {
                Ok(m) => !(m.is_dir() || (m.is_file() && m.len() <= 16 << 20)),
                Err(_) => false,
            }
        }
        toml::Value::Array(items) => items.iter().any(|v| names_unsafe_path(v, base)),
        toml::Value::Table(t) => t.values().any(|v| names_unsafe_path(v, base)),
        _ => false,
    }
}

/// A request the rule is about: a principal it applies to, a host it matches, its operation (or
/// Describe for All), its type and a name its pattern matches.
fn request_for(
    set: &PolicySet,
    rule: &kafka_gateway::policy::files::Rule,
) -> Option<(Principal, IpAddr, Operation, ResourceType, String)> {
    let principal = match &rule.subject {
        Subject::AnyUser => Principal::user("fuzz-anyone"),
        Subject::User(u) => Principal::user(u.clone()),
        Subject::Group(g) => Principal::user(
            set.memberships()
                .iter()
                .find(|m| &m.group == g)?
                .user
                .clone(),
        ),
    };
    let host = match rule.host {
        HostSpec::Any => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        HostSpec::Ip(ip) => ip,
        HostSpec::Cidr { net, .. } => net,
    };
    let name = match &rule.pattern {
        Pattern::Any => "fuzz-any-name".to_string(),
        Pattern::Literal(l) => l.clone(),
        Pattern::Prefix(p) => format!("{p}x"),
    };
    let op = if rule.op == Operation::All {
        Operation::Describe
    } else {
        rule.op
    };
    Some((principal, host, op, rule.rtype, name))
}

fn policy(model: &str, policy: &str) {
    let files = [("fuzz.policy", policy)];
    let plain = PolicySet::from_texts(None, &files, &[]);
    let with_model =
        gateway_catches(|| PolicySet::from_texts(Some(("model.conf", model)), &files, &[]));
    let set = match (with_model, plain, model == SAMPLE_MODEL) {
        (Ok(set), Ok(_), _) => set,
        (Err(_), Err(_), _) | (_, _, false) => return,
        (Ok(_), Err(e), true) => panic!("loads only with the model: {e:?}"),
        (Err(e), Ok(_), true) => {
            panic!("the sample model refuses a policy the engine loads: {e:?}")
        }
    };
    let _ = set.check();
    let _ = set.principals();
    if model != SAMPLE_MODEL {
        // A fuzzed matcher that passes the load-time probe may still disagree elsewhere: the probe
        // is documented as a sanity check of edits, not a proof.
        return;
    }
    let requests: Vec<_> = set
        .rules()
        .iter()
        .take(COMPARED_RULES)
        .filter_map(|r| request_for(&set, r))
        .collect();
    let engine = Engine::new(set);
    let set = engine.policy().expect("an engine built from a set has it");
    for (principal, host, op, rtype, name) in requests {
        let decision = engine.decide(&principal, host, op, rtype, &name);
        let _ = engine.describe(decision.reason);
        let _ = engine.decide_any(&principal, host, op, rtype);
        let casbin = gateway_catches(|| set.casbin_enforce(&principal, host, op, rtype, &name));
        if let Some(Ok(casbin)) = casbin {
            assert_eq!(
                casbin, decision.allowed,
                "engine and casbin disagree: {principal} from {host}, {op} on {rtype} {name:?}"
            );
        }
    }
}

fn credentials(bytes: &[u8]) {
    let Ok(store) = CredentialStore::from_bytes(Path::new("fuzz-users.toml"), bytes) else {
        return;
    };
    for user in store.users() {
        for (mech, iterations) in &user.mechanisms {
            assert!(
                ITERATIONS.contains(iterations),
                "{iterations} iterations loaded"
            );
            let c = store
                .get(&user.name, *mech)
                .expect("listed credentials can be looked up");
            assert!(matches!(
                c.mechanism(),
                Mechanism::ScramSha256 | Mechanism::ScramSha512
            ));
        }
    }
    let _ = store.fingerprint();
    let decoy = Decoy::for_store(&store);
    assert!(ITERATIONS.contains(&decoy.iterations()));
}

fn config(text: &str) {
    let base = policy_dir();
    if let Ok(table) = text.parse::<toml::Table>() {
        if table.values().any(|v| names_unsafe_path(v, &base)) {
            return;
        }
    }
    if let Ok(cfg) = Config::parse(text, &base) {
        let _ = cfg.redacted_summary();
    }
}

fuzz_target!(|data: &[u8]| {
    let_unwind_from(&["/casbin-", "/rhai-"]);
    let [selector, contents @ ..] = data else {
        return;
    };
    match selector % 4 {
        2 => credentials(contents),
        sel => {
            let Ok(text) = std::str::from_utf8(contents) else {
                return;
            };
            match sel {
                0 => policy(SAMPLE_MODEL, text),
                1 => policy(text, SAMPLE_POLICY),
                _ => config(text),
            }
        }
    }
});
