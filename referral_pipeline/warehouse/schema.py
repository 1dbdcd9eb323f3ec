"""Creates the warehouse schemas and shared tables from ``schema.sql`` (idempotent)."""
from __future__ import annotations

from importlib import resources

import duckdb

SCHEMA_SQL = resources.files(__package__).joinpath("schema.sql").read_text()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA_SQL)
