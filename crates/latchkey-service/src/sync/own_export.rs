//! A person's own synced data, for "Download my data" (docs/account-data.md): every space they
//! may read — their personal space whole, and in each organization the tables their role may
//! read — page by page, so an export never holds a space in memory.

use latchkey_store::SyncChange;

use super::{SpaceAccess, SyncService};
use crate::authority::SignedIn;
use crate::error::{ErrorKind, Result, ServiceError};

/// Records read per page.
const PAGE: i64 = 500;

/// Where an export stands: the spaces left and the last sequence number read in the current one.
#[derive(Debug)]
pub struct ExportCursor {
    spaces: Vec<SpaceAccess>,
    index: usize,
    after: i64,
}

/// One record as the export shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportedRecord {
    /// `me`, or the organization's id.
    pub space: String,
    pub table: String,
    pub id: String,
    pub fields: serde_json::Value,
    pub updated_at: i64,
}

impl SyncService {
    /// The spaces `who` may read, in order: theirs, then their organizations'.
    pub async fn own_export(&self, who: &SignedIn) -> Result<ExportCursor> {
        let spaces = self.directory.spaces_of(who.user_id()).await?;
        Ok(ExportCursor { spaces, index: 0, after: 0 })
    }

    /// The next records of the export (possibly none from one page, when a whole page is of
    /// tables the person may not read), or `None` once every space is read.
    pub async fn own_export_page(&self, cursor: &mut ExportCursor) -> Result<Option<Vec<ExportedRecord>>> {
        let Some(space) = cursor.spaces.get(cursor.index) else {
            return Ok(None);
        };
        let changes = self.store.sync_changes(&space.key, cursor.after, PAGE, true).await?;
        match changes.last() {
            Some(last) if changes.len() as i64 == PAGE => cursor.after = last.seq,
            _ => {
                cursor.index += 1;
                cursor.after = 0;
            }
        }
        let readable = |c: &SyncChange| match self.table(&c.table) {
            Some(spec) => space.can_read(spec),
            // A table no longer served: only its owner's own space shows it.
            None => space.name == super::PERSONAL_SPACE,
        };
        let records = changes
            .iter()
            .filter(|c| readable(c))
            .map(|c| {
                let fields = serde_json::from_str(&c.data)
                    .map_err(|e| ServiceError::new(ErrorKind::Internal, "internal_error", e.to_string()))?;
                Ok(ExportedRecord {
                    space: space.name.clone(),
                    table: c.table.clone(),
                    id: c.id.clone(),
                    fields,
                    updated_at: c.updated_at,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(records))
    }
}
