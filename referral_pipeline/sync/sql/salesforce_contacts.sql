-- Salesforce Contact write-back: one record per customer that has a Contact in this org
-- (analytics.customers.sf_contact_id, whose record is one of the customer's source records of this
-- Salesforce instance /*SOURCE_ID*/). Updated by Id through sObject Collections: Contacts are never
-- created. Fields: Referral_Customer_Key__c (our customer_key), Referral_Code__c (the advocate code
-- from Friendbuy shares), Loyalty_Points_Balance__c / Loyalty_VIP_Tier__c (the Yotpo pull). Email and
-- names are Salesforce's and are not mapped. Two customers naming one Contact: the lower key wins.
-- No parameters besides the source id: a Contact belongs to the org, not to a market.
SELECT c.customer_key                               AS record_key,
       c.customer_key                               AS subject_key,
       c.sf_contact_id                              AS id,
       c.customer_key                               AS referral_customer_key__c,
       c.referral_code                              AS referral_code__c,
       CAST(c.loyalty_points_balance AS DOUBLE)     AS loyalty_points_balance__c,
       c.loyalty_vip_tier                           AS loyalty_vip_tier__c
FROM analytics.customers c
WHERE c.sf_contact_id IS NOT NULL
  AND NOT coalesce(c.is_deleted, FALSE)
  AND list_contains(c.source_record_keys, /*SOURCE_ID*/ || ':' || c.sf_contact_id)
QUALIFY row_number() OVER (PARTITION BY c.sf_contact_id ORDER BY c.customer_key) = 1
