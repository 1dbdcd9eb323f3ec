-- Review decisions read back from Salesforce Referral_Reward__c (owned by Salesforce users): the
-- latest record version per Reward_Key__c. Input: sf_reward_records (TEMP view over the raw
-- tables). Parameters: $as_of (a version stamped later is not visible yet).
SELECT reward_key, decision, notes, decided_at
FROM (
    SELECT nullif(trim(payload->>'$.Reward_Key__c'), '') AS reward_key,
           CASE lower(trim(payload->>'$.Review_Decision__c')) WHEN 'approve' THEN 'approve' WHEN 'reject' THEN 'reject' END AS decision,
           payload->>'$.Review_Notes__c' AS notes,
           coalesce(stamp, TRY_CAST(payload->>'$.SystemModstamp' AS TIMESTAMPTZ)) AS decided_at
    FROM sf_reward_records
    WHERE NOT is_deleted AND json_valid(payload)
)
WHERE reward_key IS NOT NULL AND (decided_at IS NULL OR decided_at <= $as_of)
QUALIFY row_number() OVER (PARTITION BY reward_key ORDER BY decided_at DESC NULLS LAST) = 1
