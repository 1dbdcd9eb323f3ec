"""SQL run by the DuckDB page parsers (``extract/json_pages.py``): commercetools query pages and
BigCommerce v2 order lists."""
