-- TEMP attr_signals (incremental run): the values by which an order's attribution may have changed
-- since the last run (kinds as in attribution_signals_full.sql):
--   * orders whose row changed (analytics.orders.load_seq above the watermark: changed_order, their
--     rows in attr_changed_orders) or that moved across the as_of cut (placed between the previous
--     and this run's as_of);
--   * the signals of Friendbuy events that changed (analytics.referral_events.load_seq above the
--     watermark), in their new and old versions (ops.referral_events_replaced): incentive codes,
--     share/click codes, signed-up friends;
--   * attributed orders whose evidence event changed or is gone, or whose order is gone;
--   * purchase-row order ids that may name other orders now: those of changed purchase rows, those
--     equal to the key, number or source id of a changed order, and those that named more than one
--     order at their last evaluation (ops.purchase_multi_ids: a change of one of those orders can
--     make the id name exactly one; an id that named one order is re-evaluated through that order).
-- Inputs: analytics.orders, attr_present, attr_changed_orders (its rows above the orders mark),
-- analytics.referral_events, ops.referral_events_replaced,
-- analytics.referral_attribution, ops.purchase_multi_ids, fb_events.
-- Parameters: $events_wm, $as_of, $prev_as_of.
WITH changed_orders AS (   -- (two filters on columns of the order each, so a view can push them down)
    SELECT order_key, order_number, source_order_id FROM attr_changed_orders   -- (load_seq above the mark)
    UNION
    SELECT order_key, order_number, source_order_id FROM analytics.orders
    WHERE placed_at > least(CAST($as_of AS TIMESTAMPTZ), CAST($prev_as_of AS TIMESTAMPTZ))
      AND placed_at <= greatest(CAST($as_of AS TIMESTAMPTZ), CAST($prev_as_of AS TIMESTAMPTZ))
),
present AS (              -- attributed orders that still exist (attr_present: attribution.py)
    SELECT order_key FROM attr_present
),
changed_events AS (      -- new versions, and the old versions of rewritten or removed rows
    SELECT event_key, kind, coupon_code, lower(referral_code) AS code_lc, order_id, friend_customer_key AS friend_key
    FROM analytics.referral_events
    WHERE load_seq > $events_wm
    UNION ALL
    SELECT event_key, kind, coupon_code, lower(referral_code), order_id, friend_customer_key
    FROM ops.referral_events_replaced
    WHERE load_seq > $events_wm
),
purchases AS (
    SELECT order_id FROM fb_events WHERE kind = 'purchase' AND order_id IS NOT NULL
),
changed_ids AS (          -- what a purchase row may name on the changed orders
    SELECT unnest([order_key, order_number, source_order_id]) AS id FROM changed_orders
)
SELECT 'changed_order' AS kind, order_key AS value FROM attr_changed_orders
UNION
SELECT 'order_key', order_key FROM changed_orders WHERE order_key NOT IN (SELECT order_key FROM attr_changed_orders)
UNION
SELECT 'order_key', a.order_key FROM analytics.referral_attribution a
WHERE a.source_event_key IN (SELECT event_key FROM changed_events)
   OR a.source_event_key NOT IN (SELECT event_key FROM analytics.referral_events)
UNION
SELECT 'order_key', a.order_key FROM analytics.referral_attribution a WHERE a.order_key NOT IN (SELECT order_key FROM present)
UNION
SELECT 'coupon', coupon_code FROM changed_events WHERE kind = 'friend_incentive' AND coupon_code IS NOT NULL
UNION
SELECT 'ref_code', code_lc FROM changed_events WHERE kind IN ('share', 'click') AND code_lc IS NOT NULL
UNION
SELECT 'id', order_id FROM purchases WHERE order_id IN (SELECT id FROM changed_ids)
UNION
SELECT 'id', order_id FROM changed_events WHERE kind = 'purchase' AND order_id IS NOT NULL
UNION
SELECT 'id', order_id FROM ops.purchase_multi_ids
UNION
SELECT 'customer', friend_key FROM changed_events WHERE kind = 'signup' AND friend_key IS NOT NULL
