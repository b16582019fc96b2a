//! Users arriving in bulk (`latchkey import`, docs/import-export.md): a batch is checked
//! against the database and itself in one transaction, then written with a few multi-row
//! statements, so an import runs at tens of thousands of users a second and a batch lands
//! whole or not at all (an interrupted import is simply run again).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::{params, placeholders, Record};
use crate::error::Result;
use crate::records::{ImportClaims, ImportOutcome, UserRecord};
use crate::sql::{SqlDriver, SqlTx, SqlValue};
use crate::store::ImportStore;

/// Parameters per statement at most: SQLite allows 32,766, PostgreSQL 65,535.
const MAX_PARAMS: usize = 30_000;

#[async_trait]
impl<D: SqlDriver> ImportStore for SqlStore<D> {
    async fn import_users(
        &self,
        users: &[UserRecord],
        judge_only: Option<&mut ImportClaims>,
    ) -> Result<Vec<ImportOutcome>> {
        let mut tx = self.begin().await?;
        let taken = Taken::read(&mut tx, users).await?;
        let write = judge_only.is_none();
        let outcomes = taken.judge(users, judge_only.unwrap_or(&mut ImportClaims::default()));
        let accepted: Vec<&UserRecord> =
            users.iter().zip(&outcomes).filter(|(_, o)| **o == ImportOutcome::Imported).map(|(u, _)| u).collect();
        if !write || accepted.is_empty() {
            // Dropped without a commit: rolled back.
            return Ok(outcomes);
        }
        insert_many(&mut tx, accepted.iter().map(|u| &u.user)).await?;
        insert_many(&mut tx, accepted.iter().flat_map(|u| &u.emails)).await?;
        insert_many(&mut tx, accepted.iter().flat_map(|u| &u.phones)).await?;
        insert_many(&mut tx, accepted.iter().filter_map(|u| u.second_factors.totp.as_ref())).await?;
        insert_many(&mut tx, accepted.iter().flat_map(|u| &u.second_factors.backup_codes)).await?;
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// Who already holds the identifiers of a batch: ids present, and the owners of verified
/// addresses, verified phone numbers, usernames and external ids.
struct Taken {
    ids: HashSet<String>,
    owners: HashMap<(&'static str, String), String>,
}

impl Taken {
    async fn read(tx: &mut Box<dyn SqlTx>, users: &[UserRecord]) -> Result<Self> {
        let ids: Vec<String> = users.iter().map(|u| u.user.id.clone()).collect();
        let mut taken = Taken { ids: HashSet::new(), owners: HashMap::new() };
        for id in select_in(tx, "SELECT id, id FROM users WHERE id IN", &ids).await? {
            taken.ids.insert(id.0);
        }
        let lookups: [(&'static str, &str, Vec<String>); 4] = [
            (
                "email address",
                "SELECT email, user_id FROM email_addresses WHERE verified = TRUE AND email IN",
                users.iter().flat_map(|u| u.emails.iter().filter(|e| e.verified).map(|e| e.email.clone())).collect(),
            ),
            (
                "phone number",
                "SELECT phone, user_id FROM phone_numbers WHERE verified = TRUE AND phone IN",
                users.iter().flat_map(|u| u.phones.iter().filter(|p| p.verified).map(|p| p.phone.clone())).collect(),
            ),
            (
                "username",
                "SELECT username, id FROM users WHERE username IN",
                users.iter().filter_map(|u| u.user.username.clone()).collect(),
            ),
            (
                "external id",
                "SELECT external_id, id FROM users WHERE external_id IN",
                users.iter().filter_map(|u| u.user.external_id.clone()).collect(),
            ),
        ];
        for (kind, sql, values) in lookups {
            for (value, owner) in select_in(tx, sql, &values).await? {
                taken.owners.insert((kind, value), owner);
            }
        }
        Ok(taken)
    }

    /// Each user's outcome, in order: present already, refused for an identifier someone else
    /// holds (in the database, or in `claims`: earlier in the batch, or in earlier batches of
    /// a run that writes nothing), or to be imported, its identifiers then added to `claims`.
    fn judge(self, users: &[UserRecord], claims: &mut ImportClaims) -> Vec<ImportOutcome> {
        users
            .iter()
            .map(|u| {
                if self.ids.contains(&u.user.id) || !claims.ids.insert(u.user.id.clone()) {
                    return ImportOutcome::AlreadyPresent;
                }
                let held = identifiers(u);
                for key in &held {
                    if let Some(owner) = self.owners.get(key).or_else(|| claims.owners.get(key)) {
                        claims.ids.remove(&u.user.id);
                        return ImportOutcome::Conflict(format!("the {} {} belongs to {owner}", key.0, key.1));
                    }
                }
                for key in held {
                    claims.owners.insert(key, u.user.id.clone());
                }
                ImportOutcome::Imported
            })
            .collect()
    }
}

/// The identifiers a user holds that no one else may.
fn identifiers(u: &UserRecord) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    out.extend(u.emails.iter().filter(|e| e.verified).map(|e| ("email address", e.email.clone())));
    out.extend(u.phones.iter().filter(|p| p.verified).map(|p| ("phone number", p.phone.clone())));
    out.extend(u.user.username.iter().map(|n| ("username", n.clone())));
    out.extend(u.user.external_id.iter().map(|n| ("external id", n.clone())));
    out
}

/// `sql (…values)` in chunks, each row read as two texts.
async fn select_in(tx: &mut Box<dyn SqlTx>, sql: &str, values: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for chunk in values.chunks(MAX_PARAMS) {
        let params: Vec<SqlValue> = chunk.iter().map(SqlValue::from).collect();
        for row in tx.query(&format!("{sql} ({})", placeholders(chunk.len(), 1)), &params).await? {
            out.push((row.text(0)?, row.text(1)?));
        }
    }
    Ok(out)
}

/// Inserts rows of one table with as few multi-row statements as the parameter limit allows.
async fn insert_many<'a, R: Record + 'a>(tx: &mut Box<dyn SqlTx>, rows: impl Iterator<Item = &'a R>) -> Result<()> {
    let columns = R::COLUMNS.len();
    let per_statement = (MAX_PARAMS / columns).max(1);
    let rows: Vec<&R> = rows.collect();
    for chunk in rows.chunks(per_statement) {
        let mut values = Vec::with_capacity(chunk.len() * columns);
        let mut tuples = Vec::with_capacity(chunk.len());
        for (i, row) in chunk.iter().enumerate() {
            tuples.push(format!("({})", placeholders(columns, i * columns + 1)));
            values.extend(params(*row));
        }
        let sql = format!("INSERT INTO {} ({}) VALUES {}", R::TABLE, R::COLUMNS.join(", "), tuples.join(", "));
        tx.execute(&sql, &values).await?;
    }
    Ok(())
}
