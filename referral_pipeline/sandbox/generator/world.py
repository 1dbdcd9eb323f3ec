"""Builds a whole world: plans people, referrals and planted cases, then writes every system's
fixture files chunk by chunk (bounded memory), the programs file and the manifest."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import bigcommerce, commercetools, friendbuy, ids, salesforce, yotpo
from .catalog import build_catalog
from .common import CustomerIds, install_lookups
from .frame import Frame
from .fraud import plant_fraud, plant_reward_leaks
from .malformed import MalformedPlanner
from .manifest import build_manifest
from .orders import KIND_EXTRA, KIND_FIRST, World, plan_chunk
from .people import build_people, plant_alias_duplicates
from .promo import build_promotions
from .referrals import OUTCOME_NORMAL, OUTCOME_PARTIAL, build_referrals, decide_rewards
from .settings import BC, CT, PROGRAMS_YAML, SANDBOX_YAML, SCALES, SF, SOURCES
from .writer import FixtureWriter

SYSTEM_DIRS = ("salesforce", "commercetools", "bigcommerce", "friendbuy", "yotpo")


def plan_world(seed: int, scale: str) -> tuple[World, list, list, np.ndarray]:
    """People, referral activity, planted fraud/eligibility cases, rewards, aliases and promo codes."""
    spec = SCALES[scale]
    people = build_people(seed, spec.people, spec.orders)
    refs = build_referrals(seed, people, spec.advocate_rate, spec.friend_rate)
    cases = plant_fraud(seed, people, refs)
    decide_rewards(ids.stream(seed, "rewards"), refs.friends, refs.friends["scenario"] != 0)
    leaks = plant_reward_leaks(cases, refs)
    involved = np.zeros(people.n, dtype=bool)
    involved[refs.friends["pid"]] = True
    involved[refs.shares["advocate"]] = True
    involved[refs.extra_orders["pid"]] = True
    aliases = plant_alias_duplicates(ids.stream(seed, "aliases"), people, involved)
    promos = build_promotions(seed, people, refs)
    world = World(seed=seed, people=people, refs=refs, promos=promos, catalog=build_catalog())
    return world, cases, leaks, aliases


class Run:
    """State carried across chunks: id counters, referral-order registry, per-person stats."""

    def __init__(self, world: World, writer: FixtureWriter, scale: str):
        self.world, self.w = world, writer
        self.cids = CustomerIds(world.seed, world.people)
        self.ctids = commercetools.CtIds(world.seed)
        self.ct_codes = commercetools.codes_index(world.promos, self.ctids)
        self.bad = MalformedPlanner(world.seed, every_reason_per_source=scale != "tiny")
        self.counters = Counter()
        self.registry: list[Frame] = []
        self.registry_lines: list[Frame] = []
        n = world.people.n
        self.stats = {"spend": np.zeros(n, np.int64), "purchases": np.zeros(n, np.int64),
                      "last_purchase": np.zeros(n, np.int64)}
        self.coupon_uses: Counter = Counter()
        self.orders_by_source = Counter()
        self.lines_total = 0

    def chunk(self, index: int, lo: int, hi: int) -> None:
        world, w, c = self.world, self.w, self.counters
        pids = np.arange(lo, hi)
        salesforce.write_customers(w, world, self.cids, self.bad, index, pids)
        commercetools.write_customers(w, world, self.cids, self.bad, index, pids)
        bigcommerce.write_customers(w, world, self.cids, self.bad, index, pids)
        o, lines = plan_chunk(world, index, lo, hi)
        if not len(o):
            return
        sf = salesforce.write_orders(w, world, self.cids, self.bad, index, o, lines, c["sf_order"], c["sf_item"])
        ct = commercetools.write_orders(w, world, self.cids, self.ctids, self.ct_codes, self.bad, index, o, lines,
                                        c["ct_order"], c["ct_line"])
        bc = bigcommerce.write_orders(w, world, self.cids, world.promos, self.bad, index, o, lines,
                                      c["bc_order"], c["bc_product"], c["bc_refund"])
        c["sf_order"] += len(sf["rows"]); c["sf_item"] += sf["items"]  # noqa: E702
        c["ct_order"] += len(ct["rows"]); c["ct_line"] += ct["lines"]  # noqa: E702
        c["bc_order"] += len(bc["rows"]); c["bc_product"] += bc["products"]; c["bc_refund"] += bc["refunds"]  # noqa: E702
        self.coupon_uses.update(bc["coupon_uses"])
        for s, res in ((SF, sf), (CT, ct), (BC, bc)):
            self.orders_by_source[SOURCES[s]] += len(res["rows"])
        self.lines_total += len(lines)
        order_id = pa.concat_arrays([sf["id"], ct["id"], pc.cast(pa.array(bc["id"], pa.int64()), pa.string())])
        number = pa.concat_arrays([sf["number"], ct["number"], pc.cast(pa.array(bc["id"], pa.int64()), pa.string())])
        self._register(o, lines, order_id, number)
        self._stats(o)

    def _register(self, o: Frame, lines: Frame, order_id: pa.Array, number: pa.Array) -> None:
        """Keep the referral orders (friends' first orders, planted extra orders) for Friendbuy and the manifest."""
        rows = np.flatnonzero(np.isin(o["kind"], (KIND_FIRST, KIND_EXTRA)))
        offset = sum(len(r) for r in self.registry)
        reg = o.take(rows)
        self.registry.append(Frame(
            pid=reg["pid"], friend=reg["friend"], extra=reg["extra"], source=reg["source"],
            order_id=order_id.take(pa.array(rows)), number=number.take(pa.array(rows)),
            created_ms=reg["created_ms"], net=reg["subtotal"] - reg["discount"], total=reg["total"],
            currency=reg["currency"], coupon=reg["coupon"], ip=reg["ip"], outcome=reg["outcome"],
            refunded=reg["refunded"]))
        position = np.full(len(o), -1, dtype=np.int64)
        position[rows] = offset + np.arange(len(rows))
        sel = np.flatnonzero(position[lines["order"]] >= 0)
        li = lines.take(sel)
        cat = self.world.catalog
        self.registry_lines.append(Frame(reg_row=position[li["order"]], line_no=li["line_no"],
                                         sku=ids.take(cat.sku, li["product"]), name=ids.take(cat.name, li["product"]),
                                         qty=li["qty"], unit=li["unit"]))

    def _stats(self, o: Frame) -> None:
        """Completed USD spend, purchases and last purchase per person (for Yotpo)."""
        good = np.isin(o["outcome"], (OUTCOME_NORMAL, OUTCOME_PARTIAL)) & (o["currency"] == 0)
        pid = o["pid"][good]
        net = (o["subtotal"] - o["discount"] - o["refunded"])[good]
        n = self.world.people.n
        self.stats["spend"] += np.bincount(pid, weights=np.maximum(net, 0), minlength=n).astype(np.int64)
        self.stats["purchases"] += np.bincount(pid, minlength=n)
        np.maximum.at(self.stats["last_purchase"], pid, o["created_ms"][good])

    def finish_global(self) -> tuple[Frame, Frame]:
        world, w = self.world, self.w
        registry = Frame.concat(self.registry)
        registry_lines = Frame.concat(self.registry_lines)
        salesforce.touch_referral_objects(w)
        w.write_rows("commercetools/types.jsonl", [commercetools.order_type(self.ctids)])
        w.write_rows("commercetools/cart-discounts.jsonl", commercetools.cart_discounts(self.ctids))
        commercetools.write_discount_codes(w, world.promos, self.ctids)
        bigcommerce.write_attribute_definitions(w)
        bigcommerce.write_coupons(w, world.promos, self.coupon_uses)
        friendbuy.write_widget_views(w, world, self.cids)
        friendbuy.write_shares(w, world, self.cids)
        friendbuy.write_clicks(w, world, self.cids)
        friendbuy.write_signups(w, world, self.cids)
        friendbuy.write_purchases(w, world, self.cids, registry, registry_lines)
        friendbuy.write_friend_incentives(w, world, self.cids, world.promos)
        friendbuy.write_advocate_rewards(w, world, self.cids, world.promos)
        yotpo.write_reference_data(w)
        yotpo.write_customers(w, world, self.cids, self.stats)
        return registry, registry_lines


def _clear(out_dir: Path) -> None:
    for name in SYSTEM_DIRS + (".parts",):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in ("manifest.json", "programs.yaml", "sandbox.yaml"):
        (out_dir / name).unlink(missing_ok=True)


def generate(scale: str, seed: int, out_dir: Path, invalid_utf8: str = "surrogate", threads: int = 2) -> dict:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    world, cases, leaks, aliases = plan_world(seed, scale)
    writer = FixtureWriter(out_dir, threads=threads, invalid_utf8=invalid_utf8,
                           memory_limit="3GB" if scale == "large" else None)
    install_lookups(writer)
    run = Run(world, writer, scale)
    spec = SCALES[scale]
    for index, lo in enumerate(range(0, spec.people, spec.chunk_people)):
        run.chunk(index, lo, min(spec.people, lo + spec.chunk_people))
    registry, _ = run.finish_global()
    files = writer.finish()
    (out_dir / "programs.yaml").write_text(PROGRAMS_YAML)
    (out_dir / "sandbox.yaml").write_text(SANDBOX_YAML)
    manifest = build_manifest(scale=scale, seed=seed, invalid_utf8=invalid_utf8, world=world, run=run,
                              registry=registry, cases=cases, leaks=leaks, aliases=aliases, files=files)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest
