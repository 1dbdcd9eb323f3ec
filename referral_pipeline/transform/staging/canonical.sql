-- Canonical staging tables: one shape for every source (docs/staging.md describes each column).
-- Money is DECIMAL(18,4) in major units (minor units converted per currency/fractionDigits).

CREATE TABLE IF NOT EXISTS staging.customers (
    customer_record_key VARCHAR PRIMARY KEY,   -- '<source>:<source_customer_id>'
    source              VARCHAR NOT NULL,      -- source instance id (programs.yaml)
    source_type         VARCHAR NOT NULL,      -- salesforce | commercetools | bigcommerce
    source_customer_id  VARCHAR NOT NULL,
    email_raw           VARCHAR,
    email_normalized    VARCHAR,               -- lower(trim(email))
    first_name          VARCHAR,
    last_name           VARCHAR,
    phone               VARCHAR,
    marketing_consent   BOOLEAN,
    country             VARCHAR,
    store               VARCHAR,               -- commercetools store key / BigCommerce channel, when known
    sf_account_id       VARCHAR,
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    is_deleted          BOOLEAN NOT NULL DEFAULT FALSE,
    load_seq            BIGINT
);

CREATE TABLE IF NOT EXISTS staging.orders (
    order_key           VARCHAR PRIMARY KEY,   -- '<source>:<source_order_id>'
    source              VARCHAR NOT NULL,
    source_type         VARCHAR NOT NULL,
    source_order_id     VARCHAR NOT NULL,
    order_number        VARCHAR,               -- shopper-visible number
    customer_record_key VARCHAR,               -- '<source>:<source customer id>' when the order names one
    email_normalized    VARCHAR,               -- buyer email on the order, when present
    market_id           VARCHAR NOT NULL,
    store               VARCHAR,
    placed_at           TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ,
    status              VARCHAR NOT NULL,      -- placed paid shipped completed cancelled refunded partially_refunded declined incomplete
    source_status       VARCHAR,
    currency            VARCHAR NOT NULL,
    gross_amount        DECIMAL(18,4) NOT NULL, -- item subtotal before discounts, tax, shipping
    discount_amount     DECIMAL(18,4) NOT NULL,
    tax_amount          DECIMAL(18,4) NOT NULL,
    shipping_amount     DECIMAL(18,4) NOT NULL,
    refunded_amount     DECIMAL(18,4) NOT NULL,
    net_amount          DECIMAL(18,4) NOT NULL, -- gross - discount - refunded (product §7)
    coupon_codes        VARCHAR[],             -- upper-cased
    referral_code       VARCHAR,
    attribution_id      VARCHAR,
    ip_address          VARCHAR,
    user_agent          VARCHAR,
    device_id           VARCHAR,
    channel             VARCHAR,
    is_deleted          BOOLEAN NOT NULL DEFAULT FALSE,
    load_seq            BIGINT
);

CREATE TABLE IF NOT EXISTS staging.order_items (
    order_item_key  VARCHAR PRIMARY KEY,       -- '<source>:<order id>:<line id>'
    order_key       VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,
    sku             VARCHAR,
    name            VARCHAR,
    quantity        DECIMAL(18,4),
    unit_price      DECIMAL(18,4),
    total_price     DECIMAL(18,4),
    currency        VARCHAR,
    load_seq        BIGINT
);

CREATE TABLE IF NOT EXISTS staging.refunds (
    refund_key       VARCHAR PRIMARY KEY,      -- '<source>:<refund id>'
    order_key        VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,
    source_refund_id VARCHAR NOT NULL,
    amount           DECIMAL(18,4) NOT NULL,
    currency         VARCHAR,
    created_at       TIMESTAMPTZ NOT NULL,
    reason           VARCHAR,
    kind             VARCHAR NOT NULL,         -- refund | cancellation
    load_seq         BIGINT
);

CREATE TABLE IF NOT EXISTS staging.coupons (
    coupon_key      VARCHAR PRIMARY KEY,       -- '<source>:<platform id>'
    source          VARCHAR NOT NULL,
    code            VARCHAR NOT NULL,          -- upper-cased
    source_id       VARCHAR NOT NULL,
    is_active       BOOLEAN,
    max_uses        INTEGER,                   -- NULL = unlimited
    uses            INTEGER,
    valid_from      TIMESTAMPTZ,
    valid_until     TIMESTAMPTZ,
    requires_code   BOOLEAN,
    currency        VARCHAR,
    store           VARCHAR,
    name            VARCHAR,
    load_seq        BIGINT
);

-- Friendbuy referral activity (analytics exports), one table per event kind, common columns.
CREATE TABLE IF NOT EXISTS staging.referral_events (
    event_key             VARCHAR PRIMARY KEY, -- '<fb instance>:<kind>:<raw pk>'
    source                VARCHAR NOT NULL,    -- Friendbuy instance id
    kind                  VARCHAR NOT NULL,    -- share click signup purchase advocate_reward friend_incentive widget_view
    campaign_id           VARCHAR,
    occurred_at           TIMESTAMPTZ NOT NULL,
    advocate_customer_id  VARCHAR,             -- Friendbuy customerId of the advocate (our customer id as pushed)
    advocate_email        VARCHAR,             -- normalized
    friend_customer_id    VARCHAR,
    friend_email          VARCHAR,             -- normalized
    referral_code         VARCHAR,
    coupon_code           VARCHAR,             -- upper-cased
    order_id              VARCHAR,
    amount                DECIMAL(18,4),
    currency              VARCHAR,
    channel               VARCHAR,
    ip_address            VARCHAR,
    user_agent            VARCHAR,
    new_customer          BOOLEAN,
    reward_type           VARCHAR,
    load_seq              BIGINT
);

CREATE TABLE IF NOT EXISTS ops.stage_progress (
    stage        VARCHAR PRIMARY KEY,  -- '<raw table> -> <staging table>'
    last_seq     BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
