use std::collections::BTreeSet;
use std::net::IpAddr;

use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::auth::Principal;
use crate::policy::engine::Engine;

const FILE: &str = "acl.policy";

fn load(text: &str, supers: &[&str]) -> PolicySet {
    let supers: Vec<String> = supers.iter().map(|s| s.to_string()).collect();
    match PolicySet::from_texts(None, &[(FILE, text)], &supers) {
        Ok(s) => s,
        Err(e) => panic!("test policy does not load: {e}\n{text}"),
    }
}

fn exported(text: &str, target: ExportTarget) -> Export {
    match export(&load(text, &[]), target) {
        Ok(e) => e,
        Err(e) => panic!("export failed: {e}"),
    }
}

fn bindings(text: &str) -> Vec<AclBinding> {
    exported(text, ExportTarget::CreateAcls)
        .acls
        .into_iter()
        .map(|a| a.binding)
        .collect()
}

fn export_problems(text: &str, target: ExportTarget) -> Vec<String> {
    match export(&load(text, &[]), target) {
        Ok(e) => panic!("expected export problems, got {:?}", e.acls),
        Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
    }
}

fn binding(
    rtype: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    host: &str,
    op: Operation,
    permission: Effect,
) -> AclBinding {
    AclBinding {
        resource_type: rtype,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: principal.into(),
        host: host.into(),
        operation: op,
        permission,
    }
}

fn wire_acl(rt: i8, name: &str, pt: i8, principal: &str, host: &str, op: i8, perm: i8) -> WireAcl {
    WireAcl {
        resource_type: rt,
        resource_name: name.into(),
        pattern_type: pt,
        principal: principal.into(),
        host: host.into(),
        operation: op,
        permission: perm,
    }
}

fn imported_one(acl: WireAcl) -> RuleKey {
    match import_acl(&acl) {
        Ok(r) => r,
        Err(e) => panic!("{acl}: {e:?}"),
    }
}

fn import_errors(acl: WireAcl) -> Vec<String> {
    match import_acl(&acl) {
        Ok(r) => panic!("{acl} imported as {}", r.line()),
        Err(e) => e,
    }
}

// ---- Wire vocabulary, both ways ----

#[test]
fn resource_type_codes_both_ways() {
    let expect = [
        (ResourceType::Topic, 2, "TOPIC"),
        (ResourceType::Group, 3, "GROUP"),
        (ResourceType::Cluster, 4, "CLUSTER"),
        (ResourceType::TransactionalId, 5, "TRANSACTIONAL_ID"),
    ];
    for (t, code, name) in expect {
        assert_eq!(wire::resource_type_code(t), code);
        assert_eq!(wire::resource_type_from_code(code), Some(t));
        assert_eq!(wire::resource_type_name(code), Some(name));
    }
    for code in [0, 1, 6, 7, 8, -1] {
        assert_eq!(wire::resource_type_from_code(code), None, "{code}");
    }
}

#[test]
fn operation_codes_both_ways() {
    let expect = [
        (Operation::All, 2, "ALL"),
        (Operation::Read, 3, "READ"),
        (Operation::Write, 4, "WRITE"),
        (Operation::Create, 5, "CREATE"),
        (Operation::Delete, 6, "DELETE"),
        (Operation::Alter, 7, "ALTER"),
        (Operation::Describe, 8, "DESCRIBE"),
        (Operation::ClusterAction, 9, "CLUSTER_ACTION"),
        (Operation::DescribeConfigs, 10, "DESCRIBE_CONFIGS"),
        (Operation::AlterConfigs, 11, "ALTER_CONFIGS"),
        (Operation::IdempotentWrite, 12, "IDEMPOTENT_WRITE"),
    ];
    assert_eq!(expect.len(), Operation::ALL.len());
    for (op, code, name) in expect {
        assert_eq!(op.code(), code);
        assert_eq!(wire::operation_from_code(code), Some(op));
        assert_eq!(wire::operation_name(code), Some(name));
    }
    for code in [0, 1, 13, 14, 15, 16] {
        assert_eq!(wire::operation_from_code(code), None, "{code}");
    }
}

#[test]
fn pattern_and_permission_codes_both_ways() {
    assert_eq!(wire::pattern_type_code(PatternType::Literal), 3);
    assert_eq!(wire::pattern_type_code(PatternType::Prefixed), 4);
    assert_eq!(wire::permission_code(Effect::Deny), 2);
    assert_eq!(wire::permission_code(Effect::Allow), 3);
    assert_eq!(wire::permission_from_code(2), Some(Effect::Deny));
    assert_eq!(wire::permission_from_code(3), Some(Effect::Allow));
    for code in [0, 1, 4] {
        assert_eq!(wire::permission_from_code(code), None);
    }
}

