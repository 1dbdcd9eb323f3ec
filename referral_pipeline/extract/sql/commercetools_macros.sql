-- ct_trim_info(info): a discountCodes entry (JSON) as text, its expanded ``discountCode.obj`` cut
-- to ``{"id":…,"code":…}`` in place (the text is minified, so the object's text is found verbatim).
CREATE OR REPLACE MACRO ct_trim_info(i) AS
    CASE WHEN json_type(i->'discountCode'->'obj') = 'OBJECT'
         THEN replace(i::VARCHAR, '"obj":' || (i->'discountCode'->'obj')::VARCHAR,
                      '"obj":' || json_object('id', i->'discountCode'->'obj'->'id',
                                              'code', i->'discountCode'->'obj'->'code')::VARCHAR)
         ELSE i::VARCHAR END;
