-- BigCommerce v3 refunds -> staging.refunds (docs/sources/bigcommerce.md, "Refunds").
-- Input: raw_delta over raw.<source>__refunds; parameter $source (source instance id).
-- amount = total_amount (what was paid back, tax and shipping included; the items say what for).
-- A refund carries no currency: it is the order's (join staging.orders on order_key).
WITH src AS (
    SELECT pk, stamp, load_seq, payload,
        json_transform(payload, '{"order_id": "VARCHAR", "created": "VARCHAR", "total_amount": "VARCHAR",
            "total_tax": "VARCHAR", "reason": "VARCHAR", "items": [{"requested_amount": "VARCHAR"}],
            "payments": [{"amount": "VARCHAR"}]}') AS r
    FROM raw_delta
),
parsed AS (
    SELECT pk, stamp, load_seq, payload,
        TRY_CAST(r.order_id AS BIGINT) AS order_id,
        r.created AS created_raw,
        TRY_CAST(r.created AS TIMESTAMPTZ) AS created_at,
        r.total_amount AS amount_raw,
        r.reason,
        [r.total_amount, r.total_tax]
            || list_transform(coalesce(r.items, []), lambda i: i.requested_amount)
            || list_transform(coalesce(r.payments, []), lambda p: p.amount) AS numbers
    FROM src
),
checked AS (
    SELECT *,
        CASE
            WHEN order_id IS NULL OR order_id <= 0 THEN 'missing_required_field'
            WHEN nullif(trim(created_raw), '') IS NULL THEN 'missing_required_field'
            WHEN created_at IS NULL THEN 'unparseable_date'
            WHEN coalesce(list_bool_or(list_transform(numbers, lambda t: is_non_finite(t))), FALSE) THEN 'non_finite_amount'
            WHEN amount_raw IS NULL THEN 'missing_required_field'
            WHEN coalesce(list_bool_or(list_transform(numbers, lambda t: t IS NOT NULL AND parse_amount(t) IS NULL)), FALSE) THEN 'unparseable_amount'
            WHEN coalesce(list_bool_or(list_transform(numbers, lambda t: parse_amount(t) < 0)), FALSE) THEN 'negative_amount'
            WHEN has_bad_text(reason) THEN 'invalid_text'
            WHEN too_long(reason, 1000) THEN 'field_too_long'
        END AS quarantine_reason
    FROM parsed
)
SELECT
    $source || ':' || pk AS refund_key,
    $source || ':' || order_id AS order_key,
    $source AS source,
    pk AS source_refund_id,
    parse_amount(amount_raw) AS amount,
    NULL AS currency,
    created_at,
    reason,
    'refund' AS kind,
    load_seq,
    pk AS source_id,
    payload AS raw_payload,
    quarantine_reason,
    CASE quarantine_reason
        WHEN 'missing_required_field' THEN 'order_id, created or total_amount'
        WHEN 'unparseable_date' THEN 'created ' || created_raw
    END AS quarantine_detail
FROM checked