#[test]
fn java_host_addresses() {
    let cases = [
        ("10.0.0.1", "10.0.0.1"),
        ("::1", "0:0:0:0:0:0:0:1"),
        ("2001:db8::a:0", "2001:db8:0:0:0:0:a:0"),
        ("fe80::ABCD", "fe80:0:0:0:0:0:0:abcd"),
    ];
    for (ip, java) in cases {
        let ip: IpAddr = ip.parse().expect("test address");
        assert_eq!(java_host_address(ip), java);
    }
}

// ---- Gateway -> Kafka ----

#[test]
fn export_maps_every_field() {
    use ResourceType::*;
    let got = bindings(
        "p, User:alice, Topic, orders, Read, *, allow\n\
         p, User:alice, Topic, pay-*, Write, 10.0.0.1, deny\n\
         p, User:*, Topic, *, Describe, ::1, allow\n\
         p, User:bob, Group, analytics-*, Read, 10.1.2.3/32, allow\n\
         p, User:bob, TransactionalId, tx-1, Write, 2001:db8::7/128, allow\n\
         p, User:ops, Cluster, *, All, *, allow\n\
         p, User:ops, Cluster, kafka-cluster, IdempotentWrite, ::ffff:10.9.9.9, allow\n",
    );
    let want = vec![
        binding(
            Topic,
            "orders",
            PatternType::Literal,
            "User:alice",
            "*",
            Operation::Read,
            Effect::Allow,
        ),
        binding(
            Topic,
            "pay-",
            PatternType::Prefixed,
            "User:alice",
            "10.0.0.1",
            Operation::Write,
            Effect::Deny,
        ),
        binding(
            Topic,
            "*",
            PatternType::Literal,
            "User:*",
            "0:0:0:0:0:0:0:1",
            Operation::Describe,
            Effect::Allow,
        ),
        binding(
            Group,
            "analytics-",
            PatternType::Prefixed,
            "User:bob",
            "10.1.2.3",
            Operation::Read,
            Effect::Allow,
        ),
        binding(
            TransactionalId,
            "tx-1",
            PatternType::Literal,
            "User:bob",
            "2001:db8:0:0:0:0:0:7",
            Operation::Write,
            Effect::Allow,
        ),
        binding(
            Cluster,
            "kafka-cluster",
            PatternType::Literal,
            "User:ops",
            "*",
            Operation::All,
            Effect::Allow,
        ),
        binding(
            Cluster,
            "kafka-cluster",
            PatternType::Literal,
            "User:ops",
            "10.9.9.9",
            Operation::IdempotentWrite,
            Effect::Allow,
        ),
    ];
    assert_eq!(got, want);
    let creation = want[1].creation();
    assert_eq!(
        (
            creation.resource_type,
            creation.resource_pattern_type,
            creation.operation,
            creation.permission_type
        ),
        (2, 4, 4, 2)
    );
}

#[test]
fn export_expands_groups_to_their_members() {
    let e = exported(
        "g, User:bob, Group:payments\n\
         g, User:carol, Group:payments\n\
         g, User:bob, Group:payments\n\
         p, Group:payments, Topic, pay-*, Write, *, allow\n\
         p, User:bob, Topic, pay-*, Write, *, allow\n\
         p, Group:payments, Topic, pay-secret, All, *, deny\n",
        ExportTarget::CreateAcls,
    );
    let got: Vec<(&str, &str, Effect, usize)> = e
        .acls
        .iter()
        .map(|a| {
            (
                a.binding.principal.as_str(),
                a.binding.resource_name.as_str(),
                a.binding.permission,
                a.origins.len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("User:bob", "pay-", Effect::Allow, 2),
            ("User:carol", "pay-", Effect::Allow, 1),
            ("User:bob", "pay-secret", Effect::Deny, 1),
            ("User:carol", "pay-secret", Effect::Deny, 1),
        ]
    );
    let bob = &e.acls[0].origins;
    assert_eq!(bob[0].via_group.as_deref(), Some("payments"));
    assert_eq!(bob[0].source.line, 4);
    assert_eq!(bob[1].via_group, None);
    assert_eq!(bob[1].source.line, 5);
}

#[test]
fn a_group_without_members_is_an_error() {
    let got = export_problems(
        "# no g lines\np, Group:nobody, Topic, t, Read, *, allow\n",
        ExportTarget::CreateAcls,
    );
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("acl.policy:2: Group:nobody has no members"),
        "{got:?}"
    );
}

