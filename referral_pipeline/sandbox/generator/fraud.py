"""Planted fraud and eligibility cases (product §6-7), each recorded as a ``Case``.

Cases take friends (and buyers) that no other case uses and change their rows in the referral
plan: who referred them, when, from which IP, in which currency, what they bought, and planted
extra orders. The manifest lists every case with the ids involved and which friends' orders the
rule is expected to hit. Scenarios that do not fit the population (``tiny``) are skipped, and
the manifest says so by omission.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ids
from .frame import Frame
from .people import People
from .referrals import OUTCOME_NORMAL, SIGNAL_CODE, SIGNAL_COUPON, Referrals, share_codes
from .settings import (ADVOCATE_MONTHLY_CAP, BC, CT, END_MS, MARKETS, MS_PER_DAY, MS_PER_HOUR, SF, START_MS,
                       VELOCITY_ADVOCATE_PER_24H, VELOCITY_IP_PER_HOUR)

MINUTE = 60_000
# Planted IPs come from TEST-NET-3 (203.0.113.0/24): no person's home or mobile address.
PLANTED_IP_BASE = (203 << 24) | (0 << 16) | (113 << 8)

SINGLE_RATE = 0.004   # cases per converting friend, for one-friend scenarios
GROUP_RATE = 0.0008   # for scenarios that need a group of friends
IP_GROUP = VELOCITY_IP_PER_HOUR + 2          # 5 sign-ups from one IP within the hour
ADVOCATE_GROUP = VELOCITY_ADVOCATE_PER_24H + 2  # 7 attributed orders within 24 h
CAP_GROUP = ADVOCATE_MONTHLY_CAP + 2         # 12 rewards in one calendar month
CURRENCY_CODES = ("USD", "GBP", "EUR", "CAD")
CAD = 3


@dataclass
class Case:
    case: int
    group: str            # "fraud" or "eligibility"
    rule: str             # product rule / reason name
    variant: str
    market: int
    advocate: int         # pid
    friends: list = field(default_factory=list)   # friend rows
    flagged: list = field(default_factory=list)   # friend rows whose attributed order the rule hits
    extra: list = field(default_factory=list)     # extra-order rows
    flagged_extra: list = field(default_factory=list)
    ip: int | None = None
    details: dict = field(default_factory=dict)


class Planter:
    def __init__(self, seed: int, people: People, refs: Referrals):
        self.seed, self.people, self.refs = seed, people, refs
        self.rng = ids.stream(seed, "fraud")
        self.cases: list[Case] = []
        self.busy_people = np.zeros(people.n, dtype=bool)
        self.busy_people[refs.advocates] = True
        self.busy_people[refs.friends["pid"]] = True
        n_conv = int(refs.friends["converts"].sum())
        self.n_single = max(1, int(round(SINGLE_RATE * n_conv)))
        self.n_group = max(1, int(round(GROUP_RATE * n_conv)))

    # ---- selection helpers -------------------------------------------------------------------
    def clean_friends(self, mask=None) -> np.ndarray:
        f = self.refs.friends
        ok = f["converts"] & (f["scenario"] == 0)
        if mask is not None:
            ok &= mask
        return np.flatnonzero(ok)

    def take_friends(self, count: int, mask=None, market: int | None = None) -> np.ndarray | None:
        f = self.refs.friends
        if market is not None:
            mask = (f["market"] == market) if mask is None else (mask & (f["market"] == market))
        pool = self.clean_friends(mask)
        if len(pool) < count:
            return None
        return np.sort(self.rng.choice(pool, size=count, replace=False))

    def clean_buyer(self, market: int, source: int | None = None, registered_before: int = END_MS) -> int | None:
        p = self.people
        ok = (~self.busy_people & (p.market == market) & (p.n_orders >= 1) & (p.created_ms < registered_before))
        if source is not None:
            ok &= p.in_source[:, source]
        pool = np.flatnonzero(ok)
        if not len(pool):
            return None
        pid = int(self.rng.choice(pool))
        self.busy_people[pid] = True
        return pid

    def market_with_friends(self, count: int, mask=None) -> int | None:
        f = self.refs.friends
        counts = [len(self.clean_friends((f["market"] == m) if mask is None else (mask & (f["market"] == m))))
                  for m in range(len(MARKETS))]
        best = int(np.argmax(counts))
        return best if counts[best] >= count else None

    # ---- mutations ---------------------------------------------------------------------------
    def new_case(self, group: str, rule: str, variant: str, market: int, advocate: int, **kw) -> Case:
        case = Case(case=len(self.cases) + 1, group=group, rule=rule, variant=variant, market=market,
                    advocate=int(advocate), **kw)
        self.cases.append(case)
        return case

    def mark(self, rows: np.ndarray, case: Case) -> None:
        f = self.refs.friends
        f["scenario"][rows] = SCENARIO_IDS[case.rule]
        f["case"][rows] = case.case
        f["outcome"][rows] = OUTCOME_NORMAL
        case.friends.extend(int(r) for r in rows)

    def new_share(self, advocate: int, created_ms: int) -> int:
        s = self.refs.shares
        row = len(s)
        code = share_codes(self.seed, self.people, np.array([advocate]), np.array([row]))
        add = Frame(advocate=np.array([advocate]), market=np.array([self.people.market[advocate]], dtype=s["market"].dtype),
                    created_ms=np.array([created_ms]), channel=np.array([0], dtype=np.int8),
                    ip=np.array([self.people.home_ip[advocate]]), ua=np.array([self.people.user_agent[advocate]], dtype=np.int16),
                    code=code)
        self.refs.shares = Frame.concat([s, add])
        self.refs.advocates = np.union1d(self.refs.advocates, [advocate])
        self.busy_people[advocate] = True
        return row

    def move_to_share(self, rows: np.ndarray, share: int) -> None:
        f = self.refs.friends
        f["share"][rows] = share
        f["advocate"][rows] = self.refs.shares["advocate"][share]

    def retime(self, rows: np.ndarray, click: np.ndarray, order: np.ndarray, signup: np.ndarray | None = None) -> None:
        """New timeline for friends: click, (sign-up), first order; registration follows."""
        f = self.refs.friends
        click = np.asarray(click, dtype=np.int64)
        order = np.asarray(order, dtype=np.int64)
        if signup is None:
            signup = np.where(f["has_signup"][rows], click + 10 * MINUTE, -1)
        else:
            f["has_signup"][rows] = True
        f["click_ms"][rows] = click
        f["signup_ms"][rows] = signup
        f["order_ms"][rows] = order
        f["incentive_ms"][rows] = click + 3 * MINUTE
        created = np.where(f["has_signup"][rows], signup, order - 5 * MINUTE)
        self.people.created_ms[f["pid"][rows]] = (created // 1000) * 1000

    def add_extra_order(self, case: Case, pid: int, source: int, created_ms: int, ip: int,
                        coupon_friend: int = -1, code_share: int = -1, flagged: bool = True) -> None:
        e = self.refs.extra_orders
        row = len(e)
        add = Frame(pid=np.array([pid], np.int64), source=np.array([source], np.int8),
                    created_ms=np.array([created_ms], np.int64), coupon_friend=np.array([coupon_friend], np.int64),
                    code_share=np.array([code_share], np.int64), ip=np.array([ip], np.uint32),
                    scenario=np.array([SCENARIO_IDS[case.rule]], np.int16), case=np.array([case.case], np.int32))
        self.refs.extra_orders = Frame.concat([e, add]) if len(e) else add
        case.extra.append(row)
        if flagged:
            case.flagged_extra.append(row)

    # ---- scenarios ---------------------------------------------------------------------------
    def self_referral_same_person(self) -> None:
        """An advocate buys with their own referral code."""
        s = self.refs.shares
        p = self.people
        for _ in range(self.n_single):
            ok = (p.in_source[s["advocate"], SF] | p.in_source[s["advocate"], CT]) & (s["created_ms"] < END_MS - 5 * MS_PER_DAY)
            ok &= ~np.isin(s["advocate"], [c.advocate for c in self.cases])
            pool = np.flatnonzero(ok)
            if not len(pool):
                return
            share = int(self.rng.choice(pool))
            adv = int(s["advocate"][share])
            source = SF if p.in_source[adv, SF] else CT
            case = self.new_case("fraud", "SELF_REFERRAL", "same_person", int(p.market[adv]), adv)
            self.add_extra_order(case, adv, source, int(s["created_ms"][share] + 2 * MS_PER_DAY), int(p.home_ip[adv]),
                                 code_share=share)
            case.details["referral_code"] = share

    def self_referral_alias(self) -> None:
        """A 'friend' whose gmail address is a dot/+tag/googlemail alias of the advocate's."""
        f, s, p = self.refs.friends, self.refs.shares, self.people
        for k in range(self.n_single):
            gmail_shares = np.flatnonzero(p.is_gmail[s["advocate"]] & (s["created_ms"] < END_MS - 10 * MS_PER_DAY))
            gmail_shares = gmail_shares[~np.isin(s["advocate"][gmail_shares], [c.advocate for c in self.cases])]
            if not len(gmail_shares):
                return
            share = int(self.rng.choice(gmail_shares))
            adv = int(s["advocate"][share])
            rows = self.take_friends(1, (f["source"] != BC), market=int(p.market[adv]))
            if rows is None:
                return
            friend_pid = int(f["pid"][rows[0]])
            local = p.email_local[adv].as_py()
            alias_local, alias_domain = _alias(local, k)
            p.set_strings("email_local", [friend_pid], [alias_local])
            p.set_strings("email_domain", [friend_pid], [alias_domain])
            p.set_strings("first_name", [friend_pid], [p.first_name[adv].as_py()])
            p.set_strings("last_name", [friend_pid], [p.last_name[adv].as_py()])
            p.is_gmail[friend_pid] = True
            p.variant[friend_pid] = 0
            case = self.new_case("fraud", "SELF_REFERRAL", "email_alias", int(p.market[adv]), adv)
            self.mark(rows, case)
            self.move_to_share(rows, share)
            click = int(s["created_ms"][share]) + MS_PER_DAY
            self.retime(rows, [click], [click + 2 * MS_PER_DAY], signup=np.array([click + 10 * MINUTE]))
            f["signal"][rows] = SIGNAL_CODE
            case.flagged.extend(int(r) for r in rows)
            case.details["alias_email"] = f"{alias_local}@{alias_domain}"

    def same_ip_as_advocate(self) -> None:
        f, p = self.refs.friends, self.people
        for _ in range(self.n_single):
            rows = self.take_friends(1)
            if rows is None:
                return
            adv = int(f["advocate"][rows[0]])
            case = self.new_case("fraud", "SAME_IP_AS_ADVOCATE", "home_ip", int(f["market"][rows[0]]), adv,
                                 ip=int(p.home_ip[adv]))
            self.mark(rows, case)
            f["ip"][rows] = p.home_ip[adv]
            f["order_ip"][rows] = p.home_ip[adv]
            case.flagged.extend(int(r) for r in rows)

    def velocity_ip(self) -> None:
        """Five referral sign-ups from one IP within 48 minutes (the 4th and 5th exceed 3/h)."""
        f = self.refs.friends
        s = self.refs.shares
        for k in range(self.n_group):
            early = s["created_ms"][f["share"]] < END_MS - 45 * MS_PER_DAY
            market = self.market_with_friends(IP_GROUP, early)
            if market is None:
                return
            rows = self.take_friends(IP_GROUP, early, market=market)
            ip = PLANTED_IP_BASE + 10 + k % 200
            case = self.new_case("fraud", "VELOCITY_IP", "signups", market, int(f["advocate"][rows[0]]), ip=int(ip))
            self.mark(rows, case)
            t0 = int(s["created_ms"][f["share"][rows]].max()) + MS_PER_DAY
            signup = t0 + np.arange(IP_GROUP) * 12 * MINUTE
            click = signup - 5 * MINUTE
            order = signup + (np.arange(IP_GROUP) + 1) * MS_PER_DAY + 2 * MS_PER_HOUR
            self.retime(rows, click, order, signup=signup)
            f["ip"][rows] = ip
            case.flagged.extend(int(r) for r in rows[VELOCITY_IP_PER_HOUR:])
            case.details["signup_times"] = signup.tolist()

    def velocity_advocate(self) -> None:
        """Seven friends of one new advocate buy within nine hours (the 6th and 7th exceed 5/24h)."""
        f = self.refs.friends
        for _ in range(self.n_group):
            market = self.market_with_friends(ADVOCATE_GROUP)
            if market is None:
                return
            t0 = int(self.rng.integers(START_MS + 20 * MS_PER_DAY, END_MS - 40 * MS_PER_DAY))
            adv = self.clean_buyer(market, registered_before=t0 - 30 * MS_PER_DAY)
            if adv is None:
                return
            rows = self.take_friends(ADVOCATE_GROUP, market=market)
            share = self.new_share(adv, t0 - 10 * MS_PER_DAY)
            case = self.new_case("fraud", "VELOCITY_ADVOCATE", "orders_24h", market, adv)
            self.mark(rows, case)
            self.move_to_share(rows, share)
            order = t0 + np.arange(ADVOCATE_GROUP) * 80 * MINUTE
            click = t0 - (ADVOCATE_GROUP - np.arange(ADVOCATE_GROUP)) * MS_PER_DAY
            self.retime(rows, click, order)
            case.flagged.extend(int(r) for r in rows[VELOCITY_ADVOCATE_PER_24H:])

    def coupon_reuse(self) -> None:
        f, p = self.refs.friends, self.people
        for variant in ("second_order", "other_customer"):
            for _ in range(self.n_single):
                rows = self.take_friends(1, (f["signal"] == SIGNAL_COUPON) & (f["order_ms"] < END_MS - 10 * MS_PER_DAY))
                if rows is None:
                    return
                row = int(rows[0])
                source = int(f["source"][row])
                buyer, delay = int(f["pid"][row]), 5 * MS_PER_DAY
                if variant == "other_customer":
                    delay = 3 * MS_PER_DAY
                    buyer = self.clean_buyer(int(f["market"][row]), source,
                                             registered_before=int(f["order_ms"][row]) + delay - MS_PER_DAY)
                    if buyer is None:
                        return
                case = self.new_case("fraud", "COUPON_REUSE", variant, int(f["market"][row]), int(f["advocate"][row]))
                self.mark(rows, case)
                ip = int(f["order_ip"][row]) if variant == "second_order" else int(p.home_ip[buyer])
                self.add_extra_order(case, buyer, source, int(f["order_ms"][row] + delay), ip, coupon_friend=row)
                case.details["buyer"] = buyer

    def currency_mismatch(self) -> None:
        f = self.refs.friends
        for _ in range(self.n_single):
            rows = self.take_friends(1, f["source"] != SF)
            if rows is None:
                return
            row = int(rows[0])
            market = int(f["market"][row])
            currency = CAD if f["source"][row] == BC else (2 if market != 2 else 1)
            case = self.new_case("eligibility", "CURRENCY_MISMATCH", CURRENCY_CODES[currency], market, int(f["advocate"][row]))
            self.mark(rows, case)
            f["currency"][rows] = currency
            case.flagged.append(row)
            case.details["currency"] = CURRENCY_CODES[currency]

    def below_min_value(self) -> None:
        f = self.refs.friends
        for _ in range(self.n_single):
            rows = self.take_friends(1, f["signal"] != SIGNAL_COUPON)
            if rows is None:
                return
            row = int(rows[0])
            case = self.new_case("eligibility", "BELOW_MIN_ORDER_VALUE", "cheap_order", int(f["market"][row]), int(f["advocate"][row]))
            self.mark(rows, case)
            f["cheap"][rows] = True
            case.flagged.append(row)

    def advocate_cap(self) -> None:
        """Twelve friends of one new advocate buy in one calendar month, two days apart."""
        f = self.refs.friends
        months = [(2026, m) for m in range(5, 10)]
        for _ in range(self.n_group):
            market = self.market_with_friends(CAP_GROUP)
            if market is None:
                return
            year, month = months[int(self.rng.integers(0, len(months)))]
            month_start = int(np.datetime64(f"{year}-{month:02d}-01T00:00:00", "ms").astype(np.int64))
            adv = self.clean_buyer(market, registered_before=month_start - 30 * MS_PER_DAY)
            if adv is None:
                return
            rows = self.take_friends(CAP_GROUP, market=market)
            share = self.new_share(adv, month_start - 5 * MS_PER_DAY)
            case = self.new_case("eligibility", "ADVOCATE_CAP_REACHED", f"{year}-{month:02d}", market, adv)
            self.mark(rows, case)
            self.move_to_share(rows, share)
            order = month_start + MS_PER_DAY + np.arange(CAP_GROUP) * 2 * MS_PER_DAY + 3 * MS_PER_HOUR
            click = order - 2 * MS_PER_HOUR
            self.retime(rows, click, order)
            case.flagged.extend(int(r) for r in rows[ADVOCATE_MONTHLY_CAP:])

    def run(self) -> list[Case]:
        for scenario in (self.advocate_cap, self.velocity_advocate, self.velocity_ip, self.self_referral_alias,
                         self.self_referral_same_person, self.same_ip_as_advocate, self.coupon_reuse,
                         self.currency_mismatch, self.below_min_value):
            scenario()
        return self.cases


