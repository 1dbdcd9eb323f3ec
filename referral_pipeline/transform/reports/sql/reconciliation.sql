-- analytics.reward_reconciliation: every reward where Friendbuy's view and ours differ (product §7).
-- Friendbuy's view: its distributed-advocate-rewards export (only distributed rewards are in it),
-- matched to our reward by (campaign, friend). One row per (reward, mismatch):
--   distributed_while_on_hold / _canceled / _reversed / _not_eligible / _pending: Friendbuy
--       distributed a reward we hold, cancelled (fraud reject, review reject, cancellation,
--       refund), reversed, found not eligible, or whose return window has not passed;
--   distributed_without_reward: Friendbuy distributed a reward for a friend we did not attribute;
--   distributed_twice: more than one distribution for one (campaign, friend);
--   amount_mismatch: Friendbuy's reward amount differs from the program's;
--   approved_not_distributed: we approved it, Friendbuy has not distributed it
--       reconciliation_grace_days after our approval.
-- Inputs: fb_events, analytics.rewards, analytics.reward_ledger, program_rules. Parameters: $as_of.
WITH fb_rows AS (
    SELECT CASE WHEN friend_key IS NOT NULL THEN ref_hash_key('rwd_', campaign_id || '|' || friend_key) END AS reward_key, *
    FROM fb_events WHERE kind = 'advocate_reward'
),
fb AS (
    SELECT coalesce(reward_key, event_key) AS match_key, any_value(reward_key) AS reward_key,
           any_value(market_id) AS market_id, any_value(campaign_id) AS campaign_id,
           any_value(advocate_key) AS advocate_key, any_value(friend_key) AS friend_key,
           min(event_key ORDER BY occurred_at, event_key) AS event_key, min(occurred_at) AS distributed_at,
           count(*) AS distributions, max(amount) AS amount
    FROM fb_rows GROUP BY 1
),
approvals AS (
    SELECT reward_key, max(occurred_at) AS approved_at FROM analytics.reward_ledger WHERE to_status = 'approved' GROUP BY 1
),
seen AS (   -- Friendbuy distributed it: how does our reward compare?
    SELECT fb.*, r.reward_key AS our_key, r.order_key, r.status, r.reason, r.amount AS our_amount,
           coalesce(r.advocate_customer_key, fb.advocate_key) AS advocate_customer_key,
           coalesce(r.friend_customer_key, fb.friend_key) AS friend_customer_key
    FROM fb LEFT JOIN analytics.rewards r ON r.reward_key = fb.reward_key
),
mismatches AS (
    SELECT s.*, CASE WHEN s.our_key IS NULL THEN 'distributed_without_reward'
                     ELSE 'distributed_while_' || s.status END AS mismatch,
           CASE WHEN s.our_key IS NULL THEN format('Friendbuy distributed a reward on {} for a friend we attributed no order to',
                                                   strftime(s.distributed_at, '%Y-%m-%d'))
                ELSE format('Friendbuy distributed this reward on {} but ours is {}{}', strftime(s.distributed_at, '%Y-%m-%d'),
                            s.status, coalesce(' (' || s.reason || ')', '')) END AS detail
    FROM seen s
    WHERE s.our_key IS NULL OR s.status IN ('on_hold', 'canceled', 'reversed', 'not_eligible', 'pending')
    UNION ALL
    SELECT s.*, 'distributed_twice',
           format('Friendbuy distributed this reward {} times (first on {})', s.distributions, strftime(s.distributed_at, '%Y-%m-%d'))
    FROM seen s WHERE s.distributions > 1
    UNION ALL
    SELECT s.*, 'amount_mismatch', format('Friendbuy distributed {} but the program reward is {}', s.amount, s.our_amount)
    FROM seen s WHERE s.our_key IS NOT NULL AND s.amount IS NOT NULL AND s.amount <> s.our_amount
),
late AS (   -- approved by us, not distributed by Friendbuy after the grace period
    SELECT r.*, coalesce(a.approved_at, r.status_changed_at) AS approved_at, p.reconciliation_grace_days
    FROM analytics.rewards r
    JOIN program_rules p ON p.market_id = r.market_id
    LEFT JOIN approvals a ON a.reward_key = r.reward_key
    WHERE r.status = 'approved' AND r.reward_key NOT IN (SELECT reward_key FROM fb WHERE reward_key IS NOT NULL)
)
SELECT reward_key, order_key, advocate_customer_key, friend_customer_key, status AS our_status,
       'distributed' AS friendbuy_status, mismatch, market_id, campaign_id, reason AS our_reason, our_amount,
       amount AS friendbuy_amount, event_key AS friendbuy_event_key, distributed_at AS friendbuy_distributed_at,
       detail, CAST($as_of AS TIMESTAMPTZ) AS detected_at, CAST($as_of AS TIMESTAMPTZ) AS updated_at
FROM mismatches
UNION ALL
SELECT reward_key, order_key, advocate_customer_key, friend_customer_key, status, 'not_distributed',
       'approved_not_distributed', market_id, campaign_id, reason, amount, NULL, NULL, NULL,
       format('Approved on {}; Friendbuy has not distributed it {} days later', strftime(approved_at, '%Y-%m-%d'),
              date_diff('day', approved_at, CAST($as_of AS TIMESTAMPTZ))),
       CAST($as_of AS TIMESTAMPTZ), CAST($as_of AS TIMESTAMPTZ)
FROM late
WHERE CAST($as_of AS TIMESTAMPTZ) >= approved_at + to_days(reconciliation_grace_days)
