"""Jobs and schedules (product §9): ``hourly`` deltas and ``nightly`` full cycle.

Each schedule skips a tick while a run of the same job is queued or in progress; the DuckDB pool
(``dagster.yaml``) keeps runs of different jobs from writing at the same time.
"""
from __future__ import annotations

from dagster import (AssetSelection, DagsterRunStatus, RunRequest, RunsFilter, ScheduleEvaluationContext,
                     SkipReason, define_asset_job, schedule)

IN_PROGRESS = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
               DagsterRunStatus.STARTED]

NIGHTLY_ONLY_TAG = "nightly_only"


def build_jobs(nightly_only_keys):
    everything = AssetSelection.all()
    hourly_selection = everything - AssetSelection.assets(*nightly_only_keys) if nightly_only_keys else everything
    hourly = define_asset_job("hourly", selection=hourly_selection, tags={"referral/job": "hourly"},
                              description="Deltas of all sources, transforms and pushes.")
    nightly = define_asset_job("nightly", selection=everything, tags={"referral/job": "nightly"},
                               description="Hourly plus Friendbuy/Yotpo state pulls, reconciliation, reports and retries.")
    return hourly, nightly


def _skip_if_running(context: ScheduleEvaluationContext, job_name: str):
    running = context.instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=IN_PROGRESS), limit=1)
    if running:
        return SkipReason(f"{job_name} run {running[0].run_id} is still in progress")
    return RunRequest(run_key=None, tags={"referral/scheduled": "true"})


def build_schedules(hourly, nightly):
    @schedule(job=hourly, cron_schedule="15 * * * *", execution_timezone="UTC", name="hourly_schedule")
    def hourly_schedule(context: ScheduleEvaluationContext):
        return _skip_if_running(context, "hourly")

    @schedule(job=nightly, cron_schedule="0 2 * * *", execution_timezone="UTC", name="nightly_schedule")
    def nightly_schedule(context: ScheduleEvaluationContext):
        return _skip_if_running(context, "nightly")

    return [hourly_schedule, nightly_schedule]
