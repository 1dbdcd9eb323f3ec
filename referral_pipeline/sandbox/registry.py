"""Which class implements each simulator (imported lazily, so one broken simulator cannot stop the
others from being listed)."""
from __future__ import annotations

import importlib

from .core.config import SYSTEMS
from .core.simulator import Simulator

SIMULATOR_CLASSES = {
    "salesforce": "referral_pipeline.sandbox.salesforce:SalesforceSimulator",
    "commercetools": "referral_pipeline.sandbox.commercetools:CommercetoolsSimulator",
    "bigcommerce": "referral_pipeline.sandbox.bigcommerce:BigCommerceSimulator",
    "friendbuy": "referral_pipeline.sandbox.friendbuy:FriendbuySimulator",
    "yotpo": "referral_pipeline.sandbox.yotpo:YotpoSimulator",
}
assert tuple(SIMULATOR_CLASSES) == SYSTEMS


def simulator_class(name: str) -> type[Simulator]:
    module, _, attr = SIMULATOR_CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), attr)
