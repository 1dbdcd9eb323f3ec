"""Runs a staging transform incrementally: only raw rows loaded since the last run are mapped.

A ``StagingSpec`` is a SQL ``SELECT`` over the view ``raw_delta`` (the changed rows of one raw
table) that returns the target table's columns plus ``quarantine_reason`` (NULL when the row is
good), ``source_id``, ``raw_payload`` and ``quarantine_detail``. In one transaction the runner
replaces the target rows of the changed keys with the good rows, appends the bad rows to
``audit.quarantine``, and stores the last ``load_seq`` it processed. ``rebuild=True`` re-maps the
whole raw table (after a mapping change).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import duckdb

from ...config.programs import Programs

QUALIFIED = re.compile(r"^[a-z_]+\.[a-z][a-z0-9_]*$")
CANONICAL_SQL = resources.files(__package__).joinpath("canonical.sql").read_text()
MACROS_SQL = resources.files(__package__).joinpath("macros.sql").read_text()
META_COLUMNS = ("quarantine_reason", "quarantine_detail", "source_id", "raw_payload")


@dataclass(frozen=True)
class StagingSpec:
    name: str                 # unique stage name, e.g. "sf.orders"
    source: str               # source instance id
    entity: str               # raw entity name (quarantine rows use it)
    raw: str                  # raw table, e.g. raw.sf__order
    target: str               # staging table, e.g. staging.orders
    key: str                  # key column of the target
    sql: str                  # SELECT over raw_delta
    params: dict[str, Any] = field(default_factory=dict)
    delete_scope: str = ""    # extra SQL predicate limiting deletes (e.g. "source = $source")
    # Rows derived from a raw row (order items and refunds of an order) are replaced as a set:
    # target rows whose ``owner_column`` equals ``owner_expr`` of a changed raw row are deleted
    # first, so a line item or refund that disappeared at the source leaves staging too.
    owner_column: str | None = None
    owner_expr: str | None = None


@dataclass
class StagingResult:
    name: str
    processed: int
    staged: int
    quarantined: int
    reasons: dict[str, int]

    def as_metadata(self) -> dict[str, Any]:
        return {"raw_rows_processed": self.processed, "rows_staged": self.staged,
                "rows_quarantined": self.quarantined, "quarantine_reasons": self.reasons}


def ensure_staging_schema(con: duckdb.DuckDBPyConnection, programs: Programs | None = None) -> None:
    con.execute(CANONICAL_SQL)
    con.execute(MACROS_SQL)
    con.execute("CREATE TABLE IF NOT EXISTS staging.currencies (code VARCHAR PRIMARY KEY, minor_units INTEGER)")
    if con.execute("SELECT count(*) FROM staging.currencies").fetchone()[0] == 0:
        path = resources.files(__package__).joinpath("iso4217.csv")
        with resources.as_file(path) as csv_path:
            con.execute("INSERT INTO staging.currencies SELECT code, minor_units FROM read_csv(?, header=true)",
                        [str(csv_path)])
    if programs is not None:
        write_market_rules(con, programs)


def write_market_rules(con: duckdb.DuckDBPyConnection, programs: Programs) -> None:
    """``staging.market_rules``: which (source, currency, store) feeds which market, most specific first."""
    rows = [(m.id, r.source, r.currency, r.store, m.currency, (r.currency is not None) + (r.store is not None))
            for m in programs.markets for r in m.match]
    con.execute("""CREATE OR REPLACE TABLE staging.market_rules (market_id VARCHAR, source VARCHAR,
                   currency VARCHAR, store VARCHAR, program_currency VARCHAR, specificity INTEGER)""")
    if rows:
        con.executemany("INSERT INTO staging.market_rules VALUES (?, ?, ?, ?, ?, ?)", rows)


def _check(name: str) -> str:
    if not QUALIFIED.match(name):
        raise ValueError(f"invalid table name {name!r}")
    return name


def raw_exists(con: duckdb.DuckDBPyConnection, raw: str) -> bool:
    schema, table = raw.split(".")
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                            [schema, table]).fetchone()[0])


def run_staging(con: duckdb.DuckDBPyConnection, spec: StagingSpec, run_id: str | None,
                rebuild: bool = False) -> StagingResult:
    raw, target = _check(spec.raw), _check(spec.target)
    if not raw_exists(con, raw):
        return StagingResult(spec.name, 0, 0, 0, {})
    row = con.execute("SELECT last_seq FROM ops.stage_progress WHERE stage = ?", [spec.name]).fetchone()
    last_seq = -1 if rebuild or row is None else row[0]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_delta AS SELECT * FROM {raw} WHERE load_seq > {int(last_seq)}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS {spec.sql}", spec.params or None)
        processed, max_seq = con.execute("SELECT count(*), max(load_seq) FROM raw_delta").fetchone()
        target_cols = [r[0] for r in con.execute(f"DESCRIBE {target}").fetchall()]
        cols = ", ".join(target_cols)
        scope = f" AND ({spec.delete_scope})" if spec.delete_scope else ""
        if rebuild:
            con.execute(f"DELETE FROM {target} WHERE TRUE{scope}", spec.params if scope else None)
        else:
            if spec.owner_column and spec.owner_expr:
                con.execute(f"DELETE FROM {target} WHERE {spec.owner_column} IN "
                            f"(SELECT {spec.owner_expr} FROM raw_delta){scope}", spec.params or None)
            con.execute(f"DELETE FROM {target} WHERE {spec.key} IN (SELECT {spec.key} FROM staged WHERE {spec.key} IS NOT NULL){scope}",
                        spec.params if scope else None)
        con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM staged WHERE quarantine_reason IS NULL "
                    f"QUALIFY row_number() OVER (PARTITION BY {spec.key} ORDER BY load_seq DESC) = 1")
        staged = con.execute("SELECT count(*) FROM staged WHERE quarantine_reason IS NULL").fetchone()[0]
        _update_quarantine(con, spec, run_id)
        reasons = dict(con.execute("SELECT quarantine_reason, count(*) FROM staged WHERE quarantine_reason IS NOT NULL "
                                   "GROUP BY 1 ORDER BY 1").fetchall())
        if max_seq is not None:
            con.execute("""INSERT INTO ops.stage_progress VALUES (?, ?, now())
                           ON CONFLICT (stage) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at""",
                        [spec.name, max_seq])
        con.execute("DROP TABLE staged")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return StagingResult(spec.name, processed, staged, sum(reasons.values()), reasons)


def _update_quarantine(con: duckdb.DuckDBPyConnection, spec: StagingSpec, run_id: str | None) -> None:
    """Resolve quarantine rows superseded by a newer version of their record, then add the new bad rows."""
    con.execute("""UPDATE audit.quarantine q SET resolved_at = now()
                   WHERE q.source = ? AND q.entity = ? AND q.resolved_at IS NULL
                     AND q.source_id IN (SELECT CAST(source_id AS VARCHAR) FROM staged)
                     AND NOT EXISTS (SELECT 1 FROM staged s WHERE CAST(s.source_id AS VARCHAR) = q.source_id
                                     AND s.quarantine_reason = q.reason AND hash(s.raw_payload) = q.payload_hash)""",
                [spec.source, spec.entity])
    con.execute("""INSERT INTO audit.quarantine (source, entity, source_id, reason, payload, first_seen_at, run_id, detail, payload_hash)
                   SELECT ?, ?, CAST(s.source_id AS VARCHAR), s.quarantine_reason, s.raw_payload, now(), ?, s.quarantine_detail,
                          hash(s.raw_payload)
                   FROM staged s WHERE s.quarantine_reason IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM audit.quarantine q WHERE q.source = ? AND q.entity = ? AND q.resolved_at IS NULL
                                   AND q.reason = s.quarantine_reason AND q.payload_hash = hash(s.raw_payload))""",
                [spec.source, spec.entity, run_id, spec.source, spec.entity])
