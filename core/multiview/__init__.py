"""Several calibrated cameras filming the same hands: one hand model fitted to every view at once."""