#[test]
fn cidr_blocks_wider_than_one_address_are_errors() {
    let got = export_problems(
        "p, User:a, Topic, t, Read, 10.0.0.0/8, allow\n\
         p, User:a, Topic, t, Read, 10.0.0.1/32, allow\n\
         p, User:a, Topic, t, Read, 0.0.0.0/0, allow\n\
         p, User:a, Topic, t, Read, 2001:db8::/64, deny\n\
         p, User:a, Topic, t, Read, 2001:db8::1/128, deny\n",
        ExportTarget::CreateAcls,
    );
    let lines: Vec<&str> = got.iter().map(|p| &p[..13]).collect();
    assert_eq!(lines, ["acl.policy:1:", "acl.policy:3:", "acl.policy:4:"]);
    assert!(got[0].contains("host 10.0.0.0/8: Kafka ACLs match exact client addresses only"));
}

#[test]
fn every_problem_is_reported_and_nothing_exported() {
    let err = export(
        &load(
            "p, User:a, Topic, t, Read, 10.0.0.0/24, allow\n\
             p, User:a, Topic, ok, Read, *, allow\n\
             p, Group:g, Topic, t, Read, 10.0.0.0/24, allow\n\
             p, User:a, Topic, t, IdempotentWrite, *, allow\n",
            &[],
        ),
        ExportTarget::KafkaAclsScript,
    )
    .expect_err("problems");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "cannot export the policy as Kafka ACLs (nothing written): 3 rules cannot be expressed"
        ),
        "{text}"
    );
    // Line 3 has two problems (no members, CIDR), reported together.
    assert_eq!(err.problems.len(), 4, "{text}");
    assert_eq!(
        err.problems
            .iter()
            .map(|p| p.source.line)
            .collect::<Vec<_>>(),
        [1, 3, 3, 4]
    );
}

#[test]
fn operations_kafka_acls_sh_refuses_are_errors_only_for_the_script() {
    let text = "p, User:a, Topic, t, IdempotentWrite, *, allow\n\
                p, User:a, Group, g, Write, *, allow\n\
                p, User:a, Cluster, kafka-cluster, Read, *, allow\n";
    let got = export_problems(text, ExportTarget::KafkaAclsScript);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].contains(
        "operation IdempotentWrite does not apply to Topic resources: kafka-acls.sh refuses it"
    ));
    assert_eq!(bindings(text).len(), 3);
    // Every operation that applies passes.
    let mut ok = String::new();
    for t in ResourceType::ALL {
        let name = if t == ResourceType::Cluster {
            "kafka-cluster"
        } else {
            "x"
        };
        for op in applicable_ops(t) {
            ok.push_str(&format!("p, User:a, {t}, {name}, {op}, *, allow\n"));
        }
    }
    let e = exported(&ok, ExportTarget::KafkaAclsScript);
    assert_eq!(e.acls.len(), ok.lines().count());
}

#[test]
fn super_users_are_reported_not_exported() {
    let set = load(
        "p, User:a, Topic, t, Read, *, allow\n",
        &["User:admin", "User:ops"],
    );
    let e = export(&set, ExportTarget::KafkaAclsScript).expect("export");
    assert_eq!(e.super_users, ["User:admin", "User:ops"]);
    assert_eq!(e.acls.len(), 1);
    let script = render_kafka_acls(&e, "acl.policy");
    assert!(
        script.contains("#   super.users=User:admin;User:ops\n"),
        "{script}"
    );
}

#[test]
fn shell_quoting() {
    assert_eq!(shell_quote("orders"), "orders");
    assert_eq!(shell_quote("User:alice"), "User:alice");
    assert_eq!(shell_quote("*"), "'*'");
    assert_eq!(shell_quote(""), "''");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("o'brien"), r"'o'\''brien'");
    assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    assert_eq!(shell_quote("`x`;\"y\""), "'`x`;\"y\"'");
}

