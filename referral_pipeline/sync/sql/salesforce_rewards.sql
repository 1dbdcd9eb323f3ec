-- Salesforce Referral_Reward__c: one record per row of analytics.rewards of the instance's markets,
-- upserted by Reward_Key__c (= reward_key) with the same status. Promo_Code__c is the coupon code of
-- the advocate reward Friendbuy distributed for (campaign, friend) (analytics.referral_events kind
-- advocate_reward; the first one). Fraud_Rules__c: the rule names joined by ';'. Review_Decision__c /
-- Review_Notes__c belong to Salesforce users and are not mapped. Contact lookups only where the
-- customer has a Contact in this org. Parameters: $markets (and /*SOURCE_ID*/).
WITH promo AS (
    SELECT campaign_id, friend_customer_key,
           arg_min(coupon_code, {'at': occurred_at, 'k': event_key}) AS coupon_code
    FROM analytics.referral_events
    WHERE kind = 'advocate_reward' AND friend_customer_key IS NOT NULL AND coupon_code IS NOT NULL
    GROUP BY ALL
),
contacts AS (
    SELECT customer_key, sf_contact_id FROM analytics.customers
    WHERE sf_contact_id IS NOT NULL AND NOT coalesce(is_deleted, FALSE)
      AND list_contains(source_record_keys, /*SOURCE_ID*/ || ':' || sf_contact_id)
)
SELECT r.reward_key                                                                 AS record_key,
       r.friend_customer_key                                                        AS subject_key,
       r.reward_key                                                                 AS reward_key__c,
       ac.sf_contact_id                                                             AS advocate_contact__c,
       fc.sf_contact_id                                                             AS friend_contact__c,
       r.advocate_customer_key                                                      AS advocate_customer_key__c,
       r.friend_customer_key                                                        AS friend_customer_key__c,
       r.order_key                                                                  AS order_key__c,
       r.campaign_id                                                                AS campaign_id__c,
       r.market_id                                                                  AS market__c,
       r.status                                                                     AS status__c,
       r.reason                                                                     AS status_reason__c,
       CAST(r.amount AS DOUBLE)                                                     AS amount__c,
       r.currency                                                                   AS currencyisocode,
       pr.coupon_code                                                               AS promo_code__c,
       nullif(array_to_string(r.fraud_rules, ';'), '')                              AS fraud_rules__c,
       strftime(timezone('UTC', r.status_changed_at), '%Y-%m-%dT%H:%M:%S.%gZ')      AS status_changed_at__c
FROM analytics.rewards r
LEFT JOIN promo pr ON pr.campaign_id = r.campaign_id AND pr.friend_customer_key = r.friend_customer_key
LEFT JOIN contacts ac ON ac.customer_key = r.advocate_customer_key
LEFT JOIN contacts fc ON fc.customer_key = r.friend_customer_key
WHERE list_contains($markets, r.market_id)
