//! App-level invitations and sign-in tokens (the tickets an administrator hands out).

use super::base::SqlStore;
use super::shared::{like_prefix, Filter};
use crate::error::Result;
use crate::records::{InvitationRow, SignInTokenRow};
use crate::sql::SqlDriver;

record!(InvitationRow in "invitations" {
    id, email, status, public_metadata, redirect_url, token_digest, expires_at, created_at, updated_at,
});
record!(SignInTokenRow in "sign_in_tokens" { id, user_id, token_digest, status, expires_at, created_at, updated_at });

pub(super) async fn list_invitations<D: SqlDriver>(
    s: &SqlStore<D>,
    statuses: &[String],
    query: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<InvitationRow>, i64)> {
    let mut f = Filter::default();
    f.any_of("status", statuses);
    if let Some(q) = query.map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = f.param(like_prefix(&q.to_lowercase()));
        f.push(s.db.ci_prefix("email", &pattern));
    }
    s.page(f, "created_at DESC, id DESC", limit, offset).await
}

pub(super) async fn expire_invitations<D: SqlDriver>(s: &SqlStore<D>, now: i64) -> Result<u64> {
    s.write_one(
        "UPDATE invitations SET status = 'expired', updated_at = $1 WHERE status = 'pending' AND expires_at <= $1",
        &[now.into()],
    )
    .await
}

pub(super) async fn pending_invitations_for<D: SqlDriver>(
    s: &SqlStore<D>,
    email: &str,
    now: i64,
) -> Result<Vec<InvitationRow>> {
    let filter =
        "email = $1 AND status = 'pending' AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at, id";
    s.find_all(filter, &[email.into(), now.into()]).await
}

pub(super) async fn sign_in_token_by_digest<D: SqlDriver>(
    s: &SqlStore<D>,
    digest: &str,
) -> Result<Option<SignInTokenRow>> {
    s.find("token_digest = $1", &[digest.into()]).await
}

pub(super) async fn transition_sign_in_token<D: SqlDriver>(
    s: &SqlStore<D>,
    t: &SignInTokenRow,
    from: &str,
) -> Result<bool> {
    s.write_once(
        "UPDATE sign_in_tokens SET status = $2, updated_at = $3 WHERE id = $1 AND status = $4",
        &[t.id.clone().into(), t.status.clone().into(), t.updated_at.into(), from.into()],
    )
    .await
}
