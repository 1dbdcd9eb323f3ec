-- Tables written by the reports stage (docs/reports.md has every column with examples).
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SEQUENCE IF NOT EXISTS analytics.write_seq;

CREATE TABLE IF NOT EXISTS analytics.referral_funnel_daily (
    day               DATE NOT NULL,          -- UTC day of the event / of the order
    market_id         VARCHAR NOT NULL,
    campaign_id       VARCHAR NOT NULL,
    channel           VARCHAR NOT NULL,       -- share channel (email, facebook, ...); 'unknown' when none is known
    shares            BIGINT NOT NULL,
    clicks            BIGINT NOT NULL,
    signups           BIGINT NOT NULL,
    conversions       BIGINT NOT NULL,        -- attributed orders not cancelled / declined / incomplete
    revenue           DECIMAL(18,4) NOT NULL, -- their net amount (after refunds), program currency only
    rewards_approved  BIGINT NOT NULL,        -- rewards of those orders now approved or issued
    currency          VARCHAR,                -- the market's program currency (unit of revenue)
    updated_at        TIMESTAMPTZ NOT NULL,
    load_seq          BIGINT NOT NULL,        -- analytics.write_seq at the last insert/rewrite
    PRIMARY KEY (day, market_id, campaign_id, channel)
);

CREATE TABLE IF NOT EXISTS analytics.reward_reconciliation (
    reward_key                VARCHAR,        -- NULL when Friendbuy's friend matches no customer
    order_key                 VARCHAR,
    advocate_customer_key     VARCHAR,
    friend_customer_key       VARCHAR,
    our_status                VARCHAR,        -- NULL: we have no such reward
    friendbuy_status          VARCHAR NOT NULL, -- distributed | not_distributed
    mismatch                  VARCHAR NOT NULL,
    market_id                 VARCHAR,
    campaign_id               VARCHAR,
    our_reason                VARCHAR,
    our_amount                DECIMAL(18,4),
    friendbuy_amount          DECIMAL(18,4),
    friendbuy_event_key       VARCHAR,        -- the (first) distributed-advocate-rewards row
    friendbuy_distributed_at  TIMESTAMPTZ,
    detail                    VARCHAR NOT NULL, -- the difference in words
    detected_at               TIMESTAMPTZ NOT NULL, -- as_of of the run that first reported it
    updated_at                TIMESTAMPTZ NOT NULL,
    load_seq                  BIGINT NOT NULL     -- analytics.write_seq at the last insert/rewrite
);
