//! The casbin side of a policy: checking the model file, building an `Enforcer` from it and the
//! parsed rules, and asking it. Never on the hot path (casbin evaluates every rule for every
//! request); kept to prove the shipped model encodes the engine's semantics.
//!
//! casbin's constructors are `async` only because they can read files through tokio; given the
//! model as text they never wait, so they are driven here by polling with a no-op waker. That works
//! the same from plain threads (the CLI) and from inside a tokio runtime, and never blocks on one.

use std::future::Future;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use casbin::function_map::{dynamic_to_str, OperatorFunction};
use casbin::rhai::Dynamic;
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, Model};

use super::{canonical_ip, HostSpec, Pattern, PolicySet, Subject};
use crate::auth::Principal;
use crate::policy::model::{Operation, ResourceType};

/// The only policy effect with the gateway's semantics ("allowed if some ALLOW matches and no DENY
/// does"), as written in the model file.
pub const REQUIRED_EFFECT: &str = "some(where (p.eft == allow)) && !some(where (p.eft == deny))";

const REQUEST: [&str; 5] = ["sub", "host", "rtype", "name", "op"];
const POLICY: [&str; 6] = ["sub", "rtype", "pattern", "op", "host", "eft"];

fn block_on<F: Future>(fut: F) -> Result<F::Output, String> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    // casbin's futures complete on the first poll given in-memory input; a few retries cost nothing
    // and keep this honest if a future yields cooperatively.
    for _ in 0..64 {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        std::thread::yield_now();
    }
    Err("casbin did not finish loading the model without waiting (internal error)".into())
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Parses the model text and checks it has the sections and definitions the gateway feeds it.
pub(super) fn check_model(text: &str) -> Result<DefaultModel, Vec<String>> {
    let model = catch_unwind(|| block_on(DefaultModel::from_str(text)))
        .map_err(|p| vec![format!("casbin failed on the model: {}", panic_message(p))])?
        .map_err(|e| vec![e])?
        .map_err(|e| vec![format!("the model does not parse: {e}")])?;
    let mut errs = Vec::new();
    let sections = model.get_model();
    let get = |sec: &str| sections.get(sec).and_then(|m| m.get(sec));
    let tokens_ok = |sec: &str, want: &[&str]| {
        get(sec).is_some_and(|a| {
            a.tokens.len() == want.len()
                && a.tokens
                    .iter()
                    .zip(want)
                    .all(|(t, w)| *t == format!("{sec}_{w}"))
        })
    };
    if get("r").is_none() {
        errs.push(format!(
            "missing [request_definition] (expected `r = {}`)",
            REQUEST.join(", ")
        ));
    } else if !tokens_ok("r", &REQUEST) {
        errs.push(format!("[request_definition] must be exactly `r = {}`: the gateway sends requests in this order", REQUEST.join(", ")));
    }
    if get("p").is_none() {
        errs.push(format!(
            "missing [policy_definition] (expected `p = {}`)",
            POLICY.join(", ")
        ));
    } else if !tokens_ok("p", &POLICY) {
        errs.push(format!(
            "[policy_definition] must be exactly `p = {}`: the gateway loads rules in this order",
            POLICY.join(", ")
        ));
    }
    match get("g") {
        None => {
            errs.push("missing [role_definition] (expected `g = _, _` for group membership)".into())
        }
        Some(a) if a.value.replace(' ', "") != "_,_" => errs.push(format!(
            "[role_definition] must be `g = _, _` (user, group), not `{}`",
            a.value
        )),
        Some(_) => {}
    }
    let effect = REQUIRED_EFFECT.replace("p.eft", "p_eft");
    match get("e") {
        None => errs.push(format!("missing [policy_effect] (expected `e = {REQUIRED_EFFECT}`)")),
        Some(a) if a.value != effect => errs.push(format!(
            "[policy_effect] must be exactly `e = {REQUIRED_EFFECT}` (allow unless denied), not `{}`",
            a.value.replace("p_eft", "p.eft")
        )),
        Some(_) => {}
    }
    if get("m").is_none() {
        errs.push("missing [matchers] (expected `m = ...`)".into());
    }
    if errs.is_empty() {
        Ok(model)
    } else {
        Err(errs)
    }
}

