//! Sessions as administrators see them: reading, listing, creating (Clerk's testing endpoint)
//! and revoking, and the refusal of banned and locked users.

use latchkey_store::{SessionQuery, SessionRow};

use super::AdminService;
use crate::authority::Operator;
use crate::error::{Result, ServiceError};

use crate::params::paging;

impl AdminService {
    pub async fn list_sessions(
        &self,
        user_id: Option<String>,
        client_id: Option<String>,
        status: Option<String>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<SessionRow>, i64)> {
        let (limit, offset) = paging(limit, offset)?;
        if let Some(s) = &status {
            const STATUSES: &[&str] =
                &["active", "revoked", "ended", "expired", "removed", "abandoned", "replaced", "pending"];
            if !STATUSES.contains(&s.as_str()) {
                return Err(ServiceError::unprocessable(
                    "form_param_value_invalid",
                    format!("status must be one of {}", STATUSES.join(", ")),
                )
                .param("status"));
            }
        }
        let query = SessionQuery {
            user_id,
            client_id,
            status,
            now: self.now(),
            idle_timeout_ms: self.config.session.inactivity_timeout_ms,
            limit,
            offset,
        };
        Ok(self.store.query_sessions(&query).await?)
    }

    /// A new session on a new client for `user_id` (Clerk's testing endpoint), with
    /// `active_org` (id or slug of an organization the user belongs to) active in it.
    pub async fn admin_create_session(
        &self,
        _operator: &Operator,
        user_id: &str,
        active_org: Option<&str>,
    ) -> Result<SessionRow> {
        let record = self.users.user(user_id).await?;
        self.users.refuse_blocked(&record.user)?;
        let active_org_id = self.orgs.member_org_id(user_id, active_org, "active_organization_id").await?;
        let (client, _token) = self.users.new_client().await?;
        let mut session = self.users.new_session(&client.id, user_id);
        session.active_org_id = active_org_id;
        // A user with a second factor: this session has not proved it (a stale age, not -1).
        if record.second_factors.any() {
            session.second_factor_verified_at = Some(0);
        }
        self.emitting(vec![self.users.session_event("session.created", &session)]).insert_session(&session).await?;
        let mut client = client;
        client.last_active_session_id = Some(session.id.clone());
        client.updated_at = session.created_at;
        self.store.update_client(&client).await?;
        tracing::info!(user_id, session_id = %session.id, "session created by an administrator");
        Ok(session)
    }

    pub async fn admin_revoke_session(&self, _operator: &Operator, id: &str) -> Result<SessionRow> {
        let mut session = self.users.session(id).await?;
        if session.status == "active" {
            session.status = "revoked".into();
            session.updated_at = self.now();
            self.emitting(vec![self.users.session_event("session.revoked", &session)]).update_session(&session).await?;
        }
        Ok(session)
    }
}
