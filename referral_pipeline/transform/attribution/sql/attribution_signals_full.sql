-- TEMP attr_signals (full run): every value by which an order can be referred. kind:
--   coupon    a friend-incentive code Friendbuy distributed (upper case)
--   ref_code  a referral code of a share (lower case)
--   id        an order id a Friendbuy purchase row names (order_key, order number or source id)
--   customer  a customer who signed up through a referral
--   order_key an order to re-evaluate whatever it carries (incremental runs only)
--   changed_order  the same, for an order whose row changed since the last run (incremental runs
--             only; its row is in attr_changed_orders, so referral_orders.sql need not look it up)
-- Input: fb_events.
SELECT DISTINCT 'coupon' AS kind, coupon_code AS value FROM fb_events WHERE kind = 'friend_incentive' AND coupon_code IS NOT NULL
UNION ALL
SELECT DISTINCT 'ref_code', code_lc FROM fb_events WHERE kind = 'share' AND code_lc IS NOT NULL
UNION ALL
SELECT DISTINCT 'id', order_id FROM fb_events WHERE kind = 'purchase' AND order_id IS NOT NULL
UNION ALL
SELECT DISTINCT 'customer', friend_key FROM fb_events WHERE kind = 'signup' AND friend_key IS NOT NULL
