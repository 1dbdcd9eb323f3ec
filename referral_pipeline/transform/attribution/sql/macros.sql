-- TEMP macros of the referral stages (one statement per macro, separated by ';').
-- email_canonical (product §3): email_normalized with any +tag removed from the local part; for
-- gmail.com and googlemail.com also the dots removed and the domain written gmail.com.
CREATE OR REPLACE TEMP MACRO ref_email_canonical(e) AS (
    CASE WHEN e IS NULL OR NOT contains(e, '@') THEN lower(trim(e))
         WHEN regexp_extract(lower(trim(e)), '@([^@]*)$', 1) IN ('gmail.com', 'googlemail.com')
             THEN replace(split_part(regexp_extract(lower(trim(e)), '^(.*)@[^@]*$', 1), '+', 1), '.', '') || '@gmail.com'
         ELSE split_part(regexp_extract(lower(trim(e)), '^(.*)@[^@]*$', 1), '+', 1) || '@' || regexp_extract(lower(trim(e)), '@([^@]*)$', 1)
    END);
-- Deterministic keys: a prefix and the first 16 hex digits of sha256 of the parts joined by '|'.
CREATE OR REPLACE TEMP MACRO ref_hash_key(prefix, txt) AS (prefix || left(sha256(txt), 16));
