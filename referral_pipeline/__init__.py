"""referral_pipeline: a Dagster pipeline for referral and loyalty programs (see README.md)."""
