"""BigCommerce REST client (v2 and v3) on the shared HTTP layer, and its Dagster resource.

``BigCommerceClient`` sends every call through ``ApiClient`` under
``<api_url>/stores/<store_hash>/`` with the ``X-Auth-Token`` header, so it inherits the retry
policy (429 waits ``X-Rate-Limit-Time-Reset-Ms``, 5xx / dropped connections back off), the pause
when ``X-Rate-Limit-Requests-Left`` reaches 0, and the request statistics. A 204 on a list
endpoint is an empty page. Readers (each yields pages, never the whole collection):

- ``iter_customers``: v3 ``/customers`` by ``date_modified`` with cursor paging (``after``), which is
  a keyset position on the server and therefore stable while records change.
- ``iter_orders``: v2 ``/orders`` by ``date_modified``. v2 only offers ``page``/``limit``, which
  shifts when a record changes during the walk, so the walk is a keyset on the stamp instead:
  every request is ``page=1`` from the last stamp read (``min_date_modified`` is inclusive), the
  records already read at that stamp are skipped, and a stamp shared by a full page or more is
  read on its own in id order (``min_id``). See ``StampKeysetWalk`` and docs/sources/bigcommerce.md.
- ``order_coupons``: one order's coupons sub-resource.
- ``iter_refunds``: v3 ``/orders/payment_actions/refunds`` by ``created:min`` (refund-id order;
  refunds are immutable and new ones get higher ids, so ``page`` paging is stable).
- ``iter_coupons``: v2 ``/coupons`` in id order by ``min_id`` keyset.

``BigCommerceResource.from_env_prefix("BIGCOMMERCE")`` reads ``<PREFIX>_STORE_HASH``,
``<PREFIX>_ACCESS_TOKEN`` and ``<PREFIX>_API_URL`` (default ``https://api.bigcommerce.com``)
through ``dagster.EnvVar`` (contracts §2).
"""
from __future__ import annotations

import email.utils
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Mapping, Protocol
from urllib.parse import quote

import requests
from dagster import ConfigurableResource

from ..http.jsonbody import decode_json as decode_lenient
from . import bound_env_vars
from ..http.client import ApiClient, RequestStats, StaticHeaders

DEFAULT_API_URL = "https://api.bigcommerce.com"
MAX_LIMIT = 250                       # the largest page BigCommerce serves (more is a 413)
MAX_ATTRIBUTE_VALUES = 10             # PUT /v3/customers/attribute-values: values per call
ONE_SECOND = timedelta(seconds=1)
ORDER_INCLUDE = "consignments.line_items"
CUSTOMER_INCLUDE = "attributes,addresses"
ENV_SUFFIXES = {"store_hash": "STORE_HASH", "access_token": "ACCESS_TOKEN", "api_url": "API_URL"}
UTC = timezone.utc
_RFC2822 = re.compile(r"^\s*([A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s")


class BigCommerceError(Exception):
    """A BigCommerce answer the pipeline cannot use (missing credentials, unexpected body)."""


# ---- dates --------------------------------------------------------------------------------------
def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_date(value: Any) -> datetime | None:
    """A BigCommerce date as an aware UTC datetime: RFC 2822 (v2, ``Thu, 20 Apr 2017 11:32:00
    +0000``) or ISO 8601 (v3, ``2024-05-14T09:34:00Z``). None when absent or empty; ValueError when
    unparseable."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    text = value.strip()
    if _RFC2822.match(text):
        try:
            return _utc(email.utils.parsedate_to_datetime(text))
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"not an RFC 2822 date: {value!r}") from exc
    return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def floor_second(dt: datetime) -> datetime:
    return _utc(dt).replace(microsecond=0)


def last_second_before(end: datetime) -> datetime:
    """The last whole second strictly before ``end`` (an inclusive ``max`` for the window ``[.., end)``)."""
    return floor_second(_utc(end) - timedelta(microseconds=1))


def format_rfc2822(dt: datetime) -> str:
    """``Thu, 20 Apr 2017 11:32:00 +0000`` (v2 date filters), floored to the second."""
    return email.utils.format_datetime(floor_second(dt)).replace("-0000", "+0000")


def format_v3_date(dt: datetime) -> str:
    """``2024-05-14T09:34:00`` (UTC, the form the customers API documents), floored to the second."""
    return floor_second(dt).strftime("%Y-%m-%dT%H:%M:%S")


def format_rfc3339(dt: datetime) -> str:
    """``2024-05-14T09:34:00Z`` (refund ``created:min|max``), floored to the second."""
    return floor_second(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- bodies -------------------------------------------------------------------------------------
def decode_json(content: bytes) -> Any:
    """A response body (shared lenient decoding: ``referral_pipeline.http.jsonbody``)."""
    try:
        return decode_lenient(content)
    except ValueError as exc:
        raise BigCommerceError(f"response is not JSON: {content[:200]!r}") from exc


def record_id(record: dict) -> int | None:
    """A record's integer ``id`` (None when absent or not an integer)."""
    value = record.get("id")
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def safe_stamp(record: dict, field_name: str) -> datetime | None:
    try:
        return parse_date(record.get(field_name))
    except ValueError:
        return None


