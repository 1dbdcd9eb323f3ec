-- COUPON_REUSE (hold): a referral coupon (a friend incentive Friendbuy distributed) is used on a
-- second order (in placed_at order), or by a customer other than the friend it was issued to.
-- Parameters: $full (false: only the coupons in fraud_scope, every use of each).
WITH uses AS (
    SELECT order_key, market_id, campaign_id, advocate_customer_key, friend_customer_key, placed_at, coupon_code,
           row_number() OVER (PARTITION BY market_id, coupon_code ORDER BY placed_at, order_key) AS use_number,
           first(order_key) OVER (PARTITION BY market_id, coupon_code ORDER BY placed_at, order_key) AS first_order_key
    FROM analytics.referral_attribution
    WHERE attribution_method = 'coupon' AND coupon_code IS NOT NULL
      AND ($full OR coupon_code IN (SELECT value FROM fraud_scope WHERE kind = 'coupon'))
),
issued AS (   -- (of the coupons used above only)
    SELECT market_id, coupon_code, list(DISTINCT friend_key ORDER BY friend_key) FILTER (WHERE friend_key IS NOT NULL) AS issued_to
    FROM fb_events WHERE kind = 'friend_incentive' AND coupon_code IS NOT NULL
      AND coupon_code IN (SELECT coupon_code FROM uses)
    GROUP BY market_id, coupon_code
),
checked AS (
    SELECT u.*, coalesce(i.issued_to, []) AS issued_to,
           u.use_number > 1 AS second_use,
           len(coalesce(i.issued_to, [])) > 0 AND NOT list_contains(i.issued_to, u.friend_customer_key) AS other_customer
    FROM uses u LEFT JOIN issued i ON i.market_id = u.market_id AND i.coupon_code = u.coupon_code
)
SELECT 'COUPON_REUSE' AS rule, 'hold' AS severity, 'order' AS subject_type, order_key AS subject_key, market_id,
       campaign_id, advocate_customer_key AS advocate_key, friend_customer_key AS friend_key,
       to_json({'coupon_code': coupon_code, 'use_number': use_number, 'first_order_key': first_order_key,
                'issued_to': issued_to,
                'reasons': list_filter(['second_order', 'other_customer'],
                                       lambda k: (k = 'second_order' AND second_use) OR (k = 'other_customer' AND other_customer))}) AS evidence
FROM checked
WHERE second_use OR other_customer
