-- Friendbuy custom events (POST /v1/event/custom) for order refunds and cancellations, once per id:
-- deduplicationId = record_key = the refund or cancellation id (staging.refunds.refund_key; an order
-- cancelled with no cancellation row there, e.g. BigCommerce, gets '<order_key>:cancellation').
-- eventType 'refund' (kind refund, amount > 0) or 'cancellation'. Sent only after Friendbuy accepted
-- the order's purchase. Order id, amount (major units, as text), currency, market and campaign travel
-- in additionalProperties.
WITH events AS (
    SELECT r.refund_key AS id, r.order_key, r.kind, r.amount, r.currency
    FROM staging.refunds r
    WHERE (r.kind = 'refund' AND r.amount > 0) OR r.kind = 'cancellation'
    UNION ALL
    SELECT o.order_key || ':cancellation', o.order_key, 'cancellation',
           greatest(o.gross_amount - coalesce(o.discount_amount, 0) - coalesce(o.refunded_amount, 0), 0), o.currency
    FROM analytics.orders o
    WHERE o.status = 'cancelled'
      AND NOT EXISTS (SELECT 1 FROM staging.refunds r WHERE r.order_key = o.order_key AND r.kind = 'cancellation')
)
SELECT e.id           AS record_key,
       o.customer_key AS subject_key,
       e.id           AS deduplication_id,
       e.kind         AS event_type,
       coalesce(nullif(trim(c.email), ''), o.email_normalized) AS email,
       o.customer_key AS customer_id,
       e.order_key    AS order_id,
       CAST(CAST(round(e.amount, 2) AS DECIMAL(18, 2)) AS VARCHAR) AS amount,
       upper(coalesce(e.currency, o.currency)) AS currency,
       o.market_id    AS market,
       fc.campaign_id AS campaign_id
FROM events e
JOIN analytics.orders o ON o.order_key = e.order_key
JOIN friendbuy_campaigns fc ON fc.market_id = o.market_id
LEFT JOIN analytics.customers c ON c.customer_key = o.customer_key
JOIN ops.sync_state sp ON sp.destination = $destination AND sp.entity = 'purchases' AND sp.record_key = e.order_key
                      AND sp.first_ok_at IS NOT NULL
WHERE list_contains($markets, o.market_id)
