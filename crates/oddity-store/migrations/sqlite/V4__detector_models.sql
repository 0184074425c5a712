-- Models fitted by pipeline detectors (Isolation Forest, LOF, One-Class SVM, ensemble), one row
-- per version of each (detector, key). Written in the transaction of the batch that fitted them;
-- a replay that fits the same version again is ignored (INSERT OR IGNORE on the primary key).
CREATE TABLE detector_models (
    detector   TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    trained_at INTEGER NOT NULL,
    rows       INTEGER NOT NULL,
    model      TEXT    NOT NULL,
    PRIMARY KEY (detector, key, version)
) WITHOUT ROWID;
