//! Shadow policy end to end (issue 16 part 1): Apache Kafka 4.4, a SCRAM listener, an enforced
//! policy that lets librdkafka and the Java 4.4 client do everything they need, and a shadow
//! policy that takes some rights away and adds others. The clients are unaffected; the trail has
//! `shadow_decision` records for exactly the differences (principal, resource, operation,
//! direction, both deciding rules); the metric counts them; `policy diff --audit` summarizes
//! them; and rewriting the shadow file on disk changes which differences are reported.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::apache::*;
use common::*;

const LISTENER: ListenerSpec = ListenerSpec {
    name: "sasl",
    tls: false,
    client_auth: "none",
    sasl: r#""SCRAM-SHA-256""#,
};

/// Everything the workloads need: create, produce, consume their `sh-*` topics with `sh-*` groups.
const ENFORCED: &str = "p, User:alice, Topic, sh-*, All, *, allow\n\
                        p, User:alice, Group, sh-*, Read, *, allow\n";

/// The candidate: alice would lose Read on sh-rk (line 2) and gain Create on the cluster (line 4),
/// which both clients' CreateTopics asks first.
const SHADOW_V1: &str = "p, User:alice, Topic, sh-*, All, *, allow\n\
                         p, User:alice, Topic, sh-rk, Read, *, deny\n\
                         p, User:alice, Group, sh-*, Read, *, allow\n\
                         p, User:alice, Cluster, kafka-cluster, Create, *, allow\n";

/// The next candidate: only Write on sh-jv is lost.
const SHADOW_V2: &str = "p, User:alice, Topic, sh-*, All, *, allow\n\
                         p, User:alice, Topic, sh-jv, Write, *, deny\n\
                         p, User:alice, Group, sh-*, Read, *, allow\n";

/// The 0.5 s poll and 0.5 s settle time, with room for a busy host.
const RELOAD_WITHIN: Duration = Duration::from_secs(10);

struct Setup {
    dir: TempDir,
    _broker: KafkaCluster,
    gateway: Gateway,
    tools: Tools,
    shadow: PathBuf,
}

impl Setup {
    fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit")
    }

    fn roundtrip(&self, client: &str, topic: &str) {
        let bootstrap = self.gateway.addr(LISTENER.name).to_string();
        let args = [
            "roundtrip",
            "--bootstrap",
            &bootstrap,
            "--topic",
            topic,
            "--count",
            "200",
            "--group",
            "sh-group",
            "--sasl-mechanism",
            "SCRAM-SHA-256",
            "--username",
            "alice",
            "--password",
            "alice-secret",
        ];
        let r = match client {
            "librdkafka" => python_workload(&self.tools, &args),
            _ => java44_workload(&self.tools, &args),
        };
        // The shadow is never enforced: the roundtrip completes, every record once.
        assert_roundtrip(&format!("{client} on {topic}"), &r, 200);
    }

    fn records(&self) -> Vec<serde_json::Value> {
        trail_records(&self.audit_dir())
    }
}

fn setup() -> Setup {
    let tools = tools();
    let dir = TempDir::new("shadow");
    let broker = KafkaCluster::start();
    let users = dir.path().join("users.toml");
    for user in ["admin", "alice"] {
        add_scram_user(&users, user, &format!("{user}-secret"), &["SCRAM-SHA-256"]);
    }
    let model = dir.path().join("model.conf");
    std::fs::copy(repo_root().join("policies/model.conf"), &model).expect("copy model");
    let policy = dir.path().join("acl.policy");
    std::fs::write(&policy, ENFORCED).expect("write policy");
    let shadow = dir.path().join("shadow.policy");
    std::fs::write(&shadow, SHADOW_V1).expect("write shadow");
    let audit_dir = dir.path().join("audit");
    let extra = format!(
        "[authentication]\ncredentials_file = {users:?}\ntimeout = \"5s\"\n\n\
         [authorization]\nmodel = {model:?}\npolicy_files = [{policy:?}]\n\
         shadow_policy_files = [{shadow:?}]\nsuper_users = [\"User:admin\"]\n\n\
         [audit]\ndir = {audit_dir:?}\nlevel = \"admin\"\n"
    );
    let (text, ports, admin) = gateway_config(&broker.upstream(), &[LISTENER], None, &extra);
    let gateway = Gateway::start(dir.path(), &text, ports, admin);
    Setup {
        dir,
        _broker: broker,
        gateway,
        tools,
        shadow,
    }
}

fn shadow_records(records: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    records
        .iter()
        .filter(|r| r["event"] == "shadow_decision")
        .collect()
}

/// Shadow records of one difference: (change, operation, resource_type, resource_name).
fn of<'a>(
    records: &[&'a serde_json::Value],
    (change, op, rtype, name): (&str, &str, &str, &str),
) -> Vec<&'a serde_json::Value> {
    records
        .iter()
        .copied()
        .filter(|r| {
            r["change"] == change
                && r["operation"] == op
                && r["resource_type"] == rtype
                && r["resource_name"] == name
        })
        .collect()
}

