"""Sync benchmark (issue: pushes): the `small` world through the real runner and sandbox processes.

Run 1 pushes everything (full sync), run 2 has no change. Per destination system it reports the
write requests, the achieved request rate at the simulator (writes ÷ the span between the first and
last write), the configured limit, 429s we caused (a 429 the simulator did not inject as a fault),
the Salesforce requests per record, and the duration of the sync steps of both runs (Dagster step
stats) with the no-change / full ratio.

    .venv/bin/python bench/bench_sync.py [--scale small] [--seed 1]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referral_pipeline.sandbox.core.config import SYSTEMS  # noqa: E402
from referral_pipeline.sandbox.generator.cache import ensure_generated  # noqa: E402
from referral_pipeline_tests.e2e.processes import AUTH_PATHS, WRITE_METHODS, sandbox_process, start_run  # noqa: E402

LIMITS = {"yotpo": "200/s (sandbox.yaml)", "friendbuy": "300/s (sandbox.yaml)", "commercetools": "20/s (client default)",
          "bigcommerce": "X-Rate-Limit quota", "salesforce": "daily quota; 4 concurrent"}


def writes_in_log(sandbox, system: str, since: str) -> list[dict]:
    body = requests.get(sandbox.url(system) + "/_sandbox/requests", params={"since": since}, timeout=120).json()
    return [e for e in body["requests"] if e["method"] in WRITE_METHODS
            and not any(a in e["path"] for a in AUTH_PATHS)]


def rate(entries: list[dict]) -> tuple[int, float]:
    if len(entries) < 2:
        return len(entries), 0.0
    times = sorted(datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in entries)
    span = times[-1] - times[0]
    return len(entries), (len(entries) - 1) / span if span > 0 else 0.0


def sync_step_seconds(home: Path) -> list[float]:
    """Seconds spent in the sync steps of each run, oldest run first."""
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        runs = sorted(instance.get_runs(), key=lambda r: instance.get_run_record_by_id(r.run_id).create_timestamp)
        out = []
        for run in runs:
            stats = instance.get_run_step_stats(run.run_id)
            out.append(sum((s.end_time or 0) - (s.start_time or 0) for s in stats if s.step_key.startswith("sync__")))
        return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    world = ensure_generated(args.scale, args.seed, Path("data/bench-cache/generated"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    print(f"world {world}, work dir {tmp}, load {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    with sandbox_process(world, tmp) as sandbox:
        for n in (1, 2):
            since = datetime.utcnow().isoformat(timespec="milliseconds") + "Z"
            t0 = time.perf_counter()
            proc = start_run(sandbox, tmp, world, log_name=f"run{n}.log")
            rc = proc.wait()
            seconds = time.perf_counter() - t0
            if rc != 0:
                print((tmp / f"run{n}.log").read_text()[-3000:])
                return 1
            per_system = {s: writes_in_log(sandbox, s, since) for s in SYSTEMS}
            results.append((seconds, per_system))
    step_seconds = sync_step_seconds(tmp / "dagster_home")
    import duckdb

    with duckdb.connect(str(tmp / "w.duckdb"), read_only=True) as con:
        sf_records = con.execute("SELECT count(*) FROM ops.sync_log WHERE destination = 'salesforce'").fetchall()[0][0]
    (full_s, full), (none_s, none) = results
    print(f"\nrun 1 (full sync) {full_s:.1f} s, run 2 (no change) {none_s:.1f} s; "
          f"sync steps {step_seconds[0]:.1f} s vs {step_seconds[1]:.2f} s "
          f"({100 * step_seconds[1] / step_seconds[0]:.1f}% of the full sync)")
    sf_requests = sum(1 for e in full["salesforce"] if "/composite/" in e["path"] or "/jobs/" in e["path"])
    print(f"Salesforce: {sf_records} record sends in {sf_requests} write requests "
          f"({sf_records / max(sf_requests, 1):.0f} records per request)")
    print(f"{'system':<14} {'writes':>7} {'req/s':>8} {'limit':<28} {'our 429s':>8} {'writes run 2':>12}")
    for system in SYSTEMS:
        count, achieved = rate(full[system])
        ours = sum(1 for e in full[system] if e["status"] == 429 and not e.get("fault"))
        by_template = defaultdict(int)
        for e in full[system]:
            by_template[f"{e['method']} {e['template']}"] += 1
        print(f"{system:<14} {count:>7} {achieved:>8.1f} {LIMITS[system]:<28} {ours:>8} {len(none[system]):>12}")
        for template, k in sorted(by_template.items()):
            print(f"    {template}: {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
