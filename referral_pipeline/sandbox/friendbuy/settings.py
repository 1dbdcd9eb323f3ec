"""The Friendbuy simulator's knobs, read from ``SystemConfig.options`` and ``.rate_limit``.

``options`` keys (all optional):

- ``duplicate_purchase``: ``accept`` (default; a repeated ``orderId`` is stored again and counted
  again), ``ignore`` (200 with the first event's ``eventId``/``createdOn``, nothing stored) or
  ``reject`` (409 with the error envelope).
- ``auto_reward`` (default true): an attributed purchase by a new customer distributes an advocate
  reward. ``advocate_reward_amount`` (default 20), ``advocate_reward_type`` (default
  ``"Account Credit"``; one of the reference's rewardType values), ``advocate_reward_codes``
  (coupon codes handed out in order when the type is ``"Coupon Code"``; generated when exhausted).
- ``token_ttl_seconds`` (default 1200, the documented 20 minutes).
- ``analytics_max_page_size`` (default 1000; larger ``pageSize`` values are refused with 422).

``rate_limit`` keys: ``requests_per_second`` (leaky bucket drain rate; absent or 0 = off),
``burst`` (bucket size, default max(1, requests_per_second)), ``retry_after`` (bool, default false:
the real API is not documented to send ``Retry-After``; true adds it to every 429).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DUPLICATE_POLICIES = ("accept", "ignore", "reject")
REWARD_TYPES = ("Account Credit", "Coupon Code", "Gift Card", "Custom", "Ledger")
DEFAULT_PAGE_SIZE = 200


@dataclass(frozen=True)
class FriendbuySettings:
    duplicate_purchase: str = "accept"
    auto_reward: bool = True
    advocate_reward_amount: float = 20
    advocate_reward_type: str = "Account Credit"
    advocate_reward_codes: tuple[str, ...] = field(default_factory=tuple)
    token_ttl_seconds: float = 1200.0
    analytics_max_page_size: int = 1000
    requests_per_second: float = 0.0
    burst: float | None = None
    retry_after: bool = False


def _number(value: Any, name: str, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"friendbuy: {name} must be a number >= {minimum}, got {value!r}")
    return value


def parse_settings(options: dict[str, Any], rate_limit: dict[str, Any]) -> FriendbuySettings:
    """Validated settings; raises ``ValueError`` naming the bad key."""
    unknown = set(options) - {f for f in FriendbuySettings.__dataclass_fields__
                              if f not in ("requests_per_second", "burst", "retry_after")}
    unknown |= {f"rate_limit.{k}" for k in set(rate_limit) - {"requests_per_second", "burst", "retry_after"}}
    if unknown:
        raise ValueError(f"friendbuy: unknown option(s) {sorted(unknown)}")
    policy = options.get("duplicate_purchase", "accept")
    if policy not in DUPLICATE_POLICIES:
        raise ValueError(f"friendbuy: duplicate_purchase must be one of {DUPLICATE_POLICIES}, got {policy!r}")
    reward_type = options.get("advocate_reward_type", "Account Credit")
    if reward_type not in REWARD_TYPES:
        raise ValueError(f"friendbuy: advocate_reward_type must be one of {REWARD_TYPES}, got {reward_type!r}")
    codes = options.get("advocate_reward_codes", [])
    if not isinstance(codes, list) or not all(isinstance(c, str) and c for c in codes):
        raise ValueError("friendbuy: advocate_reward_codes must be a list of non-empty strings")
    burst = rate_limit.get("burst")
    return FriendbuySettings(
        duplicate_purchase=policy,
        auto_reward=bool(options.get("auto_reward", True)),
        advocate_reward_amount=_number(options.get("advocate_reward_amount", 20), "advocate_reward_amount"),
        advocate_reward_type=reward_type,
        advocate_reward_codes=tuple(codes),
        token_ttl_seconds=_number(options.get("token_ttl_seconds", 1200), "token_ttl_seconds", 1),
        analytics_max_page_size=int(_number(options.get("analytics_max_page_size", 1000),
                                            "analytics_max_page_size", DEFAULT_PAGE_SIZE)),
        requests_per_second=_number(rate_limit.get("requests_per_second") or 0, "rate_limit.requests_per_second"),
        burst=None if burst is None else _number(burst, "rate_limit.burst", 1),
        retry_after=bool(rate_limit.get("retry_after", False)),
    )
