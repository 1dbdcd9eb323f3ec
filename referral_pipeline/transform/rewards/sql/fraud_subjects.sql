-- What the fraud rules run on (product §6): every referral sign-up and every attributed order,
-- with the parties, the time, the IP and the canonical emails. TEMP fraud_subjects.
-- Inputs: fb_events, ops.fraud_signup_emails (fraud_signup_emails.sql), analytics.referral_attribution
-- (which carries the order's IP), analytics.customers, fraud_scope. Parameters: $full (false: only
-- the subjects that fall in fraud_scope.sql; the filter is applied before the customers are joined),
-- $macro_digest (fraud.CANONICAL_DIGEST).
WITH scope_customers AS (   -- customers whose canonical email is in scope
    SELECT customer_key FROM analytics.customers
    WHERE NOT $full AND email_canonical IN (SELECT value FROM fraud_scope WHERE kind = 'canonical')
),
near AS (                   -- (kind, value, time span, bucket) of the velocity windows in scope: one row per
    -- bucket of `width` microseconds the span touches, so a subject joins on (value, its own bucket)
    -- instead of on the value alone (an IP can carry thousands of subjects)
    SELECT kind, value, lo, hi, unnest(range(epoch_us(lo) // width, epoch_us(hi) // width + 1)) AS bucket, width
    FROM (SELECT kind, value, ts - INTERVAL 1 HOUR AS lo, ts + INTERVAL 1 HOUR AS hi, 3600000000 AS width
          FROM fraud_scope WHERE kind = 'ip_at'
          UNION ALL
          SELECT kind, value, ts - INTERVAL 24 HOUR, ts + INTERVAL 24 HOUR, 86400000000
          FROM fraud_scope WHERE kind = 'advocate_at')
),
all_signups AS MATERIALIZED (   -- (first, so the scope tests below run on sign-ups only; only the
    -- columns used below, since every sign-up is copied; the canonical emails from
    -- ops.fraud_signup_emails where its row was computed from the same emails by the same macro,
    -- else computed here)
    SELECT e.event_key, e.market_id, e.campaign_id, e.advocate_key, e.friend_key, e.occurred_at, e.ip_address,
           CASE WHEN c.event_key IS NULL THEN ref_email_canonical(e.friend_email) ELSE c.friend_canonical END
               AS friend_email_canonical,
           CASE WHEN c.event_key IS NULL THEN ref_email_canonical(e.advocate_email) ELSE c.advocate_canonical END
               AS advocate_email_canonical
    FROM fb_events e
    LEFT JOIN ops.fraud_signup_emails c
           ON c.event_key = e.event_key AND c.macro_digest = $macro_digest
          AND c.friend_email IS NOT DISTINCT FROM e.friend_email
          AND c.advocate_email IS NOT DISTINCT FROM e.advocate_email
    WHERE e.kind = 'signup'
),
signups AS (
    SELECT * FROM all_signups e
    WHERE ($full
           OR e.event_key IN (SELECT value FROM fraud_scope WHERE kind = 'subject')
           OR e.advocate_key IN (SELECT value FROM fraud_scope WHERE kind IN ('advocate', 'customer'))
           OR e.friend_key IN (SELECT value FROM fraud_scope WHERE kind = 'customer')
           OR e.advocate_key || '|' || e.ip_address IN (SELECT value FROM fraud_scope WHERE kind = 'advocate_ip')
           OR EXISTS (SELECT 1 FROM near n WHERE n.kind = 'ip_at' AND n.value = e.ip_address
                      AND n.bucket = epoch_us(e.occurred_at) // 3600000000 AND e.occurred_at BETWEEN n.lo AND n.hi)
           OR e.friend_key IN (SELECT customer_key FROM scope_customers)
           OR e.advocate_key IN (SELECT customer_key FROM scope_customers)
           OR e.friend_email_canonical IN (SELECT value FROM fraud_scope WHERE kind = 'canonical')
           OR e.advocate_email_canonical IN (SELECT value FROM fraud_scope WHERE kind = 'canonical'))
),
orders AS (
    SELECT * FROM analytics.referral_attribution a
    WHERE $full
       OR a.order_key IN (SELECT value FROM fraud_scope WHERE kind = 'subject')
       OR a.advocate_customer_key IN (SELECT value FROM fraud_scope WHERE kind IN ('advocate', 'customer'))
       OR a.friend_customer_key IN (SELECT value FROM fraud_scope WHERE kind = 'customer')
       OR a.advocate_customer_key || '|' || a.ip_address IN (SELECT value FROM fraud_scope WHERE kind = 'advocate_ip')
       OR EXISTS (SELECT 1 FROM near n WHERE n.kind = 'ip_at' AND n.value = a.ip_address
                  AND n.bucket = epoch_us(a.placed_at) // 3600000000 AND a.placed_at BETWEEN n.lo AND n.hi)
       OR EXISTS (SELECT 1 FROM near n WHERE n.kind = 'advocate_at' AND n.value = a.advocate_customer_key
                  AND n.bucket = epoch_us(a.placed_at) // 86400000000 AND a.placed_at BETWEEN n.lo AND n.hi)
       OR a.friend_email_canonical IN (SELECT value FROM fraud_scope WHERE kind = 'canonical')
       OR a.advocate_email_canonical IN (SELECT value FROM fraud_scope WHERE kind = 'canonical')
)
SELECT 'signup' AS subject_type, e.event_key AS subject_key, e.market_id, e.campaign_id,
       e.advocate_key, e.friend_key, e.occurred_at AS event_at, e.ip_address AS ip,
       coalesce(fc.email_canonical, e.friend_email_canonical) AS friend_canonical,
       coalesce(ac.email_canonical, e.advocate_email_canonical) AS advocate_canonical,
       fc.created_at AS friend_created_at
FROM signups e
LEFT JOIN analytics.customers fc ON fc.customer_key = e.friend_key
LEFT JOIN analytics.customers ac ON ac.customer_key = e.advocate_key
UNION ALL
SELECT 'order', a.order_key, a.market_id, a.campaign_id,
       a.advocate_customer_key, a.friend_customer_key, a.placed_at, a.ip_address,
       a.friend_email_canonical, a.advocate_email_canonical, fc.created_at
FROM orders a
LEFT JOIN analytics.customers fc ON fc.customer_key = a.friend_customer_key
