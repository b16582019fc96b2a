#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; the string names the rule (constraint or column).
    #[error("conflict: {0}")]
    Conflict(String),
    /// An optimistic update found the row changed since it was read.
    #[error("the record changed concurrently")]
    Stale,
    #[error("not found")]
    NotFound,
    /// The database cannot be reached right now; retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    pub fn is_conflict_on(&self, needle: &str) -> bool {
        matches!(self, StoreError::Conflict(c) if c.contains(needle))
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
