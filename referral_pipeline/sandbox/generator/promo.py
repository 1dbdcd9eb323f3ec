"""Promo codes: the codes Friendbuy distributes (friend incentives, advocate rewards), the codes
that exist in the commerce platforms (commercetools discount codes on cart discounts, BigCommerce
v2 coupons), ordinary store promotions, and the planted promo-code problems (product §5.1).

Friendbuy exports codes lower-cased (its code banks are case-insensitive); the platforms hold
them upper-case, and shoppers type them either way, so every comparison must ignore case.
Planted problems are put on codes distributed to prospects, which no order uses, so a problem
never changes attribution: ``missing`` (in no platform), ``inactive``, ``not_single_use``,
``expired`` (before the distribution date), ``wrong_market`` (in another market's store) and
``collision`` (the same code distributed by two campaigns, or equal to a non-referral code).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from . import ids
from .frame import Frame
from .people import People
from .referrals import Referrals
from datetime import datetime, timezone

from .settings import BC, CT, MARKETS, MS_PER_DAY, START_MS, to_ms

PROBLEMS = ("missing", "inactive", "not_single_use", "expired", "wrong_market", "collision")
PROBLEM_RATE = 0.004
CODE_BANK_UPLOADED_MS = START_MS - 15 * MS_PER_DAY
KIND_INCENTIVE, KIND_REWARD, KIND_PROMO, KIND_GOODWILL = 0, 1, 2, 3
KIND_NAMES = ("friend-incentive", "advocate-reward", "promotion", "goodwill")
GOODWILL_PER_STORE = 3


def _ms(y, m, d) -> int:
    return to_ms(datetime(y, m, d, tzinfo=timezone.utc))


# Ordinary store promotions: (code, percent off, valid from, valid until or -1, platforms).
STORE_PROMOS = (
    ("WELCOME10", 10, CODE_BANK_UPLOADED_MS, -1),
    ("SPRING20", 20, _ms(2026, 3, 1), _ms(2026, 6, 30)),
    ("AUTUMN15", 15, _ms(2026, 9, 1), -1),
)


@dataclass
class Promotions:
    incentives: Frame     # distributed friend incentives (Friendbuy rows)
    rewards: Frame        # distributed advocate rewards (Friendbuy rows)
    ct_codes: Frame       # commercetools discount codes
    bc_coupons: Frame     # BigCommerce v2 coupons
    friend_code: pa.Array  # per friend row: the incentive code (upper-case) or ""
    problems: list = field(default_factory=list)

    def ct_code_index(self) -> dict:
        return {c: i for i, c in enumerate(self.ct_codes["code"].to_pylist())}


def _platform_of_friend(people: People, friends: Frame) -> np.ndarray:
    return np.where((friends["market"] == 0) & (friends["source"] == BC), BC, CT).astype(np.int8)


def build_incentives(seed: int, people: People, refs: Referrals) -> Frame:
    f, pr = refs.friends, refs.prospects
    fr = np.flatnonzero(f["incentive"])
    n_f, n_p = len(fr), len(pr)
    idx = np.arange(n_f + n_p)
    code = ids.code36(idx, 7, ids.name_key(f"friend{seed}") * 7919, "FRIEND-")
    return Frame(
        kind=np.concatenate([np.zeros(n_f, np.int8), np.ones(n_p, np.int8)]),
        row=np.concatenate([fr, np.arange(n_p)]).astype(np.int64),
        market=np.concatenate([f["market"][fr], pr["market"]]).astype(np.int8),
        created_ms=np.concatenate([f["incentive_ms"][fr], pr["incentive_ms"]]).astype(np.int64),
        share=np.concatenate([f["share"][fr], pr["share"]]).astype(np.int64),
        platform=np.concatenate([_platform_of_friend(people, f.take(fr)), pr["platform"]]).astype(np.int8),
        store=np.concatenate([f["market"][fr], pr["market"]]).astype(np.int8),
        code=code, problem=np.full(n_f + n_p, -1, np.int8), active=np.ones(n_f + n_p, bool),
        max_uses=np.ones(n_f + n_p, np.int32), valid_until_ms=np.full(n_f + n_p, -1, np.int64),
        in_platform=np.ones(n_f + n_p, bool),
    )


def build_rewards(seed: int, people: People, refs: Referrals) -> Frame:
    f = refs.friends
    rows = np.flatnonzero(f["reward"])
    adv = f["advocate"][rows]
    platform = np.where((f["market"][rows] == 0) & people.in_source[adv, BC] & ~people.in_source[adv, CT], BC, CT)
    return Frame(friend=rows, market=f["market"][rows].astype(np.int8), created_ms=f["reward_ms"][rows],
                 platform=platform.astype(np.int8),
                 code=ids.code36(np.arange(len(rows)), 7, ids.name_key(f"thanks{seed}") * 7919, "THANKS-"))


class ProblemPlanter:
    """Turns some prospects' incentive codes into the planted promo-code problems."""

    def __init__(self, seed: int, incentives: Frame, goodwill: dict):
        self.rng = ids.stream(seed, "promo-problems")
        self.inc = incentives
        self.goodwill = goodwill  # store -> list of goodwill codes
        self.used = self.inc["kind"] == 0  # friends' codes are never planted
        self.problems: list[dict] = []
        self.code_overrides: dict[int, str] = {}

    def pick(self, platform: int | None = None, market: int | None = None) -> int | None:
        ok = ~self.used
        if platform is not None:
            ok &= self.inc["platform"] == platform
        if market is not None:
            ok &= self.inc["market"] == market
        pool = np.flatnonzero(ok)
        if not len(pool):
            return None
        row = int(self.rng.choice(pool))
        self.used[row] = True
        return row

    def record(self, row: int, problem: str, **evidence) -> None:
        self.inc["problem"][row] = PROBLEMS.index(problem)
        self.problems.append({"row": row, "problem": problem, **evidence})

    def plant(self, count: int) -> None:
        for k in range(count):
            for i, problem in enumerate(PROBLEMS):
                getattr(self, f"_{problem}")(k, (CT, BC)[(k + i) % 2])

    def _missing(self, k, platform):
        row = self.pick(platform)
        if row is not None:
            self.inc["in_platform"][row] = False
            self.record(row, "missing")

    def _inactive(self, k, platform):
        row = self.pick(platform)
        if row is not None:
            self.inc["active"][row] = False
            self.record(row, "inactive")

    def _not_single_use(self, k, platform):
        row = self.pick(platform)
        if row is not None:
            self.inc["max_uses"][row] = (5, 0)[k % 2]  # 0: unlimited (ct: no maxApplications)
            self.record(row, "not_single_use", max_uses=int(self.inc["max_uses"][row]))

    def _expired(self, k, platform):
        row = self.pick(platform)
        if row is not None:
            self.inc["valid_until_ms"][row] = int(self.inc["created_ms"][row]) - 3 * MS_PER_DAY
            self.record(row, "expired")

    def _wrong_market(self, k, platform):
        row = self.pick(CT)
        if row is not None:
            market = int(self.inc["market"][row])
            self.inc["store"][row] = (market + 1 + k % 2) % len(MARKETS)
            self.record(row, "wrong_market", store=MARKETS[int(self.inc["store"][row])].ct_store)

    def _collision(self, k, platform):
        self._collision_two_campaigns()
        self._collision_non_referral(k)

    def _collision_two_campaigns(self):
        """The same code distributed by two campaigns (markets); the platform holds it once."""
        first = self.pick()
        if first is None:
            return
        pool = np.flatnonzero(~self.used & (self.inc["market"] != self.inc["market"][first]))
        if not len(pool):
            return
        second = int(self.rng.choice(pool))
        self.used[second] = True
        self.inc["in_platform"][second] = False
        self.code_overrides[second] = self.inc["code"][first].as_py()
        self.record(first, "collision", kind="two_campaigns", other_row=second)
        self.record(second, "collision", kind="two_campaigns", other_row=first)

    def _collision_non_referral(self, k):
        """A distributed code equal to a non-referral (goodwill) code of the store."""
        row = self.pick(CT)
        if row is None:
            return
        codes = self.goodwill.get(MARKETS[int(self.inc["market"][row])].ct_store) or []
        if not codes:
            return
        self.inc["in_platform"][row] = False
        self.code_overrides[row] = codes[k % len(codes)]
        self.record(row, "collision", kind="non_referral_promotion")

    def apply_overrides(self) -> None:
        if not self.code_overrides:
            return
        rows = np.array(list(self.code_overrides), dtype=np.int64)
        index = np.arange(len(self.inc))
        index[rows] = len(self.inc) + np.arange(len(rows))
        codes = pa.concat_arrays([self.inc["code"], pa.array(list(self.code_overrides.values()), pa.string())])
        self.inc["code"] = codes.take(pa.array(index))


