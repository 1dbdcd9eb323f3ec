-- One commercetools query response (``_ct_page.body``: the page's JSON text) as landing rows.
-- Each record of ``results`` keeps its text (minified; DuckDB keeps number literals as sent). With
-- $trim, an expanded discount code (``discountCodes[*].discountCode.obj``) is cut to its ``id``
-- and ``code`` by replacing its text in place (every other key stays where it is: the same text
-- as orjson.dumps of the record trimmed in Python). ``ok`` is false for a record the fast path
-- does not handle (no string id, stamp not ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``, a discount-code
-- text that is not unique in the record): the caller then reads the page the Python way.
WITH page AS (
    SELECT json_extract(body::JSON, '$.results[*]') AS recs FROM _ct_page
), rows AS (
    SELECT unnest(recs) AS r, unnest(range(len(recs))) AS ord FROM page
), parts AS (
    SELECT ord, r::VARCHAR AS text, json_extract(r, ['$.id', '$.lastModifiedAt', '$.discountCodes']) AS p FROM rows
), codes AS (
    SELECT *, p[1]->>'$' AS id, p[2]->>'$' AS stamp_text, CASE WHEN $trim AND json_type(p[3]) = 'ARRAY' AND json_array_length(p[3]) > 0
                   THEN json_extract(p[3], '$[*]') END AS infos
    FROM parts
)
SELECT
    id AS pk,
    stamp_text::TIMESTAMPTZ AS stamp,
    CASE WHEN infos IS NULL THEN text
         ELSE replace(text, '"discountCodes":' || p[3]::VARCHAR,
                      '"discountCodes":[' || array_to_string(list_transform(infos, lambda i: ct_trim_info(i)), ',') || ']')
    END AS payload,
    false AS is_deleted,
    ord,
    coalesce(json_type(p[1]) = 'VARCHAR' AND id <> ''
             AND regexp_full_match(stamp_text, '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z')
             AND CASE WHEN infos IS NULL THEN true
                      ELSE text_count(text, '"discountCodes":') = 1
                           AND list_bool_and(list_transform(infos, lambda i: text_count(i::VARCHAR, '"obj":') <= 1)) END,
             false) AS ok
FROM codes
ORDER BY ord