SCENARIO_IDS = {"SELF_REFERRAL": 1, "SAME_IP_AS_ADVOCATE": 2, "VELOCITY_IP": 3, "VELOCITY_ADVOCATE": 4,
                "COUPON_REUSE": 5, "CURRENCY_MISMATCH": 6, "BELOW_MIN_ORDER_VALUE": 7, "ADVOCATE_CAP_REACHED": 8}


def _alias(local: str, k: int) -> tuple[str, str]:
    """A gmail alias of ``local@gmail.com``: dots, a +tag, or googlemail.com."""
    kind = k % 3
    if kind == 0:
        return f"{local}+friends", "gmail.com"
    if kind == 1:
        plain = local.replace(".", "")
        return (plain[:2] + "." + plain[2:] if len(plain) > 2 else plain + "."), "gmail.com"
    return local, "googlemail.com"


def plant_fraud(seed: int, people: People, refs: Referrals) -> list[Case]:
    return Planter(seed, people, refs).run()


def plant_reward_leaks(cases: list[Case], refs: Referrals) -> list[int]:
    """Friendbuy's own checks miss some fraud: it distributes the advocate reward for the first
    SAME_IP_AS_ADVOCATE and VELOCITY_IP case (friend rows returned), so reconciliation must flag them."""
    f = refs.friends
    leaked = []
    for rule in ("SAME_IP_AS_ADVOCATE", "VELOCITY_IP"):
        case = next((c for c in cases if c.rule == rule), None)
        if case is None:
            continue
        row = case.flagged[-1]
        due = int(f["order_ms"][row]) + 31 * MS_PER_DAY
        if due <= END_MS:
            f["reward"][row] = True
            f["reward_ms"][row] = due
            leaked.append(row)
    return leaked
