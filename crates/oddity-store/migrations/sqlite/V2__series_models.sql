-- oddity SQLite schema, version 2: versioned per-series models (seed 001's /fit, /predict, /plot).
-- Applied once, in one transaction; see src/models.rs for the versioning rules and
-- src/sqlite/models.rs for how the tables are used.

-- One row per fitted version. The series id and the version are separate columns, so version
-- numbering never depends on how an id is spelled (seed 001 parsed them out of file names).
CREATE TABLE series_models (
    series_id  TEXT    NOT NULL,
    version    INTEGER NOT NULL,   -- 1, 2, ... per series
    created_at INTEGER NOT NULL,   -- ms since the epoch
    points     INTEGER NOT NULL,   -- number of training points
    model      TEXT    NOT NULL,   -- the fitted model, JSON
    PRIMARY KEY (series_id, version)
) WITHOUT ROWID;

-- At most one pinned version per series; no row means "the latest version is active".
CREATE TABLE series_pins (
    series_id TEXT    NOT NULL PRIMARY KEY,
    version   INTEGER NOT NULL
) WITHOUT ROWID;

-- The training points of each version (seed 001's `training_data` table), in posting order
-- (`seq`); read back ordered by timestamp for plots.
CREATE TABLE series_training_points (
    series_id TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value     REAL    NOT NULL,
    PRIMARY KEY (series_id, version, seq)
) WITHOUT ROWID;