#[test]
fn the_script_golden() {
    let set = load(
        "p, User:alice, Topic, orders, Read, *, allow\n\
         p, User:*, Cluster, *, IdempotentWrite, 10.0.0.1, deny\n",
        &["User:admin"],
    );
    let e = export(&set, ExportTarget::KafkaAclsScript).expect("export");
    let script = render_kafka_acls(&e, "acl.policy");
    let body = script
        .split_once("KAFKA_ACLS=\"${KAFKA_ACLS:-kafka-acls.sh}\"\n")
        .expect("preamble")
        .1;
    assert_eq!(
        body,
        "\n# acl.policy:1: p, User:alice, Topic, orders, Read, *, allow\n\
         \"$KAFKA_ACLS\" --bootstrap-server \"$BOOTSTRAP\" --command-config \"$COMMAND_CONFIG\" --add \\\n  \
         --allow-principal User:alice --allow-host '*' --operation Read \\\n  \
         --topic orders --resource-pattern-type literal\n\
         \n# acl.policy:2: p, User:*, Cluster, *, IdempotentWrite, 10.0.0.1, deny\n\
         \"$KAFKA_ACLS\" --bootstrap-server \"$BOOTSTRAP\" --command-config \"$COMMAND_CONFIG\" --add \\\n  \
         --deny-principal 'User:*' --deny-host 10.0.0.1 --operation IdempotentWrite \\\n  \
         --cluster --resource-pattern-type literal\n"
    );
    assert!(script.starts_with("#!/bin/sh\n# Generated by `kafka-gateway policy export --format kafka-acls` from acl.policy (policy version "));
    assert!(script.contains("set -eu\n"));
}

/// Runs the generated script with a stand-in for kafka-acls.sh that records its arguments: what
/// the shell hands kafka-acls.sh is exactly the names, principals and hosts of the policy.
#[cfg(unix)]
#[test]
fn the_script_passes_exact_arguments_through_the_shell() {
    let dir = crate::certs::tests::TempDir::new("migrate-script");
    let policy = "p, \"User:CN=o'brien, O=x\", Group, \"a group $(id) `x` \\\\\", Read, *, allow\n\
                  p, User:ü, Topic, pay-*, Write, ::1, deny\n";
    let e = exported(policy, ExportTarget::KafkaAclsScript);
    let script = dir.path().join("acls.sh");
    std::fs::write(&script, render_kafka_acls(&e, "acl.policy")).expect("write script");
    let log = dir.path().join("args.log");
    let fake = dir.path().join("kafka-acls.sh");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\" >> '{0}'; done\necho --- >> '{0}'\n",
            log.display()
        ),
    )
    .expect("write the stand-in");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let status = std::process::Command::new("sh")
        .arg(&script)
        .env("BOOTSTRAP", "b:9092")
        .env("COMMAND_CONFIG", "/tmp/admin props")
        .env("KAFKA_ACLS", &fake)
        .status()
        .expect("run sh");
    assert!(status.success());
    let got = std::fs::read_to_string(&log).expect("log");
    let want = "[--bootstrap-server]\n[b:9092]\n[--command-config]\n[/tmp/admin props]\n[--add]\n\
                [--allow-principal]\n[User:CN=o'brien, O=x]\n[--allow-host]\n[*]\n[--operation]\n[Read]\n\
                [--group]\n[a group $(id) `x` \\\\]\n[--resource-pattern-type]\n[literal]\n---\n\
                [--bootstrap-server]\n[b:9092]\n[--command-config]\n[/tmp/admin props]\n[--add]\n\
                [--deny-principal]\n[User:ü]\n[--deny-host]\n[0:0:0:0:0:0:0:1]\n[--operation]\n[Write]\n\
                [--topic]\n[pay-]\n[--resource-pattern-type]\n[prefixed]\n---\n";
    assert_eq!(got, want);
}

#[test]
fn json_lists_the_creations() {
    let e = exported(
        "p, User:alice, Topic, pay-*, DescribeConfigs, 10.0.0.1, deny\n\
         p, User:*, TransactionalId, *, Write, *, allow\n",
        ExportTarget::CreateAcls,
    );
    let json = render_json(&e);
    let parsed: Vec<JsonCreation> = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(
        parsed,
        [
            JsonCreation {
                resource_type: "TOPIC".into(),
                resource_name: "pay-".into(),
                resource_pattern_type: "PREFIXED".into(),
                principal: "User:alice".into(),
                host: "10.0.0.1".into(),
                operation: "DESCRIBE_CONFIGS".into(),
                permission_type: "DENY".into(),
            },
            JsonCreation {
                resource_type: "TRANSACTIONAL_ID".into(),
                resource_name: "*".into(),
                resource_pattern_type: "LITERAL".into(),
                principal: "User:*".into(),
                host: "*".into(),
                operation: "WRITE".into(),
                permission_type: "ALLOW".into(),
            },
        ]
    );
    assert_eq!(render_json(&exported("", ExportTarget::CreateAcls)), "[]\n");
}

