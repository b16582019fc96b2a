//! What `latchkey serve` prints at start: the URL it listens on and, on a fresh database, the
//! secret key. Shared by the benchmark binaries.

use anyhow::anyhow;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// `(url, secret key)`; the key is empty when the database already had one. The rest of the
/// server's output is drained in the background.
pub async fn read_banner(child: &mut Child) -> anyhow::Result<(String, String)> {
    let mut lines = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?).lines();
    let (mut url, mut key) = (String::new(), String::new());
    while let Some(line) = lines.next_line().await? {
        if let Some(u) = line.strip_prefix("latchkey listening on ") {
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
