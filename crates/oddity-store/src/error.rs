//! Store errors.

/// What can go wrong with a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The partition's stored position is not where the batch starts: another worker committed
    /// this range, or this worker lost track. Nothing was written.
    #[error("partition {partition} is at offset {stored}, but the batch starts at {batch_from}")]
    PositionConflict {
        partition: u32,
        stored: u64,
        batch_from: u64,
    },
    /// The backend failed (I/O, SQL, connection).
    #[error("store backend: {0}")]
    Backend(String),
    /// Stored data could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database schema is newer than this build understands.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    /// The batch breaks the [`crate::CommitBatch`] contract (e.g. `to_offset < from_offset`, an id
    /// beyond the range a backend can store). Nothing was written.
    #[error("invalid commit batch: {0}")]
    InvalidBatch(String),
    /// A value could not be encoded for storage (e.g. event `attrs` that is not valid JSON).
    /// Nothing was written.
    #[error("cannot encode for storage: {0}")]
    Encode(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
