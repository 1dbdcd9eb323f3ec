-- Sync engine additions (docs/sync.md). Columns are only ever added to the contract tables.
CREATE SCHEMA IF NOT EXISTS ops;
ALTER TABLE ops.sync_state ADD COLUMN IF NOT EXISTS content_hash VARCHAR;      -- md5 of every sendable mapped field
ALTER TABLE ops.sync_state ADD COLUMN IF NOT EXISTS idempotency_key VARCHAR;   -- sha256(destination|entity|record_key|payload_hash)
ALTER TABLE ops.sync_state ADD COLUMN IF NOT EXISTS subject_key VARCHAR;       -- the customer_key the record concerns
ALTER TABLE ops.sync_state ADD COLUMN IF NOT EXISTS first_ok_at TIMESTAMPTZ;   -- first time the destination accepted the record
ALTER TABLE ops.sync_state ADD COLUMN IF NOT EXISTS last_attempt_at TIMESTAMPTZ;
ALTER TABLE ops.sync_state ADD COLUMN IF NOT EXISTS last_run_id VARCHAR;
ALTER TABLE ops.sync_log ADD COLUMN IF NOT EXISTS payload_hash VARCHAR;
CREATE TABLE IF NOT EXISTS ops.loyalty_snapshot (
    destination         VARCHAR NOT NULL,   -- Yotpo instance ('yotpo', 'yotpo_<prefix>')
    customer_key        VARCHAR NOT NULL,
    email               VARCHAR,
    points_balance      BIGINT,
    points_earned       BIGINT,
    vip_tier            VARCHAR,
    referral_code       VARCHAR,
    found               BOOLEAN NOT NULL,   -- false: Yotpo answered 404 for this customer
    fetched_at          TIMESTAMPTZ NOT NULL,
    run_id              VARCHAR,
    PRIMARY KEY (destination, customer_key)
);
