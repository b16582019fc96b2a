//! Clients (one per browser or device), their sign-in and sign-up attempts, sessions, and
//! handshake nonces; with the housekeeping of what anyone can make without an account.

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::{bump_in, insert_in, update_versioned_in, Filter, Record};
use crate::error::Result;
use crate::records::*;
use crate::sql::{SqlDriver, SqlTx};
use crate::store::SessionStore;

record!(ClientRow in "clients" {
    id, token_digest, sign_in_id, sign_up_id, last_active_session_id, created_at, updated_at,
});
record!(SessionRow in "sessions" {
    id, client_id, user_id, status, active_org_id, created_at, updated_at, last_active_at, expire_at, abandon_at,
    first_factor_verified_at, second_factor_verified_at, reverification, pending_task, user_agent, ip_address,
});
record!(SignUpRow in "sign_ups", versioned by version {
    id, client_id, status, email, email_taken, email_verified, username, first_name, last_name, password_hash,
    unsafe_metadata, external_profile, code [code_digest, code_expires_at, code_attempts, code_consumed],
    created_user_id, created_session_id, created_at, updated_at, abandon_at, version, link_redirect_url,
    link_verified_client,
});
record!(SignInRow in "sign_ins", versioned by version {
    id, client_id, status, identifier, user_id, email_address_id, first_factor_strategy, first_factor_status,
    first_factor_error, external_profile, code [code_digest, code_expires_at, code_attempts, code_consumed],
    created_session_id, created_at, updated_at, abandon_at, version, second_factors_supported, second_factor_strategy,
    second_factor_status, second_factor_attempts, link_redirect_url, link_verified_client, passkey_state,
});

/// Inserts a sign-up or sign-in and makes it its client's current one (`client_column`), in one
/// transaction.
async fn insert_attempt<D: SqlDriver, R: Record>(
    s: &SqlStore<D>,
    attempt: &R,
    (client_id, id): (&str, &str),
    client_column: &str,
) -> Result<()> {
    let mut tx = s.begin().await?;
    insert_in(&mut tx, attempt).await?;
    tx.execute(&format!("UPDATE clients SET {client_column} = $2 WHERE id = $1"), &[client_id.into(), id.into()])
        .await?;
    tx.commit().await
}

/// Points the session's client at it (the new session is the client's active one) and gives
/// the client its new token: the token it had before the sign-in stops working.
async fn hand_session_to_client(tx: &mut Box<dyn SqlTx>, session: &SessionRow, token_digest: &str) -> Result<()> {
    tx.execute(
        "UPDATE clients SET last_active_session_id = $2, updated_at = $3, token_digest = $4 WHERE id = $1",
        &[session.client_id.clone().into(), session.id.clone().into(), session.created_at.into(), token_digest.into()],
    )
    .await
    .map(|_| ())
}

fn session_filter(q: &SessionQuery) -> Filter {
    let mut f = Filter::default();
    if let Some(u) = &q.user_id {
        f.equals("user_id", u);
    }
    if let Some(c) = &q.client_id {
        f.equals("client_id", c);
    }
    if let Some(status) = &q.status {
        // An `active` row shows as expired once past its deadline or its idle limit.
        let now = f.param(q.now);
        let idle = f.param(q.idle_timeout_ms.map(|t| q.now - t).unwrap_or(i64::MIN));
        let live = format!("(expire_at > {now} AND last_active_at > {idle})");
        match status.as_str() {
            "active" => f.push(format!("status = 'active' AND {live}")),
            "expired" => f.push(format!("(status = 'expired' OR (status = 'active' AND NOT {live}))")),
            other => f.equals("status", other),
        }
    }
    f
}

#[async_trait]
impl<D: SqlDriver> SessionStore for SqlStore<D> {
    async fn insert_client(&self, client: &ClientRow) -> Result<()> {
        self.insert(client).await
    }

    async fn get_client(&self, id: &str) -> Result<Option<ClientRow>> {
        self.get(id).await
    }

    async fn client_by_token_digest(&self, digest: &str) -> Result<Option<ClientRow>> {
        self.find("token_digest = $1", &[digest.into()]).await
    }

    async fn update_client(&self, client: &ClientRow) -> Result<()> {
        self.update(client).await.map(|_| ())
    }

    async fn insert_sign_up(&self, sign_up: &SignUpRow) -> Result<()> {
        insert_attempt(self, sign_up, (&sign_up.client_id, &sign_up.id), "sign_up_id").await
    }

    async fn get_sign_up(&self, id: &str) -> Result<Option<SignUpRow>> {
        self.get(id).await
    }

