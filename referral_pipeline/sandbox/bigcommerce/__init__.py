"""BigCommerce simulator (v3 customers and attributes, v2 orders and coupons, v3 refunds)."""
from .simulator import BigCommerceSimulator

__all__ = ["BigCommerceSimulator"]
