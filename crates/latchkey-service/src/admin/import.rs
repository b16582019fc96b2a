//! Users arriving from another system (`latchkey import`, docs/import-export.md): each is
//! checked by the rules of creation and keeps the id it had, so the ids an app stores in its
//! own tables stay valid; batches are judged and written by the store in one transaction.

use latchkey_store::{ImportClaims, ImportOutcome, StoreError, UserRecord};

use super::{AdminService, NewUser, Unverified};
use crate::authority::Operator;
use crate::error::{Result, ServiceError};

/// The longest id latchkey keeps (Clerk's are `user_` and 27 characters).
const MAX_ID_LEN: usize = 100;

/// One user to import.
#[derive(Debug, Clone, Default)]
pub struct ImportedUser {
    /// The id the user had (`user_…`).
    pub id: String,
    /// What the user holds; its addresses and numbers are verified.
    pub user: NewUser,
    pub unverified: Unverified,
}

impl AdminService {
    /// The record `input` becomes, with every rule of creation applied; nothing is written.
    pub async fn import_record(&self, _operator: &Operator, input: ImportedUser) -> Result<UserRecord> {
        let id = input.id.trim();
        let well_formed = id.strip_prefix("user_").is_some_and(|rest| {
            !rest.is_empty() && id.len() <= MAX_ID_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if !well_formed {
            return Err(ServiceError::unprocessable("form_param_format_invalid", "id is not a user id")
                .long(format!(
                    "id must be `user_` followed by letters, digits or `_` ({MAX_ID_LEN} characters at most), not {id:?}."
                ))
                .param("id"));
        }
        self.new_user_record(id.to_owned(), input.user, &input.unverified).await
    }

    /// Imports a batch of records: one outcome per record, in order. Nothing is sent to
    /// webhooks: these people are not new to the app.
    pub async fn import_users(&self, _operator: &Operator, records: &[UserRecord]) -> Result<Vec<ImportOutcome>> {
        match self.store.import_users(records, None).await {
            // Someone took an identifier of the batch between the check and the write (another
            // writer of a shared database): one at a time, so that only their rival is refused.
            Err(StoreError::Conflict(_)) => {
                let mut outcomes = Vec::with_capacity(records.len());
                for record in records {
                    outcomes.push(match self.store.import_users(std::slice::from_ref(record), None).await {
                        Ok(mut one) => one.pop().unwrap_or(ImportOutcome::AlreadyPresent),
                        Err(StoreError::Conflict(rule)) => {
                            ImportOutcome::Conflict(format!("an identifier is held by another user ({rule})"))
                        }
                        Err(e) => return Err(e.into()),
                    });
                }
                Ok(outcomes)
            }
            other => Ok(other?),
        }
    }

    /// Judges a batch as [`Self::import_users`] would import it, writing nothing; `claims`
    /// carries what the run's earlier batches would have taken (a dry run).
    pub async fn judge_import(
        &self,
        _operator: &Operator,
        records: &[UserRecord],
        claims: &mut ImportClaims,
    ) -> Result<Vec<ImportOutcome>> {
        Ok(self.store.import_users(records, Some(claims)).await?)
    }
}