// ---- Kafka -> gateway ----

#[test]
fn import_maps_every_field() {
    let cases: &[(WireAcl, &str)] = &[
        (
            wire_acl(2, "orders", 3, "User:alice", "*", 3, 3),
            "p, User:alice, Topic, orders, Read, *, allow",
        ),
        (
            wire_acl(2, "*", 3, "User:*", "*", 2, 2),
            "p, User:*, Topic, *, All, *, deny",
        ),
        (
            wire_acl(2, "pay-", 4, "User:a", "10.0.0.1", 4, 3),
            "p, User:a, Topic, pay-*, Write, 10.0.0.1, allow",
        ),
        (
            wire_acl(3, "g1", 3, "User:a", "0:0:0:0:0:0:0:1", 8, 3),
            "p, User:a, Group, g1, Describe, ::1, allow",
        ),
        (
            wire_acl(5, "tx-", 4, "User:a", "*", 4, 3),
            "p, User:a, TransactionalId, tx-*, Write, *, allow",
        ),
        (
            wire_acl(4, "kafka-cluster", 3, "User:a", "*", 9, 3),
            "p, User:a, Cluster, kafka-cluster, ClusterAction, *, allow",
        ),
        (
            wire_acl(4, "kafka-cluster", 3, "User:a", "*", 12, 3),
            "p, User:a, Cluster, kafka-cluster, IdempotentWrite, *, allow",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "*", 5, 3),
            "p, User:a, Topic, t, Create, *, allow",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "*", 6, 3),
            "p, User:a, Topic, t, Delete, *, allow",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "*", 7, 3),
            "p, User:a, Topic, t, Alter, *, allow",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "*", 10, 3),
            "p, User:a, Topic, t, DescribeConfigs, *, allow",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "*", 11, 3),
            "p, User:a, Topic, t, AlterConfigs, *, allow",
        ),
        (
            wire_acl(3, "a,b", 3, "User:CN=x,O=y", "*", 3, 3),
            "p, \"User:CN=x,O=y\", Group, \"a,b\", Read, *, allow",
        ),
        (
            wire_acl(3, " sp\"q ", 3, "User:a", "*", 3, 3),
            "p, User:a, Group, \" sp\"\"q \", Read, *, allow",
        ),
    ];
    for (acl, line) in cases {
        assert_eq!(imported_one(acl.clone()).line(), *line, "{acl}");
    }
}

