//! The operator's view of users' passkeys (the Backend API's
//! `DELETE /users/{id}/passkeys/{passkey_identification_id}`).

use super::AdminService;
use crate::authority::Operator;
use crate::error::{Result, ServiceError};
use crate::resources::primary_email;

impl AdminService {
    /// Removes a user's passkey, with `user.updated`, and tells the user by mail (as Clerk's
    /// document says); 404 when the user has no such passkey.
    pub async fn delete_user_passkey(&self, _operator: &Operator, user_id: &str, passkey_id: &str) -> Result<()> {
        let record = self.users.user(user_id).await?;
        let Some(removed) = record.passkeys.iter().find(|p| p.id == passkey_id && p.verified) else {
            return Err(ServiceError::not_found("Passkey"));
        };
        let event = self.passkeys.updated_event(&record, |list| list.retain(|p| p.id != passkey_id));
        if !self.store.emitting_people(vec![event]).delete_passkey(user_id, passkey_id).await? {
            return Err(ServiceError::not_found("Passkey"));
        }
        tracing::info!(user_id, passkey_id, "passkey removed by an administrator");
        if let Some(to) = primary_email(&record) {
            let app = &self.config.app_name;
            self.postman.send(
                &to,
                &format!("A passkey was removed from your {app} account"),
                format!(
                    "The passkey \"{}\" was removed from your {app} account by an administrator. It can no longer be \
                     used to sign in.\n",
                    removed.name
                ),
            );
        }
        Ok(())
    }
}
