-- bc_is_link(v): a v2 sub-resource link (``{"url": …, "resource": …}``), which the Python path
-- (``extract.bigcommerce.strip_links``) drops: a JSON object whose keys are among url/resource.
CREATE OR REPLACE MACRO bc_is_link(v) AS
    coalesce(json_type(v) = 'OBJECT' AND list_has_all(['url', 'resource'], json_keys(v)), false);
-- bc_link_text(key, v): the text a link takes in the minified record (``,"key":{…}``; NULL when
-- ``v`` is not a link). The record text and ``v`` are written by the same JSON writer, so the
-- link's text is found verbatim.
CREATE OR REPLACE MACRO bc_link_text(key, v) AS
    CASE WHEN bc_is_link(v) THEN ',"' || key || '":' || v::VARCHAR END;
