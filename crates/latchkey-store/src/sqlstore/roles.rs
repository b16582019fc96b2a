//! The instance's organization roles and permissions (docs/organization-roles.md).

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::{count_in, insert_in, update_in};
use crate::error::{Result, StoreError};
use crate::records::*;
use crate::sql::{SqlDriver, SqlTx};
use crate::store::RoleStore;

record!(OrgRoleRow in "org_roles" { key, name, description, permissions, created_at, updated_at, id });
record!(OrgPermissionRow in "org_permissions" { id, key, name, description, kind, created_at, updated_at });

/// The setting that says roles are managed at run time.
const MANAGED: &str = "org_roles_managed_at_run_time";

/// `Conflict("role_key_exists")` when a role has this key.
async fn key_free(tx: &mut Box<dyn SqlTx>, key: &str) -> Result<()> {
    match count_in(tx, "SELECT COUNT(*) FROM org_roles WHERE key = $1", &[key.into()]).await? {
        0 => Ok(()),
        _ => Err(StoreError::Conflict("role_key_exists".into())),
    }
}

/// Writes a role over the row with its key, or inserts it.
async fn upsert_role_in(tx: &mut Box<dyn SqlTx>, role: &OrgRoleRow) -> Result<()> {
    if update_in(tx, role).await? == 0 {
        insert_in(tx, role).await?;
    }
    Ok(())
}

#[async_trait]
impl<D: SqlDriver> RoleStore for SqlStore<D> {
    async fn upsert_org_role(&self, role: &OrgRoleRow) -> Result<()> {
        let mut tx = self.begin().await?;
        upsert_role_in(&mut tx, role).await?;
        tx.commit().await
    }

    async fn delete_org_role(&self, key: &str) -> Result<bool> {
        self.delete::<OrgRoleRow>(key).await
    }

    async fn list_org_roles(&self) -> Result<Vec<OrgRoleRow>> {
        self.find_all("1 = 1 ORDER BY created_at, key", &[]).await
    }

    async fn seed_org_permission(&self, permission: &OrgPermissionRow) -> Result<bool> {
        let mut tx = self.begin().await?;
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
        if let Some(id) = &change.removed_permission {
            tx.execute("DELETE FROM org_permissions WHERE id = $1", &[id.as_str().into()]).await?;
        }
        for p in &change.permissions {
            if update_in(&mut tx, p).await? == 0 {
                insert_in(&mut tx, p).await?;
            }
        }
        if let Some(key) = &change.removed_role {
            let holders = count_in(
                &mut tx,
                "SELECT (SELECT COUNT(*) FROM organization_memberships WHERE role = $1) \
                 + (SELECT COUNT(*) FROM organization_invitations WHERE role = $1 AND status = 'pending')",
                &[key.as_str().into()],
            )
            .await?;
            if holders > 0 {
                return Err(StoreError::Conflict("role_in_use".into()));
            }
            tx.execute("DELETE FROM org_roles WHERE key = $1", &[key.as_str().into()]).await?;
        }
        if let Some((from, to)) = &change.renamed_role {
            key_free(&mut tx, to).await?;
            tx.execute("DELETE FROM org_roles WHERE key = $1", &[from.as_str().into()]).await?;
            tx.execute(
                "UPDATE organization_memberships SET role = $2 WHERE role = $1",
                &[from.as_str().into(), to.as_str().into()],
            )
            .await?;
            tx.execute(
                "UPDATE organization_invitations SET role = $2 WHERE role = $1 AND status = 'pending'",
                &[from.as_str().into(), to.as_str().into()],
            )
            .await?;
        }
        if let Some(role) = &change.new_role {
            key_free(&mut tx, &role.key).await?;
            insert_in(&mut tx, role).await?;
        }
        for role in &change.roles {
            upsert_role_in(&mut tx, role).await?;
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
