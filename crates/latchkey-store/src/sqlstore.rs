//! [`Store`] implemented once in portable SQL over a backend's [`SqlDriver`].

use async_trait::async_trait;

use crate::error::{Result, StoreError};
use crate::records::*;
use crate::sql::{Row, SqlDriver, SqlTx, SqlValue};
use crate::store::Store;
use crate::webhooks::OutboxEvent;

const USER_COLS: &[&str] = &[
    "id",
    "username",
    "first_name",
    "last_name",
    "password_hash",
    "primary_email_id",
    "primary_phone_id",
    "public_metadata",
    "private_metadata",
    "unsafe_metadata",
    "failed_attempts",
    "locked_until",
    "banned",
    "last_sign_in_at",
    "last_active_at",
    "password_updated_at",
    "created_at",
    "updated_at",
    "version",
    "external_id",
    "locked",
    "legal_accepted_at",
    "delete_self_enabled",
    "create_organization_enabled",
    "create_organizations_limit",
];
const EMAIL_COLS: &[&str] = &[
    "id",
    "user_id",
    "email",
    "verified",
    "verified_at",
    "code_digest",
    "code_expires_at",
    "code_attempts",
    "code_consumed",
    "created_at",
    "updated_at",
    "version",
];
const PHONE_COLS: &[&str] =
    &["id", "user_id", "phone", "verified", "created_at", "updated_at", "reserved_for_second_factor"];
const INVITATION_COLS: &[&str] = &[
    "id",
    "email",
    "status",
    "public_metadata",
    "redirect_url",
    "token_digest",
    "expires_at",
    "created_at",
    "updated_at",
];
const SIGN_IN_TOKEN_COLS: &[&str] =
    &["id", "user_id", "token_digest", "status", "expires_at", "created_at", "updated_at"];
const TEMPLATE_COLS: &[&str] = &[
    "id",
    "name",
    "claims",
    "lifetime",
    "allowed_clock_skew",
    "signing_algorithm",
    "signing_key_sealed",
    "created_at",
    "updated_at",
];
const CLIENT_COLS: &[&str] =
    &["id", "token_digest", "sign_in_id", "sign_up_id", "last_active_session_id", "created_at", "updated_at"];
const SESSION_COLS: &[&str] = &[
    "id",
    "client_id",
    "user_id",
    "status",
    "active_org_id",
    "created_at",
    "updated_at",
    "last_active_at",
    "expire_at",
    "abandon_at",
];
const SIGN_UP_COLS: &[&str] = &[
    "id",
    "client_id",
    "status",
    "email",
    "email_taken",
    "email_verified",
    "username",
    "first_name",
    "last_name",
    "password_hash",
    "unsafe_metadata",
    "code_digest",
    "code_expires_at",
    "code_attempts",
    "code_consumed",
    "created_user_id",
    "created_session_id",
    "created_at",
    "updated_at",
    "abandon_at",
    "version",
];
const SIGN_IN_COLS: &[&str] = &[
    "id",
    "client_id",
    "status",
    "identifier",
    "user_id",
    "email_address_id",
    "first_factor_strategy",
    "first_factor_status",
    "code_digest",
    "code_expires_at",
    "code_attempts",
    "code_consumed",
    "created_session_id",
    "created_at",
    "updated_at",
    "abandon_at",
    "version",
];
const KEY_COLS: &[&str] = &["kid", "public_n", "public_e", "private_sealed", "created_at", "activate_at", "revoked_at"];
const API_KEY_COLS: &[&str] = &["id", "digest", "label", "created_at", "revoked_at"];

const ROLE_COLS: &[&str] = &["key", "name", "description", "permissions", "created_at", "updated_at"];
const ORG_COLS: &[&str] = &[
    "id",
    "name",
    "slug",
    "image_url",
    "public_metadata",
    "private_metadata",
    "max_allowed_memberships",
    "admin_delete_enabled",
    "created_by",
    "created_at",
    "updated_at",
];
const MEMBERSHIP_COLS: &[&str] =
    &["id", "organization_id", "user_id", "role", "public_metadata", "private_metadata", "created_at", "updated_at"];
const ORG_INVITATION_COLS: &[&str] = &[
    "id",
    "organization_id",
    "email",
    "role",
    "status",
    "public_metadata",
    "private_metadata",
    "inviter_user_id",
    "token_digest",
    "expires_at",
    "created_at",
    "updated_at",
];

fn role_params(r: &OrgRoleRow) -> Vec<SqlValue> {
    vec![
        r.key.clone().into(),
        r.name.clone().into(),
        r.description.clone().into(),
        r.permissions.clone().into(),
        r.created_at.into(),
        r.updated_at.into(),
    ]
}

fn role_from(r: &Row) -> Result<OrgRoleRow> {
    Ok(OrgRoleRow {
        key: r.text(0)?,
        name: r.text(1)?,
        description: r.text(2)?,
        permissions: r.text(3)?,
        created_at: r.int(4)?,
        updated_at: r.int(5)?,
    })
}

fn org_params(o: &OrganizationRow) -> Vec<SqlValue> {
    vec![
        o.id.clone().into(),
        o.name.clone().into(),
        o.slug.clone().into(),
        o.image_url.clone().into(),
        o.public_metadata.clone().into(),
        o.private_metadata.clone().into(),
        o.max_allowed_memberships.into(),
        o.admin_delete_enabled.into(),
        o.created_by.clone().into(),
        o.created_at.into(),
        o.updated_at.into(),
    ]
}

fn org_from(r: &Row) -> Result<OrganizationRow> {
    Ok(OrganizationRow {
        id: r.text(0)?,
        name: r.text(1)?,
        slug: r.text(2)?,
        image_url: r.opt_text(3)?,
        public_metadata: r.text(4)?,
        private_metadata: r.text(5)?,
        max_allowed_memberships: r.int(6)?,
        admin_delete_enabled: r.bool(7)?,
        created_by: r.opt_text(8)?,
        created_at: r.int(9)?,
        updated_at: r.int(10)?,
    })
}

fn membership_params(m: &MembershipRow) -> Vec<SqlValue> {
    vec![
        m.id.clone().into(),
        m.organization_id.clone().into(),
        m.user_id.clone().into(),
        m.role.clone().into(),
        m.public_metadata.clone().into(),
        m.private_metadata.clone().into(),
        m.created_at.into(),
        m.updated_at.into(),
    ]
}

fn membership_from(r: &Row) -> Result<MembershipRow> {
    Ok(MembershipRow {
        id: r.text(0)?,
        organization_id: r.text(1)?,
        user_id: r.text(2)?,
        role: r.text(3)?,
        public_metadata: r.text(4)?,
        private_metadata: r.text(5)?,
        created_at: r.int(6)?,
        updated_at: r.int(7)?,
    })
}

fn org_invitation_params(i: &OrgInvitationRow) -> Vec<SqlValue> {
    vec![
        i.id.clone().into(),
        i.organization_id.clone().into(),
        i.email.clone().into(),
        i.role.clone().into(),
        i.status.clone().into(),
        i.public_metadata.clone().into(),
        i.private_metadata.clone().into(),
        i.inviter_user_id.clone().into(),
        i.token_digest.clone().into(),
        i.expires_at.into(),
        i.created_at.into(),
        i.updated_at.into(),
    ]
}

fn org_invitation_from(r: &Row) -> Result<OrgInvitationRow> {
    Ok(OrgInvitationRow {
        id: r.text(0)?,
        organization_id: r.text(1)?,
        email: r.text(2)?,
        role: r.text(3)?,
        status: r.text(4)?,
        public_metadata: r.text(5)?,
        private_metadata: r.text(6)?,
        inviter_user_id: r.opt_text(7)?,
        token_digest: r.text(8)?,
        expires_at: r.int(9)?,
        created_at: r.int(10)?,
        updated_at: r.int(11)?,
    })
}

