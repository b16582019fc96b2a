//! `GET /v1/sync/pull`: the changes of every visible space after an opaque cursor (a sequence
//! number and epoch per space, assigned by the server), with spaces added, removed and reset.
//! The page is written as JSON text directly: record fields are stored as JSON and copied.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use latchkey_core::sync::valid_id;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::SyncCaller;
use crate::{Result, ServiceError, Services};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PullQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    /// The caller's client, whose last applied `seq` the page reports.
    pub client_id: Option<String>,
    pub schema_version: Option<i64>,
}

/// A pull page as JSON text.
#[derive(Debug, Clone)]
pub struct PullPage {
    pub body: String,
    pub changes: usize,
}

/// Where a client is in each space: `(seq, epoch)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Cursor {
    v: u8,
    s: BTreeMap<String, (i64, String)>,
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
        if cursor.v != 1 || cursor.s.values().any(|(seq, _)| *seq < 0) {
            return Err(bad_cursor());
        }
        Ok(cursor)
    }
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }
}

fn push_json_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

impl Services {
    pub async fn sync_pull(&self, caller: &SyncCaller, query: &PullQuery) -> Result<PullPage> {
        if let Some(version) = query.schema_version {
            self.check_schema_version(version)?;
        }
        let limit = query.limit.unwrap_or(self.config.sync.default_pull_limit);
        if !(1..=self.config.sync.max_pull_limit).contains(&limit) {
            return Err(ServiceError::bad_request(
                "sync_pull_invalid",
                format!("limit must be between 1 and {}.", self.config.sync.max_pull_limit),
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
        let spaces = self.sync_spaces_of(&caller.user_id).await?;
        // Read before the changes: every op up to this seq has its effects in what follows.
        let last_seq = match &query.client_id {
            Some(client) => self.store.sync_client_last_seq(&caller.user_id, client).await?,
            None => None,
        };
        let keys: Vec<String> = spaces.iter().map(|s| s.key.clone()).collect();
        let states: BTreeMap<String, (i64, String)> =
            self.store.sync_spaces(&keys).await?.into_iter().map(|s| (s.space, (s.seq, s.epoch))).collect();

        let (mut added, mut reset) = (Vec::new(), Vec::new());
        let removed: Vec<String> =
            previous.s.keys().filter(|k| !keys.contains(k)).map(|k| self.space_name(k, &caller.user_id)).collect();
        let mut next = Cursor { v: 1, s: BTreeMap::new() };
        let mut body = String::with_capacity(4096);
        body.push_str("{\"changes\":[");
        let (mut remaining, mut count, mut has_more) = (limit, 0usize, false);
        for space in &spaces {
            let (current_seq, epoch) = states.get(&space.key).cloned().unwrap_or((0, String::new()));
            let from = match previous.s.get(&space.key) {
                None => {
                    added.push(space.name.clone());
                    0
                }
                Some((seq, e)) if *e != epoch || *seq > current_seq => {
                    reset.push(space.name.clone());
                    0
                }
                Some((seq, _)) => *seq,
            };
            if remaining == 0 {
                has_more |= current_seq > from;
                next.s.insert(space.key.clone(), (from, epoch));
                continue;
            }
            let mut changes = self.store.sync_changes(&space.key, from, remaining + 1, from == 0).await?;
            let full = changes.len() as i64 > remaining;
            if full {
                changes.truncate(remaining as usize);
                has_more = true;
            }
            let reached = changes.last().map_or(from, |c| c.seq);
            let position = if full { reached } else { reached.max(current_seq) };
            next.s.insert(space.key.clone(), (position, epoch));
            remaining -= changes.len() as i64;
            for c in changes {
                let readable = self.sync_tables.get(&c.table).is_some_and(|t| space.can_read(t));
                if !readable {
                    continue;
                }
                if count > 0 {
                    body.push(',');
                }
                count += 1;
                body.push_str("{\"space\":");
                push_json_str(&mut body, &space.name);
                body.push_str(",\"table\":");
                push_json_str(&mut body, &c.table);
                body.push_str(",\"id\":");
                push_json_str(&mut body, &c.id);
                if c.deleted {
                    body.push_str(",\"deleted\":true}");
                } else {
                    body.push_str(",\"deleted\":false,\"fields\":");
                    body.push_str(&c.data);
                    body.push('}');
                }
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
        Ok(PullPage { body, changes: count })
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
        c.s.insert("user_1".into(), (12, "ep".into()));
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "!!",
            "e30",
            &URL_SAFE_NO_PAD.encode(br#"{"v":2,"s":{}}"#),
            &URL_SAFE_NO_PAD.encode(br#"{"v":1,"s":{"a":[-1,""]}}"#),
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }
}
