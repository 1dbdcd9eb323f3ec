"""Benchmark of the whole extraction (issue #3): the generated world (default ``medium``: 100k
people, ~495k orders) served by the Salesforce, commercetools, BigCommerce and Friendbuy
simulators in their own process with rate limits off, extracted by every source entity the code
location defines (the same ``extract`` call and one ``<Resource>.client()`` per entity, as the
assets do) into a fresh DuckDB file. Then 1% of the records change through ``POST
/_sandbox/records`` and the incremental run is timed.

Prints per source: records, seconds, records/s, requests against the ideal (records ÷ the
largest page size per entity; BigCommerce adds one coupons request per couponed order), token
requests the simulators saw, the simulators' CPU seconds, the load average, and the peak RSS of
this process (the simulators' memory is not counted). ``--duckdb-memory`` and
``--checkpoint-threshold`` set DuckDB's ``memory_limit`` and ``checkpoint_threshold`` (default:
what the extraction assets use, 512MB and 256MB); ``--sources`` runs a subset.

    .venv/bin/python bench/bench_extract.py [--scale medium] [--seed 1] [--duckdb-memory 512MB] [--sources bigcommerce,...]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from referral_pipeline.clients.bigcommerce import MAX_LIMIT as BC_PAGE  # noqa: E402
from referral_pipeline.clients.commercetools import MAX_LIMIT as CT_PAGE  # noqa: E402
from referral_pipeline.clients.friendbuy import MAX_PAGE_SIZE as FB_PAGE  # noqa: E402
from referral_pipeline.clients.salesforce import BULK_MAX_RECORDS, MAX_BATCH_SIZE  # noqa: E402
from referral_pipeline.config.programs import load_programs  # noqa: E402
from referral_pipeline.definitions import source_instances  # noqa: E402
from referral_pipeline.extract.base import extract  # noqa: E402
from referral_pipeline.resources import DEFAULT_EXTRACT_CHECKPOINT_THRESHOLD, DEFAULT_EXTRACT_MEMORY_LIMIT  # noqa: E402
from referral_pipeline.runner import read_env_file  # noqa: E402
from referral_pipeline.sandbox.generator import ensure_generated  # noqa: E402
from referral_pipeline.sandbox.testing import free_port_base  # noqa: E402
from referral_pipeline.warehouse.schema import ensure_schema  # noqa: E402

SYSTEMS = ("salesforce", "commercetools", "bigcommerce", "friendbuy")
NO_LIMITS = {"bigcommerce": {"rate_limit": {"requests_per_window": 0}},
             "salesforce": {"rate_limit": {"daily_api_requests": 100_000_000}}}
TOKEN_PATHS = {"salesforce": "POST /services/oauth2/token", "commercetools": "POST /oauth/token",
               "friendbuy": "POST /v1/authorization"}
# entity -> (simulator, collection, key as the simulator wants it) for the 1% change
CHANGES = {
    ("salesforce", "account"): "Account", ("salesforce", "contact"): "Contact",
    ("salesforce", "order"): "Order", ("salesforce", "order_item"): "OrderItem",
    ("commercetools", "customers"): "customers", ("commercetools", "orders"): "orders",
    ("bigcommerce", "customers"): "customers", ("bigcommerce", "orders"): "orders",
}
FRIENDBUY_COLLECTIONS = {"shares": "shares", "clicks": "clicks", "account_sign_ups": "account-sign-ups",
                         "purchases": "purchases", "widget_views": "widget-views"}


def ideal_requests(source_type: str, entity: str, records: int, bulk_threshold: int) -> int:
    """Pages the entity needs at the largest page size (at least one request)."""
    page = {"commercetools": CT_PAGE, "bigcommerce": BC_PAGE, "friendbuy": FB_PAGE}.get(source_type)
    if source_type == "salesforce":
        page = BULK_MAX_RECORDS if records >= bulk_threshold else MAX_BATCH_SIZE
    return max(1, math.ceil(records / page))


def start_sandbox(root: Path, tmp: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    env_file = tmp / "sandbox.env"
    proc = subprocess.Popen([sys.executable, "-m", "referral_pipeline.sandbox", "serve", "--data", str(root),
                             "--systems", ",".join(SYSTEMS), "--port-base", str(free_port_base()),
                             "--env-file", str(env_file), "--faults", json.dumps(NO_LIMITS)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not env_file.exists():
        if proc.poll() is not None:
            raise SystemExit("sandbox failed to start")
        time.sleep(0.2)
    env = read_env_file(env_file)
    base = {"salesforce": env["SALESFORCE_INSTANCE_URL"], "commercetools": env["CTP_API_URL"],
            "bigcommerce": env["BIGCOMMERCE_API_URL"], "friendbuy": env["FRIENDBUY_MAPI_URL"]}
    for url in base.values():   # up and loaded (the first admin call waits for the data)
        for _ in range(600):
            try:
                requests.get(f"{url}/_sandbox/requests", timeout=600)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
    return proc, {**env, **{f"_BASE_{k}": v for k, v in base.items()}}


def warm_up(env: dict[str, str]) -> None:
    """One small request per big collection: the simulators (re)build their sort indexes lazily,
    on the first read after a change, which a real API does not do. Outside the timed runs."""
    bc = f"{env['BIGCOMMERCE_API_URL']}/stores/{env['BIGCOMMERCE_STORE_HASH']}"
    headers = {"X-Auth-Token": env["BIGCOMMERCE_ACCESS_TOKEN"], "Accept": "application/json"}
    for path in ("v2/orders", "v3/customers"):
        requests.get(f"{bc}/{path}", params={"limit": 1, "sort": "date_modified:asc"}, headers=headers, timeout=600)
    token = requests.post(f"{env['CTP_AUTH_URL']}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(env["CTP_CLIENT_ID"], env["CTP_CLIENT_SECRET"]), timeout=600).json()["access_token"]
    for resource in ("orders", "customers"):
        requests.get(f"{env['CTP_API_URL']}/{env['CTP_PROJECT_KEY']}/{resource}",
                     params=[("limit", "1"), ("sort", "lastModifiedAt asc"), ("sort", "id asc")],
                     headers={"Authorization": f"Bearer {token}"}, timeout=600)


def request_counts(env: dict[str, str]) -> dict[str, dict[str, int]]:
    return {s: requests.get(f"{env['_BASE_' + s]}/_sandbox/requests", timeout=120).json()["request_counts"]
            for s in SYSTEMS}


def cpu_seconds() -> float:
    """User + system CPU of this process (all its threads): the client's own cost, whatever the load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def simulators_cpu_seconds(pid: int) -> float:
    """User + system CPU of the sandbox's simulator processes (children of ``pid``) so far: the
    cost of serving, which shares the machine's cores with the client (Linux ``/proc``; 0 elsewhere)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for child in children:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks   # utime, stime
    return total


def run_all(con: duckdb.DuckDBPyConnection, programs, run_id: str,
            sources: tuple[str, ...] = SYSTEMS, sandbox_pid: int | None = None) -> dict[str, dict]:
    """Every entity of every source instance (of ``sources``), in definition order; per source totals."""
    out: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    for plugin, instance in source_instances(programs):
        if plugin.type not in sources:
            continue
        res = plugin.make_resource(instance.prefix).process_config_and_initialize()
        for entity in plugin.entities:
            started, cpu = time.perf_counter(), cpu_seconds()
            sim_cpu = simulators_cpu_seconds(sandbox_pid) if sandbox_pid else 0.0
            client = res.client()   # one client per asset, as in a run
            result = extract(con, entity.make_extractor(client, instance), run_id,
                             overlap=timedelta(seconds=instance.overlap_seconds))
            seconds = time.perf_counter() - started
            total = out[plugin.type]
            n = result.counts.fetched
            total["records"] += n
            total["seconds"] += seconds
            client_cpu = cpu_seconds() - cpu
            sim_cpu = (simulators_cpu_seconds(sandbox_pid) if sandbox_pid else 0.0) - sim_cpu
            total["cpu"] += client_cpu
            total["sim_cpu"] += sim_cpu
            total["requests"] += result.requests.get("requests", 0)
            total["ideal"] += ideal_requests(plugin.type, entity.entity, n, getattr(instance, "bulk_threshold", 0))
            total["changed"] += result.counts.new + result.counts.updated
            print(f"  {instance.id}.{entity.entity}: {n} in {seconds:.1f}s ({n / seconds:,.0f}/s), "
                  f"{result.requests.get('requests', 0)} requests, new {result.counts.new} "
                  f"updated {result.counts.updated}; CPU client {client_cpu:.1f}s, simulator {sim_cpu:.1f}s", flush=True)
    return out


def change_one_percent(con: duckdb.DuckDBPyConnection, programs, env: dict[str, str],
                       sources: tuple[str, ...] = SYSTEMS) -> int:
    """Touch 1% of each entity's records (new stamp) and append 1% new Friendbuy events."""
    changed = 0
    for plugin, instance in source_instances(programs):
        if plugin.type not in sources:
            continue
        for entity in plugin.entities:
            table = f"raw.{instance.id}__{entity.entity}"
            collection = CHANGES.get((plugin.type, entity.entity)) or FRIENDBUY_COLLECTIONS.get(entity.entity)
            if collection is None or plugin.type not in SYSTEMS:
                continue
            if plugin.type == "friendbuy":
                rows = con.execute(f"SELECT payload FROM {table} WHERE hash(pk) % 100 = 0").fetchall()
                records = [{k: v for k, v in json.loads(p).items() if k not in ("id", "createdOn")} for (p,) in rows]
            else:
                rows = con.execute(f"SELECT pk FROM {table} WHERE hash(pk) % 100 = 0").fetchall()
                key = {"salesforce": "Id", "commercetools": "id", "bigcommerce": "id"}[plugin.type]
                records = [{key: int(pk) if plugin.type == "bigcommerce" else pk} for (pk,) in rows]
            for start in range(0, len(records), 500):
                r = requests.post(f"{env['_BASE_' + plugin.type]}/_sandbox/records",
                                  json={"collection": collection, "records": records[start:start + 500]}, timeout=600)
                r.raise_for_status()
            changed += len(records)
    return changed


