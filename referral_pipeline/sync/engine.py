"""The sync engine: map → hash → diff against ``ops.sync_state`` → send only what changed → record.

One ``run_sync(con, spec, client, ...)`` call pushes one destination entity (docs/sync.md):

1. **Reconcile** records left ``in_flight`` by a crashed run through the destination's read API
   (``spec.reconcile``); a record the destination already has becomes ``ok`` without a re-send.
2. **Map + diff** (set-based, one query): the spec's SQL maps every record; the engine hashes the
   fields that trigger a re-send (``payload_hash``) and every sendable field (``content_hash``) in
   SQL and joins ``ops.sync_state``: new keys, changed ``ok`` records, ``retry`` records that are
   due, ``failed``/``dead`` records whose content changed and ``in_flight`` records form the delta.
3. **Send** the delta in chunks: payloads are validated with the spec's pydantic model and
   serialised as canonical JSON; the chunk is committed as ``in_flight`` (with its payload and
   idempotency key) **before** any request, then sent by a bounded thread pool (the client's token
   bucket keeps the rate), and the outcomes are committed in one transaction: ``ops.sync_log`` gets
   one row per attempt, ``ops.sync_state`` the new status.

Classification: 2xx → ``ok``; transient (408/423/429/5xx, timeouts, dropped connections), already
retried in-run by the HTTP layer → ``retry`` with ``next_retry_at`` (exponential); other 4xx (after
the HTTP layer's one auth refresh, or the spec's conflict handling) → ``failed``; a payload our
model refuses → ``failed`` without a request; ``attempts`` reaching ``max_attempts`` → ``dead``.
Only the main thread touches DuckDB; worker threads only do HTTP.
"""
from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import orjson
import pyarrow as pa
from pydantic import BaseModel, ValidationError

from ..http.client import ApiError, InDoubtError, TransientError
from ..transform.runtime import create_temp, ident, load_sql, run_sql, transaction
from .ownership import ObjectOwnership

SQL_PACKAGE = "referral_pipeline.sync.sql"
ERROR_CHARS = 2000


@dataclass(frozen=True)
class SendOutcome:
    """What one send produced: ``ok`` / ``retry`` / ``failed`` (``in_doubt`` keeps it ``in_flight``)."""

    outcome: str
    status_code: int | None = None
    error: str | None = None
    remote_id: str | None = None


@dataclass(frozen=True)
class EntitySpec:
    """One destination entity: how to map, validate, send and reconcile its records.

    ``source_sql`` selects ``record_key``, ``subject_key`` (the customer it concerns) and one column
    per payload field; parameters ``$destination``, ``$entity``, ``$markets``. ``enrich_sql``
    (optional) adds columns that are not hashed (e.g. order items) to the delta only: it selects
    from ``sync_delta_base``. ``change_fields``: the fields whose change triggers a re-send (default:
    every ``always`` field). ``send(client, payload)`` returns a ``SendOutcome`` or raises the HTTP
    layer's errors; ``classify(exc)`` may turn an ``ApiError`` into an outcome (e.g. 409 "already
    exists" → ok). ``reconcile(client, payload)`` → ``True`` (the destination has it), ``False``
    (it does not) or ``None`` (cannot tell: re-send by natural key). ``resend_in_doubt=False`` (a
    repeated send would duplicate the effect, e.g. a Friendbuy purchase): an in-flight record is
    re-sent only when ``reconcile`` answers ``False``; one it cannot confirm stays ``in_flight``
    (held, listed in ``ops.failed_payloads``) until the destination shows it or an operator decides."""

    destination: str
    entity: str
    ownership: ObjectOwnership
    source_sql: str
    model: type[BaseModel]
    send: Callable[[Any, dict], SendOutcome] | None = None
    change_fields: tuple[str, ...] | None = None
    enrich_sql: str | None = None
    classify: Callable[[ApiError], SendOutcome | None] | None = None
    reconcile: Callable[[Any, dict], bool | None] | None = None
    send_batch: Callable[[Any, list[dict]], list[SendOutcome]] | None = None
    batch_size: int | Callable[[int], int] = 1
    resend_in_doubt: bool = True

    def batch_size_for(self, delta_rows: int) -> int:
        """Records per request of a batch destination (``batch_size`` may depend on the delta size,
        e.g. Salesforce collections of 200 below the Bulk threshold, one Bulk job above it)."""
        size = self.batch_size(delta_rows) if callable(self.batch_size) else self.batch_size
        return max(1, int(size))


