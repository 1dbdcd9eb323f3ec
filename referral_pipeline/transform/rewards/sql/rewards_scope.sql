-- TEMP rw_scope (incremental run: as_of and programs as the last run's): the (campaign, friend)
-- pairs whose reward may differ from the stored one, i.e. every pair rewards_target.sql would
-- change. A reward's status reads its pair's attributed orders, the flags on its first order or on
-- the friend's sign-ups in the campaign, its review decision, the pair's distributions, its stored
-- row, and (monthly cap) the other rewards of its advocate's month; as_of is unchanged:
--   * pairs with an attribution row added or rewritten since the last run ($attribution_wm: the mark is
--     taken after this stage's own reward_key stamps), and stored rewards whose order is no longer
--     an attribution row of their pair (removed, or moved to another friend or campaign);
--   * pairs with a new flag ($flags_wm; flags are never updated or deleted);
--   * rewards whose visible review decision differs from the stored one (reviews: every run);
--   * pairs with a new or rewritten distribution ($events_wm). A removed distribution changes no
--     status while as_of stands still: only a not yet issued reward whose return window passed
--     reads it, and such a reward would already be issued (issued_at kept) had it been distributed;
--   * then every stored reward in the (market, advocate, month) of a changed pair, before or after
--     its change: the cap counts the rewards of the month in order.
-- Inputs: analytics.referral_attribution, analytics.rewards, audit.fraud_flags, reviews,
-- analytics.referral_events. Parameters: $attribution_wm, $flags_wm, $events_wm.
WITH changed AS (
    SELECT campaign_id, friend_customer_key FROM analytics.referral_attribution WHERE load_seq > $attribution_wm
    UNION
    SELECT r.campaign_id, r.friend_customer_key FROM analytics.rewards r
    WHERE r.order_key IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM analytics.referral_attribution a WHERE a.order_key = r.order_key
                      AND a.campaign_id = r.campaign_id AND a.friend_customer_key = r.friend_customer_key)
    UNION
    SELECT a.campaign_id, a.friend_customer_key FROM audit.fraud_flags f
    JOIN analytics.referral_attribution a ON a.order_key = f.subject_key
    WHERE f.load_seq > $flags_wm AND f.subject_type = 'order'
    UNION
    SELECT campaign_id, friend_customer_key FROM audit.fraud_flags
    WHERE load_seq > $flags_wm AND subject_type = 'signup' AND friend_customer_key IS NOT NULL
    UNION
    SELECT r.campaign_id, r.friend_customer_key FROM analytics.rewards r
    LEFT JOIN reviews v ON v.reward_key = r.reward_key
    WHERE v.decision IS DISTINCT FROM r.review_decision
    UNION
    SELECT campaign_id, friend_customer_key FROM analytics.referral_events
    WHERE load_seq > $events_wm AND kind = 'advocate_reward' AND friend_customer_key IS NOT NULL
),
new_firsts AS (   -- the changed pairs' first attributed orders now
    SELECT a.market_id, a.advocate_customer_key, a.placed_at
    FROM analytics.referral_attribution a SEMI JOIN changed c
      ON c.campaign_id = a.campaign_id AND c.friend_customer_key = a.friend_customer_key
    QUALIFY row_number() OVER (PARTITION BY a.campaign_id, a.friend_customer_key ORDER BY a.placed_at, a.order_key) = 1
),
months AS (       -- their advocates' months, now and as stored
    SELECT market_id, advocate_customer_key, date_trunc('month', placed_at AT TIME ZONE 'UTC') AS month FROM new_firsts
    UNION
    SELECT r.market_id, r.advocate_customer_key, date_trunc('month', r.placed_at AT TIME ZONE 'UTC')
    FROM analytics.rewards r SEMI JOIN changed c
      ON c.campaign_id = r.campaign_id AND c.friend_customer_key = r.friend_customer_key
)
SELECT campaign_id, friend_customer_key FROM changed
UNION
SELECT r.campaign_id, r.friend_customer_key FROM analytics.rewards r
SEMI JOIN months m ON m.market_id = r.market_id AND m.advocate_customer_key IS NOT DISTINCT FROM r.advocate_customer_key
                  AND m.month IS NOT DISTINCT FROM date_trunc('month', r.placed_at AT TIME ZONE 'UTC')
