"""The Yotpo simulator's switches: ``rate_limit`` and ``options`` of its ``SystemConfig``, validated.

``rate_limit`` keys:
    requests_per_second   token-bucket refill rate per GUID (default 5; 0 or null: no limit, no headers)
    burst                 bucket size (default = requests_per_second)
    requests_per_minute   fixed one-minute window per GUID (default 60 x requests_per_second)

``options`` keys:
    duplicate_order           accept | ignore | reject  (repeat ``order_id`` on POST /orders; default accept)
    points_per_currency_unit  points per 1.00 of ``total_amount_cents`` (default 1)
    award_statuses            order statuses that earn the points (default paid, complete, completed)
    cancel_statuses           order statuses that reverse them (default cancelled, canceled)
    default_currency          ``currency_code`` of an order that omits it (default USD)
    multi_currency            refunds must carry ``currency`` (default false)
    apply_tier_multiplier     multiply purchase points by the VIP tier's ``points_multiplier`` (default false)
    default_opt_in            opt-in of a customer created without one (default false)
    referral_format           referral_code (Swell shape) | referral_link (newer Shopify shape)
    referral_link_base        prefix of generated referral links (default https://rwrd.io/)
    customers_per_page        default ``per_page`` of GET /customers/all (default 100)
    max_per_page              larger ``per_page`` values are clamped to this (default 500)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DUPLICATE_POLICIES = ("accept", "ignore", "reject")
REFERRAL_FORMATS = ("referral_code", "referral_link")


@dataclass(frozen=True)
class RateLimitSettings:
    requests_per_second: float
    burst: float
    requests_per_minute: int

    @property
    def enabled(self) -> bool:
        return self.requests_per_second > 0

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> "RateLimitSettings":
        rps = raw.get("requests_per_second", 5)
        rps = float(rps or 0)
        if rps < 0:
            raise ValueError("yotpo rate_limit.requests_per_second must be >= 0")
        burst = float(raw.get("burst") or rps)
        rpm = int(raw.get("requests_per_minute") or round(rps * 60))
        if rps and (burst < 1 or rpm < 1):
            raise ValueError("yotpo rate_limit: burst and requests_per_minute must be >= 1")
        return cls(rps, burst, rpm)


@dataclass(frozen=True)
class YotpoSettings:
    duplicate_order: str = "accept"
    points_per_currency_unit: float = 1.0
    award_statuses: frozenset = frozenset({"paid", "complete", "completed"})
    cancel_statuses: frozenset = frozenset({"cancelled", "canceled"})
    default_currency: str = "USD"
    multi_currency: bool = False
    apply_tier_multiplier: bool = False
    default_opt_in: bool = False
    referral_format: str = "referral_code"
    referral_link_base: str = "https://rwrd.io/"
    customers_per_page: int = 100
    max_per_page: int = 500

    @classmethod
    def from_options(cls, raw: dict[str, Any]) -> "YotpoSettings":
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"yotpo options: unknown keys {sorted(unknown)}; expected {sorted(known)}")
        values = dict(raw)
        for name in ("award_statuses", "cancel_statuses"):
            if name in values:
                values[name] = frozenset(str(s).lower() for s in _as_list(values[name], name))
        settings = cls(**values)
        settings._check()
        return settings

    def _check(self) -> None:
        if self.duplicate_order not in DUPLICATE_POLICIES:
            raise ValueError(f"yotpo options.duplicate_order must be one of {DUPLICATE_POLICIES}, "
                             f"got {self.duplicate_order!r}")
        if self.referral_format not in REFERRAL_FORMATS:
            raise ValueError(f"yotpo options.referral_format must be one of {REFERRAL_FORMATS}")
        if not isinstance(self.points_per_currency_unit, (int, float)) or self.points_per_currency_unit < 0:
            raise ValueError("yotpo options.points_per_currency_unit must be a number >= 0")
        if self.customers_per_page < 1 or self.max_per_page < self.customers_per_page:
            raise ValueError("yotpo options: need 1 <= customers_per_page <= max_per_page")


def _as_list(value: Any, name: str) -> list:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    raise ValueError(f"yotpo options.{name} must be a list of statuses")
