//! A real SMTP server (aiosmtpd, from `scripts/test`'s Python environment) that writes each
//! message to a Maildir the test reads back. With TLS it requires STARTTLS, using a test CA and
//! a leaf certificate for `localhost` made here; the CA is handed to tests as PEM text, the way
//! a publisher gives it (`ca_pem`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The fixture's user name.
pub const USER: &str = "mailer";
/// The fixture's password.
pub const PASSWORD: &str = "s3cret";

/// A running SMTP server; stopped when dropped.
pub struct SmtpServer {
    child: Child,
    port: u16,
    dir: PathBuf,
    ca_pem: Option<String>,
}

/// A self-signed CA certificate, as PEM text, that signs nothing: for tests of settings that
/// take a CA.
pub fn unrelated_ca_pem() -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&key).expect("CA certificate").pem()
}

/// Writes a `localhost` leaf signed by a new CA; returns (CA PEM text, leaf.pem, leaf.key).
fn make_certificates(dir: &Path) -> (String, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let (cert, key) = (dir.join("leaf.pem"), dir.join("leaf.key"));
    std::fs::write(&cert, leaf.pem()).expect("write leaf");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("write key");
    (ca_cert.pem(), cert, key)
}

impl SmtpServer {
    /// Starts the server; `tls` requires STARTTLS with a test CA (see [`SmtpServer::ca_pem`]).
    pub fn start(tls: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("leadrelay-smtp-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("fixture dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/smtp_fixture.py");
        let mut cmd = Command::new(crate::python::python());
        cmd.args(["-W", "ignore"]).arg(script).arg(dir.join("maildir")).arg(port.to_string());
        let ca_pem = tls.then(|| {
            let (ca_pem, cert, key) = make_certificates(&dir);
            cmd.arg(cert).arg(key);
            ca_pem
        });
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start the SMTP fixture");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read READY");
        assert!(line.starts_with("READY"), "the SMTP fixture did not start: {line:?}");
        Self { child, port, dir, ca_pem }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM text of the CA certificate that signed the server's certificate.
    ///
    /// # Panics
    /// For a server started without TLS.
    pub fn ca_pem(&self) -> &str {
        self.ca_pem.as_deref().expect("the fixture was started with TLS")
    }

    /// Every delivered message, raw, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let new = self.dir.join("maildir/new");
        let mut files: Vec<_> =
            std::fs::read_dir(new).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}
