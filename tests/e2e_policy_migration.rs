//! Moving ACLs between Apache Kafka and policy files, against a real Kafka 4.4 cluster:
//! `policy export --format kafka-acls` run through Kafka's own AclCommand (kafka-acls.sh),
//! `policy export --apply`, and `policy import` over SCRAM, each round trip lossless; an ACL that a
//! policy file cannot express makes the import fail and write nothing.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::apache::*;
use common::*;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// A policy using every construct Kafka can express: four resource types, literal, prefixed and
/// wildcard patterns, deny rules, host addresses, `User:*` and a group (exported as its members).
const POLICY: &str = "\
g, User:bob, Group:payments
g, User:dave, Group:payments
p, User:alice, Topic, orders, Read, *, allow
p, User:alice, Topic, orders, Write, 10.0.0.7, allow
p, User:alice, Topic, pay-*, Describe, *, allow
p, User:alice, Group, analytics-*, Read, *, allow
p, User:carol, Topic, *, Describe, *, deny
p, User:carol, TransactionalId, tx-1, Write, *, allow
p, User:*, Topic, public, Read, *, allow
p, User:ops, Cluster, kafka-cluster, All, *, allow
p, Group:payments, Topic, payments, Write, *, allow
";

/// The rules of a policy file as a set of lines, group rules expanded to their members (what an
/// export to Kafka and an import back can preserve).
fn rules(text: &str) -> BTreeSet<String> {
    let members: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("g, "))
        .filter_map(|l| {
            let (user, group) = l.split_once(", ")?;
            Some((user.trim().to_string(), group.trim().to_string()))
        })
        .collect();
    let mut out = BTreeSet::new();
    for line in text.lines().map(str::trim).filter(|l| l.starts_with("p,")) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let subjects: Vec<String> = if fields[1].starts_with("Group:") {
            members
                .iter()
                .filter(|(_, g)| g == fields[1])
                .map(|(u, _)| u.clone())
                .collect()
        } else {
            vec![fields[1].to_string()]
        };
        for s in subjects {
            let mut f: Vec<String> = fields.iter().map(|x| x.to_string()).collect();
            f[1] = s;
            out.insert(f.join(", "));
        }
    }
    out
}

fn cli(args: &[&str]) -> CliOutput {
    let out = gateway_cli(args, None);
    assert!(
        out.ok,
        "kafka-gateway {args:?}: {}{}",
        out.stdout, out.stderr
    );
    out
}

