"""Dagster resources shared by every stage: the DuckDB warehouse and the run settings.

API resources live with their clients (``referral_pipeline.clients.*``); each source or
destination instance gets one, keyed ``api_<instance id>``, built from its env-var prefix.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource

from .config.programs import Programs, load_programs

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = "data/programs.yaml"
DEFAULT_DUCKDB = "data/referral.duckdb"
DEFAULT_EXTRACT_MEMORY_LIMIT = "512MB"
DEFAULT_EXTRACT_CHECKPOINT_THRESHOLD = "256MB"


def config_path() -> str:
    """``REFERRAL_CONFIG``, else ``data/programs.yaml`` (relative to the working directory, then the repo)."""
    path = os.environ.get("REFERRAL_CONFIG") or DEFAULT_CONFIG
    if not Path(path).is_absolute() and not Path(path).exists() and (REPO_ROOT / path).exists():
        return str(REPO_ROOT / path)
    return path


def duckdb_path() -> str:
    path = os.environ.get("REFERRAL_DUCKDB_PATH") or DEFAULT_DUCKDB
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return path


class PipelineSettings(ConfigurableResource):
    """Run-wide settings: the programs file and the run's ``as_of`` (default: now)."""

    config_path: str = DEFAULT_CONFIG
    as_of: str | None = None

    def programs(self) -> Programs:
        return load_programs(self.config_path)

    def as_of_datetime(self) -> datetime:
        if not self.as_of:
            return datetime.now(timezone.utc)
        dt = datetime.fromisoformat(self.as_of.replace("Z", "+00:00"))
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def extract_memory_limit() -> str:
    """DuckDB ``memory_limit`` of the extraction assets' connections: ``REFERRAL_EXTRACT_MEMORY_LIMIT``
    (a DuckDB size such as ``512MB`` or ``1GB``), default 512MB. The transforms keep DuckDB's default."""
    return os.environ.get("REFERRAL_EXTRACT_MEMORY_LIMIT") or DEFAULT_EXTRACT_MEMORY_LIMIT


def extract_checkpoint_threshold() -> str:
    """DuckDB ``checkpoint_threshold`` of the extraction assets' connections:
    ``REFERRAL_EXTRACT_CHECKPOINT_THRESHOLD``, default 256MB (with DuckDB's 16MB nearly every
    commit of 5,000 commercetools orders, ~20 MB, was followed by a checkpoint: ~15 s of a 33 s load)."""
    return os.environ.get("REFERRAL_EXTRACT_CHECKPOINT_THRESHOLD") or DEFAULT_EXTRACT_CHECKPOINT_THRESHOLD


def warehouse_resource() -> DuckDBResource:
    return DuckDBResource(database=duckdb_path())


def settings_resource() -> PipelineSettings:
    return PipelineSettings(config_path=config_path(), as_of=os.environ.get("REFERRAL_AS_OF") or None)