/// Serializes membership changes of one organization: on PostgreSQL the no-op update takes
/// the organization's row lock until commit (SQLite has one writer anyway).
/// (A query rather than a statement: a lock is not a change, and changes decide whether a
/// transaction's events are written.)
async fn lock_organization(tx: &mut Box<dyn SqlTx>, organization_id: &str) -> Result<bool> {
    let rows = tx
        .query("UPDATE organizations SET updated_at = updated_at WHERE id = $1 RETURNING id", &[organization_id.into()])
        .await?;
    Ok(rows.len() == 1)
}

/// `Conflict("membership_limit")` when the organization (locked by the caller) is full; 0 is
/// no limit.
async fn check_membership_limit(tx: &mut Box<dyn SqlTx>, organization_id: &str, max_allowed: i64) -> Result<()> {
    if max_allowed <= 0 {
        return Ok(());
    }
    let n = count_in_tx(
        tx,
        "SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1",
        &[organization_id.into()],
    )
    .await?;
    if n >= max_allowed {
        return Err(StoreError::Conflict("membership_limit".into()));
    }
    Ok(())
}

async fn count_in_tx(tx: &mut Box<dyn SqlTx>, sql: &str, params: &[SqlValue]) -> Result<i64> {
    Ok(one(tx.query(sql, params).await?, |r| r.int(0))?.unwrap_or(0))
}

fn cols(list: &[&str]) -> String {
    list.join(", ")
}

