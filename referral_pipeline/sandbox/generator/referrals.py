"""Referral activity: advocates and their shares, friends who click, sign up and buy, anonymous
clickers and prospects, friend incentives and advocate rewards.

Everything is planned as columns (``Frame``); Friendbuy rows and the friends' first orders are
rendered from these frames later. The natural activity is built so that no fraud rule or
eligibility reason fires by accident: every friend is a new single-source customer in the
advocate's market, uses a home IP no one else has, buys once within the attribution window
(later orders start after it), and advocates have at most a few friends each. Planted cases
(``fraud.py``) then change chosen rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import ids
from .frame import Frame
from .people import MOBILE_IP_BASE, MOBILE_IP_SPAN, USER_AGENTS, People, email_number_modulus, make_identities
from .settings import BC, CT, END_MS, MARKETS, MS_PER_DAY, MS_PER_HOUR, SF, START_MS

SHARE_CHANNELS = ("email", "facebook", "twitter", "sms", "messenger", "purl")
SIGNAL_COUPON, SIGNAL_FRIENDBUY, SIGNAL_CODE, SIGNAL_SIGNUP = 0, 1, 2, 3
SIGNAL_NAMES = ("coupon", "friendbuy", "referral_code", "signup")
# How a friend's first order carries the referral, per source (BigCommerce has no referral-code field).
SIGNAL_WEIGHTS = {SF: (0.25, 0.20, 0.40, 0.15), CT: (0.25, 0.20, 0.40, 0.15), BC: (0.50, 0.30, 0.0, 0.20)}

OUTCOME_NORMAL, OUTCOME_CANCELLED, OUTCOME_REFUNDED, OUTCOME_PARTIAL, OUTCOME_OPEN, OUTCOME_DECLINED = range(6)
OUTCOME_NAMES = ("completed", "cancelled", "refunded", "partially_refunded", "open", "declined")

MINUTE = 60_000
NONCONVERTING_SIGNUP_RATE = 0.10  # of people without orders


@dataclass
class Referrals:
    shares: Frame        # advocate, market, created_ms, channel, ip, ua, code
    friends: Frame       # one row per referred person (see build_friends)
    clicks: Frame        # anonymous clicks: share, created_ms, ip, ua, prospect
    prospects: Frame     # clickers who left an email and got an incentive, never bought
    extra_orders: Frame  # planted orders beyond the friends' first orders (fraud.py)
    advocates: np.ndarray

    def share_code(self, share_rows: np.ndarray) -> pa.Array:
        return ids.take(self.shares["code"], share_rows)


def _uniform_ms(rng, lo, hi) -> np.ndarray:
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.maximum(np.asarray(hi, dtype=np.int64), lo + 1)
    return lo + (rng.random(len(lo)) * (hi - lo)).astype(np.int64)


def _pick(rng, pool: np.ndarray, count: int) -> np.ndarray:
    count = min(count, len(pool))
    return np.sort(rng.choice(pool, size=count, replace=False)) if count else np.array([], dtype=np.int64)


def choose_advocates(rng, people: People, rate: float) -> np.ndarray:
    """About ``rate`` of people per market, among buyers registered two months before the end."""
    eligible = (people.n_orders >= 1) & (people.created_ms < END_MS - 60 * MS_PER_DAY)
    chosen = []
    for mi in range(len(MARKETS)):
        pool = np.flatnonzero(eligible & (people.market == mi))
        count = max(1, int(round(rate * np.sum(people.market == mi)))) if len(pool) >= 4 else 0
        chosen.append(_pick(rng, pool, count))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def build_shares(rng, seed: int, people: People, advocates: np.ndarray) -> Frame:
    per = 1 + np.minimum(rng.poisson(0.6, size=len(advocates)), 3)
    adv = np.repeat(advocates, per)
    lo = np.maximum(people.created_ms[adv], START_MS) + MS_PER_HOUR
    hi = np.full(len(adv), END_MS - 40 * MS_PER_DAY)
    lo = np.where(lo >= hi, START_MS, lo)
    created = (_uniform_ms(rng, lo, hi) // 1000) * 1000 + rng.integers(0, 1000, size=len(adv))
    order = np.lexsort((created, adv))
    adv, created = adv[order], created[order]
    return Frame(
        advocate=adv, market=people.market[adv], created_ms=created,
        channel=rng.choice(len(SHARE_CHANNELS), size=len(adv), p=[0.34, 0.2, 0.08, 0.14, 0.08, 0.16]).astype(np.int8),
        ip=people.home_ip[adv], ua=people.user_agent[adv],
        code=share_codes(seed, people, adv, np.arange(len(adv))),
    )


def share_codes(seed: int, people: People, advocates: np.ndarray, share_rows: np.ndarray) -> pa.Array:
    """Referral codes: up to six letters of the advocate's email plus five base-36 characters
    from a bijection of the share row, so codes of different shares never collide."""
    name = pc.utf8_slice_codeunits(ids.take(people.email_local, advocates), 0, 6)
    name = pc.replace_substring_regex(name, "[^a-z]", "")
    suffix = pc.utf8_lower(ids.code36(np.asarray(share_rows), 5, ids.name_key(f"share{seed}")))
    return pc.binary_join_element_wise(name, suffix, "")


def _share_ranges(shares: Frame, n_people: int) -> tuple[np.ndarray, np.ndarray]:
    start = np.full(n_people, -1, dtype=np.int64)
    count = np.zeros(n_people, dtype=np.int64)
    adv = shares["advocate"]
    uniq, first_idx, counts = np.unique(adv, return_index=True, return_counts=True)
    start[uniq] = first_idx
    count[uniq] = counts
    return start, count


def _assign_to_shares(rng, friends_pids: np.ndarray, market: np.ndarray, shares: Frame,
                      advocates: np.ndarray, people: People) -> np.ndarray:
    """Share row of each friend: advocates of the friend's market in a shuffled round robin
    (so no advocate gets more than a couple of friends), then one of that advocate's shares."""
    start, count = _share_ranges(shares, people.n)
    share_rows = np.full(len(friends_pids), -1, dtype=np.int64)
    for mi in range(len(MARKETS)):
        sel = np.flatnonzero(market == mi)
        pool = advocates[people.market[advocates] == mi]
        if not len(sel) or not len(pool):
            continue
        pool = rng.permutation(pool)
        adv = pool[np.arange(len(sel)) % len(pool)]
        share_rows[sel] = start[adv] + rng.integers(0, 1 << 30, size=len(sel)) % count[adv]
    return share_rows


