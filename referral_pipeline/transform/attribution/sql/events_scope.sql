-- TEMP ev_scope (incremental run): the events whose row in analytics.referral_events may differ
-- from the stored one, i.e. everything the full computation (events.sql) would change:
--   * staging rows added or rewritten since the last run (load_seq above the watermark);
--   * events that crossed the as_of cut (occurred between the previous and this run's as_of);
--   * events naming a party whose resolution may have changed: an email or a customer id of a
--     customer the identity stage (re)computed since the last run (analytics.customers.load_seq;
--     identity.customer_map and identity.email_index only grow, and every key they gain belongs to
--     a customer the identity run rewrites);
--   * stored events no longer in staging at or before as_of (removed, or as_of moved back).
-- Inputs: staging.referral_events, analytics.customers, identity.email_index, identity.customer_map,
-- analytics.referral_events. Parameters: $as_of, $prev_as_of, $events_wm, $customers_wm.
WITH changed_customers AS (
    SELECT customer_key FROM analytics.customers WHERE load_seq > $customers_wm
),
emails AS (
    SELECT email_normalized AS v FROM identity.email_index
    WHERE customer_key IN (SELECT customer_key FROM changed_customers)
),
ids AS (   -- a party's id may be the customer_key itself, or '<id>' of a record '<source>:<id>'
    SELECT customer_key AS v FROM changed_customers
    UNION ALL
    SELECT substr(identity_key, strpos(identity_key, ':') + 1) FROM identity.customer_map
    WHERE customer_key IN (SELECT customer_key FROM changed_customers)
)
SELECT event_key FROM staging.referral_events
WHERE occurred_at <= $as_of
  AND (load_seq > $events_wm
       OR occurred_at > least(CAST($as_of AS TIMESTAMPTZ), CAST($prev_as_of AS TIMESTAMPTZ))
       OR advocate_email IN (SELECT v FROM emails) OR friend_email IN (SELECT v FROM emails)
       OR advocate_customer_id IN (SELECT v FROM ids) OR friend_customer_id IN (SELECT v FROM ids))
UNION
SELECT event_key FROM analytics.referral_events
WHERE event_key NOT IN (SELECT event_key FROM staging.referral_events WHERE occurred_at <= $as_of)
