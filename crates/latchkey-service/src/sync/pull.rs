//! `GET /v1/sync/pull`: the changes of every visible space after an opaque cursor (a sequence
//! number and epoch per space, assigned by the server), with spaces added, removed and reset.
//! The page is written as JSON text directly: record fields are stored as JSON and copied.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use latchkey_core::sync::valid_id;
use latchkey_store::SyncPageQuery;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::SyncCaller;
use super::SyncService;
use crate::{Result, ServiceError};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PullQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    /// The caller's client, whose last applied `seq` the page reports.
    pub client_id: Option<String>,
    pub schema_version: Option<i64>,
}

/// Where a client is in each space: `(seq, epoch)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Cursor {
    v: u8,
    /// Per space: the position, the space's epoch, and a fingerprint of the tables read.
    s: BTreeMap<String, (i64, String, String)>,
}

fn bad_cursor() -> ServiceError {
    ServiceError::bad_request("sync_cursor_invalid", "The cursor is not one this server gave out.")
        .long("Pass back the cursor of the last pull unchanged, or none to start from the beginning.")
        .param("cursor")
}

impl Cursor {
    fn decode(text: &str) -> Result<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad_cursor())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad_cursor())?;
        if cursor.v != 1 || cursor.s.values().any(|(seq, _, _)| *seq < 0) {
            return Err(bad_cursor());
        }
        Ok(cursor)
    }
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// Which tables a pull read, in a few characters: when it changes, the space starts over.
fn access_fingerprint(tables: &[String]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(tables.join(",").as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

impl SyncService {
    /// A pull page, as JSON text.
    pub async fn pull(&self, caller: &SyncCaller, query: &PullQuery) -> Result<String> {
        if let Some(version) = query.schema_version {
            self.check_schema_version(version)?;
        }
        let limit = query.limit.unwrap_or(self.config.default_pull_limit);
        if !(1..=self.config.max_pull_limit).contains(&limit) {
            return Err(ServiceError::bad_request(
                "sync_pull_invalid",
                format!("limit must be between 1 and {}.", self.config.max_pull_limit),
            )
            .param("limit"));
        }
        if query.client_id.as_deref().is_some_and(|c| !valid_id(c)) {
            return Err(ServiceError::bad_request(
                "sync_pull_invalid",
                "client_id must be 1 to 128 letters, digits, _ or -.",
            )
            .param("client_id"));
        }
        let previous = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(text) => Cursor::decode(text)?,
            None => Cursor { v: 1, s: BTreeMap::new() },
        };
        let spaces = self.directory.spaces_of(&caller.user_id).await?;
        // Read before the changes: every op up to this seq has its effects in what follows.
        let last_seq = match &query.client_id {
            Some(client) => self.store.sync_client_last_seq(&caller.user_id, client).await?,
            None => None,
        };
        let keys: Vec<String> = spaces.iter().map(|s| s.key.clone()).collect();
        let states: BTreeMap<String, (i64, String, i64)> = self
            .store
            .sync_spaces(&keys)
            .await?
            .into_iter()
            .map(|s| (s.space, (s.seq, s.epoch, s.compacted_seq)))
            .collect();

        let (mut added, mut reset) = (Vec::new(), Vec::new());
        let removed: Vec<String> =
            previous.s.keys().filter(|k| !keys.contains(k)).map(|k| self.space_name(k, &caller.user_id)).collect();
        let mut next = Cursor { v: 1, s: BTreeMap::new() };
        let mut body = String::with_capacity(4096);
        body.push_str("{\"changes\":[");
        let (mut remaining, mut any, mut has_more) = (limit, false, false);
        for space in &spaces {
            let (current_seq, epoch, compacted) = states.get(&space.key).cloned().unwrap_or((0, String::new(), 0));
            let readable: Vec<String> =
                self.tables.iter().filter(|(_, (t, _))| space.can_read(t)).map(|(n, _)| n.clone()).collect();
            let access = access_fingerprint(&readable);
            let from = match previous.s.get(&space.key) {
                None => {
                    added.push(space.name.clone());
                    0
                }
                // Another epoch (the space was recreated), a position the space never reached
                // (a restore from backup), other readable tables (a role change), or a position
                // before a tombstone that was compacted away (a missed delete): start over.
                Some((seq, e, a)) if *e != epoch || *seq > current_seq || *a != access || *seq < compacted => {
                    reset.push(space.name.clone());
                    0
                }
                Some((seq, _, _)) => *seq,
            };
            if remaining == 0 {
                has_more |= current_seq > from;
                next.s.insert(space.key.clone(), (from, epoch, access));
                continue;
            }
            let name_json = serde_json::to_string(&space.name).unwrap_or_default();
            let page = self
                .store
                .sync_page(&SyncPageQuery {
                    space: &space.key,
                    name_json: &name_json,
                    after: from,
                    limit: remaining,
                    live_only: from == 0,
                    tables: &readable,
                })
                .await?;
            has_more |= page.more;
            let reached = page.last_seq.unwrap_or(from);
            // With nothing left, the cursor can move to the space's counter (past tombstones a
            // fresh client skipped, and numbers reserved by pushes that changed nothing).
            let position = if page.more { reached } else { reached.max(current_seq) };
            next.s.insert(space.key.clone(), (position, epoch, access));
            remaining -= page.count;
            if page.count > 0 {
                if any {
                    body.push(',');
                }
                any = true;
                body.push_str(&page.json);
            }
        }
        let tail = json!({
            "cursor": next.encode(),
            "has_more": has_more,
            "last_seq": last_seq,
            "spaces": {"added": added, "removed": removed, "reset": reset},
        });
        body.push_str("],");
        let tail = tail.to_string();
        body.push_str(tail.get(1..).unwrap_or("}"));
        Ok(body)
    }

    fn space_name(&self, key: &str, user_id: &str) -> String {
        if key == user_id {
            super::PERSONAL_SPACE.to_owned()
        } else {
            key.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let mut c = Cursor { v: 1, s: BTreeMap::new() };
        c.s.insert("user_1".into(), (12, "ep".into(), "ab12cd34".into()));
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "!!",
            "e30",
            &URL_SAFE_NO_PAD.encode(br#"{"v":2,"s":{}}"#),
            &URL_SAFE_NO_PAD.encode(br#"{"v":1,"s":{"a":[-1,"",""]}}"#),
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }
}
