"""Simulator of the commercetools Composable Commerce HTTP API (and its ``/oauth/token``)."""
from .simulator import CommercetoolsSimulator

__all__ = ["CommercetoolsSimulator"]
