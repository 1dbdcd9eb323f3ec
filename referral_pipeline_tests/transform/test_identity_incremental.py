"""Incremental identity runs equal a full recompute: random staging worlds (customer records in three
sources sharing a small pool of emails, customer and guest orders), several rounds of random changes
(new and changed records, changed emails, records and orders leaving staging, refunds and
cancellations, orders changing amount, currency, market or time, orders moving to another record or
to a guest email); after every incremental run, a rebuild must compute the same ``analytics.customers``
and the same ``identity.order_state`` (the order figures the incremental runs keep and read)."""
from __future__ import annotations

import random

import pytest

from .identity_support import customer, delete_staged, new_db, order, rows, run

EMAILS = [f"p{i}@example.com" for i in range(12)] + ["a.b+x@gmail.com", "ab@googlemail.com"]
STATUSES = ["completed", "completed", "completed", "refunded", "cancelled", "declined", "incomplete"]
MARKETS = [("us", "USD"), ("us", "USD"), ("uk", "GBP"), ("eu", "EUR")]
CUSTOMERS = "SELECT * EXCLUDE (load_seq) FROM analytics.customers ORDER BY customer_key"
ORDER_STATE = "SELECT * FROM identity.order_state ORDER BY order_hash"


class IdentityWorld:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.con = new_db()
        self.records: list[str] = []
        self.orders: list[str] = []
        self.n = 0

    def _record(self) -> None:
        rng = self.rng
        key = f"{rng.choice(['sf', 'ct', 'bc'])}:{self.n}"
        self.n += 1
        self.records.append(key)
        self._write_record(key)

    def _write_record(self, key: str) -> None:
        rng = self.rng
        customer(self.con, key, rng.choice(EMAILS) if rng.random() < 0.9 else None,
                 first_name=rng.choice(["Ann", "Bob", None]), updated_at=f"2026-0{rng.randrange(1, 10)}-01T00:00:00",
                 is_deleted=rng.random() < 0.1)

    def _write_order(self, key: str) -> None:
        rng = self.rng
        market, currency = rng.choice(MARKETS)
        status = rng.choice(STATUSES)
        gross = rng.choice(["40", "75", "120"])
        owner = rng.choice(self.records) if self.records and rng.random() < 0.8 else None
        order(self.con, key, owner, email=rng.choice(EMAILS) if owner is None or rng.random() < 0.5 else None,
              gross=gross, refunded=gross if status == "refunded" else "0", status=status, currency=currency,
              market_id=market, placed_at=f"2026-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T12:00:00",
              is_deleted=rng.random() < 0.05)

    def step(self, records: int, orders: int, changes: int) -> None:
        rng = self.rng
        for _ in range(records):
            self._record()
        for _ in range(orders):
            key = f"{rng.choice(['sf', 'ct', 'bc'])}:o{self.n}"
            self.n += 1
            self.orders.append(key)
            self._write_order(key)
        for _ in range(changes):
            change = rng.random()
            if change < 0.45 and self.orders:          # refund, cancel, amount, currency, time, other owner
                self._write_order(rng.choice(self.orders))
            elif change < 0.6 and self.orders:         # an order leaves staging
                key = rng.choice(self.orders)
                self.orders.remove(key)
                delete_staged(self.con, "staging.orders", "order_key", key)
            elif change < 0.85 and self.records:       # new email, name, deletion flag
                self._write_record(rng.choice(self.records))
            elif self.records:                         # a record leaves staging (quarantine)
                key = rng.choice(self.records)
                self.records.remove(key)
                delete_staged(self.con, "staging.customers", "customer_record_key", key)


@pytest.mark.parametrize("seed", [2, 5, 11])
def test_incremental_identity_runs_equal_a_rebuild(seed):
    world = IdentityWorld(seed)
    world.step(records=15, orders=30, changes=0)
    run(world.con, "r0")
    recomputed = 0
    for i in range(6):
        world.step(records=3, orders=6, changes=8)
        result = run(world.con, f"r{i + 1}")
        assert not result.all_customers
        recomputed += result.customers_recomputed
        customers, order_state = rows(world.con, CUSTOMERS), rows(world.con, ORDER_STATE)
        run(world.con, f"rebuild{i + 1}", rebuild=True)
        assert rows(world.con, CUSTOMERS) == customers, (seed, i)
        assert rows(world.con, ORDER_STATE) == order_state, (seed, i)
    counted = rows(world.con, "SELECT sum(orders_count), count(*) FILTER (WHERE net_revenue > 0) FROM analytics.customers")
    assert counted[0][0] > 10 and counted[0][1] > 3     # the random world does have order figures
    assert recomputed > 6