@dataclass
class SyncSettings:
    concurrency: int = 4
    chunk_size: int = 200
    max_attempts: int = 8
    retry_base_seconds: float = 300.0       # next_retry_at = now + base * 2^(attempts-1), capped
    retry_cap_seconds: float = 6 * 3600.0
    retry_failed: bool = False               # nightly: re-send failed records even if unchanged
    limit: int | None = None                 # at most this many records per run (oldest keys first)


@dataclass
class SyncResult:
    destination: str
    entity: str
    source_rows: int = 0
    attempted: int = 0
    sent: int = 0
    unchanged: int = 0
    failed: int = 0
    retry: int = 0
    dead: int = 0
    invalid: int = 0
    reconciled: int = 0
    held: int = 0
    requests: int = 0
    retried: int = 0
    seconds: float = 0.0
    errors: list[dict] = field(default_factory=list)
    ok_subjects: list[str] = field(default_factory=list)

    @property
    def requests_per_second(self) -> float:
        return round(self.requests / self.seconds, 2) if self.seconds > 0 else 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {"attempted": self.attempted, "sent": self.sent, "unchanged": self.unchanged,
                "failed": self.failed, "retry": self.retry, "retried": self.retried, "dead": self.dead,
                "invalid": self.invalid, "reconciled": self.reconciled, "held": self.held, "requests": self.requests,
                "requests_per_second": self.requests_per_second, "seconds": round(self.seconds, 3)}


@dataclass
class DestinationResult:
    """Every entity pushed to one destination instance in a run (plus a read-back, where there is one)."""

    destination: str
    entities: dict[str, SyncResult] = field(default_factory=dict)
    pulled: int = 0
    pull_errors: int = 0

    def totals(self) -> dict[str, Any]:
        keys = ("attempted", "sent", "unchanged", "failed", "retry", "retried", "dead", "invalid", "reconciled",
                "held", "requests")
        out = {k: sum(getattr(r, k) for r in self.entities.values()) for k in keys}
        seconds = sum(r.seconds for r in self.entities.values())
        out["requests_per_second"] = round(out["requests"] / seconds, 2) if seconds else 0.0
        out["pulled"] = self.pulled
        return out


def ensure_sync_schema(con) -> None:
    """Columns the engine adds to ``ops.sync_state`` (contracts §6 columns are kept), and
    ``ops.loyalty_snapshot``. Needs the warehouse schema (``ensure_schema``) first."""
    for statement in load_sql(SQL_PACKAGE, "schema.sql").split(";"):
        if statement.strip():
            con.execute(statement)


def idempotency_key(destination: str, entity: str, record_key: str, payload_hash: str) -> str:
    """Deterministic key of a send: sha256(destination|entity|record_key|payload_hash)."""
    return hashlib.sha256(f"{destination}|{entity}|{record_key}|{payload_hash}".encode()).hexdigest()


def canonical_json(payload: dict) -> str:
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


def _hash_expr(fields: list[str]) -> str:
    if not fields:
        return "md5('')"
    inner = ", ".join(f"{ident(f)} := s.{ident(f)}" for f in fields)
    return f"md5(CAST(to_json(struct_pack({inner})) AS VARCHAR))"


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


