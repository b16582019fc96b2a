//! Storage for latchkey: the [`Store`] trait the service layer talks to, the records it reads
//! and writes, and one SQL implementation ([`SqlStore`]) written once over a small executor
//! trait ([`sql::SqlDriver`]) that each backend crate implements with its own connection
//! handling, placeholder dialect and migrations.

mod error;
mod records;
pub mod sql;
mod sqlstore;
mod store;
mod sync;
mod throttle;
mod webhooks;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::StoreError;
pub use records::*;
pub use sqlstore::SqlStore;
pub use store::{
    Database, IdentityStore, InvitationStore, KeyStore, OrgStore, OrganizationStore, PeopleStore, SessionStore, Store,
    UserStore,
};
pub use sync::*;
pub use throttle::*;
pub use webhooks::*;
