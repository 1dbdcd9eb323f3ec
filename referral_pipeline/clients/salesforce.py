"""Salesforce REST and Bulk API 2.0 reads through simple-salesforce, on the shared HTTP layer.

``SalesforceClient`` uses simple-salesforce for the Salesforce specifics (URLs, SOQL query and
``nextRecordsUrl`` paging, Bulk 2.0 job handling, the client-credentials login, error mapping)
and hands every HTTP request it makes to the shared ``ApiClient`` through ``ApiClientSession``,
a ``requests.Session`` whose ``request`` goes through ``ApiClient.request``. So the library's
calls get the pipeline's retry policy (5xx, 408/423/429 with ``Retry-After``, dropped
connections and timeouts), its client-side rate limit, its request statistics and the
``BearerToken`` refresh: a 401 ``INVALID_SESSION_ID`` fetches a new token once and repeats the
call. Plain-http instances (the sandbox) are reached through ``session_for_instance``.

Salesforce has no REST 429: a throttled request gets ``403 REQUEST_LIMIT_EXCEEDED`` with a
concurrency message (``ConcurrentPerOrgLongTxn Limit exceeded.``), which is transient and
retried; the same error code with ``TotalRequests Limit exceeded.`` means the org's daily
allowance is spent, which no retry in this run can fix: it raises ``SalesforceQuotaExhausted``.

Records come back as flat dicts without ``attributes``. Text that is not valid Unicode (lone
surrogates) becomes U+FFFD and non-finite numbers become their text, so a record can always be
stored and staging quarantines it. Bulk CSV values are converted back to the REST JSON types from
the object's describe (numbers, checkboxes, empty cell = null, datetimes in REST form), so both
paths land identical payloads.

``SalesforceResource.from_env_prefix("SALESFORCE")`` reads ``<PREFIX>_INSTANCE_URL``,
``<PREFIX>_ACCESS_TOKEN`` or ``<PREFIX>_CLIENT_ID`` + ``<PREFIX>_CLIENT_SECRET`` (+
``<PREFIX>_DOMAIN``), and ``<PREFIX>_API_VERSION`` (default 62.0) through ``dagster.EnvVar``.
"""
from __future__ import annotations

import csv
import io
import math
import re
import time
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

import requests
from dagster import ConfigurableResource
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError as LibraryError
from simple_salesforce.exceptions import SalesforceRefusedRequest
from simple_salesforce.login import SalesforceLogin

from ..http.jsonbody import LONE_SURROGATE, storable
from . import bound_env_vars
from ..http.client import IDEMPOTENT_METHODS, ApiClient, BearerToken, token_cache_key
from ..http.salesforce_session import session_for_instance

DEFAULT_API_VERSION = "62.0"
MAX_BATCH_SIZE = 2000          # REST query batch size (Sforce-Query-Options), 200..2000
MIN_BATCH_SIZE = 200
BULK_MAX_RECORDS = 50_000      # rows per Bulk 2.0 results page (the API's default)
TOKEN_TTL_SECONDS = 3600.0     # client-credentials tokens carry no expiry; a 401 refreshes earlier
DAILY_LIMIT_MESSAGE = "TotalRequests Limit exceeded"
CSV_DATETIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z$")
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
INT_TYPES = frozenset({"int", "long"})
COLLECTION_MAX_RECORDS = 200   # sObject Collections: records per request
BULK_POLL_CAP_SECONDS = 2.0    # Bulk 2.0 ingest: longest wait between job polls


LOGIN_INSTANCES: dict[tuple, str] = {}   # token cache key -> instance URL its login returned


class SalesforceClientError(Exception):
    """A Salesforce answer the pipeline cannot use (configuration, credentials, unexpected body)."""


class SalesforceQuotaExhausted(SalesforceClientError):
    """The org's daily API request allowance is used up (403 TotalRequests Limit exceeded)."""


# ---- response classification ------------------------------------------------------------------------
def error_entries(response: requests.Response) -> list[dict]:
    """The ``[{"message", "errorCode"}]`` list of a Salesforce error body ([] when not that shape)."""
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


def is_concurrency_throttle(response: requests.Response) -> bool:
    """True for Salesforce's transient throttle: ``REQUEST_LIMIT_EXCEEDED`` that is not the daily
    allowance (the concurrent long-running request limit, or a rate limit)."""
    if response.status_code not in (403, 429):
        return False
    return any(e.get("errorCode") == "REQUEST_LIMIT_EXCEEDED"
               and DAILY_LIMIT_MESSAGE not in str(e.get("message", "")) for e in error_entries(response))


