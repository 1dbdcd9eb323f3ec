"""v3 paging: cursors and the ``meta.pagination`` / ``meta.cursor_pagination`` blocks.

Cursors are opaque base64url JSON naming the sort key of one record, e.g. ``{"id": 204}`` or
``{"date_modified": 1715679240000000, "id": 204}`` (micros), so ``after``/``before`` are keyset
positions: stable when records share ``date_modified`` and when records change between pages.
"""
from __future__ import annotations

import base64
import math
from urllib.parse import quote

import orjson

from .listing import Ordering, Window
from .params import ParamError


def encode_cursor(ordering: Ordering, record: dict) -> str:
    key = ordering.sort_key(record)
    body = {"id": key[-1]} if ordering.kind == "id" else {ordering.name: key[0], "id": key[-1]}
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode_cursor(ordering: Ordering, cursor: str, param: str) -> tuple:
    """The sort-key tuple named by a cursor of this ordering (422 for anything else)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError):
        raise ParamError(param, "is not a valid cursor") from None
    expected = {"id"} if ordering.kind == "id" else {ordering.name, "id"}
    if not isinstance(body, dict) or set(body) != expected or not isinstance(body["id"], int):
        raise ParamError(param, "is not a cursor of this sort order")
    return (body["id"],) if ordering.kind == "id" else (body[ordering.name], body["id"])


def offset_pagination(total: int, count: int, page: int, limit: int) -> dict:
    """``meta.pagination`` for page/limit paging; links carry ``page`` and ``limit`` only."""
    total_pages = math.ceil(total / limit) if total else 0
    links = {"current": f"?page={page}&limit={limit}"}
    if page > 1:
        links["previous"] = f"?page={page - 1}&limit={limit}"
    if page < total_pages:
        links["next"] = f"?page={page + 1}&limit={limit}"
    return {"total": total, "count": count, "per_page": limit, "current_page": page,
            "total_pages": total_pages, "links": links}


def cursor_pagination(ordering: Ordering, window: Window, limit: int, current: str) -> dict:
    """``meta.cursor_pagination``: start/end cursors of this page and links to its neighbours."""
    block: dict = {"count": len(window.records), "per_page": limit}
    links = {"current": current}
    if window.records:
        start = encode_cursor(ordering, window.records[0])
        end = encode_cursor(ordering, window.records[-1])
        block["start_cursor"], block["end_cursor"] = start, end
        if window.has_before:
            links["previous"] = f"?page=1&before={quote(start)}&limit={limit}"
        if window.has_after:
            links["next"] = f"?page=1&after={quote(end)}&limit={limit}"
    block["links"] = links
    return block
