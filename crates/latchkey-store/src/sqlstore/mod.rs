//! [`Store`] implemented once in portable SQL over a backend's [`SqlDriver`], by area: each
//! module below implements one area's trait ([`UserStore`](crate::UserStore) in `users`,
//! [`SessionStore`](crate::SessionStore) in `sessions`, [`OrganizationStore`](crate::OrganizationStore)
//! in `organizations`, [`RoleStore`](crate::RoleStore) in `roles`, [`InvitationStore`](crate::InvitationStore) in `invitations`,
//! [`KeyStore`](crate::KeyStore) in `keys`, [`SyncStore`](crate::SyncStore) in `sync`,
//! [`WebhookStore`](crate::WebhookStore) in `webhooks`, [`ThrottleStore`](crate::ThrottleStore)
//! in `throttle`) and describes its tables once ([`shared::Record`]); this module implements
//! what belongs to no area (the outbox view, the ping). The areas import [`base`], [`shared`]
//! and [`outbox`], never each other.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::error::Result;
use crate::sql::SqlDriver;
use crate::store::Store;
use crate::webhooks::OutboxEvent;

#[macro_use]
mod shared;
mod base;
mod external;
mod import;
mod invitations;
mod keys;
mod organizations;
mod outbox;
mod passkeys;
mod revocations;
mod roles;
mod second_factors;
mod sessions;
mod sync;
mod throttle;
mod users;
mod webhooks;

pub use base::SqlStore;

impl<D: SqlDriver> crate::store::OrgStore for SqlStore<D> {
    fn emitting_org(&self, events: Vec<OutboxEvent>) -> Arc<dyn crate::store::OrgStore> {
        Arc::new(self.with_events(events))
    }
}

impl<D: SqlDriver> crate::store::PeopleStore for SqlStore<D> {
    fn emitting_people(&self, events: Vec<OutboxEvent>) -> Arc<dyn crate::store::PeopleStore> {
        Arc::new(self.with_events(events))
    }
}

impl<D: SqlDriver> crate::store::IdentityStore for SqlStore<D> {
    fn emitting_identity(&self, events: Vec<OutboxEvent>) -> Arc<dyn crate::store::IdentityStore> {
        Arc::new(self.with_events(events))
    }
}

#[async_trait]
impl<D: SqlDriver> crate::store::Database for SqlStore<D> {
    fn backend(&self) -> &'static str {
        self.db.backend()
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }
}

#[async_trait]
impl<D: SqlDriver> Store for SqlStore<D> {
    fn emitting(&self, events: Vec<OutboxEvent>) -> Arc<dyn Store> {
        Arc::new(self.with_events(events))
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }
}
