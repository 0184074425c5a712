-- Per-entity hourly counts are accumulated in memory and flushed every few seconds (see
-- src/sqlite/counts.rs): the last event seq they include is kept here, so that after a crash the
-- store recounts only the events after it.
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO store_meta (key, value) SELECT 'entity_counts_through_seq', coalesce(max(seq), 0) FROM events;
