-- Order lines of the orders in the delta only (not hashed: an order is re-sent when its status changes).
SELECT d.*, i.items
FROM sync_delta_base d
LEFT JOIN (
    SELECT oi.order_key,
           list(struct_pack(id := coalesce(oi.sku, oi.order_item_key), name := oi.name,
                            quantity := CAST(greatest(round(oi.quantity), 1) AS BIGINT),
                            price_cents := CAST(round(coalesce(oi.unit_price, oi.total_price / nullif(oi.quantity, 0), 0) * 100) AS BIGINT))
                ORDER BY oi.order_item_key) AS items
    FROM staging.order_items oi
    WHERE oi.order_key IN (SELECT record_key FROM sync_delta_base)
    GROUP BY oi.order_key
) i ON i.order_key = d.record_key
