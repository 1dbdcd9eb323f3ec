"""The Dagster assets of one source instance (its extraction assets and the staging assets its
specs feed), as the code location builds them — shared by the per-source asset tests."""
from __future__ import annotations

from referral_pipeline.assets.extract import build_extract_asset
from referral_pipeline.assets.staging import build_staging_assets
from referral_pipeline.sources import SourcePlugin


def instance_assets(plugin: SourcePlugin, instance) -> list:
    extract = [build_extract_asset(plugin, instance, entity) for entity in plugin.entities]
    return extract + build_staging_assets([(spec, instance.id) for spec in plugin.staging_specs(instance.id)])
