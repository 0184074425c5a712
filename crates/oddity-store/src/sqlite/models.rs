//! [`ModelStore`] on SQLite: tables `series_models`, `series_pins` and `series_training_points`
//! (migration V2).
//!
//! Writes go through the single writer connection like worker commits, in one `IMMEDIATE`
//! transaction each: the "highest version + 1" read and the insert cannot interleave with
//! another fit of the same series, so two concurrent fits get two distinct versions. Fits are
//! rare and small next to event commits, so sharing the writer costs nothing measurable. Reads
//! use the read pool. Every call runs on the blocking pool (`spawn_blocking`).
//!
//! Training points are rows (one per point, keyed by `(series_id, version, seq)`), not a JSON
//! blob: REAL columns round-trip every finite `f64` exactly and users can query them with
//! `sqlite3`, like seed 001's `training_data` table.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::StoreError;
use crate::models::{ModelStore, ModelVersionInfo, StoredModel, TrainingPoint};

/// The active version of a series (pinned, else latest), inside any connection or transaction.
const ACTIVE_VERSION: &str = "SELECT COALESCE(
        (SELECT version FROM series_pins WHERE series_id = ?1),
        (SELECT MAX(version) FROM series_models WHERE series_id = ?1))";

fn version_u32(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("model version {v} out of range")))
}

fn active_version(conn: &Connection, series_id: &str) -> Result<Option<u32>, StoreError> {
    let v: Option<i64> = conn.query_row(ACTIVE_VERSION, params![series_id], |r| r.get(0))?;
    v.map(version_u32).transpose()
}

fn load_model(
    conn: &Connection,
    series_id: &str,
    version: u32,
) -> Result<Option<StoredModel>, StoreError> {
    let row: Option<(i64, i64, String)> = conn
        .prepare_cached(
            "SELECT created_at, points, model FROM series_models
             WHERE series_id = ?1 AND version = ?2",
        )?
        .query_row(params![series_id, version], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((created_at, points, model)) = row else {
        return Ok(None);
    };
    let model = serde_json::from_str(&model).map_err(|e| {
        StoreError::Corrupt(format!(
            "model {series_id} v{version} is not valid json: {e}"
        ))
    })?;
    Ok(Some(StoredModel {
        series_id: series_id.to_owned(),
        version,
        created_at,
        points: u64::try_from(points).unwrap_or(0),
        model,
    }))
}

fn save(
    conn: &mut Connection,
    series_id: &str,
    model: &str,
    points: &[TrainingPoint],
    created_at: i64,
) -> Result<u32, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let highest: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM series_models WHERE series_id = ?1",
        params![series_id],
        |r| r.get(0),
    )?;
    let version = version_u32(highest + 1)?;
    tx.prepare_cached(
        "INSERT INTO series_models (series_id, version, created_at, points, model)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        series_id,
        version,
        created_at,
        points.len() as i64,
        model
    ])?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO series_training_points (series_id, version, seq, timestamp, value)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (seq, p) in points.iter().enumerate() {
            if !p.value.is_finite() {
                return Err(StoreError::Encode(format!(
                    "training point {seq} of {series_id} has a non-finite value"
                )));
            }
            insert.execute(params![
                series_id,
                version,
                seq as i64,
                p.timestamp,
                p.value
            ])?;
        }
    }
    tx.commit()?;
    Ok(version)
}

fn versions(conn: &Connection, series_id: &str) -> Result<Vec<ModelVersionInfo>, StoreError> {
    let active = active_version(conn, series_id)?;
    let pinned: Option<i64> = conn
        .query_row(
            "SELECT version FROM series_pins WHERE series_id = ?1",
            params![series_id],
            |r| r.get(0),
        )
        .optional()?;
    let mut stmt = conn.prepare_cached(
        "SELECT version, created_at, points FROM series_models
         WHERE series_id = ?1 ORDER BY version",
    )?;
    let rows = stmt.query_map(params![series_id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (version, created_at, points) = row?;
        out.push(ModelVersionInfo {
            version: version_u32(version)?,
            created_at,
            points: u64::try_from(points).unwrap_or(0),
            pinned: pinned == Some(version),
            active: active.map(i64::from) == Some(version),
        });
    }
    Ok(out)
}

fn pin(conn: &mut Connection, series_id: &str, version: u32) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM series_models WHERE series_id = ?1 AND version = ?2)",
        params![series_id, version],
        |r| r.get(0),
    )?;
    if exists {
        tx.execute(
            "INSERT INTO series_pins (series_id, version) VALUES (?1, ?2)
             ON CONFLICT (series_id) DO UPDATE SET version = excluded.version",
            params![series_id, version],
        )?;
    }
    tx.commit()?;
    Ok(exists)
}

fn rollback(conn: &mut Connection, series_id: &str) -> Result<Option<u32>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(active) = active_version(&tx, series_id)? else {
        return Ok(None);
    };
    let previous: Option<i64> = tx.query_row(
        "SELECT MAX(version) FROM series_models WHERE series_id = ?1 AND version < ?2",
        params![series_id, active],
        |r| r.get(0),
    )?;
    let Some(previous) = previous else {
        return Ok(None);
    };
    tx.execute(
        "INSERT INTO series_pins (series_id, version) VALUES (?1, ?2)
         ON CONFLICT (series_id) DO UPDATE SET version = excluded.version",
        params![series_id, previous],
    )?;
    tx.commit()?;
    Ok(Some(version_u32(previous)?))
}

