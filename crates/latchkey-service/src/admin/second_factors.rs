//! The operator's view of users' second factors (the Backend API's `/users/{id}/mfa`, `/totp`,
//! `/backup_code` and `/verify_totp`).

use super::AdminService;
use crate::authority::Operator;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::second_factors::{Factors, Strategy};

/// Which kind of code passed `verify_totp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedCode {
    pub strategy: Strategy,
}

/// Which of a user's factors an operator removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Every second factor (`DELETE /users/{id}/mfa`).
    All,
    /// The authenticator app (`DELETE /users/{id}/totp`).
    Totp,
    /// The backup codes (`DELETE /users/{id}/backup_code`).
    BackupCodes,
}

impl AdminService {
    fn second_factors(&self) -> &Factors {
        &self.factors
    }

    /// Removes factors of a user, with `user.updated`; removing none is not an error (the
    /// user's factors are as asked either way). 404 for an unknown user.
    pub async fn remove_second_factors(&self, _operator: &Operator, user_id: &str, what: Removal) -> Result<()> {
        let f = self.second_factors();
        let record = self.users.user(user_id).await?;
        let event = f.updated_event(&record, |s| match what {
            Removal::All => *s = Default::default(),
            Removal::Totp => s.totp = None,
            Removal::BackupCodes => s.backup_codes.clear(),
        });
        let store = f.emitting(vec![event]);
        match what {
            Removal::All => store.delete_totp(user_id, true).await?,
            Removal::Totp => store.delete_totp(user_id, false).await?,
            Removal::BackupCodes => store.delete_backup_codes(user_id).await?,
        };
        tracing::info!(user_id, ?what, "second factors removed by an administrator");
        Ok(())
    }

    /// Checks a code of the user's authenticator app, or else a backup code (which it uses
    /// up). 400 for a user with neither, 422 for a wrong code.
    pub async fn verify_second_factor(&self, _operator: &Operator, user_id: &str, code: &str) -> Result<VerifiedCode> {
        let f = self.second_factors();
        let record = self.users.user(user_id).await?;
        let available = Strategy::available(&record.second_factors);
        if available.is_empty() {
            return Err(ServiceError::new(
                ErrorKind::BadRequest,
                "totp_not_enabled",
                "This user has no authenticator app or backup codes.",
            ));
        }
        for strategy in available {
            if f.check(&record, strategy, code).await? {
                return Ok(VerifiedCode { strategy });
            }
        }
        Err(ServiceError::code_incorrect())
    }
}
