-- Rewards whose current status differs from the to_status of their last ledger row
-- (last_ledger_status NULL: the reward has no ledger row at all).
SELECT r.reward_key, r.status, l.last_ledger_status
FROM analytics.rewards r
LEFT JOIN (
    SELECT reward_key, arg_max_null(to_status, seq) AS last_ledger_status
    FROM analytics.reward_ledger
    GROUP BY reward_key
) l ON l.reward_key = r.reward_key
WHERE r.reward_key IS NOT NULL
  AND r.status IS DISTINCT FROM l.last_ledger_status
