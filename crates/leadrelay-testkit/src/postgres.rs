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
        let name = format!("leadrelay_test_{clean}_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
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
    let Ok(rows) =
        client.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'leadrelay\\_test\\_%'", &[]).await
    else {
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

/// A PostgreSQL cluster of one test's own (`initdb` and `pg_ctl` in a temporary directory, on a
/// free loopback port), for tests that stop the database under running nodes and start it
/// again; stopped and removed when dropped. The binaries are those `pg_config --bindir` names;
/// as root they run as the `postgres` user (the server refuses to run as root), who then owns
/// the directory, as in `scripts/test`.
#[derive(Debug)]
pub struct PrivateCluster {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl PrivateCluster {
    /// Creates a cluster (trust authentication, user `postgres`, UTF-8, C locale) and starts it.
    ///
    /// # Panics
    /// When PostgreSQL's binaries are missing or the cluster cannot be created or started; the
    /// message says what failed and shows the server's log.
    pub fn start() -> Self {
        let out = std::process::Command::new("pg_config")
            .arg("--bindir")
            .output()
            .expect("pg_config is missing: install PostgreSQL (scripts/test does) to run this test");
        assert!(out.status.success(), "pg_config --bindir failed: {}", String::from_utf8_lossy(&out.stderr));
        let bin = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let dir = tempfile::Builder::new().prefix("leadrelay-pg-").tempdir().expect("a temporary directory");
        let as_postgres = rustix::process::getuid().is_root();
        if as_postgres {
            let status = std::process::Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(status.success(), "cannot give {} to the postgres user", dir.path().display());
        }
        let mut cluster = Self { bin, dir, port: 0, as_postgres, running: false };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C.UTF-8".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        // A port found free can be taken before the server binds it: try a few.
        let mut attempts = 0;
        loop {
            attempts += 1;
            cluster.port =
                std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
            if cluster.try_start() {
                return cluster;
            }
            assert!(attempts < 5, "the private PostgreSQL cluster did not start; its log:\n{}", cluster.log());
        }
    }

    /// The URL of the cluster's `postgres` database, for [`TestSchema::create_on`].
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, transactions in progress
    /// roll back), and waits until it is down.
    ///
    /// # Panics
    /// When `pg_ctl` fails.
    pub fn stop(&mut self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D".as_ref(), data.as_os_str(), "-m".as_ref(), "fast".as_ref(), "-w".as_ref(), "stop".as_ref()],
        );
        self.running = false;
    }

    /// Starts the server again on the same data directory and port, and waits until it accepts
    /// connections.
    ///
    /// # Panics
    /// When it does not start.
    pub fn start_again(&mut self) {
        assert!(self.try_start(), "the private PostgreSQL cluster did not start again; its log:\n{}", self.log());
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn try_start(&mut self) -> bool {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let ok = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        self.running = ok;
        ok
    }

    /// `program` from the cluster's binaries, as the `postgres` user when running as root.
    fn command(&self, program: &str) -> std::process::Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let out = self.command(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}
