-- Salesforce OrderItems (Order Products) -> staging.order_items (docs/sources/salesforce.md, "Order items").
-- Input: raw_delta over raw.<source>__order_item; parameter $source (source instance id).
-- Each item is staged on its own (items of a quarantined order still stage; downstream joins
-- staging.orders). currency is the item's CurrencyIsoCode, which a multi-currency org copies
-- from the order. Deleted items (IsDeleted) are left out: staging.order_items has no
-- is_deleted column (see the doc's "Open points").
WITH src AS (
    SELECT pk, stamp, payload, load_seq,
           json_transform(payload, '{"OrderId": "VARCHAR", "SKU__c": "VARCHAR", "Product_Name__c": "VARCHAR",
               "Quantity": "VARCHAR", "UnitPrice": "VARCHAR", "TotalPrice": "VARCHAR",
               "CurrencyIsoCode": "VARCHAR", "IsDeleted": "VARCHAR"}') AS j
    FROM raw_delta
),
fields AS (
    SELECT pk, stamp, payload, load_seq,
           nullif(trim(j.OrderId), '') AS order_id,
           nullif(trim(j.SKU__c), '') AS sku,
           nullif(trim(j.Product_Name__c), '') AS name,
           nullif(upper(trim(j.CurrencyIsoCode)), '') AS currency,
           j.Quantity AS quantity_raw, j.UnitPrice AS unit_raw, j.TotalPrice AS total_raw,
           coalesce(TRY_CAST(j.IsDeleted AS BOOLEAN), FALSE) AS is_deleted
    FROM src
),
live AS (
    SELECT *, [quantity_raw, unit_raw, total_raw] AS numbers FROM fields WHERE NOT is_deleted
),
checked AS (
    SELECT *,
           CASE
               WHEN order_id IS NULL OR quantity_raw IS NULL OR unit_raw IS NULL THEN 'missing_required_field'
               WHEN list_bool_or(list_transform(numbers, lambda t: is_non_finite(t))) THEN 'non_finite_amount'
               WHEN list_bool_or(list_transform(numbers, lambda t: t IS NOT NULL AND parse_amount(t) IS NULL))
                    THEN 'unparseable_amount'
               WHEN list_bool_or(list_transform(numbers, lambda t: coalesce(parse_amount(t) < 0, FALSE)))
                    THEN 'negative_amount'
               WHEN currency IS NOT NULL AND NOT EXISTS (SELECT 1 FROM staging.currencies c WHERE c.code = currency)
                    THEN 'unknown_currency'
               WHEN has_bad_text(payload) THEN 'invalid_text'
               WHEN too_long(sku, 1000) OR too_long(name, 1000) THEN 'field_too_long'
           END AS quarantine_reason
    FROM live
)
SELECT CAST($source AS VARCHAR) || ':' || coalesce(order_id, '') || ':' || pk AS order_item_key,
       CAST($source AS VARCHAR) || ':' || coalesce(order_id, '') AS order_key,
       CAST($source AS VARCHAR) AS source,
       sku,
       name,
       parse_amount(quantity_raw) AS quantity,
       parse_amount(unit_raw) AS unit_price,
       coalesce(parse_amount(total_raw), parse_amount(quantity_raw) * parse_amount(unit_raw)) AS total_price,
       currency,
       load_seq,
       pk AS source_id,
       payload AS raw_payload,
       quarantine_reason,
       CASE quarantine_reason
           WHEN 'missing_required_field' THEN 'OrderId, Quantity or UnitPrice is missing'
           WHEN 'non_finite_amount' THEN 'Quantity ' || coalesce(quantity_raw, '-') || ', UnitPrice ' || coalesce(unit_raw, '-') || ', TotalPrice ' || coalesce(total_raw, '-')
           WHEN 'unparseable_amount' THEN 'Quantity ' || coalesce(quantity_raw, '-') || ', UnitPrice ' || coalesce(unit_raw, '-') || ', TotalPrice ' || coalesce(total_raw, '-')
           WHEN 'negative_amount' THEN 'Quantity ' || coalesce(quantity_raw, '-') || ', UnitPrice ' || coalesce(unit_raw, '-') || ', TotalPrice ' || coalesce(total_raw, '-')
           WHEN 'unknown_currency' THEN 'CurrencyIsoCode ' || currency
           WHEN 'invalid_text' THEN 'a text field holds U+FFFD or a lone surrogate'
           WHEN 'field_too_long' THEN 'SKU__c or Product_Name__c is longer than 1000 characters'
       END AS quarantine_detail
FROM checked
