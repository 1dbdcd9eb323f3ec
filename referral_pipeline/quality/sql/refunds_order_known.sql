-- staging.refunds whose order is not in staging.orders (usually: the order is quarantined).
SELECT r.refund_key, r.order_key
FROM staging.refunds r
ANTI JOIN staging.orders o ON o.order_key = r.order_key
WHERE r.order_key IS NOT NULL