pub(crate) fn placeholders(n: usize, start: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

fn insert_sql(table: &str, list: &[&str]) -> String {
    format!("INSERT INTO {table} ({}) VALUES ({})", cols(list), placeholders(list.len(), 1))
}

/// `UPDATE table SET c2 = $2, … WHERE c1 = $1`, plus an optimistic `version` check when asked.
fn update_sql(table: &str, list: &[&str], versioned: bool) -> String {
    let set: Vec<String> = list.iter().enumerate().skip(1).map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
    let mut sql = format!("UPDATE {table} SET {} WHERE {} = $1", set.join(", "), list[0]);
    if versioned {
        sql.push_str(&format!(" AND version = ${}", list.len() + 1));
    }
    sql
}

fn select_sql(table: &str, list: &[&str], filter: &str) -> String {
    format!("SELECT {} FROM {table} WHERE {filter}", cols(list))
}

fn code_params(c: &CodeFields) -> [SqlValue; 4] {
    [c.digest.clone().into(), c.expires_at.into(), c.attempts.into(), c.consumed.into()]
}

fn code_from(r: &Row, at: usize) -> Result<CodeFields> {
    Ok(CodeFields {
        digest: r.opt_text(at)?,
        expires_at: r.opt_int(at + 1)?,
        attempts: r.int(at + 2)?,
        consumed: r.bool(at + 3)?,
    })
}

fn user_params(u: &UserRow) -> Vec<SqlValue> {
    vec![
        u.id.clone().into(),
        u.username.clone().into(),
        u.first_name.clone().into(),
        u.last_name.clone().into(),
        u.password_hash.clone().into(),
        u.primary_email_id.clone().into(),
        u.primary_phone_id.clone().into(),
        u.public_metadata.clone().into(),
        u.private_metadata.clone().into(),
        u.unsafe_metadata.clone().into(),
        u.failed_attempts.into(),
        u.locked_until.into(),
        u.banned.into(),
        u.last_sign_in_at.into(),
        u.last_active_at.into(),
        u.password_updated_at.into(),
        u.created_at.into(),
        u.updated_at.into(),
        u.version.into(),
        u.external_id.clone().into(),
        u.locked.into(),
        u.legal_accepted_at.into(),
        u.delete_self_enabled.into(),
        u.create_organization_enabled.into(),
        u.create_organizations_limit.into(),
    ]
}

fn user_from(r: &Row) -> Result<UserRow> {
    Ok(UserRow {
        id: r.text(0)?,
        username: r.opt_text(1)?,
        first_name: r.opt_text(2)?,
        last_name: r.opt_text(3)?,
        password_hash: r.opt_text(4)?,
        primary_email_id: r.opt_text(5)?,
        primary_phone_id: r.opt_text(6)?,
        public_metadata: r.text(7)?,
        private_metadata: r.text(8)?,
        unsafe_metadata: r.text(9)?,
        failed_attempts: r.int(10)?,
        locked_until: r.opt_int(11)?,
        banned: r.bool(12)?,
        last_sign_in_at: r.opt_int(13)?,
        last_active_at: r.opt_int(14)?,
        password_updated_at: r.opt_int(15)?,
        created_at: r.int(16)?,
        updated_at: r.int(17)?,
        version: r.int(18)?,
        external_id: r.opt_text(19)?,
        locked: r.bool(20)?,
        legal_accepted_at: r.opt_int(21)?,
        delete_self_enabled: r.bool(22)?,
        create_organization_enabled: r.bool(23)?,
        create_organizations_limit: r.opt_int(24)?,
    })
}

fn email_params(e: &EmailRow) -> Vec<SqlValue> {
    let mut p = vec![
        e.id.clone().into(),
        e.user_id.clone().into(),
        e.email.clone().into(),
        e.verified.into(),
        e.verified_at.into(),
    ];
    p.extend(code_params(&e.code));
    p.extend([e.created_at.into(), e.updated_at.into(), e.version.into()]);
    p
}

fn email_from(r: &Row) -> Result<EmailRow> {
    Ok(EmailRow {
        id: r.text(0)?,
        user_id: r.text(1)?,
        email: r.text(2)?,
        verified: r.bool(3)?,
        verified_at: r.opt_int(4)?,
        code: code_from(r, 5)?,
        created_at: r.int(9)?,
        updated_at: r.int(10)?,
        version: r.int(11)?,
    })
}

fn phone_params(p: &PhoneRow) -> Vec<SqlValue> {
    vec![
        p.id.clone().into(),
        p.user_id.clone().into(),
        p.phone.clone().into(),
        p.verified.into(),
        p.created_at.into(),
        p.updated_at.into(),
        p.reserved_for_second_factor.into(),
    ]
}

fn phone_from(r: &Row) -> Result<PhoneRow> {
    Ok(PhoneRow {
        id: r.text(0)?,
        user_id: r.text(1)?,
        phone: r.text(2)?,
        verified: r.bool(3)?,
        created_at: r.int(4)?,
        updated_at: r.int(5)?,
        reserved_for_second_factor: r.bool(6)?,
    })
}

fn invitation_params(i: &InvitationRow) -> Vec<SqlValue> {
    vec![
        i.id.clone().into(),
        i.email.clone().into(),
        i.status.clone().into(),
        i.public_metadata.clone().into(),
        i.redirect_url.clone().into(),
        i.token_digest.clone().into(),
        i.expires_at.into(),
        i.created_at.into(),
        i.updated_at.into(),
    ]
}

fn invitation_from(r: &Row) -> Result<InvitationRow> {
    Ok(InvitationRow {
        id: r.text(0)?,
        email: r.text(1)?,
        status: r.text(2)?,
        public_metadata: r.text(3)?,
        redirect_url: r.opt_text(4)?,
        token_digest: r.text(5)?,
        expires_at: r.opt_int(6)?,
        created_at: r.int(7)?,
        updated_at: r.int(8)?,
    })
}

fn sign_in_token_params(t: &SignInTokenRow) -> Vec<SqlValue> {
    vec![
        t.id.clone().into(),
        t.user_id.clone().into(),
        t.token_digest.clone().into(),
        t.status.clone().into(),
        t.expires_at.into(),
        t.created_at.into(),
        t.updated_at.into(),
    ]
}

fn sign_in_token_from(r: &Row) -> Result<SignInTokenRow> {
    Ok(SignInTokenRow {
        id: r.text(0)?,
        user_id: r.text(1)?,
        token_digest: r.text(2)?,
        status: r.text(3)?,
        expires_at: r.int(4)?,
        created_at: r.int(5)?,
        updated_at: r.int(6)?,
    })
}

fn template_params(t: &JwtTemplateRow) -> Vec<SqlValue> {
    vec![
        t.id.clone().into(),
        t.name.clone().into(),
        t.claims.clone().into(),
        t.lifetime.into(),
        t.allowed_clock_skew.into(),
        t.signing_algorithm.clone().into(),
        t.signing_key_sealed.clone().into(),
        t.created_at.into(),
        t.updated_at.into(),
    ]
}

fn template_from(r: &Row) -> Result<JwtTemplateRow> {
    Ok(JwtTemplateRow {
        id: r.text(0)?,
        name: r.text(1)?,
        claims: r.text(2)?,
        lifetime: r.int(3)?,
        allowed_clock_skew: r.int(4)?,
        signing_algorithm: r.text(5)?,
        signing_key_sealed: r.opt_text(6)?,
        created_at: r.int(7)?,
        updated_at: r.int(8)?,
    })
}

/// A WHERE clause under construction, with its numbered parameters.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

impl Filter {
    /// Adds a parameter and returns its placeholder.
    fn param(&mut self, v: impl Into<SqlValue>) -> String {
        self.params.push(v.into());
        format!("${}", self.params.len())
    }

    fn push(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// `expr IN (…)`, with the values as parameters.
    fn in_list(&mut self, expr: &str, values: &[String]) -> String {
        let ph: Vec<String> = values.iter().map(|v| self.param(v.clone())).collect();
        format!("{expr} IN ({})", ph.join(", "))
    }

    /// Requires `expr IN (…)` for a non-empty list (an empty list adds nothing).
    fn any_of(&mut self, expr: &str, values: &[String]) {
        if !values.is_empty() {
            let clause = self.in_list(expr, values);
            self.push(clause);
        }
    }

    fn bound(&mut self, column: &str, op: &str, value: Option<i64>) {
        if let Some(v) = value {
            let ph = self.param(v);
            self.push(format!("{column} {op} {ph}"));
        }
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1 = 1".into()
        } else {
            self.clauses.join(" AND ")
        }
    }
}

/// `LIKE` pattern for a prefix, with the wildcards of the input escaped.
fn like_prefix(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 1);
    for c in input.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
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
    if let Some(text) = q.query.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let exact_a = f.param(text);
        let pattern = f.param(like_prefix(&text.to_lowercase()));
        let like = |col: &str| db.ci_prefix(col, &pattern);
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

fn session_filter(q: &SessionQuery) -> Filter {
    let mut f = Filter::default();
    if let Some(u) = &q.user_id {
        let ph = f.param(u.clone());
        f.push(format!("user_id = {ph}"));
    }
    if let Some(c) = &q.client_id {
        let ph = f.param(c.clone());
        f.push(format!("client_id = {ph}"));
    }
    if let Some(status) = &q.status {
        // An `active` row shows as expired once past its deadline or its idle limit.
        let now = f.param(q.now);
        let idle = f.param(q.idle_timeout_ms.map(|t| q.now - t).unwrap_or(i64::MIN));
        let live = format!("(expire_at > {now} AND last_active_at > {idle})");
        match status.as_str() {
            "active" => f.push(format!("status = 'active' AND {live}")),
            "expired" => f.push(format!("(status = 'expired' OR (status = 'active' AND NOT {live}))")),
            other => {
                let ph = f.param(other.to_owned());
                f.push(format!("status = {ph}"));
            }
        }
    }
    f
}

fn client_params(c: &ClientRow) -> Vec<SqlValue> {
    vec![
        c.id.clone().into(),
        c.token_digest.clone().into(),
        c.sign_in_id.clone().into(),
        c.sign_up_id.clone().into(),
        c.last_active_session_id.clone().into(),
        c.created_at.into(),
        c.updated_at.into(),
    ]
}

fn client_from(r: &Row) -> Result<ClientRow> {
    Ok(ClientRow {
        id: r.text(0)?,
        token_digest: r.text(1)?,
        sign_in_id: r.opt_text(2)?,
        sign_up_id: r.opt_text(3)?,
        last_active_session_id: r.opt_text(4)?,
        created_at: r.int(5)?,
        updated_at: r.int(6)?,
    })
}

fn session_params(s: &SessionRow) -> Vec<SqlValue> {
    vec![
        s.id.clone().into(),
        s.client_id.clone().into(),
        s.user_id.clone().into(),
        s.status.clone().into(),
        s.active_org_id.clone().into(),
        s.created_at.into(),
        s.updated_at.into(),
        s.last_active_at.into(),
        s.expire_at.into(),
        s.abandon_at.into(),
    ]
}

fn session_from(r: &Row) -> Result<SessionRow> {
    Ok(SessionRow {
        id: r.text(0)?,
        client_id: r.text(1)?,
        user_id: r.text(2)?,
        status: r.text(3)?,
        active_org_id: r.opt_text(4)?,
        created_at: r.int(5)?,
        updated_at: r.int(6)?,
        last_active_at: r.int(7)?,
        expire_at: r.int(8)?,
        abandon_at: r.int(9)?,
    })
}

fn sign_up_params(s: &SignUpRow) -> Vec<SqlValue> {
    let mut p = vec![
        s.id.clone().into(),
        s.client_id.clone().into(),
        s.status.clone().into(),
        s.email.clone().into(),
        s.email_taken.into(),
        s.email_verified.into(),
        s.username.clone().into(),
        s.first_name.clone().into(),
        s.last_name.clone().into(),
        s.password_hash.clone().into(),
        s.unsafe_metadata.clone().into(),
    ];
    p.extend(code_params(&s.code));
    p.extend([
        s.created_user_id.clone().into(),
        s.created_session_id.clone().into(),
        s.created_at.into(),
        s.updated_at.into(),
        s.abandon_at.into(),
        s.version.into(),
    ]);
    p
}

fn sign_up_from(r: &Row) -> Result<SignUpRow> {
    Ok(SignUpRow {
        id: r.text(0)?,
        client_id: r.text(1)?,
        status: r.text(2)?,
        email: r.opt_text(3)?,
        email_taken: r.bool(4)?,
        email_verified: r.bool(5)?,
        username: r.opt_text(6)?,
        first_name: r.opt_text(7)?,
        last_name: r.opt_text(8)?,
        password_hash: r.opt_text(9)?,
        unsafe_metadata: r.text(10)?,
        code: code_from(r, 11)?,
        created_user_id: r.opt_text(15)?,
        created_session_id: r.opt_text(16)?,
        created_at: r.int(17)?,
        updated_at: r.int(18)?,
        abandon_at: r.int(19)?,
        version: r.int(20)?,
    })
}

fn sign_in_params(s: &SignInRow) -> Vec<SqlValue> {
    let mut p = vec![
        s.id.clone().into(),
        s.client_id.clone().into(),
        s.status.clone().into(),
        s.identifier.clone().into(),
        s.user_id.clone().into(),
        s.email_address_id.clone().into(),
        s.first_factor_strategy.clone().into(),
        s.first_factor_status.clone().into(),
    ];
    p.extend(code_params(&s.code));
    p.extend([
        s.created_session_id.clone().into(),
        s.created_at.into(),
        s.updated_at.into(),
        s.abandon_at.into(),
        s.version.into(),
    ]);
    p
}

fn sign_in_from(r: &Row) -> Result<SignInRow> {
    Ok(SignInRow {
        id: r.text(0)?,
        client_id: r.text(1)?,
        status: r.text(2)?,
        identifier: r.opt_text(3)?,
        user_id: r.opt_text(4)?,
        email_address_id: r.opt_text(5)?,
        first_factor_strategy: r.opt_text(6)?,
        first_factor_status: r.opt_text(7)?,
        code: code_from(r, 8)?,
        created_session_id: r.opt_text(12)?,
        created_at: r.int(13)?,
        updated_at: r.int(14)?,
        abandon_at: r.int(15)?,
        version: r.int(16)?,
    })
}

fn key_params(k: &SigningKeyRow) -> Vec<SqlValue> {
    vec![
        k.kid.clone().into(),
        k.public_n.clone().into(),
        k.public_e.clone().into(),
        k.private_sealed.clone().into(),
        k.created_at.into(),
        k.activate_at.into(),
        k.revoked_at.into(),
    ]
}

fn key_from(r: &Row) -> Result<SigningKeyRow> {
    Ok(SigningKeyRow {
        kid: r.text(0)?,
        public_n: r.text(1)?,
        public_e: r.text(2)?,
        private_sealed: r.text(3)?,
        created_at: r.int(4)?,
        activate_at: r.int(5)?,
        revoked_at: r.opt_int(6)?,
    })
}

fn api_key_from(r: &Row) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.text(0)?,
        digest: r.text(1)?,
        label: r.text(2)?,
        created_at: r.int(3)?,
        revoked_at: r.opt_int(4)?,
    })
}

