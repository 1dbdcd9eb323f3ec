-- Salesforce Referral__c: one record per (campaign, advocate, friend) relationship of the instance's
-- markets, from analytics.referral_attribution (every attributed order of that pair).
-- Referral_Key__c = 'ref_' || 16 hex of sha256(campaign_id|advocate_customer_key|friend_customer_key).
-- The descriptive fields come from the relationship's first attributed order (placed_at, order_key):
-- method, referral code, click and sign-up times (if_empty in data/field_ownership.yaml: written when
-- the record is created, so re-attribution of the same order — e.g. Friendbuy echoing our purchase
-- push, method friendbuy over referral_code — does not rewrite them); First_Purchase_At__c is the
-- earliest attributed order. Contact lookups only where the customer has a Contact in this org.
-- Parameters: $markets (and /*SOURCE_ID*/, the Salesforce source instance).
WITH pairs AS (
    SELECT campaign_id, advocate_customer_key, friend_customer_key,
           any_value(market_id ORDER BY placed_at, order_key)                        AS market_id,
           arg_min(attribution_method, {'at': placed_at, 'k': order_key})           AS attribution_method,
           arg_min(referral_code, {'at': placed_at, 'k': order_key})                AS referral_code,
           arg_min(clicked_at, {'at': placed_at, 'k': order_key})                   AS clicked_at,
           arg_min(signed_up_at, {'at': placed_at, 'k': order_key})                 AS signed_up_at,
           min(placed_at)                                                           AS first_purchase_at
    FROM analytics.referral_attribution
    WHERE list_contains($markets, market_id)
    GROUP BY ALL
),
contacts AS (
    SELECT customer_key, sf_contact_id FROM analytics.customers
    WHERE sf_contact_id IS NOT NULL AND NOT coalesce(is_deleted, FALSE)
      AND list_contains(source_record_keys, /*SOURCE_ID*/ || ':' || sf_contact_id)
)
SELECT 'ref_' || left(sha256(p.campaign_id || '|' || p.advocate_customer_key || '|' || p.friend_customer_key), 16)
                                                                                    AS record_key,
       p.friend_customer_key                                                        AS subject_key,
       'ref_' || left(sha256(p.campaign_id || '|' || p.advocate_customer_key || '|' || p.friend_customer_key), 16)
                                                                                    AS referral_key__c,
       ac.sf_contact_id                                                             AS advocate_contact__c,
       fc.sf_contact_id                                                             AS friend_contact__c,
       p.advocate_customer_key                                                      AS advocate_customer_key__c,
       p.friend_customer_key                                                        AS friend_customer_key__c,
       p.campaign_id                                                                AS campaign_id__c,
       p.market_id                                                                  AS market__c,
       p.attribution_method                                                         AS attribution_method__c,
       p.referral_code                                                              AS referral_code__c,
       strftime(timezone('UTC', p.clicked_at), '%Y-%m-%dT%H:%M:%S.%gZ')             AS clicked_at__c,
       strftime(timezone('UTC', p.signed_up_at), '%Y-%m-%dT%H:%M:%S.%gZ')           AS signed_up_at__c,
       strftime(timezone('UTC', p.first_purchase_at), '%Y-%m-%dT%H:%M:%S.%gZ')      AS first_purchase_at__c
FROM pairs p
LEFT JOIN contacts ac ON ac.customer_key = p.advocate_customer_key
LEFT JOIN contacts fc ON fc.customer_key = p.friend_customer_key
