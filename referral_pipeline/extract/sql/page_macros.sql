-- Macros every page parser has (``json_pages.SqlPageParser``).
-- text_count(text, needle): how often ``needle`` occurs in ``text``.
CREATE OR REPLACE MACRO text_count(t, needle) AS (length(t) - length(replace(t, needle, ''))) // length(needle);
