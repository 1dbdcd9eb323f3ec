-- Points balance and VIP tier of the pulled customers into analytics.customers (columns owned by the
-- Yotpo pull; the identity stage keeps them as they are). Only rows whose values differ are touched.
UPDATE analytics.customers AS c SET
    loyalty_points_balance = r.points_balance,
    loyalty_vip_tier = r.vip_tier
FROM pull_rows r
WHERE c.customer_key = r.customer_key
  AND r.found
  AND (c.loyalty_points_balance IS DISTINCT FROM r.points_balance OR c.loyalty_vip_tier IS DISTINCT FROM r.vip_tier)