fn delete_all_acls(c: &mut RawClient) {
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    let mut f = DeleteAclsFilter::default();
    f.resource_type_filter = 1;
    f.pattern_type_filter = 1;
    f.operation = 1;
    f.permission_type = 1;
    f.resource_name_filter = None;
    f.principal_filter = None;
    f.host_filter = None;
    let mut req = DeleteAclsRequest::default();
    req.filters = vec![f];
    let resp: DeleteAclsResponse = c.request(ApiKey::DeleteAcls, 3, &req);
    assert!(resp.filter_results.iter().all(|r| r.error_code == 0));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

#[test]
fn policy_export_import_round_trips_through_kafka_and_refuses_what_it_cannot_express() {
    let tools = tools();
    let cluster = KafkaCluster::start_with(ClusterOptions::default().user("admin", "admin-secret"));
    let dir = TempDir::new("migration");
    let d = |name: &str| dir.path().join(name);
    write(&d("acl.policy"), POLICY);
    let model = repo_root().join("policies/model.conf");
    let (model, policy) = (
        model.to_str().expect("utf-8"),
        d("acl.policy").to_str().expect("utf-8").to_string(),
    );
    // The login kafka-acls.sh and the import use: SCRAM-SHA-512 as a super user (User:gateway).
    write(
        &d("admin.properties"),
        &format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"{GATEWAY_USER}\" password=\"{GATEWAY_PASSWORD}\";\n"
        ),
    );
    let sasl = cluster.bootstrap(KafkaListener::SaslPlaintext);
    let command_config = d("admin.properties").to_str().expect("utf-8").to_string();

    // 1. The exported script, run with Apache Kafka's own AclCommand.
    let script = d("acls.sh");
    cli(&[
        "policy",
        "--model",
        model,
        "--file",
        &policy,
        "export",
        "--format",
        "kafka-acls",
        "--out",
        script.to_str().expect("utf-8"),
    ]);
    write(
        &d("kafka-acls.sh"),
        &format!(
            "#!/bin/sh\nexec java -Xmx256m -cp '{}' org.apache.kafka.tools.AclCommand \"$@\"\n",
            tools.kafka_cp
        ),
    );
    let made_executable = Command::new("chmod")
        .arg("+x")
        .arg(d("kafka-acls.sh"))
        .status()
        .expect("chmod");
    assert!(made_executable.success());
    let ran = Command::new("sh")
        .arg(&script)
        .env("BOOTSTRAP", &sasl)
        .env("COMMAND_CONFIG", &command_config)
        .env("KAFKA_ACLS", d("kafka-acls.sh"))
        .output()
        .expect("run the exported script");
    assert!(
        ran.status.success(),
        "kafka-acls script failed:\n{}\n{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    let imported = d("imported.policy");
    cli(&[
        "policy",
        "import",
        "--bootstrap",
        &sasl,
        "--command-config",
        &command_config,
        "--out",
        imported.to_str().expect("utf-8"),
    ]);
    let back = std::fs::read_to_string(&imported).expect("imported policy");
    assert_eq!(
        rules(&back),
        rules(POLICY),
        "round trip through kafka-acls.sh:\n{back}"
    );
    cli(&[
        "policy",
        "--model",
        model,
        "--file",
        imported.to_str().expect("utf-8"),
        "check",
    ]);
    println!(
        "RESULT policy -> kafka-acls.sh (Kafka's AclCommand) -> policy import: {} rules, identical",
        rules(POLICY).len()
    );

    // 2. The same with --apply (CreateAcls from the gateway itself) on an emptied cluster.
    let mut admin = RawClient::connect(cluster.socket(KafkaListener::Plaintext));
    delete_all_acls(&mut admin);
    cli(&[
        "policy",
        "--model",
        model,
        "--file",
        &policy,
        "export",
        "--apply",
        "--bootstrap",
        &sasl,
        "--command-config",
        &command_config,
    ]);
    let again = cli(&[
        "policy",
        "import",
        "--bootstrap",
        &sasl,
        "--command-config",
        &command_config,
    ]);
    assert_eq!(
        rules(&again.stdout),
        rules(POLICY),
        "round trip through --apply"
    );

    // 3. Kafka ACLs the gateway's policy syntax cannot express: the import fails, names each one,
    //    and leaves the output file as it was.
    let mut req = CreateAclsRequest::default();
    for (rtype, name, pattern) in [(2i8, "foo*", 3i8), (6, "token-1", 3)] {
        let mut a = AclCreation::default();
        a.resource_type = rtype;
        a.resource_name = StrBytes::from_string(name.to_string());
        a.resource_pattern_type = pattern;
        a.principal = StrBytes::from_static_str("User:alice");
        a.host = StrBytes::from_static_str("*");
        a.operation = 8;
        a.permission_type = 3;
        req.creations.push(a);
    }
    let resp: CreateAclsResponse = admin.request(ApiKey::CreateAcls, 3, &req);
    assert!(resp.results.iter().all(|r| r.error_code == 0), "{resp:?}");
    let refused = gateway_cli(
        &[
            "policy",
            "import",
            "--bootstrap",
            &sasl,
            "--command-config",
            &command_config,
            "--out",
            imported.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(
        !refused.ok,
        "an inexpressible ACL was imported:\n{}",
        refused.stdout
    );
    assert!(refused.stderr.contains("foo*"), "{}", refused.stderr);
    assert!(
        refused.stderr.to_lowercase().contains("delegation"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&imported).expect("still there"),
        back,
        "the failed import changed the output file"
    );
    println!(
        "RESULT import refused inexpressible ACLs: {}",
        refused.stderr.lines().next().unwrap_or_default()
    );
}
