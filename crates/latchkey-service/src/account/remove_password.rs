//! Removing a password (`POST /v1/me/remove_password`, clerk-js `user.removePassword`): only
//! with the current one, after a recent check, and only while the account keeps another way in
//! (docs/frontend-api.md §9).

use latchkey_store::UserRecord;

use super::AccountService;
use crate::authority::Reverified;
use crate::error::{Result, ServiceError};
use crate::{Action, RequestContext};

impl AccountService {
    /// The current password must be given and right when the account has one (within the
    /// account's password-check budget).
    pub(super) async fn check_current_password(&self, record: &UserRecord, current: Option<&str>) -> Result<()> {
        let Some(phc) = &record.user.password_hash else {
            return Ok(());
        };
        let Some(current) = current else {
            return Err(ServiceError::unprocessable("form_param_missing", "Enter your current password.")
                .param("current_password"));
        };
        let attempt = self.budgets.begin_password_check(&record.user.id).await?;
        if !self.hasher.verify(current, phc).await?.ok {
            return Err(ServiceError::password_incorrect().param("current_password"));
        }
        self.budgets.attempt_passed(&attempt).await
    }

    /// Removes the caller's password. Refused when the account has none, or when nothing else
    /// would sign it in: a verified address (email codes are always a first factor here), a
    /// passkey or an identity provider's account.
    pub async fn remove_password(
        &self,
        ctx: &RequestContext,
        who: &Reverified,
        current: Option<&str>,
    ) -> Result<UserRecord> {
        let user_id = who.signed_in().user_id();
        self.limit_ip(Action::PasswordChange, ctx).await?;
        self.limit_account(user_id).await?;
        let record = self.users.user(user_id).await?;
        if record.user.password_hash.is_none() {
            return Err(ServiceError::unprocessable("no_password_set", "This account has no password to remove."));
        }
        self.check_current_password(&record, current).await?;
        if !keeps_another_way_in(&record) {
            return Err(ServiceError::unprocessable(
                "password_required",
                "Add a verified email address, a passkey or a connected account before removing your password.",
            ));
        }
        let mut user = record.user.clone();
        let now = self.now();
        user.password_hash = None;
        user.password_updated_at = Some(now);
        user.updated_at = now;
        user.version += 1;
        let event = self.users.user_event("user.updated", &UserRecord { user: user.clone(), ..record });
        self.emitting(vec![event]).update_user(&user).await?;
        self.users.user(user_id).await
    }
}

fn keeps_another_way_in(record: &UserRecord) -> bool {
    record.emails.iter().any(|e| e.verified)
        || record.passkeys.iter().any(|p| p.verified)
        || !record.external_accounts.is_empty()
}

#[cfg(test)]
mod tests {
    use latchkey_store::{EmailRow, UserRow};

    use super::keeps_another_way_in;

    #[test]
    fn a_verified_address_is_another_way_in() {
        let mut record = latchkey_store::UserRecord {
            user: UserRow::new("user_1".into(), 0),
            emails: vec![],
            phones: vec![],
            external_accounts: vec![],
            second_factors: Default::default(),
            passkeys: vec![],
        };
        assert!(!keeps_another_way_in(&record));
        let email = EmailRow {
            id: "idn_1".into(),
            user_id: "user_1".into(),
            email: "ada@example.com".into(),
            verified: false,
            verified_at: None,
            code: Default::default(),
            created_at: 0,
            updated_at: 0,
            version: 0,
        };
        record.emails.push(email.clone());
        assert!(!keeps_another_way_in(&record), "an unverified address signs nobody in");
        record.emails.push(EmailRow { id: "idn_2".into(), verified: true, verified_at: Some(1), ..email });
        assert!(keeps_another_way_in(&record));
    }
}