/// `kafkaNameMatch(r.name, p.pattern)`: `*` matches every name, `prefix*` every name starting with
/// `prefix`, anything else only itself.
fn name_match(name: Dynamic, pattern: Dynamic) -> Dynamic {
    let (name, pattern) = (dynamic_to_str(&name), dynamic_to_str(&pattern));
    let m = pattern == "*"
        || pattern == name
        || pattern
            .strip_suffix('*')
            .is_some_and(|prefix| name.starts_with(prefix));
    m.into()
}

/// `kafkaOpMatch(r.op, p.op, p.eft)`: `All` matches every operation; an ALLOW of READ, WRITE,
/// DELETE or ALTER also matches DESCRIBE and an ALLOW of ALTER_CONFIGS matches DESCRIBE_CONFIGS;
/// a DENY matches only its own operation (or `All`).
fn op_match(requested: Dynamic, rule: Dynamic, eft: Dynamic) -> Dynamic {
    let (requested, rule, eft) = (
        dynamic_to_str(&requested),
        dynamic_to_str(&rule),
        dynamic_to_str(&eft),
    );
    let implied = match requested.as_ref() {
        "Describe" => ["Read", "Write", "Delete", "Alter"].contains(&rule.as_ref()),
        "DescribeConfigs" => rule == "AlterConfigs",
        _ => false,
    };
    (rule == "All" || rule == requested || (eft == "allow" && implied)).into()
}

/// `kafkaHostMatch(r.host, p.host)`: `*`, an exact address, or a CIDR block.
fn host_match(host: Dynamic, spec: Dynamic) -> Dynamic {
    let (host, spec) = (dynamic_to_str(&host), dynamic_to_str(&spec));
    let m = match (host.parse::<IpAddr>(), HostSpec::parse(&spec)) {
        (Ok(ip), Ok(spec)) => spec.matches(canonical_ip(ip)),
        (_, Ok(HostSpec::Any)) => true,
        _ => false,
    };
    m.into()
}

/// Builds the enforcer from the model text and the parsed rules and memberships.
pub(super) fn build(text: &str, set: &PolicySet) -> Result<Enforcer, Vec<String>> {
    let model = check_model(text)?;
    let p: Vec<Vec<String>> = set.rules().iter().map(|r| r.casbin_fields()).collect();
    let g: Vec<Vec<String>> = set
        .memberships()
        .iter()
        .map(|m| vec![format!("User:{}", m.user), format!("Group:{}", m.group)])
        .collect();
    let built = catch_unwind(AssertUnwindSafe(|| -> Result<Enforcer, String> {
        let mut e = block_on(Enforcer::new_raw(model, MemoryAdapter::default()))?
            .map_err(|e| format!("casbin rejected the model: {e}"))?;
        e.add_function("kafkaNameMatch", OperatorFunction::Arg2(name_match));
        e.add_function("kafkaOpMatch", OperatorFunction::Arg3(op_match));
        e.add_function("kafkaHostMatch", OperatorFunction::Arg2(host_match));
        // Straight into the model: the adapter is only casbin's persistence, unused here.
        e.get_mut_model().add_policies("p", "p", p);
        if !g.is_empty() {
            e.get_mut_model().add_policies("g", "g", g);
        }
        e.build_role_links()
            .map_err(|e| format!("casbin rejected the group memberships: {e}"))?;
        Ok(e)
    }));
    match built {
        Ok(Ok(e)) => Ok(e),
        Ok(Err(m)) => Err(vec![m]),
        Err(p) => Err(vec![format!(
            "casbin failed on the model: {}",
            panic_message(p)
        )]),
    }
}

