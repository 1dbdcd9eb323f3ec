-- TEMP attr_purchase_hits: which orders each Friendbuy purchase row may name (contracts §6): an
-- order whose order_key is the row's orderId (by_number 0), or whose source order number or id is
-- (by_number 1), in the row's market. Only purchase rows that may name an order evaluated by this
-- run; every order of any run with such an id counts, to see ambiguity.
-- Inputs: fb_events, ref_orders, analytics.orders.
WITH purchases AS (
    SELECT * FROM fb_events WHERE kind = 'purchase' AND order_id IS NOT NULL AND advocate_key IS NOT NULL
),
relevant_purchases AS (
    SELECT * FROM purchases
    WHERE order_id IN (SELECT order_key FROM ref_orders UNION ALL SELECT order_number FROM ref_orders
                       UNION ALL SELECT source_order_id FROM ref_orders)
),
id_orders AS (
    SELECT order_key, order_key AS matched_id, 0 AS by_number, market_id FROM analytics.orders
    WHERE order_key IN (SELECT order_id FROM relevant_purchases)
    UNION ALL
    SELECT order_key, order_number, 1, market_id FROM analytics.orders
    WHERE order_number IN (SELECT order_id FROM relevant_purchases)
    UNION ALL
    SELECT order_key, source_order_id, 1, market_id FROM analytics.orders
    WHERE source_order_id IN (SELECT order_id FROM relevant_purchases)
)
SELECT DISTINCT p.event_key, p.order_id, p.market_id, o.order_key, o.by_number
FROM relevant_purchases p JOIN id_orders o ON o.matched_id = p.order_id AND o.market_id = p.market_id
