-- Changed inputs of an identity run (docs/identity.md, "Incremental runs").
-- The delta of a staging table is its rows with load_seq above the stage's watermark (temp table
-- id_watermarks, filled by the runner; -1 = everything). The deltas are views, so a full run holds
-- no copy of its input. When the row counts show that keys vanished from staging (a record moved
-- to quarantine) or arrived with an older load_seq, the *_full variants compare the whole staging
-- table with what the stage has processed, and the delta becomes the differing keys.

-- step: d_records
CREATE OR REPLACE TEMP VIEW d_records AS
SELECT * FROM staging.customers
WHERE load_seq > (SELECT seq FROM id_watermarks WHERE input = 'customers');

-- step: d_records_full
CREATE OR REPLACE TEMP TABLE d_record_keys AS
SELECT c.customer_record_key FROM staging.customers c
ANTI JOIN identity.record_state s ON s.customer_record_key = c.customer_record_key AND s.load_seq = c.load_seq;

-- step: d_records_full_view
CREATE OR REPLACE TEMP VIEW d_records AS
SELECT c.* FROM staging.customers c SEMI JOIN d_record_keys k ON k.customer_record_key = c.customer_record_key;

-- step: gone_records_none
CREATE OR REPLACE TEMP TABLE gone_records AS
SELECT customer_record_key, customer_key FROM identity.record_state LIMIT 0;

-- step: gone_records_full
CREATE OR REPLACE TEMP TABLE gone_records AS
SELECT s.customer_record_key, s.customer_key FROM identity.record_state s
ANTI JOIN staging.customers c ON c.customer_record_key = s.customer_record_key;

-- step: count_records
SELECT (SELECT count(*) FROM staging.customers),
       (SELECT count(*) FROM identity.record_state),
       (SELECT count(*) FROM d_records d ANTI JOIN identity.record_state s ON s.customer_record_key = d.customer_record_key);

-- step: d_orders
CREATE OR REPLACE TEMP VIEW d_orders AS
SELECT * FROM staging.orders
WHERE load_seq > (SELECT seq FROM id_watermarks WHERE input = 'orders');

-- step: d_orders_full
CREATE OR REPLACE TEMP TABLE d_order_keys AS
SELECT o.order_key FROM staging.orders o
ANTI JOIN identity.order_state s ON s.order_hash = hash(o.order_key) AND s.load_seq = o.load_seq;

-- step: d_orders_full_view
CREATE OR REPLACE TEMP VIEW d_orders AS
SELECT o.* FROM staging.orders o SEMI JOIN d_order_keys k ON k.order_key = o.order_key;

-- step: gone_orders_none
CREATE OR REPLACE TEMP TABLE gone_orders AS
SELECT order_hash, identity_hash FROM identity.order_state LIMIT 0;

-- step: gone_orders_full
CREATE OR REPLACE TEMP TABLE gone_orders AS
SELECT s.order_hash, s.identity_hash FROM identity.order_state s
ANTI JOIN staging.orders o ON hash(o.order_key) = s.order_hash;

-- step: count_orders
SELECT (SELECT count(*) FROM staging.orders),
       (SELECT count(*) FROM identity.order_state),
       (SELECT count(*) FROM d_orders d ANTI JOIN identity.order_state s ON s.order_hash = hash(d.order_key));

-- step: retry_events
-- events with a Friendbuy customer id that did not resolve before and now matches a known customer
CREATE OR REPLACE TEMP TABLE retry_event_keys AS
WITH unresolved AS (
    SELECT event_key, advocate_customer_id AS fb_id FROM identity.referral_parties
    WHERE advocate_customer_key IS NULL AND advocate_customer_id IS NOT NULL
    UNION ALL
    SELECT event_key, friend_customer_id FROM identity.referral_parties
    WHERE friend_customer_key IS NULL AND friend_customer_id IS NOT NULL
)
SELECT u.event_key FROM unresolved u SEMI JOIN identity.customer_map m ON m.customer_key = u.fb_id
UNION
SELECT u.event_key FROM unresolved u SEMI JOIN identity.customer_map m
    ON m.identity_type = 'customer_record' AND m.source_id = u.fb_id
UNION
SELECT u.event_key FROM unresolved u SEMI JOIN identity.customer_map m
    ON m.identity_type = 'customer_record' AND m.identity_key = u.fb_id;

-- step: d_events
-- (the rows above the watermark, then the retried rows not among them: two disjoint reads instead
-- of one filter with OR, which reads every column of every staged event, ~40 ms on 636k)
CREATE OR REPLACE TEMP VIEW d_events AS
SELECT * FROM staging.referral_events
WHERE load_seq > (SELECT seq FROM id_watermarks WHERE input = 'events')
UNION ALL
SELECT * FROM staging.referral_events
WHERE event_key IN (SELECT event_key FROM retry_event_keys)
  AND (load_seq > (SELECT seq FROM id_watermarks WHERE input = 'events')) IS NOT TRUE;

-- step: d_events_full
CREATE OR REPLACE TEMP TABLE d_event_keys AS
SELECT e.event_key FROM staging.referral_events e
ANTI JOIN identity.referral_parties p ON p.event_key = e.event_key AND p.load_seq = e.load_seq
UNION
SELECT event_key FROM retry_event_keys;

-- step: d_events_full_view
CREATE OR REPLACE TEMP VIEW d_events AS
SELECT e.* FROM staging.referral_events e SEMI JOIN d_event_keys k ON k.event_key = e.event_key;

-- step: gone_events_none
CREATE OR REPLACE TEMP TABLE gone_events AS
SELECT event_key FROM identity.referral_parties LIMIT 0;

-- step: gone_events_full
CREATE OR REPLACE TEMP TABLE gone_events AS
SELECT p.event_key FROM identity.referral_parties p ANTI JOIN staging.referral_events e ON e.event_key = p.event_key;

-- step: count_events
SELECT (SELECT count(*) FROM staging.referral_events),
       (SELECT count(*) FROM identity.referral_parties),
       (SELECT count(*) FROM d_events d ANTI JOIN identity.referral_parties p ON p.event_key = d.event_key);

-- step: affected_before
-- customer keys whose analytics.customers row may change, as they were before this run's changes
-- (an order's previous identity only where it left that identity: changed orders that name the
-- same one are counted by affected_after, customers.sql)
CREATE OR REPLACE TEMP TABLE affected AS
SELECT customer_key FROM gone_records
UNION ALL
SELECT m.customer_key FROM identity.customer_map m
WHERE hash(m.identity_key) IN (
    SELECT s.identity_hash FROM identity.order_state s
    JOIN d_orders d ON s.order_hash = hash(d.order_key)
    WHERE s.identity_hash IS DISTINCT FROM hash(coalesce(d.customer_record_key, 'guest:' || d.email_normalized))
    UNION ALL
    SELECT identity_hash FROM gone_orders)
UNION ALL
SELECT unnest([p.advocate_customer_key, p.friend_customer_key]) FROM identity.referral_parties p
WHERE p.event_key IN (SELECT event_key FROM d_events UNION ALL SELECT event_key FROM gone_events);