#[test]
fn import_errors_name_what_cannot_be_expressed() {
    let cases: &[(WireAcl, &str)] = &[
        (
            wire_acl(6, "token", 3, "User:a", "*", 8, 3),
            "DELEGATION_TOKEN ACLs have no gateway equivalent",
        ),
        (
            wire_acl(7, "bob", 3, "User:a", "*", 13, 3),
            "USER ACLs have no gateway equivalent",
        ),
        (
            wire_acl(9, "x", 3, "User:a", "*", 3, 3),
            "resource type code 9",
        ),
        (
            wire_acl(2, "foo*", 3, "User:a", "*", 3, 3),
            "the LITERAL name `foo*` ends in `*`",
        ),
        (
            wire_acl(2, "a*b", 3, "User:a", "*", 3, 3),
            "the LITERAL name `a*b` holds a `*`",
        ),
        (
            wire_acl(2, "a*", 4, "User:a", "*", 3, 3),
            "the PREFIXED name `a*` holds a `*`",
        ),
        (
            wire_acl(2, "", 4, "User:a", "*", 3, 3),
            "empty PREFIXED name",
        ),
        (
            wire_acl(2, "", 3, "User:a", "*", 3, 3),
            "empty resource name",
        ),
        (
            wire_acl(2, "t\n", 3, "User:a", "*", 3, 3),
            "control characters",
        ),
        (
            wire_acl(2, "t", 2, "User:a", "*", 3, 3),
            "pattern type MATCH is not LITERAL or PREFIXED",
        ),
        (wire_acl(2, "t", 1, "User:a", "*", 3, 3), "pattern type ANY"),
        (
            wire_acl(4, "other", 3, "User:a", "*", 7, 3),
            "the cluster resource is named `kafka-cluster`",
        ),
        (
            wire_acl(4, "kafka-", 4, "User:a", "*", 7, 3),
            "prefix pattern `kafka-*` on Cluster",
        ),
        (
            wire_acl(2, "t", 3, "Group:ops", "*", 3, 3),
            "principal type `Group` has no gateway equivalent",
        ),
        (
            wire_acl(2, "t", 3, "Role:x", "*", 3, 3),
            "principal type `Role`",
        ),
        (
            wire_acl(2, "t", 3, "alice", "*", 3, 3),
            "is not `Type:name`",
        ),
        (wire_acl(2, "t", 3, "User:", "*", 3, 3), "empty name"),
        (
            wire_acl(2, "t", 3, "User:*", "::1", 3, 3),
            "host `::1` never matches in Kafka",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "0:0:0:0:0:ffff:a00:1", 3, 3),
            "as Java prints it (`10.0.0.1`)",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "10.0.0.0/8", 3, 3),
            "is not `*` or an IP address",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "client.example.com", 3, 3),
            "never resolves names",
        ),
        (
            wire_acl(5, "t", 3, "User:a", "*", 15, 3),
            "operation TWO_PHASE_COMMIT has no gateway equivalent",
        ),
        (
            wire_acl(7, "t", 3, "User:a", "*", 14, 3),
            "operation DESCRIBE_TOKENS has no gateway equivalent",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "*", 1, 3),
            "operation ANY is not an ACL operation",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "*", 42, 3),
            "unknown operation code 42",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "*", 3, 1),
            "permission type ANY is not ALLOW or DENY",
        ),
        (
            wire_acl(2, "t", 3, "User:a", "*", 3, 9),
            "permission type code 9",
        ),
    ];
    for (acl, expect) in cases {
        let errs = import_errors(acl.clone());
        assert!(
            errs.iter().any(|e| e.contains(expect)),
            "{acl}: expected `{expect}` in {errs:?}"
        );
    }
    // One ACL with several problems reports each.
    let errs = import_errors(wire_acl(6, "x*", 3, "Group:g", "::1", 13, 3));
    assert_eq!(errs.len(), 5, "{errs:?}");
}

#[test]
fn import_reports_every_acl_and_names_it_as_kafka_does() {
    let acls = vec![
        wire_acl(2, "ok", 3, "User:a", "*", 3, 3),
        wire_acl(2, "foo*", 3, "User:alice", "*", 3, 3),
        wire_acl(6, "tok", 3, "User:bob", "*", 8, 3),
        // Two problems, one ACL: a User resource and a token operation.
        wire_acl(7, "User:bob", 3, "User:eve", "*", 13, 3),
    ];
    let err = import(&acls).expect_err("three bad ACLs");
    assert_eq!(err.problems.len(), 4);
    let text = err.to_string();
    assert!(text.starts_with("cannot import the cluster's ACLs (nothing written): 3 ACLs cannot be expressed in a policy file"), "{text}");
    assert!(text.contains(
        "ResourcePattern(resourceType=TOPIC, name=foo*, patternType=LITERAL) (principal=User:alice, host=*, operation=READ, permissionType=ALLOW): the LITERAL name"
    ), "{text}");
    assert!(
        text.contains("resourceType=DELEGATION_TOKEN, name=tok"),
        "{text}"
    );
}

#[test]
fn import_is_sorted_deduplicated_and_independent_of_the_brokers_order() {
    let mut acls = vec![
        wire_acl(2, "t", 3, "User:b", "*", 3, 3),
        wire_acl(3, "g", 3, "User:a", "*", 3, 3),
        wire_acl(2, "t", 3, "User:a", "10.0.0.2", 3, 2),
        wire_acl(2, "t", 3, "User:a", "*", 3, 3),
        wire_acl(2, "*", 3, "User:*", "*", 8, 3),
        wire_acl(2, "t", 3, "User:a", "*", 3, 3),
    ];
    let first = import(&acls).expect("import");
    acls.reverse();
    assert_eq!(import(&acls).expect("import"), first);
    let lines: Vec<String> = first.iter().map(RuleKey::line).collect();
    assert_eq!(
        lines,
        [
            "p, User:*, Topic, *, Describe, *, allow",
            "p, User:a, Topic, t, Read, *, allow",
            "p, User:a, Topic, t, Read, 10.0.0.2, deny",
            "p, User:a, Group, g, Read, *, allow",
            "p, User:b, Topic, t, Read, *, allow",
        ]
    );
    let text = render_policy(&first, &["from test".into()]).expect("render");
    assert_eq!(
        text,
        "# from test\n\
         \np, User:*, Topic, *, Describe, *, allow\n\
         \np, User:a, Topic, t, Read, *, allow\n\
         p, User:a, Topic, t, Read, 10.0.0.2, deny\n\
         p, User:a, Group, g, Read, *, allow\n\
         \np, User:b, Topic, t, Read, *, allow\n"
    );
}

