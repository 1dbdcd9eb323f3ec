"""Bulk API 2.0: query jobs (``jobs/query``) and ingest jobs (``jobs/ingest``).

Query jobs run their SOQL when created (the result set is a snapshot) and report
``UploadComplete`` -> ``InProgress`` -> ``JobComplete`` over successive status reads
(``options.bulk_polls_to_complete``, default 2); results are CSV pages with
``Sforce-NumberOfRecords`` and ``Sforce-Locator`` (``null`` after the last page).

Ingest jobs accept one CSV upload (``PUT .../batches`` -> 201) while ``Open``; ``PATCH
{"state": "UploadComplete"}`` processes every row (insert / update / upsert / delete /
hardDelete) with the same validation as the REST API, one row at a time; the results are served
as ``successfulResults`` / ``failedResults`` / ``unprocessedrecords`` CSV. Columns are matched by
header name; an unknown column fails the whole job (``InvalidBatch : Field name not found``); an
empty cell leaves a field unchanged and ``#N/A`` sets it to null.
"""
from __future__ import annotations

import base64
import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..core import stamps
from ..core.simulator import json_response
from .query import select_rows
from .responses import SalesforceError, api_version, read_json, require_version
from .schema import FieldDef, ObjectDef, FieldValueError, convert_csv_cell, make_id, normalize_id
from .soql import SoqlError, compile_query
from .writes import Transaction, WriteError

if TYPE_CHECKING:
    from .simulator import SalesforceSimulator

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
DEFAULT_MAX_RECORDS = 50_000
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _job_error(status: int, code: str, message: str) -> SalesforceError:
    return SalesforceError(status, code, message)


@dataclass
class Job:
    """State shared by query and ingest jobs."""

    id: str
    operation: str
    object: str
    version: str
    created: datetime
    state: str
    column_delimiter: str = "COMMA"
    line_ending: str = "LF"
    status_reads: int = 0
    error_message: str | None = None

    def base_info(self, job_type: str) -> dict:
        stamp = stamps.fmt_salesforce(self.created)
        info = {"id": self.id, "operation": self.operation, "object": self.object,
                "createdById": "", "createdDate": stamp, "systemModstamp": stamp, "state": self.state,
                "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(self.version),
                "jobType": job_type, "lineEnding": self.line_ending, "columnDelimiter": self.column_delimiter}
        if self.error_message:
            info["errorMessage"] = self.error_message
        return info


@dataclass
class QueryJob(Job):
    query: str = ""
    fields: list[FieldDef] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)

    def info(self) -> dict:
        return {**self.base_info("V2Query"), "numberRecordsProcessed": len(self.rows) if self.state == "JobComplete"
                else 0, "retries": 0, "totalProcessingTime": 0, "isPkChunkingSupported": True}


@dataclass
class IngestJob(Job):
    external_id_field: str | None = None
    data: bytes | None = None
    header: list[str] = field(default_factory=list)
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)

    def info(self, version: str) -> dict:
        info = {**self.base_info("V2Ingest"), "contentUrl": f"services/data/v{version}/jobs/ingest/{self.id}/batches",
                "numberRecordsProcessed": len(self.successes) + len(self.failures),
                "numberRecordsFailed": len(self.failures), "retries": 0, "totalProcessingTime": 0,
                "apiActiveProcessingTime": 0, "apexProcessingTime": 0}
        if self.external_id_field:
            info["externalIdFieldName"] = self.external_id_field
        return info


def csv_text(header: list[str], rows: list[list[Any]], delimiter: str, line_ending: str,
             quote_all: bool = False) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=DELIMITERS[delimiter], lineterminator=LINE_ENDINGS[line_ending],
                        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def csv_cell(fdef: FieldDef, value: Any) -> str:
    """A stored value as Bulk API CSV shows it (datetimes as ``...000Z``, checkboxes ``true``)."""
    if value is None:
        return "false" if fdef.type == "boolean" else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if fdef.type == "datetime" and isinstance(value, str):
        try:
            return stamps.fmt_iso_millis_z(stamps.parse_any(value))
        except (ValueError, OverflowError):
            return value
    return str(value)


def encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int:
    try:
        return int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise _job_error(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None


class BulkApi:
    """Bulk API 2.0 jobs of one simulator (in memory; a restart forgets them)."""

    def __init__(self, sim: "SalesforceSimulator"):
        self.sim = sim
        self.query_jobs: dict[str, QueryJob] = {}
        self.ingest_jobs: dict[str, IngestJob] = {}
        self.query_jobs_created = 0

    # ---- shared ---------------------------------------------------------------------------------------------
    def _new_job_id(self) -> str:
        return make_id("750", self.sim.next_id("id:750"))

    def _advance(self, job: Job) -> None:
        """Move UploadComplete -> InProgress -> JobComplete over status reads."""
        polls = int(self.sim.config.options.get("bulk_polls_to_complete", 2))
        if job.state not in ("UploadComplete", "InProgress"):
            return
        job.status_reads += 1
        if job.status_reads >= polls:
            job.state = "JobComplete"
        elif job.state == "UploadComplete":
            job.state = "InProgress"

    def _settings(self, body: dict) -> tuple[str, str]:
        content_type = body.get("contentType", "CSV")
        if content_type != "CSV":
            raise _job_error(400, "INVALIDJOB", f"InvalidJob : Unsupported content type: {content_type}")
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in DELIMITERS:
            raise _job_error(400, "INVALIDJOB", f"InvalidJob : Invalid column delimiter: {delimiter}")
        if line_ending not in LINE_ENDINGS:
            raise _job_error(400, "INVALIDJOB", f"InvalidJob : Invalid line ending: {line_ending}")
        return delimiter, line_ending

    @staticmethod
    def _list(jobs: list[dict]) -> Response:
        return json_response({"done": True, "records": jobs, "nextRecordsUrl": None})

    # ---- query jobs -------------------------------------------------------------------------------------------
    def _query_job(self, request: Request) -> QueryJob:
        job = self.query_jobs.get(request.path_params["job_id"])
        if job is None:
            raise _job_error(404, "NOT_FOUND", "Job not found")
        return job

    async def create_query(self, request: Request) -> Response:
        require_version(request, 47.0, "Bulk API 2.0 query")
        body = await read_json(request)
        if not isinstance(body, dict):
            raise _job_error(400, "INVALIDJOB", "InvalidJob : request body must be an object")
        operation = body.get("operation", "")
        if operation not in ("query", "queryAll"):
            raise _job_error(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        delimiter, line_ending = self._settings(body)
        soql = body.get("query") or ""
        try:
            bound = compile_query(soql, self.sim.schema, self.sim.now())
        except SoqlError as err:
            raise SalesforceError(400, err.code, err.message) from None
        if bound.count_only or bound.offset:
            raise _job_error(400, "INVALIDJOB", "InvalidJob : Aggregate queries and OFFSET are not supported by "
                                                "Bulk API 2.0 query jobs")
        rows = select_rows(self.sim.collections[bound.obj.name], bound, operation == "queryAll")
        job = QueryJob(self._new_job_id(), operation, bound.obj.name, api_version(request), self.sim.now(),
                       "UploadComplete", delimiter, line_ending, query=soql, fields=bound.fields, rows=rows)
        self.query_jobs[job.id] = job
        self.query_jobs_created += 1
        if int(self.sim.config.options.get("bulk_polls_to_complete", 2)) <= 0:
            job.state = "JobComplete"
        return json_response({k: v for k, v in job.info().items()
                              if k not in ("numberRecordsProcessed", "retries", "totalProcessingTime",
                                           "isPkChunkingSupported")})

    async def get_query(self, request: Request) -> Response:
        job = self._query_job(request)
        self._advance(job)
        return json_response(job.info())

    async def list_query(self, request: Request) -> Response:
        return self._list([j.info() for j in self.query_jobs.values()])

    async def patch_query(self, request: Request) -> Response:
        body = await read_json(request)
        job = self._query_job(request)
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            raise _job_error(400, "INVALIDJOBSTATE", "InvalidJobState : only Aborted can be set on a query job")
        if job.state in ("JobComplete", "Failed", "Aborted"):
            raise _job_error(400, "INVALIDJOBSTATE", f"InvalidJobState : Job is already {job.state}")
        job.state = "Aborted"
        job.rows = []
        return json_response(job.info())

    async def delete_query(self, request: Request) -> Response:
        job = self._query_job(request)
        if job.state in ("UploadComplete", "InProgress"):
            raise _job_error(400, "INVALIDJOBSTATE", "InvalidJobState : Job must be completed or aborted")
        del self.query_jobs[job.id]
        return Response(status_code=204)

    async def query_results(self, request: Request) -> Response:
        job = self._query_job(request)
        if api_version(request) != job.version:
            raise _job_error(409, "INVALIDJOBSTATE", "The API version of the request does not match the job's "
                                                     f"API version {job.version}")
        if job.state != "JobComplete":
            raise _job_error(412, "JOB_NOT_COMPLETE", f"Job {job.id} is in state {job.state}; results are "
                                                       "available when it is JobComplete")
        offset = decode_locator(request.query_params["locator"]) if request.query_params.get("locator") else 0
        raw_max = request.query_params.get("maxRecords")
        if raw_max is not None and (not raw_max.isdigit() or int(raw_max) <= 0):
            raise _job_error(400, "INVALIDPARAMETER", f"Invalid maxRecords: {raw_max}")
        limit = int(raw_max) if raw_max else DEFAULT_MAX_RECORDS
        if offset > len(job.rows):
            raise _job_error(400, "INVALIDLOCATOR", "Invalid locator")
        chunk = job.rows[offset: offset + limit]
        end = offset + len(chunk)
        body = csv_text([f.name for f in job.fields], [[csv_cell(f, r.get(f.name)) for f in job.fields] for r in chunk],
                        job.column_delimiter, job.line_ending)
        headers = {"Sforce-NumberOfRecords": str(len(chunk)),
                   "Sforce-Locator": encode_locator(end) if end < len(job.rows) else "null"}
        # planted lone surrogates cannot be UTF-8 encoded: send U+FFFD, as a UTF-8 server would
        return Response(LONE_SURROGATE.sub("\ufffd", body).encode("utf-8"), 200, headers, media_type="text/csv")

    # ---- ingest jobs --------------------------------------------------------------------------------------------
    def _ingest_job(self, request: Request) -> IngestJob:
        job = self.ingest_jobs.get(request.path_params["job_id"])
        if job is None:
            raise _job_error(404, "NOT_FOUND", "Job not found")
        return job

    async def create_ingest(self, request: Request) -> Response:
        require_version(request, 41.0, "Bulk API 2.0 ingest")
        body = await read_json(request)
        if not isinstance(body, dict):
            raise _job_error(400, "INVALIDJOB", "InvalidJob : request body must be an object")
        operation = body.get("operation", "")
        if operation not in INGEST_OPERATIONS:
            raise _job_error(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        obj = self.sim.schema.object(body.get("object") or "")
        if obj is None:
            raise _job_error(400, "INVALIDJOB", f"InvalidJob : Unable to find object: {body.get('object')}")
        delimiter, line_ending = self._settings(body)
        ext_name = None
        if operation == "upsert":
            ext = obj.field(body.get("externalIdFieldName") or "")
            if ext is None or not (ext.external_id or ext.name == "Id"):
                raise _job_error(400, "INVALIDJOB", "InvalidJob : External ID field does not exist or is not an "
                                                    f"External ID: {body.get('externalIdFieldName')}")
            ext_name = ext.name
        job = IngestJob(self._new_job_id(), operation, obj.name, api_version(request), self.sim.now(), "Open",
                        delimiter, line_ending, external_id_field=ext_name)
        self.ingest_jobs[job.id] = job
        return json_response(job.info(job.version))

    async def upload(self, request: Request) -> Response:
        data = await request.body()  # read first: no await between checking the job and storing the data
        job = self._ingest_job(request)
        if job.state != "Open":
            raise _job_error(400, "INVALIDJOBSTATE", f"InvalidJobState : Job is not Open: {job.state}")
        if job.data is not None:
            raise _job_error(400, "INVALIDJOBSTATE", "InvalidJobState : Job data was already uploaded; a Bulk API "
                                                     "2.0 job takes one upload")
        if not data.strip():
            raise _job_error(400, "INVALIDBATCH", "InvalidBatch : The upload is empty")
        job.data = data
        return Response(status_code=201)

    async def get_ingest(self, request: Request) -> Response:
        job = self._ingest_job(request)
        self._advance(job)
        return json_response(job.info(job.version))

    async def list_ingest(self, request: Request) -> Response:
        return self._list([j.info(j.version) for j in self.ingest_jobs.values()])

    async def patch_ingest(self, request: Request) -> Response:
        body = await read_json(request)
        job = self._ingest_job(request)
        state = body.get("state") if isinstance(body, dict) else None
        if state == "UploadComplete" and job.state == "Open":
            self._process(job)
        elif state == "Aborted" and job.state in ("Open", "UploadComplete", "InProgress"):
            if job.state == "Open" and job.data is not None:
                header, rows = self._read_csv(job)
                job.header, job.unprocessed = header, rows
            job.state = "Aborted"
        else:
            raise _job_error(400, "INVALIDJOBSTATE", f"InvalidJobState : cannot change the state from {job.state} "
                                                     f"to {state}")
        return json_response(job.info(job.version))

    async def delete_ingest(self, request: Request) -> Response:
        job = self._ingest_job(request)
        if job.state not in ("JobComplete", "Failed", "Aborted"):
            raise _job_error(400, "INVALIDJOBSTATE", "InvalidJobState : Job must be completed, failed or aborted")
        del self.ingest_jobs[job.id]
        return Response(status_code=204)

    async def ingest_results(self, request: Request) -> Response:
        job = self._ingest_job(request)
        kind = request.path_params["kind"]
        if kind == "successfulResults":
            text = csv_text(["sf__Id", "sf__Created", *job.header], job.successes, job.column_delimiter,
                            job.line_ending, quote_all=True)
        elif kind == "failedResults":
            text = csv_text(["sf__Id", "sf__Error", *job.header], job.failures, job.column_delimiter,
                            job.line_ending, quote_all=True)
        elif kind in ("unprocessedrecords", "unprocessedRecords"):
            text = csv_text(job.header, job.unprocessed, job.column_delimiter, job.line_ending, quote_all=True)
        else:
            raise _job_error(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(text.encode("utf-8"), 200, media_type="text/csv")

    # ---- processing -----------------------------------------------------------------------------------------------
    def _read_csv(self, job: IngestJob) -> tuple[list[str], list[list[str]]]:
        text = (job.data or b"").decode("utf-8-sig", "replace")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.column_delimiter])
        rows = [row for row in reader if any(cell != "" for cell in row)]
        return (rows[0], rows[1:]) if rows else ([], [])

    def _process(self, job: IngestJob) -> None:
        """Run every row (Salesforce processes them after UploadComplete; we do it at once)."""
        job.state = "UploadComplete"
        job.status_reads = 0
        if job.data is None:
            job.state, job.error_message = "Failed", "InvalidBatch : No data was uploaded for this job"
            return
        header, rows = self._read_csv(job)
        job.header = header
        obj = self.sim.schema.objects[job.object]
        columns: list[FieldDef] = []
        for name in header:
            fdef = obj.field(name.strip())
            if fdef is None:
                job.state, job.error_message = "Failed", f"InvalidBatch : Field name not found : {name}"
                job.unprocessed = rows
                return
            columns.append(fdef)
        tx = self.sim.transaction()
        duplicates = self._duplicate_keys(job, columns, rows)
        for row in rows:
            cells = row + [""] * (len(columns) - len(row))
            self._process_row(job, obj, tx, columns, cells[: len(columns)], duplicates, row)
        if int(self.sim.config.options.get("bulk_polls_to_complete", 2)) <= 0:
            job.state = "JobComplete"

    def _duplicate_keys(self, job: IngestJob, columns: list[FieldDef], rows: list[list[str]]) -> set[str]:
        if job.operation != "upsert" or job.external_id_field == "Id":
            return set()
        pos = next((i for i, f in enumerate(columns) if f.name == job.external_id_field), None)
        if pos is None:
            return set()
        counts = Counter(r[pos].casefold() for r in rows if len(r) > pos and r[pos] != "")
        return {k for k, n in counts.items() if n > 1}

    def _process_row(self, job: IngestJob, obj: ObjectDef, tx: Transaction, columns: list[FieldDef],
                     cells: list[str], duplicates: set[str], original: list[str]) -> None:
        savepoint = tx.savepoint()
        try:
            values = self._row_values(columns, cells)
            row_id, created = self._apply(job, obj, tx, values, duplicates)
        except WriteError as err:
            tx.rollback(savepoint)
            given_id = next((c for f, c in zip(columns, cells) if f.name == "Id"), "")
            job.failures.append([normalize_id(given_id) or "", err.as_bulk_error(), *original])
            return
        job.successes.append([row_id, "true" if created else "false", *original])

    @staticmethod
    def _row_values(columns: list[FieldDef], cells: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for fdef, cell in zip(columns, cells):
            try:
                present, value = convert_csv_cell(fdef, cell)
            except FieldValueError:
                raise WriteError("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{fdef.name}: value not of required type: {cell}",
                                 [fdef.name]) from None
            if present:
                values[fdef.name] = value
        return values

    def _apply(self, job: IngestJob, obj: ObjectDef, tx: Transaction, values: dict,
               duplicates: set[str]) -> tuple[str, bool]:
        op = job.operation
        if op == "insert":
            return tx.insert(obj, values), True
        if op == "upsert":
            ext = obj.field(job.external_id_field)
            ext_value = values.get(ext.name)
            if ext_value is not None and str(ext_value).casefold() in duplicates:
                raise WriteError("DUPLICATE_VALUE", f"Duplicate external id specified: {ext_value}", [ext.name])
            return tx.upsert(obj, ext, ext_value, values)
        record_id = values.get("Id")
        if not record_id:
            raise WriteError("MISSING_ARGUMENT", f"Id not specified in an {op} call", [])
        if op == "update":
            return tx.update(obj, record_id, values), False
        if set(values) - {"Id"}:
            raise WriteError("INVALID_FIELD", f"A {op} job takes only the Id column", [])
        return tx.delete(obj, record_id, hard=op == "hardDelete"), False
