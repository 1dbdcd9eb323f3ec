-- TEMP attr_new: the rows of analytics.referral_attribution for the attributed orders in
-- attr_winners (all of them on a full run; on an incremental run those evaluated and those whose
-- enrichment may have changed), enriched with the last click on its referral code and the
-- friend's last referral sign-up before the order, the channel of the referral (the share's, else
-- the evidence event's), the canonical emails and is_new_customer.
-- Inputs: attr_winners, analytics.customers, fb_events. Parameters: $as_of.
WITH codes AS (     -- (the ASOF joins below sort only the clicks and sign-ups of these codes and friends)
    SELECT DISTINCT market_id, lower(referral_code) AS code_lc FROM attr_winners WHERE referral_code IS NOT NULL
),
clicks AS (
    SELECT e.market_id, e.code_lc, e.occurred_at FROM fb_events e
    SEMI JOIN codes c ON c.market_id = e.market_id AND c.code_lc = e.code_lc
    WHERE e.kind = 'click' AND e.code_lc IS NOT NULL
),
signups AS (
    SELECT market_id, friend_key, occurred_at FROM fb_events
    WHERE kind = 'signup' AND friend_key IS NOT NULL AND friend_key IN (SELECT friend_key FROM attr_winners)
),
last_click AS (
    SELECT b.order_key, c.occurred_at AS clicked_at
    FROM (SELECT order_key, market_id, placed_at, lower(referral_code) AS code_lc FROM attr_winners
          WHERE referral_code IS NOT NULL) b
    ASOF JOIN clicks c ON c.market_id = b.market_id AND c.code_lc = b.code_lc AND b.placed_at >= c.occurred_at
),
last_signup AS (
    SELECT b.order_key, s.occurred_at AS signed_up_at
    FROM attr_winners b
    ASOF JOIN signups s ON s.market_id = b.market_id AND s.friend_key = b.friend_key AND b.placed_at >= s.occurred_at
),
share_channel AS (
    SELECT e.market_id, e.code_lc, first(e.channel ORDER BY e.occurred_at, e.event_key) AS channel
    FROM fb_events e SEMI JOIN codes c ON c.market_id = e.market_id AND c.code_lc = e.code_lc
    WHERE e.kind = 'share' AND e.code_lc IS NOT NULL AND e.channel IS NOT NULL
    GROUP BY e.market_id, e.code_lc
),
parties AS (      -- (the friends' and advocates' customer rows, read once)
    SELECT customer_key, email_canonical, first_order_at FROM analytics.customers
    WHERE customer_key IN (SELECT friend_key FROM attr_winners UNION ALL SELECT advocate_key FROM attr_winners)
)
SELECT b.order_key,
       b.friend_key AS friend_customer_key,
       b.advocate_key AS advocate_customer_key,
       b.campaign_id,
       b.market_id,
       b.method AS attribution_method,
       b.referral_code,
       lc.clicked_at,
       ls.signed_up_at,
       b.placed_at,
       b.net_amount,
       b.currency,
       -- NOT_NEW_CUSTOMER input: analytics.customers.first_order_at is the friend's earliest order
       -- (any source, any market) that is not cancelled, declined or incomplete
       coalesce(fc.first_order_at >= b.placed_at, TRUE) AS is_new_customer,
       CAST(NULL AS VARCHAR) AS reward_key,
       fc.email_canonical AS friend_email_canonical,
       ac.email_canonical AS advocate_email_canonical,
       b.coupon_code,
       b.status AS order_status,
       coalesce(sc.channel, ev.channel, 'unknown') AS channel,
       b.source_event_key,
       CAST(NULL AS VARCHAR) AS no_reward_reason,
       b.refunded_amount,
       b.ip_address,
       CAST($as_of AS TIMESTAMPTZ) AS attributed_at,
       CAST($as_of AS TIMESTAMPTZ) AS updated_at
FROM attr_winners b
LEFT JOIN last_click lc ON lc.order_key = b.order_key
LEFT JOIN last_signup ls ON ls.order_key = b.order_key
LEFT JOIN share_channel sc ON sc.market_id = b.market_id AND sc.code_lc = lower(b.referral_code)
LEFT JOIN fb_events ev ON ev.event_key = b.source_event_key
LEFT JOIN parties fc ON fc.customer_key = b.friend_key
LEFT JOIN parties ac ON ac.customer_key = b.advocate_key
