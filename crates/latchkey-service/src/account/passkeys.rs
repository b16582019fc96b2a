//! The signed-in user's own passkeys (`/v1/me/passkeys…`, docs/passkeys.md): register (after a
//! recent check: a passkey is a new way in), read, rename, remove (after a recent check).

use latchkey_store::{PasskeyRow, UserRecord};

use super::AccountService;
use crate::authority::{Reverified, SignedIn};
use crate::error::{ErrorKind, Result, ServiceError};
use crate::passkeys::{checked_name, default_name};
use crate::resources::primary_email;
use crate::RequestContext;

impl AccountService {
    fn own_passkey(record: &UserRecord, id: &str) -> Result<PasskeyRow> {
        record.passkeys.iter().find(|p| p.id == id).cloned().ok_or_else(|| ServiceError::not_found("Passkey"))
    }

    /// Starts a registration: an unverified passkey whose verification carries the options
    /// for `navigator.credentials.create`. Named after the browser it is made on. Never from a
    /// session still waiting for its second factor to be set up (`setup-mfa`), which cannot be
    /// [`Reverified`]: a passkey would then finish that task without the factor required.
    pub async fn create_passkey(&self, ctx: &RequestContext, who: &Reverified) -> Result<PasskeyRow> {
        let record = self.users.user(who.signed_in().user_id()).await?;
        self.passkeys.begin_registration(&record, default_name(ctx.user_agent.as_deref())).await
    }

    /// Finishes a registration with the browser's answer; the owner is told by mail.
    pub async fn verify_passkey(
        &self,
        ctx: &RequestContext,
        who: &SignedIn,
        id: &str,
        public_key_credential: &str,
    ) -> Result<PasskeyRow> {
        self.limit_ip(crate::Action::Verify, ctx).await?;
        let record = self.users.user(who.user_id()).await?;
        let row = self.passkeys.finish_registration(&record, id, public_key_credential).await?;
        if let Some(to) = primary_email(&record) {
            let app = &self.config.app_name;
            self.postman.send(
                &to,
                &format!("A passkey was added to your {app} account"),
                format!(
                    "The passkey \"{}\" was added to your {app} account. It can now be used to sign in.\n\n\
                     If you did not add it, remove it from your account settings and change your password.\n",
                    row.name
                ),
            );
        }
        Ok(row)
    }

    /// Refuses a session that still has a task to finish (docs/passkeys.md "Factors"), for
    /// actions that need no recent check ([`crate::users::Users::reverified`] refuses it itself).
    pub async fn refuse_pending(&self, who: &SignedIn, why: &'static str) -> Result<()> {
        if self.users.session(who.session_id()).await?.pending_task.is_some() {
            return Err(ServiceError::new(ErrorKind::Forbidden, "session_pending", why));
        }
        Ok(())
    }

    /// One of the user's passkeys, verified or being registered.
    pub async fn passkey(&self, who: &SignedIn, id: &str) -> Result<PasskeyRow> {
        let record = self.users.user(who.user_id()).await?;
        Self::own_passkey(&record, id)
    }

    pub async fn rename_passkey(&self, who: &SignedIn, id: &str, name: &str) -> Result<PasskeyRow> {
        let name = checked_name(name)?;
        let record = self.users.user(who.user_id()).await?;
        let row = Self::own_passkey(&record, id)
            .ok()
            .filter(|p| p.verified)
            .ok_or_else(|| ServiceError::not_found("Passkey"))?;
        let now = self.now();
        let renamed = PasskeyRow { name, updated_at: now, ..row };
        let event = self.passkeys.updated_event(&record, |list| {
            if let Some(p) = list.iter_mut().find(|p| p.id == renamed.id) {
                *p = renamed.clone();
            }
        });
        if !self.emitting(vec![event]).rename_passkey(&record.user.id, id, &renamed.name, now).await? {
            return Err(ServiceError::not_found("Passkey"));
        }
        Ok(renamed)
    }

    /// Removes one of the user's passkeys (after a recent check); returns its id.
    pub async fn delete_passkey(&self, who: &Reverified, id: &str) -> Result<String> {
        let user_id = who.signed_in().user_id();
        let record = self.users.user(user_id).await?;
        let removed = Self::own_passkey(&record, id)?;
        let event = self.passkeys.updated_event(&record, |list| list.retain(|p| p.id != id));
        if !self.emitting(vec![event]).delete_passkey(user_id, id).await? {
            return Err(ServiceError::not_found("Passkey"));
        }
        if let (Some(to), true) = (primary_email(&record), removed.verified) {
            let app = &self.config.app_name;
            self.postman.send(
                &to,
                &format!("A passkey was removed from your {app} account"),
                format!(
                    "The passkey \"{}\" was removed from your {app} account. It can no longer be used to sign in.\n\n\
                     If you did not remove it, change your password and review your account's sessions.\n",
                    removed.name
                ),
            );
        }
        Ok(id.to_owned())
    }
}