    async fn update_sign_up(&self, sign_up: &SignUpRow) -> Result<()> {
        self.update_versioned(sign_up).await
    }

    async fn complete_sign_up(&self, done: &CompleteSignUp) -> Result<()> {
        let mut tx = self.begin().await?;
        update_versioned_in(&mut tx, &done.sign_up).await?;
        insert_in(&mut tx, &done.user).await?;
        insert_in(&mut tx, &done.email).await?;
        insert_in(&mut tx, &done.session).await?;
        hand_session_to_client(&mut tx, &done.session, &done.client_token_digest).await?;
        if let Some(account) = &done.external_account {
            super::external::write_external_account(&mut tx, account).await?;
        }
        tx.commit().await
    }

    async fn insert_sign_in(&self, sign_in: &SignInRow) -> Result<()> {
        insert_attempt(self, sign_in, (&sign_in.client_id, &sign_in.id), "sign_in_id").await
    }

    async fn get_sign_in(&self, id: &str) -> Result<Option<SignInRow>> {
        self.get(id).await
    }

    async fn update_sign_in(&self, sign_in: &SignInRow) -> Result<()> {
        self.update_versioned(sign_in).await
    }

    async fn complete_sign_in(&self, done: &CompleteSignIn) -> Result<()> {
        let mut tx = self.begin().await?;
        update_versioned_in(&mut tx, &done.sign_in).await?;
        if let Some(session) = &done.session {
            insert_in(&mut tx, session).await?;
            hand_session_to_client(&mut tx, session, &done.client_token_digest).await?;
            tx.execute(
                "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_sign_in_at = $2, last_active_at = $2, \
                 updated_at = $2, version = version + 1 WHERE id = $1",
                &[done.user_id.clone().into(), done.now.into()],
            )
            .await?;
        } else {
            // The password was right: its failure count starts over, though no session exists yet.
            tx.execute(
                "UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE id = $1 AND failed_attempts > 0",
                &[done.user_id.clone().into()],
            )
            .await?;
        }
        if let Some(account) = &done.external_account {
            super::external::write_external_account(&mut tx, account).await?;
        }
        if let Some(hash) = &done.rehashed_password {
            tx.execute(
                "UPDATE users SET password_hash = $2, password_updated_at = COALESCE($3, password_updated_at) \
                 WHERE id = $1",
                &[done.user_id.clone().into(), hash.into(), done.password_changed_at.into()],
            )
            .await?;
        }
        tx.commit().await
    }

    async fn record_failed_attempt(&self, f: &FailedAttempt) -> Result<FailedAttemptCounts> {
        let mut tx = self.begin().await?;
        update_versioned_in(&mut tx, &f.sign_in).await?;
        let mut counters = Vec::with_capacity(f.counters.len());
        for (key, window_ms) in &f.counters {
            counters.push(bump_in(&mut tx, key, *window_ms, f.now).await?);
        }
        let mut account_failures = None;
        if let Some(a) = &f.account {
            // Counted and locked in SQL (every SET reads the row as it was), so concurrent
            // failures all count and none clears a lock another just set.
            let rows = tx
                .query(
                    "UPDATE users SET failed_attempts = failed_attempts + 1, \
                     locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN $3 ELSE locked_until END \
                     WHERE id = $1 RETURNING failed_attempts",
                    &[a.user_id.clone().into(), a.lock_after.into(), a.locked_until.into()],
                )
                .await?;
            account_failures = rows.first().map(|r| r.int(0)).transpose()?;
        }
        tx.commit().await?;
        Ok(FailedAttemptCounts { counters, account_failures })
    }

    async fn insert_session(&self, session: &SessionRow) -> Result<()> {
        self.insert(session).await
    }

    async fn get_session(&self, id: &str) -> Result<Option<SessionRow>> {
        self.get(id).await
    }

    async fn record_session_activity(&self, id: &str, active_org_id: Option<&str>, now: i64) -> Result<bool> {
        self.write_once(
            "UPDATE sessions SET last_active_at = $2, updated_at = $2, active_org_id = $3 \
             WHERE id = $1 AND status = 'active'",
            &[id.into(), now.into(), active_org_id.map(str::to_owned).into()],
        )
        .await
    }

    async fn record_session_device(&self, id: &str, user_agent: Option<&str>, ip_address: &str) -> Result<bool> {
        self.write_once(
            "UPDATE sessions SET user_agent = $2, ip_address = $3 WHERE id = $1 AND status = 'active'",
            &[id.into(), user_agent.map(str::to_owned).into(), ip_address.into()],
        )
        .await
    }

