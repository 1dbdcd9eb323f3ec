-- One ops.sync_log row per attempt (after record_outcomes.sql: attempt and status are the new ones).
INSERT INTO ops.sync_log (run_id, destination, entity, record_key, idempotency_key, attempt, status_code, outcome,
                          error, latency_ms, "at", payload_hash)
SELECT $run_id, $destination, $entity, o.record_key, st.idempotency_key, st.attempts, o.status_code,
       coalesce(o.log_outcome, st.status), o.error, o.latency_ms, $now, st.payload_hash
FROM sync_outcomes o
JOIN ops.sync_state st ON st.destination = $destination AND st.entity = $entity AND st.record_key = o.record_key
