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

fn key_file(config: &Config) -> anyhow::Result<PathBuf> {
    if !config.security.encryption_key.is_empty() {
        bail!(
            "the key comes from security.encryption_key, which leadrelay does not write: to rotate, set it to a new key \
             (`leadrelay keys generate`), move the old one to security.previous_encryption_keys and restart every node"
        );
    }
    Ok(config.storage.data_dir.join(KEY_FILE))
}

fn read_keys(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the key file {}", path.display()))?;
    let keys: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect();
    if keys.is_empty() {
        bail!("{} holds no key; restore it from your backup", path.display());
    }
    Ok(keys)
}

/// Replaces the key file (write a new private file, then rename it over the old one).
fn write_keys(path: &Path, keys: &[String]) -> anyhow::Result<()> {
    let next = path.with_extension("key.new");
    let _ = std::fs::remove_file(&next);
    let mut text =
        "# leadrelay encryption keys, the sealing key first: back this file up apart from the database\n".to_owned();
    for k in keys {
        text.push_str(k);
        text.push('\n');
    }
    write_private(&next, &text)?;
    std::fs::rename(&next, path).with_context(|| format!("replacing the key file {}", path.display()))
}

fn id_of(key: &str) -> anyhow::Result<String> {
    Ok(Keyring::from_base64(key, []).context("a key in the key file")?.primary().to_string())
}

/// `leadrelay keys rotate`: a new sealing key first in the key file, the old ones kept after it.
pub async fn rotate(config: &Config) -> anyhow::Result<()> {
    let path = key_file(config)?;
    let mut keys = read_keys(&path)?;
    let old = id_of(&keys[0])?;
    let new = Keyring::generate_key();
    let new_id = id_of(&new)?;
    keys.insert(0, new);
    write_keys(&path, &keys)?;
    let ops = super::open_ops(config).await?;
    let entry =
        ops.audit_entry(&leadrelay_core::audit::Actor::admin(), None, leadrelay_core::audit::AuditAction::KeysRotated);
    ops.record(entry).await.map_err(|e| anyhow::anyhow!("recording the rotation in the audit log: {e}"))?;
    println!("new sealing key {new_id} (was {old}) in {}", path.display());
    println!(
        "restart every leadrelay serve on this database: each seals with the new key and re-seals older values in the background."
    );
    println!(
        "`leadrelay keys status` shows what is left; keep the old key until it holds 0 values, then `leadrelay keys retire {old}`."
    );
    Ok(())
}

/// `leadrelay keys status`: sealed values per key.
pub async fn status(config: &Config) -> anyhow::Result<()> {
    let ops = super::open_ops(config).await?;
    let ring = keyring(config)?.ring;
    let configured: Vec<String> = ring.ids().iter().map(ToString::to_string).collect();
    let counts = ops.sealed_values_by_key().await.map_err(|e| anyhow::anyhow!("reading the database: {e}"))?;
    println!("{:<10} {:>12}  note", "key", "values");
    for id in &configured {
        let n = counts.iter().find(|(k, _)| k == id).map_or(0, |(_, n)| *n);
        let note = if *id == ring.primary().to_string() { "sealing key" } else { "older key" };
        println!("{id:<10} {n:>12}  {note}");
    }
    for (id, n) in counts.iter().filter(|(k, _)| !configured.contains(k)) {
        println!("{id:<10} {n:>12}  NOT CONFIGURED: these values cannot be read");
    }
    Ok(())
}

/// `leadrelay keys retire ID`: removes an older key that no longer seals any value.
pub async fn retire(config: &Config, id: &str) -> anyhow::Result<()> {
    let path = key_file(config)?;
    let keys = read_keys(&path)?;
    if id_of(&keys[0])? == id {
        bail!("{id} is the sealing key; rotate first");
    }
    let ops = super::open_ops(config).await?;
    let counts = ops.sealed_values_by_key().await.map_err(|e| anyhow::anyhow!("reading the database: {e}"))?;
    if let Some((_, n)) = counts.iter().find(|(k, _)| k == id).filter(|(_, n)| *n > 0) {
        bail!(
            "key {id} still seals {n} values; wait until `leadrelay keys status` shows 0 (a serving process re-seals them)"
        );
    }
    let kept: Vec<String> = keys.iter().filter(|k| id_of(k).map_or(true, |k| k != id)).cloned().collect();
    if kept.len() == keys.len() {
        bail!("no key {id} in {}", path.display());
    }
    write_keys(&path, &kept)?;
    println!("retired key {id}");
    Ok(())
}
