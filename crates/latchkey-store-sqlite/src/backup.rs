//! Backups of a SQLite database while latchkey serves it, and restores (docs/operations.md,
//! "Backups"). The copy is SQLite's online backup: every page copied in one step under one
//! read transaction, so it is a consistent snapshot, and in WAL mode writers are not blocked
//! while it runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey_store::StoreError;
use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};

/// Pages per step: more than any database has, so the copy is one step and one snapshot (a
/// copy in several steps restarts whenever another connection writes between them).
const ALL_PAGES: std::os::raw::c_int = std::os::raw::c_int::MAX;

/// What a backup or restore copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub pages: i64,
    pub bytes: i64,
}

fn err(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("{context}: {e}"))
}

/// Copies the database at `database` into a new file `target` (which must not exist), written
/// beside it first and renamed when complete, so a half-written backup never has the name.
pub fn backup(database: &Path, target: &Path) -> Result<Copied, StoreError> {
    if target.exists() {
        return Err(StoreError::Other(format!("{} exists: give a new file name", target.display())));
    }
    if !database.exists() {
        return Err(StoreError::Other(format!("no database at {}", database.display())));
    }
    let source = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| err("cannot open the database", e))?;
    source.busy_timeout(Duration::from_secs(5)).map_err(|e| err("busy timeout", e))?;
    let partial = partial_name(target);
    let _ = std::fs::remove_file(&partial);
    let copied = copy(&source, &partial)
        .and_then(|copied| {
            let written = Connection::open(&partial).map_err(|e| err("cannot read the backup back", e))?;
            check_latchkey_database(&written)?;
            Ok(copied)
        })
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })?;
    std::fs::rename(&partial, target).map_err(|e| err("cannot name the backup", e))?;
    Ok(copied)
}

/// What a restore did: pages copied, and where the database it replaced was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub copied: Copied,
    pub kept: Option<PathBuf>,
}

/// Puts the backup `file` in place of the database at `database` (latchkey must be stopped).
/// The file is checked first (SQLite's integrity check and latchkey's migration history); the
/// database it replaces is kept beside it as `<database>.before-restore` (`.1`, `.2`, … when
/// that exists: an earlier restore's copy is never overwritten). Every sync space gets a new
/// epoch, so every client that read it before resets and reads it again (its cursor could
/// otherwise match a counter the restored space reaches again with other changes).
pub fn restore(file: &Path, database: &Path) -> Result<Restored, StoreError> {
    let backup = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| err(&format!("cannot open {}", file.display()), e))?;
    check_latchkey_database(&backup).map_err(|e| err(&format!("{} is not a latchkey backup", file.display()), e))?;
    let kept = if database.exists() {
        let current = Connection::open(database).map_err(|e| err("cannot open the database", e))?;
        let kept = free_name(&format!("{}.before-restore", database.display()))?;
        copy(&current, &kept)?;
        Some(kept)
    } else {
        create_private(database)?;
        None
    };
    let mut target = Connection::open(database).map_err(|e| err("cannot open the database", e))?;
    target.busy_timeout(Duration::from_secs(5)).map_err(|e| err("busy timeout", e))?;
    let copied = {
        let step = Backup::new(&backup, &mut target).map_err(|e| err("cannot start the restore", e))?;
        step.run_to_completion(ALL_PAGES, Duration::from_millis(50), None).map_err(|e| err("restore", e))?;
        let progress = step.progress();
        i64::from(progress.pagecount)
    };
    target
        .execute("UPDATE sync_spaces SET epoch = lower(hex(randomblob(8)))", [])
        .map_err(|e| err("cannot give the sync spaces new epochs", e))?;
    let page_size: i64 = target.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(|e| err("page size", e))?;
    Ok(Restored { copied: Copied { pages: copied, bytes: copied * page_size }, kept })
}

/// `base`, or `base.1`, `base.2` …: the first name no file has.
fn free_name(base: &str) -> Result<PathBuf, StoreError> {
    (0..1000)
        .map(|n| PathBuf::from(if n == 0 { base.to_owned() } else { format!("{base}.{n}") }))
        .find(|p| !p.exists())
        .ok_or_else(|| StoreError::Other(format!("too many {base}.* files")))
}

/// Copies into a new file that only this user can read: a backup holds password hashes, sealed
/// keys and every user's data, like the database itself.
fn copy(source: &Connection, target: &Path) -> Result<Copied, StoreError> {
    create_private(target)?;
    let mut dest = Connection::open(target).map_err(|e| err(&format!("cannot create {}", target.display()), e))?;
    let pages = {
        let step = Backup::new(source, &mut dest).map_err(|e| err("cannot start the backup", e))?;
        step.run_to_completion(ALL_PAGES, Duration::from_millis(50), None).map_err(|e| err("backup", e))?;
        i64::from(step.progress().pagecount)
    };
    let page_size: i64 = dest.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(|e| err("page size", e))?;
    Ok(Copied { pages, bytes: pages * page_size })
}

/// Sound (`PRAGMA integrity_check`) and latchkey's (its migration history is there).
fn check_latchkey_database(conn: &Connection) -> Result<(), StoreError> {
    let integrity: String =
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| err("integrity check", e))?;
    if integrity != "ok" {
        return Err(StoreError::Other(format!("integrity check failed: {integrity}")));
    }
    let migrations: i64 = conn
        .query_row("SELECT count(*) FROM _sqlx_migrations WHERE success", [], |r| r.get(0))
        .map_err(|e| err("no latchkey schema", e))?;
    if migrations == 0 {
        return Err(StoreError::Other("no latchkey schema".into()));
    }
    Ok(())
}

fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(|_| ()).map_err(|e| err(&format!("cannot create {}", path.display()), e))
}

fn partial_name(target: &Path) -> PathBuf {
    PathBuf::from(format!("{}.partial", target.display()))
}
