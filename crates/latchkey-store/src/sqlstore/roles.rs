//! The instance's organization roles and permissions (docs/organization-roles.md). Every write
//! first locks one row (`org_roles_lock` in `settings`, migration 0019), so changes and seeding
//! happen one at a time on PostgreSQL as on SQLite, and checks made inside the transaction hold.

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::{count_in, from_row, insert_in, select_sql, update_in};
use crate::error::{Result, StoreError};
use crate::records::*;
use crate::sql::{SqlDriver, SqlTx};
use crate::store::RoleStore;

record!(OrgRoleRow in "org_roles" { key, name, description, permissions, created_at, updated_at, id });
record!(OrgPermissionRow in "org_permissions" { id, key, name, description, kind, created_at, updated_at });

/// The setting that says roles are managed at run time.
const MANAGED: &str = "org_roles_managed_at_run_time";

/// Takes the lock every change of roles takes first.
async fn lock_roles(tx: &mut Box<dyn SqlTx>) -> Result<()> {
    tx.execute("UPDATE settings SET value = value WHERE key = 'org_roles_lock'", &[]).await?;
    Ok(())
}

async fn managed_in(tx: &mut Box<dyn SqlTx>) -> Result<bool> {
    Ok(count_in(tx, "SELECT COUNT(*) FROM settings WHERE key = $1", &[MANAGED.into()]).await? > 0)
}

/// `Conflict("role_key_exists")` when a role has this key; `Conflict("role_key_held")` when
/// members or pending invitations hold it still (a role removed earlier): a new role with it
/// would hand them its permissions unasked.
async fn key_free(tx: &mut Box<dyn SqlTx>, key: &str) -> Result<()> {
    if count_in(tx, "SELECT COUNT(*) FROM org_roles WHERE key = $1", &[key.into()]).await? > 0 {
        return Err(StoreError::Conflict("role_key_exists".into()));
    }
    if holders(tx, key).await? > 0 {
        return Err(StoreError::Conflict("role_key_held".into()));
    }
    Ok(())
}

/// Members and pending invitations holding the role key.
async fn holders(tx: &mut Box<dyn SqlTx>, key: &str) -> Result<i64> {
    count_in(
        tx,
        "SELECT (SELECT COUNT(*) FROM organization_memberships WHERE role = $1) \
         + (SELECT COUNT(*) FROM organization_invitations WHERE role = $1 AND status = 'pending')",
        &[key.into()],
    )
    .await
}

/// `Stale` unless every row the change was computed from is stored as it was read.
async fn unchanged_since_read(tx: &mut Box<dyn SqlTx>, change: &RoleChange) -> Result<()> {
    for read in &change.read_roles {
        let rows = tx.query(&select_sql::<OrgRoleRow>("key = $1"), &[read.key.as_str().into()]).await?;
        let now: Option<OrgRoleRow> = rows.first().map(from_row).transpose()?;
        if now.as_ref() != Some(read) {
            return Err(StoreError::Stale);
        }
    }
    for read in &change.read_permissions {
        let rows = tx.query(&select_sql::<OrgPermissionRow>("id = $1"), &[read.id.as_str().into()]).await?;
        let now: Option<OrgPermissionRow> = rows.first().map(from_row).transpose()?;
        if now.as_ref() != Some(read) {
            return Err(StoreError::Stale);
        }
    }
    Ok(())
}

/// Writes a row over the stored one with its key; `Stale` when there is none.
async fn overwrite<R: super::shared::Record>(tx: &mut Box<dyn SqlTx>, row: &R) -> Result<()> {
    match update_in(tx, row).await? {
        1 => Ok(()),
        _ => Err(StoreError::Stale),
    }
}

#[async_trait]
impl<D: SqlDriver> RoleStore for SqlStore<D> {
    async fn seed_roles(&self, roles: &[OrgRoleRow], removed: &[String]) -> Result<bool> {
        let mut tx = self.begin().await?;
        lock_roles(&mut tx).await?;
        if managed_in(&mut tx).await? {
            return Ok(false);
        }
        for role in roles {
            if update_in(&mut tx, role).await? == 0 {
                insert_in(&mut tx, role).await?;
            }
        }
        for key in removed {
            tx.execute("DELETE FROM org_roles WHERE key = $1", &[key.as_str().into()]).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn list_org_roles(&self) -> Result<Vec<OrgRoleRow>> {
        self.find_all("1 = 1 ORDER BY created_at, key", &[]).await
    }

    async fn seed_org_permission(&self, permission: &OrgPermissionRow) -> Result<bool> {
        let mut tx = self.begin().await?;
        lock_roles(&mut tx).await?;
        let taken =
            count_in(&mut tx, "SELECT COUNT(*) FROM org_permissions WHERE key = $1", &[permission.key.as_str().into()])
                .await?;
        if taken == 0 {
            insert_in(&mut tx, permission).await?;
        }
        tx.commit().await?;
        Ok(taken == 0)
    }

    async fn list_org_permissions(&self) -> Result<Vec<OrgPermissionRow>> {
        self.find_all("1 = 1 ORDER BY created_at, key", &[]).await
    }

    async fn change_roles(&self, change: &RoleChange) -> Result<()> {
        let mut tx = self.begin().await?;
        lock_roles(&mut tx).await?;
        unchanged_since_read(&mut tx, change).await?;
        if let Some(id) = &change.removed_permission {
            tx.execute("DELETE FROM org_permissions WHERE id = $1", &[id.as_str().into()]).await?;
        }
        if let Some(p) = &change.new_permission {
            insert_in(&mut tx, p).await?;
        }
        for p in &change.permissions {
            overwrite(&mut tx, p).await?;
        }
        if let Some(key) = &change.removed_role {
            if holders(&mut tx, key).await? > 0 {
                return Err(StoreError::Conflict("role_in_use".into()));
            }
            tx.execute("DELETE FROM org_roles WHERE key = $1", &[key.as_str().into()]).await?;
        }
        let mut moved = None;
        if let Some((from, to)) = &change.renamed_role {
            key_free(&mut tx, to).await?;
            tx.execute("DELETE FROM org_roles WHERE key = $1", &[from.as_str().into()]).await?;
            for sql in [
                "UPDATE organization_memberships SET role = $2 WHERE role = $1",
                "UPDATE organization_invitations SET role = $2 WHERE role = $1 AND status = 'pending'",
            ] {
                tx.execute(sql, &[from.as_str().into(), to.as_str().into()]).await?;
            }
            moved = Some(to);
        }
        if let Some(role) = &change.new_role {
            key_free(&mut tx, &role.key).await?;
            insert_in(&mut tx, role).await?;
        }
        for role in &change.roles {
            // The renamed role's row was removed under its old key: it is written anew.
            if moved == Some(&role.key) {
                insert_in(&mut tx, role).await?;
            } else {
                overwrite(&mut tx, role).await?;
            }
        }
        tx.execute(
            "INSERT INTO settings (key, value) VALUES ($1, 'true') ON CONFLICT (key) DO NOTHING",
            &[MANAGED.into()],
        )
        .await?;
        tx.commit().await
    }

    async fn roles_managed_at_run_time(&self) -> Result<bool> {
        let rows = self.db.read("SELECT value FROM settings WHERE key = $1", &[MANAGED.into()]).await?;
        Ok(!rows.is_empty())
    }
}
