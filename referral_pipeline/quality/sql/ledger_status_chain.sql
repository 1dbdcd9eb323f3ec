-- Ledger rows that break the status chain: the first row of a reward must come from NULL, every
-- later row must start from the previous row's to_status.
SELECT reward_key, seq, from_status, to_status, previous_to_status
FROM (
    SELECT reward_key, seq, from_status, to_status,
           lag(to_status) OVER (PARTITION BY reward_key ORDER BY seq) AS previous_to_status,
           row_number() OVER (PARTITION BY reward_key ORDER BY seq) AS rn
    FROM analytics.reward_ledger
    WHERE reward_key IS NOT NULL
)
WHERE (rn = 1 AND from_status IS NOT NULL)
   OR (rn > 1 AND from_status IS DISTINCT FROM previous_to_status)
