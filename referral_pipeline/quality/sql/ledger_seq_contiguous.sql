-- Rewards whose ledger seq is not exactly 1, 2, ..., n.
SELECT reward_key, count(*) AS ledger_rows, min(seq) AS min_seq, max(seq) AS max_seq,
       count(DISTINCT seq) AS distinct_seq
FROM analytics.reward_ledger
WHERE reward_key IS NOT NULL
GROUP BY reward_key
HAVING min(seq) IS DISTINCT FROM 1 OR max(seq) IS DISTINCT FROM count(*) OR count(DISTINCT seq) <> count(*)
