-- commercetools customers (custom fields of type referral-customer): one record per customer record of
-- the instance ($destination = the source instance id, e.g. ct) with something to write.
-- Payload: id (the commercetools customer id, addresses the record) and the three values; the send
-- maps them to referralCode, referralRewardStatus, loyaltyPoints.
SELECT v.record_id               AS record_key,
       v.customer_key            AS subject_key,
       v.record_id               AS id,
       v.referral_code           AS referral_code,
       v.referral_reward_status  AS referral_reward_status,
       v.loyalty_points          AS loyalty_points
FROM commerce_customer_values($destination) v