def is_daily_limit(exc: Exception) -> bool:
    return isinstance(exc, SalesforceRefusedRequest) and DAILY_LIMIT_MESSAGE in str(getattr(exc, "content", ""))


# ---- the session simple-salesforce talks through ---------------------------------------------------------
class ApiClientSession(requests.Session):
    """A ``requests.Session`` whose requests go through ``ApiClient.request`` (retries, rate
    limit, stats, token). The ``Authorization`` header simple-salesforce sets is replaced by the
    client's own token, so a refreshed token is used on the retry of a 401."""

    def __init__(self, api: ApiClient):
        super().__init__()
        self.api = api

    def request(self, method, url, params=None, data=None, headers=None, json=None, **_ignored):
        method = str(method).upper()
        headers = {k: v for k, v in (headers or {}).items()
                   if not (self.api.auth is not None and k.lower() == "authorization")}
        return self.api.request(method, url, params=params, data=data, json=json, headers=headers,
                                idempotent=is_idempotent(method, url), raise_for_status=False)


def is_idempotent(method: str, url: str) -> bool:
    """Reads, plus the two POSTs that are safe to repeat: a token request and creating a Bulk query
    job (a second job for the same query does no harm)."""
    if method in IDEMPOTENT_METHODS:
        return True
    path = urlsplit(url).path.rstrip("/")
    return method == "POST" and (path.endswith("/jobs/query") or path.endswith("/services/oauth2/token"))


# ---- value conversion ---------------------------------------------------------------------------------------
def rest_record(record: Mapping[str, Any]) -> dict:
    """A REST query record as we store it: no ``attributes``, storable values."""
    return {k: storable(v) for k, v in record.items() if k != "attributes"}


def csv_value(cell: str, field_type: str | None) -> Any:
    """A Bulk 2.0 CSV cell as the REST API would have returned it (by describe type)."""
    if cell == "":
        return False if field_type == "boolean" else None
    if field_type == "boolean":
        return {"true": True, "false": False}.get(cell.lower(), cell)
    if field_type in NUMBER_TYPES or field_type in INT_TYPES:
        try:
            number = int(cell) if field_type in INT_TYPES else float(cell)
        except ValueError:
            return cell  # planted junk stays text, as REST serves it
        return number if not isinstance(number, float) or math.isfinite(number) else cell
    if field_type == "datetime":
        match = CSV_DATETIME.match(cell)
        return f"{match.group(1)}+0000" if match else cell
    return cell


def _text_cell(cell: str) -> str | None:
    return cell if cell != "" else None


def csv_converter(field_type: str | None) -> Callable[[str], Any]:
    """``csv_value`` for one column type (the common text case without the type dispatch)."""
    if field_type == "boolean" or field_type in NUMBER_TYPES or field_type in INT_TYPES or field_type == "datetime":
        return lambda cell: csv_value(cell, field_type)
    return _text_cell


