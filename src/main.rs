//! The `kafka-gateway` command: parses the command line and hands off to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
    }
}
