//! Draining before a stop (docs/operations.md, "Rolling restarts"): from the moment a drain
//! starts, `/readyz` answers 503 so a load balancer sends no new requests here, and live event
//! streams end with a `draining` event so their clients pull and reconnect to another
//! instance; requests in flight finish.

use std::sync::Arc;

use tokio::sync::watch;

/// Whether this instance is draining; cheap to clone, shared by every handler.
#[derive(Clone)]
pub struct Drain {
    state: Arc<watch::Sender<bool>>,
}

impl Default for Drain {
    fn default() -> Self {
        Self { state: Arc::new(watch::Sender::new(false)) }
    }
}

impl Drain {
    /// Starts draining (once; later calls change nothing).
    pub fn start(&self) {
        self.state.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        *self.state.borrow()
    }

    /// Resolves once draining has started.
    pub async fn started(&self) {
        let mut rx = self.state.subscribe();
        // An error means the sender is gone, which never happens while `self` holds it.
        let _ = rx.wait_for(|draining| *draining).await;
    }
}