    async fn second_factor_unproved_elsewhere(&self, user_id: &str, except_session: &str) -> Result<u64> {
        self.write_one(
            "UPDATE sessions SET second_factor_verified_at = 0 \
             WHERE user_id = $1 AND id <> $2 AND status = 'active' AND second_factor_verified_at IS NULL",
            &[user_id.into(), except_session.into()],
        )
        .await
    }

    async fn record_session_verification(&self, v: &SessionVerification) -> Result<bool> {
        self.write_once(
            "UPDATE sessions SET reverification = $2, \
             first_factor_verified_at = COALESCE($3, first_factor_verified_at), \
             second_factor_verified_at = COALESCE($4, second_factor_verified_at), updated_at = $5, \
             pending_task = CASE WHEN $4 IS NULL THEN pending_task ELSE NULL END \
             WHERE id = $1 AND status = 'active'",
            &[
                v.session_id.clone().into(),
                v.reverification.clone().into(),
                v.first_factor_verified_at.into(),
                v.second_factor_verified_at.into(),
                v.now.into(),
            ],
        )
        .await
    }

    async fn update_session(&self, session: &SessionRow) -> Result<()> {
        self.update(session).await.map(|_| ())
    }

    async fn sessions_for_client(&self, client_id: &str) -> Result<Vec<SessionRow>> {
        self.find_all("client_id = $1 ORDER BY created_at, id", &[client_id.into()]).await
    }

    async fn sessions_for_user(&self, user_id: &str) -> Result<Vec<SessionRow>> {
        self.find_all("user_id = $1 ORDER BY created_at DESC, id", &[user_id.into()]).await
    }

    async fn end_client_sessions(&self, client_id: &str, status: &str, now: i64) -> Result<u64> {
        self.write_one(
            "UPDATE sessions SET status = $2, updated_at = $3 WHERE client_id = $1 AND status = 'active'",
            &[client_id.into(), status.into(), now.into()],
        )
        .await
    }

    async fn query_sessions(&self, q: &SessionQuery) -> Result<(Vec<SessionRow>, i64)> {
        self.page(session_filter(q), "created_at DESC, id DESC", q.limit, q.offset).await
    }

    async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<u64> {
        self.write_one(
            "UPDATE sessions SET status = 'revoked', updated_at = $3 WHERE user_id = $1 AND status = 'active' \
             AND id <> $2",
            &[user_id.into(), keep.unwrap_or("").into(), now.into()],
        )
        .await
    }

    async fn prune_abandoned(&self, now: i64, idle_before: i64) -> Result<u64> {
        const BATCH: i64 = 1000;
        let statements = [
            ("DELETE FROM sign_ins WHERE id IN (SELECT id FROM sign_ins WHERE abandon_at < $1 LIMIT $2)", now),
            ("DELETE FROM sign_ups WHERE id IN (SELECT id FROM sign_ups WHERE abandon_at < $1 LIMIT $2)", now),
            (
                "DELETE FROM passkeys WHERE id IN (SELECT id FROM passkeys WHERE NOT verified AND expire_at < $1 LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM clients WHERE id IN (SELECT c.id FROM clients c WHERE c.updated_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.client_id = c.id) LIMIT $2)",
                idle_before,
            ),
        ];
        let mut removed = 0;
        for (sql, before) in statements {
            loop {
                // One short transaction per batch, so the writer is never held for long.
                let n = self.write_one(sql, &[before.into(), BATCH.into()]).await?;
                removed += n;
                if n < BATCH as u64 {
                    break;
                }
            }
        }
        Ok(removed)
    }

    async fn insert_handshake_nonce(&self, digest: &str, directives: &str, expires_at: i64) -> Result<()> {
        self.write_one(
            "INSERT INTO handshake_nonces (nonce_digest, directives, expires_at) VALUES ($1, $2, $3)",
            &[digest.into(), directives.into(), expires_at.into()],
        )
        .await
        .map(|_| ())
    }

    async fn take_handshake_nonce(&self, digest: &str, now: i64) -> Result<Option<String>> {
        let mut tx = self.begin().await?;
        // One DELETE decides who takes it: a second caller finds no row.
        let rows = tx
            .query(
                "DELETE FROM handshake_nonces WHERE nonce_digest = $1 RETURNING directives, expires_at",
                &[digest.into()],
            )
            .await?;
        tx.commit().await?;
        match rows.first() {
            Some(r) if r.int(1)? > now => Ok(Some(r.text(0)?)),
            _ => Ok(None),
        }
    }

    async fn prune_handshake_nonces(&self, now: i64) -> Result<u64> {
        self.write_one("DELETE FROM handshake_nonces WHERE expires_at <= $1", &[now.into()]).await
    }
}
