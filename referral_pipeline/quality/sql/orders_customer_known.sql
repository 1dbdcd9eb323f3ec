-- analytics.orders whose customer_key is not a row of analytics.customers.
SELECT o.order_key, o.customer_key
FROM analytics.orders o
ANTI JOIN analytics.customers c ON c.customer_key = o.customer_key
WHERE o.customer_key IS NOT NULL
