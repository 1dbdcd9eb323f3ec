-- TEMP attr_purchase_rows: the Friendbuy purchase rows that may name an order evaluated by this run
-- (their orderId is the key, number or source id of an order in ref_orders). Inputs: fb_events,
-- ref_orders. When there are none, purchase_hits.sql is not run.
WITH ids AS (
    SELECT order_key AS id FROM ref_orders UNION SELECT order_number FROM ref_orders
    UNION SELECT source_order_id FROM ref_orders
)
SELECT event_key, order_id, market_id FROM fb_events
WHERE kind = 'purchase' AND order_id IS NOT NULL AND advocate_key IS NOT NULL AND order_id IN (SELECT id FROM ids)
