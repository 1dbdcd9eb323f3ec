-- Yotpo orders (POST /orders keyed by order_id = order_key). Status mapping (docs/sync.md):
-- placed → pending; paid, shipped, refunded, partially_refunded → paid (refunds travel separately as
-- POST /refunds); completed → completed; cancelled, declined, incomplete → cancelled.
-- Declined/incomplete orders are only sent when Yotpo already has them (to cancel them).
-- total_amount_cents = item subtotal after discounts (gross - discount), before refunds, tax and
-- shipping; refunds use the same basis.
SELECT o.order_key AS record_key,
       o.customer_key AS subject_key,
       o.order_key AS order_id,
       coalesce(nullif(trim(c.email), ''), o.email_normalized) AS customer_email,
       o.customer_key AS customer_id,
       CASE o.status WHEN 'placed' THEN 'pending'
                     WHEN 'completed' THEN 'completed'
                     WHEN 'cancelled' THEN 'cancelled'
                     WHEN 'declined' THEN 'cancelled'
                     WHEN 'incomplete' THEN 'cancelled'
                     ELSE 'paid' END AS status,
       CAST(round(greatest(o.gross_amount - coalesce(o.discount_amount, 0), 0) * 100) AS BIGINT) AS total_amount_cents,
       upper(o.currency) AS currency_code,
       strftime(timezone('UTC', o.placed_at), '%Y-%m-%dT%H:%M:%SZ') AS created_at,
       CAST(round(o.discount_amount * 100) AS BIGINT) AS discount_amount_cents,
       CAST(round(o.shipping_amount * 100) AS BIGINT) AS shipping_amount_cents,
       CAST(round(o.tax_amount * 100) AS BIGINT) AS tax_amount_cents,
       nullif(array_to_string(o.coupon_codes, ','), '') AS coupon_code,
       o.ip_address AS ip_address,
       o.user_agent AS user_agent
FROM analytics.orders o
LEFT JOIN analytics.customers c ON c.customer_key = o.customer_key
LEFT JOIN ops.sync_state st ON st.destination = $destination AND st.entity = $entity AND st.record_key = o.order_key
WHERE list_contains($markets, o.market_id)
  AND coalesce(nullif(trim(c.email), ''), o.email_normalized) IS NOT NULL
  AND (o.status NOT IN ('declined', 'incomplete') OR st.first_ok_at IS NOT NULL)
