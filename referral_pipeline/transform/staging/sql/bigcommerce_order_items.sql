-- BigCommerce order line items -> staging.order_items (docs/sources/bigcommerce.md, "Order items").
-- Reads bc_orders: the result of bigcommerce_orders.sql over the same raw_delta (the plugin
-- prepends it as a CTE) and keeps only orders that are staged (no quarantine_reason): a
-- quarantined order's lines are covered by the order's quarantine row. Lines are the order's
-- consignment line items (shipping, pickup, download and gift-certificate consignments), as
-- structs whose fields are the API's values as text.
SELECT
    o.order_key || ':' || l.id AS order_item_key,
    o.order_key,
    $source AS source,
    nullif(l.sku, '') AS sku,
    l.name,
    parse_amount(l.quantity) AS quantity,
    parse_amount(l.price_ex_tax) AS unit_price,
    coalesce(parse_amount(l.total_ex_tax), parse_amount(l.price_ex_tax) * parse_amount(l.quantity)) AS total_price,
    o.currency,
    o.load_seq,
    o.order_key || ':' || l.id AS source_id,
    CAST(to_json(l) AS VARCHAR) AS raw_payload,
    NULL AS quarantine_reason,
    NULL AS quarantine_detail
FROM bc_orders o, unnest(o.lines) AS t(l)
WHERE o.quarantine_reason IS NULL
