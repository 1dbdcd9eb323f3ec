-- Tables every stage relies on (contracts §6). Idempotent: safe to run at the start of every asset.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE IF NOT EXISTS ops.sync_cursors (
    source        VARCHAR NOT NULL,
    entity        VARCHAR NOT NULL,
    cursor_value  VARCHAR,          -- high-water mark (ISO-8601 UTC) of the last committed batch
    cursor_id     VARCHAR,          -- tie-breaker: the largest id at cursor_value
    updated_at    TIMESTAMPTZ NOT NULL,
    run_id        VARCHAR,
    PRIMARY KEY (source, entity)
);

CREATE TABLE IF NOT EXISTS audit.quarantine (
    source        VARCHAR NOT NULL,
    entity        VARCHAR NOT NULL,
    source_id     VARCHAR,          -- the record's id when it has one
    reason        VARCHAR NOT NULL, -- machine-readable reason code (docs/quarantine.md)
    payload       VARCHAR NOT NULL, -- the raw record as received
    first_seen_at TIMESTAMPTZ NOT NULL,
    run_id        VARCHAR,
    detail        VARCHAR,
    payload_hash  UBIGINT NOT NULL,
    resolved_at   TIMESTAMPTZ       -- set when a later version of the record was staged or re-quarantined
);

CREATE OR REPLACE VIEW audit.quarantine_current AS
SELECT * FROM audit.quarantine WHERE resolved_at IS NULL;

CREATE TABLE IF NOT EXISTS ops.sync_state (
    destination     VARCHAR NOT NULL,
    entity          VARCHAR NOT NULL,
    record_key      VARCHAR NOT NULL,
    payload_hash    VARCHAR,
    status          VARCHAR NOT NULL,   -- ok, retry, failed, dead, in_flight
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error      VARCHAR,
    next_retry_at   TIMESTAMPTZ,
    remote_id       VARCHAR,
    updated_at      TIMESTAMPTZ NOT NULL,
    payload         VARCHAR,
    PRIMARY KEY (destination, entity, record_key)
);

CREATE TABLE IF NOT EXISTS ops.sync_log (
    run_id          VARCHAR,
    destination     VARCHAR NOT NULL,
    entity          VARCHAR NOT NULL,
    record_key      VARCHAR NOT NULL,
    idempotency_key VARCHAR,
    attempt         INTEGER,
    status_code     INTEGER,
    outcome         VARCHAR NOT NULL,
    error           VARCHAR,
    latency_ms      DOUBLE,
    "at"            TIMESTAMPTZ NOT NULL
);

CREATE OR REPLACE VIEW ops.failed_payloads AS
SELECT destination, entity, record_key, status, attempts, last_status_code, last_error, payload, next_retry_at
FROM ops.sync_state
WHERE status IN ('retry', 'failed', 'dead', 'in_flight');

CREATE TABLE IF NOT EXISTS ops.runs (
    run_id      VARCHAR PRIMARY KEY,
    job         VARCHAR,
    as_of       TIMESTAMPTZ,
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    status      VARCHAR
);

CREATE TABLE IF NOT EXISTS ops.extract_log (
    run_id        VARCHAR,
    source        VARCHAR NOT NULL,
    entity        VARCHAR NOT NULL,
    fetched       BIGINT,
    new           BIGINT,
    updated       BIGINT,
    unchanged     BIGINT,
    quarantined   BIGINT,
    pages         BIGINT,
    requests      BIGINT,
    retries       BIGINT,
    cursor_before VARCHAR,
    cursor_after  VARCHAR,
    seconds       DOUBLE,
    "at"          TIMESTAMPTZ NOT NULL
);
