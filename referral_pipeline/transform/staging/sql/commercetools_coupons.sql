-- commercetools discount codes (enriched by their cart discounts) -> staging.coupons
-- (docs/sources/commercetools.md, "Coupons"). Reads ct_codes (raw discount code rows: pk,
-- load_seq, payload) and ct_cart_discounts (raw cart discount rows), which the plugin defines:
-- for the discount-code stage ct_codes is raw_delta; for the cart-discount stage it is the codes
-- that reference a changed cart discount, so a cart discount change re-maps its codes.
-- * is_active: the code is active and so is every cart discount it applies (when known);
-- * requires_code: every cart discount of the code requires a discount code (NULL: none known);
-- * valid_from / valid_until: the narrowest window of the code and its cart discounts;
-- * currency: the one currency of the cart discounts' absolute/fixed amounts, if exactly one;
-- * store: the code's first store, else its cart discounts' first store; uses: not exposed (NULL).
WITH codes AS (
    SELECT pk, load_seq, payload, CAST(payload AS JSON) AS j FROM ct_codes
),
refs AS (
    SELECT c.pk AS code_id,
           unnest(list_transform(coalesce(TRY_CAST(c.j->'cartDiscounts' AS JSON[]), []), lambda r: r->>'id')) AS cart_discount_id
    FROM codes c
),
cart AS (
    SELECT r.code_id, CAST(cd.payload AS JSON) AS k, cd.load_seq
    FROM refs r JOIN ct_cart_discounts cd ON cd.pk = r.cart_discount_id
),
cart_agg AS (
    SELECT code_id,
        bool_and(coalesce(TRY_CAST(k->>'isActive' AS BOOLEAN), TRUE)) AS all_active,
        bool_and(TRY_CAST(k->>'requiresDiscountCode' AS BOOLEAN)) AS requires_code,
        max(TRY_CAST(k->>'validFrom' AS TIMESTAMPTZ)) AS valid_from,
        min(TRY_CAST(k->>'validUntil' AS TIMESTAMPTZ)) AS valid_until,
        list_distinct(flatten(list(list_transform(coalesce(TRY_CAST(k->'$.value.money' AS JSON[]), []),
                                                  lambda m: upper(m->>'currencyCode'))))) AS currencies,
        first(k->>'$.stores[0].key' ORDER BY k->>'$.stores[0].key') FILTER (WHERE k->>'$.stores[0].key' IS NOT NULL) AS store,
        first(coalesce(k->>'$.name.en', (json_extract_string(k->'name', '$.*'))[1])) AS name,
        max(load_seq) AS load_seq
    FROM cart GROUP BY code_id
),
mapped AS (
    SELECT c.pk, c.payload,
        greatest(c.load_seq, a.load_seq) AS load_seq,
        upper(trim(c.j->>'code')) AS code,
        TRY_CAST(c.j->>'isActive' AS BOOLEAN) AND coalesce(a.all_active, TRUE) AS is_active,
        TRY_CAST(c.j->>'maxApplications' AS INTEGER) AS max_uses,
        c.j->>'validFrom' AS from_raw,
        c.j->>'validUntil' AS until_raw,
        greatest(TRY_CAST(c.j->>'validFrom' AS TIMESTAMPTZ), a.valid_from) AS valid_from,
        least(TRY_CAST(c.j->>'validUntil' AS TIMESTAMPTZ), a.valid_until) AS valid_until,
        a.requires_code,
        CASE WHEN len(a.currencies) = 1 THEN a.currencies[1] END AS currency,
        coalesce(c.j->>'$.stores[0].key', a.store) AS store,
        coalesce(c.j->>'$.name.en', (json_extract_string(c.j->'name', '$.*'))[1], a.name) AS name
    FROM codes c LEFT JOIN cart_agg a ON a.code_id = c.pk
),
checked AS (
    SELECT *,
        CASE
            WHEN code IS NULL OR code = '' THEN 'missing_required_field'
            WHEN has_bad_text(payload) THEN 'invalid_text'
            WHEN too_long(code, 1000) OR too_long(name, 1000) OR too_long(store, 1000) THEN 'field_too_long'
            WHEN (from_raw IS NOT NULL AND TRY_CAST(from_raw AS TIMESTAMPTZ) IS NULL)
              OR (until_raw IS NOT NULL AND TRY_CAST(until_raw AS TIMESTAMPTZ) IS NULL) THEN 'unparseable_date'
        END AS quarantine_reason
    FROM mapped
)
SELECT
    $source || ':' || pk AS coupon_key,
    $source AS source,
    code,
    pk AS source_id,
    is_active,
    max_uses,
    NULL AS uses,
    valid_from,
    valid_until,
    requires_code,
    currency,
    store,
    name,
    load_seq,
    payload AS raw_payload,
    quarantine_reason,
    CASE quarantine_reason
        WHEN 'missing_required_field' THEN 'code'
        WHEN 'unparseable_date' THEN 'validFrom/validUntil'
    END AS quarantine_detail
FROM checked
