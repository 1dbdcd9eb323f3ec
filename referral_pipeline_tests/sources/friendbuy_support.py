"""Shared helpers for the Friendbuy source tests: a small fixture world, a simulator serving it,
a client pointed at it, and one-call extraction of every export into DuckDB."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import duckdb
import orjson

from referral_pipeline.clients.friendbuy import FriendbuyClient
from referral_pipeline.extract.base import ExtractResult, extract
from referral_pipeline.extract.friendbuy import REPORTS, FriendbuyExtractor
from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.core.stamps import fmt_iso_millis_z
from referral_pipeline.sandbox.friendbuy import FriendbuySimulator
from referral_pipeline.sandbox.testing import serve_in_thread
from referral_pipeline.sources.friendbuy import staging_specs
from referral_pipeline.transform.staging.runner import ensure_staging_schema, run_staging
from referral_pipeline.warehouse.schema import ensure_schema

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
OVERLAP = timedelta(hours=1)
CHANNELS = ("email", "facebook", "sms", "purl")
# raw entity -> simulator collection (= export path)
COLLECTION = {entity: path for entity, (path, _) in REPORTS.items()}


def at(minutes: float) -> str:
    """A createdOn ``minutes`` after T0, as MAPI writes it (ms and Z)."""
    return fmt_iso_millis_z(T0 + timedelta(minutes=minutes))


def advocate(i: int) -> dict:
    n = i % 5
    return {"advocateCustomerId": f"adv-{n}", "advocateEmail": f"Advocate{n}@Example.com", "advocateName": f"Ada {n}"}


def campaign() -> dict:
    return {"campaignId": "camp-us", "campaignName": "US referral"}


def share(i: int, minutes: float, **over) -> dict:
    return {**advocate(i), "channel": CHANNELS[i % 4], "referralCode": f"code{i % 5}", **campaign(),
            "createdOn": at(minutes), "userAgent": "Mozilla/5.0 (share)", "ipAddress": f"10.0.0.{i}", **over}


def click(i: int, minutes: float, **over) -> dict:
    return {**advocate(i), "channel": CHANNELS[i % 4], "referralCode": f"code{i % 5}", **campaign(),
            "createdOn": at(minutes), "userAgent": "Mozilla/5.0 (click)", "ipAddress": f"10.1.0.{i}",
            "destinationUrl": f"https://shop.example/?fbuy={i}", **over}


def sign_up(i: int, minutes: float, **over) -> dict:
    return {"customerId": f"friend-{i}", "email": f"friend{i}@example.com", "name": f"Fred {i}", **campaign(),
            "createdOn": at(minutes), "userAgent": "Mozilla/5.0 (signup)", "ipAddress": f"10.2.0.{i}",
            **advocate(i), "newCustomer": True, "referralCode": f"code{i % 5}", "channel": CHANNELS[i % 4], **over}


def purchase(i: int, minutes: float, **over) -> dict:
    return {"customerId": f"friend-{i}", "email": f"friend{i}@example.com", "name": f"Fred {i}", **campaign(),
            "createdOn": at(minutes), "ipAddress": f"10.3.0.{i}", **advocate(i), "newCustomer": True,
            "referralCode": f"code{i % 5}", "amount": 50 + i, "couponCode": f"fri-{i}",
            "products": [{"sku": f"sku-{i}", "name": "Thing", "quantity": 1, "price": 50 + i}],
            "orderId": f"sf:ord-{i}", **over}


def advocate_reward(i: int, minutes: float, **over) -> dict:
    return {"createdOn": at(minutes), "rewardType": "Account Credit", "rewardAmount": 20, "trigger": "purchase",
            **advocate(i), "referralCode": f"code{i % 5}", "channel": CHANNELS[i % 4],
            "friendEmail": f"friend{i}@example.com", "friendName": f"Fred {i}", "friendCustomerId": f"friend-{i}",
            **campaign(), **over}


def friend_incentive(i: int, minutes: float, **over) -> dict:
    return {"createdOn": at(minutes), "incentiveType": "Coupon Code", "incentiveAmount": 10, "couponCode": f"fri-{i}",
            "trigger": "email_capture", **advocate(i), "referralCode": f"code{i % 5}", "channel": CHANNELS[i % 4],
            "friendEmail": f"friend{i}@example.com", "friendName": f"Fred {i}", "friendCustomerId": f"friend-{i}",
            **campaign(), **over}


def widget_view(i: int, minutes: float, **over) -> dict:
    kind = "advocateShare" if i % 2 == 0 else "emailCapture"
    return {"customerId": f"viewer-{i}", "email": f"viewer{i}@example.com", "widgetName": f"{kind} widget",
            **campaign(), "createdOn": at(minutes), "userAgent": "Mozilla/5.0 (view)", "ipAddress": f"10.4.0.{i}",
            "widgetType": kind, **over}


BUILDERS = {"shares": share, "clicks": click, "account_sign_ups": sign_up, "purchases": purchase,
            "distributed_advocate_rewards": advocate_reward, "distributed_friend_incentives": friend_incentive,
            "widget_views": widget_view}


def clean_world(n: int = 12, step_minutes: float = 17) -> dict[str, list[dict]]:
    """``n`` well-formed rows per export, ``step_minutes`` apart, each export offset a little."""
    return {entity: [build(i, i * step_minutes + k) for i in range(n)]
            for k, (entity, build) in enumerate(BUILDERS.items())}


def write_world(root: Path, world: dict[str, list[dict]]) -> Path:
    folder = root / "friendbuy"
    folder.mkdir(parents=True, exist_ok=True)
    for entity, rows in world.items():
        (folder / f"{COLLECTION[entity]}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return root


@contextmanager
def friendbuy_sim(data_root: Path | None, options: dict | None = None, faults: FaultSpec | None = None
                  ) -> Iterator[FriendbuySimulator]:
    config = SystemConfig(options=options or {}, faults=faults or FaultSpec())
    with serve_in_thread(FriendbuySimulator(config, data_root=data_root)) as sim:
        yield sim


def client_for(sim: FriendbuySimulator) -> FriendbuyClient:
    """A client with short backoffs (the retry policy is the production one, only faster)."""
    return FriendbuyClient(sim.base_url, sim.credentials["key"], sim.credentials["secret"],
                           backoff_base=0.01, backoff_cap=0.05, timeout=(2.0, 5.0))


def new_warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_schema(con)
    ensure_staging_schema(con)
    return con


def extract_all(con, client: FriendbuyClient, run_id: str, page_size: int = 1000, **kwargs
                ) -> dict[str, ExtractResult]:
    """Every export into ``raw.fb__<entity>`` (what the seven extraction assets do)."""
    return {entity: extract(con, FriendbuyExtractor(client, "fb", entity, page_size=page_size), run_id,
                            overlap=OVERLAP, **kwargs)
            for entity in REPORTS}


def stage_all(con, run_id: str) -> dict[str, object]:
    return {spec.entity: run_staging(con, spec, run_id) for spec in staging_specs("fb")}


def raw_payloads(con, entity: str) -> list[dict]:
    return [orjson.loads(p) for (p,) in con.execute(f"SELECT payload FROM raw.fb__{entity} ORDER BY pk").fetchall()]


def canonical(rows: list[dict]) -> list[bytes]:
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in rows)


def request_count(sim: FriendbuySimulator, template: str) -> int:
    return sim.request_counts.get(template, 0)
