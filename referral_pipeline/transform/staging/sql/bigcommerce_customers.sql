-- BigCommerce v3 customers -> staging.customers (docs/sources/bigcommerce.md, "Customers").
-- Input: raw_delta over raw.<source>__customers (read with include=attributes,addresses);
-- parameter $source (source instance id). A missing or malformed email is not a quarantine
-- reason for customers (docs/quarantine.md): the row is staged with email_normalized NULL.
-- Phone: the customer's, else the first address's; country: the first address's country_code;
-- store: origin_channel_id (the channel the customer signed up in), else the first channel_ids.
WITH src AS (
    SELECT pk, stamp, load_seq, payload,
        json_transform(payload, '{"email": "VARCHAR", "first_name": "VARCHAR", "last_name": "VARCHAR", "phone": "VARCHAR",
            "origin_channel_id": "VARCHAR", "channel_ids": ["VARCHAR"], "date_created": "VARCHAR",
            "accepts_product_review_abandoned_cart_emails": "VARCHAR",
            "addresses": [{"phone": "VARCHAR", "country_code": "VARCHAR"}]}') AS c
    FROM raw_delta
),
parsed AS (
    SELECT pk, stamp, load_seq, payload,
        c.email,
        c.first_name,
        c.last_name,
        coalesce(nullif(trim(c.phone), ''), nullif(trim(c.addresses[1].phone), '')) AS phone,
        nullif(upper(trim(c.addresses[1].country_code)), '') AS country,
        coalesce(CAST(TRY_CAST(c.origin_channel_id AS BIGINT) AS VARCHAR),
                 CAST(TRY_CAST(c.channel_ids[1] AS BIGINT) AS VARCHAR)) AS store,
        -- the only e-mail consent on a v3 customer (product review and abandoned cart e-mails)
        TRY_CAST(c.accepts_product_review_abandoned_cart_emails AS BOOLEAN) AS marketing_consent,
        c.date_created AS created_raw,
        TRY_CAST(c.date_created AS TIMESTAMPTZ) AS created_at
    FROM src
),
checked AS (
    SELECT *,
        CASE
            WHEN has_bad_text(email) OR has_bad_text(first_name) OR has_bad_text(last_name) OR has_bad_text(phone)
                 OR has_bad_text(country) THEN 'invalid_text'
            WHEN too_long(email, 254) OR too_long(first_name, 1000) OR too_long(last_name, 1000) OR too_long(phone, 1000)
                 OR too_long(country, 1000) THEN 'field_too_long'
            WHEN nullif(trim(created_raw), '') IS NOT NULL AND created_at IS NULL THEN 'unparseable_date'
        END AS quarantine_reason
    FROM parsed
)
SELECT
    $source || ':' || pk AS customer_record_key,
    $source AS source,
    'bigcommerce' AS source_type,
    pk AS source_customer_id,
    email AS email_raw,
    CASE WHEN is_valid_email(norm_email(email)) THEN norm_email(email) END AS email_normalized,
    first_name,
    last_name,
    phone,
    marketing_consent,
    country,
    store,
    NULL AS sf_account_id,
    created_at,
    stamp AS updated_at,
    FALSE AS is_deleted,
    load_seq,
    pk AS source_id,
    payload AS raw_payload,
    quarantine_reason,
    CASE quarantine_reason
        WHEN 'field_too_long' THEN 'email > 254 or a name/phone/country > 1000 characters'
        WHEN 'unparseable_date' THEN 'date_created ' || created_raw
    END AS quarantine_detail
FROM checked
