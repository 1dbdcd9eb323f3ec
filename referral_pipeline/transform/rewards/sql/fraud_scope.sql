-- TEMP fraud_scope (incremental run): where a rule can raise a new flag since the last run, as
-- (kind, value, ts) rows; fraud_subjects.sql keeps the subjects that fall in any of them.
--   subject      new or rewritten subjects themselves (attribution rows, sign-up events);
--   advocate_at  VELOCITY_ADVOCATE: (advocate, time) of new or rewritten subjects: the subjects of
--                that advocate within 24 h either side (their windows may now count it);
--   ip_at        VELOCITY_IP: (IP, time) of new or rewritten subjects, within 1 h either side;
--   advocate_ip  SAME_IP_AS_ADVOCATE: '<advocate>|<ip>' of new activity of the advocate's own
--                (shares, widget views, own sign-ups, own orders: changed or crossing the as_of
--                cut): the advocate's subjects from that IP;
--   advocate     every subject of customers the identity stage rewrote (a customer that gains a
--                record also gains its orders and their IPs);
--   canonical    DUPLICATE_IDENTITY, SELF_REFERRAL: canonical emails of new or rewritten subjects'
--                friends and of customers the identity stage rewrote;
--   customer     customers the identity stage rewrote (their subjects' emails and creation times);
--   coupon       COUPON_REUSE: referral coupons of new or rewritten coupon-attributed orders and of
--                new or rewritten friend incentives (every use of each).
-- Flags are never removed, so only a new hit matters; a window that can hold a new hit is complete
-- here (every subject within its span), and leaving subjects out only lowers counts, so a hit found
-- is a hit of the full evaluation.
-- Inputs: analytics.referral_attribution, analytics.referral_events, analytics.customers,
-- analytics.orders, fraud_changed_orders. Parameters: $attr_wm, $skip_from, $skip_to, $events_wm, $customers_wm, $as_of, $prev_as_of.
WITH changed_attr AS (
    SELECT order_key AS subject_key, advocate_customer_key AS advocate_key, ip_address AS ip, placed_at AS ts,
           friend_email_canonical AS canonical, coupon_code
    FROM analytics.referral_attribution WHERE load_seq > $attr_wm
    -- (not the rows the rewards stage only stamped with reward_key since: fraud.py, _reward_key_rewrites)
    AND NOT (load_seq > $skip_from AND load_seq <= $skip_to)
),
changed_events AS (
    SELECT event_key, kind, advocate_customer_key AS advocate_key, friend_customer_key AS friend_key,
           ip_address AS ip, occurred_at AS ts, friend_email, coupon_code
    FROM analytics.referral_events WHERE load_seq > $events_wm
),
changed_customers AS (
    SELECT customer_key, email_canonical FROM analytics.customers WHERE load_seq > $customers_wm
),
changed_orders AS (   -- (two filters on columns of the order each, so a view can push them down)
    SELECT customer_key, ip_address FROM fraud_changed_orders   -- (analytics.orders above the orders mark: fraud.py)
    UNION
    SELECT customer_key, ip_address FROM analytics.orders
    WHERE placed_at > least(CAST($as_of AS TIMESTAMPTZ), CAST($prev_as_of AS TIMESTAMPTZ))
      AND placed_at <= greatest(CAST($as_of AS TIMESTAMPTZ), CAST($prev_as_of AS TIMESTAMPTZ))
)
SELECT DISTINCT kind, value, ts FROM (
    SELECT 'subject' AS kind, subject_key AS value, CAST(NULL AS TIMESTAMPTZ) AS ts FROM changed_attr
    UNION ALL SELECT 'subject', event_key, NULL FROM changed_events WHERE kind = 'signup'
    UNION ALL SELECT 'advocate_at', advocate_key, ts FROM changed_attr
    UNION ALL SELECT 'ip_at', ip, ts FROM changed_attr
    UNION ALL SELECT 'ip_at', ip, ts FROM changed_events WHERE kind = 'signup'
    UNION ALL SELECT 'advocate_ip', advocate_key || '|' || ip, NULL FROM changed_events WHERE kind IN ('share', 'widget_view')
    UNION ALL SELECT 'advocate_ip', friend_key || '|' || ip, NULL FROM changed_events WHERE kind = 'signup'
    UNION ALL SELECT 'advocate_ip', customer_key || '|' || ip_address, NULL FROM changed_orders
    UNION ALL SELECT 'advocate', customer_key, NULL FROM changed_customers
    UNION ALL SELECT 'canonical', canonical, NULL FROM changed_attr
    UNION ALL SELECT 'canonical', ref_email_canonical(friend_email), NULL FROM changed_events WHERE kind = 'signup'
    UNION ALL SELECT 'canonical', email_canonical, NULL FROM changed_customers
    UNION ALL SELECT 'customer', customer_key, NULL FROM changed_customers
    UNION ALL SELECT 'customer', friend_key, NULL FROM changed_events WHERE kind = 'signup'
    UNION ALL SELECT 'coupon', coupon_code, NULL FROM changed_attr
    UNION ALL SELECT 'coupon', coupon_code, NULL FROM changed_events WHERE kind = 'friend_incentive'
)
WHERE value IS NOT NULL
