"""REST resources under ``/services/data/vXX.X/``: versions, limits, describe, query / queryAll /
query locators, single-record sObject access (get, create, update, delete, upsert by External
ID) and getUpdated / getDeleted.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..core import stamps
from ..core.simulator import json_response
from .query import batch_size, page, render_records, select_rows
from .responses import SUPPORTED_VERSIONS, SalesforceError, api_version, not_found, read_json
from .schema import FieldDef, ObjectDef, FieldValueError, normalize_id
from .soql import BoundQuery, SoqlError, compile_query
from .writes import FieldNameError, WriteError, resolve_fields

if TYPE_CHECKING:
    from .simulator import SalesforceSimulator

_RELEASES = {62: "Winter '25", 63: "Spring '25", 64: "Summer '25"}


def resolve_body(obj: ObjectDef, body: Any) -> dict[str, Any]:
    """Canonical field names and stored values of a JSON record, or the request's 400."""
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of SObject from START_ARRAY")
    try:
        return resolve_fields(obj, body)
    except FieldNameError as err:
        raise SalesforceError(400, "INVALID_FIELD", str(err)) from None
    except FieldValueError as err:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"{err} at [line:1, column:1]") from None


def render_record(obj: ObjectDef, rec: dict, version: str, only: list[FieldDef] | None = None) -> dict:
    """A record as ``GET sobjects/{Obj}/{id}`` returns it: every field (or ``?fields=``)."""
    return render_records([rec], obj.name, only or obj.field_list(), version)[0]


def _parse_time(value: str | None, name: str) -> datetime:
    if not value:
        raise SalesforceError(400, "MISSING_ARGUMENT", f"{name} parameter is required")
    try:
        return stamps.parse_any(value)
    except (ValueError, OverflowError):
        raise SalesforceError(400, "INVALID_REPLICATION_DATE", f"{name} is not a valid dateTime: {value}") from None


