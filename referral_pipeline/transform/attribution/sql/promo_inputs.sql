-- TEMP promo_inputs: per code Friendbuy distributed, a digest of every input row the validation
-- of that code reads (its distributing events, the platform coupons with its text): the xor of a
-- hash of each row's columns that the validation reads. A row added, changed or removed changes
-- its code's digest.
-- Inputs: analytics.referral_events, staging.coupons.
WITH dist AS (
    SELECT coupon_code AS code, hash(event_key, kind, market_id, campaign_id, occurred_at) AS h
    FROM analytics.referral_events
    WHERE kind IN ('friend_incentive', 'advocate_reward') AND coupon_code IS NOT NULL
),
platform AS (
    SELECT upper(trim(code)) AS code,
           hash(coupon_key, source, code, is_active, max_uses, requires_code, valid_from, valid_until, currency, store, name) AS h
    FROM staging.coupons
    WHERE upper(trim(code)) IN (SELECT code FROM dist)
)
SELECT code, bit_xor(h) AS digest, count(*) AS rows
FROM (SELECT * FROM dist UNION ALL SELECT * FROM platform)
GROUP BY code
