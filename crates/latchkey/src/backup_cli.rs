//! `latchkey backup <file>` and `latchkey restore <file>` for SQLite (docs/operations.md,
//! "Backups"); PostgreSQL is backed up with its own tools, as documented there.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::config::Config;

/// The SQLite file of `config`'s database URL; an error naming the PostgreSQL way otherwise.
pub fn sqlite_file(config: &Config) -> anyhow::Result<PathBuf> {
    let url = config.database_url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(anyhow!(
            "the database is PostgreSQL: back it up with pg_dump (or the provider's snapshots) and restore with \
             pg_restore, as docs/operations.md describes"
        ));
    }
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let file = path.split('?').next().unwrap_or(path);
    if file.is_empty() || file == ":memory:" {
        return Err(anyhow!("an in-memory database has nothing to back up"));
    }
    Ok(PathBuf::from(file))
}

/// Copies the database to `target` while latchkey may be serving it.
pub async fn backup(config: &Config, target: &Path) -> anyhow::Result<()> {
    let database = sqlite_file(config)?;
    let target = target.to_owned();
    let copied = tokio::task::spawn_blocking(move || latchkey_store_sqlite::backup::backup(&database, &target))
        .await?
        .map_err(|e| anyhow!("backup failed: {e}"))?;
    println!("backed up {} pages ({} bytes)", copied.pages, copied.bytes);
    Ok(())
}

/// Puts the backup `file` in place of the database (stop latchkey first).
pub async fn restore(config: &Config, file: &Path) -> anyhow::Result<()> {
    let database = sqlite_file(config)?;
    let (file, target) = (file.to_owned(), database.clone());
    let restored = tokio::task::spawn_blocking(move || latchkey_store_sqlite::backup::restore(&file, &target))
        .await?
        .map_err(|e| anyhow!("restore failed: {e}"))?;
    println!("restored {} pages ({} bytes) into {}", restored.copied.pages, restored.copied.bytes, database.display());
    if let Some(kept) = restored.kept {
        println!("the database it replaced is kept as {}", kept.display());
    }
    println!("sync clients get `reset` for every space on their next pull, and read it again");
    Ok(())
}
