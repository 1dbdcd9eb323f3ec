"""The Dagster code location: ``referral_pipeline.definitions:defs``.

Source instances come from the programs file (``REFERRAL_CONFIG``, default
``data/programs.yaml``); every instance gets an API resource ``api_<id>`` built from its env-var
prefix, one extraction asset per entity, and feeds the staging assets.
"""
from __future__ import annotations

from dagster import Definitions, in_process_executor

from .assets.analyst import REPORT_KEY, build_analyst_assets
from .assets.checks import build_quality_checks
from .assets.extract import build_extract_asset, raw_key
from .assets.identity import build_identity_assets
from .assets.referrals import build_referral_assets
from .assets.reports import build_report_assets
from .assets.staging import build_staging_assets
from .assets.sync import build_sync_assets, sync_targets
from .config.programs import load_programs
from .jobs import build_jobs, build_schedules
from .resources import config_path, settings_resource, warehouse_resource
from .sources import plugin


def source_instances(programs):
    for instance in programs.sources:
        yield plugin(instance.type), instance
    for instance in programs.friendbuy_instances():
        yield plugin("friendbuy"), instance


def build_definitions(programs_path: str | None = None) -> Definitions:
    programs = load_programs(programs_path or config_path())
    assets, resources, specs, nightly_only = [], {}, [], []
    for source_plugin, instance in source_instances(programs):
        resources[f"api_{instance.id}"] = source_plugin.make_resource(instance.prefix)
        for entity in source_plugin.entities:
            assets.append(build_extract_asset(source_plugin, instance, entity))
            if entity.nightly_only:
                nightly_only.append(raw_key(instance.id, entity.entity))
        specs.extend((spec, instance.id) for spec in source_plugin.staging_specs(instance.id))
    assets.extend(build_staging_assets(specs))
    # --- identity stage (group identity): identity/customer_map, analytics/orders, analytics/customers
    assets.extend(build_identity_assets())
    # --- end identity stage
    # --- referrals (attribution, promo codes, fraud, rewards + ledger) and reports (funnel, reconciliation)
    assets.extend(build_referral_assets(programs))
    report_assets = build_report_assets()
    assets.extend(report_assets)
    nightly_only.extend(a.key for a in report_assets)   # product §9: reconciliation and reports are nightly
    # --- end referrals and reports
    # --- sync (pushes and write-backs): after the transforms, gated by their blocking checks
    targets = sync_targets(programs)
    for target in targets:   # destinations that are not also sources bring their own resource
        if target.make_resource is not None and target.resource_key not in resources:
            resources[target.resource_key] = target.make_resource()
    assets.extend(build_sync_assets(programs, targets))
    # --- end sync
    # --- data quality + analysts' report/published copy: keep this block last, right before the jobs
    # (the checks attach to the assets collected above; the published copy depends on all of them).
    assets.extend(build_analyst_assets(assets))
    nightly_only.append(REPORT_KEY)
    asset_checks = build_quality_checks(assets)
    # --- end data quality block
    hourly, nightly = build_jobs(nightly_only)
    return Definitions(
        assets=assets,
        asset_checks=asset_checks,
        jobs=[hourly, nightly],
        schedules=build_schedules(hourly, nightly),
        resources={"duckdb": warehouse_resource(), "settings": settings_resource(), **resources},
        executor=in_process_executor,
    )


defs = build_definitions()
