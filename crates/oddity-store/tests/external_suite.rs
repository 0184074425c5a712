//! Runs the conformance suite from outside the crate, exactly as another backend (PostgreSQL)
//! will: `oddity_store::store_test_suite!(factory)` with the `testsuite` feature.

use oddity_store::sqlite::{SqliteOptions, SqliteStore};

async fn factory() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("a temp dir should be creatable");
    let store = SqliteStore::open(&dir.path().join("external.db"), SqliteOptions::default())
        .expect("a fresh sqlite store should open");
    (dir, store)
}

oddity_store::store_test_suite!(factory());
