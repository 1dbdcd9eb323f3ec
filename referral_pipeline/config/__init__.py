"""Configuration of the pipeline: the programs file (sources, markets, rules) and run settings."""
