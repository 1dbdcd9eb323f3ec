"""The incremental referral stages equal a full recompute: random worlds (``RandomWorld`` of the
attribution test, with the identity stage's ``analytics.customers.load_seq``, order IPs shared
between friends and advocates, distributed rewards and review decisions), several rounds of random
deltas, then changes at the same as_of (refunds, cancellations, removed and moved orders, reviews,
distributions: the rewards stage evaluates only the rewards they touch), sign-up emails rewritten;
after every incremental chain run, a rebuild of each stage must find nothing to change (no event,
attribution or promo-code row, no new fraud flag, no reward or ledger row), and the fraud stage's
stored canonical emails are those of the current sign-ups."""
from __future__ import annotations

from datetime import timedelta

import pytest

from referral_pipeline.transform.attribution import run_attribution, run_promo_codes, run_referral_events
from referral_pipeline.transform.rewards import run_fraud, run_rewards

from .referrals_support import at, programs, refresh_first_orders, rows
from .test_attribution_incremental import RandomWorld

IPS = [f"10.0.0.{i}" for i in range(4)]


class ChainWorld(RandomWorld):
    def __init__(self, seed: int, map_seq: bool = False):
        super().__init__(seed, customers_load_seq=True)
        self.pending: str | None = None     # known to Friendbuy by email, to identity only from the next step
        self.bursts: list[tuple] = []
        self.map_seq = 0 if map_seq else None

    def stamp_map(self) -> None:
        """As the identity stage does: the map and index rows added since its last run get the next
        identity.map_seq value (the events stage then re-resolves only what they can resolve)."""
        self.map_seq += 1
        for table in ("identity.customer_map", "identity.email_index"):
            self.con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS map_seq BIGINT")
            self.con.execute(f"UPDATE {table} SET map_seq = ? WHERE map_seq IS NULL", [self.map_seq])

    def burst(self) -> None:
        """Attributed orders on one advocate's code from one IP within 40 minutes: three now, and a
        late one in the burst of two steps ago (an order that arrives runs after its neighbours)."""
        rng = self.rng
        if len(self.bursts) >= 2:
            code, ip, when = self.bursts[-2]
            self._burst_order(code, ip, when + timedelta(minutes=30))
        code, ip = rng.choice(self.codes), rng.choice(IPS)
        for k in range(3):
            self._burst_order(code, ip, at(self.day - 0.5, minutes=20 * k))
        self.bursts.append((code, ip, at(self.day - 0.5)))

    def _burst_order(self, code: str, ip: str, when, who: str | None = None) -> None:
        who = who or self.rng.choice(self.people)
        key = f"sf:b{self.order_count}"
        self.order_count += 1
        self.orders.append(key)
        self.w.order(key, who, when, market=self.market(who), currency="USD" if self.market(who) == "us" else "GBP",
                     referral_code=code.lower(), ip=ip)

    def step(self, n_events: int, n_orders: int, n_changes: int) -> None:
        before = set(self.orders)
        super().step(n_events, n_orders, n_changes)
        rng, w = self.rng, self.w
        if self.pending:
            w.customer(self.pending, records=())
            self.people.append(self.pending)
        self.pending = f"late{len(self.people)}"
        w.event("signup", at(self.day - 1), advocate=rng.choice(self.people), friend_email=f"{self.pending}@example.com",
                ip=rng.choice(IPS))
        self.change_signup_email()
        self.burst()
        for key in sorted(set(self.orders) - before):          # few IPs: velocity and same-IP hits
            if rng.random() < 0.6:
                w.set_order(key, ip_address=rng.choice(IPS))
        for _ in range(2):
            adv, friend = rng.sample(self.people, 2)
            w.event("share", at(self.day - rng.random() * 2), advocate=adv, code=f"X{rng.randrange(99)}",
                    ip=rng.choice(IPS), campaign=self.campaign(adv))
            w.reward_distributed(adv, friend, at(self.day - rng.random()), campaign=self.campaign(adv))
            w.coupon(rng.choice(self.coupons) if self.coupons else "F0", active=rng.random() < 0.7)
        held = rows(self.con, "SELECT reward_key FROM analytics.rewards WHERE status = 'on_hold' ORDER BY 1") \
            if self.day > 4 else []
        for (key,) in held[:2]:
            w.review(key, rng.choice(["approve", "reject"]), at(self.day - 1))

    def change_signup_email(self) -> None:
        """An earlier sign-up's friend email rewritten (sometimes to an alias of a known customer,
        whose canonical email it then shares): the fraud stage's stored canonical emails must follow."""
        rng = self.rng
        signups = rows(self.con, "SELECT event_key FROM staging.referral_events "
                                 "WHERE kind = 'signup' AND friend_email IS NOT NULL ORDER BY 1")
        if signups and rng.random() < 0.8:
            email = rng.choice([f"{rng.choice(self.people)}+ref@Example.com", f"other{rng.randrange(9)}@example.com"])
            self.con.execute("UPDATE staging.referral_events SET friend_email = ?, load_seq = ? WHERE event_key = ?",
                             [email, self.w._seq(), rng.choice(signups)[0]])

    def same_day(self) -> None:
        """Changes at the same as_of (the rewards stage then evaluates only what they touch): refunds
        and cancellations of attributed orders, an attributed order removed, a new burst, an earlier
        order in an advocate's month, a review, a distribution, an attributed order moving to another
        friend."""
        rng, w = self.rng, self.w
        attributed = [r[0] for r in rows(self.con, "SELECT order_key FROM analytics.referral_attribution ORDER BY 1")]
        for key in rng.sample(attributed, min(3, len(attributed))):
            w.set_order(key, **rng.choice([{"status": "refunded", "refunded_amount": 100}, {"status": "cancelled"},
                                           {"customer_key": f"cus_{rng.choice(self.people)}"}]))
        if attributed and rng.random() < 0.7:
            key = rng.choice(attributed)
            self.con.execute("DELETE FROM analytics.orders WHERE order_key = ?", [key])
            if key in self.orders:
                self.orders.remove(key)
        self.burst()
        # a new friend's order on the code of a pending reward, a minute before it: the advocate's
        # month gains an earlier reward (the monthly cap counts them in order)
        capped = rows(self.con, "SELECT a.referral_code, a.placed_at, a.market_id FROM analytics.referral_attribution a "
                                "JOIN analytics.rewards r ON r.order_key = a.order_key WHERE r.status = 'pending' "
                                "AND a.attribution_method = 'referral_code' ORDER BY a.order_key")
        if capped:
            code, placed, market = rng.choice(capped)
            friend = f"early{self.order_count}"
            w.customer(friend, market=market)
            self.people.append(friend)
            self._burst_order(code, rng.choice(IPS), placed - timedelta(minutes=1), who=friend)
        pending = rows(self.con, "SELECT reward_key, friend_customer_key FROM analytics.rewards "
                                 "WHERE status IN ('on_hold', 'pending') ORDER BY 1")
        if pending:
            key, friend = rng.choice(pending)
            w.review(key, rng.choice(["approve", "reject"]), at(self.day - 0.5))
            adv = rows(self.con, "SELECT advocate_customer_key FROM analytics.rewards WHERE reward_key = ?", [key])[0][0]
            w.reward_distributed(adv.removeprefix("cus_"), friend.removeprefix("cus_"), at(self.day - 0.2))

    def chain(self, rebuild: bool = False) -> dict:
        refresh_first_orders(self.con)
        if self.map_seq is not None:
            self.stamp_map()
        as_of, progs = at(self.day), programs()
        return {"events": run_referral_events(self.con, progs, as_of, rebuild=rebuild),
                "attribution": run_attribution(self.con, progs, as_of, "r", rebuild=rebuild),
                "promo": run_promo_codes(self.con, progs, as_of, rebuild=rebuild),
                "fraud": run_fraud(self.con, progs, as_of, "r", rebuild=rebuild),
                "rewards": run_rewards(self.con, progs, as_of, "r", rebuild=rebuild)}