def goodwill_codes(seed: int) -> dict[str, list[str]]:
    codes = ids.code36(np.arange(GOODWILL_PER_STORE * len(MARKETS)), 6, ids.name_key(f"sorry{seed}"), "SORRY-").to_pylist()
    return {m.ct_store: codes[i * GOODWILL_PER_STORE:(i + 1) * GOODWILL_PER_STORE] for i, m in enumerate(MARKETS)}


def _ct_codes(seed: int, inc: Frame, rewards: Frame, goodwill: dict) -> Frame:
    """All commercetools discount codes: incentives and rewards held by ct, store promotions
    (valid in every store: ``store`` -1), goodwill codes."""
    sel = np.flatnonzero((inc["platform"] == CT) & inc["in_platform"])
    rsel = np.flatnonzero(rewards["platform"] == CT)
    promo_rows = [(code, pct, vf, vu, -1) for (code, pct, vf, vu) in STORE_PROMOS]  # all stores
    promo_codes = [code for code, *_ in promo_rows]
    good = [(c, store) for store, cs in goodwill.items() for c in cs]
    store_idx = {m.ct_store: i for i, m in enumerate(MARKETS)}
    n_p, n_g = len(promo_rows), len(good)
    frame = Frame(
        code=pa.concat_arrays([ids.take(inc["code"], sel), ids.take(rewards["code"], rsel),
                               pa.array(promo_codes, pa.string()), pa.array([c for c, _ in good], pa.string())]),
        kind=np.concatenate([np.full(len(sel), KIND_INCENTIVE), np.full(len(rsel), KIND_REWARD),
                             np.full(n_p, KIND_PROMO), np.full(n_g, KIND_GOODWILL)]).astype(np.int8),
        store=np.concatenate([inc["store"][sel], rewards["market"][rsel], [mi for *_, mi in promo_rows],
                              [store_idx[s] for _, s in good]]).astype(np.int8),
        amount=np.concatenate([[MARKETS[m].incentive_amount * 100 for m in inc["market"][sel]],
                               [MARKETS[m].reward_amount * 100 for m in rewards["market"][rsel]],
                               [pct for _, pct, *_ in promo_rows], np.full(n_g, 1500)]).astype(np.int64),
        max_uses=np.concatenate([inc["max_uses"][sel], np.ones(len(rsel)), np.zeros(n_p), np.ones(n_g)]).astype(np.int32),
        active=np.concatenate([inc["active"][sel], np.ones(len(rsel), bool), np.ones(n_p, bool), np.ones(n_g, bool)]),
        valid_from_ms=np.concatenate([np.full(len(sel), CODE_BANK_UPLOADED_MS), rewards["created_ms"][rsel] - 60_000,
                                      [vf for _, _, vf, _, _ in promo_rows], np.full(n_g, CODE_BANK_UPLOADED_MS)]).astype(np.int64),
        valid_until_ms=np.concatenate([inc["valid_until_ms"][sel], np.full(len(rsel), -1),
                                       [vu for _, _, _, vu, _ in promo_rows], np.full(n_g, -1)]).astype(np.int64),
        created_ms=np.concatenate([np.full(len(sel), CODE_BANK_UPLOADED_MS), rewards["created_ms"][rsel] - 60_000,
                                   np.full(n_p, CODE_BANK_UPLOADED_MS - MS_PER_DAY), np.full(n_g, CODE_BANK_UPLOADED_MS)]).astype(np.int64),
    )
    frame["modified_ms"] = np.where(frame["active"], frame["created_ms"], frame["created_ms"] + 7 * MS_PER_DAY)
    frame["id"] = ids.uuids(seed, "ct-discount-code", np.arange(len(frame)))
    return frame


