-- Yotpo refunds (POST /refunds keyed by id = refund_key), sent once per refund id, only after Yotpo
-- accepted the order (else Yotpo answers 404). Cancellations travel as the order's status instead.
SELECT r.refund_key AS record_key,
       o.customer_key AS subject_key,
       r.refund_key AS id,
       r.order_key AS order_id,
       CAST(round(r.amount * 100) AS BIGINT) AS total_amount_cents,
       upper(coalesce(r.currency, o.currency)) AS currency
FROM staging.refunds r
JOIN analytics.orders o ON o.order_key = r.order_key
JOIN ops.sync_state so ON so.destination = $destination AND so.entity = 'orders' AND so.record_key = r.order_key
                      AND so.first_ok_at IS NOT NULL
WHERE r.kind = 'refund'
  AND r.amount > 0
  AND list_contains($markets, o.market_id)
