-- Friendbuy customers (POST /v1/customer, an upsert by customerId = our customer_key): every customer
-- of the instance's markets with an email, not deleted. The Salesforce Contact/Account ids and the
-- market travel in additionalProperties (FriendbuyCustomer.to_mapi). Friendbuy's own referral code
-- (analytics.customers.referral_code comes from its exports) is never sent back.
SELECT c.customer_key  AS record_key,
       c.customer_key  AS subject_key,
       c.customer_key  AS customer_id,
       nullif(trim(c.email), '')         AS email,
       c.first_name    AS first_name,
       c.last_name     AS last_name,
       c.sf_contact_id AS sf_contact_id,
       c.sf_account_id AS sf_account_id,
       c.market_id     AS market
FROM analytics.customers c
WHERE list_contains($markets, c.market_id)
  AND nullif(trim(c.email), '') IS NOT NULL
  AND NOT coalesce(c.is_deleted, false)
