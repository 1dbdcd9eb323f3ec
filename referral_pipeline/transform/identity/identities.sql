-- Identity assignment (docs/identity.md, "Identities and keys"). Reads the delta temp tables of
-- deltas.sql; appends to identity.customer_map and identity.email_index (never updates them).
-- Parameters: $as_of, $run_id, $map_seq (this run's value of identity.map_seq, on every row added).

-- step: index_changed_emails
-- An existing identity whose record now carries an email the index has never seen brings that
-- email in under its own key (first by assignment time when several do in one run), so a later
-- record with this email joins it. Emails already indexed keep their key.
INSERT INTO identity.email_index (email_normalized, customer_key, first_seen_at, run_id, identity_key, map_seq)
SELECT r.email_normalized,
       first(m.customer_key ORDER BY m.assigned_at, m.identity_key),
       CAST($as_of AS TIMESTAMPTZ), CAST($run_id AS VARCHAR),
       first(m.identity_key ORDER BY m.assigned_at, m.identity_key), CAST($map_seq AS BIGINT)
FROM d_records r
JOIN identity.customer_map m ON m.identity_key = r.customer_record_key
WHERE r.email_normalized IS NOT NULL
  AND r.email_normalized NOT IN (SELECT email_normalized FROM identity.email_index)
GROUP BY r.email_normalized;

-- step: new_record_identities
-- Customer records not in the map yet. A known email joins its key; otherwise a deterministic new
-- key from the email (or, without an email, from the identity key), so a database rebuilt from the
-- same input assigns the same keys.
CREATE OR REPLACE TEMP TABLE assigned AS
SELECT r.customer_record_key AS identity_key, 'customer_record' AS identity_type, r.source,
       r.source_customer_id AS source_id, r.email_normalized AS email,
       coalesce(e.customer_key, 'cus_' || left(sha256(coalesce(r.email_normalized, r.customer_record_key)), 16)) AS customer_key,
       CASE WHEN e.customer_key IS NOT NULL THEN 'known_email'
            WHEN r.email_normalized IS NOT NULL THEN 'new_email'
            ELSE 'new_identity' END AS assigned_by,
       1 AS phase
FROM d_records r
ANTI JOIN identity.customer_map m ON m.identity_key = r.customer_record_key
LEFT JOIN identity.email_index e ON e.email_normalized = r.email_normalized;

-- step: insert_record_identities
INSERT INTO identity.customer_map (identity_key, customer_key, email_normalized_at_assignment, assigned_at, run_id,
                                   identity_type, source, source_id, assigned_by, map_seq)
SELECT identity_key, customer_key, email, CAST($as_of AS TIMESTAMPTZ), CAST($run_id AS VARCHAR),
       identity_type, source, source_id, assigned_by, CAST($map_seq AS BIGINT)
FROM assigned WHERE phase = 1;

-- step: index_record_emails
INSERT INTO identity.email_index (email_normalized, customer_key, first_seen_at, run_id, identity_key, map_seq)
SELECT email, min(customer_key), CAST($as_of AS TIMESTAMPTZ), CAST($run_id AS VARCHAR), min(identity_key),
       CAST($map_seq AS BIGINT)
FROM assigned
WHERE phase = 1 AND assigned_by = 'new_email'
GROUP BY email;

-- step: new_order_identities
-- Identities orders name that the map does not hold yet (every staged record is in it by now):
-- guest buyer emails of orders without a customer record, and customer records an order names
-- that are not staged (quarantined or not extracted yet), known by the order's email until they
-- arrive (the email of the earliest order).
INSERT INTO assigned
WITH missing AS (
    SELECT o.*, coalesce(o.customer_record_key, 'guest:' || o.email_normalized) AS identity_key
    FROM d_orders o
    ANTI JOIN identity.customer_map m ON m.identity_key = coalesce(o.customer_record_key, 'guest:' || o.email_normalized)
    WHERE o.customer_record_key IS NOT NULL OR o.email_normalized IS NOT NULL
),
identities AS (
    SELECT identity_key,
           CASE WHEN bool_or(customer_record_key IS NOT NULL) THEN 'customer_record' ELSE 'guest' END AS identity_type,
           any_value(CASE WHEN customer_record_key IS NOT NULL THEN source END) AS source,
           any_value(CASE WHEN customer_record_key IS NOT NULL THEN substr(customer_record_key, length(source) + 2) END) AS source_id,
           arg_min(email_normalized, identity_order_rank(placed_at, order_key))
               FILTER (WHERE email_normalized IS NOT NULL) AS email
    FROM missing GROUP BY identity_key
)
SELECT i.identity_key, i.identity_type, i.source, i.source_id, i.email,
       coalesce(e.customer_key, 'cus_' || left(sha256(coalesce(i.email, i.identity_key)), 16)),
       CASE WHEN e.customer_key IS NOT NULL THEN 'known_email'
            WHEN i.email IS NOT NULL THEN 'new_email'
            ELSE 'new_identity' END,
       2
FROM identities i LEFT JOIN identity.email_index e ON e.email_normalized = i.email;

-- step: insert_order_identities
INSERT INTO identity.customer_map (identity_key, customer_key, email_normalized_at_assignment, assigned_at, run_id,
                                   identity_type, source, source_id, assigned_by, map_seq)
SELECT identity_key, customer_key, email, CAST($as_of AS TIMESTAMPTZ), CAST($run_id AS VARCHAR),
       identity_type, source, source_id, assigned_by, CAST($map_seq AS BIGINT)
FROM assigned WHERE phase = 2;

-- step: index_order_emails
INSERT INTO identity.email_index (email_normalized, customer_key, first_seen_at, run_id, identity_key, map_seq)
SELECT email, min(customer_key), CAST($as_of AS TIMESTAMPTZ), CAST($run_id AS VARCHAR), min(identity_key),
       CAST($map_seq AS BIGINT)
FROM assigned
WHERE phase = 2 AND assigned_by = 'new_email'
GROUP BY email;

-- step: fb_parties
-- Friendbuy people: the advocate and the friend of every changed referral event.
CREATE OR REPLACE TEMP TABLE fb_parties AS
SELECT event_key, occurred_at, 'advocate' AS role, advocate_email AS email, advocate_customer_id AS fb_id
FROM d_events WHERE advocate_email IS NOT NULL OR advocate_customer_id IS NOT NULL
UNION ALL
SELECT event_key, occurred_at, 'friend', friend_email, friend_customer_id
FROM d_events WHERE friend_email IS NOT NULL OR friend_customer_id IS NOT NULL;

-- step: fb_ids
-- A Friendbuy customerId names our customer_key (we pushed it), or a source customer id (storefront
-- tracking): '<id>' or '<source>:<id>'. A source id held by records of two different keys is ambiguous.
CREATE OR REPLACE TEMP TABLE fb_ids AS
WITH ids AS (SELECT DISTINCT fb_id FROM fb_parties WHERE fb_id IS NOT NULL),
by_key AS (
    SELECT DISTINCT m.customer_key AS fb_id FROM identity.customer_map m SEMI JOIN ids i ON i.fb_id = m.customer_key
),
by_source AS (
    SELECT fb_id, min(customer_key) AS customer_key, count(DISTINCT customer_key) AS matches
    FROM (SELECT m.source_id AS fb_id, m.customer_key FROM identity.customer_map m
          SEMI JOIN ids i ON i.fb_id = m.source_id WHERE m.identity_type = 'customer_record'
          UNION ALL
          SELECT m.identity_key, m.customer_key FROM identity.customer_map m
          SEMI JOIN ids i ON i.fb_id = m.identity_key WHERE m.identity_type = 'customer_record')
    GROUP BY fb_id
)
SELECT i.fb_id,
       CASE WHEN k.fb_id IS NOT NULL THEN i.fb_id WHEN s.matches = 1 THEN s.customer_key END AS customer_key,
       CASE WHEN k.fb_id IS NOT NULL THEN 'customer_key'
            WHEN s.matches = 1 THEN 'source_customer_id'
            WHEN s.matches > 1 THEN 'ambiguous_customer_id'
            ELSE 'unknown_customer_id' END AS resolved_by
FROM ids i LEFT JOIN by_key k ON k.fb_id = i.fb_id LEFT JOIN by_source s ON s.fb_id = i.fb_id;

-- step: fb_new
-- Friendbuy emails the index does not know become identities 'friendbuy:<email>': under the key
-- their customer id resolves to (earliest event first), else a new key from the email.
CREATE OR REPLACE TEMP TABLE fb_new AS
SELECT p.email,
       first(i.customer_key ORDER BY p.occurred_at, p.event_key, p.role) FILTER (WHERE i.customer_key IS NOT NULL) AS id_key
FROM fb_parties p LEFT JOIN fb_ids i ON i.fb_id = p.fb_id
WHERE p.email IS NOT NULL
  AND p.email NOT IN (SELECT email_normalized FROM identity.email_index)
GROUP BY p.email;

-- step: fb_insert
INSERT INTO identity.customer_map (identity_key, customer_key, email_normalized_at_assignment, assigned_at, run_id,
                                   identity_type, source, source_id, assigned_by, map_seq)
SELECT 'friendbuy:' || f.email, coalesce(f.id_key, 'cus_' || left(sha256(f.email), 16)), f.email,
       CAST($as_of AS TIMESTAMPTZ), CAST($run_id AS VARCHAR), 'friendbuy', NULL, NULL,
       CASE WHEN f.id_key IS NOT NULL THEN 'friendbuy_customer_id' ELSE 'new_email' END, CAST($map_seq AS BIGINT)
FROM fb_new f ANTI JOIN identity.customer_map m ON m.identity_key = 'friendbuy:' || f.email;

-- step: fb_index
INSERT INTO identity.email_index (email_normalized, customer_key, first_seen_at, run_id, identity_key, map_seq)
SELECT f.email, m.customer_key, CAST($as_of AS TIMESTAMPTZ), CAST($run_id AS VARCHAR), m.identity_key,
       CAST($map_seq AS BIGINT)
FROM fb_new f JOIN identity.customer_map m ON m.identity_key = 'friendbuy:' || f.email;

-- step: fb_resolved
-- Email first (every Friendbuy email is in the index now), then the customer id.
CREATE OR REPLACE TEMP TABLE fb_resolved AS
SELECT p.event_key, p.role,
       coalesce(e.customer_key, i.customer_key) AS customer_key,
       CASE WHEN e.customer_key IS NOT NULL THEN 'email' ELSE i.resolved_by END AS resolved_by
FROM fb_parties p
LEFT JOIN identity.email_index e ON e.email_normalized = p.email
LEFT JOIN fb_ids i ON i.fb_id = p.fb_id;

-- step: record_state
DELETE FROM identity.record_state
WHERE customer_record_key IN (SELECT customer_record_key FROM d_records UNION ALL SELECT customer_record_key FROM gone_records);

-- step: record_state_insert
INSERT INTO identity.record_state (customer_record_key, customer_key, load_seq)
SELECT r.customer_record_key, m.customer_key, r.load_seq
FROM d_records r JOIN identity.customer_map m ON m.identity_key = r.customer_record_key;

-- step: parties_delete
DELETE FROM identity.referral_parties
WHERE event_key IN (SELECT event_key FROM d_events UNION ALL SELECT event_key FROM gone_events);

-- step: parties_insert
INSERT INTO identity.referral_parties
SELECT e.event_key, e.source, e.kind, e.campaign_id, e.occurred_at, e.referral_code, e.coupon_code,
       e.advocate_customer_id, e.advocate_email, a.customer_key, a.resolved_by,
       e.friend_customer_id, e.friend_email, f.customer_key, f.resolved_by, e.load_seq
FROM d_events e
LEFT JOIN fb_resolved a ON a.event_key = e.event_key AND a.role = 'advocate'
LEFT JOIN fb_resolved f ON f.event_key = e.event_key AND f.role = 'friend';
