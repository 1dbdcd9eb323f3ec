"""HTTP helpers shared by the pipeline's clients."""
