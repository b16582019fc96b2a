//! What `latchkey serve` prints at start: the URL it listens on and, on a fresh database, the
//! secret key. Shared by the benchmark binaries.

use std::path::Path;
use std::process::Stdio;

use anyhow::{anyhow, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts `bin serve` on a free loopback port in `dir`, without rate limits, on SQLite there
/// or on `postgres`; returns the process with its URL and (fresh database) secret key.
/// (`bapi.rs` starts its own, with a data directory it fills first.)
#[allow(dead_code)]
pub async fn start_server(bin: &Path, dir: &Path, postgres: Option<&str>) -> anyhow::Result<(Child, String, String)> {
    let mut command = Command::new(bin);
    command
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LATCHKEY_RATE_LIMITS__ENABLED", "false")
        .env("LATCHKEY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(url) = postgres {
        command.env("LATCHKEY_DATABASE_URL", url);
    }
    let mut child = command.spawn().context("starting latchkey")?;
    let (url, key) = read_banner(&mut child).await?;
    Ok((child, url, key))
}

/// `(url, secret key)`: the URL the process listens on; the key is empty when the database already had one. The rest of the
/// server's output is drained in the background.
pub async fn read_banner(child: &mut Child) -> anyhow::Result<(String, String)> {
    let mut lines = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?).lines();
    let (mut url, mut key) = (String::new(), String::new());
    while let Some(line) = lines.next_line().await? {
        if let Some(u) = line.strip_prefix("latchkey listening on ") {
            url = u.trim().to_owned();
        }
        // With a public URL of its own (behind a balancer), where the process itself listens.
        if let Some(u) = line.trim_start().strip_prefix("bound to") {
            url = u.trim().to_owned();
        }
        if let Some(k) = line.split_whitespace().find(|w| w.starts_with("sk_live_")) {
            key = k.to_owned();
        }
        if line.contains("next steps") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((url, key))
}
