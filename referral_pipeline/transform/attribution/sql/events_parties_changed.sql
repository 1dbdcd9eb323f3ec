-- TEMP ev_parties (incremental events run, without identity.map_seq): the party values (kind
-- 'email' | 'id') whose resolution may have changed: the emails and ids of every customer the
-- identity stage (re)computed since the last run (analytics.customers.load_seq; identity.customer_map
-- and identity.email_index only grow, and every key they gain belongs to a customer the identity run
-- rewrites). A party's id may be the customer_key itself, or '<id>' of a record '<source>:<id>'.
-- Inputs: analytics.customers, identity.email_index, identity.customer_map. Parameters: $customers_wm.
WITH changed_customers AS (
    SELECT customer_key FROM analytics.customers WHERE load_seq > $customers_wm
)
SELECT 'email' AS kind, email_normalized AS v FROM identity.email_index
WHERE customer_key IN (SELECT customer_key FROM changed_customers)
UNION ALL
SELECT 'id', customer_key FROM changed_customers
UNION ALL
SELECT 'id', substr(identity_key, strpos(identity_key, ':') + 1) FROM identity.customer_map
WHERE customer_key IN (SELECT customer_key FROM changed_customers)
