"""The analysts' read-only copy of the warehouse (product §10): after a run, the DuckDB file is
copied to ``data/published/referral.duckdb`` (next to the live file) and swapped in atomically, so
analysts reading the copy never block a run and never see a half-written file.

The live database is checkpointed first (the WAL folded into the file) and copied byte for byte;
the copy is opened read-only to prove it is readable, made read-only on disk, then renamed over
the previous copy. If the checkpoint is refused (another transaction open in this process), the
copy is written by DuckDB itself instead (``COPY FROM DATABASE``), which is a consistent snapshot
too. No Dagster import.
"""
from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import duckdb


@dataclass
class PublishResult:
    path: str
    bytes: int
    tables: int
    method: str          # "file_copy" | "copy_from_database"


def published_path(database: str | os.PathLike) -> Path:
    """``<dir of the DuckDB file>/published/referral.duckdb``."""
    return Path(database).resolve().parent / "published" / "referral.duckdb"


def report_path(database: str | os.PathLike) -> Path:
    """``<dir of the DuckDB file>/reports/referral_report.html``."""
    return Path(database).resolve().parent / "reports" / "referral_report.html"


def _count_tables(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as ro:
        return ro.execute("SELECT count(*) FROM duckdb_tables() WHERE NOT temporary").fetchall()[0][0]


def publish_copy(con: duckdb.DuckDBPyConnection, database: str | os.PathLike,
                 destination: str | os.PathLike | None = None, *, force_logical: bool = False) -> PublishResult:
    """Copies the database ``con`` is connected to (file ``database``) to ``destination``
    (default ``published_path(database)``), atomically replacing the previous copy."""
    source = Path(database).resolve()
    dest = Path(destination) if destination else published_path(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    method = "file_copy"
    try:
        try:
            if force_logical:
                raise duckdb.TransactionException("logical copy requested")
            con.execute("CHECKPOINT")
            shutil.copyfile(source, tmp)
        except duckdb.Error:
            method = "copy_from_database"
            tmp.unlink(missing_ok=True)
            current = con.execute("SELECT current_database()").fetchall()[0][0]
            con.execute("ATTACH $p AS __published", {"p": str(tmp)})
            try:
                con.execute(f'COPY FROM DATABASE "{current.replace(chr(34), chr(34) * 2)}" TO __published')
            finally:
                con.execute("DETACH __published")
        tables = _count_tables(tmp)            # proves the copy opens read-only
        os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return PublishResult(path=str(dest), bytes=dest.stat().st_size, tables=tables, method=method)
