-- Yotpo customers (POST /customers upsert): every customer of a Yotpo market with an email.
-- id = our customer_key (Yotpo stores it as third_party_id and finds the customer by it first, so an
-- email change updates the same loyalty customer); opted_in = marketing consent of the golden record.
SELECT c.customer_key      AS record_key,
       c.customer_key      AS subject_key,
       c.customer_key      AS id,
       nullif(trim(c.email), '')             AS email,
       c.first_name        AS first_name,
       c.last_name         AS last_name,
       c.marketing_consent AS opted_in,
       c.phone             AS phone_number
FROM analytics.customers c
WHERE list_contains($markets, c.market_id)
  AND nullif(trim(c.email), '') IS NOT NULL
  AND NOT coalesce(c.is_deleted, false)
