"""Order planning: every order of one chunk of people, source-neutral, as columns.

An order row knows its person, source, times, status outcome, money (minor units), codes,
IP/user agent and which referral it belongs to (``kind``: ordinary, a friend's first order, a
friend's later order, or a planted extra order). Lines are a separate frame. Renderers turn
these into Salesforce, commercetools and BigCommerce records; ids are assigned per source in
creation-time order from counters that run across chunks.

Money model (all sources): ``subtotal`` = sum of lines before discount; ``discount`` from one
coupon (fixed incentive/reward amounts, percentage promotions); ``tax`` = market rate x
(subtotal - discount); ``shipping`` unless the subtotal reaches the free-shipping threshold.
A full refund returns everything paid; a partial refund returns one unit of the last line
(with its tax). Referral orders (friends' first orders and planted extra orders, except the
planted cheap ones) are topped up so their net value stays above the market's
``min_order_value`` even after a partial refund.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from . import ids
from .catalog import Catalog
from .frame import Frame
from .fraud import CURRENCY_CODES
from .people import MOBILE_IP_BASE, MOBILE_IP_SPAN, USER_AGENTS, People
from .promo import STORE_PROMOS, Promotions
from .referrals import (OUTCOME_CANCELLED, OUTCOME_NORMAL, OUTCOME_PARTIAL, OUTCOME_REFUNDED, SIGNAL_CODE,
                        SIGNAL_COUPON, Referrals)
from .settings import BC, END_MS, MARKETS, MS_PER_DAY, MS_PER_HOUR, SF, START_MS

KIND_ORDINARY, KIND_FIRST, KIND_LATER, KIND_EXTRA = 0, 1, 2, 3
CHANNELS = ("web", "mobile_app", "call_center")
MIN_GAP_MS = MS_PER_DAY          # a person's orders are at least a day apart
LATER_AFTER_MS = 31 * MS_PER_DAY  # a friend's later orders start after the attribution window
OUTCOME_P = (0.80, 0.06, 0.04, 0.05, 0.04, 0.01)  # normal, cancelled, refunded, partial, open, declined
PROMO_RATE = 0.05


@dataclass
class Counters:
    """Running per-source sequence numbers (continue across chunks)."""

    sf_order: int = 0
    sf_item: int = 0
    ct_order: int = 0
    ct_line: int = 0
    bc_order: int = 0
    bc_product: int = 0
    bc_refund: int = 0


@dataclass
class World:
    """Everything the order planner and the renderers read."""

    seed: int
    people: People
    refs: Referrals
    promos: Promotions
    catalog: Catalog
    friend_of_pid: np.ndarray = field(default=None)  # converting friend row per pid, or -1
    busy: np.ndarray = field(default=None)           # people in referral activity (not for malformed)
    malformed_people: np.ndarray = field(default=None)  # people with a planted malformed customer record

    def __post_init__(self):
        f = self.refs.friends
        self.friend_of_pid = np.full(self.people.n, -1, dtype=np.int64)
        conv = np.flatnonzero(f["converts"])
        self.friend_of_pid[f["pid"][conv]] = conv
        self.busy = np.zeros(self.people.n, dtype=bool)
        self.busy[f["pid"]] = True
        self.busy[self.refs.shares["advocate"]] = True
        self.busy[self.refs.extra_orders["pid"]] = True
        self.malformed_people = np.zeros(self.people.n, dtype=bool)


def _spread_times(rng, pid, lo, hi, count):
    """``count`` order times per row-group in [lo, hi), at least MIN_GAP_MS apart (sorted)."""
    allowed = np.maximum((hi - lo) // MIN_GAP_MS, 0) + 1
    count = np.minimum(count, np.where(hi > lo, allowed, 0))
    rows = np.repeat(np.arange(len(pid)), count)
    if not len(rows):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    start = np.cumsum(count) - count
    j = np.arange(len(rows)) - start[rows]
    u = rng.random(len(rows))
    u_sorted = u[np.lexsort((u, rows))]
    k = count[rows]
    span = hi[rows] - lo[rows] - (k - 1) * MIN_GAP_MS
    times = lo[rows] + j * MIN_GAP_MS + (u_sorted * span).astype(np.int64)
    return pid[rows], times


def _base_orders(rng, world: World, pids: np.ndarray) -> Frame:
    p, f = world.people, world.refs.friends
    friend = world.friend_of_pid[pids]
    is_friend = friend >= 0
    # ordinary people
    ordinary = pids[~is_friend]
    lo = np.maximum(p.created_ms[ordinary], START_MS) + MS_PER_HOUR
    o_pid, o_time = _spread_times(rng, ordinary, lo, np.full(len(ordinary), END_MS - MS_PER_HOUR), p.n_orders[ordinary])
    # friends: first order fixed by the referral plan, later ones after the attribution window
    fp = pids[is_friend]
    frow = friend[is_friend]
    later_lo = f["order_ms"][frow] + LATER_AFTER_MS
    l_pid, l_time = _spread_times(rng, fp, later_lo, np.full(len(fp), END_MS - MS_PER_HOUR), p.n_orders[fp] - 1)
    extra = world.refs.extra_orders
    erows = np.flatnonzero((extra["pid"] >= pids[0]) & (extra["pid"] <= pids[-1])) if len(pids) else np.zeros(0, int)
    return Frame(
        pid=np.concatenate([o_pid, fp, l_pid, extra["pid"][erows]]).astype(np.int64),
        created_ms=np.concatenate([o_time, f["order_ms"][frow], l_time, extra["created_ms"][erows]]).astype(np.int64),
        kind=np.concatenate([np.full(len(o_pid), KIND_ORDINARY), np.full(len(fp), KIND_FIRST),
                             np.full(len(l_pid), KIND_LATER), np.full(len(erows), KIND_EXTRA)]).astype(np.int8),
        friend=np.concatenate([np.full(len(o_pid), -1), frow, world.friend_of_pid[l_pid],
                               np.full(len(erows), -1)]).astype(np.int64),
        extra=np.concatenate([np.full(len(o_pid) + len(fp) + len(l_pid), -1), erows]).astype(np.int64),
    )


def _sources(rng, world: World, o: Frame) -> np.ndarray:
    p = world.people
    member = p.in_source[o["pid"]]
    cum = np.cumsum(member, axis=1)
    pick = (rng.random(len(o)) * cum[:, -1]).astype(np.int64)
    source = (cum <= pick[:, None]).sum(axis=1)
    fr = o["friend"] >= 0
    source[fr] = world.refs.friends["source"][o["friend"][fr]]
    ex = o["extra"] >= 0
    source[ex] = world.refs.extra_orders["source"][o["extra"][ex]]
    return source.astype(np.int8)


def _lines(rng, world: World, o: Frame) -> Frame:
    cat = world.catalog
    n_lines = rng.choice([1, 2, 3, 4], size=len(o), p=[0.45, 0.3, 0.15, 0.1])
    n_lines[o["cheap"]] = 1
    order = np.repeat(np.arange(len(o)), n_lines)
    product = rng.choice(cat.n, size=len(order), p=cat.weight)
    qty = rng.choice([1, 2, 3], size=len(order), p=[0.8, 0.15, 0.05])
    cheap = o["cheap"][order]
    product[cheap] = rng.choice(cat.cheap, size=int(cheap.sum()))
    qty[cheap] = 1
    unit = np.zeros(len(order), dtype=np.int64)
    for ci, code in enumerate(CURRENCY_CODES):
        sel = o["currency"][order] == ci
        unit[sel] = cat.price[code][product[sel]]
    start = np.cumsum(n_lines) - n_lines
    return Frame(order=order, line_no=np.arange(len(order)) - start[order], product=product,
                 qty=qty.astype(np.int64), unit=unit)


def _coupons(rng, world: World, o: Frame) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Coupon code text ("" for none), discount kind (0 none, 1 fixed incentive, 2 percentage
    promotion) and the promotion's percentage."""
    f = world.refs.friends
    n = len(o)
    friend_code = np.full(n, -1, dtype=np.int64)  # friend row whose incentive code is used
    first = (o["kind"] == KIND_FIRST) & (f["signal"][np.maximum(o["friend"], 0)] == SIGNAL_COUPON)
    friend_code[first] = o["friend"][first]
    ex = o["extra"] >= 0
    friend_code[ex] = world.refs.extra_orders["coupon_friend"][o["extra"][ex]]
    use_promo = np.isin(o["kind"], (KIND_ORDINARY, KIND_LATER)) & (rng.random(n) < PROMO_RATE)
    promo = np.where(use_promo, 0, -1)  # WELCOME10 unless a seasonal promotion is picked
    seasonal = use_promo & (rng.random(n) < 0.6)
    for pi, (_, _, valid_from, valid_until) in enumerate(STORE_PROMOS[1:], start=1):
        valid = (o["created_ms"] >= valid_from) & ((valid_until < 0) | (o["created_ms"] <= valid_until))
        promo[seasonal & valid] = pi
    codes = pa.concat_arrays([world.promos.friend_code, pa.array([c for c, *_ in STORE_PROMOS] + [""], pa.string())])
    n_friend = len(world.promos.friend_code)
    pick = np.full(n, len(codes) - 1, dtype=np.int64)
    pick[friend_code >= 0] = friend_code[friend_code >= 0]
    pick[promo >= 0] = n_friend + promo[promo >= 0]
    kind = np.select([promo >= 0, friend_code >= 0], [2, 1], 0).astype(np.int8)
    pct = np.where(promo >= 0, np.array([pct for _, pct, _, _ in STORE_PROMOS])[np.maximum(promo, 0)], 0)
    return ids.take(codes, pick), kind, pct