#[test]
fn the_response_is_read_resource_by_resource() {
    use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
    let resp =
        DescribeAclsResponse::default().with_resources(vec![DescribeAclsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("orders"))
            .with_pattern_type(3)
            .with_acls(vec![
                AclDescription::default()
                    .with_principal(StrBytes::from_static_str("User:alice"))
                    .with_host(StrBytes::from_static_str("*"))
                    .with_operation(3)
                    .with_permission_type(3),
                AclDescription::default()
                    .with_principal(StrBytes::from_static_str("User:bob"))
                    .with_host(StrBytes::from_static_str("10.0.0.1"))
                    .with_operation(4)
                    .with_permission_type(2),
            ])]);
    let acls = WireAcl::from_response(&resp);
    assert_eq!(
        acls,
        [
            wire_acl(2, "orders", 3, "User:alice", "*", 3, 3),
            wire_acl(2, "orders", 3, "User:bob", "10.0.0.1", 4, 2)
        ]
    );
}

// ---- Round trips ----

const PRINCIPALS: &[&str] = &[
    "User:alice",
    "User:*",
    "User:CN=a,O=b",
    "User:o'brien \"q\"",
    "User:ü",
];
const NAMES: &[&str] = &["orders", "a,b", "say \"hi\"", " lead", "ü-t", "x.y_z"];
const HOSTS: &[&str] = &[
    "*",
    "10.0.0.1",
    "::1",
    "2001:db8::5",
    "10.0.0.7/32",
    "2001:db8::9/128",
    "::ffff:10.0.0.3",
];
const RTYPES: &[ResourceType] = &[
    ResourceType::Topic,
    ResourceType::Group,
    ResourceType::TransactionalId,
    ResourceType::Cluster,
];

#[derive(Debug, Clone)]
struct GenRule {
    principal: &'static str,
    rtype: ResourceType,
    /// 0: `*`, 1: literal, 2: prefix.
    pattern_kind: u8,
    name: &'static str,
    op: Operation,
    host: &'static str,
    allow: bool,
}

impl GenRule {
    fn line(&self) -> String {
        let pattern = match (self.rtype, self.pattern_kind) {
            (_, 0) => "*".to_string(),
            (ResourceType::Cluster, _) => CLUSTER_NAME.to_string(),
            (_, 1) => self.name.to_string(),
            _ => format!("{}*", self.name),
        };
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        format!(
            "p, {}, {}, {}, {}, {}, {}",
            q(self.principal),
            self.rtype,
            q(&pattern),
            self.op,
            self.host,
            if self.allow { "allow" } else { "deny" }
        )
    }
}

fn gen_rule() -> impl Strategy<Value = GenRule> {
    (
        select(PRINCIPALS),
        select(RTYPES),
        0u8..3,
        select(NAMES),
        select(Operation::ALL.to_vec()),
        select(HOSTS),
        any::<bool>(),
    )
        .prop_map(
            |(principal, rtype, pattern_kind, name, op, host, allow)| GenRule {
                principal,
                rtype,
                pattern_kind,
                name,
                op,
                host,
                allow,
            },
        )
}

/// What Kafka makes of a rule, read straight from the model: the only cluster resource is
/// `kafka-cluster`, and a one-address block is that address.
fn kafka_normal(mut r: RuleKey) -> RuleKey {
    if r.rtype == ResourceType::Cluster && r.pattern == Pattern::Any {
        r.pattern = Pattern::Literal(CLUSTER_NAME.into());
    }
    if let HostSpec::Cidr { net, len } = r.host {
        assert_eq!(len, if net.is_ipv4() { 32 } else { 128 });
        r.host = HostSpec::Ip(net);
    }
    r
}