def _bc_coupons(inc: Frame, rewards: Frame) -> Frame:
    sel = np.flatnonzero((inc["platform"] == BC) & inc["in_platform"])
    rsel = np.flatnonzero(rewards["platform"] == BC)
    promos = [p for p in STORE_PROMOS]
    n_p = len(promos)
    frame = Frame(
        code=pa.concat_arrays([ids.take(inc["code"], sel), ids.take(rewards["code"], rsel),
                               pa.array([c for c, *_ in promos], pa.string())]),
        kind=np.concatenate([np.full(len(sel), KIND_INCENTIVE), np.full(len(rsel), KIND_REWARD),
                             np.full(n_p, KIND_PROMO)]).astype(np.int8),
        amount=np.concatenate([np.full(len(sel), MARKETS[0].incentive_amount * 100),
                               np.full(len(rsel), MARKETS[0].reward_amount * 100),
                               [pct for _, pct, _, _ in promos]]).astype(np.int64),
        max_uses=np.concatenate([inc["max_uses"][sel], np.ones(len(rsel)), np.zeros(n_p)]).astype(np.int32),
        active=np.concatenate([inc["active"][sel], np.ones(len(rsel), bool), np.ones(n_p, bool)]),
        expires_ms=np.concatenate([inc["valid_until_ms"][sel], np.full(len(rsel), -1),
                                   [vu for *_, vu in promos]]).astype(np.int64),
        created_ms=np.concatenate([np.full(len(sel), CODE_BANK_UPLOADED_MS), rewards["created_ms"][rsel] - 60_000,
                                   [min(vf, CODE_BANK_UPLOADED_MS) for _, _, vf, _ in promos]]).astype(np.int64),
    )
    frame["id"] = np.arange(1, len(frame) + 1)
    return frame


def build_promotions(seed: int, people: People, refs: Referrals) -> Promotions:
    incentives = build_incentives(seed, people, refs)
    rewards = build_rewards(seed, people, refs)
    goodwill = goodwill_codes(seed)
    planter = ProblemPlanter(seed, incentives, goodwill)
    n_problem = max(1, int(round(PROBLEM_RATE * len(incentives))))
    planter.plant(n_problem)
    planter.apply_overrides()
    fr = np.flatnonzero(incentives["kind"] == 0)
    friend_code_arr = pa.array([""] * len(refs.friends), pa.string())
    if len(fr):
        index = np.full(len(refs.friends), len(fr), dtype=np.int64)
        index[incentives["row"][fr]] = np.arange(len(fr))
        friend_code_arr = pa.concat_arrays([ids.take(incentives["code"], fr), pa.array([""], pa.string())]).take(pa.array(index))
    return Promotions(incentives=incentives, rewards=rewards, ct_codes=_ct_codes(seed, incentives, rewards, goodwill),
                      bc_coupons=_bc_coupons(incentives, rewards), friend_code=friend_code_arr, problems=planter.problems)
