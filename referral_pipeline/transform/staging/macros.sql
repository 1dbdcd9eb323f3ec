-- Scalar helpers shared by the per-source staging SQL files.
CREATE OR REPLACE MACRO norm_email(e) AS nullif(lower(trim(CAST(e AS VARCHAR))), '');
CREATE OR REPLACE MACRO is_valid_email(e) AS coalesce(regexp_full_match(e, '[^@\s,;<>()]+@[^@\s,;<>()]+\.[A-Za-z]{2,}'), FALSE);
CREATE OR REPLACE MACRO has_bad_text(s) AS coalesce(contains(CAST(s AS VARCHAR), chr(65533)) OR regexp_matches(CAST(s AS VARCHAR), '[\x{D800}-\x{DFFF}]'), FALSE);
CREATE OR REPLACE MACRO too_long(s, n) AS coalesce(length(CAST(s AS VARCHAR)) > n, FALSE);
-- A decimal amount from text or number; NULL when unparseable; 'nan'/'inf' are flagged separately.
CREATE OR REPLACE MACRO parse_amount(v) AS TRY_CAST(TRY_CAST(v AS VARCHAR) AS DECIMAL(18,4));
CREATE OR REPLACE MACRO is_non_finite(v) AS coalesce(lower(trim(CAST(v AS VARCHAR))) IN ('nan', 'inf', '-inf', 'infinity', '-infinity', '+inf'), FALSE);
-- Money from minor units (commercetools centAmount/fractionDigits).
CREATE OR REPLACE MACRO minor_to_major(amount, digits) AS CAST(CAST(amount AS DECIMAL(38,4)) * CAST(power(10, -coalesce(digits, 2)) AS DECIMAL(18,8)) AS DECIMAL(18,4));
