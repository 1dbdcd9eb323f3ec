"""Points arithmetic of the simulated loyalty program (pure functions, no state).

An order earns ``purchase_points`` once, when its status first qualifies. What it contributes to
its customer at any moment is derived from the order alone (``contribution``): nothing before the
award or after a cancellation, otherwise the awarded points scaled by the part of the order total
not yet refunded. Every change to an order then moves the customer by the difference between the
new and the previously credited contribution, so a repeat can never award twice and a full refund
or cancellation takes back exactly what was given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .validation import whole_number


@dataclass(frozen=True)
class Contribution:
    points: int = 0
    spend_cents: int = 0
    purchases: int = 0

    def minus(self, other: "Contribution") -> "Contribution":
        return Contribution(self.points - other.points, self.spend_cents - other.spend_cents,
                            self.purchases - other.purchases)

    def is_zero(self) -> bool:
        return not (self.points or self.spend_cents or self.purchases)


NOTHING = Contribution()


def purchase_points(total_cents: int, points_per_unit: float, multiplier: float = 1.0) -> int:
    """Points for an order total: ``points_per_unit`` per 1.00 of currency, rounded down."""
    return max(0, math.floor(total_cents * points_per_unit * multiplier / 100 + 1e-9))


def kept_points(awarded: int, total_cents: int, refunded_cents: int) -> int:
    """The part of ``awarded`` that the not-refunded share of the total keeps (rounded half up)."""
    if total_cents <= 0:
        return 0 if refunded_cents > 0 else awarded
    remaining = min(max(total_cents - refunded_cents, 0), total_cents)
    return (2 * awarded * remaining + total_cents) // (2 * total_cents)


def order_total(order: dict) -> int:
    return whole_number(order.get("total_amount_cents"), "total_amount_cents")


def contribution(order: dict) -> Contribution:
    """What an order currently gives its customer (points, net spend, purchase count)."""
    if not order.get("awarded_at") or order.get("cancelled_at"):
        return NOTHING
    total = order_total(order)
    refunded = int(order.get("refunded_amount_cents") or 0)
    return Contribution(kept_points(int(order.get("points_awarded") or 0), total, refunded),
                        max(total - refunded, 0), 1)


def credited(order: dict) -> Contribution:
    """The contribution last applied to the customer (stored on the order)."""
    return Contribution(int(order.get("points_credited") or 0), int(order.get("spend_credited_cents") or 0),
                        int(order.get("purchase_credited") or 0))


def mark_credited(order: dict, value: Contribution) -> None:
    order["points_credited"] = value.points
    order["spend_credited_cents"] = value.spend_cents
    order["purchase_credited"] = value.purchases