# ---- the v2 orders walk -------------------------------------------------------------------------
class WalkPage(Protocol):
    """One list response as ``StampKeysetWalk`` sees it (``DictRows``, or rows parsed elsewhere)."""

    def __len__(self) -> int: ...
    def positions(self) -> list[tuple[int | None, datetime | None]]: ...   # (id, stamp) per row
    def subset(self, keep: list[bool]) -> "WalkPage": ...


@dataclass
class DictRows:
    """Records decoded in Python, as a ``WalkPage``."""

    records: list[dict]
    stamp_field: str

    def __len__(self) -> int:
        return len(self.records)

    def positions(self) -> list[tuple[int | None, datetime | None]]:
        return [(record_id(r), safe_stamp(r, self.stamp_field)) for r in self.records]

    def subset(self, keep: list[bool]) -> "DictRows":
        return DictRows([r for r, k in zip(self.records, keep) if k], self.stamp_field)


@dataclass
class StampKeysetWalk:
    """Reads a v2 list in ``(stamp, id)`` order without offsets.

    ``fetch(lower, tie_min_id, page)`` returns one page (a ``WalkPage`` of at most ``limit``
    records): with ``tie_min_id=None`` page ``page`` of the records with ``stamp >= lower`` (all
    when ``lower`` is None) sorted by stamp; otherwise the records with ``stamp == lower`` and
    ``id >= tie_min_id`` sorted by id.
    ``next_page()`` keeps ``lower`` at the last stamp read and skips the ids already read at it,
    so a record changed during the walk moves behind the position and is read again later, and
    nothing shifts under the reader. A full page whose records all share one stamp is followed
    by a walk of that stamp in id order, then the walk continues one second later (v2 stamps
    have whole seconds). Pages without any parseable stamp (only possible before the first
    stamp, i.e. without a lower bound) are skipped with ``page`` as a last resort.
    """

    fetch: Callable[..., WalkPage]
    limit: int
    lower: datetime | None = None
    seen: set[int] = field(default_factory=set)     # ids read whose stamp == lower
    tie_min_id: int | None = None                  # set while walking one stamp in id order
    page_no: int = 1                               # > 1 only while no stamp has been seen
    done: bool = False

    def next_page(self) -> WalkPage:
        """The records of the next request that were not read before (may be empty while not done)."""
        if self.tie_min_id is not None:
            return self._tie_page()
        rows = self.fetch(self.lower, None, self.page_no)
        positions = rows.positions()
        fresh = rows.subset([not self._already_read(pos) for pos in positions])
        if len(rows) < self.limit:
            self.done = True
            return fresh
        stamps = [stamp for _, stamp in positions]
        last = max((s for s in stamps if s is not None), default=None)
        if last is None:
            self.page_no += 1
        elif all(s == last for s in stamps):
            self.seen = ({i for i, _ in positions} | (self.seen if self.lower == last else set())) - {None}
            self.lower, self.tie_min_id, self.page_no = last, 0, 1
        else:
            self.seen = {i for i, s in positions if s == last} - {None}
            self.lower, self.page_no = last, 1
        return fresh

    def _already_read(self, position: tuple[int | None, datetime | None]) -> bool:
        rid, stamp = position
        return self.lower is not None and rid in self.seen and stamp == self.lower

    def _tie_page(self) -> WalkPage:
        rows = self.fetch(self.lower, self.tie_min_id, 1)
        positions = rows.positions()
        fresh = rows.subset([rid not in self.seen for rid, _ in positions])
        ids = [rid for rid, _ in positions if rid is not None]
        if len(rows) < self.limit or not ids:
            self.lower, self.seen, self.tie_min_id = self.lower + ONE_SECOND, set(), None
        else:
            self.tie_min_id = max(ids) + 1
        return fresh

    def __iter__(self) -> Iterator[WalkPage]:
        while not self.done:
            position = (self.lower, self.tie_min_id, self.page_no)
            fresh = self.next_page()
            if len(fresh):
                yield fresh
            if not self.done and (self.lower, self.tie_min_id, self.page_no) == position:
                raise RuntimeError(f"BigCommerce keyset walk did not advance past {position}")


