"""Source plugins: what the pipeline extracts from each kind of system and how it is staged.

A ``SourcePlugin`` ties together, for one source type, the Dagster resource that builds the API
client (from an env-var prefix), the entities to extract (each an ``Extractor`` factory), and
the staging specs that map its raw tables into the canonical staging tables. Source *instances*
come from the programs file; Friendbuy instances come from the markets' ``friendbuy`` blocks.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..extract.base import Extractor
from ..transform.staging.runner import StagingSpec


@dataclass(frozen=True)
class EntityDef:
    entity: str                                        # raw entity name: raw.<source>__<entity>
    make_extractor: Callable[[Any, Any], Extractor]    # (api client, instance) -> Extractor
    description: str
    nightly_only: bool = False                         # e.g. slowly changing reference data


@dataclass(frozen=True)
class SourcePlugin:
    type: str
    make_resource: Callable[[str], Any]                # env prefix -> ConfigurableResource with .client()
    entities: list[EntityDef]
    staging_specs: Callable[[str], list[StagingSpec]]  # source instance id -> specs
    owners: list[str] = field(default_factory=lambda: ["team:data-engineering"])


PLUGIN_MODULES = {
    "salesforce": "referral_pipeline.sources.salesforce",
    "commercetools": "referral_pipeline.sources.commercetools",
    "bigcommerce": "referral_pipeline.sources.bigcommerce",
    "friendbuy": "referral_pipeline.sources.friendbuy",
}


def plugin(source_type: str) -> SourcePlugin:
    return importlib.import_module(PLUGIN_MODULES[source_type]).PLUGIN
