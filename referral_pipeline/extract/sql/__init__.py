"""SQL run by the commercetools page parser (``extract/json_pages.py``)."""
