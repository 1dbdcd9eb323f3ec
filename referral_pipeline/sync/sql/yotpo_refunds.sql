-- Yotpo refunds (POST /refunds keyed by id = refund_key), sent once per refund id, only after Yotpo
-- accepted the order (else Yotpo answers 404). Cancellations travel as the order's status instead.
-- Amounts on Yotpo's basis: the order went to Yotpo with the item subtotal after discounts
-- (gross - discount), while a source refund is part of what the shopper paid (subtotal + tax +
-- shipping). Each refund is scaled by subtotal / paid, cumulatively per order so rounding never
-- drifts and the refunds of a fully refunded order add up to exactly the order's Yotpo total.
WITH refunds AS (
    SELECT r.refund_key, r.order_key, r.amount, r.currency, o.customer_key, o.currency AS order_currency,
           greatest(o.gross_amount - coalesce(o.discount_amount, 0), 0) AS basis,
           greatest(o.gross_amount - coalesce(o.discount_amount, 0)
                    + coalesce(o.tax_amount, 0) + coalesce(o.shipping_amount, 0), 0) AS paid,
           sum(r.amount) OVER (PARTITION BY r.order_key ORDER BY r.created_at, r.refund_key) AS paid_refunded
    FROM staging.refunds r
    JOIN analytics.orders o ON o.order_key = r.order_key
    WHERE r.kind = 'refund' AND r.amount > 0 AND list_contains($markets, o.market_id)
), scaled AS (
    SELECT *, CAST(round(CASE WHEN paid > 0 THEN least(paid_refunded, paid) * basis / paid ELSE 0 END * 100) AS BIGINT)
              AS basis_refunded_cents
    FROM refunds
)
SELECT s.refund_key AS record_key,
       s.customer_key AS subject_key,
       s.refund_key AS id,
       s.order_key AS order_id,
       s.basis_refunded_cents - coalesce(lag(s.basis_refunded_cents) OVER (PARTITION BY s.order_key
                                         ORDER BY s.paid_refunded, s.refund_key), 0) AS total_amount_cents,
       upper(coalesce(s.currency, s.order_currency)) AS currency
FROM scaled s
JOIN ops.sync_state so ON so.destination = $destination AND so.entity = 'orders' AND so.record_key = s.order_key
                      AND so.first_ok_at IS NOT NULL
QUALIFY total_amount_cents > 0
