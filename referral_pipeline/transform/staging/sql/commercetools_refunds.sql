-- commercetools refunds and cancellations -> staging.refunds (docs/sources/commercetools.md, "Refunds").
-- Reads ct_orders: the result of commercetools_orders.sql over the same raw_delta (the plugin
-- prepends it as a CTE); only staged orders (no quarantine_reason).
-- * refund: one row per return item whose paymentState is Refunded (returnInfo[].items[]); id =
--   the return item id; amount = the returned share of its line's total after discounts (whole
--   minor units); created_at = the return item's createdAt, else the return's returnDate.
-- * cancellation: one row per order whose orderState is Cancelled; id = '<order id>:cancellation';
--   amount = the order's item value after discounts and refunds (what the cancellation takes
--   back, same basis as net_amount); created_at = the order's lastModifiedAt (the API keeps no
--   cancellation time).
SELECT
    $source || ':' || r.id AS refund_key,
    o.order_key,
    $source AS source,
    r.id AS source_refund_id,
    minor_to_major(r.amount_minor, o.digits) AS amount,
    o.currency,
    r.created_at,
    coalesce(r.comment, 'return') AS reason,
    'refund' AS kind,
    o.load_seq,
    r.id AS source_id,
    o.raw_payload,
    NULL AS quarantine_reason,
    NULL AS quarantine_detail
FROM ct_orders o, unnest(o.refund_items) AS t(r)
WHERE o.quarantine_reason IS NULL
UNION ALL
SELECT
    $source || ':' || o.source_order_id || ':cancellation' AS refund_key,
    o.order_key,
    $source AS source,
    o.source_order_id || ':cancellation' AS source_refund_id,
    minor_to_major(o.gross_minor - o.discount_minor - o.refunded_minor, o.digits) AS amount,
    o.currency,
    coalesce(o.updated_at, o.placed_at) AS created_at,
    'order cancelled' AS reason,
    'cancellation' AS kind,
    o.load_seq,
    o.source_order_id || ':cancellation' AS source_id,
    o.raw_payload,
    NULL AS quarantine_reason,
    NULL AS quarantine_detail
FROM ct_orders o
WHERE o.quarantine_reason IS NULL AND o.order_state = 'Cancelled'
