-- Salesforce Contacts -> staging.customers (docs/sources/salesforce.md, "Contacts").
-- Input: raw_delta over raw.<source>__contact; parameter $source (source instance id).
-- A Contact is a customer of its own id. A missing or malformed Email is not a reason to
-- quarantine (the record still has its id): email_normalized is then NULL. Deleted Contacts
-- (IsDeleted, read with queryAll) are staged with is_deleted = TRUE.
WITH src AS (
    SELECT pk, stamp, payload, load_seq,
           json_transform(payload, '{"AccountId": "VARCHAR", "Email": "VARCHAR", "FirstName": "VARCHAR",
               "LastName": "VARCHAR", "Phone": "VARCHAR", "HasOptedOutOfEmail": "VARCHAR",
               "MailingCountry": "VARCHAR", "CreatedDate": "VARCHAR", "IsDeleted": "VARCHAR"}') AS j
    FROM raw_delta
),
fields AS (
    SELECT pk, stamp, payload, load_seq,
           nullif(trim(j.Email), '') AS email_raw,
           norm_email(j.Email) AS email_norm,
           nullif(trim(j.FirstName), '') AS first_name,
           nullif(trim(j.LastName), '') AS last_name,
           nullif(trim(j.Phone), '') AS phone,
           nullif(trim(j.MailingCountry), '') AS country,
           nullif(trim(j.AccountId), '') AS account_id,
           TRY_CAST(j.HasOptedOutOfEmail AS BOOLEAN) AS opted_out,
           TRY_CAST(j.CreatedDate AS TIMESTAMPTZ) AS created_at,
           coalesce(TRY_CAST(j.IsDeleted AS BOOLEAN), FALSE) AS is_deleted
    FROM src
),
checked AS (
    SELECT *,
           CASE
               WHEN has_bad_text(payload) THEN 'invalid_text'
               WHEN too_long(email_raw, 254) OR too_long(first_name, 1000) OR too_long(last_name, 1000)
                    OR too_long(phone, 1000) OR too_long(country, 1000) THEN 'field_too_long'
           END AS quarantine_reason
    FROM fields
)
SELECT CAST($source AS VARCHAR) || ':' || pk AS customer_record_key,
       CAST($source AS VARCHAR) AS source,
       'salesforce' AS source_type,
       pk AS source_customer_id,
       email_raw,
       CASE WHEN is_valid_email(email_norm) THEN email_norm END AS email_normalized,
       first_name,
       last_name,
       phone,
       NOT opted_out AS marketing_consent,
       country,
       CAST(NULL AS VARCHAR) AS store,
       account_id AS sf_account_id,
       created_at,
       stamp AS updated_at,
       is_deleted,
       load_seq,
       pk AS source_id,
       payload AS raw_payload,
       quarantine_reason,
       CASE quarantine_reason
           WHEN 'invalid_text' THEN 'a text field holds U+FFFD or a lone surrogate'
           WHEN 'field_too_long' THEN 'Email longer than 254 or a name, phone or country longer than 1000 characters'
       END AS quarantine_detail
FROM checked
