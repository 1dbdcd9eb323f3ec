-- BigCommerce customers (attribute values referral_code, referral_reward_status): one record per
-- customer record of the instance ($destination = the source instance id, e.g. bc) with a code or a
-- reward status. customer_id is NULL for a non-integer id (the payload model then refuses the record).
SELECT v.record_id                         AS record_key,
       v.customer_key                      AS subject_key,
       TRY_CAST(v.record_id AS BIGINT)     AS customer_id,
       v.referral_code                     AS referral_code,
       v.referral_reward_status            AS referral_reward_status
FROM commerce_customer_values($destination) v
WHERE v.referral_code IS NOT NULL OR v.referral_reward_status IS NOT NULL
