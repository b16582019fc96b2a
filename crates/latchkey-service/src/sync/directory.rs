//! The identity and organization side of sync: [`Services`] answers [`SyncDirectory`], so who
//! a caller is, whether their session still holds and which spaces they reach are decided by
//! the code that owns sessions and memberships (docs/sync-protocol.md, "Ownership").

use latchkey_core::authz::AuthState;
use latchkey_token::VerifyError;

use super::{SpaceAccess, SyncCaller, SyncDirectory};
use crate::identity::TokenHolder;
use crate::{Result, ServiceError, Services};

fn ended() -> ServiceError {
    ServiceError::unauthenticated("This session has ended; sign in again.")
}

#[async_trait::async_trait]
impl SyncDirectory for Services {
    async fn caller(&self, bearer: Option<&str>) -> Result<SyncCaller> {
        let token = bearer.ok_or_else(|| {
            ServiceError::unauthenticated("You are signed out.")
                .long("Sync needs a session token: `Authorization: Bearer <token>`.")
        })?;
        let holder = self.token_caller(token).await?.map_err(|e| {
            let long = match e {
                VerifyError::Expired => "The session token has expired; get a fresh one and retry.",
                _ => "The session token is invalid.",
            };
            ServiceError::unauthenticated(long)
        })?;
        let TokenHolder { user_id, session_id, expires_at } = holder;
        let caller = SyncCaller { user_id, session_id, expires_at };
        self.still_live(&caller).await?;
        Ok(caller)
    }

    async fn still_live(&self, caller: &SyncCaller) -> Result<()> {
        let session = self.store.get_session(&caller.session_id).await?;
        // The session's whole policy (status, lifetime, inactivity limit), as for minting.
        // A pending session (a task such as setting up a second factor is due) syncs nothing.
        let live = session.as_ref().is_some_and(|s| {
            s.user_id == caller.user_id && self.users.session_is_active(s) && s.pending_task.is_none()
        });
        if live {
            Ok(())
        } else {
            Err(ended())
        }
    }

    async fn spaces_of(&self, user_id: &str) -> Result<Vec<SpaceAccess>> {
        let mut spaces = vec![SpaceAccess::personal(user_id)];
        let mut memberships = self.orgs.memberships_of_user(user_id).await?;
        if memberships.is_empty() {
            return Ok(spaces);
        }
        let roles = self.orgs.current_roles().await?;
        memberships.sort_by(|a, b| a.organization_id.cmp(&b.organization_id));
        for m in memberships {
            let state = AuthState {
                user_id: Some(user_id.to_owned()),
                org_id: Some(m.organization_id.clone()),
                org_role: Some(m.role.clone()),
                org_permissions: latchkey_core::authz::role_permissions(&roles, &m.role).to_vec(),
                factor_verification_age: None,
            };
            spaces.push(SpaceAccess::organization(m.organization_id, state));
        }
        Ok(spaces)
    }
}
