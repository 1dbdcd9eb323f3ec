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
    assigned_by                    VARCHAR NOT NULL,     -- known_email | new_email | new_identity | friendbuy_customer_id
    map_seq                        BIGINT                -- identity.map_seq of the run that added it (NULL: before it existed)
);

-- Persistent: every email ever seen on an identity, with the key it stands for; never updated or deleted.
CREATE TABLE IF NOT EXISTS identity.email_index (
    email_normalized VARCHAR PRIMARY KEY,
    customer_key     VARCHAR NOT NULL,
    first_seen_at    TIMESTAMPTZ NOT NULL,               -- the run's as_of
    run_id           VARCHAR,
    identity_key     VARCHAR NOT NULL,                   -- the identity that brought the email in
    map_seq          BIGINT                              -- identity.map_seq of the run that added it
);
-- One value per identity run that adds map or index rows: readers take the rows added since a mark
-- (the referral events stage re-resolves only the Friendbuy parties those rows can resolve).
CREATE SEQUENCE IF NOT EXISTS identity.map_seq;
ALTER TABLE identity.customer_map ADD COLUMN IF NOT EXISTS map_seq BIGINT;
ALTER TABLE identity.email_index ADD COLUMN IF NOT EXISTS map_seq BIGINT;

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
-- of the order key and of the identity the order named, the staging version, and the columns the
-- customers' order figures read. Compact on purpose (5M orders: a few numbers each, no strings
-- but two low-cardinality codes); it tells a later run which customers an order left, and the
-- figures of the customers a run recomputes come from it (a scan of these numbers instead of the
-- staged orders' keys). Rewritten from staging by the run after a layout change (runner.py).
CREATE TABLE IF NOT EXISTS identity.order_state (
    order_hash      UBIGINT NOT NULL,   -- hash(order_key)
    identity_hash   UBIGINT,            -- hash(coalesce(customer_record_key, 'guest:' || email_normalized))
    load_seq        BIGINT,
    currency        VARCHAR,
    market_id       VARCHAR,
    placed_at       TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ,
    net_amount      DECIMAL(18,4),
    counts_as_order BOOLEAN             -- status not cancelled / declined / incomplete, and not deleted
);

-- analytics.orders is a view: every staged order with the customer_key of its identity (its customer
-- record, else its guest email). Map entries never change, so the view is exact without a copy of
-- the orders; the identity run makes sure every staged order's identity is in the map.
-- (The column list over the staged order `o` and its map entry `m` is runner.ORDERS_SELECT, filled
-- in by the runner, so the view and identity.orders_of below stay one definition.)
CREATE OR REPLACE VIEW analytics.orders AS
SELECT {orders_select}
FROM staging.orders o
LEFT JOIN identity.customer_map m ON m.identity_key = coalesce(o.customer_record_key, 'guest:' || o.email_normalized);

-- The staged rows behind analytics.orders with the identity_key each names (its customer_map
-- entry), and the view's customer join over any relation of such rows: SELECT * FROM
-- identity.orders_of('t') is SELECT * FROM analytics.orders restricted to the orders of table t
-- (its rows: staging.orders' columns). The referral stages' incremental runs copy the few rows they
-- need from identity.staged_orders into a TEMP table and join that: the join then builds its hash
-- table on those rows (the optimizer knows their count) instead of on the 1M-row map, and needs no
-- customer at all for a lookup by order key, number or id.
CREATE OR REPLACE VIEW identity.staged_orders AS
SELECT *, coalesce(customer_record_key, 'guest:' || email_normalized) AS identity_key FROM staging.orders;
CREATE OR REPLACE MACRO identity.orders_of(t) AS TABLE
SELECT {orders_select}
FROM query_table(t) o
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
