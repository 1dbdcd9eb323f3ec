-- commercetools order lines -> staging.order_items (docs/sources/commercetools.md, "Order items").
-- Reads ct_orders: the result of commercetools_orders.sql over the same raw_delta (the plugin
-- prepends it as a CTE), and keeps only orders that are staged (no quarantine_reason): a
-- quarantined order's lines are covered by the order's quarantine row. Line items and custom line
-- items alike (sku: variant.sku, custom lines: slug); name in the order's locale, else `en`, else
-- the first translation; amounts from minor units with the order's fraction digits.
SELECT
    o.order_key || ':' || l.id AS order_item_key,
    o.order_key,
    $source AS source,
    l.sku,
    l.name,
    l.qty AS quantity,
    minor_to_major(l.unit, o.digits) AS unit_price,
    minor_to_major(l.total, o.digits) AS total_price,
    o.currency,
    o.load_seq,
    o.order_key || ':' || l.id AS source_id,
    o.raw_payload,
    NULL AS quarantine_reason,
    NULL AS quarantine_detail
FROM ct_orders o, unnest(o.lines) AS t(l)
WHERE o.quarantine_reason IS NULL
