"""``python -m referral_pipeline run|dev`` (what ``make run`` and ``make dev`` call)."""
import sys

from .runner import main

sys.exit(main())
