"""The sandbox: local simulators of Salesforce, commercetools, BigCommerce, Friendbuy and Yotpo Loyalty.

Each simulator is a Starlette app that speaks its vendor's real HTTP API over loopback, holds
state, injects faults, and answers the admin routes of contracts §3 (``/_sandbox/...``).
``python -m referral_pipeline.sandbox serve`` starts all five; see ``server.py``.
"""
