-- Salesforce Orders -> staging.orders (docs/sources/salesforce.md, "Orders").
-- Input: raw_delta over raw.<source>__order; parameter $source (source instance id).
-- Money fields are major units (JSON numbers; planted text is checked). TotalAmount is the item
-- subtotal before discount, tax and shipping; Refunded_Amount__c is money paid back (tax
-- included). The result also carries helper columns (status_raw, charged, refunded_raw, stamp)
-- that salesforce_refunds.sql reads from this query, so both agree on which orders are good.
WITH src AS (
    SELECT pk, stamp, payload, load_seq,
           json_transform(payload, '{"AccountId": "VARCHAR", "BillToContactId": "VARCHAR", "OrderNumber": "VARCHAR",
               "EffectiveDate": "VARCHAR", "Status": "VARCHAR", "CurrencyIsoCode": "VARCHAR",
               "TotalAmount": "VARCHAR", "Discount_Amount__c": "VARCHAR", "Tax_Amount__c": "VARCHAR",
               "Shipping_Amount__c": "VARCHAR", "Refunded_Amount__c": "VARCHAR", "Coupon_Code__c": "VARCHAR",
               "Referral_Code__c": "VARCHAR", "Friendbuy_Attribution_Id__c": "VARCHAR", "IP_Address__c": "VARCHAR",
               "User_Agent__c": "VARCHAR", "Channel__c": "VARCHAR", "CreatedDate": "VARCHAR",
               "IsDeleted": "VARCHAR"}') AS j
    FROM raw_delta
),
fields AS (
    SELECT pk, stamp, payload, load_seq,
           nullif(trim(j.BillToContactId), '') AS contact_id,
           nullif(trim(j.OrderNumber), '') AS order_number,
           nullif(trim(j.EffectiveDate), '') AS effective_raw,
           nullif(trim(j.CreatedDate), '') AS created_raw,
           nullif(trim(j.Status), '') AS status_raw,
           nullif(upper(trim(j.CurrencyIsoCode)), '') AS currency,
           j.TotalAmount AS total_raw, j.Discount_Amount__c AS discount_raw, j.Tax_Amount__c AS tax_raw,
           j.Shipping_Amount__c AS shipping_raw, j.Refunded_Amount__c AS refunded_text,
           nullif(trim(j.Coupon_Code__c), '') AS coupon_raw,
           nullif(trim(j.Referral_Code__c), '') AS referral_code,
           nullif(trim(j.Friendbuy_Attribution_Id__c), '') AS attribution_id,
           nullif(trim(j.IP_Address__c), '') AS ip_address,
           nullif(trim(j.User_Agent__c), '') AS user_agent,
           nullif(trim(j.Channel__c), '') AS channel,
           coalesce(TRY_CAST(j.IsDeleted AS BOOLEAN), FALSE) AS is_deleted
    FROM src
),
parsed AS (
    SELECT f.*,
           TRY_CAST(effective_raw AS DATE) AS effective_date,
           TRY_CAST(created_raw AS TIMESTAMPTZ) AS created_at,
           [total_raw, discount_raw, tax_raw, shipping_raw, refunded_text] AS numbers,
           parse_amount(total_raw) AS gross,
           coalesce(parse_amount(discount_raw), 0) AS discount,
           coalesce(parse_amount(tax_raw), 0) AS tax,
           coalesce(parse_amount(shipping_raw), 0) AS shipping,
           coalesce(parse_amount(refunded_text), 0) AS refunded_raw,
           -- comma-separated codes, upper-cased, blanks and repeats dropped
           list_filter(list_transform(string_split(coalesce(coupon_raw, ''), ','), lambda c: upper(trim(c))),
                       lambda c, i: c <> '' AND list_position(list_transform(string_split(coalesce(coupon_raw, ''), ','),
                                                                             lambda d: upper(trim(d))), c) = i) AS coupon_codes,
           (SELECT first(r.market_id ORDER BY r.specificity DESC, r.market_id) FROM staging.market_rules r
             WHERE r.source = $source AND r.store IS NULL
               AND (r.currency IS NULL OR r.currency = f.currency)) AS market_id
    FROM fields f
),
money AS (
    SELECT p.*,
           gross - discount + tax + shipping AS charged,
           CASE
               WHEN status_raw = 'Cancelled' THEN 'cancelled'
               WHEN refunded_raw > 0 AND refunded_raw < gross - discount + tax + shipping THEN 'partially_refunded'
               WHEN status_raw = 'Refunded' OR refunded_raw > 0 THEN 'refunded'
               WHEN status_raw = 'Activated' THEN 'paid'
               ELSE 'placed'
           END AS status
    FROM parsed p
),
checked AS (
    SELECT m.*,
           -- the goods part of the refund: all of it when fully refunded, else capped at the goods value
           CASE WHEN status = 'refunded' THEN greatest(gross - discount, 0)
                ELSE least(refunded_raw, greatest(gross - discount, 0)) END AS refunded_goods,
           CASE WHEN created_at IS NOT NULL
                     AND (effective_date IS NULL OR CAST(created_at AT TIME ZONE 'UTC' AS DATE) = effective_date)
                THEN created_at
                ELSE CAST(effective_date AS TIMESTAMP) AT TIME ZONE 'UTC' END AS placed_at,
           CASE
               WHEN effective_raw IS NULL AND created_raw IS NULL THEN 'missing_required_field'
               WHEN (effective_raw IS NOT NULL AND effective_date IS NULL)
                    OR (created_raw IS NOT NULL AND created_at IS NULL) THEN 'unparseable_date'
               WHEN currency IS NULL THEN 'missing_currency'
               WHEN NOT EXISTS (SELECT 1 FROM staging.currencies c WHERE c.code = m.currency) THEN 'unknown_currency'
               WHEN list_bool_or(list_transform(numbers, lambda t: is_non_finite(t))) THEN 'non_finite_amount'
               WHEN list_bool_or(list_transform(numbers, lambda t: t IS NOT NULL AND parse_amount(t) IS NULL))
                    THEN 'unparseable_amount'
               WHEN list_bool_or(list_transform(numbers, lambda t: coalesce(parse_amount(t) < 0, FALSE))) THEN 'negative_amount'
               WHEN total_raw IS NULL THEN 'missing_required_field'
               WHEN contact_id IS NULL THEN 'unidentifiable_customer'
               WHEN has_bad_text(payload) THEN 'invalid_text'
               WHEN too_long(order_number, 1000) OR too_long(coupon_raw, 1000) OR too_long(referral_code, 1000)
                    OR too_long(attribution_id, 1000) OR too_long(ip_address, 1000) OR too_long(user_agent, 1000)
                    OR too_long(channel, 1000) OR too_long(status_raw, 1000) THEN 'field_too_long'
               WHEN market_id IS NULL THEN 'no_market'
           END AS quarantine_reason
    FROM money m
)
SELECT
    CAST($source AS VARCHAR) || ':' || pk AS order_key,
    CAST($source AS VARCHAR) AS source,
    'salesforce' AS source_type,
    pk AS source_order_id,
    order_number,
    CASE WHEN contact_id IS NOT NULL THEN CAST($source AS VARCHAR) || ':' || contact_id END AS customer_record_key,
    CAST(NULL AS VARCHAR) AS email_normalized,
    market_id,
    CAST(NULL AS VARCHAR) AS store,
    placed_at,
    stamp AS updated_at,
    status,
    status_raw AS source_status,
    currency,
    gross AS gross_amount,
    discount AS discount_amount,
    tax AS tax_amount,
    shipping AS shipping_amount,
    refunded_goods AS refunded_amount,
    gross - discount - refunded_goods AS net_amount,
    coupon_codes,
    referral_code,
    attribution_id,
    ip_address,
    user_agent,
    CAST(NULL AS VARCHAR) AS device_id,
    channel,
    is_deleted,
    load_seq,
    pk AS source_id,
    payload AS raw_payload,
    quarantine_reason,
    CASE quarantine_reason
        WHEN 'missing_required_field' THEN CASE WHEN total_raw IS NULL AND (effective_raw IS NOT NULL OR created_raw IS NOT NULL)
                                                THEN 'TotalAmount is missing' ELSE 'EffectiveDate and CreatedDate are missing' END
        WHEN 'unparseable_date' THEN 'EffectiveDate ' || coalesce(effective_raw, '-') || ', CreatedDate ' || coalesce(created_raw, '-')
        WHEN 'missing_currency' THEN 'CurrencyIsoCode is missing'
        WHEN 'unknown_currency' THEN 'CurrencyIsoCode ' || currency
        WHEN 'non_finite_amount' THEN 'amounts: ' || array_to_string(list_filter(numbers, lambda t: t IS NOT NULL), ', ')
        WHEN 'unparseable_amount' THEN 'amounts: ' || array_to_string(list_filter(numbers, lambda t: t IS NOT NULL), ', ')
        WHEN 'negative_amount' THEN 'amounts: ' || array_to_string(list_filter(numbers, lambda t: t IS NOT NULL), ', ')
        WHEN 'unidentifiable_customer' THEN 'no BillToContactId'
        WHEN 'invalid_text' THEN 'a text field holds U+FFFD or a lone surrogate'
        WHEN 'field_too_long' THEN 'a text field is longer than 1000 characters'
        WHEN 'no_market' THEN 'no market matches source ' || CAST($source AS VARCHAR) || ', currency ' || currency
    END AS quarantine_detail,
    -- helpers for salesforce_refunds.sql
    status_raw, charged, refunded_raw, stamp
FROM checked
