"""sObject Collections: ``composite/sobjects`` create (POST), update (PATCH), delete (DELETE),
retrieve (GET ``composite/sobjects/{Obj}?ids=``) and upsert by External ID (PATCH
``composite/sobjects/{Obj}/{ExtField}``).

At most 200 records per request (else 400 ``EXCEEDED_ID_LIMIT``). A request that cannot be
read (bad JSON, unknown sObject type or field, a value of the wrong JSON type) is refused as a
whole with 400; otherwise the answer is 200 with one result per record, in request order,
errors carrying ``statusCode``. With ``allOrNone`` any failure rolls every write back and the
other records report ``ALL_OR_NONE_OPERATION_ROLLED_BACK``.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Callable

from starlette.requests import Request
from starlette.responses import Response

from ..core.simulator import json_response
from .responses import SalesforceError, api_version, not_found, read_json, require_version
from .rest import render_record, resolve_body
from .schema import ObjectDef, normalize_id
from .writes import Transaction, WriteError

if TYPE_CHECKING:
    from .simulator import SalesforceSimulator

MAX_RECORDS = 200
ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
               "message": "Record rolled back because not all records were valid and the request was using "
                          "AllOrNone header", "fields": []}


def _too_many() -> SalesforceError:
    return SalesforceError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records "
                                                     "into this call")


class Operation:
    """One record of a collections request: what to run and how to report it."""

    def __init__(self, run: Callable[[Transaction], tuple[str | None, bool | None]], record_id: str | None = None,
                 error: WriteError | None = None, with_created: bool = False):
        self.run, self.record_id, self.error, self.with_created = run, record_id, error, with_created


class CollectionsApi:
    """Handlers of ``composite/sobjects``."""

    def __init__(self, sim: "SalesforceSimulator"):
        self.sim = sim

    # ---- request parsing ------------------------------------------------------------------------------
    async def _body(self, request: Request) -> tuple[bool, list]:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body must be an object with a 'records' array")
        records = body["records"]
        if len(records) > MAX_RECORDS:
            raise _too_many()
        if not all(isinstance(r, dict) for r in records):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of SObject from a non-object")
        return bool(body.get("allOrNone", False)), records

    def _type_of(self, record: dict) -> ObjectDef:
        attrs = record.get("attributes")
        type_name = attrs.get("type") if isinstance(attrs, dict) else None
        if not type_name:
            raise SalesforceError(400, "INVALID_TYPE", "Must send a concrete entity type.")
        obj = self.sim.schema.object(type_name)
        if obj is None:
            raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        return obj

    # ---- running ----------------------------------------------------------------------------------------
    def _execute(self, operations: list[Operation], all_or_none: bool) -> list[dict]:
        tx = self.sim.transaction()
        results: list[dict] = []
        failed = False
        for op in operations:
            outcome = self._run_one(tx, op)
            failed = failed or not outcome["success"]
            results.append(outcome)
        if all_or_none and failed:
            tx.rollback()
            results = [r if not r["success"] else self._rolled_back(r) for r in results]
        return results

    def _run_one(self, tx: Transaction, op: Operation) -> dict:
        error = op.error
        rid, created = op.record_id, None
        if error is None:
            savepoint = tx.savepoint()
            try:
                rid, created = op.run(tx)
            except WriteError as err:
                tx.rollback(savepoint)
                error = err
        if error is not None:
            out: dict[str, Any] = {"success": False, "errors": [error.as_error()]}
            if op.record_id:
                out = {"id": op.record_id, **out}
            if op.with_created:
                out["created"] = False
            return out
        out = {"id": rid, "success": True, "errors": []}
        if op.with_created:
            out["created"] = bool(created)
        return out

    @staticmethod
    def _rolled_back(result: dict) -> dict:
        out = {k: v for k, v in result.items() if k != "id"}
        out.update(success=False, errors=[ROLLED_BACK])
        if "created" in out:
            out["created"] = False
        return out

    # ---- handlers -----------------------------------------------------------------------------------------
    async def create(self, request: Request) -> Response:
        require_version(request, 42.0, "sObject Collections")
        all_or_none, records = await self._body(request)
        operations = []
        for record in records:
            obj = self._type_of(record)
            values = resolve_body(obj, {k: v for k, v in record.items() if k.lower() != "id"})
            if any(k.lower() == "id" for k in record):
                operations.append(Operation(None, error=WriteError("INVALID_FIELD", "cannot specify Id in an insert "
                                                                   "call", ["Id"])))
                continue
            operations.append(Operation(lambda tx, o=obj, v=values: (tx.insert(o, v), True)))
        return json_response(self._execute(operations, all_or_none))

    async def update(self, request: Request) -> Response:
        require_version(request, 42.0, "sObject Collections")
        all_or_none, records = await self._body(request)
        operations = []
        for record in records:
            obj = self._type_of(record)
            raw_id = next((v for k, v in record.items() if k.lower() == "id"), None)
            values = resolve_body(obj, {k: v for k, v in record.items() if k.lower() != "id"})
            if not raw_id:
                operations.append(Operation(None, error=WriteError("MISSING_ARGUMENT", "Id not specified in an "
                                                                   "update call", [])))
                continue
            operations.append(Operation(lambda tx, o=obj, i=raw_id, v=values: (tx.update(o, i, v), False),
                                        record_id=normalize_id(raw_id) or raw_id))
        return json_response(self._execute(operations, all_or_none))

    async def delete(self, request: Request) -> Response:
        require_version(request, 42.0, "sObject Collections")
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if not ids:
            raise SalesforceError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > MAX_RECORDS:
            raise _too_many()
        all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
        operations = [self._delete_operation(raw) for raw in ids]
        return json_response(self._execute(operations, all_or_none))

    def _delete_operation(self, raw_id: str) -> Operation:
        rid = normalize_id(raw_id)
        type_name = self.sim.repo.find_type_of(rid) if rid else None
        if type_name is None:
            return Operation(None, record_id=raw_id, error=WriteError("MALFORMED_ID", f"malformed id {raw_id}", []))
        obj = self.sim.schema.objects[type_name]
        return Operation(lambda tx: (tx.delete(obj, rid), None), record_id=rid)

    async def retrieve(self, request: Request) -> Response:
        require_version(request, 42.0, "sObject Collections")
        obj = self.sim.schema.object(request.path_params["sobject"])
        if obj is None:
            raise not_found()
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        names = [n for n in request.query_params.get("fields", "").split(",") if n]
        if not ids or not names:
            raise SalesforceError(400, "MISSING_ARGUMENT", "ids and fields parameters are required")
        if len(ids) > 2000:
            raise _too_many()
        fields = []
        for name in names:
            fdef = obj.field(name)
            if fdef is None:
                raise SalesforceError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
            fields.append(fdef)
        out = []
        for raw in ids:
            rid = normalize_id(raw)
            rec = self.sim.repo.get(obj.name, rid) if rid else None
            live = rec is not None and rec.get("IsDeleted") is not True
            out.append(render_record(obj, rec, api_version(request), fields) if live else None)
        return json_response(out)

    async def upsert(self, request: Request) -> Response:
        require_version(request, 46.0, "sObject Collections upsert")
        obj = self.sim.schema.object(request.path_params["sobject"])
        if obj is None:
            raise not_found()
        fdef = obj.field(request.path_params["field"])
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise not_found(f"Provided external ID field does not exist or is not accessible: "
                            f"{request.path_params['field']}")
        all_or_none, records = await self._body(request)
        prepared = []
        for record in records:
            if self._type_of(record).name != obj.name:
                raise SalesforceError(400, "INVALID_TYPE", f"Records must all be of type {obj.name}")
            values = resolve_body(obj, record)
            prepared.append((values, values.get(fdef.name)))
        counts = Counter(str(v).casefold() for _, v in prepared if v not in (None, ""))
        operations = []
        for values, ext_value in prepared:
            if ext_value not in (None, "") and counts[str(ext_value).casefold()] > 1:
                err = WriteError("DUPLICATE_VALUE", f"Duplicate external id specified: {ext_value}", [fdef.name])
                operations.append(Operation(None, error=err, with_created=True))
                continue
            operations.append(Operation(lambda tx, v=values, e=ext_value: tx.upsert(obj, fdef, e, v),
                                        with_created=True))
        return json_response(self._execute(operations, all_or_none))
