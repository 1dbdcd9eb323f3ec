"""VIP tiers: which tier a customer's lifetime points, spend and purchases put them in.

A tier (``vip-tiers.jsonl``, the shape of Yotpo's tier objects) names its entry thresholds in
``points_earned``, ``amount_spent_cents`` and ``purchases_made``. A customer qualifies when they
meet ANY threshold the tier sets (a tier that sets none is the entry tier), and holds the highest
qualifying tier. Tiers are ordered by ``rank`` (ascending: higher rank, higher tier), or by their
thresholds when no rank is given.
"""
from __future__ import annotations

from typing import Any, Iterable

# tier threshold field -> the customer field it is compared with
THRESHOLDS = {"points_earned": "points_earned", "amount_spent_cents": "total_spend_cents",
              "purchases_made": "total_purchases"}
NEEDED = {"points_earned": "points_needed", "amount_spent_cents": "amount_cents_needed",
          "purchases_made": "purchases_needed"}


def number(value: Any) -> float:
    """A numeric field read leniently (fixtures may hold strings or junk): junk counts as 0."""
    if isinstance(value, bool):
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _thresholds(tier: dict) -> dict[str, float]:
    return {f: number(tier.get(f)) for f in THRESHOLDS if number(tier.get(f)) > 0}


def sort_key(tier: dict) -> tuple:
    """Orders tiers lowest first: by ``rank`` when set, else by thresholds."""
    rank = tier.get("rank")
    has_rank = isinstance(rank, (int, float)) and not isinstance(rank, bool)
    return (0 if has_rank else 1, rank if has_rank else 0,
            tuple(number(tier.get(f)) for f in THRESHOLDS), str(tier.get("id")))


def ordered(tiers: Iterable[dict]) -> list[dict]:
    """Lowest tier first."""
    return sorted(tiers, key=sort_key)


def qualifies(customer: dict, tier: dict) -> bool:
    thresholds = _thresholds(tier)
    if not thresholds:
        return True
    return any(number(customer.get(THRESHOLDS[f])) >= need for f, need in thresholds.items())


def tier_for(customer: dict, tiers: list[dict]) -> tuple[dict | None, dict | None]:
    """(current tier, next tier) for a customer, from tiers ordered lowest first."""
    current, upcoming = None, None
    for tier in tiers:
        if qualifies(customer, tier):
            current, upcoming = tier, None
        elif upcoming is None:
            upcoming = tier
    return current, upcoming


def upgrade_requirements(customer: dict, upcoming: dict | None) -> dict | None:
    """What the customer still needs for the next tier (``vip_tier_upgrade_requirements``)."""
    if upcoming is None:
        return None
    out = {}
    for field, need in _thresholds(upcoming).items():
        out[NEEDED[field]] = max(0, int(need - number(customer.get(THRESHOLDS[field]))))
    return out


def refresh(customer: dict, tiers: list[dict], now_text: str) -> None:
    """Set ``vip_tier_name`` (and entry date, upgrade requirements) from the ordered tiers.
    Without tiers the customer's VIP fields are left as they are."""
    if not tiers:
        return
    current, upcoming = tier_for(customer, tiers)
    name = current.get("name") if current else None
    if name != customer.get("vip_tier_name"):
        customer["vip_tier_name"] = name
        customer["vip_tier_entry_date"] = now_text if name else None
    customer["vip_tier_upgrade_requirements"] = upgrade_requirements(customer, upcoming)
