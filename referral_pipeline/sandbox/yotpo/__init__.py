"""Yotpo Loyalty & Referrals API v2 simulator (port-base+5, API under ``/api/v2``)."""
from .simulator import YotpoSimulator

__all__ = ["YotpoSimulator"]
