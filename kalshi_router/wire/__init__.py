"""Everything Kalshi-specific: JSON models, the two batch dialects, signing and HTTP."""
