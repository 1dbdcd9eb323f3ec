"""Friendbuy Merchant API (MAPI) simulator: auth tokens, customer and event tracking, analytics exports."""
from .simulator import FriendbuySimulator

__all__ = ["FriendbuySimulator"]
