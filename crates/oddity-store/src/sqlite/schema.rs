//! Connection settings and embedded migrations.
//!
//! Migrations are plain `.sql` files under `migrations/sqlite/`, embedded with `include_str!`
//! and applied in order, each in its own transaction together with the `PRAGMA user_version`
//! bump that records it. A database whose `user_version` is newer than [`LATEST_VERSION`] was
//! written by a newer build: it is refused with [`StoreError::SchemaTooNew`] rather than
//! half-understood.

use rusqlite::{Connection, TransactionBehavior};

use super::SqliteOptions;
use crate::StoreError;

/// `(version, sql)`, in order. A new migration is a new file and a new line here, never an edit.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/V1__init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/V2__series_models.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/V3__entity_counts_watermark.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/V4__detector_models.sql"),
    ),
];

/// The schema version this build writes.
pub(crate) const LATEST_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Settings shared by every connection.
fn configure_common(
    conn: &Connection,
    options: &SqliteOptions,
    cache_kib: u32,
) -> Result<(), StoreError> {
    conn.busy_timeout(options.busy_timeout)?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{cache_kib};
         PRAGMA mmap_size = {mmap};",
        mmap = options.mmap_size_bytes,
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Prepares the single writer connection.
pub(crate) fn configure_writer(
    conn: &Connection,
    options: &SqliteOptions,
) -> Result<(), StoreError> {
    conn.busy_timeout(options.busy_timeout)?;
    // Only takes effect while the file is still empty, so it must come before anything writes.
    conn.execute_batch(&format!("PRAGMA page_size = {};", options.page_size))?;
    // WAL is persistent in the file, so readers inherit it. `journal_mode` answers with a row:
    // read it to check that WAL was really enabled.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "cannot enable wal journal mode (got `{mode}`)"
        )));
    }
    configure_common(conn, options, options.writer_cache_kib)?;
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = {pages};
         PRAGMA journal_size_limit = {limit};",
        pages = options.wal_autocheckpoint_pages,
        limit = 64 * 1024 * 1024,
    ))?;
    Ok(())
}

/// Prepares a read connection. `query_only` turns an accidental write into an error.
pub(crate) fn configure_reader(
    conn: &Connection,
    options: &SqliteOptions,
) -> Result<(), StoreError> {
    configure_common(conn, options, options.reader_cache_kib)?;
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(())
}

/// Applies the migrations the database has not seen yet.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > LATEST_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: LATEST_VERSION,
        });
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Backend(format!("migration V{version} failed: {e}")))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied sqlite migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i64 + 1);
        }
    }

    #[test]
    fn migrate_is_idempotent_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, LATEST_VERSION);
        conn.pragma_update(None, "user_version", LATEST_VERSION + 1)
            .unwrap();
        match migrate(&mut conn) {
            Err(StoreError::SchemaTooNew { found, supported }) => {
                assert_eq!((found, supported), (LATEST_VERSION + 1, LATEST_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
