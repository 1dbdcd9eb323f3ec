"""One client module per external system, each built on the shared HTTP layer (``referral_pipeline.http``)."""