def csv_records(text: str, types: Mapping[str, str]) -> Iterator[dict]:
    """Rows of one Bulk results page, typed like REST records (blank lines skipped). Converters
    are chosen once per column; ``storable`` runs per cell only when the page holds a lone surrogate."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return
    converters = [csv_converter(types.get(name)) for name in header]
    clean = LONE_SURROGATE.search(text) is None
    width = len(header)
    for row in reader:
        if not row:
            continue
        if len(row) != width:   # ragged row: the generic (DictReader-shaped) conversion
            padded = dict(zip(header, row + [""] * (width - len(row))))
            if len(row) > width:
                padded[None] = row[width:]
            yield {name: storable(csv_value(cell or "", types.get(name))) for name, cell in padded.items()}
        elif clean:
            yield dict(zip(header, [convert(cell) for convert, cell in zip(converters, row)]))
        else:
            yield dict(zip(header, [storable(convert(cell)) for convert, cell in zip(converters, row)]))


# ---- the client --------------------------------------------------------------------------------------------------
class SalesforceClient:
    """One Salesforce org: a logged-in simple-salesforce handle on the shared HTTP layer."""

    def __init__(self, instance_url: str, *, access_token: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, domain: str | None = None,
                 api_version: str = DEFAULT_API_VERSION, timeout: float | tuple[float, float] = (5.0, 120.0),
                 max_attempts: int = 6, backoff_base: float = 0.5, backoff_cap: float = 30.0,
                 rate_limit_per_second: float | None = None, bulk_poll_seconds: float = 1.0,
                 token_ttl_seconds: float = TOKEN_TTL_SECONDS, sleep: Callable[[float], None] = time.sleep):
        if not instance_url:
            raise SalesforceClientError("the Salesforce instance URL is required")
        if not access_token and not (client_id and client_secret and domain):
            raise SalesforceClientError("Salesforce credentials missing: an access token, or a client id, "
                                        "client secret and My Domain (client credentials flow)")
        self.api_version = str(api_version).lstrip("vV")
        self.bulk_poll_seconds = bulk_poll_seconds
        self._credentials = (access_token, client_id, client_secret, domain)
        self._token_ttl = token_ttl_seconds
        self._instance = instance_url
        base = session_for_instance(instance_url, login_domain=domain)
        options = dict(session=base, timeout=timeout, max_attempts=max_attempts, backoff_base=backoff_base,
                       backoff_cap=backoff_cap, name="salesforce", sleep=sleep, refused=is_concurrency_throttle)
        self.api = ApiClient(instance_url, rate_limit_per_second=rate_limit_per_second, **options)
        # the token request must not need a token: a second client sharing limiter and stats
        self._login_api = ApiClient(instance_url, **options)
        self._login_api.limiter, self._login_api.stats = self.api.limiter, self.api.stats
        self._login_api._stats_lock = self.api._stats_lock
        # client-credentials tokens are shared by the clients of one org and process (one login
        # per run); the instance URL the login returned is remembered with them
        self._cache_key = None if access_token else token_cache_key(
            "salesforce", instance_url, client_id, client_secret, domain, self.api_version)
        self.api.auth = BearerToken(self._fetch_token, margin_seconds=min(60.0, token_ttl_seconds / 10),
                                    cache_key=self._cache_key)
        self.api.auth.headers()  # log in now: bad credentials fail here, and we learn the instance
        self._instance = LOGIN_INSTANCES.get(self._cache_key, self._instance)
        self.sf = Salesforce(instance_url=self._instance, session_id="managed-by-the-client",
                             session=ApiClientSession(self.api), version=self.api_version)
        self._types: dict[str, dict[str, str]] = {}

    @property
    def stats(self):
        return self.api.stats

    def _fetch_token(self) -> tuple[str, float]:
        access_token, client_id, client_secret, domain = self._credentials
        if access_token:
            return access_token, math.inf
        try:
            token, instance = SalesforceLogin(consumer_key=client_id, consumer_secret=client_secret, domain=domain,
                                              session=ApiClientSession(self._login_api), sf_version=self.api_version)
        except LibraryError as exc:  # the message is Salesforce's error code and text, never a secret
            raise SalesforceClientError(f"Salesforce login failed: {exc} (check the client id, client secret "
                                        f"and domain)") from None
        if urlsplit(self._instance).netloc != instance:
            self._instance = f"https://{instance}"  # the org's own instance, from the token response
        if self._cache_key is not None:
            LOGIN_INSTANCES[self._cache_key] = self._instance
        return token, self._token_ttl

    def _call(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        try:
            return fn(*args, **kwargs)
        except SalesforceRefusedRequest as exc:
            if is_daily_limit(exc):
                raise SalesforceQuotaExhausted("Salesforce daily API request allowance is used up "
                                               "(403 TotalRequests Limit exceeded); retry after the window resets"
                                               ) from None
            raise

    # ---- REST ----------------------------------------------------------------------------------------------
    def count(self, soql: str, include_deleted: bool = True) -> int:
        """``totalSize`` of a ``SELECT COUNT() ...`` query."""
        return int(self._call(self.sf.query, soql, include_deleted=include_deleted)["totalSize"])

    def query_pages(self, soql: str, include_deleted: bool = True, batch_size: int = MAX_BATCH_SIZE
                    ) -> Iterator[list[dict]]:
        """The records of a query, one REST batch at a time (``nextRecordsUrl`` paging)."""
        size = max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, int(batch_size)))
        headers = {"Sforce-Query-Options": f"batchSize={size}"}
        result = self._call(self.sf.query, soql, include_deleted=include_deleted, headers=headers)
        while True:
            yield [rest_record(r) for r in result.get("records", [])]
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            result = self._call(self.sf.query_more, next_url, identifier_is_url=True, headers=headers)

    # ---- Bulk API 2.0 --------------------------------------------------------------------------------------------
    def field_types(self, sobject: str) -> dict[str, str]:
        """Field name -> describe type of an sObject (cached per client)."""
        if sobject not in self._types:
            described = self._call(getattr(self.sf, sobject).describe)
            self._types[sobject] = {f["name"]: f["type"] for f in described.get("fields", [])}
        return self._types[sobject]

    def bulk_query_pages(self, sobject: str, soql: str, include_deleted: bool = True,
                         max_records: int = BULK_MAX_RECORDS) -> Iterator[list[dict]]:
        """A Bulk 2.0 query (``queryAll`` with deleted rows): one list of typed records per results page."""
        types = self.field_types(sobject)
        handler = getattr(self.sf.bulk2, sobject)
        run = handler.query_all if include_deleted else handler.query
        pages = self._call(run, soql, max_records=max_records, wait=self.bulk_poll_seconds)
        while True:
            try:
                text = self._call(next, pages)
            except StopIteration:
                return
            yield list(csv_records(text, types))

    # ---- writes: sObject Collections and Bulk API 2.0 ingest (the sync's write-back) ----------------------------
    # Every write here is an update by Id or an upsert by External ID: repeating it has the same effect,
    # so the HTTP layer may retry it in-run after a dropped connection or a timeout (``idempotent=True``).
    def _data_url(self, path: str) -> str:
        return f"{self.sf.base_url}{path.lstrip('/')}"

    def upsert_collection(self, sobject: str, external_id_field: str, records: list[dict],
                          all_or_none: bool = False) -> list[dict]:
        """``PATCH composite/sobjects/{sobject}/{external_id_field}`` (≤ 200 records of one type): one
        result per record in request order, ``{id, success, errors, created}``; a 200 may carry
        per-record failures (``errors[].statusCode``)."""
        return self._collection("PATCH", f"composite/sobjects/{sobject}/{external_id_field}", sobject, records,
                                all_or_none)

    def update_collection(self, sobject: str, records: list[dict], all_or_none: bool = False) -> list[dict]:
        """``PATCH composite/sobjects``: update existing records by ``Id`` (never creates a record)."""
        return self._collection("PATCH", "composite/sobjects", sobject, records, all_or_none)

    def _collection(self, method: str, path: str, sobject: str, records: list[dict], all_or_none: bool) -> list[dict]:
        if len(records) > COLLECTION_MAX_RECORDS:
            raise ValueError(f"an sObject Collections request takes at most {COLLECTION_MAX_RECORDS} records")
        body = {"allOrNone": bool(all_or_none),
                "records": [{"attributes": {"type": sobject}, **r} for r in records]}
        response = self.api.request(method, self._data_url(path), json=body, idempotent=True)
        results = response.json()
        if not isinstance(results, list) or len(results) != len(records):
            raise SalesforceClientError(f"{method} {path}: expected {len(records)} results, got {str(results)[:200]}")
        return results

    def bulk_ingest(self, sobject: str, operation: str, records: list[dict], external_id_field: str | None = None,
                    timeout_seconds: float = 3600.0) -> "BulkIngestResult":
        """One Bulk API 2.0 ingest job: create (``upsert`` by ``external_id_field``, or ``update`` by Id),
        upload the CSV (a missing key = an empty cell = unchanged; ``None`` = ``#N/A`` = null), close,
        poll until ``JobComplete``, then read ``successfulResults``, ``failedResults`` and
        ``unprocessedrecords``. A job that ends ``Failed``/``Aborted`` comes back with that ``state``, its
        ``error`` and no rows; one that is not done after ``timeout_seconds`` raises ``BulkJobError``."""
        body = {"object": sobject, "operation": operation, "contentType": "CSV", "columnDelimiter": "COMMA",
                "lineEnding": "LF"}
        if external_id_field:
            body["externalIdFieldName"] = external_id_field
        base = f"{self.sf.bulk2_url}ingest"
        job = self.api.request("POST", base, json=body, idempotent=True).json()
        job_id = job["id"]
        if job.get("state") != "Open":
            raise BulkJobError(job_id, str(job.get("state")), "a new ingest job must be Open")
        try:
            self.api.request("PUT", f"{base}/{job_id}/batches", data=bulk_csv(records).encode("utf-8"),
                             headers={"Content-Type": "text/csv; charset=UTF-8"}, idempotent=True)
            self.api.request("PATCH", f"{base}/{job_id}", json={"state": "UploadComplete"}, idempotent=True)
        except Exception:
            self._abort_ingest(f"{base}/{job_id}")   # do not leave an Open job behind; the records are retried
            raise
        info = self._wait_for_ingest(f"{base}/{job_id}", timeout_seconds)
        state = str(info.get("state"))
        if state != "JobComplete":
            return BulkIngestResult(job_id, state, str(info.get("errorMessage") or ""), [], [], [])
        results = {kind: list(csv.DictReader(io.StringIO(
            self.api.request("GET", f"{base}/{job_id}/{kind}", headers={"Accept": "text/csv"}).text, newline="")))
            for kind in ("successfulResults", "failedResults", "unprocessedrecords")}
        return BulkIngestResult(job_id, state, "", results["successfulResults"], results["failedResults"],
                                results["unprocessedrecords"])

    def _abort_ingest(self, url: str) -> None:
        try:
            self.api.request("PATCH", url, json={"state": "Aborted"}, idempotent=True, raise_for_status=False)
        except Exception:  # noqa: BLE001 - best effort: an unclosed job expires on its own
            pass

    def _wait_for_ingest(self, url: str, timeout_seconds: float) -> dict:
        deadline = time.monotonic() + timeout_seconds
        delay = self.bulk_poll_seconds
        while True:
            info = self.api.request("GET", url).json()
            if info.get("state") in ("JobComplete", "Failed", "Aborted"):
                return info
            if time.monotonic() >= deadline:
                raise BulkJobError(info.get("id", ""), str(info.get("state")), "timed out waiting for the job")
            self.api.sleep(delay)
            delay = min(max(delay * 2, 0.1), BULK_POLL_CAP_SECONDS)


class SalesforceResource(ConfigurableResource):
    """Credentials and HTTP policy of one Salesforce org; ``client()`` gives a ``SalesforceClient``."""

    instance_url: str = ""
    access_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    domain: str = ""
    api_version: str = DEFAULT_API_VERSION
    env_prefix: str = "SALESFORCE"
    timeout_seconds: float = 120.0
    max_attempts: int = 6
    rate_limit_per_second: float | None = None
    bulk_poll_seconds: float = 1.0

    @classmethod
    def from_env_prefix(cls, prefix: str = "SALESFORCE") -> "SalesforceResource":
        """Resource reading ``<PREFIX>_INSTANCE_URL``, ``_ACCESS_TOKEN``, ``_CLIENT_ID``, ``_CLIENT_SECRET``,
        ``_DOMAIN`` and ``_API_VERSION`` at run time. Only the variables set now are bound, so
        definitions load on a machine without them; values never appear in code or metadata."""
        fields = {"instance_url": "INSTANCE_URL", "access_token": "ACCESS_TOKEN", "client_id": "CLIENT_ID",
                  "client_secret": "CLIENT_SECRET", "domain": "DOMAIN", "api_version": "API_VERSION"}
        bound = bound_env_vars(prefix, fields)
        return cls(env_prefix=prefix, **bound)

    def client(self) -> SalesforceClient:
        p = self.env_prefix
        if not self.instance_url:
            raise SalesforceClientError(f"Salesforce instance URL missing: set {p}_INSTANCE_URL")
        if not self.access_token and not (self.client_id and self.client_secret and self.domain):
            raise SalesforceClientError(f"Salesforce credentials missing: set {p}_ACCESS_TOKEN, or {p}_CLIENT_ID, "
                                        f"{p}_CLIENT_SECRET and {p}_DOMAIN")
        return SalesforceClient(self.instance_url, access_token=self.access_token or None,
                                client_id=self.client_id or None, client_secret=self.client_secret or None,
                                domain=self.domain or None, api_version=self.api_version or DEFAULT_API_VERSION,
                                timeout=(5.0, self.timeout_seconds), max_attempts=self.max_attempts,
                                rate_limit_per_second=self.rate_limit_per_second,
                                bulk_poll_seconds=self.bulk_poll_seconds)


# ---- Bulk API 2.0 ingest: request CSV and per-record results -------------------------------------------------
class BulkJobError(SalesforceClientError):
    """A Bulk 2.0 ingest job that could not be run (not ``Open`` when created, or not done in time)."""

    def __init__(self, job_id: str, state: str, message: str):
        super().__init__(f"Bulk job {job_id} {state}: {message}")
        self.job_id, self.state, self.message = job_id, state, message


class BulkIngestResult:
    """How one ingest job ended (``state``, ``error``) and its per-record results (rows of the three
    result CSVs, as dicts by header; empty unless ``JobComplete``)."""

    def __init__(self, job_id: str, state: str, error: str, successful: list[dict], failed: list[dict],
                 unprocessed: list[dict]):
        self.job_id, self.state, self.error = job_id, state, error
        self.successful, self.failed, self.unprocessed = successful, failed, unprocessed


def bulk_cell(value: Any) -> str:
    """A value as a Bulk 2.0 CSV cell: ``None`` -> ``#N/A`` (sets null), booleans lower-case."""
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def bulk_csv(records: list[dict]) -> str:
    """The upload CSV: the union of the records' keys (first-seen order) as header; a key a record
    lacks is an empty cell (Salesforce leaves the field unchanged)."""
    header: list[str] = []
    for record in records:
        header.extend(k for k in record if k not in header)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[bulk_cell(r[k]) if k in r else "" for k in header] for r in records])
    return out.getvalue()
