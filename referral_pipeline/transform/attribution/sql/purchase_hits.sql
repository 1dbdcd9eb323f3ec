-- TEMP attr_purchase_hits: which orders each Friendbuy purchase row may name (contracts §6): an
-- order whose order_key is the row's orderId (by_number 0), or whose source order number or id is
-- (by_number 1), in the row's market. Only purchase rows that may name an order evaluated by this
-- run (attr_purchase_rows, purchase_rows.sql); every order of any run with such an id counts, to
-- see ambiguity. Inputs: attr_purchase_rows, order_ids (analytics.orders without the customer join).
WITH id_orders AS (
    SELECT order_key, order_key AS matched_id, 0 AS by_number, market_id FROM order_ids
    WHERE order_key IN (SELECT order_id FROM attr_purchase_rows)
    UNION ALL
    SELECT order_key, order_number, 1, market_id FROM order_ids
    WHERE order_number IN (SELECT order_id FROM attr_purchase_rows)
    UNION ALL
    SELECT order_key, source_order_id, 1, market_id FROM order_ids
    WHERE source_order_id IN (SELECT order_id FROM attr_purchase_rows)
)
SELECT DISTINCT p.event_key, p.order_id, p.market_id, o.order_key, o.by_number
FROM attr_purchase_rows p JOIN id_orders o ON o.matched_id = p.order_id AND o.market_id = p.market_id
