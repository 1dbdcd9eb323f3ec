-- The outcome of each send of a chunk (TEMP sync_outcomes) becomes the record's state.
-- ok → ok; retry → retry with next_retry_at = now + min(cap, base * 2^(attempts-1)); failed → failed;
-- in_doubt → stays in_flight (reconciled next run); any non-ok at max_attempts → dead.
UPDATE ops.sync_state AS st SET
    attempts = st.attempts + 1,
    status = CASE WHEN o.outcome = 'ok' THEN 'ok'
                  WHEN st.attempts + 1 >= $max_attempts THEN 'dead'
                  WHEN o.outcome = 'in_doubt' THEN 'in_flight'
                  ELSE o.outcome END,
    last_status_code = o.status_code,
    last_error = CASE WHEN o.outcome = 'ok' THEN NULL ELSE o.error END,
    next_retry_at = CASE WHEN o.outcome IN ('retry', 'in_doubt') AND st.attempts + 1 < $max_attempts
                         THEN $now + to_seconds(least($retry_cap, $retry_base * pow(2, st.attempts)))
                         ELSE NULL END,
    remote_id = coalesce(o.remote_id, st.remote_id),
    first_ok_at = CASE WHEN o.outcome = 'ok' THEN coalesce(st.first_ok_at, $now) ELSE st.first_ok_at END,
    last_attempt_at = $now,
    updated_at = $now,
    last_run_id = $run_id
FROM sync_outcomes o
WHERE st.destination = $destination AND st.entity = $entity AND st.record_key = o.record_key
