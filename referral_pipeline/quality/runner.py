"""Runs one data-quality suite against a DuckDB table and returns a ``SuiteResult``.

**Which rows.** Row-level expectations (GX) see only the rows that changed since the last
validation, plus the rows that failed last time and were not fixed since:

* *watermark* strategy — the table has an integer write-sequence column (``load_seq``, first of the
  suite's ``watermark_candidates``): the delta is ``mark < load_seq <= max(load_seq)``, with the mark
  kept in ``ops.dq_progress``. DuckDB's zone maps make that read proportional to the delta.
* *fingerprint* strategy — no such column (tables whose writers do not keep one): DuckDB hashes
  every row (cheap, set-based) and the delta is the rows whose (key, hash) pair is not in
  ``ops.dq_fingerprints``. Only the changed rows are read into pandas and validated.

Rows failing a row-level expectation are kept in ``ops.dq_open_failures`` and re-validated every
run, so a failing check keeps failing until the data is fixed (the mark moving on does not hide
them). Table-level expectations (uniqueness, ledger contiguity, references) are one DuckDB query
each over the whole table.

Idempotent: a run with no changed rows and an unchanged outcome writes nothing, and does not even
import Great Expectations. Values reach SQL as parameters or Arrow data; identifiers come from the
suites (checked against a pattern).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any, Iterable, Sequence

import duckdb

from .gx_engine import ROW_KEY, GxOutcome, GxValidator, json_safe
from .suites import CURRENCIES, MARKETS, RowExpectation, Suite, TableExpectation

PROGRESS_SQL = resources.files(__package__).joinpath("progress.sql").read_text()
IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
TABLE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
KEY_SEP = "\x1f"
NULL_KEY = "\u2205"
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
IS_DELTA = "__dq_is_delta"


@dataclass
class ExpectationResult:
    name: str
    kind: str                   # "row" (GX on the delta) | "table" (DuckDB SQL on the whole table)
    expectation: str            # GX expectation type, or "sql"
    column: str | None
    description: str
    success: bool
    element_count: int | None   # rows evaluated (row-level), rows of the table (table-level)
    unexpected_count: int       # failing rows (row-level) / offending rows the query returned (table-level)
    unexpected_sample: list[Any] = field(default_factory=list)
    failing_keys: list[str] = field(default_factory=list)   # a few keys of failing rows
    note: str | None = None     # why skipped, or the error


@dataclass
class SuiteResult:
    table: str
    blocking: bool
    success: bool
    table_exists: bool
    strategy: str | None = None          # watermark | fingerprint
    mode: str = "delta"                  # delta | full (first run, forced, or the table was rebuilt)
    delta_rows: int = 0                  # rows new or changed since the last validation
    reopened_rows: int = 0               # previously failing rows re-validated (not in the delta)
    validated_rows: int = 0              # rows handed to GX = delta_rows + reopened_rows
    table_rows: int = 0
    expectations: list[ExpectationResult] = field(default_factory=list)
    seconds: float = 0.0
    run_id: str | None = None

    @property
    def failed(self) -> list[ExpectationResult]:
        return [e for e in self.expectations if not e.success]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        lines = ["| expectation | kind | result | unexpected | sample |", "|---|---|---|---|---|"]
        for e in self.expectations:
            result = "skipped" if e.note and e.success else ("passed" if e.success else "**FAILED**")
            sample = ", ".join(_short(v) for v in (e.failing_keys or e.unexpected_sample)[:3])
            if e.note:
                sample = f"{e.note}; {sample}" if sample else e.note
            lines.append(f"| {e.name} | {e.kind} | {result} | {e.unexpected_count} | {sample.replace('|', '/')} |")
        return "\n".join(lines)


def _short(v: Any, n: int = 60) -> str:
    s = str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def ensure_dq_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(PROGRESS_SQL)


def _ident(name: str) -> str:
    if not IDENT.match(name):
        raise ValueError(f"invalid identifier {name!r}")
    return f'"{name}"'


def _table(name: str) -> str:
    if not TABLE.match(name):
        raise ValueError(f"invalid table name {name!r}")
    return name


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                            [schema, name]).fetchall()[0][0])


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    schema, name = table.split(".")
    rows = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, name]).fetchall()
    return {c: t for c, t in rows}


def currency_codes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """ISO 4217 codes: ``staging.currencies`` when loaded, else the list shipped with staging."""
    if table_exists(con, "staging.currencies"):
        codes = [r[0] for r in con.execute("SELECT code FROM staging.currencies ORDER BY 1").fetchall()]
        if codes:
            return codes
    text = resources.files("referral_pipeline.transform.staging").joinpath("iso4217.csv").read_text()
    return sorted(row["code"] for row in csv.DictReader(io.StringIO(text)))


def market_ids(con: duckdb.DuckDBPyConnection) -> list[str] | None:
    if table_exists(con, "staging.market_rules"):
        ids = [r[0] for r in con.execute("SELECT DISTINCT market_id FROM staging.market_rules ORDER BY 1").fetchall()]
        return ids or None
    return None


def row_key_sql(key: Sequence[str]) -> str:
    parts = [f"coalesce(CAST({_ident(k)} AS VARCHAR), '{NULL_KEY}')" for k in key]
    return parts[0] if len(parts) == 1 else f"concat_ws(chr({ord(KEY_SEP)}), {', '.join(parts)})"


def _sql_text(check: TableExpectation, table: str) -> str:
    if check.unique:
        cols = ", ".join(_ident(c) for c in check.unique)
        not_null = " AND ".join(f"{_ident(c)} IS NOT NULL" for c in check.unique)
        return (f"SELECT {cols}, count(*) AS rows FROM {_table(table)} WHERE {not_null} "
                f"GROUP BY {cols} HAVING count(*) > 1")
    if check.sql_file:
        return resources.files(__package__).joinpath("sql", check.sql_file).read_text()
    return check.sql or ""


def _run_table_check(con, suite: Suite, check: TableExpectation, columns: dict[str, str], table_rows: int,
                     sample_size: int) -> ExpectationResult:
    base = dict(name=check.name, kind="table", expectation="sql", column=None, description=check.description)
    missing_tables = [t for t in check.requires if not table_exists(con, _table(t))]
    if missing_tables:
        return ExpectationResult(**base, success=True, element_count=None, unexpected_count=0,
                                 note=f"skipped: {', '.join(missing_tables)} does not exist yet")
    missing_cols = [c for c in check.unique if c not in columns]
    if missing_cols:
        return ExpectationResult(**base, success=False, element_count=table_rows, unexpected_count=0,
                                 note=f"missing column(s): {', '.join(missing_cols)}")
    sql = _sql_text(check, suite.table)
    try:
        cur = con.execute(f"SELECT *, count(*) OVER () AS __dq_n FROM ({sql}) __dq_q LIMIT {int(sample_size)}")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    except duckdb.Error as exc:
        return ExpectationResult(**base, success=False, element_count=table_rows, unexpected_count=0,
                                 note=f"query failed: {str(exc).splitlines()[0][:300]}")
    n = rows[0][-1] if rows else 0
    sample = [{k: json_safe(v) for k, v in zip(names[:-1], r[:-1])} for r in rows]
    keys = [str(r[0]) for r in rows]
    return ExpectationResult(**base, success=n == 0, element_count=table_rows, unexpected_count=int(n),
                             unexpected_sample=sample, failing_keys=keys)


@dataclass
class _Progress:
    strategy: str
    mark_column: str | None
    mark_value: int | None
    success: bool
    failed_expectations: list[str]
    signature: str | None


def _load_progress(con, table: str) -> _Progress | None:
    rows = con.execute("SELECT strategy, mark_column, mark_value, success, failed_expectations, signature "
                       "FROM ops.dq_progress WHERE table_name = ?", [table]).fetchall()
    if not rows:
        return None
    s, c, m, ok, failed, sig = rows[0]
    return _Progress(s, c, m, ok, list(failed or []), sig)


def run_suite(con: duckdb.DuckDBPyConnection, suite: Suite, *, run_id: str | None = None,
              markets: Iterable[str] | None = None, full: bool = False, chunk_rows: int = 250_000,
              sample_size: int = 5) -> SuiteResult:
    """Validates ``suite.table``: row-level expectations on the delta (GX), table-level ones in SQL.

    ``markets``: the programs file's market ids (default: ``staging.market_rules``; market
    expectations are skipped when neither is known). ``full``: ignore the stored progress and
    validate every row."""
    started = time.perf_counter()
    table = _table(suite.table)
    ensure_dq_schema(con)
    if not table_exists(con, table):
        return SuiteResult(table=table, blocking=suite.blocking, success=True, table_exists=False, run_id=run_id,
                           seconds=time.perf_counter() - started)

    columns = table_columns(con, table)
    table_rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    value_sets = {CURRENCIES: currency_codes(con),
                  MARKETS: sorted(set(markets)) if markets is not None else market_ids(con)}
    results: list[ExpectationResult] = []

    # ---- plan the row-level expectations: which columns to read, which cannot run
    derived = {d.alias: d for d in suite.derived}
    select: dict[str, str] = {}
    plan: list[tuple[RowExpectation, dict[str, Any]]] = []
    for exp in suite.row:
        base = dict(name=exp.name, kind="row", expectation=exp.gx_type, column=exp.column, description=exp.description)
        if exp.column in derived:
            d = derived[exp.column]
            missing = [c for c in d.requires if c not in columns]
            expr = d.sql
        else:
            missing = [] if exp.column in columns else [exp.column]
            expr = _ident(exp.column)
        if missing:
            results.append(ExpectationResult(**base, success=False, element_count=None, unexpected_count=0,
                                             note=f"missing column(s): {', '.join(missing)}"))
            continue
        kwargs = dict(exp.kwargs)
        if isinstance(kwargs.get("value_set"), str):
            resolved = value_sets.get(kwargs["value_set"])
            if resolved is None:
                results.append(ExpectationResult(**base, success=True, element_count=None, unexpected_count=0,
                                                 note=f"skipped: {kwargs['value_set']} unknown"))
                continue
            kwargs["value_set"] = list(resolved)
        select[exp.column] = expr
        plan.append((exp, kwargs))

    missing_key = [k for k in suite.key if k not in columns]
    outcome = SuiteResult(table=table, blocking=suite.blocking, success=True, table_exists=True,
                          table_rows=table_rows, run_id=run_id)
    progress = _load_progress(con, table)
    mark_col = next((c for c in suite.watermark_candidates
                     if c in columns and columns[c].upper() in INTEGER_TYPES), None)
    strategy = "watermark" if mark_col else "fingerprint"
    outcome.strategy = strategy
    signature = _signature(suite, plan, select)
    reset = (full or progress is None or progress.strategy != strategy or progress.mark_column != mark_col
             or progress.signature != signature)
    new_mark: int | None = None
    failing: dict[str, set[str]] = {}
    gx_outcomes: dict[str, GxOutcome] = {}

    if missing_key:
        results.append(ExpectationResult(name="row_key", kind="row", expectation="-", column=None,
                                         description="the suite's key columns exist", success=False,
                                         element_count=None, unexpected_count=0,
                                         note=f"missing key column(s): {', '.join(missing_key)}; row-level expectations not run"))
        plan = []
    elif plan:
        key_sql = row_key_sql(suite.key)
        open_count = con.execute("SELECT count(*) FROM ops.dq_open_failures WHERE table_name = ?", [table]).fetchall()[0][0]
        cols_sql = ", ".join(f"{expr} AS {_ident(alias)}" for alias, expr in select.items())
        hash_sql = f"hash(row({', '.join(select.values())}))"
        if strategy == "watermark":
            m = _ident(mark_col)
            new_mark = con.execute(f"SELECT max({m}) FROM {table}").fetchall()[0][0]
            old_mark = None if reset else progress.mark_value
            if old_mark is not None and new_mark is not None and new_mark < old_mark:
                old_mark = None            # the table was rebuilt with lower sequence numbers
            outcome.mode = "full" if old_mark is None else "delta"
            if new_mark is None:
                new_mark = old_mark
            delta_pred = (f"(({m} > CAST($old AS BIGINT) OR CAST($old AS BIGINT) IS NULL) "
                          f"AND {m} <= CAST($new AS BIGINT)) OR {m} IS NULL")
            where = f"({delta_pred})"
            params: dict[str, Any] = {"old": old_mark, "new": new_mark}
            if open_count and not outcome.mode == "full":
                where += (f" OR {key_sql} IN (SELECT row_key FROM ops.dq_open_failures WHERE table_name = $t)")
                params["t"] = table
            query = (f"SELECT {cols_sql}, {key_sql} AS {ROW_KEY}, coalesce({delta_pred}, FALSE) AS {IS_DELTA} "
                     f"FROM {table} WHERE {where}")
        else:
            # (key, hash of the values the suite validates) of every row: a change to a column no
            # expectation reads (bookkeeping timestamps) cannot change the outcome, so it is no delta.
            # Works on views too (no rowid needed).
            con.execute(f"CREATE OR REPLACE TEMP TABLE __dq_cur AS SELECT {key_sql} AS row_key, "
                        f"{hash_sql} AS row_hash FROM {table} __dq_t")
            outcome.mode = "full" if reset else "delta"
            if reset:
                con.execute("CREATE OR REPLACE TEMP TABLE __dq_pick AS "
                            "SELECT DISTINCT row_key, row_hash, TRUE AS is_delta FROM __dq_cur")
            else:
                con.execute("""CREATE OR REPLACE TEMP TABLE __dq_pick AS
                    SELECT DISTINCT c.row_key, c.row_hash, f.row_key IS NULL AS is_delta
                    FROM __dq_cur c
                    LEFT JOIN (SELECT DISTINCT row_key, row_hash FROM ops.dq_fingerprints WHERE table_name = $t) f
                           ON f.row_key = c.row_key AND f.row_hash = c.row_hash
                    LEFT JOIN (SELECT DISTINCT row_key FROM ops.dq_open_failures WHERE table_name = $t) o
                           ON o.row_key = c.row_key
                    WHERE f.row_key IS NULL OR o.row_key IS NOT NULL""", {"t": table})
            params = {}
            query = (f"SELECT {cols_sql}, {key_sql} AS {ROW_KEY}, p.is_delta AS {IS_DELTA} FROM {table} __dq_t "
                     f"JOIN __dq_pick p ON p.row_key = {key_sql} AND p.row_hash = {hash_sql}")

        # ---- read the delta in chunks and validate each with GX (GX is imported only if needed)
        con.execute(query, params or None)
        validator: GxValidator | None = None
        vectors = max(1, chunk_rows // 2048)
        while True:
            with warnings.catch_warnings():   # duckdb's fetch_df_chunk uses a pandas-deprecated drop(inplace=)
                warnings.filterwarnings("ignore", message="The inplace keyword")
                frame = con.fetch_df_chunk(vectors)
            if frame is None or len(frame) == 0:
                break
            outcome.validated_rows += len(frame)
            outcome.delta_rows += int(frame[IS_DELTA].sum())
            if validator is None:
                validator = GxValidator(table.replace(".", "__"), plan, sample_size)
            validator.validate(frame.drop(columns=[IS_DELTA]), gx_outcomes)
        outcome.reopened_rows = outcome.validated_rows - outcome.delta_rows

    for exp, _ in plan:
        g = gx_outcomes.get(exp.name, GxOutcome(exp.name))
        for key in g.failing_keys:
            failing.setdefault(key, set()).add(exp.name)
        results.append(ExpectationResult(
            name=exp.name, kind="row", expectation=exp.gx_type, column=exp.column, description=exp.description,
            success=g.success and g.error is None, element_count=g.element_count, unexpected_count=g.unexpected_count,
            unexpected_sample=g.unexpected_values[:sample_size], failing_keys=g.failing_keys[:sample_size],
            note=g.error or (None if outcome.validated_rows else "no changed rows")))

    for check in suite.table_checks:
        results.append(_run_table_check(con, suite, check, columns, table_rows, sample_size))

    order = {e.name: i for i, e in enumerate(suite.row)}
    results.sort(key=lambda e: (e.kind != "row", order.get(e.name, 1_000)))
    outcome.expectations = results
    outcome.success = all(e.success for e in results)
    # persist progress only when GX judged every expectation: after an expectation error the same
    # rows are validated again next run (the mark does not move past rows nobody judged)
    if not missing_key and plan and not any(g.error for g in gx_outcomes.values()):
        _store(con, table, strategy, mark_col, new_mark, progress, reset, outcome, failing, signature)
    con.execute("DROP TABLE IF EXISTS __dq_cur")
    con.execute("DROP TABLE IF EXISTS __dq_pick")
    outcome.seconds = round(time.perf_counter() - started, 3)
    return outcome


def _signature(suite: Suite, plan: list[tuple[RowExpectation, dict[str, Any]]], select: dict[str, str]) -> str:
    """What the row-level validation depends on (expectations with their resolved value sets, the
    expressions read, the key): when it changes, every row is validated again."""
    spec = {"key": list(suite.key), "select": select,
            "expectations": [[e.name, e.gx_type, e.column, kwargs] for e, kwargs in plan]}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _store(con, table: str, strategy: str, mark_col: str | None, new_mark: int | None, progress: _Progress | None,
           reset: bool, outcome: SuiteResult, failing: dict[str, set[str]], signature: str) -> None:
    """Persists progress, open failures and fingerprints in one transaction — only what changed."""
    failed_names = sorted(e.name for e in outcome.failed)
    stored_fail = {k: sorted(v) for k, v in con.execute(
        "SELECT row_key, expectations FROM ops.dq_open_failures WHERE table_name = ?", [table]).fetchall()}
    new_fail = {k: sorted(v) for k, v in failing.items()}
    fp_vanished = False
    if strategy == "fingerprint" and not outcome.delta_rows:
        stored_n = con.execute("SELECT count(*) FROM ops.dq_fingerprints WHERE table_name = ?", [table]).fetchall()[0][0]
        current_n = con.execute("SELECT count(*) FROM __dq_cur").fetchall()[0][0]
        fp_vanished = stored_n != current_n
    progress_changed = (progress is None or reset or outcome.delta_rows > 0 or fp_vanished
                        or progress.mark_value != new_mark or progress.success != outcome.success
                        or progress.failed_expectations != failed_names)
    if not (progress_changed or stored_fail != new_fail):
        return
    con.execute("BEGIN TRANSACTION")
    try:
        if stored_fail != new_fail:
            import pyarrow as pa

            fails = pa.table({"row_key": pa.array(list(new_fail), pa.string()),
                              "expectations": pa.array(list(new_fail.values()), pa.list_(pa.string()))})
            con.register("__dq_fail_arrow", fails)
            con.execute("""CREATE OR REPLACE TEMP TABLE __dq_newfail AS
                SELECT n.row_key, n.expectations, coalesce(o.first_failed_at, now()) AS first_failed_at,
                       coalesce(o.run_id, $run) AS run_id
                FROM __dq_fail_arrow n
                LEFT JOIN ops.dq_open_failures o ON o.table_name = $t AND o.row_key = n.row_key""",
                        {"t": table, "run": outcome.run_id})
            con.unregister("__dq_fail_arrow")
            con.execute("DELETE FROM ops.dq_open_failures WHERE table_name = ?", [table])
            con.execute("INSERT INTO ops.dq_open_failures SELECT $t, row_key, expectations, first_failed_at, run_id "
                        "FROM __dq_newfail", {"t": table})
            con.execute("DROP TABLE __dq_newfail")
        if strategy == "fingerprint":
            if reset:
                con.execute("DELETE FROM ops.dq_fingerprints WHERE table_name = ?", [table])
            elif outcome.delta_rows or fp_vanished:
                con.execute("""DELETE FROM ops.dq_fingerprints f WHERE f.table_name = $t AND NOT EXISTS
                               (SELECT 1 FROM __dq_cur c WHERE c.row_key = f.row_key AND c.row_hash = f.row_hash)""",
                            {"t": table})
            if reset or outcome.delta_rows:
                con.execute("""INSERT INTO ops.dq_fingerprints
                               SELECT $t, c.row_key, c.row_hash FROM __dq_cur c
                               SEMI JOIN (SELECT row_key, row_hash FROM __dq_pick WHERE is_delta) p
                                      ON p.row_key = c.row_key AND p.row_hash = c.row_hash""", {"t": table})
        elif progress is not None and progress.strategy != strategy:
            con.execute("DELETE FROM ops.dq_fingerprints WHERE table_name = ?", [table])
        if progress_changed:
            con.execute("""INSERT INTO ops.dq_progress VALUES ($t, $s, $mc, $mv, $n, $n, $ok, $failed, $run, now(), $sig)
                           ON CONFLICT (table_name) DO UPDATE SET strategy = excluded.strategy, signature = excluded.signature,
                             mark_column = excluded.mark_column, mark_value = excluded.mark_value,
                             rows_validated = excluded.rows_validated,
                             rows_validated_total = ops.dq_progress.rows_validated_total + excluded.rows_validated,
                             success = excluded.success, failed_expectations = excluded.failed_expectations,
                             run_id = excluded.run_id, updated_at = excluded.updated_at""",
                        {"t": table, "s": strategy, "mc": mark_col, "mv": new_mark, "n": outcome.validated_rows,
                         "ok": outcome.success, "failed": failed_names, "run": outcome.run_id, "sig": signature})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def run_suites(con: duckdb.DuckDBPyConnection, suites: Iterable[Suite], **kwargs) -> list[SuiteResult]:
    return [run_suite(con, s, **kwargs) for s in suites]
