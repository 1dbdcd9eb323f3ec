"""Incremental extraction: per-source readers that yield pages of records, and the generic loop
that lands them in DuckDB with their cursor (no Dagster imports here)."""
