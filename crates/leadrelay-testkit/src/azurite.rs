//! A real Azurite Table service on a free loopback port, in memory, stopped when dropped.
//! `scripts/test` installs it from the npm registry into `tools/azurite`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Azurite Table service.
pub struct Azurite {
    child: Child,
    port: u16,
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("LEADRELAY_TEST_AZURITE") {
        return PathBuf::from(p);
    }
    let local = crate::python::workspace_root().join("tools/azurite/node_modules/.bin/azurite-table");
    assert!(
        local.exists(),
        "Azurite is not installed at {}: run scripts/test (it installs it with npm)",
        local.display()
    );
    local
}

impl Azurite {
    /// Starts Azurite and waits until it accepts connections.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(binary())
            .args(["--tableHost", "127.0.0.1", "--tablePort", &port.to_string()])
            .args(["--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite-table");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "Azurite did not listen on {port} within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    /// The table endpoint (path-style: the account is the first path segment).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/devstoreaccount1", self.port)
    }

    /// A connection string for the emulator's well-known account at this instance.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
             AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;\
             TableEndpoint={};",
            self.endpoint()
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
