-- The delta of one destination entity: every mapped record (TEMP sync_source) joined with its sync
-- state; new keys, changed ok records, due retries, fixed failed/dead records and in-flight records
-- (unless $resend_in_flight is false: then in-doubt sends are held, see EntitySpec.resend_in_doubt).
-- /*PAYLOAD_HASH*/ and /*CONTENT_HASH*/ are replaced by md5(to_json(struct_pack(<fields>))) over
-- field names from the ownership file (validated identifiers), never by values.
SELECT s.*,
       /*PAYLOAD_HASH*/ AS payload_hash,
       /*CONTENT_HASH*/ AS content_hash,
       st.status AS prev_status,
       coalesce(st.attempts, 0) AS prev_attempts,
       st.first_ok_at IS NULL AS is_new
FROM sync_source s
LEFT JOIN (SELECT * FROM ops.sync_state WHERE destination = $destination AND entity = $entity) st
       ON st.record_key = s.record_key
WHERE st.record_key IS NULL
   OR (st.status = 'in_flight' AND $resend_in_flight)
   OR (st.status = 'ok' AND st.payload_hash IS DISTINCT FROM /*PAYLOAD_HASH*/)
   OR (st.status = 'retry' AND (st.next_retry_at IS NULL OR st.next_retry_at <= $now
                                OR st.content_hash IS DISTINCT FROM /*CONTENT_HASH*/))
   OR (st.status IN ('failed', 'dead') AND (st.content_hash IS DISTINCT FROM /*CONTENT_HASH*/ OR $retry_failed))
