//! Live update streams (`GET /v1/sync/events`): who may hold one, and for how long. A stream
//! is checked again at every keep-alive, so one whose session ended (signed out, revoked, a
//! ban) closes, and one whose member left an organization stops hearing of it, within one
//! interval instead of at the token's expiry. Streams per session are capped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::SyncCaller;
use super::SyncService;
use crate::{ErrorKind, Result, ServiceError};

/// Live streams one session may hold at once (a few tabs and devices).
pub const MAX_STREAMS_PER_SESSION: usize = 5;

/// Open streams per session in this instance.
#[derive(Default, Clone)]
pub struct StreamSlots(Arc<Mutex<HashMap<String, usize>>>);

/// One open stream's place; dropping it (the stream ends) frees the place.
pub struct StreamSlot {
    slots: StreamSlots,
    session_id: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.session_id) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.session_id);
            }
        }
    }
}

impl StreamSlots {
    fn take(&self, session_id: &str) -> Option<StreamSlot> {
        let mut open = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(session_id.to_owned()).or_default();
        if *n >= MAX_STREAMS_PER_SESSION {
            return None;
        }
        *n += 1;
        Some(StreamSlot { slots: self.clone(), session_id: session_id.to_owned() })
    }
}

impl SyncService {
    /// A place for one more live stream of the caller's session, or 429.
    pub fn open_stream(&self, caller: &SyncCaller) -> Result<StreamSlot> {
        self.streams.take(&caller.session_id).ok_or_else(|| {
            ServiceError::new(
                ErrorKind::TooManyRequests { retry_after_secs: 15 },
                "too_many_requests",
                format!("A session may hold at most {MAX_STREAMS_PER_SESSION} live streams."),
            )
            .long("Close another stream of this session (another tab or device) first.")
        })
    }

    /// The spaces a stream may still hear of, by storage key with their client names, or why
    /// it must close: the session is no longer active (signed out, revoked, the user banned
    /// or deleted).
    pub async fn stream_spaces(&self, caller: &SyncCaller) -> Result<HashMap<String, String>> {
        self.directory.still_live(caller).await?;
        Ok(self.directory.spaces_of(&caller.user_id).await?.into_iter().map(|s| (s.key, s.name)).collect())
    }
}