/// Asks the enforcer (no super users: they are not part of the model).
pub(super) fn enforce(
    e: &Enforcer,
    principal: &Principal,
    host: IpAddr,
    op: Operation,
    rtype: ResourceType,
    name: &str,
) -> Result<bool, String> {
    let req = vec![
        principal.to_string(),
        canonical_ip(host).to_string(),
        rtype.name().to_string(),
        name.to_string(),
        op.name().to_string(),
    ];
    match catch_unwind(AssertUnwindSafe(|| e.enforce(req))) {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(err)) => Err(format!("the model's matcher failed: {err}")),
        Err(p) => Err(format!(
            "casbin failed evaluating the model: {}",
            panic_message(p)
        )),
    }
}

/// Requests derived from a few rules (the request each rule is about, and variants that differ in
/// one respect: resource type, name, host, implied operation), plus one nothing should allow,
/// asked of both the enforcer and a linear reading of the rules: the model must evaluate without
/// error and agree. (Not exhaustive: the equivalence tests are; this catches an edited model.)
pub(super) fn probe(e: &Enforcer, set: &PolicySet) -> Result<(), String> {
    const PROBE_HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const OTHER_HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));
    let rules = set.rules();
    let mut requests = vec![(
        Principal::user("gateway-model-probe"),
        PROBE_HOST,
        Operation::Read,
        ResourceType::Topic,
        "gateway-model-probe".to_string(),
    )];
    let picks = rules.len().min(2);
    for k in 0..picks {
        let r = &rules[k * rules.len() / picks];
        let principal = match &r.subject {
            Subject::AnyUser => Principal::user("gateway-model-probe"),
            Subject::User(u) => Principal::user(u.clone()),
            Subject::Group(g) => match set.memberships().iter().find(|m| &m.group == g) {
                Some(m) => Principal::user(m.user.clone()),
                None => continue,
            },
        };
        let host = match r.host {
            HostSpec::Any => PROBE_HOST,
            HostSpec::Ip(ip) => ip,
            HostSpec::Cidr { net, .. } => net,
        };
        let name = match &r.pattern {
            Pattern::Any => "gateway-model-probe".to_string(),
            Pattern::Literal(l) => l.clone(),
            Pattern::Prefix(p) => format!("{p}x"),
        };
        let op = if r.op == Operation::All {
            Operation::Describe
        } else {
            r.op
        };
        let other_rtype = ResourceType::ALL[(ResourceType::ALL
            .iter()
            .position(|t| *t == r.rtype)
            .unwrap_or(0)
            + 1)
            % 4];
        requests.push((principal.clone(), host, op, r.rtype, name.clone()));
        requests.push((principal.clone(), host, op, other_rtype, name.clone()));
        if let Pattern::Literal(l) | Pattern::Prefix(l) = &r.pattern {
            requests.push((principal.clone(), host, op, r.rtype, format!("\u{1}{l}")));
        }
        if r.host != HostSpec::Any {
            requests.push((principal.clone(), OTHER_HOST, op, r.rtype, name.clone()));
        }
        if let Some(implied) = Operation::ALL
            .into_iter()
            .find(|o| o.implied_by().contains(&r.op))
        {
            requests.push((principal, host, implied, r.rtype, name));
        }
    }
    for (principal, host, op, rtype, name) in requests {
        let casbin = enforce(e, &principal, host, op, rtype, &name)?;
        let rules = set.decide_linear(&principal, host, op, rtype, &name);
        if casbin != rules {
            return Err(format!(
                "the model does not encode the gateway's rules: for {principal} from {host}, {op} on {rtype} `{}` it says {}, the rules say {} (only comments may be changed in the model)",
                name.escape_debug(),
                if casbin { "allow" } else { "deny" },
                if rules { "allow" } else { "deny" },
            ));
        }
    }
    Ok(())
}