def report(label: str, totals: dict[str, dict], tokens: dict[str, int], load: float) -> float:
    print(f"\n{label} (load average {load:.2f} at the end):")
    print(f"  {'source':<14}{'records':>10}{'seconds':>9}{'records/s':>11}{'client CPU s':>14}{'records/CPU s':>15}"
          f"{'sim CPU s':>11}{'requests':>10}{'ideal':>8}{'tokens':>8}")
    wall = 0.0
    for source, t in totals.items():
        wall += t["seconds"]
        rate = t["records"] / t["seconds"] if t["seconds"] else 0
        per_cpu = t["records"] / t["cpu"] if t["cpu"] else 0
        print(f"  {source:<14}{int(t['records']):>10}{t['seconds']:>9.1f}{rate:>11,.0f}{t['cpu']:>14.1f}{per_cpu:>15,.0f}"
              f"{t['sim_cpu']:>11.1f}{int(t['requests']):>10}{int(t['ideal']):>8}{tokens.get(source, 0):>8}")
    return wall


def token_requests(before: dict, after: dict) -> dict[str, int]:
    return {s: after[s].get(path, 0) - before[s].get(path, 0) for s, path in TOKEN_PATHS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duckdb-memory", default=DEFAULT_EXTRACT_MEMORY_LIMIT,
                        help="DuckDB memory_limit ('' = DuckDB's default); default: the extraction assets'")
    parser.add_argument("--checkpoint-threshold", default=DEFAULT_EXTRACT_CHECKPOINT_THRESHOLD,
                        help="DuckDB checkpoint_threshold ('' = DuckDB's 16MB); default: the extraction assets'")
    parser.add_argument("--sources", default=",".join(SYSTEMS), help="comma-separated subset of " + ",".join(SYSTEMS))
    args = parser.parse_args(argv)
    sources = tuple(s for s in args.sources.split(",") if s)
    unknown = set(sources) - set(SYSTEMS)
    if unknown:
        parser.error(f"--sources: unknown {sorted(unknown)}")
    t0 = time.perf_counter()
    # generated in a child process: its memory must not count as the extraction's peak RSS
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from referral_pipeline.sandbox.generator import ensure_generated; "
                    f"ensure_generated({args.scale!r}, {args.seed}, Path({str(ROOT / 'data' / 'bench-cache')!r}))"],
                   cwd=ROOT, check=True)
    root = ensure_generated(args.scale, args.seed, ROOT / "data" / "bench-cache")
    print(f"world {args.scale}/seed {args.seed}: {root} ({time.perf_counter() - t0:.1f}s incl. generation if not cached)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    proc, env = start_sandbox(root, tmp)
    try:
        os.environ.update({k: v for k, v in env.items() if not k.startswith("_BASE_")})
        warm_up(env)
        programs = load_programs(root / "programs.yaml")
        con = duckdb.connect(str(tmp / "bench.duckdb"))
        if args.duckdb_memory:
            con.execute(f"SET memory_limit = '{args.duckdb_memory}'")
        if args.checkpoint_threshold:
            con.execute(f"SET checkpoint_threshold = '{args.checkpoint_threshold}'")
        ensure_schema(con)
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        counts0 = request_counts(env)
        print("full extraction:", flush=True)
        full = run_all(con, programs, "bench-full", sources, proc.pid)
        counts1 = request_counts(env)
        full_s = report("full extraction", full, token_requests(counts0, counts1), os.getloadavg()[0])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        changed = change_one_percent(con, programs, env, sources)
        warm_up(env)
        print(f"\nchanged {changed} records (1% per entity) through POST /_sandbox/records; incremental run:", flush=True)
        counts2 = request_counts(env)
        hourly = run_all(con, programs, "bench-hourly", sources, proc.pid)
        hourly_s = report("incremental run", hourly, token_requests(counts2, request_counts(env)), os.getloadavg()[0])
        con.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    print(f"\nfull {full_s:.1f}s, incremental {hourly_s:.1f}s = {hourly_s / full_s:.1%} of the full run (target < 10%)")
    print(f"peak RSS of the extracting process: {base_rss:.0f} MB before, {peak:.0f} MB after the full run, "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB at the end (target < 1024 MB; "
          f"DuckDB memory_limit {args.duckdb_memory or 'default'}, checkpoint_threshold "
          f"{args.checkpoint_threshold or 'default'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