@pytest.mark.parametrize("seed,map_seq", [(3, False), (7, False), (3, True), (11, True)])
def test_incremental_chain_equals_a_full_recompute(seed, map_seq):
    world = ChainWorld(seed, map_seq)
    world.step(n_events=25, n_orders=25, n_changes=0)
    first = world.chain()
    assert {first[k].mode for k in ("events", "attribution", "promo", "fraud")} == {"full"}
    flagged, narrowed = 0, 0
    for _ in range(5):
        world.step(n_events=8, n_orders=8, n_changes=6)
        incremental = world.chain()
        assert {incremental[k].mode for k in ("events", "attribution", "promo", "fraud")} == {"incremental"}
        assert incremental["rewards"].mode == "full"          # as_of moved on: every reward
        world.same_day()
        again = world.chain()
        assert again["rewards"].mode == "narrowed"
        narrowed += again["rewards"].changes.changed + again["rewards"].ledger_rows
        full = world.chain(rebuild=True)
        assert full["rewards"].mode == "full"
        assert {k: full[k].mode for k in ("events", "attribution", "promo", "fraud")} == dict.fromkeys(
            ("events", "attribution", "promo", "fraud"), "full")
        assert full["events"].changes.changed == 0, seed
        assert full["attribution"].changes.changed == 0, seed
        assert full["promo"].changes.changed == 0, seed
        assert full["fraud"].new_flags == 0, (seed, full["fraud"].new_by_rule)
        assert (full["rewards"].changes.changed, full["rewards"].ledger_rows) == (0, 0), seed
        flagged = max(flagged, sum(full["fraud"].total_by_rule.values()))
    assert flagged > 3                        # the random world does raise flags
    # the fraud stage's stored canonical emails: one row per sign-up, each that of its current emails
    assert rows(world.con, "SELECT count(*), count(DISTINCT event_key) FROM ops.fraud_signup_emails") == rows(
        world.con, "SELECT count(*), count(*) FROM analytics.referral_events WHERE kind = 'signup'")
    assert rows(world.con, """
        SELECT count(*) FROM ops.fraud_signup_emails c JOIN analytics.referral_events e USING (event_key)
        WHERE c.friend_email IS NOT DISTINCT FROM e.friend_email
          AND c.advocate_email IS NOT DISTINCT FROM e.advocate_email
          AND c.friend_canonical IS NOT DISTINCT FROM ref_email_canonical(e.friend_email)
          AND c.advocate_canonical IS NOT DISTINCT FROM ref_email_canonical(e.advocate_email)""") == rows(
        world.con, "SELECT count(*) FROM analytics.referral_events WHERE kind = 'signup'")
    assert narrowed > 3                       # the narrowed rewards runs do change rewards
    # with identity.map_seq the events stage kept its mark (it re-resolved only new map and index rows)
    assert bool(rows(world.con, "SELECT count(*) FROM ops.stage_progress WHERE stage = 'identity.map_seq -> referral_events'")[0][0]) \
        == map_seq
    assert rows(world.con, "SELECT count(*) FROM audit.promo_code_issues")[0][0] > 0
