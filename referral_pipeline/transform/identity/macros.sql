-- Email macros of the identity stage (docs/identity.md); same semantics as identity/email.py.
-- They are created in the warehouse, so analysts can use them too:
--   SELECT email_canonical('  J.Doe+shop@GoogleMail.com ');   -- jdoe@gmail.com
CREATE OR REPLACE MACRO email_normalize(e) AS
    nullif(lower(regexp_replace(CAST(e AS VARCHAR), '^[ \t\n\r\f]+|[ \t\n\r\f]+$', '', 'g')), '');
-- n: an already normalized email. Split at the last '@'; '+tag' removed unless nothing would remain.
-- Plain string functions (regexp_extract costs ~4x more on a million rows). The gmail test looks
-- at the end of the whole address (same thing, as a domain holds no '@'): a comparison on
-- split_part() inside CASE trips a DuckDB 2.0 binder error on constant NULL input.
CREATE OR REPLACE MACRO email_local_part(n) AS left(n, length(n) - length(split_part(n, '@', -1)) - 1);
CREATE OR REPLACE MACRO email_untagged_local_part(n) AS
    coalesce(nullif(split_part(email_local_part(n), '+', 1), ''), email_local_part(n));
CREATE OR REPLACE MACRO email_canonical_of_normalized(n) AS
    CASE WHEN strpos(n, '@') = 0 THEN n
         WHEN ends_with(n, '@gmail.com') OR ends_with(n, '@googlemail.com')
             THEN replace(email_untagged_local_part(n), '.', '') || '@gmail.com'
         ELSE email_untagged_local_part(n) || '@' || split_part(n, '@', -1)
    END;
CREATE OR REPLACE MACRO email_canonical(e) AS email_canonical_of_normalized(email_normalize(e));
-- Sort keys packed into one HUGEINT, so "the best record" and "the first order" are plain arg_min
-- aggregates (no window sort). Record rank, smallest best: not deleted, then the position in
-- system_of_record_precedence (1000 when absent), then the latest updated_at (NULL last), then a
-- 50-bit hash of the record key (deterministic tie-break).
CREATE OR REPLACE MACRO identity_record_rank(is_deleted, precedence_pos, updated_at, record_key) AS
    (CAST(coalesce(is_deleted, FALSE) AS HUGEINT) << 125)
    + (CAST(least(precedence_pos, 1000) AS HUGEINT) << 114)
    + (CAST(CASE WHEN updated_at IS NULL THEN CAST(1 AS BIGINT) << 62
                 ELSE (CAST(1 AS BIGINT) << 61) - epoch_us(updated_at) END AS HUGEINT) << 50)
    + (CAST(hash(record_key) AS HUGEINT) >> 14);
-- Order sort key: placed_at, then the 64-bit hash of the order key (identity.order_state.order_hash).
CREATE OR REPLACE MACRO identity_order_rank_of_hash(placed_at, order_hash) AS
    ((CAST(epoch_us(placed_at) AS HUGEINT) + (CAST(1 AS HUGEINT) << 62)) << 64) + CAST(order_hash AS HUGEINT);
CREATE OR REPLACE MACRO identity_order_rank(placed_at, order_key) AS identity_order_rank_of_hash(placed_at, hash(order_key));
