//! Runs the Python `standardwebhooks` library over recorded deliveries, so our signatures are
//! checked by code we did not write. `scripts/test` installs the library into `.venv-test`.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine;

use crate::receiver::Recorded;

/// The Python interpreter that has `standardwebhooks`: `LEADRELAY_TEST_PYTHON`, else the
/// workspace's `.venv-test`. Panics with the fix when neither exists.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("LEADRELAY_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv-test/bin/python");
    assert!(
        venv.exists(),
        "no Python test environment at {}: run scripts/test (it installs standardwebhooks)",
        venv.display()
    );
    venv
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Verifies every recorded request against `secret`; returns the verifier's output, panics if
/// any signature is refused.
pub fn verify_signatures(secret: &str, requests: &[Recorded]) -> String {
    let records: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| {
            serde_json::json!({
                "secret": secret,
                "headers": r.headers,
                "body_b64": base64::engine::general_purpose::STANDARD.encode(&r.body),
            })
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("leadrelay-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(format!("records-{}.json", rand_suffix()));
    std::fs::write(&file, serde_json::to_vec(&records).unwrap()).expect("write records");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/verify_webhooks.py");
    let out = Command::new(python()).arg(script).arg(&file).output().expect("run the Python verifier");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "standardwebhooks refused a signature:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(file);
    stdout
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}