def run_sync(con, spec: EntitySpec, client: Any, *, run_id: str, markets: list[str],
             settings: SyncSettings | None = None, now: datetime | None = None,
             after_send: Callable[[str, dict], None] | None = None) -> SyncResult:
    """Push one destination entity. ``after_send(record_key, payload)`` is a test hook called after
    a send returned, before its outcome is recorded (raise from it to simulate a crash).

    Batch destinations (``spec.send_batch``) send ``batch_size`` records per request; a chunk (the unit
    of the in-flight marker and of one outcome transaction) then holds whole batches."""
    settings = settings or SyncSettings()
    started = time.monotonic()
    requests_before = _stat(client, "requests")
    retries_before = _stat(client, "retries")
    result = SyncResult(spec.destination, spec.entity)
    params = {"destination": spec.destination, "entity": spec.entity, "markets": list(markets)}

    _reconcile_in_flight(con, spec, client, run_id, _now(now), result)

    # -- map and diff (set-based) ----------------------------------------------------------------
    always = spec.ownership.by_policy("always")
    change = [f for f in (spec.change_fields or always)]
    sendable = spec.ownership.sendable
    result.source_rows = create_temp(con, "sync_source", spec.source_sql, params)
    columns = {r[0] for r in con.execute("SELECT name FROM pragma_table_info('sync_source')").fetchall()}
    hashed_content = [f for f in sendable if f in columns]
    missing = [f for f in change if f not in columns]
    if missing:
        raise ValueError(f"{spec.destination}.{spec.entity}: mapping lacks change fields {missing}")
    diff_sql = load_sql(SQL_PACKAGE, "diff.sql").replace("/*PAYLOAD_HASH*/", _hash_expr(change)) \
        .replace("/*CONTENT_HASH*/", _hash_expr(hashed_content))
    if settings.limit:
        diff_sql += f"\nORDER BY record_key LIMIT {int(settings.limit)}"
    delta_rows = create_temp(con, "sync_delta_base", diff_sql,
                             {**params, "now": _now(now), "retry_failed": settings.retry_failed,
                              "resend_in_flight": spec.resend_in_doubt})
    if spec.enrich_sql:
        create_temp(con, "sync_delta", spec.enrich_sql, params)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE sync_delta AS SELECT * FROM sync_delta_base")
    result.unchanged = result.source_rows - delta_rows
    result.attempted = delta_rows

    # -- send in chunks --------------------------------------------------------------------------
    batch = spec.batch_size_for(delta_rows) if spec.send_batch else 1
    chunk_size = max(settings.chunk_size // batch, 1) * batch
    offset = 0
    with ThreadPoolExecutor(max_workers=max(1, settings.concurrency)) as pool:
        while offset < delta_rows:
            cursor = con.execute("SELECT * FROM sync_delta ORDER BY record_key LIMIT ? OFFSET ?",
                                 [chunk_size, offset])
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, values)) for values in cursor.fetchall()]
            offset += len(rows)
            _send_chunk(con, spec, client, rows, pool, run_id, _now(now), settings, result, after_send, batch)

    result.requests = _stat(client, "requests") - requests_before
    result.retried = _stat(client, "retries") - retries_before
    result.seconds = time.monotonic() - started
    return result


def _stat(client: Any, name: str) -> int:
    stats = getattr(client, "stats", None)
    return int(getattr(stats, name, 0) or 0)


