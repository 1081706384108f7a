//! The `kafka-gateway` command: parses the command line and hands off to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kafka_gateway::auth::Mechanism;
use kafka_gateway::config::Config;

#[derive(Parser)]
#[command(
    name = "kafka-gateway",
    version,
    about = "A security gateway in front of Apache Kafka clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and print it with secrets redacted.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Development certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// SCRAM credentials (salted keys, never passwords) in the credentials file.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// OAUTHBEARER development keys and tokens.
    Oauth {
        #[command(subcommand)]
        command: OauthCommand,
    },
    /// The audit trail: verify its chain, query, follow, or write an HTML report.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Virtual clusters: point one at another upstream.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Authorization policy: validate, explain a decision, list who can do something, move ACLs
    /// between Kafka clusters and policy files.
    Policy {
        #[command(flatten)]
        source: PolicySourceArgs,
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

/// Where the policy comes from: the gateway config's [authorization] section, or explicit files.
#[derive(clap::Args)]
struct PolicySourceArgs {
    /// Gateway config whose [authorization] section names the model, files and super users.
    #[arg(long, short, global = true, default_value = "policies/gateway.toml")]
    config: PathBuf,
    /// Casbin model (overrides the config's).
    #[arg(long, global = true)]
    model: Option<PathBuf>,
    /// Policy file (repeatable; overrides the config's).
    #[arg(long = "file", global = true)]
    files: Vec<PathBuf>,
    /// Shadow policy file (repeatable; overrides the config's shadow_policy_files): `check`
    /// validates it too.
    #[arg(long = "shadow-file", global = true)]
    shadow_files: Vec<PathBuf>,
    /// Super user principal (repeatable; overrides the config's).
    #[arg(long = "super-user", global = true)]
    super_users: Vec<String>,
    /// Which virtual cluster's policy (required when the config declares several).
    #[arg(long = "virtual-cluster", global = true)]
    virtual_cluster: Option<String>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; names the first edited, deleted, inserted, reordered or truncated record.
    /// With --kafka, checks the copy on the audit topic the same way.
    Verify {
        paths: Vec<PathBuf>,
        /// HOST:PORT of a broker of the cluster holding the audit topic (the copy from
        /// `[audit.kafka]`).
        #[arg(long)]
        kafka: Option<String>,
        /// The audit topic.
        #[arg(long, requires = "kafka", default_value = "_kafka_gateway_audit")]
        topic: String,
        /// Kafka client properties, as kafka-acls.sh --command-config takes.
        #[arg(long, requires = "kafka")]
        command_config: Option<PathBuf>,
        /// Deadline of each network step.
        #[arg(long, default_value = "30s")]
        timeout: String,
    },
    /// Records matching every filter given, as a table or as JSON lines.
    Query {
        paths: Vec<PathBuf>,
        #[arg(long)]
        principal: Option<String>,
        /// Substring or glob of the resource, e.g. `Topic:orders*`.
        #[arg(long)]
        resource: Option<String>,
        /// allow | deny
        #[arg(long)]
        decision: Option<String>,
        /// API name or key, e.g. Produce or 0.
        #[arg(long)]
        api: Option<String>,
        /// Event kind, e.g. auth_failure.
        #[arg(long)]
        event: Option<String>,
        /// RFC 3339 time or a relative one like 1h.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The last records, and with -f every new one as it is written.
    Tail {
        paths: Vec<PathBuf>,
        #[arg(short = 'f', long)]
        follow: bool,
        #[arg(short = 'n', long, default_value_t = 20)]
        last: usize,
        #[arg(long)]
        json: bool,
    },
    /// A self-contained HTML page: events over time, top denials, authentication failures by source.
    Report {
        paths: Vec<PathBuf>,
        #[arg(long, short, default_value = "audit-report.html")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate the files: errors with file and line, warnings for rules that never match or are shadowed.
    Check,
    /// The decision for one request and the rules that made it, e.g. `explain User:alice Read Topic:orders`.
    Explain {
        principal: String,
        operation: String,
        /// Type:name, e.g. Topic:orders, Group:billing, TransactionalId:tx-1, Cluster:kafka-cluster.
        resource: String,
        /// The client's address (rules with host restrictions depend on it).
        #[arg(long)]
        host: Option<String>,
        /// Judge the safeguards too: the new topic's (`Create Topic:t`) or the new (`Alter
        /// Topic:t`) partition count.
        #[arg(long, allow_hyphen_values = true)]
        partitions: Option<i64>,
        /// The new topic's replication factor (`Create Topic:t`).
        #[arg(long, allow_hyphen_values = true)]
        replication_factor: Option<i64>,
        /// A config the request sets, `name=value` (`name` alone: back to its default); repeat it.
        /// With `Create Topic:t`, `AlterConfigs Topic:t` or `AlterConfigs Cluster`.
        #[arg(long = "set")]
        configs: Vec<String>,
        /// The broker whose configs `AlterConfigs Cluster` alters (default: the cluster-wide
        /// default resource).
        #[arg(long)]
        broker: Option<String>,
    },
    /// Who may do an operation on a resource, e.g. `who-can Read Topic:orders`.
    WhoCan { operation: String, resource: String },
    /// Which `q` line sets each quota of a client, by Kafka's precedence, e.g.
    /// `quotas User:alice --client-id billing --host 10.0.0.7`.
    Quotas {
        principal: String,
        /// The client id (Kafka's `client.id`); none: the empty one.
        #[arg(long)]
        client_id: Option<String>,
        /// The client's address (connection and per-address login rates depend on it).
        #[arg(long)]
        host: Option<String>,
    },
    /// A least-privilege policy from an audit trail written at level `all`: exactly what the
    /// allowed decisions used, compared with the enforced policy (which the policy source
    /// options name).
    Suggest {
        /// The audit trail (directory or files).
        #[arg(long = "audit", required = true)]
        audit: Vec<PathBuf>,
        /// Only records since: RFC 3339, or back from now (`7d`, `12h`).
        #[arg(long)]
        since: Option<String>,
        /// Write the policy file here (atomically) instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The client address the comparison evaluates host-restricted rules for.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
    },
    /// Write a cluster's ACLs (DescribeAcls) as a policy file; fails, writing nothing, on any ACL
    /// a policy file cannot express. The policy source options are not used.
    Import {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Write the policy file here (atomically) instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// What the shadow policy would change, from the trail's shadow_decision records: grouped by
    /// principal, operation, resource and direction, largest first. The policy source options are
    /// not used.
    Diff {
        /// The audit trail (directory or files).
        #[arg(long = "audit", required = true)]
        audit: Vec<PathBuf>,
        /// Only records since then: RFC 3339, a date, or relative (`7d`, `12h`).
        #[arg(long)]
        since: Option<String>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The policy as Kafka ACLs: a script of kafka-acls.sh commands, the CreateAcls creations as
    /// JSON, or (--apply) created on a cluster. Fails, writing nothing, on any rule Kafka cannot
    /// express.
    Export {
        /// kafka-acls: a shell script; json: the CreateAcls creations.
        #[arg(long, value_enum, required_unless_present = "apply")]
        format: Option<ExportFormatArg>,
        /// Write the output here (atomically) instead of to standard output.
        #[arg(long, conflicts_with = "apply")]
        out: Option<PathBuf>,
        /// Send CreateAcls to the cluster at --bootstrap instead of printing.
        #[arg(long, conflicts_with = "format", requires = "bootstrap")]
        apply: bool,
        #[command(flatten)]
        cluster: OptionalClusterArgs,
    },
}

/// How to reach a Kafka cluster, as Kafka's own tools take it.
#[derive(clap::Args)]
struct ClusterArgs {
    /// HOST:PORT of a broker (several separated by commas: the first reachable is used).
    #[arg(long)]
    bootstrap: String,
    /// Kafka client properties, as kafka-acls.sh --command-config takes (security.protocol,
    /// sasl.mechanism, sasl.jaas.config, ssl.truststore.*, ssl.keystore.* as PEM).
    #[arg(long)]
    command_config: Option<PathBuf>,
    /// Deadline of each network step (connect, TLS handshake, each request).
    #[arg(long, default_value = "30s")]
    timeout: String,
}

/// [`ClusterArgs`] for `export --apply`, where the cluster is optional.
#[derive(clap::Args)]
struct OptionalClusterArgs {
    /// HOST:PORT of a broker, for --apply.
    #[arg(long, requires = "apply")]
    bootstrap: Option<String>,
    /// Kafka client properties for --apply, as kafka-acls.sh --command-config takes.
    #[arg(long, requires = "apply")]
    command_config: Option<PathBuf>,
    /// Deadline of each network step of --apply.
    #[arg(long, default_value = "30s")]
    timeout: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormatArg {
    KafkaAcls,
    Json,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a user, or replace their credentials. The password is read from a prompt, or from stdin.
    Add {
        name: String,
        #[arg(long, default_value = "policies/users.toml")]
        file: PathBuf,
        /// SCRAM-SHA-256 and/or SCRAM-SHA-512 (default: both).
        #[arg(long = "mechanism")]
        mechanisms: Vec<String>,
        #[arg(long, default_value_t = 8192)]
        iterations: u32,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user.
    Remove {
        name: String,
        #[arg(long, default_value = "policies/users.toml")]
        file: PathBuf,
    },
    /// List users and their mechanisms (no key material).
    List {
        #[arg(long, default_value = "policies/users.toml")]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum OauthCommand {
    /// Write a development signing key and the JWKS that publishes its public half.
    DevKeys {
        #[arg(long, default_value = "certs/dev/oauth")]
        dir: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Mint a token signed with a development key (for testing clients).
    Token {
        #[arg(long, default_value = "certs/dev/oauth/dev-signing-key.pem")]
        key: PathBuf,
        #[arg(long, default_value = "dev-1")]
        kid: String,
        #[arg(long, default_value = "https://issuer.dev.kafka-gateway")]
        issuer: String,
        #[arg(long, default_value = "kafka-gateway")]
        audience: String,
        #[arg(long)]
        subject: String,
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime such as "1h"; a leading '-' makes an already expired token (for tests).
        #[arg(long, default_value = "1h", allow_hyphen_values = true)]
        ttl: String,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Points virtual cluster NAME at other bootstrap servers by editing the config file; the
    /// running gateway (which watches it) switches: connections to the old upstream finish what
    /// is in flight and close, new ones go to the new one, and the switch is an audit record.
    Switch {
        /// The virtual cluster (`default` for a config without [[virtual_clusters]]).
        name: String,
        /// New bootstrap servers, host:port, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        #[arg(long, short, default_value = "policies/gateway.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a development CA, a server certificate for localhost/127.0.0.1 and a client certificate.
    Dev {
        #[arg(long, default_value = "certs/dev")]
        dir: PathBuf,
        /// Common name of the client certificate.
        #[arg(long, default_value = "alice")]
        client_cn: String,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
        /// Another name for the server certificate (repeatable), e.g. `*.eu.kafka.localhost`
        /// for an SNI listener.
        #[arg(long = "server-name")]
        server_names: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or log collectors.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config } => {
            let config = Config::load(&config)?;
            // Before the runtime's threads exist: MIT's library reads its settings from the
            // environment.
            kafka_gateway::auth::gssapi::configure_process(&config);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let running = kafka_gateway::server::start(config).await?;
                for (name, addr) in &running.bootstrap {
                    // One machine-readable line per listener, for scripts and tests.
                    println!("listening {name} {addr}");
                }
                running.run_until_signal().await
            })
        }
        Command::CheckConfig { config } => {
            let config = Config::load(&config)?;
            println!("{}", config.redacted_summary());
            println!("configuration OK");
            Ok(())
        }
        Command::Certs {
            command:
                CertsCommand::Dev {
                    dir,
                    client_cn,
                    force,
                    server_names,
                },
        } => {
            let paths =
                kafka_gateway::certs::write_dev_certs_for(&dir, &client_cn, &server_names, force)?;
            println!("wrote development certificates:");
            for (what, p) in [
                ("CA certificate", &paths.ca_cert),
                ("CA key", &paths.ca_key),
                ("server certificate", &paths.server_cert),
                ("server key", &paths.server_key),
                ("client certificate", &paths.client_cert),
                ("client key", &paths.client_key),
            ] {
                println!("  {what:20} {}", p.display());
            }
            Ok(())
        }
        Command::Users { command } => users(command),
        Command::Audit { command } => audit(command),
        Command::Policy { source, command } => policy(source, command),
        Command::Cluster {
            command: ClusterCommand::Switch { name, to, config },
        } => cluster_switch(&name, &to, &config),
        Command::Oauth { command } => oauth(command),
    }
}

fn audit(command: AuditCommand) -> anyhow::Result<()> {
    use kafka_gateway::audit;
    match command {
        AuditCommand::Verify {
            paths,
            kafka,
            topic,
            command_config,
            timeout,
        } => {
            let files_ok = match (&kafka, paths.is_empty()) {
                (Some(_), true) => true,
                _ => {
                    let (report, ok) = audit::cmd_verify(&paths);
                    print!("{report}");
                    ok
                }
            };
            let copy_ok = match kafka {
                None => true,
                Some(bootstrap) => {
                    let opts = cluster_options(bootstrap, command_config, &timeout)?;
                    let report = current_thread()?
                        .block_on(audit::kafka_verify::cmd_verify_kafka(&opts, &topic))?;
                    println!("audit topic {topic}:");
                    print!("{report}");
                    report.ok()
                }
            };
            anyhow::ensure!(files_ok, "the audit trail does not verify");
            anyhow::ensure!(copy_ok, "the audit topic's copy does not verify");
        }
        AuditCommand::Query {
            paths,
            principal,
            resource,
            decision,
            api,
            event,
            since,
            until,
            json,
        } => {
            let filters = audit::QueryFilters {
                principal,
                resource,
                decision,
                api,
                event,
                since,
                until,
            };
            print!("{}", audit::cmd_query(&paths, &filters, json)?);
        }
        AuditCommand::Tail {
            paths,
            follow,
            last,
            json,
        } => {
            let opts = audit::TailOptions {
                follow,
                last,
                json,
                ..Default::default()
            };
            let stop = std::sync::atomic::AtomicBool::new(false);
            audit::cmd_tail(&paths, &opts, &mut std::io::stdout(), &stop)?;
        }
        AuditCommand::Report { paths, out } => {
            let summary = audit::cmd_report(&paths, &out)?;
            println!("wrote {}: {summary:?}", out.display());
        }
    }
    Ok(())
}

fn policy(source: PolicySourceArgs, command: PolicyCommand) -> anyhow::Result<()> {
    use kafka_gateway::policy::engine::{
        cmd_check, cmd_explain_proposal, cmd_quotas, cmd_who_can_reserving, Proposal,
    };
    // Import reads a cluster, not a policy: no policy source is loaded for it.
    let command = match command {
        PolicyCommand::Import { cluster, out } => return policy_import(cluster, out),
        PolicyCommand::Diff { audit, since, json } => {
            let out = kafka_gateway::audit::shadow_diff::cmd_diff(&audit, since.as_deref(), json)?;
            print!("{out}");
            return Ok(());
        }
        other => other,
    };
    // Read once: it names the policy (unless --model and --file say it all) and the audit topic
    // it reserves (explain and who-can answer as the gateway would).
    let loaded = Config::load(&source.config);
    let reserved: Vec<String> = loaded
        .as_ref()
        .ok()
        .and_then(|c| c.audit.as_ref()?.kafka.as_ref())
        .map(|k| vec![k.topic.clone()])
        .unwrap_or_default();
    let (model, files, shadow_files, super_users) =
        if source.model.is_some() && !source.files.is_empty() {
            (
                source.model.unwrap_or_default(),
                source.files,
                source.shadow_files,
                source.super_users,
            )
        } else {
            let authz = pick_cluster(loaded?, source.virtual_cluster.as_deref())?.authz;
            anyhow::ensure!(
                !authz.allow_all,
                "{}: authorization.allow_all = true, there is no policy to check",
                source.config.display()
            );
            let model = source
                .model
                .or(authz.model)
                .ok_or_else(|| anyhow::anyhow!("no model configured"))?;
            let files = if source.files.is_empty() {
                authz.policy_files
            } else {
                source.files
            };
            let supers = if source.super_users.is_empty() {
                authz.super_users
            } else {
                source.super_users
            };
            let shadow = if source.shadow_files.is_empty() {
                authz.shadow_policy_files
            } else {
                source.shadow_files
            };
            (model, files, shadow, supers)
        };
    match command {
        PolicyCommand::Check => {
            let (report, ok) = cmd_check(&model, &files, &super_users);
            print!("{report}");
            // The shadow is checked as the enforced policy is (same model and super users), so a
            // candidate with a typo is found before it is deployed, not by a missing record.
            let shadow_ok = shadow_files.is_empty() || {
                let (report, ok) = cmd_check(&model, &shadow_files, &super_users);
                print!("shadow policy: {report}");
                ok
            };
            anyhow::ensure!(ok, "the policy has errors");
            anyhow::ensure!(shadow_ok, "the shadow policy has errors");
        }
        PolicyCommand::Explain {
            principal,
            operation,
            resource,
            host,
            partitions,
            replication_factor,
            configs,
            broker,
        } => {
            let proposal = Proposal {
                partitions,
                replication_factor,
                configs,
                broker,
            };
            let out = cmd_explain_proposal(
                &model,
                &files,
                &super_users,
                &reserved,
                (&principal, &operation, &resource, host.as_deref()),
                &proposal,
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            print!("{out}");
        }
        PolicyCommand::WhoCan {
            operation,
            resource,
        } => {
            let out = cmd_who_can_reserving(
                &model,
                &files,
                &super_users,
                &reserved,
                (&operation, &resource),
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            print!("{out}");
        }
        PolicyCommand::Quotas {
            principal,
            client_id,
            host,
        } => {
            let out = cmd_quotas(
                &model,
                &files,
                &super_users,
                (&principal, client_id.as_deref(), host.as_deref()),
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            print!("{out}");
        }
        PolicyCommand::Export {
            format,
            out,
            apply,
            cluster,
        } => {
            use kafka_gateway::policy::migrate::cli::{self as migrate, ExportFormat};
            let exported = match (apply, cluster.bootstrap) {
                (true, Some(bootstrap)) => {
                    let opts =
                        cluster_options(bootstrap, cluster.command_config, &cluster.timeout)?;
                    current_thread()?.block_on(migrate::cmd_apply(
                        &model,
                        &files,
                        &super_users,
                        &opts,
                    ))?
                }
                _ => {
                    let format = match format {
                        Some(ExportFormatArg::Json) => ExportFormat::Json,
                        _ => ExportFormat::KafkaAcls,
                    };
                    migrate::cmd_export(&model, &files, &super_users, format)?
                }
            };
            match &out {
                Some(path) if !apply => {
                    migrate::write_output(path, &exported.text)?;
                    eprintln!("wrote {} ACLs to {}", exported.acls, path.display());
                }
                _ => print!("{}", exported.text),
            }
            if let Some(note) = exported.note {
                eprintln!("note: {note}");
            }
        }
        PolicyCommand::Suggest {
            audit,
            since,
            out,
            host,
        } => policy_suggest(
            &audit,
            since.as_deref(),
            out,
            &host,
            (&model, &files, &super_users),
        )?,
        PolicyCommand::Import { .. } | PolicyCommand::Diff { .. } => {
            unreachable!("handled before the policy is loaded")
        }
    }
    Ok(())
}

/// `policy suggest`: the suggestion on standard output or in `out`, the comparison with the
/// enforced policy on standard error.
fn policy_suggest(
    audit: &[PathBuf],
    since: Option<&str>,
    out: Option<PathBuf>,
    host: &str,
    (model, files, super_users): (&std::path::Path, &[PathBuf], &[String]),
) -> anyhow::Result<()> {
    use kafka_gateway::policy::{engine::Engine, files::PolicySet, suggest};
    let since = match since {
        None => None,
        Some(s) => Some(kafka_gateway::audit::time::rfc3339(
            kafka_gateway::audit::time::parse_time_arg(s, std::time::SystemTime::now())
                .ok_or_else(|| {
                    anyhow::anyhow!("--since {s:?}: not a time or a duration like 7d")
                })?,
        )),
    };
    let host: std::net::IpAddr = host
        .parse()
        .map_err(|_| anyhow::anyhow!("--host {host:?} is not an IP address"))?;
    let trail = kafka_gateway::audit::review::load(audit)?;
    let source = audit
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let s = suggest::suggest(trail.records.iter().map(|l| &l.record), since.as_deref());
    let text = suggest::render(&s, &source);
    let suggested = PolicySet::from_texts(None, &[("suggested.policy", &text)], super_users)
        .map_err(|e| anyhow::anyhow!("the suggestion does not load (a bug): {e}"))?;
    let enforced = PolicySet::load(model, files, super_users)?;
    let comparison = suggest::compare(&s, &Engine::new(enforced), &Engine::new(suggested), host);
    match &out {
        Some(path) => {
            kafka_gateway::policy::migrate::cli::write_output(path, &text)?;
            eprintln!("wrote {} rules to {}", s.rules.len(), path.display());
        }
        None => print!("{text}"),
    }
    eprint!("{}", suggest::render_comparison(&comparison));
    anyhow::ensure!(
        comparison.used_but_denied.is_empty(),
        "the suggestion would deny what the trail shows used"
    );
    Ok(())
}

fn policy_import(cluster: ClusterArgs, out: Option<PathBuf>) -> anyhow::Result<()> {
    use kafka_gateway::policy::migrate::cli as migrate;
    let opts = cluster_options(cluster.bootstrap, cluster.command_config, &cluster.timeout)?;
    let imported = current_thread()?.block_on(migrate::cmd_import(&opts))?;
    match out {
        Some(path) => {
            migrate::write_output(&path, &imported.policy)?;
            eprintln!(
                "wrote {} rules from {} to {}",
                imported.rules,
                imported.from,
                path.display()
            );
        }
        None => print!("{}", imported.policy),
    }
    Ok(())
}

fn cluster_options(
    bootstrap: String,
    command_config: Option<PathBuf>,
    timeout: &str,
) -> anyhow::Result<kafka_gateway::policy::migrate::cli::ClusterOptions> {
    let timeout = kafka_gateway::config::parse_duration(timeout)
        .filter(|t| !t.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--timeout {timeout:?} is not a duration like 30s or 2m"))?;
    Ok(kafka_gateway::policy::migrate::cli::ClusterOptions {
        bootstrap,
        command_config,
        timeout,
    })
}

/// The admin commands talk to one broker at a time: a single-threaded runtime is enough.
fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn users(command: UsersCommand) -> anyhow::Result<()> {
    use kafka_gateway::auth::credentials;
    match command {
        UsersCommand::Add {
            name,
            file,
            mechanisms,
            iterations,
            password_stdin,
        } => {
            let mechs = if mechanisms.is_empty() {
                vec![Mechanism::ScramSha256, Mechanism::ScramSha512]
            } else {
                mechanisms
                    .iter()
                    .map(|m| match Mechanism::from_name(m) {
                        Some(m @ (Mechanism::ScramSha256 | Mechanism::ScramSha512)) => Ok(m),
                        _ => Err(anyhow::anyhow!(
                            "{m:?} is not SCRAM-SHA-256 or SCRAM-SHA-512"
                        )),
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            };
            let password = read_password(password_stdin)?;
            credentials::add_user(&file, &name, &password, &mechs, iterations)?;
            let names: Vec<&str> = mechs.iter().map(|m| m.name()).collect();
            println!(
                "{name}: {} credentials written to {}",
                names.join(" + "),
                file.display()
            );
        }
        UsersCommand::Remove { name, file } => {
            if credentials::remove_user(&file, &name)? {
                println!("{name}: removed from {}", file.display());
            } else {
                anyhow::bail!("{name}: no such user in {}", file.display());
            }
        }
        UsersCommand::List { file } => {
            let store = credentials::CredentialStore::load(&file)?;
            for u in store.users() {
                let mechs: Vec<String> = u
                    .mechanisms
                    .iter()
                    .map(|(m, i)| format!("{m} (i={i})"))
                    .collect();
                println!("{:24} {}", u.name, mechs.join(", "));
            }
        }
    }
    Ok(())
}

/// Reads a password from a terminal prompt (twice, without echo) or from the first line of stdin.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        anyhow::ensure!(first == again, "the passwords do not match");
        first
    };
    anyhow::ensure!(!password.is_empty(), "empty password");
    Ok(password)
}

fn oauth(command: OauthCommand) -> anyhow::Result<()> {
    use kafka_gateway::auth::oauth;
    match command {
        OauthCommand::DevKeys { dir, force } => {
            let paths = oauth::write_dev_keys(&dir, force)?;
            println!(
                "wrote {} and {}",
                paths.jwks.display(),
                paths.signing_key.display()
            );
        }
        OauthCommand::Token {
            key,
            kid,
            issuer,
            audience,
            subject,
            scopes,
            ttl,
        } => {
            let (expired, ttl_text) = match ttl.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, ttl.as_str()),
            };
            let ttl = kafka_gateway::config::parse_duration(ttl_text)
                .ok_or_else(|| anyhow::anyhow!("--ttl {ttl:?} is not a duration like 1h or 10m"))?;
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let token = if expired {
                oauth::mint_expired_token(&key, &kid, &issuer, &audience, &subject, &scopes, ttl)?
            } else {
                oauth::mint_token(&key, &kid, &issuer, &audience, &subject, &scopes, ttl)?
            };
            println!("{token}");
        }
    }
    Ok(())
}

/// The virtual cluster a policy command is about: the one named, or the only one.
fn pick_cluster(
    config: kafka_gateway::config::Config,
    name: Option<&str>,
) -> anyhow::Result<kafka_gateway::config::VirtualCluster> {
    let names: Vec<String> = config.clusters.iter().map(|c| c.name.clone()).collect();
    let mut clusters = config.clusters.into_iter();
    match name {
        Some(n) => clusters
            .find(|c| c.name == n)
            .ok_or_else(|| anyhow::anyhow!("no virtual cluster {n:?} (the config has {names:?})")),
        None if names.len() == 1 => clusters.next().ok_or_else(|| anyhow::anyhow!("no cluster")),
        None => anyhow::bail!(
            "the config declares virtual clusters {names:?}: say which with --virtual-cluster"
        ),
    }
}

/// `cluster switch`: the config edited and validated, then replaced in one rename.
fn cluster_switch(name: &str, to: &[String], path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let edited = kafka_gateway::config::with_upstream_servers(&text, name, to)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    if let Err(e) = Config::parse(&edited, base) {
        anyhow::bail!("the edited config would not load, nothing written: {e:?}");
    }
    let tmp = path.with_extension("toml.switch-tmp");
    std::fs::write(&tmp, &edited).with_context(|| format!("writing {}", tmp.display()))?;
    // The config may hold secrets (an upstream password): the new file keeps the old one's mode.
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions();
    std::fs::set_permissions(&tmp, mode).with_context(|| format!("setting {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    println!(
        "{}: virtual cluster {name} now points at {}; a running gateway with this config switches within a second (or on SIGHUP)",
        path.display(),
        to.join(",")
    );
    Ok(())
}
