-- BigCommerce v2 orders -> staging.orders (docs/sources/bigcommerce.md, "Orders").
-- Input: raw_delta over raw.<source>__orders; parameter $source (source instance id).
-- Each payload is parsed once with json_transform into a struct of the fields the mapping reads
-- (every leaf as text, so a malformed value is seen as sent; lenient: a value of the wrong shape
-- becomes NULL). Money arrives as decimal strings in major units ("336.3200") and is cast once to
-- DECIMAL(18,4); dates are RFC 2822. The line items are the consignments' line items (include=
-- consignments.line_items; also the older list form, or an embedded products list), the coupons
-- the order's coupons sub-resource embedded at extraction. The result also carries the helper
-- column `lines` that bigcommerce_order_items.sql reads (as bc_orders), so orders and their items
-- agree on which orders are quarantined.
WITH src AS (
    SELECT pk, stamp, load_seq, payload,
        json_transform(payload, '{
            "customer_id": "VARCHAR", "date_created": "VARCHAR", "status_id": "VARCHAR", "status": "VARCHAR",
            "custom_status": "VARCHAR", "currency_code": "VARCHAR", "channel_id": "VARCHAR", "order_source": "VARCHAR",
            "ip_address": "VARCHAR", "ip_address_v6": "VARCHAR", "is_deleted": "VARCHAR", "payment_method": "VARCHAR",
            "customer_message": "VARCHAR", "staff_notes": "VARCHAR",
            "subtotal_ex_tax": "VARCHAR", "discount_amount": "VARCHAR", "coupon_discount": "VARCHAR",
            "total_tax": "VARCHAR", "shipping_cost_ex_tax": "VARCHAR", "refunded_amount": "VARCHAR",
            "subtotal_inc_tax": "VARCHAR", "subtotal_tax": "VARCHAR", "total_ex_tax": "VARCHAR", "total_inc_tax": "VARCHAR",
            "shipping_cost_inc_tax": "VARCHAR", "handling_cost_ex_tax": "VARCHAR", "handling_cost_inc_tax": "VARCHAR",
            "wrapping_cost_ex_tax": "VARCHAR", "wrapping_cost_inc_tax": "VARCHAR", "store_credit_amount": "VARCHAR",
            "gift_certificate_amount": "VARCHAR",
            "billing_address": {"first_name": "VARCHAR", "last_name": "VARCHAR", "company": "VARCHAR",
                                "street_1": "VARCHAR", "street_2": "VARCHAR", "city": "VARCHAR", "state": "VARCHAR",
                                "zip": "VARCHAR", "country": "VARCHAR", "phone": "VARCHAR", "email": "VARCHAR"},
            "consignments": "JSON", "products": "JSON", "coupons": "JSON"}') AS o
    FROM raw_delta
),
line_sets AS (
    SELECT s.*,
        -- consignment line items: object form (since 2025) or list of objects (before); one line shape
        CASE json_type(o.consignments)
            WHEN 'OBJECT' THEN [json_transform(o.consignments, '{"shipping": [{"line_items": "JSON"}], "pickups": [{"line_items": "JSON"}],
                                 "downloads": [{"line_items": "JSON"}], "email": {"gift_certificates": [{"line_items": "JSON"}]}}')]
            WHEN 'ARRAY' THEN json_transform(o.consignments, '[{"shipping": [{"line_items": "JSON"}], "pickups": [{"line_items": "JSON"}],
                                 "downloads": [{"line_items": "JSON"}], "email": {"gift_certificates": [{"line_items": "JSON"}]}}]')
        END AS blocks
    FROM src s
),
line_json AS (
    SELECT l.*,
        flatten(list_transform(coalesce(blocks, []), lambda b:
            list_transform(coalesce(b.shipping, []), lambda c: c.line_items)
            || list_transform(coalesce(b.pickups, []), lambda c: c.line_items)
            || list_transform(coalesce(b.downloads, []), lambda c: c.line_items)
            || list_transform(coalesce(b.email.gift_certificates, []), lambda c: c.line_items))) AS line_lists
    FROM line_sets l
),
parsed AS (
    SELECT pk, stamp, load_seq, payload,
        o.customer_id AS customer_id_raw,
        TRY_CAST(o.customer_id AS BIGINT) AS customer_id,
        o.billing_address.email AS billing_email,
        o.date_created AS created_raw,
        coalesce(try_strptime(regexp_replace(trim(o.date_created), '^[A-Za-z]{3},\s*', ''), '%d %b %Y %H:%M:%S %z'),
                 TRY_CAST(o.date_created AS TIMESTAMPTZ)) AS placed_at,
        TRY_CAST(o.status_id AS INTEGER) AS status_id,
        coalesce(nullif(o.custom_status, ''), nullif(o.status, '')) AS status_name,
        nullif(upper(trim(o.currency_code)), '') AS currency,
        CAST(TRY_CAST(o.channel_id AS BIGINT) AS VARCHAR) AS store,
        o.order_source,
        coalesce(nullif(trim(o.ip_address), ''), nullif(trim(o.ip_address_v6), '')) AS ip_address,
        coalesce(TRY_CAST(o.is_deleted AS BOOLEAN), FALSE) AS is_deleted,
        o.subtotal_ex_tax AS subtotal_raw,
        o.discount_amount AS discount_raw,
        o.coupon_discount AS coupon_discount_raw,
        o.total_tax AS tax_raw,
        o.shipping_cost_ex_tax AS shipping_raw,
        o.refunded_amount AS refunded_raw,
        -- every money field of the order, so a malformed one is caught even if it is not mapped
        [o.subtotal_inc_tax, o.subtotal_tax, o.total_ex_tax, o.total_inc_tax, o.shipping_cost_inc_tax,
         o.handling_cost_ex_tax, o.handling_cost_inc_tax, o.wrapping_cost_ex_tax, o.wrapping_cost_inc_tax,
         o.store_credit_amount, o.gift_certificate_amount] AS other_money,
        coalesce(json_transform(
            CASE WHEN len(line_lists) > 0 THEN to_json(flatten(list_transform(line_lists, lambda x: coalesce(CAST(x AS JSON[]), []))))
                 WHEN json_type(o.products) = 'ARRAY' THEN o.products END,
            '[{"id": "VARCHAR", "sku": "VARCHAR", "name": "VARCHAR", "quantity": "VARCHAR", "price_ex_tax": "VARCHAR",
               "total_ex_tax": "VARCHAR", "price_inc_tax": "VARCHAR", "total_inc_tax": "VARCHAR",
               "quantity_refunded": "VARCHAR"}]'), []) AS lines,
        list_filter(list_transform(CASE WHEN json_type(o.coupons) = 'ARRAY'
                                        THEN json_transform(o.coupons, '[{"code": "VARCHAR"}]') ELSE [] END,
                                   lambda c: upper(trim(c.code))), lambda c: c IS NOT NULL AND c <> '') AS coupon_codes,
        [o.customer_message, o.staff_notes, o.order_source, o.payment_method, o.billing_address.first_name,
         o.billing_address.last_name, o.billing_address.company, o.billing_address.street_1, o.billing_address.street_2,
         o.billing_address.city, o.billing_address.state, o.billing_address.zip, o.billing_address.country,
         o.billing_address.phone, o.ip_address, o.status, o.custom_status] AS texts
    FROM line_json
),
lined AS (
    SELECT p.*,
        [subtotal_raw, discount_raw, coupon_discount_raw, tax_raw, shipping_raw, refunded_raw] || other_money
            || flatten(list_transform(lines, lambda l: [l.price_ex_tax, l.total_ex_tax, l.price_inc_tax, l.total_inc_tax,
                                                         l.quantity, l.quantity_refunded])) AS numbers,
        texts || list_transform(lines, lambda l: l.name) || list_transform(lines, lambda l: l.sku)
            || coupon_codes AS all_texts,
        coalesce(list_bool_or(list_transform(lines, lambda l: l.id IS NULL OR l.price_ex_tax IS NULL
                                                          OR l.quantity IS NULL)), FALSE) AS line_missing_field,
        -- merchandise refunded (ex tax): refunded quantities at their unit price when the lines
        -- say so, else the order's refunded_amount (which also covers tax and shipping)
        coalesce(list_sum(list_transform(lines, lambda l: coalesce(parse_amount(l.quantity_refunded), 0)
                                                            * coalesce(parse_amount(l.price_ex_tax), 0))), 0) AS lines_refunded
    FROM parsed p
),
money AS (
    SELECT l.*,
        cur.code IS NOT NULL AS known_currency,
        coalesce(list_bool_or(list_transform(numbers, lambda t: is_non_finite(t))), FALSE) AS any_non_finite,
        coalesce(list_bool_or(list_transform(numbers, lambda t: t IS NOT NULL AND t <> '' AND parse_amount(t) IS NULL)), FALSE) AS any_unparseable,
        coalesce(list_bool_or(list_transform(numbers, lambda t: parse_amount(t) < 0)), FALSE) AS any_negative,
        coalesce(list_bool_or(list_transform(all_texts, lambda t: has_bad_text(t))), FALSE) OR has_bad_text(billing_email) AS any_bad_text,
        coalesce(list_bool_or(list_transform(all_texts, lambda t: too_long(t, 1000))), FALSE) OR too_long(billing_email, 254) AS any_too_long,
        parse_amount(subtotal_raw) AS gross,
        coalesce(parse_amount(discount_raw), 0) + coalesce(parse_amount(coupon_discount_raw), 0) AS discount,
        coalesce(parse_amount(tax_raw), 0) AS tax,
        coalesce(parse_amount(shipping_raw), 0) AS shipping,
        coalesce(parse_amount(refunded_raw), 0) AS refunded_total,
        (SELECT first(r.market_id ORDER BY r.specificity DESC, r.market_id) FROM staging.market_rules r
          WHERE r.source = $source AND (r.store IS NULL OR r.store = l.store)
            AND (r.currency IS NULL OR r.currency = l.currency)) AS market_id
    FROM lined l
    LEFT JOIN staging.currencies cur ON cur.code = l.currency
),
amounts AS (
    SELECT m.*,
        least(CASE WHEN lines_refunded > 0 THEN lines_refunded ELSE refunded_total END,
              greatest(coalesce(gross, 0) - discount, 0)) AS refunded
    FROM money m
),
checked AS (
    SELECT a.*,
        CASE
            WHEN nullif(trim(created_raw), '') IS NULL THEN 'missing_required_field'
            WHEN placed_at IS NULL THEN 'unparseable_date'
            WHEN currency IS NULL THEN 'missing_currency'
            WHEN NOT known_currency THEN 'unknown_currency'
            WHEN any_non_finite THEN 'non_finite_amount'
            WHEN any_unparseable THEN 'unparseable_amount'
            WHEN any_negative THEN 'negative_amount'
            WHEN gross IS NULL OR line_missing_field THEN 'missing_required_field'
            WHEN status_id IS NULL OR status_id NOT BETWEEN 0 AND 14 THEN 'missing_required_field'
            WHEN coalesce(customer_id, 0) <= 0 AND norm_email(billing_email) IS NULL THEN 'unidentifiable_customer'
            WHEN coalesce(customer_id, 0) <= 0 AND NOT is_valid_email(norm_email(billing_email)) THEN 'malformed_email'
            WHEN any_bad_text THEN 'invalid_text'
            WHEN any_too_long THEN 'field_too_long'
            WHEN market_id IS NULL THEN 'no_market'
        END AS quarantine_reason
    FROM amounts a
)
SELECT
    $source || ':' || pk AS order_key,
    $source AS source,
    'bigcommerce' AS source_type,
    pk AS source_order_id,
    pk AS order_number,                       -- the shopper sees the order id
    CASE WHEN customer_id > 0 THEN $source || ':' || customer_id END AS customer_record_key,
    CASE WHEN is_valid_email(norm_email(billing_email)) THEN norm_email(billing_email) END AS email_normalized,
    market_id,
    store,
    placed_at,
    stamp AS updated_at,
    CASE status_id
        WHEN 0 THEN 'incomplete'              -- Incomplete
        WHEN 1 THEN 'placed'                  -- Pending
        WHEN 2 THEN 'shipped'                 -- Shipped
        WHEN 3 THEN 'shipped'                 -- Partially Shipped
        WHEN 4 THEN 'refunded'                -- Refunded
        WHEN 5 THEN 'cancelled'               -- Cancelled
        WHEN 6 THEN 'declined'                -- Declined
        WHEN 7 THEN 'placed'                  -- Awaiting Payment
        WHEN 8 THEN 'paid'                    -- Awaiting Pickup
        WHEN 9 THEN 'paid'                    -- Awaiting Shipment
        WHEN 10 THEN 'completed'              -- Completed
        WHEN 11 THEN 'paid'                   -- Awaiting Fulfillment
        WHEN 12 THEN 'placed'                 -- Manual Verification Required
        WHEN 13 THEN 'paid'                   -- Disputed
        WHEN 14 THEN 'partially_refunded'     -- Partially Refunded
    END AS status,
    CAST(status_id AS VARCHAR) || coalesce(' ' || status_name, '') AS source_status,
    currency,
    gross AS gross_amount,
    discount AS discount_amount,
    tax AS tax_amount,
    shipping AS shipping_amount,
    refunded AS refunded_amount,
    gross - discount - refunded AS net_amount,
    coupon_codes,
    NULL AS referral_code,                    -- BigCommerce orders have no referral-code field
    NULL AS attribution_id,
    ip_address,
    NULL AS user_agent,
    NULL AS device_id,
    CASE lower(order_source) WHEN 'www' THEN 'web' WHEN 'mobile' THEN 'mobile_app' WHEN 'manual' THEN 'call_center'
         ELSE nullif(order_source, '') END AS channel,
    is_deleted,
    load_seq,
    pk AS source_id,
    payload AS raw_payload,
    quarantine_reason,
    CASE quarantine_reason
        WHEN 'missing_required_field' THEN 'date_created, subtotal_ex_tax, status_id (0..14) or a line item id/price_ex_tax/quantity'
        WHEN 'unparseable_date' THEN 'date_created ' || created_raw
        WHEN 'unknown_currency' THEN 'currency_code ' || currency
        WHEN 'unidentifiable_customer' THEN 'customer_id 0 and no billing_address.email'
        WHEN 'malformed_email' THEN 'guest order with billing_address.email ' || billing_email
        WHEN 'no_market' THEN 'channel ' || coalesce(store, '(none)') || ', currency ' || currency
    END AS quarantine_detail,
    -- helper for bigcommerce_order_items.sql: the lines as structs (every field text)
    lines
FROM checked
