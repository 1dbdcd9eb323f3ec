-- analytics.customers: one golden row per customer_key (docs/identity.md, "analytics.customers"),
-- recomputed for the affected keys only (all keys on a rebuild or a programs change).
-- Parameters: $precedence (system_of_record_precedence, source types or source ids), $write_seq (this
-- run's value of identity.customer_write_seq, stamped on every row it writes).
-- Temp tables from the runner: id_market_hints(kind, source, store, country, market_id),
-- id_market_currency(market_id, currency).

-- step: affected_after
-- (the identities of changed records, changed orders and new Friendbuy emails in one read of the map)
INSERT INTO affected
SELECT customer_key FROM assigned
UNION ALL
SELECT m.customer_key FROM identity.customer_map m
WHERE m.identity_key IN (SELECT customer_record_key FROM d_records
                         UNION ALL SELECT coalesce(customer_record_key, 'guest:' || email_normalized) FROM d_orders
                         UNION ALL SELECT 'friendbuy:' || email FROM fb_new)
UNION ALL
SELECT unnest([advocate_customer_key, friend_customer_key]) FROM identity.referral_parties
WHERE event_key IN (SELECT event_key FROM d_events);

-- step: affected_all
CREATE OR REPLACE TEMP TABLE affected AS SELECT DISTINCT customer_key FROM identity.customer_map;

-- step: affected_keys
CREATE OR REPLACE TEMP TABLE affected_keys AS
SELECT DISTINCT customer_key FROM affected WHERE customer_key IS NOT NULL;

-- step: keep_loyalty
CREATE OR REPLACE TEMP TABLE kept_loyalty AS
SELECT c.customer_key, c.loyalty_points_balance, c.loyalty_vip_tier
FROM analytics.customers c SEMI JOIN affected_keys k ON k.customer_key = c.customer_key
WHERE c.loyalty_points_balance IS NOT NULL OR c.loyalty_vip_tier IS NOT NULL;

-- step: customers_delete
DELETE FROM analytics.customers WHERE customer_key IN (SELECT customer_key FROM affected_keys);

-- step: customers_insert
INSERT INTO analytics.customers (
    customer_key, email, email_canonical, first_name, last_name, market_id, sf_contact_id, sf_account_id,
    first_order_at, orders_count, net_revenue, referral_code, loyalty_points_balance, loyalty_vip_tier,
    email_normalized, marketing_consent, created_at, source_record_keys,
    net_revenue_currency, last_order_at, phone, country, golden_record_key, golden_source, identity_keys,
    is_deleted, updated_at, load_seq)
WITH affected_map AS MATERIALIZED (   -- (the map entries of the affected keys, read once)
    SELECT m.identity_key, m.customer_key, m.identity_type, m.email_normalized_at_assignment
    FROM identity.customer_map m SEMI JOIN affected_keys k ON k.customer_key = m.customer_key
),
ids AS (
    SELECT m.customer_key,
           list_sort(list(m.identity_key)) AS identity_keys,
           -- for keys without a staged record that has an email: the email of their first identity
           -- (by identity key, so it does not depend on the order in which identities arrived)
           arg_min(m.email_normalized_at_assignment, m.identity_key)
               FILTER (WHERE m.email_normalized_at_assignment IS NOT NULL) AS fallback_email
    FROM affected_map m
    GROUP BY m.customer_key
),
recs AS (
    -- the staged records of each key with their rank (smallest best: not deleted, system-of-record
    -- precedence, latest update) and the market their store, source or country points to
    -- (a staged record's key is its identity in the map: record_state holds the same pairs)
    SELECT s.customer_key, c.*,
           coalesce(hs.market_id, hsrc.market_id, hc.market_id) AS hint_market,
           identity_record_rank(c.is_deleted,
                                coalesce(list_position($precedence, c.source_type), list_position($precedence, c.source), 1000),
                                c.updated_at, c.customer_record_key) AS rnk
    FROM affected_map s
    JOIN staging.customers c ON c.customer_record_key = s.identity_key
    LEFT JOIN id_market_hints hs ON hs.kind = 'store' AND hs.source = c.source AND hs.store = c.store
    LEFT JOIN id_market_hints hsrc ON hsrc.kind = 'source' AND hsrc.source = c.source
    LEFT JOIN id_market_hints hc ON hc.kind = 'country' AND hc.country = lower(trim(c.country))
),
golden AS (
    -- each golden field from the best record that has it (name as one field: first and last
    -- together; email raw and normalized together; Salesforce contact and account together)
    SELECT customer_key,
           arg_min(customer_record_key, rnk) AS golden_record_key,
           arg_min(source, rnk) AS golden_source,
           arg_min(first_name, rnk) FILTER (WHERE first_name IS NOT NULL OR last_name IS NOT NULL) AS first_name,
           arg_min(last_name, rnk) FILTER (WHERE first_name IS NOT NULL OR last_name IS NOT NULL) AS last_name,
           arg_min(coalesce(email_raw, email_normalized), rnk) FILTER (WHERE email_normalized IS NOT NULL) AS email,
           arg_min(email_normalized, rnk) FILTER (WHERE email_normalized IS NOT NULL) AS email_normalized,
           arg_min(marketing_consent, rnk) FILTER (WHERE marketing_consent IS NOT NULL) AS marketing_consent,
           arg_min(phone, rnk) FILTER (WHERE phone IS NOT NULL) AS phone,
           arg_min(country, rnk) FILTER (WHERE country IS NOT NULL) AS country,
           arg_min(hint_market, rnk) FILTER (WHERE hint_market IS NOT NULL) AS hint_market,
           arg_min(source_customer_id, rnk) FILTER (WHERE source_type = 'salesforce') AS sf_contact_id,
           arg_min(sf_account_id, rnk) FILTER (WHERE source_type = 'salesforce') AS sf_account_id,
           list_sort(list(customer_record_key)) AS source_record_keys,
           bool_and(is_deleted) AS is_deleted,
           min(created_at) AS created_at,
           max(updated_at) AS updated_at
    FROM recs GROUP BY customer_key
),
order_identities AS (
    -- the identities orders name (customer records and guest emails) of the affected keys, hashed
    -- as identity.order_state holds them
    SELECT hash(m.identity_key) AS identity_hash, m.customer_key FROM affected_map m
    WHERE m.identity_type IN ('customer_record', 'guest')
),
orders_of AS (
    -- the orders of those identities as this run left identity.order_state (orders.sql runs
    -- first): the columns of staging.orders the figures need
    SELECT i.customer_key, o.currency, o.market_id, o.placed_at, o.net_amount, o.updated_at,
           identity_order_rank_of_hash(o.placed_at, o.order_hash) AS order_rank, o.counts_as_order
    FROM identity.order_state o
    JOIN order_identities i ON i.identity_hash = o.identity_hash
),
orders_by_currency AS MATERIALIZED (
    SELECT o.customer_key, o.currency,
           count(*) FILTER (WHERE o.counts_as_order) AS orders_count,
           min(o.placed_at) FILTER (WHERE o.counts_as_order) AS first_order_at,
           max(o.placed_at) FILTER (WHERE o.counts_as_order) AS last_order_at,
           arg_min(o.market_id, o.order_rank) FILTER (WHERE o.counts_as_order) AS first_order_market,
           min(o.order_rank) FILTER (WHERE o.counts_as_order) AS first_order_rank,
           sum(o.net_amount) FILTER (WHERE o.counts_as_order) AS net_revenue,
           min(o.placed_at) AS first_any_order_at,
           max(o.updated_at) AS updated_at
    FROM orders_of o
    GROUP BY o.customer_key, o.currency
),
orders_agg AS (
    SELECT customer_key,
           sum(orders_count) AS orders_count,
           min(first_order_at) AS first_order_at,
           max(last_order_at) AS last_order_at,
           arg_min(first_order_market, first_order_rank) FILTER (WHERE orders_count > 0) AS first_order_market,
           arg_min(currency, first_order_rank) FILTER (WHERE orders_count > 0) AS first_order_currency,
           min(first_any_order_at) AS first_any_order_at,
           max(updated_at) AS updated_at
    FROM orders_by_currency GROUP BY customer_key
),
events AS (
    SELECT customer_key,
           min(occurred_at) AS first_event_at,
           arg_max(referral_code, {'at': occurred_at, 'key': event_key})
               FILTER (WHERE is_share AND referral_code IS NOT NULL) AS referral_code
    FROM (SELECT p.advocate_customer_key AS customer_key, p.occurred_at, p.event_key, p.referral_code,
                 p.kind = 'share' AS is_share
          FROM identity.referral_parties p SEMI JOIN affected_keys k ON k.customer_key = p.advocate_customer_key
          UNION ALL
          SELECT p.friend_customer_key, p.occurred_at, p.event_key, NULL, FALSE
          FROM identity.referral_parties p SEMI JOIN affected_keys k ON k.customer_key = p.friend_customer_key)
    GROUP BY customer_key
),
assembled AS (
    SELECT k.customer_key, i.identity_keys, i.fallback_email, g.* EXCLUDE (customer_key, updated_at, created_at),
           g.created_at AS record_created_at, g.updated_at AS record_updated_at,
           o.orders_count, o.first_order_at, o.last_order_at, o.first_any_order_at, o.updated_at AS order_updated_at,
           coalesce(o.first_order_market, g.hint_market) AS market_id,
           o.first_order_currency,
           e.referral_code, e.first_event_at
    FROM affected_keys k
    JOIN ids i ON i.customer_key = k.customer_key
    LEFT JOIN golden g ON g.customer_key = k.customer_key
    LEFT JOIN orders_agg o ON o.customer_key = k.customer_key
    LEFT JOIN events e ON e.customer_key = k.customer_key
),
with_currency AS (
    SELECT a.*, coalesce(mc.currency, a.first_order_currency) AS net_revenue_currency
    FROM assembled a LEFT JOIN id_market_currency mc ON mc.market_id = a.market_id
)
SELECT w.customer_key,
       coalesce(w.email, w.fallback_email) AS email,
       email_canonical_of_normalized(coalesce(w.email_normalized, w.fallback_email)) AS email_canonical,
       w.first_name,
       w.last_name,
       w.market_id,
       w.sf_contact_id,
       w.sf_account_id,
       w.first_order_at,
       coalesce(w.orders_count, 0) AS orders_count,
       CAST(coalesce(oc.net_revenue, 0) AS DECIMAL(18,4)) AS net_revenue,
       w.referral_code,
       kl.loyalty_points_balance,
       kl.loyalty_vip_tier,
       coalesce(w.email_normalized, w.fallback_email) AS email_normalized,
       w.marketing_consent,
       least(w.record_created_at, w.first_any_order_at, w.first_event_at) AS created_at,
       coalesce(w.source_record_keys, CAST([] AS VARCHAR[])) AS source_record_keys,
       w.net_revenue_currency,
       w.last_order_at,
       w.phone,
       w.country,
       w.golden_record_key,
       w.golden_source,
       w.identity_keys,
       coalesce(w.is_deleted, FALSE) AS is_deleted,
       greatest(w.record_updated_at, w.order_updated_at) AS updated_at,
       CAST($write_seq AS BIGINT) AS load_seq
FROM with_currency w
LEFT JOIN orders_by_currency oc ON oc.customer_key = w.customer_key AND oc.currency = w.net_revenue_currency
LEFT JOIN kept_loyalty kl ON kl.customer_key = w.customer_key;
