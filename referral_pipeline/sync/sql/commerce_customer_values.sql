-- The referral values of every customer record of one commerce source instance (commercetools or
-- BigCommerce write-back, docs/sync.md "Commerce write-back"), as a temp table macro the entity SQL
-- (ct_customers.sql, bc_customers.sql) selects from: commerce_customer_values(<source instance id>).
-- Records: the instance's customer records in identity.customer_map that are staged and not deleted
-- (so the record exists at the source); values from the golden record of their customer_key:
--   referral_code          = analytics.customers.referral_code (the advocate's latest Friendbuy share code)
--   loyalty_points         = analytics.customers.loyalty_points_balance (the Yotpo pull)
--   referral_reward_status = status of the customer's most recent reward as advocate in analytics.rewards
--                            (latest by the friend's order placed_at, else created_at; ties by reward_key)
-- Only records with at least one value are returned (nothing to write otherwise).
CREATE OR REPLACE TEMP MACRO commerce_customer_values(source_id) AS TABLE
WITH records AS (
    SELECT m.source_id AS record_id, m.customer_key
    FROM identity.customer_map m
    JOIN staging.customers s ON s.customer_record_key = m.identity_key
    WHERE m.identity_type = 'customer_record' AND m.source = source_id AND NOT coalesce(s.is_deleted, false)
),
latest_reward AS (
    SELECT r.advocate_customer_key AS customer_key,
           arg_max(r.status, {'at': coalesce(r.placed_at, r.created_at), 'key': r.reward_key}) AS status
    FROM analytics.rewards r
    WHERE r.advocate_customer_key IN (SELECT customer_key FROM records)
    GROUP BY r.advocate_customer_key
)
SELECT r.record_id, r.customer_key, c.referral_code, l.status AS referral_reward_status,
       c.loyalty_points_balance AS loyalty_points
FROM records r
JOIN analytics.customers c ON c.customer_key = r.customer_key
LEFT JOIN latest_reward l ON l.customer_key = r.customer_key
WHERE c.referral_code IS NOT NULL OR l.status IS NOT NULL OR c.loyalty_points_balance IS NOT NULL
