"""The DuckDB warehouse: schemas and tables (contracts §6), raw landing with cursors, quarantine."""
