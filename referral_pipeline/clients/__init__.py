"""One client module per external system, each built on the shared HTTP layer (``referral_pipeline.http``)."""
from __future__ import annotations

import os

from dagster import EnvVar


def bound_env_vars(prefix: str, fields: dict[str, str]) -> dict[str, EnvVar]:
    """``{field: EnvVar("<prefix>_<suffix>")}`` for the variables set now. Secrets stay in the
    environment (resolved at launch, never shown); unset ones keep the resource's defaults, so the
    definitions load on a machine without credentials and ``client()`` names what is missing."""
    return {field: EnvVar(f"{prefix}_{suffix}") for field, suffix in fields.items()
            if os.environ.get(f"{prefix}_{suffix}")}
