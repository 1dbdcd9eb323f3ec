-- Every way an order can be attributed (product §5), one row per (order, method, evidence event);
-- attribution_winners.sql keeps the first method that applies. Inputs: ref_orders (the orders this
-- run evaluates, referral_orders.sql), attr_purchase_hits (purchase_hits.sql: the orders a purchase
-- row may name, to see whether its order number is ambiguous), fb_events, program_rules.
-- Parameters: $as_of.
-- Nothing crosses markets: every join is on market_id. An order counts when it is placed at or
-- before as_of and has a customer.
WITH
-- 1. coupon: a code on the order (case-insensitive) is a friend incentive Friendbuy distributed for an advocate
coupon_uses AS (
    SELECT order_key, market_id, upper(trim(unnest(coupon_codes))) AS code
    FROM ref_orders
    WHERE len(coupon_codes) > 0 AND placed_at <= $as_of AND customer_key IS NOT NULL
),
by_coupon AS (
    SELECT u.order_key, 1 AS method_rank, 'coupon' AS method, i.advocate_key, i.event_key AS source_event_key,
           i.occurred_at AS touch_at, i.referral_code, i.coupon_code, i.channel
    FROM coupon_uses u
    JOIN fb_events i ON i.kind = 'friend_incentive' AND i.market_id = u.market_id AND i.coupon_code = u.code
    WHERE i.advocate_key IS NOT NULL
),
-- 2. friendbuy: a row of the purchases export names the order: its order_key, else its source
--    order number or id when exactly one order of the market has it (contracts §6)
purchases AS (
    SELECT * FROM fb_events WHERE kind = 'purchase' AND order_id IS NOT NULL AND advocate_key IS NOT NULL
),
purchase_hits AS (        -- (purchase_hits.sql)
    SELECT event_key, order_key, by_number FROM attr_purchase_hits
),
purchase_orders AS (
    SELECT event_key, min(order_key) AS order_key
    FROM (SELECT *, min(by_number) OVER (PARTITION BY event_key) AS best FROM purchase_hits)
    WHERE by_number = best
    GROUP BY event_key
    HAVING count(DISTINCT order_key) = 1
),
by_friendbuy AS (
    SELECT po.order_key, 2 AS method_rank, 'friendbuy' AS method, p.advocate_key, p.event_key, p.occurred_at,
           p.referral_code, p.coupon_code, p.channel
    FROM purchase_orders po
    JOIN purchases p ON p.event_key = po.event_key
    JOIN ref_orders o ON o.order_key = po.order_key
    WHERE o.placed_at <= $as_of AND o.customer_key IS NOT NULL
),
-- 3. referral_code: the order's code belongs to an advocate's share, and the order is placed within
--    the window after the most recent click on the code before it (or the most recent share)
coded AS (
    SELECT o.order_key, o.market_id, o.placed_at, o.referral_code, lower(o.referral_code) AS code_lc, p.attribution_window_days
    FROM ref_orders o JOIN program_rules p ON p.market_id = o.market_id
    WHERE o.referral_code IS NOT NULL AND o.placed_at <= $as_of AND o.customer_key IS NOT NULL
),
coded_codes AS (   -- (the ASOF joins below sort only the shares and clicks of these codes)
    SELECT DISTINCT market_id, code_lc FROM coded
),
shares AS (
    SELECT e.market_id, e.code_lc, e.occurred_at FROM fb_events e
    SEMI JOIN coded_codes c ON c.market_id = e.market_id AND c.code_lc = e.code_lc
    WHERE e.kind = 'share' AND e.code_lc IS NOT NULL
),
clicks AS (
    SELECT e.market_id, e.code_lc, e.occurred_at FROM fb_events e
    SEMI JOIN coded_codes c ON c.market_id = e.market_id AND c.code_lc = e.code_lc
    WHERE e.kind = 'click' AND e.code_lc IS NOT NULL
),
code_owner AS (   -- the advocate a code belongs to: the first share of that code in the market
    SELECT e.market_id, e.code_lc,
           first(e.advocate_key ORDER BY e.occurred_at, e.event_key) AS advocate_key,
           first(e.event_key ORDER BY e.occurred_at, e.event_key) AS event_key,
           first(e.channel ORDER BY e.occurred_at, e.event_key) AS channel
    FROM fb_events e SEMI JOIN coded_codes c ON c.market_id = e.market_id AND c.code_lc = e.code_lc
    WHERE e.kind = 'share' AND e.code_lc IS NOT NULL AND e.advocate_key IS NOT NULL
    GROUP BY e.market_id, e.code_lc
),
last_click AS (
    SELECT o.order_key, c.occurred_at AS clicked_at
    FROM coded o ASOF JOIN clicks c ON c.market_id = o.market_id AND c.code_lc = o.code_lc AND o.placed_at >= c.occurred_at
),
last_share AS (
    SELECT o.order_key, s.occurred_at AS shared_at
    FROM coded o ASOF JOIN shares s ON s.market_id = o.market_id AND s.code_lc = o.code_lc AND o.placed_at >= s.occurred_at
),
by_code AS (
    SELECT o.order_key, 3 AS method_rank, 'referral_code' AS method, w.advocate_key, w.event_key,
           coalesce(lc.clicked_at, ls.shared_at) AS touch_at, o.referral_code, NULL AS coupon_code, w.channel
    FROM coded o
    JOIN code_owner w ON w.market_id = o.market_id AND w.code_lc = o.code_lc
    LEFT JOIN last_click lc ON lc.order_key = o.order_key
    LEFT JOIN last_share ls ON ls.order_key = o.order_key
    WHERE coalesce(lc.clicked_at, ls.shared_at) IS NOT NULL
      AND o.placed_at <= coalesce(lc.clicked_at, ls.shared_at) + to_days(o.attribution_window_days)
),
-- 4. signup: the order's customer signed up through a referral, and the order is placed within the
--    window after that (most recent) sign-up
signups AS (
    SELECT market_id, friend_key, occurred_at, advocate_key, event_key, referral_code, channel
    FROM fb_events WHERE kind = 'signup' AND friend_key IS NOT NULL AND advocate_key IS NOT NULL
),
signup_orders AS (
    SELECT o.order_key, o.market_id, o.customer_key, o.placed_at, p.attribution_window_days
    FROM ref_orders o JOIN program_rules p ON p.market_id = o.market_id
    WHERE o.customer_key IN (SELECT friend_key FROM signups) AND o.placed_at <= $as_of
),
signups_of_orders AS (   -- (the ASOF join sorts only the sign-ups of these friends)
    SELECT * FROM signups WHERE friend_key IN (SELECT customer_key FROM signup_orders)
),
by_signup AS (
    SELECT o.order_key, 4 AS method_rank, 'signup' AS method, s.advocate_key, s.event_key, s.occurred_at,
           s.referral_code, NULL AS coupon_code, s.channel
    FROM signup_orders o
    ASOF JOIN signups_of_orders s ON s.market_id = o.market_id AND s.friend_key = o.customer_key AND o.placed_at >= s.occurred_at
    WHERE o.placed_at <= s.occurred_at + to_days(o.attribution_window_days)
)
SELECT * FROM by_coupon
UNION ALL SELECT * FROM by_friendbuy
UNION ALL SELECT * FROM by_code
UNION ALL SELECT * FROM by_signup
