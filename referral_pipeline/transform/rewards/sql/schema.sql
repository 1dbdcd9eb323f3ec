-- Tables written by the rewards stage (docs/rewards.md has every column with examples).
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SEQUENCE IF NOT EXISTS analytics.write_seq;

CREATE TABLE IF NOT EXISTS audit.fraud_flags (
    flag_id                VARCHAR PRIMARY KEY,  -- 'flg_' || 16 hex of sha256(rule|subject_type|subject_key)
    rule                   VARCHAR NOT NULL,     -- SELF_REFERRAL SAME_IP_AS_ADVOCATE DUPLICATE_IDENTITY VELOCITY_ADVOCATE VELOCITY_IP COUPON_REUSE
    severity               VARCHAR NOT NULL,     -- reject | hold
    subject_type           VARCHAR NOT NULL,     -- signup | order
    subject_key            VARCHAR NOT NULL,     -- staging.referral_events.event_key | order_key
    advocate_customer_key  VARCHAR,
    friend_customer_key    VARCHAR,
    evidence               JSON NOT NULL,
    detected_at            TIMESTAMPTZ NOT NULL, -- as_of of the run that raised it
    run_id                 VARCHAR,
    market_id              VARCHAR,
    campaign_id            VARCHAR,
    load_seq               BIGINT NOT NULL       -- analytics.write_seq at insert
);

CREATE TABLE IF NOT EXISTS analytics.rewards (
    reward_key             VARCHAR PRIMARY KEY,  -- 'rwd_' || 16 hex of sha256(campaign_id|friend_customer_key)
    campaign_id            VARCHAR NOT NULL,
    market_id              VARCHAR NOT NULL,
    advocate_customer_key  VARCHAR,
    friend_customer_key    VARCHAR NOT NULL,
    order_key              VARCHAR,              -- the friend's first attributed order in the campaign
    status                 VARCHAR NOT NULL,     -- pending on_hold approved issued canceled reversed not_eligible
    reason                 VARCHAR,              -- why the reward entered its current status
    amount                 DECIMAL(18,4),
    currency               VARCHAR,
    fraud_rules            VARCHAR[],            -- every fraud rule flagged on the order or the friend's sign-up
    created_at             TIMESTAMPTZ NOT NULL, -- as_of of the run that created it
    updated_at             TIMESTAMPTZ NOT NULL, -- as_of of the run that last changed it
    placed_at              TIMESTAMPTZ,
    net_amount             DECIMAL(18,4),
    review_decision        VARCHAR,              -- latest Salesforce Review_Decision__c: approve | reject
    review_seen_at         TIMESTAMPTZ,          -- as_of of the run that first saw that decision
    issued_at              TIMESTAMPTZ,          -- when Friendbuy distributed it (set when we mark it issued)
    status_changed_at      TIMESTAMPTZ NOT NULL, -- as_of of the run that set the current status
    load_seq               BIGINT NOT NULL       -- analytics.write_seq at the last insert/rewrite
);

CREATE TABLE IF NOT EXISTS analytics.reward_ledger (
    reward_key   VARCHAR NOT NULL,
    seq          INTEGER NOT NULL,               -- 1, 2, ... per reward
    from_status  VARCHAR,                        -- NULL on the first row
    to_status    VARCHAR NOT NULL,
    reason       VARCHAR,
    occurred_at  TIMESTAMPTZ NOT NULL,           -- as_of of the run that saw the change
    run_id       VARCHAR,
    load_seq     BIGINT NOT NULL,                -- analytics.write_seq at insert
    PRIMARY KEY (reward_key, seq)
);

-- Internal: the canonical emails of the referral sign-ups (fraud.py, _sync_signup_emails), so an
-- incremental fraud run computes them only for new or rewritten sign-ups instead of all 75k. A row
-- is used only while the sign-up still has the raw emails it was computed from and the macro has
-- the same digest: otherwise fraud_subjects.sql computes the value itself.
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.fraud_signup_emails (
    event_key           VARCHAR NOT NULL,     -- analytics.referral_events.event_key (kind 'signup')
    friend_email        VARCHAR,
    advocate_email      VARCHAR,
    friend_canonical    VARCHAR,              -- ref_email_canonical(friend_email)
    advocate_canonical  VARCHAR,
    macro_digest        BIGINT NOT NULL,      -- runtime.digest of attribution/sql/macros.sql
    load_seq            BIGINT NOT NULL       -- the sign-up's load_seq in analytics.referral_events
);