/// Appends the previous version for an optimistic update.
fn with_expected_version(mut params: Vec<SqlValue>, new_version: i64) -> Vec<SqlValue> {
    params.push((new_version - 1).into());
    params
}

pub(crate) fn one<T>(rows: Vec<Row>, f: impl Fn(&Row) -> Result<T>) -> Result<Option<T>> {
    rows.first().map(f).transpose()
}

pub(crate) fn all<T>(rows: &[Row], f: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

/// The generic store; `D` supplies connections and the dialect.
pub struct SqlStore<D> {
    pub(crate) db: std::sync::Arc<D>,
    /// Events every write transaction of this view writes (see [`Store::emitting`]).
    events: std::sync::Arc<[OutboxEvent]>,
    outbox_signal: std::sync::Arc<tokio::sync::Notify>,
}

impl<D: SqlDriver> SqlStore<D> {
    pub fn new(db: D) -> Self {
        Self { db: std::sync::Arc::new(db), events: std::sync::Arc::new([]), outbox_signal: Default::default() }
    }

    /// A write transaction; in a view with events, one that writes them at commit.
    pub(crate) async fn begin(&self) -> Result<Box<dyn SqlTx>> {
        let tx = self.db.begin().await?;
        if self.events.is_empty() {
            return Ok(tx);
        }
        Ok(Box::new(crate::sqlhooks::OutboxTx::new(tx, self.events.clone(), self.outbox_signal.clone())))
    }

    pub fn driver(&self) -> &D {
        &self.db
    }

    /// The plan of a user-list query, with `explain` the backend's prefix (`EXPLAIN QUERY PLAN`
    /// on SQLite, `EXPLAIN` on PostgreSQL): benchmarks show which index serves each filter.
    pub async fn explain_user_query(&self, explain: &str, q: &UserQuery) -> Result<Vec<String>> {
        let mut f = user_filter(self.db.as_ref(), q);
        let limit = f.param(q.limit);
        let offset = f.param(q.offset);
        let sql = select_sql(
            "users",
            USER_COLS,
            &format!("{} ORDER BY {} LIMIT {limit} OFFSET {offset}", f.sql(), user_order(q)),
        );
        let rows = self.db.read(&format!("{explain} {sql}"), &f.params).await?;
        Ok(rows
            .iter()
            .map(|r| {
                r.0.iter()
                    .filter_map(|c| match c {
                        crate::sql::Cell::Text(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect())
    }

    async fn write_one(&self, sql: &str, params: &[SqlValue]) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = tx.execute(sql, params).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// An optimistic update: exactly one row must match id and previous version.
    async fn write_versioned(&self, sql: &str, params: &[SqlValue]) -> Result<()> {
        match self.write_one(sql, params).await? {
            1 => Ok(()),
            _ => Err(StoreError::Stale),
        }
    }

    async fn load_users(&self, users: Vec<UserRow>) -> Result<Vec<UserRecord>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<SqlValue> = users.iter().map(|u| u.id.clone().into()).collect();
        let filter = format!("user_id IN ({}) ORDER BY created_at, id", placeholders(ids.len(), 1));
        let emails = all(&self.db.read(&select_sql("email_addresses", EMAIL_COLS, &filter), &ids).await?, email_from)?;
        let phones = all(&self.db.read(&select_sql("phone_numbers", PHONE_COLS, &filter), &ids).await?, phone_from)?;
        Ok(users
            .into_iter()
            .map(|user| UserRecord {
                emails: emails.iter().filter(|e| e.user_id == user.id).cloned().collect(),
                phones: phones.iter().filter(|p| p.user_id == user.id).cloned().collect(),
                user,
            })
            .collect())
    }
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

async fn tx_versioned(tx: &mut Box<dyn SqlTx>, sql: &str, params: &[SqlValue]) -> Result<()> {
    match tx.execute(sql, params).await? {
        1 => Ok(()),
        _ => Err(StoreError::Stale),
    }
}

#[async_trait]
impl<D: SqlDriver> Store for SqlStore<D> {
    fn backend(&self) -> &'static str {
        self.db.backend()
    }

    fn emitting(&self, events: Vec<OutboxEvent>) -> std::sync::Arc<dyn Store> {
        std::sync::Arc::new(SqlStore {
            db: self.db.clone(),
            events: events.into(),
            outbox_signal: self.outbox_signal.clone(),
        })
    }

    fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_signal.clone()
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        let rows = self.db.read("SELECT value FROM settings WHERE key = $1", &[key.into()]).await?;
        one(rows, |r| r.text(0))
    }

    async fn init_setting(&self, key: &str, value: &str) -> Result<String> {
        let mut tx = self.begin().await?;
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[key.into(), value.into()],
        )
        .await?;
        let rows = tx.query("SELECT value FROM settings WHERE key = $1", &[key.into()]).await?;
        tx.commit().await?;
        one(rows, |r| r.text(0))?.ok_or(StoreError::NotFound)
    }

    async fn insert_api_key(&self, k: &ApiKeyRow) -> Result<()> {
        let params = vec![
            k.id.clone().into(),
            k.digest.clone().into(),
            k.label.clone().into(),
            k.created_at.into(),
            k.revoked_at.into(),
        ];
        self.write_one(&insert_sql("api_keys", API_KEY_COLS), &params).await.map(|_| ())
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        let rows = self.db.read(&select_sql("api_keys", API_KEY_COLS, "1 = 1 ORDER BY created_at, id"), &[]).await?;
        all(&rows, api_key_from)
    }

    async fn api_key_by_digest(&self, digest: &str) -> Result<Option<ApiKeyRow>> {
        let rows = self.db.read(&select_sql("api_keys", API_KEY_COLS, "digest = $1"), &[digest.into()]).await?;
        one(rows, api_key_from)
    }

    async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool> {
        let n = self
            .write_one(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[id.into(), now.into()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        let rows = self.db.read(&select_sql("signing_keys", KEY_COLS, "1 = 1 ORDER BY activate_at, kid"), &[]).await?;
        all(&rows, key_from)
    }

    async fn insert_signing_key(&self, k: &SigningKeyRow) -> Result<()> {
        self.write_one(&insert_sql("signing_keys", KEY_COLS), &key_params(k)).await.map(|_| ())
    }

    async fn revoke_signing_key(&self, kid: &str, now: i64) -> Result<bool> {
        let n = self
            .write_one(
                "UPDATE signing_keys SET revoked_at = $2 WHERE kid = $1 AND revoked_at IS NULL",
                &[kid.into(), now.into()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<()> {
        self.write_one("DELETE FROM signing_keys WHERE kid = $1", &[kid.into()]).await.map(|_| ())
    }

    async fn insert_client(&self, c: &ClientRow) -> Result<()> {
        self.write_one(&insert_sql("clients", CLIENT_COLS), &client_params(c)).await.map(|_| ())
    }

    async fn get_client(&self, id: &str) -> Result<Option<ClientRow>> {
        one(self.db.read(&select_sql("clients", CLIENT_COLS, "id = $1"), &[id.into()]).await?, client_from)
    }

    async fn client_by_token_digest(&self, digest: &str) -> Result<Option<ClientRow>> {
        one(
            self.db.read(&select_sql("clients", CLIENT_COLS, "token_digest = $1"), &[digest.into()]).await?,
            client_from,
        )
    }

    async fn update_client(&self, c: &ClientRow) -> Result<()> {
        self.write_one(&update_sql("clients", CLIENT_COLS, false), &client_params(c)).await.map(|_| ())
    }

    async fn insert_sign_up(&self, s: &SignUpRow) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.execute(&insert_sql("sign_ups", SIGN_UP_COLS), &sign_up_params(s)).await?;
        tx.execute(
            "UPDATE clients SET sign_up_id = $2 WHERE id = $1",
            &[s.client_id.clone().into(), s.id.clone().into()],
        )
        .await?;
        tx.commit().await
    }

    async fn get_sign_up(&self, id: &str) -> Result<Option<SignUpRow>> {
        one(self.db.read(&select_sql("sign_ups", SIGN_UP_COLS, "id = $1"), &[id.into()]).await?, sign_up_from)
    }

    async fn update_sign_up(&self, s: &SignUpRow) -> Result<()> {
        let params = with_expected_version(sign_up_params(s), s.version);
        self.write_versioned(&update_sql("sign_ups", SIGN_UP_COLS, true), &params).await
    }

    async fn complete_sign_up(&self, done: &CompleteSignUp) -> Result<()> {
        let mut tx = self.begin().await?;
        let params = with_expected_version(sign_up_params(&done.sign_up), done.sign_up.version);
        tx_versioned(&mut tx, &update_sql("sign_ups", SIGN_UP_COLS, true), &params).await?;
        tx.execute(&insert_sql("users", USER_COLS), &user_params(&done.user)).await?;
        tx.execute(&insert_sql("email_addresses", EMAIL_COLS), &email_params(&done.email)).await?;
        tx.execute(&insert_sql("sessions", SESSION_COLS), &session_params(&done.session)).await?;
        hand_session_to_client(&mut tx, &done.session, &done.client_token_digest).await?;
        tx.commit().await
    }

    async fn insert_sign_in(&self, s: &SignInRow) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.execute(&insert_sql("sign_ins", SIGN_IN_COLS), &sign_in_params(s)).await?;
        tx.execute(
            "UPDATE clients SET sign_in_id = $2 WHERE id = $1",
            &[s.client_id.clone().into(), s.id.clone().into()],
        )
        .await?;
        tx.commit().await
    }

    async fn get_sign_in(&self, id: &str) -> Result<Option<SignInRow>> {
        one(self.db.read(&select_sql("sign_ins", SIGN_IN_COLS, "id = $1"), &[id.into()]).await?, sign_in_from)
    }

    async fn update_sign_in(&self, s: &SignInRow) -> Result<()> {
        let params = with_expected_version(sign_in_params(s), s.version);
        self.write_versioned(&update_sql("sign_ins", SIGN_IN_COLS, true), &params).await
    }

    async fn complete_sign_in(&self, done: &CompleteSignIn) -> Result<()> {
        let mut tx = self.begin().await?;
        let params = with_expected_version(sign_in_params(&done.sign_in), done.sign_in.version);
        tx_versioned(&mut tx, &update_sql("sign_ins", SIGN_IN_COLS, true), &params).await?;
        tx.execute(&insert_sql("sessions", SESSION_COLS), &session_params(&done.session)).await?;
        hand_session_to_client(&mut tx, &done.session, &done.client_token_digest).await?;
        tx.execute(
            "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_sign_in_at = $2, last_active_at = $2, \
             updated_at = $2, version = version + 1 WHERE id = $1",
            &[done.user_id.clone().into(), done.now.into()],
        )
        .await?;
        if let Some(hash) = &done.rehashed_password {
            tx.execute(
                "UPDATE users SET password_hash = $2 WHERE id = $1",
                &[done.user_id.clone().into(), hash.into()],
            )
            .await?;
        }
        tx.commit().await
    }

    async fn create_user(&self, u: &UserRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.execute(&insert_sql("users", USER_COLS), &user_params(&u.user)).await?;
        for e in &u.emails {
            tx.execute(&insert_sql("email_addresses", EMAIL_COLS), &email_params(e)).await?;
        }
        for p in &u.phones {
            tx.execute(&insert_sql("phone_numbers", PHONE_COLS), &phone_params(p)).await?;
        }
        tx.commit().await
    }

    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>> {
        let rows = self.db.read(&select_sql("users", USER_COLS, "id = $1"), &[id.into()]).await?;
        let Some(user) = one(rows, user_from)? else {
            return Ok(None);
        };
        Ok(self.load_users(vec![user]).await?.pop())
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
        one(self.db.read(&select_sql("users", USER_COLS, "id = $1"), &[id.into()]).await?, user_from)
    }

    async fn user_id_by_username(&self, username: &str) -> Result<Option<String>> {
        one(self.db.read("SELECT id FROM users WHERE username = $1", &[username.into()]).await?, |r| r.text(0))
    }

    async fn update_user(&self, u: &UserRow) -> Result<()> {
        let params = with_expected_version(user_params(u), u.version);
        self.write_versioned(&update_sql("users", USER_COLS, true), &params).await
    }

    async fn update_user_revoking_sessions(&self, u: &UserRow, now: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        let params = with_expected_version(user_params(u), u.version);
        tx_versioned(&mut tx, &update_sql("users", USER_COLS, true), &params).await?;
        let n = tx
            .execute(
                "UPDATE sessions SET status = 'revoked', updated_at = $2 WHERE user_id = $1 AND status = 'active'",
                &[u.id.clone().into(), now.into()],
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn record_failed_attempt(&self, f: &FailedAttempt) -> Result<FailedAttemptCounts> {
        let mut tx = self.begin().await?;
        let params = with_expected_version(sign_in_params(&f.sign_in), f.sign_in.version);
        tx_versioned(&mut tx, &update_sql("sign_ins", SIGN_IN_COLS, true), &params).await?;
        let mut counters = Vec::with_capacity(f.counters.len());
        for (key, window_ms) in &f.counters {
            counters.push(crate::sqlthrottle::bump_in(&mut tx, key, *window_ms, f.now).await?);
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

    async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<UserRecord>> {
        let rows = self
            .db
            .read(
                &select_sql("users", USER_COLS, "1 = 1 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"),
                &[limit.into(), offset.into()],
            )
            .await?;
        self.load_users(all(&rows, user_from)?).await
    }

    async fn count_users(&self) -> Result<i64> {
        one(self.db.read("SELECT COUNT(*) FROM users", &[]).await?, |r| r.int(0)).map(|n| n.unwrap_or(0))
    }

    async fn delete_user(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        // The personal space goes with its owner, in the same transaction.
        crate::sqlsync::delete_space(&mut tx, id).await?;
        crate::sqlsync::delete_user_clients(&mut tx, id).await?;
        let n = tx.execute("DELETE FROM users WHERE id = $1", &[id.into()]).await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn insert_email(&self, e: &EmailRow) -> Result<()> {
        self.write_one(&insert_sql("email_addresses", EMAIL_COLS), &email_params(e)).await.map(|_| ())
    }

    async fn update_email(&self, e: &EmailRow) -> Result<()> {
        let params = with_expected_version(email_params(e), e.version);
        self.write_versioned(&update_sql("email_addresses", EMAIL_COLS, true), &params).await
    }

    async fn delete_email(&self, id: &str) -> Result<()> {
        self.write_one("DELETE FROM email_addresses WHERE id = $1", &[id.into()]).await.map(|_| ())
    }

    async fn insert_phone(&self, p: &PhoneRow) -> Result<()> {
        self.write_one(&insert_sql("phone_numbers", PHONE_COLS), &phone_params(p)).await.map(|_| ())
    }

    async fn insert_session(&self, s: &SessionRow) -> Result<()> {
        self.write_one(&insert_sql("sessions", SESSION_COLS), &session_params(s)).await.map(|_| ())
    }

    async fn get_session(&self, id: &str) -> Result<Option<SessionRow>> {
        one(self.db.read(&select_sql("sessions", SESSION_COLS, "id = $1"), &[id.into()]).await?, session_from)
    }

    async fn update_session(&self, s: &SessionRow) -> Result<()> {
        self.write_one(&update_sql("sessions", SESSION_COLS, false), &session_params(s)).await.map(|_| ())
    }

    async fn sessions_for_client(&self, client_id: &str) -> Result<Vec<SessionRow>> {
        let rows = self
            .db
            .read(&select_sql("sessions", SESSION_COLS, "client_id = $1 ORDER BY created_at, id"), &[client_id.into()])
            .await?;
        all(&rows, session_from)
    }

    async fn sessions_for_user(&self, user_id: &str) -> Result<Vec<SessionRow>> {
        let rows = self
            .db
            .read(&select_sql("sessions", SESSION_COLS, "user_id = $1 ORDER BY created_at DESC, id"), &[user_id.into()])
            .await?;
        all(&rows, session_from)
    }

    async fn end_client_sessions(&self, client_id: &str, status: &str, now: i64) -> Result<u64> {
        self.write_one(
            "UPDATE sessions SET status = $2, updated_at = $3 WHERE client_id = $1 AND status = 'active'",
            &[client_id.into(), status.into(), now.into()],
        )
        .await
    }

    async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<u64> {
        self.write_one(
            "UPDATE sessions SET status = 'revoked', updated_at = $3 WHERE user_id = $1 AND status = 'active' \
             AND id <> $2",
            &[user_id.into(), keep.unwrap_or("").into(), now.into()],
        )
        .await
    }

    async fn query_users(&self, q: &UserQuery) -> Result<Vec<UserRecord>> {
        let mut f = user_filter(self.db.as_ref(), q);
        let limit = f.param(q.limit);
        let offset = f.param(q.offset);
        let sql = select_sql(
            "users",
            USER_COLS,
            &format!("{} ORDER BY {} LIMIT {limit} OFFSET {offset}", f.sql(), user_order(q)),
        );
        let rows = self.db.read(&sql, &f.params).await?;
        self.load_users(all(&rows, user_from)?).await
    }

    async fn count_users_matching(&self, q: &UserQuery) -> Result<i64> {
        let f = user_filter(self.db.as_ref(), q);
        let rows = self.db.read(&format!("SELECT COUNT(*) FROM users WHERE {}", f.sql()), &f.params).await?;
        one(rows, |r| r.int(0)).map(|n| n.unwrap_or(0))
    }

    async fn user_id_by_external_id(&self, external_id: &str) -> Result<Option<String>> {
        one(self.db.read("SELECT id FROM users WHERE external_id = $1", &[external_id.into()]).await?, |r| r.text(0))
    }

    async fn get_email(&self, id: &str) -> Result<Option<EmailRow>> {
        one(self.db.read(&select_sql("email_addresses", EMAIL_COLS, "id = $1"), &[id.into()]).await?, email_from)
    }

    async fn get_phone(&self, id: &str) -> Result<Option<PhoneRow>> {
        one(self.db.read(&select_sql("phone_numbers", PHONE_COLS, "id = $1"), &[id.into()]).await?, phone_from)
    }

    async fn update_phone(&self, p: &PhoneRow) -> Result<()> {
        self.write_one(&update_sql("phone_numbers", PHONE_COLS, false), &phone_params(p)).await.map(|_| ())
    }

    async fn delete_phone(&self, id: &str) -> Result<()> {
        self.write_one("DELETE FROM phone_numbers WHERE id = $1", &[id.into()]).await.map(|_| ())
    }

    async fn query_sessions(&self, q: &SessionQuery) -> Result<(Vec<SessionRow>, i64)> {
        let mut f = session_filter(q);
        let count_sql = format!("SELECT COUNT(*) FROM sessions WHERE {}", f.sql());
        let total = one(self.db.read(&count_sql, &f.params).await?, |r| r.int(0))?.unwrap_or(0);
        let limit = f.param(q.limit);
        let offset = f.param(q.offset);
        let sql = select_sql(
            "sessions",
            SESSION_COLS,
            &format!("{} ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}", f.sql()),
        );
        Ok((all(&self.db.read(&sql, &f.params).await?, session_from)?, total))
    }

    async fn insert_invitation(&self, i: &InvitationRow) -> Result<()> {
        self.write_one(&insert_sql("invitations", INVITATION_COLS), &invitation_params(i)).await.map(|_| ())
    }

    async fn get_invitation(&self, id: &str) -> Result<Option<InvitationRow>> {
        one(self.db.read(&select_sql("invitations", INVITATION_COLS, "id = $1"), &[id.into()]).await?, invitation_from)
    }

    async fn update_invitation(&self, i: &InvitationRow) -> Result<()> {
        self.write_one(&update_sql("invitations", INVITATION_COLS, false), &invitation_params(i)).await.map(|_| ())
    }

    async fn delete_invitation(&self, id: &str) -> Result<bool> {
        Ok(self.write_one("DELETE FROM invitations WHERE id = $1", &[id.into()]).await? == 1)
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
            let pattern = f.param(like_prefix(&q.to_lowercase()));
            f.push(self.db.ci_prefix("email", &pattern));
        }
        let count_sql = format!("SELECT COUNT(*) FROM invitations WHERE {}", f.sql());
        let total = one(self.db.read(&count_sql, &f.params).await?, |r| r.int(0))?.unwrap_or(0);
        let limit = f.param(limit);
        let offset = f.param(offset);
        let sql = select_sql(
            "invitations",
            INVITATION_COLS,
            &format!("{} ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}", f.sql()),
        );
        Ok((all(&self.db.read(&sql, &f.params).await?, invitation_from)?, total))
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
        let rows =
            self.db.read(&select_sql("invitations", INVITATION_COLS, filter), &[email.into(), now.into()]).await?;
        all(&rows, invitation_from)
    }

    async fn insert_sign_in_token(&self, t: &SignInTokenRow) -> Result<()> {
        self.write_one(&insert_sql("sign_in_tokens", SIGN_IN_TOKEN_COLS), &sign_in_token_params(t)).await.map(|_| ())
    }

    async fn get_sign_in_token(&self, id: &str) -> Result<Option<SignInTokenRow>> {
        let rows = self.db.read(&select_sql("sign_in_tokens", SIGN_IN_TOKEN_COLS, "id = $1"), &[id.into()]).await?;
        one(rows, sign_in_token_from)
    }

    async fn sign_in_token_by_digest(&self, digest: &str) -> Result<Option<SignInTokenRow>> {
        let rows = self
            .db
            .read(&select_sql("sign_in_tokens", SIGN_IN_TOKEN_COLS, "token_digest = $1"), &[digest.into()])
            .await?;
        one(rows, sign_in_token_from)
    }

    async fn transition_sign_in_token(&self, t: &SignInTokenRow, from: &str) -> Result<bool> {
        let n = self
            .write_one(
                "UPDATE sign_in_tokens SET status = $2, updated_at = $3 WHERE id = $1 AND status = $4",
                &[t.id.clone().into(), t.status.clone().into(), t.updated_at.into(), from.into()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn insert_jwt_template(&self, t: &JwtTemplateRow) -> Result<()> {
        self.write_one(&insert_sql("jwt_templates", TEMPLATE_COLS), &template_params(t)).await.map(|_| ())
    }

    async fn get_jwt_template(&self, id: &str) -> Result<Option<JwtTemplateRow>> {
        one(self.db.read(&select_sql("jwt_templates", TEMPLATE_COLS, "id = $1"), &[id.into()]).await?, template_from)
    }

    async fn jwt_template_by_name(&self, name: &str) -> Result<Option<JwtTemplateRow>> {
        let rows = self.db.read(&select_sql("jwt_templates", TEMPLATE_COLS, "name = $1"), &[name.into()]).await?;
        one(rows, template_from)
    }

    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplateRow>> {
        let rows =
            self.db.read(&select_sql("jwt_templates", TEMPLATE_COLS, "1 = 1 ORDER BY created_at, id"), &[]).await?;
        all(&rows, template_from)
    }

    async fn update_jwt_template(&self, t: &JwtTemplateRow) -> Result<()> {
        self.write_one(&update_sql("jwt_templates", TEMPLATE_COLS, false), &template_params(t)).await.map(|_| ())
    }

    async fn delete_jwt_template(&self, id: &str) -> Result<bool> {
        Ok(self.write_one("DELETE FROM jwt_templates WHERE id = $1", &[id.into()]).await? == 1)
    }

    async fn upsert_org_role(&self, role: &OrgRoleRow) -> Result<()> {
        let mut tx = self.begin().await?;
        if tx.execute(&update_sql("org_roles", ROLE_COLS, false), &role_params(role)).await? == 0 {
            tx.execute(&insert_sql("org_roles", ROLE_COLS), &role_params(role)).await?;
        }
        tx.commit().await
    }

    async fn list_org_roles(&self) -> Result<Vec<OrgRoleRow>> {
        all(&self.db.read(&select_sql("org_roles", ROLE_COLS, "1 = 1 ORDER BY created_at, key"), &[]).await?, role_from)
    }

    async fn create_organization(&self, org: &OrganizationRow, first: Option<&MembershipRow>) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.execute(&insert_sql("organizations", ORG_COLS), &org_params(org)).await?;
        if let Some(m) = first {
            tx.execute(&insert_sql("organization_memberships", MEMBERSHIP_COLS), &membership_params(m)).await?;
        }
        tx.commit().await
    }

    async fn get_organization(&self, id: &str) -> Result<Option<OrganizationRow>> {
        one(self.db.read(&select_sql("organizations", ORG_COLS, "id = $1"), &[id.into()]).await?, org_from)
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<OrganizationRow>> {
        one(self.db.read(&select_sql("organizations", ORG_COLS, "slug = $1"), &[slug.into()]).await?, org_from)
    }

    async fn update_organization(&self, org: &OrganizationRow) -> Result<()> {
        match self.write_one(&update_sql("organizations", ORG_COLS, false), &org_params(org)).await? {
            1 => Ok(()),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn delete_organization(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        // Explicit, so the rule holds even where foreign keys are not enforced.
        tx.execute("DELETE FROM organization_invitations WHERE organization_id = $1", &[id.into()]).await?;
        tx.execute("DELETE FROM organization_memberships WHERE organization_id = $1", &[id.into()]).await?;
        crate::sqlsync::delete_space(&mut tx, id).await?;
        let n = tx.execute("DELETE FROM organizations WHERE id = $1", &[id.into()]).await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn list_organizations(&self, q: &OrgQuery) -> Result<(Vec<OrganizationRow>, i64)> {
        let mut f = Filter::default();
        f.any_of("id", &q.ids);
        if let Some(creator) = &q.created_by {
            let ph = f.param(creator.clone());
            f.push(format!("created_by = {ph}"));
        }
        if let Some(text) = q.query.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let exact = f.param(text);
            let pattern = f.param(like_prefix(&text.to_lowercase()));
            f.push(format!(
                "(id = {exact} OR {} OR {})",
                self.db.ci_prefix("name", &pattern),
                self.db.ci_prefix("slug", &pattern)
            ));
        }
        let total = one(
            self.db.read(&format!("SELECT COUNT(*) FROM organizations WHERE {}", f.sql()), &f.params).await?,
            |r| r.int(0),
        )?
        .unwrap_or(0);
        let dir = if q.descending { "DESC" } else { "ASC" };
        let order = match q.order_by {
            OrgOrder::CreatedAt => format!("created_at {dir}, id {dir}"),
            OrgOrder::Name => format!("lower(name) {dir}, id {dir}"),
            OrgOrder::MembersCount => format!(
                "(SELECT COUNT(*) FROM organization_memberships m WHERE m.organization_id = organizations.id) {dir}, \
                 created_at {dir}, id {dir}"
            ),
        };
        let limit = f.param(q.limit);
        let offset = f.param(q.offset);
        let sql = select_sql(
            "organizations",
            ORG_COLS,
            &format!("{} ORDER BY {order} LIMIT {limit} OFFSET {offset}", f.sql()),
        );
        Ok((all(&self.db.read(&sql, &f.params).await?, org_from)?, total))
    }

    async fn org_counts(&self, ids: &[String], now: i64) -> Result<Vec<(String, OrgCounts)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut f = Filter::default();
        let members_in = f.in_list("organization_id", ids);
        let members = self
            .db
            .read(
                &format!(
                    "SELECT organization_id, COUNT(*) FROM organization_memberships WHERE {members_in} \
                     GROUP BY organization_id"
                ),
                &f.params,
            )
            .await?;
        let mut g = Filter::default();
        let invites_in = g.in_list("organization_id", ids);
        let now = g.param(now);
        let invites = self
            .db
            .read(
                &format!(
                    "SELECT organization_id, COUNT(*) FROM organization_invitations WHERE {invites_in} \
                     AND status = 'pending' AND expires_at > {now} GROUP BY organization_id"
                ),
                &g.params,
            )
            .await?;
        let pairs = |rows: &[Row]| -> Result<Vec<(String, i64)>> { all(rows, |r| Ok((r.text(0)?, r.int(1)?))) };
        let (members, invites) = (pairs(&members)?, pairs(&invites)?);
        let count_of = |list: &[(String, i64)], id: &str| list.iter().find(|(o, _)| o == id).map_or(0, |(_, n)| *n);
        Ok(ids
            .iter()
            .map(|id| {
                (id.clone(), OrgCounts { members: count_of(&members, id), pending_invitations: count_of(&invites, id) })
            })
            .collect())
    }

    async fn organizations_of_user(&self, user_id: &str) -> Result<Vec<(MembershipRow, OrganizationRow)>> {
        let memberships = self.memberships_of_user(user_id).await?;
        if memberships.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = memberships.iter().map(|m| m.organization_id.clone()).collect();
        let mut f = Filter::default();
        let filter = f.in_list("id", &ids);
        let orgs = all(&self.db.read(&select_sql("organizations", ORG_COLS, &filter), &f.params).await?, org_from)?;
        Ok(memberships
            .into_iter()
            .filter_map(|m| {
                let org = orgs.iter().find(|o| o.id == m.organization_id)?.clone();
                Some((m, org))
            })
            .collect())
    }

    async fn count_memberships(&self, organization_id: &str) -> Result<i64> {
        let rows = self
            .db
            .read("SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1", &[organization_id.into()])
            .await?;
        Ok(one(rows, |r| r.int(0))?.unwrap_or(0))
    }

    async fn insert_membership(&self, m: &MembershipRow, max_allowed: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        if !lock_organization(&mut tx, &m.organization_id).await? {
            return Err(StoreError::NotFound);
        }
        check_membership_limit(&mut tx, &m.organization_id, max_allowed).await?;
        tx.execute(&insert_sql("organization_memberships", MEMBERSHIP_COLS), &membership_params(m)).await?;
        tx.commit().await
    }

    async fn get_membership(&self, organization_id: &str, user_id: &str) -> Result<Option<MembershipRow>> {
        let rows = self
            .db
            .read(
                &select_sql("organization_memberships", MEMBERSHIP_COLS, "organization_id = $1 AND user_id = $2"),
                &[organization_id.into(), user_id.into()],
            )
            .await?;
        one(rows, membership_from)
    }

    async fn list_memberships(&self, q: &MembershipQuery) -> Result<(Vec<MembershipRow>, i64)> {
        let mut f = Filter::default();
        if let Some(org) = &q.organization_id {
            let ph = f.param(org.clone());
            f.push(format!("organization_id = {ph}"));
        }
        f.any_of("user_id", &q.user_ids);
        f.any_of("role", &q.roles);
        let total = one(
            self.db
                .read(&format!("SELECT COUNT(*) FROM organization_memberships WHERE {}", f.sql()), &f.params)
                .await?,
            |r| r.int(0),
        )?
        .unwrap_or(0);
        let dir = if q.descending { "DESC" } else { "ASC" };
        let limit = f.param(q.limit);
        let offset = f.param(q.offset);
        let sql = select_sql(
            "organization_memberships",
            MEMBERSHIP_COLS,
            &format!("{} ORDER BY created_at {dir}, id {dir} LIMIT {limit} OFFSET {offset}", f.sql()),
        );
        Ok((all(&self.db.read(&sql, &f.params).await?, membership_from)?, total))
    }

    async fn memberships_of_user(&self, user_id: &str) -> Result<Vec<MembershipRow>> {
        let rows = self
            .db
            .read(
                &select_sql("organization_memberships", MEMBERSHIP_COLS, "user_id = $1 ORDER BY created_at, id"),
                &[user_id.into()],
            )
            .await?;
        all(&rows, membership_from)
    }

    async fn update_membership(&self, m: &MembershipRow, admin_role: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        lock_organization(&mut tx, &m.organization_id).await?;
        if tx.execute(&update_sql("organization_memberships", MEMBERSHIP_COLS, false), &membership_params(m)).await?
            != 1
        {
            return Err(StoreError::NotFound);
        }
        let admins = count_in_tx(
            &mut tx,
            "SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1 AND role = $2",
            &[m.organization_id.clone().into(), admin_role.into()],
        )
        .await?;
        if admins == 0 {
            return Err(StoreError::Conflict("last_admin".into()));
        }
        tx.commit().await
    }

    async fn delete_membership(&self, organization_id: &str, user_id: &str, admin_role: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        lock_organization(&mut tx, organization_id).await?;
        let n = tx
            .execute(
                "DELETE FROM organization_memberships WHERE organization_id = $1 AND user_id = $2",
                &[organization_id.into(), user_id.into()],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        let left = count_in_tx(
            &mut tx,
            "SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1",
            &[organization_id.into()],
        )
        .await?;
        let admins = count_in_tx(
            &mut tx,
            "SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1 AND role = $2",
            &[organization_id.into(), admin_role.into()],
        )
        .await?;
        // The last member may leave (the organization is then empty); the last admin of others may not.
        if left > 0 && admins == 0 {
            return Err(StoreError::Conflict("last_admin".into()));
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_org_invitation(&self, i: &OrgInvitationRow) -> Result<()> {
        self.write_one(&insert_sql("organization_invitations", ORG_INVITATION_COLS), &org_invitation_params(i))
            .await
            .map(|_| ())
    }

    async fn get_org_invitation(&self, id: &str) -> Result<Option<OrgInvitationRow>> {
        let rows =
            self.db.read(&select_sql("organization_invitations", ORG_INVITATION_COLS, "id = $1"), &[id.into()]).await?;
        one(rows, org_invitation_from)
    }

    async fn update_org_invitation(&self, i: &OrgInvitationRow) -> Result<()> {
        self.write_one(&update_sql("organization_invitations", ORG_INVITATION_COLS, false), &org_invitation_params(i))
            .await
            .map(|_| ())
    }

    async fn list_org_invitations(
        &self,
        organization_id: &str,
        statuses: &[String],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<OrgInvitationRow>, i64)> {
        let mut f = Filter::default();
        let org = f.param(organization_id);
        f.push(format!("organization_id = {org}"));
        f.any_of("status", statuses);
        let total = one(
            self.db
                .read(&format!("SELECT COUNT(*) FROM organization_invitations WHERE {}", f.sql()), &f.params)
                .await?,
            |r| r.int(0),
        )?
        .unwrap_or(0);
        let limit = f.param(limit);
        let offset = f.param(offset);
        let sql = select_sql(
            "organization_invitations",
            ORG_INVITATION_COLS,
            &format!("{} ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}", f.sql()),
        );
        Ok((all(&self.db.read(&sql, &f.params).await?, org_invitation_from)?, total))
    }

    async fn pending_org_invitations_for(&self, email: &str) -> Result<Vec<OrgInvitationRow>> {
        let rows = self
            .db
            .read(
                &select_sql(
                    "organization_invitations",
                    ORG_INVITATION_COLS,
                    "email = $1 AND status = 'pending' ORDER BY created_at, id",
                ),
                &[email.into()],
            )
            .await?;
        all(&rows, org_invitation_from)
    }

    async fn accept_org_invitation(
        &self,
        invitation: &OrgInvitationRow,
        m: &MembershipRow,
        max_allowed: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        if !lock_organization(&mut tx, &invitation.organization_id).await? {
            return Err(StoreError::NotFound);
        }
        let accepted = tx
            .execute(
                "UPDATE organization_invitations SET status = 'accepted', updated_at = $2 \
                 WHERE id = $1 AND status = 'pending'",
                &[invitation.id.clone().into(), m.updated_at.into()],
            )
            .await?;
        if accepted == 0 {
            return Ok(false);
        }
        let already = count_in_tx(
            &mut tx,
            "SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1 AND user_id = $2",
            &[m.organization_id.clone().into(), m.user_id.clone().into()],
        )
        .await?;
        if already == 0 {
            check_membership_limit(&mut tx, &m.organization_id, max_allowed).await?;
            tx.execute(&insert_sql("organization_memberships", MEMBERSHIP_COLS), &membership_params(m)).await?;
        }
        tx.commit().await?;
        Ok(true)
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

    async fn prune_abandoned(&self, now: i64, idle_before: i64) -> Result<u64> {
        const BATCH: i64 = 1000;
        let statements = [
            ("DELETE FROM sign_ins WHERE id IN (SELECT id FROM sign_ins WHERE abandon_at < $1 LIMIT $2)", now),
            ("DELETE FROM sign_ups WHERE id IN (SELECT id FROM sign_ups WHERE abandon_at < $1 LIMIT $2)", now),
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

    async fn prune_handshake_nonces(&self, now: i64) -> Result<u64> {
        self.write_one("DELETE FROM handshake_nonces WHERE expires_at <= $1", &[now.into()]).await
    }
}