def _send_chunk(con, spec: EntitySpec, client, rows: list[dict], pool, run_id: str, now: datetime,
                settings: SyncSettings, result: SyncResult, after_send, batch: int = 1) -> None:
    prepared: list[dict] = []
    invalid: dict[str, str] = {}
    for row in rows:
        selected = spec.ownership.select(row, is_new=bool(row["is_new"]))
        try:
            model = spec.model.model_validate(selected)
            payload = model.model_dump(mode="json", exclude_unset=True)
            payload = {k: v for k, v in payload.items() if v is not None or k in spec.ownership.clearable}
        except ValidationError as exc:
            payload = selected
            invalid[row["record_key"]] = f"invalid payload: {exc.errors(include_url=False)}"
        prepared.append({"record_key": row["record_key"], "subject_key": row.get("subject_key"),
                         "payload_hash": row["payload_hash"], "content_hash": row["content_hash"],
                         "payload": canonical_json(payload), "body": payload,
                         "idempotency_key": idempotency_key(spec.destination, spec.entity, row["record_key"],
                                                            row["payload_hash"])})
    # 1. the in-flight marker is committed before any request of the chunk
    flight = pa.Table.from_pylist([{k: p[k] for k in ("record_key", "subject_key", "payload_hash", "content_hash",
                                                       "payload", "idempotency_key")} for p in prepared],
                                  schema=pa.schema([(n, pa.string()) for n in ("record_key", "subject_key",
                                                    "payload_hash", "content_hash", "payload", "idempotency_key")]))
    con.register("sync_flight", flight)
    try:
        with transaction(con):
            run_sql(con, load_sql(SQL_PACKAGE, "mark_in_flight.sql"),
                    {"destination": spec.destination, "entity": spec.entity, "now": now, "run_id": run_id})
    finally:
        con.unregister("sync_flight")

    # 2. send (worker threads do HTTP only)
    def work(p: dict) -> dict:
        t0 = time.monotonic()
        outcome = _send_one(spec, client, p["body"])
        latency = (time.monotonic() - t0) * 1000.0
        if after_send is not None and outcome.outcome == "ok":
            after_send(p["record_key"], p["body"])
        return {"record_key": p["record_key"], "outcome": outcome.outcome, "status_code": outcome.status_code,
                "error": (outcome.error or None) and outcome.error[:ERROR_CHARS], "latency_ms": latency,
                "remote_id": outcome.remote_id, "log_outcome": None}

    def work_batch(group: list[dict]) -> list[dict]:
        t0 = time.monotonic()
        sent = _send_batch(spec, client, [p["body"] for p in group])
        latency = (time.monotonic() - t0) * 1000.0 / max(len(group), 1)
        out = []
        for p, outcome in zip(group, sent):
            if after_send is not None and outcome.outcome == "ok":
                after_send(p["record_key"], p["body"])
            out.append({"record_key": p["record_key"], "outcome": outcome.outcome, "status_code": outcome.status_code,
                        "error": (outcome.error or None) and outcome.error[:ERROR_CHARS], "latency_ms": latency,
                        "remote_id": outcome.remote_id, "log_outcome": None})
        return out

    futures = []
    outcomes: list[dict] = []
    valid = []
    for p in prepared:
        if p["record_key"] in invalid:
            outcomes.append({"record_key": p["record_key"], "outcome": "failed", "status_code": None,
                             "error": invalid[p["record_key"]][:ERROR_CHARS], "latency_ms": 0.0, "remote_id": None,
                             "log_outcome": "invalid"})
            result.invalid += 1
        else:
            valid.append(p)
    if spec.send_batch is not None:
        futures = [pool.submit(work_batch, valid[i:i + batch]) for i in range(0, len(valid), batch)]
        for f in futures:  # an exception here (crash) leaves the chunk in flight
            outcomes.extend(f.result())
    else:
        futures = [pool.submit(work, p) for p in valid]
        outcomes.extend(f.result() for f in futures)  # an exception here (crash) leaves the chunk in flight
    _record_outcomes(con, spec, outcomes, run_id, now, settings, result)
    subjects = {p["record_key"]: p["subject_key"] for p in prepared}
    result.ok_subjects.extend(subjects[o["record_key"]] for o in outcomes
                              if o["outcome"] == "ok" and subjects.get(o["record_key"]))


def _send_one(spec: EntitySpec, client, body: dict) -> SendOutcome:
    try:
        return spec.send(client, body)
    except Exception as exc:  # noqa: BLE001 - classified below
        return classify_exception(spec, exc)


def classify_exception(spec: EntitySpec, exc: Exception) -> SendOutcome:
    """What a failed request means for its record(s): in doubt, retry later, or failed."""
    if isinstance(exc, InDoubtError):
        return SendOutcome("in_doubt", exc.status, str(exc))
    if isinstance(exc, TransientError):
        return SendOutcome("retry", exc.status, exc.body or str(exc))
    if isinstance(exc, ApiError):
        if spec.classify is not None:
            decided = spec.classify(exc)
            if decided is not None:
                return decided
        return SendOutcome("failed", exc.status, exc.body or str(exc))
    # anything else (transport bugs, bad JSON) is retried later
    return SendOutcome("retry", None, f"{type(exc).__name__}: {exc}")


def _send_batch(spec: EntitySpec, client, bodies: list[dict]) -> list[SendOutcome]:
    """One batch request: per-record outcomes from the destination (e.g. a Salesforce collection's
    per-record errors), or the request's own failure applied to every record of the batch."""
    try:
        outcomes = list(spec.send_batch(client, bodies))
    except Exception as exc:  # noqa: BLE001 - classified like a single send
        return [classify_exception(spec, exc)] * len(bodies)
    if len(outcomes) != len(bodies):
        raise ValueError(f"{spec.destination}.{spec.entity}: send_batch returned {len(outcomes)} outcomes "
                         f"for {len(bodies)} records")
    return outcomes