def _referral_codes(world: World, o: Frame) -> pa.Array:
    f = world.refs.friends
    share = np.full(len(o), -1, dtype=np.int64)
    fr = np.maximum(o["friend"], 0)
    first = (o["kind"] == KIND_FIRST) & (f["signal"][fr] == SIGNAL_CODE) & (o["source"] != BC)
    share[first] = f["share"][fr[first]]
    ex = o["extra"] >= 0
    share[ex] = world.refs.extra_orders["code_share"][o["extra"][ex]]
    codes = pa.concat_arrays([world.refs.shares["code"], pa.array([""], pa.string())])
    return ids.take(codes, np.where(share >= 0, share, len(codes) - 1))


def _outcomes(rng, world: World, o: Frame) -> np.ndarray:
    outcome = rng.choice(6, size=len(o), p=OUTCOME_P)
    first = o["kind"] == KIND_FIRST
    outcome[first] = world.refs.friends["outcome"][o["friend"][first]]
    outcome[o["kind"] == KIND_EXTRA] = OUTCOME_NORMAL
    return outcome.astype(np.int8)


def _money(world: World, o: Frame, lines: Frame, discount_kind, pct) -> None:
    """Subtotal, discount, tax, shipping and refunds; tops up clean friends' first orders."""
    market = o["market"]
    incentive = np.array([m.incentive_amount * 100 for m in MARKETS])[market]
    line_total = lines["qty"] * lines["unit"]
    subtotal = np.bincount(lines["order"], weights=line_total, minlength=len(o)).astype(np.int64)
    last_line = np.cumsum(np.bincount(lines["order"], minlength=len(o))) - 1
    last_unit = lines["unit"][last_line]
    discount = np.where(discount_kind == 1, np.minimum(incentive, subtotal), 0)
    discount = np.where(discount_kind == 2, (subtotal * pct) // 100, discount)
    referral = np.isin(o["kind"], (KIND_FIRST, KIND_EXTRA)) & ~o["cheap"]  # only planted cheap orders stay small
    minimum = np.array([m.min_order_value * 100 for m in MARKETS])[market] + 1500
    need = minimum + discount + np.where(o["outcome"] == OUTCOME_PARTIAL, last_unit + (last_unit // 4), 0)
    short = np.flatnonzero(referral & (subtotal < need))
    if len(short):
        first_line = last_line[short] - np.bincount(lines["order"], minlength=len(o))[short] + 1
        add = -(-(need[short] - subtotal[short]) // lines["unit"][first_line])
        lines["qty"][first_line] += add
        subtotal[short] += add * lines["unit"][first_line]
    rate = np.array([m.tax_rate for m in MARKETS])[market]
    tax = np.round((subtotal - discount) * rate).astype(np.int64)
    ship = np.array([m.shipping_cents for m in MARKETS])[market]
    free = np.array([m.free_shipping_from_cents for m in MARKETS])[market]
    shipping = np.where(subtotal >= free, 0, ship)
    total = subtotal - discount + tax + shipping
    partial = last_unit + np.round(last_unit * rate).astype(np.int64)
    refunded = np.select([o["outcome"] == OUTCOME_REFUNDED, o["outcome"] == OUTCOME_PARTIAL], [total, partial], 0)
    o["subtotal"], o["discount"], o["tax"], o["shipping"], o["total"], o["refunded"] = (
        subtotal, discount.astype(np.int64), tax, shipping.astype(np.int64), total, refunded.astype(np.int64))
    o["last_line_unit"] = last_unit


def _timing(rng, o: Frame) -> None:
    n = len(o)
    settled = o["created_ms"] + rng.integers(5 * 60_000, 3 * MS_PER_DAY, size=n)
    changed = np.isin(o["outcome"], (OUTCOME_CANCELLED, OUTCOME_REFUNDED, OUTCOME_PARTIAL))
    refund = o["created_ms"] + rng.integers(MS_PER_DAY, 20 * MS_PER_DAY, size=n)
    refund = np.minimum(refund, END_MS - 60_000)
    o["refund_ms"] = np.where(changed, np.maximum(refund, o["created_ms"] + 60_000), -1)
    modified = np.where(changed, o["refund_ms"] + rng.integers(0, 600_000, size=n), settled)
    o["modified_ms"] = np.minimum(np.maximum(modified, o["created_ms"]), END_MS)


def _network(rng, world: World, o: Frame) -> None:
    p, f = world.people, world.refs.friends
    n = len(o)
    mobile = (MOBILE_IP_BASE + rng.integers(1, MOBILE_IP_SPAN, size=n)).astype(np.uint32)
    ip = np.where(rng.random(n) < 0.8, p.home_ip[o["pid"]], mobile)
    referral = o["kind"] == KIND_FIRST
    ip[referral] = f["order_ip"][o["friend"][referral]]
    ex = o["extra"] >= 0
    ip[ex] = world.refs.extra_orders["ip"][o["extra"][ex]]
    o["ip"] = ip.astype(np.uint32)
    ua = np.where(rng.random(n) < 0.85, p.user_agent[o["pid"]], rng.integers(0, len(USER_AGENTS), size=n))
    ua[referral] = f["ua"][o["friend"][referral]]
    o["ua"] = ua.astype(np.int16)
    channel = rng.choice(len(CHANNELS), size=n, p=[0.7, 0.25, 0.05])
    channel[referral & (channel == 2)] = 0
    o["channel"] = channel.astype(np.int8)
    attribution = referral & f["attribution"][np.maximum(o["friend"], 0)] & (o["source"] != BC)
    o["attribution"] = attribution
    # guest checkouts are identified by email: not for people whose customer record has a bad email
    o["guest"] = ((o["kind"] == KIND_ORDINARY) & (o["source"] != SF) & ~world.malformed_people[o["pid"]]
                  & (rng.random(n) < 0.03))


def plan_chunk(world: World, chunk: int, lo: int, hi: int) -> tuple[Frame, Frame]:
    """Orders and lines of people ``lo..hi-1``, sorted by (source, creation time)."""
    rng = ids.stream(world.seed, "orders", chunk)
    f = world.refs.friends
    pids = np.arange(lo, hi)
    o = _base_orders(rng, world, pids)
    if not len(o):
        return o, Frame()
    o["source"] = _sources(rng, world, o)
    o["market"] = world.people.market[o["pid"]]
    fr = np.maximum(o["friend"], 0)
    first = o["kind"] == KIND_FIRST
    o["currency"] = np.where(first & (f["currency"][fr] >= 0), f["currency"][fr], o["market"]).astype(np.int8)
    o["cheap"] = first & f["cheap"][fr]
    o["outcome"] = _outcomes(rng, world, o)
    order = np.lexsort((o["pid"], o["created_ms"], o["source"]))
    o = o.take(order)
    lines = _lines(rng, world, o)
    coupon, discount_kind, pct = _coupons(rng, world, o)
    o["coupon"] = coupon
    o["discount_kind"] = discount_kind
    o["referral_code"] = _referral_codes(world, o)
    _money(world, o, lines, discount_kind, pct)
    _timing(rng, o)
    _network(rng, world, o)
    o["bad"] = np.full(len(o), -1, dtype=np.int8)
    return o, lines
