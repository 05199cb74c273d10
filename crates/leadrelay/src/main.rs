//! The `leadrelay` binary: picks the storage backend and the connectors, then runs a command.

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// leadrelay: durable marketplace leads, delivered to every CRM.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file with settings (over the built-in defaults; LEADRELAY_* variables win).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory (overrides storage.data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and the delivery workers.
    Serve {
        /// Listen address (overrides server.listen), e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets redacted).
    Config,
    /// Work with stored leads.
    Leads {
        #[command(subcommand)]
        command: LeadsCommand,
    },
    /// Measure ingest, delivery, latency, memory and storage against same-run ceilings (SPEC §9).
    Bench(cmd::bench::BenchArgs),
    /// The bare HTTP server `bench` measures its ceiling against (started by `bench`).
    #[command(hide = true)]
    BenchCeiling,
    /// Fill a database with a realistic sales history and time the sales queries over it.
    #[command(hide = true)]
    Seed(cmd::seed::SeedArgs),
    /// Encryption keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print a new random key for security.encryption_key.
    Generate,
    /// Put a new sealing key first in the key file (the old ones stay to read older values).
    Rotate,
    /// Show how many sealed values each key holds.
    Status,
    /// Remove an older key that no longer seals any value.
    Retire {
        /// The key id (from `keys status`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum LeadsCommand {
    /// List leads, newest first.
    List {
        /// Only this publisher.
        #[arg(long)]
        publisher: Option<String>,
        /// Only this offer (publisherid.offerid).
        #[arg(long)]
        offer: Option<String>,
        /// How many at most.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The command runs as a spawned task: the thread inside `block_on` is not a runtime worker,
    // and a server polled there would serialise its accept loop on one extra thread.
    let result = runtime.block_on(async {
        tokio::spawn(async move {
            let config = cmd::load_config(cli.config.as_deref(), cli.data_dir.as_deref())?;
            match cli.command {
                Command::Serve { listen } => cmd::serve::run(config, listen).await,
                Command::Migrate => cmd::migrate::run(&config),
                Command::Config => cmd::print_config(&config),
                Command::Leads { command: LeadsCommand::List { publisher, offer, limit, json } } => {
                    cmd::leads::list(&config, publisher, offer, limit, json).await
                }
                Command::Bench(args) => cmd::bench::run(args).await,
                Command::BenchCeiling => cmd::bench::serve_ceiling().await,
                Command::Seed(args) => cmd::seed::run(&config, args).await,
                Command::Keys { command: KeysCommand::Generate } => cmd::keys::generate(),
                Command::Keys { command: KeysCommand::Rotate } => cmd::keys::rotate(&config).await,
                Command::Keys { command: KeysCommand::Status } => cmd::keys::status(&config).await,
                Command::Keys { command: KeysCommand::Retire { id } } => cmd::keys::retire(&config, &id).await,
            }
        })
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the command panicked: {e}")))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