fn training_points(
    conn: &mut Connection,
    series_id: &str,
    version: u32,
) -> Result<Option<Vec<TrainingPoint>>, StoreError> {
    // One read transaction: the existence check and the points come from the same snapshot.
    let tx = conn.transaction()?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM series_models WHERE series_id = ?1 AND version = ?2)",
        params![series_id, version],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(None);
    }
    let mut stmt = tx.prepare_cached(
        "SELECT timestamp, value FROM series_training_points
         WHERE series_id = ?1 AND version = ?2 ORDER BY timestamp, seq",
    )?;
    let points = stmt
        .query_map(params![series_id, version], |r| {
            Ok(TrainingPoint {
                timestamp: r.get(0)?,
                value: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(points))
}

#[async_trait]
impl ModelStore for SqliteStore {
    async fn save_model(
        &self,
        series_id: &str,
        model: &serde_json::Value,
        points: &[TrainingPoint],
        created_at: i64,
    ) -> Result<u32, StoreError> {
        let series_id = series_id.to_owned();
        let model = serde_json::to_string(model)
            .map_err(|e| StoreError::Encode(format!("model is not serialisable: {e}")))?;
        let points = points.to_vec();
        self.write(move |conn, _| save(conn, &series_id, &model, &points, created_at))
            .await
    }

    async fn model(
        &self,
        series_id: &str,
        version: u32,
    ) -> Result<Option<StoredModel>, StoreError> {
        let series_id = series_id.to_owned();
        self.read(move |conn| load_model(conn, &series_id, version))
            .await
    }

    async fn active_model(&self, series_id: &str) -> Result<Option<StoredModel>, StoreError> {
        let series_id = series_id.to_owned();
        self.read(move |conn| {
            let tx = conn.transaction()?;
            match active_version(&tx, &series_id)? {
                Some(version) => load_model(&tx, &series_id, version),
                None => Ok(None),
            }
        })
        .await
    }

    async fn versions(&self, series_id: &str) -> Result<Vec<ModelVersionInfo>, StoreError> {
        let series_id = series_id.to_owned();
        self.read(move |conn| {
            let tx = conn.transaction()?;
            versions(&tx, &series_id)
        })
        .await
    }

    async fn pin(&self, series_id: &str, version: u32) -> Result<bool, StoreError> {
        let series_id = series_id.to_owned();
        self.write(move |conn, _| pin(conn, &series_id, version))
            .await
    }

    async fn unpin(&self, series_id: &str) -> Result<bool, StoreError> {
        let series_id = series_id.to_owned();
        self.write(move |conn, _| {
            let n = conn.execute(
                "DELETE FROM series_pins WHERE series_id = ?1",
                params![series_id],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn rollback(&self, series_id: &str) -> Result<Option<u32>, StoreError> {
        let series_id = series_id.to_owned();
        self.write(move |conn, _| rollback(conn, &series_id)).await
    }

    async fn training_points(
        &self,
        series_id: &str,
        version: u32,
    ) -> Result<Option<Vec<TrainingPoint>>, StoreError> {
        let series_id = series_id.to_owned();
        self.read(move |conn| training_points(conn, &series_id, version))
            .await
    }

    async fn series_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let n: i64 = conn.query_row(
                "SELECT COUNT(DISTINCT series_id) FROM series_models",
                [],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::SqliteOptions;
    use super::*;

    async fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(&dir.path().join("models.db"), SqliteOptions::default()).unwrap();
        (dir, store)
    }

    crate::model_store_test_suite!(temp_store());

    #[tokio::test]
    async fn concurrent_fits_get_distinct_versions() {
        let (_dir, store) = temp_store().await;
        let point = [TrainingPoint {
            timestamp: 1,
            value: 1.0,
        }];
        let fits = (0..8).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .save_model("c", &serde_json::json!({}), &point, 0)
                    .await
                    .unwrap()
            })
        });
        let mut versions = Vec::new();
        for f in fits {
            versions.push(f.await.unwrap());
        }
        versions.sort_unstable();
        assert_eq!(versions, (1..=8).collect::<Vec<u32>>());
    }

    #[tokio::test]
    async fn models_survive_reopen() {
        let (dir, store) = temp_store().await;
        let point = [TrainingPoint {
            timestamp: 1,
            value: 1.0,
        }];
        store
            .save_model("s", &serde_json::json!({"k": 1}), &point, 0)
            .await
            .unwrap();
        store
            .save_model("s", &serde_json::json!({"k": 2}), &point, 0)
            .await
            .unwrap();
        assert!(store.pin("s", 1).await.unwrap());
        drop(store);
        let store =
            SqliteStore::open(&dir.path().join("models.db"), SqliteOptions::default()).unwrap();
        assert_eq!(store.active_model("s").await.unwrap().unwrap().version, 1);
        assert_eq!(
            store
                .save_model("s", &serde_json::json!({}), &point, 0)
                .await
                .unwrap(),
            3
        );
    }
}
