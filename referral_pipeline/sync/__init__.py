"""Reverse ETL: push changed records to destinations with exactly-once effects (docs/sync.md).

Plain modules, no Dagster import: ``engine`` (diff, send, record), ``ownership`` (field ownership),
``yotpo`` (Yotpo Loyalty mappers, specs, the loyalty pull).
"""
