//! `latchkey export --users <file.csv> [--organizations <file.json>]`: every user in Clerk's
//! CSV (with latchkey's extra columns after Clerk's) and every organization with its members
//! and pending invitations as JSON, so that leaving is as easy as arriving
//! (docs/import-export.md). The files hold password digests and authenticator keys: they are
//! created readable by their owner only, and never over an existing file.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use latchkey_service::admin::AdminService;
use latchkey_service::orgs::OrgService;
use serde_json::json;

use crate::clerk_csv::{row, CLERK_COLUMNS, EXTRA_COLUMNS};

/// Users read per page.
const PAGE: i64 = 500;

/// A new file only its owner can read.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))
}

/// Writes every user; returns how many.
pub async fn users(admin: &AdminService, path: &Path) -> anyhow::Result<u64> {
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(create_private(path)?));
    writer.write_record(CLERK_COLUMNS.iter().chain(EXTRA_COLUMNS.iter()))?;
    let (operator, mut after, mut count) = (crate::operator(), String::new(), 0u64);
    loop {
        let page = admin.export_users(&operator, &after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.record.user.id.clone();
        for user in &page {
            writer.write_record(row(user))?;
            count += 1;
        }
    }
    writer.flush()?;
    Ok(count)
}

/// Writes every organization with its members and pending invitations; returns how many.
pub async fn organizations(orgs: &OrgService, path: &Path) -> anyhow::Result<u64> {
    let operator = crate::operator();
    let mut out = std::io::BufWriter::new(create_private(path)?);
    let mut all = Vec::new();
    for org in orgs.export_organizations(&operator).await? {
        all.push(json!({
            "id": org.organization.id,
            "name": org.organization.name,
            "slug": org.organization.slug,
            "public_metadata": parse(&org.organization.public_metadata),
            "private_metadata": parse(&org.organization.private_metadata),
            "max_allowed_memberships": org.organization.max_allowed_memberships,
            "admin_delete_enabled": org.organization.admin_delete_enabled,
            "created_by": org.organization.created_by,
            "created_at": org.organization.created_at,
            "memberships": org.memberships.iter().map(|m| json!({
                "id": m.id, "user_id": m.user_id, "role": m.role, "created_at": m.created_at,
            })).collect::<Vec<_>>(),
            "pending_invitations": org.invitations.iter().map(|i| json!({
                "id": i.id, "email_address": i.email, "role": i.role, "created_at": i.created_at,
                "expires_at": i.expires_at,
            })).collect::<Vec<_>>(),
        }));
    }
    let count = all.len() as u64;
    serde_json::to_writer_pretty(&mut out, &json!({ "organizations": all }))?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(count)
}

fn parse(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}
