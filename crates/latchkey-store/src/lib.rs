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
    Database, ExternalAccountStore, IdentityStore, ImportStore, InvitationStore, KeyStore, OrgStore, OrganizationStore,
    PasskeyStore, PeopleStore, RevocationStore, RoleStore, SecondFactorStore, SessionStore, Store, UserStore,
};
pub use sync::*;
pub use throttle::*;
pub use webhooks::*;

/// The migrations both databases share live once in `migrations/` and each backend's folder
/// links to them (migrations/README.md). A checkout that turned the links into files holding
/// their target's path would fail only when a database is opened; this says why, at once.
#[cfg(test)]
mod shared_migrations {
    #![allow(clippy::unwrap_used, clippy::panic)]

    #[test]
    fn every_backend_migration_reads_as_sql() {
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for backend in ["latchkey-store-sqlite", "latchkey-store-postgres"] {
            let dir = crates.join(backend).join("migrations");
            let mut count = 0;
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(
                    !text.starts_with("..") && text.contains(';'),
                    "{} is not SQL (a symbolic link checked out as a file?): {:?}",
                    path.display(),
                    text.chars().take(80).collect::<String>()
                );
                count += 1;
            }
            assert!(count >= 11, "{backend}: {count} migrations");
        }
    }
}
