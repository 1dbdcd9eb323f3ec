"""Base class of the five simulators: state, persistence, admin routes, faults and request log.

A subclass declares its collections (``specs``), its API routes (``api_routes``), how its API
shapes errors and 429s, its rate limit, and the environment variables that point the pipeline at
it. This base wraps the routes in one ASGI layer that counts requests by method and path
template, logs them, injects faults deterministically, applies the rate limit, and serves the
admin routes of contracts §3 under ``/_sandbox/``.

Endpoints must be ``async def``: the whole simulator then runs on one event loop, so a handler
that does not ``await`` between reading and writing the store is atomic.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import os
import time
from collections import Counter, deque
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from . import stamps
from .config import FaultSpec, SystemConfig
from .faults import FaultInjector
from .jsonio import dumps, loads
from .fixtures import read_system_fixtures
from .store import Collection, CollectionSpec

log = logging.getLogger("referral_pipeline.sandbox")


def json_response(data: Any, status: int = 200, headers: dict | None = None,
                  media_type: str = "application/json") -> Response:
    """A JSON response (orjson; standard-library fallback for text orjson refuses)."""
    return Response(dumps(data), status_code=status,
                    headers=headers, media_type=media_type)


class Simulator:
    """One simulated external system. Subclasses set the class attributes and hooks below."""

    name: ClassVar[str] = ""
    specs: ClassVar[dict[str, CollectionSpec]] = {}
    default_credentials: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: SystemConfig | None = None, data_root: Path | None = None,
                 state_dir: Path | None = None, source_id: str | None = None):
        self.config = config or SystemConfig()
        self.credentials = {**self.default_credentials, **self.config.credentials}
        self.data_root = Path(data_root) if data_root else None
        self.state_dir = Path(state_dir) if state_dir else None
        self.source_id = source_id or (str(self.data_root) if self.data_root else "empty")
        self.collections: dict[str, Collection] = {n: Collection(s) for n, s in self.specs.items()}
        self.faults = FaultInjector(self.config.faults)
        self.request_counts: Counter = Counter()
        self.request_log: deque = deque(maxlen=int(os.environ.get("SANDBOX_REQUEST_LOG_MAX", "200000")))
        self.meta: dict[str, Any] = {}
        self.base_url = ""
        self._routes_cache: list[BaseRoute] | None = None
        self.setup()

    # ---- hooks for subclasses --------------------------------------------------------------
    def setup(self) -> None:
        """Initialise simulator-specific members (rate limiters, job tables). Called again on reset."""

    def api_routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def error_response(self, status: int, code: str, message: str) -> Response:
        """An error in the API's own envelope."""
        return json_response({"error": code, "message": message}, status)

    def throttled_response(self, retry_after: float) -> Response:
        """The API's own 429 (with its rate-limit headers)."""
        return json_response({"error": "rate_limited"}, 429, {"Retry-After": str(max(1, round(retry_after)))})

    def check_rate_limit(self, request: Request) -> Response | None:
        """Return a 429 response when the configured limit is exceeded (else None)."""
        return None

    def response_headers(self, request: Request) -> dict[str, str]:
        """Headers added to every API response (rate-limit and usage headers)."""
        return {}

    def prepare_loaded(self, data: dict[str, list[dict]]) -> dict[str, list[dict]]:
        """Adjust fixture records after reading (e.g. split embedded sub-resources)."""
        return data

    def admin_upsert(self, collection: str, record: dict) -> dict:
        """``POST /_sandbox/records``: create or merge a record as a user of the system would,
        moving its modification stamp (and version)."""
        coll = self.collections[collection]
        spec = coll.spec
        key = record.get(spec.key)
        if key in (None, ""):
            raise ValueError(f"record without primary key {spec.key!r}")
        old = coll.get(key)
        now = self.now()
        merged = {**copy.deepcopy(old), **record} if old else dict(record)
        if spec.stamp:
            merged[spec.stamp] = spec.stamp_format(now)
        if spec.created and not merged.get(spec.created):
            merged[spec.created] = spec.stamp_format(now)
        if spec.version:
            merged[spec.version] = int((old or {}).get(spec.version) or 0) + 1 if old else int(merged.get(spec.version) or 1)
        return coll.put(merged)

    def extra_state(self) -> dict[str, Any]:
        """Simulator state beyond the collections, included in ``/_sandbox/state`` and persisted."""
        return {}

    def restore_extra_state(self, state: dict[str, Any]) -> None:
        """Inverse of ``extra_state`` when reloading from ``--state-dir``."""

    def env_vars(self, base_url: str) -> dict[str, str]:
        """Environment variables (contracts §2) that point the pipeline at this simulator."""
        return {}

    # ---- clock ----------------------------------------------------------------------------
    def now(self) -> datetime:
        return stamps.utcnow()

    # ---- data lifecycle --------------------------------------------------------------------
    def load_records(self, data: dict[str, list[dict]]) -> None:
        data = self.prepare_loaded(data)
        for name, coll in self.collections.items():
            coll.replace_all(data.get(name, []))

    def load_from_source(self) -> None:
        data = read_system_fixtures(self.data_root, self.name, self.specs, self.now()) if self.data_root else {}
        self.meta = {}
        self.request_counts.clear()
        self.request_log.clear()
        self.setup()
        self.load_records(data)

    def start(self) -> None:
        """Load persisted state when it belongs to the same data source, else the source data."""
        path = self.state_path()
        if path and path.exists():
            try:
                state = loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("%s: ignoring unreadable state file %s (%s)", self.name, path, exc)
            else:
                if state.get("_meta", {}).get("source_id") == self.source_id:
                    self.restore_state(state)
                    return
                log.warning("%s: state in %s is for another data source; loading %s", self.name, path, self.source_id)
        self.load_from_source()

    def reset(self) -> None:
        self.load_from_source()

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: list(coll.values()) for name, coll in self.collections.items()}
        out.update(self.extra_state())
        out["request_counts"] = dict(sorted(self.request_counts.items()))
        return out

    def restore_state(self, state: dict[str, Any]) -> None:
        self.setup()
        self.meta = dict(state.get("_meta", {}).get("sim", {}))
        for name, coll in self.collections.items():
            coll.replace_all(state.get(name, []))
        self.request_counts = Counter(state.get("request_counts", {}))
        self.restore_extra_state(state)

    def state_path(self) -> Path | None:
        return self.state_dir / f"{self.name}.json" if self.state_dir else None

    def save_state(self) -> Path | None:
        path = self.state_path()
        if path is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        body = self.state()
        body["_meta"] = {"source_id": self.source_id, "saved_at": stamps.fmt_iso_millis_z(self.now()), "sim": self.meta}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_bytes(dumps(body))
        os.replace(tmp, path)
        return path

    def next_id(self, counter: str, start: int = 1) -> int:
        """A monotonically increasing integer id, persisted with the state."""
        value = int(self.meta.get(counter, start - 1)) + 1
        self.meta[counter] = value
        return value

    # ---- request accounting ------------------------------------------------------------------
    def route_template(self, scope) -> str:
        route = scope.get("route")
        if route is not None and hasattr(route, "path"):
            return route.path
        for route in self._routes():
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", scope["path"])
        return scope["path"]

    def record_request(self, method: str, template: str, path: str, status: int, started: float,
                       fault: str | None) -> None:
        self.request_counts[f"{method} {template}"] += 1
        self.request_log.append({"method": method, "path": path, "template": template, "status": status,
                                 "time": stamps.fmt_iso_millis_z(datetime.fromtimestamp(started, stamps.UTC)),
                                 "duration_ms": round((time.time() - started) * 1000, 2), "fault": fault})

    # ---- app -----------------------------------------------------------------------------------
    def _routes(self) -> list[BaseRoute]:
        if self._routes_cache is None:
            self._routes_cache = list(self.api_routes())
        return self._routes_cache

    def admin_routes(self) -> list[BaseRoute]:
        return [
            Route("/_sandbox/state", self._admin_state, methods=["GET"]),
            Route("/_sandbox/requests", self._admin_requests, methods=["GET"]),
            Route("/_sandbox/records", self._admin_records, methods=["POST"]),
            Route("/_sandbox/faults", self._admin_faults, methods=["GET", "POST"]),
            Route("/_sandbox/reset", self._admin_reset, methods=["POST"]),
            Route("/_sandbox/save", self._admin_save, methods=["POST"]),
        ]

    async def _admin_state(self, request: Request) -> Response:
        return json_response(self.state())

    async def _admin_requests(self, request: Request) -> Response:
        entries = list(self.request_log)
        since = request.query_params.get("since")
        if since:
            entries = [e for e in entries if e["time"] >= since]
        return json_response({"requests": entries, "request_counts": dict(sorted(self.request_counts.items()))})

    async def _admin_records(self, request: Request) -> Response:
        try:
            body = loads(await request.body())
            collection = body["collection"]
            records = body["records"]
        except (ValueError, KeyError, TypeError):
            return json_response({"error": 'expected {"collection": "...", "records": [...]}'}, 400)
        if collection not in self.collections:
            return json_response({"error": f"unknown collection {collection!r}",
                                  "collections": sorted(self.collections)}, 404)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return json_response({"error": "records must be a list of objects"}, 400)
        try:
            stored = [self.admin_upsert(collection, r) for r in records]
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": str(exc)}, 422)
        return json_response({"collection": collection, "records": stored})

    async def _admin_faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                body = loads(await request.body() or b"{}")
                faults = body.get("faults", body) if isinstance(body, dict) else None
                merged = {**self.faults.spec.model_dump(), **{k: v for k, v in faults.items()
                                                              if k not in ("rate_limit", "options")}}
                spec = FaultSpec.model_validate(merged)
            except Exception as exc:  # pydantic ValidationError, bad JSON, wrong type
                return json_response({"error": f"invalid fault spec: {exc}"}, 400)
            updates = {}
            for part in ("rate_limit", "options"):
                if isinstance(body.get(part), dict):
                    updates[part] = {**getattr(self.config, part), **body[part]}
            previous = self.config
            self.config = self.config.model_copy(update={"faults": spec, **updates})
            if updates:
                try:
                    self.apply_config()
                except (ValueError, TypeError, KeyError) as exc:
                    self.config = previous
                    return json_response({"error": f"invalid rate_limit/options: {exc}"}, 400)
            self.faults.configure(spec)
        return json_response({"faults": self.faults.spec.model_dump(), "rate_limit": self.config.rate_limit,
                              "options": self.config.options, "injected": self.faults.injected})

    def apply_config(self) -> None:
        """Re-read ``self.config.rate_limit`` / ``options`` after a run-time change."""

    async def _admin_reset(self, request: Request) -> Response:
        self.reset()
        return json_response({"reset": True, "counts": {n: len(c) for n, c in self.collections.items()}})

    async def _admin_save(self, request: Request) -> Response:
        path = self.save_state()
        return json_response({"saved": str(path) if path else None})

    def app(self) -> "SimulatorApp":
        @asynccontextmanager
        async def lifespan(_app):
            yield
            try:
                self.save_state()
            except Exception:  # never lose the shutdown because of a bad disk
                log.exception("%s: saving state failed", self.name)

        starlette = Starlette(routes=self.admin_routes() + self._routes(), lifespan=lifespan)
        return SimulatorApp(self, starlette)


