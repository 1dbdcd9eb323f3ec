-- Friendbuy analytics export rows -> staging.referral_events (docs/sources/friendbuy.md).
-- One raw table per export (raw.<fb instance>__<export>); parameters:
--   $source  Friendbuy instance id (e.g. 'fb')
--   $kind    share | click | signup | purchase | advocate_reward | friend_incentive | widget_view
-- Parties: the advocate is advocateCustomerId/advocateEmail; the friend is customerId/email on
-- sign-ups and purchases and friendCustomerId/friendEmail on rewards and incentives; a widget
-- view's viewer (customerId/email) is an advocate on 'advocateShare' widgets, else a friend.
-- The row's subject (advocate of a share or advocate reward; friend of a sign-up, purchase or
-- friend incentive) must be identifiable; clicks and widget views may be anonymous.
WITH src AS (
    SELECT pk, stamp, payload, load_seq,
           json_transform(payload, '{"createdOn": "VARCHAR", "advocateCustomerId": "VARCHAR",
               "advocateEmail": "VARCHAR", "customerId": "VARCHAR", "email": "VARCHAR",
               "friendCustomerId": "VARCHAR", "friendEmail": "VARCHAR", "widgetType": "VARCHAR",
               "campaignId": "VARCHAR", "referralCode": "VARCHAR", "couponCode": "VARCHAR",
               "orderId": "VARCHAR", "amount": "VARCHAR", "rewardAmount": "VARCHAR",
               "incentiveAmount": "VARCHAR", "rewardType": "VARCHAR", "incentiveType": "VARCHAR",
               "currency": "VARCHAR", "channel": "VARCHAR", "ipAddress": "VARCHAR",
               "userAgent": "VARCHAR", "newCustomer": "VARCHAR"}') AS j
    FROM raw_delta
),
fields AS (
    SELECT pk, stamp, payload, load_seq,
           nullif(trim(j.createdOn), '') AS created_on,
           CASE WHEN CAST($kind AS VARCHAR) = 'widget_view' AND j.widgetType IS DISTINCT FROM 'advocateShare' THEN 'friend'
                WHEN CAST($kind AS VARCHAR) = 'widget_view' THEN 'advocate' END AS viewer,
           CASE WHEN CAST($kind AS VARCHAR) IN ('share', 'advocate_reward') THEN 'advocate'
                WHEN CAST($kind AS VARCHAR) IN ('signup', 'purchase', 'friend_incentive') THEN 'friend' END AS subject,
           j.advocateCustomerId, j.advocateEmail, j.customerId, j.email, j.friendCustomerId, j.friendEmail,
           CASE CAST($kind AS VARCHAR) WHEN 'purchase' THEN j.amount WHEN 'advocate_reward' THEN j.rewardAmount
                WHEN 'friend_incentive' THEN coalesce(j.incentiveAmount, j.rewardAmount) END AS amount_text,
           CASE CAST($kind AS VARCHAR) WHEN 'advocate_reward' THEN j.rewardType
                WHEN 'friend_incentive' THEN coalesce(j.incentiveType, j.rewardType) END AS reward_type_text,
           j.campaignId, j.referralCode, j.couponCode, j.orderId, j.currency, j.channel, j.ipAddress,
           j.userAgent, j.newCustomer
    FROM src
),
parties AS (
    SELECT *,
           nullif(trim(CASE WHEN viewer IS NULL THEN advocateCustomerId WHEN viewer = 'advocate' THEN customerId END), '') AS advocate_id,
           nullif(trim(CASE WHEN viewer IS NULL THEN advocateEmail WHEN viewer = 'advocate' THEN email END), '') AS advocate_email_raw,
           nullif(trim(CASE WHEN CAST($kind AS VARCHAR) IN ('signup', 'purchase') OR viewer = 'friend' THEN customerId
                            WHEN CAST($kind AS VARCHAR) IN ('advocate_reward', 'friend_incentive') THEN friendCustomerId END), '') AS friend_id,
           nullif(trim(CASE WHEN CAST($kind AS VARCHAR) IN ('signup', 'purchase') OR viewer = 'friend' THEN email
                            WHEN CAST($kind AS VARCHAR) IN ('advocate_reward', 'friend_incentive') THEN friendEmail END), '') AS friend_email_raw,
           nullif(trim(amount_text), '') AS amount_raw,
           nullif(trim(currency), '') AS currency_raw
    FROM fields
),
checked AS (
    SELECT *,
           norm_email(advocate_email_raw) AS advocate_email_norm,
           norm_email(friend_email_raw) AS friend_email_norm,
           parse_amount(amount_raw) AS amount_value,
           CASE
               WHEN created_on IS NULL THEN 'missing_required_field'
               WHEN stamp IS NULL THEN 'unparseable_date'
               WHEN has_bad_text(payload) THEN 'invalid_text'
               WHEN too_long(advocate_email_raw, 254) OR too_long(friend_email_raw, 254)
                    OR too_long(advocate_id, 1000) OR too_long(friend_id, 1000) OR too_long(campaignId, 1000)
                    OR too_long(referralCode, 1000) OR too_long(couponCode, 1000) OR too_long(orderId, 1000)
                    OR too_long(channel, 1000) OR too_long(ipAddress, 1000) OR too_long(userAgent, 1000)
                    OR too_long(reward_type_text, 1000) OR too_long(currency_raw, 1000) THEN 'field_too_long'
               WHEN subject = 'advocate' AND advocate_id IS NULL AND advocate_email_raw IS NULL THEN 'missing_email'
               WHEN subject = 'friend' AND friend_id IS NULL AND friend_email_raw IS NULL THEN 'missing_email'
               WHEN advocate_id IS NULL AND advocate_email_raw IS NOT NULL AND NOT is_valid_email(norm_email(advocate_email_raw)) THEN 'malformed_email'
               WHEN friend_id IS NULL AND friend_email_raw IS NOT NULL AND NOT is_valid_email(norm_email(friend_email_raw)) THEN 'malformed_email'
               WHEN is_non_finite(amount_raw) THEN 'non_finite_amount'
               WHEN amount_raw IS NOT NULL AND parse_amount(amount_raw) IS NULL THEN 'unparseable_amount'
               WHEN parse_amount(amount_raw) < 0 THEN 'negative_amount'
               WHEN currency_raw IS NOT NULL AND NOT EXISTS (SELECT 1 FROM staging.currencies c WHERE c.code = upper(currency_raw))
                    THEN 'unknown_currency'
           END AS quarantine_reason
    FROM parties
)
SELECT CAST($source AS VARCHAR) || ':' || CAST($kind AS VARCHAR) || ':' || pk AS event_key,
       CAST($source AS VARCHAR) AS source,
       CAST($kind AS VARCHAR) AS kind,
       nullif(trim(campaignId), '') AS campaign_id,
       stamp AS occurred_at,
       advocate_id AS advocate_customer_id,
       CASE WHEN is_valid_email(advocate_email_norm) THEN advocate_email_norm END AS advocate_email,
       friend_id AS friend_customer_id,
       CASE WHEN is_valid_email(friend_email_norm) THEN friend_email_norm END AS friend_email,
       nullif(trim(referralCode), '') AS referral_code,
       nullif(upper(trim(couponCode)), '') AS coupon_code,
       nullif(trim(orderId), '') AS order_id,
       amount_value AS amount,
       upper(currency_raw) AS currency,
       nullif(trim(channel), '') AS channel,
       nullif(trim(ipAddress), '') AS ip_address,
       nullif(trim(userAgent), '') AS user_agent,
       TRY_CAST(newCustomer AS BOOLEAN) AS new_customer,
       nullif(trim(reward_type_text), '') AS reward_type,
       load_seq,
       pk AS source_id,
       payload AS raw_payload,
       quarantine_reason,
       CASE quarantine_reason
           WHEN 'missing_required_field' THEN 'createdOn is missing'
           WHEN 'unparseable_date' THEN 'createdOn: ' || created_on
           WHEN 'invalid_text' THEN 'a text field holds U+FFFD or a lone surrogate'
           WHEN 'field_too_long' THEN 'an email is longer than 254 or a text field longer than 1000 characters'
           WHEN 'missing_email' THEN 'no ' || subject || ' customer id and no email'
           WHEN 'malformed_email' THEN 'email: ' || CASE WHEN advocate_id IS NULL AND advocate_email_raw IS NOT NULL
                                                          AND NOT is_valid_email(advocate_email_norm)
                                                         THEN advocate_email_raw ELSE friend_email_raw END
           WHEN 'unknown_currency' THEN 'currency: ' || currency_raw
           WHEN 'non_finite_amount' THEN 'amount: ' || amount_raw
           WHEN 'unparseable_amount' THEN 'amount: ' || amount_raw
           WHEN 'negative_amount' THEN 'amount: ' || amount_raw
       END AS quarantine_detail
FROM checked