class RestApi:
    """Handlers of the REST resources (bound to one simulator)."""

    def __init__(self, sim: "SalesforceSimulator"):
        self.sim = sim

    # ---- helpers ---------------------------------------------------------------------------------
    def sobject(self, request: Request) -> ObjectDef:
        obj = self.sim.schema.object(request.path_params["sobject"])
        if obj is None:
            raise not_found()
        return obj

    def compile(self, soql: str) -> BoundQuery:
        try:
            return compile_query(soql, self.sim.schema, self.sim.now())
        except SoqlError as err:
            raise SalesforceError(400, err.code, err.message) from None

    def live_record(self, obj: ObjectDef, raw_id: str) -> dict:
        rid = normalize_id(raw_id)
        if rid is None:
            raise not_found(f"Provided external ID field does not exist or is not accessible: {raw_id}")
        rec = self.sim.repo.get(obj.name, rid) if rid.startswith(obj.key_prefix) else None
        if rec is None:
            raise not_found()
        if rec.get("IsDeleted") is True:
            raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return rec

    def external_field(self, obj: ObjectDef, name: str) -> FieldDef:
        fdef = obj.field(name)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise not_found(f"Provided external ID field does not exist or is not accessible: {name}")
        return fdef

    def selected_fields(self, obj: ObjectDef, request: Request) -> list[FieldDef] | None:
        raw = request.query_params.get("fields")
        if not raw:
            return None
        fields = []
        for name in filter(None, (n.strip() for n in raw.split(","))):
            fdef = obj.field(name)
            if fdef is None:
                raise SalesforceError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
            fields.append(fdef)
        return fields

    # ---- discovery -----------------------------------------------------------------------------------
    async def versions(self, request: Request) -> Response:
        return json_response([{"label": _RELEASES.get(int(float(v)), f"API {v}"), "url": f"/services/data/v{v}",
                               "version": v} for v in SUPPORTED_VERSIONS])

    async def resources(self, request: Request) -> Response:
        base = f"/services/data/v{api_version(request)}"
        names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
        return json_response({name: f"{base}/{name}" for name in names})

    async def limits(self, request: Request) -> Response:
        usage = self.sim.usage
        return json_response({
            "DailyApiRequests": {"Max": usage.max_requests, "Remaining": max(0, usage.max_requests - usage.used)},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - min(10000, self.sim.bulk.query_jobs_created)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
            "FileStorageMB": {"Max": 20, "Remaining": 20}})

    async def describe_global(self, request: Request) -> Response:
        version = api_version(request)
        objects = []
        for obj in self.sim.schema.objects.values():
            info = obj.describe(version)
            info.pop("fields")
            objects.append(info)
        return json_response({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})

    async def describe(self, request: Request) -> Response:
        return json_response(self.sobject(request).describe(api_version(request)))

    async def sobject_info(self, request: Request) -> Response:
        info = self.sobject(request).describe(api_version(request))
        info.pop("fields")
        return json_response({"objectDescribe": info, "recentItems": []})

    # ---- query ---------------------------------------------------------------------------------------------
    async def query(self, request: Request) -> Response:
        return self._query(request, include_deleted=False)

    async def query_all(self, request: Request) -> Response:
        return self._query(request, include_deleted=True)

    def _query(self, request: Request, include_deleted: bool) -> Response:
        soql = request.query_params.get("q")
        if soql is None:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        size = batch_size(request.headers.get("sforce-query-options"))
        bound = self.compile(soql)
        rows = select_rows(self.sim.collections[bound.obj.name], bound, include_deleted)
        if bound.count_only:
            return json_response({"totalSize": len(rows), "done": True, "records": []})
        first, next_offset = page(rows, 0, size)
        body: dict[str, Any] = {"totalSize": len(rows), "done": next_offset is None}
        version = api_version(request)
        if next_offset is not None:
            session = request.scope.get("sf.session")
            cursor = self.sim.cursors.open(session.owner if session else "", bound.obj.name, bound.fields, rows,
                                           self.sim.now(), size)
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor.id}-{next_offset}"
        body["records"] = render_records(first, bound.obj.name, bound.fields, version)
        return json_response(body)

    async def query_more(self, request: Request) -> Response:
        locator = request.path_params["locator"]
        cursor_id, _, raw_offset = locator.rpartition("-")
        cursor = self.sim.cursors.get(cursor_id, self.sim.now()) if raw_offset.isdigit() else None
        if cursor is None or int(raw_offset) > len(cursor.rows):
            raise SalesforceError(404, "INVALID_QUERY_LOCATOR", "invalid query locator")
        size = batch_size(request.headers.get("sforce-query-options"), cursor.batch_size)
        rows, next_offset = page(cursor.rows, int(raw_offset), size)
        version = api_version(request)
        body: dict[str, Any] = {"totalSize": len(cursor.rows), "done": next_offset is None}
        if next_offset is not None:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor.id}-{next_offset}"
        body["records"] = render_records(rows, cursor.type_name, cursor.fields, version)
        return json_response(body)

    # ---- single records -----------------------------------------------------------------------------------
    async def get_record(self, request: Request) -> Response:
        obj = self.sobject(request)
        rec = self.live_record(obj, request.path_params["record_id"])
        return json_response(render_record(obj, rec, api_version(request), self.selected_fields(obj, request)))

    async def create_record(self, request: Request) -> Response:
        obj = self.sobject(request)
        values = resolve_body(obj, await read_json(request))
        tx = self.sim.transaction()
        try:
            rid = tx.insert(obj, values)
        except WriteError as err:
            raise SalesforceError(400, err.status_code, err.message, err.fields) from None
        return json_response({"id": rid, "success": True, "errors": []}, 201)

    async def update_record(self, request: Request) -> Response:
        body = await read_json(request)
        obj = self.sobject(request)
        rec = self.live_record(obj, request.path_params["record_id"])
        values = resolve_body(obj, body)
        try:
            self.sim.transaction().update(obj, rec["Id"], values)
        except WriteError as err:
            raise SalesforceError(400, err.status_code, err.message, err.fields) from None
        return Response(status_code=204)

    async def delete_record(self, request: Request) -> Response:
        obj = self.sobject(request)
        rec = self.live_record(obj, request.path_params["record_id"])
        self.sim.transaction().delete(obj, rec["Id"])
        return Response(status_code=204)

    # ---- by External ID -------------------------------------------------------------------------------------
    def _matches(self, obj: ObjectDef, request: Request) -> tuple[FieldDef, str, list[dict]]:
        fdef = self.external_field(obj, request.path_params["field"])
        value = request.path_params["value"]
        if fdef.name == "Id":
            rid = normalize_id(value)
            rec = self.sim.repo.get(obj.name, rid) if rid else None
            return fdef, value, [rec] if rec is not None and rec.get("IsDeleted") is not True else []
        return fdef, value, self.sim.repo.find(obj.name, fdef.name, value)

    def _several(self, obj: ObjectDef, matches: list[dict], version: str) -> Response:
        return json_response([f"/services/data/v{version}/sobjects/{obj.name}/{r['Id']}" for r in matches], 300)

    async def get_by_external_id(self, request: Request) -> Response:
        obj = self.sobject(request)
        _, _, matches = self._matches(obj, request)
        if not matches:
            raise not_found()
        if len(matches) > 1:
            return self._several(obj, matches, api_version(request))
        return json_response(render_record(obj, matches[0], api_version(request), self.selected_fields(obj, request)))

    async def delete_by_external_id(self, request: Request) -> Response:
        obj = self.sobject(request)
        _, _, matches = self._matches(obj, request)
        if not matches:
            raise not_found()
        if len(matches) > 1:
            return self._several(obj, matches, api_version(request))
        self.sim.transaction().delete(obj, matches[0]["Id"])
        return Response(status_code=204)

    async def upsert(self, request: Request) -> Response:
        body = await read_json(request)
        obj = self.sobject(request)
        fdef, value, matches = self._matches(obj, request)
        values = resolve_body(obj, body)
        version = api_version(request)
        if request.query_params.get("updateOnly", "").lower() == "true" and not matches:
            raise not_found()
        try:
            rid, created = self.sim.transaction().upsert(obj, fdef, value, values)
        except WriteError as err:
            if err.http_status == 300:
                return self._several(obj, matches, version)
            raise SalesforceError(err.http_status, err.status_code, err.message, err.fields) from None
        if created:
            return json_response({"id": rid, "success": True, "errors": [], "created": True}, 201)
        if float(version) < 46:
            return Response(status_code=204)
        return json_response({"id": rid, "success": True, "errors": [], "created": False}, 200)

    # ---- replication -----------------------------------------------------------------------------------------
    def _window(self, request: Request, max_days: int) -> tuple[datetime, datetime, datetime]:
        start = _parse_time(request.query_params.get("start"), "start")
        end = _parse_time(request.query_params.get("end"), "end")
        now = self.sim.now()
        if end <= start:
            raise SalesforceError(400, "INVALID_REPLICATION_DATE", "EndDate must chronologically follow the StartDate")
        if start < now - timedelta(days=max_days):
            raise SalesforceError(400, "INVALID_REPLICATION_DATE",
                                  f"startDate cannot be more than {max_days} days ago")
        covered = min(end, now).replace(second=0, microsecond=0)
        return start, end, covered

    def _changed(self, obj: ObjectDef, start: datetime, end: datetime, deleted: bool) -> list[dict]:
        coll = self.sim.collections[obj.name]
        lo, hi = stamps.to_micros(start), stamps.to_micros(end)
        out = []
        for rec in coll.iter_by_stamp(lo, inclusive=True):
            if coll.stamp_micros(rec) >= hi:
                break
            if (rec.get("IsDeleted") is True) == deleted:
                out.append(rec)
        return out

    async def updated(self, request: Request) -> Response:
        obj = self.sobject(request)
        start, end, covered = self._window(request, 30)
        ids = [r["Id"] for r in self._changed(obj, start, end, deleted=False)]
        if len(ids) > 600_000:
            raise SalesforceError(400, "EXCEEDED_ID_LIMIT", "too many ids; narrow the time window")
        return json_response({"ids": ids, "latestDateCovered": stamps.fmt_salesforce(covered)})

    async def deleted(self, request: Request) -> Response:
        obj = self.sobject(request)
        start, end, covered = self._window(request, 15)
        rows = self._changed(obj, start, end, deleted=True)
        earliest = self.sim.now() - timedelta(days=15)
        return json_response({"deletedRecords": [{"id": r["Id"], "deletedDate": r.get("SystemModstamp")} for r in rows],
                              "earliestDateAvailable": stamps.fmt_salesforce(earliest.replace(second=0, microsecond=0)),
                              "latestDateCovered": stamps.fmt_salesforce(covered)})
