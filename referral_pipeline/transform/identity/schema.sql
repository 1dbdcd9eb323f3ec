-- Tables of the identity stage (docs/identity.md has the catalog with every column and example queries).
-- Idempotent: run at the start of every identity run.
CREATE SCHEMA IF NOT EXISTS identity;
CREATE SCHEMA IF NOT EXISTS analytics;

-- Persistent: one row per identity, never updated or deleted; customer_key never changes.
CREATE TABLE IF NOT EXISTS identity.customer_map (
    identity_key                   VARCHAR PRIMARY KEY, -- '<source>:<source customer id>' | 'guest:<email>' | 'friendbuy:<email>'
    customer_key                   VARCHAR NOT NULL,
    email_normalized_at_assignment VARCHAR,
    assigned_at                    TIMESTAMPTZ NOT NULL, -- the run's as_of
    run_id                         VARCHAR,
    identity_type                  VARCHAR NOT NULL,     -- customer_record | guest | friendbuy
    source                         VARCHAR,              -- customer_record: source instance id
    source_id                      VARCHAR,              -- customer_record: source customer id
    assigned_by                    VARCHAR NOT NULL      -- known_email | new_email | new_identity | friendbuy_customer_id
);

-- Persistent: every email ever seen on an identity, with the key it stands for; never updated or deleted.
CREATE TABLE IF NOT EXISTS identity.email_index (
    email_normalized VARCHAR PRIMARY KEY,
    customer_key     VARCHAR NOT NULL,
    first_seen_at    TIMESTAMPTZ NOT NULL,               -- the run's as_of
    run_id           VARCHAR,
    identity_key     VARCHAR NOT NULL                    -- the identity that brought the email in
);

-- The staged customer records the stage has processed (bookkeeping for incremental runs).
CREATE TABLE IF NOT EXISTS identity.record_state (
    customer_record_key VARCHAR NOT NULL,
    customer_key        VARCHAR NOT NULL,
    load_seq            BIGINT
);

-- Friendbuy parties (advocate, friend) of every staged referral event, resolved to a customer_key.
CREATE TABLE IF NOT EXISTS identity.referral_parties (
    event_key             VARCHAR NOT NULL,
    source                VARCHAR,
    kind                  VARCHAR,
    campaign_id           VARCHAR,
    occurred_at           TIMESTAMPTZ,
    referral_code         VARCHAR,
    coupon_code           VARCHAR,
    advocate_customer_id  VARCHAR,
    advocate_email        VARCHAR,
    advocate_customer_key VARCHAR,
    advocate_resolved_by  VARCHAR,  -- email | customer_key | source_customer_id | unknown_customer_id | ambiguous_customer_id
    friend_customer_id    VARCHAR,
    friend_email          VARCHAR,
    friend_customer_key   VARCHAR,
    friend_resolved_by    VARCHAR,
    load_seq              BIGINT
);

-- What the stage has processed of staging.orders (bookkeeping for incremental runs): 64-bit hashes
-- of the order key and of the identity the order named, and the staging version. Compact on purpose
-- (5M orders: three numbers each); it tells a later run which customers an order left.
CREATE TABLE IF NOT EXISTS identity.order_state (
    order_hash    UBIGINT NOT NULL,   -- hash(order_key)
    identity_hash UBIGINT,            -- hash(coalesce(customer_record_key, 'guest:' || email_normalized))
    load_seq      BIGINT
);

-- analytics.orders is a view: every staged order with the customer_key of its identity (its customer
-- record, else its guest email). Map entries never change, so the view is exact without a copy of
-- the orders; the identity run makes sure every staged order's identity is in the map.
CREATE OR REPLACE VIEW analytics.orders AS
SELECT o.order_key, o.source, o.source_order_id, m.customer_key, o.market_id, o.placed_at, o.status, o.currency,
       o.gross_amount, o.discount_amount, o.tax_amount, o.shipping_amount, o.refunded_amount, o.net_amount,
       o.coupon_codes, o.referral_code, o.attribution_id, o.ip_address, o.user_agent,
       o.order_number, o.channel, o.device_id, o.email_normalized, o.updated_at,
       o.source_type, o.customer_record_key, o.customer_record_key IS NULL AS is_guest, o.store, o.source_status,
       o.is_deleted,
       o.status NOT IN ('cancelled', 'declined', 'incomplete') AND NOT o.is_deleted AS counts_as_order,
       o.load_seq
FROM staging.orders o
LEFT JOIN identity.customer_map m ON m.identity_key = coalesce(o.customer_record_key, 'guest:' || o.email_normalized);

CREATE TABLE IF NOT EXISTS analytics.customers (
    customer_key           VARCHAR NOT NULL,
    email                  VARCHAR,
    email_canonical        VARCHAR,
    first_name             VARCHAR,
    last_name              VARCHAR,
    market_id              VARCHAR,
    sf_contact_id          VARCHAR,
    sf_account_id          VARCHAR,
    first_order_at         TIMESTAMPTZ,
    orders_count           BIGINT,
    net_revenue            DECIMAL(18,4),
    referral_code          VARCHAR,
    loyalty_points_balance BIGINT,   -- owned by the Yotpo pull; kept as is by this stage
    loyalty_vip_tier       VARCHAR,  -- owned by the Yotpo pull; kept as is by this stage
    email_normalized       VARCHAR,
    marketing_consent      BOOLEAN,
    created_at             TIMESTAMPTZ,
    source_record_keys     VARCHAR[],
    net_revenue_currency   VARCHAR,
    last_order_at          TIMESTAMPTZ,
    phone                  VARCHAR,
    country                VARCHAR,
    golden_record_key      VARCHAR,
    golden_source          VARCHAR,
    identity_keys          VARCHAR[],
    is_deleted             BOOLEAN,
    updated_at             TIMESTAMPTZ,
    load_seq               BIGINT     -- write sequence: the identity run that last (re)computed the row
);
CREATE SEQUENCE IF NOT EXISTS identity.customer_write_seq;
