//! The encryption key: where a process gets it, and `leadrelay keys`.
//!
//! The key comes from `security.encryption_key` when set (operators who keep secrets in a vault
//! of their own, and every node of a shared database). Otherwise it lives in
//! `<data_dir>/encryption.key`, one base64 key per line, the sealing key first; a database's
//! first start writes a new one there (0600) and says loudly to back it up, because without it
//! nothing in the database can be read. The file is written before the database is touched and
//! removed again if the database turns out to need another key, so a stray key never hides the
//! real one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use leadrelay_core::vault::Keyring;
use leadrelay_server::config::Config;

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "encryption.key";

/// The keys a process opens its database with.
pub struct Keys {
    /// The keyring.
    pub ring: Keyring,
    /// The key file this process just created, if it did.
    pub created: Option<PathBuf>,
}

/// The configured keyring, creating the key file when neither the configuration nor the data
/// directory holds a key.
///
/// # Errors
/// A key that is not 32 bytes of base64 (naming where it came from), or a key file that
/// cannot be read or written.
pub fn keyring(config: &Config) -> anyhow::Result<Keys> {
    let older = config.security.previous_encryption_keys.iter().map(String::as_str);
    if !config.security.encryption_key.is_empty() {
        let ring = Keyring::from_base64(&config.security.encryption_key, older).context("security.encryption_key")?;
        return Ok(Keys { ring, created: None });
    }
    let path = config.storage.data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
            let Some(primary) = lines.next() else {
                bail!("{} holds no key; restore it from your backup", path.display());
            };
            let ring = Keyring::from_base64(primary, lines.chain(older))
                .with_context(|| format!("the key file {}", path.display()))?;
            Ok(Keys { ring, created: None })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keyring::generate_key();
            write_private(
                &path,
                &format!("# leadrelay encryption key: back this file up apart from the database\n{key}\n"),
            )?;
            let ring = Keyring::from_base64(&key, older).context("the generated key")?;
            Ok(Keys { ring, created: Some(path) })
        }
        Err(e) => Err(e).with_context(|| format!("reading the key file {}", path.display())),
    }
}

/// Tells the operator about a key this process created, once the database accepted it.
pub fn announce(created: &Path) {
    eprintln!(
        "leadrelay: generated the encryption key of this database in {}.\n\
         leadrelay: BACK IT UP NOW, apart from the database: without it no lead in the database can be read.\n\
         leadrelay: (or set security.encryption_key / LEADRELAY_SECURITY__ENCRYPTION_KEY to keep the key yourself)",
        created.display()
    );
    tracing::warn!(path = %created.display(), "generated a new encryption key; back it up apart from the database");
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        super::private_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("creating the key file {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing the key file {}", path.display()))
}

/// `leadrelay keys generate`: prints a new random key for `security.encryption_key`.
pub fn generate() -> anyhow::Result<()> {
    println!("{}", Keyring::generate_key());
    Ok(())
}
