//! The key behind every signed link, VERP tag and session: `PAPERBOY_SECRET` when set, else
//! one generated once and kept in `PAPERBOY_SECRET_FILE` (mode 0600), never in the
//! database, so a copy of the database forges nothing. Instances that share a database
//! must share the key: give them the same `PAPERBOY_SECRET` (or the same file).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use rand::RngCore;
use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::config::Settings;
use crate::store::app_settings;

/// The signing key. Without `PAPERBOY_SECRET`: the file's; when the file does not exist
/// yet, the key an older version kept in the database (moved out, once), else a new one.
pub async fn load(db: &PgPool, settings: &Settings) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &settings.secret {
        return Ok(s.expose_secret().as_bytes().to_vec());
    }
    let path = settings.secret_file.as_path();
    let legacy = app_settings::legacy_secret(db).await.context("reading the stored secret")?;
    let key = match read(path)? {
        Some(key) => {
            if legacy.as_ref().is_some_and(|l| *l != key) {
                tracing::warn!(file = %path.display(), "the database held another secret; the file's is kept");
            }
            key
        }
        None => {
            let candidate = legacy.clone().unwrap_or_else(generate);
            create(path, &candidate)?;
            // Another process may have made the file first: its key is everyone's.
            read(path)?.context("the secret file vanished after it was written")?
        }
    };
    if legacy.is_some() {
        app_settings::forget_legacy_secret(db).await.context("deleting the stored secret")?;
        tracing::info!(file = %path.display(), "moved the signing secret out of the database");
    }
    Ok(key.into_bytes())
}

fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The key in the file, if the file exists.
fn read(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = text.trim().to_string();
            if key.is_empty() {
                bail!("the secret file {} is empty", path.display());
            }
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(file = %path.display(), mode = format!("{mode:o}"), "the secret file is readable by others; chmod 600 it");
            }
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read the secret file {}", path.display())),
    }
}

/// Writes the key to a private file beside `path`, then links it into place: the file
/// appears whole or not at all, and a file another process made first is kept.
fn create(path: &Path, key: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder of {}", path.display()))?;
    }
    let draft = path.with_extension(format!("new-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&draft)
        .and_then(|mut f| f.write_all(format!("{key}\n").as_bytes()).and_then(|()| f.sync_all()));
    let linked = written.and_then(|()| std::fs::hard_link(&draft, path));
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("cannot write the secret file {}", path.display()))
        }
    }
}
