"""Benchmark of the BigCommerce extraction: N orders (2 line items each, every 20th with a coupon)
and N customers served by the sandbox in its own process (request quota off), extracted into a
DuckDB file with 250 records per page, then staged. Prints records/s, requests per entity and
the peak RSS of this process.

    .venv/bin/python bench/bench_bigcommerce.py [--orders 50000] [--customers 50000] [--coupon-every 20]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referral_pipeline.clients.bigcommerce import BigCommerceClient  # noqa: E402
from referral_pipeline.extract.base import extract  # noqa: E402
from referral_pipeline.extract.bigcommerce import EXTRACTORS  # noqa: E402
from referral_pipeline.sources.bigcommerce import staging_specs  # noqa: E402
from referral_pipeline.transform.staging.runner import ensure_staging_schema, run_staging  # noqa: E402
from referral_pipeline.warehouse.schema import ensure_schema  # noqa: E402
from referral_pipeline_tests.sources.bigcommerce_support import PROGRAMS, customer, order  # noqa: E402

STORE, TOKEN = "sandboxstore", "sandbox-bigcommerce-token"


def wait_for(port: int, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("sandbox did not start")


def write_fixtures(root: Path, orders: int, customers: int, coupon_every: int) -> None:
    folder = root / "bigcommerce"
    folder.mkdir(parents=True)
    with (folder / "orders.jsonl").open("w") as f:
        for k in range(orders):
            f.write(json.dumps(order(10_000 + k, k / 30, customer_id=k % max(customers, 1) + 1,
                                     coupon="FRIEND-X" if coupon_every and k % coupon_every == 0 else None)) + "\n")
    with (folder / "customers.jsonl").open("w") as f:
        for i in range(1, customers + 1):
            f.write(json.dumps(customer(i, i / 30)) + "\n")
    (root / "sandbox.yaml").write_text("bigcommerce: {rate_limit: {requests_per_window: 0}}\n")


def timed_extract(con, client, entity: str):
    started = time.perf_counter()
    result = extract(con, EXTRACTORS[entity](client, "bc", 250), "bench")
    return result, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--coupon-every", type=int, default=20, help="every Nth order has a coupon (0: none)")
    parser.add_argument("--port-base", type=int, default=8890)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-bc-"))
    write_fixtures(tmp, args.orders, args.customers, args.coupon_every)
    port = args.port_base + 3
    server = subprocess.Popen([sys.executable, "-m", "referral_pipeline.sandbox", "serve", "--data", str(tmp),
                               "--systems", "bigcommerce", "--port-base", str(args.port_base),
                               "--env-file", str(tmp / "sandbox.env")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        wait_for(port)
        client = BigCommerceClient(STORE, TOKEN, f"http://127.0.0.1:{port}")
        import duckdb
        con = duckdb.connect(str(tmp / "bench.duckdb"))
        ensure_schema(con)
        ensure_staging_schema(con, PROGRAMS)
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results = {entity: timed_extract(con, client, entity) for entity in ("customers", "orders")}
        extract_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        staged = {s.name: run_staging(con, s, "bench").staged for s in staging_specs("bc")}
        stage_s = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    for entity, (result, seconds) in results.items():
        n = result.counts.fetched
        print(f"extract {entity}: {n} in {seconds:.1f} s = {n / seconds:,.0f} records/s; "
              f"{result.requests['requests']} requests ({result.pages} pages)")
    print(f"staging: {staged} in {stage_s:.1f} s")
    print(f"peak RSS of the pipeline process: {base_rss:.0f} MB before, {extract_rss:.0f} MB after extraction, "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB after staging")
    return 0


if __name__ == "__main__":
    sys.exit(main())
