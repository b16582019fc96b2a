//! Users with their email addresses and phone numbers, and the queries of user lists.

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::{
    delete_space, delete_user_clients, from_row, insert_in, like_contains, lock_user, one, placeholders,
    refuse_last_admin_leaving, select_sql, update_versioned_in, Filter,
};
use crate::error::Result;
use crate::records::*;
use crate::sql::{Cell, SqlDriver, SqlValue};
use crate::store::UserStore;

record!(UserRow in "users", versioned by version {
    id, username, first_name, last_name, password_hash, primary_email_id, primary_phone_id,
    public_metadata, private_metadata, unsafe_metadata, failed_attempts, locked_until, banned,
    last_sign_in_at, last_active_at, password_updated_at, created_at, updated_at, version,
    external_id, locked, legal_accepted_at, delete_self_enabled, create_organization_enabled,
    create_organizations_limit, webauthn_handle,
});
record!(EmailRow in "email_addresses", versioned by version {
    id, user_id, email, verified, verified_at,
    code [code_digest, code_expires_at, code_attempts, code_consumed],
    created_at, updated_at, version,
});
record!(PhoneRow in "phone_numbers" {
    id, user_id, phone, verified, created_at, updated_at, reserved_for_second_factor,
});

impl<D: SqlDriver> SqlStore<D> {
    /// The plan of a user-list query, with `explain` the backend's prefix (`EXPLAIN QUERY PLAN`
    /// on SQLite, `EXPLAIN` on PostgreSQL): benchmarks show which index serves each filter.
    pub async fn explain_user_query(&self, explain: &str, q: &UserQuery) -> Result<Vec<String>> {
        let (sql, params) = user_page_sql(self.db.as_ref(), q);
        let rows = self.db.read(&format!("{explain} {sql}"), &params).await?;
        Ok(rows
            .iter()
            .map(|r| {
                r.0.iter()
                    .filter_map(|c| match c {
                        Cell::Text(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect())
    }
}

fn user_filter<D: SqlDriver>(db: &D, q: &UserQuery) -> Filter {
    let mut f = Filter::default();
    if q.unmatched_filter {
        f.push("1 = 0".into());
    }
    if !q.organization_ids.is_empty() {
        let inner = f.in_list("organization_id", &q.organization_ids);
        f.push(format!("id IN (SELECT user_id FROM organization_memberships WHERE {inner})"));
    }
    if q.provider.is_some() || !q.provider_user_ids.is_empty() {
        let mut inner = Vec::new();
        if let Some(provider) = &q.provider {
            let value = f.param(provider.clone());
            inner.push(format!("provider = {value}"));
        }
        if !q.provider_user_ids.is_empty() {
            inner.push(f.in_list("provider_user_id", &q.provider_user_ids));
        }
        f.push(format!("id IN (SELECT user_id FROM external_accounts WHERE {})", inner.join(" AND ")));
    }
    let emails: Vec<String> = q.email_addresses.iter().map(|e| e.trim().to_lowercase()).collect();
    if !emails.is_empty() {
        let inner = f.in_list("email", &emails);
        f.push(format!("id IN (SELECT user_id FROM email_addresses WHERE {inner})"));
    }
    if !q.phone_numbers.is_empty() {
        let inner = f.in_list("phone", &q.phone_numbers);
        f.push(format!("id IN (SELECT user_id FROM phone_numbers WHERE {inner})"));
    }
    let usernames: Vec<String> = q.usernames.iter().map(|u| u.trim().to_lowercase()).collect();
    f.any_of("username", &usernames);
    f.any_of("id", &q.user_ids);
    f.any_of("external_id", &q.external_ids);
    if let Some(banned) = q.banned {
        let value = f.param(banned);
        f.push(format!("banned = {value}"));
    }
    if let Some(text) = q.query.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let exact_a = f.param(text);
        let pattern = f.param(like_contains(&text.to_lowercase()));
        let like = |col: &str| db.ci_like(col, &pattern);
        f.push(format!(
            "(id = {exact_a} OR external_id = {exact_a} OR {} OR {} OR {} \
             OR id IN (SELECT user_id FROM email_addresses WHERE {}) \
             OR id IN (SELECT user_id FROM phone_numbers WHERE {}))",
            like("username"),
            like("first_name"),
            like("last_name"),
            like("email"),
            like("phone"),
        ));
    }
    f.bound("created_at", ">", q.created_after);
    f.bound("created_at", "<", q.created_before);
    f.bound("last_active_at", ">", q.last_active_after);
    f.bound("last_active_at", "<", q.last_active_before);
    f.bound("last_sign_in_at", ">", q.last_sign_in_after);
    f.bound("last_sign_in_at", "<", q.last_sign_in_before);
    f
}

/// ORDER BY for a user list; nulls sort last in both directions and on both backends.
fn user_order(q: &UserQuery) -> String {
    let dir = if q.descending { "DESC" } else { "ASC" };
    let expr = match q.order_by {
        UserOrder::CreatedAt => return format!("created_at {dir}, id {dir}"),
        UserOrder::UpdatedAt => "updated_at",
        UserOrder::LastActiveAt => "last_active_at",
        UserOrder::LastSignInAt => "last_sign_in_at",
        UserOrder::FirstName => "lower(first_name)",
        UserOrder::LastName => "lower(last_name)",
        UserOrder::Username => "username",
        UserOrder::EmailAddress => {
            "(SELECT email FROM email_addresses WHERE email_addresses.id = users.primary_email_id)"
        }
        UserOrder::PhoneNumber => "(SELECT phone FROM phone_numbers WHERE phone_numbers.id = users.primary_phone_id)",
    };
    format!("({expr} IS NULL) ASC, {expr} {dir}, id {dir}")
}

/// The statement of one page of a user query, with its parameters.
fn user_page_sql<D: SqlDriver>(db: &D, q: &UserQuery) -> (String, Vec<SqlValue>) {
    let mut f = user_filter(db, q);
    let limit = f.param(q.limit);
    let offset = f.param(q.offset);
    let sql = select_sql::<UserRow>(&format!("{} ORDER BY {} LIMIT {limit} OFFSET {offset}", f.sql(), user_order(q)));
    (sql, f.params)
}

/// The users with their identifications.
async fn load_users<D: SqlDriver>(s: &SqlStore<D>, users: Vec<UserRow>) -> Result<Vec<UserRecord>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<SqlValue> = users.iter().map(|u| u.id.clone().into()).collect();
    let filter = format!("user_id IN ({}) ORDER BY created_at, id", placeholders(ids.len(), 1));
    let emails: Vec<EmailRow> = s.find_all(&filter, &ids).await?;
    let phones: Vec<PhoneRow> = s.find_all(&filter, &ids).await?;
    let accounts: Vec<ExternalAccountRow> = s.find_all(&filter, &ids).await?;
    let totps: Vec<TotpRow> = s.find_all(&filter, &ids).await?;
    let backup_codes: Vec<BackupCodeRow> = s.find_all(&filter, &ids).await?;
    let passkeys: Vec<PasskeyRow> = s.find_all(&filter, &ids).await?;
    Ok(users
        .into_iter()
        .map(|user| UserRecord {
            emails: emails.iter().filter(|e| e.user_id == user.id).cloned().collect(),
            phones: phones.iter().filter(|p| p.user_id == user.id).cloned().collect(),
            external_accounts: accounts.iter().filter(|a| a.user_id == user.id).cloned().collect(),
            second_factors: SecondFactors {
                totp: totps.iter().find(|t| t.user_id == user.id).cloned(),
                backup_codes: backup_codes.iter().filter(|c| c.user_id == user.id).cloned().collect(),
            },
            passkeys: passkeys.iter().filter(|p| p.user_id == user.id).cloned().collect(),
            user,
        })
        .collect())
}

#[async_trait]
impl<D: SqlDriver> UserStore for SqlStore<D> {
    async fn create_user(&self, u: &UserRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_in(&mut tx, &u.user).await?;
        for e in &u.emails {
            insert_in(&mut tx, e).await?;
        }
        for p in &u.phones {
            insert_in(&mut tx, p).await?;
        }
        super::second_factors::insert_second_factors(&mut tx, &u.second_factors).await?;
        tx.commit().await
    }

    async fn users_after(&self, after: &str, limit: i64) -> Result<Vec<UserRecord>> {
        let rows: Vec<UserRow> = self.find_all("id > $1 ORDER BY id LIMIT $2", &[after.into(), limit.into()]).await?;
        load_users(self, rows).await
    }

    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>> {
        let Some(user) = self.get::<UserRow>(id).await? else {
            return Ok(None);
        };
        Ok(load_users(self, vec![user]).await?.pop())
    }

    async fn user_id_by_verified_email(&self, email: &str) -> Result<Option<String>> {
        let rows = self
            .db
            .read("SELECT user_id FROM email_addresses WHERE email = $1 AND verified = TRUE", &[email.into()])
            .await?;
        one(rows, |r| r.text(0))
    }

    async fn verified_email_owner(&self, email: &str) -> Result<Option<(String, String)>> {
        let rows = self
            .db
            .read("SELECT user_id, id FROM email_addresses WHERE email = $1 AND verified = TRUE", &[email.into()])
            .await?;
        one(rows, |r| Ok((r.text(0)?, r.text(1)?)))
    }

    async fn get_user_row(&self, id: &str) -> Result<Option<UserRow>> {
        self.get(id).await
    }

    async fn user_id_by_username(&self, username: &str) -> Result<Option<String>> {
        one(self.db.read("SELECT id FROM users WHERE username = $1", &[username.into()]).await?, |r| r.text(0))
    }

    async fn update_user(&self, user: &UserRow) -> Result<()> {
        self.update_versioned(user).await
    }

    async fn update_user_revoking_sessions(&self, u: &UserRow, now: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        update_versioned_in(&mut tx, u).await?;
        let n = tx
            .execute(
                "UPDATE sessions SET status = 'revoked', updated_at = $2 WHERE user_id = $1 AND status = 'active'",
                &[u.id.clone().into(), now.into()],
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<UserRecord>> {
        let users = self
            .find_all("1 = 1 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2", &[limit.into(), offset.into()])
            .await?;
        load_users(self, users).await
    }

    async fn count_users(&self) -> Result<i64> {
        self.count("SELECT COUNT(*) FROM users", &[]).await
    }

    async fn query_users(&self, q: &UserQuery) -> Result<Vec<UserRecord>> {
        let (sql, params) = user_page_sql(self.db.as_ref(), q);
        let rows = self.db.read(&sql, &params).await?;
        load_users(self, rows.iter().map(from_row).collect::<Result<_>>()?).await
    }

    async fn count_users_matching(&self, q: &UserQuery) -> Result<i64> {
        let f = user_filter(self.db.as_ref(), q);
        self.count(&format!("SELECT COUNT(*) FROM users WHERE {}", f.sql()), &f.params).await
    }

    async fn user_id_by_external_id(&self, external_id: &str) -> Result<Option<String>> {
        one(self.db.read("SELECT id FROM users WHERE external_id = $1", &[external_id.into()]).await?, |r| r.text(0))
    }

    async fn delete_user(&self, id: &str) -> Result<bool> {
        self.delete_user_where(id, None).await
    }

    async fn delete_own_user(&self, id: &str, admin_role: &str) -> Result<bool> {
        self.delete_user_where(id, Some(admin_role)).await
    }

    async fn insert_email(&self, email: &EmailRow) -> Result<()> {
        self.insert(email).await
    }

    async fn update_email(&self, email: &EmailRow) -> Result<()> {
        self.update_versioned(email).await
    }

    async fn delete_email(&self, id: &str) -> Result<()> {
        self.delete::<EmailRow>(id).await.map(|_| ())
    }

    async fn get_email(&self, id: &str) -> Result<Option<EmailRow>> {
        self.get(id).await
    }

    async fn insert_phone(&self, phone: &PhoneRow) -> Result<()> {
        self.insert(phone).await
    }

    async fn get_phone(&self, id: &str) -> Result<Option<PhoneRow>> {
        self.get(id).await
    }

    async fn update_phone(&self, phone: &PhoneRow) -> Result<()> {
        self.update(phone).await.map(|_| ())
    }

    async fn delete_phone(&self, id: &str) -> Result<()> {
        self.delete::<PhoneRow>(id).await.map(|_| ())
    }
}

impl<D: SqlDriver> SqlStore<D> {
    /// Deletes a user and everything keyed to them in one transaction; with `admin_role`, first
    /// refuses (`Conflict("last_admin:<org>")`) when they are the last admin of an
    /// organization with other members.
    async fn delete_user_where(&self, id: &str, admin_role: Option<&str>) -> Result<bool> {
        let mut tx = self.begin().await?;
        // The user's row first, as a sync push takes it (no push lands half before, half after).
        if !lock_user(&mut tx, id).await? {
            return Ok(false);
        }
        if let Some(role) = admin_role {
            refuse_last_admin_leaving(&mut tx, id, role).await?;
        }
        // The personal space goes with its owner, in the same transaction.
        delete_space(&mut tx, id).await?;
        delete_user_clients(&mut tx, id).await?;
        // Their sign-in and sign-up attempts (which name their address) go too, and the
        // organizations they created no longer name them (docs/account-data.md).
        for sql in [
            "UPDATE clients SET sign_in_id = NULL WHERE sign_in_id IN (SELECT id FROM sign_ins WHERE user_id = $1)",
            "UPDATE clients SET sign_up_id = NULL WHERE sign_up_id IN (SELECT id FROM sign_ups WHERE created_user_id = $1)",
            "DELETE FROM sign_ins WHERE user_id = $1",
            "DELETE FROM sign_ups WHERE created_user_id = $1",
            "UPDATE organizations SET created_by = NULL WHERE created_by = $1",
        ] {
            tx.execute(sql, &[id.into()]).await?;
        }
        let n = tx.execute("DELETE FROM users WHERE id = $1", &[id.into()]).await?;
        tx.commit().await?;
        Ok(n == 1)
    }
}
