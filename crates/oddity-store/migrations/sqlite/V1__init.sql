-- oddity SQLite schema, version 1. Applied once, in one transaction; tracked by PRAGMA user_version.
-- Why each table and index exists (and which ones were left out) is explained in src/sqlite/mod.rs.

-- Every stored event. seq is assigned by the store (max + 1), so the table b-tree is only ever
-- appended to; id is the log's EventId. No secondary index: per-event index inserts are what
-- made commit slow (see src/sqlite/mod.rs), the postings below replace them.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    id          INTEGER NOT NULL,
    entity      TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    value       REAL,               -- NULL when absent or not finite
    ingested_at INTEGER NOT NULL,
    fields      TEXT,               -- JSON object of finite numbers, NULL when empty
    attrs       TEXT                -- the raw JSON text, stored as received
);

-- One row per committed batch with events: its seq range and newest arrival time. Retention
-- deletes whole batches whose events all arrived before the cutoff, by seq range.
CREATE TABLE event_batches (
    batch           INTEGER PRIMARY KEY,
    first_seq       INTEGER NOT NULL,
    last_seq        INTEGER NOT NULL,
    max_ingested_at INTEGER NOT NULL
);
CREATE INDEX event_batches_max_ingested ON event_batches (max_ingested_at);

-- Batch-granular secondary index: for each batch, one row per key (kind 0 = all events with key
-- '', 1 = entity, 2 = type) holding the (ts, id, seq) of the batch's events with that key,
-- sorted newest first, packed in a blob (src/sqlite/postings.rs). A commit writes about as many
-- rows as the batch has distinct entities instead of three index entries per event.
CREATE TABLE event_postings (
    posting  INTEGER PRIMARY KEY,
    kind     INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    batch    INTEGER NOT NULL,
    min_ts   INTEGER NOT NULL,
    max_ts   INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    base_seq INTEGER NOT NULL,
    entries  BLOB    NOT NULL
);
-- Covering: planning a query (which postings, how many events) never reads the blobs.
CREATE INDEX event_postings_key ON event_postings (kind, key, max_ts, min_ts, n);
CREATE INDEX event_postings_batch ON event_postings (batch);

-- Hourly arrival counts (hour = ingested_at rounded down to the hour, ms), upserted by commit from
-- counts aggregated over the batch, so that stats never scan events.
CREATE TABLE event_counts_by_type (
    hour INTEGER NOT NULL,
    type TEXT    NOT NULL,
    n    INTEGER NOT NULL,
    PRIMARY KEY (hour, type)
) WITHOUT ROWID;
CREATE TABLE event_counts_by_entity (
    hour   INTEGER NOT NULL,
    entity TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (hour, entity)
) WITHOUT ROWID;

-- Anomalies: few (well under 1 % of events), so they get one index per filter.
CREATE TABLE anomalies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL,
    detector    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    entity      TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    severity    TEXT    NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    score       REAL,               -- NULL stands for NaN
    description TEXT    NOT NULL,
    explanation TEXT    NOT NULL,   -- JSON
    event       TEXT    NOT NULL,   -- JSON of the triggering event
    detected_at INTEGER NOT NULL,
    UNIQUE (event_id, detector)
);
CREATE INDEX anomalies_ts ON anomalies (ts);
CREATE INDEX anomalies_entity_ts ON anomalies (entity, ts);
CREATE INDEX anomalies_type_ts ON anomalies (type, ts);
CREATE INDEX anomalies_detector_ts ON anomalies (detector, ts);
CREATE INDEX anomalies_severity_ts ON anomalies (severity, ts);
-- Covering for the statistics (group by detector, severity or entity since a time) and retention.
CREATE INDEX anomalies_detected_at ON anomalies (detected_at, detector, severity, entity);

-- Next offset to process, per log partition, and the offset the saved detector state reflects
-- (the last checkpoint; a restarting worker replays the log from there).
CREATE TABLE positions (
    partition    INTEGER PRIMARY KEY,
    next_offset  INTEGER NOT NULL,
    state_offset INTEGER NOT NULL DEFAULT 0
);

-- Saved detector state. Keyed by (detector, key) so that a key keeps one state even if the
-- partition count changes; partition says which worker loads it.
CREATE TABLE detector_state (
    detector  TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    partition INTEGER NOT NULL,
    state     TEXT    NOT NULL,     -- JSON
    PRIMARY KEY (detector, key)
) WITHOUT ROWID;
CREATE INDEX detector_state_partition ON detector_state (partition);
