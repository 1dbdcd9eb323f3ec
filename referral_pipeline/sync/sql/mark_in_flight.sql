-- Commit the in-flight marker (with the payload about to be sent) before any request of the chunk.
-- attempts restart at 0 when the record was ok before or its content changed.
INSERT INTO ops.sync_state AS st (destination, entity, record_key, payload_hash, status, attempts, updated_at,
                                  payload, content_hash, idempotency_key, subject_key, last_run_id)
SELECT $destination, $entity, f.record_key, f.payload_hash, 'in_flight', 0, $now, f.payload, f.content_hash,
       f.idempotency_key, f.subject_key, $run_id
FROM sync_flight f
ON CONFLICT (destination, entity, record_key) DO UPDATE SET
    attempts = CASE WHEN st.status = 'ok' OR st.content_hash IS DISTINCT FROM excluded.content_hash THEN 0
                    ELSE st.attempts END,
    payload_hash = excluded.payload_hash,
    status = 'in_flight',
    updated_at = excluded.updated_at,
    payload = excluded.payload,
    content_hash = excluded.content_hash,
    idempotency_key = excluded.idempotency_key,
    subject_key = excluded.subject_key,
    last_run_id = excluded.last_run_id