def _single_source(rng, people: People, pids: np.ndarray) -> np.ndarray:
    """One source per friend (from the market's membership weights); the friend's only record."""
    probs = np.array([m.membership for m in MARKETS])[people.market[pids]]
    probs = probs / probs.sum(axis=1, keepdims=True)
    u = rng.random(len(pids))[:, None]
    source = (u > np.cumsum(probs, axis=1)).sum(axis=1).clip(0, 2)
    people.in_source[pids] = False
    people.in_source[pids, source] = True
    return source.astype(np.int8)


def build_friends(rng, seed: int, people: People, shares: Frame, advocates: np.ndarray, rate: float) -> Frame:
    """Referred people: converting friends (buyers) and referred sign-ups who never buy."""
    is_adv = np.zeros(people.n, dtype=bool)
    is_adv[advocates] = True
    has_adv_market = np.isin(people.market, people.market[advocates])
    converting, nonconverting = [], []
    for mi in range(len(MARKETS)):
        in_m = (people.market == mi) & ~is_adv & has_adv_market
        buyers = np.flatnonzero(in_m & (people.n_orders >= 1))
        converting.append(_pick(rng, buyers, int(round(rate * np.sum(people.market == mi)))))
        idle = np.flatnonzero(in_m & (people.n_orders == 0))
        nonconverting.append(_pick(rng, idle, int(round(NONCONVERTING_SIGNUP_RATE * len(idle)))))
    conv = np.concatenate(converting).astype(np.int64)
    idle = np.concatenate(nonconverting).astype(np.int64)
    pids = np.concatenate([conv, idle])
    converts = np.concatenate([np.ones(len(conv), bool), np.zeros(len(idle), bool)])
    market = people.market[pids]
    share = _assign_to_shares(rng, pids, market, shares, advocates, people)
    keep = share >= 0
    pids, converts, market, share = pids[keep], converts[keep], market[keep], share[keep]
    n = len(pids)
    source = _single_source(rng, people, pids)
    signal = np.zeros(n, dtype=np.int8)
    for src, weights in SIGNAL_WEIGHTS.items():
        sel = np.flatnonzero(source == src)
        signal[sel] = rng.choice(4, size=len(sel), p=np.array(weights) / sum(weights))
    signal[~converts] = SIGNAL_SIGNUP
    has_signup = (signal == SIGNAL_SIGNUP) | (rng.random(n) < 0.6)
    click = _uniform_ms(rng, shares["created_ms"][share] + 10 * MINUTE, shares["created_ms"][share] + 7 * MS_PER_DAY)
    signup = np.where(has_signup, click + rng.integers(2 * MINUTE, 48 * MS_PER_HOUR, size=n), -1)
    base = np.where(has_signup, signup, click)
    order = np.where(converts, np.minimum(base + rng.integers(MS_PER_HOUR, 14 * MS_PER_DAY, size=n), END_MS - MS_PER_HOUR), -1)
    created = np.where(has_signup, signup, order - rng.integers(2 * MINUTE, 15 * MINUTE, size=n))
    people.created_ms[pids] = (created // 1000) * 1000
    incentive = (signal == SIGNAL_COUPON) | (rng.random(n) < 0.35)
    in_purchases = converts & ((signal == SIGNAL_FRIENDBUY) | ((signal != SIGNAL_SIGNUP) & (rng.random(n) < 0.5)))
    outcome = np.where(converts, rng.choice([OUTCOME_NORMAL, OUTCOME_CANCELLED, OUTCOME_REFUNDED, OUTCOME_PARTIAL],
                                            size=n, p=[0.84, 0.06, 0.05, 0.05]), OUTCOME_NORMAL)
    return Frame(
        pid=pids, converts=converts, market=market, share=share, advocate=shares["advocate"][share],
        source=source, signal=signal, has_signup=has_signup, click_ms=click, signup_ms=signup, order_ms=order,
        incentive=incentive, incentive_ms=click + rng.integers(MINUTE, 20 * MINUTE, size=n),
        in_purchases=in_purchases, id_style=(rng.random(n) < 0.3).astype(np.int8),
        attribution=converts & (source != BC) & ((signal == SIGNAL_FRIENDBUY) | (rng.random(n) < 0.4)),
        outcome=outcome.astype(np.int8), ip=people.home_ip[pids], order_ip=people.home_ip[pids],
        ua=people.user_agent[pids],
        currency=np.full(n, -1, dtype=np.int8), cheap=np.zeros(n, bool), reward=np.zeros(n, bool),
        reward_ms=np.full(n, -1, dtype=np.int64), scenario=np.zeros(n, dtype=np.int16),
        case=np.full(n, -1, dtype=np.int32),
    )


def build_clicks_and_prospects(rng, seed: int, people: People, shares: Frame) -> tuple[Frame, Frame]:
    """Clicks by visitors who never sign up; some leave an email and get a friend incentive."""
    per = rng.poisson(1.2, size=len(shares))
    share = np.repeat(np.arange(len(shares)), per)
    n = len(share)
    created = _uniform_ms(rng, shares["created_ms"][share] + 5 * MINUTE, shares["created_ms"][share] + 10 * MS_PER_DAY)
    ip = (MOBILE_IP_BASE + rng.integers(1, MOBILE_IP_SPAN, size=n)).astype(np.uint32)
    prospect = np.full(n, -1, dtype=np.int64)
    captured = np.flatnonzero(rng.random(n) < 0.3)
    prospect[captured] = np.arange(len(captured))
    clicks = Frame(share=share, created_ms=created, ip=ip,
                   ua=rng.integers(0, len(USER_AGENTS), size=n).astype(np.int16), prospect=prospect)
    market = shares["market"][share[captured]]
    numbers = ids.permute(people.n + np.arange(len(captured)), email_number_modulus(people.n), seed)
    who = make_identities(rng, seed, market, numbers)
    prospects = Frame(
        click=captured, share=share[captured], market=market,
        first_name=who["first_name"], last_name=who["last_name"],
        email=pc.binary_join_element_wise(who["email_local"], who["email_domain"], "@"),
        incentive_ms=created[captured] + rng.integers(MINUTE, 20 * MINUTE, size=len(captured)),
        platform=np.where((market == 0) & (rng.random(len(captured)) < 0.5), BC, CT).astype(np.int8),
    )
    return clicks, prospects


def decide_rewards(rng, friends: Frame, excluded: np.ndarray) -> None:
    """Friendbuy distributes the advocate reward for most clean, completed referrals once the
    return window has passed (never for excluded, i.e. planted, rows)."""
    n = len(friends)
    due = friends["order_ms"] + 30 * MS_PER_DAY + rng.integers(MS_PER_HOUR, 3 * MS_PER_DAY, size=n)
    ok = (friends["converts"] & (friends["outcome"] == OUTCOME_NORMAL) & ~excluded & (due <= END_MS)
          & (rng.random(n) < 0.75))
    friends["reward"] = ok
    friends["reward_ms"] = np.where(ok, due, -1)


def empty_extra_orders() -> Frame:
    """Planted orders beyond the friends' first orders. ``coupon_friend``: the friend whose
    incentive code the order uses; ``code_share``: the share whose referral code it carries."""
    return Frame(pid=np.zeros(0, np.int64), source=np.zeros(0, np.int8), created_ms=np.zeros(0, np.int64),
                 coupon_friend=np.zeros(0, np.int64), code_share=np.zeros(0, np.int64), ip=np.zeros(0, np.uint32),
                 scenario=np.zeros(0, np.int16), case=np.zeros(0, np.int32))


def build_referrals(seed: int, people: People, advocate_rate: float = 0.05, friend_rate: float = 0.08) -> Referrals:
    rng = ids.stream(seed, "referrals")
    advocates = choose_advocates(rng, people, advocate_rate)
    shares = build_shares(rng, seed, people, advocates)
    friends = build_friends(rng, seed, people, shares, advocates, friend_rate)
    clicks, prospects = build_clicks_and_prospects(rng, seed, people, shares)
    extra = empty_extra_orders()
    return Referrals(shares=shares, friends=friends, clicks=clicks, prospects=prospects,
                     extra_orders=extra, advocates=advocates)
