"""Incremental attribution equals a full recompute: random worlds, several rounds of random deltas
(new and changed orders, new Friendbuy events, deleted orders and events, new identities, as_of
moving on); after every incremental run a rebuild must find nothing to change."""
from __future__ import annotations

import random

import pytest

from referral_pipeline.transform.attribution import run_attribution, run_referral_events

from .referrals_support import World, at, new_db, programs, refresh_first_orders, rows

SNAPSHOT = ("SELECT * EXCLUDE (updated_at, attributed_at, load_seq, reward_key, no_reward_reason) "
            "FROM analytics.referral_attribution ORDER BY order_key")


class RandomWorld:
    def __init__(self, seed: int, **db_options):
        self.rng = random.Random(seed)
        self.con = new_db(**db_options)
        self.w = World(self.con)
        self.people = [f"p{i}" for i in range(30)]
        for p in self.people:
            self.w.customer(p, market="us" if self.rng.random() < 0.8 else "uk")
        self.codes, self.coupons, self.purchase_ids, self.orders = [], [], [], []
        self.order_count = 0
        self.day = 0.0

    def market(self, person: str) -> str:
        return rows(self.con, "SELECT market_id FROM analytics.customers WHERE customer_key = ?", [f"cus_{person}"])[0][0]

    def campaign(self, person: str) -> str:
        return "camp-" + self.market(person)

    def step(self, n_events: int, n_orders: int, n_changes: int) -> None:
        rng, w = self.rng, self.w
        for _ in range(n_events):
            adv, friend = rng.sample(self.people, 2)
            when = at(self.day + rng.random() * 3)
            kind = rng.choice(["share", "click", "incentive", "purchase", "signup"])
            camp = self.campaign(adv)
            if kind == "share" or not self.codes:
                code = f"C{len(self.codes)}{adv}"
                self.codes.append(code)
                w.share(adv, code, when, campaign=camp)
            elif kind == "click":
                w.click(adv, rng.choice(self.codes), when, campaign=camp)
            elif kind == "incentive":
                coupon = f"F{len(self.coupons)}"
                self.coupons.append(coupon)
                w.incentive(adv, friend, coupon, when, campaign=camp)
            elif kind == "purchase":
                pid = rng.choice([f"N{rng.randrange(40)}", f"sf:o{rng.randrange(60)}"])
                self.purchase_ids.append(pid)
                w.event("purchase", when, advocate=adv, friend=friend, order_id=pid, campaign=camp)
            else:
                w.signup(adv, friend, when, campaign=camp)
        for _ in range(n_orders):
            who = rng.choice(self.people)
            key = f"{rng.choice(['sf', 'ct'])}:o{self.order_count}"
            self.order_count += 1
            self.orders.append(key)
            w.order(key, who, at(self.day + rng.random() * 3), market=self.market(who),
                    currency="USD" if self.market(who) == "us" else "GBP",
                    coupons=[rng.choice(self.coupons)] if self.coupons and rng.random() < 0.3 else [],
                    referral_code=rng.choice(self.codes).lower() if self.codes and rng.random() < 0.3 else None,
                    order_number=f"N{rng.randrange(40)}", status=rng.choice(["completed", "completed", "cancelled"]))
        for _ in range(n_changes):
            if not self.orders:
                break
            key = rng.choice(self.orders)
            change = rng.random()
            if change < 0.3:
                w.set_order(key, status=rng.choice(["refunded", "completed", "cancelled"]))
            elif change < 0.5:
                w.set_order(key, referral_code=rng.choice(self.codes) if self.codes else None)
            elif change < 0.6:
                self.con.execute("DELETE FROM analytics.orders WHERE order_key = ?", [key])
                self.orders.remove(key)
            elif change < 0.7:
                events = [r[0] for r in rows(self.con, "SELECT event_key FROM staging.referral_events ORDER BY 1")]
                if events:
                    self.con.execute("DELETE FROM staging.referral_events WHERE event_key = ?", [rng.choice(events)])
            elif change < 0.8:
                new = f"n{len(self.people)}"
                self.people.append(new)
                # a friend Friendbuy knew by email only, before identity knew them
                w.event("signup", at(self.day), advocate=rng.choice(self.people[:-1]), friend_email=f"{new}@example.com")
                w.customer(new, records=())
            else:
                w.set_order(key, order_number=f"N{rng.randrange(40)}")
        self.day += 4

    def run(self, rebuild: bool = False):
        refresh_first_orders(self.con)
        as_of = at(self.day)
        run_referral_events(self.con, programs(), as_of)
        return run_attribution(self.con, programs(), as_of, "r", rebuild=rebuild)


@pytest.mark.parametrize("seed", [1, 13])
def test_incremental_runs_equal_a_full_recompute(seed):
    world = RandomWorld(seed)
    world.step(n_events=25, n_orders=25, n_changes=0)
    assert world.run().mode == "full"
    attributed = 0
    for _ in range(6):
        world.step(n_events=8, n_orders=8, n_changes=6)
        incremental = world.run()
        assert incremental.mode == "incremental"
        snapshot = rows(world.con, SNAPSHOT)
        full = world.run(rebuild=True)
        assert full.mode == "full"
        assert rows(world.con, SNAPSHOT) == snapshot
        assert full.changes.changed == 0, (seed, full.changes)
        attributed = max(attributed, full.attributed)
    assert attributed > 5    # the random world does attribute orders
