//! `leadrelay serve`: API + workers on one process. SQLite refuses a second serving process on
//! the same file; on PostgreSQL, any number of them share one database.

use std::sync::Arc;

use anyhow::Context;
use leadrelay_core::SystemClock;
use leadrelay_server::auth::AdminToken;
use leadrelay_server::config::Config;
use leadrelay_server::{Application, Parts};
use tokio_util::sync::CancellationToken;

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(mut config: Config, listen: Option<String>) -> anyhow::Result<()> {
    if let Some(l) = listen {
        config.server.listen = l;
        config.validate().map_err(anyhow::Error::msg)?;
    }
    leadrelay_server::telemetry::init(&config.telemetry);
    let data_dir = config.storage.data_dir.clone();
    super::private_dir(&data_dir)?;
    let opening = super::Opening { migrate: config.storage.migrate_on_start, serving: true };
    let storage = super::open_storage(&config, opening).await?;
    let env_token = std::env::var("LEADRELAY_ADMIN_TOKEN").ok();
    let (admin, printed) = AdminToken::bootstrap(storage.as_ref(), &data_dir, env_token.as_deref())
        .await
        .context("setting up the admin token")?;
    let parts = Parts { storage, destinations: super::destinations(&config), clock: Arc::new(SystemClock) };
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("listening on {} (set --listen or LEADRELAY_SERVER__LISTEN)", config.server.listen))?;
    let addr = listener.local_addr()?;
    let app = Application::build(config, parts, admin)?;

    println!("leadrelay listening on http://{addr}");
    println!("data directory: {}", std::fs::canonicalize(&data_dir).unwrap_or(data_dir).display());
    match printed {
        Some(token) => println!("admin token (shown once, stored hashed): {token}"),
        None => println!("admin token: set earlier (LEADRELAY_ADMIN_TOKEN or the stored hash)"),
    }
    println!(
        "dashboard: http://{addr}/ui/ (its first person: leadrelay users add --publisher ID --new-publisher NAME \
         --email E --name N --role admin)"
    );

    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    app.run(listener, shutdown).await?;
    Ok(())
}

async fn on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: finishing in-flight requests and deliveries");
    shutdown.cancel();
}
