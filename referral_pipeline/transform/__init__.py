"""Set-based DuckDB transforms: staging (normalization), identity, referrals, rewards, reports."""
