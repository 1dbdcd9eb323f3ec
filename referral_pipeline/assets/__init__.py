"""Thin Dagster assets: each wires resources to the plain modules that do the work."""
