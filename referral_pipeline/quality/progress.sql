-- Bookkeeping of the data-quality runner (docs/data-quality.md). Idempotent.
CREATE SCHEMA IF NOT EXISTS ops;

-- One row per validated table: how far validation got, and the outcome of the last run that
-- validated something (or whose outcome changed).
CREATE TABLE IF NOT EXISTS ops.dq_progress (
    table_name           VARCHAR PRIMARY KEY,  -- schema.table
    strategy             VARCHAR NOT NULL,     -- watermark | fingerprint
    mark_column          VARCHAR,              -- watermark column (load_seq), NULL for fingerprint
    mark_value           BIGINT,               -- highest watermark value validated
    rows_validated       BIGINT NOT NULL,      -- rows handed to GX by the last run that validated rows
    rows_validated_total BIGINT NOT NULL,      -- ... summed over all runs
    success              BOOLEAN NOT NULL,     -- outcome of that run (row-level and table-level)
    failed_expectations  VARCHAR[] NOT NULL,
    run_id               VARCHAR,
    updated_at           TIMESTAMPTZ NOT NULL,
    signature            VARCHAR               -- hash of what the row-level validation reads and expects
);

-- Rows that failed a row-level expectation and were not fixed since: re-validated by every run
-- (whatever the delta), so a failing check keeps failing until the data is fixed.
CREATE TABLE IF NOT EXISTS ops.dq_open_failures (
    table_name      VARCHAR NOT NULL,
    row_key         VARCHAR NOT NULL,          -- the suite's key columns, joined with U+001F
    expectations    VARCHAR[] NOT NULL,        -- names of the expectations the row fails
    first_failed_at TIMESTAMPTZ NOT NULL,
    run_id          VARCHAR
);

-- Fingerprint strategy (tables without a write-sequence column): (row key, hash of the values the
-- suite validates) as last validated; a row whose pair is not here changed since and is in the delta.
CREATE TABLE IF NOT EXISTS ops.dq_fingerprints (
    table_name VARCHAR NOT NULL,
    row_key    VARCHAR NOT NULL,
    row_hash   UBIGINT NOT NULL
);

-- (databases created before the column existed)
ALTER TABLE ops.dq_progress ADD COLUMN IF NOT EXISTS signature VARCHAR;
