"""commercetools Composable Commerce client on the shared HTTP layer, and its Dagster resource.

``CommercetoolsClient`` gets an OAuth2 client-credentials token from ``<auth_url>/oauth/token``
(HTTP Basic, optional space-separated ``scope``) and keeps it in a ``BearerToken``, so a 401 on
the API fetches a new one once. Every call goes through ``ApiClient`` (retries on 429/5xx,
dropped connections and timeouts, ``Retry-After``). ``iter_modified`` reads a resource in
``(lastModifiedAt, id)`` order with keyset paging — the predicate
``lastModifiedAt > "X" or (lastModifiedAt = "X" and id > "Y")`` — so it never needs an
``offset`` (the API refuses offsets past 10,000), and asks for ``withTotal=false``.

``CommercetoolsResource.from_env_prefix("CTP")`` reads ``CTP_PROJECT_KEY``, ``CTP_CLIENT_ID``,
``CTP_CLIENT_SECRET``, ``CTP_SCOPES`` (comma or space separated, as the SDK reads it),
``CTP_AUTH_URL`` and ``CTP_API_URL`` through ``dagster.EnvVar`` (contracts §2).
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import quote, urlsplit

import requests
from dagster import ConfigurableResource

from ..http.jsonbody import decode_json as decode_lenient
from . import bound_env_vars
from ..http.client import ApiClient, ApiError, BearerToken, token_cache_key
from ..http.client import RateLimiter, RequestStats  # write-back

DEFAULT_AUTH_URL = "https://auth.europe-west1.gcp.commercetools.com"
DEFAULT_API_URL = "https://api.europe-west1.gcp.commercetools.com"
MAX_LIMIT = 500          # the API's maximum page size
MAX_OFFSET = 10_000      # the API refuses larger offsets
STAMP = "lastModifiedAt"
ENV_SUFFIXES = {"project_key": "PROJECT_KEY", "client_id": "CLIENT_ID", "client_secret": "CLIENT_SECRET",
                "scopes": "SCOPES", "auth_url": "AUTH_URL", "api_url": "API_URL"}


class CommercetoolsConfigError(ValueError):
    """Credentials are missing (the message names the environment variables to set)."""


@dataclass(frozen=True)
class Credentials:
    project_key: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ()
    auth_url: str = DEFAULT_AUTH_URL
    api_url: str = DEFAULT_API_URL


def split_scopes(raw: str | Sequence[str] | None) -> tuple[str, ...]:
    """``CTP_SCOPES`` is comma separated for the SDK; the token endpoint wants spaces. Accept both."""
    if not raw:
        return ()
    text = raw if isinstance(raw, str) else " ".join(raw)
    return tuple(s for s in re.split(r"[,\s]+", text) if s)


def token_url(auth_url: str) -> str:
    """``<auth_url>/oauth/token`` unless the URL already names a path (the SDK's rule)."""
    if urlsplit(auth_url).path.strip("/"):
        return auth_url
    return auth_url.rstrip("/") + "/oauth/token"


def format_stamp(value: datetime) -> str:
    """A commercetools date-time literal: ``2024-01-01T00:00:00.000Z`` (truncated to ms, so a
    lower bound never skips a record)."""
    dt = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_stamp(value: Any) -> datetime | None:
    """An API date-time as an aware UTC datetime; None when absent; ValueError when unparseable."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date-time: {value!r}")
    dt = datetime.fromisoformat(value.strip())
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def literal(text: str) -> str:
    """A quoted predicate string literal (``"`` and ``\\`` escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def keyset_predicate(stamp: str, record_id: str) -> str:
    s = literal(stamp)
    return f"{STAMP} > {s} or ({STAMP} = {s} and id > {literal(record_id)})"


def parse_body(content: bytes) -> Any:
    """A response body (shared lenient decoding: ``referral_pipeline.http.jsonbody``)."""
    return decode_lenient(content)


class CommercetoolsClient:
    """One commercetools project: token handling and the query endpoints."""

    def __init__(self, credentials: Credentials, *, session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = (5.0, 60.0), max_attempts: int = 6,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0, max_wait: float = 120.0,
                 rate_limit_per_second: float | None = None):
        self.credentials = credentials
        session = session or requests.Session()
        policy = dict(session=session, timeout=timeout, max_attempts=max_attempts, backoff_base=backoff_base,
                      backoff_cap=backoff_cap, max_wait=max_wait)
        self.auth_api = ApiClient(credentials.auth_url, name="commercetools-auth", **policy)
        # one token per API client and process: clients of the same credentials share it
        self.token = BearerToken(self._fetch_token, cache_key=token_cache_key(
            "commercetools", token_url(credentials.auth_url), credentials.client_id, credentials.client_secret,
            credentials.scopes))
        base = f"{credentials.api_url.rstrip('/')}/{quote(credentials.project_key, safe='')}"
        self.api = ApiClient(base, auth=self.token, name="commercetools", rate_limit_per_second=rate_limit_per_second,
                             burst=max(1.0, rate_limit_per_second or 1.0), **policy)

    # -- auth ------------------------------------------------------------------------------------
    def _fetch_token(self) -> tuple[str, float]:
        c = self.credentials
        basic = base64.b64encode(f"{c.client_id}:{c.client_secret}".encode()).decode()
        form = {"grant_type": "client_credentials", **({"scope": " ".join(c.scopes)} if c.scopes else {})}
        try:
            response = self.auth_api.request("POST", token_url(c.auth_url), data=form, idempotent=True,
                                             headers={"Authorization": f"Basic {basic}"})
        except ApiError as exc:
            raise ApiError(exc.method, exc.url, exc.status, exc.body,
                           f"commercetools token request failed ({exc.status}): {exc.body[:300]}") from None
        body = parse_body(response.content)
        return body["access_token"], float(body.get("expires_in") or 3600)

    # -- reads -----------------------------------------------------------------------------------
    def query(self, resource: str, *, where: Sequence[str] = (), sort: Sequence[str] = (), limit: int = MAX_LIMIT,
              offset: int = 0, expand: Sequence[str] = ()) -> dict:
        """One ``GET /{projectKey}/<resource>`` page (``withTotal=false``)."""
        return parse_body(self.query_body(resource, where=where, sort=sort, limit=limit, offset=offset, expand=expand))

    def query_body(self, resource: str, *, where: Sequence[str] = (), sort: Sequence[str] = (),
                   limit: int = MAX_LIMIT, offset: int = 0, expand: Sequence[str] = ()) -> bytes:
        """The raw response body of one ``query`` page (for readers that parse it themselves)."""
        if not 0 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
            raise ValueError(f"limit must be 0..{MAX_LIMIT} and offset 0..{MAX_OFFSET}")
        params = ([("where", w) for w in where] + [("sort", s) for s in sort]
                  + [("limit", str(limit)), ("withTotal", "false")]
                  + ([("offset", str(offset))] if offset else []) + [("expand", e) for e in expand])
        return self.api.request("GET", resource, params=params).content

    def iter_modified(self, resource: str, *, since: datetime | None = None, since_id: str | None = None,
                      until: datetime | None = None, page_size: int = MAX_LIMIT,
                      expand: Sequence[str] = (), read_page: Callable[[bytes], PageRead] | None = None) -> Iterator[Any]:
        """Pages of records with ``(lastModifiedAt, id)`` after ``(since, since_id)`` — or
        ``lastModifiedAt >= since`` without an id — and before ``until``, oldest first.

        Keyset paging: each next page starts after the last record of the previous one. Records
        whose stamp cannot be parsed sort first on the server; until a parseable stamp is seen the
        pages are read by offset (at most 10,000 such records).

        ``read_page(body)`` parses a response body into ``(page, record count, last position)``
        (default: the parsed ``results`` list); the pages it returns are yielded."""
        read_page = read_page or read_records
        limit = max(1, min(page_size, MAX_LIMIT))
        fixed = [f"{STAMP} < {literal(format_stamp(until))}"] if until else []
        position = (format_stamp(since), since_id) if since is not None and since_id else None
        lower = [f"{STAMP} >= {literal(format_stamp(since))}"] if since is not None and not since_id else []
        offset = 0
        while True:
            where = fixed + ([keyset_predicate(*position)] if position else lower)
            page, count, last = read_page(self.query_body(resource, where=where, sort=(f"{STAMP} asc", "id asc"),
                                                          limit=limit, offset=offset, expand=expand))
            if count:
                yield page
            if count < limit:
                return
            position, offset = _advance(last, count, position, offset)

    # -- write-back (referral custom fields on customers; docs/sync.md "commercetools") -------------
    @property
    def stats(self) -> RequestStats:
        """Requests to the project API (token requests are counted on ``auth_api``)."""
        return self.api.stats

    def limit_rate(self, per_second: float | None, burst: float = 1.0) -> None:
        """Pace this client's API requests (commercetools publishes no rate limit; the write-back
        chooses one so a nightly push does not crowd the storefront's traffic)."""
        self.api.limiter = RateLimiter(per_second, burst, self.api.sleep)

    def get_one(self, resource: str, ident: str) -> dict | None:
        """``GET /{projectKey}/<resource>/<ident>`` (``ident``: an id or ``key=<key>``); None on 404."""
        response = self.api.request("GET", f"{resource}/{_path_segment(ident)}", raise_for_status=False)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise ApiError("GET", response.url, response.status_code, response.text, headers=response.headers)
        return parse_body(response.content)

    def get_customer(self, customer_id: str) -> dict | None:
        return self.get_one("customers", customer_id)

    def get_customers(self, customer_ids: Sequence[str]) -> list[dict]:
        """The customers with these ids, in one query (``id in (...)``; at most ``MAX_LIMIT``)."""
        if not customer_ids:
            return []
        if len(customer_ids) > MAX_LIMIT:
            raise ValueError(f"at most {MAX_LIMIT} ids per query")
        where = f"id in ({', '.join(literal(i) for i in customer_ids)})"
        return list(self.query("customers", where=[where], limit=len(customer_ids)).get("results") or [])

    def update(self, resource: str, ident: str, version: int, actions: list[dict]) -> dict:
        """``POST /{projectKey}/<resource>/<ident>`` with ``{version, actions}``. Sent as idempotent:
        the write-back only sends set-to-value actions, and a repeat of an update that was applied
        fails with 409 (the version moved) instead of applying twice."""
        response = self.api.request("POST", f"{resource}/{_path_segment(ident)}",
                                    json={"version": int(version), "actions": actions}, idempotent=True)
        return parse_body(response.content)

    def update_customer(self, customer_id: str, version: int, actions: list[dict]) -> dict:
        return self.update("customers", customer_id, version, actions)

    def get_type(self, key: str) -> dict | None:
        return self.get_one("types", f"key={key}")

    def create_type(self, draft: dict) -> dict:
        """``POST /{projectKey}/types``; a repeat answers 400 ``DuplicateField`` (key), never a second Type."""
        return parse_body(self.api.request("POST", "types", json=draft, idempotent=True).content)


# A page as read: (the page, its number of records, the (stamp, id) of its last record that has both)
PageRead = tuple[Any, int, "tuple[datetime, str] | None"]


def read_records(body: bytes) -> PageRead:
    """The default page reader: the parsed ``results`` list."""
    records = (parse_body(body) or {}).get("results") or []
    return records, len(records), last_position(records)


def last_position(records: list[dict]) -> tuple[datetime, str] | None:
    """The stamp and id of the last record with a parseable stamp and an id."""
    for rec in reversed(records):
        try:
            stamp = parse_stamp(rec.get(STAMP))
        except (ValueError, TypeError):
            continue
        if stamp is not None and rec.get("id"):
            return stamp, str(rec["id"])
    return None


def _next_position(records: list[dict], position: tuple[str, str] | None,
                   offset: int) -> tuple[tuple[str, str] | None, int]:
    return _advance(last_position(records), len(records), position, offset)


def _advance(last: tuple[datetime, str] | None, count: int, position: tuple[str, str] | None,
             offset: int) -> tuple[tuple[str, str] | None, int]:
    """The keyset position after a page whose last positioned record is ``last``, or, when the
    page has none, the same position and the offset advanced by one page."""
    if last is not None:
        new = (format_stamp(last[0]), last[1])
        if position is not None and new <= position:
            raise RuntimeError(f"commercetools keyset paging did not advance past {position}")
        return new, 0
    if offset + count > MAX_OFFSET:
        raise RuntimeError(f"more than {MAX_OFFSET} records without a parseable {STAMP}; cannot page further")
    return position, offset + count


def _path_segment(ident: str) -> str:
    """An id or ``key=<key>`` as one URL path segment (the key part percent-encoded)."""
    if ident.startswith("key="):
        return "key=" + quote(ident[4:], safe="")
    return quote(ident, safe="")


class CommercetoolsResource(ConfigurableResource):
    """Credentials and HTTP policy of one commercetools project (an instance in the programs file)."""

    project_key: str = ""
    client_id: str = ""
    client_secret: str = ""
    scopes: str = ""
    auth_url: str = DEFAULT_AUTH_URL
    api_url: str = DEFAULT_API_URL
    env_prefix: str = "CTP"
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    rate_limit_per_second: float | None = None

    @classmethod
    def from_env_prefix(cls, prefix: str) -> "CommercetoolsResource":
        """EnvVar for each ``<prefix>_*`` variable that is set; defaults for the rest, so the
        definitions load without credentials (``client()`` then says what is missing)."""
        values = bound_env_vars(prefix, ENV_SUFFIXES)
        return cls(env_prefix=prefix, **values)

    def credentials(self) -> Credentials:
        missing = [f"{self.env_prefix}_{ENV_SUFFIXES[f]}" for f in ("project_key", "client_id", "client_secret")
                   if not getattr(self, f)]
        if missing:
            raise CommercetoolsConfigError(f"commercetools credentials missing: set {', '.join(missing)}")
        return Credentials(self.project_key, self.client_id, self.client_secret, split_scopes(self.scopes),
                           self.auth_url or DEFAULT_AUTH_URL, self.api_url or DEFAULT_API_URL)

    def client(self) -> CommercetoolsClient:
        return CommercetoolsClient(self.credentials(), timeout=(5.0, self.timeout_seconds),
                                   max_attempts=self.max_attempts, rate_limit_per_second=self.rate_limit_per_second)
