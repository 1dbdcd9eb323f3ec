-- BigCommerce v2 coupons -> staging.coupons (docs/sources/bigcommerce.md, "Coupons").
-- Input: raw_delta over raw.<source>__coupons; parameter $source (source instance id).
-- max_uses 0 means unlimited (NULL); expires is RFC 2822 or empty (never expires); v2 coupons
-- have no start date, so valid_from is date_created. A coupon is always entered as a code.
WITH src AS (
    SELECT pk, stamp, load_seq, payload,
        json_transform(payload, '{"code": "VARCHAR", "name": "VARCHAR", "enabled": "VARCHAR", "max_uses": "VARCHAR",
            "num_uses": "VARCHAR", "expires": "VARCHAR", "date_created": "VARCHAR"}') AS c
    FROM raw_delta
),
parsed AS (
    SELECT pk, stamp, load_seq, payload,
        nullif(upper(trim(c.code)), '') AS code,
        c.name,
        TRY_CAST(c.enabled AS BOOLEAN) AS is_active,
        TRY_CAST(c.max_uses AS INTEGER) AS max_uses_raw,
        TRY_CAST(c.num_uses AS INTEGER) AS uses,
        c.expires AS expires_raw,
        coalesce(try_strptime(regexp_replace(trim(c.expires), '^[A-Za-z]{3},\s*', ''), '%d %b %Y %H:%M:%S %z'),
                 TRY_CAST(c.expires AS TIMESTAMPTZ)) AS valid_until,
        c.date_created AS created_raw,
        coalesce(try_strptime(regexp_replace(trim(c.date_created), '^[A-Za-z]{3},\s*', ''), '%d %b %Y %H:%M:%S %z'),
                 TRY_CAST(c.date_created AS TIMESTAMPTZ)) AS valid_from
    FROM src
),
checked AS (
    SELECT *,
        CASE
            WHEN code IS NULL THEN 'missing_required_field'
            WHEN has_bad_text(code) OR has_bad_text(name) THEN 'invalid_text'
            WHEN too_long(code, 1000) OR too_long(name, 1000) THEN 'field_too_long'
            WHEN nullif(trim(expires_raw), '') IS NOT NULL AND valid_until IS NULL THEN 'unparseable_date'
            WHEN nullif(trim(created_raw), '') IS NOT NULL AND valid_from IS NULL THEN 'unparseable_date'
        END AS quarantine_reason
    FROM parsed
)
SELECT
    $source || ':' || pk AS coupon_key,
    $source AS source,
    code,
    pk AS source_id,                          -- also the quarantine's source_id
    is_active,
    nullif(max_uses_raw, 0) AS max_uses,
    uses,
    valid_from,
    valid_until,
    TRUE AS requires_code,
    NULL AS currency,
    NULL AS store,
    name,
    load_seq,
    payload AS raw_payload,
    quarantine_reason,
    CASE quarantine_reason
        WHEN 'missing_required_field' THEN 'code'
        WHEN 'unparseable_date' THEN 'expires ' || coalesce(expires_raw, '') || ' / date_created ' || coalesce(created_raw, '')
    END AS quarantine_detail
FROM checked
