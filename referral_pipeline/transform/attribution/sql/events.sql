-- analytics.referral_events: the Friendbuy activity of the programs' campaigns, with its market
-- and both parties resolved to a customer_key (every referral stage reads it through the TEMP
-- view fb_events). Inputs: staging.referral_events, analytics.customers, identity.customer_map,
-- identity.email_index, program_rules, market_sources, ev_scope. Parameters: $as_of, $full.
-- Only events at or before as_of count (a backfill sees the world as it was). An incremental run
-- ($full false) computes only the events in ev_scope (events_scope.sql).
-- A party (advocate or friend) is resolved by the identity rules, first that applies (the same
-- order as the identity stage: records that share an email are one person):
--   1. its email is in identity.email_index;
--   2. its Friendbuy customer id is a customer_key (we push customers to Friendbuy by customer_key);
--   3. its customer id is the source id of exactly one customer record of a source that feeds the
--      event's market (identity.customer_map key '<source>:<id>': storefront tracking sends it).
WITH ev AS (
    SELECT e.*, p.market_id
    FROM staging.referral_events e
    JOIN program_rules p ON p.campaign_id = e.campaign_id
    WHERE e.occurred_at <= $as_of AND ($full OR e.event_key IN (SELECT event_key FROM ev_scope))
),
parties AS (
    SELECT DISTINCT market_id, coalesce(advocate_customer_id, '') AS cid, coalesce(advocate_email, '') AS email FROM ev
    UNION
    SELECT DISTINCT market_id, coalesce(friend_customer_id, ''), coalesce(friend_email, '') FROM ev
),
by_key AS (
    SELECT p.market_id, p.cid, p.email, c.customer_key
    FROM parties p JOIN analytics.customers c ON c.customer_key = p.cid
    WHERE p.cid <> ''
),
by_record AS (
    SELECT p.market_id, p.cid, p.email, min(m.customer_key) AS customer_key, count(DISTINCT m.customer_key) AS n
    FROM parties p
    JOIN (SELECT DISTINCT market_id, source FROM market_sources) s ON s.market_id = p.market_id
    JOIN identity.customer_map m ON m.identity_key = s.source || ':' || p.cid
    WHERE p.cid <> ''
    GROUP BY ALL
),
by_email AS (
    SELECT p.market_id, p.cid, p.email, x.customer_key
    FROM parties p JOIN identity.email_index x ON x.email_normalized = p.email
    WHERE p.email <> ''
),
resolved AS (
    SELECT p.market_id, p.cid, p.email,
           coalesce(x.customer_key, k.customer_key, CASE WHEN r.n = 1 THEN r.customer_key END) AS customer_key
    FROM parties p
    LEFT JOIN by_key k ON k.market_id = p.market_id AND k.cid = p.cid AND k.email = p.email
    LEFT JOIN by_record r ON r.market_id = p.market_id AND r.cid = p.cid AND r.email = p.email
    LEFT JOIN by_email x ON x.market_id = p.market_id AND x.cid = p.cid AND x.email = p.email
)
SELECT ev.event_key, ev.kind, ev.market_id, ev.campaign_id, ev.occurred_at,
       a.customer_key AS advocate_customer_key, f.customer_key AS friend_customer_key,
       ev.advocate_customer_id, ev.advocate_email, ev.friend_customer_id, ev.friend_email,
       ev.referral_code, upper(ev.coupon_code) AS coupon_code,
       ev.order_id, ev.amount, ev.currency, lower(ev.channel) AS channel, ev.ip_address, ev.user_agent,
       ev.new_customer, ev.reward_type, CAST($as_of AS TIMESTAMPTZ) AS updated_at
FROM ev
LEFT JOIN resolved a ON a.market_id = ev.market_id AND a.cid = coalesce(ev.advocate_customer_id, '')
                    AND a.email = coalesce(ev.advocate_email, '')
                    AND (ev.advocate_customer_id IS NOT NULL OR ev.advocate_email IS NOT NULL)
LEFT JOIN resolved f ON f.market_id = ev.market_id AND f.cid = coalesce(ev.friend_customer_id, '')
                    AND f.email = coalesce(ev.friend_email, '')
                    AND (ev.friend_customer_id IS NOT NULL OR ev.friend_email IS NOT NULL)
