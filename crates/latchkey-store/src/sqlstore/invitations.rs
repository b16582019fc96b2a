//! App-level invitations and sign-in tokens (the tickets an administrator hands out).

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::{like_contains, Filter};
use crate::error::Result;
use crate::records::*;
use crate::sql::SqlDriver;
use crate::store::InvitationStore;

record!(InvitationRow in "invitations" {
    id, email, status, public_metadata, redirect_url, token_digest, expires_at, created_at, updated_at,
});
record!(SignInTokenRow in "sign_in_tokens" { id, user_id, token_digest, status, expires_at, created_at, updated_at });

#[async_trait]
impl<D: SqlDriver> InvitationStore for SqlStore<D> {
    async fn insert_invitation(&self, invitation: &InvitationRow) -> Result<()> {
        self.insert(invitation).await
    }

    async fn get_invitation(&self, id: &str) -> Result<Option<InvitationRow>> {
        self.get(id).await
    }

    async fn update_invitation(&self, invitation: &InvitationRow) -> Result<()> {
        self.update(invitation).await.map(|_| ())
    }

    async fn delete_invitation(&self, id: &str) -> Result<bool> {
        self.delete::<InvitationRow>(id).await
    }

    async fn list_invitations(
        &self,
        statuses: &[String],
        query: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<InvitationRow>, i64)> {
        let mut f = Filter::default();
        f.any_of("status", statuses);
        if let Some(q) = query.map(str::trim).filter(|q| !q.is_empty()) {
            let pattern = f.param(like_contains(&q.to_lowercase()));
            f.push(self.db.ci_like("email", &pattern));
        }
        self.page(f, "created_at DESC, id DESC", limit, offset).await
    }

    async fn expire_invitations(&self, now: i64) -> Result<u64> {
        self.write_one(
            "UPDATE invitations SET status = 'expired', updated_at = $1 WHERE status = 'pending' AND expires_at <= $1",
            &[now.into()],
        )
        .await
    }

    async fn pending_invitations_for(&self, email: &str, now: i64) -> Result<Vec<InvitationRow>> {
        let filter =
            "email = $1 AND status = 'pending' AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at, id";
        self.find_all(filter, &[email.into(), now.into()]).await
    }

    async fn insert_sign_in_token(&self, token: &SignInTokenRow) -> Result<()> {
        self.insert(token).await
    }

    async fn get_sign_in_token(&self, id: &str) -> Result<Option<SignInTokenRow>> {
        self.get(id).await
    }

    async fn sign_in_token_by_digest(&self, digest: &str) -> Result<Option<SignInTokenRow>> {
        self.find("token_digest = $1", &[digest.into()]).await
    }

    async fn transition_sign_in_token(&self, t: &SignInTokenRow, from: &str) -> Result<bool> {
        self.write_once(
            "UPDATE sign_in_tokens SET status = $2, updated_at = $3 WHERE id = $1 AND status = $4",
            &[t.id.clone().into(), t.status.clone().into(), t.updated_at.into(), from.into()],
        )
        .await
    }
}
