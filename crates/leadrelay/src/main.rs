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
    /// The sales team's opportunities.
    Opportunities {
        #[command(subcommand)]
        command: OpportunitiesCommand,
    },
    /// The sales KPIs of a publisher (JSON, or CSV with --csv).
    Kpis {
        /// The publisher.
        #[arg(long)]
        publisher: String,
        /// Opportunities opened at or after (RFC 3339 or a date).
        #[arg(long)]
        since: Option<String>,
        /// … and before.
        #[arg(long)]
        until: Option<String>,
        /// Only this offer (publisherid.offerid).
        #[arg(long)]
        offer: Option<String>,
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Only this action code.
        #[arg(long)]
        action: Option<String>,
        /// The same figures per offer, source or action.
        #[arg(long)]
        group_by: Option<String>,
        /// Print CSV instead of JSON.
        #[arg(long)]
        csv: bool,
    },
    /// Fill a database with a realistic sales history and time the sales queries over it.
    #[command(hide = true)]
    Seed(cmd::seed::SeedArgs),
    /// Encryption keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The people of a publisher's sales team (the first one is made here).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add a person with a password (asked at the terminal, or --password-stdin).
    Add {
        /// Their publisher.
        #[arg(long)]
        publisher: String,
        /// Create the publisher first, with this display name (the very first person).
        #[arg(long, value_name = "NAME")]
        new_publisher: Option<String>,
        /// Their sign-in address (one user per address, whatever the publisher).
        #[arg(long)]
        email: String,
        /// Their name.
        #[arg(long)]
        name: String,
        /// admin, member or viewer.
        #[arg(long, default_value = "admin")]
        role: String,
        /// Read the password from one line of standard input instead of asking for it.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List a publisher's people, oldest first.
    List {
        /// The publisher.
        #[arg(long)]
        publisher: String,
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
enum OpportunitiesCommand {
    /// List a publisher's opportunities, newest first.
    List {
        /// The publisher.
        #[arg(long)]
        publisher: String,
        /// new, contacted, qualified, won, lost or disqualified.
        #[arg(long)]
        status: Option<String>,
        /// A user id (usr_…) or none.
        #[arg(long)]
        owner: Option<String>,
        /// today, overdue or sla_breached.
        #[arg(long)]
        due: Option<String>,
        /// How many at most.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one opportunity (JSON, as the API answers).
    Show {
        /// opp_…
        id: String,
    },
    /// Give an opportunity an owner (the owner is told by e-mail), or none.
    Assign {
        /// opp_…
        id: String,
        /// A user id (usr_…) or none.
        #[arg(long)]
        owner: String,
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
                Command::Migrate => cmd::migrate::run(&config).await,
                Command::Config => cmd::print_config(&config),
                Command::Leads { command: LeadsCommand::List { publisher, offer, limit, json } } => {
                    cmd::leads::list(&config, publisher, offer, limit, json).await
                }
                Command::Opportunities {
                    command: OpportunitiesCommand::List { publisher, status, owner, due, limit, json },
                } => {
                    cmd::sales::list(&config, cmd::sales::ListArgs { publisher, status, owner, due, limit, json }).await
                }
                Command::Opportunities { command: OpportunitiesCommand::Show { id } } => {
                    cmd::sales::show(&config, &id).await
                }
                Command::Opportunities { command: OpportunitiesCommand::Assign { id, owner } } => {
                    cmd::sales::assign(&config, &id, &owner).await
                }
                Command::Kpis { publisher, since, until, offer, source, action, group_by, csv } => {
                    let args = cmd::sales::KpiArgs { publisher, since, until, offer, source, action, group_by, csv };
                    cmd::sales::kpis(&config, args).await
                }
                Command::Bench(args) => cmd::bench::run(args).await,
                Command::BenchCeiling => cmd::bench::serve_ceiling().await,
                Command::Seed(args) => cmd::seed::run(&config, args).await,
                Command::Keys { command: KeysCommand::Generate } => cmd::keys::generate(),
                Command::Keys { command: KeysCommand::Rotate } => cmd::keys::rotate(&config).await,
                Command::Keys { command: KeysCommand::Status } => cmd::keys::status(&config).await,
                Command::Keys { command: KeysCommand::Retire { id } } => cmd::keys::retire(&config, &id).await,
                Command::Users {
                    command: UsersCommand::Add { publisher, new_publisher, email, name, role, password_stdin },
                } => {
                    let args = cmd::users::AddArgs { publisher, new_publisher, email, name, role, password_stdin };
                    cmd::users::add(&config, args).await
                }
                Command::Users { command: UsersCommand::List { publisher } } => {
                    cmd::users::list(&config, &publisher).await
                }
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
