//! A PostgreSQL schema of its own for each test, so tests run side by side on one server and
//! leave nothing behind. The server is `LEADRELAY_TEST_POSTGRES_URL` when set (`scripts/test`
//! sets it: the local server on 127.0.0.1:5432 when one answers, else a private cluster it
//! starts), else the local server. A test that needs PostgreSQL and cannot reach it fails and
//! says how to get one; it is never skipped.

use std::sync::atomic::{AtomicU64, Ordering};

/// The server tests use: `LEADRELAY_TEST_POSTGRES_URL`, else the local one.
pub fn server_url() -> String {
    std::env::var("LEADRELAY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A schema created for one test, dropped (with everything in it) when this is dropped.
#[derive(Debug)]
pub struct TestSchema {
    server: String,
    name: String,
    /// The server's URL with this schema as the connection's search path: give it to
    /// `PostgresStore::open` or to `leadrelay serve` as `storage.url`.
    pub url: String,
}

impl TestSchema {
    /// Creates a schema named after `label` (made unique), on [`server_url`].
    ///
    /// # Panics
    /// When the server cannot be reached: run `scripts/test`, which provides one.
    pub async fn create(label: &str) -> Self {
        Self::create_on(&server_url(), label).await
    }

    /// Creates a schema named after `label` (made unique) on the server at `server`.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn create_on(server: &str, label: &str) -> Self {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let clean: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .take(24)
            .collect();
        let name = format!("t_{clean}_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let client = connect(server).await;
        if SEQ.load(Ordering::Relaxed) == 1 {
            drop_abandoned_schemas(&client).await;
        }
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("creating the test schema");
        let separator = if server.contains('?') { '&' } else { '?' };
        // Named after the schema, so that dropping it can first end every session left open.
        let url = format!("{server}{separator}options=-csearch_path%3D{name}&application_name={name}");
        Self { server: server.to_owned(), name, url }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Drops the schemas of test processes that are gone (killed before their schemas' drop ran).
async fn drop_abandoned_schemas(client: &tokio_postgres::Client) {
    let Ok(rows) = client.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'", &[]).await else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.rsplit('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await;
        }
    }
}

/// A connection to `url`, or a panic that says what to do.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL for the tests ({e}); run scripts/test, which starts one, or set \
             LEADRELAY_TEST_POSTGRES_URL"
        )
    });
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside or outside a runtime; a thread of its own works in both.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok((client, connection)) = tokio_postgres::connect(&server, tokio_postgres::NoTls).await {
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    let _ = client
                        .execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                            &[&name],
                        )
                        .await;
                    let _ = client
                        .batch_execute(&format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}
