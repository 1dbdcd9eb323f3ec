-- TEMP ref_orders: the orders (re-)evaluated by this run: those that carry one of the signals in
-- attr_signals (a coupon code, a referral code, an id a purchase row names, a signed-up customer)
-- or are named by it, in a market with a campaign. Each branch filters on one column of the
-- order, so a view analytics.orders only joins the matching rows. Inputs: analytics.orders,
-- attr_signals, program_rules.
WITH hits AS (
    SELECT * FROM analytics.orders
    WHERE order_key IN (SELECT value FROM attr_signals WHERE kind IN ('order_key', 'id'))
    UNION ALL
    SELECT * FROM analytics.orders
    WHERE order_number IN (SELECT value FROM attr_signals WHERE kind = 'id')
    UNION ALL
    SELECT * FROM analytics.orders
    WHERE source_order_id IN (SELECT value FROM attr_signals WHERE kind = 'id')
    UNION ALL
    SELECT * FROM analytics.orders
    WHERE referral_code IS NOT NULL
      AND lower(referral_code) IN (SELECT value FROM attr_signals WHERE kind = 'ref_code')
    UNION ALL
    SELECT * FROM analytics.orders
    WHERE order_key IN (SELECT order_key FROM (SELECT order_key, upper(trim(unnest(coupon_codes))) AS code
                                               FROM analytics.orders WHERE len(coupon_codes) > 0)
                        WHERE code IN (SELECT value FROM attr_signals WHERE kind = 'coupon'))
    UNION ALL
    SELECT * FROM analytics.orders
    WHERE customer_key IN (SELECT value FROM attr_signals WHERE kind = 'customer')
)
SELECT DISTINCT ON (order_key)
       order_key, source_order_id, order_number, customer_key, market_id, placed_at, status, currency,
       gross_amount, discount_amount, refunded_amount, net_amount, coupon_codes, referral_code, ip_address
FROM hits
WHERE market_id IN (SELECT market_id FROM program_rules)
