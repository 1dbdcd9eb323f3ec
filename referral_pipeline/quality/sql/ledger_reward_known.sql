-- analytics.reward_ledger rows whose reward is not in analytics.rewards.
SELECT l.reward_key, count(*) AS ledger_rows
FROM analytics.reward_ledger l
ANTI JOIN analytics.rewards r ON r.reward_key = l.reward_key
WHERE l.reward_key IS NOT NULL
GROUP BY l.reward_key
