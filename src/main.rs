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
                },
        } => {
            let paths = kafka_gateway::certs::write_dev_certs(&dir, &client_cn, force)?;
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
        Command::Oauth { command } => oauth(command),
    }
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