fn through_kafka(set: &PolicySet) -> Vec<RuleKey> {
    let e = export(set, ExportTarget::CreateAcls).expect("exportable");
    // Over the wire and back: CreateAcls creations become what DescribeAcls lists.
    let wire: Vec<WireAcl> = e
        .acls
        .iter()
        .map(|a| WireAcl::from_creation(&a.binding.creation()))
        .collect();
    import(&wire).expect("importable")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// policy -> Kafka ACL bindings -> policy is the same rule set, and the imported file parses
    /// back to it.
    #[test]
    fn policy_kafka_policy_is_identical(rules in prop::collection::vec(gen_rule(), 0..24)) {
        let text: String = rules.iter().map(|r| r.line() + "\n").collect();
        let set = load(&text, &[]);
        let want: BTreeSet<RuleKey> = set.rules().iter().map(|r| kafka_normal(RuleKey::of(r))).collect();
        let got = through_kafka(&set);
        prop_assert_eq!(&got.iter().cloned().collect::<BTreeSet<_>>(), &want);
        prop_assert_eq!(got.len(), want.len());
        let rendered = render_policy(&got, &["header".into()]).expect("render");
        let again = load(&rendered, &[]);
        let reread: BTreeSet<RuleKey> = again.rules().iter().map(|r| RuleKey::of(r)).collect();
        prop_assert_eq!(reread, want);
    }

    /// Kafka -> policy -> Kafka is the same ACL set.
    #[test]
    fn kafka_policy_kafka_is_identical(rules in prop::collection::vec(gen_rule(), 0..24)) {
        let text: String = rules.iter().map(|r| r.line() + "\n").collect();
        let acls: BTreeSet<WireAcl> = export(&load(&text, &[]), ExportTarget::CreateAcls)
            .expect("exportable")
            .acls
            .iter()
            .map(|a| a.binding.wire())
            .collect();
        let acls: Vec<WireAcl> = acls.into_iter().collect();
        let file = render_policy(&import(&acls).expect("import"), &[]).expect("render");
        let back: BTreeSet<WireAcl> = export(&load(&file, &[]), ExportTarget::CreateAcls)
            .expect("exportable")
            .acls
            .iter()
            .map(|a| a.binding.wire())
            .collect();
        prop_assert_eq!(back, acls.into_iter().collect::<BTreeSet<_>>());
    }

    /// With groups the rule set changes (members instead of the group), the decisions do not:
    /// the imported policy decides every request as the original does.
    #[test]
    fn group_expansion_keeps_every_decision(
        rules in prop::collection::vec(
            (gen_rule(), select(&["User:a", "User:b", "Group:g", "Group:h", "User:*"][..])),
            0..16,
        ),
        members in prop::sample::subsequence(vec![("a", "g"), ("b", "g"), ("c", "h"), ("a", "h")], 1..=4),
        requests in prop::collection::vec(
            (select(&["a", "b", "c", "d"][..]), select(RTYPES), select(NAMES), select(Operation::ALL.to_vec()),
             select(&["10.0.0.1", "10.0.0.3", "2001:db8::5", "192.168.1.1"][..])),
            1..32,
        ),
    ) {
        let mut text: String = members.iter().map(|(u, g)| format!("g, User:{u}, Group:{g}\n")).collect();
        for (r, subject) in &rules {
            let r = GenRule { principal: subject, ..r.clone() };
            let used = members.iter().any(|(_, g)| r.principal == format!("Group:{g}"));
            if r.principal.starts_with("Group:") && !used {
                continue;
            }
            text += &(r.line() + "\n");
        }
        let original = load(&text, &[]);
        let imported = render_policy(&through_kafka(&original), &[]).expect("render");
        let before = Engine::new(original);
        let after = Engine::new(load(&imported, &[]));
        for (user, rtype, name, op, host) in requests {
            let host: IpAddr = host.parse().expect("address");
            let name = if rtype == ResourceType::Cluster { CLUSTER_NAME } else { name };
            let p = Principal::user(user);
            prop_assert_eq!(
                before.decide(&p, host, op, rtype, name).allowed,
                after.decide(&p, host, op, rtype, name).allowed,
                "{} {} {}:{} from {}\n{}\n---\n{}", user, op, rtype, name, host, text, imported
            );
            // "Allowed on some resource of this type" (Kafka's authorizeByResourceType) is only
            // ever asked for topics; for the one cluster resource, `Cluster, *` and
            // `Cluster, kafka-cluster` name the same thing, but its pattern arithmetic tells a
            // wildcard allow from a literal one.
            if rtype != ResourceType::Cluster {
                prop_assert_eq!(
                    before.decide_any(&p, host, op, rtype).allowed,
                    after.decide_any(&p, host, op, rtype).allowed
                );
            }
        }
    }
}
