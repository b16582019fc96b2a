//! The revocation feed (docs/revocations.md): what verifiers must refuse before the tokens
//! expire. Entries are written with the changes that cause them; each instance reads the
//! table a few times a second (so on PostgreSQL every instance's feed carries every
//! instance's revocations) and hands new entries to the streams open on it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use latchkey_core::revocation::Revocation;
use latchkey_core::Clock;
use latchkey_store::RevocationStore;
use tokio::sync::broadcast;

use crate::error::Result;

/// How often each instance reads the table: the feed's delay, at most.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How far back each read and each catch-up reaches before its cursor: an entry stamped before
/// a slow transaction committed is still found (entries are applied by id, so twice is once).
pub const OVERLAP_MS: i64 = 5_000;
/// Entries returned per catch-up page.
pub const PAGE: i64 = 1_000;

pub struct RevocationFeed {
    store: Arc<dyn RevocationStore>,
    clock: Arc<dyn Clock>,
    live: broadcast::Sender<Arc<Revocation>>,
    /// The reader starts with the first subscriber.
    reading: std::sync::Once,
}

/// A page of entries and the cursor to ask from next.
pub struct CatchUp {
    pub entries: Vec<Revocation>,
    pub cursor: i64,
    /// More entries follow: ask again from `cursor` at once.
    pub more: bool,
}

impl RevocationFeed {
    pub fn new(store: Arc<dyn RevocationStore>, clock: Arc<dyn Clock>) -> Arc<Self> {
        let (live, _) = broadcast::channel(4096);
        Arc::new(Self { store, clock, live, reading: std::sync::Once::new() })
    }

    /// Live entries from `since` (milliseconds; every live entry without it).
    pub async fn catch_up(&self, since: Option<i64>) -> Result<CatchUp> {
        let now = self.clock.now_ms();
        let from = since.map_or(0, |s| s - OVERLAP_MS);
        let entries = self.store.revocations_since(from, now, PAGE).await?;
        let more = entries.len() as i64 >= PAGE;
        // Entries come oldest first: the last is the newest.
        let cursor = match entries.last() {
            // The next page starts at the last entry's time itself, not OVERLAP_MS before it
            // (which a full page could fill again, for ever): the next call subtracts the overlap.
            Some(last) if more => last.at + OVERLAP_MS,
            // Never behind the cursor asked from.
            Some(last) => last.at.max(since.unwrap_or(0)),
            None => since.unwrap_or(now),
        };
        Ok(CatchUp { entries, cursor, more })
    }

    /// New entries as this instance reads them (the reader starts with the first subscriber).
    pub fn subscribe(self: &Arc<Self>) -> broadcast::Receiver<Arc<Revocation>> {
        let receiver = self.live.subscribe();
        self.reading.call_once(|| self.spawn());
        receiver
    }

    /// Drops expired entries (housekeeping); how many.
    pub async fn prune(&self) -> Result<u64> {
        Ok(self.store.prune_revocations(self.clock.now_ms()).await?)
    }

    /// Reads the table every [`POLL_EVERY`] and hands what is new to the subscribers (expired
    /// entries are dropped by the hourly housekeeping, [`Self::prune`]). Runs until the
    /// process ends.
    fn spawn(self: &Arc<Self>) {
        let feed = self.clone();
        tokio::spawn(async move {
            let mut seen: HashMap<String, i64> = HashMap::new();
            let mut cursor = feed.clock.now_ms();
            let mut tick = tokio::time::interval(POLL_EVERY);
            loop {
                tick.tick().await;
                let now = feed.clock.now_ms();
                let mut from = cursor - OVERLAP_MS;
                loop {
                    match feed.store.revocations_since(from, now, PAGE).await {
                        Ok(entries) => {
                            let full = entries.len() as i64 >= PAGE;
                            let last = entries.last().map(|e| e.at);
                            for entry in entries {
                                cursor = cursor.max(entry.at);
                                if seen.insert(entry.id.clone(), entry.at).is_none() && feed.live.receiver_count() > 0 {
                                    let _ = feed.live.send(Arc::new(entry));
                                }
                            }
                            // A full page: read on from its last entry (not from the overlap
                            // again, which the same page would fill for ever).
                            match last {
                                Some(at) if full && at > from => from = at,
                                _ => break,
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "reading the revocation feed failed");
                            break;
                        }
                    }
                }
                seen.retain(|_, at| *at >= cursor - 2 * OVERLAP_MS);
            }
        });
    }
}