fn rule_at(side: &serde_json::Value) -> String {
    let rule = &side["rule"];
    if rule.is_null() {
        return "none".into();
    }
    let file = rule["file"].as_str().unwrap_or_default();
    let file = Path::new(file)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{file}:{}", rule["line"])
}

fn metric(s: &Setup, change: &str, op: &str, rtype: &str) -> u64 {
    metric_sum(
        &s.gateway.metrics(),
        &format!(
            "kafka_gateway_shadow_decisions_total{{change=\"{change}\",operation=\"{op}\",resource_type=\"{rtype}\"}}"
        ),
    )
}

fn count(records: &[&serde_json::Value]) -> u64 {
    records
        .iter()
        .map(|r| r["repeated"].as_u64().or(r["more"].as_u64()).unwrap_or(1))
        .sum()
}

const LOSE_READ_RK: (&str, &str, &str, &str) = ("lose", "Read", "Topic", "sh-rk");
const GAIN_CREATE: (&str, &str, &str, &str) = ("gain", "Create", "Cluster", "kafka-cluster");
const LOSE_WRITE_JV: (&str, &str, &str, &str) = ("lose", "Write", "Topic", "sh-jv");

#[test]
fn shadow_differences_are_recorded_counted_summarized_and_follow_reloads() {
    let s = setup();
    s.gateway.wait_ready(Duration::from_secs(30));
    let start = s.records();
    let loaded = start
        .iter()
        .find(|r| r["event"] == "reload" && r["what"] == "shadow_policy")
        .expect("the shadow policy's load is recorded at start");
    assert_eq!(loaded["outcome"], "ok", "{loaded}");
    let v1 = loaded["loaded_hash"].as_str().expect("hash").to_string();

    s.roundtrip("librdkafka", "sh-rk");
    s.roundtrip("java", "sh-jv");

    let records = s.records();
    let shadow = shadow_records(&records);
    let lose = of(&shadow, LOSE_READ_RK);
    let gain = of(&shadow, GAIN_CREATE);
    assert!(
        !lose.is_empty(),
        "no 'lose Read on sh-rk' record: {shadow:#?}"
    );
    assert!(
        !gain.is_empty(),
        "no 'gain Create on the cluster' record: {shadow:#?}"
    );
    for r in &lose {
        assert_eq!(r["principal"], "User:alice");
        assert_eq!(r["enforced"]["decision"], "allow");
        assert_eq!(r["shadow"]["decision"], "deny");
        assert_eq!(rule_at(&r["enforced"]), "acl.policy:1");
        assert_eq!(rule_at(&r["shadow"]), "shadow.policy:2");
        assert_eq!(r["shadow"]["policy_hash"], v1.as_str());
    }
    for r in &gain {
        assert_eq!(r["principal"], "User:alice");
        assert_eq!(r["api_name"], "CreateTopics");
        assert_eq!(r["enforced"]["decision"], "deny");
        assert_eq!(r["shadow"]["decision"], "allow");
        assert_eq!(rule_at(&r["enforced"]), "none", "default deny");
        assert_eq!(rule_at(&r["shadow"]), "shadow.policy:4");
    }
    // Both clients created their topic: a gain from each connection that did.
    assert!(count(&gain) >= 2, "{gain:#?}");
    // Only real differences: nothing about sh-jv's Read, nor any other check both policies agree on.
    let other: Vec<_> = shadow
        .iter()
        .filter(|r| of(&[r], LOSE_READ_RK).is_empty() && of(&[r], GAIN_CREATE).is_empty())
        .collect();
    assert!(other.is_empty(), "unexpected differences: {other:#?}");
    // Enforcement unchanged: the shadow's "deny Read on sh-rk" denied nothing. (The enforced
    // policy's own denials are the cluster checks Kafka asks before the topic's, and the
    // internal topics a full Metadata listing leaves out.)
    let denied: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "authz_decision" && r["decision"] == "deny")
        .filter(|r| {
            r["resource_name"]
                .as_str()
                .is_some_and(|n| n.starts_with("sh-"))
        })
        .collect();
    assert!(denied.is_empty(), "the shadow must never deny: {denied:#?}");

    // The metric counts every difference (records stand for at least as many: summaries close
    // with the connections, so the trail can only lag the counter).
    eventually("the metric counts the differences", RELOAD_WITHIN, || {
        metric(&s, "lose", "Read", "Topic") >= count(&lose) && count(&lose) > 0
    });
    assert!(metric(&s, "gain", "Create", "Cluster") >= count(&gain));
    assert_eq!(metric(&s, "lose", "Write", "Topic"), 0);

    // The summary an operator reads.
    let audit = s.audit_dir();
    let audit = audit.to_str().expect("utf-8");
    let diff = gateway_cli(&["policy", "diff", "--audit", audit], None);
    assert!(diff.ok, "policy diff failed: {}", diff.stderr);
    println!("policy diff:\n{}", diff.stdout);
    let lose_line = diff
        .stdout
        .lines()
        .find(|l| l.starts_with("User:alice would lose Read on Topic:sh-rk: "))
        .unwrap_or_else(|| panic!("no lose line in:\n{}", diff.stdout));
    assert!(
        lose_line.contains(" from 1 address (first 20")
            && lose_line.contains("acl.policy:1, shadow ")
            && lose_line.ends_with("shadow.policy:2)"),
        "{lose_line}"
    );
    assert!(
        diff.stdout
            .contains("User:alice would gain Create on Cluster:kafka-cluster: "),
        "{}",
        diff.stdout
    );
    let json = gateway_cli(
        &[
            "policy", "diff", "--audit", audit, "--since", "1h", "--json",
        ],
        None,
    );
    assert!(json.ok, "{}", json.stderr);
    let rows: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", json.stdout);
    assert!(rows.iter().any(|r| r["change"] == "lose"
        && r["resource_name"] == "sh-rk"
        && r["requests"] == count(&lose)
        && r["shadow_rules"][0]
            .as_str()
            .is_some_and(|x| x.ends_with("shadow.policy:2"))));
    // The trail with the new records still verifies and queries.
    let verify = gateway_cli(&["audit", "verify", audit], None);
    assert!(
        verify.ok,
        "audit verify: {}{}",
        verify.stdout, verify.stderr
    );
    let query = gateway_cli(
        &["audit", "query", audit, "--event", "shadow_decision"],
        None,
    );
    assert!(
        query.ok && query.stdout.contains("shadow would lose"),
        "{}",
        query.stdout
    );

    // A new candidate on disk: reloaded without a restart; the old differences stop, the new
    // one appears, with the new version's hash.
    std::fs::write(&s.shadow, SHADOW_V2).expect("rewrite shadow");
    let mut v2 = String::new();
    let mut reload_seq = 0;
    eventually("the shadow reload is recorded", RELOAD_WITHIN, || {
        let found = s.records().into_iter().find(|r| {
            r["event"] == "reload"
                && r["what"] == "shadow_policy"
                && r["loaded_hash"] != v1.as_str()
                && r["outcome"] == "ok"
        });
        if let Some(r) = found {
            v2 = r["loaded_hash"].as_str().unwrap_or_default().to_string();
            reload_seq = r["seq"].as_u64().unwrap_or_default();
        }
        reload_seq > 0
    });
    s.roundtrip("librdkafka", "sh-rk");
    s.roundtrip("java", "sh-jv");
    let records = s.records();
    let after: Vec<serde_json::Value> = records
        .into_iter()
        .filter(|r| r["seq"].as_u64().unwrap_or_default() > reload_seq)
        .collect();
    let shadow = shadow_records(&after);
    assert!(of(&shadow, LOSE_READ_RK).is_empty(), "{shadow:#?}");
    assert!(of(&shadow, GAIN_CREATE).is_empty(), "{shadow:#?}");
    let lose_write = of(&shadow, LOSE_WRITE_JV);
    assert!(
        !lose_write.is_empty(),
        "no 'lose Write on sh-jv': {shadow:#?}"
    );
    for r in &lose_write {
        assert_eq!(r["shadow"]["policy_hash"], v2.as_str());
        assert_eq!(rule_at(&r["shadow"]), "shadow.policy:2");
        assert_eq!(r["api_name"], "Produce");
    }
    // 200 records produced in batches: each Produce is one check, repeats summarized; the
    // metric counts every one.
    assert!(metric(&s, "lose", "Write", "Topic") >= count(&lose_write));

    // A broken candidate: recorded as a failed reload, and no shadow at all until it loads;
    // the clients do not notice.
    std::fs::write(&s.shadow, "p, User:alice, Topic\n").expect("break shadow");
    let mut broken_seq = 0;
    eventually(
        "the failed shadow reload is recorded",
        RELOAD_WITHIN,
        || {
            broken_seq = s
                .records()
                .iter()
                .find(|r| {
                    r["event"] == "reload"
                        && r["what"] == "shadow_policy"
                        && r["outcome"] == "error"
                })
                .and_then(|r| r["seq"].as_u64())
                .unwrap_or_default();
            broken_seq > 0
        },
    );
    let failed = s
        .records()
        .into_iter()
        .find(|r| r["seq"] == broken_seq)
        .expect("record");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("shadow.policy:1")),
        "{failed}"
    );
    // `policy check` with the gateway's config finds the same error, with file:line.
    let config = s.gateway.config.to_str().expect("utf-8").to_string();
    let check = gateway_cli(&["policy", "check", "--config", &config], None);
    assert!(
        !check.ok,
        "a broken shadow must fail policy check: {}",
        check.stdout
    );
    assert!(
        format!("{}{}", check.stdout, check.stderr).contains("shadow.policy:1"),
        "{}{}",
        check.stdout,
        check.stderr
    );
    s.roundtrip("java", "sh-jv");
    let later: Vec<serde_json::Value> = s
        .records()
        .into_iter()
        .filter(|r| r["seq"].as_u64().unwrap_or_default() > broken_seq)
        .collect();
    assert!(
        shadow_records(&later).is_empty(),
        "a broken shadow decides nothing"
    );
}
