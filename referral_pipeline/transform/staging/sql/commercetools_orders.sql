-- commercetools orders -> staging.orders (docs/sources/commercetools.md, "Orders").
-- Input: raw_delta over raw.<source>__orders; parameter $source (source instance id).
-- Each payload is parsed once (json_transform into a typed struct; numbers are read as text so
-- that bad values can be told apart from absent ones). Money is computed in minor units
-- (centAmount) and converted once with minor_to_major and the order's fractionDigits (else the
-- currency's ISO minor units). The result also carries helper columns (lines, refund_items,
-- digits, order_state, *_minor) that commercetools_order_items.sql and commercetools_refunds.sql
-- read as ct_orders, so all three agree on which orders are good.
WITH src AS (
    SELECT pk, stamp, load_seq, payload,
        json_transform(payload, '{
            "orderNumber": "VARCHAR", "customerId": "VARCHAR", "customerEmail": "VARCHAR", "locale": "VARCHAR",
            "createdAt": "VARCHAR", "orderState": "VARCHAR", "paymentState": "VARCHAR", "shipmentState": "VARCHAR",
            "store": {"key": "VARCHAR"},
            "totalPrice": {"currencyCode": "VARCHAR", "centAmount": "VARCHAR", "fractionDigits": "VARCHAR"},
            "taxedPrice": {"totalNet": {"centAmount": "VARCHAR"}, "totalGross": {"centAmount": "VARCHAR"},
                           "totalTax": {"centAmount": "VARCHAR"}},
            "shippingInfo": {"price": {"centAmount": "VARCHAR"}, "discountedPrice": {"value": {"centAmount": "VARCHAR"}}},
            "shipping": [{"shippingInfo": {"price": {"centAmount": "VARCHAR"},
                                           "discountedPrice": {"value": {"centAmount": "VARCHAR"}}}}],
            "discountOnTotalPrice": {"discountedAmount": {"centAmount": "VARCHAR"}},
            "lineItems": [{"id": "VARCHAR", "name": "MAP(VARCHAR, VARCHAR)", "variant": {"sku": "VARCHAR"},
                           "price": {"value": {"centAmount": "VARCHAR"}}, "quantity": "VARCHAR",
                           "totalPrice": {"centAmount": "VARCHAR"}}],
            "customLineItems": [{"id": "VARCHAR", "name": "MAP(VARCHAR, VARCHAR)", "slug": "VARCHAR",
                                 "money": {"centAmount": "VARCHAR"}, "quantity": "VARCHAR",
                                 "totalPrice": {"centAmount": "VARCHAR"}}],
            "returnInfo": [{"returnDate": "VARCHAR",
                            "items": [{"id": "VARCHAR", "lineItemId": "VARCHAR", "customLineItemId": "VARCHAR",
                                       "quantity": "VARCHAR", "paymentState": "VARCHAR", "createdAt": "VARCHAR",
                                       "comment": "VARCHAR"}]}],
            "discountCodes": [{"discountCode": {"obj": {"code": "VARCHAR"}}}],
            "custom": {"fields": {"referralCode": "VARCHAR", "fbAttributionId": "VARCHAR", "ipAddress": "VARCHAR",
                                  "userAgent": "VARCHAR", "deviceId": "VARCHAR", "channel": "VARCHAR"}}
        }') AS o
    FROM raw_delta
),
parsed AS (
    SELECT pk, stamp, load_seq, payload,
        o.orderNumber AS order_number,
        nullif(trim(o.customerId), '') AS customer_id,
        o.customerEmail AS customer_email,
        o.store.key AS store,
        o.createdAt AS created_raw,
        TRY_CAST(o.createdAt AS TIMESTAMPTZ) AS placed_at,
        o.orderState AS order_state,
        o.paymentState AS payment_state,
        o.shipmentState AS shipment_state,
        nullif(upper(trim(o.totalPrice.currencyCode)), '') AS currency,
        o.totalPrice.fractionDigits AS digits_raw,
        o.totalPrice.centAmount AS total_raw,
        o.taxedPrice.totalNet.centAmount AS tax_net_raw,
        o.taxedPrice.totalGross.centAmount AS tax_gross_raw,
        o.taxedPrice.totalTax.centAmount AS tax_total_raw,
        coalesce(o.shippingInfo.discountedPrice.value.centAmount, o.shippingInfo.price.centAmount) AS shipping_raw,
        list_transform(coalesce(o.shipping, []),
            lambda s: coalesce(s.shippingInfo.discountedPrice.value.centAmount, s.shippingInfo.price.centAmount)) AS multi_shipping_raw,
        o.discountOnTotalPrice.discountedAmount.centAmount AS discount_on_total_raw,
        -- line items and custom line items in one shape; name in the order's locale, else en, else any
        list_transform(coalesce(o.lineItems, []), lambda l: {
            'id': l.id, 'sku': l.variant.sku, 'name': coalesce(l.name[o.locale], l.name['en'], map_values(l.name)[1]),
            'unit_raw': l.price.value.centAmount, 'qty_raw': l.quantity, 'total_raw': l.totalPrice.centAmount})
        || list_transform(coalesce(o.customLineItems, []), lambda l: {
            'id': l.id, 'sku': l.slug, 'name': coalesce(l.name[o.locale], l.name['en'], map_values(l.name)[1]),
            'unit_raw': l.money.centAmount, 'qty_raw': l.quantity, 'total_raw': l.totalPrice.centAmount}) AS raw_lines,
        flatten(list_transform(coalesce(o.returnInfo, []),
            lambda r: list_transform(coalesce(r.items, []), lambda it: {'item': it, 'return_date': r.returnDate}))) AS return_items,
        list_filter(list_transform(coalesce(o.discountCodes, []), lambda d: upper(trim(d.discountCode.obj.code))),
            lambda c: c IS NOT NULL AND c <> '') AS coupon_codes,
        o.custom.fields.referralCode AS referral_code,
        o.custom.fields.fbAttributionId AS attribution_id,
        o.custom.fields.ipAddress AS ip_address,
        o.custom.fields.userAgent AS user_agent,
        o.custom.fields.deviceId AS device_id,
        o.custom.fields.channel AS channel
    FROM src
),
derived AS (
    SELECT p.*,
        -- every number the mapping reads, checked for NaN/inf, non-numbers and negatives
        [total_raw, tax_net_raw, tax_gross_raw, tax_total_raw, shipping_raw, discount_on_total_raw, digits_raw]
            || multi_shipping_raw
            || flatten(list_transform(raw_lines, lambda l: [l.unit_raw, l.qty_raw, l.total_raw]))
            || list_transform(return_items, lambda r: r.item.quantity) AS numbers,
        -- every text the mapping stages (length limits)
        [order_number, customer_id, store, referral_code, attribution_id, ip_address, user_agent, device_id, channel]
            || list_transform(raw_lines, lambda l: l.sku) || list_transform(raw_lines, lambda l: l.name) AS texts,
        coalesce(list_bool_or(list_transform(raw_lines, lambda l: l.id IS NULL OR l.unit_raw IS NULL OR l.qty_raw IS NULL)),
                 FALSE) AS line_missing_field,
        -- per line: quantity, list price x quantity, total after discounts (all in minor units)
        list_transform(raw_lines, lambda l: {
            'id': l.id, 'sku': l.sku, 'name': l.name, 'qty': parse_amount(l.qty_raw), 'unit': parse_amount(l.unit_raw),
            'gross': parse_amount(l.unit_raw) * parse_amount(l.qty_raw),
            'total': coalesce(parse_amount(l.total_raw), parse_amount(l.unit_raw) * parse_amount(l.qty_raw))}) AS lines,
        -- refunded return items (returnInfo[].items[] with paymentState Refunded)
        list_transform(list_filter(return_items, lambda r: r.item.paymentState = 'Refunded'),
            lambda r: {'id': r.item.id,
                       'line_id': coalesce(r.item.lineItemId, r.item.customLineItemId),
                       'qty': coalesce(parse_amount(r.item.quantity), 0),
                       'created_at': TRY_CAST(coalesce(r.item.createdAt, r.return_date) AS TIMESTAMPTZ),
                       'comment': r.item.comment}) AS refunded_raw
    FROM parsed p
),
money AS (
    SELECT d.*,
        coalesce(TRY_CAST(digits_raw AS INTEGER), cur.minor_units, 2) AS digits,
        cur.code IS NOT NULL AS known_currency,
        coalesce(list_bool_or(list_transform(numbers, lambda t: is_non_finite(t))), FALSE) AS any_non_finite,
        coalesce(list_bool_or(list_transform(numbers, lambda t: t IS NOT NULL AND parse_amount(t) IS NULL)), FALSE) AS any_unparseable,
        coalesce(list_bool_or(list_transform(numbers, lambda t: parse_amount(t) < 0)), FALSE) AS any_negative,
        has_bad_text(payload) AS any_bad_text,            -- anywhere in the record (e.g. an address)
        coalesce(list_bool_or(list_transform(texts, lambda t: too_long(t, 1000))), FALSE) OR too_long(customer_email, 254) AS any_too_long,
        -- each refunded item with its line: the returned share of the line's total, in whole minor units
        list_transform(refunded_raw, lambda r: {
            'id': r.id, 'comment': r.comment, 'created_at': r.created_at, 'qty': r.qty,
            'line': list_filter(lines, lambda f: f.id = r.line_id)[1]}) AS refund_lines,
        parse_amount(total_raw) AS total_minor,
        coalesce(parse_amount(discount_on_total_raw), 0) AS discount_on_total_minor,
        coalesce(parse_amount(shipping_raw), list_sum(list_transform(multi_shipping_raw, lambda s: parse_amount(s))), 0) AS shipping_minor,
        coalesce(parse_amount(tax_total_raw), parse_amount(tax_gross_raw) - parse_amount(tax_net_raw), 0) AS tax_minor
    FROM derived d
    LEFT JOIN staging.currencies cur ON cur.code = d.currency
),
amounts AS (
    SELECT m.*,
        list_transform(refund_lines, lambda r: {
            'id': r.id, 'comment': r.comment, 'created_at': r.created_at,
            'has_line': r.line IS NOT NULL AND r.id IS NOT NULL AND coalesce(r.line.qty, 0) > 0,
            'amount_minor': CAST(round(r.line.total * r.qty / nullif(r.line.qty, 0)) AS DECIMAL(18,4))}) AS refund_items,
        -- per line: its total after discounts times the returned share (capped at the whole line)
        coalesce(list_sum(list_transform(lines, lambda f: CAST(round(f.total
            * least(coalesce(list_sum(list_transform(list_filter(refund_lines, lambda r: r.line.id = f.id), lambda r: r.qty)), 0), f.qty)
            / nullif(f.qty, 0)) AS DECIMAL(18,4)))), 0) AS returned_minor,
        CASE WHEN len(lines) > 0 THEN coalesce(list_sum(list_transform(lines, lambda f: f.gross)), 0)
             ELSE greatest(coalesce(total_minor, 0) + discount_on_total_minor - shipping_minor, 0) END AS gross_minor,
        CASE WHEN len(lines) > 0 THEN greatest(coalesce(list_sum(list_transform(lines, lambda f: f.gross - f.total)), 0), 0)
             ELSE 0 END + discount_on_total_minor AS discount_minor,
        (SELECT first(r.market_id ORDER BY r.specificity DESC, r.market_id) FROM staging.market_rules r
          WHERE r.source = $source AND (r.store IS NULL OR r.store = m.store)
            AND (r.currency IS NULL OR r.currency = m.currency)) AS market_id
    FROM money m
),
checked AS (
    SELECT a.*,
        least(returned_minor, greatest(gross_minor - discount_minor, 0)) AS refunded_minor,
        CASE
            WHEN created_raw IS NULL THEN 'missing_required_field'
            WHEN placed_at IS NULL THEN 'unparseable_date'
            WHEN currency IS NULL THEN 'missing_currency'
            WHEN NOT known_currency THEN 'unknown_currency'
            WHEN any_non_finite THEN 'non_finite_amount'
            WHEN any_unparseable THEN 'unparseable_amount'
            WHEN any_negative THEN 'negative_amount'
            WHEN total_raw IS NULL OR line_missing_field THEN 'missing_required_field'
            WHEN customer_id IS NULL AND norm_email(customer_email) IS NULL THEN 'unidentifiable_customer'
            WHEN customer_id IS NULL AND NOT is_valid_email(norm_email(customer_email)) THEN 'malformed_email'
            WHEN any_bad_text THEN 'invalid_text'
            WHEN any_too_long THEN 'field_too_long'
            WHEN list_bool_or(list_transform(refund_items, lambda r: NOT r.has_line)) THEN 'missing_required_field'
            WHEN list_bool_or(list_transform(refund_items, lambda r: r.created_at IS NULL)) THEN 'unparseable_date'
            WHEN market_id IS NULL THEN 'no_market'
        END AS quarantine_reason
    FROM amounts a
)
SELECT
    $source || ':' || pk AS order_key,
    $source AS source,
    'commercetools' AS source_type,
    pk AS source_order_id,
    order_number,
    CASE WHEN customer_id IS NOT NULL THEN $source || ':' || customer_id END AS customer_record_key,
    CASE WHEN is_valid_email(norm_email(customer_email)) THEN norm_email(customer_email) END AS email_normalized,
    market_id,
    store,
    placed_at,
    stamp AS updated_at,
    CASE
        WHEN order_state = 'Cancelled' THEN 'cancelled'
        WHEN refunded_minor > 0 AND refunded_minor >= gross_minor - discount_minor THEN 'refunded'
        WHEN refunded_minor > 0 THEN 'partially_refunded'
        WHEN payment_state = 'Failed' THEN 'declined'
        WHEN order_state = 'Complete' OR shipment_state = 'Delivered' THEN 'completed'
        WHEN shipment_state IN ('Shipped', 'Partial') THEN 'shipped'
        WHEN payment_state IN ('Paid', 'CreditOwed') THEN 'paid'
        ELSE 'placed'
    END AS status,
    coalesce(order_state, '-') || '/' || coalesce(payment_state, '-') || '/' || coalesce(shipment_state, '-') AS source_status,
    currency,
    minor_to_major(gross_minor, digits) AS gross_amount,
    minor_to_major(discount_minor, digits) AS discount_amount,
    minor_to_major(tax_minor, digits) AS tax_amount,
    minor_to_major(shipping_minor, digits) AS shipping_amount,
    minor_to_major(refunded_minor, digits) AS refunded_amount,
    minor_to_major(gross_minor - discount_minor - refunded_minor, digits) AS net_amount,
    coupon_codes,
    referral_code,
    attribution_id,
    ip_address,
    user_agent,
    device_id,
    channel,
    FALSE AS is_deleted,
    load_seq,
    pk AS source_id,
    payload AS raw_payload,
    quarantine_reason,
    CASE quarantine_reason
        WHEN 'unknown_currency' THEN 'currency ' || currency
        WHEN 'no_market' THEN 'store ' || coalesce(store, '(none)') || ', currency ' || currency
        WHEN 'missing_required_field' THEN 'createdAt, totalPrice.centAmount, a line id/price/quantity, or the line of a refunded return item'
        WHEN 'unparseable_date' THEN 'createdAt or a refunded return item date'
        WHEN 'unidentifiable_customer' THEN 'no customerId and no customerEmail'
    END AS quarantine_detail,
    -- helpers for commercetools_order_items.sql and commercetools_refunds.sql
    lines, refund_items, digits, order_state, gross_minor, discount_minor, refunded_minor
FROM checked