class SimulatorApp:
    """ASGI layer: counts and logs requests, injects faults, applies the rate limit."""

    def __init__(self, sim: Simulator, app: Starlette):
        self.sim, self.app = sim, app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox/"):
            return await self.app(scope, receive, send)
        sim = self.sim
        started = time.time()
        method = scope["method"]
        fault = sim.faults.draw()
        status_box = {"status": 0}

        if fault == "drop":
            await _drain(receive)
            _drop_connection(send)
            sim.record_request(method, sim.route_template(scope), scope["path"], 0, started, fault)
            return
        request = Request(scope, receive)
        early: Response | None = None
        if fault == "429":
            early = sim.throttled_response(sim.faults.spec.retry_after_seconds)
        elif fault in ("500", "502", "503"):
            early = sim.error_response(int(fault), _FAULT_CODES[fault], _FAULT_MESSAGES[fault])
        else:
            early = sim.check_rate_limit(request)
        if early is not None:
            await _drain(receive)
            await early(scope, receive, send)
            sim.record_request(method, sim.route_template(scope), scope["path"], early.status_code, started, fault)
            return

        extra = [(k.lower().encode(), str(v).encode()) for k, v in sim.response_headers(request).items()]
        buffered: list = []

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
                if extra:
                    names = {h[0] for h in extra}
                    message = {**message, "headers": [h for h in message.get("headers", []) if h[0] not in names] + extra}
            if fault in ("slow", "truncate"):
                buffered.append(message)
                return
            await send(message)

        await self.app(scope, receive, send_wrapper)
        if fault == "slow":
            await asyncio.sleep(sim.faults.spec.slow_seconds)
            for message in buffered:
                await send(message)
        elif fault == "truncate":
            await _send_truncated(buffered, send)
        sim.record_request(method, sim.route_template(scope), scope["path"], status_box["status"], started, fault)


_FAULT_CODES = {"500": "INTERNAL_SERVER_ERROR", "502": "BAD_GATEWAY", "503": "SERVICE_UNAVAILABLE"}
_FAULT_MESSAGES = {"500": "Internal Server Error (injected by the sandbox)",
                   "502": "Bad Gateway (injected by the sandbox)",
                   "503": "Service Unavailable (injected by the sandbox)"}


async def _drain(receive) -> None:
    """Read the request body so the connection is in a clean state before we answer."""
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        more = message.get("more_body", False)


def _drop_connection(send) -> None:
    """Close the TCP connection without writing a response (uvicorn exposes its transport on the
    bound ``send`` of the request cycle)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox: injected dropped connection")
    transport.abort() if hasattr(transport, "abort") else transport.close()
    if hasattr(cycle, "disconnected"):
        cycle.disconnected = True


async def _send_truncated(messages: list, send) -> None:
    """Send the headers and half of the body, then cut the connection."""
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    start = next(m for m in messages if m["type"] == "http.response.start")
    headers = [h for h in start.get("headers", []) if h[0] != b"content-length"]
    headers.append((b"content-length", str(max(len(body), 2)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    _drop_connection(send)
