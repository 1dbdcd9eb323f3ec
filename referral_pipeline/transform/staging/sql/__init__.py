"""Per-source staging SQL files (SELECTs over ``raw_delta``), loaded with ``importlib.resources``."""
