-- One BigCommerce v2 orders response (``_bc_page.body``: a JSON array of orders) as landing rows,
-- the same rows ``extract.bigcommerce`` builds in Python: the record's text without its
-- sub-resource links (their text cut out; every other key keeps its place), ``id`` as the key,
-- ``date_modified`` (RFC 2822) as the stamp, ``is_deleted`` exactly true as the delete flag, and
-- ``couponed`` when ``coupon_discount`` is above zero (the caller then fetches the order's
-- coupons and appends them). ``ok`` is false for a record the fast path does not handle exactly
-- like the Python path (not an object or an id that is not an integer, another stamp form, an
-- unusual ``coupon_discount``, a ``coupons`` key that is not a link, a link that is the first key
-- or whose text occurs twice): the caller then reads the page the Python way.
WITH page AS (
    SELECT json_extract(body::JSON, '$[*]') AS recs FROM _bc_page
), rows AS (
    SELECT unnest(recs) AS r, unnest(range(len(recs))) AS ord FROM page
), parts AS (
    SELECT ord, r::VARCHAR AS text,
           json_extract(r, ['$.id', '$.date_modified', '$.is_deleted', '$.coupon_discount',
                            '$.products', '$.shipping_addresses', '$.coupons']) AS p
    FROM rows
), fields AS (
    SELECT ord, text, p, p[2]->>'$' AS stamp_text, p[4]->>'$' AS discount_text, json_type(p[4]) AS discount_type,
           [bc_link_text('products', p[5]), bc_link_text('shipping_addresses', p[6]),
            bc_link_text('coupons', p[7])] AS links
    FROM parts
), parsed AS (
    SELECT *, try_strptime(stamp_text, '%a, %d %b %Y %H:%M:%S %z') AS stamp FROM fields
)
SELECT
    p[1]::VARCHAR AS pk,
    stamp,
    replace(replace(replace(text, coalesce(links[1], ''), ''), coalesce(links[2], ''), ''),
            coalesce(links[3], ''), '') AS payload,
    coalesce(json_type(p[3]) = 'BOOLEAN' AND p[3]::VARCHAR = 'true', false) AS is_deleted,
    ord,
    coalesce(CASE WHEN discount_type = 'VARCHAR'
                  THEN NOT starts_with(discount_text, '-') AND regexp_matches(discount_text, '[1-9]')
                  WHEN discount_type IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN p[4]::DOUBLE > 0
                  ELSE false END, false) AS couponed,
    coalesce(json_type(p[1]) IN ('BIGINT', 'UBIGINT')
             AND stamp IS NOT NULL
             AND regexp_full_match(stamp_text, '(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} '
                                   || '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}')
             AND (discount_type IS DISTINCT FROM 'VARCHAR' OR regexp_full_match(discount_text, '-?\d+(\.\d+)?'))
             AND (p[7] IS NULL OR links[3] IS NOT NULL)
             AND list_bool_and(list_transform(links, lambda l: l IS NULL OR text_count(text, l) = 1)),
             false) AS ok
FROM parsed
ORDER BY ord