# ---- the client ---------------------------------------------------------------------------------
class BigCommerceClient:
    """One BigCommerce store: typed reads on the shared HTTP layer."""

    def __init__(self, store_hash: str, access_token: str, api_url: str = DEFAULT_API_URL, *,
                 session: requests.Session | None = None, timeout: float | tuple[float, float] = (5.0, 60.0),
                 max_attempts: int = 6, backoff_base: float = 0.5, backoff_cap: float = 30.0,
                 max_wait: float = 120.0, rate_limit_per_second: float | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if not store_hash or not access_token:
            raise BigCommerceError("BigCommerce store hash and access token are required")
        base = f"{(api_url or DEFAULT_API_URL).rstrip('/')}/stores/{quote(store_hash, safe='')}"
        self.api = ApiClient(base, auth=StaticHeaders({"X-Auth-Token": access_token}), session=session,
                             timeout=timeout, max_attempts=max_attempts, backoff_base=backoff_base,
                             backoff_cap=backoff_cap, max_wait=max_wait, rate_limit_per_second=rate_limit_per_second,
                             burst=rate_limit_per_second, default_headers={"Accept": "application/json"},
                             name="bigcommerce", sleep=sleep)

    @property
    def stats(self) -> RequestStats:
        return self.api.stats

    # -- raw calls -------------------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a path under the store; None for 204 / an empty body."""
        response = self.api.request("GET", path, params=dict(params or {}))
        return None if response.status_code == 204 else decode_json(response.content)

    def v2_list(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict]:
        """A v2 collection page: a bare JSON array, or 204 (no rows)."""
        return self._v2_rows(path, self.v2_body(path, params))

    def v2_body(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        """The raw body of a v2 collection page (empty for 204)."""
        response = self.api.request("GET", path, params=dict(params or {}))
        return b"" if response.status_code == 204 else response.content

    @staticmethod
    def _v2_rows(path: str, content: bytes) -> list[dict]:
        body = decode_json(content) if content else None
        if body is None:
            return []
        if not isinstance(body, list):
            raise BigCommerceError(f"GET {path}: expected a JSON array, got {str(body)[:200]}")
        return body

    def v3_page(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[list[dict], dict]:
        """A v3 collection page: ``(data, meta)``."""
        body = self.get(path, params)
        if body is None:
            return [], {}
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise BigCommerceError(f"GET {path}: expected {{data, meta}}, got {str(body)[:200]}")
        return body["data"], body.get("meta") or {}

    # -- v3 customers ------------------------------------------------------------------------------
    def iter_customers(self, since: datetime | None = None, until: datetime | None = None,
                       page_size: int = MAX_LIMIT, include: str = CUSTOMER_INCLUDE) -> Iterator[list[dict]]:
        """Customers with ``date_modified >= since`` (and before ``until``), oldest first, by cursor."""
        limit = _limit(page_size)
        params: dict[str, Any] = {"sort": "date_modified:asc", "limit": limit, "include": include}
        if since is not None:
            params["date_modified:min"] = format_v3_date(since)
        if until is not None:
            params["date_modified:max"] = format_v3_date(last_second_before(until))
        page = 1
        cursor: str | None = None
        while True:
            request = {**params, "after": cursor} if cursor else {**params, "page": page}
            rows, meta = self.v3_page("v3/customers", request)
            kept = _before(rows, "date_modified", until)
            if kept:
                yield kept
            cursor, page, more = _next_customer_position(meta, page)
            if not more or len(rows) < limit:
                return

    # -- v2 orders ---------------------------------------------------------------------------------
    def iter_orders(self, since: datetime | None = None, until: datetime | None = None,
                    page_size: int = MAX_LIMIT, archived: bool = False,
                    include: str = ORDER_INCLUDE) -> Iterator[list[dict]]:
        """Orders with ``date_modified >= since`` (and before ``until``), oldest first
        (``archived``: only archived orders, which lists leave out otherwise)."""
        for page in self.iter_order_pages(since, until, page_size, archived, include):
            yield page.records

    def iter_order_pages(self, since: datetime | None = None, until: datetime | None = None,
                         page_size: int = MAX_LIMIT, archived: bool = False, include: str = ORDER_INCLUDE,
                         read_page: Callable[[bytes], WalkPage | None] | None = None) -> Iterator[WalkPage]:
        """``iter_orders`` as ``WalkPage``s: each response body goes to ``read_page`` (e.g. a DuckDB
        parser) and, when that gives None or there is none, is decoded here (``DictRows``)."""
        limit = _limit(page_size)
        base: dict[str, Any] = {"limit": limit, "include": include}
        if archived:
            base["is_deleted"] = "true"
        upper = last_second_before(until) if until is not None else None

        def fetch(lower: datetime | None, tie_min_id: int | None, page: int) -> WalkPage:
            params = dict(base)
            if tie_min_id is None:
                params.update(sort="date_modified:asc", page=page)
                if lower is not None:
                    params["min_date_modified"] = format_rfc2822(lower)
                if upper is not None:
                    params["max_date_modified"] = format_rfc2822(upper)
            else:
                params.update(sort="id:asc", min_id=tie_min_id, min_date_modified=format_rfc2822(lower),
                              max_date_modified=format_rfc2822(lower))
            body = self.v2_body("v2/orders", params)
            parsed = read_page(body) if read_page is not None and body else None
            return parsed if parsed is not None else DictRows(self._v2_rows("v2/orders", body), "date_modified")

        walk = StampKeysetWalk(fetch, limit, lower=floor_second(since) if since else None)
        for rows in walk:
            if until is not None:
                end = _utc(until)
                rows = rows.subset([s is None or s < end for _, s in rows.positions()])
            if len(rows):
                yield rows

    def order_coupons(self, order_id: Any) -> list[dict]:
        """The coupons applied to one order (``/v2/orders/{id}/coupons``, all pages)."""
        out: list[dict] = []
        page = 1
        while True:
            rows = self.v2_list(f"v2/orders/{quote(str(order_id), safe='')}/coupons",
                                {"limit": MAX_LIMIT, "page": page})
            out.extend(rows)
            if len(rows) < MAX_LIMIT:
                return out
            page += 1

    # -- v3 refunds --------------------------------------------------------------------------------
    def iter_refunds(self, since: datetime | None = None, until: datetime | None = None,
                     page_size: int = MAX_LIMIT) -> Iterator[list[dict]]:
        """Refunds with ``created >= since`` (and before ``until``), in refund-id order."""
        limit = _limit(page_size)
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["created:min"] = format_rfc3339(since)
        if until is not None:
            params["created:max"] = format_rfc3339(last_second_before(until))
        page = 1
        while True:
            rows, meta = self.v3_page("v3/orders/payment_actions/refunds", {**params, "page": page})
            kept = _before(rows, "created", until)
            if kept:
                yield kept
            total_pages = (meta.get("pagination") or {}).get("total_pages")
            if len(rows) < limit or (isinstance(total_pages, int) and page >= total_pages):
                return
            page += 1

    # -- v2 coupons --------------------------------------------------------------------------------
    def iter_coupons(self, page_size: int = MAX_LIMIT) -> Iterator[list[dict]]:
        """Every coupon, in id order (``min_id`` keyset, the paging the API recommends)."""
        limit = _limit(page_size)
        min_id = 1
        while True:
            rows = self.v2_list("v2/coupons", {"min_id": min_id, "limit": limit})
            if rows:
                yield rows
            ids = [i for i in (record_id(r) for r in rows) if i is not None]
            if len(rows) < limit or not ids:
                return
            if max(ids) + 1 <= min_id:
                raise RuntimeError(f"BigCommerce coupon paging did not advance past min_id={min_id}")
            min_id = max(ids) + 1

    # -- write-back: customer attributes (docs/sync.md "BigCommerce") ---------------------------------
    def customer_attributes(self, name: str | None = None) -> list[dict]:
        """Customer attribute definitions (``GET /v3/customers/attributes``, all pages; ``name`` filters)."""
        out: list[dict] = []
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "limit": MAX_LIMIT, **({"name": name} if name else {})}
            rows, meta = self.v3_page("v3/customers/attributes", params)
            out.extend(rows)
            total_pages = (meta.get("pagination") or {}).get("total_pages")
            if len(rows) < MAX_LIMIT or not isinstance(total_pages, int) or page >= total_pages:
                return out
            page += 1

    def create_customer_attributes(self, items: list[dict]) -> list[dict]:
        """``POST /v3/customers/attributes`` (``[{name, type}]``). Sent as idempotent: a repeat
        answers 422 (the name exists), never a second attribute."""
        response = self.api.request("POST", "v3/customers/attributes", json=items, idempotent=True)
        return (decode_json(response.content) or {}).get("data") or []

    def upsert_attribute_values(self, values: list[dict], quota_reserve: int = 0) -> list[dict]:
        """``PUT /v3/customers/attribute-values``: at most ``MAX_ATTRIBUTE_VALUES`` values
        (``{attribute_id, customer_id, value}``) per call, an upsert (safe to repeat).

        ``quota_reserve``: with that many requests possibly in flight at once, pause the next request
        until the window resets as soon as fewer than ``quota_reserve`` requests are left, so
        concurrent writers never run the store's quota into a 429 (the HTTP layer alone pauses at 0)."""
        if len(values) > MAX_ATTRIBUTE_VALUES:
            raise ValueError(f"at most {MAX_ATTRIBUTE_VALUES} attribute values per request, got {len(values)}")
        response = self.api.request("PUT", "v3/customers/attribute-values", json=values)
        if quota_reserve > 0:
            self._keep_quota_reserve(response.headers, quota_reserve)
        return (decode_json(response.content) or {}).get("data") or []

    def _keep_quota_reserve(self, headers: Mapping[str, str], reserve: int) -> None:
        try:
            left = int(float(headers["X-Rate-Limit-Requests-Left"]))
            reset_seconds = float(headers.get("X-Rate-Limit-Time-Reset-Ms", "1000")) / 1000.0
        except (KeyError, ValueError):
            return
        if left < reserve:
            self.api.limiter.pause_until(time.monotonic() + min(reset_seconds, self.api.max_wait))


def _limit(page_size: int | None) -> int:
    return max(1, min(int(page_size or MAX_LIMIT), MAX_LIMIT))


def _before(rows: list[dict], stamp_field: str, until: datetime | None) -> list[dict]:
    """Rows whose stamp is before ``until`` (the filters have whole seconds; windows are exact)."""
    if until is None:
        return rows
    end = _utc(until)
    return [r for r in rows if (s := safe_stamp(r, stamp_field)) is None or s < end]


def _next_customer_position(meta: dict, page: int) -> tuple[str | None, int, bool]:
    """(``after`` cursor, page number, whether there is more) from a v3 ``meta``: the cursor when
    the page has a next link by cursor, else (an API without cursors) the next page number."""
    cursor_block = meta.get("cursor_pagination") or {}
    if cursor_block:
        more = bool((cursor_block.get("links") or {}).get("next")) and bool(cursor_block.get("end_cursor"))
        return cursor_block.get("end_cursor"), page, more
    pagination = meta.get("pagination") or {}
    total_pages = pagination.get("total_pages") or 0
    return None, page + 1, isinstance(total_pages, int) and page < total_pages


# ---- the Dagster resource -----------------------------------------------------------------------
class BigCommerceResource(ConfigurableResource):
    """Credentials and HTTP policy of one BigCommerce store (a source instance in the programs file)."""

    store_hash: str = ""
    access_token: str = ""
    api_url: str = DEFAULT_API_URL
    env_prefix: str = "BIGCOMMERCE"
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    rate_limit_per_second: float | None = None

    @classmethod
    def from_env_prefix(cls, prefix: str) -> "BigCommerceResource":
        """EnvVar for each ``<prefix>_*`` variable that is set, defaults for the rest, so the
        definitions load without credentials (``client()`` then names what is missing)."""
        values = bound_env_vars(prefix, ENV_SUFFIXES)
        return cls(env_prefix=prefix, **values)

    def client(self) -> BigCommerceClient:
        missing = [f"{self.env_prefix}_{ENV_SUFFIXES[name]}" for name in ("store_hash", "access_token")
                   if not getattr(self, name)]
        if missing:
            raise BigCommerceError(f"BigCommerce credentials missing: set {' and '.join(missing)}")
        return BigCommerceClient(self.store_hash, self.access_token, self.api_url or DEFAULT_API_URL,
                                 timeout=(5.0, self.timeout_seconds), max_attempts=self.max_attempts,
                                 rate_limit_per_second=self.rate_limit_per_second)

