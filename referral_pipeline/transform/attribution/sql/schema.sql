-- Tables written by the attribution stage (docs/attribution.md has every column with examples).
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS ops;
-- load_seq of every referral table: a value of this sequence, new whenever the row is inserted or
-- rewritten (readers take the rows changed since a watermark)
CREATE SEQUENCE IF NOT EXISTS analytics.write_seq;
-- progress of the incremental stages (same table as the staging runner's)
CREATE TABLE IF NOT EXISTS ops.stage_progress (
    stage        VARCHAR PRIMARY KEY,
    last_seq     BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- Friendbuy activity of the programs' campaigns with market and both parties resolved to customer keys.
CREATE TABLE IF NOT EXISTS analytics.referral_events (
    event_key              VARCHAR PRIMARY KEY,   -- staging.referral_events.event_key
    kind                   VARCHAR NOT NULL,      -- share click signup purchase advocate_reward friend_incentive widget_view
    market_id              VARCHAR NOT NULL,      -- the market whose Friendbuy campaign it is
    campaign_id            VARCHAR NOT NULL,
    occurred_at            TIMESTAMPTZ NOT NULL,
    advocate_customer_key  VARCHAR,               -- NULL: anonymous, or unknown to identity
    friend_customer_key    VARCHAR,
    advocate_customer_id   VARCHAR,               -- the parties as Friendbuy sent them
    advocate_email         VARCHAR,
    friend_customer_id     VARCHAR,
    friend_email           VARCHAR,
    referral_code          VARCHAR,
    coupon_code            VARCHAR,               -- upper-cased
    order_id               VARCHAR,
    amount                 DECIMAL(18,4),
    currency               VARCHAR,
    channel                VARCHAR,               -- lower-cased
    ip_address             VARCHAR,
    user_agent             VARCHAR,
    new_customer           BOOLEAN,
    reward_type            VARCHAR,
    updated_at             TIMESTAMPTZ NOT NULL,  -- as_of of the run that last changed the row
    load_seq               BIGINT NOT NULL        -- analytics.write_seq at the last insert/rewrite
);

-- Old versions of analytics.referral_events rows that the events stage rewrote or removed, kept
-- until the attribution stage has seen them (its incremental runs re-evaluate the orders they
-- could have attributed: e.g. a removed click no longer anchors a referral-code window).
CREATE TABLE IF NOT EXISTS ops.referral_events_replaced (
    event_key            VARCHAR NOT NULL,
    kind                 VARCHAR,
    market_id            VARCHAR,
    referral_code        VARCHAR,
    coupon_code          VARCHAR,
    order_id             VARCHAR,
    friend_customer_key  VARCHAR,
    replaced_at          TIMESTAMPTZ NOT NULL,   -- as_of of the run that rewrote or removed it
    load_seq             BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS analytics.referral_attribution (
    order_key                 VARCHAR PRIMARY KEY,
    friend_customer_key       VARCHAR NOT NULL,   -- the order's customer
    advocate_customer_key     VARCHAR NOT NULL,   -- the share's / incentive's customer, through identity
    campaign_id               VARCHAR NOT NULL,
    market_id                 VARCHAR NOT NULL,
    attribution_method        VARCHAR NOT NULL,   -- coupon | friendbuy | referral_code | signup
    referral_code             VARCHAR,
    clicked_at                TIMESTAMPTZ,        -- most recent click on the referral code at or before the order
    signed_up_at              TIMESTAMPTZ,        -- the friend's most recent referral sign-up at or before the order
    placed_at                 TIMESTAMPTZ NOT NULL,
    net_amount                DECIMAL(18,4),
    currency                  VARCHAR,
    is_new_customer           BOOLEAN NOT NULL,
    reward_key                VARCHAR,            -- filled by the rewards stage
    friend_email_canonical    VARCHAR,
    advocate_email_canonical  VARCHAR,
    coupon_code               VARCHAR,            -- the referral coupon that attributed the order (method coupon)
    order_status              VARCHAR,
    channel                   VARCHAR,            -- channel of the referral touchpoint (share channel), 'unknown' if none
    source_event_key          VARCHAR,            -- staging.referral_events row that attributed the order
    no_reward_reason          VARCHAR,            -- filled by the rewards stage: NOT_FIRST_REFERRED_ORDER
    refunded_amount           DECIMAL(18,4),      -- the order's refunds so far (net_amount is after them)
    ip_address                VARCHAR,            -- the order's IP (fraud rules)
    attributed_at             TIMESTAMPTZ NOT NULL, -- as_of of the run that first attributed the order
    updated_at                TIMESTAMPTZ NOT NULL, -- as_of of the run that last changed the row
    load_seq                  BIGINT NOT NULL       -- analytics.write_seq at the last insert/rewrite
);

CREATE TABLE IF NOT EXISTS audit.promo_code_issues (
    code          VARCHAR NOT NULL,               -- upper-cased
    market_id     VARCHAR NOT NULL,
    campaign_id   VARCHAR,
    problem       VARCHAR NOT NULL,               -- missing inactive not_single_use expired wrong_market collision
    evidence      JSON,
    detected_at   TIMESTAMPTZ NOT NULL,           -- as_of of the run that first saw the problem
    updated_at    TIMESTAMPTZ NOT NULL,
    load_seq      BIGINT NOT NULL,
    PRIMARY KEY (code, market_id, problem)
);

-- What the promo-code stage last read per distributed code: a digest of the Friendbuy rows that
-- distributed it and of the platform coupons with its text (xor of hash(key, load_seq)). An
-- incremental run re-validates only the codes whose digest changed.
CREATE TABLE IF NOT EXISTS ops.promo_code_inputs (
    code     VARCHAR PRIMARY KEY,
    digest   UBIGINT NOT NULL,
    rows     BIGINT NOT NULL
);

-- Friendbuy purchase-row order ids that named more than one order of their market at the last
-- evaluation (ambiguous, or an order_key that is also another order's number). Incremental
-- attribution runs re-evaluate them on every run: a change of one of those orders (whose old
-- number is not kept) can make the id name exactly one order.
CREATE TABLE IF NOT EXISTS ops.purchase_multi_ids (
    order_id   VARCHAR NOT NULL,
    market_id  VARCHAR NOT NULL
);