OUTCOME_SCHEMA = pa.schema([("record_key", pa.string()), ("outcome", pa.string()), ("status_code", pa.int32()),
                            ("error", pa.string()), ("latency_ms", pa.float64()), ("remote_id", pa.string()),
                            ("log_outcome", pa.string())])


def _record_outcomes(con, spec: EntitySpec, outcomes: list[dict], run_id: str, now: datetime,
                     settings: SyncSettings, result: SyncResult) -> None:
    if not outcomes:
        return
    table = pa.Table.from_pylist(outcomes, schema=OUTCOME_SCHEMA)
    con.register("sync_outcomes", table)
    try:
        with transaction(con):
            run_sql(con, load_sql(SQL_PACKAGE, "record_outcomes.sql"),
                    {"destination": spec.destination, "entity": spec.entity, "now": now, "run_id": run_id,
                     "max_attempts": settings.max_attempts, "retry_base": settings.retry_base_seconds,
                     "retry_cap": settings.retry_cap_seconds})
            run_sql(con, load_sql(SQL_PACKAGE, "log_outcomes.sql"),
                    {"destination": spec.destination, "entity": spec.entity, "now": now, "run_id": run_id})
            counts = con.execute("""
                SELECT st.status, count(*) FROM sync_outcomes o JOIN ops.sync_state st
                  ON st.destination = ? AND st.entity = ? AND st.record_key = o.record_key GROUP BY ALL""",
                                 [spec.destination, spec.entity]).fetchall()
    finally:
        con.unregister("sync_outcomes")
    by = dict(counts)
    result.sent += by.get("ok", 0)
    result.failed += by.get("failed", 0)
    result.retry += by.get("retry", 0) + by.get("in_flight", 0)
    result.dead += by.get("dead", 0)
    for o in outcomes:
        if o["outcome"] != "ok" and len(result.errors) < 10:
            result.errors.append({"record_key": o["record_key"], "status_code": o["status_code"],
                                  "error": (o["error"] or "")[:300]})


def _reconcile_in_flight(con, spec: EntitySpec, client, run_id: str, now: datetime, result: SyncResult) -> None:
    """Records a crashed run left ``in_flight``: ask the destination (where it can tell) whether the
    send took effect; those it has become ``ok`` (logged as ``reconciled``), the rest stay
    ``in_flight`` and are re-sent by natural key in this run."""
    if spec.reconcile is None:
        return
    rows = con.execute("""SELECT record_key, payload FROM ops.sync_state
                          WHERE destination = ? AND entity = ? AND status = 'in_flight' ORDER BY record_key""",
                       [spec.destination, spec.entity]).fetchall()
    outcomes, absent, held = [], [], []
    for record_key, payload in rows:
        try:
            applied = spec.reconcile(client, orjson.loads(payload or "{}"))
        except Exception:  # noqa: BLE001 - cannot tell: re-send by natural key
            applied = None
        if applied:
            outcomes.append({"record_key": record_key, "outcome": "ok", "status_code": 200, "error": None,
                             "latency_ms": 0.0, "remote_id": None, "log_outcome": "reconciled"})
        elif not spec.resend_in_doubt:
            (absent if applied is False else held).append(record_key)
    if outcomes:
        _record_outcomes(con, spec, outcomes, run_id, now, SyncSettings(), result)
        result.sent -= len(outcomes)
        result.reconciled += len(outcomes)
    if absent or held:
        _settle_in_doubt(con, spec, absent, held, now)
        result.held += len(held)


def _settle_in_doubt(con, spec: EntitySpec, absent: list[str], held: list[str], now: datetime) -> None:
    """``resend_in_doubt=False``: records the destination provably lacks become due retries (sent in
    this run); the ones nobody can confirm stay ``in_flight`` with the reason in ``last_error``."""
    with transaction(con):
        for keys, status, error in (
                (absent, "retry", "in doubt: the destination does not have it; re-sent"),
                (held, "in_flight", "in doubt: the send may have taken effect and a repeat would duplicate "
                                    "it; held (not re-sent) until the destination shows it or an operator "
                                    "decides (docs/sync.md)")):
            if keys:
                con.execute("""UPDATE ops.sync_state SET status = ?, next_retry_at = NULL, last_error = ?,
                                                         updated_at = ?
                               WHERE destination = ? AND entity = ? AND list_contains(?, record_key)""",
                            [status, error, now, spec.destination, spec.entity, keys])
