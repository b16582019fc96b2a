//! Users leaving, or copied to another latchkey (`latchkey export`, docs/import-export.md):
//! each with what an import needs to let them sign in as before: the password digest and its
//! hasher's name, and the authenticator-app key in the clear (the export file is a secret).

use latchkey_core::legacy_digest::LegacyDigest;
use latchkey_store::UserRecord;

use super::AdminService;
use crate::authority::Operator;
use crate::error::Result;

/// A user as an export writes them.
#[derive(Debug, Clone)]
pub struct PortableUser {
    pub record: UserRecord,
    /// The stored digest as Clerk's `password_digest` names it, with its `password_hasher`.
    pub password: Option<(String, String)>,
    /// The authenticator-app key, base32.
    pub totp_secret: Option<String>,
}

impl AdminService {
    /// Up to `limit` users whose ids sort after `after` ("" for the first), in id order.
    pub async fn export_users(&self, _operator: &Operator, after: &str, limit: i64) -> Result<Vec<PortableUser>> {
        let records = self.store.users_after(after, limit).await?;
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let totp_secret = match record.second_factors.totp.as_ref().filter(|t| t.verified) {
                Some(row) => Some(self.factors.key_of(&record, row)?.base32()),
                None => None,
            };
            let password = record.user.password_hash.as_deref().and_then(portable_digest);
            out.push(PortableUser { record, password, totp_secret });
        }
        Ok(out)
    }
}

/// A stored password hash as (`password_digest`, `password_hasher`).
fn portable_digest(stored: &str) -> Option<(String, String)> {
    if let Some(legacy) = LegacyDigest::from_stored(stored) {
        // `legacy:<hasher>:<digest>`, well formed since `from_stored` read it.
        let digest = stored.split_once(':').and_then(|(_, rest)| rest.split_once(':')).map(|(_, d)| d)?;
        return Some((digest.to_owned(), legacy.hasher().to_owned()));
    }
    ["argon2id", "argon2i"]
        .into_iter()
        .find(|scheme| stored.starts_with(&format!("${scheme}$")))
        .map(|scheme| (stored.to_owned(), scheme.to_owned()))
}
