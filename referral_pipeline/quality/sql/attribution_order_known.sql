-- analytics.referral_attribution rows whose order is not in analytics.orders.
SELECT a.order_key, a.advocate_customer_key
FROM analytics.referral_attribution a
ANTI JOIN analytics.orders o ON o.order_key = a.order_key
WHERE a.order_key IS NOT NULL
