-- commercetools customers -> staging.customers (docs/sources/commercetools.md, "Customers").
-- Input: raw_delta over raw.<source>__customers; parameter $source (source instance id).
-- A missing or malformed email is not a quarantine reason for customers (docs/quarantine.md):
-- the row is staged with email_normalized NULL. Phone and country come from the default billing
-- address, else the default shipping address, else the first address; store is the first of
-- `stores` (NULL: a global customer). Invalid text (U+FFFD, lone surrogates) anywhere in the record
-- quarantines it; the length limits apply to the staged fields.
WITH src AS (
    SELECT pk, stamp, load_seq, payload,
        json_transform(payload, '{
            "email": "VARCHAR", "firstName": "VARCHAR", "lastName": "VARCHAR", "createdAt": "VARCHAR",
            "stores": [{"key": "VARCHAR"}], "defaultBillingAddressId": "VARCHAR", "defaultShippingAddressId": "VARCHAR",
            "addresses": [{"id": "VARCHAR", "country": "VARCHAR", "phone": "VARCHAR", "mobile": "VARCHAR"}],
            "custom": {"fields": {"marketingConsent": "VARCHAR", "marketingOptIn": "VARCHAR", "emailOptIn": "VARCHAR"}}
        }') AS c
    FROM raw_delta
),
parsed AS (
    SELECT pk, stamp, load_seq, payload,
        c.email AS email,
        c.firstName AS first_name,
        c.lastName AS last_name,
        c.createdAt AS created_raw,
        TRY_CAST(c.createdAt AS TIMESTAMPTZ) AS created_at,
        c.stores[1].key AS store,
        -- consent is not a standard commercetools field: a custom field when the project has one
        TRY_CAST(coalesce(c.custom.fields.marketingConsent, c.custom.fields.marketingOptIn,
                          c.custom.fields.emailOptIn) AS BOOLEAN) AS marketing_consent,
        coalesce(list_filter(c.addresses, lambda a: a.id = c.defaultBillingAddressId)[1],
                 list_filter(c.addresses, lambda a: a.id = c.defaultShippingAddressId)[1],
                 c.addresses[1]) AS address
    FROM src
),
mapped AS (
    SELECT *,
        coalesce(address.phone, address.mobile) AS phone,
        upper(address.country) AS country
    FROM parsed
),
checked AS (
    SELECT *,
        CASE
            WHEN has_bad_text(payload) THEN 'invalid_text'          -- anywhere in the record
            WHEN too_long(email, 254) OR too_long(first_name, 1000) OR too_long(last_name, 1000) OR too_long(phone, 1000)
                 OR too_long(country, 1000) OR too_long(store, 1000) THEN 'field_too_long'
            WHEN created_raw IS NOT NULL AND created_at IS NULL THEN 'unparseable_date'
        END AS quarantine_reason
    FROM mapped
)
SELECT
    $source || ':' || pk AS customer_record_key,
    $source AS source,
    'commercetools' AS source_type,
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
        WHEN 'field_too_long' THEN 'email > 254 or a name/phone/country/store > 1000 characters'
        WHEN 'unparseable_date' THEN 'createdAt ' || created_raw
    END AS quarantine_detail
FROM checked
