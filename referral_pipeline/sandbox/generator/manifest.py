"""The manifest: counts of everything generated and every planted case with the ids involved,
so tests (and people) can check what the pipeline should find. Deterministic: no timings, no
paths, only data derived from the seed."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import numpy as np

from .fraud import Case
from .frame import Frame
from .malformed import REASONS
from .promo import PROBLEMS
from .referrals import OUTCOME_NAMES, SIGNAL_NAMES
from .settings import BC, CT, END_MS, GENERATOR_VERSION, MARKETS, SF, SOURCES, START_MS


def iso(ms: int) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ip_text(value: int) -> str:
    v = int(value)
    return ".".join(str((v >> s) & 255) for s in (24, 16, 8, 0))


class Describe:
    """Turns pids, friend rows and registry rows into manifest entries (small sets only)."""

    def __init__(self, world, run, registry: Frame):
        self.world, self.run, self.reg = world, run, registry
        self.cids = run.cids
        self.by_friend = self._index(registry["friend"] if len(registry) else np.zeros(0, np.int64), len(world.refs.friends))
        self.by_extra = self._index(registry["extra"] if len(registry) else np.zeros(0, np.int64), len(world.refs.extra_orders))

    @staticmethod
    def _index(keys: np.ndarray, size: int) -> np.ndarray:
        """Registry row of each friend (or extra order) row, -1 when it has no order."""
        out = np.full(size, -1, dtype=np.int64)
        valid = np.flatnonzero(keys >= 0)
        out[keys[valid]] = valid
        return out

    def person(self, pid: int) -> dict:
        p = self.world.people
        pid = int(pid)
        records = []
        for s in (SF, CT, BC):
            if not p.in_source[pid, s]:
                continue
            if s == SF:
                records.append({"source": "sf", "id": self.cids.sf_contact([pid]).to_pylist()[0],
                                "account_id": self.cids.sf_account([pid]).to_pylist()[0]})
            elif s == CT:
                records.append({"source": "ct", "id": self.cids.ct([pid]).to_pylist()[0]})
            else:
                records.append({"source": "bc", "id": int(self.cids.bc([pid])[0])})
        return {"email": p.email([pid]).to_pylist()[0], "name": p.full_name([pid]).to_pylist()[0],
                "customers": records}

    def order(self, reg_row: int) -> dict | None:
        if reg_row < 0:
            return None
        r = self.reg
        source = SOURCES[int(r["source"][reg_row])]
        order_id = r["order_id"][reg_row].as_py()
        return {"order_key": f"{source}:{order_id}", "order_number": r["number"][reg_row].as_py(),
                "placed_at": iso(r["created_ms"][reg_row]), "net_amount": int(r["net"][reg_row]) / 100,
                "currency": ("USD", "GBP", "EUR", "CAD")[int(r["currency"][reg_row])],
                "coupon_code": r["coupon"][reg_row].as_py() or None, "ip": ip_text(r["ip"][reg_row])}

    def friend(self, row: int, flagged: bool) -> dict:
        f = self.world.refs.friends
        out = self.person(f["pid"][row])
        out.update({"order": self.order(int(self.by_friend[row])), "flagged": flagged,
                    "clicked_at": iso(f["click_ms"][row]),
                    "signed_up_at": iso(f["signup_ms"][row]) if f["signup_ms"][row] >= 0 else None,
                    "ip": ip_text(f["ip"][row]), "signal": SIGNAL_NAMES[int(f["signal"][row])]})
        return out

    def case(self, case: Case) -> dict:
        refs = self.world.refs
        f, x = refs.friends, refs.extra_orders
        share_codes = sorted({refs.shares["code"][int(f["share"][r])].as_py() for r in case.friends})
        out = {"case": case.case, "variant": case.variant, "market_id": MARKETS[case.market].id,
               "campaign_id": MARKETS[case.market].campaign_id, "advocate": self.person(case.advocate),
               "referral_codes": share_codes,
               "friends": [self.friend(r, r in case.flagged) for r in case.friends],
               "extra_orders": [], "ip": ip_text(case.ip) if case.ip is not None else None}
        for row in case.extra:
            entry = self.person(x["pid"][row])
            entry["order"] = self.order(int(self.by_extra[row]))
            entry["flagged"] = row in case.flagged_extra
            if x["code_share"][row] >= 0:
                entry["referral_code"] = refs.shares["code"][int(x["code_share"][row])].as_py()
                out["referral_codes"] = sorted(set(out["referral_codes"]) | {entry["referral_code"]})
            out["extra_orders"].append(entry)
        for key, value in case.details.items():
            if key in ("buyer", "referral_code"):
                continue
            out[key] = value
        return out


def _promo_problems(world, describe: Describe) -> list[dict]:
    inc = world.promos.incentives
    out = []
    for entry in world.promos.problems:
        row = entry["row"]
        platform = int(inc["platform"][row])
        item = {"code": inc["code"][row].as_py(), "friendbuy_code": inc["code"][row].as_py().lower(),
                "problem": entry["problem"], "market_id": MARKETS[int(inc["market"][row])].id,
                "campaign_id": MARKETS[int(inc["market"][row])].campaign_id,
                "platform": None if not inc["in_platform"][row] else SOURCES[platform],
                "distributed_at": iso(inc["created_ms"][row])}
        item.update({k: v for k, v in entry.items() if k not in ("row", "problem", "other_row")})
        if "other_row" in entry:
            item["other_campaign_id"] = MARKETS[int(inc["market"][entry["other_row"]])].campaign_id
        out.append(item)
    return out


def _referral_counts(world, registry: Frame) -> dict:
    refs, promos = world.refs, world.promos
    f = refs.friends
    conv = f["converts"]
    return {
        "advocates": int(len(np.unique(refs.shares["advocate"]))), "shares": len(refs.shares),
        "clicks": len(f) + len(refs.clicks), "friends": len(f), "converting_friends": int(conv.sum()),
        "sign_ups": int(f["has_signup"].sum()), "prospects": len(refs.prospects),
        "friend_incentives": len(promos.incentives), "advocate_rewards": len(promos.rewards),
        "friends_by_signal": {SIGNAL_NAMES[s]: int(((f["signal"] == s) & conv).sum()) for s in range(len(SIGNAL_NAMES))},
        "friends_by_outcome": {OUTCOME_NAMES[o]: int(((f["outcome"] == o) & conv).sum()) for o in range(4)},
        "referral_orders": len(registry),
    }


def build_manifest(*, scale, seed, invalid_utf8, world, run, registry, cases, leaks, aliases, files) -> dict:
    describe = Describe(world, run, registry)
    p = world.people
    fraud: dict = {}
    eligibility: dict = {}
    for case in cases:
        target = fraud if case.group == "fraud" else eligibility
        target.setdefault(case.rule, []).append(describe.case(case))
    promo = _promo_problems(world, describe)
    malformed = run.bad.planted
    alias_entries = []
    for pid in aliases:
        entry = describe.person(pid)
        entry["variant_source"] = SOURCES[int(np.flatnonzero(p.variant[pid] >= 5)[0])]
        alias_entries.append(entry)
    leak_entries = [{"advocate": describe.person(world.refs.friends["advocate"][r]),
                     "friend": describe.friend(r, True),
                     "rule": next(c.rule for c in cases if r in c.friends)} for r in leaks]
    return {
        "generator": {"version": GENERATOR_VERSION, "scale": scale, "seed": seed, "invalid_utf8": invalid_utf8},
        "time_window": {"start": iso(START_MS), "end": iso(END_MS)},
        "programs": "programs.yaml",
        "counts": {
            "people": p.n,
            "people_by_market": {m.id: int((p.market == i).sum()) for i, m in enumerate(MARKETS)},
            "customer_records": {SOURCES[s]: int(p.in_source[:, s].sum()) for s in (SF, CT, BC)},
            "orders": {**{k: int(v) for k, v in sorted(run.orders_by_source.items())},
                       "total": int(sum(run.orders_by_source.values()))},
            "order_lines": int(run.lines_total),
            "referrals": _referral_counts(world, registry),
            "alias_duplicate_people": len(aliases),
        },
        "planted_counts": {
            "fraud": {rule: len(v) for rule, v in fraud.items()},
            "eligibility": {rule: len(v) for rule, v in eligibility.items()},
            "promo_codes": dict(Counter(x["problem"] for x in promo)),
            "malformed": {reason: sum(1 for m in malformed if m["reason"] == reason)
                          for reason in dict.fromkeys(REASONS["customer"] + REASONS["order"])},
            "reward_leaks": len(leak_entries),
        },
        "planted": {"fraud": fraud, "eligibility": eligibility, "promo_codes": promo, "malformed": malformed,
                    "reward_leaks": leak_entries, "alias_duplicates": alias_entries},
        "promo_problem_kinds": list(PROBLEMS),
        "files": files,
    }
