-- TEMP attr_signals (incremental run): the values by which an order's attribution may have changed
-- since the last run (kinds as in attribution_signals_full.sql):
--   * orders whose row changed (analytics.orders.load_seq above the watermark) or that moved across
--     the as_of cut (placed between the previous and this run's as_of);
--   * the signals of Friendbuy events that changed (analytics.referral_events.load_seq above the
--     watermark), in their new and old versions (ops.referral_events_replaced): incentive codes,
--     share/click codes, signed-up friends;
--   * attributed orders whose evidence event changed or is gone, or whose order is gone;
--   * every purchase row's order id: whether a number names exactly one order depends on the other
--     orders with that number (one may have changed or gone), and the export is small, so purchase
--     rows are matched in full on every run.
-- Inputs: analytics.orders, analytics.referral_events, ops.referral_events_replaced,
-- analytics.referral_attribution, fb_events.
-- Parameters: $orders_wm, $events_wm, $as_of, $prev_as_of.
WITH changed_orders AS (   -- (two filters on columns of the order each, so a view can push them down)
    SELECT order_key FROM analytics.orders WHERE load_seq > $orders_wm
    UNION
    SELECT order_key FROM analytics.orders
    WHERE placed_at > least(CAST($as_of AS TIMESTAMPTZ), CAST($prev_as_of AS TIMESTAMPTZ))
      AND placed_at <= greatest(CAST($as_of AS TIMESTAMPTZ), CAST($prev_as_of AS TIMESTAMPTZ))
),
present AS (              -- attributed orders that still exist
    SELECT order_key FROM analytics.orders
    WHERE order_key IN (SELECT order_key FROM analytics.referral_attribution)
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
)
SELECT 'order_key' AS kind, order_key AS value FROM changed_orders
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
SELECT 'id', order_id FROM purchases
UNION
SELECT 'customer', friend_key FROM changed_events WHERE kind = 'signup' AND friend_key IS NOT NULL
